//! `mgw push`: a built image (or a project, built first) to its registry.

use std::path::Path;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::cli::{BuildArgs, Output, PushArgs, RegistryArgs};
use crate::commands::progress::{Reporter, human_bytes};
use crate::commands::{human, print_json, write_atomic};
use crate::env::Env;
use crate::oci::push::{PushOutcome, PushRequest};
use crate::oci::{self, push::Progress};
use crate::registry::client::BlobAction;
use crate::registry::{Client, ClientOptions, Reference};

pub fn run(args: &PushArgs, output: Output) -> Result<()> {
    let built = super::build::built_or_build(
        &args.image,
        || BuildArgs {
            project: args.image.clone(),
            out: args.out.clone(),
            tag: args.tag.clone(),
            repository: args.repository.clone(),
            gateway_binary: args.gateway_binary.clone(),
            base: args.base.clone(),
            source_date_epoch: args.source_date_epoch.clone(),
            source: None,
            revision: None,
            no_tarball: false,
            push: true,
            load: false,
            registry: args.registry.clone(),
        },
        output,
    )?;
    let outcome = push_built(
        &built.dir,
        &built.meta,
        args.repository.as_deref(),
        &args.registry,
        output,
    )?;
    if human(output) {
        for line in &built.summary {
            println!("{line}");
        }
        for line in describe(&outcome) {
            println!("{line}");
        }
        println!("{}", outcome.image);
    } else {
        print_json(&serde_json::to_value(&outcome)?);
    }
    Ok(())
}

/// The chunk size for uploads: `MGW_PUSH_CHUNK_SIZE` bytes, else 16 MiB.
fn chunk_size(env: &Env) -> u64 {
    env.var("MGW_PUSH_CHUNK_SIZE")
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(16 * 1024 * 1024)
}

/// Pushes the image in build output directory `dir` (with its `build.json`
/// `meta`) to `repository` (default: the build's) and writes `dir/image.ref`.
pub fn push_built(
    dir: &Path,
    meta: &Value,
    repository: Option<&str>,
    registry: &RegistryArgs,
    output: Output,
) -> Result<PushOutcome> {
    let repository = repository
        .or_else(|| meta["repository"].as_str())
        .context("`build.json` names no repository; pass `--repository`")?;
    let tag = meta["tag"].as_str().context("`build.json` names no tag")?;
    let target = Reference::from_repository(repository, tag)?;
    let image = oci::read_image(&dir.join("oci"), Some(tag))?;
    if let Some(d) = meta["digest"].as_str() {
        anyhow::ensure!(
            d == image.manifest_digest.to_string(),
            "`{}` no longer holds the image `build.json` describes; build again",
            dir.join("oci").display()
        );
    }
    let base = &meta["base"];
    let mount_from = (base["registry"].as_str() == Some(target.registry.as_str())
        && base["repository"].as_str() != Some(target.repository.as_str()))
    .then(|| base["repository"].as_str().map(str::to_owned))
    .flatten();
    let mut scopes = vec![format!("repository:{}:pull,push", target.repository)];
    if let Some(from) = &mount_from {
        scopes.push(format!("repository:{from}:pull"));
    }
    let env = Env::process();
    let opts = ClientOptions {
        insecure: registry.insecure,
        retries: registry.retries,
        chunk_size: chunk_size(&env),
        env,
        ..ClientOptions::default()
    };
    let reporter = Reporter::for_output(output);
    reporter.note(&format!("pushing `{target}`"));
    let client = Client::connect(&target.registry, target.api_host(), scopes, opts)?;
    let sbom = dir.join("sbom.spdx.json");
    let created = image.config.created().clone();
    let req = PushRequest {
        image: &image,
        target: target.clone(),
        mount_from,
        sbom: sbom.is_file().then_some(sbom),
        created,
    };
    let outcome = oci::push::push(&client, &req, &reporter)?;
    drop(reporter);
    write_atomic(
        &dir.join("image.ref"),
        format!("{}\n", outcome.image).as_bytes(),
    )?;
    Ok(outcome)
}

/// The human summary of a push (without the final reference line).
pub fn describe(o: &PushOutcome) -> Vec<String> {
    let mut lines = Vec::new();
    if o.already_pushed {
        lines.push(format!(
            "`{}` already names this image; nothing to upload",
            o.reference
        ));
    } else {
        let count = |a: BlobAction| o.blobs.iter().filter(|b| b.action == a).count();
        lines.push(format!(
            "pushed `{}`: {} blobs ({} uploaded, {} mounted, {} already there), {} sent",
            o.reference,
            o.blobs.len(),
            count(BlobAction::Uploaded),
            count(BlobAction::Mounted),
            count(BlobAction::Skipped),
            human_bytes(o.uploaded_bytes)
        ));
    }
    if let Some(s) = &o.sbom {
        let how = match &s.tag {
            Some(t) => format!("referrers tag `{t}`"),
            None => "referrers API".to_owned(),
        };
        lines.push(format!("  sbom    {} ({how})", s.digest));
    }
    if o.retries > 0 {
        lines.push(format!(
            "  retried {} times after transient failures",
            o.retries
        ));
    }
    lines
}
