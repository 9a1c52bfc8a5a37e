//! Harness for end-to-end tests across the mgw binaries, with real tools.
//!
//! Every external program (runc, umoci, skopeo, dockerd) is started by the test
//! and stopped when its guard drops. A test that cannot find its program fails
//! with the install step to run: it never passes silently. Servers bind
//! `127.0.0.1:0`; nothing here talks to anything but loopback.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

pub mod container;
pub mod idp;
pub mod qemu;
pub mod registry;

pub use container::{DockerContainer, RuncContainer};

/// Copies the directory tree `from` to `to`, leaving out `target` folders
/// (a project's runtime build output).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() == "target" {
            continue;
        }
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
        .to_path_buf()
}

/// The workspace's cargo target directory (`$CARGO_TARGET_DIR`, else `target/`).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from)
}

/// The `mgw` CLI built by `cargo test --workspace` (debug profile).
pub fn mgw_bin() -> PathBuf {
    let p = target_dir().join("debug/mgw");
    assert!(
        p.exists(),
        "`{}` is missing: run the tests with `cargo test --workspace` (or `make test`)",
        p.display()
    );
    p
}

/// The static gateway binary that goes into images.
pub fn gateway_bin() -> PathBuf {
    let p = std::env::var_os("MGW_GATEWAY_BINARY").map_or_else(
        || target_dir().join("x86_64-unknown-linux-musl/release/mgw-gateway"),
        PathBuf::from,
    );
    assert!(
        p.exists(),
        "static gateway binary `{}` is missing: run `make gateway` first",
        p.display()
    );
    p
}

/// The static aarch64 gateway binary (`make gateway-arm64`):
/// `MGW_GATEWAY_BINARY_ARM64`, else the workspace's aarch64 musl release build.
pub fn gateway_bin_arm64() -> PathBuf {
    let p = std::env::var_os("MGW_GATEWAY_BINARY_ARM64").map_or_else(
        || target_dir().join("aarch64-unknown-linux-musl/release/mgw-gateway"),
        PathBuf::from,
    );
    assert!(
        p.exists(),
        "static arm64 gateway binary `{}` is missing: run `make gateway-arm64` first",
        p.display()
    );
    p
}

/// Fails the test with an install hint when a program is missing.
pub fn require(program: &str, install: &str) {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "`{program}` is not installed; run `{install}` (or `bash scripts/setup.sh`)"
    );
}

/// Runs a command, failing with its output when it does not succeed.
pub fn run(cmd: &mut Command) -> Result<Output> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed with {}\nstdout:\n{}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out)
}

/// Polls until `f` returns `Some`, up to `limit` (a safety bound, not an assertion).
pub fn wait_for<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if start.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A minimal blocking HTTP/1.1 GET over loopback; returns status and body.
pub fn http_get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Result<(u16, String)> {
    let r = http_request(addr, "GET", path, headers, b"")?;
    Ok((r.status, r.body))
}

/// What [`http_request`] read.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    /// The status line and header lines, as received.
    pub head: String,
    pub body: String,
}

impl HttpResponse {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// A minimal blocking HTTP/1.1 request over loopback (`Content-Length` set
/// when `body` is not empty).
pub fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<HttpResponse> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(15)))?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    s.write_all(body)?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status: u16 = text
        .get(9..12)
        .and_then(|c| c.parse().ok())
        .with_context(|| format!("not an HTTP response: {text:?}"))?;
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    Ok(HttpResponse {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    })
}

/// A free loopback port (bound then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// A tiny HTTP backend on loopback: answers every request with a JSON line
/// naming the path it saw. Runs on its own thread until dropped.
pub struct Backend {
    pub addr: SocketAddr,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Backend {
    pub fn start() -> Backend {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind backend");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::spawn(move || {
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                let Ok((stream, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                std::thread::spawn(move || {
                    let _ = stream.set_nonblocking(false);
                    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
                        let mut headers = Vec::new();
                        loop {
                            let mut h = String::new();
                            if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                                break;
                            }
                            headers.push(h.trim().to_owned());
                        }
                        let body =
                            serde_json::json!({"path": path, "headers": headers}).to_string();
                        let res = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if (&stream).write_all(res.as_bytes()).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Backend { addr, stop }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A child process killed when dropped.
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A private dockerd: own data root, exec root and socket, no iptables, no bridge.
pub struct Dockerd {
    pub host: String,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

static DOCKERD_ONCE: Once = Once::new();

impl Dockerd {
    pub fn start() -> Result<Dockerd> {
        Self::start_with(&[])
    }

    /// A dockerd with extra flags (e.g. `--insecure-registry HOST:PORT`; loopback
    /// registries are insecure-allowed by default).
    pub fn start_with(extra: &[&str]) -> Result<Dockerd> {
        require("dockerd", "apt-get install docker.io");
        require("docker", "apt-get install docker.io");
        DOCKERD_ONCE.call_once(|| {});
        // Short paths: unix socket paths are limited to 108 bytes.
        let dir = tempfile::Builder::new().prefix("mgwd").tempdir_in("/tmp")?;
        let sock = dir.path().join("d.sock");
        let log = std::fs::File::create(dir.path().join("dockerd.log"))?;
        let child = Command::new("dockerd")
            .arg("--data-root")
            .arg(dir.path().join("data"))
            .arg("--exec-root")
            .arg(dir.path().join("exec"))
            .arg("--pidfile")
            .arg(dir.path().join("d.pid"))
            .arg("-H")
            .arg(format!("unix://{}", sock.display()))
            .args(["--iptables=false", "--ip6tables=false", "--bridge=none"])
            .args(extra)
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("cannot start dockerd")?;
        let mut d = Dockerd {
            host: format!("unix://{}", sock.display()),
            dir,
            child: Some(child),
        };
        let ready = wait_for(Duration::from_secs(60), || {
            d.docker(&["version"]).ok().map(|_| ())
        });
        if ready.is_none() {
            let log = std::fs::read_to_string(d.dir.path().join("dockerd.log")).unwrap_or_default();
            let _ = d.child.take().map(|mut c| {
                let _ = c.kill();
                c.wait()
            });
            bail!("dockerd did not come up:\n{log}");
        }
        Ok(d)
    }

    pub fn docker(&self, args: &[&str]) -> Result<Output> {
        run(Command::new("docker").arg("-H").arg(&self.host).args(args))
    }

    pub fn docker_cmd(&self) -> Command {
        let mut c = Command::new("docker");
        c.arg("-H").arg(&self.host);
        c.stdin(Stdio::null());
        c
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SIGTERM lets dockerd stop its containerd and unmount.
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            if wait_for(Duration::from_secs(20), || c.try_wait().ok().flatten()).is_none() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        // dockerd leaves its network namespace bind-mounted under the exec
        // root (`exec/netns/default`), which keeps the temp dir from going away.
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
        for point in mounts.lines().filter_map(|l| l.split(' ').nth(1)) {
            if Path::new(point).starts_with(self.dir.path()) {
                let _ = Command::new("umount").args(["-l", point]).status();
            }
        }
    }
}

/// The project-local tool directory that `scripts/setup.sh` fills (Helm, kubectl,
/// kubernetes-validate): `$MGW_TOOLS_DIR/bin`, else `target/tools/bin` in the
/// workspace.
pub fn tools_bin_dir() -> PathBuf {
    std::env::var_os("MGW_TOOLS_DIR")
        .map_or_else(|| root().join("target/tools"), PathBuf::from)
        .join("bin")
}

/// Finds a program in the project-local tool directory, then on PATH; fails the
/// test with the install step when it is in neither.
pub fn tool(program: &str, install: &str) -> PathBuf {
    let local = tools_bin_dir().join(program);
    if local.is_file() {
        return local;
    }
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(program))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| {
            panic!(
                "`{program}` is not installed in `{}` nor on PATH; run `bash scripts/setup.sh` (or `{install}`)",
                tools_bin_dir().display()
            )
        })
}

/// An image that `mgw build` wrote into a temp dir (removed on drop).
pub struct BuiltImage {
    _dir: tempfile::TempDir,
    /// `<out>/<name>`: `oci/` (the layout), `image.tar`, `build.json`.
    pub out: PathBuf,
    /// `mgw build --output json`.
    pub meta: serde_json::Value,
}

impl BuiltImage {
    /// Builds `project` (whose `mgw.yaml` names it `name`) with the static
    /// gateway binary, `SOURCE_DATE_EPOCH` unset.
    pub fn build(project: &Path, name: &str) -> BuiltImage {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = run(Command::new(mgw_bin())
            .args(["build", "--output", "json", "--out"])
            .arg(dir.path())
            .arg(project)
            .env("MGW_GATEWAY_BINARY", gateway_bin())
            .env_remove("SOURCE_DATE_EPOCH"))
        .unwrap_or_else(|e| panic!("{e:#}"));
        let meta = serde_json::from_slice(&out.stdout).expect("mgw build --output json");
        BuiltImage {
            out: dir.path().join(name),
            _dir: dir,
            meta,
        }
    }

    pub fn layout(&self) -> PathBuf {
        self.out.join("oci")
    }

    pub fn tarball(&self) -> PathBuf {
        self.out.join("image.tar")
    }

    fn field(&self, key: &str) -> &str {
        self.meta[key]
            .as_str()
            .unwrap_or_else(|| panic!("no `{key}` in {}", self.meta))
    }

    pub fn tag(&self) -> &str {
        self.field("tag")
    }

    pub fn reference(&self) -> &str {
        self.field("reference")
    }

    pub fn digest(&self) -> &str {
        self.field("digest")
    }
}
