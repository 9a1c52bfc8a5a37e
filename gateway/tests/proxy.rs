//! The gateway in-process against real backends on loopback.

mod support;

use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn routes_and_rewrites_base_path() {
    let b = backend("a").await;
    let gw = start(bundle_json(&[format!("http://{}/internal/", b.addr)])).await;
    let r = get(&gw.url("/pets-api/v1/pets/42?x=1&y=a%20b")).await;
    assert_eq!(r.status, StatusCode::OK);
    let v = r.json();
    assert_eq!(v["uri"], "/internal/pets/42?x=1&y=a%20b");
    assert_eq!(v["method"], "GET");
    // Percent-encoded slash stays one segment and is forwarded as sent.
    let r = get(&gw.url("/pets-api/v1/pets/a%2Fb")).await;
    assert_eq!(r.json()["uri"], "/internal/pets/a%2Fb");
    gw.shutdown().await;
}

#[tokio::test]
async fn not_found_and_method_not_allowed_are_problem_json() {
    let b = backend("a").await;
    let gw = start(bundle_json(&[format!("http://{}", b.addr)])).await;
    let r = get(&gw.url("/nope")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.headers["content-type"], "application/problem+json");
    assert_eq!(r.json()["status"], 404);
    assert!(r.headers.contains_key("x-request-id"));

    let r = send(
        Request::delete(gw.url("/pets-api/v1/pets"))
            .body(full(""))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    let allow = r.headers["allow"].to_str().unwrap();
    assert!(
        allow.contains("GET") && allow.contains("POST") && allow.contains("HEAD"),
        "{allow}"
    );

    // HEAD is served by the GET route.
    let r = send(
        Request::head(gw.url("/pets-api/v1/pets"))
            .body(full(""))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(b.hits.load(std::sync::atomic::Ordering::SeqCst), 1);

    // Dot segments never reach an upstream.
    let r = get(&gw.url("/pets-api/v1/pets/%2e%2e")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    gw.shutdown().await;
}

#[tokio::test]
async fn forwarded_headers_and_request_id() {
    let b = backend("a").await;
    let gw = start(bundle_json(&[format!("http://{}", b.addr)])).await;
    let req = Request::get(gw.url("/pets-api/v1/pets"))
        .header("host", "api.example.com")
        .header("x-forwarded-for", "203.0.113.9")
        .header("x-request-id", "abc-123")
        .body(full(""))
        .unwrap();
    let r = send(req).await;
    let h = &r.json()["headers"];
    assert_eq!(h["x-forwarded-for"], "203.0.113.9, 127.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "http");
    assert_eq!(h["x-forwarded-host"], "api.example.com");
    assert_eq!(h["x-request-id"], "abc-123");
    assert_eq!(h["host"], b.addr.to_string());
    assert_eq!(r.headers["x-request-id"], "abc-123");

    let req = Request::get(gw.url("/pets-api/v1/pets"))
        .header("x-request-id", "bad id\twith tab")
        .body(full(""))
        .unwrap();
    let r = send(req).await;
    let id = r.json()["headers"]["x-request-id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(id.len(), 32);
    assert_eq!(r.headers["x-request-id"], id.as_str());
    gw.shutdown().await;
}

#[tokio::test]
async fn hop_by_hop_headers_are_stripped_both_ways() {
    let b = backend("a").await;
    let gw = start(bundle_json(&[format!("http://{}", b.addr)])).await;
    let req = Request::get(gw.url("/pets-api/v1/pets"))
        .header("connection", "x-private, keep-alive")
        .header("x-private", "1")
        .header("keep-alive", "timeout=5")
        .header("proxy-authorization", "Basic Zm9vOmJhcg==")
        .header("te", "gzip")
        .header("x-public", "1")
        .body(full(""))
        .unwrap();
    let r = send(req).await;
    let h = &r.json()["headers"];
    for gone in ["x-private", "keep-alive", "proxy-authorization", "te"] {
        assert!(h.get(gone).is_none(), "{gone} leaked upstream: {h}");
    }
    assert_eq!(h["x-public"], "1");

    let r = send(
        Request::get(gw.url("/pets-api/v1/hop"))
            .header("x-request-id", "client-1")
            .body(full(""))
            .unwrap(),
    )
    .await;
    assert!(r.headers.get("x-internal").is_none());
    assert!(r.headers.get("keep-alive").is_none());
    assert_eq!(r.headers["x-visible"], "yes");
    // The gateway's `X-Request-Id`, once, whatever the upstream sent.
    let ids: Vec<_> = r.headers.get_all("x-request-id").iter().collect();
    assert_eq!(ids, ["client-1"]);
    gw.shutdown().await;
}

#[tokio::test]
async fn bodies_stream_both_ways() {
    let b = backend("a").await;
    let gw = start(bundle_json(&[format!("http://{}", b.addr)])).await;
    // The client sends one chunk at a time and reads its echo before sending the
    // next: this only completes if neither direction is buffered whole.
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(1);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| {
            (
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(Frame::data(b)),
                rx,
            )
        })
    });
    let req = Request::post(gw.url("/pets-api/v1/echo"))
        .body(StreamBody::new(stream).boxed())
        .unwrap();
    let client = client();
    tx.send(Bytes::from_static(b"chunk-1;")).await.unwrap();
    let res = tokio::time::timeout(Duration::from_secs(10), client.request(req))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let mut body = res.into_body();
    for i in 2..=5 {
        let frame = tokio::time::timeout(Duration::from_secs(10), body.frame())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert!(frame.data_ref().is_some());
        tx.send(Bytes::from(format!("chunk-{i};"))).await.unwrap();
    }
    drop(tx);
    while body.frame().await.is_some() {}
    gw.shutdown().await;
}

#[tokio::test]
async fn large_download_streams() {
    let b = backend("a").await;
    let gw = start(bundle_json(&[format!("http://{}", b.addr)])).await;
    let n = 64 * 1024 * 1024; // far above any buffer the gateway has
    let res = client()
        .request(
            Request::get(gw.url(&format!("/pets-api/v1/big/{n}")))
                .body(full(""))
                .unwrap(),
        )
        .await
        .unwrap();
    let mut body = res.into_body();
    let mut total = 0usize;
    while let Some(f) = body.frame().await {
        total += f.unwrap().data_ref().map_or(0, |d| d.len());
    }
    assert_eq!(total, n);
    gw.shutdown().await;
}

#[tokio::test]
async fn body_limit_gives_413() {
    let b = backend("a").await;
    let gw = start(bundle_json(&[format!("http://{}", b.addr)])).await;
    // Declared length over the limit: refused before any upstream work.
    let r = send(
        Request::post(gw.url("/pets-api/v1/pets"))
            .body(full(vec![0u8; 2 * 1024 * 1024]))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(b.hits.load(std::sync::atomic::Ordering::SeqCst), 0);
    // Chunked body over the limit: cut off while streaming.
    let chunks = futures_util::stream::iter((0..40).map(|_| {
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(Frame::data(Bytes::from(vec![
            1u8;
            64 * 1024
        ])))
    }));
    let r = send(
        Request::post(gw.url("/pets-api/v1/pets"))
            .body(StreamBody::new(chunks).boxed())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    // Under the limit passes.
    let r = send(
        Request::post(gw.url("/pets-api/v1/pets"))
            .body(full(vec![0u8; 1000]))
            .unwrap(),
    )
    .await;
    assert_eq!(r.json()["bodyLen"], 1000);
    gw.shutdown().await;
}

#[tokio::test]
async fn upstream_failures_map_to_502_and_504() {
    let b = backend("a").await;
    let gw = start(bundle_json(&[format!("http://{}", b.addr)])).await;
    let r = get(&gw.url("/pets-api/v1/slow/3000")).await;
    assert_eq!(r.status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(r.headers["content-type"], "application/problem+json");
    let body = String::from_utf8_lossy(&r.body);
    assert!(
        !body.contains("127.0.0.1"),
        "leaks upstream address: {body}"
    );

    let r = get(&gw.url("/pets-api/v1/reset")).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{:?}", r.body);
    gw.shutdown().await;

    let dead = dead_port().await;
    let gw = start(bundle_json(&[format!("http://{dead}")])).await;
    let r = get(&gw.url("/pets-api/v1/pets")).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    assert!(!String::from_utf8_lossy(&r.body).contains(&dead.port().to_string()));
    gw.shutdown().await;
}

#[tokio::test]
async fn failover_and_round_robin() {
    let a = backend("a").await;
    let c = backend("c").await;
    let dead = dead_port().await;
    // A refused URL is skipped; the request (with a body and its headers:
    // the head the pool could not send is reused, not copied up front) still
    // arrives once, with the `Host` of the URL that took it.
    let gw = start(bundle_json(&[
        format!("http://{dead}"),
        format!("http://{}", a.addr),
    ]))
    .await;
    for _ in 0..4 {
        let r = send(
            Request::post(gw.url("/pets-api/v1/pets"))
                .header("x-client", "kept")
                .body(full("hello"))
                .unwrap(),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.json()["bodyLen"], 5);
        let h = &r.json()["headers"];
        assert_eq!(h["x-client"], "kept", "{h}");
        assert_eq!(h["host"], a.addr.to_string(), "{h}");
        assert_eq!(h["x-forwarded-proto"], "http", "{h}");
    }
    assert_eq!(a.hits.load(std::sync::atomic::Ordering::SeqCst), 4);
    gw.shutdown().await;

    let gw = start(bundle_json(&[
        format!("http://{}", a.addr),
        format!("http://{}", c.addr),
    ]))
    .await;
    let mut seen = std::collections::BTreeMap::new();
    for _ in 0..10 {
        let r = get(&gw.url("/pets-api/v1/pets")).await;
        *seen
            .entry(r.json()["backend"].as_str().unwrap().to_owned())
            .or_insert(0) += 1;
    }
    assert_eq!(seen["a"], 5);
    assert_eq!(seen["c"], 5);
    gw.shutdown().await;
}

#[tokio::test]
async fn slow_and_huge_headers_cannot_pin_connections() {
    let b = backend("a").await;
    let gw = start(bundle_json(&[format!("http://{}", b.addr)])).await;
    // Half a request head, then silence: the gateway closes the connection
    // without an answer (hyper sends none on a header timeout). A connection
    // still open after 10s fails the test.
    let out = raw_until_close(
        gw.api,
        b"GET /pets-api/v1/pets HTTP/1.1\r\nHost: x\r\n",
        Duration::from_secs(10),
    )
    .await
    .expect("a slow head must be cut off");
    assert_eq!(String::from_utf8_lossy(&out), "");

    let mut huge = b"GET /pets-api/v1/pets HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 200 * 1024));
    huge.extend_from_slice(b"\r\n\r\n");
    let out = raw_until_close(gw.api, &huge, Duration::from_secs(10))
        .await
        .expect("a huge head must be answered and closed");
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 431"), "{text}");
    let metrics = get(&format!("http://{}/metrics", gw.admin)).await;
    let m = String::from_utf8_lossy(&metrics.body).into_owned();
    assert!(
        m.contains("mgw_connection_errors_total{kind=\"header_timeout\"} 1"),
        "{m}"
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn websocket_upgrade_passes_through() {
    let b = backend("a").await;
    let gw = start(bundle_json(&[format!("http://{}", b.addr)])).await;
    let (mut s, head) = websocket_handshake(gw.api).await;
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: websocket"), "{head}");
    echo_through(&mut s).await;
    gw.shutdown().await;
}

#[tokio::test]
async fn h2c_prior_knowledge_is_served() {
    let b = backend("a").await;
    let gw = start(bundle_json(&[format!("http://{}", b.addr)])).await;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<TestBody>();
    let res = client
        .request(
            Request::get(gw.url("/pets-api/v1/pets/7"))
                .body(full(""))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.version(), http::Version::HTTP_2);
    let v: serde_json::Value =
        serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(v["uri"], "/pets/7");
    assert_eq!(v["headers"]["x-forwarded-host"], gw.api.to_string());
    gw.shutdown().await;
}

#[tokio::test]
async fn admin_endpoints_and_metrics_move() {
    let b = backend("a").await;
    let gw = start(bundle_json(&[format!("http://{}", b.addr)])).await;
    let admin = |p: &str| format!("http://{}{p}", gw.admin);
    assert_eq!(get(&admin("/healthz")).await.status, StatusCode::OK);
    assert_eq!(get(&admin("/readyz")).await.status, StatusCode::OK);
    let info = get(&admin("/info")).await.json();
    assert_eq!(info["gateway"], "test-gw");
    assert_eq!(info["version"], "1.2.3");
    assert!(
        info["bundleDigest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    assert_eq!(info["apis"][0]["name"], "pets");

    let line =
        r#"mgw_requests_total{api="pets",operation="listPets",method="GET",status_class="2xx"}"#;
    let count = |m: &str| -> u64 {
        m.lines()
            .find(|l| l.starts_with(line))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    let first = String::from_utf8_lossy(&get(&admin("/metrics")).await.body).into_owned();
    // A route not served yet (its series are allocated by its first request)
    // is written with zeros, like any other.
    for expected in [
        r#"mgw_requests_total{api="pets",operation="listPets",method="GET",status_class="2xx"} 0"#,
        r#"mgw_request_duration_seconds_count{api="pets",operation="listPets"} 0"#,
        r#"mgw_request_duration_seconds_bucket{le="+Inf",api="pets",operation="listPets"} 0"#,
    ] {
        assert!(
            first.lines().any(|l| l == expected),
            "no `{expected}` in\n{first}"
        );
    }
    let before = count(&first);
    for _ in 0..3 {
        get(&gw.url("/pets-api/v1/pets")).await;
    }
    get(&gw.url("/nowhere")).await;
    let m = String::from_utf8_lossy(&get(&admin("/metrics")).await.body).into_owned();
    assert_eq!(count(&m), before + 3, "{m}");
    assert!(
        m.contains(r#"mgw_unrouted_requests_total{kind="no_route"} 1"#),
        "{m}"
    );
    // Every route's series exist from the start (zero until used), with the
    // same names, types and labels whatever keeps them.
    for expected in [
        "# TYPE mgw_requests counter",
        "# HELP mgw_requests Requests answered, by API, operation, method and status class.",
        r#"mgw_requests_total{api="pets",operation="listPets",method="GET",status_class="5xx"} 0"#,
        "# TYPE mgw_request_duration_seconds histogram",
        r#"mgw_request_duration_seconds_count{api="pets",operation="listPets"} 3"#,
        r#"mgw_request_duration_seconds_bucket{le="+Inf",api="pets",operation="listPets"} 3"#,
    ] {
        assert!(m.lines().any(|l| l == expected), "no `{expected}` in\n{m}");
    }
    assert!(
        m.contains("mgw_upstream_duration_seconds_count{upstream=\"pets\"} 3"),
        "{m}"
    );
    assert!(m.contains("mgw_requests_in_flight 0"), "{m}");
    gw.shutdown().await;
}

#[tokio::test]
async fn analytics_lines_are_json_with_fields() {
    let b = backend("a").await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    let mut bundle = bundle_json(&[format!("http://{}", b.addr)]);
    bundle["analytics"] = serde_json::json!({"sink": "file", "path": path.to_str().unwrap()});
    let gw = start(bundle).await;
    send(
        Request::post(gw.url("/pets-api/v1/pets"))
            .header("x-request-id", "req-1")
            .body(full("12345"))
            .unwrap(),
    )
    .await;
    get(&gw.url("/missing")).await;
    gw.shutdown().await;
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{text}");
    let e = lines.iter().find(|e| e["requestId"] == "req-1").unwrap();
    assert_eq!(e["api"], "pets");
    assert_eq!(e["operationId"], "createPet");
    assert_eq!(e["route"], "/pets-api/v1/pets");
    assert_eq!(e["method"], "POST");
    assert_eq!(e["status"], 200);
    assert_eq!(e["bytesIn"], 5);
    assert!(e["bytesOut"].as_u64().unwrap() > 0);
    assert_eq!(e["clientIp"], "127.0.0.1");
    assert!(e["latencyMs"].as_f64().is_some());
    assert!(e["upstreamLatencyMs"].as_f64().is_some());
    assert!(e["timestamp"].as_str().unwrap().ends_with('Z'));
    let miss = lines.iter().find(|e| e["status"] == 404).unwrap();
    assert_eq!(miss["error"], "no_route");
    assert!(miss["api"].is_null());
}

#[tokio::test]
async fn idle_connections_are_closed_for_h1_and_h2() {
    let b = backend("a").await;
    let mut bundle = bundle_json(&[format!("http://{}", b.addr)]);
    bundle["limits"]["idleTimeoutMs"] = 300.into();
    let gw = start(bundle).await;
    let open = || async {
        let m = String::from_utf8_lossy(&get(&format!("http://{}/metrics", gw.admin)).await.body)
            .into_owned();
        m.lines()
            .find_map(|l| l.strip_prefix("mgw_connections_open "))
            .and_then(|n| n.trim().parse::<i64>().ok())
            .unwrap()
    };
    let h2 = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<TestBody>();
    let h1 = client();
    for c in [&h2, &h1] {
        let res = c
            .request(
                Request::get(gw.url("/pets-api/v1/pets"))
                    .body(full(""))
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        res.into_body().collect().await.unwrap();
    }
    assert_eq!(open().await, 2, "both pooled client connections are open");
    // Bounded wait: the idle timer closes both.
    let mut closed = false;
    for _ in 0..100 {
        if open().await == 0 {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(closed, "idle connections were not closed");
    gw.shutdown().await;
}

/// Reads until the peer closes; a read that is still waiting at `limit` is a
/// failure (the connection was left open), not an empty answer.
async fn read_until_closed(s: &mut tokio::net::TcpStream, limit: Duration) -> Vec<u8> {
    let mut out = Vec::new();
    match tokio::time::timeout(limit, s.read_to_end(&mut out)).await {
        Ok(_) => out,
        Err(_) => panic!(
            "the gateway kept the connection open for {limit:?}; got {:?}",
            String::from_utf8_lossy(&out)
        ),
    }
}

async fn metrics_text(gw: &Gw) -> String {
    String::from_utf8_lossy(&get(&format!("http://{}/metrics", gw.admin)).await.body).into_owned()
}

/// Issue 10, defect 1: `Upgrade: h2c` (or any token but `websocket`) is stripped
/// before forwarding, and a `101` the gateway did not ask for is never spliced:
/// otherwise every later request on the socket would skip auth and analytics.
#[tokio::test]
async fn h2c_and_other_upgrades_are_stripped_and_never_spliced() {
    let b = backend("a").await;
    let gw = start(bundle_json(&[format!("http://{}", b.addr)])).await;
    for upgrade in ["h2c", "foo/1, h2c", "TLS/1.2"] {
        let r = send(
            Request::get(gw.url("/pets-api/v1/pets"))
                .header("connection", "Upgrade, HTTP2-Settings")
                .header("upgrade", upgrade)
                .header("http2-settings", "AAMAAABkAAQCAAAAAAIAAAAA")
                .body(full(""))
                .unwrap(),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{upgrade}");
        let h = &r.json()["headers"];
        for gone in ["upgrade", "http2-settings", "connection"] {
            assert!(h.get(gone).is_none(), "{gone} reached the upstream: {h}");
        }
    }
    // An upstream that switches anyway (`/ws` always answers 101) gets no tunnel.
    let mut s = tokio::net::TcpStream::connect(gw.api).await.unwrap();
    s.write_all(b"GET /pets-api/v1/ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n").await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let head = String::from_utf8_lossy(&buf[..n]).to_lowercase();
    assert!(head.starts_with("http/1.1 502"), "{head}");
    assert!(!head.contains("upgrade"), "{head}");
    let m = metrics_text(&gw).await;
    assert!(
        m.contains(r#"mgw_upstream_errors_total{upstream="pets",kind="upstream_protocol"} 1"#),
        "{m}"
    );
    gw.shutdown().await;
}

/// Issue 10, defect 1: WebSocket is opt-in per operation (`websocket: true` in
/// the bundle, from `x-mgw-websocket`); elsewhere the upgrade is stripped.
#[tokio::test]
async fn websocket_needs_the_operation_to_opt_in() {
    let b = backend("a").await;
    let mut bundle = bundle_json(&[format!("http://{}", b.addr)]);
    for op in bundle["apis"][0]["operations"].as_array_mut().unwrap() {
        op.as_object_mut().unwrap().remove("websocket");
    }
    let gw = start(bundle).await;
    let (_s, head) = websocket_handshake(gw.api).await;
    assert!(head.starts_with("http/1.1 502"), "{head}");
    // A plain request to the same operation still works: only the upgrade went.
    let r = send(
        Request::get(gw.url("/pets-api/v1/pets"))
            .header("connection", "upgrade")
            .header("upgrade", "websocket")
            .body(full(""))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.json()["headers"].get("upgrade").is_none());
    gw.shutdown().await;
}

/// Issue 10, defect 1: a spliced WebSocket is one analytics event, written when
/// the tunnel closes, with the bytes it carried each way.
#[tokio::test]
async fn websocket_session_is_recorded_when_it_closes() {
    let b = backend("a").await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    let mut bundle = bundle_json(&[format!("http://{}", b.addr)]);
    bundle["analytics"] = serde_json::json!({"sink": "file", "path": path.to_str().unwrap()});
    let gw = start(bundle).await;
    let mut s = tokio::net::TcpStream::connect(gw.api).await.unwrap();
    s.write_all(b"GET /pets-api/v1/ws HTTP/1.1\r\nHost: x\r\nX-Request-Id: ws-1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n").await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut byte))
            .await
            .unwrap()
            .unwrap();
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"));
    for _ in 0..3 {
        s.write_all(b"ping-frame").await.unwrap();
        let mut got = [0u8; 10];
        tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut got))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&got, b"ping-frame");
    }
    drop(s);
    let line = r#"mgw_requests_total{api="pets",operation="ws",method="GET",status_class="1xx"} 1"#;
    assert!(
        eventually(Duration::from_secs(10), || async {
            metrics_text(&gw).await.contains(line)
        })
        .await,
        "the closed tunnel was not recorded"
    );
    gw.shutdown().await;
    let text = std::fs::read_to_string(&path).unwrap();
    let e: serde_json::Value = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|e| e["requestId"] == "ws-1")
        .unwrap_or_else(|| panic!("no event for the session: {text}"));
    assert_eq!(e["operationId"], "ws");
    assert_eq!(e["status"], 101);
    assert_eq!(e["bytesIn"], 30, "{e}");
    assert_eq!(e["bytesOut"], 30, "{e}");
}

/// Issue 10, defect 2: headers the gateway sets cannot be removed by naming them
/// in `Connection`, nor duplicated by sending them.
#[tokio::test]
async fn clients_cannot_remove_or_duplicate_gateway_headers() {
    let b = backend("a").await;
    let gw = start(bundle_json(&[format!("http://{}", b.addr)])).await;
    let r = send(
        Request::get(gw.url("/pets-api/v1/pets"))
            .header(
                "connection",
                "X-Forwarded-For, X-Forwarded-Proto, X-Forwarded-Host, X-Request-Id",
            )
            .header("x-forwarded-proto", "https")
            .header("x-forwarded-proto", "gopher")
            .header("x-forwarded-host", "evil.test")
            .header("x-request-id", "abc-1")
            .body(full(""))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let v = r.json();
    assert_eq!(v["repeated"], serde_json::json!([]), "{v}");
    let h = &v["headers"];
    assert_eq!(h["x-forwarded-proto"], "http", "{h}");
    assert_eq!(h["x-forwarded-host"], gw.api.to_string(), "{h}");
    assert_eq!(h["x-forwarded-for"], "127.0.0.1", "{h}");
    // `X-Request-Id` was hop-by-hop for this client, so the gateway made its own.
    let id = h["x-request-id"].as_str().unwrap();
    assert_eq!(id.len(), 32, "{h}");
    assert_eq!(r.headers["x-request-id"], id);
    gw.shutdown().await;
}

/// Issue 10, defect 4: RFC 9112 §3.2 — two `Host` headers, or an absolute-form
/// target whose authority is not the `Host`, are refused with 400.
#[tokio::test]
async fn two_hosts_or_a_target_for_another_host_get_400() {
    let b = backend("a").await;
    let gw = start(bundle_json(&[format!("http://{}", b.addr)])).await;
    let a = gw.api;
    for (raw_req, want) in [
        (
            "GET /pets-api/v1/pets HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\nConnection: close\r\n\r\n".to_owned(),
            "HTTP/1.1 400",
        ),
        (
            "GET http://a.test/pets-api/v1/pets HTTP/1.1\r\nHost: b.test\r\nConnection: close\r\n\r\n".to_owned(),
            "HTTP/1.1 400",
        ),
        (
            format!("GET http://{a}/pets-api/v1/pets HTTP/1.1\r\nHost: {a}\r\nConnection: close\r\n\r\n"),
            "HTTP/1.1 200",
        ),
    ] {
        let mut s = tokio::net::TcpStream::connect(a).await.unwrap();
        s.write_all(raw_req.as_bytes()).await.unwrap();
        let out = read_until_closed(&mut s, Duration::from_secs(10)).await;
        let text = String::from_utf8_lossy(&out);
        assert!(text.starts_with(want), "{raw_req:?} → {text}");
    }
    assert_eq!(b.hits.load(std::sync::atomic::Ordering::SeqCst), 1);
    gw.shutdown().await;
}

/// A gateway with `headerReadTimeoutMs` 300 and an `idleTimeoutMs` far away,
/// and its backend.
async fn short_header_timeout() -> (Backend, Gw) {
    let b = backend("a").await;
    let mut bundle = bundle_json(&[format!("http://{}", b.addr)]);
    bundle["limits"]["headerReadTimeoutMs"] = 300.into();
    bundle["limits"]["idleTimeoutMs"] = 600_000.into();
    (b, start(bundle).await)
}

/// Issue 10, defect 5: a new connection that sends nothing is closed at
/// `headerReadTimeoutMs` (counted as a header timeout), not at `idleTimeoutMs`.
#[tokio::test]
async fn a_silent_new_connection_is_closed_at_the_header_timeout() {
    let (_b, gw) = short_header_timeout().await;
    let mut s = tokio::net::TcpStream::connect(gw.api).await.unwrap();
    let out = read_until_closed(&mut s, Duration::from_secs(10)).await;
    assert!(out.is_empty(), "{:?}", String::from_utf8_lossy(&out));
    let m = metrics_text(&gw).await;
    assert!(
        m.contains(r#"mgw_connection_errors_total{kind="header_timeout"} 1"#),
        "{m}"
    );
    // A kept-alive connection still serves requests in a row.
    let c = client();
    for _ in 0..2 {
        let res = c
            .request(
                Request::get(gw.url("/pets-api/v1/pets"))
                    .body(full(""))
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        res.into_body().collect().await.unwrap();
    }
    gw.shutdown().await;
}

/// Issue 13 (seventh wave): the connection's one timer also times the next
/// head of a kept-alive HTTP/1 connection (hyper's per-request header timer is
/// off): half a second head is cut off at `headerReadTimeoutMs` from the end of
/// the first response, not at `idleTimeoutMs`, and counted as a header timeout.
#[tokio::test]
async fn a_slow_second_head_on_a_kept_alive_connection_is_cut_off() {
    let (_b, gw) = short_header_timeout().await;
    let mut s = tokio::net::TcpStream::connect(gw.api).await.unwrap();
    s.write_all(b"GET /pets-api/v1/pets HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut head = [0u8; 12];
    s.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    // The rest of the first response, then half a head and silence.
    s.write_all(b"GET /pets-api/v1/pets HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let rest = read_until_closed(&mut s, Duration::from_secs(10)).await;
    let rest = String::from_utf8_lossy(&rest);
    assert_eq!(
        rest.matches("x-request-id:").count(),
        1,
        "one answer: {rest}"
    );
    let timeouts = metric(&gw, r#"mgw_connection_errors_total{kind="header_timeout"}"#).await;
    assert_eq!(timeouts, Some(1.0));
    gw.shutdown().await;
}

/// Issue 13 (seventh wave): a pooled upstream connection keeps one timer for
/// the request timeout, moved to each request's deadline. Each request on it
/// has the whole `requestTimeoutMs` from its own start: two slow requests in a
/// row that each fit are answered, though together they outlast the first
/// request's deadline; one that does not fit is a 504.
#[tokio::test]
async fn each_request_on_a_pooled_upstream_connection_has_its_own_timeout() {
    let b = backend("a").await;
    let mut bundle = bundle_json(&[format!("http://{}", b.addr)]);
    bundle["upstreams"]["pets"]["requestTimeoutMs"] = 2000.into();
    let gw = start(bundle).await;
    let r = get(&gw.url("/pets-api/v1/pets")).await;
    assert_eq!(r.status, StatusCode::OK);
    for _ in 0..2 {
        let r = get(&gw.url("/pets-api/v1/slow/1200")).await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "{:?}",
            String::from_utf8_lossy(&r.body)
        );
    }
    let r = get(&gw.url("/pets-api/v1/slow/5000")).await;
    assert_eq!(r.status, StatusCode::GATEWAY_TIMEOUT);
    // The connection it timed out on is closed; the next request gets another.
    let r = get(&gw.url("/pets-api/v1/pets")).await;
    assert_eq!(r.status, StatusCode::OK);
    gw.shutdown().await;
}

/// Issue 10, defect 6: the admin listener closes unfinished and silent
/// connections at the header-read timeout and refuses connections over its cap.
#[tokio::test]
async fn admin_connections_have_timeouts_and_a_cap() {
    let b = backend("a").await;
    let mut bundle = bundle_json(&[format!("http://{}", b.addr)]);
    bundle["limits"]["headerReadTimeoutMs"] = 300.into();
    let gw = start(bundle).await;
    for head in [&b"GET /healthz HTTP/1.1\r\nHost: x\r\n"[..], b""] {
        let mut s = tokio::net::TcpStream::connect(gw.admin).await.unwrap();
        s.write_all(head).await.unwrap();
        let out = read_until_closed(&mut s, Duration::from_secs(10)).await;
        let text = String::from_utf8_lossy(&out);
        assert!(out.is_empty() || text.starts_with("HTTP/1.1 408"), "{text}");
    }
    gw.shutdown().await;

    let mut bundle = bundle_json(&[format!("http://{}", b.addr)]);
    bundle["limits"]["headerReadTimeoutMs"] = 60_000.into();
    let gw = start(bundle).await;
    let mut held = Vec::new();
    for _ in 0..mgw_gateway::admin::MAX_CONNECTIONS {
        held.push(tokio::net::TcpStream::connect(gw.admin).await.unwrap());
    }
    // Each held connection answers, so all of them were accepted first.
    for s in &mut held {
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 12];
        tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&buf, b"HTTP/1.1 200");
    }
    let mut over = tokio::net::TcpStream::connect(gw.admin).await.unwrap();
    let out = read_until_closed(&mut over, Duration::from_secs(10)).await;
    assert!(out.is_empty());
    drop(held);
    assert!(
        eventually(Duration::from_secs(10), || async {
            metrics_text(&gw)
                .await
                .contains(r#"mgw_connection_errors_total{kind="admin_connection_limit"} 1"#)
        })
        .await
    );
    gw.shutdown().await;
}

/// Issue 10 (also): client headers with `_` are dropped by default, forwarded
/// under `allow` unless they read as a gateway-owned header, refused under `reject`.
#[tokio::test]
async fn underscore_headers_are_dropped_allowed_or_refused_per_api() {
    let b = backend("a").await;
    let req = |gw: &Gw| {
        Request::get(gw.url("/pets-api/v1/pets"))
            .header("x_consumer_id", "mallory")
            .header("x_forwarded_for", "10.9.9.9")
            .header("x_request_id", "spoofed")
            .header("x_custom", "1")
            .body(full(""))
            .unwrap()
    };
    let mut bundle = bundle_json(&[format!("http://{}", b.addr)]);
    let gw = start(bundle.clone()).await;
    let r = send(req(&gw)).await;
    assert_eq!(r.status, StatusCode::OK);
    let h = &r.json()["headers"];
    for gone in [
        "x_consumer_id",
        "x_forwarded_for",
        "x_request_id",
        "x_custom",
    ] {
        assert!(h.get(gone).is_none(), "{gone} reached the upstream: {h}");
    }
    gw.shutdown().await;

    bundle["apis"][0]["underscoreHeaders"] = "allow".into();
    let gw = start(bundle.clone()).await;
    let r = send(req(&gw)).await;
    let h = &r.json()["headers"];
    assert_eq!(h["x_custom"], "1", "{h}");
    assert_eq!(
        h["x_consumer_id"], "mallory",
        "not a claim header here: {h}"
    );
    for gone in ["x_forwarded_for", "x_request_id"] {
        assert!(h.get(gone).is_none(), "{gone} reached the upstream: {h}");
    }
    gw.shutdown().await;

    bundle["apis"][0]["underscoreHeaders"] = "reject".into();
    let gw = start(bundle).await;
    let r = send(req(&gw)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        get(&gw.url("/pets-api/v1/pets")).await.status,
        StatusCode::OK
    );
    gw.shutdown().await;
}

/// `ignoreTrailingSlash`: `/pets/` takes the route of `/pets` (the upstream still
/// sees the path as sent); without it, or for a path no route has, 404.
#[tokio::test]
async fn trailing_slash_tolerance_is_opt_in_per_api() {
    let b = backend("pets").await;
    let mut bundle = bundle_json(&[format!("http://{}", b.addr)]);
    let mut strict = bundle["apis"][0].clone();
    strict["name"] = serde_json::json!("strict");
    strict["basePath"] = serde_json::json!("/strict");
    bundle["apis"][0]["ignoreTrailingSlash"] = serde_json::json!(true);
    bundle["apis"].as_array_mut().unwrap().push(strict);
    let gw = start(bundle).await;
    for (path, status, upstream_uri) in [
        ("/pets-api/v1/pets/", StatusCode::OK, Some("/pets/")),
        ("/pets-api/v1/pets/7/", StatusCode::OK, Some("/pets/7/")),
        ("/pets-api/v1/pets", StatusCode::OK, Some("/pets")),
        ("/pets-api/v1/pets//", StatusCode::NOT_FOUND, None),
        ("/pets-api/v1/nothing/", StatusCode::NOT_FOUND, None),
        ("/strict/pets/", StatusCode::NOT_FOUND, None),
        ("/strict/pets", StatusCode::OK, Some("/pets")),
    ] {
        let r = get(&gw.url(path)).await;
        assert_eq!(r.status, status, "{path}");
        if let Some(uri) = upstream_uri {
            assert_eq!(r.json()["uri"], uri, "{path}");
        }
    }
    gw.shutdown().await;
}

/// A catch-all parameter (`{path+}`, what `x-mgw-catch-all` compiles to) routes
/// Kubernetes-style proxy paths; the upstream gets the path as sent.
#[tokio::test]
async fn catch_all_routes_proxy_paths() {
    let b = backend("pets").await;
    let mut bundle = bundle_json(&[format!("http://{}", b.addr)]);
    bundle["apis"][0]["operations"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"id": "proxy", "method": "GET", "path": "/pods/{name}/proxy/{path+}"}));
    let gw = start(bundle).await;
    for (path, status, upstream_uri) in [
        (
            "/pets-api/v1/pods/web-0/proxy/a/b%2Fc/d/?x=1",
            StatusCode::OK,
            Some("/pods/web-0/proxy/a/b%2Fc/d/?x=1"),
        ),
        (
            "/pets-api/v1/pods/web-0/proxy/metrics",
            StatusCode::OK,
            Some("/pods/web-0/proxy/metrics"),
        ),
        (
            "/pets-api/v1/pods/web-0/proxy/",
            StatusCode::NOT_FOUND,
            None,
        ),
        (
            "/pets-api/v1/pods/web-0/proxy/a/%2e%2e/b",
            StatusCode::BAD_REQUEST,
            None,
        ),
    ] {
        let r = get(&gw.url(path)).await;
        assert_eq!(r.status, status, "{path}");
        if let Some(uri) = upstream_uri {
            assert_eq!(r.json()["uri"], uri, "{path}");
        }
    }
    gw.shutdown().await;
}
