//! Authorization on the route, never only in the template: Django's `@login_required`,
//! `@permission_required` and `@user_passes_test` as one extractor, [`Authorized<R>`].
//!
//! A handler that takes `Authorized<R>` runs only for a signed-in user who meets the
//! requirement `R`: not signed in → 303 to the login page with `next` (from
//! [`Authenticated`]); signed in without the right → a plain 403 page naming what is
//! missing. The user's permissions are read fresh from the store on every request (one
//! query: direct grants and every group's), so a grant or a revocation bites on the very
//! next request, and they come with the extractor so the page can ask [`Authorized::can`]
//! to hide what the user may not use — the route still refuses it.
//!
//! A requirement is a type: [`permission_required!`] makes one that needs every permission
//! it lists, and [`Staff`] is the `user_passes_test(is_staff)` of the admin console. The
//! decision itself is [`palisade_core::allowed`]: an active superuser has every permission,
//! everyone else what they were granted.

use std::collections::BTreeSet;
use std::marker::PhantomData;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use palisade_core::{AuthzStore, Permission, User, allowed};

use crate::app::AppState;
use crate::auth::Authenticated;
use crate::error::AppError;

/// What a route asks of the signed-in user.
pub trait Requirement: Send + Sync + 'static {
    /// What the 403 page says is missing, in words.
    const NEEDS: &'static str;

    fn allows(user: &User, held: &BTreeSet<Permission>) -> bool;
}

/// Whether `user` holds `permission` (by name) under the one rule.
pub fn has(user: &User, held: &BTreeSet<Permission>, permission: &str) -> bool {
    Permission::parse(permission).is_ok_and(|p| allowed(user, held, &p))
}

/// Defines a [`Requirement`] type that needs every permission listed.
#[macro_export]
macro_rules! permission_required {
    ($(#[$doc:meta])* $name:ident, $($perm:literal),+ $(,)?) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name;

        impl $crate::guard::Requirement for $name {
            const NEEDS: &'static str = concat!("the permission ", $($perm, " "),+);

            fn allows(
                user: &palisade_core::User,
                held: &std::collections::BTreeSet<palisade_core::Permission>,
            ) -> bool {
                [$($perm),+].iter().all(|p| $crate::guard::has(user, held, p))
            }
        }
    };
}

/// Staff only (the admin console), as Django's `staff_member_required`.
#[derive(Debug)]
pub struct Staff;

impl Requirement for Staff {
    const NEEDS: &'static str = "staff status";

    fn allows(user: &User, _held: &BTreeSet<Permission>) -> bool {
        user.is_active && user.is_staff
    }
}

/// A signed-in request whose user meets `R`, with the permissions they hold.
#[derive(Debug)]
pub struct Authorized<R> {
    pub auth: Authenticated,
    pub held: BTreeSet<Permission>,
    requirement: PhantomData<R>,
}

impl<R> Authorized<R> {
    /// Whether the user may also do what `permission` names (for showing a button).
    pub fn can(&self, permission: &str) -> bool {
        has(&self.auth.user, &self.held, permission)
    }
}

/// The 403 page: what is missing, in plain words.
pub fn forbidden(needs: &str) -> Response {
    (
        StatusCode::FORBIDDEN,
        [(header::CACHE_CONTROL, "no-store")],
        format!(
            "403 Forbidden\n\nYou are signed in, but this page needs {}, which your account \
             does not have. Ask an administrator if you should have it.\n",
            needs.trim_end()
        ),
    )
        .into_response()
}

impl<R: Requirement> FromRequestParts<AppState> for Authorized<R> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let auth = Authenticated::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let held = state
            .store()
            .held_permissions(auth.user.id)
            .await
            .map_err(|e| AppError::store(e).into_response())?;
        if !R::allows(&auth.user, &held) {
            return Err(forbidden(R::NEEDS));
        }
        Ok(Self {
            auth,
            held,
            requirement: PhantomData,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use palisade_core::{Email, NewUser, Timestamp, UserId, Username};

    use super::*;

    crate::permission_required!(
        /// Test requirement.
        ApproveAndView,
        "members.approve_member",
        "members.view_member"
    );

    fn user(active: bool, superuser: bool, staff: bool) -> User {
        let mut new = NewUser::new(
            Username::parse("u").unwrap(),
            Some(Email::parse("u@example.com").unwrap()),
            String::new(),
            Timestamp::from_unix(0),
        );
        new.is_active = active;
        new.is_superuser = superuser;
        new.is_staff = staff;
        new.into_user(UserId::new(1))
    }

    fn held(perms: &[&str]) -> BTreeSet<Permission> {
        perms
            .iter()
            .map(|p| Permission::parse(p).unwrap())
            .collect()
    }

    #[test]
    fn a_requirement_needs_every_permission_it_names() {
        let both = held(&["members.approve_member", "members.view_member"]);
        let one = held(&["members.approve_member"]);
        assert!(ApproveAndView::allows(&user(true, false, false), &both));
        assert!(!ApproveAndView::allows(&user(true, false, false), &one));
        assert!(ApproveAndView::allows(&user(true, true, false), &held(&[])));
        assert!(!ApproveAndView::allows(&user(false, true, false), &both));
        assert!(ApproveAndView::NEEDS.contains("members.view_member"));
    }

    #[test]
    fn staff_is_a_predicate_on_the_user() {
        assert!(Staff::allows(&user(true, false, true), &held(&[])));
        assert!(!Staff::allows(&user(true, true, false), &held(&[])));
        assert!(!Staff::allows(&user(false, false, true), &held(&[])));
    }
}
