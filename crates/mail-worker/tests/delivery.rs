//! The mail worker against real parts: a private `redis-server` and a real SMTP server
//! (Python's aiosmtpd with `tests/smtp/smtp_sink.py`, storing into a Maildir and refusing
//! recipients named `reject...`), each started per test on free loopback ports so they can be
//! stopped and restarted. Jobs are enqueued with the idp's own `MailQueue`.
//!
//! `scripts/test.sh` installs redis-server and aiosmtpd when missing; without them these tests
//! fail saying so.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use idp::i18n::Lang;
use idp::mail::{code_job, MailQueue};
use mail_queue::{QueueKey, Template, DEAD_LETTER_STREAM, STREAM};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not start on port {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A redis-server of our own, without persistence.
struct PrivateRedis {
    port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    fn start() -> Self {
        let mut r = Self {
            port: free_port(),
            child: None,
        };
        r.spawn();
        r
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is missing: run scripts/test.sh, which installs it");
        self.child = Some(child);
        wait_for_port(self.port, "redis-server");
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn client(&self) -> redis::Client {
        redis::Client::open(self.url()).expect("client")
    }

    fn query(&self, cmd: &mut redis::Cmd) -> redis::Value {
        let mut conn = self.client().get_connection().expect("connection");
        cmd.query(&mut conn).expect("query")
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// An SMTP server (aiosmtpd) storing every message in a Maildir.
struct SmtpSink {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl SmtpSink {
    fn new() -> Self {
        Self {
            port: free_port(),
            dir: tempfile::tempdir().expect("maildir"),
            child: None,
        }
    }

    fn start(&mut self) {
        let sink_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/smtp");
        let child = Command::new("python3")
            .env("PYTHONPATH", sink_dir)
            .args([
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{}", self.port),
                "-c",
                "smtp_sink.FastMaildir",
            ])
            .arg(self.dir.path().join("maildir"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 is missing: run scripts/test.sh");
        self.child = Some(child);
        wait_for_port(
            self.port,
            "aiosmtpd (run scripts/test.sh, which installs it)",
        );
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Every received message, raw.
    fn messages(&self) -> Vec<String> {
        let new = self.dir.path().join("maildir/new");
        let Ok(entries) = std::fs::read_dir(&new) else {
            return Vec::new();
        };
        entries
            .filter_map(Result::ok)
            .map(|e| std::fs::read_to_string(e.path()).expect("message"))
            .collect()
    }

    fn wait_for(&self, n: usize, within: Duration) -> Vec<String> {
        let deadline = Instant::now() + within;
        loop {
            let got = self.messages();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {n} messages arrived",
                got.len()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The `mail-worker` binary.
struct Worker {
    child: Child,
}

impl Worker {
    fn start(redis: &PrivateRedis, smtp_port: u16, key: &str, name: &str) -> Self {
        Self::start_with(redis, smtp_port, key, name, &[])
    }

    fn start_with(
        redis: &PrivateRedis,
        smtp_port: u16,
        key: &str,
        name: &str,
        extra: &[(&str, String)],
    ) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_mail-worker"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("GUICHET_WORKER_REDIS_URL", redis.url())
            .env("GUICHET_WORKER_QUEUE_KEY", key)
            .env("GUICHET_WORKER_CONSUMER", name)
            .env("GUICHET_WORKER_BLOCK_MS", "200")
            .env("GUICHET_WORKER_RETRY_INITIAL_MS", "200")
            .env("GUICHET_WORKER_RETRY_MAX_MS", "800")
            .env("GUICHET_WORKER_CLAIM_IDLE_MS", "1500")
            .env("GUICHET_WORKER_SMTP__PORT", smtp_port.to_string())
            .env("GUICHET_WORKER_SMTP__TIMEOUT_SECS", "3")
            .env(
                "GUICHET_WORKER_SMTP__FROM",
                "Guichet <no-reply@example.org>",
            )
            .env("GUICHET_WORKER_LOG_LEVEL", "info")
            .envs(extra.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("worker");
        Self { child }
    }

    /// SIGTERM, then the exit status within ten seconds.
    fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "no exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// A private Redis, an SMTP server (started or not) and a queue key.
struct Rig {
    redis: PrivateRedis,
    smtp: SmtpSink,
    key: String,
}

impl Rig {
    fn new(smtp_up: bool) -> Self {
        let mut smtp = SmtpSink::new();
        if smtp_up {
            smtp.start();
        }
        Self {
            redis: PrivateRedis::start(),
            smtp,
            key: QueueKey::generate_base64(),
        }
    }

    fn worker(&self, name: &str) -> Worker {
        Worker::start(&self.redis, self.smtp.port, &self.key, name)
    }

    /// A code for `to`, valid ten minutes, in English.
    fn code(&self, to: &str, code: &str) -> String {
        enqueue(
            &self.redis,
            &self.key,
            to,
            code,
            Lang::En,
            Duration::from_secs(600),
        )
    }

    fn wait_for_dead_letters(&self, n: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let reasons = dead_letters(&self.redis);
            if reasons.len() >= n {
                return reasons;
            }
            assert!(Instant::now() < deadline, "dead letters: {reasons:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Enqueues a sign-in code for `to` as the idp does; returns the job id.
fn enqueue(
    redis: &PrivateRedis,
    key: &str,
    to: &str,
    code: &str,
    lang: Lang,
    ttl: Duration,
) -> String {
    let queue = MailQueue::redis(
        redis.client(),
        QueueKey::from_base64(key).expect("key"),
        1000,
    );
    let job = code_job(
        Template::SignInCode,
        to,
        lang,
        code,
        Utc::now() + chrono::Duration::from_std(ttl).expect("ttl"),
    );
    let id = job.id.clone();
    runtime().block_on(queue.enqueue(job)).expect("enqueued");
    id
}

fn dead_letters(redis: &PrivateRedis) -> Vec<String> {
    let v = redis.query(
        redis::cmd("XRANGE")
            .arg(DEAD_LETTER_STREAM)
            .arg("-")
            .arg("+"),
    );
    let redis::Value::Array(entries) = v else {
        return Vec::new();
    };
    entries
        .iter()
        .filter_map(|e| match e {
            redis::Value::Array(pair) => match pair.get(1) {
                Some(redis::Value::Array(kv)) => kv.chunks(2).find_map(|c| match c {
                    [redis::Value::BulkString(k), redis::Value::BulkString(v)]
                        if k == b"reason" =>
                    {
                        Some(String::from_utf8_lossy(v).into_owned())
                    }
                    _ => None,
                }),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

fn message_ids(messages: &[String]) -> Vec<String> {
    let mut ids: Vec<String> = messages
        .iter()
        .filter_map(|m| {
            m.lines()
                .find(|l| l.to_ascii_lowercase().starts_with("message-id:"))
                .map(|l| l[11..].trim().to_string())
        })
        .collect();
    ids.sort();
    ids
}

#[test]
fn a_code_goes_from_the_idp_to_the_smtp_server_once_and_sealed() {
    let rig = Rig::new(true);
    let id = enqueue(
        &rig.redis,
        &rig.key,
        "marie@example.org",
        "493817",
        Lang::FrCa,
        Duration::from_secs(600),
    );
    // The raw entry in Redis holds no clear code.
    let raw = rig
        .redis
        .query(redis::cmd("XRANGE").arg(STREAM).arg("-").arg("+"));
    let dump = format!("{raw:?}");
    assert!(!dump.contains("493817"), "the code is sealed in the stream");
    assert!(dump.contains(&id), "the job id is visible for operators");

    let _worker = rig.worker("w1");
    let messages = rig.smtp.wait_for(1, Duration::from_secs(15));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(rig.smtp.messages().len(), 1, "exactly one message");
    let m = &messages[0];
    for expected in [
        "493817",
        "To: marie@example.org",
        "From: Guichet <no-reply@example.org>",
        // RFC 2047 encodes the accented word.
        "Subject: Votre code de ",
        "Content-Language: fr-CA",
        "multipart/alternative",
        "text/html",
    ] {
        assert!(m.contains(expected), "{expected} missing in {m}");
    }
    assert!(m.contains(&format!("Message-ID: <{id}@guichet>")), "{m}");
    assert!(dead_letters(&rig.redis).is_empty());
}

#[test]
fn smtp_down_then_back_delivers_after_retries() {
    let mut rig = Rig::new(false);
    let _worker = rig.worker("w1");
    rig.code("jean@example.org", "111222");
    std::thread::sleep(Duration::from_secs(2));
    rig.smtp.start();
    let messages = rig.smtp.wait_for(1, Duration::from_secs(15));
    assert!(messages[0].contains("111222"));
    assert!(messages[0].contains("Content-Language: en"));
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(rig.smtp.messages().len(), 1, "sent once");
    assert!(dead_letters(&rig.redis).is_empty());
}

#[test]
fn a_code_that_expires_while_smtp_is_down_is_dead_lettered_not_sent_late() {
    let mut rig = Rig::new(false);
    let _worker = rig.worker("w1");
    enqueue(
        &rig.redis,
        &rig.key,
        "luc@example.org",
        "333444",
        Lang::FrCa,
        Duration::from_secs(3),
    );
    let reasons = rig.wait_for_dead_letters(1);
    assert!(reasons[0].starts_with("expired"), "{reasons:?}");
    rig.smtp.start();
    std::thread::sleep(Duration::from_secs(2));
    assert!(rig.smtp.messages().is_empty(), "never sent late");
}

#[test]
fn malformed_and_tampered_entries_are_dead_lettered_and_the_worker_goes_on() {
    let rig = Rig::new(true);
    let add = |fields: &[&str]| {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(STREAM).arg("*");
        for f in fields {
            cmd.arg(*f);
        }
        rig.redis.query(&mut cmd);
    };
    add(&["id", "junk", "job", "not sealed"]);
    add(&["something", "else"]);
    // A job sealed with another key, as someone with access to Redis could write.
    let other = QueueKey::generate_base64();
    enqueue(
        &rig.redis,
        &other,
        "intrus@example.org",
        "999999",
        Lang::En,
        Duration::from_secs(600),
    );
    let _worker = rig.worker("w1");
    rig.code("ok@example.org", "555666");
    let messages = rig.smtp.wait_for(1, Duration::from_secs(15));
    assert!(messages[0].contains("555666"));
    let reasons = rig.wait_for_dead_letters(3);
    assert!(
        reasons.iter().all(|r| r.starts_with("malformed")),
        "{reasons:?}"
    );
    assert_eq!(rig.smtp.messages().len(), 1, "nothing else was sent");
}

#[test]
fn a_refused_recipient_is_dead_lettered_at_once() {
    let rig = Rig::new(true);
    let _worker = rig.worker("w1");
    rig.code("reject-me@example.org", "135790");
    rig.code("ok@example.org", "864200");
    let reasons = rig.wait_for_dead_letters(1);
    assert!(reasons[0].starts_with("rejected: "), "{reasons:?}");
    assert!(reasons[0].contains("550"), "{reasons:?}");
    let messages = rig.smtp.wait_for(1, Duration::from_secs(10));
    assert!(messages[0].contains("864200"));
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(rig.smtp.messages().len(), 1);
    assert_eq!(
        dead_letters(&rig.redis).len(),
        1,
        "refused once, not retried"
    );
}

#[test]
fn two_workers_deliver_each_message_once() {
    let rig = Rig::new(true);
    let _a = rig.worker("a");
    let _b = rig.worker("b");
    let mut ids: Vec<String> = (0..40)
        .map(|i| {
            let id = rig.code(&format!("p{i}@example.org"), &format!("{:06}", 100_000 + i));
            format!("<{id}@guichet>")
        })
        .collect();
    rig.smtp.wait_for(40, Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(1));
    let got = message_ids(&rig.smtp.messages());
    ids.sort();
    assert_eq!(got, ids, "each once, none twice");
}

#[test]
fn a_job_left_by_a_killed_worker_is_taken_over() {
    let mut rig = Rig::new(false);
    // The first worker reads the job while SMTP is down, then dies mid-retry.
    let first = rig.worker("first");
    rig.code("reprise@example.org", "777888");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        // Until the worker has created its group, XPENDING answers NOGROUP.
        let mut conn = rig.redis.client().get_connection().expect("connection");
        let pending: redis::RedisResult<redis::Value> = redis::cmd("XPENDING")
            .arg(STREAM)
            .arg("guichet-mail-workers")
            .query(&mut conn);
        if matches!(&pending, Ok(redis::Value::Array(v)) if v.first() == Some(&redis::Value::Int(1)))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the first worker never read the job"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    first.kill();
    rig.smtp.start();
    // The second worker only reads new entries: the job reaches it by XAUTOCLAIM.
    let _second = rig.worker("second");
    let messages = rig.smtp.wait_for(1, Duration::from_secs(20));
    assert!(messages[0].contains("777888"));
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(rig.smtp.messages().len(), 1);
}

#[test]
fn the_worker_carries_on_after_redis_restarts() {
    let mut rig = Rig::new(true);
    let _worker = rig.worker("w1");
    rig.code("avant@example.org", "121212");
    rig.smtp.wait_for(1, Duration::from_secs(15));
    // Restarted without persistence: the stream and the group are gone.
    rig.redis.stop();
    std::thread::sleep(Duration::from_secs(1));
    rig.redis.spawn();
    rig.code("apres@example.org", "343434");
    let messages = rig.smtp.wait_for(2, Duration::from_secs(20));
    assert!(messages.iter().any(|m| m.contains("343434")));
}

#[test]
fn metrics_count_what_was_sent_and_sigterm_stops_cleanly() {
    let rig = Rig::new(true);
    let metrics_port = free_port();
    let worker = Worker::start_with(
        &rig.redis,
        rig.smtp.port,
        &rig.key,
        "w1",
        &[(
            "GUICHET_WORKER_METRICS_BIND",
            format!("127.0.0.1:{metrics_port}"),
        )],
    );
    rig.code("compte@example.org", "246810");
    rig.smtp.wait_for(1, Duration::from_secs(15));
    wait_for_port(metrics_port, "metrics endpoint");
    let scrape = || {
        use std::io::{Read, Write};
        let mut stream =
            std::net::TcpStream::connect(("127.0.0.1", metrics_port)).expect("connect");
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("request");
        let mut body = String::new();
        stream.read_to_string(&mut body).expect("response");
        body
    };
    // The server has the message a moment before the worker counts it (after the ack).
    let deadline = Instant::now() + Duration::from_secs(5);
    let body = loop {
        let body = scrape();
        if body.contains("guichet_mail_sent_total 1\n") || Instant::now() > deadline {
            break body;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(body.contains("guichet_mail_sent_total 1\n"), "{body}");
    assert!(body.contains("guichet_mail_send_latency_seconds_count 1\n"));
    assert!(!body.contains("246810"), "no code in metrics");
    assert!(worker.terminate().success(), "clean exit on SIGTERM");
}

#[test]
fn the_idp_reports_a_queue_it_cannot_reach() {
    let port = free_port();
    let queue = MailQueue::redis(
        redis::Client::open(format!("redis://127.0.0.1:{port}")).expect("client"),
        QueueKey::from_base64(&QueueKey::generate_base64()).expect("key"),
        1000,
    );
    let job = code_job(
        Template::SignInCode,
        "x@example.org",
        Lang::En,
        "000000",
        Utc::now() + chrono::Duration::minutes(10),
    );
    let started = Instant::now();
    assert!(runtime().block_on(queue.enqueue(job)).is_err());
    assert!(started.elapsed() < Duration::from_secs(5), "fails fast");
}
