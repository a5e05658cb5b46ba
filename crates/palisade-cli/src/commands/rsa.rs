//! `palisade rsa encrypt|decrypt` (to be written).
use crate::cli::RsaCommand;
use crate::error::{CliError, CliResult};
pub fn run(_cmd: RsaCommand) -> CliResult<u8> { Err(CliError::usage("not yet")) }
