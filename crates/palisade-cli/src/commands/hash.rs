//! `palisade hash` (to be written).
use crate::cli::HashArgs;
use crate::error::{CliError, CliResult};
pub fn run(_args: &HashArgs) -> CliResult<u8> { Err(CliError::usage("not yet")) }
