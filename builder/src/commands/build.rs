//! `mgw build`: [`crate::build::run`], then with `--push` / `--load` the registry
//! or Docker, and the summary (or one JSON document) on stdout.

use anyhow::Result;
use serde_json::json;

use crate::cli::{BuildArgs, Output};
use crate::commands::args::{build_inputs, client_options};
use crate::commands::output::{
    describe_build, describe_load, describe_push, human, print_json, report_build,
};
use crate::commands::progress::Reporter;
use crate::env::Env;

pub fn run(args: &BuildArgs, output: Output) -> Result<()> {
    let env = Env::process();
    let mut inputs = build_inputs(
        &args.project,
        args.repository.as_deref(),
        &args.inputs,
        &args.registry,
        &env,
    );
    match args.tarball.as_deref() {
        Some("none") => inputs.tarball = false,
        Some(path) => inputs.tarball_path = Some(path.into()),
        None => inputs.tarball = !args.no_tarball,
    }
    inputs.layout_path = args.oci_layout_path.clone();
    let built = super::args::build(&inputs)?;
    report_build(&built, output);
    let pushed = if args.push {
        let reporter = Reporter::for_output(output, &env);
        Some(crate::push::push(
            &built,
            None,
            client_options(&args.registry, &env),
            &reporter,
        )?)
    } else {
        None
    };
    let loaded = if args.load {
        Some(crate::load::load(&built, None, &env)?)
    } else {
        None
    };
    if human(output) {
        for line in describe_build(&built) {
            println!("{line}");
        }
        if let Some(l) = &loaded {
            println!("{}", describe_load(l));
        }
        match &pushed {
            Some(p) => {
                for line in describe_push(p) {
                    println!("{line}");
                }
                println!("{}", p.image);
            }
            None => println!("{}", built.meta.image),
        }
    } else {
        let mut m = serde_json::to_value(&built.meta)?;
        m["layout"] = json!(built.layout().display().to_string());
        if let Some(t) = built.tarball() {
            m["tarball"] = json!(t.display().to_string());
        }
        m["sbom"] = json!(built.sbom().display().to_string());
        if let Some(p) = pushed {
            m["push"] = serde_json::to_value(p)?;
        }
        if let Some(l) = loaded {
            m["load"] = serde_json::to_value(l)?;
        }
        print_json(&m);
    }
    Ok(())
}
