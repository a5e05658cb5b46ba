//! `SqliteStore::import_users`: a bulk import is one transaction, all or nothing.

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
    let n = store
        .import_users(vec![
            (user("ann"), Some(Timestamp::from_unix(1_700_000_000))),
            (user("ben"), None),
        ])
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
    let err = store
        .import_users(vec![(user("ann"), None), (user("CAROL"), None)])
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
    let err = store
        .import_users(vec![(user("dan"), None), (user("Dan"), None)])
        .await
        .unwrap_err();
    assert_eq!(err, StoreError::Conflict);
    assert_eq!(store.list_users().await.unwrap().len(), 1);
}
