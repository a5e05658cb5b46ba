//! Property tests for `agefile`: random plaintexts (including the 64 KiB chunk boundaries)
//! round-trip, and flipping any single bit of the ciphertext is rejected.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use palisade_crypto::agefile::{self, AgeError, DecryptWith, EncryptTo, Identity, Recipient};
use proptest::prelude::*;

const CHUNK: usize = 64 * 1024;

fn plaintext() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..300),
        // Around the chunk boundaries, where an off-by-one in the last-chunk logic would show.
        (0usize..3, 0usize..3).prop_map(|(chunks, delta)| {
            let len = (chunks * CHUNK + delta).saturating_sub(1);
            (0..len).map(|i| (i * 31 % 251) as u8).collect()
        }),
        proptest::collection::vec(any::<u8>(), 0..(3 * CHUNK)),
    ]
}

fn encrypt_to(recipients: &[Recipient], pt: &[u8]) -> Vec<u8> {
    agefile::encrypt(EncryptTo::Recipients(recipients), pt, Vec::new()).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn round_trip(pt in plaintext(), extra in 0usize..3) {
        let ids: Vec<Identity> = (0..=extra).map(|_| Identity::generate()).collect();
        let recipients: Vec<Recipient> = ids.iter().map(Identity::recipient).collect();
        let ct = encrypt_to(&recipients, &pt);
        // Every recipient can open it on its own.
        for id in &ids {
            let out = agefile::decrypt(DecryptWith::Identities(std::slice::from_ref(id)), &ct[..], Vec::new()).unwrap();
            prop_assert_eq!(&out, &pt);
        }
        // A stranger cannot.
        let stranger = [Identity::generate()];
        prop_assert!(matches!(
            agefile::decrypt(DecryptWith::Identities(&stranger), &ct[..], Vec::new()),
            Err(AgeError::Decrypt)
        ));
    }

    #[test]
    fn any_single_bit_flip_is_rejected(pt in proptest::collection::vec(any::<u8>(), 0..(CHUNK + 100)), pick in any::<proptest::sample::Index>(), bit in 0u8..8) {
        let id = Identity::generate();
        let ct = encrypt_to(&[id.recipient()], &pt);
        let mut bad = ct.clone();
        let at = pick.index(bad.len());
        bad[at] ^= 1 << bit;
        let result = agefile::decrypt(DecryptWith::Identities(&[id]), &bad[..], Vec::new());
        prop_assert!(result.is_err(), "flip at byte {} bit {} accepted", at, bit);
    }

    #[test]
    fn any_truncation_is_rejected(pt in proptest::collection::vec(any::<u8>(), 1..(2 * CHUNK + 100)), pick in any::<proptest::sample::Index>()) {
        let id = Identity::generate();
        let ct = encrypt_to(&[id.recipient()], &pt);
        let cut = pick.index(ct.len());
        let result = agefile::decrypt(DecryptWith::Identities(&[id]), &ct[..cut], Vec::new());
        prop_assert!(matches!(result, Err(AgeError::Decrypt)), "cut at {} of {}", cut, ct.len());
    }
}

#[test]
fn trailing_data_after_the_last_chunk_is_rejected() {
    let id = Identity::generate();
    for len in [0, 1, CHUNK, CHUNK + 1] {
        let mut ct = encrypt_to(&[id.recipient()], &vec![9u8; len]);
        ct.push(0);
        let ids = [id.clone()];
        assert!(
            agefile::decrypt(DecryptWith::Identities(&ids), &ct[..], Vec::new()).is_err(),
            "len {len}"
        );
    }
}

#[test]
fn header_parser_entry_point() {
    let id = Identity::generate();
    let ct = encrypt_to(&[id.recipient()], b"x");
    assert!(!agefile::parse_header(&ct).unwrap().passphrase);
    assert!(matches!(
        agefile::parse_header(b"PK\x03\x04"),
        Err(AgeError::NotAgeFile)
    ));
    assert!(agefile::parse_header(&ct[..40]).is_err());
}
