//! Outgoing email: activation links, password-reset links and account notices.
//!
//! # Design
//!
//! A request never waits for mail. [`Mailer::send`] builds the RFC 5322 message at once (so
//! a bad address or a subject carrying a line break is refused to the caller, synchronously)
//! and puts it on a bounded queue; it never blocks and never awaits. When the queue is full
//! the message is dropped, logged and reported, and the caller gets [`MailError::QueueFull`];
//! the page must look the same either way, so nothing tells an attacker whether an address
//! exists or a mail server is down.
//!
//! One background task per [`Mailer`] takes messages off the queue and delivers up to
//! [`MailConfig::concurrency`] of them at a time, each retried with exponential backoff
//! ([`RetryPolicy`]). A message whose delivery is refused for good (an SMTP 5xx answer), runs
//! out of attempts, is dropped from a full queue, or is still undelivered when the shutdown
//! deadline passes is logged with its Message-ID and recipient and handed to the
//! [`FailureHook`], which is how the caller records it in the audit log. Bodies are never
//! logged: they carry single-use tokens.
//!
//! Two transports ([`MailTransport`]):
//! - the **outbox** (default): each message becomes a new `<UTC timestamp>-<random>.eml` file
//!   in `DATA_DIR/outbox/` (directory created 0700, files 0600, since the links in them are
//!   credentials). A file is written under a hidden temporary name in the same directory,
//!   synced, then renamed, so a reader (a developer, a test, a script that forwards mail)
//!   never sees a partial message. lettre's own file transport is not used: it writes in
//!   place and with the process umask.
//! - **SMTP** through lettre ([`SmtpUrl`]): `smtp://[user[:password]@]host[:port]` requires
//!   STARTTLS (default port 587; a server that does not offer it gets nothing, not even the
//!   credentials), `smtps://…` is implicit TLS (port 465). `smtp://host:port?tls=none` is
//!   plain SMTP for a relay on the same machine or a test server, and refuses credentials.
//!   `ca_file=PATH` (a PEM bundle) replaces the system roots for the server's certificate.
//!   TLS is rustls with the aws-lc-rs provider, like the rest of the server.
//!
//! Credentials in an SMTP URL are secrets: [`SmtpUrl`]'s `Debug` and `Display` show
//! `smtp://user:***@host:587`, errors and logs only ever use that form, and lettre never sees
//! the URL at all.
//!
//! [`Mailer::shutdown`] stops taking new messages, lets queued and in-flight deliveries
//! finish until a deadline, then reports whatever is left as
//! [`FailureReason::Shutdown`]. Dropping every handle without calling it lets the task
//! finish the queue on its own (bounded by the retry policy) for as long as the runtime
//! lives.

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use lettre::address::Envelope;
use lettre::message::MultiPart;
use lettre::message::header::{self, HeaderName, HeaderValue};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use percent_encoding::percent_decode_str;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::config::describe_io;

pub use lettre::message::Mailbox;

/// The outbox directory's name inside the data directory.
pub const OUTBOX_DIR_NAME: &str = "outbox";
/// The sender when none is configured.
pub const DEFAULT_FROM: &str = "Palisade <palisade@localhost>";
/// Messages that may wait for delivery before new ones are dropped.
pub const DEFAULT_QUEUE_CAPACITY: usize = 1_000;
/// Deliveries in progress at once (connections to the SMTP server, or outbox writes).
pub const DEFAULT_CONCURRENCY: usize = 4;
/// Longest one SMTP command may take (connect, TLS, each command, the data).
pub const DEFAULT_SMTP_TIMEOUT: Duration = Duration::from_secs(30);
/// Subjects are ours ("Activate your account"); a longer one is a bug, not a message.
const SUBJECT_MAX_CHARS: usize = 255;
const SUBMISSION_PORT: u16 = 587;
const SUBMISSIONS_PORT: u16 = 465;
const SMTP_PORT: u16 = 25;

/// RFC 3834: tells vacation responders and mailing-list software not to answer.
const AUTO_SUBMITTED: HeaderName = HeaderName::new_from_ascii_str("Auto-Submitted");

// ---------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------

/// A mail set-up problem, reported at start-up. Never contains an SMTP password.
#[derive(Debug, thiserror::Error)]
pub enum MailConfigError {
    #[error("SMTP URL: {0}")]
    SmtpUrl(String),
    #[error("{}: {reason}", path.display())]
    File { path: PathBuf, reason: String },
    #[error("mail sender address: {0}")]
    Sender(String),
    #[error("SMTP TLS set-up: {0}")]
    Tls(String),
    #[error("the mailer must be started inside a Tokio runtime")]
    NoRuntime,
}

fn url_error(reason: impl Into<String>) -> MailConfigError {
    MailConfigError::SmtpUrl(reason.into())
}

/// How the connection to the SMTP server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// `smtp://`: plain connection upgraded with STARTTLS before anything else is sent; a
    /// server that does not offer STARTTLS gets no mail (no downgrade).
    StartTls,
    /// `smtps://`: TLS from the first byte.
    ImplicitTls,
    /// `smtp://…?tls=none`: no encryption, for a relay on the same host or a test server.
    /// Credentials are refused in this mode.
    Plain,
}

#[derive(Clone, PartialEq, Eq)]
struct SmtpLogin {
    user: String,
    password: Option<String>,
}

/// A parsed SMTP server address: `smtp://[user[:password]@]host[:port][?tls=none][&ca_file=PATH]`
/// or `smtps://…`. User and password are percent-decoded (write `@` in a user name as
/// `%40`). `Debug` and `Display` mask the password; the one way to it is handing the URL
/// to [`Mailer::start`].
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpUrl {
    host: String,
    port: u16,
    security: SmtpSecurity,
    login: Option<SmtpLogin>,
    ca_file: Option<PathBuf>,
}

impl SmtpUrl {
    /// Parses and checks an SMTP URL. Error messages never quote the URL (it may hold a
    /// password).
    pub fn parse(text: &str) -> Result<Self, MailConfigError> {
        let url = url::Url::parse(text.trim()).map_err(|e| url_error(e.to_string()))?;
        let mut security = match url.scheme() {
            "smtp" => SmtpSecurity::StartTls,
            "smtps" => SmtpSecurity::ImplicitTls,
            other => {
                return Err(url_error(format!(
                    "unsupported scheme {other:?}: use smtp:// (STARTTLS) or smtps:// (implicit TLS)"
                )));
            }
        };
        let host = match url.host() {
            Some(url::Host::Domain(name)) => {
                let name = name.to_ascii_lowercase();
                let valid = !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
                if !valid {
                    return Err(url_error("the host name is not valid"));
                }
                name
            }
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            None => return Err(url_error("no host")),
        };
        if !(url.path().is_empty() || url.path() == "/") {
            return Err(url_error("an SMTP URL has no path"));
        }
        if url.fragment().is_some() {
            return Err(url_error("an SMTP URL has no #fragment"));
        }

        let mut ca_file = None;
        let mut seen_tls = false;
        for (key, value) in url.query_pairs() {
            match key.as_ref() {
                "tls" if !seen_tls => {
                    seen_tls = true;
                    security = match (security, value.as_ref()) {
                        (SmtpSecurity::StartTls, "starttls") => SmtpSecurity::StartTls,
                        (SmtpSecurity::StartTls, "none") => SmtpSecurity::Plain,
                        (SmtpSecurity::StartTls, _) => {
                            return Err(url_error("tls= must be starttls or none"));
                        }
                        _ => {
                            return Err(url_error(
                                "tls= applies to smtp:// only; smtps:// is always implicit TLS",
                            ));
                        }
                    };
                }
                "ca_file" if ca_file.is_none() => {
                    if value.is_empty() {
                        return Err(url_error("ca_file= is empty"));
                    }
                    ca_file = Some(PathBuf::from(value.as_ref()));
                }
                "tls" | "ca_file" => return Err(url_error(format!("{key}= given twice"))),
                other => {
                    return Err(url_error(format!(
                        "unknown parameter {other:?} (known: tls, ca_file)"
                    )));
                }
            }
        }

        let user = decode_userinfo(url.username(), "user name")?;
        let password = url
            .password()
            .map(|p| decode_userinfo(p, "password"))
            .transpose()?
            .filter(|p| !p.is_empty());
        let login = match (user.is_empty(), password) {
            (true, None) => None,
            (true, Some(_)) => return Err(url_error("a password needs a user name")),
            (false, password) => Some(SmtpLogin { user, password }),
        };
        if security == SmtpSecurity::Plain {
            if login.is_some() {
                return Err(url_error(
                    "refusing to send credentials without TLS: remove tls=none or the user name",
                ));
            }
            if ca_file.is_some() {
                return Err(url_error("ca_file= needs TLS: remove tls=none"));
            }
        }
        let default_port = match security {
            SmtpSecurity::StartTls => SUBMISSION_PORT,
            SmtpSecurity::ImplicitTls => SUBMISSIONS_PORT,
            SmtpSecurity::Plain => SMTP_PORT,
        };
        let port = url.port().unwrap_or(default_port);
        if port == 0 {
            return Err(url_error("port 0 is not a server port"));
        }
        Ok(Self {
            host,
            port,
            security,
            login,
            ca_file,
        })
    }

    /// Sets the password from a separate secret source (an environment variable or a file),
    /// so it need not appear on a command line where `ps` shows it. The URL must name the
    /// user and use TLS.
    pub fn with_password(mut self, password: String) -> Result<Self, MailConfigError> {
        if self.security == SmtpSecurity::Plain {
            return Err(url_error(
                "refusing to send credentials without TLS: remove tls=none",
            ));
        }
        match &mut self.login {
            Some(login) => login.password = Some(password),
            None => return Err(url_error("a password needs a user name in the URL")),
        }
        Ok(self)
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn security(&self) -> SmtpSecurity {
        self.security
    }

    pub fn user(&self) -> Option<&str> {
        self.login.as_ref().map(|l| l.user.as_str())
    }

    pub fn ca_file(&self) -> Option<&Path> {
        self.ca_file.as_deref()
    }
}

fn decode_userinfo(raw: &str, what: &str) -> Result<String, MailConfigError> {
    percent_decode_str(raw)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| url_error(format!("the {what} is not valid UTF-8")))
}

impl FromStr for SmtpUrl {
    type Err = MailConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for SmtpUrl {
    /// The URL in its canonical form (explicit port) with the password masked.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.security {
            SmtpSecurity::ImplicitTls => "smtps",
            SmtpSecurity::StartTls | SmtpSecurity::Plain => "smtp",
        };
        write!(f, "{scheme}://")?;
        if let Some(login) = &self.login {
            let user = percent_encoding::utf8_percent_encode(
                &login.user,
                percent_encoding::NON_ALPHANUMERIC,
            );
            match login.password {
                Some(_) => write!(f, "{user}:***@")?,
                None => write!(f, "{user}@")?,
            }
        }
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)?;
        } else {
            write!(f, "{}:{}", self.host, self.port)?;
        }
        let mut sep = '?';
        if self.security == SmtpSecurity::Plain {
            write!(f, "{sep}tls=none")?;
            sep = '&';
        }
        if let Some(ca) = &self.ca_file {
            write!(f, "{sep}ca_file={}", ca.display())?;
        }
        Ok(())
    }
}

impl fmt::Debug for SmtpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SmtpUrl({:?})", self.to_string())
    }
}

/// Where messages go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailTransport {
    /// Write `.eml` files into this directory (created 0700 if missing).
    Outbox { dir: PathBuf },
    /// Send through an SMTP server.
    Smtp(SmtpUrl),
}

/// Retries: after the `n`th failed attempt wait `initial_backoff × 2ⁿ⁻¹`, at most
/// `max_backoff`, until `attempts` attempts have been made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (0 is taken as 1).
    pub attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    /// 5 attempts over about 15 seconds (waits of 1, 2, 4 and 8 s): enough to ride out a
    /// mail server restart or a network blip, short enough that a user who asked for a link
    /// and did not get it is told by the operator's log soon.
    fn default() -> Self {
        Self {
            attempts: 5,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The wait after the `failed_attempt`th attempt (counting from 1) failed.
    pub fn backoff(&self, failed_attempt: u32) -> Duration {
        let factor = 1u32
            .checked_shl(failed_attempt.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

/// Everything a [`Mailer`] needs.
#[derive(Debug, Clone)]
pub struct MailConfig {
    pub transport: MailTransport,
    /// The `From:` of every message and the SMTP envelope sender.
    pub from: Mailbox,
    /// Messages waiting for delivery before new ones are dropped.
    pub queue_capacity: usize,
    /// Deliveries in progress at once.
    pub concurrency: usize,
    pub retry: RetryPolicy,
    /// Longest one SMTP step may take.
    pub smtp_timeout: Duration,
}

impl MailConfig {
    /// The default: the outbox in `DATA_DIR/outbox`.
    pub fn outbox(data_dir: &Path) -> Self {
        Self::with_transport(MailTransport::Outbox {
            dir: data_dir.join(OUTBOX_DIR_NAME),
        })
    }

    pub fn smtp(url: SmtpUrl) -> Self {
        Self::with_transport(MailTransport::Smtp(url))
    }

    pub fn with_transport(transport: MailTransport) -> Self {
        Self {
            transport,
            from: default_from(),
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            concurrency: DEFAULT_CONCURRENCY,
            retry: RetryPolicy::default(),
            smtp_timeout: DEFAULT_SMTP_TIMEOUT,
        }
    }
}

/// `Palisade <palisade@localhost>` ([`DEFAULT_FROM`]).
pub fn default_from() -> Mailbox {
    // A constant the unit tests check with the validating constructor; building it
    // unchecked keeps every constructor of `MailConfig` infallible.
    Mailbox::new(
        Some("Palisade".to_owned()),
        Address::new_dangerous("palisade", "localhost"),
    )
}

// ---------------------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------------------

/// One message to send. `Debug` shows the sizes of the bodies, not their text: they carry
/// single-use links.
#[derive(Clone, PartialEq, Eq)]
pub struct OutgoingMail {
    /// The recipient's address (`user@example.com`, no display name).
    pub to: String,
    pub subject: String,
    pub text_body: String,
    /// With an HTML body the message is `multipart/alternative` (text first).
    pub html_body: Option<String>,
}

impl fmt::Debug for OutgoingMail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutgoingMail")
            .field("to", &self.to)
            .field("subject", &self.subject)
            .field("text_body_bytes", &self.text_body.len())
            .field("html_body_bytes", &self.html_body.as_ref().map(String::len))
            .finish()
    }
}

/// Why [`Mailer::send`] refused a message. Only [`MailError::QueueFull`] and
/// [`MailError::ShutDown`] concern a valid message; the others are bugs in the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailError {
    #[error("the recipient is not a valid e-mail address")]
    InvalidRecipient,
    #[error("a header contains a line break or another control character")]
    HeaderInjection,
    #[error("the subject is longer than {SUBJECT_MAX_CHARS} characters")]
    SubjectTooLong,
    #[error("the message could not be built: {0}")]
    Build(String),
    #[error("the mail queue is full: the message was dropped")]
    QueueFull,
    #[error("the mailer is shut down: the message was dropped")]
    ShutDown,
}

/// Why a message was never delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureReason {
    /// The queue was full when it was sent.
    QueueFull,
    /// The SMTP server refused it for good (a 5xx answer); not retried.
    Rejected,
    /// Every attempt failed.
    GaveUp,
    /// The mailer shut down (or its deadline passed) before it was delivered.
    Shutdown,
}

impl FailureReason {
    /// A stable word for audit records.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::QueueFull => "queue_full",
            Self::Rejected => "rejected",
            Self::GaveUp => "gave_up",
            Self::Shutdown => "shutdown",
        }
    }
}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A message that was not delivered, for the audit log. Carries no body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailFailure {
    /// The `Message-ID` header, angle brackets included.
    pub message_id: String,
    pub to: String,
    pub subject: String,
    pub reason: FailureReason,
    /// Delivery attempts made (0 if it never left the queue).
    pub attempts: u32,
    /// The last error, as logged (no credentials, no body).
    pub error: String,
}

/// Called once for every message that will not be delivered. It runs on the mailer's task
/// (or, for [`FailureReason::QueueFull`] and a send after shutdown, on the caller's): keep it
/// quick and non-blocking, e.g. hand the record to a channel or spawn the audit write. It
/// should not own a [`Mailer`] handle: that would keep the mailer alive after every other
/// handle is dropped (call [`Mailer::shutdown`] and the question does not arise).
pub type FailureHook = Arc<dyn Fn(MailFailure) + Send + Sync>;

/// A built message waiting for delivery.
struct Queued {
    message_id: String,
    to: String,
    subject: String,
    envelope: Envelope,
    bytes: Arc<[u8]>,
}

impl Queued {
    fn failure(&self, reason: FailureReason, attempts: u32, error: String) -> MailFailure {
        MailFailure {
            message_id: self.message_id.clone(),
            to: self.to.clone(),
            subject: self.subject.clone(),
            reason,
            attempts,
            error,
        }
    }
}

fn random_hex(bytes: usize) -> Result<String, std::io::Error> {
    palisade_crypto::random::bytes(bytes)
        .map(hex::encode)
        .map_err(|e| std::io::Error::other(e.to_string()))
}

/// Builds the RFC 5322 message. Every header value comes from `mail` only after the checks
/// here, and lettre encodes non-ASCII text (RFC 2047) and folds long lines, so the caller's
/// strings can never add a header.
fn build_message(from: &Mailbox, mail: OutgoingMail) -> Result<Queued, MailError> {
    let OutgoingMail {
        to,
        subject,
        text_body,
        html_body,
    } = mail;
    // Checked before lettre sees them: a CR or LF in a header is the injection, and no other
    // control character has any business in an address or a subject either.
    if to.chars().any(char::is_control) || subject.chars().any(char::is_control) {
        return Err(MailError::HeaderInjection);
    }
    if subject.chars().count() > SUBJECT_MAX_CHARS {
        return Err(MailError::SubjectTooLong);
    }
    let address = Address::from_str(&to).map_err(|_| MailError::InvalidRecipient)?;
    let message_id = format!(
        "<{}@{}>",
        random_hex(16).map_err(|e| MailError::Build(e.to_string()))?,
        from.email.domain()
    );
    let builder = Message::builder()
        .from(from.clone())
        .to(Mailbox::new(None, address.clone()))
        .subject(subject.clone())
        .message_id(Some(message_id.clone()))
        .date_now()
        .raw_header(HeaderValue::new(
            AUTO_SUBMITTED,
            "auto-generated".to_owned(),
        ));
    let message = match html_body {
        Some(html) => builder.multipart(MultiPart::alternative_plain_html(text_body, html)),
        // A raw body rather than `singlepart`: lettre ends a top-level single part with an
        // extra CRLF, which readers show as a trailing blank line.
        None => builder
            .header(header::MIME_VERSION_1_0)
            .header(header::ContentType::TEXT_PLAIN)
            .body(text_body),
    }
    .map_err(|e| MailError::Build(e.to_string()))?;
    Ok(Queued {
        message_id,
        to: address.to_string(),
        subject,
        envelope: message.envelope().clone(),
        bytes: Arc::from(message.formatted()),
    })
}

// ---------------------------------------------------------------------------------------
// Delivery
// ---------------------------------------------------------------------------------------

struct AttemptError {
    message: String,
    /// Retrying cannot help (an SMTP 5xx answer).
    permanent: bool,
}

enum Deliverer {
    Outbox(PathBuf),
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        /// The redacted URL, for logs.
        server: String,
    },
}

impl Deliverer {
    fn new(config: &MailConfig) -> Result<Self, MailConfigError> {
        match &config.transport {
            MailTransport::Outbox { dir } => {
                create_outbox(dir)?;
                Ok(Self::Outbox(dir.clone()))
            }
            MailTransport::Smtp(url) => Ok(Self::Smtp {
                transport: smtp_transport(url, config.smtp_timeout)?,
                server: url.to_string(),
            }),
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::Outbox(dir) => format!("outbox {}", dir.display()),
            Self::Smtp { server, .. } => server.clone(),
        }
    }

    /// One attempt. On success, says where the message went (for the log).
    async fn deliver(&self, mail: &Queued) -> Result<String, AttemptError> {
        match self {
            Self::Outbox(dir) => {
                let dir = dir.clone();
                let bytes = Arc::clone(&mail.bytes);
                let written = tokio::task::spawn_blocking(move || write_outbox(&dir, &bytes))
                    .await
                    .map_err(|e| AttemptError {
                        message: format!("outbox write task failed: {e}"),
                        permanent: false,
                    })?;
                written
                    .map(|path| path.display().to_string())
                    .map_err(|e| AttemptError {
                        message: format!("writing to the outbox: {}", describe_io(&e)),
                        permanent: false,
                    })
            }
            Self::Smtp { transport, server } => {
                // lettre always writes CRLF "." CRLF after the data; a message that already
                // ends in CRLF would gain an empty last line.
                let data = mail.bytes.strip_suffix(b"\r\n").unwrap_or(&mail.bytes);
                transport
                    .send_raw(&mail.envelope, data)
                    .await
                    .map(|_| server.clone())
                    .map_err(|e| AttemptError {
                        message: error_chain(&e),
                        permanent: e.is_permanent(),
                    })
            }
        }
    }
}

/// The error and its sources on one line: lettre's top-level text for a TLS failure is just
/// "tls error", the reason (unknown issuer, name mismatch) is in the source.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let part = cause.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = cause.source();
    }
    text
}

/// Creates the outbox (and missing parents) 0700. An existing directory keeps its mode, as
/// the data directory does, but a group- or world-readable one is worth a warning: the
/// messages in it carry password-reset links.
fn create_outbox(dir: &Path) -> Result<(), MailConfigError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| MailConfigError::File {
            path: dir.to_path_buf(),
            reason: describe_io(&e),
        })?;
    if let Ok(meta) = fs::metadata(dir)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            dir = %dir.display(),
            mode = format!("{:o}", meta.permissions().mode() & 0o777),
            "the mail outbox is readable by other users; the links in it are credentials"
        );
    }
    Ok(())
}

/// `20250102T030405.678Z`: sorts in time order, readable, no characters a shell quotes.
fn outbox_timestamp() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}.{:03}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        now.millisecond()
    )
}

/// Writes one message as a new file, all or nothing: written and synced under a hidden
/// temporary name in the same directory, then renamed (atomic within a file system).
fn write_outbox(dir: &Path, bytes: &[u8]) -> std::io::Result<PathBuf> {
    let name = format!("{}-{}.eml", outbox_timestamp(), random_hex(8)?);
    let final_path = dir.join(&name);
    let temp_path = dir.join(format!(".{name}.tmp"));
    let written = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp_path)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&temp_path, &final_path)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&temp_path);
        return Err(e);
    }
    // The rename is durable once the directory is synced; a failure here does not undo the
    // delivery, so it is not an error.
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(final_path)
}

fn smtp_transport(
    url: &SmtpUrl,
    timeout: Duration,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, MailConfigError> {
    let tls = match url.security {
        SmtpSecurity::Plain => Tls::None,
        SmtpSecurity::StartTls => Tls::Required(tls_parameters(url)?),
        SmtpSecurity::ImplicitTls => Tls::Wrapper(tls_parameters(url)?),
    };
    // `builder_dangerous` only means "no TLS chosen yet": it is chosen on the next line.
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(url.host.clone())
        .port(url.port)
        .timeout(Some(timeout))
        .tls(tls);
    if let Some(login) = &url.login {
        let Some(password) = &login.password else {
            return Err(url_error("the URL names a user but no password was given"));
        };
        builder = builder.credentials(Credentials::new(login.user.clone(), password.clone()));
    }
    Ok(builder.build())
}

fn tls_parameters(url: &SmtpUrl) -> Result<TlsParameters, MailConfigError> {
    let mut builder = TlsParameters::builder(url.host.clone());
    if let Some(path) = &url.ca_file {
        let pem = fs::read(path).map_err(|e| MailConfigError::File {
            path: path.clone(),
            reason: describe_io(&e),
        })?;
        // lettre accepts a file with no certificate in it; every handshake would then fail
        // with "unknown issuer", far from the cause.
        let count = {
            use rustls::pki_types::CertificateDer;
            use rustls::pki_types::pem::PemObject;
            CertificateDer::pem_slice_iter(&pem)
                .collect::<Result<Vec<_>, _>>()
                .map(|certs| certs.len())
                .unwrap_or(0)
        };
        if count == 0 {
            return Err(MailConfigError::File {
                path: path.clone(),
                reason: "no PEM certificate in the file".to_owned(),
            });
        }
        let certs = Certificate::from_pem(&pem).map_err(|e| MailConfigError::File {
            path: path.clone(),
            reason: error_chain(&e),
        })?;
        // Like `curl --cacert`: the file replaces the system roots, so a test or private
        // server is trusted through exactly that CA.
        builder = builder
            .certificate_store(CertificateStore::None)
            .add_root_certificate(certs);
    }
    builder
        .build_rustls()
        .map_err(|e| MailConfigError::Tls(error_chain(&e)))
}

// ---------------------------------------------------------------------------------------
// The mailer and its task
// ---------------------------------------------------------------------------------------

/// The handle requests use to send mail: cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct Mailer {
    inner: Arc<Shared>,
}

struct Shared {
    queue: mpsc::Sender<Queued>,
    from: Mailbox,
    on_failure: FailureHook,
    /// Set to the drain deadline by [`Mailer::shutdown`].
    shutdown: watch::Sender<Option<Instant>>,
    /// Becomes `true` (or is closed) when the delivery task has finished.
    stopped: watch::Receiver<bool>,
    description: String,
}

impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailer")
            .field("transport", &self.inner.description)
            .field("from", &self.inner.from.to_string())
            .finish_non_exhaustive()
    }
}

/// What the delivery tasks share.
struct Delivery {
    deliverer: Deliverer,
    retry: RetryPolicy,
    on_failure: FailureHook,
}

/// What the task needs to report a message still in flight when the deadline passes.
struct InFlight {
    mail: Queued,
    attempts: Arc<AtomicU32>,
}

impl Mailer {
    /// Checks the configuration, creates the outbox or prepares the SMTP client (reading the
    /// CA file), and starts the delivery task on the current Tokio runtime. Blocking file
    /// I/O: call it at start-up.
    pub fn start(config: MailConfig, on_failure: FailureHook) -> Result<Self, MailConfigError> {
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| MailConfigError::NoRuntime)?;
        if config
            .from
            .name
            .as_deref()
            .is_some_and(|n| n.chars().any(char::is_control))
        {
            return Err(MailConfigError::Sender(
                "the display name contains a control character".to_owned(),
            ));
        }
        let deliverer = Deliverer::new(&config)?;
        let description = deliverer.describe();
        if let MailTransport::Smtp(url) = &config.transport
            && url.security == SmtpSecurity::Plain
            && !is_loopback(&url.host)
        {
            tracing::warn!(
                server = %url,
                "mail to this SMTP server travels unencrypted (tls=none)"
            );
        }
        tracing::info!(transport = %description, from = %config.from, "mail transport ready");

        let (queue, receiver) = mpsc::channel(config.queue_capacity.max(1));
        let (shutdown, shutdown_rx) = watch::channel(None);
        let (stopped_tx, stopped) = watch::channel(false);
        let delivery = Arc::new(Delivery {
            deliverer,
            retry: config.retry,
            on_failure: Arc::clone(&on_failure),
        });
        runtime.spawn(run(
            receiver,
            shutdown_rx,
            delivery,
            config.concurrency.max(1),
            stopped_tx,
        ));
        Ok(Self {
            inner: Arc::new(Shared {
                queue,
                from: config.from,
                on_failure,
                shutdown,
                stopped,
                description,
            }),
        })
    }

    /// Builds the message and queues it; returns its `Message-ID` at once. Never blocks and
    /// never waits for delivery: a full queue drops the message (logged, reported to the
    /// failure hook, [`MailError::QueueFull`]). Callers must show the same page whatever
    /// this returns.
    pub fn send(&self, mail: OutgoingMail) -> Result<String, MailError> {
        let queued = build_message(&self.inner.from, mail)?;
        let message_id = queued.message_id.clone();
        match self.inner.queue.try_send(queued) {
            Ok(()) => Ok(message_id),
            Err(mpsc::error::TrySendError::Full(queued)) => {
                tracing::error!(
                    message_id = %queued.message_id,
                    to = %queued.to,
                    "the mail queue is full: message dropped"
                );
                (self.inner.on_failure)(queued.failure(
                    FailureReason::QueueFull,
                    0,
                    "the mail queue is full".to_owned(),
                ));
                Err(MailError::QueueFull)
            }
            Err(mpsc::error::TrySendError::Closed(queued)) => {
                tracing::error!(
                    message_id = %queued.message_id,
                    to = %queued.to,
                    "the mailer is shut down: message dropped"
                );
                (self.inner.on_failure)(queued.failure(
                    FailureReason::Shutdown,
                    0,
                    "the mailer is shut down".to_owned(),
                ));
                Err(MailError::ShutDown)
            }
        }
    }

    /// Stops accepting messages, delivers what is queued or in progress until `grace` has
    /// passed, reports the rest as [`FailureReason::Shutdown`], and returns when the task
    /// has finished. Calling it again (from any handle) waits for the same end.
    pub async fn shutdown(&self, grace: Duration) {
        let now = Instant::now();
        let deadline = now
            .checked_add(grace)
            .or_else(|| now.checked_add(Duration::from_secs(24 * 60 * 60)))
            .unwrap_or(now);
        // An earlier deadline stays: a second call cannot extend the first.
        self.inner.shutdown.send_if_modified(|current| {
            if current.is_none() {
                *current = Some(deadline);
                true
            } else {
                false
            }
        });
        let mut stopped = self.inner.stopped.clone();
        // An error means the task is gone (its sender dropped): stopped as well.
        let _ = stopped.wait_for(|done| *done).await;
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The delivery task: runs until shutdown or until every handle is gone, then drains.
async fn run(
    mut queue: mpsc::Receiver<Queued>,
    mut shutdown: watch::Receiver<Option<Instant>>,
    delivery: Arc<Delivery>,
    concurrency: usize,
    stopped: watch::Sender<bool>,
) {
    let mut tasks = JoinSet::new();
    let mut in_flight: HashMap<tokio::task::Id, InFlight> = HashMap::new();

    // Running: `None` once every handle has been dropped (drain with no deadline).
    let deadline = loop {
        tokio::select! {
            changed = shutdown.changed() => match changed {
                Ok(()) => {
                    if let Some(deadline) = *shutdown.borrow_and_update() {
                        break Some(deadline);
                    }
                }
                Err(_) => break None,
            },
            Some(joined) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                reap(joined, &mut in_flight, &delivery);
            }
            next = queue.recv(), if tasks.len() < concurrency => match next {
                Some(mail) => start_delivery(&mut tasks, &mut in_flight, &delivery, mail),
                None => break None,
            },
        }
    };

    // Draining: new sends fail with `ShutDown`; what is queued still goes out.
    queue.close();
    let expired = async move {
        match deadline {
            Some(deadline) => tokio::time::sleep_until(deadline).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(expired);
    let mut queue_empty = false;
    loop {
        if queue_empty && tasks.is_empty() {
            break;
        }
        tokio::select! {
            () = &mut expired => {
                tasks.abort_all();
                while let Some(joined) = tasks.join_next_with_id().await {
                    if let Ok((id, ())) = joined {
                        in_flight.remove(&id);
                    }
                }
                for (_, unfinished) in in_flight.drain() {
                    let attempts = unfinished.attempts.load(Ordering::Relaxed);
                    report_shutdown(&delivery, &unfinished.mail, attempts);
                }
                while let Ok(mail) = queue.try_recv() {
                    report_shutdown(&delivery, &mail, 0);
                }
                break;
            }
            Some(joined) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                reap(joined, &mut in_flight, &delivery);
            }
            next = queue.recv(), if !queue_empty && tasks.len() < concurrency => match next {
                Some(mail) => start_delivery(&mut tasks, &mut in_flight, &delivery, mail),
                None => queue_empty = true,
            },
        }
    }
    tracing::debug!("mail delivery task stopped");
    let _ = stopped.send(true);
}

fn start_delivery(
    tasks: &mut JoinSet<()>,
    in_flight: &mut HashMap<tokio::task::Id, InFlight>,
    delivery: &Arc<Delivery>,
    mail: Queued,
) {
    let attempts = Arc::new(AtomicU32::new(0));
    // The task gets its own copy so the record survives an abort at the deadline.
    let record = InFlight {
        mail: Queued {
            message_id: mail.message_id.clone(),
            to: mail.to.clone(),
            subject: mail.subject.clone(),
            envelope: mail.envelope.clone(),
            bytes: Arc::clone(&mail.bytes),
        },
        attempts: Arc::clone(&attempts),
    };
    let handle = tasks.spawn(deliver_with_retry(Arc::clone(delivery), mail, attempts));
    in_flight.insert(handle.id(), record);
}

/// Forgets a finished delivery. A task that panicked (a bug) has not reported its message,
/// so it is reported here.
fn reap(
    joined: Result<(tokio::task::Id, ()), tokio::task::JoinError>,
    in_flight: &mut HashMap<tokio::task::Id, InFlight>,
    delivery: &Delivery,
) {
    match joined {
        Ok((id, ())) => {
            in_flight.remove(&id);
        }
        Err(e) => {
            if let Some(lost) = in_flight.remove(&e.id()) {
                let attempts = lost.attempts.load(Ordering::Relaxed);
                tracing::error!(
                    message_id = %lost.mail.message_id,
                    to = %lost.mail.to,
                    error = %e,
                    "mail delivery task failed"
                );
                (delivery.on_failure)(lost.mail.failure(
                    FailureReason::GaveUp,
                    attempts,
                    format!("delivery task failed: {e}"),
                ));
            }
        }
    }
}

fn report_shutdown(delivery: &Delivery, mail: &Queued, attempts: u32) {
    tracing::error!(
        message_id = %mail.message_id,
        to = %mail.to,
        attempts,
        "mail not delivered before shutdown"
    );
    (delivery.on_failure)(mail.failure(
        FailureReason::Shutdown,
        attempts,
        "not delivered before shutdown".to_owned(),
    ));
}

async fn deliver_with_retry(delivery: Arc<Delivery>, mail: Queued, attempts: Arc<AtomicU32>) {
    let max = delivery.retry.attempts.max(1);
    let mut attempt = 0u32;
    loop {
        attempt = attempt.saturating_add(1);
        attempts.store(attempt, Ordering::Relaxed);
        match delivery.deliverer.deliver(&mail).await {
            Ok(place) => {
                tracing::info!(
                    message_id = %mail.message_id,
                    to = %mail.to,
                    to_where = %place,
                    attempt,
                    "mail delivered"
                );
                return;
            }
            Err(e) if e.permanent || attempt >= max => {
                let reason = if e.permanent {
                    FailureReason::Rejected
                } else {
                    FailureReason::GaveUp
                };
                tracing::error!(
                    message_id = %mail.message_id,
                    to = %mail.to,
                    attempts = attempt,
                    %reason,
                    error = %e.message,
                    "mail could not be delivered"
                );
                (delivery.on_failure)(mail.failure(reason, attempt, e.message));
                return;
            }
            Err(e) => {
                let wait = delivery.retry.backoff(attempt);
                tracing::warn!(
                    message_id = %mail.message_id,
                    to = %mail.to,
                    attempt,
                    of = max,
                    retry_in_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                    error = %e.message,
                    "mail delivery failed; will retry"
                );
                tokio::time::sleep(wait).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail(to: &str, subject: &str) -> OutgoingMail {
        OutgoingMail {
            to: to.to_owned(),
            subject: subject.to_owned(),
            text_body: "Open https://example.com/activate/TOKEN\n".to_owned(),
            html_body: None,
        }
    }

    fn text(q: &Queued) -> String {
        String::from_utf8(q.bytes.to_vec()).unwrap()
    }

    #[test]
    fn default_from_is_a_valid_mailbox() {
        let checked: Mailbox = DEFAULT_FROM.parse().unwrap();
        assert_eq!(default_from(), checked);
        assert!(Address::new("palisade", "localhost").is_ok());
    }

    #[test]
    fn smtp_url_defaults_to_starttls_on_587() {
        let url = SmtpUrl::parse("smtp://mail.example.com").unwrap();
        assert_eq!(url.host(), "mail.example.com");
        assert_eq!(url.port(), 587);
        assert_eq!(url.security(), SmtpSecurity::StartTls);
        assert_eq!(url.user(), None);
        assert_eq!(url.to_string(), "smtp://mail.example.com:587");
    }

    #[test]
    fn smtps_is_implicit_tls_on_465() {
        let url = SmtpUrl::parse("SMTPS://Mail.Example.com/").unwrap();
        assert_eq!(url.security(), SmtpSecurity::ImplicitTls);
        assert_eq!(url.port(), 465);
        assert_eq!(url.host(), "mail.example.com");
    }

    #[test]
    fn plain_mode_and_parameters() {
        let url = SmtpUrl::parse("smtp://127.0.0.1:2525?tls=none").unwrap();
        assert_eq!(url.security(), SmtpSecurity::Plain);
        assert_eq!(url.port(), 2525);
        assert_eq!(url.to_string(), "smtp://127.0.0.1:2525?tls=none");
        let url = SmtpUrl::parse("smtp://localhost?tls=none").unwrap();
        assert_eq!(url.port(), 25);
        let url = SmtpUrl::parse("smtp://[::1]:2525?tls=starttls&ca_file=/tmp/ca%20x.pem").unwrap();
        assert_eq!(url.host(), "::1");
        assert_eq!(url.ca_file(), Some(Path::new("/tmp/ca x.pem")));
        assert_eq!(url.to_string(), "smtp://[::1]:2525?ca_file=/tmp/ca x.pem");
    }

    #[test]
    fn credentials_are_decoded_and_never_shown() {
        let url =
            SmtpUrl::parse("smtp://me%40example.com:p%40ss%3Aw0rd@mail.example.com:587").unwrap();
        assert_eq!(url.user(), Some("me@example.com"));
        let login = url.login.as_ref().unwrap();
        assert_eq!(login.password.as_deref(), Some("p@ss:w0rd"));
        for shown in [
            url.to_string(),
            format!("{url:?}"),
            format!("{:?}", MailConfig::smtp(url.clone())),
        ] {
            assert!(!shown.contains("p@ss"), "{shown}");
            assert!(!shown.contains("w0rd"), "{shown}");
            assert!(
                shown.contains("me%40example%2Ecom:***@mail.example.com:587"),
                "{shown}"
            );
        }
    }

    #[test]
    fn bad_urls_are_refused_without_echoing_the_password() {
        for bad in [
            "http://host",
            "smtp://",
            "smtp://host/path",
            "smtp://host#frag",
            "smtp://host?tls=maybe",
            "smtps://host?tls=none",
            "smtp://host?tls=none&tls=none",
            "smtp://host?unknown=1",
            "smtp://host?ca_file=",
            "smtp://host:0",
            "smtp://:secretpw@host",
            "smtp://user:secretpw@host?tls=none",
            "smtp://user@host?tls=none",
            "smtp://host?tls=none&ca_file=/x.pem",
            "smtp://user:secretpw@ho%0Ast",
            "not a url secretpw",
        ] {
            let err = SmtpUrl::parse(bad).expect_err(bad).to_string();
            assert!(!err.contains("secretpw"), "{bad}: {err}");
        }
    }

    #[test]
    fn password_can_come_from_elsewhere() {
        let url = SmtpUrl::parse("smtps://mailer@mail.example.com").unwrap();
        assert_eq!(url.to_string(), "smtps://mailer@mail.example.com:465");
        let url = url.with_password("hunter2".to_owned()).unwrap();
        assert_eq!(url.to_string(), "smtps://mailer:***@mail.example.com:465");
        assert!(
            SmtpUrl::parse("smtp://mail.example.com")
                .unwrap()
                .with_password("x".to_owned())
                .is_err()
        );
        assert!(
            SmtpUrl::parse("smtp://h?tls=none")
                .unwrap()
                .with_password("x".to_owned())
                .is_err()
        );
    }

    #[test]
    fn a_user_without_password_cannot_start() {
        let url = SmtpUrl::parse("smtp://mailer@mail.example.com").unwrap();
        assert!(matches!(
            smtp_transport(&url, DEFAULT_SMTP_TIMEOUT),
            Err(MailConfigError::SmtpUrl(_))
        ));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = RetryPolicy {
            attempts: 10,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(5),
        };
        let waits: Vec<u64> = (1..=5).map(|n| p.backoff(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 5, 5]);
        assert_eq!(p.backoff(200), Duration::from_secs(5));
        assert_eq!(p.backoff(0), Duration::from_secs(1));
    }

    #[test]
    fn plain_message_has_the_headers() {
        let q = build_message(&default_from(), mail("alice@example.com", "Activate")).unwrap();
        let t = text(&q);
        assert!(t.contains("From: Palisade <palisade@localhost>\r\n"), "{t}");
        assert!(t.contains("To: alice@example.com\r\n"), "{t}");
        assert!(t.contains("Subject: Activate\r\n"), "{t}");
        assert!(t.contains("Date: "), "{t}");
        assert!(
            t.contains(&format!("Message-ID: {}\r\n", q.message_id)),
            "{t}"
        );
        assert!(t.contains("Auto-Submitted: auto-generated\r\n"), "{t}");
        assert!(t.contains("MIME-Version: 1.0\r\n"), "{t}");
        assert!(
            t.contains("Content-Type: text/plain; charset=utf-8\r\n"),
            "{t}"
        );
        assert!(t.contains("https://example.com/activate/TOKEN\r\n"), "{t}");
        assert!(q.message_id.starts_with('<') && q.message_id.ends_with("@localhost>"));
        assert_eq!(q.to, "alice@example.com");
        assert_eq!(
            q.envelope.from().map(ToString::to_string).as_deref(),
            Some("palisade@localhost")
        );
    }

    #[test]
    fn html_makes_multipart_alternative() {
        let mut m = mail("bob@example.com", "Réinitialiser le mot de passe ✓");
        m.html_body = Some("<p>Open <a href=\"https://x/\">this</a></p>".to_owned());
        let q = build_message(&default_from(), m).unwrap();
        let t = text(&q);
        assert!(t.contains("Content-Type: multipart/alternative;"), "{t}");
        assert!(t.contains("Content-Type: text/html; charset=utf-8"), "{t}");
        // Non-ASCII subject as an RFC 2047 encoded word: the header stays ASCII.
        let subject = t.lines().find(|l| l.starts_with("Subject:")).unwrap();
        assert!(
            subject.is_ascii() && subject.contains("=?utf-8?"),
            "{subject}"
        );
    }

    #[test]
    fn header_injection_is_refused() {
        let from = default_from();
        for (to, subject) in [
            ("alice@example.com", "Hi\r\nBcc: victim@example.com"),
            ("alice@example.com", "Hi\nBcc: victim@example.com"),
            ("alice@example.com", "Hi\rX: y"),
            ("alice@example.com", "tab\there"),
            ("alice@example.com\r\nBcc: victim@example.com", "Hi"),
            ("alice@example.com\n", "Hi"),
        ] {
            assert_eq!(
                build_message(&from, mail(to, subject)).err(),
                Some(MailError::HeaderInjection),
                "{to:?} {subject:?}"
            );
        }
        for to in [
            "",
            "alice",
            "alice@",
            "@example.com",
            "Alice <alice@example.com>",
            "a b@example.com",
            "alice@example.com, eve@example.com",
        ] {
            assert_eq!(
                build_message(&from, mail(to, "Hi")).err(),
                Some(MailError::InvalidRecipient),
                "{to:?}"
            );
        }
        let long = "x".repeat(SUBJECT_MAX_CHARS + 1);
        assert_eq!(
            build_message(&from, mail("a@example.com", &long)).err(),
            Some(MailError::SubjectTooLong)
        );
    }

    #[test]
    fn debug_of_a_message_hides_the_body() {
        let shown = format!("{:?}", mail("a@example.com", "Hi"));
        assert!(!shown.contains("TOKEN"), "{shown}");
    }

    #[test]
    fn outbox_files_are_private_and_complete() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = dir.path().join("data").join(OUTBOX_DIR_NAME);
        create_outbox(&outbox).unwrap();
        assert_eq!(
            fs::metadata(&outbox).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let a = write_outbox(&outbox, b"one").unwrap();
        let b = write_outbox(&outbox, b"two").unwrap();
        assert_ne!(a, b);
        assert_eq!(fs::read(&a).unwrap(), b"one");
        assert_eq!(
            fs::metadata(&a).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let names: Vec<String> = fs::read_dir(&outbox)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(
            names
                .iter()
                .all(|n| n.ends_with(".eml") && !n.starts_with('.'))
        );
    }

    #[test]
    fn start_needs_a_runtime() {
        let dir = tempfile::tempdir().unwrap();
        let hook: FailureHook = Arc::new(|_| {});
        assert!(matches!(
            Mailer::start(MailConfig::outbox(dir.path()), hook),
            Err(MailConfigError::NoRuntime)
        ));
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        fs::write(&ca, "not a certificate\n").unwrap();
        let url = SmtpUrl::parse(&format!("smtps://localhost?ca_file={}", ca.display())).unwrap();
        let err = smtp_transport(&url, DEFAULT_SMTP_TIMEOUT).unwrap_err();
        assert!(matches!(err, MailConfigError::File { .. }), "{err}");
        let url = SmtpUrl::parse("smtps://localhost?ca_file=/nonexistent/ca.pem").unwrap();
        assert!(smtp_transport(&url, DEFAULT_SMTP_TIMEOUT).is_err());
    }
}
