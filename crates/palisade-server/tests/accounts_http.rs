//! The account pages driven over real TLS against the real server (in process, on port 0,
//! with a fresh data directory and database), as a non-browser client would: cookies and
//! the CSRF token handled by hand, redirects not followed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::time::Duration;

use common::{TestServer, encode};
use palisade_core::{AuditLog, Email, NewUser, SessionId, Timestamp, UserStore, Username};
use palisade_crypto::password::{Argon2Params, hash_password};
use palisade_server::{Config, Flags, Server, Sources};
use palisade_store::SqliteStore;
use reqwest::StatusCode;
use reqwest::header;

const PASSWORD: &str = "correct horse battery staple";
/// Deliberately weak parameters: the server must upgrade the hash at the first login.
const LOW: Argon2Params = Argon2Params {
    memory_kib: 1024,
    iterations: 1,
    parallelism: 1,
};

/// The common test server with three accounts made straight in the database, as
/// `palisade user create` would: alice and bob active, ivan inactive.
async fn start(tweak: impl FnOnce(&mut Config)) -> TestServer {
    let server = TestServer::start(tweak).await;
    let store = SqliteStore::open(&server.db).await.unwrap();
    for (name, active) in [("alice", true), ("bob", true), ("ivan", false)] {
        let mut user = NewUser::new(
            Username::parse(name).unwrap(),
            Some(Email::parse(&format!("{name}@example.com")).unwrap()),
            hash_password(PASSWORD.as_bytes(), &LOW).unwrap(),
            Timestamp::from_unix(1_700_000_000),
        );
        user.is_active = active;
        store.create_user(user).await.unwrap();
    }
    store.close().await;
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_profile_logout_and_hash_upgrade() {
    let mut server = start(|_| {}).await;
    let mut b = server.browser();

    assert_eq!(b.get("/readyz").await.status, StatusCode::OK);
    let form = b.get("/accounts/login/").await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains("name=\"username\""));
    assert!(form.body.contains("name=\"password\""));
    let csrf_cookie = form
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("__Host-palisade_csrf="))
        .expect("anonymous CSRF cookie");
    assert!(csrf_cookie.contains("Secure") && csrf_cookie.contains("HttpOnly"));
    assert!(b.session().is_none(), "no session before login");

    let done = b.login("alice", PASSWORD, None).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(done.location(), "/");
    let set = done
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("__Host-palisade_session="))
        .expect("session cookie");
    for attr in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(set.contains(attr), "{set} lacks {attr}");
    }
    assert!(!set.contains("Domain"));
    let session = b.session().unwrap();
    assert_eq!(session.len(), 43);

    let profile = b.get("/accounts/profile/").await;
    assert_eq!(profile.status, StatusCode::OK);
    assert!(profile.body.contains("alice@example.com"));
    assert!(profile.body.contains("this session"));
    assert_eq!(profile.headers[header::CACHE_CONTROL], "no-store");

    // The weak hash was replaced by one with the server's parameters, and last_login set.
    let store = SqliteStore::open(&server.db).await.unwrap();
    let alice = store
        .get_by_username(&Username::parse("alice").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(
        alice.password_hash.contains("m=19456,t=2,p=1"),
        "hash not upgraded: {}",
        alice.password_hash.split('$').nth(3).unwrap_or("")
    );
    assert!(alice.last_login.is_some());
    let actions: Vec<String> = store
        .tail(10)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.event.action)
        .collect();
    assert!(actions.contains(&"login.success".to_owned()));

    let token = profile.csrf_token();
    let out = b
        .post("/accounts/logout/", &[("csrf_token", token.as_str())])
        .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(out.location(), "/accounts/login/");
    assert!(b.session().is_none(), "cookie expired on logout");
    let again = b.get("/accounts/profile/").await;
    assert_eq!(again.status, StatusCode::SEE_OTHER);
    assert_eq!(
        again.location(),
        "/accounts/login/?next=%2Faccounts%2Fprofile%2F"
    );
    // Replaying the old cookie does not help: the session is gone server-side.
    b.cookies
        .insert("__Host-palisade_session".into(), session.clone());
    assert_eq!(
        b.get("/accounts/profile/").await.status,
        StatusCode::SEE_OTHER
    );
    assert!(
        store
            .tail(10)
            .await
            .unwrap()
            .iter()
            .any(|r| r.event.action == "logout")
    );
    store.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_generic_and_log_no_password() {
    let mut server = start(|_| {}).await;
    let mut b = server.browser();
    for (user, pw) in [
        ("alice", "wrong password"),
        ("nobody", PASSWORD),
        ("ivan", PASSWORD),
        ("ivan@example.com", PASSWORD),
    ] {
        let page = b.login(user, pw, None).await;
        assert_eq!(page.status, StatusCode::OK, "{user}");
        assert!(
            page.body
                .contains("Please enter a correct username and password."),
            "{user}: {}",
            page.body
        );
        assert!(b.session().is_none(), "{user} got a session");
    }
    // Email works as the login name for active users.
    let ok = b.login("bob@example.com", PASSWORD, None).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);

    let store = SqliteStore::open(&server.db).await.unwrap();
    let records = store.tail(20).await.unwrap();
    let failures: Vec<_> = records
        .iter()
        .filter(|r| r.event.action == "login.failure")
        .collect();
    assert_eq!(failures.len(), 4);
    assert_eq!(failures[0].event.target.as_deref(), Some("alice"));
    for r in &records {
        let text = serde_json::to_string(&r.event).unwrap();
        assert!(!text.contains("wrong password") && !text.contains(PASSWORD));
    }
    store.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_gives_a_new_session_and_kills_the_old_one() {
    let mut server = start(|_| {}).await;
    let mut b = server.browser();
    // A cookie planted before login (fixation attempt) is not adopted.
    let planted = SessionId::generate().unwrap();
    b.cookies.insert(
        "__Host-palisade_session".into(),
        planted.as_cookie_value().to_owned(),
    );
    assert_eq!(
        b.login("alice", PASSWORD, None).await.status,
        StatusCode::SEE_OTHER
    );
    let first = b.session().unwrap();
    assert_ne!(first, planted.as_cookie_value());

    // Signing in again while signed in replaces the session.
    assert_eq!(
        b.login("alice", PASSWORD, None).await.status,
        StatusCode::SEE_OTHER
    );
    let second = b.session().unwrap();
    assert_ne!(first, second);
    assert_eq!(b.get("/accounts/profile/").await.status, StatusCode::OK);
    b.cookies.insert("__Host-palisade_session".into(), first);
    assert_eq!(
        b.get("/accounts/profile/").await.status,
        StatusCode::SEE_OTHER,
        "the pre-login session must be dead"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csrf_and_origin_are_enforced() {
    let mut server = start(|_| {}).await;
    let mut b = server.browser();
    let form = b.get("/accounts/login/").await;
    let token = form.csrf_token();
    let creds = [("username", "alice"), ("password", PASSWORD)];

    let missing = b.post("/accounts/login/", &creds).await;
    assert_eq!(missing.status, StatusCode::FORBIDDEN);
    assert!(missing.body.contains("security token"));
    let wrong = b
        .post(
            "/accounts/login/",
            &[creds[0], creds[1], ("csrf_token", "AAAA")],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);

    let with_token = [creds[0], creds[1], ("csrf_token", token.as_str())];
    b.origin = Some("https://evil.example".into());
    let cross = b.post("/accounts/login/", &with_token).await;
    assert_eq!(cross.status, StatusCode::FORBIDDEN);
    assert!(cross.body.contains("another web site"));
    b.origin = None;
    assert_eq!(
        b.post("/accounts/login/", &with_token).await.status,
        StatusCode::FORBIDDEN,
        "over HTTPS a POST with neither Origin nor Referer is refused"
    );
    // Without the CSRF cookie the token proves nothing.
    b.origin = Some(server.url.clone());
    let saved = b.cookies.clone();
    b.cookies.clear();
    assert_eq!(
        b.post("/accounts/login/", &with_token).await.status,
        StatusCode::FORBIDDEN
    );
    b.cookies = saved;
    let ok = b.post("/accounts/login/", &with_token).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);

    // Signed in: the anonymous token no longer works for logout; the session's does, via
    // the header too.
    let denied = b
        .post("/accounts/logout/", &[("csrf_token", token.as_str())])
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    let session_token = b.get("/accounts/profile/").await.csrf_token();
    let req = b
        .client
        .post(format!("{}/accounts/logout/", server.url))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header("X-CSRF-Token", session_token)
        .header(header::REFERER, format!("{}/accounts/profile/", server.url))
        .body("");
    assert_eq!(b.send(req).await.status, StatusCode::SEE_OTHER);
    assert_eq!(
        b.get("/accounts/profile/").await.status,
        StatusCode::SEE_OTHER
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_redirects_land_on_root() {
    let mut server = start(|_| {}).await;
    let mut b = server.browser();
    for bad in [
        "//evil.example",
        "https:evil",
        "/\\evil",
        "\\\\evil",
        "%2F%2Fevil",
        "/%2F/evil",
        "/%5Cevil",
        "/%09/evil",
        "javascript:alert(1)",
        "http://evil",
    ] {
        let page = b.login("alice", PASSWORD, Some(bad)).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{bad}");
        assert_eq!(page.location(), "/", "{bad}");
    }
    let page = b
        .login("alice", PASSWORD, Some("/accounts/profile/?a=b"))
        .await;
    assert_eq!(page.location(), "/accounts/profile/?a=b");
    // The login page carries a safe `next` from the query into its form, and drops others.
    let form = b.get("/accounts/login/?next=/accounts/profile/").await;
    // minijinja's HTML escaping writes `/` as `&#x2f;`; browsers decode it back.
    let next_value = form
        .body
        .split("name=\"next\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("hidden next field")
        .replace("&#x2f;", "/");
    assert_eq!(next_value, "/accounts/profile/");
    let form = b.get("/accounts/login/?next=//evil.example").await;
    assert!(!form.body.contains("evil.example"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttle_answers_429_then_lifts() {
    let mut server = start(|c| c.limits.login_window = Duration::from_secs(3)).await;
    let mut b = server.browser();
    for _ in 0..palisade_server::throttle::PAIR_LIMIT {
        assert_eq!(b.login("alice", "nope", None).await.status, StatusCode::OK);
    }
    let limited = b.login("alice", PASSWORD, None).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = limited.headers[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3).contains(&retry), "Retry-After {retry}");
    // Another account from the same address is not affected.
    assert_eq!(
        b.login("bob", PASSWORD, None).await.status,
        StatusCode::SEE_OTHER
    );
    tokio::time::sleep(Duration::from_millis(3200)).await;
    assert_eq!(
        b.login("alice", PASSWORD, None).await.status,
        StatusCode::SEE_OTHER
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_session_is_refused() {
    let mut server = start(|_| {}).await;
    let mut laptop = server.browser();
    let mut phone = server.browser();
    let mut mallory = server.browser();
    assert_eq!(
        laptop.login("alice", PASSWORD, None).await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        phone.login("alice", PASSWORD, None).await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        mallory.login("bob", PASSWORD, None).await.status,
        StatusCode::SEE_OTHER
    );
    let phone_key = SessionId::parse(&phone.session().unwrap())
        .unwrap()
        .key()
        .to_hex();

    let profile = laptop.get("/accounts/profile/").await;
    let action = format!("/accounts/sessions/{phone_key}/revoke/");
    assert!(profile.body.contains(&action), "revoke button listed");
    let token = profile.csrf_token();

    // Bob cannot revoke Alice's session, even with his own valid token.
    let bob_token = mallory.get("/accounts/profile/").await.csrf_token();
    let refused = mallory
        .post(&action, &[("csrf_token", bob_token.as_str())])
        .await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND);
    assert_eq!(phone.get("/accounts/profile/").await.status, StatusCode::OK);

    // Without the token: refused.
    assert_eq!(
        laptop.post(&action, &[]).await.status,
        StatusCode::FORBIDDEN
    );
    let done = laptop
        .post(&action, &[("csrf_token", token.as_str())])
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    assert_eq!(done.location(), "/accounts/profile/");
    let after = phone.get("/accounts/profile/").await;
    assert_eq!(after.status, StatusCode::SEE_OTHER);
    assert!(after.location().starts_with("/accounts/login/"));
    assert_eq!(
        laptop.get("/accounts/profile/").await.status,
        StatusCode::OK
    );

    let store = SqliteStore::open(&server.db).await.unwrap();
    assert!(
        store
            .tail(5)
            .await
            .unwrap()
            .iter()
            .any(|r| r.event.action == "session.revoke")
    );
    store.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_sessions_are_anonymous() {
    let mut server = start(|c| {
        c.session.idle_timeout = Duration::from_secs(1);
        c.session.absolute_timeout = Duration::from_secs(1);
    })
    .await;
    let mut b = server.browser();
    assert_eq!(
        b.login("alice", PASSWORD, None).await.status,
        StatusCode::SEE_OTHER
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        b.get("/accounts/profile/").await.status,
        StatusCode::SEE_OTHER
    );
    server.stop().await;
}

#[test]
fn postgres_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let sources = Sources {
        flags: Flags {
            data_dir: Some(dir.path().to_path_buf()),
            listen: Some("127.0.0.1:0".into()),
            database: Some("postgres://u:secret@db/x".into()),
            ..Flags::default()
        },
        env: std::collections::BTreeMap::new(),
    };
    let config = Config::load(&sources).unwrap();
    let err = Server::bind(config).unwrap_err().to_string();
    assert!(err.contains("PostgreSQL support is not built yet"), "{err}");
    assert!(!err.contains("secret"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_flood_is_bounded_and_other_requests_stay_fast() {
    let mut server = start(|c| {
        c.password.hash_workers = 1;
        // Heavier hashing so the flood outlasts its own arrival.
        c.password.argon2_memory_kib = 65_536;
        c.password.argon2_iterations = 3;
    })
    .await;
    let mut b = server.browser();
    // Warm up: the first login upgrades the hash, and gives a reusable anonymous token.
    assert_eq!(
        b.login("bob", PASSWORD, None).await.status,
        StatusCode::SEE_OTHER
    );
    let form = b.get("/accounts/login/").await;
    let token = form.csrf_token();
    let cookie = b.cookie_header();
    let body = encode(&[
        ("username", "bob"),
        ("password", PASSWORD),
        ("csrf_token", token.as_str()),
    ]);
    let mut flood = Vec::new();
    for _ in 0..30 {
        let req = b
            .client
            .post(format!("{}/accounts/login/", server.url))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ORIGIN, server.url.clone())
            .header(header::COOKIE, cookie.clone())
            .body(body.clone());
        flood.push(tokio::spawn(async move { req.send().await.unwrap() }));
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = std::time::Instant::now();
    assert_eq!(b.get("/healthz").await.status, StatusCode::OK);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "healthz took {:?} during a login flood",
        started.elapsed()
    );
    let (mut ok, mut busy) = (0, 0);
    for task in flood {
        let resp = task.await.unwrap();
        match resp.status() {
            StatusCode::SEE_OTHER => ok += 1,
            StatusCode::SERVICE_UNAVAILABLE => {
                assert!(resp.headers().contains_key(header::RETRY_AFTER));
                busy += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(ok >= 1, "some logins got through");
    assert!(busy >= 1, "the queue bound refused some ({ok} ok)");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_behind_a_proxy_keeps_secure_cookies() {
    let mut server = start(|c| c.insecure_http = true).await;
    assert!(server.url.starts_with("http://"));
    let mut b = server.browser();
    let done = b.login("alice", PASSWORD, None).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    let set = done.headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(set.contains("Secure"), "{set}");
    // A non-browser client sends the cookie back by hand.
    assert_eq!(b.get("/accounts/profile/").await.status, StatusCode::OK);
    server.stop().await;
}
