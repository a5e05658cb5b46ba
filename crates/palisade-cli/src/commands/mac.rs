//! `palisade mac`: a keyed hash of a file as lowercase hex, or a constant-time check of an
//! expected value with `--verify` (verdict on stdout, exit 0 or 1).

use palisade_crypto::mac::{Mac, MacAlgorithm, MacError};

use crate::cli::{MacAlgo, MacArgs};
use crate::error::{CliError, CliResult};
use crate::io;

fn algorithm(a: MacAlgo) -> MacAlgorithm {
    match a {
        MacAlgo::HmacSha256 => MacAlgorithm::HmacSha256,
        MacAlgo::HmacSha512 => MacAlgorithm::HmacSha512,
        MacAlgo::Blake2b => MacAlgorithm::Blake2b,
    }
}

pub fn run(args: &MacArgs) -> CliResult<u8> {
    let algo = algorithm(args.algorithm);
    // Parse everything the user typed before reading a possibly huge input.
    let expected = match &args.verify {
        Some(h) => Some(
            hex::decode(h.trim())
                .map_err(|_| CliError::usage(format!("--verify {h:?}: not a hexadecimal MAC")))?,
        ),
        None => None,
    };
    let mut key = io::read_small_file(&args.key_file)?;
    let key_name = args.key_file.display();
    let mac = Mac::new(algo, &key).map_err(|e| match e {
        MacError::KeyTooLong(n) => CliError::usage(format!(
            "{key_name}: the key is {n} bytes; a {algo} key is at most {} bytes",
            palisade_crypto::mac::BLAKE2B_MAX_KEY
        )),
        other => CliError::usage(format!("{key_name}: {other}")),
    });
    // The MAC state holds its own copy of the key; don't leave ours lying in freed memory.
    key.fill(0);
    std::hint::black_box(&key);
    let mut mac = mac?;

    let input = io::with_progress(io::open_input(args.file.as_deref())?);
    mac.update_reader(input.reader)
        .map_err(|e| CliError::io_named(&input.name, &e))?;

    match expected {
        None => {
            let mut line = hex::encode(mac.finalize());
            line.push('\n');
            io::print_stdout(line.as_bytes())?;
            Ok(0)
        }
        Some(expected) => {
            if mac.verify(&expected) {
                io::print_stdout(b"OK\n")?;
                Ok(0)
            } else {
                io::print_stdout(b"FAILED\n")?;
                Err(CliError::check(format!(
                    "{}: {algo} MAC does not match the --verify value",
                    input.name
                )))
            }
        }
    }
}
