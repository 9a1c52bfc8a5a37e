//! `mgw.yaml`: the project file, parsed into wire structs and validated into
//! domain types.
//!
//! Two layers, as everywhere in mgw: the `*Wire` structs mirror the file exactly
//! (`deny_unknown_fields`, camelCase, human units such as `10s` and `64KiB`), and
//! [`Manifest`] holds checked values. A setting the gateway has is validated
//! straight into its `mgw_bundle` type (durations in milliseconds, sizes in
//! bytes); a setting left out takes that type's default, so this module never
//! invents a default the gateway does not have, and no setting is declared a
//! third time in between. Only what the builder alone needs keeps a type of its
//! own here (the spec and its selection per API, the image, key files to
//! inline). It reads no spec and no file but `rateLimits.wso2Policies`: it checks
//! what `mgw.yaml` alone can tell, and every problem names its key path and
//! position.

use std::collections::BTreeMap;
use std::time::Duration;

use mgw_bundle::check::Part;
use mgw_bundle::env;
use mgw_bundle::{
    Analytics, CircuitBreaker, HealthCheck, Limits, Listener, Listeners, OnRedisFailure,
    PassiveHealth, RateLimitHeaders, RateLimitPolicy, RateLimitRedis, RateLimitScope, RateLimits,
    Retry, SinkKind, Upstream,
};
use mgw_bundle::{
    ClientAuth, ClientCertMode, LoadBalancing, RateLimitKey, ScopeMatch, UnderscoreHeaders,
};
use serde::Deserialize;

use super::MANIFEST_FILE;
use super::de::{DeError, from_node};
use super::error::{Diagnostic, KeyPath, Origin, list, suggestion};
use super::keymap;
use super::refs::{Source, normalize_relative};
use super::units::{duration_ms, parse_size};
use super::yaml::{self, Node};

// ---------------------------------------------------------------------------
// Wire format
// ---------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ManifestWire {
    name: String,
    version: String,
    #[serde(default)]
    image: Option<ImageWire>,
    #[serde(default)]
    listeners: Option<ListenersWire>,
    #[serde(default)]
    limits: Option<LimitsWire>,
    #[serde(default)]
    rate_limits: Option<RateLimitsWire>,
    #[serde(default)]
    trusted_proxies: Option<Vec<String>>,
    #[serde(default)]
    upstreams: Option<BTreeMap<String, UpstreamWire>>,
    apis: Vec<ApiWire>,
    #[serde(default)]
    analytics: Option<AnalyticsWire>,
    /// Authentication providers and the OpenAPI schemes they serve.
    #[serde(default)]
    auth: Option<AuthWire>,
    /// CORS for every API (an API may override it).
    #[serde(default)]
    cors: Option<CorsWire>,
    /// OpenTelemetry traces: the wire type itself, checked at compile.
    #[serde(default)]
    tracing: Option<mgw_bundle::Tracing>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ImageWire {
    #[serde(default)]
    repository: Option<String>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
    /// `linux/amd64`, `linux/arm64` or `all`: what `mgw build` builds without
    /// `--platform`.
    #[serde(default)]
    platforms: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ListenersWire {
    #[serde(default)]
    api: Option<ListenerWire>,
    #[serde(default)]
    admin: Option<ListenerWire>,
}

/// `api: 0.0.0.0:8080` or `api: {address: 0.0.0.0:8080, tls: {...}}`.
#[derive(Debug)]
struct ListenerWire {
    address: String,
    tls: Option<TlsWire>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ListenerObject {
    address: String,
    #[serde(default)]
    tls: Option<TlsWire>,
}

impl<'de> Deserialize<'de> for ListenerWire {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = ListenerWire;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an address such as `0.0.0.0:8080`, or a mapping with `address`")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ListenerWire, E> {
                Ok(ListenerWire {
                    address: v.into(),
                    tls: None,
                })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<ListenerWire, A::Error> {
                let o =
                    ListenerObject::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(ListenerWire {
                    address: o.address,
                    tls: o.tls,
                })
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct LimitsWire {
    #[serde(default)]
    header_read_timeout: Option<String>,
    #[serde(default)]
    max_header_size: Option<String>,
    #[serde(default)]
    max_headers: Option<u64>,
    #[serde(default)]
    idle_timeout: Option<String>,
    #[serde(default)]
    max_body_size: Option<String>,
    #[serde(default)]
    shutdown_grace: Option<String>,
    #[serde(default)]
    h2_max_concurrent_streams: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct UpstreamWire {
    urls: Vec<String>,
    #[serde(default)]
    load_balancing: Option<LoadBalancing>,
    #[serde(default)]
    connect_timeout: Option<String>,
    #[serde(default)]
    timeout: Option<String>,
    #[serde(default)]
    retry: Option<RetryWire>,
    #[serde(default)]
    pool_idle_timeout: Option<String>,
    #[serde(default)]
    pool_max_idle_per_host: Option<u64>,
    #[serde(default)]
    max_concurrent_requests: Option<u64>,
    #[serde(default)]
    circuit_breaker: Option<CircuitBreakerWire>,
    #[serde(default)]
    passive_health: Option<PassiveHealthWire>,
    #[serde(default)]
    health_check: Option<HealthCheckWire>,
    /// TLS to `https://` URLs, exactly as the bundle carries it.
    #[serde(default)]
    tls: Option<mgw_bundle::UpstreamTls>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RetryWire {
    #[serde(default)]
    attempts: Option<u32>,
    #[serde(default)]
    idempotent: Option<bool>,
    #[serde(default)]
    budget: Option<RetryBudgetWire>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ApiWire {
    name: String,
    spec: String,
    #[serde(default)]
    base_path: Option<String>,
    #[serde(default)]
    upstream: Option<String>,
    #[serde(default)]
    rate_limit: Option<String>,
    #[serde(default)]
    include: Option<IncludeWire>,
    /// Operations to leave out (same shape as `include`), applied after it.
    #[serde(default)]
    exclude: Option<IncludeWire>,
    #[serde(default)]
    max_body_size: Option<String>,
    /// CORS for this API; overrides the top-level `cors`.
    #[serde(default)]
    cors: Option<CorsWire>,
    /// Client certificates: `required` or `optional`.
    #[serde(default)]
    mtls: Option<ClientCertMode>,
    /// Client headers with `_` in the name: `allow`, `drop` (default) or `reject`.
    #[serde(default)]
    underscore_headers: Option<UnderscoreHeaders>,
    /// The scopes one requirement lists: `all` needed (default) or `any`.
    #[serde(default)]
    scope_match: Option<ScopeMatch>,
    /// Serve `/a/` with the route of `/a` (default `false`: the slash counts).
    #[serde(default)]
    ignore_trailing_slash: Option<bool>,
    /// Spec paths whose last parameter takes the rest of the path.
    #[serde(default)]
    catch_all: Option<Vec<String>>,
    /// What selects the sandbox upstreams (`x-wso2-sandbox-endpoints`).
    #[serde(default)]
    sandbox: Option<SandboxWire>,
    /// Header, query, path and method changes for every operation (checked by
    /// `mgw_bundle` when the bundle is).
    #[serde(default)]
    transforms: Option<mgw_bundle::Transforms>,
    /// Checks against the document (`request: true`).
    #[serde(default)]
    validation: Option<mgw_bundle::contract::ValidationSettings>,
    /// Answer every operation from the document's examples.
    #[serde(default)]
    mock: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SandboxWire {
    #[serde(default)]
    claim: Option<String>,
    #[serde(default)]
    header: Option<String>,
    value: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct IncludeWire {
    #[serde(default)]
    operations: Option<Vec<String>>,
    #[serde(default)]
    tags: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct AnalyticsWire {
    #[serde(default)]
    sink: Option<SinkKind>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    queue_capacity: Option<u64>,
}

// Traffic policies: rate limits and upstream resilience.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RateLimitsWire {
    #[serde(default)]
    policies: Option<BTreeMap<String, PolicyWire>>,
    #[serde(default)]
    unauthenticated: Option<String>,
    #[serde(default)]
    headers: Option<RateLimitHeadersWire>,
    #[serde(default)]
    max_keys: Option<u64>,
    /// A WSO2 Microgateway 3.x `policies.yaml` whose tiers become policies.
    #[serde(default)]
    wso2_policies: Option<String>,
    /// Where those tiers keep their budgets: `local` (each replica) or
    /// `global` (in `redis`, shared by every replica).
    #[serde(default)]
    wso2_scope: Option<RateLimitScope>,
    /// The wire type itself: checked by the bundle's own rules at compile.
    #[serde(default)]
    redis: Option<RateLimitRedis>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PolicyWire {
    requests: u64,
    period: String,
    #[serde(default)]
    burst: Option<u64>,
    #[serde(default)]
    key: Option<RateLimitKey>,
    #[serde(default)]
    scope: RateLimitScope,
    #[serde(default)]
    on_redis_failure: OnRedisFailure,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RateLimitHeadersWire {
    #[serde(default)]
    ietf: Option<bool>,
    #[serde(default)]
    x_rate_limit: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RetryBudgetWire {
    #[serde(default)]
    percent: Option<u32>,
    #[serde(default)]
    min_per_second: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CircuitBreakerWire {
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    consecutive_failures: Option<u32>,
    #[serde(default)]
    failure_rate_percent: Option<u32>,
    #[serde(default)]
    min_requests: Option<u32>,
    #[serde(default)]
    window: Option<String>,
    #[serde(default)]
    open_duration: Option<String>,
    #[serde(default)]
    half_open_requests: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PassiveHealthWire {
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    consecutive_failures: Option<u32>,
    #[serde(default)]
    ejection_duration: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct HealthCheckWire {
    path: String,
    #[serde(default)]
    interval: Option<String>,
    #[serde(default)]
    timeout: Option<String>,
    #[serde(default)]
    healthy_threshold: Option<u32>,
    #[serde(default)]
    unhealthy_threshold: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct TlsWire {
    #[serde(default)]
    cert: Option<String>,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    client_ca: Option<String>,
    #[serde(default)]
    client_auth: Option<ClientAuth>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct AuthWire {
    #[serde(default)]
    providers: BTreeMap<String, ProviderWire>,
    /// OpenAPI security scheme name → provider name.
    #[serde(default)]
    schemes: BTreeMap<String, String>,
}

/// One provider; which keys apply depends on `type` (checked after parsing, so
/// every misplaced key is reported with its position).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ProviderWire {
    #[serde(rename = "type")]
    kind: String,
    // jwt
    #[serde(default)]
    issuer: Option<String>,
    #[serde(default)]
    audiences: Option<Vec<String>>,
    #[serde(default)]
    algorithms: Option<Vec<String>>,
    #[serde(default)]
    keys: Option<Vec<KeyRefWire>>,
    #[serde(default)]
    jwks_url: Option<String>,
    #[serde(default)]
    discovery_url: Option<String>,
    #[serde(default)]
    jwks_refresh: Option<String>,
    #[serde(default)]
    jwks_min_refresh_interval: Option<String>,
    #[serde(default)]
    hmac_secret_file: Option<String>,
    #[serde(default)]
    leeway: Option<String>,
    #[serde(default)]
    consumer_claim: Option<String>,
    #[serde(default)]
    scope_claims: Option<Vec<String>>,
    // jwt and introspection
    #[serde(default)]
    max_token_size: Option<String>,
    #[serde(default)]
    claim_headers: Option<BTreeMap<String, String>>,
    #[serde(default)]
    cache_size: Option<u64>,
    // every type
    #[serde(default)]
    forward_credentials: Option<bool>,
    // apiKey and basic
    #[serde(default)]
    file: Option<String>,
    #[serde(default)]
    reload_interval: Option<String>,
    #[serde(default)]
    realm: Option<String>,
    // introspection
    #[serde(default)]
    endpoint: Option<String>,
    #[serde(default)]
    client_id_file: Option<String>,
    #[serde(default)]
    client_secret_file: Option<String>,
    #[serde(default)]
    timeout: Option<String>,
    #[serde(default)]
    cache_ttl: Option<String>,
    #[serde(default)]
    negative_cache_ttl: Option<String>,
}

/// `keys/idp.jwks.json` or `{file: keys/idp.pem, kid: idp-2024}`.
#[derive(Debug)]
struct KeyRefWire {
    file: String,
    kid: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct KeyRefObject {
    file: String,
    #[serde(default)]
    kid: Option<String>,
}

impl<'de> Deserialize<'de> for KeyRefWire {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = KeyRefWire;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(
                    "a key file such as `keys/idp.jwks.json`, or a mapping with `file` and `kid`",
                )
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<KeyRefWire, E> {
                Ok(KeyRefWire {
                    file: v.into(),
                    kid: None,
                })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<KeyRefWire, A::Error> {
                let o =
                    KeyRefObject::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(KeyRefWire {
                    file: o.file,
                    kid: o.kid,
                })
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CorsWire {
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    allow_origins: Option<Vec<String>>,
    #[serde(default)]
    allow_methods: Option<Vec<String>>,
    #[serde(default)]
    allow_headers: Option<Vec<String>>,
    #[serde(default)]
    expose_headers: Option<Vec<String>>,
    #[serde(default)]
    allow_credentials: Option<bool>,
    #[serde(default)]
    max_age: Option<String>,
}

// ---------------------------------------------------------------------------
// Domain types
// ---------------------------------------------------------------------------

/// A checked `mgw.yaml`. `None` settings take the gateway's defaults.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub name: String,
    pub version: String,
    pub image: ImageSettings,
    pub listeners: Listeners,
    pub limits: Limits,
    /// `None` when `mgw.yaml` has no `rateLimits`. Tiers of
    /// `rateLimits.wso2Policies` are among the policies (see [`Manifest::wso2`]).
    pub rate_limits: Option<RateLimits>,
    /// What `rateLimits.wso2Policies` brought in.
    pub wso2: Wso2Tiers,
    /// CIDR ranges (or `${VAR}` templates of comma-separated ranges).
    pub trusted_proxies: Vec<String>,
    /// Declared upstreams by name.
    pub upstreams: BTreeMap<String, Upstream>,
    /// In the order written; `apis[i]` in key paths.
    pub apis: Vec<ApiSettings>,
    pub analytics: Analytics,
    pub auth: AuthSettings,
    /// Top-level CORS, for APIs that set none of their own.
    pub cors: Option<mgw_bundle::Cors>,
    pub tracing: Option<mgw_bundle::Tracing>,
    tree: Node,
}

/// `auth`: providers (already in bundle form, templates unresolved) and the
/// scheme → provider map.
#[derive(Debug, Clone, Default)]
pub struct AuthSettings {
    pub providers: BTreeMap<String, mgw_bundle::Provider>,
    /// Key files each JWT provider names (project-relative), with their `kid`.
    pub key_files: BTreeMap<String, Vec<(String, Option<String>)>>,
    pub schemes: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSettings {
    /// Repository without tag (`localhost:5000/petstore-gw`); defaults to the name.
    pub repository: String,
    pub labels: BTreeMap<String, String>,
    /// `image.platforms`, sorted; empty: the host's platform.
    pub platforms: Vec<crate::platform::Platform>,
}

/// The tiers of a WSO2 `policies.yaml` named by `rateLimits.wso2Policies`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Wso2Tiers {
    /// `wso2Policies`, project-relative.
    pub file: Option<String>,
    /// Where each tier that became a policy is written. Tiers no API uses stay
    /// out of the bundle.
    pub origins: BTreeMap<String, Origin>,
    /// Tiers mgw cannot enforce, with the reason.
    pub refused: BTreeMap<String, String>,
}

/// The name that means "no rate limit" (WSO2's built-in tier), unless a policy
/// is declared with that name.
pub const UNLIMITED: &str = "Unlimited";

impl Manifest {
    /// Is `name` a declared policy, or `Unlimited`? `Some(true)` for a policy,
    /// `Some(false)` for no limit, `None` when unknown.
    pub fn policy_exists(&self, name: &str) -> Option<bool> {
        let declared = self
            .rate_limits
            .as_ref()
            .is_some_and(|r| r.policies.contains_key(name));
        if declared {
            Some(true)
        } else if name.eq_ignore_ascii_case(UNLIMITED) {
            Some(false)
        } else {
            None
        }
    }

    /// Why a tier of `rateLimits.wso2Policies` named `name` cannot be used.
    pub fn refused_tier(&self, name: &str) -> Option<&str> {
        self.wso2.refused.get(name).map(String::as_str)
    }

    /// Declared policy names, sorted.
    pub fn policy_names(&self) -> Vec<&str> {
        self.rate_limits
            .as_ref()
            .map(|r| r.policies.keys().map(String::as_str).collect())
            .unwrap_or_default()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiSettings {
    pub name: String,
    /// Project-relative, normalized, `/`-separated.
    pub spec: String,
    /// Normalized (`/petstore/v1`, or `/`); `None` to take it from the spec.
    pub base_path: Option<String>,
    /// A key of [`Manifest::upstreams`]; `None` to take it from the spec.
    pub upstream: Option<String>,
    /// A rate-limit policy for the whole API (or `Unlimited`); `None` to take it
    /// from the spec.
    pub rate_limit: Option<String>,
    /// `None` serves every operation.
    pub include: Option<Include>,
    /// Operations left out of what `include` selects.
    pub exclude: Option<Include>,
    pub max_body_bytes: Option<u64>,
    /// `Some(None)`: CORS switched off for this API (`cors: {enabled: false}`).
    pub cors: Option<Option<mgw_bundle::Cors>>,
    pub mtls: Option<ClientCertMode>,
    pub underscore_headers: Option<UnderscoreHeaders>,
    pub scope_match: Option<ScopeMatch>,
    pub ignore_trailing_slash: bool,
    /// Spec paths (as written in the spec) whose last parameter takes the rest of
    /// the path, like `x-mgw-catch-all` on each of their operations.
    pub catch_all: Vec<String>,
    /// What selects sandbox traffic (`upstream` unset); `None`: WSO2's `keytype`
    /// claim equal to `SANDBOX`.
    pub sandbox: Option<mgw_bundle::Sandbox>,
    /// The API's transforms (`x-mgw-transforms` at the top of the spec otherwise).
    pub transforms: Option<mgw_bundle::Transforms>,
    /// `None`: as the document says (`x-mgw-validate-request`).
    pub validation: Option<mgw_bundle::contract::ValidationSettings>,
    /// `None`: as the document says (`x-mgw-mock`).
    pub mock: Option<bool>,
}

/// A selection of operations (to serve, or to leave out): those with a listed
/// operationId or any listed tag.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Include {
    pub operations: Vec<String>,
    pub tags: Vec<String>,
}

impl Manifest {
    /// The origin of a key path's value (or of its deepest existing parent).
    pub fn origin(&self, path: &KeyPath) -> Origin {
        let mut node = &self.tree;
        for seg in path.segments() {
            match node.child(&seg) {
                Some(n) => node = n,
                None => break,
            }
        }
        Origin::new(MANIFEST_FILE, path.to_string(), node.mark)
    }

    /// The origin of a key itself (for "this key is not allowed" problems).
    pub fn key_origin(&self, path: &KeyPath) -> Origin {
        let segs = path.segments();
        let Some((last, parents)) = segs.split_last() else {
            return self.origin(path);
        };
        let mut node = &self.tree;
        for seg in parents {
            match node.child(seg) {
                Some(n) => node = n,
                None => return self.origin(path),
            }
        }
        match node.child_key_mark(last) {
            Some(mark) => Origin::new(MANIFEST_FILE, path.to_string(), mark),
            None => self.origin(path),
        }
    }

    /// The parsed document, for callers that need positions of other keys.
    pub fn tree(&self) -> &Node {
        &self.tree
    }
}

/// Parses and validates `mgw.yaml` text.
pub fn parse_manifest(text: &str) -> Result<Manifest, Vec<Diagnostic>> {
    parse_manifest_in(text, &Source::Memory(BTreeMap::new()))
}

/// Parses `mgw.yaml` of the project in `source`, reading the files it names
/// for its own settings (`rateLimits.wso2Policies`).
pub fn parse_manifest_in(text: &str, source: &Source) -> Result<Manifest, Vec<Diagnostic>> {
    let tree = yaml::parse(text, false).map_err(|e| {
        vec![Diagnostic::new(
            &Origin::new(MANIFEST_FILE, "", e.mark),
            e.message,
        )]
    })?;
    if tree.as_map().is_none() {
        let found = tree.describe();
        return Err(vec![Diagnostic::new(
            &Origin::new(MANIFEST_FILE, "", tree.mark),
            format!("expected a mapping with `name`, `version` and `apis`, found {found}"),
        )]);
    }
    let wire: ManifestWire = from_node(&tree).map_err(|e| {
        let DeError { message, mark, .. } = e.error;
        vec![Diagnostic::new(
            &Origin::new(MANIFEST_FILE, e.path.to_string(), mark),
            message,
        )]
    })?;
    let mut v = Validator {
        tree: &tree,
        diags: Vec::new(),
        source,
        wso2: Wso2Tiers::default(),
    };
    let m = v.manifest(wire);
    if v.diags.is_empty() {
        Ok(Manifest { tree, ..m })
    } else {
        Err(v.diags)
    }
}

struct Validator<'a> {
    tree: &'a Node,
    diags: Vec<Diagnostic>,
    /// Reads another project file (`rateLimits.wso2Policies`).
    source: &'a Source,
    /// Filled by `rateLimits.wso2Policies`.
    wso2: Wso2Tiers,
}

fn root() -> KeyPath {
    KeyPath::root()
}

impl Validator<'_> {
    fn err(&mut self, path: &KeyPath, message: impl Into<String>) {
        let mut node = self.tree;
        for seg in path.segments() {
            match node.child(&seg) {
                Some(n) => node = n,
                None => break,
            }
        }
        self.diags.push(Diagnostic::new(
            &Origin::new(MANIFEST_FILE, path.to_string(), node.mark),
            message,
        ));
    }

    fn key_err(&mut self, path: &KeyPath, message: impl Into<String>) {
        let segs = path.segments();
        let mut node = self.tree;
        let mut mark = node.mark;
        for (i, seg) in segs.iter().enumerate() {
            if i + 1 == segs.len() {
                if let Some(m) = node.child_key_mark(seg) {
                    mark = m;
                }
                break;
            }
            match node.child(seg) {
                Some(n) => {
                    node = n;
                    mark = n.mark;
                }
                None => break,
            }
        }
        self.diags.push(Diagnostic::new(
            &Origin::new(MANIFEST_FILE, path.to_string(), mark),
            message,
        ));
    }

    fn duration(&mut self, path: KeyPath, v: Option<String>) -> Option<Duration> {
        let text = v?;
        match duration_ms(&text) {
            Ok(ms) => Some(Duration::from_millis(ms)),
            Err(e) => {
                self.err(&path, e);
                None
            }
        }
    }

    fn positive_duration(&mut self, path: KeyPath, v: Option<String>) -> Option<Duration> {
        let d = self.duration(path.clone(), v)?;
        if d.is_zero() {
            self.err(&path, "must be greater than `0s`");
        }
        Some(d)
    }

    fn size(&mut self, path: KeyPath, v: Option<String>) -> Option<u64> {
        let text = v?;
        match parse_size(&text) {
            Ok(n) => Some(n),
            Err(e) => {
                self.err(&path, e);
                None
            }
        }
    }

    /// A duration in milliseconds, or `default` when absent (or invalid, which
    /// is reported).
    fn ms(&mut self, path: KeyPath, v: Option<String>, default: u64) -> u64 {
        self.duration(path, v).map_or(default, millis)
    }

    /// Like [`Self::ms`], and more than zero.
    fn positive_ms(&mut self, path: KeyPath, v: Option<String>, default: u64) -> u64 {
        self.positive_duration(path, v).map_or(default, millis)
    }

    /// Checks a part by the gateway's own rules and reports each problem at the
    /// `mgw.yaml` key its bundle key (under `prefix`) comes from.
    fn check_part(&mut self, part: Part<'_>, prefix: &str, at: &KeyPath, table: &[(&str, &str)]) {
        // Only the part's own problems: a policy checked with the Redis settings
        // it needs must not repeat theirs.
        for problem in part.problems() {
            let Some(rest) = problem.key.strip_prefix(prefix) else {
                continue;
            };
            let rest = rest.trim_start_matches('.');
            if rest.is_empty() && at.0.len() > 1 {
                // About an entry of a map (a policy's name): point at the key.
                self.key_err(at, problem.message);
            } else {
                self.err(&keymap::manifest_path(at, rest, table), problem.message);
            }
        }
    }

    fn manifest(&mut self, w: ManifestWire) -> Manifest {
        check_name(self, &root().key("name"), &w.name, "the gateway name");
        self.version(&w.version);
        let image = self.image(w.image, &w.name);
        let listeners = self.listeners(w.listeners);
        let limits = self.limits(w.limits);
        let rate_limits = w.rate_limits.map(|r| self.rate_limits(r));
        let trusted_proxies = self.trusted_proxies(w.trusted_proxies.unwrap_or_default());
        let upstreams = self.upstreams(w.upstreams.unwrap_or_default());
        let apis = self.apis(w.apis, &upstreams);
        self.api_rate_limits(&apis, rate_limits.as_ref());
        let analytics = self.analytics(w.analytics);
        let auth = self.auth(w.auth);
        let cors = w
            .cors
            .and_then(|c| self.cors(&root().key("cors"), c))
            .flatten();
        Manifest {
            name: w.name,
            version: w.version,
            image,
            listeners,
            limits,
            rate_limits,
            wso2: std::mem::take(&mut self.wso2),
            trusted_proxies,
            upstreams,
            apis,
            analytics,
            auth,
            cors,
            tracing: w.tracing,
            tree: Node::scalar("", true, yaml::Mark::UNKNOWN),
        }
    }

    fn version(&mut self, version: &str) {
        // The default image tag is `<version>-<12 hex>`, and a tag is at most 128
        // characters of `[A-Za-z0-9_.-]`, not starting with `.` or `-`.
        let ok = !version.is_empty()
            && version.len() <= 115
            && !version.starts_with(['.', '-'])
            && version
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !ok {
            self.err(
                &root().key("version"),
                format!(
                    "`{version}` cannot be used in an image tag; use letters, digits, `.`, `_` and `-` (at most 115, not starting with `.` or `-`), such as `1.0.0`"
                ),
            );
        }
    }

    fn image(&mut self, w: Option<ImageWire>, name: &str) -> ImageSettings {
        let w = w.unwrap_or(ImageWire {
            repository: None,
            labels: None,
            platforms: None,
        });
        let repository = match w.repository {
            Some(r) => {
                if let Err(e) = check_repository(&r) {
                    self.err(&root().key("image").key("repository"), e);
                }
                r
            }
            None => name.to_ascii_lowercase(),
        };
        let labels = w.labels.unwrap_or_default();
        for key in labels.keys() {
            let path = root().key("image").key("labels").key(key.clone());
            if key.is_empty() || key.chars().any(|c| c.is_whitespace() || c.is_control()) {
                self.key_err(
                    &path,
                    format!("`{key}` is not a valid label key (no spaces)"),
                );
            } else if key.starts_with("io.mgw.") {
                self.key_err(
                    &path,
                    format!("`{key}`: label keys starting with `io.mgw.` are reserved for mgw"),
                );
            }
        }
        let mut platforms = Vec::new();
        for (i, p) in w.platforms.iter().flatten().enumerate() {
            match crate::platform::parse_list(p) {
                Ok(list) if !p.contains(',') => platforms.extend(list),
                Ok(_) => self.err(
                    &root().key("image").key("platforms").index(i),
                    format!("`{p}`: one platform per entry"),
                ),
                Err(e) => self.err(
                    &root().key("image").key("platforms").index(i),
                    e.to_string(),
                ),
            }
        }
        platforms.sort();
        platforms.dedup();
        ImageSettings {
            repository,
            labels,
            platforms,
        }
    }

    fn listeners(&mut self, w: Option<ListenersWire>) -> Listeners {
        let Some(w) = w else {
            return Listeners::default();
        };
        let api_tls =
            w.api
                .as_ref()
                .and_then(|l| l.tls.as_ref())
                .map(|t| mgw_bundle::ListenerTls {
                    cert_file: t
                        .cert
                        .clone()
                        .unwrap_or_else(|| mgw_bundle::ListenerTls::DEFAULT_CERT_FILE.into()),
                    key_file: t
                        .key
                        .clone()
                        .unwrap_or_else(|| mgw_bundle::ListenerTls::DEFAULT_KEY_FILE.into()),
                    client_ca_file: t.client_ca.clone().or_else(|| {
                        matches!(
                            t.client_auth,
                            Some(ClientAuth::Optional | ClientAuth::Required)
                        )
                        .then(|| mgw_bundle::ListenerTls::DEFAULT_CLIENT_CA_FILE.into())
                    }),
                    client_auth: t.client_auth,
                });
        if let Some(ListenerWire { tls: Some(_), .. }) = &w.admin {
            self.err(
                &root().key("listeners").key("admin").key("tls"),
                "TLS is for the API listener; the admin listener stays inside the cluster",
            );
        }
        let api = w.api.map(|l| l.address);
        let admin = w.admin.map(|l| l.address);
        for (key, value) in [("api", &api), ("admin", &admin)] {
            if let Some(v) = value {
                if v.trim().is_empty() {
                    self.err(
                        &root().key("listeners").key(key),
                        "expected an address such as `0.0.0.0:8080`",
                    );
                }
            }
        }
        // With every variable at its default, the two listeners must differ.
        let probe = |t: &Option<String>, default: &str| {
            let t = t.as_deref().unwrap_or(default);
            env::substitute(t, &BTreeMap::<String, String>::new()).ok()
        };
        let a = probe(&api, Listener::DEFAULT_API);
        let b = probe(&admin, Listener::DEFAULT_ADMIN);
        if let (Some(a), Some(b)) = (a, b) {
            if a == b && !a.ends_with(":0") {
                self.err(
                    &root().key("listeners").key("admin"),
                    format!(
                        "the admin listener must differ from the API listener (both are `{a}`)"
                    ),
                );
            }
        }
        Listeners {
            api: Listener {
                address: api.unwrap_or_else(|| Listener::DEFAULT_API.into()),
                tls: api_tls,
            },
            admin: Listener {
                address: admin.unwrap_or_else(|| Listener::DEFAULT_ADMIN.into()),
                tls: None,
            },
        }
    }

    fn limits(&mut self, w: Option<LimitsWire>) -> Limits {
        let d = Limits::default();
        let Some(w) = w else {
            return d;
        };
        let p = || root().key("limits");
        let limits = Limits {
            header_read_timeout_ms: self.ms(
                p().key("headerReadTimeout"),
                w.header_read_timeout,
                d.header_read_timeout_ms,
            ),
            max_header_bytes: self
                .size(p().key("maxHeaderSize"), w.max_header_size)
                .unwrap_or(d.max_header_bytes),
            max_headers: w.max_headers.unwrap_or(d.max_headers),
            idle_timeout_ms: self.ms(p().key("idleTimeout"), w.idle_timeout, d.idle_timeout_ms),
            max_body_bytes: self
                .size(p().key("maxBodySize"), w.max_body_size)
                .unwrap_or(d.max_body_bytes),
            shutdown_grace_ms: self.ms(
                p().key("shutdownGrace"),
                w.shutdown_grace,
                d.shutdown_grace_ms,
            ),
            h2_max_concurrent_streams: w
                .h2_max_concurrent_streams
                .unwrap_or(d.h2_max_concurrent_streams),
        };
        self.check_part(Part::Limits(&limits), "limits", &p(), keymap::LIMITS);
        limits
    }

    fn upstreams(&mut self, w: BTreeMap<String, UpstreamWire>) -> BTreeMap<String, Upstream> {
        let mut out = BTreeMap::new();
        for (name, u) in w {
            let p = root().key("upstreams").key(name.clone());
            check_name(self, &p, &name, "an upstream name");
            let d = Upstream::new(u.urls);
            let retry = u.retry.unwrap_or(RetryWire {
                attempts: None,
                idempotent: None,
                budget: None,
            });
            let budget = retry.budget.unwrap_or(RetryBudgetWire {
                percent: None,
                min_per_second: None,
            });
            let upstream = Upstream {
                load_balancing: u.load_balancing.unwrap_or(d.load_balancing),
                connect_timeout_ms: self.ms(
                    p.key("connectTimeout"),
                    u.connect_timeout,
                    d.connect_timeout_ms,
                ),
                request_timeout_ms: self.ms(p.key("timeout"), u.timeout, d.request_timeout_ms),
                retry: Retry {
                    attempts: retry.attempts.unwrap_or(d.retry.attempts),
                    idempotent: retry.idempotent.unwrap_or(d.retry.idempotent),
                    budget_percent: budget.percent.unwrap_or(d.retry.budget_percent),
                    min_retries_per_second: budget
                        .min_per_second
                        .unwrap_or(d.retry.min_retries_per_second),
                },
                pool_idle_timeout_ms: self.ms(
                    p.key("poolIdleTimeout"),
                    u.pool_idle_timeout,
                    d.pool_idle_timeout_ms,
                ),
                pool_max_idle_per_host: u
                    .pool_max_idle_per_host
                    .unwrap_or(d.pool_max_idle_per_host),
                max_concurrent_requests: u
                    .max_concurrent_requests
                    .unwrap_or(d.max_concurrent_requests),
                circuit_breaker: u.circuit_breaker.map_or(d.circuit_breaker, |b| {
                    self.circuit_breaker(p.key("circuitBreaker"), b)
                }),
                passive_health: u.passive_health.map_or(d.passive_health, |h| {
                    self.passive_health(p.key("passiveHealth"), h)
                }),
                health_check: u
                    .health_check
                    .map(|h| self.health_check(p.key("healthCheck"), h)),
                tls: u.tls,
                urls: d.urls,
            };
            self.check_part(
                Part::Upstream(&name, &upstream),
                &format!("upstreams.{name}"),
                &p,
                keymap::UPSTREAM,
            );
            out.insert(name, upstream);
        }
        out
    }

    fn apis(
        &mut self,
        w: Vec<ApiWire>,
        upstreams: &BTreeMap<String, Upstream>,
    ) -> Vec<ApiSettings> {
        if w.is_empty() {
            self.err(
                &root().key("apis"),
                "a project needs at least one API (`- name: …` with `spec: apis/….yaml`)",
            );
        }
        let mut names: BTreeMap<String, usize> = BTreeMap::new();
        let mut out = Vec::with_capacity(w.len());
        for (i, a) in w.into_iter().enumerate() {
            let p = root().key("apis").index(i);
            check_name(self, &p.key("name"), &a.name, "an API name");
            if let Some(first) = names.insert(a.name.clone(), i) {
                self.err(
                    &p.key("name"),
                    format!("API `{}` is already defined at `apis[{first}]`", a.name),
                );
            }
            let spec = match normalize_relative("", &a.spec) {
                Ok(s) if !s.is_empty() => s,
                Ok(_) => {
                    self.err(
                        &p.key("spec"),
                        "expected the path of an OpenAPI file, such as `apis/petstore.yaml`",
                    );
                    String::new()
                }
                Err(e) => {
                    self.err(&p.key("spec"), e);
                    String::new()
                }
            };
            let base_path = a
                .base_path
                .map(|b| match mgw_bundle::normalize_base_path(&b) {
                    Ok(b) => b,
                    Err(e) => {
                        self.err(&p.key("basePath"), e);
                        b
                    }
                });
            if let Some(u) = &a.upstream {
                if !upstreams.contains_key(u) {
                    self.err(
                        &p.key("upstream"),
                        format!(
                            "no upstream named `{u}`{}; declared upstreams: {}",
                            suggestion(u, upstreams.keys().map(String::as_str)),
                            list(upstreams.keys(), 20)
                        ),
                    );
                }
            }
            let include = a.include.map(|inc| {
                let inc = Include {
                    operations: inc.operations.unwrap_or_default(),
                    tags: inc.tags.unwrap_or_default(),
                };
                if inc.operations.is_empty() && inc.tags.is_empty() {
                    self.err(
                        &p.key("include"),
                        "selects no operation; list `operations` (operationIds) and/or `tags`, or remove `include` to serve every operation",
                    );
                }
                inc
            });
            let exclude = a.exclude.map(|exc| {
                let exc = Include {
                    operations: exc.operations.unwrap_or_default(),
                    tags: exc.tags.unwrap_or_default(),
                };
                if exc.operations.is_empty() && exc.tags.is_empty() {
                    self.err(
                        &p.key("exclude"),
                        "leaves out no operation; list `operations` (operationIds) and/or `tags`, or remove `exclude`",
                    );
                }
                exc
            });
            let max_body_bytes = self.size(p.key("maxBodySize"), a.max_body_size);
            let cors = a.cors.and_then(|c| self.cors(&p.key("cors"), c));
            out.push(ApiSettings {
                name: a.name,
                spec,
                base_path,
                upstream: a.upstream,
                rate_limit: a.rate_limit,
                include,
                exclude,
                max_body_bytes,
                cors,
                mtls: a.mtls,
                underscore_headers: a.underscore_headers,
                scope_match: a.scope_match,
                ignore_trailing_slash: a.ignore_trailing_slash.unwrap_or(false),
                catch_all: a.catch_all.unwrap_or_default(),
                sandbox: a.sandbox.map(|s| mgw_bundle::Sandbox {
                    claim: s.claim,
                    header: s.header,
                    value: s.value,
                    upstream: None,
                }),
                transforms: a.transforms,
                validation: a.validation,
                mock: a.mock,
            });
        }
        out
    }

    fn rate_limits(&mut self, w: RateLimitsWire) -> RateLimits {
        let p = || root().key("rateLimits");
        let headers = w.headers.unwrap_or(RateLimitHeadersWire {
            ietf: None,
            x_rate_limit: None,
        });
        let d = RateLimits::default();
        let mut limits = RateLimits {
            policies: BTreeMap::new(),
            // A reference, resolved below with suggestions, like `apis[].rateLimit`.
            unauthenticated: None,
            headers: RateLimitHeaders {
                ietf: headers.ietf.unwrap_or(d.headers.ietf),
                x_rate_limit: headers.x_rate_limit.unwrap_or(d.headers.x_rate_limit),
            },
            max_keys: w.max_keys.unwrap_or(d.max_keys),
            redis: w.redis.clone(),
        };
        self.check_part(Part::RateLimits(&limits), "rateLimits", &p(), &[]);
        for (name, pw) in w.policies.unwrap_or_default() {
            let pp = p().key("policies").key(name.clone());
            if name.eq_ignore_ascii_case(UNLIMITED) {
                self.key_err(
                    &pp,
                    format!("`{name}` means no rate limit; give the policy another name"),
                );
            }
            let period_seconds = match duration_ms(&pw.period) {
                Ok(ms) if ms >= 1000 && ms % 1000 == 0 => ms / 1000,
                Ok(_) => {
                    self.err(
                        &pp.key("period"),
                        format!(
                            "`{}` must be a whole number of seconds, at least `1s` (such as `1s`, `1m` or `1h`)",
                            pw.period.trim()
                        ),
                    );
                    1
                }
                Err(e) => {
                    self.err(&pp.key("period"), e);
                    1
                }
            };
            let policy = RateLimitPolicy {
                requests: pw.requests,
                period_seconds,
                burst: pw.burst,
                key: pw.key.unwrap_or_default(),
                scope: pw.scope,
                on_redis_failure: pw.on_redis_failure,
            };
            // With the Redis settings, which a `global` policy needs; their own
            // problems are reported once, above.
            let one = RateLimits {
                policies: BTreeMap::from([(name.clone(), policy)]),
                redis: w.redis.clone(),
                ..RateLimits::default()
            };
            self.check_part(
                Part::RateLimits(&one),
                &format!("rateLimits.policies.{name}"),
                &pp,
                keymap::POLICY,
            );
            limits.policies.extend(one.policies);
        }
        if let Some(file) = &w.wso2_policies {
            let scope = self.wso2_scope(w.wso2_scope, w.redis.is_some());
            self.wso2_policies(&p().key("wso2Policies"), file, scope, &mut limits.policies);
        } else if w.wso2_scope.is_some() {
            self.err(
                &p().key("wso2Scope"),
                "applies to the tiers of `rateLimits.wso2Policies`, which is not set",
            );
        }
        if let Some(u) = &w.unauthenticated {
            if !limits.policies.contains_key(u) {
                self.err(
                    &p().key("unauthenticated"),
                    format!(
                        "no policy named `{u}`{}; declared policies: {}",
                        suggestion(u, limits.policies.keys().map(String::as_str)),
                        list(limits.policies.keys(), 20)
                    ),
                );
            }
        }
        limits.unauthenticated = w.unauthenticated;
        limits
    }

    /// The scope of the WSO2 tiers: `global` needs `rateLimits.redis`.
    fn wso2_scope(&mut self, scope: Option<RateLimitScope>, has_redis: bool) -> RateLimitScope {
        let scope = scope.unwrap_or_default();
        if scope == RateLimitScope::Global && !has_redis {
            self.err(
                &root().key("rateLimits").key("wso2Scope"),
                "`global` keeps the WSO2 tiers' budgets in Redis; set `rateLimits.redis.url` (such as `url: ${MGW_REDIS_URL}`), or drop `wso2Scope` for per-replica limits",
            );
            return RateLimitScope::Local;
        }
        scope
    }

    /// Adds the tiers of a WSO2 `policies.yaml` to `policies`, with `scope`; a
    /// name both files declare is an error.
    fn wso2_policies(
        &mut self,
        at: &KeyPath,
        file: &str,
        scope: RateLimitScope,
        policies: &mut BTreeMap<String, RateLimitPolicy>,
    ) {
        let file = match normalize_relative("", file) {
            Ok(f) if !f.is_empty() => f,
            Ok(_) => {
                return self.err(
                    at,
                    "expected the path of a WSO2 `policies.yaml`, such as `policies.yaml`",
                );
            }
            Err(e) => return self.err(at, e),
        };
        let text = match self.source.read_text(&file, None) {
            Ok(t) => t,
            Err(e) => return self.err(at, e),
        };
        let tiers = match super::wso2_policies::parse(&file, &text) {
            Ok(t) => t,
            Err(d) => return self.diags.extend(d),
        };
        let (enforced, refused) = super::wso2_policies::policies(tiers);
        self.wso2.refused.extend(refused);
        for (name, (mut policy, origin)) in enforced {
            policy.scope = scope;
            if policies.contains_key(&name) {
                self.key_err(
                    &root().key("rateLimits").key("policies").key(name.clone()),
                    format!(
                        "policy `{name}` is also a tier of `{file}` (at {}); rename one",
                        origin.position()
                    ),
                );
                continue;
            }
            policies.insert(name.clone(), policy);
            self.wso2.origins.insert(name, origin);
        }
        self.wso2.file = Some(file);
    }

    /// `apis[].rateLimit` must name a declared policy (or `Unlimited`).
    fn api_rate_limits(&mut self, apis: &[ApiSettings], rate_limits: Option<&RateLimits>) {
        let declared: Vec<&str> = rate_limits
            .map(|r| r.policies.keys().map(String::as_str).collect())
            .unwrap_or_default();
        for (i, a) in apis.iter().enumerate() {
            let Some(name) = &a.rate_limit else { continue };
            if declared.contains(&name.as_str()) || name.eq_ignore_ascii_case(UNLIMITED) {
                continue;
            }
            self.err(
                &root().key("apis").index(i).key("rateLimit"),
                format!(
                    "no rate-limit policy named `{name}`{}; declare it under `rateLimits.policies` (declared: {}), or write `{UNLIMITED}`",
                    suggestion(name, declared.iter().copied()),
                    list(&declared, 20)
                ),
            );
        }
    }

    fn trusted_proxies(&mut self, w: Vec<String>) -> Vec<String> {
        for (i, entry) in w.iter().enumerate() {
            if entry.contains("${") {
                continue; // resolved and checked by the gateway at start
            }
            for part in entry.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                if let Err(e) = mgw_bundle::net::IpNet::parse(part) {
                    self.err(&root().key("trustedProxies").index(i), e);
                }
            }
        }
        w
    }

    fn circuit_breaker(&mut self, p: KeyPath, w: CircuitBreakerWire) -> CircuitBreaker {
        let d = CircuitBreaker::default();
        CircuitBreaker {
            enabled: w.enabled.unwrap_or(d.enabled),
            consecutive_failures: w.consecutive_failures.unwrap_or(d.consecutive_failures),
            failure_rate_percent: w.failure_rate_percent.unwrap_or(d.failure_rate_percent),
            min_requests: w.min_requests.unwrap_or(d.min_requests),
            window_ms: self.ms(p.key("window"), w.window, d.window_ms),
            open_ms: self.ms(p.key("openDuration"), w.open_duration, d.open_ms),
            half_open_requests: w.half_open_requests.unwrap_or(d.half_open_requests),
        }
    }

    fn passive_health(&mut self, p: KeyPath, w: PassiveHealthWire) -> PassiveHealth {
        let d = PassiveHealth::default();
        PassiveHealth {
            enabled: w.enabled.unwrap_or(d.enabled),
            consecutive_failures: w.consecutive_failures.unwrap_or(d.consecutive_failures),
            ejection_ms: self.ms(
                p.key("ejectionDuration"),
                w.ejection_duration,
                d.ejection_ms,
            ),
        }
    }

    fn health_check(&mut self, p: KeyPath, w: HealthCheckWire) -> HealthCheck {
        let d = HealthCheck::new(w.path);
        HealthCheck {
            interval_ms: self.ms(p.key("interval"), w.interval, d.interval_ms),
            timeout_ms: self.ms(p.key("timeout"), w.timeout, d.timeout_ms),
            healthy_threshold: w.healthy_threshold.unwrap_or(d.healthy_threshold),
            unhealthy_threshold: w.unhealthy_threshold.unwrap_or(d.unhealthy_threshold),
            path: d.path,
        }
    }

    /// `Some(None)` for `enabled: false`; `None` when invalid.
    fn cors(&mut self, p: &KeyPath, w: CorsWire) -> Option<Option<mgw_bundle::Cors>> {
        if w.enabled == Some(false) {
            return Some(None);
        }
        let Some(origins) = w.allow_origins else {
            self.err(
                p,
                "CORS needs `allowOrigins`, such as `[https://app.example.com]` (or `enabled: false`)",
            );
            return None;
        };
        let max_age_s = self
            .duration(p.key("maxAge"), w.max_age)
            .map(|d| d.as_secs());
        Some(Some(mgw_bundle::Cors {
            allow_origins: origins,
            allow_methods: w.allow_methods.unwrap_or_default(),
            allow_headers: w.allow_headers.unwrap_or_default(),
            expose_headers: w.expose_headers.unwrap_or_default(),
            allow_credentials: w.allow_credentials.unwrap_or(false),
            max_age_s,
        }))
    }

    fn auth(&mut self, w: Option<AuthWire>) -> AuthSettings {
        use mgw_bundle as b;
        let Some(w) = w else {
            return AuthSettings::default();
        };
        let mut out = AuthSettings {
            schemes: w.schemes.clone(),
            ..AuthSettings::default()
        };
        for (name, provider) in &w.schemes {
            if !w.providers.contains_key(provider) {
                self.err(
                    &root().key("auth").key("schemes").key(name.clone()),
                    format!(
                        "no provider named `{provider}`{}; declared providers: {}",
                        suggestion(provider, w.providers.keys().map(String::as_str)),
                        list(w.providers.keys(), 20)
                    ),
                );
            }
        }
        for (name, pw) in w.providers {
            let p = root().key("auth").key("providers").key(name.clone());
            check_name(self, &p, &name, "a provider name");
            // Keys that belong to other provider types.
            let used: &[(&str, bool)] = &[
                ("issuer", pw.issuer.is_some()),
                ("audiences", pw.audiences.is_some()),
                ("algorithms", pw.algorithms.is_some()),
                ("keys", pw.keys.is_some()),
                ("jwksUrl", pw.jwks_url.is_some()),
                ("discoveryUrl", pw.discovery_url.is_some()),
                ("jwksRefresh", pw.jwks_refresh.is_some()),
                (
                    "jwksMinRefreshInterval",
                    pw.jwks_min_refresh_interval.is_some(),
                ),
                ("hmacSecretFile", pw.hmac_secret_file.is_some()),
                ("leeway", pw.leeway.is_some()),
                ("consumerClaim", pw.consumer_claim.is_some()),
                ("scopeClaims", pw.scope_claims.is_some()),
                ("maxTokenSize", pw.max_token_size.is_some()),
                ("claimHeaders", pw.claim_headers.is_some()),
                ("cacheSize", pw.cache_size.is_some()),
                ("file", pw.file.is_some()),
                ("reloadInterval", pw.reload_interval.is_some()),
                ("realm", pw.realm.is_some()),
                ("endpoint", pw.endpoint.is_some()),
                ("clientIdFile", pw.client_id_file.is_some()),
                ("clientSecretFile", pw.client_secret_file.is_some()),
                ("timeout", pw.timeout.is_some()),
                ("cacheTtl", pw.cache_ttl.is_some()),
                ("negativeCacheTtl", pw.negative_cache_ttl.is_some()),
            ];
            let allowed: &[&str] = match pw.kind.as_str() {
                "jwt" => &[
                    "issuer",
                    "audiences",
                    "algorithms",
                    "keys",
                    "jwksUrl",
                    "discoveryUrl",
                    "jwksRefresh",
                    "jwksMinRefreshInterval",
                    "hmacSecretFile",
                    "leeway",
                    "consumerClaim",
                    "scopeClaims",
                    "maxTokenSize",
                    "claimHeaders",
                    "cacheSize",
                ],
                "apiKey" => &["file", "reloadInterval"],
                "basic" => &["file", "reloadInterval", "realm"],
                "introspection" => &[
                    "endpoint",
                    "clientIdFile",
                    "clientSecretFile",
                    "timeout",
                    "cacheTtl",
                    "negativeCacheTtl",
                    "maxTokenSize",
                    "claimHeaders",
                    "cacheSize",
                ],
                other => {
                    self.err(
                        &p.key("type"),
                        format!(
                            "unknown provider type `{other}`{}; valid: `jwt`, `apiKey`, `basic`, `introspection`",
                            suggestion(other, ["jwt", "apiKey", "basic", "introspection"])
                        ),
                    );
                    continue;
                }
            };
            for (key, set) in used {
                if *set && !allowed.contains(key) {
                    self.key_err(
                        &p.key(*key),
                        format!(
                            "`{key}` does not apply to `{}` providers; they take {}",
                            pw.kind,
                            list(allowed.iter(), 20)
                        ),
                    );
                }
            }
            let ms = |v: &mut Self, key: &str, text: Option<String>, default: u64| {
                v.positive_ms(p.key(key), text, default)
            };
            let defaults_jwt = b::JwtProvider::new(String::new(), Vec::new());
            let max_token = self
                .size(p.key("maxTokenSize"), pw.max_token_size.clone())
                .unwrap_or(defaults_jwt.max_token_bytes);
            let cache = pw.cache_size.unwrap_or(defaults_jwt.cache_capacity);
            let forward = pw.forward_credentials.unwrap_or(false);
            let provider = match pw.kind.as_str() {
                "jwt" => {
                    if pw.issuer.as_deref().is_none_or(str::is_empty) {
                        self.err(
                            &p,
                            "a `jwt` provider needs `issuer` (the exact `iss` of its tokens)",
                        );
                    }
                    let algorithms = pw
                        .algorithms
                        .clone()
                        .unwrap_or_else(|| vec!["RS256".into()]);
                    let hmac = algorithms.iter().any(|a| a.starts_with("HS"));
                    let mut files = Vec::new();
                    for (i, k) in pw.keys.iter().flatten().enumerate() {
                        match normalize_relative("", &k.file) {
                            Ok(f) => files.push((f, k.kid.clone())),
                            Err(e) => self.err(&p.key("keys").index(i), e),
                        }
                    }
                    out.key_files.insert(name.clone(), files);
                    b::Provider::Jwt(b::JwtProvider {
                        issuer: pw.issuer.clone().unwrap_or_default(),
                        audiences: pw.audiences.clone().unwrap_or_default(),
                        algorithms,
                        keys: Vec::new(),
                        jwks_url: pw.jwks_url.clone(),
                        discovery_url: pw.discovery_url.clone(),
                        jwks_refresh_ms: ms(
                            self,
                            "jwksRefresh",
                            pw.jwks_refresh.clone(),
                            defaults_jwt.jwks_refresh_ms,
                        ),
                        // `0s`: refetch on every unknown `kid` (one fetch at a
                        // time), as the gateway allows.
                        jwks_min_refresh_interval_ms: self.ms(
                            p.key("jwksMinRefreshInterval"),
                            pw.jwks_min_refresh_interval.clone(),
                            defaults_jwt.jwks_min_refresh_interval_ms,
                        ),
                        jwks_timeout_ms: defaults_jwt.jwks_timeout_ms,
                        hmac_secret_file: pw
                            .hmac_secret_file
                            .clone()
                            .or_else(|| hmac.then(|| b::default_hmac_secret_file(&name))),
                        leeway_ms: self.ms(
                            p.key("leeway"),
                            pw.leeway.clone(),
                            defaults_jwt.leeway_ms,
                        ),
                        max_token_bytes: max_token,
                        claim_headers: pw.claim_headers.clone().unwrap_or_default(),
                        forward_credentials: forward,
                        consumer_claim: pw.consumer_claim.clone(),
                        scope_claims: pw.scope_claims.clone().unwrap_or_default(),
                        cache_capacity: cache,
                    })
                }
                "apiKey" => b::Provider::ApiKey(b::ApiKeyProvider {
                    file: pw
                        .file
                        .clone()
                        .unwrap_or_else(|| b::ApiKeyProvider::DEFAULT_FILE.into()),
                    reload_interval_ms: ms(
                        self,
                        "reloadInterval",
                        pw.reload_interval.clone(),
                        b::ApiKeyProvider::default().reload_interval_ms,
                    ),
                    forward_credentials: forward,
                }),
                "basic" => b::Provider::Basic(b::BasicProvider {
                    file: pw
                        .file
                        .clone()
                        .unwrap_or_else(|| b::BasicProvider::DEFAULT_FILE.into()),
                    reload_interval_ms: ms(
                        self,
                        "reloadInterval",
                        pw.reload_interval.clone(),
                        b::BasicProvider::default().reload_interval_ms,
                    ),
                    realm: pw.realm.clone(),
                    forward_credentials: forward,
                }),
                _ => {
                    let Some(endpoint) = pw.endpoint.clone() else {
                        self.err(
                            &p,
                            "an `introspection` provider needs `endpoint` (the RFC 7662 URL)",
                        );
                        continue;
                    };
                    let (id, secret) = b::default_introspection_files(&name);
                    let d =
                        b::IntrospectionProvider::new(String::new(), String::new(), String::new());
                    b::Provider::Introspection(b::IntrospectionProvider {
                        endpoint,
                        client_id_file: pw.client_id_file.clone().unwrap_or(id),
                        client_secret_file: pw.client_secret_file.clone().unwrap_or(secret),
                        timeout_ms: ms(self, "timeout", pw.timeout.clone(), d.timeout_ms),
                        cache_ttl_ms: ms(self, "cacheTtl", pw.cache_ttl.clone(), d.cache_ttl_ms),
                        negative_cache_ttl_ms: ms(
                            self,
                            "negativeCacheTtl",
                            pw.negative_cache_ttl.clone(),
                            d.negative_cache_ttl_ms,
                        ),
                        cache_capacity: cache,
                        max_token_bytes: max_token,
                        claim_headers: pw.claim_headers.clone().unwrap_or_default(),
                        forward_credentials: forward,
                    })
                }
            };
            out.providers.insert(name, provider);
        }
        out
    }

    fn analytics(&mut self, w: Option<AnalyticsWire>) -> Analytics {
        let d = Analytics::default();
        let Some(w) = w else {
            return d;
        };
        let sink = w.sink.unwrap_or(d.sink);
        let p = root().key("analytics");
        // Not a gateway rule (it ignores the path), but surely a mistake.
        if matches!(sink, SinkKind::Stdout | SinkKind::None) && w.path.is_some() {
            self.err(&p.key("path"), "is only used with `sink: file`");
        }
        let analytics = Analytics {
            sink,
            path: w.path,
            queue_capacity: w.queue_capacity.unwrap_or(d.queue_capacity),
        };
        self.check_part(Part::Analytics(&analytics), "analytics", &p, &[]);
        analytics
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Names of the gateway, upstreams and APIs: they appear in metrics, analytics
/// events and image labels.
fn check_name(v: &mut Validator<'_>, path: &KeyPath, name: &str, what: &str) {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !ok {
        v.err(
            path,
            format!(
                "`{name}` is not valid as {what}; use letters, digits, `.`, `_` and `-`, starting with a letter or digit"
            ),
        );
    }
}
/// An image repository without tag or digest: `[host[:port]/]path`, lowercase.
pub fn check_repository(r: &str) -> Result<(), String> {
    let bad = |why: &str| {
        Err(format!(
            "`{r}` is not an image repository ({why}); write for example `registry.example.com/team/petstore-gw` or `localhost:5000/petstore-gw`"
        ))
    };
    if r.is_empty() || r.len() > 255 {
        return bad("empty or longer than 255 characters");
    }
    if r.contains('@') {
        return bad("a digest belongs to the image, not the repository");
    }
    let mut parts: Vec<&str> = r.split('/').collect();
    let first = parts[0];
    let has_host =
        parts.len() > 1 && (first.contains('.') || first.contains(':') || first == "localhost");
    if has_host {
        let (host, port) = match first.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (first, None),
        };
        if host.is_empty()
            || !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'))
        {
            return bad("invalid registry host");
        }
        if let Some(p) = port {
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return bad("invalid registry port");
            }
        }
        parts.remove(0);
    }
    for part in parts {
        if part.contains(':') {
            return bad("the tag is chosen by `mgw build`; leave it out");
        }
        let ok = !part.is_empty()
            && part.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && part.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && part.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')
            });
        if !ok {
            return bad("path components are lowercase letters, digits, `.`, `_` and `-`");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = r#"
name: petstore
version: 1.0.0
image:
  repository: localhost:5000/petstore-gw
  labels:
    org.example.team: pets
listeners:
  api: ${MGW_LISTEN:-0.0.0.0:8080}
  admin: {address: "0.0.0.0:9091"}
limits:
  headerReadTimeout: 5s
  maxHeaderSize: 32KiB
  maxHeaders: 50
  idleTimeout: 1m
  maxBodySize: 1MiB
  shutdownGrace: 10s
  h2MaxConcurrentStreams: 100
upstreams:
  pets:
    urls: ["${PETS:-http://127.0.0.1:8081}"]
    loadBalancing: failover
    connectTimeout: 500ms
    timeout: 10s
    retry: {attempts: 2, idempotent: true}
apis:
  - name: petstore
    spec: ./apis/petstore.yaml
    basePath: /petstore/v1/
    upstream: pets
    include: {operations: [listPets], tags: [pets]}
    maxBodySize: 64KiB
analytics:
  sink: file
  path: /var/log/mgw/events.jsonl
  queueCapacity: 1024
"#;

    #[test]
    fn full_manifest_validates() {
        let m = parse_manifest(FULL).unwrap();
        assert_eq!(m.image.repository, "localhost:5000/petstore-gw");
        assert_eq!(m.listeners.admin.address, "0.0.0.0:9091");
        assert_eq!(m.limits.max_header_bytes, 32 * 1024);
        assert_eq!(m.limits.idle_timeout_ms, 60_000);
        let u = &m.upstreams["pets"];
        assert_eq!(u.load_balancing, LoadBalancing::Failover);
        assert_eq!(u.connect_timeout_ms, 500);
        assert_eq!(u.retry.attempts, 2);
        let a = &m.apis[0];
        assert_eq!(a.spec, "apis/petstore.yaml");
        assert_eq!(a.base_path.as_deref(), Some("/petstore/v1"));
        assert_eq!(a.include.as_ref().unwrap().tags, vec!["pets".to_string()]);
        assert_eq!(a.max_body_bytes, Some(65_536));
        assert_eq!(m.analytics.sink, SinkKind::File);
        let o = m.origin(&KeyPath::root().key("apis").index(0).key("upstream"));
        assert_eq!((o.line, o.column), (Some(30), Some(15)));
    }

    fn errors(text: &str) -> Vec<String> {
        parse_manifest(text)
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn image_platforms_parse_with_their_position() {
        const REST: &str = "upstreams:\n  u: {urls: [\"http://127.0.0.1:1\"]}\napis:\n  - {name: x, spec: ./x.yaml, upstream: u, basePath: /x}\n";
        let with = |platforms: &str| {
            format!("name: a\nversion: 1.0.0\nimage:\n  platforms: {platforms}\n{REST}")
        };
        let m = parse_manifest(&with("[linux/arm64, linux/amd64, linux/arm64]")).unwrap();
        use crate::platform::Platform;
        assert_eq!(m.image.platforms, [Platform::Amd64, Platform::Arm64]);
        assert_eq!(
            parse_manifest(&with("[all]")).unwrap().image.platforms,
            Platform::ALL
        );
        assert!(
            parse_manifest(&format!("name: a\nversion: 1.0.0\n{REST}"))
                .unwrap()
                .image
                .platforms
                .is_empty()
        );
        let e = errors(&with("[linux/amd64, windows/arm64]"));
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with(
                "mgw.yaml:4:28: `image.platforms[1]`: unknown platform `windows/arm64`"
            ),
            "{}",
            e[0]
        );
        let e = errors(&with("[\"linux/amd64,linux/arm64\"]"));
        assert!(e[0].contains("one platform per entry"), "{e:?}");
    }

    #[test]
    fn unknown_key_is_located_with_a_suggestion() {
        let e = errors("name: a\nversion: 1.0.0\napis: []\nupstream: {}\n");
        assert_eq!(e.len(), 1);
        assert!(
            e[0].starts_with(
                "mgw.yaml:4:1: `upstream`: unknown key `upstream` (did you mean `upstreams`?)"
            ),
            "{}",
            e[0]
        );
    }

    #[test]
    fn semantic_problems_are_collected() {
        let e = errors(
            "name: a\nversion: 1.0.0+x\nupstreams:\n  u: {urls: [], timeout: 10}\napis:\n  - name: x\n    spec: ../x.yaml\n    upstream: uu\n    basePath: v1\n",
        );
        let all = e.join("\n");
        assert!(all.contains("mgw.yaml:2:10: `version`"), "{all}");
        assert!(
            all.contains("`upstreams.u.urls`: needs at least one URL"),
            "{all}"
        );
        assert!(
            all.contains("`upstreams.u.timeout`: `10` needs a unit"),
            "{all}"
        );
        assert!(all.contains("`apis[0].spec`"), "{all}");
        assert!(all.contains("escapes the project directory"), "{all}");
        assert!(
            all.contains("no upstream named `uu` (did you mean `u`?)"),
            "{all}"
        );
        assert!(
            all.contains("`apis[0].basePath`: `v1` must start with `/`"),
            "{all}"
        );
    }

    #[test]
    fn auth_providers_are_checked_by_type() {
        let e = errors(
            "name: a\nversion: '1'\napis: [{name: a, spec: a.yaml}]\nauth:\n  providers:\n    idp: {type: jwt, issuer: x, file: k}\n    k: {type: apikey}\n  schemes: {s: nope}\n",
        );
        let all = e.join("\n");
        assert!(
            all.contains("`auth.providers.idp.file`: `file` does not apply to `jwt` providers"),
            "{all}"
        );
        assert!(
            all.contains("unknown provider type `apikey` (did you mean `apiKey`?)"),
            "{all}"
        );
        assert!(
            all.contains("`auth.schemes.s`: no provider named `nope`"),
            "{all}"
        );
        let m = parse_manifest(
            "name: a\nversion: '1'\napis: [{name: a, spec: a.yaml, mtls: required}]\nlisteners:\n  api: {address: '0.0.0.0:8443', tls: {clientAuth: optional}}\nauth:\n  providers:\n    internal: {type: jwt, issuer: me, algorithms: [HS256]}\ncors: {allowOrigins: ['https://a.example'], maxAge: 10m}\n",
        )
        .unwrap();
        let tls = m.listeners.api.tls.unwrap();
        assert_eq!(
            tls.cert_file,
            "${MGW_TLS_CERT_FILE:-/etc/mgw/secrets/tls/tls.crt}"
        );
        assert!(
            tls.client_ca_file
                .unwrap()
                .contains("MGW_TLS_CLIENT_CA_FILE")
        );
        assert_eq!(m.cors.unwrap().max_age_s, Some(600));
        let mgw_bundle::Provider::Jwt(j) = &m.auth.providers["internal"] else {
            panic!()
        };
        assert_eq!(
            j.hmac_secret_file.as_deref(),
            Some("${MGW_JWT_HMAC_INTERNAL_FILE:-/etc/mgw/secrets/jwt-hmac/internal/secret}")
        );
    }

    const TRAFFIC: &str = r#"
name: petstore
version: 1.0.0
trustedProxies: [10.0.0.0/8, "${LB_RANGES:-}"]
rateLimits:
  unauthenticated: anonymous
  headers: {xRateLimit: false}
  maxKeys: 100000
  policies:
    anonymous: {requests: 10, period: 1m}
    gold: {requests: 100, period: 1s, burst: 20, key: consumer}
    tenant: {requests: 5, period: 1h, key: {header: X-Tenant}}
    subject: {requests: 5, period: 1d, key: {claim: sub}}
upstreams:
  pets:
    urls: [http://127.0.0.1:8081]
    maxConcurrentRequests: 64
    retry: {attempts: 2, budget: {percent: 10, minPerSecond: 1}}
    circuitBreaker: {consecutiveFailures: 3, window: 30s, openDuration: 2s}
    passiveHealth: {enabled: false}
    healthCheck: {path: /healthz, interval: 2s}
apis:
  - name: petstore
    spec: apis/petstore.yaml
    upstream: pets
    rateLimit: gold
"#;

    #[test]
    fn traffic_policies_validate() {
        let m = parse_manifest(TRAFFIC).unwrap();
        let r = m.rate_limits.as_ref().unwrap();
        assert_eq!(r.unauthenticated.as_deref(), Some("anonymous"));
        assert!(!r.headers.x_rate_limit);
        assert_eq!(r.policies["anonymous"].period_seconds, 60);
        assert_eq!(r.policies["anonymous"].key, RateLimitKey::Consumer);
        assert_eq!(r.policies["gold"].burst, Some(20));
        assert_eq!(
            r.policies["tenant"].key,
            RateLimitKey::Header("X-Tenant".into())
        );
        assert_eq!(r.policies["subject"].key, RateLimitKey::Claim("sub".into()));
        assert_eq!(r.policies["subject"].period_seconds, 86_400);
        assert_eq!(m.trusted_proxies.len(), 2);
        assert_eq!(m.apis[0].rate_limit.as_deref(), Some("gold"));
        assert_eq!(m.policy_exists("gold"), Some(true));
        assert_eq!(m.policy_exists("unlimited"), Some(false));
        assert_eq!(m.policy_exists("Gold"), None);
        let u = &m.upstreams["pets"];
        assert_eq!(u.max_concurrent_requests, 64);
        assert_eq!(u.retry.budget_percent, 10);
        assert_eq!(u.circuit_breaker.open_ms, 2_000);
        assert_eq!(u.circuit_breaker.consecutive_failures, 3);
        assert!(!u.passive_health.enabled);
        assert_eq!(u.health_check.as_ref().unwrap().path, "/healthz");
    }

    #[test]
    fn traffic_policy_problems_are_located() {
        let text = TRAFFIC
            .replace("unauthenticated: anonymous", "unauthenticated: anonymos")
            .replace("period: 1m}", "period: 1500ms}")
            .replace("rateLimit: gold", "rateLimit: gld")
            .replace("10.0.0.0/8", "10.0.0.1/8")
            .replace("{header: X-Tenant}", "{heder: X-Tenant}");
        let all = errors(&text).join("\n");
        assert!(
            all.contains("mgw.yaml:12:44: `rateLimits.policies.tenant.key`: `heder` is not a rate-limit key; expected `consumer`, `clientIp`, `api`, `{header: NAME}` or `{claim: NAME}`"),
            "{all}"
        );
        // Type errors stop at the first; fix it and see the others.
        let text = text.replace("{heder: X-Tenant}", "{header: X-Tenant}");
        let all = errors(&text).join("\n");
        assert!(
            all.contains("mgw.yaml:6:20: `rateLimits.unauthenticated`: no policy named `anonymos` (did you mean `anonymous`?)"),
            "{all}"
        );
        assert!(
            all.contains(
                "`rateLimits.policies.anonymous.period`: `1500ms` must be a whole number of seconds"
            ),
            "{all}"
        );
        assert!(
            all.contains(
                "`apis[0].rateLimit`: no rate-limit policy named `gld` (did you mean `gold`?)"
            ),
            "{all}"
        );
        assert!(
            all.contains("mgw.yaml:4:18: `trustedProxies[0]`: `10.0.0.1/8` has host bits set"),
            "{all}"
        );
        let e = errors(
            "name: a\nversion: '1'\napis: [{name: a, spec: a.yaml}]\nrateLimits: {policies: {Unlimited: {requests: 1, period: 1s}}}\n",
        );
        assert!(e[0].contains("`Unlimited` means no rate limit"), "{e:?}");
    }

    /// The gateway's own rules, run on each part as `mgw.yaml` declares it and
    /// reported at the key they come from in human units: no rule is restated
    /// here, and none can drift.
    #[test]
    fn gateway_rules_are_located_in_mgw_yaml() {
        let text = "name: a\nversion: '1'\napis: [{name: a, spec: a.yaml}]\nlimits:\n  maxHeaders: 5000\n  idleTimeout: 0s\nupstreams:\n  spare:\n    urls: [ftp://x]\n    connectTimeout: 0s\n    maxConcurrentRequests: 0\n    retry: {attempts: 11, budget: {percent: 1001}}\n    circuitBreaker: {consecutiveFailures: 0, failureRatePercent: 0}\n    healthCheck: {path: '/a b', unhealthyThreshold: 0}\nrateLimits:\n  maxKeys: 10\n  policies:\n    bad name: {requests: 0, period: 1s, key: {header: 'a b'}}\nanalytics: {sink: file, queueCapacity: 0}\n";
        let all = errors(text).join("\n");
        for expected in [
            "mgw.yaml:5:15: `limits.maxHeaders`: 5000 is out of range (1..=1000)",
            "mgw.yaml:6:16: `limits.idleTimeout`: must be greater than 0",
            "mgw.yaml:9:12: `upstreams.spare.urls[0]`: `ftp://x`: scheme `ftp` is not supported",
            "mgw.yaml:10:21: `upstreams.spare.connectTimeout`: must be greater than 0",
            "mgw.yaml:11:28: `upstreams.spare.maxConcurrentRequests`: 0 is out of range",
            "mgw.yaml:12:23: `upstreams.spare.retry.attempts`: 11 is out of range (0..=10)",
            "mgw.yaml:12:45: `upstreams.spare.retry.budget.percent`: 1001 is out of range",
            "mgw.yaml:13:21: `upstreams.spare.circuitBreaker`: can never open",
            "mgw.yaml:14:25: `upstreams.spare.healthCheck.path`: `/a b` must be an absolute path",
            "mgw.yaml:14:53: `upstreams.spare.healthCheck.unhealthyThreshold`: must be at least 1",
            "mgw.yaml:16:12: `rateLimits.maxKeys`: 10 is out of range (1024..=67108864)",
            "mgw.yaml:18:5: `rateLimits.policies[\"bad name\"]`: `bad name` is not a valid policy name",
            "mgw.yaml:18:26: `rateLimits.policies[\"bad name\"].requests`: 0 is out of range",
            "mgw.yaml:18:55: `rateLimits.policies[\"bad name\"].key.header`: `a b` is not a header name",
            "mgw.yaml:19:12: `analytics.path`: required when `sink` is `file`",
            "mgw.yaml:19:40: `analytics.queueCapacity`: 0 is out of range",
        ] {
            assert!(all.contains(expected), "missing {expected:?} in\n{all}");
        }
        // A switched-off breaker is not checked, by the gateway or here.
        parse_manifest(
            "name: a\nversion: '1'\napis: [{name: a, spec: a.yaml}]\nupstreams:\n  u: {urls: ['http://x'], circuitBreaker: {enabled: false, halfOpenRequests: 0}}\n",
        )
        .unwrap();
    }

    #[test]
    fn repositories() {
        assert!(check_repository("localhost:5000/petstore-gw").is_ok());
        assert!(check_repository("ghcr.io/acme/gw").is_ok());
        assert!(check_repository("petstore").is_ok());
        assert!(check_repository("Petstore").is_err());
        assert!(
            check_repository("petstore:1.0")
                .unwrap_err()
                .contains("tag")
        );
        assert!(check_repository("a//b").is_err());
    }
}
