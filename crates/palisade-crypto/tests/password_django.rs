//! Interoperability with real Django (5.2, from PyPI, in the venv `scripts/test-setup.sh`
//! makes): hashes that Django writes for every hasher verify here with the right password
//! only, and the Argon2id hashes written here on re-hash (and by every configurable hasher)
//! verify in Django, so a team can move back to Django without resetting passwords.
//!
//! The hashers that Django 5.1 removed (SHA1PasswordHasher, UnsaltedSHA1PasswordHasher,
//! UnsaltedMD5PasswordHasher) cannot be run from Django 5.2: the script writes their
//! encodings as their last code (Django 5.0) did, with `hashlib`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use palisade_crypto::password::{
    Argon2Params, HasherConfig, Verified, algorithm_of, hash_password, hash_with, verify_password,
    verify_password_with,
};
use serde_json::{Value, json};

/// Several passwords: ASCII, non-ASCII (two- to four-byte UTF-8), empty, and one over
/// bcrypt's 72-byte limit.
const PASSWORDS: &[&str] = &[
    "correct horse battery staple",
    "pässwörd ✓ 🦀",
    "",
    "Z123456789012345678901234567890123456789012345678901234567890123456789012345678",
];

const SCRIPT: &str = r#"import base64, dataclasses, hashlib, json, sys

import argon2
import bcrypt
import django
from django.conf import settings

settings.configure(
    PASSWORD_HASHERS=[
        "django.contrib.auth.hashers.Argon2PasswordHasher",
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
        "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
        "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
        "django.contrib.auth.hashers.BCryptPasswordHasher",
        "django.contrib.auth.hashers.ScryptPasswordHasher",
        "django.contrib.auth.hashers.MD5PasswordHasher",
    ]
)
django.setup()
from django.contrib.auth import hashers as h
from django.utils.crypto import get_random_string


class OwaspArgon2(h.Argon2PasswordHasher):
    time_cost = 2
    memory_cost = 19456
    parallelism = 1


class Argon2i(h.Argon2PasswordHasher):
    def params(self):
        return dataclasses.replace(super().params(), type=argon2.low_level.Type.I)


def legacy_argon2i(pw, salt):
    # Django 1.10 with argon2-cffi 16: Argon2i, version 0x10, no "v=" field, 16-byte hash.
    raw = argon2.low_level.hash_secret(
        pw.encode(), salt.encode(), time_cost=2, memory_cost=512, parallelism=2,
        hash_len=16, type=argon2.low_level.Type.I, version=0x10,
    ).decode()
    assert raw.startswith("$argon2i$v=16$"), raw
    return "argon2" + raw.replace("$v=16", "", 1)


def make(passwords):
    out = []
    for pw in passwords:
        def add(kind, enc, django_verifies=True):
            rec = {"kind": kind, "password": pw, "encoded": enc}
            if django_verifies:
                rec["django_right"] = h.check_password(pw, enc)
                rec["django_wrong"] = h.check_password(pw + "x", enc)
            out.append(rec)

        for name in ["argon2", "pbkdf2_sha256", "pbkdf2_sha1", "bcrypt_sha256", "scrypt", "md5"]:
            add(name, h.make_password(pw, hasher=name))
        add("argon2-owasp", h.make_password(pw, hasher=OwaspArgon2()))
        add("argon2i", h.make_password(pw, hasher=Argon2i()))
        add("argon2-legacy", legacy_argon2i(pw, get_random_string(22)))
        if len(pw.encode()) <= 72:
            add("bcrypt", h.make_password(pw, hasher="bcrypt"))
        else:
            # bcrypt >= 5 refuses passwords over 72 bytes; Django with bcrypt < 5 cut them
            # there, and that is what existing hashes hold.
            data = bcrypt.hashpw(pw.encode()[:72], bcrypt.gensalt(12)).decode()
            add("bcrypt", "bcrypt$" + data, django_verifies=False)
        # Removed in Django 5.1 (SHA1PasswordHasher, UnsaltedSHA1PasswordHasher,
        # UnsaltedMD5PasswordHasher): encoded as their last code did.
        salt = get_random_string(22)
        add("sha1", "sha1$%s$%s" % (salt, hashlib.sha1((salt + pw).encode()).hexdigest()), False)
        md5 = hashlib.md5(pw.encode()).hexdigest()
        add("unsalted_md5", md5, False)
        add("unsalted_md5$$", "md5$$" + md5, False)
        add("unsalted_sha1", "sha1$$" + hashlib.sha1(pw.encode()).hexdigest(), False)
        # Django 1.0-era salts: 5 hex characters.
        add("md5-short-salt", h.MD5PasswordHasher().encode(pw, "a1b2c"))
    return out


def check(items):
    out = []
    for it in items:
        enc = it["encoded"]
        out.append({
            "right": h.check_password(it["password"], enc),
            "wrong": h.check_password(it["wrong"], enc),
            "must_update": h.identify_hasher(enc).must_update(enc),
        })
    return out


data = json.load(sys.stdin)
result = make(data) if sys.argv[1] == "make" else check(data)
json.dump(result, sys.stdout)
"#;

fn python() -> PathBuf {
    if let Ok(p) = std::env::var("PALISADE_TEST_PYTHON") {
        return PathBuf::from(p);
    }
    let home = std::env::var("HOME").expect("HOME");
    let p = PathBuf::from(home).join(".cache/palisade-venv/bin/python");
    assert!(
        p.exists(),
        "{} missing: run scripts/test-setup.sh (or scripts/test.sh) first",
        p.display()
    );
    p
}

/// Runs the script in `mode` with `input` as JSON on stdin; returns its JSON output.
fn django(mode: &str, input: &Value) -> Value {
    let mut child = Command::new(python())
        .arg("-c")
        .arg(SCRIPT)
        .arg(mode)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start python");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "python {mode} failed (is Django installed? run scripts/test-setup.sh): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON from python")
}

fn s(v: &Value, key: &str) -> String {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} in {v}"))
        .to_string()
}

/// Wrong passwords for `pw`: one more character, and (if any) the last one changed.
fn wrong_passwords(pw: &str) -> Vec<String> {
    let mut wrong = vec![format!("{pw}x")];
    let mut chars: Vec<char> = pw.chars().collect();
    if let Some(last) = chars.last_mut() {
        *last = if *last == 'a' { 'b' } else { 'a' };
        wrong.push(chars.into_iter().collect());
    }
    wrong
}

#[test]
fn django_hashes_verify_and_our_rehashes_verify_in_django() {
    let current = Argon2Params::default();
    let made = django("make", &json!(PASSWORDS));
    let made = made.as_array().unwrap();
    let kinds: std::collections::BTreeSet<String> = made.iter().map(|r| s(r, "kind")).collect();
    let expected_kinds = [
        "argon2",
        "argon2-legacy",
        "argon2-owasp",
        "argon2i",
        "bcrypt",
        "bcrypt_sha256",
        "md5",
        "md5-short-salt",
        "pbkdf2_sha1",
        "pbkdf2_sha256",
        "scrypt",
        "sha1",
        "unsalted_md5",
        "unsalted_md5$$",
        "unsalted_sha1",
    ];
    assert_eq!(
        kinds.iter().map(String::as_str).collect::<Vec<_>>(),
        expected_kinds
    );
    assert_eq!(made.len(), expected_kinds.len() * PASSWORDS.len());

    let mut to_check = Vec::new();
    for rec in made {
        let (kind, pw, enc) = (s(rec, "kind"), s(rec, "password"), s(rec, "encoded"));
        // The generator itself is sound: Django accepts what it wrote (where it still can).
        if let Some(right) = rec.get("django_right") {
            assert_eq!(right, &json!(true), "Django rejects its own {kind} hash");
            assert_eq!(rec["django_wrong"], json!(false), "{kind}");
        }
        let got = verify_password(pw.as_bytes(), &enc, &current)
            .unwrap_or_else(|e| panic!("{kind} {enc}: {e}"));
        // Only an Argon2id hash with the current (OWASP) parameters is up to date.
        let needs_rehash = kind != "argon2-owasp";
        assert_eq!(got, Verified::Valid { needs_rehash }, "{kind} {enc}");
        for wrong in wrong_passwords(&pw) {
            // Plain bcrypt reads 72 bytes at most: a password that differs only after them
            // is accepted, here as in every bcrypt implementation Django has used.
            let cut = |p: &str| p.as_bytes().iter().take(72).copied().collect::<Vec<u8>>();
            let expected = if kind == "bcrypt" && cut(&wrong) == cut(&pw) {
                Verified::Valid { needs_rehash }
            } else {
                Verified::Invalid
            };
            assert_eq!(
                verify_password(wrong.as_bytes(), &enc, &current).unwrap(),
                expected,
                "{kind}: {wrong:?}"
            );
        }
        let name = match kind.as_str() {
            "argon2-legacy" | "argon2-owasp" | "argon2i" => "argon2",
            "md5-short-salt" => "md5",
            "unsalted_md5$$" => "unsalted_md5",
            other => other,
        };
        assert_eq!(algorithm_of(&enc), Some(name), "{kind}");

        if needs_rehash {
            // What the login path stores after a successful legacy verification.
            let new = hash_password(pw.as_bytes(), &current).unwrap();
            assert_eq!(
                verify_password(pw.as_bytes(), &new, &current).unwrap(),
                Verified::Valid {
                    needs_rehash: false
                }
            );
            to_check.push(json!({
                "source": format!("rehash of {kind}"), "password": pw,
                "wrong": wrong_passwords(&pw)[0], "encoded": new,
                "django_default": false,
            }));
        }
    }

    // Every configurable hasher, with Django 5.2's own defaults (so Django must not even
    // ask for an update) and with ours.
    for (config, django_default) in [
        (HasherConfig::Argon2id(Argon2Params::DJANGO), true),
        (HasherConfig::Argon2id(current), false),
        (HasherConfig::DJANGO_SCRYPT, true),
        (HasherConfig::DJANGO_BCRYPT, true),
        (HasherConfig::DJANGO_PBKDF2, true),
    ] {
        for pw in PASSWORDS {
            let enc = hash_with(&config, pw.as_bytes()).unwrap();
            assert_eq!(
                verify_password_with(pw.as_bytes(), &enc, &config).unwrap(),
                Verified::Valid {
                    needs_rehash: false
                }
            );
            to_check.push(json!({
                "source": format!("{config:?}"), "password": pw,
                "wrong": wrong_passwords(pw)[0], "encoded": enc,
                "django_default": django_default,
            }));
        }
    }

    let checked = django("check", &Value::Array(to_check.clone()));
    let checked = checked.as_array().unwrap();
    assert_eq!(checked.len(), to_check.len());
    let mut must_update_ours = Vec::new();
    for (item, res) in to_check.iter().zip(checked) {
        let what = format!("{} {:?}", item["source"], item["encoded"]);
        assert_eq!(res["right"], json!(true), "Django rejects {what}");
        assert_eq!(
            res["wrong"],
            json!(false),
            "Django accepts a wrong password for {what}"
        );
        if item["django_default"] == json!(true) {
            // Byte-for-byte Django's encoding with Django's parameters and salt length.
            assert_eq!(
                res["must_update"],
                json!(false),
                "Django wants to update {what}"
            );
        } else {
            must_update_ours.push(res["must_update"].as_bool().unwrap());
        }
    }
    // Django's default Argon2 parameters (m=102400, t=2, p=8) are not OWASP's, so Django
    // would re-hash ours on the next login: harmless, and reported here for the record.
    assert!(
        must_update_ours.iter().all(|&m| m),
        "Django must_update on our OWASP Argon2id hashes: {must_update_ours:?}"
    );
    eprintln!(
        "Django 5.2 verified {} of our hashes; must_update on our OWASP-parameter Argon2id hashes: true ({} of {})",
        checked.len(),
        must_update_ours.len(),
        must_update_ours.len()
    );
}
