//! Batches taken off a queue by a thread of their own: the audit writer's groups and the
//! refresh spender's batches.
//!
//! Such a thread that sleeps as soon as its queue is empty must be woken for nearly every
//! batch under load, and the waking is paid by the request that queues next: a futex call and
//! a context switch. A profile of `client_credentials` with the audit writer storing nothing
//! put these wake-ups at about a tenth of the server's CPU. So the thread first keeps looking
//! for a short while, yielding its core to anyone runnable, and sleeps only when the queue stays
//! empty: under load the next request is found without a wake-up, and at rest the thread
//! sleeps after [`LOOK_BEFORE_SLEEPING`] of looking.

use std::time::{Duration, Instant};

use tokio::sync::mpsc::{self, error::TryRecvError};

/// How long a batching thread keeps looking for more work before it sleeps. Requests arrive
/// every few microseconds under load; a few times that lets a burst's next request be found
/// awake, without costing an idle server anything it would notice.
pub const LOOK_BEFORE_SLEEPING: Duration = Duration::from_micros(200);

/// Appends up to `max` queued items to `batch` and returns how many, as
/// [`mpsc::Receiver::blocking_recv_many`] does, waiting for the first one when none is queued:
/// by looking, yielding in between, for [`LOOK_BEFORE_SLEEPING`], then asleep. Returns 0 once
/// the queue is closed and empty.
pub fn next_batch<T>(receiver: &mut mpsc::Receiver<T>, batch: &mut Vec<T>, max: usize) -> usize {
    let mut deadline = None;
    loop {
        match receiver.try_recv() {
            Ok(first) => {
                batch.push(first);
                let mut taken = 1;
                while taken < max {
                    let Ok(item) = receiver.try_recv() else { break };
                    batch.push(item);
                    taken += 1;
                }
                return taken;
            }
            Err(TryRecvError::Disconnected) => return 0,
            Err(TryRecvError::Empty) => {
                let until = *deadline.get_or_insert_with(|| Instant::now() + LOOK_BEFORE_SLEEPING);
                if Instant::now() >= until {
                    return receiver.blocking_recv_many(batch, max);
                }
                std::thread::yield_now();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_what_is_queued_up_to_the_limit() {
        let (sender, mut receiver) = mpsc::channel(16);
        for n in 0..5 {
            sender.try_send(n).expect("queued");
        }
        let mut batch = Vec::new();
        assert_eq!(next_batch(&mut receiver, &mut batch, 3), 3);
        assert_eq!(batch, [0, 1, 2]);
        // What the batch already held is neither counted nor in the way.
        assert_eq!(next_batch(&mut receiver, &mut batch, 3), 2);
        assert_eq!(batch, [0, 1, 2, 3, 4]);
    }

    #[test]
    fn waits_past_the_look_for_a_late_item_then_ends_with_the_queue() {
        let (sender, mut receiver) = mpsc::channel(16);
        let late = std::thread::spawn(move || {
            // Well after the thread has stopped looking and gone to sleep.
            std::thread::sleep(LOOK_BEFORE_SLEEPING * 20);
            sender.blocking_send(7).expect("queued");
        });
        let mut batch = Vec::new();
        assert_eq!(next_batch(&mut receiver, &mut batch, 8), 1);
        assert_eq!(batch, [7]);
        late.join().expect("sender");
        // The sender is gone and nothing is queued: the batching ends.
        batch.clear();
        assert_eq!(next_batch(&mut receiver, &mut batch, 8), 0);
        assert!(batch.is_empty());
    }
}
