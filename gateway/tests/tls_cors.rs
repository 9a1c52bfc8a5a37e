//! TLS and mutual TLS on the API listener with certificates made by the test, and
//! CORS preflight and actual requests for allowed and disallowed origins.

mod support;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use http::{Request, StatusCode};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use support::auth::*;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One HTTP/1.1 GET over TLS; `Err` when the handshake or the exchange fails.
async fn tls_get(
    addr: std::net::SocketAddr,
    ca_pem: &str,
    client: Option<&(String, String)>,
    path: &str,
) -> Result<String, String> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match client {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let mut tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    tls.write_all(req.as_bytes())
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut out = Vec::new();
    tls.read_to_end(&mut out)
        .await
        .map_err(|e| format!("read: {e}"))?;
    let text = String::from_utf8_lossy(&out).into_owned();
    if text.is_empty() {
        return Err("no response".into());
    }
    Ok(text)
}

fn tls_bundle(
    backend: &Backend,
    dir: &std::path::Path,
    client_auth: &str,
    mtls: Option<&str>,
) -> Value {
    let mut b = bundle_json(&[format!("http://{}", backend.addr)]);
    let p = |f: &str| dir.join(f).to_str().unwrap().to_owned();
    b["listeners"]["api"]["tls"] = json!({
        "certFile": p("tls.crt"), "keyFile": p("tls.key"),
        "clientCaFile": p("ca.crt"), "clientAuth": client_auth,
    });
    if let Some(m) = mtls {
        b["apis"][0]["mtls"] = m.into();
    }
    b["analytics"] = json!({"sink": "file", "path": p("events.jsonl")});
    b
}

#[tokio::test]
async fn tls_serves_https_and_sets_forwarded_proto() {
    let b = backend("pets").await;
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    pki.write(dir.path());
    let gw = start(tls_bundle(&b, dir.path(), "none", None)).await;
    let res = tls_get(gw.api, &pki.ca_pem, None, "/pets-api/v1/pets")
        .await
        .unwrap();
    assert!(res.starts_with("HTTP/1.1 200"), "{res}");
    assert!(res.contains("\"x-forwarded-proto\":\"https\""), "{res}");
    // Plain HTTP on the TLS port gets no HTTP answer.
    let raw_res = raw(
        gw.api,
        b"GET /pets-api/v1/pets HTTP/1.1\r\nHost: x\r\n\r\n",
        std::time::Duration::from_secs(2),
    )
    .await;
    assert!(!String::from_utf8_lossy(&raw_res).contains("200 OK"));
    gw.shutdown().await;
}

#[tokio::test]
async fn mtls_required_at_the_listener_refuses_clients_without_a_certificate() {
    let b = backend("pets").await;
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    pki.write(dir.path());
    let gw = start(tls_bundle(&b, dir.path(), "required", Some("required"))).await;
    let client = pki.client("client-1");
    let res = tls_get(gw.api, &pki.ca_pem, Some(&client), "/pets-api/v1/pets")
        .await
        .unwrap();
    assert!(res.starts_with("HTTP/1.1 200"), "{res}");
    let refused = tls_get(gw.api, &pki.ca_pem, None, "/pets-api/v1/pets").await;
    assert!(refused.is_err(), "{refused:?}");
    // A certificate from another CA is refused too.
    let stranger = Pki::new().client("client-1");
    let refused = tls_get(gw.api, &pki.ca_pem, Some(&stranger), "/pets-api/v1/pets").await;
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(b.hits.load(Ordering::SeqCst), 1);
    gw.shutdown().await;
}

#[tokio::test]
async fn mtls_required_per_api_and_the_subject_as_consumer() {
    let b = backend("pets").await;
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    pki.write(dir.path());
    let gw = start(tls_bundle(&b, dir.path(), "optional", Some("required"))).await;
    let res = tls_get(gw.api, &pki.ca_pem, None, "/pets-api/v1/pets")
        .await
        .unwrap();
    assert!(res.starts_with("HTTP/1.1 403"), "{res}");
    assert!(res.contains("client_certificate_required"), "{res}");
    let client = pki.client("client-7");
    let res = tls_get(gw.api, &pki.ca_pem, Some(&client), "/pets-api/v1/pets")
        .await
        .unwrap();
    assert!(res.starts_with("HTTP/1.1 200"), "{res}");
    gw.shutdown().await;
    let events = std::fs::read_to_string(dir.path().join("events.jsonl")).unwrap();
    let lines: Vec<Value> = events
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        lines
            .iter()
            .any(|e| e["consumer"] == "CN=client-7" && e["status"] == 200),
        "{events}"
    );
    assert!(
        lines
            .iter()
            .any(|e| e["status"] == 403 && e["error"] == "client_certificate_required"),
        "{events}"
    );
}

fn cors_bundle(backend: &Backend, keys: &std::path::Path) -> Value {
    let mut b = bundle_json(&[format!("http://{}", backend.addr)]);
    b["auth"] = json!({"providers": {"keys": {"type": "apiKey", "file": keys.to_str().unwrap()}}});
    b["apis"][0]["securitySchemes"] =
        json!({"key": {"provider": "keys", "in": "header", "name": "X-API-Key"}});
    b["apis"][0]["cors"] = json!({
        "allowOrigins": ["https://app.example"],
        "allowCredentials": true,
        "exposeHeaders": ["X-Request-Id"],
        "maxAgeS": 600
    });
    b["apis"][0]["ignoreTrailingSlash"] = json!(true);
    for op in b["apis"][0]["operations"].as_array_mut().unwrap() {
        if op["id"] == "listPets" {
            op["security"] = json!([{"key": []}]);
        }
    }
    b
}

async fn request(gw: &Gw, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut req = Request::builder().method(method).uri(gw.url(path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    send(req.body(full("")).unwrap()).await
}

#[tokio::test]
async fn cors_preflight_and_actual_requests() {
    let b = backend("pets").await;
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    std::fs::write(
        &keys,
        format!("app:sha256:{}\n", hex::encode(Sha256::digest(b"k"))),
    )
    .unwrap();
    let gw = start(cors_bundle(&b, &keys)).await;
    let ok_origin = "https://app.example";

    // Preflight from an allowed origin: answered by the gateway, no credentials needed.
    let r = request(
        &gw,
        "OPTIONS",
        "/pets-api/v1/pets",
        &[
            ("origin", ok_origin),
            ("access-control-request-method", "GET"),
            ("access-control-request-headers", "x-api-key, content-type"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(r.headers["access-control-allow-origin"], ok_origin);
    assert_eq!(r.headers["access-control-allow-credentials"], "true");
    assert_eq!(r.headers["access-control-allow-methods"], "GET");
    assert_eq!(
        r.headers["access-control-allow-headers"],
        "x-api-key, content-type"
    );
    assert_eq!(r.headers["access-control-max-age"], "600");
    assert!(r.headers["vary"].to_str().unwrap().contains("Origin"));

    // The preflight is routed like the actual request: under
    // `ignoreTrailingSlash`, `/pets/` takes the route of `/pets`.
    let r = request(
        &gw,
        "OPTIONS",
        "/pets-api/v1/pets/",
        &[
            ("origin", ok_origin),
            ("access-control-request-method", "GET"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(r.headers["access-control-allow-origin"], ok_origin);

    // Preflight from another origin: refused, no CORS headers.
    let r = request(
        &gw,
        "OPTIONS",
        "/pets-api/v1/pets",
        &[
            ("origin", "https://evil.example"),
            ("access-control-request-method", "GET"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.headers.get("access-control-allow-origin").is_none());

    // A method the path does not serve: no preflight answer, the router's 405.
    let r = request(
        &gw,
        "OPTIONS",
        "/pets-api/v1/pets",
        &[
            ("origin", ok_origin),
            ("access-control-request-method", "DELETE"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(r.headers.get("access-control-allow-origin").is_none());
    assert_eq!(
        b.hits.load(Ordering::SeqCst),
        0,
        "preflights never go upstream"
    );

    // Actual requests: allowed origin gets the headers, others none.
    let r = request(
        &gw,
        "GET",
        "/pets-api/v1/pets",
        &[("origin", ok_origin), ("x-api-key", "k")],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["access-control-allow-origin"], ok_origin);
    assert_eq!(r.headers["access-control-expose-headers"], "x-request-id");
    assert!(r.headers["vary"].to_str().unwrap().contains("Origin"));
    let r = request(
        &gw,
        "GET",
        "/pets-api/v1/pets",
        &[("origin", "https://evil.example"), ("x-api-key", "k")],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.headers.get("access-control-allow-origin").is_none());
    assert!(r.headers.get("access-control-allow-credentials").is_none());
    // The gateway's own errors carry CORS headers, so browser code can read a 401.
    let r = request(&gw, "GET", "/pets-api/v1/pets", &[("origin", ok_origin)]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers["access-control-allow-origin"], ok_origin);
    gw.shutdown().await;
}

/// Issue 10 (also): a rotated certificate and key are served to new connections
/// without a restart; a broken update keeps the last good pair; both counted.
#[tokio::test]
async fn rotated_certificates_are_reloaded_and_broken_ones_keep_the_last_good_pair() {
    let b = backend("pets").await;
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (Pki::new(), Pki::new());
    old.write(dir.path());
    let gw = start_with(tls_bundle(&b, dir.path(), "none", None), |c| {
        c.tls.as_mut().unwrap().reload_interval = std::time::Duration::from_millis(50);
    })
    .await;
    let path = "/pets-api/v1/pets";
    assert!(tls_get(gw.api, &old.ca_pem, None, path).await.is_ok());
    assert!(tls_get(gw.api, &new.ca_pem, None, path).await.is_err());
    let reloads = |result: &'static str| {
        let admin = gw.admin;
        async move {
            let m = get(&format!("http://{admin}/metrics")).await;
            let line = format!("mgw_tls_reloads_total{{result=\"{result}\"}} 1");
            String::from_utf8_lossy(&m.body).contains(&line)
        }
    };

    new.write(dir.path());
    assert!(
        eventually(std::time::Duration::from_secs(10), || async {
            tls_get(gw.api, &new.ca_pem, None, path).await.is_ok()
        })
        .await,
        "the new certificate was never served"
    );
    assert!(reloads("success").await);
    assert!(tls_get(gw.api, &old.ca_pem, None, path).await.is_err());

    // A key that is not a key: refused, counted, and the new pair stays.
    std::fs::write(dir.path().join("tls.key"), "not a key\n").unwrap();
    assert!(
        eventually(std::time::Duration::from_secs(10), || reloads("error")).await,
        "the broken update was not counted"
    );
    let res = tls_get(gw.api, &new.ca_pem, None, path).await.unwrap();
    assert!(res.starts_with("HTTP/1.1 200"), "{res}");
    gw.shutdown().await;
}
