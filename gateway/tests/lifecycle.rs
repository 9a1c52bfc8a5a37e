//! The real `mgw-gateway` binary: start-up errors and graceful shutdown.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use support::*;

const BIN: &str = env!("CARGO_BIN_EXE_mgw-gateway");

fn write_bundle(dir: &std::path::Path, v: &serde_json::Value) -> std::path::PathBuf {
    let p = dir.join("bundle.json");
    std::fs::write(&p, serde_json::to_vec(v).unwrap()).unwrap();
    p
}

#[test]
fn bad_bundle_exits_64_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut v = bundle_json(&["http://127.0.0.1:1".into()]);
    v["apis"][0]["operations"][2]["methd"] = "GET".into();
    let p = write_bundle(dir.path(), &v);
    let out = Command::new(BIN).arg("--bundle").arg(&p).output().unwrap();
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("apis[0].operations[2]") && err.contains("methd"),
        "{err}"
    );

    let v = bundle_json(&["${PETS_UPSTREAM}".into()]);
    let p = write_bundle(dir.path(), &v);
    let out = Command::new(BIN)
        .arg("--bundle")
        .arg(&p)
        .env_remove("PETS_UPSTREAM")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("upstreams.pets.urls[0]") && err.contains("PETS_UPSTREAM"),
        "{err}"
    );

    let out = Command::new(BIN)
        .arg("--bundle")
        .arg(dir.path().join("missing.json"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.json"));

    let p = write_bundle(dir.path(), &bundle_json(&["http://127.0.0.1:1".into()]));
    let out = Command::new(BIN)
        .arg("--bundle")
        .arg(&p)
        .args(["--bundle-digest", "sha256:0000"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("modified"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The command line of the real binary: help and version exit 0 on stdout; a
/// usage error (an unknown flag, a bad value from a flag or its environment
/// variable) exits 2 naming what is wrong, before any bundle is read.
#[test]
fn command_line_help_version_and_usage_errors() {
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env_remove("MGW_WORKERS")
            .env_remove("MGW_LOG_FORMAT");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (out.status.code(), text(&out.stdout), text(&out.stderr))
    };
    let (code, out, _) = run(&["--help"], &[]);
    assert_eq!(code, Some(0));
    for flag in [
        "--bundle <BUNDLE>",
        "MGW_BUNDLE",
        "--bundle-digest",
        "--workers",
        "MGW_WORKERS",
        "--log-format",
        "--list-filters",
    ] {
        assert!(out.contains(flag), "{flag} missing from --help: {out}");
    }
    let (code, out, _) = run(&["--version"], &[]);
    assert_eq!(
        (code, out.trim()),
        (Some(0), concat!("mgw-gateway ", env!("CARGO_PKG_VERSION")))
    );
    // The bundle would be missing (exit 64): usage errors come first.
    let missing = ["--bundle", "/nonexistent/bundle.json"];
    for (args, env, names) in [
        (&["--bundel", "x"][..], &[][..], "--bundel"),
        (&missing[..], &[("MGW_WORKERS", "many")][..], "many"),
        (&missing[..], &[("MGW_LOG_FORMAT", "xml")][..], "'xml'"),
        (
            &["--bundle", "/a", "--bundle", "/b"][..],
            &[][..],
            "'--bundle'",
        ),
    ] {
        let (code, out, err) = run(args, env);
        assert_eq!(code, Some(2), "{args:?} {env:?}: {err}");
        assert!(
            err.contains(names) && err.contains("--help"),
            "{args:?} {env:?}: {err}"
        );
        assert!(out.is_empty(), "{out}");
    }
}

#[tokio::test]
async fn sigterm_drains_in_flight_request_then_exits_0() {
    let b = backend("a").await;
    let dir = tempfile::tempdir().unwrap();
    let mut v = bundle_json(&[format!("http://{}", b.addr)]);
    v["upstreams"]["pets"]["requestTimeoutMs"] = 10_000.into();
    let p = write_bundle(dir.path(), &v);
    let (mut child, api, admin) = spawn_gateway(&p, &[]);

    let slow = tokio::spawn(get_owned(format!("http://{api}/pets-api/v1/slow/1500")));
    // SIGTERM only once the slow request is in flight (at the backend).
    let arrived = eventually(Duration::from_secs(10), || async {
        b.hits.load(std::sync::atomic::Ordering::SeqCst) == 1
    })
    .await;
    assert!(arrived, "the slow request never reached the backend");
    sigterm(&child);
    // Draining: readiness fails while the slow request is still running (once
    // it ends the gateway exits and the admin port is gone).
    let draining = eventually(Duration::from_secs(10), || async {
        let req = http::Request::get(format!("http://{admin}/readyz"))
            .body(full(""))
            .unwrap();
        matches!(client().request(req).await,
                 Ok(r) if r.status() == http::StatusCode::SERVICE_UNAVAILABLE)
    })
    .await;
    assert!(draining, "readiness never failed after SIGTERM");
    let r = slow.await.unwrap();
    assert_eq!(r.0, http::StatusCode::OK);
    assert_eq!(r.1, "slow done");
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

/// `--workers 3`: three current-thread runtimes, each accepting on its own
/// `SO_REUSEPORT` listener of the one port. The kernel spreads connections
/// over all of them, and SIGTERM drains the requests in flight on every one.
#[tokio::test]
async fn every_worker_serves_and_sigterm_drains_them_all() {
    const CONNECTIONS: usize = 24;
    let b = backend("a").await;
    let dir = tempfile::tempdir().unwrap();
    let mut v = bundle_json(&[format!("http://{}", b.addr)]);
    v["upstreams"]["pets"]["requestTimeoutMs"] = 10_000.into();
    let p = write_bundle(dir.path(), &v);
    let (mut child, api, admin) = spawn_gateway(&p, &["--workers", "3"]);

    // One slow request per connection: all in flight at once, so each has a
    // connection of its own.
    let slow: Vec<_> = (0..CONNECTIONS)
        .map(|_| tokio::spawn(get_owned(format!("http://{api}/pets-api/v1/slow/1500"))))
        .collect();
    let arrived = eventually(Duration::from_secs(10), || async {
        b.hits.load(std::sync::atomic::Ordering::SeqCst) == CONNECTIONS
    })
    .await;
    assert!(
        arrived,
        "not every request reached the backend (a worker that does not accept?)"
    );
    let text = get(&format!("http://{admin}/metrics")).await.body;
    let text = String::from_utf8_lossy(&text);
    let accepted: Vec<f64> = (0..3)
        .map(|w| {
            let sample = format!("mgw_connections_accepted_total{{worker=\"{w}\"}} ");
            text.lines()
                .find_map(|l| l.strip_prefix(&sample)?.trim().parse().ok())
                .unwrap_or(0.0)
        })
        .collect();
    assert!(
        accepted.iter().all(|n| *n > 0.0),
        "accepted per worker: {accepted:?}"
    );
    assert_eq!(
        accepted.iter().sum::<f64>(),
        CONNECTIONS as f64,
        "{accepted:?}"
    );

    sigterm(&child);
    for r in slow {
        let r = r.await.unwrap();
        assert_eq!((r.0, r.1.as_str()), (http::StatusCode::OK, "slow done"));
    }
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

/// Starts the binary on `bundle` with `args`; its API and admin addresses
/// are read from the ready log line (the listeners bind port 0).
/// Sends SIGTERM to the gateway process.
fn sigterm(child: &std::process::Child) {
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
}

fn spawn_gateway(bundle: &std::path::Path, args: &[&str]) -> (std::process::Child, String, String) {
    let mut child = Command::new(BIN)
        .arg("--bundle")
        .arg(bundle)
        .args(args)
        .env("MGW_LOG_FORMAT", "text")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut api = None;
    let mut admin = None;
    while api.is_none() || admin.is_none() {
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("gateway did not log its listeners");
        if let Some(a) = field(&line, "api=") {
            api = Some(a);
        }
        if let Some(a) = field(&line, "admin=") {
            admin = Some(a);
        }
    }
    (child, api.unwrap(), admin.unwrap())
}

async fn get_owned(url: String) -> (http::StatusCode, String) {
    let r = get(&url).await;
    (r.status, String::from_utf8_lossy(&r.body).into_owned())
}

fn field(line: &str, key: &str) -> Option<String> {
    let i = line.find(key)?;
    let rest = &line[i + key.len()..];
    let end = rest.find(' ').unwrap_or(rest.len());
    Some(rest[..end].trim_matches('"').to_owned())
}
