//! Pushing a [`Built`] image to its registry (or another repository), its SBOM as
//! a referrer, and recording the pushed reference in `<out>/<name>/image.ref`.
//!
//! The protocol work is [`crate::transfer::push`]; this module decides the target
//! (the build's repository unless told otherwise), checks the layout still holds
//! the image `build.json` describes, and mounts base layers from the base's
//! repository on the same registry. It must never push a layout whose image is
//! not the one `build.json` names.

use anyhow::{Context, Result};

use crate::build::Built;
use crate::env::Env;
use crate::fs::write_atomic;
use crate::oci;
use crate::registry::{Client, ClientOptions, Reference};
use crate::transfer::push::{self, Progress, PushOutcome, PushRequest};

/// The chunk size for uploads: `MGW_PUSH_CHUNK_SIZE` bytes, else 16 MiB.
fn chunk_size(env: &Env) -> u64 {
    env.var("MGW_PUSH_CHUNK_SIZE")
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(16 * 1024 * 1024)
}

/// Pushes `built` to `repository` (default: the build's) and writes
/// `image.ref` beside it. `opts.chunk_size` comes from `MGW_PUSH_CHUNK_SIZE`.
pub fn push(
    built: &Built,
    repository: Option<&str>,
    mut opts: ClientOptions,
    progress: &dyn Progress,
) -> Result<PushOutcome> {
    let meta = &built.meta;
    let repository = repository.unwrap_or(&meta.repository);
    let target = Reference::from_repository(repository, &meta.tag)?;
    let layout = built.layout();
    let image = oci::read_image(&layout, Some(&meta.tag))?;
    let index = image.index.clone();
    let images = match &index {
        // A multi-platform image: every platform's image of the index.
        Some(index) => index
            .platforms
            .iter()
            .map(|(arch, _, _)| oci::read_image_for(&layout, Some(&meta.tag), arch))
            .collect::<Result<Vec<_>, _>>()?,
        None => vec![image],
    };
    let top = index
        .as_ref()
        .map_or(images[0].manifest_digest, |i| i.digest);
    anyhow::ensure!(
        meta.digest == top,
        "`{}` no longer holds the image `build.json` describes; build again",
        layout.display()
    );
    let mount_from = meta
        .base
        .as_ref()
        .filter(|b| b.registry == target.registry && b.repository != target.repository)
        .map(|b| b.repository.clone());
    let mut scopes = vec![format!("repository:{}:pull,push", target.repository)];
    if let Some(from) = &mount_from {
        scopes.push(format!("repository:{from}:pull"));
    }
    opts.chunk_size = chunk_size(&opts.env);
    progress.note(&format!("pushing `{target}`"));
    let client = Client::connect(&target.registry, target.api_host(), scopes, opts)?;
    // The SBOM and values name the repository the image is pushed to.
    let mut sbom = built.sbom();
    let retargeted = (repository != meta.repository && sbom.is_file())
        .then(|| retargeted_sbom(&sbom, repository))
        .transpose()?;
    if let Some(file) = &retargeted {
        sbom = file.path().to_owned();
    }
    let created = images[0].config.created().clone();
    let req = PushRequest {
        images: &images,
        index: index.as_ref(),
        extra_tags: meta.extra_tags.clone(),
        target: target.clone(),
        mount_from,
        sbom: sbom.is_file().then_some(sbom),
        created,
    };
    let outcome = push::push(&client, &req, progress)?;
    let path = built.dir.join("image.ref");
    write_atomic(&path, format!("{}\n", outcome.image).as_bytes())
        .with_context(|| format!("pushed `{}`", outcome.image))?;
    // The output directory now describes what was pushed: `values.yaml` pins the
    // pushed reference and the SBOM names its repository.
    if let Some(file) = retargeted {
        let bytes = std::fs::read(file.path())?;
        write_atomic(&built.sbom(), &bytes)?;
    }
    write_atomic(
        &built.dir.join("values.yaml"),
        crate::deploy::helm_values(&built.pinned(None)).as_bytes(),
    )?;
    Ok(outcome)
}

/// A temporary copy of the SBOM at `path` naming `repository`.
fn retargeted_sbom(path: &std::path::Path, repository: &str) -> Result<tempfile::NamedTempFile> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read `{}`", path.display()))?;
    let mut doc: serde_json::Value = serde_json::from_slice(&bytes)
        .with_context(|| format!("`{}` is not JSON", path.display()))?;
    crate::sbom::retarget(&mut doc, repository);
    let file = tempfile::NamedTempFile::new().context("cannot create a temporary file")?;
    std::fs::write(
        file.path(),
        format!("{}\n", serde_json::to_string_pretty(&doc)?),
    )
    .with_context(|| format!("cannot write `{}`", file.path().display()))?;
    Ok(file)
}
