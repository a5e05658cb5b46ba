//! What only the SQLite backend has: files, pragmas, migrations and foreign keys. The shared
//! contract is in `conformance.rs`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use palisade_core::{
    AuditEvent, AuditLog, CsrfSecret, NewUser, Session, SessionId, SessionStore, StoreError,
    Timestamp, UserId, UserStore, Username,
};
use palisade_store::SqliteStore;

fn user(name: &str) -> NewUser {
    NewUser::new(
        Username::parse(name).unwrap(),
        None,
        "!unusable".into(),
        Timestamp::from_unix(1),
    )
}

async fn fresh(dir: &tempfile::TempDir) -> (SqliteStore, String) {
    let path = dir.path().join("palisade.db").to_str().unwrap().to_owned();
    let store = SqliteStore::open(&path).await.unwrap();
    store.migrate().await.unwrap();
    (store, path)
}

#[tokio::test]
async fn open_creates_the_file_with_wal_and_foreign_keys() {
    let dir = tempfile::tempdir().unwrap();
    let (store, path) = fresh(&dir).await;
    assert!(std::path::Path::new(&path).is_file());
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(fk, 1);
    let busy: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(busy, 5000);
    store.close().await;
}

#[tokio::test]
async fn migrations_are_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let (store, path) = fresh(&dir).await;
    store.create_user(user("alice")).await.unwrap();
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    store.close().await;
    // And again on a new connection pool, as `palisade serve` does after `palisade migrate`.
    let again = SqliteStore::open(&path).await.unwrap();
    again.migrate().await.unwrap();
    assert_eq!(again.list_users().await.unwrap().len(), 1);
    let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
        .fetch_one(again.pool())
        .await
        .unwrap();
    // Each migration recorded once, however often migrate ran.
    let embedded = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite"))
        .unwrap()
        .count();
    assert_eq!(applied, i64::try_from(embedded).unwrap());
    again.close().await;
}

#[tokio::test]
async fn reopening_keeps_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let (store, path) = fresh(&dir).await;
    let alice = store.create_user(user("alice")).await.unwrap();
    let id = SessionId::from_random_bytes([4; 32]);
    let session = Session::new(
        &id,
        alice.id,
        Timestamp::from_unix(10),
        CsrfSecret::from_bytes([5; 32]),
    );
    store.create_session(session.clone()).await.unwrap();
    for n in 0..3 {
        store
            .append(AuditEvent::new(Timestamp::from_unix(n), "test.event"))
            .await
            .unwrap();
    }
    store.close().await;

    // Through the URL form this time.
    let reopened = SqliteStore::open(&format!("sqlite://{path}"))
        .await
        .unwrap();
    reopened.migrate().await.unwrap();
    assert_eq!(reopened.list_users().await.unwrap(), vec![alice]);
    assert_eq!(
        reopened.get_session(&id.key()).await.unwrap(),
        Some(session)
    );
    assert_eq!(reopened.verify().await.unwrap().checked(), 3);
    let next = reopened
        .append(AuditEvent::new(Timestamp::from_unix(9), "test.event"))
        .await
        .unwrap();
    assert_eq!(next.seq, 4);
    reopened.close().await;
}

#[tokio::test]
async fn sessions_need_an_existing_user_and_die_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = fresh(&dir).await;
    let id = SessionId::from_random_bytes([6; 32]);
    let orphan = Session::new(
        &id,
        UserId::new(77),
        Timestamp::from_unix(1),
        CsrfSecret::from_bytes([0; 32]),
    );
    assert_eq!(
        store.create_session(orphan).await,
        Err(StoreError::NotFound)
    );

    let alice = store.create_user(user("alice")).await.unwrap();
    let session = Session::new(
        &id,
        alice.id,
        Timestamp::from_unix(1),
        CsrfSecret::from_bytes([0; 32]),
    );
    store.create_session(session).await.unwrap();
    // No user deletion API yet; the schema's ON DELETE CASCADE is what a future one relies on.
    sqlx::query("DELETE FROM users WHERE id = ?")
        .bind(alice.id.get())
        .execute(store.pool())
        .await
        .unwrap();
    assert_eq!(store.get_session(&id.key()).await.unwrap(), None);
}

#[tokio::test]
async fn hand_edited_rows_are_reported_as_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = fresh(&dir).await;
    let alice = store.create_user(user("alice")).await.unwrap();
    sqlx::query("UPDATE users SET username = 'not valid' WHERE id = ?")
        .bind(alice.id.get())
        .execute(store.pool())
        .await
        .unwrap();
    assert!(matches!(
        store.get_by_id(alice.id).await,
        Err(StoreError::Corrupt(_))
    ));
    assert!(matches!(
        store.list_users().await,
        Err(StoreError::Corrupt(_))
    ));
}

#[tokio::test]
async fn schema_refuses_bad_values() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = fresh(&dir).await;
    // STRICT tables and CHECKs: no text in integer columns, no short session keys.
    let bad_flag = sqlx::query(
        "INSERT INTO users (username, username_canonical, password_hash, is_active, is_staff, \
         is_superuser, date_joined) VALUES ('x', 'x', '', 2, 0, 0, 0)",
    )
    .execute(store.pool())
    .await;
    assert!(bad_flag.is_err());
    let bad_time = sqlx::query(
        "INSERT INTO users (username, username_canonical, password_hash, is_active, is_staff, \
         is_superuser, date_joined) VALUES ('y', 'y', '', 1, 0, 0, 'yesterday')",
    )
    .execute(store.pool())
    .await;
    assert!(bad_time.is_err());
}

#[tokio::test]
async fn open_fails_cleanly_for_an_impossible_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing-dir").join("palisade.db");
    let err = SqliteStore::open(path.to_str().unwrap()).await.unwrap_err();
    assert!(matches!(err, StoreError::Backend(_)));
}
