//! End to end through the builder: a project whose upstream is
//! `https://127.0.0.1:PORT` with a CA file validates (`mgw validate`) and compiles,
//! and the gateway started from that bundle proxies a request with a path
//! parameter to a real rustls backend; TLS settings on a plain `http://` upstream
//! are refused with their position in `mgw.yaml`.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use mgw_builder::project;
use mgw_bundle::{Bundle, Config};
use mgw_gateway::server::Server;
use support::{pki, tls_backend};

const SPEC: &str = r#"openapi: 3.0.3
info: {title: Pets, version: 1.0.0}
paths:
  /pets/{petId}:
    get:
      operationId: getPet
      parameters:
        - {name: petId, in: path, required: true, schema: {type: string}}
      responses:
        '200': {description: a pet}
"#;

fn manifest(url: &str, tls: &str) -> String {
    format!(
        "name: pets\nversion: 1.0.0\nupstreams:\n  pets:\n    urls: ['{url}']\n    tls:\n{tls}apis:\n  - name: pets\n    spec: api.yaml\n    basePath: /pets/v1\n    upstream: pets\nanalytics: {{sink: none}}\n"
    )
}

fn mgw(args: &[&str], cwd: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mgw"))
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap()
}

#[tokio::test]
async fn an_https_upstream_with_a_ca_file_builds_and_proxies() {
    let (ca, cert, key) = pki();
    let backend = tls_backend(&cert, &key).await;
    let secrets = tempfile::tempdir().unwrap();
    std::fs::write(secrets.path().join("ca.crt"), &ca).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("https://127.0.0.1:{}/api", backend.port());
    std::fs::write(
        dir.path().join("mgw.yaml"),
        manifest(
            &url,
            "      caFile: ${PETS_CA_FILE:-/etc/mgw/secrets/pets-ca/ca.crt}\n",
        ),
    )
    .unwrap();
    std::fs::write(dir.path().join("api.yaml"), SPEC).unwrap();

    let out = mgw(&["validate", "."], dir.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let compiled = project::build(dir.path()).unwrap();
    let bundle = Bundle::from_json(&compiled.bytes).unwrap();
    let tls = bundle.upstreams["pets"].tls.as_ref().unwrap();
    assert_eq!(
        tls.ca_file.as_deref(),
        Some("${PETS_CA_FILE:-/etc/mgw/secrets/pets-ca/ca.crt}")
    );
    // The CA is mounted at run time: never part of the bundle.
    let text = String::from_utf8_lossy(&compiled.bytes);
    assert!(!text.contains("BEGIN CERTIFICATE"));
    assert!(compiled.env.iter().any(|v| v.name == "PETS_CA_FILE"));

    let env: BTreeMap<String, String> = [
        ("MGW_LISTEN", "127.0.0.1:0".to_owned()),
        ("MGW_ADMIN_LISTEN", "127.0.0.1:0".to_owned()),
        (
            "PETS_CA_FILE",
            secrets.path().join("ca.crt").display().to_string(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let config = Config::from_bundle(&bundle, compiled.digest.clone(), Some(&env)).unwrap();
    let server = Server::bind(config).await.unwrap();
    let api = server.api_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));

    let client = Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    let req = Request::get(format!("http://{api}/pets/v1/pets/rex%20the%20dog"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let res = client.request(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"tls backend saw /api/pets/rex%20the%20dog");

    let _ = stop.send(());
    running.await.unwrap();
}

#[test]
fn tls_settings_on_an_http_upstream_are_refused_with_their_position() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("mgw.yaml"),
        manifest("http://127.0.0.1:8080", "      caFile: /etc/ca.crt\n"),
    )
    .unwrap();
    std::fs::write(dir.path().join("api.yaml"), SPEC).unwrap();
    let e = project::build(dir.path()).unwrap_err().to_string();
    assert!(
        e.contains("mgw.yaml:7:7: `upstreams.pets.tls`: TLS settings apply to `https://` URLs"),
        "{e}"
    );
    let out = mgw(&["validate", "."], dir.path());
    assert_eq!(out.status.code(), Some(64));
}

#[test]
fn insecure_skip_verify_builds_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("mgw.yaml"),
        manifest("https://pets.internal", "      insecureSkipVerify: true\n"),
    )
    .unwrap();
    std::fs::write(dir.path().join("api.yaml"), SPEC).unwrap();
    let c = project::build(dir.path()).unwrap();
    let warnings: Vec<String> = c.warnings.iter().map(ToString::to_string).collect();
    assert!(
        warnings.iter().any(|w| w.contains("mgw.yaml:7:")
            && w.contains("upstream `pets` accepts any TLS certificate")),
        "{warnings:?}"
    );
}
