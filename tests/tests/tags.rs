//! `mgw build --tag A --tag B` then `mgw push` against a real `docker-registry` on
//! loopback: every tag names the image, and a second tag that already names
//! another image stops the push before anything is tagged (exit 65).

use std::process::Command;

use mgw_tests::registry::{Auth, Registry};
use mgw_tests::*;

fn mgw(home: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(mgw_bin())
        .args(args)
        .env_remove("SOURCE_DATE_EPOCH")
        .env("HOME", home)
        .env("DOCKER_CONFIG", home.join("docker"))
        .env("XDG_CACHE_HOME", home.join("cache"))
        .env("MGW_GATEWAY_BINARY", gateway_bin())
        .output()
        .unwrap()
}

fn digest_of(reference: &str) -> Option<String> {
    let out = Command::new("skopeo")
        .args(["--insecure-policy", "inspect", "--tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .output()
        .unwrap();
    out.status.success().then(|| {
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["Digest"].as_str().unwrap().to_owned()
    })
}

#[test]
fn every_tag_is_pushed_and_a_conflicting_extra_tag_stops_the_push() {
    require("skopeo", "apt-get install skopeo");
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join("docker")).unwrap();
    let reg = Registry::start(Auth::None).unwrap();
    let repo = format!("{}/team/tags", reg.host());
    let project = root().join("examples/petstore").display().to_string();
    let out = home.path().join("out").display().to_string();

    let first = mgw(
        home.path(),
        &[
            "push",
            &project,
            "--out",
            &out,
            "--repository",
            &repo,
            "--tag",
            "1.0.0",
            "--tag",
            "stable",
            "--output",
            "json",
        ],
    );
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let pushed: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    let digest = pushed["digest"].as_str().unwrap();
    assert_eq!(digest_of(&format!("{repo}:1.0.0")).as_deref(), Some(digest));
    assert_eq!(
        digest_of(&format!("{repo}:stable")).as_deref(),
        Some(digest)
    );

    // Another image (another revision label) tagged 2.0.0 and stable: `stable`
    // names the first image, so nothing is pushed or tagged.
    let second = mgw(
        home.path(),
        &[
            "push",
            &project,
            "--out",
            &out,
            "--repository",
            &repo,
            "--tag",
            "2.0.0",
            "--tag",
            "stable",
            "--revision",
            "other",
        ],
    );
    assert_eq!(
        second.status.code(),
        Some(65),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    assert!(
        String::from_utf8_lossy(&second.stderr).contains(&format!("{repo}:stable")),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    assert_eq!(digest_of(&format!("{repo}:2.0.0")), None);
    assert_eq!(
        digest_of(&format!("{repo}:stable")).as_deref(),
        Some(digest)
    );
}
