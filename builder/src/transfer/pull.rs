//! Pulling a base image (`--base registry/repo:tag` or `…@sha256:…`) into the local
//! blob cache, as an OCI layout the bake step reads like any other.
//!
//! The cache ([`crate::env::Env::cache_dir`]) holds content-addressed blobs under
//! `blobs/sha256/`, and one small layout per image under `images/sha256-<hex>/`
//! whose `blobs` links to the shared store. Every blob
//! is verified against its digest before it is renamed into the cache, so a name in
//! the cache is a promise about its bytes; a reference pinned by digest that is
//! already cached needs no network. This module must never trust a tag to stay put
//! (it resolves it once and reports the digest) or keep a blob that did not verify.

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::oci::{self, Digest, MEDIA_TYPE_INDEX};
use crate::registry::{Client, ClientOptions, Reference, RegistryError};

const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// A base image in the cache.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The OCI layout holding just this image.
    pub layout: PathBuf,
    /// The manifest digest (of the platform manifest, when the reference named an index).
    pub digest: Digest,
    /// The reference as given.
    pub reference: Reference,
    /// Whether the reference was a tag, resolved to `digest` now.
    pub resolved_tag: bool,
}

fn io_err<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> RegistryError + 'a {
    move |source| RegistryError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

/// Whether the cached image is for `architecture` and every blob of it still
/// hashes to its name (a cache is on disk, and disks and people change files; a
/// digest pinning an index names one cached image per platform).
fn cached_image_verifies(layout: &Path, blobs: &Path, architecture: &str) -> bool {
    let Ok(image) = oci::read_image_for(layout, None, architecture) else {
        return false;
    };
    if image.config.architecture().to_string() != architecture {
        return false;
    }
    let config = blobs.join(image.config_digest.hex());
    oci::verify_blob(&config, image.config_digest).is_ok()
        && image
            .layers
            .iter()
            .all(|l| oci::verify_blob(&l.blob_path, l.digest).is_ok())
}

/// Pulls `reference` for `architecture` (`amd64`) into the cache at `cache`.
pub fn pull(
    reference: &Reference,
    architecture: &str,
    cache: &Path,
    opts: ClientOptions,
) -> Result<Pulled, RegistryError> {
    let blobs = cache.join("blobs").join("sha256");
    std::fs::create_dir_all(&blobs).map_err(io_err("create", &blobs))?;
    if let Some(d) = reference.digest {
        let layout = cache.join("images").join(format!("sha256-{}", d.hex()));
        if layout.join("index.json").is_file()
            && cached_image_verifies(&layout, &blobs, architecture)
        {
            tracing::info!(%reference, "base image found in the cache");
            return Ok(Pulled {
                layout,
                digest: d,
                reference: reference.clone(),
                resolved_tag: false,
            });
        }
    }

    let repo = &reference.repository;
    let client = Client::connect(
        &reference.registry,
        reference.api_host(),
        vec![format!("repository:{repo}:pull")],
        opts,
    )?;
    let wanted = reference.manifest_ref();
    let not_found = || RegistryError::Protocol {
        registry: reference.registry.clone(),
        message: format!("`{reference}` not found"),
    };
    let (mut bytes, mut media_type, mut digest) =
        client.get_manifest(repo, &wanted)?.ok_or_else(not_found)?;
    if let Some(pinned) = reference.digest {
        if pinned != digest {
            return Err(RegistryError::DigestMismatch {
                registry: reference.registry.clone(),
                what: format!("the manifest of `{reference}`"),
                expected: pinned.to_string(),
                actual: digest.to_string(),
            });
        }
    }
    if media_type == MEDIA_TYPE_INDEX || media_type == DOCKER_LIST {
        let index: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| RegistryError::Protocol {
                registry: reference.registry.clone(),
                message: format!("the index of `{reference}` is not JSON: {e}"),
            })?;
        let chosen = index["manifests"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|m| {
                m["platform"]["os"] == "linux" && m["platform"]["architecture"] == architecture
            })
            .and_then(|m| m["digest"].as_str())
            .and_then(|d| d.parse::<Digest>().ok())
            .ok_or_else(|| RegistryError::Protocol {
                registry: reference.registry.clone(),
                message: format!("`{reference}` has no `linux/{architecture}` image"),
            })?;
        let (b, m, d) = client
            .get_manifest(repo, &chosen.to_string())?
            .ok_or_else(not_found)?;
        if d != chosen {
            return Err(RegistryError::DigestMismatch {
                registry: reference.registry.clone(),
                what: format!("the `linux/{architecture}` manifest of `{reference}`"),
                expected: chosen.to_string(),
                actual: d.to_string(),
            });
        }
        (bytes, media_type, digest) = (b, m, d);
    }

    let manifest: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| RegistryError::Protocol {
            registry: reference.registry.clone(),
            message: format!("the manifest of `{reference}` is not JSON: {e}"),
        })?;
    let mut wanted_blobs = vec![&manifest["config"]];
    wanted_blobs.extend(manifest["layers"].as_array().into_iter().flatten());
    for descriptor in wanted_blobs {
        let d: Digest = descriptor["digest"]
            .as_str()
            .and_then(|d| d.parse().ok())
            .ok_or_else(|| RegistryError::Protocol {
                registry: reference.registry.clone(),
                message: format!(
                    "the manifest of `{reference}` has a descriptor without a sha256 digest"
                ),
            })?;
        let size = descriptor["size"].as_u64().unwrap_or(0);
        let dest = blobs.join(d.hex());
        if dest.is_file() {
            if oci::verify_blob(&dest, d).is_ok() {
                continue;
            }
            tracing::warn!(blob = %d, "cached blob does not match its digest; downloading it again");
        }
        let mut tmp =
            tempfile::NamedTempFile::new_in(&blobs).map_err(io_err("write in", &blobs))?;
        client.get_blob(repo, &d, size, tmp.as_file_mut())?;
        tmp.persist(&dest)
            .map_err(|e| io_err("write", &dest)(e.error))?;
    }
    let manifest_blob = blobs.join(digest.hex());
    if !manifest_blob.is_file() {
        crate::fs::write_atomic(&manifest_blob, &bytes).map_err(|e| RegistryError::Io {
            action: e.action,
            path: e.path,
            source: e.source,
        })?;
    }

    let layout = cache
        .join("images")
        .join(format!("sha256-{}", digest.hex()));
    if !layout.join("index.json").is_file() {
        let parent = cache.join("images");
        std::fs::create_dir_all(&parent).map_err(io_err("create", &parent))?;
        let staging = tempfile::Builder::new()
            .prefix(".pull-")
            .tempdir_in(&parent)
            .map_err(io_err("write in", &parent))?;
        let s = staging.path();
        std::fs::write(s.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)
            .map_err(io_err("write", s))?;
        std::os::unix::fs::symlink("../../blobs", s.join("blobs")).map_err(io_err("link", s))?;
        let index = json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_TYPE_INDEX,
            "manifests": [{
                "mediaType": media_type,
                "digest": digest.to_string(),
                "size": bytes.len(),
                "annotations": {"org.opencontainers.image.ref.name": reference.to_string()},
            }],
        });
        std::fs::write(
            s.join("index.json"),
            serde_json::to_vec(&index).unwrap_or_default(),
        )
        .map_err(io_err("write", s))?;
        let staged = staging.keep();
        if std::fs::rename(&staged, &layout).is_err() {
            // Another mgw put the same image there first: same content, keep theirs.
            let _ = std::fs::remove_dir_all(&staged);
        }
    }
    Ok(Pulled {
        layout,
        digest,
        reference: reference.clone(),
        resolved_tag: reference.digest.is_none(),
    })
}
