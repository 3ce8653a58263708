//! Lockout: separate counters for password and second-factor failures per account, a lock
//! that grows with repeated locks, and a failure budget per IP address on top.
//!
//! Attempts are counted *before* they are checked (see
//! [`attempt_counters::count_attempt`]): fifty guesses sent at once get at most `max_failures`
//! checks, the rest are refused as if the account were locked.

use chrono::{Duration, NaiveDateTime};

use crate::authn::sign_in_policy::SignInPolicy;
use crate::crypto::KeyedHasher;
use crate::store::attempt_counters::{self, Counted, Counter};
use crate::store::{DbConnection, StoreResult};

const ACCOUNT_PURPOSE: &str = "attempts:account";
const IP_PURPOSE: &str = "attempts:ip";

/// Thresholds and periods, from the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    pub max_failures: i32,
    pub window: Duration,
    pub first_lock: Duration,
    pub longest_lock: Duration,
    pub ip_max_failures: i32,
}

impl LockoutPolicy {
    /// The lockout rules of the sign-in policy in force.
    pub fn of(s: &SignInPolicy) -> Self {
        let secs = |v: u64| Duration::seconds(i64::try_from(v).unwrap_or(i64::MAX / 1000));
        Self {
            max_failures: i32::try_from(s.max_failures).unwrap_or(i32::MAX),
            window: secs(s.failure_window_secs),
            first_lock: secs(s.lock_secs),
            longest_lock: secs(s.max_lock_secs),
            ip_max_failures: i32::try_from(s.ip_max_failures).unwrap_or(i32::MAX),
        }
    }

    /// How long the next lock lasts after `earlier_locks` locks: doubling, capped.
    pub fn lock_period(&self, earlier_locks: i32) -> Duration {
        let doublings = u32::try_from(earlier_locks.clamp(0, 30)).unwrap_or(0);
        let factor = 1i32 << doublings;
        self.first_lock
            .checked_mul(factor)
            .map_or(self.longest_lock, |d| d.min(self.longest_lock))
    }

    fn window_start(&self, now: NaiveDateTime) -> NaiveDateTime {
        now - self.window
    }
}

/// The counter key of the account whose login name is `email` (whether it exists or not).
pub fn account_key(hasher: &KeyedHasher, email: &str) -> String {
    crate::crypto::hex(&hasher.hash(
        ACCOUNT_PURPOSE,
        crate::store::users::email_key(email).as_bytes(),
    ))
}

/// The counter key of an IP address.
pub fn ip_key(hasher: &KeyedHasher, ip: &str) -> String {
    crate::crypto::hex(&hasher.hash(IP_PURPOSE, ip.as_bytes()))
}

/// Whether an attempt may be checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Check it; this is attempt `count` of the window.
    Open { count: i32, lock_count: i32 },
    /// Too many attempts: refuse without checking.
    Closed,
}

/// Counts an attempt on `key`'s `counter` and says whether it may be checked.
pub fn enter(
    conn: &mut DbConnection,
    policy: &LockoutPolicy,
    key: &str,
    counter: Counter,
    now: NaiveDateTime,
) -> StoreResult<Gate> {
    Ok(
        match attempt_counters::count_attempt(conn, key, counter, policy.window_start(now), now)? {
            Counted::Locked(_) => Gate::Closed,
            Counted::Failures { count, .. } if count > policy.max_failures => Gate::Closed,
            Counted::Failures { count, lock_count } => Gate::Open { count, lock_count },
        },
    )
}

/// After a failed check admitted by [`enter`]: locks the account when this was the last
/// allowed failure. Returns the end of the new lock, if this failure locked it.
pub fn after_failure(
    conn: &mut DbConnection,
    policy: &LockoutPolicy,
    key: &str,
    gate: Gate,
    now: NaiveDateTime,
) -> StoreResult<Option<NaiveDateTime>> {
    let Gate::Open { count, lock_count } = gate else {
        return Ok(None);
    };
    if count < policy.max_failures {
        return Ok(None);
    }
    let until = now + policy.lock_period(lock_count);
    Ok(attempt_counters::lock(conn, key, until, now)?.then_some(until))
}

/// Whether `ip` has used up its failure budget.
pub fn ip_throttled(
    conn: &mut DbConnection,
    policy: &LockoutPolicy,
    key: &str,
    now: NaiveDateTime,
) -> StoreResult<bool> {
    if attempt_counters::locked_until(conn, key, now)?.is_some() {
        return Ok(true);
    }
    Ok(attempt_counters::find(conn, key)?.is_some_and(|row| {
        row.window_started_at >= policy.window_start(now)
            && row.password_failures >= policy.ip_max_failures
    }))
}

/// Records a failure from `ip`; throttles the address once its budget is spent.
pub fn ip_failed(
    conn: &mut DbConnection,
    policy: &LockoutPolicy,
    key: &str,
    now: NaiveDateTime,
) -> StoreResult<()> {
    let count = attempt_counters::add_failure(conn, key, policy.window_start(now), now)?;
    if count >= policy.ip_max_failures {
        attempt_counters::lock(conn, key, now + policy.first_lock, now)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> LockoutPolicy {
        LockoutPolicy::of(&SignInPolicy::from_settings(
            &crate::config::SignInSettings::default(),
        ))
    }

    #[test]
    fn defaults_are_five_failures_in_fifteen_minutes() {
        let p = policy();
        assert_eq!(p.max_failures, 5);
        assert_eq!(p.window, Duration::minutes(15));
    }

    #[test]
    fn each_lock_lasts_twice_as_long_up_to_the_cap() {
        let p = policy();
        assert_eq!(p.lock_period(0), Duration::minutes(15));
        assert_eq!(p.lock_period(1), Duration::minutes(30));
        assert_eq!(p.lock_period(2), Duration::hours(1));
        assert_eq!(p.lock_period(6), Duration::minutes(15 * 64));
        assert_eq!(p.lock_period(7), Duration::hours(24), "capped");
        assert_eq!(p.lock_period(1_000), Duration::hours(24), "no overflow");
        assert_eq!(p.lock_period(-3), Duration::minutes(15));
    }

    #[test]
    fn keys_ignore_case_and_differ_by_purpose() {
        let h = KeyedHasher::new(&crate::crypto::MasterKey::generate());
        assert_eq!(
            account_key(&h, " Marie@Example.org "),
            account_key(&h, "marie@example.org")
        );
        assert_ne!(account_key(&h, "127.0.0.1"), ip_key(&h, "127.0.0.1"));
    }
}
