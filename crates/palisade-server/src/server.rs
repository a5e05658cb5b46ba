//! The process around the application: the data directory, binding, serving over TLS or
//! plain HTTP with hyper's limits set, logging, and graceful shutdown.
//!
//! Shutdown runs in dependency order: stop accepting and drain the HTTP requests, then let
//! the mailer deliver what those requests queued (bounded by the same grace), then write the
//! audit records of mail that could not be delivered, and only then close the database,
//! which those records need.

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
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use palisade_core::password_policy::PasswordPolicy;
use palisade_core::{
    AuditEvent, AuditLog as _, AuthzStore as _, SessionStore as _, TokenStore as _,
};
use palisade_store::SqliteStore;

use crate::app::{self, AppState};
use crate::config::{Config, MasterKeyText};
use crate::error::ServerError;
use crate::mail::{FailureHook, MailFailure, Mailer};
use crate::secrets::MasterKey;
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
    password_policy: PasswordPolicy,
    master_key: MasterKey,
    services: Option<Services>,
}

/// What [`Server::prepare`] starts: the application state (database, mailer, …) and the
/// task that writes undelivered mail to the audit log.
#[derive(Debug)]
struct Services {
    state: AppState,
    mail_audit: MailAudit,
}

/// Mail failures waiting for their audit record. Bounded so a mail server that is down
/// during a flood of sign-ups cannot grow memory without limit; past it a failure is still
/// in the mailer's log, only its audit record is lost (and that loss is logged).
const MAIL_AUDIT_QUEUE: usize = 1024;

#[derive(Debug)]
enum MailAuditJob {
    Record(MailFailure),
    /// Answered once every job queued before it is done: shutdown waits on it so no record
    /// is lost to the database closing.
    Flush(oneshot::Sender<()>),
}

/// The mailer's failure hook feeds a queue; one task drains it into the audit log. A queue
/// rather than a task spawned per failure: records keep their order, the backlog is
/// bounded, and shutdown can wait for the backlog with one `Flush`.
#[derive(Debug)]
struct MailAudit {
    jobs: mpsc::Sender<MailAuditJob>,
    task: JoinHandle<()>,
}

impl MailAudit {
    fn start(store: SqliteStore) -> Self {
        let (jobs, receiver) = mpsc::channel(MAIL_AUDIT_QUEUE);
        let task = tokio::spawn(record_mail_failures(store, receiver));
        Self { jobs, task }
    }

    /// The hook handed to the mailer. It holds only the queue's sender, never a `Mailer`
    /// (that would keep the mailer alive after its last user). It runs on the mailer's task
    /// or on a request's, so it must not wait: `try_send`, and a full queue is logged.
    fn hook(&self) -> FailureHook {
        let jobs = self.jobs.clone();
        Arc::new(move |failure: MailFailure| {
            if let Err(e) = jobs.try_send(MailAuditJob::Record(failure)) {
                let (mpsc::error::TrySendError::Full(job) | mpsc::error::TrySendError::Closed(job)) =
                    e;
                if let MailAuditJob::Record(failure) = job {
                    tracing::error!(
                        message_id = %failure.message_id,
                        to = %failure.to,
                        reason = %failure.reason,
                        "undelivered mail not recorded in the audit log: its queue is full \
                         or closed"
                    );
                }
            }
        })
    }

    /// Waits (at most `limit`) until every failure reported so far is in the audit log,
    /// then stops the task.
    async fn finish(self, limit: Duration) {
        let (done, flushed) = oneshot::channel();
        let jobs = self.jobs;
        let waited = tokio::time::timeout(limit, async move {
            jobs.send(MailAuditJob::Flush(done)).await.ok()?;
            flushed.await.ok()
        })
        .await;
        if !matches!(waited, Ok(Some(()))) {
            tracing::warn!("gave up waiting for the audit records of undelivered mail");
        }
        self.task.abort();
    }

    /// Stops the task without waiting (start-up failed; nothing can have been queued).
    fn abort(self) {
        self.task.abort();
    }
}

/// The audit record of one undelivered message: the recipient as target, and why, which
/// message and how many attempts as detail. Never the body: it carries single-use links.
fn mail_failure_event(failure: &MailFailure) -> AuditEvent {
    let mut event = AuditEvent::new(crate::auth::now(), "mail.failed");
    event.actor = Some("system".to_owned());
    event.target = Some(failure.to.clone());
    event.detail = serde_json::json!({
        "reason": failure.reason.as_str(),
        "message_id": failure.message_id,
        "subject": failure.subject,
        "attempts": failure.attempts,
        "error": failure.error,
    });
    event
}

async fn record_mail_failures(store: SqliteStore, mut jobs: mpsc::Receiver<MailAuditJob>) {
    while let Some(job) = jobs.recv().await {
        match job {
            MailAuditJob::Record(failure) => {
                match store.append(mail_failure_event(&failure)).await {
                    Ok(record) => tracing::info!(
                        message_id = %failure.message_id,
                        to = %failure.to,
                        reason = %failure.reason,
                        audit_seq = record.seq,
                        "undelivered mail recorded in the audit log"
                    ),
                    Err(e) => tracing::error!(
                        message_id = %failure.message_id,
                        to = %failure.to,
                        reason = %failure.reason,
                        error = %e,
                        "undelivered mail could not be recorded in the audit log"
                    ),
                }
            }
            MailAuditJob::Flush(done) => {
                let _ = done.send(());
            }
        }
    }
}

/// One line describing the active policy, so an operator can see that the lists they
/// configured were loaded.
fn log_policy(policy: &PasswordPolicy, config: &Config) {
    let settings = &config.password_policy;
    tracing::info!(
        min_length = policy.min_length,
        max_length = policy.max_length,
        min_strength = policy.min_strength,
        forbid_numeric = policy.forbid_numeric,
        max_similarity = ?policy.max_similarity,
        min_words = policy.min_words,
        common_passwords = policy.common_passwords.as_ref().map_or(0, |l| l.len()),
        breached_passwords_file = ?settings.breached_passwords_file,
        "password policy ready"
    );
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
    /// master key (`DATA_DIR/master.key`, made on first start, or `PALISADE_MASTER_KEY`), the
    /// development certificates (HTTPS only) and the listening socket (port 0 picks a free
    /// port). Blocking file I/O; call it before or outside the async runtime's hot path.
    pub fn bind(config: Config) -> Result<Server, ServerError> {
        check_storage(&config)?;
        // The word lists are read once, here, so a missing or malformed file is a start-up
        // error rather than a surprise at the first password change.
        let password_policy = config.password_policy.build()?;
        log_policy(&password_policy, &config);
        ensure_data_dir(&config.data_dir)?;
        let csrf_key = crate::auth::load_or_create_key(&config.data_dir)?;
        // Before anything is bound: a malformed PALISADE_MASTER_KEY or master.key is a
        // start-up error. Whether it matches the database is checked by `prepare`.
        let master_key = crate::secrets::load_or_create_master_key(
            &config.data_dir,
            config.master_key.as_ref().map(MasterKeyText::expose),
        )?;
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
            password_policy,
            master_key,
            services: None,
        })
    }

    /// Opens the database, applies pending migrations, opens the token-signing keys with the
    /// master key (making the first one on a new database), starts the mailer (creating the
    /// outbox, or preparing the SMTP client) and builds the application state. Call it
    /// before announcing the address so a broken database or mail set-up is reported as a
    /// start-up error; [`Server::serve`] calls it itself if it has not been called. Must run
    /// inside a Tokio runtime.
    pub async fn prepare(&mut self) -> Result<(), ServerError> {
        if self.services.is_some() {
            return Ok(());
        }
        let store = SqliteStore::open(self.config.database.expose())
            .await
            .map_err(|e| ServerError::Database(format!("opening the database: {e}")))?;
        // The built-in apps' permissions are registered with the schema, as Django's
        // post_migrate does, so a grant never names a permission the database lacks.
        let migrated = match store.migrate().await {
            Ok(()) => store
                .ensure_permissions(&palisade_core::builtin_permissions())
                .await
                .map(drop),
            Err(e) => Err(e),
        };
        if let Err(e) = migrated {
            store.close().await;
            return Err(ServerError::Database(format!(
                "migrating the database: {e}"
            )));
        }
        // Opens (on a new database: makes) the token-signing keys now, so a master key that
        // does not match the database stops the start rather than the first sign-up.
        if let Err(e) =
            crate::secrets::token_key_ring(&store, &self.master_key, crate::auth::now()).await
        {
            store.close().await;
            return Err(e.into());
        }
        let mail_audit = MailAudit::start(store.clone());
        // Mailer::start logs the transport it uses: the redacted SMTP URL or the outbox path.
        let mailer = match Mailer::start(self.config.mail_config(), mail_audit.hook()) {
            Ok(mailer) => mailer,
            Err(e) => {
                mail_audit.abort();
                store.close().await;
                return Err(ServerError::Io {
                    what: "mail transport".to_owned(),
                    reason: e.to_string(),
                });
            }
        };
        let state = match AppState::new(
            self.config.clone(),
            store.clone(),
            self.csrf_key.clone(),
            self.password_policy.clone(),
            mailer.clone(),
            self.master_key.clone(),
        ) {
            Ok(state) => state,
            Err(e) => {
                mailer.shutdown(Duration::ZERO).await;
                mail_audit.abort();
                store.close().await;
                return Err(e);
            }
        };
        self.services = Some(Services { state, mail_audit });
        Ok(())
    }

    /// The same as [`Server::prepare`]: the database is opened together with what depends
    /// on it (the mail failure audit, the application state).
    pub async fn open_store(&mut self) -> Result<(), ServerError> {
        self.prepare().await
    }

    /// The application state once [`Server::prepare`] has run: what the request handlers
    /// see (store, mailer, password policy…), for callers and tests that act as a handler.
    pub fn state(&self) -> Option<&AppState> {
        self.services.as_ref().map(|s| &s.state)
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
    /// finish for at most the request timeout, gives queued mail the same time to be
    /// delivered (what is left is reported and audited), closes the database and returns.
    /// Must run inside a Tokio runtime.
    pub async fn serve(
        mut self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        self.prepare().await?;
        let Services { state, mail_audit } = self
            .services
            .take()
            .ok_or_else(|| ServerError::Database("the database is not open".into()))?;
        let store = state.store().clone();
        let mailer = state.mailer().clone();
        let app = app::router(state).into_make_service_with_connect_info::<SocketAddr>();
        let limits = self.config.limits.clone();
        // No request may legitimately outlive the request timeout, so that bounds the drain.
        let grace = limits.request_timeout;

        // Expired sessions are refused on use anyway, and a used token's record is only
        // needed until the token itself expires; this only keeps both tables from growing.
        let sweeper = {
            let store = store.clone();
            let timeouts = state_timeouts(&self.config);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(SESSION_SWEEP_INTERVAL);
                loop {
                    tick.tick().await;
                    let now = crate::auth::now();
                    if let Err(e) = store.delete_expired_sessions(now, &timeouts).await {
                        tracing::warn!(error = %e, "deleting expired sessions failed");
                    }
                    if let Err(e) = store.delete_expired_tokens(now).await {
                        tracing::warn!(error = %e, "deleting expired token records failed");
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
        // Served in an inner block so that a failure (the socket refused by axum-server) still
        // goes through the shutdown below: the mailer flushed and the database closed.
        let result: Result<(), ServerError> = async {
            match self.tls {
                Some(tls) => {
                    let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(
                        RustlsConfig::from_config(tls),
                    )
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
            }
            .map_err(|e| ServerError::io("serving", &e))
        }
        .await;
        // In-flight requests have finished (or the grace period ran out), so no new mail can
        // be queued. The mailer gets the same grace to deliver what the requests queued, and
        // reports the rest; their audit records are written while the database is still
        // open; then the database is closed, which checkpoints the WAL.
        sweeper.abort();
        mailer.shutdown(grace).await;
        mail_audit.finish(grace).await;
        store.close().await;
        result?;
        tracing::info!("stopped");
        Ok(())
    }
}
