//! What only the SQLite backend has: files, pragmas, migrations and foreign keys. The shared
//! contract is in `conformance.rs`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use palisade_core::{
    AuditEvent, AuditLog, AuthzStore, CsrfSecret, GroupName, MemberName, MemberStore, NewMember,
    NewUser, Permission, PermissionInfo, Session, SessionId, SessionStore, StoreError, Timestamp,
    UserId, UserStore, Username,
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

async fn count_rows(store: &SqliteStore, query: &'static str) -> i64 {
    sqlx::query_scalar(query)
        .fetch_one(store.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn deleting_a_user_removes_its_memberships_and_grants() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = fresh(&dir).await;
    let view = Permission::parse("members.view_member").unwrap();
    store
        .ensure_permissions(&[PermissionInfo {
            permission: view.clone(),
            description: String::new(),
        }])
        .await
        .unwrap();
    let alice = store.create_user(user("alice")).await.unwrap();
    let bob = store.create_user(user("bob")).await.unwrap();
    let staff = store
        .create_group(&GroupName::parse("Staff").unwrap())
        .await
        .unwrap();
    for member in [alice.id, bob.id] {
        store.add_user_to_group(member, staff.id).await.unwrap();
        store.grant_to_user(member, &view).await.unwrap();
    }
    store.grant_to_group(staff.id, &view).await.unwrap();

    // No user deletion API yet; the schema's ON DELETE CASCADE is what a future one relies on.
    sqlx::query("DELETE FROM users WHERE id = ?")
        .bind(alice.id.get())
        .execute(store.pool())
        .await
        .unwrap();
    assert_eq!(
        count_rows(&store, "SELECT COUNT(*) FROM user_groups").await,
        1
    );
    assert_eq!(
        count_rows(&store, "SELECT COUNT(*) FROM user_permissions").await,
        1
    );
    assert!(store.held_permissions(alice.id).await.unwrap().is_empty());
    // The group, its grant and the other member are untouched.
    assert_eq!(
        store.members_of_group(staff.id).await.unwrap(),
        vec![bob.id]
    );
    assert_eq!(
        store.permissions_of_group(staff.id).await.unwrap(),
        [view.clone()].into()
    );
    assert_eq!(
        store.add_user_to_group(alice.id, staff.id).await,
        Err(StoreError::NotFound)
    );

    // Likewise a permission removed from the registry takes every grant of it along.
    sqlx::query("DELETE FROM permissions WHERE name = ?")
        .bind(view.as_str())
        .execute(store.pool())
        .await
        .unwrap();
    assert!(store.held_permissions(bob.id).await.unwrap().is_empty());
    assert_eq!(
        count_rows(&store, "SELECT COUNT(*) FROM group_permissions").await,
        0
    );
}

#[tokio::test]
async fn permission_rows_keep_their_parts_and_parse_back() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = fresh(&dir).await;
    // The app and codename columns must spell the name.
    let mismatched = sqlx::query(
        "INSERT INTO permissions (name, app, codename) VALUES ('members.view', 'drop', 'view')",
    )
    .execute(store.pool())
    .await;
    assert!(mismatched.is_err());
    let view = Permission::parse("members.view_member").unwrap();
    store.create_permission(&view, "Can view").await.unwrap();
    let parts: (String, String) =
        sqlx::query_as("SELECT app, codename FROM permissions WHERE name = ?")
            .bind(view.as_str())
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(parts, ("members".to_owned(), "view_member".to_owned()));

    // A hand-inserted name that is no valid permission is reported, never passed on.
    sqlx::query("INSERT INTO permissions (name, app, codename) VALUES ('Bad.X', 'Bad', 'X')")
        .execute(store.pool())
        .await
        .unwrap();
    assert!(matches!(
        store.list_permissions().await,
        Err(StoreError::Corrupt(_))
    ));
    let alice = store.create_user(user("alice")).await.unwrap();
    sqlx::query("INSERT INTO user_permissions (user_id, permission) VALUES (?, 'Bad.X')")
        .bind(alice.id.get())
        .execute(store.pool())
        .await
        .unwrap();
    assert!(matches!(
        store.held_permissions(alice.id).await,
        Err(StoreError::Corrupt(_))
    ));
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

#[tokio::test]
async fn deleting_an_account_keeps_the_members_it_added_and_approved() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = fresh(&dir).await;
    let alice = store.create_user(user("alice")).await.unwrap();
    let m = store
        .add_member(NewMember {
            name: MemberName::parse("Ada").unwrap(),
            email: None,
            added_by: Some(alice.id),
            added_at: Timestamp::from_unix(10),
        })
        .await
        .unwrap();
    assert!(
        store
            .approve_member(m.id, alice.id, Timestamp::from_unix(20))
            .await
            .unwrap()
    );
    // No user deletion API yet; ON DELETE SET NULL is what a future one relies on.
    sqlx::query("DELETE FROM users WHERE id = ?")
        .bind(alice.id.get())
        .execute(store.pool())
        .await
        .unwrap();
    let kept = store.get_member(m.id).await.unwrap().unwrap();
    assert_eq!((kept.added_by, kept.approved_by), (None, None));
    // The approval itself stands.
    assert!(kept.approved);
    assert_eq!(kept.approved_at, Some(Timestamp::from_unix(20)));
}

#[tokio::test]
async fn member_rows_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = fresh(&dir).await;
    let alice = store.create_user(user("alice")).await.unwrap();
    // `approved` and `approved_at` must agree, and an unapproved member has no approver.
    for (approved, approved_by, approved_at) in [
        (1, None, None),
        (0, None, Some(5)),
        (0, Some(alice.id.get()), None),
        (2, None, Some(5)),
    ] {
        let bad = sqlx::query(
            "INSERT INTO members (name, approved, approved_by, added_at, approved_at) \
             VALUES ('x', ?, ?, 1, ?)",
        )
        .bind(approved)
        .bind(approved_by)
        .bind(approved_at)
        .execute(store.pool())
        .await;
        assert!(bad.is_err(), "{approved} {approved_by:?} {approved_at:?}");
    }
    let empty_name = sqlx::query("INSERT INTO members (name, added_at) VALUES ('', 1)")
        .execute(store.pool())
        .await;
    assert!(empty_name.is_err());
    let text_time = sqlx::query("INSERT INTO members (name, added_at) VALUES ('x', 'now')")
        .execute(store.pool())
        .await;
    assert!(text_time.is_err());

    // A hand-edited name that is no valid MemberName is reported, never passed on.
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO members (name, added_at) VALUES ('a' || char(10) || 'b', 1) RETURNING id",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert!(matches!(
        store.get_member(palisade_core::MemberId::new(id)).await,
        Err(StoreError::Corrupt(_))
    ));
    assert!(matches!(
        store.list_members(None, 10).await,
        Err(StoreError::Corrupt(_))
    ));
}
