//! Rate limiting: the bundle's policies applied per request, in memory.
//!
//! A *policy* (`gold`: 100 requests per second, burst 20, keyed by consumer) is
//! attached at three levels, each with its own budgets (a *scope*): the gateway's
//! policy for unauthenticated callers (keyed by client IP), an API's policy (one
//! budget per key for all its operations) and an operation's policy (one budget
//! per key for that operation). Every scope that applies to a request must allow
//! it; when one refuses, the budget the others already took is given back, so a
//! refused request costs the caller nothing.
//!
//! The algorithm is GCRA over a bounded key store ([`store`]): one `u64` of state
//! per key, O(1) per check, exact (no windows, no background refill), and memory
//! capped at `maxKeys × 16` bytes whatever the traffic. `governor` was considered:
//! its keyed limiter keeps each key (a `String` for a header value) in a
//! `DashMap` that only shrinks when asked to and has no cap, so an attacker
//! cycling keys would grow it without bound; this store never grows past its
//! cap and never stores key text.
//!
//! The key for a request comes from [`Caller`]: the consumer (set by the auth
//! stage; `None` until then or for anonymous callers), the client IP, a header,
//! or a token claim through [`Claims`], which the auth stage implements. Missing
//! values fall back to the client IP, never to a shared budget that one caller
//! could exhaust for everyone.
//!
//! Responses: `RateLimit-Policy` and `RateLimit` as structured fields
//! (draft-ietf-httpapi-ratelimit-headers: `"gold";q=100;w=1` and
//! `"gold";r=17;t=1`), `X-RateLimit-Limit/-Remaining/-Reset` for the most
//! restrictive scope, and on refusal `Retry-After` (see [`crate::error`]).
//!
//! A `scope: global` policy keeps its budgets in Redis instead ([`redis`]): same
//! algorithm and key inputs, shared by every replica; when Redis does not answer
//! in time, the policy's `onRedisFailure` decides (the local store with the
//! quota divided by the replica count, allow, or deny).
//!
//! Never: lock anything but one store shard, allocate for a request that no
//! policy applies to, count a refused request against any budget, or use a
//! client-supplied value as a metric label.

pub mod redis;
pub mod store;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use http::header::{HeaderMap, HeaderName, HeaderValue};
use prometheus_client::metrics::counter::Counter;
use smallvec::SmallVec;

use store::Step;
pub use store::{Gcra, KeyStore, StoreStats};

use crate::bundle::{Config, OnRedisFailure, RateLimitKeyCfg, RateLimitScope, RouteCfg};
use crate::metrics::Metrics;
use redis::{GlobalStore, RedisSetupError};

pub const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
pub const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
pub const X_RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
pub const X_RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
pub const X_RATELIMIT_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

const NANOS: u64 = 1_000_000_000;

/// Claims of the authenticated caller's token, looked up by name; implemented by
/// the authentication stage.
pub trait Claims: Sync {
    /// The claim as text (numbers in their JSON form); `None` when absent.
    fn claim(&self, name: &str) -> Option<Cow<'_, str>>;
}

/// What the rate-limit stage knows about the caller.
pub struct Caller<'a> {
    /// The authenticated consumer; `None` for anonymous callers.
    pub consumer: Option<&'a str>,
    pub client_ip: IpAddr,
    pub headers: &'a HeaderMap,
    pub claims: Option<&'a dyn Claims>,
}

struct Policy {
    name: Arc<str>,
    gcra: Gcra,
    requests: u64,
    period_secs: u64,
    key: RateLimitKeyCfg,
    /// `X-RateLimit-Limit`, made once.
    limit_header: HeaderValue,
    /// For `scope: global`: what decides without Redis, and the per-replica
    /// share of the quota the local fallback uses.
    global: Option<(OnRedisFailure, Gcra)>,
}

/// The inputs of a budget's key: a tag for its kind and the caller's bytes.
/// Hashed per process for the local store and stably for Redis.
struct KeyOf<'a> {
    tag: u8,
    bytes: KeyBytes<'a>,
}

enum KeyBytes<'a> {
    V4([u8; 4]),
    V6([u8; 16]),
    Slice(&'a [u8]),
    Text(Cow<'a, str>),
}

impl KeyOf<'_> {
    fn ip(ip: IpAddr) -> KeyOf<'static> {
        match ip {
            IpAddr::V4(v4) => KeyOf {
                tag: b'4',
                bytes: KeyBytes::V4(v4.octets()),
            },
            IpAddr::V6(v6) => KeyOf {
                tag: b'6',
                bytes: KeyBytes::V6(v6.octets()),
            },
        }
    }

    fn bytes(&self) -> &[u8] {
        match &self.bytes {
            KeyBytes::V4(b) => b,
            KeyBytes::V6(b) => b,
            KeyBytes::Slice(b) => b,
            KeyBytes::Text(t) => t.as_bytes(),
        }
    }
}

/// A budget one request took from, to give back if a later scope refuses.
enum Taken {
    Local(u64, Gcra),
    Redis(String, Gcra),
    /// Allowed by `onRedisFailure: allow`: nothing to give back.
    Nothing,
}

/// One attachment of a policy: its own budgets and counters.
struct Scope {
    policy: usize,
    /// Unique within the store, mixed into every key hash.
    id: u32,
    /// The policy name as the headers show it (suffixed when a route has the same
    /// policy at two levels).
    display: Arc<str>,
    /// `"name";q=…;w=…`
    policy_item: String,
    /// Identifies the scope's budgets in Redis across replicas and bundle
    /// versions: `<level label>/<policy>`.
    redis_label: String,
    allowed: Counter,
    limited: Counter,
}

/// The scopes that apply to one route, resolved at start.
#[derive(Default)]
pub struct RouteLimits {
    /// API level, then operation level.
    scopes: SmallVec<[u32; 2]>,
    /// The unauthenticated-callers scope, when the bundle has one.
    unauthenticated: Option<u32>,
    /// `RateLimit-Policy` for callers with a consumer, and without.
    policy_header: [Option<HeaderValue>; 2],
}

impl RouteLimits {
    pub fn is_empty(&self) -> bool {
        self.scopes.is_empty() && self.unauthenticated.is_none()
    }
}

/// What the rate-limit stage decided.
pub enum Verdict {
    /// No policy applies to this request.
    Unlimited,
    Allowed(Allowed),
    Limited(Box<Limited>),
}

/// A request every applicable scope allowed: enough to write the headers.
pub struct Allowed {
    /// (scope, debt in ns after this request).
    applied: SmallVec<[(u32, u64); 3]>,
    anonymous: bool,
}

/// A refused request: everything the `429` response needs.
#[derive(Debug, Clone)]
pub struct Limited {
    /// `RateLimit-Policy`, `RateLimit` and `X-RateLimit-*`, as configured.
    pub headers: HeaderMap,
    /// Whole seconds until a request would be allowed again (at least 1).
    pub retry_after_secs: u64,
    /// Names of the policies that refused (as in the headers).
    pub violated: Vec<Arc<str>>,
    pub outcome: Outcome,
}

/// The rate-limit result recorded in analytics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub limited: bool,
    /// The deciding (refusing, or most restrictive) policy, as in the headers.
    pub policy: Arc<str>,
    pub remaining: u64,
}

/// All rate-limit policies of a bundle and their state.
pub struct RateLimiter {
    store: KeyStore,
    policies: Vec<Policy>,
    scopes: Vec<Scope>,
    unauthenticated: Option<u32>,
    /// API-level scopes by (API index, policy index).
    api_scopes: BTreeMap<(usize, usize), u32>,
    ietf: bool,
    x_headers: bool,
    metrics: Arc<Metrics>,
    /// Set when a policy is `scope: global`.
    global: Option<Arc<GlobalStore>>,
}

impl RateLimiter {
    /// `None` when the bundle has no rate-limit policy.
    pub fn new(
        config: &Config,
        metrics: &Arc<Metrics>,
    ) -> Result<Option<RateLimiter>, RedisSetupError> {
        let Some(rl) = config.rate_limits.as_ref() else {
            return Ok(None);
        };
        let uses_redis = rl
            .policies
            .iter()
            .any(|p| p.scope == RateLimitScope::Global);
        let global = match (&rl.redis, uses_redis) {
            (Some(r), true) => Some(Arc::new(GlobalStore::new(
                r,
                metrics.traffic.redis.clone(),
            )?)),
            _ => None,
        };
        let replicas = rl.redis.as_ref().map_or(1, |r| r.replicas.max(1));
        let counters = metrics.traffic.ratelimit_store.clone();
        let store = KeyStore::new(rl.max_keys, counters);
        metrics
            .traffic
            .ratelimit_capacity
            .set(i64::try_from(store.capacity()).unwrap_or(i64::MAX));
        let policies = rl
            .policies
            .iter()
            .map(|p| {
                let period_ns = u64::try_from(p.period.as_nanos()).unwrap_or(u64::MAX);
                let share = |n: u64| n.div_ceil(replicas).max(1);
                Policy {
                    global: (p.scope == RateLimitScope::Global).then(|| {
                        (
                            p.on_redis_failure,
                            Gcra::new(share(p.requests), period_ns, share(p.burst)),
                        )
                    }),
                    name: p.name.as_str().into(),
                    gcra: Gcra::new(p.requests, period_ns, p.burst),
                    requests: p.requests,
                    period_secs: p.period.as_secs().max(1),
                    key: p.key.clone(),
                    limit_header: HeaderValue::from(p.requests),
                }
            })
            .collect();
        let mut limiter = RateLimiter {
            store,
            policies,
            scopes: Vec::new(),
            unauthenticated: None,
            api_scopes: BTreeMap::new(),
            ietf: rl.ietf_headers,
            x_headers: rl.x_headers,
            metrics: metrics.clone(),
            global,
        };
        if let Some(p) = rl.unauthenticated {
            let id = limiter.add_scope(p, "unauthenticated", None);
            limiter.unauthenticated = Some(id);
        }
        for r in &config.routes {
            if let Some(p) = r.api_rate_limit {
                if !limiter.api_scopes.contains_key(&(r.api, p)) {
                    let label = format!("api:{}", config.apis[r.api].name);
                    let id = limiter.add_scope(p, &label, Some("api"));
                    limiter.api_scopes.insert((r.api, p), id);
                }
            }
        }
        Ok(Some(limiter))
    }

    /// The Redis store of `global` policies, whose [`GlobalStore::run`] must be
    /// spawned.
    pub fn global_store(&self) -> Option<&Arc<GlobalStore>> {
        self.global.as_ref()
    }

    fn add_scope(&mut self, policy: usize, label: &str, level: Option<&str>) -> u32 {
        let id = u32::try_from(self.scopes.len()).unwrap_or(u32::MAX);
        let name = self.policies[policy].name.clone();
        // The unauthenticated scope keeps the plain name; a level that would show
        // the same name twice on one response gets a suffix.
        let clashes = self
            .unauthenticated
            .is_some_and(|u| self.scopes[u as usize].display == name);
        let display: Arc<str> = match level {
            Some(level) if clashes => format!("{name}.{level}").into(),
            _ => name.clone(),
        };
        let p = &self.policies[policy];
        let policy_item = format!("\"{display}\";q={};w={}", p.requests, p.period_secs);
        let (allowed, limited) = self.metrics.traffic.ratelimit_scope(&name, label);
        self.scopes.push(Scope {
            policy,
            id,
            display,
            policy_item,
            redis_label: format!("{label}/{name}"),
            allowed,
            limited,
        });
        id
    }

    /// The scopes of one route (call once per route at start).
    pub fn route(&mut self, config: &Config, route: &RouteCfg) -> RouteLimits {
        let mut scopes = SmallVec::new();
        let api_scope = route
            .api_rate_limit
            .and_then(|p| self.api_scopes.get(&(route.api, p)).copied());
        scopes.extend(api_scope);
        if let Some(p) = route.operation_rate_limit {
            let label = format!(
                "operation:{}.{}",
                config.apis[route.api].name, route.operation_id
            );
            let id = self.add_scope(p, &label, Some("operation"));
            let api_name = api_scope.map(|a| self.scopes[a as usize].display.clone());
            if api_name.as_deref() == Some(&*self.scopes[id as usize].display) {
                let s = &mut self.scopes[id as usize];
                let name = format!("{}.operation", self.policies[s.policy].name);
                s.policy_item = s.policy_item.replacen(&*s.display, &name, 1);
                s.display = name.into();
            }
            scopes.push(id);
        }
        let header = |ids: &mut dyn Iterator<Item = u32>| -> Option<HeaderValue> {
            let items: Vec<&str> = ids
                .map(|i| self.scopes[i as usize].policy_item.as_str())
                .collect();
            if items.is_empty() || !self.ietf {
                return None;
            }
            HeaderValue::from_str(&items.join(", ")).ok()
        };
        let with_consumer = header(&mut scopes.iter().copied());
        let anonymous = header(
            &mut self
                .unauthenticated
                .into_iter()
                .chain(scopes.iter().copied()),
        );
        RouteLimits {
            scopes,
            unauthenticated: self.unauthenticated,
            policy_header: [with_consumer, anonymous],
        }
    }

    pub fn stats(&self) -> StoreStats {
        self.store.stats()
    }

    /// Empties idle keys; run from a background task.
    pub fn sweep(&self) -> u64 {
        self.store.sweep(Instant::now())
    }

    /// Checks (and takes from) every budget that applies to this request.
    pub async fn check(&self, route: &RouteLimits, caller: &Caller<'_>, now: Instant) -> Verdict {
        let anonymous = caller.consumer.is_none();
        let unauth = route.unauthenticated.filter(|_| anonymous);
        if route.scopes.is_empty() && unauth.is_none() {
            return Verdict::Unlimited;
        }
        let now_ns = self.store.nanos(now);
        let mut applied: SmallVec<[(u32, u64); 3]> = SmallVec::new();
        let mut taken: SmallVec<[Taken; 3]> = SmallVec::new();
        for id in unauth.into_iter().chain(route.scopes.iter().copied()) {
            let scope = &self.scopes[id as usize];
            let policy = &self.policies[scope.policy];
            let key = if Some(id) == unauth {
                KeyOf::ip(caller.client_ip)
            } else {
                key_of(&policy.key, caller)
            };
            let (step, took) = self.acquire(scope, policy, &key, now_ns).await;
            match step {
                Step::Allowed { debt } => {
                    applied.push((id, debt));
                    taken.push(took);
                }
                Step::Refused { debt } => {
                    for t in taken {
                        match t {
                            Taken::Local(k, g) => self.store.refund(k, g),
                            Taken::Redis(k, g) => {
                                if let Some(store) = &self.global {
                                    store.refund(k, g);
                                }
                            }
                            Taken::Nothing => {}
                        }
                    }
                    scope.limited.inc();
                    return Verdict::Limited(Box::new(self.limited(route, id, debt, anonymous)));
                }
            }
        }
        for &(id, _) in &applied {
            self.scopes[id as usize].allowed.inc();
        }
        Verdict::Allowed(Allowed { applied, anonymous })
    }

    /// One scope's step: in the local store, or on Redis for a `global` policy
    /// (and then, without Redis, as its `onRedisFailure` says).
    async fn acquire(
        &self,
        scope: &Scope,
        policy: &Policy,
        key: &KeyOf<'_>,
        now_ns: u64,
    ) -> (Step, Taken) {
        let local = |g: Gcra| {
            let k = self.store.hash(scope.id, key.tag, key.bytes());
            (self.store.acquire(k, now_ns, g), Taken::Local(k, g))
        };
        let (Some((on_failure, share)), Some(store)) = (policy.global, &self.global) else {
            return local(policy.gcra);
        };
        let rkey = GlobalStore::key(&scope.redis_label, key.tag, key.bytes());
        if let Ok(step) = store.acquire(&rkey, policy.gcra).await {
            return (step, Taken::Redis(rkey, policy.gcra));
        }
        let m = &self.metrics.traffic.redis;
        match on_failure {
            OnRedisFailure::Local => {
                m.fallback("local");
                local(share)
            }
            OnRedisFailure::Allow => {
                m.fallback("allow");
                (
                    Step::Allowed {
                        debt: policy.gcra.t,
                    },
                    Taken::Nothing,
                )
            }
            OnRedisFailure::Deny => {
                m.fallback("deny");
                let debt = policy.gcra.tau.saturating_add(NANOS);
                (Step::Refused { debt }, Taken::Nothing)
            }
        }
    }

    fn remaining(&self, scope: u32, debt: u64) -> u64 {
        let g = self.policies[self.scopes[scope as usize].policy].gcra;
        (g.tau + g.t).saturating_sub(debt) / g.t
    }

    fn limited(&self, route: &RouteLimits, scope: u32, debt: u64, anonymous: bool) -> Limited {
        let s = &self.scopes[scope as usize];
        let p = &self.policies[s.policy];
        let retry = debt.saturating_sub(p.gcra.tau);
        let retry_after_secs = retry.div_ceil(NANOS).max(1);
        let reset = debt.div_ceil(NANOS).max(1);
        let mut headers = HeaderMap::new();
        if self.ietf {
            if let Some(v) = &route.policy_header[usize::from(anonymous)] {
                headers.insert(RATELIMIT_POLICY, v.clone());
            }
            if let Ok(v) = HeaderValue::from_str(&format!("\"{}\";r=0;t={reset}", s.display)) {
                headers.insert(RATELIMIT, v);
            }
        }
        if self.x_headers {
            headers.insert(X_RATELIMIT_LIMIT, p.limit_header.clone());
            headers.insert(X_RATELIMIT_REMAINING, HeaderValue::from_static("0"));
            headers.insert(X_RATELIMIT_RESET, number_header(reset));
        }
        Limited {
            headers,
            retry_after_secs,
            violated: vec![s.display.clone()],
            outcome: Outcome {
                limited: true,
                policy: s.display.clone(),
                remaining: 0,
            },
        }
    }

    /// The scope with the fewest requests left: (scope, remaining, reset seconds).
    fn tightest(&self, allowed: &Allowed) -> Option<(u32, u64, u64)> {
        allowed
            .applied
            .iter()
            .map(|&(id, debt)| (id, self.remaining(id, debt), debt.div_ceil(NANOS)))
            .min_by_key(|&(_, remaining, reset)| (remaining, std::cmp::Reverse(reset)))
    }

    /// Adds the rate-limit headers of an allowed request to its response.
    pub fn write_headers(&self, route: &RouteLimits, allowed: &Allowed, headers: &mut HeaderMap) {
        if self.ietf {
            if let Some(v) = &route.policy_header[usize::from(allowed.anonymous)] {
                headers.insert(RATELIMIT_POLICY, v.clone());
            }
            // `"name";r=17;t=1, …` without `core::fmt` (a third of the rate-limit
            // stage's instructions went to `write!` here).
            let mut value = String::with_capacity(32 * allowed.applied.len());
            let mut digits = itoa::Buffer::new();
            for (i, &(id, debt)) in allowed.applied.iter().enumerate() {
                if i > 0 {
                    value.push_str(", ");
                }
                value.push('"');
                value.push_str(&self.scopes[id as usize].display);
                value.push_str("\";r=");
                value.push_str(digits.format(self.remaining(id, debt)));
                value.push_str(";t=");
                value.push_str(digits.format(debt.div_ceil(NANOS)));
            }
            // Takes the string's buffer: no second copy.
            if let Ok(v) = HeaderValue::from_maybe_shared(bytes::Bytes::from(value)) {
                headers.insert(RATELIMIT, v);
            }
        }
        if self.x_headers {
            if let Some((id, remaining, reset)) = self.tightest(allowed) {
                let p = &self.policies[self.scopes[id as usize].policy];
                headers.insert(X_RATELIMIT_LIMIT, p.limit_header.clone());
                headers.insert(X_RATELIMIT_REMAINING, number_header(remaining));
                headers.insert(X_RATELIMIT_RESET, number_header(reset));
            }
        }
    }

    /// The analytics outcome of an allowed request.
    pub fn outcome(&self, allowed: &Allowed) -> Option<Outcome> {
        self.tightest(allowed).map(|(id, remaining, _)| Outcome {
            limited: false,
            policy: self.scopes[id as usize].display.clone(),
            remaining,
        })
    }
}

/// A count or a number of seconds as a header value. Small ones (the reset of
/// most policies, the requests left of small ones) come from a static table:
/// no allocation and no formatting per response (`HeaderValue::from(u64)`
/// allocates each time); larger ones are formatted.
fn number_header(n: u64) -> HeaderValue {
    const SMALL: [&str; 64] = [
        "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16",
        "17", "18", "19", "20", "21", "22", "23", "24", "25", "26", "27", "28", "29", "30", "31",
        "32", "33", "34", "35", "36", "37", "38", "39", "40", "41", "42", "43", "44", "45", "46",
        "47", "48", "49", "50", "51", "52", "53", "54", "55", "56", "57", "58", "59", "60", "61",
        "62", "63",
    ];
    match usize::try_from(n).ok().and_then(|i| SMALL.get(i)) {
        Some(text) => HeaderValue::from_static(text),
        None => HeaderValue::from(n),
    }
}

/// The key inputs of a request for one policy. Missing values fall back to the
/// client IP (or, for a claim, to the consumer first).
fn key_of<'a>(key: &'a RateLimitKeyCfg, caller: &Caller<'a>) -> KeyOf<'a> {
    let consumer = |c: Option<&'a str>| match c {
        Some(c) => KeyOf {
            tag: b'c',
            bytes: KeyBytes::Slice(c.as_bytes()),
        },
        None => KeyOf::ip(caller.client_ip),
    };
    match key {
        RateLimitKeyCfg::Consumer => consumer(caller.consumer),
        RateLimitKeyCfg::ClientIp => KeyOf::ip(caller.client_ip),
        RateLimitKeyCfg::Api => KeyOf {
            tag: b'a',
            bytes: KeyBytes::Slice(&[]),
        },
        RateLimitKeyCfg::Header(name) => match caller.headers.get(name) {
            Some(v) => KeyOf {
                tag: b'h',
                bytes: KeyBytes::Slice(v.as_bytes()),
            },
            None => KeyOf::ip(caller.client_ip),
        },
        RateLimitKeyCfg::Claim(name) => match caller.claims.and_then(|c| c.claim(name)) {
            Some(v) => KeyOf {
                tag: b'l',
                bytes: KeyBytes::Text(v),
            },
            None => consumer(caller.consumer),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The static table says what formatting says, and past it nothing changes.
    #[test]
    fn number_headers_are_the_decimal_number() {
        for n in (0..200).chain([u64::MAX]) {
            assert_eq!(number_header(n), HeaderValue::from(n), "{n}");
        }
    }
}
