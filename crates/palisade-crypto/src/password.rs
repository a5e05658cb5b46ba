//! Password hashing in Django's storage formats: Argon2id by default, scrypt, bcrypt and
//! PBKDF2-SHA256 on request, and verification of every format Django has ever written, so a
//! Django user table can be imported as it is and upgraded one successful login at a time.
//!
//! ## Formats
//! Encodings are Django's (`django/contrib/auth/hashers.py`, 5.2, and the hashers removed
//! in 5.1), byte for byte:
//!
//! | Django algorithm | encoding |
//! | --- | --- |
//! | `argon2` | `argon2$argon2id$v=19$m=…,t=…,p=…$<salt b64>$<hash b64>` (unpadded base64; also `argon2i`, `argon2d`, `v=16`, and the pre-2016 form without `v=`, which is version 0x10) |
//! | `pbkdf2_sha256`, `pbkdf2_sha1` | `pbkdf2_sha256$<iterations>$<salt>$<hash b64>` |
//! | `bcrypt_sha256` | `bcrypt_sha256$$2b$12$<salt+hash>` (bcrypt over the hex SHA-256 of the password) |
//! | `bcrypt` | `bcrypt$$2b$12$<salt+hash>` (bcrypt of the password, truncated at 72 bytes) |
//! | `scrypt` | `scrypt$<N>$<salt>$<r>$<p>$<hash b64>` (64-byte key) |
//! | `md5`, `sha1` | `md5$<salt>$<hex>`: the digest of salt ‖ password |
//! | `unsalted_md5` | a bare 32-digit hex MD5, or `md5$$<hex>` |
//! | `unsalted_sha1` | `sha1$$<hex>` |
//!
//! Salts are what Django makes: 22 characters from `[A-Za-z0-9]` (≥ 128 bits by Django's
//! count of log2(62) bits per character), used as their UTF-8 bytes. [`hash_password`]'s
//! Argon2id output is therefore exactly what Django 5.2 with argon2-cffi writes for the same
//! parameters, and Django verifies it: a team can move back to Django without a password
//! reset. Django's own default Argon2 parameters (m=102400, t=2, p=8) differ from ours
//! (OWASP's m=19456, t=2, p=1), so Django would re-hash our hashes on the next login; that is
//! harmless.
//!
//! ## Re-hashing
//! A correct password against a hash that is not in the configured format (another
//! algorithm, other parameters, a salt under 22 characters, an Argon2 hash that is not 32
//! bytes, or an older Argon2 version) yields `Valid { needs_rehash: true }`; the caller then
//! stores [`hash_password`]'s output. This mirrors Django's `must_update`, and is stricter
//! where Django is lax (scrypt's salt length is checked too).
//!
//! ## Hostile hashes
//! An imported hash is attacker-influenced input: its parameters choose how much memory and
//! time a verification costs. Every field is parsed strictly (an `Err`, never a panic), and
//! parameters are capped before any work starts. The caps are generous multiples of Django's
//! and OWASP's settings:
//!
//! - the whole encoding at most [`MAX_ENCODED_LEN`] bytes, salts at most [`MAX_SALT_LEN`];
//! - Argon2: m ≤ [`ARGON2_MAX_MEMORY_KIB`] (256 MiB), m·t ≤ [`ARGON2_MAX_WORK`] KiB-passes
//!   (256 MiB × 4), p ≤ [`ARGON2_MAX_PARALLELISM`], a hash of 4 to [`ARGON2_MAX_HASH_LEN`]
//!   bytes;
//! - scrypt: N a power of two from 2 to [`SCRYPT_MAX_N`], 128·N·r ≤ [`SCRYPT_MAX_MEMORY`]
//!   (256 MiB), N·r·p ≤ [`SCRYPT_MAX_WORK`] (about 13 times Django's default);
//! - PBKDF2: 1 to [`PBKDF2_MAX_ITERATIONS`] iterations (10 times Django 5.2's default);
//! - bcrypt: cost 4 to [`BCRYPT_MAX_COST`] (16 times the work of Django's 12).
//!
//! The same caps apply to the parameters given for hashing.
//!
//! ## Timing
//! Comparisons are constant time (`subtle`). A login for an unknown user, an inactive user
//! or an account with an unusable (`!…`) password must cost what a real verification costs,
//! or response times tell an attacker which accounts exist: [`dummy_verify`] runs one
//! computation with the current parameters, and [`verify_password`] runs it itself for an
//! unusable, unrecognised or malformed hash. A wrong password against a legacy hash costs
//! that hash's own work factor, as in Django; such hashes disappear as users log in.

use std::fmt::Write as _;
use std::num::NonZeroU32;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, NO_PAD, STANDARD, STANDARD_NO_PAD};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::hash::{self, Algorithm as Digest};
use crate::{kdf, random};

/// The longest encoded hash we parse. Django stores passwords in a 128-character column;
/// four times that leaves room for other exporters and bounds all parsing work.
pub const MAX_ENCODED_LEN: usize = 512;
/// The longest salt accepted, in bytes (Django writes 22).
pub const MAX_SALT_LEN: usize = 128;
/// Argon2 memory cap, in KiB (256 MiB; Django's default is 100 MiB, OWASP's 19 MiB).
pub const ARGON2_MAX_MEMORY_KIB: u32 = 256 * 1024;
/// Argon2 work cap: memory in KiB times passes (256 MiB × 4).
pub const ARGON2_MAX_WORK: u64 = 1 << 20;
/// Argon2 lanes cap (Django's default is 8).
pub const ARGON2_MAX_PARALLELISM: u32 = 64;
/// Argon2 output length cap, in bytes (Django writes 32).
pub const ARGON2_MAX_HASH_LEN: usize = 128;
/// Largest scrypt N (Django's default is 2^14).
pub const SCRYPT_MAX_N: u64 = 1 << 20;
/// scrypt memory cap, 128·N·r bytes (256 MiB).
pub const SCRYPT_MAX_MEMORY: u64 = 256 * 1024 * 1024;
/// scrypt work cap, N·r·p (Django's default is 2^14·8·5 ≈ 2^19.3).
pub const SCRYPT_MAX_WORK: u64 = 1 << 23;
/// PBKDF2 iteration cap (Django 5.2's default is 1,000,000).
pub const PBKDF2_MAX_ITERATIONS: u32 = 10_000_000;
/// bcrypt cost cap (Django's default is 12; each step doubles the work).
pub const BCRYPT_MAX_COST: u32 = 16;

/// Django's salt alphabet (`RANDOM_STRING_CHARS`).
const SALT_CHARS: &[u8; 62] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
/// Characters in a fresh salt: ceil(128 / log2(62)), as Django's `BasePasswordHasher.salt`.
const SALT_LEN: usize = 22;
/// Below this many salt characters Django's `must_update_salt` asks for a new hash
/// (21 · log2(62) ≈ 125 bits < 128).
const MIN_SALT_CHARS: usize = 22;
/// argon2-cffi's `DEFAULT_HASH_LENGTH`, which Django writes.
const ARGON2_HASH_LEN: usize = 32;
/// Django's scrypt `dklen`.
const SCRYPT_HASH_LEN: usize = 64;
/// Django's `UNUSABLE_PASSWORD_SUFFIX_LENGTH`.
const UNUSABLE_SUFFIX_LEN: usize = 40;
const BCRYPT_MIN_COST: u32 = 4;
/// bcrypt only reads this many password bytes; longer ones are cut, as bcrypt always has.
const BCRYPT_MAX_PASSWORD: usize = 72;

/// pyca/bcrypt (which Django calls) decodes the 22-character salt ignoring the 4 spare bits
/// of the last character; the re-encoded result then decides whether the hash matches.
const BCRYPT_B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::BCRYPT,
    NO_PAD.with_decode_allow_trailing_bits(true),
);

/// Argon2id cost parameters. The default is OWASP's minimum recommendation (m = 19 MiB,
/// t = 2, p = 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Params {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes over the memory.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl Argon2Params {
    /// OWASP's Password Storage Cheat Sheet minimum for Argon2id; the default.
    pub const OWASP: Self = Self {
        memory_kib: 19_456,
        iterations: 2,
        parallelism: 1,
    };
    /// Django 5.2's `Argon2PasswordHasher` defaults.
    pub const DJANGO: Self = Self {
        memory_kib: 102_400,
        iterations: 2,
        parallelism: 8,
    };
}

impl Default for Argon2Params {
    fn default() -> Self {
        Self::OWASP
    }
}

/// The hasher new hashes are written with, and against which `needs_rehash` is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HasherConfig {
    /// Django's `argon2` with Argon2id, version 0x13.
    Argon2id(Argon2Params),
    /// Django's `scrypt`, with N the work factor as Django writes it (a power of two).
    /// Django verifies with OpenSSL's default 32 MiB limit (128·r·(N+p+2) bytes), so stay
    /// under it if Django must read these hashes back.
    Scrypt { n: u32, r: u32, p: u32 },
    /// Django's `bcrypt_sha256`: bcrypt over the hex SHA-256 of the password, so long
    /// passwords are not cut at 72 bytes.
    Bcrypt { cost: u32 },
    /// Django's `pbkdf2_sha256`.
    Pbkdf2Sha256 { iterations: u32 },
}

impl HasherConfig {
    /// Django 5.2's `ScryptPasswordHasher` defaults.
    pub const DJANGO_SCRYPT: Self = Self::Scrypt {
        n: 1 << 14,
        r: 8,
        p: 5,
    };
    /// Django 5.2's `BCryptSHA256PasswordHasher` default.
    pub const DJANGO_BCRYPT: Self = Self::Bcrypt { cost: 12 };
    /// Django 5.2's `PBKDF2PasswordHasher` default.
    pub const DJANGO_PBKDF2: Self = Self::Pbkdf2Sha256 {
        iterations: 1_000_000,
    };

    /// Django's name for the algorithm this configuration writes.
    pub fn algorithm(&self) -> &'static str {
        match self {
            Self::Argon2id(_) => "argon2",
            Self::Scrypt { .. } => "scrypt",
            Self::Bcrypt { .. } => "bcrypt_sha256",
            Self::Pbkdf2Sha256 { .. } => "pbkdf2_sha256",
        }
    }
}

impl Default for HasherConfig {
    fn default() -> Self {
        Self::Argon2id(Argon2Params::default())
    }
}

/// The outcome of checking a password against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    /// The password is right; if `needs_rehash`, store a fresh hash of it.
    Valid { needs_rehash: bool },
    /// The password is wrong (or the stored hash is unusable).
    Invalid,
}

/// Why a hash could not be made or checked. Messages never contain the hash or password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("unrecognised password hash format")]
    UnknownFormat,
    #[error("malformed password hash: {0}")]
    Malformed(&'static str),
    #[error("password hash parameters rejected: {0}")]
    Params(String),
    #[error("the system random number generator failed")]
    Random,
    #[error("the password hashing backend failed")]
    Backend,
}

impl From<random::RandomError> for PasswordError {
    fn from(_: random::RandomError) -> Self {
        Self::Random
    }
}

fn params_err(msg: impl Into<String>) -> PasswordError {
    PasswordError::Params(msg.into())
}

// ---------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------

/// Hashes `password` with Argon2id and `params`, in Django's `argon2` encoding with a fresh
/// Django-style salt.
pub fn hash_password(password: &[u8], params: &Argon2Params) -> Result<String, PasswordError> {
    hash_with(&HasherConfig::Argon2id(*params), password)
}

/// Hashes `password` with the configured hasher, in that hasher's Django encoding.
pub fn hash_with(config: &HasherConfig, password: &[u8]) -> Result<String, PasswordError> {
    match *config {
        HasherConfig::Argon2id(p) => {
            let salt = random_salt()?;
            let argon = Argon2Hash {
                algorithm: argon2::Algorithm::Argon2id,
                version: argon2::Version::V0x13,
                m: p.memory_kib,
                t: p.iterations,
                p: p.parallelism,
                salt: salt.into_bytes(),
                hash: Vec::new(),
            };
            argon.check_params()?;
            let hash = argon.derive(password, ARGON2_HASH_LEN)?;
            Ok(format!(
                "argon2$argon2id$v=19$m={},t={},p={}${}${}",
                argon.m,
                argon.t,
                argon.p,
                STANDARD_NO_PAD.encode(&argon.salt),
                STANDARD_NO_PAD.encode(&*hash),
            ))
        }
        HasherConfig::Scrypt { n, r, p } => {
            let log_n = scrypt_log_n(u64::from(n))?;
            check_scrypt(log_n, r, p)?;
            let salt = random_salt()?;
            let hash = scrypt_derive(password, &salt, log_n, r, p)?;
            Ok(format!(
                "scrypt${n}${salt}${r}${p}${}",
                STANDARD.encode(&*hash)
            ))
        }
        HasherConfig::Bcrypt { cost } => {
            check_bcrypt_cost(cost)?;
            let mut salt = [0u8; 16];
            random::fill(&mut salt)?;
            let data = bcrypt_derive(password, true, cost, salt, bcrypt::Version::TwoB)?;
            Ok(format!("bcrypt_sha256${data}"))
        }
        HasherConfig::Pbkdf2Sha256 { iterations } => {
            check_pbkdf2(iterations)?;
            let salt = random_salt()?;
            let hash = pbkdf2_derive(false, password, salt.as_bytes(), iterations)?;
            Ok(format!(
                "pbkdf2_sha256${iterations}${salt}${}",
                STANDARD.encode(&*hash)
            ))
        }
    }
}

/// Checks `password` against a stored hash in any Django format; `needs_rehash` is judged
/// against Argon2id with `current`. An unusable hash is `Invalid` (after a dummy
/// verification); an unrecognised or malformed one is an `Err` (also after one).
pub fn verify_password(
    password: &[u8],
    encoded: &str,
    current: &Argon2Params,
) -> Result<Verified, PasswordError> {
    verify_password_with(password, encoded, &HasherConfig::Argon2id(*current))
}

/// [`verify_password`], with `needs_rehash` judged against any configured hasher.
pub fn verify_password_with(
    password: &[u8],
    encoded: &str,
    config: &HasherConfig,
) -> Result<Verified, PasswordError> {
    if !is_usable(encoded) {
        dummy_verify_with(password, config);
        return Ok(Verified::Invalid);
    }
    let parsed = match Parsed::parse(encoded) {
        Ok(parsed) => parsed,
        Err(e) => {
            // A broken row must not answer faster than a real one.
            dummy_verify_with(password, config);
            return Err(e);
        }
    };
    if parsed.matches(password)? {
        Ok(Verified::Valid {
            needs_rehash: parsed.needs_rehash(config),
        })
    } else {
        Ok(Verified::Invalid)
    }
}

/// Spends what verifying a current-default Argon2id hash costs, and returns nothing: call it
/// for an unknown user, an inactive user or an unusable password, so that the response time
/// does not reveal which accounts exist.
pub fn dummy_verify(password: &[u8], current: &Argon2Params) {
    dummy_verify_with(password, &HasherConfig::Argon2id(*current));
}

/// [`dummy_verify`] for any configured hasher.
pub fn dummy_verify_with(password: &[u8], config: &HasherConfig) {
    // A fixed salt of Django's length: the work does not depend on the salt's value, and a
    // constant avoids an RNG call the real path does not make.
    const SALT: &str = "palisadeDummySalt00000";
    let ok = match *config {
        HasherConfig::Argon2id(p) => {
            let argon = Argon2Hash {
                algorithm: argon2::Algorithm::Argon2id,
                version: argon2::Version::V0x13,
                m: p.memory_kib,
                t: p.iterations,
                p: p.parallelism,
                salt: SALT.as_bytes().to_vec(),
                hash: vec![0u8; ARGON2_HASH_LEN],
            };
            argon.check_params().and_then(|()| argon.matches(password))
        }
        HasherConfig::Scrypt { n, r, p } => scrypt_log_n(u64::from(n)).and_then(|log_n| {
            check_scrypt(log_n, r, p)?;
            let hash = scrypt_derive(password, SALT, log_n, r, p)?;
            Ok(bool::from(hash.ct_eq(&[0u8; SCRYPT_HASH_LEN])))
        }),
        HasherConfig::Bcrypt { cost } => check_bcrypt_cost(cost).and_then(|()| {
            let data = bcrypt_derive(password, true, cost, [0u8; 16], bcrypt::Version::TwoB)?;
            Ok(bool::from(data.as_bytes().ct_eq(&[0u8; 60])))
        }),
        HasherConfig::Pbkdf2Sha256 { iterations } => check_pbkdf2(iterations).and_then(|()| {
            let hash = pbkdf2_derive(false, password, SALT.as_bytes(), iterations)?;
            Ok(bool::from(hash.ct_eq(&[0u8; 32])))
        }),
    };
    // Keep the optimiser from discarding the work.
    std::hint::black_box(ok).ok();
}

/// False for Django's unusable passwords (`!` followed by anything, as written by
/// `set_unusable_password`) and for an empty string; true otherwise, even for a string that
/// is not a valid hash (verification then reports it).
pub fn is_usable(encoded: &str) -> bool {
    !encoded.is_empty() && !encoded.starts_with('!')
}

/// A fresh unusable password, as Django's `make_password(None)`: `!` and 40 random
/// characters. The suffix only keeps two unusable values from being equal; should the
/// system RNG fail, a fixed suffix is used, which is just as unusable.
pub fn unusable_password() -> String {
    let suffix =
        random_string(UNUSABLE_SUFFIX_LEN).unwrap_or_else(|_| "0".repeat(UNUSABLE_SUFFIX_LEN));
    format!("!{suffix}")
}

/// Django's algorithm name for an encoded hash (`"argon2"`, `"pbkdf2_sha256"`,
/// `"unsalted_md5"`, …), for display; `None` for unusable or unrecognised values. Looks
/// only at the prefix, as Django's `identify_hasher` does; it does not validate the rest.
pub fn algorithm_of(encoded: &str) -> Option<&'static str> {
    if !is_usable(encoded) {
        return None;
    }
    Some(match identify(encoded) {
        Identified::UnsaltedMd5(_) => "unsalted_md5",
        Identified::UnsaltedSha1(_) => "unsalted_sha1",
        Identified::Named(name, _) => KNOWN_ALGORITHMS.iter().copied().find(|a| *a == name)?,
    })
}

const KNOWN_ALGORITHMS: [&str; 8] = [
    "argon2",
    "pbkdf2_sha256",
    "pbkdf2_sha1",
    "bcrypt_sha256",
    "bcrypt",
    "scrypt",
    "md5",
    "sha1",
];

// ---------------------------------------------------------------------------------------
// Identification and parsing
// ---------------------------------------------------------------------------------------

enum Identified<'a> {
    UnsaltedMd5(&'a str),
    UnsaltedSha1(&'a str),
    /// Algorithm name and the rest after its `$`.
    Named(&'a str, &'a str),
}

/// Django's `identify_hasher`, including its special cases for ancient unsalted hashes.
fn identify(encoded: &str) -> Identified<'_> {
    if encoded.len() == 32 && !encoded.contains('$') {
        return Identified::UnsaltedMd5(encoded);
    }
    if encoded.len() == 37
        && let Some(hex) = encoded.strip_prefix("md5$$")
    {
        return Identified::UnsaltedMd5(hex);
    }
    if encoded.len() == 46
        && let Some(hex) = encoded.strip_prefix("sha1$$")
    {
        return Identified::UnsaltedSha1(hex);
    }
    match encoded.split_once('$') {
        Some((name, rest)) => Identified::Named(name, rest),
        None => Identified::Named(encoded, ""),
    }
}

enum Parsed<'a> {
    Argon2(Argon2Hash),
    Pbkdf2 {
        sha1: bool,
        iterations: u32,
        salt: &'a str,
        hash: Vec<u8>,
    },
    Scrypt {
        log_n: u8,
        r: u32,
        p: u32,
        salt: &'a str,
        hash: Vec<u8>,
    },
    Bcrypt {
        sha256: bool,
        cost: u32,
        version: BcryptVersion,
        salt: [u8; 16],
        /// The stored `$2b$…` string, compared whole as Django does.
        data: &'a str,
    },
    /// `md5$salt$hex`, `sha1$salt$hex` and the unsalted shapes (empty salt).
    Digest {
        digest: Digest,
        salt: &'a str,
        hex: &'a str,
    },
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum BcryptVersion {
    TwoA,
    TwoB,
    TwoX,
    TwoY,
}

impl BcryptVersion {
    fn to_bcrypt(self) -> bcrypt::Version {
        match self {
            Self::TwoA => bcrypt::Version::TwoA,
            Self::TwoB => bcrypt::Version::TwoB,
            Self::TwoX => bcrypt::Version::TwoX,
            Self::TwoY => bcrypt::Version::TwoY,
        }
    }
}

impl<'a> Parsed<'a> {
    fn parse(encoded: &'a str) -> Result<Self, PasswordError> {
        if encoded.len() > MAX_ENCODED_LEN {
            return Err(PasswordError::Malformed("encoded hash too long"));
        }
        match identify(encoded) {
            Identified::UnsaltedMd5(hex) => Self::digest(Digest::Md5, "", hex),
            Identified::UnsaltedSha1(hex) => Self::digest(Digest::Sha1, "", hex),
            Identified::Named("argon2", rest) => Ok(Self::Argon2(Argon2Hash::parse(rest)?)),
            Identified::Named("pbkdf2_sha256", rest) => Self::pbkdf2(false, rest),
            Identified::Named("pbkdf2_sha1", rest) => Self::pbkdf2(true, rest),
            Identified::Named("bcrypt_sha256", rest) => Self::bcrypt(true, rest),
            Identified::Named("bcrypt", rest) => Self::bcrypt(false, rest),
            Identified::Named("scrypt", rest) => Self::scrypt(rest),
            Identified::Named("md5", rest) => Self::salted(Digest::Md5, rest),
            Identified::Named("sha1", rest) => Self::salted(Digest::Sha1, rest),
            Identified::Named(..) => Err(PasswordError::UnknownFormat),
        }
    }

    fn salted(digest: Digest, rest: &'a str) -> Result<Self, PasswordError> {
        let (salt, hex) = rest
            .split_once('$')
            .ok_or(PasswordError::Malformed("expected algorithm$salt$hash"))?;
        Self::digest(digest, salt, hex)
    }

    fn digest(digest: Digest, salt: &'a str, hex: &'a str) -> Result<Self, PasswordError> {
        check_salt(salt)?;
        // Django compares against `hexdigest()`, which is lowercase.
        let is_hex = hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if hex.len() != 2 * digest.output_len() || !is_hex {
            return Err(PasswordError::Malformed(
                "digest is not lowercase hex of the right length",
            ));
        }
        Ok(Self::Digest { digest, salt, hex })
    }

    fn pbkdf2(sha1: bool, rest: &'a str) -> Result<Self, PasswordError> {
        let mut fields = rest.split('$');
        let (Some(iterations), Some(salt), Some(hash), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(PasswordError::Malformed(
                "expected pbkdf2$iterations$salt$hash",
            ));
        };
        let iterations =
            parse_decimal(iterations).ok_or(PasswordError::Malformed("bad PBKDF2 iterations"))?;
        check_pbkdf2(iterations)?;
        check_salt(salt)?;
        let hash = decode_b64(&STANDARD, hash)?;
        if hash.len() != if sha1 { 20 } else { 32 } {
            return Err(PasswordError::Malformed("PBKDF2 hash of the wrong length"));
        }
        Ok(Self::Pbkdf2 {
            sha1,
            iterations,
            salt,
            hash,
        })
    }

    fn scrypt(rest: &'a str) -> Result<Self, PasswordError> {
        let mut fields = rest.split('$');
        let (Some(n), Some(salt), Some(r), Some(p), Some(hash), None) = (
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
        ) else {
            return Err(PasswordError::Malformed("expected scrypt$N$salt$r$p$hash"));
        };
        let n = parse_decimal(n).ok_or(PasswordError::Malformed("bad scrypt N"))?;
        let r = parse_decimal(r).ok_or(PasswordError::Malformed("bad scrypt r"))?;
        let p = parse_decimal(p).ok_or(PasswordError::Malformed("bad scrypt p"))?;
        let log_n = scrypt_log_n(u64::from(n))?;
        check_scrypt(log_n, r, p)?;
        check_salt(salt)?;
        let hash = decode_b64(&STANDARD, hash)?;
        if hash.len() != SCRYPT_HASH_LEN {
            return Err(PasswordError::Malformed("scrypt hash of the wrong length"));
        }
        Ok(Self::Scrypt {
            log_n,
            r,
            p,
            salt,
            hash,
        })
    }

    fn bcrypt(sha256: bool, data: &'a str) -> Result<Self, PasswordError> {
        const BAD: PasswordError = PasswordError::Malformed("expected $2b$<cost>$<53 characters>");
        // Always 60 ASCII characters: "$2b$12$" + 22 salt + 31 hash.
        if data.len() != 60 {
            return Err(BAD);
        }
        let mut fields = data.split('$');
        let (Some(""), Some(version), Some(cost), Some(body), None) = (
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
        ) else {
            return Err(BAD);
        };
        let version = match version {
            "2a" => BcryptVersion::TwoA,
            "2b" => BcryptVersion::TwoB,
            "2x" => BcryptVersion::TwoX,
            "2y" => BcryptVersion::TwoY,
            _ => return Err(PasswordError::Malformed("unknown bcrypt version")),
        };
        if cost.len() != 2 || !cost.bytes().all(|b| b.is_ascii_digit()) || body.len() != 53 {
            return Err(BAD);
        }
        let cost: u32 = cost.parse().map_err(|_| BAD)?;
        check_bcrypt_cost(cost)?;
        let is_b64 = body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'/');
        let salt = body.get(..22).filter(|_| is_b64).ok_or(BAD)?;
        let salt: [u8; 16] = BCRYPT_B64
            .decode(salt)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or(PasswordError::Malformed("bad bcrypt salt"))?;
        Ok(Self::Bcrypt {
            sha256,
            cost,
            version,
            salt,
            data,
        })
    }

    /// Recomputes the hash from `password` and compares in constant time.
    fn matches(&self, password: &[u8]) -> Result<bool, PasswordError> {
        match self {
            Self::Argon2(a) => a.matches(password),
            Self::Pbkdf2 {
                sha1,
                iterations,
                salt,
                hash,
            } => {
                let derived = pbkdf2_derive(*sha1, password, salt.as_bytes(), *iterations)?;
                Ok(bool::from(derived.ct_eq(hash)))
            }
            Self::Scrypt {
                log_n,
                r,
                p,
                salt,
                hash,
            } => {
                let derived = scrypt_derive(password, salt, *log_n, *r, *p)?;
                Ok(bool::from(derived.ct_eq(hash)))
            }
            Self::Bcrypt {
                sha256,
                cost,
                version,
                salt,
                data,
            } => {
                let derived = bcrypt_derive(password, *sha256, *cost, *salt, version.to_bcrypt())?;
                Ok(bool::from(derived.as_bytes().ct_eq(data.as_bytes())))
            }
            Self::Digest {
                digest, salt, hex, ..
            } => {
                let mut input = Zeroizing::new(Vec::with_capacity(salt.len() + password.len()));
                input.extend_from_slice(salt.as_bytes());
                input.extend_from_slice(password);
                let derived = hex::encode(hash::hash(*digest, &input));
                Ok(bool::from(derived.as_bytes().ct_eq(hex.as_bytes())))
            }
        }
    }

    fn needs_rehash(&self, config: &HasherConfig) -> bool {
        let up_to_date = match (self, config) {
            (Self::Argon2(a), HasherConfig::Argon2id(p)) => {
                a.algorithm == argon2::Algorithm::Argon2id
                    && a.version == argon2::Version::V0x13
                    && a.m == p.memory_kib
                    && a.t == p.iterations
                    && a.p == p.parallelism
                    && a.hash.len() == ARGON2_HASH_LEN
                    && a.salt.len() >= MIN_SALT_CHARS
            }
            (
                Self::Scrypt {
                    log_n, r, p, salt, ..
                },
                HasherConfig::Scrypt { n, r: cr, p: cp },
            ) => {
                u64::from(*n) == 1u64 << log_n
                    && r == cr
                    && p == cp
                    && salt.chars().count() >= MIN_SALT_CHARS
            }
            (
                Self::Bcrypt {
                    sha256: true,
                    cost,
                    version,
                    ..
                },
                HasherConfig::Bcrypt { cost: c },
            ) => cost == c && *version == BcryptVersion::TwoB,
            (
                Self::Pbkdf2 {
                    sha1: false,
                    iterations,
                    salt,
                    ..
                },
                HasherConfig::Pbkdf2Sha256 { iterations: i },
            ) => iterations == i && salt.chars().count() >= MIN_SALT_CHARS,
            _ => false,
        };
        !up_to_date
    }
}

/// A parsed Django Argon2 hash (or the parameters of one being made).
struct Argon2Hash {
    algorithm: argon2::Algorithm,
    version: argon2::Version,
    m: u32,
    t: u32,
    p: u32,
    salt: Vec<u8>,
    hash: Vec<u8>,
}

impl Argon2Hash {
    /// Parses what follows `argon2$`: argon2-cffi's PHC-style string without its leading `$`.
    fn parse(rest: &str) -> Result<Self, PasswordError> {
        let fields: Vec<&str> = rest.split('$').collect();
        let (variety, version, params, salt, hash) = match fields.as_slice() {
            [variety, version, params, salt, hash] => {
                let version = match *version {
                    "v=19" => argon2::Version::V0x13,
                    "v=16" => argon2::Version::V0x10,
                    _ => return Err(PasswordError::Malformed("unknown Argon2 version")),
                };
                (*variety, version, *params, *salt, *hash)
            }
            // Hashes from before the reference code wrote `v=` are version 0x10, as
            // argon2-cffi (and so Django) reads them.
            [variety, params, salt, hash] => {
                (*variety, argon2::Version::V0x10, *params, *salt, *hash)
            }
            _ => return Err(PasswordError::Malformed("wrong number of Argon2 fields")),
        };
        let algorithm = match variety {
            "argon2id" => argon2::Algorithm::Argon2id,
            "argon2i" => argon2::Algorithm::Argon2i,
            "argon2d" => argon2::Algorithm::Argon2d,
            _ => return Err(PasswordError::Malformed("unknown Argon2 variant")),
        };
        let mut kv = params.split(',');
        let (Some(m), Some(t), Some(p), None) = (kv.next(), kv.next(), kv.next(), kv.next()) else {
            return Err(PasswordError::Malformed("expected m=…,t=…,p=…"));
        };
        let field = |s: &str, key: &str| {
            s.strip_prefix(key)
                .and_then(parse_decimal)
                .ok_or(PasswordError::Malformed("bad Argon2 parameter"))
        };
        let parsed = Self {
            algorithm,
            version,
            m: field(m, "m=")?,
            t: field(t, "t=")?,
            p: field(p, "p=")?,
            salt: decode_b64(&STANDARD_NO_PAD, salt)?,
            hash: decode_b64(&STANDARD_NO_PAD, hash)?,
        };
        parsed.check_params()?;
        if !(8..=MAX_SALT_LEN).contains(&parsed.salt.len()) {
            return Err(PasswordError::Malformed(
                "Argon2 salt must be 8 to 128 bytes",
            ));
        }
        if !(4..=ARGON2_MAX_HASH_LEN).contains(&parsed.hash.len()) {
            return Err(PasswordError::Malformed(
                "Argon2 hash must be 4 to 128 bytes",
            ));
        }
        Ok(parsed)
    }

    fn check_params(&self) -> Result<(), PasswordError> {
        let (m, t, p) = (self.m, self.t, self.p);
        if !(1..=ARGON2_MAX_PARALLELISM).contains(&p) {
            return Err(params_err(format!(
                "Argon2 parallelism must be 1 to {ARGON2_MAX_PARALLELISM}"
            )));
        }
        if t == 0 {
            return Err(params_err("Argon2 needs at least one pass"));
        }
        if m < 8 * p || m > ARGON2_MAX_MEMORY_KIB {
            return Err(params_err(format!(
                "Argon2 memory must be 8·p to {ARGON2_MAX_MEMORY_KIB} KiB"
            )));
        }
        if u64::from(m) * u64::from(t) > ARGON2_MAX_WORK {
            return Err(params_err(format!(
                "Argon2 memory × passes must be at most {ARGON2_MAX_WORK}"
            )));
        }
        Ok(())
    }

    fn derive(&self, password: &[u8], len: usize) -> Result<Zeroizing<Vec<u8>>, PasswordError> {
        #[cfg(test)]
        tests::record_argon2(self.algorithm, self.m, self.t, self.p);
        let params = argon2::Params::new(self.m, self.t, self.p, Some(len))
            .map_err(|e| params_err(e.to_string()))?;
        let mut out = Zeroizing::new(vec![0u8; len]);
        let argon = argon2::Argon2::new(self.algorithm, self.version, params);
        with_argon2_memory(argon.params().block_count(), |blocks| {
            argon.hash_password_into_with_memory(password, &self.salt, &mut out, blocks)
        })?
        .map_err(|_| PasswordError::Backend)?;
        Ok(out)
    }

    fn matches(&self, password: &[u8]) -> Result<bool, PasswordError> {
        let derived = self.derive(password, self.hash.len())?;
        Ok(bool::from(derived.ct_eq(&self.hash)))
    }
}

/// Argon2 working memory up to this many 1 KiB blocks (64 MiB, over three times the default
/// cost) stays allocated on the thread between calls; larger imported parameters get a
/// buffer of their own that is freed at once.
const ARGON2_KEEP_BLOCKS: usize = 64 * 1024;

thread_local! {
    /// Each thread's reusable Argon2 working memory. A fresh 19 MiB buffer per hash is what
    /// `hash_password_into` does; under a login flood glibc then keeps every freed buffer in
    /// its per-thread arenas and the server's resident memory climbs into the hundreds of MiB.
    /// Reusing one buffer per hashing thread bounds it to threads × buffer.
    static ARGON2_MEMORY: std::cell::RefCell<Vec<argon2::Block>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `f` on `blocks` zeroed-on-exit Argon2 blocks from this thread's scratch buffer.
fn with_argon2_memory<T>(
    blocks: usize,
    f: impl FnOnce(&mut [argon2::Block]) -> T,
) -> Result<T, PasswordError> {
    ARGON2_MEMORY.with(|cell| {
        // Never nested today; a fresh buffer keeps it correct if that ever changes.
        let mut fresh = Vec::new();
        let mut borrowed = cell.try_borrow_mut();
        let buf = match borrowed.as_deref_mut() {
            Ok(buf) => buf,
            Err(_) => &mut fresh,
        };
        if buf.len() < blocks {
            buf.try_reserve_exact(blocks - buf.len())
                .map_err(|_| PasswordError::Backend)?;
            buf.resize(blocks, argon2::Block::new());
        }
        let result = buf.get_mut(..blocks).map(|memory| {
            let result = f(memory);
            // The blocks are derived from the password: wipe them before anything else runs
            // on this thread. Blocks past `blocks` were wiped by the call that used them.
            memory
                .iter_mut()
                .for_each(|block| zeroize::Zeroize::zeroize(block.as_mut()));
            result
        });
        // Give an oversize buffer back to the allocator.
        if buf.len() > ARGON2_KEEP_BLOCKS {
            *buf = Vec::new();
        }
        result.ok_or(PasswordError::Backend)
    })
}

// ---------------------------------------------------------------------------------------
// Primitives and checks
// ---------------------------------------------------------------------------------------

fn pbkdf2_derive(
    sha1: bool,
    password: &[u8],
    salt: &[u8],
    iterations: u32,
) -> Result<Zeroizing<Vec<u8>>, PasswordError> {
    if sha1 {
        // Legacy PRF, verification only; kdf.rs offers SHA-256 alone, by design.
        let iterations = NonZeroU32::new(iterations).ok_or(PasswordError::Backend)?;
        let mut out = Zeroizing::new(vec![0u8; 20]);
        aws_lc_rs::pbkdf2::derive(
            aws_lc_rs::pbkdf2::PBKDF2_HMAC_SHA1,
            iterations,
            salt,
            password,
            &mut out,
        );
        Ok(out)
    } else {
        let mut out = Zeroizing::new(vec![0u8; 32]);
        kdf::pbkdf2_hmac_sha256(password, salt, iterations, &mut out)
            .map_err(|e| params_err(e.to_string()))?;
        Ok(out)
    }
}

fn scrypt_derive(
    password: &[u8],
    salt: &str,
    log_n: u8,
    r: u32,
    p: u32,
) -> Result<Zeroizing<Vec<u8>>, PasswordError> {
    let mut out = Zeroizing::new(vec![0u8; SCRYPT_HASH_LEN]);
    kdf::scrypt(password, salt.as_bytes(), log_n, r, p, &mut out)
        .map_err(|e| params_err(e.to_string()))?;
    Ok(out)
}

/// Returns the whole `$2b$…` string, which Django compares as a string.
fn bcrypt_derive(
    password: &[u8],
    sha256: bool,
    cost: u32,
    salt: [u8; 16],
    version: bcrypt::Version,
) -> Result<String, PasswordError> {
    let input = if sha256 {
        // Django's BCryptSHA256PasswordHasher: hexlify(sha256(password).digest()).
        Zeroizing::new(hex::encode(hash::hash(Digest::Sha256, password)).into_bytes())
    } else {
        // Cut here rather than rely on the crate: bcrypt has always ignored bytes past 72,
        // and hashes Django wrote with bcrypt < 5 were made that way.
        Zeroizing::new(
            password
                .get(..BCRYPT_MAX_PASSWORD)
                .unwrap_or(password)
                .to_vec(),
        )
    };
    let parts =
        bcrypt::hash_with_salt(&*input, cost, salt).map_err(|e| params_err(e.to_string()))?;
    Ok(parts.format_for_version(version))
}

fn check_pbkdf2(iterations: u32) -> Result<(), PasswordError> {
    if !(1..=PBKDF2_MAX_ITERATIONS).contains(&iterations) {
        return Err(params_err(format!(
            "PBKDF2 iterations must be 1 to {PBKDF2_MAX_ITERATIONS}"
        )));
    }
    Ok(())
}

fn check_bcrypt_cost(cost: u32) -> Result<(), PasswordError> {
    if !(BCRYPT_MIN_COST..=BCRYPT_MAX_COST).contains(&cost) {
        return Err(params_err(format!(
            "bcrypt cost must be {BCRYPT_MIN_COST} to {BCRYPT_MAX_COST}"
        )));
    }
    Ok(())
}

/// log2(N), for N a power of two from 2 to [`SCRYPT_MAX_N`].
fn scrypt_log_n(n: u64) -> Result<u8, PasswordError> {
    if !(2..=SCRYPT_MAX_N).contains(&n) || !n.is_power_of_two() {
        return Err(params_err(format!(
            "scrypt N must be a power of two from 2 to {SCRYPT_MAX_N}"
        )));
    }
    u8::try_from(n.trailing_zeros()).map_err(|_| params_err("scrypt N out of range"))
}

fn check_scrypt(log_n: u8, r: u32, p: u32) -> Result<(), PasswordError> {
    if r == 0 || p == 0 {
        return Err(params_err("scrypt r and p must be at least 1"));
    }
    let n = 1u64 << log_n;
    let memory = 128u64.saturating_mul(n).saturating_mul(u64::from(r));
    if memory > SCRYPT_MAX_MEMORY {
        return Err(params_err(format!(
            "scrypt needs 128·N·r = {memory} bytes, over {SCRYPT_MAX_MEMORY}"
        )));
    }
    let work = n.saturating_mul(u64::from(r)).saturating_mul(u64::from(p));
    if work > SCRYPT_MAX_WORK {
        return Err(params_err(format!(
            "scrypt N·r·p = {work} is over {SCRYPT_MAX_WORK}"
        )));
    }
    Ok(())
}

fn check_salt(salt: &str) -> Result<(), PasswordError> {
    if salt.len() > MAX_SALT_LEN {
        return Err(PasswordError::Malformed("salt too long"));
    }
    Ok(())
}

/// A decimal `u32` as Python's `%d` writes it: digits only, no sign, no leading zero.
fn parse_decimal(s: &str) -> Option<u32> {
    let digits = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let canonical = s == "0" || !s.starts_with('0');
    if digits && canonical {
        s.parse().ok()
    } else {
        None
    }
}

/// Strict decoding: canonical padding and no stray bits, so one hash has one spelling.
fn decode_b64(engine: &GeneralPurpose, s: &str) -> Result<Vec<u8>, PasswordError> {
    engine
        .decode(s)
        .map_err(|_| PasswordError::Malformed("bad base64"))
}

/// A Django-style salt: [`SALT_LEN`] characters from [`SALT_CHARS`].
fn random_salt() -> Result<String, PasswordError> {
    Ok(random_string(SALT_LEN)?)
}

fn random_string(len: usize) -> Result<String, random::RandomError> {
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        random::fill(&mut buf)?;
        // 248 = 4·62: keeping only bytes below it makes `% 62` uniform.
        for &b in buf.iter().filter(|&&b| b < 248) {
            if out.len() == len {
                break;
            }
            if let Some(&c) = SALT_CHARS.get(usize::from(b % 62)) {
                let _ = out.write_char(char::from(c));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    thread_local! {
        /// Every Argon2 computation on this thread: (variant, m, t, p). Tests run one per
        /// thread, so each sees only its own.
        static ARGON2_RUNS: RefCell<Vec<(argon2::Algorithm, u32, u32, u32)>> =
            const { RefCell::new(Vec::new()) };
    }

    pub(super) fn record_argon2(algorithm: argon2::Algorithm, m: u32, t: u32, p: u32) {
        ARGON2_RUNS.with(|r| r.borrow_mut().push((algorithm, m, t, p)));
    }

    fn take_runs() -> Vec<(argon2::Algorithm, u32, u32, u32)> {
        ARGON2_RUNS.with(|r| std::mem::take(&mut *r.borrow_mut()))
    }

    const LOW: Argon2Params = Argon2Params {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };

    fn scratch_blocks() -> (usize, bool) {
        ARGON2_MEMORY.with_borrow(|b| {
            let wiped = b.iter().all(|block| block.as_ref().iter().all(|&w| w == 0));
            (b.len(), wiped)
        })
    }

    #[test]
    fn argon2_scratch_memory_is_reused_wiped_and_bounded() {
        let small = hash_password(b"pw", &LOW).unwrap();
        assert_eq!(scratch_blocks(), (64, true), "kept for reuse, wiped");
        // Reuse gives the same answers as fresh memory: verify after a bigger hash ran.
        let bigger = Argon2Params {
            memory_kib: 256,
            ..LOW
        };
        let big = hash_password(b"pw", &bigger).unwrap();
        assert_eq!(scratch_blocks(), (256, true));
        assert_eq!(
            verify_password(b"pw", &small, &LOW).unwrap(),
            Verified::Valid {
                needs_rehash: false
            }
        );
        assert_eq!(
            verify_password(b"pw", &big, &bigger).unwrap(),
            Verified::Valid {
                needs_rehash: false
            }
        );
        assert_eq!(scratch_blocks(), (256, true));
        // Past the keep limit the buffer is given back after use.
        let huge = Argon2Params {
            memory_kib: u32::try_from(ARGON2_KEEP_BLOCKS).unwrap() + 8,
            ..LOW
        };
        hash_password(b"pw", &huge).unwrap();
        assert_eq!(scratch_blocks(), (0, true));
    }

    #[test]
    fn dummy_verify_runs_one_argon2id_with_the_current_params() {
        let real = hash_password(b"pw", &LOW).unwrap();
        take_runs();
        let id = argon2::Algorithm::Argon2id;
        let expected = vec![(id, LOW.memory_kib, LOW.iterations, LOW.parallelism)];

        assert_eq!(
            verify_password(b"wrong", &real, &LOW).unwrap(),
            Verified::Invalid
        );
        assert_eq!(take_runs(), expected, "a real verification");

        dummy_verify(b"pw", &LOW);
        assert_eq!(take_runs(), expected, "dummy_verify costs the same");

        let unusable = unusable_password();
        assert_eq!(
            verify_password(b"pw", &unusable, &LOW).unwrap(),
            Verified::Invalid
        );
        assert_eq!(take_runs(), expected, "an unusable hash costs the same");

        assert_eq!(verify_password(b"pw", "", &LOW).unwrap(), Verified::Invalid);
        assert_eq!(take_runs(), expected, "an empty hash costs the same");

        assert!(verify_password(b"pw", "crypt$ab$cdef", &LOW).is_err());
        assert_eq!(take_runs(), expected, "an unknown format costs the same");

        assert!(
            verify_password(
                b"pw",
                "argon2$argon2id$v=19$m=4194304,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g",
                &LOW
            )
            .is_err()
        );
        assert_eq!(
            take_runs(),
            expected,
            "a capped hash costs the same, not its own"
        );

        // The default parameters are what dummy_verify uses when the caller passes them.
        let def = Argon2Params::default();
        dummy_verify(b"pw", &def);
        assert_eq!(take_runs(), vec![(id, 19_456, 2, 1)]);
    }

    #[test]
    fn default_params_are_owasp() {
        assert_eq!(
            Argon2Params::default(),
            Argon2Params {
                memory_kib: 19_456,
                iterations: 2,
                parallelism: 1
            }
        );
    }

    #[test]
    fn salts_are_django_shaped() {
        for _ in 0..20 {
            let s = random_salt().unwrap();
            assert_eq!(s.len(), 22);
            assert!(s.bytes().all(|b| b.is_ascii_alphanumeric()));
        }
        let u = unusable_password();
        assert_eq!(u.len(), 41);
        assert!(u.starts_with('!') && !is_usable(&u));
        assert_ne!(unusable_password(), u);
    }

    #[test]
    fn decimal_parsing_is_canonical() {
        assert_eq!(parse_decimal("0"), Some(0));
        assert_eq!(parse_decimal("19456"), Some(19456));
        for bad in [
            "",
            "+1",
            "-1",
            "01",
            " 1",
            "1 ",
            "1_000",
            "4294967296",
            "１",
        ] {
            assert_eq!(parse_decimal(bad), None, "{bad:?}");
        }
    }
}
