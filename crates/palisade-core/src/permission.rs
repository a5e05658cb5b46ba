//! Permissions named as Django names them: `app_label.codename`.

use std::fmt;

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
