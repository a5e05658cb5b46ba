//! Sessions, CSRF and redirect targets: the security plumbing of the account pages.
//!
//! ## Sessions
//! The cookie `__Host-palisade_session` (`Secure; HttpOnly; SameSite=Lax; Path=/`, no
//! `Domain`, as the `__Host-` prefix demands) carries a [`SessionId`]: 256 random bits. The
//! store keeps only its SHA-256 ([`SessionKey`]) with the user, times, client address, user
//! agent and a per-session [`CsrfSecret`]. A session exists only for a signed-in user and is
//! created fresh at every login (the id presented before is deleted, never upgraded), so an
//! attacker who planted a cookie gains nothing (session fixation). [`MaybeUser`] resolves
//! the cookie on each request: unknown, malformed, expired (idle or absolute timeout from the
//! configuration) or belonging to an inactive user → anonymous, and an expired session is
//! deleted. `last_seen` is written at most once per [`TOUCH_INTERVAL`], so a busy page does
//! not turn every read into a database write. [`Authenticated`] is the extractor for pages
//! that need a user: anonymous visitors get 303 to the login page with `next`.
//!
//! The cookie stays `Secure` even with `--insecure-http`: that mode is for a TLS-terminating
//! proxy, so the browser still talks HTTPS. (Browsers ignore `Secure` cookies set over
//! plain HTTP; non-browser clients may still send them back, which is how tests work.)
//!
//! ## CSRF (OWASP CSRF Prevention Cheat Sheet)
//! Every unsafe request to these routes must carry a token (form field `csrf_token` or
//! header `X-CSRF-Token`), compared in constant time:
//! - **Signed-in: synchronizer token bound to the session.** The token is
//!   HMAC-SHA256(session CSRF secret, "palisade-csrf-session-v1"), so it is valid only with
//!   that session and dies with it.
//! - **Anonymous (login form): signed double-submit.** There is no session before login, so
//!   the login page sets `__Host-palisade_csrf`, a random nonce, and the form carries
//!   HMAC-SHA256(server key, "palisade-csrf-anon-v1" ‖ nonce). An attacker can neither read
//!   the cookie nor forge the HMAC without the server key (kept in `DATA_DIR/csrf.key`, mode
//!   0600), and the `__Host-` prefix stops a sibling subdomain from planting the cookie. This
//!   blocks login CSRF (signing a victim into the attacker's account).
//!
//! Handlers do not call the check themselves: every unsafe account route takes
//! [`CheckedForm`] instead of `Form`, which checks before the handler runs.
//!
//! A request that presents a valid session is checked against the session token only.
//! Over HTTPS the `Origin` header (or, when absent, `Referer`) must also name this server's
//! own origin (scheme, host and port as requested; the host itself is already checked
//! against `allowed_hosts`); a request with neither is refused, as Django does for HTTPS.
//! Behind a TLS-terminating proxy the proxy must pass the original `Host` through
//! (`X-Forwarded-Host` is not read), or every form post fails this check.
//! Tokens are not masked per response (BREACH) because responses are not compressed.
//!
//! ## `next`
//! [`safe_next`] accepts only same-origin relative paths; everything else becomes `/`.

use std::collections::BTreeSet;
use std::path::Path;

use axum::Form;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use palisade_core::{
    AccessScope, Group, Permission, Session, SessionAccess, SessionId, SessionStore,
    SessionUserStore, Timestamp, User,
};
use palisade_crypto::mac::{MacAlgorithm, constant_time_eq, mac};
use serde::de::DeserializeOwned;

use crate::app::AppState;
use crate::error::{AppError, ServerError};
use crate::middleware::ClientInfo;

pub const SESSION_COOKIE: &str = "__Host-palisade_session";
pub const CSRF_COOKIE: &str = "__Host-palisade_csrf";
pub const CSRF_FIELD: &str = "csrf_token";
pub const CSRF_HEADER: &str = "x-csrf-token";
/// `last_seen` is written at most this often per session.
pub const TOUCH_INTERVAL_SECS: i64 = 60;
/// Lifetime of the anonymous CSRF cookie: long enough to fill in a login form.
pub const CSRF_COOKIE_MAX_AGE_SECS: u64 = 2 * 60 * 60;
const SESSION_CONTEXT: &[u8] = b"palisade-csrf-session-v1";
const ANON_CONTEXT: &[u8] = b"palisade-csrf-anon-v1";
const KEY_FILE: &str = "csrf.key";

/// The server's CSRF signing key. `Debug` is redacted so it never reaches a log.
#[derive(Clone)]
pub struct ServerKey(Vec<u8>);

impl ServerKey {
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerKey(<redacted>)")
    }
}

/// Seconds since the epoch now.
pub fn now() -> Timestamp {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    Timestamp::from_unix(secs)
}

/// The server's CSRF key: 32 random bytes in `DATA_DIR/csrf.key` (0600), created on first
/// start. Keeping it on disk lets anonymous forms survive a restart.
pub fn load_or_create_key(data_dir: &Path) -> Result<ServerKey, ServerError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = data_dir.join(KEY_FILE);
    match std::fs::read(&path) {
        Ok(bytes) if bytes.len() == 32 => return Ok(ServerKey(bytes)),
        Ok(_) => {
            return Err(ServerError::Io {
                what: path.display().to_string(),
                reason: "is not a 32-byte key; delete it to have a new one generated".into(),
            });
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(ServerError::io(path.display().to_string(), &e)),
    }
    let key = palisade_crypto::random::bytes(32).map_err(|e| ServerError::Io {
        what: "generating the CSRF key".into(),
        reason: e.to_string(),
    })?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| ServerError::io(path.display().to_string(), &e))?;
    file.write_all(&key)
        .and_then(|()| file.sync_all())
        .map_err(|e| ServerError::io(path.display().to_string(), &e))?;
    Ok(ServerKey(key))
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> String {
    let data = parts.concat();
    // HMAC-SHA256 accepts keys of any length, so this cannot fail; an empty token (which
    // never verifies against a non-empty submission) is the safe fallback anyway.
    mac(MacAlgorithm::HmacSha256, key, &data)
        .map(|tag| URL_SAFE_NO_PAD.encode(tag))
        .unwrap_or_default()
}

/// The CSRF token for forms rendered inside `session`.
pub fn session_token(session: &Session) -> String {
    hmac(session.csrf_secret.as_bytes(), &[SESSION_CONTEXT])
}

/// The CSRF token for anonymous forms, bound to the nonce in the CSRF cookie.
pub fn anon_token(server_key: &[u8], nonce: &str) -> String {
    hmac(server_key, &[ANON_CONTEXT, nonce.as_bytes()])
}

/// The value of cookie `name` in the request's `Cookie` headers (the first one).
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

fn cookie_header(name: &str, value: &str, max_age: Option<u64>) -> Option<HeaderValue> {
    let age = max_age.map_or(String::new(), |s| format!("; Max-Age={s}"));
    HeaderValue::from_str(&format!(
        "{name}={value}; Secure; HttpOnly; SameSite=Lax; Path=/{age}"
    ))
    .ok()
}

/// `Set-Cookie` for a new session (a browser-session cookie: the server enforces expiry).
pub fn session_cookie(id: &SessionId) -> Option<HeaderValue> {
    cookie_header(SESSION_COOKIE, id.as_cookie_value(), None)
}

/// `Set-Cookie` that removes the session cookie.
pub fn clear_session_cookie() -> Option<HeaderValue> {
    cookie_header(SESSION_COOKIE, "", Some(0))
}

/// `Set-Cookie` for a new anonymous CSRF nonce.
pub fn csrf_cookie(nonce: &str) -> Option<HeaderValue> {
    cookie_header(CSRF_COOKIE, nonce, Some(CSRF_COOKIE_MAX_AGE_SECS))
}

/// A new random nonce for the anonymous CSRF cookie.
pub fn new_nonce() -> Result<String, AppError> {
    palisade_crypto::random::bytes(32)
        .map(|b| URL_SAFE_NO_PAD.encode(b))
        .map_err(|e| AppError::Internal(format!("random: {e}")))
}

/// A signed-in request: the user and their live session.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub user: User,
    pub session: Session,
    /// What the user holds directly or through a group, read with the session (so fresh on
    /// every request) within the route's scope (empty for a plain [`Authenticated`]);
    /// [`crate::guard`] applies the superuser and active rule to it.
    pub held: BTreeSet<Permission>,
    /// The user's groups, by name, when the route read the full scope; else empty.
    pub groups: Vec<Group>,
}

/// The current user if the request carries a live session of an active user.
#[derive(Debug, Clone)]
pub struct MaybeUser(pub Option<Authenticated>);

impl FromRequestParts<AppState> for MaybeUser {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(found) = parts.extensions.get::<MaybeUser>() {
            return Ok(found.clone());
        }
        let found = resolve(&parts.headers, state, AccessScope::Session).await?;
        let found = MaybeUser(found);
        parts.extensions.insert(found.clone());
        Ok(found)
    }
}

/// The signed-in user of a request carrying `headers`, with what they hold within `scope`.
async fn resolve(
    headers: &HeaderMap,
    state: &AppState,
    scope: AccessScope<'_>,
) -> Result<Option<Authenticated>, AppError> {
    let Some(id) = cookie(headers, SESSION_COOKIE).and_then(|v| SessionId::parse(v).ok()) else {
        return Ok(None);
    };
    let store = state.store();
    let key = id.key();
    // One lookup for the session, the user and what they hold: fresh from the store on every
    // request, so a revocation or a deactivation bites on the very next request.
    let Some(SessionAccess {
        mut session,
        user,
        held,
        groups,
    }) = store
        .get_session_access(&key, scope)
        .await
        .map_err(AppError::store)?
    else {
        return Ok(None);
    };
    let now = now();
    if session.is_expired(now, &state.session_timeouts()) {
        store.delete_session(&key).await.map_err(AppError::store)?;
        return Ok(None);
    }
    if !user.is_active {
        return Ok(None);
    }
    if now.unix().saturating_sub(session.last_seen.unix()) >= TOUCH_INTERVAL_SECS {
        match store.touch_session(&key, now).await {
            Ok(()) => session.last_seen = now,
            // Revoked between the read and the write: treat as gone.
            Err(palisade_core::StoreError::NotFound) => return Ok(None),
            Err(e) => return Err(AppError::store(e)),
        }
    }
    Ok(Some(Authenticated {
        user,
        session,
        held,
        groups,
    }))
}

/// Rejection of [`Authenticated`]: not signed in.
#[derive(Debug)]
pub enum AuthRejection {
    Login { next: String },
    Error(AppError),
}

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        match self {
            AuthRejection::Login { next } => {
                let next = percent_encoding::utf8_percent_encode(
                    &next,
                    percent_encoding::NON_ALPHANUMERIC,
                );
                Redirect::to(&format!("/accounts/login/?next={next}")).into_response()
            }
            AuthRejection::Error(e) => e.into_response(),
        }
    }
}

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = AuthRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let MaybeUser(found) = MaybeUser::from_request_parts(parts, state)
            .await
            .map_err(AuthRejection::Error)?;
        found.ok_or_else(|| login_rejection(parts))
    }
}

/// Not signed in: back to this page after login.
fn login_rejection(parts: &Parts) -> AuthRejection {
    AuthRejection::Login {
        // Only GETs come back to where they were; a POST's target is not a page.
        next: if parts.method == axum::http::Method::GET {
            safe_next(parts.uri.path_and_query().map_or("/", |pq| pq.as_str()))
        } else {
            "/".to_owned()
        },
    }
}

/// The signed-in user with what they hold within `scope` (for [`crate::guard`], which knows
/// the scope a route needs): one store read, not shared with [`MaybeUser`]'s.
pub async fn authenticate(
    parts: &Parts,
    state: &AppState,
    scope: AccessScope<'_>,
) -> Result<Authenticated, AuthRejection> {
    resolve(&parts.headers, state, scope)
        .await
        .map_err(AuthRejection::Error)?
        .ok_or_else(|| login_rejection(parts))
}

/// Why a CSRF check failed; the response says so in plain words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsrfFailure {
    MissingToken,
    BadToken,
    BadOrigin,
}

impl IntoResponse for CsrfFailure {
    fn into_response(self) -> Response {
        let why = match self {
            CsrfFailure::MissingToken => {
                "The form was sent without its security token (CSRF token). Reload the \
                 page and try again."
            }
            CsrfFailure::BadToken => {
                "The form's security token (CSRF token) is wrong or has expired. Reload \
                 the page and try again; make sure cookies are enabled."
            }
            CsrfFailure::BadOrigin => {
                "This request came from another web site (its Origin or Referer header \
                 does not match this server), so it was refused."
            }
        };
        (
            StatusCode::FORBIDDEN,
            [(header::CACHE_CONTROL, "no-store")],
            format!("403 Forbidden\n\n{why}\n"),
        )
            .into_response()
    }
}

/// The token a form rendered for this request must carry, and (for an anonymous visitor
/// without a CSRF cookie yet) the `Set-Cookie` that goes with it.
pub fn form_token(
    state: &AppState,
    headers: &HeaderMap,
    signed_in: Option<&Authenticated>,
) -> Result<(String, Option<HeaderValue>), AppError> {
    if let Some(auth) = signed_in {
        return Ok((session_token(&auth.session), None));
    }
    if let Some(nonce) = cookie(headers, CSRF_COOKIE).filter(|n| valid_nonce(n)) {
        return Ok((anon_token(state.csrf_key(), nonce), None));
    }
    let nonce = new_nonce()?;
    Ok((anon_token(state.csrf_key(), &nonce), csrf_cookie(&nonce)))
}

fn valid_nonce(n: &str) -> bool {
    n.len() == 43
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The CSRF check for an unsafe request; `submitted` is the form field, if the body had one.
pub fn check_csrf(
    state: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
    client: &ClientInfo,
    signed_in: Option<&Authenticated>,
    submitted: Option<&str>,
) -> Result<(), CsrfFailure> {
    if client.https && !origin_matches(headers, uri, "https") {
        return Err(CsrfFailure::BadOrigin);
    }
    let submitted = submitted
        .filter(|s| !s.is_empty())
        .or_else(|| headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()))
        .ok_or(CsrfFailure::MissingToken)?;
    let expected = match signed_in {
        Some(auth) => session_token(&auth.session),
        None => match cookie(headers, CSRF_COOKIE).filter(|n| valid_nonce(n)) {
            Some(nonce) => anon_token(state.csrf_key(), nonce),
            None => return Err(CsrfFailure::BadToken),
        },
    };
    if constant_time_eq(expected.as_bytes(), submitted.as_bytes()) {
        Ok(())
    } else {
        Err(CsrfFailure::BadToken)
    }
}

/// A form that carries the CSRF field (`csrf_token`).
pub trait HasCsrfToken {
    fn csrf_token(&self) -> Option<&str>;
}

/// Implements [`HasCsrfToken`] for form structs with a `csrf_token: Option<String>` field.
macro_rules! csrf_field {
    ($($form:ty),+ $(,)?) => {
        $(impl $crate::auth::HasCsrfToken for $form {
            fn csrf_token(&self) -> Option<&str> {
                self.csrf_token.as_deref()
            }
        })+
    };
}
pub(crate) use csrf_field;

/// The extractor every unsafe account route takes instead of `Form`: the body parsed as a
/// form, and the CSRF token and (over HTTPS) the origin checked by [`check_csrf`] against
/// the request's session or anonymous CSRF cookie before the handler runs, so no handler can
/// forget the check. A refusal is the plain 403 of [`CsrfFailure`]. (Logout keeps its own
/// check: signed out, there is nothing to protect.)
#[derive(Debug)]
pub struct CheckedForm<T>(pub T);

impl<T> FromRequest<AppState> for CheckedForm<T>
where
    T: DeserializeOwned + HasCsrfToken + Send,
{
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        // Resolved once per request: a `MaybeUser` or `Authenticated` extractor before this
        // one has left it in the extensions.
        let MaybeUser(current) = MaybeUser::from_request_parts(&mut parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let client = parts
            .extensions
            .get::<ClientInfo>()
            .copied()
            .ok_or_else(|| AppError::Internal("no client info on the request".into()))
            .map_err(IntoResponse::into_response)?;
        let headers = parts.headers.clone();
        let uri = parts.uri.clone();
        let Form(form) = Form::<T>::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(IntoResponse::into_response)?;
        check_csrf(
            state,
            &headers,
            &uri,
            &client,
            current.as_ref(),
            form.csrf_token(),
        )
        .map_err(IntoResponse::into_response)?;
        Ok(Self(form))
    }
}

/// Whether `Origin` (else `Referer`) names `scheme://host[:port]` of this request.
fn origin_matches(headers: &HeaderMap, uri: &Uri, scheme: &str) -> bool {
    // HTTP/2 carries the host in `:authority` (the URI); the edge layer has already checked
    // it against allowed_hosts.
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()));
    let Some(host) = host else {
        return false;
    };
    let own = format!("{scheme}://{}", host.to_ascii_lowercase());
    if let Some(origin) = headers.get(header::ORIGIN) {
        return origin.to_str().is_ok_and(|o| o.to_ascii_lowercase() == own);
    }
    match headers.get(header::REFERER).and_then(|v| v.to_str().ok()) {
        Some(referer) => {
            let lower = referer.to_ascii_lowercase();
            lower
                .strip_prefix(&own)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        }
        None => false,
    }
}

/// `next` if it is a same-origin relative path, else `/`.
pub fn safe_next(next: &str) -> String {
    if is_safe_next(next) {
        next.to_owned()
    } else {
        "/".to_owned()
    }
}

fn is_safe_next(next: &str) -> bool {
    fn plain(s: &str) -> bool {
        s.starts_with('/')
            && !s.starts_with("//")
            && !s.contains('\\')
            && !s.chars().any(|c| c.is_control() || c.is_whitespace())
    }
    if next.len() > 2048 || !plain(next) {
        return false;
    }
    // Decode repeatedly (double encoding) until stable, checking each form.
    let mut current = next.to_owned();
    for _ in 0..3 {
        let decoded = percent_encoding::percent_decode_str(&current)
            .decode_utf8_lossy()
            .into_owned();
        // Decoded text may hold an encoded space (`%20` in a query), but never a control
        // character, backslash or `//` that a browser could read as another host.
        if !decoded.starts_with('/')
            || decoded.contains("//")
            || decoded.contains('\\')
            || decoded.chars().any(char::is_control)
        {
            return false;
        }
        if decoded == current {
            break;
        }
        current = decoded;
    }
    // The path (before any query) must have no scheme-like first segment either.
    let path = current.split(['?', '#']).next().unwrap_or("");
    !path.contains("//") && !path.contains(':')
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn next_refuses_every_attack_form() {
        for bad in [
            "//evil.example",
            "https:evil",
            "/\\evil",
            "\\\\evil",
            "%2F%2Fevil",
            "/%2F/evil",
            "/%5Cevil",
            "/%09/evil",
            "javascript:alert(1)",
            "http://evil",
            "https://evil.example/",
            "",
            "evil",
            "/ok\n",
            "/a b",
            "/%252F%252Fevil",
            "///evil",
        ] {
            assert_eq!(safe_next(bad), "/", "{bad:?} must be refused");
        }
        for good in ["/accounts/profile/?a=b", "/", "/members/?q=x%20y"] {
            assert_eq!(safe_next(good), good);
        }
    }

    #[test]
    fn cookie_parsing() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; __Host-palisade_session=abc ; b=2"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&h, "b"), Some("2"));
        assert_eq!(cookie(&h, "c"), None);
    }

    #[test]
    fn origin_check() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("localhost:8443"));
        assert!(!origin_matches(&h, &Uri::from_static("/"), "https"));
        h.insert(
            header::REFERER,
            HeaderValue::from_static("https://localhost:8443/accounts/login/"),
        );
        assert!(origin_matches(&h, &Uri::from_static("/"), "https"));
        h.insert(
            header::REFERER,
            HeaderValue::from_static("https://localhost:84430/x"),
        );
        assert!(!origin_matches(&h, &Uri::from_static("/"), "https"));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://localhost:8443"),
        );
        assert!(origin_matches(&h, &Uri::from_static("/"), "https"));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(!origin_matches(&h, &Uri::from_static("/"), "https"));
    }

    #[test]
    fn tokens_are_bound() {
        let key = [1u8; 32];
        assert_ne!(anon_token(&key, "a"), anon_token(&key, "b"));
        assert_ne!(anon_token(&key, "a"), anon_token(&[2u8; 32], "a"));
    }
}
