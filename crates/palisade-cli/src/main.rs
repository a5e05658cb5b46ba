//! # palisade (the binary)
//!
//! Argument parsing (`cli`), file and terminal plumbing (`io`), and one module per command
//! under `commands/`. There is no cryptography here: every primitive and format lives in
//! `palisade-crypto`, so the library can be tested and fuzzed without a process around it.
//!
//! Errors are values of [`error::CliError`] that carry the exit code the contract asks for
//! (0 success, 1 a check failed, 2 usage or input error). `main` returns normally rather than
//! calling `process::exit`, so destructors run and uncommitted temporary outputs are deleted.

mod cli;
mod commands;
mod error;
mod io;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match commands::run(cli.global, cli.command) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("palisade: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}
