//! `rateLimits.redis` and the `scope: global` policies that need it.

use crate::config::*;
use crate::wire::*;

use super::{Checker, bounded};

/// Checks `rateLimits.redis`; `global` names the first `scope: global` policy
/// (whose key path is reported when Redis is missing).
pub(super) fn check_redis(
    c: &mut Checker<'_>,
    redis: Option<&RateLimitRedis>,
    global: Option<&str>,
) -> Option<RedisCfg> {
    let Some(r) = redis else {
        if let Some(name) = global {
            c.push(
                format!("rateLimits.policies.{name}.scope"),
                "a `global` policy keeps its state in Redis; set `rateLimits.redis.url`",
            );
        }
        return None;
    };
    let key = "rateLimits.redis";
    // The URL as written must not carry a password: the bundle is not a secret.
    if has_password(&r.url) {
        c.push(
            format!("{key}.url"),
            "must not contain a password (the bundle is not a secret); use `passwordFile`",
        );
    }
    let url = c
        .resolve(&format!("{key}.url"), &r.url)
        .unwrap_or_else(|| r.url.clone());
    if c.env.is_some() || !url.contains("${") {
        check_url(c, &format!("{key}.url"), &url);
    }
    let username = r.username.as_ref().map(|u| {
        c.resolve(&format!("{key}.username"), u)
            .unwrap_or(u.clone())
    });
    let password_file = r.password_file.as_ref().map(|f| {
        c.resolve(&format!("{key}.passwordFile"), f)
            .unwrap_or(f.clone())
    });
    let ca_file = r
        .ca_file
        .as_ref()
        .map(|f| c.resolve(&format!("{key}.caFile"), f).unwrap_or(f.clone()));
    if ca_file.is_some() && !url.starts_with("rediss://") && !url.contains("${") {
        c.push(
            format!("{key}.caFile"),
            "is only used with a `rediss://` (TLS) URL",
        );
    }
    let timeout_ms = bounded(c, &format!("{key}.timeoutMs"), r.timeout_ms, 1, 10_000) as u64;
    let replicas = count(c, &format!("{key}.replicas"), &r.replicas, 1, 10_000);
    Some(RedisCfg {
        url,
        username,
        password_file,
        ca_file,
        cluster: r.cluster,
        timeout: std::time::Duration::from_millis(timeout_ms),
        replicas,
    })
}

/// A count within `min..=max`, resolving a template. Without an environment (the
/// builder), a template with an unset variable is only checked for syntax.
fn count(c: &mut Checker<'_>, key: &str, v: &CountOrTemplate, min: u64, max: u64) -> u64 {
    let n = match v {
        CountOrTemplate::Count(n) => *n,
        CountOrTemplate::Template(t) => match c.resolve(key, t) {
            Some(text) => match text.trim().parse::<u64>() {
                Ok(n) => n,
                Err(_) => {
                    c.push(
                        key,
                        format!("`{t}` gives `{text}`, which is not a whole number"),
                    );
                    return min;
                }
            },
            None => return min,
        },
    };
    bounded(c, key, n, min, max) as u64
}

/// `redis://user:secret@host` carries a password; `redis://user@host` does not.
fn has_password(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    authority
        .rsplit_once('@')
        .is_some_and(|(userinfo, _)| userinfo.contains(':'))
}

fn check_url(c: &mut Checker<'_>, key: &str, url: &str) {
    let Some((scheme, rest)) = url.split_once("://") else {
        c.push(
            key,
            format!("`{url}` is not a URL; expected `redis://host:port`"),
        );
        return;
    };
    if scheme != "redis" && scheme != "rediss" {
        c.push(
            key,
            format!("`{scheme}://` is not supported; use `redis://` or `rediss://` (TLS)"),
        );
    }
    let host = rest.split(['/', '?']).next().unwrap_or("");
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    if host.is_empty() {
        c.push(key, format!("`{url}` has no host"));
    }
}

#[cfg(test)]
mod tests {
    use super::has_password;

    #[test]
    fn a_password_in_the_url_is_found() {
        assert!(has_password("redis://u:p@h:6379"));
        assert!(has_password("redis://:p@h"));
        assert!(!has_password("redis://u@h:6379/0"));
        assert!(!has_password("redis://h:6379"));
        assert!(!has_password("${MGW_REDIS_URL}"));
    }
}
