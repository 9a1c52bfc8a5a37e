//! Per-connection bookkeeping: who is on the other end, how many requests are in
//! flight on this connection, and since when it has been idle.
//!
//! The connection's timer needs to know "no request in flight since T" without
//! touching the socket; the in-flight count is kept by [`InFlight`] guards that
//! live as long as a request (until its response body ends or is dropped, or
//! until the request future is cancelled), so the count can never leak.
//!
//! One timer per connection times every request head and the idle time
//! ([`drive`]): it is moved when it fires, never re-armed per request, so a
//! request costs no timer registration (hyper's own header-read timer would
//! register and drop one per request: BENCHMARKS.md, "seventh wave").
//!
//! Both listeners (API and admin) configure and drive their connections with
//! [`connection_builder`] and [`drive`], under the same limits and timeouts.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::Poll;
use std::time::Duration;

use futures_util::FutureExt;

use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::bundle::{Config, LimitsCfg};
use crate::metrics::Metrics;

/// Facts about the connection a request arrived on.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    pub activity: Arc<Activity>,
    /// The connection is TLS.
    pub tls: bool,
    /// Subject of the verified client certificate (mutual TLS), `CN=…,O=…`.
    pub client_cert: Option<Arc<str>>,
    /// The peer's IP address as `X-Forwarded-For` adds it, formatted once per
    /// connection rather than per request.
    pub forwarded_for: http::HeaderValue,
}

impl ConnInfo {
    pub fn new(peer: SocketAddr) -> Self {
        Self {
            peer,
            activity: Activity::new(),
            tls: false,
            client_cert: None,
            forwarded_for: http::HeaderValue::from_str(&peer.ip().to_string())
                .expect("an IP address is a valid header value"),
        }
    }

    /// A TLS connection, with the client certificate's subject if one was verified.
    pub fn with_tls(mut self, client_cert: Option<Arc<str>>) -> Self {
        self.tls = true;
        self.client_cert = client_cert;
        self
    }
}

/// In-flight requests on one connection and when it last became idle.
#[derive(Debug)]
pub struct Activity {
    /// When the connection was accepted.
    base: Instant,
    in_flight: AtomicUsize,
    idle_since_ms: AtomicU64,
    /// A complete request head has arrived on this connection.
    served: AtomicBool,
    /// The connection speaks HTTP/2 (seen on its first request).
    h2: AtomicBool,
}

impl Activity {
    /// A connection accepted now.
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            base: Instant::now(),
            in_flight: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(0),
            served: AtomicBool::new(false),
            h2: AtomicBool::new(false),
        })
    }

    /// Counts one request (of HTTP `version`) as in flight on this connection
    /// until the guard drops.
    pub fn busy(self: &Arc<Self>, version: http::Version) -> Busy {
        if version == http::Version::HTTP_2 {
            self.h2.store(true, Ordering::Relaxed);
        }
        self.served.store(true, Ordering::Release);
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        Busy(Some(self.clone()))
    }

    /// When the connection was accepted.
    pub fn accepted(&self) -> Instant {
        self.base
    }

    /// No request head has been completed on this connection yet.
    pub fn is_new(&self) -> bool {
        !self.served.load(Ordering::Acquire)
    }

    /// `Some(instant)` when no request is in flight: the moment the last one ended.
    pub fn idle_since(&self) -> Option<Instant> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let ms = self.idle_since_ms.load(Ordering::Acquire);
        Some(self.base + std::time::Duration::from_millis(ms))
    }

    /// When the connection's timer expires next, and what that means; `None`
    /// while a request is in flight.
    ///
    /// - New: `headerReadTimeout` (at most `idleTimeout`) from accept for the
    ///   first head.
    /// - HTTP/1 and idle: the same from the end of the last request for the
    ///   next head (a kept-alive connection waits no longer than that either).
    /// - HTTP/2 and idle: `idleTimeout` from the end of the last request.
    fn deadline(&self, limits: &LimitsCfg) -> Option<(Instant, Expiry)> {
        let head = first_head(limits);
        if self.is_new() {
            return Some((self.base + head, Expiry::FirstHead));
        }
        let since = self.idle_since()?;
        Some(if self.h2.load(Ordering::Relaxed) {
            (since + limits.idle_timeout, Expiry::Idle)
        } else {
            (since + head, Expiry::NextHead)
        })
    }

    /// How long the timer may sleep while a request is in flight: no deadline
    /// can fall earlier than this from now.
    fn busy_period(&self, limits: &LimitsCfg) -> Duration {
        if self.h2.load(Ordering::Relaxed) {
            limits.idle_timeout
        } else {
            first_head(limits)
        }
    }

    fn end(&self, now: Instant) {
        let ms =
            u64::try_from(now.saturating_duration_since(self.base).as_millis()).unwrap_or(u64::MAX);
        self.idle_since_ms.store(ms, Ordering::Release);
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The time a connection has for a request head: `headerReadTimeout`, and
/// never more than `idleTimeout`.
fn first_head(limits: &LimitsCfg) -> Duration {
    limits.header_read_timeout.min(limits.idle_timeout)
}

/// What the expiry of a connection's deadline means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expiry {
    /// No complete first head in time.
    FirstHead,
    /// No complete next head in time on an idle HTTP/1 connection.
    NextHead,
    /// An idle HTTP/2 connection.
    Idle,
}

/// One request in flight on a connection (see [`Activity::busy`]).
#[derive(Debug)]
pub struct Busy(Option<Arc<Activity>>);

impl Busy {
    /// The request ended at `now` (a clock the caller has just read).
    fn end(mut self, now: std::time::Instant) {
        if let Some(a) = self.0.take() {
            a.end(Instant::from_std(now));
        }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        if let Some(a) = self.0.take() {
            a.end(Instant::now());
        }
    }
}

/// Counts one request as in flight, on its connection, on its worker (for
/// [`crate::write_batch`]) and in the gauge, until dropped or
/// [`InFlight::end`]ed (the worker's count: until dropped).
pub struct InFlight {
    busy: Busy,
    metrics: Arc<Metrics>,
    _worker: crate::write_batch::Active,
}

impl InFlight {
    pub fn start(conn: &ConnInfo, version: http::Version, metrics: &Arc<Metrics>) -> Self {
        metrics.in_flight.inc();
        Self {
            busy: conn.activity.busy(version),
            metrics: metrics.clone(),
            _worker: crate::write_batch::Active::start(),
        }
    }

    /// The request ended at `now`, which the caller has just read: the
    /// connection's idle time starts then, without another clock read.
    pub fn end(mut self, now: std::time::Instant) {
        Busy(self.busy.0.take()).end(now);
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.metrics.in_flight.dec();
    }
}

/// hyper's own limit on request headers when none is set.
const HYPER_MAX_HEADERS: usize = 100;

pub fn connection_builder(config: &Config) -> auto::Builder<TokioExecutor> {
    let l = &config.limits;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        // Off: `drive` times every head with one timer per connection (hyper's
        // would register a new timer per request).
        .header_read_timeout(None)
        .max_buf_size(l.max_header_bytes.max(8192))
        .keep_alive(true);
    // hyper parses up to 100 headers in an array on the stack; any explicit
    // limit, even 100, makes it build (and copy) two 100-slot vectors per
    // request head instead (BENCHMARKS.md, "Plain proxying, sixth wave").
    if l.max_headers != HYPER_MAX_HEADERS {
        builder.http1().max_headers(l.max_headers);
    }
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(l.h2_max_concurrent_streams)
        .max_header_list_size(u32::try_from(l.max_header_bytes).unwrap_or(u32::MAX))
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(10));
    builder
}

/// Runs one connection (API or admin) under the connection timeouts until it
/// ends; `Err` is the kind of error it ended with.
///
/// One timer per connection, for [`Activity::deadline`]s: while it is
/// registered, moving it to a later deadline is an atomic update, and it only
/// fires at the earliest moment a deadline can have passed, so requests on a
/// busy connection touch no timer at all. The timer and the drain signal are
/// polled once each to register the task's waker, then only peeked at (an
/// atomic load each) when the connection's task wakes: a task keeps its waker.
/// (hyper's HTTP/1 header-read timer, off in [`connection_builder`], registers
/// and drops one per request.)
///
/// - A connection without a complete first head by its deadline is closed: no
///   response is owed.
/// - An idle HTTP/1 connection without a next head by its deadline is asked to
///   finish: closed at once when it is waiting for a head (counted as a header
///   timeout, as hyper's own timer did), after its response when one is still
///   being written to a slow reader.
/// - An idle HTTP/2 connection (hyper has no idle timeout there) is asked to
///   finish (`GOAWAY`).
pub async fn drive<C>(
    conn: C,
    graceful: impl Fn(Pin<&mut C>),
    activity: &Activity,
    limits: &LimitsCfg,
    mut drain: watch::Receiver<bool>,
) -> Result<(), &'static str>
where
    C: Future<Output = Result<(), Box<dyn std::error::Error + Send + Sync>>>,
{
    tokio::pin!(conn);
    // Accepted by another worker while the drain began: finish at once.
    if *drain.borrow() {
        drain.mark_changed();
    }
    // Read by `has_changed` while `changed` holds the other one.
    let drain_seen = drain.clone();
    let changed = drain.changed();
    tokio::pin!(changed);
    let timer = tokio::time::sleep_until(activity.accepted() + first_head(limits));
    tokio::pin!(timer);
    // The drain and the timer are each polled once (to register this task's
    // waker) and then only peeked at, on every wake-up of the connection.
    let (mut drain_armed, mut timer_armed) = (false, false);
    let mut closing = false;
    let result = loop {
        let event = std::future::poll_fn(|cx| {
            // The connection first: a head that arrived with the deadline counts.
            if let Poll::Ready(result) = conn.as_mut().poll(cx) {
                return Poll::Ready(Event::Done(result));
            }
            if closing {
                return Poll::Pending;
            }
            let drained = if drain_armed {
                drain_seen.has_changed().unwrap_or(true)
            } else {
                drain_armed = true;
                changed.as_mut().poll(cx).is_ready()
            };
            if drained {
                return Poll::Ready(Event::Drain);
            }
            let expired = if timer_armed {
                timer.is_elapsed()
            } else {
                timer_armed = true;
                timer.as_mut().poll(cx).is_ready()
            };
            if expired {
                return Poll::Ready(Event::Timer);
            }
            Poll::Pending
        })
        .await;
        match event {
            Event::Done(result) => break result,
            Event::Drain => {
                closing = true;
                graceful(conn.as_mut());
            }
            Event::Timer => {
                let now = Instant::now();
                match activity.deadline(limits) {
                    None => timer.as_mut().reset(now + activity.busy_period(limits)),
                    Some((at, _)) if at > now => timer.as_mut().reset(at),
                    // No complete head in time, so no response is owed: close.
                    Some((_, Expiry::FirstHead)) => return Err("header_timeout"),
                    Some((_, Expiry::NextHead)) => {
                        closing = true;
                        graceful(conn.as_mut());
                        // Done at once: it was waiting for a head.
                        if let Some(result) = conn.as_mut().now_or_never() {
                            return result
                                .map_err(|e| classify_conn_error(&*e))
                                .and(Err("header_timeout"));
                        }
                    }
                    Some((_, Expiry::Idle)) => {
                        closing = true;
                        graceful(conn.as_mut());
                    }
                }
                // Moved (or fired): polled again to register the waker.
                timer_armed = false;
            }
        }
    };
    result.map_err(|e| classify_conn_error(&*e))
}

/// What woke [`drive`].
enum Event {
    Done(Result<(), Box<dyn std::error::Error + Send + Sync>>),
    Drain,
    Timer,
}

fn classify_conn_error(e: &(dyn std::error::Error + 'static)) -> &'static str {
    let mut source = Some(e);
    while let Some(s) = source {
        if let Some(h) = s.downcast_ref::<hyper::Error>() {
            if h.is_timeout() {
                return "header_timeout";
            }
            if h.is_parse_too_large() {
                return "header_too_large";
            }
            if h.is_parse() {
                return "malformed";
            }
            if h.is_incomplete_message() {
                return "incomplete";
            }
        }
        source = s.source();
    }
    "io"
}
