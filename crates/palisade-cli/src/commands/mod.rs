//! Command bodies. Each returns the exit code on success paths that are verdicts (0 or 1 for
//! `--check`/`--verify`) or a [`CliError`] that carries its own code.

mod admin;
mod age;
mod audit;
mod authz;
mod drop;
mod fernet;
mod hash;
mod import;
mod keygen;
mod keys;
mod mac;
mod migrate;
mod random;
mod rsa;
mod serve;
mod session;
mod sign;
mod user;

use crate::cli::{Command, GlobalOpts, KeygenCommand};
use crate::error::CliResult;

/// Runs one command; `Ok(code)` is the process exit code. `global` holds the server and
/// administration options; the crypto toolkit ignores them (it never needs a data directory).
pub fn run(global: GlobalOpts, command: Command) -> CliResult<u8> {
    match command {
        Command::Hash(args) => hash::run(&args),
        Command::Mac(args) => mac::run(&args),
        Command::Random(args) => random::run_random(&args),
        Command::Passphrase(args) => random::run_passphrase(&args),
        Command::Fernet(cmd) => fernet::run(cmd),
        Command::Keygen(KeygenCommand::Age {
            output,
            public_out,
            force,
        }) => age::keygen(&output, public_out.as_deref(), force),
        Command::Keygen(cmd) => keygen::run(cmd),
        Command::Encrypt(args) => age::encrypt(&args),
        Command::Decrypt(args) => age::decrypt(&args),
        Command::Rsa(cmd) => rsa::run(cmd),
        Command::Sign(args) => sign::sign(&args),
        Command::Verify(args) => sign::verify(&args),
        Command::Serve(args) => serve::run(global, args),
        Command::Migrate => migrate::run(global),
        Command::User(cmd) => user::run(global, cmd),
        Command::Group(cmd) => authz::run_group(global, cmd),
        Command::Perm(cmd) => authz::run_perm(global, cmd),
        Command::Session(cmd) => session::run(global, cmd),
        Command::Audit(cmd) => audit::run(global, cmd),
        Command::Keys(cmd) => keys::run(global, cmd),
        Command::Drop(cmd) => drop::run(global, cmd),
        Command::Import(cmd) => import::run(global, cmd),
    }
}
