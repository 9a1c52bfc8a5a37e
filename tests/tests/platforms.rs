//! Multi-platform images end to end: `mgw build --platform linux/amd64,linux/arm64`
//! on two (faked) days gives the same bytes, `mgw push` puts the index on a real
//! `docker-registry` on loopback, skopeo sees two platforms and copies each one
//! out (`--override-arch`), the amd64 image runs under runc and the arm64 gateway
//! under qemu-aarch64-static, and the values mgw wrote pin the index digest in the
//! Helm chart.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use mgw_tests::qemu::QemuGateway;
use mgw_tests::registry::{Auth, Registry};
use mgw_tests::*;
use serde_json::Value;

/// `mgw ARGS --output json` with the wall clock faked to `day` (libfaketime),
/// `SOURCE_DATE_EPOCH` unset and a private cache.
fn mgw_on(day: &str, home: &Path, args: &[&str]) -> Value {
    require("faketime", "apt-get install faketime");
    let out = run(Command::new("faketime")
        .arg(format!("{day} 12:00:00"))
        .arg(mgw_bin())
        .args(args)
        .args(["--output", "json"])
        .env_remove("SOURCE_DATE_EPOCH")
        .env_remove("MGW_GATEWAY_BINARY")
        .env("HOME", home)
        .env("DOCKER_CONFIG", home.join("docker"))
        .env("XDG_CACHE_HOME", home.join("cache")))
    .unwrap_or_else(|e| panic!("{e:#}"));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn build_both(day: &str, home: &Path, out: &Path) -> (Value, PathBuf) {
    let amd = format!("linux/amd64={}", gateway_bin().display());
    let arm = format!("linux/arm64={}", gateway_bin_arm64().display());
    let meta = mgw_on(
        day,
        home,
        &[
            "build",
            "--platform",
            "linux/amd64,linux/arm64",
            "--gateway-binary",
            &amd,
            "--gateway-binary",
            &arm,
            "--out",
            &out.display().to_string(),
            &root().join("examples/petstore").display().to_string(),
        ],
    );
    (meta, out.join("petstore"))
}

fn skopeo(args: &[&str]) -> String {
    require("skopeo", "apt-get install skopeo");
    let out = run(Command::new("skopeo")
        .args(["--insecure-policy"])
        .args(args))
    .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every file under `dir`, relative, with its bytes.
fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push((
                    p.strip_prefix(dir).unwrap().to_owned(),
                    std::fs::read(&p).unwrap(),
                ));
            }
        }
    }
    files.sort();
    files
}

#[test]
fn a_two_platform_index_is_reproducible_pushes_and_each_platform_runs() {
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join("docker")).unwrap();
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let (meta, image) = build_both("2030-01-01", home.path(), a.path());
    let (again, image_b) = build_both("2031-06-15", home.path(), b.path());
    let index_digest = meta["digest"].as_str().unwrap().to_owned();
    assert_eq!(again["digest"], index_digest, "two days, two digests");
    let platforms = meta["platforms"].as_array().unwrap();
    assert_eq!(
        platforms
            .iter()
            .map(|p| p["platform"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["linux/amd64", "linux/arm64"],
        "{meta}"
    );
    // Same bytes everywhere: layout, tarball, SBOM, values, build.json.
    let (ta, tb) = (tree(&image), tree(&image_b));
    assert_eq!(
        ta.iter().map(|(p, _)| p).collect::<Vec<_>>(),
        tb.iter().map(|(p, _)| p).collect::<Vec<_>>()
    );
    for ((path, x), (_, y)) in ta.iter().zip(&tb) {
        assert!(x == y, "`{}` differs between the two days", path.display());
    }

    // Push: all manifests, then the index under the tag.
    let reg = Registry::start(Auth::None).unwrap();
    let repo = format!("{}/team/multi", reg.host());
    let pushed = mgw_on(
        "2030-01-01",
        home.path(),
        &["push", &image.display().to_string(), "--repository", &repo],
    );
    assert_eq!(pushed["digest"], index_digest, "{pushed}");
    let tag = meta["tag"].as_str().unwrap();
    let remote = format!("docker://{repo}:{tag}");
    let raw: Value = serde_json::from_str(&skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--raw",
        &remote,
    ]))
    .unwrap();
    assert_eq!(raw["mediaType"], "application/vnd.oci.image.index.v1+json");
    let listed: Vec<(&str, &str)> = raw["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["platform"]["architecture"].as_str().unwrap(),
                m["digest"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        platforms
            .iter()
            .map(|p| (
                p["architecture"].as_str().unwrap(),
                p["digest"].as_str().unwrap()
            ))
            .collect::<Vec<_>>()
    );

    // Each platform copied out of the registry runs.
    let backend = Backend::start();
    let upstream = format!("http://{}/v1", backend.addr);
    let env = [("PETSTORE_UPSTREAM", upstream.as_str())];
    let copies = tempfile::tempdir().unwrap();
    let copy = |arch: &str| {
        let layout = copies.path().join(arch);
        skopeo(&[
            "copy",
            "--src-tls-verify=false",
            "--override-arch",
            arch,
            &remote,
            &format!("oci:{}:x", layout.display()),
        ]);
        let inspect: Value = serde_json::from_str(&skopeo(&[
            "inspect",
            &format!("oci:{}:x", layout.display()),
        ]))
        .unwrap();
        assert_eq!(inspect["Architecture"], arch);
        layout
    };
    let amd = copy("amd64");
    let c = RuncContainer::start(&amd, "x", &env).unwrap();
    c.wait_ready(Duration::from_secs(20)).unwrap();
    let (status, body) = http_get(c.api, "/petstore/v1/pets/7", &[]).unwrap();
    assert_eq!(status, 200, "{body}");
    drop(c);
    let arm = copy("arm64");
    let mut gw = QemuGateway::start(&arm, "x", &env).unwrap();
    gw.wait_ready(Duration::from_secs(60)).unwrap();
    let (status, body) = http_get(gw.api, "/petstore/v1/pets/7", &[]).unwrap();
    assert_eq!(status, 200, "{body}\n{}", gw.logs());

    // The values mgw wrote pin the index in the chart.
    let helm_home = home.path().join("helm");
    let mut helm = Command::new(tool("helm", "bash scripts/install-helm.sh"));
    for (var, dir) in [
        ("HELM_CONFIG_HOME", "config"),
        ("HELM_CACHE_HOME", "cache"),
        ("HELM_DATA_HOME", "data"),
    ] {
        helm.env(var, helm_home.join(dir));
    }
    let rendered = run(helm
        .args(["template", "petstore"])
        .arg(root().join("helm"))
        .arg("-f")
        .arg(image.join("values.yaml")))
    .unwrap();
    let image_of_deployment = serde_yaml::Deserializer::from_slice(&rendered.stdout)
        .filter_map(|d| <serde_yaml::Value as serde::Deserialize>::deserialize(d).ok())
        .find(|d| d["kind"] == "Deployment")
        .and_then(|d| {
            d["spec"]["template"]["spec"]["containers"][0]["image"]
                .as_str()
                .map(str::to_owned)
        })
        .expect("a Deployment with a container image");
    // The push went to another repository than mgw.yaml's: values.yaml,
    // `mgw deploy-values`, `mgw resolve` and the SBOM follow the pushed reference.
    assert_ne!(meta["repository"].as_str().unwrap(), repo);
    assert_eq!(image_of_deployment, format!("{repo}@{index_digest}"));
    let values = run(Command::new(mgw_bin()).arg("deploy-values").arg(&image)).unwrap();
    let values: serde_yaml::Value = serde_yaml::from_slice(&values.stdout).unwrap();
    assert_eq!(values["image"]["repository"].as_str(), Some(repo.as_str()));
    assert_eq!(
        values["image"]["digest"].as_str(),
        Some(index_digest.as_str())
    );
    let manifests = home.path().join("k8s.yaml");
    std::fs::write(
        &manifests,
        "apiVersion: v1\nkind: Pod\nmetadata: {name: gw}\nspec:\n  containers:\n  - {name: gw, image: mgw-gateway}\n",
    )
    .unwrap();
    let resolved = run(Command::new(mgw_bin())
        .args(["resolve", "--image"])
        .arg(&image)
        .arg("-f")
        .arg(&manifests))
    .unwrap();
    assert!(
        String::from_utf8_lossy(&resolved.stdout).contains(&format!("{repo}@{index_digest}")),
        "{}",
        String::from_utf8_lossy(&resolved.stdout)
    );
    let sbom: Value =
        serde_json::from_slice(&std::fs::read(image.join("sbom.spdx.json")).unwrap()).unwrap();
    assert_eq!(sbom["name"], format!("{repo}:{tag}"));
    let gateways: Vec<&str> = sbom["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"] == "mgw-gateway")
        .map(|p| p["SPDXID"].as_str().unwrap())
        .collect();
    assert_eq!(
        gateways,
        ["SPDXRef-Gateway-linux-amd64", "SPDXRef-Gateway-linux-arm64"]
    );
    let validated = Command::new(tool("pyspdxtools", "bash scripts/install-spdx-tools.sh"))
        .arg("-i")
        .arg(image.join("sbom.spdx.json"))
        .output()
        .unwrap();
    assert!(
        validated.status.success(),
        "pyspdxtools rejects the SBOM:\n{}{}",
        String::from_utf8_lossy(&validated.stdout),
        String::from_utf8_lossy(&validated.stderr)
    );
}

/// `mgw inspect --platform` of each platform of a layout's index.
fn inspect(day: &str, home: &Path, layout: &str, platform: &str) -> Value {
    mgw_on(day, home, &["inspect", layout, "--platform", platform])
}

#[test]
fn base_takes_each_platforms_gateway_from_a_base_index_and_inspect_lists_platforms() {
    let home = tempfile::tempdir().unwrap();
    let a = tempfile::tempdir().unwrap();
    let (meta, image) = build_both("2030-01-01", home.path(), a.path());
    let base_layout = image.join("oci").display().to_string();

    let c = tempfile::tempdir().unwrap();
    let other = mgw_on(
        "2030-01-01",
        home.path(),
        &[
            "build",
            "--platform",
            "all",
            "--base",
            &base_layout,
            "--out",
            &c.path().display().to_string(),
            &root()
                .join("examples/petstore-ratelimit")
                .display()
                .to_string(),
        ],
    );
    let other_layout = other["layout"].as_str().unwrap().to_owned();
    for arch in ["amd64", "arm64"] {
        let platform = format!("linux/{arch}");
        let base = inspect("2030-01-01", home.path(), &base_layout, &platform);
        let built = inspect("2030-01-01", home.path(), &other_layout, &platform);
        assert_eq!(base["architecture"], arch, "{base}");
        assert_eq!(built["architecture"], arch, "{built}");
        assert_eq!(base["index"], meta["digest"]);
        assert_eq!(built["index"], other["digest"]);
        let listed: Vec<&str> = built["platforms"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["platform"].as_str().unwrap())
            .collect();
        assert_eq!(listed, ["linux/amd64", "linux/arm64"]);
        // Base and gateway layers come from the base's same platform; the bundle differs.
        let layers = |v: &Value| -> Vec<String> {
            v["layers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l["digest"].as_str().unwrap().to_owned())
                .collect()
        };
        let (from, to) = (layers(&base), layers(&built));
        assert_eq!(from[..2], to[..2], "{platform}");
        assert_ne!(from[2], to[2], "{platform}");
    }
}

#[test]
fn load_takes_the_hosts_platform_or_the_one_asked_for() {
    let home = tempfile::tempdir().unwrap();
    let a = tempfile::tempdir().unwrap();
    let (meta, image) = build_both("2030-01-01", home.path(), a.path());
    let reference = meta["reference"].as_str().unwrap();
    let docker = Dockerd::start().unwrap();
    let load = |extra: &[&str]| {
        let out = run(Command::new(mgw_bin())
            .arg("load")
            .arg(&image)
            .args(extra)
            .env("DOCKER_HOST", &docker.host))
        .unwrap_or_else(|e| panic!("{e:#}"));
        assert!(out.status.success());
        let arch = docker
            .docker(&[
                "image",
                "inspect",
                "--format",
                "{{.Architecture}}",
                reference,
            ])
            .unwrap();
        String::from_utf8_lossy(&arch.stdout).trim().to_owned()
    };
    assert_eq!(load(&[]), "amd64", "the host's platform (image.tar)");
    assert_eq!(load(&["--platform", "linux/arm64"]), "arm64");
    assert_eq!(load(&["--platform", "linux/amd64"]), "amd64");
    let both = Command::new(mgw_bin())
        .arg("load")
        .arg(&image)
        .args(["--platform", "all"])
        .env("DOCKER_HOST", &docker.host)
        .output()
        .unwrap();
    assert_eq!(
        both.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&both.stderr)
    );
}
