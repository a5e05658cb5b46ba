//! File and stream plumbing shared by every command: inputs (`FILE`, `-` or stdin), outputs
//! written atomically (temporary file in the same folder, fsync, rename, only on success),
//! secret files with mode 0600, size limits for whole-message formats, and the progress bar.

use std::fs::{self, File};
use std::io::{self, BufWriter, IsTerminal, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

use crate::cli::OutputArgs;
use crate::error::{CliError, CliResult};

/// Buffer size for streaming copies: large enough to amortise syscalls, small enough that
/// memory stays constant.
pub const CHUNK: usize = 256 * 1024;

/// Largest key or identity file we read (keys are a few KiB; this only stops a mistaken
/// multi-gigabyte "key" from being slurped).
pub const KEY_FILE_LIMIT: u64 = 1024 * 1024;

/// `None` and `-` both mean standard input.
pub fn is_stdin(path: Option<&Path>) -> bool {
    path.is_none_or(|p| p.as_os_str() == "-")
}

/// The name used in messages and in `hash` output: the path as given, or `-` for stdin.
pub fn display_name(path: Option<&Path>) -> String {
    match path {
        Some(p) if !is_stdin(Some(p)) => p.display().to_string(),
        _ => "-".to_owned(),
    }
}

/// An open input and the name to report errors against.
pub struct Input {
    pub name: String,
    pub reader: Box<dyn Read>,
    /// Size in bytes when known (regular files), for the progress bar.
    pub len: Option<u64>,
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Input").field("name", &self.name).finish()
    }
}

/// Opens `path` (or stdin). A directory, a missing or unreadable file is a usage error
/// (exit 2) that names the file.
pub fn open_input(path: Option<&Path>) -> CliResult<Input> {
    match path {
        Some(p) if !is_stdin(Some(p)) => {
            let file = open_file(p)?;
            let len = file.metadata().ok().map(|m| m.len());
            Ok(Input {
                name: p.display().to_string(),
                reader: Box::new(file),
                len,
            })
        }
        _ => Ok(Input {
            name: "-".to_owned(),
            reader: Box::new(io::stdin().lock()),
            len: None,
        }),
    }
}

/// Opens a regular file for reading, refusing directories up front (on Linux `open(2)`
/// succeeds on a directory and only `read(2)` fails, which would report a confusing error
/// after some work was done).
pub fn open_file(path: &Path) -> CliResult<File> {
    let meta = fs::metadata(path).map_err(|e| CliError::io(path, &e))?;
    if meta.is_dir() {
        return Err(CliError::usage(format!(
            "{}: Is a directory",
            path.display()
        )));
    }
    File::open(path).map_err(|e| CliError::io(path, &e))
}

/// Reads a whole input that a format forces into memory, refusing more than `limit` bytes
/// with a usage error that names the limit.
pub fn read_limited(input: Input, limit: u64, what: &str) -> CliResult<Vec<u8>> {
    let Input { name, reader, .. } = input;
    let mut buf = Vec::new();
    reader
        .take(limit.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(|e| CliError::io_named(&name, &e))?;
    if buf.len() as u64 > limit {
        return Err(CliError::usage(format!(
            "{name}: input is larger than the {what} limit of {} bytes",
            limit
        )));
    }
    Ok(buf)
}

/// Reads a key, identity or signature file (at most [`KEY_FILE_LIMIT`] bytes).
pub fn read_small_file(path: &Path) -> CliResult<Vec<u8>> {
    let file = open_file(path)?;
    read_limited(
        Input {
            name: path.display().to_string(),
            reader: Box::new(file),
            len: None,
        },
        KEY_FILE_LIMIT,
        "key file",
    )
}

/// Permissions for files we create: secrets are private to the owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Keys, identities, decrypted plaintext: 0600.
    Secret,
    /// Ciphertext, signatures, public keys: 0644.
    Public,
}

impl Mode {
    fn bits(self) -> u32 {
        match self {
            Mode::Secret => 0o600,
            Mode::Public => 0o644,
        }
    }
}

enum Sink {
    /// Straight to standard output (nothing to take back on failure).
    Stdout(BufWriter<io::Stdout>),
    /// Standard output, but only after success: spooled to an unnamed temporary file first
    /// so that a failed authentication prints no partial plaintext, in constant memory.
    SpooledStdout(BufWriter<File>),
    /// `-o FILE`: a temporary file in the same folder, renamed over FILE on commit and
    /// deleted if dropped without commit.
    File {
        tmp: BufWriter<NamedTempFile>,
        dest: PathBuf,
        force: bool,
    },
}

/// Where a command's output goes. Nothing is visible at the destination until
/// [`Output::commit`]; dropping an uncommitted `Output` removes its temporary file.
pub struct Output {
    sink: Sink,
    name: String,
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Output").field("name", &self.name).finish()
    }
}

impl Output {
    /// Prepares the output named by `args`. Fails up front (before any work) if the file
    /// exists and `--force` was not given, or its folder is not writable.
    ///
    /// `spool_stdout`: for decryption, hold standard output back until the whole input has
    /// authenticated.
    pub fn prepare(args: &OutputArgs, mode: Mode, spool_stdout: bool) -> CliResult<Self> {
        match args.output.as_deref() {
            Some(p) if !is_stdin(Some(p)) => Self::to_file(p, args.force, mode),
            _ => Self::to_stdout(spool_stdout),
        }
    }

    /// Standard output, optionally spooled until commit.
    pub fn to_stdout(spool: bool) -> CliResult<Self> {
        let sink = if spool {
            let file =
                tempfile::tempfile().map_err(|e| CliError::io_named("temporary file", &e))?;
            Sink::SpooledStdout(BufWriter::with_capacity(CHUNK, file))
        } else {
            Sink::Stdout(BufWriter::with_capacity(CHUNK, io::stdout()))
        };
        Ok(Self {
            sink,
            name: "standard output".to_owned(),
        })
    }

    /// A file written atomically on commit.
    pub fn to_file(dest: &Path, force: bool, mode: Mode) -> CliResult<Self> {
        check_writable_destination(dest, force)?;
        let dir = match dest.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let tmp = tempfile::Builder::new()
            .prefix(".palisade-")
            .suffix(".tmp")
            .permissions(fs::Permissions::from_mode(mode.bits()))
            .tempfile_in(&dir)
            .map_err(|e| CliError::io(dest, &e))?;
        Ok(Self {
            sink: Sink::File {
                tmp: BufWriter::with_capacity(CHUNK, tmp),
                dest: dest.to_path_buf(),
                force,
            },
            name: dest.display().to_string(),
        })
    }

    /// The name to use in error messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Writes all of `data`, naming the output on failure.
    pub fn write_all(&mut self, data: &[u8]) -> CliResult<()> {
        let name = self.name.clone();
        Write::write_all(self, data).map_err(|e| CliError::io_named(&name, &e))
    }

    /// Makes the output visible: flushes, fsyncs and renames a file into place, or copies a
    /// spooled standard output out.
    pub fn commit(self) -> CliResult<()> {
        let name = self.name;
        match self.sink {
            Sink::Stdout(mut w) => flush_stdout(&mut w),
            Sink::SpooledStdout(w) => {
                let mut file = w
                    .into_inner()
                    .map_err(|e| CliError::io_named(&name, e.error()))?;
                file.seek(SeekFrom::Start(0))
                    .map_err(|e| CliError::io_named(&name, &e))?;
                let mut out = BufWriter::with_capacity(CHUNK, io::stdout());
                match io::copy(&mut file, &mut out) {
                    Ok(_) => flush_stdout(&mut out),
                    Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
                    Err(e) => Err(CliError::io_named(&name, &e)),
                }
            }
            Sink::File { tmp, dest, force } => {
                let tmp = tmp
                    .into_inner()
                    .map_err(|e| CliError::io(&dest, e.error()))?;
                tmp.as_file()
                    .sync_all()
                    .map_err(|e| CliError::io(&dest, &e))?;
                // Without --force, refuse to replace a file that appeared while we worked.
                let persisted = if force {
                    tmp.persist(&dest)
                } else {
                    tmp.persist_noclobber(&dest)
                };
                persisted.map_err(|e| CliError::io(&dest, &e.error))?;
                sync_parent(&dest);
                Ok(())
            }
        }
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.sink {
            Sink::Stdout(w) => w.write(buf),
            Sink::SpooledStdout(w) => w.write(buf),
            Sink::File { tmp, .. } => tmp.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.sink {
            Sink::Stdout(w) => w.flush(),
            Sink::SpooledStdout(w) => w.flush(),
            Sink::File { tmp, .. } => tmp.flush(),
        }
    }
}

fn flush_stdout<W: Write>(w: &mut W) -> CliResult<()> {
    match w.flush() {
        Ok(()) => Ok(()),
        // `palisade … | head` closing the pipe early is not an error worth reporting.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(CliError::io_named("standard output", &e)),
    }
}

/// Durability of the rename itself; best effort (some filesystems refuse to fsync a folder).
fn sync_parent(dest: &Path) {
    let dir = match dest.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Refuses an existing destination without `--force`, and a destination that is a folder.
pub fn check_writable_destination(dest: &Path, force: bool) -> CliResult<()> {
    match fs::symlink_metadata(dest) {
        Ok(meta) if meta.is_dir() => Err(CliError::usage(format!(
            "{}: Is a directory",
            dest.display()
        ))),
        Ok(_) if !force => Err(CliError::usage(format!(
            "{}: already exists (use --force to overwrite)",
            dest.display()
        ))),
        _ => Ok(()),
    }
}

/// Writes a whole small file atomically (keys, identities, public keys).
pub fn write_file_atomic(dest: &Path, data: &[u8], force: bool, mode: Mode) -> CliResult<()> {
    let mut out = Output::to_file(dest, force, mode)?;
    out.write_all(data)?;
    out.commit()
}

/// Writes to standard output now (for short results such as a hash line or a verdict).
pub fn print_stdout(data: &[u8]) -> CliResult<()> {
    let mut out = io::stdout().lock();
    match out.write_all(data).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(CliError::io_named("standard output", &e)),
    }
}

/// Wraps a reader in a progress bar on standard error, only when standard error is a
/// terminal (never in pipes or tests) and the input is large enough to be worth it.
pub fn with_progress(input: Input) -> Input {
    const WORTH_IT: u64 = 64 * 1024 * 1024;
    let Input { name, reader, len } = input;
    if !io::stderr().is_terminal() || len.is_some_and(|l| l < WORTH_IT) || len.is_none() {
        return Input { name, reader, len };
    }
    let bar = indicatif::ProgressBar::new(len.unwrap_or(0));
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let reader = Box::new(bar.wrap_read(reader));
    Input { name, reader, len }
}
