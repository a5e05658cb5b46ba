//! `palisade session list [USER]` and `session revoke (SESSION_ID | --user USER)`. Sessions
//! are shown and revoked by their stored key (the SHA-256 of the cookie value, as 64 hex
//! digits): the cookie itself is never stored, so it cannot be shown.

use std::collections::HashMap;

use palisade_core::{SessionKey, SessionStore, UserStore};
use serde_json::{Value, json};

use crate::cli::{GlobalOpts, SessionCommand};
use crate::error::{CliError, CliResult};
use crate::io::print_stdout;

use super::admin::{Admin, iso};
use super::user::{print_json, table};

pub fn run(global: GlobalOpts, command: SessionCommand) -> CliResult<u8> {
    let admin = Admin::open(global)?;
    let result = match command {
        SessionCommand::List { user, json } => list(&admin, user.as_deref(), json),
        SessionCommand::Revoke { session_id, user } => {
            revoke(&admin, session_id.as_deref(), user.as_deref())
        }
    };
    admin.close();
    result.map(|()| 0)
}

fn list(admin: &Admin, user: Option<&str>, as_json: bool) -> CliResult<()> {
    let users = admin
        .block_on(admin.store.list_users())
        .map_err(|e| admin.store_err(&e))?;
    let names: HashMap<_, _> = users
        .iter()
        .map(|u| (u.id, u.username.to_string()))
        .collect();
    let sessions = match user {
        Some(name) => {
            let user = admin.find_user(name)?;
            admin.block_on(admin.store.list_sessions_for_user(user.id))
        }
        None => admin.block_on(admin.store.list_all_sessions()),
    }
    .map_err(|e| admin.store_err(&e))?;
    let name_of = |id| names.get(&id).cloned().unwrap_or_else(|| format!("#{id}"));
    if as_json {
        let values: Vec<Value> = sessions
            .iter()
            .map(|s| {
                json!({
                    "id": s.key.to_hex(),
                    "user": name_of(s.user_id),
                    "created": iso(s.created_at),
                    "last_seen": iso(s.last_seen),
                    "ip": s.ip,
                    "user_agent": s.user_agent,
                })
            })
            .collect();
        return print_json(&Value::Array(values));
    }
    let rows: Vec<Vec<String>> = sessions
        .iter()
        .map(|s| {
            vec![
                s.key.to_hex(),
                name_of(s.user_id),
                iso(s.created_at),
                iso(s.last_seen),
                s.ip.clone().unwrap_or_else(|| "-".to_owned()),
                // Client-supplied: strip control characters so it cannot drive the terminal.
                s.user_agent.as_deref().map_or("-".to_owned(), |ua| {
                    ua.chars().filter(|c| !c.is_control()).collect()
                }),
            ]
        })
        .collect();
    let header = [
        "SESSION_ID",
        "USER",
        "CREATED",
        "LAST SEEN",
        "IP",
        "USER AGENT",
    ];
    print_stdout(table(&header, &rows).as_bytes())
}

fn revoke(admin: &Admin, session_id: Option<&str>, user: Option<&str>) -> CliResult<()> {
    if let Some(name) = user {
        let user = admin.find_user(name)?;
        let ended = admin
            .block_on(admin.store.delete_sessions_for_user(user.id, None))
            .map_err(|e| admin.store_err(&e))?;
        admin.audit(
            "session.revoke",
            Some(user.username.as_str()),
            json!({"sessions": ended}),
        )?;
        return print_stdout(
            format!("revoked {ended} session(s) of {}\n", user.username).as_bytes(),
        );
    }
    let Some(id) = session_id else {
        return Err(CliError::usage("give a SESSION_ID or --user USER"));
    };
    let no_such = || CliError::usage(format!("no session with id {id}"));
    let key = SessionKey::from_hex(id.trim()).map_err(|_| no_such())?;
    let session = admin
        .block_on(admin.store.get_session(&key))
        .map_err(|e| admin.store_err(&e))?
        .ok_or_else(no_such)?;
    let owner = admin
        .block_on(admin.store.get_by_id(session.user_id))
        .map_err(|e| admin.store_err(&e))?
        .map(|u| u.username.to_string());
    let deleted = admin
        .block_on(admin.store.delete_session(&key))
        .map_err(|e| admin.store_err(&e))?;
    if !deleted {
        return Err(no_such());
    }
    admin.audit(
        "session.revoke",
        owner.as_deref(),
        json!({"session": key.to_hex()}),
    )?;
    print_stdout(format!("revoked session {}\n", key.to_hex()).as_bytes())
}
