//! The command line: clap definitions only; each subcommand lives in `commands/`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::platform::{self, Platform};

const EXAMPLES: &str = "\
Examples:
  mgw init openapi.yaml --dir petstore-gw   scaffold a project from an OpenAPI file
  mgw validate petstore-gw                  check the project, print what it serves
  mgw build petstore-gw                     bake the image into ./out/<name>/
  mgw inspect out/petstore                  show digest, layers, labels, routes
  mgw run out/petstore --env PETSTORE_UPSTREAM=http://127.0.0.1:8081
  mgw push petstore-gw                      build, then push to image.repository from mgw.yaml
  mgw load out/petstore                     load the built image into Docker
  mgw deploy-values out/petstore > values.yaml   Helm values pinning the digest

Exit codes: 0 success, 1 failure, 2 usage error, 64 invalid project,
65 the tag already names a different image in the registry (tags are immutable).";

/// Build immutable, per-API gateway images from OpenAPI definitions — no daemon.
#[derive(Debug, Parser)]
#[command(name = "mgw", version, about, after_help = EXAMPLES, propagate_version = true)]
pub struct Cli {
    /// Output format: human-readable text, or one JSON document for scripts.
    #[arg(long, global = true, value_enum, default_value_t = Output::Human)]
    pub output: Output,
    /// Log level for diagnostics on stderr (`error`, `warn`, `info`, `debug`).
    #[arg(long, global = true, env = "MGW_LOG", default_value = "warn")]
    pub log: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Scaffold a project (a commented mgw.yaml) from an OpenAPI file.
    #[command(after_help = "\
Examples:
  mgw init petstore.yaml                        writes ./mgw.yaml and ./apis/petstore.yaml
  mgw init api.json --dir gw --name orders      into ./gw, named `orders`
  mgw init api.yaml --upstream-url http://orders.svc:8080
  mgw init --runtime --dir gw                   add runtime/ (native filters) to the project in ./gw
  mgw init api.yaml --runtime                   both")]
    Init(InitArgs),
    /// Check a project and print the APIs and routes it would serve.
    #[command(after_help = "\
Examples:
  mgw validate                  the project in the current directory
  mgw validate examples/petstore
  mgw validate gw --output json")]
    Validate(ProjectArg),
    /// Compile the bundle and bake a reproducible OCI image (layout + tarball).
    #[command(after_help = "\
Examples:
  mgw build examples/petstore
  mgw build gw --out dist --tag 1.4.0
  mgw build gw --tag 1.4.0 --tag stable         `mgw push` sets both
  mgw build gw --gateway-binary ./mgw-gateway
  mgw build gw --base out/released-gw/oci       reuse a pinned image's gateway layers
  mgw build gw --base ghcr.io/team/gw@sha256:…  the same, pulled from a registry
  mgw build gw --push                           build, then push (see `mgw push --help`)
  mgw build gw --load                           build, then load into Docker
  mgw build gw --push=false                     a script's switch, off
  mgw build gw --platform linux/amd64,linux/arm64   one image index, both platforms
  mgw build gw --platform all --gateway-binary linux/arm64=./arm64/mgw-gateway
  mgw build gw --image-label org.example.team=pets
  mgw build gw --image-annotation org.opencontainers.image.vendor=Acme
  mgw build gw --oci-layout-path /tmp/gw-layout --tarball /tmp/gw.tar
  mgw build gw --tarball none                   the OCI layout only
  MGW_REPOSITORY=ghcr.io/team/gw mgw build gw   the default repository (like KO_DOCKER_REPO)
  SOURCE_DATE_EPOCH=$(git log -1 --format=%ct) mgw build gw

Writes <out>/<name>/oci (OCI image layout), <out>/<name>/image.tar (OCI archive and
docker-archive in one), bundle.json, build.json, image.digest and sbom.spdx.json
(SPDX 2.3). The last line printed is <repository>@sha256:<digest>: the manifest's,
or with several platforms the image index's. The index's image.tar is an OCI archive
of every platform and a docker-archive of the host's image only (what `docker
load` gets).

The repository is --repository, else $MGW_REPOSITORY, else image.repository in mgw.yaml.

Exit codes: 0 success, 1 failure, 2 usage error, 64 invalid project,
65 (with --push) the tag already names a different image in the registry.")]
    Build(BuildArgs),
    /// Show a built image: digest, tags, layers, labels, APIs and routes.
    #[command(after_help = "\
Examples:
  mgw inspect out/petstore
  mgw inspect out/petstore/oci --output json
  mgw inspect out/petstore --platform linux/arm64   one platform of an image index")]
    Inspect(ImageArg),
    /// Push an image to its registry (building the project first when given one).
    #[command(after_help = PUSH_HELP)]
    Push(PushArgs),
    /// Load a built image into a Docker engine (`DOCKER_HOST` or the local socket).
    #[command(after_help = "\
Examples:
  mgw load out/petstore                 the image built into out/petstore
  mgw load examples/petstore            build the project first, then load it
  mgw load out/petstore --platform linux/arm64   another platform of an image index
  mgw load examples/petstore --tag dev --source-date-epoch 0   with `mgw build`'s inputs
  DOCKER_HOST=unix:///run/user/1000/docker.sock mgw load out/petstore

Loads the docker-archive in image.tar (for an image index: the host's platform), or
with --platform that platform's image, written from the layout. Prints the loaded
image id and its tags.")]
    Load(LoadArgs),
    /// Run a built image's gateway locally, straight from the OCI layout (no daemon).
    #[command(after_help = "\
Examples:
  mgw run out/petstore
  mgw run out/petstore --platform linux/arm64   on an arm64 host, from an image index
  mgw run out/petstore --env PETSTORE_UPSTREAM=http://127.0.0.1:8081 --env MGW_LISTEN=127.0.0.1:8080

The gateway reads ${VAR}s from the environment: --env adds to the current one.")]
    Run(RunArgs),
    /// Print Helm values that pin a built image by digest for the `helm/` chart.
    #[command(after_help = "\
Examples:
  mgw deploy-values out/petstore > values.yaml
  mgw deploy-values out/petstore --repository registry.example.com/gw/petstore --out values.yaml
  helm install petstore ./helm -f values.yaml -f values-prod.yaml

`mgw build` also writes <out>/<name>/values.yaml.")]
    DeployValues(DeployValuesArgs),
    /// Pin the gateway image by digest in Kubernetes manifests (like `ko resolve`).
    #[command(after_help = "\
Examples:
  kubectl kustomize k8s/ | mgw resolve --image out/petstore -f - > petstore.yaml
  mgw resolve --image out/petstore -f deploy/ | kubectl apply -f -

Every container `image:` that is `mgw-gateway` (the placeholder in k8s/) or the
image's repository (any tag) becomes <repository>@sha256:<digest>.")]
    Resolve(ResolveArgs),
}

#[derive(Debug, Args)]
pub struct ProjectArg {
    /// The project directory (holding mgw.yaml).
    #[arg(default_value = ".")]
    pub project: PathBuf,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The OpenAPI (3.0, 3.1, 3.2) or Swagger 2.0 file, YAML or JSON (optional with
    /// `--runtime`: then `--dir` is an existing project).
    #[arg(required_unless_present = "runtime")]
    pub spec: Option<PathBuf>,
    /// Where to write the project.
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
    /// Gateway and API name (default: from the spec's title).
    #[arg(long)]
    pub name: Option<String>,
    /// Default upstream URL written into mgw.yaml.
    #[arg(long)]
    pub upstream_url: Option<String>,
    /// Add `runtime/`: a Cargo crate with an example native filter and the
    /// gateway library vendored from this mgw (`mgw build` compiles it).
    #[arg(long)]
    pub runtime: bool,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The project directory (holding mgw.yaml).
    #[arg(default_value = ".")]
    pub project: PathBuf,
    /// Image repository [env: MGW_REPOSITORY] (default: `image.repository` from mgw.yaml).
    #[arg(long)]
    pub repository: Option<String>,
    #[command(flatten)]
    pub inputs: BuildInputArgs,
    /// Write only the OCI layout, no tarball (as `--tarball none`).
    #[arg(long, conflicts_with_all = ["load", "tarball"])]
    pub no_tarball: bool,
    /// Where the tarball goes, or `none` for no tarball [default: <out>/<name>/image.tar],
    /// e.g. `--tarball /tmp/gw.tar`.
    #[arg(long, value_name = "PATH|none")]
    pub tarball: Option<String>,
    /// Where the OCI layout goes [default: <out>/<name>/oci], e.g.
    /// `--oci-layout-path /tmp/gw-layout`.
    #[arg(long, value_name = "DIR")]
    pub oci_layout_path: Option<PathBuf>,
    /// Push the image after building it (see `mgw push`); `--push=false` turns it off,
    /// e.g. in a script that passes it always.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_name = "BOOL", action = clap::ArgAction::Set)]
    pub push: bool,
    /// Load the image into Docker after building it (see `mgw load`).
    #[arg(long)]
    pub load: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// What a build takes besides the project, the same for `build`, `push` and
/// `load` (which build when given a project). Each is `None` unless given on the
/// command line: the environment fallbacks are read through `Env`, and a command
/// given a build output directory refuses these flags instead of ignoring them.
#[derive(Debug, Clone, Default, Args)]
pub struct BuildInputArgs {
    /// Output directory; the image goes to `<out>/<name>/` [default: out].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Image tag (default: `<version>-<first 12 hex of the bundle digest>`); repeatable:
    /// the first names the image in the layout, `mgw push` sets them all, e.g.
    /// `--tag 1.4.0 --tag stable`.
    #[arg(long)]
    pub tag: Vec<String>,
    /// Platforms to build, comma-separated, or `all` (default: the host's); more
    /// than one gives an OCI image index, e.g. `--platform linux/amd64,linux/arm64`.
    #[arg(long, value_name = "LIST", value_parser = parse_platforms)]
    pub platform: Option<PlatformList>,
    /// The static gateway binary to bake in, repeatable as `PLATFORM=PATH` (a bare
    /// `PATH` is the host's platform) [env: MGW_GATEWAY_BINARY] (default: the
    /// workspace's musl build per platform, or `mgw-gateway` next to `mgw`), e.g.
    /// `--gateway-binary linux/arm64=target/aarch64-unknown-linux-musl/release/mgw-gateway`.
    /// Not used with `--base`, whose image brings the gateway.
    #[arg(long, value_name = "[PLATFORM=]PATH")]
    pub gateway_binary: Vec<String>,
    /// An image that already holds the gateway: an OCI layout (`DIR` or `DIR:TAG`)
    /// or a registry reference (`registry/repo:tag`, `…@sha256:…`), pulled into the
    /// cache and verified by digest. Its layers are reused; only the bundle is added.
    #[arg(long)]
    pub base: Option<String>,
    /// Seconds since the epoch for every timestamp in the image (reproducible
    /// builds) [env: SOURCE_DATE_EPOCH] (default: 0).
    #[arg(long, value_name = "SECONDS")]
    pub source_date_epoch: Option<String>,
    /// `org.opencontainers.image.source` label (e.g. the repository URL).
    #[arg(long)]
    pub source: Option<String>,
    /// `org.opencontainers.image.revision` label (e.g. the commit being built).
    #[arg(long)]
    pub revision: Option<String>,
    /// An extra image config label, repeatable, e.g. `--image-label org.example.team=pets`.
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub image_label: Vec<(String, String)>,
    /// An extra manifest annotation, repeatable, e.g.
    /// `--image-annotation org.opencontainers.image.vendor=Acme`.
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub image_annotation: Vec<(String, String)>,
}

impl BuildInputArgs {
    /// The flags given, as typed (`--tag`).
    pub fn given(&self) -> Vec<&'static str> {
        let Self {
            out,
            tag,
            platform,
            gateway_binary,
            base,
            source_date_epoch,
            source,
            revision,
            image_label,
            image_annotation,
        } = self;
        [
            ("--out", out.is_some()),
            ("--tag", !tag.is_empty()),
            ("--platform", platform.is_some()),
            ("--gateway-binary", !gateway_binary.is_empty()),
            ("--base", base.is_some()),
            ("--source-date-epoch", source_date_epoch.is_some()),
            ("--source", source.is_some()),
            ("--revision", revision.is_some()),
            ("--image-label", !image_label.is_empty()),
            ("--image-annotation", !image_annotation.is_empty()),
        ]
        .into_iter()
        .filter_map(|(flag, given)| given.then_some(flag))
        .collect()
    }
}

/// How to reach registries.
#[derive(Debug, Clone, Default, Args)]
pub struct RegistryArgs {
    /// Allow plain `http://` and unverified TLS for a registry that is not on loopback.
    #[arg(long)]
    pub insecure: bool,
    /// Retries per request (and per blob upload) for transient failures [default: 5].
    #[arg(long, value_name = "N")]
    pub retries: Option<u32>,
}

impl RegistryArgs {
    /// The flags given, as typed (`--retries`).
    pub fn given(&self) -> Vec<&'static str> {
        [
            ("--insecure", self.insecure),
            ("--retries", self.retries.is_some()),
        ]
        .into_iter()
        .filter_map(|(flag, given)| given.then_some(flag))
        .collect()
    }
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// A project directory (built first) or a build output directory
    /// (`<out>/<name>`, holding `build.json`).
    #[arg(default_value = ".")]
    pub image: PathBuf,
    /// Repository to push to (default: the build's, i.e. `image.repository` from mgw.yaml).
    #[arg(long)]
    pub repository: Option<String>,
    #[command(
        flatten,
        next_help_heading = "Building a project (refused for a build output)"
    )]
    pub inputs: BuildInputArgs,
    #[command(flatten, next_help_heading = "Registry")]
    pub registry: RegistryArgs,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// A build output directory (`<out>/<name>`, holding `image.tar`) or a project
    /// directory (built first).
    #[arg(default_value = ".")]
    pub image: PathBuf,
    #[command(
        flatten,
        next_help_heading = "Building a project (refused for a build output)"
    )]
    pub inputs: BuildInputArgs,
    #[command(flatten, next_help_heading = "Registry (for a `--base` to pull)")]
    pub registry: RegistryArgs,
}

const PUSH_HELP: &str = "\
Examples:
  mgw push examples/petstore                    build, then push to image.repository
  mgw push out/petstore                         push what `mgw build` wrote
  mgw push gw --repository 127.0.0.1:5000/team/gw
  mgw push gw --tag 1.4.0 --base out/released-gw/oci   build with `mgw build`'s inputs, then push
  mgw push gw --tag 1.4.0 --tag stable          every tag checked first, then all set
  mgw push gw --platform linux/amd64,linux/arm64   every platform's manifest, then the index
  REGISTRY_AUTH_FILE=$HOME/auth.json mgw push out/petstore   podman/skopeo credentials

Build flags (--tag, --out, --base, --gateway-binary, --source-date-epoch, …) apply
only when given a project; with a build output directory they are refused (exit 2).
  MGW_REGISTRY_USERNAME=ci MGW_REGISTRY_PASSWORD=… mgw push gw --output json

Before tagging, the tag is looked up: if it names another image the push stops
(exit 65) and nothing is tagged; if it names this image there is nothing to do.
Blobs the registry has are skipped, base layers are mounted from the base's
repository when the registry holds them, the rest is uploaded from disk in
chunks that resume after a failure. The SBOM (sbom.spdx.json) is attached as an
OCI referrer. Writes <out>/<name>/image.ref and rewrites values.yaml to pin it
(deploy-values and resolve follow it too; with --repository OTHER the SBOM names
OTHER); the last line printed is <repository>@sha256:<digest> (of the image index
for a multi-platform image).

Credentials: MGW_REGISTRY_USERNAME and MGW_REGISTRY_PASSWORD (for CI; only for the
host in MGW_REGISTRY when that is set), else the Docker config ($DOCKER_CONFIG/config.json
or ~/.docker/config.json): credHelpers, credsStore, auths; then $REGISTRY_AUTH_FILE,
then $XDG_RUNTIME_DIR/containers/auth.json (podman, skopeo). They are never printed,
logged or written. Plain http:// is used only for loopback registries or --insecure.

Exit codes: 0 success, 1 failure, 2 usage error, 64 invalid project,
65 the tag already names a different image in the registry: tags are immutable, so
bump `version` in mgw.yaml (or pass a new --tag) instead of overwriting it.";

#[derive(Debug, Args)]
pub struct ImageArg {
    /// A build output directory (`<out>/<name>`) or an OCI layout, optionally `:TAG`.
    pub image: String,
    /// Which image of a multi-platform image (default: the host's), e.g.
    /// `--platform linux/arm64`.
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<Platform>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// A build output directory (`<out>/<name>`) or an OCI layout, optionally `:TAG`.
    pub image: String,
    /// Which image of a multi-platform image (default: the host's), e.g.
    /// `--platform linux/arm64` (to run it, the host must execute arm64).
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<Platform>,
    /// Extra environment for the gateway (`NAME=value`, repeatable).
    #[arg(long = "env", short = 'e', value_name = "NAME=VALUE")]
    pub env: Vec<String>,
}

#[derive(Debug, Args)]
pub struct DeployValuesArgs {
    /// The build output directory (`<out>/<name>`, holding build.json).
    pub image: String,
    /// The repository the image was (or will be) pushed to, if not mgw.yaml's.
    #[arg(long)]
    pub repository: Option<String>,
    /// Write to this file instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ResolveArgs {
    /// The build output directory (`<out>/<name>`, holding build.json).
    #[arg(long)]
    pub image: String,
    /// Manifest files or directories (`-` for standard input); repeatable.
    #[arg(short = 'f', long = "filename", required = true)]
    pub filename: Vec<PathBuf>,
    /// The repository the image was (or will be) pushed to, if not mgw.yaml's.
    #[arg(long)]
    pub repository: Option<String>,
}

/// A parsed `--platform` list (sorted, no repeats).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformList(pub Vec<Platform>);

fn parse_platforms(value: &str) -> Result<PlatformList, String> {
    platform::parse_list(value)
        .map(PlatformList)
        .map_err(|e| e.to_string())
}

/// `KEY=VALUE`, with a non-empty key.
fn parse_key_value(value: &str) -> Result<(String, String), String> {
    match value.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.to_owned())),
        _ => Err(format!("`{value}` is not `KEY=VALUE`")),
    }
}
