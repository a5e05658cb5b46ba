//! `palisade sign` and `palisade verify` (to be written).
use crate::cli::{SignArgs, VerifyArgs};
use crate::error::{CliError, CliResult};
pub fn sign(_args: &SignArgs) -> CliResult<u8> { Err(CliError::usage("not yet")) }
pub fn verify(_args: &VerifyArgs) -> CliResult<u8> { Err(CliError::usage("not yet")) }
