//! `palisade keygen age`, `encrypt` and `decrypt` against the contract and against the real
//! `age`/`age-keygen` tools in both directions. `age -p` only reads a terminal, so those
//! tests drive it through Python's pexpect.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{
    assert_code, assert_one_clear_line, listing, mode, palisade, path_str, py, run, run_cmd,
    stderr, tempdir,
};

const CHUNK: usize = 64 * 1024;
const SIZES: [usize; 5] = [0, 1, CHUNK, CHUNK + 1, 3 * 1024 * 1024 + 123];

/// Deterministic, incompressible-enough test data.
fn data(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x1234_5678 ^ len as u32;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

fn tool(name: &str) -> Command {
    Command::new(name)
}

/// An identity made by the real `age-keygen`, and its recipient.
fn age_keygen(dir: &Path, name: &str) -> (PathBuf, String) {
    let path = dir.join(name);
    let out = run_cmd(tool("age-keygen").arg("-o").arg(&path), b"");
    assert!(out.status.success(), "age-keygen: {}", stderr(&out));
    let out = run_cmd(tool("age-keygen").arg("-y").arg(&path), b"");
    assert!(out.status.success(), "age-keygen -y: {}", stderr(&out));
    let recipient = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(recipient.starts_with("age1"));
    (path, recipient)
}

/// Encrypts with the real `age -r …` (stdin to stdout).
fn age_encrypt(recipients: &[&str], pt: &[u8]) -> Vec<u8> {
    let mut cmd = tool("age");
    for r in recipients {
        cmd.arg("-r").arg(r);
    }
    let out = run_cmd(&mut cmd, pt);
    assert!(out.status.success(), "age -r: {}", stderr(&out));
    out.stdout
}

/// Decrypts with the real `age -d -i …` (stdin to stdout).
fn age_decrypt(identity: &Path, ct: &[u8]) -> Output {
    run_cmd(tool("age").arg("-d").arg("-i").arg(identity), ct)
}

/// `palisade …` without a passphrase in the environment unless the test sets one.
fn pal(args: &[&str]) -> Command {
    let mut cmd = palisade();
    cmd.args(args).env_remove("PALISADE_PASSPHRASE");
    cmd
}

fn pal_pass(args: &[&str], passphrase: &str) -> Command {
    let mut cmd = palisade();
    cmd.args(args).env("PALISADE_PASSPHRASE", passphrase);
    cmd
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, bytes).unwrap();
    p
}

/// The contract for a failure: the exit code, one stderr line naming `name`, nothing on
/// stdout, and the folder exactly as it was (no output file, no temporary file).
#[track_caller]
fn assert_failed_cleanly(out: &Output, code: i32, name: &str, dir: &Path, before: &[String]) {
    assert_code(out, code);
    assert_one_clear_line(out, Some(name));
    assert!(out.stdout.is_empty(), "stdout not empty after failure");
    assert_eq!(
        listing(dir),
        before,
        "folder changed after a failed command"
    );
}

/// Length of the header plus the 16-byte nonce, i.e. where the STREAM payload starts.
fn payload_start(ct: &[u8]) -> usize {
    let mac_line = ct
        .windows(4)
        .position(|w| w == b"\n---")
        .expect("header MAC line")
        + 1;
    let end = mac_line + ct[mac_line..].iter().position(|&b| b == b'\n').unwrap() + 1;
    end + 16
}

// ---------------------------------------------------------------- interop with age

#[test]
fn palisade_encrypts_to_age_keygen_identity_and_age_decrypts_all_sizes() {
    let dir = tempdir();
    let (id, recipient) = age_keygen(dir.path(), "id.txt");
    let rfile = write(
        dir.path(),
        "recipients.txt",
        format!("# me\n\n{recipient}\n").as_bytes(),
    );
    for len in SIZES {
        let pt = data(len);
        let input = write(dir.path(), &format!("pt{len}"), &pt);
        // -r
        let ct_path = dir.path().join(format!("ct{len}.age"));
        let out = run_cmd(
            &mut pal(&[
                "encrypt",
                "-r",
                &recipient,
                path_str(&input),
                "-o",
                path_str(&ct_path),
            ]),
            b"",
        );
        assert_code(&out, 0);
        assert_eq!(mode(&ct_path), 0o644);
        let dec = age_decrypt(&id, &fs::read(&ct_path).unwrap());
        assert!(
            dec.status.success(),
            "age -d failed for {len}: {}",
            stderr(&dec)
        );
        assert_eq!(dec.stdout, pt, "size {len}");
        // -R, stdin to stdout
        let out = run_cmd(&mut pal(&["encrypt", "-R", path_str(&rfile)]), &pt);
        assert_code(&out, 0);
        let dec = age_decrypt(&id, &out.stdout);
        assert!(
            dec.status.success(),
            "age -d failed for {len}: {}",
            stderr(&dec)
        );
        assert_eq!(dec.stdout, pt, "size {len}");
    }
}

#[test]
fn age_encrypts_and_palisade_decrypts_with_age_keygen_identity_all_sizes() {
    let dir = tempdir();
    let (id, recipient) = age_keygen(dir.path(), "id.txt");
    for len in SIZES {
        let pt = data(len);
        let ct = write(
            dir.path(),
            &format!("ct{len}.age"),
            &age_encrypt(&[&recipient], &pt),
        );
        let out_path = dir.path().join(format!("pt{len}"));
        let out = run_cmd(
            &mut pal(&[
                "decrypt",
                "-i",
                path_str(&id),
                path_str(&ct),
                "-o",
                path_str(&out_path),
            ]),
            b"",
        );
        assert_code(&out, 0);
        assert!(out.stdout.is_empty());
        assert_eq!(fs::read(&out_path).unwrap(), pt, "size {len}");
        assert_eq!(mode(&out_path), 0o600, "plaintext is created private");
        // stdin to stdout
        let out = run_cmd(
            &mut pal(&["decrypt", "-i", path_str(&id)]),
            &fs::read(&ct).unwrap(),
        );
        assert_code(&out, 0);
        assert_eq!(out.stdout, pt, "size {len}");
    }
}

#[test]
fn palisade_keygen_identity_works_with_age_tool() {
    let dir = tempdir();
    let id = dir.path().join("key.txt");
    let rec = dir.path().join("key.pub");
    let out = run(
        &[
            "keygen",
            "age",
            "-o",
            path_str(&id),
            "--public-out",
            path_str(&rec),
        ],
        b"",
    );
    assert_code(&out, 0);
    assert!(
        out.stdout.is_empty(),
        "recipient went to the file, not stdout"
    );
    assert_eq!(mode(&id), 0o600);
    assert_eq!(mode(&rec), 0o644);

    // Same shape as age-keygen's file.
    let text = fs::read_to_string(&id).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[0].starts_with("# created: ") && lines[0].ends_with('Z'),
        "{text}"
    );
    let recipient = fs::read_to_string(&rec).unwrap();
    assert!(recipient.ends_with('\n') && recipient.lines().count() == 1);
    let recipient = recipient.trim();
    assert_eq!(lines[1], format!("# public key: {recipient}"));
    assert!(lines[2].starts_with("AGE-SECRET-KEY-1"));
    assert!(text.ends_with('\n'));

    // age-keygen agrees on the public key.
    let y = run_cmd(tool("age-keygen").arg("-y").arg(&id), b"");
    assert!(y.status.success());
    assert_eq!(String::from_utf8(y.stdout).unwrap().trim(), recipient);

    // The recipient works with `age -r`, the identity with `age -d -i`.
    let pt = data(100_000);
    let ct = age_encrypt(&[recipient], &pt);
    let dec = age_decrypt(&id, &ct);
    assert!(dec.status.success(), "{}", stderr(&dec));
    assert_eq!(dec.stdout, pt);
}

#[test]
fn keygen_prints_recipient_alone_on_stdout() {
    let dir = tempdir();
    let id = dir.path().join("key.txt");
    let out = run(&["keygen", "age", "-o", path_str(&id)], b"");
    assert_code(&out, 0);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1);
    assert!(stdout.starts_with("age1") && stdout.ends_with('\n'));
    assert!(
        fs::read_to_string(&id)
            .unwrap()
            .contains(&format!("# public key: {}", stdout.trim()))
    );
    assert_eq!(mode(&id), 0o600);
}

#[test]
fn keygen_refuses_existing_files_without_force() {
    let dir = tempdir();
    let id = write(dir.path(), "key.txt", b"precious\n");
    let out = run(&["keygen", "age", "-o", path_str(&id)], b"");
    assert_code(&out, 2);
    assert_one_clear_line(&out, Some("key.txt"));
    assert_eq!(fs::read(&id).unwrap(), b"precious\n");

    // The public file exists: nothing is written, not even the identity.
    let id2 = dir.path().join("new.txt");
    let public = write(dir.path(), "new.pub", b"keep\n");
    let out = run(
        &[
            "keygen",
            "age",
            "-o",
            path_str(&id2),
            "--public-out",
            path_str(&public),
        ],
        b"",
    );
    assert_code(&out, 2);
    assert_one_clear_line(&out, Some("new.pub"));
    assert!(!id2.exists());
    assert_eq!(fs::read(&public).unwrap(), b"keep\n");

    let out = run(&["keygen", "age", "-o", path_str(&id), "--force"], b"");
    assert_code(&out, 0);
    assert!(
        fs::read_to_string(&id)
            .unwrap()
            .contains("AGE-SECRET-KEY-1")
    );
    assert_eq!(mode(&id), 0o600);
}

#[test]
fn multiple_recipients_each_can_decrypt() {
    let dir = tempdir();
    let (id_a, rec_a) = age_keygen(dir.path(), "a.txt");
    let (id_b, rec_b) = age_keygen(dir.path(), "b.txt");
    let (id_c, rec_c) = age_keygen(dir.path(), "c.txt");
    let rfile = write(
        dir.path(),
        "team.txt",
        format!("# team\n{rec_b}\n\n# more\n{rec_c}\n").as_bytes(),
    );
    let pt = data(70_000);
    let out = run_cmd(
        &mut pal(&["encrypt", "-r", &rec_a, "-R", path_str(&rfile)]),
        &pt,
    );
    assert_code(&out, 0);
    let ct = out.stdout;
    for id in [&id_a, &id_b, &id_c] {
        let dec = age_decrypt(id, &ct);
        assert!(dec.status.success(), "{}", stderr(&dec));
        assert_eq!(dec.stdout, pt);
        let out = run_cmd(&mut pal(&["decrypt", "-i", path_str(id)]), &ct);
        assert_code(&out, 0);
        assert_eq!(out.stdout, pt);
    }
    // Several -i files: the one that matches is used.
    let (other, _) = age_keygen(dir.path(), "other.txt");
    let out = run_cmd(
        &mut pal(&["decrypt", "-i", path_str(&other), "-i", path_str(&id_c)]),
        &ct,
    );
    assert_code(&out, 0);
    assert_eq!(out.stdout, pt);

    // age encrypting to several recipients, palisade decrypting with one of them.
    let ct = age_encrypt(&[&rec_a, &rec_b], &pt);
    let out = run_cmd(
        &mut pal(&["decrypt", "-i", path_str(&id_b), "-", "-o", "-"]),
        &ct,
    );
    assert_code(&out, 0);
    assert_eq!(out.stdout, pt);
}

#[test]
fn palisade_round_trip_through_pipes() {
    let dir = tempdir();
    let id = dir.path().join("key.txt");
    let out = run(&["keygen", "age", "-o", path_str(&id)], b"");
    assert_code(&out, 0);
    let recipient = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let pt = data(2 * CHUNK);
    let enc = run_cmd(&mut pal(&["encrypt", "-r", &recipient, "-"]), &pt);
    assert_code(&enc, 0);
    assert!(enc.stdout.starts_with(b"age-encryption.org/v1\n"));
    let dec = run_cmd(&mut pal(&["decrypt", "-i", path_str(&id)]), &enc.stdout);
    assert_code(&dec, 0);
    assert_eq!(dec.stdout, pt);
}

// ---------------------------------------------------------------- passphrases

/// Drives `age -p` (encrypt) or `age -d` (decrypt a passphrase file) through a terminal.
const AGE_PEXPECT: &str = r#"
import sys, pexpect
mode, pw, src, dst = sys.argv[1:5]
if mode == "enc":
    child = pexpect.spawn("age", ["-p", "-o", dst, src], timeout=120)
    child.expect("(?i)passphrase")
    child.sendline(pw)
    child.expect("(?i)confirm")
    child.sendline(pw)
else:
    child = pexpect.spawn("age", ["-d", "-o", dst, src], timeout=120)
    child.expect("(?i)passphrase")
    child.sendline(pw)
child.expect(pexpect.EOF)
child.close()
if child.exitstatus != 0:
    sys.exit("age exited with %r: %r" % (child.exitstatus, child.before))
"#;

#[test]
fn passphrase_palisade_to_age_and_back() {
    let dir = tempdir();
    let pw = "correct horse battery staple";
    let pt = data(CHUNK + 1);
    let input = write(dir.path(), "pt", &pt);

    // palisade --passphrase (from the environment) → age -d typing the passphrase.
    let ct = dir.path().join("ct.age");
    let out = run_cmd(
        &mut pal_pass(
            &[
                "encrypt",
                "--passphrase",
                path_str(&input),
                "-o",
                path_str(&ct),
            ],
            pw,
        ),
        b"",
    );
    assert_code(&out, 0);
    let back = dir.path().join("back");
    py(
        AGE_PEXPECT,
        &["dec", pw, path_str(&ct), path_str(&back)],
        b"",
    );
    assert_eq!(fs::read(&back).unwrap(), pt);

    // age -p typing the passphrase → palisade --passphrase.
    let ct2 = dir.path().join("ct2.age");
    py(
        AGE_PEXPECT,
        &["enc", pw, path_str(&input), path_str(&ct2)],
        b"",
    );
    let out = run_cmd(
        &mut pal_pass(&["decrypt", "--passphrase", path_str(&ct2)], pw),
        b"",
    );
    assert_code(&out, 0);
    assert_eq!(out.stdout, pt);

    // The wrong passphrase: exit 1, nothing written.
    let before = listing(dir.path());
    let out_path = dir.path().join("out");
    let out = run_cmd(
        &mut pal_pass(
            &["decrypt", "-p", path_str(&ct2), "-o", path_str(&out_path)],
            "wrong",
        ),
        b"",
    );
    assert_failed_cleanly(&out, 1, "ct2.age", dir.path(), &before);

    // The file's method and the option disagree: exit 1 with the reason.
    let (id, _) = age_keygen(dir.path(), "id.txt");
    let before = listing(dir.path());
    let out = run_cmd(
        &mut pal(&["decrypt", "-i", path_str(&id), path_str(&ct2)]),
        b"",
    );
    assert_failed_cleanly(&out, 1, "ct2.age", dir.path(), &before);
    assert!(stderr(&out).contains("passphrase"), "{}", stderr(&out));
}

#[test]
fn passphrase_on_a_recipient_file_is_refused_with_reason() {
    let dir = tempdir();
    let (_, recipient) = age_keygen(dir.path(), "id.txt");
    let ct = write(dir.path(), "ct.age", &age_encrypt(&[&recipient], b"secret"));
    let before = listing(dir.path());
    let out = run_cmd(
        &mut pal_pass(&["decrypt", "--passphrase", path_str(&ct)], "pw"),
        b"",
    );
    assert_failed_cleanly(&out, 1, "ct.age", dir.path(), &before);
    assert!(stderr(&out).contains("recipients"), "{}", stderr(&out));
}

#[test]
fn passphrase_typed_on_the_terminal() {
    // palisade's own prompt: typed twice for encryption, mismatch refused with exit 2.
    let script = r#"
import sys, pexpect, os
exe, src, dst, first, second = sys.argv[1:6]
env = dict(os.environ)
env.pop("PALISADE_PASSPHRASE", None)
child = pexpect.spawn(exe, ["encrypt", "--passphrase", src, "-o", dst], env=env, timeout=120)
child.expect("(?i)passphrase")
child.sendline(first)
child.expect("(?i)confirm")
child.sendline(second)
child.expect(pexpect.EOF)
child.close()
print(child.exitstatus)
"#;
    let dir = tempdir();
    let input = write(dir.path(), "pt", b"typed secret");
    let exe = env!("CARGO_BIN_EXE_palisade");
    let ct = dir.path().join("ct.age");
    let before = listing(dir.path());
    let code = py(
        script,
        &[exe, path_str(&input), path_str(&ct), "one", "two"],
        b"",
    );
    assert_eq!(
        String::from_utf8(code).unwrap().trim(),
        "2",
        "mismatch must exit 2"
    );
    assert_eq!(listing(dir.path()), before);

    let code = py(
        script,
        &[exe, path_str(&input), path_str(&ct), "same pw", "same pw"],
        b"",
    );
    assert_eq!(String::from_utf8(code).unwrap().trim(), "0");
    let out = run_cmd(
        &mut pal_pass(&["decrypt", "-p", path_str(&ct)], "same pw"),
        b"",
    );
    assert_code(&out, 0);
    assert_eq!(out.stdout, b"typed secret");
}

#[test]
fn passphrase_missing_or_empty_is_a_usage_error() {
    let dir = tempdir();
    let input = write(dir.path(), "pt", b"data");
    let before = listing(dir.path());
    let out_path = dir.path().join("ct.age");
    // No terminal (all pipes) and no environment variable.
    let out = run_cmd(
        &mut pal(&[
            "encrypt",
            "--passphrase",
            path_str(&input),
            "-o",
            path_str(&out_path),
        ]),
        b"",
    );
    assert_failed_cleanly(&out, 2, "PALISADE_PASSPHRASE", dir.path(), &before);
    let out = run_cmd(
        &mut pal_pass(
            &[
                "encrypt",
                "--passphrase",
                path_str(&input),
                "-o",
                path_str(&out_path),
            ],
            "",
        ),
        b"",
    );
    assert_failed_cleanly(&out, 2, "pt", dir.path(), &before);
    assert!(stderr(&out).contains("empty"), "{}", stderr(&out));
    let out = run_cmd(
        &mut pal(&["decrypt", "--passphrase", path_str(&input)]),
        b"",
    );
    assert_failed_cleanly(&out, 2, "PALISADE_PASSPHRASE", dir.path(), &before);
}

// ---------------------------------------------------------------- failures

struct Fixture {
    dir: tempfile::TempDir,
    id: PathBuf,
    ct: Vec<u8>,
}

/// An age-made file of 3 full chunks and a partial one, and the identity that opens it.
fn fixture() -> Fixture {
    let dir = tempdir();
    let (id, recipient) = age_keygen(dir.path(), "id.txt");
    let ct = age_encrypt(&[&recipient], &data(3 * CHUNK + 5000));
    Fixture { dir, id, ct }
}

/// Decrypting `bad` must fail with `code`, to a file and to stdout, leaving nothing.
#[track_caller]
fn assert_decrypt_fails(fx: &Fixture, bad: &[u8], code: i32, what: &str) {
    let dir = fx.dir.path();
    let input = write(dir, "bad.age", bad);
    let before = listing(dir);
    let out_path = dir.join("plain.out");
    let out = run_cmd(
        &mut pal(&[
            "decrypt",
            "-i",
            path_str(&fx.id),
            path_str(&input),
            "-o",
            path_str(&out_path),
        ]),
        b"",
    );
    assert_failed_cleanly(&out, code, "bad.age", dir, &before);
    assert!(!out_path.exists(), "{what}: output file created");
    // To stdout: nothing may be printed, even the chunks that did authenticate.
    let out = run_cmd(
        &mut pal(&["decrypt", "-i", path_str(&fx.id), path_str(&input)]),
        b"",
    );
    assert_failed_cleanly(&out, code, "bad.age", dir, &before);
    // From stdin the file is named `-`.
    let out = run_cmd(&mut pal(&["decrypt", "-i", path_str(&fx.id)]), bad);
    assert_code(&out, code);
    assert_one_clear_line(&out, None);
    assert!(out.stdout.is_empty(), "{what}: stdout not empty");
    fs::remove_file(&input).unwrap();
}

#[test]
fn truncated_files_are_rejected_without_output() {
    let fx = fixture();
    let start = payload_start(&fx.ct);
    let cuts = [
        10,                       // inside the magic
        30,                       // inside the stanza
        start - 20,               // inside the MAC line
        start - 16,               // header without nonce
        start - 3,                // inside the nonce
        start,                    // no payload at all
        start + 1000,             // inside the first chunk
        start + CHUNK + 16,       // exactly at a chunk boundary
        start + 2 * (CHUNK + 16), // another boundary
        fx.ct.len() - 1,          // last byte missing
    ];
    for cut in cuts {
        assert_decrypt_fails(&fx, &fx.ct[..cut], 1, &format!("cut at {cut}"));
    }
}

#[test]
fn chunk_boundary_truncation_of_exact_multiple_is_rejected() {
    let dir = tempdir();
    let (id, recipient) = age_keygen(dir.path(), "id.txt");
    let ct = age_encrypt(&[&recipient], &data(2 * CHUNK));
    let start = payload_start(&ct);
    let fx = Fixture { dir, id, ct };
    // Dropping the whole (full-size) last chunk leaves a stream that looks complete.
    assert_decrypt_fails(
        &fx,
        &fx.ct[..start + CHUNK + 16],
        1,
        "last full chunk dropped",
    );
}

#[test]
fn single_bit_flips_are_rejected_without_output() {
    let fx = fixture();
    let start = payload_start(&fx.ct);
    let positions = [
        25,                  // recipient stanza line
        60,                  // stanza arguments / body
        start - 25,          // header MAC
        start - 5,           // nonce
        start + 10,          // first chunk
        start + CHUNK + 100, // second chunk
        fx.ct.len() - 1,     // last chunk's tag
    ];
    for at in positions {
        for bit in [0u8, 7] {
            let mut bad = fx.ct.clone();
            bad[at] ^= 1 << bit;
            assert_decrypt_fails(&fx, &bad, 1, &format!("flip at {at} bit {bit}"));
        }
    }
}

#[test]
fn wrong_identity_and_not_an_age_file() {
    let fx = fixture();
    let dir = fx.dir.path();
    let (other, _) = age_keygen(dir, "other.txt");
    let input = write(dir, "ct.age", &fx.ct);
    let before = listing(dir);
    let out_path = dir.join("plain.out");
    let out = run_cmd(
        &mut pal(&[
            "decrypt",
            "-i",
            path_str(&other),
            path_str(&input),
            "-o",
            path_str(&out_path),
        ]),
        b"",
    );
    assert_failed_cleanly(&out, 1, "ct.age", dir, &before);

    fs::remove_file(&input).unwrap();
    assert_decrypt_fails(
        &fx,
        b"just some text, certainly not age\n",
        2,
        "not an age file",
    );
    assert_decrypt_fails(&fx, &data(100_000), 2, "random bytes");
    // Trailing garbage after a complete file is tampering too.
    let mut longer = fx.ct.clone();
    longer.extend_from_slice(b"extra");
    assert_decrypt_fails(&fx, &longer, 1, "trailing data");
}

#[test]
fn malformed_identity_file_is_a_usage_error() {
    let fx = fixture();
    let dir = fx.dir.path();
    let input = write(dir, "ct.age", &fx.ct);
    for (name, content) in [
        (
            "garbage.txt",
            &b"# created: today\nAGE-SECRET-KEY-1NOTAKEY\n"[..],
        ),
        ("empty.txt", &b"# nothing here\n"[..]),
        (
            "recipient.txt",
            &b"age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p\n"[..],
        ),
        ("binary.txt", &[0xff, 0xfe, 0x00, 0x01][..]),
    ] {
        let bad = write(dir, name, content);
        let before = listing(dir);
        let out_path = dir.join("plain.out");
        let out = run_cmd(
            &mut pal(&[
                "decrypt",
                "-i",
                path_str(&bad),
                path_str(&input),
                "-o",
                path_str(&out_path),
            ]),
            b"",
        );
        assert_failed_cleanly(&out, 2, name, dir, &before);
        // The secret-looking line is never echoed back.
        assert!(!stderr(&out).contains("NOTAKEY"), "{}", stderr(&out));
    }
}

#[test]
fn malformed_recipients_are_usage_errors() {
    let dir = tempdir();
    let input = write(dir.path(), "pt", b"data");
    let (id, recipient) = age_keygen(dir.path(), "id.txt");
    let before = listing(dir.path());
    let out_path = dir.path().join("ct.age");
    for bad in [
        "age1nope",
        "",
        "ssh-ed25519 AAAA",
        &recipient[..recipient.len() - 1],
    ] {
        let out = run_cmd(
            &mut pal(&[
                "encrypt",
                "-r",
                bad,
                path_str(&input),
                "-o",
                path_str(&out_path),
            ]),
            b"",
        );
        assert_failed_cleanly(&out, 2, "recipient", dir.path(), &before);
    }
    let bad_file = write(
        dir.path(),
        "rcpts.txt",
        format!("{recipient}\nnot-a-recipient\n").as_bytes(),
    );
    let secret_file = write(dir.path(), "oops.txt", &fs::read(&id).unwrap());
    let empty_file = write(dir.path(), "none.txt", b"# empty\n\n");
    let before = listing(dir.path());
    for (file, name) in [
        (&bad_file, "rcpts.txt"),
        (&secret_file, "oops.txt"),
        (&empty_file, "none.txt"),
    ] {
        let out = run_cmd(
            &mut pal(&[
                "encrypt",
                "-R",
                path_str(file),
                path_str(&input),
                "-o",
                path_str(&out_path),
            ]),
            b"",
        );
        assert_failed_cleanly(&out, 2, name, dir.path(), &before);
        assert!(
            !stderr(&out).contains("AGE-SECRET-KEY-1"),
            "secret echoed: {}",
            stderr(&out)
        );
    }
}

#[test]
fn missing_input_and_directory_input_are_usage_errors() {
    let dir = tempdir();
    let (id, recipient) = age_keygen(dir.path(), "id.txt");
    let sub = dir.path().join("sub");
    fs::create_dir(&sub).unwrap();
    let missing = dir.path().join("missing.age");
    let before = listing(dir.path());
    let out_path = dir.path().join("out");
    for input in [&missing, &sub] {
        let name = input.file_name().unwrap().to_str().unwrap();
        let out = run_cmd(
            &mut pal(&[
                "decrypt",
                "-i",
                path_str(&id),
                path_str(input),
                "-o",
                path_str(&out_path),
            ]),
            b"",
        );
        assert_failed_cleanly(&out, 2, name, dir.path(), &before);
        let out = run_cmd(
            &mut pal(&[
                "encrypt",
                "-r",
                &recipient,
                path_str(input),
                "-o",
                path_str(&out_path),
            ]),
            b"",
        );
        assert_failed_cleanly(&out, 2, name, dir.path(), &before);
    }
    // A missing identity or recipients file is named too.
    let out = run_cmd(&mut pal(&["decrypt", "-i", path_str(&missing)]), b"x");
    assert_failed_cleanly(&out, 2, "missing.age", dir.path(), &before);
    let out = run_cmd(&mut pal(&["encrypt", "-R", path_str(&missing)]), b"x");
    assert_failed_cleanly(&out, 2, "missing.age", dir.path(), &before);
}

#[test]
fn existing_output_is_not_overwritten_without_force() {
    let dir = tempdir();
    let (id, recipient) = age_keygen(dir.path(), "id.txt");
    let input = write(dir.path(), "pt", b"new contents");
    let existing = write(dir.path(), "out", b"old contents");
    let before = listing(dir.path());
    let out = run_cmd(
        &mut pal(&[
            "encrypt",
            "-r",
            &recipient,
            path_str(&input),
            "-o",
            path_str(&existing),
        ]),
        b"",
    );
    assert_failed_cleanly(&out, 2, "out", dir.path(), &before);
    assert_eq!(fs::read(&existing).unwrap(), b"old contents");

    let ct = write(
        dir.path(),
        "ct.age",
        &age_encrypt(&[&recipient], b"new contents"),
    );
    let before = listing(dir.path());
    let out = run_cmd(
        &mut pal(&[
            "decrypt",
            "-i",
            path_str(&id),
            path_str(&ct),
            "-o",
            path_str(&existing),
        ]),
        b"",
    );
    assert_failed_cleanly(&out, 2, "out", dir.path(), &before);
    assert_eq!(fs::read(&existing).unwrap(), b"old contents");

    let out = run_cmd(
        &mut pal(&[
            "decrypt",
            "-i",
            path_str(&id),
            path_str(&ct),
            "-o",
            path_str(&existing),
            "--force",
        ]),
        b"",
    );
    assert_code(&out, 0);
    assert_eq!(fs::read(&existing).unwrap(), b"new contents");
    assert_eq!(listing(dir.path()), before);
}

#[test]
fn a_failed_decryption_over_an_existing_file_keeps_it() {
    let fx = fixture();
    let dir = fx.dir.path();
    let mut bad = fx.ct.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    let input = write(dir, "bad.age", &bad);
    let existing = write(dir, "out", b"old contents");
    let before = listing(dir);
    let out = run_cmd(
        &mut pal(&[
            "decrypt",
            "-i",
            path_str(&fx.id),
            path_str(&input),
            "-o",
            path_str(&existing),
            "--force",
        ]),
        b"",
    );
    assert_failed_cleanly(&out, 1, "bad.age", dir, &before);
    assert_eq!(fs::read(&existing).unwrap(), b"old contents");
}
