//! The storage contract, written once and run against every backend.
//!
//! Each backend supplies a [`Backend`]: how to make a fresh, empty, migrated store and how to
//! tamper with an audit row behind the store's back. The `conformance!` lines at the bottom
//! instantiate every case for every backend; adding PostgreSQL is one more line there.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeSet;
use std::sync::Arc;

use palisade_core::audit::{AuditRecord, BrokenLinkKind, GENESIS_HASH};
use palisade_core::token::TokenId;
use palisade_core::{
    AccessScope, AuditEvent, AuditLog, AuditVerifyError, AuthzStore, CsrfSecret, Email, GroupId,
    GroupName, KeyStore, MEMBER_PAGE_MAX, Member, MemberId, MemberName, MemberStore, NewMember,
    NewUser, Permission, PermissionInfo, Session, SessionId, SessionStore, SessionTimeouts,
    SessionUserStore, StoreError, StoredKey, Timestamp, TokenStore, USER_PAGE_MAX, User, UserId,
    UserPage, UserQuery, UserStore, Username, allowed, verify_chain,
};
use palisade_store::{MemoryStore, SqliteStore};
use serde_json::json;

trait Backend: Send + Sync + Sized + 'static {
    type Store: UserStore
        + SessionStore
        + SessionUserStore
        + TokenStore
        + KeyStore
        + AuthzStore
        + MemberStore
        + AuditLog
        + 'static;

    /// An empty, migrated store of its own (no state shared with other tests).
    async fn fresh() -> Self;
    fn store(&self) -> &Arc<Self::Store>;
    /// Changes the `action` of audit record `seq` in place, without re-chaining, as someone
    /// with direct database access could.
    async fn tamper_audit_action(&self, seq: i64, action: &str);
}

struct Memory {
    store: Arc<MemoryStore>,
}

impl Backend for Memory {
    type Store = MemoryStore;

    async fn fresh() -> Self {
        Self {
            store: Arc::new(MemoryStore::new()),
        }
    }

    fn store(&self) -> &Arc<MemoryStore> {
        &self.store
    }

    async fn tamper_audit_action(&self, seq: i64, action: &str) {
        let mut record = self.store.page(seq - 1, 1).await.unwrap().remove(0);
        assert_eq!(record.seq, seq);
        record.event.action = action.to_owned();
        self.store.overwrite_audit_record(record).unwrap();
    }
}

struct Sqlite {
    store: Arc<SqliteStore>,
    // Held so the database file lives as long as the test.
    _dir: tempfile::TempDir,
}

impl Backend for Sqlite {
    type Store = SqliteStore;

    async fn fresh() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("palisade.db");
        let store = SqliteStore::open(path.to_str().unwrap()).await.unwrap();
        store.migrate().await.unwrap();
        Self {
            store: Arc::new(store),
            _dir: dir,
        }
    }

    fn store(&self) -> &Arc<SqliteStore> {
        &self.store
    }

    async fn tamper_audit_action(&self, seq: i64, action: &str) {
        let result = sqlx::query("UPDATE audit_log SET action = ? WHERE seq = ?")
            .bind(action)
            .bind(seq)
            .execute(self.store.pool())
            .await
            .unwrap();
        assert_eq!(result.rows_affected(), 1);
    }
}

// ---------------------------------------------------------------------------------------
// Helpers

fn ts(secs: i64) -> Timestamp {
    Timestamp::from_unix(secs)
}

fn new_user(name: &str, email: Option<&str>) -> NewUser {
    NewUser::new(
        Username::parse(name).unwrap(),
        email.map(|e| Email::parse(e).unwrap()),
        format!("argon2$argon2id$v=19$m=19456,t=2,p=1$salt${name}"),
        ts(1_700_000_000),
    )
}

async fn add_user<S: UserStore>(store: &S, name: &str, email: Option<&str>) -> User {
    store.create_user(new_user(name, email)).await.unwrap()
}

fn session_for(user: UserId, seed: u8, created: i64) -> (SessionId, Session) {
    let id = SessionId::from_random_bytes([seed; 32]);
    let mut session = Session::new(
        &id,
        user,
        ts(created),
        CsrfSecret::from_bytes([seed ^ 0xff; 32]),
    );
    session.ip = Some("192.0.2.1".into());
    session.user_agent = Some(format!("agent {seed}"));
    (id, session)
}

fn event(n: i64) -> AuditEvent {
    AuditEvent {
        at: ts(1_700_000_000 + n),
        actor: Some("alice".into()),
        action: "login.success".into(),
        target: if n % 2 == 0 { Some("bob".into()) } else { None },
        detail: json!({"n": n, "ip": "192.0.2.1", "nested": {"z": [1, 2.5, null], "a": "é\"\n"}}),
    }
}

fn stored_key(purpose: &str, kid: &str, created: i64) -> StoredKey {
    StoredKey {
        purpose: purpose.to_owned(),
        kid: kid.to_owned(),
        wrapped_key: format!("wrapped-{kid}"),
        ciphertext: format!("ciphertext-{kid}"),
        created_at: ts(created),
        retired_at: None,
    }
}

fn kids(keys: &[StoredKey]) -> Vec<&str> {
    keys.iter().map(|k| k.kid.as_str()).collect()
}

fn perm(name: &str) -> Permission {
    Permission::parse(name).unwrap()
}

fn perms(names: &[&str]) -> BTreeSet<Permission> {
    names.iter().map(|n| perm(n)).collect()
}

fn info(name: &str, description: &str) -> PermissionInfo {
    PermissionInfo {
        permission: perm(name),
        description: description.to_owned(),
    }
}

fn group_name(name: &str) -> GroupName {
    GroupName::parse(name).unwrap()
}

/// Registers `names` (with an empty description) so they can be granted.
async fn register<S: AuthzStore>(store: &S, names: &[&str]) {
    let infos: Vec<_> = names.iter().map(|n| info(n, "")).collect();
    store.ensure_permissions(&infos).await.unwrap();
}

fn new_member(name: &str, email: Option<&str>, added_by: Option<UserId>, at: i64) -> NewMember {
    NewMember {
        name: MemberName::parse(name).unwrap(),
        email: email.map(|e| Email::parse(e).unwrap()),
        added_by,
        added_at: ts(at),
    }
}

fn member_ids(members: &[Member]) -> Vec<MemberId> {
    members.iter().map(|m| m.id).collect()
}

// ---------------------------------------------------------------------------------------
// Cases

mod cases {
    use super::*;

    pub async fn users_create_get_list<B: Backend>() {
        let b = B::fresh().await;
        let s = b.store();
        assert!(s.list_users().await.unwrap().is_empty());

        let mut full = new_user("Alice", Some("Alice@Example.COM"));
        full.first_name = "Alice".into();
        full.last_name = "Liddell".into();
        full.is_staff = true;
        let alice = s.create_user(full.clone()).await.unwrap();
        let bob = add_user(&**s, "bob", None).await;
        assert_ne!(alice.id, bob.id);
        assert_eq!(alice, full.into_user(alice.id));
        assert_eq!(alice.email.as_ref().unwrap().as_str(), "Alice@example.com");

        assert_eq!(s.get_by_id(alice.id).await.unwrap(), Some(alice.clone()));
        assert_eq!(s.get_by_id(bob.id).await.unwrap(), Some(bob.clone()));
        assert_eq!(s.get_by_id(UserId::new(9_999)).await.unwrap(), None);
        assert_eq!(s.list_users().await.unwrap(), vec![alice, bob]);
    }

    pub async fn duplicate_usernames_conflict<B: Backend>() {
        let b = B::fresh().await;
        let s = b.store();
        add_user(&**s, "Alice", None).await;
        // Case, NFKC (fullwidth letters) and full case folding (ß/SS) all collide.
        for dup in ["Alice", "alice", "ALICE", "ＡＬＩＣＥ", "ａｌｉｃｅ"] {
            assert_eq!(
                s.create_user(new_user(dup, None)).await,
                Err(StoreError::Conflict),
                "{dup}"
            );
        }
        add_user(&**s, "Straße", None).await;
        assert_eq!(
            s.create_user(new_user("STRASSE", None)).await,
            Err(StoreError::Conflict)
        );
        // Failed inserts leave nothing behind and do not disturb later ones.
        assert_eq!(s.list_users().await.unwrap().len(), 2);
        add_user(&**s, "alice2", None).await;
        assert_eq!(s.list_users().await.unwrap().len(), 3);
    }

    pub async fn lookup_by_username_or_email<B: Backend>() {
        let b = B::fresh().await;
        let s = b.store();
        let alice = add_user(&**s, "Alice", Some("alice@example.com")).await;
        let bob = add_user(&**s, "bob", Some("shared@example.com")).await;
        let _carol = add_user(&**s, "carol", Some("Shared@EXAMPLE.com")).await;
        // A username that is itself an address wins over someone else's e-mail.
        let dave = add_user(&**s, "dave@example.com", None).await;
        let _erin = add_user(&**s, "erin", Some("dave@example.com")).await;

        let by_name = |n: &str| Username::parse(n).unwrap();
        assert_eq!(
            s.get_by_username(&by_name("alice")).await.unwrap(),
            Some(alice.clone())
        );
        assert_eq!(
            s.get_by_username(&by_name("ＡＬＩＣＥ")).await.unwrap(),
            Some(alice.clone())
        );
        assert_eq!(s.get_by_username(&by_name("nobody")).await.unwrap(), None);

        assert_eq!(
            s.get_by_username_or_email("ALICE").await.unwrap(),
            Some(alice.clone())
        );
        assert_eq!(
            s.get_by_username_or_email("ALICE@Example.com")
                .await
                .unwrap(),
            Some(alice.clone())
        );
        assert_eq!(
            s.get_by_username_or_email("  alice@example.com ")
                .await
                .unwrap(),
            Some(alice.clone())
        );
        assert_eq!(
            s.get_by_unique_email(&Email::parse("Alice@EXAMPLE.com").unwrap())
                .await
                .unwrap(),
            Some(alice)
        );
        // Two accounts share this address: ambiguous, so nobody.
        assert_eq!(
            s.get_by_username_or_email("shared@example.com")
                .await
                .unwrap(),
            None
        );
        assert_eq!(s.get_by_username_or_email("bob").await.unwrap(), Some(bob));
        assert_eq!(
            s.get_by_username_or_email("dave@example.com")
                .await
                .unwrap(),
            Some(dave)
        );
        assert_eq!(
            s.get_by_username_or_email("nobody@example.com")
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            s.get_by_username_or_email("not valid at all")
                .await
                .unwrap(),
            None
        );
        assert_eq!(s.get_by_username_or_email("").await.unwrap(), None);
    }

    pub async fn users_with_email<B: Backend>() {
        let b = B::fresh().await;
        let s = b.store();
        let email = |e: &str| Email::parse(e).unwrap();
        assert!(
            s.users_with_email(&email("shared@example.com"))
                .await
                .unwrap()
                .is_empty(),
            "empty store"
        );
        let alice = add_user(&**s, "alice", Some("alice@example.com")).await;
        let bob = add_user(&**s, "bob", Some("Shared@Example.com")).await;
        let _nobody = add_user(&**s, "nomail", None).await;
        let carol = add_user(&**s, "carol", Some("SHARED@example.COM")).await;
        let _dave = add_user(&**s, "dave", Some("shared@example.org")).await;
        let erin = add_user(&**s, "erin", Some("shared@EXAMPLE.com")).await;

        assert!(
            s.users_with_email(&email("nobody@example.com"))
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            s.users_with_email(&email("ALICE@example.com"))
                .await
                .unwrap(),
            vec![alice]
        );
        // Every holder of the address, whatever its case, in id order; inactive ones too
        // (the caller decides who gets mail).
        s.set_active(carol.id, false).await.unwrap();
        let carol = s.get_by_id(carol.id).await.unwrap().unwrap();
        let all = s
            .users_with_email(&email("shared@example.com"))
            .await
            .unwrap();
        assert_eq!(all, vec![bob, carol, erin]);
        assert!(all.windows(2).all(|w| w[0].id < w[1].id));
    }

    pub async fn user_updates<B: Backend>() {
        let b = B::fresh().await;
        let s = b.store();
        let alice = add_user(&**s, "alice", None).await;
        let bob = add_user(&**s, "bob", None).await;

        s.set_password_hash(alice.id, "pbkdf2_sha256$870000$new$hash")
            .await
            .unwrap();
        s.set_active(alice.id, false).await.unwrap();
        s.set_flags(alice.id, true, true).await.unwrap();
        s.set_last_login(alice.id, ts(1_800_000_000)).await.unwrap();

        let got = s.get_by_id(alice.id).await.unwrap().unwrap();
        assert_eq!(got.password_hash, "pbkdf2_sha256$870000$new$hash");
        assert!(!got.is_active && got.is_staff && got.is_superuser);
        assert_eq!(got.last_login, Some(ts(1_800_000_000)));

        s.set_flags(alice.id, false, true).await.unwrap();
        s.set_active(alice.id, true).await.unwrap();
        let got = s.get_by_id(alice.id).await.unwrap().unwrap();
        assert!(got.is_active && !got.is_staff && got.is_superuser);

        // Updates touch only their row.
        assert_eq!(s.get_by_id(bob.id).await.unwrap(), Some(bob));

        let missing = UserId::new(424_242);
        assert_eq!(
            s.set_password_hash(missing, "x").await,
            Err(StoreError::NotFound)
        );
        assert_eq!(s.set_active(missing, true).await, Err(StoreError::NotFound));
        assert_eq!(
            s.set_flags(missing, true, false).await,
            Err(StoreError::NotFound)
        );
        assert_eq!(
            s.set_last_login(missing, ts(1)).await,
            Err(StoreError::NotFound)
        );
    }

    pub async fn sessions_create_get_touch_delete<B: Backend>() {
        let b = B::fresh().await;
        let s = b.store();
        let alice = add_user(&**s, "alice", None).await;
        let (id, session) = session_for(alice.id, 1, 1000);
        s.create_session(session.clone()).await.unwrap();

        // Looked up by the hash of the cookie value, never the value itself.
        let cookie = SessionId::parse(id.as_cookie_value()).unwrap();
        assert_eq!(
            s.get_session(&cookie.key()).await.unwrap(),
            Some(session.clone())
        );
        assert_eq!(
            s.create_session(session.clone()).await,
            Err(StoreError::Conflict)
        );

        s.touch_session(&session.key, ts(1500)).await.unwrap();
        let got = s.get_session(&session.key).await.unwrap().unwrap();
        assert_eq!(got.last_seen, ts(1500));
        assert_eq!(got.created_at, ts(1000));
        // An older touch arriving late does not move last_seen back.
        s.touch_session(&session.key, ts(1200)).await.unwrap();
        assert_eq!(
            s.get_session(&session.key)
                .await
                .unwrap()
                .unwrap()
                .last_seen,
            ts(1500)
        );

        let (_, minimal) = {
            let id = SessionId::from_random_bytes([2; 32]);
            let s = Session::new(&id, alice.id, ts(5), CsrfSecret::from_bytes([3; 32]));
            (id, s)
        };
        s.create_session(minimal.clone()).await.unwrap();
        assert_eq!(
            s.get_session(&minimal.key).await.unwrap(),
            Some(minimal.clone())
        );

        assert!(s.delete_session(&session.key).await.unwrap());
        assert!(!s.delete_session(&session.key).await.unwrap());
        assert_eq!(s.get_session(&session.key).await.unwrap(), None);
        assert_eq!(
            s.touch_session(&session.key, ts(2000)).await,
            Err(StoreError::NotFound)
        );
        assert_eq!(s.list_all_sessions().await.unwrap(), vec![minimal]);
    }

    pub async fn session_with_user<B: Backend>() {
        let b = B::fresh().await;
        let s = b.store();
        let alice = add_user(&**s, "alice", Some("alice@example.com")).await;
        let bob = add_user(&**s, "bob", None).await;
        let (_, mine) = session_for(alice.id, 1, 1000);
        let (_, his) = session_for(bob.id, 2, 1000);
        s.create_session(mine.clone()).await.unwrap();
        s.create_session(his.clone()).await.unwrap();

        assert_eq!(
            s.get_session_with_user(&mine.key).await.unwrap(),
            Some((mine.clone(), alice.clone()))
        );
        assert_eq!(
            s.get_session_with_user(&his.key).await.unwrap(),
            Some((his.clone(), bob.clone()))
        );
        // A later change to the user shows on the next lookup (nothing is cached).
        s.set_active(alice.id, false).await.unwrap();
        let (_, user) = s.get_session_with_user(&mine.key).await.unwrap().unwrap();
        assert!(!user.is_active);
        // Gone once the session is deleted; an unknown key is simply absent.
        s.delete_session(&mine.key).await.unwrap();
        assert_eq!(s.get_session_with_user(&mine.key).await.unwrap(), None);
        let (_, never) = session_for(bob.id, 3, 1000);
        assert_eq!(s.get_session_with_user(&never.key).await.unwrap(), None);
    }

    pub async fn session_access<B: Backend>() {
        let b = B::fresh().await;
        let s = b.store();
        register(
            &**s,
            &[
                "members.view_member",
                "members.approve_member",
                "drop.view_message",
            ],
        )
        .await;
        let alice = add_user(&**s, "alice", None).await;
        let bob = add_user(&**s, "bob", None).await;
        // Named so that name order differs from id order.
        let zeta = s.create_group(&group_name("Zeta")).await.unwrap();
        let alpha = s.create_group(&group_name("Alpha team")).await.unwrap();
        s.grant_to_group(zeta.id, &perm("members.view_member"))
            .await
            .unwrap();
        s.grant_to_group(alpha.id, &perm("members.approve_member"))
            .await
            .unwrap();
        s.grant_to_user(alice.id, &perm("members.view_member"))
            .await
            .unwrap();
        s.grant_to_user(alice.id, &perm("drop.view_message"))
            .await
            .unwrap();
        s.add_user_to_group(alice.id, zeta.id).await.unwrap();
        s.add_user_to_group(alice.id, alpha.id).await.unwrap();
        let (_, mine) = session_for(alice.id, 1, 1000);
        let (_, his) = session_for(bob.id, 2, 1000);
        s.create_session(mine.clone()).await.unwrap();
        s.create_session(his.clone()).await.unwrap();

        let access = s
            .get_session_access(&mine.key, AccessScope::Full)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(access.session, mine);
        assert_eq!(access.user, alice);
        // Direct and through groups, once each; the same answer as the separate reads.
        assert_eq!(
            access.held,
            perms(&[
                "drop.view_message",
                "members.approve_member",
                "members.view_member"
            ])
        );
        assert_eq!(access.held, s.held_permissions(alice.id).await.unwrap());
        assert_eq!(access.groups, vec![alpha.clone(), zeta.clone()]);
        assert_eq!(access.groups, s.groups_of_user(alice.id).await.unwrap());
        // One app's scope: only that app's permissions, directly and through groups; no
        // groups. The session scope: neither.
        let members = s
            .get_session_access(&mine.key, AccessScope::App("members"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            members.held,
            perms(&["members.approve_member", "members.view_member"])
        );
        assert!(members.groups.is_empty());
        assert_eq!(
            (members.session, members.user),
            (mine.clone(), alice.clone())
        );
        let drop = s
            .get_session_access(&mine.key, AccessScope::App("drop"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(drop.held, perms(&["drop.view_message"]));
        // A prefix of an app's name is another app.
        let dro = s
            .get_session_access(&mine.key, AccessScope::App("dro"))
            .await
            .unwrap()
            .unwrap();
        assert!(dro.held.is_empty());
        let bare = s
            .get_session_access(&mine.key, AccessScope::Session)
            .await
            .unwrap()
            .unwrap();
        assert!(bare.held.is_empty() && bare.groups.is_empty());
        assert_eq!(bare.user, alice);

        // A user with nothing: empty, not missing.
        let none = s
            .get_session_access(&his.key, AccessScope::Full)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (none.user, none.held, none.groups),
            (bob, BTreeSet::new(), vec![])
        );

        // A revocation from a group shows on the next lookup (nothing is cached).
        s.revoke_from_group(alpha.id, &perm("members.approve_member"))
            .await
            .unwrap();
        s.remove_user_from_group(alice.id, zeta.id).await.unwrap();
        let access = s
            .get_session_access(&mine.key, AccessScope::Full)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            access.held,
            perms(&["drop.view_message", "members.view_member"])
        );
        assert_eq!(access.groups, vec![alpha]);

        s.delete_session(&mine.key).await.unwrap();
        assert_eq!(
            s.get_session_access(&mine.key, AccessScope::Full)
                .await
                .unwrap(),
            None
        );
    }

    pub async fn sessions_per_user<B: Backend>() {
        let b = B::fresh().await;
        let s = b.store();
        let alice = add_user(&**s, "alice", None).await;
        let bob = add_user(&**s, "bob", None).await;
        let (_, a1) = session_for(alice.id, 10, 300);
        let (_, a2) = session_for(alice.id, 11, 100);
        let (_, a3) = session_for(alice.id, 12, 200);
        let (_, b1) = session_for(bob.id, 20, 150);
        for sess in [&a1, &a2, &a3, &b1] {
            s.create_session(sess.clone()).await.unwrap();
        }

        assert_eq!(
            s.list_sessions_for_user(alice.id).await.unwrap(),
            vec![a2.clone(), a3.clone(), a1.clone()]
        );
        assert_eq!(
            s.list_sessions_for_user(bob.id).await.unwrap(),
            vec![b1.clone()]
        );
        assert_eq!(
            s.list_all_sessions().await.unwrap(),
            vec![a2.clone(), b1.clone(), a3.clone(), a1.clone()]
        );

        // "Log out my other sessions": keep the current one.
        assert_eq!(
            s.delete_sessions_for_user(alice.id, Some(&a3.key))
                .await
                .unwrap(),
            2
        );
        assert_eq!(
            s.list_sessions_for_user(alice.id).await.unwrap(),
            vec![a3.clone()]
        );
        // An `except` that belongs to someone else protects nothing of this user's, and
        // does not touch the other user's session either.
        assert_eq!(
            s.delete_sessions_for_user(alice.id, Some(&b1.key))
                .await
                .unwrap(),
            1
        );
        assert_eq!(s.delete_sessions_for_user(alice.id, None).await.unwrap(), 0);
        assert_eq!(s.list_all_sessions().await.unwrap(), vec![b1.clone()]);
        assert_eq!(s.delete_sessions_for_user(bob.id, None).await.unwrap(), 1);
        assert!(s.list_all_sessions().await.unwrap().is_empty());
    }

    pub async fn session_expiry<B: Backend>() {
        let b = B::fresh().await;
        let s = b.store();
        let alice = add_user(&**s, "alice", None).await;
        let t = SessionTimeouts {
            idle_secs: 100,
            absolute_secs: 1000,
        };
        let now = ts(10_000);

        let (_, fresh) = session_for(alice.id, 1, 9_950);
        let (_, idle_edge) = session_for(alice.id, 2, 9_900); // last_seen = now - idle: expired
        let (_, idle_ok) = session_for(alice.id, 3, 9_901);
        let (_, mut abs_edge) = session_for(alice.id, 4, 9_000); // created = now - absolute
        abs_edge.last_seen = ts(9_999);
        let (_, mut abs_ok) = session_for(alice.id, 5, 9_001);
        abs_ok.last_seen = ts(9_999);
        let all = [&fresh, &idle_edge, &idle_ok, &abs_edge, &abs_ok];
        for sess in all {
            s.create_session((*sess).clone()).await.unwrap();
        }

        assert_eq!(s.delete_expired_sessions(now, &t).await.unwrap(), 2);
        let left = s.list_all_sessions().await.unwrap();
        assert_eq!(left, vec![abs_ok.clone(), idle_ok.clone(), fresh.clone()]);
        // The bulk delete and the per-request rule agree.
        for sess in all {
            assert_eq!(left.contains(sess), !sess.is_expired(now, &t));
        }
        assert_eq!(s.delete_expired_sessions(now, &t).await.unwrap(), 0);
        assert_eq!(s.delete_expired_sessions(ts(20_000), &t).await.unwrap(), 3);
    }

    pub async fn audit_append_tail_verify<B: Backend>() {
        let b = B::fresh().await;
        let s = b.store();
        assert_eq!(s.count().await.unwrap(), 0);
        assert!(s.tail(10).await.unwrap().is_empty());
        let v = s.verify().await.unwrap();
        assert_eq!((v.checked(), v.head()), (0, GENESIS_HASH));

        let mut appended = Vec::new();
        for n in 1..=5 {
            appended.push(s.append(event(n)).await.unwrap());
        }
        assert_eq!(
            appended.iter().map(|r| r.seq).collect::<Vec<_>>(),
            vec![1, 2, 3, 4, 5]
        );
        assert_eq!(appended[0].prev_hash, GENESIS_HASH);
        assert_eq!(appended[3].prev_hash, appended[2].hash);
        assert_eq!(verify_chain(&appended), Ok(()));

        // What comes back is exactly what went in (JSON detail included).
        assert_eq!(s.page(i64::MIN, 100).await.unwrap(), appended);
        assert_eq!(s.tail(2).await.unwrap(), appended[3..].to_vec());
        assert_eq!(s.tail(100).await.unwrap(), appended);
        assert!(s.tail(0).await.unwrap().is_empty());
        assert_eq!(s.page(2, 2).await.unwrap(), appended[2..4].to_vec());
        assert!(s.page(5, 10).await.unwrap().is_empty());
        assert_eq!(s.count().await.unwrap(), 5);

        let v = s.verify().await.unwrap();
        assert_eq!((v.checked(), v.head()), (5, appended[4].hash));

        // Minimal event: no actor, target or detail.
        let r = s
            .append(AuditEvent::new(ts(1), "system.start"))
            .await
            .unwrap();
        assert_eq!(s.tail(1).await.unwrap(), vec![r]);
        assert!(s.verify().await.is_ok());
    }

    pub async fn audit_tampering_detected<B: Backend>() {
        let b = B::fresh().await;
        let s = b.store();
        for n in 1..=5 {
            s.append(event(n)).await.unwrap();
        }
        b.tamper_audit_action(3, "login.failure").await;
        match s.verify().await {
            Err(AuditVerifyError::Broken(link)) => {
                assert_eq!(link.seq, 3);
                assert_eq!(link.kind, BrokenLinkKind::Hash);
            }
            other => panic!("tampering not detected: {other:?}"),
        }
        let all = s.page(i64::MIN, 100).await.unwrap();
        assert_eq!(verify_chain(&all).unwrap_err().seq, 3);
    }

    pub async fn tokens_are_single_use<B: Backend>() {
        let b = B::fresh().await;
        let s = b.store();
        let a = TokenId::from_bytes([1; 16]);
        let c = TokenId::from_bytes([2; 16]);
        assert!(s.consume_token(&a, ts(100)).await.unwrap());
        assert!(!s.consume_token(&a, ts(100)).await.unwrap(), "second use");
        assert!(
            !s.consume_token(&a, ts(999)).await.unwrap(),
            "whatever the expiry"
        );
        assert!(s.consume_token(&c, ts(200)).await.unwrap());
        // Swept only once expired; until then a reuse is still caught.
        assert_eq!(s.delete_expired_tokens(ts(100)).await.unwrap(), 0);
        assert_eq!(s.delete_expired_tokens(ts(101)).await.unwrap(), 1);
        assert!(!s.consume_token(&c, ts(200)).await.unwrap());
    }

    pub async fn tokens_concurrent_use_has_one_winner<B: Backend>() {
        let b = B::fresh().await;
        let store = Arc::clone(b.store());
        let id = TokenId::from_bytes([9; 16]);
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let store = Arc::clone(&store);
                tokio::spawn(async move { store.consume_token(&id, ts(100)).await })
            })
            .collect();
        let mut winners = 0;
        for task in tasks {
            if task.await.unwrap().unwrap() {
                winners += 1;
            }
        }
        assert_eq!(winners, 1);
    }

    pub async fn keys_insert_list_conflict<B: Backend>() {
        let b = B::fresh().await;
        let s = b.store();
        assert!(s.list_keys("account-tokens").await.unwrap().is_empty());

        let older = stored_key("account-tokens", "k-old", 100);
        s.insert_key(older.clone()).await.unwrap();
        s.insert_key(stored_key("account-tokens", "k-new", 300))
            .await
            .unwrap();
        // Same second as k-new, inserted later: newer.
        s.insert_key(stored_key("account-tokens", "k-newer", 300))
            .await
            .unwrap();
        // Inserted last but created earliest: time wins over insertion order.
        s.insert_key(stored_key("account-tokens", "k-backdated", 50))
            .await
            .unwrap();
        s.insert_key(stored_key("oauth", "k-old", 999))
            .await
            .unwrap();

        let listed = s.list_keys("account-tokens").await.unwrap();
        assert_eq!(kids(&listed), ["k-newer", "k-new", "k-old", "k-backdated"]);
        // What comes back is what went in.
        assert_eq!(listed[2], older);
        assert_eq!(kids(&s.list_keys("oauth").await.unwrap()), ["k-old"]);
        assert!(s.list_keys("other").await.unwrap().is_empty());

        // (purpose, kid) is unique; the failed insert changes nothing.
        assert_eq!(
            s.insert_key(stored_key("account-tokens", "k-old", 400))
                .await,
            Err(StoreError::Conflict)
        );
        assert_eq!(s.list_keys("account-tokens").await.unwrap(), listed);
    }

    pub async fn keys_first_key_and_retire<B: Backend>() {
        let b = B::fresh().await;
        let s = b.store();
        assert!(
            s.insert_first_key(stored_key("p", "first", 100))
                .await
                .unwrap()
        );
        assert!(
            !s.insert_first_key(stored_key("p", "second", 200))
                .await
                .unwrap(),
            "the purpose already has an un-retired key"
        );
        // Another purpose has a ring of its own.
        assert!(
            s.insert_first_key(stored_key("q", "first", 100))
                .await
                .unwrap()
        );
        assert_eq!(kids(&s.list_keys("p").await.unwrap()), ["first"]);

        s.insert_key(stored_key("p", "next", 150)).await.unwrap();
        s.retire_key("p", "first", ts(500)).await.unwrap();
        let listed = s.list_keys("p").await.unwrap();
        assert_eq!(kids(&listed), ["next", "first"]);
        assert_eq!(listed[0].retired_at, None);
        assert_eq!(listed[1].retired_at, Some(ts(500)));
        // Retiring again, an unknown kid, or a kid of another purpose: nothing to retire.
        assert_eq!(
            s.retire_key("p", "first", ts(600)).await,
            Err(StoreError::NotFound)
        );
        assert_eq!(s.list_keys("p").await.unwrap()[1].retired_at, Some(ts(500)));
        assert_eq!(
            s.retire_key("p", "nope", ts(600)).await,
            Err(StoreError::NotFound)
        );
        assert_eq!(
            s.retire_key("nope", "next", ts(600)).await,
            Err(StoreError::NotFound)
        );

        // Once every key is retired the purpose may get a first key again…
        s.retire_key("p", "next", ts(700)).await.unwrap();
        assert!(
            s.insert_first_key(stored_key("p", "fresh", 800))
                .await
                .unwrap()
        );
        // …but a retired kid is never reused.
        s.retire_key("p", "fresh", ts(900)).await.unwrap();
        assert_eq!(
            s.insert_first_key(stored_key("p", "first", 1000)).await,
            Err(StoreError::Conflict)
        );
        assert_eq!(
            kids(&s.list_keys("p").await.unwrap()),
            ["fresh", "next", "first"]
        );
    }

    pub async fn keys_concurrent_first_key_has_one_winner<B: Backend>() {
        let b = B::fresh().await;
        let store = Arc::clone(b.store());
        let tasks: Vec<_> = (0..8)
            .map(|n| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    let kid = format!("node-{n}");
                    let won = store
                        .insert_first_key(stored_key("account-tokens", &kid, 100))
                        .await?;
                    Ok::<_, StoreError>((kid, won))
                })
            })
            .collect();
        let mut winners = Vec::new();
        for task in tasks {
            let (kid, won) = task.await.unwrap().unwrap();
            if won {
                winners.push(kid);
            }
        }
        assert_eq!(winners.len(), 1, "{winners:?}");
        // Every node reads back the winner's key, and only it.
        assert_eq!(
            kids(&store.list_keys("account-tokens").await.unwrap()),
            [winners[0].as_str()]
        );
    }

    pub async fn authz_permission_registry<B: Backend>() {
        let b = B::fresh().await;
        let s = b.store();
        assert!(s.list_permissions().await.unwrap().is_empty());

        s.create_permission(&perm("members.view_member"), "Can view members")
            .await
            .unwrap();
        s.create_permission(&perm("drop.view_message"), "Can read drop messages")
            .await
            .unwrap();
        // A name is registered once, whatever the description.
        assert_eq!(
            s.create_permission(&perm("members.view_member"), "other")
                .await,
            Err(StoreError::Conflict)
        );

        // Start-up registration: only the new ones go in, and a registered permission keeps
        // its description (an operator may have reworded it). A repeat within the list counts
        // once, with its first description.
        let builtin = [
            info("members.view_member", "reworded at start-up"),
            info("members.approve_member", "Can approve members"),
            info("admin.view_audit", "Can read the audit log"),
            info("members.approve_member", "a repeat"),
        ];
        assert_eq!(s.ensure_permissions(&builtin).await.unwrap(), 2);
        assert_eq!(
            s.ensure_permissions(&builtin).await.unwrap(),
            0,
            "idempotent"
        );
        assert_eq!(s.ensure_permissions(&[]).await.unwrap(), 0);

        // Ordered by full name, whatever the registration order.
        assert_eq!(
            s.list_permissions().await.unwrap(),
            vec![
                info("admin.view_audit", "Can read the audit log"),
                info("drop.view_message", "Can read drop messages"),
                info("members.approve_member", "Can approve members"),
                info("members.view_member", "Can view members"),
            ]
        );
    }

    pub async fn authz_groups_create_get_list_delete<B: Backend>() {
        let b = B::fresh().await;
        let s = b.store();
        assert!(s.list_groups().await.unwrap().is_empty());
        assert_eq!(s.get_group(&group_name("Editors")).await.unwrap(), None);

        let editors = s.create_group(&group_name("Editors")).await.unwrap();
        let admins = s.create_group(&group_name("Admins")).await.unwrap();
        assert_ne!(editors.id, admins.id);
        assert_eq!(editors.name, group_name("Editors"));
        assert_eq!(
            s.create_group(&group_name("Editors")).await,
            Err(StoreError::Conflict)
        );
        // Unique as written, as in Django: another case is another group.
        let lower = s.create_group(&group_name("editors")).await.unwrap();

        assert_eq!(
            s.get_group(&group_name("Editors")).await.unwrap(),
            Some(editors.clone())
        );
        assert_eq!(
            s.list_groups().await.unwrap(),
            vec![admins.clone(), editors.clone(), lower.clone()]
        );

        // Deleting a group takes its memberships and grants with it.
        register(&**s, &["members.view_member", "members.approve_member"]).await;
        let alice = add_user(&**s, "alice", None).await;
        let bob = add_user(&**s, "bob", None).await;
        assert!(s.add_user_to_group(alice.id, editors.id).await.unwrap());
        assert!(s.add_user_to_group(bob.id, editors.id).await.unwrap());
        assert!(s.add_user_to_group(alice.id, admins.id).await.unwrap());
        assert!(
            s.grant_to_group(editors.id, &perm("members.view_member"))
                .await
                .unwrap()
        );
        assert!(
            s.grant_to_group(admins.id, &perm("members.approve_member"))
                .await
                .unwrap()
        );
        assert_eq!(
            s.held_permissions(alice.id).await.unwrap(),
            perms(&["members.approve_member", "members.view_member"])
        );

        assert!(s.delete_group(editors.id).await.unwrap());
        assert!(!s.delete_group(editors.id).await.unwrap(), "already gone");
        assert!(!s.delete_group(GroupId::new(9_999)).await.unwrap());
        assert_eq!(s.get_group(&group_name("Editors")).await.unwrap(), None);
        assert_eq!(
            s.list_groups().await.unwrap(),
            vec![admins.clone(), lower.clone()]
        );
        assert!(s.members_of_group(editors.id).await.unwrap().is_empty());
        assert!(s.permissions_of_group(editors.id).await.unwrap().is_empty());
        assert_eq!(
            s.groups_of_user(alice.id).await.unwrap(),
            vec![admins.clone()]
        );
        assert!(s.groups_of_user(bob.id).await.unwrap().is_empty());
        assert_eq!(
            s.held_permissions(alice.id).await.unwrap(),
            perms(&["members.approve_member"])
        );
        assert!(s.held_permissions(bob.id).await.unwrap().is_empty());
        // The other group and the registry are untouched.
        assert_eq!(s.members_of_group(admins.id).await.unwrap(), vec![alice.id]);
        assert_eq!(s.list_permissions().await.unwrap().len(), 2);

        // The name is free again, under a new id (ids are never reused).
        let again = s.create_group(&group_name("Editors")).await.unwrap();
        assert_ne!(again.id, editors.id);
        assert!(s.members_of_group(again.id).await.unwrap().is_empty());
        assert!(s.permissions_of_group(again.id).await.unwrap().is_empty());
    }

    pub async fn authz_memberships_and_grants<B: Backend>() {
        let b = B::fresh().await;
        let s = b.store();
        register(&**s, &["members.view_member", "members.approve_member"]).await;
        let view = perm("members.view_member");
        let unregistered = perm("members.delete_member");
        let alice = add_user(&**s, "alice", None).await;
        let bob = add_user(&**s, "bob", None).await;
        let carol = add_user(&**s, "carol", None).await;
        let staff = s.create_group(&group_name("Staff")).await.unwrap();
        let auditors = s.create_group(&group_name("Auditors")).await.unwrap();
        let no_user = UserId::new(424_242);
        let no_group = GroupId::new(424_242);

        // Memberships: true when something changed, false when nothing had to.
        assert!(s.add_user_to_group(carol.id, staff.id).await.unwrap());
        assert!(s.add_user_to_group(alice.id, staff.id).await.unwrap());
        assert!(!s.add_user_to_group(alice.id, staff.id).await.unwrap());
        assert!(s.add_user_to_group(alice.id, auditors.id).await.unwrap());
        assert_eq!(
            s.members_of_group(staff.id).await.unwrap(),
            vec![alice.id, carol.id],
            "by id"
        );
        assert_eq!(
            s.groups_of_user(alice.id).await.unwrap(),
            vec![auditors.clone(), staff.clone()],
            "by name"
        );
        assert!(s.groups_of_user(bob.id).await.unwrap().is_empty());
        assert!(s.remove_user_from_group(carol.id, staff.id).await.unwrap());
        assert!(!s.remove_user_from_group(carol.id, staff.id).await.unwrap());
        assert!(!s.remove_user_from_group(bob.id, staff.id).await.unwrap());
        assert_eq!(s.members_of_group(staff.id).await.unwrap(), vec![alice.id]);

        // Group grants.
        assert!(s.grant_to_group(staff.id, &view).await.unwrap());
        assert!(!s.grant_to_group(staff.id, &view).await.unwrap());
        assert_eq!(
            s.permissions_of_group(staff.id).await.unwrap(),
            perms(&["members.view_member"])
        );
        assert!(
            s.permissions_of_group(auditors.id)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(s.revoke_from_group(staff.id, &view).await.unwrap());
        assert!(!s.revoke_from_group(staff.id, &view).await.unwrap());
        assert!(s.permissions_of_group(staff.id).await.unwrap().is_empty());

        // Direct grants.
        assert!(s.grant_to_user(bob.id, &view).await.unwrap());
        assert!(!s.grant_to_user(bob.id, &view).await.unwrap());
        assert_eq!(
            s.direct_permissions(bob.id).await.unwrap(),
            perms(&["members.view_member"])
        );
        assert!(s.direct_permissions(alice.id).await.unwrap().is_empty());
        assert!(s.revoke_from_user(bob.id, &view).await.unwrap());
        assert!(!s.revoke_from_user(bob.id, &view).await.unwrap());
        assert!(s.direct_permissions(bob.id).await.unwrap().is_empty());

        // Naming a missing user or group, or an unregistered permission, is NotFound: for
        // adding and for removing alike.
        let nf = Err(StoreError::NotFound);
        assert_eq!(s.add_user_to_group(no_user, staff.id).await, nf);
        assert_eq!(s.add_user_to_group(alice.id, no_group).await, nf);
        assert_eq!(s.remove_user_from_group(no_user, staff.id).await, nf);
        assert_eq!(s.remove_user_from_group(alice.id, no_group).await, nf);
        assert_eq!(s.grant_to_group(no_group, &view).await, nf);
        assert_eq!(s.grant_to_group(staff.id, &unregistered).await, nf);
        assert_eq!(s.revoke_from_group(no_group, &view).await, nf);
        assert_eq!(s.revoke_from_group(staff.id, &unregistered).await, nf);
        assert_eq!(s.grant_to_user(no_user, &view).await, nf);
        assert_eq!(s.grant_to_user(alice.id, &unregistered).await, nf);
        assert_eq!(s.revoke_from_user(no_user, &view).await, nf);
        assert_eq!(s.revoke_from_user(alice.id, &unregistered).await, nf);
        // The failed calls left nothing behind.
        assert_eq!(s.members_of_group(staff.id).await.unwrap(), vec![alice.id]);
        assert!(s.permissions_of_group(staff.id).await.unwrap().is_empty());
        assert!(s.direct_permissions(alice.id).await.unwrap().is_empty());
        assert!(s.held_permissions(no_user).await.unwrap().is_empty());
        assert_eq!(s.list_permissions().await.unwrap().len(), 2);
    }

    pub async fn authz_held_permissions_direct_and_groups<B: Backend>() {
        let b = B::fresh().await;
        let s = b.store();
        register(
            &**s,
            &[
                "members.view_member",
                "members.approve_member",
                "drop.view_message",
                "admin.view_audit",
            ],
        )
        .await;
        let alice = add_user(&**s, "alice", None).await;
        let bob = add_user(&**s, "bob", None).await;
        let staff = s.create_group(&group_name("Staff")).await.unwrap();
        let drop = s.create_group(&group_name("Drop readers")).await.unwrap();
        assert!(s.held_permissions(alice.id).await.unwrap().is_empty());

        s.grant_to_user(alice.id, &perm("admin.view_audit"))
            .await
            .unwrap();
        // Held both directly and through a group: listed once.
        s.grant_to_user(alice.id, &perm("members.view_member"))
            .await
            .unwrap();
        s.grant_to_group(staff.id, &perm("members.view_member"))
            .await
            .unwrap();
        s.grant_to_group(staff.id, &perm("members.approve_member"))
            .await
            .unwrap();
        s.grant_to_group(drop.id, &perm("drop.view_message"))
            .await
            .unwrap();
        s.add_user_to_group(alice.id, staff.id).await.unwrap();
        s.add_user_to_group(alice.id, drop.id).await.unwrap();
        s.add_user_to_group(bob.id, drop.id).await.unwrap();

        assert_eq!(
            s.held_permissions(alice.id).await.unwrap(),
            perms(&[
                "admin.view_audit",
                "drop.view_message",
                "members.approve_member",
                "members.view_member",
            ])
        );
        // Direct grants stay the user's own.
        assert_eq!(
            s.direct_permissions(alice.id).await.unwrap(),
            perms(&["admin.view_audit", "members.view_member"])
        );
        assert_eq!(
            s.held_permissions(bob.id).await.unwrap(),
            perms(&["drop.view_message"])
        );

        // Every change shows on the very next call: nothing is cached.
        s.revoke_from_group(drop.id, &perm("drop.view_message"))
            .await
            .unwrap();
        assert!(s.held_permissions(bob.id).await.unwrap().is_empty());
        s.grant_to_group(drop.id, &perm("drop.view_message"))
            .await
            .unwrap();
        assert_eq!(
            s.held_permissions(bob.id).await.unwrap(),
            perms(&["drop.view_message"])
        );
        s.remove_user_from_group(bob.id, drop.id).await.unwrap();
        assert!(s.held_permissions(bob.id).await.unwrap().is_empty());
        // Revoking the direct grant leaves the same permission held through the group.
        s.revoke_from_user(alice.id, &perm("members.view_member"))
            .await
            .unwrap();
        assert!(
            s.held_permissions(alice.id)
                .await
                .unwrap()
                .contains(&perm("members.view_member"))
        );
        s.revoke_from_group(staff.id, &perm("members.view_member"))
            .await
            .unwrap();
        assert_eq!(
            s.held_permissions(alice.id).await.unwrap(),
            perms(&[
                "admin.view_audit",
                "drop.view_message",
                "members.approve_member",
            ])
        );
    }

    pub async fn authz_many_groups<B: Backend>() {
        let b = B::fresh().await;
        let s = b.store();
        let alice = add_user(&**s, "alice", None).await;
        let bob = add_user(&**s, "bob", None).await;
        let names: Vec<Vec<Permission>> = (0..20)
            .map(|g| {
                (0..25)
                    .map(|p| Permission::new(&format!("app{g}"), &format!("perm_{p}")).unwrap())
                    .collect()
            })
            .collect();
        let infos: Vec<_> = names
            .iter()
            .flatten()
            .map(|p| PermissionInfo {
                permission: p.clone(),
                description: format!("{p} description"),
            })
            .collect();
        assert_eq!(s.ensure_permissions(&infos).await.unwrap(), 500);
        for (g, group_perms) in names.iter().enumerate() {
            let group = s
                .create_group(&group_name(&format!("group {g}")))
                .await
                .unwrap();
            for p in group_perms {
                assert!(s.grant_to_group(group.id, p).await.unwrap());
            }
            assert!(s.add_user_to_group(alice.id, group.id).await.unwrap());
        }
        // One direct grant that a group also gives: still 500.
        s.grant_to_user(alice.id, &names[3][7]).await.unwrap();

        let held = s.held_permissions(alice.id).await.unwrap();
        assert_eq!(held.len(), 500);
        assert_eq!(held, names.iter().flatten().cloned().collect());
        assert_eq!(s.groups_of_user(alice.id).await.unwrap().len(), 20);
        assert_eq!(s.list_permissions().await.unwrap().len(), 500);
        assert!(s.held_permissions(bob.id).await.unwrap().is_empty());
    }

    pub async fn authz_allowed_rule<B: Backend>() {
        let b = B::fresh().await;
        let s = b.store();
        register(&**s, &["members.view_member", "members.approve_member"]).await;
        let view = perm("members.view_member");
        let approve = perm("members.approve_member");
        let alice = add_user(&**s, "alice", None).await;
        let root = add_user(&**s, "root", None).await;
        s.grant_to_user(alice.id, &view).await.unwrap();
        s.set_flags(root.id, true, true).await.unwrap();

        let check = |user: &User, held: &BTreeSet<Permission>| {
            (allowed(user, held, &view), allowed(user, held, &approve))
        };
        let alice_held = s.held_permissions(alice.id).await.unwrap();
        assert_eq!(check(&alice, &alice_held), (true, false));
        // An active superuser holds everything, granted or not.
        let root = s.get_by_id(root.id).await.unwrap().unwrap();
        let root_held = s.held_permissions(root.id).await.unwrap();
        assert!(root_held.is_empty());
        assert_eq!(check(&root, &root_held), (true, true));
        // An inactive user holds nothing, superuser or not, whatever the grants say.
        s.set_active(alice.id, false).await.unwrap();
        s.set_active(root.id, false).await.unwrap();
        let alice = s.get_by_id(alice.id).await.unwrap().unwrap();
        let root = s.get_by_id(root.id).await.unwrap().unwrap();
        assert_eq!(s.held_permissions(alice.id).await.unwrap(), alice_held);
        assert_eq!(check(&alice, &alice_held), (false, false));
        assert_eq!(check(&root, &root_held), (false, false));
    }

    pub async fn members_add_get_count<B: Backend>() {
        let b = B::fresh().await;
        let s = b.store();
        assert_eq!(s.count_members().await.unwrap(), 0);
        assert!(s.list_members(None, 10).await.unwrap().is_empty());
        assert_eq!(s.get_member(MemberId::new(1)).await.unwrap(), None);

        let ada = s
            .add_member(new_member(
                "Ada Lovelace",
                Some("Ada@Example.COM"),
                None,
                1_700_000_000,
            ))
            .await
            .unwrap();
        assert!(!ada.approved);
        assert_eq!(ada.approved_by, None);
        assert_eq!(ada.approved_at, None);
        assert_eq!(ada.added_by, None);
        assert_eq!(ada.added_at, ts(1_700_000_000));
        // What was returned is what is stored, e-mail included.
        assert_eq!(s.get_member(ada.id).await.unwrap(), Some(ada.clone()));
        assert_eq!(
            s.get_member(ada.id).await.unwrap().unwrap().email,
            Some(Email::parse("Ada@Example.COM").unwrap())
        );

        // Names are not unique, and a member may have no address.
        let twin = s
            .add_member(new_member("Ada Lovelace", None, None, 1_700_000_001))
            .await
            .unwrap();
        assert_ne!(twin.id, ada.id);
        assert_eq!(twin.email, None);
        assert_eq!(s.count_members().await.unwrap(), 2);
        assert_eq!(s.get_member(twin.id).await.unwrap(), Some(twin));
    }

    pub async fn members_list_order_and_pagination<B: Backend>() {
        let b = B::fresh().await;
        let s = b.store();
        let mut ids = Vec::new();
        // Added with decreasing timestamps: the order is by id, not by time or name.
        for n in 0..7 {
            let m = s
                .add_member(new_member(
                    &format!("member {}", 9 - n),
                    None,
                    None,
                    1_700_000_100 - n,
                ))
                .await
                .unwrap();
            ids.push(m.id);
        }
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(member_ids(&s.list_members(None, 100).await.unwrap()), ids);

        // Keyset pages: each starts after the last id of the one before.
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = s.list_members(after, 3).await.unwrap();
            assert!(page.len() <= 3);
            let Some(last) = page.last() else { break };
            after = Some(last.id);
            seen.extend(member_ids(&page));
        }
        assert_eq!(seen, ids);
        assert_eq!(
            member_ids(&s.list_members(Some(ids[1]), 2).await.unwrap()),
            ids[2..4]
        );
        assert!(s.list_members(Some(ids[6]), 10).await.unwrap().is_empty());
        assert!(s.list_members(None, 0).await.unwrap().is_empty());
        // `after` need not be a stored id: a deleted one works as a bookmark too.
        assert!(s.delete_member(ids[3]).await.unwrap());
        assert_eq!(
            member_ids(&s.list_members(Some(ids[3]), 10).await.unwrap()),
            ids[4..]
        );
        assert_eq!(
            member_ids(&s.list_members(Some(ids[2]), 1).await.unwrap()),
            [ids[4]]
        );
    }

    pub async fn members_list_limit_is_capped<B: Backend>() {
        let b = B::fresh().await;
        let s = b.store();
        let count = u64::from(MEMBER_PAGE_MAX) + 5;
        for n in 0..count {
            s.add_member(new_member(&format!("m{n}"), None, None, 1_700_000_000))
                .await
                .unwrap();
        }
        assert_eq!(s.count_members().await.unwrap(), count);
        let first = s.list_members(None, u32::MAX).await.unwrap();
        assert_eq!(first.len(), 1000);
        let rest = s
            .list_members(first.last().map(|m| m.id), u32::MAX)
            .await
            .unwrap();
        assert_eq!(rest.len(), 5);
    }

    pub async fn members_approve_once<B: Backend>() {
        let b = B::fresh().await;
        let s = b.store();
        let alice = add_user(&**s, "alice", None).await;
        let bob = add_user(&**s, "bob", None).await;
        let m = s
            .add_member(new_member(
                "Grace Hopper",
                None,
                Some(alice.id),
                1_700_000_000,
            ))
            .await
            .unwrap();
        let other = s
            .add_member(new_member("Other", None, None, 1_700_000_000))
            .await
            .unwrap();

        assert!(
            s.approve_member(m.id, alice.id, ts(1_700_000_010))
                .await
                .unwrap()
        );
        let approved = s.get_member(m.id).await.unwrap().unwrap();
        assert!(approved.approved);
        assert_eq!(approved.approved_by, Some(alice.id));
        assert_eq!(approved.approved_at, Some(ts(1_700_000_010)));
        // Nothing else about the member changed.
        assert_eq!(
            Member {
                approved: false,
                approved_by: None,
                approved_at: None,
                ..approved.clone()
            },
            m
        );

        // A second approval, by someone else and later, changes nothing.
        assert!(
            !s.approve_member(m.id, bob.id, ts(1_700_000_020))
                .await
                .unwrap()
        );
        assert_eq!(s.get_member(m.id).await.unwrap().unwrap(), approved);
        // Even by an account that does not exist: the approval already stands.
        assert!(
            !s.approve_member(m.id, UserId::new(9_999), ts(1_700_000_030))
                .await
                .unwrap()
        );
        assert_eq!(s.get_member(m.id).await.unwrap().unwrap(), approved);
        // Other members are untouched.
        assert!(!s.get_member(other.id).await.unwrap().unwrap().approved);

        // No such member.
        assert_eq!(
            s.approve_member(MemberId::new(9_999), alice.id, ts(1_700_000_040))
                .await,
            Err(StoreError::NotFound)
        );
        // No such approver: refused, and the member stays unapproved.
        assert_eq!(
            s.approve_member(other.id, UserId::new(9_999), ts(1_700_000_050))
                .await,
            Err(StoreError::NotFound)
        );
        let still = s.get_member(other.id).await.unwrap().unwrap();
        assert!(!still.approved && still.approved_by.is_none() && still.approved_at.is_none());
        // A deleted member is no longer there to approve.
        assert!(s.delete_member(other.id).await.unwrap());
        assert_eq!(
            s.approve_member(other.id, alice.id, ts(1_700_000_060))
                .await,
            Err(StoreError::NotFound)
        );
    }

    pub async fn members_concurrent_approvals_have_one_winner<B: Backend>() {
        let b = B::fresh().await;
        let store = Arc::clone(b.store());
        let mut users = Vec::new();
        for n in 0..8 {
            users.push(add_user(&*store, &format!("approver{n}"), None).await.id);
        }
        let m = store
            .add_member(new_member("Contested", None, None, 1_700_000_000))
            .await
            .unwrap();
        let tasks: Vec<_> = users
            .iter()
            .enumerate()
            .map(|(n, &user)| {
                let store = Arc::clone(&store);
                let at = ts(1_700_000_100 + i64::try_from(n).unwrap());
                tokio::spawn(async move { (user, at, store.approve_member(m.id, user, at).await) })
            })
            .collect();
        let mut winners = Vec::new();
        for task in tasks {
            let (user, at, result) = task.await.unwrap();
            if result.unwrap() {
                winners.push((user, at));
            }
        }
        assert_eq!(winners.len(), 1);
        let stored = store.get_member(m.id).await.unwrap().unwrap();
        assert_eq!(
            (stored.approved_by.unwrap(), stored.approved_at.unwrap()),
            winners[0]
        );
    }

    pub async fn members_delete<B: Backend>() {
        let b = B::fresh().await;
        let s = b.store();
        let a = s
            .add_member(new_member("A", None, None, 1_700_000_000))
            .await
            .unwrap();
        let keep = s
            .add_member(new_member("B", None, None, 1_700_000_000))
            .await
            .unwrap();
        assert!(s.delete_member(a.id).await.unwrap());
        assert!(!s.delete_member(a.id).await.unwrap());
        assert!(!s.delete_member(MemberId::new(9_999)).await.unwrap());
        assert_eq!(s.get_member(a.id).await.unwrap(), None);
        assert_eq!(s.count_members().await.unwrap(), 1);
        assert_eq!(
            member_ids(&s.list_members(None, 10).await.unwrap()),
            [keep.id]
        );
        // Ids are never reused, even the highest one after it is deleted.
        assert!(s.delete_member(keep.id).await.unwrap());
        let next = s
            .add_member(new_member("C", None, None, 1_700_000_000))
            .await
            .unwrap();
        assert!(next.id > keep.id);
        assert_eq!(s.count_members().await.unwrap(), 1);
    }

    pub async fn members_added_by_a_real_user<B: Backend>() {
        let b = B::fresh().await;
        let s = b.store();
        let alice = add_user(&**s, "alice", None).await;
        let m = s
            .add_member(new_member(
                "Katherine Johnson",
                None,
                Some(alice.id),
                1_700_000_000,
            ))
            .await
            .unwrap();
        assert_eq!(m.added_by, Some(alice.id));
        assert_eq!(
            s.get_member(m.id).await.unwrap().unwrap().added_by,
            Some(alice.id)
        );
        // An account that does not exist cannot have added anyone, and nothing is stored.
        assert_eq!(
            s.add_member(new_member(
                "Ghost",
                None,
                Some(UserId::new(9_999)),
                1_700_000_000
            ))
            .await,
            Err(StoreError::NotFound)
        );
        assert_eq!(s.count_members().await.unwrap(), 1);
    }

    fn user_query(search: Option<&str>, offset: u64, limit: u32) -> UserQuery {
        UserQuery {
            search: search.map(str::to_owned),
            offset,
            limit,
        }
    }

    fn names(page: &UserPage) -> Vec<&str> {
        page.users.iter().map(|u| u.username.as_str()).collect()
    }

    /// Search with a roomy page; returns the usernames and the total.
    async fn search<S: UserStore>(s: &S, search: &str) -> (Vec<String>, u64) {
        let page = s
            .search_users(&user_query(Some(search), 0, 100))
            .await
            .unwrap();
        let found = names(&page).into_iter().map(str::to_owned).collect();
        (found, page.total)
    }

    pub async fn users_search_order_and_paging<B: Backend>() {
        let b = B::fresh().await;
        let s = b.store();
        let empty = s.search_users(&user_query(None, 0, 10)).await.unwrap();
        assert_eq!((empty.users.len(), empty.total), (0, 0));
        // Created out of order, and mixed case: the order is the canonical name's, not the
        // id's nor the display form's ("Bob" would sort before "alice" as written).
        for name in ["carol", "Bob", "erin", "alice", "Dave"] {
            add_user(&**s, name, None).await;
        }
        let all = s.search_users(&user_query(None, 0, 10)).await.unwrap();
        assert_eq!(names(&all), ["alice", "Bob", "carol", "Dave", "erin"]);
        assert_eq!(all.total, 5);
        // Full records come back, as get_by_id has them.
        for user in &all.users {
            assert_eq!(s.get_by_id(user.id).await.unwrap().as_ref(), Some(user));
        }

        let first = s.search_users(&user_query(None, 0, 2)).await.unwrap();
        assert_eq!((names(&first), first.total), (vec!["alice", "Bob"], 5));
        let second = s.search_users(&user_query(None, 2, 2)).await.unwrap();
        assert_eq!((names(&second), second.total), (vec!["carol", "Dave"], 5));
        let last = s.search_users(&user_query(None, 4, 2)).await.unwrap();
        assert_eq!((names(&last), last.total), (vec!["erin"], 5));
        // Past the end: no users, but the total still says how many there are.
        for offset in [5, 6, 1_000, u64::MAX] {
            let page = s.search_users(&user_query(None, offset, 2)).await.unwrap();
            assert!(page.users.is_empty(), "offset {offset}");
            assert_eq!(page.total, 5, "offset {offset}");
        }
        // Limit 0 asks only for the count.
        let count_only = s.search_users(&user_query(None, 0, 0)).await.unwrap();
        assert_eq!((count_only.users.len(), count_only.total), (0, 5));
        // An empty or blank search is no filter.
        for blank in ["", "   ", "\t\n"] {
            let page = s
                .search_users(&user_query(Some(blank), 0, 10))
                .await
                .unwrap();
            assert_eq!(page, all, "{blank:?}");
        }
    }

    pub async fn users_search_username_and_email<B: Backend>() {
        let b = B::fresh().await;
        let s = b.store();
        add_user(&**s, "alice", Some("alice@example.com")).await;
        add_user(&**s, "bob", Some("Bob.Builder@Wonder.Land")).await;
        add_user(&**s, "carol", None).await;
        add_user(&**s, "dave", Some("X.ALICE@corp.example")).await;
        add_user(&**s, "Straße", Some("strasse@example.com")).await;
        add_user(&**s, "ＺＯＥ", Some("zoe@Ünicode.example")).await;

        // Username or e-mail, whichever matches; substring anywhere; ordered by name.
        assert_eq!(
            search(&**s, "ali").await,
            (vec!["alice".into(), "dave".into()], 2)
        );
        assert_eq!(search(&**s, "wonder").await, (vec!["bob".into()], 1));
        assert_eq!(search(&**s, "ro").await, (vec!["carol".into()], 1));
        assert_eq!(search(&**s, "@").await.1, 5);
        assert_eq!(search(&**s, "example").await.1, 4);
        assert_eq!(search(&**s, "nobody").await, (vec![], 0));
        // Case-insensitive on both sides, in the stored canonical forms: the address's local
        // part, the username's full case fold (ß ~ SS) and NFKC (fullwidth letters).
        assert_eq!(search(&**s, "ALICE").await.1, 2);
        assert_eq!(search(&**s, "bob.BUILDER").await, (vec!["bob".into()], 1));
        assert_eq!(search(&**s, "STRASSE").await, (vec!["Straße".into()], 1));
        assert_eq!(search(&**s, "strasse@").await, (vec!["Straße".into()], 1));
        assert_eq!(search(&**s, "ＺＯe").await, (vec!["ZOE".into()], 1));
        assert_eq!(search(&**s, "ünicode").await, (vec!["ZOE".into()], 1));
        assert_eq!(search(&**s, "ÜNICODE").await, (vec!["ZOE".into()], 1));
        // Surrounding blanks are not part of the search.
        assert_eq!(search(&**s, "  wonder ").await, (vec!["bob".into()], 1));

        // Paging applies to the matches, and the total counts all of them.
        // ("e" is in every address; carol has none and no "e" in her name.)
        let page = s.search_users(&user_query(Some("e"), 1, 2)).await.unwrap();
        assert_eq!(names(&page), ["bob", "dave"]);
        assert_eq!(page.total, 5);
        let past = s.search_users(&user_query(Some("e"), 10, 2)).await.unwrap();
        assert!(past.users.is_empty());
        assert_eq!(past.total, 5);
    }

    pub async fn users_search_wildcards_are_literal<B: Backend>() {
        let b = B::fresh().await;
        let s = b.store();
        // Usernames may hold `_` (not `%` or `\`); an address's local part may hold `%`.
        add_user(&**s, "a_b", None).await;
        add_user(&**s, "axb", Some("100%off@example.com")).await;
        add_user(&**s, "plain", Some("1000ff@example.com")).await;

        assert_eq!(search(&**s, "a_b").await, (vec!["a_b".into()], 1));
        assert_eq!(search(&**s, "_").await, (vec!["a_b".into()], 1));
        assert_eq!(search(&**s, "%").await, (vec!["axb".into()], 1));
        assert_eq!(search(&**s, "0%o").await, (vec!["axb".into()], 1));
        assert_eq!(search(&**s, "%%").await, (vec![], 0));
        // No stored form holds a backslash; as an unescaped LIKE escape it would turn the
        // pattern's trailing `%` literal, or be an error.
        assert_eq!(search(&**s, "\\").await, (vec![], 0));
        assert_eq!(search(&**s, "\\%").await, (vec![], 0));
        assert_eq!(search(&**s, "a\\_b").await, (vec![], 0));
    }

    pub async fn users_search_limit_is_capped<B: Backend>() {
        let b = B::fresh().await;
        let s = b.store();
        let count = USER_PAGE_MAX + 3;
        for n in 0..count {
            add_user(&**s, &format!("u{n:04}"), None).await;
        }
        let first = s
            .search_users(&user_query(None, 0, u32::MAX))
            .await
            .unwrap();
        assert_eq!(first.users.len(), 500);
        assert_eq!(first.total, u64::from(count));
        assert_eq!(first.users[499].username.as_str(), "u0499");
        let rest = s
            .search_users(&user_query(None, 500, u32::MAX))
            .await
            .unwrap();
        assert_eq!(names(&rest), ["u0500", "u0501", "u0502"]);
        // The cap holds for searches too.
        let searched = s
            .search_users(&user_query(Some("U"), 0, u32::MAX))
            .await
            .unwrap();
        assert_eq!(searched.users.len(), 500);
        assert_eq!(searched.total, u64::from(count));
    }

    pub async fn audit_page_desc<B: Backend>() {
        let b = B::fresh().await;
        let s = b.store();
        assert!(s.page_desc(None, 10).await.unwrap().is_empty());
        assert!(s.page_desc(Some(5), 10).await.unwrap().is_empty());
        let mut appended = Vec::new();
        for n in 1..=5 {
            appended.push(s.append(event(n)).await.unwrap());
        }
        let seqs = |records: Vec<AuditRecord>| records.iter().map(|r| r.seq).collect::<Vec<_>>();

        // Newest first, whole records.
        let mut newest_first = appended.clone();
        newest_first.reverse();
        assert_eq!(s.page_desc(None, 100).await.unwrap(), newest_first);
        assert_eq!(seqs(s.page_desc(None, 2).await.unwrap()), [5, 4]);
        // "Older" link: strictly before the last seq shown.
        assert_eq!(seqs(s.page_desc(Some(4), 2).await.unwrap()), [3, 2]);
        assert_eq!(seqs(s.page_desc(Some(2), 2).await.unwrap()), [1]);
        assert!(s.page_desc(Some(1), 2).await.unwrap().is_empty());
        assert!(s.page_desc(Some(i64::MIN), 2).await.unwrap().is_empty());
        // A bound past the head is no bound; limit 0 is nothing.
        assert_eq!(seqs(s.page_desc(Some(100), 3).await.unwrap()), [5, 4, 3]);
        assert_eq!(seqs(s.page_desc(Some(i64::MAX), 1).await.unwrap()), [5]);
        assert!(s.page_desc(None, 0).await.unwrap().is_empty());

        // Appends between requests do not shift an "older" page.
        s.append(event(6)).await.unwrap();
        assert_eq!(seqs(s.page_desc(Some(4), 2).await.unwrap()), [3, 2]);
        assert_eq!(seqs(s.page_desc(None, 1).await.unwrap()), [6]);
    }

    pub async fn audit_concurrent_appends<B: Backend>() {
        let b = B::fresh().await;
        let store = Arc::clone(b.store());
        let tasks: Vec<_> = (0..20)
            .map(|n| {
                let store = Arc::clone(&store);
                tokio::spawn(async move { store.append(event(n)).await })
            })
            .collect();
        let mut seqs = Vec::new();
        for task in tasks {
            seqs.push(task.await.unwrap().unwrap().seq);
        }
        seqs.sort_unstable();
        assert_eq!(seqs, (1..=20).collect::<Vec<_>>());
        assert_eq!(store.count().await.unwrap(), 20);
        assert_eq!(store.verify().await.unwrap().checked(), 20);
    }
}

// ---------------------------------------------------------------------------------------
// Instantiation: every case for every backend.

macro_rules! conformance {
    ($module:ident, $backend:ty) => {
        conformance!(@cases $module, $backend, [
            users_create_get_list,
            duplicate_usernames_conflict,
            lookup_by_username_or_email,
            user_updates,
            sessions_create_get_touch_delete,
            session_with_user,
            session_access,
            sessions_per_user,
            session_expiry,
            audit_append_tail_verify,
            audit_tampering_detected,
            audit_concurrent_appends,
            tokens_are_single_use,
            tokens_concurrent_use_has_one_winner,
            users_with_email,
            keys_insert_list_conflict,
            keys_first_key_and_retire,
            keys_concurrent_first_key_has_one_winner,
            authz_permission_registry,
            authz_groups_create_get_list_delete,
            authz_memberships_and_grants,
            authz_held_permissions_direct_and_groups,
            authz_many_groups,
            authz_allowed_rule,
            members_add_get_count,
            members_list_order_and_pagination,
            members_list_limit_is_capped,
            members_approve_once,
            members_concurrent_approvals_have_one_winner,
            members_delete,
            members_added_by_a_real_user,
            users_search_order_and_paging,
            users_search_username_and_email,
            users_search_wildcards_are_literal,
            users_search_limit_is_capped,
            audit_page_desc,
        ]);
    };
    (@cases $module:ident, $backend:ty, [$($case:ident),* $(,)?]) => {
        mod $module {
            $(
                // Multi-threaded, so concurrent cases really run in parallel.
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    super::cases::$case::<$backend>().await;
                }
            )*
        }
    };
}

conformance!(memory, super::Memory);
conformance!(sqlite, super::Sqlite);
