//! Counters for Prometheus: sent, retried, dead-lettered, send latency (from enqueue to the SMTP
//! server's acceptance) and queue lag, served as text at `GET /metrics`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 10] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// The worker's counters; cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub struct Metrics(Arc<Inner>);

#[derive(Debug, Default)]
struct Inner {
    sent: AtomicU64,
    retried: AtomicU64,
    dead_lettered: AtomicU64,
    lag: AtomicU64,
    buckets: [AtomicU64; BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_micros: AtomicU64,
}

impl Metrics {
    pub fn sent(&self, latency: std::time::Duration) {
        self.0.sent.fetch_add(1, Ordering::Relaxed);
        let secs = latency.as_secs_f64();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                self.0.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.0.latency_count.fetch_add(1, Ordering::Relaxed);
        self.0.latency_sum_micros.fetch_add(
            u64::try_from(latency.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    pub fn retried(&self) {
        self.0.retried.fetch_add(1, Ordering::Relaxed);
    }

    pub fn dead_lettered(&self) {
        self.0.dead_lettered.fetch_add(1, Ordering::Relaxed);
    }

    pub fn set_lag(&self, lag: u64) {
        self.0.lag.store(lag, Ordering::Relaxed);
    }

    /// Jobs sent so far.
    pub fn sent_count(&self) -> u64 {
        self.0.sent.load(Ordering::Relaxed)
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let i = &self.0;
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, kind: &str, value: u64| {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
            ));
        };
        counter(
            "guichet_mail_sent_total",
            "Messages accepted by the SMTP server.",
            "counter",
            i.sent.load(Ordering::Relaxed),
        );
        counter(
            "guichet_mail_retried_total",
            "Send attempts that failed transiently and were retried.",
            "counter",
            i.retried.load(Ordering::Relaxed),
        );
        counter(
            "guichet_mail_dead_lettered_total",
            "Jobs moved to the dead-letter stream (expired, rejected, malformed).",
            "counter",
            i.dead_lettered.load(Ordering::Relaxed),
        );
        counter(
            "guichet_mail_queue_lag",
            "Jobs in the stream not yet read by the consumer group.",
            "gauge",
            i.lag.load(Ordering::Relaxed),
        );
        out.push_str(
            "# HELP guichet_mail_send_latency_seconds From enqueue to SMTP acceptance.\n\
             # TYPE guichet_mail_send_latency_seconds histogram\n",
        );
        for (b, bound) in BUCKETS.iter().enumerate() {
            out.push_str(&format!(
                "guichet_mail_send_latency_seconds_bucket{{le=\"{bound}\"}} {}\n",
                i.buckets[b].load(Ordering::Relaxed)
            ));
        }
        let count = i.latency_count.load(Ordering::Relaxed);
        out.push_str(&format!(
            "guichet_mail_send_latency_seconds_bucket{{le=\"+Inf\"}} {count}\n\
             guichet_mail_send_latency_seconds_sum {}\n\
             guichet_mail_send_latency_seconds_count {count}\n",
            i.latency_sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        ));
        out
    }
}

/// Serves `GET /metrics` on `bind` until the task is dropped.
pub async fn serve(bind: std::net::SocketAddr, metrics: Metrics) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind(bind).await?;
    loop {
        let (mut stream, _) = listener.accept().await?;
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let mut request = [0u8; 1024];
            let n = stream.read(&mut request).await.unwrap_or(0);
            let (status, body) = if request[..n].starts_with(b"GET /metrics") {
                ("200 OK", metrics.render())
            } else {
                ("404 Not Found", String::new())
            };
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_counts_and_buckets() {
        let m = Metrics::default();
        m.sent(std::time::Duration::from_millis(80));
        m.sent(std::time::Duration::from_secs(3));
        m.retried();
        m.dead_lettered();
        m.set_lag(7);
        let text = m.render();
        assert!(text.contains("guichet_mail_sent_total 2\n"));
        assert!(text.contains("guichet_mail_retried_total 1\n"));
        assert!(text.contains("guichet_mail_dead_lettered_total 1\n"));
        assert!(text.contains("guichet_mail_queue_lag 7\n"));
        assert!(text.contains("guichet_mail_send_latency_seconds_bucket{le=\"0.1\"} 1\n"));
        assert!(text.contains("guichet_mail_send_latency_seconds_bucket{le=\"5\"} 2\n"));
        assert!(text.contains("guichet_mail_send_latency_seconds_count 2\n"));
    }
}
