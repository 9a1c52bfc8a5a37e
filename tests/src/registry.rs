//! A real registry for tests (Debian's `docker-registry`, i.e. CNCF distribution),
//! started on loopback with a temp config in one of three set-ups — no auth,
//! htpasswd basic auth, token auth with a token server the test runs — plus a
//! fault-injecting HTTP proxy to put in front of it. Everything stops on drop.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::{Guard, free_port, require, wait_for};

/// How the registry authenticates.
pub enum Auth {
    None,
    /// htpasswd (bcrypt) with one user.
    Basic {
        user: String,
        password: String,
    },
    /// `auth.token` with a token server run by the test; the server accepts one user.
    Token {
        user: String,
        password: String,
        expires_in: u64,
    },
}

/// A running registry.
pub struct Registry {
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    pub token_server: Option<TokenServer>,
    _child: Guard,
}

impl Registry {
    pub fn start(auth: Auth) -> Result<Registry> {
        require("docker-registry", "apt-get install docker-registry");
        let dir = tempfile::tempdir()?;
        let port = free_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
        let mut config = format!(
            "version: 0.1\nlog:\n  level: info\n  formatter: text\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n  secret: mgw-test-secret\n",
            dir.path().join("data").display()
        );
        let mut token_server = None;
        match &auth {
            Auth::None => {}
            Auth::Basic { user, password } => {
                let hash = bcrypt::hash(password, 4)?;
                let path = dir.path().join("htpasswd");
                std::fs::write(&path, format!("{user}:{hash}\n"))?;
                config.push_str(&format!(
                    "auth:\n  htpasswd:\n    realm: mgw-test\n    path: {}\n",
                    path.display()
                ));
            }
            Auth::Token {
                user,
                password,
                expires_in,
            } => {
                let ts = TokenServer::start(user, password, *expires_in, dir.path())?;
                config.push_str(&format!(
                    "auth:\n  token:\n    realm: http://{}/token\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
                    ts.addr,
                    TokenServer::SERVICE,
                    TokenServer::ISSUER,
                    ts.cert_path.display()
                ));
                token_server = Some(ts);
            }
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config)?;
        let log = std::fs::File::create(dir.path().join("registry.log"))?;
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("cannot start docker-registry")?;
        let registry = Registry {
            addr,
            dir,
            token_server,
            _child: Guard(child),
        };
        let up = wait_for(Duration::from_secs(20), || {
            crate::http_get(addr, "/v2/", &[])
                .ok()
                .filter(|(s, _)| *s == 200 || *s == 401)
        });
        if up.is_none() {
            bail!("docker-registry did not come up:\n{}", registry.log());
        }
        Ok(registry)
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// The registry's log (access lines included).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// How many requests the log shows touching blob uploads.
    pub fn upload_requests(&self) -> usize {
        self.log()
            .lines()
            .filter(|l| l.contains("response completed") && l.contains("/blobs/uploads/"))
            .count()
    }
}

/// A token server for the registry's `auth.token`: checks basic auth against one
/// user and issues ES256 JWTs with an `x5c` header, for every scope asked for.
pub struct TokenServer {
    pub addr: SocketAddr,
    pub cert_path: PathBuf,
    /// Tokens issued.
    pub issued: Arc<AtomicU64>,
    /// Requests refused (bad or missing credentials).
    pub refused: Arc<AtomicU64>,
    /// Every token issued (secrets the tests look for in mgw's output).
    pub tokens: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl TokenServer {
    pub const SERVICE: &'static str = "mgw-test-registry";
    pub const ISSUER: &'static str = "mgw-test-issuer";

    fn start(user: &str, password: &str, expires_in: u64, dir: &Path) -> Result<TokenServer> {
        let key = rcgen::KeyPair::generate()?;
        let params = rcgen::CertificateParams::new(vec!["mgw-test-token-signer".to_owned()])?;
        let cert = params.self_signed(&key)?;
        let cert_path = dir.join("token-signer.pem");
        std::fs::write(&cert_path, cert.pem())?;
        let encoding = jsonwebtoken::EncodingKey::from_ec_pem(key.serialize_pem().as_bytes())?;
        let x5c = BASE64.encode(cert.der());
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let issued = Arc::new(AtomicU64::new(0));
        let refused = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let expected = format!("Basic {}", BASE64.encode(format!("{user}:{password}")));
        let tokens = Arc::new(Mutex::new(Vec::new()));
        let (i2, r2, s2, t2) = (
            issued.clone(),
            refused.clone(),
            stop.clone(),
            tokens.clone(),
        );
        std::thread::spawn(move || {
            while !s2.load(Ordering::Relaxed) {
                let Ok((stream, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                let Ok(head) = read_head(&mut BufReader::new(&stream)) else {
                    continue;
                };
                let authorized = head.header("authorization") == Some(expected.as_str());
                let (status, body) = if !authorized {
                    r2.fetch_add(1, Ordering::Relaxed);
                    (
                        "401 Unauthorized",
                        r#"{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}"#
                            .to_owned(),
                    )
                } else {
                    let query = head.target.split_once('?').map(|(_, q)| q).unwrap_or("");
                    let mut access = Vec::new();
                    for (k, v) in query.split('&').filter_map(|kv| kv.split_once('=')) {
                        if k != "scope" {
                            continue;
                        }
                        let v = percent_decode(v);
                        let mut parts = v.splitn(3, ':');
                        if let (Some(kind), Some(name), Some(actions)) =
                            (parts.next(), parts.next(), parts.next())
                        {
                            access.push(serde_json::json!({
                                "type": kind, "name": name,
                                "actions": actions.split(',').collect::<Vec<_>>(),
                            }));
                        }
                    }
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap()
                        .as_secs();
                    let n = i2.fetch_add(1, Ordering::Relaxed);
                    let claims = serde_json::json!({
                        "iss": TokenServer::ISSUER, "sub": "ci", "aud": TokenServer::SERVICE,
                        "exp": now + expires_in, "nbf": now - 5, "iat": now,
                        "jti": format!("mgw-test-{n}"), "access": access,
                    });
                    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
                    header.x5c = Some(vec![x5c.clone()]);
                    let token = jsonwebtoken::encode(&header, &claims, &encoding).unwrap();
                    t2.lock().unwrap().push(token.clone());
                    (
                        "200 OK",
                        serde_json::json!({"token": token, "access_token": token, "expires_in": expires_in}).to_string(),
                    )
                };
                let res = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = (&stream).write_all(res.as_bytes());
            }
        });
        Ok(TokenServer {
            addr,
            cert_path,
            issued,
            refused,
            tokens,
            stop,
        })
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                    out.push(b);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A request head as the proxy and token server see it.
#[derive(Debug, Clone)]
pub struct Head {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    raw_lines: Vec<String>,
}

impl Head {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    /// The path without the query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }
    fn content_length(&self) -> u64 {
        self.header("content-length")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }
}

fn read_head(reader: &mut impl BufRead) -> Result<Head> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        bail!("eof");
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().context("no method")?.to_owned();
    let target = parts.next().context("no target")?.to_owned();
    if !parts.next().is_some_and(|v| v.starts_with("HTTP/")) {
        bail!("not HTTP");
    }
    let mut headers = Vec::new();
    let mut raw_lines = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 {
            bail!("eof in head");
        }
        if h == "\r\n" || h == "\n" {
            break;
        }
        raw_lines.push(h.trim_end().to_owned());
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    Ok(Head {
        method,
        target,
        headers,
        raw_lines,
    })
}

/// What the proxy does with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Forward,
    /// Read the request, answer this status without forwarding.
    Fail(u16),
    /// Forward the head and this many body bytes, then close both connections.
    Cut(u64),
    /// Forward the head and this many body bytes, then hang (until the proxy drops).
    Stall(u64),
    /// Wait this many milliseconds, then forward.
    Delay(u64),
}

/// Counters the proxy keeps.
#[derive(Debug, Default)]
pub struct ProxyStats {
    pub requests: AtomicU64,
    /// Body bytes of requests forwarded to `/blobs/uploads/` (what reached the registry).
    pub upload_bytes: AtomicU64,
    pub failed: AtomicU64,
    pub cut: AtomicU64,
    pub stalled: AtomicU64,
}

type Rule = Box<dyn Fn(&Head, u64) -> Action + Send + Sync>;

/// An HTTP/1.1 proxy in front of a registry that can fail, cut or stall requests.
/// One request per connection (it answers `Connection: close`), which is all a
/// registry client needs and keeps the proxy simple.
pub struct FaultProxy {
    pub addr: SocketAddr,
    pub stats: Arc<ProxyStats>,
    rule: Arc<Mutex<Rule>>,
    stop: Arc<AtomicBool>,
    /// Per-(method, path) request counts, for rules like "fail twice each".
    pub seen: Arc<Mutex<HashMap<String, u64>>>,
}

impl FaultProxy {
    /// A proxy to `upstream` forwarding everything until [`FaultProxy::set_rule`].
    pub fn start(upstream: SocketAddr) -> Result<FaultProxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let stats = Arc::new(ProxyStats::default());
        let rule: Arc<Mutex<Rule>> = Arc::new(Mutex::new(Box::new(|_, _| Action::Forward)));
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(HashMap::new()));
        let (st, ru, sp, se) = (stats.clone(), rule.clone(), stop.clone(), seen.clone());
        std::thread::spawn(move || {
            while !sp.load(Ordering::Relaxed) {
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                let (st, ru, sp, se) = (st.clone(), ru.clone(), sp.clone(), se.clone());
                std::thread::spawn(move || {
                    let _ = handle(client, upstream, &st, &ru, &sp, &se);
                });
            }
        });
        Ok(FaultProxy {
            addr,
            stats,
            rule,
            stop,
            seen,
        })
    }

    /// Replaces the rule: `f(head, n)` where `n` counts earlier requests with the
    /// same method and path (0 for the first).
    pub fn set_rule(&self, f: impl Fn(&Head, u64) -> Action + Send + Sync + 'static) {
        *self.rule.lock().unwrap() = Box::new(f);
    }

    pub fn host(&self) -> String {
        self.addr.to_string()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn handle(
    client: TcpStream,
    upstream: SocketAddr,
    stats: &ProxyStats,
    rule: &Mutex<Rule>,
    stop: &AtomicBool,
    seen: &Mutex<HashMap<String, u64>>,
) -> Result<()> {
    client.set_nonblocking(false)?;
    client.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(client.try_clone()?);
    let head = read_head(&mut reader)?;
    stats.requests.fetch_add(1, Ordering::Relaxed);
    let key = format!("{} {}", head.method, head.path());
    let n = {
        let mut s = seen.lock().unwrap();
        let c = s.entry(key).or_insert(0);
        *c += 1;
        *c - 1
    };
    let action = (rule.lock().unwrap())(&head, n);
    let len = head.content_length();
    let mut client_w = client;
    if let Action::Fail(status) = action {
        stats.failed.fetch_add(1, Ordering::Relaxed);
        std::io::copy(&mut (&mut reader).take(len), &mut std::io::sink())?;
        let body = r#"{"errors":[{"code":"UNKNOWN","message":"injected failure"}]}"#;
        write!(
            client_w,
            "HTTP/1.1 {status} Injected\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )?;
        return Ok(());
    }
    if let Action::Delay(ms) = action {
        std::thread::sleep(Duration::from_millis(ms));
    }
    let mut up = TcpStream::connect(upstream)?;
    let mut out = format!("{} {} HTTP/1.1\r\n", head.method, head.target);
    for l in &head.raw_lines {
        if !l.to_ascii_lowercase().starts_with("connection:") {
            out.push_str(l);
            out.push_str("\r\n");
        }
    }
    out.push_str("Connection: close\r\n\r\n");
    up.write_all(out.as_bytes())?;
    let is_upload = head.path().contains("/blobs/uploads/");
    let limit = match action {
        Action::Cut(n) | Action::Stall(n) => n.min(len),
        _ => len,
    };
    let mut body = (&mut reader).take(limit);
    let mut buf = [0u8; 16 * 1024];
    loop {
        let k = body.read(&mut buf)?;
        if k == 0 {
            break;
        }
        up.write_all(&buf[..k])?;
        if is_upload {
            stats.upload_bytes.fetch_add(k as u64, Ordering::Relaxed);
        }
    }
    match action {
        Action::Cut(_) => {
            stats.cut.fetch_add(1, Ordering::Relaxed);
            let _ = up.shutdown(std::net::Shutdown::Both);
            let _ = client_w.shutdown(std::net::Shutdown::Both);
            return Ok(());
        }
        Action::Stall(_) => {
            stats.stalled.fetch_add(1, Ordering::Relaxed);
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
            }
            return Ok(());
        }
        _ => {}
    }
    up.set_read_timeout(Some(Duration::from_secs(60)))?;
    std::io::copy(&mut up, &mut client_w)?;
    let _ = client_w.shutdown(std::net::Shutdown::Write);
    Ok(())
}
