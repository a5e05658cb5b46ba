//! `palisade keys list|rotate|retire` and the master key, driving the real binary against a
//! fresh data directory: key states through rotation and retirement, the master key file's
//! mode, and what another deployment's master key gets (from the admin commands and from
//! `serve`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// A fresh data directory that does not exist yet.
struct Env {
    _tmp: tempfile::TempDir,
    data: PathBuf,
}

impl Env {
    fn new() -> Self {
        let tmp = tempdir();
        let data = tmp.path().join("data");
        Self { _tmp: tmp, data }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        // No PALISADE_* from the test's own environment (a stray master key above all).
        let mut cmd = clean_palisade();
        cmd.args(args).arg("--data-dir").arg(&self.data);
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        run_cmd(&mut self.cmd(args), b"")
    }

    fn run_with_master(&self, master: &str, args: &[&str]) -> Output {
        run_cmd(self.cmd(args).env("PALISADE_MASTER_KEY", master), b"")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_code(&out, 0);
        stdout(&out)
    }

    fn keys(&self) -> Vec<Value> {
        let text = self.ok(&["keys", "list", "--json"]);
        match serde_json::from_str(&text).expect("JSON output") {
            Value::Array(keys) => keys,
            other => panic!("not an array: {other}"),
        }
    }

    fn rotate(&self) -> String {
        let kid = self.ok(&["keys", "rotate"]).trim().to_owned();
        assert_eq!(kid.len(), 16, "{kid:?}");
        assert!(kid.chars().all(|c| c.is_ascii_hexdigit()), "{kid:?}");
        kid
    }

    fn master_file(&self) -> PathBuf {
        self.data.join("master.key")
    }
}

fn states(keys: &[Value]) -> Vec<(String, String)> {
    keys.iter()
        .map(|k| {
            (
                k["kid"].as_str().unwrap().to_owned(),
                k["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// A master key of another deployment.
fn other_master_key() -> String {
    let out = run(&["fernet", "keygen"], b"");
    assert_code(&out, 0);
    stdout(&out).trim().to_owned()
}

#[test]
fn list_on_a_fresh_database_prints_nothing() {
    let env = Env::new();
    assert_eq!(env.ok(&["keys", "list"]), "");
    assert!(env.keys().is_empty());
    // The master key exists from the first use of the data directory, private.
    assert_eq!(mode(&env.master_file()), 0o600);
}

#[test]
fn rotate_then_retire() {
    let env = Env::new();
    let first = env.rotate();
    assert_eq!(mode(&env.master_file()), 0o600);
    let keys = env.keys();
    assert_eq!(states(&keys), [(first.clone(), "current".to_owned())]);
    assert_eq!(keys[0]["purpose"], "account-tokens");
    assert_eq!(keys[0]["retired"], Value::Null);
    let created = keys[0]["created"].as_str().unwrap();
    assert!(
        created.len() == 20 && created.ends_with('Z') && created.as_bytes()[10] == b'T',
        "RFC 3339 UTC: {created}"
    );
    // Nothing but ids, times and states: no field holds key material.
    let mut fields: Vec<&str> = keys[0]
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    fields.sort_unstable();
    assert_eq!(fields, ["created", "kid", "purpose", "retired", "state"]);

    let second = env.rotate();
    assert_ne!(second, first);
    assert_eq!(
        states(&env.keys()),
        [
            (second.clone(), "current".to_owned()),
            (first.clone(), "previous".to_owned())
        ]
    );
    let table = env.ok(&["keys", "list"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(lines[0].starts_with("PURPOSE"), "{table}");
    assert!(
        lines[1].contains(&second) && lines[1].ends_with("current"),
        "{table}"
    );
    assert!(
        lines[2].contains(&first) && lines[2].ends_with("previous"),
        "{table}"
    );

    let out = env.run(&["keys", "retire", &first]);
    assert_code(&out, 0);
    assert!(stdout(&out).contains(&first));
    let keys = env.keys();
    assert_eq!(
        states(&keys),
        [
            (second.clone(), "current".to_owned()),
            (first.clone(), "retired".to_owned())
        ]
    );
    assert!(keys[1]["retired"].is_string());

    // Retiring it again, or the only active key: refused, one line, exit 2.
    let out = env.run(&["keys", "retire", &first]);
    assert_code(&out, 2);
    assert_one_clear_line(&out, Some(&first));
    let out = env.run(&["keys", "retire", &second]);
    assert_code(&out, 2);
    assert_one_clear_line(&out, Some("rotate first"));
    assert_eq!(states(&env.keys())[0], (second, "current".to_owned()));

    // Both changes are in the audit log.
    let audit = env.ok(&["audit", "tail", "--json"]);
    assert!(
        audit.contains("keys.rotate") && audit.contains("keys.retire"),
        "{audit}"
    );
}

#[test]
fn retire_of_an_unknown_kid_is_a_usage_error() {
    let env = Env::new();
    env.rotate();
    for kid in ["0123456789abcdef", "not-a-kid"] {
        let out = env.run(&["keys", "retire", kid]);
        assert_code(&out, 2);
        assert_one_clear_line(&out, Some(kid));
    }
    let out = env.run(&["keys", "retire"]);
    assert_code(&out, 2);
}

#[test]
fn another_master_key_is_refused_without_changing_anything() {
    let env = Env::new();
    let kid = env.rotate();
    let other = other_master_key();
    for args in [
        &["keys", "list"][..],
        &["keys", "list", "--json"],
        &["keys", "rotate"],
        &["keys", "retire", &kid],
    ] {
        let out = env.run_with_master(&other, args);
        assert_code(&out, 2);
        assert_one_clear_line(&out, Some("master key does not match the database"));
        assert!(!stderr(&out).contains(&other), "{args:?} echoed the key");
        assert!(stdout(&out).is_empty(), "{args:?}: {}", stdout(&out));
    }
    // The right key (the file) still sees exactly the one key, current.
    assert_eq!(states(&env.keys()), [(kid.clone(), "current".to_owned())]);

    // The same text as the file, given in the variable, is the same key.
    let text = std::fs::read_to_string(env.master_file()).unwrap();
    let out = env.run_with_master(text.trim(), &["keys", "list", "--json"]);
    assert_code(&out, 0);
    assert!(stdout(&out).contains(&kid));

    // Not a key at all: named, never echoed.
    let out = env.run_with_master("not-a-master-key", &["keys", "list"]);
    assert_code(&out, 2);
    assert_one_clear_line(&out, Some("PALISADE_MASTER_KEY"));
    assert!(!stderr(&out).contains("not-a-master-key"));
}

#[test]
fn a_broken_master_key_file_is_reported_and_kept() {
    let env = Env::new();
    env.rotate();
    std::fs::write(env.master_file(), "garbage\n").unwrap();
    let out = env.run(&["keys", "list"]);
    assert_code(&out, 2);
    assert_one_clear_line(&out, Some("master.key"));
    assert!(!stderr(&out).contains("garbage"));
    assert_eq!(
        std::fs::read_to_string(env.master_file()).unwrap(),
        "garbage\n"
    );
}

/// Runs `cmd` to completion (at most `limit`), killing it if it does not exit.
fn run_bounded(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "did not exit within {limit:?}; stdout: {} stderr: {}",
                stdout(&out),
                stderr(&out)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn serve_makes_the_first_key_and_refuses_another_master_key() {
    let env = Env::new();
    let mut server = start(&mut serve_cmd(&env.data));
    server.sigterm();
    assert_eq!(server.wait_exit(Duration::from_secs(30)), 0);
    drop(server);
    assert_eq!(mode(&env.master_file()), 0o600);
    let keys = env.keys();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert_eq!(keys[0]["state"], "current");

    // A node given another deployment's master key stops before listening.
    let other = other_master_key();
    let out = run_bounded(
        serve_cmd(&env.data).env("PALISADE_MASTER_KEY", &other),
        Duration::from_secs(60),
    );
    assert_ne!(code(&out), 0);
    assert!(!stdout(&out).contains("listening on"), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("master key does not match the database"),
        "{err}"
    );
    assert!(!err.contains(&other), "{err}");
    // And it minted nothing.
    assert_eq!(env.keys().len(), 1);
}
