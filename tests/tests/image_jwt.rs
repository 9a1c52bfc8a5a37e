//! An image built by `mgw build` from a project that uses JWT (the
//! `examples/petstore-jwt` project, with a key pair this test generates) serves a
//! request with a valid token and refuses one without, run by runc and by dockerd.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mgw_tests::*;

/// A P-256 key: the JWKS to bake and the key to sign with.
struct Idp {
    encoding: jsonwebtoken::EncodingKey,
    jwks: serde_json::Value,
}

fn idp() -> Idp {
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let raw = kp.public_key_raw();
    let jwks = serde_json::json!({"keys": [{
        "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": "test-1",
        "x": URL_SAFE_NO_PAD.encode(&raw[1..33]), "y": URL_SAFE_NO_PAD.encode(&raw[33..]),
    }]});
    Idp {
        encoding: jsonwebtoken::EncodingKey::from_ec_pem(kp.serialize_pem().as_bytes()).unwrap(),
        jwks,
    }
}

impl Idp {
    fn token(&self, scope: &str) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some("test-1".into());
        let claims = serde_json::json!({
            "iss": "https://idp.example.com/", "aud": "petstore", "sub": "client-42",
            "scope": scope, "iat": now, "exp": now + 600,
        });
        jsonwebtoken::encode(&header, &claims, &self.encoding).unwrap()
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

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
            &format!("Bearer {}", idp.token("pets:read")),
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
        &[("Authorization", &format!("Bearer {}", idp.token("other")))],
    )
    .unwrap();
    assert_eq!(status, 403, "a token without the scope");
    let (status, _) = http_get(addr, "/petstore/v1/health", &[]).unwrap();
    assert_eq!(status, 200, "the open operation");
}

#[test]
fn runc_runs_a_jwt_image_that_refuses_requests_without_a_token() {
    let idp = idp();
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
    let idp = idp();
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
