//! The signing bound: access-token-sized JWTs signed per second with each algorithm, one
//! signer per core, for `SECONDS` each. bench/run.sh compares the token endpoint with it.
//! Prints one tab-separated row per algorithm in bench/run.sh's format.
//!
//! `sign_bound SECONDS`

#![allow(clippy::expect_used, clippy::unwrap_used)] // a benchmark tool: fail loudly

use std::time::{Duration, Instant};

use idp::oidc::keys::{SigningAlg, SigningKey};
use serde_json::json;

fn main() {
    let seconds: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("usage: sign_bound SECONDS");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let claims = json!({
        "iss": "http://127.0.0.1:8080",
        "sub": "bench-es256",
        "aud": "http://127.0.0.1:8080",
        "client_id": "bench-es256",
        "scope": "members.read",
        "exp": 1_900_000_300u64,
        "iat": 1_900_000_000u64,
        "jti": "0b6f3c1e-8f7a-4d35-9a3b-2f1d0c9e8b7a",
    });
    for alg in SigningAlg::ALL {
        let (key, _) = SigningKey::generate(alg).expect("key");
        let key = std::sync::Arc::new(key);
        let until = Instant::now() + Duration::from_secs(seconds);
        let workers: Vec<_> = (0..cores)
            .map(|_| {
                let (key, claims) = (key.clone(), claims.clone());
                std::thread::spawn(move || {
                    let mut n = 0u64;
                    while Instant::now() < until {
                        key.sign_jwt("at+jwt", &claims).expect("sign");
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        let signed: u64 = workers.into_iter().map(|w| w.join().expect("worker")).sum();
        println!(
            "bound\tsign_{}\t{:.1}\t0\t0\t0\t0\t0\t0\t{signed}",
            alg.as_str().to_lowercase(),
            signed as f64 / seconds as f64
        );
    }
}
