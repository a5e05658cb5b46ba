//! What the self-service account forms share: field errors, setting a new password (policy
//! and hash in one job of the hashing pool), the account tokens' bindings, absolute links for
//! mail, and the plain answers (429, 503) every flow gives.
//!
//! A new password is checked against the policy and hashed on the pool's threads in one job:
//! zxcvbn is not free on a long input, and neither piece may run on the async runtime
//! (architecture habit 7). Registration hashes before it looks anything up, so it costs the
//! same whether or not the name or address is taken.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use palisade_core::token::{self, KeyRing, Purpose, TokenId};
use palisade_core::{Email, User, UserId};
use palisade_crypto::password;

use palisade_core::UserStore;
use serde::Deserialize;

use crate::accounts::{audit, with_cookie};
use crate::app::AppState;
use crate::auth::{self, Authenticated};
use crate::error::AppError;
use crate::mail::OutgoingMail;
use crate::middleware::ClientInfo;
use crate::throttle::{Flow, RetryAfter};

/// Django's wording for the confirmation field.
pub const MISMATCH: &str = "The two password fields didn't match.";
/// Every text field is cut to this before anything else looks at it (Django's e-mail and
/// username limits are 254 and 150; a password has its own cap in the policy).
pub const MAX_FIELD_BYTES: usize = 4096;

/// Errors by field name, in the shape the templates read (`errors.<field>` is a list).
#[derive(Debug, Default, Clone)]
pub struct FieldErrors(BTreeMap<&'static str, Vec<String>>);

impl FieldErrors {
    pub fn add(&mut self, field: &'static str, message: impl Into<String>) {
        self.0.entry(field).or_default().push(message.into());
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn get(&self, field: &str) -> &[String] {
        self.0.get(field).map_or(&[], Vec::as_slice)
    }

    pub fn to_value(&self) -> minijinja::Value {
        minijinja::Value::from(self.0.clone())
    }
}

/// The outcome of [`check_and_hash`].
#[derive(Debug)]
pub enum NewPassword {
    /// Accepted; the Argon2id hash to store.
    Hashed(String),
    /// Accepted, not hashed (the caller asked for the policy only).
    Accepted,
    /// Refused by the policy: one sentence per broken rule.
    Refused(Vec<String>),
}

/// Checks `password` against the configured policy (with the account's own attributes as
/// `user_inputs`) and, if it passes and `hash` is set, hashes it — one job in the hashing
/// pool. `None`: the pool is full (answer [`busy`]).
pub async fn check_and_hash(
    state: &AppState,
    password: String,
    user_inputs: Vec<String>,
    hash: bool,
) -> Result<Option<NewPassword>, AppError> {
    let policy = state.password_policy().clone();
    let params = state.argon2_params();
    let job = state.hash_pool().run(move || {
        let inputs: Vec<&str> = user_inputs.iter().map(String::as_str).collect();
        let outcome = policy.evaluate(&password, &inputs);
        if let Some(e) = &outcome.breach_check_error {
            // Fail open (see the policy's documentation), but loudly.
            tracing::warn!(error = %e.reason(), "breached-password check skipped");
        }
        if !outcome.violations.is_empty() {
            return Ok(NewPassword::Refused(
                outcome.violations.iter().map(ToString::to_string).collect(),
            ));
        }
        if !hash {
            return Ok(NewPassword::Accepted);
        }
        password::hash_password(password.as_bytes(), &params).map(NewPassword::Hashed)
    });
    match job.await {
        Ok(Ok(outcome)) => Ok(Some(outcome)),
        Ok(Err(e)) => Err(AppError::Internal(format!("password hashing: {e}"))),
        Err(_) => Ok(None),
    }
}

/// Verifies a signed-in user's current password (the change form's `old_password`) in the
/// pool. `None`: the pool is full.
pub async fn verify_current(state: &AppState, user: &User, given: String) -> Option<bool> {
    let params = state.argon2_params();
    let encoded = password::is_usable(&user.password_hash).then(|| user.password_hash.clone());
    state
        .hash_pool()
        .run(move || match encoded {
            Some(encoded) => matches!(
                password::verify_password(given.as_bytes(), &encoded, &params),
                Ok(password::Verified::Valid { .. })
            ),
            None => {
                password::dummy_verify(given.as_bytes(), &params);
                false
            }
        })
        .await
        .ok()
}

/// The account attributes a new password must not resemble (Django's
/// `UserAttributeSimilarityValidator` looks at the same ones).
pub fn user_inputs(user: &User) -> Vec<String> {
    let mut inputs = vec![user.username.as_str().to_owned()];
    if let Some(email) = &user.email {
        inputs.push(email.as_str().to_owned());
    }
    for name in [&user.first_name, &user.last_name] {
        if !name.is_empty() {
            inputs.push(name.clone());
        }
    }
    inputs
}

/// What an activation link is bound to: the address it was sent to and the last login, so a
/// link stops working once the account has been used (an administrator who deactivates a
/// used account is not overruled by an old mail).
pub fn activation_binding(user: &User) -> Vec<u8> {
    binding(&[
        b"activation",
        user.email.as_ref().map_or("", |e| e.canonical()).as_bytes(),
        last_login(user).as_bytes(),
    ])
}

/// What a reset link is bound to (Django's `PasswordResetTokenGenerator` hashes the same
/// state): the password hash, the last login and the address, so the link dies when the
/// password changes, when the user signs in, or when the address changes.
pub fn reset_binding(user: &User) -> Vec<u8> {
    binding(&[
        b"password-reset",
        user.password_hash.as_bytes(),
        last_login(user).as_bytes(),
        user.email.as_ref().map_or("", |e| e.canonical()).as_bytes(),
    ])
}

fn last_login(user: &User) -> String {
    user.last_login
        .map_or(String::new(), |t| t.unix().to_string())
}

fn binding(parts: &[&[u8]]) -> Vec<u8> {
    // Length-prefixed so that no two different tuples give the same bytes.
    let mut out = Vec::new();
    for part in parts {
        out.extend_from_slice(&(part.len() as u64).to_be_bytes());
        out.extend_from_slice(part);
    }
    out
}

/// The `<uid>` of a reset link, as Django writes it: base64url of the decimal user id.
pub fn encode_uid(id: UserId) -> String {
    URL_SAFE_NO_PAD.encode(id.get().to_string())
}

pub fn decode_uid(uid: &str) -> Option<UserId> {
    if uid.len() > 32 {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(uid).ok()?;
    let text = std::str::from_utf8(&bytes).ok()?;
    // Canonical decimal only, so one account has exactly one uid.
    if text.is_empty()
        || !text.bytes().all(|b| b.is_ascii_digit())
        || (text.len() > 1 && text.starts_with('0'))
    {
        return None;
    }
    text.parse::<i64>().ok().map(UserId::new)
}

/// The key ring that signs and verifies account tokens, read from the database each time so
/// a rotation on any node (or by `palisade keys rotate`) takes effect everywhere at once.
pub async fn token_ring(state: &AppState) -> Result<KeyRing, AppError> {
    crate::secrets::token_key_ring(state.store(), state.master_key(), state.now())
        .await
        .map_err(|e| AppError::Internal(format!("token keys: {e}")))
}

/// A new signed link token for `user`: its lifetime and binding follow from `purpose`
/// (`account_activation_days` and [`activation_binding`], or `password_reset_timeout` and
/// [`reset_binding`]). Returns the token and its lifetime.
pub async fn issue_token(
    state: &AppState,
    user: &User,
    purpose: Purpose,
) -> Result<(String, Duration), AppError> {
    let (ttl, binding) = match purpose {
        Purpose::Activation => (
            state.config().accounts.activation_ttl,
            activation_binding(user),
        ),
        Purpose::PasswordReset => (state.config().accounts.reset_ttl, reset_binding(user)),
    };
    let ring = token_ring(state).await?;
    let id = TokenId::generate().map_err(|e| AppError::Internal(format!("random: {e}")))?;
    let token = token::issue(
        &ring,
        purpose,
        user.id,
        id,
        state.now(),
        i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX),
        &binding,
    );
    Ok((token, ttl))
}

/// Queues a plain-text mail. The page a flow answers with is the same whatever happens to
/// it: failures are logged and audited by the mailer, never shown.
pub fn send_mail(state: &AppState, to: &Email, subject: &str, body: String) {
    let _ = state.mailer().send(OutgoingMail {
        to: to.as_str().to_owned(),
        subject: subject.to_owned(),
        text_body: body,
        html_body: None,
    });
}

/// `https://host[:port]` as this request reached us, for links in mail. The `Host` header
/// has been checked against the allowed hosts by the edge layer, so a forged one never
/// gets this far.
pub fn site_url(headers: &HeaderMap, uri: &Uri, client: &ClientInfo) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()))
        .unwrap_or("localhost");
    let scheme = if client.https { "https" } else { "http" };
    format!("{scheme}://{host}")
}

/// Counts one request of `flow` from this client; `Some(429)` when over the limit.
pub fn limit_ip(state: &AppState, flow: Flow, client: &ClientInfo) -> Option<Response> {
    state
        .flow_limiter()
        .attempt_ip(flow, client.ip, Instant::now())
        .err()
        .map(too_many)
}

/// Counts one request of `flow` about to act on `address` (see
/// [`crate::throttle::FlowLimiter::attempt_address`]); `Some(429)` when over the limit.
pub fn limit_address(state: &AppState, flow: Flow, address: &Email) -> Option<Response> {
    state
        .flow_limiter()
        .attempt_address(flow, address.canonical(), Instant::now())
        .err()
        .map(too_many)
}

/// 429 with `Retry-After`, in plain words.
pub fn too_many(wait: RetryAfter) -> Response {
    let secs = wait.secs().to_string();
    (
        StatusCode::TOO_MANY_REQUESTS,
        [
            (header::RETRY_AFTER, secs.as_str()),
            (header::CACHE_CONTROL, "no-store"),
        ],
        format!(
            "429 Too Many Requests\n\nToo many requests of this kind. Please wait {secs} \
             seconds and try again.\n"
        ),
    )
        .into_response()
}

/// 503 when the hashing pool is full.
pub fn busy() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [
            (header::RETRY_AFTER, "2"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        "503 Service Unavailable\n\nThe server is busy right now. Please try again in a few \
         seconds.\n",
    )
        .into_response()
}

/// A form field as submitted, bounded and trimmed of surrounding white space (passwords are
/// never trimmed: spaces are part of them).
pub fn field(value: &str) -> String {
    let mut end = value.len().min(MAX_FIELD_BYTES);
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    value.get(..end).unwrap_or("").trim().to_owned()
}

/// The request a form handler is answering, in one piece for the shared flows.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    pub state: &'a AppState,
    pub client: &'a ClientInfo,
    pub current: Option<&'a Authenticated>,
    pub headers: &'a HeaderMap,
    pub uri: &'a Uri,
}

/// The one-field form that asks for a link by e-mail (resend activation, reset request).
#[derive(Debug, Deserialize)]
pub struct EmailForm {
    #[serde(default)]
    pub email: String,
    pub csrf_token: Option<String>,
}

crate::auth::csrf_field!(EmailForm);

/// What a one-field e-mail request mails, and to which of the address's accounts.
#[derive(Debug, Clone, Copy)]
pub enum LinkMail {
    /// A new activation link, for accounts never activated (a deactivated account stays
    /// deactivated).
    Activation,
    /// A reset link, for active accounts with a usable password (Django's rule).
    PasswordReset,
}

impl LinkMail {
    fn flow(self) -> Flow {
        match self {
            Self::Activation => Flow::ResendActivation,
            Self::PasswordReset => Flow::PasswordReset,
        }
    }

    fn audit_action(self) -> &'static str {
        match self {
            Self::Activation => "activation.resend",
            Self::PasswordReset => "password.reset_request",
        }
    }

    fn wants(self, user: &User) -> bool {
        match self {
            Self::Activation => !user.is_active && user.last_login.is_none(),
            Self::PasswordReset => user.is_active && password::is_usable(&user.password_hash),
        }
    }

    async fn send(self, state: &AppState, user: &User, site: &str) -> Result<(), AppError> {
        match self {
            Self::Activation => crate::registration::send_activation(state, user, site).await,
            Self::PasswordReset => crate::password_flows::send_reset(state, user, site).await,
        }
    }
}

/// The POST of a one-field e-mail form (its CSRF token checked by [`auth::CheckedForm`]):
/// the per-IP limit, the address (a malformed one
/// is a field error on `render_form`), the per-address limit, then a link to every account
/// of the address that `mail` wants, one audit record whether or not any did, and the
/// `done` page, the same for every address.
pub async fn email_request(
    ctx: Ctx<'_>,
    form: &EmailForm,
    mail: LinkMail,
    render_form: fn(&AppState, &str, &str, &FieldErrors) -> Result<Response, AppError>,
    done: fn(&AppState) -> Result<Response, AppError>,
) -> Result<Response, AppError> {
    let Ctx {
        state,
        client,
        current,
        headers,
        uri,
    } = ctx;
    let raw = field(&form.email);
    if let Some(refused) = limit_ip(state, mail.flow(), client) {
        return Ok(refused);
    }
    let email = match Email::parse(&raw) {
        Ok(email) => email,
        Err(e) => {
            let (csrf, cookie) = auth::form_token(state, headers, current)?;
            let mut errors = FieldErrors::default();
            errors.add("email", e.to_string());
            let page = render_form(state, &csrf, &raw, &errors)?;
            return Ok(with_cookie(page, cookie));
        }
    };
    if let Some(refused) = limit_address(state, mail.flow(), &email) {
        return Ok(refused);
    }
    let site = site_url(headers, uri, client);
    let users = state
        .store()
        .users_with_email(&email)
        .await
        .map_err(AppError::store)?;
    let mut sent = 0u32;
    for user in users.iter().filter(|u| mail.wants(u)) {
        mail.send(state, user, &site).await?;
        sent += 1;
    }
    // Written whether or not anything was sent, so both answers cost the same.
    audit(
        state,
        mail.audit_action(),
        None,
        Some(email.as_str().to_owned()),
        serde_json::json!({ "ip": client.ip.to_string(), "sent": sent }),
    )
    .await?;
    done(state)
}

/// A link in a message page.
pub fn link(href: &str, text: &str) -> minijinja::Value {
    minijinja::context! { href => href, text => text }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn uid_is_djangos_and_canonical() {
        assert_eq!(encode_uid(UserId::new(1)), "MQ");
        assert_eq!(encode_uid(UserId::new(42)), "NDI");
        assert_eq!(decode_uid("NDI"), Some(UserId::new(42)));
        // "MDQy" is "042", "LTE" is "-1", "KzE" is "+1": one account has one uid.
        for bad in ["", "MDQy", "!!", "LTE", "KzE", &"M".repeat(40)] {
            assert_eq!(decode_uid(bad), None, "{bad}");
        }
    }

    #[test]
    fn fields_are_bounded_on_a_char_boundary() {
        let long = "é".repeat(MAX_FIELD_BYTES);
        let cut = field(&long);
        assert!(cut.len() <= MAX_FIELD_BYTES);
        assert!(cut.chars().all(|c| c == 'é'));
        assert_eq!(field("  bob \n"), "bob");
    }

    #[test]
    fn bindings_separate_their_parts() {
        assert_ne!(binding(&[b"ab", b"c"]), binding(&[b"a", b"bc"]));
    }
}
