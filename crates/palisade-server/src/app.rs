//! The axum application: shared state, routes and the middleware stack.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{Request, StatusCode};
use axum::middleware::from_fn_with_state;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use minijinja::Environment;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use palisade_core::AuditLog as _;
use palisade_core::Timestamp;
use palisade_core::password_policy::PasswordPolicy;
use palisade_crypto::password::Argon2Params;
use palisade_store::SqliteStore;

use crate::auth::ServerKey;
use crate::config::Config;
use crate::drop::DropKeys;
use crate::error::{AppError, ServerError};
use crate::hashpool::HashPool;
use crate::mail::Mailer;
use crate::secrets::MasterKey;
use crate::throttle::{FlowLimiter, MemoryThrottle};
use crate::{accounts, admin, drop, members, middleware, password_flows, registration};

/// Templates compiled into the binary, so a deployment is one file. Names ending in `.html`
/// are auto-escaped by minijinja.
const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../templates/base.html")),
    ("index.html", include_str!("../templates/index.html")),
    ("login.html", include_str!("../templates/login.html")),
    ("profile.html", include_str!("../templates/profile.html")),
    ("register.html", include_str!("../templates/register.html")),
    (
        "email_form.html",
        include_str!("../templates/email_form.html"),
    ),
    (
        "set_password.html",
        include_str!("../templates/set_password.html"),
    ),
    ("message.html", include_str!("../templates/message.html")),
    ("members.html", include_str!("../templates/members.html")),
    (
        "member_add.html",
        include_str!("../templates/member_add.html"),
    ),
    (
        "_field_errors.html",
        include_str!("../templates/_field_errors.html"),
    ),
    (
        "_password_fields.html",
        include_str!("../templates/_password_fields.html"),
    ),
    (
        "admin_index.html",
        include_str!("../templates/admin_index.html"),
    ),
    (
        "admin_users.html",
        include_str!("../templates/admin_users.html"),
    ),
    (
        "admin_user.html",
        include_str!("../templates/admin_user.html"),
    ),
    (
        "admin_user_add.html",
        include_str!("../templates/admin_user_add.html"),
    ),
    (
        "admin_groups.html",
        include_str!("../templates/admin_groups.html"),
    ),
    (
        "admin_group.html",
        include_str!("../templates/admin_group.html"),
    ),
    (
        "admin_permissions.html",
        include_str!("../templates/admin_permissions.html"),
    ),
    (
        "admin_audit.html",
        include_str!("../templates/admin_audit.html"),
    ),
    (
        "admin_audit_verify.html",
        include_str!("../templates/admin_audit_verify.html"),
    ),
];

/// State shared by every request: cheap to clone (one `Arc`).
#[derive(Clone, Debug)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Seconds added to the system clock for the account tokens: always 0 in service; tests
    /// move it to reach an expiry without waiting (see [`AppState::advance_clock`]).
    clock_offset: AtomicI64,
    flow_limiter: FlowLimiter,
    config: Config,
    templates: Environment<'static>,
    store: SqliteStore,
    hash_pool: HashPool,
    throttle: MemoryThrottle,
    csrf_key: ServerKey,
    password_policy: PasswordPolicy,
    mailer: Mailer,
    master_key: MasterKey,
    /// The secure drop's opened keys (made on first use, see [`crate::drop`]).
    drop_keys: DropKeys,
}

impl AppState {
    /// Builds the state around an opened, migrated store, the server's CSRF key, the password
    /// policy (built once from the configuration, word lists loaded) and a started mailer;
    /// fails only if an embedded template does not compile.
    pub fn new(
        config: Config,
        store: SqliteStore,
        csrf_key: ServerKey,
        password_policy: PasswordPolicy,
        mailer: Mailer,
        master_key: MasterKey,
    ) -> Result<Self, ServerError> {
        let mut templates = Environment::new();
        for (name, source) in TEMPLATES {
            templates
                .add_template(name, source)
                .map_err(|e| ServerError::Template {
                    name: (*name).to_owned(),
                    reason: e.to_string(),
                })?;
        }
        let hash_pool = HashPool::new(config.password.hash_workers);
        let throttle = MemoryThrottle::new(config.limits.login_window);
        Ok(Self {
            inner: Arc::new(Inner {
                clock_offset: AtomicI64::new(0),
                flow_limiter: FlowLimiter::new(config.accounts.flow_limits),
                config,
                templates,
                store,
                hash_pool,
                throttle,
                csrf_key,
                password_policy,
                mailer,
                master_key,
                drop_keys: DropKeys::default(),
            }),
        })
    }

    /// Now, as the account tokens see it (the system clock, plus the test offset).
    pub fn now(&self) -> Timestamp {
        let offset = self.inner.clock_offset.load(Ordering::Relaxed);
        Timestamp::from_unix(crate::auth::now().unix().saturating_add(offset))
    }

    /// Moves [`Self::now`] forward by `secs`, for tests of token expiry through the real
    /// server. Reachable only from Rust code holding the state, never over HTTP.
    #[doc(hidden)]
    pub fn advance_clock(&self, secs: i64) {
        self.inner.clock_offset.fetch_add(secs, Ordering::Relaxed);
    }

    /// The limits on registration, resend, reset and the token endpoints.
    pub fn flow_limiter(&self) -> &FlowLimiter {
        &self.inner.flow_limiter
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The deployment's master key, which opens the shared secrets in the database (pass it
    /// to [`crate::secrets::token_key_ring`]). Never log it or put it in a response.
    pub fn master_key(&self) -> &MasterKey {
        &self.inner.master_key
    }

    /// The secure drop's key cache ([`crate::drop::current_key`] reads through it).
    pub fn drop_keys(&self) -> &DropKeys {
        &self.inner.drop_keys
    }

    pub fn store(&self) -> &SqliteStore {
        &self.inner.store
    }

    pub fn hash_pool(&self) -> &HashPool {
        &self.inner.hash_pool
    }

    pub fn throttle(&self) -> &MemoryThrottle {
        &self.inner.throttle
    }

    pub fn csrf_key(&self) -> &[u8] {
        self.inner.csrf_key.as_bytes()
    }

    /// The configured password policy, for every form that sets a password. Use
    /// `evaluate` and log its `breach_check_error`: a broken breached-password file lets
    /// passwords through (fail open) until someone fixes it.
    pub fn password_policy(&self) -> &PasswordPolicy {
        &self.inner.password_policy
    }

    /// Outgoing mail. `send` never waits: handlers must answer the same whatever it returns,
    /// so a page never tells whether an address exists or the mail server is down.
    pub fn mailer(&self) -> &Mailer {
        &self.inner.mailer
    }

    /// The configured session lifetimes in the store's terms.
    pub fn session_timeouts(&self) -> palisade_core::SessionTimeouts {
        crate::server::state_timeouts(&self.inner.config)
    }

    /// The Argon2id parameters new hashes get (and `needs_rehash` is judged against).
    pub fn argon2_params(&self) -> Argon2Params {
        let p = &self.inner.config.password;
        Argon2Params {
            memory_kib: p.argon2_memory_kib,
            iterations: p.argon2_iterations,
            parallelism: p.argon2_parallelism,
        }
    }

    /// Renders an embedded template (auto-escaped) into an HTML response.
    pub fn render(&self, name: &str, ctx: minijinja::Value) -> Result<Html<String>, AppError> {
        let template = self
            .inner
            .templates
            .get_template(name)
            .map_err(|e| AppError::Internal(format!("template {name}: {e}")))?;
        template
            .render(ctx)
            .map(Html)
            .map_err(|e| AppError::Internal(format!("template {name}: {e}")))
    }
}

/// The whole application with its middleware, ready to serve.
pub fn router(state: AppState) -> Router {
    let limits = state.config().limits.clone();
    let mut routes = Router::new()
        .route("/", get(index))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .merge(accounts::routes())
        .merge(registration::routes())
        .merge(password_flows::routes())
        .merge(members::routes())
        .merge(drop::routes())
        .merge(admin::routes())
        .fallback(not_found);
    if state.config().test_routes {
        routes = routes.route("/__test/slow/{ms}", get(slow));
    }

    routes
        .with_state(state.clone())
        // Axum's extractors and tower-http's layer both enforce the limit: the layer refuses
        // a too-large Content-Length before any handler runs, the extractor limit covers
        // chunked bodies read by handlers.
        .layer(DefaultBodyLimit::max(limits.body_bytes))
        .layer(RequestBodyLimitLayer::new(limits.body_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ))
        .layer(from_fn_with_state(state, middleware::edge))
        .layer(
            TraceLayer::new_for_http()
                // Method and path only: query strings can carry tokens (password reset,
                // activation), and headers carry cookies.
                .make_span_with(|req: &Request<_>| {
                    tracing::info_span!(
                        "request",
                        method = %req.method(),
                        path = %req.uri().path(),
                    )
                })
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
}

async fn index(State(state): State<AppState>) -> Result<Html<String>, AppError> {
    state.render(
        "index.html",
        minijinja::context! {
            create_command => "palisade user create admin --email you@example.com --superuser",
        },
    )
}

/// Liveness: the process answers.
async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: the database (which also holds the sessions) answers a query.
async fn readyz(State(state): State<AppState>) -> Response {
    match state.store().count().await {
        Ok(_) => "ready".into_response(),
        Err(e) => {
            tracing::error!(error = %e, "readiness check: database unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "503 Service Unavailable\n\nThe database is not reachable.\n",
            )
                .into_response()
        }
    }
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        "404 Not Found\n\nThere is no page at this address.\n",
    )
        .into_response()
}

/// Test-only (see `Config::test_routes`): answers after `ms` milliseconds (at most 10 s), so
/// tests can hold a request in flight across a shutdown.
async fn slow(Path(ms): Path<u64>) -> &'static str {
    tokio::time::sleep(Duration::from_millis(ms.min(10_000))).await;
    "slow ok"
}
