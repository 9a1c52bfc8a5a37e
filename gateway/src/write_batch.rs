//! Writes that wait for the worker's other ready tasks, so that a worker sends
//! in bursts instead of one message at a time between its reads.
//!
//! Each socket write wakes the reader at the other end. When that reader is on
//! a CPU that went idle since its last message, the wake-up is an
//! inter-processor interrupt, paid by the writer's CPU with interrupts off
//! (`sock_def_readable` in a kernel profile). A worker that reads a request,
//! writes it upstream, reads the next, writes it, … spaces its writes by a
//! request's processing time, long enough for the reader's CPU to go idle
//! between them: the gateway caused 1.0–1.25 such interrupts per request on
//! loopback, nginx 0.3–0.85, haproxy (which runs all of a poll's reads before
//! its sends) 0.06–0.19 (BENCHMARKS.md, "eleventh wave": on that VM, where an
//! interrupt is a VM exit, this saves 20–30 % of the CPU per request; on a quiet
//! machine they were rare for every proxy, and it saves 2–15 %). Here the first write
//! of a flush goes to the back of the worker's run queue (the task wakes itself
//! and returns `Pending`): the tasks the same readiness poll woke run first,
//! and the writes of all of them then follow each other, so one wake-up finds
//! the reader still busy with the last.
//!
//! Only when another request is in flight on the same worker ([`Active`]): a
//! lone request has nothing to wait for, and would pay a poll of its task for
//! nothing. Never reorders the bytes of one connection and never holds a write
//! for longer than one pass over the tasks already ready; reads, flushes and
//! shutdowns are not delayed.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::workers;

/// Counters of requests in flight, one per worker (index modulo `SLOTS`), each
/// on a cache line of its own.
const SLOTS: usize = 64;

#[repr(align(64))]
struct Slot(AtomicUsize);

static IN_FLIGHT: [Slot; SLOTS] = [const { Slot(AtomicUsize::new(0)) }; SLOTS];

/// One request in flight on the worker that started it, until dropped (on
/// whichever thread: the slot is kept).
#[derive(Debug)]
pub struct Active(usize);

impl Active {
    pub fn start() -> Self {
        let slot = workers::current() % SLOTS;
        IN_FLIGHT[slot].0.fetch_add(1, Ordering::Relaxed);
        Self(slot)
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        IN_FLIGHT[self.0].0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Whether a write now should wait for this worker's other ready tasks: when
/// another request than the writer's own is in flight here.
fn others_in_flight() -> bool {
    IN_FLIGHT[workers::current() % SLOTS]
        .0
        .load(Ordering::Relaxed)
        > 1
}

/// Ready on its second poll; the first puts the task at the back of the run
/// queue, when [`others_in_flight`]. Awaited before a request is sent upstream
/// (the upstream connection is polled through [`crate::local_wake`], which
/// would re-poll a wake-up at once, so its socket is not wrapped).
pub async fn after_ready_tasks() {
    if others_in_flight() {
        Yield(false).await;
    }
}

struct Yield(bool);

impl std::future::Future for Yield {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// A client connection's I/O: the first write after each completed flush waits
/// for the worker's other ready tasks (see the module).
#[derive(Debug)]
pub struct Batched<I> {
    inner: I,
    /// This flush's write already waited once.
    waited: bool,
}

impl<I> Batched<I> {
    pub fn new(inner: I) -> Self {
        Self {
            inner,
            waited: false,
        }
    }

    /// `Pending` (the task woken) when this write should wait first.
    fn wait(&mut self, cx: &mut Context<'_>) -> bool {
        if self.waited || !others_in_flight() {
            return false;
        }
        self.waited = true;
        cx.waker().wake_by_ref();
        true
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Batched<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Batched<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.wait(cx) {
            return Poll::Pending;
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.wait(cx) {
            return Poll::Pending;
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let flushed = Pin::new(&mut self.inner).poll_flush(cx);
        if flushed.is_ready() {
            self.waited = false;
        }
        flushed
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tokio::io::AsyncWriteExt;

    use super::*;

    type Events = Arc<Mutex<Vec<&'static str>>>;

    /// Runs `tasks` on a current-thread runtime of its own, as worker `worker`
    /// (a slot no other test uses: the gateway's tests count their requests as
    /// worker 0) with `in_flight` requests counted there; returns the events
    /// the tasks logged, in order.
    fn run<F, Fut>(worker: usize, in_flight: usize, tasks: F) -> Vec<&'static str>
    where
        F: FnOnce(Events) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        workers::set_current(worker);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let events = Events::default();
        rt.block_on(async {
            let active: Vec<Active> = (0..in_flight).map(|_| Active::start()).collect();
            tasks(events.clone()).await;
            drop(active);
        });
        events.lock().map(|e| e.clone()).unwrap()
    }

    /// Two tasks: `writer` writes (through [`Batched`]) and `other` logs
    /// itself; spawned in that order, so `other` is behind `writer` in the run
    /// queue.
    fn order(worker: usize, in_flight: usize) -> Vec<&'static str> {
        run(worker, in_flight, |events| async move {
            let (a, mut b) = tokio::io::duplex(64);
            let log = events.clone();
            let writer = tokio::spawn(async move {
                let mut io = Batched::new(a);
                io.write_all(b"hello").await.unwrap();
                io.flush().await.unwrap();
                log.lock().unwrap().push("written");
                // A second flush waits again.
                io.write_all(b"!").await.unwrap();
                io.flush().await.unwrap();
                log.lock().unwrap().push("written again");
            });
            let other = tokio::spawn(async move {
                events.lock().unwrap().push("other ran");
                // To the back of the queue (`yield_now` would wait for the driver).
                Yield(false).await;
                events.lock().unwrap().push("other ran again");
            });
            writer.await.unwrap();
            other.await.unwrap();
            let mut got = [0u8; 6];
            tokio::io::AsyncReadExt::read_exact(&mut b, &mut got)
                .await
                .unwrap();
            assert_eq!(&got, b"hello!", "bytes arrive whole and in order");
        })
    }

    #[test]
    fn a_write_waits_for_the_ready_tasks_only_when_another_request_is_in_flight() {
        assert_eq!(
            order(61, 1),
            ["written", "written again", "other ran", "other ran again"],
            "alone, a write goes at once"
        );
        assert_eq!(
            order(62, 2),
            ["other ran", "written", "other ran again", "written again"],
            "with another request in flight, each flush's first write goes after the ready tasks"
        );
    }

    /// [`after_ready_tasks`] awaited by the first of two tasks: the order in
    /// which they finish.
    fn after_ready(worker: usize, in_flight: usize) -> Vec<&'static str> {
        run(worker, in_flight, |events| async move {
            let log = events.clone();
            let first = tokio::spawn(async move {
                after_ready_tasks().await;
                log.lock().unwrap().push("first");
            });
            let second = tokio::spawn(async move { events.lock().unwrap().push("second") });
            first.await.unwrap();
            second.await.unwrap();
        })
    }

    #[test]
    fn a_request_goes_upstream_after_the_ready_tasks_only_when_another_is_in_flight() {
        assert_eq!(after_ready(59, 1), ["first", "second"]);
        assert_eq!(after_ready(60, 2), ["second", "first"]);
    }

    #[test]
    fn an_active_request_is_counted_until_dropped() {
        workers::set_current(63);
        let slot = workers::current() % SLOTS;
        let before = IN_FLIGHT[slot].0.load(Ordering::Relaxed);
        let a = Active::start();
        assert_eq!(IN_FLIGHT[slot].0.load(Ordering::Relaxed), before + 1);
        drop(a);
        assert_eq!(IN_FLIGHT[slot].0.load(Ordering::Relaxed), before);
    }
}
