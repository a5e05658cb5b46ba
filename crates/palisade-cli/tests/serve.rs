//! `palisade serve` driven as a user would: the real binary on port 0 with a fresh data
//! directory, over real TLS that trusts only the development CA it created.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{
    assert_code, assert_one_clear_line, clean_palisade, mode, path_str, serve_cmd, start, stdout,
    tempdir,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

const CSP: &str = "default-src 'self'; script-src 'self'; object-src 'none'; \
                   base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

fn ca_path(dir: &Path) -> PathBuf {
    dir.join("tls/ca.pem")
}

/// A rustls client configuration that trusts only the server's development CA.
fn tls_config(
    dir: &Path,
    versions: &[&'static rustls::SupportedProtocolVersion],
    alpn: &[&[u8]],
) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_path(dir)).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config
}

/// reqwest over TLS with the development CA; `http1` forces HTTP/1.1 (to send a raw Host).
fn client(dir: &Path, http1: bool) -> reqwest::Client {
    let alpn: &[&[u8]] = if http1 {
        &[b"http/1.1"]
    } else {
        &[b"h2", b"http/1.1"]
    };
    let config = tls_config(dir, rustls::ALL_VERSIONS, alpn);
    let mut builder = reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .no_proxy()
        .timeout(Duration::from_secs(20));
    if http1 {
        builder = builder.http1_only();
    }
    builder.build().unwrap()
}

fn plain_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[track_caller]
fn assert_security_headers(resp: &reqwest::Response, https: bool) {
    let h = resp.headers();
    let get = |name: &str| h.get(name).map(|v| v.to_str().unwrap().to_owned());
    let status = resp.status();
    assert_eq!(
        get("content-security-policy").as_deref(),
        Some(CSP),
        "{status}"
    );
    assert_eq!(get("x-frame-options").as_deref(), Some("DENY"), "{status}");
    assert_eq!(
        get("x-content-type-options").as_deref(),
        Some("nosniff"),
        "{status}"
    );
    assert_eq!(
        get("referrer-policy").as_deref(),
        Some("same-origin"),
        "{status}"
    );
    assert_eq!(
        get("cross-origin-opener-policy").as_deref(),
        Some("same-origin"),
        "{status}"
    );
    let hsts = get("strict-transport-security");
    if https {
        let hsts = hsts.unwrap_or_else(|| panic!("no HSTS on {status}"));
        assert!(hsts.starts_with("max-age="), "{hsts}");
    } else {
        assert_eq!(hsts, None, "HSTS over plain HTTP on {status}");
    }
}

#[test]
fn first_start_serves_https_with_headers_and_private_files() {
    let tmp = tempdir();
    let dir = tmp.path().join("data");
    let server = start(&mut serve_cmd(&dir));
    assert_eq!(
        server.url,
        format!("https://127.0.0.1:{}", server.addr.port())
    );
    assert_ne!(server.addr.port(), 0);

    // Data directory and keys are private; the CA certificate is what users trust.
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("tls")), 0o700);
    assert_eq!(mode(&dir.join("tls/ca-key.pem")), 0o600);
    assert_eq!(mode(&dir.join("tls/server-key.pem")), 0o600);
    assert!(dir.join("tls/server.pem").is_file());

    let rt = runtime();
    rt.block_on(async {
        let c = client(&dir, false);
        let resp = c
            .get(format!("{}/healthz", server.url))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.version(), reqwest::Version::HTTP_2, "ALPN h2");
        assert_security_headers(&resp, true);
        assert_eq!(resp.text().await.unwrap(), "ok");

        let resp = c
            .get(format!("{}/readyz", server.url))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);

        let resp = c.get(format!("{}/", server.url)).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_security_headers(&resp, true);
        let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(ct.starts_with("text/html"), "{ct}");
        let body = resp.text().await.unwrap();
        assert!(
            body.contains("palisade user create admin --email you@example.com --superuser"),
            "{body}"
        );
        assert!(body.contains("href=\"/accounts/login/\""), "{body}");
        assert!(!body.contains("<script"), "no inline script: {body}");

        let resp = c
            .get(format!("{}/no/such/page", server.url))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 404);
        assert_security_headers(&resp, true);
        assert!(resp.text().await.unwrap().contains("Not Found"));

        // A method the route does not take: axum's bare 405 gets words and headers too.
        let resp = c
            .delete(format!("{}/healthz", server.url))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 405);
        assert_security_headers(&resp, true);
        assert!(!resp.text().await.unwrap().is_empty());
    });
    assert!(!server.stderr().contains("panicked"), "{}", server.stderr());
}

#[test]
fn foreign_host_is_refused_with_headers() {
    let tmp = tempdir();
    let dir = tmp.path().to_owned();
    let server = start(&mut serve_cmd(&dir));
    let rt = runtime();
    rt.block_on(async {
        let c = client(&dir, true);
        let url = format!("{}/healthz", server.url);
        let resp = c
            .get(&url)
            .header("host", "evil.example")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400);
        assert_security_headers(&resp, true);
        let body = resp.text().await.unwrap();
        assert!(body.contains("Host"), "plain explanation: {body}");

        for ok in ["localhost:9", "LOCALHOST", "[::1]:8443", "127.0.0.1"] {
            let resp = c.get(&url).header("host", ok).send().await.unwrap();
            assert_eq!(resp.status(), 200, "Host {ok}");
        }
        for bad in ["localhost.evil.example", "[::2]:8443", "127.0.0.1.nip.io"] {
            let resp = c.get(&url).header("host", bad).send().await.unwrap();
            assert_eq!(resp.status(), 400, "Host {bad}");
        }
    });
}

/// A minimal ClientHello offering only `version` (no supported_versions extension), one
/// ECDHE-ECDSA suite, P-256 and ecdsa_secp256r1_sha256: what a TLS 1.1 or 1.2 client sends.
fn client_hello(version: [u8; 2], suite: [u8; 2]) -> Vec<u8> {
    let mut ext = Vec::new();
    ext.extend_from_slice(&[0x00, 0x0a, 0x00, 0x04, 0x00, 0x02, 0x00, 0x17]); // groups: P-256
    ext.extend_from_slice(&[0x00, 0x0b, 0x00, 0x02, 0x01, 0x00]); // point formats
    ext.extend_from_slice(&[0x00, 0x0d, 0x00, 0x04, 0x00, 0x02, 0x04, 0x03]); // sig algs
    let mut body = Vec::new();
    body.extend_from_slice(&version);
    body.extend_from_slice(&[7u8; 32]); // random
    body.push(0); // session id
    body.extend_from_slice(&[0x00, 0x02]);
    body.extend_from_slice(&suite);
    body.extend_from_slice(&[0x01, 0x00]); // null compression
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);
    let mut hs = vec![0x01];
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&body);
    let mut rec = vec![0x16, 0x03, 0x01];
    rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    rec.extend_from_slice(&hs);
    rec
}

/// The first byte of the server's answer to `hello`: 0x16 handshake, 0x15 alert, None closed.
fn first_reply_byte(addr: SocketAddr, hello: &[u8]) -> Option<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(hello).unwrap();
    let mut b = [0u8; 1];
    match s.read(&mut b) {
        Ok(1) => Some(b[0]),
        _ => None,
    }
}

/// Completes a handshake with a rustls client limited to `versions`; returns the negotiated
/// version and ALPN protocol.
fn handshake(
    dir: &Path,
    addr: SocketAddr,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> (rustls::ProtocolVersion, Option<Vec<u8>>) {
    let config = Arc::new(tls_config(dir, versions, &[b"h2", b"http/1.1"]));
    let name = ServerName::try_from("localhost").unwrap();
    let mut conn = rustls::ClientConnection::new(config, name).unwrap();
    let mut sock = TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    while conn.is_handshaking() {
        conn.complete_io(&mut sock).unwrap();
    }
    (
        conn.protocol_version().unwrap(),
        conn.alpn_protocol().map(<[u8]>::to_vec),
    )
}

#[test]
fn only_tls_1_2_and_1_3_are_spoken() {
    let tmp = tempdir();
    let dir = tmp.path().to_owned();
    let server = start(&mut serve_cmd(&dir));

    let (v, alpn) = handshake(&dir, server.addr, &[&rustls::version::TLS13]);
    assert_eq!(v, rustls::ProtocolVersion::TLSv1_3);
    assert_eq!(alpn.as_deref(), Some(&b"h2"[..]));
    let (v, _) = handshake(&dir, server.addr, &[&rustls::version::TLS12]);
    assert_eq!(v, rustls::ProtocolVersion::TLSv1_2);

    // ECDHE-ECDSA-AES128-GCM-SHA256 in a TLS 1.2 hello gets a ServerHello (control)…
    let tls12 = client_hello([0x03, 0x03], [0xc0, 0x2b]);
    assert_eq!(first_reply_byte(server.addr, &tls12), Some(0x16));
    // …while TLS 1.1 and 1.0 hellos (ECDHE-ECDSA-AES128-SHA) get an alert or a closed door.
    for version in [[0x03, 0x02], [0x03, 0x01]] {
        let hello = client_hello(version, [0xc0, 0x09]);
        let reply = first_reply_byte(server.addr, &hello);
        assert!(
            reply == Some(0x15) || reply.is_none(),
            "TLS {version:?} hello answered with {reply:?}"
        );
    }
}

#[test]
fn second_start_reuses_the_ca_and_starts_fast() {
    let tmp = tempdir();
    let dir = tmp.path().to_owned();
    let mut first = start(&mut serve_cmd(&dir));
    let ca = std::fs::read(ca_path(&dir)).unwrap();
    let leaf = std::fs::read(dir.join("tls/server.pem")).unwrap();
    first.sigterm();
    assert_eq!(first.wait_exit(Duration::from_secs(10)), 0);

    let began = Instant::now();
    let second = start(&mut serve_cmd(&dir));
    let rt = runtime();
    rt.block_on(async {
        let resp = client(&dir, false)
            .get(format!("{}/healthz", second.url))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    });
    let took = began.elapsed();
    assert_eq!(std::fs::read(ca_path(&dir)).unwrap(), ca, "same CA");
    assert_eq!(
        std::fs::read(dir.join("tls/server.pem")).unwrap(),
        leaf,
        "same leaf"
    );
    // The contract is ≤ 1 s; a loaded two-core CI machine gets some slack.
    assert!(took < Duration::from_secs(2), "second start took {took:?}");
}

#[test]
fn sigterm_lets_an_in_flight_request_finish_then_exits_0() {
    let tmp = tempdir();
    let dir = tmp.path().to_owned();
    let mut cmd = serve_cmd(&dir);
    cmd.env("PALISADE_TEST_ROUTES", "1");
    let mut server = start(&mut cmd);
    let rt = runtime();
    let c = client(&dir, false);
    let url = format!("{}/__test/slow/1500", server.url);
    let slow = rt.spawn(async move {
        let resp = c.get(url).send().await.unwrap();
        (resp.status(), resp.text().await.unwrap())
    });
    // Let the request reach the handler, then ask the server to stop.
    std::thread::sleep(Duration::from_millis(500));
    let asked = Instant::now();
    server.sigterm();
    let (status, body) = rt.block_on(slow).unwrap();
    assert_eq!(status, 200);
    assert_eq!(body, "slow ok");
    let code = server.wait_exit(Duration::from_secs(10));
    assert_eq!(code, 0, "stderr:\n{}", server.stderr());
    assert!(
        asked.elapsed() < Duration::from_secs(8),
        "{:?}",
        asked.elapsed()
    );
    assert!(
        TcpStream::connect_timeout(&server.addr, Duration::from_secs(2)).is_err(),
        "port still open after exit"
    );
}

#[test]
fn sigint_on_an_idle_server_exits_0() {
    let tmp = tempdir();
    let mut server = start(&mut serve_cmd(tmp.path()));
    let ok = Command::new("kill")
        .args(["-INT", &server.child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    assert_eq!(server.wait_exit(Duration::from_secs(5)), 0);
}

#[test]
fn unknown_config_key_is_one_clear_line() {
    let tmp = tempdir();
    let dir = tmp.path().to_owned();
    std::fs::write(
        dir.join("palisade.toml"),
        "listen = \"127.0.0.1:0\"\nlisten_backlog = 5\n",
    )
    .unwrap();
    let out = serve_cmd(&dir).output().unwrap();
    assert_code(&out, 2);
    assert_one_clear_line(&out, Some("listen_backlog"));
    assert!(
        common::stderr(&out).contains("palisade.toml"),
        "names the file"
    );
    assert_eq!(stdout(&out), "", "nothing announced");

    // An explicit --config that does not exist is named too.
    let missing = dir.join("nope.toml");
    let out = serve_cmd(&dir)
        .args(["--config", path_str(&missing)])
        .output()
        .unwrap();
    assert_code(&out, 2);
    assert_one_clear_line(&out, Some("nope.toml"));
}

#[test]
fn config_file_limits_apply() {
    let tmp = tempdir();
    let dir = tmp.path().to_owned();
    std::fs::write(
        dir.join("palisade.toml"),
        "[limits]\nbody_bytes = 1000\nheader_bytes = 8192\n",
    )
    .unwrap();
    let server = start(&mut serve_cmd(&dir));
    let rt = runtime();
    rt.block_on(async {
        let c = client(&dir, true);
        let resp = c
            .post(format!("{}/healthz", server.url))
            .body(vec![b'x'; 2000])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 413);
        assert_security_headers(&resp, true);
        assert!(!resp.text().await.unwrap().is_empty(), "413 says why");

        let resp = c
            .get(format!("{}/healthz", server.url))
            .header("x-padding", "a".repeat(10_000))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 431, "request head over header_bytes");
    });
}

#[test]
fn insecure_http_serves_plain_http_without_hsts() {
    let tmp = tempdir();
    let dir = tmp.path().to_owned();
    // Global option before the subcommand, serve options after.
    let mut cmd = clean_palisade();
    cmd.args([
        "--data-dir",
        path_str(&dir),
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--insecure-http",
        "--trusted-proxy",
        "10.0.0.0/8",
    ]);
    let server = start(&mut cmd);
    assert_eq!(
        server.url,
        format!("http://127.0.0.1:{}", server.addr.port())
    );
    assert!(!dir.join("tls").exists(), "no certificates for plain HTTP");
    let rt = runtime();
    rt.block_on(async {
        let c = plain_client();
        for path in ["/healthz", "/", "/missing"] {
            let resp = c.get(format!("{}{path}", server.url)).send().await.unwrap();
            assert_security_headers(&resp, false);
        }
        // A forwarded "https" from an untrusted peer (127.0.0.1 is not in 10/8) is ignored.
        let resp = c
            .get(format!("{}/healthz", server.url))
            .header("x-forwarded-proto", "https")
            .send()
            .await
            .unwrap();
        assert_security_headers(&resp, false);
    });
}

#[test]
fn trusted_proxy_requires_insecure_http() {
    let tmp = tempdir();
    let out = serve_cmd(tmp.path())
        .args(["--trusted-proxy", "10.0.0.0/8"])
        .output()
        .unwrap();
    assert_code(&out, 2);
    assert!(common::stderr(&out).contains("--insecure-http"));
}

#[test]
fn listen_precedence_file_env_flag() {
    let tmp = tempdir();
    let dir = tmp.path().to_owned();
    std::fs::write(dir.join("palisade.toml"), "listen = \"127.0.0.3:0\"\n").unwrap();
    let base = || {
        let mut cmd = clean_palisade();
        cmd.args(["serve", "--data-dir", path_str(&dir)]);
        cmd
    };

    // File alone.
    let s = start(&mut base());
    assert_eq!(s.addr.ip().to_string(), "127.0.0.3");
    drop(s);

    // The environment beats the file; the certificate covers the new listen address.
    let mut cmd = base();
    cmd.env("PALISADE_LISTEN", "127.0.0.2:0");
    let s = start(&mut cmd);
    assert_eq!(s.addr.ip().to_string(), "127.0.0.2");
    let rt = runtime();
    rt.block_on(async {
        let resp = client(&dir, false)
            .get(format!("{}/healthz", s.url))
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status(),
            200,
            "listen host is allowed and in the certificate"
        );
    });
    drop(s);

    // The flag beats the environment.
    let mut cmd = base();
    cmd.env("PALISADE_LISTEN", "127.0.0.2:0")
        .args(["--listen", "127.0.0.1:0"]);
    let s = start(&mut cmd);
    assert_eq!(s.addr.ip().to_string(), "127.0.0.1");
    drop(s);

    // A bad environment value is one clear line naming the variable.
    let mut cmd = base();
    cmd.env("PALISADE_LISTEN", "nowhere");
    let out = cmd.output().unwrap();
    assert_code(&out, 2);
    assert_one_clear_line(&out, Some("PALISADE_LISTEN"));
}

#[test]
fn data_dir_from_environment_and_crypto_never_creates_it() {
    let tmp = tempdir();
    let env_dir = tmp.path().join("from-env");
    let mut cmd = clean_palisade();
    cmd.env("PALISADE_DATA_DIR", &env_dir)
        .args(["serve", "--listen", "127.0.0.1:0"]);
    let s = start(&mut cmd);
    assert!(env_dir.join("tls/ca.pem").is_file());
    drop(s);

    // The crypto toolkit accepts the global options and ignores them.
    let never = tmp.path().join("never");
    let out = clean_palisade()
        .current_dir(tmp.path())
        .args(["random", "-n", "4", "--hex", "--data-dir", path_str(&never)])
        .output()
        .unwrap();
    assert_code(&out, 0);
    assert!(!never.exists());
    assert!(!tmp.path().join("palisade-data").exists());
}
