//! `palisade sign` / `palisade verify` through the real binary, against Python's
//! `cryptography` both ways: RSA-PSS (including Python's `PSS.MAX_LENGTH` and salt-0
//! signatures), ECDSA P-256 in DER and P1363, Ed25519; keys in every accepted PEM form; and
//! the failure shapes (FAILED exit 1, usage errors exit 2).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::fs;

use common::*;

/// Python keys in every form the contract accepts, plus their SPKI public keys.
const PY_KEYS: &str = r#"
import sys
from cryptography.hazmat.primitives import serialization as S
from cryptography.hazmat.primitives.asymmetric import rsa, ec, ed25519
d = sys.argv[1]
def w(name, data): open(f"{d}/{name}", "wb").write(data)
def pub(k): return k.public_key().public_bytes(S.Encoding.PEM, S.PublicFormat.SubjectPublicKeyInfo)
r = rsa.generate_private_key(65537, 2048)
w("rsa_pkcs8.pem", r.private_bytes(S.Encoding.PEM, S.PrivateFormat.PKCS8, S.NoEncryption()))
w("rsa_pkcs1.pem", r.private_bytes(S.Encoding.PEM, S.PrivateFormat.TraditionalOpenSSL, S.NoEncryption()))
w("rsa_pub.pem", pub(r))
e = ec.generate_private_key(ec.SECP256R1())
w("ec_pkcs8.pem", e.private_bytes(S.Encoding.PEM, S.PrivateFormat.PKCS8, S.NoEncryption()))
w("ec_sec1.pem", e.private_bytes(S.Encoding.PEM, S.PrivateFormat.TraditionalOpenSSL, S.NoEncryption()))
w("ec_pub.pem", pub(e))
x = ed25519.Ed25519PrivateKey.generate()
w("ed_pkcs8.pem", x.private_bytes(S.Encoding.PEM, S.PrivateFormat.PKCS8, S.NoEncryption()))
w("ed_pub.pem", pub(x))
"#;

/// argv: kind pubkey msgfile sigfile → prints OK or raises.
const PY_VERIFY: &str = r#"
import sys
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, ec, utils
kind, pub, msg, sig = sys.argv[1], sys.argv[2], open(sys.argv[3],'rb').read(), open(sys.argv[4],'rb').read()
k = serialization.load_pem_public_key(open(pub,'rb').read())
if kind == "rsa":
    # Exactly salt 32: the contract fixes what `sign` produces.
    k.verify(sig, msg, padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())
elif kind == "ecdsa":
    k.verify(sig, msg, ec.ECDSA(hashes.SHA256()))
elif kind == "p1363":
    assert len(sig) == 64
    der = utils.encode_dss_signature(int.from_bytes(sig[:32], 'big'), int.from_bytes(sig[32:], 'big'))
    k.verify(der, msg, ec.ECDSA(hashes.SHA256()))
elif kind == "ed25519":
    k.verify(sig, msg)
print("OK")
"#;

/// argv: kind key msgfile → writes the signature to stdout.
const PY_SIGN: &str = r#"
import sys
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, ec, utils
kind, key, msg = sys.argv[1], sys.argv[2], open(sys.argv[3],'rb').read()
k = serialization.load_pem_private_key(open(key,'rb').read(), None)
salts = {"pss_max": padding.PSS.MAX_LENGTH, "pss_digest": padding.PSS.DIGEST_LENGTH, "pss_0": 0, "pss_32": 32, "pss_20": 20}
if kind in salts:
    sig = k.sign(msg, padding.PSS(padding.MGF1(hashes.SHA256()), salts[kind]), hashes.SHA256())
elif kind == "ecdsa":
    sig = k.sign(msg, ec.ECDSA(hashes.SHA256()))
elif kind == "p1363":
    r, s = utils.decode_dss_signature(k.sign(msg, ec.ECDSA(hashes.SHA256())))
    sig = r.to_bytes(32, 'big') + s.to_bytes(32, 'big')
elif kind == "ed25519":
    sig = k.sign(msg)
sys.stdout.buffer.write(sig)
"#;

fn setup() -> tempfile::TempDir {
    let dir = tempdir();
    py(PY_KEYS, &[path_str(dir.path())], b"");
    fs::write(dir.path().join("msg"), b"the message to sign\n").unwrap();
    dir
}

#[test]
fn palisade_signs_python_verifies_every_key_form() {
    let dir = setup();
    let d = dir.path();
    for (key, public, format, py_kind) in [
        ("rsa_pkcs8.pem", "rsa_pub.pem", "der", "rsa"),
        ("rsa_pkcs1.pem", "rsa_pub.pem", "der", "rsa"),
        ("ec_pkcs8.pem", "ec_pub.pem", "der", "ecdsa"),
        ("ec_sec1.pem", "ec_pub.pem", "der", "ecdsa"),
        ("ec_pkcs8.pem", "ec_pub.pem", "p1363", "p1363"),
        ("ec_sec1.pem", "ec_pub.pem", "p1363", "p1363"),
        ("ed_pkcs8.pem", "ed_pub.pem", "der", "ed25519"),
    ] {
        let out = in_dir(
            d,
            &[
                "sign",
                "--private-key",
                key,
                "--format",
                format,
                "msg",
                "-o",
                "msg.sig",
            ],
            b"",
        );
        assert_code(&out, 0);
        assert!(out.stdout.is_empty());
        let ok = py(
            PY_VERIFY,
            &[
                py_kind,
                path_str(&d.join(public)),
                path_str(&d.join("msg")),
                path_str(&d.join("msg.sig")),
            ],
            b"",
        );
        assert_eq!(ok, b"OK\n", "{key} {format}");
        // And palisade verifies its own signature.
        let out = in_dir(
            d,
            &[
                "verify",
                "--public-key",
                public,
                "--signature",
                "msg.sig",
                "--format",
                format,
                "msg",
            ],
            b"",
        );
        assert_code(&out, 0);
        assert_eq!(stdout(&out), "OK\n");
        fs::remove_file(d.join("msg.sig")).unwrap();
    }
    // Message on stdin, signature on stdout (the default --format der is fine for Ed25519).
    let out = in_dir(
        d,
        &["sign", "--private-key", "ed_pkcs8.pem"],
        b"stdin message",
    );
    assert_code(&out, 0);
    assert_eq!(out.stdout.len(), 64);
    fs::write(d.join("s"), &out.stdout).unwrap();
    let out = in_dir(
        d,
        &[
            "verify",
            "--public-key",
            "ed_pub.pem",
            "--signature",
            "s",
            "-",
        ],
        b"stdin message",
    );
    assert_code(&out, 0);
}

#[test]
fn python_signs_palisade_verifies_including_any_pss_salt() {
    let dir = setup();
    let d = dir.path();
    for (kind, key, public, format) in [
        ("pss_max", "rsa_pkcs8.pem", "rsa_pub.pem", "der"),
        ("pss_0", "rsa_pkcs8.pem", "rsa_pub.pem", "der"),
        ("pss_20", "rsa_pkcs8.pem", "rsa_pub.pem", "der"),
        ("pss_32", "rsa_pkcs8.pem", "rsa_pub.pem", "der"),
        ("pss_digest", "rsa_pkcs8.pem", "rsa_pub.pem", "der"),
        ("ecdsa", "ec_pkcs8.pem", "ec_pub.pem", "der"),
        ("p1363", "ec_pkcs8.pem", "ec_pub.pem", "p1363"),
        ("ed25519", "ed_pkcs8.pem", "ed_pub.pem", "der"),
    ] {
        let sig = py(
            PY_SIGN,
            &[kind, path_str(&d.join(key)), path_str(&d.join("msg"))],
            b"",
        );
        fs::write(d.join("py.sig"), &sig).unwrap();
        let out = in_dir(
            d,
            &[
                "verify",
                "--public-key",
                public,
                "--signature",
                "py.sig",
                "--format",
                format,
                "msg",
            ],
            b"",
        );
        assert_code(&out, 0);
        assert_eq!(stdout(&out), "OK\n", "{kind}");
        assert!(out.stderr.is_empty());

        // The same signature over another message: FAILED, exit 1, one clear line.
        let out = in_dir(
            d,
            &[
                "verify",
                "--public-key",
                public,
                "--signature",
                "py.sig",
                "--format",
                format,
                "-",
            ],
            b"another message",
        );
        assert_code(&out, 1);
        assert_eq!(stdout(&out), "FAILED\n", "{kind}");
        assert_one_clear_line(&out, Some("py.sig"));

        // Every single-byte change of the signature fails (a sample of positions).
        for i in [0, sig.len() / 2, sig.len() - 1] {
            let mut bad = sig.clone();
            bad[i] ^= 0x10;
            fs::write(d.join("bad.sig"), &bad).unwrap();
            let out = in_dir(
                d,
                &[
                    "verify",
                    "--public-key",
                    public,
                    "--signature",
                    "bad.sig",
                    "--format",
                    format,
                    "msg",
                ],
                b"",
            );
            assert_code(&out, 1);
            assert_eq!(stdout(&out), "FAILED\n", "{kind} byte {i}");
        }
        // Wrong lengths are FAILED too, not input errors.
        for bad in [
            &sig[..sig.len() - 1],
            &[][..],
            &[sig.clone(), vec![0]].concat()[..],
        ] {
            fs::write(d.join("bad.sig"), bad).unwrap();
            let out = in_dir(
                d,
                &[
                    "verify",
                    "--public-key",
                    public,
                    "--signature",
                    "bad.sig",
                    "--format",
                    format,
                    "msg",
                ],
                b"",
            );
            assert_code(&out, 1);
            assert_eq!(stdout(&out), "FAILED\n", "{kind} length {}", bad.len());
        }
    }
}

#[test]
fn der_and_p1363_are_not_interchangeable() {
    let dir = setup();
    let d = dir.path();
    let der = py(
        PY_SIGN,
        &[
            "ecdsa",
            path_str(&d.join("ec_pkcs8.pem")),
            path_str(&d.join("msg")),
        ],
        b"",
    );
    fs::write(d.join("der.sig"), der).unwrap();
    let out = in_dir(
        d,
        &[
            "verify",
            "--public-key",
            "ec_pub.pem",
            "--signature",
            "der.sig",
            "--format",
            "p1363",
            "msg",
        ],
        b"",
    );
    assert_code(&out, 1);
    assert_eq!(stdout(&out), "FAILED\n");
}

#[test]
fn usage_errors_are_exit_2_with_one_line() {
    let dir = setup();
    let d = dir.path();
    let before = listing(d);
    // --format p1363 is for ECDSA keys only.
    for key in ["rsa_pkcs8.pem", "ed_pkcs8.pem"] {
        let out = in_dir(
            d,
            &[
                "sign",
                "--private-key",
                key,
                "--format",
                "p1363",
                "msg",
                "-o",
                "x.sig",
            ],
            b"",
        );
        assert_code(&out, 2);
        assert_one_clear_line(&out, Some(key));
        assert!(stderr(&out).contains("ECDSA"));
    }
    let out = in_dir(
        d,
        &[
            "verify",
            "--public-key",
            "rsa_pub.pem",
            "--signature",
            "msg",
            "--format",
            "p1363",
            "msg",
        ],
        b"",
    );
    assert_code(&out, 2);
    assert_one_clear_line(&out, Some("rsa_pub.pem"));
    // Private key given to verify, public key given to sign.
    let out = in_dir(
        d,
        &[
            "verify",
            "--public-key",
            "ec_pkcs8.pem",
            "--signature",
            "msg",
            "msg",
        ],
        b"",
    );
    assert_code(&out, 2);
    assert_one_clear_line(&out, Some("ec_pkcs8.pem"));
    let out = in_dir(d, &["sign", "--private-key", "ec_pub.pem", "msg"], b"");
    assert_code(&out, 2);
    assert_one_clear_line(&out, Some("ec_pub.pem"));
    // Missing signature file, missing message, directory as message.
    let out = in_dir(
        d,
        &[
            "verify",
            "--public-key",
            "ec_pub.pem",
            "--signature",
            "nope.sig",
            "msg",
        ],
        b"",
    );
    assert_code(&out, 2);
    assert_one_clear_line(&out, Some("nope.sig"));
    let out = in_dir(
        d,
        &[
            "sign",
            "--private-key",
            "ec_pkcs8.pem",
            "nope",
            "-o",
            "x.sig",
        ],
        b"",
    );
    assert_code(&out, 2);
    assert_one_clear_line(&out, Some("nope"));
    let out = in_dir(
        d,
        &[
            "verify",
            "--public-key",
            "ec_pub.pem",
            "--signature",
            "msg",
            ".",
        ],
        b"",
    );
    assert_code(&out, 2);
    assert_one_clear_line(&out, None);
    assert_eq!(listing(d), before, "a failed command left a file behind");

    // An existing signature file is kept without --force.
    assert_kept_without_force(
        d,
        &[
            "sign",
            "--private-key",
            "ed_pkcs8.pem",
            "msg",
            "-o",
            "old.sig",
        ],
        b"",
        "old.sig",
    );
    assert_eq!(fs::read(d.join("old.sig")).unwrap().len(), 64);
}

#[test]
fn palisade_keys_sign_and_python_verifies() {
    let dir = tempdir();
    let d = dir.path();
    fs::write(d.join("msg"), b"m").unwrap();
    for (kind, py_kind) in [("p256", "ecdsa"), ("ed25519", "ed25519"), ("rsa", "rsa")] {
        let out = in_dir(
            d,
            &[
                "keygen",
                kind,
                "--force",
                "-o",
                "k.pem",
                "--public-out",
                "p.pem",
            ],
            b"",
        );
        assert_code(&out, 0);
        let out = in_dir(
            d,
            &[
                "sign",
                "--private-key",
                "k.pem",
                "msg",
                "-o",
                "s",
                "--force",
            ],
            b"",
        );
        assert_code(&out, 0);
        let ok = py(
            PY_VERIFY,
            &[
                py_kind,
                path_str(&d.join("p.pem")),
                path_str(&d.join("msg")),
                path_str(&d.join("s")),
            ],
            b"",
        );
        assert_eq!(ok, b"OK\n", "{kind}");
    }
}
