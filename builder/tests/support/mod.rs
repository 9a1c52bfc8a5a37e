//! Test support for the tests that drive the real `mgw` binary: the binary and
//! the musl gateway it bakes, a real HTTPS backend on loopback (rcgen
//! certificates, tokio-rustls) and a gateway started with `mgw run`.
#![allow(dead_code)]

use std::convert::Infallible;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;

pub const MGW: &str = env!("CARGO_BIN_EXE_mgw");

/// The musl gateway binary that `mgw build` bakes into the image.
pub fn gateway() -> PathBuf {
    let p = std::env::var_os("MGW_GATEWAY_BINARY").map_or_else(
        || {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../target/x86_64-unknown-linux-musl/release/mgw-gateway")
        },
        PathBuf::from,
    );
    assert!(
        p.exists(),
        "`{}` is missing: run `make gateway` first (or set MGW_GATEWAY_BINARY)",
        p.display()
    );
    p
}

/// Runs the real `mgw` binary in `cwd`, with the gateway binary to bake and
/// without `SOURCE_DATE_EPOCH` from the caller's environment.
pub fn mgw(args: &[&str], cwd: &Path) -> Output {
    Command::new(MGW)
        .args(args)
        .current_dir(cwd)
        .env_remove("SOURCE_DATE_EPOCH")
        .env("MGW_GATEWAY_BINARY", gateway())
        // The layer cache of these builds stays in target/, not in the
        // home of whoever runs the tests (safe under concurrent builds).
        .env(
            "MGW_CACHE_DIR",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("mgw-cache"),
        )
        .output()
        .unwrap()
}

/// Copies the directory tree `from` to `to` (files and folders only).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A CA and a server certificate for 127.0.0.1 it signed: (CA PEM, cert PEM, key PEM).
pub fn pki() -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(params, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".into()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    (ca.pem(), cert.pem(), key.serialize_pem())
}

/// An HTTPS backend that answers with the request target it received,
/// byte for byte (`tls backend saw <path?query>`).
pub async fn tls_backend(cert: &str, key: &str) -> SocketAddr {
    let certs = CertificateDer::pem_slice_iter(cert.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc = service_fn(|req: Request<hyper::body::Incoming>| async move {
                    let body = format!("tls backend saw {}", req.uri());
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    addr
}

/// A gateway started from a built image with `mgw run <image> --env …`, on
/// `127.0.0.1:0` for both listeners; killed when dropped.
pub struct RunningGateway {
    child: Child,
    /// The API listener, read from the gateway's `gateway ready` log line.
    pub api: SocketAddr,
    logs: Arc<Mutex<Vec<String>>>,
}

impl RunningGateway {
    /// `image` is the build output folder (`out/<name>`); `cache` holds what
    /// `mgw run` extracts from the image.
    pub fn start(image: &Path, env: &[(String, String)], cache: &Path) -> Self {
        let mut cmd = Command::new(MGW);
        cmd.arg("run").arg(image);
        let fixed = [
            ("MGW_LISTEN", "127.0.0.1:0"),
            ("MGW_ADMIN_LISTEN", "127.0.0.1:0"),
            ("MGW_LOG_FORMAT", "text"),
        ];
        let env = env.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        for (k, v) in fixed.into_iter().chain(env) {
            cmd.arg("--env").arg(format!("{k}={v}"));
        }
        let mut child = cmd
            .env("XDG_CACHE_HOME", cache)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        });
        let mut gw = Self {
            child,
            api: SocketAddr::from(([0, 0, 0, 0], 0)),
            logs,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(api) = field(&line, "api=") {
                        gw.api = api.parse().unwrap();
                        return gw;
                    }
                }
                Err(_) => panic!(
                    "`mgw run` did not log its listeners:\n{}",
                    gw.logs().join("\n")
                ),
            }
        }
    }

    /// The gateway's log lines so far (stderr, text format).
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    /// Polls the log until a line contains `needle`; `None` after `limit`.
    pub fn log_line(&self, needle: &str, limit: Duration) -> Option<String> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(l) = self.logs().into_iter().find(|l| l.contains(needle)) {
                return Some(l);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for RunningGateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of `key` (`api=`) in a text log line.
fn field(line: &str, key: &str) -> Option<String> {
    let i = line.find(key)?;
    let rest = &line[i + key.len()..];
    let end = rest.find(' ').unwrap_or(rest.len());
    Some(rest[..end].trim_matches('"').to_owned())
}

/// Uncomments the `#auth:` block `mgw init` scaffolds: the one thing the
/// acceptance criterion lets a user add.
pub fn enable_scaffolded_auth(manifest: &str) -> String {
    let mut out = String::with_capacity(manifest.len());
    let mut in_block = false;
    for line in manifest.lines() {
        if line == "#auth:" {
            in_block = true;
        } else if in_block && !line.starts_with("#  ") {
            in_block = false;
        }
        out.push_str(if in_block { &line[1..] } else { line });
        out.push('\n');
    }
    out
}
