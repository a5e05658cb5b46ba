//! `palisade hash`: digests of files in `sha256sum`'s exact output format, and `--check` of a
//! `sha256sum`-style list. Like `sha256sum`, an unreadable input is reported and the other
//! inputs are still hashed; the exit code tells the caller something went wrong.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use palisade_crypto::hash::{self, Algorithm, SumsEntry};

use crate::cli::{HashAlgo, HashArgs};
use crate::error::{CliError, CliResult};
use crate::io::{self, Input};

/// A check list is read whole; a million entries fit well under this.
const SUMS_LIMIT: u64 = 256 * 1024 * 1024;

pub fn algorithm(a: HashAlgo) -> Algorithm {
    match a {
        HashAlgo::Sha256 => Algorithm::Sha256,
        HashAlgo::Sha224 => Algorithm::Sha224,
        HashAlgo::Sha384 => Algorithm::Sha384,
        HashAlgo::Sha512 => Algorithm::Sha512,
        HashAlgo::Sha3_256 => Algorithm::Sha3_256,
        HashAlgo::Sha3_512 => Algorithm::Sha3_512,
        HashAlgo::Blake2b => Algorithm::Blake2b,
        HashAlgo::Blake2s => Algorithm::Blake2s,
        HashAlgo::Blake3 => Algorithm::Blake3,
        HashAlgo::Crc32 => Algorithm::Crc32,
        HashAlgo::Md5 => Algorithm::Md5,
        HashAlgo::Sha1 => Algorithm::Sha1,
    }
}

pub fn run(args: &HashArgs) -> CliResult<u8> {
    let algo = algorithm(args.algorithm);
    if algo.is_broken() {
        eprintln!(
            "palisade: warning: {algo} is broken (practical collisions): do not rely on it for security"
        );
    }
    match &args.check {
        Some(sums) => check(algo, sums),
        None => hash_files(algo, &args.files),
    }
}

fn digest_input(algo: Algorithm, input: Input) -> CliResult<Vec<u8>> {
    let input = io::with_progress(input);
    hash::hash_reader(algo, input.reader).map_err(|e| CliError::io_named(&input.name, &e))
}

/// Digest of a named input (`-` is stdin). Regular files hashed with BLAKE3 are
/// memory-mapped, as `b3sum` does (see [`hash::blake3_mmap`]); everything else streams.
fn digest_path(algo: Algorithm, path: &Path) -> CliResult<Vec<u8>> {
    let input = io::open_input(Some(path))?;
    if algo == Algorithm::Blake3 && input.name != "-" && input.len.is_some() {
        drop(input);
        return hash::blake3_mmap(path).map_err(|e| CliError::io(path, &e));
    }
    digest_input(algo, input)
}

fn hash_files(algo: Algorithm, files: &[PathBuf]) -> CliResult<u8> {
    let stdin_only = [PathBuf::from("-")];
    let files = if files.is_empty() {
        &stdin_only[..]
    } else {
        files
    };
    let mut code = 0;
    for file in files {
        let result = digest_path(algo, file);
        match result {
            Ok(digest) => {
                let mut line = Vec::with_capacity(digest.len() * 2 + 80);
                let (escaped, shown) = hash::escape_name(file.as_os_str().as_bytes());
                if escaped {
                    line.push(b'\\');
                }
                line.extend_from_slice(hex::encode(&digest).as_bytes());
                line.extend_from_slice(b"  ");
                line.extend_from_slice(&shown);
                line.push(b'\n');
                io::print_stdout(&line)?;
            }
            // Like sha256sum: report, carry on with the other files, fail at the end.
            Err(e) => {
                eprintln!("palisade: {e}");
                code = 2;
            }
        }
    }
    Ok(code)
}

/// How `sha256sum --check` shows a name in its verdict: escaped (with the leading `\`) only
/// when it holds a newline, since only that would break the one-line-per-file output.
fn shown_name(raw: &[u8]) -> Vec<u8> {
    if !raw.contains(&b'\n') {
        return raw.to_vec();
    }
    let (_, shown) = hash::escape_name(raw);
    let mut v = Vec::with_capacity(shown.len() + 1);
    v.push(b'\\');
    v.extend_from_slice(&shown);
    v
}

fn check(algo: Algorithm, sums: &Path) -> CliResult<u8> {
    let list = io::read_limited(io::open_input(Some(sums))?, SUMS_LIMIT, "check list")?;
    let sums_name = io::display_name(Some(sums));
    let (mut ok, mut mismatched, mut unreadable) = (0usize, 0usize, 0usize);
    let mut malformed = Vec::new();
    for entry in hash::parse_sums(&list, algo) {
        let entry: SumsEntry = match entry {
            Ok(e) => e,
            Err(m) => {
                malformed.push(m.line);
                continue;
            }
        };
        let path = Path::new(OsStr::from_bytes(&entry.name));
        let verdict: &[u8] = match digest_path(algo, path) {
            Ok(d) if d == entry.digest => {
                ok += 1;
                b"OK"
            }
            Ok(_) => {
                mismatched += 1;
                b"FAILED"
            }
            Err(_) => {
                unreadable += 1;
                b"FAILED open or read"
            }
        };
        let mut line = shown_name(&entry.name);
        line.extend_from_slice(b": ");
        line.extend_from_slice(verdict);
        line.push(b'\n');
        io::print_stdout(&line)?;
    }

    let mut problems = Vec::new();
    if mismatched > 0 {
        problems.push(format!(
            "{mismatched} computed checksum{} did NOT match",
            plural(mismatched)
        ));
    }
    if unreadable > 0 {
        problems.push(format!(
            "{unreadable} listed file{} could not be read",
            plural(unreadable)
        ));
    }
    if !malformed.is_empty() {
        let lines: Vec<String> = malformed.iter().take(5).map(usize::to_string).collect();
        let more = if malformed.len() > 5 { ", …" } else { "" };
        problems.push(format!(
            "{} improperly formatted {algo} checksum line{} (line {}{more})",
            malformed.len(),
            plural(malformed.len()),
            lines.join(", ")
        ));
    }
    if ok + mismatched + unreadable == 0 && malformed.is_empty() {
        problems.push("no checksum lines found".to_owned());
    }
    if problems.is_empty() {
        Ok(0)
    } else {
        Err(CliError::check(format!(
            "{sums_name}: {}",
            problems.join("; ")
        )))
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
