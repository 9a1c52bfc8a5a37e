//! Validation of a [`Bundle`] into a [`Config`]: every problem is collected with
//! its key path, none stops the others. One file per concern; this one walks the
//! document and checks what spans concerns (APIs, operations, routes).

mod listeners;
mod redis;
mod security;
mod tracing;
mod traffic;
mod transforms;
mod upstreams;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::Duration;

use http::Method;

use crate::config::*;
use crate::env::{self, Env};
use crate::error::{BundleError, Problem};
use crate::paths::{canonical_template, join_paths, normalize_base_path};
use crate::template::check_template;
use crate::transform::TransformCfg;
use crate::wire::*;

use listeners::{check_limits, check_listeners, check_tls};
use security::{check_api_security, check_auth, check_requirements};
use traffic::{check_rate_limits, check_trusted_proxies, rate_limit_ref};
use transforms::{check_path_facts, check_transforms};
use upstreams::check_upstream;
pub use upstreams::parse_target;

/// Collects problems instead of stopping at the first.
/// A contract whose schemas compiled, or its problems under `key`.
fn compiled<T>(
    c: &mut Checker<'_>,
    key: &str,
    r: Result<T, Vec<(String, String)>>,
) -> Option<std::sync::Arc<T>> {
    match r {
        Ok(v) => Some(std::sync::Arc::new(v)),
        Err(problems) => {
            for (k, m) in problems {
                c.push(format!("{key}.{k}"), m);
            }
            None
        }
    }
}

struct Checker<'a> {
    env: Option<&'a dyn Env>,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    fn push(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem {
            key: key.into(),
            message: message.into(),
        });
    }

    /// Resolves a template. Without an environment (the builder validating), it
    /// only checks the template syntax and returns `None`.
    fn resolve(&mut self, key: &str, template: &str) -> Option<String> {
        match self.env {
            Some(env) => match env::substitute(template, env) {
                Ok(v) => Some(v),
                Err(e) => {
                    self.push(key, e.to_string());
                    None
                }
            },
            None => {
                let always_set = BTreeMap::<String, String>::new();
                let probe = env::substitute(template, &always_set);
                match probe {
                    Ok(v) => Some(v),
                    Err(env::SubstError::Missing(_)) => None,
                    Err(e) => {
                        self.push(key, e.to_string());
                        None
                    }
                }
            }
        }
    }

    fn millis(&mut self, key: &str, ms: u64) -> Duration {
        if ms == 0 {
            self.push(key, "must be greater than 0");
        }
        Duration::from_millis(ms)
    }
}

impl Config {
    /// Validates a bundle. With `env`, every `${VAR}` is resolved and must be
    /// set or defaulted; without, templates are only checked for syntax (the
    /// builder's view, where the deployment environment is unknown).
    pub fn from_bundle(
        bundle: &Bundle,
        digest: String,
        env: Option<&dyn Env>,
    ) -> Result<Config, BundleError> {
        let mut c = Checker {
            env,
            problems: Vec::new(),
        };
        if bundle.schema_version != SCHEMA_VERSION {
            c.push(
                "schemaVersion",
                format!(
                    "this gateway reads schema version {SCHEMA_VERSION}, the bundle has {}; rebuild the image with a matching `mgw`",
                    bundle.schema_version
                ),
            );
        }
        if bundle.gateway.name.trim().is_empty() {
            c.push("gateway.name", "must not be empty");
        }
        let (api_addr, admin_addr) = check_listeners(&mut c, &bundle.listeners);
        let l = &bundle.limits;
        let limits = check_limits(&mut c, l);

        let rate_limits = bundle
            .rate_limits
            .as_ref()
            .map(|r| check_rate_limits(&mut c, r));
        let trusted_proxies = check_trusted_proxies(&mut c, &bundle.trusted_proxies);

        let mut upstream_index = BTreeMap::new();
        let mut upstreams = Vec::with_capacity(bundle.upstreams.len());
        for (name, u) in &bundle.upstreams {
            let key = format!("upstreams.{name}");
            upstream_index.insert(name.as_str(), upstreams.len());
            upstreams.push(check_upstream(&mut c, &key, name, u));
        }

        let auth = check_auth(&mut c, &bundle.auth);
        let tls = check_tls(&mut c, &bundle.listeners.api, &bundle.apis);
        let mut apis = Vec::with_capacity(bundle.apis.len());
        // Sized once: growing by doubling kept two copies of the largest table alive.
        let mut routes = Vec::with_capacity(bundle.apis.iter().map(|a| a.operations.len()).sum());
        let mut api_names = HashSet::new();
        let mut seen_routes: BTreeMap<(String, String), String> = BTreeMap::new();
        for (ai, api) in bundle.apis.iter().enumerate() {
            let key = format!("apis[{ai}]");
            if api.name.trim().is_empty() {
                c.push(format!("{key}.name"), "must not be empty");
            } else if !api_names.insert(api.name.as_str()) {
                c.push(
                    format!("{key}.name"),
                    format!("API `{}` is listed twice", api.name),
                );
            }
            // One rule with `mgw validate` (dot segments and `//` included), here so a
            // bad base path is one error, not one per route.
            let (base_path, base_ok) = match normalize_base_path(&api.base_path) {
                Ok(b) => (b, true),
                Err(e) => {
                    c.push(format!("{key}.basePath"), e);
                    (api.base_path.clone(), false)
                }
            };
            let base_segments = base_path.split('/').filter(|s| !s.is_empty()).count();
            let api_upstream = match upstream_index.get(api.upstream.as_str()) {
                Some(&i) => i,
                None => {
                    c.push(
                        format!("{key}.upstream"),
                        format!(
                            "no upstream named `{}` (known: {})",
                            api.upstream,
                            known(&upstream_index)
                        ),
                    );
                    0
                }
            };
            let upstream_ref =
                |c: &mut Checker, key: String, name: &str| match upstream_index.get(name) {
                    Some(&i) => Some(i),
                    None => {
                        c.push(
                            key,
                            format!(
                                "no upstream named `{name}` (known: {})",
                                known(&upstream_index)
                            ),
                        );
                        None
                    }
                };
            let sandbox_by = api
                .sandbox
                .as_ref()
                .and_then(|sb| match (&sb.claim, &sb.header) {
                    (Some(claim), None) if !claim.trim().is_empty() => {
                        Some(SandboxBy::Claim(claim.clone()))
                    }
                    (None, Some(h)) => match http::HeaderName::from_bytes(h.as_bytes()) {
                        Ok(h) => Some(SandboxBy::Header(h)),
                        Err(_) => {
                            c.push(
                                format!("{key}.sandbox.header"),
                                format!("`{h}` is not a valid header name"),
                            );
                            None
                        }
                    },
                    _ => {
                        c.push(
                            format!("{key}.sandbox"),
                            "needs exactly one of `claim` (such as `keytype`) and `header`",
                        );
                        None
                    }
                });
            let api_sandbox = api.sandbox.as_ref().and_then(|sb| {
                sb.upstream
                    .as_deref()
                    .and_then(|u| upstream_ref(&mut c, format!("{key}.sandbox.upstream"), u))
            });
            let max_body = api.max_body_bytes.unwrap_or(l.max_body_bytes);
            let api_rate_limit = rate_limit_ref(
                &mut c,
                &format!("{key}.rateLimit"),
                &api.rate_limit,
                &rate_limits,
            );
            let claim_headers = claim_headers_of(bundle, api);
            let api_transforms = api
                .transforms
                .as_ref()
                .map(|t| check_transforms(&mut c, &format!("{key}.transforms"), t, &claim_headers));
            if api.operations.is_empty() {
                c.push(
                    format!("{key}.operations"),
                    "an API needs at least one operation",
                );
            }
            for (oi, op) in api.operations.iter().enumerate() {
                let okey = format!("{key}.operations[{oi}]");
                if op.id.is_empty() {
                    c.push(format!("{okey}.id"), "must not be empty");
                }
                let method = match Method::from_bytes(op.method.to_ascii_uppercase().as_bytes()) {
                    Ok(m) if op.method.chars().all(|ch| ch.is_ascii_alphabetic()) => m,
                    _ => {
                        c.push(
                            format!("{okey}.method"),
                            format!("`{}` is not an HTTP method", op.method),
                        );
                        Method::GET
                    }
                };
                if !op.path.starts_with('/') {
                    c.push(
                        format!("{okey}.path"),
                        format!("`{}` must start with `/`", op.path),
                    );
                }
                let template = join_paths(&base_path, &op.path);
                if base_ok {
                    if let Err(e) = check_template(&template) {
                        c.push(format!("{okey}.path"), e.to_string());
                    }
                }
                let upstream = match &op.upstream {
                    None => api_upstream,
                    Some(u) => match upstream_index.get(u.as_str()) {
                        Some(&i) => i,
                        None => {
                            c.push(
                                format!("{okey}.upstream"),
                                format!(
                                    "no upstream named `{u}` (known: {})",
                                    known(&upstream_index)
                                ),
                            );
                            api_upstream
                        }
                    },
                };
                let sandbox_upstream = match (&op.sandbox_upstream, &api.sandbox) {
                    (Some(_), None) => {
                        c.push(
                            format!("{okey}.sandboxUpstream"),
                            format!("needs `{key}.sandbox` (the claim that selects it)"),
                        );
                        None
                    }
                    (Some(u), Some(_)) => {
                        upstream_ref(&mut c, format!("{okey}.sandboxUpstream"), u)
                    }
                    (None, _) => api_sandbox,
                };
                let sandbox = api
                    .sandbox
                    .as_ref()
                    .zip(sandbox_by.clone())
                    .zip(sandbox_upstream)
                    .map(|((sb, by), upstream)| {
                        Box::new(SandboxRoute {
                            by,
                            value: sb.value.clone(),
                            upstream,
                        })
                    });
                let route_key = (method.as_str().to_owned(), canonical_template(&template));
                if let Some(prev) = seen_routes.insert(route_key, okey.clone()) {
                    c.push(
                        okey.clone(),
                        format!("`{method} {template}` is already served by `{prev}`"),
                    );
                }
                let operation_rate_limit = rate_limit_ref(
                    &mut c,
                    &format!("{okey}.rateLimit"),
                    &op.rate_limit,
                    &rate_limits,
                );
                let security =
                    check_requirements(&mut c, &okey, &op.security, &api.security_schemes);
                if op.anonymous && op.security.is_empty() {
                    c.push(
                        format!("{okey}.anonymous"),
                        "anonymous callers are allowed only next to `security` requirements; leave both out for an open operation",
                    );
                }
                let op_transforms = op.transforms.as_ref().map(|t| {
                    let tkey = format!("{okey}.transforms");
                    let checked = check_transforms(&mut c, &tkey, t, &claim_headers);
                    check_path_facts(&mut c, &tkey, &checked, &op.id, &op.path);
                    checked
                });
                if let Some(t) = &api_transforms {
                    check_path_facts(&mut c, &format!("{key}.transforms"), t, &op.id, &op.path);
                }
                let transforms = TransformCfg::merge(api_transforms.as_ref(), op_transforms)
                    .map(std::sync::Arc::new);
                let request = op.request.as_ref().and_then(|r| {
                    compiled(
                        &mut c,
                        &format!("{okey}.request"),
                        crate::contract::CheckedRequest::new(r),
                    )
                });
                let responses = op.responses.as_ref().and_then(|r| {
                    compiled(
                        &mut c,
                        &format!("{okey}.responses"),
                        crate::contract::CheckedResponses::new(r),
                    )
                });
                routes.push(RouteCfg {
                    api: ai,
                    operation_id: op.id.clone(),
                    method,
                    path: op.path.clone(),
                    template,
                    base_segments,
                    upstream,
                    sandbox,
                    api_rate_limit,
                    operation_rate_limit,
                    max_body_bytes: max_body,
                    ignore_trailing_slash: api.ignore_trailing_slash,
                    security,
                    anonymous: op.anonymous,
                    websocket: op.websocket,
                    transforms,
                    request,
                    mock: op.mock.clone().map(std::sync::Arc::new),
                    responses,
                    filters: op.filters.clone(),
                });
            }
            let (schemes, cors) = check_api_security(&mut c, &key, api, &auth);
            apis.push(ApiCfg {
                name: api.name.clone(),
                version: api.version.clone(),
                base_path,
                schemes,
                cors,
                mtls: api.mtls,
                underscore_headers: api.underscore_headers.unwrap_or_default(),
                scope_match: api.scope_match.unwrap_or_default(),
            });
        }

        let analytics = check_analytics(&mut c, &bundle.analytics);
        let tracing = bundle
            .tracing
            .as_ref()
            .map(|t| tracing::check_tracing(&mut c, t));

        if !c.problems.is_empty() {
            return Err(BundleError::Invalid(c.problems));
        }
        Ok(Config {
            digest,
            gateway: bundle.gateway.clone(),
            api_addr,
            admin_addr,
            limits,
            rate_limits,
            trusted_proxies,
            upstreams,
            apis,
            routes,
            analytics,
            tls,
            auth,
            tracing,
        })
    }
}

/// The request headers the API's providers set from claims, lowercase: the
/// gateway's own, which no transform may touch.
fn claim_headers_of(bundle: &Bundle, api: &Api) -> BTreeSet<String> {
    api.security_schemes
        .values()
        .filter_map(|s| bundle.auth.providers.get(&s.provider))
        .flat_map(|p| match p {
            Provider::Jwt(j) => j.claim_headers.values().collect::<Vec<_>>(),
            Provider::Introspection(i) => i.claim_headers.values().collect(),
            Provider::ApiKey(_) | Provider::Basic(_) => Vec::new(),
        })
        .map(|h| h.to_ascii_lowercase())
        .collect()
}

fn check_analytics(c: &mut Checker<'_>, a: &Analytics) -> AnalyticsCfg {
    let queue_capacity = bounded(c, "analytics.queueCapacity", a.queue_capacity, 1, 1 << 24);
    match a.sink {
        SinkKind::Stdout => AnalyticsCfg::Stdout { queue_capacity },
        SinkKind::None => AnalyticsCfg::Disabled,
        SinkKind::File => match &a.path {
            None => {
                c.push("analytics.path", "required when `sink` is `file`");
                AnalyticsCfg::Disabled
            }
            Some(p) => {
                let path = c.resolve("analytics.path", p).unwrap_or_default();
                AnalyticsCfg::File {
                    path,
                    queue_capacity,
                }
            }
        },
    }
}

/// One part of a bundle, checked on its own by the same rules as
/// [`Config::from_bundle`] (templates only for syntax): how the builder checks
/// `mgw.yaml`'s settings, where it has no whole bundle yet, so `mgw validate`
/// refuses exactly what the gateway would. Problems name bundle key paths
/// (`upstreams.pets.connectTimeoutMs`).
pub enum Part<'a> {
    Limits(&'a Limits),
    /// A declared upstream and its name.
    Upstream(&'a str, &'a Upstream),
    RateLimits(&'a RateLimits),
    Analytics(&'a Analytics),
}

impl Part<'_> {
    pub fn problems(&self) -> Vec<Problem> {
        let mut c = Checker {
            env: None,
            problems: Vec::new(),
        };
        match self {
            Part::Limits(l) => {
                check_limits(&mut c, l);
            }
            Part::Upstream(name, u) => {
                check_upstream(&mut c, &format!("upstreams.{name}"), name, u);
            }
            Part::RateLimits(r) => {
                check_rate_limits(&mut c, r);
            }
            Part::Analytics(a) => {
                check_analytics(&mut c, a);
            }
        }
        c.problems
    }
}

fn bounded(c: &mut Checker<'_>, key: &str, v: u64, min: u64, max: u64) -> usize {
    if v < min || v > max {
        c.push(key, format!("{v} is out of range ({min}..={max})"));
    }
    usize::try_from(v.clamp(min, max)).unwrap_or(usize::MAX)
}

fn known(index: &BTreeMap<&str, usize>) -> String {
    if index.is_empty() {
        return "none".into();
    }
    index
        .keys()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
