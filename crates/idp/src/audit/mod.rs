//! The audit log writer: every token issuance, refresh, revocation, introspection and logout
//! is recorded before the answer leaves.
//!
//! Events go through one writer thread that commits them in groups: each caller still waits
//! until its own event is durable, but a burst of requests costs one write transaction instead
//! of one each. On SQLite, which has a single writer, that is what keeps the token endpoint
//! from queueing behind its own audit rows.

pub mod chain;
pub mod console;
pub mod stream;

use tokio::sync::{mpsc, oneshot};

use crate::store::audit::{self, NewAuditEvent};
use crate::store::{
    DatabaseTarget, DbConnection, DbConnectionGuard, Store, StoreError, StoreResult,
};

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

/// Requests waiting for the writer; senders wait (back-pressure) when it is full.
const QUEUE_CAPACITY: usize = 4096;
/// Most requests committed in one transaction.
const MAX_GROUP: usize = 256;

/// Hands a committed (or failed) write's outcome to its caller.
type Deliver = Box<dyn FnOnce(StoreResult<()>) + Send>;
/// A write run inside the group's transaction: its audit event, if any, and how to tell its
/// caller once the group is committed.
type WriteJob = Box<dyn FnOnce(&mut DbConnection) -> (Option<NewAuditEvent>, Deliver) + Send>;

#[expect(
    clippy::large_enum_variant,
    reason = "events are the common case; boxing them would cost an allocation each"
)]
enum Pending {
    Event(NewAuditEvent, oneshot::Sender<StoreResult<()>>),
    Write(WriteJob),
}

/// Handle to the writer. Cheap to clone; the writer stops when every handle is dropped.
#[derive(Clone)]
pub struct AuditLog {
    queue: mpsc::Sender<Pending>,
    store: Store,
    /// The writer thread, until someone takes it to wait for its end ([`Self::writer_thread`]).
    thread: std::sync::Arc<parking_lot::Mutex<Option<std::thread::JoinHandle<()>>>>,
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
        let writer_store = store.clone();
        let thread = std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || write_groups(&writer_store, receiver))?;
        Ok(Self {
            queue,
            store,
            thread: std::sync::Arc::new(parking_lot::Mutex::new(Some(thread))),
        })
    }

    /// The writer thread, for a stopping server to wait for once every handle is dropped: the
    /// thread then ends, closing its database connection. Only the first call gets it.
    pub fn writer_thread(&self) -> Option<std::thread::JoinHandle<()>> {
        self.thread.lock().take()
    }

    /// Appends `event` and returns once it is committed.
    pub async fn record(&self, event: NewAuditEvent) -> StoreResult<()> {
        let (done, committed) = oneshot::channel();
        self.queue
            .send(Pending::Event(event, done))
            .await
            .map_err(|_| StoreError::Cancelled)?;
        committed.await.map_err(|_| StoreError::Cancelled)?
    }

    /// Runs `job` in a write transaction and appends the audit event it returns; returns once
    /// both are committed, and when `job` fails, nothing of it is.
    ///
    /// On SQLite the job runs on the writer thread, in a savepoint of the writer's group
    /// transaction, and its event is chained with the group's: a burst of writes costs one
    /// commit, on one connection whose page cache stays warm, instead of one commit each on
    /// connections that take turns for the single writer lock and reread their pages after
    /// every other commit. `job` must therefore be short and never wait: sign or hash before
    /// calling this. On PostgreSQL, where writers do not queue, it runs on the blocking pool
    /// and its event is then recorded as by [`record`](Self::record).
    pub async fn write<T, F>(&self, job: F) -> StoreResult<T>
    where
        F: FnOnce(&mut DbConnection) -> StoreResult<(T, Option<NewAuditEvent>)> + Send + 'static,
        T: Send + 'static,
    {
        self.write_in(job, true).await
    }

    /// Like [`write`](Self::write), for a job whose writes are one statement, atomic by itself
    /// (it may read, or find that nothing is to be written, before it). On PostgreSQL the job
    /// then runs without a transaction around it, which saves the `BEGIN` and `COMMIT` round
    /// trips; on SQLite this is [`write`](Self::write).
    pub async fn write_statement<T, F>(&self, job: F) -> StoreResult<T>
    where
        F: FnOnce(&mut DbConnection) -> StoreResult<(T, Option<NewAuditEvent>)> + Send + 'static,
        T: Send + 'static,
    {
        self.write_in(job, false).await
    }

    async fn write_in<T, F>(&self, job: F, transaction: bool) -> StoreResult<T>
    where
        F: FnOnce(&mut DbConnection) -> StoreResult<(T, Option<NewAuditEvent>)> + Send + 'static,
        T: Send + 'static,
    {
        if !matches!(self.store.target(), DatabaseTarget::Sqlite(_)) {
            let (value, event) = self
                .store
                .run(move |conn| {
                    if transaction {
                        crate::store::write_transaction(conn, job)
                    } else {
                        job(conn)
                    }
                })
                .await?;
            if let Some(event) = event {
                self.record(event).await?;
            }
            return Ok(value);
        }
        let (done, outcome) = oneshot::channel::<StoreResult<T>>();
        let job: WriteJob = Box::new(move |conn| {
            // A savepoint, so that a failing job leaves the rest of its group alone.
            match crate::store::write_transaction(conn, job) {
                Ok((value, event)) => (
                    event,
                    Box::new(move |committed: StoreResult<()>| {
                        let _ = done.send(committed.map(|()| value));
                    }),
                ),
                Err(e) => (
                    None,
                    Box::new(move |_| {
                        let _ = done.send(Err(e));
                    }),
                ),
            }
        });
        self.queue
            .send(Pending::Write(job))
            .await
            .map_err(|_| StoreError::Cancelled)?;
        outcome.await.map_err(|_| StoreError::Cancelled)?
    }
}

/// The writer's connection: its own on SQLite, so that its page cache stays warm from one
/// group to the next (in WAL mode a connection drops its cache whenever another one has
/// committed, and the writer is nearly the only one that commits); borrowed from the pool on
/// PostgreSQL, and kept only while more requests wait.
enum WriterConnection {
    Own(DbConnection),
    Pooled(DbConnectionGuard),
}

impl WriterConnection {
    fn open(store: &Store) -> StoreResult<Self> {
        match store.target() {
            DatabaseTarget::Sqlite(_) => store.open_connection().map(Self::Own),
            DatabaseTarget::Postgres(_) => store.connection().map(Self::Pooled),
        }
    }

    fn get(&mut self) -> &mut DbConnection {
        match self {
            Self::Own(conn) => conn,
            Self::Pooled(conn) => conn,
        }
    }
}

fn write_groups(store: &Store, mut receiver: mpsc::Receiver<Pending>) {
    let mut group: Vec<Pending> = Vec::with_capacity(MAX_GROUP);
    let mut connection: Option<WriterConnection> = None;
    // Where this writer left the chain: on PostgreSQL its next group links there if no one
    // else has moved the head since ([`audit::append_after_last`]).
    let mut last_head: Option<audit::ChainHead> = None;
    while crate::batch::next_batch(&mut receiver, &mut group, MAX_GROUP) > 0 {
        let conn = match connection.take() {
            Some(conn) => Ok(conn),
            None => WriterConnection::open(store),
        };
        let mut conn = match conn {
            Ok(conn) => conn,
            Err(e) => {
                tracing::error!(error = %e, "audit writer has no database connection");
                for pending in group.drain(..) {
                    match pending {
                        // Answered as unavailable, like any request that found no connection.
                        Pending::Event(_, done) => {
                            let _ = done.send(Err(StoreError::Connect(
                                diesel::ConnectionError::BadConnection(e.to_string()),
                            )));
                        }
                        // Dropping a job closes its channel: its caller gets `Cancelled`.
                        Pending::Write(job) => drop(job),
                    }
                }
                continue;
            }
        };
        if !write_group(conn.get(), &mut group, &mut last_head) {
            // Closing it rolls back whatever the panic left open; the next group opens another.
            continue;
        }
        // A pooled connection goes back when the queue runs dry, so a small pool is never
        // starved.
        if matches!(conn, WriterConnection::Own(_)) || !receiver.is_empty() {
            connection = Some(conn);
        }
    }
}

/// Commits one group: its writes, each in a savepoint, then every event in one chain. Returns
/// false when a write panicked: the connection's transaction state is then unknown, so the
/// whole group fails and the connection must be closed.
///
/// A group of events only (always, on PostgreSQL, where writes run on the blocking pool) is
/// appended after `last_head` without a transaction of the writer's own.
fn write_group(
    conn: &mut DbConnection,
    group: &mut Vec<Pending>,
    last_head: &mut Option<audit::ChainHead>,
) -> bool {
    let mut events = Vec::with_capacity(group.len());
    // Each plain event's place in `events`, among the writes' own events.
    let mut event_done: Vec<(usize, oneshot::Sender<StoreResult<()>>)> =
        Vec::with_capacity(group.len());
    let mut job_done: Vec<Deliver> = Vec::new();
    // Moved into the transaction: if it cannot even begin, the requests are dropped with it
    // and their callers told at once, rather than left in the buffer until the next arrival.
    let pending = std::mem::take(group);
    let mut panicked = false;
    let events_only = pending.iter().all(|p| matches!(p, Pending::Event(..)));
    let result = if events_only && matches!(conn, DbConnection::Postgres(_)) {
        for pending in pending {
            if let Pending::Event(event, done) = pending {
                event_done.push((events.len(), done));
                events.push(event);
            }
        }
        audit::append_after_last(conn, &events, last_head)
    } else {
        // Another transaction moves the head here; the next group reads it again.
        *last_head = None;
        crate::store::write_transaction(conn, |conn| {
            for pending in pending {
                match pending {
                    Pending::Event(event, done) => {
                        event_done.push((events.len(), done));
                        events.push(event);
                    }
                    Pending::Write(job) => {
                        // A panicking job drops its caller's channel as it unwinds (the
                        // caller gets `Cancelled`); the writer thread lives on.
                        let ran =
                            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(conn)));
                        let Ok((event, deliver)) = ran else {
                            panicked = true;
                            return Err(StoreError::NotCommitted("a write panicked".into()));
                        };
                        events.extend(event);
                        job_done.push(deliver);
                    }
                }
            }
            audit::append_in_transaction(conn, &events)
        })
    };
    if panicked {
        tracing::error!("a write of the audit writer's group panicked; the group is not committed");
        for deliver in job_done {
            deliver(Err(StoreError::NotCommitted(
                "a write of its group panicked".into(),
            )));
        }
        for (_, done) in event_done {
            let _ = done.send(Err(StoreError::NotCommitted(
                "a write of its group panicked".into(),
            )));
        }
        return false;
    }
    match result {
        Ok(_) => {
            for (_, done) in event_done {
                let _ = done.send(Ok(()));
            }
            for deliver in job_done {
                deliver(Ok(()));
            }
        }
        Err(group_error) => {
            // The writes were rolled back with the group: their callers get the error. One
            // bad event must not fail its neighbours: the plain events are retried one by one.
            tracing::warn!(error = %group_error, events = events.len(), "audit group commit failed; writing events one by one");
            for deliver in job_done {
                deliver(Err(StoreError::NotCommitted(format!(
                    "its group was rolled back: {group_error}"
                ))));
            }
            for (at, done) in event_done {
                let event = &events[at];
                let one = audit::append(conn, event).map(|_| ());
                if let Err(e) = &one {
                    tracing::error!(error = %e, event_type = %event.event_type, "audit event not written");
                }
                let _ = done.send(one);
            }
        }
    }
    true
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

    fn sqlite_store(dir: &tempfile::TempDir, max_size: u32) -> Store {
        Store::open(
            DatabaseTarget::Sqlite(dir.path().join("audit.db")),
            &PoolOptions {
                max_size,
                connect_timeout: std::time::Duration::from_secs(5),
                sqlite_busy_timeout_ms: 5000,
            },
        )
        .expect("store")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_events_are_all_committed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = sqlite_store(&dir, 4);
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_write_fails_its_group_and_the_writer_goes_on() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = sqlite_store(&dir, 2);
        let log = AuditLog::start(store.clone()).expect("writer");
        let tasks: Vec<_> = (0..40)
            .map(|n| {
                let log = log.clone();
                tokio::spawn(async move {
                    if n == 20 {
                        log.write(|_| -> StoreResult<((), Option<NewAuditEvent>)> {
                            panic!("a bug in a write job")
                        })
                        .await
                    } else {
                        log.record(event(n)).await
                    }
                })
            })
            .collect();
        let mut committed = 0;
        for (n, t) in tasks.into_iter().enumerate() {
            let result = t.await.expect("join");
            if n == 20 {
                assert!(result.is_err(), "the panicking write reported success");
            } else if result.is_ok() {
                committed += 1;
            }
        }
        // The writer survived: a later event is committed.
        log.record(event(99)).await.expect("writer still running");
        let mut conn = store.connection().expect("conn");
        // Exactly the events reported as committed are there, in one unbroken chain.
        assert_eq!(audit::count(&mut conn).expect("count"), committed + 1);
        let report = audit::verify(&mut conn, 64).expect("verify");
        assert_eq!((report.checked, report.first_break), (committed + 1, None));
    }
}
