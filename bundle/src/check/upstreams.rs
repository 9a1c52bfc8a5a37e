//! Upstreams: URLs, timeouts, retries, TLS towards the upstream, circuit breaker
//! and health checks.

use std::time::Duration;

use http::Uri;

use crate::config::*;
use crate::wire::*;

use super::{Checker, bounded};

pub(super) fn check_upstream(
    c: &mut Checker<'_>,
    key: &str,
    name: &str,
    u: &Upstream,
) -> UpstreamCfg {
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
pub(super) fn check_upstream_tls(
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

pub(super) fn check_circuit_breaker(
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

pub(super) fn check_passive_health(
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

pub(super) fn check_health_check(
    c: &mut Checker<'_>,
    key: &str,
    h: &HealthCheck,
) -> HealthCheckCfg {
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
