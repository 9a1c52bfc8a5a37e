//! `mgw load`: a built image (or a project, built first) into a Docker engine.

use anyhow::Result;

use crate::cli::{LoadArgs, Output};
use crate::commands::args::{Shipper, built_or_build};
use crate::commands::output::{describe_build, describe_load, human, print_json, report_build};
use crate::env::Env;

pub fn run(args: &LoadArgs, output: Output) -> Result<()> {
    let env = Env::process();
    let platform = super::args::load_platform(&args.inputs)?;
    let built = built_or_build(
        Shipper::Load,
        &args.image,
        None,
        &args.inputs,
        &args.registry,
        &env,
    )?;
    report_build(&built, output);
    let loaded = crate::load::load(&built, platform, &env)?;
    if human(output) {
        for line in describe_build(&built) {
            println!("{line}");
        }
        println!("{}", describe_load(&loaded));
    } else {
        print_json(&serde_json::to_value(&loaded)?);
    }
    Ok(())
}
