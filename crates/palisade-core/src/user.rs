//! Accounts: usernames, e-mail addresses and the user record.
//!
//! The rules follow Django's `contrib.auth` so that users imported from a Django site keep
//! their names, with one deliberate tightening: usernames are unique case-insensitively (see
//! [`Username::canonical`]).

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

use crate::time::Timestamp;

/// Django's `AbstractUser.username` `max_length`.
pub const USERNAME_MAX_CHARS: usize = 150;
/// Django's `EmailField` `max_length` (RFC 5321's path limit less the angle brackets).
pub const EMAIL_MAX_CHARS: usize = 254;
/// RFC 5321 limit on the local part.
const EMAIL_LOCAL_MAX_CHARS: usize = 64;
/// RFC 1035 limit on one DNS label.
const DNS_LABEL_MAX_CHARS: usize = 63;

/// Why a username was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsernameError {
    #[error("the username is empty")]
    Empty,
    #[error("the username is longer than {max} characters")]
    TooLong { max: usize },
    #[error("the username contains {0:?}; use only letters, digits and the characters @ . + - _")]
    InvalidCharacter(char),
}

/// A valid username: NFKC-normalised (Django's `normalize_username`), 1–150 characters,
/// each a letter, digit or one of `@ . + - _` (Django's `UnicodeUsernameValidator`,
/// `^[\w.@+-]+\Z`).
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Username {
    /// As the user typed it, after NFKC: what is displayed.
    display: String,
    /// Case-folded form: what uniqueness and lookups use.
    canonical: String,
}

impl Username {
    /// Normalises and validates `raw`. No trimming: a form layer that wants Django's
    /// `strip=True` does it first, so that the stored name is exactly what was accepted.
    pub fn parse(raw: &str) -> Result<Self, UsernameError> {
        let display: String = raw.nfkc().collect();
        let len = display.chars().count();
        if len == 0 {
            return Err(UsernameError::Empty);
        }
        if len > USERNAME_MAX_CHARS {
            return Err(UsernameError::TooLong {
                max: USERNAME_MAX_CHARS,
            });
        }
        if let Some(bad) = display.chars().find(|c| !is_username_char(*c)) {
            return Err(UsernameError::InvalidCharacter(bad));
        }
        let canonical = fold_case(&display);
        Ok(Self { display, canonical })
    }

    /// The name as entered (after NFKC).
    pub fn as_str(&self) -> &str {
        &self.display
    }

    /// The case-folded form used for uniqueness and lookups: NFKC, then upper-then-lower
    /// case mapping, then NFKC again. Upper-then-lower approximates Unicode full case folding
    /// without another table (`ß` and `SS` meet at `ss`, `ς` and `Σ` at `σ`), and the final
    /// NFKC keeps the result in normal form even where case mapping leaves it.
    pub fn canonical(&self) -> &str {
        &self.canonical
    }
}

/// Python's `\w` on `str` (what Django's validator uses): alphanumeric or `_`. Rust's
/// `is_alphanumeric` also admits combining marks (Unicode "Other_Alphabetic"), which
/// Python's `isalnum` does not, so marks are excluded to accept exactly what Django accepts.
fn is_username_char(c: char) -> bool {
    matches!(c, '.' | '@' | '+' | '-' | '_') || (c.is_alphanumeric() && !is_combining_mark(c))
}

fn fold_case(s: &str) -> String {
    let upper = s.to_uppercase();
    upper.to_lowercase().nfkc().collect()
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display)
    }
}

impl fmt::Debug for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Username({:?})", self.display)
    }
}

impl std::str::FromStr for Username {
    type Err = UsernameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for Username {
    type Error = UsernameError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Username> for String {
    fn from(u: Username) -> Self {
        u.display
    }
}

/// Why an e-mail address was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("the e-mail address is empty")]
    Empty,
    #[error("the e-mail address is longer than {max} characters")]
    TooLong { max: usize },
    #[error("the e-mail address needs exactly one @")]
    At,
    #[error("the part before the @ is empty or invalid")]
    Local,
    #[error("the part after the @ is not a valid domain")]
    Domain,
    #[error("the e-mail address contains a space or control character")]
    Whitespace,
}

/// A plausible e-mail address: trimmed, one `@`, an ASCII dot-atom local part (as Django's
/// `EmailValidator`, without its rarely used quoted form), a domain of DNS-like labels (or
/// `localhost`, or a bracketed IP literal), at most 254 characters. The domain is lowercased
/// (Django's `normalize_email`); the local part keeps its case, since RFC 5321 lets a server
/// treat it as case-sensitive.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email {
    address: String,
    canonical: String,
}

impl Email {
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(EmailError::Empty);
        }
        if trimmed.chars().count() > EMAIL_MAX_CHARS {
            return Err(EmailError::TooLong {
                max: EMAIL_MAX_CHARS,
            });
        }
        if trimmed.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(EmailError::Whitespace);
        }
        let (local, domain) = trimmed.rsplit_once('@').ok_or(EmailError::At)?;
        if local.contains('@') {
            return Err(EmailError::At);
        }
        if !is_dot_atom(local) || local.len() > EMAIL_LOCAL_MAX_CHARS {
            return Err(EmailError::Local);
        }
        let domain = domain.to_lowercase();
        if !is_valid_domain(&domain) {
            return Err(EmailError::Domain);
        }
        let address = format!("{local}@{domain}");
        let canonical = address.to_lowercase();
        Ok(Self { address, canonical })
    }

    /// The address, domain lowercased.
    pub fn as_str(&self) -> &str {
        &self.address
    }

    /// Fully lowercased: what "one account per address" checks and login-by-e-mail compare.
    pub fn canonical(&self) -> &str {
        &self.canonical
    }
}

/// RFC 5322 dot-atom over ASCII `atext`: no leading, trailing or doubled dot.
fn is_dot_atom(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|atom| {
            !atom.is_empty()
                && atom
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~-".contains(c))
        })
}

fn is_valid_domain(domain: &str) -> bool {
    if domain == "localhost" {
        return true;
    }
    if let Some(literal) = domain.strip_prefix('[').and_then(|d| d.strip_suffix(']')) {
        let ip = literal.strip_prefix("ipv6:").unwrap_or(literal);
        return ip.parse::<IpAddr>().is_ok();
    }
    let labels: Vec<&str> = domain.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && label.chars().count() <= DNS_LABEL_MAX_CHARS
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
        // A top-level domain is never all digits; this also refuses bare IPv4 like 1.2.3.4.
        && labels.last().is_some_and(|tld| !tld.chars().all(|c| c.is_ascii_digit()))
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.address)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({:?})", self.address)
    }
}

impl std::str::FromStr for Email {
    type Err = EmailError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for Email {
    type Error = EmailError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Email> for String {
    fn from(e: Email) -> Self {
        e.address
    }
}

/// A user's primary key, assigned by the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(i64);

impl UserId {
    pub const fn new(id: i64) -> Self {
        Self(id)
    }

    pub const fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A stored account. Every field that Django's `auth_user` row has is here, so an import
/// loses nothing; groups and permissions live in their own tables.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    pub username: Username,
    /// `None` when the account has no address (Django allows a blank e-mail).
    pub email: Option<Email>,
    /// An encoded password hash (PHC string or Django's `algorithm$…` form), opaque here; a
    /// value starting with `!` is Django's "unusable password".
    pub password_hash: String,
    pub first_name: String,
    pub last_name: String,
    pub is_active: bool,
    pub is_staff: bool,
    pub is_superuser: bool,
    pub date_joined: Timestamp,
    pub last_login: Option<Timestamp>,
}

// The hash is offline-cracking material: keep it out of logs and panic messages.
impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("email", &self.email)
            .field("password_hash", &"<redacted>")
            .field("first_name", &self.first_name)
            .field("last_name", &self.last_name)
            .field("is_active", &self.is_active)
            .field("is_staff", &self.is_staff)
            .field("is_superuser", &self.is_superuser)
            .field("date_joined", &self.date_joined)
            .field("last_login", &self.last_login)
            .finish()
    }
}

/// An account to create; the store assigns the id.
#[derive(Clone, PartialEq, Eq)]
pub struct NewUser {
    pub username: Username,
    pub email: Option<Email>,
    pub password_hash: String,
    pub first_name: String,
    pub last_name: String,
    pub is_active: bool,
    pub is_staff: bool,
    pub is_superuser: bool,
    pub date_joined: Timestamp,
}

impl NewUser {
    /// An active account without staff or superuser rights and with empty names.
    pub fn new(
        username: Username,
        email: Option<Email>,
        password_hash: String,
        date_joined: Timestamp,
    ) -> Self {
        Self {
            username,
            email,
            password_hash,
            first_name: String::new(),
            last_name: String::new(),
            is_active: true,
            is_staff: false,
            is_superuser: false,
            date_joined,
        }
    }

    /// The stored user this becomes under `id`.
    pub fn into_user(self, id: UserId) -> User {
        User {
            id,
            username: self.username,
            email: self.email,
            password_hash: self.password_hash,
            first_name: self.first_name,
            last_name: self.last_name,
            is_active: self.is_active,
            is_staff: self.is_staff,
            is_superuser: self.is_superuser,
            date_joined: self.date_joined,
            last_login: None,
        }
    }
}

impl fmt::Debug for NewUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewUser")
            .field("username", &self.username)
            .field("email", &self.email)
            .field("password_hash", &"<redacted>")
            .field("is_active", &self.is_active)
            .field("is_staff", &self.is_staff)
            .field("is_superuser", &self.is_superuser)
            .field("date_joined", &self.date_joined)
            .finish_non_exhaustive()
    }
}

/// Most users one [`crate::store::UserStore::search_users`] call returns, whatever the caller
/// asks for: a page size taken from a query string must not read the whole table.
pub const USER_PAGE_MAX: u32 = 500;

/// What the admin console's user list asks for: an optional search and one page of the
/// result, in [`Username::canonical`] order (as Django's `UserAdmin` orders by username).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserQuery {
    /// Case-insensitive substring of the username or the e-mail address; `None`, empty or
    /// only whitespace means every account.
    pub search: Option<String>,
    /// How many matching accounts to skip (page number × page size).
    pub offset: u64,
    /// Page size; capped at [`USER_PAGE_MAX`], and 0 returns no users (but still the total).
    pub limit: u32,
}

impl UserQuery {
    /// The page size a backend must use: [`UserQuery::limit`] capped at [`USER_PAGE_MAX`].
    pub fn capped_limit(&self) -> u32 {
        self.limit.min(USER_PAGE_MAX)
    }

    /// The search in the forms the stored canonical columns are compared with, or `None`
    /// when there is nothing to filter on. Computed here, once, so every backend folds the
    /// search exactly as it folded the stored names.
    pub fn search_terms(&self) -> Option<UserSearch> {
        let raw = self.search.as_deref()?.trim();
        if raw.is_empty() {
            return None;
        }
        let nfkc: String = raw.nfkc().collect();
        Some(UserSearch {
            // As `Username::parse` builds `canonical`: NFKC, then the case fold.
            username: fold_case(&nfkc),
            // As `Email::parse` builds `canonical`: lowercase.
            email: raw.to_lowercase(),
        })
    }
}

/// A non-empty search, folded: see [`UserQuery::search_terms`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSearch {
    /// Compared with [`Username::canonical`].
    pub username: String,
    /// Compared with [`Email::canonical`].
    pub email: String,
}

impl UserSearch {
    /// The matching rule itself (plain substring, no wildcards), which a SQL backend must
    /// reproduce with an escaped `LIKE` and the memory backend calls directly.
    pub fn matches(&self, user: &User) -> bool {
        user.username.canonical().contains(&self.username)
            || user
                .email
                .as_ref()
                .is_some_and(|e| e.canonical().contains(&self.email))
    }
}

/// One page of [`crate::store::UserStore::search_users`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPage {
    /// The page, in [`Username::canonical`] order.
    pub users: Vec<User>,
    /// How many accounts match the search in all (not just this page), for "page X of Y".
    pub total: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_follow_django() {
        for ok in ["alice", "a.b@c+d-e_f", "Zoë", "用户", "x", "١٢٣"] {
            assert!(Username::parse(ok).is_ok(), "{ok}");
        }
        assert_eq!(Username::parse(""), Err(UsernameError::Empty));
        assert_eq!(
            Username::parse("a b"),
            Err(UsernameError::InvalidCharacter(' '))
        );
        assert_eq!(
            Username::parse("alice\n"),
            Err(UsernameError::InvalidCharacter('\n'))
        );
        assert_eq!(
            Username::parse("a/b"),
            Err(UsernameError::InvalidCharacter('/'))
        );
        assert!(Username::parse(&"a".repeat(150)).is_ok());
        assert_eq!(
            Username::parse(&"a".repeat(151)),
            Err(UsernameError::TooLong { max: 150 })
        );
    }

    #[test]
    fn usernames_are_nfkc_normalised() {
        // Fullwidth letters and the "ﬁ" ligature become plain ASCII, as in Django.
        let u = Username::parse("ＡＬＩＣＥ").unwrap();
        assert_eq!(u.as_str(), "ALICE");
        assert_eq!(u.canonical(), "alice");
        assert_eq!(Username::parse("ﬁle").unwrap().as_str(), "file");
        // Decomposed e + combining acute composes to é, so the mark is not refused.
        assert_eq!(Username::parse("Zoe\u{301}").unwrap().as_str(), "Zoé");
    }

    #[test]
    fn canonical_folds_case() {
        let a = Username::parse("Straße").unwrap();
        let b = Username::parse("STRASSE").unwrap();
        assert_eq!(a.canonical(), b.canonical());
        assert_eq!(a.as_str(), "Straße");
        assert_eq!(
            Username::parse("ΟΔΥΣΣΕΥΣ").unwrap().canonical(),
            Username::parse("οδυσσευς").unwrap().canonical()
        );
    }

    #[test]
    fn username_serde_round_trips_and_validates() {
        let u = Username::parse("bob").unwrap();
        let json = serde_json::to_string(&u).unwrap();
        assert_eq!(json, "\"bob\"");
        assert_eq!(serde_json::from_str::<Username>(&json).unwrap(), u);
        assert!(serde_json::from_str::<Username>("\"a b\"").is_err());
    }

    #[test]
    fn emails_are_normalised() {
        let e = Email::parse("  Alice.Smith@Example.COM ").unwrap();
        assert_eq!(e.as_str(), "Alice.Smith@example.com");
        assert_eq!(e.canonical(), "alice.smith@example.com");
        for ok in [
            "a@b.co",
            "user+tag@sub.example.org",
            "root@localhost",
            "x@[127.0.0.1]",
            "x@[IPv6:::1]",
            "o'neil@bücher.de",
        ] {
            assert!(Email::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn emails_are_checked() {
        assert_eq!(Email::parse("   "), Err(EmailError::Empty));
        assert_eq!(Email::parse("no-at.example.com"), Err(EmailError::At));
        assert_eq!(Email::parse("a@b@c.com"), Err(EmailError::At));
        assert_eq!(Email::parse("@example.com"), Err(EmailError::Local));
        assert_eq!(Email::parse("a..b@example.com"), Err(EmailError::Local));
        assert_eq!(Email::parse(".a@example.com"), Err(EmailError::Local));
        assert_eq!(Email::parse("ü@example.com"), Err(EmailError::Local));
        assert_eq!(Email::parse("a@"), Err(EmailError::Domain));
        assert_eq!(Email::parse("a@example"), Err(EmailError::Domain));
        assert_eq!(Email::parse("a@-x.com"), Err(EmailError::Domain));
        assert_eq!(Email::parse("a@x..com"), Err(EmailError::Domain));
        assert_eq!(Email::parse("a@1.2.3.4"), Err(EmailError::Domain));
        assert_eq!(Email::parse("a b@example.com"), Err(EmailError::Whitespace));
        assert_eq!(
            Email::parse("a@exa\u{0}mple.com"),
            Err(EmailError::Whitespace)
        );
        let long = format!("{}@{}.com", "a".repeat(64), "b".repeat(63));
        assert!(Email::parse(&long).is_ok());
        let too_long = format!(
            "{}@{}.{}.{}.com",
            "a".repeat(64),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(63)
        );
        assert_eq!(
            Email::parse(&too_long),
            Err(EmailError::TooLong { max: 254 })
        );
        assert_eq!(
            Email::parse(&format!("{}@x.com", "a".repeat(65))),
            Err(EmailError::Local)
        );
    }

    #[test]
    fn user_debug_hides_the_hash() {
        let new = NewUser::new(
            Username::parse("carol").unwrap(),
            None,
            "pbkdf2_sha256$1000$salt$secret".into(),
            Timestamp::from_unix(1),
        );
        assert!(!format!("{new:?}").contains("secret"));
        let user = new.into_user(UserId::new(7));
        assert!(!format!("{user:?}").contains("secret"));
        assert!(user.is_active && !user.is_staff && user.last_login.is_none());
    }

    #[test]
    fn user_search_folds_like_the_stored_forms() {
        let query = |s: Option<&str>| UserQuery {
            search: s.map(str::to_owned),
            offset: 0,
            limit: u32::MAX,
        };
        assert_eq!(query(None).search_terms(), None);
        assert_eq!(query(Some("  \t")).search_terms(), None);
        assert_eq!(query(None).capped_limit(), USER_PAGE_MAX);
        let terms = query(Some(" ＳtraSSe ")).search_terms().unwrap();
        assert_eq!(terms.username, "strasse");
        let user = NewUser::new(
            Username::parse("Straße").unwrap(),
            Some(Email::parse("Who@Example.com").unwrap()),
            "!".into(),
            Timestamp::from_unix(1),
        )
        .into_user(UserId::new(1));
        assert!(terms.matches(&user));
        assert!(query(Some("WHO@")).search_terms().unwrap().matches(&user));
        assert!(!query(Some("nobody")).search_terms().unwrap().matches(&user));
    }
}
