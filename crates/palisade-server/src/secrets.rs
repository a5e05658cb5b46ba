//! Secrets every node of a deployment must share (the account-token signing keys and the
//! secure drop's keys now; OAuth signing keys later), kept in the database under a master
//! key that is not in the database.
//!
//! **Envelope encryption.** Each stored secret gets a fresh random data key. The record's
//! `ciphertext` is a Fernet token under that data key, over
//! `"palisade stored secret v1\0" ‖ len ‖ purpose ‖ len ‖ kid ‖ secret` (lengths as u16 big
//! endian), and its `wrapped_key` is a Fernet token under the master key over the data key.
//! Binding purpose and kid into the authenticated plaintext means a row moved to another
//! purpose or renamed does not open; a fresh data key per record means no two records share
//! a key that could be compared or reused. Fernet is the vector-tested module of
//! `palisade_crypto`, not a format of our own.
//!
//! **The master key** is a Fernet key's text (44 characters of URL-safe base64): the
//! `PALISADE_MASTER_KEY` variable when set, else `DATA_DIR/master.key` (0600), made on first
//! start. Nodes of one deployment are given the same one. A database copied without it
//! yields only ciphertext; a node started with another deployment's master key stops at
//! start-up with [`SecretError::MasterKeyMismatch`] rather than minting keys of its own.
//!
//! **Rotation.** The newest un-retired key of a purpose signs; the other un-retired ones
//! still verify, so links already mailed keep working; a retired key is kept as a record
//! (for the listing) and never used again. [`token_key_ring`] creates the first key when
//! there is none, through the store's atomic `insert_first_key`, so nodes starting together
//! on an empty database agree on one key.
//!
//! **The drop keys** ([`DropKeyKind`]: the RSA-3072 encryption key and the Ed25519
//! receipt-signing key of the secure drop) are stored the same way, the secret being the
//! private key's PKCS#8 DER. Their kid is derived from the *public* key, the RFC 7638 JWK
//! thumbprint (base64url SHA-256), so a client can name the key it encrypted to and anyone
//! can recompute it from the published key; [`seal_with_kid`] takes it. The newest
//! un-retired key of each is current; older un-retired ones stay for decrypting what was
//! sent to them and for verifying old receipts. The first key is made on first use
//! ([`current_drop_key`]), not at start-up: RSA-3072 generation takes up to seconds, and it
//! runs on tokio's blocking pool.
//!
//! Nothing here puts a secret in `Debug`, an error or a log line: errors name purposes and
//! key ids, which are public.

use std::fmt;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use palisade_core::token::{KeyRing, SigningKey};
use palisade_core::{KeyStore, StoreError, StoredKey, Timestamp};
use palisade_crypto::keys::{KeyKind, PrivateKey, PublicJwk, PublicKey, RsaBits};
use palisade_crypto::{fernet, random};
use zeroize::Zeroizing;

use crate::config::ConfigError;
use crate::error::ServerError;

/// The master key's file in the data directory.
pub const MASTER_KEY_FILE: &str = "master.key";
/// The variable that gives the master key instead of the file (the same text).
pub const MASTER_KEY_ENV: &str = "PALISADE_MASTER_KEY";
/// The purpose of the activation and password-reset link keys.
pub const ACCOUNT_TOKENS: &str = "account-tokens";
/// The purpose of the secure drop's RSA-OAEP encryption keys.
pub const DROP_ENCRYPTION: &str = "drop-encryption";
/// The purpose of the secure drop's receipt-signing keys.
pub const DROP_RECEIPT: &str = "drop-receipt";
/// Bytes of a new token-signing key: HMAC-SHA256's full block of entropy.
const TOKEN_KEY_LEN: usize = 32;
/// Domain separation of the sealed plaintext (and its layout version).
const SEALED_DOMAIN: &[u8] = b"palisade stored secret v1\0";
/// Stored secrets have no lifetime, and a node whose clock lags another's must still open
/// what that one sealed: the largest "now" turns Fernet's future-timestamp check off.
const NO_CLOCK_CHECK: u64 = u64::MAX;

/// What the master key text must look like, for error messages (never the text itself).
const MASTER_KEY_SHAPE: &str =
    "a Fernet key: 44 characters of URL-safe base64, as `palisade fernet keygen` prints";

/// The deployment's master key. Its bytes are wiped on drop and never shown by `Debug`.
#[derive(Clone)]
pub struct MasterKey(fernet::Key);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

/// Text that is not a master key. Carries nothing of the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a master key: expected {MASTER_KEY_SHAPE}")]
pub struct InvalidMasterKey;

impl MasterKey {
    /// A fresh random master key.
    pub fn generate() -> Result<Self, SecretError> {
        fernet::Key::generate()
            .map(Self)
            .map_err(|_| SecretError::Crypto)
    }

    /// Parses the text form (surrounding whitespace, such as a file's final newline, is
    /// ignored).
    pub fn from_text(text: &str) -> Result<Self, InvalidMasterKey> {
        fernet::Key::from_base64(text.trim().as_bytes())
            .map(Self)
            .map_err(|_| InvalidMasterKey)
    }

    /// The text form, as `DATA_DIR/master.key` and `PALISADE_MASTER_KEY` hold it.
    pub fn to_text(&self) -> Zeroizing<String> {
        Zeroizing::new(self.0.to_base64())
    }
}

/// Why a stored secret could not be sealed, opened, listed or changed. Messages name
/// purposes and key ids only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// [`open`] failed: the master key is not the one the record was sealed under, or the
    /// record was altered. One opaque variant for both, so nothing can be learnt from which.
    #[error("a stored secret could not be opened (another master key, or an altered record)")]
    Open,
    /// A stored key of the ring does not open with this master key.
    #[error(
        "the master key does not match the database: stored {purpose} key {kid} does not \
         open with it; use the master key (DATA_DIR/master.key or PALISADE_MASTER_KEY) this \
         database was set up with"
    )]
    MasterKeyMismatch { purpose: String, kid: String },
    /// A key opened but is not usable (too short, or not the key its id names).
    #[error("stored {purpose} key {kid} is invalid: {reason}")]
    Corrupt {
        purpose: String,
        kid: String,
        reason: String,
    },
    /// No un-retired key of the purpose has this id.
    #[error("no active {purpose} key with id {kid}")]
    NoSuchKey { purpose: String, kid: String },
    /// Retiring this key would leave the purpose without one, and the server would then
    /// mint a new one without anyone asking.
    #[error(
        "{kid} is the only active {purpose} key; rotate first (palisade keys rotate), then \
         retire it"
    )]
    OnlyKey { purpose: String, kid: String },
    /// The purpose has no un-retired key even after creating one (retired concurrently).
    #[error("no active {purpose} key")]
    NoActiveKey { purpose: String },
    /// A secret to seal is shorter than 32 bytes.
    #[error(
        "a secret to store must be at least {} bytes",
        palisade_core::token::MIN_KEY_LEN
    )]
    TooShort,
    /// A purpose or key id longer than 65535 bytes (the sealed layout's length field).
    #[error("a key purpose or id is too long")]
    NameTooLong,
    #[error("database: {0}")]
    Store(#[from] StoreError),
    /// The random generator or the cipher failed (not expected to happen).
    #[error("the cryptographic backend failed")]
    Crypto,
}

/// Where a key stands in its ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// The newest un-retired key: signs new tokens.
    Current,
    /// An older un-retired key: still verifies.
    Previous,
    /// Never used again; kept as a record.
    Retired,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Current => "current",
            Self::Previous => "previous",
            Self::Retired => "retired",
        }
    }
}

impl fmt::Display for KeyState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A key as listings show it: everything but the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    pub purpose: String,
    pub kid: String,
    pub created_at: Timestamp,
    pub retired_at: Option<Timestamp>,
    pub state: KeyState,
}

/// The master key: `from_env` (the value of `PALISADE_MASTER_KEY`) when given, else
/// `DATA_DIR/master.key`, else a new key written there (0600). The data directory must
/// exist ([`crate::ensure_data_dir`]). Blocking file I/O.
///
/// Errors name the variable or the file and never echo their content. A file that is not a
/// key is an error, never replaced: it may be the only copy of the key to every stored
/// secret.
pub fn load_or_create_master_key(
    data_dir: &Path,
    from_env: Option<&str>,
) -> Result<MasterKey, ServerError> {
    if let Some(text) = from_env {
        return MasterKey::from_text(text).map_err(|_| {
            ServerError::Config(ConfigError::Value {
                source_name: MASTER_KEY_ENV.to_owned(),
                reason: format!("is not a master key: expected {MASTER_KEY_SHAPE}"),
            })
        });
    }
    let path = data_dir.join(MASTER_KEY_FILE);
    if let Some(key) = read_master_key(&path)? {
        return Ok(key);
    }
    let key = MasterKey::generate().map_err(|e| ServerError::Io {
        what: "generating the master key".to_owned(),
        reason: e.to_string(),
    })?;
    match publish_master_key(data_dir, &path, &key) {
        Ok(()) => {
            tracing::info!(path = %path.display(), "created the master key");
            Ok(key)
        }
        // Another process (a second node, an admin command) made it first: use theirs, or
        // the two would seal secrets the other cannot open.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            read_master_key(&path)?.ok_or_else(|| ServerError::io(path.display().to_string(), &e))
        }
        Err(e) => Err(ServerError::io(path.display().to_string(), &e)),
    }
}

fn read_master_key(path: &Path) -> Result<Option<MasterKey>, ServerError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => Zeroizing::new(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ServerError::io(path.display().to_string(), &e)),
    };
    let invalid = || ServerError::Io {
        what: path.display().to_string(),
        reason: format!(
            "is not a master key (expected {MASTER_KEY_SHAPE}); restore this deployment's \
             master key there or give it in {MASTER_KEY_ENV}"
        ),
    };
    let text = std::str::from_utf8(&bytes).map_err(|_| invalid())?;
    let key = MasterKey::from_text(text).map_err(|_| invalid())?;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            path = %path.display(),
            "the master key file is readable by other users; chmod 600 it"
        );
    }
    Ok(Some(key))
}

/// Writes the key to a private temporary file, flushes it to disk, then links it into place.
/// The link fails if the file exists, and readers only ever see a complete file: opening
/// `master.key` itself with `create_new` would let a concurrent starter read it empty,
/// half-written, and report a broken key.
fn publish_master_key(data_dir: &Path, path: &Path, key: &MasterKey) -> std::io::Result<()> {
    let suffix = random::bytes(8).map_err(std::io::Error::other)?;
    let tmp = data_dir.join(format!(".{MASTER_KEY_FILE}.{}.tmp", hex::encode(suffix)));
    let mut text = key.to_text();
    text.push('\n');
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut file| {
            file.write_all(text.as_bytes())?;
            file.sync_all()
        })
        .and_then(|()| std::fs::hard_link(&tmp, path));
    // The temporary name has done its job either way (on success `path` is the other link).
    let _ = std::fs::remove_file(&tmp);
    written?;
    // The new directory entry must survive a power cut too, or a restart would make a new
    // key and lose every secret sealed under this one.
    std::fs::File::open(data_dir).and_then(|dir| dir.sync_all())
}

/// Seals `secret` for `purpose` under a fresh data key wrapped by `master`; its kid is the
/// token key id ([`SigningKey::kid_hex`]: the first 8 bytes of its SHA-256, which names the
/// key without revealing it). Secrets shorter than 32 bytes are refused.
pub fn seal(
    master: &MasterKey,
    purpose: &str,
    secret: &[u8],
    now: Timestamp,
) -> Result<StoredKey, SecretError> {
    let kid = SigningKey::new(secret)
        .map_err(|_| SecretError::TooShort)?
        .kid_hex();
    seal_with_kid(master, purpose, &kid, secret, now)
}

/// Seals `secret` as [`seal`] does, under the given `kid` (bound into the sealed plaintext,
/// so the record opens only under this id). For keys whose id is derived from their public
/// half, such as the drop keys' JWK thumbprints; the caller vouches that `kid` names
/// `secret`, and the opener checks it again.
pub fn seal_with_kid(
    master: &MasterKey,
    purpose: &str,
    kid: &str,
    secret: &[u8],
    now: Timestamp,
) -> Result<StoredKey, SecretError> {
    let mut data_bytes = Zeroizing::new([0u8; 32]);
    random::fill(data_bytes.as_mut_slice()).map_err(|_| SecretError::Crypto)?;
    let data_key = fernet::Key::from_bytes(*data_bytes);
    let stamp = u64::try_from(now.unix()).unwrap_or(0);
    let plaintext = bind(purpose, kid, secret)?;
    let ciphertext =
        fernet::encrypt(&data_key, &plaintext, stamp).map_err(|_| SecretError::Crypto)?;
    let wrapped_key = fernet::encrypt(&master.0, data_bytes.as_slice(), stamp)
        .map_err(|_| SecretError::Crypto)?;
    Ok(StoredKey {
        purpose: purpose.to_owned(),
        kid: kid.to_owned(),
        wrapped_key,
        ciphertext,
        created_at: now,
        retired_at: None,
    })
}

/// The secret of `record`, if it opens under `master` and was sealed for the record's own
/// purpose and kid. Every failure is the same [`SecretError::Open`].
pub fn open(master: &MasterKey, record: &StoredKey) -> Result<Zeroizing<Vec<u8>>, SecretError> {
    let data = Zeroizing::new(
        fernet::decrypt(
            std::slice::from_ref(&master.0),
            record.wrapped_key.as_bytes(),
            None,
            NO_CLOCK_CHECK,
        )
        .map_err(|_| SecretError::Open)?,
    );
    let mut data_bytes = Zeroizing::new([0u8; 32]);
    if data.len() != data_bytes.len() {
        return Err(SecretError::Open);
    }
    for (out, byte) in data_bytes.iter_mut().zip(data.iter()) {
        *out = *byte;
    }
    let data_key = fernet::Key::from_bytes(*data_bytes);
    let plaintext = Zeroizing::new(
        fernet::decrypt(
            std::slice::from_ref(&data_key),
            record.ciphertext.as_bytes(),
            None,
            NO_CLOCK_CHECK,
        )
        .map_err(|_| SecretError::Open)?,
    );
    let secret = unbind(&plaintext, &record.purpose, &record.kid).ok_or(SecretError::Open)?;
    Ok(Zeroizing::new(secret.to_vec()))
}

fn bind(purpose: &str, kid: &str, secret: &[u8]) -> Result<Zeroizing<Vec<u8>>, SecretError> {
    // Sized up front: a reallocation would leave an unwiped copy of the secret behind.
    let mut out = Zeroizing::new(Vec::with_capacity(
        SEALED_DOMAIN.len() + 4 + purpose.len() + kid.len() + secret.len(),
    ));
    out.extend_from_slice(SEALED_DOMAIN);
    for field in [purpose.as_bytes(), kid.as_bytes()] {
        let len = u16::try_from(field.len()).map_err(|_| SecretError::NameTooLong)?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(field);
    }
    out.extend_from_slice(secret);
    Ok(out)
}

fn unbind<'a>(plaintext: &'a [u8], purpose: &str, kid: &str) -> Option<&'a [u8]> {
    fn field(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
        let (len, rest) = bytes.split_first_chunk::<2>()?;
        rest.split_at_checked(usize::from(u16::from_be_bytes(*len)))
    }
    let rest = plaintext.strip_prefix(SEALED_DOMAIN)?;
    let (sealed_purpose, rest) = field(rest)?;
    let (sealed_kid, secret) = field(rest)?;
    (sealed_purpose == purpose.as_bytes() && sealed_kid == kid.as_bytes()).then_some(secret)
}

fn active(keys: Vec<StoredKey>) -> Vec<StoredKey> {
    keys.into_iter()
        .filter(|k| k.retired_at.is_none())
        .collect()
}

/// The secret of a stored key; one that does not open means another deployment's master key.
fn open_record(master: &MasterKey, record: &StoredKey) -> Result<Zeroizing<Vec<u8>>, SecretError> {
    open(master, record).map_err(|_| SecretError::MasterKeyMismatch {
        purpose: record.purpose.clone(),
        kid: record.kid.clone(),
    })
}

/// A stored key that opened but is not what its record says.
fn corrupt_record(record: &StoredKey, reason: &str) -> SecretError {
    SecretError::Corrupt {
        purpose: record.purpose.clone(),
        kid: record.kid.clone(),
        reason: reason.to_owned(),
    }
}

/// The signing key in `record`, checked to be the key its id names.
fn signing_key(master: &MasterKey, record: &StoredKey) -> Result<SigningKey, SecretError> {
    let secret = open_record(master, record)?;
    let corrupt = |reason: &str| corrupt_record(record, reason);
    let key = SigningKey::new(&secret).map_err(|e| corrupt(&e.to_string()))?;
    if key.kid_hex() != record.kid {
        return Err(corrupt("it is not the key its id names"));
    }
    Ok(key)
}

/// The ring of the un-retired `keys` (newest first): the first signs, the others verify.
fn ring_of(master: &MasterKey, keys: &[StoredKey]) -> Result<KeyRing, SecretError> {
    let mut signing = keys
        .iter()
        .map(|k| signing_key(master, k))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter();
    let current = signing.next().ok_or_else(|| SecretError::NoActiveKey {
        purpose: ACCOUNT_TOKENS.to_owned(),
    })?;
    Ok(KeyRing::new(current, signing.collect()))
}

/// A new random token key for `purpose`, sealed at `created`.
fn new_token_key(master: &MasterKey, created: Timestamp) -> Result<StoredKey, SecretError> {
    let secret = Zeroizing::new(random::bytes(TOKEN_KEY_LEN).map_err(|_| SecretError::Crypto)?);
    seal(master, ACCOUNT_TOKENS, &secret, created)
}

/// The account-token key ring: the newest un-retired key signs, the other un-retired ones
/// still verify. With no un-retired key, a new one is made and stored with
/// `insert_first_key`, then the ring is read back, so of nodes starting together every one
/// ends up with the same key. A key that does not open is
/// [`SecretError::MasterKeyMismatch`].
pub async fn token_key_ring<S: KeyStore>(
    store: &S,
    master: &MasterKey,
    now: Timestamp,
) -> Result<KeyRing, SecretError> {
    let mut keys = active(store.list_keys(ACCOUNT_TOKENS).await?);
    if keys.is_empty() {
        let first = new_token_key(master, now)?;
        let kid = first.kid.clone();
        if store.insert_first_key(first).await? {
            tracing::info!(%kid, "created the first account-token signing key");
        }
        keys = active(store.list_keys(ACCOUNT_TOKENS).await?);
    }
    ring_of(master, &keys)
}

/// Makes a new current account-token key and returns its kid; the previous keys keep
/// verifying until they are retired. With no key yet, this makes the first one (as
/// [`token_key_ring`] would). Every existing un-retired key must open first: a key added
/// under another deployment's master key would stop every correctly configured node.
pub async fn rotate_token_key<S: KeyStore>(
    store: &S,
    master: &MasterKey,
    now: Timestamp,
) -> Result<String, SecretError> {
    let keys = active(store.list_keys(ACCOUNT_TOKENS).await?);
    let Some(newest) = keys.first() else {
        let ring = token_key_ring(store, master, now).await?;
        return Ok(ring.current().kid_hex());
    };
    ring_of(master, &keys)?;
    // Never older than the current key, whatever this machine's clock says: the newest
    // record signs, and a tie goes to the later insertion.
    let record = new_token_key(master, now.max(newest.created_at))?;
    let kid = record.kid.clone();
    store.insert_key(record).await?;
    tracing::info!(%kid, "rotated the account-token signing key");
    Ok(kid)
}

/// Retires account-token key `kid`: tokens it signed stop verifying. Refuses the only
/// un-retired key ([`SecretError::OnlyKey`]): without one the server would make a new key
/// on its own. (Two admins retiring the last two keys at the same instant could still both
/// succeed; the next start then makes a fresh key, and mailed links die, nothing worse.)
pub async fn retire_token_key<S: KeyStore>(
    store: &S,
    kid: &str,
    now: Timestamp,
) -> Result<(), SecretError> {
    let no_such = || SecretError::NoSuchKey {
        purpose: ACCOUNT_TOKENS.to_owned(),
        kid: kid.to_owned(),
    };
    let keys = active(store.list_keys(ACCOUNT_TOKENS).await?);
    if !keys.iter().any(|k| k.kid == kid) {
        return Err(no_such());
    }
    if keys.len() == 1 {
        return Err(SecretError::OnlyKey {
            purpose: ACCOUNT_TOKENS.to_owned(),
            kid: kid.to_owned(),
        });
    }
    match store.retire_key(ACCOUNT_TOKENS, kid, now).await {
        Err(StoreError::NotFound) => Err(no_such()),
        other => other.map_err(SecretError::from),
    }
}

/// Every account-token key, newest first, with its state; never the secrets. The un-retired
/// keys are opened first, so a listing made with the wrong master key is
/// [`SecretError::MasterKeyMismatch`] rather than a reassuring table.
pub async fn list_token_keys<S: KeyStore>(
    store: &S,
    master: &MasterKey,
) -> Result<Vec<KeyInfo>, SecretError> {
    list_keys_checked(store, ACCOUNT_TOKENS, |key| {
        signing_key(master, key).map(drop)
    })
    .await
}

/// Every key of `purpose`, newest first, with its state; `check` opens each un-retired one
/// (and fails the listing if it does not open).
async fn list_keys_checked<S: KeyStore>(
    store: &S,
    purpose: &str,
    check: impl Fn(&StoredKey) -> Result<(), SecretError>,
) -> Result<Vec<KeyInfo>, SecretError> {
    let keys = store.list_keys(purpose).await?;
    let mut seen_current = false;
    let mut infos = Vec::with_capacity(keys.len());
    for key in keys {
        let state = if key.retired_at.is_some() {
            KeyState::Retired
        } else {
            check(&key)?;
            if seen_current {
                KeyState::Previous
            } else {
                seen_current = true;
                KeyState::Current
            }
        };
        infos.push(KeyInfo {
            purpose: key.purpose,
            kid: key.kid,
            created_at: key.created_at,
            retired_at: key.retired_at,
            state,
        });
    }
    Ok(infos)
}

/// The two kinds of secure-drop key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropKeyKind {
    /// RSA-3072, for RSA-OAEP-256 (and, later, JWE `RSA-OAEP-256`) to the server.
    Encryption,
    /// Ed25519, for the receipts the server signs.
    Receipt,
}

impl DropKeyKind {
    /// The [`KeyStore`] purpose of this kind.
    pub fn purpose(self) -> &'static str {
        match self {
            Self::Encryption => DROP_ENCRYPTION,
            Self::Receipt => DROP_RECEIPT,
        }
    }

    /// The JOSE `alg` the key is published for.
    pub fn alg(self) -> &'static str {
        match self {
            Self::Encryption => "RSA-OAEP-256",
            Self::Receipt => "EdDSA",
        }
    }

    /// The JWK `use`.
    pub fn jwk_use(self) -> &'static str {
        match self {
            Self::Encryption => "enc",
            Self::Receipt => "sig",
        }
    }

    fn key_kind(self) -> KeyKind {
        match self {
            Self::Encryption => KeyKind::Rsa,
            Self::Receipt => KeyKind::Ed25519,
        }
    }

    /// A fresh private key of this kind. CPU-bound (RSA-3072: from a fraction of a second
    /// to seconds): call it off the async runtime.
    fn generate(self) -> Result<PrivateKey, SecretError> {
        match self {
            Self::Encryption => PrivateKey::generate_rsa(RsaBits::B3072),
            Self::Receipt => PrivateKey::generate_ed25519(),
        }
        .map_err(|_| SecretError::Crypto)
    }
}

/// An opened drop key: the private key (never shown by `Debug`), its public key and JWK
/// members, and its kid (the JWK's RFC 7638 thumbprint).
#[derive(Debug)]
pub struct DropKey {
    pub kind: DropKeyKind,
    pub kid: String,
    pub private: PrivateKey,
    pub public: PublicKey,
    pub jwk: PublicJwk,
    pub created_at: Timestamp,
}

/// The kid of a drop key: its public JWK's RFC 7638 thumbprint.
pub fn drop_kid(public: &PublicKey) -> Result<String, SecretError> {
    public
        .to_jwk()
        .map(|jwk| jwk.thumbprint())
        .map_err(|_| SecretError::Crypto)
}

/// Seals a new drop key of `kind`, generated on the blocking pool.
async fn new_drop_key(
    master: &MasterKey,
    kind: DropKeyKind,
    created: Timestamp,
) -> Result<StoredKey, SecretError> {
    let master = master.clone();
    tokio::task::spawn_blocking(move || {
        let private = kind.generate()?;
        let public = private.public_key().map_err(|_| SecretError::Crypto)?;
        let kid = drop_kid(&public)?;
        seal_with_kid(
            &master,
            kind.purpose(),
            &kid,
            &private.to_pkcs8_der(),
            created,
        )
    })
    .await
    .map_err(|_| SecretError::Crypto)?
}

/// Opens the drop key in `record` and checks it is of `kind` and is the key its id names.
pub fn open_drop_key(
    master: &MasterKey,
    kind: DropKeyKind,
    record: &StoredKey,
) -> Result<DropKey, SecretError> {
    let der = open_record(master, record)?;
    let corrupt = |reason: &str| corrupt_record(record, reason);
    let private = PrivateKey::from_pkcs8_der(&der).map_err(|e| corrupt(&e.to_string()))?;
    if private.kind() != kind.key_kind() || record.purpose != kind.purpose() {
        return Err(corrupt("it is not a key of this kind"));
    }
    let public = private.public_key().map_err(|e| corrupt(&e.to_string()))?;
    let jwk = public.to_jwk().map_err(|e| corrupt(&e.to_string()))?;
    if jwk.thumbprint() != record.kid {
        return Err(corrupt("it is not the key its id names"));
    }
    Ok(DropKey {
        kind,
        kid: record.kid.clone(),
        private,
        public,
        jwk,
        created_at: record.created_at,
    })
}

/// The un-retired `kind` records, newest first; with none, a first key is generated and
/// stored with `insert_first_key` (so nodes racing on an empty database agree on one), and
/// the records read back.
pub async fn active_drop_records<S: KeyStore>(
    store: &S,
    master: &MasterKey,
    kind: DropKeyKind,
    now: Timestamp,
) -> Result<Vec<StoredKey>, SecretError> {
    let mut keys = active(store.list_keys(kind.purpose()).await?);
    if keys.is_empty() {
        let first = new_drop_key(master, kind, now).await?;
        let kid = first.kid.clone();
        if store.insert_first_key(first).await? {
            tracing::info!(%kid, purpose = kind.purpose(), "created the first drop key");
        }
        keys = active(store.list_keys(kind.purpose()).await?);
    }
    Ok(keys)
}

/// The current (newest un-retired) drop key of `kind`, made on first use.
pub async fn current_drop_key<S: KeyStore>(
    store: &S,
    master: &MasterKey,
    kind: DropKeyKind,
    now: Timestamp,
) -> Result<DropKey, SecretError> {
    let keys = active_drop_records(store, master, kind, now).await?;
    let newest = keys.first().ok_or_else(|| SecretError::NoActiveKey {
        purpose: kind.purpose().to_owned(),
    })?;
    open_drop_key(master, kind, newest)
}

/// Every un-retired drop key of `kind`, opened, newest first (the current one first): the
/// keys that still decrypt, or still verify receipts. Makes none.
pub async fn active_drop_keys<S: KeyStore>(
    store: &S,
    master: &MasterKey,
    kind: DropKeyKind,
) -> Result<Vec<DropKey>, SecretError> {
    active(store.list_keys(kind.purpose()).await?)
        .iter()
        .map(|record| open_drop_key(master, kind, record))
        .collect()
}

/// Makes a new current drop key of `kind` and returns its kid; the older keys stay
/// un-retired, so messages encrypted to them still decrypt. As [`rotate_token_key`]: every
/// existing un-retired key must open first, the new key is never older than the current one,
/// and on an empty store this makes the first key.
pub async fn rotate_drop_key<S: KeyStore>(
    store: &S,
    master: &MasterKey,
    kind: DropKeyKind,
    now: Timestamp,
) -> Result<String, SecretError> {
    let keys = active(store.list_keys(kind.purpose()).await?);
    let Some(newest) = keys.first() else {
        return current_drop_key(store, master, kind, now)
            .await
            .map(|key| key.kid);
    };
    for record in &keys {
        open_drop_key(master, kind, record)?;
    }
    let record = new_drop_key(master, kind, now.max(newest.created_at)).await?;
    let kid = record.kid.clone();
    store.insert_key(record).await?;
    tracing::info!(%kid, purpose = kind.purpose(), "rotated the drop key");
    Ok(kid)
}

/// Every drop key (encryption, then receipt; each newest first) with its state; never the
/// keys. Un-retired keys are opened first, as in [`list_token_keys`].
pub async fn list_drop_keys<S: KeyStore>(
    store: &S,
    master: &MasterKey,
) -> Result<Vec<KeyInfo>, SecretError> {
    let mut infos = Vec::new();
    for kind in [DropKeyKind::Encryption, DropKeyKind::Receipt] {
        infos.extend(
            list_keys_checked(store, kind.purpose(), |key| {
                open_drop_key(master, kind, key).map(drop)
            })
            .await?,
        );
    }
    Ok(infos)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use palisade_core::UserId;
    use palisade_core::token::{self, Purpose, TokenError, TokenId};
    use palisade_store::MemoryStore;

    use super::*;

    const T0: i64 = 1_800_000_000;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_unix(secs)
    }

    fn master() -> MasterKey {
        MasterKey::generate().unwrap()
    }

    fn issue(ring: &KeyRing) -> String {
        token::issue(
            ring,
            Purpose::PasswordReset,
            UserId::new(7),
            TokenId::from_bytes([3; 16]),
            at(T0),
            3600,
            b"binding",
        )
    }

    fn check(ring: &KeyRing, t: &str) -> Result<token::Claims, TokenError> {
        token::verify(ring, Purpose::PasswordReset, t, at(T0 + 1), b"binding")
    }

    #[test]
    fn seal_open_round_trip_and_nothing_in_the_clear() {
        let m = master();
        let secret = [0x5a_u8; 32];
        let record = seal(&m, ACCOUNT_TOKENS, &secret, at(T0)).unwrap();
        assert_eq!(record.kid, SigningKey::new(&secret).unwrap().kid_hex());
        assert_eq!((record.created_at, record.retired_at), (at(T0), None));
        assert_eq!(open(&m, &record).unwrap().as_slice(), secret);
        // Sealing twice gives unrelated records (fresh data key, fresh IVs).
        let again = seal(&m, ACCOUNT_TOKENS, &secret, at(T0)).unwrap();
        assert_ne!(again.ciphertext, record.ciphertext);
        assert_ne!(again.wrapped_key, record.wrapped_key);
        // The record and its Debug show neither the secret nor the master key.
        let shown = format!("{record:?} {m:?}");
        for needle in [hex::encode(secret), m.to_text().to_string()] {
            assert!(!shown.contains(&needle), "{shown}");
            assert!(!record.ciphertext.contains(&needle));
        }
        assert!(!shown.contains(&record.ciphertext), "{shown}");
        assert!(!shown.contains(&record.wrapped_key), "{shown}");
        assert_eq!(
            seal(&m, ACCOUNT_TOKENS, &[1; 31], at(T0)),
            Err(SecretError::TooShort)
        );
    }

    #[test]
    fn wrong_master_swaps_and_tampering_do_not_open() {
        let m = master();
        let a = seal(&m, ACCOUNT_TOKENS, &[1; 32], at(T0)).unwrap();
        let b = seal(&m, ACCOUNT_TOKENS, &[2; 32], at(T0)).unwrap();
        assert_eq!(open(&master(), &a), Err(SecretError::Open));

        let mut moved = a.clone();
        moved.purpose = "oauth-signing".into();
        assert_eq!(open(&m, &moved), Err(SecretError::Open), "another purpose");
        let mut renamed = a.clone();
        renamed.kid = b.kid.clone();
        assert_eq!(open(&m, &renamed), Err(SecretError::Open), "another kid");
        let mut mixed = a.clone();
        mixed.wrapped_key = b.wrapped_key.clone();
        assert_eq!(open(&m, &mixed), Err(SecretError::Open), "another data key");
        // b's ciphertext under b's own wrapped key, but filed as a: the kid inside differs.
        let mut swapped = b.clone();
        swapped.kid = a.kid.clone();
        assert_eq!(open(&m, &swapped), Err(SecretError::Open));

        for field in [0, 1] {
            let mut bad = a.clone();
            let text = if field == 0 {
                &mut bad.ciphertext
            } else {
                &mut bad.wrapped_key
            };
            let mut bytes = text.clone().into_bytes();
            let i = bytes.len() / 2;
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            *text = String::from_utf8(bytes).unwrap();
            assert_eq!(open(&m, &bad), Err(SecretError::Open), "field {field}");
        }
    }

    #[tokio::test]
    async fn the_ring_is_made_once_and_read_back() {
        let store = MemoryStore::new();
        let m = master();
        let first = token_key_ring(&store, &m, at(T0)).await.unwrap();
        let second = token_key_ring(&store, &m, at(T0 + 10)).await.unwrap();
        assert_eq!(first.current().kid_hex(), second.current().kid_hex());
        let stored = store.list_keys(ACCOUNT_TOKENS).await.unwrap();
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].kid, first.current().kid_hex());
        // A token from one start verifies after the next.
        assert!(check(&second, &issue(&first)).is_ok());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn nodes_starting_together_agree_on_one_key() {
        let store = Arc::new(MemoryStore::new());
        let m = master();
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (store, m) = (Arc::clone(&store), m.clone());
                tokio::spawn(async move {
                    token_key_ring(&*store, &m, at(T0))
                        .await
                        .map(|ring| ring.current().kid_hex())
                })
            })
            .collect();
        let mut kids = Vec::new();
        for task in tasks {
            kids.push(task.await.unwrap().unwrap());
        }
        kids.dedup();
        assert_eq!(kids.len(), 1, "{kids:?}");
        assert_eq!(store.list_keys(ACCOUNT_TOKENS).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn another_master_key_is_a_clear_error() {
        let store = MemoryStore::new();
        let right = master();
        let ring = token_key_ring(&store, &right, at(T0)).await.unwrap();
        let wrong = master();
        let err = token_key_ring(&store, &wrong, at(T0)).await.unwrap_err();
        assert_eq!(
            err,
            SecretError::MasterKeyMismatch {
                purpose: ACCOUNT_TOKENS.into(),
                kid: ring.current().kid_hex(),
            }
        );
        let text = err.to_string();
        assert!(
            text.contains("master key does not match the database"),
            "{text}"
        );
        assert!(!text.contains(wrong.to_text().as_str()));
        // Neither rotation nor a listing goes ahead with it: nothing is added.
        assert!(matches!(
            rotate_token_key(&store, &wrong, at(T0)).await,
            Err(SecretError::MasterKeyMismatch { .. })
        ));
        assert!(matches!(
            list_token_keys(&store, &wrong).await,
            Err(SecretError::MasterKeyMismatch { .. })
        ));
        assert_eq!(store.list_keys(ACCOUNT_TOKENS).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn rotation_keeps_old_tokens_until_the_key_is_retired() {
        let store = MemoryStore::new();
        let m = master();
        let ring = token_key_ring(&store, &m, at(T0)).await.unwrap();
        let old_kid = ring.current().kid_hex();
        let old_token = issue(&ring);

        // Same second as the first key: the later insertion is still the current one.
        let new_kid = rotate_token_key(&store, &m, at(T0)).await.unwrap();
        assert_ne!(new_kid, old_kid);
        let rotated = token_key_ring(&store, &m, at(T0 + 1)).await.unwrap();
        assert_eq!(rotated.current().kid_hex(), new_kid);
        assert!(check(&rotated, &old_token).is_ok(), "previous key verifies");
        let new_token = issue(&rotated);
        assert_eq!(
            check(&ring, &new_token),
            Err(TokenError::Invalid),
            "signed by the new key"
        );

        let states: Vec<_> = list_token_keys(&store, &m)
            .await
            .unwrap()
            .into_iter()
            .map(|k| (k.kid, k.state))
            .collect();
        assert_eq!(
            states,
            [
                (new_kid.clone(), KeyState::Current),
                (old_kid.clone(), KeyState::Previous)
            ]
        );

        retire_token_key(&store, &old_kid, at(T0 + 2))
            .await
            .unwrap();
        let after = token_key_ring(&store, &m, at(T0 + 3)).await.unwrap();
        assert_eq!(check(&after, &old_token), Err(TokenError::Invalid));
        assert!(check(&after, &new_token).is_ok());
        let listed = list_token_keys(&store, &m).await.unwrap();
        assert_eq!(listed[1].state, KeyState::Retired);
        assert_eq!(listed[1].retired_at, Some(at(T0 + 2)));
    }

    #[tokio::test]
    async fn rotation_is_never_older_than_the_current_key() {
        let store = MemoryStore::new();
        let m = master();
        token_key_ring(&store, &m, at(T0)).await.unwrap();
        // An admin machine whose clock is an hour behind the node that made the key.
        let kid = rotate_token_key(&store, &m, at(T0 - 3600)).await.unwrap();
        let ring = token_key_ring(&store, &m, at(T0)).await.unwrap();
        assert_eq!(ring.current().kid_hex(), kid);
    }

    #[tokio::test]
    async fn rotate_on_an_empty_store_makes_one_key() {
        let store = MemoryStore::new();
        let m = master();
        assert!(list_token_keys(&store, &m).await.unwrap().is_empty());
        let kid = rotate_token_key(&store, &m, at(T0)).await.unwrap();
        let listed = list_token_keys(&store, &m).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(
            (listed[0].kid.as_str(), listed[0].state),
            (kid.as_str(), KeyState::Current)
        );
    }

    #[tokio::test]
    async fn retiring_the_only_or_an_unknown_key_is_refused() {
        let store = MemoryStore::new();
        let m = master();
        let kid = token_key_ring(&store, &m, at(T0))
            .await
            .unwrap()
            .current()
            .kid_hex();
        let err = retire_token_key(&store, &kid, at(T0)).await.unwrap_err();
        assert!(matches!(err, SecretError::OnlyKey { .. }));
        assert!(err.to_string().contains("rotate first"), "{err}");
        assert!(matches!(
            retire_token_key(&store, "0011223344556677", at(T0)).await,
            Err(SecretError::NoSuchKey { .. })
        ));
        let newer = rotate_token_key(&store, &m, at(T0)).await.unwrap();
        retire_token_key(&store, &kid, at(T0)).await.unwrap();
        // Already retired: no longer an active key.
        assert!(matches!(
            retire_token_key(&store, &kid, at(T0)).await,
            Err(SecretError::NoSuchKey { .. })
        ));
        // The current key may be retired while another active one remains.
        let third = rotate_token_key(&store, &m, at(T0)).await.unwrap();
        retire_token_key(&store, &third, at(T0)).await.unwrap();
        let ring = token_key_ring(&store, &m, at(T0)).await.unwrap();
        assert_eq!(ring.current().kid_hex(), newer);
    }

    #[tokio::test]
    async fn drop_keys_are_made_once_named_by_their_public_key_and_rotate() {
        let store = MemoryStore::new();
        let m = master();
        assert!(list_drop_keys(&store, &m).await.unwrap().is_empty());
        let enc = current_drop_key(&store, &m, DropKeyKind::Encryption, at(T0))
            .await
            .unwrap();
        let PrivateKey::Rsa(rsa) = &enc.private else {
            panic!("not RSA")
        };
        assert_eq!(rsa.bits(), 3072);
        assert_eq!(enc.kid, enc.public.to_jwk().unwrap().thumbprint());
        let again = current_drop_key(&store, &m, DropKeyKind::Encryption, at(T0 + 1))
            .await
            .unwrap();
        assert_eq!(again.kid, enc.kid);
        let rec = current_drop_key(&store, &m, DropKeyKind::Receipt, at(T0))
            .await
            .unwrap();
        assert_eq!(rec.private.kind(), KeyKind::Ed25519);
        assert_eq!(rec.kid, drop_kid(&rec.public).unwrap());

        // The stored record is ciphertext, and opens to exactly the key.
        let stored = store.list_keys(DROP_ENCRYPTION).await.unwrap();
        assert_eq!(stored.len(), 1);
        assert_eq!(
            open(&m, &stored[0]).unwrap().as_slice(),
            enc.private.to_pkcs8_der().as_slice()
        );
        // Filed under the other drop purpose, it does not open.
        let mut moved = stored[0].clone();
        moved.purpose = DROP_RECEIPT.into();
        assert!(open_drop_key(&m, DropKeyKind::Receipt, &moved).is_err());
        // Another master key: a clear mismatch, and rotation adds nothing.
        let wrong = master();
        assert!(matches!(
            rotate_drop_key(&store, &wrong, DropKeyKind::Encryption, at(T0)).await,
            Err(SecretError::MasterKeyMismatch { .. })
        ));

        let new_kid = rotate_drop_key(&store, &m, DropKeyKind::Encryption, at(T0))
            .await
            .unwrap();
        assert_ne!(new_kid, enc.kid);
        let active = active_drop_keys(&store, &m, DropKeyKind::Encryption)
            .await
            .unwrap();
        let kids: Vec<_> = active.iter().map(|k| k.kid.as_str()).collect();
        assert_eq!(kids, [new_kid.as_str(), enc.kid.as_str()]);
        let listed: Vec<_> = list_drop_keys(&store, &m)
            .await
            .unwrap()
            .into_iter()
            .map(|k| (k.purpose, k.kid, k.state))
            .collect();
        assert_eq!(
            listed,
            [
                (DROP_ENCRYPTION.to_owned(), new_kid, KeyState::Current),
                (
                    DROP_ENCRYPTION.to_owned(),
                    enc.kid.clone(),
                    KeyState::Previous
                ),
                (DROP_RECEIPT.to_owned(), rec.kid.clone(), KeyState::Current),
            ]
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn racing_first_drop_keys_agree() {
        let store = Arc::new(MemoryStore::new());
        let m = master();
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let (store, m) = (Arc::clone(&store), m.clone());
                tokio::spawn(async move {
                    current_drop_key(&*store, &m, DropKeyKind::Receipt, at(T0))
                        .await
                        .map(|k| k.kid)
                })
            })
            .collect();
        let mut kids = Vec::new();
        for task in tasks {
            kids.push(task.await.unwrap().unwrap());
        }
        kids.dedup();
        assert_eq!(kids.len(), 1, "{kids:?}");
        assert_eq!(store.list_keys(DROP_RECEIPT).await.unwrap().len(), 1);
    }

    #[test]
    fn master_key_file_is_made_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create_master_key(dir.path(), None).unwrap();
        let path = dir.path().join(MASTER_KEY_FILE);
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.trim(), first.to_text().as_str());
        assert_eq!(text.trim().len(), 44);
        let second = load_or_create_master_key(dir.path(), None).unwrap();
        assert_eq!(second.to_text(), first.to_text());
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [MASTER_KEY_FILE]);
    }

    #[test]
    fn concurrent_first_loads_agree() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_owned();
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || {
                    load_or_create_master_key(&path, None)
                        .map(|k| k.to_text().to_string())
                        .unwrap()
                })
            })
            .collect();
        let mut texts: Vec<String> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        texts.dedup();
        assert_eq!(texts.len(), 1);
    }

    #[test]
    fn the_environment_overrides_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let from_file = load_or_create_master_key(dir.path(), None).unwrap();
        let other = master();
        let env_text = format!("  {}\n", other.to_text().as_str());
        let from_env = load_or_create_master_key(dir.path(), Some(&env_text)).unwrap();
        assert_eq!(from_env.to_text(), other.to_text());
        assert_ne!(from_env.to_text(), from_file.to_text());
        // Given by the environment, no file is made.
        let empty = tempfile::tempdir().unwrap();
        load_or_create_master_key(empty.path(), Some(&env_text)).unwrap();
        assert!(!empty.path().join(MASTER_KEY_FILE).exists());
    }

    #[test]
    fn bad_keys_are_errors_that_do_not_echo_them() {
        let dir = tempfile::tempdir().unwrap();
        let bad = "c2VjcmV0LXRoYXQtaXMtbm90LWEta2V5";
        let err = load_or_create_master_key(dir.path(), Some(bad))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("PALISADE_MASTER_KEY:"), "{err}");
        assert!(!err.contains(bad), "{err}");
        assert!(!dir.path().join(MASTER_KEY_FILE).exists());

        let path = dir.path().join(MASTER_KEY_FILE);
        for content in [bad.as_bytes(), b"", &[0xff, 0xfe, 0x00]] {
            std::fs::write(&path, content).unwrap();
            let err = load_or_create_master_key(dir.path(), None)
                .unwrap_err()
                .to_string();
            assert!(err.contains(&path.display().to_string()), "{err}");
            assert!(err.contains("is not a master key"), "{err}");
            assert!(!err.contains(bad), "{err}");
            // Never replaced: it may be the only copy of the real key.
            assert_eq!(std::fs::read(&path).unwrap(), content);
        }
    }
}
