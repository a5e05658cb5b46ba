//! `palisade user …`: create, list, show, set-password, deactivate, activate. Every change
//! is written to the audit log; no output ever contains a password hash.

use palisade_core::{Email, NewUser, SessionStore, User, UserStore, Username};
use palisade_crypto::password::{algorithm_of, hash_password};
use serde_json::{Value, json};

use crate::cli::{GlobalOpts, UserCommand};
use crate::error::{CliError, CliResult};
use crate::io::print_stdout;

use super::admin::{Admin, check_policy, iso, now, read_new_password};

pub fn run(global: GlobalOpts, command: UserCommand) -> CliResult<u8> {
    let admin = Admin::open(global)?;
    let result = match command {
        UserCommand::Create {
            username,
            email,
            superuser,
            staff,
            password_stdin,
        } => create(&admin, &username, &email, superuser, staff, password_stdin),
        UserCommand::List { json } => list(&admin, json),
        UserCommand::Show { name, json } => show(&admin, &name, json),
        UserCommand::SetPassword {
            name,
            password_stdin,
        } => set_password(&admin, &name, password_stdin),
        UserCommand::Deactivate { name } => set_active(&admin, &name, false),
        UserCommand::Activate { name } => set_active(&admin, &name, true),
    };
    admin.close();
    result.map(|()| 0)
}

fn create(
    admin: &Admin,
    raw_username: &str,
    raw_email: &str,
    superuser: bool,
    staff: bool,
    password_stdin: bool,
) -> CliResult<()> {
    let username = Username::parse(raw_username)
        .map_err(|e| CliError::usage(format!("{raw_username}: {e}")))?;
    let email =
        Email::parse(raw_email).map_err(|e| CliError::usage(format!("{raw_email}: {e}")))?;
    let display = username.to_string();
    let taken = || CliError::usage(format!("{display}: username already taken"));
    // Checked before asking for a password, so nobody types one for nothing; the unique
    // index still decides if another process creates the name in between.
    if admin
        .block_on(admin.store.get_by_username(&username))
        .map_err(|e| admin.store_err(&e))?
        .is_some()
    {
        return Err(taken());
    }
    let policy = admin.password_policy()?;
    let password = read_new_password(password_stdin)?;
    check_policy(&policy, &password, &[username.as_str(), email.as_str()])?;
    let hash = hash_password(password.as_bytes(), &admin.argon2())
        .map_err(|e| CliError::usage(format!("hashing the password: {e}")))?;
    let mut new = NewUser::new(username, Some(email), hash, now());
    // As Django's createsuperuser: a superuser is staff too.
    new.is_superuser = superuser;
    new.is_staff = staff || superuser;
    let user = admin
        .block_on(admin.store.create_user(new))
        .map_err(|e| match e {
            palisade_core::StoreError::Conflict => taken(),
            e => admin.store_err(&e),
        })?;
    admin.audit(
        "user.create",
        Some(user.username.as_str()),
        json!({"staff": user.is_staff, "superuser": user.is_superuser}),
    )?;
    print_stdout(format!("created user {}\n", user.username).as_bytes())
}

/// The public view of a user: every field but the hash, whose algorithm alone is shown.
fn user_json(user: &User) -> Value {
    json!({
        "id": user.id.get(),
        "username": user.username.as_str(),
        "email": user.email.as_ref().map(Email::as_str),
        "is_active": user.is_active,
        "is_staff": user.is_staff,
        "is_superuser": user.is_superuser,
        "date_joined": iso(user.date_joined),
        "last_login": user.last_login.map(iso),
        "password_algorithm": algorithm_of(&user.password_hash),
    })
}

fn list(admin: &Admin, as_json: bool) -> CliResult<()> {
    let users = admin
        .block_on(admin.store.list_users())
        .map_err(|e| admin.store_err(&e))?;
    if as_json {
        let values: Vec<Value> = users.iter().map(user_json).collect();
        return print_json(&Value::Array(values));
    }
    let header = [
        "USERNAME",
        "EMAIL",
        "ACTIVE",
        "STAFF",
        "SUPERUSER",
        "JOINED",
        "LAST LOGIN",
    ];
    let rows: Vec<Vec<String>> = users
        .iter()
        .map(|u| {
            vec![
                u.username.to_string(),
                u.email.as_ref().map_or("-".to_owned(), ToString::to_string),
                yes_no(u.is_active),
                yes_no(u.is_staff),
                yes_no(u.is_superuser),
                iso(u.date_joined),
                u.last_login.map_or("-".to_owned(), iso),
            ]
        })
        .collect();
    print_stdout(table(&header, &rows).as_bytes())
}

fn show(admin: &Admin, name: &str, as_json: bool) -> CliResult<()> {
    let user = admin.find_user(name)?;
    let sessions = admin
        .block_on(admin.store.list_sessions_for_user(user.id))
        .map_err(|e| admin.store_err(&e))?
        .len();
    let mut value = user_json(&user);
    if let Value::Object(map) = &mut value {
        map.insert("sessions".into(), Value::from(sessions));
    }
    if as_json {
        return print_json(&value);
    }
    let mut out = String::new();
    let text = |v: Option<&Value>| match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "-".to_owned(),
        Some(v) => v.to_string(),
    };
    for key in [
        "id",
        "username",
        "email",
        "is_active",
        "is_staff",
        "is_superuser",
        "date_joined",
        "last_login",
        "password_algorithm",
        "sessions",
    ] {
        out.push_str(&format!("{key:<19} {}\n", text(value.get(key))));
    }
    print_stdout(out.as_bytes())
}

fn set_password(admin: &Admin, name: &str, password_stdin: bool) -> CliResult<()> {
    let user = admin.find_user(name)?;
    let policy = admin.password_policy()?;
    let password = read_new_password(password_stdin)?;
    let mut inputs = vec![user.username.as_str()];
    if let Some(email) = &user.email {
        inputs.push(email.as_str());
    }
    check_policy(&policy, &password, &inputs)?;
    let hash = hash_password(password.as_bytes(), &admin.argon2())
        .map_err(|e| CliError::usage(format!("hashing the password: {e}")))?;
    admin
        .block_on(admin.store.set_password_hash(user.id, &hash))
        .map_err(|e| admin.store_err(&e))?;
    // As after a password change in Django: whoever held a session under the old password
    // must log in again.
    let ended = admin
        .block_on(admin.store.delete_sessions_for_user(user.id, None))
        .map_err(|e| admin.store_err(&e))?;
    admin.audit(
        "user.set_password",
        Some(user.username.as_str()),
        json!({"sessions_ended": ended}),
    )?;
    print_stdout(
        format!(
            "password set for {}; {ended} session(s) ended\n",
            user.username
        )
        .as_bytes(),
    )
}

fn set_active(admin: &Admin, name: &str, active: bool) -> CliResult<()> {
    let user = admin.find_user(name)?;
    admin
        .block_on(admin.store.set_active(user.id, active))
        .map_err(|e| admin.store_err(&e))?;
    let (action, ended) = if active {
        ("user.activate", 0)
    } else {
        // A deactivated account must lose access now, not when its sessions expire.
        let ended = admin
            .block_on(admin.store.delete_sessions_for_user(user.id, None))
            .map_err(|e| admin.store_err(&e))?;
        ("user.deactivate", ended)
    };
    let detail = if active {
        Value::Null
    } else {
        json!({"sessions_ended": ended})
    };
    admin.audit(action, Some(user.username.as_str()), detail)?;
    let verb = if active { "activated" } else { "deactivated" };
    print_stdout(format!("{verb} {}\n", user.username).as_bytes())
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_owned()
}

/// Pretty JSON plus a newline on standard output.
pub fn print_json(value: &Value) -> CliResult<()> {
    let mut text = serde_json::to_string_pretty(value)
        .map_err(|e| CliError::usage(format!("encoding JSON: {e}")))?;
    text.push('\n');
    print_stdout(text.as_bytes())
}

/// Left-aligned columns separated by two spaces, header first.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::new();
        for (cell, w) in cells.zip(&widths) {
            text.push_str(&format!("{cell:<w$}  "));
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&mut header.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}
