//! Full sign-ins under load: many distinct people, each signing in once with password and
//! second factor (authorize, the password page, the password, the code page, the code),
//! against a running `idp serve` on its embedded SQLite database. Before the HTTP run it
//! measures argon2id alone (the same parameters, one thread per core verifying without
//! pause), in alternating rounds, so the two figures come from the same machine state. Prints Markdown table rows.
//!
//! `login_load BASE_URL DATA_DIR CLIENT_ID DURATION_SECS CONCURRENCY PEOPLE [totp|email]`
//!
//! The people are created in the server's database first (`DATA_DIR/guichet.db`, sealed with
//! `DATA_DIR/master.key`) with an argon2id hash at OWASP's parameters, the server's default,
//! and either an authenticator (`totp`, the default) or emailed codes (`email`: each code is
//! read from the development outbox, `DATA_DIR/outbox`, as the server delivers it). The
//! generator shares the cores with the server, so the HTTP figure is a lower bound.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a benchmark tool: fail loudly

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Client;

#[path = "support/login.rs"]
mod login;

const PASSWORD: &str = "Bench-Password-2026";

fn percentile(sorted: &[u32], p: f64) -> String {
    let i = ((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1));
    format!(
        "{:.1}ms",
        f64::from(sorted.get(i).copied().unwrap_or(0)) / 1000.0
    )
}

/// The two measures alternate this many times, each for a share of the duration, so a host
/// that speeds up or slows down during the run weighs on both alike.
const ROUNDS: u32 = 5;

/// The latency of each argon2id verification of `hash` done in `duration`: one thread per
/// core, each with its working memory allocated once, nothing else. This is what argon2 alone
/// allows on these cores; going through the server's own hashing code would add its
/// hand-overs between hashes to the bound.
fn argon2_alone(hash: &str, duration: Duration) -> Vec<u32> {
    use argon2::{Algorithm, Argon2, Block, Params, Version};
    let parsed = argon2::PasswordHash::new(hash).expect("phc");
    let params = Params::try_from(&parsed).expect("params");
    let expected = parsed.hash.expect("output");
    let mut salt = [0u8; 64];
    let salt = parsed
        .salt
        .expect("salt")
        .decode_b64(&mut salt)
        .expect("salt")
        .to_vec();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let until = Instant::now() + duration;
    let threads: Vec<_> = (0..cores)
        .map(|_| {
            let (params, salt, expected) = (params.clone(), salt.clone(), expected);
            std::thread::spawn(move || {
                let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
                let mut blocks = vec![Block::default(); params.block_count()];
                let mut out = vec![0u8; expected.len()];
                let mut latencies = Vec::new();
                while Instant::now() < until {
                    let started = Instant::now();
                    argon2
                        .hash_password_into_with_memory(
                            PASSWORD.as_bytes(),
                            &salt,
                            &mut out,
                            &mut blocks,
                        )
                        .expect("argon2");
                    assert_eq!(out, expected.as_bytes());
                    latencies
                        .push(u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX));
                }
                latencies
            })
        })
        .collect();
    threads
        .into_iter()
        .flat_map(|t| t.join().expect("thread"))
        .collect()
}

/// CPU time this process has used, user and system, in seconds (`/proc/self/stat`, in the
/// kernel's fixed 100 ticks a second).
fn process_cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // Fields after the command name, which ends with the last ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .expect("stat")
        .1
        .split_whitespace()
        .collect();
    let ticks = |i: usize| fields[i].parse::<f64>().expect("ticks");
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

/// The people and the server that every round of sign-ins works through.
struct SignIns {
    emails: Arc<Vec<String>>,
    /// The next person to sign in, shared by every round: each person signs in once.
    next: Arc<AtomicUsize>,
    base: String,
    client_id: String,
    secret: Vec<u8>,
    outbox: Option<login::OutboxCodes>,
}

impl SignIns {
    /// Signs people in, `concurrency` at once, for `duration`: the latency of each full
    /// sign-in, and the errors.
    async fn run(&self, duration: Duration, concurrency: usize) -> (Vec<u32>, Vec<String>) {
        let until = Instant::now() + duration;
        let tasks: Vec<_> = (0..concurrency)
            .map(|_| {
                let (emails, next, base, client_id, secret, outbox) = (
                    self.emails.clone(),
                    self.next.clone(),
                    self.base.clone(),
                    self.client_id.clone(),
                    self.secret.clone(),
                    self.outbox.clone(),
                );
                tokio::spawn(async move {
                    let http = Client::builder()
                        .redirect(reqwest::redirect::Policy::none())
                        .pool_max_idle_per_host(1)
                        .build()
                        .expect("client");
                    let (mut latencies, mut errors) = (Vec::new(), Vec::new());
                    let mut code = login::totp_now(&secret);
                    while Instant::now() < until {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(email) = emails.get(i) else {
                            errors.push("ran out of people: raise PEOPLE".to_string());
                            break;
                        };
                        // A code is good for its 30-second step: recompute it now and then.
                        if i % 64 == 0 {
                            code = login::totp_now(&secret);
                        }
                        let started = Instant::now();
                        let second_factor = async {
                            match &outbox {
                                Some(outbox) => outbox.code_for(email).await,
                                None => Ok(code.clone()),
                            }
                        };
                        match login::full_login(
                            &http,
                            &base,
                            &client_id,
                            email,
                            PASSWORD,
                            second_factor,
                        )
                        .await
                        {
                            Ok((_, location)) if location.starts_with(login::CALLBACK) => {
                                latencies.push(
                                    u32::try_from(started.elapsed().as_micros())
                                        .unwrap_or(u32::MAX),
                                );
                            }
                            Ok((_, location)) => errors.push(format!("ended at {location}")),
                            Err(e) => errors.push(e),
                        }
                    }
                    (latencies, errors)
                })
            })
            .collect();
        let (mut latencies, mut errors) = (Vec::new(), Vec::new());
        for t in tasks {
            let (l, e) = t.await.expect("worker");
            latencies.extend(l);
            errors.extend(e);
        }
        (latencies, errors)
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    assert!(
        args.len() == 7 || args.len() == 8,
        "usage: login_load BASE_URL DATA_DIR CLIENT_ID DURATION_SECS CONCURRENCY PEOPLE [totp|email]"
    );
    let emailed = match args.get(7).map_or("totp", String::as_str) {
        "totp" => false,
        "email" => true,
        other => panic!("unknown second factor {other}: totp or email"),
    };
    let base = args[1].trim_end_matches('/').to_string();
    let data_dir = std::path::PathBuf::from(&args[2]);
    let client_id = args[3].clone();
    let duration = Duration::from_secs(args[4].parse().expect("duration"));
    let concurrency: usize = args[5].parse().expect("concurrency");
    let people: usize = args[6].parse().expect("people");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let run = uuid::Uuid::new_v4().simple().to_string();
    let emails: Vec<String> = (0..people)
        .map(|i| format!("bench-{run}-{i}@example.org"))
        .collect();
    let secret = idp::authn::totp::new_secret();

    let hash = runtime.block_on(async {
        idp::authn::password::Passwords::owasp()
            .expect("params")
            .hash(PASSWORD.into())
            .await
            .expect("hash")
    });
    let (database, key) = login::server_database(&data_dir.join("guichet.db").to_string_lossy());
    login::seed_people(
        &database,
        &key,
        &hash,
        (!emailed).then_some(secret.as_slice()),
        &emails,
    );
    let outbox = emailed.then(|| login::OutboxCodes::watch(data_dir.join("outbox")));

    let people_to_sign_in = SignIns {
        emails: Arc::new(emails),
        next: Arc::new(AtomicUsize::new(0)),
        base,
        client_id,
        secret,
        outbox,
    };
    let phase = duration / ROUNDS;
    let (mut hashes, mut sign_ins, mut errors, mut rounds) = (vec![], vec![], vec![], vec![]);
    // Each measure is divided by the time it really took, until its last operation ended.
    let (mut hashing_time, mut signing_in_time) = (Duration::ZERO, Duration::ZERO);
    // This generator's own CPU time during the sign-in rounds (its argon2 threads have ended
    // by then): what it takes from the cores the server would otherwise have.
    let mut generator_cpu = 0.0;
    for _ in 0..ROUNDS {
        let started = Instant::now();
        let alone = argon2_alone(&hash, phase);
        let hashing = started.elapsed();
        let started = Instant::now();
        let cpu_before = process_cpu_secs();
        let (latencies, failures) = runtime.block_on(people_to_sign_in.run(phase, concurrency));
        generator_cpu += process_cpu_secs() - cpu_before;
        let signing_in = started.elapsed();
        let (hash_rate, sign_in_rate) = (
            alone.len() as f64 / hashing.as_secs_f64(),
            latencies.len() as f64 / signing_in.as_secs_f64(),
        );
        rounds.push(format!(
            "{sign_in_rate:.1} / {hash_rate:.1} = {:.0}%",
            100.0 * sign_in_rate / hash_rate
        ));
        hashing_time += hashing;
        signing_in_time += signing_in;
        hashes.extend(alone);
        sign_ins.extend(latencies);
        errors.extend(failures);
    }
    hashes.sort_unstable();
    sign_ins.sort_unstable();
    // The scripts divide the idp's CPU time by this count.
    println!(
        "| sign-ins completed in all rounds | {} | | | |",
        sign_ins.len()
    );
    println!(
        "| argon2id verifications completed in all rounds | {} | | | |",
        hashes.len()
    );
    let argon2_rate = hashes.len() as f64 / hashing_time.as_secs_f64();
    let rate = sign_ins.len() as f64 / signing_in_time.as_secs_f64();
    println!(
        "| argon2id verification alone (m=19456 KiB, t=2, p=1), one per core | {:.1} | {} | {} | 0 |",
        argon2_rate,
        percentile(&hashes, 0.5),
        percentile(&hashes, 0.99)
    );
    println!(
        "| full sign-in with {} (5 requests: authorize, page, password, page, code), {concurrency} at once | {:.1} | {} | {} | {} |",
        if emailed { "emailed code" } else { "authenticator code" },
        rate,
        percentile(&sign_ins, 0.5),
        percentile(&sign_ins, 0.99),
        errors.len()
    );
    println!(
        "| share of argon2 alone | {:.0}% | | | |",
        100.0 * rate / argon2_rate
    );
    println!(
        "| each round: sign-ins/s / verifications/s | {} | | | |",
        rounds.join(", ")
    );
    println!(
        "| load generator CPU per sign-in (same cores) | {:.2} ms | | | |",
        1000.0 * generator_cpu / sign_ins.len().max(1) as f64
    );
    if let Some(first) = errors.first() {
        eprintln!("first error: {first}");
    }
}
