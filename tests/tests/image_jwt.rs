//! An image built by `mgw build` from a project that uses JWT (the
//! `examples/petstore-jwt` project, with a key pair this test generates) serves a
//! request with a valid token and refuses one without, run by runc and by dockerd.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
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

struct Built {
    _dir: tempfile::TempDir,
    out: PathBuf,
    meta: serde_json::Value,
}

/// Builds the example with this test's public key in place of the example's.
fn build(idp: &Idp) -> Built {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("project");
    copy_dir(&root().join("examples/petstore-jwt"), &project);
    std::fs::write(
        project.join("keys/idp.jwks.json"),
        serde_json::to_vec_pretty(&idp.jwks).unwrap(),
    )
    .unwrap();
    let out_dir = dir.path().join("out");
    let out = run(Command::new(mgw_bin())
        .args(["build", "--output", "json", "--out"])
        .arg(&out_dir)
        .arg(&project)
        .env("MGW_GATEWAY_BINARY", gateway_bin())
        .env_remove("SOURCE_DATE_EPOCH"))
    .unwrap();
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    Built {
        out: out_dir.join("petstore-jwt"),
        _dir: dir,
        meta,
    }
}

/// The three answers that prove the image enforces JWT.
fn check_requests(api: u16, idp: &Idp) {
    let addr = format!("127.0.0.1:{api}").parse().unwrap();
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

/// Runs `f` when dropped.
fn scopeguard<F: FnOnce()>(f: F) -> impl Drop {
    struct G<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for G<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f();
            }
        }
    }
    G(Some(f))
}

#[test]
fn runc_runs_a_jwt_image_that_refuses_requests_without_a_token() {
    require("runc", "apt-get install runc");
    require("umoci", "apt-get install umoci");
    let idp = idp();
    let img = build(&idp);
    let dir = tempfile::Builder::new()
        .prefix("mgwjwt")
        .tempdir_in("/tmp")
        .unwrap();
    let bundle = dir.path().join("bundle");
    run(Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!(
            "{}:{}",
            img.out.join("oci").display(),
            img.meta["tag"].as_str().unwrap()
        ))
        .arg(&bundle))
    .unwrap();
    let backend = Backend::start();
    let (api, admin) = (free_port(), free_port());
    let cfg_path = bundle.join("config.json");
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&cfg_path).unwrap()).unwrap();
    cfg["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "network");
    cfg["root"]["readonly"] = true.into();
    cfg["process"]["terminal"] = false.into();
    let env = cfg["process"]["env"].as_array_mut().unwrap();
    env.push(format!("MGW_LISTEN=127.0.0.1:{api}").into());
    env.push(format!("MGW_ADMIN_LISTEN=127.0.0.1:{admin}").into());
    env.push(format!("PETSTORE_UPSTREAM=http://{}/v1", backend.addr).into());
    std::fs::write(&cfg_path, serde_json::to_vec(&cfg).unwrap()).unwrap();

    let state = dir.path().join("state");
    let id = format!("mgw-jwt-{}", std::process::id());
    let log_path = dir.path().join("container.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let status = Command::new("runc")
        .arg("--root")
        .arg(&state)
        .args(["run", "--detach", "--bundle"])
        .arg(&bundle)
        .arg(&id)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .status()
        .unwrap();
    let runc = |args: &[&str]| {
        Command::new("runc")
            .arg("--root")
            .arg(&state)
            .args(args)
            .output()
            .unwrap()
    };
    let _cleanup = scopeguard(|| {
        let _ = runc(&["kill", &id, "KILL"]);
        let _ = runc(&["delete", "--force", &id]);
    });
    let logs = || std::fs::read_to_string(&log_path).unwrap_or_default();
    assert!(status.success(), "runc run failed: {}", logs());
    let admin_addr = format!("127.0.0.1:{admin}").parse().unwrap();
    let ready = wait_for(Duration::from_secs(20), || {
        http_get(admin_addr, "/readyz", &[])
            .ok()
            .filter(|(s, _)| *s == 200)
    });
    assert!(ready.is_some(), "never ready: {}", logs());
    check_requests(api, &idp);
    // Analytics (stdout) name the consumer and the auth outcome.
    let text = wait_for(Duration::from_secs(10), || {
        let l = logs();
        l.contains("\"consumer\":\"client-42\"").then_some(l)
    });
    assert!(text.is_some(), "{}", logs());
    assert!(logs().contains("\"auth\":\"missing\""), "{}", logs());
}

#[test]
fn dockerd_runs_a_jwt_image_that_refuses_requests_without_a_token() {
    let idp = idp();
    let img = build(&idp);
    let docker = Dockerd::start().unwrap();
    let reference = img.meta["reference"].as_str().unwrap();
    docker
        .docker(&["load", "-i", img.out.join("image.tar").to_str().unwrap()])
        .unwrap();
    let backend = Backend::start();
    let (api, admin) = (free_port(), free_port());
    let name = format!("mgw-jwt-{}", std::process::id());
    docker
        .docker(&[
            "run",
            "-d",
            "--name",
            &name,
            "--network",
            "host",
            "--read-only",
            "--cap-drop",
            "ALL",
            "-e",
            &format!("MGW_LISTEN=127.0.0.1:{api}"),
            "-e",
            &format!("MGW_ADMIN_LISTEN=127.0.0.1:{admin}"),
            "-e",
            &format!("PETSTORE_UPSTREAM=http://{}/v1", backend.addr),
            reference,
        ])
        .unwrap();
    let _cleanup = scopeguard(|| {
        let _ = docker.docker(&["rm", "-f", &name]);
    });
    let admin_addr = format!("127.0.0.1:{admin}").parse().unwrap();
    let ready = wait_for(Duration::from_secs(30), || {
        http_get(admin_addr, "/readyz", &[])
            .ok()
            .filter(|(s, _)| *s == 200)
    });
    if ready.is_none() {
        let logs = docker.docker_cmd().args(["logs", &name]).output().unwrap();
        panic!("never ready: {}", String::from_utf8_lossy(&logs.stderr));
    }
    check_requests(api, &idp);
}
