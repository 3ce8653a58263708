//! Password hashing and verification with argon2id.
//!
//! Hashing runs on a few threads of its own (one per core by default), so a flood of sign-in
//! attempts queues instead of exhausting memory. Each hash needs `m_cost` KiB of working
//! memory: each thread allocates its buffer once and reuses it, so the allocator never
//! accumulates freed argon2 blocks in per-thread arenas (which had grown the process to half a
//! gigabyte under load). A thread that finishes a hash takes the next queued one at once: when
//! each hash went through tokio's blocking pool behind a semaphore, every hand-over woke an
//! async task first, and under a sign-in load the cores sat idle about 6% of the time between
//! hashes. Unknown accounts are checked against a dummy hash so timing does not reveal
//! registration.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};

/// OWASP's recommended argon2id parameters: 19 MiB, 2 passes, 1 lane.
pub const OWASP_M_COST_KIB: u32 = 19_456;
pub const OWASP_T_COST: u32 = 2;
pub const OWASP_P_COST: u32 = 1;
/// Length of new hashes, in bytes (the PHC default).
const OUTPUT_LEN: usize = 32;

/// A hash to compute with a thread's working memory.
type Job = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

/// The hashing threads' queue. When the last [`Passwords`] holding it is dropped, the threads
/// finish what is queued and end.
#[derive(Debug)]
struct HashingThreads {
    queue: Sender<Job>,
}

impl HashingThreads {
    fn start(count: usize) -> Result<Self, PasswordError> {
        let (queue, jobs) = channel::<Job>();
        let jobs = Arc::new(Mutex::new(jobs));
        for i in 0..count.max(1) {
            let jobs = jobs.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || hash_jobs(&jobs))
                .map_err(|_| PasswordError::Hash)?;
        }
        Ok(Self { queue })
    }
}

/// One hashing thread: takes queued jobs one after the other with its own reused memory.
fn hash_jobs(jobs: &Mutex<Receiver<Job>>) {
    let mut blocks: Vec<Block> = Vec::new();
    loop {
        // One idle thread waits in `recv`, the others on the lock.
        let job = match jobs.lock() {
            Ok(jobs) => jobs.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else {
            return;
        };
        // A panicking job loses its answer (the caller gets an error), not the thread.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut blocks)));
    }
}

/// Hashes and verifies passwords.
#[derive(Clone)]
pub struct Passwords {
    params: Params,
    threads: Arc<HashingThreads>,
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
    /// With the given cost, hashed on `threads` threads, which bounds the hashes in flight and
    /// their memory (use the core count).
    pub fn new(
        m_cost_kib: u32,
        t_cost: u32,
        p_cost: u32,
        threads: usize,
    ) -> Result<Self, PasswordError> {
        let params = Params::new(m_cost_kib, t_cost, p_cost, None)
            .map_err(|e| PasswordError::Params(e.to_string()))?;
        // This buffer is dropped: an idle server holds no argon2 memory until the first
        // sign-in, after which one buffer per hash in flight is kept.
        let dummy_hash = hash_with(&params, "not a password: equalises timing", &mut Vec::new())?;
        Ok(Self {
            params,
            threads: Arc::new(HashingThreads::start(threads)?),
            dummy_hash: Arc::from(dummy_hash),
        })
    }

    /// OWASP parameters, one hash per core.
    pub fn owasp() -> Result<Self, PasswordError> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::new(OWASP_M_COST_KIB, OWASP_T_COST, OWASP_P_COST, cores)
    }

    /// Runs `work` on a hashing thread with its reused memory buffer.
    async fn with_memory<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |blocks| {
            let _ = answer.send(work(blocks));
        });
        self.threads
            .queue
            .send(job)
            .map_err(|_| PasswordError::Hash)?;
        answered.await.map_err(|_| PasswordError::Hash)
    }

    /// Hashes a new password (PHC string).
    pub async fn hash(&self, password: String) -> Result<String, PasswordError> {
        let params = self.params.clone();
        self.with_memory(move |blocks| hash_with(&params, &password, blocks))
            .await?
    }

    /// Whether `password` matches `stored`; with no stored hash (unknown account, or none set
    /// yet), a dummy hash is checked so the answer takes the same time, and is false.
    pub async fn verify(&self, password: String, stored: Option<String>) -> bool {
        let real = stored.is_some();
        let hash = stored.unwrap_or_else(|| self.dummy_hash.to_string());
        let matched = self
            .with_memory(move |blocks| verify_with(&password, &hash, blocks))
            .await
            .unwrap_or(false);
        matched && real
    }

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

/// argon2 over `blocks`, grown to what `params` needs (never shrunk: it is reused).
fn compute(
    argon2: &Argon2<'_>,
    params: &Params,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
    blocks: &mut Vec<Block>,
) -> Result<(), argon2::Error> {
    let needed = params.block_count();
    if blocks.len() < needed {
        blocks.resize(needed, Block::default());
    }
    argon2.hash_password_into_with_memory(password, salt, out, &mut blocks[..needed])
}

fn hash_with(
    params: &Params,
    password: &str,
    blocks: &mut Vec<Block>,
) -> Result<String, PasswordError> {
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt
        .decode_b64(&mut salt_bytes)
        .map_err(|_| PasswordError::Hash)?;
    let mut out = [0u8; OUTPUT_LEN];
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    compute(
        &argon2,
        params,
        password.as_bytes(),
        salt_bytes,
        &mut out,
        blocks,
    )
    .map_err(|_| PasswordError::Hash)?;
    let output = Output::new(&out).map_err(|_| PasswordError::Hash)?;
    Ok(format!(
        "$argon2id$v=19$m={},t={},p={}${}${output}",
        params.m_cost(),
        params.t_cost(),
        params.p_cost(),
        salt.as_str()
    ))
}

fn verify_with(password: &str, phc: &str, blocks: &mut Vec<Block>) -> bool {
    // Parameters come from the stored hash, so older hashes still verify.
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Ok(algorithm), Ok(params), Some(expected), Some(salt)) = (
        Algorithm::try_from(parsed.algorithm),
        Params::try_from(&parsed),
        parsed.hash,
        parsed.salt,
    ) else {
        return false;
    };
    let version = parsed
        .version
        .map_or(Ok(Version::V0x13), Version::try_from)
        .unwrap_or(Version::V0x13);
    let mut salt_bytes = [0u8; 64];
    let Ok(salt_bytes) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    let argon2 = Argon2::new(algorithm, version, params.clone());
    compute(
        &argon2,
        &params,
        password.as_bytes(),
        salt_bytes,
        &mut out,
        blocks,
    )
    .is_ok()
        && aws_lc_rs::constant_time::verify_slices_are_equal(&out, expected.as_bytes()).is_ok()
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
        // Hashes made by the argon2 crate's own API verify, and ours verify with it.
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let params = Params::new(1024, 1, 1, None).expect("params");
        let theirs = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(b"Correct-Horse-9", &SaltString::generate(&mut OsRng))
            .expect("hash")
            .to_string();
        assert!(p.verify("Correct-Horse-9".into(), Some(theirs)).await);
        assert!(Argon2::default()
            .verify_password(b"Correct-Horse-9", &PasswordHash::new(&hash).expect("phc"))
            .is_ok());
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
