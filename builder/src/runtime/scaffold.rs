//! `mgw init --runtime`: adding a `runtime/` crate to a project — a `main` that
//! registers an example filter and runs the gateway, and the gateway library
//! vendored from this `mgw` (`vendor/mgw`: the `mgw-gateway` and `mgw-bundle`
//! sources and the workspace manifest they inherit from, embedded by
//! `build.rs`), so the crate builds at the exact version `mgw` was built from
//! and needs no registry for the library.
//!
//! The lock file is the one `examples/petstore-filters/runtime` carries (the
//! same dependencies, the versions of this repository's `Cargo.lock`), with the
//! root package renamed: `cargo build --locked --offline` accepts it when the
//! registry crates are in the cargo cache or vendored (`cargo vendor`).
//!
//! Never overwrite: an existing `runtime/` is an error; everything is written
//! into a temporary directory beside it and renamed into place at the end.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::DIR;

/// The embedded gateway library sources (`build.rs`).
static SOURCES: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/gateway-sources.tar.gz"));
/// The example runtime's lock file, whose dependencies the template's are.
const EXAMPLE_LOCK: &str = include_str!("../../../examples/petstore-filters/runtime/Cargo.lock");
const EXAMPLE_PACKAGE: &str = "petstore-filters-runtime";
/// The template crate's package name (as in `template/Cargo.toml`).
pub const PACKAGE: &str = "mgw-runtime";
const PACKAGE_VERSION: &str = "1.0.0";

/// The files besides the vendored library, relative to `runtime/`.
const FILES: &[(&str, &str)] = &[
    ("Cargo.toml", include_str!("template/Cargo.toml")),
    (
        "rust-toolchain.toml",
        include_str!("../../../examples/petstore-filters/runtime/rust-toolchain.toml"),
    ),
    (".gitignore", "/target\n"),
    ("src/main.rs", include_str!("template/main.rs")),
    ("src/filters.rs", include_str!("template/filters.rs")),
];
/// Where the library goes, relative to `runtime/`.
const VENDOR: &str = "vendor/mgw";

#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    #[error("`{0}` already exists; `mgw init --runtime` never overwrites it")]
    Exists(PathBuf),
    #[error(
        "`{0}` is not a project (no `mgw.yaml`); pass an OpenAPI file too: `mgw init SPEC --runtime`"
    )]
    NoProject(PathBuf),
    #[error("cannot write `{path}`")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Writes `runtime/` into `project` (the caller knows it is one: a directory
/// with an `mgw.yaml`); returns the files written, relative to the project,
/// sorted (the vendored library as one entry, `runtime/vendor/mgw/`).
pub fn write(project: &Path) -> Result<Vec<String>, ScaffoldError> {
    let target = project.join(DIR);
    if target.exists() {
        return Err(ScaffoldError::Exists(target));
    }
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ScaffoldError::Write { path, source }
    };
    let tmp = tempfile::Builder::new()
        .prefix(".runtime.")
        .tempdir_in(project)
        .map_err(io(project))?;
    let mut written = Vec::new();
    let lock = lock_for(EXAMPLE_LOCK, EXAMPLE_PACKAGE, PACKAGE, PACKAGE_VERSION);
    for (rel, text) in FILES.iter().copied().chain([("Cargo.lock", lock.as_str())]) {
        put(tmp.path(), rel, text.as_bytes()).map_err(io(&target.join(rel)))?;
        written.push(format!("{DIR}/{rel}"));
    }
    unpack(&tmp.path().join(VENDOR)).map_err(io(&target.join(VENDOR)))?;
    written.push(format!("{DIR}/{VENDOR}/"));
    // Not `keep()` then rename: a failed rename leaves nothing behind either.
    std::fs::rename(tmp.path(), &target).map_err(io(&target))?;
    written.sort();
    Ok(written)
}

fn put(root: &Path, rel: &str, bytes: &[u8]) -> std::io::Result<()> {
    let path = root.join(rel);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, bytes)
}

/// The embedded library sources into `dir`.
fn unpack(dir: &Path) -> std::io::Result<()> {
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(SOURCES));
    for entry in tar.entries()? {
        let mut entry = entry?;
        let rel = entry.path()?.into_owned();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes)?;
        put(dir, &rel.to_string_lossy(), &bytes)?;
    }
    Ok(())
}

/// `lock` with its root package `from` renamed `to` (at `version`), moved to
/// where cargo sorts it (packages are ordered by name), so `--locked` accepts it.
fn lock_for(lock: &str, from: &str, to: &str, version: &str) -> String {
    const SEP: &str = "\n[[package]]\n";
    let mut parts = lock.split(SEP);
    let head = parts.next().unwrap_or_default();
    let name_of = |block: &str| {
        block
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("name = \""))
            .and_then(|l| l.strip_suffix('"'))
            .map(str::to_owned)
            .unwrap_or_default()
    };
    let mut blocks: Vec<String> = parts.map(str::to_owned).collect();
    if let Some(i) = blocks.iter().position(|b| name_of(b) == from) {
        let old = blocks.remove(i);
        let rest: String = old.lines().skip(2).map(|l| format!("{l}\n")).collect();
        let renamed = format!("name = \"{to}\"\nversion = \"{version}\"\n{rest}");
        let at = blocks
            .iter()
            .position(|b| name_of(b).as_str() > to)
            .unwrap_or(blocks.len());
        blocks.insert(at, renamed);
    }
    // Every block ends with a newline: the separator's first one makes the
    // blank line between packages.
    let mut out = String::from(head);
    for b in &blocks {
        out.push_str(SEP);
        out.push_str(b);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_lock_reads_back_unchanged_and_its_root_moves_when_renamed() {
        assert_eq!(
            lock_for(EXAMPLE_LOCK, EXAMPLE_PACKAGE, EXAMPLE_PACKAGE, "1.0.0"),
            EXAMPLE_LOCK
        );
        let lock = lock_for(EXAMPLE_LOCK, EXAMPLE_PACKAGE, PACKAGE, PACKAGE_VERSION);
        assert!(!lock.contains(EXAMPLE_PACKAGE));
        let names: Vec<&str> = lock
            .lines()
            .filter_map(|l| l.strip_prefix("name = \""))
            .collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        assert!(names.contains(&"mgw-runtime\""), "{names:?}");
    }

    #[test]
    fn the_template_depends_on_what_the_example_does() {
        let deps = |manifest: &str| -> Vec<String> {
            manifest
                .lines()
                .filter(|l| {
                    ["bytes", "http", "mgw-gateway", "mimalloc"]
                        .iter()
                        .any(|d| l.starts_with(&format!("{d} =")))
                })
                .map(|l| l.split_once(" =").unwrap().0.to_owned())
                .collect()
        };
        let example = include_str!("../../../examples/petstore-filters/runtime/Cargo.toml");
        assert_eq!(deps(FILES[0].1), deps(example));
        assert_eq!(deps(example).len(), 4);
    }
}
