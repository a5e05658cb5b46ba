//! Helpers for driving the real `palisade` binary and the tools it must interoperate with.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The binary cargo built for this test run.
pub fn palisade() -> Command {
    Command::new(env!("CARGO_BIN_EXE_palisade"))
}

/// Runs `palisade args…` with `stdin` as standard input.
pub fn run(args: &[&str], stdin: &[u8]) -> Output {
    run_cmd(palisade().args(args), stdin)
}

/// Runs any prepared command with `stdin` piped in, and collects its output.
pub fn run_cmd(cmd: &mut Command, stdin: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut input = child.stdin.take().expect("stdin");
    let data = stdin.to_vec();
    // Feed stdin from a thread so a child that writes a lot before reading cannot deadlock.
    let feeder = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().expect("wait");
    let _ = feeder.join();
    out
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn code(o: &Output) -> i32 {
    o.status.code().expect("exited normally, not by a signal")
}

/// Asserts the exit code, showing stderr/stdout when it differs.
#[track_caller]
pub fn assert_code(o: &Output, expected: i32) {
    assert_eq!(
        code(o),
        expected,
        "unexpected exit code\nstdout: {}\nstderr: {}",
        stdout(o),
        stderr(o)
    );
}

/// The contract's error shape: a failure prints exactly one line on stderr, with no panic or
/// backtrace, and that line names `name` when given.
#[track_caller]
pub fn assert_one_clear_line(o: &Output, name: Option<&str>) {
    let err = stderr(o);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line on stderr, got: {err:?}");
    assert!(!err.contains("panicked"), "panic: {err}");
    assert!(!err.contains("RUST_BACKTRACE"), "backtrace hint: {err}");
    if let Some(n) = name {
        assert!(err.contains(n), "stderr {err:?} should name {n:?}");
    }
}

/// The Python interpreter of the test venv (with pyca/cryptography), set up by
/// `scripts/test-setup.sh`. Interop tests fail, never skip, when it is missing.
pub fn python() -> PathBuf {
    if let Ok(p) = std::env::var("PALISADE_TEST_PYTHON") {
        return PathBuf::from(p);
    }
    let home = std::env::var("HOME").expect("HOME");
    let p = PathBuf::from(home).join(".cache/palisade-venv/bin/python");
    assert!(
        p.exists(),
        "{} missing: run scripts/test-setup.sh (or scripts/test.sh) first",
        p.display()
    );
    p
}

/// Runs a Python snippet in the test venv with `args` as `sys.argv[1:]`; panics with its
/// stderr if it fails.
pub fn py(script: &str, args: &[&str], stdin: &[u8]) -> Vec<u8> {
    let out = run_cmd(
        Command::new(python()).arg("-c").arg(script).args(args),
        stdin,
    );
    assert!(
        out.status.success(),
        "python failed: {}\nscript:\n{script}",
        stderr(&out)
    );
    out.stdout
}

/// A fresh temporary folder for one test.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// The shared test vectors (`../shared/vectors`, or `PALISADE_VECTORS_DIR`).
pub fn vectors_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("PALISADE_VECTORS_DIR") {
        return PathBuf::from(dir);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors")
}

/// Mode bits of a file, for the 0600 checks.
pub fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777
}

/// Files in `dir`, to prove a failed command left nothing behind (no output, no temp file).
pub fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}
