//! The body sent to the upstream ([`RequestBody`]): bodies are streamed, never
//! buffered whole — except the JSON or form body of an operation with request
//! validation, which [`crate::validate`] reads (within the body limit) to check it
//! and hands back as [`RequestBody::buffered`].
//!
//! It counts the bytes read from the client (a buffered body's from the start:
//! they were read, even when a mock answers and nothing is sent), enforces the
//! size limit while streaming (a `Content-Length` over the limit is refused
//! before this point), and keeps the client body in a
//! shared slot until the upstream connection first polls it, so a request whose
//! connect attempt failed can be sent to the next upstream URL with its body
//! intact. Its own module, below both [`crate::body`] (the response side) and
//! [`crate::upstream_pool`] (which sends it).

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// State shared between the pipeline and the body while it is being sent.
#[derive(Debug)]
pub struct BodyState {
    slot: Mutex<Option<Source>>,
    limit: u64,
    /// Read from the client so far.
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
        Self::from_source(Source::Client(body), 0, limit)
    }

    /// A body the validation stage already read whole (within `limit`).
    pub fn buffered(body: Bytes, limit: u64) -> (RequestBody, Arc<BodyState>) {
        let read = body.len() as u64;
        Self::from_source(Source::Buffered(Some(body)), read, limit)
    }

    fn from_source(body: Source, read: u64, limit: u64) -> (RequestBody, Arc<BodyState>) {
        let state = Arc::new(BodyState {
            slot: Mutex::new(Some(body)),
            limit,
            bytes: AtomicU64::new(read),
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
        let from_client = matches!(inner, Source::Client(_));
        match inner.poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref().filter(|_| from_client) {
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
