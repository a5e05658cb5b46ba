//! The "members" example app: the list that the spec's authorization demo guards
//! (`members.view_member`, `members.add_member`, `members.approve_member`,
//! `members.delete_member`). A member is a row of data, not an account: it may name the
//! users who added and approved it, but it never logs in.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;
use crate::user::{Email, UserId};

/// Longest member name, in characters (as Django's `CharField(max_length=150)` counts).
pub const MEMBER_NAME_MAX_CHARS: usize = 150;

/// Most members one [`crate::store::MemberStore::list_members`] call returns, whatever the
/// caller asks for: a page size taken from a query string must not read the whole table.
pub const MEMBER_PAGE_MAX: u32 = 1000;

/// Why a member name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemberNameError {
    #[error("a member name must not be empty")]
    Empty,
    #[error("a member name has at most {MEMBER_NAME_MAX_CHARS} characters")]
    TooLong,
    #[error("a member name must not contain control characters")]
    Control,
}

/// A member's name: trimmed, 1 to 150 characters, no control characters (a newline or an
/// escape sequence has no business in a list row or a log line). Not unique: two people may
/// share a name.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MemberName(String);

impl MemberName {
    pub fn parse(raw: &str) -> Result<Self, MemberNameError> {
        let name = raw.trim();
        if name.is_empty() {
            return Err(MemberNameError::Empty);
        }
        if name.chars().count() > MEMBER_NAME_MAX_CHARS {
            return Err(MemberNameError::TooLong);
        }
        if name.chars().any(char::is_control) {
            return Err(MemberNameError::Control);
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MemberName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for MemberName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MemberName({:?})", self.0)
    }
}

impl std::str::FromStr for MemberName {
    type Err = MemberNameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for MemberName {
    type Error = MemberNameError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<MemberName> for String {
    fn from(n: MemberName) -> Self {
        n.0
    }
}

/// A member's primary key, assigned by the store and never reused, so a stale approve or
/// delete link cannot come to act on a newer member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MemberId(i64);

impl MemberId {
    pub const fn new(id: i64) -> Self {
        Self(id)
    }

    pub const fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A stored member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub id: MemberId,
    pub name: MemberName,
    pub email: Option<Email>,
    /// Whether someone holding `members.approve_member` approved the member. Set once and
    /// never cleared; `approved_at` is `Some` exactly when this is true.
    pub approved: bool,
    /// The account that added the member; `None` when no account did (a script) or when
    /// that account has since been deleted.
    pub added_by: Option<UserId>,
    pub added_at: Timestamp,
    /// The account that approved the member; `None` while unapproved, or when the
    /// approving account has since been deleted (the approval itself stands).
    pub approved_by: Option<UserId>,
    pub approved_at: Option<Timestamp>,
}

/// A member to add; the store assigns the id, and a new member starts unapproved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMember {
    pub name: MemberName,
    pub email: Option<Email>,
    pub added_by: Option<UserId>,
    pub added_at: Timestamp,
}

impl NewMember {
    /// The stored form once the store has picked `id`: unapproved, with no approver.
    pub fn into_member(self, id: MemberId) -> Member {
        Member {
            id,
            name: self.name,
            email: self.email,
            approved: false,
            added_by: self.added_by,
            added_at: self.added_at,
            approved_by: None,
            approved_at: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed() {
        assert_eq!(
            MemberName::parse("  Ada Lovelace \t").unwrap().as_str(),
            "Ada Lovelace"
        );
        assert_eq!(MemberName::parse("Zoë").unwrap().to_string(), "Zoë");
        assert_eq!(
            "x".parse::<MemberName>().unwrap(),
            MemberName::parse("x").unwrap()
        );
    }

    #[test]
    fn empty_names_are_refused() {
        assert_eq!(MemberName::parse(""), Err(MemberNameError::Empty));
        assert_eq!(MemberName::parse(" \t\n "), Err(MemberNameError::Empty));
    }

    #[test]
    fn length_is_counted_in_characters_after_trimming() {
        assert!(MemberName::parse(&"é".repeat(150)).is_ok());
        assert_eq!(
            MemberName::parse(&"é".repeat(151)),
            Err(MemberNameError::TooLong)
        );
        // Surrounding spaces do not count against the limit.
        assert!(MemberName::parse(&format!("  {}  ", "a".repeat(150))).is_ok());
    }

    #[test]
    fn control_characters_are_refused() {
        for bad in ["a\nb", "a\u{0}b", "a\u{1b}[31mb", "a\u{7f}b", "a\u{85}b"] {
            assert_eq!(
                MemberName::parse(bad),
                Err(MemberNameError::Control),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn serde_parses_too() {
        let name: MemberName = serde_json::from_str("\" Grace \"").unwrap();
        assert_eq!(name.as_str(), "Grace");
        assert_eq!(serde_json::to_string(&name).unwrap(), "\"Grace\"");
        assert!(serde_json::from_str::<MemberName>("\"\"").is_err());
        assert!(serde_json::from_str::<MemberName>("\"a\\u0007b\"").is_err());
        assert_eq!(serde_json::to_string(&MemberId::new(42)).unwrap(), "42");
        assert_eq!(MemberId::new(42).to_string(), "42");
    }

    #[test]
    fn new_members_start_unapproved() {
        let member = NewMember {
            name: MemberName::parse("Ada").unwrap(),
            email: None,
            added_by: Some(UserId::new(3)),
            added_at: Timestamp::from_unix(10),
        }
        .into_member(MemberId::new(1));
        assert!(!member.approved);
        assert_eq!(member.approved_by, None);
        assert_eq!(member.approved_at, None);
        assert_eq!(member.added_by, Some(UserId::new(3)));
    }
}
