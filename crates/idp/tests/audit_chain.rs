//! The audit hash chain on SQLite and PostgreSQL: tampering with the database directly (an
//! edited, deleted, reordered or trailing row, a forged checkpoint) is detected at the first
//! broken link; four concurrent writers keep one unbroken chain with an exact count; the
//! `idp audit` commands verify and checkpoint; writes handed to the audit writer commit with
//! their events; several writers at once, and a writer whose idea of the head is stale, never
//! fork it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

#[macro_use]
mod support;

use diesel::connection::SimpleConnection;
use idp::store::audit::{self, ChainBreak, NewAuditEvent};
use idp::store::DbConnection;
use support::TestDb;

fn event(n: usize) -> NewAuditEvent {
    NewAuditEvent {
        id: uuid::Uuid::new_v4().to_string(),
        occurred_at: chrono::Utc::now().naive_utc(),
        event_type: "token.issued".into(),
        actor: Some(format!("user-{n}")),
        subject: Some(format!("user-{n}")),
        client_id: Some("file-portal".into()),
        ip: Some("192.0.2.7".into()),
        user_agent: Some("test".into()),
        request_id: None,
        detail: format!(r#"{{"jti":"j-{n}"}}"#),
    }
}

fn append(db: &TestDb, n: usize) {
    let mut conn = db.conn();
    for i in 0..n {
        audit::append(&mut conn, &event(i)).expect("append");
    }
}

/// Lets the test edit and delete audit rows, as an attacker with database access would.
fn allow_tampering(conn: &mut DbConnection) {
    let sql = match conn {
        DbConnection::Sqlite(_) => {
            "DROP TRIGGER audit_events_no_update; DROP TRIGGER audit_events_no_delete;"
        }
        DbConnection::Postgres(_) => {
            "ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update;"
        }
    };
    conn.batch_execute(sql).expect("drop the append-only guard");
}

fn first_break(db: &TestDb) -> Option<ChainBreak> {
    audit::verify(&mut db.conn(), 3)
        .expect("verify")
        .first_break
}

fn setup(postgres: bool) -> TestDb {
    let db = TestDb::new(postgres);
    append(&db, 10);
    let report = audit::verify(&mut db.conn(), 3).expect("verify");
    assert_eq!(report.first_break, None);
    assert_eq!(report.checked, 10);
    allow_tampering(&mut db.conn());
    db
}

fn an_edited_row_is_detected(db: &TestDb) {
    db.conn()
        .batch_execute(r#"UPDATE audit_events SET client_id = 'atip-portal' WHERE chain_index = 5"#)
        .expect("edit");
    assert_eq!(first_break(db), Some(ChainBreak::Altered { index: 5 }));
}

fn a_deleted_row_is_detected(db: &TestDb) {
    db.conn()
        .batch_execute("DELETE FROM audit_events WHERE chain_index = 5")
        .expect("delete");
    assert_eq!(
        first_break(db),
        Some(ChainBreak::Missing {
            expected: 5,
            found: 6
        })
    );
}

fn a_reordered_row_is_detected(db: &TestDb) {
    db.conn()
        .batch_execute(
            "UPDATE audit_events SET chain_index = -4 WHERE chain_index = 4;
             UPDATE audit_events SET chain_index = 4 WHERE chain_index = 5;
             UPDATE audit_events SET chain_index = 5 WHERE chain_index = -4;",
        )
        .expect("swap rows 4 and 5");
    assert_eq!(first_break(db), Some(ChainBreak::Unlinked { index: 4 }));
}

fn a_removed_last_row_is_detected(db: &TestDb) {
    db.conn()
        .batch_execute("DELETE FROM audit_events WHERE chain_index = 10")
        .expect("delete");
    assert_eq!(
        first_break(db),
        Some(ChainBreak::Truncated { last: 9, head: 10 })
    );
}

fn a_rehashed_row_contradicts_its_checkpoint(db: &TestDb) {
    // A checkpoint at row 6, then row 6 rewritten with a consistent hash and the rest of the
    // chain relinked: only the checkpoint still tells.
    let mut conn = db.conn();
    let (_, head_hash) = audit::head(&mut conn).expect("head");
    audit::add_checkpoint(
        &mut conn,
        &audit::Checkpoint {
            chain_index: 10,
            row_hash: head_hash,
            created_at: idp::store::now(),
            signature: "unused-here".into(),
        },
    )
    .expect("checkpoint");
    conn.batch_execute("UPDATE audit_events SET client_id = 'atip-portal' WHERE chain_index = 6")
        .expect("edit");
    rehash_from(&mut conn, 6);
    assert_eq!(
        first_break(db),
        Some(ChainBreak::CheckpointMismatch { index: 10 })
    );
}

/// Recomputes hashes and links from `from` to the end and the head, as a forger would.
fn rehash_from(conn: &mut DbConnection, from: i64) {
    use diesel::prelude::*;
    use idp::store::schema::{audit_chain_head, audit_events};
    let rows: Vec<audit::AuditEvent> = audit_events::table
        .filter(audit_events::chain_index.ge(from - 1))
        .order(audit_events::chain_index.asc())
        .select(audit::AuditEvent::as_select())
        .load(conn)
        .expect("rows");
    let mut prev = rows[0].row_hash.clone().expect("hash");
    for row in &rows[1..] {
        let index = row.chain_index.expect("index");
        let fields = row.fields();
        let hash = audit::row_hash(index, &fields, &prev);
        diesel::update(audit_events::table.filter(audit_events::chain_index.eq(index)))
            .set((
                audit_events::prev_hash.eq(&prev),
                audit_events::row_hash.eq(&hash),
            ))
            .execute(conn)
            .expect("rehash");
        prev = hash;
    }
    diesel::update(audit_chain_head::table)
        .set(audit_chain_head::last_hash.eq(&prev))
        .execute(conn)
        .expect("head");
    let report = audit::verify(conn, 100).expect("verify");
    assert!(
        !matches!(
            report.first_break,
            Some(ChainBreak::Altered { .. } | ChainBreak::Unlinked { .. })
        ),
        "the forged chain is consistent by itself"
    );
}

on_both_backends!(setup;
    an_edited_row_is_detected,
    a_deleted_row_is_detected,
    a_reordered_row_is_detected,
    a_removed_last_row_is_detected,
    a_rehashed_row_contradicts_its_checkpoint,
);

/// Four writers, 1,000 events each, one event per transaction: one chain, no gap, no fork.
fn concurrent_writers(postgres: bool) {
    let db = std::sync::Arc::new(TestDb::new(postgres));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let db = db.clone();
            std::thread::spawn(move || {
                let mut conn = db.conn();
                for i in 0..1000 {
                    audit::append(&mut conn, &event(w * 1000 + i)).expect("append");
                }
            })
        })
        .collect();
    for w in writers {
        w.join().expect("writer");
    }
    let mut conn = db.conn();
    assert_eq!(audit::count(&mut conn).expect("count"), 4000);
    let report = audit::verify(&mut conn, 1000).expect("verify");
    assert_eq!(report.first_break, None);
    assert_eq!(report.checked, 4000);
    assert_eq!(audit::head(&mut conn).expect("head").0, 4000);
}

#[test]
fn sqlite_four_concurrent_writers_keep_one_chain() {
    concurrent_writers(false);
}

#[test]
fn postgres_four_concurrent_writers_keep_one_chain() {
    concurrent_writers(true);
}

/// Writes handed to the audit writer commit with their events: plain events, writes that
/// succeed and writes that fail after writing, sent at once so that they share groups. A
/// failing write leaves nothing behind and its neighbours alone; the events form one chain.
fn writes_commit_with_their_events(postgres: bool) {
    use idp::audit::AuditLog;
    use idp::store::{revoked_access_tokens, StoreError};
    let db = TestDb::new(postgres);
    let runtime = support::runtime();
    let log = AuditLog::start(db.store.clone()).expect("writer");
    let now = || chrono::Utc::now().naive_utc();
    let later = now() + chrono::Duration::hours(1);
    let results: Vec<_> = runtime.block_on(async {
        let tasks: Vec<_> = (0..90)
            .map(|n| {
                let log = log.clone();
                tokio::spawn(async move {
                    let jti = format!("{}-{n}", if n % 3 == 1 { "ok" } else { "bad" });
                    match n % 3 {
                        0 => log.record(event(n)).await,
                        written => {
                            log.write(move |conn| {
                                revoked_access_tokens::revoke(conn, &jti, "c", later, now())?;
                                if written == 1 {
                                    Ok(((), Some(event(n))))
                                } else {
                                    Err(StoreError::Conflict("test".into()))
                                }
                            })
                            .await
                        }
                    }
                })
            })
            .collect();
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.expect("join"));
        }
        results
    });
    for (n, result) in results.iter().enumerate() {
        assert_eq!(result.is_ok(), n % 3 != 2, "task {n}: {result:?}");
    }
    let mut conn = db.conn();
    for n in 0..90 {
        let ok = revoked_access_tokens::is_revoked(&mut conn, &format!("ok-{n}")).expect("read");
        let bad = revoked_access_tokens::is_revoked(&mut conn, &format!("bad-{n}")).expect("read");
        assert_eq!((ok, bad), (n % 3 == 1, false), "row of task {n}");
    }
    assert_eq!(audit::count(&mut conn).expect("count"), 60);
    let report = audit::verify(&mut conn, 64).expect("verify");
    assert_eq!((report.checked, report.first_break), (60, None));
}

#[test]
fn sqlite_writes_commit_with_their_events() {
    writes_commit_with_their_events(false);
}

#[test]
fn postgres_writes_commit_with_their_events() {
    writes_commit_with_their_events(true);
}

/// The writer's append after the head it last left: when the head has moved since (another
/// instance, or a request's own transaction), or was never what the writer believed, nothing
/// is written after the stale head; the group is chained after the real one.
fn a_stale_head_is_never_linked_to(db: &TestDb) {
    let mut conn = db.conn();
    let mut last = None;
    let group = |from: usize| (from..from + 5).map(event).collect::<Vec<_>>();
    assert_eq!(
        audit::append_after_last(&mut conn, &group(0), &mut last).expect("append"),
        5
    );
    assert_eq!(last.as_ref().map(|h| h.index), Some(5));
    // The writer's own next group links after it.
    assert_eq!(
        audit::append_after_last(&mut conn, &group(5), &mut last).expect("append"),
        5
    );
    assert_eq!(last.as_ref().map(|h| h.index), Some(10));
    // Someone else moves the head.
    audit::append(&mut conn, &event(100)).expect("append");
    assert_eq!(
        audit::append_after_last(&mut conn, &group(10), &mut last).expect("append"),
        5
    );
    assert_eq!(last.as_ref().map(|h| h.index), Some(16));
    // A head with the right position but not the right hash.
    let real = audit::head(&mut conn).expect("head");
    let mut forged = Some(audit::ChainHead {
        index: real.0,
        hash: vec![0; 32],
    });
    assert_eq!(
        audit::append_after_last(&mut conn, &group(15), &mut forged).expect("append"),
        5
    );
    assert_eq!(forged.as_ref().map(|h| h.index), Some(21));
    assert_eq!(audit::count(&mut conn).expect("count"), 21);
    let report = audit::verify(&mut conn, 8).expect("verify");
    assert_eq!((report.checked, report.first_break), (21, None));
    assert_eq!(audit::head(&mut conn).expect("head").0, 21);
}

/// Three audit writers on one database, as three instances run them, and a fourth thread
/// appending in its own transactions, all at once: one chain, no gap, no fork, every event.
fn several_writers_and_direct_appends(db: &TestDb) {
    use idp::audit::AuditLog;
    let runtime = support::runtime();
    let logs: Vec<AuditLog> = (0..3)
        .map(|_| AuditLog::start(db.store.clone()).expect("writer"))
        .collect();
    std::thread::scope(|scope| {
        scope.spawn(|| append(db, 300));
        several_waves(&runtime, &logs);
    });
    let mut conn = db.conn();
    assert_eq!(audit::count(&mut conn).expect("count"), 1500);
    let report = audit::verify(&mut conn, 500).expect("verify");
    assert_eq!((report.checked, report.first_break), (1500, None));
    assert_eq!(audit::head(&mut conn).expect("head").0, 1500);
}

/// 1,200 events over `logs`, in waves of 60 at once.
fn several_waves(runtime: &tokio::runtime::Runtime, logs: &[idp::audit::AuditLog]) {
    runtime.block_on(async {
        // Waves of concurrent events, so that each writer commits groups of several.
        for wave in 0..20 {
            let tasks: Vec<_> = (0..60)
                .map(|n| {
                    let log = logs[n % 3].clone();
                    tokio::spawn(async move { log.record(event(wave * 60 + n)).await })
                })
                .collect();
            for task in tasks {
                task.await.expect("join").expect("recorded");
            }
        }
    });
}

/// The writers' tests, on both backends.
mod writers {
    use super::*;
    on_both_backends!(TestDb::new;
        a_stale_head_is_never_linked_to,
        several_writers_and_direct_appends,
    );
}
