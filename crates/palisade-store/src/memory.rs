//! An in-process backend for unit tests and experiments: everything is lost when the value is
//! dropped. It obeys the same contract as the SQL backends (the conformance suite runs
//! against it), so tests written with it hold for production.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use palisade_core::audit::AuditRecord;
use palisade_core::token::TokenId;
use palisade_core::{
    AuditEvent, AuditLog, Email, KeyStore, NewUser, Session, SessionKey, SessionStore,
    SessionTimeouts, SessionUserStore, StoreError, StoredKey, Timestamp, TokenStore, User, UserId,
    UserStore, Username,
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

    async fn count(&self) -> Result<u64, StoreError> {
        Ok(u64::try_from(self.lock()?.audit.len()).unwrap_or(u64::MAX))
    }
}
