//! The self-service account lifecycle over real TLS, each flow driven from the e-mail it
//! sends: registration → activation link → sign-in; password reset → link → new password;
//! password change. Mail is read back from the outbox (and, once, from a real SMTP server)
//! and parsed by Python's `email` package; the server's clock is moved for expiry cases.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Browser, Page, SmtpServer, TestServer, parse_eml, wait_for_files};
use palisade_core::{AuditLog, Email, NewUser, Timestamp, UserStore, Username};
use palisade_crypto::hash::{Algorithm, hash};
use palisade_crypto::password::{Argon2Params, hash_password};
use palisade_server::mail::SmtpUrl;
use palisade_store::SqliteStore;
use reqwest::StatusCode;
use reqwest::header;
use serde_json::Value;

const GOOD: &str = "violet kestrel harbour 1987 lantern";
const BETTER: &str = "quartz meadow orbit tangerine 4417";
const LOW: Argon2Params = Argon2Params {
    memory_kib: 1024,
    iterations: 1,
    parallelism: 1,
};
const DAY: i64 = 86_400;

/// An active account made straight in the database, as `palisade user create` would.
async fn seed(server: &TestServer, name: &str, email: &str, password: &str) {
    let store = SqliteStore::open(&server.db).await.unwrap();
    let user = NewUser::new(
        Username::parse(name).unwrap(),
        Some(Email::parse(email).unwrap()),
        hash_password(password.as_bytes(), &LOW).unwrap(),
        Timestamp::from_unix(1_700_000_000),
    );
    store.create_user(user).await.unwrap();
    store.close().await;
}

async fn user(server: &TestServer, name: &str) -> Option<palisade_core::User> {
    let store = SqliteStore::open(&server.db).await.unwrap();
    let found = store
        .get_by_username(&Username::parse(name).unwrap())
        .await
        .unwrap();
    store.close().await;
    found
}

/// Every message in `dir` (waiting for at least `n`), parsed: to, subject, text.
async fn mails(dir: &Path, n: usize) -> Vec<Value> {
    let files = wait_for_files(dir, ".eml", n).await;
    parse_eml(&files)
}

/// Waits a moment and returns how many messages `dir` holds: for "nothing more was sent".
async fn settled_count(dir: &Path) -> usize {
    tokio::time::sleep(Duration::from_millis(300)).await;
    common::files_with_suffix(dir, ".eml").len()
}

/// The path of the first link in `text` that starts with `site` + `prefix`.
fn link(text: &str, site: &str, prefix: &str) -> String {
    let start = text
        .find(&format!("{site}{prefix}"))
        .unwrap_or_else(|| panic!("no {prefix} link in:\n{text}"));
    let rest = &text[start + site.len()..];
    let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
    rest[..end].to_owned()
}

async fn register(b: &mut Browser, username: &str, email: &str, p1: &str, p2: &str) -> Page {
    let form = b.get("/accounts/register/").await;
    assert_eq!(form.status, StatusCode::OK);
    let token = form.csrf_token();
    b.post(
        "/accounts/register/",
        &[
            ("username", username),
            ("email", email),
            ("password1", p1),
            ("password2", p2),
            ("csrf_token", &token),
        ],
    )
    .await
}

async fn post_email(b: &mut Browser, path: &str, email: &str) -> Page {
    let form = b.get(path).await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    let token = form.csrf_token();
    b.post(path, &[("email", email), ("csrf_token", &token)])
        .await
}

/// Loads the page at `path` and submits its one form (the confirm button).
async fn confirm(b: &mut Browser, path: &str) -> Page {
    let page = b.get(path).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let token = page.csrf_token();
    b.post(path, &[("csrf_token", &token)]).await
}

async fn set_password(b: &mut Browser, path: &str, p1: &str, p2: &str) -> Page {
    let page = b.get(path).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let token = page.csrf_token();
    b.post(
        path,
        &[
            ("new_password1", p1),
            ("new_password2", p2),
            ("csrf_token", &token),
        ],
    )
    .await
}

/// Loads the password-change form (signed in) and submits it.
async fn change_password(b: &mut Browser, old: &str, p1: &str, p2: &str) -> Page {
    let form = b.get("/accounts/password/change/").await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains("name=\"old_password\""));
    let token = form.csrf_token();
    b.post(
        "/accounts/password/change/",
        &[
            ("old_password", old),
            ("new_password1", p1),
            ("new_password2", p2),
            ("csrf_token", &token),
        ],
    )
    .await
}

/// `path` as it appears in an attribute of a page: the templates escape every value, `/`
/// included.
fn href(path: &str) -> String {
    format!("href=\"{}\"", path.replace('/', "&#x2f;"))
}

/// Status, headers (but `Date`) and body: what an observer compares.
fn observable(page: &Page) -> (StatusCode, Vec<(String, String)>, String) {
    let headers = page
        .headers
        .iter()
        .filter(|(k, _)| *k != header::DATE)
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
        .collect();
    (page.status, headers, page.body.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_is_activated_from_the_emailed_link_once() {
    let mut server = TestServer::start(|_| {}).await;
    let mut b = server.browser();
    let form = b.get("/accounts/register/").await;
    for field in ["username", "email", "password1", "password2"] {
        assert!(form.body.contains(&format!("name=\"{field}\"")), "{field}");
    }
    // The policy's help texts are on the form before anyone types.
    assert!(
        form.body.contains("at least 10 characters"),
        "{}",
        form.body
    );

    let done = register(&mut b, "Dana", "dana@example.com", GOOD, GOOD).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(done.body.contains("Check your email"));
    assert_eq!(done.headers[header::CACHE_CONTROL], "no-store");
    let dana = user(&server, "dana").await.expect("account created");
    assert!(!dana.is_active, "inactive until the link is used");
    assert!(dana.password_hash.starts_with("argon2$argon2id$"));

    let sent = mails(&server.outbox(), 1).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["to"], "dana@example.com");
    assert_eq!(sent[0]["subject"], "Activate your account");
    let text = sent[0]["text"].as_str().unwrap();
    let path = link(text, &server.url, "/accounts/activate/");
    assert!(!text.contains(GOOD), "no password in mail");

    // Not before activation.
    let early = b.login("dana", GOOD, None).await;
    assert_eq!(early.status, StatusCode::OK);
    assert!(
        early
            .body
            .contains("Please enter a correct username and password.")
    );

    // GET only shows the button: a link scanner activates nothing.
    let page = b.get(&path).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Activate account"));
    assert!(!user(&server, "dana").await.unwrap().is_active);
    let done = confirm(&mut b, &path).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(done.body.contains("Account activated"));
    assert!(user(&server, "dana").await.unwrap().is_active);

    // Used once: both the page and a replayed POST say so.
    let again = b.get(&path).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    assert!(again.body.contains("already been used"));
    // A page without a form: the login form gives a token for the same CSRF cookie.
    let token = b.get("/accounts/login/").await.csrf_token();
    let replay = b.post(&path, &[("csrf_token", &token)]).await;
    assert_eq!(replay.status, StatusCode::CONFLICT);

    let login = b.login("Dana", GOOD, None).await;
    assert_eq!(login.status, StatusCode::SEE_OTHER, "{}", login.body);
    let store = SqliteStore::open(&server.db).await.unwrap();
    let actions: Vec<String> = store
        .tail(20)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.event.action)
        .collect();
    for a in ["user.register", "user.activate", "login.success"] {
        assert!(actions.contains(&a.to_owned()), "{a} in {actions:?}");
    }
    store.close().await;
    // After the first sign-in the link is dead for good (bound to the last login).
    assert_eq!(b.get(&path).await.status, StatusCode::BAD_REQUEST);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_answers_the_same_for_taken_names_and_addresses() {
    let mut server = TestServer::start(|_| {}).await;
    seed(&server, "carol", "carol@example.com", GOOD).await;
    let mut b = server.browser();
    let fresh = register(&mut b, "erin", "erin@example.com", GOOD, GOOD).await;
    let taken_address = register(&mut b, "frank", "Carol@Example.com", GOOD, GOOD).await;
    let taken_name = register(&mut b, "CAROL", "gina@example.com", GOOD, GOOD).await;
    assert_eq!(fresh.status, StatusCode::OK, "{}", fresh.body);
    assert_eq!(observable(&fresh), observable(&taken_address));
    assert_eq!(observable(&fresh), observable(&taken_name));

    // Only the new name and address made an account; each owner got the mail that fits.
    assert!(user(&server, "erin").await.is_some());
    assert!(user(&server, "frank").await.is_none());
    let mut sent = mails(&server.outbox(), 3).await;
    sent.sort_by_key(|m| m["to"].as_str().unwrap().to_owned());
    let summary: Vec<(String, String)> = sent
        .iter()
        .map(|m| {
            (
                m["to"].as_str().unwrap().to_lowercase(),
                m["subject"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                "carol@example.com".into(),
                "You already have an account".into()
            ),
            ("erin@example.com".into(), "Activate your account".into()),
            ("gina@example.com".into(), "That username is taken".into()),
        ]
    );
    let notice = sent[0]["text"].as_str().unwrap();
    assert!(notice.contains("/accounts/password/reset/"), "{notice}");
    assert!(
        !notice.contains("/accounts/activate/"),
        "no activation for a taken address"
    );

    // Field errors are about the form only, and keep what was typed but the passwords.
    let bad = register(&mut b, "bad name!", "not-an-address", GOOD, BETTER).await;
    assert_eq!(bad.status, StatusCode::OK);
    assert!(
        bad.body
            .contains("The two password fields didn&#x27;t match."),
        "{}",
        bad.body
    );
    assert!(bad.body.contains("value=\"not-an-address\""));
    assert!(!bad.body.contains(GOOD));
    assert_eq!(
        settled_count(&server.outbox()).await,
        3,
        "no mail for a bad form"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_reset_from_the_emailed_link() {
    let mut server = TestServer::start(|_| {}).await;
    seed(&server, "henry", "henry@example.com", GOOD).await;
    let mut b = server.browser();
    let mut other = server.browser();
    assert_eq!(
        other.login("henry", GOOD, None).await.status,
        StatusCode::SEE_OTHER
    );

    let form = b.get("/accounts/password/reset/").await;
    assert!(form.body.contains("name=\"email\""));
    let known = post_email(&mut b, "/accounts/password/reset/", "HENRY@example.com").await;
    let unknown = post_email(&mut b, "/accounts/password/reset/", "nobody@example.com").await;
    assert_eq!(known.status, StatusCode::OK, "{}", known.body);
    assert_eq!(observable(&known), observable(&unknown));
    let sent = mails(&server.outbox(), 1).await;
    assert_eq!(
        settled_count(&server.outbox()).await,
        1,
        "nothing for an unknown address"
    );
    assert_eq!(sent[0]["to"], "henry@example.com");
    assert_eq!(sent[0]["subject"], "Reset your password");
    let path = link(
        sent[0]["text"].as_str().unwrap(),
        &server.url,
        "/accounts/reset/",
    );

    let mismatch = set_password(&mut b, &path, BETTER, GOOD).await;
    assert_eq!(mismatch.status, StatusCode::OK);
    assert!(mismatch.body.contains("didn&#x27;t match"));
    let weak = set_password(&mut b, &path, "henry@example", "henry@example").await;
    assert!(
        weak.body
            .contains("too similar to the username, e-mail address or name"),
        "{}",
        weak.body
    );
    let done = set_password(&mut b, &path, BETTER, BETTER).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(done.body.contains("Password set"));

    // Every session ended; the old password is gone, the new one works; the link is spent.
    assert_eq!(
        other.get("/accounts/profile/").await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(b.login("henry", GOOD, None).await.status, StatusCode::OK);
    assert_eq!(
        b.login("henry", BETTER, None).await.status,
        StatusCode::SEE_OTHER
    );
    let spent = b.get(&path).await;
    assert_eq!(spent.status, StatusCode::BAD_REQUEST);
    assert!(
        spent.body.contains(&href("/accounts/password/reset/")),
        "a way to a new link"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_change_needs_the_old_password_and_ends_other_sessions() {
    let mut server = TestServer::start(|_| {}).await;
    seed(&server, "iris", "iris@example.com", GOOD).await;
    let mut b = server.browser();
    let mut other = server.browser();
    assert_eq!(
        b.login("iris", GOOD, None).await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        other.login("iris", GOOD, None).await.status,
        StatusCode::SEE_OTHER
    );
    let mut anon = server.browser();
    let away = anon.get("/accounts/password/change/").await;
    assert_eq!(away.status, StatusCode::SEE_OTHER);
    assert!(away.location().starts_with("/accounts/login/?next="));

    for (old, p1, p2, expect) in [
        (
            "wrong password",
            BETTER,
            BETTER,
            "Your old password was entered incorrectly",
        ),
        (GOOD, BETTER, GOOD, "didn&#x27;t match"),
        (GOOD, "1234567890123", "1234567890123", "entirely numeric"),
    ] {
        let page = change_password(&mut b, old, p1, p2).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains(expect), "{expect}: {}", page.body);
    }
    let done = change_password(&mut b, GOOD, BETTER, BETTER).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(done.location(), "/accounts/password/change/done/");
    assert_eq!(b.get(done.location()).await.status, StatusCode::OK);
    // This session stays, the other one is over.
    assert_eq!(b.get("/accounts/profile/").await.status, StatusCode::OK);
    assert_eq!(
        other.get("/accounts/profile/").await.status,
        StatusCode::SEE_OTHER
    );
    let mut fresh = server.browser();
    assert_eq!(fresh.login("iris", GOOD, None).await.status, StatusCode::OK);
    assert_eq!(
        fresh.login("iris", BETTER, None).await.status,
        StatusCode::SEE_OTHER
    );
    // Without the token the change is refused.
    let refused = b
        .post(
            "/accounts/password/change/",
            &[
                ("old_password", BETTER),
                ("new_password1", GOOD),
                ("new_password2", GOOD),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_expire_are_tamper_proof_and_die_with_key_or_password_changes() {
    let mut server = TestServer::start(|_| {}).await;
    let mut b = server.browser();
    let outbox = server.outbox();

    // Activation: valid up to 7 days, expired after.
    register(&mut b, "jack", "jack@example.com", GOOD, GOOD).await;
    let sent = mails(&outbox, 1).await;
    let path = link(
        sent[0]["text"].as_str().unwrap(),
        &server.url,
        "/accounts/activate/",
    );
    server.state.advance_clock(7 * DAY - 60);
    assert_eq!(b.get(&path).await.status, StatusCode::OK);
    server.state.advance_clock(120);
    let expired = b.get(&path).await;
    assert_eq!(expired.status, StatusCode::GONE, "{}", expired.body);
    assert!(expired.body.contains(&href("/accounts/activate/resend/")));

    // A new link on request; the same page for an address with no account.
    let resent = post_email(&mut b, "/accounts/activate/resend/", "jack@example.com").await;
    let nobody = post_email(&mut b, "/accounts/activate/resend/", "nobody@example.com").await;
    assert_eq!(observable(&resent), observable(&nobody));
    let sent = mails(&outbox, 2).await;
    assert_eq!(settled_count(&outbox).await, 2);
    let fresh = link(
        sent[1]["text"].as_str().unwrap(),
        &server.url,
        "/accounts/activate/",
    );
    assert_ne!(fresh, path);

    // Tampered: any changed character makes the link invalid, never "expired".
    let token = fresh
        .trim_start_matches("/accounts/activate/")
        .trim_end_matches('/');
    for i in [0, token.len() / 2, token.len() - 1] {
        let mut bytes = token.as_bytes().to_vec();
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        let forged = format!("/accounts/activate/{}/", String::from_utf8(bytes).unwrap());
        assert_eq!(
            b.get(&forged).await.status,
            StatusCode::BAD_REQUEST,
            "{forged}"
        );
    }
    assert_eq!(
        b.get("/accounts/activate/not-a-token/").await.status,
        StatusCode::BAD_REQUEST
    );

    // Key rotation: links signed by the previous key keep working until it is retired.
    let master =
        palisade_server::secrets::load_or_create_master_key(&server.data_dir, None).unwrap();
    let store = SqliteStore::open(&server.db).await.unwrap();
    let now = Timestamp::from_unix(palisade_server::auth::now().unix() + 7 * DAY);
    let before = palisade_server::secrets::token_key_ring(&store, &master, now)
        .await
        .unwrap();
    let old_kid = before.current().kid_hex();
    palisade_server::secrets::rotate_token_key(&store, &master, now)
        .await
        .unwrap();
    assert_eq!(
        b.get(&fresh).await.status,
        StatusCode::OK,
        "old key still verifies"
    );
    palisade_server::secrets::retire_token_key(&store, &old_kid, now)
        .await
        .unwrap();
    assert_eq!(
        b.get(&fresh).await.status,
        StatusCode::BAD_REQUEST,
        "rotated-out key"
    );
    store.close().await;

    // Reset: an hour, and dead once the password changes another way.
    seed(&server, "kim", "kim@example.com", GOOD).await;
    post_email(&mut b, "/accounts/password/reset/", "kim@example.com").await;
    let sent = mails(&outbox, 3).await;
    let reset = link(
        sent[2]["text"].as_str().unwrap(),
        &server.url,
        "/accounts/reset/",
    );
    server.state.advance_clock(3600 - 60);
    assert_eq!(b.get(&reset).await.status, StatusCode::OK);
    server.state.advance_clock(120);
    assert_eq!(b.get(&reset).await.status, StatusCode::GONE);

    post_email(&mut b, "/accounts/password/reset/", "kim@example.com").await;
    let sent = mails(&outbox, 4).await;
    let reset = link(
        sent[3]["text"].as_str().unwrap(),
        &server.url,
        "/accounts/reset/",
    );
    assert_eq!(b.get(&reset).await.status, StatusCode::OK);
    // Issued before a password change: invalid after it.
    let mut kim = server.browser();
    assert_eq!(
        kim.login("kim", GOOD, None).await.status,
        StatusCode::SEE_OTHER
    );
    // (Signing in alone already kills it.)
    assert_eq!(b.get(&reset).await.status, StatusCode::BAD_REQUEST);
    post_email(&mut b, "/accounts/password/reset/", "kim@example.com").await;
    let sent = mails(&outbox, 5).await;
    let reset = link(
        sent[4]["text"].as_str().unwrap(),
        &server.url,
        "/accounts/reset/",
    );
    assert_eq!(b.get(&reset).await.status, StatusCode::OK);
    let changed = change_password(&mut kim, GOOD, BETTER, BETTER).await;
    assert_eq!(changed.status, StatusCode::SEE_OTHER, "{}", changed.body);
    assert_eq!(b.get(&reset).await.status, StatusCode::BAD_REQUEST);
    // Another account's uid with this token is refused too.
    let (_, rest) = reset
        .trim_start_matches("/accounts/reset/")
        .split_once('/')
        .unwrap();
    assert_eq!(
        b.get(&format!("/accounts/reset/MQ/{rest}")).await.status,
        StatusCode::BAD_REQUEST
    );
    server.stop().await;
}

/// The SHA-1 line a Pwned Passwords file has for `password`.
fn pwned_line(password: &str) -> String {
    let digest = hash(Algorithm::Sha1, password.as_bytes());
    format!("{}:42\n", hex::encode_upper(digest))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_policy_rule_is_explained_on_the_form_for_unicode_passwords() {
    const COMMON: &str = "mot-de-passe-çava-très-bien";
    const BREACHED: &str = "Ünïcödé-léaked-pässwörd-2019";
    let mut server = TestServer::start_with(false, |c, dir| {
        std::fs::write(
            dir.join("common.txt"),
            format!("{}\n", COMMON.to_uppercase()),
        )
        .unwrap();
        std::fs::write(dir.join("pwned.txt"), pwned_line(BREACHED)).unwrap();
        c.password_policy.common_passwords_file = Some(dir.join("common.txt"));
        c.password_policy.breached_passwords_file = Some(dir.join("pwned.txt"));
        c.password_policy.min_words = 2;
    })
    .await;
    let mut b = server.browser();
    let form = b.get("/accounts/register/").await;
    for help in [
        "commonly used",
        "data breach",
        "2 different words",
        "entirely numeric",
    ] {
        assert!(form.body.contains(help), "help text {help:?}");
    }
    let cases: &[(&str, &str)] = &[
        ("日本語のパス", "at least 10 characters"),
        (&"密".repeat(342), "at most 1024 bytes"),
        ("١٢٣٤٥٦٧٨٩٠١٢٣", "entirely numeric"),
        ("émilie-dupont-", "too similar to the username"),
        (COMMON, "too common."),
        ("zqxjvkwpfhgtbnmlrc", "2 different words"),
        ("ééééééééééééé", "too easy to guess"),
        (BREACHED, "appeared in a data breach"),
    ];
    for (password, expect) in cases {
        let page = register(
            &mut b,
            "émilie-dupont",
            "emilie@example.com",
            password,
            password,
        )
        .await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(
            page.body.contains(expect),
            "{password:?} should be refused with {expect:?}: {}",
            page.body
        );
        // The error is on the password field.
        let at = page.body.find(expect).unwrap();
        let field = page.body.find("name=\"password1\"").unwrap();
        let confirm = page.body.find("name=\"password2\"").unwrap();
        assert!(field < at && at < confirm, "{expect} under password1");
    }
    assert!(user(&server, "émilie-dupont").await.is_none());
    // A Unicode passphrase that passes every rule is accepted.
    let ok = register(
        &mut b,
        "émilie-dupont",
        "emilie@example.com",
        "tulip château canopy lumière 2024",
        "tulip château canopy lumière 2024",
    )
    .await;
    assert!(ok.body.contains("Check your email"), "{}", ok.body);
    assert!(user(&server, "émilie-dupont").await.is_some());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_flows_are_rate_limited_per_address_and_per_ip() {
    let mut server = TestServer::start(|c| {
        c.accounts.flow_limits.per_address = 2;
        c.accounts.flow_limits.per_ip = 4;
    })
    .await;
    let mut b = server.browser();
    let reset = "/accounts/password/reset/";
    for _ in 0..2 {
        assert_eq!(
            post_email(&mut b, reset, "lee@example.com").await.status,
            StatusCode::OK
        );
    }
    let limited = post_email(&mut b, reset, "LEE@example.com").await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = limited.headers[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(wait > 0 && wait <= 3600);
    // Every request counts per IP (the refused one too): the fourth is allowed, the fifth not.
    assert_eq!(
        post_email(&mut b, reset, "max@example.com").await.status,
        StatusCode::OK
    );
    assert_eq!(
        post_email(&mut b, reset, "ned@example.com").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Registration has its own counters.
    let page = register(&mut b, "olga", "olga@example.com", GOOD, GOOD).await;
    assert_eq!(page.status, StatusCode::OK);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_through_a_real_smtp_server() {
    let smtp = SmtpServer::start("plain");
    let url = SmtpUrl::parse(&format!("smtp://127.0.0.1:{}?tls=none", smtp.port)).unwrap();
    let mut server = TestServer::start(|c| c.mail.smtp = Some(url)).await;
    let mut b = server.browser();
    let done = register(&mut b, "pia", "pia@example.com", GOOD, GOOD).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    let received = smtp.wait_for(1).await;
    let (eml, meta) = &received[0];
    assert_eq!(meta["rcpt_tos"], serde_json::json!(["pia@example.com"]));
    let parsed = parse_eml(std::slice::from_ref(eml));
    let path = link(
        parsed[0]["text"].as_str().unwrap(),
        &server.url,
        "/accounts/activate/",
    );
    assert!(!server.outbox().join("x").exists());
    assert_eq!(confirm(&mut b, &path).await.status, StatusCode::OK);
    assert_eq!(
        b.login("pia", GOOD, None).await.status,
        StatusCode::SEE_OTHER
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_account_form_needs_its_csrf_token_and_our_origin() {
    let mut server = TestServer::start(|_| {}).await;
    seed(&server, "quinn", "quinn@example.com", GOOD).await;
    let mut b = server.browser();
    let token = b.get("/accounts/register/").await.csrf_token();
    let routes = [
        "/accounts/register/",
        "/accounts/activate/resend/",
        "/accounts/password/reset/",
        "/accounts/activate/abc.def/",
        "/accounts/reset/MQ/abc.def/",
    ];
    let fields = [("email", "quinn@example.com"), ("username", "x")];
    for path in routes {
        let missing = b.post(path, &fields).await;
        assert_eq!(
            missing.status,
            StatusCode::FORBIDDEN,
            "{path} without a token"
        );
        let mut with_token = fields.to_vec();
        with_token.push(("csrf_token", "forged"));
        let forged = b.post(path, &with_token).await;
        assert_eq!(
            forged.status,
            StatusCode::FORBIDDEN,
            "{path} with a forged token"
        );
        b.origin = Some("https://evil.example".into());
        let mut good = fields.to_vec();
        good.push(("csrf_token", &token));
        let cross = b.post(path, &good).await;
        assert_eq!(
            cross.status,
            StatusCode::FORBIDDEN,
            "{path} from another origin"
        );
        b.origin = Some(server.url.clone());
    }
    // Signed in, the anonymous token no longer counts: the session's does.
    assert_eq!(
        b.login("quinn", GOOD, None).await.status,
        StatusCode::SEE_OTHER
    );
    let change = [
        ("old_password", GOOD),
        ("new_password1", BETTER),
        ("new_password2", BETTER),
        ("csrf_token", token.as_str()),
    ];
    let stale = b.post("/accounts/password/change/", &change).await;
    assert_eq!(stale.status, StatusCode::FORBIDDEN);
    assert_eq!(
        settled_count(&server.outbox()).await,
        0,
        "nothing was mailed"
    );
    server.stop().await;
}
