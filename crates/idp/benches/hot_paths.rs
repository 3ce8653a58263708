//! The hot functions besides signing (`benches/signing.rs`): an authorization request's
//! checks, a TOTP code's verification, audit appends (one row, and a group of 64, to a
//! SQLite file), and the chain's hashing of a group without storage.
//!
//! `cargo bench -p idp --bench hot_paths`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use idp::authn::totp::Authenticator;
use idp::oidc::authorize::{parse_parameters, validate};
use idp::store::audit::{self, NewAuditEvent};
use idp::store::clients::Client;
use idp::store::{DatabaseTarget, PoolOptions, Store};

#[path = "support/config.rs"]
mod config;

/// A first-party portal, registered as the configuration file would register it.
fn portal() -> Client {
    let mut settings = idp::config::ClientSettings::new(
        "file-portal",
        "Portail des membres",
        idp::config::ClientKind::Confidential,
    );
    settings.redirect_uris = vec!["https://portal.example.org/callback".into()];
    settings.first_party = true;
    let hasher = idp::crypto::KeyedHasher::new(&idp::crypto::MasterKey::generate());
    idp::oidc::clients::record_of(&settings, &hasher, idp::store::now())
}

fn authorize_checks(c: &mut Criterion) {
    let client = portal();
    let query = "client_id=file-portal&redirect_uri=https%3A%2F%2Fportal.example.org%2Fcallback\
                 &response_type=code&scope=openid+email&state=af0ifjsldkj&nonce=n-0S6_WzA2Mj\
                 &code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM\
                 &code_challenge_method=S256&ui_locales=fr-CA&max_age=3600";
    c.bench_function("authorize: parse and check a request", |b| {
        b.iter(|| {
            let params = parse_parameters(query).expect("parse");
            validate(&params, Some(&client)).expect("valid")
        })
    });
}

fn totp_verify(c: &mut Criterion) {
    let secret = idp::authn::totp::new_secret();
    let app = Authenticator::new("CPAQCPROD", "marie.tremblay@example.org", secret);
    let now = 1_900_000_000u64;
    let code = app.code_at(now);
    c.bench_function("totp: verify a code (three steps, constant time)", |b| {
        b.iter(|| app.check(&code, now, None))
    });
}

fn event(i: usize) -> NewAuditEvent {
    NewAuditEvent::by(
        "file-portal",
        "token.issued",
        Some("0b6f3c1e-8f7a-4d35-9a3b-2f1d0c9e8b7a".into()),
        serde_json::json!({ "jti": format!("jti-{i}"), "kid": "k1", "scope": "openid email" }),
    )
}

fn audit_append(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(
        DatabaseTarget::Sqlite(dir.path().join("bench.db")),
        &PoolOptions {
            max_size: 1,
            connect_timeout: std::time::Duration::from_secs(5),
            sqlite_busy_timeout_ms: 5_000,
        },
    )
    .expect("store");
    let mut conn = store.connection().expect("conn");
    let mut group = c.benchmark_group("audit append (SQLite file, chained)");
    group.throughput(Throughput::Elements(1));
    group.bench_function("one row per transaction", |b| {
        b.iter(|| audit::append(&mut conn, &event(0)).expect("append"))
    });
    group.throughput(Throughput::Elements(64));
    group.bench_function("64 rows per transaction", |b| {
        b.iter_batched(
            || (0..64).map(event).collect::<Vec<_>>(),
            |events| audit::append_all(&mut conn, &events).expect("append"),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

/// The chain's own work for a row, without storage: its canonical encoding and SHA-256 over
/// it, chained after the row before, for a group of 64 events.
fn audit_row_hash(c: &mut Criterion) {
    // A token endpoint's event, with the fields a request gives it.
    let events: Vec<NewAuditEvent> = (0..64)
        .map(|i| NewAuditEvent {
            client_id: Some("bench-es256".into()),
            ip: Some("127.0.0.1".into()),
            user_agent: Some("wrk".into()),
            request_id: Some(audit::new_event_id()),
            ..event(i)
        })
        .collect();
    let mut group = c.benchmark_group("audit chain (no storage)");
    group.throughput(Throughput::Elements(64));
    group.bench_function("hash 64 rows", |b| {
        b.iter(|| {
            events
                .iter()
                .zip(1..)
                .fold(vec![0xab; 32], |prev, (event, index)| {
                    audit::row_hash(index, event, &prev)
                })
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
        config = config::short_runs();
    targets = authorize_checks, totp_verify, audit_append, audit_row_hash
}
criterion_main!(benches);
