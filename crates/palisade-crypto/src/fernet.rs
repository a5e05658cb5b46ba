//! Fernet tokens (spec version `0x80`), interoperable with Python's `cryptography.fernet`,
//! including `MultiFernet`-style key lists and rotation.
//!
//! A token is `base64url(0x80 ‖ timestamp(u64 BE) ‖ IV(16) ‖ AES-128-CBC-PKCS#7(plaintext) ‖
//! HMAC-SHA256(signing key, everything before))`; a key is `base64url(signing(16) ‖
//! encryption(16))`. AES and HMAC come from `aws-lc-rs`.
//!
//! Verification order matters for security: decode and check the framing (all public
//! information), then verify the MAC in constant time, and only then look at the timestamp
//! and decrypt. Every failure before the MAC verifies, and a padding failure after it, is the
//! single opaque [`FernetError::InvalidToken`], so a caller cannot be used as a padding or MAC
//! oracle. [`FernetError::Expired`] and [`FernetError::FromFuture`] are reported separately
//! only for authenticated tokens, where the timestamp is the key holder's own statement and
//! telling the user reveals nothing an attacker could not already read from the token.
//!
//! ## Limits
//! Fernet is a whole-message format: the plaintext, and then the token, are held in memory.
//! [`MAX_PLAINTEXT_LEN`] (256 MiB) bounds what [`encrypt`] accepts and [`MAX_TOKEN_LEN`]
//! (342 MiB of token text, enough for a 256 MiB message plus surrounding whitespace) bounds
//! what [`decrypt`] and [`rotate`] accept; larger inputs get [`FernetError::TooLarge`].
//!
//! Tokens are checked with the strict padded base64url alphabet Python produces; leading and
//! trailing ASCII whitespace (a newline at the end of a file) is ignored. Keys may be padded
//! or unpadded.

use aws_lc_rs::cipher::{
    AES_128, DecryptionContext, EncryptionContext, PaddedBlockDecryptingKey,
    PaddedBlockEncryptingKey, UnboundCipherKey,
};
use aws_lc_rs::hmac;
use aws_lc_rs::iv::FixedLength;
use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Largest plaintext [`encrypt`] accepts: 256 MiB.
pub const MAX_PLAINTEXT_LEN: usize = 256 * 1024 * 1024;

/// Largest token text [`decrypt`] and [`rotate`] accept: 342 MiB. A 256 MiB message makes a
/// token of about 341.3 MiB (`4/3 × (plaintext + 73)`); the rest is room for whitespace.
pub const MAX_TOKEN_LEN: usize = 342 * 1024 * 1024;

/// Tokens from more than this many seconds in the future are rejected (the skew Python's
/// `cryptography` allows; the spec leaves the number to implementations).
pub const MAX_CLOCK_SKEW: u64 = 60;

const VERSION: u8 = 0x80;
const BLOCK: usize = 16;
const TS_LEN: usize = 8;
const IV_LEN: usize = 16;
/// Version, timestamp and IV: the bytes before the ciphertext.
const HEADER_LEN: usize = 1 + TS_LEN + IV_LEN;
const TAG_LEN: usize = 32;
/// Header, one ciphertext block (PKCS#7 always adds at least one byte) and the tag.
const MIN_TOKEN_BYTES: usize = HEADER_LEN + BLOCK + TAG_LEN;

/// Keys are accepted with or without `=` padding (people trim it when pasting).
const KEY_ENGINE: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a token was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FernetError {
    /// The token does not decode or does not authenticate under any of the keys. One opaque
    /// variant for every such reason, so that no step of the check can be told apart.
    #[error("invalid Fernet token")]
    InvalidToken,
    /// Authenticated, but older than the time-to-live.
    #[error("token expired")]
    Expired,
    /// Authenticated, but stamped more than [`MAX_CLOCK_SKEW`] seconds in the future.
    #[error("token timestamp is in the future")]
    FromFuture,
    /// The input is over [`MAX_PLAINTEXT_LEN`] or [`MAX_TOKEN_LEN`].
    #[error("input is larger than the Fernet limit of {limit} bytes")]
    TooLarge { limit: usize },
    /// No key was given to try.
    #[error("no Fernet key given")]
    NoKeys,
    /// The system random generator or the AES backend failed (not expected to happen).
    #[error("the cryptographic backend failed")]
    Backend,
}

/// Why a key text was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("not base64url")]
    NotBase64,
    #[error("decodes to {0} bytes, a Fernet key is 32")]
    WrongLength(usize),
}

/// A Fernet key: 16 bytes of HMAC signing key then 16 bytes of AES-128 key. Wiped on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Key {
    bytes: [u8; 32],
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("fernet::Key(<redacted>)")
    }
}

impl Key {
    /// A fresh random key from the system CSPRNG.
    pub fn generate() -> Result<Self, FernetError> {
        let mut bytes = [0u8; 32];
        aws_lc_rs::rand::fill(&mut bytes).map_err(|_| FernetError::Backend)?;
        Ok(Self { bytes })
    }

    /// A key from its raw 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self { bytes }
    }

    /// Parses the base64url text form (44 characters with padding, 43 without), ignoring
    /// surrounding whitespace such as the newline at the end of a key file.
    pub fn from_base64(text: &[u8]) -> Result<Self, KeyError> {
        let decoded = Zeroizing::new(
            KEY_ENGINE
                .decode(text.trim_ascii())
                .map_err(|_| KeyError::NotBase64)?,
        );
        let bytes: [u8; 32] = decoded
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::WrongLength(decoded.len()))?;
        Ok(Self { bytes })
    }

    /// The 44-character padded base64url form, as `Fernet.generate_key()` returns it.
    pub fn to_base64(&self) -> String {
        URL_SAFE.encode(self.bytes)
    }

    fn signing(&self) -> hmac::Key {
        hmac::Key::new(hmac::HMAC_SHA256, self.bytes.get(..16).unwrap_or_default())
    }

    fn encryption(&self) -> Result<UnboundCipherKey, FernetError> {
        UnboundCipherKey::new(&AES_128, self.bytes.get(16..).unwrap_or_default())
            .map_err(|_| FernetError::Backend)
    }
}

impl std::str::FromStr for Key {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_base64(s.as_bytes())
    }
}

/// Encrypts `plaintext` into a token stamped `now_unix`, with a random IV.
pub fn encrypt(key: &Key, plaintext: &[u8], now_unix: u64) -> Result<String, FernetError> {
    let mut iv = [0u8; IV_LEN];
    aws_lc_rs::rand::fill(&mut iv).map_err(|_| FernetError::Backend)?;
    encrypt_at(key, plaintext, now_unix, iv)
}

/// Encrypts with a caller-chosen timestamp and IV. Only for known-answer tests and for
/// [`rotate`]: reusing an IV with the same key and message prefix leaks equality.
pub fn encrypt_at(
    key: &Key,
    plaintext: &[u8],
    timestamp: u64,
    iv: [u8; IV_LEN],
) -> Result<String, FernetError> {
    if plaintext.len() > MAX_PLAINTEXT_LEN {
        return Err(FernetError::TooLarge {
            limit: MAX_PLAINTEXT_LEN,
        });
    }
    let raw = seal(key, plaintext, timestamp, iv)?;
    Ok(URL_SAFE.encode(raw))
}

/// Builds the binary token in one allocation sized for the padded ciphertext and the tag,
/// encrypting in place so the plaintext is copied exactly once.
fn seal(
    key: &Key,
    plaintext: &[u8],
    timestamp: u64,
    iv: [u8; IV_LEN],
) -> Result<Vec<u8>, FernetError> {
    let padded_len = (plaintext.len() / BLOCK + 1) * BLOCK;
    let mut raw = Vec::with_capacity(HEADER_LEN + padded_len + TAG_LEN);
    raw.push(VERSION);
    raw.extend_from_slice(&timestamp.to_be_bytes());
    raw.extend_from_slice(&iv);
    raw.extend_from_slice(plaintext);

    let aes =
        PaddedBlockEncryptingKey::cbc_pkcs7(key.encryption()?).map_err(|_| FernetError::Backend)?;
    let context = EncryptionContext::Iv128(FixedLength::from(iv));
    aes.less_safe_encrypt(
        &mut Tail {
            buf: &mut raw,
            start: HEADER_LEN,
        },
        context,
    )
    .map_err(|_| FernetError::Backend)?;

    let tag = hmac::sign(&key.signing(), &raw);
    raw.extend_from_slice(tag.as_ref());
    Ok(raw)
}

/// The part of the token buffer after the header, as the in-place padded encryption wants
/// it: a mutable slice that padding can extend (within the capacity reserved in [`seal`]).
struct Tail<'a> {
    buf: &'a mut Vec<u8>,
    start: usize,
}

impl AsMut<[u8]> for Tail<'_> {
    fn as_mut(&mut self) -> &mut [u8] {
        self.buf.get_mut(self.start..).unwrap_or_default()
    }
}

impl<'b> Extend<&'b u8> for Tail<'_> {
    fn extend<I: IntoIterator<Item = &'b u8>>(&mut self, iter: I) {
        self.buf.extend(iter);
    }
}

/// Decrypts `token` with the first of `keys` whose MAC verifies (as `MultiFernet.decrypt`).
///
/// With `ttl`, a token older than `ttl` seconds at `now_unix` is [`FernetError::Expired`].
/// A token stamped more than [`MAX_CLOCK_SKEW`] seconds after `now_unix` is always
/// [`FernetError::FromFuture`] (Python only checks this when a TTL is given; we always do,
/// as the command-line contract asks).
pub fn decrypt(
    keys: &[Key],
    token: &[u8],
    ttl: Option<u64>,
    now_unix: u64,
) -> Result<Vec<u8>, FernetError> {
    open_checked(keys, token, Some(TimeCheck { ttl, now_unix })).map(|(_, plaintext)| plaintext)
}

/// Re-encrypts `token` under `keys[0]`, keeping its original timestamp, after decrypting it
/// with any of `keys` (as `MultiFernet.rotate`: no TTL or clock check, so an old token can
/// still be rotated onto a new key).
pub fn rotate(keys: &[Key], token: &[u8]) -> Result<String, FernetError> {
    let first = keys.first().ok_or(FernetError::NoKeys)?;
    let (timestamp, plaintext) = open_checked(keys, token, None)?;
    let plaintext = Zeroizing::new(plaintext);
    let mut iv = [0u8; IV_LEN];
    aws_lc_rs::rand::fill(&mut iv).map_err(|_| FernetError::Backend)?;
    let raw = seal(first, &plaintext, timestamp, iv)?;
    Ok(URL_SAFE.encode(raw))
}

/// The token's timestamp, after verifying its MAC under one of `keys` (as
/// `Fernet.extract_timestamp`): no time checks.
pub fn extract_timestamp(keys: &[Key], token: &[u8]) -> Result<u64, FernetError> {
    let raw = decode(token)?;
    let (signed, tag) = split_tag(&raw)?;
    if !keys.iter().any(|k| mac_ok(k, signed, tag)) {
        return Err(FernetError::InvalidToken);
    }
    timestamp_of(&raw)
}

#[derive(Clone, Copy)]
struct TimeCheck {
    ttl: Option<u64>,
    now_unix: u64,
}

/// Decodes, authenticates, checks the time (when asked) and decrypts; returns the
/// timestamp and the plaintext, reusing the decoded buffer for the plaintext.
fn open_checked(
    keys: &[Key],
    token: &[u8],
    time: Option<TimeCheck>,
) -> Result<(u64, Vec<u8>), FernetError> {
    if keys.is_empty() {
        return Err(FernetError::NoKeys);
    }
    let mut raw = decode(token)?;
    let (signed, tag) = split_tag(&raw)?;
    // A single key whose MAC verifies decides the outcome. Decryption is in place, so a
    // second key could only be tried on a copy; it would also have to share the first one's
    // signing half, which generated keys never do.
    let key = keys
        .iter()
        .find(|k| mac_ok(k, signed, tag))
        .ok_or(FernetError::InvalidToken)?;

    let timestamp = timestamp_of(&raw)?;
    if let Some(TimeCheck { ttl, now_unix }) = time {
        if let Some(ttl) = ttl
            && now_unix.saturating_sub(timestamp) > ttl
        {
            return Err(FernetError::Expired);
        }
        if timestamp > now_unix.saturating_add(MAX_CLOCK_SKEW) {
            return Err(FernetError::FromFuture);
        }
    }

    let iv: [u8; IV_LEN] = raw
        .get(1 + TS_LEN..HEADER_LEN)
        .and_then(|s| s.try_into().ok())
        .ok_or(FernetError::InvalidToken)?;
    let body_end = raw.len().saturating_sub(TAG_LEN);
    let aes =
        PaddedBlockDecryptingKey::cbc_pkcs7(key.encryption()?).map_err(|_| FernetError::Backend)?;
    let body = raw
        .get_mut(HEADER_LEN..body_end)
        .ok_or(FernetError::InvalidToken)?;
    let plain_len = aes
        .decrypt(body, DecryptionContext::Iv128(FixedLength::from(iv)))
        .map_err(|_| FernetError::InvalidToken)?
        .len();
    // The plaintext sits right after the header; move it to the front of the same buffer
    // rather than allocating and copying into a new one.
    raw.truncate(HEADER_LEN + plain_len);
    raw.drain(..HEADER_LEN);
    Ok((timestamp, raw))
}

/// Strict padded base64url, ignoring surrounding whitespace; then the framing checks that
/// need no key (version, minimum length, whole blocks). All failures are `InvalidToken`.
fn decode(token: &[u8]) -> Result<Vec<u8>, FernetError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(FernetError::TooLarge {
            limit: MAX_TOKEN_LEN,
        });
    }
    let raw = URL_SAFE
        .decode(token.trim_ascii())
        .map_err(|_| FernetError::InvalidToken)?;
    let framed = raw.first() == Some(&VERSION)
        && raw.len() >= MIN_TOKEN_BYTES
        && (raw.len() - HEADER_LEN - TAG_LEN).is_multiple_of(BLOCK);
    if framed {
        Ok(raw)
    } else {
        Err(FernetError::InvalidToken)
    }
}

fn split_tag(raw: &[u8]) -> Result<(&[u8], &[u8]), FernetError> {
    raw.split_at_checked(raw.len().saturating_sub(TAG_LEN))
        .ok_or(FernetError::InvalidToken)
}

/// Constant-time comparison of the HMAC (`hmac::verify` compares with AWS-LC's
/// `CRYPTO_memcmp`).
fn mac_ok(key: &Key, signed: &[u8], tag: &[u8]) -> bool {
    hmac::verify(&key.signing(), signed, tag).is_ok()
}

fn timestamp_of(raw: &[u8]) -> Result<u64, FernetError> {
    raw.get(1..1 + TS_LEN)
        .and_then(|s| <[u8; TS_LEN]>::try_from(s).ok())
        .map(u64::from_be_bytes)
        .ok_or(FernetError::InvalidToken)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn key_text_round_trip_padded_and_unpadded() {
        let key = Key::generate().unwrap();
        let text = key.to_base64();
        assert_eq!(text.len(), 44);
        assert_eq!(Key::from_base64(text.as_bytes()).unwrap().bytes, key.bytes);
        let unpadded = text.trim_end_matches('=');
        assert_eq!(
            Key::from_base64(format!("  {unpadded}\n").as_bytes())
                .unwrap()
                .bytes,
            key.bytes
        );
        assert_eq!(
            Key::from_base64(b"AAAA").unwrap_err(),
            KeyError::WrongLength(3)
        );
        assert_eq!(
            Key::from_base64(b"not base64!").unwrap_err(),
            KeyError::NotBase64
        );
    }

    #[test]
    fn token_length_for_limit_fits() {
        let raw = HEADER_LEN + (MAX_PLAINTEXT_LEN / BLOCK + 1) * BLOCK + TAG_LEN;
        assert!(raw.div_ceil(3) * 4 <= MAX_TOKEN_LEN);
    }

    #[test]
    fn empty_keys_and_empty_plaintext() {
        let key = Key::generate().unwrap();
        let token = encrypt(&key, b"", 1000).unwrap();
        assert_eq!(decrypt(&[key], token.as_bytes(), None, 1000).unwrap(), b"");
        assert_eq!(
            decrypt(&[], token.as_bytes(), None, 1000).unwrap_err(),
            FernetError::NoKeys
        );
    }
}
