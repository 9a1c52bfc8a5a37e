//! `mgw build`: project → bundle → image (OCI layout + dual-format tarball).

use anyhow::{Context, Result};
use serde_json::json;

use crate::bake::{self, BakeOptions, GatewaySource};
use crate::cli::{BuildArgs, Output};
use crate::commands::{human, image_location, print_json, warn_all, write_atomic};
use crate::gateway_binary;
use crate::oci::{self, OutputPaths};
use crate::project;

pub fn run(args: &BuildArgs, output: Output) -> Result<()> {
    let started = std::time::Instant::now();
    let compiled = project::build(&args.project)?;
    warn_all(&compiled.warnings);
    let summary = &compiled.summary;

    let epoch = match &args.source_date_epoch {
        Some(v) if !v.trim().is_empty() => oci::parse_source_date_epoch(v)?,
        _ => 0,
    };
    let gateway = match &args.base {
        Some(base) => {
            let (layout, tag) = image_location(base);
            GatewaySource::Base { layout, tag }
        }
        None => GatewaySource::Binary(gateway_binary::locate(args.gateway_binary.as_deref())?),
    };
    let opts = BakeOptions {
        repository: args
            .repository
            .clone()
            .unwrap_or_else(|| summary.repository.clone()),
        tag: args
            .tag
            .clone()
            .unwrap_or_else(|| bake::default_tag(&summary.version, &compiled.digest)),
        source_date_epoch: epoch,
        source: args.source.clone(),
        revision: args.revision.clone(),
        gateway,
    };
    let spec = bake::image_spec(&compiled, &opts)?;

    let dir = args.out.join(&summary.name);
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create output directory `{}`", dir.display()))?;
    let paths = OutputPaths {
        layout: dir.join("oci"),
        tarball: (!args.no_tarball).then(|| dir.join("image.tar")),
    };
    let image = oci::write_image(&spec, &paths)?;
    let image_ref = format!("{}@{}", opts.repository, image.manifest_digest);

    let meta = json!({
        "reference": image.reference,
        "repository": opts.repository,
        "tag": image.tag,
        "digest": image.manifest_digest.to_string(),
        "image": image_ref,
        "bundleDigest": compiled.digest,
        "architecture": spec.architecture,
        "size": image.total_size,
        "layout": "oci",
        "tarball": paths.tarball.as_ref().map(|_| "image.tar"),
        "layers": image.layers.iter().map(|l| json!({
            "digest": l.digest.to_string(), "size": l.size, "mediaType": l.media_type,
        })).collect::<Vec<_>>(),
        "env": compiled.env,
        "summary": summary,
    });
    write_atomic(&dir.join("bundle.json"), &compiled.bytes)?;
    write_atomic(
        &dir.join("build.json"),
        format!("{}\n", serde_json::to_string_pretty(&meta)?).as_bytes(),
    )?;
    let pinned = crate::commands::deploy::pinned(&dir, None)?;
    write_atomic(
        &dir.join("values.yaml"),
        crate::deploy::helm_values(&pinned).as_bytes(),
    )?;

    if human(output) {
        println!(
            "built `{}` ({} APIs, {} routes) in {:.2}s",
            image.reference,
            summary.apis.len(),
            summary.routes,
            started.elapsed().as_secs_f64()
        );
        println!("  bundle  {}", compiled.digest);
        println!("  layout  {}", paths.layout.display());
        if let Some(t) = &paths.tarball {
            println!("  tarball {}", t.display());
        }
        println!("  values  {}", dir.join("values.yaml").display());
        println!("  size    {} bytes compressed", image.total_size);
        println!("{image_ref}");
    } else {
        let mut m = meta;
        m["layout"] = json!(paths.layout.display().to_string());
        m["tarball"] = json!(paths.tarball.as_ref().map(|t| t.display().to_string()));
        print_json(&m);
    }
    Ok(())
}
