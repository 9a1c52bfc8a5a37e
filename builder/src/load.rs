//! Loading a [`Built`] image's tarball into a Docker engine ([`crate::docker`]).
//! It must never load a tarball other than the one `build.json` names, or one
//! written from that build's layout for another platform of its image index.

use anyhow::{Context, Result};

use crate::build::Built;
use crate::docker::{self, Loaded};
use crate::env::Env;
use crate::oci;
use crate::platform::Platform;

/// Loads `built`'s `image.tar` into the engine `env` names (`DOCKER_HOST`): its
/// docker-archive half, the host's image. For another `platform` of a
/// multi-platform image, a docker-archive of that platform's image is written from
/// the layout into a temporary directory and loaded instead.
pub fn load(built: &Built, platform: Option<Platform>, env: &Env) -> Result<Loaded> {
    let meta = &built.meta;
    if let Some(p) = platform.filter(|p| p.architecture() != meta.architecture) {
        let layout = built.layout();
        let image = oci::read_image_for(&layout, Some(&meta.tag), p.architecture())?;
        anyhow::ensure!(
            image.index.is_some(),
            "`{}` is a linux/{} image, not an image index with `{p}`; build with `--platform {p}`",
            built.dir.display(),
            meta.architecture
        );
        let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
        let tarball = dir.path().join("image.tar");
        oci::write_docker_archive(&image, &meta.reference, &tarball)?;
        return Ok(docker::load(&tarball, &meta.reference, env)?);
    }
    let tarball = built.tarball().filter(|t| t.is_file()).with_context(|| {
        format!(
            "`{}` is missing; build without `--no-tarball` to load the image",
            built.dir.join("image.tar").display()
        )
    })?;
    Ok(docker::load(&tarball, &meta.reference, env)?)
}
