//! The admin listener: `/healthz`, `/readyz`, `/metrics`, `/info`.
//!
//! Read-only by design: the image is immutable, so there is no endpoint that
//! changes routes or policies. It runs on its own port so probes and scrapes never
//! compete with API traffic, and it must never expose secrets.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

use crate::body::ResponseBody;
use crate::pipeline::Gateway;

/// Serves the admin endpoints until the task is aborted.
pub async fn serve(listener: TcpListener, gateway: Arc<Gateway>) {
    let builder = auto::Builder::new(TokioExecutor::new());
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            continue;
        };
        let gw = gateway.clone();
        let service = service_fn(move |req| {
            let gw = gw.clone();
            async move { Ok::<_, Infallible>(handle(&gw, &req)) }
        });
        let conn = builder
            .clone()
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
}

fn handle(gw: &Gateway, req: &Request<Incoming>) -> Response<ResponseBody> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n");
    }
    match req.uri().path() {
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" if gw.is_draining() => text(StatusCode::SERVICE_UNAVAILABLE, "draining\n"),
        "/readyz" => text(StatusCode::OK, "ready\n"),
        "/metrics" => with_type(
            StatusCode::OK,
            gw.metrics.encode(),
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        ),
        "/info" => with_type(StatusCode::OK, info(gw), "application/json"),
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: try /healthz /readyz /metrics /info\n",
        ),
    }
}

fn info(gw: &Gateway) -> String {
    let c = &gw.config;
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
        "draining": gw.is_draining(),
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
