//! `palisade migrate`, `user …`, `session …` and `audit …` against a fresh data directory,
//! driving the real binary. Rows are inspected and tampered with through the `sqlite3` tool,
//! the way an operator (or an attacker) with database access would.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;
use serde_json::Value;

/// A fresh data directory that does not exist yet (so first use must create it).
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

    fn run(&self, args: &[&str], stdin: &[u8]) -> Output {
        let mut cmd = palisade();
        cmd.args(args).arg("--data-dir").arg(&self.data);
        // The environment must not point the test at another database.
        cmd.env_remove("PALISADE_DATABASE_URL")
            .env_remove("PALISADE_SESSIONS_URL")
            .env_remove("PALISADE_DATA_DIR");
        run_cmd(&mut cmd, stdin)
    }

    fn ok(&self, args: &[&str], stdin: &[u8]) -> String {
        let out = self.run(args, stdin);
        assert_code(&out, 0);
        stdout(&out)
    }

    fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.ok(args, b"")).expect("JSON output")
    }

    fn db(&self) -> PathBuf {
        self.data.join("palisade.db")
    }

    fn sql(&self, sql: &str) -> String {
        sqlite(&self.db(), sql)
    }

    fn create(&self, name: &str, email: &str, password: &str, extra: &[&str]) -> Output {
        let mut args = vec!["user", "create", name, "--email", email, "--password-stdin"];
        args.extend_from_slice(extra);
        self.run(&args, format!("{password}\n").as_bytes())
    }
}

fn sqlite(db: &Path, sql: &str) -> String {
    let out = Command::new("sqlite3")
        .arg(db)
        .arg(sql)
        .output()
        .expect("the sqlite3 tool (apt-get install sqlite3)");
    assert!(out.status.success(), "sqlite3: {}", stderr(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

const GOOD: &str = "Tr0ub4dor&3-kayak-Quartz";
const GOOD2: &str = "correct horse battery staple 9";

fn find<'a>(list: &'a Value, name: &str) -> &'a Value {
    list.as_array()
        .expect("array")
        .iter()
        .find(|u| u["username"] == name)
        .unwrap_or_else(|| panic!("{name} not in {list}"))
}

/// Inserts a session row as the server would (only the key's hash is stored).
fn add_session(env: &Env, user_id: i64, byte: u8) -> String {
    let key = format!("{byte:02x}").repeat(32);
    env.sql(&format!(
        "INSERT INTO sessions (key_hash, user_id, created_at, last_seen, ip, user_agent, csrf_secret) \
         VALUES (X'{key}', {user_id}, 1700000000, 1700000100, '192.0.2.7', 'Mozilla/5.0 test', X'{}')",
        "00".repeat(32)
    ));
    key
}

#[test]
fn migrate_is_idempotent_and_makes_a_private_data_dir() {
    let env = Env::new();
    assert!(!env.data.exists());
    let out = env.ok(&["migrate"], b"");
    assert!(out.contains("migrations applied"), "{out}");
    assert_eq!(mode(&env.data), 0o700);
    assert!(env.db().exists());
    env.ok(&["migrate"], b"");
    assert_eq!(env.sql("SELECT count(*) FROM users"), "0");
}

#[test]
fn postgres_is_refused_clearly() {
    let env = Env::new();
    let out = env.run(
        &["migrate", "--database", "postgres://u:secretpw@db/x"],
        b"",
    );
    assert_code(&out, 2);
    assert_one_clear_line(&out, Some("PostgreSQL support is not built yet"));
    assert!(!stderr(&out).contains("secretpw"));
}

#[test]
fn user_lifecycle_with_audit_trail() {
    let env = Env::new();

    // Create: a superuser is staff too; the password comes from stdin (CRLF stripped).
    let out = env.run(
        &[
            "user",
            "create",
            "Alice",
            "--email",
            "alice@example.com",
            "--superuser",
            "--password-stdin",
        ],
        format!("{GOOD}\r\nignored second line\n").as_bytes(),
    );
    assert_code(&out, 0);
    assert_code(
        &env.create("bob", "bob@example.com", GOOD2, &["--staff"]),
        0,
    );
    assert_code(&env.create("carol", "carol@example.com", GOOD2, &[]), 0);

    let list = env.json(&["user", "list", "--json"]);
    assert_eq!(list.as_array().unwrap().len(), 3);
    let alice = find(&list, "Alice");
    assert_eq!(alice["email"], "alice@example.com");
    assert_eq!(alice["is_active"], true);
    assert_eq!(alice["is_superuser"], true);
    assert_eq!(alice["is_staff"], true, "superuser implies staff");
    assert_eq!(alice["password_algorithm"], "argon2");
    assert!(alice["id"].is_i64());
    assert!(alice["last_login"].is_null());
    assert!(
        alice["date_joined"].as_str().unwrap().ends_with('Z'),
        "{alice}"
    );
    let bob = find(&list, "bob");
    assert_eq!(
        (bob["is_staff"].as_bool(), bob["is_superuser"].as_bool()),
        (Some(true), Some(false))
    );
    let carol = find(&list, "carol");
    assert_eq!(
        (carol["is_staff"].as_bool(), carol["is_superuser"].as_bool()),
        (Some(false), Some(false))
    );

    // No hash anywhere in the output, in any form.
    let hash = env.sql("SELECT password_hash FROM users WHERE username = 'Alice'");
    assert!(
        hash.starts_with("argon2$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    let table = env.ok(&["user", "list"], b"");
    let show = env.ok(&["user", "show", "alice", "--json"], b"");
    let show_text = env.ok(&["user", "show", "ALICE"], b"");
    let salt_and_hash = hash.rsplit_once("p=1$").unwrap().1;
    for text in [&list.to_string(), &table, &show, &show_text] {
        assert!(!text.contains(salt_and_hash), "hash leaked: {text}");
        assert!(!text.contains(GOOD), "password leaked: {text}");
    }
    assert!(
        table.lines().next().unwrap().contains("USERNAME"),
        "{table}"
    );
    assert!(table.contains("alice@example.com"), "{table}");
    let shown: Value = serde_json::from_str(&show).unwrap();
    assert_eq!(shown["username"], "Alice");
    assert_eq!(shown["sessions"], 0);

    // Duplicates are case- and NFKC-insensitive.
    for dup in ["alice", "ALICE", "ＡＬＩＣＥ"] {
        let out = env.create(dup, "x@example.com", GOOD, &[]);
        assert_code(&out, 2);
        assert_one_clear_line(&out, Some("username already taken"));
    }

    // The policy: every reason on one line, nothing created.
    let out = env.create("dave", "dave@example.com", "password", &[]);
    assert_code(&out, 2);
    assert_one_clear_line(&out, Some("too common"));
    assert!(!stderr(&out).contains("at least 8"));
    let out = env.create("dave", "dave@example.com", "1234", &[]);
    assert_code(&out, 2);
    assert_one_clear_line(&out, Some("too short"));
    assert!(
        stderr(&out).contains("entirely numeric"),
        "{}",
        stderr(&out)
    );
    let out = env.create("dave", "dave@example.com", "Dave@Example.com!", &[]);
    assert_code(&out, 2);
    assert_one_clear_line(&out, Some("too similar"));
    // No TTY and no --password-stdin: a clear refusal instead of a hang.
    let out = env.run(&["user", "create", "dave", "--email", "d@example.com"], b"");
    assert_code(&out, 2);
    assert_one_clear_line(&out, Some("--password-stdin"));
    // Bad username / e-mail.
    let out = env.create("a b", "d@example.com", GOOD, &[]);
    assert_code(&out, 2);
    assert_one_clear_line(&out, None);
    let out = env.create("dave", "not-an-address", GOOD, &[]);
    assert_code(&out, 2);
    assert_one_clear_line(&out, Some("not-an-address"));
    assert_eq!(env.sql("SELECT count(*) FROM users"), "3");

    // set-password: new hash, sessions ended; weak passwords refused.
    let alice_id: i64 = env
        .sql("SELECT id FROM users WHERE username='Alice'")
        .parse()
        .unwrap();
    let bob_id: i64 = env
        .sql("SELECT id FROM users WHERE username='bob'")
        .parse()
        .unwrap();
    add_session(&env, alice_id, 0xa1);
    add_session(&env, alice_id, 0xa2);
    let bob_key = add_session(&env, bob_id, 0xb1);
    assert_eq!(
        env.json(&["user", "show", "Alice", "--json"])["sessions"],
        2
    );
    let out = env.run(
        &["user", "set-password", "alice", "--password-stdin"],
        b"qwerty\n",
    );
    assert_code(&out, 2);
    assert_one_clear_line(&out, Some("password refused"));
    assert_eq!(
        env.sql("SELECT password_hash FROM users WHERE username='Alice'"),
        hash
    );
    env.ok(
        &["user", "set-password", "alice", "--password-stdin"],
        format!("{GOOD2}\n").as_bytes(),
    );
    let new_hash = env.sql("SELECT password_hash FROM users WHERE username='Alice'");
    assert_ne!(new_hash, hash);
    assert!(new_hash.starts_with("argon2$argon2id$"));
    assert_eq!(
        env.json(&["user", "show", "Alice", "--json"])["sessions"],
        0
    );
    assert_eq!(
        env.sql("SELECT count(*) FROM sessions"),
        "1",
        "bob's session stays"
    );

    // deactivate ends sessions; activate restores.
    env.ok(&["user", "deactivate", "bob"], b"");
    let bob = env.json(&["user", "show", "bob", "--json"]);
    assert_eq!(bob["is_active"], false);
    assert_eq!(bob["sessions"], 0);
    assert_eq!(
        env.sql(&format!(
            "SELECT count(*) FROM sessions WHERE hex(key_hash)='{}'",
            bob_key.to_uppercase()
        )),
        "0"
    );
    env.ok(&["user", "activate", "bob"], b"");
    assert_eq!(
        env.json(&["user", "show", "bob", "--json"])["is_active"],
        true
    );

    // Unknown users.
    for args in [
        &["user", "show", "nobody"][..],
        &["user", "deactivate", "nobody"],
        &["user", "activate", "nobody"],
        &["user", "set-password", "nobody", "--password-stdin"],
    ] {
        let out = env.run(args, format!("{GOOD}\n").as_bytes());
        assert_code(&out, 2);
        assert_one_clear_line(&out, Some("no user named nobody"));
    }

    // The audit log has every change, in order, and verifies.
    let tail = env.json(&["audit", "tail", "--json"]);
    let actions: Vec<&str> = tail
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "user.create",
            "user.create",
            "user.create",
            "user.set_password",
            "user.deactivate",
            "user.activate"
        ]
    );
    let first = &tail[0];
    assert_eq!(first["seq"], 1);
    assert_eq!(first["actor"], "cli");
    assert_eq!(first["target"], "Alice");
    assert_eq!(first["detail"]["superuser"], true);
    assert_eq!(first["detail"]["staff"], true);
    assert_eq!(tail[3]["detail"]["sessions_ended"], 2);
    let short = env.json(&["audit", "tail", "-n", "2", "--json"]);
    assert_eq!(short.as_array().unwrap().len(), 2);
    assert_eq!(short[1]["action"], "user.activate");
    let text = env.ok(&["audit", "tail"], b"");
    assert_eq!(text.lines().count(), 6);
    assert!(
        text.lines().next().unwrap().contains("user.create"),
        "{text}"
    );
    let out = env.ok(&["audit", "verify"], b"");
    assert_eq!(out.trim(), "OK: 6 records");

    // Tampering with one record is found and named.
    env.sql("UPDATE audit_log SET target = 'mallory' WHERE seq = 4");
    let out = env.run(&["audit", "verify"], b"");
    assert_code(&out, 1);
    assert!(stdout(&out).starts_with("FAILED"), "{}", stdout(&out));
    assert_one_clear_line(&out, Some("record 4"));
    assert!(stderr(&out).contains("edited"), "{}", stderr(&out));
}

#[test]
fn deleting_an_audit_record_is_a_gap() {
    let env = Env::new();
    for name in ["u1", "u2", "u3"] {
        assert_code(
            &env.create(name, &format!("{name}@example.com"), GOOD, &[]),
            0,
        );
    }
    env.ok(&["audit", "verify"], b"");
    env.sql("DELETE FROM audit_log WHERE seq = 2");
    let out = env.run(&["audit", "verify"], b"");
    assert_code(&out, 1);
    assert_one_clear_line(&out, Some("record 3"));
    assert!(
        stderr(&out).contains("expected record 2"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn sessions_list_and_revoke() {
    let env = Env::new();
    assert_code(&env.create("alice", "alice@example.com", GOOD, &[]), 0);
    assert_code(&env.create("bob", "bob@example.com", GOOD, &[]), 0);
    let a1 = add_session(&env, 1, 0x11);
    let a2 = add_session(&env, 1, 0x12);
    let b1 = add_session(&env, 2, 0x21);

    let all = env.json(&["session", "list", "--json"]);
    assert_eq!(all.as_array().unwrap().len(), 3);
    let row = all
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == b1.as_str())
        .expect("bob's session listed");
    assert_eq!(row["user"], "bob");
    assert_eq!(row["ip"], "192.0.2.7");
    assert_eq!(row["user_agent"], "Mozilla/5.0 test");
    assert_eq!(row["created"], "2023-11-14T22:13:20Z");
    assert_eq!(row["last_seen"], "2023-11-14T22:15:00Z");
    let mine = env.json(&["session", "list", "ALICE", "--json"]);
    assert_eq!(mine.as_array().unwrap().len(), 2);
    let table = env.ok(&["session", "list"], b"");
    assert!(
        table.contains(&a1) && table.contains("SESSION_ID"),
        "{table}"
    );

    env.ok(&["session", "revoke", &a1], b"");
    let out = env.run(&["session", "revoke", &a1], b"");
    assert_code(&out, 2);
    assert_one_clear_line(&out, Some("no session"));
    let out = env.run(&["session", "revoke", "zz"], b"");
    assert_code(&out, 2);
    assert_code(&env.run(&["session", "revoke"], b""), 2);
    assert_eq!(
        env.json(&["session", "list", "alice", "--json"])[0]["id"],
        a2.as_str()
    );

    env.ok(&["session", "revoke", "--user", "alice"], b"");
    assert_eq!(
        env.json(&["session", "list", "alice", "--json"]),
        Value::Array(vec![])
    );
    assert_eq!(
        env.json(&["session", "list", "--json"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let out = env.run(&["session", "list", "nobody"], b"");
    assert_code(&out, 2);
    assert_one_clear_line(&out, Some("no user named nobody"));

    let tail = env.json(&["audit", "tail", "--json"]);
    let revokes: Vec<&Value> = tail
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"] == "session.revoke")
        .collect();
    assert_eq!(revokes.len(), 2);
    assert_eq!(revokes[0]["target"], "alice");
    assert_eq!(revokes[1]["detail"]["sessions"], 1);
    assert_eq!(env.ok(&["audit", "verify"], b"").trim(), "OK: 4 records");
}
