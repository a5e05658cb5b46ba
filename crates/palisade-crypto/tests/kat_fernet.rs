//! Fernet against the spec's own vectors (generate, verify, invalid) and property tests:
//! arbitrary messages round-trip, and any single flipped bit in a token is rejected.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE;
use palisade_crypto::fernet::{self, FernetError, Key};
use proptest::prelude::*;
use serde_json::Value;

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Unix seconds of an RFC 3339 time such as `1985-10-26T01:20:00-07:00` (or `…Z`).
fn rfc3339_to_unix(s: &str) -> u64 {
    let num = |r: std::ops::Range<usize>| -> i64 {
        s.get(r.clone())
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| panic!("bad RFC 3339 time {s:?} at {r:?}"))
    };
    assert_eq!(&s[4..5], "-", "{s}");
    assert_eq!(&s[10..11], "T", "{s}");
    let (y, mo, d) = (num(0..4), num(5..7), num(8..10));
    let (h, mi, sec) = (num(11..13), num(14..16), num(17..19));
    let offset = match &s[19..] {
        "Z" | "z" => 0,
        tz => {
            let sign = match &tz[..1] {
                "+" => 1,
                "-" => -1,
                _ => panic!("bad offset in {s:?}"),
            };
            sign * (num(20..22) * 3600 + num(23..25) * 60)
        }
    };
    let local = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec;
    u64::try_from(local - offset).unwrap()
}

fn cases(file: &str) -> Vec<Value> {
    let v = common::load_json(file);
    let cases = v.as_array().expect("array of cases").clone();
    assert!(!cases.is_empty(), "{file} has no cases");
    cases
}

fn key_of(case: &Value) -> Key {
    Key::from_base64(case["secret"].as_str().unwrap().as_bytes()).unwrap()
}

#[test]
fn rfc3339_conversion() {
    // The README's worked example, and the epoch itself.
    assert_eq!(rfc3339_to_unix("1985-10-26T01:20:00-07:00"), 499_162_800);
    assert_eq!(rfc3339_to_unix("1970-01-01T00:00:00Z"), 0);
    assert_eq!(rfc3339_to_unix("2000-03-01T00:00:00+01:00"), 951_865_200);
}

#[test]
fn generate_reproduces_token() {
    for case in cases("fernet/generate.json") {
        let key = key_of(&case);
        let iv: Vec<u8> = case["iv"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| u8::try_from(b.as_u64().unwrap()).unwrap())
            .collect();
        let iv: [u8; 16] = iv.try_into().unwrap();
        let now = rfc3339_to_unix(case["now"].as_str().unwrap());
        let src = case["src"].as_str().unwrap().as_bytes();
        let token = fernet::encrypt_at(&key, src, now, iv).unwrap();
        assert_eq!(token, case["token"].as_str().unwrap());
        // And the key's text form survives a round trip.
        assert_eq!(key.to_base64(), case["secret"].as_str().unwrap());
    }
}

#[test]
fn verify_decrypts() {
    for case in cases("fernet/verify.json") {
        let key = key_of(&case);
        let now = rfc3339_to_unix(case["now"].as_str().unwrap());
        let ttl = case["ttl_sec"].as_u64().unwrap();
        let token = case["token"].as_str().unwrap();
        let plain =
            fernet::decrypt(std::slice::from_ref(&key), token.as_bytes(), Some(ttl), now).unwrap();
        assert_eq!(plain, case["src"].as_str().unwrap().as_bytes());
        // A trailing newline (a token read from a file) is tolerated.
        let with_nl = format!("{token}\n");
        let plain = fernet::decrypt(&[key], with_nl.as_bytes(), Some(ttl), now).unwrap();
        assert_eq!(plain, case["src"].as_str().unwrap().as_bytes());
    }
}

#[test]
fn invalid_are_rejected_with_the_right_kind() {
    let all = cases("fernet/invalid.json");
    assert_eq!(all.len(), 8);
    for case in all {
        let desc = case["desc"].as_str().unwrap();
        let key = key_of(&case);
        let now = rfc3339_to_unix(case["now"].as_str().unwrap());
        let ttl = case["ttl_sec"].as_u64().unwrap();
        let token = case["token"].as_str().unwrap().as_bytes();
        let err = fernet::decrypt(&[key], token, Some(ttl), now)
            .expect_err(&format!("{desc}: must be rejected"));
        let expected = if desc.contains("expired") {
            FernetError::Expired
        } else if desc.contains("far-future") {
            FernetError::FromFuture
        } else {
            FernetError::InvalidToken
        };
        assert_eq!(err, expected, "{desc}");
    }
}

#[test]
fn multifernet_tries_keys_in_order() {
    let (a, b, c) = (
        Key::generate().unwrap(),
        Key::generate().unwrap(),
        Key::generate().unwrap(),
    );
    let token = fernet::encrypt(&b, b"message", 1_000).unwrap();
    for keys in [vec![a.clone(), b.clone()], vec![b.clone(), a.clone()]] {
        assert_eq!(
            fernet::decrypt(&keys, token.as_bytes(), None, 1_000).unwrap(),
            b"message"
        );
    }
    assert_eq!(
        fernet::decrypt(&[a.clone(), c.clone()], token.as_bytes(), None, 1_000).unwrap_err(),
        FernetError::InvalidToken
    );
    // Rotation: only the new key is needed afterwards, and the timestamp is kept.
    let rotated = fernet::rotate(&[c.clone(), a, b.clone()], token.as_bytes()).unwrap();
    assert_ne!(rotated, token);
    assert_eq!(
        fernet::decrypt(std::slice::from_ref(&c), rotated.as_bytes(), None, 1_000).unwrap(),
        b"message"
    );
    assert_eq!(
        fernet::extract_timestamp(&[c], rotated.as_bytes()).unwrap(),
        1_000
    );
    assert_eq!(
        fernet::decrypt(&[b], rotated.as_bytes(), None, 1_000).unwrap_err(),
        FernetError::InvalidToken
    );
}

#[test]
fn time_checks() {
    let key = Key::generate().unwrap();
    let keys = [key.clone()];
    let token = fernet::encrypt(&key, b"x", 10_000).unwrap();
    let t = token.as_bytes();
    // Exactly ttl old is still valid; one second more is expired (`now - ts > ttl`).
    assert!(fernet::decrypt(&keys, t, Some(100), 10_100).is_ok());
    assert_eq!(
        fernet::decrypt(&keys, t, Some(100), 10_101).unwrap_err(),
        FernetError::Expired
    );
    // No TTL: age does not matter.
    assert!(fernet::decrypt(&keys, t, None, u64::MAX).is_ok());
    // 60 s of clock skew is allowed, 61 s is not.
    assert!(fernet::decrypt(&keys, t, None, 10_000 - 60).is_ok());
    assert_eq!(
        fernet::decrypt(&keys, t, None, 10_000 - 61).unwrap_err(),
        FernetError::FromFuture
    );
    // Rotation does no time checks, as MultiFernet.rotate.
    assert!(fernet::rotate(&keys, t).is_ok());
    // A wrong key never reveals the time verdict: it is just invalid.
    let other = Key::generate().unwrap();
    assert_eq!(
        fernet::decrypt(&[other], t, Some(1), 20_000).unwrap_err(),
        FernetError::InvalidToken
    );
}

#[test]
fn malformed_tokens() {
    let key = Key::generate().unwrap();
    let keys = [key.clone()];
    let token = fernet::encrypt(&key, b"hello", 5).unwrap();
    let bad: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"\n".to_vec(),
        b"gAAAAA==".to_vec(),
        token.trim_end_matches('=').as_bytes().to_vec(), // unpadded: not canonical
        token.replace('-', "+").replace('_', "/").into_bytes(), // standard alphabet
        token.as_bytes()[..token.len() - 4].to_vec(),    // truncated
        format!("{token}{token}").into_bytes(),
        format!("{}A{}", &token[..10], &token[10..]).into_bytes(),
    ];
    for (i, t) in bad.iter().enumerate() {
        if t.as_slice() == token.as_bytes() {
            continue;
        }
        assert_eq!(
            fernet::decrypt(&keys, t, None, 5).unwrap_err(),
            FernetError::InvalidToken,
            "case {i}: {:?}",
            String::from_utf8_lossy(t)
        );
    }
    // Wrong version byte with a valid MAC is still rejected.
    let mut raw = URL_SAFE.decode(&token).unwrap();
    raw[0] = 0x81;
    assert_eq!(
        fernet::decrypt(&keys, URL_SAFE.encode(&raw).as_bytes(), None, 5).unwrap_err(),
        FernetError::InvalidToken
    );
}

#[test]
fn over_limit_token_is_refused_without_decoding() {
    let key = Key::generate().unwrap();
    let huge = vec![b'A'; fernet::MAX_TOKEN_LEN + 1];
    assert_eq!(
        fernet::decrypt(&[key], &huge, None, 0).unwrap_err(),
        FernetError::TooLarge {
            limit: fernet::MAX_TOKEN_LEN
        }
    );
}

proptest! {
    #[test]
    fn round_trip(data in proptest::collection::vec(any::<u8>(), 0..2048), ts in 0u64..(1 << 40)) {
        let key = Key::generate().unwrap();
        let token = fernet::encrypt(&key, &data, ts).unwrap();
        prop_assert_eq!(fernet::decrypt(&[key], token.as_bytes(), Some(0), ts).unwrap(), data);
    }

    #[test]
    fn any_flipped_bit_is_rejected(
        data in proptest::collection::vec(any::<u8>(), 0..100),
        bit in any::<prop::sample::Index>(),
    ) {
        let key = Key::generate().unwrap();
        let token = fernet::encrypt(&key, &data, 1_000).unwrap();
        let mut raw = URL_SAFE.decode(&token).unwrap();
        let i = bit.index(raw.len() * 8);
        raw[i / 8] ^= 1 << (i % 8);
        let tampered = URL_SAFE.encode(&raw);
        prop_assert_eq!(
            fernet::decrypt(std::slice::from_ref(&key), tampered.as_bytes(), None, 1_000),
            Err(FernetError::InvalidToken)
        );
        prop_assert_eq!(fernet::rotate(&[key], tampered.as_bytes()), Err(FernetError::InvalidToken));
    }
}
