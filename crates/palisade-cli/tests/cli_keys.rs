//! `palisade keygen rsa|p256|ed25519` and key-file handling, driven through the real binary:
//! the files Python's `cryptography` reads back, modes, no overwrite without `--force`, and
//! the one clear line for every kind of unusable key file.
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

/// Loads a private and a public PEM with Python and prints "<type> <size> <match>".
const PY_LOAD: &str = r#"
import sys
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa, ec, ed25519
priv = serialization.load_pem_private_key(open(sys.argv[1], 'rb').read(), None)
pub = serialization.load_pem_public_key(open(sys.argv[2], 'rb').read())
raw = lambda k: k.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
same = raw(priv.public_key()) == raw(pub)
if isinstance(priv, rsa.RSAPrivateKey):
    desc = f"rsa {priv.key_size}"
elif isinstance(priv, ec.EllipticCurvePrivateKey):
    desc = f"ec {priv.curve.name}"
elif isinstance(priv, ed25519.Ed25519PrivateKey):
    desc = "ed25519"
else:
    desc = "other"
print(desc, same)
"#;

fn keygen(dir: &Path, args: &[&str]) -> std::process::Output {
    let mut cmd = palisade();
    cmd.current_dir(dir).arg("keygen").args(args);
    run_cmd(&mut cmd, b"")
}

#[test]
fn generated_keys_are_pkcs8_and_spki_that_python_loads() {
    for (args, expect) in [
        (&["rsa", "--bits", "2048"][..], "rsa 2048 True"),
        (&["rsa"][..], "rsa 3072 True"),
        (&["p256"][..], "ec secp256r1 True"),
        (&["ed25519"][..], "ed25519 True"),
    ] {
        let dir = tempdir();
        let mut full = args.to_vec();
        full.extend_from_slice(&["-o", "key.pem", "--public-out", "pub.pem"]);
        let out = keygen(dir.path(), &full);
        assert_code(&out, 0);
        assert!(
            out.stdout.is_empty(),
            "nothing on stdout when --public-out is given"
        );
        let key = dir.path().join("key.pem");
        let public = dir.path().join("pub.pem");
        assert_eq!(mode(&key), 0o600, "{args:?}");
        assert_eq!(mode(&public), 0o644, "{args:?}");
        let text = fs::read_to_string(&key).unwrap();
        assert!(text.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{text}");
        assert!(
            fs::read_to_string(&public)
                .unwrap()
                .starts_with("-----BEGIN PUBLIC KEY-----\n")
        );
        let got = py(PY_LOAD, &[path_str(&key), path_str(&public)], b"");
        assert_eq!(String::from_utf8(got).unwrap().trim(), expect, "{args:?}");
        assert_eq!(listing(dir.path()), ["key.pem", "pub.pem"]);
    }
}

#[test]
fn public_key_goes_to_stdout_without_public_out() {
    let dir = tempdir();
    let out = keygen(dir.path(), &["ed25519", "-o", "key.pem"]);
    assert_code(&out, 0);
    let public = stdout(&out);
    assert!(
        public.starts_with("-----BEGIN PUBLIC KEY-----\n")
            && public.ends_with("-----END PUBLIC KEY-----\n")
    );
    fs::write(dir.path().join("pub.pem"), &public).unwrap();
    let got = py(
        PY_LOAD,
        &[
            path_str(&dir.path().join("key.pem")),
            path_str(&dir.path().join("pub.pem")),
        ],
        b"",
    );
    assert_eq!(String::from_utf8(got).unwrap().trim(), "ed25519 True");
}

#[test]
fn existing_files_are_not_overwritten_without_force() {
    let dir = tempdir();
    let key = dir.path().join("key.pem");
    let public = dir.path().join("pub.pem");

    // An existing private key file.
    fs::write(&key, "keep me").unwrap();
    let out = keygen(
        dir.path(),
        &["p256", "-o", "key.pem", "--public-out", "pub.pem"],
    );
    assert_code(&out, 2);
    assert_one_clear_line(&out, Some("key.pem"));
    assert_eq!(fs::read_to_string(&key).unwrap(), "keep me");
    assert_eq!(listing(dir.path()), ["key.pem"]);

    // An existing public key file: checked before anything is written, so no key.pem either.
    fs::remove_file(&key).unwrap();
    fs::write(&public, "keep me too").unwrap();
    let out = keygen(
        dir.path(),
        &["p256", "-o", "key.pem", "--public-out", "pub.pem"],
    );
    assert_code(&out, 2);
    assert_one_clear_line(&out, Some("pub.pem"));
    assert_eq!(fs::read_to_string(&public).unwrap(), "keep me too");
    assert_eq!(listing(dir.path()), ["pub.pem"]);

    // --force replaces both, and the private key is still 0600.
    fs::write(&key, "old").unwrap();
    let out = keygen(
        dir.path(),
        &[
            "p256",
            "-o",
            "key.pem",
            "--public-out",
            "pub.pem",
            "--force",
        ],
    );
    assert_code(&out, 0);
    assert!(
        fs::read_to_string(&key)
            .unwrap()
            .starts_with("-----BEGIN PRIVATE KEY-----")
    );
    assert!(
        fs::read_to_string(&public)
            .unwrap()
            .starts_with("-----BEGIN PUBLIC KEY-----")
    );
    assert_eq!(mode(&key), 0o600);
    assert_eq!(listing(dir.path()), ["key.pem", "pub.pem"]);
}

#[test]
fn unwritable_destinations_are_usage_errors() {
    let dir = tempdir();
    let out = keygen(dir.path(), &["ed25519", "-o", "missing/key.pem"]);
    assert_code(&out, 2);
    assert_one_clear_line(&out, Some("missing/key.pem"));
    let out = keygen(
        dir.path(),
        &["ed25519", "-o", "key.pem", "--public-out", "key.pem"],
    );
    assert_code(&out, 2);
    assert_one_clear_line(&out, Some("key.pem"));
    fs::create_dir(dir.path().join("sub")).unwrap();
    let out = keygen(dir.path(), &["ed25519", "-o", "sub"]);
    assert_code(&out, 2);
    assert_one_clear_line(&out, Some("sub"));
    let out = keygen(dir.path(), &["rsa", "--bits", "1024", "-o", "k.pem"]);
    assert_code(&out, 2);
    assert_eq!(listing(dir.path()), ["sub"]);
}

/// Writes the unusable key files of every kind with Python, then checks that `sign` (which
/// wants a private key) and `verify` (a public key) refuse each with exit 2 and one line
/// naming the file and the reason.
const PY_BAD_KEYS: &str = r#"
import sys, datetime
from cryptography import x509
from cryptography.x509.oid import NameOID
from cryptography.hazmat.primitives import serialization, hashes
from cryptography.hazmat.primitives.asymmetric import rsa, ec, ed25519
d = sys.argv[1]
S = serialization
def w(name, data): open(f"{d}/{name}", "wb").write(data)
rsa1024 = rsa.generate_private_key(65537, 1024)
w("rsa1024.pem", rsa1024.private_bytes(S.Encoding.PEM, S.PrivateFormat.PKCS8, S.NoEncryption()))
w("rsa1024_pub.pem", rsa1024.public_key().public_bytes(S.Encoding.PEM, S.PublicFormat.SubjectPublicKeyInfo))
p384 = ec.generate_private_key(ec.SECP384R1())
w("p384.pem", p384.private_bytes(S.Encoding.PEM, S.PrivateFormat.PKCS8, S.NoEncryption()))
w("p384_sec1.pem", p384.private_bytes(S.Encoding.PEM, S.PrivateFormat.TraditionalOpenSSL, S.NoEncryption()))
w("p384_pub.pem", p384.public_key().public_bytes(S.Encoding.PEM, S.PublicFormat.SubjectPublicKeyInfo))
ed = ed25519.Ed25519PrivateKey.generate()
w("enc_pkcs8.pem", ed.private_bytes(S.Encoding.PEM, S.PrivateFormat.PKCS8, S.BestAvailableEncryption(b"pw")))
p256 = ec.generate_private_key(ec.SECP256R1())
w("enc_legacy.pem", p256.private_bytes(S.Encoding.PEM, S.PrivateFormat.TraditionalOpenSSL, S.BestAvailableEncryption(b"pw")))
w("ed_pub.pem", ed.public_key().public_bytes(S.Encoding.PEM, S.PublicFormat.SubjectPublicKeyInfo))
w("ed_priv.pem", ed.private_bytes(S.Encoding.PEM, S.PrivateFormat.PKCS8, S.NoEncryption()))
name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "t")])
now = datetime.datetime.now(datetime.timezone.utc)
cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(p256.public_key())
        .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
        .sign(p256, hashes.SHA256()))
w("cert.pem", cert.public_bytes(S.Encoding.PEM))
w("der.key", p256.private_bytes(S.Encoding.DER, S.PrivateFormat.PKCS8, S.NoEncryption()))
"#;

#[test]
fn unusable_key_files_get_one_clear_line_and_exit_2() {
    let dir = tempdir();
    let d = dir.path();
    py(PY_BAD_KEYS, &[path_str(d)], b"");
    fs::write(d.join("garbage.pem"), "not a key at all\n").unwrap();
    fs::write(d.join("empty.pem"), "").unwrap();
    fs::write(
        d.join("bad_base64.pem"),
        "-----BEGIN PRIVATE KEY-----\n!!!not base64!!!\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    fs::write(
        d.join("bad_der.pem"),
        "-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    fs::write(
        d.join("truncated.pem"),
        "-----BEGIN PRIVATE KEY-----\nMIIB\n",
    )
    .unwrap();
    fs::write(d.join("msg"), "message").unwrap();
    fs::write(d.join("sig"), "signature").unwrap();
    fs::create_dir(d.join("dir.pem")).unwrap();
    let before = listing(d);

    // (file, reason fragment) for a private key argument.
    let private_cases = [
        ("rsa1024.pem", "1024 bits"),
        ("p384.pem", "P-384"),
        ("p384_sec1.pem", "P-384"),
        ("enc_pkcs8.pem", "encrypted"),
        ("enc_legacy.pem", "encrypted"),
        ("ed_pub.pem", "public key"),
        ("cert.pem", "certificate"),
        ("der.key", "not a PEM"),
        ("garbage.pem", "not a PEM"),
        ("empty.pem", "not a PEM"),
        ("bad_base64.pem", "malformed PEM"),
        ("bad_der.pem", "malformed"),
        ("truncated.pem", "malformed PEM"),
        ("missing.pem", "No such file"),
        ("dir.pem", "directory"),
    ];
    for (file, reason) in private_cases {
        let mut cmd = palisade();
        cmd.current_dir(d)
            .args(["sign", "--private-key", file, "msg", "-o", "out.sig"]);
        let out = run_cmd(&mut cmd, b"");
        assert_code(&out, 2);
        assert_one_clear_line(&out, Some(file));
        assert!(stderr(&out).contains(reason), "{file}: {}", stderr(&out));
    }
    let public_cases = [
        ("rsa1024_pub.pem", "1024 bits"),
        ("p384_pub.pem", "P-384"),
        ("ed_priv.pem", "private key"),
        ("enc_pkcs8.pem", "private key"),
        ("cert.pem", "certificate"),
        ("garbage.pem", "not a PEM"),
        ("missing.pem", "No such file"),
    ];
    for (file, reason) in public_cases {
        let mut cmd = palisade();
        cmd.current_dir(d)
            .args(["verify", "--public-key", file, "--signature", "sig", "msg"]);
        let out = run_cmd(&mut cmd, b"");
        assert_code(&out, 2);
        assert_one_clear_line(&out, Some(file));
        assert!(stderr(&out).contains(reason), "{file}: {}", stderr(&out));
        assert!(out.stdout.is_empty());
    }
    assert_eq!(listing(d), before, "a failed command left a file behind");
}
