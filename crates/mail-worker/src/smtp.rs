//! Sending over SMTP with lettre: plain, STARTTLS or TLS, optional authentication, timeouts.
//! Failures are sorted into permanent (the server refused the message: 5xx) and transient
//! (anything else: retry).

use std::time::Duration;

use lettre::message::header::{Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use mail_queue::{Locale, MailJob};

use crate::compose::Composed;
use crate::settings::{SmtpSecurity, SmtpSettings};

/// What a send attempt says.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The server refused for good (5xx) or the message cannot be built.
    #[error("permanent: {0}")]
    Permanent(String),
    /// Try again later.
    #[error("transient: {0}")]
    Transient(String),
}

/// The `Content-Language` header.
#[derive(Debug, Clone)]
struct ContentLanguage(String);

impl Header for ContentLanguage {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Content-Language")
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self(s.to_string()))
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

/// An SMTP relay.
#[derive(Clone)]
pub struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Smtp {
    /// A transport for `settings`, keeping up to `connections` connections open (one per job
    /// sent at once).
    pub fn new(settings: &SmtpSettings, connections: u32) -> Result<Self, SendError> {
        let builder = match settings.security {
            SmtpSecurity::Plain => {
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&settings.host)
            }
            SmtpSecurity::Starttls => {
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&settings.host)
                    .map_err(|e| SendError::Permanent(e.to_string()))?
            }
            SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&settings.host)
                .map_err(|e| SendError::Permanent(e.to_string()))?,
        };
        let mut builder = builder
            .pool_config(lettre::transport::smtp::PoolConfig::new().max_size(connections.max(1)))
            .port(settings.port)
            .timeout(Some(Duration::from_secs(settings.timeout_secs)));
        if let (Some(user), Some(password)) = (&settings.username, &settings.password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        let from = settings
            .from
            .parse()
            .map_err(|e: lettre::address::AddressError| SendError::Permanent(e.to_string()))?;
        Ok(Self {
            transport: builder.build(),
            from,
        })
    }

    /// Sends one composed job; the job id becomes the Message-ID, so a receiving system can
    /// recognise a duplicate.
    pub async fn send(&self, job: &MailJob, composed: &Composed) -> Result<(), SendError> {
        let to: Mailbox = job
            .recipient
            .parse()
            .map_err(|e: lettre::address::AddressError| SendError::Permanent(e.to_string()))?;
        let lang = match job.locale {
            Locale::FrCa => "fr-CA",
            Locale::En => "en",
        };
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(composed.subject.clone())
            .message_id(Some(format!("<{}@guichet>", job.id)))
            .header(ContentLanguage(lang.into()))
            .multipart(MultiPart::alternative_plain_html(
                composed.text.clone(),
                composed.html.clone(),
            ))
            .map_err(|e| SendError::Permanent(e.to_string()))?;
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(SendError::Permanent(e.to_string())),
            Err(e) => Err(SendError::Transient(e.to_string())),
        }
    }
}
