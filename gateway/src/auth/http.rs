//! The gateway's own HTTP client, for JWKS documents and token introspection.
//!
//! HTTPS through rustls with the `ring` provider, trusting the CA bundle of the
//! image (`/etc/ssl/certs/ca-certificates.crt`, from the base layer); plain
//! `http://` works too (a sidecar, or tests on loopback). Every call has a timeout
//! and a cap on the response size. It never follows redirects and never sends
//! anything but what the caller built.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

pub type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// A pooled HTTP/1.1 client for `https://` and `http://` URLs.
pub fn client() -> HttpClient {
    let mut roots = rustls::RootCertStore::empty();
    crate::upstream_tls::add_ca_bundle(&mut roots);
    let (tls, http) = crate::upstream_tls::client_parts(roots);
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .pool_timer(TokioTimer::new())
        .build(connector)
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("request failed: {0}")]
    Request(String),
    #[error("response body over {0} bytes or broken")]
    Body(usize),
}

/// Sends a request and reads the whole (bounded) response within `timeout`.
pub async fn fetch(
    client: &HttpClient,
    req: Request<Full<Bytes>>,
    timeout: Duration,
    limit: usize,
) -> Result<(StatusCode, Bytes), FetchError> {
    let work = async {
        let res = client
            .request(req)
            .await
            .map_err(|e| FetchError::Request(e.to_string()))?;
        let status = res.status();
        let body = Limited::new(res.into_body(), limit)
            .collect()
            .await
            .map_err(|_| FetchError::Body(limit))?
            .to_bytes();
        Ok((status, body))
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| FetchError::Timeout(timeout))?
}
