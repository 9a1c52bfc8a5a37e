//! Security: authentication providers, security schemes, requirements, CORS.

use std::collections::BTreeMap;
use std::time::Duration;

use http::{Method, Uri};

use crate::config::*;
use crate::keys::{KeyFamily, parse_jwt_key};
use crate::wire::*;

use super::{Checker, bounded};

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

pub(super) fn check_claim_headers(
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

pub(super) fn check_auth(c: &mut Checker<'_>, auth: &Auth) -> AuthCfg {
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

pub(super) fn check_jwt(c: &mut Checker<'_>, key: &str, j: &JwtProvider) -> JwtCfg {
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
    let discovery_url = j.discovery_url.as_ref().and_then(|u| {
        let ukey = format!("{key}.discoveryUrl");
        if j.jwks_url.is_some() {
            c.push(
                &ukey,
                "set `jwksUrl` or `discoveryUrl`, not both (discovery finds the JWKS URL)",
            );
        }
        let url = c.resolve(&ukey, u)?;
        check_http_url(c, &ukey, &url);
        Some(url)
    });
    let hmac_secret_file = j
        .hmac_secret_file
        .as_ref()
        .and_then(|f| c.resolve(&format!("{key}.hmacSecretFile"), f));
    let has_asymmetric = algorithms.iter().any(|a| !KeyFamily::Hmac.allows(*a));
    if has_asymmetric && j.keys.is_empty() && j.jwks_url.is_none() && j.discovery_url.is_none() {
        c.push(
            format!("{key}.keys"),
            "needs verification keys (`keys`), a `jwksUrl` or a `discoveryUrl`",
        );
    }
    JwtCfg {
        issuer: j.issuer.clone(),
        audiences: j.audiences.clone(),
        algorithms,
        keys: j.keys.clone(),
        jwks_url,
        discovery_url,
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
        scope_claims: scope_claims(c, &format!("{key}.scopeClaims"), &j.scope_claims),
        cache_capacity: bounded(
            c,
            &format!("{key}.cacheCapacity"),
            j.cache_capacity,
            0,
            1 << 22,
        ),
    }
}

/// The claims a JWT provider reads scopes from: those named (top-level claim
/// names, each at most once), else `scope` and `scp`.
fn scope_claims(c: &mut Checker<'_>, key: &str, named: &[String]) -> Vec<String> {
    if named.is_empty() {
        return DEFAULT_SCOPE_CLAIMS
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
    }
    for (i, name) in named.iter().enumerate() {
        if name.trim().is_empty() {
            c.push(format!("{key}[{i}]"), "a claim name must not be empty");
        } else if named[..i].contains(name) {
            c.push(format!("{key}[{i}]"), format!("`{name}` is listed twice"));
        }
    }
    named.to_vec()
}

pub(super) fn check_http_url(c: &mut Checker<'_>, key: &str, url: &str) -> Option<Uri> {
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

pub(super) fn check_introspection(
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
        // Switching the cache off is `cacheCapacity: 0`, not a zero TTL.
        cache_ttl: c.millis(&format!("{key}.cacheTtlMs"), i.cache_ttl_ms),
        negative_cache_ttl: c.millis(
            &format!("{key}.negativeCacheTtlMs"),
            i.negative_cache_ttl_ms,
        ),
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

pub(super) fn check_api_security(
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

pub(super) fn check_requirements(
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

pub(super) fn check_cors(c: &mut Checker<'_>, key: &str, cors: &Cors) -> CorsCfg {
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
