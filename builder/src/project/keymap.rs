//! Where a bundle setting is written in `mgw.yaml`. The bundle names settings in
//! machine units (`connectTimeoutMs`, `maxHeaderBytes`), `mgw.yaml` in human ones
//! (`connectTimeout: 2s`, `maxHeaderSize: 64KiB`); these tables are the one
//! place that pairs them, read both to locate the gateway's problems in
//! `mgw.yaml` and to record where each bundle value came from. A key a table
//! does not list is spelled the same in both (`maxHeaders`, `tls.caFile`).

use super::error::KeyPath;

/// `limits.*`: bundle key → `mgw.yaml` key.
pub const LIMITS: &[(&str, &str)] = &[
    ("headerReadTimeoutMs", "headerReadTimeout"),
    ("maxHeaderBytes", "maxHeaderSize"),
    ("maxHeaders", "maxHeaders"),
    ("idleTimeoutMs", "idleTimeout"),
    ("maxBodyBytes", "maxBodySize"),
    ("shutdownGraceMs", "shutdownGrace"),
    ("h2MaxConcurrentStreams", "h2MaxConcurrentStreams"),
];

/// `upstreams.<name>.*`: bundle key → `mgw.yaml` key.
pub const UPSTREAM: &[(&str, &str)] = &[
    ("connectTimeoutMs", "connectTimeout"),
    ("requestTimeoutMs", "timeout"),
    ("poolIdleTimeoutMs", "poolIdleTimeout"),
    ("poolMaxIdlePerHost", "poolMaxIdlePerHost"),
    ("retry", "retry"),
    ("loadBalancing", "loadBalancing"),
    ("maxConcurrentRequests", "maxConcurrentRequests"),
    ("retry.budgetPercent", "retry.budget.percent"),
    ("retry.minRetriesPerSecond", "retry.budget.minPerSecond"),
    ("circuitBreaker", "circuitBreaker"),
    ("circuitBreaker.windowMs", "circuitBreaker.window"),
    ("circuitBreaker.openMs", "circuitBreaker.openDuration"),
    ("passiveHealth", "passiveHealth"),
    ("passiveHealth.ejectionMs", "passiveHealth.ejectionDuration"),
    ("healthCheck", "healthCheck"),
    ("healthCheck.intervalMs", "healthCheck.interval"),
    ("healthCheck.timeoutMs", "healthCheck.timeout"),
    ("tls", "tls"),
    ("tls.caFile", "tls.caFile"),
    ("tls.certFile", "tls.certFile"),
    ("tls.keyFile", "tls.keyFile"),
    ("tls.serverName", "tls.serverName"),
];

/// `rateLimits.policies.<name>.*`: bundle key → `mgw.yaml` key.
pub const POLICY: &[(&str, &str)] = &[
    ("requests", "requests"),
    ("periodSeconds", "period"),
    ("burst", "burst"),
    ("key", "key"),
    ("scope", "scope"),
    ("onRedisFailure", "onRedisFailure"),
];

/// The `mgw.yaml` key path under `base` of `rest`, a bundle key relative to the
/// part `base` holds (`retry.budgetPercent` → `retry.budget.percent`,
/// `urls[1]` → `urls[1]`).
pub fn manifest_path(base: &KeyPath, rest: &str, table: &[(&str, &str)]) -> KeyPath {
    let under = |b: &str| {
        rest == b
            || rest
                .strip_prefix(b)
                .is_some_and(|r| r.starts_with(['.', '[']))
    };
    let mapped = match table
        .iter()
        .filter(|(b, _)| under(b))
        .max_by_key(|(b, _)| b.len())
    {
        Some((b, m)) => format!("{m}{}", &rest[b.len()..]),
        None => rest.to_owned(),
    };
    let mut path = base.clone();
    for part in mapped.split('.').filter(|p| !p.is_empty()) {
        let mut pieces = part.split('[');
        if let Some(name) = pieces.next().filter(|n| !n.is_empty()) {
            path = path.key(name);
        }
        for index in pieces {
            match index.trim_end_matches(']').parse() {
                Ok(i) => path = path.index(i),
                Err(_) => path = path.key(index.trim_end_matches(']')),
            }
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundle_keys_become_manifest_paths() {
        let base = KeyPath::root().key("upstreams").key("pets");
        let at = |rest: &str| manifest_path(&base, rest, UPSTREAM).to_string();
        assert_eq!(at("connectTimeoutMs"), "upstreams.pets.connectTimeout");
        assert_eq!(
            at("retry.budgetPercent"),
            "upstreams.pets.retry.budget.percent"
        );
        assert_eq!(at("retry.attempts"), "upstreams.pets.retry.attempts");
        assert_eq!(
            at("circuitBreaker.windowMs"),
            "upstreams.pets.circuitBreaker.window"
        );
        assert_eq!(at("urls[1]"), "upstreams.pets.urls[1]");
        assert_eq!(at(""), "upstreams.pets");
        let limits = KeyPath::root().key("limits");
        assert_eq!(
            manifest_path(&limits, "maxHeaderBytes", LIMITS).to_string(),
            "limits.maxHeaderSize"
        );
    }
}
