//! Building an image from a project: compile the bundle, bake the image (OCI
//! layout and dual-format tarball), and write the SBOM, `build.json`,
//! `image.digest` and `values.yaml` beside it in `<out>/<name>/`.
//!
//! The library half of `mgw build`, and of `mgw push` and `mgw load` when they
//! are given a project: one [`Inputs`], one [`run`], one [`Built`] that
//! [`crate::push`] and [`crate::load`] take, whether it was just built or read
//! back from a build output directory ([`Built::open`]). `build.json` is
//! [`BuildMeta`], written and read by the same type. This module prints nothing
//! and reads the environment only through [`Inputs::client`]'s [`crate::env::Env`].

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::bake::{self, BakeOptions, GatewaySource};
use crate::deploy::Pinned;
use crate::fs::write_atomic;
use crate::gateway_binary::{self, IMAGE_PATH};
use crate::oci::{self, Digest, OutputPaths};
use crate::project::{self, Compiled, Diagnostic, EnvVar, Summary};
use crate::registry::{ClientOptions, Reference};
use crate::{sbom, transfer};

/// Everything a build takes.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// The project directory (holding `mgw.yaml`).
    pub project: PathBuf,
    /// The image goes to `<out>/<name>/`.
    pub out: PathBuf,
    /// Default: `<version>-<first 12 hex of the bundle digest>`.
    pub tag: Option<String>,
    /// Default: `image.repository` from `mgw.yaml`.
    pub repository: Option<String>,
    /// The static gateway binary (default: [`gateway_binary::locate`]); not used
    /// with `base`.
    pub gateway_binary: Option<PathBuf>,
    /// An image holding the gateway: an OCI layout (`DIR`, `DIR:TAG`) or a
    /// registry reference, pulled into the cache.
    pub base: Option<String>,
    /// `SOURCE_DATE_EPOCH`, unparsed (empty or absent: 0).
    pub source_date_epoch: Option<String>,
    /// `org.opencontainers.image.source` and `.revision` labels.
    pub source: Option<String>,
    pub revision: Option<String>,
    /// Write `image.tar` besides the layout.
    pub tarball: bool,
    /// How to reach a registry to pull `base`, and the environment (cache directory).
    pub client: ClientOptions,
}

/// `build.json`: what was built, for `push`, `load`, `deploy-values` and scripts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildMeta {
    /// `repository:tag`.
    pub reference: String,
    pub repository: String,
    pub tag: String,
    /// The manifest digest.
    #[serde(with = "digest_str")]
    pub digest: Digest,
    /// `repository@digest`.
    pub image: String,
    pub bundle_digest: String,
    pub architecture: String,
    /// Compressed size of all blobs.
    pub size: u64,
    /// The OCI layout, relative to the output directory (`oci`).
    pub layout: String,
    /// The tarball, relative to the output directory, if one was written.
    pub tarball: Option<String>,
    pub layers: Vec<LayerMeta>,
    /// The variables the bundle reads.
    pub env: Vec<EnvVar>,
    /// What the image serves, as `mgw validate --output json` prints it.
    pub summary: Summary,
    /// The SBOM, relative to the output directory.
    pub sbom: String,
    /// The registry image the gateway layers came from (`--base` with a reference).
    pub base: Option<BaseMeta>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LayerMeta {
    #[serde(with = "digest_str")]
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
}

/// A base image pulled from a registry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BaseMeta {
    /// As given to `--base`.
    pub reference: String,
    pub registry: String,
    pub repository: String,
    #[serde(with = "digest_str")]
    pub digest: Digest,
    /// `reference@digest`.
    pub image: String,
}

mod digest_str {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::oci::Digest;

    pub fn serialize<S: Serializer>(d: &Digest, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(d)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl BuildMeta {
    /// Reads `dir/build.json`.
    pub fn read(dir: &Path) -> Result<BuildMeta> {
        let path = dir.join("build.json");
        let bytes = std::fs::read(&path).with_context(|| {
            format!(
                "cannot read `{}`: pass the directory `mgw build` wrote (`<out>/<name>`)",
                path.display()
            )
        })?;
        serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "`{}` is not a `build.json` mgw wrote; build again",
                path.display()
            )
        })
    }

    /// What deployment artifacts pin, with the bundle's drain grace.
    pub fn pinned(&self, repository: Option<&str>, shutdown_grace_ms: u64) -> Pinned {
        Pinned {
            repository: repository.map_or_else(|| self.repository.clone(), str::to_owned),
            tag: self.tag.clone(),
            digest: self.digest.to_string(),
            env: self.env.clone(),
            drain_seconds: shutdown_grace_ms.div_ceil(1000),
        }
    }
}

/// An image in a build output directory.
#[derive(Debug)]
pub struct Built {
    /// `<out>/<name>`.
    pub dir: PathBuf,
    /// Its `build.json`.
    pub meta: BuildMeta,
    /// How the build went, when this process built it.
    pub report: Option<Report>,
}

/// How a build went.
#[derive(Debug)]
pub struct Report {
    /// Problems that did not stop the build (the glue prints them when
    /// [`compile`] returns, before the bake).
    pub warnings: Vec<Diagnostic>,
    pub apis: usize,
    pub routes: usize,
    pub elapsed: Duration,
    /// A `--base` tag resolved now: the reference pinned by digest.
    pub resolved_base: Option<(Reference, Digest)>,
}

impl Built {
    /// The image `mgw build` wrote into `dir`.
    pub fn open(dir: &Path) -> Result<Built> {
        Ok(Built {
            dir: dir.to_owned(),
            meta: BuildMeta::read(dir)?,
            report: None,
        })
    }

    pub fn layout(&self) -> PathBuf {
        self.dir.join(&self.meta.layout)
    }

    pub fn tarball(&self) -> Option<PathBuf> {
        self.meta.tarball.as_ref().map(|t| self.dir.join(t))
    }

    pub fn sbom(&self) -> PathBuf {
        self.dir.join(&self.meta.sbom)
    }
}

/// What a path given to `push` or `load` is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A build output directory (holding `build.json`).
    Output(PathBuf),
    /// A project (holding `mgw.yaml`), to build first.
    Project(PathBuf),
}

impl Target {
    pub fn of(path: &Path) -> Result<Target> {
        if path.join("build.json").is_file() {
            Ok(Target::Output(path.to_owned()))
        } else if path.join("mgw.yaml").is_file() {
            Ok(Target::Project(path.to_owned()))
        } else {
            anyhow::bail!(
                "`{}` is neither a project (no `mgw.yaml`) nor a build output directory (no `build.json`); pass a project or `<out>/<name>`",
                path.display()
            )
        }
    }
}

/// Where `--base` points: a local OCI layout, or a registry reference to pull.
enum BaseArg {
    Layout(PathBuf, Option<String>),
    Registry(Reference),
}

fn parse_base(base: &str) -> Result<BaseArg> {
    let (layout, tag) = oci::image_location(base);
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
/// `image.digest`, `values.yaml` and `sbom.spdx.json` beside it: [`compile`]
/// then [`bake()`].
pub fn run(inputs: &Inputs) -> Result<Built> {
    let started = Instant::now();
    bake(inputs, compile(inputs)?, started)
}

/// The project's bundle, with its warnings (a caller that shows progress prints
/// them before the slower [`bake()`]).
pub fn compile(inputs: &Inputs) -> Result<Compiled, project::ProjectError> {
    project::build(&inputs.project)
}

/// Bakes `compiled` (from [`compile`], started at `started`) into `<out>/<name>/`.
pub fn bake(inputs: &Inputs, compiled: Compiled, started: Instant) -> Result<Built> {
    let summary = &compiled.summary;

    let epoch = match &inputs.source_date_epoch {
        Some(v) if !v.trim().is_empty() => oci::parse_source_date_epoch(v)?,
        _ => 0,
    };
    let mut base_meta = None;
    let mut resolved_base = None;
    let gateway = match &inputs.base {
        Some(base) => match parse_base(base)? {
            BaseArg::Layout(layout, tag) => GatewaySource::Base { layout, tag },
            BaseArg::Registry(reference) => {
                let cache = inputs.client.env.cache_dir();
                let pulled =
                    transfer::pull::pull(&reference, "amd64", &cache, inputs.client.clone())
                        .with_context(|| format!("cannot pull base image `{reference}`"))?;
                if pulled.resolved_tag {
                    resolved_base = Some((reference.clone(), pulled.digest));
                }
                base_meta = Some(BaseMeta {
                    reference: reference.to_string(),
                    registry: reference.registry.clone(),
                    repository: reference.repository.clone(),
                    digest: pulled.digest,
                    image: reference.with_digest(&pulled.digest),
                });
                GatewaySource::Base {
                    layout: pulled.layout,
                    tag: None,
                }
            }
        },
        None => GatewaySource::Binary(gateway_binary::locate(inputs.gateway_binary.as_deref())?),
    };
    let opts = BakeOptions {
        repository: inputs
            .repository
            .clone()
            .unwrap_or_else(|| summary.repository.clone()),
        tag: inputs
            .tag
            .clone()
            .unwrap_or_else(|| bake::default_tag(&summary.version, &compiled.digest)),
        source_date_epoch: epoch,
        source: inputs.source.clone(),
        revision: inputs.revision.clone(),
        gateway,
    };
    let spec = bake::image_spec(&compiled, &opts)?;

    let dir = inputs.out.join(&summary.name);
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create output directory `{}`", dir.display()))?;
    let paths = OutputPaths {
        layout: dir.join("oci"),
        tarball: inputs.tarball.then(|| dir.join("image.tar")),
    };
    let image = oci::write_image(&spec, &paths)?;

    let (gateway_sha256, base_contents) = sbom_parts(&opts.gateway, base_meta.as_ref())?;
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

    let meta = BuildMeta {
        reference: image.reference.clone(),
        repository: opts.repository.clone(),
        tag: image.tag.clone(),
        digest: image.manifest_digest,
        image: format!("{}@{}", opts.repository, image.manifest_digest),
        bundle_digest: compiled.digest.clone(),
        architecture: spec.architecture.clone(),
        size: image.total_size,
        layout: "oci".to_owned(),
        tarball: paths.tarball.as_ref().map(|_| "image.tar".to_owned()),
        layers: image
            .layers
            .iter()
            .map(|l| LayerMeta {
                digest: l.digest,
                size: l.size,
                media_type: l.media_type.clone(),
            })
            .collect(),
        env: compiled.env.clone(),
        summary: summary.clone(),
        sbom: "sbom.spdx.json".to_owned(),
        base: base_meta,
    };
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
    let pinned = meta.pinned(None, compiled.bundle.limits.shutdown_grace_ms);
    write_atomic(
        &dir.join("values.yaml"),
        crate::deploy::helm_values(&pinned).as_bytes(),
    )?;

    let (apis, routes) = (summary.apis.len(), summary.routes);
    Ok(Built {
        dir,
        meta,
        report: Some(Report {
            warnings: compiled.warnings,
            apis,
            routes,
            elapsed: started.elapsed(),
            resolved_base,
        }),
    })
}

/// The gateway executable's digest and the base contents, for the SBOM.
fn sbom_parts(
    gateway: &GatewaySource,
    base_meta: Option<&BaseMeta>,
) -> Result<(Digest, sbom::BaseContents)> {
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
            let reference = base_meta
                .map(|b| b.reference.clone())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_json_reads_back_as_written() {
        let d: Digest = format!("sha256:{}", "ab".repeat(32)).parse().unwrap();
        let meta = BuildMeta {
            reference: "r/x:1".into(),
            repository: "r/x".into(),
            tag: "1".into(),
            digest: d,
            image: format!("r/x@{d}"),
            bundle_digest: "sha256:00".into(),
            architecture: "amd64".into(),
            size: 3,
            layout: "oci".into(),
            tarball: None,
            layers: vec![LayerMeta {
                digest: d,
                size: 1,
                media_type: oci::MEDIA_TYPE_LAYER_GZIP.into(),
            }],
            env: Vec::new(),
            summary: Summary {
                name: "x".into(),
                version: "1".into(),
                repository: "r/x".into(),
                labels: Default::default(),
                apis: vec![project::ApiSummary {
                    name: "x".into(),
                    title: None,
                    version: None,
                    spec: "x.yaml".into(),
                    format: project::openapi::SpecFormat::OpenApi31,
                    base_path: "/".into(),
                    upstream: "u".into(),
                    routes: vec![project::RouteSummary {
                        method: "GET".into(),
                        path: "/x".into(),
                        operation_id: "getX".into(),
                        upstream: "u".into(),
                        rate_limits: Vec::new(),
                        security: vec!["s(read)".into()],
                    }],
                }],
                routes: 1,
            },
            sbom: "sbom.spdx.json".into(),
            base: None,
        };
        let json = serde_json::to_value(&meta).unwrap();
        // The wire names scripts read.
        assert_eq!(json["digest"], d.to_string());
        assert_eq!(json["bundleDigest"], "sha256:00");
        assert_eq!(json["layers"][0]["mediaType"], oci::MEDIA_TYPE_LAYER_GZIP);
        assert!(json["base"].is_null() && json["tarball"].is_null());
        assert_eq!(json["summary"]["apis"][0]["format"], "openapi-3.1");
        assert_eq!(
            json["summary"]["apis"][0]["routes"][0]["operationId"],
            "getX"
        );
        let back: BuildMeta = serde_json::from_value(json).unwrap();
        assert_eq!(back, meta);
    }

    #[test]
    fn a_build_json_that_is_not_ours_is_refused_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("build.json"), br#"{"tag": "1"}"#).unwrap();
        let err = format!("{:#}", Built::open(dir.path()).unwrap_err());
        assert!(
            err.contains("build.json` is not a `build.json` mgw wrote"),
            "{err}"
        );
        assert!(err.contains("missing field"), "{err}");
    }
}
