//! An image built from a project with rate-limit policies
//! (`examples/petstore-ratelimit`) enforces them when run the way users run it:
//! unpacked and started by runc, and loaded and started by dockerd. Each test
//! builds into its own temp dir and starts (and stops) its own tools.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use mgw_tests::*;

struct Built {
    _dir: tempfile::TempDir,
    out: PathBuf,
    meta: serde_json::Value,
}

fn build_example() -> Built {
    let dir = tempfile::tempdir().unwrap();
    let out = run(Command::new(mgw_bin())
        .args(["build", "--output", "json", "--out"])
        .arg(dir.path())
        .arg(root().join("examples/petstore-ratelimit"))
        .env("MGW_GATEWAY_BINARY", gateway_bin())
        .env_remove("SOURCE_DATE_EPOCH"))
    .unwrap();
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    Built {
        out: dir.path().join("petstore-ratelimit"),
        _dir: dir,
        meta,
    }
}

/// A blocking GET that keeps the response headers (lowercased names).
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no `{name}` in {:?}", self.headers))
    }
}

fn fetch(addr: SocketAddr, path: &str) -> Answer {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.get(9..12))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {text:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Answer {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// What both runtimes must show: `getPet` allows 3 requests a minute per client
/// (`lookups`, on top of the API's `per-client`), then answers 429.
fn check_enforced(api: SocketAddr, admin: SocketAddr) {
    for remaining in [2, 1, 0] {
        let a = fetch(api, "/petstore/v1/pets/7");
        assert_eq!(a.status, 200, "{}", a.body);
        assert!(a.body.contains("/v1/pets/7"), "{}", a.body);
        let state = a.header("ratelimit");
        assert!(
            state.contains(&format!("\"lookups\";r={remaining};t=")),
            "{state}"
        );
        assert!(state.contains("\"per-client\";r="), "{state}");
    }
    let a = fetch(api, "/petstore/v1/pets/7");
    assert_eq!(a.status, 429, "{}", a.body);
    let retry: u64 = a.header("retry-after").parse().unwrap();
    assert!((1..=20).contains(&retry), "{retry}");
    assert!(
        a.header("ratelimit-policy")
            .contains("\"lookups\";q=3;w=60"),
        "{:?}",
        a.headers
    );
    assert_eq!(a.header("x-ratelimit-remaining"), "0");
    assert_eq!(a.header("content-type"), "application/problem+json");
    let body: serde_json::Value = serde_json::from_str(&a.body).unwrap();
    assert_eq!(body["violated-policies"], serde_json::json!(["lookups"]));
    // Other operations keep their own budgets.
    assert_eq!(fetch(api, "/petstore/v1/pets").status, 200);
    let (status, metrics) = http_get(admin, "/metrics", &[]).unwrap();
    assert_eq!(status, 200);
    assert!(
        metrics.contains(
            r#"mgw_ratelimit_requests_total{policy="lookups",scope="operation:petstore.getPet",outcome="limited"} 1"#
        ),
        "{metrics}"
    );
}

fn wait_ready(admin: SocketAddr, limit: Duration) -> bool {
    wait_for(limit, || {
        http_get(admin, "/readyz", &[])
            .ok()
            .filter(|(s, _)| *s == 200)
    })
    .is_some()
}

fn unpack(img: &Built, into: &Path) -> PathBuf {
    require("umoci", "apt-get install umoci");
    let bundle = into.join("bundle");
    run(Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!(
            "{}:{}",
            img.out.join("oci").display(),
            img.meta["tag"].as_str().unwrap()
        ))
        .arg(&bundle))
    .unwrap();
    bundle
}

#[test]
fn runc_runs_an_image_that_enforces_its_rate_limits() {
    require("runc", "apt-get install runc");
    let img = build_example();
    let dir = tempfile::Builder::new()
        .prefix("mgwrl")
        .tempdir_in("/tmp")
        .unwrap();
    let bundle = unpack(&img, dir.path());
    let backend = Backend::start();
    let (api, admin) = (free_port(), free_port());

    let cfg_path = bundle.join("config.json");
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&cfg_path).unwrap()).unwrap();
    cfg["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "network");
    cfg["root"]["readonly"] = true.into();
    cfg["process"]["terminal"] = false.into();
    let env = cfg["process"]["env"].as_array_mut().unwrap();
    env.push(format!("MGW_LISTEN=127.0.0.1:{api}").into());
    env.push(format!("MGW_ADMIN_LISTEN=127.0.0.1:{admin}").into());
    env.push(format!("PETSTORE_UPSTREAM=http://{}/v1", backend.addr).into());
    std::fs::write(&cfg_path, serde_json::to_vec(&cfg).unwrap()).unwrap();

    let state = dir.path().join("state");
    let id = format!("mgw-rl-{}", std::process::id());
    let log_path = dir.path().join("container.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let runc = |args: &[&str]| {
        Command::new("runc")
            .arg("--root")
            .arg(&state)
            .args(args)
            .output()
            .unwrap()
    };
    let status = Command::new("runc")
        .arg("--root")
        .arg(&state)
        .args(["run", "--detach", "--bundle"])
        .arg(&bundle)
        .arg(&id)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .status()
        .unwrap();
    let _cleanup = Cleanup(Some(|| {
        let _ = runc(&["kill", &id, "KILL"]);
        let _ = runc(&["delete", "--force", &id]);
    }));
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    assert!(status.success(), "runc run failed: {}", log());
    let admin_addr: SocketAddr = format!("127.0.0.1:{admin}").parse().unwrap();
    assert!(
        wait_ready(admin_addr, Duration::from_secs(20)),
        "gateway in runc never became ready: {}",
        log()
    );
    check_enforced(format!("127.0.0.1:{api}").parse().unwrap(), admin_addr);
    assert!(runc(&["kill", &id, "TERM"]).status.success());
}

#[test]
fn dockerd_runs_an_image_that_enforces_its_rate_limits() {
    let img = build_example();
    let docker = Dockerd::start().unwrap();
    let tarball = img.out.join("image.tar");
    docker
        .docker(&["load", "-i", tarball.to_str().unwrap()])
        .unwrap();
    let backend = Backend::start();
    let (api, admin) = (free_port(), free_port());
    let name = format!("mgw-rl-{}", std::process::id());
    docker
        .docker(&[
            "run",
            "-d",
            "--name",
            &name,
            "--network",
            "host",
            "--read-only",
            "--cap-drop",
            "ALL",
            "-e",
            &format!("MGW_LISTEN=127.0.0.1:{api}"),
            "-e",
            &format!("MGW_ADMIN_LISTEN=127.0.0.1:{admin}"),
            "-e",
            &format!("PETSTORE_UPSTREAM=http://{}/v1", backend.addr),
            img.meta["reference"].as_str().unwrap(),
        ])
        .unwrap();
    let _cleanup = Cleanup(Some(|| {
        let _ = docker.docker(&["rm", "-f", &name]);
    }));
    let admin_addr: SocketAddr = format!("127.0.0.1:{admin}").parse().unwrap();
    if !wait_ready(admin_addr, Duration::from_secs(30)) {
        let logs = docker.docker_cmd().args(["logs", &name]).output().unwrap();
        panic!(
            "gateway in docker never became ready: {}",
            String::from_utf8_lossy(&logs.stderr)
        );
    }
    check_enforced(format!("127.0.0.1:{api}").parse().unwrap(), admin_addr);
}

/// Runs its closure when dropped, also when an assertion fails.
struct Cleanup<F: FnOnce()>(Option<F>);

impl<F: FnOnce()> Drop for Cleanup<F> {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f();
        }
    }
}
