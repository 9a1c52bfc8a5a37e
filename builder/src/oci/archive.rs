//! The image tarball: an OCI archive and a docker-archive in one file.
//!
//! Users load images with whatever they have: `docker load` (20.10+) reads the docker
//! `manifest.json`, while `skopeo copy oci-archive:`, `podman load` and `ctr import`
//! read the OCI `oci-layout` and `index.json`. Both views share the same blobs, so one
//! plain (uncompressed) tar carries `blobs/sha256/…`, `index.json`, `oci-layout` and
//! `manifest.json` (the layout `docker save` writes since Docker 25). The layers stay
//! gzip-compressed inside it; every loader detects that. The tar is written with the
//! same reproducibility rules as a layer (it is built with [`LayerBuilder`]): sorted
//! entries, owner 0:0, mode 0644/0755, mtime = the image's epoch. This module never
//! writes the destination directly; the caller renames the returned temporary file.

use std::fs;
use std::io::BufWriter;
use std::path::Path;

use serde::Serialize;
use tempfile::NamedTempFile;

use super::json::to_canonical_json;
use super::{Digest, Layer, LayerBuilder, OciError};

/// One entry of docker's `manifest.json`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifestEntry {
    /// Path of the config blob inside the archive.
    config: String,
    /// `repository:tag`, as `docker load` names the image.
    repo_tags: Vec<String>,
    /// Paths of the layer blobs inside the archive, bottom first.
    layers: Vec<String>,
}

fn blob_entry(digest: Digest) -> String {
    format!("blobs/sha256/{}", digest.hex())
}

/// docker's `manifest.json` for one image.
pub(crate) fn docker_manifest(
    reference: &str,
    config: Digest,
    layers: &[Layer],
) -> Result<Vec<u8>, OciError> {
    docker_manifest_of(reference, config, layers.iter().map(|l| l.digest))
}

fn docker_manifest_of(
    reference: &str,
    config: Digest,
    layers: impl Iterator<Item = Digest>,
) -> Result<Vec<u8>, OciError> {
    let entry = DockerManifestEntry {
        config: blob_entry(config),
        repo_tags: vec![reference.to_owned()],
        layers: layers.map(blob_entry).collect(),
    };
    to_canonical_json(&[entry], "the docker-archive `manifest.json`")
}

/// Writes `dest`: the layout `image` was read from as an archive whose
/// docker-archive half is `image`, named `reference` (`mgw load --platform` of a
/// platform other than the one `image.tar` holds for `docker load`).
pub fn write_docker_archive(
    image: &super::ImageInfo,
    reference: &str,
    dest: &Path,
) -> Result<(), OciError> {
    let manifest = docker_manifest_of(
        reference,
        image.config_digest,
        image.layers.iter().map(|l| l.digest),
    )?;
    let (tmp, _scratch) = write_archive(&image.layout, &manifest, 0, dest)?;
    tmp.as_file()
        .sync_all()
        .map_err(OciError::io("write", tmp.path()))?;
    tmp.persist(dest)
        .map_err(|e| OciError::io("move the image tarball into place at", dest)(e.error))?;
    Ok(())
}

/// Writes the archive of the layout at `layout` (with `docker_manifest` added) into a
/// temporary file beside `dest`, and returns it unsynced and unpersisted, with the
/// registration that removes it on Ctrl-C until it is persisted.
pub(crate) fn write_archive(
    layout: &Path,
    docker_manifest: &[u8],
    epoch: u64,
    dest: &Path,
) -> Result<(NamedTempFile, crate::scratch::Registration), OciError> {
    const DIR: u32 = 0o755;
    const FILE: u32 = 0o644;

    let mut entries = LayerBuilder::new();
    entries
        .add_dir("/blobs", DIR, 0, 0)?
        .add_dir("/blobs/sha256", DIR, 0, 0)?;
    let blobs = layout.join("blobs").join("sha256");
    for blob in fs::read_dir(&blobs).map_err(OciError::io("list", &blobs))? {
        let blob = blob.map_err(OciError::io("list", &blobs))?;
        let name = blob.file_name();
        let name = name.to_str().ok_or_else(|| OciError::InvalidLayout {
            path: layout.to_owned(),
            message: format!("blob file name `{}` is not UTF-8", name.to_string_lossy()),
        })?;
        if name.starts_with('.') {
            continue; // a temporary file of an unfinished blob; never part of the image
        }
        entries.add_file_from_disk(&format!("/blobs/sha256/{name}"), blob.path(), FILE, 0, 0)?;
    }
    entries
        .add_file_from_disk("/index.json", layout.join("index.json"), FILE, 0, 0)?
        .add_file_from_disk("/oci-layout", layout.join("oci-layout"), FILE, 0, 0)?
        .add_file_bytes("/manifest.json", docker_manifest, FILE, 0, 0)?;

    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    fs::create_dir_all(parent).map_err(OciError::io("create directory", parent))?;
    let name = dest
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("image.tar");
    crate::scratch::sweep(parent, name);
    let tmp = crate::fs::output_temp_file(parent, &crate::scratch::prefix(name, "tmp"))
        .map_err(OciError::io("create a temporary file in", parent))?;
    let scratch = crate::scratch::register(tmp.path());
    let writer = BufWriter::with_capacity(128 * 1024, tmp.as_file());
    let writer = entries.write_tar_to(writer, epoch, tmp.path())?;
    writer
        .into_inner()
        .map_err(|e| OciError::io("write", tmp.path())(e.into_error()))?;
    Ok((tmp, scratch))
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;
    use crate::oci::{ImageSpec, LayerInput, OutputPaths, write_image};

    #[test]
    fn archive_holds_both_views_in_sorted_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut layer = LayerBuilder::new();
        layer
            .add_file_bytes("/f", b"f".to_vec(), 0o644, 0, 0)
            .unwrap();
        let mut spec = ImageSpec::new("example.com/gw", "v1");
        spec.source_date_epoch = 42;
        spec.layers.push(LayerInput::new(layer, "f"));
        let out = write_image(
            &spec,
            &OutputPaths {
                layout: dir.path().join("img"),
                tarball: Some(dir.path().join("img.tar")),
            },
        )
        .unwrap();

        let bytes = fs::read(dir.path().join("img.tar")).unwrap();
        let mut archive = tar::Archive::new(bytes.as_slice());
        let mut names = Vec::new();
        let mut docker = String::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let header = entry.header();
            assert_eq!(header.mtime().unwrap(), 42);
            assert_eq!((header.uid().unwrap(), header.gid().unwrap()), (0, 0));
            let name = String::from_utf8(entry.path_bytes().into_owned()).unwrap();
            if name == "manifest.json" {
                entry.read_to_string(&mut docker).unwrap();
            } else if let Some(hex) = name.strip_prefix("blobs/sha256/").filter(|h| !h.is_empty()) {
                let mut blob = Vec::new();
                entry.read_to_end(&mut blob).unwrap();
                assert_eq!(Digest::of(&blob).hex(), hex);
                assert_eq!(fs::read(out.layout.join(&name)).unwrap(), blob);
            }
            names.push(name);
        }
        let mut blobs: Vec<String> = [out.config_digest, out.manifest_digest, out.layers[0].digest]
            .iter()
            .map(|d| format!("blobs/sha256/{}", d.hex()))
            .collect();
        blobs.sort();
        let mut expected = vec!["blobs/".to_owned(), "blobs/sha256/".to_owned()];
        expected.extend(blobs);
        expected.extend(["index.json", "manifest.json", "oci-layout"].map(String::from));
        assert_eq!(names, expected);
        assert_eq!(
            docker,
            format!(
                r#"[{{"Config":"blobs/sha256/{}","Layers":["blobs/sha256/{}"],"RepoTags":["example.com/gw:v1"]}}]"#,
                out.config_digest.hex(),
                out.layers[0].digest.hex()
            )
        );
    }
}
