//! Composing the gateway image: which layers, entrypoint, ports, labels and
//! annotations an mgw image has. The bytes are written by [`crate::oci`]; the
//! bundle comes from [`crate::project`].
//!
//! Layers, bottom first: the base (`base-image/`), the static gateway binary, the
//! bundle. Only the last one changes when an API changes, so registries and
//! nodes reuse the first two. The entrypoint pins the bundle digest, so the
//! gateway refuses a bundle that was modified after the build. Nothing here reads
//! the clock or the environment: every input is in [`BakeOptions`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use mgw_bundle::Bundle;

use crate::gateway_binary::{self, IMAGE_PATH};
use crate::oci::{self, ImageSpec, LayerBuilder, LayerInput, OciError};
use crate::project::Compiled;

/// Where the bundle sits inside every image.
pub const BUNDLE_PATH: &str = "/etc/mgw/bundle.json";
/// Label and annotation keys of our own.
pub const LABEL_BUNDLE_DIGEST: &str = "io.mgw.bundle.digest";
pub const LABEL_APIS: &str = "io.mgw.apis";
pub const LABEL_BUILDER: &str = "io.mgw.builder.version";

/// Where the gateway layers come from.
#[derive(Debug, Clone)]
pub enum GatewaySource {
    /// A static binary on disk, baked on top of the embedded base layer.
    Binary(PathBuf),
    /// An existing image layout holding the gateway; its layers are reused. When
    /// the tag names an image index, the `architecture` image is taken.
    Base {
        layout: PathBuf,
        tag: Option<String>,
        architecture: String,
    },
}

#[derive(Debug, Clone)]
pub struct BakeOptions {
    pub repository: String,
    pub tag: String,
    pub source_date_epoch: u64,
    pub source: Option<String>,
    pub revision: Option<String>,
    /// Extra config labels and manifest annotations; mgw's own keys win.
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub gateway: GatewaySource,
    /// The native filters the gateway carries (a project's `runtime/`), for the
    /// [`crate::runtime::LABEL_FILTERS`] label; `None`: the stock gateway, no label.
    pub filters: Option<Vec<String>>,
    /// Where compressed gateway layers are cached (`<mgw cache dir>/layers`);
    /// `None`: compress every time.
    pub layer_cache: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum BakeError {
    #[error(transparent)]
    Binary(#[from] gateway_binary::BinaryError),
    #[error(transparent)]
    Oci(#[from] OciError),
    #[error("base image `{layout}` has no `{IMAGE_PATH}`; `--base` needs an mgw gateway image")]
    BaseWithoutGateway { layout: String },
}

/// The default tag: `<version>-<first 12 hex of the bundle digest>`.
pub fn default_tag(version: &str, bundle_digest: &str) -> String {
    let hex = bundle_digest.trim_start_matches("sha256:");
    format!("{version}-{}", &hex[..hex.len().min(12)])
}

/// The layer holding the gateway binary at `path`: compressed once per binary
/// (and epoch) when a layer cache directory is given, since it is the same on
/// every rebuild of a project and the slowest layer to compress.
pub fn gateway_layer(path: &Path, layer_cache: Option<&Path>) -> Result<LayerInput, BakeError> {
    let mut gw = LayerBuilder::new();
    gw.add_file_from_disk(IMAGE_PATH, path, 0o755, 0, 0)?;
    let created_by = format!("mgw: gateway binary {IMAGE_PATH}");
    Ok(match layer_cache {
        Some(dir) => LayerInput::cached(gw, created_by, dir),
        None => LayerInput::new(gw, created_by),
    })
}

/// Describes the image for a compiled project.
pub fn image_spec(compiled: &Compiled, opts: &BakeOptions) -> Result<ImageSpec, BakeError> {
    let mut spec = ImageSpec::new(&opts.repository, &opts.tag);
    spec.source_date_epoch = opts.source_date_epoch;
    let epoch = opts.source_date_epoch;

    match &opts.gateway {
        GatewaySource::Binary(path) => {
            spec.architecture = gateway_binary::check(path)?.to_owned();
            // The base layer is the same on every build too: cached like the
            // gateway's (its recipe hashes the 0.2 MB of embedded files;
            // compressing them costs more).
            let (base, created_by) = (
                oci::base::base_layer_entries()?,
                oci::base::BASE_LAYER_CREATED_BY,
            );
            spec.layers.push(match &opts.layer_cache {
                Some(dir) => LayerInput::cached(base, created_by, dir),
                None => LayerInput::new(base, created_by),
            });
            spec.layers
                .push(gateway_layer(path, opts.layer_cache.as_deref())?);
        }
        GatewaySource::Base {
            layout,
            tag,
            architecture,
        } => {
            let base = oci::read_image_for(layout, tag.as_deref(), architecture)?;
            if base.read_file(IMAGE_PATH)?.is_none() {
                return Err(BakeError::BaseWithoutGateway {
                    layout: layout.display().to_string(),
                });
            }
            spec.architecture = base.config.architecture().to_string();
            for layer in base.layers {
                // An mgw image as base: drop its bundle, keep base and gateway.
                if layer.extract_file(BUNDLE_PATH)?.is_none() {
                    spec.layers.push(LayerInput::reuse(layer));
                }
            }
        }
    }
    let mut bundle_layer = LayerBuilder::new();
    bundle_layer.add_file_bytes(BUNDLE_PATH, compiled.bytes.clone(), 0o444, 0, 0)?;
    spec.layers.push(LayerInput::new(
        bundle_layer,
        format!("mgw: bundle {}", compiled.digest),
    ));

    spec.entrypoint = vec![
        IMAGE_PATH.to_owned(),
        "--bundle".to_owned(),
        BUNDLE_PATH.to_owned(),
        "--bundle-digest".to_owned(),
        compiled.digest.clone(),
    ];
    spec.exposed_ports = exposed_ports(&compiled.bundle);

    let summary = &compiled.summary;
    let mut annotations = BTreeMap::new();
    annotations.insert(
        "org.opencontainers.image.title".to_owned(),
        summary.name.clone(),
    );
    annotations.insert(
        "org.opencontainers.image.version".to_owned(),
        summary.version.clone(),
    );
    annotations.insert(
        "org.opencontainers.image.created".to_owned(),
        oci::rfc3339(epoch),
    );
    if let Some(s) = &opts.source {
        annotations.insert("org.opencontainers.image.source".to_owned(), s.clone());
    }
    if let Some(r) = &opts.revision {
        annotations.insert("org.opencontainers.image.revision".to_owned(), r.clone());
    }
    annotations.insert(LABEL_BUNDLE_DIGEST.to_owned(), compiled.digest.clone());
    let mut labels = summary.labels.clone();
    labels.extend(opts.labels.clone());
    labels.extend(annotations.clone());
    labels.insert(LABEL_APIS.to_owned(), apis_label(compiled));
    labels.insert(
        LABEL_BUILDER.to_owned(),
        env!("CARGO_PKG_VERSION").to_owned(),
    );
    if let Some(filters) = &opts.filters {
        labels.insert(crate::runtime::LABEL_FILTERS.to_owned(), filters.join(","));
    }
    spec.labels = labels;
    let mut all_annotations = opts.annotations.clone();
    all_annotations.extend(annotations);
    spec.annotations = all_annotations;
    Ok(spec)
}

/// `name@version` of each API, comma-separated.
fn apis_label(compiled: &Compiled) -> String {
    compiled
        .summary
        .apis
        .iter()
        .map(|a| match &a.version {
            Some(v) => format!("{}@{v}", a.name),
            None => a.name.clone(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Ports of the listeners' default addresses (what the image listens on unless
/// the deployment overrides `MGW_LISTEN`).
fn exposed_ports(bundle: &Bundle) -> std::collections::BTreeSet<String> {
    let no_env = BTreeMap::<String, String>::new();
    [
        &bundle.listeners.api.address,
        &bundle.listeners.admin.address,
    ]
    .into_iter()
    .filter_map(|t| mgw_bundle::env::substitute(t, &no_env).ok())
    .filter_map(|a| a.parse::<SocketAddr>().ok())
    .map(|a| format!("{}/tcp", a.port()))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_tag_uses_twelve_hex() {
        assert_eq!(
            default_tag("1.0.0", "sha256:0123456789abcdef0123"),
            "1.0.0-0123456789ab"
        );
    }
}
