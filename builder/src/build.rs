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

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::bake::{self, BakeOptions, GatewaySource};
use crate::deploy::Pinned;
use crate::fs::write_atomic_all;
use crate::gateway_binary::{self, IMAGE_PATH};
use crate::oci::{self, Digest, OutputPaths};
use crate::platform::Platform;
use crate::project::{self, Compiled, Diagnostic, EnvVar, Summary};
use crate::registry::{ClientOptions, Reference};
use crate::runtime;
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
    /// More tags `mgw push` sets on the same image (`--tag` given again).
    pub extra_tags: Vec<String>,
    /// Default: `image.repository` from `mgw.yaml`.
    pub repository: Option<String>,
    /// The platforms to build (empty: the host's). More than one gives an image
    /// index with one manifest per platform.
    pub platforms: Vec<Platform>,
    /// The static gateway binary per platform (default: [`gateway_binary::locate`]);
    /// not used with `base`.
    pub gateway_binaries: Vec<(Platform, PathBuf)>,
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
    /// Where the OCI layout goes (default: `<out>/<name>/oci`).
    pub layout_path: Option<PathBuf>,
    /// Where the tarball goes when `tarball` (default: `<out>/<name>/image.tar`).
    pub tarball_path: Option<PathBuf>,
    /// Extra config labels and manifest annotations (`--image-label`,
    /// `--image-annotation`); mgw's own keys win.
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
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
    /// More tags `mgw push` sets on the same digest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_tags: Vec<String>,
    /// What the tag names: the manifest digest, or the image index's digest for
    /// a multi-platform image.
    #[serde(with = "digest_str")]
    pub digest: Digest,
    /// `repository@digest`.
    pub image: String,
    pub bundle_digest: String,
    /// The architecture of the image `layers` describe (the host's when built).
    pub architecture: String,
    /// Each platform's manifest, for a multi-platform image (empty otherwise).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<PlatformMeta>,
    /// Compressed size of all blobs.
    pub size: u64,
    /// The OCI layout, relative to the output directory (`oci`), or absolute
    /// (`--oci-layout-path`).
    pub layout: String,
    /// The tarball, relative to the output directory or absolute (`--tarball`),
    /// if one was written.
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

/// One platform of a multi-platform image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlatformMeta {
    /// `linux/amd64`.
    pub platform: String,
    pub architecture: String,
    /// Its manifest digest.
    #[serde(with = "digest_str")]
    pub digest: Digest,
    /// sha256 of its gateway executable.
    pub gateway_sha256: String,
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

    /// The repository `mgw push` last pushed this image to (`image.ref`, when it
    /// names this build's digest).
    pub fn pushed_repository(&self) -> Option<String> {
        let text = std::fs::read_to_string(self.dir.join("image.ref")).ok()?;
        let (repository, digest) = text.trim().rsplit_once('@')?;
        (digest == self.meta.digest.to_string()).then(|| repository.to_owned())
    }

    /// What deployment artifacts pin: `repository`, else the repository the image
    /// was pushed to (`image.ref`), else the build's; with the bundle's drain grace.
    pub fn pinned(&self, repository: Option<&str>) -> Pinned {
        let grace_ms = std::fs::read(self.dir.join("bundle.json"))
            .ok()
            .and_then(|b| mgw_bundle::Bundle::from_json(&b).ok())
            .map_or(20_000, |b| b.limits.shutdown_grace_ms);
        let pushed = self.pushed_repository();
        self.meta.pinned(repository.or(pushed.as_deref()), grace_ms)
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
    // `--platform`, else `image.platforms` from mgw.yaml, else the host's.
    let platforms = match (inputs.platforms.as_slice(), summary.platforms.as_slice()) {
        ([], []) => vec![Platform::host()],
        ([], list) | (list, _) => list.to_vec(),
    };
    let repository = inputs
        .repository
        .clone()
        .unwrap_or_else(|| summary.repository.clone());
    let tag = inputs
        .tag
        .clone()
        .unwrap_or_else(|| bake::default_tag(&summary.version, &compiled.digest));
    for extra in &inputs.extra_tags {
        oci::image::validate_tag(extra)?;
    }
    let dir = inputs.out.join(&summary.name);
    let runtime_dir = runtime::crate_dir(&inputs.project);
    let cargo = runtime_dir.as_deref().map(|d| runtime::CargoBuild {
        dir: d,
        log_dir: &dir,
        source_date_epoch: epoch,
        env: &inputs.client.env,
    });
    let mut base_meta = None;
    let mut resolved_base = None;
    let mut gateways = Vec::new();
    for &platform in &platforms {
        gateways.push(gateway_source(
            inputs,
            platform,
            cargo.as_ref(),
            &mut base_meta,
            &mut resolved_base,
        )?);
    }
    // A project with `runtime/` labels its image with the filters its gateway
    // carries (not with `--base`: that image's gateway is what it is).
    let filters = match (&runtime_dir, &inputs.base) {
        (Some(_), None) => Some(gateway_filters(&platforms, &gateways)?),
        _ => None,
    };
    if let Some(have) = &filters {
        let missing = project::interceptors::missing(&compiled.filters, have);
        if !missing.is_empty() {
            return Err(project::ProjectError::invalid(missing).into());
        }
    }
    let layer_cache = inputs.client.env.cache_dir().join("layers");
    let mut specs = Vec::new();
    for (&platform, gateway) in platforms.iter().zip(&gateways) {
        let opts = BakeOptions {
            repository: repository.clone(),
            tag: tag.clone(),
            source_date_epoch: epoch,
            source: inputs.source.clone(),
            revision: inputs.revision.clone(),
            labels: inputs.labels.clone(),
            annotations: inputs.annotations.clone(),
            gateway: gateway.clone(),
            filters: filters.clone(),
            layer_cache: Some(layer_cache.clone()),
        };
        let spec = bake::image_spec(&compiled, &opts)?;
        if spec.architecture != platform.architecture() {
            match &inputs.base {
                Some(base) => anyhow::bail!(
                    "`--base {base}` is a linux/{} image: it has no `{platform}` image to build on; pass a base index holding `{platform}`, or drop `{platform}` from `--platform`",
                    spec.architecture
                ),
                None => anyhow::bail!(
                    "the gateway for `{platform}` is a linux/{} executable; pass the {platform} build with `--gateway-binary {platform}=PATH`",
                    spec.architecture
                ),
            }
        }
        specs.push(spec);
    }
    // The docker-archive holds the host's image, else the first.
    let archived = platforms
        .iter()
        .position(|p| *p == Platform::host())
        .unwrap_or(0);

    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create output directory `{}`", dir.display()))?;
    let relative = |given: &Option<PathBuf>, default: &str| match given {
        Some(p) => {
            std::path::absolute(p).with_context(|| format!("cannot resolve `{}`", p.display()))
        }
        None => Ok(PathBuf::from(default)),
    };
    let layout_rel = relative(&inputs.layout_path, "oci")?;
    let tarball_rel = relative(&inputs.tarball_path, "image.tar")?;
    let paths = OutputPaths {
        layout: dir.join(&layout_rel),
        tarball: inputs.tarball.then(|| dir.join(&tarball_rel)),
    };
    let written = oci::write_images(&specs, archived, &paths)?;
    let digest = written.digest();
    let image = &written.images[archived];

    let mut gateway_sha256 = Vec::new();
    let mut base_contents = None;
    for gateway in &gateways {
        let (sha, contents) = sbom_parts(gateway, base_meta.as_ref(), &layer_cache)?;
        gateway_sha256.push(sha);
        base_contents.get_or_insert(contents);
    }
    let sbom_doc = sbom::document(&sbom::SbomInput {
        repository: repository.clone(),
        tag: image.tag.clone(),
        image_digest: digest,
        created: oci::rfc3339(epoch),
        gateway_version: env!("CARGO_PKG_VERSION").to_owned(),
        gateways: if written.index.is_some() {
            platforms
                .iter()
                .zip(&gateway_sha256)
                .map(|(p, sha)| sbom::GatewayFile {
                    platform: Some(p.to_string()),
                    sha256: *sha,
                })
                .collect()
        } else {
            vec![sbom::GatewayFile {
                platform: None,
                sha256: gateway_sha256[0],
            }]
        },
        bundle_digest: compiled.digest.clone(),
        base: base_contents.expect("at least one platform"),
    });
    let platform_meta = if written.index.is_some() {
        platforms
            .iter()
            .zip(&written.images)
            .zip(&gateway_sha256)
            .map(|((p, img), sha)| PlatformMeta {
                platform: p.to_string(),
                architecture: p.architecture().to_owned(),
                digest: img.manifest_digest,
                gateway_sha256: sha.to_string(),
            })
            .collect()
    } else {
        Vec::new()
    };

    let meta = BuildMeta {
        reference: image.reference.clone(),
        repository: repository.clone(),
        tag: image.tag.clone(),
        extra_tags: inputs.extra_tags.clone(),
        digest,
        image: format!("{repository}@{digest}"),
        bundle_digest: compiled.digest.clone(),
        architecture: specs[archived].architecture.clone(),
        platforms: platform_meta,
        size: written.total_size(),
        layout: layout_rel.display().to_string(),
        tarball: paths
            .tarball
            .as_ref()
            .map(|_| tarball_rel.display().to_string()),
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
    let pinned = meta.pinned(None, compiled.bundle.limits.shutdown_grace_ms);
    let sbom_json = format!("{}\n", serde_json::to_string_pretty(&sbom_doc)?);
    let digest_line = format!("{digest}\n");
    let build_json = format!("{}\n", serde_json::to_string_pretty(&meta)?);
    let values = crate::deploy::helm_values(&pinned);
    // Synced together, then renamed in this order.
    write_atomic_all(&[
        (&dir.join("bundle.json"), &compiled.bytes),
        (&dir.join("sbom.spdx.json"), sbom_json.as_bytes()),
        (&dir.join("image.digest"), digest_line.as_bytes()),
        (&dir.join("build.json"), build_json.as_bytes()),
        (&dir.join("values.yaml"), values.as_bytes()),
    ])?;

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

/// Where `platform`'s gateway comes from: `--base` (pulled for that platform
/// when it is a registry reference; the first pull fills `base_meta` and
/// `resolved_base`), else its `--gateway-binary`, else the project's `runtime/`
/// compiled by `cargo`, else the stock binary ([`gateway_binary::locate`]).
fn gateway_source(
    inputs: &Inputs,
    platform: Platform,
    cargo: Option<&runtime::CargoBuild<'_>>,
    base_meta: &mut Option<BaseMeta>,
    resolved_base: &mut Option<(Reference, Digest)>,
) -> Result<GatewaySource> {
    let Some(base) = &inputs.base else {
        let explicit = inputs
            .gateway_binaries
            .iter()
            .rev()
            .find(|(p, _)| *p == platform)
            .map(|(_, path)| path.as_path());
        return Ok(GatewaySource::Binary(match (explicit, cargo) {
            (None, Some(cargo)) => runtime::compile(cargo, platform)?,
            _ => gateway_binary::locate(explicit, platform)?,
        }));
    };
    Ok(match parse_base(base)? {
        BaseArg::Layout(layout, tag) => GatewaySource::Base {
            layout,
            tag,
            architecture: platform.architecture().to_owned(),
        },
        BaseArg::Registry(reference) => {
            let cache = inputs.client.env.cache_dir();
            let pulled = transfer::pull::pull(
                &reference,
                platform.architecture(),
                &cache,
                inputs.client.clone(),
            )
            .with_context(|| format!("cannot pull base image `{reference}` for `{platform}`"))?;
            if pulled.resolved_tag && resolved_base.is_none() {
                *resolved_base = Some((reference.clone(), pulled.digest));
            }
            base_meta.get_or_insert_with(|| BaseMeta {
                reference: reference.to_string(),
                registry: reference.registry.clone(),
                repository: reference.repository.clone(),
                digest: pulled.digest,
                image: reference.with_digest(&pulled.digest),
            });
            GatewaySource::Base {
                layout: pulled.layout,
                tag: None,
                architecture: platform.architecture().to_owned(),
            }
        }
    })
}

/// The filters of the gateway executables (they are one crate built per
/// platform): asked of the host's, else of the first.
fn gateway_filters(platforms: &[Platform], gateways: &[GatewaySource]) -> Result<Vec<String>> {
    let binaries = platforms.iter().zip(gateways).filter_map(|(p, g)| match g {
        GatewaySource::Binary(path) => Some((*p, path)),
        GatewaySource::Base { .. } => None,
    });
    let mut chosen = None;
    for (platform, path) in binaries {
        if chosen.is_none() || platform == Platform::host() {
            chosen = Some((platform, path));
        }
    }
    let (platform, path) = chosen.context("no gateway executable to list the filters of")?;
    Ok(runtime::list_filters(path, platform)?)
}

/// The gateway executable's digest (through the layer cache's stat index: the
/// binary the gateway layer was made of is not read again) and the base
/// contents, for the SBOM.
fn sbom_parts(
    gateway: &GatewaySource,
    base_meta: Option<&BaseMeta>,
    layer_cache: &Path,
) -> Result<(Digest, sbom::BaseContents)> {
    match gateway {
        GatewaySource::Binary(path) => {
            let (digest, _) = oci::file_digest(path, layer_cache)
                .with_context(|| format!("cannot read `{}`", path.display()))?;
            Ok((
                digest,
                sbom::BaseContents::Embedded(sbom::embedded_base_files()),
            ))
        }
        GatewaySource::Base {
            layout,
            tag,
            architecture,
        } => {
            let base = oci::read_image_for(layout, tag.as_deref(), architecture)?;
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
            extra_tags: Vec::new(),
            digest: d,
            image: format!("r/x@{d}"),
            bundle_digest: "sha256:00".into(),
            architecture: "amd64".into(),
            platforms: Vec::new(),
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
                platforms: Vec::new(),
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
                        validates: false,
                        mock: false,
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
