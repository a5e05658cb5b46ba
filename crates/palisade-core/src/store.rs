//! The storage the use cases need, as traits that each backend in `palisade-store`
//! implements and one conformance suite checks.
//!
//! Methods return `impl Future<Output = …> + Send` (return-position `impl Trait` in traits):
//! no boxing, no `async-trait`, no executor here, and the `Send` bound lets the server run
//! them on a multi-threaded runtime. Implementations may simply write `async fn`.
//!
//! Lookups return `Ok(None)` for "no such row"; updates of a row that does not exist return
//! [`StoreError::NotFound`], because the caller asked to change something specific.

use std::fmt;
use std::future::Future;

use std::collections::BTreeSet;

use crate::audit::{AuditEvent, AuditRecord, BrokenLink, ChainVerifier};
use crate::member::{Member, MemberId, NewMember};
use crate::permission::{Group, GroupId, GroupName, Permission, PermissionInfo};
use crate::session::{Session, SessionKey, SessionTimeouts};
use crate::time::Timestamp;
use crate::token::TokenId;
use crate::user::{Email, NewUser, User, UserId, UserPage, UserQuery, Username};

/// Page size used by [`AuditLog::verify`].
const VERIFY_PAGE: u32 = 1000;

/// A storage failure. Messages never contain secrets or bound values (password hashes,
/// session keys): they may end up in logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was violated (a taken username, an existing session key).
    #[error("already exists")]
    Conflict,
    /// The row to change does not exist (or a row it refers to does not).
    #[error("not found")]
    NotFound,
    /// Stored data does not parse back into a domain type (edited by hand, or a bug).
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    /// The database failed (I/O, locking, connection). The message is for operators.
    #[error("storage backend error: {0}")]
    Backend(String),
}

/// Accounts.
pub trait UserStore: Send + Sync {
    /// Creates an account. [`StoreError::Conflict`] if another account has the same
    /// [`Username::canonical`] (so `Alice` blocks `alice` and `ＡＬＩＣＥ`).
    fn create_user(&self, new: NewUser) -> impl Future<Output = Result<User, StoreError>> + Send;

    fn get_by_id(
        &self,
        id: UserId,
    ) -> impl Future<Output = Result<Option<User>, StoreError>> + Send;

    /// Case-insensitive lookup on the canonical username.
    fn get_by_username(
        &self,
        username: &Username,
    ) -> impl Future<Output = Result<Option<User>, StoreError>> + Send;

    /// The one account whose canonical e-mail equals `email`'s; `None` when no account or
    /// more than one has it (e-mail is not unique, as in Django, and an ambiguous address
    /// must not pick an account at random).
    fn get_by_unique_email(
        &self,
        email: &Email,
    ) -> impl Future<Output = Result<Option<User>, StoreError>> + Send;

    /// Every account whose canonical e-mail equals `email`'s, by id (empty when none has
    /// it). A password reset mails every active account with the address, as Django does,
    /// and registration asks whether the address is in use at all.
    fn users_with_email(
        &self,
        email: &Email,
    ) -> impl Future<Output = Result<Vec<User>, StoreError>> + Send;

    /// What the login form's `username` field means: an exact (canonical) username match,
    /// else a unique e-mail match. Text that is neither a valid username nor a valid address
    /// finds nobody.
    fn get_by_username_or_email(
        &self,
        login: &str,
    ) -> impl Future<Output = Result<Option<User>, StoreError>> + Send {
        async move {
            if let Ok(username) = Username::parse(login)
                && let Some(user) = self.get_by_username(&username).await?
            {
                return Ok(Some(user));
            }
            match Email::parse(login) {
                Ok(email) => self.get_by_unique_email(&email).await,
                Err(_) => Ok(None),
            }
        }
    }

    /// Every account, by id.
    fn list_users(&self) -> impl Future<Output = Result<Vec<User>, StoreError>> + Send;

    /// One page of the admin console's user list: the accounts matching
    /// [`UserQuery::search_terms`] (all of them when there is no search), ordered by
    /// [`Username::canonical`] (unique, so the order is total and pages never overlap),
    /// skipping `offset` and returning at most [`UserQuery::capped_limit`]; `total` counts
    /// every match, so an offset past the end gives no users but the right total.
    ///
    /// A match is a plain substring of the canonical username or canonical e-mail
    /// ([`crate::user::UserSearch::matches`]): `%`, `_` and `\` in the search are literal
    /// characters, never wildcards. Offset paging rather than keyset, because the console
    /// shows "page X of Y" and jumps to any page; the backend must answer the first page
    /// from an index, not by sorting the table.
    fn search_users(
        &self,
        query: &UserQuery,
    ) -> impl Future<Output = Result<UserPage, StoreError>> + Send;

    fn set_password_hash(
        &self,
        id: UserId,
        password_hash: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn set_active(
        &self,
        id: UserId,
        active: bool,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn set_flags(
        &self,
        id: UserId,
        is_staff: bool,
        is_superuser: bool,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn set_last_login(
        &self,
        id: UserId,
        at: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Server-side sessions, keyed by [`SessionKey`] (the hash of the cookie value).
pub trait SessionStore: Send + Sync {
    /// Stores a new session. [`StoreError::Conflict`] if the key exists;
    /// [`StoreError::NotFound`] if the backend keeps users too and the user does not exist.
    fn create_session(
        &self,
        session: Session,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn get_session(
        &self,
        key: &SessionKey,
    ) -> impl Future<Output = Result<Option<Session>, StoreError>> + Send;

    /// Records use at `last_seen`; never moves `last_seen` backwards (requests can finish
    /// out of order). [`StoreError::NotFound`] if the session is gone.
    fn touch_session(
        &self,
        key: &SessionKey,
        last_seen: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Deletes one session; `Ok(false)` if it was already gone (logging out twice is fine).
    fn delete_session(
        &self,
        key: &SessionKey,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Deletes every session of `user` except `except` (the caller's own, after a password
    /// change); returns how many were deleted.
    fn delete_sessions_for_user(
        &self,
        user: UserId,
        except: Option<&SessionKey>,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// A user's sessions, oldest first.
    fn list_sessions_for_user(
        &self,
        user: UserId,
    ) -> impl Future<Output = Result<Vec<Session>, StoreError>> + Send;

    /// Every session, oldest first.
    fn list_all_sessions(&self) -> impl Future<Output = Result<Vec<Session>, StoreError>> + Send;

    /// Deletes the sessions that [`Session::is_expired`] at `now`; returns how many.
    fn delete_expired_sessions(
        &self,
        now: Timestamp,
        timeouts: &SessionTimeouts,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
}

/// How much of what a user holds a request reads with its session: no more than the page
/// needs, since a user in many groups can hold hundreds of permissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessScope<'a> {
    /// The session and the user only (pages that ask no permission).
    Session,
    /// The user's permissions of one app (`members` → `members.*`), no groups: a route of
    /// that app, its check and its buttons.
    App(&'a str),
    /// Every permission and every group: the profile page, the admin console.
    Full,
}

impl AccessScope<'_> {
    /// Whether a lookup in this scope reads `permission`.
    pub fn covers(&self, permission: &Permission) -> bool {
        match self {
            Self::Session => false,
            Self::App(app) => permission.app() == *app,
            Self::Full => true,
        }
    }
}

/// What a signed-in request is: the session, its user, and what the user holds right now
/// (within the [`AccessScope`] it was read with).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionAccess {
    pub session: Session,
    pub user: User,
    /// The permissions in scope granted to the user directly or through a group, as
    /// [`AuthzStore::held_permissions`] answers (superuser and active are not applied).
    pub held: BTreeSet<Permission>,
    /// The user's groups, ordered by name, with [`AccessScope::Full`]; else empty.
    pub groups: Vec<Group>,
}

/// The lookup every authenticated request makes: a session together with its user.
///
/// The provided methods make one call per part; a backend that keeps them in one database
/// answers with one query (SQLite: a join and two subqueries), which is the difference on
/// the hottest path there is.
pub trait SessionUserStore: UserStore + SessionStore + AuthzStore {
    /// The session under `key` with its user and, as far as `scope` asks, the user's
    /// permissions and groups, all read fresh (so a revocation bites on the next request);
    /// `None` if the session or user is gone.
    fn get_session_access(
        &self,
        key: &SessionKey,
        scope: AccessScope<'_>,
    ) -> impl Future<Output = Result<Option<SessionAccess>, StoreError>> + Send {
        async move {
            let Some((session, user)) = self.get_session_with_user(key).await? else {
                return Ok(None);
            };
            let (held, groups) = match scope {
                AccessScope::Session => (BTreeSet::new(), Vec::new()),
                AccessScope::App(_) => {
                    let mut held = self.held_permissions(user.id).await?;
                    held.retain(|p| scope.covers(p));
                    (held, Vec::new())
                }
                AccessScope::Full => (
                    self.held_permissions(user.id).await?,
                    self.groups_of_user(user.id).await?,
                ),
            };
            Ok(Some(SessionAccess {
                session,
                user,
                held,
                groups,
            }))
        }
    }

    /// The session stored under `key` and the user it belongs to; `None` if either is gone.
    fn get_session_with_user(
        &self,
        key: &SessionKey,
    ) -> impl Future<Output = Result<Option<(Session, User)>, StoreError>> + Send {
        async move {
            let Some(session) = self.get_session(key).await? else {
                return Ok(None);
            };
            let user = self.get_by_id(session.user_id).await?;
            Ok(user.map(|user| (session, user)))
        }
    }
}

/// Single-use tokens (activation and reset links): the record of which ones were used.
pub trait TokenStore: Send + Sync {
    /// Marks `id` used; `Ok(true)` the first time, `Ok(false)` every time after. Atomic:
    /// of any number of concurrent calls with one id, exactly one gets `true`. The record
    /// is kept until `expires_at` (after that the token fails its own expiry check).
    fn consume_token(
        &self,
        id: &TokenId,
        expires_at: Timestamp,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Forgets records whose token expired before `now`; returns how many.
    fn delete_expired_tokens(
        &self,
        now: Timestamp,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
}

/// One secret that every node of a deployment shares (a token-signing key, later OAuth
/// signing keys and the drop keys), as the database keeps it: encrypted under a per-record
/// data key, which is itself encrypted under the deployment's master key (envelope
/// encryption, done by the server). The store never sees a secret in the clear.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredKey {
    /// What the key is for (`account-tokens`, …); keys of one purpose form one ring.
    pub purpose: String,
    /// Public key id, unique within the purpose: names the key in listings and tokens
    /// without revealing it.
    pub kid: String,
    /// The data key, encrypted under the master key.
    pub wrapped_key: String,
    /// The secret, encrypted under the data key.
    pub ciphertext: String,
    pub created_at: Timestamp,
    /// Set once the key is retired: kept as a record, never used to sign or verify again.
    pub retired_at: Option<Timestamp>,
}

impl fmt::Debug for StoredKey {
    // Both blobs are encrypted, but a log line has no use for them either; their lengths
    // are enough to spot a truncated row.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredKey")
            .field("purpose", &self.purpose)
            .field("kid", &self.kid)
            .field("wrapped_key_len", &self.wrapped_key.len())
            .field("ciphertext_len", &self.ciphertext.len())
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .finish()
    }
}

/// Shared secrets at rest ([`StoredKey`]), grouped by purpose.
pub trait KeyStore: Send + Sync {
    /// Every key of `purpose`, retired ones included, newest first: by `created_at`, then
    /// the later insertion first (two keys made within one second keep their order).
    fn list_keys(
        &self,
        purpose: &str,
    ) -> impl Future<Output = Result<Vec<StoredKey>, StoreError>> + Send;

    /// Stores a new key. [`StoreError::Conflict`] if the purpose already has a key (retired
    /// or not) with this kid.
    fn insert_key(&self, key: StoredKey) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Stores `key` only if its purpose has no un-retired key; `Ok(true)` if it was stored.
    /// Atomic: of nodes starting at once on one empty database, exactly one key goes in,
    /// and every node then reads that one back.
    fn insert_first_key(
        &self,
        key: StoredKey,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Marks an un-retired key retired at `at`. [`StoreError::NotFound`] if the purpose has
    /// no such key, or it is already retired.
    fn retire_key(
        &self,
        purpose: &str,
        kid: &str,
        at: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Permissions, groups and who holds what (Django's `auth_permission`, `auth_group`,
/// `auth_group_permissions`, `auth_user_groups`, `auth_user_user_permissions`). The store
/// answers what a user holds; [`crate::permission::allowed`] decides.
///
/// Grants and memberships, added or removed, name a permission that is registered and a
/// user or group that exists, else [`StoreError::NotFound`] (reads of a missing id answer
/// empty). Adding what is already there, or removing what is
/// not, is not an error: the `bool` says whether anything changed. Deleting a user or group
/// removes its memberships and grants with it.
pub trait AuthzStore: Send + Sync {
    /// Registers a permission; [`StoreError::Conflict`] if it exists.
    fn create_permission(
        &self,
        permission: &Permission,
        description: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Registers every one of `permissions` that is not registered yet (the built-in apps'
    /// permissions at start-up); existing descriptions are kept. Returns how many were new.
    fn ensure_permissions(
        &self,
        permissions: &[PermissionInfo],
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Every registered permission, ordered by name.
    fn list_permissions(
        &self,
    ) -> impl Future<Output = Result<Vec<PermissionInfo>, StoreError>> + Send;

    /// [`StoreError::Conflict`] if a group has that name.
    fn create_group(
        &self,
        name: &GroupName,
    ) -> impl Future<Output = Result<Group, StoreError>> + Send;

    fn get_group(
        &self,
        name: &GroupName,
    ) -> impl Future<Output = Result<Option<Group>, StoreError>> + Send;

    /// Every group, ordered by name.
    fn list_groups(&self) -> impl Future<Output = Result<Vec<Group>, StoreError>> + Send;

    /// Deletes a group with its memberships and grants; `Ok(false)` if it did not exist.
    fn delete_group(&self, group: GroupId)
    -> impl Future<Output = Result<bool, StoreError>> + Send;

    fn add_user_to_group(
        &self,
        user: UserId,
        group: GroupId,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    fn remove_user_from_group(
        &self,
        user: UserId,
        group: GroupId,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    fn grant_to_group(
        &self,
        group: GroupId,
        permission: &Permission,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    fn revoke_from_group(
        &self,
        group: GroupId,
        permission: &Permission,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    fn grant_to_user(
        &self,
        user: UserId,
        permission: &Permission,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    fn revoke_from_user(
        &self,
        user: UserId,
        permission: &Permission,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The groups `user` is in, ordered by name.
    fn groups_of_user(
        &self,
        user: UserId,
    ) -> impl Future<Output = Result<Vec<Group>, StoreError>> + Send;

    /// The members of `group`, ordered by id.
    fn members_of_group(
        &self,
        group: GroupId,
    ) -> impl Future<Output = Result<Vec<UserId>, StoreError>> + Send;

    /// The permissions granted to `group`.
    fn permissions_of_group(
        &self,
        group: GroupId,
    ) -> impl Future<Output = Result<BTreeSet<Permission>, StoreError>> + Send;

    /// The permissions granted to `user` directly (not through groups).
    fn direct_permissions(
        &self,
        user: UserId,
    ) -> impl Future<Output = Result<BTreeSet<Permission>, StoreError>> + Send;

    /// Everything `user` holds: direct grants and every group's, read fresh (no cache), so a
    /// change bites on the user's next request. Says nothing of superuser or active: that is
    /// [`crate::permission::allowed`]'s rule.
    fn held_permissions(
        &self,
        user: UserId,
    ) -> impl Future<Output = Result<BTreeSet<Permission>, StoreError>> + Send;
}

/// The "members" example app's list (the spec's authorization demo). The store keeps the
/// rows; who may add, approve or delete is the permission check's business, made before
/// these are called.
///
/// The users a member names (`added_by`, `approved_by`) must exist when named
/// ([`StoreError::NotFound`] otherwise, as a foreign key would say); a backend that can
/// delete accounts later clears those fields rather than losing the member.
pub trait MemberStore: Send + Sync {
    /// Stores a new, unapproved member under a fresh id (ids are never reused, even after a
    /// delete) and returns it. [`StoreError::NotFound`] if `added_by` names no account.
    fn add_member(&self, new: NewMember)
    -> impl Future<Output = Result<Member, StoreError>> + Send;

    /// The member with `id`, if there is one.
    fn get_member(
        &self,
        id: MemberId,
    ) -> impl Future<Output = Result<Option<Member>, StoreError>> + Send;

    /// Up to `limit` members with an id greater than `after` (from the first when `None`),
    /// in id order: keyset pagination, so a page stays correct while rows are added or
    /// deleted between requests. `limit` is capped at
    /// [`MEMBER_PAGE_MAX`](crate::member::MEMBER_PAGE_MAX); 0 returns nothing. The next page
    /// starts after the last id of this one.
    fn list_members(
        &self,
        after: Option<MemberId>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<Member>, StoreError>> + Send;

    /// How many members there are (approved or not).
    fn count_members(&self) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Approves member `id` as `by` at `at`; `Ok(true)` if this call approved it. An
    /// approval is final: if the member is already approved this returns `Ok(false)` and
    /// keeps the first approver and time (two approvers clicking at once both succeed, and
    /// one is recorded). Atomic: of concurrent calls, exactly one gets `true`.
    /// [`StoreError::NotFound`] if there is no such member, or if `by` names no account
    /// (checked only when the approval is recorded).
    fn approve_member(
        &self,
        id: MemberId,
        by: UserId,
        at: Timestamp,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Deletes member `id`; `Ok(false)` if it did not exist (a repeated delete, as from a
    /// double-submitted form, is not an error).
    fn delete_member(&self, id: MemberId) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// Failure of [`AuditLog::verify`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditVerifyError {
    #[error(transparent)]
    Broken(#[from] BrokenLink),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The append-only, hash-chained audit log (rule in [`crate::audit`]).
pub trait AuditLog: Send + Sync {
    /// Appends `event` as the next record and returns it. Backends serialise appends (one
    /// transaction reads the last record and inserts the next), so concurrent appenders
    /// never fork the chain or reuse a `seq`.
    fn append(
        &self,
        event: AuditEvent,
    ) -> impl Future<Output = Result<AuditRecord, StoreError>> + Send;

    /// The last `n` records, in ascending `seq` order.
    fn tail(&self, n: u32) -> impl Future<Output = Result<Vec<AuditRecord>, StoreError>> + Send;

    /// Up to `limit` records with `seq > after_seq`, ascending (pass `i64::MIN` to start).
    fn page(
        &self,
        after_seq: i64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<AuditRecord>, StoreError>> + Send;

    /// Up to `limit` records with `seq < before_seq` (every record when `None`), newest
    /// first: the console's audit page, whose "older" link passes the last `seq` shown.
    /// Keyset on `seq`, so records appended between requests never shift a page.
    fn page_desc(
        &self,
        before_seq: Option<i64>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<AuditRecord>, StoreError>> + Send;

    /// Number of records.
    fn count(&self) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Verifies the whole chain page by page; on success returns the verifier (record count
    /// and head hash).
    fn verify(&self) -> impl Future<Output = Result<ChainVerifier, AuditVerifyError>> + Send {
        async move {
            let mut verifier = ChainVerifier::new();
            // From the very bottom, not 0: a row forged with seq ≤ 0 must show up as a gap
            // rather than be skipped.
            let mut after = i64::MIN;
            loop {
                let records = self.page(after, VERIFY_PAGE).await?;
                let Some(last) = records.last() else {
                    return Ok(verifier);
                };
                after = last.seq;
                for record in &records {
                    verifier.push(record)?;
                }
            }
        }
    }
}
