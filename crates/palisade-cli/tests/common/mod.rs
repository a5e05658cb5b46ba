//! Helpers for driving the real `palisade` binary and the tools it must interoperate with.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

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

/// A running server; killed on drop if the test did not stop it.
pub struct Running {
    pub child: Child,
    pub url: String,
    pub addr: SocketAddr,
    pub stderr: Arc<Mutex<String>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Sends SIGTERM (through kill(1): the workspace forbids unsafe, so no libc::kill).
    pub fn sigterm(&self) {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -TERM failed");
    }

    /// Waits for the process to exit; returns its exit code.
    pub fn wait_exit(&mut self, limit: Duration) -> i32 {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status
                    .code()
                    .unwrap_or_else(|| panic!("killed by a signal: {status:?}"));
            }
            assert!(
                start.elapsed() < limit,
                "server did not exit within {limit:?}; stderr:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A `palisade` command with no PALISADE_* variables from the test's own environment.
pub fn clean_palisade() -> Command {
    let mut cmd = palisade();
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("PALISADE_") {
            cmd.env_remove(name);
        }
    }
    cmd
}

/// Starts `palisade serve` with `args` and waits for the `listening on URL` line.
pub fn start(cmd: &mut Command) -> Running {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn palisade serve");
    let stdout = child.stdout.take().unwrap();
    let mut stderr_pipe = child.stderr.take().unwrap();
    let stderr = Arc::new(Mutex::new(String::new()));
    let sink = Arc::clone(&stderr);
    // Drain standard error so the server never blocks on a full pipe.
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stderr_pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let _ = tx.send(lines.next());
        // Keep reading so later output never blocks the server.
        for _ in lines {}
    });
    let first = rx.recv_timeout(Duration::from_secs(30));
    let line = match first {
        Ok(Some(Ok(line))) => line,
        other => {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "no `listening on` line ({other:?}); stderr:\n{}",
                stderr.lock().unwrap()
            );
        }
    };
    let url = line
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("first line was {line:?}"))
        .to_owned();
    let hostport = url.split_once("://").unwrap().1;
    let addr: SocketAddr = hostport.parse().unwrap();
    Running {
        child,
        url,
        addr,
        stderr,
    }
}

/// Runs `palisade args…` in `dir`, so relative file names in `args` resolve there.
pub fn in_dir(dir: &Path, args: &[&str], stdin: &[u8]) -> Output {
    let mut cmd = palisade();
    cmd.current_dir(dir).args(args);
    run_cmd(&mut cmd, stdin)
}

/// The no-clobber contract for a command whose `args` end in `-o dest`: an existing `dest`
/// makes it exit 2 with one line naming `dest` and leaves the file as it was; the same
/// command with `--force` then succeeds. Returns that forced run for further checks.
#[track_caller]
pub fn assert_kept_without_force(dir: &Path, args: &[&str], stdin: &[u8], dest: &str) -> Output {
    std::fs::write(dir.join(dest), "keep").expect("write dest");
    let out = in_dir(dir, args, stdin);
    assert_code(&out, 2);
    assert_one_clear_line(&out, Some(dest));
    assert_eq!(
        std::fs::read_to_string(dir.join(dest)).expect("read dest"),
        "keep"
    );
    let mut forced: Vec<&str> = args.to_vec();
    forced.push("--force");
    let out = in_dir(dir, &forced, stdin);
    assert_code(&out, 0);
    out
}

/// `palisade serve` on a free port of 127.0.0.1 with data directory `dir`.
pub fn serve_cmd(dir: &Path) -> Command {
    let mut cmd = clean_palisade();
    cmd.args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        path_str(dir),
    ]);
    cmd
}

/// A fresh data directory (not created yet) for the admin commands, run with a clean
/// environment (no `PALISADE_*` from the test's own).
pub struct DataDir {
    _tmp: tempfile::TempDir,
    pub path: std::path::PathBuf,
}

impl DataDir {
    pub fn new() -> Self {
        let tmp = tempdir();
        let path = tmp.path().join("data");
        Self { _tmp: tmp, path }
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = clean_palisade();
        cmd.args(args).arg("--data-dir").arg(&self.path);
        cmd
    }

    pub fn run(&self, args: &[&str], stdin: &[u8]) -> Output {
        run_cmd(&mut self.cmd(args), stdin)
    }

    /// Runs `args`, expects exit 0, returns standard output.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args, b"");
        assert_code(&out, 0);
        stdout(&out)
    }
}
