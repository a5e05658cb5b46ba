//! `palisade keygen rsa|p256|ed25519` (to be written).
use crate::cli::KeygenCommand;
use crate::error::{CliError, CliResult};
pub fn run(_cmd: KeygenCommand) -> CliResult<u8> { Err(CliError::usage("not yet")) }
