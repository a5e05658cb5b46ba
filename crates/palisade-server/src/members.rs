//! The members example app of the HTTP spec: the authorization demo. Each route names its
//! permission in its extractor ([`Authorized`]), so the check happens before the handler and
//! cannot be forgotten; the list page shows only the buttons the user may use, and the
//! routes behind them refuse anyone else all the same.
//!
//! | route | permission |
//! | --- | --- |
//! | `GET /members/` | `members.view_member` |
//! | `GET/POST /members/add/` | `members.add_member` |
//! | `POST /members/<id>/approve/` | `members.approve_member` |
//! | `POST /members/<id>/delete/` | `members.delete_member` |
//!
//! Every change is audited with who made it. An id that is not a member answers 404.

use axum::Router;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use palisade_core::{Email, MemberId, MemberName, MemberStore, NewMember, StoreError};
use serde::Deserialize;

use crate::accounts::{audit, no_store};
use crate::app::AppState;
use crate::auth::{self, CheckedForm};
use crate::error::AppError;
use crate::forms::{self, FieldErrors};
use crate::guard::Authorized;
use crate::middleware::ClientInfo;

crate::permission_required!(
    /// `members.view_member`.
    ViewMember in "members",
    "members.view_member"
);
crate::permission_required!(
    /// `members.add_member`.
    AddMember in "members",
    "members.add_member"
);
crate::permission_required!(
    /// `members.approve_member` (a custom permission).
    ApproveMember in "members",
    "members.approve_member"
);
crate::permission_required!(
    /// `members.delete_member`.
    DeleteMember in "members",
    "members.delete_member"
);

/// Members per page of the list.
const PAGE: u32 = 100;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/members/", get(list))
        .route("/members/add/", get(add_form).post(add))
        .route("/members/{id}/approve/", post(approve))
        .route("/members/{id}/delete/", post(delete))
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    after: Option<i64>,
}

#[derive(Debug, Deserialize)]
pub struct AddForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    csrf_token: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ButtonForm {
    csrf_token: Option<String>,
}

crate::auth::csrf_field!(AddForm, ButtonForm);

async fn list(
    State(state): State<AppState>,
    me: Authorized<ViewMember>,
    Query(query): Query<ListQuery>,
) -> Result<Response, AppError> {
    let members = state
        .store()
        .list_members(query.after.map(MemberId::new), PAGE)
        .await
        .map_err(AppError::store)?;
    let next_after = (members.len() == PAGE as usize)
        .then(|| members.last().map(|m| m.id.get()))
        .flatten();
    let rows: Vec<_> = members
        .iter()
        .map(|m| {
            minijinja::context! {
                id => m.id.get(),
                name => m.name.as_str(),
                email => m.email.as_ref().map(|e| e.as_str().to_owned()),
                approved => m.approved,
            }
        })
        .collect();
    let page = state.render(
        "members.html",
        minijinja::context! {
            members => rows,
            next_after => next_after,
            can_add => me.can("members.add_member"),
            can_approve => me.can("members.approve_member"),
            can_delete => me.can("members.delete_member"),
            csrf_token => auth::session_token(&me.auth.session),
        },
    )?;
    Ok(no_store(page.into_response()))
}

fn render_add(
    state: &AppState,
    csrf: &str,
    name: &str,
    email: &str,
    errors: &FieldErrors,
) -> Result<Response, AppError> {
    let page = state.render(
        "member_add.html",
        minijinja::context! {
            csrf_token => csrf, name => name, email => email, errors => errors.to_value(),
        },
    )?;
    Ok(no_store(page.into_response()))
}

async fn add_form(
    State(state): State<AppState>,
    me: Authorized<AddMember>,
) -> Result<Response, AppError> {
    let csrf = auth::session_token(&me.auth.session);
    render_add(&state, &csrf, "", "", &FieldErrors::default())
}

async fn add(
    State(state): State<AppState>,
    Extension(client): Extension<ClientInfo>,
    me: Authorized<AddMember>,
    CheckedForm(form): CheckedForm<AddForm>,
) -> Result<Response, AppError> {
    let name_raw = forms::field(&form.name);
    let email_raw = forms::field(&form.email);
    let mut errors = FieldErrors::default();
    let name = MemberName::parse(&name_raw)
        .map_err(|e| errors.add("name", e.to_string()))
        .ok();
    let email = if email_raw.is_empty() {
        None
    } else {
        Email::parse(&email_raw)
            .map_err(|e| errors.add("email", e.to_string()))
            .ok()
    };
    let Some(name) = name.filter(|_| errors.is_empty()) else {
        let csrf = auth::session_token(&me.auth.session);
        return render_add(&state, &csrf, &name_raw, &email_raw, &errors);
    };
    let member = state
        .store()
        .add_member(NewMember {
            name,
            email,
            added_by: Some(me.auth.user.id),
            added_at: auth::now(),
        })
        .await
        .map_err(AppError::store)?;
    audit(
        &state,
        "member.add",
        Some(me.auth.user.username.as_str().to_owned()),
        Some(member.id.to_string()),
        serde_json::json!({ "ip": client.ip.to_string(), "name": member.name.as_str() }),
    )
    .await?;
    Ok(no_store(Redirect::to("/members/").into_response()))
}

fn no_such_member() -> Response {
    no_store(
        (
            StatusCode::NOT_FOUND,
            "404 Not Found\n\nThere is no member with that number (it may have been deleted).\n",
        )
            .into_response(),
    )
}

async fn approve(
    State(state): State<AppState>,
    Extension(client): Extension<ClientInfo>,
    me: Authorized<ApproveMember>,
    Path(id): Path<i64>,
    CheckedForm(_): CheckedForm<ButtonForm>,
) -> Result<Response, AppError> {
    let id = MemberId::new(id);
    match state
        .store()
        .approve_member(id, me.auth.user.id, auth::now())
        .await
    {
        Ok(true) => {
            audit(
                &state,
                "member.approve",
                Some(me.auth.user.username.as_str().to_owned()),
                Some(id.to_string()),
                serde_json::json!({ "ip": client.ip.to_string() }),
            )
            .await?;
        }
        // Approved already (a second click, or someone else first): nothing to record.
        Ok(false) => {}
        Err(StoreError::NotFound) => return Ok(no_such_member()),
        Err(e) => return Err(AppError::store(e)),
    }
    Ok(no_store(Redirect::to("/members/").into_response()))
}

async fn delete(
    State(state): State<AppState>,
    Extension(client): Extension<ClientInfo>,
    me: Authorized<DeleteMember>,
    Path(id): Path<i64>,
    CheckedForm(_): CheckedForm<ButtonForm>,
) -> Result<Response, AppError> {
    let id = MemberId::new(id);
    if !state
        .store()
        .delete_member(id)
        .await
        .map_err(AppError::store)?
    {
        return Ok(no_such_member());
    }
    audit(
        &state,
        "member.delete",
        Some(me.auth.user.username.as_str().to_owned()),
        Some(id.to_string()),
        serde_json::json!({ "ip": client.ip.to_string() }),
    )
    .await?;
    Ok(no_store(Redirect::to("/members/").into_response()))
}
