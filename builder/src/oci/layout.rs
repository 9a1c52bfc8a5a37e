//! The OCI image layout directory: written atomically, read back with verification.
//!
//! Writing: a `Staging` directory is created beside the destination (same parent, so
//! the same filesystem) and receives `blobs/sha256/…`, `index.json` and `oci-layout`.
//! `Staging::commit` renames the old layout away, renames the new one in and deletes
//! the old one; on any error before that, the staging directory is removed and the
//! old layout is untouched. It never replaces a directory that is not an image layout.
//! Between the two renames the destination briefly does not exist (a reader sees the
//! old image, nothing, or the new image; never a mix). A build killed outright (no
//! chance to clean up) can leave a hidden `.<name>.tmp-<pid>-*` or `.<name>.old-<pid>-*`
//! sibling; deleting it is always safe, and the next build does (`scratch`). Ctrl-C
//! removes the staging directory before the process exits.
//!
//! Reading: [`read_image`] resolves a tag through `index.json`, verifies the manifest
//! and config against their digests and lists the layers with their `diff_id`s and
//! history, for `mgw inspect`, `mgw run` and `--base`. [`extract_file`] and
//! [`ImageInfo::read_file`] pull single files out of layers without unpacking them.
//! Reading never modifies the layout.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;
use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest, MediaType};
use serde::Deserialize;
use tempfile::TempDir;

use super::digest::{copy_hashed, digest_reader};
use super::json::to_canonical_json;
use super::{
    ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME, Digest, Layer, MEDIA_TYPE_DOCKER_LAYER_GZIP,
    MEDIA_TYPE_LAYER_GZIP, MEDIA_TYPE_LAYER_TAR, OciError,
};

/// The content of `oci-layout`.
pub(crate) const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

const DOCKER_MANIFEST_V2: &str = "application/vnd.docker.distribution.manifest.v2+json";

// ---------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------

/// A layout under construction in a temporary sibling of its destination.
pub(crate) struct Staging {
    dir: TempDir,
    blobs: PathBuf,
    /// Removes `dir` on Ctrl-C; dropped after `dir` is renamed or removed.
    _scratch: crate::scratch::Registration,
}

impl Staging {
    /// Creates `.<name>.tmp-XXXXXX/blobs/sha256` beside `target` (creating `target`'s
    /// parent directories if needed).
    pub(crate) fn new(target: &Path) -> Result<Self, OciError> {
        let (parent, name) = split_target(target)?;
        fs::create_dir_all(&parent).map_err(OciError::io("create directory", &parent))?;
        crate::scratch::sweep(&parent, &name);
        let prefix = crate::scratch::prefix(&name, "tmp");
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix);
        // It becomes the layout: 0777 minus the umask like any directory a build
        // tool makes, not `tempfile`'s private 0700.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            builder.permissions(fs::Permissions::from_mode(0o777));
        }
        let dir = builder
            .tempdir_in(&parent)
            .map_err(OciError::io("create a temporary directory in", &parent))?;
        let scratch = crate::scratch::register(dir.path());
        let blobs = dir.path().join("blobs").join("sha256");
        fs::create_dir_all(&blobs).map_err(OciError::io("create directory", &blobs))?;
        Ok(Self {
            dir,
            blobs,
            _scratch: scratch,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    pub(crate) fn blobs(&self) -> &Path {
        &self.blobs
    }

    /// Stores `bytes` as a blob; returns its digest and size.
    pub(crate) fn write_blob(&self, bytes: &[u8]) -> Result<(Digest, u64), OciError> {
        let digest = Digest::of(bytes);
        write_unsynced(&self.blobs.join(digest.hex()), bytes)?;
        Ok((digest, bytes.len() as u64))
    }

    /// Puts a layer blob of another layout (or of the layer cache) into this one,
    /// verifying its digest and size: see [`place_verified`].
    pub(crate) fn copy_layer(&self, layer: &LayerInfo) -> Result<Layer, OciError> {
        let media_type = match layer.media_type.as_str() {
            MEDIA_TYPE_LAYER_GZIP | MEDIA_TYPE_DOCKER_LAYER_GZIP => MEDIA_TYPE_LAYER_GZIP,
            MEDIA_TYPE_LAYER_TAR => MEDIA_TYPE_LAYER_TAR,
            other => {
                return Err(OciError::UnsupportedMediaType {
                    media_type: other.to_owned(),
                });
            }
        };
        let path = self.blobs.join(layer.digest.hex());
        place_verified(&layer.blob_path, &path, layer.digest, layer.size)?;
        Ok(Layer {
            digest: layer.digest,
            diff_id: layer.diff_id,
            size: layer.size,
            media_type: media_type.to_owned(),
            path,
        })
    }

    /// Writes `index.json` (one entry, tagged) and `oci-layout`. The entry is an
    /// image manifest for `Some((architecture, os))`, an image index for `None`.
    pub(crate) fn write_index(
        &self,
        digest: Digest,
        size: u64,
        tag: &str,
        containerd_name: &str,
        platform: Option<(&str, &str)>,
    ) -> Result<(), OciError> {
        let index = index_json(digest, size, tag, containerd_name, platform)?;
        write_unsynced(&self.path().join("index.json"), &index)?;
        write_unsynced(&self.path().join("oci-layout"), OCI_LAYOUT)
    }

    /// Makes every file of the layout (and `also`, the tarball) durable, all in
    /// one go ([`crate::fs::sync_together`]): before [`Staging::commit`]'s rename,
    /// so a crash never leaves a layout under the final name whose blobs are not
    /// on disk. Blobs are written without their own `fsync` for this.
    pub(crate) fn sync(&self, also: Option<&File>) -> Result<(), OciError> {
        let mut files = Vec::new();
        let mut open = |path: PathBuf| -> Result<(), OciError> {
            files.push(File::open(&path).map_err(OciError::io("open", &path))?);
            Ok(())
        };
        for entry in fs::read_dir(&self.blobs).map_err(OciError::io("list", &self.blobs))? {
            let entry = entry.map_err(OciError::io("list", &self.blobs))?;
            if !entry.file_name().to_string_lossy().starts_with('.') {
                open(entry.path())?;
            }
        }
        open(self.path().join("index.json"))?;
        open(self.path().join("oci-layout"))?;
        let mut handles: Vec<&File> = files.iter().collect();
        handles.extend(also);
        crate::fs::sync_together(&handles).map_err(OciError::io("write", self.path()))
    }

    /// Moves the finished layout to `target`, replacing an existing image layout.
    pub(crate) fn commit(self, target: &Path) -> Result<(), OciError> {
        let staged = self.dir.keep();
        let result = replace_dir(&staged, target);
        if result.is_err() {
            let _ = fs::remove_dir_all(&staged);
        }
        result
    }
}

fn index_json(
    digest: Digest,
    size: u64,
    tag: &str,
    containerd_name: &str,
    platform: Option<(&str, &str)>,
) -> Result<Vec<u8>, OciError> {
    let assemble = |source| OciError::Assemble {
        what: "index",
        source,
    };
    let media_type = match platform {
        Some(_) => MediaType::ImageManifest,
        None => MediaType::ImageIndex,
    };
    let mut manifest = Descriptor::new(media_type, size, digest.to_oci());
    manifest.set_annotations(Some(HashMap::from([
        (ANNOTATION_REF_NAME.to_owned(), tag.to_owned()),
        (
            ANNOTATION_CONTAINERD_NAME.to_owned(),
            containerd_name.to_owned(),
        ),
    ])));
    if let Some((architecture, os)) = platform {
        manifest.set_platform(Some(
            super::index::platform(architecture, os).map_err(assemble)?,
        ));
    }
    let index = oci_spec::image::ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(vec![manifest])
        .build()
        .map_err(assemble)?;
    to_canonical_json(&index, "index.json")
}

/// The fully qualified name containerd (`ctr import`, Docker's containerd image
/// store) gives the image: what `docker save` writes as `io.containerd.image.name`.
/// `petstore-gw` becomes `docker.io/library/petstore-gw`, `team/gw` becomes
/// `docker.io/team/gw`, names with a registry host stay as they are.
pub(crate) fn containerd_name(repository: &str, tag: &str) -> String {
    let first = repository.split('/').next().unwrap_or_default();
    // Docker's rule: the first component is a registry host if it has a `.` or `:`,
    // is `localhost`, or has an uppercase letter.
    let has_host = repository.contains('/')
        && (first.contains(['.', ':'])
            || first == "localhost"
            || first.bytes().any(|b| b.is_ascii_uppercase()));
    let full = if has_host {
        repository.to_owned()
    } else if repository.contains('/') {
        format!("docker.io/{repository}")
    } else {
        format!("docker.io/library/{repository}")
    };
    format!("{full}:{tag}")
}

fn split_target(target: &Path) -> Result<(PathBuf, String), OciError> {
    let name = target
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| *n != "..")
        .ok_or_else(|| OciError::InvalidSpec {
            message: format!(
                "output path `{}` must end in a UTF-8 file name",
                target.display()
            ),
        })?;
    let parent = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    Ok((parent, name.to_owned()))
}

/// Fails unless `target` is absent, an empty directory, or an OCI image layout.
pub(crate) fn check_replaceable(target: &Path) -> Result<(), OciError> {
    split_target(target)?;
    let meta = match fs::symlink_metadata(target) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(OciError::io("read metadata of", target)(e)),
    };
    let not_a_layout = || OciError::NotALayout {
        path: target.to_owned(),
    };
    if !meta.is_dir() {
        return Err(not_a_layout());
    }
    if target.join("oci-layout").is_file() {
        return Ok(());
    }
    let mut entries = fs::read_dir(target).map_err(OciError::io("list", target))?;
    if entries.next().is_none() {
        Ok(())
    } else {
        Err(not_a_layout())
    }
}

fn replace_dir(staged: &Path, target: &Path) -> Result<(), OciError> {
    check_replaceable(target)?;
    let rename_in = |from: &Path| {
        fs::rename(from, target)
            .map_err(OciError::io("move the image layout into place at", target))
    };
    if fs::symlink_metadata(target).is_err() {
        rename_in(staged)?;
        sync_parent(target);
        return Ok(());
    }

    // An empty placeholder that `rename` may replace (a directory can be renamed over
    // an empty one), so the old layout gets a unique name without races.
    let (parent, name) = split_target(target)?;
    let old = tempfile::Builder::new()
        .prefix(&crate::scratch::prefix(&name, "old"))
        .tempdir_in(&parent)
        .map_err(OciError::io("create a temporary directory in", &parent))?
        .keep();
    if let Err(e) = fs::rename(target, &old) {
        let _ = fs::remove_dir(&old);
        return Err(OciError::io(
            "move the previous image layout away from",
            target,
        )(e));
    }
    if let Err(e) = rename_in(staged) {
        // Put the previous image back; it was never modified.
        let _ = fs::rename(&old, target);
        return Err(e);
    }
    sync_parent(target);
    if let Err(error) = fs::remove_dir_all(&old) {
        tracing::warn!(path = %old.display(), %error, "cannot remove the previous image layout");
    }
    Ok(())
}

/// Makes a rename in `path`'s parent directory durable. Best effort: not every
/// platform can open a directory for syncing.
pub(crate) fn sync_parent(path: &Path) {
    if let Ok((parent, _)) = split_target(path) {
        if let Ok(dir) = File::open(parent) {
            let _ = dir.sync_all();
        }
    }
}

/// Puts the blob at `src` at `dest` (a blob directory's `<hex>`), checked against
/// `digest` and `size` after it is in the destination directory and before it
/// takes its name, so `dest` never names wrong bytes. On one filesystem `src` is
/// hard-linked: blobs are never modified in place (every writer renames a new
/// file into place), so a link shares bytes that can only go away, never change;
/// the check reads the linked inode itself, so a blob replaced at `src` meanwhile
/// cannot slip in. It needs no `fsync`: `src` was synced when it was written.
/// Across filesystems, where linking is refused, or where `src`'s mode or owner
/// differs from what a new file gets (another umask, another user), the blob
/// is copied in one hashing pass and synced.
pub(crate) fn place_verified(
    src: &Path,
    dest: &Path,
    digest: Digest,
    size: u64,
) -> Result<(), OciError> {
    place_verified_with(src, dest, digest, size, |from, to| fs::hard_link(from, to))
}

/// [`place_verified`] with the link operation given (tests make it fail like
/// a link across filesystems).
fn place_verified_with(
    src: &Path,
    dest: &Path,
    digest: Digest,
    size: u64,
    link: impl FnOnce(&Path, &Path) -> io::Result<()>,
) -> Result<(), OciError> {
    use std::os::unix::fs::MetadataExt;
    // Already linked here (a multi-platform image's platforms share a layer, such
    // as the base): renaming another link of the same file onto it would do
    // nothing (rename(2)) and leave the temporary link behind in the layout.
    let same_file = |a: &fs::Metadata, b: &fs::Metadata| (a.dev(), a.ino()) == (b.dev(), b.ino());
    if let (Ok(s), Ok(d)) = (fs::metadata(src), fs::symlink_metadata(dest)) {
        if same_file(&s, &d) {
            return Ok(());
        }
    }
    let dir = dest.parent().unwrap_or(Path::new("."));
    let tmp = crate::fs::output_temp_file(dir, ".layer-")
        .map_err(OciError::io("create a temporary file in", dir))?;
    // A link shares the source's mode and owner: only when they are what a new
    // file of this build gets (the umask's mode, this user) is a link the same
    // output as a copy.
    let fresh = tmp.as_file().metadata().ok();
    let alike = fs::metadata(src).ok().zip(fresh).is_some_and(|(s, f)| {
        (s.mode() & 0o7777, s.uid(), s.gid()) == (f.mode() & 0o7777, f.uid(), f.gid())
    });
    let tmp = tmp.into_temp_path();
    // Replaces the empty temporary file by the link; dropping `tmp` removes
    // whichever file has its name on any error below.
    fs::remove_file(&tmp).map_err(OciError::io("write layer", &tmp))?;
    let linked = if alike {
        link(src, &tmp)
    } else {
        Err(io::Error::other(
            "its mode or owner differs from a new file's",
        ))
    };
    let (actual, actual_size) = match linked {
        Ok(()) => {
            let file = File::open(&tmp).map_err(OciError::io("read", &tmp))?;
            digest_reader(file).map_err(OciError::io("read", &tmp))?
        }
        Err(error) => {
            tracing::debug!(from = %src.display(), %error, "cannot hard-link the blob; copying it");
            let mut input = File::open(src).map_err(OciError::io("open", src))?;
            let out = File::create_new(&tmp).map_err(OciError::io("write layer", &tmp))?;
            let copied = copy_hashed(&mut input, &out).map_err(OciError::io("copy layer", src))?;
            out.sync_all().map_err(OciError::io("write layer", &tmp))?;
            copied
        }
    };
    if actual != digest || actual_size != size {
        return Err(OciError::DigestMismatch {
            path: src.to_owned(),
            expected: format!("{digest} ({size} bytes)"),
            actual: format!("{actual} ({actual_size} bytes)"),
        });
    }
    tmp.persist(dest)
        .map_err(|e| OciError::io("move layer into place at", dest)(e.error))
}

/// Writes a staged file; [`Staging::sync`] makes it durable.
fn write_unsynced(path: &Path, bytes: &[u8]) -> Result<(), OciError> {
    fs::write(path, bytes).map_err(OciError::io("write", path))
}

// ---------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------

/// An image read from a layout directory by [`read_image`].
#[derive(Debug, Clone)]
pub struct ImageInfo {
    /// The layout directory.
    pub layout: PathBuf,
    /// The manifest's `org.opencontainers.image.ref.name` in `index.json`, if any.
    pub ref_name: Option<String>,
    /// The image index the tag names, when the image is one platform of a
    /// multi-platform image.
    pub index: Option<super::IndexInfo>,
    pub manifest_digest: Digest,
    pub manifest_size: u64,
    pub manifest: ImageManifest,
    pub config_digest: Digest,
    pub config_size: u64,
    pub config: ImageConfiguration,
    /// Bottom first.
    pub layers: Vec<LayerInfo>,
}

/// One layer of an [`ImageInfo`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerInfo {
    /// Digest of the blob as stored.
    pub digest: Digest,
    /// Digest of the uncompressed tar (from the config's `rootfs.diff_ids`).
    pub diff_id: Digest,
    /// Size of the blob as stored.
    pub size: u64,
    pub media_type: String,
    /// The matching history entry's `created_by`.
    pub created_by: Option<String>,
    /// The matching history entry's `comment`.
    pub comment: Option<String>,
    /// `<layout>/blobs/sha256/<hex>`.
    pub blob_path: PathBuf,
}

impl ImageInfo {
    /// Sum of the sizes of the layers, config and manifest.
    pub fn total_size(&self) -> u64 {
        self.layers.iter().map(|l| l.size).sum::<u64>() + self.config_size + self.manifest_size
    }

    /// The contents of the regular file at `path` (e.g. `/etc/mgw/bundle.json`) as the
    /// container would see it: the topmost layer that has it wins, and whiteouts
    /// (`.wh.<name>`, `.wh..wh..opq`) in upper layers hide it. `None` if absent.
    /// The whole file is read into memory.
    pub fn read_file(&self, path: &str) -> Result<Option<Vec<u8>>, OciError> {
        self.read(path, false)
    }

    /// [`ImageInfo::read_file`], with every layer blob it reads checked against
    /// its digest first: for files that are about to be executed or trusted
    /// (`mgw run`, `mgw inspect`), so a tampered layer is an error, never a file.
    pub fn read_verified_file(&self, path: &str) -> Result<Option<Vec<u8>>, OciError> {
        self.read(path, true)
    }

    fn read(&self, path: &str, verify: bool) -> Result<Option<Vec<u8>>, OciError> {
        let path = normalize_entry_path(path);
        for layer in self.layers.iter().rev() {
            if verify {
                verify_blob(&layer.blob_path, layer.digest)?;
            }
            match scan_layer(&layer.blob_path, &layer.media_type, &path)? {
                Lookup::Found(bytes) => return Ok(Some(bytes)),
                Lookup::Hidden => return Ok(None),
                Lookup::Absent => {}
            }
        }
        Ok(None)
    }
}

impl LayerInfo {
    /// The regular file at `path` in this layer alone; see [`extract_file`].
    pub fn extract_file(&self, path: &str) -> Result<Option<Vec<u8>>, OciError> {
        extract_file(&self.blob_path, &self.media_type, path)
    }
}

/// Reads the image tagged `tag` (its `org.opencontainers.image.ref.name`) from the OCI
/// image layout at `layout`; with `None`, the layout must hold exactly one image.
/// When the tag names an image index, the host's platform is read; see
/// [`read_image_for`]. The manifest and config are verified against their digests;
/// layer blobs are not read (they are verified when copied or extracted).
pub fn read_image(layout: &Path, tag: Option<&str>) -> Result<ImageInfo, OciError> {
    read_image_for(
        layout,
        tag,
        crate::platform::Platform::host().architecture(),
    )
}

/// [`read_image`], taking the `architecture` (`amd64`, `arm64`) image when the tag
/// names an image index (a single image is read whatever its architecture).
pub fn read_image_for(
    layout: &Path,
    tag: Option<&str>,
    architecture: &str,
) -> Result<ImageInfo, OciError> {
    let invalid = |message: String| OciError::InvalidLayout {
        path: layout.to_owned(),
        message,
    };

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct OciLayoutFile {
        image_layout_version: String,
    }
    let marker_path = layout.join("oci-layout");
    let marker = fs::read(&marker_path).map_err(OciError::io("read", &marker_path))?;
    let marker: OciLayoutFile =
        serde_json::from_slice(&marker).map_err(|e| json_read(&marker_path, e))?;
    if !marker.image_layout_version.starts_with("1.") {
        return Err(invalid(format!(
            "unsupported `imageLayoutVersion` `{}`, expected 1.x",
            marker.image_layout_version
        )));
    }

    let index_path = layout.join("index.json");
    let index_bytes = fs::read(&index_path).map_err(OciError::io("read", &index_path))?;
    let index: ImageIndex =
        serde_json::from_slice(&index_bytes).map_err(|e| json_read(&index_path, e))?;

    let ref_name = |d: &Descriptor| {
        d.annotations()
            .as_ref()
            .and_then(|a| a.get(ANNOTATION_REF_NAME).cloned())
    };
    let descriptor = match tag {
        Some(tag) => index
            .manifests()
            .iter()
            .find(|d| ref_name(d).as_deref() == Some(tag))
            .ok_or_else(|| {
                let mut tags: Vec<String> = index.manifests().iter().filter_map(ref_name).collect();
                tags.sort();
                OciError::TagNotFound {
                    path: layout.to_owned(),
                    tag: tag.to_owned(),
                    available: if tags.is_empty() {
                        "none".to_owned()
                    } else {
                        tags.iter()
                            .map(|t| format!("`{t}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    },
                }
            })?,
        None => match index.manifests().as_slice() {
            [only] => only,
            [] => return Err(invalid("`index.json` lists no images".to_owned())),
            many => {
                return Err(invalid(format!(
                    "`index.json` lists {} images; name one by tag",
                    many.len()
                )));
            }
        },
    };
    let ref_name = ref_name(descriptor);
    let mut index_info = None;
    let nested;
    let descriptor = if descriptor.media_type().to_string() == super::MEDIA_TYPE_INDEX {
        let (digest, bytes) = read_blob(layout, descriptor)?;
        let index: ImageIndex = serde_json::from_slice(&bytes)
            .map_err(|e| json_read(&blob_path(layout, &digest), e))?;
        let platforms = super::index::platforms(&index)
            .into_iter()
            .map(|(arch, os, d)| Ok((arch, os, parse_digest(layout, &d)?)))
            .collect::<Result<Vec<_>, OciError>>()?;
        index_info = Some(super::IndexInfo {
            digest,
            size: bytes.len() as u64,
            platforms,
        });
        nested = super::index::select(&index, architecture, "the image index")
            .map_err(invalid)?
            .clone();
        &nested
    } else {
        descriptor
    };
    let media_type = descriptor.media_type().to_string();
    if media_type != super::MEDIA_TYPE_MANIFEST && media_type != DOCKER_MANIFEST_V2 {
        return Err(invalid(format!(
            "the selected entry of `index.json` is a `{media_type}`, not an image manifest or index"
        )));
    }

    let (manifest_digest, manifest_bytes) = read_blob(layout, descriptor)?;
    let manifest: ImageManifest = serde_json::from_slice(&manifest_bytes)
        .map_err(|e| json_read(&blob_path(layout, &manifest_digest), e))?;
    let (config_digest, config_bytes) = read_blob(layout, manifest.config())?;
    let config: ImageConfiguration = serde_json::from_slice(&config_bytes)
        .map_err(|e| json_read(&blob_path(layout, &config_digest), e))?;

    let diff_ids = config.rootfs().diff_ids();
    if diff_ids.len() != manifest.layers().len() {
        return Err(invalid(format!(
            "the manifest lists {} layers but the config has {} `diff_ids`",
            manifest.layers().len(),
            diff_ids.len()
        )));
    }
    let history: Vec<_> = config
        .history()
        .iter()
        .flatten()
        .filter(|h| h.empty_layer() != Some(true))
        .collect();
    let history_matches = history.len() == diff_ids.len();

    let layers = manifest
        .layers()
        .iter()
        .zip(diff_ids)
        .enumerate()
        .map(|(i, (descriptor, diff_id))| {
            let digest = parse_digest(layout, descriptor.digest().as_ref())?;
            let diff_id = parse_digest(layout, diff_id)?;
            let entry = history_matches.then(|| history[i]);
            Ok(LayerInfo {
                blob_path: blob_path(layout, &digest),
                digest,
                diff_id,
                size: descriptor.size(),
                media_type: descriptor.media_type().to_string(),
                created_by: entry.and_then(|h| h.created_by().clone()),
                comment: entry.and_then(|h| h.comment().clone()),
            })
        })
        .collect::<Result<Vec<_>, OciError>>()?;

    Ok(ImageInfo {
        layout: layout.to_owned(),
        ref_name,
        index: index_info,
        manifest_digest,
        manifest_size: manifest_bytes.len() as u64,
        manifest,
        config_digest,
        config_size: config_bytes.len() as u64,
        config,
        layers,
    })
}

fn json_read(path: &Path, source: serde_json::Error) -> OciError {
    OciError::Json {
        action: "parse",
        what: format!("`{}`", path.display()),
        source,
    }
}

fn parse_digest(layout: &Path, digest: &str) -> Result<Digest, OciError> {
    digest.parse().map_err(
        |e: super::digest::ParseDigestError| OciError::InvalidLayout {
            path: layout.to_owned(),
            message: e.to_string(),
        },
    )
}

fn blob_path(layout: &Path, digest: &Digest) -> PathBuf {
    layout.join("blobs").join("sha256").join(digest.hex())
}

/// Reads a small blob (manifest, config) and checks its size and digest.
fn read_blob(layout: &Path, descriptor: &Descriptor) -> Result<(Digest, Vec<u8>), OciError> {
    const MAX_METADATA_BLOB: u64 = 4 * 1024 * 1024;
    let expected = parse_digest(layout, descriptor.digest().as_ref())?;
    let path = blob_path(layout, &expected);
    if descriptor.size() > MAX_METADATA_BLOB {
        return Err(OciError::InvalidLayout {
            path: layout.to_owned(),
            message: format!(
                "`{expected}` claims {} bytes, too large for a manifest or config",
                descriptor.size()
            ),
        });
    }
    let bytes = fs::read(&path).map_err(OciError::io("read", &path))?;
    let actual = Digest::of(&bytes);
    if actual != expected || bytes.len() as u64 != descriptor.size() {
        return Err(OciError::DigestMismatch {
            path,
            expected: format!("{expected} ({} bytes)", descriptor.size()),
            actual: format!("{actual} ({} bytes)", bytes.len()),
        });
    }
    Ok((expected, bytes))
}

/// Verifies that a blob file hashes to `digest` (for callers that copy or trust
/// layers).
pub fn verify_blob(path: &Path, digest: Digest) -> Result<(), OciError> {
    let file = File::open(path).map_err(OciError::io("open", path))?;
    let (actual, _) = digest_reader(file).map_err(OciError::io("read", path))?;
    if actual == digest {
        Ok(())
    } else {
        Err(OciError::DigestMismatch {
            path: path.to_owned(),
            expected: digest.to_string(),
            actual: actual.to_string(),
        })
    }
}

/// The regular file at `path` (e.g. `/usr/local/bin/mgw-gateway`) in the layer blob at
/// `blob` of media type `media_type` (gzip or uncompressed tar), read into memory;
/// `None` if the layer has no such entry. Whiteouts are not interpreted: this is one
/// layer, not the image (see [`ImageInfo::read_file`]).
pub fn extract_file(
    blob: &Path,
    media_type: &str,
    path: &str,
) -> Result<Option<Vec<u8>>, OciError> {
    match scan_layer(blob, media_type, &normalize_entry_path(path))? {
        Lookup::Found(bytes) => Ok(Some(bytes)),
        Lookup::Hidden | Lookup::Absent => Ok(None),
    }
}

enum Lookup {
    Found(Vec<u8>),
    /// Not in this layer, and a whiteout here hides it in the layers below.
    Hidden,
    Absent,
}

/// `./etc/passwd`, `/etc/passwd`, `etc/passwd/` → `etc/passwd`.
fn normalize_entry_path(path: &str) -> String {
    let mut p = path;
    loop {
        let stripped = p.trim_start_matches('/');
        let stripped = stripped.strip_prefix("./").unwrap_or(stripped);
        if stripped == p {
            break;
        }
        p = stripped;
    }
    p.trim_end_matches('/').to_owned()
}

fn scan_layer(blob: &Path, media_type: &str, wanted: &str) -> Result<Lookup, OciError> {
    let file = File::open(blob).map_err(OciError::io("open", blob))?;
    let reader: Box<dyn Read> = match media_type {
        MEDIA_TYPE_LAYER_GZIP | MEDIA_TYPE_DOCKER_LAYER_GZIP => {
            Box::new(GzDecoder::new(BufReader::new(file)))
        }
        MEDIA_TYPE_LAYER_TAR => Box::new(BufReader::new(file)),
        other => {
            return Err(OciError::UnsupportedMediaType {
                media_type: other.to_owned(),
            });
        }
    };

    // Whiteouts that would hide `wanted`: `<dir>/.wh.<name>` for it or any ancestor,
    // or an opaque marker `<ancestor>/.wh..wh..opq`.
    let components: Vec<&str> = wanted.split('/').collect();
    let mut hiders = Vec::new();
    for depth in 0..components.len() {
        let dir = components[..depth].join("/");
        let join = |name: &str| {
            if dir.is_empty() {
                name.to_owned()
            } else {
                format!("{dir}/{name}")
            }
        };
        hiders.push(join(&format!(".wh.{}", components[depth])));
        if depth > 0 {
            hiders.push(join(".wh..wh..opq"));
        }
    }

    let mut archive = tar::Archive::new(reader);
    let mut found: Option<Result<Vec<u8>, OciError>> = None;
    let mut hidden = false;
    for entry in archive
        .entries()
        .map_err(OciError::io("read layer", blob))?
    {
        let mut entry = entry.map_err(OciError::io("read layer", blob))?;
        let raw = entry.path_bytes();
        let name = normalize_entry_path(&String::from_utf8_lossy(&raw));
        if name == wanted {
            // Later entries for the same path win, as when a runtime unpacks the layer.
            found = Some(if entry.header().entry_type().is_file() {
                let mut bytes = Vec::with_capacity(entry.size().min(64 * 1024 * 1024) as usize);
                entry
                    .read_to_end(&mut bytes)
                    .map_err(OciError::io("read layer", blob))?;
                Ok(bytes)
            } else {
                Err(OciError::NotAFileInLayer {
                    path: wanted.to_owned(),
                    layer: blob.display().to_string(),
                })
            });
        } else if hiders.contains(&name) {
            hidden = true;
        }
    }
    match found {
        Some(Ok(bytes)) => Ok(Lookup::Found(bytes)),
        Some(Err(e)) => Err(e),
        None if hidden => Ok(Lookup::Hidden),
        None => Ok(Lookup::Absent),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::LayerBuilder;

    fn inode(path: &Path) -> (u64, u64) {
        use std::os::unix::fs::MetadataExt;
        let meta = fs::metadata(path).unwrap();
        (meta.dev(), meta.ino())
    }

    /// The names in `dir`, sorted.
    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    /// A blob on the same filesystem is hard-linked (no copy, no `fsync`), and
    /// a blob that does not match is refused before it takes its name.
    #[test]
    fn a_blob_on_the_same_filesystem_is_linked_after_it_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let (src, dest) = (dir.path().join("src"), dir.path().join("dest"));
        fs::write(&src, b"layer bytes").unwrap();
        let digest = Digest::of(b"layer bytes");
        place_verified(&src, &dest, digest, 11).unwrap();
        assert_eq!(inode(&dest), inode(&src), "linked, not copied");

        let other = dir.path().join("other");
        let err = place_verified(&src, &other, Digest::of(b"other bytes"), 11).unwrap_err();
        assert!(matches!(err, OciError::DigestMismatch { .. }), "{err}");
        let err = place_verified(&src, &other, digest, 12).unwrap_err();
        assert!(matches!(err, OciError::DigestMismatch { .. }), "{err}");
        assert_eq!(
            names(dir.path()),
            ["dest", "src"],
            "no blob and no temporary left behind"
        );

        // The same blob placed again (two platforms sharing the base layer):
        // still one link, and no temporary link left in the layout.
        place_verified(&src, &dest, digest, 11).unwrap();
        assert_eq!(names(dir.path()), ["dest", "src"], "placed twice");
        assert_eq!(inode(&dest), inode(&src));
    }

    /// Where linking fails (another filesystem: `EXDEV`), the blob is copied,
    /// and checked all the same.
    #[test]
    fn a_blob_that_cannot_be_linked_is_copied_and_verified() {
        let dir = tempfile::tempdir().unwrap();
        let (src, dest) = (dir.path().join("src"), dir.path().join("dest"));
        let bytes: Vec<u8> = (0..700_000u32).map(|i| (i % 253) as u8).collect();
        fs::write(&src, &bytes).unwrap();
        let exdev = |_: &Path, _: &Path| Err(io::Error::from_raw_os_error(18));
        let digest = Digest::of(&bytes);
        place_verified_with(&src, &dest, digest, bytes.len() as u64, exdev).unwrap();
        assert_ne!(inode(&dest), inode(&src), "copied");
        assert_eq!(fs::read(&dest).unwrap(), bytes);
        let other = dir.path().join("other");
        let wrong = Digest::of(b"other");
        let err = place_verified_with(&src, &other, wrong, bytes.len() as u64, exdev).unwrap_err();
        assert!(matches!(err, OciError::DigestMismatch { .. }), "{err}");
        assert!(!other.exists());
    }

    /// A link would carry the source's mode into the output: a blob whose mode
    /// is not what a new file gets under this umask (never executable) is copied.
    #[test]
    fn a_blob_with_another_mode_is_copied() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let (src, dest) = (dir.path().join("src"), dir.path().join("dest"));
        fs::write(&src, b"layer bytes").unwrap();
        fs::set_permissions(&src, fs::Permissions::from_mode(0o700)).unwrap();
        place_verified(&src, &dest, Digest::of(b"layer bytes"), 11).unwrap();
        assert_ne!(inode(&dest), inode(&src), "copied");
        assert_eq!(fs::metadata(&dest).unwrap().permissions().mode() & 0o111, 0);
    }

    /// The real thing across filesystems: from the disk into a tmpfs.
    #[test]
    fn a_blob_on_another_filesystem_is_copied() {
        let src_dir = tempfile::tempdir().unwrap();
        let dest_dir = tempfile::tempdir_in("/dev/shm").unwrap();
        assert_ne!(
            inode(src_dir.path()).0,
            inode(dest_dir.path()).0,
            "/dev/shm is another filesystem"
        );
        let (src, dest) = (src_dir.path().join("src"), dest_dir.path().join("dest"));
        fs::write(&src, b"layer bytes").unwrap();
        place_verified(&src, &dest, Digest::of(b"layer bytes"), 11).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"layer bytes");
    }

    #[test]
    fn containerd_names_are_normalized_like_docker() {
        assert_eq!(containerd_name("gw", "1"), "docker.io/library/gw:1");
        assert_eq!(containerd_name("team/gw", "1"), "docker.io/team/gw:1");
        assert_eq!(containerd_name("ghcr.io/team/gw", "1"), "ghcr.io/team/gw:1");
        assert_eq!(
            containerd_name("localhost:5000/gw", "1"),
            "localhost:5000/gw:1"
        );
        assert_eq!(containerd_name("localhost/gw", "1"), "localhost/gw:1");
    }

    #[test]
    fn entry_paths_are_normalized() {
        for p in [
            "etc/passwd",
            "/etc/passwd",
            "./etc/passwd",
            "etc/passwd/",
            ".//etc/passwd",
        ] {
            assert_eq!(normalize_entry_path(p), "etc/passwd", "{p}");
        }
    }

    fn layer_with(entries: &[(&str, &[u8])], dir: &Path) -> LayerInfo {
        let mut builder = LayerBuilder::new();
        for (path, bytes) in entries {
            builder
                .add_file_bytes(path, bytes.to_vec(), 0o644, 0, 0)
                .unwrap();
        }
        let layer = builder.write(dir, 0).unwrap();
        LayerInfo {
            digest: layer.digest,
            diff_id: layer.diff_id,
            size: layer.size,
            media_type: layer.media_type,
            created_by: None,
            comment: None,
            blob_path: layer.path,
        }
    }

    #[test]
    fn extract_file_reads_one_file_from_a_layer() {
        let dir = tempfile::tempdir().unwrap();
        let layer = layer_with(
            &[("/etc/mgw/bundle.json", b"{\"a\":1}"), ("/etc/x", b"x")],
            dir.path(),
        );
        assert_eq!(
            layer
                .extract_file("/etc/mgw/bundle.json")
                .unwrap()
                .as_deref(),
            Some(&b"{\"a\":1}"[..])
        );
        assert_eq!(layer.extract_file("/etc/missing").unwrap(), None);
        let err = layer.extract_file("/etc/mgw").unwrap_err();
        assert!(matches!(err, OciError::NotAFileInLayer { .. }), "{err}");
        let err = extract_file(
            &layer.blob_path,
            "application/vnd.oci.image.layer.v1.tar+zstd",
            "/etc/x",
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("unsupported layer media type"),
            "{err}"
        );
        verify_blob(&layer.blob_path, layer.digest).unwrap();
        assert!(verify_blob(&layer.blob_path, layer.diff_id).is_err());
    }

    #[test]
    fn read_file_takes_the_top_layer_and_honours_whiteouts() {
        let dir = tempfile::tempdir().unwrap();
        let bottom = layer_with(
            &[
                ("/a/f", b"bottom"),
                ("/b/f", b"bottom"),
                ("/c/d/f", b"bottom"),
            ],
            dir.path(),
        );
        let top = layer_with(
            &[
                ("/a/f", b"top"),
                ("/b/.wh.f", b""),
                ("/c/.wh..wh..opq", b""),
                ("/c/new", b"n"),
            ],
            dir.path(),
        );
        let info = ImageInfo {
            layout: dir.path().to_owned(),
            ref_name: None,
            index: None,
            manifest_digest: Digest::of(b""),
            manifest_size: 0,
            manifest: oci_spec::image::ImageManifestBuilder::default()
                .schema_version(2u32)
                .config(Descriptor::new(
                    MediaType::ImageConfig,
                    0,
                    Digest::of(b"").to_oci(),
                ))
                .layers(vec![])
                .build()
                .unwrap(),
            config_digest: Digest::of(b""),
            config_size: 0,
            config: ImageConfiguration::default(),
            layers: vec![bottom, top],
        };
        assert_eq!(
            info.read_file("/a/f").unwrap().as_deref(),
            Some(&b"top"[..])
        );
        assert_eq!(info.read_file("/b/f").unwrap(), None);
        assert_eq!(info.read_file("/c/d/f").unwrap(), None);
        assert_eq!(
            info.read_file("/c/new").unwrap().as_deref(),
            Some(&b"n"[..])
        );
    }

    #[test]
    fn read_image_names_the_tags_that_exist() {
        let dir = tempfile::tempdir().unwrap();
        let mut spec = crate::oci::ImageSpec::new("gw", "v1");
        let mut layer = LayerBuilder::new();
        layer
            .add_file_bytes("/f", b"f".to_vec(), 0o644, 0, 0)
            .unwrap();
        spec.layers.push(crate::oci::LayerInput::new(layer, "f"));
        let out = crate::oci::write_image(
            &spec,
            &crate::oci::OutputPaths {
                layout: dir.path().join("img"),
                tarball: None,
            },
        )
        .unwrap();
        let err = read_image(&out.layout, Some("v2")).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "no image tagged `v2` in `{}`; tags present: `v1`",
                out.layout.display()
            )
        );
        let info = read_image(&out.layout, Some("v1")).unwrap();
        assert_eq!(info.ref_name.as_deref(), Some("v1"));
        assert_eq!(info.layers[0].created_by.as_deref(), Some("f"));
        assert_eq!(info.read_file("/f").unwrap().as_deref(), Some(&b"f"[..]));
        assert_eq!(
            info.read_verified_file("/f").unwrap().as_deref(),
            Some(&b"f"[..])
        );
        assert_eq!(info.total_size(), out.total_size);

        // A tampered layer blob (issue 10: `mgw run` executes what it extracts)
        // is refused by the verified read.
        let blob = &info.layers[0].blob_path;
        let mut bytes = fs::read(blob).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs::write(blob, &bytes).unwrap();
        let err = info.read_verified_file("/f").unwrap_err();
        assert!(matches!(err, OciError::DigestMismatch { .. }), "{err}");

        // A tampered manifest is detected.
        fs::write(blob_path(&out.layout, &out.manifest_digest), b"{}").unwrap();
        let err = read_image(&out.layout, None).unwrap_err();
        assert!(matches!(err, OciError::DigestMismatch { .. }), "{err}");
    }
}
