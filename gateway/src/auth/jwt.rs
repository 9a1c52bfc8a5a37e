//! Signed JWTs (RFC 7519 / 7515, compact form) checked against keys the bundle
//! names.
//!
//! The verification key is chosen by our configuration and the token's `kid`,
//! never by the token's `alg` alone: `alg` must be on the provider's allow-list
//! *and* fit the chosen key's type, so an RSA public key can never be used as an
//! HMAC secret, and `none` is not an algorithm at all. Keys embedded in the token
//! (`jwk`, `jku`, `x5u`, `x5c`) are ignored; a `crit` header is refused because we
//! implement no extension. `exp` is required, `nbf` honoured, `iss` compared
//! exactly, `aud` checked when configured, with a small leeway. Oversized tokens
//! are refused before any decoding. Verified tokens are cached by hash until they
//! expire.
//!
//! Keys come from the bundle (baked at build time), a runtime-mounted HMAC secret,
//! and optionally a JWKS URL fetched at start, refreshed on a timer and when an
//! unknown `kid` arrives (at most every `jwksMinRefreshIntervalMs`). A failed fetch
//! keeps the keys we had; with no key, every token fails (closed). The JWKS URL
//! may instead come from an OpenID Connect discovery document (its `jwks_uri`),
//! read before the first JWKS fetch and again before each one until it answers;
//! a document naming another `issuer` than the provider's gives no keys (OpenID
//! Connect Discovery 1.0 §4.3).
//!
//! Never: trust anything in the header beyond `alg`, `kid` and `crit`; accept a
//! token whose signature was not checked; tell the client which check failed.

use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::Full;
use jsonwebtoken::DecodingKey;
use serde_json::Value;

use super::cache::{CredentialKey, TokenCache};
use super::claims::{self, ClaimSet, ClaimValue, Lookup};
use super::http::{HttpClient, fetch};
use super::jws::{self, Header};
use super::rsa::RsaKey;
use super::{Failure, Identity};
use crate::bundle::{JwtCfg, KeyFamily, parse_jwk, parse_jwt_key};

/// Longest a verified token stays cached, whatever its `exp`.
const MAX_CACHE_TTL: Duration = Duration::from_secs(600);
/// Largest JWKS (or discovery) document accepted.
const MAX_JWKS_BYTES: usize = 1 << 20;
/// Most keys one token's signature is tried against.
const MAX_CANDIDATES: usize = 8;

/// What the signature check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verified {
    Yes,
    /// No key verified it; `kid_known`: the token's `kid` named one of our keys.
    No {
        kid_known: bool,
    },
}

/// One verification key with the algorithms it may verify.
#[derive(Clone)]
pub struct Key {
    pub kid: Option<String>,
    pub family: KeyFamily,
    pub key: DecodingKey,
    /// An RSA key, parsed once for the RSA algorithms (`key` then serves nothing).
    pub rsa: Option<Arc<RsaKey>>,
}

pub struct JwtVerifier {
    pub name: Arc<str>,
    pub cfg: JwtCfg,
    /// Keys from the bundle and the HMAC secret: never change.
    fixed: Vec<Key>,
    /// Keys from `jwksUrl`, replaced as a whole on each successful fetch.
    fetched: RwLock<Arc<Vec<Key>>>,
    /// The `jwks_uri` of the discovery document, once it answered.
    discovered: OnceLock<String>,
    cache: TokenCache<Arc<Identity>>,
    client: HttpClient,
    /// When the JWKS URL was last asked (success or not), for rate limiting.
    last_fetch: Mutex<Option<Instant>>,
    /// One fetch at a time.
    fetching: tokio::sync::Mutex<()>,
}

impl JwtVerifier {
    pub fn new(name: Arc<str>, cfg: JwtCfg, client: HttpClient) -> Result<Self, String> {
        let mut fixed = Vec::new();
        for (i, k) in cfg.keys.iter().enumerate() {
            let (kid, family, key) = parse_jwt_key(k).map_err(|e| format!("key {i}: {e}"))?;
            let rsa = RsaKey::from_jwt_key(k).map(Arc::new);
            fixed.push(Key {
                kid,
                family,
                key,
                rsa,
            });
        }
        if let Some(path) = &cfg.hmac_secret_file {
            let secret = std::fs::read(path)
                .map_err(|e| format!("cannot read the HMAC secret file `{path}`: {e}"))?;
            let secret = trim_newline(&secret);
            if secret.len() < 32 {
                return Err(format!(
                    "the HMAC secret in `{path}` is {} bytes; use at least 32",
                    secret.len()
                ));
            }
            fixed.push(Key {
                kid: None,
                family: KeyFamily::Hmac,
                key: DecodingKey::from_secret(secret),
                rsa: None,
            });
        }
        Ok(Self {
            cache: TokenCache::new(cfg.cache_capacity),
            name,
            cfg,
            fixed,
            fetched: RwLock::new(Arc::new(Vec::new())),
            discovered: OnceLock::new(),
            client,
            last_fetch: Mutex::new(None),
            fetching: tokio::sync::Mutex::new(()),
        })
    }

    /// Whether keys are fetched: a `jwksUrl`, or a discovery document naming one.
    fn fetches_keys(&self) -> bool {
        self.cfg.jwks_url.is_some() || self.cfg.discovery_url.is_some()
    }

    /// Fetches the JWKS once and starts the refresh timer (when a URL is set).
    pub async fn start(self: &Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        let url = self
            .cfg
            .jwks_url
            .as_ref()
            .or(self.cfg.discovery_url.as_ref())?;
        if url.starts_with("http://") {
            tracing::warn!(provider = %self.name, url = %url, "the JWKS (or discovery) URL is not https: keys can be forged on the way");
        }
        self.refresh(true).await;
        let me = Arc::downgrade(self);
        let every = self.cfg.jwks_refresh;
        Some(tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(me) = me.upgrade() else { return };
                me.refresh(true).await;
            }
        }))
    }

    /// Fetches the JWKS, unless one was fetched within the minimum interval (and
    /// `force` is not set). Returns whether new keys were installed.
    pub async fn refresh(&self, force: bool) -> bool {
        if !self.fetches_keys() {
            return false;
        }
        let _one = self.fetching.lock().await;
        {
            let mut last = self.last_fetch.lock().unwrap_or_else(|e| e.into_inner());
            if !force && last.is_some_and(|t| t.elapsed() < self.cfg.jwks_min_refresh_interval) {
                return false;
            }
            *last = Some(Instant::now());
        }
        let url = match (&self.cfg.jwks_url, self.discovered.get()) {
            (Some(url), _) | (None, Some(url)) => url.as_str(),
            (None, None) => match self.discover().await {
                Ok(url) => self.discovered.get_or_init(|| url).as_str(),
                Err(why) => {
                    tracing::warn!(provider = %self.name, error = %why, "OpenID Connect discovery failed; no JWKS URL yet");
                    return false;
                }
            },
        };
        let outcome = self.get_json(url).await.and_then(|body| parse_jwks(&body));
        match outcome {
            Ok(keys) => {
                tracing::info!(provider = %self.name, keys = keys.len(), "JWKS fetched");
                *self.fetched.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(keys);
                true
            }
            Err(why) => {
                // Keep what we had: an IdP outage must not log everybody out.
                tracing::warn!(provider = %self.name, error = %why, "JWKS fetch failed; keeping the previous keys");
                false
            }
        }
    }

    /// A JSON document from the IdP (the JWKS, the discovery document): a
    /// success status within the JWKS timeout and size limit.
    async fn get_json(&self, url: &str) -> Result<Bytes, String> {
        let req = http::Request::get(url)
            .header(http::header::ACCEPT, "application/json")
            .body(Full::new(Bytes::new()))
            .map_err(|e| format!("bad URL: {e}"))?;
        match fetch(&self.client, req, self.cfg.jwks_timeout, MAX_JWKS_BYTES).await {
            Ok((status, body)) if status.is_success() => Ok(body),
            Ok((status, _)) => Err(format!("status {status}")),
            Err(e) => Err(e.to_string()),
        }
    }

    /// The `jwks_uri` of the provider's discovery document, which must name the
    /// provider's issuer.
    async fn discover(&self) -> Result<String, String> {
        let Some(url) = &self.cfg.discovery_url else {
            return Err("no discovery URL".into());
        };
        let body = self
            .get_json(url)
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        #[derive(serde::Deserialize)]
        struct Discovery {
            issuer: String,
            jwks_uri: String,
        }
        let d: Discovery = serde_json::from_slice(&body)
            .map_err(|e| format!("{url}: not a discovery document ({e})"))?;
        if d.issuer != self.cfg.issuer {
            return Err(format!(
                "{url} is the document of issuer `{}`, not of this provider's `{}`",
                d.issuer, self.cfg.issuer
            ));
        }
        match d.jwks_uri.parse::<http::Uri>() {
            Ok(u) if matches!(u.scheme_str(), Some("https" | "http")) && u.host().is_some() => {
                Ok(d.jwks_uri)
            }
            _ => Err(format!(
                "{url}: `jwks_uri` `{}` is not an https URL",
                d.jwks_uri
            )),
        }
    }

    /// Verifies a compact JWT and returns who it names.
    pub async fn verify(&self, token: &str) -> Result<Arc<Identity>, Failure> {
        self.verify_keyed(token, None).await
    }

    /// Whether verified tokens are cached (`cacheSize` above 0).
    pub fn caches(&self) -> bool {
        self.cache.enabled()
    }

    /// The identity cached for exactly these bytes, or (on a miss) the key they
    /// are cached under, for [`Self::verify_keyed`]; `Err(None)`: no cache, or
    /// bytes no token can be. Takes bytes whose text was not checked: an entry
    /// exists only for bytes that were checked and verified before.
    pub fn cached(&self, token: &[u8]) -> Result<Arc<Identity>, Option<CredentialKey>> {
        if !self.cache.enabled() || token.is_empty() || token.len() > self.cfg.max_token_bytes {
            return Err(None);
        }
        let key = self.cache.key(token);
        self.cache.get(&key).ok_or(Some(key))
    }

    /// [`Self::verify`], with the cache key of `token` when [`Self::cached`]
    /// already missed on it (no second hash, no second lookup).
    pub async fn verify_keyed(
        &self,
        token: &str,
        missed: Option<CredentialKey>,
    ) -> Result<Arc<Identity>, Failure> {
        if token.is_empty() || token.len() > self.cfg.max_token_bytes {
            return Err(Failure::Invalid);
        }
        let hash = match missed {
            Some(key) => Some(key),
            // No cache (cacheSize 0): no key to compute either.
            None => {
                let hash = self
                    .cache
                    .enabled()
                    .then(|| self.cache.key(token.as_bytes()));
                if let Some(hit) = hash.and_then(|h| self.cache.get(&h)) {
                    return Ok(hit);
                }
                hash
            }
        };
        // The token is taken apart once; the payload stays encoded until the
        // signature over it has been checked.
        let parts = jws::split(token)?;
        let mut buf = Vec::new();
        let header = jws::header(parts.header, &mut buf)?;
        if !self.cfg.algorithms.contains(&header.alg) {
            return Err(Failure::Invalid);
        }
        let mut verified = self.verify_signature(&header, parts.signing_input, parts.signature);
        if verified == (Verified::No { kid_known: false })
            && header.kid.is_some()
            && self.fetches_keys()
        {
            // An unknown `kid` may be a rotated key: look again, at most so often.
            if self.refresh(false).await {
                verified = self.verify_signature(&header, parts.signing_input, parts.signature);
            }
        }
        if verified != Verified::Yes {
            return Err(Failure::Invalid);
        }
        // One pass over the payload keeps what the checks and the identity
        // read; the whole set is parsed later only if a lookup asks for it.
        let payload = jws::decode_into(parts.payload, &mut buf)?;
        let members =
            claims::read(payload, &|name| self.reads(name)).map_err(|_| Failure::Invalid)?;
        let expires = self.check_claims(&members)?;
        let identity = Arc::new(self.identity(&members, payload));
        if let Some(hash) = hash {
            let ttl = expires.min(MAX_CACHE_TTL);
            self.cache
                .insert(hash, identity.clone(), Instant::now() + ttl);
        }
        Ok(identity)
    }

    /// Checks the signature with the keys that may verify this header: right
    /// family for `alg`; the exact `kid` when the token names one we know, else
    /// our keys without a `kid`; at most [`MAX_CANDIDATES`] of them. Walks the
    /// keys in place (nothing is cloned or collected).
    fn verify_signature(&self, header: &Header, input: &str, signature: &str) -> Verified {
        let fetched = self
            .fetched
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let usable = || {
            self.fixed
                .iter()
                .chain(fetched.iter())
                .filter(|k| k.family.allows(header.alg))
        };
        let kid = header.kid.as_deref();
        let kid_known = kid.is_some() && usable().any(|k| k.kid.as_deref() == kid);
        let wanted = if kid_known { kid } else { None };
        // The signature decoded once for the parsed RSA keys (jsonwebtoken
        // decodes it itself for the others).
        let mut decoded: Option<Option<Vec<u8>>> = None;
        // `family.allows` was checked: the key type fits the algorithm, which
        // `crypto::verify` relies on.
        let ok = !signature.is_empty()
            && usable()
                .filter(|k| k.kid.as_deref() == wanted)
                .take(MAX_CANDIDATES)
                .any(|k| match &k.rsa {
                    Some(rsa) => decoded
                        .get_or_insert_with(|| jws::decode(signature))
                        .as_deref()
                        .and_then(|sig| rsa.verify(header.alg, input.as_bytes(), sig))
                        .unwrap_or(false),
                    None => jsonwebtoken::crypto::verify(
                        signature,
                        input.as_bytes(),
                        &k.key,
                        header.alg,
                    )
                    .unwrap_or(false),
                });
        if ok {
            Verified::Yes
        } else {
            Verified::No { kid_known }
        }
    }

    /// Whether the checks or the identity read the member `name`.
    fn reads(&self, name: &str) -> bool {
        matches!(name, "exp" | "nbf" | "iss" | "aud")
            || claims::CONSUMER_CLAIMS.contains(&name)
            || self.cfg.scope_claims.iter().any(|c| c == name)
            || self.cfg.consumer_claim.as_deref() == Some(name)
            || self.cfg.claim_headers.iter().any(|(c, _)| c == name)
    }

    /// `exp`, `nbf`, `iss`, `aud`; returns how long the token stays valid.
    fn check_claims(&self, claims: &dyn Lookup) -> Result<Duration, Failure> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        let leeway = self.cfg.leeway.as_secs_f64();
        // NumericDate claims come from the token: any size, sign or type. A
        // non-number is invalid; a huge one is merely far away (never a panic).
        let exp = claims
            .member("exp")
            .and_then(|e| e.as_f64())
            .filter(|e| e.is_finite())
            .ok_or(Failure::Invalid)?;
        if exp + leeway <= now {
            return Err(Failure::Invalid);
        }
        if let Some(nbf) = claims.member("nbf") {
            let nbf = nbf
                .as_f64()
                .filter(|n| n.is_finite())
                .ok_or(Failure::Invalid)?;
            if nbf - leeway > now {
                return Err(Failure::Invalid);
            }
        }
        if claims.member("iss").as_ref().and_then(|i| i.as_str()) != Some(self.cfg.issuer.as_str())
        {
            return Err(Failure::Invalid);
        }
        if !self.cfg.audiences.is_empty() {
            let ok = match claims.member("aud") {
                Some(ClaimValue::String(a)) => self.cfg.audiences.iter().any(|x| *x == a),
                Some(ClaimValue::Array(list)) => list
                    .iter()
                    .filter_map(ClaimValue::as_str)
                    .any(|a| self.cfg.audiences.iter().any(|x| x == a)),
                _ => false,
            };
            if !ok {
                return Err(Failure::Invalid);
            }
        }
        Ok(seconds_until(exp, now))
    }

    fn identity(&self, members: &dyn Lookup, payload: &[u8]) -> Identity {
        let consumer = claims::consumer_of(members, self.cfg.consumer_claim.as_deref())
            .unwrap_or_else(|| self.name.to_string());
        Identity {
            provider: self.name.clone(),
            consumer: consumer.into(),
            scopes: claims::scopes_of(members, &self.cfg.scope_claims),
            headers: claims::claim_headers(members, &self.cfg.claim_headers),
            claims: Some(ClaimSet::from_payload(payload)),
        }
    }
}

/// Time from `now` to `deadline` (both Unix seconds, as in a NumericDate claim),
/// saturating: zero when past, `Duration::MAX` when too far to represent. Never
/// panics, whatever the claim held (`Duration::from_secs_f64` would, for `1e300`).
pub fn seconds_until(deadline: f64, now: f64) -> Duration {
    let left = deadline - now;
    if left.is_nan() || left <= 0.0 {
        return Duration::ZERO;
    }
    Duration::try_from_secs_f64(left).unwrap_or(Duration::MAX)
}

/// The usable signing keys of a JWKS document; keys we cannot use are skipped.
pub fn parse_jwks(body: &[u8]) -> Result<Vec<Key>, String> {
    let doc: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let keys = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("no `keys` array")?;
    let mut out = Vec::new();
    for k in keys {
        match parse_jwk(k) {
            Ok((kid, family, key)) => out.push(Key {
                kid,
                family,
                key,
                rsa: RsaKey::from_jwk(k).map(Arc::new),
            }),
            Err(why) => tracing::debug!(error = %why, "JWKS key skipped"),
        }
    }
    if out.is_empty() {
        return Err("no usable signing key".into());
    }
    Ok(out)
}

fn trim_newline(b: &[u8]) -> &[u8] {
    let mut end = b.len();
    while end > 0 && matches!(b[end - 1], b'\n' | b'\r') {
        end -= 1;
    }
    &b[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_tokens_are_invalid() {
        for t in [
            "",
            "a",
            "a.b",
            "a.b.c.d",
            "e30.e30.",
            "eyJhbGciOiJub25lIn0.e30.",
            "eyJhbGciOiJSUzI1NiIsImNyaXQiOlsiYiJdfQ.e30.x",
        ] {
            // Includes `alg: none` (not an algorithm) and a `crit` header.
            let parsed =
                jws::split(t).and_then(|c| jws::header(c.header, &mut Vec::new()).map(drop));
            assert!(parsed.is_err(), "{t}");
        }
    }

    #[test]
    fn numeric_dates_saturate_instead_of_panicking() {
        assert_eq!(seconds_until(1e300, 1.0), Duration::MAX);
        assert_eq!(seconds_until(f64::INFINITY, 1.0), Duration::MAX);
        assert_eq!(seconds_until(f64::NAN, 1.0), Duration::ZERO);
        assert_eq!(seconds_until(-1e300, 1.0), Duration::ZERO);
        assert_eq!(seconds_until(11.5, 1.0), Duration::from_millis(10_500));
    }
}
