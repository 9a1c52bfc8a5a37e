//! The wire document the builder writes and the gateway reads: serde types,
//! unknown fields denied, canonical JSON and its digest. Defaults live here, in the
//! `#[serde(default)]` functions, and nowhere else.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::BundleError;
pub use crate::transform::Transforms;

/// Most further attempts an upstream may be configured with.
pub const MAX_RETRY_ATTEMPTS: u32 = 10;

/// The bundle format this gateway understands.
pub const SCHEMA_VERSION: u32 = 1;

// ---------------------------------------------------------------------------
// Wire format
// ---------------------------------------------------------------------------

/// The bundle document as written by `mgw build`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Bundle {
    pub schema_version: u32,
    pub gateway: GatewayInfo,
    #[serde(default)]
    pub listeners: Listeners,
    #[serde(default)]
    pub limits: Limits,
    /// Rate-limit policies (traffic policies, see below).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limits: Option<RateLimits>,
    /// Address ranges whose `X-Forwarded-For` is believed; entries may use `${VAR}`
    /// templates, and one entry may hold several comma-separated ranges.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trusted_proxies: Vec<String>,
    /// Upstream clusters by name; APIs and operations refer to them.
    pub upstreams: BTreeMap<String, Upstream>,
    pub apis: Vec<Api>,
    #[serde(default)]
    pub analytics: Analytics,
    /// Authentication providers (see the security section below).
    #[serde(default, skip_serializing_if = "Auth::is_empty")]
    pub auth: Auth,
    /// OpenTelemetry traces; off when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracing: Option<Tracing>,
}

/// OpenTelemetry traces exported over OTLP/HTTP (protobuf).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Tracing {
    pub otlp: Otlp,
    /// Share of new traces (no sampled parent) recorded, 0 to 1; a request whose
    /// `traceparent` says sampled (or not) follows its parent.
    #[serde(default = "default_sample_ratio")]
    pub sample_ratio: f64,
    /// Most finished requests waiting for export; past it, spans are dropped
    /// and counted.
    #[serde(default = "default_trace_queue")]
    pub queue_size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Otlp {
    /// The collector's base URL, `http://` or `https://`: OTLP/HTTP
    /// (`http://collector:4318`, spans go to `<endpoint>/v1/traces`) or OTLP/gRPC
    /// (`http://collector:4317`). `${VAR}` templates allowed.
    pub endpoint: String,
    /// `http` (OTLP/HTTP with protobuf, the default) or `grpc`.
    #[serde(default, skip_serializing_if = "OtlpProtocol::is_http")]
    pub protocol: OtlpProtocol,
    /// PEM CA bundle that signs an `https://` collector's certificate, on top of
    /// the image's CA bundle; `${VAR}` templates allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
}

/// How spans are sent to the collector.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum OtlpProtocol {
    /// OTLP/HTTP, protobuf body, `POST <endpoint>/v1/traces`.
    #[default]
    Http,
    /// OTLP/gRPC, unary `TraceService/Export` over HTTP/2.
    Grpc,
}

impl OtlpProtocol {
    pub fn is_http(&self) -> bool {
        *self == OtlpProtocol::Http
    }
}

fn default_sample_ratio() -> f64 {
    1.0
}

fn default_trace_queue() -> u64 {
    2048
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GatewayInfo {
    pub name: String,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Listeners {
    #[serde(default = "Listener::default_api")]
    pub api: Listener,
    #[serde(default = "Listener::default_admin")]
    pub admin: Listener,
}

impl Default for Listeners {
    fn default() -> Self {
        Self {
            api: Listener::default_api(),
            admin: Listener::default_admin(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Listener {
    /// `host:port`; may use `${VAR}` templates.
    pub address: String,
    /// TLS on this listener (API listener only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ListenerTls>,
}

impl Listener {
    pub const DEFAULT_API: &str = "${MGW_LISTEN:-0.0.0.0:8080}";
    pub const DEFAULT_ADMIN: &str = "${MGW_ADMIN_LISTEN:-0.0.0.0:9090}";

    fn default_api() -> Self {
        Self {
            address: Self::DEFAULT_API.into(),
            tls: None,
        }
    }
    fn default_admin() -> Self {
        Self {
            address: Self::DEFAULT_ADMIN.into(),
            tls: None,
        }
    }
}

/// Protection of the API listener against slow, huge or idle clients.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Limits {
    /// Time a client has to send a complete request head.
    pub header_read_timeout_ms: u64,
    /// Largest request head (request line plus headers) accepted, in bytes.
    pub max_header_bytes: u64,
    /// Most request headers accepted.
    pub max_headers: u64,
    /// A keep-alive connection with no request in flight is closed after this.
    pub idle_timeout_ms: u64,
    /// Default request body limit; an API may lower or raise it.
    pub max_body_bytes: u64,
    /// On SIGTERM, in-flight requests get this long to finish.
    pub shutdown_grace_ms: u64,
    /// HTTP/2 streams per connection.
    pub h2_max_concurrent_streams: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout_ms: 10_000,
            max_header_bytes: 64 * 1024,
            max_headers: 100,
            idle_timeout_ms: 60_000,
            max_body_bytes: 10 * 1024 * 1024,
            shutdown_grace_ms: 20_000,
            h2_max_concurrent_streams: 256,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Upstream {
    /// One or more base URLs (`http://host:port/prefix`); may use `${VAR}` templates.
    pub urls: Vec<String>,
    #[serde(default)]
    pub load_balancing: LoadBalancing,
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Time from sending the request until the response head arrives.
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    #[serde(default)]
    pub retry: Retry,
    #[serde(default = "default_pool_idle_timeout_ms")]
    pub pool_idle_timeout_ms: u64,
    #[serde(default = "default_pool_max_idle")]
    pub pool_max_idle_per_host: u64,
    /// Requests in flight to this upstream at once; more are answered `503` at once.
    #[serde(default = "default_max_concurrent_requests")]
    pub max_concurrent_requests: u64,
    #[serde(default)]
    pub circuit_breaker: CircuitBreaker,
    #[serde(default)]
    pub passive_health: PassiveHealth,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheck>,
    /// TLS to the `https://` URLs (the same block in `mgw.yaml`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<UpstreamTls>,
}

/// TLS to an upstream's `https://` URLs. The image's CA bundle is always trusted;
/// the files are mounted secrets read when the gateway starts, never bundle
/// content. Paths may use `${VAR}` templates.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpstreamTls {
    /// More CA certificates (PEM) to trust, besides the image's CA bundle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// Client certificate chain (PEM) for mutual TLS; needs `keyFile`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<String>,
    /// The client certificate's private key (PEM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<String>,
    /// Name sent as SNI and verified in the certificate, instead of the URL's host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    /// Accept any certificate. Only ever explicit; logged as a warning at start.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure_skip_verify: bool,
}

impl Upstream {
    /// An upstream of these URLs with every other setting at its default.
    pub fn new(urls: Vec<String>) -> Self {
        Self {
            urls,
            load_balancing: LoadBalancing::default(),
            connect_timeout_ms: default_connect_timeout_ms(),
            request_timeout_ms: default_request_timeout_ms(),
            retry: Retry::default(),
            pool_idle_timeout_ms: default_pool_idle_timeout_ms(),
            pool_max_idle_per_host: default_pool_max_idle(),
            max_concurrent_requests: default_max_concurrent_requests(),
            circuit_breaker: CircuitBreaker::default(),
            passive_health: PassiveHealth::default(),
            health_check: None,
            tls: None,
        }
    }
}

fn default_connect_timeout_ms() -> u64 {
    2_000
}
fn default_request_timeout_ms() -> u64 {
    30_000
}
fn default_pool_idle_timeout_ms() -> u64 {
    60_000
}
fn default_pool_max_idle() -> u64 {
    512
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum LoadBalancing {
    /// Spread requests over all URLs in turn; skip a URL that refuses connections.
    #[default]
    RoundRobin,
    /// Always use the first URL that accepts connections, in the listed order.
    Failover,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Retry {
    /// Further attempts after the first. Connect failures are always retryable.
    pub attempts: u32,
    /// Also retry idempotent requests without a body that failed after being sent
    /// (connection reset, upstream closed early).
    pub idempotent: bool,
    /// Retry budget: retries may add at most this percentage to the requests of
    /// the last 10 seconds ...
    pub budget_percent: u32,
    /// ... but this many retries per second are always allowed.
    pub min_retries_per_second: u32,
}

impl Default for Retry {
    fn default() -> Self {
        Self {
            attempts: 1,
            idempotent: false,
            budget_percent: 20,
            min_retries_per_second: 10,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Api {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Path prefix the API is served under (`/petstore/v1`), or `/`.
    pub base_path: String,
    /// Default upstream (a key of `upstreams`).
    pub upstream: String,
    /// Rate-limit policy for the whole API (a key of `rateLimits.policies`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<String>,
    /// Overrides `limits.maxBodyBytes` for this API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_body_bytes: Option<u64>,
    pub operations: Vec<Operation>,
    /// Security schemes the operations' requirements name, by scheme name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub security_schemes: BTreeMap<String, SecurityScheme>,
    /// CORS for every operation of this API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cors: Option<Cors>,
    /// Client certificates (mutual TLS) for this API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtls: Option<ClientCertMode>,
    /// Client request headers whose name has `_` (default `drop`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub underscore_headers: Option<UnderscoreHeaders>,
    /// How the scopes one requirement lists are matched (default `all`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope_match: Option<ScopeMatch>,
    /// A request path with one trailing `/` that no route serves is served by
    /// the route of the path without it, when that route is of this API.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ignore_trailing_slash: bool,
    /// Sandbox traffic (a claim of the caller's token, or a header) goes to the
    /// sandbox upstreams.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<Sandbox>,
    /// Header, query, path and method changes for every operation of this API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transforms: Option<Transforms>,
}

/// What to do with a client header whose name contains `_`: CGI/WSGI-style
/// backends read `X_Consumer_Id` as `X-Consumer-Id`, so such a header could pose
/// as one the gateway sets. One that would pose as a gateway-owned header is
/// dropped even under `allow`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum UnderscoreHeaders {
    /// Forward them (except those posing as gateway-owned headers).
    Allow,
    /// Remove them before any stage reads headers (what nginx and Envoy do).
    #[default]
    Drop,
    /// Answer 400.
    Reject,
}

/// How a requirement's scopes are matched against a caller's. OpenAPI lists
/// the scopes a requirement needs, all of them; some public documents list
/// alternatives instead (Xero: `accounting.transactions` and
/// `accounting.transactions.read` on a read; Slack: `chat:write:user` and
/// `chat:write:bot`), which their real tokens never carry together.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ScopeMatch {
    /// Every listed scope (OpenAPI).
    #[default]
    All,
    /// At least one of them.
    Any,
}

/// Sandbox traffic (WSO2 Microgateway's sandbox keys): a request whose
/// authenticated identity has claim `claim` equal to `value` — or, with `header`,
/// whose header has that value — is sent to the sandbox upstream of its
/// operation, else of the API. Operations with neither send it to their
/// production upstream. Exactly one of `claim` and `header`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Sandbox {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    pub value: String,
    /// The API's sandbox upstream (a key of `upstreams`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Operation {
    pub id: String,
    pub method: String,
    /// OpenAPI path template relative to the base path (`/pets/{petId}`).
    pub path: String,
    /// Rate-limit policy for this operation, on top of the API's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<String>,
    /// Overrides the API's upstream for this operation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    /// Overrides the API's sandbox upstream for this operation (needs `sandbox`
    /// on the API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox_upstream: Option<String>,
    /// Effective security requirements: any one may pass, every scheme inside one
    /// must pass (scheme name → required scopes). Empty: open.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security: Vec<BTreeMap<String, Vec<String>>>,
    /// Optional authentication (OpenAPI `{}` among the alternatives): a caller
    /// that presents no credential passes anonymously; one that presents a
    /// credential is identified by it, and refused when it does not verify.
    /// Needs `security`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub anonymous: bool,
    /// The operation accepts WebSocket upgrades (opt-in: every other `Upgrade`
    /// is stripped before forwarding, and so is `websocket` when this is off).
    #[serde(default, skip_serializing_if = "is_false")]
    pub websocket: bool,
    /// This operation's transforms, applied after the API's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transforms: Option<Transforms>,
    /// Request validation against the document (`x-mgw-validate-request`,
    /// `apis[].validation.request`): present only for validated operations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<crate::contract::RequestContract>,
    /// Answered from the document's examples, never sent upstream (`x-mgw-mock`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mock: Option<crate::contract::MockContract>,
    /// Response checks in report mode (`apis[].validation.responses`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub responses: Option<crate::contract::ResponseContract>,
    /// Native filters named for this operation (WSO2's
    /// `x-wso2-request-interceptor`/`x-wso2-response-interceptor`): a filter a
    /// bundle names runs only on the operations that name it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Analytics {
    #[serde(default)]
    pub sink: SinkKind,
    /// File path for `sink: file`; may use `${VAR}` templates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Events waiting to be written; when full, new events are dropped and counted.
    #[serde(default = "default_queue_capacity")]
    pub queue_capacity: u64,
}

fn default_queue_capacity() -> u64 {
    16_384
}

impl Default for Analytics {
    fn default() -> Self {
        Self {
            sink: SinkKind::Stdout,
            path: None,
            queue_capacity: default_queue_capacity(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SinkKind {
    #[default]
    Stdout,
    File,
    None,
}

// ---------------------------------------------------------------------------
// Wire format: traffic policies (rate limits, upstream resilience)
// ---------------------------------------------------------------------------

/// Rate-limit policies and how they are applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RateLimits {
    /// Policies by name; `apis[].rateLimit` and `operations[].rateLimit` name them.
    pub policies: BTreeMap<String, RateLimitPolicy>,
    /// Policy applied to every request without an authenticated consumer, keyed
    /// by client IP, on top of the API's and operation's policies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unauthenticated: Option<String>,
    #[serde(default)]
    pub headers: RateLimitHeaders,
    /// Most keys tracked over all policies; at the cap, the state closest to full
    /// credit is dropped. 16 bytes a key.
    #[serde(default = "default_rate_limit_max_keys")]
    pub max_keys: u64,
    /// Where `scope: global` policies keep their state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis: Option<RateLimitRedis>,
}

/// The Redis (or Redis Cluster) that `scope: global` policies share. Secrets are
/// never in the bundle: the password is read from a mounted file at start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RateLimitRedis {
    /// `redis://host:port[/db]` or `rediss://…` (TLS); `${VAR}` templates allowed.
    pub url: String,
    /// ACL user; `${VAR}` templates allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// File holding the password (a mounted secret); `${VAR}` templates allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<String>,
    /// PEM CA bundle that signs the server certificate of a `rediss://` URL
    /// (else the system store); `${VAR}` templates allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// `url` is a seed node of a Redis Cluster.
    #[serde(default, skip_serializing_if = "is_false")]
    pub cluster: bool,
    /// Per-request deadline for a decision; past it, `onRedisFailure` decides.
    #[serde(default = "default_redis_timeout_ms")]
    pub timeout_ms: u64,
    /// Gateway replicas sharing the quota: the local fallback allows
    /// `requests / replicas` per replica. A number, or a `${VAR}` template
    /// (`${MGW_REPLICAS}`, set by the helm chart) resolved at start.
    #[serde(default = "default_redis_replicas")]
    pub replicas: CountOrTemplate,
}

/// A whole number written as such (`3`) or as a `${VAR}` template resolved at
/// start (`${MGW_REPLICAS:-1}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CountOrTemplate {
    Count(u64),
    Template(String),
}

impl Serialize for CountOrTemplate {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Count(n) => s.serialize_u64(*n),
            Self::Template(t) => s.serialize_str(t),
        }
    }
}

impl<'de> Deserialize<'de> for CountOrTemplate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = CountOrTemplate;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a whole number or a `${VAR}` template")
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Self::Value, E> {
                Ok(CountOrTemplate::Count(n))
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Self::Value, E> {
                u64::try_from(n)
                    .map(CountOrTemplate::Count)
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Signed(n), &self))
            }
            fn visit_str<E: serde::de::Error>(self, t: &str) -> Result<Self::Value, E> {
                Ok(CountOrTemplate::Template(t.to_owned()))
            }
        }
        d.deserialize_any(V)
    }
}

fn default_redis_timeout_ms() -> u64 {
    5
}

fn default_redis_replicas() -> CountOrTemplate {
    CountOrTemplate::Count(1)
}

/// Where a policy's budgets live.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RateLimitScope {
    /// In each replica's memory.
    #[default]
    Local,
    /// In `rateLimits.redis`, shared by every replica.
    Global,
}

impl RateLimitScope {
    pub fn is_local(&self) -> bool {
        *self == RateLimitScope::Local
    }
}

/// What a `global` policy does when Redis does not answer in time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum OnRedisFailure {
    /// The local limiter, with the quota divided by `rateLimits.redis.replicas`.
    #[default]
    Local,
    /// Let the request through.
    Allow,
    /// Refuse it (`429`).
    Deny,
}

impl OnRedisFailure {
    pub fn is_local(&self) -> bool {
        *self == OnRedisFailure::Local
    }
}

impl Default for RateLimits {
    /// No policies, every other setting at its default.
    fn default() -> Self {
        Self {
            policies: BTreeMap::new(),
            unauthenticated: None,
            headers: RateLimitHeaders::default(),
            max_keys: default_rate_limit_max_keys(),
            redis: None,
        }
    }
}

fn default_rate_limit_max_keys() -> u64 {
    1 << 20
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RateLimitPolicy {
    /// Requests allowed per period, sustained.
    pub requests: u64,
    pub period_seconds: u64,
    /// Requests allowed at once after a quiet period; defaults to `requests`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u64>,
    #[serde(default)]
    pub key: RateLimitKey,
    #[serde(default, skip_serializing_if = "RateLimitScope::is_local")]
    pub scope: RateLimitScope,
    /// Only for `scope: global`.
    #[serde(default, skip_serializing_if = "OnRedisFailure::is_local")]
    pub on_redis_failure: OnRedisFailure,
}

/// What one budget is kept for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum RateLimitKey {
    /// The authenticated consumer; the client IP for unauthenticated callers.
    #[default]
    Consumer,
    /// The client IP (see `trustedProxies`).
    ClientIp,
    /// One budget for everyone.
    Api,
    /// The value of a request header; the client IP when it is missing.
    Header(String),
    /// A claim of the caller's token; else the consumer, else the client IP.
    Claim(String),
}

impl RateLimitKey {
    const EXPECTED: &str = "`consumer`, `clientIp`, `api`, `{header: NAME}` or `{claim: NAME}`";
}

impl Serialize for RateLimitKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let (k, v) = match self {
            Self::Consumer => return s.serialize_str("consumer"),
            Self::ClientIp => return s.serialize_str("clientIp"),
            Self::Api => return s.serialize_str("api"),
            Self::Header(h) => ("header", h),
            Self::Claim(c) => ("claim", c),
        };
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry(k, v)?;
        m.end()
    }
}

impl<'de> Deserialize<'de> for RateLimitKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = RateLimitKey;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(RateLimitKey::EXPECTED)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RateLimitKey, E> {
                match v {
                    "consumer" => Ok(RateLimitKey::Consumer),
                    "clientIp" => Ok(RateLimitKey::ClientIp),
                    "api" => Ok(RateLimitKey::Api),
                    other => Err(E::custom(format_args!(
                        "`{other}` is not a rate-limit key; expected {}",
                        RateLimitKey::EXPECTED
                    ))),
                }
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<RateLimitKey, A::Error> {
                use serde::de::Error;
                let Some(k) = map.next_key::<String>()? else {
                    return Err(A::Error::custom(format_args!(
                        "an empty mapping is not a rate-limit key; expected {}",
                        RateLimitKey::EXPECTED
                    )));
                };
                let v: String = map.next_value()?;
                let key = match k.as_str() {
                    "header" => RateLimitKey::Header(v),
                    "claim" => RateLimitKey::Claim(v),
                    other => {
                        return Err(A::Error::custom(format_args!(
                            "`{other}` is not a rate-limit key; expected {}",
                            RateLimitKey::EXPECTED
                        )));
                    }
                };
                if map.next_key::<String>()?.is_some() {
                    return Err(A::Error::custom(
                        "a rate-limit key mapping has exactly one entry, `header` or `claim`",
                    ));
                }
                Ok(key)
            }
        }
        d.deserialize_any(V)
    }
}

/// Which rate-limit response headers are sent (on every response the limits
/// applied to, and on `429`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct RateLimitHeaders {
    /// `RateLimit-Policy` and `RateLimit` (draft-ietf-httpapi-ratelimit-headers).
    pub ietf: bool,
    /// `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset`.
    pub x_rate_limit: bool,
}

impl Default for RateLimitHeaders {
    fn default() -> Self {
        Self {
            ietf: true,
            x_rate_limit: true,
        }
    }
}

fn default_max_concurrent_requests() -> u64 {
    1024
}

/// Stop sending to an upstream that keeps failing, and probe it before trusting
/// it again. Failures: connect errors, timeouts, resets, and `502`/`503`/`504`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct CircuitBreaker {
    pub enabled: bool,
    /// Opens after this many failures in a row (0: never for this reason).
    pub consecutive_failures: u32,
    /// Opens when at least this share of the requests in `windowMs` failed
    /// (0: never for this reason) ...
    pub failure_rate_percent: u32,
    /// ... once the window holds at least this many requests.
    pub min_requests: u32,
    pub window_ms: u64,
    /// How long it stays open (answering `503` at once) before probing.
    pub open_ms: u64,
    /// Probe requests let through when half-open; that many successes close it.
    pub half_open_requests: u32,
}

impl Default for CircuitBreaker {
    fn default() -> Self {
        Self {
            enabled: true,
            consecutive_failures: 10,
            failure_rate_percent: 50,
            min_requests: 20,
            window_ms: 10_000,
            open_ms: 5_000,
            half_open_requests: 1,
        }
    }
}

/// Take an upstream URL out of rotation after failures (needs two URLs or more to
/// matter: when every URL is ejected, all are used again).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct PassiveHealth {
    pub enabled: bool,
    pub consecutive_failures: u32,
    pub ejection_ms: u64,
}

impl Default for PassiveHealth {
    fn default() -> Self {
        Self {
            enabled: true,
            consecutive_failures: 5,
            ejection_ms: 10_000,
        }
    }
}

/// Active health checks: `GET path` on every upstream URL's origin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HealthCheck {
    /// Absolute path on the upstream's origin (`/healthz`).
    pub path: String,
    #[serde(default = "default_health_interval_ms")]
    pub interval_ms: u64,
    #[serde(default = "default_health_timeout_ms")]
    pub timeout_ms: u64,
    /// Successes in a row that bring an unhealthy URL back.
    #[serde(default = "default_healthy_threshold")]
    pub healthy_threshold: u32,
    /// Failures in a row that take a URL out.
    #[serde(default = "default_unhealthy_threshold")]
    pub unhealthy_threshold: u32,
}

impl HealthCheck {
    /// A health check of `path` with every other setting at its default.
    pub fn new(path: String) -> Self {
        Self {
            path,
            interval_ms: default_health_interval_ms(),
            timeout_ms: default_health_timeout_ms(),
            healthy_threshold: default_healthy_threshold(),
            unhealthy_threshold: default_unhealthy_threshold(),
        }
    }
}

fn default_health_interval_ms() -> u64 {
    5_000
}
fn default_health_timeout_ms() -> u64 {
    1_000
}
fn default_healthy_threshold() -> u32 {
    2
}
fn default_unhealthy_threshold() -> u32 {
    3
}

impl Bundle {
    /// Parses bundle JSON; the error names the key path of the first problem.
    pub fn from_json(bytes: &[u8]) -> Result<Self, BundleError> {
        let de = &mut serde_json::Deserializer::from_slice(bytes);
        serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            BundleError::Parse {
                key: if path == "." { String::new() } else { path },
                message: e.into_inner().to_string(),
            }
        })
    }

    /// The canonical bytes: keys sorted, compact, newline-terminated. The bundle
    /// digest is the sha256 of exactly these bytes.
    pub fn to_canonical_json(&self) -> Vec<u8> {
        // `serde_json::Value` keeps object keys in a BTreeMap (the workspace never
        // enables `preserve_order`), so going through it sorts every key.
        let value = serde_json::to_value(self).expect("bundle serializes");
        let mut out = serde_json::to_vec(&value).expect("value serializes");
        out.push(b'\n');
        out
    }
}

/// `sha256:<hex>` of some bytes, the form used for bundle and OCI digests.
pub fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

// ---------------------------------------------------------------------------
// Security: authentication providers, security schemes, TLS, CORS
// ---------------------------------------------------------------------------
//
// The wire side: `auth.providers` (top level), `apis[].securitySchemes`,
// `apis[].cors`, `apis[].mtls`, `apis[].operations[].security` and
// `listeners.api.tls`. Verification keys are inlined (public keys only); every
// secret is a file path, usually a `${VAR:-/etc/mgw/secrets/...}` template,
// read by the gateway at start.

/// `auth`: the authentication providers security schemes refer to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Auth {
    #[serde(default)]
    pub providers: BTreeMap<String, Provider>,
}

impl Auth {
    pub fn is_empty(&self) -> bool {
        self.providers.is_empty()
    }
}

/// One way of checking a credential.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Provider {
    /// Signed JWTs checked with keys from the bundle (or a JWKS URL).
    Jwt(JwtProvider),
    /// API keys from a mounted file of sha256 hashes.
    ApiKey(ApiKeyProvider),
    /// Basic-auth users from a mounted file of bcrypt hashes.
    Basic(BasicProvider),
    /// Opaque OAuth2 tokens checked by RFC 7662 introspection.
    Introspection(IntrospectionProvider),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct JwtProvider {
    /// Exact `iss` every token must carry.
    pub issuer: String,
    /// When not empty, `aud` must name one of these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audiences: Vec<String>,
    /// Allowed `alg` values (`RS256`, `PS256`, `ES256`, `EdDSA`, `HS256`, ...).
    pub algorithms: Vec<String>,
    /// Public verification keys, inlined.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<JwtKey>,
    /// A JWKS fetched at start and refreshed; may use `${VAR}` templates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_url: Option<String>,
    /// An OpenID Connect discovery document (`<issuer>/.well-known/openid-configuration`)
    /// whose `jwks_uri` is the JWKS, when `jwks_url` is not set; may use `${VAR}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery_url: Option<String>,
    #[serde(default = "default_jwks_refresh_ms")]
    pub jwks_refresh_ms: u64,
    /// An unknown `kid` triggers a refresh at most this often.
    #[serde(default = "default_jwks_min_refresh_ms")]
    pub jwks_min_refresh_interval_ms: u64,
    #[serde(default = "default_auth_timeout_ms")]
    pub jwks_timeout_ms: u64,
    /// File holding the HMAC secret (HS256/384/512), mounted at runtime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hmac_secret_file: Option<String>,
    #[serde(default = "default_leeway_ms")]
    pub leeway_ms: u64,
    #[serde(default = "default_max_token_bytes")]
    pub max_token_bytes: u64,
    /// Claim name → request header set from it for the upstream.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub claim_headers: BTreeMap<String, String>,
    /// Keep the credential header (or query parameter) for the upstream.
    #[serde(default)]
    pub forward_credentials: bool,
    /// Claim naming the consumer; default `sub`, then `client_id`, then `azp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer_claim: Option<String>,
    /// Top-level claims the scopes are read from (each a space-separated
    /// string or an array of strings); empty: `scope` and `scp`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scope_claims: Vec<String>,
    /// Verified tokens remembered (by hash) until they expire.
    #[serde(default = "default_cache_capacity")]
    pub cache_capacity: u64,
}

/// A verification key: a JWK (`kty` RSA, EC or OKP) or a PEM public key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct JwtKey {
    /// For PEM keys; a JWK carries its own `kid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pem: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwk: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ApiKeyProvider {
    /// Lines of `consumer:sha256:<hex>`; may use `${VAR}` templates.
    #[serde(default = "default_api_keys_file")]
    pub file: String,
    #[serde(default = "default_reload_ms")]
    pub reload_interval_ms: u64,
    #[serde(default)]
    pub forward_credentials: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BasicProvider {
    /// htpasswd lines `user:$2y$...` (bcrypt); may use `${VAR}` templates.
    #[serde(default = "default_basic_users_file")]
    pub file: String,
    #[serde(default = "default_reload_ms")]
    pub reload_interval_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub realm: Option<String>,
    #[serde(default)]
    pub forward_credentials: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IntrospectionProvider {
    /// The RFC 7662 endpoint (`https://…` or `http://…`); may use templates.
    pub endpoint: String,
    /// Files with the client id and secret (HTTP Basic to the endpoint).
    pub client_id_file: String,
    pub client_secret_file: String,
    #[serde(default = "default_auth_timeout_ms")]
    pub timeout_ms: u64,
    /// Active tokens are cached until `exp`, at most this long.
    #[serde(default = "default_positive_ttl_ms")]
    pub cache_ttl_ms: u64,
    /// Inactive tokens are cached this long.
    #[serde(default = "default_negative_ttl_ms")]
    pub negative_cache_ttl_ms: u64,
    #[serde(default = "default_cache_capacity")]
    pub cache_capacity: u64,
    #[serde(default = "default_max_token_bytes")]
    pub max_token_bytes: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub claim_headers: BTreeMap<String, String>,
    #[serde(default)]
    pub forward_credentials: bool,
}

/// How a request presents the credential of one scheme.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SecurityScheme {
    /// A key of `auth.providers`.
    pub provider: String,
    #[serde(rename = "in")]
    pub location: CredentialIn,
    /// Header or query parameter name.
    pub name: String,
    /// Authorization scheme in the header value (`Bearer`, `Basic`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum CredentialIn {
    Header,
    Query,
    /// A cookie of the `Cookie` header (OpenAPI `in: cookie`).
    Cookie,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ClientCertMode {
    /// Requests without a verified client certificate are refused.
    Required,
    /// A verified client certificate names the consumer when nothing else does.
    Optional,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ListenerTls {
    pub cert_file: String,
    pub key_file: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ca_file: Option<String>,
    /// Default: `optional` with a client CA, `none` without.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_auth: Option<ClientAuth>,
}

impl ListenerTls {
    pub const DEFAULT_CERT_FILE: &str = "${MGW_TLS_CERT_FILE:-/etc/mgw/secrets/tls/tls.crt}";
    pub const DEFAULT_KEY_FILE: &str = "${MGW_TLS_KEY_FILE:-/etc/mgw/secrets/tls/tls.key}";
    pub const DEFAULT_CLIENT_CA_FILE: &str =
        "${MGW_TLS_CLIENT_CA_FILE:-/etc/mgw/secrets/client-ca/ca.crt}";
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ClientAuth {
    None,
    Optional,
    Required,
}

/// CORS for one API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Cors {
    /// Exact origins (`https://app.example.com`) or `*`.
    pub allow_origins: Vec<String>,
    /// Empty: the methods the path serves.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_methods: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_headers: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expose_headers: Vec<String>,
    #[serde(default)]
    pub allow_credentials: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age_s: Option<u64>,
}

fn default_jwks_refresh_ms() -> u64 {
    300_000
}
fn default_jwks_min_refresh_ms() -> u64 {
    10_000
}
fn default_auth_timeout_ms() -> u64 {
    2_000
}
fn default_leeway_ms() -> u64 {
    30_000
}
fn default_max_token_bytes() -> u64 {
    8 * 1024
}
fn default_cache_capacity() -> u64 {
    10_000
}
fn default_reload_ms() -> u64 {
    5_000
}
fn default_positive_ttl_ms() -> u64 {
    300_000
}
fn default_negative_ttl_ms() -> u64 {
    10_000
}
fn default_api_keys_file() -> String {
    ApiKeyProvider::DEFAULT_FILE.into()
}
fn default_basic_users_file() -> String {
    BasicProvider::DEFAULT_FILE.into()
}

impl JwtProvider {
    /// A provider for `issuer` and `algorithms` with every other setting at its
    /// default.
    pub fn new(issuer: String, algorithms: Vec<String>) -> Self {
        Self {
            issuer,
            audiences: Vec::new(),
            algorithms,
            keys: Vec::new(),
            jwks_url: None,
            discovery_url: None,
            jwks_refresh_ms: default_jwks_refresh_ms(),
            jwks_min_refresh_interval_ms: default_jwks_min_refresh_ms(),
            jwks_timeout_ms: default_auth_timeout_ms(),
            hmac_secret_file: None,
            leeway_ms: default_leeway_ms(),
            max_token_bytes: default_max_token_bytes(),
            claim_headers: BTreeMap::new(),
            forward_credentials: false,
            consumer_claim: None,
            scope_claims: Vec::new(),
            cache_capacity: default_cache_capacity(),
        }
    }
}

impl ApiKeyProvider {
    pub const DEFAULT_FILE: &str = "${MGW_API_KEYS_FILE:-/etc/mgw/secrets/api-keys/api-keys}";
}

impl Default for ApiKeyProvider {
    fn default() -> Self {
        Self {
            file: default_api_keys_file(),
            reload_interval_ms: default_reload_ms(),
            forward_credentials: false,
        }
    }
}

impl BasicProvider {
    pub const DEFAULT_FILE: &str =
        "${MGW_BASIC_AUTH_USERS_FILE:-/etc/mgw/secrets/basic-auth/users}";
}

impl Default for BasicProvider {
    fn default() -> Self {
        Self {
            file: default_basic_users_file(),
            reload_interval_ms: default_reload_ms(),
            realm: None,
            forward_credentials: false,
        }
    }
}

impl IntrospectionProvider {
    /// A provider of this endpoint and client files with every other setting at
    /// its default.
    pub fn new(endpoint: String, client_id_file: String, client_secret_file: String) -> Self {
        Self {
            endpoint,
            client_id_file,
            client_secret_file,
            timeout_ms: default_auth_timeout_ms(),
            cache_ttl_ms: default_positive_ttl_ms(),
            negative_cache_ttl_ms: default_negative_ttl_ms(),
            cache_capacity: default_cache_capacity(),
            max_token_bytes: default_max_token_bytes(),
            claim_headers: BTreeMap::new(),
            forward_credentials: false,
        }
    }
}

/// `MGW_JWT_HMAC_<NAME>_FILE` and friends: the provider name upper-cased, `-` → `_`.
pub fn secret_env_name(provider: &str) -> String {
    provider
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// The default HMAC secret path of a JWT provider, as the Helm chart mounts it.
pub fn default_hmac_secret_file(provider: &str) -> String {
    format!(
        "${{MGW_JWT_HMAC_{}_FILE:-/etc/mgw/secrets/jwt-hmac/{provider}/secret}}",
        secret_env_name(provider)
    )
}

/// The default client id and secret paths of an introspection provider.
pub fn default_introspection_files(provider: &str) -> (String, String) {
    let env = secret_env_name(provider);
    (
        format!(
            "${{MGW_INTROSPECTION_{env}_CLIENT_ID_FILE:-/etc/mgw/secrets/introspection/{provider}/client-id}}"
        ),
        format!(
            "${{MGW_INTROSPECTION_{env}_CLIENT_SECRET_FILE:-/etc/mgw/secrets/introspection/{provider}/client-secret}}"
        ),
    )
}
