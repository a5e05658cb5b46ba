//! `palisade random` and `palisade passphrase` (to be written).
use crate::cli::{PassphraseArgs, RandomArgs};
use crate::error::{CliError, CliResult};
pub fn run_random(_args: &RandomArgs) -> CliResult<u8> { Err(CliError::usage("not yet")) }
pub fn run_passphrase(_args: &PassphraseArgs) -> CliResult<u8> { Err(CliError::usage("not yet")) }
