//! Server configuration, resolved in one direction: built-in defaults, then `palisade.toml`,
//! then `PALISADE_*` environment variables, then command-line flags. Each layer is parsed
//! into the same typed [`Layer`] (every field optional) before anything is merged, so a bad
//! value is reported against the place it came from (the file and key, or the variable),
//! and the merged [`Config`] only ever holds validated values.
//!
//! Unknown keys in the file are rejected: a misspelt `alowed_hosts` silently falling back to
//! a default is exactly the kind of mistake that weakens a deployment unnoticed.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;

use crate::hosts::AllowedHosts;

/// The default listen address: loopback only, so a first start exposes nothing.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8443";
/// The data directory when neither `--data-dir` nor `PALISADE_DATA_DIR` is given.
pub const DEFAULT_DATA_DIR: &str = "./palisade-data";
/// The configuration file looked for inside the data directory.
pub const CONFIG_FILE_NAME: &str = "palisade.toml";

/// hyper refuses (by panicking) an HTTP/1 read buffer smaller than this, so the header
/// limit is validated against it instead of being passed through.
const MIN_HEADER_BYTES: usize = 8192;

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
        finish(data_dir, config_file, merged, test_routes)
    }

    /// The URL scheme this server answers on.
    pub fn scheme(&self) -> &'static str {
        if self.insecure_http { "http" } else { "https" }
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
        ..Layer::default()
    };
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
    fn test_routes_only_from_env() {
        let c = Config::load(&sources(&[("PALISADE_TEST_ROUTES", "1")], Flags::default())).unwrap();
        assert!(c.test_routes);
    }
}
