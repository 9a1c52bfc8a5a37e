//! TLS to `https://` upstreams: the connector each upstream's pooled client
//! dials through.
//!
//! rustls on the `ring` provider, TLS 1.2 and 1.3. The server certificate is
//! verified against the image's CA bundle plus the upstream's optional `caFile`,
//! for the URL's host (or `serverName`, which is also sent as SNI); ALPN offers
//! `h2` and `http/1.1`, so an upstream that speaks HTTP/2 gets it and the pool
//! multiplexes over one connection. A client certificate (`certFile`/`keyFile`)
//! is presented when the upstream asks for one. Every file is a mounted secret,
//! read once here at start: a missing or broken one stops the gateway before it
//! is ready, and nothing is read on the request path.
//!
//! Never: skip verification unless the bundle says `insecureSkipVerify: true`
//! for this very upstream (then it is logged as a warning at start and shown as
//! `mgw_upstream_tls_insecure`); fall back to plain HTTP for an `https://` URL.

use std::sync::{Arc, OnceLock};

use hyper_rustls::{FixedServerNameResolver, HttpsConnector};
use hyper_util::client::legacy::connect::HttpConnector;
use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use crate::bundle::{UpstreamCfg, UpstreamTlsCfg};

/// Where the base image puts the CA bundle.
pub const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The pieces of the gateway's own clients (this one, the OTLP exporter): TLS
/// trusting `roots` (ring), and a TCP connector with a 5 s connect timeout.
pub(crate) fn client_parts(roots: rustls::RootCertStore) -> (rustls::ClientConfig, HttpConnector) {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(std::time::Duration::from_secs(5)));
    http.set_nodelay(true);
    (tls, http)
}

/// What an upstream's pooled client connects with: plain TCP for `http://`
/// URLs, rustls for `https://` ones.
pub type Connector = HttpsConnector<HttpConnector>;

#[derive(Debug, thiserror::Error)]
pub enum UpstreamTlsError {
    #[error("upstream `{upstream}`: cannot read the CA file `{path}`: {message}")]
    CaFile {
        upstream: String,
        path: String,
        message: String,
    },
    #[error("upstream `{upstream}`: cannot read the client certificate `{path}`: {message}")]
    Cert {
        upstream: String,
        path: String,
        message: String,
    },
    #[error("upstream `{upstream}`: cannot read the client key `{path}`: {message}")]
    Key {
        upstream: String,
        path: String,
        message: String,
    },
    #[error("upstream `{upstream}`: invalid TLS configuration: {message}")]
    Config { upstream: String, message: String },
}

/// The connectors of one upstream: one for every request and, when some URL is
/// `https://`, one that offers only `http/1.1` for HTTP/1.1 `Upgrade` requests
/// (WebSocket), which an upstream that picks `h2` could not carry. The TLS files
/// are read here, once.
pub fn connectors(cfg: &UpstreamCfg) -> Result<(Connector, Option<Connector>), UpstreamTlsError> {
    let mut http = HttpConnector::new();
    http.set_connect_timeout(Some(cfg.connect_timeout));
    http.set_nodelay(true);
    // `https://` URLs are the wrapper's to secure; plain ones stay plain.
    http.enforce_http(false);
    let Some(tls) = &cfg.tls else {
        // Only `http://` URLs (the bundle check guarantees it): no TLS is ever set
        // up. `https_or_http`, no ALPN: plain URLs stay plain.
        let none = no_tls().map_err(|e| UpstreamTlsError::Config {
            upstream: cfg.name.clone(),
            message: e.to_string(),
        })?;
        return Ok((HttpsConnector::from((http, none)), None));
    };
    let config = client_config(&cfg.name, tls)?;
    let builder = |config| {
        let builder = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_or_http();
        match &tls.server_name {
            Some(name) => {
                builder.with_server_name_resolver(FixedServerNameResolver::new(name.clone()))
            }
            None => builder,
        }
    };
    let any = builder(config.clone())
        .enable_all_versions()
        .wrap_connector(http.clone());
    // No ALPN at all: the server speaks HTTP/1.1.
    let http1 = builder(config).enable_http1().wrap_connector(http);
    Ok((any, Some(http1)))
}

/// The TLS configuration of every plain upstream's connector, which never
/// makes a handshake: it trusts nothing and keeps no session cache. Built
/// once and shared (one per upstream was about 1.2 KB each at idle).
fn no_tls() -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
    static NONE: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    if let Some(none) = NONE.get() {
        return Ok(none.clone());
    }
    let mut none = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth();
    // The default session cache takes about 15 KiB.
    none.resumption = rustls::client::Resumption::disabled();
    Ok(NONE.get_or_init(|| Arc::new(none)).clone())
}

/// The rustls client configuration of one upstream (ALPN is set by the connector).
pub fn client_config(
    upstream: &str,
    tls: &UpstreamTlsCfg,
) -> Result<rustls::ClientConfig, UpstreamTlsError> {
    let config_err = |e: rustls::Error| UpstreamTlsError::Config {
        upstream: upstream.to_owned(),
        message: e.to_string(),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(config_err)?;
    let builder = if tls.insecure_skip_verify {
        tracing::warn!(
            %upstream,
            "TLS certificate verification is OFF for this upstream (`insecureSkipVerify: true`): anyone on the path can read and change its traffic"
        );
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(
                provider.signature_verification_algorithms,
            )))
    } else {
        builder.with_root_certificates(roots(upstream, tls.ca_file.as_deref())?)
    };
    match &tls.client_cert {
        Some((cert_file, key_file)) => {
            let certs = read_certs(cert_file).map_err(|message| UpstreamTlsError::Cert {
                upstream: upstream.to_owned(),
                path: cert_file.clone(),
                message,
            })?;
            let key =
                PrivateKeyDer::from_pem_file(key_file).map_err(|e| UpstreamTlsError::Key {
                    upstream: upstream.to_owned(),
                    path: key_file.clone(),
                    message: e.to_string(),
                })?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| UpstreamTlsError::Config {
                    upstream: upstream.to_owned(),
                    message: format!("client certificate and key do not match: {e}"),
                })
        }
        None => Ok(builder.with_no_client_auth()),
    }
}

/// Adds the image's CA bundle (if there is one) to `roots`.
pub(crate) fn add_ca_bundle(roots: &mut rustls::RootCertStore) {
    if let Ok(iter) = CertificateDer::pem_file_iter(CA_BUNDLE) {
        for cert in iter.flatten() {
            let _ = roots.add(cert);
        }
    }
}

/// The image's CA bundle, plus the upstream's own CA file.
fn roots(upstream: &str, ca_file: Option<&str>) -> Result<rustls::RootCertStore, UpstreamTlsError> {
    let mut roots = rustls::RootCertStore::empty();
    add_ca_bundle(&mut roots);
    if let Some(path) = ca_file {
        let ca_err = |message: String| UpstreamTlsError::CaFile {
            upstream: upstream.to_owned(),
            path: path.to_owned(),
            message,
        };
        for cert in read_certs(path).map_err(ca_err)? {
            roots.add(cert).map_err(|e| ca_err(e.to_string()))?;
        }
    }
    if roots.is_empty() {
        tracing::warn!(
            %upstream,
            ca_bundle = CA_BUNDLE,
            "no CA certificate to verify this upstream with: every TLS handshake will fail (set `caFile`)"
        );
    }
    Ok(roots)
}

/// All PEM certificates of a file; an empty file is an error.
pub(crate) fn read_certs(path: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| e.to_string())?;
    if certs.is_empty() {
        return Err("no PEM certificate in it".into());
    }
    Ok(certs)
}

/// `insecureSkipVerify`: any certificate for any name. Handshake signatures are
/// still checked, so the peer must hold the key of the certificate it shows.
#[derive(Debug)]
struct NoVerification(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// The TLS failure behind a client error, if there is one (for the log line:
/// `invalid peer certificate: UnknownIssuer` says more than "connect error").
/// `io::Error` hides what it wraps from `source()`, so it is opened explicitly.
pub fn tls_failure<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    if let Some(tls) = e.downcast_ref::<rustls::Error>() {
        return Some(tls);
    }
    if let Some(inner) = e
        .downcast_ref::<std::io::Error>()
        .and_then(std::io::Error::get_ref)
    {
        if let Some(tls) = tls_failure(inner) {
            return Some(tls);
        }
    }
    e.source().and_then(tls_failure)
}
