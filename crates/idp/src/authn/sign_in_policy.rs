//! The sign-in policy in force: lockout thresholds, emailed code lifetime and limits, and the
//! shortest password allowed.
//!
//! It starts from the configuration file. An administrator may change it from the console
//! within [`BOUNDS`], which keep it safe (no lockout so lax that guessing pays, no code that
//! lives an hour); the change is stored in the database and every instance reads it within
//! its key refresh interval.

use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

use crate::config::SignInSettings;
use crate::store::{sign_in_policy, DbConnection, StoreResult};

/// The rules, as numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignInPolicy {
    /// Consecutive failures (password, or second factor) that lock an account.
    pub max_failures: u32,
    /// Failures older than this no longer count.
    pub failure_window_secs: u64,
    /// First lock; each further lock doubles it.
    pub lock_secs: u64,
    /// Longest lock.
    pub max_lock_secs: u64,
    /// Failures from one address, over all accounts, before it must wait.
    pub ip_max_failures: u32,
    /// Lifetime of an emailed code.
    pub email_code_ttl_secs: u64,
    /// Wrong tries before an emailed code dies.
    pub email_code_max_attempts: u32,
    /// Seconds between two codes sent to the same person.
    pub resend_interval_secs: u64,
    /// Codes sent to the same person per hour.
    pub resend_max_per_hour: u32,
    /// Shortest password accepted.
    pub password_min_length: u32,
}

/// Field names, with the lowest and highest value an administrator may set.
pub const BOUNDS: [(&str, u64, u64); 10] = [
    ("max_failures", 3, 10),
    ("failure_window_secs", 300, 86_400),
    ("lock_secs", 60, 86_400),
    ("max_lock_secs", 60, 7 * 86_400),
    ("ip_max_failures", 10, 10_000),
    ("email_code_ttl_secs", 120, 3_600),
    ("email_code_max_attempts", 3, 10),
    ("resend_interval_secs", 10, 600),
    ("resend_max_per_hour", 3, 20),
    ("password_min_length", 10, 64),
];

/// A value outside its bounds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} must be a whole number from {min} to {max}")]
pub struct OutOfBounds {
    pub field: &'static str,
    pub min: u64,
    pub max: u64,
}

impl SignInPolicy {
    /// The configuration file's policy.
    pub fn from_settings(s: &SignInSettings) -> Self {
        Self {
            max_failures: s.max_failures,
            failure_window_secs: s.failure_window_secs,
            lock_secs: s.lock_secs,
            max_lock_secs: s.max_lock_secs,
            ip_max_failures: s.ip_max_failures,
            email_code_ttl_secs: s.email_code_ttl_secs,
            email_code_max_attempts: s.email_code_max_attempts,
            resend_interval_secs: s.resend_interval_secs,
            resend_max_per_hour: s.resend_max_per_hour,
            password_min_length: u32::try_from(crate::authn::policy::MIN_LENGTH).unwrap_or(10),
        }
    }

    /// Every field and its value, in [`BOUNDS`] order.
    pub fn values(&self) -> [(&'static str, u64); 10] {
        [
            ("max_failures", self.max_failures.into()),
            ("failure_window_secs", self.failure_window_secs),
            ("lock_secs", self.lock_secs),
            ("max_lock_secs", self.max_lock_secs),
            ("ip_max_failures", self.ip_max_failures.into()),
            ("email_code_ttl_secs", self.email_code_ttl_secs),
            (
                "email_code_max_attempts",
                self.email_code_max_attempts.into(),
            ),
            ("resend_interval_secs", self.resend_interval_secs),
            ("resend_max_per_hour", self.resend_max_per_hour.into()),
            ("password_min_length", self.password_min_length.into()),
        ]
    }

    /// The policy with the named fields changed, checked against [`BOUNDS`] (and a longest
    /// lock no shorter than the first). Fields not named keep their value.
    pub fn changed(&self, typed: &[(&str, &str)]) -> Result<Self, OutOfBounds> {
        let mut values = self.values();
        for (name, text) in typed {
            if let Some(slot) = values.iter_mut().find(|(n, _)| n == name) {
                let (field, min, max) = BOUNDS
                    .iter()
                    .copied()
                    .find(|(n, _, _)| n == name)
                    .unwrap_or((slot.0, 0, 0));
                slot.1 = text
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|v| (min..=max).contains(v))
                    .ok_or(OutOfBounds { field, min, max })?;
            }
        }
        let get = |name: &str| values.iter().find(|(n, _)| *n == name).map_or(0, |v| v.1);
        let small = |name: &str| u32::try_from(get(name)).unwrap_or(u32::MAX);
        let policy = Self {
            max_failures: small("max_failures"),
            failure_window_secs: get("failure_window_secs"),
            lock_secs: get("lock_secs"),
            max_lock_secs: get("max_lock_secs"),
            ip_max_failures: small("ip_max_failures"),
            email_code_ttl_secs: get("email_code_ttl_secs"),
            email_code_max_attempts: small("email_code_max_attempts"),
            resend_interval_secs: get("resend_interval_secs"),
            resend_max_per_hour: small("resend_max_per_hour"),
            password_min_length: small("password_min_length"),
        };
        if policy.max_lock_secs < policy.lock_secs {
            return Err(OutOfBounds {
                field: "max_lock_secs",
                min: policy.lock_secs,
                max: 7 * 86_400,
            });
        }
        Ok(policy)
    }

    /// Minutes an emailed code lives, rounded up, as pages state it.
    pub fn code_minutes(&self) -> u64 {
        self.email_code_ttl_secs.div_ceil(60)
    }
}

/// The policy every request reads: the stored one, or the configuration's.
#[derive(Debug)]
pub struct PolicyInForce {
    configured: SignInPolicy,
    current: RwLock<Arc<SignInPolicy>>,
}

impl PolicyInForce {
    /// Starts from the configuration's policy and reads the stored one, if any.
    pub fn load(conn: &mut DbConnection, configured: SignInPolicy) -> StoreResult<Self> {
        let cell = Self {
            configured,
            current: RwLock::new(Arc::new(configured)),
        };
        cell.reload(conn)?;
        Ok(cell)
    }

    /// The policy now.
    pub fn get(&self) -> SignInPolicy {
        **self
            .current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Re-reads the stored policy (a change made on another instance). A stored value that
    /// no longer parses leaves the configuration's policy in force.
    pub fn reload(&self, conn: &mut DbConnection) -> StoreResult<()> {
        let stored = sign_in_policy::current(conn)?
            .and_then(|json| serde_json::from_str::<SignInPolicy>(&json).ok())
            .unwrap_or(self.configured);
        self.set(stored);
        Ok(())
    }

    /// Puts `policy` in force on this instance at once.
    pub fn set(&self, policy: SignInPolicy) {
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(policy);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn configured() -> SignInPolicy {
        SignInPolicy::from_settings(&SignInSettings::default())
    }

    #[test]
    fn changes_are_kept_within_safe_bounds() {
        let p = configured();
        let changed = p
            .changed(&[("max_failures", "3"), ("email_code_ttl_secs", " 300 ")])
            .expect("within bounds");
        assert_eq!(changed.max_failures, 3);
        assert_eq!(changed.email_code_ttl_secs, 300);
        assert_eq!(changed.code_minutes(), 5);
        assert_eq!(
            changed.lock_secs, p.lock_secs,
            "untouched fields keep their value"
        );
        for (field, bad) in [
            ("max_failures", "2"),
            ("max_failures", "11"),
            ("email_code_ttl_secs", "3601"),
            ("password_min_length", "8"),
            ("lock_secs", "ten"),
            ("lock_secs", "-5"),
        ] {
            let err = p.changed(&[(field, bad)]).expect_err(bad);
            assert_eq!(err.field, field);
        }
        let err = p
            .changed(&[("lock_secs", "3600"), ("max_lock_secs", "600")])
            .expect_err("longest lock shorter than the first");
        assert_eq!(err.field, "max_lock_secs");
        assert_eq!(p.changed(&[("unknown", "1")]), Ok(p));
    }
}
