//! Nothing that validates may fail at start: every example and every fixture
//! project that `mgw validate` accepts gives a bundle the gateway's own
//! `Config::from_bundle` accepts, with the deployment environment empty (every
//! `${VAR:-default}` at its default), exactly as the gateway reads it at start.
//! The compatibility corpora (`corpus.rs`, `wso2_corpus.rs`) run the same check
//! on the `bundle.json` each of their builds writes.

use std::path::{Path, PathBuf};

use mgw_builder::project;
use mgw_bundle::{Bundle, Config};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// Project directories (those with an `mgw.yaml`) directly under `dir`, sorted.
fn projects(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("mgw.yaml").is_file())
        .collect();
    out.sort();
    out
}

/// Builds `dir`; when it validates, the gateway must accept the bytes it wrote.
/// Returns whether it validated.
fn validates_and_starts(dir: &Path) -> bool {
    let Ok(c) = project::build(dir) else {
        return false;
    };
    let bundle = Bundle::from_json(&c.bytes).unwrap_or_else(|e| {
        panic!(
            "{}: the gateway cannot parse the bundle: {e}",
            dir.display()
        )
    });
    let env = std::collections::BTreeMap::<String, String>::new();
    if let Err(e) = Config::from_bundle(&bundle, c.digest.clone(), Some(&env)) {
        panic!(
            "{} validates, but the gateway refuses to start on it: {e}",
            dir.display()
        );
    }
    true
}

#[test]
fn every_example_validates_and_starts() {
    let examples = projects(&root().join("../examples"));
    assert!(examples.len() >= 4, "{examples:?}");
    for dir in examples {
        assert!(
            validates_and_starts(&dir),
            "{} does not validate",
            dir.display()
        );
    }
}

#[test]
fn every_fixture_that_validates_starts() {
    let fixtures = projects(&root().join("tests/fixtures"));
    let valid: Vec<&PathBuf> = fixtures
        .iter()
        .filter(|d| validates_and_starts(d))
        .collect();
    // The fixtures that are meant to be valid (the others are refused on purpose).
    for name in ["json-spec", "openapi31", "remote-ref", "swagger2"] {
        assert!(
            valid.iter().any(|d| d.ends_with(name)),
            "fixture {name} no longer validates; valid: {valid:?}"
        );
    }
}
