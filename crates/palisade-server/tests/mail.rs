//! The mail transport end to end: the outbox read back by Python's `email` package, and SMTP
//! against a real server (aiosmtpd from the test venv, see scripts/test-setup.sh) in plain,
//! STARTTLS and implicit-TLS modes, the TLS ones with the project's own development PKI;
//! then retries, a full queue and shutdown.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{
    SMTP_PASSWORD as PASSWORD, SMTP_USER as USER, SmtpServer, files_with_suffix, parse_eml,
    wait_for_files,
};

use palisade_server::mail::{
    FailureHook, FailureReason, MailConfig, MailError, MailFailure, Mailer, OutgoingMail,
    RetryPolicy, SmtpUrl,
};
use serde_json::Value;
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

/// `PASSWORD` percent-encoded for the URL's userinfo.
const PASSWORD_IN_URL: &str = "s3cret%20pass%40%3A%2F";

/// Shows the mailer's log (and lettre's) in a failing test's output.
fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("palisade_server=debug,lettre=debug")
        .try_init();
}

/// Collects every failure report the mailer makes.
fn collector() -> (FailureHook, UnboundedReceiver<MailFailure>) {
    init_logs();
    let (tx, rx) = unbounded_channel();
    let hook: FailureHook = Arc::new(move |failure| {
        let _ = tx.send(failure);
    });
    (hook, rx)
}

fn message(n: usize) -> OutgoingMail {
    OutgoingMail {
        to: format!("user{n}@example.com"),
        subject: format!("Message {n}"),
        text_body: format!("Hello {n},\nopen https://localhost:8443/activate/TOKEN{n}\n"),
        html_body: None,
    }
}

fn fast_retry(attempts: u32) -> RetryPolicy {
    RetryPolicy {
        attempts,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
    }
}

async fn next_failure(rx: &mut UnboundedReceiver<MailFailure>) -> MailFailure {
    tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .expect("no failure reported in time")
        .expect("hook dropped")
}

fn assert_well_formed(parsed: &Value) {
    assert_eq!(parsed["from"], "Palisade <palisade@localhost>", "{parsed}");
    assert_eq!(parsed["date_ok"], true, "{parsed}");
    assert_eq!(parsed["auto_submitted"], "auto-generated", "{parsed}");
    assert!(
        parsed["message_id"]
            .as_str()
            .unwrap()
            .ends_with("@localhost>"),
        "{parsed}"
    );
    assert_eq!(parsed["defects"], serde_json::json!([]), "{parsed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_messages_are_private_complete_rfc5322_files() {
    let data = tempfile::tempdir().unwrap();
    let (hook, mut failures) = collector();
    let mailer = Mailer::start(MailConfig::outbox(data.path()), hook).unwrap();
    let outbox = data.path().join("outbox");
    assert_eq!(
        std::fs::metadata(&outbox).unwrap().permissions().mode() & 0o777,
        0o700
    );

    let mut ids = Vec::new();
    ids.push(mailer.send(message(1)).unwrap());
    let mut html = message(2);
    html.html_body = Some("<p>Hello 2, <a href=\"https://localhost/x\">open</a></p>".into());
    ids.push(mailer.send(html).unwrap());
    let mut utf8 = message(3);
    utf8.subject = "Réinitialisez votre mot de passe — ✓".into();
    utf8.text_body = "Bonjour, ça marche.\n".into();
    ids.push(mailer.send(utf8).unwrap());

    let files = wait_for_files(&outbox, ".eml", 3).await;
    mailer.shutdown(Duration::from_secs(5)).await;
    assert_eq!(files.len(), 3, "{files:?}");
    for f in &files {
        assert_eq!(
            std::fs::metadata(f).unwrap().permissions().mode() & 0o777,
            0o600,
            "{}",
            f.display()
        );
    }
    // Only finished messages: no temporary file is left behind.
    let all: Vec<_> = std::fs::read_dir(&outbox).unwrap().collect();
    assert_eq!(all.len(), 3);

    let mut parsed = parse_eml(&files);
    // Delivery is concurrent, so file order is not send order: match by Message-ID.
    parsed.sort_by_key(|p| {
        ids.iter()
            .position(|id| p["message_id"] == id.as_str())
            .expect("unknown Message-ID")
    });
    for p in &parsed {
        assert_well_formed(p);
    }
    assert_eq!(parsed[0]["to"], "user1@example.com");
    assert_eq!(parsed[0]["subject"], "Message 1");
    assert_eq!(parsed[0]["content_type"], "text/plain");
    assert_eq!(
        parsed[0]["text"],
        "Hello 1,\nopen https://localhost:8443/activate/TOKEN1\n"
    );
    assert_eq!(parsed[1]["content_type"], "multipart/alternative");
    assert_eq!(
        parsed[1]["html"],
        "<p>Hello 2, <a href=\"https://localhost/x\">open</a></p>"
    );
    assert!(parsed[1]["text"].as_str().unwrap().contains("TOKEN2"));
    assert_eq!(parsed[2]["subject"], "Réinitialisez votre mot de passe — ✓");
    assert_eq!(parsed[2]["text"], "Bonjour, ça marche.\n");

    assert!(failures.try_recv().is_err(), "no failure expected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_flushes_the_queue_and_later_sends_are_refused() {
    let data = tempfile::tempdir().unwrap();
    let (hook, mut failures) = collector();
    let mailer = Mailer::start(MailConfig::outbox(data.path()), hook).unwrap();
    for n in 0..20 {
        mailer.send(message(n)).unwrap();
    }
    mailer.shutdown(Duration::from_secs(10)).await;
    assert_eq!(
        files_with_suffix(&data.path().join("outbox"), ".eml").len(),
        20
    );
    assert!(failures.try_recv().is_err());

    assert_eq!(mailer.send(message(99)), Err(MailError::ShutDown));
    let failure = failures.try_recv().unwrap();
    assert_eq!(failure.reason, FailureReason::Shutdown);
    assert_eq!(failure.to, "user99@example.com");
    // A second shutdown returns at once.
    tokio::time::timeout(
        Duration::from_secs(1),
        mailer.shutdown(Duration::from_secs(10)),
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_injection_is_refused_before_queueing() {
    let data = tempfile::tempdir().unwrap();
    let (hook, _failures) = collector();
    let mailer = Mailer::start(MailConfig::outbox(data.path()), hook).unwrap();
    let mut m = message(1);
    m.subject = "Hi\r\nBcc: eve@example.com".into();
    assert_eq!(mailer.send(m), Err(MailError::HeaderInjection));
    let mut m = message(1);
    m.to = "a@example.com\r\nBcc: eve@example.com".into();
    assert_eq!(mailer.send(m), Err(MailError::HeaderInjection));
    let mut m = message(1);
    m.to = "not an address".into();
    assert_eq!(mailer.send(m), Err(MailError::InvalidRecipient));
    mailer.shutdown(Duration::from_secs(5)).await;
    assert!(files_with_suffix(&data.path().join("outbox"), ".eml").is_empty());
}

/// A port nothing listens on: connections are refused at once.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_delivery_is_retried_then_reported_without_blocking_the_sender() {
    let url = SmtpUrl::parse(&format!("smtp://127.0.0.1:{}?tls=none", closed_port())).unwrap();
    let mut config = MailConfig::smtp(url);
    config.retry = RetryPolicy {
        attempts: 3,
        initial_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_secs(1),
    };
    let (hook, mut failures) = collector();
    let mailer = Mailer::start(config, hook).unwrap();

    let start = Instant::now();
    let id = mailer.send(message(1)).unwrap();
    let send_took = start.elapsed();
    // Queued, not delivered: nothing has failed yet when `send` returns.
    assert!(failures.try_recv().is_err());
    assert!(send_took < Duration::from_millis(250), "{send_took:?}");

    let failure = next_failure(&mut failures).await;
    // Waits of 100 ms and 200 ms between the three attempts.
    assert!(
        start.elapsed() >= Duration::from_millis(300),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(failure.message_id, id);
    assert_eq!(failure.to, "user1@example.com");
    assert_eq!(failure.subject, "Message 1");
    assert_eq!(failure.reason, FailureReason::GaveUp);
    assert_eq!(failure.attempts, 3);
    assert!(!failure.error.is_empty());
    assert!(!failure.error.contains("TOKEN"), "{}", failure.error);
    mailer.shutdown(Duration::from_secs(1)).await;
    assert!(failures.try_recv().is_err(), "reported once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_drops_and_shutdown_reports_what_is_left() {
    let url = SmtpUrl::parse(&format!("smtp://127.0.0.1:{}?tls=none", closed_port())).unwrap();
    let mut config = MailConfig::smtp(url);
    config.queue_capacity = 1;
    config.concurrency = 1;
    // Long waits: the first message stays in flight, the second in the queue.
    config.retry = RetryPolicy {
        attempts: 5,
        initial_backoff: Duration::from_secs(30),
        max_backoff: Duration::from_secs(30),
    };
    let (hook, mut failures) = collector();
    let mailer = Mailer::start(config, hook).unwrap();

    mailer.send(message(1)).unwrap();
    // Give the task time to take the first message off the queue (its first attempt is
    // refused at once, then it waits 30 s), so the second one fills the queue.
    tokio::time::sleep(Duration::from_millis(300)).await;
    mailer.send(message(2)).unwrap();
    assert_eq!(mailer.send(message(3)), Err(MailError::QueueFull));
    let f = failures.try_recv().expect("queue-full report");
    assert_eq!(f.reason, FailureReason::QueueFull);
    assert_eq!(f.attempts, 0);
    assert_eq!(f.to, "user3@example.com");

    let start = Instant::now();
    mailer.shutdown(Duration::from_millis(300)).await;
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    let mut left = Vec::new();
    while let Ok(f) = failures.try_recv() {
        assert_eq!(f.reason, FailureReason::Shutdown);
        left.push(f);
    }
    left.sort_by(|a, b| a.to.cmp(&b.to));
    assert_eq!(left.len(), 2, "{left:?}");
    // The first was in flight (one attempt made), the second still queued.
    assert_eq!(left[0].to, "user1@example.com");
    assert_eq!(left[0].attempts, 1);
    assert_eq!(left[1].to, "user2@example.com");
    assert_eq!(left[1].attempts, 0);
}

// ----------------------------------------------------------------------------------------
// A real SMTP server
// ----------------------------------------------------------------------------------------

async fn send_and_check(server: &SmtpServer, url: SmtpUrl, tls: bool, login: Option<&str>) {
    let mut config = MailConfig::smtp(url);
    config.retry = fast_retry(2);
    config.from = "Palisade <palisade@localhost>".parse().unwrap();
    let (hook, mut failures) = collector();
    let mailer = Mailer::start(config, hook).unwrap();
    let shown = format!("{mailer:?}");
    assert!(!shown.contains("s3cret"), "{shown}");

    // One plain text message and one with an HTML alternative.
    let mut ids = Vec::new();
    ids.push(mailer.send(message(1)).unwrap());
    let mut m = message(2);
    m.html_body = Some("<p>Hello 2</p>".into());
    ids.push(mailer.send(m).unwrap());
    let received = server.wait_for(2).await;
    mailer.shutdown(Duration::from_secs(5)).await;
    if let Ok(f) = failures.try_recv() {
        panic!("unexpected failure: {f:?}");
    }

    let files: Vec<PathBuf> = received.iter().map(|(eml, _)| eml.clone()).collect();
    let parsed = parse_eml(&files);
    let mut seen = Vec::new();
    for ((_, meta), p) in received.iter().zip(&parsed) {
        assert_eq!(meta["mail_from"], "palisade@localhost", "{meta}");
        assert_eq!(meta["rcpt_tos"].as_array().unwrap().len(), 1, "{meta}");
        assert_eq!(meta["rcpt_tos"][0], p["to"], "{meta} {p}");
        assert_eq!(meta["tls"], tls, "{meta}");
        assert_eq!(meta["authenticated"], login.is_some(), "{meta}");
        assert_eq!(meta["login"].as_str(), login, "{meta}");
        assert_well_formed(p);
        let n = 1 + ids
            .iter()
            .position(|id| p["message_id"] == id.as_str())
            .expect("unknown Message-ID");
        assert_eq!(p["to"], format!("user{n}@example.com"));
        assert_eq!(p["subject"], format!("Message {n}"));
        // Exactly the text sent: no line lost or added on the way (dot-stuffing, CRLF).
        assert_eq!(
            p["text"],
            format!("Hello {n},\nopen https://localhost:8443/activate/TOKEN{n}\n")
        );
        if n == 1 {
            assert_eq!(p["content_type"], "text/plain");
        } else {
            assert_eq!(p["content_type"], "multipart/alternative");
            assert_eq!(p["html"], "<p>Hello 2</p>");
        }
        seen.push(n);
    }
    seen.sort_unstable();
    assert_eq!(seen, [1, 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_plain_to_a_local_server() {
    let server = SmtpServer::start("plain");
    let url = format!("smtp://127.0.0.1:{}?tls=none", server.port);
    send_and_check(&server, SmtpUrl::parse(&url).unwrap(), false, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_starttls_with_login() {
    let server = SmtpServer::start("starttls");
    let url = format!(
        "smtp://{USER}:{PASSWORD_IN_URL}@127.0.0.1:{}?ca_file={}",
        server.port,
        server.pki.display()
    );
    send_and_check(&server, SmtpUrl::parse(&url).unwrap(), true, Some(USER)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtps_implicit_tls_with_login() {
    let server = SmtpServer::start("implicit");
    let url = format!(
        "smtps://{USER}:{PASSWORD_IN_URL}@127.0.0.1:{}?ca_file={}",
        server.port,
        server.pki.display()
    );
    send_and_check(&server, SmtpUrl::parse(&url).unwrap(), true, Some(USER)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtps_without_the_password_in_the_url() {
    let server = SmtpServer::start("implicit");
    let url = SmtpUrl::parse(&format!(
        "smtps://{USER}@127.0.0.1:{}?ca_file={}",
        server.port,
        server.pki.display()
    ))
    .unwrap()
    .with_password(PASSWORD.to_owned())
    .unwrap();
    send_and_check(&server, url, true, Some(USER)).await;
}

/// Sends one message through `url` and returns the failure report.
async fn expect_failure(url: &str, attempts: u32) -> MailFailure {
    let mut config = MailConfig::smtp(SmtpUrl::parse(url).unwrap());
    config.retry = fast_retry(attempts);
    let (hook, mut failures) = collector();
    let mailer = Mailer::start(config, hook).unwrap();
    mailer.send(message(1)).unwrap();
    let failure = next_failure(&mut failures).await;
    mailer.shutdown(Duration::from_secs(1)).await;
    assert!(!failure.error.contains("s3cret"), "{}", failure.error);
    failure
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_is_required_unless_tls_none_is_asked_for() {
    // The server does not offer STARTTLS: nothing may be sent in the clear, not even the
    // credentials.
    let server = SmtpServer::start("plain");
    let failure = expect_failure(
        &format!("smtp://{USER}:{PASSWORD_IN_URL}@127.0.0.1:{}", server.port),
        2,
    )
    .await;
    assert_eq!(failure.attempts, 2);
    assert_eq!(failure.reason, FailureReason::GaveUp);
    assert!(
        failure.error.to_lowercase().contains("starttls"),
        "{}",
        failure.error
    );
    assert_eq!(server.received_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_is_refused() {
    // The system roots do not include the development CA.
    let server = SmtpServer::start("implicit");
    let failure = expect_failure(&format!("smtps://127.0.0.1:{}", server.port), 2).await;
    assert_eq!(failure.reason, FailureReason::GaveUp);
    assert!(
        failure.error.to_lowercase().contains("certificate")
            || failure.error.to_lowercase().contains("issuer"),
        "{}",
        failure.error
    );
    assert_eq!(server.received_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_login_is_not_retried() {
    let server = SmtpServer::start("starttls");
    let failure = expect_failure(
        &format!(
            "smtp://{USER}:wrong@127.0.0.1:{}?ca_file={}",
            server.port,
            server.pki.display()
        ),
        5,
    )
    .await;
    assert_eq!(failure.reason, FailureReason::Rejected, "{failure:?}");
    assert_eq!(failure.attempts, 1);
    assert_eq!(server.received_count(), 0);
}
