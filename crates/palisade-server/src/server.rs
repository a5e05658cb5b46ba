//! The process around the application: the data directory, binding, serving over TLS or
//! plain HTTP with hyper's limits set, logging, and graceful shutdown.

use std::future::Future;
use std::io::IsTerminal;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum_server::Handle;
use axum_server::tls_rustls::RustlsConfig;
use rustls::ServerConfig;

use palisade_core::SessionStore as _;
use palisade_store::SqliteStore;

use crate::app::{self, AppState};
use crate::config::Config;
use crate::error::ServerError;
use crate::tls;

/// How long a connection may take to complete its TLS handshake or first request; a client
/// that holds a socket open without speaking must not hold it for long.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Creates the data directory (and missing parents) with mode 0700 if it does not exist.
/// An existing directory is left as it is: its owner chose its mode.
pub fn ensure_data_dir(dir: &Path) -> Result<(), ServerError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| ServerError::io(dir.display().to_string(), &e))
}

/// Installs the log subscriber: human-readable `key=value` events on standard error, level
/// from `PALISADE_LOG` (`RUST_LOG` syntax), default `info`. Calling it twice is harmless.
pub fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("PALISADE_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,rustls=warn,hyper=warn,h2=warn"));
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(filter)
        .with_target(false)
        .try_init();
}

/// Resolves when the process receives SIGINT or SIGTERM. The handlers are installed when
/// this is called (so a signal arriving just after start-up is caught rather than killing
/// the process); call it inside the runtime, before announcing the address.
pub fn shutdown_signal() -> Result<impl Future<Output = ()> + Send + 'static, ServerError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())
        .map_err(|e| ServerError::io("installing the SIGTERM handler", &e))?;
    let mut int = signal(SignalKind::interrupt())
        .map_err(|e| ServerError::io("installing the SIGINT handler", &e))?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received"),
            _ = int.recv() => tracing::info!("SIGINT received"),
        }
    })
}

/// Applies hyper's limits and serves. A macro rather than a function: the TLS and plain
/// servers differ in their acceptor type, and spelling out axum-server's bounds for a
/// generic function would be longer than the body.
macro_rules! run {
    ($server:expr, $handle:expr, $limits:expr, $app:expr) => {{
        let mut server = $server;
        let limits: &crate::config::Limits = $limits;
        let builder = server.http_builder();
        // The request head (line + headers) must fit in hyper's read buffer: over it, hyper
        // answers 431. The configuration guarantees at least hyper's 8 KiB minimum (hyper
        // panics below it).
        builder
            .http1()
            .max_buf_size(limits.header_bytes)
            .header_read_timeout(Some(limits.request_timeout));
        builder
            .http2()
            .max_header_list_size(u32::try_from(limits.header_bytes).unwrap_or(u32::MAX));
        server
            .handle($handle)
            .first_request_timeout(HANDSHAKE_TIMEOUT)
            .serve($app)
            .await
    }};
}

/// A server that has its socket and certificates and is ready to serve.
#[derive(Debug)]
pub struct Server {
    config: Config,
    listener: TcpListener,
    local_addr: SocketAddr,
    tls: Option<Arc<ServerConfig>>,
    csrf_key: crate::auth::ServerKey,
    store: Option<SqliteStore>,
}

/// How often expired sessions are deleted from the store.
const SESSION_SWEEP_INTERVAL: Duration = Duration::from_secs(10 * 60);

pub(crate) fn state_timeouts(config: &Config) -> palisade_core::SessionTimeouts {
    let secs = |d: Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
    palisade_core::SessionTimeouts {
        idle_secs: secs(config.session.idle_timeout),
        absolute_secs: secs(config.session.absolute_timeout),
    }
}

/// Refuses storage URLs this build cannot serve yet, before anything is bound.
fn check_storage(config: &Config) -> Result<(), ServerError> {
    match config.database.scheme().as_str() {
        "sqlite" => {}
        "postgres" | "postgresql" => {
            return Err(ServerError::Database(
                "PostgreSQL support is not built yet; use a sqlite:// database".into(),
            ));
        }
        other => {
            return Err(ServerError::Database(format!(
                "unsupported database scheme {other:?}"
            )));
        }
    }
    if config.sessions.expose() != config.database.expose() {
        return Err(ServerError::Database(
            "a separate session store (Redis) is not built yet; sessions are kept in the              database"
                .into(),
        ));
    }
    Ok(())
}

impl Server {
    /// Prepares everything that can fail because of the machine: the data directory, the
    /// development certificates (HTTPS only) and the listening socket (port 0 picks a free
    /// port). Blocking file I/O; call it before or outside the async runtime's hot path.
    pub fn bind(config: Config) -> Result<Server, ServerError> {
        check_storage(&config)?;
        ensure_data_dir(&config.data_dir)?;
        let csrf_key = crate::auth::load_or_create_key(&config.data_dir)?;
        let tls = if config.insecure_http {
            None
        } else {
            Some(tls::server_config(&config.data_dir, config.listen.ip())?)
        };
        if !config.insecure_http && !config.trusted_proxies.is_empty() {
            tracing::warn!(
                "trusted_proxies is ignored over HTTPS: forwarded headers are only believed \
                 with insecure_http behind a TLS-terminating proxy"
            );
        }
        let listener = TcpListener::bind(config.listen)
            .map_err(|e| ServerError::io(format!("cannot listen on {}", config.listen), &e))?;
        let local_addr = listener
            .local_addr()
            .map_err(|e| ServerError::io("reading the bound address", &e))?;
        Ok(Server {
            config,
            listener,
            local_addr,
            tls,
            csrf_key,
            store: None,
        })
    }

    /// Opens the database and applies pending migrations. Call it before announcing the
    /// address so a broken database is reported as a start-up error; [`Server::serve`] calls
    /// it itself if it has not been called.
    pub async fn open_store(&mut self) -> Result<(), ServerError> {
        if self.store.is_some() {
            return Ok(());
        }
        let store = SqliteStore::open(self.config.database.expose())
            .await
            .map_err(|e| ServerError::Database(format!("opening the database: {e}")))?;
        store
            .migrate()
            .await
            .map_err(|e| ServerError::Database(format!("migrating the database: {e}")))?;
        self.store = Some(store);
        Ok(())
    }

    /// The address actually bound (the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `https://127.0.0.1:8443` (or `http://…` with plain HTTP).
    pub fn url(&self) -> String {
        format!("{}://{}", self.config.scheme(), self.local_addr)
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Serves until `shutdown` resolves, then stops accepting, lets in-flight requests
    /// finish for at most the request timeout, and returns. Must run inside a Tokio runtime.
    pub async fn serve(
        mut self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        self.open_store().await?;
        let store = self
            .store
            .clone()
            .ok_or_else(|| ServerError::Database("the database is not open".into()))?;
        let state = AppState::new(self.config.clone(), store.clone(), self.csrf_key.clone())?;
        let app = app::router(state).into_make_service_with_connect_info::<SocketAddr>();
        let limits = self.config.limits.clone();
        // No request may legitimately outlive the request timeout, so that bounds the drain.
        let grace = limits.request_timeout;

        // Expired sessions are refused on use anyway; this only keeps the table from
        // growing with sessions nobody comes back to.
        let sweeper = {
            let store = store.clone();
            let timeouts = state_timeouts(&self.config);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(SESSION_SWEEP_INTERVAL);
                loop {
                    tick.tick().await;
                    if let Err(e) = store
                        .delete_expired_sessions(crate::auth::now(), &timeouts)
                        .await
                    {
                        tracing::warn!(error = %e, "deleting expired sessions failed");
                    }
                }
            })
        };

        let handle: Handle<SocketAddr> = Handle::new();
        let trigger = handle.clone();
        tokio::spawn(async move {
            shutdown.await;
            tracing::info!(
                grace_secs = grace.as_secs(),
                "shutting down: draining connections"
            );
            trigger.graceful_shutdown(Some(grace));
        });

        let url = self.url();
        let result = match self.tls {
            Some(tls) => {
                let acceptor =
                    axum_server::tls_rustls::RustlsAcceptor::new(RustlsConfig::from_config(tls))
                        .handshake_timeout(HANDSHAKE_TIMEOUT);
                let server = axum_server::from_tcp(self.listener)
                    .map_err(|e| ServerError::io("listening socket", &e))?
                    .acceptor(acceptor);
                tracing::info!(%url, "serving over TLS");
                run!(server, handle, &limits, app)
            }
            None => {
                let server = axum_server::from_tcp(self.listener)
                    .map_err(|e| ServerError::io("listening socket", &e))?;
                tracing::info!(%url, "serving plain HTTP (expecting a TLS-terminating proxy)");
                run!(server, handle, &limits, app)
            }
        };
        // In-flight requests have finished (or the grace period ran out): now the database
        // can be closed, which checkpoints the WAL.
        sweeper.abort();
        store.close().await;
        result.map_err(|e| ServerError::io("serving", &e))?;
        tracing::info!("stopped");
        Ok(())
    }
}
