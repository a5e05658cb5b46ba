//! `palisade drop rotate-keys` against a fresh data directory, through the real binary: the
//! first run makes the drop keys, the next makes new current ones and keeps the old ones
//! active, `keys list` shows them, the audit log records it, and another deployment's master
//! key changes nothing. With `palisade serve` running on the same data directory, the
//! served key changes to the one the CLI made, and the first key is made by the first
//! request, not at start-up.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::path::Path;
use std::process::Output;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// The drop's admin commands on the shared fresh data directory.
impl DataDir {
    fn run_with_master(&self, master: &str, args: &[&str]) -> Output {
        run_cmd(self.cmd(args).env("PALISADE_MASTER_KEY", master), b"")
    }

    /// `drop rotate-keys`: (encryption kid, receipt kid), checked for shape.
    fn rotate(&self) -> (String, String) {
        let out = self.ok(&["drop", "rotate-keys"]);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "{out}");
        let kid = |line: &str, purpose: &str| {
            let (name, kid) = line.split_once(' ').unwrap();
            assert_eq!(name, purpose, "{out}");
            // RFC 7638 thumbprint: SHA-256, base64url without padding.
            assert_eq!(kid.len(), 43, "{kid:?}");
            assert!(
                kid.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "{kid:?}"
            );
            kid.to_owned()
        };
        (
            kid(lines[0], "drop-encryption"),
            kid(lines[1], "drop-receipt"),
        )
    }

    fn keys(&self) -> Vec<(String, String, String)> {
        let text = self.ok(&["keys", "list", "--json"]);
        let Value::Array(keys) = serde_json::from_str(&text).unwrap() else {
            panic!("not an array: {text}")
        };
        keys.iter()
            .map(|k| {
                (
                    k["purpose"].as_str().unwrap().to_owned(),
                    k["kid"].as_str().unwrap().to_owned(),
                    k["state"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }
}

/// The drop keys of a listing (a started server has also made its account-token key).
fn drop_keys(env: &DataDir) -> Vec<(String, String, String)> {
    env.keys()
        .into_iter()
        .filter(|(purpose, _, _)| purpose.starts_with("drop-"))
        .collect()
}

fn key(purpose: &str, kid: &str, state: &str) -> (String, String, String) {
    (purpose.to_owned(), kid.to_owned(), state.to_owned())
}

#[test]
fn rotate_keys_makes_new_current_keys_and_keeps_the_old() {
    let env = DataDir::new();
    assert!(env.keys().is_empty());
    let (enc1, rec1) = env.rotate();
    assert_eq!(
        env.keys(),
        [
            key("drop-encryption", &enc1, "current"),
            key("drop-receipt", &rec1, "current"),
        ]
    );
    let (enc2, rec2) = env.rotate();
    assert_ne!(enc2, enc1);
    assert_ne!(rec2, rec1);
    assert_eq!(
        env.keys(),
        [
            key("drop-encryption", &enc2, "current"),
            key("drop-encryption", &enc1, "previous"),
            key("drop-receipt", &rec2, "current"),
            key("drop-receipt", &rec1, "previous"),
        ]
    );
    // The table shows them too.
    let table = env.ok(&["keys", "list"]);
    assert_eq!(table.lines().count(), 5, "{table}");
    assert!(table.contains(&enc1) && table.contains(&rec2), "{table}");

    // Each rotation is one audit record naming both new kids.
    let audit = env.ok(&["audit", "tail", "--json"]);
    let Value::Array(records) = serde_json::from_str(&audit).unwrap() else {
        panic!("{audit}")
    };
    let rotations: Vec<&Value> = records
        .iter()
        .filter(|r| r["action"] == "drop.rotate-keys")
        .collect();
    assert_eq!(rotations.len(), 2, "{audit}");
    let last = rotations[1].to_string();
    assert!(last.contains(&enc2) && last.contains(&rec2), "{last}");
}

#[test]
fn another_master_key_rotates_nothing() {
    let env = DataDir::new();
    let (enc, rec) = env.rotate();
    let other = {
        let out = run(&["fernet", "keygen"], b"");
        assert_code(&out, 0);
        stdout(&out).trim().to_owned()
    };
    let out = env.run_with_master(&other, &["drop", "rotate-keys"]);
    assert_code(&out, 2);
    assert_one_clear_line(&out, Some("master key does not match the database"));
    assert!(!stderr(&out).contains(&other));
    assert!(stdout(&out).is_empty());
    assert_eq!(
        env.keys(),
        [
            key("drop-encryption", &enc, "current"),
            key("drop-receipt", &rec, "current"),
        ]
    );
}

/// reqwest over TLS, trusting only the server's development CA.
fn client(dir: &Path) -> reqwest::Client {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(dir.join("tls/ca.pem")).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

async fn served_kid(client: &reqwest::Client, url: &str, path: &str) -> String {
    let resp = client.get(format!("{url}{path}")).send().await.unwrap();
    assert_eq!(resp.status(), reqwest::StatusCode::OK);
    let body: Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
    body["kid"].as_str().unwrap().to_owned()
}

#[test]
fn the_server_serves_what_rotate_keys_made() {
    let env = DataDir::new();
    let started = Instant::now();
    let server = start(&mut serve_cmd(&env.path));
    // No RSA key generation before the server answers.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "start took {:?}",
        started.elapsed()
    );
    assert!(drop_keys(&env).is_empty(), "no drop key made at start-up");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let http = client(&env.path);
    let first = rt.block_on(served_kid(&http, &server.url, "/api/drop/public-key"));
    assert_eq!(drop_keys(&env), [key("drop-encryption", &first, "current")]);

    let (enc, rec) = env.rotate();
    assert_ne!(enc, first);
    assert_eq!(
        rt.block_on(served_kid(&http, &server.url, "/api/drop/public-key")),
        enc,
        "a rotation shows on the next request"
    );
    assert_eq!(
        rt.block_on(served_kid(&http, &server.url, "/api/drop/receipt-key")),
        rec
    );
    assert_eq!(
        drop_keys(&env),
        [
            key("drop-encryption", &enc, "current"),
            key("drop-encryption", &first, "previous"),
            key("drop-receipt", &rec, "current"),
        ]
    );
    drop(server);
}
