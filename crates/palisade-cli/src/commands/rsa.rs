//! `palisade rsa encrypt|decrypt`: RSA-OAEP (SHA-256, MGF1-SHA-256, empty label) of one
//! block, as Python's `padding.OAEP(MGF1(SHA256()), SHA256(), None)`. Raw bytes, or
//! lowercase hex with `--hex`. A message over the key's limit (key bytes − 66) is an input
//! error (exit 2) that names the limit; a ciphertext the key cannot open is a failed check
//! (exit 1) with no output written.

use std::path::Path;

use palisade_crypto::keys::{PrivateKey, PublicKey};
use palisade_crypto::rsa_oaep::{self, OaepError};

use super::keygen::{load_private_key, load_public_key};
use crate::cli::{OutputArgs, RsaCommand};
use crate::error::{CliError, CliResult};
use crate::io::{self, Mode, Output};

/// Largest ciphertext input read. A real one is a single block (at most 1 KiB for RSA-8192,
/// twice that as hex); the limit only stops a mistaken huge file from being slurped.
const CIPHERTEXT_LIMIT: u64 = 64 * 1024;

pub fn run(cmd: RsaCommand) -> CliResult<u8> {
    match cmd {
        RsaCommand::Encrypt {
            public_key,
            hex,
            file,
            out,
        } => encrypt(&public_key, hex, file.as_deref(), &out),
        RsaCommand::Decrypt {
            private_key,
            hex,
            file,
            out,
        } => decrypt(&private_key, hex, file.as_deref(), &out),
    }
}

fn encrypt(key_path: &Path, hex: bool, file: Option<&Path>, out: &OutputArgs) -> CliResult<u8> {
    let key = load_public_key(key_path)?;
    let PublicKey::Rsa(rsa) = &key else {
        return Err(wrong_key_type(key_path, &key.kind().to_string()));
    };
    let max = rsa_oaep::max_plaintext_len(rsa);
    let mut output = Output::prepare(out, Mode::Public, false)?;
    let input = io::open_input(file)?;
    let name = input.name.clone();
    let what = format!("RSA-OAEP ({}-bit key: key bytes - 66)", rsa.bits());
    let plaintext = zeroize_on_drop(io::read_limited(input, max as u64, &what)?);
    let ciphertext = rsa_oaep::encrypt(&key, &plaintext.0, None).map_err(|e| match e {
        OaepError::WrongKeyType(_) | OaepError::MessageTooLong { .. } => {
            CliError::usage(format!("{name}: {e}"))
        }
        OaepError::Decryption | OaepError::Encryption => {
            CliError::usage(format!("{}: {e}", key_path.display()))
        }
    })?;
    if hex {
        let mut text = ::hex::encode(&ciphertext);
        text.push('\n');
        output.write_all(text.as_bytes())?;
    } else {
        output.write_all(&ciphertext)?;
    }
    output.commit()?;
    Ok(0)
}

fn decrypt(key_path: &Path, hex: bool, file: Option<&Path>, out: &OutputArgs) -> CliResult<u8> {
    let key = load_private_key(key_path)?;
    if !matches!(key, PrivateKey::Rsa(_)) {
        return Err(wrong_key_type(key_path, &key.kind().to_string()));
    }
    // Plaintext is secret: 0600 if it goes to a file, and held back from standard output
    // until decryption has succeeded.
    let mut output = Output::prepare(out, Mode::Secret, true)?;
    let input = io::open_input(file)?;
    let name = input.name.clone();
    let raw = io::read_limited(input, CIPHERTEXT_LIMIT, "RSA-OAEP ciphertext")?;
    let ciphertext = if hex {
        let text = std::str::from_utf8(&raw)
            .map_err(|_| CliError::usage(format!("{name}: not hex text (--hex)")))?;
        ::hex::decode(text.trim()).map_err(|_| {
            CliError::usage(format!(
                "{name}: not valid hex (--hex expects hex digits only)"
            ))
        })?
    } else {
        raw
    };
    let plaintext = rsa_oaep::decrypt(&key, &ciphertext, None).map_err(|e| match e {
        OaepError::Decryption => CliError::check(format!(
            "{name}: RSA-OAEP decryption failed: the ciphertext is corrupt or not for {}",
            key_path.display()
        )),
        other => CliError::usage(format!("{}: {other}", key_path.display())),
    })?;
    output.write_all(&plaintext)?;
    output.commit()?;
    Ok(0)
}

fn wrong_key_type(path: &Path, kind: &str) -> CliError {
    CliError::usage(format!(
        "{}: wrong key type: RSA-OAEP needs an RSA key, not {kind}",
        path.display()
    ))
}

/// A plaintext buffer wiped when dropped (best effort, see `load_private_key`).
struct Wiped(Vec<u8>);

impl Drop for Wiped {
    fn drop(&mut self) {
        self.0.fill(0);
        std::hint::black_box(&self.0);
    }
}

fn zeroize_on_drop(v: Vec<u8>) -> Wiped {
    Wiped(v)
}
