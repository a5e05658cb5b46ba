//! What only the SQLite backend has: files, pragmas, migrations and foreign keys. The shared
//! contract is in `conformance.rs`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::time::Instant;

use palisade_core::{
    AuditEvent, AuditLog, AuthzStore, CsrfSecret, Email, GroupName, MemberName, MemberStore,
    NewMember, NewUser, Permission, PermissionInfo, Session, SessionId, SessionStore, StoreError,
    Timestamp, UserId, UserQuery, UserStore, Username,
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

fn user_query(search: Option<&str>, offset: u64, limit: u32) -> UserQuery {
    UserQuery {
        search: search.map(str::to_owned),
        offset,
        limit,
    }
}

/// `EXPLAIN QUERY PLAN` details of `sql` (parameters left unbound: the plan does not
/// depend on them).
async fn query_plan(store: &SqliteStore, sql: &str) -> Vec<String> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")))
        .fetch_all(store.pool())
        .await
        .unwrap();
    rows.iter()
        .map(|row| sqlx::Row::get::<String, _>(row, "detail"))
        .collect()
}

#[tokio::test]
async fn user_listing_queries_use_an_index() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = fresh(&dir).await;
    // The statements `search_users` runs (kept in step with sqlite.rs by hand).
    let listing = query_plan(
        &store,
        "SELECT id, username FROM users ORDER BY username_canonical LIMIT ? OFFSET ?",
    )
    .await;
    let searched = query_plan(
        &store,
        "SELECT id, username FROM users INDEXED BY users_canonical_search \
         WHERE username_canonical LIKE ?1 ESCAPE '\\' OR email_canonical LIKE ?2 ESCAPE '\\' \
         ORDER BY username_canonical LIMIT ?3 OFFSET ?4",
    )
    .await;
    let count = query_plan(
        &store,
        "SELECT COUNT(*) FROM users WHERE username_canonical LIKE ?1 ESCAPE '\\' \
         OR email_canonical LIKE ?2 ESCAPE '\\'",
    )
    .await;
    let total = query_plan(&store, "SELECT COUNT(*) FROM users").await;
    eprintln!(
        "listing: {listing:?}\ntotal: {total:?}\nsearch: {searched:?}\nsearch count: {count:?}"
    );
    // Ordered by walking an index, never by sorting the table.
    for plan in [&listing, &searched] {
        assert!(plan.iter().all(|d| !d.contains("TEMP B-TREE")), "{plan:?}");
        assert!(plan.iter().any(|d| d.contains("INDEX")), "{plan:?}");
    }
    // A search walks the two-column index, in order, and its count reads that index alone.
    assert!(
        searched
            .iter()
            .any(|d| d.contains("INDEX users_canonical_search")),
        "{searched:?}"
    );
    assert!(
        count
            .iter()
            .any(|d| d.contains("COVERING INDEX users_canonical_search")),
        "{count:?}"
    );
}

#[tokio::test]
async fn user_search_at_100k_users() {
    const N: u32 = 100_000;
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = fresh(&dir).await;
    // Inserted in a scrambled order (7919 is prime to N), so that id order is not name
    // order; one fixed hash string, since hashing 100,000 passwords is not the point.
    //
    // One INSERT … SELECT in SQL rather than `import_batch`, which makes a round trip per
    // row (4.5 s for 100,000 here): for these ASCII names SQL's lower() is exactly
    // `Username::canonical` and `Email::canonical`, which the lookups below confirm. The
    // one account the searches look for goes in through the store itself.
    let started = Instant::now();
    sqlx::query(
        "WITH RECURSIVE i(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM i WHERE i < ?1 - 1), \
         n(n) AS (SELECT (i * 7919) % ?1 FROM i) \
         INSERT INTO users (username, username_canonical, email, email_canonical, \
         password_hash, is_active, is_staff, is_superuser, date_joined) \
         SELECT printf('user%06d', n), printf('user%06d', n), printf('U%d@example.com', n), \
         printf('u%d@example.com', n), 'pbkdf2_sha256$1000$salt$aGFzaA==', 1, 0, 0, \
         1700000000 FROM n WHERE n != 42",
    )
    .bind(i64::from(N))
    .execute(store.pool())
    .await
    .unwrap();
    store
        .create_user(NewUser::new(
            Username::parse("user000042").unwrap(),
            Some(Email::parse("Needle.In@Haystack.example").unwrap()),
            "pbkdf2_sha256$1000$salt$aGFzaA==".into(),
            Timestamp::from_unix(1_700_000_000),
        ))
        .await
        .unwrap();
    eprintln!("insert of {N} users: {:?}", started.elapsed());
    let seven = store
        .get_by_username(&Username::parse("USER000007").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seven.email.unwrap().as_str(), "U7@example.com");
    let by_email = store
        .get_by_unique_email(&Email::parse("u7@EXAMPLE.com").unwrap())
        .await
        .unwrap();
    assert_eq!(by_email.unwrap().id, seven.id);

    // The console's first page: warm the read connections once, then time a few calls.
    let first_page = user_query(None, 0, 50);
    store.search_users(&first_page).await.unwrap();
    let mut times = Vec::new();
    let mut page = None;
    for _ in 0..20 {
        let started = Instant::now();
        page = Some(store.search_users(&first_page).await.unwrap());
        times.push(started.elapsed());
    }
    times.sort_unstable();
    eprintln!(
        "first page (50 of {N}, no search): min {:?}, median {:?}, max {:?}",
        times[0],
        times[times.len() / 2],
        times[times.len() - 1]
    );
    let page = page.unwrap();
    assert_eq!(page.total, 100_000);
    let names: Vec<_> = page.users.iter().map(|u| u.username.to_string()).collect();
    let expected: Vec<_> = (0..50).map(|n| format!("user{n:06}")).collect();
    assert_eq!(names, expected);

    // A deep page, for comparison (OFFSET walks the index up to it).
    let started = Instant::now();
    let last = store
        .search_users(&user_query(None, 99_990, 50))
        .await
        .unwrap();
    eprintln!("last page (offset 99,990): {:?}", started.elapsed());
    assert_eq!(last.users.len(), 10);
    assert_eq!(last.users[9].username.as_str(), "user099999");

    // Searches: a username prefix, and an e-mail only one account has.
    let started = Instant::now();
    let found = store
        .search_users(&user_query(Some("USER09999"), 0, 50))
        .await
        .unwrap();
    eprintln!("search 'USER09999' (10 matches): {:?}", started.elapsed());
    assert_eq!(found.total, 10);
    let names: Vec<_> = found.users.iter().map(|u| u.username.to_string()).collect();
    let expected: Vec<_> = (99_990..100_000).map(|n| format!("user{n:06}")).collect();
    assert_eq!(names, expected);

    let started = Instant::now();
    let found = store
        .search_users(&user_query(Some("needle.in@HAYSTACK"), 0, 50))
        .await
        .unwrap();
    eprintln!("search by e-mail (1 match): {:?}", started.elapsed());
    assert_eq!(found.total, 1);
    assert_eq!(found.users[0].username.as_str(), "user000042");

    // A search matching nearly everything pages like the plain listing.
    let started = Instant::now();
    let found = store
        .search_users(&user_query(Some("example.com"), 0, 50))
        .await
        .unwrap();
    eprintln!(
        "search 'example.com' (99,999 matches): {:?}",
        started.elapsed()
    );
    assert_eq!(found.total, 99_999);
    assert_eq!(found.users.len(), 50);
    assert_eq!(found.users[0].username.as_str(), "user000000");
    assert_eq!(found.users[42].username.as_str(), "user000043");
    store.close().await;
}
