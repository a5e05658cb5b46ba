//! `palisade mac` (to be written).
use crate::cli::MacArgs;
use crate::error::{CliError, CliResult};
pub fn run(_args: &MacArgs) -> CliResult<u8> { Err(CliError::usage("not yet")) }
