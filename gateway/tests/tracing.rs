//! OpenTelemetry traces through the in-process gateway: a W3C `traceparent` in,
//! spans out to an OTLP/HTTP receiver written here (decoding with the
//! `opentelemetry-proto` types), `traceparent` propagated to the upstream.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::trace::v1::{Span, span::SpanKind};
use prost::Message;
use serde_json::json;
use support::*;

#[derive(Default)]
struct Received {
    spans: Vec<Span>,
    raw: Vec<u8>,
    service_names: Vec<String>,
}

/// How a test receiver speaks: OTLP/HTTP, or OTLP/gRPC answering with this
/// `grpc-status` in the trailers.
#[derive(Clone, Copy)]
enum Wire {
    Http,
    Grpc { status: u32 },
}

const GRPC_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// An OTLP/HTTP receiver: `POST /v1/traces` with a protobuf body.
async fn receiver() -> (std::net::SocketAddr, Arc<Mutex<Received>>) {
    receiver_with(Wire::Http, None).await
}

/// An OTLP receiver speaking `wire`, behind TLS when `tls` is given (HTTP/1.1
/// and HTTP/2 in clear, by prior knowledge; over TLS as ALPN says).
async fn receiver_with(
    wire: Wire,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> (std::net::SocketAddr, Arc<Mutex<Received>>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let got = Arc::new(Mutex::new(Received::default()));
    let g = got.clone();
    tokio::spawn(async move {
        loop {
            let (s, _) = l.accept().await.unwrap();
            let (g, tls) = (g.clone(), tls.clone());
            tokio::spawn(async move {
                match tls {
                    Some(config) => {
                        let acceptor = tokio_rustls::TlsAcceptor::from(config);
                        if let Ok(s) = acceptor.accept(s).await {
                            serve_otlp(s, g, wire).await;
                        }
                    }
                    None => serve_otlp(s, g, wire).await,
                }
            });
        }
    });
    (addr, got)
}

async fn serve_otlp<S>(s: S, g: Arc<Mutex<Received>>, wire: Wire)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let svc = service_fn(move |req: http::Request<hyper::body::Incoming>| {
        let g = g.clone();
        async move {
            let grpc = match wire {
                Wire::Http => {
                    assert_eq!(req.uri().path(), "/v1/traces");
                    assert_eq!(req.headers()["content-type"], "application/x-protobuf");
                    None
                }
                Wire::Grpc { status } => {
                    assert_eq!(req.uri().path(), GRPC_PATH);
                    assert_eq!(req.version(), http::Version::HTTP_2);
                    assert_eq!(req.headers()["content-type"], "application/grpc");
                    Some(status)
                }
            };
            let mut body = req.into_body().collect().await.unwrap().to_bytes();
            if grpc.is_some() {
                // The 5-byte prefix: not compressed, then the message length.
                assert_eq!(body[0], 0);
                let len = u32::from_be_bytes(body[1..5].try_into().unwrap()) as usize;
                assert_eq!(len, body.len() - 5);
                body = body.slice(5..);
            }
            let msg = ExportTraceServiceRequest::decode(body.clone()).unwrap();
            let mut r = g.lock().unwrap();
            r.raw.extend_from_slice(&body);
            for rs in msg.resource_spans {
                for a in rs.resource.unwrap_or_default().attributes {
                    if a.key == "service.name" {
                        r.service_names.push(string(&a.value));
                    }
                }
                for ss in rs.scope_spans {
                    r.spans.extend(ss.spans);
                }
            }
            let Some(status) = grpc else {
                return Ok::<_, std::convert::Infallible>(http::Response::new(full(Bytes::new())));
            };
            // An empty ExportTraceServiceResponse, then the status in trailers.
            let mut trailers = http::HeaderMap::new();
            trailers.insert("grpc-status", status.into());
            let frames: Vec<Result<Frame<Bytes>, Box<dyn std::error::Error + Send + Sync>>> = vec![
                Ok(Frame::data(Bytes::from_static(&[0, 0, 0, 0, 0]))),
                Ok(Frame::trailers(trailers)),
            ];
            let body = StreamBody::new(futures_util::stream::iter(frames)).boxed();
            Ok(http::Response::builder()
                .header("content-type", "application/grpc")
                .body(body)
                .unwrap())
        }
    });
    let _ = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
        .serve_connection(TokioIo::new(s), svc)
        .await;
}

fn string(v: &Option<opentelemetry_proto::tonic::common::v1::AnyValue>) -> String {
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        other => format!("{other:?}"),
    }
}

fn attr(s: &Span, key: &str) -> Option<String> {
    s.attributes
        .iter()
        .find(|a| a.key == key)
        .map(|a| string(&a.value))
}

#[tokio::test]
async fn spans_link_parent_and_children_and_propagate_upstream() {
    let b = backend("a").await;
    let (otlp, got) = receiver().await;
    let mut v = bundle_json(&[format!("http://{}", b.addr)]);
    // New traces are never sampled (ratio 0): only callers' sampled traces are.
    v["tracing"] = json!({"otlp": {"endpoint": "${OTLP_ENDPOINT}"}, "sampleRatio": 0.0});
    v["rateLimits"] = json!({"policies": {"p": {"requests": 100, "periodSeconds": 1}}});
    v["apis"][0]["rateLimit"] = "p".into();
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    v["analytics"] = json!({"sink": "file", "path": events.to_str().unwrap()});
    let endpoint = format!("http://{otlp}");
    let gw = start_with_env(v, &[("OTLP_ENDPOINT", &endpoint)]).await;

    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent = "00f067aa0ba902b7";
    // Not sampled by its parent, and a new trace at ratio 0: neither is exported.
    let unsampled = "11111111111111111111111111111111";
    let r = send(
        http::Request::get(gw.url("/pets-api/v1/pets"))
            .header("traceparent", format!("00-{unsampled}-{parent}-00"))
            .body(full(""))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 200);
    let fwd = r.json()["headers"]["traceparent"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        fwd.starts_with(&format!("00-{unsampled}-")) && fwd.ends_with("-00"),
        "{fwd}"
    );
    assert_eq!(get(&gw.url("/pets-api/v1/pets")).await.status, 200);

    let r = send(
        http::Request::get(gw.url("/pets-api/v1/pets/7"))
            .header("traceparent", format!("00-{trace_id}-{parent}-01"))
            .header("tracestate", "vendor=abc")
            .header("authorization", "Bearer sekrit-token")
            .header("x-api-key", "sekrit-key")
            .body(full(""))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 200);
    let echoed = r.json();
    let fwd = echoed["headers"]["traceparent"]
        .as_str()
        .unwrap()
        .to_owned();
    let fwd: Vec<&str> = fwd.split('-').collect();
    assert_eq!((fwd[0], fwd[1], fwd[3]), ("00", trace_id, "01"), "{fwd:?}");
    assert_ne!(
        fwd[2], parent,
        "the upstream's parent is the gateway's client span"
    );
    assert_eq!(echoed["headers"]["tracestate"], "vendor=abc");

    let arrived = eventually(Duration::from_secs(10), || async {
        got.lock().unwrap().spans.len() >= 4
    })
    .await;
    assert!(arrived, "no spans reached the receiver");
    let r = std::mem::take(&mut *got.lock().unwrap());
    // Only the sampled trace, in one batch of four spans.
    assert_eq!(r.spans.len(), 4, "{:?}", r.spans);
    assert!(r.spans.iter().all(|s| hex::encode(&s.trace_id) == trace_id));
    assert_eq!(r.service_names, ["test-gw"]);
    let server = r
        .spans
        .iter()
        .find(|s| s.kind == SpanKind::Server as i32)
        .expect("a server span");
    assert_eq!(hex::encode(&server.parent_span_id), parent);
    assert_eq!(server.trace_state, "vendor=abc");
    assert_eq!(attr(server, "http.request.method").as_deref(), Some("GET"));
    assert_eq!(
        attr(server, "http.route").as_deref(),
        Some("/pets-api/v1/pets/{petId}")
    );
    assert_eq!(
        attr(server, "http.response.status_code").as_deref(),
        Some("200")
    );
    assert_eq!(attr(server, "mgw.api").as_deref(), Some("pets"));
    assert_eq!(attr(server, "mgw.operation").as_deref(), Some("getPet"));
    assert_eq!(attr(server, "mgw.consumer"), None);
    let mut children: Vec<(&str, i32)> = r
        .spans
        .iter()
        .filter(|s| s.span_id != server.span_id)
        .map(|s| {
            assert_eq!(s.parent_span_id, server.span_id, "{}", s.name);
            assert!(s.start_time_unix_nano >= server.start_time_unix_nano);
            assert!(s.end_time_unix_nano <= server.end_time_unix_nano);
            (s.name.as_str(), s.kind)
        })
        .collect();
    children.sort_unstable();
    assert_eq!(
        children,
        [
            ("auth", SpanKind::Internal as i32),
            ("rate-limit", SpanKind::Internal as i32),
            ("upstream", SpanKind::Client as i32),
        ]
    );
    let upstream = r.spans.iter().find(|s| s.name == "upstream").unwrap();
    assert_eq!(hex::encode(&upstream.span_id), fwd[2]);
    // No credential is ever exported.
    let raw = String::from_utf8_lossy(&r.raw);
    assert!(
        !raw.contains("sekrit"),
        "a credential reached the collector"
    );
    assert_eq!(
        metric(&gw, "mgw_trace_spans_exported_total").await,
        Some(4.0)
    );
    gw.shutdown().await;
    // The analytics line of each request carries its trace id.
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&events)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ids: Vec<&str> = lines
        .iter()
        .map(|l| l["traceId"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 3, "{lines:?}");
    assert_eq!((ids[0], ids[2]), (unsampled, trace_id));
    assert_eq!(ids[1].len(), 32);
}

#[tokio::test]
async fn a_collector_that_is_down_costs_requests_nothing_and_spans_are_counted_dropped() {
    let b = backend("a").await;
    let dead = dead_port().await;
    let mut v = bundle_json(&[format!("http://{}", b.addr)]);
    v["tracing"] = json!({"otlp": {"endpoint": format!("http://{dead}")}, "queueSize": 1});
    let gw = start(v).await;
    for _ in 0..20 {
        assert_eq!(get(&gw.url("/pets-api/v1/pets")).await.status, 200);
    }
    let dropped = eventually(Duration::from_secs(10), || async {
        metric(&gw, "mgw_trace_spans_dropped_total")
            .await
            .is_some_and(|n| n >= 20.0)
    })
    .await;
    assert!(
        dropped,
        "spans for a dead collector were not counted as dropped"
    );
    gw.shutdown().await;
}

/// One sampled request through a gateway exporting to `endpoint`; `extra` is
/// merged into `tracing.otlp`. Returns the gateway (still running).
async fn one_traced_request(endpoint: &str, extra: serde_json::Value) -> Gw {
    let b = backend("a").await;
    let mut v = bundle_json(&[format!("http://{}", b.addr)]);
    let mut otlp = json!({"endpoint": endpoint});
    otlp.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    v["tracing"] = json!({"otlp": otlp});
    let gw = start(v).await;
    let r = send(
        http::Request::get(gw.url("/pets-api/v1/pets"))
            .header(
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            )
            .body(full(""))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 200);
    gw
}

/// Waits (bounded) until the gateway counts a span under `sample`.
async fn counted(gw: &Gw, sample: &str) -> bool {
    eventually(Duration::from_secs(10), || async {
        metric(gw, sample).await.is_some_and(|n| n >= 1.0)
    })
    .await
}

#[tokio::test]
async fn spans_reach_an_https_collector_that_its_ca_file_signs() {
    let pki = auth::Pki::new();
    let dir = tempfile::tempdir().unwrap();
    pki.write(dir.path());
    let ca = dir.path().join("ca.crt");
    let tls = tls_server_config(&pki.server_cert, &pki.server_key, None, &[b"http/1.1"]);
    let (otlp, got) = receiver_with(Wire::Http, Some(tls)).await;
    let endpoint = format!("https://localhost:{}", otlp.port());

    let gw = one_traced_request(&endpoint, json!({"caFile": ca.to_str().unwrap()})).await;
    assert!(
        counted(&gw, "mgw_trace_spans_exported_total").await,
        "no spans exported over https"
    );
    let r = std::mem::take(&mut *got.lock().unwrap());
    assert!(!r.spans.is_empty());
    assert!(
        r.spans
            .iter()
            .all(|s| hex::encode(&s.trace_id) == "4bf92f3577b34da6a3ce929d0e0e4736")
    );
    gw.shutdown().await;

    // Without the CA file the collector's certificate is not trusted.
    let gw = one_traced_request(&endpoint, json!({})).await;
    assert!(
        counted(&gw, "mgw_trace_spans_dropped_total").await,
        "spans to an untrusted collector were not counted as dropped"
    );
    assert_eq!(
        metric(&gw, "mgw_trace_spans_exported_total").await,
        Some(0.0)
    );
    assert!(got.lock().unwrap().spans.is_empty());
    gw.shutdown().await;
}

#[tokio::test]
async fn spans_reach_a_grpc_collector_and_its_grpc_status_is_read() {
    let pki = auth::Pki::new();
    let dir = tempfile::tempdir().unwrap();
    pki.write(dir.path());
    let ca = dir.path().join("ca.crt");
    let tls = tls_server_config(&pki.server_cert, &pki.server_key, None, &[b"h2"]);
    // h2c (prior knowledge) and HTTP/2 over TLS (ALPN `h2`).
    for tls in [None, Some(tls)] {
        let over_tls = tls.is_some();
        let (otlp, got) = receiver_with(Wire::Grpc { status: 0 }, tls).await;
        let (endpoint, extra) = match over_tls {
            true => (
                format!("https://localhost:{}", otlp.port()),
                json!({"protocol": "grpc", "caFile": ca.to_str().unwrap()}),
            ),
            false => (format!("http://{otlp}"), json!({"protocol": "grpc"})),
        };
        let gw = one_traced_request(&endpoint, extra).await;
        assert!(
            counted(&gw, "mgw_trace_spans_exported_total").await,
            "no spans exported over gRPC (TLS: {over_tls})"
        );
        let r = std::mem::take(&mut *got.lock().unwrap());
        assert!(!r.spans.is_empty(), "TLS: {over_tls}");
        assert_eq!(r.service_names[0], "test-gw");
        assert_eq!(
            metric(&gw, "mgw_trace_spans_dropped_total").await,
            Some(0.0)
        );
        gw.shutdown().await;
    }

    // A collector that answers `grpc-status: 14` (UNAVAILABLE) in its trailers
    // did not take the spans.
    let (otlp, got) = receiver_with(Wire::Grpc { status: 14 }, None).await;
    let gw = one_traced_request(&format!("http://{otlp}"), json!({"protocol": "grpc"})).await;
    assert!(
        counted(&gw, "mgw_trace_spans_dropped_total").await,
        "spans refused by grpc-status were not counted as dropped"
    );
    assert!(
        !got.lock().unwrap().spans.is_empty(),
        "the collector was reached"
    );
    assert_eq!(
        metric(&gw, "mgw_trace_spans_exported_total").await,
        Some(0.0)
    );
    gw.shutdown().await;
}
