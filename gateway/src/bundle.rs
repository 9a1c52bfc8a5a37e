//! The bundle: the gateway's only configuration input.
//!
//! Two layers, as in "parse, don't validate": [`Bundle`] is the wire document the
//! builder writes (serde, unknown fields denied, canonical JSON), and [`Config`] is
//! what the gateway runs on, produced by [`Config::from_bundle`] after every check
//! and after `${VAR}` templates are resolved through the [`Env`] seam. Every problem
//! names its key path (`apis[0].operations[2].method`). This module never touches
//! the network or the clock; it must stay cheap enough to run on every start.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use http::{Method, Uri};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::client_ip::{IpNet, TrustedProxies};
use crate::env::{self, Env};

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
    /// A request path with one trailing `/` that no route serves is served by
    /// the route of the path without it, when that route is of this API.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ignore_trailing_slash: bool,
    /// Sandbox traffic (a claim of the caller's token, or a header) goes to the
    /// sandbox upstreams.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<Sandbox>,
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
    /// The operation accepts WebSocket upgrades (opt-in: every other `Upgrade`
    /// is stripped before forwarding, and so is `websocket` when this is off).
    #[serde(default, skip_serializing_if = "is_false")]
    pub websocket: bool,
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
// Errors
// ---------------------------------------------------------------------------

/// One thing wrong with a bundle, at a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "`{}`: {}", self.key, self.message)
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("cannot read bundle `{path}`: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "bundle digest mismatch: the image records `{expected}` but the bundle file hashes to `{actual}`; the bundle was modified after the image was built, refusing to run it"
    )]
    DigestMismatch { expected: String, actual: String },
    #[error("invalid bundle at `{key}`: {message}")]
    Parse { key: String, message: String },
    #[error("invalid bundle:\n{}", .0.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Problem>),
}

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
}

#[derive(Debug, Clone)]
pub struct RateLimitPolicyCfg {
    pub name: String,
    pub requests: u64,
    pub period: Duration,
    pub burst: u64,
    pub key: RateLimitKeyCfg,
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
    /// Where sandbox traffic goes instead of `upstream`.
    pub sandbox: Option<SandboxRoute>,
    /// Indexes into `Config::rate_limits` policies: the API's and the operation's.
    pub api_rate_limit: Option<usize>,
    pub operation_rate_limit: Option<usize>,
    pub max_body_bytes: u64,
    /// `/a/` may take this route of `/a` (the API's `ignoreTrailingSlash`).
    pub ignore_trailing_slash: bool,
    /// Any requirement may pass; inside one, every (scheme, scopes) must. Empty: open.
    pub security: Vec<Vec<SchemeReq>>,
    /// A WebSocket upgrade may be spliced to the upstream.
    pub websocket: bool,
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

/// Reads a bundle file, checks it against the digest the image recorded (when
/// given) and validates it.
pub fn load(
    path: &Path,
    expected_digest: Option<&str>,
    env: &dyn Env,
) -> Result<Config, BundleError> {
    let bytes = std::fs::read(path).map_err(|source| BundleError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let actual = digest_of(&bytes);
    if let Some(expected) = expected_digest {
        if expected != actual {
            return Err(BundleError::DigestMismatch {
                expected: expected.to_owned(),
                actual,
            });
        }
    }
    let bundle = Bundle::from_json(&bytes)?;
    Config::from_bundle(&bundle, actual, Some(env))
}

/// Collects problems instead of stopping at the first.
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

    fn socket_addr(&mut self, key: &str, template: &str) -> SocketAddr {
        let fallback = SocketAddr::from(([0, 0, 0, 0], 0));
        let Some(value) = self.resolve(key, template) else {
            return fallback;
        };
        match value.parse() {
            Ok(a) => a,
            Err(_) => {
                self.push(
                    key,
                    format!("`{value}` is not a socket address (expected `host:port` such as `0.0.0.0:8080` or `[::]:8080`)"),
                );
                fallback
            }
        }
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
        let api_addr = c.socket_addr("listeners.api.address", &bundle.listeners.api.address);
        let admin_addr = c.socket_addr("listeners.admin.address", &bundle.listeners.admin.address);
        if env.is_some() && api_addr == admin_addr && api_addr.port() != 0 {
            c.push(
                "listeners.admin.address",
                format!("`{admin_addr}` is also the API listener; the admin port must differ"),
            );
        }

        let l = &bundle.limits;
        let limits = LimitsCfg {
            header_read_timeout: c.millis("limits.headerReadTimeoutMs", l.header_read_timeout_ms),
            max_header_bytes: bounded(
                &mut c,
                "limits.maxHeaderBytes",
                l.max_header_bytes,
                1024,
                1 << 20,
            ),
            max_headers: bounded(&mut c, "limits.maxHeaders", l.max_headers, 1, 1000),
            idle_timeout: c.millis("limits.idleTimeoutMs", l.idle_timeout_ms),
            shutdown_grace: Duration::from_millis(l.shutdown_grace_ms),
            h2_max_concurrent_streams: l.h2_max_concurrent_streams,
        };
        if limits.h2_max_concurrent_streams == 0 {
            c.push("limits.h2MaxConcurrentStreams", "must be greater than 0");
        }

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
        let mut routes = Vec::new();
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
            let base_path = normalize_base_path(&mut c, &format!("{key}.basePath"), &api.base_path);
            // The router's own template rule (dot segments, `%2e%2e` included), here
            // so a bad base path is one error, not one per route.
            let base_ok = match crate::router::check_template(&base_path) {
                Ok(()) => true,
                Err(e) => {
                    c.push(format!("{key}.basePath"), e.to_string());
                    false
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
                    if let Err(e) = crate::router::check_template(&template) {
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
                    .map(|((sb, by), upstream)| SandboxRoute {
                        by,
                        value: sb.value.clone(),
                        upstream,
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
                    websocket: op.websocket,
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
            });
        }

        let a = &bundle.analytics;
        let queue_capacity = bounded(
            &mut c,
            "analytics.queueCapacity",
            a.queue_capacity,
            1,
            1 << 24,
        );
        let analytics = match a.sink {
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
        };

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
        })
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

fn check_upstream(c: &mut Checker<'_>, key: &str, name: &str, u: &Upstream) -> UpstreamCfg {
    if u.urls.is_empty() {
        c.push(format!("{key}.urls"), "needs at least one URL");
    }
    if u.retry.attempts > MAX_RETRY_ATTEMPTS {
        c.push(
            format!("{key}.retry.attempts"),
            format!(
                "{} is out of range (0..={MAX_RETRY_ATTEMPTS})",
                u.retry.attempts
            ),
        );
    }
    let mut targets = Vec::with_capacity(u.urls.len());
    // Without the deployment environment a URL may stay unknown.
    let mut unknown = false;
    for (i, t) in u.urls.iter().enumerate() {
        let ukey = format!("{key}.urls[{i}]");
        match c.resolve(&ukey, t) {
            Some(url) => match parse_target(&url) {
                Ok(t) => targets.push(t),
                Err(msg) => c.push(ukey, msg),
            },
            None => unknown = true,
        }
    }
    let any_https = targets.iter().any(Target::is_https);
    let tls = check_upstream_tls(
        c,
        &format!("{key}.tls"),
        u.tls.as_ref(),
        any_https || unknown,
    );
    UpstreamCfg {
        name: name.to_owned(),
        targets,
        load_balancing: u.load_balancing,
        connect_timeout: c.millis(&format!("{key}.connectTimeoutMs"), u.connect_timeout_ms),
        request_timeout: c.millis(&format!("{key}.requestTimeoutMs"), u.request_timeout_ms),
        retry_attempts: u.retry.attempts,
        retry_idempotent: u.retry.idempotent,
        pool_idle_timeout: Duration::from_millis(u.pool_idle_timeout_ms),
        pool_max_idle_per_host: usize::try_from(u.pool_max_idle_per_host).unwrap_or(usize::MAX),
        max_concurrent_requests: bounded(
            c,
            &format!("{key}.maxConcurrentRequests"),
            u.max_concurrent_requests,
            1,
            1_000_000,
        ),
        retry_budget: RetryBudgetCfg {
            percent: u32::try_from(bounded(
                c,
                &format!("{key}.retry.budgetPercent"),
                u64::from(u.retry.budget_percent),
                0,
                1000,
            ))
            .unwrap_or(0),
            min_per_second: u.retry.min_retries_per_second,
        },
        circuit_breaker: check_circuit_breaker(
            c,
            &format!("{key}.circuitBreaker"),
            &u.circuit_breaker,
        ),
        passive_health: check_passive_health(c, &format!("{key}.passiveHealth"), &u.passive_health),
        health_check: u
            .health_check
            .as_ref()
            .map(|h| check_health_check(c, &format!("{key}.healthCheck"), h)),
        tls: tls.filter(|_| any_https),
    }
}

/// Checks an upstream's `tls` block; `may_use_tls` is false when every URL is
/// known to be `http://` (then any TLS setting is a mistake worth reporting).
fn check_upstream_tls(
    c: &mut Checker<'_>,
    key: &str,
    t: Option<&UpstreamTls>,
    may_use_tls: bool,
) -> Option<UpstreamTlsCfg> {
    let Some(t) = t else {
        return Some(UpstreamTlsCfg::default());
    };
    if !may_use_tls {
        c.push(
            key,
            "TLS settings apply to `https://` URLs, and every URL of this upstream is `http://`",
        );
    }
    let file = |c: &mut Checker<'_>, name: &str, v: &Option<String>| {
        let k = format!("{key}.{name}");
        let resolved = v.as_ref().and_then(|f| c.resolve(&k, f));
        if resolved.as_ref().is_some_and(|f| f.trim().is_empty()) {
            c.push(k, "must not be empty");
        }
        resolved
    };
    let ca_file = file(c, "caFile", &t.ca_file);
    let cert_file = file(c, "certFile", &t.cert_file);
    let key_file = file(c, "keyFile", &t.key_file);
    match (&t.cert_file, &t.key_file) {
        (Some(_), None) => c.push(
            format!("{key}.keyFile"),
            "a client certificate (`certFile`) needs its private key (`keyFile`)",
        ),
        (None, Some(_)) => c.push(
            format!("{key}.certFile"),
            "a private key (`keyFile`) needs its client certificate (`certFile`)",
        ),
        _ => {}
    }
    if t.insecure_skip_verify && t.ca_file.is_some() {
        c.push(
            format!("{key}.caFile"),
            "a CA file has no use when `insecureSkipVerify` is true: remove one of them",
        );
    }
    let server_name = t.server_name.as_ref().and_then(|n| {
        match rustls_pki_types::ServerName::try_from(n.as_str()) {
            Ok(name) => Some(name.to_owned()),
            Err(_) => {
                c.push(
                    format!("{key}.serverName"),
                    format!("`{n}` is not a DNS name or IP address"),
                );
                None
            }
        }
    });
    Some(UpstreamTlsCfg {
        ca_file,
        client_cert: cert_file.zip(key_file),
        server_name,
        insecure_skip_verify: t.insecure_skip_verify,
    })
}

// ---------------------------------------------------------------------------
// Validation: traffic policies
// ---------------------------------------------------------------------------

/// Policy names appear in response headers (structured-field strings) and metric
/// labels, so they are kept to a safe alphabet.
fn check_policy_name(c: &mut Checker<'_>, key: &str, name: &str) {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '.' | '_' | '-'));
    if !ok {
        c.push(
            key,
            format!(
                "`{name}` is not a valid policy name; use 1 to 64 letters, digits, `.`, `_` and `-`"
            ),
        );
    }
}

fn check_rate_limits(c: &mut Checker<'_>, r: &RateLimits) -> RateLimitsCfg {
    let mut policies = Vec::with_capacity(r.policies.len());
    for (name, p) in &r.policies {
        let key = format!("rateLimits.policies.{name}");
        check_policy_name(c, &key, name);
        let requests = bounded(c, &format!("{key}.requests"), p.requests, 1, 1_000_000_000) as u64;
        let period_seconds = bounded(
            c,
            &format!("{key}.periodSeconds"),
            p.period_seconds,
            1,
            366 * 86_400,
        ) as u64;
        let burst = match p.burst {
            Some(b) => bounded(c, &format!("{key}.burst"), b, 1, 1_000_000_000) as u64,
            None => requests,
        };
        let key_cfg = match &p.key {
            RateLimitKey::Consumer => RateLimitKeyCfg::Consumer,
            RateLimitKey::ClientIp => RateLimitKeyCfg::ClientIp,
            RateLimitKey::Api => RateLimitKeyCfg::Api,
            RateLimitKey::Header(h) => match http::HeaderName::from_bytes(h.as_bytes()) {
                Ok(n) => RateLimitKeyCfg::Header(n),
                Err(_) => {
                    c.push(
                        format!("{key}.key.header"),
                        format!("`{h}` is not a header name"),
                    );
                    RateLimitKeyCfg::ClientIp
                }
            },
            RateLimitKey::Claim(cl) => {
                if cl.trim().is_empty() {
                    c.push(
                        format!("{key}.key.claim"),
                        "must name a claim, such as `sub`",
                    );
                }
                RateLimitKeyCfg::Claim(cl.clone())
            }
        };
        policies.push(RateLimitPolicyCfg {
            name: name.clone(),
            requests,
            period: Duration::from_secs(period_seconds),
            burst,
            key: key_cfg,
        });
    }
    let cfg = RateLimitsCfg {
        unauthenticated: None,
        ietf_headers: r.headers.ietf,
        x_headers: r.headers.x_rate_limit,
        max_keys: bounded(c, "rateLimits.maxKeys", r.max_keys, 1024, 1 << 26),
        policies,
    };
    let unauthenticated = rate_limit_ref(
        c,
        "rateLimits.unauthenticated",
        &r.unauthenticated,
        &Some(cfg.clone()),
    );
    RateLimitsCfg {
        unauthenticated,
        ..cfg
    }
}

/// Resolves a policy name to its index, or reports it.
fn rate_limit_ref(
    c: &mut Checker<'_>,
    key: &str,
    name: &Option<String>,
    rate_limits: &Option<RateLimitsCfg>,
) -> Option<usize> {
    let name = name.as_ref()?;
    let policies = rate_limits
        .as_ref()
        .map(|r| r.policies.as_slice())
        .unwrap_or_default();
    match policies.iter().position(|p| p.name == *name) {
        Some(i) => Some(i),
        None => {
            let known: Vec<String> = policies.iter().map(|p| format!("`{}`", p.name)).collect();
            c.push(
                key,
                format!(
                    "no rate-limit policy named `{name}` (known: {})",
                    if known.is_empty() {
                        "none".into()
                    } else {
                        known.join(", ")
                    }
                ),
            );
            None
        }
    }
}

fn check_trusted_proxies(c: &mut Checker<'_>, entries: &[String]) -> TrustedProxies {
    let mut nets = Vec::new();
    for (i, t) in entries.iter().enumerate() {
        let key = format!("trustedProxies[{i}]");
        let Some(value) = c.resolve(&key, t) else {
            continue;
        };
        for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match IpNet::parse(part) {
                Ok(n) => nets.push(n),
                Err(e) => c.push(key.clone(), e),
            }
        }
    }
    TrustedProxies::new(nets)
}

fn check_circuit_breaker(
    c: &mut Checker<'_>,
    key: &str,
    b: &CircuitBreaker,
) -> Option<CircuitBreakerCfg> {
    if !b.enabled {
        return None;
    }
    if b.consecutive_failures == 0 && b.failure_rate_percent == 0 {
        c.push(
            key,
            "can never open: set `consecutiveFailures` or `failureRatePercent`, or `enabled: false`",
        );
    }
    if b.failure_rate_percent > 100 {
        c.push(
            format!("{key}.failureRatePercent"),
            format!("{} is out of range (0..=100)", b.failure_rate_percent),
        );
    }
    Some(CircuitBreakerCfg {
        consecutive_failures: b.consecutive_failures,
        failure_rate_percent: b.failure_rate_percent.min(100),
        min_requests: b.min_requests.max(1),
        window: c.millis(&format!("{key}.windowMs"), b.window_ms),
        open: c.millis(&format!("{key}.openMs"), b.open_ms),
        half_open_requests: u32::try_from(bounded(
            c,
            &format!("{key}.halfOpenRequests"),
            u64::from(b.half_open_requests),
            1,
            1000,
        ))
        .unwrap_or(1),
    })
}

fn check_passive_health(
    c: &mut Checker<'_>,
    key: &str,
    p: &PassiveHealth,
) -> Option<PassiveHealthCfg> {
    if !p.enabled {
        return None;
    }
    if p.consecutive_failures == 0 {
        c.push(format!("{key}.consecutiveFailures"), "must be at least 1");
    }
    Some(PassiveHealthCfg {
        consecutive_failures: p.consecutive_failures.max(1),
        ejection: c.millis(&format!("{key}.ejectionMs"), p.ejection_ms),
    })
}

fn check_health_check(c: &mut Checker<'_>, key: &str, h: &HealthCheck) -> HealthCheckCfg {
    if !h.path.starts_with('/') || h.path.parse::<http::uri::PathAndQuery>().is_err() {
        c.push(
            format!("{key}.path"),
            format!("`{}` must be an absolute path such as `/healthz`", h.path),
        );
    }
    for (k, v) in [
        ("healthyThreshold", h.healthy_threshold),
        ("unhealthyThreshold", h.unhealthy_threshold),
    ] {
        if v == 0 {
            c.push(format!("{key}.{k}"), "must be at least 1");
        }
    }
    HealthCheckCfg {
        path: h.path.clone(),
        interval: c.millis(&format!("{key}.intervalMs"), h.interval_ms),
        timeout: c.millis(&format!("{key}.timeoutMs"), h.timeout_ms),
        healthy_threshold: h.healthy_threshold.max(1),
        unhealthy_threshold: h.unhealthy_threshold.max(1),
    }
}

impl Target {
    pub fn is_https(&self) -> bool {
        self.origin.scheme_str() == Some("https")
    }
}

/// Splits `http://host:port/prefix` (or `https://…`) into origin and path prefix.
pub fn parse_target(url: &str) -> Result<Target, String> {
    let uri: Uri = url
        .parse()
        .map_err(|e| format!("`{url}` is not a URL: {e}"))?;
    let scheme = match uri.scheme_str() {
        Some(s @ ("http" | "https")) => s.to_owned(),
        Some(other) => {
            return Err(format!(
                "`{url}`: scheme `{other}` is not supported for upstreams (use `http://` or `https://`)"
            ));
        }
        None => return Err(format!("`{url}` needs a scheme, such as `https://{url}`")),
    };
    let Some(authority) = uri.authority() else {
        return Err(format!("`{url}` has no host"));
    };
    if authority.as_str().contains('@') {
        return Err(format!(
            "`{url}`: credentials in upstream URLs are not supported"
        ));
    }
    if uri.query().is_some() {
        return Err(format!(
            "`{url}`: a query string in an upstream URL is not supported"
        ));
    }
    let origin = Uri::builder()
        .scheme(scheme.as_str())
        .authority(authority.clone())
        .path_and_query("/")
        .build()
        .map_err(|e| format!("`{url}`: {e}"))?;
    Ok(Target {
        origin,
        path_prefix: uri.path().trim_end_matches('/').to_owned(),
    })
}

fn normalize_base_path(c: &mut Checker<'_>, key: &str, base: &str) -> String {
    if !base.starts_with('/') {
        c.push(key, format!("`{base}` must start with `/`"));
    }
    if base.contains('{') || base.contains('?') || base.contains('#') {
        c.push(
            key,
            format!("`{base}` must be a literal path (no parameters, query or fragment)"),
        );
    }
    let trimmed = base.trim_end_matches('/');
    if trimmed.is_empty() {
        "/".into()
    } else {
        trimmed.to_owned()
    }
}

/// `base` + `path`, with exactly one `/` between them.
pub fn join_paths(base: &str, path: &str) -> String {
    let base = base.trim_end_matches('/');
    if path.is_empty() || path == "/" {
        return if base.is_empty() {
            "/".into()
        } else {
            base.to_owned()
        };
    }
    format!("{base}/{}", path.trim_start_matches('/'))
}

/// A template with parameter names erased, so `/p/{a}` and `/p/{b}` collide.
pub fn canonical_template(template: &str) -> String {
    let mut out = String::with_capacity(template.len());
    let mut in_param = false;
    let mut last = ' ';
    for ch in template.chars() {
        match ch {
            '{' => {
                in_param = true;
                out.push('{');
            }
            // A catch-all (`{path+}`) is not the same route as `{path}`.
            '}' => {
                in_param = false;
                out.push_str(if last == '+' { "+}" } else { "}" });
            }
            _ if in_param => {}
            _ => out.push(ch),
        }
        last = ch;
    }
    out
}

// ---------------------------------------------------------------------------
// Security: authentication providers, security schemes, TLS, CORS (issue 4)
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

impl ApiKeyProvider {
    pub const DEFAULT_FILE: &str = "${MGW_API_KEYS_FILE:-/etc/mgw/secrets/api-keys/api-keys}";
}

impl BasicProvider {
    pub const DEFAULT_FILE: &str =
        "${MGW_BASIC_AUTH_USERS_FILE:-/etc/mgw/secrets/basic-auth/users}";
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

#[derive(Debug, Clone)]
pub struct JwtCfg {
    pub issuer: String,
    pub audiences: Vec<String>,
    pub algorithms: Vec<jsonwebtoken::Algorithm>,
    pub keys: Vec<JwtKey>,
    pub jwks_url: Option<String>,
    pub jwks_refresh: Duration,
    pub jwks_min_refresh_interval: Duration,
    pub jwks_timeout: Duration,
    pub hmac_secret_file: Option<String>,
    pub leeway: Duration,
    pub max_token_bytes: usize,
    pub claim_headers: Vec<(String, http::HeaderName)>,
    pub forward_credentials: bool,
    pub consumer_claim: Option<String>,
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

/// Headers a claim or a client may never set through the gateway.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
    "te",
    "trailer",
    "keep-alive",
    "proxy-connection",
    "x-request-id",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
];

fn check_claim_headers(
    c: &mut Checker<'_>,
    key: &str,
    map: &BTreeMap<String, String>,
) -> Vec<(String, http::HeaderName)> {
    let mut out = Vec::with_capacity(map.len());
    for (claim, header) in map {
        match http::HeaderName::from_bytes(header.as_bytes()) {
            Ok(h) if !RESERVED_HEADERS.contains(&h.as_str()) => out.push((claim.clone(), h)),
            Ok(h) => c.push(
                format!("{key}.{claim}"),
                format!("`{h}` is managed by the gateway and cannot carry a claim"),
            ),
            Err(_) => c.push(
                format!("{key}.{claim}"),
                format!("`{header}` is not a valid header name"),
            ),
        }
    }
    out
}

/// Parses one inlined key into its verification key and algorithm family.
pub fn parse_jwt_key(
    key: &JwtKey,
) -> Result<(Option<String>, KeyFamily, jsonwebtoken::DecodingKey), String> {
    use jsonwebtoken::DecodingKey;
    match (&key.pem, &key.jwk) {
        (Some(pem), None) => {
            if pem.contains("PRIVATE KEY") {
                return Err("holds a private key; inline only public keys".into());
            }
            let bytes = pem.as_bytes();
            if let Ok(k) = DecodingKey::from_rsa_pem(bytes) {
                return Ok((key.kid.clone(), KeyFamily::Rsa, k));
            }
            if let Ok(k) = DecodingKey::from_ec_pem(bytes) {
                return Ok((key.kid.clone(), KeyFamily::Ec(None), k));
            }
            if let Ok(k) = DecodingKey::from_ed_pem(bytes) {
                return Ok((key.kid.clone(), KeyFamily::Ed, k));
            }
            Err("is not a PEM RSA, EC or Ed25519 public key".into())
        }
        (None, Some(jwk)) => {
            if key.kid.is_some() {
                return Err("`kid` belongs inside the JWK".into());
            }
            parse_jwk(jwk)
        }
        _ => Err("needs exactly one of `pem` and `jwk`".into()),
    }
}

/// A JWK (public, `kty` RSA, EC or OKP) into its key and family.
pub fn parse_jwk(
    jwk: &serde_json::Value,
) -> Result<(Option<String>, KeyFamily, jsonwebtoken::DecodingKey), String> {
    use jsonwebtoken::DecodingKey;
    let obj = jwk.as_object().ok_or("a JWK must be an object")?;
    let s = |k: &str| obj.get(k).and_then(serde_json::Value::as_str);
    if ["d", "p", "q", "dp", "dq", "qi", "k"]
        .iter()
        .any(|k| obj.contains_key(*k))
    {
        return Err("holds private or symmetric key material; inline only public keys".into());
    }
    if s("use").is_some_and(|u| u != "sig") {
        return Err("is not a signing key (`use` is not `sig`)".into());
    }
    let kid = s("kid").map(str::to_owned);
    let (family, key) = match s("kty") {
        Some("RSA") => {
            let (Some(n), Some(e)) = (s("n"), s("e")) else {
                return Err("an RSA JWK needs `n` and `e`".into());
            };
            let k = DecodingKey::from_rsa_components(n, e).map_err(|e| e.to_string())?;
            (KeyFamily::Rsa, k)
        }
        Some("EC") => {
            let alg = match s("crv") {
                Some("P-256") => jsonwebtoken::Algorithm::ES256,
                Some("P-384") => jsonwebtoken::Algorithm::ES384,
                other => {
                    return Err(format!(
                        "EC curve `{}` is not supported",
                        other.unwrap_or("")
                    ));
                }
            };
            let (Some(x), Some(y)) = (s("x"), s("y")) else {
                return Err("an EC JWK needs `x` and `y`".into());
            };
            let k = DecodingKey::from_ec_components(x, y).map_err(|e| e.to_string())?;
            (KeyFamily::Ec(Some(alg)), k)
        }
        Some("OKP") => {
            if s("crv") != Some("Ed25519") {
                return Err("only the OKP curve `Ed25519` is supported".into());
            }
            let x = s("x").ok_or("an OKP JWK needs `x`")?;
            let k = DecodingKey::from_ed_components(x).map_err(|e| e.to_string())?;
            (KeyFamily::Ed, k)
        }
        other => {
            return Err(format!(
                "key type `{}` is not supported (RSA, EC or OKP)",
                other.unwrap_or("")
            ));
        }
    };
    // A JWK that names its algorithm is used for exactly that algorithm.
    if let Some(alg) = s("alg") {
        let alg: jsonwebtoken::Algorithm = alg
            .parse()
            .map_err(|_| format!("`alg` `{alg}` is not a JWS signature algorithm"))?;
        if !family.allows(alg) {
            return Err(format!("`alg` `{alg:?}` does not fit the key type"));
        }
        return Ok((kid, KeyFamily::Exact(alg), key));
    }
    Ok((kid, family, key))
}

/// Which algorithms a key may verify: chosen by the key, never by the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFamily {
    Rsa,
    /// The curve's algorithm when known.
    Ec(Option<jsonwebtoken::Algorithm>),
    Ed,
    Hmac,
    /// The key's JWK named one algorithm.
    Exact(jsonwebtoken::Algorithm),
}

impl KeyFamily {
    pub fn allows(self, alg: jsonwebtoken::Algorithm) -> bool {
        use jsonwebtoken::Algorithm as A;
        match self {
            Self::Rsa => matches!(
                alg,
                A::RS256 | A::RS384 | A::RS512 | A::PS256 | A::PS384 | A::PS512
            ),
            Self::Ec(Some(a)) => a == alg,
            Self::Ec(None) => matches!(alg, A::ES256 | A::ES384),
            Self::Ed => alg == A::EdDSA,
            Self::Hmac => matches!(alg, A::HS256 | A::HS384 | A::HS512),
            Self::Exact(a) => a == alg,
        }
    }
}

fn check_auth(c: &mut Checker<'_>, auth: &Auth) -> AuthCfg {
    let mut providers = Vec::with_capacity(auth.providers.len());
    for (name, p) in &auth.providers {
        let key = format!("auth.providers.{name}");
        if name.is_empty()
            || !name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '.'))
        {
            c.push(
                key.clone(),
                "provider names are letters, digits, `-`, `_` and `.`",
            );
        }
        let kind = match p {
            Provider::Jwt(j) => ProviderKind::Jwt(check_jwt(c, &key, j)),
            Provider::ApiKey(a) => ProviderKind::ApiKey(SecretFileCfg {
                file: c
                    .resolve(&format!("{key}.file"), &a.file)
                    .unwrap_or_default(),
                reload_interval: c.millis(&format!("{key}.reloadIntervalMs"), a.reload_interval_ms),
                realm: None,
                forward_credentials: a.forward_credentials,
            }),
            Provider::Basic(b) => ProviderKind::Basic(SecretFileCfg {
                file: c
                    .resolve(&format!("{key}.file"), &b.file)
                    .unwrap_or_default(),
                reload_interval: c.millis(&format!("{key}.reloadIntervalMs"), b.reload_interval_ms),
                realm: b.realm.clone(),
                forward_credentials: b.forward_credentials,
            }),
            Provider::Introspection(i) => {
                ProviderKind::Introspection(check_introspection(c, &key, i))
            }
        };
        providers.push(ProviderCfg {
            name: name.clone(),
            kind,
        });
    }
    AuthCfg { providers }
}

fn check_jwt(c: &mut Checker<'_>, key: &str, j: &JwtProvider) -> JwtCfg {
    use jsonwebtoken::Algorithm as A;
    if j.issuer.is_empty() {
        c.push(format!("{key}.issuer"), "must not be empty");
    }
    let mut algorithms = Vec::new();
    if j.algorithms.is_empty() {
        c.push(
            format!("{key}.algorithms"),
            "list the accepted algorithms, such as `[RS256]`",
        );
    }
    for (i, a) in j.algorithms.iter().enumerate() {
        match a.parse::<A>() {
            Ok(alg) => {
                if KeyFamily::Hmac.allows(alg) && j.hmac_secret_file.is_none() {
                    c.push(
                        format!("{key}.algorithms[{i}]"),
                        format!("`{a}` needs `hmacSecretFile` (a secret mounted at runtime, never baked)"),
                    );
                }
                algorithms.push(alg);
            }
            Err(_) => c.push(
                format!("{key}.algorithms[{i}]"),
                format!("`{a}` is not supported; use RS256/384/512, PS256/384/512, ES256/384, EdDSA or HS256/384/512"),
            ),
        }
    }
    for (i, k) in j.keys.iter().enumerate() {
        if let Err(msg) = parse_jwt_key(k) {
            c.push(format!("{key}.keys[{i}]"), msg);
        }
    }
    let jwks_url = j.jwks_url.as_ref().and_then(|u| {
        let ukey = format!("{key}.jwksUrl");
        let url = c.resolve(&ukey, u)?;
        check_http_url(c, &ukey, &url);
        Some(url)
    });
    let hmac_secret_file = j
        .hmac_secret_file
        .as_ref()
        .and_then(|f| c.resolve(&format!("{key}.hmacSecretFile"), f));
    let has_asymmetric = algorithms.iter().any(|a| !KeyFamily::Hmac.allows(*a));
    if has_asymmetric && j.keys.is_empty() && j.jwks_url.is_none() {
        c.push(
            format!("{key}.keys"),
            "needs verification keys (`keys`) or a `jwksUrl`",
        );
    }
    JwtCfg {
        issuer: j.issuer.clone(),
        audiences: j.audiences.clone(),
        algorithms,
        keys: j.keys.clone(),
        jwks_url,
        jwks_refresh: c.millis(&format!("{key}.jwksRefreshMs"), j.jwks_refresh_ms),
        jwks_min_refresh_interval: Duration::from_millis(j.jwks_min_refresh_interval_ms),
        jwks_timeout: c.millis(&format!("{key}.jwksTimeoutMs"), j.jwks_timeout_ms),
        hmac_secret_file,
        leeway: Duration::from_millis(j.leeway_ms.min(600_000)),
        max_token_bytes: bounded(
            c,
            &format!("{key}.maxTokenBytes"),
            j.max_token_bytes,
            64,
            1 << 20,
        ),
        claim_headers: check_claim_headers(c, &format!("{key}.claimHeaders"), &j.claim_headers),
        forward_credentials: j.forward_credentials,
        consumer_claim: j.consumer_claim.clone(),
        cache_capacity: bounded(
            c,
            &format!("{key}.cacheCapacity"),
            j.cache_capacity,
            0,
            1 << 22,
        ),
    }
}

fn check_http_url(c: &mut Checker<'_>, key: &str, url: &str) -> Option<Uri> {
    match url.parse::<Uri>() {
        Ok(u) if matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some() => Some(u),
        _ => {
            c.push(
                key,
                format!("`{url}` is not an `https://` or `http://` URL"),
            );
            None
        }
    }
}

fn check_introspection(
    c: &mut Checker<'_>,
    key: &str,
    i: &IntrospectionProvider,
) -> IntrospectionCfg {
    let ekey = format!("{key}.endpoint");
    let endpoint = c
        .resolve(&ekey, &i.endpoint)
        .and_then(|u| check_http_url(c, &ekey, &u))
        .unwrap_or_else(|| Uri::from_static("http://invalid/"));
    IntrospectionCfg {
        endpoint,
        client_id_file: c
            .resolve(&format!("{key}.clientIdFile"), &i.client_id_file)
            .unwrap_or_default(),
        client_secret_file: c
            .resolve(&format!("{key}.clientSecretFile"), &i.client_secret_file)
            .unwrap_or_default(),
        timeout: c.millis(&format!("{key}.timeoutMs"), i.timeout_ms),
        cache_ttl: Duration::from_millis(i.cache_ttl_ms),
        negative_cache_ttl: Duration::from_millis(i.negative_cache_ttl_ms),
        cache_capacity: bounded(
            c,
            &format!("{key}.cacheCapacity"),
            i.cache_capacity,
            0,
            1 << 22,
        ),
        max_token_bytes: bounded(
            c,
            &format!("{key}.maxTokenBytes"),
            i.max_token_bytes,
            64,
            1 << 20,
        ),
        claim_headers: check_claim_headers(c, &format!("{key}.claimHeaders"), &i.claim_headers),
        forward_credentials: i.forward_credentials,
    }
}

fn check_tls(c: &mut Checker<'_>, api: &Listener, apis: &[Api]) -> Option<TlsCfg> {
    let needs_certs = apis.iter().any(|a| a.mtls.is_some());
    let Some(t) = &api.tls else {
        if needs_certs {
            c.push(
                "listeners.api.tls",
                "an API asks for client certificates (`mtls`), so the API listener needs TLS with `clientCaFile`",
            );
        }
        return None;
    };
    let client_ca_file = t
        .client_ca_file
        .as_ref()
        .and_then(|f| c.resolve("listeners.api.tls.clientCaFile", f));
    let client_auth = t.client_auth.unwrap_or(if t.client_ca_file.is_some() {
        ClientAuth::Optional
    } else {
        ClientAuth::None
    });
    if client_auth != ClientAuth::None && t.client_ca_file.is_none() {
        c.push(
            "listeners.api.tls.clientAuth",
            "client certificates need `clientCaFile` to verify them",
        );
    }
    if needs_certs && client_auth == ClientAuth::None {
        c.push(
            "listeners.api.tls.clientAuth",
            "an API asks for client certificates (`mtls`), so `clientAuth` cannot be `none`",
        );
    }
    Some(TlsCfg {
        cert_file: c
            .resolve("listeners.api.tls.certFile", &t.cert_file)
            .unwrap_or_default(),
        key_file: c
            .resolve("listeners.api.tls.keyFile", &t.key_file)
            .unwrap_or_default(),
        client_ca_file,
        client_auth,
        reload_interval: TlsCfg::RELOAD_INTERVAL,
    })
}

fn check_api_security(
    c: &mut Checker<'_>,
    key: &str,
    api: &Api,
    auth: &AuthCfg,
) -> (Vec<SchemeCfg>, Option<CorsCfg>) {
    let mut schemes = Vec::with_capacity(api.security_schemes.len());
    for (name, s) in &api.security_schemes {
        let skey = format!("{key}.securitySchemes.{name}");
        let provider = match auth.providers.iter().position(|p| p.name == s.provider) {
            Some(i) => i,
            None => {
                c.push(
                    format!("{skey}.provider"),
                    format!("no provider named `{}` under `auth.providers`", s.provider),
                );
                0
            }
        };
        let param = match s.location {
            CredentialIn::Header => match http::HeaderName::from_bytes(s.name.as_bytes()) {
                Ok(h) => h.as_str().to_owned(),
                Err(_) => {
                    c.push(
                        format!("{skey}.name"),
                        format!("`{}` is not a valid header name", s.name),
                    );
                    String::new()
                }
            },
            CredentialIn::Query => {
                if s.name.is_empty() {
                    c.push(format!("{skey}.name"), "must not be empty");
                }
                s.name.clone()
            }
            CredentialIn::Cookie => {
                // RFC 6265: a cookie name is an HTTP token.
                let token = !s.name.is_empty()
                    && s.name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
                if !token {
                    c.push(
                        format!("{skey}.name"),
                        format!("`{}` is not a valid cookie name", s.name),
                    );
                }
                s.name.clone()
            }
        };
        if let (Some(p), CredentialIn::Query | CredentialIn::Cookie) = (&s.prefix, s.location) {
            c.push(
                format!("{skey}.prefix"),
                format!("`{p}`: a prefix only applies to headers"),
            );
        }
        schemes.push(SchemeCfg {
            name: name.clone(),
            provider,
            location: s.location,
            param,
            prefix: s.prefix.clone(),
        });
    }
    let cors = api
        .cors
        .as_ref()
        .map(|cors| check_cors(c, &format!("{key}.cors"), cors));
    (schemes, cors)
}

fn check_requirements(
    c: &mut Checker<'_>,
    okey: &str,
    reqs: &[BTreeMap<String, Vec<String>>],
    schemes: &BTreeMap<String, SecurityScheme>,
) -> Vec<Vec<SchemeReq>> {
    let mut out = Vec::with_capacity(reqs.len());
    for (i, req) in reqs.iter().enumerate() {
        if req.is_empty() {
            c.push(
                format!("{okey}.security[{i}]"),
                "an empty requirement would let anyone in; leave `security` out for an open operation",
            );
        }
        let mut all = Vec::with_capacity(req.len());
        for (name, scopes) in req {
            match schemes.keys().position(|k| k == name) {
                Some(scheme) => all.push(SchemeReq {
                    scheme,
                    scopes: scopes.clone(),
                }),
                None => c.push(
                    format!("{okey}.security[{i}].{name}"),
                    format!("no security scheme named `{name}` in the API's `securitySchemes`"),
                ),
            }
        }
        out.push(all);
    }
    out
}

fn check_cors(c: &mut Checker<'_>, key: &str, cors: &Cors) -> CorsCfg {
    let any = cors.allow_origins.iter().any(|o| o == "*");
    if cors.allow_origins.is_empty() {
        c.push(
            format!("{key}.allowOrigins"),
            "list the allowed origins, such as `[https://app.example.com]`",
        );
    }
    if any && cors.allow_credentials {
        c.push(
            format!("{key}.allowOrigins"),
            "`*` cannot be combined with `allowCredentials`; list the origins",
        );
    }
    for (i, o) in cors.allow_origins.iter().enumerate() {
        if o != "*"
            && (!(o.starts_with("http://") || o.starts_with("https://")) || o.ends_with('/'))
        {
            c.push(
                format!("{key}.allowOrigins[{i}]"),
                format!("`{o}` is not an origin such as `https://app.example.com` (scheme and host, no path)"),
            );
        }
    }
    let mut allow_methods = Vec::new();
    for (i, m) in cors.allow_methods.iter().enumerate() {
        match Method::from_bytes(m.to_ascii_uppercase().as_bytes()) {
            Ok(m) => allow_methods.push(m),
            Err(_) => c.push(
                format!("{key}.allowMethods[{i}]"),
                format!("`{m}` is not an HTTP method"),
            ),
        }
    }
    let headers = |c: &mut Checker<'_>, what: &str, list: &[String]| -> Vec<String> {
        list.iter()
            .enumerate()
            .filter_map(|(i, h)| match http::HeaderName::from_bytes(h.as_bytes()) {
                Ok(h) => Some(h.as_str().to_owned()),
                Err(_) => {
                    c.push(
                        format!("{key}.{what}[{i}]"),
                        format!("`{h}` is not a valid header name"),
                    );
                    None
                }
            })
            .collect()
    };
    let allow_headers = headers(c, "allowHeaders", &cors.allow_headers);
    let expose_headers = headers(c, "exposeHeaders", &cors.expose_headers);
    CorsCfg {
        allow_origins: (!any).then(|| cors.allow_origins.clone()),
        allow_methods,
        allow_headers,
        expose_headers,
        allow_credentials: cors.allow_credentials,
        max_age_s: cors.max_age_s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> Bundle {
        serde_json::from_value(serde_json::json!({
            "schemaVersion": 1,
            "gateway": {"name": "petstore", "version": "1.0.0"},
            "upstreams": {"pets": {"urls": ["${PETS_URL:-http://127.0.0.1:3000/v1/}"]}},
            "apis": [{
                "name": "petstore", "basePath": "/petstore/v1/", "upstream": "pets",
                "operations": [
                    {"id": "listPets", "method": "get", "path": "/pets"},
                    {"id": "getPet", "method": "GET", "path": "/pets/{petId}"}
                ]
            }]
        }))
        .unwrap()
    }

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    #[test]
    fn valid_bundle_resolves() {
        let cfg = Config::from_bundle(&sample(), "sha256:x".into(), Some(&env(&[]))).unwrap();
        assert_eq!(cfg.api_addr, "0.0.0.0:8080".parse().unwrap());
        assert_eq!(cfg.apis[0].base_path, "/petstore/v1");
        assert_eq!(cfg.routes[1].template, "/petstore/v1/pets/{petId}");
        assert_eq!(cfg.routes[1].base_segments, 2);
        assert_eq!(cfg.routes[0].method, Method::GET);
        let t = &cfg.upstreams[0].targets[0];
        assert_eq!(t.origin, "http://127.0.0.1:3000/");
        assert_eq!(t.path_prefix, "/v1");
    }

    #[test]
    fn env_overrides_default() {
        let e = env(&[
            ("PETS_URL", "http://10.0.0.1:81"),
            ("MGW_LISTEN", "127.0.0.1:1"),
        ]);
        let cfg = Config::from_bundle(&sample(), String::new(), Some(&e)).unwrap();
        assert_eq!(cfg.upstreams[0].targets[0].origin, "http://10.0.0.1:81/");
        assert_eq!(cfg.api_addr, "127.0.0.1:1".parse().unwrap());
    }

    #[test]
    fn https_upstreams_and_their_tls_settings_are_checked() {
        let with = |urls: &[&str], tls: serde_json::Value| {
            let mut b = sample();
            let u = b.upstreams.get_mut("pets").unwrap();
            u.urls = urls.iter().map(|s| (*s).to_owned()).collect();
            u.tls = serde_json::from_value(tls).unwrap();
            Config::from_bundle(&b, String::new(), Some(&env(&[("CA", "/run/ca.crt")])))
        };
        let cfg = with(
            &["https://api.example.com/v2/"],
            serde_json::json!({"caFile": "${CA}", "serverName": "api.internal"}),
        )
        .unwrap();
        let u = &cfg.upstreams[0];
        assert_eq!(u.targets[0].origin, "https://api.example.com/");
        assert_eq!(u.targets[0].path_prefix, "/v2");
        let tls = u.tls.as_ref().unwrap();
        assert_eq!(tls.ca_file.as_deref(), Some("/run/ca.crt"));
        assert_eq!(
            tls.server_name.as_ref().map(|n| n.to_str().into_owned()),
            Some("api.internal".to_owned())
        );
        // https without a `tls` block: defaults (the image's CA bundle).
        let cfg = with(&["https://h"], serde_json::Value::Null).unwrap();
        assert_eq!(cfg.upstreams[0].tls, Some(UpstreamTlsCfg::default()));
        // Plain http carries no TLS settings at all.
        let cfg = with(&["http://h"], serde_json::Value::Null).unwrap();
        assert_eq!(cfg.upstreams[0].tls, None);

        let err = |urls: &[&str], tls| with(urls, tls).unwrap_err().to_string();
        let e = err(&["http://h"], serde_json::json!({"caFile": "/ca.crt"}));
        assert!(
            e.contains("`upstreams.pets.tls`: TLS settings apply to `https://` URLs"),
            "{e}"
        );
        let e = err(&["https://h"], serde_json::json!({"certFile": "/c.crt"}));
        assert!(
            e.contains("`upstreams.pets.tls.keyFile`: a client certificate"),
            "{e}"
        );
        let e = err(
            &["https://h"],
            serde_json::json!({"insecureSkipVerify": true, "caFile": "/ca.crt"}),
        );
        assert!(e.contains("`upstreams.pets.tls.caFile`"), "{e}");
        let e = err(&["https://h"], serde_json::json!({"serverName": "a b"}));
        assert!(
            e.contains("`upstreams.pets.tls.serverName`: `a b` is not"),
            "{e}"
        );
        let e = err(&["ftp://h"], serde_json::Value::Null);
        assert!(e.contains("scheme `ftp` is not supported"), "{e}");
        // Unknown keys are refused on the wire.
        let unknown: Result<UpstreamTls, _> =
            serde_json::from_value(serde_json::json!({"verify": false}));
        assert!(unknown.is_err());
    }

    #[test]
    fn missing_variable_names_it_and_the_key() {
        let mut b = sample();
        b.upstreams.get_mut("pets").unwrap().urls = vec!["${PETS_UPSTREAM}".into()];
        let err = Config::from_bundle(&b, String::new(), Some(&env(&[]))).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("upstreams.pets.urls[0]"), "{msg}");
        assert!(msg.contains("PETS_UPSTREAM"), "{msg}");
        // Without an environment (the builder), a template is fine.
        Config::from_bundle(&b, String::new(), None).unwrap();
    }

    #[test]
    fn unknown_field_names_its_path() {
        let mut v = serde_json::to_value(sample()).unwrap();
        v["apis"][0]["operations"][1]["mehtod"] = "GET".into();
        let err = Bundle::from_json(v.to_string().as_bytes()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("apis[0].operations[1]"), "{msg}");
        assert!(msg.contains("mehtod"), "{msg}");
    }

    #[test]
    fn semantic_problems_are_all_reported() {
        let mut b = sample();
        b.apis[0].upstream = "nope".into();
        b.apis[0].operations[1].method = "G ET".into();
        let dup = b.apis[0].operations[0].clone();
        b.apis[0].operations.push(dup);
        let msg = Config::from_bundle(&b, String::new(), None)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("`apis[0].upstream`: no upstream named `nope` (known: `pets`)"),
            "{msg}"
        );
        assert!(msg.contains("apis[0].operations[1].method"), "{msg}");
        assert!(
            msg.contains("already served by `apis[0].operations[0]`"),
            "{msg}"
        );
    }

    #[test]
    fn canonical_json_is_sorted_and_stable() {
        let b = sample();
        let bytes = b.to_canonical_json();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.find("\"analytics\"").unwrap() < text.find("\"apis\"").unwrap());
        assert_eq!(Bundle::from_json(&bytes).unwrap(), b);
        assert_eq!(
            bytes,
            Bundle::from_json(&bytes).unwrap().to_canonical_json()
        );
    }

    #[test]
    fn digest_mismatch_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bundle.json");
        std::fs::write(&path, sample().to_canonical_json()).unwrap();
        let err = load(&path, Some("sha256:00"), &env(&[])).unwrap_err();
        assert!(matches!(err, BundleError::DigestMismatch { .. }));
        let good = digest_of(&std::fs::read(&path).unwrap());
        load(&path, Some(&good), &env(&[])).unwrap();
    }

    #[test]
    fn security_problems_name_their_keys() {
        let mut v = serde_json::to_value(sample()).unwrap();
        v["auth"] = serde_json::json!({"providers": {
            "idp": {"type": "jwt", "issuer": "x", "algorithms": ["HS256", "none"],
                    "keys": [{"pem": "-----BEGIN PRIVATE KEY-----"}]},
            "keys": {"type": "apiKey"}
        }});
        v["apis"][0]["securitySchemes"] = serde_json::json!({
            "s": {"provider": "nobody", "in": "header", "name": "bad header"}
        });
        v["apis"][0]["operations"][0]["security"] = serde_json::json!([{"s": []}, {"t": []}, {}]);
        v["apis"][0]["cors"] = serde_json::json!({"allowOrigins": ["*"], "allowCredentials": true});
        v["apis"][0]["mtls"] = "required".into();
        let b = Bundle::from_json(v.to_string().as_bytes()).unwrap();
        let msg = Config::from_bundle(&b, String::new(), None)
            .unwrap_err()
            .to_string();
        for needle in [
            "`auth.providers.idp.algorithms[0]`: `HS256` needs `hmacSecretFile`",
            "`auth.providers.idp.algorithms[1]`: `none` is not supported",
            "`auth.providers.idp.keys[0]`: holds a private key",
            "`apis[0].securitySchemes.s.provider`: no provider named `nobody`",
            "`apis[0].securitySchemes.s.name`: `bad header` is not a valid header name",
            "`apis[0].operations[0].security[1].t`: no security scheme named `t`",
            "`apis[0].operations[0].security[2]`: an empty requirement would let anyone in",
            "`apis[0].cors.allowOrigins`: `*` cannot be combined with `allowCredentials`",
            "`listeners.api.tls`: an API asks for client certificates",
        ] {
            assert!(msg.contains(needle), "missing {needle:?} in:\n{msg}");
        }
        // A bundle without security serializes exactly as before (same digest).
        let plain = sample().to_canonical_json();
        let text = String::from_utf8(plain).unwrap();
        assert!(
            !text.contains("security") && !text.contains("\"auth\""),
            "{text}"
        );
    }

    #[test]
    fn upstream_url_checks() {
        assert!(
            parse_target("ws://x")
                .unwrap_err()
                .contains("not supported")
        );
        assert_eq!(parse_target("https://x").unwrap().origin, "https://x/");
        assert!(parse_target("x:80").is_err());
        assert!(
            parse_target("http://u:p@x")
                .unwrap_err()
                .contains("credentials")
        );
        assert_eq!(parse_target("http://x:1/a/b/").unwrap().path_prefix, "/a/b");
    }
}
