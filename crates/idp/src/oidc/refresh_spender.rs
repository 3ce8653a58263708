//! Refresh tokens spent in batches, on PostgreSQL.
//!
//! There every statement is a round trip and every commit a wait for the disk, and a refresh
//! that spends its token in a statement of its own pays both. One thread takes the uses that
//! arrived meanwhile and spends them in one statement ([`refresh_tokens::spend_many`]), on a
//! connection of its own while uses keep coming, beside the audit writer's: a burst of
//! refreshes costs one round trip and one commit for its tokens, and PostgreSQL's work for
//! them runs in parallel with the appends of their audit events.

use tokio::sync::{mpsc, oneshot};

use crate::store::refresh_tokens::{self, Spend, SpentToken};
use crate::store::{now, DbConnection, Store, StoreError, StoreResult};

/// Uses waiting for the thread; senders wait (back-pressure) when it is full.
const QUEUE_CAPACITY: usize = 4096;
/// Most uses spent in one statement.
const MAX_BATCH: usize = 256;

type Waiting = (Spend, oneshot::Sender<StoreResult<Option<SpentToken>>>);

/// Handle to the spending thread. Cheap to clone; the thread stops when every handle is
/// dropped.
#[derive(Clone)]
pub struct RefreshSpender {
    queue: mpsc::Sender<Waiting>,
}

impl std::fmt::Debug for RefreshSpender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshSpender").finish_non_exhaustive()
    }
}

impl RefreshSpender {
    /// Starts the thread over `store`.
    pub fn start(store: Store) -> std::io::Result<Self> {
        let (queue, receiver) = mpsc::channel(QUEUE_CAPACITY);
        std::thread::Builder::new()
            .name("refresh-spender".into())
            .spawn(move || spend_batches(&store, receiver))?;
        Ok(Self { queue })
    }

    /// Spends `spend` with the next batch ([`refresh_tokens::spend_many`]): what it spent, once
    /// committed, or `None` when nothing was.
    pub async fn spend(&self, spend: Spend) -> StoreResult<Option<SpentToken>> {
        let (done, outcome) = oneshot::channel();
        self.queue
            .send((spend, done))
            .await
            .map_err(|_| StoreError::Cancelled)?;
        outcome.await.map_err(|_| StoreError::Cancelled)?
    }
}

fn spend_batches(store: &Store, mut receiver: mpsc::Receiver<Waiting>) {
    let mut batch: Vec<Waiting> = Vec::with_capacity(MAX_BATCH);
    let mut connection = None;
    while crate::batch::next_batch(&mut receiver, &mut batch, MAX_BATCH) > 0 {
        let (uses, waiting): (Vec<Spend>, Vec<_>) = batch.drain(..).unzip();
        let mut conn = match connection.take().map_or_else(|| store.connection(), Ok) {
            Ok(conn) => conn,
            Err(e) => {
                tracing::error!(error = %e, "refresh spender has no database connection");
                for done in waiting {
                    // Answered as unavailable, like any request that found no connection.
                    let _ = done.send(Err(StoreError::Connect(
                        diesel::ConnectionError::BadConnection(e.to_string()),
                    )));
                }
                continue;
            }
        };
        let spent =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| spend_all(&mut conn, &uses)));
        let Ok(outcomes) = spent else {
            // Dropping the waiting callers' channels tells them `Cancelled`. The connection is
            // not kept: it goes back to the pool, which drops it if it is broken.
            tracing::error!("spending a batch of refresh tokens panicked");
            continue;
        };
        for (done, outcome) in waiting.into_iter().zip(outcomes) {
            let _ = done.send(outcome);
        }
        // A pooled connection goes back when the queue runs dry, so the pool is never starved.
        if !receiver.is_empty() {
            connection = Some(conn);
        }
    }
}

/// Spends `uses` in one statement or, should it fail (a deadlock with another instance's
/// batch, say), one at a time, so that one bad use does not fail the others.
fn spend_all(conn: &mut DbConnection, uses: &[Spend]) -> Vec<StoreResult<Option<SpentToken>>> {
    let at = now();
    match refresh_tokens::spend_many(conn, uses, at) {
        Ok(spent) => spent.into_iter().map(Ok).collect(),
        Err(e) => {
            tracing::warn!(error = %e, uses = uses.len(), "refresh tokens not spent together; spending them one by one");
            uses.iter()
                .map(|one| {
                    refresh_tokens::spend_many(conn, std::slice::from_ref(one), at)
                        .map(|mut spent| spent.pop().flatten())
                })
                .collect()
        }
    }
}
