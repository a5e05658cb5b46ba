//! `palisade fernet …` end to end: interoperability with Python's `cryptography.fernet` in
//! both directions (keys, tokens, MultiFernet, rotation, TTL), the I/O contract (stdin/stdout,
//! `-o`, `--force`, 0600 keys) and the failure shape (exit code, one stderr line naming the
//! file, no output and no temporary file left behind).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE;
use common::{
    assert_code, assert_one_clear_line, listing, mode, path_str, py, run, stderr, tempdir,
};

const PY_ENCRYPT: &str = r#"
import sys
from cryptography.fernet import Fernet
key = open(sys.argv[1], 'rb').read().strip()
sys.stdout.buffer.write(Fernet(key).encrypt_at_time(sys.stdin.buffer.read(), int(sys.argv[2])))
"#;

const PY_DECRYPT: &str = r#"
import sys
from cryptography.fernet import Fernet, MultiFernet
keys = [Fernet(open(k, 'rb').read().strip()) for k in sys.argv[1:]]
sys.stdout.buffer.write(MultiFernet(keys).decrypt(sys.stdin.buffer.read().strip()))
"#;

const PY_TIMESTAMP: &str = r#"
import sys
from cryptography.fernet import Fernet
key = open(sys.argv[1], 'rb').read().strip()
print(Fernet(key).extract_timestamp(sys.stdin.buffer.read().strip()))
"#;

const PY_KEYGEN: &str = r#"
import sys
from cryptography.fernet import Fernet
sys.stdout.buffer.write(Fernet.generate_key())
"#;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A key made by `palisade fernet keygen -o`.
fn our_key(dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(name);
    let o = run(&["fernet", "keygen", "-o", path_str(&p)], b"");
    assert_code(&o, 0);
    assert!(o.stdout.is_empty());
    p
}

/// A key made by Python's `Fernet.generate_key()`, written without a newline.
fn python_key(dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, py(PY_KEYGEN, &[], b"")).unwrap();
    p
}

fn py_encrypt(key: &Path, data: &[u8], at: u64) -> Vec<u8> {
    py(PY_ENCRYPT, &[path_str(key), &at.to_string()], data)
}

fn py_decrypt(keys: &[&Path], token: &[u8]) -> Vec<u8> {
    let args: Vec<&str> = keys.iter().map(|k| path_str(k)).collect();
    py(PY_DECRYPT, &args, token)
}

fn encrypt(key: &Path, data: &[u8]) -> Vec<u8> {
    let o = run(&["fernet", "encrypt", "--key-file", path_str(key)], data);
    assert_code(&o, 0);
    o.stdout
}

fn decrypt_args<'a>(keys: &[&'a Path]) -> Vec<&'a str> {
    let mut args = vec!["fernet", "decrypt"];
    for k in keys {
        args.push("--key-file");
        args.push(path_str(k));
    }
    args
}

#[test]
fn keygen_prints_a_key_python_accepts() {
    let dir = tempdir();
    let o = run(&["fernet", "keygen"], b"");
    assert_code(&o, 0);
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(text.ends_with('\n'));
    let key = text.trim_end_matches('\n');
    assert_eq!(key.len(), 44);
    assert_eq!(URL_SAFE.decode(key).unwrap().len(), 32);
    let k = dir.path().join("k");
    fs::write(&k, &text).unwrap();
    let token = py_encrypt(&k, b"from python", now());
    let o = run(&["fernet", "decrypt", "--key-file", path_str(&k)], &token);
    assert_code(&o, 0);
    assert_eq!(o.stdout, b"from python");
}

#[test]
fn keygen_file_is_0600_and_not_overwritten_without_force() {
    let dir = tempdir();
    let k = our_key(dir.path(), "k");
    assert_eq!(mode(&k), 0o600);
    let before = fs::read(&k).unwrap();
    assert_eq!(before.len(), 45);

    let o = run(&["fernet", "keygen", "-o", path_str(&k)], b"");
    assert_code(&o, 2);
    assert_one_clear_line(&o, Some(path_str(&k)));
    assert_eq!(fs::read(&k).unwrap(), before);
    assert_eq!(listing(dir.path()), ["k"]);

    let o = run(&["fernet", "keygen", "-o", path_str(&k), "--force"], b"");
    assert_code(&o, 0);
    assert_ne!(fs::read(&k).unwrap(), before);
    assert_eq!(mode(&k), 0o600);
}

#[test]
fn python_token_decrypts_here_and_ours_in_python() {
    let dir = tempdir();
    for k in [
        our_key(dir.path(), "ours"),
        python_key(dir.path(), "theirs"),
    ] {
        let data: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 251) as u8).collect();
        let token = py_encrypt(&k, &data, now());
        let o = run(&["fernet", "decrypt", "--key-file", path_str(&k)], &token);
        assert_code(&o, 0);
        assert_eq!(o.stdout, data);

        let token = encrypt(&k, &data);
        assert!(token.ends_with(b"\n"));
        assert_eq!(token.iter().filter(|&&b| b == b'\n').count(), 1);
        assert_eq!(py_decrypt(&[&k], &token), data);
    }
}

#[test]
fn empty_plaintext_round_trips() {
    let dir = tempdir();
    let k = our_key(dir.path(), "k");
    let token = encrypt(&k, b"");
    assert_eq!(py_decrypt(&[&k], &token), b"");
    let o = run(&["fernet", "decrypt", "--key-file", path_str(&k)], &token);
    assert_code(&o, 0);
    assert!(o.stdout.is_empty());
    let token = py_encrypt(&k, b"", now());
    let o = run(&["fernet", "decrypt", "--key-file", path_str(&k)], &token);
    assert_code(&o, 0);
    assert!(o.stdout.is_empty());
}

#[test]
fn multifernet_in_both_orders() {
    let dir = tempdir();
    let a = our_key(dir.path(), "a");
    let b = python_key(dir.path(), "b");
    let c = our_key(dir.path(), "c");
    let token = py_encrypt(&b, b"multi", now());
    for keys in [[&a, &b], [&b, &a]] {
        let keys: Vec<&Path> = keys.iter().map(|p| p.as_path()).collect();
        let o = run(&decrypt_args(&keys), &token);
        assert_code(&o, 0);
        assert_eq!(o.stdout, b"multi");
    }
    let o = run(&decrypt_args(&[&a, &c]), &token);
    assert_code(&o, 1);
    assert_one_clear_line(&o, Some("invalid Fernet token"));
    assert!(o.stdout.is_empty());
}

#[test]
fn rotate_keeps_timestamp_and_needs_only_the_new_key() {
    let dir = tempdir();
    let old = python_key(dir.path(), "old");
    let new = our_key(dir.path(), "new");
    let stamp = now() - 1000;
    let token = py_encrypt(&old, b"rotate me", stamp);
    let o = run(
        &[
            "fernet",
            "rotate",
            "--key-file",
            path_str(&new),
            "--key-file",
            path_str(&old),
        ],
        &token,
    );
    assert_code(&o, 0);
    let rotated = o.stdout;
    assert!(rotated.ends_with(b"\n"));
    assert_eq!(py_decrypt(&[&new], &rotated), b"rotate me");
    let ts = py(PY_TIMESTAMP, &[path_str(&new)], &rotated);
    assert_eq!(String::from_utf8(ts).unwrap().trim(), stamp.to_string());
    // The old key alone no longer opens it.
    let o = run(
        &["fernet", "decrypt", "--key-file", path_str(&old)],
        &rotated,
    );
    assert_code(&o, 1);

    // -o and a token file.
    let tok = dir.path().join("token");
    fs::write(&tok, &token).unwrap();
    let out = dir.path().join("rotated");
    let o = run(
        &[
            "fernet",
            "rotate",
            "--key-file",
            path_str(&new),
            "--key-file",
            path_str(&old),
            path_str(&tok),
            "-o",
            path_str(&out),
        ],
        b"",
    );
    assert_code(&o, 0);
    assert!(o.stdout.is_empty());
    assert_eq!(py_decrypt(&[&new], &fs::read(&out).unwrap()), b"rotate me");
}

#[test]
fn ttl_and_future_tokens() {
    let dir = tempdir();
    let k = python_key(dir.path(), "k");
    let old = py_encrypt(&k, b"aged", now() - 100);
    let mut args = decrypt_args(&[&k]);
    args.extend(["--ttl", "60"]);
    let o = run(&args, &old);
    assert_code(&o, 1);
    assert_one_clear_line(&o, Some("token expired"));
    assert!(o.stdout.is_empty());

    let mut args = decrypt_args(&[&k]);
    args.extend(["--ttl", "200"]);
    let o = run(&args, &old);
    assert_code(&o, 0);
    assert_eq!(o.stdout, b"aged");

    // Without --ttl age does not matter.
    let o = run(&decrypt_args(&[&k]), &old);
    assert_code(&o, 0);

    let future = py_encrypt(&k, b"later", now() + 3600);
    let o = run(&decrypt_args(&[&k]), &future);
    assert_code(&o, 1);
    assert_one_clear_line(&o, Some("token timestamp is in the future"));
    assert!(o.stdout.is_empty());
    // A few seconds of skew is fine.
    let soon = py_encrypt(&k, b"soon", now() + 30);
    let o = run(&decrypt_args(&[&k]), &soon);
    assert_code(&o, 0);
    assert_eq!(o.stdout, b"soon");
}

#[test]
fn files_and_output_files() {
    let dir = tempdir();
    let k = our_key(dir.path(), "k");
    let plain = dir.path().join("plain.bin");
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 256) as u8).collect();
    fs::write(&plain, &data).unwrap();
    let tok = dir.path().join("tok");
    let o = run(
        &[
            "fernet",
            "encrypt",
            "--key-file",
            path_str(&k),
            path_str(&plain),
            "-o",
            path_str(&tok),
        ],
        b"",
    );
    assert_code(&o, 0);
    assert!(o.stdout.is_empty());
    assert_eq!(py_decrypt(&[&k], &fs::read(&tok).unwrap()), data);

    // Refuses to overwrite, leaves the existing file alone.
    let before = fs::read(&tok).unwrap();
    let o = run(
        &[
            "fernet",
            "encrypt",
            "--key-file",
            path_str(&k),
            path_str(&plain),
            "-o",
            path_str(&tok),
        ],
        b"",
    );
    assert_code(&o, 2);
    assert_one_clear_line(&o, Some(path_str(&tok)));
    assert_eq!(fs::read(&tok).unwrap(), before);

    let dec = dir.path().join("dec");
    let o = run(
        &[
            "fernet",
            "decrypt",
            "--key-file",
            path_str(&k),
            path_str(&tok),
            "-o",
            path_str(&dec),
        ],
        b"",
    );
    assert_code(&o, 0);
    assert!(o.stdout.is_empty());
    assert_eq!(fs::read(&dec).unwrap(), data);
    assert_eq!(mode(&dec), 0o600);

    // --force replaces; `-` reads stdin.
    let o = run(
        &[
            "fernet",
            "decrypt",
            "--key-file",
            path_str(&k),
            "-",
            "-o",
            path_str(&dec),
            "--force",
        ],
        &py_encrypt(&k, b"replaced", now()),
    );
    assert_code(&o, 0);
    assert_eq!(fs::read(&dec).unwrap(), b"replaced");
    assert_eq!(
        listing(dir.path()),
        ["dec", "k", "plain.bin", "tok"].map(String::from)
    );
}

/// A bad token: exit 1, one stderr line naming the file and the reason, nothing on stdout,
/// no output file and no temporary file.
#[test]
fn bad_tokens_fail_cleanly() {
    let dir = tempdir();
    let k = our_key(dir.path(), "k");
    let good = String::from_utf8(py_encrypt(&k, b"some secret text", now())).unwrap();
    let mut raw = URL_SAFE.decode(&good).unwrap();
    let last = raw.len() - 1;
    raw[last] ^= 1;
    let flipped = URL_SAFE.encode(&raw);
    let mut raw = URL_SAFE.decode(&good).unwrap();
    raw[30] ^= 0x40; // in the ciphertext
    let flipped_body = URL_SAFE.encode(&raw);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "bad base64",
            b"%%%not base64%%%".to_vec(),
            "invalid Fernet token",
        ),
        ("empty", Vec::new(), "invalid Fernet token"),
        (
            "too short",
            b"gAAAAAAdwJ6x".to_vec(),
            "invalid Fernet token",
        ),
        ("tampered tag", flipped.into_bytes(), "invalid Fernet token"),
        (
            "tampered body",
            flipped_body.into_bytes(),
            "invalid Fernet token",
        ),
        (
            "truncated",
            good.as_bytes()[..good.len() - 8].to_vec(),
            "invalid Fernet token",
        ),
        (
            "expired",
            py_encrypt(&k, b"x", now() - 1000),
            "token expired",
        ),
        (
            "future",
            py_encrypt(&k, b"x", now() + 3600),
            "token timestamp is in the future",
        ),
    ];
    for (what, token, reason) in cases {
        let tok = dir.path().join("in.tok");
        fs::write(&tok, &token).unwrap();
        let out = dir.path().join("out");
        let o = run(
            &[
                "fernet",
                "decrypt",
                "--key-file",
                path_str(&k),
                "--ttl",
                "500",
                path_str(&tok),
                "-o",
                path_str(&out),
            ],
            b"",
        );
        assert_code(&o, 1);
        assert_one_clear_line(&o, Some(path_str(&tok)));
        assert!(stderr(&o).contains(reason), "{what}: {}", stderr(&o));
        assert!(o.stdout.is_empty(), "{what}");
        assert_eq!(listing(dir.path()), ["in.tok", "k"], "{what}");

        // Same on stdin → stdout: no partial plaintext, and stdin is named `-`.
        let o = run(
            &[
                "fernet",
                "decrypt",
                "--key-file",
                path_str(&k),
                "--ttl",
                "500",
            ],
            &token,
        );
        assert_code(&o, 1);
        assert_one_clear_line(&o, Some("-: "));
        assert!(o.stdout.is_empty(), "{what}");

        // rotate rejects what does not authenticate too (it does no time checks).
        if reason == "invalid Fernet token" {
            let o = run(
                &[
                    "fernet",
                    "rotate",
                    "--key-file",
                    path_str(&k),
                    path_str(&tok),
                    "-o",
                    path_str(&out),
                ],
                b"",
            );
            assert_code(&o, 1);
            assert_one_clear_line(&o, Some(path_str(&tok)));
            assert_eq!(listing(dir.path()), ["in.tok", "k"], "{what}");
        }
    }
}

#[test]
fn bad_keys_are_usage_errors() {
    let dir = tempdir();
    let good = our_key(dir.path(), "good");
    let short = dir.path().join("short");
    fs::write(&short, URL_SAFE.encode([7u8; 16])).unwrap();
    let notb64 = dir.path().join("notb64");
    fs::write(&notb64, "this is not a fernet key at all!!!!!!!!!!!!\n").unwrap();
    let empty = dir.path().join("empty");
    fs::write(&empty, "").unwrap();
    let missing = dir.path().join("missing");
    let folder = dir.path().join("folder");
    fs::create_dir(&folder).unwrap();
    let token = encrypt(&good, b"data");
    let before = listing(dir.path());

    for bad in [&short, &notb64, &empty, &missing, &folder] {
        let name = path_str(bad);
        let out = dir.path().join("out");
        let runs = [
            run(
                &[
                    "fernet",
                    "encrypt",
                    "--key-file",
                    name,
                    "-o",
                    path_str(&out),
                ],
                b"data",
            ),
            run(&["fernet", "decrypt", "--key-file", name], &token),
            // A bad key among good ones is still an error, not skipped.
            run(
                &[
                    "fernet",
                    "decrypt",
                    "--key-file",
                    path_str(&good),
                    "--key-file",
                    name,
                ],
                &token,
            ),
            run(
                &[
                    "fernet",
                    "rotate",
                    "--key-file",
                    name,
                    "--key-file",
                    path_str(&good),
                ],
                &token,
            ),
        ];
        for o in runs {
            assert_code(&o, 2);
            assert_one_clear_line(&o, Some(name));
            assert!(o.stdout.is_empty());
        }
        assert_eq!(listing(dir.path()), before);
    }
}

#[test]
fn missing_and_directory_inputs_are_usage_errors() {
    let dir = tempdir();
    let k = our_key(dir.path(), "k");
    let missing = dir.path().join("nope");
    for cmd in ["encrypt", "decrypt", "rotate"] {
        for input in [missing.as_path(), dir.path()] {
            let o = run(
                &["fernet", cmd, "--key-file", path_str(&k), path_str(input)],
                b"",
            );
            assert_code(&o, 2);
            assert_one_clear_line(&o, Some(path_str(input)));
            assert!(o.stdout.is_empty());
        }
    }
}

#[test]
fn help_documents_the_limits() {
    let o = run(&["fernet", "encrypt", "--help"], b"");
    assert_code(&o, 0);
    assert!(common::stdout(&o).contains("256 MiB"));
    let o = run(&["fernet", "decrypt", "--help"], b"");
    assert_code(&o, 0);
    assert!(common::stdout(&o).contains("342 MiB"));
}

#[test]
fn over_limit_token_is_refused_by_size() {
    // A sparse file just over the limit: refused from its size, without reading it.
    let dir = tempdir();
    let k = our_key(dir.path(), "k");
    let big = dir.path().join("big.tok");
    let f = fs::File::create(&big).unwrap();
    f.set_len(palisade_limit_token() + 1).unwrap();
    let o = run(
        &[
            "fernet",
            "decrypt",
            "--key-file",
            path_str(&k),
            path_str(&big),
        ],
        b"",
    );
    assert_code(&o, 2);
    assert_one_clear_line(&o, Some(path_str(&big)));
    assert!(stderr(&o).contains(&palisade_limit_token().to_string()));

    let big_plain = dir.path().join("big.bin");
    let f = fs::File::create(&big_plain).unwrap();
    f.set_len(256 * 1024 * 1024 + 1).unwrap();
    let o = run(
        &[
            "fernet",
            "encrypt",
            "--key-file",
            path_str(&k),
            path_str(&big_plain),
        ],
        b"",
    );
    assert_code(&o, 2);
    assert_one_clear_line(&o, Some(path_str(&big_plain)));
    assert!(stderr(&o).contains("268435456"));
}

fn palisade_limit_token() -> u64 {
    342 * 1024 * 1024
}
