//! `palisade keys list [--json]`, `keys rotate` and `keys retire KID`: the account-token
//! signing keys that `palisade_server::secrets` keeps in the database under the master key.
//! `keys list` shows the secure drop's keys too (after the token keys); they are rotated by
//! `palisade drop rotate-keys`, and `rotate`/`retire` here touch only the token keys.
//! Listings show ids, times and states, never a key; rotation and retirement are written to
//! the audit log.
//!
//! `keys list` on a database without keys prints nothing (the server makes the first key when
//! it starts; `keys rotate` makes it too). Every command opens the active keys with the master
//! key first, so one run with another deployment's master key is a clear error rather than a
//! listing that looks fine or a key no node could open.

use palisade_server::secrets::{
    self, ACCOUNT_TOKENS, KeyInfo, MasterKey, SecretError, list_token_keys,
};
use serde_json::{Value, json};

use crate::cli::{GlobalOpts, KeysCommand};
use crate::error::{CliError, CliResult};
use crate::io::print_stdout;

use super::admin::{Admin, iso, now};
use super::user::{print_json, table};

pub fn run(global: GlobalOpts, command: KeysCommand) -> CliResult<u8> {
    let admin = Admin::open(global)?;
    let result = admin.master_key().and_then(|master| match command {
        KeysCommand::List { json } => list(&admin, &master, json),
        KeysCommand::Rotate => rotate(&admin, &master),
        KeysCommand::Retire { kid } => retire(&admin, &master, kid.trim()),
    });
    admin.close();
    result.map(|()| 0)
}

/// Every failure here is an input or set-up problem (exit 2); storage failures name the
/// database as the other admin commands do.
pub(super) fn secret_err(admin: &Admin, err: SecretError) -> CliError {
    match err {
        SecretError::Store(e) => admin.store_err(&e),
        other => CliError::usage(other.to_string()),
    }
}

fn list(admin: &Admin, master: &MasterKey, as_json: bool) -> CliResult<()> {
    let mut keys = admin
        .block_on(list_token_keys(&admin.store, master))
        .map_err(|e| secret_err(admin, e))?;
    keys.extend(
        admin
            .block_on(secrets::list_drop_keys(&admin.store, master))
            .map_err(|e| secret_err(admin, e))?,
    );
    if as_json {
        let values: Vec<Value> = keys.iter().map(key_json).collect();
        return print_json(&Value::Array(values));
    }
    if keys.is_empty() {
        return Ok(());
    }
    let rows: Vec<Vec<String>> = keys
        .iter()
        .map(|k| {
            vec![
                k.purpose.clone(),
                k.kid.clone(),
                iso(k.created_at),
                k.state.to_string(),
            ]
        })
        .collect();
    print_stdout(table(&["PURPOSE", "KID", "CREATED", "STATE"], &rows).as_bytes())
}

fn key_json(key: &KeyInfo) -> Value {
    json!({
        "purpose": key.purpose,
        "kid": key.kid,
        "created": iso(key.created_at),
        "state": key.state.as_str(),
        "retired": key.retired_at.map(iso),
    })
}

fn rotate(admin: &Admin, master: &MasterKey) -> CliResult<()> {
    let kid = admin
        .block_on(secrets::rotate_token_key(&admin.store, master, now()))
        .map_err(|e| secret_err(admin, e))?;
    admin.audit(
        "keys.rotate",
        Some(&kid),
        json!({"purpose": ACCOUNT_TOKENS}),
    )?;
    print_stdout(format!("{kid}\n").as_bytes())
}

fn retire(admin: &Admin, master: &MasterKey, kid: &str) -> CliResult<()> {
    // Checked with the master key first, as every keys command is: retiring by id alone
    // would work with any key, and then the operator would learn of the mismatch later.
    admin
        .block_on(list_token_keys(&admin.store, master))
        .map_err(|e| secret_err(admin, e))?;
    admin
        .block_on(secrets::retire_token_key(&admin.store, kid, now()))
        .map_err(|e| secret_err(admin, e))?;
    admin.audit("keys.retire", Some(kid), json!({"purpose": ACCOUNT_TOKENS}))?;
    print_stdout(format!("retired {kid}\n").as_bytes())
}
