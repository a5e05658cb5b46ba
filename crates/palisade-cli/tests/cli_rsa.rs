//! `palisade rsa encrypt|decrypt` through the real binary, against Python's `cryptography`
//! both ways (PKCS#8 and PKCS#1 keys), plus limits, tampering and wrong keys.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::fs;
use std::path::Path;

use common::*;

const OAEP: &str =
    "padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)";

/// Writes a Python-generated RSA key pair: key_pkcs8.pem, key_pkcs1.pem, pub.pem, pub_pkcs1.pem.
fn python_rsa_key(dir: &Path, bits: u32) {
    let script = r#"
import sys
from cryptography.hazmat.primitives import serialization as S
from cryptography.hazmat.primitives.asymmetric import rsa
d, bits = sys.argv[1], int(sys.argv[2])
k = rsa.generate_private_key(65537, bits)
open(f"{d}/key_pkcs8.pem", "wb").write(k.private_bytes(S.Encoding.PEM, S.PrivateFormat.PKCS8, S.NoEncryption()))
open(f"{d}/key_pkcs1.pem", "wb").write(k.private_bytes(S.Encoding.PEM, S.PrivateFormat.TraditionalOpenSSL, S.NoEncryption()))
open(f"{d}/pub.pem", "wb").write(k.public_key().public_bytes(S.Encoding.PEM, S.PublicFormat.SubjectPublicKeyInfo))
open(f"{d}/pub_pkcs1.pem", "wb").write(k.public_key().public_bytes(S.Encoding.PEM, S.PublicFormat.PKCS1))
"#;
    py(script, &[path_str(dir), &bits.to_string()], b"");
}

#[test]
fn python_encrypts_palisade_decrypts_pkcs8_and_pkcs1() {
    let dir = tempdir();
    let d = dir.path();
    python_rsa_key(d, 2048);
    let msg = b"attack at dawn \x00\xff";
    let ct = py(
        &format!(
            "import sys\nfrom cryptography.hazmat.primitives import hashes, serialization\nfrom cryptography.hazmat.primitives.asymmetric import padding\n\
             k = serialization.load_pem_public_key(open(sys.argv[1],'rb').read())\n\
             sys.stdout.buffer.write(k.encrypt(sys.stdin.buffer.read(), {OAEP}))"
        ),
        &[path_str(&d.join("pub.pem"))],
        msg,
    );
    assert_eq!(ct.len(), 256);
    for key in ["key_pkcs8.pem", "key_pkcs1.pem"] {
        // Raw ciphertext on stdin, plaintext on stdout.
        let out = in_dir(d, &["rsa", "decrypt", "--private-key", key], &ct);
        assert_code(&out, 0);
        assert_eq!(out.stdout, msg, "{key}");
        // Hex with surrounding whitespace, from a file, to -o (mode 0600).
        fs::write(d.join("ct.hex"), format!("\n  {}\r\n\n", hex::encode(&ct))).unwrap();
        let out = in_dir(
            d,
            &[
                "rsa",
                "decrypt",
                "--private-key",
                key,
                "--hex",
                "ct.hex",
                "-o",
                "plain",
            ],
            b"",
        );
        assert_code(&out, 0);
        assert_eq!(fs::read(d.join("plain")).unwrap(), msg);
        assert_eq!(mode(&d.join("plain")), 0o600);
        fs::remove_file(d.join("plain")).unwrap();
    }
}

#[test]
fn palisade_encrypts_python_decrypts() {
    let dir = tempdir();
    let d = dir.path();
    python_rsa_key(d, 3072);
    let decrypt = format!(
        "import sys\nfrom cryptography.hazmat.primitives import hashes, serialization\nfrom cryptography.hazmat.primitives.asymmetric import padding\n\
         k = serialization.load_pem_private_key(open(sys.argv[1],'rb').read(), None)\n\
         sys.stdout.buffer.write(k.decrypt(sys.stdin.buffer.read(), {OAEP}))"
    );
    let msg = vec![0x5a; 3072 / 8 - 66];
    for public in ["pub.pem", "pub_pkcs1.pem"] {
        let out = in_dir(d, &["rsa", "encrypt", "--public-key", public], &msg);
        assert_code(&out, 0);
        assert_eq!(out.stdout.len(), 384);
        assert_eq!(
            py(&decrypt, &[path_str(&d.join("key_pkcs8.pem"))], &out.stdout),
            msg
        );

        let out = in_dir(
            d,
            &["rsa", "encrypt", "--public-key", public, "--hex"],
            b"hi",
        );
        assert_code(&out, 0);
        let text = stdout(&out);
        assert!(text.ends_with('\n') && text.trim_end() == text.trim_end().to_lowercase());
        assert_eq!(text.trim_end().len(), 768);
        let ct = hex::decode(text.trim_end()).unwrap();
        assert_eq!(
            py(&decrypt, &[path_str(&d.join("key_pkcs8.pem"))], &ct),
            b"hi"
        );
    }
}

#[test]
fn palisade_round_trip_with_its_own_keys() {
    let dir = tempdir();
    let d = dir.path();
    let out = in_dir(
        d,
        &[
            "keygen",
            "rsa",
            "--bits",
            "2048",
            "-o",
            "k.pem",
            "--public-out",
            "p.pem",
        ],
        b"",
    );
    assert_code(&out, 0);
    fs::write(d.join("msg"), b"").unwrap();
    let out = in_dir(
        d,
        &["rsa", "encrypt", "--public-key", "p.pem", "msg", "-o", "ct"],
        b"",
    );
    assert_code(&out, 0);
    let out = in_dir(d, &["rsa", "decrypt", "--private-key", "k.pem", "ct"], b"");
    assert_code(&out, 0);
    assert!(out.stdout.is_empty());
}

#[test]
fn over_limit_plaintext_is_exit_2_naming_the_limit() {
    let dir = tempdir();
    let d = dir.path();
    python_rsa_key(d, 2048);
    fs::write(d.join("big"), vec![1u8; 191]).unwrap();
    let before = listing(d);
    let out = in_dir(
        d,
        &[
            "rsa",
            "encrypt",
            "--public-key",
            "pub.pem",
            "big",
            "-o",
            "ct",
        ],
        b"",
    );
    assert_code(&out, 2);
    assert_one_clear_line(&out, Some("big"));
    assert!(stderr(&out).contains("190 bytes"), "{}", stderr(&out));
    assert_eq!(listing(d), before);
    // Exactly at the limit is fine.
    let out = in_dir(
        d,
        &["rsa", "encrypt", "--public-key", "pub.pem"],
        &[1u8; 190],
    );
    assert_code(&out, 0);
}

#[test]
fn tampered_or_truncated_ciphertext_is_exit_1_with_no_output() {
    let dir = tempdir();
    let d = dir.path();
    python_rsa_key(d, 2048);
    let out = in_dir(d, &["rsa", "encrypt", "--public-key", "pub.pem"], b"secret");
    assert_code(&out, 0);
    let ct = out.stdout;
    let mut flipped = ct.clone();
    flipped[17] ^= 0x01;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("flipped", flipped),
        ("truncated", ct[..255].to_vec()),
        ("extended", [ct.clone(), vec![0]].concat()),
        ("empty", vec![]),
    ];
    for (name, bad) in cases {
        fs::write(d.join(name), &bad).unwrap();
        let before = listing(d);
        let out = in_dir(
            d,
            &[
                "rsa",
                "decrypt",
                "--private-key",
                "key_pkcs8.pem",
                name,
                "-o",
                "plain",
            ],
            b"",
        );
        assert_code(&out, 1);
        assert_one_clear_line(&out, Some(name));
        assert_eq!(
            listing(d),
            before,
            "{name}: output or temporary file left behind"
        );
        // To stdout: nothing printed either.
        let out = in_dir(
            d,
            &["rsa", "decrypt", "--private-key", "key_pkcs8.pem"],
            &bad,
        );
        assert_code(&out, 1);
        assert!(out.stdout.is_empty());
    }
    // The right ciphertext under another key: also a failed check.
    let other = tempdir();
    python_rsa_key(other.path(), 2048);
    let out = in_dir(
        d,
        &[
            "rsa",
            "decrypt",
            "--private-key",
            path_str(&other.path().join("key_pkcs8.pem")),
        ],
        &ct,
    );
    assert_code(&out, 1);
    assert_one_clear_line(&out, None);
}

#[test]
fn wrong_key_types_and_bad_input_are_exit_2() {
    let dir = tempdir();
    let d = dir.path();
    python_rsa_key(d, 2048);
    for (kind, file) in [("ed25519", "ed.pem"), ("p256", "ec.pem")] {
        let out = in_dir(
            d,
            &[
                "keygen",
                kind,
                "-o",
                file,
                "--public-out",
                &format!("pub_{file}"),
            ],
            b"",
        );
        assert_code(&out, 0);
    }
    let out = in_dir(d, &["rsa", "encrypt", "--public-key", "pub_ed.pem"], b"x");
    assert_code(&out, 2);
    assert_one_clear_line(&out, Some("pub_ed.pem"));
    assert!(stderr(&out).contains("wrong key type"));
    let out = in_dir(d, &["rsa", "decrypt", "--private-key", "ec.pem"], &[0; 256]);
    assert_code(&out, 2);
    assert_one_clear_line(&out, Some("ec.pem"));
    assert!(stderr(&out).contains("wrong key type"));
    // A public key where the private one belongs, and the reverse.
    let out = in_dir(
        d,
        &["rsa", "decrypt", "--private-key", "pub.pem"],
        &[0; 256],
    );
    assert_code(&out, 2);
    assert_one_clear_line(&out, Some("pub.pem"));
    let out = in_dir(
        d,
        &["rsa", "encrypt", "--public-key", "key_pkcs8.pem"],
        b"x",
    );
    assert_code(&out, 2);
    assert_one_clear_line(&out, Some("key_pkcs8.pem"));
    // Not hex with --hex.
    let out = in_dir(
        d,
        &["rsa", "decrypt", "--private-key", "key_pkcs8.pem", "--hex"],
        b"zz not hex",
    );
    assert_code(&out, 2);
    assert_one_clear_line(&out, None);
    // Missing input and a directory as input.
    let out = in_dir(
        d,
        &["rsa", "encrypt", "--public-key", "pub.pem", "nope"],
        b"",
    );
    assert_code(&out, 2);
    assert_one_clear_line(&out, Some("nope"));
    let out = in_dir(d, &["rsa", "encrypt", "--public-key", "pub.pem", "."], b"");
    assert_code(&out, 2);
    assert_one_clear_line(&out, None);
}

#[test]
fn existing_output_is_kept_without_force() {
    let dir = tempdir();
    let d = dir.path();
    python_rsa_key(d, 2048);
    assert_kept_without_force(
        d,
        &["rsa", "encrypt", "--public-key", "pub.pem", "-o", "ct"],
        b"x",
        "ct",
    );
    assert_eq!(fs::read(d.join("ct")).unwrap().len(), 256);
}
