//! The last stage: forward a routed request to its upstream and stream the answer
//! back.
//!
//! One pooled keep-alive client per upstream (its own connect timeout and pool
//! limits). This module rewrites the target (base path → upstream path prefix),
//! strips hop-by-hop headers in both directions, sets `X-Forwarded-*`, picks
//! upstream URLs round-robin or in failover order, retries only what is safe, and
//! splices WebSocket connections for operations that opt in. Client hop-by-hop
//! headers are already gone ([`crate::headers`]); this module only sets the
//! gateway's own. It never buffers a body, never forwards an `Upgrade` other than
//! `websocket`, never splices a `101` it did not ask for, and never puts upstream
//! addresses or error chains into a client response.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use http::header::{self, Entry, HeaderMap, HeaderValue};
use http::uri::PathAndQuery;
use http::{Method, Request, Response, StatusCode, Uri, Version};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};

use crate::body::{BodyState, RequestBody};
use crate::bundle::{LoadBalancing, UpstreamCfg};
use crate::error::GatewayError;
use crate::header_names::{X_FORWARDED_FOR, X_FORWARDED_HOST, X_FORWARDED_PROTO, X_REQUEST_ID};
use crate::headers::{is_websocket, strip_hop_by_hop};
use crate::metrics::UpstreamMetrics;
use crate::resilience::{ConcurrencyPermit, Rejection, Resilience, is_failure_status};
use crate::upstream_pool::{Failed, H1Pool, SendError, UpstreamBody};
use crate::upstream_tls::{self, Connector, UpstreamTlsError};

/// An upstream cluster: its URLs, a pooled client and its metrics.
pub struct Upstream {
    pub cfg: UpstreamCfg,
    /// `http://` URLs: connections driven by the requests that use them.
    h1: Option<H1Pool>,
    /// `https://` URLs (HTTP/2 multiplexed where the upstream offers it),
    /// WebSocket upgrades and health checks.
    client: Client<Connector, RequestBody>,
    /// For HTTP/1.1 `Upgrade` requests to `https://` URLs: offers only
    /// `http/1.1`, since an upstream that picks `h2` could not switch protocols.
    upgrade_client: Option<Client<Connector, RequestBody>>,
    /// When a TLS failure was last logged as a warning (ms since `created`): a
    /// misconfigured upstream must not flood the log at request rate.
    tls_warned_ms: AtomicU64,
    created: Instant,
    next: AtomicUsize,
    pub metrics: UpstreamMetrics,
    /// Circuit breaker, URL health, retry budget, concurrency cap.
    pub resilience: Resilience,
}

impl Upstream {
    /// Reads the upstream's TLS files (CA, client certificate) now, at start.
    pub fn new(cfg: UpstreamCfg, metrics: UpstreamMetrics) -> Result<Self, UpstreamTlsError> {
        // Plain TCP for `http://` URLs, rustls (ALPN h2 and http/1.1) for `https://`.
        let pooled = |connector| {
            Client::builder(TokioExecutor::new())
                .pool_idle_timeout(cfg.pool_idle_timeout)
                .pool_max_idle_per_host(cfg.pool_max_idle_per_host)
                .pool_timer(TokioTimer::new())
                .timer(TokioTimer::new())
                .build(connector)
        };
        let (connector, upgrade_connector) = upstream_tls::connectors(&cfg)?;
        let client = pooled(connector);
        let upgrade_client = upgrade_connector.map(pooled);
        let resilience = Resilience::new(&cfg, metrics.resilience.clone());
        let h1 = H1Pool::new(
            cfg.targets.iter().map(|t| t.origin.clone()),
            cfg.pool_max_idle_per_host,
            cfg.pool_idle_timeout,
            cfg.connect_timeout,
        );
        Ok(Self {
            cfg,
            h1,
            client,
            upgrade_client,
            tls_warned_ms: AtomicU64::new(u64::MAX),
            created: Instant::now(),
            next: AtomicUsize::new(0),
            metrics,
            resilience,
        })
    }

    /// The active health check loop, when the upstream has `healthCheck`.
    pub fn health_checker(&self) -> Option<impl std::future::Future<Output = ()> + Send + 'static> {
        self.resilience
            .health_checker(&self.cfg, self.client.clone())
    }

    /// A failed TLS handshake is a configuration problem more often than an
    /// outage, and the client only sees a 502: say which upstream and why, as a
    /// warning at most once a second (then at debug level), so a misconfigured
    /// upstream cannot flood the log at request rate.
    fn log_tls_failure(&self, target: &Uri, error: &rustls::Error) {
        let now = u64::try_from(self.created.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        let last = self.tls_warned_ms.load(Ordering::Relaxed);
        let due = (last == u64::MAX || now.saturating_sub(last) >= 1_000)
            && self
                .tls_warned_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok();
        let upstream = &self.cfg.name;
        if due {
            tracing::warn!(%upstream, %target, %error, "TLS handshake with the upstream failed");
        } else {
            tracing::debug!(%upstream, %target, %error, "TLS handshake with the upstream failed");
        }
    }

    fn first_target(&self) -> usize {
        match self.cfg.load_balancing {
            LoadBalancing::RoundRobin => self.next.fetch_add(1, Ordering::Relaxed),
            LoadBalancing::Failover => 0,
        }
    }
}

/// What the pipeline hands to the proxy stage.
pub struct Outbound<'a> {
    pub upstream: &'a Upstream,
    /// Path segments of the API base path, removed before the upstream prefix is added.
    pub base_segments: usize,
    /// The peer's IP address as a header value (`ConnInfo::forwarded_for`).
    pub forwarded_for: &'a HeaderValue,
    pub request_id: &'a HeaderValue,
    pub body: Option<std::sync::Arc<BodyState>>,
    /// `http` or `https`, for `X-Forwarded-Proto`.
    pub proto: &'static str,
    /// The client asked for a WebSocket and the operation accepts one.
    pub websocket: bool,
}

/// The upstream's response and how long its head took.
pub struct UpstreamResponse {
    pub response: Response<UpstreamBody>,
    pub latency: Duration,
    /// The request's place under the upstream's concurrency cap: keep it until
    /// the response body ends.
    pub permit: ConcurrencyPermit,
    /// For a spliced WebSocket: resolves when the tunnel closes.
    pub tunnel: Option<tokio::sync::oneshot::Receiver<Tunnel>>,
}

/// Bytes a spliced connection carried, reported when it closes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tunnel {
    pub from_client: u64,
    pub to_client: u64,
}

/// Sends the request, with failover and retries, and returns the upstream response.
/// The head is borrowed (its headers are taken for the attempts): a request
/// moved into this future would be copied into its state twice.
pub async fn forward(
    out: Outbound<'_>,
    parts: &mut http::request::Parts,
    body: RequestBody,
) -> Result<UpstreamResponse, GatewayError> {
    let upstream = out.upstream;
    let cfg = &upstream.cfg;
    let res = &upstream.resilience;
    // Fail fast, before any work: an open circuit or a full upstream.
    // One clock read for the admission and the first attempt's deadline.
    let start = Instant::now();
    let (admission, permit) = res.admit_at(start).map_err(|r| match r {
        Rejection::CircuitOpen(retry) => GatewayError::CircuitOpen {
            retry_after_secs: retry.as_secs() + u64::from(retry.subsec_nanos() > 0),
        },
        Rejection::Overloaded => GatewayError::UpstreamOverloaded,
    })?;
    // What `hyper::upgrade::on` takes from a request.
    let client_upgrade = out
        .websocket
        .then(|| parts.extensions.remove::<hyper::upgrade::OnUpgrade>())
        .flatten();
    // The client's protocol version, whatever the upstream speaks (an HTTP/1.0
    // upstream must not turn a keep-alive HTTP/1.1 client into an HTTP/1.0 one).
    let client_version = parts.version;
    prepare_headers(&mut parts.headers, &parts.uri, parts.version, &out);
    let path_and_query = rewrite_path(&parts.uri, out.base_segments);
    parts.version = Version::HTTP_11;

    let n = cfg.targets.len();
    // Connect failures move on to the next URL; failover tries each URL at least once.
    let max_attempts = (cfg.retry_attempts as usize + 1).max(match cfg.load_balancing {
        LoadBalancing::Failover => n,
        LoadBalancing::RoundRobin => 1,
    });
    // Whether a request the upstream may have seen is sent again after a reset.
    let retry_sent = cfg.retry_idempotent && out.body.is_none() && is_idempotent(&parts.method);
    let mut pos = upstream.first_target() % n;
    let mut body = Some(body);
    let mut last_error = GatewayError::UpstreamConnect;
    for attempt in 0..max_attempts {
        let body = match body.take() {
            Some(b) => b,
            None => match &out.body {
                Some(state) if !state.started() => RequestBody::resume(state),
                None => RequestBody::Empty,
                Some(_) => break,
            },
        };
        // Retries come out of the upstream's budget, so they cannot amplify an outage.
        if attempt > 0 && !res.try_retry() {
            break;
        }
        let index = res.pick(&mut pos);
        let target = &cfg.targets[index];
        let pooled = upstream
            .h1
            .as_ref()
            .filter(|p| !out.websocket && p.serves(index));
        // The pool takes the origin-form target and sets `Host`; the client
        // takes the absolute URL.
        let uri = match pooled {
            Some(_) => origin_form(&target.path_prefix, path_and_query),
            None => target_uri(&target.origin, &target.path_prefix, path_and_query),
        };
        // Built in place (a `Request::builder` chain moves the whole head at
        // every step). The headers are copied only when another attempt may
        // need them after this one sent them: a request the pool could not
        // send comes back whole.
        let mut request = Request::new(body);
        *request.method_mut() = parts.method.clone();
        *request.uri_mut() = uri;
        let copy = attempt + 1 < max_attempts && (pooled.is_none() || retry_sent);
        *request.headers_mut() = if copy {
            parts.headers.clone()
        } else {
            std::mem::take(&mut parts.headers)
        };
        // The attempt's latency and deadline count from here.
        let sent = if attempt == 0 { start } else { Instant::now() };
        let deadline = sent
            .checked_add(cfg.request_timeout)
            .unwrap_or_else(|| sent + FAR_FUTURE);
        let result = match pooled {
            Some(pool) => pool
                .send(index, request, sent, deadline)
                .await
                .map_err(Failure::Pool),
            None => {
                request.headers_mut().remove(header::HOST);
                let client = match &upstream.upgrade_client {
                    Some(h1) if out.websocket => h1,
                    _ => &upstream.client,
                };
                match tokio::time::timeout_at(deadline.into(), client.request(request)).await {
                    Ok(r) => r
                        .map(|r| r.map(UpstreamBody::from))
                        .map_err(Failure::Client),
                    Err(_) => Err(Failure::Timeout),
                }
            }
        };
        let answered = Instant::now();
        let elapsed = answered.saturating_duration_since(sent);
        let err = match result {
            Ok(mut response) => {
                upstream.metrics.observe(elapsed);
                *response.version_mut() = client_version;
                let ok = !is_failure_status(response.status());
                res.target_result(index, ok);
                res.finish_at(admission, Some(ok), answered);
                let switched = response.status() == StatusCode::SWITCHING_PROTOCOLS;
                let agreed = switched && is_websocket(response.headers());
                strip_hop_by_hop(response.headers_mut(), false);
                let mut tunnel = None;
                if switched {
                    // Only the WebSocket we asked for is spliced; any other switch
                    // would carry traffic past every stage of the pipeline.
                    let (Some(client_upgrade), true) = (client_upgrade, agreed) else {
                        let err = GatewayError::UpstreamProtocol;
                        upstream.metrics.error(err.kind());
                        return Err(err);
                    };
                    tunnel = Some(splice_upgrade(client_upgrade, &mut response));
                    set_websocket_upgrade(response.headers_mut());
                }
                return Ok(UpstreamResponse {
                    response,
                    latency: elapsed,
                    permit,
                    tunnel,
                });
            }
            Err(Failure::Pool(Failed { error, unsent })) => {
                if let Some(unsent) = unsent {
                    // With the pool's `Host`, which the next attempt replaces.
                    parts.headers = unsent.into_parts().0.headers;
                }
                match error {
                    SendError::ConnectTimeout => GatewayError::UpstreamConnectTimeout,
                    SendError::Connect(io) if io.kind() == std::io::ErrorKind::TimedOut => {
                        GatewayError::UpstreamConnectTimeout
                    }
                    SendError::Connect(_) => GatewayError::UpstreamConnect,
                    SendError::Exchange(_) => classify_exchange(&out),
                    SendError::Timeout => GatewayError::UpstreamTimeout,
                }
            }
            Err(Failure::Client(e)) => {
                let tls = upstream_tls::tls_failure(&e);
                if let Some(tls) = tls {
                    upstream.log_tls_failure(&target.origin, tls);
                }
                // A failed handshake sent nothing; a TLS error later may have, so
                // it is classified like any broken exchange. (TLS 1.3 reports a
                // refused client certificate only after the handshake, as an
                // I/O error that no longer carries the rustls error: a reset.)
                match tls {
                    Some(_) if e.is_connect() => GatewayError::UpstreamTls,
                    _ => classify(&e, &out),
                }
            }
            Err(Failure::Timeout) => GatewayError::UpstreamTimeout,
        };
        if err.is_upstream() {
            res.target_result(index, false);
        }
        upstream.metrics.error(err.kind());
        tracing::debug!(upstream = %cfg.name, attempt, kind = err.kind(), "upstream attempt failed");
        let retryable = match err {
            GatewayError::UpstreamConnect
            | GatewayError::UpstreamConnectTimeout
            | GatewayError::UpstreamTls => true,
            GatewayError::UpstreamReset => retry_sent,
            _ => false,
        };
        last_error = err;
        if !retryable {
            break;
        }
    }
    let verdict = last_error.is_upstream().then_some(false);
    res.finish(admission, verdict);
    Err(last_error)
}

fn classify(e: &hyper_util::client::legacy::Error, out: &Outbound<'_>) -> GatewayError {
    if e.is_connect() {
        let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
        while let Some(s) = source {
            if let Some(io) = s.downcast_ref::<std::io::Error>() {
                if io.kind() == std::io::ErrorKind::TimedOut {
                    return GatewayError::UpstreamConnectTimeout;
                }
            }
            source = s.source();
        }
        return GatewayError::UpstreamConnect;
    }
    classify_exchange(out)
}

/// How a request the upstream may have seen failed: the client's body, or the
/// upstream.
fn classify_exchange(out: &Outbound<'_>) -> GatewayError {
    if let Some(state) = &out.body {
        if state.too_large() {
            return GatewayError::PayloadTooLarge {
                limit: state.limit(),
            };
        }
        if state.client_error() {
            return GatewayError::BadRequest("the request body could not be read");
        }
    }
    GatewayError::UpstreamReset
}

fn is_idempotent(m: &Method) -> bool {
    matches!(
        *m,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
    )
}

/// `Upgrade: websocket` and `Connection: upgrade`, the only switch we forward.
fn set_websocket_upgrade(headers: &mut HeaderMap) {
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
}

fn prepare_headers(headers: &mut HeaderMap, uri: &Uri, version: Version, out: &Outbound<'_>) {
    // The original host, for X-Forwarded-Host: HTTP/2 carries it in `:authority`.
    // It stays in the map until the attempt replaces it: the pool overwrites it
    // in place with its URL's, and it is removed for the client, which sets
    // `Host` from the URL (one map operation per request, not two).
    let host = headers.get(header::HOST).cloned().or_else(|| {
        uri.authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    });
    // Client hop-by-hop headers were stripped when the request came in; the only
    // ones that go upstream are the gateway's own.
    if out.websocket {
        set_websocket_upgrade(headers);
    }
    if let Some(host) = host {
        headers.insert(X_FORWARDED_HOST, host);
    }
    // The peer's address, formatted once per connection; appended to what
    // the client sent, if anything. One lookup: most requests have none.
    match headers.entry(X_FORWARDED_FOR) {
        Entry::Vacant(e) => {
            e.insert(out.forwarded_for.clone());
        }
        Entry::Occupied(mut e) => {
            let xff = match e.get().to_str() {
                Ok(prev) if !prev.trim().is_empty() => {
                    let peer = out.forwarded_for.to_str().unwrap_or_default();
                    HeaderValue::from_str(&format!("{prev}, {peer}")).ok()
                }
                _ => Some(out.forwarded_for.clone()),
            };
            if let Some(v) = xff {
                e.insert(v);
            }
        }
    }
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(out.proto));
    headers.insert(X_REQUEST_ID, out.request_id.clone());
    if version == Version::HTTP_2 {
        // h2 clients may send these; they mean nothing to an HTTP/1.1 upstream.
        headers.remove(header::TE);
    }
}

/// The request path with the API's base path removed, and the query, both
/// still percent-encoded exactly as the client sent them.
fn rewrite_path(uri: &Uri, base_segments: usize) -> Target<'_> {
    (split_base(uri.path(), base_segments).1, uri.query())
}

/// The rest of the client's path after the base path, and its query.
type Target<'a> = (&'a str, Option<&'a str>);

/// A raw request path split after the API's base path: `(base, rest)`, both
/// exactly as the client sent them (the router already matched the base path).
pub(crate) fn split_base(path: &str, base_segments: usize) -> (&str, &str) {
    let mut rest = path;
    for _ in 0..base_segments {
        let trimmed = rest.strip_prefix('/').unwrap_or(rest);
        // A byte search: `str::find(char)` costs more on these short strings.
        rest = match trimmed.bytes().position(|b| b == b'/') {
            Some(i) => &trimmed[i..],
            None => "",
        };
    }
    (&path[..path.len() - rest.len()], rest)
}

/// Why an attempt got no response: from the pool, from the client, or not by
/// its deadline (the pool reports its own).
enum Failure {
    Pool(Failed),
    Client(hyper_util::client::legacy::Error),
    Timeout,
}

/// A deadline past any request timeout, for one too large to add to an `Instant`.
const FAR_FUTURE: Duration = Duration::from_secs(86_400 * 365);

/// The upstream path: its prefix, then the rest of the client's path and its
/// query, in one string.
fn upstream_path(prefix: &str, (rest, query): Target<'_>) -> Option<PathAndQuery> {
    let mut path =
        String::with_capacity(prefix.len() + rest.len() + 1 + query.map_or(0, |q| q.len() + 1));
    path.push_str(prefix);
    if !rest.starts_with('/') {
        path.push('/');
    }
    path.push_str(rest);
    if let Some(q) = query {
        path.push('?');
        path.push_str(q);
    }
    PathAndQuery::from_maybe_shared(path).ok()
}

/// An origin-form request target (`/path?query`), for a connection of our own.
fn origin_form(prefix: &str, rest: Target<'_>) -> Uri {
    let mut parts = http::uri::Parts::default();
    parts.path_and_query = upstream_path(prefix, rest);
    Uri::from_parts(parts).unwrap_or_else(|_| Uri::from_static("/"))
}

fn target_uri(origin: &Uri, prefix: &str, rest: Target<'_>) -> Uri {
    let mut parts = origin.clone().into_parts();
    parts.path_and_query = upstream_path(prefix, rest);
    Uri::from_parts(parts).unwrap_or_else(|_| origin.clone())
}

/// Joins the client's and the upstream's upgraded connections; the receiver
/// learns the byte counts when the tunnel closes (zero if it never opened).
fn splice_upgrade(
    client: hyper::upgrade::OnUpgrade,
    response: &mut Response<UpstreamBody>,
) -> tokio::sync::oneshot::Receiver<Tunnel> {
    let upstream = hyper::upgrade::on(response);
    let (done, closed) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (Ok(client), Ok(upstream)) = (client.await, upstream.await) else {
            let _ = done.send(Tunnel::default());
            return;
        };
        let mut client = TokioIo::new(client);
        let mut upstream = TokioIo::new(upstream);
        let tunnel = match tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
            Ok((from_client, to_client)) => Tunnel {
                from_client,
                to_client,
            },
            Err(e) => {
                tracing::debug!(error = %e, "upgraded connection ended");
                Tunnel::default()
            }
        };
        let _ = done.send(tunnel);
    });
    closed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_base_path_keeping_encoding_and_query() {
        let uri: Uri = "/petstore/v1/pets/a%2Fb?x=1&y=%20".parse().unwrap();
        assert_eq!(rewrite_path(&uri, 2), ("/pets/a%2Fb", Some("x=1&y=%20")));
        let root: Uri = "/petstore/v1".parse().unwrap();
        assert_eq!(rewrite_path(&root, 2), ("", None));
        let origin: Uri = "http://h:1/".parse().unwrap();
        assert_eq!(target_uri(&origin, "/v1", ("", None)), "http://h:1/v1/");
        assert_eq!(target_uri(&origin, "", ("", None)), "http://h:1/");
        assert_eq!(target_uri(&origin, "", ("", Some("x"))), "http://h:1/?x");
        assert_eq!(
            target_uri(&origin, "/v1", ("/pets", Some("q"))),
            "http://h:1/v1/pets?q"
        );
        assert_eq!(
            origin_form("/v1", ("/pets", Some("a=%20"))),
            "/v1/pets?a=%20"
        );
    }
}
