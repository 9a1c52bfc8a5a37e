//! From parsed arguments to the library's inputs: the environment fallbacks
//! (`MGW_GATEWAY_BINARY`, `SOURCE_DATE_EPOCH`), registry options, and what
//! `push` and `load` do with a path that is either a project or a build output.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::UsageError;
use crate::build::{self, Built, Inputs, Target};
use crate::cli::{BuildInputArgs, RegistryArgs};
use crate::commands::output::warn_all;
use crate::env::Env;
use crate::platform;
use crate::registry::ClientOptions;

/// Registry options from the flags, with `env` for credentials and the cache.
pub fn client_options(registry: &RegistryArgs, env: &Env) -> ClientOptions {
    let defaults = ClientOptions::default();
    ClientOptions {
        insecure: registry.insecure,
        retries: registry.retries.unwrap_or(defaults.retries),
        env: env.clone(),
        ..defaults
    }
}

/// The build inputs: each flag, else its environment variable, else the default.
pub fn build_inputs(
    project: &Path,
    repository: Option<&str>,
    args: &BuildInputArgs,
    registry: &RegistryArgs,
    env: &Env,
) -> Inputs {
    Inputs {
        project: project.to_owned(),
        out: args.out.clone().unwrap_or_else(|| PathBuf::from("out")),
        tag: args.tag.first().cloned(),
        extra_tags: args.tag.iter().skip(1).cloned().collect(),
        repository: repository
            .map(str::to_owned)
            .or_else(|| env.var("MGW_REPOSITORY")),
        platforms: args.platform.clone().map(|l| l.0).unwrap_or_default(),
        gateway_binaries: if args.gateway_binary.is_empty() {
            env.var("MGW_GATEWAY_BINARY").into_iter().collect()
        } else {
            args.gateway_binary.clone()
        }
        .iter()
        .map(|v| platform::parse_binary(v))
        .collect(),
        base: args.base.clone(),
        source_date_epoch: args
            .source_date_epoch
            .clone()
            .or_else(|| env.var("SOURCE_DATE_EPOCH")),
        source: args.source.clone(),
        revision: args.revision.clone(),
        tarball: true,
        layout_path: None,
        tarball_path: None,
        labels: args.image_label.iter().cloned().collect(),
        annotations: args.image_annotation.iter().cloned().collect(),
        client: client_options(registry, env),
    }
}

/// The commands that take a project or a build output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shipper {
    Push,
    Load,
}

impl Shipper {
    fn command(self) -> &'static str {
        match self {
            Shipper::Push => "push",
            Shipper::Load => "load",
        }
    }
}

/// `path` built first when it is a project, or read back when it is a build
/// output. Flags that only make sense for a build are refused with an output
/// directory (and so are the registry flags for `load`, which pulls nothing).
pub fn built_or_build(
    shipper: Shipper,
    path: &Path,
    repository: Option<&str>,
    args: &BuildInputArgs,
    registry: &RegistryArgs,
    env: &Env,
) -> Result<Built> {
    match Target::of(path)? {
        Target::Project(project) => build(&build_inputs(&project, repository, args, registry, env)),
        Target::Output(dir) => {
            let mut given = args.given();
            if shipper == Shipper::Load {
                given.extend(registry.given());
                // `mgw load out/x --platform P` picks a platform of the built index.
                given.retain(|f| *f != "--platform");
            }
            if let Some(flag) = given.first() {
                let command = shipper.command();
                return Err(UsageError(format!(
                    "`{flag}` applies only when `mgw {command}` builds a project, and `{}` is a build output (it holds `build.json`); pass `{flag}` to `mgw build`, or give `mgw {command}` the project",
                    path.display()
                ))
                .into());
            }
            Built::open(&dir)
        }
    }
}

/// The platform `mgw load` loads: the one `--platform` names (refused when it
/// names several), else the host's image the tarball holds.
pub fn load_platform(args: &BuildInputArgs) -> Result<Option<platform::Platform>> {
    match args.platform.as_ref().map(|l| l.0.as_slice()) {
        None => Ok(None),
        Some([one]) => Ok(Some(*one)),
        Some(_) => Err(UsageError(
            "`mgw load` loads one platform: with `--platform A,B` give the build output to `mgw load --platform A`".to_owned(),
        )
        .into()),
    }
}

/// [`build::run`], with the project's warnings on stderr before the bake.
pub fn build(inputs: &Inputs) -> Result<Built> {
    let started = std::time::Instant::now();
    let compiled = build::compile(inputs)?;
    warn_all(&compiled.warnings);
    // The runtime's compile takes minutes: say so (cargo's output is in a log).
    if let (Some(dir), None) = (crate::runtime::crate_dir(&inputs.project), &inputs.base)
        && inputs.gateway_binaries.is_empty()
    {
        eprintln!(
            "compiling `{}` with cargo (its output: `{}`)",
            dir.display(),
            inputs
                .out
                .join(&compiled.summary.name)
                .join("runtime-<arch>.log")
                .display()
        );
    }
    build::bake(inputs, compiled, started)
}
