//! # palisade-core
//!
//! Palisade's domain: the types that make bad states unrepresentable, the pure rules that
//! every storage backend shares (the audit hash chain, session expiry) and the storage
//! traits the use cases need. No I/O happens here: no tokio, sqlx, axum or redis, no clock
//! and no hidden randomness. Time is always passed in as a [`Timestamp`]; randomness comes
//! from the caller or, explicitly, from `palisade_crypto::random`.
//!
//! ## Design
//! - **Parse, don't validate.** [`Username`], [`Email`], [`Permission`], [`SessionId`] have
//!   private fields and are only built by parsing; a value that exists is valid, so code
//!   further in never re-checks. Parse failures are typed `thiserror` enums that say what
//!   was wrong without echoing secrets.
//! - **Django compatibility where users can see it.** Usernames follow Django's
//!   `normalize_username` (NFKC) and `UnicodeUsernameValidator`; e-mail addresses follow
//!   `normalize_email`. Uniqueness is case-insensitive on [`Username::canonical`], which is
//!   stricter than Django, so that `Alice` and `alice` can never be two accounts.
//! - **Secrets at rest are hashed.** A session cookie value ([`SessionId`]) is never stored:
//!   backends keep its SHA-256 ([`SessionKey`]), so a database leak yields no usable session.
//! - **Storage traits are async without an executor.** [`store`] declares methods returning
//!   `impl Future + Send` (return-position `impl Trait` in traits), so the server can hold any
//!   backend behind a generic parameter and this crate stays runtime-free.
//! - **One audit chain rule.** [`audit`] defines how records are hashed and verified; every
//!   backend calls it, so a log copied between backends verifies the same way.
//!
//! ## Modules
//! - [`time`]: [`Timestamp`] (unix seconds).
//! - [`user`]: [`Username`], [`Email`], [`UserId`], [`User`], [`NewUser`], and the admin
//!   console's user search, [`UserQuery`] → [`UserPage`].
//! - [`permission`]: [`Permission`] (`app.codename`), [`GroupName`], [`Group`], and
//!   [`allowed`], the one rule that decides a permission check.
//! - [`member`]: the "members" example app's records: [`MemberId`], [`MemberName`],
//!   [`Member`], [`NewMember`].
//! - [`session`]: [`SessionId`], [`SessionKey`], [`CsrfSecret`], [`Session`], [`SessionTimeouts`].
//! - [`audit`]: [`AuditEvent`], [`AuditRecord`], [`verify_chain`], [`ChainVerifier`].
//! - [`store`]: [`UserStore`], [`SessionStore`], [`AuditLog`], [`TokenStore`], [`AuthzStore`]
//!   (permissions and groups), [`KeyStore`]
//!   (shared secrets, encrypted, as [`StoredKey`]), [`MemberStore`] (the members app),
//!   [`StoreError`].
//! - [`token`]: signed, time-limited activation and password-reset tokens with rotating keys.

pub mod audit;
pub mod member;
pub mod password_policy;
pub mod permission;
pub mod session;
pub mod store;
pub mod time;
pub mod token;
pub mod user;

pub use audit::{AuditEvent, AuditRecord, BrokenLink, BrokenLinkKind, ChainVerifier, verify_chain};
pub use member::{
    MEMBER_NAME_MAX_CHARS, MEMBER_PAGE_MAX, Member, MemberId, MemberName, MemberNameError,
    NewMember,
};
pub use permission::{
    Group, GroupId, GroupName, GroupNameError, Permission, PermissionError, PermissionInfo,
    allowed, builtin_permissions,
};
pub use session::{CsrfSecret, Session, SessionId, SessionIdError, SessionKey, SessionTimeouts};
pub use store::{
    AccessScope, AuditLog, AuditVerifyError, AuthzStore, KeyStore, MemberStore, SessionAccess,
    SessionStore, SessionUserStore, StoreError, StoredKey, TokenStore, UserStore,
};
pub use time::Timestamp;
pub use user::{
    Email, EmailError, NewUser, USER_PAGE_MAX, User, UserId, UserPage, UserQuery, UserSearch,
    Username, UsernameError,
};

/// SHA-256 of the concatenation of `parts`, as a fixed-size array.
fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = palisade_crypto::hash::Hasher::new(palisade_crypto::hash::Algorithm::Sha256);
    for part in parts {
        hasher.update(part);
    }
    let mut out = [0u8; 32];
    // SHA-256 always yields 32 bytes; zip copies without an indexing panic path.
    for (o, b) in out.iter_mut().zip(hasher.finalize()) {
        *o = b;
    }
    out
}
