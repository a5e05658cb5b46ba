//! `user create` and `user set-password` apply the password policy as configured in
//! `palisade.toml` and `PALISADE_*` (the same settings `serve` uses), driving the real
//! binary against a fresh data directory.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};

use common::*;
use palisade_crypto::hash::{Algorithm, hash};

/// A data directory holding a `palisade.toml`.
struct Env {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    data: PathBuf,
}

impl Env {
    fn new(toml: &str) -> Self {
        let tmp = tempdir();
        let dir = tmp.path().to_owned();
        let data = dir.join("data");
        std::fs::create_dir(&data).unwrap();
        std::fs::write(data.join("palisade.toml"), toml).unwrap();
        Self {
            _tmp: tmp,
            dir,
            data,
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = clean_palisade();
        cmd.args(args).arg("--data-dir").arg(&self.data);
        cmd
    }

    fn run(&self, args: &[&str], stdin: &[u8]) -> Output {
        run_cmd(&mut self.cmd(args), stdin)
    }

    fn create(&self, name: &str, password: &str) -> Output {
        self.run(
            &[
                "user",
                "create",
                name,
                "--email",
                &format!("{name}@example.com"),
                "--password-stdin",
            ],
            format!("{password}\n").as_bytes(),
        )
    }

    fn set_password(&self, name: &str, password: &str) -> Output {
        self.run(
            &["user", "set-password", name, "--password-stdin"],
            format!("{password}\n").as_bytes(),
        )
    }

    fn hash_of(&self, name: &str) -> String {
        let out = Command::new("sqlite3")
            .arg(self.data.join("palisade.db"))
            .arg(format!(
                "SELECT password_hash FROM users WHERE username = '{name}'"
            ))
            .output()
            .expect("the sqlite3 tool (apt-get install sqlite3)");
        assert!(out.status.success(), "sqlite3: {}", stderr(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

/// Strong by zxcvbn, unrelated to the user names below: only the rule under test refuses.
const STRONG_12: &str = "Vx9#qLm2$Tz7";
const STRONG_16: &str = "Vx9#qLm2$Tz7!bK4";
/// The first password every test user gets (24 characters, passes every policy here).
const INITIAL: &str = "Tr0ub4dor&3-kayak-Quartz";

/// The refusal exactly: one line, every violation a whole sentence.
#[track_caller]
fn assert_refused(out: &Output, reasons: &str) {
    assert_code(out, 2);
    assert_eq!(
        stderr(out),
        format!("palisade: password refused: {reasons}\n")
    );
    assert_eq!(stdout(out), "");
}

#[test]
fn min_length_from_the_config_file_applies_to_set_password_and_create() {
    let env = Env::new("[password_policy]\nmin_length = 16\n");
    assert_code(&env.create("alice", INITIAL), 0);
    let before = env.hash_of("alice");

    let out = env.set_password("alice", STRONG_12);
    assert_refused(
        &out,
        "This password is too short. It must contain at least 16 characters.",
    );
    assert_eq!(
        env.hash_of("alice"),
        before,
        "a refused password changes nothing"
    );

    let out = env.set_password("alice", STRONG_16);
    assert_code(&out, 0);
    assert!(
        stdout(&out).starts_with("password set for alice"),
        "{}",
        stdout(&out)
    );
    assert_ne!(env.hash_of("alice"), before);

    // create applies the same configured policy.
    let out = env.create("bob", STRONG_12);
    assert_refused(
        &out,
        "This password is too short. It must contain at least 16 characters.",
    );
    assert_code(&env.create("bob", STRONG_16), 0);

    // The environment beats the file, as for every setting.
    let out = run_cmd(
        env.cmd(&["user", "set-password", "alice", "--password-stdin"])
            .env("PALISADE_PASSWORD_MIN_LENGTH", "20"),
        format!("{STRONG_16}\n").as_bytes(),
    );
    assert_refused(
        &out,
        "This password is too short. It must contain at least 20 characters.",
    );
}

#[test]
fn length_is_counted_in_characters_for_unicode_passwords() {
    let env = Env::new("[password_policy]\nmin_length = 16\n");
    assert_code(&env.create("alice", INITIAL), 0);
    let before = env.hash_of("alice");
    // 12 characters but 27 bytes: still too short, as Python's len() counts.
    let short = "Żółw-Ŋørđ-季節";
    assert_eq!(short.chars().count(), 12);
    assert!(short.len() > 16);
    let out = env.set_password("alice", short);
    assert_refused(
        &out,
        "This password is too short. It must contain at least 16 characters.",
    );
    assert_eq!(env.hash_of("alice"), before);

    let long = "Żółw-Ŋørđ-季節-Ωμέγα";
    assert_eq!(long.chars().count(), 18);
    assert_code(&env.set_password("alice", long), 0);
    assert_ne!(env.hash_of("alice"), before);
}

#[test]
fn every_rule_refuses_unicode_passwords_through_set_password() {
    // The user is named so the similarity rule has something Unicode to compare with.
    let env = Env::new("[password_policy]\nmin_words = 2\n");
    let name = "émilie-dupont";
    let out = env.run(
        &[
            "user",
            "create",
            name,
            "--email",
            "emilie@example.com",
            "--password-stdin",
        ],
        "tulip château canopy lumière 2024\n".as_bytes(),
    );
    assert_code(&out, 0);
    let before = env.hash_of(name);
    let long = "密".repeat(342);
    for (password, sentence) in [
        (
            "日本語のパス",
            "This password is too short. It must contain at least 10 characters.",
        ),
        (
            long.as_str(),
            "This password is too long. It must contain at most 1024 bytes",
        ),
        ("١٢٣٤٥٦٧٨٩٠١٢٣", "This password is entirely numeric."),
        (
            "émilie-dupont-",
            "This password is too similar to the username, e-mail address or name.",
        ),
        (
            "zqxjvkwpfhgtbnmlrc",
            "at least 2 different words from the word list",
        ),
        (
            "ééééééééééééé",
            "This password is too common or too easy to guess",
        ),
    ] {
        let out = env.set_password(name, password);
        assert_code(&out, 2);
        let err = stderr(&out);
        assert!(
            err.starts_with("palisade: password refused: ") && err.contains(sentence),
            "{password:?}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
        assert_eq!(env.hash_of(name), before, "{password:?} must not be stored");
    }
    assert_code(
        &env.set_password(name, "pebble lumière façade lantern 88"),
        0,
    );
    assert_ne!(env.hash_of(name), before);
}

#[test]
fn common_passwords_file_refuses_a_listed_password() {
    // Strong-looking to zxcvbn: only the administrator's list knows it is common here.
    let listed = "Zebra-Quantum-88!x";
    let env = Env::new("[password_policy]\ncommon_passwords_file = \"../common.txt\"\n");
    // Relative to the configuration file's folder; a BOM, CRLF and mixed case as an editor
    // might save it; a Unicode entry compared case-insensitively as Django's lower().
    std::fs::write(
        env.dir.join("common.txt"),
        format!(
            "\u{feff}password\r\n{}\r\nsommer-Küste-Ölbaum-7\r\n",
            listed.to_uppercase()
        ),
    )
    .unwrap();
    assert_code(&env.create("alice", INITIAL), 0);
    let before = env.hash_of("alice");

    let out = env.set_password("alice", listed);
    assert_refused(&out, "This password is too common.");
    let out = env.set_password("alice", "SOMMER-KÜSTE-ÖLBAUM-7");
    assert_refused(&out, "This password is too common.");
    assert_eq!(env.hash_of("alice"), before);

    assert_code(&env.set_password("alice", STRONG_16), 0);
}

/// Upper-case hex SHA-1, as the Pwned Passwords files write it.
fn sha1_hex(password: &str) -> String {
    hex::encode_upper(hash(Algorithm::Sha1, password.as_bytes()))
}

#[test]
fn breached_passwords_file_refuses_a_listed_password() {
    let breached = "Plinth-Marmot-4417!q";
    let env = Env::new("[password_policy]\nbreached_passwords_file = \"../pwned.txt\"\n");
    // A tiny file in the corpus' format: sorted by hash, `HASH:COUNT`, CRLF line ends.
    let mut lines = [
        format!("{}:42", sha1_hex(breached)),
        format!("{}:7", sha1_hex("some other password")),
        format!("{}:1", sha1_hex("yet another one")),
        format!("{}:3", sha1_hex("and a fourth")),
        // The SHA-1 of the UTF-8 bytes, as the corpus hashes them.
        format!("{}:5", sha1_hex("Ünïcödé-léaked-pässwörd-2019")),
    ];
    lines.sort();
    std::fs::write(env.dir.join("pwned.txt"), lines.join("\r\n") + "\r\n").unwrap();
    assert_code(&env.create("alice", INITIAL), 0);
    let before = env.hash_of("alice");

    let out = env.set_password("alice", breached);
    assert_refused(
        &out,
        "This password has appeared in a data breach, so attackers try it early. \
         Choose a different one.",
    );
    assert_eq!(env.hash_of("alice"), before);
    let out = env.set_password("alice", "Ünïcödé-léaked-pässwörd-2019");
    assert_code(&out, 2);
    assert!(stderr(&out).contains("data breach"), "{}", stderr(&out));
    let out = env.create("bob", breached);
    assert_code(&out, 2);
    assert!(stderr(&out).contains("data breach"), "{}", stderr(&out));

    assert_code(&env.set_password("alice", STRONG_16), 0);
}

#[test]
fn a_breach_lookup_that_fails_warns_and_lets_the_password_through() {
    let env = Env::new("[password_policy]\nbreached_passwords_file = \"../pwned.txt\"\n");
    // First and last lines are valid (so the file opens), the middle one is not: the lookup
    // lands on it and fails, and the policy fails open.
    let pwned = env.dir.join("pwned.txt");
    std::fs::write(
        &pwned,
        format!(
            "{}:1\nthis line is not a hash\n{}:1\n",
            "0".repeat(40),
            "F".repeat(40)
        ),
    )
    .unwrap();
    assert_code(&env.create("alice", INITIAL), 0);
    let out = env.set_password("alice", STRONG_16);
    assert_code(&out, 0);
    let err = stderr(&out);
    assert!(
        err.starts_with("palisade: warning: could not check the breached-password list:"),
        "{err}"
    );
    // Named as configured: relative to the folder of palisade.toml.
    assert!(err.contains("data/../pwned.txt: malformed line"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(!err.contains(STRONG_16), "{err}");
    assert!(stdout(&out).starts_with("password set for alice"));
}

#[test]
fn unknown_key_in_the_policy_section_is_a_config_error_naming_it() {
    let env = Env::new("[password_policy]\nmin_length = 16\nmin_lenght = 20\n");
    let out = env.set_password("alice", STRONG_16);
    assert_code(&out, 2);
    assert_one_clear_line(&out, Some("min_lenght"));
    let err = stderr(&out);
    assert!(
        err.contains("palisade.toml") && err.contains("line 3"),
        "{err}"
    );
    // serve refuses it the same way, before listening.
    let out = run_cmd(&mut env.cmd(&["serve", "--listen", "127.0.0.1:0"]), b"");
    assert_code(&out, 2);
    assert_one_clear_line(&out, Some("min_lenght"));
    assert_eq!(stdout(&out), "");
}

#[test]
fn bad_policy_values_are_one_clear_line() {
    for (toml, name) in [
        ("min_strength = 7", "password_policy.min_strength"),
        ("max_similarity = 0.01", "password_policy.max_similarity"),
        ("min_length = 30\nmax_length = 20", "password_policy"),
    ] {
        let env = Env::new(&format!("[password_policy]\n{toml}\n"));
        let out = env.create("alice", INITIAL);
        assert_code(&out, 2);
        assert_one_clear_line(&out, Some(name));
    }
}

#[test]
fn a_missing_common_file_is_a_clear_error_naming_it() {
    let env = Env::new("[password_policy]\ncommon_passwords_file = \"/nonexistent/common.txt\"\n");
    // Checked before the password is read: the error comes even with nothing on stdin.
    let out = env.run(
        &[
            "user",
            "create",
            "alice",
            "--email",
            "a@example.com",
            "--password-stdin",
        ],
        b"",
    );
    assert_code(&out, 2);
    assert_eq!(
        stderr(&out),
        "palisade: /nonexistent/common.txt: cannot read the common-password list: \
         No such file or directory\n"
    );
    let out = env.set_password("alice", STRONG_16);
    assert_code(&out, 2);
    assert_one_clear_line(&out, None);

    // serve: a start-up error, before the first line of output.
    let out = run_cmd(&mut env.cmd(&["serve", "--listen", "127.0.0.1:0"]), b"");
    assert_code(&out, 2);
    assert_one_clear_line(&out, Some("/nonexistent/common.txt"));
    assert_eq!(stdout(&out), "");

    // A list that is not UTF-8 is named with its line.
    let bad = env.dir.join("bad.txt");
    std::fs::write(&bad, b"fine\nalso fine\n\xff\xfe broken\n").unwrap();
    let out = run_cmd(
        env.cmd(&[
            "user",
            "create",
            "alice",
            "--email",
            "a@example.com",
            "--password-stdin",
        ])
        .env("PALISADE_COMMON_PASSWORDS_FILE", &bad),
        b"",
    );
    assert_code(&out, 2);
    assert_eq!(
        stderr(&out),
        format!("palisade: {}: line 3 is not valid UTF-8\n", bad.display())
    );
}

#[test]
fn admin_commands_that_set_no_password_do_not_read_the_lists() {
    // `user list` works with a list that does not exist: only password-setting commands
    // (and serve) build the policy.
    let env = Env::new("[password_policy]\nbreached_passwords_file = \"/nonexistent/pwned.txt\"\n");
    let out = env.run(&["user", "list", "--json"], b"");
    assert_code(&out, 0);
    assert_eq!(stdout(&out).trim(), "[]");
}
