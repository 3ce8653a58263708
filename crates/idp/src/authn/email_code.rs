//! Six-digit codes sent by email: valid ten minutes, single use, a few wrong tries before they
//! die, and a new code kills the previous one. Only keyed hashes are stored; these functions
//! decide what a submitted code means so the page can say what to do next.

use chrono::{Duration, NaiveDateTime};
use rand::Rng;

use crate::authn::sign_in_policy::SignInPolicy;
use crate::crypto::KeyedHasher;
use crate::store::one_time_codes::{OneTimeCodeRecord, SentCode};

const CODE_PURPOSE: &str = "one_time_code";

/// How many codes one mailbox may receive per hour for one purpose, from every address
/// together, as a multiple of one address's hourly budget. Each address has its own budget,
/// so a stranger who types someone's email cannot spend theirs; this bound keeps the mailbox
/// from being flooded from many addresses.
pub const MAILBOX_BUDGET_FACTOR: i64 = 4;

/// Lifetimes and limits, from the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodePolicy {
    pub ttl: Duration,
    pub max_attempts: i32,
    pub resend_interval: Duration,
    pub max_per_hour: i64,
}

impl CodePolicy {
    /// The code rules of the sign-in policy in force.
    pub fn of(s: &SignInPolicy) -> Self {
        let secs = |v: u64| Duration::seconds(i64::try_from(v).unwrap_or(3_600));
        Self {
            ttl: secs(s.email_code_ttl_secs),
            max_attempts: i32::try_from(s.email_code_max_attempts).unwrap_or(5),
            resend_interval: secs(s.resend_interval_secs),
            max_per_hour: s.resend_max_per_hour.into(),
        }
    }
}

/// A uniformly random six-digit code.
pub fn generate() -> String {
    format!("{:06}", rand::rngs::OsRng.gen_range(0..1_000_000u32))
}

/// The keyed hash stored for `code` of `user_id` (bound to the person so a hash cannot be
/// moved to someone else's row).
pub fn hash(hasher: &KeyedHasher, user_id: &str, code: &str) -> Vec<u8> {
    hasher.hash(CODE_PURPOSE, format!("{user_id}:{code}").as_bytes())
}

fn matches(hasher: &KeyedHasher, record: &OneTimeCodeRecord, code: &str) -> bool {
    hasher.verify(
        CODE_PURPOSE,
        format!("{}:{code}", record.user_id).as_bytes(),
        &record.code_hash,
    )
}

/// Strips spaces a person may type or paste; `None` unless six digits remain.
pub fn normalise(submitted: &str) -> Option<String> {
    let code: String = submitted.chars().filter(|c| !c.is_whitespace()).collect();
    (code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit())).then_some(code)
}

/// What a submitted code means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeVerdict {
    /// The live code: consume it (record id).
    Accept(String),
    /// Not the live code: count a wrong try against it (record id).
    Wrong(String),
    /// The right code, but its ten minutes are over.
    Expired,
    /// The right code, already used.
    Used,
    /// An earlier code, replaced by a newer one.
    Replaced,
    /// The code died after too many wrong tries.
    TooManyTries,
    /// No code can be tried: none sent, or the last one is spent.
    NoLiveCode,
}

/// Judges `submitted` against the person's codes of one purpose, newest first.
pub fn judge(
    hasher: &KeyedHasher,
    codes: &[OneTimeCodeRecord],
    submitted: &str,
    now: NaiveDateTime,
) -> CodeVerdict {
    let Some(latest) = codes.first() else {
        return CodeVerdict::NoLiveCode;
    };
    let dead = latest.attempts >= latest.max_attempts;
    let expired = latest.expires_at <= now;
    let live = latest.consumed_at.is_none() && latest.superseded_at.is_none() && !dead && !expired;
    let Some(code) = normalise(submitted) else {
        return if live {
            CodeVerdict::Wrong(latest.id.clone())
        } else {
            state_of_spent(latest, now)
        };
    };
    if matches(hasher, latest, &code) {
        return if latest.consumed_at.is_some() {
            CodeVerdict::Used
        } else if dead {
            CodeVerdict::TooManyTries
        } else if expired {
            CodeVerdict::Expired
        } else if latest.superseded_at.is_some() {
            CodeVerdict::Replaced
        } else {
            CodeVerdict::Accept(latest.id.clone())
        };
    }
    if let Some(older) = codes[1..].iter().find(|c| matches(hasher, c, &code)) {
        return if older.consumed_at.is_some() {
            CodeVerdict::Used
        } else {
            CodeVerdict::Replaced
        };
    }
    if live {
        CodeVerdict::Wrong(latest.id.clone())
    } else {
        state_of_spent(latest, now)
    }
}

fn state_of_spent(latest: &OneTimeCodeRecord, now: NaiveDateTime) -> CodeVerdict {
    if latest.consumed_at.is_none() && latest.attempts >= latest.max_attempts {
        CodeVerdict::TooManyTries
    } else if latest.consumed_at.is_none() && latest.expires_at <= now {
        CodeVerdict::Expired
    } else {
        CodeVerdict::NoLiveCode
    }
}

/// How long the person must wait before another code may be sent, given when the codes of the
/// last hour were sent (any order); `None` when one may be sent now.
pub fn resend_wait(
    policy: &CodePolicy,
    sent_last_hour: &[NaiveDateTime],
    now: NaiveDateTime,
) -> Option<Duration> {
    let hour_ago = now - Duration::hours(1);
    let mut recent: Vec<NaiveDateTime> = sent_last_hour
        .iter()
        .copied()
        .filter(|t| *t > hour_ago)
        .collect();
    recent.sort();
    let interval_wait = recent
        .last()
        .map(|last| *last + policy.resend_interval - now)
        .filter(|d| *d > Duration::zero());
    let budget = usize::try_from(policy.max_per_hour).unwrap_or(usize::MAX);
    let hourly_wait = (recent.len() >= budget)
        .then(|| recent[recent.len() - budget] + Duration::hours(1) - now)
        .filter(|d| *d > Duration::zero());
    interval_wait.max(hourly_wait)
}

/// How long the address `from` (a keyed hash; `None` when unknown) must wait before another
/// code may be sent, given the person's unused codes of the last hour: the interval and the
/// hourly budget count only the codes that address asked for, and the mailbox as a whole
/// takes at most [`MAILBOX_BUDGET_FACTOR`] times the hourly budget, unless the browser asking
/// is `known` (it completed a sign-in as this person: [`crate::authn::known_device`]), so
/// strangers cannot hold off that person's own codes. `None` when one may be sent now.
pub fn send_wait(
    policy: &CodePolicy,
    sent_last_hour: &[SentCode],
    from: Option<&str>,
    known: bool,
    now: NaiveDateTime,
) -> Option<Duration> {
    let from_here: Vec<NaiveDateTime> = sent_last_hour
        .iter()
        .filter(|s| s.requested_from.as_deref() == from)
        .map(|s| s.created_at)
        .collect();
    let all: Vec<NaiveDateTime> = sent_last_hour.iter().map(|s| s.created_at).collect();
    let mailbox = CodePolicy {
        resend_interval: Duration::zero(),
        max_per_hour: policy.max_per_hour.saturating_mul(MAILBOX_BUDGET_FACTOR),
        ..*policy
    };
    let own = resend_wait(policy, &from_here, now);
    if known {
        return own;
    }
    // `None` (no wait) orders below every wait: the longer wait wins.
    own.max(resend_wait(&mailbox, &all, now))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    fn t0() -> NaiveDateTime {
        DateTime::from_timestamp(1_800_000_000, 0)
            .expect("time")
            .naive_utc()
    }

    fn hasher() -> KeyedHasher {
        KeyedHasher::new(&crate::crypto::MasterKey::generate())
    }

    fn record(h: &KeyedHasher, id: &str, code: &str, created: NaiveDateTime) -> OneTimeCodeRecord {
        OneTimeCodeRecord {
            id: id.into(),
            user_id: "u1".into(),
            purpose: "signin".into(),
            code_hash: hash(h, "u1", code),
            attempts: 0,
            max_attempts: 5,
            created_at: created,
            expires_at: created + Duration::minutes(10),
            consumed_at: None,
            superseded_at: None,
            requested_in: Some("tx".into()),
            requested_from: Some("ip".into()),
        }
    }

    #[test]
    fn codes_have_six_digits() {
        for _ in 0..200 {
            let c = generate();
            assert_eq!(c.len(), 6);
            assert!(c.bytes().all(|b| b.is_ascii_digit()));
        }
        assert_eq!(normalise(" 123 456 "), Some("123456".into()));
        assert_eq!(normalise("12345"), None);
        assert_eq!(normalise("12345a"), None);
    }

    #[test]
    fn the_live_code_is_accepted_and_others_are_wrong() {
        let h = hasher();
        let codes = [record(&h, "c1", "123456", t0())];
        let at = t0() + Duration::minutes(9);
        assert_eq!(
            judge(&h, &codes, "123 456", at),
            CodeVerdict::Accept("c1".into())
        );
        assert_eq!(
            judge(&h, &codes, "654321", at),
            CodeVerdict::Wrong("c1".into())
        );
        assert_eq!(
            judge(&h, &codes, "abc", at),
            CodeVerdict::Wrong("c1".into())
        );
        assert_eq!(judge(&h, &[], "123456", at), CodeVerdict::NoLiveCode);
    }

    #[test]
    fn a_code_expires_after_ten_minutes() {
        let h = hasher();
        let codes = [record(&h, "c1", "123456", t0())];
        let at = t0() + Duration::minutes(10);
        assert_eq!(judge(&h, &codes, "123456", at), CodeVerdict::Expired);
        assert_eq!(judge(&h, &codes, "000000", at), CodeVerdict::Expired);
    }

    #[test]
    fn a_used_code_says_so() {
        let h = hasher();
        let mut c = record(&h, "c1", "123456", t0());
        c.consumed_at = Some(t0() + Duration::minutes(1));
        let at = t0() + Duration::minutes(2);
        assert_eq!(judge(&h, &[c.clone()], "123456", at), CodeVerdict::Used);
        assert_eq!(judge(&h, &[c], "000000", at), CodeVerdict::NoLiveCode);
    }

    #[test]
    fn a_new_code_replaces_the_previous_one() {
        let h = hasher();
        let mut old = record(&h, "c1", "111111", t0());
        old.superseded_at = Some(t0() + Duration::minutes(1));
        let new = record(&h, "c2", "222222", t0() + Duration::minutes(1));
        let codes = [new, old];
        let at = t0() + Duration::minutes(2);
        assert_eq!(judge(&h, &codes, "111111", at), CodeVerdict::Replaced);
        assert_eq!(
            judge(&h, &codes, "222222", at),
            CodeVerdict::Accept("c2".into())
        );
    }

    #[test]
    fn a_code_dies_after_its_tries() {
        let h = hasher();
        let mut c = record(&h, "c1", "123456", t0());
        c.attempts = 5;
        let at = t0() + Duration::minutes(1);
        assert_eq!(
            judge(&h, &[c.clone()], "123456", at),
            CodeVerdict::TooManyTries
        );
        assert_eq!(judge(&h, &[c], "000000", at), CodeVerdict::TooManyTries);
    }

    #[test]
    fn resending_waits_thirty_seconds_and_allows_five_an_hour() {
        let p = CodePolicy::of(&SignInPolicy::from_settings(
            &crate::config::SignInSettings::default(),
        ));
        let now = t0();
        assert_eq!(resend_wait(&p, &[], now), None);
        assert_eq!(
            resend_wait(&p, &[now - Duration::seconds(10)], now),
            Some(Duration::seconds(20))
        );
        assert_eq!(resend_wait(&p, &[now - Duration::seconds(30)], now), None);
        let five: Vec<_> = (1..=5).map(|m| now - Duration::minutes(m * 10)).collect();
        // The oldest of the five was sent 50 minutes ago: 10 more minutes to wait.
        assert_eq!(resend_wait(&p, &five, now), Some(Duration::minutes(10)));
        let four = &five[..4];
        assert_eq!(resend_wait(&p, four, now), None);
        let stale = [now - Duration::minutes(61)];
        assert_eq!(resend_wait(&p, &stale, now), None);
    }

    #[test]
    fn each_address_has_its_own_budget_within_the_mailboxs() {
        let p = CodePolicy::of(&SignInPolicy::from_settings(
            &crate::config::SignInSettings::default(),
        ));
        let now = t0();
        let sent = |from: &str, minutes_ago: i64| SentCode {
            created_at: now - Duration::minutes(minutes_ago),
            requested_from: Some(from.into()),
        };
        // A stranger spent five sends in the last hour, 10 to 50 minutes ago.
        let mut codes: Vec<SentCode> = (1..=5).map(|m| sent("stranger", m * 10)).collect();
        assert_eq!(
            send_wait(&p, &codes, Some("stranger"), false, now),
            Some(Duration::minutes(10)),
            "the stranger waits for the oldest of their five to age"
        );
        assert_eq!(
            send_wait(&p, &codes, Some("owner"), false, now),
            None,
            "the owner, from another address, does not wait"
        );
        // An unknown address is an address of its own.
        assert_eq!(send_wait(&p, &codes, None, false, now), None);
        codes.push(SentCode {
            created_at: now - Duration::seconds(5),
            requested_from: None,
        });
        assert_eq!(
            send_wait(&p, &codes, None, false, now),
            Some(Duration::seconds(25)),
            "the interval counts that address's own last send"
        );
        // Twenty sends from many addresses fill the mailbox's hour, for everyone.
        let many: Vec<SentCode> = (0..20)
            .map(|i| sent(&format!("address-{i}"), 50 - i * 2))
            .collect();
        assert_eq!(
            send_wait(&p, &many, Some("owner"), false, now),
            Some(Duration::minutes(10)),
            "the mailbox's budget is four times an address's"
        );
        assert_eq!(send_wait(&p, &many[1..], Some("owner"), false, now), None);
        // A browser that signed in as this person is not held off by strangers...
        assert_eq!(send_wait(&p, &many, Some("owner"), true, now), None);
        // ...but keeps the limits of its own address.
        let mut own = many.clone();
        own.push(sent("owner", 0));
        assert_eq!(
            send_wait(&p, &own, Some("owner"), true, now),
            Some(Duration::seconds(30))
        );
    }
}
