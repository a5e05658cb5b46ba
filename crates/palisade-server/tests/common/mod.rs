//! What the server's integration tests share: the real server in process (port 0, a fresh
//! data directory), a browser-like client with a hand-kept cookie jar, the outbox and a real
//! SMTP server (aiosmtpd from the test venv) to read mail from, and Python's `email` package
//! to parse what was sent.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use palisade_server::{AppState, Config, Flags, Server, Sources};
use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde_json::Value;

/// The login the TLS-mode SMTP test servers accept.
pub const SMTP_USER: &str = "mailer";
pub const SMTP_PASSWORD: &str = "s3cret pass@:/";

/// The real server, in process, on port 0, in its own data directory.
pub struct TestServer {
    pub dir: tempfile::TempDir,
    pub url: String,
    pub db: String,
    pub data_dir: PathBuf,
    /// A clone of what the handlers see, to act as a handler would (or move its clock).
    pub state: AppState,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// The configuration a test server starts from: HTTPS (or plain HTTP), port 0, two hashing
/// threads.
pub fn config_in(dir: &Path, insecure_http: bool) -> Config {
    let sources = Sources {
        flags: Flags {
            data_dir: Some(dir.to_path_buf()),
            listen: Some("127.0.0.1:0".into()),
            insecure_http,
            ..Flags::default()
        },
        env: BTreeMap::new(),
    };
    let mut config = Config::load(&sources).unwrap();
    config.password.hash_workers = 2;
    config
}

impl TestServer {
    /// Over HTTPS with the development CA.
    pub async fn start(tweak: impl FnOnce(&mut Config)) -> Self {
        Self::start_with(false, |c, _| tweak(c)).await
    }

    /// `tweak` also gets the data directory (to place files in it).
    pub async fn start_with(insecure_http: bool, tweak: impl FnOnce(&mut Config, &Path)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config_in(dir.path(), insecure_http);
        tweak(&mut config, dir.path());
        let db = config.database.expose().to_owned();
        let data_dir = config.data_dir.clone();
        let mut server = Server::bind(config).unwrap();
        server.prepare().await.unwrap();
        let state = server.state().expect("prepared").clone();
        let url = server.url();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            server
                .serve(async move {
                    let _ = rx.await;
                })
                .await
                .unwrap();
        });
        TestServer {
            dir,
            url,
            db,
            data_dir,
            state,
            stop: Some(tx),
            task: Some(task),
        }
    }

    pub fn browser(&self) -> Browser {
        Browser::new(&self.data_dir, &self.url)
    }

    /// A browser that has tried to sign in as `name`: with `signs_in`, the login must
    /// redirect (a session); without, it must fail with the form again (an inactive account).
    pub async fn browser_as(&self, name: &str, password: &str, signs_in: bool) -> Browser {
        let mut b = self.browser();
        let page = b.login(name, password, None).await;
        let expect = if signs_in {
            StatusCode::SEE_OTHER
        } else {
            StatusCode::OK
        };
        assert_eq!(page.status, expect, "login as {name}");
        b
    }

    pub fn outbox(&self) -> PathBuf {
        self.data_dir.join("outbox")
    }

    pub async fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(40), task)
                .await
                .expect("the server stops within 40 s")
                .unwrap();
        }
    }
}

/// A client with a hand-kept cookie jar that sends `Origin` like a browser posting a form.
pub struct Browser {
    pub client: reqwest::Client,
    pub url: String,
    pub cookies: BTreeMap<String, String>,
    pub origin: Option<String>,
}

pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }

    pub fn csrf_token(&self) -> String {
        let marker = "name=\"csrf_token\" value=\"";
        let start = self.body.find(marker).expect("no csrf_token in page") + marker.len();
        let end = self.body[start..].find('"').unwrap() + start;
        self.body[start..end].to_owned()
    }
}

pub fn encode(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                percent_encoding::utf8_percent_encode(k, percent_encoding::NON_ALPHANUMERIC),
                percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

impl Browser {
    /// A CSRF token for the forms this browser posts: its session's when signed in, else
    /// the anonymous one of the login form.
    pub async fn form_token(&mut self) -> String {
        let page = self.get("/accounts/profile/").await;
        if page.status == StatusCode::OK {
            page.csrf_token()
        } else {
            self.get("/accounts/login/").await.csrf_token()
        }
    }

    pub fn new(data_dir: &Path, url: &str) -> Self {
        let mut roots = rustls::RootCertStore::empty();
        // Over plain HTTP (insecure_http) there is no development CA.
        let ca = data_dir.join("tls/ca.pem");
        if ca.exists() {
            for cert in CertificateDer::pem_file_iter(ca).unwrap() {
                roots.add(cert.unwrap()).unwrap();
            }
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        Browser {
            client,
            url: url.to_owned(),
            cookies: BTreeMap::new(),
            origin: Some(url.to_owned()),
        }
    }

    pub fn session(&self) -> Option<String> {
        self.cookies.get("__Host-palisade_session").cloned()
    }

    pub fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub async fn send(&mut self, req: reqwest::RequestBuilder) -> Page {
        let req = if self.cookies.is_empty() {
            req
        } else {
            req.header(header::COOKIE, self.cookie_header())
        };
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        for set in headers.get_all(header::SET_COOKIE) {
            let set = set.to_str().unwrap();
            let (pair, attrs) = set.split_once(';').unwrap_or((set, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if attrs.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        let body = resp.text().await.unwrap();
        Page {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let req = self.client.get(format!("{}{path}", self.url));
        self.send(req).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let mut req = self
            .client
            .post(format!("{}{path}", self.url))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(encode(form));
        if let Some(origin) = &self.origin {
            req = req.header(header::ORIGIN, origin);
        }
        self.send(req).await
    }

    /// Loads the login form and submits it.
    pub async fn login(&mut self, username: &str, password: &str, next: Option<&str>) -> Page {
        let form = self.get("/accounts/login/").await;
        assert_eq!(form.status, StatusCode::OK);
        let token = form.csrf_token();
        let mut fields = vec![
            ("username", username),
            ("password", password),
            ("csrf_token", token.as_str()),
        ];
        if let Some(next) = next {
            fields.push(("next", next));
        }
        self.post("/accounts/login/", &fields).await
    }
}

// Mail
// ----------------------------------------------------------------------------------------

/// Parses .eml files with Python's standard `email` package (the modern policy, which
/// records every RFC 5322 / MIME defect it meets) and returns what it read as JSON.
pub const PARSE_EML: &str = r#"
import email, email.utils, json, sys
from email import policy
out = []
for path in sys.argv[1:]:
    with open(path, "rb") as f:
        m = email.message_from_binary_file(f, policy=policy.default)
    plain = m.get_body(preferencelist=("plain",))
    html = m.get_body(preferencelist=("html",))
    out.append({
        "from": str(m["From"]),
        "to": str(m["To"]),
        "subject": str(m["Subject"]),
        "date_ok": email.utils.parsedate_to_datetime(str(m["Date"])) is not None,
        "message_id": str(m["Message-ID"]),
        "auto_submitted": str(m["Auto-Submitted"]),
        "content_type": m.get_content_type(),
        "text": plain.get_content() if plain is not None else None,
        "html": html.get_content() if html is not None else None,
        "defects": [repr(d) for part in m.walk() for d in part.defects],
    })
json.dump(out, sys.stdout)
"#;

/// A tiny SMTP server on aiosmtpd. Prints its port, then writes each message it accepts as
/// N.eml plus N.json (envelope, TLS, login), the JSON last so its presence means "complete".
pub const SMTP_SERVER: &str = r#"
import asyncio, json, pathlib, ssl, sys
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

outdir = pathlib.Path(sys.argv[1])
mode = sys.argv[2]
cert, key = (sys.argv[3], sys.argv[4]) if len(sys.argv) > 4 else (None, None)
USER, PASSWORD = sys.argv[5].encode(), sys.argv[6].encode()
count = 0

class Handler:
    async def handle_DATA(self, server, session, envelope):
        global count
        count += 1
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "tls": server.transport.get_extra_info("ssl_object") is not None,
            "authenticated": bool(session.authenticated),
            "login": session.auth_data.decode() if isinstance(session.auth_data, bytes) else None,
        }
        (outdir / f"{count}.eml").write_bytes(envelope.original_content)
        (outdir / f"{count}.json.tmp").write_text(json.dumps(meta))
        (outdir / f"{count}.json.tmp").rename(outdir / f"{count}.json")
        return "250 OK"

def authenticator(server, session, envelope, mechanism, auth_data):
    ok = (isinstance(auth_data, LoginPassword)
          and auth_data.login == USER and auth_data.password == PASSWORD)
    # handled=False: aiosmtpd then answers 535 itself (its default, True, answers nothing).
    return AuthResult(success=ok, handled=False, auth_data=auth_data.login if ok else None)

async def main():
    ctx = None
    if cert:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(cert, key)
    def factory():
        if mode == "plain":
            return SMTP(Handler(), hostname="localhost")
        if mode == "starttls":
            return SMTP(Handler(), hostname="localhost", tls_context=ctx, require_starttls=True,
                        authenticator=authenticator, auth_require_tls=True)
        # Implicit TLS: the socket is TLS already, which aiosmtpd's auth_require_tls does
        # not know about (it only counts STARTTLS).
        return SMTP(Handler(), hostname="localhost", authenticator=authenticator,
                    auth_require_tls=False)
    server = await asyncio.get_running_loop().create_server(
        factory, "127.0.0.1", 0, ssl=ctx if mode == "implicit" else None)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()

asyncio.run(main())
"#;

pub fn venv_python() -> PathBuf {
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

pub fn files_with_suffix(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    files.sort();
    files
}

/// Waits until `dir` holds `n` files ending in `suffix`.
pub async fn wait_for_files(dir: &Path, suffix: &str, n: usize) -> Vec<PathBuf> {
    let start = Instant::now();
    loop {
        let files = files_with_suffix(dir, suffix);
        if files.len() >= n {
            return files;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "only {} of {n} {suffix} files in {}",
            files.len(),
            dir.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn parse_eml(files: &[PathBuf]) -> Vec<Value> {
    let out = Command::new("python3")
        .arg("-c")
        .arg(PARSE_EML)
        .args(files)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "python3: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let parsed: Value = serde_json::from_slice(&out.stdout).unwrap();
    parsed.as_array().unwrap().clone()
}

pub struct SmtpServer {
    child: Child,
    pub port: u16,
    pub received: PathBuf,
    /// The development PKI (`tls/ca.pem` is the CA to trust).
    pub pki: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SmtpServer {
    /// `mode`: plain, starttls or implicit. TLS modes use a certificate for 127.0.0.1 signed
    /// by the project's development CA.
    pub fn start(mode: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let received = dir.path().join("received");
        std::fs::create_dir(&received).unwrap();
        let pki = dir.path().join("pki");
        palisade_server::tls::server_config(&pki, "127.0.0.1".parse().unwrap()).unwrap();
        let tls = pki.join("tls");
        let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
        let mut child = Command::new(venv_python())
            .arg("-c")
            .arg(SMTP_SERVER)
            .arg(&received)
            .arg(mode)
            .arg(tls.join("server.pem"))
            .arg(tls.join("server-key.pem"))
            .arg(SMTP_USER)
            .arg(SMTP_PASSWORD)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start the aiosmtpd test server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().unwrap_or_else(|_| {
            let _ = child.kill();
            let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default();
            panic!("the SMTP server did not start (is aiosmtpd installed? run scripts/test-setup.sh): {log}")
        });
        Self {
            child,
            port,
            received,
            pki: tls.join("ca.pem"),
            _dir: dir,
        }
    }

    /// The messages received so far with their envelope/TLS/login record.
    pub async fn wait_for(&self, n: usize) -> Vec<(PathBuf, Value)> {
        let metas = wait_for_files(&self.received, ".json", n).await;
        metas
            .into_iter()
            .map(|m| {
                let meta: Value =
                    serde_json::from_str(&std::fs::read_to_string(&m).unwrap()).unwrap();
                (m.with_extension("eml"), meta)
            })
            .collect()
    }

    pub fn received_count(&self) -> usize {
        files_with_suffix(&self.received, ".json").len()
    }
}
