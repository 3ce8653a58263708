//! The signing bounds: access-token-sized JWTs signed per second with each algorithm, one
//! signer per core, for `SECONDS` each. bench/run.sh compares the token endpoint with them.
//! Prints one tab-separated row per algorithm and signer in bench/run.sh's format:
//!
//! - `sign_ALG`: Guichet's own signer, which keeps each key parsed and ready;
//! - `sign_ALG_jsonwebtoken`: `jsonwebtoken::encode` with its `aws_lc_rs` backend, the JWT
//!   library whose per-core rates the token endpoint's goals were first stated against. It
//!   parses the private key again at every signature.
//!
//! `sign_bound SECONDS`

#![allow(clippy::expect_used, clippy::unwrap_used)] // a benchmark tool: fail loudly

use std::sync::Arc;
use std::time::{Duration, Instant};

use idp::oidc::keys::{SigningAlg, SigningKey};
use serde_json::json;

fn main() {
    let seconds: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("usage: sign_bound SECONDS");
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
        let (key, pkcs8) = SigningKey::generate(alg).expect("key");
        let name = alg.as_str().to_lowercase();
        let key = Arc::new(key);
        let claims_own = claims.clone();
        report(&format!("sign_{name}"), seconds, move || {
            key.sign_jwt("at+jwt", &claims_own).expect("sign");
        });
        let (jwt_alg, encoding_key) = match alg {
            SigningAlg::Rs256 => (
                jsonwebtoken::Algorithm::RS256,
                jsonwebtoken::EncodingKey::from_rsa_der(pkcs1_of(&pkcs8)),
            ),
            SigningAlg::Es256 => (
                jsonwebtoken::Algorithm::ES256,
                jsonwebtoken::EncodingKey::from_ec_der(&pkcs8),
            ),
            SigningAlg::EdDsa => (
                jsonwebtoken::Algorithm::EdDSA,
                jsonwebtoken::EncodingKey::from_ed_der(&pkcs8),
            ),
        };
        let mut header = jsonwebtoken::Header::new(jwt_alg);
        header.typ = Some("at+jwt".into());
        header.kid = Some("bench".into());
        let claims = claims.clone();
        report(&format!("sign_{name}_jsonwebtoken"), seconds, move || {
            jsonwebtoken::encode(&header, &claims, &encoding_key).expect("encode");
        });
    }
}

/// Runs `sign` on every core for `seconds` and prints the rate as a bench/run.sh bound row.
fn report(name: &str, seconds: u64, sign: impl Fn() + Send + Sync + 'static) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let sign = Arc::new(sign);
    let until = Instant::now() + Duration::from_secs(seconds);
    let workers: Vec<_> = (0..cores)
        .map(|_| {
            let sign = sign.clone();
            std::thread::spawn(move || {
                let mut n = 0u64;
                while Instant::now() < until {
                    sign();
                    n += 1;
                }
                n
            })
        })
        .collect();
    let signed: u64 = workers.into_iter().map(|w| w.join().expect("worker")).sum();
    println!(
        "bound\t{name}\t{:.1}\t0\t0\t0\t0\t0\t0\t{signed}",
        signed as f64 / seconds as f64
    );
}

/// The PKCS#1 `RSAPrivateKey` inside a PKCS#8 `PrivateKeyInfo` (its last field, an OCTET
/// STRING), which `jsonwebtoken::EncodingKey::from_rsa_der` takes.
fn pkcs1_of(pkcs8: &[u8]) -> &[u8] {
    // SEQUENCE { INTEGER version, SEQUENCE algorithm, OCTET STRING privateKey }
    let (tag, body, _) = der_element(pkcs8);
    assert_eq!(tag, 0x30, "PrivateKeyInfo is a SEQUENCE");
    let (_, _, rest) = der_element(body); // version
    let (_, _, rest) = der_element(rest); // algorithm
    let (tag, private_key, _) = der_element(rest);
    assert_eq!(tag, 0x04, "privateKey is an OCTET STRING");
    private_key
}

/// One DER element: its tag, its contents and what follows it.
fn der_element(der: &[u8]) -> (u8, &[u8], &[u8]) {
    let tag = der[0];
    let (len, header) = match der[1] {
        n if n < 0x80 => (usize::from(n), 2),
        n => {
            let bytes = usize::from(n & 0x7f);
            let len = der[2..2 + bytes]
                .iter()
                .fold(0usize, |acc, b| acc << 8 | usize::from(*b));
            (len, 2 + bytes)
        }
    };
    (tag, &der[header..header + len], &der[header + len..])
}
