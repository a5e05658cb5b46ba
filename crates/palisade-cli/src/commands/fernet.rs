//! `palisade fernet` (to be written).
use crate::cli::FernetCommand;
use crate::error::{CliError, CliResult};
pub fn run(_cmd: FernetCommand) -> CliResult<u8> { Err(CliError::usage("not yet")) }
