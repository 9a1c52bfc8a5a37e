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
//! Never: lock anything but one store shard, allocate for a request that no
//! policy applies to, count a refused request against any budget, or use a
//! client-supplied value as a metric label.

pub mod store;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use http::header::{HeaderMap, HeaderName, HeaderValue};
use prometheus_client::metrics::counter::Counter;
use smallvec::SmallVec;

use store::Step;
pub use store::{Gcra, KeyStore, StoreStats};

use crate::bundle::{Config, RateLimitKeyCfg, RouteCfg};
use crate::metrics::Metrics;

pub const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
pub const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
pub const X_RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
pub const X_RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
pub const X_RATELIMIT_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

const NANOS: u64 = 1_000_000_000;

/// Claims of the authenticated caller's token, looked up by name; implemented by
/// the authentication stage.
pub trait Claims {
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
}

impl RateLimiter {
    /// `None` when the bundle has no rate-limit policy.
    pub fn new(config: &Config, metrics: &Arc<Metrics>) -> Option<RateLimiter> {
        let rl = config.rate_limits.as_ref()?;
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
                Policy {
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
        Some(limiter)
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
    pub fn check(&self, route: &RouteLimits, caller: &Caller<'_>, now: Instant) -> Verdict {
        let anonymous = caller.consumer.is_none();
        let unauth = route.unauthenticated.filter(|_| anonymous);
        if route.scopes.is_empty() && unauth.is_none() {
            return Verdict::Unlimited;
        }
        let now_ns = self.store.nanos(now);
        let mut applied: SmallVec<[(u32, u64); 3]> = SmallVec::new();
        let mut keys: SmallVec<[u64; 3]> = SmallVec::new();
        for id in unauth.into_iter().chain(route.scopes.iter().copied()) {
            let scope = &self.scopes[id as usize];
            let policy = &self.policies[scope.policy];
            let key = if Some(id) == unauth {
                self.ip_key(scope.id, caller.client_ip)
            } else {
                self.key(scope.id, &policy.key, caller)
            };
            match self.store.acquire(key, now_ns, policy.gcra) {
                Step::Allowed { debt } => {
                    applied.push((id, debt));
                    keys.push(key);
                }
                Step::Refused { debt } => {
                    for (&(a, _), &k) in applied.iter().zip(&keys) {
                        let g = self.policies[self.scopes[a as usize].policy].gcra;
                        self.store.refund(k, g);
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

    fn ip_key(&self, scope: u32, ip: IpAddr) -> u64 {
        match ip {
            IpAddr::V4(v4) => self.store.hash(scope, b'4', &v4.octets()),
            IpAddr::V6(v6) => self.store.hash(scope, b'6', &v6.octets()),
        }
    }

    fn key(&self, scope: u32, key: &RateLimitKeyCfg, caller: &Caller<'_>) -> u64 {
        let consumer = |c: Option<&str>| match c {
            Some(c) => self.store.hash(scope, b'c', c.as_bytes()),
            None => self.ip_key(scope, caller.client_ip),
        };
        match key {
            RateLimitKeyCfg::Consumer => consumer(caller.consumer),
            RateLimitKeyCfg::ClientIp => self.ip_key(scope, caller.client_ip),
            RateLimitKeyCfg::Api => self.store.hash(scope, b'a', &[]),
            RateLimitKeyCfg::Header(name) => match caller.headers.get(name) {
                Some(v) => self.store.hash(scope, b'h', v.as_bytes()),
                None => self.ip_key(scope, caller.client_ip),
            },
            RateLimitKeyCfg::Claim(name) => match caller.claims.and_then(|c| c.claim(name)) {
                Some(v) => self.store.hash(scope, b'l', v.as_bytes()),
                None => consumer(caller.consumer),
            },
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
            headers.insert(X_RATELIMIT_RESET, HeaderValue::from(reset));
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
            let mut value = String::with_capacity(32 * allowed.applied.len());
            for (i, &(id, debt)) in allowed.applied.iter().enumerate() {
                let sep = if i == 0 { "" } else { ", " };
                let _ = write!(
                    value,
                    "{sep}\"{}\";r={};t={}",
                    self.scopes[id as usize].display,
                    self.remaining(id, debt),
                    debt.div_ceil(NANOS)
                );
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
                headers.insert(X_RATELIMIT_REMAINING, HeaderValue::from(remaining));
                headers.insert(X_RATELIMIT_RESET, HeaderValue::from(reset));
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
