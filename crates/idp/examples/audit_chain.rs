//! Audit chain throughput: appends in groups of 4, 16 and 64 (the writer commits whatever has
//! queued: a few rows per group under the token endpoint's load, up to 256 in a burst) and one
//! per transaction, then a full verification, on SQLite (a temporary file) or PostgreSQL
//! (`AUDIT_BENCH_POSTGRES_URL`, a database this run may fill). Prints rows per second. Used by
//! `bench/audit.sh`.

use std::time::{Duration, Instant};

use idp::store::audit::{self, NewAuditEvent};
use idp::store::{DatabaseTarget, PoolOptions, Store};

fn event(n: usize) -> NewAuditEvent {
    NewAuditEvent {
        // As the server names its events: time-ordered, so the `id` index grows at its end.
        id: audit::new_event_id(),
        occurred_at: idp::store::now(),
        event_type: "token.issued".into(),
        actor: Some("file-portal".into()),
        subject: Some(format!("user-{}", n % 1000)),
        client_id: Some("file-portal".into()),
        ip: Some("192.0.2.7".into()),
        user_agent: Some("Mozilla/5.0 (X11; Linux x86_64) bench".into()),
        request_id: Some(uuid::Uuid::new_v4().to_string()),
        detail: format!(
            r#"{{"jti":"{}","kid":"k1","scope":"openid email"}}"#,
            uuid::Uuid::new_v4()
        ),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rows: usize = std::env::var("AUDIT_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let dir = tempfile::tempdir()?;
    let (target, backend) = match std::env::var("AUDIT_BENCH_POSTGRES_URL") {
        Ok(url) => (DatabaseTarget::Postgres(url), "postgres"),
        Err(_) => (
            DatabaseTarget::Sqlite(dir.path().join("audit.db")),
            "sqlite",
        ),
    };
    let store = Store::open(
        target,
        &PoolOptions {
            max_size: 2,
            connect_timeout: Duration::from_secs(10),
            sqlite_busy_timeout_ms: 10_000,
        },
    )?;
    let mut conn = store.connection()?;
    let rate = |n: usize, t: Duration| n as f64 / t.as_secs_f64();

    // As the group-committing writer does: one transaction per group.
    let mut grouped = Vec::new();
    let mut n = 0;
    for size in [4, 16, 64] {
        let started = Instant::now();
        let end = n + rows;
        while n < end {
            let group: Vec<_> = (n..(n + size).min(end)).map(event).collect();
            audit::append_all(&mut conn, &group)?;
            n += group.len();
        }
        grouped.push(format!(
            "{:.0} rows/s in groups of {size}",
            rate(rows, started.elapsed())
        ));
    }
    let grouped = grouped.join(", ");

    // One event per transaction (an event written inside a sign-in's own transaction).
    let single_rows = rows / 10;
    let started = Instant::now();
    for i in 0..single_rows {
        audit::append(&mut conn, &event(i))?;
    }
    let single = rate(single_rows, started.elapsed());

    let started = Instant::now();
    let report = audit::verify(&mut conn, 5000)?;
    let verify = rate(report.checked as usize, started.elapsed());
    assert!(report.first_break.is_none(), "{report:?}");
    println!(
                "{backend}: append {grouped}, {single:.0} rows/s one per transaction; verify {verify:.0} rows/s over {} rows",
        report.checked
    );
    Ok(())
}
