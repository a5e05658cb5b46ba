//! MACs against RFC 4231 and Project Wycheproof (including must-fail cases), and properties:
//! any single flipped bit in the message or the tag fails verification.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::{load_json, unhex};
use palisade_crypto::mac::{self, Mac, MacAlgorithm};
use proptest::prelude::*;

#[test]
fn rfc4231_hmac_sha256_and_sha512() {
    let v = load_json("rfc/rfc4231_hmac_sha2.json");
    let tests = v["tests"].as_array().unwrap();
    assert_eq!(tests.len(), 7);
    let mut checked = 0;
    for t in tests {
        let key = unhex(t["key"].as_str().unwrap());
        let data = unhex(t["data"].as_str().unwrap());
        let truncate = t["truncateToBytes"].as_u64().map(|n| n as usize);
        for (algo, field) in [
            (MacAlgorithm::HmacSha256, "hmac_sha256"),
            (MacAlgorithm::HmacSha512, "hmac_sha512"),
        ] {
            let expected = unhex(t[field].as_str().unwrap());
            let tag = mac::mac(algo, &key, &data).unwrap();
            assert_eq!(tag.len(), algo.output_len());
            match truncate {
                Some(n) => {
                    assert_eq!(expected.len(), n);
                    assert_eq!(&tag[..n], &expected[..], "tcId {} {field}", t["tcId"]);
                    // A truncated tag is not a valid tag for the full-length verifier.
                    let mut m = Mac::new(algo, &key).unwrap();
                    m.update(&data);
                    assert!(!m.verify(&expected));
                }
                None => {
                    assert_eq!(tag, expected, "tcId {} {field}", t["tcId"]);
                    let mut m = Mac::new(algo, &key).unwrap();
                    m.update(&data);
                    assert!(m.verify(&expected));
                }
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 14);
}

#[test]
fn wycheproof_hmac_sha256_every_case() {
    let v = load_json("wycheproof/hmac_sha256_test.json");
    let mut total = 0;
    let mut invalid = 0;
    for group in v["testGroups"].as_array().unwrap() {
        let tag_bytes = (group["tagSize"].as_u64().unwrap() / 8) as usize;
        for t in group["tests"].as_array().unwrap() {
            let key = unhex(t["key"].as_str().unwrap());
            let msg = unhex(t["msg"].as_str().unwrap());
            let expected = unhex(t["tag"].as_str().unwrap());
            let full = mac::mac(MacAlgorithm::HmacSha256, &key, &msg).unwrap();
            let ours = &full[..tag_bytes.min(full.len())];
            let matches = mac::constant_time_eq(ours, &expected);
            match t["result"].as_str().unwrap() {
                "valid" => assert!(matches, "tcId {} should verify", t["tcId"]),
                "invalid" => {
                    assert!(!matches, "tcId {} must not verify", t["tcId"]);
                    invalid += 1;
                }
                other => panic!("tcId {}: unexpected result {other}", t["tcId"]),
            }
            // The full-length verifier accepts exactly the valid full-size tags.
            let mut m = Mac::new(MacAlgorithm::HmacSha256, &key).unwrap();
            m.update(&msg);
            assert_eq!(
                m.verify(&expected),
                matches && tag_bytes == 32,
                "tcId {}",
                t["tcId"]
            );
            total += 1;
        }
    }
    assert_eq!(total, v["numberOfTests"].as_u64().unwrap() as usize);
    assert!(invalid > 0, "the file has must-fail cases; none were seen");
}

fn algo() -> impl Strategy<Value = MacAlgorithm> {
    prop::sample::select(MacAlgorithm::ALL.to_vec())
}

proptest! {
    #[test]
    fn flipped_message_bit_fails(
        algo in algo(),
        key in prop::collection::vec(any::<u8>(), 0..=64),
        msg in prop::collection::vec(any::<u8>(), 1..300),
        bit in any::<prop::sample::Index>(),
    ) {
        let tag = mac::mac(algo, &key, &msg).unwrap();
        let mut bad = msg.clone();
        let i = bit.index(bad.len() * 8);
        bad[i / 8] ^= 1 << (i % 8);
        let mut m = Mac::new(algo, &key).unwrap();
        m.update(&bad);
        prop_assert!(!m.verify(&tag));
        let mut m = Mac::new(algo, &key).unwrap();
        m.update(&msg);
        prop_assert!(m.verify(&tag));
    }

    #[test]
    fn flipped_tag_bit_fails(
        algo in algo(),
        key in prop::collection::vec(any::<u8>(), 0..=64),
        msg in prop::collection::vec(any::<u8>(), 0..300),
        bit in any::<prop::sample::Index>(),
    ) {
        let mut tag = mac::mac(algo, &key, &msg).unwrap();
        let i = bit.index(tag.len() * 8);
        tag[i / 8] ^= 1 << (i % 8);
        let mut m = Mac::new(algo, &key).unwrap();
        m.update(&msg);
        prop_assert!(!m.verify(&tag));
    }

    #[test]
    fn mac_streaming_equals_one_shot(
        algo in algo(),
        key in prop::collection::vec(any::<u8>(), 0..=64),
        msg in prop::collection::vec(any::<u8>(), 0..2000),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(msg.len() + 1)).collect();
        points.sort_unstable();
        let mut m = Mac::new(algo, &key).unwrap();
        let mut start = 0;
        for p in points.into_iter().chain([msg.len()]) {
            m.update(&msg[start..p]);
            start = p;
        }
        prop_assert_eq!(m.finalize(), mac::mac(algo, &key, &msg).unwrap());
    }
}
