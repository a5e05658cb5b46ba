//! # palisade-server
//!
//! The HTTP side of Palisade: configuration ([`config`]), the development PKI and rustls set-up
//! ([`tls`]), the axum application ([`app`]) with the middleware every response passes through
//! ([`middleware`]), and the process around it ([`server`]): bind, serve, drain on a signal.
//!
//! Start-up is split in two so the caller controls the first line of output: [`Server::bind`]
//! does everything that can fail because of the environment (data directory, certificates,
//! the socket) synchronously and returns a bound server whose [`Server::url`] is known; then
//! [`Server::serve`] runs until the shutdown future resolves and the in-flight requests have
//! finished (bounded by the request timeout). The `palisade serve` command prints the URL
//! between the two, after [`Server::prepare`] (database, mailer) so that their failures are
//! start-up errors too.
//!
//! The middleware order is fixed in [`app::router`]: tracing outermost (so refusals are logged
//! too), then the edge layer (client address behind trusted proxies, the Host allow-list, the
//! security headers, plain-words bodies for bare error statuses), then the request timeout and
//! body limits, then the routes. New routes go in a module of their own that returns a
//! `Router<AppState>` merged in [`app::router`]; shared services (database pool, session
//! store, password-hashing pool) become fields of [`AppState`], built in [`AppState::new`].
//!
//! The self-service flows, registration with e-mail activation ([`registration`]) and
//! password change and reset ([`password_flows`]), share [`forms`] (field errors, policy and
//! hashing in one pool job, token bindings, the per-IP and per-address [`throttle::FlowLimiter`]);
//! their tokens are signed by a key ring that [`secrets`] keeps in the database under the
//! master key.
//!
//! Authorization is on the route: [`guard::Authorized<R>`] admits only a signed-in user who
//! meets the requirement `R` (permissions read fresh on every request), and the members
//! example app ([`members`]) is built on it.
//!
//! The account pages ([`accounts`]) build on [`auth`] (sessions, CSRF, safe redirects),
//! [`hashpool`] (password hashing in a bounded pool off the runtime) and [`throttle`] (login
//! rate limits that cannot be turned into a lockout); each module's documentation gives its
//! design.
//!
//! Two services are built once at start-up and reached through [`AppState`]: the password
//! policy ([`AppState::password_policy`]), whose settings come from the `[password_policy]`
//! section and whose word lists (common passwords, a Have I Been Pwned file) are read by
//! [`Server::bind`], so a missing file is a start-up error; and the [`mail`] transport
//! ([`AppState::mailer`]), started by [`Server::prepare`]: the `DATA_DIR/outbox/` folder, or
//! SMTP with `--smtp`. Mail that cannot be delivered is recorded in the audit log
//! (`mail.failed`) by a task fed from the mailer's failure hook; on shutdown the mailer is
//! drained after the HTTP requests and before the database closes.
//!
//! The secure drop ([`mod@drop`], issue 6) publishes its RSA-3072 encryption key and Ed25519
//! receipt key at `/api/drop/public-key` and `/api/drop/receipt-key`; the keys are made on
//! first use (not at start-up) and named by their RFC 7638 thumbprints.
//!
//! Secrets that every node must share (the account-token signing keys and the drop keys now,
//! later OAuth keys) live in the database, sealed by [`secrets`] under the deployment's master key
//! (`DATA_DIR/master.key` or `PALISADE_MASTER_KEY`): [`Server::bind`] loads (or makes) the
//! master key and [`Server::prepare`] opens the key ring once, so a master key that does not
//! match the database is a start-up error.
//!
//! Secrets (database, session-store and SMTP URLs, the master key) are typed so their `Debug`
//! and `Display` never show them; nothing here logs headers, query strings or bodies.

pub mod accounts;
pub mod admin;
pub mod app;
pub mod auth;
pub mod config;
pub mod drop;
pub mod error;
pub mod forms;
pub mod guard;
pub mod hashpool;
pub mod hosts;
pub mod mail;
pub mod members;
pub mod middleware;
pub mod password_flows;
pub mod registration;
pub mod secrets;
pub mod server;
pub mod throttle;
pub mod tls;

pub use app::AppState;
pub use config::{Config, ConfigError, Flags, Sources};
pub use error::ServerError;
pub use server::{Server, ensure_data_dir, init_logging, shutdown_signal};
