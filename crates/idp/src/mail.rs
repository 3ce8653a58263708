//! Sending mail from the idp: a job is put on the mail queue and the request goes on; a slow
//! mail server never slows a sign-in. In production the queue is a Redis stream (jobs sealed
//! with the key shared with `mail-worker`); on the embedded default it is in-process and
//! delivers to the development outbox (`data_dir/outbox`) through the mail worker library.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Utc};
use mail_queue::{MailJob, QueueKey, Template, CONTRACT_VERSION, FIELD_ID, FIELD_JOB, STREAM};
use mail_worker::Outbox;
use tokio::sync::OnceCell;

/// The longest an enqueue may take before the person is told to try again.
const ENQUEUE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

use crate::i18n::Lang;

/// Why a job could not be queued. The person is told to try again in a moment.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("mail delivery is unavailable: {0}")]
    Unavailable(String),
}

/// Where mail jobs go.
#[derive(Debug, Clone)]
pub enum MailQueue {
    /// In-process delivery to the development outbox; with `echo` (development mode), each
    /// message is also printed on the console.
    Outbox { outbox: Outbox, echo: bool },
    /// The Redis stream read by `mail-worker`.
    Redis(std::sync::Arc<RedisQueue>),
}

/// The Redis side: a connection made at first use (Redis may start after the idp) and kept.
pub struct RedisQueue {
    client: redis::Client,
    connection: OnceCell<redis::aio::ConnectionManager>,
    key: QueueKey,
    max_len: usize,
}

impl std::fmt::Debug for RedisQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisQueue")
            .field("max_len", &self.max_len)
            .finish_non_exhaustive()
    }
}

impl RedisQueue {
    async fn append(&self, job: &MailJob) -> Result<(), MailError> {
        let unavailable = |e: &dyn std::fmt::Display| MailError::Unavailable(e.to_string());
        let sealed = self.key.seal(job).map_err(|e| unavailable(&e))?;
        let connection = self
            .connection
            .get_or_try_init(|| async {
                let config = redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(ENQUEUE_TIMEOUT))
                    .set_response_timeout(Some(ENQUEUE_TIMEOUT));
                redis::aio::ConnectionManager::new_with_config(self.client.clone(), config).await
            })
            .await
            .map_err(|e| unavailable(&e))?;
        let mut connection = connection.clone();
        let added: redis::RedisResult<redis::Value> = redis::cmd("XADD")
            .arg(STREAM)
            .arg("MAXLEN")
            .arg("~")
            .arg(self.max_len)
            .arg("*")
            .arg(FIELD_ID)
            .arg(&job.id)
            .arg(FIELD_JOB)
            .arg(sealed)
            .query_async(&mut connection)
            .await;
        added.map(|_| ()).map_err(|e| unavailable(&e))
    }
}

impl MailQueue {
    /// The in-process queue delivering to `data_dir/outbox`; `echo` prints every message on
    /// the console too (development mode only: a code on a console is fine on a laptop).
    pub fn outbox(data_dir: &Path, echo: bool) -> Result<Self, MailError> {
        Outbox::open(data_dir.join("outbox"))
            .map(|outbox| Self::Outbox { outbox, echo })
            .map_err(|e| MailError::Unavailable(e.to_string()))
    }

    /// The development outbox's messages, newest first; `None` when mail goes to Redis.
    pub async fn outbox_messages(&self) -> Option<Result<Vec<MailJob>, MailError>> {
        let Self::Outbox { outbox, .. } = self else {
            return None;
        };
        let outbox = outbox.clone();
        Some(
            tokio::task::spawn_blocking(move || outbox.messages())
                .await
                .map_err(|e| MailError::Unavailable(e.to_string()))
                .and_then(|r| r.map_err(|e| MailError::Unavailable(e.to_string())))
                .map(|mut m| {
                    m.reverse();
                    m
                }),
        )
    }

    /// The Redis stream at `client`, sealing with `key`, keeping about `max_len` jobs.
    pub fn redis(client: redis::Client, key: QueueKey, max_len: usize) -> Self {
        Self::Redis(std::sync::Arc::new(RedisQueue {
            client,
            connection: OnceCell::new(),
            key,
            max_len,
        }))
    }

    /// Queues `job`, within two seconds or not at all. The outbox write happens on the
    /// blocking pool.
    pub async fn enqueue(&self, mut job: MailJob) -> Result<(), MailError> {
        // How to reach the helpdesk every message's "contact us" means, for the worker to say.
        if let Some(help) = crate::config::help_contact() {
            for (name, value) in [
                (mail_queue::PARAM_HELP_PHONE, &help.phone),
                (mail_queue::PARAM_HELP_EMAIL, &help.email),
                (mail_queue::PARAM_HELP_URL, &help.url),
            ] {
                if let Some(value) = value {
                    job.parameters.insert(name.to_string(), value.clone());
                }
            }
        }
        match self {
            Self::Redis(queue) => tokio::time::timeout(ENQUEUE_TIMEOUT, queue.append(&job))
                .await
                .map_err(|_| MailError::Unavailable("Redis did not answer in time".into()))?,
            Self::Outbox { outbox, echo } => {
                if *echo {
                    if let Ok(composed) = mail_worker::compose::compose(&job) {
                        println!(
                            "[dev outbox] to {}: {}\n{}",
                            job.recipient, composed.subject, composed.text
                        );
                    }
                }
                let outbox = outbox.clone();
                tokio::task::spawn_blocking(move || outbox.deliver(&job, Utc::now()))
                    .await
                    .map_err(|e| MailError::Unavailable(e.to_string()))?
                    .map(|_| ())
                    .map_err(|e| MailError::Unavailable(e.to_string()))
            }
        }
    }
}

/// A notice for `recipient` (no code), pointing to `link` when given; kept a day in the queue.
pub fn notice_job(template: Template, recipient: &str, lang: Lang, link: Option<&str>) -> MailJob {
    let mut parameters = BTreeMap::new();
    if let Some(link) = link {
        parameters.insert("link".to_string(), link.to_string());
    }
    MailJob {
        version: CONTRACT_VERSION,
        id: uuid::Uuid::new_v4().to_string(),
        recipient: recipient.to_string(),
        template,
        locale: crate::i18n::mail_locale(lang),
        parameters,
        created_at: Utc::now(),
        expires_at: Utc::now() + chrono::Duration::days(1),
    }
}

/// A one-time code message for `recipient`, useless after `expires_at`.
pub fn code_job(
    template: Template,
    recipient: &str,
    lang: Lang,
    code: &str,
    expires_at: DateTime<Utc>,
) -> MailJob {
    let mut parameters = BTreeMap::new();
    parameters.insert("code".to_string(), code.to_string());
    parameters.insert(
        "valid_minutes".to_string(),
        (((expires_at - Utc::now()).num_seconds().max(0) + 59) / 60)
            .min(60)
            .to_string(),
    );
    MailJob {
        version: CONTRACT_VERSION,
        id: uuid::Uuid::new_v4().to_string(),
        recipient: recipient.to_string(),
        template,
        locale: crate::i18n::mail_locale(lang),
        parameters,
        created_at: Utc::now(),
        expires_at,
    }
}
