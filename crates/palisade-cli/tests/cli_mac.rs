//! `palisade mac`: every algorithm against Python's hmac / hashlib.blake2b(key=…), --verify
//! verdicts and exit codes, key limits.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::{assert_code, assert_one_clear_line, path_str, py, run, stderr, stdout};

const PY_MAC: &str = r#"
import sys, hmac, hashlib
algo, key_path, data_path = sys.argv[1:4]
key = open(key_path, "rb").read()
data = open(data_path, "rb").read()
if algo == "blake2b":
    print(hashlib.blake2b(data, key=key).hexdigest())
else:
    print(hmac.new(key, data, {"hmac-sha256": "sha256", "hmac-sha512": "sha512"}[algo]).hexdigest())
"#;

const ALGOS: [&str; 3] = ["hmac-sha256", "hmac-sha512", "blake2b"];

#[test]
fn every_algorithm_matches_python() {
    let dir = common::tempdir();
    let big: Vec<u8> = (0..(2 * 1024 * 1024 + 77u32))
        .map(|i| (i % 241) as u8)
        .collect();
    let datas: [&[u8]; 3] = [b"", b"what do ya want for nothing?", &big];
    // Empty, short, exactly one BLAKE2b block, and longer than an HMAC block.
    let keys: [Vec<u8>; 4] = [vec![], b"Jefe".to_vec(), vec![0xaa; 64], vec![0x0b; 131]];
    for (ki, key) in keys.iter().enumerate() {
        let kpath = dir.path().join(format!("key{ki}"));
        std::fs::write(&kpath, key).unwrap();
        for (di, data) in datas.iter().enumerate() {
            let dpath = dir.path().join(format!("data{di}"));
            std::fs::write(&dpath, data).unwrap();
            for algo in ALGOS {
                if algo == "blake2b" && key.len() > 64 {
                    continue;
                }
                let expected =
                    String::from_utf8(py(PY_MAC, &[algo, path_str(&kpath), path_str(&dpath)], b""))
                        .unwrap();
                let o = run(
                    &[
                        "mac",
                        "-a",
                        algo,
                        "--key-file",
                        path_str(&kpath),
                        path_str(&dpath),
                    ],
                    b"",
                );
                assert_code(&o, 0);
                assert_eq!(stdout(&o), expected, "{algo} key{ki} data{di}");
                // Same from stdin.
                let o = run(&["mac", "-a", algo, "--key-file", path_str(&kpath)], data);
                assert_eq!(stdout(&o), expected, "{algo} key{ki} data{di} stdin");
            }
        }
    }
}

#[test]
fn default_algorithm_is_hmac_sha256() {
    let dir = common::tempdir();
    let k = dir.path().join("k");
    std::fs::write(&k, b"key").unwrap();
    let a = run(&["mac", "--key-file", path_str(&k)], b"msg");
    let b = run(
        &["mac", "-a", "hmac-sha256", "--key-file", path_str(&k)],
        b"msg",
    );
    assert_code(&a, 0);
    assert_eq!(a.stdout, b.stdout);
    assert_eq!(stdout(&a).trim().len(), 64);
}

#[test]
fn verify_ok_failed_and_bad_hex() {
    let dir = common::tempdir();
    let k = dir.path().join("k");
    std::fs::write(&k, b"secret key").unwrap();
    for algo in ALGOS {
        let tag = stdout(&run(
            &["mac", "-a", algo, "--key-file", path_str(&k)],
            b"hello",
        ));
        let tag = tag.trim();

        let o = run(
            &[
                "mac",
                "-a",
                algo,
                "--key-file",
                path_str(&k),
                "--verify",
                tag,
            ],
            b"hello",
        );
        assert_code(&o, 0);
        assert_eq!(stdout(&o), "OK\n");
        // Upper-case hex is the same value.
        let upper = tag.to_uppercase();
        let o = run(
            &[
                "mac",
                "-a",
                algo,
                "--key-file",
                path_str(&k),
                "--verify",
                &upper,
            ],
            b"hello",
        );
        assert_code(&o, 0);

        // Wrong message, flipped tag digit, truncated tag, empty tag: FAILED, exit 1.
        let mut flipped = tag.to_owned().into_bytes();
        flipped[0] = if flipped[0] == b'0' { b'1' } else { b'0' };
        let flipped = String::from_utf8(flipped).unwrap();
        for (msg, t) in [
            (&b"hellO"[..], tag),
            (&b"hello"[..], flipped.as_str()),
            (&b"hello"[..], &tag[..32]),
            (&b"hello"[..], ""),
        ] {
            let o = run(
                &["mac", "-a", algo, "--key-file", path_str(&k), "--verify", t],
                msg,
            );
            assert_code(&o, 1);
            assert_eq!(stdout(&o), "FAILED\n");
            assert_one_clear_line(&o, None);
        }

        for bad in ["zz", "abc", "not hex at all"] {
            let o = run(
                &[
                    "mac",
                    "-a",
                    algo,
                    "--key-file",
                    path_str(&k),
                    "--verify",
                    bad,
                ],
                b"hello",
            );
            assert_code(&o, 2);
            assert_one_clear_line(&o, Some("--verify"));
            assert!(o.stdout.is_empty());
        }
    }
}

#[test]
fn blake2b_key_too_long_is_exit_2() {
    let dir = common::tempdir();
    let k = dir.path().join("long.key");
    std::fs::write(&k, [1u8; 65]).unwrap();
    let o = run(&["mac", "-a", "blake2b", "--key-file", path_str(&k)], b"x");
    assert_code(&o, 2);
    assert_one_clear_line(&o, Some("long.key"));
    assert!(stderr(&o).contains("64"), "{}", stderr(&o));
    // HMAC takes it.
    let o = run(
        &["mac", "-a", "hmac-sha512", "--key-file", path_str(&k)],
        b"x",
    );
    assert_code(&o, 0);
}

#[test]
fn missing_key_or_input_names_the_file() {
    let dir = common::tempdir();
    let k = dir.path().join("k");
    std::fs::write(&k, b"key").unwrap();
    let o = run(
        &["mac", "--key-file", path_str(&dir.path().join("nokey"))],
        b"x",
    );
    assert_code(&o, 2);
    assert_one_clear_line(&o, Some("nokey"));
    let o = run(
        &[
            "mac",
            "--key-file",
            path_str(&k),
            path_str(&dir.path().join("nodata")),
        ],
        b"",
    );
    assert_code(&o, 2);
    assert_one_clear_line(&o, Some("nodata"));
    let o = run(
        &["mac", "--key-file", path_str(&k), path_str(dir.path())],
        b"",
    );
    assert_code(&o, 2);
    assert_one_clear_line(&o, Some(path_str(dir.path())));
}
