//! Loading a [`Built`] image's tarball into a Docker engine ([`crate::docker`]).
//! It must never load a tarball other than the one `build.json` names.

use anyhow::{Context, Result};

use crate::build::Built;
use crate::docker::{self, Loaded};
use crate::env::Env;

/// Loads `built`'s `image.tar` into the engine `env` names (`DOCKER_HOST`).
pub fn load(built: &Built, env: &Env) -> Result<Loaded> {
    let tarball = built.tarball().filter(|t| t.is_file()).with_context(|| {
        format!(
            "`{}` is missing; build without `--no-tarball` to load the image",
            built.dir.join("image.tar").display()
        )
    })?;
    Ok(docker::load(&tarball, &built.meta.reference, env)?)
}
