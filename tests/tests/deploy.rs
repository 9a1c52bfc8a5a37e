//! From `mgw build` to deployable artifacts: the values mgw writes pin the image
//! by digest in the Helm chart, `mgw resolve` pins it in the plain manifests, and
//! the pod's security settings, applied by a real dockerd, still let it serve.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use mgw_tests::*;
use serde::Deserialize as _;
use serde_yaml::Value;

fn helm(home: &Path) -> Command {
    let mut c = Command::new(tool("helm", "bash scripts/install-helm.sh"));
    for (var, dir) in [
        ("HELM_CONFIG_HOME", "config"),
        ("HELM_CACHE_HOME", "cache"),
        ("HELM_DATA_HOME", "data"),
    ] {
        c.env(var, home.join(dir));
    }
    c
}

fn documents(yaml: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(yaml)
        .map(|d| Value::deserialize(d).expect("YAML parses"))
        .filter(|v| !v.is_null())
        .collect()
}

fn deployment(docs: &[Value]) -> &Value {
    docs.iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("a Deployment")
}

/// Builds the example; returns (temp dir, image dir, the digest reference mgw printed last).
fn build() -> (tempfile::TempDir, PathBuf, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = run(Command::new(mgw_bin())
        .args(["build", "--out"])
        .arg(dir.path())
        .arg(root().join("examples/petstore"))
        .env("MGW_GATEWAY_BINARY", gateway_bin())
        .env_remove("SOURCE_DATE_EPOCH"))
    .unwrap();
    let printed = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap()
        .to_owned();
    let image = dir.path().join("petstore");
    (dir, image, printed)
}

#[test]
fn values_written_by_build_pin_the_digest_in_the_chart() {
    let (dir, image, printed) = build();
    assert!(printed.contains("@sha256:"), "{printed}");
    let home = dir.path().join("helm-home");
    let out = run(helm(&home)
        .args(["template", "petstore"])
        .arg(root().join("helm"))
        .arg("-f")
        .arg(image.join("values.yaml")))
    .unwrap();
    let docs = documents(&String::from_utf8_lossy(&out.stdout));
    let c = &deployment(&docs)["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["image"].as_str().unwrap(), printed);

    // `mgw deploy-values` renders the same pin for a pushed repository.
    let values = run(Command::new(mgw_bin())
        .args(["deploy-values"])
        .arg(&image)
        .args(["--repository", "registry.example.com/gw/petstore"]))
    .unwrap();
    let v: Value = serde_yaml::from_slice(&values.stdout).unwrap();
    let digest = printed.split('@').nth(1).unwrap();
    assert_eq!(v["image"]["digest"].as_str().unwrap(), digest);
    assert_eq!(
        v["image"]["repository"].as_str().unwrap(),
        "registry.example.com/gw/petstore"
    );
}

#[test]
fn resolve_pins_the_kustomize_manifests() {
    let (dir, image, printed) = build();
    let kubectl = tool("kubectl", "bash scripts/install-helm.sh");
    let rendered = run(Command::new(kubectl)
        .arg("kustomize")
        .arg(root().join("k8s")))
    .unwrap();
    let input = dir.path().join("k8s.yaml");
    std::fs::write(&input, &rendered.stdout).unwrap();
    let out = run(Command::new(mgw_bin())
        .args(["resolve", "--image"])
        .arg(&image)
        .arg("-f")
        .arg(&input))
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let docs = documents(&text);
    assert!(docs.len() >= 4, "{text}");
    let c = &deployment(&docs)["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["image"].as_str().unwrap(), printed);
    // Still valid Kubernetes objects.
    let resolved = dir.path().join("resolved.yaml");
    std::fs::write(&resolved, &text).unwrap();
    run(Command::new(tool(
        "kubernetes-validate",
        "bash scripts/install-kubernetes-validate.sh",
    ))
    .args(["--strict", "--kubernetes-version", "1.33", "--quiet"])
    .arg(&resolved))
    .unwrap();
}

#[test]
fn the_pod_security_settings_run_in_dockerd() {
    let (dir, image, printed) = build();
    // The pod as the chart renders it.
    let home = dir.path().join("helm-home");
    let out = run(helm(&home)
        .args(["template", "petstore"])
        .arg(root().join("helm"))
        .arg("-f")
        .arg(image.join("values.yaml")))
    .unwrap();
    let docs = documents(&String::from_utf8_lossy(&out.stdout));
    let pod = &deployment(&docs)["spec"]["template"]["spec"];
    let sc = &pod["containers"][0]["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"], Value::Bool(true));
    assert_eq!(sc["allowPrivilegeEscalation"], Value::Bool(false));
    assert_eq!(sc["capabilities"]["drop"][0].as_str(), Some("ALL"));
    let (uid, gid) = (
        sc["runAsUser"].as_u64().unwrap(),
        sc["runAsGroup"].as_u64().unwrap(),
    );

    // The same settings, as docker flags.
    let docker = Dockerd::start().unwrap();
    docker
        .docker(&["load", "-i", image.join("image.tar").to_str().unwrap()])
        .unwrap();
    let tag_ref = {
        let meta: serde_json::Value =
            serde_json::from_slice(&std::fs::read(image.join("build.json")).unwrap()).unwrap();
        assert_eq!(meta["image"], printed.as_str());
        meta["reference"].as_str().unwrap().to_owned()
    };
    let backend = Backend::start();
    let (api, admin) = (free_port(), free_port());
    let name = format!("mgw-pod-{}", std::process::id());
    let mut args: Vec<String> = vec![
        "run".into(),
        "-d".into(),
        "--name".into(),
        name.clone(),
        "--network".into(),
        "host".into(),
        "--user".into(),
        format!("{uid}:{gid}"),
        "--read-only".into(),
        "--cap-drop".into(),
        "ALL".into(),
        "--security-opt".into(),
        "no-new-privileges".into(),
    ];
    if pod["volumes"]
        .as_sequence()
        .is_some_and(|v| v.iter().any(|v| v["name"] == "tmp"))
    {
        args.extend(["--tmpfs".into(), "/tmp".into()]);
    }
    for kv in [
        format!("MGW_LISTEN=127.0.0.1:{api}"),
        format!("MGW_ADMIN_LISTEN=127.0.0.1:{admin}"),
        format!("PETSTORE_UPSTREAM=http://{}/v1", backend.addr),
    ] {
        args.extend(["-e".into(), kv]);
    }
    args.push(tag_ref);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    docker.docker(&args).unwrap();
    let ready = wait_for(Duration::from_secs(30), || {
        http_get(
            format!("127.0.0.1:{admin}").parse().unwrap(),
            "/readyz",
            &[],
        )
        .ok()
        .filter(|(s, _)| *s == 200)
    });
    assert!(
        ready.is_some(),
        "gateway did not become ready under the pod's security settings"
    );
    let (status, body) = http_get(
        format!("127.0.0.1:{api}").parse().unwrap(),
        "/petstore/v1/pets",
        &[],
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let _ = docker.docker(&["rm", "-f", &name]);
}
