//! `palisade hash`: every algorithm against Python's hashlib / zlib / blake3, output
//! byte-identical to `sha256sum`, `--check` verdicts and exit codes, error lines.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{assert_code, assert_one_clear_line, path_str, py, run, run_cmd, stderr, stdout};

const ALGOS: [&str; 12] = [
    "sha256", "sha224", "sha384", "sha512", "sha3-256", "sha3-512", "blake2b", "blake2s", "blake3",
    "crc32", "md5", "sha1",
];

const PY_DIGEST: &str = r#"
import sys, hashlib, zlib, blake3
algo = sys.argv[1]
for path in sys.argv[2:]:
    data = open(path, "rb").read()
    if algo == "crc32":
        d = "%08x" % zlib.crc32(data)
    elif algo == "blake3":
        d = blake3.blake3(data).hexdigest()
    else:
        d = hashlib.new(algo.replace("-", "_"), data).hexdigest()
    print(d + "  " + path)
"#;

/// Empty, small, and over 1 MiB (crossing the 1 MiB read chunk and BLAKE3's parallel path).
fn sample_files(dir: &Path) -> Vec<PathBuf> {
    let big: Vec<u8> = (0..(3 * 1024 * 1024 + 4099u32))
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let files: [(&str, &[u8]); 4] = [
        ("empty", b""),
        ("abc", b"abc"),
        (
            "small.txt",
            b"The quick brown fox jumps over the lazy dog\n",
        ),
        ("big.bin", &big),
    ];
    files
        .iter()
        .map(|(name, data)| {
            let p = dir.join(name);
            std::fs::write(&p, data).unwrap();
            p
        })
        .collect()
}

#[test]
fn every_algorithm_matches_python() {
    let dir = common::tempdir();
    let files = sample_files(dir.path());
    let args: Vec<&str> = files.iter().map(|p| path_str(p)).collect();
    for algo in ALGOS {
        let mut cmd = vec!["hash", "-a", algo];
        cmd.extend(&args);
        let o = run(&cmd, b"");
        assert_code(&o, 0);
        let mut py_args = vec![algo];
        py_args.extend(&args);
        let expected = String::from_utf8(py(PY_DIGEST, &py_args, b"")).unwrap();
        assert_eq!(stdout(&o), expected, "{algo}");
    }
}

#[test]
fn stdin_matches_python_for_every_algorithm() {
    let data: Vec<u8> = (0..1_500_000u32).map(|i| (i % 253) as u8).collect();
    let dir = common::tempdir();
    let f = dir.path().join("in");
    std::fs::write(&f, &data).unwrap();
    for algo in ALGOS {
        let expected = String::from_utf8(py(PY_DIGEST, &[algo, path_str(&f)], b"")).unwrap();
        let hex = expected.split("  ").next().unwrap();
        let o = run(&["hash", "-a", algo], &data);
        assert_code(&o, 0);
        assert_eq!(stdout(&o), format!("{hex}  -\n"), "{algo}");
        let o = run(&["hash", "-a", algo, "-"], &data);
        assert_eq!(stdout(&o), format!("{hex}  -\n"), "{algo} with -");
    }
}

#[test]
fn output_is_byte_identical_to_sha256sum() {
    let dir = common::tempdir();
    let mut files = sample_files(dir.path());
    // Names sha256sum escapes, and one with spaces.
    for name in ["with space", "back\\slash", "new\nline"] {
        let p = dir.path().join(name);
        std::fs::write(&p, name.as_bytes()).unwrap();
        files.push(p);
    }
    let names: Vec<String> = files
        .iter()
        .map(|p| p.file_name().unwrap().to_str().unwrap().to_owned())
        .collect();
    let mut args = vec!["hash".to_owned()];
    args.extend(names.iter().cloned());
    args.push("-".to_owned());
    let args_ref: Vec<&str> = args.iter().map(String::as_str).collect();
    let ours = run_cmd(
        common::palisade().args(&args_ref).current_dir(dir.path()),
        b"stdin data",
    );
    assert_code(&ours, 0);
    let theirs = run_cmd(
        Command::new("sha256sum")
            .args(&names)
            .arg("-")
            .current_dir(dir.path()),
        b"stdin data",
    );
    assert!(theirs.status.success());
    assert_eq!(ours.stdout, theirs.stdout);
    assert!(ours.stderr.is_empty(), "{}", stderr(&ours));

    // Absolute paths too.
    let abs: Vec<&str> = files.iter().map(|p| path_str(p)).collect();
    let mut a = vec!["hash"];
    a.extend(&abs);
    let ours = run(&a, b"");
    let theirs = run_cmd(Command::new("sha256sum").args(&abs), b"");
    assert_eq!(ours.stdout, theirs.stdout);
}

#[test]
fn missing_file_is_reported_after_hashing_the_others() {
    let dir = common::tempdir();
    let files = sample_files(dir.path());
    let missing = dir.path().join("no-such-file");
    let o = run(
        &[
            "hash",
            path_str(&files[1]),
            path_str(&missing),
            path_str(&files[2]),
        ],
        b"",
    );
    assert_code(&o, 2);
    assert_one_clear_line(&o, Some("no-such-file"));
    assert!(stderr(&o).contains("No such file"));
    let theirs = run_cmd(
        Command::new("sha256sum").args([path_str(&files[1]), path_str(&files[2])]),
        b"",
    );
    assert_eq!(o.stdout, theirs.stdout);
}

#[test]
fn directory_is_an_input_error() {
    let dir = common::tempdir();
    let o = run(&["hash", path_str(dir.path())], b"");
    assert_code(&o, 2);
    assert_one_clear_line(&o, Some(path_str(dir.path())));
    assert!(stderr(&o).contains("Is a directory"));
    assert!(o.stdout.is_empty());
}

#[test]
fn unknown_algorithm_is_usage_error() {
    let o = run(&["hash", "-a", "sha257"], b"");
    assert_code(&o, 2);
    assert!(!stderr(&o).contains("panicked"));
}

#[test]
fn md5_and_sha1_warn_others_do_not() {
    for algo in ["md5", "sha1"] {
        let o = run(&["hash", "-a", algo], b"abc");
        assert_code(&o, 0);
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(algo) && err.contains("security"), "{err}");
    }
    for algo in ALGOS.iter().filter(|a| !["md5", "sha1"].contains(a)) {
        let o = run(&["hash", "-a", algo], b"abc");
        assert!(o.stderr.is_empty(), "{algo}: {}", stderr(&o));
    }
}

fn sums_for(dir: &Path, algo: &str, names: &[&str]) -> String {
    let mut a = vec!["hash", "-a", algo];
    a.extend(names);
    let o = run_cmd(common::palisade().args(&a).current_dir(dir), b"");
    assert_code(&o, 0);
    stdout(&o)
}

#[test]
fn check_ok_for_every_algorithm_and_sha256sum_lists() {
    let dir = common::tempdir();
    sample_files(dir.path());
    let names = ["empty", "abc", "small.txt", "big.bin"];
    for algo in ALGOS {
        let sums = sums_for(dir.path(), algo, &names);
        std::fs::write(dir.path().join("SUMS"), &sums).unwrap();
        let o = run_cmd(
            common::palisade()
                .args(["hash", "-a", algo, "--check", "SUMS"])
                .current_dir(dir.path()),
            b"",
        );
        assert_code(&o, 0);
        assert_eq!(
            stdout(&o),
            "empty: OK\nabc: OK\nsmall.txt: OK\nbig.bin: OK\n",
            "{algo}"
        );
    }
    // A list written by the real sha256sum, in binary (`*`) mode too.
    let theirs = run_cmd(
        Command::new("sha256sum")
            .arg("-b")
            .args(names)
            .current_dir(dir.path()),
        b"",
    );
    std::fs::write(dir.path().join("SUMS"), &theirs.stdout).unwrap();
    let o = run_cmd(
        common::palisade()
            .args(["hash", "--check", "SUMS"])
            .current_dir(dir.path()),
        b"",
    );
    assert_code(&o, 0);
    assert_eq!(stdout(&o).matches(": OK\n").count(), 4);
}

#[test]
fn check_escaped_names_from_sha256sum() {
    const NAMES: [&str; 4] = ["back\\slash", "new\nline", "cr\rname", "both\\and\nnl"];
    let dir = common::tempdir();
    for name in NAMES {
        std::fs::write(dir.path().join(name), b"x").unwrap();
    }
    let theirs = run_cmd(
        Command::new("sha256sum")
            .args(NAMES)
            .current_dir(dir.path()),
        b"",
    );
    std::fs::write(dir.path().join("SUMS"), &theirs.stdout).unwrap();
    let o = run_cmd(
        common::palisade()
            .args(["hash", "--check", "SUMS"])
            .current_dir(dir.path()),
        b"",
    );
    assert_code(&o, 0);
    let check = run_cmd(
        Command::new("sha256sum")
            .args(["--check", "SUMS"])
            .current_dir(dir.path()),
        b"",
    );
    assert_eq!(o.stdout, check.stdout);
}

#[test]
fn check_failed_missing_and_malformed() {
    let dir = common::tempdir();
    sample_files(dir.path());
    let good = sums_for(dir.path(), "sha256", &["abc"]);
    let zero = "0".repeat(64);
    let sums = format!("{good}{zero}  small.txt\n{zero}  gone.txt\nthis line is not a checksum\n");
    std::fs::write(dir.path().join("SUMS"), &sums).unwrap();
    let o = run_cmd(
        common::palisade()
            .args(["hash", "--check", "SUMS"])
            .current_dir(dir.path()),
        b"",
    );
    assert_code(&o, 1);
    assert_eq!(
        stdout(&o),
        "abc: OK\nsmall.txt: FAILED\ngone.txt: FAILED open or read\n"
    );
    assert_one_clear_line(&o, Some("SUMS"));
    let err = stderr(&o);
    assert!(
        err.contains("did NOT match") && err.contains("line 4"),
        "{err}"
    );

    // Each problem alone is enough to fail.
    for (content, verdict) in [
        (format!("{zero}  small.txt\n"), "small.txt: FAILED\n"),
        (
            format!("{zero}  gone.txt\n"),
            "gone.txt: FAILED open or read\n",
        ),
        (format!("{good}garbage\n"), "abc: OK\n"),
        // A digest of the wrong length for the algorithm is malformed, not a mismatch.
        (format!("{good}{}  abc\n", &zero[..40]), "abc: OK\n"),
        (format!("{good}\\{zero}  bad\\qescape\n"), "abc: OK\n"),
    ] {
        std::fs::write(dir.path().join("SUMS"), &content).unwrap();
        let o = run_cmd(
            common::palisade()
                .args(["hash", "--check", "SUMS"])
                .current_dir(dir.path()),
            b"",
        );
        assert_code(&o, 1);
        assert_eq!(stdout(&o), verdict, "{content}");
        assert_one_clear_line(&o, Some("SUMS"));
    }

    // A list in the wrong algorithm's length is all malformed: exit 1, not OK.
    std::fs::write(
        dir.path().join("SUMS"),
        sums_for(dir.path(), "md5", &["abc"]),
    )
    .unwrap();
    let o = run_cmd(
        common::palisade()
            .args(["hash", "--check", "SUMS"])
            .current_dir(dir.path()),
        b"",
    );
    assert_code(&o, 1);
}

#[test]
fn check_list_itself_missing_is_exit_2() {
    let dir = common::tempdir();
    let missing = dir.path().join("NOSUMS");
    let o = run(&["hash", "--check", path_str(&missing)], b"");
    assert_code(&o, 2);
    assert_one_clear_line(&o, Some("NOSUMS"));
    assert!(o.stdout.is_empty());
    let o = run(&["hash", "--check", path_str(dir.path())], b"");
    assert_code(&o, 2);
    assert_one_clear_line(&o, Some(path_str(dir.path())));
}

#[test]
fn check_list_from_stdin() {
    let dir = common::tempdir();
    sample_files(dir.path());
    let sums = sums_for(dir.path(), "blake3", &["abc", "big.bin"]);
    let o = run_cmd(
        common::palisade()
            .args(["hash", "-a", "blake3", "--check", "-"])
            .current_dir(dir.path()),
        sums.as_bytes(),
    );
    assert_code(&o, 0);
    assert_eq!(stdout(&o), "abc: OK\nbig.bin: OK\n");
}
