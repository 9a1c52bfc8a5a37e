//! WSO2 Microgateway 3.1 projects from `tests/corpus/wso2/` (unchanged copies, see
//! its `SOURCES.md`) migrated with the real `mgw`: each API definition is laid out
//! as a 3.x project (`api_definitions/<file>` with the project's `policies.yaml`
//! beside it), then `mgw init` → `mgw validate` → `mgw build`, with nothing added
//! to the generated `mgw.yaml` but an `auth.providers` block (one provider per
//! security scheme the document declares, plus `default` for WSO2's default
//! OAuth2 security).
//!
//! Most of these documents send traffic to `https://` endpoints. Until the gateway
//! serves HTTPS upstreams, such a document must fail with exactly that refusal and
//! nothing else; once it does, it must build. Which of the two applies is asked
//! of `mgw` itself (a one-line project with an `https://` upstream).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const MGW: &str = env!("CARGO_BIN_EXE_mgw");

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/corpus/wso2")
}

/// The musl gateway binary `mgw build` bakes.
fn gateway() -> PathBuf {
    let p = std::env::var_os("MGW_GATEWAY_BINARY").map_or_else(
        || {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../target/x86_64-unknown-linux-musl/release/mgw-gateway")
        },
        PathBuf::from,
    );
    assert!(
        p.exists(),
        "`{}` is missing: run `make gateway` first",
        p.display()
    );
    p
}

fn mgw(args: &[&str], cwd: &Path) -> Output {
    Command::new(MGW)
        .args(args)
        .current_dir(cwd)
        .env("MGW_GATEWAY_BINARY", gateway())
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

const TESTS: &str = "tests/src/test/resources";
const SAMPLES_POLICIES: &str = "distribution/resources/definitions/policies.yaml";

/// Documents that build as migrated: (path in the corpus, needs HTTPS upstreams).
const BUILDS: &[(&str, bool)] = &[
    ("samples/cors_sample.yaml", true),
    ("samples/per_resource_endpoint.yaml", true),
    ("samples/petstore_basic.yaml", true),
    ("samples/petstore_swagger3.yaml", false),
    ("samples/policies_sample.yaml", true),
    ("samples/security_sample.yaml", true),
    ("tests/src/test/resources/openAPIs/common_api.yaml", true),
    (
        "tests/src/test/resources/openAPIs/endpoints/endpoint_override.yaml",
        true,
    ),
    (
        "tests/src/test/resources/openAPIs/endpoints/endpoints_by_reference.yaml",
        true,
    ),
    (
        "tests/src/test/resources/openAPIs/endpoints/fail_over.yaml",
        true,
    ),
    (
        "tests/src/test/resources/openAPIs/endpoints/load_balance.yaml",
        true,
    ),
    (
        "tests/src/test/resources/openAPIs/jwtGeneration/jwt_generation.yaml",
        true,
    ),
    (
        "tests/src/test/resources/openAPIs/security/disable_security.yaml",
        true,
    ),
    (
        "tests/src/test/resources/openAPIs/validation/validation_api.yaml",
        true,
    ),
];

/// A document mgw refuses, and what the refusal names: the place (file:line:col),
/// the key path and the reason (each found in the output, grouped or not).
const REFUSED: &[(&str, &[&str])] = &[
    (
        "samples/endpoint_by_reference_sample.yaml",
        &[
            "endpoint_by_reference_sample.yaml:177:5",
            "`#/x-wso2-endpoints/0/myEndpoint/securityConfig`",
            "`securityConfig` (credentials the gateway sends to the upstream) is not supported yet",
        ],
    ),
    (
        "tests/src/test/resources/openAPIs/endpoints/endpoint_security.yaml",
        &[
            "endpoint_security.yaml:707:7",
            "`#/x-wso2-endpoints/0/myEndpoint1/securityConfig`",
        ],
    ),
    (
        "tests/src/test/resources/openAPIs/serviceDiscovery/etcd_test.yaml",
        &[
            "etcd_test.yaml:388:7",
            "`#/x-wso2-production-endpoints/urls/0`",
            "etcd service discovery is not supported",
        ],
    ),
    (
        // MGW's own negative test: schemes and schemas it names are not defined.
        "tests/src/test/resources/openAPIs/throttling/throttle.yaml",
        &[
            "throttle.yaml:20:5",
            "`#/security/0/petstore_auth`",
            "unknown security scheme `petstore_auth`",
        ],
    ),
];

/// Lays `doc` out as a WSO2 Microgateway 3.x project in `dir` and runs `mgw init`
/// on it; returns the new mgw project's directory.
fn migrate(doc: &str, dir: &Path) -> (PathBuf, Output) {
    let wso2 = dir.join("wso2-project");
    let defs = wso2.join("api_definitions");
    std::fs::create_dir_all(&defs).unwrap();
    let file = Path::new(doc).file_name().unwrap();
    std::fs::copy(corpus().join(doc), defs.join(file)).unwrap();
    let policies = if doc.starts_with(TESTS) {
        format!("{TESTS}/policies.yaml")
    } else {
        SAMPLES_POLICIES.to_owned()
    };
    std::fs::copy(corpus().join(policies), wso2.join("policies.yaml")).unwrap();
    let spec = format!("wso2-project/api_definitions/{}", file.to_str().unwrap());
    let out = mgw(&["init", &spec, "--dir", "gw"], dir);
    (dir.join("gw"), out)
}

/// WSO2 interceptors name native filters: the migrated project is written, and
/// `mgw validate` says where each is named and how to add a `runtime/` with it.
const INTERCEPTORS: &[(&str, &[&str])] = &[
    (
        "samples/interceptors_sample.yaml",
        &[
            "interceptors_sample.yaml:43:7",
            "`#/paths/~1pet~1findByStatus/get/x-wso2-request-interceptor`",
            "`x-wso2-request-interceptor: ",
            "names a native filter, and this project has no `runtime/` crate: run `mgw init --runtime`",
        ],
    ),
    (
        "tests/src/test/resources/openAPIs/interceptor/interceptor.yaml",
        &["names a native filter, and this project has no `runtime/` crate"],
    ),
    (
        "tests/src/test/resources/openAPIs/interceptor/PerAPIInterceptor.yaml",
        &["names a native filter, and this project has no `runtime/` crate"],
    ),
];

/// The one addition a test makes: a provider per declared security scheme, and
/// `default` for WSO2's default OAuth2 security.
fn add_providers(project: &Path, doc: &str) {
    let spec: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(corpus().join(doc)).unwrap()).unwrap();
    let jwt = "{type: jwt, issuer: 'https://idp.example.com/', algorithms: [RS256], jwksUrl: 'https://idp.example.com/jwks'}";
    let mut block = String::from("\nauth:\n  providers:\n");
    let schemes = spec["components"]["securitySchemes"].as_mapping();
    for (name, scheme) in schemes.into_iter().flatten() {
        let name = name.as_str().unwrap();
        let provider = match (scheme["type"].as_str(), scheme["scheme"].as_str()) {
            (Some("apiKey"), _) => "{type: apiKey}",
            (Some("http"), Some(s)) if s.eq_ignore_ascii_case("basic") => "{type: basic}",
            _ => jwt,
        };
        block.push_str(&format!("    {name}: {provider}\n"));
    }
    if spec.get("x-wso2-basePath").is_some() {
        block.push_str(&format!("    default: {jwt}\n"));
    }
    let manifest = project.join("mgw.yaml");
    let mut text = std::fs::read_to_string(&manifest).unwrap();
    assert!(
        !text.contains("\nauth:"),
        "init wrote `auth` itself:\n{text}"
    );
    text.push_str(&block);
    std::fs::write(manifest, text).unwrap();
}

/// Does this `mgw` accept `https://` upstreams?
fn https_upstreams_supported(dir: &Path) -> bool {
    let p = dir.join("https-probe");
    std::fs::create_dir_all(&p).unwrap();
    std::fs::write(
        p.join("mgw.yaml"),
        "name: probe\nversion: '1'\nupstreams: {u: {urls: ['https://127.0.0.1:9']}}\napis: [{name: a, spec: a.yaml, upstream: u}]\n",
    )
    .unwrap();
    std::fs::write(
        p.join("a.yaml"),
        "openapi: 3.0.0\ninfo: {title: a, version: '1'}\npaths: {/a: {get: {}}}\n",
    )
    .unwrap();
    let o = mgw(&["validate", "https-probe"], dir);
    if o.status.success() {
        return true;
    }
    let t = text(&o);
    assert!(
        t.contains("scheme `https` is not supported"),
        "the probe fails for another reason:\n{t}"
    );
    false
}

/// Problems of a failed `mgw validate`, one per line.
fn problems(o: &Output) -> Vec<String> {
    let t = String::from_utf8_lossy(&o.stderr).into_owned();
    t.lines()
        .filter_map(|l| {
            l.strip_prefix("  - ")
                .or_else(|| l.strip_prefix("error: invalid project: "))
        })
        .filter(|l| !l.ends_with(" problems"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn wso2_projects_build_as_migrated() {
    let tmp = tempfile::tempdir().unwrap();
    let https = https_upstreams_supported(tmp.path());
    for (i, &(doc, needs_https)) in BUILDS.iter().enumerate() {
        let dir = tmp.path().join(i.to_string());
        let (project, init) = migrate(doc, &dir);
        assert!(
            init.status.success(),
            "`mgw init` of {doc}:\n{}",
            text(&init)
        );
        add_providers(&project, doc);
        let validate = mgw(&["validate", "gw"], &dir);
        if needs_https && !https {
            assert_eq!(
                validate.status.code(),
                Some(64),
                "{doc}:\n{}",
                text(&validate)
            );
            let p = problems(&validate);
            assert!(!p.is_empty(), "{doc}:\n{}", text(&validate));
            for line in &p {
                assert!(
                    line.contains("scheme `https` is not supported for upstreams"),
                    "{doc}: a problem other than HTTPS upstreams:\n{line}"
                );
            }
            continue;
        }
        assert!(
            validate.status.success(),
            "`mgw validate` of {doc}:\n{}",
            text(&validate)
        );
        let build = mgw(&["build", "gw", "--out", "out", "--no-tarball"], &dir);
        assert!(
            build.status.success(),
            "`mgw build` of {doc}:\n{}",
            text(&build)
        );
        let name = std::fs::read_dir(dir.join("out"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        let bytes = std::fs::read(name.path().join("bundle.json")).unwrap();
        // What validates must start, every `${VAR:-default}` at its default.
        let env = std::collections::BTreeMap::<String, String>::new();
        let parsed = mgw_bundle::Bundle::from_json(&bytes).unwrap();
        if let Err(e) = mgw_bundle::Config::from_bundle(&parsed, String::new(), Some(&env)) {
            panic!("{doc} validates, but the gateway refuses to start on it: {e}");
        }
        let bundle: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert!(
            !bundle["apis"][0]["operations"]
                .as_array()
                .unwrap()
                .is_empty(),
            "{doc}: {bundle}"
        );
    }
}

#[test]
fn wso2_projects_mgw_cannot_serve_are_refused_with_the_place_and_the_reason() {
    let tmp = tempfile::tempdir().unwrap();
    for (i, &(doc, expected)) in REFUSED.iter().enumerate() {
        let dir = tmp.path().join(i.to_string());
        let (_, init) = migrate(doc, &dir);
        assert_eq!(init.status.code(), Some(64), "{doc}:\n{}", text(&init));
        let t = text(&init);
        for part in expected {
            assert!(t.contains(part), "{doc}: expected `{part}` in:\n{t}");
        }
    }
}

#[test]
fn wso2_interceptors_ask_for_a_runtime_with_their_filters() {
    let tmp = tempfile::tempdir().unwrap();
    for (i, &(doc, expected)) in INTERCEPTORS.iter().enumerate() {
        let dir = tmp.path().join(i.to_string());
        let (_, init) = migrate(doc, &dir);
        assert!(init.status.success(), "{doc}:\n{}", text(&init));
        let validate = mgw(&["validate", "gw"], &dir);
        assert_eq!(
            validate.status.code(),
            Some(64),
            "{doc}:\n{}",
            text(&validate)
        );
        let t = text(&validate);
        for part in expected {
            assert!(t.contains(part), "{doc}: expected `{part}` in:\n{t}");
        }
    }
}

#[test]
fn init_brings_the_wso2_policies_and_keeps_the_spec_endpoints() {
    let tmp = tempfile::tempdir().unwrap();
    let (project, init) = migrate("samples/policies_sample.yaml", tmp.path());
    assert!(init.status.success(), "{}", text(&init));
    assert_eq!(
        std::fs::read(project.join("policies.yaml")).unwrap(),
        std::fs::read(corpus().join(SAMPLES_POLICIES)).unwrap()
    );
    let manifest = std::fs::read_to_string(project.join("mgw.yaml")).unwrap();
    assert!(
        manifest.contains("\nrateLimits:\n  wso2Policies: policies.yaml\n"),
        "{manifest}"
    );
    assert!(manifest.contains("\n#     upstream: "), "{manifest}");

    // Uncommented, init's hint (global tiers on Redis) is a valid project.
    let edited = manifest
        .replace("  # wso2Scope: global\n", "  wso2Scope: global\n")
        .replace("  # redis:\n", "  redis:\n")
        .replace("  #   url: ", "    url: ")
        .replace("  #   replicas: ", "    replicas: ");
    assert_eq!(
        edited
            .matches("\n  wso2Scope: global\n  redis:\n    url: ")
            .count(),
        1,
        "{edited}"
    );
    std::fs::write(project.join("mgw.yaml"), edited).unwrap();
    add_providers(&project, "samples/policies_sample.yaml");
    let validate = mgw(&["validate", "gw"], tmp.path());
    assert!(validate.status.success(), "{}", text(&validate));
}
