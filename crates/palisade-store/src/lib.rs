//! # palisade-store
//!
//! Implementations of `palisade-core`'s storage traits ([`UserStore`], [`SessionStore`],
//! [`AuditLog`], [`TokenStore`], [`KeyStore`], [`AuthzStore`] for permissions, groups and
//! who holds what, and [`MemberStore`] for the members example app):
//! - [`MemoryStore`]: in-process, for unit tests of the use cases and the server.
//! - [`SqliteStore`]: the embedded default, one SQLite file through sqlx, with its schema in
//!   `migrations/sqlite/` compiled into the binary.
//!
//! It also holds the file-backed implementation of the password policy's breach check,
//! [`BreachedPasswordFile`] (a local copy of Have I Been Pwned's Pwned Passwords, searched
//! with positioned reads), since core does no I/O.
//!
//! PostgreSQL (accounts at scale) and Redis (sessions, counters) come next, each as one more
//! module here with its own migrations.
//!
//! ## Design
//! - **One contract, one test suite.** The behaviour every backend must share (conflicts on
//!   case-insensitive usernames, `NotFound` on updates of missing rows, session expiry
//!   boundaries, audit chains that stay valid under concurrent appends) is written once in
//!   `tests/conformance.rs` and instantiated per backend, the way rustls runs one API suite
//!   per crypto provider. A new backend is one line there.
//! - **The domain stays in core.** Backends store and load; they do not decide. Rows are
//!   parsed back through the core newtypes (a hand-edited invalid username is reported as
//!   [`StoreError::Corrupt`], never passed on), and audit hashes come from
//!   `palisade_core::audit`, so every backend chains identically.
//! - **Atomic writes.** Each write is one statement or one transaction: no half-written rows.
//!   Audit appends take the write lock before reading the chain head.
//! - **Referential rules are the store's.** A grant or membership that names a missing user,
//!   group or unregistered permission is [`StoreError::NotFound`] (foreign keys in SQL, the
//!   same checks in memory), and deleting a group takes its grants and memberships with it.
//!   Which permissions a user holds is read fresh on every call; whether that allows an
//!   action is `palisade_core::allowed`'s rule, not a backend's.
//! - **Errors carry no secrets.** Driver errors are mapped to [`StoreError`] with messages
//!   that name tables and constraints, never bound values.

mod breached;
mod import;
mod memory;
mod sqlite;

pub use breached::{BreachedFileError, BreachedPasswordFile};
pub use import::{ImportBatch, ImportCounts, ImportedGroup, ImportedUser};
pub use memory::MemoryStore;
pub use palisade_core::{
    AuditLog, AuthzStore, KeyStore, MemberStore, SessionStore, SessionUserStore, StoreError,
    StoredKey, TokenStore, UserStore,
};
pub use sqlite::SqliteStore;
