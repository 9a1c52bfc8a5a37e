//! `mgw init`: scaffold a project from an OpenAPI file.

use anyhow::Result;
use serde_json::json;

use crate::cli::{InitArgs, Output};
use crate::commands::output::{human, print_json, warn_all};
use crate::project::{self, InitOptions};

pub fn run(args: &InitArgs, output: Output) -> Result<()> {
    let outcome = project::init(
        &args.spec,
        &args.dir,
        &InitOptions {
            name: args.name.clone(),
            upstream_url: args.upstream_url.clone(),
        },
    )?;
    warn_all(&outcome.warnings);
    if human(output) {
        for f in &outcome.files {
            println!("wrote {}", args.dir.join(f).display());
        }
        match &outcome.upstream_variable {
            Some(var) => println!(
                "project `{}` {} serves under `{}`; set `{var}` to point at the upstream",
                outcome.name, outcome.version, outcome.base_path
            ),
            None => println!(
                "project `{}` {} serves under `{}`; its upstreams are the spec's `x-wso2-production-endpoints`",
                outcome.name, outcome.version, outcome.base_path
            ),
        }
        if outcome.problems.is_empty() {
            println!("next: mgw build {}", args.dir.display());
        } else {
            println!("before `mgw build` works, fix:");
            for p in project::error::grouped(&outcome.problems) {
                println!("  - {p}");
            }
        }
    } else {
        print_json(&json!({
            "files": outcome.files,
            "name": outcome.name,
            "version": outcome.version,
            "basePath": outcome.base_path,
            "upstreamVariable": outcome.upstream_variable,
            "problems": outcome.problems.iter().map(ToString::to_string).collect::<Vec<_>>(),
        }));
    }
    Ok(())
}
