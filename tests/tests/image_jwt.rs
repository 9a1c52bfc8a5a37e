//! An image built by `mgw build` from a project that uses JWT (the
//! `examples/petstore-jwt` project, with a key pair this test generates) serves a
//! request with a valid token and refuses one without, run by runc and by dockerd.

use std::net::SocketAddr;
use std::time::Duration;

use mgw_tests::idp::Idp;
use mgw_tests::*;

/// Builds the example with this test's public key in place of the example's.
fn build(idp: &Idp) -> BuiltImage {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("project");
    copy_dir(&root().join("examples/petstore-jwt"), &project);
    std::fs::write(
        project.join("keys/idp.jwks.json"),
        serde_json::to_vec_pretty(&idp.jwks).unwrap(),
    )
    .unwrap();
    BuiltImage::build(&project, "petstore-jwt")
}

/// The three answers that prove the image enforces JWT.
fn check_requests(addr: SocketAddr, idp: &Idp) {
    let (status, body) = http_get(addr, "/petstore/v1/pets", &[]).unwrap();
    assert_eq!(status, 401, "without a token: {body}");
    let (status, body) = http_get(
        addr,
        "/petstore/v1/pets",
        &[(
            "Authorization",
            &format!("Bearer {}", idp.token("pets:read", serde_json::json!({}))),
        )],
    )
    .unwrap();
    assert_eq!(status, 200, "with a valid token: {body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["path"], "/v1/pets");
    let headers = v["headers"].to_string().to_ascii_lowercase();
    assert!(headers.contains("x-consumer-id: client-42"), "{headers}");
    assert!(!headers.contains("authorization"), "{headers}");
    let (status, _) = http_get(
        addr,
        "/petstore/v1/pets/1",
        &[(
            "Authorization",
            &format!("Bearer {}", idp.token("other", serde_json::json!({}))),
        )],
    )
    .unwrap();
    assert_eq!(status, 403, "a token without the scope");
    let (status, _) = http_get(addr, "/petstore/v1/health", &[]).unwrap();
    assert_eq!(status, 200, "the open operation");
}

#[test]
fn runc_runs_a_jwt_image_that_refuses_requests_without_a_token() {
    let idp = Idp::generate();
    let img = build(&idp);
    let backend = Backend::start();
    let upstream = format!("http://{}/v1", backend.addr);
    let c = RuncContainer::start(
        &img.layout(),
        img.tag(),
        &[("PETSTORE_UPSTREAM", &upstream)],
    )
    .unwrap();
    c.wait_ready(Duration::from_secs(20)).unwrap();
    check_requests(c.api, &idp);
    // Analytics (stdout) name the consumer and the auth outcome.
    let text = wait_for(Duration::from_secs(10), || {
        let l = c.logs();
        l.contains("\"consumer\":\"client-42\"").then_some(l)
    });
    assert!(text.is_some(), "{}", c.logs());
    assert!(c.logs().contains("\"auth\":\"missing\""), "{}", c.logs());
}

#[test]
fn dockerd_runs_a_jwt_image_that_refuses_requests_without_a_token() {
    let idp = Idp::generate();
    let img = build(&idp);
    let docker = Dockerd::start().unwrap();
    let reference = img.reference();
    docker
        .docker(&["load", "-i", img.tarball().to_str().unwrap()])
        .unwrap();
    let backend = Backend::start();
    let upstream = format!("http://{}/v1", backend.addr);
    let c =
        DockerContainer::start(&docker, reference, &[("PETSTORE_UPSTREAM", &upstream)]).unwrap();
    c.wait_ready(Duration::from_secs(30)).unwrap();
    check_requests(c.api, &idp);
}
