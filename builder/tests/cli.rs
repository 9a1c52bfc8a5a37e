//! The real `mgw` binary: exit codes, messages, help texts, reproducibility and
//! output that is never left half-written.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::{MGW, copy_dir, gateway, mgw};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn help_texts_show_examples() {
    let top = Command::new(MGW).arg("--help").output().unwrap();
    assert!(top.status.success());
    assert!(String::from_utf8_lossy(&top.stdout).contains("Examples:"));
    for sub in [
        "init", "validate", "build", "inspect", "run", "push", "load",
    ] {
        let o = Command::new(MGW).args([sub, "--help"]).output().unwrap();
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success() && text.contains("Examples:"),
            "`mgw {sub} --help`:\n{text}"
        );
    }
    let usage = Command::new(MGW).arg("--no-such-flag").output().unwrap();
    assert_eq!(usage.status.code(), Some(2));
    // The immutability exit code is documented where users look.
    for args in [&["--help"][..], &["push", "--help"], &["build", "--help"]] {
        let o = Command::new(MGW).args(args).output().unwrap();
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(
            text.contains("65 "),
            "`mgw {args:?}` documents exit code 65:\n{text}"
        );
    }
}

#[test]
fn same_project_from_two_directories_gives_the_same_image() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    copy_dir(&root().join("../examples/petstore"), &a.path().join("p"));
    copy_dir(
        &root().join("../examples/petstore"),
        &b.path().join("nested/project"),
    );
    let o1 = mgw(&["build", "p", "--output", "json"], a.path());
    assert!(o1.status.success(), "{}", stderr(&o1));
    // A different wall-clock time too.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let o2 = mgw(
        &[
            "build",
            "nested/project",
            "--out",
            "elsewhere",
            "--output",
            "json",
        ],
        b.path(),
    );
    assert!(o2.status.success(), "{}", stderr(&o2));
    let j1: serde_json::Value = serde_json::from_slice(&o1.stdout).unwrap();
    let j2: serde_json::Value = serde_json::from_slice(&o2.stdout).unwrap();
    assert_eq!(j1["digest"], j2["digest"]);
    assert_eq!(j1["bundleDigest"], j2["bundleDigest"]);
    assert_eq!(j1["tag"], j2["tag"]);
    let t1 = std::fs::read(a.path().join("out/petstore/image.tar")).unwrap();
    let t2 = std::fs::read(b.path().join("elsewhere/petstore/image.tar")).unwrap();
    assert!(t1 == t2, "tarballs differ");

    // One changed line in the API changes bundle digest, tag and image digest.
    let spec = b.path().join("nested/project/apis/petstore.yaml");
    let text = std::fs::read_to_string(&spec).unwrap();
    let changed = text.replacen("operationId: listPets", "operationId: listAllPets", 1);
    assert_ne!(text, changed);
    std::fs::write(&spec, changed).unwrap();
    let o3 = mgw(&["build", "nested/project", "--output", "json"], b.path());
    assert!(o3.status.success(), "{}", stderr(&o3));
    let j3: serde_json::Value = serde_json::from_slice(&o3.stdout).unwrap();
    assert_ne!(j3["bundleDigest"], j1["bundleDigest"]);
    assert_ne!(j3["tag"], j1["tag"]);
    assert_ne!(j3["digest"], j1["digest"]);

    // SOURCE_DATE_EPOCH is an input: it changes the image, not the bundle.
    let o4 = Command::new(MGW)
        .args(["build", "p", "--output", "json", "--out", "e"])
        .current_dir(a.path())
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .env("MGW_GATEWAY_BINARY", gateway())
        .output()
        .unwrap();
    let j4: serde_json::Value = serde_json::from_slice(&o4.stdout).unwrap();
    assert_eq!(j4["bundleDigest"], j1["bundleDigest"]);
    assert_ne!(j4["digest"], j1["digest"]);
}

/// The gateway layer cache (`$MGW_CACHE_DIR/layers`): a build that takes the
/// compressed gateway layer from the cache gives the same image as one with an
/// empty cache, at the default epoch and at another one (the epoch is in every
/// mtime, so a cache keyed on the binary alone would hand out a wrong layer).
#[test]
fn a_rebuild_from_the_layer_cache_gives_the_same_image_as_a_cold_build() {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&root().join("../examples/petstore"), &tmp.path().join("p"));
    let build = |out: &str, cache: &str, epoch: &str| {
        let o = Command::new(MGW)
            .args(["build", "p", "--out", out, "--output", "json"])
            .current_dir(tmp.path())
            .env("SOURCE_DATE_EPOCH", epoch)
            .env("MGW_GATEWAY_BINARY", gateway())
            .env("MGW_CACHE_DIR", tmp.path().join(cache))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let tar = std::fs::read(tmp.path().join(out).join("petstore/image.tar")).unwrap();
        (j["digest"].as_str().unwrap().to_owned(), tar)
    };
    let cold = build("cold", "cache", "0");
    assert!(
        tmp.path().join("cache/layers/blobs").is_dir(),
        "the first build fills the layer cache"
    );
    let warm = build("warm", "cache", "0");
    assert_eq!(warm.0, cold.0);
    assert!(warm.1 == cold.1, "tarballs differ");

    let epoch_warm = build("epoch-warm", "cache", "1700000000");
    let epoch_cold = build("epoch-cold", "other-cache", "1700000000");
    assert_ne!(epoch_cold.0, cold.0);
    assert_eq!(epoch_warm.0, epoch_cold.0);
}

/// Two builds at once sharing one cold layer cache (both miss, both store the
/// same entry, each linking its blob in), then a third from the cache: one
/// image digest for all three, and each layout's gateway layer verifies.
#[test]
fn concurrent_builds_share_the_layer_cache() {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&root().join("../examples/petstore"), &tmp.path().join("p"));
    let start = |out: &str| {
        Command::new(MGW)
            .args([
                "build",
                "p",
                "--out",
                out,
                "--output",
                "json",
                "--no-tarball",
            ])
            .current_dir(tmp.path())
            .env("MGW_GATEWAY_BINARY", gateway())
            .env("MGW_CACHE_DIR", tmp.path().join("cache"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let digest = |child: std::process::Child| {
        let o = child.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        j["digest"].as_str().unwrap().to_owned()
    };
    let (a, b) = (start("a"), start("b"));
    let (a, b) = (digest(a), digest(b));
    let c = digest(start("c"));
    assert_eq!((&a, &b), (&c, &c));
    for out in ["a", "b", "c"] {
        let blobs = tmp.path().join(out).join("petstore/oci/blobs/sha256");
        for blob in std::fs::read_dir(&blobs).unwrap() {
            let blob = blob.unwrap();
            let bytes = std::fs::read(blob.path()).unwrap();
            let hex = blob.file_name().into_string().unwrap();
            assert_eq!(
                mgw_builder::oci::Digest::of(&bytes).hex(),
                hex,
                "{out}: {hex}"
            );
        }
    }
}

#[test]
fn build_prints_the_digest_reference_last() {
    let dir = tempfile::tempdir().unwrap();
    let o = mgw(
        &[
            "build",
            root().join("../examples/petstore").to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let last = out.lines().last().unwrap();
    assert!(
        last.starts_with("localhost:5000/petstore-gw@sha256:"),
        "{out}"
    );
    assert_eq!(last.len(), "localhost:5000/petstore-gw@sha256:".len() + 64);
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("out/petstore/build.json")).unwrap())
            .unwrap();
    assert_eq!(meta["image"], last);
    assert_eq!(meta["env"][0]["name"], "MGW_ADMIN_LISTEN");
    // No absolute paths in the metadata.
    assert!(
        !String::from_utf8_lossy(
            &std::fs::read(dir.path().join("out/petstore/build.json")).unwrap()
        )
        .contains(dir.path().to_str().unwrap())
    );
}

#[test]
fn invalid_projects_exit_64_with_a_location_and_leave_no_output() {
    let cases = [
        ("bad-yaml", ".yaml:"),
        ("dangling-ref", "$ref"),
        ("ref-cycle", "cycle"),
        ("duplicate-route", "apis/"),
        ("unknown-key", "mgw.yaml:"),
        ("missing-spec", "mgw.yaml:"),
        ("security", "has no provider"),
        ("unknown-operation", "mgw.yaml:"),
    ];
    for (fixture, needle) in cases {
        let dir = tempfile::tempdir().unwrap();
        let project = root().join("tests/fixtures").join(fixture);
        for cmd in ["validate", "build"] {
            let o = mgw(&[cmd, project.to_str().unwrap()], dir.path());
            let err = stderr(&o);
            assert_eq!(o.status.code(), Some(64), "{fixture} {cmd}: {err}");
            assert!(err.contains(needle), "{fixture} {cmd}: {err}");
            assert!(!err.contains("panicked"), "{fixture}: {err}");
            // A location: file:line:column.
            let located = err.lines().any(|l| {
                let mut parts = l.split(':');
                parts.any(|p| p.trim().chars().all(|c| c.is_ascii_digit()) && !p.trim().is_empty())
            });
            assert!(located, "{fixture}: no line/column in {err}");
        }
        assert!(
            !dir.path().join("out").exists(),
            "{fixture}: output left behind"
        );
    }
}

#[test]
fn validate_output_json_prints_the_diagnostics_of_an_invalid_project() {
    let dir = tempfile::tempdir().unwrap();
    let project = root().join("tests/fixtures/dangling-ref");
    let o = mgw(
        &["--output", "json", "validate", project.to_str().unwrap()],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(64), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}",
            String::from_utf8_lossy(&o.stdout)
        )
    });
    assert_eq!(report["valid"], false);
    let d = &report["diagnostics"][0];
    assert_eq!(d["severity"], "error");
    assert_eq!(d["file"], "apis/api.yaml");
    assert!(d["line"].as_u64().is_some_and(|l| l > 0), "{report}");
    assert!(d["column"].as_u64().is_some_and(|c| c > 0), "{report}");
    assert!(
        d["keyPath"].as_str().unwrap().ends_with("/$ref"),
        "{report}"
    );
    assert!(
        d["message"].as_str().unwrap().contains("points to nothing"),
        "{report}"
    );
}

#[test]
fn a_failed_build_keeps_the_previous_image() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&root().join("../examples/petstore"), &dir.path().join("p"));
    let ok = mgw(&["build", "p"], dir.path());
    assert!(ok.status.success(), "{}", stderr(&ok));
    let before = std::fs::read(dir.path().join("out/petstore/oci/index.json")).unwrap();
    // A gateway binary that is not static: the build fails before writing.
    let o = Command::new(MGW)
        .args(["build", "p", "--gateway-binary", "/bin/ls"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("dynamically linked"), "{}", stderr(&o));
    assert_eq!(
        std::fs::read(dir.path().join("out/petstore/oci/index.json")).unwrap(),
        before
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("out/petstore"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn init_then_build() {
    let dir = tempfile::tempdir().unwrap();
    let spec = root().join("../examples/petstore/apis/petstore.yaml");
    // The example spec refers to a second file; init copies what it needs.
    let o = mgw(
        &[
            "init",
            spec.to_str().unwrap(),
            "--dir",
            "gw",
            "--name",
            "pets",
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let yaml = std::fs::read_to_string(dir.path().join("gw/mgw.yaml")).unwrap();
    assert!(yaml.contains("# "), "mgw.yaml is commented");
    let o = mgw(&["validate", "gw"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let again = mgw(&["init", spec.to_str().unwrap(), "--dir", "gw"], dir.path());
    assert_eq!(again.status.code(), Some(64));
    assert!(stderr(&again).contains("already exists"));
}

#[test]
fn the_gateway_refuses_a_modified_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let o = mgw(
        &[
            "build",
            root().join("../examples/petstore").to_str().unwrap(),
            "--output",
            "json",
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let meta: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let digest = meta["bundleDigest"].as_str().unwrap();
    let bundle = dir.path().join("out/petstore/bundle.json");
    let tampered = dir.path().join("tampered.json");
    let text = std::fs::read_to_string(&bundle)
        .unwrap()
        .replace("/petstore/v1", "/petstore/v2");
    std::fs::write(&tampered, text).unwrap();
    let run = Command::new(gateway())
        .args([
            "--bundle",
            tampered.to_str().unwrap(),
            "--bundle-digest",
            digest,
        ])
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(64));
    assert!(stderr(&run).contains("modified"), "{}", stderr(&run));
}

/// Issue 10: `mgw run` checks every layer blob it extracts against its digest. A
/// layer swapped for another valid one (same files, one more zero block, so other
/// bytes) is refused before anything is executed.
#[test]
fn run_refuses_a_layout_whose_layer_blobs_were_swapped() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let o = mgw(
        &[
            "build",
            root().join("../examples/petstore").to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let layout = dir.path().join("out/petstore/oci");
    let blob = |d: &serde_json::Value| {
        layout
            .join("blobs/sha256")
            .join(d.as_str().unwrap().trim_start_matches("sha256:"))
    };
    let json = |p: PathBuf| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
    };
    let index = json(layout.join("index.json"));
    let manifest = json(blob(&index["manifests"][0]["digest"]));
    for layer in manifest["layers"].as_array().unwrap() {
        let path = blob(&layer["digest"]);
        let stored = std::fs::read(&path).unwrap();
        let gzip = layer["mediaType"].as_str().unwrap().ends_with("gzip");
        let mut tar = Vec::new();
        if gzip {
            flate2::read::GzDecoder::new(&stored[..])
                .read_to_end(&mut tar)
                .unwrap();
        } else {
            tar = stored;
        }
        tar.extend_from_slice(&[0u8; 512]);
        let swapped = if gzip {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            enc.write_all(&tar).unwrap();
            enc.finish().unwrap()
        } else {
            tar
        };
        std::fs::write(&path, swapped).unwrap();
    }
    let mut child = Command::new(MGW)
        .args(["run", "out/petstore"])
        .args([
            "--env",
            "MGW_LISTEN=127.0.0.1:0",
            "--env",
            "MGW_ADMIN_LISTEN=127.0.0.1:0",
        ])
        .current_dir(dir.path())
        .env("XDG_CACHE_HOME", dir.path().join("cache"))
        .env_remove("MGW_CACHE_DIR")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A gateway that started would run until stopped: that is the failure.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`mgw run` started the gateway from swapped layers");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(!status.success(), "{err}");
    assert!(err.contains("is corrupt: expected `sha256:"), "{err}");
    let extracted = std::fs::read_dir(dir.path().join("cache/mgw/run"))
        .into_iter()
        .flatten()
        .any(|e| e.unwrap().path().join("mgw-gateway").exists());
    assert!(!extracted, "a binary was extracted from the swapped layers");
}

/// Output files and directories of a build, relative to `<out>/<name>/`.
const OUTPUTS: &[&str] = &[
    "bundle.json",
    "values.yaml",
    "build.json",
    "sbom.spdx.json",
    "image.digest",
    "image.tar",
    "oci",
    "oci/index.json",
    "oci/oci-layout",
    "oci/blobs",
];

#[test]
fn build_outputs_follow_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&root().join("../examples/petstore"), &tmp.path().join("p"));
    for (umask, file_mode, dir_mode) in [("027", 0o640, 0o750), ("002", 0o664, 0o775)] {
        let o = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "umask {umask} && exec \"$0\" build p --out out-{umask}"
            ))
            .arg(MGW)
            .current_dir(tmp.path())
            .env("MGW_GATEWAY_BINARY", gateway())
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        let dir = tmp.path().join(format!("out-{umask}/petstore"));
        for rel in OUTPUTS {
            let meta = std::fs::metadata(dir.join(rel)).unwrap();
            let want = if meta.is_dir() { dir_mode } else { file_mode };
            assert_eq!(
                meta.permissions().mode() & 0o777,
                want,
                "`{rel}` with umask {umask}"
            );
        }
        for blob in std::fs::read_dir(dir.join("oci/blobs/sha256")).unwrap() {
            let mode = blob.unwrap().metadata().unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, file_mode, "a blob with umask {umask}");
        }
    }
}

/// `mgw validate … | head -1`: a reader that goes away must not make mgw panic.
#[test]
fn a_closed_stdout_ends_mgw_quietly() {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&root().join("../examples/petstore"), &tmp.path().join("p"));
    let built = mgw(&["build", "p", "--no-tarball"], tmp.path());
    assert!(built.status.success(), "{}", stderr(&built));
    for args in [
        &["validate", "p"][..],
        &["inspect", "out/petstore"],
        &["--output", "json", "validate", "p"],
    ] {
        // The read end closes before mgw has started: every write fails (EPIPE).
        let mut child = Command::new(MGW)
            .args(args)
            .current_dir(tmp.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let o = child.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(0), "`mgw {args:?}`: {}", stderr(&o));
        assert!(o.stderr.is_empty(), "`mgw {args:?}`: {}", stderr(&o));

        // And as people write it.
        let o = Command::new("bash")
            .arg("-c")
            .arg("set -o pipefail; \"$0\" \"$@\" | head -1")
            .arg(MGW)
            .args(args)
            .current_dir(tmp.path())
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "`mgw {args:?} | head -1`: {}",
            stderr(&o)
        );
        assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 1);
        assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
    }
}

fn work_folders(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.contains(".tmp-") || n.contains(".old-"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn ctrl_c_during_a_build_removes_its_work_folder() {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&root().join("../examples/petstore"), &tmp.path().join("p"));
    let out = tmp.path().join("out/petstore");
    let mut child = Command::new(MGW)
        .args(["build", "p"])
        .current_dir(tmp.path())
        .env("MGW_GATEWAY_BINARY", gateway())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait (with a deadline) until the build is writing its layout, then Ctrl-C.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let prefix = format!(".oci.tmp-{}-", child.id());
    while !work_folders(&out).iter().any(|n| n.starts_with(&prefix)) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the build ended before its work folder was seen"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "no work folder appeared"
        );
        std::thread::yield_now();
    }
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    assert_eq!(work_folders(&out), Vec::<String>::new());
}

#[test]
fn builds_sweep_work_folders_of_killed_builds_only() {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&root().join("../examples/petstore"), &tmp.path().join("p"));
    let out = tmp.path().join("out/petstore");
    // A build that was killed (no process has a pid above pid_max, 2^22) and one
    // of this test process, which is running.
    let dead = out.join(".oci.tmp-4194305-abcdef");
    let dead_tar = out.join(".image.tar.tmp-4194305-abcdef.tmp");
    let alive = out.join(format!(".oci.tmp-{}-abcdef", std::process::id()));
    std::fs::create_dir_all(dead.join("blobs/sha256")).unwrap();
    std::fs::create_dir_all(&alive).unwrap();
    std::fs::write(&dead_tar, b"partial").unwrap();
    let o = mgw(&["build", "p"], tmp.path());
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!dead.exists() && !dead_tar.exists());
    assert!(alive.exists());
}

/// `mgw push out/x --tag extra` used to push `out/x` under its own tag and drop
/// `--tag` without a word: every build flag is refused for a built image.
#[test]
fn push_and_load_refuse_build_flags_for_a_built_image() {
    let tmp = tempfile::tempdir().unwrap();
    // A build output directory is one holding `build.json`; nothing else is read
    // before the flags are checked.
    std::fs::create_dir_all(tmp.path().join("out/x")).unwrap();
    std::fs::write(tmp.path().join("out/x/build.json"), b"{}").unwrap();
    for (command, flag, value) in [
        ("push", "--tag", Some("extra")),
        ("push", "--base", Some("out/y")),
        ("push", "--gateway-binary", Some("gw")),
        ("push", "--out", Some("dist")),
        ("load", "--source-date-epoch", Some("1")),
        ("load", "--retries", Some("2")),
        ("load", "--insecure", None),
    ] {
        let mut args = vec![command, "out/x", flag];
        args.extend(value);
        let o = mgw(&args, tmp.path());
        assert_eq!(o.status.code(), Some(2), "`mgw {args:?}`: {}", stderr(&o));
        let want = format!(
            "error: `{flag}` applies only when `mgw {command}` builds a project, and `out/x` is a build output"
        );
        assert!(stderr(&o).contains(&want), "`mgw {args:?}`: {}", stderr(&o));
    }
    // The environment is not a flag: CI sets these for every command.
    let o = Command::new(MGW)
        .args(["push", "out/x", "--retries", "0"])
        .current_dir(tmp.path())
        .env("MGW_GATEWAY_BINARY", "gw")
        .env("SOURCE_DATE_EPOCH", "1")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("is not a `build.json` mgw wrote"),
        "{}",
        stderr(&o)
    );
}

/// `mgw load <project>` builds with the same inputs as `mgw build`: the flags,
/// `MGW_GATEWAY_BINARY`, and `--retries` for pulling a base. No Docker engine is
/// needed: the build happens first, the load then fails on the `DOCKER_HOST`
/// given, which shows that one is read through the environment seam too.
#[test]
fn load_of_a_project_honours_the_build_inputs() {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&root().join("../examples/petstore"), &tmp.path().join("p"));
    let no_engine = format!("unix://{}/no-docker.sock", tmp.path().display());
    let load = |args: &[&str], gateway: &Path| {
        Command::new(MGW)
            .arg("load")
            .args(args)
            .current_dir(tmp.path())
            .env_remove("SOURCE_DATE_EPOCH")
            .env("MGW_GATEWAY_BINARY", gateway)
            .env("DOCKER_HOST", &no_engine)
            .env("MGW_CACHE_DIR", tmp.path().join("cache"))
            .env("MGW_LOG", "info")
            .output()
            .unwrap()
    };

    let o = load(
        &[
            "p",
            "--out",
            "o",
            "--source-date-epoch",
            "1000",
            "--tag",
            "t1",
        ],
        &gateway(),
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("cannot reach the Docker engine at `{no_engine}`")),
        "{}",
        stderr(&o)
    );
    let sbom: serde_json::Value = serde_json::from_slice(
        &std::fs::read(tmp.path().join("o/petstore/sbom.spdx.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(sbom["creationInfo"]["created"], "1970-01-01T00:16:40Z");
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("o/petstore/build.json")).unwrap())
            .unwrap();
    assert_eq!(meta["tag"], "t1");

    // MGW_GATEWAY_BINARY is the gateway baked in.
    let missing = tmp.path().join("no-such-gateway");
    let o = load(&["p", "--out", "o2"], &missing);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "cannot read gateway binary `{}`",
            missing.display()
        )),
        "{}",
        stderr(&o)
    );

    // --retries reaches the pull of a registry base: one retry, logged once.
    let o = load(
        &[
            "p",
            "--out",
            "o3",
            "--base",
            "127.0.0.1:1/gw:1",
            "--retries",
            "1",
        ],
        &gateway(),
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("cannot pull base image `127.0.0.1:1/gw:1`"),
        "{}",
        stderr(&o)
    );
    assert_eq!(stderr(&o).matches("retrying").count(), 1, "{}", stderr(&o));
}

/// `mgw run` extracts into the same cache as `--base` pulls: `$MGW_CACHE_DIR`
/// first (it used to have a rule of its own that ignored it).
#[test]
fn run_extracts_into_mgw_cache_dir() {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&root().join("../examples/petstore"), &tmp.path().join("p"));
    let built = mgw(&["build", "p", "--no-tarball"], tmp.path());
    assert!(built.status.success(), "{}", stderr(&built));
    let digest = std::fs::read_to_string(tmp.path().join("out/petstore/image.digest")).unwrap();
    let hex = digest.trim().trim_start_matches("sha256:");
    let mut child = Command::new(MGW)
        .args(["run", "out/petstore"])
        .args([
            "--env",
            "MGW_LISTEN=127.0.0.1:0",
            "--env",
            "MGW_ADMIN_LISTEN=127.0.0.1:0",
        ])
        .current_dir(tmp.path())
        .env("MGW_CACHE_DIR", tmp.path().join("mgw-cache"))
        .env("XDG_CACHE_HOME", tmp.path().join("xdg"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let binary = tmp.path().join(format!("mgw-cache/run/{hex}/mgw-gateway"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !binary.is_file() && std::time::Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(binary.is_file(), "`{}` was not extracted", binary.display());
    assert!(!tmp.path().join("xdg").exists());
}

/// The project's warnings come when it compiles, before the bake: a build that
/// then fails still shows them, and the error is said once.
#[test]
fn build_warnings_come_before_a_failing_bake() {
    let tmp = tempfile::tempdir().unwrap();
    let project = tmp.path().join("p");
    copy_dir(&root().join("../examples/petstore"), &project);
    let manifest = std::fs::read_to_string(project.join("mgw.yaml")).unwrap();
    let manifest = manifest.replacen(
        "      - ${PETSTORE_UPSTREAM:-http://127.0.0.1:8081}\n",
        "      - https://127.0.0.1:8081\n    tls:\n      insecureSkipVerify: true\n",
        1,
    );
    std::fs::write(project.join("mgw.yaml"), manifest).unwrap();
    let missing = tmp.path().join("no-such-gateway");
    let o = Command::new(MGW)
        .args(["build", "p"])
        .current_dir(tmp.path())
        .env("MGW_GATEWAY_BINARY", &missing)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(
        lines[0].starts_with("warning: mgw.yaml:") && lines[0].contains("insecureSkipVerify"),
        "{err}"
    );
    assert_eq!(
        lines[1],
        format!(
            "error: cannot read gateway binary `{}`: No such file or directory (os error 2)",
            missing.display()
        )
    );
}

/// A project of one OpenAPI 3.0 document `doc` served at `/`.
fn contract_project(dir: &Path, doc: &str) -> PathBuf {
    let p = dir.join("c");
    std::fs::create_dir_all(&p).unwrap();
    std::fs::write(
        p.join("mgw.yaml"),
        "name: c\nversion: '1'\nupstreams: {u: {urls: ['http://127.0.0.1:8081']}}\napis: [{name: c, spec: api.yaml, upstream: u, basePath: /}]\n",
    )
    .unwrap();
    std::fs::write(p.join("api.yaml"), doc).unwrap();
    p
}

#[test]
fn validate_lists_which_operations_validate_or_mock() {
    let dir = tempfile::tempdir().unwrap();
    let p = contract_project(
        dir.path(),
        "openapi: 3.0.3\ninfo: {title: c, version: '1'}\npaths:\n  /a:\n    post:\n      operationId: checked\n      x-mgw-validate-request: true\n      requestBody: {content: {application/json: {schema: {type: object}}}}\n      responses: {'200': {description: ok}}\n  /b:\n    get:\n      operationId: mocked\n      x-mgw-mock: true\n      responses: {'200': {description: ok, content: {application/json: {example: {ok: true}}}}}\n  /c:\n    get:\n      operationId: plain\n      responses: {'200': {description: ok}}\n",
    );
    let o = mgw(&["validate", p.to_str().unwrap()], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let line = |id: &str| {
        out.lines()
            .find(|l| l.contains(&format!("({id})")))
            .unwrap_or_else(|| panic!("no `{id}` in:\n{out}"))
            .to_owned()
    };
    assert!(line("checked").ends_with("validates requests"), "{out}");
    assert!(line("mocked").ends_with("mock"), "{out}");
    assert!(
        !line("plain").contains("validates") && !line("plain").contains("mock"),
        "{out}"
    );
}

#[test]
fn a_schema_that_does_not_compile_fails_validate_at_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let p = contract_project(
        dir.path(),
        "openapi: 3.0.3\ninfo: {title: c, version: '1'}\npaths:\n  /a:\n    post:\n      operationId: checked\n      x-mgw-validate-request: true\n      requestBody:\n        content:\n          application/json:\n            schema:\n              type: object\n              properties: {n: {type: 12}}\n      responses: {'200': {description: ok}}\n",
    );
    let o = mgw(&["validate", p.to_str().unwrap()], dir.path());
    assert_eq!(o.status.code(), Some(64), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("api.yaml:12:15"), "{err}");
    assert!(err.contains("does not compile"), "{err}");
}

#[test]
fn a_runtime_for_another_platform_without_cargo_zigbuild_says_what_to_install() {
    let tmp = tempfile::tempdir().unwrap();
    let project = tmp.path().join("project");
    copy_dir(&root().join("../examples/petstore-filters"), &project);
    let other = if std::env::consts::ARCH == "aarch64" {
        "linux/amd64"
    } else {
        "linux/arm64"
    };
    let out = tmp.path().join("out");
    // No `cargo-zigbuild` on PATH, and no gateway binary given: the runtime
    // must be cross-compiled, and mgw says so before cargo runs.
    let build = Command::new(MGW)
        .args(["build", "--platform", other, "--out"])
        .arg(&out)
        .arg(&project)
        .env_remove("MGW_GATEWAY_BINARY")
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap();
    assert!(!build.status.success(), "{}", stderr(&build));
    let err = stderr(&build);
    assert!(
        err.contains(&format!("for {other} on a "))
            && err.contains("needs `cargo-zigbuild` and Zig (`pip install ziglang cargo-zigbuild`")
            && err.contains(&format!("--gateway-binary {other}=PATH")),
        "{err}"
    );
    assert!(
        !out.join("petstore-filters/oci").exists(),
        "an image was written"
    );
}
