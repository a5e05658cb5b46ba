//! Hashing properties: streaming in any split equals one-shot for every algorithm, the reader
//! path equals both, and the check-list parser never panics on arbitrary bytes.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use palisade_crypto::hash::{self, Algorithm, Hasher};
use proptest::prelude::*;

fn algo() -> impl Strategy<Value = Algorithm> {
    prop::sample::select(Algorithm::ALL.to_vec())
}

proptest! {
    #[test]
    fn streaming_any_split_equals_one_shot(
        algo in algo(),
        data in prop::collection::vec(any::<u8>(), 0..5000),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..10),
    ) {
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(data.len() + 1)).collect();
        points.sort_unstable();
        let mut h = Hasher::new(algo);
        let mut start = 0;
        for p in points.into_iter().chain([data.len()]) {
            h.update(&data[start..p]);
            start = p;
        }
        let one_shot = hash::hash(algo, &data);
        prop_assert_eq!(one_shot.len(), algo.output_len());
        prop_assert_eq!(h.finalize(), one_shot.clone());
        prop_assert_eq!(hash::hash_reader(algo, &data[..]).unwrap(), one_shot);
    }

    #[test]
    fn sums_parser_total_on_arbitrary_bytes(
        algo in algo(),
        data in prop::collection::vec(any::<u8>(), 0..400),
    ) {
        for e in hash::parse_sums(&data, algo).into_iter().flatten() {
            prop_assert_eq!(e.digest.len(), algo.output_len());
            prop_assert!(!e.name.is_empty());
        }
    }

    #[test]
    fn escaped_names_round_trip_through_the_parser(
        name in prop::collection::vec(any::<u8>(), 1..40),
    ) {
        // Names are taken to the end of the line, so a sums line can carry any byte once
        // escaped, except that unescaped lines cannot hold a newline (GNU's rule too).
        let digest = hash::hash(Algorithm::Sha256, &name);
        let (escaped, shown) = hash::escape_name(&name);
        let mut line = Vec::new();
        if escaped { line.push(b'\\'); }
        line.extend_from_slice(hex::encode(&digest).as_bytes());
        line.extend_from_slice(b"  ");
        line.extend_from_slice(&shown);
        line.push(b'\n');
        let parsed = hash::parse_sums(&line, Algorithm::Sha256);
        prop_assert_eq!(parsed.len(), 1);
        let e = parsed[0].clone().unwrap();
        prop_assert_eq!(e.name, name);
        prop_assert_eq!(e.digest, digest);
    }
}

/// Chunked reads bigger than the internal buffer, with a reader that returns short reads.
#[test]
fn hash_reader_with_short_reads_over_several_chunks() {
    struct Trickle<'a>(&'a [u8]);
    impl std::io::Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(self.0.len()).min(65_537);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }
    // Sizes around the (up to 4 MiB) chunk boundaries: exact multiples end on an empty read.
    for len in [
        hash::READ_CHUNK,
        hash::READ_CHUNK * 2 + 12_345,
        hash::READ_CHUNK * 8,
        hash::READ_CHUNK * 9 + 1,
    ] {
        let data: Vec<u8> = (0..len).map(|i| (i * 31 % 256) as u8).collect();
        for algo in Algorithm::ALL {
            assert_eq!(
                hash::hash_reader(algo, Trickle(&data)).unwrap(),
                hash::hash(algo, &data),
                "{algo} {len}"
            );
        }
    }
}
