//! The base layer, from the repository's `base-image/`, embedded in the binary.
//!
//! `base-image/base.yaml` declares every entry of layer 1 (path, type, mode, owner,
//! source file under `base-image/rootfs/`); this module embeds the declaration and the
//! files with `include_str!`/`include_bytes!` so `mgw` needs nothing from the machine
//! it runs on, and turns them into a [`LayerBuilder`]. It must never read the host's
//! `/etc` or CA store: what a build machine trusts is not what the image trusts.

use std::collections::BTreeSet;

use serde::Deserialize;

use super::{LayerBuilder, OciError};

/// The `created_by` history entry of the base layer.
pub const BASE_LAYER_CREATED_BY: &str =
    "mgw: base layer (base-image/: passwd, group, CA certificates, /tmp)";

/// The uid and gid of the `nonroot` user the image runs as.
pub const NONROOT_ID: u32 = 65532;

const DECLARATION: &str = include_str!("../../../base-image/base.yaml");

/// Every file under `base-image/rootfs/`, by its path there. A test checks this list
/// against the directory and against `base.yaml`.
const SOURCES: &[(&str, &[u8])] = &[
    (
        "etc/group",
        include_bytes!("../../../base-image/rootfs/etc/group"),
    ),
    (
        "etc/passwd",
        include_bytes!("../../../base-image/rootfs/etc/passwd"),
    ),
    (
        "etc/ssl/certs/ca-certificates.crt",
        include_bytes!("../../../base-image/rootfs/etc/ssl/certs/ca-certificates.crt"),
    ),
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Declaration {
    entries: Vec<DeclaredEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeclaredEntry {
    path: String,
    #[serde(rename = "type")]
    kind: Kind,
    /// Octal, as a string: YAML 1.1 and 1.2 read `0755` differently.
    mode: String,
    uid: u32,
    gid: u32,
    #[serde(default)]
    source: Option<String>,
}

#[derive(Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Kind {
    Dir,
    File,
}

/// The entries of the base layer, ready to [`write`](LayerBuilder::write).
///
/// Fails only if `base-image/` is inconsistent, which the tests of this module catch
/// before a release.
pub fn base_layer_entries() -> Result<LayerBuilder, OciError> {
    let invalid = |message: String| OciError::BaseDeclaration { message };
    let declaration: Declaration =
        serde_yaml::from_str(DECLARATION).map_err(|e| invalid(e.to_string()))?;

    let mut layer = LayerBuilder::new();
    let mut used = BTreeSet::new();
    for (index, entry) in declaration.entries.iter().enumerate() {
        let at = format!("entries[{index}] (`{}`)", entry.path);
        let mode = u32::from_str_radix(&entry.mode, 8).map_err(|_| {
            invalid(format!(
                "{at}: mode `{}` is not an octal number",
                entry.mode
            ))
        })?;
        match (&entry.kind, &entry.source) {
            (Kind::Dir, None) => {
                layer.add_dir(&entry.path, mode, entry.uid, entry.gid)?;
            }
            (Kind::File, Some(source)) => {
                let bytes = SOURCES
                    .iter()
                    .find(|(name, _)| name == source)
                    .map(|(_, bytes)| *bytes)
                    .ok_or_else(|| {
                        invalid(format!(
                            "{at}: source `{source}` is not embedded; add it to `SOURCES` in `builder/src/oci/base.rs`"
                        ))
                    })?;
                used.insert(source.as_str());
                layer.add_file_bytes(&entry.path, bytes, mode, entry.uid, entry.gid)?;
            }
            (Kind::Dir, Some(_)) => return Err(invalid(format!("{at}: a dir has no `source`"))),
            (Kind::File, None) => return Err(invalid(format!("{at}: a file needs a `source`"))),
        }
    }
    if let Some((unused, _)) = SOURCES.iter().find(|(name, _)| !used.contains(name)) {
        return Err(invalid(format!("embedded file `{unused}` is not declared")));
    }
    Ok(layer)
}

/// The regular files of the base layer: their path in the image (without the
/// leading `/`) and their bytes, in declaration order (for the SBOM).
pub fn embedded_files() -> Vec<(String, &'static [u8])> {
    let Ok(declaration) = serde_yaml::from_str::<Declaration>(DECLARATION) else {
        return Vec::new();
    };
    declaration
        .entries
        .iter()
        .filter_map(|e| {
            let source = e.source.as_deref()?;
            let bytes = SOURCES.iter().find(|(n, _)| *n == source)?.1;
            Some((e.path.trim_start_matches('/').to_owned(), bytes))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::io::Read;
    use std::path::Path;

    use super::*;

    fn rootfs_files(dir: &Path, prefix: &str, out: &mut Vec<String>) {
        for entry in fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let name = format!("{prefix}{}", entry.file_name().to_str().unwrap());
            if entry.file_type().unwrap().is_dir() {
                rootfs_files(&entry.path(), &format!("{name}/"), out);
            } else {
                out.push(name);
            }
        }
    }

    #[test]
    fn every_rootfs_file_is_embedded_and_declared() {
        let rootfs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../base-image/rootfs");
        let mut on_disk = Vec::new();
        rootfs_files(&rootfs, "", &mut on_disk);
        on_disk.sort();
        let embedded: Vec<&str> = SOURCES.iter().map(|(name, _)| *name).collect();
        assert_eq!(on_disk, embedded);
        // base_layer_entries() fails on an undeclared or unknown source.
        base_layer_entries().unwrap();
    }

    #[test]
    fn base_layer_has_the_nonroot_user_ca_bundle_and_sticky_tmp() {
        let dir = tempfile::tempdir().unwrap();
        let layer = base_layer_entries().unwrap().write(dir.path(), 0).unwrap();
        let gz = fs::File::open(&layer.path).unwrap();
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(gz));
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = String::from_utf8(entry.path_bytes().into_owned()).unwrap();
            let header = entry.header();
            let meta = (
                header.mode().unwrap(),
                header.uid().unwrap(),
                header.gid().unwrap(),
            );
            let mut data = String::new();
            entry.read_to_string(&mut data).unwrap();
            match path.as_str() {
                "etc/passwd" => {
                    assert_eq!(meta, (0o644, 0, 0));
                    assert!(data.contains("\nnonroot:x:65532:65532:"), "{data}");
                    assert!(data.starts_with("root:x:0:0:"), "{data}");
                }
                "etc/group" => assert!(data.contains("\nnonroot:x:65532:"), "{data}"),
                "etc/ssl/certs/ca-certificates.crt" => {
                    assert!(data.matches("-----BEGIN CERTIFICATE-----").count() > 100);
                }
                "tmp/" => assert_eq!(meta, (0o1777, 0, 0)),
                "home/nonroot/" => {
                    assert_eq!(meta, (0o700, u64::from(NONROOT_ID), u64::from(NONROOT_ID)))
                }
                _ => {}
            }
            seen.push(path);
        }
        for expected in [
            "etc/passwd",
            "etc/group",
            "etc/ssl/certs/ca-certificates.crt",
            "tmp/",
        ] {
            assert!(
                seen.iter().any(|p| p == expected),
                "missing {expected}: {seen:?}"
            );
        }
        // No shell, no package manager: nothing executable at all.
        assert!(
            !seen
                .iter()
                .any(|p| p.starts_with("bin") || p.starts_with("usr")),
            "{seen:?}"
        );
    }

    #[test]
    fn declaration_lists_parents_explicitly() {
        // Every directory of the base layer is declared, none is implied: the base
        // layer's metadata is all in one reviewable file.
        let declared: BTreeSet<String> = serde_yaml::from_str::<Declaration>(DECLARATION)
            .unwrap()
            .entries
            .into_iter()
            .map(|e| e.path)
            .collect();
        let written: BTreeSet<String> = base_layer_entries().unwrap().paths().collect();
        assert_eq!(declared, written);
    }
}
