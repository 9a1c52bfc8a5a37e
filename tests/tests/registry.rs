//! `mgw push`, `--base` from a registry, `mgw load` and the SBOM referrer against a
//! real registry (Debian's `docker-registry`) on loopback, in three set-ups (no
//! auth, htpasswd, token auth with a token server the test runs), behind a
//! fault-injecting proxy where a test needs failures, and with a harness dockerd
//! pulling and running what was pushed. Every test checks that no credential shows
//! up in anything mgw prints or writes.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::Ordering;
use std::time::Duration;

use base64::Engine as _;
use mgw_tests::registry::{Action, Auth, FaultProxy, Registry};
use mgw_tests::*;
use serde_json::Value;

const USER: &str = "ci-robot";
const PASSWORD: &str = "pw-Zq81-never-print-me";

/// Runs mgw with a private Docker config, cache and environment, and keeps a
/// transcript of everything it printed.
struct Session {
    home: tempfile::TempDir,
    env: Vec<(String, String)>,
    transcript: std::cell::RefCell<Vec<u8>>,
}

impl Session {
    fn new() -> Session {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(home.path().join("docker")).unwrap();
        let env = vec![
            ("HOME".to_owned(), home.path().display().to_string()),
            (
                "DOCKER_CONFIG".to_owned(),
                home.path().join("docker").display().to_string(),
            ),
            (
                "XDG_CACHE_HOME".to_owned(),
                home.path().join("cache").display().to_string(),
            ),
            (
                "MGW_GATEWAY_BINARY".to_owned(),
                gateway_bin().display().to_string(),
            ),
            // The most verbose logs: a credential must not show up even there.
            ("MGW_LOG".to_owned(), "debug".to_owned()),
        ];
        Session {
            home,
            env,
            transcript: Default::default(),
        }
    }

    fn with(mut self, k: &str, v: &str) -> Session {
        self.env.push((k.to_owned(), v.to_owned()));
        self
    }

    /// A Docker config with `auths` for `host`.
    fn docker_login(self, host: &str) -> Session {
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
        std::fs::write(
            self.home.path().join("docker/config.json"),
            format!(r#"{{"auths":{{"{host}":{{"auth":"{auth}"}}}}}}"#),
        )
        .unwrap();
        self
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(mgw_bin());
        c.args(args)
            .env_remove("SOURCE_DATE_EPOCH")
            .env_remove("MGW_REGISTRY_USERNAME")
            .env_remove("MGW_REGISTRY_PASSWORD")
            .env_remove("DOCKER_HOST")
            .stdin(Stdio::null());
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    fn record(&self, out: &Output) {
        let mut t = self.transcript.borrow_mut();
        t.extend_from_slice(&out.stdout);
        t.extend_from_slice(&out.stderr);
    }

    fn mgw(&self, args: &[&str]) -> Output {
        let out = self.command(args).output().unwrap();
        self.record(&out);
        out
    }

    /// Runs mgw with `--output json`, expecting success.
    fn mgw_json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["--output", "json"]);
        let out = self.mgw(&all);
        assert!(
            out.status.success(),
            "mgw {args:?} failed with {}:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
    }

    fn cache(&self) -> PathBuf {
        self.home.path().join("cache")
    }
}

fn project() -> String {
    root().join("examples/petstore").display().to_string()
}

fn skopeo(args: &[&str]) -> Result<String, String> {
    require("skopeo", "apt-get install skopeo");
    let out = Command::new("skopeo")
        .args(["--insecure-policy"])
        .args(args)
        .output()
        .unwrap();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn skopeo_inspect(reference: &str, creds: Option<&str>) -> Result<Value, String> {
    let mut args = vec!["inspect", "--tls-verify=false"];
    if let Some(c) = creds {
        args.extend(["--creds", c]);
    }
    let docker_ref = format!("docker://{reference}");
    args.push(&docker_ref);
    skopeo(&args).map(|s| serde_json::from_str(&s).unwrap())
}

/// Fails if `secrets` appear in `transcript` or in any file under `dirs`
/// (gzip-compressed files, i.e. layers, are checked decompressed).
fn assert_no_secret(secrets: &[String], transcript: &[u8], dirs: &[&Path]) {
    let check = |what: &str, bytes: &[u8]| {
        for s in secrets.iter().filter(|s| !s.is_empty()) {
            assert!(
                !bytes.windows(s.len()).any(|w| w == s.as_bytes()),
                "a credential appears in {what}"
            );
        }
    };
    check("mgw's output", transcript);
    fn walk(dir: &Path, f: &mut dyn FnMut(&Path)) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                walk(&e.path(), f);
            } else if ft.is_file() {
                f(&e.path());
            }
        }
    }
    let mut files = 0;
    for dir in dirs {
        walk(dir, &mut |path| {
            files += 1;
            let bytes = std::fs::read(path).unwrap();
            check(&format!("`{}`", path.display()), &bytes);
            if bytes.starts_with(&[0x1f, 0x8b]) {
                let mut plain = Vec::new();
                if flate2::read::GzDecoder::new(&bytes[..])
                    .read_to_end(&mut plain)
                    .is_ok()
                {
                    check(&format!("`{}` (decompressed)", path.display()), &plain);
                }
            }
        });
    }
    assert!(files > 5, "expected files to check under {dirs:?}");
}

fn secrets() -> Vec<String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    vec![
        PASSWORD.to_owned(),
        b64.encode(format!("{USER}:{PASSWORD}")),
        b64.encode(PASSWORD),
    ]
}

/// Push, re-push, inspect by tag and digest, copy back, and a refused re-tag:
/// what every registry set-up must do. Returns the first push's JSON.
fn push_scenario(reg_host: &str, session: &Session, creds: Option<&str>, out: &Path) -> Value {
    let repo = format!("{reg_host}/team/petstore");
    let out_s = out.display().to_string();
    let first = session.mgw_json(&["push", &project(), "--out", &out_s, "--repository", &repo]);
    assert_eq!(first["alreadyPushed"], false, "{first}");
    let blobs = first["blobs"].as_array().unwrap();
    assert_eq!(blobs.len(), 4, "config and three layers: {first}");
    assert!(blobs.iter().all(|b| b["action"] == "uploaded"), "{first}");
    assert!(
        first["uploadedBytes"].as_u64().unwrap() > 1_000_000,
        "{first}"
    );
    let digest = first["digest"].as_str().unwrap().to_owned();
    let reference = first["reference"].as_str().unwrap().to_owned();
    let tag = reference.rsplit_once(':').unwrap().1.to_owned();
    let built = out.join("petstore");
    let build_meta: Value =
        serde_json::from_slice(&std::fs::read(built.join("build.json")).unwrap()).unwrap();
    assert_eq!(
        build_meta["digest"],
        digest.as_str(),
        "the pushed digest is the built one"
    );
    assert_eq!(
        std::fs::read_to_string(built.join("image.ref"))
            .unwrap()
            .trim(),
        format!("{repo}@{digest}")
    );
    assert_eq!(
        std::fs::read_to_string(built.join("image.digest"))
            .unwrap()
            .trim(),
        digest
    );

    // Re-push: a no-op that uploads nothing, by our counters and the registry's.
    let again = session.mgw_json(&["push", &built.display().to_string()]);
    assert_eq!(again["alreadyPushed"], true, "{again}");
    assert_eq!(again["uploadedBytes"], 0, "{again}");
    assert_eq!(again["digest"], digest.as_str());
    // Human output: the last line is the reference with its digest.
    let human = session.mgw(&["push", &built.display().to_string()]);
    assert!(human.status.success());
    let stdout = String::from_utf8_lossy(&human.stdout);
    assert_eq!(
        stdout.lines().last().unwrap(),
        format!("{repo}@{digest}"),
        "{stdout}"
    );

    // skopeo sees it by tag and by digest, and copies it back bit for bit.
    let by_tag = skopeo_inspect(&format!("{repo}:{tag}"), creds).unwrap();
    assert_eq!(by_tag["Digest"], digest.as_str());
    let by_digest = skopeo_inspect(&format!("{repo}@{digest}"), creds).unwrap();
    assert_eq!(by_digest["Digest"], digest.as_str());
    assert_eq!(
        by_digest["Labels"]["org.opencontainers.image.title"],
        "petstore"
    );
    let copy = tempfile::tempdir().unwrap();
    let dest = format!("oci:{}:back", copy.path().join("l").display());
    let mut args = vec!["copy", "--src-tls-verify=false"];
    if let Some(c) = creds {
        args.extend(["--src-creds", c]);
    }
    let src = format!("docker://{repo}@{digest}");
    args.extend([src.as_str(), dest.as_str()]);
    skopeo(&args).unwrap();
    let back: Value = serde_json::from_str(&skopeo(&["inspect", &dest]).unwrap()).unwrap();
    assert_eq!(
        back["Digest"],
        digest.as_str(),
        "copied back with an identical digest"
    );

    // A different image under the same tag: refused, exit 65, tag unchanged.
    let out2 = tempfile::tempdir().unwrap();
    let conflict = session.mgw(&[
        "build",
        &project(),
        "--out",
        &out2.path().display().to_string(),
        "--repository",
        &repo,
        "--tag",
        &tag,
        "--source",
        "https://changed.example/petstore",
        "--push",
    ]);
    let stderr = String::from_utf8_lossy(&conflict.stderr);
    assert_eq!(conflict.status.code(), Some(65), "{stderr}");
    assert!(
        stderr.contains("immutable") && stderr.contains(&digest),
        "{stderr}"
    );
    assert!(
        stderr.contains("version"),
        "says how to bump the version: {stderr}"
    );
    let still = skopeo_inspect(&format!("{repo}:{tag}"), creds).unwrap();
    assert_eq!(
        still["Digest"],
        digest.as_str(),
        "the tag was not re-pointed"
    );
    first
}

#[test]
fn push_without_auth_repush_inspect_copy_conflict_and_sbom_referrer() {
    let reg = Registry::start(Auth::None).unwrap();
    let session = Session::new();
    let out = tempfile::tempdir().unwrap();
    let uploads_before = reg.upload_requests();
    let first = push_scenario(&reg.host(), &session, None, out.path());
    assert!(reg.upload_requests() > uploads_before);
    let digest = first["digest"].as_str().unwrap();
    let hex = digest.trim_start_matches("sha256:");

    // The SBOM: on the image's referrers (this registry predates the referrers
    // API, so through the `sha256-<hex>` tag schema), and valid SPDX 2.3.
    let sbom = &first["sbom"];
    assert_eq!(sbom["via"], "tag-schema", "{first}");
    let (status, _) = http_get(
        reg.addr,
        &format!("/v2/team/petstore/referrers/{digest}"),
        &[],
    )
    .unwrap();
    assert_eq!(status, 404, "distribution 2.8 has no referrers API");
    let repo = format!("{}/team/petstore", reg.host());
    let index: Value = serde_json::from_str(
        &skopeo(&[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{repo}:sha256-{hex}"),
        ])
        .unwrap(),
    )
    .unwrap();
    let entry = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["artifactType"] == "application/spdx+json")
        .unwrap_or_else(|| panic!("no SPDX referrer in {index}"));
    assert_eq!(entry["digest"], sbom["digest"]);
    let artifact: Value = serde_json::from_str(
        &skopeo(&[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{repo}@{}", sbom["digest"].as_str().unwrap()),
        ])
        .unwrap(),
    )
    .unwrap();
    assert_eq!(artifact["subject"]["digest"], digest);
    assert_eq!(artifact["artifactType"], "application/spdx+json");
    let layer = artifact["layers"][0]["digest"].as_str().unwrap();
    let (status, body) =
        http_get(reg.addr, &format!("/v2/team/petstore/blobs/{layer}"), &[]).unwrap();
    assert_eq!(status, 200);
    let local = std::fs::read_to_string(out.path().join("petstore/sbom.spdx.json")).unwrap();
    assert_eq!(
        body, local,
        "the registry holds the SBOM written beside the image"
    );
    let doc: Value = serde_json::from_str(&local).unwrap();
    assert_eq!(doc["spdxVersion"], "SPDX-2.3");
    let packages = doc["packages"].as_array().unwrap();
    for name in [
        "mgw-gateway",
        "tokio",
        "hyper",
        "/etc/ssl/certs/ca-certificates.crt",
    ] {
        assert!(
            packages.iter().any(|p| p["name"] == name),
            "{name} missing from the SBOM"
        );
    }
    let tokio = packages.iter().find(|p| p["name"] == "tokio").unwrap();
    assert_eq!(tokio["licenseDeclared"], "MIT");
    assert!(tokio["versionInfo"].as_str().unwrap().starts_with('1'));
    let validator = tool("pyspdxtools", "bash scripts/install-spdx-tools.sh");
    let checked = Command::new(validator)
        .arg("-i")
        .arg(out.path().join("petstore/sbom.spdx.json"))
        .output()
        .unwrap();
    assert!(
        checked.status.success(),
        "pyspdxtools rejects the SBOM:\n{}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    // The SBOM re-push is a no-op too.
    let again = session.mgw_json(&["push", &out.path().join("petstore").display().to_string()]);
    assert_eq!(again["sbom"]["existed"], true);
}

#[test]
fn push_with_htpasswd_basic_auth_from_the_docker_config() {
    let reg = Registry::start(Auth::Basic {
        user: USER.into(),
        password: PASSWORD.into(),
    })
    .unwrap();
    // No credentials: a clear error naming the fix.
    let anonymous = Session::new();
    let out = tempfile::tempdir().unwrap();
    let refused = anonymous.mgw(&[
        "push",
        &project(),
        "--out",
        &out.path().display().to_string(),
        "--repository",
        &format!("{}/team/petstore", reg.host()),
    ]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("needs a login") && stderr.contains("docker login"),
        "{stderr}"
    );
    // Wrong password.
    let wrong = Session::new()
        .with("MGW_REGISTRY_USERNAME", USER)
        .with("MGW_REGISTRY_PASSWORD", "nope-wrong");
    let bad = wrong.mgw(&["push", &out.path().join("petstore").display().to_string()]);
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("refused the credentials") && !stderr.contains("nope-wrong"),
        "{stderr}"
    );

    let session = Session::new().docker_login(&reg.host());
    let out = tempfile::tempdir().unwrap();
    push_scenario(
        &reg.host(),
        &session,
        Some(&format!("{USER}:{PASSWORD}")),
        out.path(),
    );
    assert_no_secret(
        &secrets(),
        &session.transcript.borrow(),
        &[out.path(), &session.cache()],
    );
}

#[test]
fn push_with_token_auth_from_the_environment_and_refreshes_tokens() {
    let reg = Registry::start(Auth::Token {
        user: USER.into(),
        password: PASSWORD.into(),
        expires_in: 2,
    })
    .unwrap();
    let ts = reg.token_server.as_ref().unwrap();
    let session = Session::new()
        .with("MGW_REGISTRY_USERNAME", USER)
        .with("MGW_REGISTRY_PASSWORD", PASSWORD);
    let out = tempfile::tempdir().unwrap();
    push_scenario(
        &reg.host(),
        &session,
        Some(&format!("{USER}:{PASSWORD}")),
        out.path(),
    );
    assert!(
        ts.issued.load(Ordering::Relaxed) >= 4,
        "one token per mgw run at least"
    );

    // A slow push (every request delayed) outlives its 2 s token: mgw fetches new
    // ones as they expire, within one run.
    let proxy = FaultProxy::start(reg.addr).unwrap();
    proxy.set_rule(|_, _| Action::Delay(150));
    let before = ts.issued.load(Ordering::Relaxed);
    let slow = session.with("MGW_PUSH_CHUNK_SIZE", "262144");
    let pushed = slow.mgw_json(&[
        "push",
        &out.path().join("petstore").display().to_string(),
        "--repository",
        &format!("{}/team/slow", proxy.host()),
    ]);
    assert_eq!(pushed["alreadyPushed"], false);
    let during = ts.issued.load(Ordering::Relaxed) - before;
    assert!(
        during >= 2,
        "expected token refreshes during a slow push, got {during} tokens"
    );

    let mut all = secrets();
    all.extend(ts.tokens.lock().unwrap().iter().cloned());
    assert_no_secret(
        &all,
        &slow.transcript.borrow(),
        &[out.path(), &slow.cache()],
    );
}

#[test]
fn interrupted_push_completes_on_the_next_run_with_the_same_digest() {
    let reg = Registry::start(Auth::None).unwrap();
    let proxy = FaultProxy::start(reg.addr).unwrap();
    let session = Session::new().with("MGW_PUSH_CHUNK_SIZE", "524288");
    let out = tempfile::tempdir().unwrap();
    let built = session.mgw_json(&[
        "build",
        &project(),
        "--out",
        &out.path().display().to_string(),
        "--repository",
        &format!("{}/team/petstore", proxy.host()),
    ]);
    let digest = built["digest"].as_str().unwrap().to_owned();
    let dir = out.path().join("petstore").display().to_string();

    // 1. Kill mgw while it is in the middle of an upload.
    proxy.set_rule(|h, n| {
        if h.method == "PATCH" && n >= 1 {
            Action::Stall(100_000)
        } else {
            Action::Forward
        }
    });
    let mut child = session
        .command(&["push", &dir])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stalled = wait_for(Duration::from_secs(60), || {
        (proxy.stats.stalled.load(Ordering::Relaxed) > 0).then_some(())
    });
    assert!(stalled.is_some(), "the push never reached an upload");
    child.kill().unwrap();
    child.wait().unwrap();
    let tag = built["tag"].as_str().unwrap();
    assert!(
        skopeo_inspect(&format!("{}/team/petstore:{tag}", reg.host()), None).is_err(),
        "an interrupted push tags nothing"
    );

    // 2. The connection is cut in the middle of a chunk: the same run resumes.
    let proxy2 = FaultProxy::start(reg.addr).unwrap();
    let once = std::sync::atomic::AtomicBool::new(false);
    proxy2.set_rule(move |h, n| {
        if h.method == "PATCH" && n == 1 && !once.swap(true, Ordering::Relaxed) {
            Action::Cut(200_000)
        } else {
            Action::Forward
        }
    });
    let resumed = session.mgw_json(&[
        "push",
        &dir,
        "--repository",
        &format!("{}/team/cut", proxy2.host()),
    ]);
    assert_eq!(resumed["digest"], digest.as_str());
    assert!(proxy2.stats.cut.load(Ordering::Relaxed) == 1);
    assert!(resumed["retries"].as_u64().unwrap() >= 1, "{resumed}");
    assert_eq!(
        skopeo_inspect(&format!("{}/team/cut@{digest}", reg.host()), None).unwrap()["Digest"],
        digest.as_str()
    );

    // 3. Run again after the kill: completes, same digest, what was there is skipped.
    proxy.set_rule(|_, _| Action::Forward);
    let done = session.mgw_json(&["push", &dir]);
    assert_eq!(done["digest"], digest.as_str());
    assert_eq!(done["alreadyPushed"], false);
    let by_tag = skopeo_inspect(&format!("{}/team/petstore:{tag}", reg.host()), None).unwrap();
    assert_eq!(by_tag["Digest"], digest.as_str());
}

#[test]
fn transient_failures_are_retried_and_persistent_ones_fail_without_tagging() {
    let reg = Registry::start(Auth::None).unwrap();
    let proxy = FaultProxy::start(reg.addr).unwrap();
    let session = Session::new();
    let out = tempfile::tempdir().unwrap();
    let built = session.mgw_json(&[
        "build",
        &project(),
        "--out",
        &out.path().display().to_string(),
        "--repository",
        &format!("{}/team/petstore", proxy.host()),
    ]);
    let digest = built["digest"].as_str().unwrap().to_owned();
    let tag = built["tag"].as_str().unwrap().to_owned();
    let dir = out.path().join("petstore").display().to_string();

    // Every request fails once … twice with a 500, then goes through.
    proxy.set_rule(|_, n| {
        if n < 2 {
            Action::Fail(500)
        } else {
            Action::Forward
        }
    });
    let ok = session.mgw_json(&["push", &dir]);
    assert_eq!(ok["digest"], digest.as_str());
    assert!(ok["retries"].as_u64().unwrap() >= 2, "{ok}");
    assert!(proxy.stats.failed.load(Ordering::Relaxed) >= 6);
    assert_eq!(
        skopeo_inspect(&format!("{}/team/petstore:{tag}", reg.host()), None).unwrap()["Digest"],
        digest.as_str()
    );

    // A registry that keeps refusing the manifest: clear error, exit 1, no tag.
    proxy.set_rule(|h, _| {
        if h.method == "PUT" && h.path().contains("/manifests/") {
            Action::Fail(500)
        } else {
            Action::Forward
        }
    });
    let failing = session.mgw(&[
        "push",
        &dir,
        "--repository",
        &format!("{}/team/broken", proxy.host()),
        "--retries",
        "2",
    ]);
    let stderr = String::from_utf8_lossy(&failing.stderr);
    assert_eq!(failing.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("500")
            && stderr.contains("/manifests/")
            && stderr.contains("injected failure"),
        "the error names the registry's answer: {stderr}"
    );
    assert!(
        skopeo_inspect(&format!("{}/team/broken:{tag}", reg.host()), None).is_err(),
        "nothing tagged"
    );
}

#[test]
fn base_from_a_registry_is_pulled_verified_cached_and_mounted() {
    let reg = Registry::start(Auth::None).unwrap();
    let session = Session::new();
    let out = tempfile::tempdir().unwrap();
    let first = session.mgw_json(&[
        "push",
        &project(),
        "--out",
        &out.path().join("a").display().to_string(),
        "--repository",
        &format!("{}/team/released", reg.host()),
    ]);
    let base = first["image"].as_str().unwrap().to_owned();
    let by_tag = first["reference"].as_str().unwrap().to_owned();

    // By tag: resolved to the digest and said so; then pushed to another
    // repository of the same registry, base layers mounted, not uploaded.
    let tagged = session.mgw(&[
        "build",
        &project(),
        "--out",
        &out.path().join("b").display().to_string(),
        "--repository",
        &format!("{}/team/derived", reg.host()),
        "--base",
        &by_tag,
        "--push",
    ]);
    let stderr = String::from_utf8_lossy(&tagged.stderr);
    assert!(tagged.status.success(), "{stderr}");
    assert!(
        stderr.contains("resolved to") && stderr.contains(first["digest"].as_str().unwrap()),
        "{stderr}"
    );
    let meta: Value =
        serde_json::from_slice(&std::fs::read(out.path().join("b/petstore/build.json")).unwrap())
            .unwrap();
    assert_eq!(meta["base"]["image"], base.as_str());
    assert_eq!(
        meta["digest"], first["digest"],
        "same layers and bundle: the same image"
    );

    let derived = session.mgw_json(&[
        "push",
        &out.path().join("b/petstore").display().to_string(),
        "--repository",
        &format!("{}/team/derived2", reg.host()),
    ]);
    let blobs = derived["blobs"].as_array().unwrap();
    let mounted = blobs.iter().filter(|b| b["action"] == "mounted").count();
    assert_eq!(
        mounted, 3,
        "the three layers come from `team/released`: {derived}"
    );
    // Only the config and the SBOM travel; the 1.9 MB gateway layer does not.
    assert!(
        derived["uploadedBytes"].as_u64().unwrap() < 200_000,
        "{derived}"
    );

    // A corrupted cache blob is never trusted: it is verified on use and
    // downloaded again.
    let blobs_dir = session.cache().join("mgw/blobs/sha256");
    let biggest = std::fs::read_dir(&blobs_dir)
        .unwrap()
        .flatten()
        .max_by_key(|e| e.metadata().unwrap().len())
        .unwrap()
        .path();
    std::fs::write(&biggest, b"tampered").unwrap();
    let healed = session.mgw_json(&[
        "build",
        &project(),
        "--out",
        &out.path().join("d").display().to_string(),
        "--base",
        &base,
    ]);
    assert_eq!(healed["digest"], first["digest"]);
    assert!(
        std::fs::metadata(&biggest).unwrap().len() > 1000,
        "re-downloaded"
    );

    // Pinned by digest and cached: no registry needed any more.
    let cache = session.cache().join("mgw/images");
    assert!(std::fs::read_dir(&cache).unwrap().count() >= 1);
    drop(reg);
    let offline = session.mgw_json(&[
        "build",
        &project(),
        "--out",
        &out.path().join("c").display().to_string(),
        "--base",
        &base,
    ]);
    assert_eq!(offline["digest"], first["digest"]);
}

#[test]
fn docker_pulls_and_runs_the_pushed_image_and_build_load_loads_it() {
    let reg = Registry::start(Auth::None).unwrap();
    let session = Session::new();
    let out = tempfile::tempdir().unwrap();
    let pushed = session.mgw_json(&[
        "push",
        &project(),
        "--out",
        &out.path().display().to_string(),
        "--repository",
        &format!("{}/team/petstore", reg.host()),
    ]);
    let image = pushed["image"].as_str().unwrap().to_owned();
    let docker = Dockerd::start_with(&["--insecure-registry", &reg.host()]).unwrap();
    docker.docker(&["pull", &image]).unwrap();

    let backend = Backend::start();
    let upstream = format!("http://{}/v1", backend.addr);
    let c = DockerContainer::start(&docker, &image, &[("PETSTORE_UPSTREAM", &upstream)]).unwrap();
    c.wait_ready(Duration::from_secs(30)).unwrap();
    let (status, body) = http_get(c.api, "/petstore/v1/pets", &[]).unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("/v1/pets"), "{body}");
    drop(c);

    // mgw build --load: through the engine API, DOCKER_HOST respected.
    let out2 = tempfile::tempdir().unwrap();
    let mut cmd = session.command(&[
        "build",
        &project(),
        "--out",
        &out2.path().display().to_string(),
        "--repository",
        "example.test/team/loaded",
        "--load",
        "--output",
        "json",
    ]);
    let result = cmd.env("DOCKER_HOST", &docker.host).output().unwrap();
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let meta: Value = serde_json::from_slice(&result.stdout).unwrap();
    let reference = meta["reference"].as_str().unwrap();
    assert!(
        meta["load"]["tags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == reference),
        "{meta}"
    );
    let id = docker
        .docker(&["image", "inspect", "-f", "{{.Id}}", reference])
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&id.stdout).trim(),
        meta["load"]["id"].as_str().unwrap()
    );

    // mgw load of an existing build, human output.
    let loaded = session
        .command(&["load", &out2.path().join("petstore").display().to_string()])
        .env("DOCKER_HOST", &docker.host)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&loaded.stdout);
    assert!(
        loaded.status.success(),
        "{}",
        String::from_utf8_lossy(&loaded.stderr)
    );
    assert!(
        text.contains("image id sha256:") && text.contains(reference),
        "{text}"
    );
}
