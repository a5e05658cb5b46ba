//! An in-process backend for unit tests and experiments: everything is lost when the value is
//! dropped. It obeys the same contract as the SQL backends (the conformance suite runs
//! against it), so tests written with it hold for production.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard};

use palisade_core::audit::AuditRecord;
use palisade_core::token::TokenId;
use palisade_core::{
    AuditEvent, AuditLog, AuthzStore, Email, Group, GroupId, GroupName, KeyStore, MEMBER_PAGE_MAX,
    Member, MemberId, MemberStore, NewMember, NewUser, Permission, PermissionInfo, Session,
    SessionKey, SessionStore, SessionTimeouts, SessionUserStore, StoreError, StoredKey, Timestamp,
    TokenStore, User, UserId, UserPage, UserQuery, UserStore, Username,
};

/// All data behind one lock. A std mutex is enough: no lock is held across an `.await`, and
/// one lock makes every operation trivially atomic (in particular audit appends).
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    users: BTreeMap<UserId, User>,
    /// Last id handed out; ids are never reused, as with SQLite's AUTOINCREMENT.
    last_user_id: i64,
    sessions: HashMap<SessionKey, Session>,
    audit: Vec<AuditRecord>,
    /// Used single-use tokens and when each expires.
    used_tokens: HashMap<TokenId, Timestamp>,
    /// Shared secrets in insertion order, which breaks `created_at` ties in `list_keys`.
    keys: Vec<StoredKey>,
    /// Registered permissions and their descriptions; the map's order is the listing order.
    permissions: BTreeMap<Permission, String>,
    groups: BTreeMap<GroupId, GroupName>,
    /// Last group id handed out; never reused, as with SQLite's AUTOINCREMENT.
    last_group_id: i64,
    /// Memberships and grants as sets of pairs, like the SQL join tables: adding a pair that
    /// is there, or removing one that is not, changes nothing, and `insert`/`remove` say so.
    user_groups: BTreeSet<(UserId, GroupId)>,
    group_permissions: BTreeSet<(GroupId, Permission)>,
    user_permissions: BTreeSet<(UserId, Permission)>,
    /// The members app's rows, keyed (and so listed) by id.
    members: BTreeMap<MemberId, Member>,
    /// Last member id handed out; never reused, as with SQLite's AUTOINCREMENT.
    last_member_id: i64,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> Result<MutexGuard<'_, Inner>, StoreError> {
        // A poisoned lock means another thread panicked mid-update: refuse rather than serve
        // possibly half-changed data.
        self.inner
            .lock()
            .map_err(|_| StoreError::Backend("memory store lock poisoned".into()))
    }

    /// Overwrites the stored audit record with the same `seq`, as is, without re-chaining.
    /// Exists so the conformance suite can tamper with this backend the way someone with
    /// database access could with the others; nothing else should call it.
    #[doc(hidden)]
    pub fn overwrite_audit_record(&self, record: AuditRecord) -> Result<(), StoreError> {
        let mut inner = self.lock()?;
        let slot = inner
            .audit
            .iter_mut()
            .find(|r| r.seq == record.seq)
            .ok_or(StoreError::NotFound)?;
        *slot = record;
        Ok(())
    }
}

fn sorted_oldest_first(mut sessions: Vec<Session>) -> Vec<Session> {
    sessions.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.key.cmp(&b.key)));
    sessions
}

fn clamp(n: u32) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

impl Inner {
    fn user_mut(&mut self, id: UserId) -> Result<&mut User, StoreError> {
        self.users.get_mut(&id).ok_or(StoreError::NotFound)
    }
}

impl UserStore for MemoryStore {
    async fn create_user(&self, new: NewUser) -> Result<User, StoreError> {
        let mut inner = self.lock()?;
        let canonical = new.username.canonical();
        if inner
            .users
            .values()
            .any(|u| u.username.canonical() == canonical)
        {
            return Err(StoreError::Conflict);
        }
        let next = inner
            .last_user_id
            .checked_add(1)
            .ok_or_else(|| StoreError::Backend("user ids exhausted".into()))?;
        inner.last_user_id = next;
        let user = new.into_user(UserId::new(next));
        inner.users.insert(user.id, user.clone());
        Ok(user)
    }

    async fn get_by_id(&self, id: UserId) -> Result<Option<User>, StoreError> {
        Ok(self.lock()?.users.get(&id).cloned())
    }

    async fn get_by_username(&self, username: &Username) -> Result<Option<User>, StoreError> {
        let canonical = username.canonical();
        Ok(self
            .lock()?
            .users
            .values()
            .find(|u| u.username.canonical() == canonical)
            .cloned())
    }

    async fn get_by_unique_email(&self, email: &Email) -> Result<Option<User>, StoreError> {
        let inner = self.lock()?;
        let mut matches = inner.users.values().filter(|u| {
            u.email
                .as_ref()
                .is_some_and(|e| e.canonical() == email.canonical())
        });
        Ok(match (matches.next(), matches.next()) {
            (Some(user), None) => Some(user.clone()),
            _ => None,
        })
    }

    async fn users_with_email(&self, email: &Email) -> Result<Vec<User>, StoreError> {
        // The map is keyed by id, so the matches come out in id order.
        Ok(self
            .lock()?
            .users
            .values()
            .filter(|u| {
                u.email
                    .as_ref()
                    .is_some_and(|e| e.canonical() == email.canonical())
            })
            .cloned()
            .collect())
    }

    async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        Ok(self.lock()?.users.values().cloned().collect())
    }

    async fn search_users(&self, query: &UserQuery) -> Result<UserPage, StoreError> {
        let terms = query.search_terms();
        let inner = self.lock()?;
        // A linear scan and a sort: this backend is for tests, where tables are small.
        let mut matches: Vec<&User> = inner
            .users
            .values()
            .filter(|u| terms.as_ref().is_none_or(|t| t.matches(u)))
            .collect();
        matches.sort_by(|a, b| a.username.canonical().cmp(b.username.canonical()));
        let total = u64::try_from(matches.len()).unwrap_or(u64::MAX);
        let users = matches
            .into_iter()
            .skip(usize::try_from(query.offset).unwrap_or(usize::MAX))
            .take(clamp(query.capped_limit()))
            .cloned()
            .collect();
        Ok(UserPage { users, total })
    }

    async fn set_password_hash(&self, id: UserId, password_hash: &str) -> Result<(), StoreError> {
        self.lock()?.user_mut(id)?.password_hash = password_hash.to_owned();
        Ok(())
    }

    async fn set_active(&self, id: UserId, active: bool) -> Result<(), StoreError> {
        self.lock()?.user_mut(id)?.is_active = active;
        Ok(())
    }

    async fn set_flags(
        &self,
        id: UserId,
        is_staff: bool,
        is_superuser: bool,
    ) -> Result<(), StoreError> {
        let mut inner = self.lock()?;
        let user = inner.user_mut(id)?;
        user.is_staff = is_staff;
        user.is_superuser = is_superuser;
        Ok(())
    }

    async fn set_last_login(&self, id: UserId, at: Timestamp) -> Result<(), StoreError> {
        self.lock()?.user_mut(id)?.last_login = Some(at);
        Ok(())
    }
}

impl TokenStore for MemoryStore {
    async fn consume_token(&self, id: &TokenId, expires_at: Timestamp) -> Result<bool, StoreError> {
        let mut inner = self.lock()?;
        // One lock around test and insert: exactly one caller sees the id as new. A repeat
        // leaves the first record (and its expiry) as it was.
        match inner.used_tokens.entry(*id) {
            std::collections::hash_map::Entry::Occupied(_) => Ok(false),
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(expires_at);
                Ok(true)
            }
        }
    }

    async fn delete_expired_tokens(&self, now: Timestamp) -> Result<u64, StoreError> {
        let mut inner = self.lock()?;
        let before = inner.used_tokens.len();
        inner.used_tokens.retain(|_, expires| *expires >= now);
        Ok(u64::try_from(before.saturating_sub(inner.used_tokens.len())).unwrap_or(u64::MAX))
    }
}

impl Inner {
    fn has_key(&self, purpose: &str, kid: &str) -> bool {
        self.keys
            .iter()
            .any(|k| k.purpose == purpose && k.kid == kid)
    }
}

impl KeyStore for MemoryStore {
    async fn list_keys(&self, purpose: &str) -> Result<Vec<StoredKey>, StoreError> {
        let inner = self.lock()?;
        // Latest insertion first, then a stable sort on time: ties keep that order.
        let mut keys: Vec<StoredKey> = inner
            .keys
            .iter()
            .rev()
            .filter(|k| k.purpose == purpose)
            .cloned()
            .collect();
        keys.sort_by_key(|k| std::cmp::Reverse(k.created_at));
        Ok(keys)
    }

    async fn insert_key(&self, key: StoredKey) -> Result<(), StoreError> {
        let mut inner = self.lock()?;
        if inner.has_key(&key.purpose, &key.kid) {
            return Err(StoreError::Conflict);
        }
        inner.keys.push(key);
        Ok(())
    }

    async fn insert_first_key(&self, key: StoredKey) -> Result<bool, StoreError> {
        // Test and insert under one lock: of concurrent first starts, one key goes in.
        let mut inner = self.lock()?;
        if inner
            .keys
            .iter()
            .any(|k| k.purpose == key.purpose && k.retired_at.is_none())
        {
            return Ok(false);
        }
        if inner.has_key(&key.purpose, &key.kid) {
            return Err(StoreError::Conflict);
        }
        inner.keys.push(key);
        Ok(true)
    }

    async fn retire_key(&self, purpose: &str, kid: &str, at: Timestamp) -> Result<(), StoreError> {
        let mut inner = self.lock()?;
        let key = inner
            .keys
            .iter_mut()
            .find(|k| k.purpose == purpose && k.kid == kid && k.retired_at.is_none())
            .ok_or(StoreError::NotFound)?;
        key.retired_at = Some(at);
        Ok(())
    }
}

impl Inner {
    /// `NotFound` unless `user` exists: what the SQL backends' foreign keys enforce.
    fn require_user(&self, user: UserId) -> Result<(), StoreError> {
        if self.users.contains_key(&user) {
            Ok(())
        } else {
            Err(StoreError::NotFound)
        }
    }

    fn require_group(&self, group: GroupId) -> Result<(), StoreError> {
        if self.groups.contains_key(&group) {
            Ok(())
        } else {
            Err(StoreError::NotFound)
        }
    }

    fn require_permission(&self, permission: &Permission) -> Result<(), StoreError> {
        if self.permissions.contains_key(permission) {
            Ok(())
        } else {
            Err(StoreError::NotFound)
        }
    }

    fn group(&self, id: GroupId) -> Option<Group> {
        self.groups.get(&id).map(|name| Group {
            id,
            name: name.clone(),
        })
    }
}

fn by_name(mut groups: Vec<Group>) -> Vec<Group> {
    groups.sort_by(|a, b| a.name.cmp(&b.name));
    groups
}

impl AuthzStore for MemoryStore {
    async fn create_permission(
        &self,
        permission: &Permission,
        description: &str,
    ) -> Result<(), StoreError> {
        let mut inner = self.lock()?;
        match inner.permissions.entry(permission.clone()) {
            std::collections::btree_map::Entry::Occupied(_) => Err(StoreError::Conflict),
            std::collections::btree_map::Entry::Vacant(slot) => {
                slot.insert(description.to_owned());
                Ok(())
            }
        }
    }

    async fn ensure_permissions(&self, permissions: &[PermissionInfo]) -> Result<u64, StoreError> {
        let mut inner = self.lock()?;
        let mut added: u64 = 0;
        for info in permissions {
            // The first description wins, for a repeat within the slice as for a stored one.
            if let std::collections::btree_map::Entry::Vacant(slot) =
                inner.permissions.entry(info.permission.clone())
            {
                slot.insert(info.description.clone());
                added = added.saturating_add(1);
            }
        }
        Ok(added)
    }

    async fn list_permissions(&self) -> Result<Vec<PermissionInfo>, StoreError> {
        Ok(self
            .lock()?
            .permissions
            .iter()
            .map(|(permission, description)| PermissionInfo {
                permission: permission.clone(),
                description: description.clone(),
            })
            .collect())
    }

    async fn create_group(&self, name: &GroupName) -> Result<Group, StoreError> {
        let mut inner = self.lock()?;
        if inner.groups.values().any(|n| n == name) {
            return Err(StoreError::Conflict);
        }
        let next = inner
            .last_group_id
            .checked_add(1)
            .ok_or_else(|| StoreError::Backend("group ids exhausted".into()))?;
        inner.last_group_id = next;
        let id = GroupId::new(next);
        inner.groups.insert(id, name.clone());
        Ok(Group {
            id,
            name: name.clone(),
        })
    }

    async fn get_group(&self, name: &GroupName) -> Result<Option<Group>, StoreError> {
        Ok(self
            .lock()?
            .groups
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(&id, n)| Group {
                id,
                name: n.clone(),
            }))
    }

    async fn list_groups(&self) -> Result<Vec<Group>, StoreError> {
        let inner = self.lock()?;
        Ok(by_name(
            inner
                .groups
                .iter()
                .map(|(&id, name)| Group {
                    id,
                    name: name.clone(),
                })
                .collect(),
        ))
    }

    async fn delete_group(&self, group: GroupId) -> Result<bool, StoreError> {
        let mut inner = self.lock()?;
        if inner.groups.remove(&group).is_none() {
            return Ok(false);
        }
        // The cascade the SQL schema does with ON DELETE CASCADE.
        inner.user_groups.retain(|(_, g)| *g != group);
        inner.group_permissions.retain(|(g, _)| *g != group);
        Ok(true)
    }

    async fn add_user_to_group(&self, user: UserId, group: GroupId) -> Result<bool, StoreError> {
        let mut inner = self.lock()?;
        inner.require_user(user)?;
        inner.require_group(group)?;
        Ok(inner.user_groups.insert((user, group)))
    }

    async fn remove_user_from_group(
        &self,
        user: UserId,
        group: GroupId,
    ) -> Result<bool, StoreError> {
        let mut inner = self.lock()?;
        inner.require_user(user)?;
        inner.require_group(group)?;
        Ok(inner.user_groups.remove(&(user, group)))
    }

    async fn grant_to_group(
        &self,
        group: GroupId,
        permission: &Permission,
    ) -> Result<bool, StoreError> {
        let mut inner = self.lock()?;
        inner.require_group(group)?;
        inner.require_permission(permission)?;
        Ok(inner.group_permissions.insert((group, permission.clone())))
    }

    async fn revoke_from_group(
        &self,
        group: GroupId,
        permission: &Permission,
    ) -> Result<bool, StoreError> {
        let mut inner = self.lock()?;
        inner.require_group(group)?;
        inner.require_permission(permission)?;
        Ok(inner.group_permissions.remove(&(group, permission.clone())))
    }

    async fn grant_to_user(
        &self,
        user: UserId,
        permission: &Permission,
    ) -> Result<bool, StoreError> {
        let mut inner = self.lock()?;
        inner.require_user(user)?;
        inner.require_permission(permission)?;
        Ok(inner.user_permissions.insert((user, permission.clone())))
    }

    async fn revoke_from_user(
        &self,
        user: UserId,
        permission: &Permission,
    ) -> Result<bool, StoreError> {
        let mut inner = self.lock()?;
        inner.require_user(user)?;
        inner.require_permission(permission)?;
        Ok(inner.user_permissions.remove(&(user, permission.clone())))
    }

    async fn groups_of_user(&self, user: UserId) -> Result<Vec<Group>, StoreError> {
        let inner = self.lock()?;
        Ok(by_name(
            inner
                .user_groups
                .iter()
                .filter(|(u, _)| *u == user)
                .filter_map(|&(_, g)| inner.group(g))
                .collect(),
        ))
    }

    async fn members_of_group(&self, group: GroupId) -> Result<Vec<UserId>, StoreError> {
        // Pairs sort by user first, so a scan yields members in id order.
        Ok(self
            .lock()?
            .user_groups
            .iter()
            .filter(|(_, g)| *g == group)
            .map(|&(u, _)| u)
            .collect())
    }

    async fn permissions_of_group(
        &self,
        group: GroupId,
    ) -> Result<BTreeSet<Permission>, StoreError> {
        Ok(self
            .lock()?
            .group_permissions
            .iter()
            .filter(|(g, _)| *g == group)
            .map(|(_, p)| p.clone())
            .collect())
    }

    async fn direct_permissions(&self, user: UserId) -> Result<BTreeSet<Permission>, StoreError> {
        Ok(self
            .lock()?
            .user_permissions
            .iter()
            .filter(|(u, _)| *u == user)
            .map(|(_, p)| p.clone())
            .collect())
    }

    async fn held_permissions(&self, user: UserId) -> Result<BTreeSet<Permission>, StoreError> {
        let inner = self.lock()?;
        let mut held: BTreeSet<Permission> = inner
            .user_permissions
            .iter()
            .filter(|(u, _)| *u == user)
            .map(|(_, p)| p.clone())
            .collect();
        for &(_, group) in inner.user_groups.iter().filter(|(u, _)| *u == user) {
            held.extend(
                inner
                    .group_permissions
                    .iter()
                    .filter(|(g, _)| *g == group)
                    .map(|(_, p)| p.clone()),
            );
        }
        Ok(held)
    }
}

impl MemberStore for MemoryStore {
    async fn add_member(&self, new: NewMember) -> Result<Member, StoreError> {
        let mut inner = self.lock()?;
        if let Some(user) = new.added_by {
            inner.require_user(user)?;
        }
        let next = inner
            .last_member_id
            .checked_add(1)
            .ok_or_else(|| StoreError::Backend("member ids exhausted".into()))?;
        inner.last_member_id = next;
        let member = new.into_member(MemberId::new(next));
        inner.members.insert(member.id, member.clone());
        Ok(member)
    }

    async fn get_member(&self, id: MemberId) -> Result<Option<Member>, StoreError> {
        Ok(self.lock()?.members.get(&id).cloned())
    }

    async fn list_members(
        &self,
        after: Option<MemberId>,
        limit: u32,
    ) -> Result<Vec<Member>, StoreError> {
        let inner = self.lock()?;
        let start = match after {
            Some(id) => Bound::Excluded(id),
            None => Bound::Unbounded,
        };
        Ok(inner
            .members
            .range((start, Bound::Unbounded))
            .take(clamp(limit.min(MEMBER_PAGE_MAX)))
            .map(|(_, m)| m.clone())
            .collect())
    }

    async fn count_members(&self) -> Result<u64, StoreError> {
        Ok(u64::try_from(self.lock()?.members.len()).unwrap_or(u64::MAX))
    }

    async fn approve_member(
        &self,
        id: MemberId,
        by: UserId,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut inner = self.lock()?;
        // The same order as the SQL backend: an existing approval wins before the approver
        // is checked (SQLite's UPDATE matches no row, so no foreign key is tested).
        match inner.members.get(&id) {
            None => return Err(StoreError::NotFound),
            Some(member) if member.approved => return Ok(false),
            Some(_) => {}
        }
        inner.require_user(by)?;
        let member = inner.members.get_mut(&id).ok_or(StoreError::NotFound)?;
        member.approved = true;
        member.approved_by = Some(by);
        member.approved_at = Some(at);
        Ok(true)
    }

    async fn delete_member(&self, id: MemberId) -> Result<bool, StoreError> {
        Ok(self.lock()?.members.remove(&id).is_some())
    }
}

// Two lookups under two short locks are as cheap as one here.
impl SessionUserStore for MemoryStore {}

impl SessionStore for MemoryStore {
    async fn create_session(&self, session: Session) -> Result<(), StoreError> {
        let mut inner = self.lock()?;
        if !inner.users.contains_key(&session.user_id) {
            return Err(StoreError::NotFound);
        }
        if inner.sessions.contains_key(&session.key) {
            return Err(StoreError::Conflict);
        }
        inner.sessions.insert(session.key, session);
        Ok(())
    }

    async fn get_session(&self, key: &SessionKey) -> Result<Option<Session>, StoreError> {
        Ok(self.lock()?.sessions.get(key).cloned())
    }

    async fn touch_session(
        &self,
        key: &SessionKey,
        last_seen: Timestamp,
    ) -> Result<(), StoreError> {
        let mut inner = self.lock()?;
        let session = inner.sessions.get_mut(key).ok_or(StoreError::NotFound)?;
        // Concurrent requests may finish out of order; last_seen never moves back.
        session.last_seen = session.last_seen.max(last_seen);
        Ok(())
    }

    async fn delete_session(&self, key: &SessionKey) -> Result<bool, StoreError> {
        Ok(self.lock()?.sessions.remove(key).is_some())
    }

    async fn delete_sessions_for_user(
        &self,
        user: UserId,
        except: Option<&SessionKey>,
    ) -> Result<u64, StoreError> {
        let mut inner = self.lock()?;
        let before = inner.sessions.len();
        inner
            .sessions
            .retain(|key, s| s.user_id != user || Some(key) == except);
        Ok(u64::try_from(before.saturating_sub(inner.sessions.len())).unwrap_or(u64::MAX))
    }

    async fn list_sessions_for_user(&self, user: UserId) -> Result<Vec<Session>, StoreError> {
        let inner = self.lock()?;
        Ok(sorted_oldest_first(
            inner
                .sessions
                .values()
                .filter(|s| s.user_id == user)
                .cloned()
                .collect(),
        ))
    }

    async fn list_all_sessions(&self) -> Result<Vec<Session>, StoreError> {
        Ok(sorted_oldest_first(
            self.lock()?.sessions.values().cloned().collect(),
        ))
    }

    async fn delete_expired_sessions(
        &self,
        now: Timestamp,
        timeouts: &SessionTimeouts,
    ) -> Result<u64, StoreError> {
        let mut inner = self.lock()?;
        let before = inner.sessions.len();
        inner.sessions.retain(|_, s| !s.is_expired(now, timeouts));
        Ok(u64::try_from(before.saturating_sub(inner.sessions.len())).unwrap_or(u64::MAX))
    }
}

impl AuditLog for MemoryStore {
    async fn append(&self, event: AuditEvent) -> Result<AuditRecord, StoreError> {
        let mut inner = self.lock()?;
        let last = inner.audit.last().map(|r| (r.seq, r.hash));
        let record = AuditRecord::next_after(last, event);
        inner.audit.push(record.clone());
        Ok(record)
    }

    async fn tail(&self, n: u32) -> Result<Vec<AuditRecord>, StoreError> {
        let inner = self.lock()?;
        let skip = inner.audit.len().saturating_sub(clamp(n));
        Ok(inner.audit.iter().skip(skip).cloned().collect())
    }

    async fn page(&self, after_seq: i64, limit: u32) -> Result<Vec<AuditRecord>, StoreError> {
        let inner = self.lock()?;
        Ok(inner
            .audit
            .iter()
            .filter(|r| r.seq > after_seq)
            .take(clamp(limit))
            .cloned()
            .collect())
    }

    async fn page_desc(
        &self,
        before_seq: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let inner = self.lock()?;
        Ok(inner
            .audit
            .iter()
            .rev()
            .filter(|r| before_seq.is_none_or(|before| r.seq < before))
            .take(clamp(limit))
            .cloned()
            .collect())
    }

    async fn count(&self) -> Result<u64, StoreError> {
        Ok(u64::try_from(self.lock()?.audit.len()).unwrap_or(u64::MAX))
    }
}
