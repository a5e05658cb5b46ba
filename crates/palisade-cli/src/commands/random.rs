//! `palisade random` (CSPRNG bytes as base64url, hex or raw, streamed for large counts) and
//! `palisade passphrase` (diceware words from the EFF large list).

use std::io::{self as stdio, Write};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use palisade_crypto::random;

use crate::cli::{PassphraseArgs, RandomArgs};
use crate::error::{CliError, CliResult};
use crate::io::{self, Output};

/// Bytes drawn per step: a multiple of 3 so base64 chunks concatenate without padding
/// in the middle.
const STEP: usize = 3 * 16 * 1024;

#[derive(Clone, Copy)]
enum Encoding {
    Urlsafe,
    Hex,
    Raw,
}

pub fn run_random(args: &RandomArgs) -> CliResult<u8> {
    let encoding = if args.hex {
        Encoding::Hex
    } else if args.raw {
        Encoding::Raw
    } else {
        Encoding::Urlsafe
    };
    let mut out = Output::to_stdout(false)?;
    match write_random(&mut out, args.bytes, encoding) {
        Ok(()) => out.commit().map(|()| 0),
        // `palisade random -n 1G --raw | head -c 16` is a normal way to use this.
        Err(Failure::Io(e)) if e.kind() == stdio::ErrorKind::BrokenPipe => Ok(0),
        Err(Failure::Io(e)) => Err(CliError::io_named(out.name(), &e)),
        Err(Failure::Rng(e)) => Err(CliError::usage(e.to_string())),
    }
}

enum Failure {
    Rng(random::RandomError),
    Io(stdio::Error),
}

impl From<stdio::Error> for Failure {
    fn from(e: stdio::Error) -> Self {
        Failure::Io(e)
    }
}

fn write_random(out: &mut Output, n: usize, encoding: Encoding) -> Result<(), Failure> {
    let mut buf = vec![0u8; STEP.min(n)];
    let mut left = n;
    let mut text = String::new();
    while left > 0 {
        let take = left.min(STEP);
        let Some(chunk) = buf.get_mut(..take) else {
            break;
        };
        random::fill(chunk).map_err(Failure::Rng)?;
        match encoding {
            Encoding::Raw => Write::write_all(out, chunk)?,
            Encoding::Hex => {
                text.clear();
                text.push_str(&hex::encode(&*chunk));
                Write::write_all(out, text.as_bytes())?;
            }
            Encoding::Urlsafe => {
                text.clear();
                URL_SAFE_NO_PAD.encode_string(&*chunk, &mut text);
                Write::write_all(out, text.as_bytes())?;
            }
        }
        left -= take;
    }
    buf.fill(0);
    if !matches!(encoding, Encoding::Raw) {
        Write::write_all(out, b"\n")?;
    }
    Ok(out.flush()?)
}

pub fn run_passphrase(args: &PassphraseArgs) -> CliResult<u8> {
    if args.words == 0 {
        return Err(CliError::usage(
            "--words 0: a passphrase needs at least one word",
        ));
    }
    let p = random::passphrase(args.words, &args.separator)
        .map_err(|e| CliError::usage(e.to_string()))?;
    // Two writes rather than a copy of the secret with a newline appended.
    io::print_stdout(p.phrase.as_bytes())?;
    io::print_stdout(b"\n")?;
    eprintln!(
        "palisade: passphrase entropy: {:.1} bits ({} words from a list of {})",
        p.entropy_bits,
        p.words,
        random::eff_large_wordlist().len()
    );
    Ok(0)
}
