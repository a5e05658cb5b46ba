//! Password change and password reset, as Django's `PasswordChangeView` and
//! `PasswordResetView` / `PasswordResetConfirmView`, with the same field names.
//!
//! - **Change** (`/accounts/password/change/`, signed in): the old password is verified in
//!   the hashing pool and counted by the login throttle (a stolen session must not become a
//!   password-guessing oracle); the new one passes the policy; every other session of the
//!   user ends. The current session stays, as Django's `update_session_auth_hash` keeps it.
//! - **Reset request** (`/accounts/password/reset/`): the same page for every address, and
//!   the same work (one audit record) whether or not an account matched. Every active
//!   account with the address and a usable password gets its own link, as Django mails
//!   every such user.
//! - **Reset link** (`/accounts/reset/<uid>/<token>/`): `uid` is Django's base64url user id;
//!   the token is bound to the password hash, last login and address (see
//!   [`crate::forms::reset_binding`]), so it dies when the password changes or the user signs
//!   in, expires after `password_reset_timeout`, and is consumed once. Setting the password
//!   ends every session of the account: whoever forced the reset is signed out too.

use std::time::Instant;

use axum::Router;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use palisade_core::token::{self, Claims, Purpose, TokenError};
use palisade_core::{SessionStore, TokenStore, User, UserStore};
use serde::Deserialize;

use crate::accounts::{audit, no_store, with_cookie};
use crate::app::AppState;
use crate::auth::{self, Authenticated, CheckedForm, MaybeUser};
use crate::error::AppError;
use crate::forms::{self, Ctx, EmailForm, FieldErrors, LinkMail, MISMATCH, NewPassword};
use crate::middleware::ClientInfo;
use crate::registration::{message, render_email_form};
use crate::throttle::{Flow, LoginThrottle};

/// Django's wording.
pub const OLD_PASSWORD_WRONG: &str =
    "Your old password was entered incorrectly. Please enter it again.";

crate::auth::csrf_field!(SetPasswordForm);

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/accounts/password/change/", get(change_form).post(change))
        .route("/accounts/password/change/done/", get(change_done))
        .route(
            "/accounts/password/reset/",
            get(reset_request_form).post(reset_request),
        )
        .route(
            "/accounts/reset/{uid}/{token}/",
            get(reset_confirm_form).post(reset_confirm),
        )
}

#[derive(Deserialize)]
pub struct SetPasswordForm {
    #[serde(default)]
    old_password: String,
    #[serde(default)]
    new_password1: String,
    #[serde(default)]
    new_password2: String,
    csrf_token: Option<String>,
}

// Passwords must never reach a log line.
impl std::fmt::Debug for SetPasswordForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SetPasswordForm").finish_non_exhaustive()
    }
}

fn render_set_password(
    state: &AppState,
    title: &str,
    action: &str,
    ask_old: bool,
    csrf: &str,
    errors: &FieldErrors,
) -> Result<Response, AppError> {
    let page = state.render(
        "set_password.html",
        minijinja::context! {
            title => title,
            action => action,
            ask_old => ask_old,
            button => if ask_old { "Change my password" } else { "Set my password" },
            csrf_token => csrf,
            errors => errors.to_value(),
            help_texts => state.password_policy().help_texts(),
        },
    )?;
    Ok(no_store(page.into_response()))
}

const CHANGE: &str = "/accounts/password/change/";

async fn change_form(
    State(state): State<AppState>,
    current: Authenticated,
) -> Result<Response, AppError> {
    let csrf = auth::session_token(&current.session);
    render_set_password(
        &state,
        "Change your password",
        CHANGE,
        true,
        &csrf,
        &FieldErrors::default(),
    )
}

/// Checks the two new-password fields against each other and the policy, and hashes the
/// accepted password. `Err(response)`: the pool was full.
async fn new_password(
    state: &AppState,
    user: &User,
    form: &SetPasswordForm,
    errors: &mut FieldErrors,
) -> Result<Result<Option<String>, Response>, AppError> {
    if form.new_password1 != form.new_password2 {
        errors.add("new_password2", MISMATCH);
    }
    let hash = errors.is_empty();
    let Some(outcome) = forms::check_and_hash(
        state,
        form.new_password1.clone(),
        forms::user_inputs(user),
        hash,
    )
    .await?
    else {
        return Ok(Err(forms::busy()));
    };
    Ok(Ok(match outcome {
        NewPassword::Hashed(h) => Some(h),
        NewPassword::Accepted => None,
        NewPassword::Refused(violations) => {
            for v in violations {
                errors.add("new_password1", v);
            }
            None
        }
    }))
}

async fn change(
    State(state): State<AppState>,
    Extension(client): Extension<ClientInfo>,
    current: Authenticated,
    CheckedForm(form): CheckedForm<SetPasswordForm>,
) -> Result<Response, AppError> {
    let user = &current.user;
    let name = user.username.as_str();
    if let Err(wait) = state.throttle().check(client.ip, name, Instant::now()) {
        return Ok(forms::too_many(wait));
    }
    let csrf = auth::session_token(&current.session);
    let mut errors = FieldErrors::default();
    let Some(old_ok) = forms::verify_current(&state, user, form.old_password.clone()).await else {
        return Ok(forms::busy());
    };
    if !old_ok {
        state
            .throttle()
            .record_failure(client.ip, name, Instant::now());
        errors.add("old_password", OLD_PASSWORD_WRONG);
    }
    let hash = match new_password(&state, user, &form, &mut errors).await? {
        Ok(hash) => hash,
        Err(busy) => return Ok(busy),
    };
    let Some(hash) = hash.filter(|_| errors.is_empty()) else {
        return render_set_password(&state, "Change your password", CHANGE, true, &csrf, &errors);
    };
    state
        .store()
        .set_password_hash(user.id, &hash)
        .await
        .map_err(AppError::store)?;
    let ended = state
        .store()
        .delete_sessions_for_user(user.id, Some(&current.session.key))
        .await
        .map_err(AppError::store)?;
    audit(
        &state,
        "password.change",
        Some(name.to_owned()),
        None,
        serde_json::json!({ "ip": client.ip.to_string(), "sessions_ended": ended }),
    )
    .await?;
    tracing::info!(user = %user.username, "password changed");
    Ok(no_store(
        Redirect::to("/accounts/password/change/done/").into_response(),
    ))
}

async fn change_done(
    State(state): State<AppState>,
    _current: Authenticated,
) -> Result<Response, AppError> {
    message(
        &state,
        StatusCode::OK,
        "Password changed",
        &["Your password was changed. Every other session of your account has been signed out."],
        &[("/accounts/profile/", "Back to your profile")],
        None,
    )
}

fn render_reset_request(
    state: &AppState,
    csrf: &str,
    email: &str,
    errors: &FieldErrors,
) -> Result<Response, AppError> {
    render_email_form(
        state,
        "Reset your password",
        "Forgotten your password? Enter your e-mail address and we will send you a link to \
         choose a new one.",
        "/accounts/password/reset/",
        "Send reset link",
        csrf,
        email,
        errors,
    )
}

async fn reset_request_form(
    State(state): State<AppState>,
    MaybeUser(current): MaybeUser,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let (csrf, cookie) = auth::form_token(&state, &headers, current.as_ref())?;
    let page = render_reset_request(&state, &csrf, "", &FieldErrors::default())?;
    Ok(with_cookie(page, cookie))
}

/// Issues a reset token for `user` and mails the link.
pub(crate) async fn send_reset(state: &AppState, user: &User, site: &str) -> Result<(), AppError> {
    let Some(email) = &user.email else {
        return Ok(());
    };
    let (token, ttl) = forms::issue_token(state, user, Purpose::PasswordReset).await?;
    let minutes = ttl.as_secs().div_ceil(60);
    let body = format!(
        "Hello {name},\n\n\
         Someone, hopefully you, asked to reset the password of the account \"{name}\" at \
         {site}.\n\n\
         To choose a new password, open this link within {minutes} {unit}. It works once, \
         and stops working as soon as you sign in or your password changes:\n\n\
         {site}/accounts/reset/{uid}/{token}/\n\n\
         If you did not ask for this, ignore this message: your password has not changed.\n",
        name = user.username,
        unit = if minutes == 1 { "minute" } else { "minutes" },
        uid = forms::encode_uid(user.id),
    );
    forms::send_mail(state, email, "Reset your password", body);
    Ok(())
}

async fn reset_request(
    State(state): State<AppState>,
    Extension(client): Extension<ClientInfo>,
    MaybeUser(current): MaybeUser,
    headers: HeaderMap,
    uri: Uri,
    CheckedForm(form): CheckedForm<EmailForm>,
) -> Result<Response, AppError> {
    let ctx = Ctx {
        state: &state,
        client: &client,
        current: current.as_ref(),
        headers: &headers,
        uri: &uri,
    };
    forms::email_request(
        ctx,
        &form,
        LinkMail::PasswordReset,
        render_reset_request,
        reset_requested,
    )
    .await
}

fn reset_requested(state: &AppState) -> Result<Response, AppError> {
    message(
        state,
        StatusCode::OK,
        "Check your email",
        &[
            "If an account uses the address you entered, we have sent it instructions for \
             choosing a new password. They should arrive shortly.",
            "No message? Check that you entered the address you registered with, and look in \
             the spam folder.",
        ],
        &[("/accounts/login/", "Sign in")],
        None,
    )
}

enum Reset {
    Ready(Box<User>, Claims),
    Expired,
    Invalid,
}

async fn check_reset(state: &AppState, uid: &str, token: &str) -> Result<Reset, AppError> {
    let Some(id) = forms::decode_uid(uid) else {
        return Ok(Reset::Invalid);
    };
    let Some(user) = state.store().get_by_id(id).await.map_err(AppError::store)? else {
        return Ok(Reset::Invalid);
    };
    if !user.is_active {
        return Ok(Reset::Invalid);
    }
    let ring = forms::token_ring(state).await?;
    let binding = forms::reset_binding(&user);
    Ok(
        match token::verify(&ring, Purpose::PasswordReset, token, state.now(), &binding) {
            Ok(claims) if claims.user == user.id => Reset::Ready(Box::new(user), claims),
            Err(TokenError::Expired) => Reset::Expired,
            Ok(_) | Err(_) => Reset::Invalid,
        },
    )
}

fn reset_problem(state: &AppState, expired: bool) -> Result<Response, AppError> {
    let again = ("/accounts/password/reset/", "Ask for a new link");
    if expired {
        message(
            state,
            StatusCode::GONE,
            "Link expired",
            &["This password reset link has expired. Ask for a new one."],
            &[again],
            None,
        )
    } else {
        message(
            state,
            StatusCode::BAD_REQUEST,
            "Link not valid",
            &[
                "This password reset link is not valid: it may have been used already, or the \
               account has signed in or changed its password since it was sent. Ask for a \
               new one.",
            ],
            &[again],
            None,
        )
    }
}

const SET_TITLE: &str = "Choose a new password";

async fn reset_confirm_form(
    State(state): State<AppState>,
    MaybeUser(current): MaybeUser,
    headers: HeaderMap,
    Path((uid, token)): Path<(String, String)>,
) -> Result<Response, AppError> {
    match check_reset(&state, &uid, &token).await? {
        Reset::Ready(..) => {
            let (csrf, cookie) = auth::form_token(&state, &headers, current.as_ref())?;
            let action = format!("/accounts/reset/{uid}/{token}/");
            let page = render_set_password(
                &state,
                SET_TITLE,
                &action,
                false,
                &csrf,
                &FieldErrors::default(),
            )?;
            Ok(with_cookie(page, cookie))
        }
        Reset::Expired => reset_problem(&state, true),
        Reset::Invalid => reset_problem(&state, false),
    }
}

async fn reset_confirm(
    State(state): State<AppState>,
    Extension(client): Extension<ClientInfo>,
    MaybeUser(current): MaybeUser,
    headers: HeaderMap,
    Path((uid, token)): Path<(String, String)>,
    CheckedForm(form): CheckedForm<SetPasswordForm>,
) -> Result<Response, AppError> {
    if let Some(refused) = forms::limit_ip(&state, Flow::Token, &client) {
        return Ok(refused);
    }
    let (user, claims) = match check_reset(&state, &uid, &token).await? {
        Reset::Ready(user, claims) => (user, claims),
        Reset::Expired => return reset_problem(&state, true),
        Reset::Invalid => return reset_problem(&state, false),
    };
    let mut errors = FieldErrors::default();
    let hash = match new_password(&state, &user, &form, &mut errors).await? {
        Ok(hash) => hash,
        Err(busy) => return Ok(busy),
    };
    let Some(hash) = hash.filter(|_| errors.is_empty()) else {
        let (csrf, cookie) = auth::form_token(&state, &headers, current.as_ref())?;
        let action = format!("/accounts/reset/{uid}/{token}/");
        let page = render_set_password(&state, SET_TITLE, &action, false, &csrf, &errors)?;
        return Ok(with_cookie(page, cookie));
    };
    // Two submissions of one link racing each other: exactly one sets the password.
    if !state
        .store()
        .consume_token(&claims.id, claims.expires_at)
        .await
        .map_err(AppError::store)?
    {
        return reset_problem(&state, false);
    }
    state
        .store()
        .set_password_hash(user.id, &hash)
        .await
        .map_err(AppError::store)?;
    let ended = state
        .store()
        .delete_sessions_for_user(user.id, None)
        .await
        .map_err(AppError::store)?;
    audit(
        &state,
        "password.reset",
        Some(user.username.as_str().to_owned()),
        None,
        serde_json::json!({ "ip": client.ip.to_string(), "sessions_ended": ended }),
    )
    .await?;
    tracing::info!(user = %user.username, "password reset by e-mail link");
    message(
        &state,
        StatusCode::OK,
        "Password set",
        &[
            "Your password has been set, and every session of your account has been signed \
           out. You can sign in with the new password now.",
        ],
        &[("/accounts/login/", "Sign in")],
        None,
    )
}
