//! `mgw validate`: load and compile a project, report what it would serve.

use anyhow::Result;
use serde_json::json;

use crate::cli::{Output, ProjectArg};
use crate::commands::output::{human, print_json, warn_all};
use crate::project;

pub fn run(args: &ProjectArg, output: Output) -> Result<()> {
    let compiled = match project::build(&args.project) {
        Ok(c) => c,
        Err(e) => {
            if !human(output) {
                // Scripts read stdout: the problems as data; the exit code is
                // still 64 and stderr still carries the message.
                print_json(&json!({
                    "valid": false,
                    "diagnostics": e
                        .diagnostics()
                        .iter()
                        .map(|d| d.to_json("error"))
                        .collect::<Vec<_>>(),
                }));
            }
            return Err(e.into());
        }
    };
    warn_all(&compiled.warnings);
    let s = &compiled.summary;
    if human(output) {
        println!("project `{}` {} is valid", s.name, s.version);
        for api in &s.apis {
            println!(
                "  api `{}` at `{}` → upstream `{}` ({} routes, {})",
                api.name,
                api.base_path,
                api.upstream,
                api.routes.len(),
                api.spec
            );
            for r in &api.routes {
                let mut extra = String::new();
                if !r.security.is_empty() {
                    extra.push_str(&format!("  auth: {}", r.security.join(" | ")));
                }
                if !r.rate_limits.is_empty() {
                    extra.push_str(&format!("  rate limits: {}", r.rate_limits.join(", ")));
                }
                if r.validates {
                    extra.push_str("  validates requests");
                }
                if r.mock {
                    extra.push_str("  mock");
                }
                println!(
                    "    {:<7} {}  ({}){extra}",
                    r.method, r.path, r.operation_id
                );
            }
        }
        for v in &compiled.env {
            match &v.default {
                Some(d) => println!("  env {} (default `{d}`)", v.name),
                None => println!("  env {} (required)", v.name),
            }
        }
        println!("bundle digest {}", compiled.digest);
    } else {
        print_json(&json!({
            "valid": true,
            "bundleDigest": compiled.digest,
            "summary": s,
            "env": compiled.env,
            "warnings": compiled.warnings.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "diagnostics": compiled
                .warnings
                .iter()
                .map(|d| d.to_json("warning"))
                .collect::<Vec<_>>(),
        }));
    }
    Ok(())
}
