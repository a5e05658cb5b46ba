//! age v1 file encryption (<https://age-encryption.org/v1>) through the `age` crate: X25519
//! identities and recipients in the `age-keygen` text formats, scrypt passphrases, and
//! streaming encryption and decryption between any `Read` and `Write` in constant memory.
//!
//! Nothing here implements the age format itself; this module only chooses safe defaults
//! around the crate and turns its errors into two families the caller must treat
//! differently:
//! - **input errors** (a malformed recipient or identity file, an input that is not an age
//!   file at all, an empty passphrase): the user gave us the wrong thing;
//! - **one opaque failure**, [`AgeError::Decrypt`], for "no identity matched, the passphrase
//!   is wrong, or the file was tampered with or truncated". Saying which of these happened
//!   would hand an attacker an oracle, and the caller could not act on the difference.
//!
//! Plaintext is written to the caller's `Write` as each 64 KiB STREAM chunk authenticates,
//! so a failed [`decrypt`] may already have written a prefix of the plaintext: the caller
//! must hold output back until `decrypt` returns `Ok` (the CLI writes to a temporary file).
//!
//! Fuzz entry point: [`parse_header`], which runs the same header parser as [`decrypt`].

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io::{self, BufReader, Read, Write};
use std::iter;
use std::rc::Rc;
use std::str::FromStr;

use age::secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

/// Every age file starts with these bytes (the version line is `age-encryption.org/v1`).
const AGE_MAGIC: &[u8] = b"age-encryption.org/";

/// Copy buffer for the plaintext side. The crate works in 64 KiB chunks internally; a larger
/// buffer lets one `read`/`write` call cover several of them without unbounded memory.
const COPY_BUF: usize = 256 * 1024;

/// Read buffer in front of the ciphertext. Deliberately small: the crate reads whole
/// 64 KiB + 16 B encrypted chunks, and `BufReader` passes reads at least this large straight
/// through, so a small buffer only serves the header and saves a copy of every chunk.
const CIPHERTEXT_BUF: usize = 16 * 1024;

/// Largest header we accept. A header is a few hundred bytes per recipient; the crate's
/// buffered parser reads whole lines, so without a cap a crafted file with one endless line
/// would be read into memory.
pub const MAX_HEADER_BYTES: u64 = 1024 * 1024;

/// Largest scrypt work factor (log2 N) accepted when decrypting, as the `age` tool does:
/// 2^22 already costs 4 GiB of memory, and a hostile file must not ask for more.
pub const MAX_SCRYPT_LOG_N: u8 = 22;

/// Errors from this module. [`AgeError::is_input_error`] tells input errors apart from
/// failed checks.
#[derive(Debug, thiserror::Error)]
pub enum AgeError {
    /// A recipient string that is not an `age1…` X25519 recipient.
    #[error("malformed recipient {0:?}: expected an age1… X25519 recipient")]
    MalformedRecipient(String),
    /// A line of a recipients file that is not an `age1…` recipient.
    #[error("line {line}: {reason}")]
    MalformedRecipientsFile {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A recipients file without a single recipient.
    #[error("no recipients found (one age1… recipient per line expected)")]
    NoRecipients,
    /// A line of an identity file that is not an `AGE-SECRET-KEY-1…` identity. The line
    /// itself is never echoed: it may hold a secret key with a typo.
    #[error("malformed identity file: line {line} is not an AGE-SECRET-KEY-1… identity")]
    MalformedIdentityFile {
        /// 1-based line number.
        line: usize,
    },
    /// An identity file that is itself age-encrypted (not supported).
    #[error("encrypted identity files are not supported")]
    EncryptedIdentityFile,
    /// An identity file without a single identity.
    #[error("no identities found in identity file (expected AGE-SECRET-KEY-1… lines)")]
    NoIdentities,
    /// The input does not start with the age magic `age-encryption.org/`.
    #[error("not an age file")]
    NotAgeFile,
    /// An age file of a version other than v1.
    #[error("unsupported age format version (only age-encryption.org/v1 is supported)")]
    UnsupportedVersion,
    /// An empty passphrase.
    #[error("the passphrase is empty")]
    EmptyPassphrase,
    /// An scrypt work factor outside 1..=[`MAX_SCRYPT_LOG_N`] asked of the encryptor.
    #[error("scrypt work factor must be between 1 and {MAX_SCRYPT_LOG_N}")]
    InvalidWorkFactor,
    /// Identities were given, but the file is encrypted with a passphrase.
    #[error("the file is encrypted with a passphrase, not to a recipient")]
    PassphraseEncrypted,
    /// A passphrase was given, but the file is encrypted to recipients.
    #[error("the file is encrypted to recipients, not with a passphrase")]
    NotPassphraseEncrypted,
    /// The file's scrypt work factor is above [`MAX_SCRYPT_LOG_N`].
    #[error("the file's scrypt work factor 2^{required} exceeds the limit 2^{MAX_SCRYPT_LOG_N}")]
    ExcessiveWork {
        /// The work factor (log2 N) the file asks for.
        required: u8,
    },
    /// The header is larger than [`MAX_HEADER_BYTES`].
    #[error("age header is larger than {MAX_HEADER_BYTES} bytes")]
    HeaderTooLarge,
    /// The opaque failure: no identity matched, the passphrase is wrong, or the file was
    /// tampered with or truncated.
    #[error(
        "cannot decrypt: no identity matched, the passphrase is wrong, \
         or the file was tampered with or truncated"
    )]
    Decrypt,
    /// Reading the input failed (an I/O error of the underlying reader, not a bad file).
    #[error("read error: {0}")]
    Read(#[source] io::Error),
    /// Writing the output failed.
    #[error("write error: {0}")]
    Write(#[source] io::Error),
}

impl AgeError {
    /// `true` for errors in what the user supplied (malformed keys, not an age file, empty
    /// passphrase), as opposed to a check that failed on a genuine age file or an I/O error.
    pub fn is_input_error(&self) -> bool {
        matches!(
            self,
            Self::MalformedRecipient(_)
                | Self::MalformedRecipientsFile { .. }
                | Self::NoRecipients
                | Self::MalformedIdentityFile { .. }
                | Self::EncryptedIdentityFile
                | Self::NoIdentities
                | Self::NotAgeFile
                | Self::EmptyPassphrase
                | Self::InvalidWorkFactor
        )
    }
}

/// An X25519 identity (secret key). `Debug` never shows the key.
#[derive(Clone)]
pub struct Identity(age::x25519::Identity);

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Identity")
            .field(&self.0.to_public().to_string())
            .finish()
    }
}

impl Identity {
    /// A new identity from the operating system's CSPRNG.
    pub fn generate() -> Self {
        Self(age::x25519::Identity::generate())
    }

    /// The matching recipient (public key).
    pub fn recipient(&self) -> Recipient {
        Recipient(self.0.to_public())
    }

    /// The `AGE-SECRET-KEY-1…` encoding.
    pub fn to_secret_string(&self) -> Zeroizing<String> {
        Zeroizing::new(self.0.to_string().expose_secret().to_owned())
    }

    /// The identity file exactly as `age-keygen` writes it, with the creation time given as
    /// seconds since the Unix epoch (the library does not read the clock):
    /// `# created: <RFC 3339 UTC>\n# public key: age1…\nAGE-SECRET-KEY-1…\n`.
    pub fn to_identity_file(&self, created_unix_secs: u64) -> Zeroizing<String> {
        let secret = self.to_secret_string();
        Zeroizing::new(format!(
            "# created: {}\n# public key: {}\n{}\n",
            rfc3339_utc(created_unix_secs),
            self.recipient(),
            secret.as_str()
        ))
    }
}

impl FromStr for Identity {
    type Err = AgeError;

    /// Parses one `AGE-SECRET-KEY-1…` string.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        age::x25519::Identity::from_str(s.trim())
            .map(Self)
            .map_err(|_| AgeError::MalformedIdentityFile { line: 1 })
    }
}

/// An X25519 recipient (`age1…`).
#[derive(Clone, PartialEq, Eq)]
pub struct Recipient(age::x25519::Recipient);

impl fmt::Debug for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Recipient").field(&self.to_string()).finish()
    }
}

impl fmt::Display for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl FromStr for Recipient {
    type Err = AgeError;

    /// Parses one `age1…` recipient (surrounding whitespace ignored).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        age::x25519::Recipient::from_str(s.trim())
            .map(Self)
            .map_err(|_| AgeError::MalformedRecipient(shorten(s.trim())))
    }
}

/// Keeps error messages one readable line even when the "recipient" was a whole file pasted
/// on the command line.
fn shorten(s: &str) -> String {
    const MAX: usize = 80;
    if s.chars().count() <= MAX {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(MAX).collect();
        out.push('…');
        out
    }
}

/// Parses a recipients file: one `age1…` recipient per line; blank lines and lines starting
/// with `#` are skipped (as `age -R`). At least one recipient is required.
pub fn parse_recipients_file(text: &str) -> Result<Vec<Recipient>, AgeError> {
    let mut recipients = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let reason = if line.starts_with("AGE-SECRET-KEY-") {
            // Never echo it: it is a secret key in the wrong place.
            "a secret key (AGE-SECRET-KEY-…), not a recipient"
        } else {
            "not an age1… recipient"
        };
        let recipient = age::x25519::Recipient::from_str(line).map_err(|_| {
            AgeError::MalformedRecipientsFile {
                line: index + 1,
                reason,
            }
        })?;
        recipients.push(Recipient(recipient));
    }
    if recipients.is_empty() {
        return Err(AgeError::NoRecipients);
    }
    Ok(recipients)
}

/// Parses an identity file in the `age-keygen` format: `AGE-SECRET-KEY-1…` lines; blank
/// lines and `#` comments are skipped. At least one identity is required.
pub fn parse_identity_file(text: &str) -> Result<Vec<Identity>, AgeError> {
    if text.as_bytes().starts_with(AGE_MAGIC) {
        return Err(AgeError::EncryptedIdentityFile);
    }
    let mut identities = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let identity = age::x25519::Identity::from_str(line)
            .map_err(|_| AgeError::MalformedIdentityFile { line: index + 1 })?;
        identities.push(Identity(identity));
    }
    if identities.is_empty() {
        return Err(AgeError::NoIdentities);
    }
    Ok(identities)
}

/// A non-empty passphrase, wiped from memory on drop.
pub struct Passphrase(SecretString);

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase(..)")
    }
}

impl Passphrase {
    /// Takes ownership of `passphrase` (so no unwiped copy is left behind); empty is refused.
    pub fn new(passphrase: String) -> Result<Self, AgeError> {
        let secret = SecretString::from(passphrase);
        if secret.expose_secret().is_empty() {
            return Err(AgeError::EmptyPassphrase);
        }
        Ok(Self(secret))
    }

    /// Whether two passphrases are equal (for "type it again" confirmation).
    pub fn matches(&self, other: &Passphrase) -> bool {
        use subtle::ConstantTimeEq;
        bool::from(
            self.0
                .expose_secret()
                .as_bytes()
                .ct_eq(other.0.expose_secret().as_bytes()),
        )
    }
}

/// Whom a file is encrypted to.
#[derive(Debug, Clone, Copy)]
pub enum EncryptTo<'a> {
    /// One or more X25519 recipients; any of their identities can decrypt.
    Recipients(&'a [Recipient]),
    /// A passphrase, stretched with scrypt. `work_factor` is log2 N; `None` uses the
    /// crate's calibration (about one second on this machine), which is what users want;
    /// tests pass a small value to stay fast.
    Passphrase {
        /// The passphrase.
        passphrase: &'a Passphrase,
        /// scrypt log2 N, or `None` for the calibrated default.
        work_factor: Option<u8>,
    },
}

/// What a file is decrypted with.
#[derive(Debug, Clone, Copy)]
pub enum DecryptWith<'a> {
    /// X25519 identities, tried in order.
    Identities(&'a [Identity]),
    /// The passphrase the file was encrypted with.
    Passphrase(&'a Passphrase),
}

/// Encrypts everything `input` yields to `output` in the age v1 format, streaming in
/// constant memory, and returns `output` after the final chunk was written (the caller
/// still has to flush it).
pub fn encrypt<R: Read, W: Write>(
    to: EncryptTo<'_>,
    mut input: R,
    output: W,
) -> Result<W, AgeError> {
    let encryptor = match to {
        EncryptTo::Recipients(recipients) => {
            if recipients.is_empty() {
                return Err(AgeError::NoRecipients);
            }
            age::Encryptor::with_recipients(recipients.iter().map(|r| &r.0 as &dyn age::Recipient))
                // Only reachable with mixed recipient kinds, which this API cannot build.
                .map_err(|_| AgeError::NoRecipients)?
        }
        EncryptTo::Passphrase {
            passphrase,
            work_factor,
        } => {
            let mut recipient = age::scrypt::Recipient::new(passphrase.0.clone());
            if let Some(log_n) = work_factor {
                // `set_work_factor` panics outside 1..64; we also refuse values that our own
                // decryptor (and the age tool) would refuse to open.
                if log_n == 0 || log_n > MAX_SCRYPT_LOG_N {
                    return Err(AgeError::InvalidWorkFactor);
                }
                recipient.set_work_factor(log_n);
            }
            age::Encryptor::with_recipients(iter::once(&recipient as &dyn age::Recipient))
                .map_err(|_| AgeError::NoRecipients)?
        }
    };
    let mut writer = encryptor.wrap_output(output).map_err(AgeError::Write)?;
    let mut buf = vec![0u8; COPY_BUF];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(AgeError::Read(e)),
        };
        let chunk = buf.get(..n).unwrap_or_default();
        // The stream writer's only failures are those of the writer underneath.
        writer.write_all(chunk).map_err(AgeError::Write)?;
    }
    writer.finish().map_err(AgeError::Write)
}

/// Decrypts the age file `input` into `output`, streaming in constant memory, and returns
/// `output` once the final STREAM chunk authenticated and nothing followed it.
///
/// On `Err`, `output` may hold a prefix of the plaintext that did authenticate chunk by
/// chunk; discard it (see the module documentation).
pub fn decrypt<R: Read, W: Write>(
    with: DecryptWith<'_>,
    input: R,
    mut output: W,
) -> Result<W, AgeError> {
    let guard = Rc::new(GuardState::default());
    let reader = open_age_input(input, &guard)?;
    let decryptor = age::Decryptor::new_buffered(BufReader::with_capacity(CIPHERTEXT_BUF, reader))
        .map_err(|e| map_decrypt_error(e, &guard))?;
    guard.header_done.set(true);

    let scrypt_file = decryptor.is_scrypt();
    let result = match with {
        DecryptWith::Identities(identities) => {
            if scrypt_file {
                return Err(AgeError::PassphraseEncrypted);
            }
            decryptor.decrypt(identities.iter().map(|i| &i.0 as &dyn age::Identity))
        }
        DecryptWith::Passphrase(passphrase) => {
            if !scrypt_file {
                return Err(AgeError::NotPassphraseEncrypted);
            }
            let mut identity = age::scrypt::Identity::new(passphrase.0.clone());
            identity.set_max_work_factor(MAX_SCRYPT_LOG_N);
            decryptor.decrypt(iter::once(&identity as &dyn age::Identity))
        }
    };
    let mut plaintext = result.map_err(|e| map_decrypt_error(e, &guard))?;

    let mut buf = Zeroizing::new(vec![0u8; COPY_BUF]);
    loop {
        let n = match plaintext.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(map_stream_error(e, &guard)),
        };
        let chunk = buf.get(..n).unwrap_or_default();
        output.write_all(chunk).map_err(AgeError::Write)?;
    }
    Ok(output)
}

/// Whether a file is passphrase-encrypted, from its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderInfo {
    /// `true` for an scrypt (passphrase) file, `false` for a recipient file.
    pub passphrase: bool,
}

/// Parses the age header at the start of `bytes` with the same parser and checks as
/// [`decrypt`] (magic, size cap, structure, version), without any key: the fuzz entry
/// point for untrusted age input. The header MAC is not checked (that needs the file key).
pub fn parse_header(bytes: &[u8]) -> Result<HeaderInfo, AgeError> {
    let guard = Rc::new(GuardState::default());
    let reader = open_age_input(bytes, &guard)?;
    let decryptor = age::Decryptor::new_buffered(BufReader::with_capacity(CIPHERTEXT_BUF, reader))
        .map_err(|e| map_decrypt_error(e, &guard))?;
    Ok(HeaderInfo {
        passphrase: decryptor.is_scrypt(),
    })
}

/// Shared between [`Guarded`] (inside the crate's decryptor) and our error mapping, which
/// needs to know whether a failure came from the reader underneath or from the file.
#[derive(Default)]
struct GuardState {
    /// Set once the header is parsed, lifting the header size cap.
    header_done: Cell<bool>,
    /// Set when the header cap was hit.
    header_too_large: Cell<bool>,
    /// An I/O error of the underlying reader, kept so it is reported as such rather than
    /// hidden behind the opaque decryption failure.
    io_error: RefCell<Option<io::Error>>,
}

/// The ciphertext reader: caps the header size and records genuine read errors.
struct Guarded<R> {
    inner: R,
    state: Rc<GuardState>,
    consumed: u64,
}

impl<R: Read> Read for Guarded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let buf = if self.state.header_done.get() {
            buf
        } else {
            let left = MAX_HEADER_BYTES.saturating_sub(self.consumed);
            if left == 0 {
                self.state.header_too_large.set(true);
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "age header too large",
                ));
            }
            let max = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
            // In range by construction (`max <= buf.len()`).
            buf.split_at_mut(max).0
        };
        match self.inner.read(buf) {
            Ok(n) => {
                self.consumed = self.consumed.saturating_add(n as u64);
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => {
                // Keep the original for the report; hand the crate an equivalent.
                let copy = io::Error::new(e.kind(), e.to_string());
                *self.state.io_error.borrow_mut() = Some(e);
                Err(copy)
            }
        }
    }
}

/// The input with the bytes already read for the magic check put back in front.
type WithPrefix<R> = io::Chain<io::Cursor<Vec<u8>>, R>;

/// Checks the magic, so that "not an age file" (an input error) is told apart from a
/// damaged age file (a failed check), and returns a reader over the whole input.
fn open_age_input<R: Read>(
    mut input: R,
    state: &Rc<GuardState>,
) -> Result<Guarded<WithPrefix<R>>, AgeError> {
    let mut prefix = vec![0u8; AGE_MAGIC.len()];
    let mut filled = 0;
    while filled < prefix.len() {
        let rest = prefix.get_mut(filled..).unwrap_or_default();
        match input.read(rest) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(AgeError::Read(e)),
        }
    }
    prefix.truncate(filled);
    if !AGE_MAGIC.starts_with(&prefix) {
        return Err(AgeError::NotAgeFile);
    }
    if filled < AGE_MAGIC.len() {
        // Empty, or cut inside the magic: a truncated file, the same opaque failure as a
        // file cut anywhere else.
        return Err(AgeError::Decrypt);
    }
    Ok(Guarded {
        inner: io::Cursor::new(prefix).chain(input),
        state: Rc::clone(state),
        consumed: 0,
    })
}

fn take_io_error(state: &GuardState) -> Option<io::Error> {
    state.io_error.borrow_mut().take()
}

fn map_decrypt_error(err: age::DecryptError, state: &GuardState) -> AgeError {
    if let Some(e) = take_io_error(state) {
        return AgeError::Read(e);
    }
    if state.header_too_large.get() {
        return AgeError::HeaderTooLarge;
    }
    match err {
        age::DecryptError::UnknownFormat => AgeError::UnsupportedVersion,
        age::DecryptError::ExcessiveWork { required, .. } => AgeError::ExcessiveWork { required },
        // Bad header, bad MAC, no matching stanza, wrong passphrase, truncation: one answer.
        _ => AgeError::Decrypt,
    }
}

fn map_stream_error(_err: io::Error, state: &GuardState) -> AgeError {
    match take_io_error(state) {
        Some(e) => AgeError::Read(e),
        // Chunk authentication failed, the stream ended early or went on after the last
        // chunk: the crate's distinctions stay inside.
        None => AgeError::Decrypt,
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` for seconds since the Unix epoch (what `age-keygen` writes in its
/// `# created:` line, in UTC).
pub fn rfc3339_utc(unix_secs: u64) -> String {
    let days = i64::try_from(unix_secs / 86_400).unwrap_or(i64::MAX / 2);
    let secs_of_day = unix_secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs_of_day / 3600,
        secs_of_day % 3600 / 60,
        secs_of_day % 60
    )
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339_utc(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339_utc(4_102_444_799), "2099-12-31T23:59:59Z");
    }

    #[test]
    fn identity_file_shape_and_round_trip() {
        let id = Identity::generate();
        let text = id.to_identity_file(1_700_000_000);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0], "# created: 2023-11-14T22:13:20Z");
        assert_eq!(lines[1], format!("# public key: {}", id.recipient()));
        assert!(lines[2].starts_with("AGE-SECRET-KEY-1"));
        assert!(text.ends_with('\n'));
        let parsed = parse_identity_file(&text).unwrap();
        assert_eq!(parsed.len(), 1);
        assert_eq!(parsed[0].recipient(), id.recipient());
        assert!(!format!("{id:?}").contains("AGE-SECRET-KEY"));
    }

    #[test]
    fn recipients_file_parsing() {
        let a = Identity::generate().recipient();
        let b = Identity::generate().recipient();
        let text = format!("# team\n\n{a}\n  {b}  \r\n# end\n");
        assert_eq!(parse_recipients_file(&text).unwrap(), vec![a, b]);
        assert!(matches!(
            parse_recipients_file("# only comments\n\n"),
            Err(AgeError::NoRecipients)
        ));
        assert!(matches!(
            parse_recipients_file("age1nope\n"),
            Err(AgeError::MalformedRecipientsFile { line: 1, .. })
        ));
        assert!("age1nope".parse::<Recipient>().is_err());
    }

    #[test]
    fn empty_passphrase_refused() {
        assert!(matches!(
            Passphrase::new(String::new()),
            Err(AgeError::EmptyPassphrase)
        ));
    }

    #[test]
    fn passphrase_round_trip_and_method_mismatch() {
        let p = Passphrase::new("correct horse".to_owned()).unwrap();
        let ct = encrypt(
            EncryptTo::Passphrase {
                passphrase: &p,
                work_factor: Some(10),
            },
            &b"hello"[..],
            Vec::new(),
        )
        .unwrap();
        assert!(parse_header(&ct).unwrap().passphrase);
        let pt = decrypt(DecryptWith::Passphrase(&p), &ct[..], Vec::new()).unwrap();
        assert_eq!(pt, b"hello");
        let wrong = Passphrase::new("wrong".to_owned()).unwrap();
        assert!(matches!(
            decrypt(DecryptWith::Passphrase(&wrong), &ct[..], Vec::new()),
            Err(AgeError::Decrypt)
        ));
        let ids = [Identity::generate()];
        assert!(matches!(
            decrypt(DecryptWith::Identities(&ids), &ct[..], Vec::new()),
            Err(AgeError::PassphraseEncrypted)
        ));
    }

    #[test]
    fn not_an_age_file_versus_truncated() {
        let ids = [Identity::generate()];
        let d = |b: &[u8]| decrypt(DecryptWith::Identities(&ids), b, Vec::new());
        assert!(matches!(d(b"hello world\n"), Err(AgeError::NotAgeFile)));
        assert!(matches!(d(b""), Err(AgeError::Decrypt)));
        assert!(matches!(d(b"age-encr"), Err(AgeError::Decrypt)));
        assert!(matches!(
            d(b"age-encryption.org/v9\n"),
            Err(AgeError::UnsupportedVersion)
        ));
    }

    #[test]
    fn endless_header_line_is_capped() {
        let mut data = b"age-encryption.org/v1\n-> X25519 ".to_vec();
        data.extend(std::iter::repeat_n(b'A', 3 * 1024 * 1024));
        let ids = [Identity::generate()];
        assert!(matches!(
            decrypt(DecryptWith::Identities(&ids), &data[..], Vec::new()),
            Err(AgeError::HeaderTooLarge)
        ));
    }

    #[test]
    fn read_errors_are_not_hidden() {
        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("disk on fire"))
            }
        }
        let id = Identity::generate();
        let ct = encrypt(
            EncryptTo::Recipients(&[id.recipient()]),
            &[7u8; 100_000][..],
            Vec::new(),
        )
        .unwrap();
        let ids = [id];
        let input = (&ct[..ct.len() / 2]).chain(Failing);
        assert!(matches!(
            decrypt(DecryptWith::Identities(&ids), input, Vec::new()),
            Err(AgeError::Read(_))
        ));
    }
}
