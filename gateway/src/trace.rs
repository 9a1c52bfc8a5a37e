//! OpenTelemetry traces: W3C Trace Context in and out, one server span per
//! request with child spans for authentication, rate limiting and the upstream
//! call (a client span), exported as OTLP/HTTP protobuf.
//!
//! A request's spans are collected in its [`RequestTrace`] (a few timestamps,
//! no allocation per stage beyond one small vector) and handed, when the record
//! stage runs, to a bounded queue; one background task batches them and posts
//! them to the collector. A full queue drops the request's spans and counts
//! them (`mgw_trace_spans_dropped_total`); a slow or absent collector never
//! slows a request. Sampling is parent-based (a `traceparent` decides), else a
//! ratio of new traces.
//!
//! The `opentelemetry-proto` message types are used with our own exporter rather
//! than the SDK's pipeline: the gateway already has an HTTP client and a runtime,
//! and the SDK's batch processor, resource detection and propagators add code the
//! static binary does not need.
//!
//! Never: record a credential or a consumer name in a span (attributes are the
//! method, the route template, the status, the API and the operation), block on
//! export, or grow the queue past `queueSize`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderValue;
use http::header::HeaderMap;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};
use prometheus_client::metrics::counter::Counter;
use prost::Message;
use tokio::sync::mpsc;

use crate::bundle::TracingCfg;

pub const TRACEPARENT: http::HeaderName = http::HeaderName::from_static("traceparent");
pub const TRACESTATE: http::HeaderName = http::HeaderName::from_static("tracestate");

/// Spans sent per export request at most.
const BATCH: usize = 512;

/// Counters of the exporter (shared with `/metrics`).
#[derive(Clone, Default)]
pub struct TraceCounters {
    pub exported: Counter,
    pub dropped: Counter,
}

/// A parsed `traceparent`: trace id, parent span id, sampled flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parent {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub sampled: bool,
}

/// Parses a version-00 (or later, by its first four fields) `traceparent`;
/// `None` for anything malformed or all-zero ids (the spec's "start a new trace").
pub fn parse_traceparent(v: &[u8]) -> Option<Parent> {
    let s = std::str::from_utf8(v).ok()?.trim();
    let mut parts = s.split('-');
    let version = parts.next()?;
    let (trace, span, flags) = (parts.next()?, parts.next()?, parts.next()?);
    if version.len() != 2 || version == "ff" || (version == "00" && parts.next().is_some()) {
        return None;
    }
    let lower_hex = |p: &str| {
        p.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    if ![version, trace, span, flags].iter().all(|p| lower_hex(p)) {
        return None;
    }
    let mut trace_id = [0u8; 16];
    let mut span_id = [0u8; 8];
    let mut f = [0u8; 1];
    hex::decode_to_slice(trace, &mut trace_id).ok()?;
    hex::decode_to_slice(span, &mut span_id).ok()?;
    hex::decode_to_slice(flags, &mut f).ok()?;
    if trace_id == [0; 16] || span_id == [0; 8] {
        return None;
    }
    Some(Parent {
        trace_id,
        span_id,
        sampled: f[0] & 1 == 1,
    })
}

fn nonzero_id<const N: usize>() -> [u8; N] {
    loop {
        let mut id = [0u8; N];
        id.iter_mut().for_each(|b| *b = fastrand::u8(..));
        if id != [0; N] {
            return id;
        }
    }
}

fn unix_nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The stages that get their own span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Auth,
    RateLimit,
    Upstream,
}

struct Child {
    stage: Stage,
    span_id: [u8; 8],
    start: u64,
    end: u64,
}

/// One request's trace: its ids and the stages timed so far.
pub struct RequestTrace {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    parent: Option<[u8; 8]>,
    pub sampled: bool,
    tracestate: Option<HeaderValue>,
    start: u64,
    children: Vec<Child>,
    /// The upstream client span's id, made before the call (it is propagated).
    upstream_span: Option<[u8; 8]>,
}

impl RequestTrace {
    /// The trace id as 32 lowercase hex digits (analytics and logs).
    pub fn trace_id_hex(&self) -> String {
        hex::encode(self.trace_id)
    }

    /// Records a stage that ran from `start` until now.
    pub fn stage(&mut self, stage: Stage, start: SystemTime) {
        if !self.sampled {
            return;
        }
        let span_id = match stage {
            Stage::Upstream => self.upstream_span.take().unwrap_or_else(nonzero_id),
            _ => nonzero_id(),
        };
        self.children.push(Child {
            stage,
            span_id,
            start: unix_nanos(start),
            end: unix_nanos(SystemTime::now()),
        });
    }

    /// `traceparent` (and `tracestate`) for the upstream request: the upstream
    /// client span is their parent.
    pub fn propagate(&mut self, headers: &mut HeaderMap) {
        let id = nonzero_id::<8>();
        self.upstream_span = Some(id);
        let flags = if self.sampled { "01" } else { "00" };
        let v = format!(
            "00-{}-{}-{flags}",
            hex::encode(self.trace_id),
            hex::encode(id)
        );
        if let Ok(v) = HeaderValue::from_str(&v) {
            headers.insert(TRACEPARENT, v);
        }
        match &self.tracestate {
            Some(ts) => {
                headers.insert(TRACESTATE, ts.clone());
            }
            None => {
                headers.remove(TRACESTATE);
            }
        }
    }
}

/// What the server span says about the request (no client-supplied text but
/// the method, which is one of the routed ones).
pub struct Finished<'a> {
    pub method: &'a str,
    pub route: Option<&'a str>,
    pub api: Option<&'a str>,
    pub operation: Option<&'a str>,
    pub status: u16,
}

/// Starts traces and queues finished ones for export.
pub struct Tracer {
    ratio: f64,
    queue: mpsc::Sender<Vec<Span>>,
    counters: TraceCounters,
    service: String,
}

/// The export side of the queue; run with [`Exporter::run`].
pub struct Exporter {
    transport: crate::otlp::Transport,
    rx: mpsc::Receiver<Vec<Span>>,
    counters: TraceCounters,
    resource: Resource,
}

impl Tracer {
    pub fn new(
        cfg: &TracingCfg,
        service: &str,
        counters: TraceCounters,
    ) -> Result<(Tracer, Exporter), crate::otlp::OtlpSetupError> {
        let transport = crate::otlp::Transport::new(cfg)?;
        let (tx, rx) = mpsc::channel(cfg.queue_size.max(1));
        let resource = Resource {
            attributes: vec![kv_str("service.name", service)],
            ..Default::default()
        };
        Ok((
            Tracer {
                ratio: cfg.sample_ratio,
                queue: tx,
                counters: counters.clone(),
                service: service.to_owned(),
            },
            Exporter {
                transport,
                rx,
                counters,
                resource,
            },
        ))
    }

    /// Joins the caller's trace (`traceparent`) or starts one.
    pub fn start(&self, headers: &HeaderMap, start: SystemTime) -> RequestTrace {
        let parent = headers
            .get(TRACEPARENT)
            .and_then(|v| parse_traceparent(v.as_bytes()));
        let (trace_id, parent_id, sampled) = match parent {
            Some(p) => (p.trace_id, Some(p.span_id), p.sampled),
            None => (nonzero_id(), None, fastrand::f64() < self.ratio),
        };
        RequestTrace {
            trace_id,
            span_id: nonzero_id(),
            parent: parent_id,
            sampled,
            tracestate: parent
                .and(headers.get(TRACESTATE))
                .filter(|v| v.len() <= 512)
                .cloned(),
            start: unix_nanos(start),
            children: Vec::new(),
            upstream_span: None,
        }
    }

    /// Queues a finished request's spans; drops (and counts) them when the queue
    /// is full.
    pub fn finish(&self, t: RequestTrace, f: &Finished<'_>) {
        if !t.sampled {
            return;
        }
        let end = unix_nanos(SystemTime::now());
        let mut attributes = vec![
            kv_str("http.request.method", f.method),
            kv_int("http.response.status_code", i64::from(f.status)),
        ];
        if let Some(r) = f.route {
            attributes.push(kv_str("http.route", r));
        }
        if let Some(a) = f.api {
            attributes.push(kv_str("mgw.api", a));
        }
        if let Some(o) = f.operation {
            attributes.push(kv_str("mgw.operation", o));
        }
        let name = match f.route {
            Some(r) => format!("{} {r}", f.method),
            None => f.method.to_owned(),
        };
        let mut spans = Vec::with_capacity(1 + t.children.len());
        let error = f.status >= 500;
        spans.push(Span {
            trace_id: t.trace_id.to_vec(),
            span_id: t.span_id.to_vec(),
            trace_state: t
                .tracestate
                .as_ref()
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned(),
            parent_span_id: t.parent.map(|p| p.to_vec()).unwrap_or_default(),
            name,
            kind: span::SpanKind::Server as i32,
            start_time_unix_nano: t.start,
            end_time_unix_nano: end.max(t.start),
            attributes,
            status: error.then(|| Status {
                code: opentelemetry_proto::tonic::trace::v1::status::StatusCode::Error as i32,
                ..Default::default()
            }),
            ..Default::default()
        });
        for c in &t.children {
            let (name, kind) = match c.stage {
                Stage::Auth => ("auth", span::SpanKind::Internal),
                Stage::RateLimit => ("rate-limit", span::SpanKind::Internal),
                Stage::Upstream => ("upstream", span::SpanKind::Client),
            };
            spans.push(Span {
                trace_id: t.trace_id.to_vec(),
                span_id: c.span_id.to_vec(),
                parent_span_id: t.span_id.to_vec(),
                name: name.to_owned(),
                kind: kind as i32,
                start_time_unix_nano: c.start,
                end_time_unix_nano: c.end.max(c.start),
                ..Default::default()
            });
        }
        let n = spans.len() as u64;
        if self.queue.try_send(spans).is_err() {
            self.counters.dropped.inc_by(n);
        }
    }

    pub fn service(&self) -> &str {
        &self.service
    }
}

impl Exporter {
    /// Batches queued spans and posts them until the tracer is dropped.
    pub async fn run(mut self) {
        let mut batch: Vec<Span> = Vec::new();
        loop {
            let first = match self.rx.recv().await {
                Some(spans) => spans,
                None => return,
            };
            batch.extend(first);
            // Gathers what is queued (briefly), up to one batch.
            let deadline = tokio::time::Instant::now() + Duration::from_millis(200);
            while batch.len() < BATCH {
                match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                    Ok(Some(spans)) => batch.extend(spans),
                    Ok(None) | Err(_) => break,
                }
            }
            let n = batch.len() as u64;
            let body = self.encode(std::mem::take(&mut batch));
            match tokio::time::timeout(Duration::from_secs(10), self.transport.export(body)).await {
                Ok(Ok(())) => {
                    self.counters.exported.inc_by(n);
                }
                Ok(Err(why)) => {
                    tracing::debug!(%why, "otlp export failed");
                    self.counters.dropped.inc_by(n);
                }
                Err(_) => {
                    tracing::debug!("otlp export timed out");
                    self.counters.dropped.inc_by(n);
                }
            }
        }
    }

    fn encode(&self, spans: Vec<Span>) -> Vec<u8> {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(self.resource.clone()),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: "mgw-gateway".into(),
                        version: env!("CARGO_PKG_VERSION").into(),
                        ..Default::default()
                    }),
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
        .encode_to_vec()
    }
}

fn kv_str(key: &str, v: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.to_owned())),
        }),
        ..Default::default()
    }
}

fn kv_int(key: &str, v: i64) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(v)),
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_is_parsed_by_the_w3c_rules() {
        let p =
            parse_traceparent(b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        assert_eq!(hex::encode(p.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(hex::encode(p.span_id), "00f067aa0ba902b7");
        assert!(p.sampled);
        assert!(
            !parse_traceparent(b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")
                .unwrap()
                .sampled
        );
        for bad in [
            &b"00-00000000000000000000000000000000-00f067aa0ba902b7-01"[..],
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            b"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            b"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            b"00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            b"garbage",
        ] {
            assert_eq!(
                parse_traceparent(bad),
                None,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        // A later version may carry more fields.
        assert!(
            parse_traceparent(b"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x")
                .is_some()
        );
    }
}
