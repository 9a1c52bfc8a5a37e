//! A waker for futures that one task polls together, which tells the wake-ups
//! those futures give each other during the poll from the ones that come from
//! outside.
//!
//! An upstream connection and the request or response body that uses it are
//! polled by the same task ([`crate::upstream_pool`]), and hyper hands the
//! response head over a oneshot channel and the body over a channel whose
//! receiver wakes the sender on every take. Through the task's own waker each
//! of those wake-ups schedules the whole connection task once more, for a poll
//! that finds nothing to do (BENCHMARKS.md, "eighth wave"). Polled through
//! [`LocalWake::poll`], a wake-up during the poll makes it poll the futures
//! again at once instead; one from outside (the socket became readable) wakes
//! the task as usual.
//!
//! It must never lose a wake-up that the task needs: a wake-up during the poll
//! is either acted on by another round of the poll, or, past
//! [`ROUNDS`] (a future that keeps waking itself, as tokio's cooperative budget
//! does), handed to the task. One during a poll that ends ready is dropped: the
//! futures are polled again before anything of theirs is awaited.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use futures_util::task::AtomicWaker;

/// Rounds of one poll before a wake-up during it goes to the task: two cover
/// hyper's hand-overs (the body receiver asks for data, the connection sends
/// it); more would only spin on a future that keeps waking itself.
const ROUNDS: usize = 3;

/// The futures are being polled (by [`LocalWake::poll`]).
const POLLING: u8 = 1;
/// Woken while [`POLLING`].
const WOKEN: u8 = 2;

/// One per set of futures polled together (one upstream connection).
pub struct LocalWake {
    shared: Arc<Shared>,
    /// `shared` as a waker, made once.
    waker: Waker,
}

struct Shared {
    state: AtomicU8,
    /// The task that polled last.
    task: AtomicWaker,
}

impl Wake for Shared {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.state.fetch_or(WOKEN, Ordering::AcqRel) & POLLING == 0 {
            self.task.wake();
        }
    }
}

impl Default for LocalWake {
    fn default() -> Self {
        let shared = Arc::new(Shared {
            state: AtomicU8::new(0),
            task: AtomicWaker::new(),
        });
        Self {
            waker: Waker::from(shared.clone()),
            shared,
        }
    }
}

impl LocalWake {
    /// Polls `f` with this waker on behalf of the task of `cx`, again at once
    /// while it is pending and was woken during its poll (at most [`ROUNDS`]
    /// times; then the task is woken).
    pub fn poll<T>(
        &self,
        cx: &mut Context<'_>,
        mut f: impl FnMut(&mut Context<'_>) -> Poll<T>,
    ) -> Poll<T> {
        self.shared.task.register(cx.waker());
        let mut local = Context::from_waker(&self.waker);
        for _ in 0..ROUNDS {
            self.shared.state.store(POLLING, Ordering::Release);
            let polled = f(&mut local);
            // Not woken during the poll: later wake-ups go to the task.
            let quiet = self
                .shared
                .state
                .compare_exchange(POLLING, 0, Ordering::AcqRel, Ordering::Acquire)
                .is_ok();
            if polled.is_ready() || quiet {
                self.shared.state.store(0, Ordering::Release);
                return polled;
            }
        }
        self.shared.state.store(0, Ordering::Release);
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// No task waits any more: wake-ups until the next [`LocalWake::poll`]
    /// wake no one.
    pub fn forget(&self) {
        drop(self.shared.task.take());
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    /// Counts the task's wake-ups.
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn task() -> (Arc<Count>, Waker) {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        (count, waker)
    }

    #[test]
    fn a_wake_up_during_the_poll_polls_again_instead_of_waking_the_task() {
        let (count, waker) = task();
        let local = LocalWake::default();
        let mut rounds = 0;
        let polled = local.poll(&mut Context::from_waker(&waker), |cx| {
            rounds += 1;
            if rounds == 1 {
                cx.waker().wake_by_ref();
                Poll::Pending
            } else {
                Poll::Ready(rounds)
            }
        });
        assert_eq!(polled, Poll::Ready(2));
        assert_eq!(count.0.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_wake_up_after_the_poll_wakes_the_task() {
        let (count, waker) = task();
        let local = LocalWake::default();
        let mut kept = None;
        let polled: Poll<()> = local.poll(&mut Context::from_waker(&waker), |cx| {
            kept = Some(cx.waker().clone());
            Poll::Pending
        });
        assert_eq!(polled, Poll::Pending);
        assert_eq!(count.0.load(Ordering::Relaxed), 0);
        kept.expect("polled").wake();
        assert_eq!(count.0.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_future_that_keeps_waking_itself_wakes_the_task_after_a_few_rounds() {
        let (count, waker) = task();
        let local = LocalWake::default();
        let mut rounds = 0;
        let polled: Poll<()> = local.poll(&mut Context::from_waker(&waker), |cx| {
            rounds += 1;
            cx.waker().wake_by_ref();
            Poll::Pending
        });
        assert_eq!(polled, Poll::Pending);
        assert_eq!(rounds, ROUNDS);
        assert_eq!(count.0.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_forgotten_task_is_not_woken() {
        let (count, waker) = task();
        let local = LocalWake::default();
        let mut kept = None;
        let _: Poll<()> = local.poll(&mut Context::from_waker(&waker), |cx| {
            kept = Some(cx.waker().clone());
            Poll::Pending
        });
        local.forget();
        kept.expect("polled").wake();
        assert_eq!(count.0.load(Ordering::Relaxed), 0);
    }
}
