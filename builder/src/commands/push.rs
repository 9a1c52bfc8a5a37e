//! `mgw push`: a built image (or a project, built first) to its registry, with
//! progress on stderr and the pushed reference last on stdout.

use anyhow::Result;

use crate::cli::{Output, PushArgs};
use crate::commands::args::{Shipper, built_or_build, client_options};
use crate::commands::output::{describe_build, describe_push, human, print_json, report_build};
use crate::commands::progress::Reporter;
use crate::env::Env;

pub fn run(args: &PushArgs, output: Output) -> Result<()> {
    let env = Env::process();
    let built = built_or_build(
        Shipper::Push,
        &args.image,
        args.repository.as_deref(),
        &args.inputs,
        &args.registry,
        &env,
    )?;
    report_build(&built, output);
    let reporter = Reporter::for_output(output, &env);
    let outcome = crate::push::push(
        &built,
        args.repository.as_deref(),
        client_options(&args.registry, &env),
        &reporter,
    )?;
    drop(reporter);
    if human(output) {
        for line in describe_build(&built) {
            println!("{line}");
        }
        for line in describe_push(&outcome) {
            println!("{line}");
        }
        println!("{}", outcome.image);
    } else {
        print_json(&serde_json::to_value(&outcome)?);
    }
    Ok(())
}
