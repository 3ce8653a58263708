//! Token signing per algorithm: the bound on how many tokens one core can issue.
//!
//! `cargo bench -p idp --bench signing`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use idp::oidc::keys::{SigningAlg, SigningKey};
use serde_json::json;

#[path = "support/config.rs"]
mod config;

fn signing(c: &mut Criterion) {
    let claims = json!({
        "iss": "https://guichet.example.org",
        "sub": "0b6f3c1e-8f7a-4d35-9a3b-2f1d0c9e8b7a",
        "aud": "file-portal",
        "exp": 1_900_000_000u64,
        "iat": 1_899_999_400u64,
        "auth_time": 1_899_999_390u64,
        "nonce": "n-0S6_WzA2Mj",
        "acr": "mfa",
        "amr": ["pwd", "otp", "mfa"],
        "sid": "7d0b2c6a-4d1f-4b8e-a1c2-3e4f5a6b7c8d",
        "email": "marie.tremblay@example.org",
        "email_verified": true,
    });
    let mut group = c.benchmark_group("sign_id_token");
    group.throughput(Throughput::Elements(1));
    for alg in SigningAlg::ALL {
        let (key, _) = SigningKey::generate(alg).expect("key");
        group.bench_function(alg.as_str(), |b| {
            b.iter(|| key.sign_jwt("JWT", &claims).expect("sign"))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = config::short_runs();
    targets = signing
}
criterion_main!(benches);
