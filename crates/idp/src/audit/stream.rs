//! The audit log as a stream for a SIEM: every row committed to the chain, in chain order,
//! written to the log as it lands (`audit.stream_to_log`).
//!
//! The stream follows the chain in the database rather than the writer's groups, so it carries
//! exactly the committed rows, including those written in a sign-in's own transaction, by the
//! command line or by another instance, and never a row that was rolled back.

use std::time::Duration;

use crate::store::audit::{self, AuditEvent};
use crate::store::Store;

/// How often the stream looks for new rows.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Most rows read per look; a backlog drains over consecutive looks.
const BATCH: i64 = 1000;

/// Follows the chain from its current end, writing each new row to the log (target `audit`,
/// level `info`) every `interval`, until the runtime stops. A failed read is retried at the
/// next look, from the last row written, so nothing is skipped.
pub async fn to_log(store: Store, interval: Duration) {
    let mut after = loop {
        match store
            .run(|conn| audit::head(conn).map(|(index, _)| index))
            .await
        {
            Ok(index) => break index,
            Err(e) => {
                tracing::warn!(error = %e, "audit stream cannot read the chain's end; retrying");
                tokio::time::sleep(interval).await;
            }
        }
    };
    let mut ticker = tokio::time::interval(interval);
    loop {
        ticker.tick().await;
        let from = after;
        let rows = store
            .run(move |conn| audit::chained_between(conn, from, i64::MAX, BATCH))
            .await;
        match rows {
            Ok(rows) => {
                for row in &rows {
                    write(row);
                }
                if let Some(last) = rows.last().and_then(|r| r.chain_index) {
                    after = last;
                }
            }
            Err(e) => tracing::warn!(error = %e, "audit stream read failed; retrying"),
        }
    }
}

/// One row as one log event. The row holds no token, code, password or secret (docs/audit.md),
/// so all of it goes out.
fn write(row: &AuditEvent) {
    tracing::info!(
        target: "audit",
        chain_index = row.chain_index,
        id = %row.id,
        occurred_at = %row.occurred_at.and_utc().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        event_type = %row.event_type,
        actor = row.actor.as_deref(),
        subject = row.subject.as_deref(),
        client_id = row.client_id.as_deref(),
        ip = row.ip.as_deref(),
        user_agent = row.user_agent.as_deref(),
        request_id = row.request_id.as_deref(),
        detail = %row.detail,
        row_hash = %row.row_hash.as_deref().map(crate::crypto::hex).unwrap_or_default(),
        "audit event"
    );
}
