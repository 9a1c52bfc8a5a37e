//! From an image description to a finished image: config, manifest, layout, tarball.
//!
//! [`write_image`] is the one entry point `mgw build` calls. It writes every layer
//! (or copies a reused one, verifying its digest), the config (OCI image config with
//! one history entry per layer and the layers' `diff_ids`) and the manifest as
//! canonical JSON, then the OCI image layout and the OCI-plus-docker archive, all
//! into temporary siblings of the outputs, and renames them into place only when
//! everything is written. It must never read the clock or the host: every timestamp
//! is [`ImageSpec::source_date_epoch`], and the platform is whatever the caller says
//! the gateway binary was built for.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

use oci_spec::image::{
    Arch, ConfigBuilder, Descriptor, HistoryBuilder, ImageConfigurationBuilder,
    ImageManifestBuilder, MediaType, Os, RootFsBuilder,
};

use super::json::to_canonical_json;
use super::layout::{self, LayerInfo, Staging};
use super::{Digest, Layer, LayerBuilder, OciError, archive, layer_cache, rfc3339};

/// Everything that goes into an image. Start from [`ImageSpec::new`], which sets the
/// defaults the gateway image is built for (non-root 65532, `SIGTERM`, linux/amd64,
/// epoch 0), then fill in layers, entrypoint, ports, labels and annotations.
#[derive(Debug, Clone)]
pub struct ImageSpec {
    /// Repository without tag, e.g. `registry.example.com/team/petstore-gw`.
    pub repository: String,
    /// The tag: `org.opencontainers.image.ref.name` in `index.json`, and the tag in
    /// the archive's `RepoTags`.
    pub tag: String,
    /// GOARCH of the gateway binary (`amd64`, `arm64`); never the host's by default.
    pub architecture: String,
    /// GOOS; `linux`.
    pub os: String,
    /// `Entrypoint`; empty means none.
    pub entrypoint: Vec<String>,
    /// `Cmd`; empty means none.
    pub cmd: Vec<String>,
    /// `User`, `uid:gid`.
    pub user: String,
    /// `ExposedPorts`, e.g. `8080/tcp`.
    pub exposed_ports: BTreeSet<String>,
    /// `Env` as `NAME=value`; empty by default.
    pub env: Vec<String>,
    /// `Labels` of the config.
    pub labels: BTreeMap<String, String>,
    /// `StopSignal`.
    pub stop_signal: String,
    /// `WorkingDir`; `None` leaves it to the runtime (`/`).
    pub working_dir: Option<String>,
    /// Seconds since the Unix epoch: every mtime in every layer, and the `created`
    /// time of the config and its history.
    pub source_date_epoch: u64,
    /// Annotations of the manifest (`org.opencontainers.image.*`).
    pub annotations: BTreeMap<String, String>,
    /// The layers, bottom first.
    pub layers: Vec<LayerInput>,
}

impl ImageSpec {
    /// An image with no layers and the gateway's defaults: user `65532:65532`, stop
    /// signal `SIGTERM`, `linux/amd64`, epoch 0, empty env.
    pub fn new(repository: impl Into<String>, tag: impl Into<String>) -> Self {
        Self {
            repository: repository.into(),
            tag: tag.into(),
            architecture: "amd64".to_owned(),
            os: "linux".to_owned(),
            entrypoint: Vec::new(),
            cmd: Vec::new(),
            user: "65532:65532".to_owned(),
            exposed_ports: BTreeSet::new(),
            env: Vec::new(),
            labels: BTreeMap::new(),
            stop_signal: "SIGTERM".to_owned(),
            working_dir: None,
            source_date_epoch: 0,
            annotations: BTreeMap::new(),
            layers: Vec::new(),
        }
    }

    /// `repository:tag`, the name `docker load` gives the image.
    pub fn reference(&self) -> String {
        format!("{}:{}", self.repository, self.tag)
    }
}

/// One layer of an [`ImageSpec`] and its history entry.
#[derive(Debug, Clone)]
pub struct LayerInput {
    pub content: LayerContent,
    /// The history entry's `created_by`, e.g. `mgw: gateway binary`.
    pub created_by: String,
    /// The history entry's optional `comment`.
    pub comment: Option<String>,
}

/// Where a layer's bytes come from.
#[derive(Debug, Clone)]
pub enum LayerContent {
    /// Entries to write as a new layer.
    New(LayerBuilder),
    /// Entries to write as a new layer, whose compressed blob is taken from (or
    /// stored in) the content-addressed layer cache at `cache_dir` (see
    /// `oci::layer_cache`): for the gateway binary, the same on every rebuild.
    Cached {
        entries: LayerBuilder,
        cache_dir: PathBuf,
    },
    /// A layer blob of an existing image layout (from [`layout::read_image`]), copied
    /// as is after its digest is verified (`--base`).
    Reuse(LayerInfo),
}

impl LayerInput {
    /// A new layer from `entries`.
    pub fn new(entries: LayerBuilder, created_by: impl Into<String>) -> Self {
        Self {
            content: LayerContent::New(entries),
            created_by: created_by.into(),
            comment: None,
        }
    }

    /// A new layer from `entries`, compressed once per content and kept in the
    /// layer cache at `cache_dir`.
    pub fn cached(
        entries: LayerBuilder,
        created_by: impl Into<String>,
        cache_dir: impl Into<PathBuf>,
    ) -> Self {
        Self {
            content: LayerContent::Cached {
                entries,
                cache_dir: cache_dir.into(),
            },
            created_by: created_by.into(),
            comment: None,
        }
    }

    /// An existing layer, with its history entry as recorded in its image.
    pub fn reuse(layer: LayerInfo) -> Self {
        Self {
            created_by: layer.created_by.clone().unwrap_or_default(),
            comment: layer.comment.clone(),
            content: LayerContent::Reuse(layer),
        }
    }
}

/// Where [`write_image`] puts its results.
#[derive(Debug, Clone)]
pub struct OutputPaths {
    /// The OCI image layout directory. Created, or replaced if it already holds an
    /// image layout; anything else at this path is an error.
    pub layout: PathBuf,
    /// The tarball that is both an OCI archive and a docker-archive, if wanted.
    pub tarball: Option<PathBuf>,
}

/// What [`write_image`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageOutput {
    /// `repository:tag`.
    pub reference: String,
    pub tag: String,
    /// The image digest: sha256 of the manifest (`repository@<digest>`).
    pub manifest_digest: Digest,
    pub manifest_size: u64,
    pub config_digest: Digest,
    pub config_size: u64,
    /// The layers, bottom first, with `path` inside the final layout directory.
    pub layers: Vec<Layer>,
    /// Sum of the sizes of all blobs: compressed layers, config and manifest (what a
    /// registry stores).
    pub total_size: u64,
    pub layout: PathBuf,
    pub tarball: Option<PathBuf>,
}

/// What [`write_images`] wrote: one image per platform, and the index naming them
/// when there is more than one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImagesOutput {
    /// One per spec, in the order given.
    pub images: Vec<ImageOutput>,
    /// The image index (`application/vnd.oci.image.index.v1+json`) the layout's
    /// `index.json` tags, with its size; `None` for a single image.
    pub index: Option<(Digest, u64)>,
}

impl ImagesOutput {
    /// What the tag names: the index, or the only manifest.
    pub fn digest(&self) -> Digest {
        self.index
            .map_or_else(|| self.images[0].manifest_digest, |(d, _)| d)
    }

    /// Every distinct blob's size summed: layers shared between platforms count once.
    pub fn total_size(&self) -> u64 {
        let mut seen = BTreeSet::new();
        let mut total = self.index.map_or(0, |(_, size)| size);
        for image in &self.images {
            total += image.config_size + image.manifest_size;
            for layer in &image.layers {
                if seen.insert(layer.digest) {
                    total += layer.size;
                }
            }
        }
        total
    }
}

/// Writes the image described by `spec` to `out`, atomically.
pub fn write_image(spec: &ImageSpec, out: &OutputPaths) -> Result<ImageOutput, OciError> {
    let mut written = write_images(std::slice::from_ref(spec), 0, out)?;
    Ok(written.images.remove(0))
}

/// Writes the images described by `specs` (one per platform: same repository and
/// tag, different architectures) into one layout, atomically. With one spec the
/// layout's entry is its manifest; with more it is an image index listing each
/// manifest with its platform (shared layers are stored once). The tarball holds
/// every blob and that entry (an OCI archive) and `specs[archived]` as the
/// docker-archive's one image.
pub fn write_images(
    specs: &[ImageSpec],
    archived: usize,
    out: &OutputPaths,
) -> Result<ImagesOutput, OciError> {
    let Some(first) = specs.first() else {
        return Err(invalid("no image to write"));
    };
    let mut architectures = BTreeSet::new();
    for spec in specs {
        validate(spec)?;
        if spec.repository != first.repository || spec.tag != first.tag {
            return Err(invalid(format!(
                "the images of one index share one name; got `{}` and `{}`",
                first.reference(),
                spec.reference()
            )));
        }
        if !architectures.insert((spec.os.as_str(), spec.architecture.as_str())) {
            return Err(invalid(format!(
                "two images for {}/{}",
                spec.os, spec.architecture
            )));
        }
    }
    if archived >= specs.len() {
        return Err(invalid("the docker-archive image is not one of the images"));
    }
    layout::check_replaceable(&out.layout)?;
    if let Some(tarball) = &out.tarball {
        if tarball.is_dir() {
            return Err(OciError::TarballIsDirectory {
                path: tarball.clone(),
            });
        }
    }

    let staging = Staging::new(&out.layout)?;
    let staged = specs
        .iter()
        .map(|spec| stage(spec, &staging))
        .collect::<Result<Vec<_>, _>>()?;
    let containerd_name = layout::containerd_name(&first.repository, &first.tag);
    let index = if let [only] = staged.as_slice() {
        staging.write_index(
            only.manifest_digest,
            only.manifest_size,
            &first.tag,
            &containerd_name,
            Some((&first.architecture, &first.os)),
        )?;
        None
    } else {
        let manifests = specs
            .iter()
            .zip(&staged)
            .map(|(spec, s)| super::index::Entry {
                digest: s.manifest_digest,
                size: s.manifest_size,
                architecture: &spec.architecture,
                os: &spec.os,
            })
            .collect::<Vec<_>>();
        let bytes = super::index::image_index_json(&manifests, &first.annotations)?;
        let (digest, size) = staging.write_blob(&bytes)?;
        staging.write_index(digest, size, &first.tag, &containerd_name, None)?;
        Some((digest, size))
    };

    let tarball = match &out.tarball {
        Some(dest) => {
            let shown = &staged[archived];
            let docker_manifest = archive::docker_manifest(
                &specs[archived].reference(),
                shown.config_digest,
                &shown.layers,
            )?;
            Some((
                archive::write_archive(
                    staging.path(),
                    &docker_manifest,
                    first.source_date_epoch,
                    dest,
                )?,
                dest,
            ))
        }
        None => None,
    };

    // Everything is written; make it durable in one go, then swap it in. The
    // tarball first: a tarball is a single rename, the directory swap is two.
    staging.sync(tarball.as_ref().map(|((tmp, _), _)| tmp.as_file()))?;
    if let Some(((tmp, _scratch), dest)) = tarball {
        tmp.persist(dest)
            .map_err(|e| OciError::io("move the image tarball into place at", dest)(e.error))?;
        layout::sync_parent(dest);
    }
    staging.commit(&out.layout)?;

    let blobs = out.layout.join("blobs").join("sha256");
    let images = specs
        .iter()
        .zip(staged)
        .map(|(spec, s)| {
            let total_size =
                s.layers.iter().map(|l| l.size).sum::<u64>() + s.config_size + s.manifest_size;
            ImageOutput {
                reference: spec.reference(),
                tag: spec.tag.clone(),
                manifest_digest: s.manifest_digest,
                manifest_size: s.manifest_size,
                config_digest: s.config_digest,
                config_size: s.config_size,
                layers: s
                    .layers
                    .into_iter()
                    .map(|layer| Layer {
                        path: blobs.join(layer.digest.hex()),
                        ..layer
                    })
                    .collect(),
                total_size,
                layout: out.layout.clone(),
                tarball: out.tarball.clone(),
            }
        })
        .collect();
    Ok(ImagesOutput { images, index })
}

/// One image's blobs in a staging layout.
struct Staged {
    layers: Vec<Layer>,
    config_digest: Digest,
    config_size: u64,
    manifest_digest: Digest,
    manifest_size: u64,
}

/// Writes the layers, config and manifest of `spec` into `staging`.
fn stage(spec: &ImageSpec, staging: &Staging) -> Result<Staged, OciError> {
    let epoch = spec.source_date_epoch;
    let created = rfc3339(epoch);
    let mut layers = Vec::with_capacity(spec.layers.len());
    for input in &spec.layers {
        let layer = match &input.content {
            LayerContent::New(entries) => entries.write(staging.blobs(), epoch)?,
            LayerContent::Cached { entries, cache_dir } => {
                layer_cache::write(entries, staging, epoch, cache_dir)?
            }
            LayerContent::Reuse(info) => staging.copy_layer(info)?,
        };
        tracing::debug!(digest = %layer.digest, size = layer.size, created_by = %input.created_by, "layer written");
        layers.push(layer);
    }
    let config = config_json(spec, &layers, &created)?;
    let (config_digest, config_size) = staging.write_blob(&config)?;
    let manifest = manifest_json(spec, &layers, config_digest, config_size)?;
    let (manifest_digest, manifest_size) = staging.write_blob(&manifest)?;
    Ok(Staged {
        layers,
        config_digest,
        config_size,
        manifest_digest,
        manifest_size,
    })
}

fn invalid(message: impl Into<String>) -> OciError {
    OciError::InvalidSpec {
        message: message.into(),
    }
}

fn validate(spec: &ImageSpec) -> Result<(), OciError> {
    validate_repository(&spec.repository)?;
    validate_tag(&spec.tag)?;
    if spec.layers.is_empty() {
        return Err(invalid("an image needs at least one layer"));
    }
    for (what, value) in [("architecture", &spec.architecture), ("os", &spec.os)] {
        if value.is_empty()
            || !value
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        {
            return Err(invalid(format!(
                "{what} `{value}` is not a GOARCH/GOOS name such as `amd64`, `arm64`, `linux`"
            )));
        }
    }
    if let Some(port) = spec.exposed_ports.iter().find(|p| !valid_port(p)) {
        return Err(invalid(format!(
            "exposed port `{port}` is not `<port>`, `<port>/tcp` or `<port>/udp`"
        )));
    }
    if let Some(env) = spec
        .env
        .iter()
        .find(|e| e.split_once('=').is_none_or(|(k, _)| k.is_empty()))
    {
        return Err(invalid(format!("env entry `{env}` is not `NAME=value`")));
    }
    for (what, map) in [("label", &spec.labels), ("annotation", &spec.annotations)] {
        if map.keys().any(String::is_empty) {
            return Err(invalid(format!("a {what} has an empty key")));
        }
    }
    Ok(())
}

/// A repository as `docker load` and registries accept it: lowercase path components
/// of `[a-z0-9._-]`, optionally after a registry host (which may have a `:port`).
fn validate_repository(repository: &str) -> Result<(), OciError> {
    let bad = |why: &str| {
        invalid(format!(
            "repository `{repository}` {why}; expected e.g. `registry.example.com/team/petstore-gw`"
        ))
    };
    if repository.is_empty() || repository.len() > 255 {
        return Err(bad("must be 1 to 255 characters"));
    }
    let mut components = repository.split('/').enumerate().peekable();
    while let Some((index, component)) = components.next() {
        let is_host = index == 0 && components.peek().is_some();
        let allowed = |b: u8| {
            b.is_ascii_lowercase()
                || b.is_ascii_digit()
                || matches!(b, b'.' | b'_' | b'-')
                || (is_host && (b == b':' || b.is_ascii_uppercase()))
        };
        if component.is_empty() {
            return Err(bad("has an empty path component"));
        }
        if !component.bytes().all(allowed) {
            return Err(bad(if component.contains(':') || component.contains('@') {
                "must not contain a tag or digest (set the tag separately)"
            } else {
                "may only contain lowercase letters, digits, `.`, `_`, `-` and `/`"
            }));
        }
    }
    Ok(())
}

/// A tag as the distribution spec defines it: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn validate_tag(tag: &str) -> Result<(), OciError> {
    let valid = !tag.is_empty()
        && tag.len() <= 128
        && !tag.starts_with(['.', '-'])
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(invalid(format!(
            "tag `{tag}` must be 1 to 128 letters, digits, `_`, `.` or `-`, not starting with `.` or `-`"
        )))
    }
}

fn valid_port(port: &str) -> bool {
    let (number, protocol) = port.split_once('/').unwrap_or((port, "tcp"));
    matches!(protocol, "tcp" | "udp" | "sctp") && number.parse::<u16>().is_ok_and(|n| n > 0)
}

fn assemble(what: &'static str) -> impl FnOnce(oci_spec::OciSpecError) -> OciError {
    move |source| OciError::Assemble { what, source }
}

fn config_json(spec: &ImageSpec, layers: &[Layer], created: &str) -> Result<Vec<u8>, OciError> {
    let mut runtime = ConfigBuilder::default()
        .user(spec.user.clone())
        .stop_signal(spec.stop_signal.clone());
    if !spec.entrypoint.is_empty() {
        runtime = runtime.entrypoint(spec.entrypoint.clone());
    }
    if !spec.cmd.is_empty() {
        runtime = runtime.cmd(spec.cmd.clone());
    }
    if !spec.env.is_empty() {
        runtime = runtime.env(spec.env.clone());
    }
    if !spec.exposed_ports.is_empty() {
        runtime = runtime.exposed_ports(spec.exposed_ports.iter().cloned().collect::<Vec<_>>());
    }
    if !spec.labels.is_empty() {
        // A HashMap here; canonical JSON sorts it.
        runtime = runtime.labels(spec.labels.clone().into_iter().collect::<HashMap<_, _>>());
    }
    if let Some(dir) = &spec.working_dir {
        runtime = runtime.working_dir(dir.clone());
    }

    let history = spec
        .layers
        .iter()
        .map(|input| {
            let mut entry = HistoryBuilder::default()
                .created(created.to_owned())
                // Every entry is a real layer; `empty_layer` is omitted, as registries
                // and `docker save` do when it is false.
                .created_by(input.created_by.clone());
            if let Some(comment) = &input.comment {
                entry = entry.comment(comment.clone());
            }
            entry.build().map_err(assemble("config history"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let rootfs = RootFsBuilder::default()
        .typ("layers")
        .diff_ids(
            layers
                .iter()
                .map(|l| l.diff_id.to_string())
                .collect::<Vec<_>>(),
        )
        .build()
        .map_err(assemble("config rootfs"))?;
    let config = ImageConfigurationBuilder::default()
        .created(created.to_owned())
        .architecture(Arch::from(spec.architecture.as_str()))
        .os(Os::from(spec.os.as_str()))
        .config(runtime.build().map_err(assemble("runtime config"))?)
        .rootfs(rootfs)
        .history(history)
        .build()
        .map_err(assemble("config"))?;
    to_canonical_json(&config, "the image config")
}

fn manifest_json(
    spec: &ImageSpec,
    layers: &[Layer],
    config_digest: Digest,
    config_size: u64,
) -> Result<Vec<u8>, OciError> {
    let layer_descriptors = layers
        .iter()
        .map(|l| {
            Descriptor::new(
                MediaType::from(l.media_type.as_str()),
                l.size,
                l.digest.to_oci(),
            )
        })
        .collect::<Vec<_>>();
    let mut manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(Descriptor::new(
            MediaType::ImageConfig,
            config_size,
            config_digest.to_oci(),
        ))
        .layers(layer_descriptors);
    if !spec.annotations.is_empty() {
        manifest = manifest.annotations(
            spec.annotations
                .clone()
                .into_iter()
                .collect::<HashMap<_, _>>(),
        );
    }
    let manifest = manifest.build().map_err(assemble("manifest"))?;
    to_canonical_json(&manifest, "the image manifest")
}

#[cfg(test)]
mod tests {
    use std::fs;

    use serde_json::Value;

    use super::*;
    use crate::oci::base::base_layer_entries;
    use crate::oci::{read_image, read_image_for};

    fn spec() -> ImageSpec {
        let mut app = LayerBuilder::new();
        app.add_file_bytes("/usr/local/bin/app", b"#!app".to_vec(), 0o755, 0, 0)
            .unwrap();
        let mut spec = ImageSpec::new("example.com/team/app", "1.0.0-abc");
        spec.entrypoint = vec!["/usr/local/bin/app".into()];
        spec.exposed_ports = ["9901/tcp".to_owned(), "8080/tcp".to_owned()].into();
        spec.labels = (0..20)
            .map(|i| (format!("label.{i:02}"), i.to_string()))
            .collect();
        spec.annotations = (0..20)
            .map(|i| (format!("org.example.{i:02}"), i.to_string()))
            .collect();
        spec.source_date_epoch = 1_700_000_000;
        spec.layers = vec![
            LayerInput::new(base_layer_entries().unwrap(), "base"),
            LayerInput::new(app, "app"),
        ];
        spec
    }

    fn outputs(dir: &std::path::Path) -> OutputPaths {
        OutputPaths {
            layout: dir.join("image"),
            tarball: Some(dir.join("image.tar")),
        }
    }

    #[test]
    fn config_json_is_canonical_and_complete() {
        let dir = tempfile::tempdir().unwrap();
        let spec = spec();
        let out = write_image(&spec, &outputs(dir.path())).unwrap();
        let blob = |d: Digest| fs::read(out.layout.join("blobs/sha256").join(d.hex())).unwrap();
        let config_bytes = blob(out.config_digest);
        let config: Value = serde_json::from_slice(&config_bytes).unwrap();

        // Compact, and key order is sorted at every level (labels and ports are
        // HashMaps inside oci-spec).
        let text = String::from_utf8(config_bytes.clone()).unwrap();
        assert!(!text.contains('\n') && !text.contains(": "));
        let positions: Vec<usize> = (0..20)
            .map(|i| text.find(&format!("\"label.{i:02}\"")).unwrap())
            .collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]));
        assert!(text.find("\"8080/tcp\"").unwrap() < text.find("\"9901/tcp\"").unwrap());
        assert!(
            text.starts_with(r#"{"architecture":"amd64","config":{"Entrypoint":"#),
            "{text}"
        );

        assert_eq!(config["created"], "2023-11-14T22:13:20Z");
        assert_eq!(config["os"], "linux");
        assert_eq!(config["config"]["User"], "65532:65532");
        assert_eq!(config["config"]["StopSignal"], "SIGTERM");
        assert!(config["config"].get("Env").is_none());
        assert_eq!(config["rootfs"]["type"], "layers");
        let diff_ids: Vec<String> = out.layers.iter().map(|l| l.diff_id.to_string()).collect();
        assert_eq!(config["rootfs"]["diff_ids"], serde_json::json!(diff_ids));
        let history = config["history"].as_array().unwrap();
        assert_eq!(history.len(), 2);
        assert_eq!(history[1]["created_by"], "app");
        assert!(history.iter().all(|h| h.get("empty_layer").is_none()));

        // Digests recomputed from files match.
        assert_eq!(Digest::of(&config_bytes), out.config_digest);
        let manifest_bytes = blob(out.manifest_digest);
        assert_eq!(Digest::of(&manifest_bytes), out.manifest_digest);
        for layer in &out.layers {
            assert_eq!(Digest::of(&fs::read(&layer.path).unwrap()), layer.digest);
        }
        let manifest: Value = serde_json::from_slice(&manifest_bytes).unwrap();
        assert_eq!(manifest["mediaType"], crate::oci::MEDIA_TYPE_MANIFEST);
        assert_eq!(
            manifest["config"]["mediaType"],
            crate::oci::MEDIA_TYPE_CONFIG
        );
        assert_eq!(manifest["config"]["size"], out.config_size);
        assert_eq!(manifest["annotations"]["org.example.07"], "7");
        assert_eq!(
            out.total_size,
            out.layers.iter().map(|l| l.size).sum::<u64>() + out.config_size + out.manifest_size
        );
    }

    #[test]
    fn same_spec_gives_same_digest_and_a_different_epoch_does_not() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let first = write_image(&spec(), &outputs(a.path())).unwrap();
        let second = write_image(&spec(), &outputs(b.path())).unwrap();
        assert_eq!(first.manifest_digest, second.manifest_digest);
        assert_eq!(
            fs::read(a.path().join("image.tar")).unwrap(),
            fs::read(b.path().join("image.tar")).unwrap()
        );
        let mut later = spec();
        later.source_date_epoch += 1;
        let third = write_image(&later, &outputs(tempfile::tempdir().unwrap().path())).unwrap();
        assert_ne!(third.manifest_digest, first.manifest_digest);
    }

    #[test]
    fn rebuilding_replaces_a_layout_and_leaves_no_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let first = write_image(&spec(), &outputs(dir.path())).unwrap();
        let mut changed = spec();
        changed.tag = "2.0.0".into();
        changed.source_date_epoch += 60;
        let second = write_image(&changed, &outputs(dir.path())).unwrap();
        assert_ne!(first.manifest_digest, second.manifest_digest);
        let info = read_image(&second.layout, Some("2.0.0")).unwrap();
        assert_eq!(info.manifest_digest, second.manifest_digest);
        assert!(read_image(&second.layout, Some("1.0.0-abc")).is_err());
        let mut names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["image", "image.tar"]);
        // Outputs get the modes `File::create` would give, not tempfile's 0600.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &std::path::Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
            let reference = dir.path().join("reference");
            fs::File::create(&reference).unwrap();
            let expected = mode(&reference);
            fs::remove_file(&reference).unwrap();
            assert_eq!(mode(&dir.path().join("image.tar")), expected);
            for layer in &second.layers {
                assert_eq!(mode(&layer.path), expected);
            }
        }
    }

    #[test]
    fn a_failed_build_keeps_the_previous_image() {
        let dir = tempfile::tempdir().unwrap();
        let good = write_image(&spec(), &outputs(dir.path())).unwrap();
        let before = fs::read(dir.path().join("image.tar")).unwrap();

        let mut broken = spec();
        let mut layer = LayerBuilder::new();
        let missing = dir.path().join("vanishes");
        fs::write(&missing, b"x").unwrap();
        layer
            .add_file_from_disk("/x", &missing, 0o644, 0, 0)
            .unwrap();
        fs::remove_file(&missing).unwrap();
        broken.layers.push(LayerInput::new(layer, "broken"));
        let err = write_image(&broken, &outputs(dir.path())).unwrap_err();
        assert!(err.to_string().contains("vanishes"), "{err}");

        assert_eq!(fs::read(dir.path().join("image.tar")).unwrap(), before);
        let info = read_image(&good.layout, None).unwrap();
        assert_eq!(info.manifest_digest, good.manifest_digest);
        let names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 2, "temporaries left: {names:?}");
    }

    #[test]
    fn refuses_to_replace_a_directory_that_is_not_a_layout() {
        let dir = tempfile::tempdir().unwrap();
        let precious = dir.path().join("image");
        fs::create_dir(&precious).unwrap();
        fs::write(precious.join("thesis.tex"), b"years of work").unwrap();
        let err = write_image(&spec(), &outputs(dir.path())).unwrap_err();
        assert!(matches!(err, OciError::NotALayout { .. }), "{err}");
        assert!(precious.join("thesis.tex").exists());

        let tarball_dir = tempfile::tempdir().unwrap();
        fs::create_dir(tarball_dir.path().join("image.tar")).unwrap();
        let err = write_image(&spec(), &outputs(tarball_dir.path())).unwrap_err();
        assert!(matches!(err, OciError::TarballIsDirectory { .. }), "{err}");
    }

    #[test]
    fn reused_layers_are_copied_with_their_history() {
        let dir = tempfile::tempdir().unwrap();
        let first = write_image(&spec(), &outputs(dir.path())).unwrap();
        let info = read_image(&first.layout, Some("1.0.0-abc")).unwrap();

        let mut next = spec();
        let mut bundle = LayerBuilder::new();
        bundle
            .add_file_bytes("/etc/mgw/bundle.json", b"{}".to_vec(), 0o444, 0, 0)
            .unwrap();
        next.layers = info.layers.iter().cloned().map(LayerInput::reuse).collect();
        next.layers.push(LayerInput::new(bundle, "bundle"));
        let next_dir = tempfile::tempdir().unwrap();
        let out = write_image(&next, &outputs(next_dir.path())).unwrap();
        assert_eq!(
            out.layers[..2],
            first
                .layers
                .iter()
                .map(|l| Layer {
                    path: out.layout.join("blobs/sha256").join(l.digest.hex()),
                    ..l.clone()
                })
                .collect::<Vec<_>>()[..]
        );
        let reread = read_image(&out.layout, None).unwrap();
        assert_eq!(reread.layers[0].created_by.as_deref(), Some("base"));
        assert_eq!(reread.layers[2].created_by.as_deref(), Some("bundle"));

        // A corrupted source blob is refused.
        let mut corrupt = info.layers[1].clone();
        fs::write(&corrupt.blob_path, b"tampered").unwrap();
        corrupt.size = 8;
        let mut bad = spec();
        bad.layers = vec![LayerInput::reuse(corrupt)];
        let err = write_image(&bad, &outputs(tempfile::tempdir().unwrap().path())).unwrap_err();
        assert!(matches!(err, OciError::DigestMismatch { .. }), "{err}");
    }

    /// `spec()` for `arch`, its app layer differing per platform.
    fn platform_spec(arch: &str) -> ImageSpec {
        let mut spec = spec();
        spec.architecture = arch.to_owned();
        let mut app = LayerBuilder::new();
        app.add_file_bytes("/usr/local/bin/app", arch.as_bytes().to_vec(), 0o755, 0, 0)
            .unwrap();
        spec.layers[1] = LayerInput::new(app, "app");
        spec
    }

    #[test]
    fn several_platforms_make_an_index_sharing_the_common_layers() {
        let specs = [platform_spec("amd64"), platform_spec("arm64")];
        let dir = tempfile::tempdir().unwrap();
        let out = write_images(&specs, 1, &outputs(dir.path())).unwrap();
        let (index_digest, _) = out.index.expect("an index for two platforms");
        assert_eq!(out.digest(), index_digest);

        let layout = dir.path().join("image");
        let entry: Value =
            serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
        let entries = entry["manifests"].as_array().unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0]["mediaType"], crate::oci::MEDIA_TYPE_INDEX);
        assert_eq!(entries[0]["digest"], index_digest.to_string());
        assert_eq!(
            entries[0]["annotations"]["org.opencontainers.image.ref.name"],
            "1.0.0-abc"
        );
        let index: Value = serde_json::from_slice(
            &fs::read(layout.join("blobs/sha256").join(index_digest.hex())).unwrap(),
        )
        .unwrap();
        assert_eq!(index["mediaType"], crate::oci::MEDIA_TYPE_INDEX);
        let platforms: Vec<(&str, &str)> = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["platform"]["architecture"].as_str().unwrap(),
                    m["digest"].as_str().unwrap(),
                )
            })
            .collect();
        let (amd, arm) = (&out.images[0], &out.images[1]);
        assert_eq!(
            platforms,
            [
                ("amd64", amd.manifest_digest.to_string().as_str()),
                ("arm64", arm.manifest_digest.to_string().as_str())
            ]
        );
        assert_eq!(index["annotations"]["org.example.07"], "7");
        // Base layer shared, app layer per platform.
        assert_eq!(amd.layers[0].digest, arm.layers[0].digest);
        assert_ne!(amd.layers[1].digest, arm.layers[1].digest);
        assert_eq!(
            out.total_size(),
            amd.total_size + arm.total_size - amd.layers[0].size + out.index.unwrap().1
        );

        // Each platform reads back by architecture, with the index it belongs to.
        for (arch, image) in [("amd64", amd), ("arm64", arm)] {
            let info = read_image_for(&layout, Some("1.0.0-abc"), arch).unwrap();
            assert_eq!(info.manifest_digest, image.manifest_digest);
            assert_eq!(info.config.architecture().to_string(), arch);
            assert_eq!(info.index.as_ref().unwrap().digest, index_digest);
        }
        let err = read_image_for(&layout, None, "s390x").unwrap_err();
        assert!(
            err.to_string().contains("no `linux/s390x` image")
                && err.to_string().contains("`linux/arm64`"),
            "{err}"
        );

        // The docker-archive half of the tarball is the image asked for (arm64).
        let tar = fs::read(dir.path().join("image.tar")).unwrap();
        let mut archive = tar::Archive::new(&tar[..]);
        let docker: Value = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap())
            .find(|e| e.path().unwrap().to_str() == Some("manifest.json"))
            .map(|e| serde_json::from_reader(e).unwrap())
            .unwrap();
        assert_eq!(
            docker[0]["Config"],
            format!("blobs/sha256/{}", arm.config_digest.hex())
        );

        // Reproducible: the same specs give the same index.
        let again = tempfile::tempdir().unwrap();
        let second = write_images(&specs, 1, &outputs(again.path())).unwrap();
        assert_eq!(second.digest(), index_digest);
        assert_eq!(
            fs::read(again.path().join("image.tar")).unwrap(),
            tar,
            "the tarball differs between two identical builds"
        );

        // Two images for one platform are refused.
        let twice = [platform_spec("arm64"), platform_spec("arm64")];
        let err =
            write_images(&twice, 0, &outputs(tempfile::tempdir().unwrap().path())).unwrap_err();
        assert!(
            err.to_string().contains("two images for linux/arm64"),
            "{err}"
        );
    }

    #[test]
    fn invalid_descriptions_are_rejected_with_the_value() {
        type Mutation = fn(&mut ImageSpec);
        let cases: [(Mutation, &str); 9] = [
            (|s| s.tag = "-x".into(), "tag `-x`"),
            (|s| s.tag = String::new(), "tag ``"),
            (
                |s| s.repository = "Team/App".into(),
                "repository `Team/App`",
            ),
            (|s| s.repository = "app:1".into(), "must not contain a tag"),
            (|s| s.repository = "a//b".into(), "empty path component"),
            (|s| s.layers.clear(), "at least one layer"),
            (
                |s| s.architecture = "x86_64".into(),
                "architecture `x86_64`",
            ),
            (
                |s| {
                    s.exposed_ports.insert("http".into());
                },
                "exposed port `http`",
            ),
            (|s| s.env = vec!["NOVALUE".into()], "env entry `NOVALUE`"),
        ];
        for (mutate, expected) in cases {
            let mut spec = spec();
            mutate(&mut spec);
            let err =
                write_image(&spec, &outputs(tempfile::tempdir().unwrap().path())).unwrap_err();
            assert!(err.to_string().contains(expected), "{expected}: {err}");
        }
        let mut ok = spec();
        ok.repository = "localhost:5000/app".into();
        assert!(validate(&ok).is_ok());
    }
}
