//! The OTLP transport: one export request to the collector, over OTLP/HTTP
//! (protobuf, `POST <endpoint>/v1/traces`) or OTLP/gRPC (unary
//! `TraceService/Export` over HTTP/2), to `http://` or `https://` endpoints.
//!
//! gRPC is framed by hand rather than with tonic: a unary call is one HTTP/2
//! POST whose body is the message behind a 5-byte prefix (a compression flag,
//! then the length, big-endian), answered by `grpc-status` in the trailers (or
//! in the headers of a trailers-only answer). HTTPS trusts the image's CA
//! bundle plus `tracing.otlp.caFile`, like upstream TLS.

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::bundle::{OtlpProtocol, TracingCfg};

/// A collector's answer is read up to this size (it carries no data we use).
const ANSWER_LIMIT: usize = 64 * 1024;

/// The collector's CA file could not be used.
#[derive(Debug, thiserror::Error)]
#[error("tracing.otlp.caFile `{path}`: {message}")]
pub struct OtlpSetupError {
    path: String,
    message: String,
}

/// Sends export requests to one collector.
pub struct Transport {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    url: String,
    protocol: OtlpProtocol,
}

impl Transport {
    pub fn new(cfg: &TracingCfg) -> Result<Transport, OtlpSetupError> {
        let mut roots = rustls::RootCertStore::empty();
        crate::upstream_tls::add_ca_bundle(&mut roots);
        if let Some(path) = &cfg.ca_file {
            let err = |message: String| OtlpSetupError {
                path: path.clone(),
                message,
            };
            for cert in crate::upstream_tls::read_certs(path).map_err(err)? {
                roots.add(cert).map_err(|e| err(e.to_string()))?;
            }
        }
        let (tls, http) = crate::upstream_tls::client_parts(roots);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http();
        let mut client = Client::builder(TokioExecutor::new());
        client
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_timer(TokioTimer::new());
        let client = match cfg.protocol {
            OtlpProtocol::Http => client.build(connector.enable_http1().wrap_connector(http)),
            // gRPC is HTTP/2 only: ALPN `h2` over TLS, prior knowledge in clear.
            OtlpProtocol::Grpc => client
                .http2_only(true)
                .build(connector.enable_http2().wrap_connector(http)),
        };
        Ok(Transport {
            client,
            url: cfg.traces_url.clone(),
            protocol: cfg.protocol,
        })
    }

    /// Sends one encoded `ExportTraceServiceRequest`; `Err` says why the
    /// collector did not take it.
    pub async fn export(&self, message: Vec<u8>) -> Result<(), String> {
        let req = Request::post(&self.url);
        let req = match self.protocol {
            OtlpProtocol::Http => req
                .header(http::header::CONTENT_TYPE, "application/x-protobuf")
                .body(Full::new(Bytes::from(message))),
            OtlpProtocol::Grpc => req
                .header(http::header::CONTENT_TYPE, "application/grpc")
                .header(http::header::TE, "trailers")
                .body(Full::new(grpc_frame(&message))),
        }
        .map_err(|e| e.to_string())?;
        let res = self.client.request(req).await.map_err(|e| e.to_string())?;
        let (head, body) = res.into_parts();
        if self.protocol == OtlpProtocol::Http {
            return match head.status.is_success() {
                true => Ok(()),
                false => Err(format!("HTTP status {}", head.status.as_u16())),
            };
        }
        if head.status != StatusCode::OK {
            return Err(format!("HTTP status {} (gRPC)", head.status.as_u16()));
        }
        // A trailers-only answer puts `grpc-status` in the headers.
        if head.headers.contains_key("grpc-status") {
            return grpc_status(&head.headers);
        }
        let answer = Limited::new(body, ANSWER_LIMIT)
            .collect()
            .await
            .map_err(|e| e.to_string())?;
        match answer.trailers() {
            Some(t) => grpc_status(t),
            None => Err("gRPC answer without `grpc-status`".into()),
        }
    }
}

/// A gRPC length-prefixed message: uncompressed flag, length, bytes.
fn grpc_frame(message: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(5 + message.len());
    b.put_u8(0);
    b.put_u32(u32::try_from(message.len()).unwrap_or(u32::MAX));
    b.put_slice(message);
    b.freeze()
}

/// `grpc-status: 0` is success; anything else is the collector's refusal.
fn grpc_status(h: &HeaderMap) -> Result<(), String> {
    let status = h.get("grpc-status").map(|v| v.as_bytes());
    if status == Some(b"0") {
        return Ok(());
    }
    let message = h
        .get("grpc-message")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    Err(format!(
        "grpc-status {} {message}",
        status.map_or("missing".into(), |s| String::from_utf8_lossy(s)
            .into_owned())
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_messages_are_length_prefixed() {
        assert_eq!(&grpc_frame(b"abc")[..], b"\0\0\0\0\x03abc");
        let mut h = HeaderMap::new();
        assert!(grpc_status(&h).unwrap_err().contains("missing"));
        h.insert("grpc-status", "14".parse().unwrap());
        h.insert("grpc-message", "unavailable".parse().unwrap());
        assert_eq!(grpc_status(&h).unwrap_err(), "grpc-status 14 unavailable");
        h.insert("grpc-status", "0".parse().unwrap());
        assert_eq!(grpc_status(&h), Ok(()));
    }
}
