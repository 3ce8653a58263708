//! Mail delivery under load: enqueues sign-in codes with the idp's own queue at a fixed rate,
//! watches the SMTP server's Maildir, and reports enqueue-to-delivery latency and throughput.
//! Prints one Markdown table row.
//!
//! `mail_load REDIS_URL QUEUE_KEY MAILDIR RATE_PER_SEC DURATION_SECS LABEL`
//!
//! Latency runs from the enqueue call to the moment the message file appears in the Maildir
//! (polled every 2 ms), so it includes the SMTP server's own write.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a benchmark tool: fail loudly

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use idp::i18n::Lang;
use idp::mail::{code_job, MailQueue};
use mail_queue::{QueueKey, Template};

fn message_id(path: &std::path::Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let line = text
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("message-id:"))?;
    let id = line[11..].trim();
    Some(
        id.trim_start_matches('<')
            .trim_end_matches('>')
            .trim_end_matches("@guichet")
            .to_string(),
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    assert!(
        args.len() == 7,
        "usage: mail_load REDIS_URL QUEUE_KEY MAILDIR RATE_PER_SEC DURATION_SECS LABEL"
    );
    let queue = MailQueue::redis(
        redis::Client::open(args[1].as_str()).expect("redis url"),
        QueueKey::from_base64(&args[2]).expect("key"),
        1_000_000,
    );
    let maildir = PathBuf::from(&args[3]).join("new");
    let rate: u64 = args[4].parse().expect("rate");
    let duration = Duration::from_secs(args[5].parse().expect("duration"));
    let total = rate * duration.as_secs();

    // The watcher: file name -> arrival instant, polled every 2 ms.
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    let watcher = std::thread::spawn(move || {
        let mut seen: HashSet<std::ffi::OsString> = HashSet::new();
        let mut arrivals: HashMap<String, Instant> = HashMap::new();
        loop {
            if let Ok(entries) = std::fs::read_dir(&maildir) {
                for e in entries.filter_map(Result::ok) {
                    if seen.insert(e.file_name()) {
                        let now = Instant::now();
                        if let Some(id) = message_id(&e.path()) {
                            arrivals.insert(id, now);
                        }
                    }
                }
            }
            if stop_rx.try_recv().is_ok() {
                return arrivals;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    });

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut enqueued: HashMap<String, Instant> = HashMap::new();
    let started = Instant::now();
    runtime.block_on(async {
        let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate.max(1)));
        for i in 0..total {
            tick.tick().await;
            let job = code_job(
                Template::SignInCode,
                &format!("load{i}@example.org"),
                Lang::FrCa,
                &format!("{:06}", i % 1_000_000),
                chrono::Utc::now() + chrono::Duration::minutes(10),
            );
            let id = job.id.clone();
            enqueued.insert(id, Instant::now());
            queue.enqueue(job).await.expect("enqueue");
        }
    });
    let enqueue_secs = started.elapsed().as_secs_f64();
    // Let the last messages land.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let delivered = std::fs::read_dir(PathBuf::from(&args[3]).join("new"))
            .map(|d| d.count())
            .unwrap_or(0);
        if delivered as u64 >= total || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    stop_tx.send(()).expect("stop");
    let arrivals = watcher.join().expect("watcher");
    let mut latencies: Vec<Duration> = enqueued
        .iter()
        .filter_map(|(id, at)| {
            arrivals
                .get(id)
                .map(|arrived| arrived.saturating_duration_since(*at))
        })
        .collect();
    latencies.sort_unstable();
    let last_arrival = arrivals.values().max().copied().unwrap_or(started);
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "| {} | {rate} | {:.0} | {:.0} | {:.1} ms | {:.1} ms | {} |",
        args[6],
        total as f64 / enqueue_secs,
        latencies.len() as f64 / last_arrival.duration_since(started).as_secs_f64(),
        pct(0.5),
        pct(0.99),
        total - latencies.len() as u64,
    );
}
