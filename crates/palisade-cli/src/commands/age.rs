//! `palisade keygen age`, `encrypt` and `decrypt`: the age v1 format through
//! `palisade_crypto::agefile`, with the contract's file handling around it (atomic `-o`,
//! plaintext released only after the last chunk authenticated, exit codes 1 and 2).

use std::io::IsTerminal;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use palisade_crypto::agefile::{
    self, AgeError, DecryptWith, EncryptTo, Identity, Passphrase, Recipient,
};

use crate::cli::{DecryptArgs, EncryptArgs};
use crate::error::{CliError, CliResult};
use crate::io::{
    Mode, Output, check_writable_destination, is_stdin, open_input, print_stdout, read_small_file,
    with_progress, write_file_atomic,
};

/// Where the passphrase comes from when the terminal cannot be used (scripts, tests).
const PASSPHRASE_ENV: &str = "PALISADE_PASSPHRASE";

/// `palisade keygen age -o IDENTITY [--public-out RECIPIENT]`.
pub fn keygen(output: &Path, public_out: Option<&Path>, force: bool) -> CliResult<u8> {
    if is_stdin(Some(output)) {
        return Err(CliError::usage(
            "-o -: refusing to write a secret key to standard output; give a file name",
        ));
    }
    // Check both destinations before writing either, so a refusal leaves nothing behind.
    check_writable_destination(output, force)?;
    if let Some(public) = public_out {
        if public == output {
            return Err(CliError::usage(format!(
                "{}: the identity and the recipient cannot go to the same file",
                output.display()
            )));
        }
        check_writable_destination(public, force)?;
    }

    let identity = Identity::generate();
    // A clock before 1970 only affects the comment line; 0 keeps it well-formed.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let file = identity.to_identity_file(now);
    write_file_atomic(output, file.as_bytes(), force, Mode::Secret)?;

    let recipient_line = format!("{}\n", identity.recipient());
    match public_out {
        Some(public) => write_file_atomic(public, recipient_line.as_bytes(), force, Mode::Public)?,
        None => print_stdout(recipient_line.as_bytes())?,
    }
    Ok(0)
}

/// `palisade encrypt (-r RECIPIENT | -R FILE | --passphrase) [FILE] [-o OUT]`.
pub fn encrypt(args: &EncryptArgs) -> CliResult<u8> {
    let recipients = if args.passphrase {
        Vec::new()
    } else {
        collect_recipients(args)?
    };
    let input = open_input(args.file.as_deref())?;
    let name = input.name.clone();

    if args.out.output.as_deref().is_none_or(|p| is_stdin(Some(p)))
        && std::io::stdout().is_terminal()
    {
        return Err(CliError::usage(format!(
            "{name}: refusing to write binary age output to a terminal; use -o OUT or a pipe"
        )));
    }
    let mut output = Output::prepare(&args.out, Mode::Public, false)?;

    let passphrase = if args.passphrase {
        Some(read_passphrase(&name, true)?)
    } else {
        None
    };
    let to = match &passphrase {
        Some(passphrase) => EncryptTo::Passphrase {
            passphrase,
            work_factor: None,
        },
        None => EncryptTo::Recipients(&recipients),
    };

    let input = with_progress(input);
    let output_name = output.name().to_owned();
    agefile::encrypt(to, input.reader, &mut output)
        .map_err(|e| stream_error(e, &name, &output_name))?;
    output.commit()?;
    Ok(0)
}

/// `palisade decrypt (-i IDENTITY | --passphrase) [FILE] [-o OUT]`.
pub fn decrypt(args: &DecryptArgs) -> CliResult<u8> {
    let mut identities = Vec::new();
    for path in &args.identities {
        identities.extend(load_identities(path)?);
    }
    let input = open_input(args.file.as_deref())?;
    let name = input.name.clone();
    // Plaintext is a secret until proven otherwise; standard output is spooled so that
    // nothing reaches it before the whole file authenticated.
    let mut output = Output::prepare(&args.out, Mode::Secret, true)?;

    let passphrase = if args.passphrase {
        Some(read_passphrase(&name, false)?)
    } else {
        None
    };
    let with = match &passphrase {
        Some(passphrase) => DecryptWith::Passphrase(passphrase),
        None => DecryptWith::Identities(&identities),
    };

    let input = with_progress(input);
    // On any error `output` is dropped uncommitted, which deletes its temporary file.
    let output_name = output.name().to_owned();
    agefile::decrypt(with, input.reader, &mut output)
        .map_err(|e| stream_error(e, &name, &output_name))?;
    output.commit()?;
    Ok(0)
}

/// The recipients from `-r` strings and `-R` files, in order.
fn collect_recipients(args: &EncryptArgs) -> CliResult<Vec<Recipient>> {
    let mut recipients = Vec::new();
    for text in &args.recipients {
        let recipient = text
            .parse::<Recipient>()
            .map_err(|e| CliError::usage(format!("-r: {e}")))?;
        recipients.push(recipient);
    }
    for path in &args.recipients_files {
        let bytes = read_small_file(path)?;
        let text = std::str::from_utf8(&bytes).map_err(|_| {
            CliError::usage(format!(
                "{}: not a recipients file (not UTF-8 text)",
                path.display()
            ))
        })?;
        let parsed = agefile::parse_recipients_file(text).map_err(|e| {
            CliError::usage(format!(
                "{}: malformed recipients file: {e}",
                path.display()
            ))
        })?;
        recipients.extend(parsed);
    }
    if recipients.is_empty() {
        return Err(CliError::usage(
            "no recipients: give -r RECIPIENT, -R FILE or --passphrase",
        ));
    }
    Ok(recipients)
}

fn load_identities(path: &Path) -> CliResult<Vec<Identity>> {
    let bytes = read_small_file(path)?;
    let text = std::str::from_utf8(&bytes).map_err(|_| {
        CliError::usage(format!(
            "{}: malformed identity file (not UTF-8 text)",
            path.display()
        ))
    })?;
    agefile::parse_identity_file(text)
        .map_err(|e| CliError::usage(format!("{}: {e}", path.display())))
}

/// The passphrase from `PALISADE_PASSPHRASE`, else from the terminal (twice when
/// `confirm`). Without either there is no one to ask: a usage error rather than a hang.
fn read_passphrase(input_name: &str, confirm: bool) -> CliResult<Passphrase> {
    if let Some(value) = std::env::var_os(PASSPHRASE_ENV) {
        let value = value.into_string().map_err(|_| {
            CliError::usage(format!("{input_name}: {PASSPHRASE_ENV} is not valid UTF-8"))
        })?;
        return Passphrase::new(value)
            .map_err(|e| CliError::usage(format!("{input_name}: {PASSPHRASE_ENV}: {e}")));
    }
    // rpassword talks to /dev/tty, which may exist even when every standard stream is a
    // pipe; only prompt when a person is plausibly there to answer.
    if !std::io::stdin().is_terminal() && !std::io::stderr().is_terminal() {
        return Err(CliError::usage(format!(
            "{input_name}: --passphrase needs a terminal to read it from, or {PASSPHRASE_ENV}"
        )));
    }
    let first = prompt("Enter passphrase: ", input_name)?;
    if confirm {
        let second = prompt("Confirm passphrase: ", input_name)?;
        if !first.matches(&second) {
            return Err(CliError::usage(format!(
                "{input_name}: the passphrases do not match"
            )));
        }
    }
    Ok(first)
}

fn prompt(text: &str, input_name: &str) -> CliResult<Passphrase> {
    let typed = rpassword::prompt_password(text).map_err(|e| {
        CliError::usage(format!(
            "{input_name}: cannot read the passphrase from the terminal: {}",
            crate::error::describe_io(&e)
        ))
    })?;
    Passphrase::new(typed).map_err(|e| CliError::usage(format!("{input_name}: {e}")))
}

/// Maps a streaming error to the contract: input errors exit 2, a file that cannot be
/// opened exits 1, and I/O errors name the side (input or output) that failed.
fn stream_error(err: AgeError, input_name: &str, output_name: &str) -> CliError {
    match err {
        AgeError::Read(e) => CliError::io_named(input_name, &e),
        AgeError::Write(e) => CliError::io_named(output_name, &e),
        // The header says how the file was encrypted: pointing at the right option is no
        // oracle, and saves the user a guess.
        AgeError::PassphraseEncrypted => CliError::check(format!(
            "{input_name}: {} (decrypt it with --passphrase)",
            AgeError::PassphraseEncrypted
        )),
        AgeError::NotPassphraseEncrypted => CliError::check(format!(
            "{input_name}: {} (decrypt it with -i IDENTITY)",
            AgeError::NotPassphraseEncrypted
        )),
        e if e.is_input_error() => CliError::usage(format!("{input_name}: {e}")),
        e => CliError::check(format!("{input_name}: {e}")),
    }
}
