//! `mgw load`: a built image (or a project, built first) into a Docker engine.

use std::path::Path;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::cli::{BuildArgs, LoadArgs, Output, RegistryArgs};
use crate::commands::{human, print_json};
use crate::docker::{self, Loaded};

pub fn run(args: &LoadArgs, output: Output) -> Result<()> {
    let built = super::build::built_or_build(
        &args.image,
        || BuildArgs {
            project: args.image.clone(),
            out: args.out.clone(),
            tag: None,
            repository: None,
            gateway_binary: None,
            base: None,
            source_date_epoch: std::env::var("SOURCE_DATE_EPOCH").ok(),
            source: None,
            revision: None,
            no_tarball: false,
            push: false,
            load: true,
            registry: RegistryArgs {
                insecure: false,
                retries: 5,
            },
        },
        output,
    )?;
    let loaded = load_built(&built.dir, &built.meta)?;
    if human(output) {
        for line in &built.summary {
            println!("{line}");
        }
        println!("{}", describe(&loaded));
    } else {
        print_json(&serde_json::to_value(&loaded)?);
    }
    Ok(())
}

/// Loads `dir/image.tar` and returns what the engine reports.
pub fn load_built(dir: &Path, meta: &Value) -> Result<Loaded> {
    let tarball = dir.join("image.tar");
    anyhow::ensure!(
        tarball.is_file(),
        "`{}` is missing; build without `--no-tarball` to load the image",
        tarball.display()
    );
    let reference = meta["reference"]
        .as_str()
        .context("`build.json` names no reference")?;
    Ok(docker::load(&tarball, reference)?)
}

pub fn describe(l: &Loaded) -> String {
    format!(
        "loaded into Docker (`{}`): image id {}, tags {}",
        l.engine,
        l.id,
        l.tags
            .iter()
            .map(|t| format!("`{t}`"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}
