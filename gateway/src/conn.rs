//! Per-connection bookkeeping: who is on the other end, how many requests are in
//! flight on this connection, and since when it has been idle.
//!
//! The idle timer needs to know "no request in flight since T" without touching
//! the socket; the in-flight count is kept by [`InFlight`] guards that live as
//! long as a request (until its response body ends or is dropped, or until the
//! request future is cancelled), so the count can never leak.
//!
//! Both listeners (API and admin) configure and drive their connections with
//! [`connection_builder`] and [`drive`], under the same limits and timeouts.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

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
}

impl Activity {
    /// A connection accepted now.
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            base: Instant::now(),
            in_flight: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(0),
            served: AtomicBool::new(false),
        })
    }

    /// Counts one request as in flight on this connection until the guard drops.
    pub fn busy(self: &Arc<Self>) -> Busy {
        self.served.store(true, Ordering::Release);
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        Busy(self.clone())
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
}

/// One request in flight on a connection (see [`Activity::busy`]).
#[derive(Debug)]
pub struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        let a = &self.0;
        let ms = u64::try_from(a.base.elapsed().as_millis()).unwrap_or(u64::MAX);
        a.idle_since_ms.store(ms, Ordering::Release);
        a.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Counts one request as in flight, on its connection and in the gauge, until dropped.
pub struct InFlight {
    _busy: Busy,
    metrics: Arc<Metrics>,
}

impl InFlight {
    pub fn start(conn: &ConnInfo, metrics: &Arc<Metrics>) -> Self {
        metrics.in_flight.inc();
        Self {
            _busy: conn.activity.busy(),
            metrics: metrics.clone(),
        }
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
        // Starts when the connection is ready for a request (new or kept alive)
        // and ends when the head is complete: the slow-header guard and the
        // HTTP/1 keep-alive idle timeout in one timer.
        .header_read_timeout(l.header_read_timeout.min(l.idle_timeout))
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
/// - Until its first request head is complete, a connection has
///   `headerReadTimeout` from accept (hyper's own timer only starts once it knows
///   the connection is HTTP/1, after the first bytes): a connection that says
///   nothing is closed then, not at `idleTimeout`.
/// - Later heads are timed by hyper's HTTP/1 timer, from the end of the
///   previous response.
/// - With no request in flight for `idleTimeout` (HTTP/1 and HTTP/2, where
///   hyper has no idle timeout) it is asked to finish.
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
    let first_head = limits.header_read_timeout.min(limits.idle_timeout);
    let mut closing = false;
    let result = loop {
        let deadline = match activity.idle_since() {
            _ if activity.is_new() => activity.accepted() + first_head,
            Some(t) => t + limits.idle_timeout,
            None => tokio::time::Instant::now() + limits.idle_timeout,
        };
        tokio::select! {
            result = conn.as_mut() => break result,
            _ = drain.changed(), if !closing => {
                closing = true;
                graceful(conn.as_mut());
            }
            () = tokio::time::sleep_until(deadline), if !closing => {
                if activity.is_new() {
                    // No complete head in time, so no response is owed: close.
                    return Err("header_timeout");
                }
                if activity.idle_since().is_some_and(|t| t.elapsed() >= limits.idle_timeout) {
                    closing = true;
                    graceful(conn.as_mut());
                }
            }
        }
    };
    drop(drain);
    result.map_err(|e| classify_conn_error(&*e))
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
