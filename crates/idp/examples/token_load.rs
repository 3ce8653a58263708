//! Load generator for the token endpoint's grants that need a signed-in person: code exchange,
//! refresh (with rotation) and introspection. wrk cannot carry a new refresh token or code from
//! one request to the next, so this drives them: one person signs in once (password and
//! authenticator code), then each of `concurrency` workers gets its own tokens from that session
//! and loops on its scenario for `duration` seconds. Prints one Markdown table row.
//!
//! `token_load BASE_URL DATABASE SCENARIO CLIENT_ID SECRET DURATION_SECS CONCURRENCY`
//! where SCENARIO is `code` (authorize with the session, then exchange: one request of each
//! counted as one round), `refresh` or `introspect`. Two scenarios only print tokens for
//! another load generator: `access-token` the signed-in person's access token, and
//! `refresh-tokens` CONCURRENCY refresh tokens, one per line, each from its own code exchange
//! (for wrk's `bench/wrk/refresh.lua`). The person is created in the server's database first:
//! DATABASE is its SQLite file, or its `postgres://` URL with the server's master key in
//! `GUICHET_MASTER_KEY`. The generator shares the machine's cores with the server, so the
//! figures are a lower bound.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a benchmark tool: fail loudly

use std::time::{Duration, Instant};

use reqwest::Client;

#[path = "support/login.rs"]
mod login;
use login::{authorize_url, code_of, CALLBACK, VERIFIER};

const PASSWORD: &str = "Bench-Password-2026";

struct Target {
    base: String,
    client_id: String,
    secret: String,
    /// The SSO session every worker shares (one person signed in once).
    session: String,
}

/// An HTTP client that shows every redirect instead of following it.
fn no_redirects() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// A code for the signed-in person, from the session alone.
async fn code_with_session(http: &Client, t: &Target) -> String {
    let r = http
        .get(authorize_url(&t.base, &t.client_id))
        .header("Cookie", &t.session)
        .send()
        .await
        .expect("authorize");
    let location = r.headers()["location"].to_str().expect("ascii").to_string();
    code_of(&location).unwrap_or_else(|| panic!("no code in {location}"))
}

async fn exchange(http: &Client, t: &Target, code: &str) -> serde_json::Value {
    let r = http
        .post(format!("{}/token", t.base))
        .basic_auth(&t.client_id, Some(&t.secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .expect("token");
    assert!(r.status().is_success(), "exchange: {}", r.status());
    r.json().await.expect("json")
}

/// Runs one worker; returns the latency of each completed round, in microseconds, and errors.
async fn worker(
    scenario: String,
    t: std::sync::Arc<Target>,
    ready: std::sync::Arc<tokio::sync::Barrier>,
    duration: Duration,
) -> (Vec<u32>, u64) {
    let http = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(1)
        .build()
        .expect("client");
    let code = code_with_session(&http, &t).await;
    let first = exchange(&http, &t, &code).await;
    let mut refresh = first["refresh_token"].as_str().unwrap_or("").to_string();
    let access = first["access_token"].as_str().expect("access").to_string();
    let (mut latencies, mut errors) = (Vec::new(), 0u64);
    // Every worker is signed in before the clock starts.
    ready.wait().await;
    let until = Instant::now() + duration;
    while Instant::now() < until {
        let started = Instant::now();
        let ok = match scenario.as_str() {
            "code" => {
                let code = code_with_session(&http, &t).await;
                exchange(&http, &t, &code).await["id_token"].is_string()
            }
            "refresh" => {
                let r = http
                    .post(format!("{}/token", t.base))
                    .basic_auth(&t.client_id, Some(&t.secret))
                    .form(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)])
                    .send()
                    .await
                    .expect("refresh");
                let ok = r.status().is_success();
                let body: serde_json::Value = r.json().await.expect("json");
                if let Some(next) = body["refresh_token"].as_str() {
                    refresh = next.to_string();
                }
                ok
            }
            "introspect" => {
                let r = http
                    .post(format!("{}/introspect", t.base))
                    .basic_auth(&t.client_id, Some(&t.secret))
                    .form(&[("token", access.as_str())])
                    .send()
                    .await
                    .expect("introspect");
                r.status().is_success()
                    && r.json::<serde_json::Value>().await.expect("json")["active"] == true
            }
            other => panic!("unknown scenario {other}"),
        };
        if ok {
            latencies.push(u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX));
        } else {
            errors += 1;
        }
    }
    (latencies, errors)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    assert!(
        args.len() == 8,
        "usage: token_load BASE_URL DATABASE SCENARIO CLIENT_ID SECRET DURATION_SECS CONCURRENCY"
    );
    let duration = Duration::from_secs(args[6].parse().expect("duration"));
    let concurrency: usize = args[7].parse().expect("concurrency");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let email = format!("bench-{}@example.org", uuid::Uuid::new_v4().simple());
    let base = args[1].trim_end_matches('/').to_string();
    let (database, key) = login::server_database(&args[2]);
    let secret = idp::authn::totp::new_secret();
    let session = runtime.block_on(async {
        let hash = idp::authn::password::Passwords::new(1024, 1, 1, 1)
            .expect("params")
            .hash(PASSWORD.into())
            .await
            .expect("hash");
        login::seed_people(
            &database,
            &key,
            &hash,
            Some(&secret),
            std::slice::from_ref(&email),
        );
        let http = no_redirects();
        // One person signs in once; every worker then works from that session.
        login::full_login(
            &http,
            &base,
            &args[4],
            &email,
            PASSWORD,
            std::future::ready(Ok(login::totp_now(&secret))),
        )
        .await
        .expect("sign in")
        .0
    });
    let target = std::sync::Arc::new(Target {
        base,
        client_id: args[4].clone(),
        secret: args[5].clone(),
        session,
    });
    // Tokens for other load generators (wrk replays or chains them): one code exchange each.
    if args[3] == "access-token" || args[3] == "refresh-tokens" {
        let (field, count) = if args[3] == "access-token" {
            ("access_token", 1)
        } else {
            ("refresh_token", concurrency)
        };
        let tokens = runtime.block_on(async {
            let http = no_redirects();
            let mut tokens = Vec::with_capacity(count);
            for _ in 0..count {
                let code = code_with_session(&http, &target).await;
                let answer = exchange(&http, &target, &code).await;
                tokens.push(answer[field].as_str().expect(field).to_string());
            }
            tokens
        });
        println!("{}", tokens.join("\n"));
        return;
    }
    let ready = std::sync::Arc::new(tokio::sync::Barrier::new(concurrency));
    let results = runtime.block_on(async {
        let tasks: Vec<_> = (0..concurrency)
            .map(|_| {
                tokio::spawn(worker(
                    args[3].clone(),
                    target.clone(),
                    ready.clone(),
                    duration,
                ))
            })
            .collect();
        let mut all = Vec::new();
        for task in tasks {
            all.push(task.await.expect("worker"));
        }
        all
    });
    let elapsed = duration.as_secs_f64();
    let errors: u64 = results.iter().map(|(_, e)| e).sum();
    let mut latencies: Vec<u32> = results.into_iter().flat_map(|(l, _)| l).collect();
    latencies.sort_unstable();
    let pct = |p: f64| -> String {
        let i = ((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1));
        format!(
            "{:.2}ms",
            f64::from(latencies.get(i).copied().unwrap_or(0)) / 1000.0
        )
    };
    println!(
        "| {} | {} | {} | {} | {} |",
        args[3],
        (latencies.len() as f64 / elapsed) as u64,
        pct(0.5),
        pct(0.99),
        errors
    );
}
