//! `https://` upstreams against real rustls servers on loopback with certificates
//! made by the test (rcgen): verification with a CA file, a wrong CA, mutual TLS,
//! an SNI override, HTTP/2 by ALPN, pooled connections, `insecureSkipVerify`,
//! health checks; and an HTTP/1.0 upstream behind a keep-alive HTTP/1.1 client.

mod support;

use std::io::Write;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Request, StatusCode, Version};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use support::auth::*;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const BOTH: &[&[u8]] = &[b"h2", b"http/1.1"];
const H1: &[&[u8]] = &[b"http/1.1"];

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

/// The test bundle with one `https://` upstream URL and this `tls` block.
fn https_bundle(addr: std::net::SocketAddr, tls: Value) -> Value {
    let mut b = bundle_json(&[format!("https://127.0.0.1:{}", addr.port())]);
    b["upstreams"]["pets"]["tls"] = tls;
    b
}

#[tokio::test]
async fn proxies_over_https_with_a_ca_file_and_reuses_the_connection() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let ca = write(dir.path(), "ca.crt", &pki.ca_pem);
    let backend = tls_backend(
        "tls",
        tls_server_config(&pki.server_cert, &pki.server_key, None, H1),
    )
    .await;
    let gw = start(https_bundle(backend.addr, json!({"caFile": ca}))).await;
    for id in 0..5 {
        let r = get(&gw.url(&format!("/pets-api/v1/pets/{id}?q=1"))).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        let v = r.json();
        assert_eq!(v["backend"], "tls");
        assert_eq!(v["uri"], format!("/pets/{id}?q=1"));
        assert_eq!(v["version"], "HTTP/1.1");
        assert_eq!(
            v["headers"]["host"],
            format!("127.0.0.1:{}", backend.addr.port())
        );
    }
    // One TLS connection, kept in the pool and reused for every request.
    assert_eq!(backend.connections.load(Ordering::SeqCst), 1);
    assert_eq!(backend.hits.load(Ordering::SeqCst), 5);
    // SNI is not sent for an IP address (RFC 6066).
    assert_eq!(*backend.sni.lock().unwrap(), [None]);
    gw.shutdown().await;
}

#[tokio::test]
async fn speaks_http2_when_the_upstream_offers_it_by_alpn() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let ca = write(dir.path(), "ca.crt", &pki.ca_pem);
    let backend = tls_backend(
        "h2",
        tls_server_config(&pki.server_cert, &pki.server_key, None, BOTH),
    )
    .await;
    let gw = start(https_bundle(backend.addr, json!({"caFile": ca}))).await;
    // The first request learns, by ALPN, that the connection is h2 ...
    let first = get_owned(gw.url("/pets-api/v1/pets/first")).await;
    assert_eq!(first.json()["version"], "HTTP/2.0");
    // ... and concurrent ones then share it, multiplexed.
    let sends = (0..8).map(|i| get_owned(gw.url(&format!("/pets-api/v1/pets/{i}"))));
    for r in futures_util::future::join_all(sends).await {
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        assert_eq!(r.json()["version"], "HTTP/2.0");
        // The client asked HTTP/1.1 and is answered in HTTP/1.1.
        assert_eq!(r.version, Version::HTTP_11);
    }
    assert_eq!(backend.connections.load(Ordering::SeqCst), 1);
    assert_eq!(backend.hits.load(Ordering::SeqCst), 9);
    gw.shutdown().await;
}

async fn get_owned(url: String) -> VersionedReply {
    let res = client()
        .request(Request::get(url).body(full("")).unwrap())
        .await
        .unwrap();
    let version = res.version();
    let status = res.status();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    VersionedReply {
        status,
        version,
        body,
    }
}

struct VersionedReply {
    status: StatusCode,
    version: Version,
    body: bytes::Bytes,
}

impl VersionedReply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// Captures the gateway's log lines for the current thread (a current-thread
/// runtime keeps every gateway task on it).
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
    fn install(&self) -> tracing::subscriber::DefaultGuard {
        let logs = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || logs.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_a_502_with_a_log_line() {
    let logs = Logs::default();
    let _guard = logs.install();
    let (pki, other) = (Pki::new(), Pki::new());
    let dir = tempfile::tempdir().unwrap();
    let wrong_ca = write(dir.path(), "ca.crt", &other.ca_pem);
    let backend = tls_backend(
        "tls",
        tls_server_config(&pki.server_cert, &pki.server_key, None, BOTH),
    )
    .await;
    let gw = start(https_bundle(backend.addr, json!({"caFile": wrong_ca}))).await;
    let r = get(&gw.url("/pets-api/v1/pets/1")).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    assert_eq!(
        r.headers.get("content-type").unwrap(),
        "application/problem+json"
    );
    let body = String::from_utf8_lossy(&r.body).into_owned();
    assert_eq!(
        r.json()["detail"],
        "the upstream service is unavailable",
        "{body}"
    );
    for secret in ["certificate", "Issuer", "127.0.0.1", "pets"] {
        assert!(!body.contains(secret), "`{secret}` leaked: {body}");
    }
    assert_eq!(backend.hits.load(Ordering::SeqCst), 0);
    let text = logs.text();
    let line = text
        .lines()
        .find(|l| l.contains("TLS handshake with the upstream failed"))
        .unwrap_or_else(|| panic!("no TLS log line in:\n{text}"));
    assert!(line.contains("WARN"), "{line}");
    assert!(line.contains("upstream=pets"), "{line}");
    // Both test CAs are called `mgw test CA`: the wrong one signed nothing here.
    assert!(line.contains("error=invalid peer certificate"), "{line}");
    assert!(
        line.contains(&format!(
            "target=https://127.0.0.1:{}/",
            backend.addr.port()
        )),
        "{line}"
    );
    let metrics = get(&format!("http://{}/metrics", gw.admin)).await;
    let metrics = String::from_utf8_lossy(&metrics.body).into_owned();
    assert!(
        metrics.contains(r#"mgw_upstream_errors_total{upstream="pets",kind="tls_error"}"#),
        "{metrics}"
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn mutual_tls_to_the_upstream_with_a_mounted_client_certificate() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let ca = write(dir.path(), "ca.crt", &pki.ca_pem);
    let (cert, key) = pki.client("gateway");
    write(dir.path(), "client.crt", &cert);
    let key = write(dir.path(), "client.key", &key);
    let backend = tls_backend(
        "mtls",
        tls_server_config(&pki.server_cert, &pki.server_key, Some(&pki.ca_pem), BOTH),
    )
    .await;

    let gw = start_with_env(
        https_bundle(
            backend.addr,
            json!({"caFile": ca, "certFile": "${CLIENT_DIR}/client.crt", "keyFile": key}),
        ),
        &[("CLIENT_DIR", &dir.path().display().to_string())],
    )
    .await;
    let r = get(&gw.url("/pets-api/v1/pets/1")).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.json()["backend"], "mtls");
    gw.shutdown().await;

    let without = start(https_bundle(backend.addr, json!({"caFile": ca}))).await;
    let r = get(&without.url("/pets-api/v1/pets/1")).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{:?}", r.body);
    assert_eq!(backend.hits.load(Ordering::SeqCst), 1);
    without.shutdown().await;
}

#[tokio::test]
async fn server_name_overrides_sni_and_the_verified_name() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let ca = write(dir.path(), "ca.crt", &pki.ca_pem);
    let (cert, key) = pki.server(&["pets.internal"]);
    let backend = tls_backend("sni", tls_server_config(&cert, &key, None, BOTH)).await;

    // The certificate does not name 127.0.0.1: refused.
    let gw = start(https_bundle(backend.addr, json!({"caFile": ca}))).await;
    let r = get(&gw.url("/pets-api/v1/pets/1")).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    gw.shutdown().await;

    let gw = start(https_bundle(
        backend.addr,
        json!({"caFile": ca, "serverName": "pets.internal"}),
    ))
    .await;
    let r = get(&gw.url("/pets-api/v1/pets/1")).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert!(
        backend
            .sni
            .lock()
            .unwrap()
            .contains(&Some("pets.internal".to_owned()))
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn insecure_skip_verify_is_explicit_warned_and_shown_in_metrics() {
    let logs = Logs::default();
    let _guard = logs.install();
    let pki = Pki::new();
    let backend = tls_backend(
        "insecure",
        tls_server_config(&pki.server_cert, &pki.server_key, None, BOTH),
    )
    .await;
    // No CA file and an unknown CA: verification fails by default ...
    let gw = start(https_bundle(backend.addr, json!({}))).await;
    assert_eq!(
        get(&gw.url("/pets-api/v1/pets/1")).await.status,
        StatusCode::BAD_GATEWAY
    );
    gw.shutdown().await;
    // ... and only `insecureSkipVerify: true` turns it off, loudly.
    let gw = start(https_bundle(
        backend.addr,
        json!({"insecureSkipVerify": true}),
    ))
    .await;
    let r = get(&gw.url("/pets-api/v1/pets/1")).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let text = logs.text();
    let warnings = text
        .lines()
        .filter(|l| {
            l.contains("WARN") && l.contains("upstream=pets") && l.contains("verification is OFF")
        })
        .count();
    assert_eq!(warnings, 1, "{text}");
    let metrics = get(&format!("http://{}/metrics", gw.admin)).await;
    let metrics = String::from_utf8_lossy(&metrics.body).into_owned();
    assert!(
        metrics.contains(r#"mgw_upstream_tls_insecure{upstream="pets"} 1"#),
        "{metrics}"
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn active_health_checks_reach_https_urls() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let ca = write(dir.path(), "ca.crt", &pki.ca_pem);
    let backend = tls_backend(
        "health",
        tls_server_config(&pki.server_cert, &pki.server_key, None, BOTH),
    )
    .await;
    let mut b = https_bundle(backend.addr, json!({"caFile": ca}));
    b["upstreams"]["pets"]["healthCheck"] = json!({"path": "/healthz", "intervalMs": 50});
    let gw = start(b).await;
    let metrics_url = format!("http://{}/metrics", gw.admin);
    let checked = eventually(Duration::from_secs(10), || async {
        let m = get(&metrics_url).await;
        String::from_utf8_lossy(&m.body).lines().any(|l| {
            l.starts_with("mgw_upstream_health_checks_total")
                && l.contains(r#"result="ok""#)
                && !l.ends_with(" 0")
        })
    })
    .await;
    assert!(checked, "no successful health check over TLS");
    assert!(backend.hits.load(Ordering::SeqCst) >= 1);
    gw.shutdown().await;
}

#[tokio::test]
async fn a_missing_ca_file_stops_the_start_naming_upstream_and_path() {
    let b = https_bundle(
        "127.0.0.1:9".parse().unwrap(),
        json!({"caFile": "/nonexistent/ca.crt"}),
    );
    let e = start_err(b.clone()).await;
    assert!(e.contains("upstream `pets`"), "{e}");
    assert!(e.contains("/nonexistent/ca.crt"), "{e}");
    // The binary: a configuration error, exit 64, before it is ready.
    let dir = tempfile::tempdir().unwrap();
    let bundle = write(dir.path(), "bundle.json", &b.to_string());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mgw-gateway"))
        .args(["--bundle", &bundle])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot read the CA file `/nonexistent/ca.crt`"),
        "{err}"
    );
}

/// Regression: an HTTP/1.0 upstream made the gateway answer HTTP/1.1 clients in
/// HTTP/1.0 and close the connection after each response.
#[tokio::test]
async fn an_http10_upstream_keeps_the_client_on_keep_alive_http11() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                // HTTP/1.0: no length, the body ends when the connection closes.
                let _ = s
                    .write_all(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nold server")
                    .await;
            });
        }
    });
    let gw = start(bundle_json(&[format!("http://{upstream}")])).await;
    let stream = tokio::net::TcpStream::connect(gw.api).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    let conn = tokio::spawn(conn);
    for i in 0..2 {
        let req = Request::get(format!("/pets-api/v1/pets/{i}"))
            .header("host", "gw")
            .body(Empty::<bytes::Bytes>::new())
            .unwrap();
        // The second request fails here if the gateway closed the connection.
        let res = tokio::time::timeout(Duration::from_secs(5), sender.send_request(req))
            .await
            .expect("answered in time")
            .unwrap_or_else(|e| panic!("request {i} on the kept-alive connection: {e}"));
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.version(), Version::HTTP_11, "request {i}");
        assert!(res.headers().get("connection").is_none_or(|v| v != "close"));
        let body = res.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"old server");
    }
    assert!(
        !conn.is_finished(),
        "the gateway closed the client connection"
    );
    gw.shutdown().await;
}

/// An upstream that prefers h2 still gets WebSocket upgrades over HTTP/1.1.
#[tokio::test]
async fn websocket_upgrade_to_an_https_upstream_that_offers_h2() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let ca = write(dir.path(), "ca.crt", &pki.ca_pem);
    let backend = tls_backend(
        "ws",
        tls_server_config(&pki.server_cert, &pki.server_key, None, BOTH),
    )
    .await;
    let gw = start(https_bundle(backend.addr, json!({"caFile": ca}))).await;
    let (mut s, head) = websocket_handshake(gw.api).await;
    assert!(head.starts_with("http/1.1 101"), "{head}");
    echo_through(&mut s).await;
    gw.shutdown().await;
}

/// A URL whose certificate does not verify is failed over like a refused one.
#[tokio::test]
async fn failover_moves_past_a_url_whose_certificate_does_not_verify() {
    let (pki, other) = (Pki::new(), Pki::new());
    let dir = tempfile::tempdir().unwrap();
    let ca = write(dir.path(), "ca.crt", &pki.ca_pem);
    let bad = tls_backend(
        "bad",
        tls_server_config(&other.server_cert, &other.server_key, None, BOTH),
    )
    .await;
    let good = tls_backend(
        "good",
        tls_server_config(&pki.server_cert, &pki.server_key, None, BOTH),
    )
    .await;
    let mut b = bundle_json(&[
        format!("https://127.0.0.1:{}", bad.addr.port()),
        format!("https://127.0.0.1:{}", good.addr.port()),
    ]);
    b["upstreams"]["pets"]["tls"] = json!({"caFile": ca});
    b["upstreams"]["pets"]["loadBalancing"] = json!("failover");
    let gw = start(b).await;
    let r = get(&gw.url("/pets-api/v1/pets/1")).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.json()["backend"], "good");
    assert_eq!(bad.hits.load(Ordering::SeqCst), 0);
    assert_eq!(bad.connections.load(Ordering::SeqCst), 1);
    gw.shutdown().await;
}
