//! The mailer and the password policy as the running server holds them: built from the
//! configuration at start-up, reachable through `AppState`, and shut down in order (mail
//! delivered or audited before the database closes). The real server, in process, on port 0
//! with a fresh data directory, as in `accounts_http.rs`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{TestServer, config_in};

use palisade_core::AuditLog;
use palisade_core::password_policy::PolicyViolation;
use palisade_server::Server;
use palisade_server::config::MailSettings;
use palisade_server::mail::{OutgoingMail, SmtpUrl};
use palisade_store::SqliteStore;

fn mail(to: &str) -> OutgoingMail {
    OutgoingMail {
        to: to.to_owned(),
        subject: "Activate your account".to_owned(),
        text_body: "Open https://example.com/accounts/activate/TOKEN/ to activate.".to_owned(),
        html_body: None,
    }
}

fn eml_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_state_mailer_writes_an_eml_into_the_outbox_of_a_running_server() {
    let mut server = TestServer::start_with(true, |_, _| {}).await;
    let outbox = server.data_dir.join("outbox");
    // The mailer started with the server: the outbox exists, private, before any mail.
    let mode = std::fs::metadata(&outbox).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    assert!(eml_files(&outbox).is_empty());

    // The server answers while the mail is queued: send never waits for delivery.
    let health = reqwest::get(format!("{}/healthz", server.url))
        .await
        .unwrap();
    assert_eq!(health.status(), reqwest::StatusCode::OK);

    let message_id = server
        .state
        .mailer()
        .send(mail("new.user@example.com"))
        .unwrap();
    let start = Instant::now();
    let files = loop {
        let files = eml_files(&outbox);
        if !files.is_empty() {
            break files;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no .eml in {}",
            outbox.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(files.len(), 1);
    let text = std::fs::read_to_string(&files[0]).unwrap();
    assert!(text.contains("To: new.user@example.com"), "{text}");
    assert!(
        text.contains("From: Palisade <palisade@localhost>"),
        "{text}"
    );
    assert!(text.contains("Subject: Activate your account"), "{text}");
    assert!(
        text.contains(&format!("Message-ID: {message_id}")),
        "{text}"
    );
    let file_mode = std::fs::metadata(&files[0]).unwrap().permissions().mode() & 0o777;
    assert_eq!(file_mode, 0o600);

    server.stop().await;
    // Delivered, so nothing was reported as undelivered.
    let store = SqliteStore::open(&server.db).await.unwrap();
    let tail = store.tail(100).await.unwrap();
    assert!(
        tail.iter().all(|r| r.event.action != "mail.failed"),
        "{tail:?}"
    );
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_sender_is_used() {
    let mut server = TestServer::start_with(true, |c, _| {
        c.mail = MailSettings {
            smtp: None,
            from: "Example Accounts <accounts@example.com>".parse().unwrap(),
        };
    })
    .await;
    server.state.mailer().send(mail("a@example.com")).unwrap();
    let outbox = server.data_dir.join("outbox");
    let start = Instant::now();
    while eml_files(&outbox).is_empty() {
        assert!(start.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let text = std::fs::read_to_string(&eml_files(&outbox)[0]).unwrap();
    assert!(
        text.contains("From: \"Example Accounts\" <accounts@example.com>"),
        "{text}"
    );
    server.stop().await;
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undelivered_mail_is_audited_before_the_database_closes() {
    let port = closed_port();
    let mut server = TestServer::start_with(true, |c, _| {
        c.mail.smtp = Some(SmtpUrl::parse(&format!("smtp://127.0.0.1:{port}?tls=none")).unwrap());
        // The shutdown grace (HTTP drain, then mail) is the request timeout: keep it short so
        // the message, still between retries, is reported as not delivered.
        c.limits.request_timeout = Duration::from_secs(1);
    })
    .await;
    let message_id = server
        .state
        .mailer()
        .send(mail("lost@example.com"))
        .unwrap();
    server.stop().await;

    // The server has closed its database; the record must already be in it.
    let store = SqliteStore::open(&server.db).await.unwrap();
    let tail = store.tail(100).await.unwrap();
    let failed: Vec<_> = tail
        .iter()
        .filter(|r| r.event.action == "mail.failed")
        .collect();
    assert_eq!(failed.len(), 1, "{tail:?}");
    let event = &failed[0].event;
    assert_eq!(event.target.as_deref(), Some("lost@example.com"));
    assert_eq!(event.actor.as_deref(), Some("system"));
    assert_eq!(event.detail["message_id"], message_id.as_str());
    let reason = event.detail["reason"].as_str().unwrap();
    assert!(
        ["shutdown", "gave_up"].contains(&reason),
        "reason {reason}: {event:?}"
    );
    assert_eq!(event.detail["subject"], "Activate your account");
    assert!(event.detail.get("text_body").is_none());
    assert!(
        !event.detail.to_string().contains("TOKEN"),
        "no body in the audit log: {event:?}"
    );
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_state_holds_the_configured_password_policy() {
    let mut server = TestServer::start_with(true, |c, dir| {
        let common = dir.join("common.txt");
        std::fs::write(&common, "Zebra-Quantum-88!x\n").unwrap();
        c.password_policy.min_length = 16;
        c.password_policy.common_passwords_file = Some(common);
    })
    .await;
    let policy = server.state.password_policy();
    assert_eq!(policy.min_length, 16);
    assert_eq!(
        policy.check("Vx9#qLm2$Tz7", &["alice"]),
        Err(vec![PolicyViolation::TooShort { min: 16 }])
    );
    assert_eq!(
        policy.check("zebra-quantum-88!X", &["alice"]),
        Err(vec![PolicyViolation::Common])
    );
    assert_eq!(policy.check("Vx9#qLm2$Tz7!bK4", &["alice"]), Ok(()));
    server.stop().await;
}

#[test]
fn a_missing_policy_list_is_a_startup_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config_in(dir.path(), true);
    let missing = dir.path().join("no-such-list.txt");
    config.password_policy.common_passwords_file = Some(missing.clone());
    let err = Server::bind(config).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "{}: cannot read the common-password list: No such file or directory",
            missing.display()
        )
    );
}
