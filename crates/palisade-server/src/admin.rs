//! The admin console at `/admin/`: accounts, groups, permissions and the audit log, for staff.
//!
//! Every route is behind [`Authorized`] with a requirement that needs staff status *and* the
//! Django-style model permission for what it does (`auth.view_user`, `auth.change_user`,
//! `auth.add_group`, …, `audit.view_record`), so a staff account sees only the sections it
//! was given; an active superuser holds every permission. Pages leave out the buttons the
//! caller may not use, and the routes refuse them all the same.
//!
//! On top of the route's permission, three rules keep a staff account from raising itself or
//! anyone above its own rights (Django's admin lets a user with `change_user` make itself
//! superuser; Palisade does not):
//! 1. Only a superuser changes the staff and superuser flags, or creates an account with them.
//! 2. Only a superuser changes a staff or superuser account (a staff account's own included):
//!    setting another staff member's password would hand over their rights, and editing its
//!    own groups is the "user adds itself to a group" escalation.
//! 3. A grant needs the granter to hold what it gives: a permission granted to a user or a
//!    group must be one the caller holds, and adding a user to a group needs every permission
//!    of the group; a non-superuser manages only accounts whose permissions it holds too.
//!
//! Every change writes an audit record naming who made it. The users list is paginated in
//! the store (ordered by username, an index) so it stays fast at 100,000 accounts.

use std::collections::BTreeSet;

use axum::Router;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use palisade_core::{
    AuditLog, AuditVerifyError, AuthzStore, Email, GroupId, GroupName, NewUser, Permission,
    SessionKey, SessionStore, StoreError, User, UserId, UserQuery, UserStore, Username,
};
use serde::Deserialize;

use crate::accounts::{audit, no_store, when};
use crate::app::AppState;
use crate::auth::{self, Authenticated, CheckedForm};
use crate::error::AppError;
use crate::forms::{self, FieldErrors, MISMATCH, NewPassword};
use crate::guard::{Authorized, Requirement, Staff, has};
use crate::middleware::ClientInfo;

/// Users per page of the list.
pub const USERS_PAGE: u32 = 50;
/// Audit records per page.
const AUDIT_PAGE: u32 = 100;
/// Members of a group listed on its page.
const GROUP_MEMBERS_SHOWN: usize = 200;

/// Defines a requirement: staff status and one permission.
macro_rules! staff_with {
    ($(#[$doc:meta])* $name:ident, $perm:literal) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name;

        impl Requirement for $name {
            const NEEDS: &'static str = concat!("staff status and the permission ", $perm);

            fn allows(user: &User, held: &BTreeSet<Permission>) -> bool {
                Staff::allows(user, held) && has(user, held, $perm)
            }
        }
    };
}

staff_with!(
    /// The users list and a user's page.
    ViewUser,
    "auth.view_user"
);
staff_with!(
    /// Creating accounts.
    AddUser,
    "auth.add_user"
);
staff_with!(
    /// Changing accounts: active, password, sessions, groups and direct grants.
    ChangeUser,
    "auth.change_user"
);
staff_with!(
    /// The groups list and a group's page.
    ViewGroup,
    "auth.view_group"
);
staff_with!(
    /// Creating groups.
    AddGroup,
    "auth.add_group"
);
staff_with!(
    /// Granting and revoking a group's permissions.
    ChangeGroup,
    "auth.change_group"
);
staff_with!(
    /// Deleting groups.
    DeleteGroup,
    "auth.delete_group"
);
staff_with!(
    /// The permissions registry.
    ViewPermission,
    "auth.view_permission"
);
staff_with!(
    /// The audit log and its chain check.
    ViewAudit,
    "audit.view_record"
);

/// A staff superuser: the staff and superuser flags.
#[derive(Debug)]
pub struct StaffSuperuser;

impl Requirement for StaffSuperuser {
    const NEEDS: &'static str = "superuser status";

    fn allows(user: &User, held: &BTreeSet<Permission>) -> bool {
        Staff::allows(user, held) && user.is_superuser
    }
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/", get(index))
        .route("/admin/users/", get(users))
        .route("/admin/users/add/", get(user_add_form).post(user_add))
        .route("/admin/users/{id}/", get(user_page))
        .route(
            "/admin/users/{id}/activate/",
            post(set_active_route::<true>),
        )
        .route(
            "/admin/users/{id}/deactivate/",
            post(set_active_route::<false>),
        )
        .route("/admin/users/{id}/flags/", post(flags))
        .route("/admin/users/{id}/password/", post(set_password))
        .route("/admin/users/{id}/sessions/revoke/", post(revoke_sessions))
        // {change}: add or remove; grant or revoke (see `Change`).
        .route(
            "/admin/users/{id}/groups/{change}/",
            post(user_group_change),
        )
        .route(
            "/admin/users/{id}/permissions/{change}/",
            post(user_permission_change),
        )
        .route("/admin/groups/", get(groups))
        .route("/admin/groups/add/", post(group_add))
        .route("/admin/groups/{id}/", get(group_page))
        .route(
            "/admin/groups/{id}/permissions/{change}/",
            post(group_permission_change),
        )
        .route("/admin/groups/{id}/delete/", post(group_delete))
        .route("/admin/permissions/", get(permissions))
        .route("/admin/audit/", get(audit_log))
        .route("/admin/audit/verify/", get(audit_verify))
}

// ---- forms ----

#[derive(Debug, Deserialize)]
pub struct ButtonForm {
    csrf_token: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct GroupForm {
    #[serde(default)]
    group: String,
    csrf_token: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct PermissionForm {
    #[serde(default)]
    permission: String,
    csrf_token: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct NameForm {
    #[serde(default)]
    name: String,
    csrf_token: Option<String>,
}

/// Checkboxes: present (any value) means on, as a browser sends them.
#[derive(Debug, Deserialize)]
pub struct FlagsForm {
    is_staff: Option<String>,
    is_superuser: Option<String>,
    csrf_token: Option<String>,
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    new_password1: String,
    #[serde(default)]
    new_password2: String,
    csrf_token: Option<String>,
}

// Passwords must never reach a log line.
impl std::fmt::Debug for PasswordForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordForm").finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
pub struct UserAddForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password1: String,
    #[serde(default)]
    password2: String,
    is_staff: Option<String>,
    is_superuser: Option<String>,
    csrf_token: Option<String>,
}

impl std::fmt::Debug for UserAddForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserAddForm")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

crate::auth::csrf_field!(
    ButtonForm,
    GroupForm,
    PermissionForm,
    NameForm,
    FlagsForm,
    PasswordForm,
    UserAddForm
);

#[derive(Debug, Deserialize)]
pub struct UsersQuery {
    q: Option<String>,
    page: Option<u64>,
}

#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    before: Option<i64>,
}

/// The verb at the end of a membership or grant route: `add`/`grant` give, `remove`/
/// `revoke` take away. Anything else is no route (404).
#[derive(Debug, Clone, Copy)]
struct Change {
    give: bool,
}

impl Change {
    fn membership(verb: &str) -> Option<Self> {
        match verb {
            "add" => Some(Self { give: true }),
            "remove" => Some(Self { give: false }),
            _ => None,
        }
    }

    fn grant(verb: &str) -> Option<Self> {
        match verb {
            "grant" => Some(Self { give: true }),
            "revoke" => Some(Self { give: false }),
            _ => None,
        }
    }
}

fn no_such_route() -> Response {
    no_store(
        (
            StatusCode::NOT_FOUND,
            "404 Not Found\n\nThere is no such page.\n",
        )
            .into_response(),
    )
}

// ---- the rules ----

/// Why a change is refused, in words for the 403 page.
type Refusal = String;

/// Rule 2 and the last part of rule 3: whether `actor` may change `target`'s account.
pub fn may_manage(
    actor: &Authenticated,
    target: &User,
    target_held: &BTreeSet<Permission>,
) -> Result<(), Refusal> {
    if actor.user.is_active && actor.user.is_superuser {
        return Ok(());
    }
    if target.is_superuser {
        return Err("only a superuser can change a superuser's account".to_owned());
    }
    if target.is_staff {
        return Err(if target.id == actor.user.id {
            "only a superuser can change a staff account, your own included".to_owned()
        } else {
            "only a superuser can change another staff account".to_owned()
        });
    }
    let missing = lacking(actor, target_held);
    if !missing.is_empty() {
        return Err(format!(
            "that account holds permissions you do not have ({})",
            missing.join(", ")
        ));
    }
    Ok(())
}

/// The permissions of `wanted` that `actor` does not hold (none for an active superuser).
pub fn lacking(actor: &Authenticated, wanted: &BTreeSet<Permission>) -> Vec<String> {
    wanted
        .iter()
        .filter(|p| !palisade_core::allowed(&actor.user, &actor.held, p))
        .map(ToString::to_string)
        .collect()
}

/// A plain 403 naming the rule that refused.
fn refused(why: &str) -> Response {
    no_store(
        (
            StatusCode::FORBIDDEN,
            [(header::CACHE_CONTROL, "no-store")],
            format!("403 Forbidden\n\nRefused: {why}.\n"),
        )
            .into_response(),
    )
}

fn bad_request(why: &str) -> Response {
    no_store(
        (
            StatusCode::BAD_REQUEST,
            format!("400 Bad Request\n\n{why}\n"),
        )
            .into_response(),
    )
}

fn not_found(what: &str) -> Response {
    no_store(
        (
            StatusCode::NOT_FOUND,
            format!("404 Not Found\n\nThere is no {what} with that number.\n"),
        )
            .into_response(),
    )
}

fn back_to(path: String) -> Response {
    no_store(Redirect::to(&path).into_response())
}

fn actor_name(actor: &Authenticated) -> Option<String> {
    Some(actor.user.username.as_str().to_owned())
}

/// The user with `id` and what they hold, or the 404 to answer.
async fn load_target(
    state: &AppState,
    id: i64,
) -> Result<Result<(User, BTreeSet<Permission>), Response>, AppError> {
    let store = state.store();
    let Some(user) = store
        .get_by_id(UserId::new(id))
        .await
        .map_err(AppError::store)?
    else {
        return Ok(Err(not_found("user")));
    };
    let held = store
        .held_permissions(user.id)
        .await
        .map_err(AppError::store)?;
    Ok(Ok((user, held)))
}

/// [`load_target`] and [`may_manage`]: the account a change may be made to, or the answer.
async fn managed_target(
    state: &AppState,
    actor: &Authenticated,
    id: i64,
) -> Result<Result<User, Response>, AppError> {
    Ok(match load_target(state, id).await? {
        Err(response) => Err(response),
        Ok((user, held)) => match may_manage(actor, &user, &held) {
            Ok(()) => Ok(user),
            Err(why) => Err(refused(&why)),
        },
    })
}

/// When a superuser ends its own account's sessions here, the one it is using stays.
fn keep_mine<'a>(me: &'a Authenticated, user: &User) -> Option<&'a SessionKey> {
    (me.user.id == user.id).then_some(&me.session.key)
}

fn user_path(id: UserId) -> String {
    format!("/admin/users/{id}/")
}

fn group_path(id: GroupId) -> String {
    format!("/admin/groups/{id}/")
}

// ---- pages ----

async fn index(State(state): State<AppState>, me: Authorized<Staff>) -> Result<Response, AppError> {
    let page = state.render(
        "admin_index.html",
        minijinja::context! {
            username => me.auth.user.username.as_str(),
            can_users => me.can("auth.view_user"),
            can_add_user => me.can("auth.add_user"),
            can_groups => me.can("auth.view_group"),
            can_permissions => me.can("auth.view_permission"),
            can_audit => me.can("audit.view_record"),
        },
    )?;
    Ok(no_store(page.into_response()))
}

async fn users(
    State(state): State<AppState>,
    me: Authorized<ViewUser>,
    Query(query): Query<UsersQuery>,
) -> Result<Response, AppError> {
    let search = query
        .q
        .as_deref()
        .map(str::trim)
        .filter(|q| !q.is_empty())
        .map(|q| q.chars().take(150).collect::<String>());
    let page_no = query.page.unwrap_or(1).max(1);
    let found = state
        .store()
        .search_users(&UserQuery {
            search: search.clone(),
            offset: (page_no - 1).saturating_mul(u64::from(USERS_PAGE)),
            limit: USERS_PAGE,
        })
        .await
        .map_err(AppError::store)?;
    let pages = found.total.div_ceil(u64::from(USERS_PAGE)).max(1);
    let rows: Vec<_> = found
        .users
        .iter()
        .map(|u| {
            minijinja::context! {
                id => u.id.get(),
                username => u.username.as_str(),
                email => u.email.as_ref().map(|e| e.as_str().to_owned()),
                is_active => u.is_active,
                is_staff => u.is_staff,
                is_superuser => u.is_superuser,
                last_login => u.last_login.map(when),
            }
        })
        .collect();
    let page = state.render(
        "admin_users.html",
        minijinja::context! {
            users => rows,
            // Encoded here for the page links (the template engine has no URL filter).
            q_param => percent_encoding::utf8_percent_encode(
                search.as_deref().unwrap_or_default(),
                percent_encoding::NON_ALPHANUMERIC,
            )
            .to_string(),
            q => search.unwrap_or_default(),
            total => found.total,
            page => page_no,
            pages => pages,
            prev_page => (page_no > 1).then(|| page_no - 1),
            next_page => (page_no < pages).then(|| page_no + 1),
            can_add => me.can("auth.add_user"),
        },
    )?;
    Ok(no_store(page.into_response()))
}

fn render_user_add(
    state: &AppState,
    me: &Authenticated,
    form: Option<&UserAddForm>,
    errors: &FieldErrors,
) -> Result<Response, AppError> {
    let page = state.render(
        "admin_user_add.html",
        minijinja::context! {
            csrf_token => auth::session_token(&me.session),
            username => form.map(|f| forms::field(&f.username)),
            email => form.map(|f| forms::field(&f.email)),
            is_staff => form.is_some_and(|f| f.is_staff.is_some()),
            is_superuser => form.is_some_and(|f| f.is_superuser.is_some()),
            can_flags => me.user.is_superuser,
            errors => errors.to_value(),
            help_texts => state.password_policy().help_texts(),
        },
    )?;
    Ok(no_store(page.into_response()))
}

async fn user_add_form(
    State(state): State<AppState>,
    me: Authorized<AddUser>,
) -> Result<Response, AppError> {
    render_user_add(&state, &me.auth, None, &FieldErrors::default())
}

async fn user_add(
    State(state): State<AppState>,
    Extension(client): Extension<ClientInfo>,
    me: Authorized<AddUser>,
    CheckedForm(form): CheckedForm<UserAddForm>,
) -> Result<Response, AppError> {
    let (staff, superuser) = (form.is_staff.is_some(), form.is_superuser.is_some());
    // Rule 1, before any work.
    if (staff || superuser) && !me.auth.user.is_superuser {
        return Ok(refused(
            "only a superuser can create a staff or superuser account",
        ));
    }
    let mut errors = FieldErrors::default();
    let username = Username::parse(&forms::field(&form.username))
        .map_err(|e| errors.add("username", e.to_string()))
        .ok();
    let email_raw = forms::field(&form.email);
    let email = if email_raw.is_empty() {
        None
    } else {
        Email::parse(&email_raw)
            .map_err(|e| errors.add("email", e.to_string()))
            .ok()
    };
    if let Some(name) = &username
        && state
            .store()
            .get_by_username(name)
            .await
            .map_err(AppError::store)?
            .is_some()
    {
        errors.add("username", "A user with that username already exists.");
    }
    if form.password1 != form.password2 {
        errors.add("password2", MISMATCH);
    }
    let mut inputs: Vec<String> = vec![forms::field(&form.username)];
    if !email_raw.is_empty() {
        inputs.push(email_raw.clone());
    }
    let Some(outcome) =
        forms::check_and_hash(&state, form.password1.clone(), inputs, errors.is_empty()).await?
    else {
        return Ok(forms::busy());
    };
    let hash = match outcome {
        NewPassword::Hashed(h) => Some(h),
        NewPassword::Accepted => None,
        NewPassword::Refused(violations) => {
            for v in violations {
                errors.add("password1", v);
            }
            None
        }
    };
    let (Some(username), Some(hash)) = (username, hash.filter(|_| errors.is_empty())) else {
        return render_user_add(&state, &me.auth, Some(&form), &errors);
    };
    let mut new = NewUser::new(username, email, hash, auth::now());
    new.is_active = true;
    new.is_staff = staff || superuser;
    new.is_superuser = superuser;
    let user = match state.store().create_user(new).await {
        Ok(user) => user,
        // Taken between the check and the insert.
        Err(StoreError::Conflict) => {
            errors.add("username", "A user with that username already exists.");
            return render_user_add(&state, &me.auth, Some(&form), &errors);
        }
        Err(e) => return Err(AppError::store(e)),
    };
    audit(
        &state,
        "user.create",
        actor_name(&me.auth),
        Some(user.username.as_str().to_owned()),
        serde_json::json!({
            "ip": client.ip.to_string(), "via": "admin",
            "staff": user.is_staff, "superuser": user.is_superuser,
        }),
    )
    .await?;
    Ok(back_to(user_path(user.id)))
}

async fn user_page(
    State(state): State<AppState>,
    me: Authorized<ViewUser>,
    Path(id): Path<i64>,
) -> Result<Response, AppError> {
    let (user, held) = match load_target(&state, id).await? {
        Ok(found) => found,
        Err(response) => return Ok(response),
    };
    let store = state.store();
    let direct = store
        .direct_permissions(user.id)
        .await
        .map_err(AppError::store)?;
    let groups = store
        .groups_of_user(user.id)
        .await
        .map_err(AppError::store)?;
    let all_groups = store.list_groups().await.map_err(AppError::store)?;
    let registry = store.list_permissions().await.map_err(AppError::store)?;
    let sessions = store
        .list_sessions_for_user(user.id)
        .await
        .map_err(AppError::store)?;
    let timeouts = state.session_timeouts();
    let now = auth::now();
    let live = sessions
        .iter()
        .filter(|s| !s.is_expired(now, &timeouts))
        .count();

    let manage = may_manage(&me.auth, &user, &held);
    let can_change = me.can("auth.change_user") && manage.is_ok();
    let member_of: BTreeSet<GroupId> = groups.iter().map(|g| g.id).collect();
    // Offer only what this caller could grant (rule 3); the routes check again.
    let joinable: Vec<String> = if can_change {
        let mut out = Vec::new();
        for g in all_groups.iter().filter(|g| !member_of.contains(&g.id)) {
            let perms = store
                .permissions_of_group(g.id)
                .await
                .map_err(AppError::store)?;
            if lacking(&me.auth, &perms).is_empty() {
                out.push(g.name.to_string());
            }
        }
        out
    } else {
        Vec::new()
    };
    let grantable: Vec<String> = if can_change {
        registry
            .iter()
            .filter(|p| !direct.contains(&p.permission))
            .filter(|p| palisade_core::allowed(&me.auth.user, &me.auth.held, &p.permission))
            .map(|p| p.permission.to_string())
            .collect()
    } else {
        Vec::new()
    };
    let page = state.render(
        "admin_user.html",
        minijinja::context! {
            id => user.id.get(),
            username => user.username.as_str(),
            email => user.email.as_ref().map(|e| e.as_str().to_owned()),
            is_active => user.is_active,
            is_staff => user.is_staff,
            is_superuser => user.is_superuser,
            date_joined => when(user.date_joined),
            last_login => user.last_login.map(when),
            groups => groups.iter().map(|g| g.name.to_string()).collect::<Vec<_>>(),
            direct => direct.iter().map(ToString::to_string).collect::<Vec<_>>(),
            held => held.iter().map(ToString::to_string).collect::<Vec<_>>(),
            sessions => live,
            joinable => joinable,
            grantable => grantable,
            can_change => can_change,
            why_not => manage.err(),
            can_flags => me.auth.user.is_superuser,
            csrf_token => auth::session_token(&me.auth.session),
            help_texts => state.password_policy().help_texts(),
        },
    )?;
    Ok(no_store(page.into_response()))
}

async fn set_active(
    state: &AppState,
    client: &ClientInfo,
    me: &Authenticated,
    id: i64,
    active: bool,
) -> Result<Response, AppError> {
    let user = match managed_target(state, me, id).await? {
        Ok(user) => user,
        Err(response) => return Ok(response),
    };
    if user.is_active == active {
        return Ok(back_to(user_path(user.id)));
    }
    let store = state.store();
    store
        .set_active(user.id, active)
        .await
        .map_err(AppError::store)?;
    // A deactivated account is signed out everywhere, as `palisade user deactivate` does.
    let ended = if active {
        0
    } else {
        store
            .delete_sessions_for_user(user.id, keep_mine(me, &user))
            .await
            .map_err(AppError::store)?
    };
    audit(
        state,
        if active {
            "user.activate"
        } else {
            "user.deactivate"
        },
        actor_name(me),
        Some(user.username.as_str().to_owned()),
        serde_json::json!({ "ip": client.ip.to_string(), "via": "admin", "sessions_ended": ended }),
    )
    .await?;
    Ok(back_to(user_path(user.id)))
}

/// `POST …/activate/` (`ACTIVE`) and `…/deactivate/`.
async fn set_active_route<const ACTIVE: bool>(
    State(state): State<AppState>,
    Extension(client): Extension<ClientInfo>,
    me: Authorized<ChangeUser>,
    Path(id): Path<i64>,
    CheckedForm(_): CheckedForm<ButtonForm>,
) -> Result<Response, AppError> {
    set_active(&state, &client, &me.auth, id, ACTIVE).await
}

async fn flags(
    State(state): State<AppState>,
    Extension(client): Extension<ClientInfo>,
    me: Authorized<StaffSuperuser>,
    Path(id): Path<i64>,
    CheckedForm(form): CheckedForm<FlagsForm>,
) -> Result<Response, AppError> {
    let user = match load_target(&state, id).await? {
        Ok((user, _)) => user,
        Err(response) => return Ok(response),
    };
    let superuser = form.is_superuser.is_some();
    // As Django's createsuperuser: a superuser is staff too.
    let staff = form.is_staff.is_some() || superuser;
    if (user.is_staff, user.is_superuser) == (staff, superuser) {
        return Ok(back_to(user_path(user.id)));
    }
    state
        .store()
        .set_flags(user.id, staff, superuser)
        .await
        .map_err(AppError::store)?;
    audit(
        &state,
        "user.flags",
        actor_name(&me.auth),
        Some(user.username.as_str().to_owned()),
        serde_json::json!({
            "ip": client.ip.to_string(), "via": "admin",
            "staff": staff, "superuser": superuser,
            "was_staff": user.is_staff, "was_superuser": user.is_superuser,
        }),
    )
    .await?;
    Ok(back_to(user_path(user.id)))
}

async fn set_password(
    State(state): State<AppState>,
    Extension(client): Extension<ClientInfo>,
    me: Authorized<ChangeUser>,
    Path(id): Path<i64>,
    CheckedForm(form): CheckedForm<PasswordForm>,
) -> Result<Response, AppError> {
    let user = match managed_target(&state, &me.auth, id).await? {
        Ok(user) => user,
        Err(response) => return Ok(response),
    };
    if form.new_password1 != form.new_password2 {
        return Ok(bad_request(MISMATCH));
    }
    let Some(outcome) = forms::check_and_hash(
        &state,
        form.new_password1.clone(),
        forms::user_inputs(&user),
        true,
    )
    .await?
    else {
        return Ok(forms::busy());
    };
    let hash = match outcome {
        NewPassword::Hashed(h) => h,
        NewPassword::Refused(violations) => {
            return Ok(bad_request(&format!(
                "The password was not set:\n{}",
                violations
                    .iter()
                    .map(|v| format!("- {v}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            )));
        }
        NewPassword::Accepted => {
            return Err(AppError::Internal(
                "password check returned no hash".to_owned(),
            ));
        }
    };
    let store = state.store();
    store
        .set_password_hash(user.id, &hash)
        .await
        .map_err(AppError::store)?;
    // Whoever knew the old password is signed out, as after a reset.
    let ended = store
        .delete_sessions_for_user(user.id, keep_mine(&me.auth, &user))
        .await
        .map_err(AppError::store)?;
    audit(
        &state,
        "user.set_password",
        actor_name(&me.auth),
        Some(user.username.as_str().to_owned()),
        serde_json::json!({ "ip": client.ip.to_string(), "via": "admin", "sessions_ended": ended }),
    )
    .await?;
    Ok(back_to(user_path(user.id)))
}

async fn revoke_sessions(
    State(state): State<AppState>,
    Extension(client): Extension<ClientInfo>,
    me: Authorized<ChangeUser>,
    Path(id): Path<i64>,
    CheckedForm(_): CheckedForm<ButtonForm>,
) -> Result<Response, AppError> {
    let user = match managed_target(&state, &me.auth, id).await? {
        Ok(user) => user,
        Err(response) => return Ok(response),
    };
    let ended = state
        .store()
        .delete_sessions_for_user(user.id, keep_mine(&me.auth, &user))
        .await
        .map_err(AppError::store)?;
    if ended > 0 {
        audit(
            &state,
            "session.revoke",
            actor_name(&me.auth),
            Some(user.username.as_str().to_owned()),
            serde_json::json!({ "ip": client.ip.to_string(), "via": "admin", "sessions_ended": ended }),
        )
        .await?;
    }
    Ok(back_to(user_path(user.id)))
}

/// The group a form names, or the 400 to answer.
async fn named_group(
    state: &AppState,
    name: &str,
) -> Result<Result<palisade_core::Group, Response>, AppError> {
    let Ok(name) = GroupName::parse(name) else {
        return Ok(Err(bad_request("That is not a group name.")));
    };
    Ok(
        match state
            .store()
            .get_group(&name)
            .await
            .map_err(AppError::store)?
        {
            Some(group) => Ok(group),
            None => Err(bad_request(&format!("There is no group named {name}."))),
        },
    )
}

async fn user_group_change(
    State(state): State<AppState>,
    Extension(client): Extension<ClientInfo>,
    me: Authorized<ChangeUser>,
    Path((id, verb)): Path<(i64, String)>,
    CheckedForm(form): CheckedForm<GroupForm>,
) -> Result<Response, AppError> {
    let Some(Change { give: add }) = Change::membership(&verb) else {
        return Ok(no_such_route());
    };
    let (state, client, me) = (&state, &client, &me.auth);
    let group = form.group.as_str();
    let user = match managed_target(state, me, id).await? {
        Ok(user) => user,
        Err(response) => return Ok(response),
    };
    let group = match named_group(state, group).await? {
        Ok(group) => group,
        Err(response) => return Ok(response),
    };
    let store = state.store();
    if add {
        // Rule 3: joining a group gives its permissions, so the caller must hold them all.
        let perms = store
            .permissions_of_group(group.id)
            .await
            .map_err(AppError::store)?;
        let missing = lacking(me, &perms);
        if !missing.is_empty() {
            return Ok(refused(&format!(
                "group {} gives permissions you do not have ({})",
                group.name,
                missing.join(", ")
            )));
        }
    }
    let changed = if add {
        store.add_user_to_group(user.id, group.id).await
    } else {
        store.remove_user_from_group(user.id, group.id).await
    }
    .map_err(AppError::store)?;
    if changed {
        audit(
            state,
            if add {
                "group.add_user"
            } else {
                "group.remove_user"
            },
            actor_name(me),
            Some(group.name.to_string()),
            serde_json::json!({
                "ip": client.ip.to_string(), "via": "admin",
                "group": group.name.as_str(), "user": user.username.as_str(),
            }),
        )
        .await?;
    }
    Ok(back_to(user_path(user.id)))
}

/// The permission a form names, or what is wrong with it (for a 400).
fn named_permission(name: &str) -> Result<Permission, String> {
    Permission::parse(name.trim()).map_err(|e| format!("{name:?}: {e}"))
}

/// Rule 3 for a grant: the caller must hold what it gives; the refusal otherwise.
fn may_grant(me: &Authenticated, permission: &Permission) -> Result<(), Refusal> {
    if palisade_core::allowed(&me.user, &me.held, permission) {
        Ok(())
    } else {
        Err(format!(
            "you can grant only permissions you hold, and you do not hold {permission}"
        ))
    }
}

/// A grant or revoke outcome from the store: `Ok(changed)`, or the 400 for an unregistered
/// permission.
fn grant_outcome(
    result: Result<bool, StoreError>,
    permission: &Permission,
) -> Result<Result<bool, Response>, AppError> {
    match result {
        Ok(changed) => Ok(Ok(changed)),
        Err(StoreError::NotFound) => Ok(Err(bad_request(&format!(
            "There is no permission {permission} (see the permissions list)."
        )))),
        Err(e) => Err(AppError::store(e)),
    }
}

/// Who a grant or revocation is for.
enum Grantee {
    User(User),
    Group(palisade_core::Group),
}

/// Grants (`grant`) or revokes `permission` for `to`, after rule 3 for a grant; audited when
/// something changed; back to the grantee's page.
async fn apply_grant(
    state: &AppState,
    client: &ClientInfo,
    me: &Authenticated,
    to: Grantee,
    permission: &str,
    grant: bool,
) -> Result<Response, AppError> {
    let permission = match named_permission(permission) {
        Ok(p) => p,
        Err(why) => return Ok(bad_request(&why)),
    };
    if grant && let Err(why) = may_grant(me, &permission) {
        return Ok(refused(&why));
    }
    let store = state.store();
    let result = match (&to, grant) {
        (Grantee::User(u), true) => store.grant_to_user(u.id, &permission).await,
        (Grantee::User(u), false) => store.revoke_from_user(u.id, &permission).await,
        (Grantee::Group(g), true) => store.grant_to_group(g.id, &permission).await,
        (Grantee::Group(g), false) => store.revoke_from_group(g.id, &permission).await,
    };
    let changed = match grant_outcome(result, &permission)? {
        Ok(changed) => changed,
        Err(response) => return Ok(response),
    };
    // The same actions and details as the CLI's `perm grant` and `group grant`.
    let (action, target, (kind, name), back) = match &to {
        Grantee::User(u) => (
            if grant { "perm.grant" } else { "perm.revoke" },
            u.username.as_str().to_owned(),
            ("user", u.username.as_str().to_owned()),
            user_path(u.id),
        ),
        Grantee::Group(g) => (
            if grant { "group.grant" } else { "group.revoke" },
            g.name.to_string(),
            ("group", g.name.to_string()),
            group_path(g.id),
        ),
    };
    if changed {
        let mut detail = serde_json::json!({
            "ip": client.ip.to_string(), "via": "admin", "permission": permission.as_str(),
        });
        if let Some(fields) = detail.as_object_mut() {
            fields.insert(kind.to_owned(), name.into());
        }
        audit(state, action, actor_name(me), Some(target), detail).await?;
    }
    Ok(back_to(back))
}

async fn user_permission_change(
    State(state): State<AppState>,
    Extension(client): Extension<ClientInfo>,
    me: Authorized<ChangeUser>,
    Path((id, verb)): Path<(i64, String)>,
    CheckedForm(form): CheckedForm<PermissionForm>,
) -> Result<Response, AppError> {
    let Some(Change { give: grant }) = Change::grant(&verb) else {
        return Ok(no_such_route());
    };
    let (state, client, me) = (&state, &client, &me.auth);
    let permission = form.permission.as_str();
    let user = match managed_target(state, me, id).await? {
        Ok(user) => user,
        Err(response) => return Ok(response),
    };
    apply_grant(state, client, me, Grantee::User(user), permission, grant).await
}

async fn groups(
    State(state): State<AppState>,
    me: Authorized<ViewGroup>,
) -> Result<Response, AppError> {
    let groups = state.store().list_groups().await.map_err(AppError::store)?;
    let rows: Vec<_> = groups
        .iter()
        .map(|g| minijinja::context! { id => g.id.get(), name => g.name.as_str() })
        .collect();
    let page = state.render(
        "admin_groups.html",
        minijinja::context! {
            groups => rows,
            can_add => me.can("auth.add_group"),
            csrf_token => auth::session_token(&me.auth.session),
        },
    )?;
    Ok(no_store(page.into_response()))
}

async fn group_add(
    State(state): State<AppState>,
    Extension(client): Extension<ClientInfo>,
    me: Authorized<AddGroup>,
    CheckedForm(form): CheckedForm<NameForm>,
) -> Result<Response, AppError> {
    let name = match GroupName::parse(&form.name) {
        Ok(name) => name,
        Err(e) => return Ok(bad_request(&format!("That group name is not valid: {e}."))),
    };
    let group = match state.store().create_group(&name).await {
        Ok(group) => group,
        Err(StoreError::Conflict) => {
            return Ok(bad_request(&format!(
                "A group named {name} exists already."
            )));
        }
        Err(e) => return Err(AppError::store(e)),
    };
    audit(
        &state,
        "group.create",
        actor_name(&me.auth),
        Some(group.name.to_string()),
        serde_json::json!({ "ip": client.ip.to_string(), "via": "admin" }),
    )
    .await?;
    Ok(back_to(group_path(group.id)))
}

/// The group with `id`, or the 404 to answer. Groups are few (they are roles, not people),
/// so this reads the list.
async fn group_by_id(
    state: &AppState,
    id: i64,
) -> Result<Result<palisade_core::Group, Response>, AppError> {
    let groups = state.store().list_groups().await.map_err(AppError::store)?;
    Ok(groups
        .into_iter()
        .find(|g| g.id.get() == id)
        .ok_or_else(|| not_found("group")))
}

async fn group_page(
    State(state): State<AppState>,
    me: Authorized<ViewGroup>,
    Path(id): Path<i64>,
) -> Result<Response, AppError> {
    let group = match group_by_id(&state, id).await? {
        Ok(group) => group,
        Err(response) => return Ok(response),
    };
    let store = state.store();
    let perms = store
        .permissions_of_group(group.id)
        .await
        .map_err(AppError::store)?;
    let member_ids = store
        .members_of_group(group.id)
        .await
        .map_err(AppError::store)?;
    let mut members = Vec::new();
    for uid in member_ids.iter().take(GROUP_MEMBERS_SHOWN) {
        if let Some(u) = store.get_by_id(*uid).await.map_err(AppError::store)? {
            members.push(minijinja::context! { id => u.id.get(), username => u.username.as_str() });
        }
    }
    let can_change = me.can("auth.change_group");
    let registry = store.list_permissions().await.map_err(AppError::store)?;
    let grantable: Vec<String> = if can_change {
        registry
            .iter()
            .filter(|p| !perms.contains(&p.permission))
            .filter(|p| palisade_core::allowed(&me.auth.user, &me.auth.held, &p.permission))
            .map(|p| p.permission.to_string())
            .collect()
    } else {
        Vec::new()
    };
    let page = state.render(
        "admin_group.html",
        minijinja::context! {
            id => group.id.get(),
            name => group.name.as_str(),
            permissions => perms.iter().map(ToString::to_string).collect::<Vec<_>>(),
            members => members,
            more_members => member_ids.len().saturating_sub(GROUP_MEMBERS_SHOWN),
            grantable => grantable,
            can_change => can_change,
            can_delete => me.can("auth.delete_group"),
            csrf_token => auth::session_token(&me.auth.session),
        },
    )?;
    Ok(no_store(page.into_response()))
}

async fn group_permission_change(
    State(state): State<AppState>,
    Extension(client): Extension<ClientInfo>,
    me: Authorized<ChangeGroup>,
    Path((id, verb)): Path<(i64, String)>,
    CheckedForm(form): CheckedForm<PermissionForm>,
) -> Result<Response, AppError> {
    let Some(Change { give: grant }) = Change::grant(&verb) else {
        return Ok(no_such_route());
    };
    let (state, client, me) = (&state, &client, &me.auth);
    let permission = form.permission.as_str();
    let group = match group_by_id(state, id).await? {
        Ok(group) => group,
        Err(response) => return Ok(response),
    };
    apply_grant(state, client, me, Grantee::Group(group), permission, grant).await
}

async fn group_delete(
    State(state): State<AppState>,
    Extension(client): Extension<ClientInfo>,
    me: Authorized<DeleteGroup>,
    Path(id): Path<i64>,
    CheckedForm(_): CheckedForm<ButtonForm>,
) -> Result<Response, AppError> {
    let group = match group_by_id(&state, id).await? {
        Ok(group) => group,
        Err(response) => return Ok(response),
    };
    if state
        .store()
        .delete_group(group.id)
        .await
        .map_err(AppError::store)?
    {
        audit(
            &state,
            "group.delete",
            actor_name(&me.auth),
            Some(group.name.to_string()),
            serde_json::json!({ "ip": client.ip.to_string(), "via": "admin" }),
        )
        .await?;
    }
    Ok(back_to("/admin/groups/".to_owned()))
}

async fn permissions(
    State(state): State<AppState>,
    _me: Authorized<ViewPermission>,
) -> Result<Response, AppError> {
    let registry = state
        .store()
        .list_permissions()
        .await
        .map_err(AppError::store)?;
    let rows: Vec<_> = registry
        .iter()
        .map(|p| {
            minijinja::context! {
                name => p.permission.as_str(), description => p.description.as_str(),
            }
        })
        .collect();
    let page = state.render(
        "admin_permissions.html",
        minijinja::context! { permissions => rows },
    )?;
    Ok(no_store(page.into_response()))
}

async fn audit_log(
    State(state): State<AppState>,
    _me: Authorized<ViewAudit>,
    Query(query): Query<AuditQuery>,
) -> Result<Response, AppError> {
    let records = state
        .store()
        .page_desc(query.before, AUDIT_PAGE)
        .await
        .map_err(AppError::store)?;
    let older = (records.len() == AUDIT_PAGE as usize)
        .then(|| records.last().map(|r| r.seq))
        .flatten();
    let rows: Vec<_> = records
        .iter()
        .map(|r| {
            minijinja::context! {
                seq => r.seq,
                at => when(r.event.at),
                actor => r.event.actor.clone(),
                action => r.event.action.as_str(),
                target => r.event.target.clone(),
                detail => if r.event.detail.is_null() {
                    String::new()
                } else {
                    r.event.detail.to_string()
                },
            }
        })
        .collect();
    let page = state.render(
        "admin_audit.html",
        minijinja::context! { records => rows, older => older, newest => query.before.is_none() },
    )?;
    Ok(no_store(page.into_response()))
}

async fn audit_verify(
    State(state): State<AppState>,
    _me: Authorized<ViewAudit>,
) -> Result<Response, AppError> {
    let (ok, message) = match state.store().verify().await {
        Ok(verifier) => (
            true,
            format!(
                "The audit chain is intact: {} records, head hash {}.",
                verifier.checked(),
                hex::encode(verifier.head())
            ),
        ),
        Err(AuditVerifyError::Broken(link)) => (
            false,
            format!(
                "The audit chain is BROKEN at record {}: {}.",
                link.seq, link.kind
            ),
        ),
        Err(AuditVerifyError::Store(e)) => return Err(AppError::store(e)),
    };
    let page = state.render(
        "admin_audit_verify.html",
        minijinja::context! { ok => ok, message => message },
    )?;
    Ok(no_store(page.into_response()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use palisade_core::{CsrfSecret, NewUser, Session, SessionKey, Timestamp, UserId, Username};

    use super::*;

    fn user(id: i64, staff: bool, superuser: bool) -> User {
        let mut new = NewUser::new(
            Username::parse(&format!("u{id}")).unwrap(),
            None,
            String::new(),
            Timestamp::from_unix(0),
        );
        new.is_staff = staff;
        new.is_superuser = superuser;
        new.into_user(UserId::new(id))
    }

    fn perms(names: &[&str]) -> BTreeSet<Permission> {
        names
            .iter()
            .map(|n| Permission::parse(n).unwrap())
            .collect()
    }

    fn actor(u: User, held: &[&str]) -> Authenticated {
        Authenticated {
            session: Session {
                key: SessionKey::from_bytes([7; 32]),
                user_id: u.id,
                created_at: Timestamp::from_unix(0),
                last_seen: Timestamp::from_unix(0),
                ip: None,
                user_agent: None,
                csrf_secret: CsrfSecret::from_bytes([1; 32]),
            },
            user: u,
            held: perms(held),
            groups: Vec::new(),
        }
    }

    #[test]
    fn staff_cannot_manage_superusers_staff_or_itself() {
        let me = actor(
            user(1, true, false),
            &["auth.change_user", "members.view_member"],
        );
        assert!(may_manage(&me, &user(2, true, true), &perms(&[])).is_err());
        assert!(may_manage(&me, &user(3, true, false), &perms(&[])).is_err());
        assert!(may_manage(&me, &me.user, &perms(&[])).is_err());
        assert!(
            may_manage(
                &me,
                &user(4, false, false),
                &perms(&["members.view_member"])
            )
            .is_ok()
        );
        let why =
            may_manage(&me, &user(5, false, false), &perms(&["drop.view_message"])).unwrap_err();
        assert!(why.contains("drop.view_message"), "{why}");
    }

    #[test]
    fn a_superuser_manages_anyone() {
        let root = actor(user(1, true, true), &[]);
        assert!(may_manage(&root, &user(2, true, true), &perms(&["x.y"])).is_ok());
        assert!(may_manage(&root, &root.user, &perms(&[])).is_ok());
        // An inactive superuser holds nothing: it cannot hand on what it no longer has.
        let mut gone = user(3, true, true);
        gone.is_active = false;
        let gone = actor(gone, &[]);
        assert!(may_manage(&gone, &user(4, false, false), &perms(&["x.y"])).is_err());
    }

    #[test]
    fn requirements_need_staff_and_the_permission() {
        let held = perms(&["auth.view_user"]);
        assert!(ViewUser::allows(&user(1, true, false), &held));
        assert!(!ViewUser::allows(&user(1, false, false), &held));
        assert!(!ChangeUser::allows(&user(1, true, false), &held));
        assert!(ChangeUser::allows(&user(1, true, true), &perms(&[])));
        assert!(!StaffSuperuser::allows(&user(1, true, false), &held));
        assert!(StaffSuperuser::allows(&user(1, true, true), &perms(&[])));
    }
}
