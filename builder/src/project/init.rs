//! `mgw init`: scaffold a project from an existing OpenAPI file.
//!
//! Copies the spec (and every file it `$ref`s, keeping their relative layout — also
//! files in sibling folders such as `../common/Error.yaml`, by copying from their
//! nearest common folder) into `apis/`, and writes a commented `mgw.yaml` whose
//! values come from the spec (name, version, base path) and from the gateway's own
//! defaults, with the upstream URL as a `${VAR:-default}` template so the project
//! builds at once and each environment can point it elsewhere. Each security
//! scheme the spec declares gets a commented `auth.providers` entry of the fitting
//! type, so the first `mgw validate` says which to fill in. It then validates the
//! new project and reports what would still stop a build.
//!
//! Never overwrite: an existing `mgw.yaml` (or a different file where a spec copy
//! would go) is an error, and files are written through a temporary file and a
//! no-clobber rename, so a concurrent writer cannot be overwritten either.

use std::borrow::Cow;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::io::Write;
use std::path::{Path, PathBuf};

use mgw_bundle::{Analytics, ApiKeyProvider, Limits, Listener, Upstream, canonical_template};

use super::error::{Diagnostic, ProjectError};
use super::openapi::{self, ApiSpec, SpecOperation};
use super::refs::{Source, Store};
use super::{MANIFEST_FILE, yaml};

/// Choices `mgw init` leaves to the user.
#[derive(Debug, Clone, Default)]
pub struct InitOptions {
    /// Gateway and API name; default: from the spec's title, else its file name.
    pub name: Option<String>,
    /// Default upstream URL; default `http://127.0.0.1:8000`.
    pub upstream_url: Option<String>,
    /// Also add `runtime/` ([`crate::runtime::scaffold`]), before the new
    /// project is validated (its interceptors need it).
    pub runtime: bool,
}

/// What `init` wrote.
#[derive(Debug, Clone)]
pub struct InitOutcome {
    /// The new `mgw.yaml`.
    pub manifest: PathBuf,
    /// Files written, relative to the project directory, sorted (`mgw.yaml` last).
    pub files: Vec<String>,
    pub name: String,
    pub version: String,
    pub base_path: String,
    /// The variable that sets the upstream URL; `None` when the spec's
    /// `x-wso2-production-endpoints` are the upstreams.
    pub upstream_variable: Option<String>,
    /// The variable's default: the upstream URL, with the spec's base path
    /// ([`upstream_default`]).
    pub upstream_default: String,
    /// What still stops `mgw build` (for instance security requirements this
    /// version cannot enforce); empty when the project builds.
    pub problems: Vec<Diagnostic>,
    /// Warnings of the new project's build (for instance spec endpoints that the
    /// scaffolded upstream overrides).
    pub warnings: Vec<Diagnostic>,
}

const DEFAULT_UPSTREAM: &str = "http://127.0.0.1:8000";

/// A WSO2 Microgateway 3.x project's throttling tiers.
const WSO2_POLICIES: &str = "policies.yaml";

/// Creates a project in `out_dir` from the spec at `spec_path`.
pub fn init(
    spec_path: &Path,
    out_dir: &Path,
    options: &InitOptions,
) -> Result<InitOutcome, ProjectError> {
    let Some(spec_name) = spec_path.file_name().and_then(|n| n.to_str()) else {
        return Err(ProjectError::invalid(vec![Diagnostic::new(
            &super::Origin::file(spec_path.display().to_string()),
            "expected the path of an OpenAPI file",
        )]));
    };
    let (spec_dir, entry) = source_root(spec_path)?;
    let mut store = Store::new(Source::Dir(spec_dir.clone()));
    let spec = openapi::load_spec(&mut store, &entry, None).map_err(ProjectError::invalid)?;

    let manifest_path = out_dir.join(MANIFEST_FILE);
    if manifest_path.exists() {
        return Err(ProjectError::AlreadyExists {
            path: manifest_path.display().to_string(),
        });
    }
    // Check every destination before writing anything.
    let mut copies = Vec::new();
    for rel in &spec.files {
        let from = spec_dir.join(rel);
        let to_rel = format!("apis/{rel}");
        let to = out_dir.join(&to_rel);
        let content = std::fs::read(&from).map_err(|source| ProjectError::Write {
            path: from.display().to_string(),
            source,
        })?;
        if to.exists() {
            if std::fs::read(&to).ok().as_deref() == Some(content.as_slice()) {
                continue;
            }
            return Err(ProjectError::AlreadyExists {
                path: to.display().to_string(),
            });
        }
        copies.push((to_rel, to, content));
    }

    // A WSO2 Microgateway 3.x project keeps its tiers in `policies.yaml` at its
    // root, beside `api_definitions/`: it comes along as part of the project.
    let wso2_policies = if super::compile::is_wso2_project(&spec) {
        [
            spec_dir.join(WSO2_POLICIES),
            spec_dir.join("..").join(WSO2_POLICIES),
        ]
        .into_iter()
        .find(|p| p.is_file())
    } else {
        None
    };
    if let Some(from) = &wso2_policies {
        let content = std::fs::read(from).map_err(|source| ProjectError::Write {
            path: from.display().to_string(),
            source,
        })?;
        let to = out_dir.join(WSO2_POLICIES);
        if to.exists() {
            if std::fs::read(&to).ok().as_deref() != Some(content.as_slice()) {
                return Err(ProjectError::AlreadyExists {
                    path: to.display().to_string(),
                });
            }
        } else {
            copies.push((WSO2_POLICIES.to_owned(), to, content));
        }
    }

    let name = match &options.name {
        Some(n) => n.clone(),
        None => derive_name(&spec, spec_name),
    };
    let version = derive_version(spec.version.as_deref());
    let base_path = spec
        .base_path
        .as_ref()
        .map_or_else(|| "/".to_owned(), |b| b.value.clone());
    let upstream_variable = format!(
        "{}_UPSTREAM_URL",
        name.to_ascii_uppercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect::<String>()
    );
    let upstream_default =
        upstream_default(options.upstream_url.as_deref(), spec.base_path.as_ref());
    let spec_endpoints = spec.policies.endpoints.is_some() && options.upstream_url.is_none();
    let text = render(&Template {
        name: &name,
        version: &version,
        spec_file: &format!("apis/{entry}"),
        base_path: &base_path,
        base_path_note: match spec.base_path.as_ref().map(|b| b.source) {
            Some(openapi::BasePathSource::Wso2Extension) => "from the spec's `x-wso2-basePath`",
            Some(openapi::BasePathSource::Server) => "from the spec's `servers[0].url`",
            Some(openapi::BasePathSource::SwaggerBasePath) => "from the spec's `basePath`",
            None => "the spec names none",
        },
        upstream: &format!("${{{upstream_variable}:-{upstream_default}}}"),
        spec: &spec,
        spec_endpoints,
        wso2_policies: wso2_policies.as_ref().map(|_| WSO2_POLICIES),
    });

    let mut files = Vec::new();
    for (rel, to, content) in copies {
        write_new(&to, &content)?;
        files.push(rel);
    }
    files.sort();
    write_new(&manifest_path, text.as_bytes())?;
    files.push(MANIFEST_FILE.to_owned());
    if options.runtime {
        let runtime =
            crate::runtime::scaffold::write(out_dir).map_err(|e| ProjectError::Write {
                path: out_dir.join(crate::runtime::DIR).display().to_string(),
                source: std::io::Error::other(e.to_string()),
            })?;
        files.extend(runtime);
    }

    let (problems, mut warnings) = match super::build(out_dir) {
        Ok(c) => (Vec::new(), c.warnings),
        Err(ProjectError::Invalid(d)) => (d, Vec::new()),
        Err(e) => (
            vec![Diagnostic::new(
                &super::Origin::file(MANIFEST_FILE),
                e.to_string(),
            )],
            Vec::new(),
        ),
    };
    let left_out = left_out(&spec).len();
    if left_out > 0 {
        warnings.push(Diagnostic::new(
            &super::Origin::file(MANIFEST_FILE),
            format!(
                "{left_out} operation(s) of the spec cannot be served (a path with a query string, not a template, or the path of another operation with other parameter names; a method not in uppercase letters); `apis[0].exclude` leaves them out and says why"
            ),
        ));
    }
    Ok(InitOutcome {
        manifest: manifest_path,
        files,
        name,
        version,
        base_path,
        upstream_variable: (!spec_endpoints).then_some(upstream_variable),
        upstream_default,
        problems,
        warnings,
    })
}

/// The upstream URL `mgw init` writes as the variable's default: `--upstream-url`
/// (else [`DEFAULT_UPSTREAM`]) with the spec's own base path (Swagger 2.0
/// `basePath`, the path of `servers[0].url`) after it when the URL names no path.
/// The application a generated document describes serves its paths under that base
/// path (swaggo's `basePath: /api/v1`, a `servers: [{url: /api/v3}]`), and the
/// gateway forwards the path after the API's base path behind the upstream URL's
/// path: without it, `GET /api/v1/accounts` reached the upstream as `GET /accounts`.
/// An `x-wso2-basePath` is the gateway's own prefix (its endpoints are full URLs),
/// and a URL with a path of its own is kept as given.
fn upstream_default(given: Option<&str>, base: Option<&openapi::SpecBasePath>) -> String {
    let url = given.unwrap_or(DEFAULT_UPSTREAM);
    let Some(base) =
        base.filter(|b| b.source != openapi::BasePathSource::Wso2Extension && b.value != "/")
    else {
        return url.to_owned();
    };
    match url::Url::parse(url) {
        Ok(u) if u.path() == "/" && u.query().is_none() && u.fragment().is_none() => {
            format!("{}{}", url.trim_end_matches('/'), base.value)
        }
        _ => url.to_owned(),
    }
}

/// The folder to copy from and the spec's path inside it: the spec's own folder,
/// or the nearest folder that also holds every file its `$ref`s reach
/// (`spec/swagger.yaml` referring to `../common/Error.yaml` gives the parent of
/// both). Only `.yaml`/`.yml`/`.json` files count. Broken references are left for
/// the real load to report.
fn source_root(spec_path: &Path) -> Result<(PathBuf, String), ProjectError> {
    let unreadable = |msg: String| {
        ProjectError::invalid(vec![Diagnostic::new(
            &super::Origin::file(spec_path.display().to_string()),
            msg,
        )])
    };
    let canonical = spec_path
        .canonicalize()
        .map_err(|e| unreadable(format!("cannot read the spec: {e}")))?;
    let Some(rel) = canonical
        .strip_prefix("/")
        .ok()
        .and_then(Path::to_str)
        .map(str::to_owned)
    else {
        return Err(unreadable("the spec's path is not UTF-8".into()));
    };
    // Discovery only: read the closure from the filesystem root, so references
    // that climb out of the spec's folder resolve.
    let mut store = Store::new(Source::Dir(PathBuf::from("/")));
    let _ = store.load_closure(&rel, None);
    let dir_of = |f: &str| -> Vec<String> {
        let mut segs: Vec<String> = f.split('/').map(str::to_owned).collect();
        segs.pop();
        segs
    };
    let mut common = dir_of(&rel);
    // Only documents widen the folder: a `$ref` that climbs to some other file
    // (`../../../etc/passwd`) is not copied; the real load reports it as leaving
    // the project.
    let is_document = |f: &str| {
        let lower = f.to_ascii_lowercase();
        [".yaml", ".yml", ".json"]
            .iter()
            .any(|e| lower.ends_with(e))
    };
    for f in store.files().into_iter().filter(|f| is_document(f)) {
        let d = dir_of(&f);
        let same = common.iter().zip(&d).take_while(|(a, b)| a == b).count();
        common.truncate(same);
    }
    let root = PathBuf::from("/").join(common.join("/"));
    let entry = rel
        .split('/')
        .skip(common.len())
        .collect::<Vec<_>>()
        .join("/");
    Ok((root, entry))
}

/// Writes a new file atomically; fails if it exists.
fn write_new(path: &Path, content: &[u8]) -> Result<(), ProjectError> {
    let fail = |source| ProjectError::Write {
        path: path.display().to_string(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(fail)?;
    // Mode 0666 minus the umask, as an editor would make it: a project is
    // shared (a build container running as another user reads it).
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("init");
    let mut tmp =
        crate::fs::output_temp_file(dir, &crate::scratch::prefix(name, "tmp")).map_err(fail)?;
    let _scratch = crate::scratch::register(tmp.path());
    tmp.write_all(content).map_err(fail)?;
    tmp.as_file().sync_all().map_err(fail)?;
    tmp.persist_noclobber(path).map_err(|e| {
        if e.error.kind() == std::io::ErrorKind::AlreadyExists {
            ProjectError::AlreadyExists {
                path: path.display().to_string(),
            }
        } else {
            fail(e.error)
        }
    })?;
    Ok(())
}

/// A lowercase slug of the title, else of the file name.
fn derive_name(spec: &ApiSpec, file_name: &str) -> String {
    let stem = file_name.split('.').next().unwrap_or(file_name);
    for candidate in [spec.title.as_deref().unwrap_or(""), stem, "gateway"] {
        let slug = slug(candidate);
        if !slug.is_empty() {
            return slug;
        }
    }
    "gateway".into()
}

fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').chars().take(63).collect()
}

/// The spec's version made usable in an image tag, else `0.1.0`.
fn derive_version(v: Option<&str>) -> String {
    let cleaned: String = v
        .unwrap_or("")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let cleaned = cleaned.trim_start_matches(['.', '-']);
    if cleaned.is_empty() {
        "0.1.0".into()
    } else {
        cleaned.chars().take(100).collect()
    }
}

/// A YAML scalar: plain when it reads back as the same string, else quoted.
fn scalar(s: &str) -> String {
    let probe = yaml::parse(&format!("v: {s}\n"), false);
    match probe {
        Ok(n) if n.get("v").and_then(yaml::Node::as_str) == Some(s) && !s.contains('#') => {
            s.to_owned()
        }
        _ => serde_json::Value::String(s.to_owned()).to_string(),
    }
}

fn duration(ms: u64) -> String {
    humantime::format_duration(std::time::Duration::from_millis(ms)).to_string()
}

/// How a bundle enum value is written (`roundRobin`, `stdout`).
fn wire_name(v: &impl serde::Serialize) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        other => unreachable!("a unit enum serializes as a string, got {other:?}"),
    }
}

fn size(bytes: u64) -> String {
    for (unit, n) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if bytes >= n && bytes % n == 0 {
            return format!("{}{unit}", bytes / n);
        }
    }
    bytes.to_string()
}

struct Template<'a> {
    name: &'a str,
    version: &'a str,
    spec_file: &'a str,
    base_path: &'a str,
    base_path_note: &'a str,
    upstream: &'a str,
    spec: &'a ApiSpec,
    /// The spec names its upstreams (`x-wso2-production-endpoints`).
    spec_endpoints: bool,
    /// A WSO2 `policies.yaml` copied into the project.
    wso2_policies: Option<&'a str>,
}

fn render(t: &Template<'_>) -> String {
    let l = Limits::default();
    let u = Upstream::new(Vec::new());
    let ids: Vec<&str> = t.spec.operations.iter().map(|o| o.id.as_str()).collect();
    let tags = t.spec.all_tags();
    let mut ops_note = format!(
        "    # operationIds: {}",
        ids.iter().take(12).copied().collect::<Vec<_>>().join(", ")
    );
    if ids.len() > 12 {
        ops_note.push_str(&format!(", … ({} in all)", ids.len()));
    }
    let example_id = ids.first().copied().unwrap_or("listPets");
    let tags_line = if tags.is_empty() {
        String::new()
    } else {
        format!("\n    # tags: {}", tags.join(", "))
    };
    format!(
        r#"# mgw project: one immutable gateway image that serves the APIs listed below.
#   mgw validate   checks this project
#   mgw build      compiles it into a bundle and bakes the OCI image
# Values written as ${{VAR}} or ${{VAR:-default}} are resolved by the gateway when it
# starts, so the same image runs unchanged in dev, staging and prod.

# The gateway's name and version. The image tag is `<version>-<12 hex of the
# bundle digest>`, so the version must be valid in a tag (letters, digits, `.`, `_`, `-`).
name: {name}
version: {version}

image:
  # Repository the image is pushed to, without tag (mgw chooses the tag).
  repository: {name}
  # Extra OCI labels for the image.
  labels: {{}}
  # Platforms to build (one image index for several): default linux/amd64.
  # platforms: [linux/amd64, linux/arm64]

# Where the gateway listens: API traffic, and the admin port
# (/healthz, /readyz, /metrics, /info). `host:port`.
listeners:
  api: {api}
  admin: {admin}

# Protection against slow, huge or idle clients. Durations: `500ms`, `10s`, `1m`;
# sizes: `64KiB`, `10MiB`, `1GB`. These are the gateway's defaults.
limits:
  headerReadTimeout: {hrt}
  maxHeaderSize: {mhs}
  maxHeaders: {mh}
  idleTimeout: {it}
  maxBodySize: {mbs}
  shutdownGrace: {sg}

{upstreams_note}# Backends by name; each API (or operation, with `x-mgw-upstream`) uses one.
{c}upstreams:
{c}  {name}:
{c}    # One or more base URLs (the path after the API's `basePath` goes after each
{c}    # URL's own path). Set `{var}` per environment.
{c}    urls:
{c}      - {upstream}
{c}    # `roundRobin` spreads requests over the URLs; `failover` sticks to the first
{c}    # one that accepts connections.
{c}    loadBalancing: {lb}
{c}    connectTimeout: {ct}
{c}    # Time until the upstream's response head arrives.
{c}    timeout: {rt}
{c}    retry:
{c}      # Further attempts after the first (connect failures are always retryable).
{c}      attempts: {ra}
{c}      # Also retry idempotent requests without a body that failed after being sent.
{c}      idempotent: {ri}

# The APIs this gateway serves.
apis:
  - name: {name}
    # OpenAPI 3.0/3.1 or Swagger 2.0, YAML or JSON, relative to this file.
    spec: {spec_file}
    # Path prefix the API is served under ({note}).
    basePath: {base_path}
{c}    upstream: {name}
    # Serve only some operations, by operationId and/or tag; leave out to serve all.
{ops_note}{tags_line}
    # include:
    #   operations: [{example_id}]
    #   tags: []
{exclude}{scope_match}    # Request body limit for this API (default: `limits.maxBodySize`).
    # maxBodySize: 1MiB
    # Check requests against the document (400/415 before the upstream), and
    # report upstream answers that drift from it (never blocking):
    # validation: {{request: true, responses: {{bodySamplePercent: 10}}}}
    # Answer every operation from the document's examples, without an upstream:
    # mock: true
    # Edit requests and responses on the way (see README "Customising the gateway"):
    # transforms:
    #   request:
    #     headers: {{set: {{X-Env: "${{DEPLOY_ENV:-dev}}"}}, remove: [X-Debug]}}
    #   response:
    #     headers: {{remove: [Server]}}

{auth}# One JSON event per request, written off the request path:
# `stdout`, `file` (with `path: /var/log/mgw/analytics.jsonl`) or `none`.
analytics:
  sink: {sink}
{rate_limits}"#,
        name = scalar(t.name),
        version = scalar(t.version),
        api = scalar(Listener::DEFAULT_API),
        admin = scalar(Listener::DEFAULT_ADMIN),
        hrt = duration(l.header_read_timeout_ms),
        mhs = size(l.max_header_bytes),
        mh = l.max_headers,
        it = duration(l.idle_timeout_ms),
        mbs = size(l.max_body_bytes),
        sg = duration(l.shutdown_grace_ms),
        lb = wire_name(&u.load_balancing),
        ct = duration(u.connect_timeout_ms),
        rt = duration(u.request_timeout_ms),
        ra = u.retry.attempts,
        ri = u.retry.idempotent,
        sink = wire_name(&Analytics::default().sink),
        var = t
            .upstream
            .split(":-")
            .next()
            .unwrap_or("")
            .trim_start_matches("${"),
        upstream = scalar(t.upstream),
        spec_file = scalar(t.spec_file),
        note = t.base_path_note,
        base_path = scalar(t.base_path),
        auth = auth_scaffold(t.spec),
        exclude = exclude_scaffold(t.spec),
        scope_match = scope_match_scaffold(t.spec),
        // A WSO2 project's `x-wso2-production-endpoints` stay its upstreams
        // (load balancing, failover, per operation) unless the user opts in.
        c = if t.spec_endpoints { "# " } else { "" },
        upstreams_note = if t.spec_endpoints {
            "# The spec's `x-wso2-production-endpoints` are the upstreams. To set the URL per\n# environment instead, uncomment `upstreams` and `apis[0].upstream`.\n"
        } else {
            ""
        },
        rate_limits = match t.wso2_policies {
            Some(file) => format!(
                "\n# The WSO2 Microgateway project's throttling tiers (`x-wso2-throttling-tier`\n# names them), read into rate-limit policies; only tiers in use are compiled.\nrateLimits:\n  wso2Policies: {}\n  # One budget per tier for all replicas together, on Redis (else per replica):\n  # wso2Scope: global\n  # redis:\n  #   url: ${{MGW_REDIS_URL}}\n  #   replicas: ${{MGW_REPLICAS:-1}}\n",
                scalar(file)
            ),
            None => String::new(),
        },
    )
}

/// The `exclude` block: commented out, or — when the spec has operations the
/// gateway cannot serve (a path with a query string, as some public documents
/// write to tell two operations apart) — those operations, each with why, so the
/// new project builds and says what it leaves out.
fn exclude_scaffold(spec: &ApiSpec) -> String {
    let unservable = left_out(spec);
    if unservable.is_empty() {
        return "    # Leave operations out (after `include`), same shape:\n    # exclude:\n    #   operations: []\n".to_owned();
    }
    let mut s =
        String::from("    # Left out: the gateway cannot serve these operations of the spec.\n");
    for (id, why) in &unservable {
        s.push_str(&format!("    #   {id}: {why}\n"));
    }
    let ids: Vec<String> = unservable.iter().map(|(id, _)| scalar(id)).collect();
    s.push_str(&format!(
        "    exclude:\n      operations: [{}]\n",
        ids.join(", ")
    ));
    s
}

/// The operations a new project leaves out, each with why: those the gateway
/// cannot serve, and those on an earlier operation's path.
fn left_out(spec: &ApiSpec) -> Vec<(&str, Cow<'_, str>)> {
    let mut out: Vec<(&str, Cow<'_, str>)> = spec
        .operations
        .iter()
        .filter_map(|o| Some((o.id.as_str(), Cow::from(o.unservable.as_deref()?))))
        .collect();
    out.extend(same_route_as_earlier(spec));
    out
}

/// Operations whose method and path repeat an earlier operation's with other
/// parameter names (Xero's `GET /Invoices/{InvoiceID}/Attachments/{FileName}`
/// next to `…/{AttachmentID}`, told apart by the value): OpenAPI does not allow
/// them, and a gateway routes one method and path once, so each is left out
/// with the operation that serves its requests.
fn same_route_as_earlier(spec: &ApiSpec) -> Vec<(&str, Cow<'_, str>)> {
    let mut first: HashMap<(String, String), &SpecOperation> = HashMap::new();
    let mut out = Vec::new();
    for op in spec.operations.iter().filter(|o| o.unservable.is_none()) {
        let route = (op.method.to_ascii_uppercase(), canonical_template(&op.path));
        match first.entry(route) {
            Entry::Vacant(v) => {
                v.insert(op);
            }
            Entry::Occupied(o) => {
                let kept = o.get();
                let why = format!(
                    "`{} {}` is `{}` of operation `{}` with other parameter names (OpenAPI does not allow that); its requests reach `{}`",
                    op.method.to_ascii_uppercase(),
                    op.path,
                    kept.path,
                    kept.id,
                    kept.id
                );
                out.push((op.id.as_str(), Cow::from(why)));
            }
        }
    }
    out
}

/// A commented `scopeMatch` when some requirement of the spec lists several
/// scopes: OpenAPI needs all of them, but documents such as Xero's and Slack's
/// list alternatives that real tokens never carry together.
fn scope_match_scaffold(spec: &ApiSpec) -> String {
    let several = spec
        .operations
        .iter()
        .filter_map(|o| {
            o.policies
                .security
                .as_ref()
                .or(spec.policies.security.as_ref())
        })
        .any(|sec| {
            sec.value
                .iter()
                .any(|req| req.values().any(|s| s.len() > 1))
        });
    if !several {
        return String::new();
    }
    "    # Some requirements of the spec list several scopes: a token needs all of them\n    # (OpenAPI). If they are alternatives (a scope and its read-only variant), any one:\n    # scopeMatch: any\n".to_owned()
}

/// A scheme's discovery document (`openIdConnectUrl`, or OpenAPI 3.2's
/// `oauth2MetadataUrl`) when it is an absolute `https://` URL, with the issuer it
/// is published under: the URL before `/.well-known/<name>` (OpenID Connect
/// Discovery 1.0 §4), plus any path after it (RFC 8414 §3 inserts the name before
/// the issuer's path).
fn discovery_of(definition: &serde_json::Value) -> Option<(&str, String)> {
    let url = ["openIdConnectUrl", "oauth2MetadataUrl"]
        .iter()
        .find_map(|k| definition.get(*k).and_then(serde_json::Value::as_str))
        .filter(|u| u.starts_with("https://"))?;
    let issuer = match url.split_once("/.well-known/") {
        Some((base, rest)) => match rest.split_once('/') {
            Some((_, path)) => format!("{base}/{path}"),
            None => base.to_owned(),
        },
        None => url.to_owned(),
    };
    Some((url, issuer))
}

/// A commented `auth.providers` block with one entry per security scheme the spec
/// declares (a provider named like the scheme is used for it), or nothing.
/// Uncommenting the `#`-prefixed lines gives valid YAML.
fn auth_scaffold(spec: &ApiSpec) -> String {
    if spec.security_schemes.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "# The spec declares security schemes; each needs a provider of the same name (or\n\
         # map it with `auth.schemes: {scheme: provider}`). Fill in and uncomment:\n\
         #auth:\n\
         #  providers:\n",
    );
    for (name, scheme) in &spec.security_schemes {
        let d = &scheme.definition;
        let field = |k: &str| d.get(k).and_then(serde_json::Value::as_str).unwrap_or("");
        let key = scalar(name);
        match scheme.kind.as_str() {
            "apiKey" => out.push_str(&format!(
                "#    {key}: {{type: apiKey}}    # key in {} `{}`; keys file: {}\n",
                field("in"),
                field("name"),
                ApiKeyProvider::DEFAULT_FILE,
            )),
            "basic" => out.push_str(&format!(
                "#    {key}: {{type: basic}}    # users file: htpasswd (bcrypt)\n"
            )),
            "http" if field("scheme").eq_ignore_ascii_case("basic") => {
                out.push_str(&format!(
                    "#    {key}: {{type: basic}}    # users file: htpasswd (bcrypt)\n"
                ));
            }
            "http" | "oauth2" | "openIdConnect" => {
                out.push_str(&format!(
                    "#    {key}:    # {} bearer tokens: signed JWTs (or `type: introspection`)\n\
                     #      type: jwt\n",
                    scheme.kind
                ));
                // OpenID Connect's discovery document (OpenAPI 3.2's
                // `oauth2MetadataUrl`, RFC 8414, has the same two fields) names the
                // issuer and the JWKS.
                match discovery_of(d) {
                    Some((url, issuer)) => out.push_str(&format!(
                        "#      issuer: {}    # exactly the `issuer` the document at discoveryUrl names\n\
                         #      discoveryUrl: {}\n",
                        scalar(&issuer),
                        scalar(url)
                    )),
                    None => out.push_str(
                        "#      issuer: https://idp.example.com/\n\
                         #      jwksUrl: https://idp.example.com/.well-known/jwks.json\n",
                    ),
                }
            }
            other => out.push_str(&format!(
                "#    # `{name}`: scheme type `{other}` has no provider type in mgw\n"
            )),
        }
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_versions() {
        assert_eq!(
            slug("Swagger Petstore - OpenAPI 3.0"),
            "swagger-petstore-openapi-3-0"
        );
        assert_eq!(slug("  "), "");
        assert_eq!(derive_version(Some("1.0.0+build 5")), "1.0.0-build-5");
        assert_eq!(derive_version(None), "0.1.0");
        assert_eq!(derive_version(Some("-")), "0.1.0");
    }

    /// swaggo's `basePath: /api/v1` (and a `servers[0].url` path) is where the
    /// application serves its paths: the scaffolded upstream URL keeps it, unless
    /// the URL given has a path of its own; an `x-wso2-basePath` is the gateway's.
    #[test]
    fn the_upstream_url_keeps_the_spec_s_base_path() {
        let base = |value: &str, source| openapi::SpecBasePath {
            value: value.to_owned(),
            source,
            origin: super::super::Origin::file("apis/swagger.json"),
        };
        let swag = base("/api/v1", openapi::BasePathSource::SwaggerBasePath);
        let server = base("/api/v3", openapi::BasePathSource::Server);
        let wso2 = base("/pets", openapi::BasePathSource::Wso2Extension);
        let root = base("/", openapi::BasePathSource::Server);
        assert_eq!(
            upstream_default(None, Some(&swag)),
            "http://127.0.0.1:8000/api/v1"
        );
        assert_eq!(
            upstream_default(Some("http://app:8080/"), Some(&server)),
            "http://app:8080/api/v3"
        );
        assert_eq!(
            upstream_default(Some("http://app:8080/base"), Some(&swag)),
            "http://app:8080/base"
        );
        assert_eq!(upstream_default(None, Some(&wso2)), "http://127.0.0.1:8000");
        assert_eq!(upstream_default(None, Some(&root)), "http://127.0.0.1:8000");
        assert_eq!(upstream_default(None, None), "http://127.0.0.1:8000");
    }

    #[test]
    fn a_discovery_document_gives_the_issuer_it_is_published_under() {
        let of = |k: &str, url: &str| {
            discovery_of(&serde_json::json!({"type": "openIdConnect", k: url}))
                .map(|(u, i)| (u.to_owned(), i))
        };
        let keycloak = "https://kc.example/realms/shop/.well-known/openid-configuration";
        assert_eq!(
            of("openIdConnectUrl", keycloak),
            Some((keycloak.into(), "https://kc.example/realms/shop".into()))
        );
        let rfc8414 = "https://as.example/.well-known/oauth-authorization-server/tenant1";
        assert_eq!(
            of("oauth2MetadataUrl", rfc8414),
            Some((rfc8414.into(), "https://as.example/tenant1".into()))
        );
        // Relative or plain-HTTP URLs give no scaffolded discovery.
        assert_eq!(
            of("openIdConnectUrl", "/.well-known/openid-configuration"),
            None
        );
        assert_eq!(
            of(
                "openIdConnectUrl",
                "http://idp/.well-known/openid-configuration"
            ),
            None
        );
    }

    #[test]
    fn scalars_are_quoted_only_when_needed() {
        assert_eq!(scalar("petstore"), "petstore");
        assert_eq!(scalar("1.0"), "\"1.0\"");
        assert_eq!(scalar("true"), "\"true\"");
        assert_eq!(scalar("/v1"), "/v1");
        assert_eq!(scalar("a: b"), "\"a: b\"");
        assert_eq!(
            scalar("${X:-http://127.0.0.1:8000}"),
            "${X:-http://127.0.0.1:8000}"
        );
    }

    #[test]
    fn units_render_like_people_write_them() {
        assert_eq!(duration(10_000), "10s");
        assert_eq!(duration(60_000), "1m");
        assert_eq!(size(64 * 1024), "64KiB");
        assert_eq!(size(10 * 1024 * 1024), "10MiB");
        assert_eq!(size(1000), "1000");
    }
}
