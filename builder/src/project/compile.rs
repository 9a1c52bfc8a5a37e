//! Compiling a loaded project into the bundle.
//!
//! Here the files meet: `include` is matched against each spec's operations, every
//! API and operation gets an upstream (from `mgw.yaml`, `x-mgw-upstream` or
//! `x-wso2-production-endpoints`), rate-limit policies named by `mgw.yaml` or the
//! spec (`x-mgw-rate-limit`, `x-wso2-throttling-tier`) are resolved against the
//! declared ones, routes are checked for conflicts across APIs, security
//! requirements are resolved per operation against the providers of `mgw.yaml` (a
//! scheme no provider serves is an error, never an open door), and CORS and
//! verification keys are inlined. The result is run through
//! `mgw_bundle::Config::from_bundle`, the gateway's own check, so an image
//! the builder makes is one the gateway accepts; its problems are mapped back to the
//! project file and key that caused them.
//!
//! Never: emit anything that depends on the machine, the clock or the environment
//! (no timestamps, no absolute paths, `${VAR}` templates left unresolved), iterate
//! a hash map into the output, or let a policy the gateway cannot enforce slip
//! through as an open route.

use std::collections::{BTreeMap, BTreeSet};

use mgw_bundle::env;
use mgw_bundle::{
    Analytics, Api, Bundle, Config, GatewayInfo, Limits, Listeners, Operation, RateLimits,
    SCHEMA_VERSION, Upstream, canonical_template, digest_of, join_paths,
};
use mgw_bundle::{Auth, Cors, CredentialIn, JwtKey, Provider, Sandbox, SecurityScheme, Transforms};
use serde::{Deserialize, Serialize};

use super::error::{Diagnostic, KeyPath, Origin, ProjectError, list, suggestion};
use super::extensions::{Endpoints, Located};
use super::keymap;
use super::manifest::Include;
use super::openapi::{ApiSpec, BasePathSource, SpecFormat, SpecOperation};
use super::transforms;
use super::yaml::Node;
use super::{MANIFEST_FILE, Project};

/// A compiled project.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub bundle: Bundle,
    /// `bundle.to_canonical_json()`: the exact bytes to bake into the image.
    pub bytes: Vec<u8>,
    /// `sha256:<hex>` of `bytes`.
    pub digest: String,
    pub summary: Summary,
    /// Environment variables the bundle's templates use, sorted by name.
    pub env: Vec<EnvVar>,
    /// Problems that do not stop the build (an unused upstream, an overridden
    /// spec endpoint).
    pub warnings: Vec<Diagnostic>,
    /// Native filters the documents name (WSO2 interceptors), where.
    pub filters: Vec<super::interceptors::FilterRef>,
}

/// What the image serves, for `mgw inspect`, labels and build output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub name: String,
    pub version: String,
    pub repository: String,
    pub labels: BTreeMap<String, String>,
    /// `image.platforms` from mgw.yaml (empty: the host's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<crate::platform::Platform>,
    pub apis: Vec<ApiSummary>,
    /// Total number of routes over all APIs.
    pub routes: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiSummary {
    pub name: String,
    /// `info.title` of the spec.
    pub title: Option<String>,
    /// `info.version` of the spec.
    pub version: Option<String>,
    /// Project-relative spec path.
    pub spec: String,
    pub format: SpecFormat,
    pub base_path: String,
    pub upstream: String,
    pub routes: Vec<RouteSummary>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteSummary {
    pub method: String,
    /// Full path template, base path included.
    pub path: String,
    pub operation_id: String,
    pub upstream: String,
    /// Rate-limit policies that apply (API level, then operation level).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rate_limits: Vec<String>,
    /// Who may call: one entry per alternative requirement, `scheme(scope …)`
    /// joined by ` + `, and `anonymous` when a caller without credentials may
    /// too; empty for an open operation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security: Vec<String>,
    /// Requests are validated against the document.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub validates: bool,
    /// Answered from the document's examples, never upstream.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub mock: bool,
}

/// One environment variable the deployment may set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvVar {
    pub name: String,
    /// `None` when some use has no default: the variable must then be set.
    pub default: Option<String>,
    /// Bundle keys whose templates use it.
    pub used_by: Vec<String>,
}

impl EnvVar {
    pub fn required(&self) -> bool {
        self.default.is_none()
    }
}

/// Compiles a loaded project into a validated bundle.
pub fn compile(project: &Project) -> Result<Compiled, ProjectError> {
    let mut c = Compiler::new(project);
    for spec in &project.specs {
        c.warnings.extend(spec.warnings.iter().cloned());
    }
    let bundle = c.bundle();
    // Interceptors name filters of `runtime/`: without one, nothing can run them.
    if !project.has_runtime {
        let refs: Vec<_> = c.filter_refs.iter().cloned().collect();
        c.diags.extend(super::interceptors::without_runtime(&refs));
    }
    if !c.diags.is_empty() {
        return Err(ProjectError::invalid(c.diags));
    }
    let bytes = bundle.to_canonical_json();
    let digest = digest_of(&bytes);
    if let Err(e) = Config::from_bundle(&bundle, digest.clone(), None) {
        let diags = match e {
            mgw_bundle::BundleError::Invalid(problems) => problems
                .into_iter()
                .map(|p| Diagnostic::new(&c.origin_of(&p.key), p.message))
                .collect(),
            other => vec![Diagnostic::new(
                &Origin::file(MANIFEST_FILE),
                other.to_string(),
            )],
        };
        return Err(ProjectError::invalid(diags));
    }
    let summary = summarize(project, &bundle);
    let (env, env_warnings) = env_vars(&bundle);
    c.warnings.extend(env_warnings);
    super::error::sort(&mut c.warnings);
    Ok(Compiled {
        bundle,
        bytes,
        digest,
        summary,
        env,
        warnings: c.warnings,
        filters: c.filter_refs.into_iter().collect(),
    })
}

/// A part of an operation's contract as read (the reader reads every part
/// `compile` can ask for: see `openapi::Reader`), its problems moved to `diags`.
fn taken<T: Clone>(
    r: Option<&Result<T, Vec<Diagnostic>>>,
    diags: &mut Vec<Diagnostic>,
) -> Option<T> {
    match r? {
        Ok(v) => Some(v.clone()),
        Err(d) => {
            diags.extend(d.iter().cloned());
            None
        }
    }
}

/// A spec declares itself a WSO2 Microgateway 3.x project with `x-wso2-basePath`
/// at its root (3.x requires it); such a project keeps WSO2's defaults. Other
/// `x-wso2-*` extensions alone are just settings mgw reads.
pub fn is_wso2_project(spec: &ApiSpec) -> bool {
    spec.base_path
        .as_ref()
        .is_some_and(|b| b.source == BasePathSource::Wso2Extension)
}

/// The scheme name of WSO2's default OAuth2 security.
const WSO2_DEFAULT_SCHEME: &str = "default";

/// WSO2 API Manager's tokens say which environment they are for in `keytype`:
/// `PRODUCTION` or `SANDBOX`. Sandbox tokens go to `x-wso2-sandbox-endpoints`.
const WSO2_KEY_TYPE_CLAIM: &str = "keytype";
const WSO2_SANDBOX_KEY_TYPE: &str = "SANDBOX";

impl<'p> Compiler<'p> {
    fn new(project: &'p Project) -> Self {
        Compiler {
            project,
            diags: Vec::new(),
            warnings: Vec::new(),
            origins: BTreeMap::new(),
            upstreams: BTreeMap::new(),
            routes: BTreeMap::new(),
            used_policies: BTreeSet::new(),
            reported: BTreeSet::new(),
            used_providers: BTreeSet::new(),
            filter_refs: BTreeSet::new(),
        }
    }
}

struct Compiler<'p> {
    project: &'p Project,
    diags: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
    /// Bundle key → where its value came from, to locate the gateway's problems.
    origins: BTreeMap<String, Origin>,
    upstreams: BTreeMap<String, Upstream>,
    /// (method, canonical template) → (API, operationId, origin), for conflicts.
    routes: BTreeMap<(String, String), (String, String, Origin)>,
    /// Rate-limit policies something refers to.
    used_policies: BTreeSet<String>,
    /// Security problems already reported at an origin (once per place).
    reported: BTreeSet<(Origin, String)>,
    /// Providers some operation uses.
    used_providers: BTreeSet<String>,
    /// Native filters named by interceptors.
    filter_refs: BTreeSet<super::interceptors::FilterRef>,
}

fn mpath() -> KeyPath {
    KeyPath::root()
}

impl Compiler<'_> {
    fn manifest_origin(&self, path: &KeyPath) -> Origin {
        self.project.manifest.origin(path)
    }

    fn map(&mut self, bundle_key: impl Into<String>, origin: Origin) {
        self.origins.insert(bundle_key.into(), origin);
    }

    /// The origin recorded for a bundle key, or its closest recorded parent.
    fn origin_of(&self, key: &str) -> Origin {
        let mut k = key;
        loop {
            if let Some(o) = self.origins.get(k) {
                return o.clone();
            }
            match k.rfind(['.', '[']) {
                Some(i) => k = &k[..i],
                None => return Origin::file(MANIFEST_FILE),
            }
        }
    }

    fn bundle(&mut self) -> Bundle {
        let m = &self.project.manifest;
        self.map("gateway.name", self.manifest_origin(&mpath().key("name")));
        self.map(
            "gateway.version",
            self.manifest_origin(&mpath().key("version")),
        );
        let listeners = self.listeners();
        let limits = self.limits();
        let mut apis = Vec::with_capacity(m.apis.len());
        for i in 0..m.apis.len() {
            if let Some(api) = self.api(i) {
                apis.push(api);
            }
        }
        self.declared_upstreams_unused();
        let analytics = self.analytics();
        let rate_limits = self.rate_limits();
        let trusted_proxies = self.trusted_proxies();
        let auth = self.auth();
        for (bundle_key, k) in [
            ("tracing", None),
            (
                "tracing.otlp.endpoint",
                Some(["otlp", "endpoint"].as_slice()),
            ),
            ("tracing.otlp.caFile", Some(["otlp", "caFile"].as_slice())),
            ("tracing.sampleRatio", Some(["sampleRatio"].as_slice())),
            ("tracing.queueSize", Some(["queueSize"].as_slice())),
        ] {
            let path = k
                .unwrap_or_default()
                .iter()
                .fold(mpath().key("tracing"), |p, k| p.key(*k));
            self.map(bundle_key, self.manifest_origin(&path));
        }
        Bundle {
            tracing: m.tracing.clone(),
            rate_limits,
            trusted_proxies,
            schema_version: SCHEMA_VERSION,
            gateway: GatewayInfo {
                name: m.name.clone(),
                version: m.version.clone(),
            },
            listeners,
            limits,
            upstreams: std::mem::take(&mut self.upstreams),
            apis,
            analytics,
            auth,
        }
    }

    fn listeners(&mut self) -> Listeners {
        self.map(
            "listeners.api.address",
            self.manifest_origin(&mpath().key("listeners").key("api")),
        );
        self.map(
            "listeners.admin.address",
            self.manifest_origin(&mpath().key("listeners").key("admin")),
        );
        self.map(
            "listeners.api.tls",
            self.manifest_origin(&mpath().key("listeners").key("api").key("tls")),
        );
        self.project.manifest.listeners.clone()
    }

    fn limits(&mut self) -> Limits {
        let at = mpath().key("limits");
        for (bundle_key, _) in keymap::LIMITS {
            let path = keymap::manifest_path(&at, bundle_key, keymap::LIMITS);
            self.map(format!("limits.{bundle_key}"), self.manifest_origin(&path));
        }
        self.project.manifest.limits.clone()
    }

    fn analytics(&mut self) -> Analytics {
        for key in ["sink", "path", "queueCapacity"] {
            self.map(
                format!("analytics.{key}"),
                self.manifest_origin(&mpath().key("analytics").key(key)),
            );
        }
        self.project.manifest.analytics.clone()
    }

    /// Adds a declared upstream to the bundle (once) and returns its name.
    fn use_declared(&mut self, name: &str) -> String {
        if self.upstreams.contains_key(name) {
            return name.to_owned();
        }
        let Some(u) = self.project.manifest.upstreams.get(name) else {
            return name.to_owned();
        };
        let p = mpath().key("upstreams").key(name);
        let key = format!("upstreams.{name}");
        self.map(key.clone(), self.manifest_origin(&p));
        for (i, _) in u.urls.iter().enumerate() {
            self.map(
                format!("{key}.urls[{i}]"),
                self.manifest_origin(&p.key("urls").index(i)),
            );
        }
        for (bundle_key, _) in keymap::UPSTREAM {
            let path = keymap::manifest_path(&p, bundle_key, keymap::UPSTREAM);
            self.map(format!("{key}.{bundle_key}"), self.manifest_origin(&path));
        }
        if u.tls.as_ref().is_some_and(|t| t.insecure_skip_verify) {
            self.warnings.push(Diagnostic::new(
                &self
                    .project
                    .manifest
                    .key_origin(&p.key("tls").key("insecureSkipVerify")),
                format!(
                    "upstream `{name}` accepts any TLS certificate (`insecureSkipVerify: true`): set `caFile` to its CA instead"
                ),
            ));
        }
        let upstream = u.clone();
        self.upstreams.insert(name.to_owned(), upstream);
        name.to_owned()
    }

    /// Adds an upstream made from spec endpoints under a generated name.
    fn use_endpoints(&mut self, name: String, ep: &Endpoints) -> String {
        let key = format!("upstreams.{name}");
        self.map(key.clone(), ep.origin.clone());
        for (i, u) in ep.urls.iter().enumerate() {
            self.map(format!("{key}.urls[{i}]"), u.origin.clone());
        }
        let upstream = Upstream {
            load_balancing: ep.load_balancing,
            ..Upstream::new(ep.urls.iter().map(|u| u.value.clone()).collect())
        };
        self.upstreams.insert(name.clone(), upstream);
        name
    }

    /// Checks an `x-mgw-upstream` name against the declared upstreams.
    fn named_upstream(&mut self, l: &Located<String>) -> Option<String> {
        let declared = &self.project.manifest.upstreams;
        if declared.contains_key(&l.value) {
            return Some(self.use_declared(&l.value));
        }
        self.diags.push(Diagnostic::new(
            &l.origin,
            format!(
                "no upstream named `{}` in `mgw.yaml`{}; declared upstreams: {}",
                l.value,
                suggestion(&l.value, declared.keys().map(String::as_str)),
                list(declared.keys(), 20)
            ),
        ));
        None
    }

    fn api(&mut self, i: usize) -> Option<Api> {
        let project = self.project;
        let settings = &project.manifest.apis[i];
        let spec = &project.specs[i];
        let ap = mpath().key("apis").index(i);
        let bkey = format!("apis[{i}]");
        self.map(bkey.clone(), self.manifest_origin(&ap));
        self.map(
            format!("{bkey}.name"),
            self.manifest_origin(&ap.key("name")),
        );
        self.map(
            format!("{bkey}.maxBodyBytes"),
            self.manifest_origin(&ap.key("maxBodySize")),
        );

        let selected = self.select(i, spec);

        let base_path = match (&settings.base_path, &spec.base_path) {
            (Some(b), _) => {
                self.map(
                    format!("{bkey}.basePath"),
                    self.manifest_origin(&ap.key("basePath")),
                );
                b.clone()
            }
            (None, Some(b)) => {
                self.map(format!("{bkey}.basePath"), b.origin.clone());
                b.value.clone()
            }
            (None, None) => "/".to_owned(),
        };

        for (k, path) in settings.catch_all.iter().enumerate() {
            if !spec.operations.iter().any(|o| o.path == *path) {
                self.diags.push(Diagnostic::new(
                    &self.manifest_origin(&ap.key("catchAll").index(k)),
                    format!(
                        "`{path}` is not a path of `{}`; write it as the spec does, such as `/proxy/{{path}}`",
                        spec.file
                    ),
                ));
            }
        }
        let api_upstream = self.api_upstream(i, spec);
        let api_sandbox = spec
            .policies
            .sandbox_endpoints
            .as_ref()
            .map(|ep| self.use_endpoints(format!("x-wso2-sandbox:{}", settings.name), ep));
        let api_rate_limit = self.api_rate_limit(i, spec);

        let mut schemes: BTreeMap<String, SecurityScheme> = BTreeMap::new();
        let mut needs_default = Vec::new();
        let mut operations = Vec::with_capacity(selected.len());
        for op in &selected {
            if self.wso2_undefined_tier(spec, op) {
                continue;
            }
            let Some(path) = self.op_path(i, op) else {
                continue;
            };
            let template = join_paths(&base_path, &path);
            let route = (op.method.clone(), canonical_template(&template));
            if let Some((other_api, other_id, other_origin)) = self.routes.get(&route) {
                self.diags.push(Diagnostic::new(
                    &op.origin,
                    format!(
                        "`{} {template}` (operation `{}` of API `{}`) conflicts with operation `{other_id}` of API `{other_api}` at `{}`: one method and path (parameter names aside) can be served only once; change a `basePath` or leave one out with `include`",
                        op.method,
                        op.id,
                        settings.name,
                        other_origin.position()
                    ),
                ));
                continue;
            }
            self.routes.insert(
                route,
                (settings.name.clone(), op.id.clone(), op.origin.clone()),
            );
            let upstream = if let Some(u) = &op.policies.upstream {
                self.named_upstream(u)
            } else {
                op.policies
                    .endpoints
                    .as_ref()
                    .map(|ep| self.use_endpoints(format!("x-wso2:{}:{}", settings.name, op.id), ep))
            };
            let sandbox_upstream = op.policies.sandbox_endpoints.as_ref().map(|ep| {
                self.use_endpoints(format!("x-wso2-sandbox:{}:{}", settings.name, op.id), ep)
            });
            let rate_limit = op
                .policies
                .rate_limit
                .as_ref()
                .and_then(|r| self.policy_ref(r));
            let (security, anonymous) =
                self.op_security(spec, op, &mut schemes, &mut needs_default);
            // `x-mgw-websocket` on the operation, else on the document.
            let websocket = op
                .policies
                .websocket
                .as_ref()
                .or(spec.policies.websocket.as_ref())
                .is_some_and(|w| w.value);
            let (request, mock, responses) = self.op_contract(settings, spec, op);
            operations.push(Operation {
                id: op.id.clone(),
                method: op.method.clone(),
                path,
                rate_limit,
                upstream,
                sandbox_upstream,
                security,
                anonymous,
                websocket,
                transforms: op
                    .policies
                    .transforms
                    .as_ref()
                    .and_then(|l| self.spec_transforms(l)),
                request,
                mock,
                responses,
                filters: super::interceptors::for_operation(
                    &spec.policies,
                    &op.policies,
                    &mut self.filter_refs,
                ),
            });
        }
        self.report_wso2_default(&settings.name, spec, &needs_default);
        // A stable order that does not depend on how the spec is laid out.
        let order = |o: &Operation| (o.path.clone(), o.method.clone());
        operations.sort_by_key(order);
        for (j, o) in operations.iter().enumerate() {
            if let Some(op) = selected.iter().find(|s| s.id == o.id) {
                self.map(format!("{bkey}.operations[{j}]"), op.origin.clone());
                if let (Some(t), Some(l)) = (&o.transforms, &op.policies.transforms) {
                    self.map_spec_transforms(&format!("{bkey}.operations[{j}].transforms"), t, l);
                }
            }
        }
        if operations.is_empty() && self.diags.is_empty() {
            self.diags.push(Diagnostic::new(
                &Origin::file(spec.file.clone()),
                format!(
                    "API `{}` has no operation to serve; add paths to `{}`",
                    settings.name, spec.file
                ),
            ));
        }
        let cors = self.api_cors(i, spec);
        let transforms = self.api_transforms(i, spec);
        let has_sandbox =
            api_sandbox.is_some() || operations.iter().any(|o| o.sandbox_upstream.is_some());
        if settings.sandbox.is_some() && has_sandbox {
            self.map(
                format!("{bkey}.sandbox"),
                self.manifest_origin(&ap.key("sandbox")),
            );
        } else if settings.sandbox.is_some() {
            self.warnings.push(Diagnostic::new(
                &self.manifest_origin(&ap.key("sandbox")),
                format!(
                    "API `{}` has no `x-wso2-sandbox-endpoints`, so `sandbox` selects nothing",
                    settings.name
                ),
            ));
        }
        let sandbox = has_sandbox.then(|| {
            let by = settings.sandbox.clone().unwrap_or(Sandbox {
                claim: Some(WSO2_KEY_TYPE_CLAIM.to_owned()),
                header: None,
                value: WSO2_SANDBOX_KEY_TYPE.to_owned(),
                upstream: None,
            });
            Sandbox {
                upstream: api_sandbox,
                ..by
            }
        });
        self.map(
            format!("{bkey}.mtls"),
            self.manifest_origin(&ap.key("mtls")),
        );
        Some(Api {
            name: settings.name.clone(),
            version: spec.version.clone(),
            base_path,
            upstream: api_upstream?,
            rate_limit: api_rate_limit,
            max_body_bytes: settings.max_body_bytes,
            operations,
            security_schemes: schemes,
            cors,
            mtls: settings.mtls,
            underscore_headers: settings.underscore_headers,
            scope_match: settings.scope_match,
            ignore_trailing_slash: settings.ignore_trailing_slash,
            sandbox,
            transforms,
        })
    }

    /// The request contract of a validated operation and the answer of a mocked
    /// one. The operation's extension wins, then `mgw.yaml`, then the document's.
    fn op_contract(
        &mut self,
        settings: &super::manifest::ApiSettings,
        spec: &ApiSpec,
        op: &SpecOperation,
    ) -> (
        Option<mgw_bundle::contract::RequestContract>,
        Option<mgw_bundle::contract::MockContract>,
        Option<mgw_bundle::contract::ResponseContract>,
    ) {
        let asked =
            |own: &Option<Located<bool>>, manifest: Option<bool>, doc: &Option<Located<bool>>| {
                own.as_ref()
                    .map(|l| l.value)
                    .or(manifest)
                    .or(doc.as_ref().map(|l| l.value))
                    .unwrap_or(false)
            };
        let validate = asked(
            &op.policies.validate_request,
            settings.validation.map(|v| v.request),
            &spec.policies.validate_request,
        );
        let mock = asked(&op.policies.mock, settings.mock, &spec.policies.mock);
        let Some(contract) = &op.contract else {
            return (None, None, None);
        };
        let request = validate
            .then(|| taken(contract.request.as_ref(), &mut self.diags))
            .flatten();
        let mock = mock
            .then(|| taken(contract.mock.as_ref(), &mut self.diags))
            .flatten();
        // No `2XX` or `default` to answer with: an error when this operation
        // asks for a mock itself (`x-mgw-mock: true`), else a warning, and the
        // mock answers 501.
        if let Some(m) = mock
            .as_ref()
            .filter(|m| super::contract::answers_no_success(m))
        {
            let message = format!(
                "operation `{}` declares no `2XX` or `default` response, so a mock has nothing to answer with",
                op.id
            );
            match &op.policies.mock {
                Some(own) if own.value => {
                    self.diags.push(Diagnostic::new(
                        &own.origin,
                        format!("{message}; declare one, or remove `x-mgw-mock`"),
                    ));
                }
                _ => self.warnings.push(Diagnostic::new(
                    &op.origin,
                    format!(
                        "{message}: it answers {} until the document declares one (or leave it out with `exclude`)",
                        m.status
                    ),
                )),
            }
        }
        let responses = settings.validation.and_then(|v| v.responses).and_then(|r| {
            let declared = taken(contract.responses.as_ref(), &mut self.diags)?;
            Some(mgw_bundle::contract::ResponseContract {
                dialect: contract.dialect,
                body_sample_percent: r.body_sample_percent.min(100),
                responses: declared,
            })
        });
        (request, mock, responses)
    }

    /// The operations `include` selects and `exclude` does not leave out, in spec
    /// order. A selected operation the gateway cannot serve is an error that says
    /// how to leave it out.
    fn select<'s>(&mut self, i: usize, spec: &'s ApiSpec) -> Vec<&'s SpecOperation> {
        let settings = &self.project.manifest.apis[i];
        let (include, exclude) = (settings.include.clone(), settings.exclude.clone());
        let ap = mpath().key("apis").index(i);
        if let Some(inc) = &include {
            self.check_selection(&ap.key("include"), inc, spec);
        }
        if let Some(exc) = &exclude {
            self.check_selection(&ap.key("exclude"), exc, spec);
        }
        let matches = |sel: &Include, o: &SpecOperation| {
            sel.operations.contains(&o.id) || o.tags.iter().any(|t| sel.tags.contains(t))
        };
        let selected: Vec<&SpecOperation> = spec
            .operations
            .iter()
            .filter(|o| include.as_ref().is_none_or(|inc| matches(inc, o)))
            .filter(|o| !exclude.as_ref().is_some_and(|exc| matches(exc, o)))
            .collect();
        for op in &selected {
            if let Some(why) = &op.unservable {
                self.diags.push(Diagnostic::new(
                    &op.origin,
                    format!(
                        "{why}, so the gateway cannot serve operation `{}`; leave it out with `exclude: {{operations: [{}]}}` under `apis[{i}]` in `mgw.yaml`",
                        op.id, op.id
                    ),
                ));
            }
        }
        selected
    }

    /// Reports operationIds and tags an `include`/`exclude` names that the spec
    /// does not have.
    fn check_selection(&mut self, at: &KeyPath, sel: &Include, spec: &ApiSpec) {
        let ids: BTreeSet<&str> = spec.operations.iter().map(|o| o.id.as_str()).collect();
        for (k, id) in sel.operations.iter().enumerate() {
            if !ids.contains(id.as_str()) {
                self.diags.push(Diagnostic::new(
                    &self.manifest_origin(&at.key("operations").index(k)),
                    format!(
                        "no operation `{id}` in `{}`{}; its operationIds are {}",
                        spec.file,
                        suggestion(id, ids.iter().copied()),
                        list(&ids, 40)
                    ),
                ));
            }
        }
        let tags = spec.all_tags();
        for (k, tag) in sel.tags.iter().enumerate() {
            if !tags.contains(tag) {
                self.diags.push(Diagnostic::new(
                    &self.manifest_origin(&at.key("tags").index(k)),
                    format!(
                        "no operation in `{}` has tag `{tag}`{}; its tags are {}",
                        spec.file,
                        suggestion(tag, tags.iter().map(String::as_str)),
                        list(&tags, 40)
                    ),
                ));
            }
        }
    }

    /// `apis[i].upstream`, else `x-mgw-upstream`, else `x-wso2-production-endpoints`.
    fn api_upstream(&mut self, i: usize, spec: &ApiSpec) -> Option<String> {
        let settings = &self.project.manifest.apis[i];
        let ap = mpath().key("apis").index(i);
        let key = format!("apis[{i}].upstream");
        let origin = match (
            &settings.upstream,
            &spec.policies.upstream,
            &spec.policies.endpoints,
        ) {
            (Some(_), ..) | (None, None, None) => self.manifest_origin(&ap.key("upstream")),
            (None, Some(u), _) => u.origin.clone(),
            (None, None, Some(ep)) => ep.origin.clone(),
        };
        self.map(key, origin);
        if let Some(name) = &settings.upstream {
            for (what, origin) in [
                (
                    "x-wso2-production-endpoints",
                    spec.policies.endpoints.as_ref().map(|e| &e.origin),
                ),
                (
                    "x-mgw-upstream",
                    spec.policies.upstream.as_ref().map(|u| &u.origin),
                ),
            ] {
                if let Some(o) = origin {
                    self.warnings.push(Diagnostic::new(
                        o,
                        format!(
                            "`{what}` is overridden by `apis[{i}].upstream: {name}` in `mgw.yaml`"
                        ),
                    ));
                }
            }
            if !self.project.manifest.upstreams.contains_key(name) {
                return None; // reported by the manifest check
            }
            return Some(self.use_declared(name));
        }
        if let Some(u) = &spec.policies.upstream {
            return self.named_upstream(u);
        }
        if let Some(ep) = &spec.policies.endpoints {
            return Some(self.use_endpoints(format!("x-wso2:{}", settings.name), ep));
        }
        let declared = &self.project.manifest.upstreams;
        self.diags.push(Diagnostic::new(
            &self.manifest_origin(&ap),
            format!(
                "API `{}` has no upstream: set `upstream` to one of the upstreams declared in `mgw.yaml` ({}), or add `x-wso2-production-endpoints` to `{}`",
                settings.name,
                list(declared.keys(), 20),
                spec.file
            ),
        ));
        None
    }

    /// WSO2 Microgateway secured every operation without a `security`
    /// requirement with OAuth2 unless `x-wso2-disable-security` said otherwise;
    /// a WSO2 spec keeps that meaning. The requirement is the scheme `default`
    /// (the name WSO2 API Manager gives it), served by `auth.schemes.default`,
    /// else a provider named `default`, else the only `jwt` or `introspection`
    /// provider. Without one the operations do not build: never an open route.
    fn wso2_default_scheme(
        &mut self,
        spec: &ApiSpec,
        header: Option<&Located<String>>,
        schemes: &mut BTreeMap<String, SecurityScheme>,
    ) -> Option<String> {
        let auth = &self.project.manifest.auth;
        let bearer = |p: &Provider| matches!(p, Provider::Jwt(_) | Provider::Introspection(_));
        let provider_name = match auth.schemes.get(WSO2_DEFAULT_SCHEME) {
            Some(p) => p.clone(),
            None if auth.providers.contains_key(WSO2_DEFAULT_SCHEME) => {
                WSO2_DEFAULT_SCHEME.to_owned()
            }
            None => {
                let mut bearers = auth.providers.iter().filter(|(_, p)| bearer(p));
                match (bearers.next(), bearers.next()) {
                    (Some((name, _)), None) => name.clone(),
                    _ => return None,
                }
            }
        };
        let provider = auth.providers.get(&provider_name)?; // unknown: reported by the manifest
        if !bearer(provider) {
            self.once(
                &Origin::file(spec.file.clone()),
                WSO2_DEFAULT_SCHEME,
                format!(
                    "`auth.schemes.default` maps WSO2's default OAuth2 security to provider `{provider_name}`; it needs a `jwt` or `introspection` provider"
                ),
            );
            return None;
        }
        let param = header.map_or_else(
            || "authorization".to_owned(),
            |h| h.value.to_ascii_lowercase(),
        );
        let scheme = SecurityScheme {
            provider: provider_name.clone(),
            location: CredentialIn::Header,
            name: param.clone(),
            prefix: Some("Bearer".to_owned()),
        };
        self.used_providers.insert(provider_name);
        let mut bundle_name = WSO2_DEFAULT_SCHEME.to_owned();
        if schemes.get(&bundle_name).is_some_and(|s| *s != scheme) {
            bundle_name = format!("{WSO2_DEFAULT_SCHEME}@{param}");
        }
        schemes.insert(bundle_name.clone(), scheme);
        Some(bundle_name)
    }

    /// Reports the operations of a WSO2 spec that need WSO2's default security
    /// and have no provider for it.
    fn report_wso2_default(&mut self, api: &str, spec: &ApiSpec, ops: &[String]) {
        if ops.is_empty() {
            return;
        }
        let (noun, verb) = if ops.len() == 1 {
            ("operation", "has")
        } else {
            ("operations", "have")
        };
        self.diags.push(Diagnostic::new(
            &Origin::file(spec.file.clone()),
            format!(
                "{noun} {} of API `{api}` {verb} no `security`, so WSO2 Microgateway secures them with OAuth2 by default; declare a `jwt` or `introspection` provider under `auth.providers` in `mgw.yaml` (one named `default`, or map one with `auth.schemes: {{default: <provider>}}`), or add `x-wso2-disable-security: true` to serve them without authentication",
                list(ops, 8),
            ),
        ));
    }

    /// Reports a problem once per (place, subject).
    fn once(&mut self, origin: &Origin, subject: &str, message: String) {
        if self.reported.insert((origin.clone(), subject.to_owned())) {
            self.diags.push(Diagnostic::new(origin, message));
        }
    }

    /// The effective security requirements of one operation, in bundle form,
    /// and whether a caller without credentials may pass (an empty requirement
    /// `{}` among the alternatives: optional authentication). Operation-level
    /// `security` and disable flags override the API's. No requirements: open.
    /// Every scheme named must map to a provider of a fitting type. An
    /// operation of a WSO2 spec without requirements gets WSO2's default; its id
    /// goes to `needs_default` when no provider serves that.
    fn op_security(
        &mut self,
        spec: &ApiSpec,
        op: &SpecOperation,
        schemes: &mut BTreeMap<String, SecurityScheme>,
        needs_default: &mut Vec<String>,
    ) -> (Vec<BTreeMap<String, Vec<String>>>, bool) {
        let api_p = &spec.policies;
        let p = &op.policies;
        let disabled = p
            .disable_security
            .as_ref()
            .or(api_p.disable_security.as_ref())
            .is_some_and(|d| d.value);
        let header = p.auth_header.as_ref().or(api_p.auth_header.as_ref());
        let Some(sec) = p.security.as_ref().or(api_p.security.as_ref()) else {
            if !is_wso2_project(spec) || disabled {
                return (Vec::new(), false);
            }
            let requirements = match self.wso2_default_scheme(spec, header, schemes) {
                Some(name) => vec![BTreeMap::from([(name, Vec::new())])],
                None => {
                    needs_default.push(op.id.clone());
                    Vec::new()
                }
            };
            return (requirements, false);
        };
        // `security: []`, or only `{}`, means anyone may call; `{}` next to
        // other requirements makes them optional: a caller with no credential
        // passes anonymously, one with a credential is identified by it.
        let anonymous = sec.value.iter().any(BTreeMap::is_empty);
        if disabled || sec.value.iter().all(BTreeMap::is_empty) {
            return (Vec::new(), false);
        }
        let mut out = Vec::with_capacity(sec.value.len());
        for req in sec.value.iter().filter(|r| !r.is_empty()) {
            let mut compiled = BTreeMap::new();
            for (name, scopes) in req {
                if let Some(bundle_name) = self.scheme(spec, name, header, &sec.origin, schemes) {
                    compiled.insert(bundle_name, scopes.clone());
                }
            }
            out.push(compiled);
        }
        (out, anonymous)
    }

    /// Resolves one OpenAPI scheme to a bundle scheme (added to `schemes`).
    fn scheme(
        &mut self,
        spec: &ApiSpec,
        name: &str,
        auth_header: Option<&Located<String>>,
        used_at: &Origin,
        schemes: &mut BTreeMap<String, SecurityScheme>,
    ) -> Option<String> {
        let auth = &self.project.manifest.auth;
        let def = spec.security_schemes.get(name)?; // unknown names: reported by the spec reader
        let provider_name = auth
            .schemes
            .get(name)
            .cloned()
            .or_else(|| auth.providers.contains_key(name).then(|| name.to_owned()));
        let Some(provider_name) = provider_name else {
            self.once(
                used_at,
                name,
                format!(
                    "security scheme `{name}` (type `{}`) has no provider, so its operations cannot be secured; declare one under `auth.providers` in `mgw.yaml` and map it with `auth.schemes: {{{name}: <provider>}}`{}",
                    def.kind,
                    if auth.providers.is_empty() {
                        String::new()
                    } else {
                        format!(" (declared providers: {})", list(auth.providers.keys(), 20))
                    }
                ),
            );
            return None;
        };
        let provider = auth.providers.get(&provider_name)?; // unknown: reported by the manifest
        let d = &def.definition;
        let field = |k: &str| d.get(k).and_then(serde_json::Value::as_str).unwrap_or("");
        let bearer_like = matches!(provider, Provider::Jwt(_) | Provider::Introspection(_));
        let (fits, location, param, prefix) = match def.kind.as_str() {
            "apiKey" => {
                let location = match field("in") {
                    "header" => CredentialIn::Header,
                    "query" => CredentialIn::Query,
                    "cookie" => CredentialIn::Cookie,
                    other => {
                        self.once(
                            &def.origin,
                            name,
                            format!(
                                "API keys `in: {other}` are not supported; use `header`, `query` or `cookie`"
                            ),
                        );
                        return None;
                    }
                };
                (
                    matches!(provider, Provider::ApiKey(_)),
                    location,
                    field("name").to_owned(),
                    None,
                )
            }
            "http" if field("scheme").eq_ignore_ascii_case("basic") => (
                matches!(provider, Provider::Basic(_)),
                CredentialIn::Header,
                "authorization".to_owned(),
                Some("Basic".to_owned()),
            ),
            "basic" => (
                matches!(provider, Provider::Basic(_)),
                CredentialIn::Header,
                "authorization".to_owned(),
                Some("Basic".to_owned()),
            ),
            "http" if field("scheme").eq_ignore_ascii_case("bearer") => (
                bearer_like,
                CredentialIn::Header,
                String::new(),
                Some("Bearer".to_owned()),
            ),
            "oauth2" | "openIdConnect" => (
                bearer_like,
                CredentialIn::Header,
                String::new(),
                Some("Bearer".to_owned()),
            ),
            "mutualTLS" => {
                self.once(
                    &def.origin,
                    name,
                    "`mutualTLS` schemes are not supported; require client certificates per API with `apis[].mtls: required` in `mgw.yaml`".into(),
                );
                return None;
            }
            other => {
                self.once(
                    &def.origin,
                    name,
                    format!("security scheme type `{other}` is not supported (use `apiKey`, `http` basic or bearer, `oauth2` or `openIdConnect`)"),
                );
                return None;
            }
        };
        if !fits {
            let ty = match provider {
                Provider::Jwt(_) => "jwt",
                Provider::ApiKey(_) => "apiKey",
                Provider::Basic(_) => "basic",
                Provider::Introspection(_) => "introspection",
            };
            let want = match def.kind.as_str() {
                "apiKey" => "an `apiKey`",
                "basic" | "http" if prefix.as_deref() == Some("Basic") => "a `basic`",
                _ => "a `jwt` or `introspection`",
            };
            self.once(
                &def.origin,
                name,
                format!(
                    "security scheme `{name}` (type `{}`) is mapped to provider `{provider_name}`, a `{ty}` provider; it needs {want} provider",
                    def.kind
                ),
            );
            return None;
        }
        // Bearer tokens come in `Authorization`, or in the custom auth header.
        let param = if param.is_empty() {
            auth_header.map_or_else(
                || "authorization".to_owned(),
                |h| h.value.to_ascii_lowercase(),
            )
        } else {
            param
        };
        let scheme = SecurityScheme {
            provider: provider_name.clone(),
            location,
            name: param.clone(),
            prefix,
        };
        self.used_providers.insert(provider_name);
        // The same scheme read from another header (an operation's own auth
        // header) gets its own bundle name.
        let mut bundle_name = name.to_owned();
        if schemes.get(name).is_some_and(|s| *s != scheme) {
            bundle_name = format!("{name}@{param}");
        }
        schemes.insert(bundle_name.clone(), scheme);
        Some(bundle_name)
    }

    /// CORS of an API: `apis[].cors` in `mgw.yaml`, else the spec's
    /// `x-mgw-cors`/`x-wso2-cors`, else the top-level `cors`.
    fn api_cors(&mut self, i: usize, spec: &ApiSpec) -> Option<Cors> {
        let settings = &self.project.manifest.apis[i];
        let key = format!("apis[{i}].cors");
        if let Some(c) = &settings.cors {
            self.map(
                key,
                self.manifest_origin(&mpath().key("apis").index(i).key("cors")),
            );
            return c.clone();
        }
        for op in &spec.operations {
            if let Some(c) = &op.policies.cors {
                self.once(
                    &c.origin,
                    "cors",
                    "CORS is set per API: move this to the top of the spec or to `apis[].cors` in `mgw.yaml`".into(),
                );
            }
        }
        if let Some(c) = &spec.policies.cors {
            self.map(key, c.origin.clone());
            return self.cors_from_spec(c);
        }
        self.map(key, self.manifest_origin(&mpath().key("cors")));
        self.project.manifest.cors.clone()
    }

    /// `apis[].transforms` in `mgw.yaml`, else `x-mgw-transforms` at the top of
    /// the spec; every key inside mapped to where it was written.
    fn api_transforms(&mut self, i: usize, spec: &ApiSpec) -> Option<Transforms> {
        let bkey = format!("apis[{i}].transforms");
        if let Some(t) = &self.project.manifest.apis[i].transforms {
            let at = mpath().key("apis").index(i).key("transforms");
            self.map(bkey.clone(), self.manifest_origin(&at));
            for segs in transforms::key_paths(t) {
                let origin = self.manifest_origin(&KeyPath([at.0.clone(), segs.clone()].concat()));
                self.map(
                    format!("{bkey}{}", transforms::bundle_suffix(&segs)),
                    origin,
                );
            }
            return Some(t.clone());
        }
        let l = spec.policies.transforms.as_ref()?;
        let t = self.spec_transforms(l)?;
        self.map_spec_transforms(&bkey, &t, l);
        Some(t)
    }

    fn spec_transforms(&mut self, l: &Located<Node>) -> Option<Transforms> {
        transforms::from_extension(l)
            .map_err(|d| self.diags.push(d))
            .ok()
    }

    fn map_spec_transforms(&mut self, bkey: &str, t: &Transforms, l: &Located<Node>) {
        self.map(bkey.to_owned(), l.origin.clone());
        for segs in transforms::key_paths(t) {
            let origin = transforms::spec_origin(l, &segs);
            self.map(
                format!("{bkey}{}", transforms::bundle_suffix(&segs)),
                origin,
            );
        }
    }

    /// `x-wso2-cors` (`accessControlAllow…`) or `x-mgw-cors` (`allow…`) values.
    /// WSO2 Microgateway 3.1 accepts its keys in camelCase, kebab-case
    /// (`access-control-allow-origins`) and snake_case, so keys are compared
    /// without case, `-` and `_`.
    fn cors_from_spec(&mut self, c: &Located<serde_json::Value>) -> Option<Cors> {
        let fold = |k: &str| -> String {
            k.chars()
                .filter(|c| !matches!(c, '-' | '_'))
                .map(|c| c.to_ascii_lowercase())
                .collect()
        };
        let v: serde_json::Map<String, serde_json::Value> = c
            .value
            .as_object()
            .map(|o| o.iter().map(|(k, v)| (fold(k), v.clone())).collect())
            .unwrap_or_default();
        let get = |a: &str, b: &str| v.get(&fold(a)).or_else(|| v.get(&fold(b)));
        let strings = |x: Option<&serde_json::Value>| -> Vec<String> {
            x.and_then(serde_json::Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(serde_json::Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()
        };
        let enabled =
            get("corsConfigurationEnabled", "enabled").and_then(serde_json::Value::as_bool);
        if enabled == Some(false) {
            return None;
        }
        let known = [
            "corsConfigurationEnabled",
            "accessControlAllowOrigins",
            "accessControlAllowMethods",
            "accessControlAllowHeaders",
            "accessControlExposeHeaders",
            "accessControlAllowCredentials",
            "accessControlMaxAge",
            "enabled",
            "allowOrigins",
            "allowMethods",
            "allowHeaders",
            "exposeHeaders",
            "allowCredentials",
            "maxAge",
        ];
        for k in c
            .value
            .as_object()
            .map(|o| o.keys().cloned().collect::<Vec<_>>())
            .unwrap_or_default()
        {
            if !known.iter().any(|n| fold(n) == fold(&k)) {
                self.once(
                    &c.origin,
                    &k,
                    format!(
                        "unknown CORS key `{k}`{}; valid: {}",
                        suggestion(&k, known.iter().copied()),
                        list(known.iter(), 20)
                    ),
                );
            }
        }
        let mut origins = strings(get("accessControlAllowOrigins", "allowOrigins"));
        if c.origin.key_path.ends_with("x-wso2-cors") {
            // WSO2 Microgateway compared the `Origin` header with each entry, so
            // an entry without a scheme (`test.com`) never matched a browser.
            let (kept, never): (Vec<String>, Vec<String>) = origins
                .into_iter()
                .partition(|o| o == "*" || o.starts_with("http://") || o.starts_with("https://"));
            if !never.is_empty() {
                self.warnings.push(Diagnostic::new(
                    &c.origin,
                    format!(
                        "CORS origins {} have no scheme, so no browser's `Origin` ever matched them in WSO2 Microgateway; mgw leaves them out{}",
                        list(&never, 8),
                        if kept.is_empty() {
                            " and, with no origin left, answers no cross-origin request (as before)"
                        } else {
                            ""
                        }
                    ),
                ));
                if kept.is_empty() {
                    return None;
                }
            }
            origins = kept;
        }
        if origins.is_empty() {
            self.once(
                &c.origin,
                "cors",
                "CORS needs allowed origins (`allowOrigins` or `accessControlAllowOrigins`)".into(),
            );
            return None;
        }
        Some(Cors {
            allow_origins: origins,
            allow_methods: strings(get("accessControlAllowMethods", "allowMethods")),
            allow_headers: strings(get("accessControlAllowHeaders", "allowHeaders")),
            expose_headers: strings(get("accessControlExposeHeaders", "exposeHeaders")),
            allow_credentials: get("accessControlAllowCredentials", "allowCredentials")
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(false),
            max_age_s: get("accessControlMaxAge", "maxAge").and_then(serde_json::Value::as_u64),
        })
    }

    /// `auth.providers` with JWT keys read from their files and inlined.
    fn auth(&mut self) -> Auth {
        let auth = &self.project.manifest.auth;
        let mut providers = BTreeMap::new();
        for (name, provider) in &auth.providers {
            let p = mpath().key("auth").key("providers").key(name.clone());
            let bkey = format!("auth.providers.{name}");
            self.map(bkey.clone(), self.manifest_origin(&p));
            let mut provider = provider.clone();
            if let Provider::Jwt(j) = &mut provider {
                for (field, k) in [
                    ("issuer", "issuer"),
                    ("algorithms", "algorithms"),
                    ("jwksUrl", "jwksUrl"),
                    ("discoveryUrl", "discoveryUrl"),
                    ("claimHeaders", "claimHeaders"),
                    ("hmacSecretFile", "hmacSecretFile"),
                ] {
                    self.map(format!("{bkey}.{field}"), self.manifest_origin(&p.key(k)));
                }
                for i in 0..j.scope_claims.len() {
                    let at = p.key("scopeClaims").index(i);
                    self.map(
                        format!("{bkey}.scopeClaims[{i}]"),
                        self.manifest_origin(&at),
                    );
                }
                let files = auth.key_files.get(name).cloned().unwrap_or_default();
                for (fi, (file, kid)) in files.iter().enumerate() {
                    let origin = self.manifest_origin(&p.key("keys").index(fi));
                    let Some(text) = self.project.key_files.get(file) else {
                        continue;
                    };
                    let (keys, skipped) = keys_of(text, kid.as_deref()).unwrap_or_else(|e| {
                        self.diags
                            .push(Diagnostic::new(&origin, format!("`{file}`: {e}")));
                        Default::default()
                    });
                    for why in skipped {
                        self.warnings
                            .push(Diagnostic::new(&origin, format!("`{file}`: {why}")));
                    }
                    for key in keys {
                        self.map(format!("{bkey}.keys[{}]", j.keys.len()), origin.clone());
                        j.keys.push(key);
                    }
                }
            }
            if !self.used_providers.contains(name) {
                self.warnings.push(Diagnostic::new(
                    &self.project.manifest.key_origin(&p),
                    format!("auth provider `{name}` is not used by any operation"),
                ));
            }
            providers.insert(name.clone(), provider);
        }
        Auth { providers }
    }

    /// The operation's path template as routed: with `x-mgw-catch-all: true`
    /// its last segment, a whole `{param}`, becomes `{param+}` and takes the rest
    /// of the path (one or more segments).
    /// `apis[i].catchAll` in `mgw.yaml` does the same for every operation of a path.
    fn op_path(&mut self, i: usize, op: &SpecOperation) -> Option<String> {
        let listed = self.project.manifest.apis[i]
            .catch_all
            .iter()
            .position(|p| *p == op.path);
        let marker = match (&op.policies.catch_all, listed) {
            (Some(m), _) if m.value => m.origin.clone(),
            (_, Some(k)) => {
                self.manifest_origin(&mpath().key("apis").index(i).key("catchAll").index(k))
            }
            _ => return Some(op.path.clone()),
        };
        let (head, last) = op.path.rsplit_once('/').unwrap_or(("", &op.path));
        let name = last
            .strip_prefix('{')
            .and_then(|l| l.strip_suffix('}'))
            .filter(|n| !n.is_empty() && !n.ends_with('+') && !n.contains(['{', '}']));
        let Some(name) = name else {
            self.diags.push(Diagnostic::new(
                &marker,
                format!(
                    "a catch-all needs a path whose last segment is a parameter, such as `/proxy/{{path}}`; `{}` ends with `{last}`",
                    op.path
                ),
            ));
            return None;
        };
        Some(format!("{head}/{{{name}+}}"))
    }

    /// WSO2 Microgateway built an operation whose `x-wso2-throttling-tier` its
    /// `policies.yaml` does not define, and answered every request to it with 500
    /// without calling the backend. A WSO2 project with `rateLimits.wso2Policies`
    /// keeps that contract as closely as mgw can: the operation is left out
    /// (404, no upstream work) with a warning, instead of failing the build.
    fn wso2_undefined_tier(&mut self, spec: &ApiSpec, op: &SpecOperation) -> bool {
        let Some(tier) = &op.policies.rate_limit else {
            return false;
        };
        let manifest = &self.project.manifest;
        let has_policies_file = manifest.wso2.file.is_some();
        if !is_wso2_project(spec)
            || !has_policies_file
            || !tier.origin.key_path.ends_with("/x-wso2-throttling-tier")
            || manifest.policy_exists(&tier.value).is_some()
            || manifest.refused_tier(&tier.value).is_some()
        {
            return false;
        }
        self.warnings.push(Diagnostic::new(
            &tier.origin,
            format!(
                "tier `{}` is not defined in the project's `policies.yaml`, so WSO2 Microgateway answered every request to operation `{}` with 500; mgw leaves the operation out (404); define the tier to serve it",
                tier.value, op.id
            ),
        ));
        true
    }

    /// `apis[i].rateLimit` in `mgw.yaml`, else the spec root's `x-mgw-rate-limit`
    /// or `x-wso2-throttling-tier`.
    fn api_rate_limit(&mut self, i: usize, spec: &ApiSpec) -> Option<String> {
        let settings = &self.project.manifest.apis[i];
        let key = format!("apis[{i}].rateLimit");
        if let Some(name) = &settings.rate_limit {
            let ap = mpath().key("apis").index(i).key("rateLimit");
            self.map(key, self.manifest_origin(&ap));
            if let Some(ext) = &spec.policies.rate_limit {
                self.warnings.push(Diagnostic::new(
                    &ext.origin,
                    format!(
                        "rate limit `{}` of the spec is overridden by `apis[{i}].rateLimit: {name}` in `mgw.yaml`",
                        ext.value
                    ),
                ));
            }
            // An unknown name was reported by the manifest check.
            if self.project.manifest.policy_exists(name) != Some(true) {
                return None;
            }
            self.used_policies.insert(name.clone());
            return Some(name.clone());
        }
        let ext = spec.policies.rate_limit.as_ref()?;
        self.map(key, ext.origin.clone());
        self.policy_ref(ext)
    }

    /// A policy a spec names: declared (its name), `Unlimited` (no limit), or an
    /// error at the extension.
    fn policy_ref(&mut self, l: &Located<String>) -> Option<String> {
        match self.project.manifest.policy_exists(&l.value) {
            Some(true) => {
                self.used_policies.insert(l.value.clone());
                Some(l.value.clone())
            }
            Some(false) => None,
            None if self.project.manifest.refused_tier(&l.value).is_some() => {
                let why = self
                    .project
                    .manifest
                    .refused_tier(&l.value)
                    .unwrap_or_default();
                self.diags.push(Diagnostic::new(
                    &l.origin,
                    format!("tier `{}` cannot be used: {why}", l.value),
                ));
                None
            }
            None => {
                let declared = self.project.manifest.policy_names();
                self.diags.push(Diagnostic::new(
                    &l.origin,
                    format!(
                        "no rate-limit policy named `{}`{}; declare it in `mgw.yaml` under `rateLimits.policies` (declared: {}), or use `Unlimited`{}",
                        l.value,
                        suggestion(&l.value, declared.iter().copied()),
                        list(&declared, 20),
                        if l.origin.key_path.contains("x-wso2-") {
                            "; a WSO2 project's tiers come from its `policies.yaml`, named by `rateLimits.wso2Policies`"
                        } else {
                            ""
                        }
                    ),
                ));
                None
            }
        }
    }

    fn rate_limits(&mut self) -> Option<RateLimits> {
        let r = self.project.manifest.rate_limits.as_ref()?;
        let p = mpath().key("rateLimits");
        for (bundle_key, key) in [
            ("rateLimits", None),
            ("rateLimits.unauthenticated", Some("unauthenticated")),
            ("rateLimits.maxKeys", Some("maxKeys")),
            ("rateLimits.headers", Some("headers")),
            ("rateLimits.redis", Some("redis")),
            ("rateLimits.redis.url", Some("redis.url")),
            ("rateLimits.redis.username", Some("redis.username")),
            ("rateLimits.redis.passwordFile", Some("redis.passwordFile")),
            ("rateLimits.redis.caFile", Some("redis.caFile")),
            ("rateLimits.redis.timeoutMs", Some("redis.timeoutMs")),
            ("rateLimits.redis.replicas", Some("redis.replicas")),
        ] {
            let path = key.map_or(p.clone(), |k| k.split('.').fold(p.clone(), |p, k| p.key(k)));
            self.map(bundle_key, self.manifest_origin(&path));
        }
        let mut policies = BTreeMap::new();
        for (name, policy) in &r.policies {
            let pp = p.key("policies").key(name.clone());
            let key = format!("rateLimits.policies.{name}");
            let used =
                self.used_policies.contains(name) || r.unauthenticated.as_ref() == Some(name);
            if let Some(origin) = self.project.manifest.wso2.origins.get(name) {
                // A tier of a WSO2 `policies.yaml`: a library, only used ones count.
                if !used {
                    continue;
                }
                self.map(key.clone(), origin.clone());
                for bundle_key in ["requests", "periodSeconds", "burst", "key"] {
                    self.map(format!("{key}.{bundle_key}"), origin.clone());
                }
            } else {
                self.map(key.clone(), self.project.manifest.key_origin(&pp));
                for (bundle_key, _) in keymap::POLICY {
                    let path = keymap::manifest_path(&pp, bundle_key, keymap::POLICY);
                    self.map(format!("{key}.{bundle_key}"), self.manifest_origin(&path));
                }
            }
            if !used {
                self.warnings.push(Diagnostic::new(
                    &self.project.manifest.key_origin(&pp),
                    format!(
                        "rate-limit policy `{name}` is not used by any API or operation; it is left in the bundle unused"
                    ),
                ));
            }
            policies.insert(name.clone(), policy.clone());
        }
        Some(RateLimits {
            policies,
            ..r.clone()
        })
    }

    fn trusted_proxies(&mut self) -> Vec<String> {
        let list = self.project.manifest.trusted_proxies.clone();
        for i in 0..list.len() {
            self.map(
                format!("trustedProxies[{i}]"),
                self.manifest_origin(&mpath().key("trustedProxies").index(i)),
            );
        }
        list
    }

    fn declared_upstreams_unused(&mut self) {
        let unused: Vec<String> = self
            .project
            .manifest
            .upstreams
            .keys()
            .filter(|n| !self.upstreams.contains_key(*n))
            .cloned()
            .collect();
        for name in unused {
            self.warnings.push(Diagnostic::new(
                &self
                    .project
                    .manifest
                    .key_origin(&mpath().key("upstreams").key(name.clone())),
                format!("upstream `{name}` is not used by any API; it is left out of the bundle"),
            ));
        }
    }
}

/// The public keys in a key file: a JWKS (`{"keys": [...]}`), one JWK, or a PEM
/// public key (with the `kid` given in `mgw.yaml`); and why keys of a JWKS were
/// left out. An identity provider's JWKS often publishes encryption keys next
/// to its signing keys (Keycloak's `RSA-OAEP` key with `use: enc`): they verify
/// nothing, so they are skipped, as the gateway skips them in a fetched JWKS.
fn keys_of(text: &str, kid: Option<&str>) -> Result<(Vec<JwtKey>, Vec<String>), String> {
    let t = text.trim_start();
    if t.starts_with('{') {
        if kid.is_some() {
            return Err("`kid` is only for PEM files; a JWK carries its own".into());
        }
        let v: serde_json::Value =
            serde_json::from_str(t).map_err(|e| format!("not valid JSON: {e}"))?;
        let (keys, skipped) = match v.get("keys") {
            Some(serde_json::Value::Array(keys)) => {
                let mut skipped = Vec::new();
                let signing = keys
                    .iter()
                    .filter(|jwk| match not_for_signatures(jwk) {
                        Some(why) => {
                            let kid = jwk.get("kid").and_then(serde_json::Value::as_str);
                            skipped.push(format!(
                                "key `{}` is left out: {why}",
                                kid.unwrap_or("(no kid)")
                            ));
                            false
                        }
                        None => true,
                    })
                    .cloned()
                    .collect::<Vec<_>>();
                if signing.is_empty() {
                    return Err(if keys.is_empty() {
                        "the JWKS has no keys".into()
                    } else {
                        "the JWKS has no signing keys (every key is for encryption)".into()
                    });
                }
                (signing, skipped)
            }
            Some(_) => return Err("`keys` must be a list of JWKs".into()),
            None => (vec![v], Vec::new()),
        };
        let keys = keys
            .into_iter()
            .map(|jwk| JwtKey {
                kid: None,
                pem: None,
                jwk: Some(jwk),
            })
            .collect();
        return Ok((keys, skipped));
    }
    if t.contains("PRIVATE KEY") {
        return Err("holds a private key; put only public keys into a project".into());
    }
    if !t.starts_with("-----BEGIN ") {
        return Err("expected a JWKS (JSON) or a PEM public key".into());
    }
    let key = JwtKey {
        kid: kid.map(str::to_owned),
        pem: Some(text.to_owned()),
        jwk: None,
    };
    Ok((vec![key], Vec::new()))
}

/// Why a JWK of a set is for encryption, not signatures (RFC 7517 `use`,
/// `key_ops`; a JWE key-management `alg`), if it is.
fn not_for_signatures(jwk: &serde_json::Value) -> Option<String> {
    let s = |k: &str| jwk.get(k).and_then(serde_json::Value::as_str);
    if let Some(u) = s("use").filter(|u| *u != "sig") {
        return Some(format!("it is for `use: {u}`, not signatures"));
    }
    if let Some(ops) = jwk.get("key_ops").and_then(serde_json::Value::as_array) {
        if !ops.iter().any(|o| o == "verify") {
            return Some("its `key_ops` do not include `verify`".into());
        }
    }
    let alg = s("alg")?;
    let jwe = alg.starts_with("RSA-OAEP")
        || alg == "RSA1_5"
        || alg.starts_with("ECDH-ES")
        || alg.ends_with("KW")
        || alg == "dir";
    jwe.then(|| format!("`alg: {alg}` is an encryption algorithm"))
}

fn summarize(project: &Project, bundle: &Bundle) -> Summary {
    let m = &project.manifest;
    let mut total = 0;
    let apis = bundle
        .apis
        .iter()
        .zip(&project.specs)
        .map(|(api, spec)| {
            let routes: Vec<RouteSummary> = api
                .operations
                .iter()
                .map(|o| RouteSummary {
                    method: o.method.clone(),
                    path: join_paths(&api.base_path, &o.path),
                    operation_id: o.id.clone(),
                    upstream: o.upstream.clone().unwrap_or_else(|| api.upstream.clone()),
                    rate_limits: api
                        .rate_limit
                        .iter()
                        .chain(&o.rate_limit)
                        .cloned()
                        .collect(),
                    security: o
                        .security
                        .iter()
                        .map(|req| {
                            req.iter()
                                .map(|(scheme, scopes)| {
                                    if scopes.is_empty() {
                                        scheme.clone()
                                    } else {
                                        format!("{scheme}({})", scopes.join(" "))
                                    }
                                })
                                .collect::<Vec<_>>()
                                .join(" + ")
                        })
                        .chain(o.anonymous.then(|| "anonymous".to_owned()))
                        .collect(),
                    validates: o.request.is_some(),
                    mock: o.mock.is_some(),
                })
                .collect();
            total += routes.len();
            ApiSummary {
                name: api.name.clone(),
                title: spec.title.clone(),
                version: spec.version.clone(),
                spec: spec.file.clone(),
                format: spec.format,
                base_path: api.base_path.clone(),
                upstream: api.upstream.clone(),
                routes,
            }
        })
        .collect();
    Summary {
        name: m.name.clone(),
        version: m.version.clone(),
        repository: m.image.repository.clone(),
        labels: m.image.labels.clone(),
        platforms: m.image.platforms.clone(),
        apis,
        routes: total,
    }
}

/// Every `${VAR}` the bundle uses, with its default.
fn env_vars(bundle: &Bundle) -> (Vec<EnvVar>, Vec<Diagnostic>) {
    let mut templates: Vec<(String, &str)> = vec![
        (
            "listeners.api.address".into(),
            bundle.listeners.api.address.as_str(),
        ),
        (
            "listeners.admin.address".into(),
            bundle.listeners.admin.address.as_str(),
        ),
    ];
    for (name, u) in &bundle.upstreams {
        for (i, url) in u.urls.iter().enumerate() {
            templates.push((format!("upstreams.{name}.urls[{i}]"), url));
        }
        if let Some(t) = &u.tls {
            for (f, v) in [
                ("caFile", &t.ca_file),
                ("certFile", &t.cert_file),
                ("keyFile", &t.key_file),
            ] {
                if let Some(v) = v {
                    templates.push((format!("upstreams.{name}.tls.{f}"), v));
                }
            }
        }
    }
    if let Some(p) = &bundle.analytics.path {
        templates.push(("analytics.path".into(), p));
    }
    for (i, t) in bundle.trusted_proxies.iter().enumerate() {
        templates.push((format!("trustedProxies[{i}]"), t));
    }
    if let Some(t) = &bundle.listeners.api.tls {
        templates.push(("listeners.api.tls.certFile".into(), &t.cert_file));
        templates.push(("listeners.api.tls.keyFile".into(), &t.key_file));
        if let Some(ca) = &t.client_ca_file {
            templates.push(("listeners.api.tls.clientCaFile".into(), ca));
        }
    }
    for (i, api) in bundle.apis.iter().enumerate() {
        let ops = api.operations.iter().enumerate();
        let blocks = std::iter::once((format!("apis[{i}].transforms"), &api.transforms)).chain(
            ops.map(|(j, o)| {
                (
                    format!("apis[{i}].operations[{j}].transforms"),
                    &o.transforms,
                )
            }),
        );
        for (key, t) in blocks {
            for (at, value) in t.iter().flat_map(Transforms::templates) {
                templates.push((format!("{key}{at}"), value));
            }
        }
    }
    for (name, p) in &bundle.auth.providers {
        let key = |f: &str| format!("auth.providers.{name}.{f}");
        match p {
            Provider::Jwt(j) => {
                if let Some(u) = &j.jwks_url {
                    templates.push((key("jwksUrl"), u));
                }
                if let Some(u) = &j.discovery_url {
                    templates.push((key("discoveryUrl"), u));
                }
                if let Some(f) = &j.hmac_secret_file {
                    templates.push((key("hmacSecretFile"), f));
                }
            }
            Provider::ApiKey(a) => templates.push((key("file"), &a.file)),
            Provider::Basic(b) => templates.push((key("file"), &b.file)),
            Provider::Introspection(i) => {
                templates.push((key("endpoint"), &i.endpoint));
                templates.push((key("clientIdFile"), &i.client_id_file));
                templates.push((key("clientSecretFile"), &i.client_secret_file));
            }
        }
    }
    let mut vars: BTreeMap<String, (Vec<Option<String>>, Vec<String>)> = BTreeMap::new();
    for (key, t) in templates {
        for (name, default) in env::variables(t) {
            let v = vars.entry(name).or_default();
            v.0.push(default);
            v.1.push(key.clone());
        }
    }
    let mut warnings = Vec::new();
    let out = vars
        .into_iter()
        .map(|(name, (defaults, used_by))| {
            let distinct: BTreeSet<&Option<String>> = defaults.iter().collect();
            if distinct.len() > 1 {
                warnings.push(Diagnostic::new(
                    &Origin::file(MANIFEST_FILE),
                    format!(
                        "`${{{name}}}` has different defaults in {}; the gateway uses each one where it is written",
                        list(&used_by, 10)
                    ),
                ));
            }
            let default = if defaults.iter().any(Option::is_none) {
                None
            } else {
                defaults.into_iter().flatten().next()
            };
            EnvVar {
                name,
                default,
                used_by,
            }
        })
        .collect();
    (out, warnings)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::project::{Source, load_from};

    fn project(files: &[(&str, &str)]) -> Result<Project, ProjectError> {
        load_from(Source::Memory(
            files
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>(),
        ))
    }

    fn build(files: &[(&str, &str)]) -> Result<Compiled, ProjectError> {
        compile(&project(files)?)
    }

    const MANIFEST: &str = "name: pets\nversion: 1.0.0\nupstreams:\n  pets: {urls: ['${PETS_URL:-http://127.0.0.1:8081}']}\n  spare: {urls: ['http://127.0.0.1:9']}\napis:\n  - name: pets\n    spec: api.yaml\n    upstream: pets\n";
    const SPEC: &str = "openapi: 3.0.3\ninfo: {title: Pets, version: 2.0.0}\nservers: [{url: /v1}]\npaths:\n  /pets/{id}:\n    get: {operationId: getPet}\n    delete: {operationId: deletePet}\n  /pets:\n    get: {operationId: listPets, tags: [read]}\n";

    fn errors(files: &[(&str, &str)]) -> String {
        match build(files) {
            Ok(_) => panic!("expected an error"),
            Err(e) => e.to_string(),
        }
    }

    fn warnings(c: &Compiled) -> Vec<String> {
        c.warnings.iter().map(ToString::to_string).collect()
    }

    /// Nothing to answer with: with `mock` on the API, a warning and a 501
    /// answer; asked on the operation itself, an error at that line.
    #[test]
    fn a_mock_without_a_success_response_answers_501_or_is_an_error_when_asked_for() {
        let m = MANIFEST.replace(
            "    upstream: pets\n",
            "    upstream: pets\n    mock: true\n",
        );
        let c = build(&[("mgw.yaml", &m), ("api.yaml", SPEC)]).unwrap();
        let w = warnings(&c);
        assert!(
            w.iter().any(|w| w.contains("api.yaml:6:5: `#/paths/~1pets~1{id}/get`: operation `getPet` declares no `2XX` or `default` response, so a mock has nothing to answer with: it answers 501")),
            "{w:?}"
        );
        let op = &c.bundle.apis[0].operations[0];
        assert_eq!(op.mock.as_ref().map(|m| m.status), Some(501));

        let spec = SPEC.replace(
            "get: {operationId: getPet}",
            "get: {operationId: getPet, x-mgw-mock: true}",
        );
        let e = errors(&[("mgw.yaml", MANIFEST), ("api.yaml", &spec)]);
        assert!(
            e.contains("operation `getPet` declares no `2XX` or `default` response, so a mock has nothing to answer with; declare one, or remove `x-mgw-mock`"),
            "{e}"
        );
    }

    /// A `$ref` whose pointer passes through another `$ref` (PagerDuty's
    /// discriminator mappings do) means the place the inner one points to.
    #[test]
    fn a_pointer_through_a_ref_follows_it() {
        let m = MANIFEST.replace(
            "    upstream: pets\n",
            "    upstream: pets\n    validation: {request: true}\n",
        );
        let spec = format!(
            "{SPEC}    post:\n      operationId: addPet\n      requestBody:\n        content:\n          application/json:\n            schema: {{$ref: '#/components/schemas/Alias/properties/name'}}\ncomponents:\n  schemas:\n    Alias: {{$ref: '#/components/schemas/Pet'}}\n    Pet: {{type: object, properties: {{name: {{type: string, maxLength: 3}}}}}}\n"
        );
        let c = build(&[("mgw.yaml", &m), ("api.yaml", &spec)]).unwrap_or_else(|e| panic!("{e}"));
        let add = c.bundle.apis[0]
            .operations
            .iter()
            .find(|o| o.id == "addPet")
            .unwrap();
        let request = serde_json::to_string(&add.request).unwrap();
        assert!(request.contains(r#""maxLength":3"#), "{request}");
    }

    #[test]
    fn a_path_with_a_query_is_an_error_until_excluded() {
        // OpenAI-like documents: `/responses?beta=true` cannot be routed.
        let spec =
            format!("{SPEC}  /responses?beta=true:\n    post: {{operationId: betaResponses}}\n");
        let e = errors(&[("mgw.yaml", MANIFEST), ("api.yaml", &spec)]);
        assert!(
            e.contains("api.yaml:11:5: `#/paths/~1responses?beta=true/post`: path `/responses?beta=true` must not contain a query or fragment, so the gateway cannot serve operation `betaResponses`; leave it out with `exclude: {operations: [betaResponses]}` under `apis[0]`"),
            "{e}"
        );
        let m = format!("{MANIFEST}    exclude: {{operations: [betaResponses]}}\n");
        let c = build(&[("mgw.yaml", &m), ("api.yaml", &spec)]).unwrap();
        assert_eq!(c.bundle.apis[0].operations.len(), 3);
        // An `include` that does not select it leaves it out too.
        let m = format!("{MANIFEST}    include: {{tags: [read]}}\n");
        let c = build(&[("mgw.yaml", &m), ("api.yaml", &spec)]).unwrap();
        assert_eq!(c.bundle.apis[0].operations.len(), 1);
        // Any template the gateway cannot route is excludable the same way.
        let spec = format!("{SPEC}  /files/{{name:\n    get: {{operationId: brokenTemplate}}\n");
        let e = errors(&[("mgw.yaml", MANIFEST), ("api.yaml", &spec)]);
        assert!(
            e.contains("api.yaml:11:5: `#/paths/~1files~1{name/get`: path `/files/{name` has an unclosed `{`, so the gateway cannot serve operation `brokenTemplate`"),
            "{e}"
        );
        let m = format!("{MANIFEST}    exclude: {{operations: [brokenTemplate]}}\n");
        assert!(build(&[("mgw.yaml", &m), ("api.yaml", &spec)]).is_ok());
    }

    #[test]
    fn exclude_leaves_out_by_id_and_tag_and_names_unknowns() {
        let m = format!("{MANIFEST}    exclude: {{operations: [deletePet], tags: [read]}}\n");
        let c = build(&[("mgw.yaml", &m), ("api.yaml", SPEC)]).unwrap();
        let ids: Vec<_> = c.bundle.apis[0]
            .operations
            .iter()
            .map(|o| o.id.as_str())
            .collect();
        assert_eq!(ids, ["getPet"]);
        let m = format!("{MANIFEST}    exclude: {{operations: [deletepet]}}\n");
        let e = errors(&[("mgw.yaml", &m), ("api.yaml", SPEC)]);
        assert!(
            e.contains("mgw.yaml:10:28: `apis[0].exclude.operations[0]`: no operation `deletepet` in `api.yaml` (did you mean `deletePet`?)"),
            "{e}"
        );
    }

    #[test]
    fn path_and_operation_servers_are_warnings_that_say_how_to_route_elsewhere() {
        let spec = SPEC.replace(
            "    delete: {operationId: deletePet}\n",
            "    delete: {operationId: deletePet, servers: [{url: 'https://other.example.com'}]}\n    servers: [{url: 'https://files.example.com'}]\n",
        );
        let c = build(&[("mgw.yaml", MANIFEST), ("api.yaml", &spec)]).unwrap();
        assert_eq!(c.bundle.apis[0].operations.len(), 3);
        let w = warnings(&c);
        assert!(
            w.iter().any(|w| w.starts_with("api.yaml:8:14: `#/paths/~1pets~1{id}/servers`: `servers` on a path item or operation is not used")
                && w.contains("second `apis` entry")),
            "{w:?}"
        );
        assert!(
            w.iter()
                .any(|w| w.starts_with("api.yaml:7:47: `#/paths/~1pets~1{id}/delete/servers`")),
            "{w:?}"
        );
    }

    #[test]
    fn a_second_apis_entry_sends_some_operations_to_another_upstream() {
        // What the `servers` warning tells users to write.
        let m = format!(
            "{MANIFEST}    exclude: {{operations: [deletePet]}}\n  - name: pets-admin\n    spec: api.yaml\n    upstream: spare\n    include: {{operations: [deletePet]}}\n"
        );
        let c = build(&[("mgw.yaml", &m), ("api.yaml", SPEC)]).unwrap();
        let routes: Vec<String> = c
            .bundle
            .apis
            .iter()
            .flat_map(|a| {
                a.operations
                    .iter()
                    .map(move |o| format!("{} {} {} -> {}", a.name, o.method, o.path, a.upstream))
            })
            .collect();
        assert_eq!(
            routes,
            [
                "pets GET /pets -> pets",
                "pets GET /pets/{id} -> pets",
                "pets-admin DELETE /pets/{id} -> spare"
            ]
        );
    }

    #[test]
    fn dot_segments_are_refused_at_validate_by_the_routers_rule() {
        let m = MANIFEST.replace(
            "    upstream: pets\n",
            "    upstream: pets\n    basePath: /v1/../admin\n",
        );
        let e = errors(&[("mgw.yaml", &m), ("api.yaml", SPEC)]);
        assert!(
            e.contains("mgw.yaml:10:15: `apis[0].basePath`: path template `/v1/../admin` has a dot segment `..`"),
            "{e}"
        );
        let spec = format!("{SPEC}  /files/%2e%2E/x:\n    get: {{operationId: up}}\n");
        let e = errors(&[("mgw.yaml", MANIFEST), ("api.yaml", &spec)]);
        assert!(
            e.contains("api.yaml:11:5: `#/paths/~1files~1%2e%2E~1x/get`: path template `/files/%2e%2E/x` has a dot segment `%2e%2E`, which no request can match, so the gateway cannot serve operation `up`; leave it out with `exclude: {operations: [up]}`"),
            "{e}"
        );
        let spec = format!("{SPEC}  /files/./x:\n    get: {{operationId: here}}\n");
        let e = errors(&[("mgw.yaml", MANIFEST), ("api.yaml", &spec)]);
        assert!(e.contains("has a dot segment `.`"), "{e}");
    }

    #[test]
    fn broken_refs_block_only_where_the_reader_follows_them() {
        // In a schema: a warning.
        let spec = format!(
            "{SPEC}    post:\n      operationId: addPet\n      requestBody:\n        content:\n          application/json:\n            schema: {{$ref: '#/components/schemas/Nope'}}\ncomponents: {{schemas: {{}}}}\n"
        );
        let c = build(&[("mgw.yaml", MANIFEST), ("api.yaml", &spec)]).unwrap();
        let w = warnings(&c);
        assert!(
            w.iter()
                .any(|w| w.contains("`$ref` `#/components/schemas/Nope` points to nothing")),
            "{w:?}"
        );
        // In a parameter, which routing reads: an error with the same detail.
        let spec = format!(
            "{SPEC}    post:\n      operationId: addPet\n      parameters: [{{$ref: '#/components/parameters/Nope'}}]\ncomponents: {{parameters: {{Id: {{name: id, in: query}}}}}}\n"
        );
        let e = errors(&[("mgw.yaml", MANIFEST), ("api.yaml", &spec)]);
        assert!(
            e.contains("`#/paths/~1pets/post/parameters/0/$ref`: `$ref` `#/components/parameters/Nope` points to nothing")
                && e.contains("(did you mean `Id`?)") || e.contains("it has `Id`"),
            "{e}"
        );
    }

    #[test]
    fn a_path_item_in_a_broken_file_shows_the_files_own_error() {
        let spec = format!("{SPEC}  /more: {{$ref: 'more.yaml'}}\n");
        let e = errors(&[
            ("mgw.yaml", MANIFEST),
            ("api.yaml", &spec),
            ("more.yaml", "get: [1\n"),
        ]);
        assert!(e.contains("api.yaml:10:17: `#/paths/~1more/$ref`"), "{e}");
        assert!(e.contains("more.yaml:2:1: invalid YAML"), "{e}");
    }

    #[test]
    fn openapi_31_id_and_anchor_references_resolve() {
        // swagger-petstore v31's style: schemas named by `$id`, `$anchor` inside.
        let spec = "openapi: 3.1.0\ninfo: {title: t, version: '1'}\nservers: [{url: /api/v31}]\npaths:\n  /pets/{id}:\n    parameters: [{$ref: '#/components/parameters/Id'}]\n    get:\n      operationId: getPet\n      responses:\n        '200':\n          description: ok\n          content:\n            application/json:\n              schema:\n                type: object\n                properties:\n                  details: {$ref: /api/v31/components/schemas/petdetails#pet_details_id}\n                  tag: {$ref: /api/v31/components/schemas/tag}\ncomponents:\n  parameters:\n    Id: {name: id, in: path, required: true}\n  schemas:\n    PetDetails:\n      $id: /api/v31/components/schemas/petdetails\n      properties:\n        id: {$anchor: pet_details_id, type: integer}\n        tag: {$ref: tag}\n    Tag:\n      $id: /api/v31/components/schemas/tag\n      type: string\n";
        let c = build(&[("mgw.yaml", MANIFEST), ("api.yaml", spec)]).unwrap();
        let refs: Vec<String> = warnings(&c)
            .into_iter()
            .filter(|w| w.contains("$ref"))
            .collect();
        assert!(refs.is_empty(), "{refs:?}");
        // An anchor that does not exist is named.
        let broken = spec.replace("#pet_details_id}", "#no_such_anchor}");
        let c = build(&[("mgw.yaml", MANIFEST), ("api.yaml", &broken)]).unwrap();
        assert!(
            warnings(&c)
                .iter()
                .any(|w| w.contains("no `$anchor: no_such_anchor`")),
            "{:?}",
            warnings(&c)
        );
    }

    #[test]
    fn compiles_sorted_operations_env_and_summary() {
        let c = build(&[("mgw.yaml", MANIFEST), ("api.yaml", SPEC)]).unwrap();
        let ops: Vec<_> = c.bundle.apis[0]
            .operations
            .iter()
            .map(|o| format!("{} {}", o.method, o.path))
            .collect();
        assert_eq!(ops, ["GET /pets", "DELETE /pets/{id}", "GET /pets/{id}"]);
        assert_eq!(c.bundle.apis[0].base_path, "/v1");
        assert_eq!(c.bundle.apis[0].version.as_deref(), Some("2.0.0"));
        assert_eq!(c.bundle.upstreams.keys().collect::<Vec<_>>(), ["pets"]);
        assert_eq!(c.digest, digest_of(&c.bytes));
        assert_eq!(c.summary.routes, 3);
        assert_eq!(c.summary.apis[0].routes[0].path, "/v1/pets");
        let names: Vec<_> = c.env.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["MGW_ADMIN_LISTEN", "MGW_LISTEN", "PETS_URL"]);
        assert_eq!(c.env[2].default.as_deref(), Some("http://127.0.0.1:8081"));
        assert!(
            c.warnings[0]
                .to_string()
                .contains("upstream `spare` is not used"),
            "{:?}",
            c.warnings
        );
    }

    #[test]
    fn gateway_problems_point_back_at_the_source() {
        let m = MANIFEST
            .replace("http://127.0.0.1:9", "ftp://x")
            .replace("upstream: pets\n", "upstream: spare\n");
        let e = build(&[("mgw.yaml", &m), ("api.yaml", SPEC)])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(
                "mgw.yaml:5:18: `upstreams.spare.urls[0]`: `ftp://x`: scheme `ftp` is not supported"
            ),
            "{e}"
        );
    }

    #[test]
    fn include_by_id_and_tag_with_unknowns_listed() {
        let m = format!("{MANIFEST}    include: {{operations: [getPet], tags: [read]}}\n");
        let c = build(&[("mgw.yaml", &m), ("api.yaml", SPEC)]).unwrap();
        assert_eq!(c.summary.routes, 2);
        let m = format!("{MANIFEST}    include: {{operations: [getpet], tags: [write]}}\n");
        let e = build(&[("mgw.yaml", &m), ("api.yaml", SPEC)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("mgw.yaml:10:28: `apis[0].include.operations[0]`: no operation `getpet` in `api.yaml` (did you mean `getPet`?); its operationIds are `deletePet`, `getPet` and `listPets`"), "{e}");
        assert!(
            e.contains("no operation in `api.yaml` has tag `write`; its tags are `read`"),
            "{e}"
        );
    }

    #[test]
    fn a_scheme_without_a_provider_is_a_build_error() {
        let spec = format!(
            "{SPEC}    post: {{operationId: addPet, security: []}}\n  /admin:\n    get: {{operationId: admin, x-wso2-disable-security: true}}\nsecurity: [{{key: []}}]\ncomponents:\n  securitySchemes:\n    key: {{type: apiKey, in: header, name: X-Key}}\n"
        );
        let e = build(&[("mgw.yaml", MANIFEST), ("api.yaml", &spec)]).unwrap_err();
        let d = e.diagnostics();
        assert_eq!(d.len(), 1, "{e}");
        assert_eq!(d[0].key_path, "#/security");
        assert!(
            d[0].message
                .contains("security scheme `key` (type `apiKey`) has no provider"),
            "{e}"
        );
    }

    #[test]
    fn catch_all_marker_takes_the_rest_of_the_path() {
        let spec = "openapi: 3.0.3\ninfo: {title: K, version: '1'}\npaths:\n  /pods/{name}/proxy/{path}:\n    get: {operationId: proxy, x-mgw-catch-all: true}\n  /pods/{name}/exec:\n    get: {operationId: exec, x-mgw-catch-all: true}\n";
        let e = build(&[("mgw.yaml", MANIFEST), ("api.yaml", spec)])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("api.yaml:7:47: `#/paths/~1pods~1{name}~1exec/get/x-mgw-catch-all`: a catch-all needs a path whose last segment is a parameter"),
            "{e}"
        );
        let spec = spec.replace(
            "exec:\n    get: {operationId: exec, x-mgw-catch-all: true}",
            "exec:\n    get: {operationId: exec}",
        );
        let c = build(&[("mgw.yaml", MANIFEST), ("api.yaml", &spec)]).unwrap();
        let paths: Vec<_> = c.bundle.apis[0]
            .operations
            .iter()
            .map(|o| o.path.as_str())
            .collect();
        assert_eq!(paths, ["/pods/{name}/exec", "/pods/{name}/proxy/{path+}"]);

        // The same from `mgw.yaml`, for a document that stays as it is.
        let spec = spec.replace(", x-mgw-catch-all: true", "");
        let m = format!(
            "{MANIFEST}    catchAll: ['/pods/{{name}}/proxy/{{path}}', '/pods/{{name}}/logs']\n"
        );
        let e = build(&[("mgw.yaml", &m), ("api.yaml", &spec)])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`apis[0].catchAll[1]`: `/pods/{name}/logs` is not a path of `api.yaml`"),
            "{e}"
        );
        let m = format!("{MANIFEST}    catchAll: ['/pods/{{name}}/proxy/{{path}}']\n");
        let c = build(&[("mgw.yaml", &m), ("api.yaml", &spec)]).unwrap();
        let paths: Vec<_> = c.bundle.apis[0]
            .operations
            .iter()
            .map(|o| o.path.as_str())
            .collect();
        assert_eq!(paths, ["/pods/{name}/exec", "/pods/{name}/proxy/{path+}"]);
    }

    #[test]
    fn trailing_slash_tolerance_is_per_api() {
        let m = MANIFEST.replace(
            "    upstream: pets\n",
            "    upstream: pets\n    ignoreTrailingSlash: true\n",
        );
        let c = build(&[("mgw.yaml", &m), ("api.yaml", SPEC)]).unwrap();
        assert!(c.bundle.apis[0].ignore_trailing_slash);
        let c = build(&[("mgw.yaml", MANIFEST), ("api.yaml", SPEC)]).unwrap();
        assert!(!c.bundle.apis[0].ignore_trailing_slash);
    }

    #[test]
    fn cookie_api_keys_compile() {
        let spec = format!(
            "{SPEC}security: [{{key: []}}]\ncomponents:\n  securitySchemes:\n    key: {{type: apiKey, in: cookie, name: session_key}}\n"
        );
        let m = format!("{MANIFEST}auth:\n  providers:\n    key: {{type: apiKey}}\n");
        let c = build(&[("mgw.yaml", &m), ("api.yaml", &spec)]).unwrap();
        let s = &c.bundle.apis[0].security_schemes["key"];
        assert_eq!(
            (s.location, s.name.as_str()),
            (CredentialIn::Cookie, "session_key")
        );
    }

    const SECURED: &str = "openapi: 3.0.3\ninfo: {title: Pets, version: 2.0.0}\nservers: [{url: /v1}]\nx-mgw-auth-header: X-Token\nx-mgw-cors: {allowOrigins: ['https://app.example'], allowCredentials: true}\nsecurity: [{idp: [read]}, {key: []}]\npaths:\n  /pets:\n    get: {operationId: listPets}\n    post: {operationId: addPet, security: [{idp: [write], key: []}]}\n  /health:\n    get: {operationId: health, security: []}\n  /open:\n    get: {operationId: open, x-mgw-disable-security: true}\n  /maybe:\n    get: {operationId: maybe, security: [{}, {key: []}]}\n  /anyone:\n    get: {operationId: anyone, security: [{}]}\ncomponents:\n  securitySchemes:\n    idp: {type: oauth2, flows: {}}\n    key: {type: apiKey, in: query, name: api_key}\n";

    #[test]
    fn scope_claims_reach_the_bundle_and_a_bad_one_is_refused_where_it_is() {
        let project = |claims: &str| {
            format!(
                "{MANIFEST}auth:\n  providers:\n    jwt: {{type: jwt, issuer: https://idp, jwksUrl: 'https://idp/jwks'{claims}}}\n    keys: {{type: apiKey}}\n  schemes: {{idp: jwt, key: keys}}\n"
            )
        };
        let scope_claims = |c: &Compiled| match &c.bundle.auth.providers["jwt"] {
            Provider::Jwt(j) => j.scope_claims.clone(),
            other => panic!("{other:?}"),
        };
        let c = build(&[("mgw.yaml", &project("")), ("api.yaml", SECURED)]).unwrap();
        assert!(scope_claims(&c).is_empty());
        assert!(!String::from_utf8_lossy(&c.bytes).contains("scopeClaims"));
        let named = project(", scopeClaims: [permissions, roles]");
        let c = build(&[("mgw.yaml", &named), ("api.yaml", SECURED)]).unwrap();
        assert_eq!(scope_claims(&c), ["permissions", "roles"]);
        let bad = project(", scopeClaims: [roles, '', roles]");
        let e = build(&[("mgw.yaml", &bad), ("api.yaml", SECURED)])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`auth.providers.jwt.scopeClaims[1]`: a claim name must not be empty")
                && e.contains("`auth.providers.jwt.scopeClaims[2]`: `roles` is listed twice")
                && e.contains("mgw.yaml:"),
            "{e}"
        );
    }

    #[test]
    fn a_provider_names_its_jwks_or_its_discovery_document_not_both() {
        let project = |urls: &str| {
            format!(
                "{MANIFEST}auth:\n  providers:\n    jwt: {{type: jwt, issuer: https://idp, {urls}}}\n    keys: {{type: apiKey}}\n  schemes: {{idp: jwt, key: keys}}\n"
            )
        };
        let discovery =
            project("discoveryUrl: '${IDP:-https://idp}/.well-known/openid-configuration'");
        let c = build(&[("mgw.yaml", &discovery), ("api.yaml", SECURED)]).unwrap();
        assert!(c.env.iter().any(|e| e.name == "IDP"), "{:?}", c.env);
        let both = project(
            "jwksUrl: 'https://idp/jwks', discoveryUrl: 'https://idp/.well-known/openid-configuration'",
        );
        let e = build(&[("mgw.yaml", &both), ("api.yaml", SECURED)])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("mgw.yaml:12:")
                && e.contains(
                    "`auth.providers.jwt.discoveryUrl`: set `jwksUrl` or `discoveryUrl`, not both"
                ),
            "{e}"
        );
    }

    #[test]
    fn security_compiles_into_schemes_and_requirements() {
        let m = format!(
            "{MANIFEST}auth:\n  providers:\n    jwt: {{type: jwt, issuer: https://idp, keys: [keys/idp.jwks.json]}}\n    keys: {{type: apiKey}}\n  schemes: {{idp: jwt, key: keys}}\n"
        );
        let jwks = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;
        let c = build(&[
            ("mgw.yaml", &m),
            ("api.yaml", SECURED),
            ("keys/idp.jwks.json", jwks),
        ])
        .unwrap();
        let api = &c.bundle.apis[0];
        let scheme = &api.security_schemes["idp"];
        assert_eq!(
            (scheme.provider.as_str(), scheme.name.as_str()),
            ("jwt", "x-token")
        );
        assert_eq!(api.security_schemes["key"].location, CredentialIn::Query);
        let op = |id: &str| api.operations.iter().find(|o| o.id == id).unwrap();
        assert_eq!(op("listPets").security.len(), 2);
        assert_eq!(op("addPet").security[0]["idp"], vec!["write".to_string()]);
        assert!(op("health").security.is_empty());
        assert!(op("open").security.is_empty());
        // `{}` next to other requirements: optional authentication; alone: open.
        let maybe = op("maybe");
        assert_eq!(maybe.security.len(), 1);
        assert!(maybe.security[0].contains_key("key") && maybe.anonymous);
        assert!(op("anyone").security.is_empty() && !op("anyone").anonymous);
        assert!(!op("listPets").anonymous);
        assert!(api.cors.as_ref().unwrap().allow_credentials);
        let Provider::Jwt(j) = &c.bundle.auth.providers["jwt"] else {
            panic!()
        };
        assert_eq!(j.keys.len(), 1);
        let vars: Vec<_> = c.env.iter().map(|v| v.name.as_str()).collect();
        assert!(vars.contains(&"MGW_API_KEYS_FILE"), "{vars:?}");

        // A scheme mapped to a provider of the wrong type.
        let wrong = m.replace("{idp: jwt, key: keys}", "{idp: keys, key: keys}");
        let e = build(&[
            ("mgw.yaml", &wrong),
            ("api.yaml", SECURED),
            ("keys/idp.jwks.json", jwks),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("a `apiKey` provider; it needs a `jwt` or `introspection` provider"),
            "{e}"
        );
        // Private key material never goes into a bundle.
        let private = jwks.replace("\"kid\"", "\"d\":\"x\",\"kid\"");
        let e = build(&[
            ("mgw.yaml", &m),
            ("api.yaml", SECURED),
            ("keys/idp.jwks.json", &private),
        ])
        .unwrap_err()
        .to_string();
        assert!(e.contains("private or symmetric key material"), "{e}");
    }

    #[test]
    fn wso2_endpoints_become_upstreams() {
        let m = "name: pets\nversion: 1.0.0\napis:\n  - name: pets\n    spec: api.yaml\n";
        let spec = "openapi: 3.0.0\ninfo: {title: t, version: '1'}\nx-wso2-basePath: /pets\nx-wso2-production-endpoints: {urls: ['http://a:1']}\nx-wso2-throttling-tier: Unlimited\npaths:\n  /a:\n    get:\n      x-wso2-production-endpoints: {urls: ['http://b:2', 'http://c:3'], type: failover}\n  /b: {get: {}}\nx-wso2-disable-security: true\n";
        let c = build(&[("mgw.yaml", m), ("api.yaml", spec)]).unwrap();
        let names: Vec<_> = c.bundle.upstreams.keys().cloned().collect();
        assert_eq!(names, ["x-wso2:pets", "x-wso2:pets:get_a"]);
        assert_eq!(
            c.bundle.apis[0].operations[0].upstream.as_deref(),
            Some("x-wso2:pets:get_a")
        );
        assert_eq!(c.bundle.apis[0].base_path, "/pets");
        let spec = spec.replace("http://b:2", "ftp://b:2");
        let e = build(&[("mgw.yaml", m), ("api.yaml", &spec)])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("api.yaml:9:44: `#/paths/~1a/get/x-wso2-production-endpoints/urls/0`"),
            "{e}"
        );
    }

    #[test]
    fn global_rate_limits_reach_the_bundle_and_their_problems_point_at_mgw_yaml() {
        let m = format!(
            "{MANIFEST}    rateLimit: shared\nrateLimits:\n  redis: {{url: '${{MGW_REDIS_URL}}', username: mgw, passwordFile: /run/secrets/redis}}\n  policies:\n    shared: {{requests: 6, period: 1m, key: api, scope: global, onRedisFailure: deny}}\n"
        );
        let c = build(&[("mgw.yaml", &m), ("api.yaml", SPEC)]).unwrap();
        let r = c.bundle.rate_limits.as_ref().unwrap();
        assert_eq!(
            r.policies["shared"].scope,
            mgw_bundle::RateLimitScope::Global
        );
        assert_eq!(
            r.policies["shared"].on_redis_failure,
            mgw_bundle::OnRedisFailure::Deny
        );
        let redis = r.redis.as_ref().unwrap();
        assert_eq!(redis.url, "${MGW_REDIS_URL}");
        assert_eq!(redis.password_file.as_deref(), Some("/run/secrets/redis"));
        assert_eq!(
            (redis.timeout_ms, &redis.replicas),
            (5, &mgw_bundle::CountOrTemplate::Count(1))
        );

        // A global policy without Redis; a password written into the URL.
        let no_redis = m.replace(
            "  redis: {url: '${MGW_REDIS_URL}', username: mgw, passwordFile: /run/secrets/redis}\n",
            "",
        );
        let e = build(&[("mgw.yaml", &no_redis), ("api.yaml", SPEC)])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(
                "`rateLimits.policies.shared.scope`: a `global` policy keeps its state in Redis"
            ),
            "{e}"
        );
        assert!(e.contains("mgw.yaml:"), "{e}");
        let secret = m.replace("'${MGW_REDIS_URL}'", "'redis://mgw:hunter2@redis:6379'");
        let e = build(&[("mgw.yaml", &secret), ("api.yaml", SPEC)])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`rateLimits.redis.url`: must not contain a password"),
            "{e}"
        );
        let typo = m.replace("passwordFile:", "pasword:");
        let e = build(&[("mgw.yaml", &typo), ("api.yaml", SPEC)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("pasword"), "{e}");
    }

    #[test]
    fn rate_limits_attach_at_api_and_operation_level() {
        let m = format!(
            "{MANIFEST}    rateLimit: api100\nrateLimits:\n  unauthenticated: anon\n  policies:\n    api100: {{requests: 100, period: 1s, burst: 10}}\n    Gold: {{requests: 5, period: 1m, key: {{header: X-Tenant}}}}\n    anon: {{requests: 10, period: 1m}}\n    spare: {{requests: 1, period: 1s}}\n"
        );
        let spec = SPEC
            .replace(
                "get: {operationId: getPet}",
                "get: {operationId: getPet, x-wso2-throttling-tier: Gold}",
            )
            .replace(
                "delete: {operationId: deletePet}",
                "delete: {operationId: deletePet, x-mgw-rate-limit: Unlimited}",
            );
        let c = build(&[("mgw.yaml", &m), ("api.yaml", &spec)]).unwrap();
        let api = &c.bundle.apis[0];
        assert_eq!(api.rate_limit.as_deref(), Some("api100"));
        let by_id = |id: &str| api.operations.iter().find(|o| o.id == id).unwrap();
        assert_eq!(by_id("getPet").rate_limit.as_deref(), Some("Gold"));
        assert_eq!(by_id("deletePet").rate_limit, None);
        assert_eq!(by_id("listPets").rate_limit, None);
        let r = c.bundle.rate_limits.as_ref().unwrap();
        assert_eq!(r.unauthenticated.as_deref(), Some("anon"));
        assert_eq!(r.policies["api100"].period_seconds, 1);
        assert_eq!(r.policies["api100"].burst, Some(10));
        assert_eq!(
            r.policies["Gold"].key,
            mgw_bundle::RateLimitKey::Header("X-Tenant".into())
        );
        let warnings: Vec<String> = c.warnings.iter().map(ToString::to_string).collect();
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("rate-limit policy `spare` is not used")),
            "{warnings:?}"
        );
        // The bundle is one the gateway accepts.
        let text = String::from_utf8(c.bytes.clone()).unwrap();
        assert!(text.contains(r#""rateLimit":"Gold""#), "{text}");
    }

    #[test]
    fn websocket_is_opt_in_per_operation_or_document() {
        let c = build(&[("mgw.yaml", MANIFEST), ("api.yaml", SPEC)]).unwrap();
        assert!(c.bundle.apis[0].operations.iter().all(|o| !o.websocket));
        let text = String::from_utf8(c.bytes.clone()).unwrap();
        assert!(!text.contains("websocket"), "{text}");

        let spec = SPEC.replace(
            "get: {operationId: getPet}",
            "get: {operationId: getPet, x-mgw-websocket: true}",
        );
        let c = build(&[("mgw.yaml", MANIFEST), ("api.yaml", &spec)]).unwrap();
        let ops = &c.bundle.apis[0].operations;
        let on: Vec<&str> = ops
            .iter()
            .filter(|o| o.websocket)
            .map(|o| o.id.as_str())
            .collect();
        assert_eq!(on, ["getPet"]);
        let text = String::from_utf8(c.bytes.clone()).unwrap();
        assert!(text.contains(r#""websocket":true"#), "{text}");

        // On the document: every operation, unless one says `false`.
        let spec = format!(
            "{}x-mgw-websocket: true\n",
            SPEC.replace(
                "get: {operationId: getPet}",
                "get: {operationId: getPet, x-mgw-websocket: false}",
            )
        );
        let c = build(&[("mgw.yaml", MANIFEST), ("api.yaml", &spec)]).unwrap();
        let ops = &c.bundle.apis[0].operations;
        assert!(ops.iter().all(|o| o.websocket == (o.id != "getPet")));

        let bad = SPEC.replace(
            "get: {operationId: getPet}",
            "get: {operationId: getPet, x-mgw-websocket: yes-please}",
        );
        let e = build(&[("mgw.yaml", MANIFEST), ("api.yaml", &bad)])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`x-mgw-websocket` must be `true` or `false`"),
            "{e}"
        );
    }

    #[test]
    fn underscore_header_policy_reaches_the_bundle() {
        let c = build(&[("mgw.yaml", MANIFEST), ("api.yaml", SPEC)]).unwrap();
        assert_eq!(c.bundle.apis[0].underscore_headers, None);
        let m = format!("{MANIFEST}    underscoreHeaders: reject\n");
        let c = build(&[("mgw.yaml", &m), ("api.yaml", SPEC)]).unwrap();
        assert_eq!(
            c.bundle.apis[0].underscore_headers,
            Some(mgw_bundle::UnderscoreHeaders::Reject)
        );
        let text = String::from_utf8(c.bytes.clone()).unwrap();
        assert!(text.contains(r#""underscoreHeaders":"reject""#), "{text}");
        let bad = format!("{MANIFEST}    underscoreHeaders: maybe\n");
        assert!(build(&[("mgw.yaml", &bad), ("api.yaml", SPEC)]).is_err());
    }

    /// Keycloak's JWKS publishes an `RSA-OAEP` encryption key next to the
    /// signing key; a project holding that file as downloaded builds with the
    /// signing key and says what it left out. Only encryption keys: an error.
    #[test]
    fn a_jwks_file_s_encryption_keys_are_left_out_with_a_warning() {
        let m = format!(
            "{MANIFEST}auth:\n  providers:\n    jwt: {{type: jwt, issuer: https://idp, algorithms: [EdDSA], keys: [keys/idp.jwks.json]}}\n    keys: {{type: apiKey}}\n  schemes: {{idp: jwt, key: keys}}\n"
        );
        let sig = r#"{"kty":"OKP","crv":"Ed25519","kid":"k1","use":"sig","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;
        let enc = r#"{"kty":"RSA","kid":"e1","use":"enc","alg":"RSA-OAEP","n":"AQAB","e":"AQAB"}"#;
        let ops = r#"{"kty":"RSA","kid":"e2","alg":"RSA-OAEP-256","n":"AQAB","e":"AQAB"}"#;
        let jwks = format!(r#"{{"keys":[{enc},{sig},{ops}]}}"#);
        let c = build(&[
            ("mgw.yaml", &m),
            ("api.yaml", SECURED),
            ("keys/idp.jwks.json", &jwks),
        ])
        .unwrap();
        let Provider::Jwt(j) = &c.bundle.auth.providers["jwt"] else {
            panic!()
        };
        assert_eq!(j.keys.len(), 1);
        let warned: Vec<_> = c.warnings.iter().map(|w| w.message.as_str()).collect();
        for needle in [
            "key `e1` is left out: it is for `use: enc`, not signatures",
            "key `e2` is left out: `alg: RSA-OAEP-256` is an encryption algorithm",
        ] {
            assert!(
                warned.iter().any(|w| w.contains(needle)),
                "{needle}: {warned:?}"
            );
        }
        let only_enc = format!(r#"{{"keys":[{enc}]}}"#);
        let e = build(&[
            ("mgw.yaml", &m),
            ("api.yaml", SECURED),
            ("keys/idp.jwks.json", &only_enc),
        ])
        .unwrap_err()
        .to_string();
        assert!(e.contains("the JWKS has no signing keys"), "{e}");
    }

    #[test]
    fn scope_match_reaches_the_bundle() {
        let c = build(&[("mgw.yaml", MANIFEST), ("api.yaml", SPEC)]).unwrap();
        assert_eq!(c.bundle.apis[0].scope_match, None);
        let text = String::from_utf8(c.bytes.clone()).unwrap();
        assert!(!text.contains("scopeMatch"), "unset stays out: {text}");
        let m = format!("{MANIFEST}    scopeMatch: any\n");
        let c = build(&[("mgw.yaml", &m), ("api.yaml", SPEC)]).unwrap();
        assert_eq!(
            c.bundle.apis[0].scope_match,
            Some(mgw_bundle::ScopeMatch::Any)
        );
        let text = String::from_utf8(c.bytes.clone()).unwrap();
        assert!(text.contains(r#""scopeMatch":"any""#), "{text}");
        let bad = format!("{MANIFEST}    scopeMatch: some\n");
        let e = build(&[("mgw.yaml", &bad), ("api.yaml", SPEC)])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("mgw.yaml:10:17: `apis[0].scopeMatch`: `some` is not a valid value; expected `all` or `any`"),
            "{e}"
        );
    }

    #[test]
    fn unknown_rate_limit_names_are_build_errors_at_their_position() {
        let spec = format!(
            "{}x-mgw-rate-limit: Platinum\n",
            SPEC.replace(
                "get: {operationId: getPet}",
                "get: {operationId: getPet, x-wso2-throttling-tier: Gold}"
            )
        );
        let e = build(&[("mgw.yaml", MANIFEST), ("api.yaml", &spec)])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("api.yaml:6:56: `#/paths/~1pets~1{id}/get/x-wso2-throttling-tier`: no rate-limit policy named `Gold`; declare it in `mgw.yaml` under `rateLimits.policies` (declared: none), or use `Unlimited`"),
            "{e}"
        );
        assert!(
            e.contains(
                "api.yaml:10:19: `#/x-mgw-rate-limit`: no rate-limit policy named `Platinum`"
            ),
            "{e}"
        );
    }

    #[test]
    fn upstream_resilience_settings_reach_the_bundle() {
        let m = MANIFEST.replace(
            "pets: {urls: ['${PETS_URL:-http://127.0.0.1:8081}']}",
            "pets:\n    urls: ['${PETS_URL:-http://127.0.0.1:8081}']\n    maxConcurrentRequests: 8\n    circuitBreaker: {openDuration: 2s, failureRatePercent: 0}\n    passiveHealth: {ejectionDuration: 1m}\n    healthCheck: {path: /ready}\n    retry: {budget: {percent: 5}}",
        );
        let c = build(&[("mgw.yaml", &m), ("api.yaml", SPEC)]).unwrap();
        let u = &c.bundle.upstreams["pets"];
        assert_eq!(u.max_concurrent_requests, 8);
        assert_eq!(u.circuit_breaker.open_ms, 2_000);
        assert_eq!(u.circuit_breaker.failure_rate_percent, 0);
        assert_eq!(u.circuit_breaker.consecutive_failures, 10);
        assert_eq!(u.passive_health.ejection_ms, 60_000);
        assert_eq!(u.health_check.as_ref().unwrap().path, "/ready");
        assert_eq!(u.health_check.as_ref().unwrap().interval_ms, 5_000);
        assert_eq!(u.retry.budget_percent, 5);
        assert_eq!(u.retry.min_retries_per_second, 10);
        // A value only the gateway can judge is mapped back to `mgw.yaml`.
        let m = m.replace(
            "failureRatePercent: 0",
            "failureRatePercent: 0, consecutiveFailures: 0",
        );
        let e = build(&[("mgw.yaml", &m), ("api.yaml", SPEC)])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("mgw.yaml:7:21: `upstreams.pets.circuitBreaker`: can never open"),
            "{e}"
        );
    }

    #[test]
    fn no_upstream_is_explained() {
        let m = "name: pets\nversion: 1.0.0\napis:\n  - name: pets\n    spec: api.yaml\n";
        let e = build(&[("mgw.yaml", m), ("api.yaml", SPEC)])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("mgw.yaml:4:5: `apis[0]`: API `pets` has no upstream"),
            "{e}"
        );
    }
}

/// The WSO2 Microgateway 3.1 documents of `tests/corpus/wso2/` compiled into
/// bundles: what each `x-wso2-*` setting becomes. Checked before the gateway's
/// own validation, which refuses their `https://` upstreams until the gateway
/// serves them (`builder/tests/wso2_corpus.rs` runs the whole CLI).
#[cfg(test)]
mod wso2_corpus {
    use std::collections::BTreeMap;

    use mgw_bundle::{Bundle, LoadBalancing, RateLimitKey};

    use super::*;
    use crate::project::{Source, load_from};

    const JWT: &str = "{type: jwt, issuer: 'https://idp.example.com/', algorithms: [RS256], jwksUrl: 'https://idp.example.com/jwks'}";

    fn corpus(path: &str) -> String {
        std::fs::read_to_string(format!(
            "{}/../tests/corpus/wso2/{path}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    /// Compiles `doc` as the API `a` of a project with the 3.x `policies.yaml`
    /// and `providers`; returns the bundle, errors and warnings as text.
    fn compile_doc(doc: &str, providers: &str) -> (Bundle, Vec<String>, Vec<String>) {
        compile_with(doc, providers, "{wso2Policies: policies.yaml}")
    }

    /// [`compile_doc`] with `rate_limits` as the manifest's `rateLimits`.
    fn compile_with(
        doc: &str,
        providers: &str,
        rate_limits: &str,
    ) -> (Bundle, Vec<String>, Vec<String>) {
        let project = load_from(Source::Memory(files(doc, providers, rate_limits))).unwrap();
        let mut c = Compiler::new(&project);
        let bundle = c.bundle();
        let text = |d: &[Diagnostic]| d.iter().map(ToString::to_string).collect();
        (bundle, text(&c.diags), text(&c.warnings))
    }

    /// The project files of [`compile_with`].
    fn files(doc: &str, providers: &str, rate_limits: &str) -> BTreeMap<String, String> {
        let policies = if doc.starts_with("tests/") {
            "tests/src/test/resources/policies.yaml"
        } else {
            "distribution/resources/definitions/policies.yaml"
        };
        let manifest = format!(
            "name: a\nversion: '1'\napis: [{{name: a, spec: api.yaml}}]\nrateLimits: {rate_limits}\nauth:\n  providers:\n{providers}"
        );
        [
            ("mgw.yaml".to_owned(), manifest),
            ("api.yaml".to_owned(), corpus(doc)),
            ("policies.yaml".to_owned(), corpus(policies)),
        ]
        .into()
    }

    fn op<'b>(b: &'b Bundle, id: &str) -> &'b mgw_bundle::Operation {
        b.apis[0].operations.iter().find(|o| o.id == id).unwrap()
    }

    #[test]
    fn per_operation_and_referenced_endpoints_become_upstreams() {
        let (b, e, _) = compile_doc(
            "samples/per_resource_endpoint.yaml",
            &format!("    default: {JWT}\n"),
        );
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(
            b.upstreams["x-wso2:a"].urls,
            ["https://petstore.swagger.io/v2"]
        );
        let u = op(&b, "findPetsByStatus").upstream.as_deref().unwrap();
        assert_eq!(
            b.upstreams[u].urls,
            [
                "http://www.mocky.io/v2/5cd28cd73100008628339802",
                "https://petstore.swagger.io/v2"
            ]
        );
        assert_eq!(b.upstreams[u].load_balancing, LoadBalancing::RoundRobin);

        let (b, e, _) = compile_doc(
            "tests/src/test/resources/openAPIs/endpoints/endpoints_by_reference.yaml",
            &format!(
                "    default: {JWT}\n    petstore_auth: {JWT}\n    api_key: {{type: apiKey}}\n"
            ),
        );
        assert!(e.is_empty(), "{e:?}");
        // `x-wso2-production-endpoints: "#/x-wso2-endpoints/myEndpoint2"` at the top.
        assert_eq!(b.upstreams["x-wso2:a"].urls, ["https://localhost:2380/v2"]);
        let u = op(&b, "findPetsByTags").upstream.as_deref().unwrap();
        assert_eq!(
            b.upstreams[u].urls,
            ["https://localhost:2380/v1", "https://localhost:2380/v2"]
        );
    }

    #[test]
    fn failover_and_load_balance_types() {
        for (doc, lb) in [
            ("fail_over.yaml", LoadBalancing::Failover),
            ("load_balance.yaml", LoadBalancing::RoundRobin),
        ] {
            let (b, e, _) = compile_doc(
                &format!("tests/src/test/resources/openAPIs/endpoints/{doc}"),
                &format!("    default: {JWT}\n"),
            );
            assert!(e.is_empty(), "{e:?}");
            assert_eq!(b.upstreams["x-wso2:a"].load_balancing, lb, "{doc}");
            assert_eq!(b.upstreams["x-wso2:a"].urls.len(), 2, "{doc}");
        }
    }

    /// `rateLimits.wso2Scope: global` makes every tier a global policy, which
    /// needs `rateLimits.redis`.
    #[test]
    fn tiers_become_global_when_asked() {
        let doc = "samples/policies_sample.yaml";
        let providers = format!("    default: {JWT}\n");
        let scopes = |b: &Bundle| {
            let r = b.rate_limits.as_ref().unwrap();
            r.policies.values().map(|p| p.scope).collect::<Vec<_>>()
        };
        let (b, e, _) = compile_with(
            doc,
            &providers,
            "{wso2Policies: policies.yaml, wso2Scope: global, redis: {url: '${MGW_REDIS_URL}'}}",
        );
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(scopes(&b), [mgw_bundle::RateLimitScope::Global; 2]);
        assert_eq!(
            b.rate_limits.as_ref().unwrap().redis.as_ref().unwrap().url,
            "${MGW_REDIS_URL}"
        );
        // `local` is the default, also when written.
        let (b, e, _) = compile_with(
            doc,
            &providers,
            "{wso2Policies: policies.yaml, wso2Scope: local}",
        );
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(scopes(&b), [mgw_bundle::RateLimitScope::Local; 2]);

        // The manifest is refused, at the key's position.
        let refused = |rate_limits: &str| {
            load_from(Source::Memory(files(doc, &providers, rate_limits)))
                .map(|_| ())
                .expect_err("a refused manifest")
                .to_string()
        };
        let e = refused("{wso2Policies: policies.yaml, wso2Scope: global}");
        assert!(
            e.contains("mgw.yaml:4:54")
                && e.contains("rateLimits.wso2Scope")
                && e.contains(
                    "`global` keeps the WSO2 tiers' budgets in Redis; set `rateLimits.redis.url`"
                ),
            "{e}"
        );
        let e = refused("{wso2Scope: global}");
        assert!(
            e.contains("rateLimits.wso2Scope")
                && e.contains(
                    "applies to the tiers of `rateLimits.wso2Policies`, which is not set"
                ),
            "{e}"
        );
        let e = refused("{wso2Policies: policies.yaml, wso2Scope: shared}");
        assert!(e.contains("wso2Scope") && e.contains("shared"), "{e}");
    }

    #[test]
    fn tiers_come_from_policies_yaml_and_unused_ones_stay_out() {
        let (b, e, w) = compile_doc(
            "samples/policies_sample.yaml",
            &format!("    default: {JWT}\n"),
        );
        assert!(e.is_empty(), "{e:?}");
        assert!(!w.iter().any(|w| w.contains("not used")), "{w:?}");
        let r = b.rate_limits.as_ref().unwrap();
        assert_eq!(
            r.policies.keys().collect::<Vec<_>>(),
            ["10kPerMin", "20kPerMin"]
        );
        assert_eq!(r.policies["10kPerMin"].requests, 10_000);
        assert_eq!(r.policies["10kPerMin"].period_seconds, 60);
        assert_eq!(r.policies["10kPerMin"].key, RateLimitKey::Api);
        assert_eq!(b.apis[0].rate_limit.as_deref(), Some("10kPerMin"));
        assert_eq!(
            op(&b, "findPetsByStatus").rate_limit.as_deref(),
            Some("20kPerMin")
        );
    }

    #[test]
    fn sandbox_endpoints_disabled_security_and_undefined_tiers() {
        let providers = format!(
            "    default: {JWT}\n    petstore_auth: {JWT}\n    api_key: {{type: apiKey}}\n    api_key_query: {{type: apiKey}}\n    petstore_basic: {{type: basic}}\n"
        );
        let (b, e, w) = compile_doc(
            "tests/src/test/resources/openAPIs/common_api.yaml",
            &providers,
        );
        assert!(e.is_empty(), "{e:?}");
        let api = &b.apis[0];
        let sb = api.sandbox.as_ref().unwrap();
        assert_eq!(
            (sb.claim.as_deref(), sb.header.as_deref(), sb.value.as_str()),
            (Some("keytype"), None, "SANDBOX")
        );
        assert_eq!(sb.upstream.as_deref(), Some("x-wso2-sandbox:a"));
        let put = op(&b, "updatePet");
        assert_eq!(
            put.sandbox_upstream.as_deref(),
            Some("x-wso2-sandbox:a:updatePet")
        );
        // `x-wso2-disable-security: true` on `PUT /pet`: open.
        assert!(put.security.is_empty());
        // `x-wso2-throttling-tier: NonExistingPolicy`: WSO2 answered 500; left out.
        assert!(!api.operations.iter().any(|o| o.id == "getOrderById"));
        assert!(
            w.iter().any(|w| w.contains("api.yaml:359:31")
                && w.contains("tier `NonExistingPolicy` is not defined")),
            "{w:?}"
        );
    }

    #[test]
    fn mgw_yaml_chooses_what_selects_sandbox_traffic() {
        let doc = corpus("tests/src/test/resources/openAPIs/jwtGeneration/jwt_generation.yaml");
        let manifest = format!(
            "name: a\nversion: '1'\napis:\n  - name: a\n    spec: api.yaml\n    sandbox: {{header: X-Environment, value: sandbox}}\nauth:\n  providers:\n    petstore_auth: {JWT}\n"
        );
        let files: BTreeMap<String, String> = [
            ("mgw.yaml".to_owned(), manifest),
            ("api.yaml".to_owned(), doc),
        ]
        .into();
        let project = load_from(Source::Memory(files)).unwrap();
        let mut c = Compiler::new(&project);
        let b = c.bundle();
        assert!(c.diags.is_empty(), "{:?}", c.diags);
        let sb = b.apis[0].sandbox.as_ref().unwrap();
        assert_eq!(
            (sb.claim.as_deref(), sb.header.as_deref(), sb.value.as_str()),
            (None, Some("X-Environment"), "sandbox")
        );
        assert_eq!(sb.upstream.as_deref(), Some("x-wso2-sandbox:a"));
    }

    #[test]
    fn wso2_default_security_needs_a_provider_and_honours_disable() {
        let doc = "tests/src/test/resources/openAPIs/security/disable_security.yaml";
        let (b, e, _) = compile_doc(
            doc,
            &format!(
                "    idp: {JWT}\n    petstore_basic: {{type: basic}}\n    petstore_auth: {JWT}\n"
            ),
        );
        // Two bearer providers and none named `default`: not guessed.
        assert!(e.is_empty(), "{e:?}");
        // The API disables security; `getPetById` re-enables it and names schemes.
        assert!(op(&b, "findPetsByStatus").security.is_empty());
        assert!(!op(&b, "getPetById").security.is_empty());

        let (b, e, _) = compile_doc("samples/petstore_basic.yaml", &format!("    idp: {JWT}\n"));
        assert!(e.is_empty(), "{e:?}");
        let sec = &op(&b, "getPetById").security;
        assert_eq!(sec.len(), 1);
        assert!(sec[0].contains_key("default"), "{sec:?}");
        assert_eq!(b.apis[0].security_schemes["default"].provider, "idp");
        assert_eq!(b.apis[0].security_schemes["default"].name, "authorization");

        let (_, e, _) = compile_doc("samples/petstore_basic.yaml", "    {}\n");
        assert!(
            e.iter().any(|e| e.contains(
                "operations `findPetsByStatus` and `getPetById` of API `a` have no `security`, so WSO2 Microgateway secures them with OAuth2 by default"
            )),
            "{e:?}"
        );
    }

    #[test]
    fn cors_keys_in_every_case() {
        // kebab-case; its origins have no scheme and never matched in WSO2.
        let (b, e, w) = compile_doc("samples/cors_sample.yaml", &format!("    default: {JWT}\n"));
        assert!(e.is_empty(), "{e:?}");
        assert!(b.apis[0].cors.is_none());
        assert!(
            w.iter()
                .any(|w| w.contains("CORS origins `test.com` and `example.com` have no scheme")),
            "{w:?}"
        );

        // snake_case, and camelCase as `etcd_test.yaml` writes it (that document
        // does not load: etcd URLs).
        for cors in [
            "  access_control_allow_origins: ['https://app.example.com']\n  access_control_allow_credentials: true\n  access_control_allow_methods: [GET]\n",
            "  accessControlAllowOrigins: ['https://app.example.com']\n  accessControlAllowCredentials: true\n  corsConfigurationEnabled: true\n  accessControlAllowMethods: [GET]\n",
        ] {
            let spec = format!(
                "openapi: 3.0.0\ninfo: {{title: t, version: '1'}}\nx-wso2-basePath: /t\nx-wso2-disable-security: true\nx-wso2-production-endpoints: {{urls: ['http://a:1']}}\nx-wso2-cors:\n{cors}paths: {{/a: {{get: {{}}}}}}\n"
            );
            let files: BTreeMap<String, String> = [
                (
                    "mgw.yaml".to_owned(),
                    "name: a\nversion: '1'\napis: [{name: a, spec: api.yaml}]\n".to_owned(),
                ),
                ("api.yaml".to_owned(), spec),
            ]
            .into();
            let c = compile(&load_from(Source::Memory(files)).unwrap()).unwrap();
            let cors = c.bundle.apis[0].cors.as_ref().unwrap();
            assert_eq!(cors.allow_origins, ["https://app.example.com"]);
            assert!(cors.allow_credentials);
            assert_eq!(cors.allow_methods, ["GET"]);
        }
    }
}
