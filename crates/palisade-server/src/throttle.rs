//! Login throttling that slows guessing without handing attackers a lockout button.
//!
//! A hard per-account lockout ("5 failures and the account is locked") lets anyone lock any
//! user out by typing wrong passwords at their username. So the limits are keyed so that an
//! attacker mostly throttles themselves (the approach OWASP's Authentication Cheat Sheet and
//! django-axes' `username + ip` mode recommend):
//!
//! - **per IP**: [`IP_LIMIT`] failures per window from one address, whatever the accounts
//!   (stops one machine spraying many accounts); 429 until the window ends.
//! - **per (account, IP)**: [`PAIR_LIMIT`] failures per window for one account from one
//!   address; 429 until the window ends. The account's owner, on another address, is not
//!   affected.
//! - **per account, soft**: after [`ACCOUNT_SOFT_LIMIT`] failures per window from all
//!   addresses together (a distributed attack), attempts on that account are spaced at least
//!   [`ACCOUNT_SPACING`] apart: a short `Retry-After`, never a lock. A botnet gets one guess
//!   per few seconds per account; the owner waits a few seconds at worst.
//!
//! A successful login clears its (account, IP) counter. Counters live in memory in bounded
//! maps (oldest windows evicted first), so a flood of random usernames cannot grow memory
//! without limit; losing them on restart only forgives some failures. [`LoginThrottle`] is
//! the seam for a shared backend (Redis) when several servers run.
//!
//! Windows are fixed (count from the first failure for `window`), measured on the monotonic
//! clock so a wall-clock jump neither lifts nor extends them.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures from one IP address per window.
pub const IP_LIMIT: u32 = 20;
/// Failures for one account from one IP address per window.
pub const PAIR_LIMIT: u32 = 5;
/// Failures for one account from all addresses per window before attempts are spaced.
pub const ACCOUNT_SOFT_LIMIT: u32 = 10;
/// Minimum gap between attempts on an account over its soft limit.
pub const ACCOUNT_SPACING: Duration = Duration::from_secs(5);
/// The default counting window (Django-axes' and many WAFs' 15 minutes).
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Entries per map before the oldest are evicted.
pub const MAX_ENTRIES: usize = 50_000;
/// Account keys are the submitted name, case-folded and bounded.
const MAX_ACCOUNT_CHARS: usize = 150;

/// Refused: try again after this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub Duration);

impl RetryAfter {
    /// Whole seconds for the `Retry-After` header, at least 1.
    pub fn secs(self) -> u64 {
        let s = self.0.as_secs();
        if self.0.subsec_nanos() > 0 {
            s + 1
        } else {
            s.max(1)
        }
    }
}

/// What the login handler needs from a throttle.
pub trait LoginThrottle: Send + Sync {
    /// May this attempt go ahead?
    fn check(&self, ip: IpAddr, account: &str, now: Instant) -> Result<(), RetryAfter>;
    fn record_failure(&self, ip: IpAddr, account: &str, now: Instant);
    fn record_success(&self, ip: IpAddr, account: &str);
}

#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    count: u32,
    last: Instant,
}

#[derive(Debug)]
struct Counters<K> {
    map: HashMap<K, Window>,
}

impl<K: Hash + Eq + Clone> Counters<K> {
    fn new() -> Self {
        Self {
            map: HashMap::new(),
        }
    }

    fn current(&self, key: &K, now: Instant, window: Duration) -> Option<Window> {
        self.map
            .get(key)
            .copied()
            .filter(|w| now.saturating_duration_since(w.start) < window)
    }

    fn bump(&mut self, key: K, now: Instant, window: Duration) {
        if !self.map.contains_key(&key) && self.map.len() >= MAX_ENTRIES {
            self.map
                .retain(|_, w| now.saturating_duration_since(w.start) < window);
            if self.map.len() >= MAX_ENTRIES
                && let Some(oldest) = self
                    .map
                    .iter()
                    .min_by_key(|(_, w)| w.start)
                    .map(|(k, _)| k.clone())
            {
                self.map.remove(&oldest);
            }
        }
        let entry = self.map.entry(key).or_insert(Window {
            start: now,
            count: 0,
            last: now,
        });
        if now.saturating_duration_since(entry.start) >= window {
            *entry = Window {
                start: now,
                count: 0,
                last: now,
            };
        }
        entry.count = entry.count.saturating_add(1);
        entry.last = now;
    }
}

#[derive(Debug)]
struct State {
    ip: Counters<IpAddr>,
    pair: Counters<(String, IpAddr)>,
    account: Counters<String>,
}

/// The in-process [`LoginThrottle`].
#[derive(Debug)]
pub struct MemoryThrottle {
    window: Duration,
    state: Mutex<State>,
}

/// The key an account is counted under: what was typed, trimmed, lower-cased, bounded.
pub fn account_key(submitted: &str) -> String {
    submitted
        .trim()
        .chars()
        .take(MAX_ACCOUNT_CHARS)
        .flat_map(char::to_lowercase)
        .collect()
}

impl MemoryThrottle {
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            state: Mutex::new(State {
                ip: Counters::new(),
                pair: Counters::new(),
                account: Counters::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A poisoned lock only means another thread panicked mid-update of plain counters;
        // they are still usable.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl LoginThrottle for MemoryThrottle {
    fn check(&self, ip: IpAddr, account: &str, now: Instant) -> Result<(), RetryAfter> {
        let account = account_key(account);
        let state = self.lock();
        let until_end = |w: Window| RetryAfter(self.window.saturating_sub(now - w.start));
        if let Some(w) = state.ip.current(&ip, now, self.window)
            && w.count >= IP_LIMIT
        {
            return Err(until_end(w));
        }
        if let Some(w) = state.pair.current(&(account.clone(), ip), now, self.window)
            && w.count >= PAIR_LIMIT
        {
            return Err(until_end(w));
        }
        if let Some(w) = state.account.current(&account, now, self.window)
            && w.count >= ACCOUNT_SOFT_LIMIT
        {
            let since = now.saturating_duration_since(w.last);
            if since < ACCOUNT_SPACING {
                return Err(RetryAfter(ACCOUNT_SPACING - since));
            }
        }
        Ok(())
    }

    fn record_failure(&self, ip: IpAddr, account: &str, now: Instant) {
        let account = account_key(account);
        let mut state = self.lock();
        state.ip.bump(ip, now, self.window);
        state.pair.bump((account.clone(), ip), now, self.window);
        state.account.bump(account, now, self.window);
    }

    fn record_success(&self, ip: IpAddr, account: &str) {
        let account = account_key(account);
        self.lock().pair.map.remove(&(account, ip));
    }
}

/// The account flows that send mail or set a password without a session: each is limited
/// separately, so a burst of registrations does not block a password reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flow {
    /// `POST /accounts/register/`.
    Register,
    /// `POST /accounts/activate/resend/`.
    ResendActivation,
    /// `POST /accounts/password/reset/`.
    PasswordReset,
    /// The token endpoints: `POST /accounts/activate/<token>/`, `POST /accounts/reset/…`.
    Token,
}

/// Limits on the mail-sending account flows (registration, resend, reset request) and the
/// token endpoints.
///
/// Unlike login, every attempt counts, not only failures: each one sends an e-mail or
/// costs a password hash, and a success tells an attacker nothing either way. Two keys:
/// - **per IP** ([`FlowLimitSettings::per_ip`] attempts per window and flow): one machine
///   cannot flood the mail queue or the hashing pool;
/// - **per address** ([`FlowLimitSettings::per_address`], the submitted e-mail address,
///   case-folded): nobody can bury one inbox in activation or reset mail from many
///   machines. The count is the same whether an account uses the address or not, so a 429
///   here reveals nothing about accounts.
///
/// The per-address count is taken only once the form is valid and mail is about to go out,
/// so someone retrying a refused password does not use up their own address. Refusals are
/// not counted, so an attacker hammering past the limit does not extend it.
/// The maps are bounded like the login throttle's.
#[derive(Debug)]
pub struct FlowLimiter {
    settings: FlowLimitSettings,
    state: Mutex<FlowState>,
}

/// The numbers behind a [`FlowLimiter`] (`[limits]` in `palisade.toml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowLimitSettings {
    pub window: Duration,
    /// Attempts per window from one IP address, per flow; 0 turns the limit off.
    pub per_ip: u32,
    /// Attempts per window naming one e-mail address, per flow; 0 turns the limit off.
    pub per_address: u32,
}

impl Default for FlowLimitSettings {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(60 * 60),
            per_ip: 20,
            per_address: 5,
        }
    }
}

#[derive(Debug)]
struct FlowState {
    ip: Counters<(Flow, IpAddr)>,
    address: Counters<(Flow, String)>,
}

impl FlowLimiter {
    pub fn new(settings: FlowLimitSettings) -> Self {
        Self {
            settings,
            state: Mutex::new(FlowState {
                ip: Counters::new(),
                address: Counters::new(),
            }),
        }
    }

    pub fn settings(&self) -> FlowLimitSettings {
        self.settings
    }

    /// Counts one attempt of `flow` from `ip`, or refuses it, uncounted, with the time until
    /// the window ends. Every request counts, valid or not.
    pub fn attempt_ip(&self, flow: Flow, ip: IpAddr, now: Instant) -> Result<(), RetryAfter> {
        let limit = self.settings.per_ip;
        let mut state = self.lock();
        Self::count(&mut state.ip, (flow, ip), limit, self.settings.window, now)
    }

    /// Counts one request of `flow` that names `address` and is about to act on it (send a
    /// mail), or refuses it. Called only once the form is valid, so a user fixing a refused
    /// password is not locked out of their own address.
    pub fn attempt_address(
        &self,
        flow: Flow,
        address: &str,
        now: Instant,
    ) -> Result<(), RetryAfter> {
        let limit = self.settings.per_address;
        let mut state = self.lock();
        let key = (flow, account_key(address));
        Self::count(&mut state.address, key, limit, self.settings.window, now)
    }

    fn count<K: Hash + Eq + Clone>(
        counters: &mut Counters<K>,
        key: K,
        limit: u32,
        window: Duration,
        now: Instant,
    ) -> Result<(), RetryAfter> {
        if limit == 0 {
            return Ok(());
        }
        if let Some(w) = counters.current(&key, now, window)
            && w.count >= limit
        {
            return Err(RetryAfter(window.saturating_sub(now - w.start)));
        }
        counters.bump(key, now, window);
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FlowState> {
        // Plain counters stay usable after a panic elsewhere.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, n])
    }

    #[test]
    fn pair_limit_blocks_only_that_address_and_lifts() {
        let t = MemoryThrottle::new(Duration::from_secs(60));
        let now = Instant::now();
        for _ in 0..PAIR_LIMIT {
            assert!(t.check(ip(1), "Alice", now).is_ok());
            t.record_failure(ip(1), "alice", now);
        }
        let r = t.check(ip(1), " ALICE", now).unwrap_err();
        assert_eq!(r.secs(), 60);
        // The owner elsewhere is not locked out.
        assert!(t.check(ip(2), "alice", now).is_ok());
        assert!(
            t.check(ip(1), "alice", now + Duration::from_secs(60))
                .is_ok()
        );
    }

    #[test]
    fn ip_limit_across_accounts() {
        let t = MemoryThrottle::new(Duration::from_secs(60));
        let now = Instant::now();
        for i in 0..IP_LIMIT {
            t.record_failure(ip(1), &format!("user{i}"), now);
        }
        assert!(t.check(ip(1), "someone-else", now).is_err());
        assert!(t.check(ip(2), "someone-else", now).is_ok());
    }

    #[test]
    fn distributed_attack_only_slows_the_account() {
        let t = MemoryThrottle::new(Duration::from_secs(600));
        let now = Instant::now();
        for i in 0..ACCOUNT_SOFT_LIMIT {
            t.record_failure(ip(u8::try_from(i).unwrap()), "bob", now);
        }
        let r = t.check(ip(200), "bob", now).unwrap_err();
        assert!(r.0 <= ACCOUNT_SPACING);
        assert!(t.check(ip(200), "bob", now + ACCOUNT_SPACING).is_ok());
    }

    #[test]
    fn success_clears_the_pair() {
        let t = MemoryThrottle::new(Duration::from_secs(60));
        let now = Instant::now();
        for _ in 0..PAIR_LIMIT {
            t.record_failure(ip(1), "carol", now);
        }
        t.record_success(ip(1), "carol");
        assert!(t.check(ip(1), "carol", now).is_ok());
    }

    #[test]
    fn flows_limit_per_ip_and_per_address_separately() {
        let limiter = FlowLimiter::new(FlowLimitSettings {
            window: Duration::from_secs(60),
            per_ip: 4,
            per_address: 2,
        });
        let now = Instant::now();
        let reset = Flow::PasswordReset;
        assert!(
            limiter
                .attempt_address(reset, "Victim@Example.com", now)
                .is_ok()
        );
        assert!(
            limiter
                .attempt_address(reset, "victim@example.com", now)
                .is_ok()
        );
        // The address is full whoever asks, however it is spelled.
        let r = limiter
            .attempt_address(reset, " victim@example.COM", now)
            .unwrap_err();
        assert_eq!(r.secs(), 60);
        // Other flows and other addresses are unaffected.
        assert!(
            limiter
                .attempt_address(Flow::Register, "victim@example.com", now)
                .is_ok()
        );
        assert!(
            limiter
                .attempt_address(reset, "other@example.com", now)
                .is_ok()
        );
        for _ in 0..4 {
            assert!(limiter.attempt_ip(reset, ip(1), now).is_ok());
        }
        // Refused attempts are not counted, and other addresses and flows go on.
        for _ in 0..3 {
            assert!(limiter.attempt_ip(reset, ip(1), now).is_err());
        }
        assert!(limiter.attempt_ip(reset, ip(2), now).is_ok());
        assert!(limiter.attempt_ip(Flow::Register, ip(1), now).is_ok());
        let later = now + Duration::from_secs(60);
        assert!(limiter.attempt_ip(reset, ip(1), later).is_ok());
        assert!(
            limiter
                .attempt_address(reset, "victim@example.com", later)
                .is_ok()
        );
    }

    #[test]
    fn zero_turns_a_flow_limit_off() {
        let limiter = FlowLimiter::new(FlowLimitSettings {
            window: Duration::from_secs(60),
            per_ip: 0,
            per_address: 0,
        });
        let now = Instant::now();
        for _ in 0..1000 {
            assert!(limiter.attempt_ip(Flow::Register, ip(1), now).is_ok());
            assert!(
                limiter
                    .attempt_address(Flow::Register, "a@b.c", now)
                    .is_ok()
            );
        }
    }
}
