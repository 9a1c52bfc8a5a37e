//! The compatibility corpus: real public API documents (`tests/corpus/`, kept
//! unchanged, sources in `tests/corpus/SOURCES.md`) go through `mgw init` →
//! `mgw validate` → `mgw build` with nothing added but the `auth.providers` block
//! that `mgw init` scaffolds commented (the test uncomments it). Each document is
//! its own test, so a failure names the document; each prints routes served and
//! warnings (`--nocapture`) for the compatibility report.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const MGW: &str = env!("CARGO_BIN_EXE_mgw");

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/corpus")
}

/// The musl gateway binary that `mgw build` bakes into the image.
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
        "`{}` is missing: run `make gateway` first (or set MGW_GATEWAY_BINARY)",
        p.display()
    );
    p
}

fn mgw(args: &[&str], cwd: &Path) -> Output {
    Command::new(MGW)
        .args(args)
        .current_dir(cwd)
        .env_remove("SOURCE_DATE_EPOCH")
        .env("MGW_GATEWAY_BINARY", gateway())
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Uncomments the `#auth:` block `mgw init` scaffolds: the one thing the
/// acceptance criterion lets a user add.
fn enable_scaffolded_auth(manifest: &str) -> String {
    let mut out = String::with_capacity(manifest.len());
    let mut in_block = false;
    for line in manifest.lines() {
        if line == "#auth:" {
            in_block = true;
        } else if in_block && !line.starts_with("#  ") {
            in_block = false;
        }
        out.push_str(if in_block { &line[1..] } else { line });
        out.push('\n');
    }
    out
}

/// Runs init → validate → build on `tests/corpus/<entry>`; returns the routes
/// served.
fn builds_as_is(entry: &str) -> usize {
    let tmp = tempfile::tempdir().unwrap();
    let spec = corpus().join(entry);
    let project = tmp.path().join("project");
    let init = mgw(
        &[
            "init",
            spec.to_str().unwrap(),
            "--dir",
            project.to_str().unwrap(),
        ],
        tmp.path(),
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

    let validate = mgw(
        &["--output", "json", "validate", project.to_str().unwrap()],
        tmp.path(),
    );
    assert!(
        validate.status.success(),
        "`mgw validate` on {entry} failed:\n{}{}",
        text(&validate.stdout),
        text(&validate.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&validate.stdout).unwrap();
    let routes: usize = report["summary"]["apis"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["routes"].as_array().map_or(0, Vec::len))
        .sum();
    let warnings = report["warnings"].as_array().map_or(0, Vec::len);

    let out = tmp.path().join("out");
    let build = mgw(
        &[
            "build",
            project.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        tmp.path(),
    );
    assert!(
        build.status.success(),
        "`mgw build` on {entry} failed:\n{}{}",
        text(&build.stdout),
        text(&build.stderr)
    );
    println!(
        "corpus {entry}: {routes} routes, {warnings} warnings\n{}",
        text(&validate.stderr)
    );
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
