//! Test support: real backends on `127.0.0.1:0`, an in-process gateway, clients.
#![allow(dead_code)]

pub mod auth;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use mgw_gateway::bundle::{self, Bundle, Config};
use mgw_gateway::filter::Filters;
use mgw_gateway::server::Server;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub type TestBody = BoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;

pub fn full(b: impl Into<Bytes>) -> TestBody {
    Full::new(b.into()).map_err(|e| match e {}).boxed()
}

/// A backend that reports what it received; behaviour chosen by path:
/// `/slow/{ms}`, `/echo` (streams the body back), `/reset` (drops the connection),
/// `/ws` (101 then echo), `/big/{bytes}`, `/hop` (sends hop-by-hop headers),
/// anything else: JSON with method, uri, headers and body length.
pub struct Backend {
    pub addr: SocketAddr,
    pub hits: Arc<AtomicUsize>,
    _stop: oneshot::Sender<()>,
}

pub async fn backend(name: &'static str) -> Backend {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let (tx, mut rx) = oneshot::channel::<()>();
    let h = hits.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = tokio::select! {
                _ = &mut rx => return,
                r = listener.accept() => r.unwrap(),
            };
            let h = h.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| {
                    h.fetch_add(1, Ordering::SeqCst);
                    handle(name, req)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .with_upgrades()
                    .await;
            });
        }
    });
    Backend {
        addr,
        hits,
        _stop: tx,
    }
}

async fn handle(
    name: &'static str,
    mut req: Request<Incoming>,
) -> Result<Response<TestBody>, Infallible> {
    let path = req.uri().path().to_owned();
    if let Some(ms) = path.strip_prefix("/slow/") {
        tokio::time::sleep(Duration::from_millis(ms.parse().unwrap_or(1000))).await;
        return Ok(Response::new(full("slow done")));
    }
    if let Some(n) = path.strip_prefix("/big/") {
        let n: usize = n.parse().unwrap();
        let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
        let frames = futures_util::stream::iter((0..n.div_ceil(chunk.len())).map(move |i| {
            let len = chunk.len().min(n - i * chunk.len());
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(Frame::data(chunk.slice(..len)))
        }));
        return Ok(Response::new(StreamBody::new(frames).boxed()));
    }
    match path.as_str() {
        "/echo" => {
            let body = req
                .into_body()
                .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>);
            Ok(Response::new(body.boxed()))
        }
        "/reset" => {
            // Answer nothing: panic-free way to drop the connection is an error body.
            let body = futures_util::stream::iter(vec![Err::<Frame<Bytes>, _>(Box::<
                dyn std::error::Error + Send + Sync,
            >::from(
                "reset"
            ))]);
            let mut res = Response::new(StreamBody::new(body).boxed());
            res.headers_mut()
                .insert("content-length", "100".parse().unwrap());
            Ok(res)
        }
        "/hop" => {
            let mut res = Response::new(full("hop"));
            let h = res.headers_mut();
            h.insert("connection", "x-internal".parse().unwrap());
            h.insert("x-internal", "secret".parse().unwrap());
            h.insert("keep-alive", "timeout=5".parse().unwrap());
            h.insert("x-visible", "yes".parse().unwrap());
            // Headers the gateway owns on responses: never passed through.
            h.append("x-request-id", "upstream-1".parse().unwrap());
            h.append("x-request-id", "upstream-2".parse().unwrap());
            Ok(res)
        }
        "/ws" => {
            let on = hyper::upgrade::on(&mut req);
            tokio::spawn(async move {
                if let Ok(up) = on.await {
                    let mut io = TokioIo::new(up);
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = io.read(&mut buf).await {
                        if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                }
            });
            let mut res = Response::new(full(""));
            *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
            res.headers_mut()
                .insert("upgrade", "websocket".parse().unwrap());
            res.headers_mut()
                .insert("connection", "upgrade".parse().unwrap());
            Ok(res)
        }
        _ => {
            let method = req.method().to_string();
            let uri = req.uri().to_string();
            let version = req.version();
            let headers: BTreeMap<String, String> = req
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
            // Names sent more than once (`headers` keeps only the last value).
            let repeated: Vec<String> = req
                .headers()
                .keys()
                .filter(|k| req.headers().get_all(*k).iter().count() > 1)
                .map(|k| k.to_string())
                .collect();
            let body = req
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes().len())
                .unwrap_or(0);
            let version = format!("{version:?}");
            let v = json!({"backend": name, "method": method, "uri": uri, "headers": headers, "repeated": repeated, "bodyLen": body, "version": version});
            let mut res = Response::new(full(v.to_string()));
            res.headers_mut()
                .insert("content-type", "application/json".parse().unwrap());
            Ok(res)
        }
    }
}

/// A bundle with one API `pets` at `/pets-api/v1` on the given upstream URLs.
pub fn bundle_json(urls: &[String]) -> Value {
    json!({
        "schemaVersion": 1,
        "gateway": {"name": "test-gw", "version": "1.2.3"},
        "listeners": {"api": {"address": "127.0.0.1:0"}, "admin": {"address": "127.0.0.1:0"}},
        "limits": {"headerReadTimeoutMs": 500, "maxBodyBytes": 1048576, "shutdownGraceMs": 5000},
        "upstreams": {"pets": {"urls": urls, "connectTimeoutMs": 500, "requestTimeoutMs": 1000}},
        "apis": [{
            "name": "pets", "version": "v1", "basePath": "/pets-api/v1", "upstream": "pets",
            "operations": [
                {"id": "listPets", "method": "GET", "path": "/pets"},
                {"id": "createPet", "method": "POST", "path": "/pets"},
                {"id": "getPet", "method": "GET", "path": "/pets/{petId}"},
                {"id": "echo", "method": "POST", "path": "/echo"},
                {"id": "echoPut", "method": "PUT", "path": "/echo"},
                {"id": "slow", "method": "GET", "path": "/slow/{ms}"},
                {"id": "big", "method": "GET", "path": "/big/{n}"},
                {"id": "reset", "method": "GET", "path": "/reset"},
                {"id": "hop", "method": "GET", "path": "/hop"},
                {"id": "ws", "method": "GET", "path": "/ws", "websocket": true}
            ]
        }],
        "analytics": {"sink": "none"}
    })
}

pub struct Gw {
    pub api: SocketAddr,
    pub admin: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    done: Option<tokio::task::JoinHandle<()>>,
}

impl Gw {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.api, path)
    }
    /// Triggers shutdown and waits for the drain to finish.
    pub async fn shutdown(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.done.take().unwrap().await.unwrap();
    }
}

pub async fn start(bundle: Value) -> Gw {
    start_full(bundle, &[], |_| {}).await
}

/// Starts a gateway whose `${VAR}` templates see these variables.
pub async fn start_with_env(bundle: Value, vars: &[(&str, &str)]) -> Gw {
    start_full(bundle, vars, |_| {}).await
}

/// [`start`], with a last change to the checked configuration (settings the
/// bundle does not carry, such as poll intervals).
pub async fn start_with(bundle: Value, tweak: impl FnOnce(&mut Config)) -> Gw {
    start_full(bundle, &[], tweak).await
}

/// [`start`], with native filters on every route.
pub async fn start_with_filters(bundle: Value, filters: Filters) -> Gw {
    start_filtered(bundle, &[], |_| {}, filters, 1).await
}

/// [`start`] with `workers` worker threads (the test's runtime is worker 0).
pub async fn start_workers(bundle: Value, workers: usize) -> Gw {
    start_filtered(bundle, &[], |_| {}, Filters::default(), workers).await
}

async fn start_full(bundle: Value, vars: &[(&str, &str)], tweak: impl FnOnce(&mut Config)) -> Gw {
    start_filtered(bundle, vars, tweak, Filters::default(), 1).await
}

async fn start_filtered(
    bundle: Value,
    vars: &[(&str, &str)],
    tweak: impl FnOnce(&mut Config),
    filters: Filters,
    workers: usize,
) -> Gw {
    let b: Bundle = serde_json::from_value(bundle).unwrap();
    let env: BTreeMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let mut config =
        Config::from_bundle(&b, bundle::digest_of(&b.to_canonical_json()), Some(&env)).unwrap();
    tweak(&mut config);
    let server = Server::bind_workers(config, filters, workers)
        .await
        .unwrap();
    let (api, admin) = (server.api_addr(), server.admin_addr());
    let (tx, rx) = oneshot::channel::<()>();
    let done = tokio::spawn(server.run(async {
        let _ = rx.await;
    }));
    Gw {
        api,
        admin,
        stop: Some(tx),
        done: Some(done),
    }
}

/// The error of a gateway that refuses to start (a valid bundle, broken files).
pub async fn start_err(bundle: Value) -> String {
    let b: Bundle = serde_json::from_value(bundle).unwrap();
    let env = BTreeMap::<String, String>::new();
    let config =
        Config::from_bundle(&b, bundle::digest_of(&b.to_canonical_json()), Some(&env)).unwrap();
    match Server::bind(config).await {
        Ok(_) => panic!("the gateway started"),
        Err(e) => e.to_string(),
    }
}

pub fn client() -> Client<HttpConnector, TestBody> {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
}

pub async fn send(req: Request<TestBody>) -> Reply {
    let res = client().request(req).await.unwrap();
    let (parts, body) = res.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

pub async fn get(url: &str) -> Reply {
    send(Request::get(url).body(full("")).unwrap()).await
}

/// Writes raw bytes and reads until EOF (bounded by `limit`).
pub async fn raw(addr: SocketAddr, bytes: &[u8], limit: Duration) -> Vec<u8> {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let _ = s.write_all(bytes).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(limit, s.read_to_end(&mut out)).await;
    out
}

/// Writes raw bytes and reads until the peer closes the connection. A read that
/// outlasts `limit` (the peer neither answered to the end nor closed) or fails
/// is an error, never an empty answer.
pub async fn raw_until_close(
    addr: SocketAddr,
    bytes: &[u8],
    limit: Duration,
) -> Result<Vec<u8>, String> {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let _ = s.write_all(bytes).await;
    let mut out = Vec::new();
    match tokio::time::timeout(limit, s.read_to_end(&mut out)).await {
        Ok(Ok(_)) => Ok(out),
        Ok(Err(e)) => Err(format!(
            "read failed after {} bytes ({e}): {:?}",
            out.len(),
            String::from_utf8_lossy(&out)
        )),
        Err(_) => Err(format!(
            "no close within {limit:?}; read so far: {:?}",
            String::from_utf8_lossy(&out)
        )),
    }
}

/// Polls `f` until it holds or `limit` passes (a safety bound for work a
/// background task does: file reloads, timers, health checks), instead of
/// sleeping and hoping.
pub async fn eventually<F, Fut>(limit: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// The value of one sample line (`name{labels} value`) of the admin
/// `/metrics` page, if it is there.
pub async fn metric(gw: &Gw, sample: &str) -> Option<f64> {
    let r = get(&format!("http://{}/metrics", gw.admin)).await;
    let text = String::from_utf8_lossy(&r.body).into_owned();
    text.lines().find_map(|l| {
        l.strip_prefix(sample)
            .and_then(|rest| rest.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
    })
}

/// A port nothing listens on.
pub async fn dead_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap()
}

/// A [`backend`] behind TLS (HTTP/1.1 and HTTP/2, as the config's ALPN allows),
/// counting TCP connections and recording the SNI name of each handshake.
pub struct TlsBackend {
    pub addr: SocketAddr,
    pub hits: Arc<AtomicUsize>,
    pub connections: Arc<AtomicUsize>,
    pub sni: Arc<std::sync::Mutex<Vec<Option<String>>>>,
    _stop: oneshot::Sender<()>,
}

pub async fn tls_backend(name: &'static str, config: Arc<rustls::ServerConfig>) -> TlsBackend {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let connections = Arc::new(AtomicUsize::new(0));
    let sni = Arc::new(std::sync::Mutex::new(Vec::new()));
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let (tx, mut rx) = oneshot::channel::<()>();
    let (h, c, names) = (hits.clone(), connections.clone(), sni.clone());
    tokio::spawn(async move {
        loop {
            let (stream, _) = tokio::select! {
                _ = &mut rx => return,
                r = listener.accept() => r.unwrap(),
            };
            c.fetch_add(1, Ordering::SeqCst);
            let (h, names, acceptor) = (h.clone(), names.clone(), acceptor.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let server_name = tls.get_ref().1.server_name().map(str::to_owned);
                names.lock().unwrap().push(server_name);
                let svc = service_fn(move |req| {
                    h.fetch_add(1, Ordering::SeqCst);
                    handle(name, req)
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection_with_upgrades(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    TlsBackend {
        addr,
        hits,
        connections,
        sni,
        _stop: tx,
    }
}

/// A TLS server configuration from PEM: ALPN as given, client certificates
/// required when `client_ca` is set.
pub fn tls_server_config(
    cert_pem: &str,
    key_pem: &str,
    client_ca: Option<&str>,
    alpn: &[&[u8]],
) -> Arc<rustls::ServerConfig> {
    use rustls_pki_types::pem::PemObject;
    let certs = rustls_pki_types::CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = rustls_pki_types::PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = match client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in rustls_pki_types::CertificateDer::pem_slice_iter(ca.as_bytes()) {
                roots.add(c.unwrap()).unwrap();
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .unwrap();
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(certs, key).unwrap();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// A WebSocket handshake to the test backend's `/ws` (which answers `101` and echoes).
pub const WS_HANDSHAKE: &[u8] = b"GET /pets-api/v1/ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";

/// Connects to `addr`, sends [`WS_HANDSHAKE`] and returns the stream with the
/// lowercased first answer; a read that times out fails the test.
pub async fn websocket_handshake(addr: SocketAddr) -> (tokio::net::TcpStream, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(WS_HANDSHAKE).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
        .await
        .expect("no answer to the WebSocket handshake in 10 s")
        .unwrap();
    let head = String::from_utf8_lossy(&buf[..n]).to_lowercase();
    (s, head)
}

/// Sends a frame through a spliced connection and expects it echoed back.
pub async fn echo_through(s: &mut tokio::net::TcpStream) {
    s.write_all(b"ping-frame").await.unwrap();
    let mut got = [0u8; 10];
    tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut got))
        .await
        .expect("nothing came back through the tunnel in 10 s")
        .unwrap();
    assert_eq!(&got, b"ping-frame");
}
