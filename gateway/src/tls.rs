//! TLS on the API listener, and who a client certificate names.
//!
//! Certificate, key and client CA come from files mounted at runtime (a Kubernetes
//! `tls` secret); rustls with the `ring` provider only, TLS 1.2 and 1.3, ALPN `h2`
//! and `http/1.1`. With a client CA, client certificates are verified against it:
//! `required` refuses a handshake without one, `optional` lets the API decide. The
//! subject of a verified client certificate (`CN=…,O=…`) is available to the
//! security stage as a consumer identity.
//!
//! The files are polled ([`TlsCfg::reload_interval`]); when their bytes change
//! (secret rotation, cert-manager renewal) the configuration is rebuilt and new
//! connections use it. A change that does not build (unreadable file, key that
//! does not match, bad CA) keeps the last good configuration; both outcomes are
//! counted in `mgw_tls_reloads_total{result}`.
//!
//! Never: accept a client certificate the CA did not sign (rustls verifies; the
//! subject is read only from a verified chain); panic on a malformed certificate
//! (the subject reader is bounds-checked and gives up quietly); drop a working
//! configuration for a broken one.

use std::sync::{Arc, Mutex, RwLock};

use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::bundle::{ClientAuth, TlsCfg};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the certificate chain `{path}`: {message}")]
    Cert { path: String, message: String },
    #[error("cannot read the private key `{path}`: {message}")]
    Key { path: String, message: String },
    #[error("cannot read the client CA bundle `{path}`: {message}")]
    ClientCa { path: String, message: String },
    #[error("invalid TLS configuration: {0}")]
    Config(String),
}

/// The listener's TLS configuration, replaced when the mounted files change.
pub struct Reloading {
    cfg: TlsCfg,
    current: RwLock<Arc<rustls::ServerConfig>>,
    /// The file bytes last acted on (applied or refused).
    seen: Mutex<Vec<u8>>,
}

impl Reloading {
    /// Reads the files now: a broken set at start is a configuration error.
    pub fn load(cfg: &TlsCfg) -> Result<Arc<Self>, TlsError> {
        let seen = fingerprint(cfg);
        let config = server_config(cfg)?;
        Ok(Arc::new(Self {
            cfg: cfg.clone(),
            current: RwLock::new(config),
            seen: Mutex::new(seen),
        }))
    }

    /// The configuration for a new connection.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(
            self.current
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        )
    }

    /// Rebuilds the configuration if the files changed since the last look:
    /// `None` when unchanged, else whether the new set was applied.
    pub fn reload(&self) -> Option<Result<(), TlsError>> {
        // Read before building: a change in between only causes one more reload.
        let bytes = fingerprint(&self.cfg);
        {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            if *seen == bytes {
                return None;
            }
            *seen = bytes;
        }
        Some(server_config(&self.cfg).map(|config| {
            *self.current.write().unwrap_or_else(|e| e.into_inner()) = config;
        }))
    }

    /// Polls the files until the gateway stops.
    pub fn watch(
        self: &Arc<Self>,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> tokio::task::JoinHandle<()> {
        let me = Arc::downgrade(self);
        let every = self.cfg.reload_interval;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(me) = me.upgrade() else { return };
                // File reads and PEM parsing stay off the request path's workers.
                match tokio::task::spawn_blocking(move || me.reload()).await {
                    Err(_) | Ok(None) => {}
                    Ok(Some(Ok(()))) => {
                        tracing::info!("TLS certificate files reloaded");
                        metrics.tls_reload("success");
                    }
                    Ok(Some(Err(e))) => {
                        tracing::warn!(error = %e, "TLS files changed but do not load; keeping the last good configuration");
                        metrics.tls_reload("error");
                    }
                }
            }
        })
    }
}

/// The bytes of every file the configuration is built from (a missing file
/// reads as its error, so its return is a change too).
fn fingerprint(cfg: &TlsCfg) -> Vec<u8> {
    let mut out = Vec::new();
    for path in [
        Some(&cfg.cert_file),
        Some(&cfg.key_file),
        cfg.client_ca_file.as_ref(),
    ]
    .into_iter()
    .flatten()
    {
        let bytes = std::fs::read(path).unwrap_or_else(|e| e.to_string().into_bytes());
        out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        out.extend_from_slice(&bytes);
    }
    out
}

/// Builds the listener's TLS configuration from the mounted files.
pub fn server_config(cfg: &TlsCfg) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cfg.cert_file)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| TlsError::Cert {
            path: cfg.cert_file.clone(),
            message: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Cert {
            path: cfg.cert_file.clone(),
            message: "no PEM certificate in it".into(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(&cfg.key_file).map_err(|e| TlsError::Key {
        path: cfg.key_file.clone(),
        message: e.to_string(),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = match (&cfg.client_ca_file, cfg.client_auth) {
        (Some(path), ClientAuth::Optional | ClientAuth::Required) => {
            let ca_err = |message: String| TlsError::ClientCa {
                path: path.clone(),
                message,
            };
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(path).map_err(|e| ca_err(e.to_string()))? {
                let cert = cert.map_err(|e| ca_err(e.to_string()))?;
                roots.add(cert).map_err(|e| ca_err(e.to_string()))?;
            }
            if roots.is_empty() {
                return Err(ca_err("no PEM certificate in it".into()));
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if cfg.client_auth == ClientAuth::Optional {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            let verifier = verifier
                .build()
                .map_err(|e| TlsError::Config(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
        _ => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Config(format!("certificate and key do not match: {e}")))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The subject of an X.509 certificate as `CN=…,OU=…,O=…`, in certificate order,
/// with the attributes we know by name (others are skipped).
pub fn subject(cert_der: &[u8]) -> Option<String> {
    // Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version?, serial,
    //   signature, issuer, validity, subject, ... }, ... }
    let (_, cert, _) = der(cert_der, 0x30)?;
    let (_, mut tbs, _) = der(cert, 0x30)?;
    if tbs.first() == Some(&0xa0) {
        tbs = der(tbs, 0xa0)?.2;
    }
    let mut rest = tbs;
    for _ in 0..4 {
        // serial, signature algorithm, issuer, validity
        let (_, _, after) = element(rest)?;
        rest = after;
    }
    let (_, name, _) = der(rest, 0x30)?;
    let mut parts = Vec::new();
    let mut rdns = name;
    while !rdns.is_empty() {
        let (_, set, after) = der(rdns, 0x31)?;
        rdns = after;
        let mut atvs = set;
        while !atvs.is_empty() {
            let (_, atv, after) = der(atvs, 0x30)?;
            atvs = after;
            let (_, oid, value) = der(atv, 0x06)?;
            let (tag, text, _) = element(value)?;
            let label = match oid {
                [0x55, 0x04, 0x03] => "CN",
                [0x55, 0x04, 0x0a] => "O",
                [0x55, 0x04, 0x0b] => "OU",
                [0x55, 0x04, 0x06] => "C",
                [0x55, 0x04, 0x07] => "L",
                [0x55, 0x04, 0x08] => "ST",
                _ => continue,
            };
            // UTF8String, PrintableString, IA5String, T61String
            if !matches!(tag, 0x0c | 0x13 | 0x16 | 0x14) {
                continue;
            }
            let text = std::str::from_utf8(text).ok()?;
            let clean: String = text
                .chars()
                .filter(|c| !c.is_control())
                .map(|c| if c == ',' { ' ' } else { c })
                .collect();
            parts.push(format!("{label}={clean}"));
        }
    }
    (!parts.is_empty()).then(|| parts.join(","))
}

/// One DER element with the expected tag: (tag, contents, rest).
fn der(input: &[u8], tag: u8) -> Option<(u8, &[u8], &[u8])> {
    let r = element(input)?;
    (r.0 == tag).then_some(r)
}

/// One DER element (single-byte tags, definite lengths).
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_the_subject_of_a_generated_certificate() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["client".into()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "client-7");
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "Acme, Inc");
        let cert = params.self_signed(&key).unwrap();
        let s = subject(cert.der()).unwrap();
        assert!(s.contains("CN=client-7"), "{s}");
        assert!(s.contains("O=Acme  Inc"), "{s}");
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = subject(&bytes);
        }
    }
}
