//! Permissions named as Django names them (`app_label.codename`), the groups that hold them,
//! and the one rule that decides: an active superuser has every permission, an inactive user
//! has none, everyone else has the union of their direct permissions and their groups'
//! ([`allowed`]). Backends only answer "which permissions does this user hold"; the rule
//! lives here so every backend agrees.

use std::collections::BTreeSet;
use std::fmt;

use crate::user::User;

use serde::{Deserialize, Serialize};

/// Django's `Permission.codename` `max_length`; also used as the bound on the app label.
const PART_MAX_CHARS: usize = 100;

/// Why a permission name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PermissionError {
    #[error("a permission is written app.codename, with exactly one dot")]
    Shape,
    #[error("the app label is empty, too long or not made of a-z, 0-9 and _")]
    App,
    #[error("the codename is empty, too long or not made of a-z, 0-9 and _")]
    Codename,
}

/// A permission such as `members.approve_member`: an app label and a codename, each one or
/// more of `[a-z0-9_]`, at most 100 characters.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Permission {
    /// `app.codename`, kept whole so `as_str` needs no allocation.
    full: String,
    /// Byte position of the dot in `full`.
    dot: usize,
}

impl Permission {
    pub fn parse(raw: &str) -> Result<Self, PermissionError> {
        let (app, codename) = raw.split_once('.').ok_or(PermissionError::Shape)?;
        if codename.contains('.') {
            return Err(PermissionError::Shape);
        }
        if !is_part(app) {
            return Err(PermissionError::App);
        }
        if !is_part(codename) {
            return Err(PermissionError::Codename);
        }
        Ok(Self {
            full: raw.to_owned(),
            dot: app.len(),
        })
    }

    /// Builds `app.codename` from its parts.
    pub fn new(app: &str, codename: &str) -> Result<Self, PermissionError> {
        if !is_part(app) {
            return Err(PermissionError::App);
        }
        if !is_part(codename) {
            return Err(PermissionError::Codename);
        }
        Ok(Self {
            full: format!("{app}.{codename}"),
            dot: app.len(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.full
    }

    /// The app label, e.g. `members`.
    pub fn app(&self) -> &str {
        self.full.get(..self.dot).unwrap_or_default()
    }

    /// The codename, e.g. `approve_member`.
    pub fn codename(&self) -> &str {
        self.full
            .get(self.dot.saturating_add(1)..)
            .unwrap_or_default()
    }
}

fn is_part(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= PART_MAX_CHARS
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full)
    }
}

impl fmt::Debug for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Permission({:?})", self.full)
    }
}

impl std::str::FromStr for Permission {
    type Err = PermissionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for Permission {
    type Error = PermissionError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Permission> for String {
    fn from(p: Permission) -> Self {
        p.full
    }
}

/// Django's `Group.name` `max_length`.
const GROUP_NAME_MAX_CHARS: usize = 150;

/// Why a group name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupNameError {
    #[error("a group name must not be empty")]
    Empty,
    #[error("a group name has at most {GROUP_NAME_MAX_CHARS} characters")]
    TooLong,
    #[error("a group name must not contain control characters")]
    Control,
}

/// A group's name, as Django allows it (any text up to 150 characters), trimmed and without
/// control characters. Unique as written (Django's `unique=True` is case-sensitive).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct GroupName(String);

impl GroupName {
    pub fn parse(raw: &str) -> Result<Self, GroupNameError> {
        let name = raw.trim();
        if name.is_empty() {
            return Err(GroupNameError::Empty);
        }
        if name.chars().count() > GROUP_NAME_MAX_CHARS {
            return Err(GroupNameError::TooLong);
        }
        if name.chars().any(char::is_control) {
            return Err(GroupNameError::Control);
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for GroupName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for GroupName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GroupName({:?})", self.0)
    }
}

impl TryFrom<String> for GroupName {
    type Error = GroupNameError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<GroupName> for String {
    fn from(g: GroupName) -> Self {
        g.0
    }
}

/// A group's primary key, assigned by the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GroupId(i64);

impl GroupId {
    pub const fn new(id: i64) -> Self {
        Self(id)
    }

    pub const fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A stored group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub id: GroupId,
    pub name: GroupName,
}

/// A registered permission and what it allows, in words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermissionInfo {
    pub permission: Permission,
    pub description: String,
}

/// Whether `user` may do what `permission` names, given `held`: the permissions the store
/// says the user holds directly or through a group. The one rule every check goes through.
pub fn allowed(user: &User, held: &BTreeSet<Permission>, permission: &Permission) -> bool {
    user.is_active && (user.is_superuser || held.contains(permission))
}

/// The permissions the built-in apps register (at every `migrate`, as Django's
/// `post_migrate` does): Django's four per resource (`add_`, `change_`, `delete_`, `view_`)
/// plus the custom ones the routes check.
pub fn builtin_permissions() -> Vec<PermissionInfo> {
    const RESOURCES: &[(&str, &str, &str)] = &[
        // The admin console's own: who may see and change accounts and groups there.
        ("auth", "user", "user"),
        ("auth", "group", "group"),
        ("members", "member", "member"),
        ("drop", "sender", "drop sender"),
        ("drop", "message", "drop message"),
    ];
    const CUSTOM: &[(&str, &str, &str)] = &[
        ("auth", "view_permission", "Can view permission"),
        ("audit", "view_record", "Can view the audit log"),
        ("members", "approve_member", "Can approve member"),
    ];
    let mut out = Vec::new();
    for (app, model, words) in RESOURCES {
        for action in ["add", "change", "delete", "view"] {
            if let Ok(permission) = Permission::new(app, &format!("{action}_{model}")) {
                out.push(PermissionInfo {
                    permission,
                    description: format!("Can {action} {words}"),
                });
            }
        }
    }
    for (app, codename, description) in CUSTOM {
        if let Ok(permission) = Permission::new(app, codename) {
            out.push(PermissionInfo {
                permission,
                description: (*description).to_owned(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_app_and_codename() {
        let p = Permission::parse("members.approve_member").unwrap();
        assert_eq!(p.app(), "members");
        assert_eq!(p.codename(), "approve_member");
        assert_eq!(p.to_string(), "members.approve_member");
        assert_eq!(
            Permission::new("drop", "view_message").unwrap().as_str(),
            "drop.view_message"
        );
    }

    #[test]
    fn builtins_are_djangos_four_per_resource_plus_the_custom_ones() {
        let names: Vec<String> = builtin_permissions()
            .into_iter()
            .map(|p| p.permission.to_string())
            .collect();
        for expected in [
            "members.view_member",
            "members.add_member",
            "members.change_member",
            "members.delete_member",
            "members.approve_member",
            "drop.add_sender",
            "drop.view_message",
            "auth.view_user",
            "auth.change_user",
            "auth.add_group",
            "auth.view_permission",
            "audit.view_record",
        ] {
            assert!(names.iter().any(|n| n == expected), "{expected}");
        }
        assert_eq!(names.len(), 23);
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len());
    }

    #[test]
    fn group_names_and_the_rule() {
        assert_eq!(GroupName::parse("  Editors ").unwrap().as_str(), "Editors");
        assert_eq!(GroupName::parse(" "), Err(GroupNameError::Empty));
        assert_eq!(GroupName::parse("a\nb"), Err(GroupNameError::Control));
        assert_eq!(
            GroupName::parse(&"é".repeat(151)),
            Err(GroupNameError::TooLong)
        );
        assert!(GroupName::parse(&"é".repeat(150)).is_ok());
    }

    #[test]
    fn refuses_bad_shapes() {
        assert_eq!(Permission::parse("members"), Err(PermissionError::Shape));
        assert_eq!(Permission::parse("a.b.c"), Err(PermissionError::Shape));
        assert_eq!(Permission::parse(".view"), Err(PermissionError::App));
        assert_eq!(
            Permission::parse("members."),
            Err(PermissionError::Codename)
        );
        assert_eq!(Permission::parse("Members.view"), Err(PermissionError::App));
        assert_eq!(
            Permission::parse("members.view-x"),
            Err(PermissionError::Codename)
        );
        assert_eq!(
            Permission::parse("members.vïew"),
            Err(PermissionError::Codename)
        );
        assert_eq!(
            Permission::new("a", &"b".repeat(101)),
            Err(PermissionError::Codename)
        );
        assert!(serde_json::from_str::<Permission>("\"x.Y\"").is_err());
    }
}
