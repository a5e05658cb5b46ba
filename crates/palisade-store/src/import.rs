//! What a bulk import (`palisade import django`) hands the store: accounts with their group
//! memberships and direct grants, the groups with their permissions, and the permissions to
//! register. The caller has checked every reference already; the store writes the lot in one
//! transaction ([`SqliteStore::import_batch`](crate::SqliteStore::import_batch)) so a failed
//! import leaves nothing behind.

use palisade_core::{GroupName, NewUser, Permission, PermissionInfo, Timestamp};

/// One imported account.
#[derive(Debug, Clone)]
pub struct ImportedUser {
    pub user: NewUser,
    /// Kept from the old system (a new account would have none).
    pub last_login: Option<Timestamp>,
    /// Groups the account joins: each is in [`ImportBatch::groups`] or exists already.
    pub groups: Vec<GroupName>,
    /// Direct grants: each is in [`ImportBatch::permissions`] or registered already.
    pub permissions: Vec<Permission>,
}

impl ImportedUser {
    /// An account with no memberships and no grants.
    pub fn new(user: NewUser, last_login: Option<Timestamp>) -> Self {
        Self {
            user,
            last_login,
            groups: Vec::new(),
            permissions: Vec::new(),
        }
    }
}

/// One imported group. A group of that name that exists already is reused: it keeps what
/// it held and gains `permissions` (an import adds, it never takes away).
#[derive(Debug, Clone)]
pub struct ImportedGroup {
    pub name: GroupName,
    /// Each is in [`ImportBatch::permissions`] or registered already.
    pub permissions: Vec<Permission>,
}

/// Everything one import writes.
#[derive(Debug, Clone, Default)]
pub struct ImportBatch {
    /// Registered when missing; a registered permission keeps its description.
    pub permissions: Vec<PermissionInfo>,
    pub groups: Vec<ImportedGroup>,
    pub users: Vec<ImportedUser>,
}

/// What an import changed, counted by the store (so a group or grant another process
/// added in the meantime is not counted twice).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportCounts {
    pub users: u64,
    pub groups_created: u64,
    /// Groups of the batch that existed already and were reused.
    pub groups_existing: u64,
    pub permissions_created: u64,
    pub memberships: u64,
    /// Permissions granted to groups that did not hold them yet.
    pub group_grants: u64,
    /// Direct grants to the imported users.
    pub user_grants: u64,
}
