//! `mgw build` on a project with a `runtime/` crate (`examples/petstore-filters`)
//! compiles it into the image's gateway: run under runc, `no-cats` answers 403 and
//! `tenant-header` adds the caller's tenant claim; the image's `io.mgw.filters`
//! label names both; and a second build gives the same image digest.
//!
//! The runtime build is a full gateway compile: each test keeps its own cargo
//! target directory under `<target>/runtime-tests` and uses the release profile without
//! LTO (`CARGO_PROFILE_RELEASE_LTO=false`, 16 codegen units), so it takes
//! minutes, not tens of minutes. The second build comes after the runtime's
//! `src/main.rs` is touched, so cargo compiles the runtime crate and links the
//! executable again (its dependencies stay built: the project directory is part
//! of the `--remap-path-prefix` flags, and another directory would recompile
//! everything): equal digests show the compile, the link and the image are
//! deterministic, not merely that one executable was baked twice.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use mgw_tests::idp::Idp;
use mgw_tests::*;

/// `examples/petstore-filters` copied to `to`, with the test's public key, and
/// its runtime's path dependency on this repository's `gateway/` made absolute
/// (the relative one only resolves inside `examples/`).
fn project_copy(to: &Path, idp: &Idp) {
    copy_dir(&root().join("examples/petstore-filters"), to);
    std::fs::write(
        to.join("keys/idp.jwks.json"),
        serde_json::to_vec_pretty(&idp.jwks).unwrap(),
    )
    .unwrap();
    let manifest = to.join("runtime/Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let relative = r#"path = "../../../gateway""#;
    assert!(text.contains(relative), "{text}");
    let absolute = format!("path = {:?}", root().join("gateway").display().to_string());
    std::fs::write(&manifest, text.replace(relative, &absolute)).unwrap();
}

/// `mgw build --output json` of `project` into `out`, compiling its runtime
/// in the filters test's cargo target directory.
fn build(project: &Path, out: &Path) -> serde_json::Value {
    build_with(project, out, &filters_target(), &[])
}

/// Each test has its own cargo target directory: cargo leaves the rustflags
/// (which hold the project's path) out of its artifact names, so two projects
/// in one directory would rebuild every dependency over each other's.
fn filters_target() -> PathBuf {
    target_dir().join("runtime-tests/filters")
}

fn build_with(
    project: &Path,
    out: &Path,
    target: &Path,
    env: &[(&str, &str)],
) -> serde_json::Value {
    let built = run(Command::new(mgw_bin())
        .envs(env.iter().copied())
        .args(["build", "--output", "json", "--no-tarball", "--out"])
        .arg(out)
        .arg(project)
        .env_remove("MGW_GATEWAY_BINARY")
        .env_remove("SOURCE_DATE_EPOCH")
        .env("CARGO_TARGET_DIR", target)
        .env("CARGO_PROFILE_RELEASE_LTO", "false")
        .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "16"))
    .unwrap_or_else(|e| panic!("{e:#}"));
    serde_json::from_slice(&built.stdout).expect("mgw build --output json")
}

/// The runtime's executable in the shared target directory.
fn executable() -> PathBuf {
    filters_target().join("x86_64-unknown-linux-musl/release/mgw-gateway")
}

/// The image config's labels, read from the OCI layout.
fn labels(layout: &Path, digest: &str) -> serde_json::Value {
    let blob = |d: &str| -> serde_json::Value {
        let hex = d.strip_prefix("sha256:").unwrap();
        serde_json::from_slice(&std::fs::read(layout.join("blobs/sha256").join(hex)).unwrap())
            .unwrap()
    };
    let manifest = blob(digest);
    let config = blob(manifest["config"]["digest"].as_str().unwrap());
    config["config"]["Labels"].clone()
}

#[test]
fn a_projects_runtime_is_compiled_baked_and_rebuilt_to_the_same_digest() {
    require("runc", "apt-get install runc");
    let idp = Idp::generate();
    // At a fixed path: the remaps (and so cargo's cache) stay the same from one
    // run of this test to the next.
    let project = target_dir().join("runtime-tests/petstore-filters");
    let _ = std::fs::remove_dir_all(&project);
    project_copy(&project, &idp);
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out");
    let meta = build(&project, &out.join("first"));
    let exe = std::fs::read(executable()).unwrap();
    let linked = std::fs::metadata(executable()).unwrap().modified().unwrap();
    // Touched: the runtime crate is compiled and linked again.
    let main = project.join("runtime/src/main.rs");
    std::fs::File::options()
        .append(true)
        .open(&main)
        .unwrap()
        .set_modified(SystemTime::now())
        .unwrap();
    let again = build(&project, &out.join("second"));
    assert_eq!(meta["digest"], again["digest"], "a second build");
    let relinked = std::fs::metadata(executable()).unwrap().modified().unwrap();
    assert!(relinked > linked, "cargo did not link the runtime again");
    assert_eq!(
        std::fs::read(executable()).unwrap(),
        exe,
        "the relinked executable"
    );

    let tag = meta["tag"].as_str().unwrap();
    let layout = out.join("first/petstore-filters/oci");
    let labels = labels(&layout, meta["digest"].as_str().unwrap());
    assert_eq!(
        labels["io.mgw.filters"], "no-cats,tenant-header",
        "{labels}"
    );

    let backend = Backend::start();
    let upstream = format!("http://{}/v1", backend.addr);
    let c = RuncContainer::start(&layout, tag, &[("PETSTORE_UPSTREAM", &upstream)]).unwrap();
    c.wait_ready(Duration::from_secs(20)).unwrap();
    let write = format!(
        "Bearer {}",
        idp.token(
            "pets:write pets:read",
            serde_json::json!({"tenant": "acme"})
        )
    );
    let cat = http_request(
        c.api,
        "POST",
        "/petstore/v1/pets",
        &[("Authorization", &write), ("X-Pet-Kind", "cat")],
        b"{}",
    )
    .unwrap();
    assert_eq!(cat.status, 403, "{cat:?}\n{}", c.logs());
    assert_eq!(cat.body, "no cats here\n", "{cat:?}");
    let dog = http_request(
        c.api,
        "POST",
        "/petstore/v1/pets",
        &[("Authorization", &write), ("X-Pet-Kind", "dog")],
        b"{}",
    )
    .unwrap();
    assert_eq!(dog.status, 200, "{dog:?}\n{}", c.logs());
    assert_eq!(dog.header("x-tenant"), Some("acme"), "{dog:?}");
    c.stop(Duration::from_secs(20)).unwrap();
}

/// `mgw init --runtime` adds a crate that `mgw build` compiles with no network
/// (`CARGO_NET_OFFLINE=true`: the registry crates come from the cargo cache,
/// the gateway library from what `mgw` vendored), into an image whose label
/// lists the example filter. The project sits at a fixed path under the
/// target directory, so the path remaps, and with them cargo's cache, stay
/// the same from one run of this test to the next.
#[test]
fn init_runtime_gives_a_crate_that_builds_offline() {
    let project = target_dir().join("runtime-tests/init-project");
    let _ = std::fs::remove_dir_all(&project);
    std::fs::create_dir_all(&project).unwrap();
    run(Command::new(mgw_bin())
        .arg("init")
        .arg(root().join("examples/petstore/apis/petstore.yaml"))
        .arg("--dir")
        .arg(&project)
        .arg("--runtime"))
    .unwrap_or_else(|e| panic!("{e:#}"));
    assert!(
        project
            .join("runtime/vendor/mgw/gateway/src/filter.rs")
            .is_file()
    );
    // Never overwritten.
    let again = Command::new(mgw_bin())
        .args(["init", "--runtime", "--dir"])
        .arg(&project)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already exists"),
        "{again:?}"
    );

    let out = tempfile::tempdir().unwrap();
    let meta = build_with(
        &project,
        out.path(),
        &target_dir().join("runtime-tests/init"),
        &[("CARGO_NET_OFFLINE", "true")],
    );
    let name = meta["summary"]["name"].as_str().unwrap();
    let labels = labels(
        &out.path().join(name).join("oci"),
        meta["digest"].as_str().unwrap(),
    );
    assert_eq!(labels["io.mgw.filters"], "served-by", "{labels}");
}
