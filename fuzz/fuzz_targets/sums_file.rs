//! `sha256sum`-style check lists (`palisade hash --check FILE`), for every digest length.
//!
//! Properties: nothing panics; one result per non-blank, non-comment line, in order, with
//! 1-based line numbers that exist; every entry has a digest of the algorithm's length and a
//! non-empty name; and any entry (and the raw input taken as a file name) survives being
//! written back as a check line with `escape_name` and parsed again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palisade_crypto::hash::{self, Algorithm, SumsEntry};

/// The check line `sha256sum` would print for `entry`.
fn format_line(digest: &[u8], name: &[u8], binary: bool) -> Vec<u8> {
    let (escaped, name) = hash::escape_name(name);
    let mut line = Vec::new();
    if escaped {
        line.push(b'\\');
    }
    line.extend_from_slice(hex_lower(digest).as_bytes());
    line.extend_from_slice(if binary { b" *" } else { b"  " });
    line.extend_from_slice(&name);
    line.push(b'\n');
    line
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn round_trip(algorithm: Algorithm, entry: &SumsEntry) {
    let line = format_line(&entry.digest, &entry.name, entry.binary);
    let parsed = hash::parse_sums(&line, algorithm);
    let expected = SumsEntry {
        line: 1,
        ..entry.clone()
    };
    assert_eq!(
        parsed,
        vec![Ok(expected)],
        "line {:?}",
        String::from_utf8_lossy(&line)
    );
}

fuzz_target!(|data: &[u8]| {
    // Line count as the parser defines it: `\n`-separated, a final newline ends the last line.
    let lines = data.split(|&b| b == b'\n').count() - usize::from(data.ends_with(b"\n"));
    for algorithm in [Algorithm::Sha256, Algorithm::Crc32, Algorithm::Blake2b] {
        let results = hash::parse_sums(data, algorithm);
        assert!(results.len() <= lines);
        let mut previous = 0;
        for result in &results {
            let line = match result {
                Ok(entry) => {
                    assert_eq!(entry.digest.len(), algorithm.output_len());
                    assert!(!entry.name.is_empty());
                    round_trip(algorithm, entry);
                    entry.line
                }
                Err(malformed) => malformed.line,
            };
            assert!(line > previous && line <= lines, "line {line} of {lines}");
            previous = line;
        }
    }

    // escape_name: any non-empty byte string is a possible file name on Unix.
    if !data.is_empty() {
        let digest = vec![0xa5; Algorithm::Sha256.output_len()];
        for binary in [false, true] {
            round_trip(
                Algorithm::Sha256,
                &SumsEntry {
                    line: 1,
                    digest: digest.clone(),
                    name: data.to_vec(),
                    binary,
                },
            );
        }
    }
});
