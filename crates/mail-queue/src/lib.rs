//! The mail job contract shared by the identity provider (producer) and the mail worker
//! (consumer): the message type, its version, the Redis stream names, and sealing.
//!
//! A job carries what to send, never how it looks: templates live with the worker. On the
//! queue a job is sealed (XChaCha20-Poly1305 under a key the idp and the workers share), so a
//! one-time code never sits in Redis in clear and a tampered entry is refused.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Version of [`MailJob`]'s encoding. A consumer refuses jobs of another version rather than
/// guessing at their meaning.
pub const CONTRACT_VERSION: u16 = 1;

/// Job parameters that say how to reach the helpdesk every message's "contact us" means, when
/// the idp's configuration gives them (each optional; a worker that does not know them leaves
/// them out).
pub const PARAM_HELP_PHONE: &str = "help_phone";
/// See [`PARAM_HELP_PHONE`].
pub const PARAM_HELP_EMAIL: &str = "help_email";
/// See [`PARAM_HELP_PHONE`].
pub const PARAM_HELP_URL: &str = "help_url";

/// A telephone number as a `tel:` URI takes it: its `+` and digits, up to the first letter
/// (an extension written `poste 2` is left out). Pages and messages link the helpdesk's number
/// alike.
pub fn dialable(phone: &str) -> String {
    phone
        .chars()
        .take_while(|c| !c.is_alphabetic())
        .filter(|c| c.is_ascii_digit() || *c == '+')
        .collect()
}
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
    /// The helpdesk invites a member who has not activated their account yet.
    Invitation,
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

/// Stream entry field holding the sealed job.
pub const FIELD_JOB: &str = "job";
/// Stream entry field holding the job id (not secret; for logs and dead letters).
pub const FIELD_ID: &str = "id";
/// Dead-letter entry field holding the reason.
pub const FIELD_REASON: &str = "reason";
/// Associated data of every sealed job: binds the ciphertext to this contract version.
const SEAL_CONTEXT: &[u8] = b"guichet:mail:v1";
const NONCE_LEN: usize = 24;

/// The key shared by the idp and the mail workers (32 bytes, base64 in configuration).
#[derive(Clone)]
pub struct QueueKey([u8; 32]);

impl std::fmt::Debug for QueueKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("QueueKey(..)")
    }
}

impl QueueKey {
    /// Parses 32 bytes of standard or URL-safe base64.
    pub fn from_base64(text: &str) -> Result<Self, ContractError> {
        use base64::Engine;
        let text = text.trim();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text))
            .map_err(|_| ContractError::Key)?;
        <[u8; 32]>::try_from(bytes.as_slice())
            .map(Self)
            .map_err(|_| ContractError::Key)
    }

    /// A new random key, base64.
    pub fn generate_base64() -> String {
        use base64::Engine;
        use chacha20poly1305::aead::{rand_core::RngCore, OsRng};
        let mut key = [0u8; 32];
        OsRng.fill_bytes(&mut key);
        base64::engine::general_purpose::STANDARD.encode(key)
    }

    /// Seals a job for the queue: nonce, then ciphertext and tag.
    pub fn seal(&self, job: &MailJob) -> Result<Vec<u8>, ContractError> {
        use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
        use chacha20poly1305::XChaCha20Poly1305;
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let plaintext = job.to_json()?;
        let sealed = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: &plaintext,
                    aad: SEAL_CONTEXT,
                },
            )
            .map_err(|_| ContractError::Sealed)?;
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Opens and checks a sealed job; a wrong key, a flipped bit or a foreign entry fails.
    pub fn open(&self, sealed: &[u8]) -> Result<MailJob, ContractError> {
        use chacha20poly1305::aead::{Aead, KeyInit, Payload};
        use chacha20poly1305::{XChaCha20Poly1305, XNonce};
        if sealed.len() <= NONCE_LEN {
            return Err(ContractError::Sealed);
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let plaintext = XChaCha20Poly1305::new((&self.0).into())
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: SEAL_CONTEXT,
                },
            )
            .map_err(|_| ContractError::Sealed)?;
        MailJob::from_json(&plaintext)
    }
}

/// Why a job could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    #[error("the mail queue key must be 32 bytes of base64")]
    Key,
    #[error("mail job is not sealed with this queue key, or was altered")]
    Sealed,
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
    fn sealing_hides_the_code_and_refuses_tampering() {
        let key = QueueKey::from_base64(&QueueKey::generate_base64()).expect("key");
        let mut j = job();
        j.parameters.insert("code".into(), "493817".into());
        let sealed = key.seal(&j).expect("seal");
        assert!(
            !sealed.windows(6).any(|w| w == b"493817"),
            "no clear code in the entry"
        );
        assert_eq!(key.open(&sealed).expect("open"), j);
        let mut flipped = sealed.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(matches!(key.open(&flipped), Err(ContractError::Sealed)));
        let other = QueueKey::from_base64(&QueueKey::generate_base64()).expect("key");
        assert!(matches!(other.open(&sealed), Err(ContractError::Sealed)));
        assert!(matches!(key.open(b"short"), Err(ContractError::Sealed)));
        assert!(matches!(
            QueueKey::from_base64("too short"),
            Err(ContractError::Key)
        ));
        assert_ne!(
            key.seal(&j).expect("seal"),
            sealed,
            "a fresh nonce each time"
        );
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
