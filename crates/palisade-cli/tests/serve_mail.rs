//! `palisade serve` and its mail transport: the outbox by default, `--smtp URL` /
//! `PALISADE_SMTP` otherwise, with the SMTP password never in any output. The real binary on
//! port 0 with a fresh data directory.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::time::{Duration, Instant};

use common::{
    Running, assert_code, assert_one_clear_line, mode, run_cmd, serve_cmd, start, stderr, stdout,
    tempdir,
};

/// Waits until the server's standard error contains `needle` (the log is read by a thread,
/// so it can trail the `listening on` line a little).
#[track_caller]
fn wait_for_log(server: &Running, needle: &str) -> String {
    let start = Instant::now();
    loop {
        let log = server.stderr();
        if log.contains(needle) {
            return log;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no {needle:?} in the log:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// SIGTERM, exit 0, and the whole log once the process is gone.
fn stop(mut server: Running) -> String {
    server.sigterm();
    assert_eq!(server.wait_exit(Duration::from_secs(40)), 0);
    // The reader thread drains the pipe to its end shortly after the exit.
    let log = wait_for_log(&server, "stopped");
    drop(server);
    log
}

#[test]
fn default_transport_is_a_private_outbox_in_the_data_dir() {
    let tmp = tempdir();
    let data = tmp.path().join("data");
    let server = start(&mut serve_cmd(&data));
    let outbox = data.join("outbox");
    // Created at start-up, before the address is announced, not at the first message.
    assert!(outbox.is_dir(), "{} missing", outbox.display());
    assert_eq!(mode(&outbox), 0o700);
    assert_eq!(std::fs::read_dir(&outbox).unwrap().count(), 0);
    let log = wait_for_log(&server, "mail transport ready");
    let line = log
        .lines()
        .find(|l| l.contains("mail transport ready"))
        .unwrap();
    assert!(
        line.contains(&format!("outbox {}", outbox.display())),
        "the log names the outbox: {line}"
    );
    assert!(
        log.contains("password policy ready"),
        "the policy is reported at start-up: {log}"
    );
    stop(server);
}

#[test]
fn smtp_flag_password_is_never_printed() {
    let tmp = tempdir();
    let data = tmp.path().join("data");
    let server = start(
        serve_cmd(&data)
            .args(["--smtp", "smtp://user:Zq7flagPw91@127.0.0.1:1"])
            // Every level a deployment might turn on for debugging.
            .env("PALISADE_LOG", "debug"),
    );
    let log = wait_for_log(&server, "mail transport ready");
    assert!(
        log.contains("smtp://user:***@127.0.0.1:1"),
        "the log names the SMTP server, redacted: {log}"
    );
    assert!(
        !data.join("outbox").exists(),
        "no outbox when mail goes to an SMTP server"
    );
    let log = stop(server);
    // A distinctive password: SQL in the debug log mentions `csrf_secret`.
    assert!(!log.contains("Zq7flagPw91"), "password in the log: {log}");
}

#[test]
fn smtp_url_with_secret_at_the_default_log_level() {
    let tmp = tempdir();
    let data = tmp.path().join("data");
    let server = start(serve_cmd(&data).args(["--smtp", "smtp://user:secret@127.0.0.1:1"]));
    let log = wait_for_log(&server, "mail transport ready");
    assert!(log.contains("smtp://user:***@127.0.0.1:1"), "{log}");
    let log = stop(server);
    assert!(!log.contains("secret"), "password in the log: {log}");
}

#[test]
fn smtp_password_from_the_environment_is_never_printed() {
    let tmp = tempdir();
    let data = tmp.path().join("data");
    let server = start(
        serve_cmd(&data)
            .env("PALISADE_SMTP", "smtps://mailer@127.0.0.1:1")
            .env("PALISADE_SMTP_PASSWORD", "env-pw-Kq82")
            .env("PALISADE_LOG", "debug"),
    );
    let log = wait_for_log(&server, "mail transport ready");
    assert!(
        log.contains("smtps://mailer:***@127.0.0.1:1"),
        "the password was taken (masked), the URL named: {log}"
    );
    let log = stop(server);
    assert!(!log.contains("env-pw-Kq82"), "password in the log: {log}");

    // The flag beats the environment; the environment's password still applies to it.
    let server = start(
        serve_cmd(&data)
            .args(["--smtp", "smtp://other@127.0.0.1:2"])
            .env("PALISADE_SMTP", "smtps://mailer@127.0.0.1:1")
            .env("PALISADE_SMTP_PASSWORD", "env-pw-Kq82"),
    );
    let log = wait_for_log(&server, "mail transport ready");
    assert!(log.contains("smtp://other:***@127.0.0.1:2"), "{log}");
    let log = stop(server);
    assert!(!log.contains("env-pw-Kq82"), "password in the log: {log}");
}

#[test]
fn bad_smtp_settings_are_one_clear_line_without_the_password() {
    let tmp = tempdir();
    let data = tmp.path().join("data");
    for (args, env, name) in [
        (
            vec!["--smtp", "http://user:hunter2@127.0.0.1:25"],
            vec![],
            "--smtp",
        ),
        (
            vec!["--smtp", "smtp://user:hunter2@127.0.0.1:25?tls=none"],
            vec![],
            "--smtp",
        ),
        (
            vec![],
            vec![("PALISADE_SMTP", "smtp://user:hunter2@mail.example.com:25/x")],
            "PALISADE_SMTP",
        ),
        // A password with no SMTP server to use it with.
        (
            vec![],
            vec![("PALISADE_SMTP_PASSWORD", "hunter2")],
            "PALISADE_SMTP_PASSWORD",
        ),
        // A password for a URL with no user name.
        (
            vec!["--smtp", "smtps://127.0.0.1"],
            vec![("PALISADE_SMTP_PASSWORD", "hunter2")],
            "PALISADE_SMTP_PASSWORD",
        ),
    ] {
        let mut cmd = serve_cmd(&data);
        cmd.args(&args).envs(env.iter().copied());
        let out = run_cmd(&mut cmd, b"");
        assert_code(&out, 2);
        assert_one_clear_line(&out, Some(name));
        assert!(
            !stderr(&out).contains("hunter2"),
            "{args:?} {env:?}: {}",
            stderr(&out)
        );
        assert_eq!(stdout(&out), "", "nothing announced");
    }
}

#[test]
fn smtp_and_sender_from_the_config_file() {
    let tmp = tempdir();
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(
        data.join("palisade.toml"),
        "smtp = \"smtps://cfg@127.0.0.1:1\"\n\
         mail_from = \"Example Accounts <accounts@example.com>\"\n",
    )
    .unwrap();
    let server = start(serve_cmd(&data).env("PALISADE_SMTP_PASSWORD", "cfg-pw-Zr41"));
    let log = wait_for_log(&server, "mail transport ready");
    let line = log
        .lines()
        .find(|l| l.contains("mail transport ready"))
        .unwrap();
    assert!(line.contains("smtps://cfg:***@127.0.0.1:1"), "{line}");
    assert!(line.contains("accounts@example.com"), "{line}");
    let log = stop(server);
    assert!(!log.contains("cfg-pw-Zr41"), "{log}");

    std::fs::write(
        data.join("palisade.toml"),
        "mail_from = \"not a mailbox\"\n",
    )
    .unwrap();
    let out = run_cmd(&mut serve_cmd(&data), b"");
    assert_code(&out, 2);
    assert_one_clear_line(&out, Some("mail_from"));
}
