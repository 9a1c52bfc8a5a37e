//! The admin listener: `/healthz`, `/readyz`, `/metrics`, `/info`.
//!
//! Read-only by design: the image is immutable, so there is no endpoint that
//! changes routes or policies. It runs on its own port so probes and scrapes never
//! compete with API traffic, and it must never expose secrets. Its connections
//! get the API listener's header-read and idle timeouts, and at most
//! [`MAX_CONNECTIONS`] are open at once (more are closed at accept), so nobody
//! can exhaust the process through it.
//!
//! It binds `0.0.0.0:9090` by default because kubelet probes and Prometheus reach
//! the pod IP; keep the port off any Service or ingress, or set
//! `MGW_ADMIN_LISTEN=127.0.0.1:9090` where nothing outside the pod needs it.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::body::ResponseBody;
use crate::bundle::Config;
use crate::conn::{Activity, connection_builder, drive};
use crate::metrics::Metrics;

/// Admin connections open at once; probes and scrapes need a handful.
pub const MAX_CONNECTIONS: usize = 32;

/// What the admin endpoints may read: the bundle, the metrics and whether the
/// gateway is draining. Nothing here reaches the request path or can change it.
pub struct Admin {
    config: Arc<Config>,
    metrics: Arc<Metrics>,
    readiness: Readiness,
}

impl Admin {
    pub fn new(config: Arc<Config>, metrics: Arc<Metrics>, readiness: Readiness) -> Self {
        Self {
            config,
            metrics,
            readiness,
        }
    }
}

/// Whether the gateway is draining, as `/readyz` reports it: read-only here;
/// only the holder of the [`Draining`] side (the server) sets it.
#[derive(Clone)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    pub fn is_draining(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// The side of the draining flag that sets it, once, at shutdown.
pub struct Draining(Arc<AtomicBool>);

impl Draining {
    pub fn new() -> (Draining, Readiness) {
        let flag = Arc::new(AtomicBool::new(false));
        (Draining(flag.clone()), Readiness(flag))
    }

    /// `/readyz` fails from now on; requests still work until the listener closes.
    pub fn start(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Serves the admin endpoints until the task is aborted (which also closes
/// its open connections).
pub async fn serve(listener: TcpListener, admin: Admin) {
    let builder = connection_builder(&admin.config);
    let admin = Arc::new(admin);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    // Dropped with this task: every admin connection is then asked to finish.
    let (_stop, stopped) = watch::channel(false);
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            continue;
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            admin.metrics.connection_error("admin_connection_limit");
            drop(stream);
            continue;
        };
        let activity = Activity::new();
        let (state, busy) = (admin.clone(), activity.clone());
        let service = service_fn(move |req| {
            let _busy = busy.busy(req.version());
            let response = handle(&state, &req);
            async move { Ok::<_, Infallible>(response) }
        });
        let conn = builder
            .clone()
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        let limits = admin.config.limits.clone();
        let stopped = stopped.clone();
        tokio::spawn(async move {
            // Not counted in `mgw_connection_errors_total`, which is the API's.
            let result = drive(conn, |c| c.graceful_shutdown(), &activity, &limits, stopped).await;
            if let Err(kind) = result {
                tracing::debug!(kind, "admin connection closed with an error");
            }
            drop(slot);
        });
    }
}

fn handle(admin: &Admin, req: &Request<Incoming>) -> Response<ResponseBody> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n");
    }
    match req.uri().path() {
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" if admin.readiness.is_draining() => {
            text(StatusCode::SERVICE_UNAVAILABLE, "draining\n")
        }
        "/readyz" => text(StatusCode::OK, "ready\n"),
        "/metrics" => with_type(
            StatusCode::OK,
            admin.metrics.encode(),
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        ),
        "/info" => with_type(StatusCode::OK, info(admin), "application/json"),
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: try /healthz /readyz /metrics /info\n",
        ),
    }
}

fn info(admin: &Admin) -> String {
    let c = &admin.config;
    let apis: Vec<_> = c
        .apis
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let ops: Vec<_> = c
                .routes
                .iter()
                .filter(|r| r.api == i)
                .map(|r| {
                    serde_json::json!({
                        "operationId": r.operation_id,
                        "method": r.method.as_str(),
                        "path": r.template,
                    })
                })
                .collect();
            serde_json::json!({
                "name": a.name,
                "version": a.version,
                "basePath": a.base_path,
                "operations": ops,
            })
        })
        .collect();
    serde_json::json!({
        "gateway": c.gateway.name,
        "version": c.gateway.version,
        "gatewayBuild": env!("CARGO_PKG_VERSION"),
        "bundleDigest": c.digest,
        "draining": admin.readiness.is_draining(),
        "apis": apis,
    })
    .to_string()
}

fn text(status: StatusCode, body: &'static str) -> Response<ResponseBody> {
    with_type(status, body.to_owned(), "text/plain; charset=utf-8")
}

fn with_type(
    status: StatusCode,
    body: String,
    content_type: &'static str,
) -> Response<ResponseBody> {
    let mut res = Response::new(ResponseBody::full(Bytes::from(body)));
    *res.status_mut() = status;
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    res
}
