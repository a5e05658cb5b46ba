//! Server-side sessions.
//!
//! The cookie carries a [`SessionId`]: 32 bytes from a CSPRNG, base64url without padding
//! (43 characters, 256 bits, well above the 128 the HTTP contract asks for). Stores keep only
//! its SHA-256, the [`SessionKey`]: whoever reads the database learns no cookie they could
//! replay, and since the id has full entropy an unsalted fast hash is enough (there is
//! nothing to guess). Expiry is a pure rule over the stored times ([`SessionTimeouts`]), so
//! each backend's bulk delete and the per-request check agree.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use palisade_crypto::random::{self, RandomError};
use serde::{Deserialize, Serialize};

use crate::time::Timestamp;
use crate::user::UserId;

const ID_BYTES: usize = 32;
/// Length of the base64url (unpadded) text of 32 bytes.
const ID_CHARS: usize = 43;

/// Why a cookie value is not a session id. Deliberately uninformative beyond "malformed":
/// the server answers it exactly like an unknown session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed session id")]
pub struct SessionIdError;

/// The opaque session cookie value. A bearer secret: its `Debug` is redacted and it has no
/// `Display`; [`SessionId::as_cookie_value`] is the one way to read it.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionId {
    text: String,
    bytes: [u8; ID_BYTES],
}

impl SessionId {
    /// A new id from the operating system's CSPRNG.
    pub fn generate() -> Result<Self, RandomError> {
        let mut bytes = [0u8; ID_BYTES];
        random::fill(&mut bytes)?;
        Ok(Self::from_random_bytes(bytes))
    }

    /// An id from caller-supplied random bytes (tests, or a caller with its own CSPRNG).
    /// The bytes must be uniformly random: the id's only protection is being unguessable.
    pub fn from_random_bytes(bytes: [u8; ID_BYTES]) -> Self {
        Self {
            text: URL_SAFE_NO_PAD.encode(bytes),
            bytes,
        }
    }

    /// Parses a cookie value: exactly 43 characters of canonical unpadded base64url.
    pub fn parse(cookie_value: &str) -> Result<Self, SessionIdError> {
        if cookie_value.len() != ID_CHARS {
            return Err(SessionIdError);
        }
        // The decoder rejects non-zero trailing bits, so each id has exactly one spelling
        // and two cookie strings never map to the same key.
        let decoded = URL_SAFE_NO_PAD
            .decode(cookie_value)
            .map_err(|_| SessionIdError)?;
        let bytes: [u8; ID_BYTES] = decoded.try_into().map_err(|_| SessionIdError)?;
        Ok(Self {
            text: cookie_value.to_owned(),
            bytes,
        })
    }

    /// The value to put in the `Set-Cookie` header.
    pub fn as_cookie_value(&self) -> &str {
        &self.text
    }

    /// The hash under which stores keep this session.
    pub fn key(&self) -> SessionKey {
        SessionKey(crate::sha256(&[&self.bytes]))
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionId(<redacted>)")
    }
}

/// SHA-256 of a [`SessionId`]'s bytes: the stored primary key of a session. Not secret, so
/// listings and `palisade session revoke` may show and accept it as hex.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionKey([u8; 32]);

impl SessionKey {
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hex digits (either case).
    pub fn from_hex(s: &str) -> Result<Self, SessionIdError> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| SessionIdError)?;
        Ok(Self(out))
    }
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionKey({})", self.to_hex())
    }
}

impl fmt::Display for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// The per-session secret from which CSRF tokens are derived. Server-side only.
#[derive(Clone, PartialEq, Eq)]
pub struct CsrfSecret([u8; 32]);

impl CsrfSecret {
    pub fn generate() -> Result<Self, RandomError> {
        let mut bytes = [0u8; 32];
        random::fill(&mut bytes)?;
        Ok(Self(bytes))
    }

    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for CsrfSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CsrfSecret(<redacted>)")
    }
}

/// How long a session lives: `idle_secs` after its last use and never more than
/// `absolute_secs` after it was created, whichever comes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionTimeouts {
    pub idle_secs: i64,
    pub absolute_secs: i64,
}

impl SessionTimeouts {
    /// Django's default `SESSION_COOKIE_AGE` is two weeks with no idle limit; here a session
    /// ends after 2 hours without use and after 14 days in any case.
    pub const DEFAULT: Self = Self {
        idle_secs: 2 * 60 * 60,
        absolute_secs: 14 * 24 * 60 * 60,
    };

    /// Sessions last used at or before this instant have idled out at `now`.
    pub const fn idle_cutoff(&self, now: Timestamp) -> Timestamp {
        now.saturating_sub_secs(self.idle_secs)
    }

    /// Sessions created at or before this instant have reached their absolute limit at `now`.
    pub const fn absolute_cutoff(&self, now: Timestamp) -> Timestamp {
        now.saturating_sub_secs(self.absolute_secs)
    }
}

impl Default for SessionTimeouts {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// A stored session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub key: SessionKey,
    pub user_id: UserId,
    pub created_at: Timestamp,
    pub last_seen: Timestamp,
    /// Client address at creation, for the user's "your sessions" page.
    pub ip: Option<String>,
    /// Client-supplied, so attacker-controlled: the server bounds its length before storing
    /// and templates escape it.
    pub user_agent: Option<String>,
    pub csrf_secret: CsrfSecret,
}

impl Session {
    /// A session created and last seen at `now`.
    pub fn new(id: &SessionId, user_id: UserId, now: Timestamp, csrf_secret: CsrfSecret) -> Self {
        Self {
            key: id.key(),
            user_id,
            created_at: now,
            last_seen: now,
            ip: None,
            user_agent: None,
            csrf_secret,
        }
    }

    /// When this session stops being valid unless it is used again first.
    pub fn expires_at(&self, timeouts: &SessionTimeouts) -> Timestamp {
        let idle = self.last_seen.saturating_add_secs(timeouts.idle_secs);
        let absolute = self.created_at.saturating_add_secs(timeouts.absolute_secs);
        idle.min(absolute)
    }

    /// Whether the session is over at `now`. The boundary instant counts as expired, the same
    /// rule as `delete_expired` (`<= cutoff`).
    pub fn is_expired(&self, now: Timestamp, timeouts: &SessionTimeouts) -> bool {
        self.last_seen <= timeouts.idle_cutoff(now)
            || self.created_at <= timeouts.absolute_cutoff(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_round_trips_through_the_cookie() {
        let id = SessionId::generate().unwrap();
        assert_eq!(id.as_cookie_value().len(), 43);
        let parsed = SessionId::parse(id.as_cookie_value()).unwrap();
        assert_eq!(parsed, id);
        assert_eq!(parsed.key(), id.key());
        assert_ne!(SessionId::generate().unwrap().key(), id.key());
    }

    #[test]
    fn key_is_sha256_of_the_bytes() {
        let id = SessionId::from_random_bytes([0u8; 32]);
        assert_eq!(
            id.as_cookie_value(),
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
        );
        // sha256 of 32 zero bytes.
        assert_eq!(
            id.key().to_hex(),
            "66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925"
        );
        assert_eq!(
            SessionKey::from_hex(&id.key().to_hex().to_uppercase()).unwrap(),
            id.key()
        );
    }

    #[test]
    fn parse_refuses_malformed_values() {
        let good = SessionId::from_random_bytes([7u8; 32]);
        let text = good.as_cookie_value();
        assert!(SessionId::parse("").is_err());
        assert!(SessionId::parse(&text[..42]).is_err());
        assert!(SessionId::parse(&format!("{text}A")).is_err());
        assert!(SessionId::parse(&format!("{}=", &text[..42])).is_err());
        assert!(SessionId::parse(&text.replace(|c: char| c.is_ascii_alphabetic(), "+")).is_err());
        // All-zero bytes end in 'A'; 'B' sets one of the two unused trailing bits: the same
        // bytes spelled differently, which must be refused.
        let zero = SessionId::from_random_bytes([0u8; 32]);
        let alt = format!("{}B", &zero.as_cookie_value()[..42]);
        assert!(SessionId::parse(&alt).is_err());
        assert!(SessionKey::from_hex("abc").is_err());
    }

    #[test]
    fn secrets_are_redacted() {
        let id = SessionId::from_random_bytes([9u8; 32]);
        assert!(!format!("{id:?}").contains(id.as_cookie_value()));
        assert_eq!(
            format!("{:?}", CsrfSecret::from_bytes([1; 32])),
            "CsrfSecret(<redacted>)"
        );
    }

    #[test]
    fn expiry_uses_idle_and_absolute_limits() {
        let t = SessionTimeouts {
            idle_secs: 100,
            absolute_secs: 1000,
        };
        let id = SessionId::from_random_bytes([1; 32]);
        let mut s = Session::new(
            &id,
            UserId::new(1),
            Timestamp::from_unix(0),
            CsrfSecret::from_bytes([0; 32]),
        );
        assert!(!s.is_expired(Timestamp::from_unix(99), &t));
        assert!(s.is_expired(Timestamp::from_unix(100), &t));
        assert_eq!(s.expires_at(&t), Timestamp::from_unix(100));
        s.last_seen = Timestamp::from_unix(950);
        assert!(!s.is_expired(Timestamp::from_unix(999), &t));
        assert!(s.is_expired(Timestamp::from_unix(1000), &t));
        assert_eq!(s.expires_at(&t), Timestamp::from_unix(1000));
    }
}
