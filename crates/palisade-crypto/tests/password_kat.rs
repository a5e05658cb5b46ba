//! Password hashing without Python: known answers written by Django 5.2 (low work factors
//! so the suite is quick; the removed SHA-1/unsalted hashers as their last code wrote them),
//! the re-hash rules, a list of malformed and hostile encodings that must be errors rather
//! than panics or huge allocations, and property tests of hash → verify round trips.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use palisade_crypto::password::{
    self, Argon2Params, HasherConfig, PasswordError, Verified, algorithm_of, hash_password,
    hash_with, is_usable, unusable_password, verify_password, verify_password_with,
};
use proptest::prelude::*;

/// Cheap parameters: tests check formats and logic, not cost.
const LOW: Argon2Params = Argon2Params {
    memory_kib: 64,
    iterations: 1,
    parallelism: 1,
};

const VALID: Verified = Verified::Valid {
    needs_rehash: false,
};
const REHASH: Verified = Verified::Valid { needs_rehash: true };

/// Made by Django 5.2.19 (argon2-cffi 25.1, bcrypt 5.0) with the hasher classes' work
/// factors lowered; `argon2i` without `v=` and `argon2id` with `v=16` by argon2-cffi with
/// version 0x10, as Django 1.10 wrote them; `sha1$`, `md5$$`, `sha1$$` and the bare MD5 by
/// the hashers' code from Django 5.0; `$2a$`/`$2y$` by pyca/bcrypt with those prefixes.
const DJANGO_KATS: &[(&str, &str)] = &[
    (
        "pässwörd ✓",
        "argon2$argon2id$v=19$m=256,t=1,p=2$UUNMQVREdWw2YVAwcHRlWU1YMjZUaA$mSSKrCGAdnuV9DCN+B8Q8yljDOgB+p6NlZ0JneaZJP4",
    ),
    (
        "pässwörd ✓",
        "argon2$argon2i$v=19$m=256,t=1,p=2$RUlnYk9GZFc5blRnQXFIY1k2ZFNlaw$OZAr5oaQT1dvVBf3b1bPsY2W2NSjyKSbZP7FsWyOSnA",
    ),
    (
        "pässwörd ✓",
        "argon2$argon2d$v=19$m=256,t=1,p=2$bVJpSUh1czBDb0MyT3p3S0JLQVZVbg$bMzpHYjX/PKTB+VgSkURlZTa7KwIrdM6vt5EPF7ViPY",
    ),
    (
        "pässwörd ✓",
        "pbkdf2_sha256$1000$ud2gQXRwVdzQNNzzQ2GQXQ$FHqNGz6m0npWQGw4lKWHCYUd7RfepKthjSGmZTwH3G8=",
    ),
    (
        "pässwörd ✓",
        "pbkdf2_sha1$1000$Ges0Qh3KQ9SqDSJ5vGqFpw$H/0xKKdV0E+Z09zyeXaZa1sn/5Q=",
    ),
    (
        "pässwörd ✓",
        "bcrypt_sha256$$2b$04$oBobOw1pYb766BPYuC4h0eCiuAlsz1Xh3L7FB0rJQpLY74Qa.fU.6",
    ),
    (
        "pässwörd ✓",
        "bcrypt$$2b$04$UupjJCq26fyczCP6m5HDxO1IELnglFP5VKcjJTGuc9mKfS8ITkvN6",
    ),
    (
        "pässwörd ✓",
        "scrypt$16$k55DrjZpEdakzp930jndCe$2$1$XtniO+Be6M4lazV59QL1j72vV3BN4mQoYRub8w8zSuh/B2E68/EKsH70LLX68Kb4mCVbIo1wPJQCRwTOBX5Ikg==",
    ),
    (
        "pässwörd ✓",
        "md5$zNS0HIH0u1PBld1UueYgCS$b87beb18f043c9c8c3bb07b0129406be",
    ),
    (
        "pässwörd ✓",
        "argon2$argon2i$m=64,t=1,p=1$bGVnYWN5c2FsdDAxMjM0NTY3ODlhYg$eVoAmv4NJZCu4GRpmmeh1g",
    ),
    (
        "pässwörd ✓",
        "argon2$argon2id$v=16$m=64,t=1,p=1$bGVnYWN5c2FsdDAxMjM0NTY3ODlhYg$dgrJ7FXONzZTvuSUnreSCnwSxUaONNINQHz//6D4rAQ",
    ),
    (
        "pässwörd ✓",
        "sha1$x1b2c$35bd8ce45d54d070df860408f5bb1d7561c49831",
    ),
    ("pässwörd ✓", "424f0acb4def3f5d2db59084752ce66d"),
    ("pässwörd ✓", "md5$$424f0acb4def3f5d2db59084752ce66d"),
    (
        "pässwörd ✓",
        "sha1$$38e7e7c8785abdabd0bbb800be9e2a2bc353b769",
    ),
    (
        "pässwörd ✓",
        "bcrypt$$2a$04$ilZ/Y01O.9uLknS6QAJIieoqTrP6JWcXURqYARltu5AvwxHkTPAYq",
    ),
    (
        "pässwörd ✓",
        "bcrypt$$2y$04$GeHvlqk6fQmXFdTkXl4JDutsmRf4mJNNM1/4gHNdTnBV7ZF0W5IKm",
    ),
    (
        "",
        "argon2$argon2id$v=19$m=256,t=1,p=2$RlZsNlZPUnFoanpHOFJyVDc1VTV1cQ$l1rfGEgMQoxpEzrMkNJ2piTTzntlECuLCZHBz/dgd5k",
    ),
    (
        "",
        "argon2$argon2i$v=19$m=256,t=1,p=2$bnpTd0ZNQkRrZDZRbFVlbkNPMXN2aA$AUwncS7+B/l8tGZpxG8128oMqunLwE9IptcW4I+/WvI",
    ),
    (
        "",
        "argon2$argon2d$v=19$m=256,t=1,p=2$RU1IeWtoSkliaXFCTnlGSVBiZjdydg$ZVcC4hJmUQrVfCpgkphe6H4r2T/ro1oT9zkkGxyUvps",
    ),
    (
        "",
        "pbkdf2_sha256$1000$0eUmACb4Du30Qagmsg9w1d$T5VgTHjOGGQZYjgTNgmXD/AtiY2fUYcrX+8CwaQOYrY=",
    ),
    (
        "",
        "pbkdf2_sha1$1000$GwKSXxaqfB577OTFkV2JyX$LyQnAWTfkYyjFsgf3r15SrYu1OA=",
    ),
    (
        "",
        "bcrypt_sha256$$2b$04$NPfQxiCF/VZ4j0W7IOOC/.77oxV6DBV0Dj68K/eG6z6ft30atC17m",
    ),
    (
        "",
        "bcrypt$$2b$04$a.Izsd.x9FVXPcTr5sWHIu8AAtqUivvZl8gihQKVbd9ygeLGN.wqK",
    ),
    (
        "",
        "scrypt$16$Jp2ibxPiDTKiZ4Ji2Gq0bi$2$1$Gat6i1aovky2W2WMcP6bAKxkzHhq+DqNaIiRcUHyN9LPXzq8JIZykZDmX1VINE85x30NnY72T1T83ageDWaW1g==",
    ),
    (
        "",
        "md5$AU2EBuh3bnCJMUwnuGGcvT$7a178e89be4e74d73a875e0049eed963",
    ),
    (
        "",
        "argon2$argon2i$m=64,t=1,p=1$bGVnYWN5c2FsdDAxMjM0NTY3ODlhYg$zKZJGubrqrZldGI3Be3I+A",
    ),
    (
        "",
        "argon2$argon2id$v=16$m=64,t=1,p=1$bGVnYWN5c2FsdDAxMjM0NTY3ODlhYg$VjQoK3ZdRxU56C54tCRw27hgopUf5w6wJyAT4d3p5Zw",
    ),
    ("", "sha1$x1b2c$22654aff41f0a2dd6fa98abebc40a6e07e97087d"),
    ("", "d41d8cd98f00b204e9800998ecf8427e"),
    ("", "md5$$d41d8cd98f00b204e9800998ecf8427e"),
    ("", "sha1$$da39a3ee5e6b4b0d3255bfef95601890afd80709"),
    (
        "",
        "bcrypt$$2a$04$FVZVtVZYJhOmqR1ZNJalwu4chcnZWhbd.xincb9xlF1UHwp8gNSO2",
    ),
    (
        "",
        "bcrypt$$2y$04$bCkEqTXJ6rQwuxzXMR9kzemGWEwOV7e6TvMOV6oPwARaN5Q4ECMeC",
    ),
];

/// Django's algorithm name for each KAT, by `identify_hasher`'s rules.
fn expected_algorithm(encoded: &str) -> &'static str {
    if (encoded.len() == 32 && !encoded.contains('$')) || encoded.starts_with("md5$$") {
        return "unsalted_md5";
    }
    if encoded.starts_with("sha1$$") {
        return "unsalted_sha1";
    }
    match encoded.split('$').next().unwrap() {
        "argon2" => "argon2",
        "pbkdf2_sha256" => "pbkdf2_sha256",
        "pbkdf2_sha1" => "pbkdf2_sha1",
        "bcrypt_sha256" => "bcrypt_sha256",
        "bcrypt" => "bcrypt",
        "scrypt" => "scrypt",
        "md5" => "md5",
        "sha1" => "sha1",
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn django_known_answers_verify_and_need_a_rehash() {
    assert_eq!(DJANGO_KATS.len(), 34);
    for &(pw, enc) in DJANGO_KATS {
        let pw = pw.as_bytes();
        // None of them is Argon2id with the current parameters, so all need a new hash.
        assert_eq!(verify_password(pw, enc, &LOW).unwrap(), REHASH, "{enc}");
        let mut wrong = pw.to_vec();
        wrong.push(b'x');
        assert_eq!(
            verify_password(&wrong, enc, &LOW).unwrap(),
            Verified::Invalid,
            "{enc}"
        );
        if let Some(last) = wrong.len().checked_sub(2) {
            wrong.truncate(last + 1);
            wrong[last] ^= 1;
            assert_eq!(
                verify_password(&wrong, enc, &LOW).unwrap(),
                Verified::Invalid,
                "{enc}"
            );
        }
        assert_eq!(algorithm_of(enc), Some(expected_algorithm(enc)), "{enc}");
        assert!(is_usable(enc));
    }
}

#[test]
fn a_changed_hash_does_not_verify() {
    for &(pw, enc) in DJANGO_KATS {
        // Change the last character that is not base64 padding to another character valid
        // in every alphabet used (hex, base64, bcrypt's base64).
        let mut chars: Vec<char> = enc.chars().collect();
        let i = chars.iter().rposition(|&c| c != '=').unwrap();
        chars[i] = if chars[i] == 'a' { 'b' } else { 'a' };
        let changed: String = chars.into_iter().collect();
        match verify_password(pw.as_bytes(), &changed, &LOW) {
            Ok(Verified::Invalid) | Err(PasswordError::Malformed(_)) => {}
            other => panic!("{changed}: {other:?}"),
        }
    }
}

#[test]
fn rehash_rules_follow_django_must_update() {
    let pw = "pässwörd ✓".as_bytes();
    let kat = |prefix: &str| {
        DJANGO_KATS
            .iter()
            .find(|(p, e)| !p.is_empty() && e.starts_with(prefix))
            .unwrap()
            .1
    };
    // Argon2id, v=19, 32-byte hash, 22-character salt: current iff the parameters match.
    let id = kat("argon2$argon2id$v=19");
    let django_low = Argon2Params {
        memory_kib: 256,
        iterations: 1,
        parallelism: 2,
    };
    assert_eq!(verify_password(pw, id, &django_low).unwrap(), VALID);
    for other in [
        Argon2Params {
            memory_kib: 512,
            ..django_low
        },
        Argon2Params {
            iterations: 2,
            ..django_low
        },
        Argon2Params {
            parallelism: 1,
            ..django_low
        },
    ] {
        assert_eq!(verify_password(pw, id, &other).unwrap(), REHASH);
    }
    // Same parameters but Argon2i, or Argon2d: the variant counts.
    assert_eq!(
        verify_password(pw, kat("argon2$argon2i$v=19"), &django_low).unwrap(),
        REHASH
    );
    assert_eq!(
        verify_password(pw, kat("argon2$argon2d$"), &django_low).unwrap(),
        REHASH
    );
    // A 16-character salt (95 bits by Django's count) must be replaced, as Django says.
    let short_salt = "argon2$argon2id$v=19$m=256,t=1,p=2$c2hvcnRzYWx0MTIzNDU2Nw$4ZDiRYrFFpMiKwHP6BT3mspbPGY25NVkvncS6jFQuLI";
    assert_eq!(
        verify_password(pw, short_salt, &django_low).unwrap(),
        REHASH
    );
    // Version 0x10 with otherwise matching parameters.
    let v16 = kat("argon2$argon2id$v=16");
    let v16_params = Argon2Params {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };
    assert_eq!(verify_password(pw, v16, &v16_params).unwrap(), REHASH);

    // Other configured hashers, judged as Django's must_update judges them.
    let pbkdf2 = HasherConfig::Pbkdf2Sha256 { iterations: 1000 };
    assert_eq!(
        verify_password_with(pw, kat("pbkdf2_sha256$"), &pbkdf2).unwrap(),
        VALID
    );
    let pbkdf2_short_salt =
        "pbkdf2_sha256$1000$abc12345$hpeBIjgBgQoiQfrp/IppgydXO8tlrwavmGED/GFsUPA=";
    assert_eq!(
        verify_password_with(pw, pbkdf2_short_salt, &pbkdf2).unwrap(),
        REHASH
    );
    let pbkdf2_more = HasherConfig::Pbkdf2Sha256 { iterations: 1001 };
    assert_eq!(
        verify_password_with(pw, kat("pbkdf2_sha256$"), &pbkdf2_more).unwrap(),
        REHASH
    );
    assert_eq!(
        verify_password_with(pw, kat("pbkdf2_sha1$"), &pbkdf2).unwrap(),
        REHASH
    );

    let scrypt = HasherConfig::Scrypt { n: 16, r: 2, p: 1 };
    assert_eq!(
        verify_password_with(pw, kat("scrypt$"), &scrypt).unwrap(),
        VALID
    );
    let scrypt_p2 = HasherConfig::Scrypt { n: 16, r: 2, p: 2 };
    assert_eq!(
        verify_password_with(pw, kat("scrypt$"), &scrypt_p2).unwrap(),
        REHASH
    );

    let bcrypt = HasherConfig::Bcrypt { cost: 4 };
    assert_eq!(
        verify_password_with(pw, kat("bcrypt_sha256$"), &bcrypt).unwrap(),
        VALID
    );
    assert_eq!(
        verify_password_with(pw, kat("bcrypt_sha256$"), &HasherConfig::Bcrypt { cost: 5 }).unwrap(),
        REHASH
    );
    assert_eq!(
        verify_password_with(pw, kat("bcrypt$$2b"), &bcrypt).unwrap(),
        REHASH
    );
    // A hash of another algorithm always needs a rehash.
    assert_eq!(
        verify_password_with(pw, kat("md5$"), &bcrypt).unwrap(),
        REHASH
    );
    assert_eq!(verify_password_with(pw, id, &scrypt).unwrap(), REHASH);
}

#[test]
fn bcrypt_cuts_at_72_bytes_and_bcrypt_sha256_does_not() {
    let long = [b'a'; 100];
    let mut other_tail = long;
    other_tail[80] = b'b';
    // Made by pyca/bcrypt 5 from the first 72 bytes of `long`, which is what Django with
    // bcrypt < 5 stored for `long` itself (bcrypt 5 refuses passwords over 72 bytes).
    let plain = "bcrypt$$2b$04$o.jdxPJlhroVRmSMTg280OBQ3IoLTFYv67IERmNPllXCPWxzZWY9K";
    assert_eq!(verify_password(&long[..72], plain, &LOW).unwrap(), REHASH);
    assert_eq!(verify_password(&long, plain, &LOW).unwrap(), REHASH);
    assert_eq!(verify_password(&other_tail, plain, &LOW).unwrap(), REHASH);
    assert_eq!(
        verify_password(&long[..71], plain, &LOW).unwrap(),
        Verified::Invalid
    );
    // bcrypt_sha256 hashes the whole password first, so every byte counts.
    let b = hash_with(&HasherConfig::Bcrypt { cost: 4 }, &long).unwrap();
    assert_eq!(verify_password(&long, &b, &LOW).unwrap(), REHASH);
    assert_eq!(
        verify_password(&other_tail, &b, &LOW).unwrap(),
        Verified::Invalid
    );
}

#[test]
fn unusable_and_empty_hashes_never_verify() {
    let u = unusable_password();
    assert!(!is_usable(&u) && !is_usable("") && !is_usable("!"));
    assert_eq!(algorithm_of(&u), None);
    for enc in [
        u.as_str(),
        "",
        "!",
        "!argon2$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g",
    ] {
        assert_eq!(verify_password(b"", enc, &LOW).unwrap(), Verified::Invalid);
        assert_eq!(verify_password(b"!", enc, &LOW).unwrap(), Verified::Invalid);
    }
}

#[test]
fn algorithm_of_names_only_known_prefixes() {
    assert_eq!(algorithm_of("argon2$garbage"), Some("argon2"));
    assert_eq!(algorithm_of("crypt$ab$cdef"), None);
    assert_eq!(algorithm_of("plaintext"), None);
    assert_eq!(
        algorithm_of(&hash_password(b"x", &LOW).unwrap()),
        Some("argon2")
    );
}

/// Each must be an `Err` (never a panic, never a long computation).
const MALFORMED: &[&str] = &[
    // Unknown algorithms and shapes.
    "crypt$ab$cdef",
    "pbkdf2_sha512$1000$salt$aGFzaA==",
    "plaintext",
    "$$$",
    "$",
    "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz",
    "D41D8CD98F00B204E9800998ECF8427E",
    // Argon2: fields, numbers, base64, caps.
    "argon2",
    "argon2$",
    "argon2$argon2id",
    "argon2$argon2id$v=19$m=256,t=1,p=1$c2FsdHNhbHRzYWx0",
    "argon2$argon2id$v=19$m=256,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2g$extra",
    "argon2$argon2x$v=19$m=256,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2g",
    "argon2$argon2id$v=20$m=256,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2g",
    "argon2$argon2id$v=19$m=4194304,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2g",
    "argon2$argon2id$v=19$m=4294967295,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2g",
    "argon2$argon2id$v=19$m=99999999999,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2g",
    "argon2$argon2id$v=19$m=262144,t=5,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2g",
    "argon2$argon2id$v=19$m=64,t=4294967295,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2g",
    "argon2$argon2id$v=19$m=0,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2g",
    "argon2$argon2id$v=19$m=256,t=0,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2g",
    "argon2$argon2id$v=19$m=256,t=1,p=0$c2FsdHNhbHRzYWx0$aGFzaGhhc2g",
    "argon2$argon2id$v=19$m=1024,t=1,p=65$c2FsdHNhbHRzYWx0$aGFzaGhhc2g",
    "argon2$argon2id$v=19$m=8,t=1,p=2$c2FsdHNhbHRzYWx0$aGFzaGhhc2g",
    "argon2$argon2id$v=19$m=-1,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2g",
    "argon2$argon2id$v=19$m=0256,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2g",
    "argon2$argon2id$v=19$m=２５６,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2g",
    "argon2$argon2id$v=19$m=256,t=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2g",
    "argon2$argon2id$v=19$t=1,m=256,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2g",
    "argon2$argon2id$v=19$m=256,t=1,p=1,keyid=AAAA$c2FsdHNhbHRzYWx0$aGFzaGhhc2g",
    "argon2$argon2id$v=19$m=256,t=1,p=1$!!!!$aGFzaGhhc2g",
    "argon2$argon2id$v=19$m=256,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2g=",
    "argon2$argon2id$v=19$m=256,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2h",
    "argon2$argon2id$v=19$m=256,t=1,p=1$c2FsdA$aGFzaGhhc2g",
    "argon2$argon2id$v=19$m=256,t=1,p=1$c2FsdHNhbHRzYWx0$aGE",
    // PBKDF2.
    "pbkdf2_sha256$0$salt$aGFzaA==",
    "pbkdf2_sha256$100000001$salt$x92xMVAlPsmHP/0iLVu693pbWQIlJEI5EGxAOfqrGYY=",
    "pbkdf2_sha256$4294967296$salt$x92xMVAlPsmHP/0iLVu693pbWQIlJEI5EGxAOfqrGYY=",
    "pbkdf2_sha256$abc$salt$x92xMVAlPsmHP/0iLVu693pbWQIlJEI5EGxAOfqrGYY=",
    "pbkdf2_sha256$+1000$salt$x92xMVAlPsmHP/0iLVu693pbWQIlJEI5EGxAOfqrGYY=",
    "pbkdf2_sha256$1000$salt",
    "pbkdf2_sha256$1000$salt$x92xMVAlPsmHP/0iLVu693pbWQIlJEI5EGxAOfqrGYY=$more",
    "pbkdf2_sha256$1000$salt$not base64!",
    "pbkdf2_sha256$1000$salt$x92xMVAlPsmHP/0iLVu693pbWQIlJEI5EGxAOfqrGYY",
    "pbkdf2_sha256$1000$salt$aGFzaA==",
    "pbkdf2_sha1$1000$salt$x92xMVAlPsmHP/0iLVu693pbWQIlJEI5EGxAOfqrGYY=",
    // scrypt.
    "scrypt$15$salt$8$1$aGFzaA==",
    "scrypt$1$salt$8$1$aGFzaA==",
    "scrypt$0$salt$8$1$aGFzaA==",
    "scrypt$2097152$salt$1$1$aGFzaA==",
    "scrypt$1048576$salt$8$1$aGFzaA==",
    "scrypt$131072$salt$8$64$aGFzaA==",
    "scrypt$16384$salt$0$1$aGFzaA==",
    "scrypt$16384$salt$8$0$aGFzaA==",
    "scrypt$16384$salt$4294967295$4294967295$aGFzaA==",
    "scrypt$99999999999$salt$8$1$aGFzaA==",
    "scrypt$16384$salt$8$1",
    "scrypt$16384$salt$8$1$aGFzaA==",
    "scrypt$16384$salt$8$1$!!",
    // bcrypt.
    "bcrypt$$2b$31$UupjJCq26fyczCP6m5HDxO1IELnglFP5VKcjJTGuc9mKfS8ITkvN6",
    "bcrypt$$2b$17$UupjJCq26fyczCP6m5HDxO1IELnglFP5VKcjJTGuc9mKfS8ITkvN6",
    "bcrypt$$2b$03$UupjJCq26fyczCP6m5HDxO1IELnglFP5VKcjJTGuc9mKfS8ITkvN6",
    "bcrypt$$2c$04$UupjJCq26fyczCP6m5HDxO1IELnglFP5VKcjJTGuc9mKfS8ITkvN6",
    "bcrypt$$2b$4$UupjJCq26fyczCP6m5HDxO1IELnglFP5VKcjJTGuc9mKfS8ITkvN6x",
    "bcrypt$$2b$04$UupjJCq26fyczCP6m5HDxO1IELnglFP5VKcjJTGuc9mKfS8ITkvN",
    "bcrypt$$2b$04$UupjJCq26fyczCP6m5HDxO1IELnglFP5VKcjJTGuc9mKfS8ITkvN6x",
    "bcrypt$$2b$04$Uupj!Cq26fyczCP6m5HDxO1IELnglFP5VKcjJTGuc9mKfS8ITkvN6",
    "bcrypt$$2b$04$UupjJCq26fyczCP6m5HDxO1IELnglFP5VKcjJTGuc9mKfS8ITkvé",
    "bcrypt$$2b$04$UupjJCq26fyczCP6m5HDxO1IELéglFP5VKcjJTGuc9mKfS8ITkv",
    "bcrypt$$2b$04$UupjJCq26fyczCP6m5HDxOé1IELnglFP5VKcjJTGuc9mKfS8ITkv",
    "bcrypt$2b$04$UupjJCq26fyczCP6m5HDxO1IELnglFP5VKcjJTGuc9mKfS8ITkvN6",
    "bcrypt_sha256$$2b$04$",
    "bcrypt_sha256",
    "bcrypt$x2b$04$UupjJCq26fyczCP6m5HDxO1IELnglFP5VKcjJTGuc9mKfS8ITkvN6",
    // Salted and unsalted digests.
    "md5",
    "md5$salt",
    "md5$salt$XYZ",
    "md5$salt$d41d8cd98f00b204e9800998ecf8427",
    "md5$salt$D41D8CD98F00B204E9800998ECF8427E",
    "md5$salt$d41d8cd98f00b204e9800998ecf8427e0",
    "md5$$d41d8cd98f00b204e9800998ecf8427g",
    "sha1$salt$d41d8cd98f00b204e9800998ecf8427e",
    "sha1$$da39a3ee5e6b4b0d3255bfef95601890afd8070g",
];

#[test]
fn malformed_encodings_are_errors() {
    for enc in MALFORMED {
        let r = verify_password(b"password", enc, &LOW);
        assert!(r.is_err(), "{enc:?} gave {r:?}");
        // The message never echoes the hash.
        let msg = r.unwrap_err().to_string();
        assert!(!msg.contains("aGFzaA") && !msg.contains("Uupj"), "{msg}");
    }
    let long = format!("pbkdf2_sha256$1000${}$aGFzaA==", "a".repeat(600));
    assert!(verify_password(b"p", &long, &LOW).is_err());
    let long_salt = format!("md5${}$d41d8cd98f00b204e9800998ecf8427e", "s".repeat(200));
    assert!(verify_password(b"p", &long_salt, &LOW).is_err());
}

#[test]
fn capped_parameters_are_refused_for_hashing_too() {
    for bad in [
        Argon2Params {
            memory_kib: password::ARGON2_MAX_MEMORY_KIB + 1,
            iterations: 1,
            parallelism: 1,
        },
        Argon2Params {
            memory_kib: 64,
            iterations: 0,
            parallelism: 1,
        },
        Argon2Params {
            memory_kib: 64,
            iterations: 1,
            parallelism: 0,
        },
        Argon2Params {
            memory_kib: 7,
            iterations: 1,
            parallelism: 1,
        },
    ] {
        assert!(
            matches!(hash_password(b"p", &bad), Err(PasswordError::Params(_))),
            "{bad:?}"
        );
    }
    for bad in [
        HasherConfig::Scrypt {
            n: 1000,
            r: 8,
            p: 1,
        },
        HasherConfig::Scrypt {
            n: 1 << 21,
            r: 1,
            p: 1,
        },
        HasherConfig::Scrypt { n: 16, r: 0, p: 1 },
        HasherConfig::Bcrypt { cost: 3 },
        HasherConfig::Bcrypt {
            cost: password::BCRYPT_MAX_COST + 1,
        },
        HasherConfig::Pbkdf2Sha256 { iterations: 0 },
        HasherConfig::Pbkdf2Sha256 {
            iterations: password::PBKDF2_MAX_ITERATIONS + 1,
        },
    ] {
        assert!(
            matches!(hash_with(&bad, b"p"), Err(PasswordError::Params(_))),
            "{bad:?}"
        );
    }
}

#[test]
fn encodings_have_django_shapes() {
    let a = hash_password(b"pw", &LOW).unwrap();
    let f: Vec<&str> = a.split('$').collect();
    assert_eq!(f[..4], ["argon2", "argon2id", "v=19", "m=64,t=1,p=1"]);
    assert_eq!(f[4].len(), 30, "22 salt characters, unpadded base64");
    assert_eq!(f[5].len(), 43, "32 hash bytes, unpadded base64");

    let p = hash_with(&HasherConfig::Pbkdf2Sha256 { iterations: 7 }, b"pw").unwrap();
    let f: Vec<&str> = p.split('$').collect();
    assert_eq!(
        (f[0], f[1], f[2].len(), f[3].len()),
        ("pbkdf2_sha256", "7", 22, 44)
    );

    let s = hash_with(&HasherConfig::Scrypt { n: 16, r: 1, p: 1 }, b"pw").unwrap();
    let f: Vec<&str> = s.split('$').collect();
    assert_eq!(
        (f[0], f[1], f[2].len(), f[3], f[4], f[5].len()),
        ("scrypt", "16", 22, "1", "1", 88)
    );

    let b = hash_with(&HasherConfig::Bcrypt { cost: 4 }, b"pw").unwrap();
    assert!(
        b.starts_with("bcrypt_sha256$$2b$04$") && b.len() == "bcrypt_sha256$".len() + 60,
        "{b}"
    );

    assert_eq!(
        HasherConfig::default(),
        HasherConfig::Argon2id(Argon2Params::default())
    );
    assert_eq!(HasherConfig::DJANGO_BCRYPT.algorithm(), "bcrypt_sha256");
}

fn configs() -> [HasherConfig; 4] {
    [
        HasherConfig::Argon2id(LOW),
        HasherConfig::Scrypt { n: 16, r: 1, p: 1 },
        HasherConfig::Bcrypt { cost: 4 },
        HasherConfig::Pbkdf2Sha256 { iterations: 10 },
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn hash_then_verify_round_trips(
        pw in proptest::collection::vec(any::<u8>(), 0..40),
        which in 0usize..4,
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let config = configs()[which];
        let enc = hash_with(&config, &pw).unwrap();
        prop_assert_eq!(verify_password_with(&pw, &enc, &config).unwrap(), VALID);
        // A fresh salt every time.
        prop_assert_ne!(hash_with(&config, &pw).unwrap(), enc.clone());
        // Any single-byte change, an extra byte or a missing one: Invalid. (Trailing NUL
        // bytes are the exception for PBKDF2 and scrypt, in Django too: HMAC pads its key
        // with zeros, so "" and "\0" are the same key. Django passwords are text.)
        let mut longer = pw.clone();
        longer.push(b'x');
        prop_assert_eq!(verify_password_with(&longer, &enc, &config).unwrap(), Verified::Invalid);
        if let Some(&last) = pw.last() {
            let i = at.index(pw.len());
            let mut changed = pw.clone();
            changed[i] ^= flip;
            prop_assert_eq!(verify_password_with(&changed, &enc, &config).unwrap(), Verified::Invalid);
            if last != 0 {
                prop_assert_eq!(
                    verify_password_with(&pw[..pw.len() - 1], &enc, &config).unwrap(),
                    Verified::Invalid
                );
            }
        }
    }

    #[test]
    fn arbitrary_strings_never_panic(s in "\\PC{0,120}") {
        let _ = verify_password(b"pw", &s, &LOW);
        let _ = algorithm_of(&s);
    }

    #[test]
    fn mutated_hashes_never_panic(which in 0usize..34, at in any::<prop::sample::Index>(), c in any::<char>()) {
        let (pw, enc) = DJANGO_KATS[which];
        let mut chars: Vec<char> = enc.chars().collect();
        let i = at.index(chars.len());
        chars[i] = c;
        let mutated: String = chars.into_iter().collect();
        let r = verify_password(pw.as_bytes(), &mutated, &LOW);
        // One encoding per hash: any other string is not the same hash.
        if mutated != enc {
            prop_assert!(!matches!(r, Ok(Verified::Valid { .. })), "{} -> {:?}", mutated, r);
        }
    }
}
