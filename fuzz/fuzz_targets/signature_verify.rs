//! Signature verification (`palisade verify`) of attacker-supplied signature bytes against
//! fixed RSA-2048 (PSS), P-256 (DER and P1363) and Ed25519 keys.
//!
//! The first input byte picks the key and the encoding; the rest is the signature. The
//! message is fixed and no seed signs it (the seeds sign `SEED_MESSAGE`), so `Ok(true)`
//! would be a forgery: the target asserts it never happens. P1363 with a non-ECDSA key must
//! be the `FormatNotApplicable` error. A signature made by the fixed key is also checked to
//! verify, so the "never true" assertion cannot pass vacuously.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use palisade_crypto::keys::{KeyKind, PrivateKey, PublicKey};
use palisade_crypto::signature::{self, SignatureError, SignatureFormat};

/// What the fuzzer's signatures are checked against. Never signed by anything.
const MESSAGE: &[u8] = b"palisade fuzz: this message is never signed";

struct Fixed {
    private: PrivateKey,
    public: PublicKey,
}

fn load(pem: &[u8]) -> Fixed {
    let private = PrivateKey::from_pem(pem).expect("fixture key");
    let public = private.public_key().expect("public half");
    Fixed { private, public }
}

static KEYS: LazyLock<[Fixed; 3]> = LazyLock::new(|| {
    [
        load(include_bytes!("../fixtures/rsa-2048.pem")),
        load(include_bytes!("../fixtures/p256.pem")),
        load(include_bytes!("../fixtures/ed25519.pem")),
    ]
});

fuzz_target!(|data: &[u8]| {
    let Some((&selector, sig)) = data.split_first() else {
        return;
    };
    let fixed = &KEYS[usize::from(selector % 3)];
    let format = if selector & 0x80 == 0 {
        SignatureFormat::Der
    } else {
        SignatureFormat::P1363
    };
    let kind = fixed.public.kind();
    match signature::verify(&fixed.public, MESSAGE, sig, format) {
        Ok(valid) => assert!(!valid, "forged {kind} signature accepted"),
        Err(SignatureError::FormatNotApplicable(k)) => {
            assert_eq!(format, SignatureFormat::P1363);
            assert_ne!(k, KeyKind::P256);
        }
        Err(e) => panic!("unexpected verify error {e:?}"),
    }
    if let palisade_crypto::keys::PublicKey::Rsa(rsa) = &fixed.public {
        assert!(!signature::verify_rsa_pss_salt32(rsa, MESSAGE, sig));
        assert!(!signature::verify_rsa_pss_any_salt(rsa, MESSAGE, sig));
    }

    // Sanity: a real signature by the same key over a slice of the input does verify,
    // and does not verify over MESSAGE (different message). Skipped for RSA on most
    // inputs because RSA signing costs a millisecond.
    if kind != KeyKind::Rsa || selector == 0 {
        let format = if kind == KeyKind::P256 {
            format
        } else {
            SignatureFormat::Der
        };
        let msg = &sig[..sig.len().min(64)];
        let good = signature::sign(&fixed.private, msg, format).expect("sign");
        assert_eq!(
            signature::verify(&fixed.public, msg, &good, format),
            Ok(true)
        );
        if msg != MESSAGE {
            assert_eq!(
                signature::verify(&fixed.public, MESSAGE, &good, format),
                Ok(false)
            );
        }
    }
});
