//! Authentication and authorization: the stage of the pipeline that decides who
//! is calling and whether they may call this operation.
//!
//! The bundle gives every operation its effective security requirements (any one
//! may pass; inside one, every scheme must pass, with its scopes) and every API its
//! schemes (where the credential is, which provider checks it). Providers are
//! signed JWTs ([`jwt`]), API keys and basic-auth users from mounted files
//! ([`secrets`]) and RFC 7662 introspection ([`introspect`]). A success yields an
//! [`Identity`] (consumer name, scopes, claims) that analytics and rate limiting
//! read; a failure becomes a [`GatewayError`] that says only the category.
//!
//! Never: let a request through when a requirement could not be checked (an
//! unreachable introspection endpoint is a 503, not a pass); tell the client why a
//! signature failed; log a credential; forward the credential upstream unless the
//! provider says so; let a client set a header that a claim sets.

pub mod cache;
pub mod claims;
pub mod http;
pub mod introspect;
pub mod jws;
pub mod jwt;
pub mod rsa;
pub mod secrets;

use std::borrow::Cow;
use std::sync::Arc;

use ::http::header::{HeaderName, HeaderValue};
use ::http::{HeaderMap, Request, Uri};

use crate::bundle::{
    ClientCertMode, Config, CredentialIn, ProviderCfg, ProviderKind, RouteCfg, SchemeCfg,
    ScopeMatch,
};
use crate::conn::ConnInfo;
use crate::error::GatewayError;
use crate::metrics::{AuthMetrics, AuthOutcome, Metrics};

/// Who is calling, as established by a provider. Shared (`Arc`) because verified
/// credentials are cached.
#[derive(Debug)]
pub struct Identity {
    /// The provider that vouched for this identity.
    pub provider: Arc<str>,
    /// Consumer name: `sub` (or client id) of a token, the consumer of an API key,
    /// the basic-auth user, or the client certificate's subject.
    pub consumer: Arc<str>,
    pub scopes: Box<[Box<str>]>,
    /// Token claims (JWT payload or introspection response), for rate-limit keys,
    /// transforms, filters and sandbox routing.
    pub claims: Option<claims::ClaimSet>,
    /// Request headers set from claims for the upstream.
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl Identity {
    /// Does the token carry claim `name` with the string value `value`?
    pub fn claim_is(&self, name: &str, value: &str) -> bool {
        self.claims
            .as_ref()
            .and_then(|c| c.get(name))
            .and_then(serde_json::Value::as_str)
            == Some(value)
    }

    /// Whether the identity carries the scopes a requirement lists: all of
    /// them, or with [`ScopeMatch::Any`] at least one (none listed: yes).
    pub fn has_scopes(&self, required: &[String], how: ScopeMatch) -> bool {
        let held = |r: &String| self.scopes.iter().any(|s| **s == **r);
        match how {
            ScopeMatch::All => required.iter().all(held),
            ScopeMatch::Any => required.is_empty() || required.iter().any(held),
        }
    }

    /// An identity with no scopes and no claims.
    pub fn named(provider: &Arc<str>, consumer: impl Into<Arc<str>>) -> Self {
        Identity {
            provider: provider.clone(),
            consumer: consumer.into(),
            scopes: Box::default(),
            claims: None,
            headers: Vec::new(),
        }
    }
}

/// One scheme's outcome for a request, once checked.
type Checked = Option<Result<Arc<Identity>, Failure>>;

/// Whether two schemes of one requirement that the same provider serves name
/// different consumers: parts of one credential (Plaid's client id and secret,
/// both in one keys file) must belong to one consumer, or one team's id with
/// another's secret would pass. Schemes of different providers are independent
/// credentials (an application key next to a user's token) and are not compared.
fn mixes_consumers(requirement: &[crate::bundle::SchemeReq], results: &[Checked]) -> bool {
    let passed = |r: &crate::bundle::SchemeReq| match &results[r.scheme] {
        Some(Ok(identity)) => Some(identity),
        _ => None,
    };
    requirement.iter().enumerate().any(|(i, a)| {
        passed(a).is_some_and(|a| {
            requirement[i + 1..]
                .iter()
                .filter_map(passed)
                .any(|b| b.provider == a.provider && b.consumer != a.consumer)
        })
    })
}

/// Why one scheme did not accept the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Failure {
    /// No credential for this scheme.
    Missing,
    /// A credential that does not verify (bad signature, expired, unknown key...).
    Invalid,
    /// The credential could not be checked (introspection endpoint down).
    Unavailable,
}

/// Why a provider could not be set up at start.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("auth provider `{provider}`: {message}")]
    Provider { provider: String, message: String },
    #[error("TLS: {0}")]
    Tls(#[from] crate::tls::TlsError),
}

/// A provider, running.
pub enum Checker {
    Jwt(Arc<jwt::JwtVerifier>),
    ApiKey(Arc<secrets::ApiKeys>),
    Basic(Arc<secrets::BasicUsers>),
    Introspection(Arc<introspect::Introspector>),
}

impl Checker {
    fn forwards_credentials(&self) -> bool {
        match self {
            Checker::Jwt(j) => j.cfg.forward_credentials,
            Checker::ApiKey(a) => a.cfg.forward_credentials,
            Checker::Basic(b) => b.cfg.forward_credentials,
            Checker::Introspection(i) => i.cfg.forward_credentials,
        }
    }

    /// The challenge for `WWW-Authenticate`.
    fn challenge(&self, scheme: &SchemeCfg, realm: &str, error: Option<&str>) -> String {
        let err = error
            .map(|e| format!(", error=\"{e}\""))
            .unwrap_or_default();
        match self {
            Checker::Basic(b) => format!(
                "Basic realm=\"{}\", charset=\"UTF-8\"",
                b.cfg.realm.as_deref().unwrap_or(realm)
            ),
            Checker::ApiKey(_) => format!(
                "ApiKey realm=\"{realm}\", {}=\"{}\"",
                match scheme.location {
                    CredentialIn::Header => "header",
                    CredentialIn::Query => "query",
                    CredentialIn::Cookie => "cookie",
                },
                scheme.param
            ),
            Checker::Jwt(_) | Checker::Introspection(_) => format!("Bearer realm=\"{realm}\"{err}"),
        }
    }
}

/// Security of one API, ready for the request path.
struct ApiSecurity {
    realm: String,
    schemes: Vec<SchemeCfg>,
    /// By scheme: the header a header credential comes in, parsed once.
    header_names: Vec<Option<HeaderName>>,
    mtls: Option<ClientCertMode>,
    scope_match: ScopeMatch,
    /// Headers that claims set for this API's upstream: removed from every
    /// incoming request so a client can never forge them.
    claim_headers: Vec<HeaderName>,
    metrics: AuthMetrics,
}

/// Background tasks (JWKS refresh, secret file reloads) end with the gateway.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Authentication and authorization for every API of the bundle.
pub struct Security {
    providers: Vec<Checker>,
    apis: Vec<ApiSecurity>,
    _tasks: Vec<AbortOnDrop>,
}

impl Security {
    /// Reads the secret files, fetches JWKS URLs once and starts the reload
    /// tasks. A provider that cannot start is a configuration error (exit 64).
    /// Must run inside a tokio runtime.
    pub async fn load(config: &Config, metrics: &Arc<Metrics>) -> Result<Security, SetupError> {
        // Built on first use: parsing the image's CA bundle costs start-up time
        // and memory that a bundle without JWT or introspection never needs.
        let mut client: Option<http::HttpClient> = None;
        let mut tasks = Vec::new();
        let mut providers = Vec::with_capacity(config.auth.providers.len());
        for p in &config.auth.providers {
            let err = |message: String| SetupError::Provider {
                provider: p.name.clone(),
                message,
            };
            let name: Arc<str> = p.name.as_str().into();
            let checker = match &p.kind {
                ProviderKind::Jwt(cfg) => {
                    let v = Arc::new(
                        jwt::JwtVerifier::new(
                            name,
                            cfg.clone(),
                            client.get_or_insert_with(http::client).clone(),
                        )
                        .map_err(err)?,
                    );
                    if let Some(task) = v.start().await {
                        tasks.push(AbortOnDrop(task));
                    }
                    Checker::Jwt(v)
                }
                ProviderKind::ApiKey(cfg) => {
                    let a = Arc::new(
                        secrets::ApiKeys::load(name, cfg.clone(), metrics.clone()).map_err(err)?,
                    );
                    tasks.push(AbortOnDrop(a.clone().watch()));
                    Checker::ApiKey(a)
                }
                ProviderKind::Basic(cfg) => {
                    let b = Arc::new(
                        secrets::BasicUsers::load(name, cfg.clone(), metrics.clone())
                            .map_err(err)?,
                    );
                    tasks.push(AbortOnDrop(b.clone().watch()));
                    Checker::Basic(b)
                }
                ProviderKind::Introspection(cfg) => Checker::Introspection(Arc::new(
                    introspect::Introspector::new(
                        name,
                        cfg.clone(),
                        client.get_or_insert_with(http::client).clone(),
                    )
                    .map_err(err)?,
                )),
            };
            providers.push(checker);
        }
        let apis = config
            .apis
            .iter()
            .map(|a| {
                let mut claim_headers: Vec<HeaderName> = Vec::new();
                for s in &a.schemes {
                    for (_, h) in claim_headers_of(&config.auth.providers[s.provider]) {
                        if !claim_headers.contains(h) {
                            claim_headers.push(h.clone());
                        }
                    }
                }
                ApiSecurity {
                    realm: a.name.clone(),
                    schemes: a.schemes.clone(),
                    header_names: a
                        .schemes
                        .iter()
                        .map(|s| match s.location {
                            CredentialIn::Header => HeaderName::from_bytes(s.param.as_bytes()).ok(),
                            _ => None,
                        })
                        .collect(),
                    mtls: a.mtls,
                    scope_match: a.scope_match,
                    claim_headers,
                    metrics: metrics.auth(&a.name),
                }
            })
            .collect();
        Ok(Security {
            providers,
            apis,
            _tasks: tasks,
        })
    }

    /// Whether a claim sets this (lowercase) request header on the API's requests.
    pub fn is_claim_header(&self, api: usize, name: &str) -> bool {
        self.apis
            .get(api)
            .is_some_and(|a| a.claim_headers.iter().any(|h| h.as_str() == name))
    }

    /// The authenticate and authorize stages for one routed request. On success
    /// the request is ready for the upstream: credentials removed (unless a
    /// provider forwards them), claim headers set.
    pub async fn check<B>(
        &self,
        route: &RouteCfg,
        req: &mut Request<B>,
        conn: &ConnInfo,
    ) -> (Result<Option<Arc<Identity>>, GatewayError>, AuthOutcome) {
        let Some(api) = self.apis.get(route.api) else {
            return (Ok(None), AuthOutcome::Anonymous);
        };
        for h in &api.claim_headers {
            req.headers_mut().remove(h);
        }
        let result = self.decide(api, route, req, conn).await;
        let label = match &result {
            Ok(Some(_)) => AuthOutcome::Success,
            Ok(None) => AuthOutcome::Anonymous,
            Err(e) => match e {
                GatewayError::Unauthorized { invalid: false, .. } => AuthOutcome::Missing,
                GatewayError::Unauthorized { invalid: true, .. } => AuthOutcome::Invalid,
                GatewayError::AuthUnavailable => AuthOutcome::Unavailable,
                _ => AuthOutcome::Forbidden,
            },
        };
        api.metrics.observe(label);
        (result, label)
    }

    async fn decide<B>(
        &self,
        api: &ApiSecurity,
        route: &RouteCfg,
        req: &mut Request<B>,
        conn: &ConnInfo,
    ) -> Result<Option<Arc<Identity>>, GatewayError> {
        // Mutual TLS first: it is a property of the connection, not of a header.
        let cert = conn.client_cert.as_ref();
        if api.mtls == Some(ClientCertMode::Required) && cert.is_none() {
            return Err(GatewayError::ClientCertRequired);
        }
        let cert_identity = || {
            cert.map(|subject| {
                Arc::new(Identity::named(
                    &Arc::from("mtls"),
                    Arc::<str>::from(subject.as_ref()),
                ))
            })
        };
        if route.security.is_empty() {
            return Ok(cert_identity());
        }

        // Each scheme is checked at most once per request, whatever the
        // requirements that name it.
        let mut results: Vec<Checked> = vec![None; api.schemes.len()];
        let mut worst: Option<Failure> = None;
        let mut missing_scopes: Option<&[String]> = None;
        'requirements: for requirement in &route.security {
            let mut first: Option<Arc<Identity>> = None;
            for r in requirement {
                let result = match &results[r.scheme] {
                    Some(done) => done.clone(),
                    None => {
                        let scheme = &api.schemes[r.scheme];
                        let header = api.header_names[r.scheme].as_ref();
                        let done = self
                            .check_scheme(scheme, header, req.headers(), req.uri())
                            .await;
                        results[r.scheme] = Some(done.clone());
                        done
                    }
                };
                match result {
                    Ok(identity) if identity.has_scopes(&r.scopes, api.scope_match) => {
                        first.get_or_insert(identity);
                    }
                    Ok(_) => {
                        missing_scopes.get_or_insert(&r.scopes);
                        continue 'requirements;
                    }
                    Err(f) => {
                        worst = Some(worst.map_or(f, |w| w.max(f)));
                        continue 'requirements;
                    }
                }
            }
            // Every scheme of this requirement passed.
            let Some(identity) = first else { continue };
            if requirement.len() > 1 && mixes_consumers(requirement, &results) {
                worst = Some(worst.map_or(Failure::Invalid, |w| w.max(Failure::Invalid)));
                continue;
            }
            // Only request validation reads which credentials were taken.
            let record_taken = route.request.is_some();
            self.prepare_upstream(api, requirement, req, &identity, record_taken);
            return Ok(Some(identity));
        }

        // Optional authentication (`{}` among the alternatives): a caller that
        // presented no credential, or one without the scopes, passes
        // anonymously; a credential that does not verify is still refused, as
        // Envoy's `allow_missing` and public APIs such as GitHub's do.
        if route.anonymous && matches!(worst, None | Some(Failure::Missing)) {
            return Ok(cert_identity());
        }

        // Nothing passed: the most telling reason wins (forbidden > unavailable >
        // invalid > missing), and the client learns only that category.
        if let Some(scopes) = missing_scopes {
            let challenge = format!(
                "Bearer realm=\"{}\", error=\"insufficient_scope\", scope=\"{}\"",
                quote_safe(&api.realm),
                quote_safe(&scopes.join(" "))
            );
            return Err(GatewayError::Forbidden {
                challenge: HeaderValue::from_str(&challenge).ok(),
            });
        }
        match worst {
            Some(Failure::Unavailable) => Err(GatewayError::AuthUnavailable),
            other => {
                let invalid = other == Some(Failure::Invalid);
                let mut challenges = Vec::new();
                for requirement in &route.security {
                    for r in requirement {
                        let scheme = &api.schemes[r.scheme];
                        let checker = &self.providers[scheme.provider];
                        let failed = matches!(results[r.scheme], Some(Err(Failure::Invalid)));
                        let c = checker.challenge(
                            scheme,
                            &quote_safe(&api.realm),
                            failed.then_some("invalid_token"),
                        );
                        if let Ok(v) = HeaderValue::from_str(&c) {
                            if !challenges.contains(&v) {
                                challenges.push(v);
                            }
                        }
                    }
                }
                Err(GatewayError::Unauthorized {
                    invalid,
                    challenges: challenges.into(),
                })
            }
        }
    }

    async fn check_scheme(
        &self,
        scheme: &SchemeCfg,
        header: Option<&HeaderName>,
        headers: &HeaderMap,
        uri: &Uri,
    ) -> Result<Arc<Identity>, Failure> {
        let checker = &self.providers[scheme.provider];
        // A bearer token in a header is looked up in the verified-token cache
        // before its text is checked: a hit means these very bytes were checked
        // (and verified) before (see [`header_token`]); a miss hands the key on.
        let mut key = None;
        if let (Checker::Jwt(j), CredentialIn::Header) = (checker, scheme.location) {
            if let Some(raw) = single_header_value(header, headers).filter(|_| j.caches()) {
                if let Some(range) = header_token(scheme, raw.as_bytes()) {
                    match j.cached(&raw.as_bytes()[range]) {
                        Ok(hit) => return Ok(hit),
                        Err(k) => key = k,
                    }
                }
            }
        }
        let credential = credential(scheme, header, headers, uri).ok_or(Failure::Missing)?;
        match checker {
            Checker::Jwt(j) => j.verify_keyed(&credential, key).await,
            Checker::Introspection(i) => i.check(&credential).await,
            Checker::ApiKey(a) => a.check(&credential),
            Checker::Basic(b) => b.check(&credential).await,
        }
    }

    /// Removes the credentials the passing requirement used (unless forwarded)
    /// and sets the identity's claim headers; with `record_taken` (a route
    /// that validates requests), notes the removed ones in [`TakenCredentials`].
    fn prepare_upstream<B>(
        &self,
        api: &ApiSecurity,
        requirement: &[crate::bundle::SchemeReq],
        req: &mut Request<B>,
        identity: &Identity,
        record_taken: bool,
    ) {
        let mut taken = TakenCredentials::default();
        for r in requirement {
            let scheme = &api.schemes[r.scheme];
            if self.providers[scheme.provider].forwards_credentials() {
                continue;
            }
            if record_taken {
                taken.0.push((scheme.location, scheme.param.clone()));
            }
            match scheme.location {
                CredentialIn::Header => {
                    if let Some(h) = &api.header_names[r.scheme] {
                        req.headers_mut().remove(h);
                    }
                }
                CredentialIn::Query => {
                    if let Some(uri) = without_query_param(req.uri(), &scheme.param) {
                        *req.uri_mut() = uri;
                    }
                }
                CredentialIn::Cookie => without_cookie(req.headers_mut(), &scheme.param),
            }
        }
        for (name, value) in &identity.headers {
            req.headers_mut().insert(name.clone(), value.clone());
        }
        if !taken.0.is_empty() {
            req.extensions_mut().insert(taken);
        }
    }
}

/// The credentials (where, and the header, query or cookie name) the
/// authenticate stage verified and removed from a request, kept in its
/// extensions: a later stage that looks for them (request validation of a
/// parameter the document declares as well as the security scheme) knows they
/// were there. Recorded only on routes that validate requests, its one reader
/// (elsewhere it was an allocation per request that nothing read).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TakenCredentials(pub Vec<(CredentialIn, String)>);

impl TakenCredentials {
    /// Whether the credential `name` sent in `location` was taken (header names
    /// without regard to case).
    pub fn contains(&self, location: CredentialIn, name: &str) -> bool {
        self.0.iter().any(|(l, n)| {
            *l == location
                && match location {
                    CredentialIn::Header => n.eq_ignore_ascii_case(name),
                    _ => n == name,
                }
        })
    }
}

fn claim_headers_of(p: &ProviderCfg) -> &[(String, HeaderName)] {
    match &p.kind {
        ProviderKind::Jwt(j) => &j.claim_headers,
        ProviderKind::Introspection(i) => &i.claim_headers,
        _ => &[],
    }
}

/// Keeps a value safe inside a quoted-string of a challenge.
fn quote_safe(s: &str) -> String {
    s.chars()
        .filter(|c| *c != '"' && *c != '\\' && !c.is_control())
        .collect()
}

/// The credential of one scheme, if the request carries one: borrowed from the
/// request unless it had to be decoded (a query parameter). `header`: the
/// scheme's header name, parsed once (`None` when `param` is not one).
fn credential<'r>(
    scheme: &SchemeCfg,
    header: Option<&HeaderName>,
    headers: &'r HeaderMap,
    uri: &'r Uri,
) -> Option<Cow<'r, str>> {
    match scheme.location {
        CredentialIn::Header => {
            let mut values = headers.get_all(header?).iter();
            let value = values.next()?;
            if values.next().is_some() {
                // Two credentials: refuse to guess which one counts.
                return Some(Cow::Borrowed(""));
            }
            let value = value.to_str().ok()?;
            header_token(scheme, value.as_bytes()).map(|range| Cow::Borrowed(&value[range]))
        }
        CredentialIn::Query => {
            let query = uri.query()?;
            let mut found = None;
            for pair in query.split('&') {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                if decode_form(k).as_deref() == Some(scheme.param.as_str()) {
                    if found.is_some() {
                        return Some(Cow::Borrowed(""));
                    }
                    found = decode_form(v).map(Cow::Owned);
                }
            }
            found
        }
        CredentialIn::Cookie => {
            let mut found = None;
            for (name, value) in cookies(headers) {
                if name == scheme.param {
                    if found.is_some() {
                        return Some(Cow::Borrowed(""));
                    }
                    found = Some(Cow::Borrowed(value));
                }
            }
            found
        }
    }
}

/// The value of the credential header when it is sent exactly once.
fn single_header_value<'r>(
    header: Option<&HeaderName>,
    headers: &'r HeaderMap,
) -> Option<&'r HeaderValue> {
    let mut values = headers.get_all(header?).iter();
    let value = values.next()?;
    values.next().is_none().then_some(value)
}

/// Where the credential is in a header's value: the value without the spaces
/// and tabs around it, after the scheme's prefix (`Bearer …`, any case) when it
/// has one. Works on bytes, so the cache can be asked before the value's text
/// is checked; every boundary it cuts at is next to an ASCII byte, so the range
/// also cuts the text. `None`: no credential of this scheme in the header.
fn header_token(scheme: &SchemeCfg, value: &[u8]) -> Option<std::ops::Range<usize>> {
    let blank = |b: &u8| *b == b' ' || *b == b'\t';
    let start = value.iter().position(|b| !blank(b)).unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !blank(b))
        .map_or(start, |i| i + 1);
    let Some(prefix) = &scheme.prefix else {
        return Some(start..end);
    };
    let space = value[start..end].iter().position(|&b| b == b' ');
    match space {
        Some(at) if value[start..start + at].eq_ignore_ascii_case(prefix.as_bytes()) => {
            let rest = start + at + 1;
            let token = value[rest..end]
                .iter()
                .position(|b| !blank(b))
                .map_or(end, |i| rest + i);
            Some(token..end)
        }
        // `Authorization: Basic …` is not a bearer token; a custom header may
        // carry the bare token.
        _ if scheme.param == "authorization" => None,
        _ => Some(start..end),
    }
}

/// The `name=value` pairs of every `Cookie` header (RFC 6265 §5.4: `; `-separated,
/// a value may be in double quotes).
fn cookies(headers: &HeaderMap) -> impl Iterator<Item = (&str, &str)> {
    headers
        .get_all(::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| {
            let (name, value) = pair.split_once('=')?;
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            Some((name.trim(), value))
        })
}

/// Removes the cookie `name` from every `Cookie` header, keeping the others as
/// they were; a header left empty goes.
fn without_cookie(headers: &mut HeaderMap, name: &str) {
    let kept: Vec<String> = headers
        .get_all(::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .filter(|pair| pair.split_once('=').is_none_or(|(n, _)| n.trim() != name))
                .map(str::trim)
                .filter(|pair| !pair.is_empty())
                .collect::<Vec<_>>()
                .join("; ")
        })
        .filter(|v| !v.is_empty())
        .collect();
    headers.remove(::http::header::COOKIE);
    for v in kept {
        if let Ok(v) = HeaderValue::from_str(&v) {
            headers.append(::http::header::COOKIE, v);
        }
    }
}

fn decode_form(s: &str) -> Option<String> {
    let s = s.replace('+', " ");
    percent_encoding::percent_decode_str(&s)
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

/// The URI without one query parameter (everything else byte for byte).
fn without_query_param(uri: &Uri, name: &str) -> Option<Uri> {
    let query = uri.query()?;
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| {
            let k = pair.split_once('=').map_or(*pair, |(k, _)| k);
            decode_form(k).as_deref() != Some(name)
        })
        .collect();
    let pq = if kept.is_empty() {
        uri.path().to_owned()
    } else {
        format!("{}?{}", uri.path(), kept.join("&"))
    };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(pq.parse().ok()?);
    Uri::from_parts(parts).ok()
}

/// Claims as rate-limit keys (`key: {claim: NAME}`): strings as they are, other
/// JSON values in their JSON form.
impl crate::ratelimit::Claims for Identity {
    fn claim(&self, name: &str) -> Option<std::borrow::Cow<'_, str>> {
        match self.claims.as_ref()?.get(name)? {
            serde_json::Value::String(s) => Some(std::borrow::Cow::Borrowed(s.as_str())),
            serde_json::Value::Null => None,
            other => Some(std::borrow::Cow::Owned(other.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scheme(location: CredentialIn, param: &str, prefix: Option<&str>) -> SchemeCfg {
        SchemeCfg {
            name: "s".into(),
            provider: 0,
            location,
            param: param.into(),
            prefix: prefix.map(str::to_owned),
        }
    }

    fn credential<'r>(
        scheme: &SchemeCfg,
        headers: &'r HeaderMap,
        uri: &'r Uri,
    ) -> Option<Cow<'r, str>> {
        let name = HeaderName::from_bytes(scheme.param.as_bytes()).ok();
        super::credential(scheme, name.as_ref(), headers, uri)
    }

    /// `header_token` (bytes, asked before the text check) cuts exactly where the
    /// rule on text did: `trim`, then the prefix up to the first space (any
    /// case), then `trim_start`; `Authorization` without the prefix is no
    /// bearer token.
    #[test]
    fn header_token_cuts_where_the_text_rule_did() {
        fn text_rule<'a>(scheme: &SchemeCfg, value: &'a str) -> Option<&'a str> {
            let value = value.trim();
            let Some(prefix) = &scheme.prefix else {
                return Some(value);
            };
            match value.split_once(' ') {
                Some((p, rest)) if p.eq_ignore_ascii_case(prefix) => Some(rest.trim_start()),
                _ if scheme.param == "authorization" => None,
                _ => Some(value),
            }
        }
        let schemes = [
            scheme(CredentialIn::Header, "authorization", Some("Bearer")),
            scheme(CredentialIn::Header, "x-token", Some("Bearer")),
            scheme(CredentialIn::Header, "x-api-key", None),
        ];
        let parts = [
            "", " ", "\t", "  \t ", "Bearer", "bEARER", "Basic", "Bearer\t", "a.b.c", "x y",
        ];
        let mut cases = 0;
        for a in parts {
            for b in parts {
                for c in parts {
                    let value = format!("{a}{b}{c}");
                    for s in &schemes {
                        let got = header_token(s, value.as_bytes()).map(|r| &value[r]);
                        assert_eq!(got, text_rule(s, &value), "{value:?} for {}", s.param);
                        cases += 1;
                    }
                }
            }
        }
        assert_eq!(cases, 3000);
    }

    #[test]
    fn credentials_from_headers_and_query() {
        let bearer = scheme(CredentialIn::Header, "authorization", Some("Bearer"));
        let mut h = HeaderMap::new();
        let uri: Uri = "/p?a=1&api_key=k%2By&b=2".parse().unwrap();
        assert_eq!(credential(&bearer, &h, &uri), None);
        h.insert("authorization", "bearer abc".parse().unwrap());
        assert_eq!(credential(&bearer, &h, &uri).as_deref(), Some("abc"));
        h.insert("authorization", "Basic abc".parse().unwrap());
        assert_eq!(credential(&bearer, &h, &uri), None);
        h.append("authorization", "Bearer x".parse().unwrap());
        assert_eq!(credential(&bearer, &h, &uri).as_deref(), Some(""));
        let custom = scheme(CredentialIn::Header, "x-token", Some("Bearer"));
        h.insert("x-token", "raw".parse().unwrap());
        assert_eq!(credential(&custom, &h, &uri).as_deref(), Some("raw"));
        let q = scheme(CredentialIn::Query, "api_key", None);
        assert_eq!(credential(&q, &h, &uri).as_deref(), Some("k+y"));
        assert_eq!(without_query_param(&uri, "api_key").unwrap(), "/p?a=1&b=2");
        let only: Uri = "/p?api_key=x".parse().unwrap();
        assert_eq!(without_query_param(&only, "api_key").unwrap(), "/p");
    }

    #[test]
    fn cookie_credentials_are_read_and_stripped_alone() {
        let path: Uri = "/p".parse().unwrap();
        let c = scheme(CredentialIn::Cookie, "session_key", None);
        let mut h = HeaderMap::new();
        h.append(
            "cookie",
            HeaderValue::from_static("theme=dark; session_key=k1"),
        );
        h.append("cookie", HeaderValue::from_static("lang=en"));
        assert_eq!(credential(&c, &h, &path).as_deref(), Some("k1"));
        without_cookie(&mut h, "session_key");
        let left: Vec<_> = h
            .get_all("cookie")
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(left, ["theme=dark", "lang=en"]);
        assert_eq!(credential(&c, &h, &path), None);
        let mut two = HeaderMap::new();
        two.append(
            "cookie",
            HeaderValue::from_static("session_key=\"a\"; session_key=b"),
        );
        assert_eq!(credential(&c, &two, &path).as_deref(), Some(""));
        let mut only = HeaderMap::new();
        only.append("cookie", HeaderValue::from_static("session_key=k1"));
        without_cookie(&mut only, "session_key");
        assert!(only.get("cookie").is_none());
    }
}
