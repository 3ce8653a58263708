//! Password hashing and verification with argon2id.
//!
//! Hashing runs on tokio's blocking pool with at most one hash per core in flight, so a flood
//! of sign-in attempts queues instead of exhausting memory (each hash takes `m_cost` KiB).
//! Unknown accounts are checked against a dummy hash so timing does not reveal registration.

use std::sync::Arc;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

/// OWASP's recommended argon2id parameters: 19 MiB, 2 passes, 1 lane.
pub const OWASP_M_COST_KIB: u32 = 19_456;
pub const OWASP_T_COST: u32 = 2;
pub const OWASP_P_COST: u32 = 1;

/// Hashes and verifies passwords.
#[derive(Clone)]
pub struct Passwords {
    params: Params,
    permits: Arc<Semaphore>,
    dummy_hash: Arc<str>,
}

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passwords")
            .field("m_cost", &self.params.m_cost())
            .field("t_cost", &self.params.t_cost())
            .finish_non_exhaustive()
    }
}

/// Password hashing failures.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("argon2 parameters are invalid: {0}")]
    Params(String),
    #[error("password hashing failed")]
    Hash,
}

impl Passwords {
    /// With the given cost; `in_flight` bounds concurrent hashes (use the core count).
    pub fn new(
        m_cost_kib: u32,
        t_cost: u32,
        p_cost: u32,
        in_flight: usize,
    ) -> Result<Self, PasswordError> {
        let params = Params::new(m_cost_kib, t_cost, p_cost, None)
            .map_err(|e| PasswordError::Params(e.to_string()))?;
        let dummy_hash = hash_with(&params, "not a password: equalises timing")?;
        Ok(Self {
            params,
            permits: Arc::new(Semaphore::new(in_flight.max(1))),
            dummy_hash: Arc::from(dummy_hash),
        })
    }

    /// OWASP parameters, one hash per core.
    pub fn owasp() -> Result<Self, PasswordError> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::new(OWASP_M_COST_KIB, OWASP_T_COST, OWASP_P_COST, cores)
    }

    /// Hashes a new password (PHC string).
    pub async fn hash(&self, password: String) -> Result<String, PasswordError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| PasswordError::Hash)?;
        let params = self.params.clone();
        tokio::task::spawn_blocking(move || hash_with(&params, &password))
            .await
            .map_err(|_| PasswordError::Hash)?
    }

    /// Whether `password` matches `stored`; with no stored hash (unknown account, or none set
    /// yet), a dummy hash is checked so the answer takes the same time, and is false.
    pub async fn verify(&self, password: String, stored: Option<String>) -> bool {
        let Ok(_permit) = self.permits.acquire().await else {
            return false;
        };
        let real = stored.is_some();
        let hash = stored.unwrap_or_else(|| self.dummy_hash.to_string());
        let matched = tokio::task::spawn_blocking(move || verify_with(&password, &hash))
            .await
            .unwrap_or(false);
        matched && real
    }
}

impl Passwords {
    /// Whether `phc` was made with other parameters than the configured ones (upgrade it
    /// after a successful sign-in).
    pub fn needs_rehash(&self, phc: &str) -> bool {
        PasswordHash::new(phc).ok().is_none_or(|parsed| {
            parsed.algorithm.as_str() != "argon2id"
                || Params::try_from(&parsed).ok().is_none_or(|p| {
                    p.m_cost() != self.params.m_cost()
                        || p.t_cost() != self.params.t_cost()
                        || p.p_cost() != self.params.p_cost()
                })
        })
    }
}

fn hash_with(params: &Params, password: &str) -> Result<String, PasswordError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| PasswordError::Hash)
}

fn verify_with(password: &str, phc: &str) -> bool {
    // Parameters come from the stored hash, so older hashes still verify.
    PasswordHash::new(phc).ok().is_some_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_then_verify() {
        // Small cost for a fast unit test; the format and algorithm are the same.
        let p = Passwords::new(1024, 1, 1, 2).expect("params");
        let hash = p.hash("Correct-Horse-9".into()).await.expect("hash");
        assert!(hash.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"), "{hash}");
        assert!(p.verify("Correct-Horse-9".into(), Some(hash.clone())).await);
        assert!(!p.verify("correct-horse-9".into(), Some(hash.clone())).await);
        assert!(
            !p.verify("anything".into(), None).await,
            "no hash never matches"
        );
        assert!(!p.verify("x".into(), Some("not a phc string".into())).await);
        let again = p.hash("Correct-Horse-9".into()).await.expect("hash");
        assert_ne!(hash, again, "salted");
        assert!(!p.needs_rehash(&hash));
        let stronger = Passwords::new(2048, 1, 1, 2).expect("params");
        assert!(stronger.needs_rehash(&hash), "memory cost changed");
        assert!(stronger.needs_rehash("not a phc string"));
    }

    #[test]
    fn owasp_defaults() {
        let p = Passwords::owasp().expect("params");
        assert_eq!(p.params.m_cost(), 19_456);
        assert_eq!(p.params.t_cost(), 2);
        assert_eq!(p.params.p_cost(), 1);
    }
}
