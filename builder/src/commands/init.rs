//! `mgw init`: scaffold a project from an OpenAPI file, and with `--runtime`
//! its native-filter crate ([`runtime::scaffold`]).

use anyhow::Result;
use serde_json::json;

use crate::cli::{InitArgs, Output};
use crate::commands::output::{human, print_json, warn_all};
use crate::project::{self, InitOptions};
use crate::runtime;

pub fn run(args: &InitArgs, output: Output) -> Result<()> {
    let outcome = match &args.spec {
        Some(spec) => Some(project::init(
            spec,
            &args.dir,
            &InitOptions {
                name: args.name.clone(),
                upstream_url: args.upstream_url.clone(),
                runtime: args.runtime,
            },
        )?),
        None => None,
    };
    // An existing project: only `runtime/`.
    let runtime = match (&outcome, args.runtime) {
        (None, true) => {
            if !args.dir.join(project::MANIFEST_FILE).is_file() {
                return Err(runtime::scaffold::ScaffoldError::NoProject(args.dir.clone()).into());
            }
            runtime::scaffold::write(&args.dir)?
        }
        _ => Vec::new(),
    };
    if let Some(outcome) = &outcome {
        warn_all(&outcome.warnings);
    }
    if human(output) {
        let files = outcome.iter().flat_map(|o| &o.files).chain(&runtime);
        for f in files {
            println!("wrote {}", args.dir.join(f).display());
        }
        if let Some(outcome) = &outcome {
            describe(outcome);
        }
        if args.runtime {
            println!(
                "runtime/ registers the example filter `served-by` (runtime/src/filters.rs); `mgw build` compiles it into the image's gateway"
            );
        }
        if outcome.as_ref().is_none_or(|o| o.problems.is_empty()) {
            println!("next: mgw build {}", args.dir.display());
        } else {
            println!("before `mgw build` works, fix:");
            for p in outcome
                .iter()
                .flat_map(|o| project::error::grouped(&o.problems))
            {
                println!("  - {p}");
            }
        }
    } else {
        let mut doc = match &outcome {
            Some(outcome) => json!({
                "files": outcome.files,
                "name": outcome.name,
                "version": outcome.version,
                "basePath": outcome.base_path,
                "upstreamVariable": outcome.upstream_variable,
                "problems": outcome.problems.iter().map(ToString::to_string).collect::<Vec<_>>(),
            }),
            None => json!({}),
        };
        if outcome.is_none() {
            doc["files"] = json!(runtime);
        }
        print_json(&doc);
    }
    Ok(())
}

fn describe(outcome: &project::InitOutcome) {
    match &outcome.upstream_variable {
        Some(var) => println!(
            "project `{}` {} serves under `{}`; set `{var}` to the upstream's URL (default `{}`)",
            outcome.name, outcome.version, outcome.base_path, outcome.upstream_default
        ),
        None => println!(
            "project `{}` {} serves under `{}`; its upstreams are the spec's `x-wso2-production-endpoints`",
            outcome.name, outcome.version, outcome.base_path
        ),
    }
}
