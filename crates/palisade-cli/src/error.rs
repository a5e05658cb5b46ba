//! The command line's one error type. Every failure carries the exit code the spec asks for
//! (1: a check failed; 2: usage or input error) and one line for standard error that names
//! the file and the reason.

use std::fmt;
use std::io;
use std::path::Path;

/// What kind of failure, which decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A check failed: bad MAC or signature, a token or file that does not authenticate,
    /// a hash mismatch. Exit code 1.
    Check,
    /// Usage or input error: unreadable file, malformed key, wrong key type, over a limit.
    /// Exit code 2.
    Usage,
}

#[derive(Debug)]
pub struct CliError {
    pub kind: Kind,
    pub message: String,
}

pub type CliResult<T> = Result<T, CliError>;

impl CliError {
    /// A failed check (exit 1).
    pub fn check(message: impl Into<String>) -> Self {
        Self {
            kind: Kind::Check,
            message: message.into(),
        }
    }

    /// A usage or input error (exit 2).
    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            kind: Kind::Usage,
            message: message.into(),
        }
    }

    /// An I/O error on `path`, worded the way coreutils word it.
    pub fn io(path: &Path, err: &io::Error) -> Self {
        Self::usage(format!("{}: {}", path.display(), describe_io(err)))
    }

    /// An I/O error on a named stream or file (`-` for stdin).
    pub fn io_named(name: &str, err: &io::Error) -> Self {
        Self::usage(format!("{name}: {}", describe_io(err)))
    }

    pub fn exit_code(&self) -> u8 {
        match self.kind {
            Kind::Check => 1,
            Kind::Usage => 2,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// A short, stable description of an I/O error without the "(os error N)" noise.
pub fn describe_io(err: &io::Error) -> String {
    match err.kind() {
        io::ErrorKind::NotFound => "No such file or directory".to_owned(),
        io::ErrorKind::PermissionDenied => "Permission denied".to_owned(),
        io::ErrorKind::IsADirectory => "Is a directory".to_owned(),
        io::ErrorKind::AlreadyExists => "already exists (use --force to overwrite)".to_owned(),
        _ => {
            let text = err.to_string();
            match text.find(" (os error") {
                Some(cut) => text.get(..cut).unwrap_or(&text).to_owned(),
                None => text,
            }
        }
    }
}
