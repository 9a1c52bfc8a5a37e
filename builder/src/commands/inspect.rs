//! `mgw inspect`: what a built image is and what it serves, read from its layout.

use anyhow::{Context, Result};
use mgw_bundle::{Bundle, join_paths};
use serde_json::json;

use crate::bake::BUNDLE_PATH;
use crate::cli::{ImageArg, Output};
use crate::commands::output::{human, print_json};
use crate::oci::{self, image_location};
use crate::platform::Platform;

pub fn run(args: &ImageArg, output: Output) -> Result<()> {
    let (layout, tag) = image_location(&args.image);
    let platform = args.platform.unwrap_or_else(Platform::host);
    let info = oci::read_image_for(&layout, tag.as_deref(), platform.architecture())?;
    let platforms: Vec<_> = info
        .index
        .iter()
        .flat_map(|i| &i.platforms)
        .map(|(arch, os, digest)| json!({"platform": format!("{os}/{arch}"), "digest": digest.to_string()}))
        .collect();
    let bundle = match info.read_verified_file(BUNDLE_PATH)? {
        Some(bytes) => Some(
            Bundle::from_json(&bytes)
                .with_context(|| format!("the image's `{BUNDLE_PATH}` is not a valid bundle"))?,
        ),
        None => None,
    };
    let cfg = info.config.config().clone().unwrap_or_default();
    let labels = cfg.labels().clone().unwrap_or_default();
    let labels: std::collections::BTreeMap<_, _> = labels.into_iter().collect();
    let routes: Vec<_> = bundle
        .iter()
        .flat_map(|b| b.apis.iter())
        .flat_map(|api| {
            api.operations.iter().map(move |op| {
                json!({
                    "api": api.name,
                    "method": op.method,
                    "path": join_paths(&api.base_path, &op.path),
                    "operationId": op.id,
                })
            })
        })
        .collect();

    if human(output) {
        println!("image     {}", layout.display());
        println!("tag       {}", info.ref_name.as_deref().unwrap_or("-"));
        if let Some(index) = &info.index {
            println!(
                "index     {} ({} platforms)",
                index.digest,
                index.platforms.len()
            );
            for p in &platforms {
                println!(
                    "  {:<13} {}",
                    p["platform"].as_str().unwrap_or_default(),
                    p["digest"].as_str().unwrap_or_default()
                );
            }
        }
        println!("digest    {}", info.manifest_digest);
        println!(
            "platform  {}/{}",
            info.config.os(),
            info.config.architecture()
        );
        println!("size      {} bytes compressed", info.total_size());
        if let Some(ep) = cfg.entrypoint() {
            println!("entrypoint {}", ep.join(" "));
        }
        println!("user      {}", cfg.user().as_deref().unwrap_or("-"));
        println!("layers");
        for l in &info.layers {
            println!(
                "  {}  {:>10}  {}",
                &l.digest.to_string()[..19],
                l.size,
                l.created_by.as_deref().unwrap_or("")
            );
        }
        println!("labels");
        for (k, v) in &labels {
            println!("  {k}={v}");
        }
        if let Some(b) = &bundle {
            println!("gateway   {} {}", b.gateway.name, b.gateway.version);
        }
        println!("routes");
        for r in &routes {
            println!(
                "  {:<7} {}  ({}/{})",
                r["method"].as_str().unwrap_or_default(),
                r["path"].as_str().unwrap_or_default(),
                r["api"].as_str().unwrap_or_default(),
                r["operationId"].as_str().unwrap_or_default()
            );
        }
    } else {
        print_json(&json!({
            "layout": layout.display().to_string(),
            "tag": info.ref_name,
            "digest": info.manifest_digest.to_string(),
            "index": info.index.as_ref().map(|i| i.digest.to_string()),
            "platforms": platforms,
            "os": info.config.os().to_string(),
            "architecture": info.config.architecture().to_string(),
            "size": info.total_size(),
            "entrypoint": cfg.entrypoint(),
            "user": cfg.user(),
            "layers": info.layers.iter().map(|l| json!({
                "digest": l.digest.to_string(),
                "diffId": l.diff_id.to_string(),
                "size": l.size,
                "mediaType": l.media_type,
                "createdBy": l.created_by,
            })).collect::<Vec<_>>(),
            "labels": labels,
            "routes": routes,
        }));
    }
    Ok(())
}
