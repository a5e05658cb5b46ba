//! The embedded default backend: one SQLite file, through sqlx. It holds accounts, sessions,
//! the audit log, used single-use tokens, the shared (encrypted) signing keys, and the
//! permission registry with groups, memberships and grants, and the members example app's
//! list (`migrations/sqlite/`, one file per schema step).
//!
//! Connections run in WAL mode (readers never block the writer), with foreign keys on,
//! `synchronous = FULL` (a committed audit record survives a power cut) and a 5-second busy
//! timeout so concurrent writers wait for the lock instead of failing. Queries are plain
//! strings with bound parameters, never string-built SQL, and need no database at build time.
//!
//! Writes go through sqlx's pool. The reads every authenticated request makes (session, user,
//! the user's sessions, the permissions the user holds) go through a few dedicated read
//! connections instead: sqlx runs each SQLite connection on a thread of its own, and a pooled
//! query costs three round trips between threads (test on acquire, the query, a ping on
//! release) where a held connection costs one. Those hand-offs were most of the CPU time of
//! an authenticated page.

use std::collections::BTreeSet;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use palisade_core::audit::AuditRecord;
use palisade_core::token::TokenId;
use palisade_core::{
    AccessScope, AuditEvent, AuditLog, AuthzStore, CsrfSecret, Email, Group, GroupId, GroupName,
    KeyStore, MEMBER_PAGE_MAX, Member, MemberId, MemberName, MemberStore, NewMember, NewUser,
    Permission, PermissionInfo, Session, SessionAccess, SessionKey, SessionStore, SessionTimeouts,
    SessionUserStore, StoreError, StoredKey, Timestamp, TokenStore, User, UserId, UserPage,
    UserQuery, UserStore, Username,
};
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{Connection, Row};
use tokio::sync::{Mutex, MutexGuard};

/// The schema, compiled into the binary so `palisade migrate` needs no files next to it.
static MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");

/// How long a connection waits for another writer's lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// SQLite has one writer at a time; a few connections let reads proceed beside it.
const MAX_CONNECTIONS: u32 = 4;
/// Read connections for the per-request lookups: one per core of a small server; a point
/// read by primary key takes microseconds, so more would only wait on the CPU.
const READ_CONNECTIONS: usize = 2;

// Column lists as macros so `concat!` builds each query as one `&'static str` at compile
// time: no SQL is ever assembled at run time.
macro_rules! user_columns {
    () => {
        "id, username, email, password_hash, first_name, last_name, is_active, is_staff, \
         is_superuser, date_joined, last_login"
    };
}
macro_rules! session_columns {
    () => {
        "key_hash, user_id, created_at, last_seen, ip, user_agent, csrf_secret"
    };
}
macro_rules! key_columns {
    () => {
        "purpose, kid, wrapped_key, ciphertext, created_at, retired_at"
    };
}
macro_rules! member_columns {
    () => {
        "id, name, email, approved, added_by, added_at, approved_by, approved_at"
    };
}
macro_rules! audit_columns {
    () => {
        "seq, prev_hash, hash, at, actor, action, target, detail"
    };
}

/// A SQLite database. Cloning is cheap and shares the connections.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    readers: Arc<Readers>,
}

/// Held read connections (see the module docs). `None` once the store is closed.
#[derive(Debug)]
struct Readers {
    conns: Vec<Mutex<Option<SqliteConnection>>>,
    next: AtomicUsize,
}

impl Readers {
    async fn open(options: &SqliteConnectOptions) -> Result<Self, StoreError> {
        let mut conns = Vec::with_capacity(READ_CONNECTIONS);
        for _ in 0..READ_CONNECTIONS {
            let conn = SqliteConnection::connect_with(options)
                .await
                .map_err(map_err)?;
            conns.push(Mutex::new(Some(conn)));
        }
        Ok(Self {
            conns,
            next: AtomicUsize::new(0),
        })
    }

    /// A free read connection, or the next one in turn once it is free.
    async fn get(&self) -> Result<MutexGuard<'_, Option<SqliteConnection>>, StoreError> {
        for conn in &self.conns {
            if let Ok(guard) = conn.try_lock() {
                return Ok(guard);
            }
        }
        let turn = self.next.fetch_add(1, Ordering::Relaxed) % self.conns.len().max(1);
        match self.conns.get(turn) {
            Some(conn) => Ok(conn.lock().await),
            None => Err(closed()),
        }
    }

    async fn close(&self) {
        for conn in &self.conns {
            if let Some(conn) = conn.lock().await.take() {
                // Closing a read connection has nothing to flush; an error here changes
                // nothing for the caller.
                let _ = conn.close().await;
            }
        }
    }
}

fn closed() -> StoreError {
    StoreError::Backend("the database is closed".to_owned())
}

/// Runs one read query on a held read connection: `read!(self, |conn| query.fetch_…(conn))`.
macro_rules! read {
    ($store:expr, |$conn:ident| $query:expr) => {{
        let mut guard = $store.readers.get().await?;
        let $conn = guard.as_mut().ok_or_else(closed)?;
        $query.await.map_err(map_err)
    }};
}

impl SqliteStore {
    /// Opens (creating it if missing) the database at `url_or_path`: a `sqlite:` URL
    /// (`sqlite:///srv/palisade-data/palisade.db`, `sqlite::memory:`) or a plain file path.
    /// Does not migrate: call [`SqliteStore::migrate`].
    pub async fn open(url_or_path: &str) -> Result<Self, StoreError> {
        let options = if url_or_path.starts_with("sqlite:") {
            SqliteConnectOptions::from_str(url_or_path)
                .map_err(|e| StoreError::Backend(e.to_string()))?
        } else {
            SqliteConnectOptions::new().filename(url_or_path)
        };
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let readers = Arc::new(Readers::open(&options).await?);
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            // sqlx runs each SQLite connection on its own thread, so a ping is a round trip
            // between threads; by default every acquire pings, on top of the ping on release.
            // An embedded database cannot drop a connection the way a network server can, and
            // those pings were the largest cost of an authenticated page (perf, bench/).
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .map_err(map_err)?;
        Ok(Self { pool, readers })
    }

    /// Applies the embedded migrations that have not run yet; running it again is a no-op.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Backend(e.to_string()))
    }

    /// Waits for in-flight queries, then closes every connection (checkpointing the WAL).
    pub async fn close(&self) {
        self.readers.close().await;
        self.pool.close().await;
    }

    /// The connection pool, for tooling (`palisade db copy`) and tests that must reach
    /// below the traits, e.g. to tamper with a row.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Writes a whole import in one transaction: registers the missing permissions, creates
    /// the groups (reusing one whose name exists, which then gains the batch's permissions
    /// and keeps its own), inserts the accounts, their memberships and direct grants. All
    /// or nothing: [`StoreError::Conflict`] if a username is taken, [`StoreError::NotFound`]
    /// if a user names a group that is neither in the batch nor stored, or a permission
    /// that is neither in the batch nor registered.
    pub async fn import_batch(
        &self,
        batch: &crate::ImportBatch,
    ) -> Result<crate::ImportCounts, StoreError> {
        let mut counts = crate::ImportCounts::default();
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        counts.permissions_created = insert_permissions(&mut tx, &batch.permissions).await?;
        let mut group_ids: std::collections::HashMap<&GroupName, i64> =
            std::collections::HashMap::new();
        for group in &batch.groups {
            // DO NOTHING returns no row on a conflict: the name exists, so reuse that group.
            let created: Option<i64> = sqlx::query_scalar(
                "INSERT INTO groups (name) VALUES (?) ON CONFLICT (name) DO NOTHING RETURNING id",
            )
            .bind(group.name.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?;
            let id = match created {
                Some(id) => {
                    counts.groups_created = counts.groups_created.saturating_add(1);
                    id
                }
                None => {
                    counts.groups_existing = counts.groups_existing.saturating_add(1);
                    sqlx::query_scalar("SELECT id FROM groups WHERE name = ?")
                        .bind(group.name.as_str())
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(map_err)?
                }
            };
            group_ids.insert(&group.name, id);
            for permission in &group.permissions {
                let result = sqlx::query(
                    "INSERT INTO group_permissions (group_id, permission) VALUES (?, ?) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(id)
                .bind(permission.as_str())
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
                counts.group_grants = counts.group_grants.saturating_add(result.rows_affected());
            }
        }
        for imported in &batch.users {
            let user_id = insert_user(&mut *tx, &imported.user, imported.last_login).await?;
            counts.users = counts.users.saturating_add(1);
            for name in &imported.groups {
                let group_id = match group_ids.get(name) {
                    Some(&id) => id,
                    None => sqlx::query_scalar("SELECT id FROM groups WHERE name = ?")
                        .bind(name.as_str())
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(map_err)?
                        .ok_or(StoreError::NotFound)?,
                };
                let result = sqlx::query(
                    "INSERT INTO user_groups (user_id, group_id) VALUES (?, ?) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(user_id)
                .bind(group_id)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
                counts.memberships = counts.memberships.saturating_add(result.rows_affected());
            }
            for permission in &imported.permissions {
                // An unregistered permission fails its foreign key: NotFound.
                let result = sqlx::query(
                    "INSERT INTO user_permissions (user_id, permission) VALUES (?, ?) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(user_id)
                .bind(permission.as_str())
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
                counts.user_grants = counts.user_grants.saturating_add(result.rows_affected());
            }
        }
        // Dropping `tx` on an early return above rolls everything back.
        tx.commit().await.map_err(map_err)?;
        Ok(counts)
    }
}

/// Registers each permission that is not registered yet, inside `tx`; returns how many were
/// new. Shared by start-up registration and the Django import.
async fn insert_permissions(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    permissions: &[PermissionInfo],
) -> Result<u64, StoreError> {
    let mut added: u64 = 0;
    for info in permissions {
        let result = sqlx::query(
            "INSERT INTO permissions (name, app, codename, description) VALUES (?, ?, ?, ?) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(info.permission.as_str())
        .bind(info.permission.app())
        .bind(info.permission.codename())
        .bind(info.description.as_str())
        .execute(&mut **tx)
        .await
        .map_err(map_err)?;
        added = added.saturating_add(result.rows_affected());
    }
    Ok(added)
}

/// The one INSERT of a user row, shared by `create_user` and `import_batch` so the column
/// list and the canonical forms cannot drift apart. Returns the new id.
async fn insert_user<'e, E>(
    executor: E,
    new: &NewUser,
    last_login: Option<Timestamp>,
) -> Result<i64, StoreError>
where
    E: sqlx::Executor<'e, Database = sqlx::Sqlite>,
{
    sqlx::query_scalar(
        "INSERT INTO users (username, username_canonical, email, email_canonical, \
         password_hash, first_name, last_name, is_active, is_staff, is_superuser, \
         date_joined, last_login) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(new.username.as_str())
    .bind(new.username.canonical())
    .bind(new.email.as_ref().map(Email::as_str))
    .bind(new.email.as_ref().map(Email::canonical))
    .bind(new.password_hash.as_str())
    .bind(new.first_name.as_str())
    .bind(new.last_name.as_str())
    .bind(new.is_active)
    .bind(new.is_staff)
    .bind(new.is_superuser)
    .bind(new.date_joined.unix())
    .bind(last_login.map(Timestamp::unix))
    .fetch_one(executor)
    .await
    .map_err(map_err)
}

/// Maps a driver error to the domain error. sqlx messages name tables and constraints but
/// never bound values, so they carry no secrets.
fn map_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::NotFound,
        sqlx::Error::RowNotFound => StoreError::NotFound,
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
            StoreError::Corrupt(e.to_string())
        }
        _ => StoreError::Backend(e.to_string()),
    }
}

fn corrupt(what: &str, err: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {err}"))
}

fn array32(bytes: Vec<u8>, what: &str) -> Result<[u8; 32], StoreError> {
    bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt(format!("{what} is not 32 bytes")))
}

fn user_from_row(row: &SqliteRow) -> Result<User, StoreError> {
    let id: i64 = row.try_get("id").map_err(map_err)?;
    let username: String = row.try_get("username").map_err(map_err)?;
    let email: Option<String> = row.try_get("email").map_err(map_err)?;
    Ok(User {
        id: UserId::new(id),
        username: Username::parse(&username)
            .map_err(|e| corrupt(&format!("user {id} username"), e))?,
        email: email
            .map(|e| Email::parse(&e))
            .transpose()
            .map_err(|e| corrupt(&format!("user {id} email"), e))?,
        password_hash: row.try_get("password_hash").map_err(map_err)?,
        first_name: row.try_get("first_name").map_err(map_err)?,
        last_name: row.try_get("last_name").map_err(map_err)?,
        is_active: row.try_get("is_active").map_err(map_err)?,
        is_staff: row.try_get("is_staff").map_err(map_err)?,
        is_superuser: row.try_get("is_superuser").map_err(map_err)?,
        date_joined: Timestamp::from_unix(row.try_get("date_joined").map_err(map_err)?),
        last_login: row
            .try_get::<Option<i64>, _>("last_login")
            .map_err(map_err)?
            .map(Timestamp::from_unix),
    })
}

fn session_from_row(row: &SqliteRow) -> Result<Session, StoreError> {
    Ok(Session {
        key: SessionKey::from_bytes(array32(
            row.try_get("key_hash").map_err(map_err)?,
            "session key",
        )?),
        user_id: UserId::new(row.try_get("user_id").map_err(map_err)?),
        created_at: Timestamp::from_unix(row.try_get("created_at").map_err(map_err)?),
        last_seen: Timestamp::from_unix(row.try_get("last_seen").map_err(map_err)?),
        ip: row.try_get("ip").map_err(map_err)?,
        user_agent: row.try_get("user_agent").map_err(map_err)?,
        csrf_secret: CsrfSecret::from_bytes(array32(
            row.try_get("csrf_secret").map_err(map_err)?,
            "csrf secret",
        )?),
    })
}

fn key_from_row(row: &SqliteRow) -> Result<StoredKey, StoreError> {
    Ok(StoredKey {
        purpose: row.try_get("purpose").map_err(map_err)?,
        kid: row.try_get("kid").map_err(map_err)?,
        wrapped_key: row.try_get("wrapped_key").map_err(map_err)?,
        ciphertext: row.try_get("ciphertext").map_err(map_err)?,
        created_at: Timestamp::from_unix(row.try_get("created_at").map_err(map_err)?),
        retired_at: row
            .try_get::<Option<i64>, _>("retired_at")
            .map_err(map_err)?
            .map(Timestamp::from_unix),
    })
}

/// The one INSERT of a key row, shared by `insert_key` and `insert_first_key`.
async fn insert_key_row<'e, E>(executor: E, key: &StoredKey) -> Result<(), StoreError>
where
    E: sqlx::Executor<'e, Database = sqlx::Sqlite>,
{
    sqlx::query(
        "INSERT INTO signing_keys (purpose, kid, wrapped_key, ciphertext, created_at, retired_at) \
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(key.purpose.as_str())
    .bind(key.kid.as_str())
    .bind(key.wrapped_key.as_str())
    .bind(key.ciphertext.as_str())
    .bind(key.created_at.unix())
    .bind(key.retired_at.map(Timestamp::unix))
    .execute(executor)
    .await
    .map_err(map_err)?;
    Ok(())
}

fn audit_from_row(row: &SqliteRow) -> Result<AuditRecord, StoreError> {
    let seq: i64 = row.try_get("seq").map_err(map_err)?;
    let detail: String = row.try_get("detail").map_err(map_err)?;
    Ok(AuditRecord {
        seq,
        prev_hash: array32(
            row.try_get("prev_hash").map_err(map_err)?,
            "audit prev_hash",
        )?,
        hash: array32(row.try_get("hash").map_err(map_err)?, "audit hash")?,
        event: AuditEvent {
            at: Timestamp::from_unix(row.try_get("at").map_err(map_err)?),
            actor: row.try_get("actor").map_err(map_err)?,
            action: row.try_get("action").map_err(map_err)?,
            target: row.try_get("target").map_err(map_err)?,
            detail: serde_json::from_str(&detail)
                .map_err(|e| corrupt(&format!("audit record {seq} detail"), e))?,
        },
    })
}

fn permission_from_name(name: &str) -> Result<Permission, StoreError> {
    Permission::parse(name).map_err(|e| corrupt("permission name", e))
}

fn permission_set(names: Vec<String>) -> Result<BTreeSet<Permission>, StoreError> {
    names.iter().map(|n| permission_from_name(n)).collect()
}

fn group_from_row(row: &SqliteRow) -> Result<Group, StoreError> {
    let id: i64 = row.try_get("id").map_err(map_err)?;
    let name: String = row.try_get("name").map_err(map_err)?;
    Ok(Group {
        id: GroupId::new(id),
        name: GroupName::parse(&name).map_err(|e| corrupt(&format!("group {id} name"), e))?,
    })
}

fn member_from_row(row: &SqliteRow) -> Result<Member, StoreError> {
    let id: i64 = row.try_get("id").map_err(map_err)?;
    let name: String = row.try_get("name").map_err(map_err)?;
    let email: Option<String> = row.try_get("email").map_err(map_err)?;
    let user = |column: &str| -> Result<Option<UserId>, StoreError> {
        Ok(row
            .try_get::<Option<i64>, _>(column)
            .map_err(map_err)?
            .map(UserId::new))
    };
    Ok(Member {
        id: MemberId::new(id),
        name: MemberName::parse(&name).map_err(|e| corrupt(&format!("member {id} name"), e))?,
        email: email
            .map(|e| Email::parse(&e))
            .transpose()
            .map_err(|e| corrupt(&format!("member {id} email"), e))?,
        approved: row.try_get("approved").map_err(map_err)?,
        added_by: user("added_by")?,
        added_at: Timestamp::from_unix(row.try_get("added_at").map_err(map_err)?),
        approved_by: user("approved_by")?,
        approved_at: row
            .try_get::<Option<i64>, _>("approved_at")
            .map_err(map_err)?
            .map(Timestamp::from_unix),
    })
}

/// What a removal returns once its DELETE matched no row: `Ok(false)` if the rows it names
/// exist (there was nothing to remove), else `NotFound`, as for the matching grant.
fn nothing_removed(named_rows_exist: bool) -> Result<bool, StoreError> {
    if named_rows_exist {
        Ok(false)
    } else {
        Err(StoreError::NotFound)
    }
}

/// A `LIKE … ESCAPE '\'` pattern matching `needle` as a plain substring: the search box is
/// user input, and a `%` or `_` typed there must find that character, not match anything.
fn like_substring(needle: &str) -> String {
    let mut pattern = String::with_capacity(needle.len() + 2);
    pattern.push('%');
    for c in needle.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// `Ok(())` if an UPDATE/DELETE hit a row, else `NotFound`.
fn require_row(result: sqlx::sqlite::SqliteQueryResult) -> Result<(), StoreError> {
    if result.rows_affected() == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

impl SqliteStore {
    async fn fetch_user(&self, sql: &'static str, value: &str) -> Result<Option<User>, StoreError> {
        let row = read!(self, |conn| sqlx::query(sql)
            .bind(value)
            .fetch_optional(conn))?;
        row.as_ref().map(user_from_row).transpose()
    }
}

impl UserStore for SqliteStore {
    async fn create_user(&self, new: NewUser) -> Result<User, StoreError> {
        // One statement, so atomic without an explicit transaction; the UNIQUE index on
        // username_canonical turns a concurrent duplicate into a Conflict.
        let id = insert_user(&self.pool, &new, None).await?;
        Ok(new.into_user(UserId::new(id)))
    }

    async fn get_by_id(&self, id: UserId) -> Result<Option<User>, StoreError> {
        let row = read!(self, |conn| sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE id = ?"
        ))
        .bind(id.get())
        .fetch_optional(conn))?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn get_by_username(&self, username: &Username) -> Result<Option<User>, StoreError> {
        self.fetch_user(
            concat!(
                "SELECT ",
                user_columns!(),
                " FROM users WHERE username_canonical = ?"
            ),
            username.canonical(),
        )
        .await
    }

    async fn get_by_unique_email(&self, email: &Email) -> Result<Option<User>, StoreError> {
        // Two rows are enough to know the address is ambiguous.
        let rows = sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE email_canonical = ? ORDER BY id LIMIT 2"
        ))
        .bind(email.canonical())
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        match rows.as_slice() {
            [only] => user_from_row(only).map(Some),
            _ => Ok(None),
        }
    }

    async fn users_with_email(&self, email: &Email) -> Result<Vec<User>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE email_canonical = ? ORDER BY id"
        ))
        .bind(email.canonical())
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter().map(user_from_row).collect()
    }

    async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter().map(user_from_row).collect()
    }

    async fn search_users(&self, query: &UserQuery) -> Result<UserPage, StoreError> {
        let limit = i64::from(query.capped_limit());
        // An offset beyond i64 is past any table's end: the page is empty either way.
        let offset = i64::try_from(query.offset).unwrap_or(i64::MAX);
        // Two statements, each its own snapshot: a user created between them can make the
        // total disagree with the page by one, which a page counter can live with; a read
        // transaction would cost two more round trips on every listing.
        let (rows, total): (Vec<SqliteRow>, i64) = match query.search_terms() {
            None => {
                // Walks the username_canonical index in order and stops after the page.
                let rows = read!(self, |conn| sqlx::query(concat!(
                    "SELECT ",
                    user_columns!(),
                    " FROM users ORDER BY username_canonical LIMIT ? OFFSET ?"
                ))
                .bind(limit)
                .bind(offset)
                .fetch_all(conn))?;
                let total = read!(self, |conn| sqlx::query_scalar(
                    "SELECT COUNT(*) FROM users"
                )
                .fetch_one(conn))?;
                (rows, total)
            }
            Some(terms) => {
                let username = like_substring(&terms.username);
                let email = like_substring(&terms.email);
                // INDEXED BY the two-column index (migration 0006), which the planner would
                // not pick by itself since the row has more columns: in list order, with both
                // searched columns in it, SQLite tests the LIKEs on the index entry and reads
                // a table row only for a match (left to itself it walks the one-column index
                // and reads every row: 180 ms instead of 10 at 100,000 users).
                let rows = read!(self, |conn| sqlx::query(concat!(
                    "SELECT ",
                    user_columns!(),
                    " FROM users INDEXED BY users_canonical_search \
                     WHERE username_canonical LIKE ?1 ESCAPE '\\' \
                     OR email_canonical LIKE ?2 ESCAPE '\\' \
                     ORDER BY username_canonical LIMIT ?3 OFFSET ?4"
                ))
                .bind(username.as_str())
                .bind(email.as_str())
                .bind(limit)
                .bind(offset)
                .fetch_all(conn))?;
                let total = read!(self, |conn| sqlx::query_scalar(
                    "SELECT COUNT(*) FROM users WHERE username_canonical LIKE ?1 ESCAPE '\\' \
                     OR email_canonical LIKE ?2 ESCAPE '\\'"
                )
                .bind(username.as_str())
                .bind(email.as_str())
                .fetch_one(conn))?;
                (rows, total)
            }
        };
        Ok(UserPage {
            users: rows.iter().map(user_from_row).collect::<Result<_, _>>()?,
            total: u64::try_from(total).map_err(|e| StoreError::Backend(e.to_string()))?,
        })
    }

    async fn set_password_hash(&self, id: UserId, password_hash: &str) -> Result<(), StoreError> {
        let result = sqlx::query("UPDATE users SET password_hash = ? WHERE id = ?")
            .bind(password_hash)
            .bind(id.get())
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        require_row(result)
    }

    async fn set_active(&self, id: UserId, active: bool) -> Result<(), StoreError> {
        let result = sqlx::query("UPDATE users SET is_active = ? WHERE id = ?")
            .bind(active)
            .bind(id.get())
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        require_row(result)
    }

    async fn set_flags(
        &self,
        id: UserId,
        is_staff: bool,
        is_superuser: bool,
    ) -> Result<(), StoreError> {
        let result = sqlx::query("UPDATE users SET is_staff = ?, is_superuser = ? WHERE id = ?")
            .bind(is_staff)
            .bind(is_superuser)
            .bind(id.get())
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        require_row(result)
    }

    async fn set_last_login(&self, id: UserId, at: Timestamp) -> Result<(), StoreError> {
        let result = sqlx::query("UPDATE users SET last_login = ? WHERE id = ?")
            .bind(at.unix())
            .bind(id.get())
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        require_row(result)
    }
}

impl TokenStore for SqliteStore {
    async fn consume_token(&self, id: &TokenId, expires_at: Timestamp) -> Result<bool, StoreError> {
        // The primary key makes the insert the test: of concurrent uses, one row goes in and
        // every other insert is ignored.
        let result = sqlx::query(
            "INSERT INTO used_tokens (id, expires_at) VALUES (?, ?) ON CONFLICT (id) DO NOTHING",
        )
        .bind(id.as_bytes().as_slice())
        .bind(expires_at.unix())
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(result.rows_affected() == 1)
    }

    async fn delete_expired_tokens(&self, now: Timestamp) -> Result<u64, StoreError> {
        let result = sqlx::query("DELETE FROM used_tokens WHERE expires_at < ?")
            .bind(now.unix())
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(result.rows_affected())
    }
}

impl KeyStore for SqliteStore {
    async fn list_keys(&self, purpose: &str) -> Result<Vec<StoredKey>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            key_columns!(),
            " FROM signing_keys WHERE purpose = ? ORDER BY created_at DESC, rowid DESC"
        ))
        .bind(purpose)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter().map(key_from_row).collect()
    }

    async fn insert_key(&self, key: StoredKey) -> Result<(), StoreError> {
        // The primary key (purpose, kid) turns a duplicate into a Conflict.
        insert_key_row(&self.pool, &key).await
    }

    async fn insert_first_key(&self, key: StoredKey) -> Result<bool, StoreError> {
        // IMMEDIATE takes the write lock before the check, so of nodes starting together on
        // one database only the first sees "no key" (others wait on the busy timeout, then
        // find its key and insert nothing).
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(map_err)?;
        let active: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM signing_keys WHERE purpose = ? AND retired_at IS NULL",
        )
        .bind(key.purpose.as_str())
        .fetch_one(&mut *tx)
        .await
        .map_err(map_err)?;
        if active > 0 {
            // Dropping `tx` rolls back the (empty) transaction.
            return Ok(false);
        }
        insert_key_row(&mut *tx, &key).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }

    async fn retire_key(&self, purpose: &str, kid: &str, at: Timestamp) -> Result<(), StoreError> {
        let result = sqlx::query(
            "UPDATE signing_keys SET retired_at = ? \
             WHERE purpose = ? AND kid = ? AND retired_at IS NULL",
        )
        .bind(at.unix())
        .bind(purpose)
        .bind(kid)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        require_row(result)
    }
}

impl SqliteStore {
    /// Whether the user and the permission a removal names both exist (likewise the two
    /// below); asked only when its DELETE matched nothing, so a removal that removes
    /// something costs one statement.
    async fn user_and_permission_exist(
        &self,
        user: UserId,
        permission: &Permission,
    ) -> Result<bool, StoreError> {
        sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM users WHERE id = ?) \
             AND EXISTS (SELECT 1 FROM permissions WHERE name = ?)",
        )
        .bind(user.get())
        .bind(permission.as_str())
        .fetch_one(&self.pool)
        .await
        .map_err(map_err)
    }

    async fn user_and_group_exist(&self, user: UserId, group: GroupId) -> Result<bool, StoreError> {
        sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM users WHERE id = ?) \
             AND EXISTS (SELECT 1 FROM groups WHERE id = ?)",
        )
        .bind(user.get())
        .bind(group.get())
        .fetch_one(&self.pool)
        .await
        .map_err(map_err)
    }

    async fn group_and_permission_exist(
        &self,
        group: GroupId,
        permission: &Permission,
    ) -> Result<bool, StoreError> {
        sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM groups WHERE id = ?) \
             AND EXISTS (SELECT 1 FROM permissions WHERE name = ?)",
        )
        .bind(group.get())
        .bind(permission.as_str())
        .fetch_one(&self.pool)
        .await
        .map_err(map_err)
    }
}

/// Grants and memberships are inserted with `ON CONFLICT DO NOTHING`: a pair that is already
/// there changes no row (`Ok(false)`), while a user, group or permission that does not exist
/// still fails its foreign key (upserts only absorb uniqueness conflicts), which `map_err`
/// turns into `NotFound`.
impl AuthzStore for SqliteStore {
    async fn create_permission(
        &self,
        permission: &Permission,
        description: &str,
    ) -> Result<(), StoreError> {
        // The primary key on name turns a duplicate into a Conflict.
        sqlx::query(
            "INSERT INTO permissions (name, app, codename, description) VALUES (?, ?, ?, ?)",
        )
        .bind(permission.as_str())
        .bind(permission.app())
        .bind(permission.codename())
        .bind(description)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn ensure_permissions(&self, permissions: &[PermissionInfo]) -> Result<u64, StoreError> {
        // One transaction: one commit (one fsync) for the whole start-up list, and nodes
        // starting together each insert only what no other has inserted yet.
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let added = insert_permissions(&mut tx, permissions).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(added)
    }

    async fn list_permissions(&self) -> Result<Vec<PermissionInfo>, StoreError> {
        let rows = sqlx::query("SELECT name, description FROM permissions ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.iter()
            .map(|row| {
                let name: String = row.try_get("name").map_err(map_err)?;
                Ok(PermissionInfo {
                    permission: permission_from_name(&name)?,
                    description: row.try_get("description").map_err(map_err)?,
                })
            })
            .collect()
    }

    async fn create_group(&self, name: &GroupName) -> Result<Group, StoreError> {
        // The UNIQUE constraint on name turns a duplicate into a Conflict.
        let id: i64 = sqlx::query_scalar("INSERT INTO groups (name) VALUES (?) RETURNING id")
            .bind(name.as_str())
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(Group {
            id: GroupId::new(id),
            name: name.clone(),
        })
    }

    async fn get_group(&self, name: &GroupName) -> Result<Option<Group>, StoreError> {
        let row = sqlx::query("SELECT id, name FROM groups WHERE name = ?")
            .bind(name.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.as_ref().map(group_from_row).transpose()
    }

    async fn list_groups(&self) -> Result<Vec<Group>, StoreError> {
        let rows = sqlx::query("SELECT id, name FROM groups ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.iter().map(group_from_row).collect()
    }

    async fn delete_group(&self, group: GroupId) -> Result<bool, StoreError> {
        // ON DELETE CASCADE removes the group's memberships and grants in the same statement.
        let result = sqlx::query("DELETE FROM groups WHERE id = ?")
            .bind(group.get())
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(result.rows_affected() > 0)
    }

    async fn add_user_to_group(&self, user: UserId, group: GroupId) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "INSERT INTO user_groups (user_id, group_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(user.get())
        .bind(group.get())
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(result.rows_affected() > 0)
    }

    async fn remove_user_from_group(
        &self,
        user: UserId,
        group: GroupId,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query("DELETE FROM user_groups WHERE user_id = ? AND group_id = ?")
            .bind(user.get())
            .bind(group.get())
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        if result.rows_affected() > 0 {
            return Ok(true);
        }
        nothing_removed(self.user_and_group_exist(user, group).await?)
    }

    async fn grant_to_group(
        &self,
        group: GroupId,
        permission: &Permission,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "INSERT INTO group_permissions (group_id, permission) VALUES (?, ?) \
             ON CONFLICT DO NOTHING",
        )
        .bind(group.get())
        .bind(permission.as_str())
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(result.rows_affected() > 0)
    }

    async fn revoke_from_group(
        &self,
        group: GroupId,
        permission: &Permission,
    ) -> Result<bool, StoreError> {
        let result =
            sqlx::query("DELETE FROM group_permissions WHERE group_id = ? AND permission = ?")
                .bind(group.get())
                .bind(permission.as_str())
                .execute(&self.pool)
                .await
                .map_err(map_err)?;
        if result.rows_affected() > 0 {
            return Ok(true);
        }
        nothing_removed(self.group_and_permission_exist(group, permission).await?)
    }

    async fn grant_to_user(
        &self,
        user: UserId,
        permission: &Permission,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "INSERT INTO user_permissions (user_id, permission) VALUES (?, ?) \
             ON CONFLICT DO NOTHING",
        )
        .bind(user.get())
        .bind(permission.as_str())
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(result.rows_affected() > 0)
    }

    async fn revoke_from_user(
        &self,
        user: UserId,
        permission: &Permission,
    ) -> Result<bool, StoreError> {
        let result =
            sqlx::query("DELETE FROM user_permissions WHERE user_id = ? AND permission = ?")
                .bind(user.get())
                .bind(permission.as_str())
                .execute(&self.pool)
                .await
                .map_err(map_err)?;
        if result.rows_affected() > 0 {
            return Ok(true);
        }
        nothing_removed(self.user_and_permission_exist(user, permission).await?)
    }

    async fn groups_of_user(&self, user: UserId) -> Result<Vec<Group>, StoreError> {
        // On the held read connections: the profile page asks on every view.
        let rows = read!(self, |conn| sqlx::query(
            "SELECT groups.id, groups.name FROM user_groups \
             JOIN groups ON groups.id = user_groups.group_id \
             WHERE user_groups.user_id = ? ORDER BY groups.name",
        )
        .bind(user.get())
        .fetch_all(conn))?;
        rows.iter().map(group_from_row).collect()
    }

    async fn members_of_group(&self, group: GroupId) -> Result<Vec<UserId>, StoreError> {
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT user_id FROM user_groups WHERE group_id = ? ORDER BY user_id",
        )
        .bind(group.get())
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(ids.into_iter().map(UserId::new).collect())
    }

    async fn permissions_of_group(
        &self,
        group: GroupId,
    ) -> Result<BTreeSet<Permission>, StoreError> {
        let names: Vec<String> =
            sqlx::query_scalar("SELECT permission FROM group_permissions WHERE group_id = ?")
                .bind(group.get())
                .fetch_all(&self.pool)
                .await
                .map_err(map_err)?;
        permission_set(names)
    }

    async fn direct_permissions(&self, user: UserId) -> Result<BTreeSet<Permission>, StoreError> {
        let names: Vec<String> =
            sqlx::query_scalar("SELECT permission FROM user_permissions WHERE user_id = ?")
                .bind(user.get())
                .fetch_all(&self.pool)
                .await
                .map_err(map_err)?;
        permission_set(names)
    }

    async fn held_permissions(&self, user: UserId) -> Result<BTreeSet<Permission>, StoreError> {
        // Runs on every authorized request, so one statement on a held read connection (see
        // the module docs), each half a primary-key range scan: the grant tables hold the
        // permission names, so neither half joins `permissions`. UNION drops a permission
        // held both directly and through a group. No transaction is open on the connection
        // between requests, so each call reads the latest commit: a revocation bites at once.
        let names: Vec<String> = read!(self, |conn| sqlx::query_scalar(
            "SELECT permission FROM user_permissions WHERE user_id = ? \
             UNION \
             SELECT group_permissions.permission FROM user_groups \
             JOIN group_permissions ON group_permissions.group_id = user_groups.group_id \
             WHERE user_groups.user_id = ?"
        )
        .bind(user.get())
        .bind(user.get())
        .fetch_all(conn))?;
        permission_set(names)
    }
}

/// Each method is one statement, so atomic without an explicit transaction; a missing
/// `added_by` or `approved_by` account fails its foreign key, which `map_err` turns into
/// `NotFound`.
impl MemberStore for SqliteStore {
    async fn add_member(&self, new: NewMember) -> Result<Member, StoreError> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO members (name, email, added_by, added_at) VALUES (?, ?, ?, ?) \
             RETURNING id",
        )
        .bind(new.name.as_str())
        .bind(new.email.as_ref().map(Email::as_str))
        .bind(new.added_by.map(UserId::get))
        .bind(new.added_at.unix())
        .fetch_one(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(new.into_member(MemberId::new(id)))
    }

    async fn get_member(&self, id: MemberId) -> Result<Option<Member>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            member_columns!(),
            " FROM members WHERE id = ?"
        ))
        .bind(id.get())
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        row.as_ref().map(member_from_row).transpose()
    }

    async fn list_members(
        &self,
        after: Option<MemberId>,
        limit: u32,
    ) -> Result<Vec<Member>, StoreError> {
        // From the very bottom when `after` is None, not 0: ids are positive, but nothing
        // here should depend on it. A range scan of the primary key either way.
        // On the held read connections: the members page lists on every view.
        let rows = read!(self, |conn| sqlx::query(concat!(
            "SELECT ",
            member_columns!(),
            " FROM members WHERE id > ? ORDER BY id LIMIT ?"
        ))
        .bind(after.map_or(i64::MIN, MemberId::get))
        .bind(i64::from(limit.min(MEMBER_PAGE_MAX)))
        .fetch_all(conn))?;
        rows.iter().map(member_from_row).collect()
    }

    async fn count_members(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM members")
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)?;
        u64::try_from(n).map_err(|e| StoreError::Backend(e.to_string()))
    }

    async fn approve_member(
        &self,
        id: MemberId,
        by: UserId,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        // `approved = 0` in the WHERE makes the UPDATE the test: of concurrent approvals one
        // changes the row and the rest match nothing, so the first approver is kept.
        let result = sqlx::query(
            "UPDATE members SET approved = 1, approved_by = ?, approved_at = ? \
             WHERE id = ? AND approved = 0",
        )
        .bind(by.get())
        .bind(at.unix())
        .bind(id.get())
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        if result.rows_affected() > 0 {
            return Ok(true);
        }
        // Asked only when nothing changed: already approved, or no such member.
        let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM members WHERE id = ?)")
            .bind(id.get())
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)?;
        if exists {
            Ok(false)
        } else {
            Err(StoreError::NotFound)
        }
    }

    async fn delete_member(&self, id: MemberId) -> Result<bool, StoreError> {
        let result = sqlx::query("DELETE FROM members WHERE id = ?")
            .bind(id.get())
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(result.rows_affected() > 0)
    }
}

impl SessionUserStore for SqliteStore {
    async fn get_session_with_user(
        &self,
        key: &SessionKey,
    ) -> Result<Option<(Session, User)>, StoreError> {
        // The two column lists share no name, so each row parser finds its own columns.
        let row = read!(self, |conn| sqlx::query(concat!(
            "SELECT ",
            session_columns!(),
            ", ",
            user_columns!(),
            " FROM sessions JOIN users ON users.id = sessions.user_id WHERE key_hash = ?"
        ))
        .bind(key.as_bytes().as_slice())
        .fetch_optional(conn))?;
        row.as_ref()
            .map(|row| Ok((session_from_row(row)?, user_from_row(row)?)))
            .transpose()
    }

    async fn get_session_access(
        &self,
        key: &SessionKey,
        scope: AccessScope<'_>,
    ) -> Result<Option<SessionAccess>, StoreError> {
        // Every signed-in request asks this, so it is one statement on a held read
        // connection: each statement is a round trip to the connection's thread, and three
        // of them cost more than the queries. The permissions (the same UNION as
        // `held_permissions`) and the groups come back as JSON arrays from correlated
        // subqueries, each a primary-key range scan from the user's id. An app's scope is a
        // range of the grant tables' primary keys (`app.` up to `app/`, the next byte), so a
        // user in many groups costs one short range per group, not every permission held.
        let (app_from, app_to) = match scope {
            AccessScope::Session => {
                let found = self.get_session_with_user(key).await?;
                return Ok(found.map(|(session, user)| SessionAccess {
                    session,
                    user,
                    held: BTreeSet::new(),
                    groups: Vec::new(),
                }));
            }
            AccessScope::App(app) => (format!("{app}."), format!("{app}/")),
            // Every name sorts within this range: names are ASCII letters, digits, `_`, `.`.
            AccessScope::Full => (String::new(), "\u{7f}".to_owned()),
        };
        let full = matches!(scope, AccessScope::Full);
        let row = read!(self, |conn| sqlx::query(concat!(
            "SELECT ",
            session_columns!(),
            ", ",
            user_columns!(),
            ", (SELECT json_group_array(p) FROM (\
                 SELECT permission AS p FROM user_permissions WHERE user_id = users.id \
                 AND permission >= ?2 AND permission < ?3 \
                 UNION \
                 SELECT group_permissions.permission FROM user_groups \
                 JOIN group_permissions ON group_permissions.group_id = user_groups.group_id \
                 WHERE user_groups.user_id = users.id \
                 AND group_permissions.permission >= ?2 AND group_permissions.permission < ?3)) \
                 AS access_held, \
             CASE WHEN ?4 THEN (SELECT json_group_array(json_array(gid, gname)) FROM (\
                 SELECT groups.id AS gid, groups.name AS gname FROM user_groups \
                 JOIN groups ON groups.id = user_groups.group_id \
                 WHERE user_groups.user_id = users.id ORDER BY groups.name)) \
                 ELSE '[]' END AS access_groups \
             FROM sessions JOIN users ON users.id = sessions.user_id WHERE key_hash = ?1"
        ))
        .bind(key.as_bytes().as_slice())
        .bind(app_from.as_str())
        .bind(app_to.as_str())
        .bind(full)
        .fetch_optional(conn))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let held: String = row.try_get("access_held").map_err(map_err)?;
        let held: Vec<String> =
            serde_json::from_str(&held).map_err(|e| corrupt("held permissions", e))?;
        let groups: String = row.try_get("access_groups").map_err(map_err)?;
        let groups: Vec<(i64, String)> =
            serde_json::from_str(&groups).map_err(|e| corrupt("groups of a user", e))?;
        let groups = groups
            .into_iter()
            .map(|(id, name)| {
                Ok(Group {
                    id: GroupId::new(id),
                    name: GroupName::parse(&name)
                        .map_err(|e| corrupt(&format!("group {id} name"), e))?,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(Some(SessionAccess {
            session: session_from_row(&row)?,
            user: user_from_row(&row)?,
            held: permission_set(held)?,
            groups,
        }))
    }
}

impl SessionStore for SqliteStore {
    async fn create_session(&self, session: Session) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sessions (key_hash, user_id, created_at, last_seen, ip, user_agent, csrf_secret) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(session.key.as_bytes().as_slice())
        .bind(session.user_id.get())
        .bind(session.created_at.unix())
        .bind(session.last_seen.unix())
        .bind(session.ip.as_deref())
        .bind(session.user_agent.as_deref())
        .bind(session.csrf_secret.as_bytes().as_slice())
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn get_session(&self, key: &SessionKey) -> Result<Option<Session>, StoreError> {
        let row = read!(self, |conn| sqlx::query(concat!(
            "SELECT ",
            session_columns!(),
            " FROM sessions WHERE key_hash = ?"
        ))
        .bind(key.as_bytes().as_slice())
        .fetch_optional(conn))?;
        row.as_ref().map(session_from_row).transpose()
    }

    async fn touch_session(
        &self,
        key: &SessionKey,
        last_seen: Timestamp,
    ) -> Result<(), StoreError> {
        // MAX: concurrent requests may finish out of order; last_seen never moves back.
        let result =
            sqlx::query("UPDATE sessions SET last_seen = MAX(last_seen, ?) WHERE key_hash = ?")
                .bind(last_seen.unix())
                .bind(key.as_bytes().as_slice())
                .execute(&self.pool)
                .await
                .map_err(map_err)?;
        require_row(result)
    }

    async fn delete_session(&self, key: &SessionKey) -> Result<bool, StoreError> {
        let result = sqlx::query("DELETE FROM sessions WHERE key_hash = ?")
            .bind(key.as_bytes().as_slice())
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(result.rows_affected() > 0)
    }

    async fn delete_sessions_for_user(
        &self,
        user: UserId,
        except: Option<&SessionKey>,
    ) -> Result<u64, StoreError> {
        let result = match except {
            Some(keep) => {
                sqlx::query("DELETE FROM sessions WHERE user_id = ? AND key_hash <> ?")
                    .bind(user.get())
                    .bind(keep.as_bytes().as_slice())
                    .execute(&self.pool)
                    .await
            }
            None => {
                sqlx::query("DELETE FROM sessions WHERE user_id = ?")
                    .bind(user.get())
                    .execute(&self.pool)
                    .await
            }
        }
        .map_err(map_err)?;
        Ok(result.rows_affected())
    }

    async fn list_sessions_for_user(&self, user: UserId) -> Result<Vec<Session>, StoreError> {
        let rows = read!(self, |conn| sqlx::query(concat!(
            "SELECT ",
            session_columns!(),
            " FROM sessions WHERE user_id = ? ORDER BY created_at, key_hash"
        ))
        .bind(user.get())
        .fetch_all(conn))?;
        rows.iter().map(session_from_row).collect()
    }

    async fn list_all_sessions(&self) -> Result<Vec<Session>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            session_columns!(),
            " FROM sessions ORDER BY created_at, key_hash"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter().map(session_from_row).collect()
    }

    async fn delete_expired_sessions(
        &self,
        now: Timestamp,
        timeouts: &SessionTimeouts,
    ) -> Result<u64, StoreError> {
        // The same boundary rule as Session::is_expired.
        let result = sqlx::query("DELETE FROM sessions WHERE last_seen <= ? OR created_at <= ?")
            .bind(timeouts.idle_cutoff(now).unix())
            .bind(timeouts.absolute_cutoff(now).unix())
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(result.rows_affected())
    }
}

impl AuditLog for SqliteStore {
    async fn append(&self, event: AuditEvent) -> Result<AuditRecord, StoreError> {
        let detail =
            serde_json::to_string(&event.detail).map_err(|e| StoreError::Backend(e.to_string()))?;
        // IMMEDIATE takes the write lock before reading the head, so two appenders cannot both
        // read the same last record (a deferred transaction would only discover the conflict
        // at its first write, as SQLITE_BUSY, without waiting).
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(map_err)?;
        let head = sqlx::query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?;
        let last = match head {
            Some(row) => Some((
                row.try_get::<i64, _>("seq").map_err(map_err)?,
                array32(row.try_get("hash").map_err(map_err)?, "audit hash")?,
            )),
            None => None,
        };
        let record = AuditRecord::next_after(last, event);
        sqlx::query(
            "INSERT INTO audit_log (seq, prev_hash, hash, at, actor, action, target, detail) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(record.seq)
        .bind(record.prev_hash.as_slice())
        .bind(record.hash.as_slice())
        .bind(record.event.at.unix())
        .bind(record.event.actor.as_deref())
        .bind(record.event.action.as_str())
        .bind(record.event.target.as_deref())
        .bind(detail)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(record)
    }

    async fn tail(&self, n: u32) -> Result<Vec<AuditRecord>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            audit_columns!(),
            " FROM audit_log ORDER BY seq DESC LIMIT ?"
        ))
        .bind(i64::from(n))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        let mut records = rows
            .iter()
            .map(audit_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        records.reverse();
        Ok(records)
    }

    async fn page(&self, after_seq: i64, limit: u32) -> Result<Vec<AuditRecord>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            audit_columns!(),
            " FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?"
        ))
        .bind(after_seq)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter().map(audit_from_row).collect()
    }

    async fn page_desc(
        &self,
        before_seq: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        // seq is the rowid, so each is a backwards walk of the table from its end or from
        // `before_seq`. Two statements rather than `?1 IS NULL OR seq < ?1`, which the
        // planner cannot turn into a rowid range; nor `seq < i64::MAX`, which would miss a
        // (forged) record at i64::MAX.
        let limit = i64::from(limit);
        let rows = match before_seq {
            None => read!(self, |conn| sqlx::query(concat!(
                "SELECT ",
                audit_columns!(),
                " FROM audit_log ORDER BY seq DESC LIMIT ?"
            ))
            .bind(limit)
            .fetch_all(conn))?,
            Some(before) => read!(self, |conn| sqlx::query(concat!(
                "SELECT ",
                audit_columns!(),
                " FROM audit_log WHERE seq < ? ORDER BY seq DESC LIMIT ?"
            ))
            .bind(before)
            .bind(limit)
            .fetch_all(conn))?,
        };
        rows.iter().map(audit_from_row).collect()
    }

    async fn count(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log")
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)?;
        u64::try_from(n).map_err(|e| StoreError::Backend(e.to_string()))
    }
}
