//! Sending mail from the idp: a job is put on the mail queue and the request goes on; a slow
//! mail server never slows a sign-in. On the embedded default the queue is in-process and
//! delivers to the development outbox (`data_dir/outbox`) through the mail worker library.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Utc};
use mail_queue::{MailJob, Template, CONTRACT_VERSION};
use mail_worker::Outbox;

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
    /// In-process delivery to the development outbox.
    Outbox(Outbox),
}

impl MailQueue {
    /// The in-process queue delivering to `data_dir/outbox`.
    pub fn outbox(data_dir: &Path) -> Result<Self, MailError> {
        Outbox::open(data_dir.join("outbox"))
            .map(Self::Outbox)
            .map_err(|e| MailError::Unavailable(e.to_string()))
    }

    /// Queues `job`. The outbox write happens on the blocking pool.
    pub async fn enqueue(&self, job: MailJob) -> Result<(), MailError> {
        match self {
            Self::Outbox(outbox) => {
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
        locale: lang.mail_locale(),
        parameters,
        created_at: Utc::now(),
        expires_at,
    }
}
