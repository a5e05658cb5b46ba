//! Server configuration, resolved in one direction: built-in defaults, then `palisade.toml`,
//! then `PALISADE_*` environment variables, then command-line flags. Each layer is parsed
//! into the same typed [`Layer`] (every field optional) before anything is merged, so a bad
//! value is reported against the place it came from (the file and key, or the variable),
//! and the merged [`Config`] only ever holds validated values.
//!
//! Unknown keys in the file are rejected: a misspelt `alowed_hosts` silently falling back to
//! a default is exactly the kind of mistake that weakens a deployment unnoticed.
//!
//! Two settings point at more than a value. The password policy's word lists
//! (`password_policy.common_passwords_file`, `password_policy.breached_passwords_file`) are
//! only named here: [`PasswordPolicySettings::build`] opens them, once, when a process that
//! checks passwords starts, so `user list` never reads a multi-gigabyte breach corpus. The
//! SMTP URL is parsed into a [`SmtpUrl`], which never shows its password; the password can
//! also come alone from `PALISADE_SMTP_PASSWORD`, so it need not be on a command line where
//! `ps` shows it.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use palisade_core::password_policy::{self, CommonPasswords, MIN_MAX_SIMILARITY, PasswordPolicy};
use palisade_store::{BreachedFileError, BreachedPasswordFile};
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::hosts::AllowedHosts;
use crate::mail::{self, MailConfig, MailConfigError, Mailbox, SmtpUrl};

/// The default listen address: loopback only, so a first start exposes nothing.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8443";
/// The data directory when neither `--data-dir` nor `PALISADE_DATA_DIR` is given.
pub const DEFAULT_DATA_DIR: &str = "./palisade-data";
/// The configuration file looked for inside the data directory.
pub const CONFIG_FILE_NAME: &str = "palisade.toml";

/// hyper refuses (by panicking) an HTTP/1 read buffer smaller than this, so the header
/// limit is validated against it instead of being passed through.
const MIN_HEADER_BYTES: usize = 8192;

/// The highest `password_policy.max_length` accepted, in bytes. Far above any passphrase a
/// person types, and the bound the command line reads a password from standard input up
/// to: a higher setting would let a longer input be cut to fit instead of refused.
pub const MAX_PASSWORD_BYTES: usize = 4096;

/// A configuration problem, worded for one line of standard error. It always names where
/// the bad value came from.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("{source_name}: {reason}")]
    Value { source_name: String, reason: String },
}

/// A database or session-store URL. Server URLs carry credentials
/// (`postgres://user:password@host/db`), so `Debug` and `Display` show the URL with the
/// password replaced; [`SecretUrl::expose`] is the one way to the real text.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretUrl(String);

impl SecretUrl {
    /// The URL with its password, for the driver that connects with it. Never log this.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The scheme (`sqlite`, `postgres`, `redis`, …), lower-cased.
    pub fn scheme(&self) -> String {
        self.0
            .split_once(':')
            .map(|(s, _)| s.to_ascii_lowercase())
            .unwrap_or_default()
    }

    fn redacted(&self) -> String {
        // scheme://user:password@host… → scheme://user:***@host…
        let Some((scheme, rest)) = self.0.split_once("://") else {
            return self.0.clone();
        };
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(authority_end);
        match authority.rsplit_once('@') {
            Some((userinfo, host)) => {
                let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
                let masked = if userinfo.contains(':') {
                    format!("{user}:***")
                } else {
                    user.to_owned()
                };
                format!("{scheme}://{masked}@{host}{tail}")
            }
            None => self.0.clone(),
        }
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretUrl({:?})", self.redacted())
    }
}

impl fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// The text of `PALISADE_MASTER_KEY`, as given; [`crate::secrets::load_or_create_master_key`]
/// parses it. Read from the environment only, never from `palisade.toml`: the file sits next
/// to the database and is often copied with it. Wiped on drop; `Debug` never shows it.
#[derive(Clone)]
pub struct MasterKeyText(Zeroizing<String>);

impl MasterKeyText {
    /// The key text, for the loader. Never log this.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for MasterKeyText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKeyText(<redacted>)")
    }
}

/// Request limits. Every one of them bounds what an anonymous client can make the server
/// hold in memory or wait for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest request body accepted (413 above it).
    pub body_bytes: usize,
    /// Largest request head (request line + headers) hyper buffers (431 above it).
    pub header_bytes: usize,
    /// Longest a request may take from headers read to response started (408 after it).
    pub request_timeout: Duration,
    /// The login throttle's counting window (see `throttle`). Not read from files or the
    /// environment: the limits are constants there; tests shorten it on the struct.
    pub login_window: Duration,
}

/// Session lifetimes (used by the session layer once it is wired in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionTimeouts {
    /// A session unused for this long is over.
    pub idle_timeout: Duration,
    /// A session is over this long after login, however active.
    pub absolute_timeout: Duration,
}

/// Argon2id parameters for new password hashes and the size of the hashing pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordHashing {
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
    /// Threads in the bounded pool that runs password hashing off the async runtime.
    pub hash_workers: usize,
}

/// The password policy as configured: the rules' values and where the word lists are. The
/// policy itself, with its lists loaded, comes from [`PasswordPolicySettings::build`]. The
/// values are already checked (`PasswordPolicy::validate_settings` passed at load); the
/// files are not opened until `build`.
#[derive(Debug, Clone, PartialEq)]
pub struct PasswordPolicySettings {
    pub min_length: usize,
    pub max_length: usize,
    pub min_strength: u8,
    pub forbid_numeric: bool,
    /// `None`: the user-attribute similarity rule is off.
    pub max_similarity: Option<f64>,
    pub min_words: usize,
    /// One common password per line (Django's `CommonPasswordValidator` list format).
    pub common_passwords_file: Option<PathBuf>,
    /// A Pwned Passwords SHA-1 file, ordered by hash.
    pub breached_passwords_file: Option<PathBuf>,
}

impl Default for PasswordPolicySettings {
    /// The library's defaults, so a deployment without a `[password_policy]` section gets
    /// exactly `PasswordPolicy::default()`.
    fn default() -> Self {
        let d = PasswordPolicy::default();
        Self {
            min_length: d.min_length,
            max_length: d.max_length,
            min_strength: d.min_strength,
            forbid_numeric: d.forbid_numeric,
            max_similarity: d.max_similarity,
            min_words: d.min_words,
            common_passwords_file: None,
            breached_passwords_file: None,
        }
    }
}

impl PasswordPolicySettings {
    /// The rules without the word lists: what `load` validates, before any file is opened.
    fn rules(&self) -> PasswordPolicy {
        PasswordPolicy {
            min_length: self.min_length,
            max_length: self.max_length,
            forbid_numeric: self.forbid_numeric,
            max_similarity: self.max_similarity,
            min_strength: self.min_strength,
            min_words: self.min_words,
            common_passwords: None,
            breached: None,
        }
    }

    /// The policy, with the common-password list read into memory and the breached-password
    /// file opened and checked. Blocking file I/O: call it once at start-up. Every error is
    /// one line that names the file (and, for the common list, the line).
    pub fn build(&self) -> Result<PasswordPolicy, ConfigError> {
        let mut policy = self.rules();
        policy
            .validate_settings()
            .map_err(|e| invalid("password_policy", &e.to_string()))?;
        if let Some(path) = &self.common_passwords_file {
            policy.common_passwords = Some(Arc::new(read_common_passwords(path)?));
        }
        if let Some(path) = &self.breached_passwords_file {
            let file = BreachedPasswordFile::open(path).map_err(breached_error)?;
            policy.breached = Some(Arc::new(file));
        }
        Ok(policy)
    }
}

fn read_common_passwords(path: &Path) -> Result<CommonPasswords, ConfigError> {
    let file_err = |reason: String| ConfigError::File {
        path: path.to_owned(),
        reason,
    };
    let file = std::fs::File::open(path).map_err(|e| {
        file_err(format!(
            "cannot read the common-password list: {}",
            describe_io(&e)
        ))
    })?;
    CommonPasswords::from_reader(std::io::BufReader::new(file)).map_err(|e| match e {
        password_policy::CommonPasswordsError::Read { line, source } => {
            file_err(format!("line {line}: {}", describe_io(&source)))
        }
        other => file_err(other.to_string()),
    })
}

/// The store's error already names the file; only the OS error's "(os error N)" tail is
/// reworded, as everywhere else in this module.
fn breached_error(e: BreachedFileError) -> ConfigError {
    match e {
        BreachedFileError::Open { path, source } => ConfigError::File {
            path,
            reason: format!(
                "cannot open the breached-password file: {}",
                describe_io(&source)
            ),
        },
        other => ConfigError::Value {
            source_name: "password_policy.breached_passwords_file".to_owned(),
            reason: other.to_string(),
        },
    }
}

/// Where mail goes and who it is from.
#[derive(Debug, Clone)]
pub struct MailSettings {
    /// `None`: the outbox, `DATA_DIR/outbox/`.
    pub smtp: Option<SmtpUrl>,
    pub from: Mailbox,
}

/// The self-service account flows: how long their links live and how often they may be
/// asked for (`[accounts]` in `palisade.toml`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountSettings {
    /// How long an activation link works (django-registration's `ACCOUNT_ACTIVATION_DAYS`,
    /// 7 by default).
    pub activation_ttl: Duration,
    /// How long a password-reset link works (Django's `PASSWORD_RESET_TIMEOUT`, an hour by
    /// default here; Django's own default is three days).
    pub reset_ttl: Duration,
    /// Per-IP and per-address limits on registration, resend and reset requests.
    pub flow_limits: crate::throttle::FlowLimitSettings,
}

/// Longest an activation link may be configured to live.
const MAX_ACTIVATION_DAYS: u64 = 90;
/// Longest a reset link may be configured to live (Django's default, three days).
const MAX_RESET_SECS: u64 = 3 * 24 * 60 * 60;

/// The resolved configuration of one server process.
#[derive(Debug, Clone)]
pub struct Config {
    /// Holds the embedded database, the development TLS files and the mail outbox.
    pub data_dir: PathBuf,
    /// The file the configuration was read from, if any.
    pub config_file: Option<PathBuf>,
    pub listen: SocketAddr,
    /// Serve plain HTTP, for a TLS-terminating proxy in front.
    pub insecure_http: bool,
    /// Peers whose `X-Forwarded-For` / `X-Forwarded-Proto` are believed (plain HTTP only).
    pub trusted_proxies: Vec<IpNet>,
    pub allowed_hosts: AllowedHosts,
    pub database: SecretUrl,
    pub sessions: SecretUrl,
    pub limits: Limits,
    pub session: SessionTimeouts,
    pub password: PasswordHashing,
    pub password_policy: PasswordPolicySettings,
    pub mail: MailSettings,
    pub accounts: AccountSettings,
    /// `PALISADE_MASTER_KEY`, when set (else the master key is `DATA_DIR/master.key`).
    pub master_key: Option<MasterKeyText>,
    /// Test-only routes (`/__test/slow`), switched on only by `PALISADE_TEST_ROUTES=1` so a
    /// configuration file can never enable them by accident.
    #[doc(hidden)]
    pub test_routes: bool,
}

/// Command-line values, already split from clap. `None` / `false` / empty means "not given".
#[derive(Debug, Clone, Default)]
pub struct Flags {
    pub data_dir: Option<PathBuf>,
    pub config: Option<PathBuf>,
    pub database: Option<String>,
    pub sessions: Option<String>,
    pub listen: Option<String>,
    pub insecure_http: bool,
    pub trusted_proxies: Vec<String>,
    /// `--smtp URL` (serve only).
    pub smtp: Option<String>,
}

/// Everything configuration is resolved from, gathered up front so resolution is a pure
/// function (and tests need not touch the process environment).
#[derive(Debug, Clone, Default)]
pub struct Sources {
    pub flags: Flags,
    /// `PALISADE_*` environment variables (other names are ignored).
    pub env: BTreeMap<String, String>,
}

impl Sources {
    /// The flags plus this process's `PALISADE_*` environment. A variable whose value is not
    /// UTF-8 is an error rather than silently ignored.
    pub fn from_process(flags: Flags) -> Result<Self, ConfigError> {
        let mut env = BTreeMap::new();
        for (name, value) in std::env::vars_os() {
            let Some(name) = name.to_str() else { continue };
            if !name.starts_with("PALISADE_") {
                continue;
            }
            let value = value.into_string().map_err(|_| ConfigError::Value {
                source_name: name.to_owned(),
                reason: "value is not valid UTF-8".to_owned(),
            })?;
            env.insert(name.to_owned(), value);
        }
        Ok(Self { flags, env })
    }

    /// The data directory: `--data-dir`, else `$PALISADE_DATA_DIR`, else `./palisade-data`.
    pub fn data_dir(&self) -> PathBuf {
        if let Some(dir) = &self.flags.data_dir {
            return dir.clone();
        }
        match self.env.get("PALISADE_DATA_DIR") {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => PathBuf::from(DEFAULT_DATA_DIR),
        }
    }
}

/// One layer of configuration, parsed and typed, every field optional.
#[derive(Debug, Default)]
struct Layer {
    listen: Option<SocketAddr>,
    insecure_http: Option<bool>,
    trusted_proxies: Option<Vec<IpNet>>,
    allowed_hosts: Option<AllowedHosts>,
    database: Option<SecretUrl>,
    sessions: Option<SecretUrl>,
    body_bytes: Option<usize>,
    header_bytes: Option<usize>,
    request_timeout_secs: Option<u64>,
    idle_timeout_secs: Option<u64>,
    absolute_timeout_secs: Option<u64>,
    argon2_memory_kib: Option<u32>,
    argon2_iterations: Option<u32>,
    argon2_parallelism: Option<u32>,
    hash_workers: Option<usize>,
    policy_min_length: Option<usize>,
    policy_max_length: Option<usize>,
    policy_min_strength: Option<u8>,
    policy_forbid_numeric: Option<bool>,
    /// `Some(None)`: explicitly turned off, which must override a number from a lower layer.
    policy_max_similarity: Option<Option<f64>>,
    policy_min_words: Option<usize>,
    common_passwords_file: Option<PathBuf>,
    breached_passwords_file: Option<PathBuf>,
    smtp: Option<SmtpUrl>,
    smtp_password: Option<SmtpPassword>,
    mail_from: Option<Mailbox>,
    activation_days: Option<u64>,
    reset_timeout_secs: Option<u64>,
    flow_limit_per_ip: Option<u32>,
    flow_limit_per_address: Option<u32>,
    flow_limit_window_secs: Option<u64>,
}

/// `PALISADE_SMTP_PASSWORD` between parsing and being put into the URL; `Debug` hides it.
struct SmtpPassword(String);

impl fmt::Debug for SmtpPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SmtpPassword(***)")
    }
}

impl Layer {
    /// Fields set in `over` replace those in `self`.
    fn merge(self, over: Layer) -> Layer {
        Layer {
            listen: over.listen.or(self.listen),
            insecure_http: over.insecure_http.or(self.insecure_http),
            trusted_proxies: over.trusted_proxies.or(self.trusted_proxies),
            allowed_hosts: over.allowed_hosts.or(self.allowed_hosts),
            database: over.database.or(self.database),
            sessions: over.sessions.or(self.sessions),
            body_bytes: over.body_bytes.or(self.body_bytes),
            header_bytes: over.header_bytes.or(self.header_bytes),
            request_timeout_secs: over.request_timeout_secs.or(self.request_timeout_secs),
            idle_timeout_secs: over.idle_timeout_secs.or(self.idle_timeout_secs),
            absolute_timeout_secs: over.absolute_timeout_secs.or(self.absolute_timeout_secs),
            argon2_memory_kib: over.argon2_memory_kib.or(self.argon2_memory_kib),
            argon2_iterations: over.argon2_iterations.or(self.argon2_iterations),
            argon2_parallelism: over.argon2_parallelism.or(self.argon2_parallelism),
            hash_workers: over.hash_workers.or(self.hash_workers),
            policy_min_length: over.policy_min_length.or(self.policy_min_length),
            policy_max_length: over.policy_max_length.or(self.policy_max_length),
            policy_min_strength: over.policy_min_strength.or(self.policy_min_strength),
            policy_forbid_numeric: over.policy_forbid_numeric.or(self.policy_forbid_numeric),
            policy_max_similarity: over.policy_max_similarity.or(self.policy_max_similarity),
            policy_min_words: over.policy_min_words.or(self.policy_min_words),
            common_passwords_file: over.common_passwords_file.or(self.common_passwords_file),
            breached_passwords_file: over
                .breached_passwords_file
                .or(self.breached_passwords_file),
            smtp: over.smtp.or(self.smtp),
            smtp_password: over.smtp_password.or(self.smtp_password),
            mail_from: over.mail_from.or(self.mail_from),
            activation_days: over.activation_days.or(self.activation_days),
            reset_timeout_secs: over.reset_timeout_secs.or(self.reset_timeout_secs),
            flow_limit_per_ip: over.flow_limit_per_ip.or(self.flow_limit_per_ip),
            flow_limit_per_address: over.flow_limit_per_address.or(self.flow_limit_per_address),
            flow_limit_window_secs: over.flow_limit_window_secs.or(self.flow_limit_window_secs),
        }
    }
}

// The file's shape. Strings are parsed by the same functions as the environment and flags,
// so every source gets the same validation and the same wording.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    insecure_http: Option<bool>,
    trusted_proxies: Option<Vec<String>>,
    allowed_hosts: Option<Vec<String>>,
    database: Option<String>,
    sessions: Option<String>,
    limits: Option<FileLimits>,
    session: Option<FileSession>,
    password: Option<FilePassword>,
    password_policy: Option<FilePasswordPolicy>,
    smtp: Option<String>,
    mail_from: Option<String>,
    accounts: Option<FileAccounts>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileAccounts {
    activation_days: Option<u64>,
    password_reset_timeout: Option<u64>,
    flow_limit_per_ip: Option<u64>,
    flow_limit_per_address: Option<u64>,
    flow_limit_window_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLimits {
    body_bytes: Option<u64>,
    header_bytes: Option<u64>,
    request_timeout_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSession {
    idle_timeout_secs: Option<u64>,
    absolute_timeout_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FilePassword {
    argon2_memory_kib: Option<u32>,
    argon2_iterations: Option<u32>,
    argon2_parallelism: Option<u32>,
    hash_workers: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FilePasswordPolicy {
    min_length: Option<u64>,
    max_length: Option<u64>,
    min_strength: Option<u64>,
    forbid_numeric: Option<bool>,
    /// A number, or `false` (or `"off"`) to turn the rule off; read as a raw value so the
    /// error for anything else is ours rather than serde's "did not match any variant".
    max_similarity: Option<toml::Value>,
    min_words: Option<u64>,
    common_passwords_file: Option<String>,
    breached_passwords_file: Option<String>,
}

impl Config {
    /// Resolves the configuration from `sources`: defaults, then the configuration file
    /// (`--config`, else `DATA_DIR/palisade.toml` when it exists), then `PALISADE_*`
    /// variables, then flags. Reads the file but creates nothing.
    pub fn load(sources: &Sources) -> Result<Config, ConfigError> {
        let data_dir = sources.data_dir();
        let (config_file, file_layer) = match &sources.flags.config {
            Some(path) => (Some(path.clone()), read_file(path)?),
            None => {
                let path = data_dir.join(CONFIG_FILE_NAME);
                if path.is_file() {
                    let layer = read_file(&path)?;
                    (Some(path), layer)
                } else {
                    (None, Layer::default())
                }
            }
        };
        let env_layer = env_layer(&sources.env)?;
        let flag_layer = flag_layer(&sources.flags)?;
        let merged = file_layer.merge(env_layer).merge(flag_layer);
        let test_routes = sources
            .env
            .get("PALISADE_TEST_ROUTES")
            .is_some_and(|v| v == "1");
        let mut config = finish(data_dir, config_file, merged, test_routes)?;
        // Empty counts as unset, as for every other variable.
        config.master_key = sources
            .env
            .get(crate::secrets::MASTER_KEY_ENV)
            .filter(|v| !v.trim().is_empty())
            .map(|v| MasterKeyText(Zeroizing::new(v.clone())));
        Ok(config)
    }

    /// The URL scheme this server answers on.
    pub fn scheme(&self) -> &'static str {
        if self.insecure_http { "http" } else { "https" }
    }

    /// The mailer's configuration: SMTP when a server is configured, else the outbox in
    /// `DATA_DIR/outbox/`.
    pub fn mail_config(&self) -> MailConfig {
        let mut config = match &self.mail.smtp {
            Some(url) => MailConfig::smtp(url.clone()),
            None => MailConfig::outbox(&self.data_dir),
        };
        config.from = self.mail.from.clone();
        config
    }
}

fn finish(
    data_dir: PathBuf,
    config_file: Option<PathBuf>,
    layer: Layer,
    test_routes: bool,
) -> Result<Config, ConfigError> {
    let default_listen: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 8443));
    let listen = layer.listen.unwrap_or(default_listen);
    let database = layer.database.unwrap_or_else(|| {
        SecretUrl(format!(
            "sqlite://{}",
            data_dir.join("palisade.db").to_string_lossy()
        ))
    });
    let sessions = layer.sessions.unwrap_or_else(|| database.clone());
    let allowed_hosts = layer
        .allowed_hosts
        .unwrap_or_else(|| AllowedHosts::defaults_for(listen.ip()));

    let limits = Limits {
        body_bytes: layer.body_bytes.unwrap_or(1024 * 1024),
        header_bytes: layer.header_bytes.unwrap_or(16 * 1024),
        request_timeout: Duration::from_secs(layer.request_timeout_secs.unwrap_or(30)),
        login_window: crate::throttle::DEFAULT_WINDOW,
    };
    let session = SessionTimeouts {
        // Django's SESSION_COOKIE_AGE is two weeks; the idle limit is ours (Django has none).
        idle_timeout: Duration::from_secs(layer.idle_timeout_secs.unwrap_or(2 * 60 * 60)),
        absolute_timeout: Duration::from_secs(
            layer.absolute_timeout_secs.unwrap_or(14 * 24 * 60 * 60),
        ),
    };
    if session.idle_timeout > session.absolute_timeout {
        return Err(invalid(
            "session.idle_timeout_secs",
            "must not be longer than session.absolute_timeout_secs",
        ));
    }
    let parallelism = layer.argon2_parallelism.unwrap_or(1);
    let memory = layer.argon2_memory_kib.unwrap_or(19456);
    if u64::from(memory) < 8 * u64::from(parallelism) {
        return Err(invalid(
            "password.argon2_memory_kib",
            "must be at least 8 × argon2_parallelism",
        ));
    }
    let password = PasswordHashing {
        argon2_memory_kib: memory,
        argon2_iterations: layer.argon2_iterations.unwrap_or(2),
        argon2_parallelism: parallelism,
        hash_workers: layer.hash_workers.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        }),
    };
    let defaults = PasswordPolicySettings::default();
    let password_policy = PasswordPolicySettings {
        min_length: layer.policy_min_length.unwrap_or(defaults.min_length),
        max_length: layer.policy_max_length.unwrap_or(defaults.max_length),
        min_strength: layer.policy_min_strength.unwrap_or(defaults.min_strength),
        forbid_numeric: layer
            .policy_forbid_numeric
            .unwrap_or(defaults.forbid_numeric),
        max_similarity: layer
            .policy_max_similarity
            .unwrap_or(defaults.max_similarity),
        min_words: layer.policy_min_words.unwrap_or(defaults.min_words),
        common_passwords_file: layer.common_passwords_file,
        breached_passwords_file: layer.breached_passwords_file,
    };
    // Each value was checked where it was read; this catches combinations (a maximum below
    // the minimum) with the library's own rule, so the two can never disagree.
    password_policy
        .rules()
        .validate_settings()
        .map_err(|e| invalid("password_policy", &e.to_string()))?;
    let smtp = match (layer.smtp, layer.smtp_password) {
        (smtp, None) => smtp,
        (Some(url), Some(SmtpPassword(password))) => Some(
            url.with_password(password)
                .map_err(|e| invalid("PALISADE_SMTP_PASSWORD", &mail_reason(e)))?,
        ),
        // A password with nowhere to go means the operator believes mail goes through a
        // server while it lands in the outbox: say so rather than ignore it.
        (None, Some(_)) => {
            return Err(invalid(
                "PALISADE_SMTP_PASSWORD",
                "is set, but no SMTP server is configured (smtp in palisade.toml, \
                 PALISADE_SMTP or --smtp)",
            ));
        }
    };
    let mail = MailSettings {
        smtp,
        from: layer.mail_from.unwrap_or_else(mail::default_from),
    };
    let flow_defaults = crate::throttle::FlowLimitSettings::default();
    let accounts = AccountSettings {
        activation_ttl: Duration::from_secs(layer.activation_days.unwrap_or(7) * 24 * 60 * 60),
        reset_ttl: Duration::from_secs(layer.reset_timeout_secs.unwrap_or(60 * 60)),
        flow_limits: crate::throttle::FlowLimitSettings {
            window: layer
                .flow_limit_window_secs
                .map_or(flow_defaults.window, Duration::from_secs),
            per_ip: layer.flow_limit_per_ip.unwrap_or(flow_defaults.per_ip),
            per_address: layer
                .flow_limit_per_address
                .unwrap_or(flow_defaults.per_address),
        },
    };
    Ok(Config {
        data_dir,
        config_file,
        listen,
        insecure_http: layer.insecure_http.unwrap_or(false),
        trusted_proxies: layer.trusted_proxies.unwrap_or_default(),
        allowed_hosts,
        database,
        sessions,
        limits,
        session,
        password,
        password_policy,
        mail,
        accounts,
        master_key: None,
        test_routes,
    })
}

fn invalid(source_name: &str, reason: &str) -> ConfigError {
    ConfigError::Value {
        source_name: source_name.to_owned(),
        reason: reason.to_owned(),
    }
}

fn read_file(path: &Path) -> Result<Layer, ConfigError> {
    let file_err = |reason: String| ConfigError::File {
        path: path.to_owned(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| file_err(describe_io(&e)))?;
    let parsed: FileConfig = toml::from_str(&text).map_err(|e| {
        // toml's Display draws a multi-line snippet; the contract wants one line, so keep
        // the message and turn the span into a line number.
        let line = e.span().map(|span| {
            text.get(..span.start)
                .map_or(0, |t| t.matches('\n').count() + 1)
        });
        let message = e.message().trim().replace('\n', " ");
        match line {
            Some(n) if n > 0 => file_err(format!("line {n}: {message}")),
            _ => file_err(message),
        }
    })?;
    let key = |name: &str| format!("{}: {name}", path.display());
    let mut layer = Layer {
        listen: parsed
            .listen
            .map(|v| parse_listen(&key("listen"), &v))
            .transpose()?,
        insecure_http: parsed.insecure_http,
        trusted_proxies: parsed
            .trusted_proxies
            .map(|v| parse_cidrs(&key("trusted_proxies"), v.iter().map(String::as_str)))
            .transpose()?,
        allowed_hosts: parsed
            .allowed_hosts
            .map(|v| parse_hosts(&key("allowed_hosts"), v.iter().map(String::as_str)))
            .transpose()?,
        database: parsed
            .database
            .map(|v| parse_url(&key("database"), v, false))
            .transpose()?,
        sessions: parsed
            .sessions
            .map(|v| parse_url(&key("sessions"), v, true))
            .transpose()?,
        smtp: parsed
            .smtp
            .map(|v| parse_smtp(&key("smtp"), &v))
            .transpose()?,
        mail_from: parsed
            .mail_from
            .map(|v| parse_mailbox(&key("mail_from"), &v))
            .transpose()?,
        ..Layer::default()
    };
    if let Some(policy) = parsed.password_policy {
        let name = |field: &str| key(&format!("password_policy.{field}"));
        // A relative list path is taken from the file's folder, not the working directory,
        // so `serve` and an admin command run from elsewhere read the same list.
        let base = path.parent().unwrap_or_else(|| Path::new(""));
        layer.policy_min_length = policy
            .min_length
            .map(|v| min_length(&name("min_length"), v))
            .transpose()?;
        layer.policy_max_length = policy
            .max_length
            .map(|v| max_length(&name("max_length"), v))
            .transpose()?;
        layer.policy_min_strength = policy
            .min_strength
            .map(|v| min_strength(&name("min_strength"), v))
            .transpose()?;
        layer.policy_forbid_numeric = policy.forbid_numeric;
        layer.policy_max_similarity = policy
            .max_similarity
            .map(|v| similarity_value(&name("max_similarity"), &v))
            .transpose()?;
        layer.policy_min_words = policy
            .min_words
            .map(|v| min_words(&name("min_words"), v))
            .transpose()?;
        layer.common_passwords_file = policy
            .common_passwords_file
            .map(|v| list_path(&name("common_passwords_file"), &v).map(|p| base.join(p)))
            .transpose()?;
        layer.breached_passwords_file = policy
            .breached_passwords_file
            .map(|v| list_path(&name("breached_passwords_file"), &v).map(|p| base.join(p)))
            .transpose()?;
    }
    if let Some(limits) = parsed.limits {
        layer.body_bytes = limits
            .body_bytes
            .map(|v| body_bytes(&key("limits.body_bytes"), v))
            .transpose()?;
        layer.header_bytes = limits
            .header_bytes
            .map(|v| header_bytes(&key("limits.header_bytes"), v))
            .transpose()?;
        layer.request_timeout_secs = limits
            .request_timeout_secs
            .map(|v| positive(&key("limits.request_timeout_secs"), v))
            .transpose()?;
    }
    if let Some(accounts) = parsed.accounts {
        let name = |field: &str| key(&format!("accounts.{field}"));
        layer.activation_days = accounts
            .activation_days
            .map(|v| bounded(&name("activation_days"), v, MAX_ACTIVATION_DAYS))
            .transpose()?;
        layer.reset_timeout_secs = accounts
            .password_reset_timeout
            .map(|v| bounded(&name("password_reset_timeout"), v, MAX_RESET_SECS))
            .transpose()?;
        layer.flow_limit_per_ip = accounts
            .flow_limit_per_ip
            .map(|v| count(&name("flow_limit_per_ip"), v))
            .transpose()?;
        layer.flow_limit_per_address = accounts
            .flow_limit_per_address
            .map(|v| count(&name("flow_limit_per_address"), v))
            .transpose()?;
        layer.flow_limit_window_secs = accounts
            .flow_limit_window_secs
            .map(|v| positive(&name("flow_limit_window_secs"), v))
            .transpose()?;
    }
    if let Some(session) = parsed.session {
        layer.idle_timeout_secs = session
            .idle_timeout_secs
            .map(|v| positive(&key("session.idle_timeout_secs"), v))
            .transpose()?;
        layer.absolute_timeout_secs = session
            .absolute_timeout_secs
            .map(|v| positive(&key("session.absolute_timeout_secs"), v))
            .transpose()?;
    }
    if let Some(password) = parsed.password {
        layer.argon2_memory_kib = password.argon2_memory_kib;
        layer.argon2_iterations = password
            .argon2_iterations
            .map(|v| positive_u32(&key("password.argon2_iterations"), v))
            .transpose()?;
        layer.argon2_parallelism = password
            .argon2_parallelism
            .map(|v| parallelism(&key("password.argon2_parallelism"), v))
            .transpose()?;
        layer.hash_workers = password
            .hash_workers
            .map(|v| workers(&key("password.hash_workers"), v))
            .transpose()?;
    }
    Ok(layer)
}

fn env_layer(env: &BTreeMap<String, String>) -> Result<Layer, ConfigError> {
    // An empty variable counts as unset, as shells make `VAR=` easy to leave behind.
    let get = |name: &'static str| env.get(name).filter(|v| !v.is_empty()).map(|v| (name, v));
    let num = |name: &'static str| -> Result<Option<u64>, ConfigError> {
        get(name)
            .map(|(n, v)| {
                v.trim()
                    .parse::<u64>()
                    .map_err(|_| invalid(n, &format!("{v:?} is not a whole number")))
            })
            .transpose()
    };
    let u32_of =
        |name: &str, v: u64| u32::try_from(v).map_err(|_| invalid(name, "value is too large"));
    let mut layer = Layer {
        listen: get("PALISADE_LISTEN")
            .map(|(n, v)| parse_listen(n, v))
            .transpose()?,
        insecure_http: get("PALISADE_INSECURE_HTTP")
            .map(|(n, v)| parse_bool(n, v))
            .transpose()?,
        trusted_proxies: get("PALISADE_TRUSTED_PROXIES")
            .map(|(n, v)| parse_cidrs(n, comma_list(v)))
            .transpose()?,
        allowed_hosts: get("PALISADE_ALLOWED_HOSTS")
            .map(|(n, v)| parse_hosts(n, comma_list(v)))
            .transpose()?,
        database: get("PALISADE_DATABASE_URL")
            .map(|(n, v)| parse_url(n, v.clone(), false))
            .transpose()?,
        sessions: get("PALISADE_SESSIONS_URL")
            .map(|(n, v)| parse_url(n, v.clone(), true))
            .transpose()?,
        ..Layer::default()
    };
    let name = "PALISADE_BODY_BYTES";
    layer.body_bytes = num(name)?.map(|v| body_bytes(name, v)).transpose()?;
    let name = "PALISADE_HEADER_BYTES";
    layer.header_bytes = num(name)?.map(|v| header_bytes(name, v)).transpose()?;
    let name = "PALISADE_REQUEST_TIMEOUT_SECS";
    layer.request_timeout_secs = num(name)?.map(|v| positive(name, v)).transpose()?;
    let name = "PALISADE_SESSION_IDLE_TIMEOUT_SECS";
    layer.idle_timeout_secs = num(name)?.map(|v| positive(name, v)).transpose()?;
    let name = "PALISADE_SESSION_ABSOLUTE_TIMEOUT_SECS";
    layer.absolute_timeout_secs = num(name)?.map(|v| positive(name, v)).transpose()?;
    let name = "PALISADE_ARGON2_MEMORY_KIB";
    layer.argon2_memory_kib = num(name)?.map(|v| u32_of(name, v)).transpose()?;
    let name = "PALISADE_ARGON2_ITERATIONS";
    layer.argon2_iterations = num(name)?
        .map(|v| u32_of(name, v).and_then(|v| positive_u32(name, v)))
        .transpose()?;
    let name = "PALISADE_ARGON2_PARALLELISM";
    layer.argon2_parallelism = num(name)?
        .map(|v| u32_of(name, v).and_then(|v| parallelism(name, v)))
        .transpose()?;
    let name = "PALISADE_HASH_WORKERS";
    layer.hash_workers = num(name)?.map(|v| workers(name, v)).transpose()?;
    let name = "PALISADE_PASSWORD_MIN_LENGTH";
    layer.policy_min_length = num(name)?.map(|v| min_length(name, v)).transpose()?;
    let name = "PALISADE_PASSWORD_MAX_LENGTH";
    layer.policy_max_length = num(name)?.map(|v| max_length(name, v)).transpose()?;
    let name = "PALISADE_PASSWORD_MIN_STRENGTH";
    layer.policy_min_strength = num(name)?.map(|v| min_strength(name, v)).transpose()?;
    layer.policy_forbid_numeric = get("PALISADE_PASSWORD_FORBID_NUMERIC")
        .map(|(n, v)| parse_bool(n, v))
        .transpose()?;
    layer.policy_max_similarity = get("PALISADE_PASSWORD_MAX_SIMILARITY")
        .map(|(n, v)| parse_similarity(n, v))
        .transpose()?;
    let name = "PALISADE_PASSWORD_MIN_WORDS";
    layer.policy_min_words = num(name)?.map(|v| min_words(name, v)).transpose()?;
    layer.common_passwords_file = get("PALISADE_COMMON_PASSWORDS_FILE")
        .map(|(n, v)| list_path(n, v))
        .transpose()?;
    layer.breached_passwords_file = get("PALISADE_BREACHED_PASSWORDS_FILE")
        .map(|(n, v)| list_path(n, v))
        .transpose()?;
    layer.smtp = get("PALISADE_SMTP")
        .map(|(n, v)| parse_smtp(n, v))
        .transpose()?;
    // Taken as it is (no trimming): a password may start or end with a space.
    layer.smtp_password = get("PALISADE_SMTP_PASSWORD").map(|(_, v)| SmtpPassword(v.clone()));
    layer.mail_from = get("PALISADE_MAIL_FROM")
        .map(|(n, v)| parse_mailbox(n, v))
        .transpose()?;
    let name = "PALISADE_ACCOUNT_ACTIVATION_DAYS";
    layer.activation_days = num(name)?
        .map(|v| bounded(name, v, MAX_ACTIVATION_DAYS))
        .transpose()?;
    let name = "PALISADE_PASSWORD_RESET_TIMEOUT";
    layer.reset_timeout_secs = num(name)?
        .map(|v| bounded(name, v, MAX_RESET_SECS))
        .transpose()?;
    let name = "PALISADE_FLOW_LIMIT_PER_IP";
    layer.flow_limit_per_ip = num(name)?.map(|v| count(name, v)).transpose()?;
    let name = "PALISADE_FLOW_LIMIT_PER_ADDRESS";
    layer.flow_limit_per_address = num(name)?.map(|v| count(name, v)).transpose()?;
    let name = "PALISADE_FLOW_LIMIT_WINDOW_SECS";
    layer.flow_limit_window_secs = num(name)?.map(|v| positive(name, v)).transpose()?;
    Ok(layer)
}

fn flag_layer(flags: &Flags) -> Result<Layer, ConfigError> {
    Ok(Layer {
        listen: flags
            .listen
            .as_deref()
            .map(|v| parse_listen("--listen", v))
            .transpose()?,
        // A boolean flag can only switch plain HTTP on; absent means "not given".
        insecure_http: flags.insecure_http.then_some(true),
        trusted_proxies: if flags.trusted_proxies.is_empty() {
            None
        } else {
            Some(parse_cidrs(
                "--trusted-proxy",
                flags.trusted_proxies.iter().map(String::as_str),
            )?)
        },
        database: flags
            .database
            .clone()
            .map(|v| parse_url("--database", v, false))
            .transpose()?,
        sessions: flags
            .sessions
            .clone()
            .map(|v| parse_url("--sessions", v, true))
            .transpose()?,
        smtp: flags
            .smtp
            .as_deref()
            .map(|v| parse_smtp("--smtp", v))
            .transpose()?,
        ..Layer::default()
    })
}

fn comma_list(v: &str) -> impl Iterator<Item = &str> {
    v.split(',').map(str::trim).filter(|s| !s.is_empty())
}

fn parse_listen(source: &str, v: &str) -> Result<SocketAddr, ConfigError> {
    v.trim().parse().map_err(|_| {
        invalid(
            source,
            &format!("{v:?} is not an IP address and port, such as 127.0.0.1:8443 or [::1]:8443"),
        )
    })
}

fn parse_bool(source: &str, v: &str) -> Result<bool, ConfigError> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(invalid(
            source,
            &format!("{v:?} is not a boolean (use true or false)"),
        )),
    }
}

fn parse_cidrs<'a>(
    source: &str,
    items: impl Iterator<Item = &'a str>,
) -> Result<Vec<IpNet>, ConfigError> {
    items
        .map(|item| {
            let item = item.trim();
            // A bare address means just that host.
            item.parse::<IpNet>()
                .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    invalid(
                        source,
                        &format!("{item:?} is not a CIDR such as 10.0.0.0/8 or an IP address"),
                    )
                })
        })
        .collect()
}

fn parse_hosts<'a>(
    source: &str,
    items: impl Iterator<Item = &'a str>,
) -> Result<AllowedHosts, ConfigError> {
    AllowedHosts::parse(items).map_err(|reason| invalid(source, &reason))
}

fn parse_url(source: &str, v: String, sessions: bool) -> Result<SecretUrl, ConfigError> {
    let url = SecretUrl(v.trim().to_owned());
    let scheme = url.scheme();
    let ok = match scheme.as_str() {
        "sqlite" | "postgres" | "postgresql" => true,
        "redis" | "rediss" => sessions,
        _ => false,
    };
    if ok {
        Ok(url)
    } else {
        let expected = if sessions {
            "sqlite://, postgres:// or redis://"
        } else {
            "sqlite:// or postgres://"
        };
        // Display the redacted form: the URL may carry a password.
        Err(invalid(
            source,
            &format!("{url} is not a supported URL (expected {expected})"),
        ))
    }
}

/// The SMTP URL's own parser; its messages never quote the URL, which may hold a password.
fn parse_smtp(source: &str, v: &str) -> Result<SmtpUrl, ConfigError> {
    SmtpUrl::parse(v).map_err(|e| invalid(source, &mail_reason(e)))
}

/// The reason without the "SMTP URL:" prefix, since the source name already says which
/// setting it is.
fn mail_reason(e: MailConfigError) -> String {
    match e {
        MailConfigError::SmtpUrl(reason) => reason,
        other => other.to_string(),
    }
}

fn parse_mailbox(source: &str, v: &str) -> Result<Mailbox, ConfigError> {
    let v = v.trim();
    // lettre encodes a display name for the header, but a control character in it is
    // refused here, at load, rather than when the mailer starts.
    if v.chars().any(char::is_control) {
        return Err(invalid(source, "contains a control character"));
    }
    v.parse::<Mailbox>().map_err(|e| {
        invalid(
            source,
            &format!("{v:?} is not a mailbox such as \"Palisade <palisade@example.com>\" ({e})"),
        )
    })
}

/// A lifetime from 1 to `max` (days or seconds, as the caller counts).
fn bounded(source: &str, v: u64, max: u64) -> Result<u64, ConfigError> {
    if v == 0 || v > max {
        return Err(invalid(source, &format!("must be from 1 to {max}")));
    }
    Ok(v)
}

/// A rate limit: attempts per window, 0 to turn it off.
fn count(source: &str, v: u64) -> Result<u32, ConfigError> {
    u32::try_from(v).map_err(|_| invalid(source, "value is too large"))
}

fn min_length(source: &str, v: u64) -> Result<usize, ConfigError> {
    match usize::try_from(v) {
        Ok(n) if n <= MAX_PASSWORD_BYTES => Ok(n),
        _ => Err(invalid(
            source,
            &format!("must be at most {MAX_PASSWORD_BYTES} (0 turns the rule off)"),
        )),
    }
}

fn max_length(source: &str, v: u64) -> Result<usize, ConfigError> {
    match usize::try_from(v) {
        Ok(n) if (1..=MAX_PASSWORD_BYTES).contains(&n) => Ok(n),
        _ => Err(invalid(
            source,
            &format!("must be between 1 and {MAX_PASSWORD_BYTES} bytes"),
        )),
    }
}

fn min_strength(source: &str, v: u64) -> Result<u8, ConfigError> {
    match u8::try_from(v) {
        Ok(n) if n <= 4 => Ok(n),
        _ => Err(invalid(source, "must be a zxcvbn score from 0 (off) to 4")),
    }
}

fn min_words(source: &str, v: u64) -> Result<usize, ConfigError> {
    // A word takes at least two bytes with its separator: more could never fit.
    match usize::try_from(v) {
        Ok(n) if n <= MAX_PASSWORD_BYTES / 2 => Ok(n),
        _ => Err(invalid(
            source,
            &format!(
                "must be at most {} (0 turns the rule off)",
                MAX_PASSWORD_BYTES / 2
            ),
        )),
    }
}

fn similarity(source: &str, v: f64) -> Result<Option<f64>, ConfigError> {
    if v.is_finite() && v >= MIN_MAX_SIMILARITY {
        Ok(Some(v))
    } else {
        Err(invalid(
            source,
            &format!(
                "must be a number of at least {MIN_MAX_SIMILARITY} (lower would call every \
                 password similar), or off"
            ),
        ))
    }
}

/// A number, or `off` / `false` / `none` to turn the similarity rule off.
fn parse_similarity(source: &str, v: &str) -> Result<Option<f64>, ConfigError> {
    let text = v.trim();
    if matches!(
        text.to_ascii_lowercase().as_str(),
        "off" | "false" | "none" | "disabled"
    ) {
        return Ok(None);
    }
    let number = text
        .parse::<f64>()
        .map_err(|_| invalid(source, &format!("{v:?} is not a number or off")))?;
    similarity(source, number)
}

fn similarity_value(source: &str, v: &toml::Value) -> Result<Option<f64>, ConfigError> {
    match v {
        toml::Value::Float(f) => similarity(source, *f),
        // `max_similarity = 1` is a number too; any rounding of a huge one is harmless.
        toml::Value::Integer(i) => similarity(source, *i as f64),
        toml::Value::Boolean(false) => Ok(None),
        toml::Value::String(s) => parse_similarity(source, s),
        _ => Err(invalid(
            source,
            "must be a number (0.7 is Django's default) or false to turn the rule off",
        )),
    }
}

fn list_path(source: &str, v: &str) -> Result<PathBuf, ConfigError> {
    if v.trim().is_empty() {
        Err(invalid(source, "is empty"))
    } else {
        Ok(PathBuf::from(v))
    }
}

fn body_bytes(source: &str, v: u64) -> Result<usize, ConfigError> {
    let v = positive(source, v)?;
    usize::try_from(v).map_err(|_| invalid(source, "value is too large"))
}

fn header_bytes(source: &str, v: u64) -> Result<usize, ConfigError> {
    match usize::try_from(v) {
        Ok(n) if (MIN_HEADER_BYTES..=1024 * 1024).contains(&n) => Ok(n),
        _ => Err(invalid(
            source,
            &format!("{v} is out of range ({MIN_HEADER_BYTES} to 1048576 bytes)"),
        )),
    }
}

fn positive(source: &str, v: u64) -> Result<u64, ConfigError> {
    if v == 0 {
        Err(invalid(source, "must be greater than 0"))
    } else {
        Ok(v)
    }
}

fn positive_u32(source: &str, v: u32) -> Result<u32, ConfigError> {
    if v == 0 {
        Err(invalid(source, "must be greater than 0"))
    } else {
        Ok(v)
    }
}

fn parallelism(source: &str, v: u32) -> Result<u32, ConfigError> {
    if (1..=255).contains(&v) {
        Ok(v)
    } else {
        Err(invalid(source, "must be between 1 and 255"))
    }
}

fn workers(source: &str, v: u64) -> Result<usize, ConfigError> {
    match usize::try_from(v) {
        Ok(n) if (1..=1024).contains(&n) => Ok(n),
        _ => Err(invalid(source, "must be between 1 and 1024")),
    }
}

/// The short I/O reason without "(os error N)".
pub(crate) fn describe_io(err: &std::io::Error) -> String {
    match err.kind() {
        std::io::ErrorKind::NotFound => "No such file or directory".to_owned(),
        std::io::ErrorKind::PermissionDenied => "Permission denied".to_owned(),
        _ => {
            let text = err.to_string();
            match text.find(" (os error") {
                Some(cut) => text.get(..cut).unwrap_or(&text).to_owned(),
                None => text,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;

    fn sources(env: &[(&str, &str)], flags: Flags) -> Sources {
        Sources {
            flags,
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    fn with_file(toml: &str) -> (tempfile::TempDir, Flags) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(CONFIG_FILE_NAME), toml).unwrap();
        let flags = Flags {
            data_dir: Some(dir.path().to_owned()),
            ..Flags::default()
        };
        (dir, flags)
    }

    #[test]
    fn defaults() {
        let dir = tempfile::tempdir().unwrap();
        let flags = Flags {
            data_dir: Some(dir.path().to_owned()),
            ..Flags::default()
        };
        let c = Config::load(&sources(&[], flags)).unwrap();
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert!(!c.insecure_http);
        assert_eq!(c.limits.body_bytes, 1024 * 1024);
        assert_eq!(c.limits.header_bytes, 16 * 1024);
        assert_eq!(c.limits.request_timeout, Duration::from_secs(30));
        assert_eq!(c.session.idle_timeout, Duration::from_secs(7200));
        assert_eq!(c.session.absolute_timeout, Duration::from_secs(1_209_600));
        assert_eq!(c.password.argon2_memory_kib, 19456);
        assert_eq!(c.password.argon2_iterations, 2);
        assert_eq!(c.password.argon2_parallelism, 1);
        assert!(c.password.hash_workers >= 1);
        let db = format!("sqlite://{}", dir.path().join("palisade.db").display());
        assert_eq!(c.database.expose(), db);
        assert_eq!(c.sessions, c.database, "sessions default to the database");
        assert!(c.allowed_hosts.matches("localhost"));
        assert!(c.allowed_hosts.matches("[::1]"));
        assert!(c.config_file.is_none());
        assert!(!c.test_routes);
    }

    #[test]
    fn data_dir_precedence() {
        let s = sources(&[("PALISADE_DATA_DIR", "/env/dir")], Flags::default());
        assert_eq!(s.data_dir(), PathBuf::from("/env/dir"));
        let s = sources(
            &[("PALISADE_DATA_DIR", "/env/dir")],
            Flags {
                data_dir: Some("/flag/dir".into()),
                ..Flags::default()
            },
        );
        assert_eq!(s.data_dir(), PathBuf::from("/flag/dir"));
        let s = sources(&[], Flags::default());
        assert_eq!(s.data_dir(), PathBuf::from(DEFAULT_DATA_DIR));
    }

    #[test]
    fn file_then_env_then_flags() {
        let (_dir, mut flags) = with_file(
            "listen = \"127.0.0.1:1111\"\ndatabase = \"postgres://u:pw@db/x\"\n\
             [limits]\nbody_bytes = 100\n",
        );
        let c = Config::load(&sources(&[], flags.clone())).unwrap();
        assert_eq!(c.listen.port(), 1111);
        assert_eq!(c.limits.body_bytes, 100);
        assert!(c.config_file.is_some());

        let env = [
            ("PALISADE_LISTEN", "127.0.0.1:2222"),
            ("PALISADE_DATABASE_URL", "sqlite:///tmp/x.db"),
        ];
        let c = Config::load(&sources(&env, flags.clone())).unwrap();
        assert_eq!(c.listen.port(), 2222, "environment beats the file");
        assert_eq!(c.database.expose(), "sqlite:///tmp/x.db");
        assert_eq!(
            c.limits.body_bytes, 100,
            "file value kept where env is silent"
        );

        flags.listen = Some("127.0.0.1:3333".into());
        flags.sessions = Some("redis://cache:6379".into());
        let c = Config::load(&sources(&env, flags)).unwrap();
        assert_eq!(c.listen.port(), 3333, "flags beat the environment");
        assert_eq!(c.sessions.expose(), "redis://cache:6379");
        assert_eq!(c.database.expose(), "sqlite:///tmp/x.db");
    }

    #[test]
    fn account_flow_settings_from_file_and_env() {
        let (_dir, flags) = with_file(
            "[accounts]\nactivation_days = 3\npassword_reset_timeout = 900\n\
             flow_limit_per_ip = 7\nflow_limit_window_secs = 60\n",
        );
        let c = Config::load(&sources(&[("PALISADE_FLOW_LIMIT_PER_ADDRESS", "0")], flags)).unwrap();
        assert_eq!(c.accounts.activation_ttl, Duration::from_secs(3 * 86_400));
        assert_eq!(c.accounts.reset_ttl, Duration::from_secs(900));
        assert_eq!(c.accounts.flow_limits.per_ip, 7);
        assert_eq!(c.accounts.flow_limits.per_address, 0);
        assert_eq!(c.accounts.flow_limits.window, Duration::from_secs(60));

        let d = Config::load(&sources(&[], Flags::default())).unwrap();
        assert_eq!(d.accounts.activation_ttl, Duration::from_secs(7 * 86_400));
        assert_eq!(d.accounts.reset_ttl, Duration::from_secs(3600));
        for (name, value) in [
            ("PALISADE_ACCOUNT_ACTIVATION_DAYS", "0"),
            ("PALISADE_ACCOUNT_ACTIVATION_DAYS", "91"),
            ("PALISADE_PASSWORD_RESET_TIMEOUT", "999999999"),
            ("PALISADE_FLOW_LIMIT_WINDOW_SECS", "0"),
        ] {
            let err = Config::load(&sources(&[(name, value)], Flags::default()))
                .unwrap_err()
                .to_string();
            assert!(err.contains(name), "{err}");
        }
    }

    #[test]
    fn unknown_key_named_with_file_and_line() {
        let (dir, flags) = with_file("listen = \"127.0.0.1:1\"\nalowed_hosts = [\"x\"]\n");
        let err = Config::load(&sources(&[], flags)).unwrap_err().to_string();
        assert!(err.contains("alowed_hosts"), "{err}");
        assert!(err.contains(&dir.path().display().to_string()), "{err}");
        assert!(err.contains("line 2"), "{err}");
        assert!(!err.contains('\n'), "one line: {err:?}");
    }

    #[test]
    fn unknown_nested_key_rejected() {
        let (_dir, flags) = with_file("[limits]\nbody_byte = 3\n");
        let err = Config::load(&sources(&[], flags)).unwrap_err().to_string();
        assert!(err.contains("body_byte"), "{err}");
    }

    #[test]
    fn bad_values_name_their_source() {
        let (_dir, flags) = with_file("listen = \"localhost\"\n");
        let err = Config::load(&sources(&[], flags)).unwrap_err().to_string();
        assert!(err.contains("listen") && err.contains("localhost"), "{err}");

        let env = [("PALISADE_INSECURE_HTTP", "maybe")];
        let err = Config::load(&sources(&env, Flags::default()))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("PALISADE_INSECURE_HTTP:"), "{err}");

        let env = [("PALISADE_HEADER_BYTES", "100")];
        let err = Config::load(&sources(&env, Flags::default()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("PALISADE_HEADER_BYTES"), "{err}");

        let flags = Flags {
            trusted_proxies: vec!["10.0.0.0/33".into()],
            ..Flags::default()
        };
        let err = Config::load(&sources(&[], flags)).unwrap_err().to_string();
        assert!(err.starts_with("--trusted-proxy:"), "{err}");

        let (_dir, flags) =
            with_file("[session]\nidle_timeout_secs = 100\nabsolute_timeout_secs = 10\n");
        let err = Config::load(&sources(&[], flags)).unwrap_err().to_string();
        assert!(err.contains("idle_timeout_secs"), "{err}");
    }

    #[test]
    fn bad_url_error_hides_password() {
        let flags = Flags {
            database: Some("mysql://root:hunter2@db/x".into()),
            ..Flags::default()
        };
        let err = Config::load(&sources(&[], flags)).unwrap_err().to_string();
        assert!(err.contains("--database"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn secrets_never_in_debug() {
        let flags = Flags {
            database: Some("postgres://app:s3cret@db.internal:5432/palisade".into()),
            sessions: Some("redis://:r3dis@cache:6379/0".into()),
            ..Flags::default()
        };
        let c = Config::load(&sources(&[], flags)).unwrap();
        let debug = format!("{c:?}");
        assert!(!debug.contains("s3cret"), "{debug}");
        assert!(!debug.contains("r3dis"), "{debug}");
        assert!(
            debug.contains("postgres://app:***@db.internal:5432/palisade"),
            "{debug}"
        );
        assert_eq!(
            c.database.expose(),
            "postgres://app:s3cret@db.internal:5432/palisade"
        );
        assert_eq!(c.sessions.to_string(), "redis://:***@cache:6379/0");
    }

    #[test]
    fn env_lists_and_flags() {
        let env = [
            ("PALISADE_ALLOWED_HOSTS", "example.com, .example.org"),
            ("PALISADE_INSECURE_HTTP", "true"),
            ("PALISADE_TRUSTED_PROXIES", "10.0.0.0/8,::1"),
        ];
        let c = Config::load(&sources(&env, Flags::default())).unwrap();
        assert!(c.insecure_http);
        assert_eq!(c.trusted_proxies.len(), 2);
        assert!(c.allowed_hosts.matches("example.com"));
        assert!(c.allowed_hosts.matches("www.example.org"));
        assert!(
            !c.allowed_hosts.matches("localhost"),
            "a list replaces the defaults"
        );
        assert_eq!(c.scheme(), "http");
    }

    #[test]
    fn explicit_config_file_must_exist() {
        let flags = Flags {
            config: Some("/nonexistent/palisade.toml".into()),
            ..Flags::default()
        };
        let err = Config::load(&sources(&[], flags)).unwrap_err().to_string();
        assert_eq!(err, "/nonexistent/palisade.toml: No such file or directory");
    }

    #[test]
    fn policy_and_mail_defaults() {
        let c = Config::load(&sources(&[], Flags::default())).unwrap();
        assert_eq!(c.password_policy, PasswordPolicySettings::default());
        let built = c.password_policy.build().unwrap();
        let library = PasswordPolicy::default();
        assert_eq!(built.min_length, library.min_length);
        assert_eq!(built.max_length, library.max_length);
        assert_eq!(built.min_strength, library.min_strength);
        assert_eq!(built.max_similarity, library.max_similarity);
        assert!(built.common_passwords.is_none() && built.breached.is_none());
        assert!(c.mail.smtp.is_none());
        assert_eq!(c.mail.from.to_string(), mail::DEFAULT_FROM);
        let mail = c.mail_config();
        assert_eq!(
            mail.transport,
            mail::MailTransport::Outbox {
                dir: c.data_dir.join("outbox")
            }
        );
    }

    #[test]
    fn policy_from_file_then_env() {
        let (dir, flags) = with_file(
            "[password_policy]\nmin_length = 16\nmax_length = 200\nmin_strength = 4\n\
             forbid_numeric = false\nmax_similarity = false\nmin_words = 2\n\
             common_passwords_file = \"lists/common.txt\"\n\
             breached_passwords_file = \"/srv/pwned.txt\"\n",
        );
        let c = Config::load(&sources(&[], flags.clone())).unwrap();
        let p = &c.password_policy;
        assert_eq!(
            (p.min_length, p.max_length, p.min_strength, p.min_words),
            (16, 200, 4, 2)
        );
        assert!(!p.forbid_numeric);
        assert_eq!(p.max_similarity, None);
        assert_eq!(
            p.common_passwords_file.as_deref(),
            Some(dir.path().join("lists/common.txt").as_path()),
            "a relative list path is taken from the configuration file's folder"
        );
        assert_eq!(
            p.breached_passwords_file.as_deref(),
            Some(Path::new("/srv/pwned.txt"))
        );

        let env = [
            ("PALISADE_PASSWORD_MIN_LENGTH", "12"),
            ("PALISADE_PASSWORD_MAX_SIMILARITY", "0.5"),
            ("PALISADE_PASSWORD_FORBID_NUMERIC", "yes"),
            ("PALISADE_COMMON_PASSWORDS_FILE", "relative.txt"),
        ];
        let c = Config::load(&sources(&env, flags)).unwrap();
        let p = &c.password_policy;
        assert_eq!(p.min_length, 12, "environment beats the file");
        assert_eq!(p.max_length, 200, "file value kept where env is silent");
        assert_eq!(p.max_similarity, Some(0.5));
        assert!(p.forbid_numeric);
        assert_eq!(
            p.common_passwords_file.as_deref(),
            Some(Path::new("relative.txt"))
        );

        let env = [("PALISADE_PASSWORD_MAX_SIMILARITY", "off")];
        let c = Config::load(&sources(&env, Flags::default())).unwrap();
        assert_eq!(c.password_policy.max_similarity, None);
        let (_dir, flags) = with_file("[password_policy]\nmax_similarity = 1\n");
        let c = Config::load(&sources(&[], flags)).unwrap();
        assert_eq!(c.password_policy.max_similarity, Some(1.0));
    }

    #[test]
    fn bad_policy_values_name_their_source() {
        let (_dir, flags) = with_file("[password_policy]\nmin_lenght = 16\n");
        let err = Config::load(&sources(&[], flags)).unwrap_err().to_string();
        assert!(
            err.contains("min_lenght") && err.contains("line 2"),
            "{err}"
        );
        assert!(!err.contains('\n'), "one line: {err:?}");

        for (toml, key) in [
            ("min_strength = 5", "password_policy.min_strength"),
            ("max_similarity = 0.05", "password_policy.max_similarity"),
            ("max_similarity = true", "password_policy.max_similarity"),
            (
                "max_similarity = \"high\"",
                "password_policy.max_similarity",
            ),
            ("max_length = 0", "password_policy.max_length"),
            ("max_length = 5000", "password_policy.max_length"),
            (
                "common_passwords_file = \"\"",
                "password_policy.common_passwords_file",
            ),
        ] {
            let (_dir, flags) = with_file(&format!("[password_policy]\n{toml}\n"));
            let err = Config::load(&sources(&[], flags)).unwrap_err().to_string();
            assert!(err.contains(key), "{toml}: {err}");
            assert!(!err.contains('\n'), "one line: {err:?}");
        }

        let (_dir, flags) = with_file("[password_policy]\nmin_length = 20\nmax_length = 12\n");
        let err = Config::load(&sources(&[], flags)).unwrap_err().to_string();
        assert!(err.starts_with("password_policy:"), "{err}");
        assert!(err.contains("max_length"), "{err}");

        let env = [("PALISADE_PASSWORD_MIN_STRENGTH", "9")];
        let err = Config::load(&sources(&env, Flags::default()))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("PALISADE_PASSWORD_MIN_STRENGTH:"), "{err}");
        let env = [("PALISADE_PASSWORD_MAX_SIMILARITY", "NaN")];
        let err = Config::load(&sources(&env, Flags::default()))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("PALISADE_PASSWORD_MAX_SIMILARITY:"),
            "{err}"
        );
    }

    #[test]
    fn policy_lists_are_loaded_by_build_with_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let common = dir.path().join("common.txt");
        std::fs::write(&common, "\u{feff}Hunter2-Summer\n\nzebra-quantum-88\r\n").unwrap();
        let settings = PasswordPolicySettings {
            common_passwords_file: Some(common.clone()),
            ..PasswordPolicySettings::default()
        };
        let policy = settings.build().unwrap();
        assert_eq!(policy.common_passwords.as_ref().map(|l| l.len()), Some(2));

        std::fs::write(&common, b"fine\n\xff\xfe\n").unwrap();
        let err = settings.build().unwrap_err().to_string();
        assert_eq!(
            err,
            format!("{}: line 2 is not valid UTF-8", common.display())
        );

        let missing = dir.path().join("nope.txt");
        let settings = PasswordPolicySettings {
            common_passwords_file: Some(missing.clone()),
            ..PasswordPolicySettings::default()
        };
        let err = settings.build().unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "{}: cannot read the common-password list: No such file or directory",
                missing.display()
            )
        );

        let settings = PasswordPolicySettings {
            breached_passwords_file: Some(missing.clone()),
            ..PasswordPolicySettings::default()
        };
        let err = settings.build().unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "{}: cannot open the breached-password file: No such file or directory",
                missing.display()
            )
        );
        // A list of passwords where the hash file belongs: refused at start-up, named.
        let wrong = dir.path().join("wrong.txt");
        std::fs::write(&wrong, "password\n123456\n").unwrap();
        let settings = PasswordPolicySettings {
            breached_passwords_file: Some(wrong.clone()),
            ..PasswordPolicySettings::default()
        };
        let err = settings.build().unwrap_err().to_string();
        assert!(err.contains(&wrong.display().to_string()), "{err}");
        assert!(!err.contains('\n'), "one line: {err:?}");
    }

    #[test]
    fn smtp_layers_and_secrecy() {
        let (_dir, flags) = with_file(
            "smtp = \"smtps://file:filepw@mail.example.com\"\n\
             mail_from = \"Example Accounts <accounts@example.com>\"\n",
        );
        let c = Config::load(&sources(&[], flags.clone())).unwrap();
        let smtp = c.mail.smtp.as_ref().unwrap();
        assert_eq!(smtp.host(), "mail.example.com");
        assert_eq!(smtp.port(), 465);
        assert_eq!(c.mail.from.email.to_string(), "accounts@example.com");
        assert!(!format!("{c:?}").contains("filepw"), "{c:?}");

        let env = [
            ("PALISADE_SMTP", "smtp://envuser@relay.example.com"),
            ("PALISADE_SMTP_PASSWORD", "p4ss word"),
        ];
        let c = Config::load(&sources(&env, flags.clone())).unwrap();
        let smtp = c.mail.smtp.as_ref().unwrap();
        assert_eq!(smtp.user(), Some("envuser"), "environment beats the file");
        assert_eq!(smtp.port(), 587);
        let debug = format!("{c:?}");
        assert!(!debug.contains("p4ss"), "{debug}");
        assert!(
            debug.contains("smtp://envuser:***@relay.example.com:587"),
            "{debug}"
        );

        let mut flags = flags;
        flags.smtp = Some("smtp://flaguser@flag.example.com:2525".into());
        let c = Config::load(&sources(&env, flags)).unwrap();
        let smtp = c.mail.smtp.as_ref().unwrap();
        assert_eq!(
            smtp.to_string(),
            "smtp://flaguser:***@flag.example.com:2525",
            "the flag beats the environment, and the password still applies"
        );
        assert!(matches!(
            c.mail_config().transport,
            mail::MailTransport::Smtp(_)
        ));
    }

    #[test]
    fn bad_mail_settings_are_refused_without_the_password() {
        let flags = Flags {
            smtp: Some("http://user:hunter2@mail.example.com".into()),
            ..Flags::default()
        };
        let err = Config::load(&sources(&[], flags)).unwrap_err().to_string();
        assert!(err.starts_with("--smtp:"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");

        let env = [("PALISADE_SMTP_PASSWORD", "hunter2")];
        let err = Config::load(&sources(&env, Flags::default()))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("PALISADE_SMTP_PASSWORD:"), "{err}");
        assert!(err.contains("no SMTP server"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");

        // A password for a URL without a user name, or without TLS, has nowhere safe to go.
        for url in ["smtp://mail.example.com", "smtp://127.0.0.1:25?tls=none"] {
            let env = [
                ("PALISADE_SMTP", url),
                ("PALISADE_SMTP_PASSWORD", "hunter2"),
            ];
            let err = Config::load(&sources(&env, Flags::default()))
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("PALISADE_SMTP_PASSWORD:"), "{url}: {err}");
            assert!(!err.contains("hunter2"), "{err}");
        }

        let env = [("PALISADE_MAIL_FROM", "not a mailbox")];
        let err = Config::load(&sources(&env, Flags::default()))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("PALISADE_MAIL_FROM:"), "{err}");
        let (_dir, flags) = with_file("mail_from = \"Evil\\r\\nBcc: x <a@example.com>\"\n");
        let err = Config::load(&sources(&[], flags)).unwrap_err().to_string();
        assert!(
            err.contains("mail_from") && err.contains("control"),
            "{err}"
        );
    }

    #[test]
    fn test_routes_only_from_env() {
        let c = Config::load(&sources(&[("PALISADE_TEST_ROUTES", "1")], Flags::default())).unwrap();
        assert!(c.test_routes);
    }

    #[test]
    fn master_key_only_from_env_and_never_shown() {
        let text = "h8sOGu9H3Z2wbkMvGh_9HMnU7gk2lY4v7gqvYu9H3Z0=";
        let c = Config::load(&sources(&[("PALISADE_MASTER_KEY", text)], Flags::default())).unwrap();
        assert_eq!(c.master_key.as_ref().map(MasterKeyText::expose), Some(text));
        let shown = format!("{c:?}");
        assert!(!shown.contains(text), "{shown}");
        let c = Config::load(&sources(&[("PALISADE_MASTER_KEY", " ")], Flags::default())).unwrap();
        assert!(c.master_key.is_none(), "empty is unset");
        // Not a file setting: the file travels with the database it would unlock.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("palisade.toml");
        std::fs::write(&file, format!("master_key = \"{text}\"\n")).unwrap();
        let flags = Flags {
            config: Some(file),
            ..Flags::default()
        };
        let err = Config::load(&sources(&[], flags)).unwrap_err().to_string();
        assert!(err.contains("master_key"), "{err}");
        assert!(!err.contains(text), "{err}");
    }
}
