//! A real image from `mgw build examples/petstore`, run by the tools users run it
//! with: skopeo and umoci read it, runc runs it unpacked, dockerd loads and runs it.
//! Each test builds into its own temp dir and starts (and stops) its own tools.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use mgw_tests::*;

struct Built {
    _dir: tempfile::TempDir,
    out: PathBuf,
    meta: serde_json::Value,
}

impl Built {
    fn layout(&self) -> PathBuf {
        self.out.join("oci")
    }
    fn tarball(&self) -> PathBuf {
        self.out.join("image.tar")
    }
    fn tag(&self) -> &str {
        self.meta["tag"].as_str().unwrap()
    }
    fn reference(&self) -> &str {
        self.meta["reference"].as_str().unwrap()
    }
    fn digest(&self) -> &str {
        self.meta["digest"].as_str().unwrap()
    }
}

fn build_example() -> Built {
    let dir = tempfile::tempdir().unwrap();
    let out = run(Command::new(mgw_bin())
        .args(["build", "--output", "json", "--out"])
        .arg(dir.path())
        .arg(root().join("examples/petstore"))
        .env("MGW_GATEWAY_BINARY", gateway_bin())
        .env_remove("SOURCE_DATE_EPOCH"))
    .unwrap();
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    Built {
        out: dir.path().join("petstore"),
        _dir: dir,
        meta,
    }
}

fn skopeo(args: &[&str]) -> String {
    let out = run(Command::new("skopeo")
        .args(["--insecure-policy"])
        .args(args))
    .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn skopeo_reads_layout_oci_archive_and_docker_archive() {
    require("skopeo", "apt-get install skopeo");
    let img = build_example();
    let layout = format!("oci:{}:{}", img.layout().display(), img.tag());
    let inspect: serde_json::Value = serde_json::from_str(&skopeo(&["inspect", &layout])).unwrap();
    assert_eq!(inspect["Digest"], img.digest());
    assert_eq!(
        inspect["Labels"]["org.opencontainers.image.title"],
        "petstore"
    );
    assert_eq!(inspect["Layers"].as_array().unwrap().len(), 3);

    let dest = tempfile::tempdir().unwrap();
    // OCI layout → OCI layout keeps the manifest digest.
    let copy = format!("oci:{}:copy", dest.path().join("a").display());
    skopeo(&["copy", &layout, &copy]);
    let again: serde_json::Value = serde_json::from_str(&skopeo(&["inspect", &copy])).unwrap();
    assert_eq!(again["Digest"], img.digest());
    // The tarball as an OCI archive: identical digest.
    let from_archive = format!("oci:{}:x", dest.path().join("b").display());
    skopeo(&[
        "copy",
        &format!("oci-archive:{}", img.tarball().display()),
        &from_archive,
    ]);
    let b: serde_json::Value = serde_json::from_str(&skopeo(&["inspect", &from_archive])).unwrap();
    assert_eq!(b["Digest"], img.digest());
    // The same tarball as a docker-archive, by its RepoTag.
    let from_docker = format!("oci:{}:y", dest.path().join("c").display());
    skopeo(&[
        "copy",
        &format!(
            "docker-archive:{}:{}",
            img.tarball().display(),
            img.reference()
        ),
        &from_docker,
    ]);
    let c: serde_json::Value = serde_json::from_str(&skopeo(&["inspect", &from_docker])).unwrap();
    assert_eq!(c["Layers"].as_array().unwrap().len(), 3);
}

/// Unpacks the image with umoci into an OCI runtime bundle.
fn unpack(img: &Built, into: &Path) -> PathBuf {
    require("umoci", "apt-get install umoci");
    let bundle = into.join("bundle");
    run(Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:{}", img.layout().display(), img.tag()))
        .arg(&bundle))
    .unwrap();
    bundle
}

#[test]
fn umoci_unpacks_the_expected_rootfs() {
    use std::os::unix::fs::MetadataExt;
    let img = build_example();
    let dir = tempfile::tempdir().unwrap();
    let rootfs = unpack(&img, dir.path()).join("rootfs");
    let meta =
        |p: &str| std::fs::symlink_metadata(rootfs.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
    let bin = meta("usr/local/bin/mgw-gateway");
    assert_eq!((bin.uid(), bin.gid(), bin.mode() & 0o7777), (0, 0, 0o755));
    let bundle = meta("etc/mgw/bundle.json");
    assert_eq!(bundle.mode() & 0o7777, 0o444);
    assert_eq!(meta("tmp").mode() & 0o7777, 0o1777);
    assert!(meta("etc/ssl/certs/ca-certificates.crt").len() > 100_000);
    let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).unwrap();
    assert!(passwd.contains(":65532:65532:"), "{passwd}");
    // No shell, no package manager.
    assert!(!rootfs.join("bin/sh").exists());
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("bundle/config.json")).unwrap())
            .unwrap();
    assert_eq!(config["process"]["user"]["uid"], 65532);
    assert_eq!(config["process"]["args"][0], "/usr/local/bin/mgw-gateway");
}

#[test]
fn runc_runs_the_image_and_serves_a_request() {
    require("runc", "apt-get install runc");
    let img = build_example();
    let dir = tempfile::Builder::new()
        .prefix("mgwrunc")
        .tempdir_in("/tmp")
        .unwrap();
    let bundle = unpack(&img, dir.path());
    let backend = Backend::start();
    let (api, admin) = (free_port(), free_port());

    // Host network, read-only root, the environment a deployment would set.
    let cfg_path = bundle.join("config.json");
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&cfg_path).unwrap()).unwrap();
    let ns = cfg["linux"]["namespaces"].as_array_mut().unwrap();
    ns.retain(|n| n["type"] != "network");
    cfg["root"]["readonly"] = true.into();
    cfg["process"]["terminal"] = false.into();
    let env = cfg["process"]["env"].as_array_mut().unwrap();
    env.push(format!("MGW_LISTEN=127.0.0.1:{api}").into());
    env.push(format!("MGW_ADMIN_LISTEN=127.0.0.1:{admin}").into());
    env.push(format!("PETSTORE_UPSTREAM=http://{}/v1", backend.addr).into());
    std::fs::write(&cfg_path, serde_json::to_vec(&cfg).unwrap()).unwrap();

    let state = dir.path().join("state");
    let id = format!("mgw-test-{}", std::process::id());
    let log = std::fs::File::create(dir.path().join("container.log")).unwrap();
    let pid_file = dir.path().join("pid");
    let status = Command::new("runc")
        .arg("--root")
        .arg(&state)
        .args(["run", "--detach", "--bundle"])
        .arg(&bundle)
        .arg("--pid-file")
        .arg(&pid_file)
        .arg(&id)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .status()
        .unwrap();
    let runc = |args: &[&str]| {
        Command::new("runc")
            .arg("--root")
            .arg(&state)
            .args(args)
            .output()
            .unwrap()
    };
    let cleanup = scopeguard(|| {
        let _ = runc(&["kill", &id, "KILL"]);
        let _ = runc(&["delete", "--force", &id]);
    });
    assert!(
        status.success(),
        "runc run failed: {}",
        std::fs::read_to_string(dir.path().join("container.log")).unwrap_or_default()
    );

    let admin_addr = format!("127.0.0.1:{admin}").parse().unwrap();
    let ready = wait_for(Duration::from_secs(20), || {
        http_get(admin_addr, "/readyz", &[])
            .ok()
            .filter(|(s, _)| *s == 200)
    });
    assert!(
        ready.is_some(),
        "gateway in runc never became ready: {}",
        std::fs::read_to_string(dir.path().join("container.log")).unwrap_or_default()
    );
    let (status, body) = http_get(
        format!("127.0.0.1:{api}").parse().unwrap(),
        "/petstore/v1/pets/7",
        &[],
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["path"], "/v1/pets/7");

    // The process runs as 65532.
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let proc_status = std::fs::read_to_string(format!("/proc/{}/status", pid.trim())).unwrap();
    let uid_line = proc_status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(
        uid_line.split_whitespace().skip(1).all(|u| u == "65532"),
        "{uid_line}"
    );

    // SIGTERM stops it cleanly.
    assert!(runc(&["kill", &id, "TERM"]).status.success());
    let stopped = wait_for(Duration::from_secs(20), || {
        let out = runc(&["state", &id]);
        String::from_utf8_lossy(&out.stdout)
            .contains("\"stopped\"")
            .then_some(())
    });
    assert!(stopped.is_some(), "container did not stop on SIGTERM");
    drop(cleanup);
}

#[test]
fn dockerd_loads_the_tarball_and_runs_it_read_only_without_capabilities() {
    let img = build_example();
    let docker = Dockerd::start().unwrap();
    let loaded = docker
        .docker(&["load", "-i", img.tarball().to_str().unwrap()])
        .unwrap();
    let text = String::from_utf8_lossy(&loaded.stdout);
    assert!(text.contains(img.reference()), "{text}");

    let backend = Backend::start();
    let (api, admin) = (free_port(), free_port());
    let name = format!("mgw-test-{}", std::process::id());
    let out = docker
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
            "--security-opt",
            "no-new-privileges",
            "-e",
            &format!("MGW_LISTEN=127.0.0.1:{api}"),
            "-e",
            &format!("MGW_ADMIN_LISTEN=127.0.0.1:{admin}"),
            "-e",
            &format!("PETSTORE_UPSTREAM=http://{}/v1", backend.addr),
            img.reference(),
        ])
        .unwrap();
    assert!(out.status.success());
    let admin_addr = format!("127.0.0.1:{admin}").parse().unwrap();
    let ready = wait_for(Duration::from_secs(30), || {
        http_get(admin_addr, "/readyz", &[])
            .ok()
            .filter(|(s, _)| *s == 200)
    });
    if ready.is_none() {
        let logs = docker.docker_cmd().args(["logs", &name]).output().unwrap();
        panic!(
            "gateway in docker never became ready: {}",
            String::from_utf8_lossy(&logs.stderr)
        );
    }
    let (status, body) = http_get(
        format!("127.0.0.1:{api}").parse().unwrap(),
        "/petstore/v1/pets",
        &[],
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("/v1/pets"), "{body}");
    let user = docker
        .docker(&["inspect", "-f", "{{.Config.User}}", &name])
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&user.stdout).trim(), "65532:65532");
    // docker stop sends the image's StopSignal (SIGTERM): a clean exit 0.
    docker.docker(&["stop", "-t", "20", &name]).unwrap();
    let code = docker
        .docker(&["inspect", "-f", "{{.State.ExitCode}}", &name])
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&code.stdout).trim(), "0");
    let _ = docker.docker(&["rm", "-f", &name]);
}

/// Runs `f` when dropped (cleanup that also happens when an assertion fails).
fn scopeguard<F: FnOnce()>(f: F) -> impl Drop {
    struct G<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for G<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f();
            }
        }
    }
    G(Some(f))
}
