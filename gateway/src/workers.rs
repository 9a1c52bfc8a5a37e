//! The runtime shape: one current-thread tokio runtime per worker thread, each
//! accepting on its own `SO_REUSEPORT` listener (what nginx and most
//! thread-per-core proxies do), instead of one work-stealing runtime.
//!
//! The kernel spreads new connections over the workers' listeners; a
//! connection then lives on the worker that accepted it, with its request
//! tasks, its timers and the upstream connections it opens (the pool hands a
//! worker the idle connections that worker opened: [`current`]). Nothing is
//! stolen or woken across threads on the request path. Worker 0 is the
//! thread that called [`crate::server::Server::run`]; it also runs the admin
//! listener and the background tasks. Shared by all: the pipeline (rate
//! limiter, token cache, metrics, analytics queue) behind one `Arc`.

use std::cell::Cell;
use std::future::Future;
use std::net::SocketAddr;
use std::thread::JoinHandle;

use tokio::net::{TcpListener, TcpSocket};

thread_local! {
    static WORKER: Cell<usize> = const { Cell::new(0) };
}

/// The worker this thread serves as (0 on any thread that is not a worker
/// thread started by [`spawn`]).
pub fn current() -> usize {
    WORKER.with(Cell::get)
}

/// This thread serves as worker `index` (set by [`spawn`]; tests set it too).
pub(crate) fn set_current(index: usize) {
    WORKER.with(|w| w.set(index));
}

/// The API listener, bound `workers` times to `addr` (port 0: the port the
/// first one got), with `SO_REUSEPORT` when more than once. With one worker
/// the port stays exclusive: a second gateway on it fails to start.
pub fn bind(addr: SocketAddr, workers: usize) -> std::io::Result<Vec<TcpListener>> {
    let mut addr = addr;
    let mut listeners = Vec::with_capacity(workers.max(1));
    for _ in 0..workers.max(1) {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        // As `TcpListener::bind`: restarts do not wait for TIME_WAIT.
        socket.set_reuseaddr(true)?;
        if workers > 1 {
            socket.set_reuseport(true)?;
        }
        socket.bind(addr)?;
        let listener = socket.listen(1024)?;
        addr = listener.local_addr()?;
        listeners.push(listener);
    }
    Ok(listeners)
}

/// Starts worker `index` on a thread of its own: a current-thread runtime that
/// runs `serve` with `listener` (registered with that runtime) until `serve`
/// completes; tasks still running then are dropped with the runtime.
pub fn spawn<F, Fut>(
    index: usize,
    listener: std::net::TcpListener,
    serve: F,
) -> std::io::Result<JoinHandle<()>>
where
    F: FnOnce(TcpListener) -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name(format!("mgw-worker-{index}"))
        .spawn(move || {
            set_current(index);
            rt.block_on(async move {
                match TcpListener::from_std(listener) {
                    Ok(listener) => serve(listener).await,
                    Err(e) => tracing::error!(worker = index, error = %e, "worker cannot listen"),
                }
            });
        })
}
