//! `palisade random` (lengths and encodings) and `palisade passphrase` (words from the EFF
//! list, separator, entropy line).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::collections::HashSet;

use common::{assert_code, assert_one_clear_line, py, run, stderr, stdout};

#[test]
fn default_is_32_bytes_unpadded_base64url() {
    let a = run(&["random"], b"");
    assert_code(&a, 0);
    let s = stdout(&a);
    assert!(s.ends_with('\n'));
    let t = s.trim_end_matches('\n');
    assert_eq!(t.len(), 43);
    assert!(
        t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
    // Python decodes it to 32 bytes, as secrets.token_urlsafe's output would.
    let n = py(
        "import sys, base64; t = sys.argv[1]; print(len(base64.urlsafe_b64decode(t + '=' * (-len(t) % 4))))",
        &[t],
        b"",
    );
    assert_eq!(String::from_utf8(n).unwrap().trim(), "32");
    let b = run(&["random", "--urlsafe"], b"");
    assert_code(&b, 0);
    assert_eq!(stdout(&b).trim().len(), 43);
    assert_ne!(a.stdout, b.stdout, "two runs must differ");
}

#[test]
fn lengths_and_encodings() {
    for n in [0usize, 1, 2, 3, 31, 32, 33, 100, 49_152, 49_153, 1_000_000] {
        let ns = n.to_string();
        let raw = run(&["random", "-n", &ns, "--raw"], b"");
        assert_code(&raw, 0);
        assert_eq!(raw.stdout.len(), n, "--raw -n {n}");

        let hex = run(&["random", "--bytes", &ns, "--hex"], b"");
        assert_code(&hex, 0);
        let h = stdout(&hex);
        assert!(h.ends_with('\n'));
        let h = h.trim_end_matches('\n');
        assert_eq!(h.len(), 2 * n);
        assert!(
            h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );

        let url = run(&["random", "-n", &ns], b"");
        let u = stdout(&url);
        let u = u.trim_end_matches('\n');
        assert_eq!(u.len(), (4 * n).div_ceil(3), "urlsafe -n {n}");
        assert!(!u.contains('='));
    }
    let a = run(&["random", "-n", "64", "--raw"], b"");
    let b = run(&["random", "-n", "64", "--raw"], b"");
    assert_ne!(a.stdout, b.stdout);
}

#[test]
fn encodings_are_exclusive_and_bad_counts_rejected() {
    let o = run(&["random", "--hex", "--raw"], b"");
    assert_code(&o, 2);
    let o = run(&["random", "-n", "-5"], b"");
    assert_code(&o, 2);
    let o = run(&["random", "-n", "lots"], b"");
    assert_code(&o, 2);
}

fn wordlist() -> HashSet<String> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../palisade-crypto/src/wordlists/eff_large.txt");
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn passphrase_defaults_and_entropy_line() {
    let list = wordlist();
    assert_eq!(list.len(), 7776);
    let o = run(&["passphrase"], b"");
    assert_code(&o, 0);
    let s = stdout(&o);
    assert!(s.ends_with('\n') && s.lines().count() == 1);
    let words: Vec<&str> = s.trim_end().split(' ').collect();
    assert_eq!(words.len(), 6);
    assert!(words.iter().all(|w| list.contains(*w)), "{words:?}");
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    // 6 × log2(7776) = 77.55 bits.
    assert!(err.contains("77.5") && err.contains("bits"), "{err}");
    let again = run(&["passphrase"], b"");
    assert_ne!(o.stdout, again.stdout);
}

#[test]
fn passphrase_word_count_and_separator() {
    let list = wordlist();
    for (n, sep) in [(1usize, " "), (4, "."), (10, " :: "), (12, "_")] {
        let o = run(
            &["passphrase", "--words", &n.to_string(), "--separator", sep],
            b"",
        );
        assert_code(&o, 0);
        let s = stdout(&o);
        let words: Vec<&str> = s.trim_end_matches('\n').split(sep).collect();
        assert_eq!(words.len(), n, "{s}");
        assert!(words.iter().all(|w| list.contains(*w)), "{words:?}");
        let bits = n as f64 * 7776f64.log2();
        assert!(stderr(&o).contains(&format!("{bits:.1}")), "{}", stderr(&o));
    }
}

#[test]
fn passphrase_zero_words_is_usage_error() {
    let o = run(&["passphrase", "--words", "0"], b"");
    assert_code(&o, 2);
    assert_one_clear_line(&o, Some("--words"));
    assert!(o.stdout.is_empty());
}
