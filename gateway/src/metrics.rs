//! Prometheus metrics, served as text by the admin listener.
//!
//! Label sets are bounded by the bundle: every per-route and per-upstream handle is
//! created once at start and kept next to the route, so the request path only
//! increments atomics and never hashes labels or takes the family lock. Nothing
//! here may carry a label value that comes from a client (paths, header values):
//! unknown methods are folded into `OTHER`.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64};
use std::time::Duration;

use http::Method;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::bundle::Config;
use crate::histogram::LatencyHistogram;
pub use crate::route_series::RouteMetrics;
use crate::route_series::RouteSeries;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ContractLabels {
    api: String,
    operation: String,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamLabels {
    upstream: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamErrorLabels {
    upstream: String,
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WorkerLabels {
    worker: usize,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InfoLabels {
    gateway: String,
    version: String,
    bundle_digest: String,
    gateway_build: &'static str,
}

/// Handles for one upstream, created at start.
#[derive(Clone)]
pub struct UpstreamMetrics {
    name: String,
    duration: LatencyHistogram,
    errors: Family<UpstreamErrorLabels, Counter>,
    pub resilience: ResilienceMetrics,
}

impl UpstreamMetrics {
    pub fn observe(&self, elapsed: Duration) {
        self.duration.observe(elapsed.as_secs_f64());
    }

    /// Rare path: a family lookup is fine here.
    pub fn error(&self, kind: &'static str) {
        self.errors
            .get_or_create(&UpstreamErrorLabels {
                upstream: self.name.clone(),
                kind,
            })
            .inc();
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AuthLabels {
    api: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReloadLabels {
    provider: String,
    result: &'static str,
}

/// How the authenticate stage ended for one request: a label of
/// `mgw_auth_outcomes_total` and the `auth` field of analytics events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthOutcome {
    Success,
    Anonymous,
    Missing,
    Invalid,
    Forbidden,
    Unavailable,
}

impl AuthOutcome {
    pub const ALL: [AuthOutcome; 6] = [
        AuthOutcome::Success,
        AuthOutcome::Anonymous,
        AuthOutcome::Missing,
        AuthOutcome::Invalid,
        AuthOutcome::Forbidden,
        AuthOutcome::Unavailable,
    ];

    pub fn label(self) -> &'static str {
        match self {
            AuthOutcome::Success => "success",
            AuthOutcome::Anonymous => "anonymous",
            AuthOutcome::Missing => "missing",
            AuthOutcome::Invalid => "invalid",
            AuthOutcome::Forbidden => "forbidden",
            AuthOutcome::Unavailable => "unavailable",
        }
    }
}

/// Authentication outcome counters for one API, created at start, indexed like
/// [`AuthOutcome::ALL`].
#[derive(Clone)]
pub struct AuthMetrics {
    by_outcome: [Counter; 6],
}

impl AuthMetrics {
    pub fn observe(&self, outcome: AuthOutcome) {
        self.by_outcome[outcome as usize].inc();
    }
}

/// All gateway metrics.
pub struct Metrics {
    registry: Registry,
    /// `requests` and `request_duration_seconds`: one series per route.
    routes: Arc<RouteSeries>,
    unrouted: Family<KindLabels, Counter>,
    pub in_flight: Gauge<i64, AtomicI64>,
    pub analytics_dropped: Counter<u64, AtomicU64>,
    pub analytics_written: Counter<u64, AtomicU64>,
    connection_errors: Family<KindLabels, Counter>,
    pub connections_open: Gauge<i64, AtomicI64>,
    connections_accepted: Family<WorkerLabels, Counter>,
    upstream_duration: Family<UpstreamLabels, LatencyHistogram>,
    upstream_errors: Family<UpstreamErrorLabels, Counter>,
    pub traffic: TrafficMetrics,
    auth_outcomes: Family<AuthLabels, Counter>,
    auth_reloads: Family<ReloadLabels, Counter>,
    tls_reloads: Family<ResultLabels, Counter>,
    validation_failures: Family<ContractLabels, Counter>,
    response_mismatches: Family<ContractLabels, Counter>,
    /// Which response-contract mismatches are also logged (each is counted).
    pub mismatch_logs: crate::log_gate::LogGate,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

impl Metrics {
    pub fn new(config: &Config) -> Self {
        let mut registry = Registry::with_prefix("mgw");
        let routes = Arc::new(RouteSeries::new(config));
        let unrouted = Family::<KindLabels, Counter>::default();
        let in_flight = Gauge::<i64, AtomicI64>::default();
        let analytics_dropped = Counter::<u64, AtomicU64>::default();
        let analytics_written = Counter::<u64, AtomicU64>::default();
        let connection_errors = Family::<KindLabels, Counter>::default();
        let connections_open = Gauge::<i64, AtomicI64>::default();
        let connections_accepted = Family::<WorkerLabels, Counter>::default();
        let upstream_duration = Family::<UpstreamLabels, LatencyHistogram>::default();
        let upstream_errors = Family::<UpstreamErrorLabels, Counter>::default();
        let info = Family::<InfoLabels, Gauge>::default();
        info.get_or_create(&InfoLabels {
            gateway: config.gateway.name.clone(),
            version: config.gateway.version.clone(),
            bundle_digest: config.digest.clone(),
            gateway_build: env!("CARGO_PKG_VERSION"),
        })
        .set(1);

        registry.register_collector(Box::new(routes.clone()));
        registry.register(
            "unrouted_requests",
            "Requests that matched no operation, by reason",
            unrouted.clone(),
        );
        registry.register(
            "upstream_duration_seconds",
            "Time from sending a request upstream to its response head",
            upstream_duration.clone(),
        );
        registry.register(
            "upstream_errors",
            "Upstream failures by upstream and kind",
            upstream_errors.clone(),
        );
        registry.register(
            "requests_in_flight",
            "Requests being processed",
            in_flight.clone(),
        );
        registry.register(
            "connections_open",
            "Open client connections on the API listener",
            connections_open.clone(),
        );
        registry.register(
            "connections_accepted",
            "Client connections accepted on the API listener, by worker",
            connections_accepted.clone(),
        );
        registry.register(
            "connection_errors",
            "Client connections closed by an error, by kind",
            connection_errors.clone(),
        );
        registry.register(
            "analytics_events_dropped",
            "Analytics events dropped because the queue was full or the sink failed",
            analytics_dropped.clone(),
        );
        registry.register(
            "analytics_events_written",
            "Analytics events written to the sink",
            analytics_written.clone(),
        );
        registry.register("build_info", "The gateway and bundle being served", info);
        let insecure = Family::<UpstreamLabels, Gauge>::default();
        for u in &config.upstreams {
            if u.tls.as_ref().is_some_and(|t| t.insecure_skip_verify) {
                insecure
                    .get_or_create(&UpstreamLabels {
                        upstream: u.name.clone(),
                    })
                    .set(1);
            }
        }
        registry.register(
            "upstream_tls_insecure",
            "1 for each upstream whose TLS certificates are not verified (`insecureSkipVerify`)",
            insecure,
        );
        let traffic = TrafficMetrics::register(&mut registry);
        let auth_outcomes = Family::<AuthLabels, Counter>::default();
        let auth_reloads = Family::<ReloadLabels, Counter>::default();
        registry.register(
            "auth_outcomes",
            "Authentication and authorization outcomes of routed requests, by API",
            auth_outcomes.clone(),
        );
        registry.register(
            "auth_secret_reloads",
            "Reloads of mounted secret files (API keys, users), by provider and result",
            auth_reloads.clone(),
        );
        let tls_reloads = Family::<ResultLabels, Counter>::default();
        registry.register(
            "tls_reloads",
            "Reloads of the API listener's certificate, key and client CA files, by result",
            tls_reloads.clone(),
        );

        let validation_failures = Family::<ContractLabels, Counter>::default();
        registry.register(
            "request_validation_failures",
            "Requests refused by request validation, by operation and reason (parameter, body, body_required, unsupported_media_type)",
            validation_failures.clone(),
        );

        let response_mismatches = Family::<ContractLabels, Counter>::default();
        registry.register(
            "response_contract_mismatches",
            "Upstream responses that do not match the document (report mode), by operation and reason (undeclared_status, undeclared_content_type, body)",
            response_mismatches.clone(),
        );

        Self {
            response_mismatches,
            mismatch_logs: crate::log_gate::LogGate::new(crate::log_gate::MISMATCH_LOG_INTERVAL),
            validation_failures,
            registry,
            routes,
            unrouted,
            in_flight,
            analytics_dropped,
            analytics_written,
            connection_errors,
            connections_open,
            connections_accepted,
            upstream_duration,
            upstream_errors,
            traffic,
            auth_outcomes,
            auth_reloads,
            tls_reloads,
        }
    }

    /// A changed TLS file set was applied (`success`) or refused (`error`).
    pub fn tls_reload(&self, result: &'static str) {
        self.tls_reloads
            .get_or_create(&ResultLabels { result })
            .inc();
    }

    /// Creates the authentication outcome handles for one API.
    pub fn auth(&self, api: &str) -> AuthMetrics {
        AuthMetrics {
            by_outcome: AuthOutcome::ALL.map(|outcome| {
                self.auth_outcomes.get_or_create_owned(&AuthLabels {
                    api: api.to_owned(),
                    outcome: outcome.label(),
                })
            }),
        }
    }

    /// Rare path: a secret file was reloaded (or failed to).
    pub fn auth_reload(&self, provider: &str, result: &'static str) {
        self.auth_reloads
            .get_or_create(&ReloadLabels {
                provider: provider.to_owned(),
                result,
            })
            .inc();
    }

    /// The handles of every route, in `config.routes` order (the config
    /// [`Metrics::new`] was given).
    pub fn routes(&self) -> impl ExactSizeIterator<Item = RouteMetrics> + '_ {
        self.routes.handles()
    }

    /// Creates the handles for one upstream.
    pub fn upstream(&self, name: &str) -> UpstreamMetrics {
        UpstreamMetrics {
            name: name.to_owned(),
            duration: self.upstream_duration.get_or_create_owned(&UpstreamLabels {
                upstream: name.to_owned(),
            }),
            errors: self.upstream_errors.clone(),
            resilience: self.traffic.upstream(name),
        }
    }

    /// Counts a request that never reached an operation.
    /// A request refused by request validation.
    pub fn validation_failed(&self, api: &str, operation: &str, reason: &'static str) {
        self.validation_failures
            .get_or_create_owned(&ContractLabels {
                api: api.to_owned(),
                operation: operation.to_owned(),
                reason,
            })
            .inc();
    }

    /// An upstream response that does not match the document.
    pub fn response_mismatch(&self, api: &str, operation: &str, reason: &'static str) {
        self.response_mismatches
            .get_or_create_owned(&ContractLabels {
                api: api.to_owned(),
                operation: operation.to_owned(),
                reason,
            })
            .inc();
    }

    pub fn unrouted(&self, kind: &'static str) {
        self.unrouted.get_or_create(&KindLabels { kind }).inc();
    }

    /// The counter of connections worker `worker` accepts.
    pub fn connections_accepted(&self, worker: usize) -> Counter {
        self.connections_accepted
            .get_or_create(&WorkerLabels { worker })
            .clone()
    }

    pub fn connection_error(&self, kind: &'static str) {
        self.connection_errors
            .get_or_create(&KindLabels { kind })
            .inc();
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

/// Folds methods a client made up into one label value.
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "OTHER",
    }
}

// ---------------------------------------------------------------------------
// Traffic policies: rate limits and upstream resilience
// ---------------------------------------------------------------------------

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RateLimitLabels {
    policy: String,
    /// `unauthenticated`, `api:<api>` or `operation:<api>.<operationId>`.
    scope: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamReasonLabels {
    upstream: String,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamStateLabels {
    upstream: String,
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TargetLabels {
    upstream: String,
    /// `host:port` of the upstream URL, as resolved at start.
    target: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TargetResultLabels {
    upstream: String,
    target: String,
    result: &'static str,
}

/// The counters the rate-limit key store keeps about itself (shared with
/// `/metrics`).
#[derive(Clone, Default)]
pub struct StoreCounters {
    /// Slots holding a key (live, or expired and not yet reused or swept).
    pub keys: Gauge<i64, AtomicI64>,
    /// Bytes of slot memory allocated.
    pub bytes: Gauge<i64, AtomicI64>,
    /// Live keys dropped because the store was full.
    pub evictions: Counter<u64, AtomicU64>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabels {
    action: &'static str,
}

/// Global rate limiting on Redis (`mgw_ratelimit_redis_*`).
#[derive(Clone)]
pub struct RedisMetrics {
    /// Seconds per decision that Redis answered.
    pub latency: LatencyHistogram,
    errors: Family<KindLabels, Counter>,
    fallbacks: Family<ActionLabels, Counter>,
    /// 1 while decisions go to Redis, 0 while the fallback decides.
    pub up: Gauge,
}

impl RedisMetrics {
    /// `timeout` or `error` (rare path: a family lookup is fine).
    pub fn error(&self, kind: &'static str) {
        self.errors.get_or_create(&KindLabels { kind }).inc();
    }

    /// `local`, `allow` or `deny`.
    pub fn fallback(&self, action: &'static str) {
        self.fallbacks.get_or_create(&ActionLabels { action }).inc();
    }
}

/// Families for rate limiting and upstream resilience; handles are made at start.
pub struct TrafficMetrics {
    pub redis: RedisMetrics,
    /// OTLP span export.
    pub trace: crate::trace::TraceCounters,
    ratelimit_requests: Family<RateLimitLabels, Counter>,
    /// The rate-limit key store's own counters.
    pub ratelimit_store: StoreCounters,
    pub ratelimit_capacity: Gauge<i64, AtomicI64>,
    rejected: Family<UpstreamReasonLabels, Counter>,
    circuit_state: Family<UpstreamLabels, Gauge>,
    circuit_transitions: Family<UpstreamStateLabels, Counter>,
    in_flight: Family<UpstreamLabels, Gauge>,
    retries: Family<UpstreamReasonLabels, Counter>,
    target_healthy: Family<TargetLabels, Gauge>,
    ejections: Family<TargetLabels, Counter>,
    health_checks: Family<TargetResultLabels, Counter>,
}

impl TrafficMetrics {
    fn register(registry: &mut Registry) -> TrafficMetrics {
        let m = TrafficMetrics {
            trace: crate::trace::TraceCounters::default(),
            redis: RedisMetrics {
                latency: LatencyHistogram::default(),
                errors: Family::default(),
                fallbacks: Family::default(),
                up: Gauge::default(),
            },
            ratelimit_requests: Family::default(),
            ratelimit_store: StoreCounters::default(),
            ratelimit_capacity: Gauge::default(),
            rejected: Family::default(),
            circuit_state: Family::default(),
            circuit_transitions: Family::default(),
            in_flight: Family::default(),
            retries: Family::default(),
            target_healthy: Family::default(),
            ejections: Family::default(),
            health_checks: Family::default(),
        };
        registry.register(
            "ratelimit_requests",
            "Rate-limit decisions by policy, scope and outcome (allowed, limited)",
            m.ratelimit_requests.clone(),
        );
        registry.register(
            "ratelimit_keys",
            "Keys held by the rate limiter (live, or idle until reused or swept)",
            m.ratelimit_store.keys.clone(),
        );
        registry.register(
            "ratelimit_key_capacity",
            "Most keys the rate limiter holds",
            m.ratelimit_capacity.clone(),
        );
        registry.register(
            "ratelimit_memory_bytes",
            "Bytes of rate-limit state allocated",
            m.ratelimit_store.bytes.clone(),
        );
        registry.register(
            "ratelimit_evictions",
            "Live rate-limit keys dropped because the limiter was at capacity",
            m.ratelimit_store.evictions.clone(),
        );
        registry.register(
            "trace_spans_exported",
            "Spans the OTLP collector accepted",
            m.trace.exported.clone(),
        );
        registry.register(
            "trace_spans_dropped",
            "Spans dropped: the export queue was full, or the collector failed or refused them",
            m.trace.dropped.clone(),
        );
        registry.register(
            "ratelimit_redis_latency_seconds",
            "Time for Redis to answer one global rate-limit decision",
            m.redis.latency.clone(),
        );
        registry.register(
            "ratelimit_redis_errors",
            "Global rate-limit decisions Redis did not answer, by kind (timeout, error, down)",
            m.redis.errors.clone(),
        );
        registry.register(
            "ratelimit_redis_fallbacks",
            "Global rate-limit decisions made without Redis, by onRedisFailure action (local, allow, deny)",
            m.redis.fallbacks.clone(),
        );
        registry.register(
            "ratelimit_redis_up",
            "Whether global rate limits are decided on Redis (1) or by the fallback (0)",
            m.redis.up.clone(),
        );
        registry.register(
            "upstream_rejected_requests",
            "Requests answered 503 without being sent upstream, by reason (circuit_open, overloaded)",
            m.rejected.clone(),
        );
        registry.register(
            "upstream_circuit_state",
            "Circuit breaker state: 0 closed, 1 open, 2 half-open",
            m.circuit_state.clone(),
        );
        registry.register(
            "upstream_circuit_transitions",
            "Circuit breaker state changes, by the state entered",
            m.circuit_transitions.clone(),
        );
        registry.register(
            "upstream_requests_in_flight",
            "Requests in flight to each upstream (bounded by maxConcurrentRequests)",
            m.in_flight.clone(),
        );
        registry.register(
            "upstream_retries",
            "Upstream retries, by outcome (sent, budget_exhausted)",
            m.retries.clone(),
        );
        registry.register(
            "upstream_target_healthy",
            "Whether an upstream URL receives traffic (1) or is ejected or failing health checks (0)",
            m.target_healthy.clone(),
        );
        registry.register(
            "upstream_target_ejections",
            "Times an upstream URL was ejected after consecutive failures",
            m.ejections.clone(),
        );
        registry.register(
            "upstream_health_checks",
            "Active health checks by upstream URL and result (ok, failed)",
            m.health_checks.clone(),
        );
        m
    }

    /// The allowed and limited counters of one rate-limit scope.
    pub fn ratelimit_scope(&self, policy: &str, scope: &str) -> (Counter, Counter) {
        let c = |outcome| {
            self.ratelimit_requests
                .get_or_create_owned(&RateLimitLabels {
                    policy: policy.to_owned(),
                    scope: scope.to_owned(),
                    outcome,
                })
        };
        (c("allowed"), c("limited"))
    }

    fn upstream(&self, name: &str) -> ResilienceMetrics {
        let up = || UpstreamLabels {
            upstream: name.to_owned(),
        };
        let reason = |reason| {
            self.rejected.get_or_create_owned(&UpstreamReasonLabels {
                upstream: name.to_owned(),
                reason,
            })
        };
        let retries = |reason| {
            self.retries.get_or_create_owned(&UpstreamReasonLabels {
                upstream: name.to_owned(),
                reason,
            })
        };
        let transition = |state| {
            self.circuit_transitions
                .get_or_create_owned(&UpstreamStateLabels {
                    upstream: name.to_owned(),
                    state,
                })
        };
        ResilienceMetrics {
            upstream: name.to_owned(),
            rejected_circuit_open: reason("circuit_open"),
            rejected_overloaded: reason("overloaded"),
            circuit_state: self.circuit_state.get_or_create_owned(&up()),
            to_closed: transition("closed"),
            to_open: transition("open"),
            to_half_open: transition("half_open"),
            in_flight: self.in_flight.get_or_create_owned(&up()),
            retries_sent: retries("sent"),
            retries_denied: retries("budget_exhausted"),
            target_healthy: self.target_healthy.clone(),
            ejections: self.ejections.clone(),
            health_checks: self.health_checks.clone(),
        }
    }
}

/// Handles for one upstream's resilience state.
#[derive(Clone)]
pub struct ResilienceMetrics {
    upstream: String,
    pub rejected_circuit_open: Counter,
    pub rejected_overloaded: Counter,
    pub circuit_state: Gauge,
    pub to_closed: Counter,
    pub to_open: Counter,
    pub to_half_open: Counter,
    pub in_flight: Gauge,
    pub retries_sent: Counter,
    pub retries_denied: Counter,
    target_healthy: Family<TargetLabels, Gauge>,
    ejections: Family<TargetLabels, Counter>,
    health_checks: Family<TargetResultLabels, Counter>,
}

/// Handles for one upstream URL.
#[derive(Clone)]
pub struct TargetMetrics {
    pub healthy: Gauge,
    pub ejections: Counter,
    pub checks_ok: Counter,
    pub checks_failed: Counter,
}

impl ResilienceMetrics {
    pub fn upstream(&self) -> &str {
        &self.upstream
    }

    pub fn target(&self, target: &str) -> TargetMetrics {
        let labels = TargetLabels {
            upstream: self.upstream.clone(),
            target: target.to_owned(),
        };
        let check = |result| {
            self.health_checks.get_or_create_owned(&TargetResultLabels {
                upstream: self.upstream.clone(),
                target: target.to_owned(),
                result,
            })
        };
        TargetMetrics {
            healthy: self.target_healthy.get_or_create_owned(&labels),
            ejections: self.ejections.get_or_create_owned(&labels),
            checks_ok: check("ok"),
            checks_failed: check("failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_outcomes_index_their_own_counter() {
        // `AuthMetrics::observe` indexes by discriminant into counters made in
        // `ALL` order: the two orders must agree, and labels must be distinct.
        for (i, outcome) in AuthOutcome::ALL.iter().enumerate() {
            assert_eq!(*outcome as usize, i, "{outcome:?}");
        }
        let mut labels = AuthOutcome::ALL.map(AuthOutcome::label);
        labels.sort_unstable();
        assert!(labels.windows(2).all(|w| w[0] != w[1]), "{labels:?}");
    }
}
