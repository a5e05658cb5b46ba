//! Randomness from the operating system's CSPRNG (through aws-lc-rs), uniform choice without
//! modulo bias, and diceware passphrases from the EFF large word list.
//!
//! The word list ships in `wordlists/eff_large.txt` (see `wordlists/NOTICE` for its source
//! and licence) and is compiled into the binary, so a passphrase never depends on a file that
//! an attacker could swap.

use std::sync::LazyLock;

use zeroize::Zeroizing;

/// The CSPRNG failed. On Linux this does not happen once the kernel's pool is initialised;
/// it is an error rather than a panic so a caller can report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the system random number generator failed")]
pub struct RandomError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PassphraseError {
    #[error("a passphrase needs at least one word")]
    NoWords,
    #[error(transparent)]
    Random(#[from] RandomError),
}

/// Fills `buf` with CSPRNG output.
pub fn fill(buf: &mut [u8]) -> Result<(), RandomError> {
    aws_lc_rs::rand::fill(buf).map_err(|_| RandomError)
}

/// `n` bytes of CSPRNG output.
pub fn bytes(n: usize) -> Result<Vec<u8>, RandomError> {
    let mut v = vec![0u8; n];
    fill(&mut v)?;
    Ok(v)
}

/// A uniformly distributed integer in `0..bound` (`bound` ≥ 1). Rejection sampling: a 64-bit
/// draw is kept only below the largest multiple of `bound`, so no remainder is favoured.
pub fn uniform_below(bound: u64) -> Result<u64, RandomError> {
    if bound <= 1 {
        return Ok(0);
    }
    // 2^64 mod bound, computed without overflowing: draws below it are the biased tail.
    let reject_below = bound.wrapping_neg() % bound;
    loop {
        let mut b = [0u8; 8];
        fill(&mut b)?;
        let x = u64::from_le_bytes(b);
        if x >= reject_below {
            return Ok(x % bound);
        }
    }
}

static EFF_LARGE_TEXT: &str = include_str!("wordlists/eff_large.txt");

static EFF_LARGE: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| EFF_LARGE_TEXT.lines().filter(|w| !w.is_empty()).collect());

/// The EFF large word list: 7,776 distinct lowercase words (4 contain a hyphen), sorted.
pub fn eff_large_wordlist() -> &'static [&'static str] {
    &EFF_LARGE
}

/// A generated passphrase and its strength.
#[derive(Clone)]
pub struct Passphrase {
    /// The words joined by the separator. Wiped from memory on drop.
    pub phrase: Zeroizing<String>,
    pub words: usize,
    /// `words × log2(list size)`: the entropy against an attacker who knows the list.
    pub entropy_bits: f64,
}

impl std::fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passphrase")
            .field("words", &self.words)
            .field("entropy_bits", &self.entropy_bits)
            .finish_non_exhaustive()
    }
}

/// `words` words chosen independently and uniformly from the EFF large list, joined by
/// `separator`.
pub fn passphrase(words: usize, separator: &str) -> Result<Passphrase, PassphraseError> {
    if words == 0 {
        return Err(PassphraseError::NoWords);
    }
    let list = eff_large_wordlist();
    let mut phrase = Zeroizing::new(String::new());
    for i in 0..words {
        if i > 0 {
            phrase.push_str(separator);
        }
        let idx = uniform_below(list.len() as u64)?;
        let word = usize::try_from(idx)
            .ok()
            .and_then(|i| list.get(i))
            .ok_or(RandomError)?;
        phrase.push_str(word);
    }
    Ok(Passphrase {
        phrase,
        words,
        entropy_bits: words as f64 * (list.len() as f64).log2(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn wordlist_is_the_eff_large_list() {
        let list = eff_large_wordlist();
        assert_eq!(list.len(), 7776);
        let unique: HashSet<_> = list.iter().collect();
        assert_eq!(unique.len(), 7776);
        assert!(
            list.iter()
                .all(|w| w.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'))
        );
        assert_eq!((list[0], list[7775]), ("abacus", "zoom"));
    }

    #[test]
    fn passphrase_shape_and_entropy() {
        let p = passphrase(6, "-").unwrap();
        assert!((p.entropy_bits - 6.0 * 7776f64.log2()).abs() < 1e-9);
        // Hyphenated words (t-shirt) make "-" ambiguous; count with a separator they lack.
        let p = passphrase(8, " ").unwrap();
        let words: Vec<&str> = p.phrase.split(' ').collect();
        assert_eq!(words.len(), 8);
        let list: HashSet<_> = eff_large_wordlist().iter().copied().collect();
        assert!(words.iter().all(|w| list.contains(w)));
        assert_eq!(passphrase(0, " ").unwrap_err(), PassphraseError::NoWords);
    }

    #[test]
    fn uniform_below_stays_in_range_and_covers_it() {
        let mut seen = [false; 6];
        for _ in 0..2000 {
            let v = uniform_below(6).unwrap();
            assert!(v < 6);
            seen[v as usize] = true;
        }
        assert!(seen.iter().all(|s| *s));
        assert_eq!(uniform_below(1).unwrap(), 0);
        assert_eq!(uniform_below(0).unwrap(), 0);
    }

    #[test]
    fn bytes_differ() {
        let a = bytes(32).unwrap();
        let b = bytes(32).unwrap();
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        assert!(bytes(0).unwrap().is_empty());
    }
}
