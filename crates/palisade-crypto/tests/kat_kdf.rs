//! Password KDFs against the published RFC vectors in `shared/vectors/rfc`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::{load_json, unhex};
use palisade_crypto::kdf;

fn s<'a>(t: &'a serde_json::Value, k: &str) -> &'a str {
    t[k].as_str()
        .unwrap_or_else(|| panic!("{k} missing in {t}"))
}

fn n(t: &serde_json::Value, k: &str) -> u64 {
    t[k].as_u64()
        .unwrap_or_else(|| panic!("{k} missing in {t}"))
}

#[test]
fn rfc7914_pbkdf2_hmac_sha256() {
    let v = load_json("rfc/rfc7914_pbkdf2_hmac_sha256.json");
    let tests = v["tests"].as_array().unwrap();
    assert_eq!(tests.len(), 2);
    for t in tests {
        let expected = unhex(s(t, "derivedKey"));
        let mut out = vec![0u8; n(t, "dkLen") as usize];
        kdf::pbkdf2_hmac_sha256(
            s(t, "password").as_bytes(),
            s(t, "salt").as_bytes(),
            n(t, "iterations") as u32,
            &mut out,
        )
        .unwrap();
        assert_eq!(out, expected, "tcId {}", t["tcId"]);
        // One fewer iteration must give a different key (the count is really used).
        if n(t, "iterations") > 1 {
            kdf::pbkdf2_hmac_sha256(
                s(t, "password").as_bytes(),
                s(t, "salt").as_bytes(),
                n(t, "iterations") as u32 - 1,
                &mut out,
            )
            .unwrap();
            assert_ne!(out, expected);
        }
    }
}

/// tcId 4 (N = 2^20, r = 8: 1 GiB of memory and several seconds) is flagged `slow: true`
/// in the vector file and skipped here; the other three run on every test run.
#[test]
fn rfc7914_scrypt() {
    let v = load_json("rfc/rfc7914_scrypt.json");
    let mut ran = 0;
    for t in v["tests"].as_array().unwrap() {
        if t["slow"].as_bool() == Some(true) {
            continue;
        }
        let log_n = n(t, "logN") as u8;
        assert_eq!(1u64 << log_n, n(t, "N"));
        let mut out = vec![0u8; n(t, "dkLen") as usize];
        kdf::scrypt(
            s(t, "password").as_bytes(),
            s(t, "salt").as_bytes(),
            log_n,
            n(t, "r") as u32,
            n(t, "p") as u32,
            &mut out,
        )
        .unwrap();
        assert_eq!(hex::encode(&out), s(t, "derivedKey"), "tcId {}", t["tcId"]);
        ran += 1;
    }
    assert_eq!(ran, 3, "expected the three fast RFC 7914 vectors");
}

#[test]
fn rfc9106_argon2id_with_secret_and_associated_data() {
    let v = load_json("rfc/rfc9106_argon2id.json");
    let tests = v["tests"].as_array().unwrap();
    assert_eq!(tests.len(), 1);
    for t in tests {
        assert_eq!(s(t, "type"), "Argon2id");
        assert_eq!(n(t, "version"), 0x13);
        let password = unhex(s(t, "password"));
        let salt = unhex(s(t, "salt"));
        let secret = unhex(s(t, "secret"));
        let ad = unhex(s(t, "associatedData"));
        let (m, tc, p) = (
            n(t, "memoryKiB") as u32,
            n(t, "passes") as u32,
            n(t, "parallelism") as u32,
        );
        let mut out = vec![0u8; n(t, "tagLength") as usize];
        kdf::argon2id(
            &password,
            &salt,
            Some(&secret),
            Some(&ad),
            m,
            tc,
            p,
            &mut out,
        )
        .unwrap();
        assert_eq!(hex::encode(&out), s(t, "tag"));
        // K and X are bound into the tag: leaving either out changes it.
        kdf::argon2id(&password, &salt, None, Some(&ad), m, tc, p, &mut out).unwrap();
        assert_ne!(hex::encode(&out), s(t, "tag"));
        kdf::argon2id(&password, &salt, Some(&secret), None, m, tc, p, &mut out).unwrap();
        assert_ne!(hex::encode(&out), s(t, "tag"));
    }
}
