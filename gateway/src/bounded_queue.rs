//! A bounded multi-producer, single-consumer queue whose memory follows its
//! backlog, for the analytics events.
//!
//! std's `sync_channel(n)` allocates and writes all `n` slots when it is made:
//! 262 KB for the analytics default of 16,384 events, resident from start
//! whether or not an event is ever queued. This queue is std's list-based
//! `channel` (blocks of slots allocated as items arrive, freed as they are
//! received) plus a count of what is queued, which is the bound: an idle queue
//! holds no slots.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvError, TryRecvError};

/// A queue of at most `capacity` items.
pub fn bounded<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    let (tx, rx) = mpsc::channel();
    let queued = Arc::new(AtomicUsize::new(0));
    (
        Sender {
            tx,
            queued: queued.clone(),
            capacity,
        },
        Receiver { rx, queued },
    )
}

/// Why [`Sender::try_send`] gave the item back.
#[derive(Debug, PartialEq, Eq)]
pub enum TrySendError<T> {
    /// `capacity` items are queued.
    Full(T),
    /// The receiver is gone.
    Disconnected(T),
}

/// The sending side; clones share the one bound.
pub struct Sender<T> {
    tx: mpsc::Sender<T>,
    /// Items sent and not yet received (counted before they are sent, so it
    /// never reads lower than the queue's length).
    queued: Arc<AtomicUsize>,
    capacity: usize,
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
            queued: self.queued.clone(),
            capacity: self.capacity,
        }
    }
}

impl<T> Sender<T> {
    /// Never blocks: a full queue gives the item back.
    pub fn try_send(&self, item: T) -> Result<(), TrySendError<T>> {
        // The count is only a bound: no other memory is ordered by it.
        if self.queued.fetch_add(1, Ordering::Relaxed) >= self.capacity {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            return Err(TrySendError::Full(item));
        }
        self.tx.send(item).map_err(|e| {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            TrySendError::Disconnected(e.0)
        })
    }

    /// Queues past the bound; for the one message that must not be dropped
    /// (the writer's stop). `Err` gives it back when the receiver is gone.
    pub fn send_past_bound(&self, item: T) -> Result<(), T> {
        self.queued.fetch_add(1, Ordering::Relaxed);
        self.tx.send(item).map_err(|e| {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            e.0
        })
    }
}

/// The receiving side.
pub struct Receiver<T> {
    rx: mpsc::Receiver<T>,
    queued: Arc<AtomicUsize>,
}

impl<T> Receiver<T> {
    /// Blocks for the next item; `Err` once every sender is gone and the queue
    /// is empty.
    pub fn recv(&self) -> Result<T, RecvError> {
        let item = self.rx.recv()?;
        self.queued.fetch_sub(1, Ordering::Relaxed);
        Ok(item)
    }

    /// The next item if one is queued.
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        let item = self.rx.try_recv()?;
        self.queued.fetch_sub(1, Ordering::Relaxed);
        Ok(item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_capacity_items_then_refuses_until_one_is_received() {
        let (tx, rx) = bounded(3);
        let other = tx.clone();
        for i in 0..3 {
            assert_eq!(tx.try_send(i), Ok(()));
        }
        // The bound is shared by every sender.
        assert_eq!(other.try_send(3), Err(TrySendError::Full(3)));
        assert_eq!(tx.try_send(4), Err(TrySendError::Full(4)));
        assert_eq!(rx.recv(), Ok(0));
        assert_eq!(other.try_send(5), Ok(()));
        assert_eq!(tx.try_send(6), Err(TrySendError::Full(6)));
        // The stop message goes in past the bound.
        assert_eq!(tx.send_past_bound(7), Ok(()));
        let rest: Vec<i32> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
        assert_eq!(rest, [1, 2, 5, 7]);
        assert_eq!(tx.try_send(8), Ok(()));
    }

    #[test]
    fn a_gone_receiver_gives_the_item_back_without_using_room() {
        let (tx, rx) = bounded(1);
        drop(rx);
        assert_eq!(tx.try_send(1), Err(TrySendError::Disconnected(1)));
        assert_eq!(tx.try_send(2), Err(TrySendError::Disconnected(2)));
        assert_eq!(tx.send_past_bound(3), Err(3));
    }
}
