//! The consumer-group loop: read sealed jobs with `XREADGROUP`, take over jobs a crashed worker
//! left pending with `XAUTOCLAIM`, send each over SMTP, and `XACK` only once the server accepted
//! it. Expired jobs, refused messages and entries that do not open go to the dead-letter stream
//! with the reason. Several workers may run on one group: each job is delivered to one of them.

use std::collections::HashMap;
use std::time::Duration;

use chrono::Utc;
use mail_queue::{
    mask_address, MailJob, QueueKey, CONSUMER_GROUP, DEAD_LETTER_STREAM, FIELD_ID, FIELD_JOB,
    FIELD_REASON, STREAM,
};
use rand::Rng;
use redis::aio::ConnectionManager;
use redis::Value;
use tokio::sync::watch;

use crate::compose::compose;
use crate::metrics::Metrics;
use crate::settings::WorkerSettings;
use crate::smtp::{SendError, Smtp};

/// Dead letters kept (approximately).
const DEAD_LETTER_MAX_LEN: usize = 10_000;
/// How long a "sent" marker is kept: longer than any job lives.
const SENT_MARKER_SECS: u64 = 86_400;

/// One stream entry.
#[derive(Debug, Clone)]
pub struct Entry {
    pub id: String,
    pub fields: HashMap<String, Vec<u8>>,
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

fn bytes(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::BulkString(b) => Some(b.clone()),
        Value::SimpleString(s) => Some(s.clone().into_bytes()),
        _ => None,
    }
}

/// `[[id, [field, value, ...]], ...]`; an entry deleted meanwhile has no fields.
fn parse_entry_list(v: &Value) -> Vec<Entry> {
    let Value::Array(items) = v else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| {
            let Value::Array(pair) = item else {
                return None;
            };
            let id = text(pair.first()?)?;
            let mut fields = HashMap::new();
            if let Some(Value::Array(kv)) = pair.get(1) {
                for chunk in kv.chunks(2) {
                    if let (Some(k), Some(v)) = (chunk.first().and_then(text), chunk.get(1)) {
                        if let Some(v) = bytes(v) {
                            fields.insert(k, v);
                        }
                    }
                }
            }
            Some(Entry { id, fields })
        })
        .collect()
}

/// The entries of an `XREADGROUP` reply for one stream.
pub fn parse_read_reply(v: &Value) -> Vec<Entry> {
    match v {
        Value::Array(streams) => streams
            .iter()
            .flat_map(|s| match s {
                Value::Array(pair) => pair.get(1).map(parse_entry_list).unwrap_or_default(),
                _ => Vec::new(),
            })
            .collect(),
        Value::Map(streams) => streams
            .iter()
            .flat_map(|(_, entries)| parse_entry_list(entries))
            .collect(),
        _ => Vec::new(),
    }
}

/// The worker: Redis, the key, SMTP, settings and counters. Cheap to clone: each job of a
/// batch is handled by its own clone, concurrently.
#[derive(Clone)]
pub struct Consumer {
    redis: ConnectionManager,
    key: QueueKey,
    smtp: Smtp,
    settings: WorkerSettings,
    name: String,
    metrics: Metrics,
}

/// The delay before retry `attempt` (1-based): doubling from `initial`, capped at `max`, with
/// jitter (between half and all of it) so workers do not retry in step.
pub fn backoff(attempt: u32, initial: Duration, max: Duration) -> Duration {
    let doubled = initial.saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
    let capped = doubled.min(max);
    let half = capped / 2;
    half + capped.mul_f64(rand::thread_rng().gen_range(0.0..0.5))
}

impl Consumer {
    pub fn new(
        redis: ConnectionManager,
        key: QueueKey,
        smtp: Smtp,
        settings: WorkerSettings,
        metrics: Metrics,
    ) -> Self {
        let name = settings.consumer_name();
        Self {
            redis,
            key,
            smtp,
            settings,
            name,
            metrics,
        }
    }

    /// Creates the consumer group (and the stream) if missing.
    pub async fn ensure_group(&mut self) -> redis::RedisResult<()> {
        let created: redis::RedisResult<Value> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(STREAM)
            .arg(CONSUMER_GROUP)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut self.redis)
            .await;
        match created {
            Err(e) if e.to_string().contains("BUSYGROUP") => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// Runs until `shutdown` turns true; the job in flight is finished first.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let mut last_lag = std::time::Instant::now() - Duration::from_secs(60);
        while !*shutdown.borrow() {
            if let Err(e) = self.round(&shutdown).await {
                let message = e.to_string();
                tracing::warn!(error = %message, "mail queue unavailable; retrying");
                if message.contains("NOGROUP") {
                    let _ = self.ensure_group().await;
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = shutdown.changed() => {}
                }
            }
            if last_lag.elapsed() > Duration::from_secs(5) {
                last_lag = std::time::Instant::now();
                if let Ok(lag) = self.lag().await {
                    self.metrics.set_lag(lag);
                }
            }
        }
        tracing::info!(consumer = %self.name, "mail worker stopped");
    }

    /// One round: take over abandoned jobs, then read new ones.
    async fn round(&mut self, shutdown: &watch::Receiver<bool>) -> redis::RedisResult<()> {
        let claimed: Value = redis::cmd("XAUTOCLAIM")
            .arg(STREAM)
            .arg(CONSUMER_GROUP)
            .arg(&self.name)
            .arg(self.settings.claim_idle_ms)
            .arg("0-0")
            .arg("COUNT")
            .arg(self.settings.batch_size)
            .query_async(&mut self.redis)
            .await?;
        let reclaimed = match &claimed {
            Value::Array(parts) => parts.get(1).map(parse_entry_list).unwrap_or_default(),
            _ => Vec::new(),
        };
        for entry in &reclaimed {
            tracing::info!(entry = %entry.id, "took over a job left pending");
        }
        self.handle_all(reclaimed, shutdown).await;
        let read: Value = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(CONSUMER_GROUP)
            .arg(&self.name)
            .arg("COUNT")
            .arg(self.settings.batch_size)
            .arg("BLOCK")
            .arg(self.settings.block_ms)
            .arg("STREAMS")
            .arg(STREAM)
            .arg(">")
            .query_async(&mut self.redis)
            .await?;
        self.handle_all(parse_read_reply(&read), shutdown).await;
        Ok(())
    }

    /// Handles a batch concurrently (one SMTP connection each, from lettre's pool) and waits
    /// for all of it: a slow message does not hold up the others.
    async fn handle_all(&self, entries: Vec<Entry>, shutdown: &watch::Receiver<bool>) {
        let mut tasks = tokio::task::JoinSet::new();
        for entry in entries {
            if *shutdown.borrow() {
                // Read but not started: left pending, another worker takes it over.
                break;
            }
            let mut handler = self.clone();
            let shutdown = shutdown.clone();
            tasks.spawn(async move { handler.handle(entry, &shutdown).await });
        }
        while let Some(done) = tasks.join_next().await {
            if let Err(e) = done {
                tracing::error!(error = %e, "a delivery task failed");
            }
        }
    }

    async fn lag(&mut self) -> redis::RedisResult<u64> {
        let groups: Value = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(STREAM)
            .query_async(&mut self.redis)
            .await?;
        let Value::Array(groups) = groups else {
            return Ok(0);
        };
        for group in groups {
            let fields: Vec<(String, Value)> = match group {
                Value::Array(kv) => kv
                    .chunks(2)
                    .filter_map(|c| Some((text(c.first()?)?, c.get(1)?.clone())))
                    .collect(),
                Value::Map(kv) => kv
                    .into_iter()
                    .filter_map(|(k, v)| Some((text(&k)?, v)))
                    .collect(),
                _ => continue,
            };
            let named = fields
                .iter()
                .any(|(k, v)| k == "name" && text(v).as_deref() == Some(CONSUMER_GROUP));
            if named {
                if let Some((_, Value::Int(lag))) = fields.iter().find(|(k, _)| k == "lag") {
                    return Ok(u64::try_from(*lag).unwrap_or(0));
                }
            }
        }
        Ok(0)
    }

    /// Sends one entry, retrying transient failures until the job expires.
    async fn handle(&mut self, entry: Entry, shutdown: &watch::Receiver<bool>) {
        let job_id = entry
            .fields
            .get(FIELD_ID)
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default();
        let Some(sealed) = entry.fields.get(FIELD_JOB).cloned() else {
            self.dead_letter(&entry, &job_id, &[], "malformed: the entry has no job")
                .await;
            return;
        };
        let job = match self.key.open(&sealed) {
            Ok(job) => job,
            Err(e) => {
                self.dead_letter(&entry, &job_id, &sealed, &format!("malformed: {e}"))
                    .await;
                return;
            }
        };
        if self.already_sent(&job).await {
            tracing::info!(job = %job.id, "already sent; acknowledging");
            self.ack(&entry).await;
            return;
        }
        if job.is_expired(Utc::now()) {
            self.dead_letter(&entry, &job.id, &sealed, "expired before it could be sent")
                .await;
            return;
        }
        let composed = match compose(&job) {
            Ok(c) => c,
            Err(e) => {
                self.dead_letter(&entry, &job.id, &sealed, &format!("template: {e}"))
                    .await;
                return;
            }
        };
        let initial = Duration::from_millis(self.settings.retry_initial_ms);
        let max = Duration::from_millis(self.settings.retry_max_ms);
        let mut attempt = 0u32;
        loop {
            let result = self.smtp.send(&job, &composed).await;
            match result {
                Ok(()) => {
                    self.mark_sent(&job).await;
                    self.ack(&entry).await;
                    let latency = (Utc::now() - job.created_at).to_std().unwrap_or_default();
                    self.metrics.sent(latency);
                    tracing::info!(
                        job = %job.id,
                        to = %mask_address(&job.recipient),
                        template = ?job.template,
                        latency_ms = latency.as_millis() as u64,
                        attempts = attempt + 1,
                        "mail sent"
                    );
                    return;
                }
                Err(SendError::Permanent(reason)) => {
                    self.dead_letter(&entry, &job.id, &sealed, &format!("rejected: {reason}"))
                        .await;
                    return;
                }
                Err(SendError::Transient(reason)) => {
                    attempt += 1;
                    self.metrics.retried();
                    let delay = backoff(attempt, initial, max);
                    let retry_at = Utc::now()
                        + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::zero());
                    if retry_at >= job.expires_at {
                        self.dead_letter(
                            &entry,
                            &job.id,
                            &sealed,
                            &format!("expired after {attempt} attempts: {reason}"),
                        )
                        .await;
                        return;
                    }
                    if *shutdown.borrow() {
                        // Left pending: whoever runs next takes it over.
                        return;
                    }
                    tracing::warn!(
                        job = %job.id,
                        attempt,
                        delay_ms = delay.as_millis() as u64,
                        error = %reason,
                        "send failed; will retry"
                    );
                    self.touch(&entry).await;
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    /// Resets the entry's idle time so no other worker takes over a job being retried.
    async fn touch(&mut self, entry: &Entry) {
        let _: redis::RedisResult<Value> = redis::cmd("XCLAIM")
            .arg(STREAM)
            .arg(CONSUMER_GROUP)
            .arg(&self.name)
            .arg(0)
            .arg(&entry.id)
            .arg("JUSTID")
            .query_async(&mut self.redis)
            .await;
    }

    async fn ack(&mut self, entry: &Entry) {
        let acked: redis::RedisResult<i64> = redis::cmd("XACK")
            .arg(STREAM)
            .arg(CONSUMER_GROUP)
            .arg(&entry.id)
            .query_async(&mut self.redis)
            .await;
        if let Err(e) = acked {
            // Stays pending; the sent marker keeps a takeover from sending it twice.
            tracing::warn!(entry = %entry.id, error = %e, "could not acknowledge");
        }
    }

    fn sent_marker(job: &MailJob) -> String {
        format!("{STREAM}:sent:{}", job.id)
    }

    async fn already_sent(&mut self, job: &MailJob) -> bool {
        redis::cmd("EXISTS")
            .arg(Self::sent_marker(job))
            .query_async::<i64>(&mut self.redis)
            .await
            .is_ok_and(|n| n > 0)
    }

    async fn mark_sent(&mut self, job: &MailJob) {
        let _: redis::RedisResult<Value> = redis::cmd("SET")
            .arg(Self::sent_marker(job))
            .arg(1)
            .arg("EX")
            .arg(SENT_MARKER_SECS)
            .query_async(&mut self.redis)
            .await;
    }

    /// Moves the entry to the dead-letter stream with `reason` (the job stays sealed), then
    /// acknowledges it.
    async fn dead_letter(&mut self, entry: &Entry, job_id: &str, sealed: &[u8], reason: &str) {
        let added: redis::RedisResult<Value> = redis::cmd("XADD")
            .arg(DEAD_LETTER_STREAM)
            .arg("MAXLEN")
            .arg("~")
            .arg(DEAD_LETTER_MAX_LEN)
            .arg("*")
            .arg(FIELD_ID)
            .arg(job_id)
            .arg(FIELD_REASON)
            .arg(reason)
            .arg("entry")
            .arg(&entry.id)
            .arg(FIELD_JOB)
            .arg(sealed)
            .query_async(&mut self.redis)
            .await;
        match added {
            Ok(_) => {
                self.metrics.dead_lettered();
                tracing::warn!(job = %job_id, entry = %entry.id, reason, "job dead-lettered");
                self.ack(entry).await;
            }
            Err(e) => tracing::warn!(entry = %entry.id, error = %e, "could not dead-letter"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter() {
        let initial = Duration::from_millis(500);
        let max = Duration::from_secs(30);
        for _ in 0..100 {
            let first = backoff(1, initial, max);
            assert!(
                first >= Duration::from_millis(250) && first <= initial,
                "{first:?}"
            );
            let third = backoff(3, initial, max);
            assert!(third >= Duration::from_secs(1) && third <= Duration::from_secs(2));
            let late = backoff(30, initial, max);
            assert!(late >= Duration::from_secs(15) && late <= max, "{late:?}");
        }
    }

    #[test]
    fn read_replies_are_parsed_in_both_protocols() {
        let entry = Value::Array(vec![
            Value::BulkString(b"1-0".to_vec()),
            Value::Array(vec![
                Value::BulkString(b"id".to_vec()),
                Value::BulkString(b"j1".to_vec()),
                Value::BulkString(b"job".to_vec()),
                Value::BulkString(vec![0, 159, 146, 150]),
            ]),
        ]);
        let resp2 = Value::Array(vec![Value::Array(vec![
            Value::BulkString(b"guichet:mail".to_vec()),
            Value::Array(vec![entry.clone()]),
        ])]);
        let resp3 = Value::Map(vec![(
            Value::BulkString(b"guichet:mail".to_vec()),
            Value::Array(vec![entry]),
        )]);
        for reply in [resp2, resp3] {
            let entries = parse_read_reply(&reply);
            assert_eq!(entries.len(), 1);
            assert_eq!(entries[0].id, "1-0");
            assert_eq!(entries[0].fields["job"], vec![0, 159, 146, 150]);
        }
        assert!(parse_read_reply(&Value::Nil).is_empty());
    }
}
