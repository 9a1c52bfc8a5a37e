//! A content-addressed cache of compressed layers, for the layer that rarely
//! changes and costs the most to compress: the gateway binary.
//!
//! A rebuild after a spec change has the same gateway binary, so compressing it
//! again (most of a build's time) gives the same bytes. The cache keys a
//! compressed blob by the layer's recipe ([`LayerBuilder::recipe`]: every path,
//! owner, mode, the epoch, and each file's sha256 and size), [`TAR_ID`] and
//! [`GZIP_ID`] (the tar and compression rules): equal keys mean the layer writer
//! would produce the same tar and the same blob, so a hit keeps builds
//! reproducible. A file's sha256 comes from the stat index ([`stat_index`],
//! under `files/`), so a rebuild reads neither the binary nor the tar.
//!
//! Layout under the cache directory: `<key hex>` is a small JSON record (blob
//! digest, `diff_id`, size), `blobs/<digest hex>` the blob and `files/` the
//! stat index. Blob and record are each written to a temporary file and renamed,
//! blob first (and synced), so concurrent builds never see half an entry; a blob
//! is never modified in place. A hit is verified on use: the blob is hard-linked
//! (copied across filesystems) into the image's staging directory, and the
//! linked bytes must match the record's digest and size before they take their
//! name there; otherwise the entry is dropped and the layer written afresh. The
//! cache is an optimisation only: a cache that cannot be read or written costs
//! time, never a build.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::layer::{GZIP_ID, TAR_ID};
use super::layout::{LayerInfo, Staging, place_verified};
use super::stat_index;
use super::{Digest, Layer, LayerBuilder, MEDIA_TYPE_LAYER_GZIP, OciError};

/// Bumped when the record format or the key changes.
const FORMAT: &str = "mgw-layer-cache/2";

/// One cached layer.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Record {
    digest: String,
    diff_id: String,
    size: u64,
}

/// Writes `entries` as a layer into `staging`, taking the compressed blob from
/// `cache_dir` when an entry for the same recipe is there (and verifies), else
/// compressing and storing the result for the next build.
pub(crate) fn write(
    entries: &LayerBuilder,
    staging: &Staging,
    epoch: u64,
    cache_dir: &Path,
) -> Result<Layer, OciError> {
    let recipe = entries.recipe(epoch, |path| {
        file_digest(path, cache_dir).map_err(OciError::io("read", path))
    })?;
    let record_path = cache_dir.join(key(recipe).hex());
    if let Some(layer) = hit(&record_path, staging, cache_dir) {
        tracing::debug!(digest = %layer.digest, "layer taken from the cache");
        return Ok(layer);
    }
    let layer = entries.write(staging.blobs(), epoch)?;
    // A file that changed while the layer was written is not what the recipe
    // names: hashed afresh (first builds only), it must still match.
    let unchanged = entries.recipe(epoch, |path| {
        stat_index::digest(path, None).map_err(OciError::io("read", path))
    })?;
    if unchanged == recipe {
        if let Err(e) = store(&layer, &record_path, cache_dir) {
            tracing::warn!(cache = %cache_dir.display(), error = %e, "cannot store the layer in the cache");
        }
    }
    Ok(layer)
}

/// The sha256 and size of the file at `path`, through the stat index of the
/// layer cache at `cache_dir` (for the SBOM's gateway digest: the same binary
/// the gateway layer was made of, not read again).
pub fn file_digest(path: &Path, cache_dir: &Path) -> io::Result<(Digest, u64)> {
    stat_index::digest(path, Some(&cache_dir.join("files")))
}

/// The cache key of a layer: its recipe and how it is tarred and compressed.
fn key(recipe: Digest) -> Digest {
    Digest::of(format!("{FORMAT}\n{recipe}\n{TAR_ID}\n{GZIP_ID}\n").as_bytes())
}

/// The cached layer for `record_path`, placed into `staging` and verified; `None`
/// (after dropping a bad entry) when there is none or it does not verify.
fn hit(record_path: &Path, staging: &Staging, cache_dir: &Path) -> Option<Layer> {
    let bytes = fs::read(record_path).ok()?;
    let info = serde_json::from_slice::<Record>(&bytes).ok().and_then(|r| {
        let digest: Digest = r.digest.parse().ok()?;
        Some(LayerInfo {
            digest,
            diff_id: r.diff_id.parse().ok()?,
            size: r.size,
            media_type: MEDIA_TYPE_LAYER_GZIP.to_owned(),
            created_by: None,
            comment: None,
            blob_path: blob_path(cache_dir, digest),
        })
    });
    let result = match &info {
        Some(info) => staging.copy_layer(info).map_err(|e| e.to_string()),
        None => Err("unreadable record".to_owned()),
    };
    match result {
        Ok(layer) => Some(layer),
        Err(why) => {
            tracing::warn!(entry = %record_path.display(), error = %why, "dropping a bad layer cache entry");
            let _ = fs::remove_file(record_path);
            if let Some(info) = info {
                let _ = fs::remove_file(info.blob_path);
            }
            None
        }
    }
}

fn blob_path(cache_dir: &Path, digest: Digest) -> PathBuf {
    cache_dir.join("blobs").join(digest.hex())
}

/// Stores `layer`'s blob (hard-linked from the staged layer, which is synced,
/// or copied), then its record (a temporary file renamed into place), so a
/// record never names a missing or partial blob.
fn store(layer: &Layer, record_path: &Path, cache_dir: &Path) -> Result<(), OciError> {
    let blobs = cache_dir.join("blobs");
    fs::create_dir_all(&blobs).map_err(OciError::io("create directory", &blobs))?;
    let blob = blob_path(cache_dir, layer.digest);
    if !blob.exists() {
        place_verified(&layer.path, &blob, layer.digest, layer.size)?;
    }
    let record = Record {
        digest: layer.digest.to_string(),
        diff_id: layer.diff_id.to_string(),
        size: layer.size,
    };
    let write = || -> io::Result<()> {
        let tmp = crate::fs::output_temp_file(cache_dir, ".record-")?;
        serde_json::to_writer(tmp.as_file(), &record)?;
        tmp.persist(record_path).map_err(|e| e.error)?;
        Ok(())
    };
    write().map_err(OciError::io("write", record_path))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixture {
        dir: tempfile::TempDir,
        entries: LayerBuilder,
    }

    impl Fixture {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let bin = dir.path().join("gateway");
            let bytes: Vec<u8> = (0..200_000u32)
                .flat_map(|i| (i % 251).to_le_bytes())
                .collect();
            fs::write(&bin, bytes).unwrap();
            let mut entries = LayerBuilder::new();
            entries
                .add_file_from_disk("/usr/local/bin/mgw-gateway", &bin, 0o755, 0, 0)
                .unwrap();
            Self { dir, entries }
        }

        fn cache(&self) -> PathBuf {
            self.dir.path().join("cache")
        }

        /// Writes the layer through the cache into a fresh staging directory.
        fn write(&self) -> Layer {
            let staging = Staging::new(&self.dir.path().join("out").join("oci")).unwrap();
            let layer = write(&self.entries, &staging, 0, &self.cache()).unwrap();
            assert_eq!(
                Digest::of(&fs::read(&layer.path).unwrap()),
                layer.digest,
                "the staged blob is the layer"
            );
            layer
        }

        fn uncached(&self) -> Layer {
            let dir = self.dir.path().join(format!("plain-{}", fastrand::u32(..)));
            fs::create_dir_all(&dir).unwrap();
            self.entries.write(&dir, 0).unwrap()
        }

        fn record_path(&self) -> PathBuf {
            let recipe = self
                .entries
                .recipe(0, |p| Ok(stat_index::digest(p, None).unwrap()))
                .unwrap();
            self.cache().join(key(recipe).hex())
        }
    }

    #[test]
    fn a_miss_writes_the_same_layer_as_no_cache_and_stores_it() {
        let f = Fixture::new();
        let plain = f.uncached();
        let layer = f.write();
        assert_eq!(
            (layer.digest, layer.diff_id, layer.size),
            (plain.digest, plain.diff_id, plain.size)
        );
        assert!(f.record_path().is_file());
        assert_eq!(
            fs::read(blob_path(&f.cache(), layer.digest)).unwrap(),
            fs::read(&plain.path).unwrap()
        );
        // A hit gives the same layer again.
        let again = f.write();
        assert_eq!((again.digest, again.size), (plain.digest, plain.size));
    }

    /// The hit path is taken: a record naming another (valid) blob for the same
    /// tar is what the layer becomes, after the blob verifies.
    #[test]
    fn a_hit_takes_the_cached_blob_without_compressing() {
        let f = Fixture::new();
        let plain = f.uncached();
        let other = b"not what this builder would write, but what the record names".to_vec();
        let digest = Digest::of(&other);
        fs::create_dir_all(f.cache().join("blobs")).unwrap();
        fs::write(blob_path(&f.cache(), digest), &other).unwrap();
        let record = Record {
            digest: digest.to_string(),
            diff_id: plain.diff_id.to_string(),
            size: other.len() as u64,
        };
        fs::write(f.record_path(), serde_json::to_vec(&record).unwrap()).unwrap();
        let layer = f.write();
        assert_eq!((layer.digest, layer.size), (digest, other.len() as u64));
        assert_eq!(layer.diff_id, plain.diff_id);
    }

    /// A hit shares the cached blob's inode with the image (a hard link: no
    /// copy), and a miss stores the staged blob the same way.
    #[test]
    fn the_cached_blob_is_linked_into_the_image_both_ways() {
        use std::os::unix::fs::MetadataExt;
        let inode = |p: &Path| fs::metadata(p).unwrap().ino();
        let f = Fixture::new();
        let staging = Staging::new(&f.dir.path().join("first").join("oci")).unwrap();
        let first = write(&f.entries, &staging, 0, &f.cache()).unwrap();
        let cached = blob_path(&f.cache(), first.digest);
        assert_eq!(inode(&first.path), inode(&cached));
        drop(staging);
        let staging = Staging::new(&f.dir.path().join("second").join("oci")).unwrap();
        let second = write(&f.entries, &staging, 0, &f.cache()).unwrap();
        assert_eq!(inode(&second.path), inode(&cached));
        assert_eq!(
            (second.digest, second.diff_id),
            (first.digest, first.diff_id)
        );
    }

    /// The gateway binary rewritten in place, same size, mtime put back: the
    /// recipe names the contents, so the cached layer of the old binary is not
    /// taken.
    #[test]
    fn a_rewritten_binary_is_not_taken_from_the_cache() {
        let f = Fixture::new();
        let first = f.write();
        let bin = f.dir.path().join("gateway");
        let mtime = fs::metadata(&bin).unwrap().modified().unwrap();
        let mut bytes = fs::read(&bin).unwrap();
        bytes[1000] ^= 0xff;
        fs::write(&bin, &bytes).unwrap();
        fs::File::options()
            .write(true)
            .open(&bin)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        let second = f.write();
        assert_ne!(second.diff_id, first.diff_id);
        assert_eq!(
            (second.digest, second.diff_id),
            (f.uncached().digest, f.uncached().diff_id)
        );
    }

    #[test]
    fn a_corrupt_entry_is_dropped_and_the_layer_written_afresh() {
        let f = Fixture::new();
        let first = f.write();
        let blob = blob_path(&f.cache(), first.digest);
        let mut bytes = fs::read(&blob).unwrap();
        bytes[100] ^= 0xff;
        fs::write(&blob, &bytes).unwrap();
        let second = f.write();
        assert_eq!((second.digest, second.size), (first.digest, first.size));
        // The entry was replaced by a good one.
        assert_eq!(Digest::of(&fs::read(&blob).unwrap()), first.digest);
        fs::write(f.record_path(), b"{not json").unwrap();
        assert_eq!(f.write().digest, first.digest);
    }

    #[test]
    fn an_unusable_cache_directory_costs_time_not_the_build() {
        let f = Fixture::new();
        fs::write(f.cache(), b"a file where the cache directory should be").unwrap();
        assert_eq!(f.write().digest, f.uncached().digest);
    }
}
