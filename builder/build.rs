//! Embeds the gateway library's sources (`mgw-gateway`, `mgw-bundle` and the
//! workspace manifest they inherit from) as one gzipped tar, so `mgw init
//! --runtime` can vendor into a project the exact library this `mgw` was built
//! with (`runtime::scaffold`). The archive is deterministic: sorted entries,
//! mtime 0, uid/gid 0, modes 0644/0755.
//!
//! What is left out of the manifests: the gateway's benches, examples and
//! dev-dependencies (test-only, and they name this repository's other
//! crates), the workspace's other members and its profiles (a vendored
//! workspace's profiles would be ignored with a warning).

use std::path::{Path, PathBuf};

fn main() {
    let builder = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let root = builder.parent().unwrap().to_path_buf();
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap()).join("gateway-sources.tar.gz");

    let mut files: Vec<(String, Vec<u8>)> = vec![(
        "Cargo.toml".into(),
        workspace_manifest(&read(&root.join("Cargo.toml"))).into_bytes(),
    )];
    for krate in ["gateway", "bundle"] {
        let dir = root.join(krate);
        files.push((
            format!("{krate}/Cargo.toml"),
            package_manifest(&read(&dir.join("Cargo.toml"))).into_bytes(),
        ));
        println!(
            "cargo:rerun-if-changed={}",
            dir.join("Cargo.toml").display()
        );
        println!("cargo:rerun-if-changed={}", dir.join("src").display());
        let mut sources = Vec::new();
        walk(&dir.join("src"), &mut sources);
        for path in sources {
            let rel = path
                .strip_prefix(&root)
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned();
            println!("cargo:rerun-if-changed={}", path.display());
            files.push((rel, std::fs::read(&path).unwrap()));
        }
    }
    println!(
        "cargo:rerun-if-changed={}",
        root.join("Cargo.toml").display()
    );
    files.sort();

    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let mut tar = tar::Builder::new(gz);
    tar.mode(tar::HeaderMode::Deterministic);
    for (path, bytes) in &files {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, path, bytes.as_slice())
            .unwrap();
    }
    let bytes = tar.into_inner().unwrap().finish().unwrap();
    std::fs::write(out, bytes).unwrap();
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, files);
        } else {
            files.push(path);
        }
    }
}

/// The manifest's lines without the tables named in `drop` (a table runs from
/// its header to the next header).
fn without_tables(manifest: &str, drop: impl Fn(&str) -> bool) -> String {
    let mut keep = true;
    let mut out = String::new();
    for line in manifest.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            keep = !drop(t);
        }
        if keep {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// The workspace manifest with only the two vendored members and no profiles.
fn workspace_manifest(manifest: &str) -> String {
    let mut out = String::from(
        "# The mgw workspace manifest the vendored crates inherit from, as `mgw` embedded it.\n",
    );
    for line in without_tables(manifest, |t| t.starts_with("[profile")).lines() {
        let t = line.trim_start();
        if t.starts_with("members") {
            out.push_str("members = [\"bundle\", \"gateway\"]\n");
        } else if t.starts_with("default-members") {
            continue;
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// A member's manifest without its test-only tables.
fn package_manifest(manifest: &str) -> String {
    without_tables(manifest, |t| {
        matches!(
            t,
            "[[bench]]" | "[[example]]" | "[[test]]" | "[dev-dependencies]"
        )
    })
}
