//! Signed, time-limited account tokens: the activation link of a new account and the
//! password-reset link.
//!
//! A token is `base64url(payload) "." base64url(HMAC-SHA256)` with
//! `payload = version ‖ purpose ‖ key id ‖ user id ‖ issued at ‖ expires at ‖ token id`
//! (fixed width, 50 bytes). It names nothing secret: a user number, two times and a random
//! id, as Django's reset links carry the user's id in the clear.
//!
//! - **Keys rotate.** A [`KeyRing`] signs with its current key and verifies with the current
//!   and any retained previous ones, found by key id (the first 8 bytes of the key's SHA-256,
//!   which identifies a key without revealing it). A token signed by a key that was rotated
//!   out is invalid.
//! - **Bound to account state.** The MAC also covers caller-supplied `binding` bytes that are
//!   not in the token: for a reset link the password hash, the last login and the address, so
//!   the link dies when the password changes or the user logs in, as Django's
//!   `PasswordResetTokenGenerator` does.
//! - **Single use** is the store's job: the caller consumes [`Claims::id`] exactly once
//!   (an insert that fails when the id was already used), which also tells "already used"
//!   apart from "invalid".
//! - **No oracle.** The MAC is checked (in constant time) before anything else is believed,
//!   so only a genuine token can be reported as expired; everything else is [`TokenError::Invalid`]
//!   or [`TokenError::Malformed`].
//!
//! No clock and no randomness are hidden here: `now` is a parameter and the token id comes
//! from [`TokenId::generate`] (the OS generator) or the caller.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use palisade_crypto::hash::{self, Algorithm};
use palisade_crypto::mac::{MacAlgorithm, constant_time_eq, mac};
use palisade_crypto::random;
use zeroize::Zeroizing;

use crate::time::Timestamp;
use crate::user::UserId;

const VERSION: u8 = 1;
const KID_LEN: usize = 8;
const ID_LEN: usize = 16;
const MAC_LEN: usize = 32;
const PAYLOAD_LEN: usize = 1 + 1 + KID_LEN + 8 + 8 + 8 + ID_LEN;
/// Keys shorter than this are refused: HMAC-SHA256 wants its full block of entropy.
pub const MIN_KEY_LEN: usize = 32;
/// Domain separation: a MAC made here is never valid for another use of the same key.
const DOMAIN: &[u8] = b"palisade account token v1\0";

/// What a token is for; a token of one purpose never verifies as another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Activation,
    PasswordReset,
}

impl Purpose {
    fn code(self) -> u8 {
        match self {
            Self::Activation => 1,
            Self::PasswordReset => 2,
        }
    }
}

/// The random id of one token, consumed once by the store.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenId([u8; ID_LEN]);

impl TokenId {
    pub fn generate() -> Result<Self, random::RandomError> {
        let mut id = [0u8; ID_LEN];
        random::fill(&mut id)?;
        Ok(Self(id))
    }

    pub const fn from_bytes(bytes: [u8; ID_LEN]) -> Self {
        Self(bytes)
    }

    pub const fn as_bytes(&self) -> &[u8; ID_LEN] {
        &self.0
    }
}

impl fmt::Debug for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenId({})", hex::encode(self.0))
    }
}

/// One HMAC key. Its bytes never appear in `Debug`.
#[derive(Clone)]
pub struct SigningKey {
    kid: [u8; KID_LEN],
    key: Zeroizing<Vec<u8>>,
}

/// A key that is too short to sign with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a token signing key must be at least {MIN_KEY_LEN} bytes")]
pub struct KeyTooShort;

impl SigningKey {
    pub fn new(key: &[u8]) -> Result<Self, KeyTooShort> {
        if key.len() < MIN_KEY_LEN {
            return Err(KeyTooShort);
        }
        let digest = hash::hash(Algorithm::Sha256, key);
        let mut kid = [0u8; KID_LEN];
        for (out, byte) in kid.iter_mut().zip(digest.iter()) {
            *out = *byte;
        }
        Ok(Self {
            kid,
            key: Zeroizing::new(key.to_vec()),
        })
    }

    /// The public key id, as hex (for logs and key listings).
    pub fn kid_hex(&self) -> String {
        hex::encode(self.kid)
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey(kid {})", self.kid_hex())
    }
}

/// The current signing key and the previous ones still accepted.
#[derive(Debug, Clone)]
pub struct KeyRing {
    current: SigningKey,
    previous: Vec<SigningKey>,
}

impl KeyRing {
    pub fn new(current: SigningKey, previous: Vec<SigningKey>) -> Self {
        Self { current, previous }
    }

    pub fn current(&self) -> &SigningKey {
        &self.current
    }

    fn find(&self, kid: &[u8]) -> Option<&SigningKey> {
        std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.kid.as_slice() == kid)
    }
}

/// What a verified token says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claims {
    pub purpose: Purpose,
    pub user: UserId,
    pub issued_at: Timestamp,
    pub expires_at: Timestamp,
    pub id: TokenId,
}

/// Why a token was refused. Only a token with a valid MAC can be `Expired`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the link is incomplete or damaged")]
    Malformed,
    #[error("the link is not valid")]
    Invalid,
    #[error("the link has expired")]
    Expired,
}

/// Issues a token for `user`, valid from `now` for `ttl_secs` seconds.
pub fn issue(
    ring: &KeyRing,
    purpose: Purpose,
    user: UserId,
    id: TokenId,
    now: Timestamp,
    ttl_secs: i64,
    binding: &[u8],
) -> String {
    let key = ring.current();
    let mut payload = Vec::with_capacity(PAYLOAD_LEN);
    payload.push(VERSION);
    payload.push(purpose.code());
    payload.extend_from_slice(&key.kid);
    payload.extend_from_slice(&user.get().to_be_bytes());
    payload.extend_from_slice(&now.unix().to_be_bytes());
    payload.extend_from_slice(&now.unix().saturating_add(ttl_secs).to_be_bytes());
    payload.extend_from_slice(id.as_bytes());
    let tag = sign(key, &payload, binding);
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(&payload),
        URL_SAFE_NO_PAD.encode(tag)
    )
}

/// Verifies `token` for `purpose` at `now` against `binding` (the same bytes given to
/// [`issue`]). Does not consume it: that is the caller's next step.
pub fn verify(
    ring: &KeyRing,
    purpose: Purpose,
    token: &str,
    now: Timestamp,
    binding: &[u8],
) -> Result<Claims, TokenError> {
    let (payload_b64, tag_b64) = token.split_once('.').ok_or(TokenError::Malformed)?;
    // Bounds before decoding: a huge path segment costs nothing.
    if payload_b64.len() > 2 * PAYLOAD_LEN || tag_b64.len() > 2 * MAC_LEN {
        return Err(TokenError::Malformed);
    }
    let payload = URL_SAFE_NO_PAD
        .decode(payload_b64)
        .map_err(|_| TokenError::Malformed)?;
    let tag = URL_SAFE_NO_PAD
        .decode(tag_b64)
        .map_err(|_| TokenError::Malformed)?;
    let fields = Fields::parse(&payload).ok_or(TokenError::Malformed)?;
    if tag.len() != MAC_LEN || fields.version != VERSION {
        return Err(TokenError::Malformed);
    }
    let key = ring.find(&fields.kid).ok_or(TokenError::Invalid)?;
    if !constant_time_eq(&sign(key, &payload, binding), &tag) {
        return Err(TokenError::Invalid);
    }
    // Believed only from here on.
    if fields.purpose != purpose.code() {
        return Err(TokenError::Invalid);
    }
    if now.unix() >= fields.expires_at {
        return Err(TokenError::Expired);
    }
    Ok(Claims {
        purpose,
        user: UserId::new(fields.user),
        issued_at: Timestamp::from_unix(fields.issued_at),
        expires_at: Timestamp::from_unix(fields.expires_at),
        id: TokenId(fields.id),
    })
}

/// The user a token names, read **without checking anything**: only so the caller can load
/// that account and compute the `binding` to pass to [`verify`], which then decides. Never
/// act on it otherwise.
pub fn claimed_user(token: &str) -> Option<UserId> {
    let (payload_b64, _) = token.split_once('.')?;
    if payload_b64.len() > 2 * PAYLOAD_LEN {
        return None;
    }
    let payload = URL_SAFE_NO_PAD.decode(payload_b64).ok()?;
    Fields::parse(&payload).map(|f| UserId::new(f.user))
}

fn sign(key: &SigningKey, payload: &[u8], binding: &[u8]) -> Vec<u8> {
    // Length-prefixed, so payload and binding cannot be re-split into another valid pair.
    let mut data = Vec::with_capacity(DOMAIN.len() + 16 + payload.len() + binding.len());
    data.extend_from_slice(DOMAIN);
    for part in [payload, binding] {
        data.extend_from_slice(&(part.len() as u64).to_be_bytes());
        data.extend_from_slice(part);
    }
    // HMAC-SHA256 accepts any key length, so this cannot fail; an empty tag would never
    // match a 32-byte one, so even a failure could not make a token valid.
    mac(MacAlgorithm::HmacSha256, &key.key, &data).unwrap_or_default()
}

struct Fields {
    version: u8,
    purpose: u8,
    kid: [u8; KID_LEN],
    user: i64,
    issued_at: i64,
    expires_at: i64,
    id: [u8; ID_LEN],
}

impl Fields {
    fn parse(payload: &[u8]) -> Option<Self> {
        let bytes: &[u8; PAYLOAD_LEN] = payload.try_into().ok()?;
        let (&version, rest) = bytes.split_first()?;
        let (&purpose, rest) = rest.split_first()?;
        let (kid, rest) = rest.split_first_chunk::<KID_LEN>()?;
        let (user, rest) = rest.split_first_chunk::<8>()?;
        let (issued_at, rest) = rest.split_first_chunk::<8>()?;
        let (expires_at, rest) = rest.split_first_chunk::<8>()?;
        let id: [u8; ID_LEN] = rest.try_into().ok()?;
        Some(Self {
            version,
            purpose,
            kid: *kid,
            user: i64::from_be_bytes(*user),
            issued_at: i64::from_be_bytes(*issued_at),
            expires_at: i64::from_be_bytes(*expires_at),
            id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_800_000_000;
    const DAY: i64 = 86_400;

    fn key(byte: u8) -> SigningKey {
        SigningKey::new(&[byte; 32]).unwrap()
    }

    fn ring() -> KeyRing {
        KeyRing::new(key(1), vec![])
    }

    fn token(ring: &KeyRing, purpose: Purpose, binding: &[u8]) -> String {
        issue(
            ring,
            purpose,
            UserId::new(42),
            TokenId::from_bytes([7; 16]),
            Timestamp::from_unix(T0),
            7 * DAY,
            binding,
        )
    }

    #[test]
    fn round_trip_until_expiry() {
        let r = ring();
        let t = token(&r, Purpose::Activation, b"");
        let at = |s| Timestamp::from_unix(s);
        let claims = verify(&r, Purpose::Activation, &t, at(T0 + 7 * DAY - 1), b"").unwrap();
        assert_eq!(claims.user, UserId::new(42));
        assert_eq!(claims.id, TokenId::from_bytes([7; 16]));
        assert_eq!(claims.expires_at, at(T0 + 7 * DAY));
        assert_eq!(
            verify(&r, Purpose::Activation, &t, at(T0 + 7 * DAY), b""),
            Err(TokenError::Expired)
        );
        // URL-safe as it is: it goes into a path segment.
        assert!(
            t.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        );
    }

    #[test]
    fn purpose_binding_and_key_are_all_checked() {
        let r = ring();
        let now = Timestamp::from_unix(T0 + 1);
        let t = token(&r, Purpose::PasswordReset, b"hash|login");
        assert!(verify(&r, Purpose::PasswordReset, &t, now, b"hash|login").is_ok());
        // Another purpose, changed account state, another key: invalid, never "expired".
        assert_eq!(
            verify(&r, Purpose::Activation, &t, now, b"hash|login"),
            Err(TokenError::Invalid)
        );
        assert_eq!(
            verify(&r, Purpose::PasswordReset, &t, now, b"hash2|login"),
            Err(TokenError::Invalid)
        );
        let other = KeyRing::new(key(2), vec![]);
        assert_eq!(
            verify(&other, Purpose::PasswordReset, &t, now, b"hash|login"),
            Err(TokenError::Invalid)
        );
        // An expired token with the wrong binding is invalid, not expired.
        let late = Timestamp::from_unix(T0 + 8 * DAY);
        assert_eq!(
            verify(&r, Purpose::PasswordReset, &t, late, b"other"),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn rotation_keeps_previous_keys_until_they_are_dropped() {
        let old = ring();
        let t = token(&old, Purpose::Activation, b"");
        let now = Timestamp::from_unix(T0 + 1);
        let rotated = KeyRing::new(key(2), vec![key(1)]);
        assert!(verify(&rotated, Purpose::Activation, &t, now, b"").is_ok());
        let fresh = token(&rotated, Purpose::Activation, b"");
        assert_ne!(fresh, t, "signed with the new key");
        let rotated_out = KeyRing::new(key(2), vec![]);
        assert_eq!(
            verify(&rotated_out, Purpose::Activation, &t, now, b""),
            Err(TokenError::Invalid)
        );
        assert!(verify(&rotated_out, Purpose::Activation, &fresh, now, b"").is_ok());
    }

    #[test]
    fn tampering_is_refused() {
        let r = ring();
        let t = token(&r, Purpose::Activation, b"");
        let now = Timestamp::from_unix(T0 + 1);
        let (payload, tag) = t.split_once('.').unwrap();
        let mut bytes = URL_SAFE_NO_PAD.decode(payload).unwrap();
        // Every byte of the payload is covered: flip each in turn.
        for i in 0..bytes.len() {
            bytes[i] ^= 1;
            let forged = format!("{}.{tag}", URL_SAFE_NO_PAD.encode(&bytes));
            let got = verify(&r, Purpose::Activation, &forged, now, b"");
            assert!(
                matches!(got, Err(TokenError::Invalid | TokenError::Malformed)),
                "byte {i}: {got:?}"
            );
            bytes[i] ^= 1;
        }
        for bad in [
            "",
            ".",
            "abc",
            &format!("{payload}."),
            &format!("{payload}.{tag}x"),
            &format!("{payload}x.{tag}"),
            &format!("{payload}.{}", &tag[..tag.len() - 2]),
            &"A".repeat(10_000),
            &format!("{}.{tag}", "A".repeat(10_000)),
        ] {
            assert_eq!(
                verify(&r, Purpose::Activation, bad, now, b""),
                Err(TokenError::Malformed),
                "{bad:.40}"
            );
        }
    }

    #[test]
    fn claimed_user_reads_the_unverified_id() {
        let t = token(&ring(), Purpose::Activation, b"");
        assert_eq!(claimed_user(&t), Some(UserId::new(42)));
        for bad in ["", "x", "abc.def", &"A".repeat(500)] {
            assert_eq!(claimed_user(bad), None);
        }
    }

    #[test]
    fn short_keys_are_refused_and_keys_stay_out_of_debug() {
        assert_eq!(SigningKey::new(&[1; 31]).unwrap_err(), KeyTooShort);
        let k = key(9);
        let shown = format!("{k:?} {:?}", KeyRing::new(k.clone(), vec![]));
        assert!(!shown.contains("9, 9"), "{shown}");
        assert!(shown.contains(&k.kid_hex()));
    }
}
