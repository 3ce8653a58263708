//! The worker's configuration: one typed struct, from an optional TOML file
//! (`GUICHET_WORKER_CONFIG`) then `GUICHET_WORKER_*` variables (nested keys with `__`:
//! `GUICHET_WORKER_SMTP__HOST`), checked at start with errors that name the key.

use std::time::Duration;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// No TLS: a trusted relay on the same host or network only.
    Plain,
    /// Plain connection upgraded with STARTTLS (required).
    Starttls,
    /// TLS from the first byte (SMTPS, usually port 465).
    Tls,
}

/// The SMTP server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Connect and command timeout, in seconds.
    pub timeout_secs: u64,
    /// The `From` address, for example `Guichet <no-reply@example.org>`.
    pub from: String,
}

impl Default for SmtpSettings {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 25,
            security: SmtpSecurity::Plain,
            username: None,
            password: None,
            timeout_secs: 10,
            from: "Guichet <no-reply@localhost>".into(),
        }
    }
}

/// Every setting of the worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerSettings {
    pub redis_url: String,
    /// The key shared with the idp (32 bytes, base64): jobs are sealed with it.
    pub queue_key: Option<String>,
    /// This worker's name in the consumer group; defaults to host name and process id.
    pub consumer: Option<String>,
    /// Jobs read at once.
    pub batch_size: usize,
    /// How long one read waits for new jobs, in milliseconds.
    pub block_ms: u64,
    /// A job pending this long with another worker (crashed) is taken over, in milliseconds.
    pub claim_idle_ms: u64,
    /// First retry delay after a transient SMTP failure, in milliseconds; doubles each time.
    pub retry_initial_ms: u64,
    /// Longest retry delay, in milliseconds.
    pub retry_max_ms: u64,
    /// Address of the Prometheus metrics endpoint (`GET /metrics`); none when unset.
    pub metrics_bind: Option<String>,
    /// `text` or `json` logs.
    pub log_format: String,
    pub log_level: String,
    pub smtp: SmtpSettings,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            redis_url: "redis://127.0.0.1:6379".into(),
            queue_key: None,
            consumer: None,
            batch_size: 16,
            block_ms: 2_000,
            claim_idle_ms: 60_000,
            retry_initial_ms: 500,
            retry_max_ms: 30_000,
            metrics_bind: None,
            log_format: "text".into(),
            log_level: "info".into(),
            smtp: SmtpSettings::default(),
        }
    }
}

/// A setting that cannot be used, named.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("configuration: {0}")]
    Load(String),
    #[error("configuration key `{key}` (environment {env}): {message}")]
    Invalid {
        key: &'static str,
        env: String,
        message: String,
    },
}

/// Whether `filter` is a log filter that `tracing` reads as it is meant: one that parses, and
/// in which every bare word is a level. `tracing` takes any other bare word (`verbose`,
/// `warning`) for a target name, which would log that target alone and silence the rest. The
/// idp checks its own `log_level` with this too.
pub fn log_filter_reads_as_meant(filter: &str) -> bool {
    !filter.trim().is_empty()
        && tracing_subscriber::EnvFilter::try_new(filter).is_ok()
        && filter
            .split(',')
            .map(str::trim)
            .filter(|directive| !directive.is_empty())
            .all(|directive| {
                directive.contains('=')
                    || directive.contains('[')
                    || directive
                        .parse::<tracing_subscriber::filter::LevelFilter>()
                        .is_ok()
            })
}

fn invalid(key: &'static str, message: impl Into<String>) -> SettingsError {
    SettingsError::Invalid {
        key,
        env: format!("GUICHET_WORKER_{}", key.replace('.', "__").to_uppercase()),
        message: message.into(),
    }
}

impl WorkerSettings {
    /// Defaults, then the file named by `GUICHET_WORKER_CONFIG` (if any), then the environment.
    pub fn load() -> Result<Self, SettingsError> {
        let mut figment = Figment::from(Serialized::defaults(Self::default()));
        if let Ok(path) = std::env::var("GUICHET_WORKER_CONFIG") {
            figment = figment.merge(Toml::file_exact(path));
        }
        let settings: Self = figment
            .merge(
                Env::prefixed("GUICHET_WORKER_")
                    .ignore(&["config"])
                    .split("__"),
            )
            .extract()
            .map_err(|e| SettingsError::Load(e.to_string()))?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks values that parse but cannot work.
    pub fn validate(&self) -> Result<(), SettingsError> {
        match &self.queue_key {
            None => return Err(invalid("queue_key", "required: the idp's mail.queue_key")),
            Some(key) => {
                mail_queue::QueueKey::from_base64(key)
                    .map_err(|e| invalid("queue_key", e.to_string()))?;
            }
        }
        if !self.redis_url.starts_with("redis://") && !self.redis_url.starts_with("rediss://") {
            return Err(invalid("redis_url", "use redis:// or rediss://"));
        }
        if !(1..=1000).contains(&self.batch_size) {
            return Err(invalid("batch_size", "must be between 1 and 1000"));
        }
        if self.retry_initial_ms == 0 || self.retry_max_ms < self.retry_initial_ms {
            return Err(invalid(
                "retry_max_ms",
                "retry delays must be positive and retry_max_ms at least retry_initial_ms",
            ));
        }
        if self.claim_idle_ms <= self.retry_max_ms {
            return Err(invalid(
                "claim_idle_ms",
                "must exceed retry_max_ms, or live workers would lose jobs they are retrying",
            ));
        }
        if self.smtp.host.trim().is_empty() {
            return Err(invalid("smtp.host", "required"));
        }
        if self.smtp.from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(invalid(
                "smtp.from",
                "not a mailbox such as `Guichet <no-reply@example.org>`",
            ));
        }
        if self.smtp.username.is_some() != self.smtp.password.is_some() {
            return Err(invalid(
                "smtp.password",
                "username and password go together",
            ));
        }
        if self.log_format != "text" && self.log_format != "json" {
            return Err(invalid("log_format", "use `text` or `json`"));
        }
        if !log_filter_reads_as_meant(&self.log_level) {
            return Err(invalid(
                "log_level",
                "not a log filter such as `info` or `mail_worker=debug,info` \
                 (levels: error, warn, info, debug, trace, off)",
            ));
        }
        if let Some(bind) = &self.metrics_bind {
            bind.parse::<std::net::SocketAddr>()
                .map_err(|e| invalid("metrics_bind", e.to_string()))?;
        }
        Ok(())
    }

    /// The parsed queue key (checked by `validate`).
    pub fn key(&self) -> Result<mail_queue::QueueKey, SettingsError> {
        mail_queue::QueueKey::from_base64(self.queue_key.as_deref().unwrap_or_default())
            .map_err(|e| invalid("queue_key", e.to_string()))
    }

    /// The consumer name: configured, else host name and process id.
    pub fn consumer_name(&self) -> String {
        self.consumer.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/etc/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_else(|_| "worker".into());
            format!("{host}-{}", std::process::id())
        })
    }

    pub fn block(&self) -> Duration {
        Duration::from_millis(self.block_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> WorkerSettings {
        WorkerSettings {
            queue_key: Some(mail_queue::QueueKey::generate_base64()),
            ..WorkerSettings::default()
        }
    }

    #[test]
    fn defaults_with_a_key_are_valid() {
        assert!(valid().validate().is_ok());
    }

    #[test]
    fn errors_name_the_key_and_its_variable() {
        let err = WorkerSettings::default().validate().expect_err("no key");
        assert!(
            err.to_string().contains("GUICHET_WORKER_QUEUE_KEY"),
            "{err}"
        );
        let mut s = valid();
        s.smtp.from = "not a mailbox".into();
        let err = s.validate().expect_err("from");
        assert!(
            err.to_string().contains("GUICHET_WORKER_SMTP__FROM"),
            "{err}"
        );
        let mut s = valid();
        s.claim_idle_ms = 1_000;
        assert!(s.validate().is_err());
        let mut s = valid();
        s.smtp.username = Some("u".into());
        assert!(s.validate().is_err());
    }

    #[test]
    fn a_log_filter_is_read_as_meant_when_its_bare_words_are_levels() {
        for good in [
            "info",
            "WARN",
            "off",
            "idp=debug,info",
            "idp=trace,actix_web=warn",
        ] {
            assert!(log_filter_reads_as_meant(good), "{good}");
        }
        for bad in ["", " ", "verbose", "warning", "info,verbose", "idp=loud"] {
            assert!(!log_filter_reads_as_meant(bad), "{bad}");
        }
    }

    #[test]
    fn log_settings_that_would_not_log_as_meant_are_refused() {
        for good in ["info", "off", "mail_worker=debug,info"] {
            let s = WorkerSettings {
                log_level: good.into(),
                ..valid()
            };
            assert!(s.validate().is_ok(), "{good}");
        }
        for bad in ["", "verbose", "warning", "info,verbose"] {
            let s = WorkerSettings {
                log_level: bad.into(),
                ..valid()
            };
            let err = s.validate().expect_err(bad).to_string();
            assert!(err.contains("GUICHET_WORKER_LOG_LEVEL"), "{bad}: {err}");
        }
        let s = WorkerSettings {
            log_format: "jsn".into(),
            ..valid()
        };
        let err = s.validate().expect_err("jsn").to_string();
        assert!(err.contains("GUICHET_WORKER_LOG_FORMAT"), "{err}");
    }
}
