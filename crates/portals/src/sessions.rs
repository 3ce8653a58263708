//! The portal's own server-side state: one record per visitor (keyed by a random cookie),
//! holding the sign-in in progress and the signed-in person; the `jti` of logout tokens
//! already used; and, for the ATIP portal, the requests made.
//!
//! Kept in memory: these are demonstration portals, each run as one process.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use openidconnect::core::CoreIdToken;

use crate::i18n::Lang;

/// A visitor idle this long is forgotten.
const VISITOR_IDLE: Duration = Duration::from_secs(8 * 3600);
/// A sign-in not completed within this time must start over.
pub const PENDING_TTL: Duration = Duration::from_secs(900);

/// A sign-in in progress: what the callback must find again.
#[derive(Debug, Clone)]
pub struct PendingLogin {
    pub state: String,
    pub nonce: String,
    pub verifier: String,
    pub started: Instant,
}

/// The signed-in person, as the ID token and UserInfo described them.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub sub: String,
    pub sid: Option<String>,
    pub name: String,
    pub email: String,
    pub member_code: Option<String>,
    /// Sent back as `id_token_hint` when signing out.
    pub id_token: CoreIdToken,
    /// For the provider's account API (recent sign-ins).
    pub access_token: String,
}

/// One browser.
#[derive(Debug, Clone)]
pub struct Visitor {
    /// The CSRF token of this visitor's forms.
    pub csrf: String,
    pub lang: Option<Lang>,
    pub pending: Option<PendingLogin>,
    pub signed_in: Option<SignedIn>,
    last_used: Instant,
}

/// One ATIP request.
#[derive(Debug, Clone)]
pub struct AtipRequest {
    pub number: String,
    pub subject: String,
}

#[derive(Default)]
struct Inner {
    visitors: HashMap<String, Visitor>,
    /// `jti` of logout tokens used, with their expiry (Unix seconds).
    seen_jti: HashMap<String, i64>,
    requests: HashMap<String, Vec<AtipRequest>>,
    issued_requests: u64,
}

/// Every visitor of one portal.
#[derive(Default)]
pub struct SessionStore {
    inner: Mutex<Inner>,
}

fn random_id() -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl SessionStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data behind; keep serving.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The visitor with this cookie, or a new one: returns its id, a copy, and whether it is
    /// new (the cookie must then be set).
    pub fn visit(&self, cookie: Option<&str>) -> (String, Visitor, bool) {
        let mut inner = self.lock();
        let now = Instant::now();
        if let Some(v) = cookie.and_then(|id| inner.visitors.get_mut(id)) {
            if v.last_used.elapsed() < VISITOR_IDLE {
                v.last_used = now;
                let copy = v.clone();
                return (cookie.unwrap_or_default().to_string(), copy, false);
            }
        }
        if inner.visitors.len() > 10_000 {
            inner
                .visitors
                .retain(|_, v| v.last_used.elapsed() < VISITOR_IDLE);
        }
        let id = random_id();
        let visitor = Visitor {
            csrf: random_id(),
            lang: None,
            pending: None,
            signed_in: None,
            last_used: now,
        };
        inner.visitors.insert(id.clone(), visitor.clone());
        (id, visitor, true)
    }

    /// Changes a visitor's record.
    pub fn update<T>(&self, id: &str, change: impl FnOnce(&mut Visitor) -> T) -> Option<T> {
        self.lock().visitors.get_mut(id).map(change)
    }

    /// Ends the local sessions a logout token names: those of `sid` (and `sub` when both are
    /// given), or every session of `sub`. Returns how many ended.
    pub fn end_sessions(&self, sub: Option<&str>, sid: Option<&str>) -> usize {
        let mut ended = 0;
        for v in self.lock().visitors.values_mut() {
            let matches = v.signed_in.as_ref().is_some_and(|s| {
                sub.is_none_or(|sub| s.sub == sub)
                    && sid.is_none_or(|sid| s.sid.as_deref() == Some(sid))
            });
            if matches {
                v.signed_in = None;
                ended += 1;
            }
        }
        ended
    }

    /// Records a logout token's `jti`; false when it was seen before (a replay).
    pub fn first_use_of_jti(&self, jti: &str, exp: i64, now: i64) -> bool {
        let mut inner = self.lock();
        inner.seen_jti.retain(|_, until| *until + 120 > now);
        if inner.seen_jti.contains_key(jti) {
            return false;
        }
        inner.seen_jti.insert(jti.to_string(), exp.max(now + 120));
        true
    }

    /// Records an ATIP request (for `owner` when signed in); returns its number.
    pub fn add_request(&self, owner: Option<&str>, subject: &str) -> String {
        let mut inner = self.lock();
        inner.issued_requests += 1;
        let number = format!("A-2026-{:06}", inner.issued_requests);
        if let Some(owner) = owner {
            inner
                .requests
                .entry(owner.to_string())
                .or_default()
                .push(AtipRequest {
                    number: number.clone(),
                    subject: subject.to_string(),
                });
        }
        number
    }

    /// The requests of a signed-in person, oldest first.
    pub fn requests_of(&self, owner: &str) -> Vec<AtipRequest> {
        self.lock().requests.get(owner).cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jti_is_accepted_once() {
        let store = SessionStore::default();
        assert!(store.first_use_of_jti("a", 1_000, 900));
        assert!(!store.first_use_of_jti("a", 1_000, 901));
        assert!(store.first_use_of_jti("b", 1_000, 901));
    }

    #[test]
    fn visitors_are_found_again_by_cookie_only() {
        let store = SessionStore::default();
        let (id, _, new) = store.visit(None);
        assert!(new);
        let (again, _, new) = store.visit(Some(&id));
        assert_eq!((again.as_str(), new), (id.as_str(), false));
        let (other, _, new) = store.visit(Some("forged"));
        assert!(new);
        assert_ne!(other, "forged");
    }
}
