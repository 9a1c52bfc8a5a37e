//! The flags ko, Jib, crane and skopeo users reach for, on the real `mgw` binary:
//! `--platform`, `--gateway-binary PLATFORM=PATH`, `--image-label`,
//! `--image-annotation`, `--push=false`, `MGW_REPOSITORY`, `--tarball PATH|none`
//! and `--oci-layout-path`. Each has a line with an example in `--help`.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::{MGW, copy_dir, gateway, mgw};

fn petstore() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/petstore")
        .display()
        .to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json(o: &Output) -> serde_json::Value {
    assert!(o.status.success(), "{}", stderr(o));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn read_json(p: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

/// The config and manifest of the only image in `layout`.
fn config_and_manifest(layout: &Path) -> (serde_json::Value, serde_json::Value) {
    let index = read_json(&layout.join("index.json"));
    let blob = |d: &str| {
        layout
            .join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    let manifest = read_json(&blob(index["manifests"][0]["digest"].as_str().unwrap()));
    let config = read_json(&blob(manifest["config"]["digest"].as_str().unwrap()));
    (config, manifest)
}

#[test]
fn every_new_flag_has_a_help_line_with_an_example() {
    let help = |sub: &str| {
        let o = Command::new(MGW).args([sub, "--help"]).output().unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let build = help("build");
    for example in [
        "--platform linux/amd64,linux/arm64",
        "--gateway-binary linux/arm64=",
        "--image-label org.example.team=pets",
        "--image-annotation org.opencontainers.image.vendor=Acme",
        "--tarball /tmp/gw.tar",
        "--oci-layout-path /tmp/gw-layout",
        "--push=false",
        "MGW_REPOSITORY",
        "--tag 1.4.0 --tag stable",
    ] {
        assert!(
            build.contains(example),
            "`mgw build --help` lacks `{example}`:\n{build}"
        );
    }
    let push = help("push");
    for example in [
        "--tag 1.4.0 --tag stable",
        "--platform linux/amd64,linux/arm64",
        "REGISTRY_AUTH_FILE=",
        "XDG_RUNTIME_DIR/containers/auth.json",
    ] {
        assert!(
            push.contains(example),
            "`mgw push --help` lacks `{example}`:\n{push}"
        );
    }
    for sub in ["inspect", "run", "load"] {
        assert!(
            help(sub).contains("--platform linux/arm64"),
            "`mgw {sub} --help`"
        );
    }
}

#[test]
fn labels_and_annotations_from_the_command_line_reach_the_image() {
    let dir = tempfile::tempdir().unwrap();
    let o = mgw(
        &[
            "build",
            "--output",
            "json",
            "--image-label",
            "org.example.cost-center=42",
            "--image-annotation",
            "org.opencontainers.image.vendor=Acme",
            // mgw's own keys win over the command line.
            "--image-annotation",
            "io.mgw.bundle.digest=forged",
            &petstore(),
        ],
        dir.path(),
    );
    let meta = json(&o);
    let (config, manifest) =
        config_and_manifest(&dir.path().join(meta["layout"].as_str().unwrap()));
    let labels = &config["config"]["Labels"];
    assert_eq!(labels["org.example.cost-center"], "42");
    assert_eq!(labels["org.example.team"], "pets", "mgw.yaml's labels stay");
    assert!(labels.get("org.opencontainers.image.vendor").is_none());
    let annotations = &manifest["annotations"];
    assert_eq!(annotations["org.opencontainers.image.vendor"], "Acme");
    assert_eq!(annotations["io.mgw.bundle.digest"], meta["bundleDigest"]);

    let bad = mgw(
        &["build", "--image-label", "novalue", &petstore()],
        dir.path(),
    );
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    assert!(
        stderr(&bad).contains("`novalue` is not `KEY=VALUE`"),
        "{}",
        stderr(&bad)
    );
}

#[test]
fn mgw_repository_is_the_default_repository_and_the_flag_wins() {
    let dir = tempfile::tempdir().unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec!["build", "--output", "json"];
        args.extend_from_slice(extra);
        let p = petstore();
        args.push(&p);
        json(
            &Command::new(MGW)
                .args(&args)
                .current_dir(dir.path())
                .env_remove("SOURCE_DATE_EPOCH")
                .env("MGW_GATEWAY_BINARY", gateway())
                .env("MGW_REPOSITORY", "registry.example.com/env/gw")
                .output()
                .unwrap(),
        )
    };
    assert_eq!(run(&[])["repository"], "registry.example.com/env/gw");
    assert_eq!(
        run(&["--repository", "registry.example.com/flag/gw"])["repository"],
        "registry.example.com/flag/gw"
    );
}

#[test]
fn push_false_builds_without_pushing_and_a_bad_value_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    // `--push` alone would try localhost:5000 and fail; `=false` does not push.
    let meta = json(&mgw(
        &["build", "--output", "json", "--push=false", &petstore()],
        dir.path(),
    ));
    assert!(meta.get("push").is_none(), "{meta}");
    let bad = mgw(&["build", "--push=maybe", &petstore()], dir.path());
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
}

#[test]
fn tarball_and_layout_paths_put_the_outputs_where_asked() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let tar: PathBuf = elsewhere.path().join("gw.tar");
    let layout = elsewhere.path().join("layout");
    let meta = json(&mgw(
        &[
            "build",
            "--output",
            "json",
            "--tarball",
            tar.to_str().unwrap(),
            "--oci-layout-path",
            layout.to_str().unwrap(),
            &petstore(),
        ],
        dir.path(),
    ));
    assert!(tar.is_file() && layout.join("index.json").is_file());
    assert!(!dir.path().join("out/petstore/oci").exists());
    assert!(!dir.path().join("out/petstore/image.tar").exists());
    // build.json records where they went, so `mgw push`/`load` find them.
    let recorded = read_json(&dir.path().join("out/petstore/build.json"));
    assert_eq!(recorded["layout"], layout.to_str().unwrap());
    assert_eq!(recorded["tarball"], tar.to_str().unwrap());
    let inspect = json(&mgw(
        &["inspect", "--output", "json", layout.to_str().unwrap()],
        dir.path(),
    ));
    assert_eq!(inspect["digest"], meta["digest"]);

    let none = tempfile::tempdir().unwrap();
    let meta = json(&mgw(
        &[
            "build",
            "--output",
            "json",
            "--tarball",
            "none",
            &petstore(),
        ],
        none.path(),
    ));
    assert!(meta["tarball"].is_null(), "{meta}");
    assert!(!none.path().join("out/petstore/image.tar").exists());
}

#[test]
fn platforms_are_checked_against_the_gateway_binaries() {
    let dir = tempfile::tempdir().unwrap();
    let unknown = mgw(
        &["build", "--platform", "linux/s390x", &petstore()],
        dir.path(),
    );
    assert_eq!(unknown.status.code(), Some(2), "{}", stderr(&unknown));
    assert!(stderr(&unknown).contains("unknown platform `linux/s390x`"));

    // The amd64 gateway given for arm64 is refused, naming the fix.
    let amd64 = gateway();
    let wrong = mgw(
        &[
            "build",
            "--platform",
            "linux/arm64",
            "--gateway-binary",
            &format!("linux/arm64={}", amd64.display()),
            &petstore(),
        ],
        dir.path(),
    );
    assert_eq!(wrong.status.code(), Some(1));
    assert!(
        stderr(&wrong).contains("the gateway for `linux/arm64` is a linux/amd64 executable"),
        "{}",
        stderr(&wrong)
    );
    assert!(!dir.path().join("out/petstore/oci").exists());

    // A bare path still means the host's platform.
    let meta = json(&mgw(
        &[
            "build",
            "--output",
            "json",
            "--gateway-binary",
            amd64.to_str().unwrap(),
            "--platform",
            "linux/amd64",
            &petstore(),
        ],
        dir.path(),
    ));
    assert_eq!(meta["architecture"], "amd64");
    assert!(
        meta.get("platforms").is_none(),
        "one platform, no index: {meta}"
    );
}

#[test]
fn mgw_yaml_image_platforms_is_the_default_and_the_flag_wins() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("gw");
    copy_dir(Path::new(&petstore()), &project);
    let yaml = std::fs::read_to_string(project.join("mgw.yaml")).unwrap();
    let yaml = yaml.replace("image:\n", "image:\n  platforms: [linux/arm64]\n");
    std::fs::write(project.join("mgw.yaml"), yaml).unwrap();
    let p = project.display().to_string();
    // mgw.yaml asks for arm64: the (missing) arm64 binary is what the build reads.
    let missing = dir.path().join("no-such-arm64-gateway");
    let arm = format!("linux/arm64={}", missing.display());
    let o = mgw(&["build", "--gateway-binary", &arm, &p], dir.path());
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("no-such-arm64-gateway"),
        "{}",
        stderr(&o)
    );
    // `--platform` wins over mgw.yaml.
    let meta = json(&mgw(
        &[
            "build",
            "--output",
            "json",
            "--gateway-binary",
            &arm,
            "--platform",
            "linux/amd64",
            &p,
        ],
        dir.path(),
    ));
    assert_eq!(meta["architecture"], "amd64");
}
