//! An offline breached-password check: a local copy of Have I Been Pwned's "Pwned
//! Passwords" corpus (the SHA-1 edition, ordered by hash), looked up by binary search.
//!
//! The file has one line per password: the upper-case hex SHA-1 of the password, then
//! optionally `:` and how many times it was seen (`5BAA61E4…8FD8:52256179`), sorted by hash,
//! with LF or CRLF line ends. Lower-case hex is accepted too, as long as the whole file uses
//! one case (the sort order is then the same).
//!
//! The full corpus is tens of gigabytes, so it is never read whole: a lookup does about
//! log2(file size) positioned reads of a few hundred bytes (about 35 for 30 GB), each landing
//! at an arbitrary byte offset and moving forward to the next line start. Positioned reads
//! (`pread`) need no seek state, so one open file serves concurrent lookups, and the
//! operating system's page cache keeps the hot upper levels of the search in memory. No
//! memory map: the workspace forbids `unsafe`, and a file truncated under a map would crash
//! the process, where a read just returns an error.

use std::fmt;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use palisade_core::password_policy::{BreachCheckError, BreachedPasswords};

/// Longest line accepted, line end included. A real line is at most 40 + 1 + 20 (a u64
/// count) + 2 = 63 bytes; the margin tolerates padding without letting a corrupt file make
/// a lookup read megabytes.
const MAX_LINE: usize = 128;
/// Bytes read per probe: enough to skip the rest of one line and hold the whole next one.
const WINDOW: usize = 2 * MAX_LINE;

/// A Pwned Passwords SHA-1 file, opened and checked once, then searched per lookup.
#[derive(Debug)]
pub struct BreachedPasswordFile {
    file: File,
    /// The size at open: the search works within it, and a file that shrank since is
    /// reported rather than misread.
    len: u64,
    path: PathBuf,
}

/// The breached-password file cannot be used. Every variant names the file, since the
/// message ends up in a start-up error or a log line.
#[derive(Debug)]
pub enum BreachedFileError {
    Open {
        path: PathBuf,
        source: io::Error,
    },
    NotAFile {
        path: PathBuf,
    },
    Empty {
        path: PathBuf,
    },
    /// The first or last line is not `HEX40[:COUNT]`.
    Malformed {
        path: PathBuf,
        which: &'static str,
        reason: &'static str,
    },
    /// The first hash sorts after the last.
    NotSorted {
        path: PathBuf,
    },
}

impl fmt::Display for BreachedFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Open { path, source } => write!(
                f,
                "{}: cannot open the breached-password file: {source}",
                path.display()
            ),
            Self::NotAFile { path } => write!(
                f,
                "{}: the breached-password file is not a regular file",
                path.display()
            ),
            Self::Empty { path } => {
                write!(f, "{}: the breached-password file is empty", path.display())
            }
            Self::Malformed {
                path,
                which,
                reason,
            } => write!(
                f,
                "{}: the {which} line is not in the Pwned Passwords SHA-1 format \
                 (40 hex digits, optionally followed by ':' and a count): {reason}",
                path.display()
            ),
            Self::NotSorted { path } => write!(
                f,
                "{}: the breached-password file is not sorted by hash (its first hash sorts \
                 after its last); download the edition ordered by hash",
                path.display()
            ),
        }
    }
}

impl std::error::Error for BreachedFileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Open { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Why one probe of the file failed.
#[derive(Debug)]
enum ProbeError {
    Io(io::Error),
    Malformed(&'static str),
    /// Fewer bytes than the size recorded at open: the file was truncated or replaced.
    Shrunk,
}

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "read error: {e}"),
            Self::Malformed(reason) => write!(f, "malformed line: {reason}"),
            Self::Shrunk => f.write_str("the file is shorter than when it was opened"),
        }
    }
}

impl BreachedPasswordFile {
    /// Opens `path` and checks that its first and last lines are hash lines and in order,
    /// so a wrong file (the NTLM edition, a half-finished download, a text list of
    /// passwords) is refused at start-up instead of silently matching nothing.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, BreachedFileError> {
        let path = path.as_ref().to_path_buf();
        let file = File::open(&path).map_err(|source| BreachedFileError::Open {
            path: path.clone(),
            source,
        })?;
        let meta = file.metadata().map_err(|source| BreachedFileError::Open {
            path: path.clone(),
            source,
        })?;
        if !meta.is_file() {
            return Err(BreachedFileError::NotAFile { path });
        }
        let len = meta.len();
        if len == 0 {
            return Err(BreachedFileError::Empty { path });
        }
        let this = Self { file, len, path };
        let malformed = |which: &'static str, e: ProbeError| match e {
            ProbeError::Io(source) => BreachedFileError::Open {
                path: this.path.clone(),
                source,
            },
            ProbeError::Malformed(reason) => BreachedFileError::Malformed {
                path: this.path.clone(),
                which,
                reason,
            },
            ProbeError::Shrunk => BreachedFileError::Malformed {
                path: this.path.clone(),
                which,
                reason: "the file changed while it was being opened",
            },
        };
        let first = match this.line_from(0) {
            Ok(Some((_, key))) => key,
            Ok(None) => return Err(BreachedFileError::Empty { path: this.path }),
            Err(e) => return Err(malformed("first", e)),
        };
        let last = this.last_line().map_err(|e| malformed("last", e))?;
        if first > last {
            return Err(BreachedFileError::NotSorted { path: this.path });
        }
        Ok(this)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether `sha1` is a line of the file.
    ///
    /// A binary search over byte offsets. With `f(x)` = the first line starting at or after
    /// byte `x`, it keeps two facts true: every line starting before `lo` has a smaller
    /// hash, and `f(hi)` has a hash ≥ the target (or is the end of the file). When `lo`
    /// meets `hi`, `f(lo)` is the first line with a hash ≥ the target: found iff equal.
    fn lookup(&self, target: &[u8; 20]) -> Result<bool, ProbeError> {
        let (mut lo, mut hi) = (0u64, self.len);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.line_from(mid)? {
                Some((start, key)) if start < hi => {
                    if key == *target {
                        return Ok(true);
                    }
                    if key < *target {
                        // Lines up to `start` are all smaller; the next starts after it.
                        lo = start.saturating_add(1);
                    } else {
                        hi = mid;
                    }
                }
                // No line starts in [mid, hi): f(mid) = f(hi), so hi can move down.
                _ => hi = mid,
            }
        }
        Ok(matches!(self.line_from(lo)?, Some((_, key)) if key == *target))
    }

    /// The first line starting at or after `offset`: its start and its hash, or `None` at
    /// the end of the file.
    fn line_from(&self, offset: u64) -> Result<Option<(u64, [u8; 20])>, ProbeError> {
        if offset >= self.len {
            return Ok(None);
        }
        // Read from one byte earlier, so a line starting exactly at `offset` is found by
        // the line end before it like any other.
        let read_from = offset.saturating_sub(1);
        let mut buf = [0u8; WINDOW];
        let data = self.read_window(&mut buf, read_from)?;
        let reached_eof = read_from.saturating_add(data.len() as u64) >= self.len;
        let start_in_buf = if offset == 0 {
            0
        } else {
            match data.iter().position(|&b| b == b'\n') {
                Some(i) if i < MAX_LINE => i.saturating_add(1),
                None if reached_eof => return Ok(None),
                _ => return Err(ProbeError::Malformed("a line is too long")),
            }
        };
        let start = read_from.saturating_add(start_in_buf as u64);
        let rest = data.get(start_in_buf..).unwrap_or_default();
        if rest.is_empty() {
            return Ok(None);
        }
        let line = match rest.iter().position(|&b| b == b'\n') {
            Some(end) => rest.get(..end).unwrap_or_default(),
            None if reached_eof => rest,
            None => return Err(ProbeError::Malformed("a line is too long")),
        };
        if line.len() >= MAX_LINE {
            return Err(ProbeError::Malformed("a line is too long"));
        }
        let key = parse_line(line).map_err(ProbeError::Malformed)?;
        Ok(Some((start, key)))
    }

    /// The hash on the last line (a final line end is optional).
    fn last_line(&self) -> Result<[u8; 20], ProbeError> {
        let read_from = self.len.saturating_sub(WINDOW as u64);
        let mut buf = [0u8; WINDOW];
        let data = self.read_window(&mut buf, read_from)?;
        let data = data.strip_suffix(b"\n").unwrap_or(data);
        let line = match data.iter().rposition(|&b| b == b'\n') {
            Some(i) => data.get(i.saturating_add(1)..).unwrap_or_default(),
            None if read_from == 0 => data,
            None => return Err(ProbeError::Malformed("a line is too long")),
        };
        if line.len() >= MAX_LINE {
            return Err(ProbeError::Malformed("a line is too long"));
        }
        parse_line(line).map_err(ProbeError::Malformed)
    }

    /// Fills as much of `buf` as the file (at its size at open) has from `offset`, and
    /// returns that part.
    fn read_window<'b>(&self, buf: &'b mut [u8], offset: u64) -> Result<&'b [u8], ProbeError> {
        let remaining = self.len.saturating_sub(offset);
        let want = usize::try_from(remaining).map_or(buf.len(), |r| r.min(buf.len()));
        let target = buf.get_mut(..want).unwrap_or_default();
        let mut filled = 0usize;
        while filled < target.len() {
            let pos = offset.saturating_add(filled as u64);
            let chunk = target.get_mut(filled..).unwrap_or_default();
            match read_at(&self.file, chunk, pos) {
                Ok(0) => return Err(ProbeError::Shrunk),
                Ok(n) => filled = filled.saturating_add(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(ProbeError::Io(e)),
            }
        }
        Ok(target)
    }
}

impl BreachedPasswords for BreachedPasswordFile {
    fn is_breached(&self, sha1: &[u8; 20]) -> Result<bool, BreachCheckError> {
        // The message names the file and the fault, never the hash being looked up.
        self.lookup(sha1)
            .map_err(|e| BreachCheckError::new(format!("{}: {e}", self.path.display())))
    }
}

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, offset)
}

#[cfg(windows)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    // seek_read moves the file cursor, which nothing else here uses.
    std::os::windows::fs::FileExt::seek_read(file, buf, offset)
}

/// The hash of one line (line end removed, a trailing CR tolerated).
fn parse_line(line: &[u8]) -> Result<[u8; 20], &'static str> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.is_empty() {
        return Err("the line is empty");
    }
    let mut fields = line.splitn(2, |&b| b == b':');
    let hash = fields.next().unwrap_or_default();
    if let Some(count) = fields.next()
        && (count.is_empty() || !count.iter().all(u8::is_ascii_digit))
    {
        return Err("the count after ':' is not a number");
    }
    if hash.len() == 32 && hash.iter().all(u8::is_ascii_hexdigit) {
        return Err("32 hex digits is the NTLM edition; Palisade needs the SHA-1 edition");
    }
    if hash.len() != 40 {
        return Err("the hash is not 40 hex digits");
    }
    let mut out = [0u8; 20];
    for (byte, pair) in out.iter_mut().zip(hash.chunks_exact(2)) {
        let (hi, lo) = match pair {
            [hi, lo] => (nibble(*hi), nibble(*lo)),
            _ => (None, None),
        };
        *byte = match (hi, lo) {
            (Some(hi), Some(lo)) => (hi << 4) | lo,
            _ => return Err("the hash has a character that is not a hex digit"),
        };
    }
    Ok(out)
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_core::password_policy::{PasswordPolicy, PolicyViolation};
    use std::collections::BTreeSet;
    use std::io::Write;
    use std::sync::Arc;

    fn hex_upper(h: &[u8; 20]) -> String {
        h.iter().map(|b| format!("{b:02X}")).collect()
    }

    fn from_hex(s: &str) -> [u8; 20] {
        parse_line(s.as_bytes()).unwrap()
    }

    /// Tiny deterministic generator, so the large test file is the same every run.
    fn splitmix(state: &mut u64) -> u64 {
        *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn random_hash(state: &mut u64) -> [u8; 20] {
        let mut h = [0u8; 20];
        for chunk in h.chunks_mut(8) {
            let bytes = splitmix(state).to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
        h
    }

    /// `h + 1` as a 160-bit big-endian number (None on overflow).
    fn successor(h: &[u8; 20]) -> Option<[u8; 20]> {
        let mut out = *h;
        for b in out.iter_mut().rev() {
            let (v, carry) = b.overflowing_add(1);
            *b = v;
            if !carry {
                return Some(out);
            }
        }
        None
    }

    fn predecessor(h: &[u8; 20]) -> Option<[u8; 20]> {
        let mut out = *h;
        for b in out.iter_mut().rev() {
            let (v, borrow) = b.overflowing_sub(1);
            *b = v;
            if !borrow {
                return Some(out);
            }
        }
        None
    }

    fn write_file(dir: &tempfile::TempDir, name: &str, contents: &[u8]) -> PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    /// Every listed hash is found, and no value between, below or above them is.
    fn assert_exact_set(file: &BreachedPasswordFile, hashes: &BTreeSet<[u8; 20]>) {
        let mut probes: Vec<[u8; 20]> = vec![[0; 20], [0xff; 20]];
        for h in hashes {
            probes.extend(
                [Some(*h), successor(h), predecessor(h)]
                    .into_iter()
                    .flatten(),
            );
        }
        for p in probes {
            assert_eq!(
                file.is_breached(&p).unwrap(),
                hashes.contains(&p),
                "{}",
                hex_upper(&p)
            );
        }
    }

    #[test]
    fn large_sorted_file_hits_and_misses() {
        let mut state = 2024u64;
        let hashes: BTreeSet<[u8; 20]> = (0..200_000).map(|_| random_hash(&mut state)).collect();
        assert_eq!(hashes.len(), 200_000);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pwned-passwords-sha1-ordered-by-hash.txt");
        let mut out = std::io::BufWriter::new(File::create(&path).unwrap());
        for (i, h) in hashes.iter().enumerate() {
            // Counts of varying width, so lines have different lengths, as in the real file.
            write!(out, "{}:{}\r\n", hex_upper(h), (i * 7919) % 1_000_003 + 1).unwrap();
        }
        out.flush().unwrap();
        drop(out);
        let file = BreachedPasswordFile::open(&path).unwrap();
        let sorted: Vec<[u8; 20]> = hashes.iter().copied().collect();
        let first = sorted[0];
        let last = sorted[sorted.len() - 1];
        let middle = sorted[sorted.len() / 2];
        for hit in [first, last, middle, sorted[1], sorted[sorted.len() - 2]] {
            assert!(file.is_breached(&hit).unwrap(), "{}", hex_upper(&hit));
        }
        // Smaller than all, greater than all, and right next to the ends.
        for miss in [
            [0u8; 20],
            [0xff; 20],
            predecessor(&first).unwrap(),
            successor(&last).unwrap(),
        ] {
            assert!(!hashes.contains(&miss));
            assert!(!file.is_breached(&miss).unwrap(), "{}", hex_upper(&miss));
        }
        // A spread of hits, each with its neighbours (absent unless they are lines too).
        for h in sorted.iter().step_by(97) {
            assert!(file.is_breached(h).unwrap());
            for n in [successor(h), predecessor(h)].into_iter().flatten() {
                assert_eq!(file.is_breached(&n).unwrap(), hashes.contains(&n));
            }
        }
        // Fresh random values: as good as all absent.
        for _ in 0..2000 {
            let r = random_hash(&mut state);
            assert_eq!(file.is_breached(&r).unwrap(), hashes.contains(&r));
        }
    }

    #[test]
    fn small_files_in_every_accepted_shape() {
        let dir = tempfile::tempdir().unwrap();
        let mut state = 9u64;
        for n in [1usize, 2, 3, 5, 64] {
            let hashes: BTreeSet<[u8; 20]> = (0..n).map(|_| random_hash(&mut state)).collect();
            // (name, line end, with a count, with a final line end)
            let shapes = [
                ("lf-count", "\n", true, true),
                ("crlf-count", "\r\n", true, true),
                ("lf-bare", "\n", false, true),
                ("crlf-bare-no-final-newline", "\r\n", false, false),
                ("lf-count-no-final-newline", "\n", true, false),
            ];
            for (name, eol, count, final_newline) in shapes {
                let mut text: String = hashes
                    .iter()
                    .enumerate()
                    .map(|(i, h)| {
                        if count {
                            format!("{}:{}{eol}", hex_upper(h), i + 1)
                        } else {
                            format!("{}{eol}", hex_upper(h))
                        }
                    })
                    .collect();
                if !final_newline {
                    text.truncate(text.len() - eol.len());
                }
                let path = write_file(&dir, &format!("{name}-{n}.txt"), text.as_bytes());
                let file =
                    BreachedPasswordFile::open(&path).unwrap_or_else(|e| panic!("{name} {n}: {e}"));
                assert_exact_set(&file, &hashes);
            }
        }
        // Lower-case hex, as some mirrors write it.
        let hashes: BTreeSet<[u8; 20]> = (0..10).map(|_| random_hash(&mut state)).collect();
        let text: String = hashes
            .iter()
            .map(|h| format!("{}:3\n", hex_upper(h).to_lowercase()))
            .collect();
        let file =
            BreachedPasswordFile::open(write_file(&dir, "lower.txt", text.as_bytes())).unwrap();
        assert_exact_set(&file, &hashes);
    }

    #[test]
    fn a_wrong_file_is_refused_at_open_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let a = "000000A7B4BD4C3B58D1A6B1A68A2F6ABE1E0F87";
        let z = "FFFFFF08B1F0F1B5F3B4E1B0D2CDE37C18F0C0AE";
        let cases: [(&str, String, &str); 8] = [
            ("empty.txt", String::new(), "is empty"),
            (
                "plain.txt",
                "password\n123456\n".to_owned(),
                "not 40 hex digits",
            ),
            (
                "ntlm.txt",
                "8846F7EAEE8FB117AD06BDD830B7586C:10\n".to_owned(),
                "NTLM edition",
            ),
            ("count.txt", format!("{a}:many\n"), "count after ':'"),
            ("notsorted.txt", format!("{z}:1\n{a}:1\n"), "not sorted"),
            // A download cut off mid-line.
            (
                "truncated.txt",
                format!("{a}:1\n{}", &z[..17]),
                "the last line",
            ),
            ("hex.txt", format!("{}G:1\n", &a[..39]), "not a hex digit"),
            ("blank-end.txt", format!("{a}:1\n\n"), "the line is empty"),
        ];
        for (name, contents, expected) in cases {
            let path = write_file(&dir, name, contents.as_bytes());
            let err = BreachedPasswordFile::open(&path).unwrap_err().to_string();
            assert!(err.contains(expected), "{name}: {err}");
            assert!(
                err.starts_with(&path.display().to_string()),
                "{name}: {err}"
            );
        }
        let missing = dir.path().join("missing.txt");
        let err = BreachedPasswordFile::open(&missing).unwrap_err();
        assert!(matches!(err, BreachedFileError::Open { .. }));
        assert!(err.to_string().contains("missing.txt"), "{err}");
        let err = BreachedPasswordFile::open(dir.path()).unwrap_err();
        assert!(matches!(err, BreachedFileError::NotAFile { .. }), "{err}");
        // A line far longer than any hash line.
        let long = format!("{a}:{}\n", "1".repeat(500));
        let err =
            BreachedPasswordFile::open(write_file(&dir, "long.txt", long.as_bytes())).unwrap_err();
        assert!(err.to_string().contains("too long"), "{err}");
    }

    #[test]
    fn corruption_found_during_a_lookup_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let mut state = 5u64;
        let hashes: Vec<[u8; 20]> = (0..1000)
            .map(|_| random_hash(&mut state))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut text: String = hashes
            .iter()
            .map(|h| format!("{}:1\n", hex_upper(h)))
            .collect();
        // Garbage around three quarters of the way in, where the second probe of any
        // search in the upper half lands; the first and last lines stay valid.
        let at = text.len() * 3 / 4 - 150;
        text.replace_range(at..at + 300, &"#".repeat(300));
        let path = write_file(&dir, "corrupt.txt", text.as_bytes());
        let file = BreachedPasswordFile::open(&path).unwrap();
        let err = file.is_breached(&hashes[760]).unwrap_err();
        assert!(err.reason().contains("corrupt.txt"), "{err}");
        assert!(err.reason().contains("too long"), "{err}");
        assert!(!err.to_string().contains(&hex_upper(&hashes[760])), "{err}");
        // Lookups that never reach the damage still work.
        assert!(file.is_breached(&hashes[0]).unwrap());
    }

    #[test]
    fn a_file_truncated_after_open_fails_the_lookup_and_the_policy_fails_open() {
        let dir = tempfile::tempdir().unwrap();
        let good = "Tr0ub4dor&3-kayak-Quartz";
        let good_sha1 = "6FFD634386C75F66472448385D64F8A0C7EF9273";
        let password_sha1 = "5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8";
        let text = format!("{password_sha1}:52256179\r\n{good_sha1}:3\r\n");
        let path = write_file(&dir, "pwned.txt", text.as_bytes());
        let file = Arc::new(BreachedPasswordFile::open(&path).unwrap());
        assert!(file.is_breached(&from_hex(good_sha1)).unwrap());
        let policy = PasswordPolicy {
            breached: Some(file.clone()),
            ..PasswordPolicy::default()
        };
        // An otherwise acceptable password that is in the corpus is refused.
        let outcome = policy.evaluate(good, &[]);
        assert_eq!(outcome.violations, [PolicyViolation::Breached]);
        assert!(outcome.breach_check_error.is_none());
        assert_eq!(policy.check("vG7#pq2!Lm9zW", &[]), Ok(()));

        // The file is cut short while the server runs.
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(0)
            .unwrap();
        let err = file.is_breached(&from_hex(good_sha1)).unwrap_err();
        assert!(
            err.reason().contains("shorter than when it was opened"),
            "{err}"
        );
        // Fail open: accepted, with the error handed back for the log.
        let outcome = policy.evaluate(good, &[]);
        assert!(outcome.is_accepted());
        assert!(
            outcome
                .breach_check_error
                .unwrap()
                .reason()
                .contains("pwned.txt")
        );
    }
}
