//! A real image from `mgw build examples/petstore`, run by the tools users run it
//! with: skopeo and umoci read it, runc runs it unpacked, dockerd loads and runs it.
//! Each test builds into its own temp dir and starts (and stops) its own tools.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use mgw_tests::*;

fn build_example() -> BuiltImage {
    BuiltImage::build(&root().join("examples/petstore"), "petstore")
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
fn unpack(img: &BuiltImage, into: &Path) -> PathBuf {
    container::unpack(&img.layout(), img.tag(), into).unwrap()
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
    let img = build_example();
    let backend = Backend::start();
    // Host network, read-only root, the environment a deployment would set.
    let upstream = format!("http://{}/v1", backend.addr);
    let c = RuncContainer::start(
        &img.layout(),
        img.tag(),
        &[("PETSTORE_UPSTREAM", &upstream)],
    )
    .unwrap();
    c.wait_ready(Duration::from_secs(20)).unwrap();
    let (status, body) = http_get(c.api, "/petstore/v1/pets/7", &[]).unwrap();
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["path"], "/v1/pets/7");

    // The process runs as 65532.
    let proc_status =
        std::fs::read_to_string(format!("/proc/{}/status", c.pid().unwrap())).unwrap();
    let uid_line = proc_status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(
        uid_line.split_whitespace().skip(1).all(|u| u == "65532"),
        "{uid_line}"
    );

    // SIGTERM stops it cleanly.
    c.stop(Duration::from_secs(20)).unwrap();
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
    let upstream = format!("http://{}/v1", backend.addr);
    let c = DockerContainer::start(
        &docker,
        img.reference(),
        &[("PETSTORE_UPSTREAM", &upstream)],
    )
    .unwrap();
    c.wait_ready(Duration::from_secs(30)).unwrap();
    let (status, body) = http_get(c.api, "/petstore/v1/pets", &[]).unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("/v1/pets"), "{body}");
    assert_eq!(c.inspect("{{.Config.User}}").unwrap(), "65532:65532");
    // docker stop sends the image's StopSignal (SIGTERM): a clean exit 0.
    assert_eq!(c.stop(Duration::from_secs(20)).unwrap(), 0);
}
