//! The secure drop (issue 6), first step: the server's drop keys and the two routes that
//! publish them. `POST /api/drop/messages`, senders, JWE, signatures and receipts come
//! later, on the keys this module serves.
//!
//! **Keys.** The RSA-3072 encryption key and the Ed25519 receipt-signing key live in the
//! database under the master key, like the token-signing keys ([`crate::secrets`]), so every
//! node serves and decrypts with the same keys and `palisade drop rotate-keys` on any machine
//! takes effect everywhere. Each key's `kid` is the RFC 7638 JWK thumbprint of its public key:
//! a client (or a third party) can recompute it from the published key, and a message can
//! name the key it was encrypted to.
//!
//! **Lazy creation.** The first keys are made by the first request that needs them, not at
//! start-up: RSA-3072 generation can take seconds, and start-to-first-request must stay
//! well under one. Generation runs on tokio's blocking pool; on one node a mutex lets only
//! one request generate (the others wait and read its key back), and across nodes the
//! store's atomic `insert_first_key` makes every node agree on one key.
//!
//! **Per request** the un-retired records are listed from the database (one indexed query),
//! so a rotation shows on the next request on every node; the newest is current. Opening a
//! key (two Fernet decryptions, PKCS#8 parsing, an RSA key check) happens once per key per
//! node: opened keys are cached by kid in [`DropKeys`], which is safe because a kid is the
//! hash of the public key and the record it came from was checked against it on opening.
//!
//! **Caching by clients.** The responses carry `Cache-Control: public, max-age=60`: public
//! keys may be cached, and a client that cached the previous key for up to a minute after a
//! rotation still gets its message decrypted, since old keys stay un-retired for decryption.
//!
//! **The response** is `{"kid", "alg", "pem", "jwk"}`, the JWK carrying the key-type members
//! (RFC 7518 §6.3 for RSA, RFC 8037 for Ed25519) plus `kid`, `alg` and `use`. No private
//! material ever leaves [`crate::secrets::DropKey`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};

use palisade_core::KeyStore as _;

use crate::app::AppState;
use crate::error::AppError;
use crate::secrets::{self, DropKey, DropKeyKind};

/// How long clients may cache a published key (see the module docs).
pub const PUBLIC_KEY_CACHE_CONTROL: &str = "public, max-age=60";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/drop/public-key", get(public_key))
        .route("/api/drop/receipt-key", get(receipt_key))
}

/// Opened drop keys of this node, by kind and kid, and the lock that lets one request at a
/// time make a first key.
#[derive(Debug, Default)]
pub struct DropKeys {
    opened: Mutex<HashMap<(DropKeyKind, String), Arc<DropKey>>>,
    creating: tokio::sync::Mutex<()>,
}

impl DropKeys {
    fn cached(&self, kind: DropKeyKind, kid: &str) -> Option<Arc<DropKey>> {
        // A poisoned lock only means another thread panicked while inserting; the map is
        // still a valid cache, so keep using it.
        let map = self.opened.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&(kind, kid.to_owned())).cloned()
    }

    fn remember(&self, key: DropKey) -> Arc<DropKey> {
        let key = Arc::new(key);
        let mut map = self.opened.lock().unwrap_or_else(|e| e.into_inner());
        map.entry((key.kind, key.kid.clone()))
            .or_insert_with(|| Arc::clone(&key))
            .clone()
    }
}

/// The current drop key of `kind`, made on first use (see the module docs).
pub async fn current_key(state: &AppState, kind: DropKeyKind) -> Result<Arc<DropKey>, AppError> {
    let failed = |e: secrets::SecretError| AppError::Internal(format!("drop keys: {e}"));
    let store = state.store();
    let mut records = store
        .list_keys(kind.purpose())
        .await
        .map_err(AppError::store)?;
    records.retain(|k| k.retired_at.is_none());
    if records.is_empty() {
        // One generation per node: the requests queued here find the key made by the first.
        let _creating = state.drop_keys().creating.lock().await;
        records = secrets::active_drop_records(store, state.master_key(), kind, state.now())
            .await
            .map_err(failed)?;
    }
    let newest = records.first().ok_or_else(|| {
        failed(secrets::SecretError::NoActiveKey {
            purpose: kind.purpose().to_owned(),
        })
    })?;
    if let Some(key) = state.drop_keys().cached(kind, &newest.kid) {
        return Ok(key);
    }
    let opened = secrets::open_drop_key(state.master_key(), kind, newest).map_err(failed)?;
    Ok(state.drop_keys().remember(opened))
}

/// The published form of `key`: `{"kid", "alg", "pem", "jwk"}`.
pub fn published(key: &DropKey) -> Result<Value, AppError> {
    let pem = key
        .public
        .to_pem()
        .map_err(|e| AppError::Internal(format!("drop key {}: {e}", key.kid)))?;
    let mut jwk: Map<String, Value> = key
        .jwk
        .members()
        .into_iter()
        .map(|(name, value)| (name.to_owned(), Value::String(value)))
        .collect();
    jwk.insert("kid".into(), key.kid.clone().into());
    jwk.insert("alg".into(), key.kind.alg().into());
    jwk.insert("use".into(), key.kind.jwk_use().into());
    Ok(json!({
        "kid": key.kid,
        "alg": key.kind.alg(),
        "pem": pem,
        "jwk": jwk,
    }))
}

async fn serve_key(state: &AppState, kind: DropKeyKind) -> Result<Response, AppError> {
    let key = current_key(state, kind).await?;
    let body = published(&key)?;
    Ok((
        [(header::CACHE_CONTROL, PUBLIC_KEY_CACHE_CONTROL)],
        axum::Json(body),
    )
        .into_response())
}

async fn public_key(State(state): State<AppState>) -> Result<Response, AppError> {
    serve_key(&state, DropKeyKind::Encryption).await
}

async fn receipt_key(State(state): State<AppState>) -> Result<Response, AppError> {
    serve_key(&state, DropKeyKind::Receipt).await
}
