//! Message authentication codes: HMAC-SHA256, HMAC-SHA512 (aws-lc-rs) and keyed BLAKE2b-512
//! (RFC 7693, as Python's `hashlib.blake2b(key=…)`), streaming, with constant-time
//! verification.

use std::fmt;
use std::io::{self, Read};
use std::str::FromStr;

use aws_lc_rs::hmac;
use blake2::digest::{KeyInit, Update};
use blake2::{Blake2b512, Blake2bMac512, Digest};
use subtle::ConstantTimeEq;

/// A MAC algorithm. `HmacSha256` is the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MacAlgorithm {
    #[default]
    HmacSha256,
    HmacSha512,
    /// Keyed BLAKE2b with a 512-bit tag; the key is at most 64 bytes.
    Blake2b,
}

/// BLAKE2b takes its key in the first block, so it cannot be longer than one block's worth
/// (RFC 7693 section 2.5); HMAC hashes long keys instead.
pub const BLAKE2B_MAX_KEY: usize = 64;

impl MacAlgorithm {
    pub const ALL: [MacAlgorithm; 3] = [
        MacAlgorithm::HmacSha256,
        MacAlgorithm::HmacSha512,
        MacAlgorithm::Blake2b,
    ];

    pub fn name(self) -> &'static str {
        match self {
            MacAlgorithm::HmacSha256 => "hmac-sha256",
            MacAlgorithm::HmacSha512 => "hmac-sha512",
            MacAlgorithm::Blake2b => "blake2b",
        }
    }

    /// Tag length in bytes.
    pub fn output_len(self) -> usize {
        match self {
            MacAlgorithm::HmacSha256 => 32,
            MacAlgorithm::HmacSha512 | MacAlgorithm::Blake2b => 64,
        }
    }
}

impl fmt::Display for MacAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for MacAlgorithm {
    type Err = MacError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MacAlgorithm::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| MacError::UnknownAlgorithm(s.to_owned()))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MacError {
    #[error("a BLAKE2b key is at most {BLAKE2B_MAX_KEY} bytes, this one is {0} bytes")]
    KeyTooLong(usize),
    #[error("unknown MAC algorithm {0:?}")]
    UnknownAlgorithm(String),
}

enum State {
    Hmac(Box<hmac::Context>),
    Blake2bKeyed(Box<Blake2bMac512>),
    // RFC 7693 defines an empty key as plain BLAKE2b (no key block), which is what Python
    // does; Blake2bMac512 would instead hash a block of zeros.
    Blake2bUnkeyed(Box<Blake2b512>),
}

/// An incremental MAC computation. Key material lives only inside the underlying libraries'
/// states (aws-lc-rs and RustCrypto), which are dropped with this value.
pub struct Mac {
    algorithm: MacAlgorithm,
    state: State,
}

impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mac")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

fn hmac_state(algorithm: hmac::Algorithm, key: &[u8]) -> State {
    State::Hmac(Box::new(hmac::Context::with_key(&hmac::Key::new(
        algorithm, key,
    ))))
}

impl Mac {
    /// Starts a MAC under `key`. Any key length works for HMAC; BLAKE2b takes 0..=64 bytes.
    pub fn new(algorithm: MacAlgorithm, key: &[u8]) -> Result<Self, MacError> {
        let state = match algorithm {
            MacAlgorithm::HmacSha256 => hmac_state(hmac::HMAC_SHA256, key),
            MacAlgorithm::HmacSha512 => hmac_state(hmac::HMAC_SHA512, key),
            MacAlgorithm::Blake2b if key.is_empty() => State::Blake2bUnkeyed(Box::default()),
            MacAlgorithm::Blake2b => State::Blake2bKeyed(Box::new(
                <Blake2bMac512 as KeyInit>::new_from_slice(key)
                    .map_err(|_| MacError::KeyTooLong(key.len()))?,
            )),
        };
        Ok(Self { algorithm, state })
    }

    pub fn algorithm(&self) -> MacAlgorithm {
        self.algorithm
    }

    pub fn update(&mut self, data: &[u8]) {
        match &mut self.state {
            State::Hmac(c) => c.update(data),
            State::Blake2bKeyed(m) => Update::update(m.as_mut(), data),
            State::Blake2bUnkeyed(h) => Digest::update(h.as_mut(), data),
        }
    }

    /// Feeds everything `reader` yields, streaming.
    pub fn update_reader<R: Read>(&mut self, reader: R) -> io::Result<()> {
        crate::hash::for_each_chunk(reader, |chunk| self.update(chunk))
    }

    /// The tag, [`MacAlgorithm::output_len`] bytes.
    pub fn finalize(self) -> Vec<u8> {
        match self.state {
            State::Hmac(c) => c.sign().as_ref().to_vec(),
            State::Blake2bKeyed(m) => blake2::digest::FixedOutput::finalize_fixed(*m).to_vec(),
            State::Blake2bUnkeyed(h) => h.finalize().to_vec(),
        }
    }

    /// Whether `expected` is this MAC's tag, compared in constant time. A tag of the wrong
    /// length (including a truncated one) does not verify.
    pub fn verify(self, expected: &[u8]) -> bool {
        constant_time_eq(&self.finalize(), expected)
    }
}

/// One-shot MAC of a byte slice.
pub fn mac(algorithm: MacAlgorithm, key: &[u8], data: &[u8]) -> Result<Vec<u8>, MacError> {
    let mut m = Mac::new(algorithm, key)?;
    m.update(data);
    Ok(m.finalize())
}

/// Equality of two byte strings in time that depends only on their lengths, never on where
/// they differ. Lengths are public (tag sizes are), so a length mismatch returns at once.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn blake2b_key_limits() {
        assert!(Mac::new(MacAlgorithm::Blake2b, &[7; 64]).is_ok());
        assert_eq!(
            Mac::new(MacAlgorithm::Blake2b, &[7; 65]).unwrap_err(),
            MacError::KeyTooLong(65)
        );
        // Empty key is plain BLAKE2b-512, as in Python's hashlib.
        assert_eq!(
            mac(MacAlgorithm::Blake2b, b"", b"abc").unwrap(),
            crate::hash::hash(crate::hash::Algorithm::Blake2b, b"abc")
        );
    }

    #[test]
    fn blake2b_keyed_rfc7693_style_vector() {
        // blake2b-kat.txt (BLAKE2 reference repository), keyed, in = empty,
        // key = 00 01 02 .. 3f.
        let key: Vec<u8> = (0u8..64).collect();
        assert_eq!(
            hex::encode(mac(MacAlgorithm::Blake2b, &key, b"").unwrap()),
            "10ebb67700b1868efb4417987acf4690ae9d972fb7a590c2f02871799aaa4786b5e996e8f0f4eb981fc214b005f42d2ff4233499391653df7aefcbc13fc51568"
        );
    }

    #[test]
    fn verify_rejects_wrong_lengths() {
        let tag = mac(MacAlgorithm::HmacSha256, b"k", b"m").unwrap();
        let m = || {
            Mac::new(MacAlgorithm::HmacSha256, b"k").map(|mut m| {
                m.update(b"m");
                m
            })
        };
        assert!(m().unwrap().verify(&tag));
        assert!(!m().unwrap().verify(&tag[..16]));
        assert!(!m().unwrap().verify(b""));
        let mut longer = tag.clone();
        longer.push(0);
        assert!(!m().unwrap().verify(&longer));
    }
}
