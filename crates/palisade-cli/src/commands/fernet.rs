//! `palisade fernet keygen | encrypt | decrypt | rotate`: Fernet tokens as Python's
//! `cryptography.fernet` makes them. Tokens are written as one line (token, newline) and read
//! back with surrounding whitespace ignored. Fernet is a whole-message format, so inputs are
//! read into memory up to the limits in `palisade_crypto::fernet` (256 MiB of plaintext,
//! 342 MiB of token), and nothing is written anywhere until the token has authenticated.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use palisade_crypto::fernet::{self, FernetError, Key};

use crate::cli::{FernetCommand, OutputArgs};
use crate::error::{CliError, CliResult};
use crate::io::{self, Mode, Output};

pub fn run(cmd: FernetCommand) -> CliResult<u8> {
    match cmd {
        FernetCommand::Keygen { out } => keygen(&out),
        FernetCommand::Encrypt {
            key_file,
            file,
            out,
        } => encrypt(&key_file, file.as_deref(), &out),
        FernetCommand::Decrypt {
            key_files,
            ttl,
            file,
            out,
        } => decrypt(&key_files, ttl, file.as_deref(), &out),
        FernetCommand::Rotate {
            key_files,
            file,
            out,
        } => rotate(&key_files, file.as_deref(), &out),
    }
}

fn keygen(out: &OutputArgs) -> CliResult<u8> {
    let key = Key::generate().map_err(|e| CliError::usage(format!("fernet keygen: {e}")))?;
    let mut line = key.to_base64();
    line.push('\n');
    match out.output.as_deref() {
        Some(p) if !io::is_stdin(Some(p)) => {
            io::write_file_atomic(p, line.as_bytes(), out.force, Mode::Secret)?;
        }
        _ => io::print_stdout(line.as_bytes())?,
    }
    Ok(0)
}

fn encrypt(key_file: &Path, file: Option<&Path>, out: &OutputArgs) -> CliResult<u8> {
    let key = read_key(key_file)?;
    let mut output = Output::prepare(out, Mode::Public, false)?;
    let (name, plaintext) = read_input(file, fernet::MAX_PLAINTEXT_LEN, "Fernet plaintext")?;
    let token = fernet::encrypt(&key, &plaintext, now_unix()).map_err(|e| fail(&name, e))?;
    output.write_all(token.as_bytes())?;
    output.write_all(b"\n")?;
    output.commit()?;
    Ok(0)
}

fn decrypt(
    key_files: &[PathBuf],
    ttl: Option<u64>,
    file: Option<&Path>,
    out: &OutputArgs,
) -> CliResult<u8> {
    let keys = read_keys(key_files)?;
    // No spooling of standard output: the whole token is authenticated and decrypted in
    // memory before the first byte is written, so spooling would only add a disk copy.
    let mut output = Output::prepare(out, Mode::Secret, false)?;
    let (name, token) = read_input(file, fernet::MAX_TOKEN_LEN, "Fernet token")?;
    let plaintext = fernet::decrypt(&keys, &token, ttl, now_unix()).map_err(|e| fail(&name, e))?;
    output.write_all(&plaintext)?;
    output.commit()?;
    Ok(0)
}

fn rotate(key_files: &[PathBuf], file: Option<&Path>, out: &OutputArgs) -> CliResult<u8> {
    let keys = read_keys(key_files)?;
    let mut output = Output::prepare(out, Mode::Public, false)?;
    let (name, token) = read_input(file, fernet::MAX_TOKEN_LEN, "Fernet token")?;
    let rotated = fernet::rotate(&keys, &token).map_err(|e| fail(&name, e))?;
    output.write_all(rotated.as_bytes())?;
    output.write_all(b"\n")?;
    output.commit()?;
    Ok(0)
}

/// Maps a library verdict to the contract: a token that fails its checks is exit 1, an input
/// over the limit (or an internal failure) exit 2, always naming the input.
fn fail(name: &str, err: FernetError) -> CliError {
    match err {
        FernetError::InvalidToken | FernetError::Expired | FernetError::FromFuture => {
            CliError::check(format!("{name}: {err}"))
        }
        FernetError::TooLarge { .. } | FernetError::NoKeys | FernetError::Backend => {
            CliError::usage(format!("{name}: {err}"))
        }
    }
}

fn read_keys(paths: &[PathBuf]) -> CliResult<Vec<Key>> {
    if paths.is_empty() {
        return Err(CliError::usage(
            "fernet: at least one --key-file is required",
        ));
    }
    paths.iter().map(|p| read_key(p)).collect()
}

fn read_key(path: &Path) -> CliResult<Key> {
    let text = io::read_small_file(path)?;
    Key::from_base64(&text)
        .map_err(|e| CliError::usage(format!("{}: malformed Fernet key: {e}", path.display())))
}

/// Reads the whole input, refusing an over-limit regular file from its size before reading
/// any of it (and any other input as soon as it passes the limit).
fn read_input(file: Option<&Path>, limit: usize, what: &str) -> CliResult<(String, Vec<u8>)> {
    let input = io::open_input(file)?;
    let limit = limit as u64;
    if input.len.is_some_and(|len| len > limit) {
        return Err(CliError::usage(format!(
            "{}: input is larger than the {what} limit of {limit} bytes",
            input.name
        )));
    }
    let name = input.name.clone();
    let data = io::read_limited(io::with_progress(input), limit, what)?;
    Ok((name, data))
}

/// Seconds since the Unix epoch; a clock before 1970 counts as the epoch itself.
fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
