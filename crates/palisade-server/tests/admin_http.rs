//! The admin console over real TLS with CSRF: every route for every kind of caller
//! (anonymous; signed in without the rights; the permissions but no staff status; staff with
//! them directly; staff with them through a group; inactive; staff with no permission;
//! superuser), the escalation attempts the console must refuse (staff making itself
//! superuser, adding itself to a group, granting what it does not hold, taking over a more
//! privileged account), every change on the audit record, and the chain check failing on a
//! record edited or deleted behind the server's back.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::{Browser, Page, TestServer};
use palisade_core::{
    AuditLog, AuthzStore, Email, GroupName, NewUser, Permission, SessionStore, Timestamp, User,
    UserStore, Username,
};
use palisade_crypto::password::{Argon2Params, hash_password};
use palisade_store::SqliteStore;
use reqwest::StatusCode;

const PASSWORD: &str = "correct horse battery staple";
const NEW_PASSWORD: &str = "a quite different passphrase 42";
const LOW: Argon2Params = Argon2Params {
    memory_kib: 1024,
    iterations: 1,
    parallelism: 1,
};
/// What the console's callers with "the permissions" hold: every admin permission, and one
/// ordinary permission they may hand on.
const ADMIN_PERMS: [&str; 11] = [
    "auth.view_user",
    "auth.add_user",
    "auth.change_user",
    "auth.delete_user",
    "auth.view_group",
    "auth.add_group",
    "auth.change_group",
    "auth.delete_group",
    "auth.view_permission",
    "audit.view_record",
    "members.view_member",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    Anonymous,
    Plain,
    /// Every admin permission, but not staff: the console is staff only.
    NotStaff,
    Direct,
    ViaGroup,
    Inactive,
    /// Staff status and nothing else: the console's front page only.
    Staff,
    Superuser,
}

const CALLERS: [Caller; 8] = [
    Caller::Anonymous,
    Caller::Plain,
    Caller::NotStaff,
    Caller::Direct,
    Caller::ViaGroup,
    Caller::Inactive,
    Caller::Staff,
    Caller::Superuser,
];

impl Caller {
    fn name(self) -> &'static str {
        match self {
            Caller::Anonymous => "",
            Caller::Plain => "plain",
            Caller::NotStaff => "notstaff",
            Caller::Direct => "direct",
            Caller::ViaGroup => "grouped",
            Caller::Inactive => "inactive",
            Caller::Staff => "staffer",
            Caller::Superuser => "root",
        }
    }

    fn signed_in(self) -> bool {
        !matches!(self, Caller::Anonymous | Caller::Inactive)
    }

    fn staff(self) -> bool {
        matches!(
            self,
            Caller::Direct
                | Caller::ViaGroup
                | Caller::Inactive
                | Caller::Staff
                | Caller::Superuser
        )
    }

    fn has_perms(self) -> bool {
        matches!(
            self,
            Caller::NotStaff | Caller::Direct | Caller::ViaGroup | Caller::Inactive
        )
    }
}

/// What a route asks of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Needs {
    Staff,
    StaffAndPermission,
    Superuser,
}

impl Needs {
    fn allows(self, caller: Caller) -> bool {
        if !caller.signed_in() {
            return false;
        }
        match self {
            Needs::Staff => caller.staff(),
            Needs::StaffAndPermission => {
                caller == Caller::Superuser || (caller.staff() && caller.has_perms())
            }
            Needs::Superuser => caller == Caller::Superuser,
        }
    }
}

fn new_user(name: &str, staff: bool, superuser: bool, active: bool) -> NewUser {
    let mut new = NewUser::new(
        Username::parse(name).unwrap(),
        Some(Email::parse(&format!("{name}@example.com")).unwrap()),
        hash_password(PASSWORD.as_bytes(), &LOW).unwrap(),
        Timestamp::from_unix(1_700_000_000),
    );
    new.is_active = active;
    new.is_staff = staff;
    new.is_superuser = superuser;
    new
}

fn perm(name: &str) -> Permission {
    Permission::parse(name).unwrap()
}

async fn seed(server: &TestServer) -> SqliteStore {
    let store = SqliteStore::open(&server.db).await.unwrap();
    let admins = store
        .create_group(&GroupName::parse("Administrators").unwrap())
        .await
        .unwrap();
    for p in ADMIN_PERMS {
        store.grant_to_group(admins.id, &perm(p)).await.unwrap();
    }
    // A group the permission holders may hand on, and one they may not.
    let readers = store
        .create_group(&GroupName::parse("Readers").unwrap())
        .await
        .unwrap();
    store
        .grant_to_group(readers.id, &perm("members.view_member"))
        .await
        .unwrap();
    let drop = store
        .create_group(&GroupName::parse("Drop readers").unwrap())
        .await
        .unwrap();
    store
        .grant_to_group(drop.id, &perm("drop.view_message"))
        .await
        .unwrap();
    for caller in CALLERS.into_iter().filter(|c| *c != Caller::Anonymous) {
        let user = store
            .create_user(new_user(
                caller.name(),
                caller.staff(),
                caller == Caller::Superuser,
                caller != Caller::Inactive,
            ))
            .await
            .unwrap();
        match caller {
            Caller::NotStaff | Caller::Direct | Caller::Inactive => {
                for p in ADMIN_PERMS {
                    store.grant_to_user(user.id, &perm(p)).await.unwrap();
                }
            }
            Caller::ViaGroup => store
                .add_user_to_group(user.id, admins.id)
                .await
                .map(|_| ())
                .unwrap(),
            _ => {}
        }
    }
    store
}

async fn browser_for(server: &TestServer, caller: Caller) -> Browser {
    if caller == Caller::Anonymous {
        return server.browser();
    }
    server
        .browser_as(caller.name(), PASSWORD, caller.signed_in())
        .await
}

fn check(caller: Caller, needs: Needs, what: &str, page: &Page, ok: StatusCode) -> bool {
    let allowed = needs.allows(caller);
    let expected = if allowed {
        ok
    } else if caller.signed_in() {
        StatusCode::FORBIDDEN
    } else {
        StatusCode::SEE_OTHER
    };
    assert_eq!(page.status, expected, "{caller:?} {what}: {}", page.body);
    if !caller.signed_in() {
        // A GET comes back to where it was after login; a POST to the front page.
        let next = if what.starts_with("GET") {
            "/accounts/login/?next=%2Fadmin%2F"
        } else {
            "/accounts/login/?next=%2F"
        };
        assert!(
            page.location().starts_with(next),
            "{caller:?} {what} -> {}",
            page.location()
        );
    }
    allowed
}

async fn user(store: &SqliteStore, name: &str) -> User {
    store
        .get_by_username(&Username::parse(name).unwrap())
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no user {name}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_admin_route_for_every_kind_of_caller() {
    let mut server = TestServer::start(|_| {}).await;
    let store = seed(&server).await;
    use Needs::{Staff, StaffAndPermission as Perm, Superuser};
    for caller in CALLERS {
        let mut b = browser_for(&server, caller).await;
        let csrf = b.form_token().await;
        // Each caller works on an account of its own, so the effects can be told apart.
        let target_name = format!("target{}", caller.name());
        let target = store
            .create_user(new_user(&target_name, false, false, true))
            .await
            .unwrap();
        let t = target.id.get();
        let readers = store
            .get_group(&GroupName::parse("Readers").unwrap())
            .await
            .unwrap()
            .unwrap();

        // Pages.
        for (path, needs) in [
            ("/admin/".to_owned(), Staff),
            ("/admin/users/".to_owned(), Perm),
            (format!("/admin/users/?q={target_name}"), Perm),
            (format!("/admin/users/{t}/"), Perm),
            ("/admin/users/add/".to_owned(), Perm),
            ("/admin/groups/".to_owned(), Perm),
            (format!("/admin/groups/{}/", readers.id), Perm),
            ("/admin/permissions/".to_owned(), Perm),
            ("/admin/audit/".to_owned(), Perm),
            ("/admin/audit/verify/".to_owned(), Perm),
        ] {
            let page = b.get(&path).await;
            if check(caller, needs, &format!("GET {path}"), &page, StatusCode::OK) {
                assert_eq!(
                    page.headers.get("cache-control").unwrap(),
                    "no-store",
                    "{path}"
                );
            }
        }
        let search = b.get(&format!("/admin/users/?q={target_name}")).await;
        if Perm.allows(caller) {
            assert!(search.body.contains(&format!("/admin/users/{t}/")));
            assert!(search.body.contains("1 user matching"), "{}", search.body);
        }

        // Create an account.
        let created = format!("made{}", caller.name());
        let page = b
            .post(
                "/admin/users/add/",
                &[
                    ("username", &created),
                    ("email", &format!("{created}@example.com")),
                    ("password1", PASSWORD),
                    ("password2", PASSWORD),
                    ("csrf_token", &csrf),
                ],
            )
            .await;
        let allowed = check(caller, Perm, "POST add user", &page, StatusCode::SEE_OTHER);
        let made = store
            .get_by_username(&Username::parse(&created).unwrap())
            .await
            .unwrap();
        assert_eq!(made.is_some(), allowed, "{caller:?}: user created?");
        if let Some(made) = made {
            assert!(made.is_active && !made.is_staff && !made.is_superuser);
            assert_eq!(page.location(), format!("/admin/users/{}/", made.id));
        }

        // Deactivate, then activate.
        let page = b
            .post(
                &format!("/admin/users/{t}/deactivate/"),
                &[("csrf_token", &csrf)],
            )
            .await;
        let allowed = check(
            caller,
            Perm,
            "POST deactivate",
            &page,
            StatusCode::SEE_OTHER,
        );
        assert_eq!(user(&store, &target_name).await.is_active, !allowed);
        let page = b
            .post(
                &format!("/admin/users/{t}/activate/"),
                &[("csrf_token", &csrf)],
            )
            .await;
        check(caller, Perm, "POST activate", &page, StatusCode::SEE_OTHER);
        assert!(user(&store, &target_name).await.is_active);

        // Set a password: the target's sessions end with it.
        let mut victim = server.browser();
        assert_eq!(
            victim.login(&target_name, PASSWORD, None).await.status,
            StatusCode::SEE_OTHER
        );
        let before = user(&store, &target_name).await.password_hash;
        let page = b
            .post(
                &format!("/admin/users/{t}/password/"),
                &[
                    ("new_password1", NEW_PASSWORD),
                    ("new_password2", NEW_PASSWORD),
                    ("csrf_token", &csrf),
                ],
            )
            .await;
        let allowed = check(
            caller,
            Perm,
            "POST set password",
            &page,
            StatusCode::SEE_OTHER,
        );
        let after = user(&store, &target_name).await.password_hash;
        assert_eq!(before != after, allowed, "{caller:?}: password set?");
        let profile = victim.get("/accounts/profile/").await;
        assert_eq!(
            profile.status,
            if allowed {
                StatusCode::SEE_OTHER
            } else {
                StatusCode::OK
            },
            "{caller:?}: the target's session after a password set"
        );

        // Sign out everywhere.
        let mut victim = server.browser();
        let password = if allowed { NEW_PASSWORD } else { PASSWORD };
        assert_eq!(
            victim.login(&target_name, password, None).await.status,
            StatusCode::SEE_OTHER
        );
        let page = b
            .post(
                &format!("/admin/users/{t}/sessions/revoke/"),
                &[("csrf_token", &csrf)],
            )
            .await;
        let allowed = check(
            caller,
            Perm,
            "POST revoke sessions",
            &page,
            StatusCode::SEE_OTHER,
        );
        assert_eq!(
            store
                .list_sessions_for_user(target.id)
                .await
                .unwrap()
                .is_empty(),
            allowed
        );

        // Groups and direct grants.
        let page = b
            .post(
                &format!("/admin/users/{t}/groups/add/"),
                &[("group", "Readers"), ("csrf_token", &csrf)],
            )
            .await;
        let allowed = check(
            caller,
            Perm,
            "POST add to group",
            &page,
            StatusCode::SEE_OTHER,
        );
        let in_readers =
            |groups: Vec<palisade_core::Group>| groups.iter().any(|g| g.id == readers.id);
        assert_eq!(
            in_readers(store.groups_of_user(target.id).await.unwrap()),
            allowed
        );
        let page = b
            .post(
                &format!("/admin/users/{t}/groups/remove/"),
                &[("group", "Readers"), ("csrf_token", &csrf)],
            )
            .await;
        check(
            caller,
            Perm,
            "POST remove from group",
            &page,
            StatusCode::SEE_OTHER,
        );
        assert!(!in_readers(store.groups_of_user(target.id).await.unwrap()));

        let page = b
            .post(
                &format!("/admin/users/{t}/permissions/grant/"),
                &[("permission", "members.view_member"), ("csrf_token", &csrf)],
            )
            .await;
        let allowed = check(caller, Perm, "POST grant", &page, StatusCode::SEE_OTHER);
        assert_eq!(
            store
                .direct_permissions(target.id)
                .await
                .unwrap()
                .contains(&perm("members.view_member")),
            allowed
        );
        let page = b
            .post(
                &format!("/admin/users/{t}/permissions/revoke/"),
                &[("permission", "members.view_member"), ("csrf_token", &csrf)],
            )
            .await;
        check(caller, Perm, "POST revoke", &page, StatusCode::SEE_OTHER);
        assert!(
            store
                .direct_permissions(target.id)
                .await
                .unwrap()
                .is_empty()
        );

        // The flags: a superuser's alone.
        let page = b
            .post(
                &format!("/admin/users/{t}/flags/"),
                &[("is_staff", "on"), ("csrf_token", &csrf)],
            )
            .await;
        let allowed = check(
            caller,
            Superuser,
            "POST flags",
            &page,
            StatusCode::SEE_OTHER,
        );
        assert_eq!(user(&store, &target_name).await.is_staff, allowed);

        // Groups: create, grant, revoke, delete.
        let group_name = format!("Made by {caller:?}");
        let page = b
            .post(
                "/admin/groups/add/",
                &[("name", &group_name), ("csrf_token", &csrf)],
            )
            .await;
        let allowed = check(caller, Perm, "POST add group", &page, StatusCode::SEE_OTHER);
        let made = store
            .get_group(&GroupName::parse(&group_name).unwrap())
            .await
            .unwrap();
        assert_eq!(made.is_some(), allowed);
        // Those refused work on Readers, which must come out unchanged.
        let g = made.as_ref().map_or(readers.id, |g| g.id);
        let page = b
            .post(
                &format!("/admin/groups/{g}/permissions/grant/"),
                &[("permission", "audit.view_record"), ("csrf_token", &csrf)],
            )
            .await;
        let allowed = check(
            caller,
            Perm,
            "POST group grant",
            &page,
            StatusCode::SEE_OTHER,
        );
        assert_eq!(
            store
                .permissions_of_group(g)
                .await
                .unwrap()
                .contains(&perm("audit.view_record")),
            allowed
        );
        let page = b
            .post(
                &format!("/admin/groups/{}/permissions/revoke/", readers.id),
                &[("permission", "members.view_member"), ("csrf_token", &csrf)],
            )
            .await;
        let allowed = check(
            caller,
            Perm,
            "POST group revoke",
            &page,
            StatusCode::SEE_OTHER,
        );
        let still = store
            .permissions_of_group(readers.id)
            .await
            .unwrap()
            .contains(&perm("members.view_member"));
        assert_eq!(still, !allowed);
        if allowed {
            store
                .grant_to_group(readers.id, &perm("members.view_member"))
                .await
                .unwrap();
        }
        let page = b
            .post(
                &format!("/admin/groups/{g}/delete/"),
                &[("csrf_token", &csrf)],
            )
            .await;
        let allowed = check(
            caller,
            Perm,
            "POST delete group",
            &page,
            StatusCode::SEE_OTHER,
        );
        if allowed {
            assert!(
                store
                    .get_group(&GroupName::parse(&group_name).unwrap())
                    .await
                    .unwrap()
                    .is_none()
            );
        } else {
            assert!(store.get_group(&readers.name).await.unwrap().is_some());
        }

        if Perm.allows(caller) {
            // The right permission without the CSRF token is still refused.
            let page = b.post(&format!("/admin/users/{t}/deactivate/"), &[]).await;
            assert_eq!(page.status, StatusCode::FORBIDDEN);
            assert!(user(&store, &target_name).await.is_active);
            // An id that is nobody is a 404.
            let page = b
                .post("/admin/users/999999/deactivate/", &[("csrf_token", &csrf)])
                .await;
            assert_eq!(page.status, StatusCode::NOT_FOUND);
            assert_eq!(
                b.get("/admin/groups/999999/").await.status,
                StatusCode::NOT_FOUND
            );
            // A verb that is none of add/remove, grant/revoke is no route.
            let page = b
                .post(
                    &format!("/admin/users/{t}/permissions/steal/"),
                    &[("permission", "members.view_member"), ("csrf_token", &csrf)],
                )
                .await;
            assert_eq!(page.status, StatusCode::NOT_FOUND);
        }
    }

    // Every change above is on the record with who made it, and the chain holds.
    let records = store.page(i64::MIN, 10_000).await.unwrap();
    for (action, actor) in [
        ("user.create", "direct"),
        ("user.deactivate", "grouped"),
        ("user.set_password", "root"),
        ("group.add_user", "direct"),
        ("perm.grant", "grouped"),
        ("perm.revoke", "root"),
        ("user.flags", "root"),
        ("group.create", "grouped"),
        ("group.grant", "direct"),
        ("group.delete", "root"),
    ] {
        assert!(
            records.iter().any(|r| r.event.action == action
                && r.event.actor.as_deref() == Some(actor)
                && r.event.detail["via"] == "admin"),
            "no {action} by {actor} on the record"
        );
    }
    for refused in ["staffer", "plain", "notstaff"] {
        assert!(
            !records
                .iter()
                .any(|r| r.event.actor.as_deref() == Some(refused)
                    && r.event.detail["via"] == "admin"),
            "{refused} changed something"
        );
    }
    store.verify().await.unwrap();
    store.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escalation_attempts_are_refused() {
    let mut server = TestServer::start(|_| {}).await;
    let store = seed(&server).await;
    let mut b = browser_for(&server, Caller::Direct).await;
    let csrf = b.form_token().await;
    let me = user(&store, "direct").await;
    let root = user(&store, "root").await;
    let other_staff = user(&store, "staffer").await;
    let plain = user(&store, "plain").await;
    let refused = |page: &Page, what: &str| {
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{what}: {}", page.body);
        assert!(
            page.body.contains("Refused") || page.body.contains("needs"),
            "{what}"
        );
    };

    // Staff making itself superuser, or a plain user staff.
    for (id, what) in [(me.id, "itself"), (plain.id, "another")] {
        let page = b
            .post(
                &format!("/admin/users/{id}/flags/"),
                &[
                    ("is_superuser", "on"),
                    ("is_staff", "on"),
                    ("csrf_token", &csrf),
                ],
            )
            .await;
        refused(&page, &format!("staff granting superuser to {what}"));
    }
    assert!(!user(&store, "direct").await.is_superuser);
    assert!(!user(&store, "plain").await.is_staff);

    // Creating a superuser or staff account.
    let page = b
        .post(
            "/admin/users/add/",
            &[
                ("username", "sneaky"),
                ("password1", PASSWORD),
                ("password2", PASSWORD),
                ("is_superuser", "on"),
                ("csrf_token", &csrf),
            ],
        )
        .await;
    refused(&page, "creating a superuser");
    assert!(
        store
            .get_by_username(&Username::parse("sneaky").unwrap())
            .await
            .unwrap()
            .is_none()
    );

    // Adding itself to a group, granting itself a permission.
    let page = b
        .post(
            &format!("/admin/users/{}/groups/add/", me.id),
            &[("group", "Drop readers"), ("csrf_token", &csrf)],
        )
        .await;
    refused(&page, "adding itself to a group");
    let page = b
        .post(
            &format!("/admin/users/{}/permissions/grant/", me.id),
            &[("permission", "drop.view_message"), ("csrf_token", &csrf)],
        )
        .await;
    refused(&page, "granting itself a permission");
    assert!(store.groups_of_user(me.id).await.unwrap().is_empty());
    assert!(
        !store
            .held_permissions(me.id)
            .await
            .unwrap()
            .contains(&perm("drop.view_message"))
    );

    // Handing on what it does not hold: to a plain user, directly, by a group, to a group.
    let page = b
        .post(
            &format!("/admin/users/{}/groups/add/", plain.id),
            &[("group", "Drop readers"), ("csrf_token", &csrf)],
        )
        .await;
    refused(&page, "a group with a permission the granter lacks");
    assert!(page.body.contains("drop.view_message"), "{}", page.body);
    let page = b
        .post(
            &format!("/admin/users/{}/permissions/grant/", plain.id),
            &[("permission", "drop.view_message"), ("csrf_token", &csrf)],
        )
        .await;
    refused(&page, "a permission the granter lacks");
    let readers = store
        .get_group(&GroupName::parse("Readers").unwrap())
        .await
        .unwrap()
        .unwrap();
    let page = b
        .post(
            &format!("/admin/groups/{}/permissions/grant/", readers.id),
            &[("permission", "drop.view_message"), ("csrf_token", &csrf)],
        )
        .await;
    refused(&page, "granting a group a permission the granter lacks");
    assert!(store.held_permissions(plain.id).await.unwrap().is_empty());

    // Horizontal: taking over a superuser, another staff account, or an account that holds
    // more than the caller (its password, its sessions, its status).
    let richer = store
        .create_user(new_user("richer", false, false, true))
        .await
        .unwrap();
    store
        .grant_to_user(richer.id, &perm("drop.view_message"))
        .await
        .unwrap();
    for (id, what) in [
        (root.id, "a superuser"),
        (other_staff.id, "another staff account"),
        (richer.id, "an account holding more"),
    ] {
        let page = b
            .post(
                &format!("/admin/users/{id}/password/"),
                &[
                    ("new_password1", NEW_PASSWORD),
                    ("new_password2", NEW_PASSWORD),
                    ("csrf_token", &csrf),
                ],
            )
            .await;
        refused(&page, &format!("setting the password of {what}"));
        let page = b
            .post(
                &format!("/admin/users/{id}/deactivate/"),
                &[("csrf_token", &csrf)],
            )
            .await;
        refused(&page, &format!("deactivating {what}"));
    }
    for name in ["root", "staffer", "richer"] {
        let u = user(&store, name).await;
        assert!(u.is_active, "{name}");
        assert!(
            palisade_crypto::password::verify_password(PASSWORD.as_bytes(), &u.password_hash, &LOW)
                .is_ok_and(|v| matches!(v, palisade_crypto::password::Verified::Valid { .. })),
            "{name}'s password unchanged"
        );
    }
    // The page says why, and offers no button for it.
    let page = b.get(&format!("/admin/users/{}/", root.id)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("only a superuser can change"));
    assert!(!page.body.contains("Set password</button>"));
    assert!(!page.body.contains("id=\"flags\""));

    // A plain user adding itself to a group through the console.
    let mut p = browser_for(&server, Caller::Plain).await;
    let csrf = p.form_token().await;
    let page = p
        .post(
            &format!("/admin/users/{}/groups/add/", plain.id),
            &[("group", "Readers"), ("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(store.groups_of_user(plain.id).await.unwrap().is_empty());

    // None of it is on the record as a change.
    let records = store.page(i64::MIN, 10_000).await.unwrap();
    assert!(
        !records.iter().any(|r| r.event.detail["via"] == "admin"),
        "a refused change was recorded"
    );
    store.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_superuser_grants_staff_and_the_user_list_pages_and_searches() {
    let mut server = TestServer::start(|_| {}).await;
    let store = seed(&server).await;
    for i in 0..120 {
        store
            .create_user(new_user(&format!("bulk{i:03}"), false, false, i % 2 == 0))
            .await
            .unwrap();
    }
    let mut b = browser_for(&server, Caller::Superuser).await;
    let first = b.get("/admin/users/").await;
    assert_eq!(first.status, StatusCode::OK);
    // 120 bulk accounts and the 7 callers; page 1 of 3 in username order.
    assert!(
        first.body.contains("127 users; page 1 of 3"),
        "{}",
        first.body
    );
    assert_eq!(
        first
            .body
            .matches("<tr><td><a href=\"/admin/users/")
            .count(),
        50
    );
    assert!(first.body.contains(">bulk000<"));
    assert!(first.body.contains("page=2"));
    let third = b.get("/admin/users/?page=3").await;
    assert_eq!(
        third
            .body
            .matches("<tr><td><a href=\"/admin/users/")
            .count(),
        27
    );
    assert!(third.body.contains(">staffer<"));
    let found = b.get("/admin/users/?q=BULK11").await;
    assert!(found.body.contains("10 users matching"), "{}", found.body);
    let by_mail = b.get("/admin/users/?q=bulk007%40example").await;
    assert!(by_mail.body.contains("1 user matching"));
    let none = b.get("/admin/users/?q=%25").await;
    assert!(none.body.contains("0 users matching"), "a literal %");

    // A superuser makes a plain account staff; it can then open the console.
    let csrf = b.form_token().await;
    let plain = user(&store, "plain").await;
    let page = b
        .post(
            &format!("/admin/users/{}/flags/", plain.id),
            &[("is_staff", "on"), ("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let mut p = browser_for(&server, Caller::Plain).await;
    let index = p.get("/admin/").await;
    assert_eq!(index.status, StatusCode::OK);
    assert!(index.body.contains("holds no administration permission"));
    assert_eq!(p.get("/admin/users/").await.status, StatusCode::FORBIDDEN);
    store.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chain_check_names_an_edited_or_deleted_record() {
    let mut server = TestServer::start(|_| {}).await;
    let store = seed(&server).await;
    let mut b = browser_for(&server, Caller::Superuser).await;
    let csrf = b.form_token().await;
    let plain = user(&store, "plain").await;
    for (path, field, value) in [
        ("groups/add/", "group", "Readers"),
        ("permissions/grant/", "permission", "drop.view_message"),
        ("permissions/revoke/", "permission", "drop.view_message"),
        ("groups/remove/", "group", "Readers"),
    ] {
        let page = b
            .post(
                &format!("/admin/users/{}/{path}", plain.id),
                &[(field, value), ("csrf_token", &csrf)],
            )
            .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{path}");
    }
    let verdict = b.get("/admin/audit/verify/").await;
    assert!(
        verdict.body.contains("The audit chain is intact"),
        "{}",
        verdict.body
    );
    let log = b.get("/admin/audit/").await;
    assert!(log.body.contains("group.add_user") && log.body.contains("perm.revoke"));

    let records = store.page(i64::MIN, 10_000).await.unwrap();
    let grant = records
        .iter()
        .find(|r| r.event.action == "perm.grant")
        .unwrap()
        .seq;
    let sql = |statement: String| {
        let out = std::process::Command::new("sqlite3")
            .arg(server.data_dir.join("palisade.db"))
            .arg(statement)
            .output()
            .expect("sqlite3 (scripts/test-setup.sh installs it)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    // Edited: someone hides who granted the permission.
    sql(format!(
        "UPDATE audit_log SET actor = 'nobody' WHERE seq = {grant}"
    ));
    let verdict = b.get("/admin/audit/verify/").await;
    assert!(
        verdict.body.contains(&format!("BROKEN at record {grant}")),
        "{}",
        verdict.body
    );
    assert!(verdict.body.contains("edited"));
    assert!(
        matches!(store.verify().await, Err(palisade_core::AuditVerifyError::Broken(l)) if l.seq == grant)
    );
    // Deleted: the gap is named.
    sql(format!("DELETE FROM audit_log WHERE seq = {grant}"));
    let verdict = b.get("/admin/audit/verify/").await;
    assert!(
        verdict
            .body
            .contains(&format!("BROKEN at record {}", grant + 1))
            && verdict.body.contains(&format!("expected record {grant}")),
        "{}",
        verdict.body
    );
    store.close().await;
    server.stop().await;
}
