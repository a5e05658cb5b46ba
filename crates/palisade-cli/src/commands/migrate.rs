//! `palisade migrate`: opening the database applies pending migrations (see
//! [`super::admin::Admin::open`]), so this command only has to report it.

use crate::cli::GlobalOpts;
use crate::error::CliResult;
use crate::io::print_stdout;

use super::admin::Admin;

pub fn run(global: GlobalOpts) -> CliResult<u8> {
    let admin = Admin::open(global)?;
    admin.close();
    print_stdout(b"migrations applied\n")?;
    Ok(0)
}
