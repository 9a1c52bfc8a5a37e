//! The daemonless, reproducible OCI image writer (and reader).
//!
//! `mgw build` bakes the gateway into an image without Docker, Buildah or any daemon:
//! this module writes the layers ([`layer`]), the config and manifest ([`image`]), the
//! OCI image layout directory and reads it back ([`layout`]), and the one tarball that
//! is both an OCI archive and a docker-archive (`archive`). The base layer comes from
//! the repository's `base-image/`, embedded at compile time ([`base`]).
//!
//! Architecture invariant: same inputs give the same bytes, on any machine, at any
//! time. Nothing here reads the wall clock, the host's users, umask, file owners or
//! modes, or the order a directory lists its entries in; every timestamp comes from the
//! `source_date_epoch` the caller passes. Nothing here ever leaves a half-written image
//! where a good one was: output is staged beside its destination and renamed into place.

mod archive;
pub mod base;
mod digest;
mod error;
pub mod image;
mod index;
mod json;
pub mod layer;
mod layer_cache;
pub mod layout;
mod stat_index;

pub use archive::write_docker_archive;
pub use digest::{Digest, ParseDigestError};
pub use error::OciError;
pub use image::{
    ImageOutput, ImageSpec, ImagesOutput, LayerContent, LayerInput, OutputPaths, write_image,
    write_images,
};
pub use index::IndexInfo;
pub(crate) use json::to_canonical_json;
pub use layer::{Layer, LayerBuilder, parse_source_date_epoch};
pub use layer_cache::file_digest;
pub use layout::{ImageInfo, LayerInfo, extract_file, read_image, read_image_for, verify_blob};

use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

/// Media type of the layers this module writes: a gzip-compressed tar.
pub const MEDIA_TYPE_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// Media type of an uncompressed tar layer (accepted when reading and reusing layers).
pub const MEDIA_TYPE_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// Docker's name for a gzip-compressed layer (accepted when reading; rewritten to
/// [`MEDIA_TYPE_LAYER_GZIP`] when reused, the bytes are the same).
pub const MEDIA_TYPE_DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Media type of the image config blob.
pub const MEDIA_TYPE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Media type of the image manifest.
pub const MEDIA_TYPE_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Media type of `index.json`.
pub const MEDIA_TYPE_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// Annotation on the `index.json` descriptor that names the tag (what
/// `skopeo … oci:<dir>:<tag>` and `umoci --image <dir>:<tag>` look up).
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Annotation containerd (`ctr import`) reads for the full image name.
pub const ANNOTATION_CONTAINERD_NAME: &str = "io.containerd.image.name";

/// An image argument: a build output directory (`<out>/<name>`, holding `oci/`)
/// or an OCI layout, with an optional `:TAG`. Returns the layout and the tag.
pub fn image_location(arg: &str) -> (PathBuf, Option<String>) {
    let (path, tag) = match arg.rsplit_once(':') {
        Some((p, t)) if !t.contains('/') && !p.is_empty() && !Path::new(arg).exists() => {
            (PathBuf::from(p), Some(t.to_owned()))
        }
        _ => (PathBuf::from(arg), None),
    };
    let layout = if path.join("oci").join("index.json").is_file() {
        path.join("oci")
    } else {
        path
    };
    (layout, tag)
}

/// Formats `epoch` (seconds since the Unix epoch) as RFC 3339 in UTC with second
/// precision, e.g. `1970-01-01T00:00:00Z`: the `created` value of the config and its
/// history, and of the `org.opencontainers.image.created` annotation.
pub fn rfc3339(epoch: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(epoch)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_date_epoch_accepts_decimal_seconds_only() {
        assert_eq!(parse_source_date_epoch("0").unwrap(), 0);
        assert_eq!(
            parse_source_date_epoch(" 1700000000\n").unwrap(),
            1_700_000_000
        );
        for bad in ["", "-1", "1.5", "0x10", "1e9", "soon", "99999999999999"] {
            let err = parse_source_date_epoch(bad).unwrap_err();
            assert!(err.to_string().contains("SOURCE_DATE_EPOCH"), "{err}");
        }
    }

    #[test]
    fn rfc3339_is_utc_with_seconds() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
