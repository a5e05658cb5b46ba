//! `palisade keygen rsa|p256|ed25519`: a new key pair, the private key as PKCS#8 PEM (mode
//! 0600), the public key as SubjectPublicKeyInfo PEM in `--public-out` or on standard output.
//! Also the key-file loaders that `rsa`, `sign` and `verify` share, so every command words
//! key errors the same way.

use std::path::Path;

use palisade_crypto::keys::{KeyError, PrivateKey, PublicKey, RsaBits as CryptoRsaBits};

use crate::cli::{KeyPairOut, KeygenCommand, RsaBits};
use crate::error::{CliError, CliResult};
use crate::io::{self, Mode, Output};

pub fn run(cmd: KeygenCommand) -> CliResult<u8> {
    let (kind, out) = match cmd {
        KeygenCommand::Rsa { bits, out } => (Kind::Rsa(bits), out),
        KeygenCommand::P256 { out } => (Kind::P256, out),
        KeygenCommand::Ed25519 { out } => (Kind::Ed25519, out),
        // Routed to `age::keygen` by `commands::run`; kept total rather than panicking.
        KeygenCommand::Age { .. } => {
            return Err(CliError::usage("keygen age is handled by the age module"));
        }
    };
    write_key_pair(kind, &out)
}

enum Kind {
    Rsa(RsaBits),
    P256,
    Ed25519,
}

fn write_key_pair(kind: Kind, out: &KeyPairOut) -> CliResult<u8> {
    let private_path = out.output.as_path();
    if io::is_stdin(Some(private_path)) {
        return Err(CliError::usage(
            "-o -: the private key must go to a file, not standard output",
        ));
    }
    let public_path = out.public_out.as_deref().filter(|p| !io::is_stdin(Some(p)));
    if public_path == Some(private_path) {
        return Err(CliError::usage(format!(
            "{}: --public-out must differ from -o",
            private_path.display()
        )));
    }
    // Both destinations are checked (and their temporary files created) before the key is
    // generated, so a refusal leaves neither file behind.
    let mut private_out = Output::to_file(private_path, out.force, Mode::Secret)?;
    let mut public_out = match public_path {
        Some(p) => Some(Output::to_file(p, out.force, Mode::Public)?),
        None => None,
    };

    let key = match kind {
        Kind::Rsa(bits) => PrivateKey::generate_rsa(match bits {
            RsaBits::B2048 => CryptoRsaBits::B2048,
            RsaBits::B3072 => CryptoRsaBits::B3072,
            RsaBits::B4096 => CryptoRsaBits::B4096,
        }),
        Kind::P256 => PrivateKey::generate_p256(),
        Kind::Ed25519 => PrivateKey::generate_ed25519(),
    }
    .map_err(|e| CliError::usage(format!("{}: {e}", private_path.display())))?;
    let private_pem = key
        .to_pkcs8_pem()
        .map_err(|e| CliError::usage(format!("{}: {e}", private_path.display())))?;
    let public_pem = key
        .public_key()
        .and_then(|k| k.to_pem())
        .map_err(|e| CliError::usage(format!("{}: {e}", private_path.display())))?;

    private_out.write_all(private_pem.as_bytes())?;
    if let Some(p) = public_out.as_mut() {
        p.write_all(public_pem.as_bytes())?;
    }
    // The public file first: if the private commit then fails, take the public file back so
    // that no half pair is left.
    if let (Some(p), Some(path)) = (public_out, public_path) {
        let existed = std::fs::symlink_metadata(path).is_ok();
        p.commit()?;
        if let Err(e) = private_out.commit() {
            if !existed {
                let _ = std::fs::remove_file(path);
            }
            return Err(e);
        }
    } else {
        private_out.commit()?;
        io::print_stdout(public_pem.as_bytes())?;
    }
    Ok(0)
}

/// The one-line message for a key that cannot be used: the file, then the reason.
pub(super) fn key_error(path: &Path, err: &KeyError) -> CliError {
    CliError::usage(format!("{}: {err}", path.display()))
}

/// Reads and parses a private key file (exit 2 on any problem, naming the file).
pub(super) fn load_private_key(path: &Path) -> CliResult<PrivateKey> {
    let mut pem = io::read_small_file(path)?;
    let key = PrivateKey::from_pem(&pem).map_err(|e| key_error(path, &e));
    // Best-effort wipe of the key text (the parsed key zeroes its own copy); `black_box`
    // keeps the compiler from dropping the writes as dead stores.
    pem.fill(0);
    std::hint::black_box(&pem);
    key
}

/// Reads and parses a public key file (exit 2 on any problem, naming the file).
pub(super) fn load_public_key(path: &Path) -> CliResult<PublicKey> {
    let pem = io::read_small_file(path)?;
    PublicKey::from_pem(&pem).map_err(|e| key_error(path, &e))
}
