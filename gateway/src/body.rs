//! The body sent to the client ([`ResponseBody`]), streamed, never buffered
//! whole. It owns a [`Finish`] hook that runs exactly once when the body ends or
//! is dropped (client gone): that is where latency, bytes and the analytics event
//! are recorded. The request side is [`crate::request_body`] (re-exported here).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

pub use crate::request_body::{BodyState, BoxError, RequestBody, Source, TooLarge};
use crate::upstream_pool::UpstreamBody;

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
