//! `mgw build`: project → bundle → image (OCI layout + dual-format tarball) and its
//! SBOM; with `--push` / `--load`, then the registry or Docker.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::{Value, json};

use crate::bake::{self, BakeOptions, GatewaySource};
use crate::cli::{BuildArgs, Output};
use crate::commands::{human, image_location, print_json, warn_all, write_atomic};
use crate::env::Env;
use crate::gateway_binary::{self, IMAGE_PATH};
use crate::oci::{self, Digest, OutputPaths};
use crate::registry::{ClientOptions, Reference};
use crate::{project, sbom};

/// What `mgw build` wrote.
#[derive(Debug)]
pub struct Built {
    /// `<out>/<name>`.
    pub dir: PathBuf,
    /// The content of `build.json`.
    pub meta: Value,
    /// Lines of the human summary (without the final reference line).
    pub summary: Vec<String>,
}

pub fn run(args: &BuildArgs, output: Output) -> Result<()> {
    let built = build(args, output)?;
    let image_ref = built.meta["image"].as_str().unwrap_or_default().to_owned();
    let pushed = if args.push {
        Some(super::push::push_built(
            &built.dir,
            &built.meta,
            None,
            &args.registry,
            output,
        )?)
    } else {
        None
    };
    let loaded = if args.load {
        Some(super::load::load_built(&built.dir, &built.meta)?)
    } else {
        None
    };
    if human(output) {
        for line in &built.summary {
            println!("{line}");
        }
        if let Some(l) = &loaded {
            println!("{}", super::load::describe(l));
        }
        match &pushed {
            Some(p) => {
                for line in super::push::describe(p) {
                    println!("{line}");
                }
                println!("{}", p.image);
            }
            None => println!("{image_ref}"),
        }
    } else {
        let mut m = built.meta;
        m["layout"] = json!(built.dir.join("oci").display().to_string());
        if m["tarball"].is_string() {
            m["tarball"] = json!(built.dir.join("image.tar").display().to_string());
        }
        m["sbom"] = json!(built.dir.join("sbom.spdx.json").display().to_string());
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

/// Where `--base` points: a local OCI layout, or a registry reference to pull.
enum BaseArg {
    Layout(PathBuf, Option<String>),
    Registry(Reference),
}

fn parse_base(base: &str) -> Result<BaseArg> {
    let (layout, tag) = image_location(base);
    if layout.exists() {
        return Ok(BaseArg::Layout(layout, tag));
    }
    match Reference::parse(base) {
        Ok(r)
            if r.registry != crate::registry::reference::DOCKER_HUB
                || base.contains('@')
                || base.starts_with("docker.io/") =>
        {
            Ok(BaseArg::Registry(r))
        }
        _ => anyhow::bail!(
            "`--base {base}` is neither an OCI layout directory nor a registry reference with a host (e.g. `ghcr.io/team/gw:1.0.0` or `…@sha256:…`)"
        ),
    }
}

/// Compiles and bakes the image into `<out>/<name>/`, with `build.json`,
/// `image.digest` and `sbom.spdx.json` beside it. Prints nothing on stdout.
pub fn build(args: &BuildArgs, output: Output) -> Result<Built> {
    let started = std::time::Instant::now();
    let compiled = project::build(&args.project)?;
    warn_all(&compiled.warnings);
    let summary = &compiled.summary;

    let epoch = match &args.source_date_epoch {
        Some(v) if !v.trim().is_empty() => oci::parse_source_date_epoch(v)?,
        _ => 0,
    };
    let mut base_meta = Value::Null;
    let gateway = match &args.base {
        Some(base) => match parse_base(base)? {
            BaseArg::Layout(layout, tag) => GatewaySource::Base { layout, tag },
            BaseArg::Registry(reference) => {
                let env = Env::process();
                let opts = ClientOptions {
                    insecure: args.registry.insecure,
                    retries: args.registry.retries,
                    env: env.clone(),
                    ..ClientOptions::default()
                };
                let pulled =
                    oci::pull::pull(&reference, "amd64", &oci::pull::cache_dir(&env), opts)
                        .with_context(|| format!("cannot pull base image `{reference}`"))?;
                if pulled.resolved_tag && human(output) {
                    eprintln!(
                        "base `{reference}` resolved to `{}`; pin it with `--base {}`",
                        pulled.digest,
                        reference.with_digest(&pulled.digest)
                    );
                }
                base_meta = json!({
                    "reference": reference.to_string(),
                    "registry": reference.registry,
                    "repository": reference.repository,
                    "digest": pulled.digest.to_string(),
                    "image": reference.with_digest(&pulled.digest),
                });
                GatewaySource::Base {
                    layout: pulled.layout,
                    tag: None,
                }
            }
        },
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

    let (gateway_sha256, base_contents) = sbom_parts(&opts.gateway, &base_meta)?;
    let sbom_doc = sbom::document(&sbom::SbomInput {
        repository: opts.repository.clone(),
        tag: image.tag.clone(),
        image_digest: image.manifest_digest,
        created: oci::rfc3339(epoch),
        gateway_version: env!("CARGO_PKG_VERSION").to_owned(),
        gateway_sha256,
        bundle_digest: compiled.digest.clone(),
        base: base_contents,
    });

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
        "sbom": "sbom.spdx.json",
        "base": base_meta,
    });
    write_atomic(&dir.join("bundle.json"), &compiled.bytes)?;
    write_atomic(
        &dir.join("sbom.spdx.json"),
        format!("{}\n", serde_json::to_string_pretty(&sbom_doc)?).as_bytes(),
    )?;
    write_atomic(
        &dir.join("image.digest"),
        format!("{}\n", image.manifest_digest).as_bytes(),
    )?;
    write_atomic(
        &dir.join("build.json"),
        format!("{}\n", serde_json::to_string_pretty(&meta)?).as_bytes(),
    )?;
    let pinned = crate::commands::deploy::pinned(&dir, None)?;
    write_atomic(
        &dir.join("values.yaml"),
        crate::deploy::helm_values(&pinned).as_bytes(),
    )?;

    let mut lines = vec![format!(
        "built `{}` ({} APIs, {} routes) in {:.2}s",
        image.reference,
        summary.apis.len(),
        summary.routes,
        started.elapsed().as_secs_f64()
    )];
    lines.push(format!("  bundle  {}", compiled.digest));
    lines.push(format!("  layout  {}", paths.layout.display()));
    if let Some(t) = &paths.tarball {
        lines.push(format!("  tarball {}", t.display()));
    }
    lines.push(format!("  values  {}", dir.join("values.yaml").display()));
    lines.push(format!(
        "  sbom    {}",
        dir.join("sbom.spdx.json").display()
    ));
    lines.push(format!("  size    {} bytes compressed", image.total_size));
    Ok(Built {
        dir,
        meta,
        summary: lines,
    })
}

/// The gateway executable's digest and the base contents, for the SBOM.
fn sbom_parts(gateway: &GatewaySource, base_meta: &Value) -> Result<(Digest, sbom::BaseContents)> {
    match gateway {
        GatewaySource::Binary(path) => {
            let bytes =
                std::fs::read(path).with_context(|| format!("cannot read `{}`", path.display()))?;
            Ok((
                Digest::of(&bytes),
                sbom::BaseContents::Embedded(sbom::embedded_base_files()),
            ))
        }
        GatewaySource::Base { layout, tag } => {
            let base = oci::read_image(layout, tag.as_deref())?;
            let bytes = base
                .read_file(IMAGE_PATH)?
                .with_context(|| format!("base image has no `{IMAGE_PATH}`"))?;
            let reference = base_meta["reference"]
                .as_str()
                .map(str::to_owned)
                .or_else(|| base.ref_name.clone())
                .unwrap_or_else(|| "a local OCI layout".to_owned());
            Ok((
                Digest::of(&bytes),
                sbom::BaseContents::Image {
                    reference,
                    digest: base.manifest_digest,
                },
            ))
        }
    }
}

/// A build output directory (`build.json`) or a project to build into `out`.
pub fn built_or_build(
    path: &Path,
    make_args: impl FnOnce() -> BuildArgs,
    output: Output,
) -> Result<Built> {
    let meta_path = path.join("build.json");
    if meta_path.is_file() {
        let meta: Value = serde_json::from_slice(
            &std::fs::read(&meta_path)
                .with_context(|| format!("cannot read `{}`", meta_path.display()))?,
        )
        .with_context(|| format!("`{}` is not JSON", meta_path.display()))?;
        return Ok(Built {
            dir: path.to_owned(),
            meta,
            summary: Vec::new(),
        });
    }
    if path.join("mgw.yaml").is_file() {
        return build(&make_args(), output);
    }
    anyhow::bail!(
        "`{}` is neither a project (no `mgw.yaml`) nor a build output directory (no `build.json`); pass a project or `<out>/<name>`",
        path.display()
    )
}
