//! Our side of `bench/crypto_ops.sh`: operations per second for the operations and sizes that
//! `bench/python_ops.py` measures with Python's `cryptography`, printed as one JSON object.
//! Each operation runs for about `BENCH_SECONDS` (default 2) after one warm-up call.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use palisade_crypto::keys::{PrivateKey, RsaBits};
use palisade_crypto::signature::{self, SignatureFormat};
use palisade_crypto::{fernet, rsa_oaep};

fn rate(seconds: f64, mut f: impl FnMut()) -> f64 {
    f();
    let start = Instant::now();
    let mut n = 0u64;
    loop {
        f();
        n += 1;
        let elapsed = start.elapsed().as_secs_f64();
        if elapsed >= seconds && n >= 3 {
            return n as f64 / elapsed;
        }
    }
}

fn main() {
    let seconds: f64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    let mut out: Vec<(&str, f64)> = Vec::new();

    let key = fernet::Key::generate().unwrap();
    let keys = [key];
    for (name, size) in [
        ("fernet_roundtrip_1KiB", 1024usize),
        ("fernet_roundtrip_64MiB", 64 << 20),
    ] {
        let msg = palisade_crypto::random::bytes(size).unwrap();
        out.push((
            name,
            rate(seconds, || {
                let token = fernet::encrypt(&keys[0], &msg, 1_700_000_000).unwrap();
                let plain = fernet::decrypt(&keys, token.as_bytes(), None, 1_700_000_000).unwrap();
                assert_eq!(plain.len(), msg.len());
            }),
        ));
    }

    let rsa = PrivateKey::generate_rsa(RsaBits::B3072).unwrap();
    let rsa_pub = rsa.public_key().unwrap();
    let ct = rsa_oaep::encrypt(&rsa_pub, &[b'x'; 32], None).unwrap();
    out.push((
        "rsa3072_oaep_decrypt",
        rate(seconds, || {
            rsa_oaep::decrypt(&rsa, &ct, None).unwrap();
        }),
    ));
    let msg = [b'm'; 1024];
    out.push((
        "rsa3072_pss_sign",
        rate(seconds, || {
            signature::sign(&rsa, &msg, SignatureFormat::Der).unwrap();
        }),
    ));

    for (kind, key) in [
        ("p256", PrivateKey::generate_p256().unwrap()),
        ("ed25519", PrivateKey::generate_ed25519().unwrap()),
    ] {
        let public = key.public_key().unwrap();
        let sig = signature::sign(&key, &msg, SignatureFormat::Der).unwrap();
        let sign_rate = rate(seconds, || {
            signature::sign(&key, &msg, SignatureFormat::Der).unwrap();
        });
        let verify_rate = rate(seconds, || {
            assert!(signature::verify(&public, &msg, &sig, SignatureFormat::Der).unwrap());
        });
        out.push((
            if kind == "p256" {
                "p256_sign"
            } else {
                "ed25519_sign"
            },
            sign_rate,
        ));
        out.push((
            if kind == "p256" {
                "p256_verify"
            } else {
                "ed25519_verify"
            },
            verify_rate,
        ));
    }

    let body: Vec<String> = out
        .iter()
        .map(|(k, v)| format!("\"{k}\": {v:.3}"))
        .collect();
    println!("{{{}}}", body.join(", "));
}
