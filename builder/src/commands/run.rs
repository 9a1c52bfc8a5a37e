//! `mgw run`: run a built image's gateway on this machine, straight from the OCI
//! layout, without a container runtime.
//!
//! The gateway binary and bundle are extracted once into `run/<manifest digest>`
//! under mgw's cache directory ([`Env::cache_dir`], the one `--base` pulls into),
//! from layer blobs verified against their digests (the manifest and config are
//! verified by `read_image`), then the image's entrypoint is executed in place of this process, so signals and the exit code
//! are the gateway's own.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::bake::BUNDLE_PATH;
use crate::cli::RunArgs;
use crate::env::Env;
use crate::fs::write_atomic;
use crate::gateway_binary::IMAGE_PATH;
use crate::oci::{self, image_location};
use crate::platform::Platform;

pub fn run(args: &RunArgs) -> Result<()> {
    let (layout, tag) = image_location(&args.image);
    let platform = args.platform.unwrap_or_else(Platform::host);
    let info = oci::read_image_for(&layout, tag.as_deref(), platform.architecture())?;
    let cfg = info.config.config().clone().unwrap_or_default();
    let entrypoint = cfg.entrypoint().clone().unwrap_or_default();
    if entrypoint.first().map(String::as_str) != Some(IMAGE_PATH) {
        bail!(
            "`{}` is not an mgw gateway image (its entrypoint is not `{IMAGE_PATH}`)",
            layout.display()
        );
    }
    let dir = Env::process()
        .cache_dir()
        .join("run")
        .join(info.manifest_digest.hex());
    let binary = dir.join("mgw-gateway");
    let bundle = dir.join("bundle.json");
    if !binary.is_file() || !bundle.is_file() {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create `{}`", dir.display()))?;
        extract(&info, BUNDLE_PATH, &bundle, 0o444)?;
        extract(&info, IMAGE_PATH, &binary, 0o755)?;
    }
    let mut env = Vec::new();
    for kv in &args.env {
        let Some((k, v)) = kv.split_once('=') else {
            bail!("`--env {kv}` must be `NAME=value`");
        };
        env.push((k.to_owned(), v.to_owned()));
    }
    let local = |a: &String| match a.as_str() {
        IMAGE_PATH => binary.display().to_string(),
        BUNDLE_PATH => bundle.display().to_string(),
        _ => a.clone(),
    };
    let mut cmd = Command::new(&binary);
    cmd.args(entrypoint.iter().skip(1).map(local))
        .args(cfg.cmd().clone().unwrap_or_default().iter().map(local))
        .envs(
            cfg.env()
                .clone()
                .unwrap_or_default()
                .iter()
                .filter_map(|kv| kv.split_once('=')),
        )
        .envs(env);
    eprintln!(
        "running {} ({})",
        info.ref_name.as_deref().unwrap_or("image"),
        info.manifest_digest
    );
    let err = cmd.exec();
    Err(err).with_context(|| format!("cannot execute `{}`", binary.display()))
}

/// Every layer blob read on the way is checked against its digest: this file is
/// about to be executed (or fed to the gateway).
fn extract(info: &oci::ImageInfo, path: &str, to: &Path, mode: u32) -> Result<()> {
    let bytes = info
        .read_verified_file(path)?
        .with_context(|| format!("the image has no `{path}`"))?;
    write_atomic(to, &bytes)?;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set permissions on `{}`", to.display()))?;
    Ok(())
}
