//! The audit log writer: every token issuance, refresh, revocation, introspection and logout
//! is recorded before the answer leaves.
//!
//! Events go through one writer thread that commits them in groups: each caller still waits
//! until its own event is durable, but a burst of requests costs one write transaction instead
//! of one each. On SQLite, which has a single writer, that is what keeps the token endpoint
//! from queueing behind its own audit rows.

pub mod chain;
pub mod console;

use tokio::sync::{mpsc, oneshot};

use crate::store::audit::{self, NewAuditEvent};
use crate::store::{Store, StoreError, StoreResult};

/// Where a request came from, as the audit log records it. Filled by the HTTP layer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestOrigin {
    pub ip: Option<String>,
    /// At most 256 characters.
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

impl RequestOrigin {
    /// An event of `event_type` for a request from here, with a new id and the current time.
    pub fn event(
        &self,
        event_type: &str,
        actor: Option<String>,
        subject: Option<String>,
        client_id: Option<&str>,
        detail: &serde_json::Value,
    ) -> NewAuditEvent {
        NewAuditEvent {
            id: crate::store::audit::new_event_id(),
            occurred_at: crate::store::now(),
            event_type: event_type.into(),
            actor,
            subject,
            client_id: client_id.map(str::to_string),
            ip: self.ip.clone(),
            user_agent: self.user_agent.clone(),
            request_id: self.request_id.clone(),
            detail: detail.to_string(),
        }
    }
}

/// Events waiting for the writer; senders wait (back-pressure) when it is full.
const QUEUE_CAPACITY: usize = 4096;
/// Most events committed in one transaction.
const MAX_GROUP: usize = 256;

type Pending = (NewAuditEvent, oneshot::Sender<StoreResult<()>>);

/// Handle to the writer. Cheap to clone; the writer stops when every handle is dropped.
#[derive(Clone)]
pub struct AuditLog {
    queue: mpsc::Sender<Pending>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog").finish_non_exhaustive()
    }
}

impl AuditLog {
    /// Starts the writer thread over `store`.
    pub fn start(store: Store) -> std::io::Result<Self> {
        let (queue, receiver) = mpsc::channel(QUEUE_CAPACITY);
        std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || write_groups(&store, receiver))?;
        Ok(Self { queue })
    }

    /// Appends `event` and returns once it is committed.
    pub async fn record(&self, event: NewAuditEvent) -> StoreResult<()> {
        let (done, committed) = oneshot::channel();
        self.queue
            .send((event, done))
            .await
            .map_err(|_| StoreError::Cancelled)?;
        committed.await.map_err(|_| StoreError::Cancelled)?
    }
}

fn write_groups(store: &Store, mut receiver: mpsc::Receiver<Pending>) {
    let mut group: Vec<Pending> = Vec::with_capacity(MAX_GROUP);
    while receiver.blocking_recv_many(&mut group, MAX_GROUP) > 0 {
        let (events, waiting): (Vec<NewAuditEvent>, Vec<_>) = group.drain(..).unzip();
        let result = store
            .connection()
            .and_then(|mut conn| audit::append_all(&mut conn, &events).map(|_| ()));
        match result {
            Ok(()) => {
                for done in waiting {
                    let _ = done.send(Ok(()));
                }
            }
            Err(group_error) => {
                // One bad event must not fail its neighbours: retry each on its own.
                tracing::warn!(error = %group_error, events = events.len(), "audit group commit failed; writing events one by one");
                for (event, done) in events.into_iter().zip(waiting) {
                    let one = store
                        .connection()
                        .and_then(|mut conn| audit::append(&mut conn, &event).map(|_| ()));
                    if let Err(e) = &one {
                        tracing::error!(error = %e, event_type = %event.event_type, "audit event not written");
                    }
                    let _ = done.send(one);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{now, DatabaseTarget, PoolOptions};

    fn event(n: usize) -> NewAuditEvent {
        NewAuditEvent {
            id: crate::store::audit::new_event_id(),
            occurred_at: now(),
            event_type: format!("test.{n}"),
            actor: None,
            subject: Some("s".into()),
            client_id: None,
            ip: None,
            user_agent: None,
            request_id: None,
            detail: "{}".into(),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_events_are_all_committed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(
            DatabaseTarget::Sqlite(dir.path().join("a.db")),
            &PoolOptions {
                max_size: 4,
                connect_timeout: std::time::Duration::from_secs(5),
                sqlite_busy_timeout_ms: 5000,
            },
        )
        .expect("store");
        let log = AuditLog::start(store.clone()).expect("writer");
        let tasks: Vec<_> = (0..200)
            .map(|n| {
                let log = log.clone();
                tokio::spawn(async move { log.record(event(n)).await })
            })
            .collect();
        for t in tasks {
            t.await.expect("join").expect("committed");
        }
        let mut conn = store.connection().expect("conn");
        assert_eq!(audit::count(&mut conn).expect("count"), 200);
        // Written in groups by one multi-row insert each, the rows still form one chain.
        let report = audit::verify(&mut conn, 64).expect("verify");
        assert_eq!((report.checked, report.first_break), (200, None));
    }
}
