//! Property tests for signatures and RSA-OAEP: round trips per key type, and single-bit flips
//! of the signature or the message always fail. RSA key generation is slow, so each key is
//! generated once and shared; the case count is kept small for the same reason.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::sync::LazyLock;

use palisade_crypto::keys::{PrivateKey, PublicKey, RsaBits};
use palisade_crypto::rsa_oaep;
use palisade_crypto::signature::{SignatureFormat, sign, verify};
use proptest::prelude::*;

struct Pair {
    private: PrivateKey,
    public: PublicKey,
    format: SignatureFormat,
}

fn pair(private: PrivateKey, format: SignatureFormat) -> Pair {
    let public = private.public_key().unwrap();
    Pair {
        private,
        public,
        format,
    }
}

static KEYS: LazyLock<Vec<Pair>> = LazyLock::new(|| {
    let rsa = PrivateKey::generate_rsa(RsaBits::B2048).unwrap();
    // The same P-256 key in both encodings, through PEM to exercise the parser too.
    let p256_pem = PrivateKey::generate_p256().unwrap().to_pkcs8_pem().unwrap();
    vec![
        pair(rsa, SignatureFormat::Der),
        pair(
            PrivateKey::from_pem(p256_pem.as_bytes()).unwrap(),
            SignatureFormat::Der,
        ),
        pair(
            PrivateKey::from_pem(p256_pem.as_bytes()).unwrap(),
            SignatureFormat::P1363,
        ),
        pair(
            PrivateKey::generate_ed25519().unwrap(),
            SignatureFormat::Der,
        ),
    ]
});

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn sign_verify_round_trip_and_bit_flips_fail(
        which in 0usize..4,
        msg in proptest::collection::vec(any::<u8>(), 0..512),
        flip in any::<usize>(),
        bit in 0u8..8,
    ) {
        let k = &KEYS[which];
        let signature = sign(&k.private, &msg, k.format).unwrap();
        prop_assert!(verify(&k.public, &msg, &signature, k.format).unwrap());

        let mut bad_sig = signature.clone();
        let i = flip % bad_sig.len();
        bad_sig[i] ^= 1 << bit;
        prop_assert!(!verify(&k.public, &msg, &bad_sig, k.format).unwrap());

        let mut bad_msg = msg.clone();
        if bad_msg.is_empty() {
            bad_msg.push(0);
        } else {
            let j = flip % bad_msg.len();
            bad_msg[j] ^= 1 << bit;
        }
        prop_assert!(!verify(&k.public, &bad_msg, &signature, k.format).unwrap());
    }

    #[test]
    fn oaep_round_trip(msg in proptest::collection::vec(any::<u8>(), 0..=190), flip in any::<usize>()) {
        let k = &KEYS[0];
        let ct = rsa_oaep::encrypt(&k.public, &msg, None).unwrap();
        prop_assert_eq!(ct.len(), 256);
        let plain = rsa_oaep::decrypt(&k.private, &ct, None).unwrap();
        prop_assert_eq!(plain.as_slice(), msg.as_slice());
        let mut bad = ct.clone();
        bad[flip % 256] ^= 0x80;
        prop_assert_eq!(rsa_oaep::decrypt(&k.private, &bad, None).map(|_| ()), Err(rsa_oaep::OaepError::Decryption));
    }
}
