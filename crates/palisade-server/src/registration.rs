//! Self-service registration with e-mail activation, as django-registration's two-step
//! workflow, without its account-enumeration hole.
//!
//! `POST /accounts/register/` answers with the same page whether or not the name or the
//! address is taken, and costs the same: the password is checked against the policy and
//! hashed before anything is looked up, and both outcomes write one audit record and queue
//! one mail. What differs goes to the address owner, who is the only one entitled to know:
//! - a new name and address: an inactive account and an activation link;
//! - an address already in use: a notice to that address ("you already have an account;
//!   sign in or reset your password"), and no account;
//! - a taken name with a new address: a notice to the new address that the name is taken.
//!
//! Field errors (a malformed name or address, passwords that differ, a password the policy
//! refuses) are shown on the form: they say nothing about other accounts.
//!
//! Activation links (`/accounts/activate/<token>/`) are [`palisade_core::token`] tokens:
//! signed with the database-held key ring, valid for `account_activation_days`, bound to the
//! address and the last login, and single use through the token store. A GET only shows a
//! confirm button, so a mail scanner that follows links activates nothing; the POST
//! activates. Expired, invalid and already-used links each get their own page with the way
//! to a new link (`/accounts/activate/resend/`, which answers the same for every address).

use axum::Router;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use palisade_core::token::{self, Claims, Purpose, TokenError};
use palisade_core::{Email, NewUser, StoreError, TokenStore, User, UserStore, Username};
use serde::Deserialize;

use crate::accounts::{audit, no_store, with_cookie};
use crate::app::AppState;
use crate::auth::{self, CheckedForm, MaybeUser};
use crate::error::AppError;
use crate::forms::{
    self, Ctx, EmailForm, FieldErrors, LinkMail, MISMATCH, NewPassword, send_mail as send,
};
use crate::middleware::ClientInfo;
use crate::throttle::Flow;

crate::auth::csrf_field!(RegisterForm, CsrfOnly);

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/accounts/register/", get(register_form).post(register))
        .route("/accounts/activate/resend/", get(resend_form).post(resend))
        .route(
            "/accounts/activate/{token}/",
            get(activate_page).post(activate),
        )
}

#[derive(Deserialize)]
pub struct RegisterForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password1: String,
    #[serde(default)]
    password2: String,
    csrf_token: Option<String>,
}

// The passwords must never reach a log line.
impl std::fmt::Debug for RegisterForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisterForm")
            .field("username", &self.username)
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Deserialize)]
pub struct CsrfOnly {
    csrf_token: Option<String>,
}

fn render_register(
    state: &AppState,
    csrf: &str,
    username: &str,
    email: &str,
    errors: &FieldErrors,
) -> Result<Response, AppError> {
    let page = state.render(
        "register.html",
        minijinja::context! {
            csrf_token => csrf,
            username => username,
            email => email,
            errors => errors.to_value(),
            help_texts => state.password_policy().help_texts(),
        },
    )?;
    Ok(no_store(page.into_response()))
}

/// A page of [`message.html`]: a title, paragraphs and links, with an optional one-button
/// form posting to `form` (action, button label).
pub(crate) fn message(
    state: &AppState,
    status: StatusCode,
    title: &str,
    paragraphs: &[&str],
    links: &[(&str, &str)],
    form: Option<(&str, &str, &str)>,
) -> Result<Response, AppError> {
    let links: Vec<_> = links.iter().map(|(h, t)| forms::link(h, t)).collect();
    let (action, button, csrf) = form.map_or((None, None, None), |(a, b, c)| {
        (Some(a.to_owned()), Some(b.to_owned()), Some(c.to_owned()))
    });
    let page = state.render(
        "message.html",
        minijinja::context! {
            title => title,
            paragraphs => paragraphs.iter().map(|p| (*p).to_owned()).collect::<Vec<_>>(),
            links => links,
            form_action => action,
            form_button => button,
            csrf_token => csrf,
        },
    )?;
    Ok(no_store((status, page).into_response()))
}

async fn register_form(
    State(state): State<AppState>,
    MaybeUser(current): MaybeUser,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let (csrf, cookie) = auth::form_token(&state, &headers, current.as_ref())?;
    let page = render_register(&state, &csrf, "", "", &FieldErrors::default())?;
    Ok(with_cookie(page, cookie))
}

/// Issues an activation token for `user` and mails the link.
pub(crate) async fn send_activation(
    state: &AppState,
    user: &User,
    site: &str,
) -> Result<(), AppError> {
    let Some(email) = &user.email else {
        return Ok(());
    };
    let (token, ttl) = forms::issue_token(state, user, Purpose::Activation).await?;
    let days = ttl.as_secs().div_ceil(86_400);
    let body = format!(
        "Hello {name},\n\n\
         Someone, hopefully you, created the account \"{name}\" at {site} with this address.\n\n\
         To activate it, open this link. It works once, for {days} {unit}:\n\n\
         {site}/accounts/activate/{token}/\n\n\
         If this was not you, ignore this message: the account stays inactive and nothing \
         else happens.\n",
        name = user.username,
        unit = if days == 1 { "day" } else { "days" },
    );
    send(state, email, "Activate your account", body);
    Ok(())
}

fn check_email_page(state: &AppState) -> Result<Response, AppError> {
    message(
        state,
        StatusCode::OK,
        "Check your email",
        &[
            "Thank you. If the details you entered can be used, we have sent a message to \
             the address you gave with a link to activate the account. Open that link to \
             finish.",
            "No message after a few minutes? Look in the spam folder, or ask for a new link.",
        ],
        &[(
            "/accounts/activate/resend/",
            "Send the activation link again",
        )],
        None,
    )
}

async fn register(
    State(state): State<AppState>,
    Extension(client): Extension<ClientInfo>,
    MaybeUser(current): MaybeUser,
    headers: HeaderMap,
    uri: Uri,
    CheckedForm(form): CheckedForm<RegisterForm>,
) -> Result<Response, AppError> {
    let username_raw = forms::field(&form.username);
    let email_raw = forms::field(&form.email);
    if let Some(refused) = forms::limit_ip(&state, Flow::Register, &client) {
        return Ok(refused);
    }
    let (csrf, cookie) = auth::form_token(&state, &headers, current.as_ref())?;

    let mut errors = FieldErrors::default();
    let username = Username::parse(&username_raw)
        .map_err(|e| errors.add("username", e.to_string()))
        .ok();
    let email = Email::parse(&email_raw)
        .map_err(|e| errors.add("email", e.to_string()))
        .ok();
    if form.password1 != form.password2 {
        errors.add("password2", MISMATCH);
    }
    let inputs: Vec<String> = [&username_raw, &email_raw]
        .into_iter()
        .filter(|s| !s.is_empty())
        .cloned()
        .collect();
    // Hash only a form that can succeed; otherwise the policy alone, so every error shows.
    let Some(outcome) =
        forms::check_and_hash(&state, form.password1, inputs, errors.is_empty()).await?
    else {
        return Ok(forms::busy());
    };
    let hash = match outcome {
        NewPassword::Refused(violations) => {
            for v in violations {
                errors.add("password1", v);
            }
            None
        }
        NewPassword::Hashed(hash) => Some(hash),
        NewPassword::Accepted => None,
    };
    let (Some(username), Some(email), Some(hash), true) =
        (username, email, hash, errors.is_empty())
    else {
        let page = render_register(&state, &csrf, &username_raw, &email_raw, &errors)?;
        return Ok(with_cookie(page, cookie));
    };

    // Counted whether or not the address is in use, so a 429 says nothing about accounts.
    if let Some(refused) = forms::limit_address(&state, Flow::Register, &email) {
        return Ok(refused);
    }
    let site = forms::site_url(&headers, &uri, &client);
    let store = state.store();
    let name_taken = store
        .get_by_username(&username)
        .await
        .map_err(AppError::store)?
        .is_some();
    let address_used = !store
        .users_with_email(&email)
        .await
        .map_err(AppError::store)?
        .is_empty();
    let ip = serde_json::json!({ "ip": client.ip.to_string() });
    // Each path queues one mail and writes one audit record, so they cost the same.
    let refused = if address_used {
        Some(("You already have an account", already_registered(&site)))
    } else if name_taken {
        Some(("That username is taken", name_is_taken(&site, &username)))
    } else {
        let mut new = NewUser::new(username.clone(), Some(email.clone()), hash, auth::now());
        new.is_active = false;
        match store.create_user(new).await {
            Ok(user) => {
                send_activation(&state, &user, &site).await?;
                audit(
                    &state,
                    "user.register",
                    None,
                    Some(user.username.as_str().to_owned()),
                    ip.clone(),
                )
                .await?;
                tracing::info!(user = %user.username, "account registered, awaiting activation");
                None
            }
            // Taken between the lookup and the insert by a concurrent registration.
            Err(StoreError::Conflict) => {
                Some(("That username is taken", name_is_taken(&site, &username)))
            }
            Err(e) => return Err(AppError::store(e)),
        }
    };
    if let Some((subject, body)) = refused {
        send(&state, &email, subject, body);
        audit(
            &state,
            "register.refused",
            None,
            Some(username.as_str().to_owned()),
            ip,
        )
        .await?;
    }
    check_email_page(&state)
}

fn already_registered(site: &str) -> String {
    format!(
        "Hello,\n\n\
         Someone, perhaps you, tried to create a new account at {site} with this address. \
         An account with this address already exists, so no new one was made.\n\n\
         If it was you, sign in at {site}/accounts/login/ or, if you have forgotten the \
         password, choose a new one at {site}/accounts/password/reset/.\n\n\
         If it was not you, ignore this message: nothing has changed.\n"
    )
}

fn name_is_taken(site: &str, username: &Username) -> String {
    format!(
        "Hello,\n\n\
         Someone, hopefully you, tried to create the account \"{username}\" at {site} with \
         this address, but that username is already taken, so no account was made.\n\n\
         To try again with another username, go to {site}/accounts/register/.\n\n\
         If it was not you, ignore this message.\n"
    )
}

/// Where an activation link stands.
enum Activation {
    Ready(Box<User>, Claims),
    AlreadyUsed,
    Expired,
    Invalid,
}

async fn check_activation(state: &AppState, token: &str) -> Result<Activation, AppError> {
    let Some(uid) = token::claimed_user(token) else {
        return Ok(Activation::Invalid);
    };
    let Some(user) = state
        .store()
        .get_by_id(uid)
        .await
        .map_err(AppError::store)?
    else {
        return Ok(Activation::Invalid);
    };
    let ring = forms::token_ring(state).await?;
    let binding = forms::activation_binding(&user);
    Ok(
        match token::verify(&ring, Purpose::Activation, token, state.now(), &binding) {
            // A genuine link of an account that is active already (expired or not).
            Ok(_) | Err(TokenError::Expired) if user.is_active => Activation::AlreadyUsed,
            Ok(claims) if claims.user == user.id => Activation::Ready(Box::new(user), claims),
            Err(TokenError::Expired) => Activation::Expired,
            Ok(_) | Err(_) => Activation::Invalid,
        },
    )
}

fn activation_problem(state: &AppState, found: &Activation) -> Result<Response, AppError> {
    let resend = ("/accounts/activate/resend/", "Send a new activation link");
    let login = ("/accounts/login/", "Sign in");
    match found {
        Activation::AlreadyUsed => message(
            state,
            StatusCode::CONFLICT,
            "Link already used",
            &[
                "This activation link has already been used: the account is active. You can sign in.",
            ],
            &[login],
            None,
        ),
        Activation::Expired => message(
            state,
            StatusCode::GONE,
            "Link expired",
            &[
                "This activation link has expired. Ask for a new one: it will be sent to the \
               address you registered with.",
            ],
            &[resend],
            None,
        ),
        Activation::Invalid | Activation::Ready(..) => message(
            state,
            StatusCode::BAD_REQUEST,
            "Link not valid",
            &[
                "This activation link is not valid. Check that you copied the whole link from \
               the message, or ask for a new one.",
            ],
            &[resend],
            None,
        ),
    }
}

async fn activate_page(
    State(state): State<AppState>,
    MaybeUser(current): MaybeUser,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Result<Response, AppError> {
    let (csrf, cookie) = auth::form_token(&state, &headers, current.as_ref())?;
    let found = check_activation(&state, &token).await?;
    let page = match &found {
        Activation::Ready(user, _) => {
            let action = format!("/accounts/activate/{token}/");
            let text = format!(
                "Press the button to activate the account \"{}\".",
                user.username
            );
            message(
                &state,
                StatusCode::OK,
                "Activate your account",
                &[&text],
                &[],
                Some((&action, "Activate account", &csrf)),
            )?
        }
        other => activation_problem(&state, other)?,
    };
    Ok(with_cookie(page, cookie))
}

async fn activate(
    State(state): State<AppState>,
    Extension(client): Extension<ClientInfo>,
    Path(token): Path<String>,
    CheckedForm(_): CheckedForm<CsrfOnly>,
) -> Result<Response, AppError> {
    if let Some(refused) = forms::limit_ip(&state, Flow::Token, &client) {
        return Ok(refused);
    }
    let (user, claims) = match check_activation(&state, &token).await? {
        Activation::Ready(user, claims) => (user, claims),
        other => return activation_problem(&state, &other),
    };
    // The single-use record decides between two clicks racing each other.
    if !state
        .store()
        .consume_token(&claims.id, claims.expires_at)
        .await
        .map_err(AppError::store)?
    {
        return activation_problem(&state, &Activation::AlreadyUsed);
    }
    state
        .store()
        .set_active(user.id, true)
        .await
        .map_err(AppError::store)?;
    audit(
        &state,
        "user.activate",
        Some(user.username.as_str().to_owned()),
        None,
        serde_json::json!({ "ip": client.ip.to_string(), "via": "email" }),
    )
    .await?;
    tracing::info!(user = %user.username, "account activated");
    message(
        &state,
        StatusCode::OK,
        "Account activated",
        &["Your account is active. You can sign in now."],
        &[("/accounts/login/", "Sign in")],
        None,
    )
}

async fn resend_form(
    State(state): State<AppState>,
    MaybeUser(current): MaybeUser,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let (csrf, cookie) = auth::form_token(&state, &headers, current.as_ref())?;
    let page = render_resend(&state, &csrf, "", &FieldErrors::default())?;
    Ok(with_cookie(page, cookie))
}

fn render_resend(
    state: &AppState,
    csrf: &str,
    email: &str,
    errors: &FieldErrors,
) -> Result<Response, AppError> {
    render_email_form(
        state,
        "Send the activation link again",
        "Enter the address you registered with. If an account there still needs \
         activating, we will send it a new link.",
        "/accounts/activate/resend/",
        "Send link",
        csrf,
        email,
        errors,
    )
}

/// The one-field e-mail form (resend, password reset).
#[allow(clippy::too_many_arguments)]
pub(crate) fn render_email_form(
    state: &AppState,
    title: &str,
    intro: &str,
    action: &str,
    button: &str,
    csrf: &str,
    email: &str,
    errors: &FieldErrors,
) -> Result<Response, AppError> {
    let page = state.render(
        "email_form.html",
        minijinja::context! {
            title => title, intro => intro, action => action, button => button,
            csrf_token => csrf, email => email, errors => errors.to_value(),
        },
    )?;
    Ok(no_store(page.into_response()))
}

async fn resend(
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
    forms::email_request(ctx, &form, LinkMail::Activation, render_resend, resend_done).await
}

fn resend_done(state: &AppState) -> Result<Response, AppError> {
    message(
        state,
        StatusCode::OK,
        "Check your email",
        &[
            "If an account that still needs activating uses this address, we have sent it a \
           new activation link. Links sent before keep working until they expire.",
        ],
        &[("/accounts/login/", "Sign in")],
        None,
    )
}
