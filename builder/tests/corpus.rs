//! The compatibility corpus: real public API documents (`tests/corpus/`, kept
//! unchanged, sources in `tests/corpus/SOURCES.md`) go through `mgw init` →
//! `mgw validate` → `mgw build` with nothing added but the `auth.providers` block
//! that `mgw init` scaffolds commented (the test uncomments it). Each document is
//! its own test, so a failure names the document; each prints routes served and
//! warnings (`--nocapture`) for the compatibility report.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use support::{RunningGateway, enable_scaffolded_auth, mgw, pki, text, tls_backend};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/corpus")
}

/// `mgw init` on `tests/corpus/<entry>` into `<tmp>/project`, then the
/// scaffolded `auth.providers` block enabled (the one addition the acceptance
/// criterion allows). Returns init's JSON report.
fn init_project(entry: &str, tmp: &Path) -> serde_json::Value {
    let spec = corpus().join(entry);
    let project = tmp.join("project");
    let init = mgw(
        &[
            "--output",
            "json",
            "init",
            spec.to_str().unwrap(),
            "--dir",
            project.to_str().unwrap(),
        ],
        tmp,
    );
    assert!(
        init.status.success(),
        "`mgw init {entry}` failed:\n{}{}",
        text(&init.stdout),
        text(&init.stderr)
    );
    let manifest_path = project.join("mgw.yaml");
    let manifest = std::fs::read_to_string(&manifest_path).unwrap();
    let enabled = enable_scaffolded_auth(&manifest);
    let added: Vec<&str> = enabled
        .lines()
        .zip(manifest.lines())
        .filter(|(a, b)| a != b)
        .map(|(a, _)| a)
        .collect();
    assert!(
        added.first().is_none_or(|l| *l == "auth:")
            && added.iter().skip(1).all(|l| l.starts_with("  ")),
        "the test may only add an `auth.providers` block: {added:?}"
    );
    std::fs::write(&manifest_path, enabled).unwrap();
    serde_json::from_slice(&init.stdout).unwrap()
}

/// `mgw validate` must succeed; returns its JSON report and its stderr (the
/// warnings as a user reads them).
fn validate(entry: &str, project: &Path, cwd: &Path) -> (serde_json::Value, String) {
    let validate = mgw(
        &["--output", "json", "validate", project.to_str().unwrap()],
        cwd,
    );
    assert!(
        validate.status.success(),
        "`mgw validate` on {entry} failed:\n{}{}",
        text(&validate.stdout),
        text(&validate.stderr)
    );
    (
        serde_json::from_slice(&validate.stdout).unwrap(),
        text(&validate.stderr),
    )
}

/// `mgw build` must succeed, writing the image to `<out>/<name>/`.
fn build(entry: &str, project: &Path, out: &Path, cwd: &Path) {
    let build = mgw(
        &[
            "build",
            project.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        cwd,
    );
    assert!(
        build.status.success(),
        "`mgw build` on {entry} failed:\n{}{}",
        text(&build.stdout),
        text(&build.stderr)
    );
}

/// What validates must start: the gateway's own check accepts the
/// `bundle.json` that `mgw build` wrote under `out`, with every
/// `${VAR:-default}` at its default.
fn gateway_accepts(entry: &str, out: &Path) {
    let image = std::fs::read_dir(out).unwrap().next().unwrap().unwrap();
    let bytes = std::fs::read(image.path().join("bundle.json")).unwrap();
    let bundle = mgw_bundle::Bundle::from_json(&bytes).unwrap();
    let env = std::collections::BTreeMap::<String, String>::new();
    if let Err(e) = mgw_bundle::Config::from_bundle(&bundle, String::new(), Some(&env)) {
        panic!("{entry} validates, but the gateway refuses to start on it: {e}");
    }
}

/// Runs init → validate → build on `tests/corpus/<entry>`; returns the routes
/// served.
fn builds_as_is(entry: &str) -> usize {
    let tmp = tempfile::tempdir().unwrap();
    init_project(entry, tmp.path());
    let project = tmp.path().join("project");
    let (report, warnings_text) = validate(entry, &project, tmp.path());
    let routes: usize = report["summary"]["apis"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["routes"].as_array().map_or(0, Vec::len))
        .sum();
    let warnings = report["warnings"].as_array().map_or(0, Vec::len);
    build(entry, &project, &tmp.path().join("out"), tmp.path());
    gateway_accepts(entry, &tmp.path().join("out"));
    println!("corpus {entry}: {routes} routes, {warnings} warnings\n{warnings_text}");
    assert!(routes > 0, "{entry} serves no route");
    routes
}

macro_rules! corpus_tests {
    ($($name:ident => $entry:literal,)*) => {
        $(
            #[test]
            fn $name() {
                builds_as_is($entry);
            }
        )*
    };
}

corpus_tests! {
    oai_v2_petstore => "oai-examples/v2.0/yaml/petstore.yaml",
    oai_v2_petstore_minimal => "oai-examples/v2.0/yaml/petstore-minimal.yaml",
    oai_v2_petstore_simple => "oai-examples/v2.0/yaml/petstore-simple.yaml",
    oai_v2_petstore_expanded => "oai-examples/v2.0/yaml/petstore-expanded.yaml",
    oai_v2_petstore_with_external_docs => "oai-examples/v2.0/yaml/petstore-with-external-docs.yaml",
    oai_v2_api_with_examples => "oai-examples/v2.0/yaml/api-with-examples.yaml",
    oai_v2_uber => "oai-examples/v2.0/yaml/uber.yaml",
    oai_v2_petstore_separate_yaml => "oai-examples/v2.0/yaml/petstore-separate/spec/swagger.yaml",
    oai_v2_petstore_separate_json => "oai-examples/v2.0/json/petstore-separate/spec/swagger.json",
    oai_v2_uber_json => "oai-examples/v2.0/json/uber.json",
    oai_v30_petstore => "oai-examples/v3.0/petstore.json",
    oai_v30_petstore_expanded => "oai-examples/v3.0/petstore-expanded.json",
    oai_v30_api_with_examples => "oai-examples/v3.0/api-with-examples.json",
    oai_v30_callback_example => "oai-examples/v3.0/callback-example.json",
    oai_v30_link_example => "oai-examples/v3.0/link-example.json",
    oai_v30_uspto => "oai-examples/v3.0/uspto.json",
    oai_v31_non_oauth_scopes => "oai-examples/v3.1/non-oauth-scopes.json",
    swagger_petstore_30 => "swagger-petstore/openapi.yaml",
    swagger_petstore_v31_code_first => "swagger-petstore-v31/code-first/openapi.yaml",
    swagger_petstore_v31_design_first => "swagger-petstore-v31/design-first/petstore.yaml",
    kubernetes => "kubernetes/swagger.json",
    stripe => "stripe/spec3.yaml",
    twilio_api_v2010 => "twilio/twilio_api_v2010.yaml",
    digitalocean => "digitalocean/specification/DigitalOcean-public.v2.yaml",
    moby_docker_engine => "moby/swagger.yaml",
    openai => "openai/openapi.yaml",
    box_platform => "box/openapi.json",
    slack_web_api => "slack/slack_web_openapi_v2.json",
    discord => "discord/openapi.json",
    xero_accounting => "xero/xero_accounting.yaml",
    oai_learn_v32_query => "oai-learn/examples/v3.2/3.2-query-example.yaml",
    oai_learn_v32_tags => "oai-learn/examples/v3.2/3.2-tags-example.yaml",
}

/// OAI's webhook example declares only `webhooks` (calls the API makes): a gateway
/// has nothing to route, and says so instead of building an empty image.
#[test]
fn oai_v31_webhook_only_document_says_there_is_nothing_to_serve() {
    let tmp = tempfile::tempdir().unwrap();
    let project = tmp.path().join("project");
    let spec = corpus().join("oai-examples/v3.1/webhook-example.json");
    let init = mgw(
        &[
            "init",
            spec.to_str().unwrap(),
            "--dir",
            project.to_str().unwrap(),
        ],
        tmp.path(),
    );
    assert!(init.status.success(), "{}", text(&init.stderr));
    let validate = mgw(
        &["--output", "json", "validate", project.to_str().unwrap()],
        tmp.path(),
    );
    assert_eq!(validate.status.code(), Some(64));
    let report: serde_json::Value = serde_json::from_slice(&validate.stdout).unwrap();
    assert_eq!(report["valid"], false);
    let d = &report["diagnostics"][0];
    assert_eq!(d["severity"], "error");
    assert_eq!(d["file"], "apis/webhook-example.json");
    assert!(
        d["message"]
            .as_str()
            .unwrap()
            .contains("has no operation to serve"),
        "{report}"
    );
}

/// The one edit the HTTPS tests make to `mgw.yaml` besides `auth`: the upstream
/// `mgw init` scaffolded (`${<VAR>:-http://127.0.0.1:8000<the spec's base path>}`)
/// gets an `https://` default and a CA file mounted at run time, as the README
/// describes.
fn use_https_upstream(project: &Path, variable: &str) {
    let path = project.join("mgw.yaml");
    let manifest = std::fs::read_to_string(&path).unwrap();
    let prefix = format!("      - ${{{variable}:-http://127.0.0.1:8000");
    let lines: Vec<&str> = manifest
        .lines()
        .filter(|l| l.starts_with(&prefix) && l.ends_with('}'))
        .collect();
    assert_eq!(lines.len(), 1, "{manifest}");
    let scaffolded = format!("{}\n", lines[0]);
    let https = format!(
        "      - ${{{variable}:-https://upstream.internal}}\n    tls:\n      caFile: ${{UPSTREAM_CA_FILE:-/etc/mgw/secrets/upstream/ca.crt}}\n"
    );
    std::fs::write(&path, manifest.replacen(&scaffolded, &https, 1)).unwrap();
}

async fn get(api: std::net::SocketAddr, path_and_query: &str) -> (StatusCode, String) {
    let client = Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    let req = Request::get(format!("http://{api}{path_and_query}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let res = client.request(req).await.unwrap();
    let status = res.status();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, text(&body))
}

/// Issue 12: a corpus document, unchanged, goes init → validate → build with an
/// `https://` upstream, and the image runs (`mgw run`, the gateway binary baked
/// into it). `request` (a path parameter with percent-encoded bytes) must reach a
/// real TLS backend on loopback as `expected` — the API's base path swapped for
/// the upstream URL's `/backend`, the parameter byte for byte — and the client
/// gets the backend's answer. The same image with another CA mounted answers 502
/// and logs why. `secrets` are the other files the image reads at start (the
/// environment variable naming each, and its content).
async fn proxies_over_https(entry: &str, request: &str, expected: &str, secrets: &[(&str, &str)]) {
    let tmp = tempfile::tempdir().unwrap();
    let init = init_project(entry, tmp.path());
    let variable = init["upstreamVariable"].as_str().unwrap();
    let project = tmp.path().join("project");
    use_https_upstream(&project, variable);
    validate(entry, &project, tmp.path());
    let out = tmp.path().join("out");
    build(entry, &project, &out, tmp.path());
    let image = out.join(init["name"].as_str().unwrap());

    let (ca, cert, key) = pki();
    let (other_ca, _, _) = pki();
    let backend = tls_backend(&cert, &key).await;
    let url = format!("https://127.0.0.1:{}/backend", backend.port());
    let ca_file = tmp.path().join("ca.crt");
    let other_ca_file = tmp.path().join("other-ca.crt");
    std::fs::write(&ca_file, ca).unwrap();
    std::fs::write(&other_ca_file, other_ca).unwrap();
    let cache = tmp.path().join("cache");
    let mut env: Vec<(String, String)> = vec![(variable.to_owned(), url)];
    for (i, (name, content)) in secrets.iter().enumerate() {
        let file = tmp.path().join(format!("secret-{i}"));
        std::fs::write(&file, content).unwrap();
        env.push(((*name).to_owned(), file.display().to_string()));
    }
    let with_ca = |ca: &Path| {
        let mut env = env.clone();
        env.push(("UPSTREAM_CA_FILE".into(), ca.display().to_string()));
        env
    };

    let gw = RunningGateway::start(&image, &with_ca(&ca_file), &cache);
    let (status, body) = get(gw.api, request).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "{entry}: {body}\n{}",
        gw.logs().join("\n")
    );
    assert_eq!(body, format!("tls backend saw {expected}"), "{entry}");
    drop(gw);

    let gw = RunningGateway::start(&image, &with_ca(&other_ca_file), &cache);
    let (status, body) = get(gw.api, request).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{entry}: {body}");
    let line = gw
        .log_line(
            "TLS handshake with the upstream failed",
            Duration::from_secs(10),
        )
        .unwrap_or_else(|| panic!("{entry}: no TLS log line in:\n{}", gw.logs().join("\n")));
    assert!(line.contains("invalid peer certificate"), "{line}");
}

/// `GET /user/{username}` of swagger-petstore 3.0 (served under `/api/v3`, from
/// its `servers[0].url`; with its scaffolded `auth.providers` enabled, as above).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swagger_petstore_30_proxies_a_path_parameter_over_https() {
    proxies_over_https(
        "swagger-petstore/openapi.yaml",
        "/api/v3/user/j%C3%B6rg%20o",
        "/backend/user/j%C3%B6rg%20o",
        // The scaffolded `api_key` provider reads its keys file at start; this
        // operation itself is open.
        &[("MGW_API_KEYS_FILE", "# no consumers\n")],
    )
    .await;
}

/// `GET /containers/{id}/json?size=…` of the Docker Engine API (served under
/// its `basePath`, `/v1.56`): the parameter sits mid-path, and `%2F` in it stays
/// data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moby_docker_engine_proxies_a_path_parameter_over_https() {
    proxies_over_https(
        "moby/swagger.yaml",
        "/v1.56/containers/web%2F1%20b/json?size=true",
        "/backend/containers/web%2F1%20b/json?size=true",
        &[],
    )
    .await;
}
