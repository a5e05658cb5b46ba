//! Authorization on the route, never only in the template: Django's `@login_required`,
//! `@permission_required` and `@user_passes_test` as one extractor, [`Authorized<R>`].
//!
//! A handler that takes `Authorized<R>` runs only for a signed-in user who meets the
//! requirement `R`: not signed in → 303 to the login page with `next` (from
//! [`Authenticated`]); signed in without the right → a plain 403 page naming what is
//! missing. The user's permissions are read fresh from the store on every request, in the
//! same query as the session (direct grants and every group's), so a grant or a revocation bites on the very
//! next request, and they come with the extractor so the page can ask [`Authorized::can`]
//! to hide what the user may not use — the route still refuses it.
//!
//! A requirement is a type: [`permission_required!`] makes one that needs every permission
//! it lists, [`user_passes_test!`] one that is a predicate on the account, and [`Staff`] is
//! the `user_passes_test(is_staff)` of the admin console. The
//! decision itself is [`palisade_core::allowed`]: an active superuser has every permission,
//! everyone else what they were granted.

use std::collections::BTreeSet;
use std::marker::PhantomData;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use palisade_core::{AccessScope, Permission, User, allowed};

use crate::app::AppState;
use crate::auth::{self, Authenticated};

/// What a route asks of the signed-in user.
pub trait Requirement: Send + Sync + 'static {
    /// What the 403 page says is missing, in words.
    const NEEDS: &'static str;

    /// Which of the user's permissions are read with the session: the route's own and those
    /// its page asks [`Authorized::can`] about. An app's scope keeps a user who holds
    /// hundreds of permissions as cheap as one who holds one.
    const SCOPE: AccessScope<'static> = AccessScope::Full;

    fn allows(user: &User, held: &BTreeSet<Permission>) -> bool;
}

/// Whether `user` holds `permission` (by name) under the one rule.
pub fn has(user: &User, held: &BTreeSet<Permission>, permission: &str) -> bool {
    Permission::parse(permission).is_ok_and(|p| allowed(user, held, &p))
}

/// Defines a [`Requirement`] type that needs every permission listed. With `in "app"`, only
/// that app's permissions are read (every one listed must be of that app, and so must those
/// the page asks about).
#[macro_export]
macro_rules! permission_required {
    ($(#[$doc:meta])* $name:ident, $($perm:literal),+ $(,)?) => {
        $crate::permission_required!(
            @define $(#[$doc])* $name, palisade_core::AccessScope::Full, $($perm),+
        );
    };
    ($(#[$doc:meta])* $name:ident in $app:literal, $($perm:literal),+ $(,)?) => {
        $crate::permission_required!(
            @define $(#[$doc])* $name, palisade_core::AccessScope::App($app), $($perm),+
        );
    };
    (@define $(#[$doc:meta])* $name:ident, $scope:expr, $($perm:literal),+) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name;

        impl $crate::guard::Requirement for $name {
            const NEEDS: &'static str = concat!("the permission ", $($perm, " "),+);
            const SCOPE: palisade_core::AccessScope<'static> = $scope;

            fn allows(
                user: &palisade_core::User,
                held: &std::collections::BTreeSet<palisade_core::Permission>,
            ) -> bool {
                [$($perm),+].iter().all(|p| $crate::guard::has(user, held, p))
            }
        }
    };
}

/// Defines a [`Requirement`] that is a predicate on the user, as Django's
/// `user_passes_test`: `user_passes_test!(Name, "what the 403 page names", |user| …)`. The
/// predicate sees the account (already known active and signed in), not its permissions; an
/// inactive account never passes.
#[macro_export]
macro_rules! user_passes_test {
    ($(#[$doc:meta])* $name:ident, $needs:literal, |$user:ident| $test:expr) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name;

        impl $crate::guard::Requirement for $name {
            const NEEDS: &'static str = $needs;
            const SCOPE: palisade_core::AccessScope<'static> = palisade_core::AccessScope::Session;

            fn allows(
                $user: &palisade_core::User,
                _held: &std::collections::BTreeSet<palisade_core::Permission>,
            ) -> bool {
                $user.is_active && $test
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

/// Any signed-in user, with every permission and group read (the profile page).
#[derive(Debug)]
pub struct SignedIn;

impl Requirement for SignedIn {
    const NEEDS: &'static str = "a signed-in account";

    fn allows(_user: &User, _held: &BTreeSet<Permission>) -> bool {
        true
    }
}

/// A signed-in request whose user meets `R`, with the permissions they hold.
#[derive(Debug)]
pub struct Authorized<R> {
    /// The signed-in user, with what they hold (`auth.held`).
    pub auth: Authenticated,
    requirement: PhantomData<R>,
}

impl<R: Requirement> Authorized<R> {
    /// Whether the user may also do what `permission` names (for showing a button). A
    /// permission outside the route's [`Requirement::SCOPE`] was not read, so the answer is
    /// no, and the mistake is logged (the tests of the page show it as a missing button).
    pub fn can(&self, permission: &str) -> bool {
        match Permission::parse(permission) {
            Ok(p) if R::SCOPE.covers(&p) => allowed(&self.auth.user, &self.auth.held, &p),
            _ => {
                tracing::error!(
                    permission,
                    "asked about a permission outside the route's scope"
                );
                false
            }
        }
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
        let auth = auth::authenticate(parts, state, R::SCOPE)
            .await
            .map_err(IntoResponse::into_response)?;
        // `held` was read with the session, fresh on this request (see `auth::resolve`).
        if !R::allows(&auth.user, &auth.held) {
            return Err(forbidden(R::NEEDS));
        }
        Ok(Self {
            auth,
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

    crate::permission_required!(
        /// Test requirement, scoped to its app.
        ViewInMembers in "members",
        "members.view_member"
    );

    fn authorized<R>(user: User, held: BTreeSet<Permission>) -> Authorized<R> {
        let session = palisade_core::Session {
            key: palisade_core::SessionKey::from_bytes([1; 32]),
            user_id: user.id,
            created_at: Timestamp::from_unix(0),
            last_seen: Timestamp::from_unix(0),
            ip: None,
            user_agent: None,
            csrf_secret: palisade_core::CsrfSecret::from_bytes([2; 32]),
        };
        Authorized {
            auth: Authenticated {
                user,
                session,
                held,
                groups: Vec::new(),
            },
            requirement: PhantomData,
        }
    }

    #[test]
    fn can_answers_within_the_scope_only() {
        assert_eq!(
            <ViewInMembers as Requirement>::SCOPE,
            AccessScope::App("members")
        );
        assert_eq!(<ApproveAndView as Requirement>::SCOPE, AccessScope::Full);
        let me = authorized::<ViewInMembers>(
            user(true, false, false),
            held(&["members.view_member", "drop.view_message"]),
        );
        assert!(me.can("members.view_member"));
        assert!(!me.can("members.delete_member"));
        // Outside the scope nothing was read, so no, even when the set happens to hold it.
        assert!(!me.can("drop.view_message"));
        let root = authorized::<ViewInMembers>(user(true, true, true), held(&[]));
        assert!(root.can("members.delete_member"));
        assert!(!root.can("drop.view_message"));
        let full =
            authorized::<ApproveAndView>(user(true, false, false), held(&["drop.view_message"]));
        assert!(full.can("drop.view_message"));
    }

    crate::user_passes_test!(
        /// Test predicate: a user with an e-mail address.
        HasEmail,
        "an e-mail address on the account",
        |user| user.email.is_some()
    );

    #[test]
    fn a_predicate_requirement_tests_the_user() {
        let with = user(true, false, false);
        let mut without = user(true, false, false);
        without.email = None;
        let mut inactive = user(false, true, true);
        inactive.email = with.email.clone();
        assert!(HasEmail::allows(&with, &held(&[])));
        assert!(!HasEmail::allows(&without, &held(&["members.view_member"])));
        assert!(!HasEmail::allows(&inactive, &held(&[])));
        assert_eq!(<HasEmail as Requirement>::SCOPE, AccessScope::Session);
        assert!(HasEmail::NEEDS.contains("e-mail"));
    }

    #[test]
    fn staff_is_a_predicate_on_the_user() {
        assert!(Staff::allows(&user(true, false, true), &held(&[])));
        assert!(!Staff::allows(&user(true, true, false), &held(&[])));
        assert!(!Staff::allows(&user(false, false, true), &held(&[])));
    }
}
