//! The mail job contract shared by the identity provider (producer) and the mail worker
//! (consumer): the message type, its version, and the Redis stream names.
//!
//! A job carries what to send, never how it looks: templates live with the worker.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Version of [`MailJob`]'s encoding. A consumer refuses jobs of another version rather than
/// guessing at their meaning.
pub const CONTRACT_VERSION: u16 = 1;
/// Redis stream the idp appends jobs to.
pub const STREAM: &str = "guichet:mail";
/// Consumer group shared by every mail worker.
pub const CONSUMER_GROUP: &str = "guichet-mail-workers";
/// Stream receiving jobs that will not be sent, with the reason.
pub const DEAD_LETTER_STREAM: &str = "guichet:mail:dead";

/// Which message to compose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Template {
    /// Six-digit sign-in code (second factor by email).
    SignInCode,
    /// Six-digit code of the first-login / forgotten-password journey.
    PasswordResetCode,
    /// Code confirming a new contact email, sent to the new address.
    EmailChangeCode,
    /// Notice to the old address that the contact email is changing.
    EmailChangeNotice,
    /// Notice that the account was locked after too many attempts.
    LockoutNotice,
    /// Confirmation of a newly created account.
    AccountConfirmation,
}

/// Language of the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Locale {
    #[serde(rename = "fr-CA")]
    FrCa,
    #[serde(rename = "en")]
    En,
}

/// One message to send.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailJob {
    pub version: u16,
    /// Unique id, also used to avoid sending the same job twice.
    pub id: String,
    pub recipient: String,
    pub template: Template,
    pub locale: Locale,
    /// Template parameters (for example `code`). May hold a one-time code: never log them.
    pub parameters: BTreeMap<String, String>,
    pub created_at: DateTime<Utc>,
    /// After this instant the message is useless (a 10-minute code) and must not be sent.
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for MailJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Parameters may hold a code and the recipient is personal data: show neither.
        f.debug_struct("MailJob")
            .field("version", &self.version)
            .field("id", &self.id)
            .field("recipient", &mask_address(&self.recipient))
            .field("template", &self.template)
            .field("locale", &self.locale)
            .field("parameters", &self.parameters.keys().collect::<Vec<_>>())
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Why a job could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    #[error("mail job is not valid JSON for this contract: {0}")]
    Malformed(#[from] serde_json::Error),
    #[error("mail job has contract version {0}, this program understands {CONTRACT_VERSION}")]
    Version(u16),
    #[error("mail job has no usable recipient")]
    Recipient,
}

impl MailJob {
    /// Whether the job is past its useful life at `now`.
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        now >= self.expires_at
    }

    /// Encodes the job for the queue.
    pub fn to_json(&self) -> Result<Vec<u8>, ContractError> {
        Ok(serde_json::to_vec(self)?)
    }

    /// Decodes and checks a job read from the queue.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ContractError> {
        let job: MailJob = serde_json::from_slice(bytes)?;
        if job.version != CONTRACT_VERSION {
            return Err(ContractError::Version(job.version));
        }
        let at = job.recipient.find('@').ok_or(ContractError::Recipient)?;
        if at == 0 || at + 1 == job.recipient.len() || job.recipient.contains(['\r', '\n']) {
            return Err(ContractError::Recipient);
        }
        Ok(job)
    }
}

/// An address fit for logs: first and last character of the local part, the domain kept
/// (`m*****y@example.org`).
pub fn mask_address(address: &str) -> String {
    match address.split_once('@') {
        Some((local, domain)) => {
            let chars: Vec<char> = local.chars().collect();
            let masked = match chars.len() {
                0 => String::new(),
                1 | 2 => "*".repeat(chars.len()),
                n => format!("{}{}{}", chars[0], "*".repeat(n - 2), chars[n - 1]),
            };
            format!("{masked}@{domain}")
        }
        None => "*".repeat(address.chars().count().min(8)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> MailJob {
        let now = Utc::now();
        MailJob {
            version: CONTRACT_VERSION,
            id: "0d4f".into(),
            recipient: "marie.tremblay@example.org".into(),
            template: Template::SignInCode,
            locale: Locale::FrCa,
            parameters: BTreeMap::from([("code".to_string(), "493817".to_string())]),
            created_at: now,
            expires_at: now + chrono::Duration::minutes(10),
        }
    }

    #[test]
    fn round_trip_and_checks() {
        let j = job();
        let bytes = j.to_json().expect("encode");
        assert!(String::from_utf8_lossy(&bytes).contains("\"fr-CA\""));
        assert_eq!(MailJob::from_json(&bytes).expect("decode"), j);

        let mut other = j.clone();
        other.version = 2;
        assert!(matches!(
            MailJob::from_json(&other.to_json().expect("encode")),
            Err(ContractError::Version(2))
        ));
        for bad in ["nobody", "@example.org", "a@", "a@b\r\nBcc: x@y"] {
            let mut b = j.clone();
            b.recipient = bad.into();
            assert!(
                matches!(
                    MailJob::from_json(&b.to_json().expect("encode")),
                    Err(ContractError::Recipient)
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            MailJob::from_json(b"{not json"),
            Err(ContractError::Malformed(_))
        ));
    }

    #[test]
    fn expiry() {
        let j = job();
        assert!(!j.is_expired(j.created_at));
        assert!(j.is_expired(j.expires_at));
    }

    #[test]
    fn debug_hides_code_and_address() {
        let shown = format!("{:?}", job());
        assert!(!shown.contains("493817"), "{shown}");
        assert!(!shown.contains("marie.tremblay"), "{shown}");
        assert!(shown.contains("m************y@example.org"), "{shown}");
    }

    #[test]
    fn masking() {
        assert_eq!(mask_address("ab@x.org"), "**@x.org");
        assert_eq!(
            mask_address("50143904@50143904.com"),
            "5******4@50143904.com"
        );
        assert_eq!(mask_address("no-at-sign"), "********");
    }
}
