//! Load generator for the token endpoint's grants that need a signed-in person: code exchange,
//! refresh (with rotation) and introspection. wrk cannot carry a new refresh token or code from
//! one request to the next, so this drives them: each of `concurrency` workers signs in once,
//! then loops on its scenario for `duration` seconds. Prints one Markdown table row.
//!
//! `token_load BASE_URL SQLITE_PATH SCENARIO CLIENT_ID SECRET DURATION_SECS CONCURRENCY`
//! where SCENARIO is `code` (authorize with the session, then exchange: one request of each
//! counted as one round), `refresh` or `introspect`. The person is created in the server's
//! SQLite database first. The generator shares the machine's cores with the server, so the
//! figures are a lower bound.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a benchmark tool: fail loudly

use std::time::{Duration, Instant};

use reqwest::Client;

const PASSWORD: &str = "Bench-Password-2026";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const CALLBACK: &str = "http://localhost:9000/callback";

struct Target {
    base: String,
    client_id: String,
    secret: String,
    email: String,
}

fn set_cookie(r: &reqwest::Response, name: &str) -> String {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .and_then(|v| v.split(';').next())
        .expect("cookie")
        .to_string()
}

fn code_of(location: &str) -> String {
    url::Url::parse(location)
        .expect("url")
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no code in {location}"))
}

fn authorize_url(t: &Target) -> String {
    format!(
        "{}/authorize?client_id={}&redirect_uri=http%3A%2F%2Flocalhost%3A9000%2Fcallback\
         &response_type=code&scope=openid+email&code_challenge={CHALLENGE}\
         &code_challenge_method=S256",
        t.base, t.client_id
    )
}

/// Signs in once; returns the session cookie and a first code.
async fn sign_in(http: &Client, t: &Target) -> (String, String) {
    let r = http.get(authorize_url(t)).send().await.expect("authorize");
    let tx = set_cookie(&r, "guichet_tx");
    let page = http
        .get(format!("{}/login", t.base))
        .header("Cookie", &tx)
        .send()
        .await
        .expect("login")
        .text()
        .await
        .expect("html");
    let start = page.find("name=\"csrf\" value=\"").expect("csrf") + 19;
    let csrf = &page[start..start + page[start..].find('"').expect("end")];
    let r = http
        .post(format!("{}/login", t.base))
        .header("Cookie", &tx)
        .form(&[("csrf", csrf), ("email", &t.email), ("password", PASSWORD)])
        .send()
        .await
        .expect("submit");
    let session = set_cookie(&r, "guichet_session");
    let location = r.headers()["location"].to_str().expect("ascii").to_string();
    (session, code_of(&location))
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
    let (session, code) = sign_in(&http, &t).await;
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
                let r = http
                    .get(authorize_url(&t))
                    .header("Cookie", &session)
                    .send()
                    .await
                    .expect("authorize");
                let location = r.headers()["location"].to_str().expect("ascii").to_string();
                exchange(&http, &t, &code_of(&location)).await["id_token"].is_string()
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
    assert!(args.len() == 8, "usage: token_load BASE_URL SQLITE_PATH SCENARIO CLIENT_ID SECRET DURATION_SECS CONCURRENCY");
    let duration = Duration::from_secs(args[6].parse().expect("duration"));
    let concurrency: usize = args[7].parse().expect("concurrency");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let email = format!("bench-{}@example.org", uuid::Uuid::new_v4().simple());
    runtime.block_on(async {
        let hash = idp::authn::password::Passwords::new(1024, 1, 1, 1)
            .expect("params")
            .hash(PASSWORD.into())
            .await
            .expect("hash");
        let store = idp::store::Store::open(
            idp::store::DatabaseTarget::Sqlite(args[2].clone().into()),
            &idp::store::PoolOptions {
                max_size: 1,
                connect_timeout: Duration::from_secs(10),
                sqlite_busy_timeout_ms: 10_000,
            },
        )
        .expect("store");
        idp::store::users::insert(
            &mut store.connection().expect("conn"),
            &idp::store::users::NewUser {
                id: uuid::Uuid::new_v4().to_string(),
                email: email.clone(),
                member_code: None,
                given_name: "Bench".into(),
                family_name: "Person".into(),
                locale: "fr-CA".into(),
                password_hash: Some(hash),
                must_reset: false,
            },
            idp::store::now(),
        )
        .expect("person");
    });
    let target = std::sync::Arc::new(Target {
        base: args[1].trim_end_matches('/').to_string(),
        client_id: args[4].clone(),
        secret: args[5].clone(),
        email,
    });
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
