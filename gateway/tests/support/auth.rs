//! Test keys, tokens, certificates and small loopback servers for the security
//! tests. Keys are generated per test run: RSA with the `openssl` CLI, EC and
//! Ed25519 with rcgen (ring).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use super::{TestBody, full};

pub const ISSUER: &str = "https://idp.test";
pub const AUDIENCE: &str = "pets";

/// A private key for signing, with its public half in PEM and JWK form.
#[derive(Clone)]
pub struct SigningKey {
    pub alg: Algorithm,
    pub kid: String,
    pub private_pem: String,
    pub public_pem: String,
    pub jwk: Value,
}

impl SigningKey {
    pub fn encoding(&self) -> EncodingKey {
        match self.alg {
            Algorithm::RS256 | Algorithm::PS256 => {
                EncodingKey::from_rsa_pem(self.private_pem.as_bytes()).unwrap()
            }
            Algorithm::ES256 => EncodingKey::from_ec_pem(self.private_pem.as_bytes()).unwrap(),
            Algorithm::EdDSA => EncodingKey::from_ed_pem(self.private_pem.as_bytes()).unwrap(),
            other => panic!("no test key for {other:?}"),
        }
    }

    /// The same key, used with another algorithm of its family (PS256 for RSA).
    pub fn with_alg(&self, alg: Algorithm) -> SigningKey {
        SigningKey {
            alg,
            ..self.clone()
        }
    }

    pub fn with_kid(&self, kid: &str) -> SigningKey {
        let mut k = self.clone();
        k.kid = kid.into();
        k.jwk["kid"] = kid.into();
        k
    }
}

fn openssl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "`openssl` is needed to generate RSA test keys ({e}); run `apt-get install openssl`"
            )
        });
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A fresh RSA-2048 key (RS256).
pub fn rsa(kid: &str) -> SigningKey {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.pem");
    let p = path.to_str().unwrap();
    openssl(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        p,
    ]);
    let private_pem = std::fs::read_to_string(&path).unwrap();
    let public_pem = String::from_utf8(openssl(&["pkey", "-in", p, "-pubout"])).unwrap();
    let modulus = String::from_utf8(openssl(&["rsa", "-in", p, "-noout", "-modulus"])).unwrap();
    let n = hex::decode(modulus.trim().trim_start_matches("Modulus=")).unwrap();
    let jwk = json!({
        "kty": "RSA", "kid": kid, "use": "sig",
        "n": URL_SAFE_NO_PAD.encode(n), "e": "AQAB",
    });
    SigningKey {
        alg: Algorithm::RS256,
        kid: kid.into(),
        private_pem,
        public_pem,
        jwk,
    }
}

/// One RSA key per test binary (generation takes a moment).
pub fn shared_rsa() -> SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| rsa("rsa-1")).clone()
}

/// A fresh P-256 key (ES256).
pub fn ec(kid: &str) -> SigningKey {
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let raw = kp.public_key_raw();
    assert_eq!(raw.len(), 65);
    let jwk = json!({
        "kty": "EC", "crv": "P-256", "kid": kid,
        "x": URL_SAFE_NO_PAD.encode(&raw[1..33]), "y": URL_SAFE_NO_PAD.encode(&raw[33..]),
    });
    SigningKey {
        alg: Algorithm::ES256,
        kid: kid.into(),
        private_pem: kp.serialize_pem(),
        public_pem: kp.public_key_pem(),
        jwk,
    }
}

/// A fresh Ed25519 key (EdDSA).
pub fn ed(kid: &str) -> SigningKey {
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let jwk = json!({
        "kty": "OKP", "crv": "Ed25519", "kid": kid,
        "x": URL_SAFE_NO_PAD.encode(kp.public_key_raw()),
    });
    SigningKey {
        alg: Algorithm::EdDSA,
        kid: kid.into(),
        private_pem: kp.serialize_pem(),
        public_pem: kp.public_key_pem(),
        jwk,
    }
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Valid claims for the test issuer and audience.
pub fn claims(sub: &str, scope: &str) -> Value {
    json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": sub, "scope": scope,
        "iat": now(), "exp": now() + 600,
    })
}

pub fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

/// A compact JWT with exactly this header and payload, signed by `key` with
/// `alg` (which need not match the header, to build hostile tokens).
pub fn sign_raw(header: &Value, payload: &Value, key: &EncodingKey, alg: Algorithm) -> String {
    let input = format!("{}.{}", b64(header), b64(payload));
    let sig = jsonwebtoken::crypto::sign(input.as_bytes(), key, alg).unwrap();
    format!("{input}.{sig}")
}

/// A well-formed token from `key` (header `alg` and `kid` from the key).
pub fn token(key: &SigningKey, payload: &Value) -> String {
    let header = json!({"alg": format!("{:?}", key.alg), "typ": "JWT", "kid": key.kid});
    sign_raw(&header, payload, &key.encoding(), key.alg)
}

/// A tiny JSON server on loopback whose answer can be changed, counting hits.
pub struct JsonServer {
    pub addr: SocketAddr,
    pub hits: Arc<AtomicUsize>,
    pub body: Arc<Mutex<Value>>,
    stop: Option<oneshot::Sender<()>>,
}

impl JsonServer {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
    /// Stops accepting; the port then refuses connections.
    pub fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// Serves `body` as JSON to every request.
pub async fn json_server(body: Value) -> JsonServer {
    let body = Arc::new(Mutex::new(body));
    let b = body.clone();
    serve(
        move |_req, _form| {
            let v = b.lock().unwrap().clone();
            async move { (StatusCode::OK, v) }
        },
        body,
    )
    .await
}

/// A server whose answer is computed from the request and its form body.
pub async fn serve<F, Fut>(handler: F, body: Arc<Mutex<Value>>) -> JsonServer
where
    F: Fn(http::request::Parts, String) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = (StatusCode, Value)> + Send,
{
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
            let (h, handler) = (h.clone(), handler.clone());
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<Incoming>| {
                    h.fetch_add(1, Ordering::SeqCst);
                    let handler = handler.clone();
                    async move {
                        let (parts, body) = req.into_parts();
                        let form = body
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        let (status, v) =
                            handler(parts, String::from_utf8_lossy(&form).into_owned()).await;
                        let mut res: Response<TestBody> = Response::new(full(v.to_string()));
                        *res.status_mut() = status;
                        Ok::<_, Infallible>(res)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .keep_alive(false)
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    JsonServer {
        addr,
        hits,
        body,
        stop: Some(tx),
    }
}

/// A CA, a server certificate for 127.0.0.1/localhost, and client certificates,
/// written as PEM files into `dir`.
pub struct Pki {
    pub ca_pem: String,
    pub server_cert: String,
    pub server_key: String,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl Pki {
    pub fn new() -> Pki {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "mgw test CA");
        let ca = params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(params, ca_key);
        let key = rcgen::KeyPair::generate().unwrap();
        let params =
            rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
        let cert = params.signed_by(&key, &issuer).unwrap();
        Pki {
            ca_pem: ca.pem(),
            server_cert: cert.pem(),
            server_key: key.serialize_pem(),
            issuer,
        }
    }

    /// A client certificate with this common name: (cert PEM, key PEM).
    pub fn client(&self, cn: &str) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    /// A server certificate for these names: (cert PEM, key PEM).
    pub fn server(&self, names: &[&str]) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let cert = rcgen::CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &self.issuer)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    /// Writes `ca.crt`, `tls.crt`, `tls.key` into `dir`.
    pub fn write(&self, dir: &Path) {
        std::fs::write(dir.join("ca.crt"), &self.ca_pem).unwrap();
        std::fs::write(dir.join("tls.crt"), &self.server_cert).unwrap();
        std::fs::write(dir.join("tls.key"), &self.server_key).unwrap();
    }
}

pub fn bytes_of(v: &str) -> Bytes {
    Bytes::copy_from_slice(v.as_bytes())
}
