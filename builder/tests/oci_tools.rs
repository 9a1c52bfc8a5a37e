//! The image writer checked by the tools users load images with: `skopeo` reads the
//! OCI layout, the OCI archive and the docker-archive; `umoci` unpacks the layout into
//! a runtime bundle whose files must carry exactly the owners and modes we wrote; GNU
//! `tar` reads the layers and the archive. Each test works in its own temp dir. A
//! missing tool is a failure naming the install step, never a silent pass.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use mgw_builder::oci::{
    self, Digest, ImageOutput, ImageSpec, LayerBuilder, LayerInput, OutputPaths, base, read_image,
    write_image,
};
use serde_json::Value;

const TAG: &str = "1.0.0-0123456789ab";
const REPOSITORY: &str = "example.com/team/petstore-gw";
const BINARY_PATH: &str = "/usr/local/bin/mgw-test";
const BUNDLE_PATH: &str = "/etc/mgw/bundle.json";
const BUNDLE: &[u8] = br#"{"apis":[],"schemaVersion":1}"#;

/// The path of `tool`, or a panic that says how to install it.
fn require(tool: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(tool))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!("`{tool}` is not on PATH; these tests need it: run `apt-get install -y skopeo umoci tar containerd`")
        })
}

fn run(tool: &str, args: &[&str]) -> String {
    let output = Command::new(require(tool))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot start `{tool}`: {e}"));
    assert!(
        output.status.success(),
        "`{tool} {}` failed ({}):\n{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn is_root() -> bool {
    fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// A small gateway-shaped image: the base layer, a layer with a "binary", a layer
/// with a JSON bundle.
fn build(dir: &Path, epoch: u64) -> ImageOutput {
    let binary = dir.join("mgw-test");
    fs::write(&binary, b"\x7fELF static test binary, not really").unwrap();

    let mut gateway = LayerBuilder::new();
    gateway
        .add_file_from_disk(BINARY_PATH, &binary, 0o755, 0, 0)
        .unwrap();
    let mut bundle = LayerBuilder::new();
    bundle
        .add_dir("/etc/mgw", 0o755, 0, 0)
        .unwrap()
        .add_file_bytes(BUNDLE_PATH, BUNDLE, 0o444, 65532, 65532)
        .unwrap();

    let mut spec = ImageSpec::new(REPOSITORY, TAG);
    spec.source_date_epoch = epoch;
    spec.entrypoint = vec![BINARY_PATH.to_owned()];
    spec.cmd = vec!["--bundle".to_owned(), BUNDLE_PATH.to_owned()];
    spec.exposed_ports = ["8080/tcp".to_owned(), "9901/tcp".to_owned()].into();
    spec.labels = BTreeMap::from([
        (
            "org.opencontainers.image.title".to_owned(),
            "petstore-gw".to_owned(),
        ),
        (
            "org.opencontainers.image.version".to_owned(),
            "1.0.0".to_owned(),
        ),
    ]);
    spec.annotations = BTreeMap::from([(
        "org.opencontainers.image.created".to_owned(),
        oci::rfc3339(epoch),
    )]);
    spec.layers = vec![
        LayerInput::new(
            base::base_layer_entries().unwrap(),
            base::BASE_LAYER_CREATED_BY,
        ),
        LayerInput::new(gateway, "mgw: gateway binary"),
        LayerInput::new(bundle, "mgw: bundle"),
    ];
    write_image(
        &spec,
        &OutputPaths {
            layout: dir.join("layout"),
            tarball: Some(dir.join("image.tar")),
        },
    )
    .unwrap()
}

fn oci_ref(layout: &Path, tag: &str) -> String {
    format!("oci:{}:{tag}", layout.display())
}

#[test]
fn skopeo_inspects_the_layout() {
    let dir = tempfile::tempdir().unwrap();
    let out = build(dir.path(), 1_700_000_000);
    let inspect: Value =
        serde_json::from_str(&run("skopeo", &["inspect", &oci_ref(&out.layout, TAG)])).unwrap();
    assert_eq!(inspect["Digest"], out.manifest_digest.to_string());
    assert_eq!(inspect["Architecture"], "amd64");
    assert_eq!(inspect["Os"], "linux");
    assert_eq!(inspect["Created"], "2023-11-14T22:13:20Z");
    assert_eq!(
        inspect["Labels"]["org.opencontainers.image.title"],
        "petstore-gw"
    );
    let layers: Vec<String> = out.layers.iter().map(|l| l.digest.to_string()).collect();
    assert_eq!(inspect["Layers"], serde_json::json!(layers));

    let config: Value = serde_json::from_str(&run(
        "skopeo",
        &["inspect", "--config", &oci_ref(&out.layout, TAG)],
    ))
    .unwrap();
    assert_eq!(config["config"]["User"], "65532:65532");
    assert_eq!(config["config"]["StopSignal"], "SIGTERM");
    assert_eq!(
        config["config"]["Entrypoint"],
        serde_json::json!([BINARY_PATH])
    );
    assert_eq!(config["history"].as_array().unwrap().len(), 3);
}

#[test]
fn skopeo_copies_layout_and_oci_archive_without_changing_the_digest() {
    let dir = tempfile::tempdir().unwrap();
    let out = build(dir.path(), 0);

    let copy = dir.path().join("copy");
    run(
        "skopeo",
        &["copy", &oci_ref(&out.layout, TAG), &oci_ref(&copy, TAG)],
    );
    assert_eq!(
        read_image(&copy, Some(TAG)).unwrap().manifest_digest,
        out.manifest_digest
    );

    let from_archive = dir.path().join("from-oci-archive");
    let tarball = out.tarball.as_ref().unwrap();
    run(
        "skopeo",
        &[
            "copy",
            &format!("oci-archive:{}", tarball.display()),
            &oci_ref(&from_archive, "x"),
        ],
    );
    assert_eq!(
        read_image(&from_archive, Some("x"))
            .unwrap()
            .manifest_digest,
        out.manifest_digest
    );
}

#[test]
fn skopeo_reads_the_tarball_as_a_docker_archive() {
    let dir = tempfile::tempdir().unwrap();
    let out = build(dir.path(), 0);
    let tarball = out.tarball.as_ref().unwrap();
    let docker = format!("docker-archive:{}", tarball.display());

    let inspect: Value = serde_json::from_str(&run("skopeo", &["inspect", &docker])).unwrap();
    assert_eq!(
        inspect["RepoTags"],
        serde_json::json!([]),
        "skopeo lists no tags for archives: {inspect}"
    );
    let config: Value =
        serde_json::from_str(&run("skopeo", &["inspect", "--config", &docker])).unwrap();
    let diff_ids: Vec<String> = out.layers.iter().map(|l| l.diff_id.to_string()).collect();
    assert_eq!(config["rootfs"]["diff_ids"], serde_json::json!(diff_ids));

    // Also by the name docker would give it.
    run(
        "skopeo",
        &["inspect", &format!("{docker}:{REPOSITORY}:{TAG}")],
    );

    // Copying converts the manifest (docker schema 2 → OCI) but must keep every layer.
    let copy = dir.path().join("from-docker-archive");
    run("skopeo", &["copy", &docker, &oci_ref(&copy, "x")]);
    let copied = read_image(&copy, Some("x")).unwrap();
    let copied_diff_ids: Vec<String> = copied
        .layers
        .iter()
        .map(|l| l.diff_id.to_string())
        .collect();
    assert_eq!(copied_diff_ids, diff_ids);
    assert_eq!(
        copied.read_file(BUNDLE_PATH).unwrap().as_deref(),
        Some(BUNDLE)
    );
}

#[test]
fn umoci_unpacks_a_rootfs_with_our_owners_and_modes() {
    let dir = tempfile::tempdir().unwrap();
    let out = build(dir.path(), 0);
    let bundle = dir.path().join("bundle");
    let image = format!("{}:{TAG}", out.layout.display());
    let root = is_root();
    let mut args = vec!["unpack", "--image", image.as_str()];
    if !root {
        args.push("--rootless");
    }
    let bundle_arg = bundle.display().to_string();
    args.push(&bundle_arg);
    run("umoci", &args);

    let rootfs = bundle.join("rootfs");
    let meta = |p: &str| fs::symlink_metadata(rootfs.join(p.trim_start_matches('/'))).unwrap();
    let passwd = fs::read_to_string(rootfs.join("etc/passwd")).unwrap();
    assert!(passwd.contains("nonroot:x:65532:65532:"), "{passwd}");
    assert!(rootfs.join("etc/ssl/certs/ca-certificates.crt").is_file());
    assert!(
        !rootfs.join("bin").exists() && !rootfs.join("usr/bin").exists(),
        "no shell, no tools"
    );
    assert_eq!(meta("/tmp").mode() & 0o7777, 0o1777);
    assert_eq!(meta(BINARY_PATH).mode() & 0o7777, 0o755);
    assert_eq!(meta(BUNDLE_PATH).mode() & 0o7777, 0o444);
    assert_eq!(
        fs::read(rootfs.join(BUNDLE_PATH.trim_start_matches('/'))).unwrap(),
        BUNDLE
    );
    assert_eq!(meta("/home/nonroot").mode() & 0o7777, 0o700);
    if root {
        assert_eq!(
            (meta(BUNDLE_PATH).uid(), meta(BUNDLE_PATH).gid()),
            (65532, 65532)
        );
        assert_eq!(
            (meta("/home/nonroot").uid(), meta("/home/nonroot").gid()),
            (65532, 65532)
        );
        assert_eq!((meta(BINARY_PATH).uid(), meta(BINARY_PATH).gid()), (0, 0));
        assert_eq!(
            (meta("/etc/passwd").uid(), meta("/etc/passwd").gid()),
            (0, 0)
        );
    }
    // Files carry the epoch as mtime.
    assert_eq!(meta(BUNDLE_PATH).mtime(), 0);

    // The runtime spec umoci derives from our config.
    let runtime: Value =
        serde_json::from_str(&fs::read_to_string(bundle.join("config.json")).unwrap()).unwrap();
    if root {
        assert_eq!(runtime["process"]["user"]["uid"], 65532);
        assert_eq!(runtime["process"]["user"]["gid"], 65532);
    }
    assert_eq!(
        runtime["process"]["args"],
        serde_json::json!([BINARY_PATH, "--bundle", BUNDLE_PATH])
    );
}

#[test]
fn gnu_tar_reads_layers_and_the_archive() {
    let dir = tempfile::tempdir().unwrap();
    let out = build(dir.path(), 0);
    let listing = run("tar", &["-tzvf", out.layers[0].path.to_str().unwrap()]);
    assert!(listing.contains("etc/passwd"), "{listing}");
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with("drwxrwxrwt 0/0") && l.ends_with(" tmp/")),
        "{listing}"
    );
    // Numeric owners only: no user or group names in the headers.
    assert!(!listing.contains("root/root"), "{listing}");

    let archive = run(
        "tar",
        &["-tf", out.tarball.as_ref().unwrap().to_str().unwrap()],
    );
    let names: Vec<&str> = archive.lines().collect();
    assert_eq!(names[..2], ["blobs/", "blobs/sha256/"]);
    assert_eq!(
        names[names.len() - 3..],
        ["index.json", "manifest.json", "oci-layout"]
    );

    // A long path comes through PAX; GNU tar reads it back whole.
    let long = format!("/opt/{}/{}", "d".repeat(120), "f".repeat(120));
    let mut layer = LayerBuilder::new();
    layer
        .add_file_bytes(&long, b"x".to_vec(), 0o644, 0, 0)
        .unwrap();
    let written = layer.write(dir.path(), 0).unwrap();
    let listing = run("tar", &["-tzf", written.path.to_str().unwrap()]);
    assert!(listing.lines().any(|l| l == &long[1..]), "{listing}");
}

#[test]
fn builds_are_reproducible_across_directories_and_time_but_not_epochs() {
    let a = tempfile::tempdir().unwrap();
    let first = build(a.path(), 1_700_000_000);
    // A different wall-clock second, a different directory.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let b = tempfile::tempdir().unwrap();
    let second = build(b.path(), 1_700_000_000);
    assert_eq!(first.manifest_digest, second.manifest_digest);
    assert_eq!(first.config_digest, second.config_digest);
    assert_eq!(
        fs::read(first.tarball.as_ref().unwrap()).unwrap(),
        fs::read(second.tarball.as_ref().unwrap()).unwrap()
    );
    assert_eq!(
        fs::read(first.layout.join("index.json")).unwrap(),
        fs::read(second.layout.join("index.json")).unwrap()
    );

    let c = tempfile::tempdir().unwrap();
    let other_epoch = build(c.path(), 1_700_000_001);
    assert_ne!(other_epoch.manifest_digest, first.manifest_digest);
    // Every layer depends on the epoch (mtimes).
    for (x, y) in other_epoch.layers.iter().zip(&first.layers) {
        assert_ne!(x.digest, y.digest);
    }
}

#[test]
fn the_layout_round_trips_through_read_image() {
    let dir = tempfile::tempdir().unwrap();
    let out = build(dir.path(), 0);
    let info = read_image(&out.layout, Some(TAG)).unwrap();
    assert_eq!(info.manifest_digest, out.manifest_digest);
    assert_eq!(info.config_digest, out.config_digest);
    assert_eq!(info.total_size(), out.total_size);
    let digests: Vec<Digest> = info.layers.iter().map(|l| l.digest).collect();
    assert_eq!(
        digests,
        out.layers.iter().map(|l| l.digest).collect::<Vec<_>>()
    );
    assert_eq!(
        info.layers[1].created_by.as_deref(),
        Some("mgw: gateway binary")
    );
    assert_eq!(
        info.read_file(BINARY_PATH).unwrap().as_deref(),
        Some(&b"\x7fELF static test binary, not really"[..])
    );
    let index: Value =
        serde_json::from_slice(&fs::read(out.layout.join("index.json")).unwrap()).unwrap();
    let annotations = &index["manifests"][0]["annotations"];
    assert_eq!(annotations[oci::ANNOTATION_REF_NAME], TAG);
    assert_eq!(
        annotations[oci::ANNOTATION_CONTAINERD_NAME],
        format!("{REPOSITORY}:{TAG}")
    );
}

/// A private containerd for one test, stopped (by its pid) when dropped.
struct Containerd {
    child: std::process::Child,
    address: String,
}

impl Containerd {
    fn start(dir: &Path) -> Self {
        let binary = require("containerd");
        assert!(
            is_root(),
            "`ctr import` needs a containerd, and containerd needs root: run this test as root"
        );
        let config = dir.join("containerd.toml");
        let address = dir.join("containerd.sock").display().to_string();
        fs::write(
            &config,
            format!(
                "version = 2\nroot = \"{root}\"\nstate = \"{state}\"\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n[grpc]\n  address = \"{address}\"\n",
                root = dir.join("root").display(),
                state = dir.join("state").display(),
            ),
        )
        .unwrap();
        let log = fs::File::create(dir.join("containerd.log")).unwrap();
        let child = Command::new(binary)
            .arg("--config")
            .arg(&config)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("cannot start `containerd`");
        let containerd = Self { child, address };
        for _ in 0..100 {
            let ready = Command::new(require("ctr"))
                .args(["--address", &containerd.address, "version"])
                .output()
                .is_ok_and(|o| o.status.success());
            if ready {
                return containerd;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!(
            "containerd did not come up within 10 s:\n{}",
            fs::read_to_string(dir.join("containerd.log")).unwrap_or_default()
        );
    }

    fn ctr(&self, args: &[&str]) -> String {
        let mut all = vec!["--address", self.address.as_str()];
        all.extend_from_slice(args);
        run("ctr", &all)
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn ctr_imports_and_unpacks_the_tarball() {
    let dir = tempfile::tempdir().unwrap();
    let out = build(dir.path(), 0);
    let containerd = Containerd::start(dir.path());
    // The `native` snapshotter works on any filesystem; unpacking makes containerd
    // check every layer against its diff_id.
    containerd.ctr(&[
        "images",
        "import",
        "--snapshotter",
        "native",
        out.tarball.as_ref().unwrap().to_str().unwrap(),
    ]);
    let listing = containerd.ctr(&["images", "ls"]);
    let line = listing
        .lines()
        .find(|l| l.starts_with(&format!("{REPOSITORY}:{TAG} ")))
        .unwrap_or_else(|| panic!("image not imported under its name:\n{listing}"));
    assert!(line.contains(&out.manifest_digest.to_string()), "{line}");
    assert!(line.contains("linux/amd64"), "{line}");
}
