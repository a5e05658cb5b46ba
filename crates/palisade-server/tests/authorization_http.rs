//! Authorization on the route, over real TLS with CSRF: for every route of the members app
//! and every kind of caller (anonymous; signed in without the permission; with it directly;
//! with it through a group; inactive with it; staff; superuser) the expected status, the
//! buttons a page shows, and a revocation that bites on the very next request.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::{Browser, Page, TestServer};
use palisade_core::{
    AuthzStore, Email, GroupName, MemberId, MemberName, MemberStore, NewMember, NewUser,
    Permission, Timestamp, UserStore, Username,
};
use palisade_crypto::password::{Argon2Params, hash_password};
use palisade_store::SqliteStore;
use reqwest::StatusCode;

const PASSWORD: &str = "correct horse battery staple";
const LOW: Argon2Params = Argon2Params {
    memory_kib: 1024,
    iterations: 1,
    parallelism: 1,
};
const ALL: [&str; 5] = [
    "members.view_member",
    "members.add_member",
    "members.change_member",
    "members.approve_member",
    "members.delete_member",
];

/// The kinds of caller, each an account (but the anonymous one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    Anonymous,
    Plain,
    Direct,
    ViaGroup,
    Inactive,
    Staff,
    Superuser,
}

impl Caller {
    fn name(self) -> &'static str {
        match self {
            Caller::Anonymous => "",
            Caller::Plain => "plain",
            Caller::Direct => "direct",
            Caller::ViaGroup => "grouped",
            Caller::Inactive => "inactive",
            Caller::Staff => "staffer",
            Caller::Superuser => "root",
        }
    }

    fn allowed(self) -> bool {
        matches!(self, Caller::Direct | Caller::ViaGroup | Caller::Superuser)
    }

    fn signed_in(self) -> bool {
        !matches!(self, Caller::Anonymous | Caller::Inactive)
    }
}

const CALLERS: [Caller; 7] = [
    Caller::Anonymous,
    Caller::Plain,
    Caller::Direct,
    Caller::ViaGroup,
    Caller::Inactive,
    Caller::Staff,
    Caller::Superuser,
];

async fn seed(server: &TestServer) -> SqliteStore {
    let store = SqliteStore::open(&server.db).await.unwrap();
    let group = store
        .create_group(&GroupName::parse("Membership office").unwrap())
        .await
        .unwrap();
    for perm in ALL {
        store
            .grant_to_group(group.id, &Permission::parse(perm).unwrap())
            .await
            .unwrap();
    }
    for caller in CALLERS.into_iter().filter(|c| *c != Caller::Anonymous) {
        let name = caller.name();
        let mut new = NewUser::new(
            Username::parse(name).unwrap(),
            Some(Email::parse(&format!("{name}@example.com")).unwrap()),
            hash_password(PASSWORD.as_bytes(), &LOW).unwrap(),
            Timestamp::from_unix(1_700_000_000),
        );
        new.is_active = caller != Caller::Inactive;
        new.is_staff = matches!(caller, Caller::Staff | Caller::Superuser);
        new.is_superuser = caller == Caller::Superuser;
        let user = store.create_user(new).await.unwrap();
        match caller {
            Caller::Direct | Caller::Inactive => {
                for perm in ALL {
                    store
                        .grant_to_user(user.id, &Permission::parse(perm).unwrap())
                        .await
                        .unwrap();
                }
            }
            Caller::ViaGroup => {
                store.add_user_to_group(user.id, group.id).await.unwrap();
            }
            _ => {}
        }
    }
    store
}

async fn new_member(store: &SqliteStore, name: &str) -> MemberId {
    store
        .add_member(NewMember {
            name: MemberName::parse(name).unwrap(),
            email: None,
            added_by: None,
            added_at: Timestamp::from_unix(1_700_000_000),
        })
        .await
        .unwrap()
        .id
}

async fn browser_for(server: &TestServer, caller: Caller) -> Browser {
    if caller == Caller::Anonymous {
        return server.browser();
    }
    server
        .browser_as(caller.name(), PASSWORD, caller.signed_in())
        .await
}

fn assert_outcome(caller: Caller, what: &str, page: &Page, allowed_status: StatusCode) {
    let expected = if caller.allowed() {
        allowed_status
    } else if caller.signed_in() {
        StatusCode::FORBIDDEN
    } else {
        StatusCode::SEE_OTHER
    };
    assert_eq!(page.status, expected, "{caller:?} {what}: {}", page.body);
    if !caller.signed_in() {
        assert!(
            page.location().starts_with("/accounts/login/?next="),
            "{caller:?} {what} -> {}",
            page.location()
        );
    }
    if expected == StatusCode::FORBIDDEN {
        assert!(
            page.body.contains("members."),
            "the 403 names the permission"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_members_route_for_every_kind_of_caller() {
    let mut server = TestServer::start(|_| {}).await;
    let store = seed(&server).await;
    for caller in CALLERS {
        let mut b = browser_for(&server, caller).await;
        let csrf = b.form_token().await;

        let list = b.get("/members/").await;
        assert_outcome(caller, "GET /members/", &list, StatusCode::OK);
        let form = b.get("/members/add/").await;
        assert_outcome(caller, "GET /members/add/", &form, StatusCode::OK);

        let name = format!("Added by {caller:?}");
        let added = b
            .post("/members/add/", &[("name", &name), ("csrf_token", &csrf)])
            .await;
        assert_outcome(caller, "POST /members/add/", &added, StatusCode::SEE_OTHER);
        let listed = store.list_members(None, 1000).await.unwrap();
        assert_eq!(
            listed.iter().any(|m| m.name.as_str() == name),
            caller.allowed(),
            "{caller:?}: member added?"
        );

        let target = new_member(&store, &format!("For {caller:?}")).await;
        let approve = format!("/members/{}/approve/", target.get());
        let page = b.post(&approve, &[("csrf_token", &csrf)]).await;
        assert_outcome(caller, "POST approve", &page, StatusCode::SEE_OTHER);
        let member = store.get_member(target).await.unwrap().unwrap();
        assert_eq!(member.approved, caller.allowed(), "{caller:?}: approved?");

        let delete = format!("/members/{}/delete/", target.get());
        let page = b.post(&delete, &[("csrf_token", &csrf)]).await;
        assert_outcome(caller, "POST delete", &page, StatusCode::SEE_OTHER);
        assert_eq!(
            store.get_member(target).await.unwrap().is_none(),
            caller.allowed(),
            "{caller:?}: deleted?"
        );

        if caller.allowed() {
            // The right permission without the CSRF token is still refused.
            let other = new_member(&store, "Unprotected?").await;
            let page = b
                .post(&format!("/members/{}/delete/", other.get()), &[])
                .await;
            assert_eq!(page.status, StatusCode::FORBIDDEN);
            assert!(store.get_member(other).await.unwrap().is_some());
            // An id that is no member is a 404, not a success.
            let page = b
                .post("/members/999999/approve/", &[("csrf_token", &csrf)])
                .await;
            assert_eq!(page.status, StatusCode::NOT_FOUND, "{caller:?}");
        }
    }
    store.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buttons_follow_permissions_and_a_revocation_bites_at_once() {
    let mut server = TestServer::start(|_| {}).await;
    let store = seed(&server).await;
    let waiting = new_member(&store, "Waiting Wanda").await;
    let viewer = store
        .create_user(NewUser::new(
            Username::parse("viewer").unwrap(),
            Some(Email::parse("viewer@example.com").unwrap()),
            hash_password(PASSWORD.as_bytes(), &LOW).unwrap(),
            Timestamp::from_unix(1_700_000_000),
        ))
        .await
        .unwrap();
    store
        .grant_to_user(
            viewer.id,
            &Permission::parse("members.view_member").unwrap(),
        )
        .await
        .unwrap();

    // View only: the list without buttons, and the routes behind them refuse.
    let mut v = server.browser();
    assert_eq!(
        v.login("viewer", PASSWORD, None).await.status,
        StatusCode::SEE_OTHER
    );
    let page = v.get("/members/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Waiting Wanda"));
    for absent in ["Approve", "Delete", "/members/add/"] {
        assert!(!page.body.contains(absent), "{absent} shown to a viewer");
    }
    // The list has no form for a viewer; the profile page's token is the session's.
    let csrf = v.get("/accounts/profile/").await.csrf_token();
    let refused = v
        .post(
            &format!("/members/{}/approve/", waiting.get()),
            &[("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    // Through the group: every button; approving shows the new state.
    let mut g = server.browser();
    assert_eq!(
        g.login("grouped", PASSWORD, None).await.status,
        StatusCode::SEE_OTHER
    );
    let page = g.get("/members/").await;
    for present in ["Approve", "Delete", "/members/add/"] {
        assert!(
            page.body.contains(present),
            "{present} for the group's member"
        );
    }
    let csrf = page.csrf_token();
    g.post(
        &format!("/members/{}/approve/", waiting.get()),
        &[("csrf_token", &csrf)],
    )
    .await;
    let page = g.get("/members/").await;
    assert!(page.body.contains("approved"));
    assert!(
        !page.body.contains("Approve</button>"),
        "nothing left to approve"
    );
    // The profile lists the group and what it grants.
    let profile = g.get("/accounts/profile/").await;
    assert!(profile.body.contains("Membership office"));
    assert!(profile.body.contains("members.approve_member"));

    // Revoked from the group: refused on the very next request, with no re-login.
    let group = store
        .get_group(&GroupName::parse("Membership office").unwrap())
        .await
        .unwrap()
        .unwrap();
    store
        .revoke_from_group(group.id, &Permission::parse("members.view_member").unwrap())
        .await
        .unwrap();
    assert_eq!(g.get("/members/").await.status, StatusCode::FORBIDDEN);
    store
        .grant_to_group(group.id, &Permission::parse("members.view_member").unwrap())
        .await
        .unwrap();
    assert_eq!(g.get("/members/").await.status, StatusCode::OK);
    // Out of the group: the same.
    let grouped = store
        .get_by_username(&Username::parse("grouped").unwrap())
        .await
        .unwrap()
        .unwrap();
    store
        .remove_user_from_group(grouped.id, group.id)
        .await
        .unwrap();
    assert_eq!(g.get("/members/").await.status, StatusCode::FORBIDDEN);
    store.close().await;
    server.stop().await;
}
