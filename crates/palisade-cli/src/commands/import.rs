//! `palisade import django FILE [--format json|csv]`: users exported from Django, with
//! their password hashes kept byte for byte (they verify at login and are re-hashed then),
//! their groups and their direct permissions.
//!
//! All or nothing: every row is parsed and checked first (valid username and e-mail, a hash
//! whose format palisade knows, no duplicate inside the file or against existing accounts,
//! every group and permission reference resolvable), and only a clean file is written, in
//! one transaction with the groups, permissions, memberships and grants. A bad row is
//! reported as `FILE:LINE: reason` (CSV) or `FILE: object N: reason` (JSON, N counted from
//! 0 as in the list `dumpdata` writes), with the number of further bad rows on the same line.
//!
//! ## Groups and permissions
//! A Django permission becomes the palisade permission `app_label.codename` (the string
//! Django's `has_perm` takes); the model half of Django's natural key only picks the
//! description. A permission palisade has not registered yet is created, described by
//! Django's `name` when the file holds its `auth.permission` object, else "Imported from
//! Django"; a registered one is reused as it is. Only permissions someone in the file holds
//! are registered: a full `auth.permission` dump is mostly Django's own models' permissions,
//! and serves here as the table that resolves primary keys.
//!
//! JSON references come in Django's two shapes. With `dumpdata --natural-foreign` a group
//! is `["name"]` and a permission `["codename", "app_label", "model"]`; without it both are
//! primary keys, resolved against the `auth.group`, `auth.permission` and
//! `contenttypes.contenttype` objects of the same file. A key the file cannot resolve makes
//! the row bad, and the reason names `--natural-foreign`, the export that needs no tables.
//! A group a JSON user names must be in the file or exist in palisade already: a dump
//! without it would lose the group's permissions silently. CSV cannot define groups, so a
//! group a CSV row names is created (without permissions) when palisade has none by that
//! name.
//!
//! A group whose name exists in palisade already is reused rather than refused: it keeps
//! its members and permissions, gains the imported ones, and the output says how many groups
//! were reused. Importing is adding; taking a permission away is a separate, explicit
//! `group revoke`.
//!
//! CSV cells `groups` and `user_permissions` each hold a JSON list of strings
//! (`["staff", "editors, senior"]`; empty means none): Django's group names may contain any
//! printable character, commas and spaces included, so no plain separator is unambiguous.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use palisade_core::{
    AuthzStore, Email, GroupName, NewUser, Permission, PermissionInfo, StoreError, Timestamp,
    UserStore, Username,
};
use palisade_crypto::password::{algorithm_of, is_usable};
use palisade_store::{ImportBatch, ImportCounts, ImportedGroup, ImportedUser};
use serde_json::{Value, json};

use crate::cli::{GlobalOpts, ImportCommand, ImportFormat};
use crate::error::{CliError, CliResult};
use crate::io::{open_input, print_stdout, read_limited};

use super::admin::{Admin, now, parse_iso};

/// Largest import file read (a million Django users is about 300 MB of JSON; larger exports
/// can be split).
const IMPORT_LIMIT: u64 = 1024 * 1024 * 1024;

/// Description of a permission created by an import when the file does not name it.
const DEFAULT_DESCRIPTION: &str = "Imported from Django";
/// Longest description palisade keeps (Django's `Permission.name` `max_length` too).
const DESCRIPTION_MAX_CHARS: usize = 255;

/// The fix offered for a primary key the file cannot resolve.
const NATURAL_HINT: &str = "export with `manage.py dumpdata auth.user auth.group \
     --natural-foreign --natural-primary`, or include auth.permission and \
     contenttypes.contenttype in the dump";

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

impl Place {
    /// `FILE:LINE: ` or `FILE: object N: `, before a bad row's reason.
    fn prefix(self, file: &str) -> String {
        match self {
            Place::Line(n) => format!("{file}:{n}: "),
            Place::Object(n) => format!("{file}: object {n}: "),
        }
    }

    fn describe(self) -> String {
        match self {
            Place::Line(n) => format!("line {n}"),
            Place::Object(n) => format!("object {n}"),
        }
    }
}

/// A group as a user row names it.
#[derive(Debug, Clone)]
enum GroupRef {
    /// A natural key `["name"]`, or a CSV cell's name.
    Name(String),
    Pk(i64),
}

/// A permission as a user or group names it.
#[derive(Debug, Clone)]
enum PermRef {
    /// `["codename", "app_label", "model"]`.
    Natural {
        codename: String,
        app_label: String,
        model: String,
    },
    Pk(i64),
    /// `app_label.codename`, from a CSV cell.
    Name(String),
}

/// A permission's content type, as an `auth.permission` object names it.
#[derive(Debug, Clone)]
enum ContentTypeRef {
    Natural { app_label: String, model: String },
    Pk(i64),
}

#[derive(Debug)]
struct UserRow {
    user: NewUser,
    last_login: Option<Timestamp>,
    groups: Vec<GroupRef>,
    permissions: Vec<PermRef>,
}

#[derive(Debug)]
struct GroupDef {
    pk: Option<i64>,
    name: GroupName,
    permissions: Vec<PermRef>,
}

/// An `auth.permission` object. The codename is kept as text: only a permission someone
/// holds must be a valid palisade name, so a Django custom permission nobody in the file
/// holds cannot fail the import.
#[derive(Debug)]
struct PermDef {
    pk: Option<i64>,
    codename: String,
    content_type: ContentTypeRef,
    name: Option<String>,
}

#[derive(Debug)]
struct ContentTypeDef {
    pk: Option<i64>,
    app_label: String,
    model: String,
}

#[derive(Debug)]
enum Item {
    User(UserRow),
    Group(GroupDef),
    Permission(PermDef),
    ContentType(ContentTypeDef),
}

/// One object or line after parsing, or why it is bad.
#[derive(Debug)]
struct Entry {
    place: Place,
    item: Result<Item, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Json,
    Csv,
}

#[derive(Debug)]
struct Parsed {
    source: Source,
    entries: Vec<Entry>,
}

/// An `auth.permission` object with its content type resolved: app label, codename and
/// Django's name; or why the content type did not resolve.
type ResolvedPermission = Result<(String, String, Option<String>), String>;

/// What a JSON file defines besides users, for resolving the references of its rows.
#[derive(Debug, Default)]
struct Tables {
    content_types: HashMap<i64, (String, String)>,
    permissions_by_pk: HashMap<i64, ResolvedPermission>,
    /// (app_label, model, codename) → Django's name, for descriptions.
    names: HashMap<(String, String, String), String>,
    groups_by_pk: HashMap<i64, GroupName>,
    groups_in_file: HashSet<GroupName>,
}

impl Tables {
    /// Builds the tables; a second object with the same key is refused, since a reference
    /// to it would be ambiguous.
    fn build(entries: &mut [Entry]) -> Self {
        let mut tables = Tables::default();
        let mut content_type_at: HashMap<i64, Place> = HashMap::new();
        for entry in entries.iter_mut() {
            let Ok(Item::ContentType(ct)) = &entry.item else {
                continue;
            };
            if let Some(pk) = ct.pk {
                if let Some(first) = content_type_at.get(&pk) {
                    entry.item = Err(format!(
                        "duplicate content type pk {pk} (also at {})",
                        first.describe()
                    ));
                    continue;
                }
                content_type_at.insert(pk, entry.place);
                tables
                    .content_types
                    .insert(pk, (ct.app_label.clone(), ct.model.clone()));
            }
        }
        let mut permission_at: HashMap<i64, Place> = HashMap::new();
        for entry in entries.iter_mut() {
            let Ok(Item::Permission(p)) = &entry.item else {
                continue;
            };
            let content_type = match &p.content_type {
                ContentTypeRef::Natural { app_label, model } => {
                    Ok((app_label.clone(), model.clone()))
                }
                ContentTypeRef::Pk(ct) => tables.content_types.get(ct).cloned().ok_or_else(|| {
                    format!(
                        "content type {ct} is a primary key and the file has no \
                         contenttypes.contenttype object with it ({NATURAL_HINT})"
                    )
                }),
            };
            if let Ok((app_label, model)) = &content_type
                && let Some(name) = &p.name
            {
                tables.names.insert(
                    (app_label.clone(), model.clone(), p.codename.clone()),
                    name.clone(),
                );
            }
            if let Some(pk) = p.pk {
                if let Some(first) = permission_at.get(&pk) {
                    entry.item = Err(format!(
                        "duplicate permission pk {pk} (also at {})",
                        first.describe()
                    ));
                    continue;
                }
                permission_at.insert(pk, entry.place);
                let resolved = content_type
                    .map(|(app_label, _)| (app_label, p.codename.clone(), p.name.clone()));
                tables.permissions_by_pk.insert(pk, resolved);
            }
        }
        let mut group_at: HashMap<GroupName, Place> = HashMap::new();
        let mut group_pk_at: HashMap<i64, Place> = HashMap::new();
        for entry in entries.iter_mut() {
            let Ok(Item::Group(g)) = &entry.item else {
                continue;
            };
            if let Some(first) = group_at.get(&g.name) {
                entry.item = Err(format!(
                    "duplicate group {} (also at {})",
                    g.name,
                    first.describe()
                ));
                continue;
            }
            if let Some(pk) = g.pk {
                if let Some(first) = group_pk_at.get(&pk) {
                    entry.item = Err(format!(
                        "duplicate group pk {pk} (also at {})",
                        first.describe()
                    ));
                    continue;
                }
                group_pk_at.insert(pk, entry.place);
                tables.groups_by_pk.insert(pk, g.name.clone());
            }
            group_at.insert(g.name.clone(), entry.place);
            tables.groups_in_file.insert(g.name.clone());
        }
        tables
    }

    /// The palisade permission a reference names, with the description Django gave it.
    fn permission(&self, reference: &PermRef) -> Result<(Permission, Option<String>), String> {
        match reference {
            PermRef::Natural {
                codename,
                app_label,
                model,
            } => {
                let permission = Permission::new(app_label, codename)
                    .map_err(|e| format!("permission {app_label}.{codename}: {e}"))?;
                let name = self
                    .names
                    .get(&(app_label.clone(), model.clone(), codename.clone()))
                    .cloned();
                Ok((permission, name))
            }
            PermRef::Pk(pk) => {
                let (app_label, codename, name) = self
                    .permissions_by_pk
                    .get(pk)
                    .ok_or_else(|| {
                        format!(
                            "permission {pk} is a primary key and the file has no \
                             auth.permission object with it ({NATURAL_HINT})"
                        )
                    })?
                    .as_ref()
                    .map_err(|e| format!("permission {pk}: {e}"))?;
                let permission = Permission::new(app_label, codename)
                    .map_err(|e| format!("permission {app_label}.{codename}: {e}"))?;
                Ok((permission, name.clone()))
            }
            PermRef::Name(text) => Permission::parse(text.trim())
                .map(|p| (p, None))
                .map_err(|e| format!("permission {text:?}: {e}")),
        }
    }
}

fn import(admin: &Admin, name: &str, file: &Path, parsed: Parsed) -> CliResult<()> {
    let Parsed {
        source,
        mut entries,
    } = parsed;
    let tables = Tables::build(&mut entries);
    let existing_groups: HashSet<GroupName> = admin
        .block_on(admin.store.list_groups())
        .map_err(|e| admin.store_err(&e))?
        .into_iter()
        .map(|g| g.name)
        .collect();

    // Every reference, then duplicates inside the file and against the database; each
    // problem marks its own row, so the report counts every bad row.
    let mut descriptions: BTreeMap<Permission, String> = BTreeMap::new();
    let mut groups: Vec<ImportedGroup> = Vec::new();
    let mut users: Vec<ImportedUser> = Vec::new();
    let mut bad: Vec<(Place, String)> = Vec::new();
    let mut seen: HashMap<String, Place> = HashMap::new();
    for entry in entries {
        let place = entry.place;
        let resolved = entry.item.and_then(|item| match item {
            Item::User(row) => {
                resolve_user(row, source, &tables, &existing_groups, &mut seen, place)
                    .map(|(user, found)| (Some(Ready::User(user)), found))
            }
            Item::Group(def) => {
                resolve_group(def, &tables).map(|(group, found)| (Some(Ready::Group(group)), found))
            }
            Item::Permission(_) | Item::ContentType(_) => Ok((None, Vec::new())),
        });
        match resolved {
            Err(reason) => bad.push((place, reason)),
            Ok((ready, found)) => {
                for (permission, description) in found {
                    note_description(&mut descriptions, permission, description);
                }
                match ready {
                    Some(Ready::User(user)) => {
                        // Last, as it asks the database: a row bad for another reason costs
                        // no query.
                        let taken = admin
                            .block_on(admin.store.get_by_username(&user.user.username))
                            .map_err(|e| admin.store_err(&e))?;
                        if taken.is_some() {
                            bad.push((
                                place,
                                format!("{}: username already taken", user.user.username),
                            ));
                        } else {
                            users.push(user);
                        }
                    }
                    Some(Ready::Group(group)) => groups.push(group),
                    None => {}
                }
            }
        }
    }
    if let Some(((place, reason), others)) = bad.split_first().map(|(f, rest)| (f, rest.len())) {
        let at = place.prefix(name);
        let more = match others {
            0 => String::new(),
            1 => " (and 1 more bad row)".to_owned(),
            n => format!(" (and {n} more bad rows)"),
        };
        return Err(CliError::usage(format!(
            "{at}{reason}{more}; nothing was imported"
        )));
    }

    // Groups the users name but the file does not define: existing ones (reused) and, from
    // CSV, new ones. Listed in the batch so the store creates or finds them up front.
    let mut in_batch: HashSet<GroupName> = groups.iter().map(|g| g.name.clone()).collect();
    for user in &users {
        for group in &user.groups {
            if in_batch.insert(group.clone()) {
                groups.push(ImportedGroup {
                    name: group.clone(),
                    permissions: Vec::new(),
                });
            }
        }
    }
    let batch = ImportBatch {
        permissions: descriptions
            .into_iter()
            .map(|(permission, description)| PermissionInfo {
                permission,
                description,
            })
            .collect(),
        groups,
        users,
    };
    let counts = admin
        .block_on(admin.store.import_batch(&batch))
        .map_err(|e| match e {
            StoreError::Conflict => CliError::usage(format!(
                "{name}: a username was taken while importing; nothing was imported"
            )),
            StoreError::NotFound => CliError::usage(format!(
                "{name}: a group or permission was deleted while importing; nothing was imported"
            )),
            e => admin.store_err(&e),
        })?;
    let file_name = file
        .file_name()
        .map_or_else(|| name.to_owned(), |f| f.to_string_lossy().into_owned());
    admin.audit(
        "user.import",
        None,
        json!({
            "count": counts.users,
            "file": file_name,
            "groups_created": counts.groups_created,
            "groups_existing": counts.groups_existing,
            "permissions_created": counts.permissions_created,
            "memberships": counts.memberships,
            "group_grants": counts.group_grants,
            "user_grants": counts.user_grants,
        }),
    )?;
    print_stdout(format!("{}\n", summary(&counts)).as_bytes())
}

enum Ready {
    User(ImportedUser),
    Group(ImportedGroup),
}

/// Keeps the description Django gave a permission; the default only when no reference
/// found one.
fn note_description(
    descriptions: &mut BTreeMap<Permission, String>,
    permission: Permission,
    description: Option<String>,
) {
    let description = description
        .map(|d| {
            d.trim()
                .chars()
                .take(DESCRIPTION_MAX_CHARS)
                .collect::<String>()
        })
        .filter(|d| !d.is_empty());
    match (descriptions.get_mut(&permission), description) {
        (Some(existing), Some(d)) if existing == DEFAULT_DESCRIPTION => *existing = d,
        (Some(_), _) => {}
        (None, d) => {
            descriptions.insert(
                permission,
                d.unwrap_or_else(|| DEFAULT_DESCRIPTION.to_owned()),
            );
        }
    }
}

type Found = Vec<(Permission, Option<String>)>;

fn resolve_permissions(
    references: &[PermRef],
    tables: &Tables,
) -> Result<(Vec<Permission>, Found), String> {
    let mut permissions = Vec::with_capacity(references.len());
    let mut found = Vec::with_capacity(references.len());
    for reference in references {
        let (permission, description) = tables.permission(reference)?;
        if !permissions.contains(&permission) {
            permissions.push(permission.clone());
        }
        found.push((permission, description));
    }
    Ok((permissions, found))
}

fn resolve_group(def: GroupDef, tables: &Tables) -> Result<(ImportedGroup, Found), String> {
    let (permissions, found) = resolve_permissions(&def.permissions, tables)
        .map_err(|e| format!("group {}: {e}", def.name))?;
    Ok((
        ImportedGroup {
            name: def.name,
            permissions,
        },
        found,
    ))
}

fn resolve_user(
    row: UserRow,
    source: Source,
    tables: &Tables,
    existing_groups: &HashSet<GroupName>,
    seen: &mut HashMap<String, Place>,
    place: Place,
) -> Result<(ImportedUser, Found), String> {
    let UserRow {
        user,
        last_login,
        groups: group_refs,
        permissions: perm_refs,
    } = row;
    let canonical = user.username.canonical().to_owned();
    if let Some(first) = seen.get(&canonical) {
        return Err(format!(
            "duplicate username {} (also at {})",
            user.username,
            first.describe()
        ));
    }
    seen.insert(canonical, place);
    let mut groups: Vec<GroupName> = Vec::with_capacity(group_refs.len());
    for reference in &group_refs {
        let group = match reference {
            GroupRef::Pk(pk) => tables.groups_by_pk.get(pk).cloned().ok_or_else(|| {
                format!(
                    "group {pk} is a primary key and the file has no auth.group object \
                     with it ({NATURAL_HINT})"
                )
            })?,
            GroupRef::Name(text) => {
                let group = GroupName::parse(text).map_err(|e| format!("group {text:?}: {e}"))?;
                if source == Source::Json
                    && !tables.groups_in_file.contains(&group)
                    && !existing_groups.contains(&group)
                {
                    return Err(format!(
                        "group {group} is neither in the file nor in palisade (dump auth.group \
                         with the users, or `palisade group create` it first)"
                    ));
                }
                group
            }
        };
        if !groups.contains(&group) {
            groups.push(group);
        }
    }
    let (permissions, found) = resolve_permissions(&perm_refs, tables)?;
    Ok((
        ImportedUser {
            user,
            last_login,
            groups,
            permissions,
        },
        found,
    ))
}

/// The one line a successful import prints.
fn summary(c: &ImportCounts) -> String {
    let groups = c.groups_created.saturating_add(c.groups_existing);
    let mut line = format!(
        "imported {}, {}",
        plural(c.users, "user", "users"),
        plural(groups, "group", "groups")
    );
    if c.groups_existing > 0 {
        line.push_str(&format!(
            " ({} new, {} existing reused: imported permissions added)",
            c.groups_created, c.groups_existing
        ));
    }
    let grants = c.group_grants.saturating_add(c.user_grants);
    line.push_str(&format!(
        ", {} created, {}, {} ({} to groups, {} to users)",
        plural(c.permissions_created, "permission", "permissions"),
        plural(c.memberships, "membership", "memberships"),
        plural(grants, "grant", "grants"),
        c.group_grants,
        c.user_grants
    ));
    line
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
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

/// Models a dump may hold; anything else is refused rather than silently dropped.
const JSON_MODELS: &str = "auth.user, auth.group, auth.permission or contenttypes.contenttype";

fn parse_json(text: &str) -> Result<Parsed, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
    let Value::Array(objects) = value else {
        return Err("expected a JSON list, as manage.py dumpdata writes".to_owned());
    };
    let mut entries = Vec::with_capacity(objects.len());
    for (index, object) in objects.iter().enumerate() {
        let item = match object.get("model").and_then(Value::as_str) {
            Some("auth.user") => json_user(object.get("fields")),
            Some("auth.group") => json_group(object),
            Some("auth.permission") => json_permission(object),
            Some("contenttypes.contenttype") => json_content_type(object),
            Some(other) => Err(format!(
                "unexpected model {other:?} (expected {JSON_MODELS})"
            )),
            None => Err("not a dumpdata object (no \"model\")".to_owned()),
        };
        entries.push(Entry {
            place: Place::Object(index),
            item,
        });
    }
    Ok(Parsed {
        source: Source::Json,
        entries,
    })
}

/// An object's `pk`: absent (a `--natural-primary` dump) or an integer.
fn json_pk(object: &Value) -> Result<Option<i64>, String> {
    match object.get("pk") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .map(Some)
            .ok_or_else(|| format!("pk {v} is not an integer")),
    }
}

/// Typed access to an object's `fields`; the errors name the field.
struct JsonFields<'a>(&'a Value);

impl<'a> JsonFields<'a> {
    fn of(fields: Option<&'a Value>) -> Result<Self, String> {
        match fields {
            Some(v @ Value::Object(_)) => Ok(Self(v)),
            Some(_) => Err("\"fields\" is not an object".to_owned()),
            None => Err("no \"fields\"".to_owned()),
        }
    }

    fn string(&self, key: &str) -> Result<Option<&'a str>, String> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(format!("{key} is not a string")),
        }
    }

    fn required(&self, key: &str) -> Result<&'a str, String> {
        self.string(key)?.ok_or_else(|| format!("no {key}"))
    }

    fn boolean(&self, key: &str) -> Result<Option<bool>, String> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(format!("{key} is not true or false")),
        }
    }

    fn time(&self, key: &str) -> Result<Option<Timestamp>, String> {
        self.string(key)?
            .map(|s| parse_iso(s).ok_or_else(|| format!("{key} {s:?} is not an ISO 8601 time")))
            .transpose()
    }

    /// A list field, each entry parsed by `one`; absent or null is empty.
    fn list<T>(
        &self,
        key: &str,
        one: impl Fn(&Value) -> Option<T>,
        expected: &str,
    ) -> Result<Vec<T>, String> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| one(v).ok_or_else(|| format!("{key}: {v} is not {expected}")))
                .collect(),
            Some(_) => Err(format!("{key} is not a list")),
        }
    }
}

/// The strings of a natural key of exactly `N` parts.
fn natural_key<const N: usize>(value: &Value) -> Option<[String; N]> {
    let items = value.as_array()?;
    let parts: Vec<String> = items
        .iter()
        .map(|v| v.as_str().map(str::to_owned))
        .collect::<Option<_>>()?;
    parts.try_into().ok()
}

fn group_ref(value: &Value) -> Option<GroupRef> {
    if let Some(pk) = value.as_i64() {
        return Some(GroupRef::Pk(pk));
    }
    natural_key::<1>(value).map(|[name]| GroupRef::Name(name))
}

fn perm_ref(value: &Value) -> Option<PermRef> {
    if let Some(pk) = value.as_i64() {
        return Some(PermRef::Pk(pk));
    }
    natural_key::<3>(value).map(|[codename, app_label, model]| PermRef::Natural {
        codename,
        app_label,
        model,
    })
}

const GROUP_REF: &str = "a group pk or a natural key [\"name\"]";
const PERM_REF: &str = "a permission pk or a natural key [\"codename\", \"app_label\", \"model\"]";

fn json_user(fields: Option<&Value>) -> Result<Item, String> {
    let f = JsonFields::of(fields)?;
    let (user, last_login) = build_user(Fields {
        username: f.string("username")?,
        email: f.string("email")?,
        password: f.string("password")?,
        first_name: f.string("first_name")?,
        last_name: f.string("last_name")?,
        is_active: f.boolean("is_active")?,
        is_staff: f.boolean("is_staff")?,
        is_superuser: f.boolean("is_superuser")?,
        date_joined: f.time("date_joined")?,
        last_login: f.time("last_login")?,
    })?;
    Ok(Item::User(UserRow {
        user,
        last_login,
        groups: f.list("groups", group_ref, GROUP_REF)?,
        permissions: f.list("user_permissions", perm_ref, PERM_REF)?,
    }))
}

fn json_group(object: &Value) -> Result<Item, String> {
    let pk = json_pk(object)?;
    let f = JsonFields::of(object.get("fields"))?;
    let raw = f.required("name")?;
    let name = GroupName::parse(raw).map_err(|e| format!("group {raw:?}: {e}"))?;
    Ok(Item::Group(GroupDef {
        pk,
        name,
        permissions: f.list("permissions", perm_ref, PERM_REF)?,
    }))
}

fn json_permission(object: &Value) -> Result<Item, String> {
    let pk = json_pk(object)?;
    let f = JsonFields::of(object.get("fields"))?;
    let content_type = match f.0.get("content_type") {
        Some(v) => match (v.as_i64(), natural_key::<2>(v)) {
            (Some(pk), _) => ContentTypeRef::Pk(pk),
            (None, Some([app_label, model])) => ContentTypeRef::Natural { app_label, model },
            (None, None) => {
                return Err(format!(
                    "content_type: {v} is not a pk or a natural key [\"app_label\", \"model\"]"
                ));
            }
        },
        None => return Err("no content_type".to_owned()),
    };
    Ok(Item::Permission(PermDef {
        pk,
        codename: f.required("codename")?.to_owned(),
        content_type,
        name: f.string("name")?.map(str::to_owned),
    }))
}

fn json_content_type(object: &Value) -> Result<Item, String> {
    let pk = json_pk(object)?;
    let f = JsonFields::of(object.get("fields"))?;
    Ok(Item::ContentType(ContentTypeDef {
        pk,
        app_label: f.required("app_label")?.to_owned(),
        model: f.required("model")?.to_owned(),
    }))
}

/// Columns a CSV file may have; `username` and `password` are required.
const CSV_COLUMNS: [&str; 10] = [
    "username",
    "email",
    "password",
    "is_active",
    "is_staff",
    "is_superuser",
    "first_name",
    "last_name",
    "groups",
    "user_permissions",
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
    let mut entries = Vec::new();
    for (index, line) in lines {
        let line_no = index.saturating_add(1);
        if line.trim().is_empty() {
            continue;
        }
        let item = split_csv_line(line).and_then(|cells| {
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
            let (user, last_login) = build_user(Fields {
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
            })?;
            let groups = csv_list("groups", text("groups"))?;
            let permissions = csv_list("user_permissions", text("user_permissions"))?;
            Ok(Item::User(UserRow {
                user,
                last_login,
                groups: groups.into_iter().map(GroupRef::Name).collect(),
                permissions: permissions.into_iter().map(PermRef::Name).collect(),
            }))
        });
        entries.push(Entry {
            place: Place::Line(line_no),
            item,
        });
    }
    Ok(Parsed {
        source: Source::Csv,
        entries,
    })
}

/// A `groups` or `user_permissions` cell: empty, or a JSON list of strings (see the module
/// docs for why not a plain separator).
fn csv_list(name: &str, cell: Option<&str>) -> Result<Vec<String>, String> {
    let cell = cell.unwrap_or_default().trim();
    if cell.is_empty() {
        return Ok(Vec::new());
    }
    serde_json::from_str::<Vec<String>>(cell).map_err(|_| {
        format!("{name} {cell:?} is not a JSON list of strings, e.g. [\"staff\", \"editors\"]")
    })
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
        assert_eq!(parsed.entries.len(), 4);
        assert!(parsed.entries[0].item.is_ok());
        assert!(matches!(parsed.entries[1].place, Place::Line(3)));
        assert!(parsed.entries[1].item.is_err());
        let Ok(Item::User(carol)) = &parsed.entries[2].item else {
            panic!("carol: {:?}", parsed.entries[2].item)
        };
        assert!(carol.user.is_superuser && carol.user.email.is_none());
        assert_eq!(
            parsed.entries[3].item.as_ref().unwrap_err(),
            "unknown password hash format"
        );
        assert!(parse_csv("user,password\n").is_err());
    }

    #[test]
    fn csv_list_cells_are_json_lists() {
        assert_eq!(csv_list("groups", None).unwrap(), Vec::<String>::new());
        assert_eq!(
            csv_list("groups", Some("  ")).unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(
            csv_list("groups", Some(r#"["staff", "editors, senior"]"#)).unwrap(),
            vec!["staff", "editors, senior"]
        );
        let err = csv_list("groups", Some("staff,editors")).unwrap_err();
        assert!(err.contains("JSON list"), "{err}");
        assert!(csv_list("groups", Some("[1]")).is_err());
    }

    #[test]
    fn json_references_in_both_shapes() {
        assert!(matches!(group_ref(&json!(["staff"])), Some(GroupRef::Name(n)) if n == "staff"));
        assert!(matches!(group_ref(&json!(7)), Some(GroupRef::Pk(7))));
        assert!(group_ref(&json!(["a", "b"])).is_none());
        assert!(group_ref(&json!("staff")).is_none());
        assert!(matches!(
            perm_ref(&json!(["add_user", "auth", "user"])),
            Some(PermRef::Natural { codename, app_label, model })
                if codename == "add_user" && app_label == "auth" && model == "user"
        ));
        assert!(matches!(perm_ref(&json!(3)), Some(PermRef::Pk(3))));
        assert!(perm_ref(&json!(["add_user", "auth"])).is_none());
    }

    #[test]
    fn pk_references_resolve_through_the_files_tables() {
        let text = r#"[
            {"model": "contenttypes.contenttype", "pk": 4, "fields": {"app_label": "auth", "model": "user"}},
            {"model": "auth.permission", "pk": 21, "fields": {"name": "Can add user", "content_type": 4, "codename": "add_user"}},
            {"model": "auth.permission", "pk": 22, "fields": {"name": "Orphan", "content_type": 99, "codename": "x"}},
            {"model": "auth.group", "pk": 1, "fields": {"name": "staff", "permissions": [21]}}
        ]"#;
        let mut parsed = parse_json(text).unwrap();
        let tables = Tables::build(&mut parsed.entries);
        let (p, name) = tables.permission(&PermRef::Pk(21)).unwrap();
        assert_eq!(p.as_str(), "auth.add_user");
        assert_eq!(name.as_deref(), Some("Can add user"));
        let err = tables.permission(&PermRef::Pk(22)).unwrap_err();
        assert!(
            err.contains("content type 99") && err.contains("--natural-foreign"),
            "{err}"
        );
        let err = tables.permission(&PermRef::Pk(5)).unwrap_err();
        assert!(
            err.contains("permission 5") && err.contains("--natural-foreign"),
            "{err}"
        );
        let natural = PermRef::Natural {
            codename: "add_user".into(),
            app_label: "auth".into(),
            model: "user".into(),
        };
        assert_eq!(
            tables.permission(&natural).unwrap().1.as_deref(),
            Some("Can add user")
        );
        assert_eq!(tables.groups_by_pk[&1].as_str(), "staff");
    }

    #[test]
    fn descriptions_prefer_djangos_name() {
        let mut d = BTreeMap::new();
        let p = Permission::parse("auth.add_user").unwrap();
        note_description(&mut d, p.clone(), None);
        assert_eq!(d[&p], DEFAULT_DESCRIPTION);
        note_description(&mut d, p.clone(), Some("Can add user".into()));
        note_description(&mut d, p.clone(), None);
        assert_eq!(d[&p], "Can add user");
    }
}
