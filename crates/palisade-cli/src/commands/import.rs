//! `palisade import django FILE [--format json|csv]`: users exported from Django, with
//! their password hashes kept byte for byte (they verify at login and are re-hashed then).
//!
//! All or nothing: every row is parsed and checked first (valid username and e-mail, a hash
//! whose format palisade knows, no duplicate inside the file or against existing accounts),
//! and only a clean file is written, in one transaction. A bad row is reported as
//! `FILE:LINE: reason` (CSV) or `FILE: object N: reason` (JSON, N counted from 0 as in the
//! list `dumpdata` writes), with the number of further bad rows on the same line.

use std::collections::HashMap;
use std::path::Path;

use palisade_core::{Email, NewUser, StoreError, Timestamp, UserStore, Username};
use palisade_crypto::password::{algorithm_of, is_usable};
use serde_json::{Value, json};

use crate::cli::{GlobalOpts, ImportCommand, ImportFormat};
use crate::error::{CliError, CliResult};
use crate::io::{open_input, print_stdout, read_limited};

use super::admin::{Admin, now, parse_iso};

/// Largest import file read (a million Django users is about 300 MB of JSON; larger exports
/// can be split).
const IMPORT_LIMIT: u64 = 1024 * 1024 * 1024;

pub fn run(global: GlobalOpts, command: ImportCommand) -> CliResult<u8> {
    let ImportCommand::Django { file, format } = command;
    let format = match format {
        Some(f) => f,
        None => format_from_extension(&file)?,
    };
    // Parse before touching the database: a malformed file needs no data directory.
    let input = open_input(Some(&file))?;
    let bytes = read_limited(input, IMPORT_LIMIT, "import file")?;
    let name = file.display().to_string();
    let text = String::from_utf8(bytes)
        .map_err(|_| CliError::usage(format!("{name}: the file is not valid UTF-8")))?;
    let parsed = match format {
        ImportFormat::Json => parse_json(&text),
        ImportFormat::Csv => parse_csv(&text),
    }
    .map_err(|e| CliError::usage(format!("{name}: {e}")))?;

    let admin = Admin::open(global)?;
    let result = import(&admin, &name, &file, parsed);
    admin.close();
    result.map(|()| 0)
}

fn format_from_extension(file: &Path) -> CliResult<ImportFormat> {
    match file
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("json") => Ok(ImportFormat::Json),
        Some("csv") => Ok(ImportFormat::Csv),
        _ => Err(CliError::usage(format!(
            "{}: cannot tell the format from the file name; use --format json or --format csv",
            file.display()
        ))),
    }
}

/// Where a row came from, for messages.
#[derive(Debug, Clone, Copy)]
enum Place {
    Line(usize),
    Object(usize),
}

/// One user row after parsing, or why it is bad.
#[derive(Debug)]
struct Row {
    place: Place,
    user: Result<(NewUser, Option<Timestamp>), String>,
}

#[derive(Debug, Default)]
struct Parsed {
    rows: Vec<Row>,
    groups: usize,
}

fn import(admin: &Admin, name: &str, file: &Path, parsed: Parsed) -> CliResult<()> {
    let Parsed { mut rows, groups } = parsed;
    // Duplicates inside the file, then against the database.
    let mut seen: HashMap<String, Place> = HashMap::new();
    for row in &mut rows {
        let Ok((user, _)) = &row.user else { continue };
        let canonical = user.username.canonical().to_owned();
        if let Some(first) = seen.get(&canonical) {
            let at = match first {
                Place::Line(n) => format!("line {n}"),
                Place::Object(n) => format!("object {n}"),
            };
            row.user = Err(format!(
                "duplicate username {} (also at {at})",
                user.username
            ));
            continue;
        }
        seen.insert(canonical, row.place);
        let existing = admin
            .block_on(admin.store.get_by_username(&user.username))
            .map_err(|e| admin.store_err(&e))?;
        if existing.is_some() {
            row.user = Err(format!("{}: username already taken", user.username));
        }
    }
    let mut bad = rows.iter().filter_map(|r| match &r.user {
        Err(reason) => Some((r.place, reason)),
        Ok(_) => None,
    });
    if let Some((place, reason)) = bad.next() {
        let others = bad.count();
        let at = match place {
            Place::Line(n) => format!("{name}:{n}: "),
            Place::Object(n) => format!("{name}: object {n}: "),
        };
        let more = match others {
            0 => String::new(),
            1 => " (and 1 more bad row)".to_owned(),
            n => format!(" (and {n} more bad rows)"),
        };
        return Err(CliError::usage(format!(
            "{at}{reason}{more}; nothing was imported"
        )));
    }
    let users: Vec<(NewUser, Option<Timestamp>)> =
        rows.into_iter().filter_map(|r| r.user.ok()).collect();
    let count = admin
        .block_on(admin.store.import_users(users))
        .map_err(|e| match e {
            StoreError::Conflict => CliError::usage(format!(
                "{name}: a username was taken while importing; nothing was imported"
            )),
            e => admin.store_err(&e),
        })?;
    let file_name = file
        .file_name()
        .map_or_else(|| name.to_owned(), |f| f.to_string_lossy().into_owned());
    admin.audit(
        "user.import",
        None,
        json!({"count": count, "file": file_name, "groups_skipped": groups}),
    )?;
    print_stdout(
        format!(
            "imported {count} users ({groups} groups skipped: group storage comes with authorization)\n"
        )
        .as_bytes(),
    )
}

/// The fields of one account, however the file spelled them.
#[derive(Debug, Default)]
struct Fields<'a> {
    username: Option<&'a str>,
    email: Option<&'a str>,
    password: Option<&'a str>,
    first_name: Option<&'a str>,
    last_name: Option<&'a str>,
    is_active: Option<bool>,
    is_staff: Option<bool>,
    is_superuser: Option<bool>,
    date_joined: Option<Timestamp>,
    last_login: Option<Timestamp>,
}

/// Checks one account's fields; the error is the reason shown for the row.
fn build_user(f: Fields<'_>) -> Result<(NewUser, Option<Timestamp>), String> {
    let raw_username = f.username.ok_or("no username")?;
    let username = Username::parse(raw_username).map_err(|e| format!("{raw_username:?}: {e}"))?;
    let email = match f.email.map(str::trim) {
        None | Some("") => None,
        Some(raw) => Some(Email::parse(raw).map_err(|e| format!("{raw:?}: {e}"))?),
    };
    let hash = f.password.ok_or("no password")?;
    // An unusable password (`!…`) is kept unusable; anything else must be a format palisade
    // can verify, or the account could never log in and the row is better refused now.
    if hash.is_empty() {
        return Err("empty password hash".to_owned());
    }
    if is_usable(hash) && algorithm_of(hash).is_none() {
        return Err("unknown password hash format".to_owned());
    }
    let mut new = NewUser::new(
        username,
        email,
        hash.to_owned(),
        f.date_joined.unwrap_or_else(now),
    );
    new.first_name = f.first_name.unwrap_or_default().to_owned();
    new.last_name = f.last_name.unwrap_or_default().to_owned();
    new.is_active = f.is_active.unwrap_or(true);
    new.is_staff = f.is_staff.unwrap_or(false);
    new.is_superuser = f.is_superuser.unwrap_or(false);
    Ok((new, f.last_login))
}

fn parse_json(text: &str) -> Result<Parsed, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
    let Value::Array(objects) = value else {
        return Err("expected a JSON list, as manage.py dumpdata writes".to_owned());
    };
    let mut parsed = Parsed::default();
    for (index, object) in objects.iter().enumerate() {
        let place = Place::Object(index);
        match object.get("model").and_then(Value::as_str) {
            Some("auth.group") => parsed.groups += 1,
            Some("auth.user") => parsed.rows.push(Row {
                place,
                user: json_user(object.get("fields")),
            }),
            Some(other) => parsed.rows.push(Row {
                place,
                user: Err(format!(
                    "unexpected model {other:?} (expected auth.user or auth.group)"
                )),
            }),
            None => parsed.rows.push(Row {
                place,
                user: Err("not a dumpdata object (no \"model\")".to_owned()),
            }),
        }
    }
    Ok(parsed)
}

fn json_user(fields: Option<&Value>) -> Result<(NewUser, Option<Timestamp>), String> {
    let fields = fields.ok_or("no \"fields\"")?;
    let string = |key: &str| -> Result<Option<&str>, String> {
        match fields.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(format!("{key} is not a string")),
        }
    };
    let boolean = |key: &str| -> Result<Option<bool>, String> {
        match fields.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(format!("{key} is not true or false")),
        }
    };
    let time = |key: &str| -> Result<Option<Timestamp>, String> {
        string(key)?
            .map(|s| parse_iso(s).ok_or_else(|| format!("{key} {s:?} is not an ISO 8601 time")))
            .transpose()
    };
    build_user(Fields {
        username: string("username")?,
        email: string("email")?,
        password: string("password")?,
        first_name: string("first_name")?,
        last_name: string("last_name")?,
        is_active: boolean("is_active")?,
        is_staff: boolean("is_staff")?,
        is_superuser: boolean("is_superuser")?,
        date_joined: time("date_joined")?,
        last_login: time("last_login")?,
    })
}

/// Columns a CSV file may have; `username` and `password` are required.
const CSV_COLUMNS: [&str; 8] = [
    "username",
    "email",
    "password",
    "is_active",
    "is_staff",
    "is_superuser",
    "first_name",
    "last_name",
];

fn parse_csv(text: &str) -> Result<Parsed, String> {
    let mut lines = text.lines().enumerate();
    let Some((_, header)) = lines.next() else {
        return Err("empty file (expected the header username,email,password,…)".to_owned());
    };
    let header = split_csv_line(header.trim_start_matches('\u{feff}'))
        .map_err(|e| format!("line 1: {e}"))?;
    let mut columns: HashMap<&str, usize> = HashMap::new();
    for (i, name) in header.iter().enumerate() {
        let name = name.trim();
        let Some(known) = CSV_COLUMNS.iter().find(|c| **c == name) else {
            return Err(format!(
                "line 1: unknown column {name:?} (expected {})",
                CSV_COLUMNS.join(",")
            ));
        };
        if columns.insert(known, i).is_some() {
            return Err(format!("line 1: column {name:?} appears twice"));
        }
    }
    for required in ["username", "password"] {
        if !columns.contains_key(required) {
            return Err(format!("line 1: no {required} column"));
        }
    }
    let mut parsed = Parsed::default();
    for (index, line) in lines {
        let line_no = index.saturating_add(1);
        if line.trim().is_empty() {
            continue;
        }
        let user = split_csv_line(line).and_then(|cells| {
            if cells.len() != header.len() {
                return Err(format!(
                    "{} fields, but the header has {}",
                    cells.len(),
                    header.len()
                ));
            }
            let cell = |name: &str| columns.get(name).and_then(|&i| cells.get(i));
            let text = |name: &str| cell(name).map(String::as_str);
            let boolean = |name: &str| cell(name).map(|v| parse_bool(name, v)).transpose();
            build_user(Fields {
                username: text("username"),
                email: text("email"),
                password: text("password"),
                first_name: text("first_name"),
                last_name: text("last_name"),
                is_active: boolean("is_active")?,
                is_staff: boolean("is_staff")?,
                is_superuser: boolean("is_superuser")?,
                date_joined: None,
                last_login: None,
            })
        });
        parsed.rows.push(Row {
            place: Place::Line(line_no),
            user,
        });
    }
    Ok(parsed)
}

fn parse_bool(name: &str, value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(format!(
            "{name} {value:?} is not a boolean (true/false/1/0)"
        )),
    }
}

/// One line of RFC 4180 CSV: fields separated by commas, optionally in double quotes with
/// `""` for a quote. Fields spanning lines are not supported (no column here needs them).
fn split_csv_line(line: &str) -> Result<Vec<String>, String> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                    None => return Err("unterminated quoted field".to_owned()),
                }
            }
            match chars.next() {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(',') => fields.push(field),
                Some(_) => return Err("text after a closing quote".to_owned()),
            }
        } else {
            loop {
                match chars.next() {
                    Some(',') => break,
                    Some('"') => return Err("a quote inside an unquoted field".to_owned()),
                    Some(c) => field.push(c),
                    None => {
                        fields.push(field);
                        return Ok(fields);
                    }
                }
            }
            fields.push(field);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_lines_split() {
        assert_eq!(split_csv_line("a,b,,c").unwrap(), vec!["a", "b", "", "c"]);
        assert_eq!(
            split_csv_line("\"a,b\",\"x\"\"y\",z\r").unwrap(),
            vec!["a,b", "x\"y", "z"]
        );
        assert!(split_csv_line("\"open").is_err());
        assert!(split_csv_line("a\"b").is_err());
    }

    #[test]
    fn csv_rows_are_checked() {
        let text = "username,email,password,is_active,is_staff,is_superuser\n\
                    alice,a@example.com,pbkdf2_sha256$1000$salt$aGFzaA==,True,0,false\n\
                    bad name,,pbkdf2_sha256$1$s$h,1,0,0\n\
                    carol,,!unusable,1,1,1\n\
                    dave,,rot13$zzz,1,0,0\n";
        let parsed = parse_csv(text).unwrap();
        assert_eq!(parsed.rows.len(), 4);
        assert!(parsed.rows[0].user.is_ok());
        assert!(matches!(parsed.rows[1].place, Place::Line(3)));
        assert!(parsed.rows[1].user.is_err());
        let (carol, _) = parsed.rows[2].user.as_ref().unwrap();
        assert!(carol.is_superuser && carol.email.is_none());
        assert_eq!(
            parsed.rows[3].user.as_ref().unwrap_err(),
            "unknown password hash format"
        );
        assert!(parse_csv("user,password\n").is_err());
    }
}
