//! Traffic policies: rate limits and trusted proxies.

use std::time::Duration;

use crate::config::*;
use crate::net::{IpNet, TrustedProxies};
use crate::wire::*;

use super::{Checker, bounded};

/// Policy names appear in response headers (structured-field strings) and metric
/// labels, so they are kept to a safe alphabet.
pub(super) fn check_policy_name(c: &mut Checker<'_>, key: &str, name: &str) {
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

pub(super) fn check_rate_limits(c: &mut Checker<'_>, r: &RateLimits) -> RateLimitsCfg {
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
            scope: p.scope,
            on_redis_failure: p.on_redis_failure,
        });
    }
    let global = r
        .policies
        .iter()
        .find(|(_, p)| p.scope == RateLimitScope::Global)
        .map(|(name, _)| name.as_str());
    let cfg = RateLimitsCfg {
        redis: super::redis::check_redis(c, r.redis.as_ref(), global),
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
pub(super) fn rate_limit_ref(
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

pub(super) fn check_trusted_proxies(c: &mut Checker<'_>, entries: &[String]) -> TrustedProxies {
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
