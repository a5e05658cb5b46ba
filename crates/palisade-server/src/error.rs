//! The server's error types: [`ServerError`] for start-up (one line for standard error) and
//! [`AppError`] for request handlers, which logs the details and shows the user only what
//! helps them.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::config::ConfigError;
use crate::tls::TlsError;

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("{what}: {reason}")]
    Io { what: String, reason: String },
    #[error("template {name}: {reason}")]
    Template { name: String, reason: String },
    #[error("database: {0}")]
    Database(String),
    /// The shared secrets in the database (a master key that does not open them, …).
    #[error(transparent)]
    Secrets(#[from] crate::secrets::SecretError),
}

impl ServerError {
    pub(crate) fn io(what: impl Into<String>, err: &std::io::Error) -> Self {
        Self::Io {
            what: what.into(),
            reason: crate::config::describe_io(err),
        }
    }
}

/// A failure inside a request handler.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Something on our side broke; the detail goes to the log, never to the client.
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    /// A storage failure inside a request: logged, shown as a plain 500.
    pub fn store(e: palisade_core::StoreError) -> Self {
        AppError::Internal(format!("store: {e}"))
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        match self {
            AppError::Internal(detail) => {
                tracing::error!(%detail, "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "500 Internal Server Error\n\nSomething went wrong on the server. \
                     The problem has been logged.\n",
                )
                    .into_response()
            }
        }
    }
}
