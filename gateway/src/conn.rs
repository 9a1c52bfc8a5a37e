//! Per-connection bookkeeping: who is on the other end, how many requests are in
//! flight on this connection, and since when it has been idle.
//!
//! The idle timer needs to know "no request in flight since T" without touching
//! the socket; the in-flight count is kept by [`InFlight`] guards that live as
//! long as a request (until its response body ends or is dropped, or until the
//! request future is cancelled), so the count can never leak.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use tokio::time::Instant;

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
}

impl ConnInfo {
    pub fn new(peer: SocketAddr) -> Self {
        Self {
            peer,
            activity: Activity::new(),
            tls: false,
            client_cert: None,
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
