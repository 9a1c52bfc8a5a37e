//! Keep-alive HTTP/1.1 connections to plain `http://` upstream URLs, driven by
//! the request that uses them.
//!
//! hyper-util's pooled client spawns a task per connection and hands every
//! request to it over a channel: a pool checkout, a channel send and a wake-up
//! of another task per request. Here a request checks a `hyper::client::conn::http1`
//! connection out of its URL's idle list and polls the connection itself, in
//! its own task, while it waits for the response head and, through
//! [`UpstreamBody`], while the response body streams to the client; when the
//! body has ended the connection goes back to the idle list. No task, no
//! channel hop, no wake-up of another task.
//!
//! Kept from the pooled client: at most `poolMaxIdlePerHost` idle connections
//! per URL, none kept idle longer than `poolIdleTimeout` (checked when one is
//! taken, and a reaper closes them on time), a connection the upstream closed is
//! never reused (the reaper drops it; taken before that, it hands the request
//! back unsent), and a request the upstream never saw (its pooled connection
//! closed under it) is sent again on another connection. `https://` URLs, HTTP/2
//! and WebSocket upgrades stay on the pooled client ([`crate::proxy`]).
//!
//! The request timeout is one timer per connection, moved to each request's
//! deadline: a later deadline is an atomic update of a timer that stays
//! registered, where a timer per request registers with the runtime's timer
//! driver and leaves it again each time (BENCHMARKS.md, "seventh wave").

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Request, Response, Uri};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::local_wake::LocalWake;
use crate::request_body::RequestBody;

type Conn = http1::Connection<TokioIo<TcpStream>, RequestBody>;

/// Why a request got no response head.
#[derive(Debug)]
pub enum SendError {
    /// The TCP connection could not be opened.
    Connect(std::io::Error),
    /// Nor within the upstream's connect timeout.
    ConnectTimeout,
    /// No response head by the request's deadline.
    Timeout,
    /// The exchange broke after the request was handed to a connection.
    Exchange(hyper::Error),
}

/// A request that got no response head: why, and the request itself when it
/// never left (no connection could be had), so another attempt can reuse its
/// head instead of a copy made up front.
pub struct Failed {
    pub error: SendError,
    /// Boxed: failures are rare, and the error stays small.
    pub unsent: Option<Box<Request<RequestBody>>>,
}

/// One upstream's connections, per URL; `None` for URLs this pool does not
/// serve (`https://`).
pub struct H1Pool {
    targets: Vec<Option<Endpoint>>,
    shared: Arc<Shared>,
}

/// Where a plain URL connects, and the `Host` header its requests carry.
struct Endpoint {
    authority: String,
    host: HeaderValue,
}

struct Shared {
    idle: Vec<Mutex<Vec<Idle>>>,
    /// Per URL: a connection went back to the idle list.
    released: Vec<tokio::sync::Notify>,
    max_idle: usize,
    idle_timeout: Duration,
    connect_timeout: Duration,
    reaper: AtomicBool,
}

struct Idle {
    conn: Box<Live>,
    since: Instant,
}

/// A connection's two halves, the handle requests are sent on and the
/// connection future, which must be polled for anything to move, and where it
/// goes back to. Boxed once per connection, so that a response body carries
/// only a pointer.
struct Live {
    send: http1::SendRequest<RequestBody>,
    /// `None` once the connection has closed.
    conn: Option<Pin<Box<Conn>>>,
    target: usize,
    /// The deadline of the exchange in progress (see the module's doc).
    timer: Pin<Box<tokio::time::Sleep>>,
    /// The worker whose runtime the socket is registered with: only that
    /// worker takes it from the idle list ([`crate::workers`]).
    worker: usize,
    pool: Arc<Shared>,
    /// The connection and the exchange on it (response head, then body) are
    /// polled through this: hyper's hand-overs between them wake the task
    /// that polls both, which would poll it once more for nothing.
    wake: LocalWake,
}

/// Moves the connection along; notes when it has closed.
fn drive(conn: &mut Option<Pin<Box<Conn>>>, cx: &mut Context<'_>) {
    if let Some(c) = conn {
        if c.as_mut().poll(cx).is_ready() {
            *conn = None;
        }
    }
}

impl Live {
    /// Open and idle when last polled. Not polled here: that poll costs as
    /// much as the rest of the checkout (BENCHMARKS.md, "thirteenth wave"), and
    /// the first poll after a request is handed over reads before it writes,
    /// so a connection the upstream closed meanwhile hands the request back
    /// unsent ([`H1Pool::send`] sends it on another).
    fn idle(&self) -> bool {
        self.conn.is_some() && self.send.is_ready()
    }

    /// Open, and idle: ready for a request (polled, for the reaper).
    fn usable(&mut self) -> bool {
        drive(&mut self.conn, &mut Context::from_waker(Waker::noop()));
        self.idle()
    }
}

impl H1Pool {
    /// A pool for the upstream's `http://` URLs, or `None` when it has none.
    pub fn new(
        origins: impl Iterator<Item = Uri>,
        max_idle: usize,
        idle_timeout: Duration,
        connect_timeout: Duration,
    ) -> Option<Self> {
        let targets: Vec<Option<Endpoint>> = origins.map(|o| endpoint(&o)).collect();
        if targets.iter().all(Option::is_none) {
            return None;
        }
        let idle = targets.iter().map(|_| Mutex::new(Vec::new())).collect();
        let released = targets.iter().map(|_| tokio::sync::Notify::new()).collect();
        Some(Self {
            targets,
            shared: Arc::new(Shared {
                idle,
                released,
                max_idle,
                idle_timeout,
                connect_timeout,
                reaper: AtomicBool::new(false),
            }),
        })
    }

    /// Whether the URL at `target` is served by this pool.
    pub fn serves(&self, target: usize) -> bool {
        self.targets.get(target).is_some_and(Option::is_some)
    }

    /// Sends `req` (origin-form target, headers set; `Host` is set here) to the URL
    /// at `target` and returns the response head, if it comes by `deadline`;
    /// the body drives the connection and returns it to the pool when it ends.
    /// `now` is the caller's clock read for this attempt: an idle connection's
    /// age is judged by it (no clock read of the pool's own per request).
    ///
    /// Not an `async fn`: that would keep the request twice in its state (as
    /// the argument and as the body's local); the block uses it in place.
    #[allow(clippy::manual_async_fn)]
    pub fn send(
        &self,
        target: usize,
        mut req: Request<RequestBody>,
        now: Instant,
        deadline: Instant,
    ) -> impl Future<Output = Result<Response<UpstreamBody>, Failed>> + Send + '_ {
        async move {
            let Some(Some(endpoint)) = self.targets.get(target) else {
                return Err(Failed {
                    error: SendError::Connect(std::io::ErrorKind::Unsupported.into()),
                    unsent: Some(Box::new(req)),
                });
            };
            req.headers_mut()
                .insert(header::HOST, endpoint.host.clone());
            loop {
                let (mut live, reused) = match self.checkout(target, now) {
                    Some(live) => (live, true),
                    None => {
                        let connect = self.connect_or_reuse(target, endpoint, deadline);
                        match tokio::time::timeout_at(deadline.into(), connect).await {
                            Ok(Ok(connected)) => connected,
                            Ok(Err(error)) => {
                                return Err(Failed {
                                    error,
                                    unsent: Some(Box::new(req)),
                                });
                            }
                            Err(_) => {
                                return Err(Failed {
                                    error: SendError::Timeout,
                                    unsent: Some(Box::new(req)),
                                });
                            }
                        }
                    }
                };
                live.timer.as_mut().reset(deadline.into());
                let mut sent = std::pin::pin!(live.send.try_send_request(req));
                let result = poll_fn(|cx| {
                    let head = live.wake.poll(cx, |cx| {
                        drive(&mut live.conn, cx);
                        sent.as_mut().poll(cx)
                    });
                    match head {
                        Poll::Ready(result) => Poll::Ready(Some(result)),
                        // The exchange is abandoned: the connection closes with `live`.
                        Poll::Pending => live.timer.as_mut().poll(cx).map(|()| None),
                    }
                })
                .await;
                let Some(result) = result else {
                    return Err(Failed {
                        error: SendError::Timeout,
                        unsent: None,
                    });
                };
                match result {
                    Ok(response) => {
                        return Ok(response.map(|body| UpstreamBody {
                            body,
                            lease: Some(live),
                        }));
                    }
                    Err(mut e) => match e.take_message() {
                        // A pooled connection closed before the request went out:
                        // the upstream never saw it, so it goes out on another one.
                        Some(unsent) if reused => req = unsent,
                        _ => {
                            return Err(Failed {
                                error: SendError::Exchange(e.into_error()),
                                unsent: None,
                            });
                        }
                    },
                }
            }
        }
    }

    /// An idle connection of this worker to `target`, open and younger than
    /// the idle timeout at `now`.
    fn checkout(&self, target: usize, now: Instant) -> Option<Box<Live>> {
        let slot = &self.shared.idle[target];
        let worker = crate::workers::current();
        loop {
            let idle = {
                let mut list = slot.lock().unwrap_or_else(|e| e.into_inner());
                let i = list.iter().rposition(|c| c.conn.worker == worker)?;
                list.remove(i)
            };
            let live = idle.conn;
            // Dropped (closed) when too old, or known closed or busy.
            if now.saturating_duration_since(idle.since) < self.shared.idle_timeout && live.idle() {
                return Some(live);
            }
        }
    }

    /// A new connection, or one that another request gives back first: under a
    /// burst, requests take the connections that free up instead of each
    /// waiting for a connection of its own; the connection being opened then
    /// goes to the idle list (as with the pooled client).
    async fn connect_or_reuse(
        &self,
        target: usize,
        endpoint: &Endpoint,
        deadline: Instant,
    ) -> Result<(Box<Live>, bool), SendError> {
        let mut connect = Box::pin(connect(
            self.shared.clone(),
            target,
            endpoint.authority.clone(),
            deadline,
        ));
        tokio::select! {
            biased;
            live = &mut connect => Ok((live?, false)),
            () = self.shared.released[target].notified() => match self.checkout(target, Instant::now()) {
                Some(live) => {
                    tokio::spawn(async move {
                        if let Ok(opened) = connect.await {
                            opened.release();
                        }
                    });
                    Ok((live, true))
                }
                // Taken by another request meanwhile.
                None => Ok((connect.await?, false)),
            },
        }
    }
}

async fn connect(
    pool: Arc<Shared>,
    target: usize,
    authority: String,
    deadline: Instant,
) -> Result<Box<Live>, SendError> {
    let stream = tokio::time::timeout(pool.connect_timeout, TcpStream::connect(authority.as_str()))
        .await
        .map_err(|_| SendError::ConnectTimeout)?
        .map_err(SendError::Connect)?;
    // As the pooled client: small writes go out at once.
    let _ = stream.set_nodelay(true);
    let (send, conn) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(SendError::Exchange)?;
    Ok(Box::new(Live {
        send,
        conn: Some(Box::pin(conn)),
        target,
        timer: Box::pin(tokio::time::sleep_until(deadline.into())),
        worker: crate::workers::current(),
        pool,
        wake: LocalWake::default(),
    }))
}

/// `host:port` to connect to, and `Host` as the pooled client sends it (the
/// port only when it is not 80); `None` for an `https://` URL.
fn endpoint(origin: &Uri) -> Option<Endpoint> {
    if origin.scheme_str() != Some("http") {
        return None;
    }
    let host = origin.host()?;
    let port = origin.port_u16().unwrap_or(80);
    let value = if port == 80 {
        host.to_owned()
    } else {
        format!("{host}:{port}")
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    Some(Endpoint {
        authority: if bare.contains(':') {
            format!("[{bare}]:{port}")
        } else {
            format!("{bare}:{port}")
        },
        host: HeaderValue::from_str(&value).ok()?,
    })
}

impl Live {
    /// Back to the idle list, if there is room. It is not polled here: the
    /// poll that ended the response body also ended the exchange (hyper reads
    /// the body's end and takes up the idle state in one poll), and one the
    /// upstream closes meanwhile is found by the reaper or by the request that
    /// takes it ([`Live::idle`]).
    fn release(self: Box<Self>) {
        // The task that used it waits no more.
        self.wake.forget();
        if self.conn.is_none() || self.pool.max_idle == 0 {
            return;
        }
        let (pool, target) = (self.pool.clone(), self.target);
        {
            let mut idle = pool.idle[target].lock().unwrap_or_else(|e| e.into_inner());
            if idle.len() >= pool.max_idle {
                return;
            }
            idle.push(Idle {
                conn: self,
                since: Instant::now(),
            });
        }
        pool.released[target].notify_one();
        if !pool.reaper.load(Ordering::Relaxed) && !pool.reaper.swap(true, Ordering::Relaxed) {
            tokio::spawn(reap(
                Arc::downgrade(&pool),
                pool.idle_timeout.max(Duration::from_millis(100)),
            ));
        }
    }
}

/// Closes connections idle for longer than the timeout, and those the
/// upstream closed, while the pool lives.
async fn reap(pool: Weak<Shared>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(pool) = pool.upgrade() else { return };
        for slot in &pool.idle {
            let mut idle = slot.lock().unwrap_or_else(|e| e.into_inner());
            idle.retain_mut(|c| c.since.elapsed() < pool.idle_timeout && c.conn.usable());
        }
    }
}

/// An upstream response body: from a pooled connection it also drives that
/// connection, and gives it back when the body has ended.
pub struct UpstreamBody {
    body: Incoming,
    /// The pooled connection the body comes over.
    lease: Option<Box<Live>>,
}

impl From<Incoming> for UpstreamBody {
    fn from(body: Incoming) -> Self {
        Self { body, lease: None }
    }
}

impl UpstreamBody {
    fn release(&mut self) {
        if let Some(lease) = self.lease.take() {
            lease.release();
        }
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let polled = match &mut this.lease {
            // The body first: a frame already handed over needs no poll of the
            // connection; the connection only when none is there.
            Some(lease) => lease.wake.poll(cx, |cx| {
                let frame = Pin::new(&mut this.body).poll_frame(cx);
                if frame.is_ready() {
                    return frame;
                }
                drive(&mut lease.conn, cx);
                Pin::new(&mut this.body).poll_frame(cx)
            }),
            None => Pin::new(&mut this.body).poll_frame(cx),
        };
        match &polled {
            // Hyper stops polling once a body says it has ended.
            Poll::Ready(Some(Ok(_))) if this.body.is_end_stream() => this.release(),
            Poll::Ready(None) => this.release(),
            // A broken body: its connection closes with the lease.
            Poll::Ready(Some(Err(_))) => this.lease = None,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for UpstreamBody {
    fn drop(&mut self) {
        // An empty body (`HEAD`, `204`, `Content-Length: 0`) is never polled;
        // one dropped half-read closes its connection.
        if self.body.is_end_stream() {
            self.release();
        }
    }
}
