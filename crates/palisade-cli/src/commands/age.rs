//! `palisade keygen age`, `encrypt`, `decrypt` (to be written).
use std::path::Path;
use crate::cli::{DecryptArgs, EncryptArgs};
use crate::error::{CliError, CliResult};
pub fn keygen(_output: &Path, _public_out: Option<&Path>, _force: bool) -> CliResult<u8> { Err(CliError::usage("not yet")) }
pub fn encrypt(_args: &EncryptArgs) -> CliResult<u8> { Err(CliError::usage("not yet")) }
pub fn decrypt(_args: &DecryptArgs) -> CliResult<u8> { Err(CliError::usage("not yet")) }
