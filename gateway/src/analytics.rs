//! Analytics: one JSON line per request, written off the request path.
//!
//! The request path only does a non-blocking `try_send` of a small event into a
//! bounded queue ([`crate::bounded_queue`]: it holds no memory until events
//! wait); a dedicated OS thread (never a runtime worker) formats and writes the
//! lines. When the queue is full or the sink fails, events are dropped and
//! counted in `mgw_analytics_events_dropped_total`. This module must never block,
//! slow down or fail a request.

use std::io::{self, Write};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::mpsc::TryRecvError;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use http::{HeaderValue, Method};
#[cfg(test)]
use serde::Serialize;

use crate::bounded_queue::{self, Receiver, Sender, TrySendError};
use crate::bundle::{AnalyticsCfg, Config};
use crate::metrics::Metrics;
use crate::ratelimit::Outcome;

/// What the request path hands over: cheap to build, names resolved later.
#[derive(Debug)]
pub struct Event {
    pub time: SystemTime,
    pub request_id: HeaderValue,
    /// Index into `Config::routes`; `None` when no operation matched.
    pub route: Option<u32>,
    pub method: Method,
    pub status: u16,
    pub total: Duration,
    pub upstream: Option<Duration>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// The client: the peer, or what trusted proxies forwarded.
    pub client: IpAddr,
    /// The rate-limit decision; `None` when no policy applied.
    pub rate_limit: Option<Outcome>,
    pub error: Option<&'static str>,
    /// Filled by authentication (later stages).
    pub consumer: Option<Arc<str>>,
    /// Authentication outcome (`success`, `anonymous`, `missing`, `invalid`,
    /// `forbidden`, `unavailable`); `None` when no operation matched.
    pub auth: Option<&'static str>,
    /// The W3C trace id (32 hex digits), when tracing is on.
    pub trace_id: Option<String>,
}

/// The line of one event as a serde struct: what [`write_line`] must write,
/// byte for byte (the tests compare the two).
#[cfg(test)]
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Line<'a> {
    timestamp: String,
    request_id: &'a str,
    api: Option<&'a str>,
    api_version: Option<&'a str>,
    operation_id: Option<&'a str>,
    route: Option<&'a str>,
    method: &'a str,
    status: u16,
    latency_ms: f64,
    upstream_latency_ms: Option<f64>,
    bytes_in: u64,
    bytes_out: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    rate_limit: Option<RateLimitLine<'a>>,
    client_ip: String,
    consumer: Option<&'a str>,
    error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trace_id: Option<&'a str>,
}

#[cfg(test)]
#[derive(Serialize)]
struct RateLimitLine<'a> {
    /// `allowed` or `limited`.
    outcome: &'static str,
    /// The refusing policy, or the one with the fewest requests left.
    policy: &'a str,
    remaining: u64,
}

enum Msg {
    Event(Box<Event>),
    Stop,
}

/// The sending side, held by the pipeline.
#[derive(Clone)]
pub struct Analytics {
    tx: Option<Sender<Msg>>,
}

/// The writer thread; stop it with [`Writer::stop`] to flush what is queued.
pub struct Writer {
    tx: Option<Sender<Msg>>,
    handle: Option<JoinHandle<()>>,
}

impl Analytics {
    /// Starts the writer thread for the configured sink.
    pub fn start(config: Arc<Config>, metrics: Arc<Metrics>) -> io::Result<(Analytics, Writer)> {
        let (sink, capacity): (Box<dyn Write + Send>, usize) = match &config.analytics {
            AnalyticsCfg::Disabled => {
                return Ok((
                    Analytics { tx: None },
                    Writer {
                        tx: None,
                        handle: None,
                    },
                ));
            }
            AnalyticsCfg::Stdout { queue_capacity } => (Box::new(io::stdout()), *queue_capacity),
            AnalyticsCfg::File {
                path,
                queue_capacity,
            } => {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| {
                        io::Error::new(e.kind(), format!("analytics file `{path}`: {e}"))
                    })?;
                (Box::new(file), *queue_capacity)
            }
        };
        let (tx, rx) = bounded_queue::bounded(capacity);
        let handle = std::thread::Builder::new()
            .name("mgw-analytics".into())
            .spawn(move || write_loop(rx, capacity, sink, &config, &metrics))?;
        Ok((
            Analytics {
                tx: Some(tx.clone()),
            },
            Writer {
                tx: Some(tx),
                handle: Some(handle),
            },
        ))
    }

    /// A recorder that drops everything (tests, disabled sink).
    pub fn disabled() -> Analytics {
        Analytics { tx: None }
    }

    /// Whether events are written anywhere (the request path skips building
    /// them, and reading the wall clock for them, when not).
    pub fn is_on(&self) -> bool {
        self.tx.is_some()
    }

    /// Never blocks: a full queue drops the event and counts it.
    pub fn record(&self, event: Event, metrics: &Metrics) {
        let Some(tx) = &self.tx else { return };
        match tx.try_send(Msg::Event(Box::new(event))) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                metrics.analytics_dropped.inc();
            }
        }
    }
}

impl Writer {
    /// Asks the writer to finish what is queued and waits for it.
    pub fn stop(mut self) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send_past_bound(Msg::Stop);
        }
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

fn write_loop(
    rx: Receiver<Msg>,
    rx_capacity: usize,
    sink: Box<dyn Write + Send>,
    config: &Config,
    metrics: &Metrics,
) {
    let mut out = io::BufWriter::with_capacity(64 * 1024, sink);
    let mut line = Vec::with_capacity(512);
    let mut routes = RouteNames::default();
    let mut stamp = Timestamps::default();
    let mut broken = false;
    let pause = batch_pause(rx_capacity);
    // Block for one message, drain whatever else is queued, then flush: a burst
    // becomes one write, and a quiet sink is flushed at once.
    while let Ok(msg) = rx.recv() {
        let mut next = Some(msg);
        while let Some(msg) = next.take() {
            let Msg::Event(event) = msg else {
                let _ = out.flush();
                return;
            };
            if broken {
                metrics.analytics_dropped.inc();
            } else {
                line.clear();
                if write_line(&mut line, &event, config, &mut routes, &mut stamp).is_ok()
                    && out.write_all(&line).is_ok()
                {
                    metrics.analytics_written.inc();
                } else {
                    broken = true;
                    metrics.analytics_dropped.inc();
                    tracing::warn!("analytics sink failed; further events are dropped");
                }
            }
            next = match rx.try_recv() {
                Ok(m) => Some(m),
                Err(TryRecvError::Empty) => None,
                Err(TryRecvError::Disconnected) => break,
            };
        }
        if !broken && out.flush().is_err() {
            broken = true;
            tracing::warn!("analytics sink failed; further events are dropped");
        }
        // Under load the queue has refilled by the time the pause is over, so the
        // next `recv` returns at once and no sender has to wake this thread. When
        // idle, `recv` blocks and the first event of the next burst wakes it.
        std::thread::sleep(pause);
    }
    let _ = out.flush();
}

/// How long the writer waits between batches. Waking the writer for every
/// event costs the request path a futex wake and a context switch per request,
/// which under load was most of what analytics cost; pausing makes it one per
/// batch. The pause is short enough that even a million events per second
/// fill at most a quarter of the queue meanwhile.
fn batch_pause(capacity: usize) -> Duration {
    const MAX: Duration = Duration::from_millis(5);
    let quarter_at_1m_per_s = Duration::from_micros((capacity / 4) as u64);
    quarter_at_1m_per_s.min(MAX)
}

/// The route's part of a line (`"api":…,"apiVersion":…,"operationId":…,"route":…,`),
/// made once per route on its first event: the same for every request to it.
#[derive(Default)]
struct RouteNames {
    /// By route index; the last slot is for requests that matched no route.
    done: Vec<Option<Box<[u8]>>>,
}

impl RouteNames {
    fn fragment(&mut self, route: Option<u32>, config: &Config) -> io::Result<&[u8]> {
        let n = config.routes.len();
        if self.done.is_empty() {
            self.done = vec![None; n + 1];
        }
        let route = route.map(|i| i as usize).filter(|&i| i < n);
        let slot = &mut self.done[route.unwrap_or(n)];
        if slot.is_none() {
            let route = route.map(|i| &config.routes[i]);
            let api = route.map(|r| &config.apis[r.api]);
            let mut f = Vec::new();
            f.extend_from_slice(b"\"api\":");
            serde_json::to_writer(&mut f, &api.map(|a| a.name.as_str()))?;
            f.extend_from_slice(b",\"apiVersion\":");
            serde_json::to_writer(&mut f, &api.and_then(|a| a.version.as_deref()))?;
            f.extend_from_slice(b",\"operationId\":");
            serde_json::to_writer(&mut f, &route.map(|r| r.operation_id.as_str()))?;
            f.extend_from_slice(b",\"route\":");
            serde_json::to_writer(&mut f, &route.map(|r| r.template.as_str()))?;
            f.push(b',');
            *slot = Some(f.into_boxed_slice());
        }
        Ok(slot.as_deref().unwrap_or_default())
    }
}

/// The RFC 3339 timestamp of an event (`2026-11-30T12:00:01.123456Z`, as
/// `humantime::format_rfc3339_micros` writes it): the date and time of day are
/// formatted once per second (`core::fmt` was a fifth of the writer's work per
/// event), only the microseconds for each event.
#[derive(Default)]
struct Timestamps {
    /// The whole second last formatted, and `YYYY-MM-DDTHH:MM:SS.` for it.
    second: Option<(u64, Vec<u8>)>,
}

impl Timestamps {
    fn write(&mut self, out: &mut Vec<u8>, time: SystemTime) -> io::Result<()> {
        let Ok(since) = time.duration_since(std::time::UNIX_EPOCH) else {
            // Before 1970: no clock of a running gateway says so; as humantime.
            return write!(out, "{}", humantime::format_rfc3339_micros(time));
        };
        let second = since.as_secs();
        let prefix = match &mut self.second {
            Some((s, prefix)) if *s == second => prefix,
            slot => {
                let whole = std::time::UNIX_EPOCH + Duration::from_secs(second);
                let mut prefix = Vec::with_capacity(32);
                write!(prefix, "{}", humantime::format_rfc3339_micros(whole))?;
                // `….000000Z`: keep through the dot.
                prefix.truncate(prefix.len().saturating_sub(7));
                &mut slot.insert((second, prefix)).1
            }
        };
        out.extend_from_slice(prefix);
        let micros = since.subsec_micros();
        let mut digits = [b'0'; 6];
        let mut n = itoa::Buffer::new();
        let text = n.format(micros).as_bytes();
        digits[6 - text.len()..].copy_from_slice(text);
        out.extend_from_slice(&digits);
        out.push(b'Z');
        Ok(())
    }
}

/// Writes the JSON line of `e`, newline included, into `out`: the document
/// `serde_json` made of [`Line`] (same members in the same order, the same
/// `null`s, escapes and numbers), without running the serializer over the
/// fixed keys and the route's names for every event (most of the writer's
/// instructions; BENCHMARKS.md, "Product path, sixth wave").
fn write_line(
    out: &mut Vec<u8>,
    e: &Event,
    config: &Config,
    routes: &mut RouteNames,
    stamp: &mut Timestamps,
) -> io::Result<()> {
    let mut n = itoa::Buffer::new();
    out.extend_from_slice(b"{\"timestamp\":\"");
    stamp.write(out, e.time)?;
    out.extend_from_slice(b"\",\"requestId\":");
    json_str(out, e.request_id.to_str().unwrap_or_default())?;
    out.push(b',');
    out.extend_from_slice(routes.fragment(e.route, config)?);
    // A method is an RFC 9110 token: nothing in it needs a JSON escape.
    out.extend_from_slice(b"\"method\":\"");
    out.extend_from_slice(e.method.as_str().as_bytes());
    out.push(b'"');
    out.extend_from_slice(b",\"status\":");
    out.extend_from_slice(n.format(e.status).as_bytes());
    out.extend_from_slice(b",\"latencyMs\":");
    serde_json::to_writer(&mut *out, &millis(e.total))?;
    out.extend_from_slice(b",\"upstreamLatencyMs\":");
    serde_json::to_writer(&mut *out, &e.upstream.map(millis))?;
    out.extend_from_slice(b",\"bytesIn\":");
    out.extend_from_slice(n.format(e.bytes_in).as_bytes());
    out.extend_from_slice(b",\"bytesOut\":");
    out.extend_from_slice(n.format(e.bytes_out).as_bytes());
    if let Some(r) = &e.rate_limit {
        out.extend_from_slice(b",\"rateLimit\":{\"outcome\":");
        out.extend_from_slice(if r.limited {
            b"\"limited\""
        } else {
            b"\"allowed\""
        });
        out.extend_from_slice(b",\"policy\":");
        json_str(out, &r.policy)?;
        out.extend_from_slice(b",\"remaining\":");
        out.extend_from_slice(n.format(r.remaining).as_bytes());
        out.push(b'}');
    }
    out.extend_from_slice(b",\"clientIp\":\"");
    match e.client {
        // Dotted decimal without `core::fmt` (the common case); IPv6 as std writes it.
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                out.extend_from_slice(n.format(octet).as_bytes());
            }
        }
        IpAddr::V6(v6) => write!(out, "{v6}")?,
    }
    out.extend_from_slice(b"\",\"consumer\":");
    match &e.consumer {
        Some(consumer) => json_str(out, consumer)?,
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"error\":");
    serde_json::to_writer(&mut *out, &e.error)?;
    if let Some(auth) = e.auth {
        // One of the fixed lowercase labels: nothing to escape.
        out.extend_from_slice(b",\"auth\":\"");
        out.extend_from_slice(auth.as_bytes());
        out.push(b'"');
    }
    if let Some(trace_id) = &e.trace_id {
        out.extend_from_slice(b",\"traceId\":");
        serde_json::to_writer(&mut *out, trace_id)?;
    }
    out.extend_from_slice(b"}\n");
    Ok(())
}

/// `s` as a JSON string, byte for byte what `serde_json` writes: copied as it
/// is when nothing in it needs an escape (request ids, policy and consumer
/// names, nearly always), else through `serde_json`'s escaper. Its per-call
/// set-up was most of the writer's cost for these short strings.
fn json_str(out: &mut Vec<u8>, s: &str) -> io::Result<()> {
    // What `serde_json` escapes: control bytes, `"` and `\`; everything else
    // (DEL and UTF-8 included) it copies.
    // No early exit: the compiler checks many bytes per step.
    let plain = !s.bytes().fold(false, |any, b| {
        any | (b < 0x20) | (b == b'"') | (b == b'\\')
    });
    if plain {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
        Ok(())
    } else {
        serde_json::to_writer(&mut *out, s).map_err(io::Error::from)
    }
}

#[cfg(test)]
fn to_line<'a>(e: &'a Event, config: &'a Config) -> Line<'a> {
    let route = e.route.and_then(|i| config.routes.get(i as usize));
    let api = route.map(|r| &config.apis[r.api]);
    Line {
        timestamp: humantime::format_rfc3339_micros(e.time).to_string(),
        request_id: e.request_id.to_str().unwrap_or_default(),
        api: api.map(|a| a.name.as_str()),
        api_version: api.and_then(|a| a.version.as_deref()),
        operation_id: route.map(|r| r.operation_id.as_str()),
        route: route.map(|r| r.template.as_str()),
        method: e.method.as_str(),
        status: e.status,
        latency_ms: millis(e.total),
        upstream_latency_ms: e.upstream.map(millis),
        bytes_in: e.bytes_in,
        bytes_out: e.bytes_out,
        rate_limit: e.rate_limit.as_ref().map(|r| RateLimitLine {
            outcome: if r.limited { "limited" } else { "allowed" },
            policy: &r.policy,
            remaining: r.remaining,
        }),
        client_ip: e.client.to_string(),
        consumer: e.consumer.as_deref(),
        error: e.error,
        auth: e.auth,
        trace_id: e.trace_id.as_deref(),
    }
}

/// Milliseconds with microsecond precision.
fn millis(d: Duration) -> f64 {
    (d.as_micros() as f64) / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::net::{Ipv4Addr, Ipv6Addr};

    use crate::bundle::Bundle;

    fn config() -> Config {
        let bundle: Bundle = serde_json::from_value(serde_json::json!({
            "schemaVersion": 1,
            "gateway": {"name": "gw", "version": "1"},
            "upstreams": {"pets": {"urls": ["http://127.0.0.1:9000"]}},
            "apis": [
                {"name": "pets", "basePath": "/pets", "upstream": "pets",
                 "operations": [{"id": "list", "method": "GET", "path": "/"}]},
                {"name": "odd \"api\"\u{7}", "version": "v1 é", "basePath": "/odd", "upstream": "pets",
                 "operations": [{"id": "get\\it", "method": "GET", "path": "/{id}"}]}
            ]
        }))
        .unwrap();
        Config::from_bundle(&bundle, String::new(), Some(&BTreeMap::new())).unwrap()
    }

    fn event(route: Option<u32>, client: IpAddr) -> Event {
        Event {
            time: SystemTime::UNIX_EPOCH + Duration::from_micros(1_764_489_600_123_456),
            request_id: HeaderValue::from_static("req-1"),
            route,
            method: Method::GET,
            status: 200,
            total: Duration::from_micros(1234),
            upstream: Some(Duration::from_micros(1000)),
            bytes_in: 0,
            bytes_out: 96,
            client,
            rate_limit: None,
            error: None,
            consumer: None,
            auth: None,
            trace_id: None,
        }
    }

    /// Every shape of event: the hand-written line is the serde document, byte
    /// for byte (red when a key, an order, an escape or a `null` differs).
    #[test]
    fn lines_are_the_serde_document_byte_for_byte() {
        let config = config();
        let v4 = IpAddr::V4(Ipv4Addr::new(10, 0, 255, 7));
        let mut all = vec![
            event(Some(0), v4),
            event(None, IpAddr::V6(Ipv6Addr::LOCALHOST)),
            event(Some(99), v4),
        ];
        let mut full = event(
            Some(1),
            IpAddr::V6("2001:db8::ffff:1.2.3.4".parse().unwrap()),
        );
        full.request_id = HeaderValue::from_bytes(b"id \"q\" \\ \xe9").unwrap();
        full.method = Method::from_bytes(b"PURGE").unwrap();
        full.status = 429;
        full.upstream = None;
        full.bytes_in = u64::MAX;
        full.rate_limit = Some(Outcome {
            limited: true,
            policy: "gold\"x".into(),
            remaining: 0,
        });
        full.error = Some("rate_limited");
        full.consumer = Some("al\u{1}ice".into());
        full.auth = Some("success");
        full.trace_id = Some("0af7651916cd43dd8448eb211c80319c".into());
        all.push(full);
        let mut allowed = event(Some(0), IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        allowed.rate_limit = Some(Outcome {
            limited: false,
            policy: "free".into(),
            remaining: 17,
        });
        all.push(allowed);
        // Strings copied as they are (DEL, UTF-8, `/`, `'`) and each byte that
        // needs an escape, at the start, in the middle and at the end.
        for text in ["free\u{7f}é/'", "\u{1f}x", "x\"y", "x\\", "\u{0}", ""] {
            let mut e = event(Some(0), v4);
            e.request_id = HeaderValue::from_str(text).unwrap_or(HeaderValue::from_static("-"));
            e.consumer = Some(text.into());
            e.rate_limit = Some(Outcome {
                limited: false,
                policy: text.into(),
                remaining: 1,
            });
            all.push(e);
        }
        // Timestamps: microseconds with leading zeros, the same second again
        // (from the cache), the next second, and another day.
        for micros in [
            1_764_489_600_000_000,
            1_764_489_600_000_007,
            1_764_489_600_999_999,
            1_764_489_601_000_120,
            1_764_489_601_500_000,
            1_700_000_000_012_345,
            1_764_489_601_500_001,
        ] {
            let mut e = event(Some(0), v4);
            e.time = SystemTime::UNIX_EPOCH + Duration::from_micros(micros);
            all.push(e);
        }
        let mut routes = RouteNames::default();
        let mut stamp = Timestamps::default();
        for e in &all {
            // Twice: the route's part comes from the cache the second time.
            for _ in 0..2 {
                let mut got = Vec::new();
                write_line(&mut got, e, &config, &mut routes, &mut stamp).unwrap();
                let mut want = serde_json::to_vec(&to_line(e, &config)).unwrap();
                want.push(b'\n');
                assert_eq!(
                    String::from_utf8_lossy(&got),
                    String::from_utf8_lossy(&want)
                );
            }
        }
    }
}
