//! `palisade sign` and `palisade verify`: the scheme follows the key type (RSA-PSS SHA-256
//! salt 32, ECDSA P-256 SHA-256, Ed25519). Ed25519 signs the message itself, not a hash, so
//! the whole message is read into memory for every scheme, up to [`MESSAGE_LIMIT`] (stated
//! in `--help`; more is exit 2). `verify` prints `OK` (exit 0) or `FAILED` (exit 1, plus one
//! line on standard error); a signature of the wrong length or encoding is `FAILED`, not an
//! input error.

use std::path::Path;

use palisade_crypto::keys::KeyKind;
use palisade_crypto::signature::{self, SignatureError, SignatureFormat};

use super::keygen::{load_private_key, load_public_key};
use crate::cli::{SigFormat, SignArgs, VerifyArgs};
use crate::error::{CliError, CliResult};
use crate::io::{self, Input, Mode, Output};

/// Largest message signed or verified (256 MiB), as documented in `--help`.
pub const MESSAGE_LIMIT: u64 = 256 * 1024 * 1024;

/// Largest signature file read. Real ones are at most 1 KiB (RSA-8192); anything far larger
/// is a mistake rather than a signature.
const SIGNATURE_FILE_LIMIT: u64 = 64 * 1024;

fn format_of(f: SigFormat) -> SignatureFormat {
    match f {
        SigFormat::Der => SignatureFormat::Der,
        SigFormat::P1363 => SignatureFormat::P1363,
    }
}

/// `--format p1363` with a key that has a single encoding is a usage error, reported before
/// any input is read.
fn check_format(format: SignatureFormat, kind: KeyKind, key_path: &Path) -> CliResult<()> {
    if format == SignatureFormat::P1363 && kind != KeyKind::P256 {
        return Err(CliError::usage(format!(
            "{}: --format p1363 applies only to ECDSA keys, and this is an {kind} key",
            key_path.display()
        )));
    }
    Ok(())
}

fn signature_error(key_path: &Path, err: &SignatureError) -> CliError {
    CliError::usage(format!("{}: {err}", key_path.display()))
}

pub fn sign(args: &SignArgs) -> CliResult<u8> {
    let key = load_private_key(&args.private_key)?;
    let format = format_of(args.format);
    check_format(format, key.kind(), &args.private_key)?;
    let mut output = Output::prepare(&args.out, Mode::Public, false)?;
    let message = read_message(args.file.as_deref())?;
    let sig = signature::sign(&key, &message, format)
        .map_err(|e| signature_error(&args.private_key, &e))?;
    output.write_all(&sig)?;
    output.commit()?;
    Ok(0)
}

pub fn verify(args: &VerifyArgs) -> CliResult<u8> {
    let key = load_public_key(&args.public_key)?;
    let format = format_of(args.format);
    check_format(format, key.kind(), &args.public_key)?;
    let sig_file = io::open_file(&args.signature)?;
    let sig = io::read_limited(
        Input {
            name: args.signature.display().to_string(),
            reader: Box::new(sig_file),
            len: None,
        },
        SIGNATURE_FILE_LIMIT,
        "signature file",
    )?;
    let name = io::display_name(args.file.as_deref());
    let message = read_message(args.file.as_deref())?;
    let ok = signature::verify(&key, &message, &sig, format)
        .map_err(|e| signature_error(&args.public_key, &e))?;
    if ok {
        io::print_stdout(b"OK\n")?;
        Ok(0)
    } else {
        io::print_stdout(b"FAILED\n")?;
        Err(CliError::check(format!(
            "{name}: {kind} signature {} does not verify with {}",
            args.signature.display(),
            args.public_key.display(),
            kind = key.kind(),
        )))
    }
}

fn read_message(file: Option<&Path>) -> CliResult<Vec<u8>> {
    let input = io::with_progress(io::open_input(file)?);
    io::read_limited(input, MESSAGE_LIMIT, "signed message")
}
