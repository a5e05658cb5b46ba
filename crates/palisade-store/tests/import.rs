//! `SqliteStore::import_batch`: a bulk import is one transaction, all or nothing.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use palisade_core::{NewUser, StoreError, Timestamp, UserStore, Username};
use palisade_store::SqliteStore;

fn user(name: &str) -> NewUser {
    NewUser::new(
        Username::parse(name).unwrap(),
        None,
        "pbkdf2_sha256$1000$salt$aGFzaA==".into(),
        Timestamp::from_unix(1),
    )
}

/// Imports `users` alone (no groups or grants) and returns how many were stored.
async fn import_users(
    store: &SqliteStore,
    users: Vec<(NewUser, Option<Timestamp>)>,
) -> Result<u64, StoreError> {
    let batch = palisade_store::ImportBatch {
        users: users
            .into_iter()
            .map(|(user, last_login)| palisade_store::ImportedUser::new(user, last_login))
            .collect(),
        ..palisade_store::ImportBatch::default()
    };
    store.import_batch(&batch).await.map(|counts| counts.users)
}

async fn fresh(dir: &tempfile::TempDir) -> SqliteStore {
    let path = dir.path().join("palisade.db").to_str().unwrap().to_owned();
    let store = SqliteStore::open(&path).await.unwrap();
    store.migrate().await.unwrap();
    store
}

#[tokio::test]
async fn import_inserts_everything_with_last_login() {
    let dir = tempfile::tempdir().unwrap();
    let store = fresh(&dir).await;
    let n = import_users(
        &store,
        vec![
            (user("ann"), Some(Timestamp::from_unix(1_700_000_000))),
            (user("ben"), None),
        ],
    )
    .await
    .unwrap();
    assert_eq!(n, 2);
    let ann = store
        .get_by_username(&Username::parse("ANN").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ann.last_login, Some(Timestamp::from_unix(1_700_000_000)));
    assert_eq!(ann.password_hash, "pbkdf2_sha256$1000$salt$aGFzaA==");
    assert_eq!(store.list_users().await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_conflict_rolls_the_whole_import_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = fresh(&dir).await;
    store.create_user(user("carol")).await.unwrap();
    let err = import_users(&store, vec![(user("ann"), None), (user("CAROL"), None)])
        .await
        .unwrap_err();
    assert_eq!(err, StoreError::Conflict);
    let names: Vec<String> = store
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.username.to_string())
        .collect();
    assert_eq!(names, ["carol"], "ann must not survive the failed import");
    // Duplicates within one import are refused the same way.
    let err = import_users(&store, vec![(user("dan"), None), (user("Dan"), None)])
        .await
        .unwrap_err();
    assert_eq!(err, StoreError::Conflict);
    assert_eq!(store.list_users().await.unwrap().len(), 1);
}

fn perm(name: &str) -> palisade_core::Permission {
    palisade_core::Permission::parse(name).unwrap()
}

fn group(name: &str) -> palisade_core::GroupName {
    palisade_core::GroupName::parse(name).unwrap()
}

#[tokio::test]
async fn a_batch_writes_groups_permissions_memberships_and_grants() {
    use palisade_core::{AuthzStore, PermissionInfo};
    use palisade_store::{ImportBatch, ImportCounts, ImportedGroup, ImportedUser};
    let dir = tempfile::tempdir().unwrap();
    let store = fresh(&dir).await;
    // An existing group with a grant of its own, and a registered permission.
    let old = store.create_group(&group("staff")).await.unwrap();
    store
        .create_permission(&perm("reports.view_report"), "Mine")
        .await
        .unwrap();
    store
        .grant_to_group(old.id, &perm("reports.view_report"))
        .await
        .unwrap();
    let mut ann = ImportedUser::new(user("ann"), None);
    ann.groups = vec![group("staff"), group("editors")];
    ann.permissions = vec![perm("reports.export_report")];
    let batch = ImportBatch {
        permissions: vec![
            PermissionInfo {
                permission: perm("reports.view_report"),
                description: "Theirs".into(),
            },
            PermissionInfo {
                permission: perm("reports.export_report"),
                description: "Can export".into(),
            },
        ],
        groups: vec![
            ImportedGroup {
                name: group("staff"),
                permissions: vec![perm("reports.export_report"), perm("reports.view_report")],
            },
            ImportedGroup {
                name: group("editors"),
                permissions: vec![],
            },
        ],
        users: vec![ann, ImportedUser::new(user("ben"), None)],
    };
    let counts = store.import_batch(&batch).await.unwrap();
    assert_eq!(
        counts,
        ImportCounts {
            users: 2,
            groups_created: 1,
            groups_existing: 1,
            permissions_created: 1,
            memberships: 2,
            group_grants: 1,
            user_grants: 1,
        }
    );
    let ann = store
        .get_by_username(&Username::parse("ann").unwrap())
        .await
        .unwrap()
        .unwrap();
    let held = store.held_permissions(ann.id).await.unwrap();
    assert!(held.contains(&perm("reports.export_report")));
    assert!(held.contains(&perm("reports.view_report")), "through staff");
    assert_eq!(store.groups_of_user(ann.id).await.unwrap().len(), 2);
    assert_eq!(store.list_groups().await.unwrap().len(), 2);
    let kept = store.list_permissions().await.unwrap();
    let view = kept
        .iter()
        .find(|p| p.permission == perm("reports.view_report"))
        .unwrap();
    assert_eq!(view.description, "Mine", "a registered description is kept");
}

#[tokio::test]
async fn a_bad_reference_rolls_the_whole_batch_back() {
    use palisade_core::{AuthzStore, PermissionInfo};
    use palisade_store::{ImportBatch, ImportedGroup, ImportedUser};
    let dir = tempfile::tempdir().unwrap();
    let store = fresh(&dir).await;
    let mut ann = ImportedUser::new(user("ann"), None);
    ann.groups = vec![group("ghosts")];
    let batch = ImportBatch {
        permissions: vec![PermissionInfo {
            permission: perm("reports.export_report"),
            description: "Can export".into(),
        }],
        groups: vec![ImportedGroup {
            name: group("staff"),
            permissions: vec![perm("reports.export_report")],
        }],
        users: vec![ann],
    };
    assert_eq!(
        store.import_batch(&batch).await.unwrap_err(),
        StoreError::NotFound
    );
    // An unregistered direct grant fails the same way.
    let mut ben = ImportedUser::new(user("ben"), None);
    ben.permissions = vec![perm("reports.unknown")];
    let batch = ImportBatch {
        users: vec![ben],
        ..ImportBatch::default()
    };
    assert_eq!(
        store.import_batch(&batch).await.unwrap_err(),
        StoreError::NotFound
    );
    assert!(store.list_users().await.unwrap().is_empty());
    assert!(store.list_groups().await.unwrap().is_empty());
    assert!(
        !store
            .list_permissions()
            .await
            .unwrap()
            .iter()
            .any(|p| p.permission == perm("reports.export_report"))
    );
}
