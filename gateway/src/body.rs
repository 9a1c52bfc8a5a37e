//! Body types for both directions; bodies are streamed, never buffered whole —
//! except the JSON body of an operation with request validation, which
//! [`crate::validate`] reads (within the body limit) to check it and hands back
//! as [`RequestBody::buffered`].
//!
//! [`RequestBody`] carries the client's body upstream. It counts bytes, enforces
//! the size limit while streaming (a `Content-Length` over the limit is refused
//! before this point), and keeps the client body in a shared slot until the
//! upstream connection first polls it, so a request whose connect attempt failed
//! can be sent to the next upstream URL with its body intact.
//!
//! [`ResponseBody`] carries the answer to the client and owns a [`Finish`] hook
//! that runs exactly once when the body ends or is dropped (client gone): that is
//! where latency, bytes and the analytics event are recorded.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use crate::upstream_pool::UpstreamBody;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// State shared between the pipeline and the body while it is being sent.
#[derive(Debug)]
pub struct BodyState {
    slot: Mutex<Option<Source>>,
    limit: u64,
    bytes: AtomicU64,
    /// Set once the body has been polled: it can no longer be replayed.
    started: AtomicBool,
    too_large: AtomicBool,
    client_error: AtomicBool,
}

impl BodyState {
    pub fn limit(&self) -> u64 {
        self.limit
    }
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
    pub fn started(&self) -> bool {
        self.started.load(Ordering::Relaxed)
    }
    pub fn too_large(&self) -> bool {
        self.too_large.load(Ordering::Relaxed)
    }
    pub fn client_error(&self) -> bool {
        self.client_error.load(Ordering::Relaxed)
    }
}

/// Where a request body's bytes come from: the client's stream, or a body the
/// validation stage buffered (a JSON body it checked).
#[derive(Debug)]
pub enum Source {
    Client(Incoming),
    Buffered(Option<Bytes>),
}

impl Source {
    fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self {
            Source::Client(b) => Pin::new(b).poll_frame(cx),
            Source::Buffered(b) => Poll::Ready(
                b.take()
                    .filter(|b| !b.is_empty())
                    .map(|b| Ok(Frame::data(b))),
            ),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Source::Client(b) => b.is_end_stream(),
            Source::Buffered(b) => b.as_ref().is_none_or(Bytes::is_empty),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Source::Client(b) => b.size_hint(),
            Source::Buffered(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
        }
    }
}

/// The body sent to the upstream.
#[derive(Debug)]
pub enum RequestBody {
    Empty,
    Streaming {
        state: Arc<BodyState>,
        body: Option<Source>,
    },
}

#[derive(Debug, thiserror::Error)]
#[error("request body exceeds {0} bytes")]
pub struct TooLarge(u64);

impl RequestBody {
    /// Wraps a client body; returns the shared state for the pipeline to inspect.
    pub fn streaming(body: Incoming, limit: u64) -> (RequestBody, Arc<BodyState>) {
        Self::from_source(Source::Client(body), limit)
    }

    /// A body the validation stage already read whole (within `limit`).
    pub fn buffered(body: Bytes, limit: u64) -> (RequestBody, Arc<BodyState>) {
        Self::from_source(Source::Buffered(Some(body)), limit)
    }

    fn from_source(body: Source, limit: u64) -> (RequestBody, Arc<BodyState>) {
        let state = Arc::new(BodyState {
            slot: Mutex::new(Some(body)),
            limit,
            bytes: AtomicU64::new(0),
            started: AtomicBool::new(false),
            too_large: AtomicBool::new(false),
            client_error: AtomicBool::new(false),
        });
        (RequestBody::resume(&state), state)
    }

    /// A new handle on a body that was never polled (for a retry).
    pub fn resume(state: &Arc<BodyState>) -> RequestBody {
        RequestBody::Streaming {
            state: state.clone(),
            body: None,
        }
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let (state, body) = match self.get_mut() {
            RequestBody::Empty => return Poll::Ready(None),
            RequestBody::Streaming { state, body } => (state, body),
        };
        if body.is_none() {
            state.started.store(true, Ordering::Relaxed);
            match state.slot.lock().map(|mut s| s.take()) {
                Ok(Some(b)) => *body = Some(b),
                // Already taken by an earlier attempt: nothing more to send.
                _ => return Poll::Ready(None),
            }
        }
        let inner = body.as_mut().expect("set above");
        match inner.poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let total = state.bytes.fetch_add(data.len() as u64, Ordering::Relaxed)
                        + data.len() as u64;
                    if total > state.limit {
                        state.too_large.store(true, Ordering::Relaxed);
                        return Poll::Ready(Some(Err(Box::new(TooLarge(state.limit)))));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                state.client_error.store(true, Ordering::Relaxed);
                Poll::Ready(Some(Err(Box::new(e))))
            }
            other => other.map_err(Into::into),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            RequestBody::Empty => true,
            RequestBody::Streaming { body: Some(b), .. } => b.is_end_stream(),
            RequestBody::Streaming { .. } => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            RequestBody::Empty => SizeHint::with_exact(0),
            RequestBody::Streaming { body: Some(b), .. } => b.size_hint(),
            RequestBody::Streaming { state, .. } => state
                .slot
                .lock()
                .ok()
                .and_then(|s| s.as_ref().map(Source::size_hint))
                .unwrap_or_default(),
        }
    }
}

/// Runs once when a response body is finished or abandoned.
pub trait Finish: Send + Sync + 'static {
    fn finish(self: Box<Self>, bytes_out: u64);
}

/// The body sent to the client.
pub struct ResponseBody {
    inner: Inner,
    bytes: u64,
    finish: Option<Box<dyn Finish>>,
    tee: Option<Tee>,
}

/// A copy of a response body as it streams past, for a check that never holds
/// it up: handed over when the body ends, dropped once it grows over `cap`.
struct Tee {
    cap: usize,
    buf: Vec<u8>,
    done: Box<dyn FnOnce(Bytes) + Send + Sync>,
}

enum Inner {
    Full(Option<Bytes>),
    Upstream(UpstreamBody),
}

impl std::fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseBody")
            .field("bytes", &self.bytes)
            .finish_non_exhaustive()
    }
}

impl ResponseBody {
    pub fn full(bytes: Bytes) -> Self {
        Self {
            inner: Inner::Full(Some(bytes)),
            bytes: 0,
            finish: None,
            tee: None,
        }
    }

    pub fn empty() -> Self {
        Self::full(Bytes::new())
    }

    pub fn upstream(body: UpstreamBody) -> Self {
        Self {
            inner: Inner::Upstream(body),
            bytes: 0,
            finish: None,
            tee: None,
        }
    }

    /// Attaches the hook that records the request once the body is done.
    pub fn on_finish(&mut self, finish: Box<dyn Finish>) {
        self.finish = Some(finish);
        if self.is_end_stream() {
            // Hyper may never poll an empty body; record now.
            self.run_finish();
        }
    }

    /// Hands a copy of the whole body to `done` once it has been sent, if it is
    /// at most `cap` bytes; the client's stream is not held up.
    pub fn tee(&mut self, cap: usize, done: Box<dyn FnOnce(Bytes) + Send + Sync>) {
        self.tee = Some(Tee {
            cap,
            buf: Vec::new(),
            done,
        });
    }

    fn run_tee(&mut self) {
        if let Some(t) = self.tee.take() {
            (t.done)(Bytes::from(t.buf));
        }
    }

    fn run_finish(&mut self) {
        if let Some(f) = self.finish.take() {
            f.finish(self.bytes);
        }
    }
}

impl Drop for ResponseBody {
    fn drop(&mut self) {
        self.run_finish();
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let polled = match &mut this.inner {
            Inner::Full(data) => Poll::Ready(
                data.take()
                    .filter(|d| !d.is_empty())
                    .map(|d| Ok(Frame::data(d))),
            ),
            Inner::Upstream(body) => Pin::new(body).poll_frame(cx).map_err(Into::into),
        };
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.bytes += data.len() as u64;
                    if let Some(t) = &mut this.tee {
                        if t.buf.len() + data.len() > t.cap {
                            this.tee = None;
                        } else {
                            t.buf.extend_from_slice(data);
                        }
                    }
                }
                // Hyper stops polling once the body says it has ended.
                if this.tee.is_some() && this.is_end_stream() {
                    this.run_tee();
                }
            }
            Poll::Ready(None) => {
                this.run_tee();
                this.run_finish();
            }
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Full(data) => data.as_ref().is_none_or(Bytes::is_empty),
            Inner::Upstream(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Full(data) => SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64)),
            Inner::Upstream(body) => body.size_hint(),
        }
    }
}
