//! The Helm chart (`helm/`) and the plain manifests (`k8s/`), rendered by the real
//! tools and checked against Kubernetes' own schemas.
//!
//! `helm lint --strict` and `helm template` run over every value set in
//! `helm/ci/`, `kubectl kustomize` over `k8s/` and its example overlay. Every
//! rendered object goes through `kubernetes-validate --strict` for the oldest
//! Kubernetes the chart supports and current ones, and through cross-object checks
//! (selectors, port names, the pod's security settings) that schemas cannot see.
//! Helm, kubectl and kubernetes-validate come from `target/tools/bin`, where
//! `bash scripts/setup.sh` installs them; a missing tool fails the test.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mgw_tests::{root, run, tool};
use serde::Deserialize as _;
use serde_yaml::Value;

/// Kubernetes versions every object is validated against: the chart's minimum
/// (`kubeVersion: >=1.30`, needed for the `preStop.sleep` action), the version
/// of the kubectl we install, and the newest the pinned validator knows.
const KUBE_VERSIONS: &[&str] = &["1.30", "1.33", "1.37"];

/// Kinds from CRDs, for which kubernetes-validate has no schema. They are left
/// out of its input on purpose (it would only warn) and checked here instead by
/// [`check_objects`]: the ServiceMonitor must select the admin Service and name
/// one of its ports.
const CRD_KINDS: &[(&str, &str)] = &[("monitoring.coreos.com/v1", "ServiceMonitor")];

const DIGEST: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

fn chart() -> PathBuf {
    root().join("helm")
}

fn helm_bin() -> PathBuf {
    tool("helm", "bash scripts/install-helm.sh")
}

fn kubectl_bin() -> PathBuf {
    tool("kubectl", "bash scripts/install-helm.sh")
}

fn validator_bin() -> PathBuf {
    tool(
        "kubernetes-validate",
        "bash scripts/install-kubernetes-validate.sh",
    )
}

/// A `helm` command that keeps its config and cache out of the user's home.
fn helm(home: &Path) -> Command {
    let mut c = Command::new(helm_bin());
    for (var, dir) in [
        ("HELM_CONFIG_HOME", "config"),
        ("HELM_CACHE_HOME", "cache"),
        ("HELM_DATA_HOME", "data"),
    ] {
        c.env(var, home.join(dir));
    }
    c
}

/// The value sets in `helm/ci/`, sorted.
fn value_sets() -> Vec<PathBuf> {
    let mut sets: Vec<PathBuf> = std::fs::read_dir(chart().join("ci"))
        .expect("helm/ci exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    sets.sort();
    for wanted in ["minimal", "everything", "tls", "hpa", "ingress"] {
        assert!(
            sets.iter().any(|p| p
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(wanted))),
            "helm/ci has no `{wanted}-values.yaml`"
        );
    }
    sets
}

fn template(home: &Path, args: &[&str]) -> Output {
    helm(home)
        .args(["template", "gw", "--namespace", "apis"])
        .arg(chart())
        .args(args)
        .output()
        .expect("run helm")
}

fn render(home: &Path, args: &[&str]) -> String {
    let out = template(home, args);
    assert!(
        out.status.success(),
        "helm template {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 manifests")
}

/// Renders and expects failure; returns stderr.
fn render_err(home: &Path, args: &[&str]) -> String {
    let out = template(home, args);
    assert!(
        !out.status.success(),
        "helm template {args:?} should have failed, rendered:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn documents(yaml: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(yaml)
        .map(|d| Value::deserialize(d).expect("rendered YAML parses"))
        .filter(|v| !v.is_null())
        .collect()
}

fn kind(o: &Value) -> &str {
    o["kind"].as_str().unwrap_or_default()
}

fn name(o: &Value) -> &str {
    o["metadata"]["name"].as_str().unwrap_or_default()
}

fn is_crd_kind(o: &Value) -> bool {
    CRD_KINDS
        .iter()
        .any(|(api, k)| o["apiVersion"].as_str() == Some(api) && kind(o) == *k)
}

fn only<'a>(objs: &'a [Value], k: &str) -> &'a Value {
    let found: Vec<&Value> = objs.iter().filter(|o| kind(o) == k).collect();
    assert_eq!(
        found.len(),
        1,
        "expected exactly one {k}, got {}",
        found.len()
    );
    found[0]
}

fn string_map(v: &Value) -> BTreeMap<String, String> {
    v.as_mapping()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    (
                        k.as_str().unwrap_or_default().to_owned(),
                        v.as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Whether every `selector` label is among `labels`.
fn selects(selector: &Value, labels: &Value) -> bool {
    let sel = string_map(selector);
    let labels = string_map(labels);
    !sel.is_empty() && sel.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// Validates every non-CRD object against the Kubernetes schemas of
/// [`KUBE_VERSIONS`], strictly (unknown fields are errors). Nothing is allowed to
/// be skipped: each object must be reported as passed for each version.
fn validate(what: &str, objs: &[Value]) {
    let checked: Vec<&Value> = objs.iter().filter(|o| !is_crd_kind(o)).collect();
    assert!(!checked.is_empty(), "{what}: nothing to validate");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("objects.yaml");
    let text = checked
        .iter()
        .map(|o| serde_yaml::to_string(o).expect("serialize"))
        .collect::<Vec<_>>()
        .join("---\n");
    std::fs::write(&file, text).expect("write objects");
    let mut cmd = Command::new(validator_bin());
    cmd.arg("--strict");
    for v in KUBE_VERSIONS {
        cmd.args(["--kubernetes-version", v]);
    }
    let out = cmd.arg(&file).output().expect("run kubernetes-validate");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "{what}: kubernetes-validate failed:\n{report}"
    );
    // It exits 0 when it has no schema for a kind and only warns: count passes.
    let passed = stdout
        .lines()
        .filter(|l| l.contains(" passed for "))
        .count();
    assert_eq!(
        passed,
        checked.len() * KUBE_VERSIONS.len(),
        "{what}: not every object was validated against every version:\n{report}"
    );
    assert!(
        !stdout
            .lines()
            .any(|l| l.starts_with("WARN") || l.starts_with("ERROR")),
        "{what}: kubernetes-validate reported problems:\n{report}"
    );
}

/// What a schema cannot check: the pod runs the way the image is built, and
/// every object that refers to another one (by selector, name or port name)
/// finds it.
fn check_objects(what: &str, objs: &[Value]) {
    let deploy = only(objs, "Deployment");
    let pod_labels = &deploy["spec"]["template"]["metadata"]["labels"];
    let pod = &deploy["spec"]["template"]["spec"];
    assert!(
        selects(&deploy["spec"]["selector"]["matchLabels"], pod_labels),
        "{what}: the Deployment's selector does not match its pods"
    );

    // Security context: the image runs as 65532 with nothing writable or privileged.
    let psc = &pod["securityContext"];
    assert_eq!(psc["runAsNonRoot"].as_bool(), Some(true), "{what}");
    assert_eq!(psc["runAsUser"].as_u64(), Some(65532), "{what}");
    assert_eq!(psc["runAsGroup"].as_u64(), Some(65532), "{what}");
    assert_eq!(
        psc["seccompProfile"]["type"].as_str(),
        Some("RuntimeDefault"),
        "{what}"
    );
    assert_eq!(pod["automountServiceAccountToken"].as_bool(), Some(false));
    let containers = pod["containers"].as_sequence().expect("containers");
    assert_eq!(containers.len(), 1, "{what}: one container");
    let c = &containers[0];
    let sc = &c["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"].as_bool(), Some(true), "{what}");
    assert_eq!(sc["allowPrivilegeEscalation"].as_bool(), Some(false));
    assert_eq!(
        sc["capabilities"]["drop"][0].as_str(),
        Some("ALL"),
        "{what}"
    );
    assert!(
        c["command"].is_null() && c["args"].is_null(),
        "{what}: the image's entrypoint (bundle + digest) must not be overridden"
    );

    // Probes on the admin port, and a stop that covers preStop + the 20 s drain.
    for (probe, path) in [
        ("startupProbe", "/healthz"),
        ("livenessProbe", "/healthz"),
        ("readinessProbe", "/readyz"),
    ] {
        assert_eq!(
            c[probe]["httpGet"]["path"].as_str(),
            Some(path),
            "{what}: {probe}"
        );
        assert_eq!(
            c[probe]["httpGet"]["port"].as_str(),
            Some("admin"),
            "{what}: {probe}"
        );
    }
    let pre_stop = c["lifecycle"]["preStop"]["sleep"]["seconds"]
        .as_u64()
        .unwrap_or(0);
    let grace = pod["terminationGracePeriodSeconds"]
        .as_u64()
        .expect("terminationGracePeriodSeconds");
    assert!(
        grace >= pre_stop + 20,
        "{what}: terminationGracePeriodSeconds {grace} < preStop {pre_stop} + drain 20"
    );
    assert_eq!(
        deploy["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"].as_u64(),
        Some(0),
        "{what}: a rollout must never take a ready pod away first"
    );

    let container_ports: Vec<&str> = c["ports"]
        .as_sequence()
        .expect("ports")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    let services: Vec<&Value> = objs.iter().filter(|o| kind(o) == "Service").collect();
    for svc in &services {
        assert!(
            selects(&svc["spec"]["selector"], pod_labels),
            "{what}: Service `{}` does not select the gateway pods",
            name(svc)
        );
        for p in svc["spec"]["ports"].as_sequence().expect("service ports") {
            let target = p["targetPort"].as_str().unwrap_or_default();
            assert!(
                container_ports.contains(&target),
                "{what}: Service `{}` targets unknown port `{target}`",
                name(svc)
            );
        }
    }
    let service_port = |svc: &str, port: &str| {
        services.iter().any(|s| {
            name(s) == svc
                && s["spec"]["ports"]
                    .as_sequence()
                    .is_some_and(|ps| ps.iter().any(|p| p["name"].as_str() == Some(port)))
        })
    };

    for o in objs {
        match kind(o) {
            "PodDisruptionBudget" => assert!(
                selects(&o["spec"]["selector"]["matchLabels"], pod_labels),
                "{what}: the PodDisruptionBudget does not select the pods"
            ),
            "NetworkPolicy" => assert!(
                selects(&o["spec"]["podSelector"]["matchLabels"], pod_labels),
                "{what}: the NetworkPolicy does not select the pods"
            ),
            "HorizontalPodAutoscaler" => {
                assert_eq!(
                    o["spec"]["scaleTargetRef"]["name"].as_str(),
                    Some(name(deploy)),
                    "{what}: the HPA scales another Deployment"
                );
                assert!(
                    deploy["spec"]["replicas"].is_null(),
                    "{what}: with an HPA the Deployment must not set replicas"
                );
            }
            "Ingress" => {
                for rule in o["spec"]["rules"].as_sequence().expect("rules") {
                    for p in rule["http"]["paths"].as_sequence().expect("paths") {
                        let backend = &p["backend"]["service"];
                        let svc = backend["name"].as_str().unwrap_or_default();
                        let port = backend["port"]["name"].as_str().unwrap_or_default();
                        assert!(
                            service_port(svc, port),
                            "{what}: the Ingress routes to `{svc}` port `{port}`, which does not exist"
                        );
                    }
                }
            }
            "ServiceMonitor" => {
                let admin: Vec<&&Value> = services
                    .iter()
                    .filter(|s| {
                        selects(
                            &o["spec"]["selector"]["matchLabels"],
                            &s["metadata"]["labels"],
                        )
                    })
                    .collect();
                assert_eq!(
                    admin.len(),
                    1,
                    "{what}: the ServiceMonitor must select exactly the admin Service"
                );
                let endpoints = o["spec"]["endpoints"].as_sequence().expect("endpoints");
                assert!(!endpoints.is_empty(), "{what}: ServiceMonitor endpoints");
                for e in endpoints {
                    let port = e["port"].as_str().unwrap_or_default();
                    assert!(
                        service_port(name(admin[0]), port),
                        "{what}: the ServiceMonitor scrapes port `{port}`, which the admin Service lacks"
                    );
                    assert_eq!(e["path"].as_str(), Some("/metrics"), "{what}");
                }
            }
            _ => {}
        }
    }
}

fn image_of(objs: &[Value]) -> String {
    only(objs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .expect("image")
        .to_owned()
}

fn env_of(objs: &[Value]) -> BTreeMap<String, Value> {
    only(objs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_sequence()
        .expect("env")
        .iter()
        .map(|e| {
            let value = if e["value"].is_null() {
                e["valueFrom"].clone()
            } else {
                e["value"].clone()
            };
            (e["name"].as_str().unwrap_or_default().to_owned(), value)
        })
        .collect()
}

#[test]
fn chart_lints_strictly_with_every_value_set() {
    let home = tempfile::tempdir().expect("tempdir");
    for values in value_sets() {
        // `helm lint` does not stop at a template's `fail`, so the render tests
        // below are the ones that catch those; lint checks the chart itself.
        run(helm(home.path())
            .args(["lint", "--strict"])
            .arg(chart())
            .arg("-f")
            .arg(&values))
        .unwrap_or_else(|e| panic!("{e:#}"));
    }
}

#[test]
fn chart_renders_valid_objects_for_every_value_set() {
    let home = tempfile::tempdir().expect("tempdir");
    for values in value_sets() {
        let what = values.file_name().unwrap().to_string_lossy().into_owned();
        let objs = documents(&render(home.path(), &["-f", values.to_str().unwrap()]));
        check_objects(&what, &objs);
        validate(&what, &objs);
    }
}

#[test]
fn everything_on_renders_every_kind() {
    let home = tempfile::tempdir().expect("tempdir");
    let values = chart().join("ci/everything-values.yaml");
    let objs = documents(&render(home.path(), &["-f", values.to_str().unwrap()]));
    let mut kinds: Vec<&str> = objs.iter().map(kind).collect();
    kinds.sort_unstable();
    assert_eq!(
        kinds,
        [
            "Deployment",
            "HorizontalPodAutoscaler",
            "Ingress",
            "NetworkPolicy",
            "PodDisruptionBudget",
            "Service",
            "Service",
            "ServiceAccount",
            "ServiceMonitor",
        ]
    );
    // Every secret is mounted read-only from an existing Secret, and the
    // variables that tell the bundle where the files are point into the mounts.
    let env = env_of(&objs);
    for (var, path) in [
        ("MGW_TLS_CERT_FILE", "/etc/mgw/secrets/tls/tls.crt"),
        ("MGW_TLS_KEY_FILE", "/etc/mgw/secrets/tls/tls.key"),
        (
            "MGW_TLS_CLIENT_CA_FILE",
            "/etc/mgw/secrets/client-ca/ca.crt",
        ),
        ("MGW_API_KEYS_FILE", "/etc/mgw/secrets/api-keys/api-keys"),
        (
            "MGW_BASIC_AUTH_USERS_FILE",
            "/etc/mgw/secrets/basic-auth/htpasswd",
        ),
        (
            "MGW_JWT_HMAC_PARTNER_B_FILE",
            "/etc/mgw/secrets/jwt-hmac/partner-b/secret",
        ),
        (
            "MGW_INTROSPECTION_IDP_CLIENT_SECRET_FILE",
            "/etc/mgw/secrets/introspection/idp/client-secret",
        ),
        ("MGW_UPSTREAM_CA_DIR", "/etc/mgw/secrets/upstream-ca"),
        ("MGW_REDIS_PASSWORD_FILE", "/etc/mgw/secrets/redis/password"),
        (
            "MGW_OTLP_ENDPOINT",
            "http://otel-collector.observability:4318",
        ),
        (
            "MGW_REDIS_URL",
            "rediss://redis-master.redis.svc.cluster.local:6379",
        ),
        ("MGW_LISTEN", "[::]:8443"),
    ] {
        assert_eq!(env.get(var).and_then(Value::as_str), Some(path), "{var}");
    }
    let c = &only(&objs, "Deployment")["spec"]["template"]["spec"]["containers"][0];
    let mounts = c["volumeMounts"].as_sequence().expect("mounts");
    for m in mounts {
        let path = m["mountPath"].as_str().unwrap_or_default();
        if path.starts_with("/etc/mgw/secrets/") {
            assert_eq!(m["readOnly"].as_bool(), Some(true), "{path} read-only");
        }
    }
}

#[test]
fn chart_pins_the_image_by_digest_else_by_tag() {
    let home = tempfile::tempdir().expect("tempdir");
    let repo = "registry.example.com/gateways/petstore";
    let base = [
        "--set",
        "image.repository=registry.example.com/gateways/petstore",
    ];
    let with = |extra: &[&str]| {
        let args: Vec<&str> = base.iter().chain(extra).copied().collect();
        image_of(&documents(&render(home.path(), &args)))
    };
    let digest = format!("image.digest={DIGEST}");
    assert_eq!(with(&["--set", &digest]), format!("{repo}@{DIGEST}"));
    // A digest wins over a tag: the tag is only informational then.
    assert_eq!(
        with(&["--set", &digest, "--set", "image.tag=1.0.0-0123456789ab"]),
        format!("{repo}@{DIGEST}")
    );
    assert_eq!(
        with(&["--set", "image.tag=1.0.0-0123456789ab"]),
        format!("{repo}:1.0.0-0123456789ab")
    );
}

#[test]
fn chart_fails_clearly_without_an_image() {
    let home = tempfile::tempdir().expect("tempdir");
    let err = render_err(home.path(), &[]);
    assert!(err.contains("image.repository is required"), "{err}");
    let err = render_err(home.path(), &["--set", "image.repository=r.example/gw"]);
    assert!(
        err.contains("image.digest or image.tag is required"),
        "{err}"
    );
}

#[test]
fn schema_rejects_wrong_values_at_render_time() {
    let home = tempfile::tempdir().expect("tempdir");
    let minimal = chart().join("ci/minimal-values.yaml");
    let minimal = minimal.to_str().unwrap();
    for (set, key) in [
        ("replicaCount=abc", "/replicaCount"),
        ("image.digest=notadigest", "/image/digest"),
        ("image.digest=sha256:ABC", "/image/digest"),
        ("image.repository=Registry/UPPER", "/image/repository"),
        ("gateway.logFormat=xml", "/gateway/logFormat"),
        ("gateway.ports.api=80", "/gateway/ports/api"),
        ("service.type=External", "/service/type"),
        ("lifecycle.drainSeconds=soon", "/lifecycle/drainSeconds"),
        ("tls.existingSecret=Not_A_Name", "/tls/existingSecret"),
        ("replicas=3", "replicas"),
        ("image.sha=abc", "sha"),
        ("env.MGW_LISTEN=0.0.0.0:1", "MGW_LISTEN"),
        ("env.MGW_REPLICAS=3", "MGW_REPLICAS"),
        // A password never goes in values: it comes from `existingSecret`.
        (
            "rateLimits.redis.url=redis://u:p@h:6379",
            "/rateLimits/redis/url",
        ),
        (
            "tracing.otlp.endpoint=grpc://collector:4317",
            "/tracing/otlp/endpoint",
        ),
    ] {
        let err = render_err(home.path(), &["-f", minimal, "--set", set]);
        assert!(
            err.contains("schema") && err.contains(key),
            "--set {set}: expected a schema error at `{key}`, got:\n{err}"
        );
    }
}

#[test]
fn chart_refuses_values_that_would_break_the_pod() {
    let home = tempfile::tempdir().expect("tempdir");
    let minimal = chart().join("ci/minimal-values.yaml");
    let minimal = minimal.to_str().unwrap();
    for (sets, message) in [
        (
            &["requiredEnv={PETSTORE_URL,INVENTORY_URL}"][..],
            "nothing sets: INVENTORY_URL",
        ),
        (
            &["lifecycle.terminationGracePeriodSeconds=10"][..],
            "must cover lifecycle.preStopSleepSeconds + lifecycle.drainSeconds (25)",
        ),
        (
            &["tls.enabled=true"][..],
            "tls.enabled needs tls.existingSecret",
        ),
        (
            &["serviceMonitor.enabled=true", "adminService.enabled=false"][..],
            "serviceMonitor.enabled needs adminService.enabled",
        ),
        (
            &[
                "autoscaling.enabled=true",
                "autoscaling.targetCPUUtilizationPercentage=null",
            ][..],
            "needs at least one metric",
        ),
    ] {
        let mut args = vec!["-f", minimal];
        for s in sets {
            args.extend(["--set", s]);
        }
        let err = render_err(home.path(), &args);
        assert!(err.contains(message), "{sets:?}: {err}");
    }
    // A variable set through a secret reference counts as set.
    let objs = documents(&render(
        home.path(),
        &[
            "-f",
            minimal,
            "--set",
            "requiredEnv={PETSTORE_URL,TOKEN}",
            "--set",
            "extraEnv[0].name=TOKEN",
            "--set",
            "extraEnv[0].valueFrom.secretKeyRef.name=tok",
            "--set",
            "extraEnv[0].valueFrom.secretKeyRef.key=token",
        ],
    ));
    assert!(env_of(&objs).contains_key("TOKEN"));
}

#[test]
fn workers_follow_the_cpu_limit_unless_set() {
    let home = tempfile::tempdir().expect("tempdir");
    let minimal = chart().join("ci/minimal-values.yaml");
    let minimal = minimal.to_str().unwrap();
    let env = env_of(&documents(&render(home.path(), &["-f", minimal])));
    assert_eq!(
        env["MGW_WORKERS"]["resourceFieldRef"]["resource"].as_str(),
        Some("limits.cpu")
    );
    let env = env_of(&documents(&render(
        home.path(),
        &["-f", minimal, "--set", "gateway.workers=3"],
    )));
    assert_eq!(env["MGW_WORKERS"].as_str(), Some("3"));
}

/// `MGW_REPLICAS` (for `rateLimits.redis.replicas: ${MGW_REPLICAS}`) is the most
/// replicas that can run: the HPA's maximum, else `replicaCount`.
#[test]
fn replicas_variable_is_the_most_replicas_that_can_run() {
    let home = tempfile::tempdir().expect("tempdir");
    let minimal = chart().join("ci/minimal-values.yaml");
    let minimal = minimal.to_str().unwrap();
    let replicas = |args: &[&str]| {
        let mut all = vec!["-f", minimal];
        all.extend_from_slice(args);
        env_of(&documents(&render(home.path(), &all)))["MGW_REPLICAS"].clone()
    };
    assert_eq!(replicas(&["--set", "replicaCount=4"]).as_str(), Some("4"));
    let hpa = chart().join("ci/hpa-values.yaml");
    assert_eq!(
        replicas(&["-f", hpa.to_str().unwrap(), "--set", "replicaCount=4"]).as_str(),
        Some("20")
    );
}

#[test]
fn notes_tell_how_to_reach_the_gateway_and_admin_endpoints() {
    let home = tempfile::tempdir().expect("tempdir");
    let values = chart().join("ci/ingress-values.yaml");
    let out = run(helm(home.path())
        .args(["install", "gw", "--dry-run=client", "--namespace", "apis"])
        .arg(chart())
        .arg("-f")
        .arg(values))
    .unwrap_or_else(|e| panic!("{e:#}"));
    let text = String::from_utf8_lossy(&out.stdout);
    let notes = text.split("NOTES:").nth(1).expect("NOTES rendered");
    for needle in [
        "https://petstore.example.com/petstore",
        "kubectl -n apis port-forward service/gw-mgw-gateway 8080:80",
        "kubectl -n apis port-forward service/gw-mgw-gateway-admin 9090:9090",
        "/readyz",
        "/metrics",
        "/info",
    ] {
        assert!(notes.contains(needle), "NOTES lack `{needle}`:\n{notes}");
    }
}

fn kustomize(dir: &str) -> Vec<Value> {
    let out = run(Command::new(kubectl_bin())
        .arg("kustomize")
        .arg(root().join(dir)))
    .unwrap_or_else(|e| panic!("{e:#}"));
    documents(&String::from_utf8(out.stdout).expect("utf-8"))
}

#[test]
fn kustomize_base_renders_valid_objects() {
    let objs = kustomize("k8s");
    check_objects("k8s/", &objs);
    validate("k8s/", &objs);
    // The bundle's variables come from the generated ConfigMap.
    let cm = only(&objs, "ConfigMap");
    let envfrom =
        &only(&objs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["envFrom"];
    assert_eq!(envfrom[0]["configMapRef"]["name"].as_str(), Some(name(cm)));
}

#[test]
fn kustomize_example_overlay_pins_the_digest_and_validates() {
    let objs = kustomize("k8s/examples/petstore");
    check_objects("k8s/examples/petstore", &objs);
    validate("k8s/examples/petstore", &objs);
    assert_eq!(
        image_of(&objs),
        format!("registry.example.com/gateways/petstore@{DIGEST}")
    );
    let cm = only(&objs, "ConfigMap");
    assert!(cm["data"]["PETSTORE_URL"].is_string());
    // With the hpa component, the Redis fallback divides by its maxReplicas.
    let hpa = only(&objs, "HorizontalPodAutoscaler");
    assert_eq!(
        env_of(&objs)["MGW_REPLICAS"].as_str(),
        Some(
            hpa["spec"]["maxReplicas"]
                .as_u64()
                .unwrap()
                .to_string()
                .as_str()
        )
    );
    for o in &objs {
        assert_eq!(
            o["metadata"]["namespace"].as_str(),
            Some("petstore"),
            "{}",
            name(o)
        );
    }
}

/// The plain manifests are the chart's default rendering written out: the pod
/// settings that matter for running the image must not drift apart.
#[test]
fn kustomize_base_matches_the_chart_defaults() {
    let home = tempfile::tempdir().expect("tempdir");
    let minimal = chart().join("ci/minimal-values.yaml");
    let chart_objs = documents(&render(home.path(), &["-f", minimal.to_str().unwrap()]));
    let k8s_objs = kustomize("k8s");
    let pod = |objs: &[Value]| only(objs, "Deployment")["spec"]["template"]["spec"].clone();
    let (a, b) = (pod(&chart_objs), pod(&k8s_objs));
    for key in [
        "securityContext",
        "terminationGracePeriodSeconds",
        "automountServiceAccountToken",
        "enableServiceLinks",
        "volumes",
    ] {
        assert_eq!(a[key], b[key], "pod `{key}` differs between helm/ and k8s/");
    }
    let (ca, cb) = (&a["containers"][0], &b["containers"][0]);
    for key in [
        "ports",
        "startupProbe",
        "livenessProbe",
        "readinessProbe",
        "lifecycle",
        "resources",
        "securityContext",
        "volumeMounts",
    ] {
        assert_eq!(
            ca[key], cb[key],
            "container `{key}` differs between helm/ and k8s/"
        );
    }
    let strategy = |objs: &[Value]| only(objs, "Deployment")["spec"]["strategy"].clone();
    assert_eq!(strategy(&chart_objs), strategy(&k8s_objs));
    let env = |objs: &[Value]| {
        let mut e = env_of(objs);
        e.retain(|k, _| k.starts_with("MGW_") && k != "MGW_LOG" && k != "MGW_LOG_FORMAT");
        e
    };
    assert_eq!(env(&chart_objs), env(&k8s_objs));
}
