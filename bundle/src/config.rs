//! The checked configuration the gateway runs on ([`Config`]), produced by
//! `Config::from_bundle` (in the `check` module).

use std::net::SocketAddr;
use std::time::Duration;

use http::{Method, Uri};

use crate::net::TrustedProxies;
use crate::wire::*;

// ---------------------------------------------------------------------------
// Validated configuration
// ---------------------------------------------------------------------------

/// The checked, resolved configuration the gateway runs on.
#[derive(Debug, Clone)]
pub struct Config {
    /// `sha256:…` of the bundle bytes.
    pub digest: String,
    pub gateway: GatewayInfo,
    pub api_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub limits: LimitsCfg,
    /// `None` when the bundle declares no rate-limit policy.
    pub rate_limits: Option<RateLimitsCfg>,
    pub trusted_proxies: TrustedProxies,
    pub upstreams: Vec<UpstreamCfg>,
    pub apis: Vec<ApiCfg>,
    pub routes: Vec<RouteCfg>,
    pub analytics: AnalyticsCfg,
    /// TLS on the API listener.
    pub tls: Option<TlsCfg>,
    /// Authentication providers; schemes refer to them by index.
    pub auth: AuthCfg,
    /// `None`: traces off.
    pub tracing: Option<TracingCfg>,
}

/// Checked `tracing`.
#[derive(Debug, Clone, PartialEq)]
pub struct TracingCfg {
    /// Where export requests go, resolved: `<endpoint>/v1/traces` (OTLP/HTTP)
    /// or `<endpoint>/opentelemetry.proto.collector.trace.v1.TraceService/Export`.
    pub traces_url: String,
    pub protocol: OtlpProtocol,
    /// Extra CA certificates for an `https://` collector, resolved.
    pub ca_file: Option<String>,
    pub sample_ratio: f64,
    pub queue_size: usize,
}

#[derive(Debug, Clone)]
pub struct LimitsCfg {
    pub header_read_timeout: Duration,
    pub max_header_bytes: usize,
    pub max_headers: usize,
    pub idle_timeout: Duration,
    pub shutdown_grace: Duration,
    pub h2_max_concurrent_streams: u32,
}

#[derive(Debug, Clone)]
pub struct UpstreamCfg {
    pub name: String,
    pub targets: Vec<Target>,
    pub load_balancing: LoadBalancing,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub retry_attempts: u32,
    pub retry_idempotent: bool,
    pub pool_idle_timeout: Duration,
    pub pool_max_idle_per_host: usize,
    pub max_concurrent_requests: usize,
    pub retry_budget: RetryBudgetCfg,
    pub circuit_breaker: Option<CircuitBreakerCfg>,
    pub passive_health: Option<PassiveHealthCfg>,
    pub health_check: Option<HealthCheckCfg>,
    /// `None` when no URL is `https://`.
    pub tls: Option<UpstreamTlsCfg>,
}

/// Checked upstream TLS: templates resolved, the pair of client files together.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpstreamTlsCfg {
    pub ca_file: Option<String>,
    /// Certificate chain file and key file.
    pub client_cert: Option<(String, String)>,
    pub server_name: Option<rustls_pki_types::ServerName<'static>>,
    pub insecure_skip_verify: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryBudgetCfg {
    pub percent: u32,
    pub min_per_second: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CircuitBreakerCfg {
    /// 0: consecutive failures never open it.
    pub consecutive_failures: u32,
    /// 0: the failure rate never opens it.
    pub failure_rate_percent: u32,
    pub min_requests: u32,
    pub window: Duration,
    pub open: Duration,
    pub half_open_requests: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassiveHealthCfg {
    pub consecutive_failures: u32,
    pub ejection: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheckCfg {
    pub path: String,
    pub interval: Duration,
    pub timeout: Duration,
    pub healthy_threshold: u32,
    pub unhealthy_threshold: u32,
}

/// Validated rate-limit policies.
#[derive(Debug, Clone)]
pub struct RateLimitsCfg {
    /// Sorted by name; routes refer to them by index.
    pub policies: Vec<RateLimitPolicyCfg>,
    /// Index of the policy for callers without a consumer.
    pub unauthenticated: Option<usize>,
    pub ietf_headers: bool,
    pub x_headers: bool,
    pub max_keys: usize,
    /// Set when a policy is `scope: global`.
    pub redis: Option<RedisCfg>,
}

/// Checked `rateLimits.redis`: templates resolved (in the builder's view, an
/// unresolved template is kept as written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisCfg {
    pub url: String,
    pub username: Option<String>,
    pub password_file: Option<String>,
    pub ca_file: Option<String>,
    pub cluster: bool,
    pub timeout: Duration,
    pub replicas: u64,
}

#[derive(Debug, Clone)]
pub struct RateLimitPolicyCfg {
    pub name: String,
    pub requests: u64,
    pub period: Duration,
    pub burst: u64,
    pub key: RateLimitKeyCfg,
    pub scope: RateLimitScope,
    pub on_redis_failure: OnRedisFailure,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RateLimitKeyCfg {
    Consumer,
    ClientIp,
    Api,
    Header(http::HeaderName),
    Claim(String),
}

/// One upstream base URL, split for cheap request rewriting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `http://host:port` or `https://host:port`, no path.
    pub origin: Uri,
    /// Path prefix without trailing `/` (empty for none).
    pub path_prefix: String,
}

#[derive(Debug, Clone)]
pub struct ApiCfg {
    pub name: String,
    pub version: Option<String>,
    pub base_path: String,
    /// Security schemes of this API, sorted by name; routes refer to them by index.
    pub schemes: Vec<SchemeCfg>,
    pub cors: Option<CorsCfg>,
    pub mtls: Option<ClientCertMode>,
    pub underscore_headers: UnderscoreHeaders,
    pub scope_match: ScopeMatch,
}

/// One routable operation.
#[derive(Debug, Clone)]
pub struct RouteCfg {
    pub api: usize,
    pub operation_id: String,
    pub method: Method,
    /// Path template relative to the API's base path.
    pub path: String,
    /// Full template, base path included, as the router sees it.
    pub template: String,
    /// Number of path segments the API's base path occupies.
    pub base_segments: usize,
    pub upstream: usize,
    /// Where sandbox traffic goes instead of `upstream` (boxed: most routes
    /// have none, and it is 72 bytes of every route kept for the gateway's life).
    pub sandbox: Option<Box<SandboxRoute>>,
    /// Indexes into `Config::rate_limits` policies: the API's and the operation's.
    pub api_rate_limit: Option<usize>,
    pub operation_rate_limit: Option<usize>,
    pub max_body_bytes: u64,
    /// `/a/` may take this route of `/a` (the API's `ignoreTrailingSlash`).
    pub ignore_trailing_slash: bool,
    /// Any requirement may pass; inside one, every (scheme, scopes) must. Empty: open.
    pub security: Vec<Vec<SchemeReq>>,
    /// A caller without credentials passes anonymously (`Operation::anonymous`).
    pub anonymous: bool,
    /// A WebSocket upgrade may be spliced to the upstream.
    pub websocket: bool,
    /// The API's and the operation's transforms, merged; `None`: nothing to do.
    pub transforms: Option<std::sync::Arc<crate::transform::TransformCfg>>,
    /// What a validated operation accepts, schemas compiled.
    pub request: Option<std::sync::Arc<crate::contract::CheckedRequest>>,
    /// The answer of a mocked operation (no upstream call).
    pub mock: Option<std::sync::Arc<crate::contract::MockContract>>,
    /// Response checks (report mode), schemas compiled.
    pub responses: Option<std::sync::Arc<crate::contract::CheckedResponses>>,
    /// Native filters named for this operation (`Operation::filters`).
    pub filters: Vec<String>,
}

/// A route's sandbox upstream and what selects it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxRoute {
    pub by: SandboxBy,
    pub value: String,
    /// Index into `Config::upstreams`.
    pub upstream: usize,
}

/// Where the sandbox marker is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SandboxBy {
    /// A claim of the authenticated caller's token.
    Claim(String),
    /// A request header (anyone may send it: for test traffic, not a boundary).
    Header(http::HeaderName),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnalyticsCfg {
    Stdout { queue_capacity: usize },
    File { path: String, queue_capacity: usize },
    Disabled,
}

// Validated security configuration ------------------------------------------

#[derive(Debug, Clone)]
pub struct TlsCfg {
    pub cert_file: String,
    pub key_file: String,
    pub client_ca_file: Option<String>,
    pub client_auth: ClientAuth,
    /// How often the files are checked for a new certificate, key or CA.
    pub reload_interval: Duration,
}

impl TlsCfg {
    pub const RELOAD_INTERVAL: Duration = Duration::from_secs(5);
}

#[derive(Debug, Clone, Default)]
pub struct AuthCfg {
    /// Sorted by name.
    pub providers: Vec<ProviderCfg>,
}

#[derive(Debug, Clone)]
pub struct ProviderCfg {
    pub name: String,
    pub kind: ProviderKind,
}

#[derive(Debug, Clone)]
pub enum ProviderKind {
    Jwt(JwtCfg),
    ApiKey(SecretFileCfg),
    Basic(SecretFileCfg),
    Introspection(IntrospectionCfg),
}

impl ProviderKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Jwt(_) => "jwt",
            Self::ApiKey(_) => "apiKey",
            Self::Basic(_) => "basic",
            Self::Introspection(_) => "introspection",
        }
    }
}

/// The claims scopes are read from when a provider names none (OAuth 2.0's
/// `scope`, RFC 8693; `scp`, used by Okta and Microsoft Entra ID).
pub const DEFAULT_SCOPE_CLAIMS: [&str; 2] = ["scope", "scp"];

#[derive(Debug, Clone)]
pub struct JwtCfg {
    pub issuer: String,
    pub audiences: Vec<String>,
    pub algorithms: Vec<jsonwebtoken::Algorithm>,
    pub keys: Vec<JwtKey>,
    pub jwks_url: Option<String>,
    /// The OpenID Connect discovery document naming the JWKS (when `jwks_url` is not set).
    pub discovery_url: Option<String>,
    pub jwks_refresh: Duration,
    pub jwks_min_refresh_interval: Duration,
    pub jwks_timeout: Duration,
    pub hmac_secret_file: Option<String>,
    pub leeway: Duration,
    pub max_token_bytes: usize,
    pub claim_headers: Vec<(String, http::HeaderName)>,
    pub forward_credentials: bool,
    pub consumer_claim: Option<String>,
    /// Where scopes are read: `scope` and `scp` unless the provider names others.
    pub scope_claims: Vec<String>,
    pub cache_capacity: usize,
}

#[derive(Debug, Clone)]
pub struct SecretFileCfg {
    pub file: String,
    pub reload_interval: Duration,
    pub realm: Option<String>,
    pub forward_credentials: bool,
}

#[derive(Debug, Clone)]
pub struct IntrospectionCfg {
    pub endpoint: Uri,
    pub client_id_file: String,
    pub client_secret_file: String,
    pub timeout: Duration,
    pub cache_ttl: Duration,
    pub negative_cache_ttl: Duration,
    pub cache_capacity: usize,
    pub max_token_bytes: usize,
    pub claim_headers: Vec<(String, http::HeaderName)>,
    pub forward_credentials: bool,
}

/// A scheme of one API, resolved.
#[derive(Debug, Clone)]
pub struct SchemeCfg {
    pub name: String,
    /// Index into `AuthCfg::providers`.
    pub provider: usize,
    pub location: CredentialIn,
    /// Header names lowercased; query names as written.
    pub param: String,
    pub prefix: Option<String>,
}

/// One scheme of a requirement: index into `ApiCfg::schemes`, and its scopes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemeReq {
    pub scheme: usize,
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct CorsCfg {
    /// `None`: any origin (`*`).
    pub allow_origins: Option<Vec<String>>,
    pub allow_methods: Vec<Method>,
    pub allow_headers: Vec<String>,
    pub expose_headers: Vec<String>,
    pub allow_credentials: bool,
    pub max_age_s: Option<u64>,
}

impl Target {
    pub fn is_https(&self) -> bool {
        self.origin.scheme_str() == Some("https")
    }
}
