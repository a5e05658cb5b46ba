//! The account pages: login, logout, profile with the user's sessions.
//!
//! Login runs in this order, so that cheap refusals come before expensive work and every
//! failure looks the same from outside: CSRF (403) → throttle (429) → look the account up →
//! verify in the hashing pool (an unknown, inactive or password-less account costs one dummy
//! verification at the current parameters, so timing does not reveal which accounts exist)
//! → on failure, the same generic 200 page whatever the reason; on success, upgrade an
//! out-of-date hash, delete any session the client already had, and start a new one.
//! The security plumbing (sessions, CSRF, `next`) is in [`crate::auth`].

use std::time::Instant;

use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use palisade_core::{
    AuditEvent, AuditLog, CsrfSecret, Session, SessionId, SessionKey, SessionStore, User, UserStore,
};
use palisade_crypto::password::{self, Verified};
use serde::Deserialize;

use crate::app::AppState;
use crate::auth::{self, Authenticated, CheckedForm, MaybeUser};
use crate::error::AppError;
use crate::guard::{Authorized, SignedIn};
use crate::middleware::ClientInfo;
use crate::throttle::LoginThrottle;

/// The generic failure message (Django's wording): the same for every reason.
pub const LOGIN_ERROR: &str = "Please enter a correct username and password.";
/// Audit targets and throttle keys keep at most this much of a submitted username.
const MAX_SUBMITTED_CHARS: usize = 150;
/// User agents are client-supplied; keep a bounded prefix.
const MAX_USER_AGENT_CHARS: usize = 512;
/// Passwords longer than this are refused before hashing (Django-style DoS guard).
const MAX_PASSWORD_BYTES: usize = 4096;
/// Suggested wait when the hashing pool is full.
const BUSY_RETRY_SECS: &str = "2";

crate::auth::csrf_field!(LoginForm, CsrfForm);

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/accounts/login/", get(login_form).post(login))
        .route("/accounts/logout/", post(logout))
        .route("/accounts/profile/", get(profile))
        .route("/accounts/sessions/{key}/revoke/", post(revoke))
}

#[derive(Debug, Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    csrf_token: Option<String>,
    next: Option<String>,
}

// The password must never reach a log line.
impl std::fmt::Debug for LoginForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginForm")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    csrf_token: Option<String>,
}

pub(crate) fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

pub(crate) fn with_cookie(mut response: Response, cookie: Option<HeaderValue>) -> Response {
    if let Some(c) = cookie {
        response.headers_mut().append(header::SET_COOKIE, c);
    }
    response
}

fn busy() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, BUSY_RETRY_SECS)],
        "503 Service Unavailable\n\nThe server is handling too many sign-ins right now. \
         Please try again in a few seconds.\n",
    )
        .into_response()
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

fn render_login(
    state: &AppState,
    token: &str,
    next: Option<&str>,
    error: Option<&str>,
    username: &str,
) -> Result<Response, AppError> {
    let next = next.map(auth::safe_next).filter(|n| n != "/");
    let page = state.render(
        "login.html",
        minijinja::context! { csrf_token => token, next => next, error => error, username => username },
    )?;
    Ok(no_store(page.into_response()))
}

async fn login_form(
    State(state): State<AppState>,
    MaybeUser(current): MaybeUser,
    headers: HeaderMap,
    Query(query): Query<NextQuery>,
) -> Result<Response, AppError> {
    let (token, cookie) = auth::form_token(&state, &headers, current.as_ref())?;
    let page = render_login(&state, &token, query.next.as_deref(), None, "")?;
    Ok(with_cookie(page, cookie))
}

pub(crate) async fn audit(
    state: &AppState,
    action: &str,
    actor: Option<String>,
    target: Option<String>,
    detail: serde_json::Value,
) -> Result<(), AppError> {
    let mut event = AuditEvent::new(auth::now(), action);
    event.actor = actor;
    event.target = target;
    event.detail = detail;
    state
        .store()
        .append(event)
        .await
        .map(|_| ())
        .map_err(AppError::store)
}

/// Verifies in the pool; `None` if the pool refused the job.
async fn check_password(
    state: &AppState,
    user: Option<&User>,
    password: String,
) -> Option<Verified> {
    let params = state.argon2_params();
    let encoded = user
        .filter(|u| u.is_active && password::is_usable(&u.password_hash))
        .map(|u| u.password_hash.clone());
    state
        .hash_pool()
        .run(move || match encoded {
            Some(encoded) => {
                match password::verify_password(password.as_bytes(), &encoded, &params) {
                    Ok(v) => v,
                    Err(e) => {
                        tracing::warn!(error = %e, "stored password hash could not be checked");
                        Verified::Invalid
                    }
                }
            }
            None => {
                password::dummy_verify(password.as_bytes(), &params);
                Verified::Invalid
            }
        })
        .await
        .ok()
}

async fn login(
    State(state): State<AppState>,
    Extension(client): Extension<ClientInfo>,
    MaybeUser(current): MaybeUser,
    headers: HeaderMap,
    CheckedForm(form): CheckedForm<LoginForm>,
) -> Result<Response, AppError> {
    let (token, cookie) = auth::form_token(&state, &headers, current.as_ref())?;
    let submitted = truncate(&form.username, MAX_SUBMITTED_CHARS);
    if let Err(wait) = state
        .throttle()
        .check(client.ip, &submitted, Instant::now())
    {
        let secs = wait.secs().to_string();
        return Ok((
            StatusCode::TOO_MANY_REQUESTS,
            [
                (header::RETRY_AFTER, secs.as_str()),
                (header::CACHE_CONTROL, "no-store"),
            ],
            format!(
                "429 Too Many Requests\n\nToo many failed sign-in attempts. Please wait \
                 {secs} seconds and try again.\n"
            ),
        )
            .into_response());
    }

    let user = if form.username.len() > 1024 {
        None
    } else {
        state
            .store()
            .get_by_username_or_email(form.username.trim())
            .await
            .map_err(AppError::store)?
    };
    let verdict = if form.password.len() > MAX_PASSWORD_BYTES {
        Some(Verified::Invalid)
    } else {
        check_password(&state, user.as_ref(), form.password.clone()).await
    };
    let Some(verdict) = verdict else {
        return Ok(busy());
    };

    let (user, needs_rehash) = match (user, verdict) {
        (Some(user), Verified::Valid { needs_rehash }) if user.is_active => (user, needs_rehash),
        _ => {
            state
                .throttle()
                .record_failure(client.ip, &submitted, Instant::now());
            audit(
                &state,
                "login.failure",
                None,
                Some(submitted.clone()),
                serde_json::json!({ "ip": client.ip.to_string() }),
            )
            .await?;
            let page = render_login(
                &state,
                &token,
                form.next.as_deref(),
                Some(LOGIN_ERROR),
                &submitted,
            )?;
            return Ok(with_cookie(page, cookie));
        }
    };

    if needs_rehash {
        let params = state.argon2_params();
        let password = form.password;
        match state
            .hash_pool()
            .run(move || password::hash_password(password.as_bytes(), &params))
            .await
        {
            Ok(Ok(encoded)) => {
                if let Err(e) = state.store().set_password_hash(user.id, &encoded).await {
                    tracing::warn!(error = %e, "could not store the upgraded password hash");
                }
            }
            // The login itself succeeded; the upgrade is retried at the next login.
            Ok(Err(e)) => tracing::warn!(error = %e, "password rehash failed"),
            Err(_) => tracing::warn!("hashing pool busy: password rehash skipped"),
        }
    }

    let now = auth::now();
    state
        .store()
        .set_last_login(user.id, now)
        .await
        .map_err(AppError::store)?;
    // Fixation defence: whatever session id the client presented is ended, valid or not,
    // and the new session gets a fresh id.
    if let Some(old) =
        auth::cookie(&headers, auth::SESSION_COOKIE).and_then(|v| SessionId::parse(v).ok())
    {
        state
            .store()
            .delete_session(&old.key())
            .await
            .map_err(AppError::store)?;
    }
    let id = SessionId::generate().map_err(|e| AppError::Internal(format!("random: {e}")))?;
    let secret = CsrfSecret::generate().map_err(|e| AppError::Internal(format!("random: {e}")))?;
    let mut session = Session::new(&id, user.id, now, secret);
    session.ip = Some(client.ip.to_string());
    session.user_agent = headers
        .get(header::USER_AGENT)
        .map(|v| truncate(&String::from_utf8_lossy(v.as_bytes()), MAX_USER_AGENT_CHARS));
    state
        .store()
        .create_session(session)
        .await
        .map_err(AppError::store)?;
    state.throttle().record_success(client.ip, &submitted);
    audit(
        &state,
        "login.success",
        Some(user.username.as_str().to_owned()),
        None,
        serde_json::json!({ "ip": client.ip.to_string() }),
    )
    .await?;
    tracing::info!(user = %user.username, "signed in");

    let target = auth::safe_next(form.next.as_deref().unwrap_or("/"));
    let response = no_store(Redirect::to(&target).into_response());
    Ok(with_cookie(response, auth::session_cookie(&id)))
}

async fn logout(
    State(state): State<AppState>,
    Extension(client): Extension<ClientInfo>,
    MaybeUser(current): MaybeUser,
    headers: HeaderMap,
    uri: Uri,
    Form(form): Form<CsrfForm>,
) -> Result<Response, AppError> {
    // Signed out already: there is nothing to protect, so no token is needed to be told so.
    if let Some(auth) = &current {
        if let Err(refused) = auth::check_csrf(
            &state,
            &headers,
            &uri,
            &client,
            current.as_ref(),
            form.csrf_token.as_deref(),
        ) {
            return Ok(refused.into_response());
        }
        state
            .store()
            .delete_session(&auth.session.key)
            .await
            .map_err(AppError::store)?;
        audit(
            &state,
            "logout",
            Some(auth.user.username.as_str().to_owned()),
            None,
            serde_json::json!({ "ip": client.ip.to_string() }),
        )
        .await?;
    }
    let response = no_store(Redirect::to("/accounts/login/").into_response());
    Ok(with_cookie(response, auth::clear_session_cookie()))
}

pub(crate) fn when(t: palisade_core::Timestamp) -> String {
    match time::OffsetDateTime::from_unix_timestamp(t.unix()) {
        Ok(dt) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
            dt.year(),
            u8::from(dt.month()),
            dt.day(),
            dt.hour(),
            dt.minute(),
            dt.second()
        ),
        Err(_) => t.to_string(),
    }
}

async fn profile(
    State(state): State<AppState>,
    me: Authorized<SignedIn>,
) -> Result<Response, AppError> {
    let current = me.auth;
    let sessions = state
        .store()
        .list_sessions_for_user(current.user.id)
        .await
        .map_err(AppError::store)?;
    let timeouts = state.session_timeouts();
    let now = auth::now();
    let rows: Vec<_> = sessions
        .iter()
        .filter(|s| !s.is_expired(now, &timeouts))
        .map(|s| {
            minijinja::context! {
                key => s.key.to_hex(),
                created => when(s.created_at),
                last_seen => when(s.last_seen),
                ip => s.ip.clone(),
                user_agent => s.user_agent.clone(),
                current => s.key == current.session.key,
            }
        })
        .collect();
    let user = &current.user;
    // Read with the session, fresh as every permission check is: what the page shows is
    // what routes allow.
    let groups: Vec<String> = current.groups.iter().map(|g| g.name.to_string()).collect();
    let permissions: Vec<String> = current.held.iter().map(|p| p.to_string()).collect();
    let page = state.render(
        "profile.html",
        minijinja::context! {
            username => user.username.as_str(),
            email => user.email.as_ref().map(|e| e.as_str().to_owned()),
            is_active => user.is_active,
            is_staff => user.is_staff,
            is_superuser => user.is_superuser,
            last_login => user.last_login.map(when),
            sessions => rows,
            groups => groups,
            permissions => permissions,
            csrf_token => auth::session_token(&current.session),
        },
    )?;
    Ok(no_store(page.into_response()))
}

async fn revoke(
    State(state): State<AppState>,
    Extension(client): Extension<ClientInfo>,
    current: Authenticated,
    Path(key): Path<String>,
    CheckedForm(_): CheckedForm<CsrfForm>,
) -> Result<Response, AppError> {
    let not_found = || {
        no_store(
            (
                StatusCode::NOT_FOUND,
                "404 Not Found\n\nYou have no session with that key (it may have ended \
                 already).\n",
            )
                .into_response(),
        )
    };
    let Ok(key) = SessionKey::from_hex(&key) else {
        return Ok(not_found());
    };
    // Only the user's own sessions: someone else's key answers exactly like a missing one.
    match state
        .store()
        .get_session(&key)
        .await
        .map_err(AppError::store)?
    {
        Some(s) if s.user_id == current.user.id => {}
        _ => return Ok(not_found()),
    }
    state
        .store()
        .delete_session(&key)
        .await
        .map_err(AppError::store)?;
    audit(
        &state,
        "session.revoke",
        Some(current.user.username.as_str().to_owned()),
        Some(key.to_hex()),
        serde_json::json!({ "ip": client.ip.to_string() }),
    )
    .await?;
    if key == current.session.key {
        let response = no_store(Redirect::to("/accounts/login/").into_response());
        return Ok(with_cookie(response, auth::clear_session_cookie()));
    }
    Ok(no_store(Redirect::to("/accounts/profile/").into_response()))
}
