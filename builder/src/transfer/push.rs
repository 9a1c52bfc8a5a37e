//! Pushing a built image from its OCI layout to a registry, and its SBOM as a
//! referrer.
//!
//! The order is what makes a push safe to repeat and impossible to half-apply:
//! look the tag up first (a different digest there is a [`RegistryError::TagConflict`]
//! and nothing is uploaded; the same digest means the push is already done), then
//! the blobs (`HEAD` each, mount from the base's repository when the registry
//! holds it, else upload streamed from disk), and the manifest under the tag
//! last, so a push that fails anywhere before leaves no tag behind. It must never
//! re-point a tag, send a manifest before its blobs, or read a layer into memory.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::Ordering;

use serde::Serialize;
use serde_json::json;

use crate::oci::{Digest, ImageInfo, IndexInfo, MEDIA_TYPE_INDEX, MEDIA_TYPE_MANIFEST};
use crate::registry::client::BlobAction;
use crate::registry::{Client, Reference, RegistryError};

/// The media type of an SPDX JSON document (the SBOM's layer and artifact type).
pub const MEDIA_TYPE_SPDX: &str = "application/spdx+json";
/// The OCI empty descriptor's media type and content (`{}`).
pub const MEDIA_TYPE_EMPTY: &str = "application/vnd.oci.empty.v1+json";
const EMPTY_JSON: &[u8] = b"{}";

/// How many blobs upload at once.
const PARALLEL_BLOBS: usize = 3;

/// Told what happens to each blob, for progress bars or log lines.
pub trait Progress: Sync {
    /// A blob is about to be checked or uploaded.
    fn start(&self, digest: &Digest, size: u64, what: &str);
    /// The registry holds `held` bytes of it.
    fn update(&self, digest: &Digest, held: u64);
    /// It is in the repository.
    fn finish(&self, digest: &Digest, action: BlobAction);
    /// A step worth a line (`checking tag`, `pushing manifest`).
    fn note(&self, message: &str);
}

/// A [`Progress`] that shows nothing.
#[derive(Debug)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _: &Digest, _: u64, _: &str) {}
    fn update(&self, _: &Digest, _: u64) {}
    fn finish(&self, _: &Digest, _: BlobAction) {}
    fn note(&self, _: &str) {}
}

/// What to push.
#[derive(Debug, Clone)]
pub struct PushRequest<'a> {
    /// The image, or each platform's image of `index` (read from one layout).
    pub images: &'a [ImageInfo],
    /// The image index the tag names, for a multi-platform image: its manifests
    /// are pushed by digest, then the index under the tag.
    pub index: Option<&'a IndexInfo>,
    /// More tags for the same image (`mgw build --tag A --tag B`), each checked
    /// like the first before anything is uploaded, and set after it.
    pub extra_tags: Vec<String>,
    /// Registry, repository and tag to push to.
    pub target: Reference,
    /// A repository on the same registry that holds the base layers (`--base`),
    /// to mount them from instead of uploading.
    pub mount_from: Option<String>,
    /// The SPDX document to attach as a referrer.
    pub sbom: Option<PathBuf>,
    /// `created` annotation of the SBOM artifact (reproducible: the build's epoch).
    pub created: Option<String>,
}

/// One blob of a push.
#[derive(Debug, Clone, Serialize)]
pub struct BlobReport {
    pub digest: String,
    pub size: u64,
    pub what: String,
    pub action: BlobAction,
}

/// How the SBOM was attached.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SbomReport {
    /// The artifact manifest's digest.
    pub digest: String,
    /// `referrers-api`, or `tag-schema` with the fallback tag.
    pub via: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Whether it was already there.
    pub existed: bool,
}

/// What [`push`] did.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PushOutcome {
    /// `registry/repository:tag`.
    pub reference: String,
    /// `registry/repository@sha256:…`.
    pub image: String,
    pub digest: String,
    /// The tag already named this image: nothing was uploaded or tagged.
    pub already_pushed: bool,
    pub blobs: Vec<BlobReport>,
    /// Blob bytes sent (0 for an identical re-push).
    pub uploaded_bytes: u64,
    pub requests: u64,
    pub retries: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sbom: Option<SbomReport>,
}

/// Pushes `req.image` to `req.target` through `client` (connected with push scope
/// for the target repository, and pull scope for `mount_from`).
pub fn push(
    client: &Client,
    req: &PushRequest<'_>,
    progress: &dyn Progress,
) -> Result<PushOutcome, RegistryError> {
    let Some(image) = req.images.first() else {
        return Err(RegistryError::Protocol {
            registry: req.target.registry.clone(),
            message: "nothing to push".to_owned(),
        });
    };
    let repo = req.target.repository.as_str();
    let tag = req
        .target
        .tag
        .clone()
        .unwrap_or_else(|| "latest".to_owned());
    let ours = req.index.map_or(image.manifest_digest, |i| i.digest);
    let reference = format!("{}:{tag}", req.target.name());
    let read = |digest: &Digest| {
        let path = blob_path(&image.layout, digest);
        std::fs::read(&path).map_err(|source| RegistryError::Io {
            action: "read",
            path,
            source,
        })
    };
    let manifest_bytes = read(&ours)?;
    let media_type = serde_json::from_slice::<serde_json::Value>(&manifest_bytes)
        .ok()
        .and_then(|v| v["mediaType"].as_str().map(str::to_owned))
        .unwrap_or_else(|| MEDIA_TYPE_MANIFEST.to_owned());

    progress.note(&format!("checking tag `{reference}`"));
    // Whether `tag` already names our image; a tag naming another one is a conflict.
    let check = |tag: &str| -> Result<bool, RegistryError> {
        match client.manifest_digest(repo, tag)? {
            Some(existing) if existing != ours => Err(RegistryError::TagConflict {
                reference: format!("{}:{tag}", req.target.name()),
                existing: existing.to_string(),
                ours: ours.to_string(),
            }),
            Some(_) => Ok(true),
            None => Ok(false),
        }
    };
    let check_tag = || check(&tag);
    let already_pushed = check_tag()?;
    // Every extra tag is checked before anything is uploaded.
    let mut extra_missing = Vec::new();
    for extra in &req.extra_tags {
        if !check(extra)? {
            extra_missing.push(extra.as_str());
        }
    }

    let mut blobs = Vec::new();
    if !already_pushed {
        // Every platform's config and layers; a layer two platforms share once.
        let mut work: Vec<(Digest, u64, PathBuf, String, bool)> = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for image in req.images {
            let arch = image.config.architecture().to_string();
            let named = |what: String| {
                if req.index.is_some() {
                    format!("{what} ({arch})")
                } else {
                    what
                }
            };
            if seen.insert(image.config_digest) {
                work.push((
                    image.config_digest,
                    image.config_size,
                    blob_path(&image.layout, &image.config_digest),
                    named("config".to_owned()),
                    false,
                ));
            }
            for (i, layer) in image.layers.iter().enumerate() {
                if !seen.insert(layer.digest) {
                    continue;
                }
                let what = layer
                    .created_by
                    .clone()
                    .unwrap_or_else(|| format!("layer {}", i + 1));
                work.push((
                    layer.digest,
                    layer.size,
                    layer.blob_path.clone(),
                    named(what),
                    true,
                ));
            }
        }
        blobs = push_blobs(client, repo, work, req.mount_from.as_deref(), progress)?;
        // An index's manifests by digest, before the index names them.
        if req.index.is_some() {
            for image in req.images {
                let digest = image.manifest_digest.to_string();
                progress.note(&format!("pushing manifest `{digest}`"));
                let bytes = read(&image.manifest_digest)?;
                client.put_manifest(repo, &digest, MEDIA_TYPE_MANIFEST, &bytes)?;
            }
        }

        // Between the first look and now, someone may have tagged: look again, so
        // the window for a race is one round trip, not the whole upload.
        if !check_tag()? {
            progress.note(&format!("tagging `{reference}`"));
            client.put_manifest(repo, &tag, &media_type, &manifest_bytes)?;
        }
    }
    for extra in extra_missing {
        if !check(extra)? {
            progress.note(&format!("tagging `{}:{extra}`", req.target.name()));
            client.put_manifest(repo, extra, &media_type, &manifest_bytes)?;
        }
    }

    let sbom = match &req.sbom {
        Some(path) => Some(push_sbom(
            client,
            repo,
            &ours,
            &media_type,
            manifest_bytes.len() as u64,
            path,
            req.created.as_deref(),
            progress,
        )?),
        None => None,
    };

    let stats = &client.stats;
    Ok(PushOutcome {
        image: req.target.with_digest(&ours),
        reference,
        digest: ours.to_string(),
        already_pushed,
        blobs,
        uploaded_bytes: stats.uploaded_bytes.load(Ordering::Relaxed),
        requests: stats.requests.load(Ordering::Relaxed),
        retries: stats.retries.load(Ordering::Relaxed),
        sbom,
    })
}

fn blob_path(layout: &Path, digest: &Digest) -> PathBuf {
    layout.join("blobs").join("sha256").join(digest.hex())
}

type Work = (Digest, u64, PathBuf, String, bool);

/// Pushes blobs, a few at a time; the first error wins.
fn push_blobs(
    client: &Client,
    repo: &str,
    work: Vec<Work>,
    mount_from: Option<&str>,
    progress: &dyn Progress,
) -> Result<Vec<BlobReport>, RegistryError> {
    let queue = Mutex::new(work.into_iter().enumerate().collect::<Vec<_>>());
    let results = Mutex::new(Vec::new());
    let failed = Mutex::new(None::<RegistryError>);
    std::thread::scope(|s| {
        for _ in 0..PARALLEL_BLOBS {
            s.spawn(|| {
                loop {
                    if failed.lock().expect("lock").is_some() {
                        return;
                    }
                    let Some((index, (digest, size, path, what, mountable))) =
                        queue.lock().expect("lock").pop()
                    else {
                        return;
                    };
                    progress.start(&digest, size, &what);
                    let from = mount_from.filter(|_| mountable);
                    let update = |held: u64| progress.update(&digest, held);
                    match client.push_blob(repo, &digest, size, &path, from, &update) {
                        Ok(action) => {
                            progress.finish(&digest, action);
                            results.lock().expect("lock").push((
                                index,
                                BlobReport {
                                    digest: digest.to_string(),
                                    size,
                                    what,
                                    action,
                                },
                            ));
                        }
                        Err(e) => {
                            failed.lock().expect("lock").get_or_insert(e);
                            return;
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = failed.into_inner().expect("lock") {
        return Err(e);
    }
    let mut results = results.into_inner().expect("lock");
    results.sort_by_key(|(i, _)| *i);
    Ok(results.into_iter().map(|(_, r)| r).collect())
}

/// The referrers-tag-schema tag for `digest`: `sha256-<hex>`.
pub fn referrers_tag(digest: &Digest) -> String {
    format!("sha256-{}", digest.hex())
}

/// The SBOM artifact manifest for `sbom` (bytes of an SPDX document) whose
/// subject is the image manifest `subject` (`subject_type`, `subject_size`).
pub fn sbom_manifest(
    sbom_digest: &Digest,
    sbom_size: u64,
    subject: &Digest,
    subject_type: &str,
    subject_size: u64,
    created: Option<&str>,
) -> Vec<u8> {
    let mut annotations = serde_json::Map::new();
    if let Some(c) = created {
        annotations.insert("org.opencontainers.image.created".into(), json!(c));
    }
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_MANIFEST,
        "artifactType": MEDIA_TYPE_SPDX,
        "config": {
            "mediaType": MEDIA_TYPE_EMPTY,
            "digest": Digest::of(EMPTY_JSON).to_string(),
            "size": EMPTY_JSON.len(),
            "data": "e30=",
        },
        "layers": [{
            "mediaType": MEDIA_TYPE_SPDX,
            "digest": sbom_digest.to_string(),
            "size": sbom_size,
            "annotations": {"org.opencontainers.image.title": "sbom.spdx.json"},
        }],
        "subject": {
            "mediaType": subject_type,
            "digest": subject.to_string(),
            "size": subject_size,
        },
        "annotations": annotations,
    });
    crate::oci::to_canonical_json(&manifest, "the SBOM artifact manifest").unwrap_or_default()
}

#[allow(clippy::too_many_arguments)]
fn push_sbom(
    client: &Client,
    repo: &str,
    subject: &Digest,
    subject_type: &str,
    subject_size: u64,
    path: &Path,
    created: Option<&str>,
    progress: &dyn Progress,
) -> Result<SbomReport, RegistryError> {
    let io = |action, source| RegistryError::Io {
        action,
        path: path.to_owned(),
        source,
    };
    let bytes = std::fs::read(path).map_err(|e| io("read", e))?;
    let sbom_digest = Digest::of(&bytes);
    let manifest = sbom_manifest(
        &sbom_digest,
        bytes.len() as u64,
        subject,
        subject_type,
        subject_size,
        created,
    );
    let manifest_digest = Digest::of(&manifest);
    let fallback_tag = referrers_tag(subject);
    let descriptor = json!({
        "mediaType": MEDIA_TYPE_MANIFEST,
        "digest": manifest_digest.to_string(),
        "size": manifest.len(),
        "artifactType": MEDIA_TYPE_SPDX,
    });

    let existed = client
        .manifest_digest(repo, &manifest_digest.to_string())?
        .is_some();
    let mut via_api = false;
    if !existed {
        progress.note("attaching the SBOM");
        let dir = tempfile::tempdir().map_err(|e| io("create a temporary directory for", e))?;
        let empty = dir.path().join("empty");
        std::fs::write(&empty, EMPTY_JSON).map_err(|e| io("write a temporary copy of", e))?;
        let none = |_: u64| {};
        client.push_blob(
            repo,
            &Digest::of(EMPTY_JSON),
            EMPTY_JSON.len() as u64,
            &empty,
            None,
            &none,
        )?;
        progress.start(&sbom_digest, bytes.len() as u64, "SBOM (SPDX 2.3)");
        let update = |held: u64| progress.update(&sbom_digest, held);
        let action =
            client.push_blob(repo, &sbom_digest, bytes.len() as u64, path, None, &update)?;
        progress.finish(&sbom_digest, action);
        via_api = client.put_manifest(
            repo,
            &manifest_digest.to_string(),
            MEDIA_TYPE_MANIFEST,
            &manifest,
        )?;
    } else if client.referrers(repo, subject)?.is_some() {
        via_api = true;
    }
    if !via_api {
        // Referrers tag schema: an index under `sha256-<hex>` listing the referrers.
        let mut index = match client.get_manifest(repo, &fallback_tag)? {
            Some((bytes, _, _)) => {
                serde_json::from_slice::<serde_json::Value>(&bytes).unwrap_or_else(|_| json!({}))
            }
            None => json!({}),
        };
        let listed = index["manifests"]
            .as_array()
            .is_some_and(|m| m.iter().any(|d| d["digest"] == descriptor["digest"]));
        if !listed {
            if !index["manifests"].is_array() {
                index = json!({"schemaVersion": 2, "mediaType": MEDIA_TYPE_INDEX, "manifests": []});
            }
            index["manifests"]
                .as_array_mut()
                .expect("array")
                .push(descriptor);
            let bytes =
                crate::oci::to_canonical_json(&index, "the referrers index").unwrap_or_default();
            client.put_manifest(repo, &fallback_tag, MEDIA_TYPE_INDEX, &bytes)?;
        }
    }
    Ok(SbomReport {
        digest: manifest_digest.to_string(),
        via: if via_api {
            "referrers-api"
        } else {
            "tag-schema"
        }
        .to_owned(),
        tag: (!via_api).then_some(fallback_tag),
        existed,
    })
}
