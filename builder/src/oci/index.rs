//! Multi-platform images: the OCI image index (`application/vnd.oci.image.index.v1+json`)
//! that names one manifest per platform, written by [`super::image::write_images`]
//! and followed by [`super::read_image_for`] to the platform asked for.

use std::collections::{BTreeMap, HashMap};

use oci_spec::image::{Arch, Descriptor, ImageIndex, MediaType, Os, Platform, PlatformBuilder};

use super::json::to_canonical_json;
use super::{Digest, OciError};

/// One manifest of an index.
#[derive(Debug, Clone)]
pub(crate) struct Entry<'a> {
    pub digest: Digest,
    pub size: u64,
    pub architecture: &'a str,
    pub os: &'a str,
}

/// The index of a multi-platform image in a layout (see [`super::ImageInfo::index`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexInfo {
    pub digest: Digest,
    pub size: u64,
    /// `(architecture, os, manifest digest)` of each manifest, in index order.
    pub platforms: Vec<(String, String, Digest)>,
}

pub(crate) fn platform(architecture: &str, os: &str) -> Result<Platform, oci_spec::OciSpecError> {
    PlatformBuilder::default()
        .architecture(Arch::from(architecture))
        .os(Os::from(os))
        .build()
}

/// The canonical JSON of an image index listing `manifests` with their platforms,
/// annotated like the images (title, version, created, bundle digest).
pub(crate) fn image_index_json(
    manifests: &[Entry<'_>],
    annotations: &BTreeMap<String, String>,
) -> Result<Vec<u8>, OciError> {
    let assemble = |source| OciError::Assemble {
        what: "image index",
        source,
    };
    let descriptors = manifests
        .iter()
        .map(|m| {
            let mut d = Descriptor::new(MediaType::ImageManifest, m.size, m.digest.to_oci());
            d.set_platform(Some(platform(m.architecture, m.os).map_err(assemble)?));
            Ok(d)
        })
        .collect::<Result<Vec<_>, OciError>>()?;
    let mut index = oci_spec::image::ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(descriptors);
    if !annotations.is_empty() {
        index = index.annotations(annotations.clone().into_iter().collect::<HashMap<_, _>>());
    }
    to_canonical_json(&index.build().map_err(assemble)?, "the image index")
}

/// The `(architecture, os, manifest digest)` of each image manifest in `index`.
pub(crate) fn platforms(index: &ImageIndex) -> Vec<(String, String, String)> {
    index
        .manifests()
        .iter()
        .filter_map(|d| {
            let p = d.platform().as_ref()?;
            Some((
                p.architecture().to_string(),
                p.os().to_string(),
                d.digest().to_string(),
            ))
        })
        .collect()
}

/// The manifest of `index` for `architecture` on linux, or an error naming the
/// platforms it has.
pub(crate) fn select<'i>(
    index: &'i ImageIndex,
    architecture: &str,
    what: &str,
) -> Result<&'i Descriptor, String> {
    index
        .manifests()
        .iter()
        .find(|d| {
            d.platform().as_ref().is_some_and(|p| {
                p.architecture().to_string() == architecture && p.os().to_string() == "linux"
            })
        })
        .ok_or_else(|| {
            let have = platforms(index)
                .into_iter()
                .map(|(a, o, _)| format!("`{o}/{a}`"))
                .collect::<Vec<_>>();
            format!(
                "{what} has no `linux/{architecture}` image (it has {}); choose one with `--platform`",
                if have.is_empty() {
                    "none".to_owned()
                } else {
                    have.join(", ")
                }
            )
        })
}
