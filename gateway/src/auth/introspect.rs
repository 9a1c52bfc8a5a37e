//! Opaque OAuth2 access tokens, checked by RFC 7662 token introspection.
//!
//! The gateway POSTs `token=…` to the configured endpoint with its own client
//! credentials (HTTP Basic, from files mounted at runtime). An active token's
//! answer is cached until its `exp` (at most `cacheTtlMs`); an inactive token is
//! cached for `negativeCacheTtlMs`, so a client retrying a bad token does not
//! hammer the authorization server. Requests that arrive with the same new token
//! while its introspection is under way wait for that one call (single flight),
//! and at most [`MAX_CONCURRENT_CALLS`] calls run at once; a request that cannot
//! get a slot within the provider's timeout gets 503.
//!
//! Never: treat a timeout, a transport error, a non-200 answer or a malformed body
//! as anything but "cannot decide" (503); cache such a non-answer; log the token.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use http_body_util::Full;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Map, Value};

use super::cache::{CredentialKey, TokenCache};
use super::claims::{ClaimSet, claim_headers, consumer_of, scopes_of};
use super::http::{HttpClient, fetch};
use super::jwt::seconds_until;
use super::{Failure, Identity};
use crate::bundle::IntrospectionCfg;

const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// Introspection calls in flight at once, per provider.
pub const MAX_CONCURRENT_CALLS: usize = 64;

/// One answer shared by every request waiting for the same token.
type Flight = Arc<tokio::sync::OnceCell<Result<Arc<Identity>, Failure>>>;

/// `application/x-www-form-urlencoded` (WHATWG): all but `*-._` and alphanumerics.
const FORM: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'*')
    .remove(b'-')
    .remove(b'.')
    .remove(b'_');

pub struct Introspector {
    pub name: Arc<str>,
    pub cfg: IntrospectionCfg,
    client: HttpClient,
    /// `Basic base64(urlencode(id):urlencode(secret))` (RFC 6749 §2.3.1).
    authorization: http::HeaderValue,
    /// `None`: known inactive.
    cache: TokenCache<Option<Arc<Identity>>>,
    /// Introspections under way, by credential hash.
    flights: Mutex<HashMap<CredentialKey, Flight>>,
    /// Caps the calls to the endpoint.
    calls: tokio::sync::Semaphore,
}

fn read_secret(path: &str, what: &str) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the {what} file `{path}`: {e}"))?;
    let text = text.trim_end_matches(['\n', '\r']).to_owned();
    if text.is_empty() {
        return Err(format!("the {what} file `{path}` is empty"));
    }
    Ok(text)
}

impl Introspector {
    pub fn new(name: Arc<str>, cfg: IntrospectionCfg, client: HttpClient) -> Result<Self, String> {
        let id = read_secret(&cfg.client_id_file, "client id")?;
        let secret = read_secret(&cfg.client_secret_file, "client secret")?;
        let enc = |s: &str| utf8_percent_encode(s, FORM).to_string();
        let basic = STANDARD.encode(format!("{}:{}", enc(&id), enc(&secret)));
        let mut authorization = http::HeaderValue::from_str(&format!("Basic {basic}"))
            .map_err(|_| "the client credentials are not valid header text".to_owned())?;
        authorization.set_sensitive(true);
        Ok(Self {
            cache: TokenCache::new(cfg.cache_capacity),
            name,
            cfg,
            client,
            authorization,
            flights: Mutex::new(HashMap::new()),
            calls: tokio::sync::Semaphore::new(MAX_CONCURRENT_CALLS),
        })
    }

    pub async fn check(&self, token: &str) -> Result<Arc<Identity>, Failure> {
        if token.is_empty() || token.len() > self.cfg.max_token_bytes {
            return Err(Failure::Invalid);
        }
        let key = self.cache.key(token.as_bytes());
        if let Some(hit) = self.cache.get(&key) {
            return hit.ok_or(Failure::Invalid);
        }
        let flight = self
            .flights
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key)
            .or_default()
            .clone();
        // If the request that started the call goes away, the next waiter runs it.
        let result = flight
            .get_or_init(|| async {
                // A flight that just landed may have filled the cache.
                match self.cache.get(&key) {
                    Some(hit) => hit.ok_or(Failure::Invalid),
                    None => self.introspect(token, key).await,
                }
            })
            .await
            .clone();
        let mut flights = self.flights.lock().unwrap_or_else(|e| e.into_inner());
        if flights.get(&key).is_some_and(|f| Arc::ptr_eq(f, &flight)) {
            flights.remove(&key);
        }
        result
    }

    /// One call to the endpoint, within the concurrency cap; caches the answer.
    async fn introspect(&self, token: &str, key: CredentialKey) -> Result<Arc<Identity>, Failure> {
        let Ok(Ok(_slot)) = tokio::time::timeout(self.cfg.timeout, self.calls.acquire()).await
        else {
            tracing::warn!(provider = %self.name, "introspection calls at capacity");
            return Err(Failure::Unavailable);
        };
        let body = format!(
            "token={}&token_type_hint=access_token",
            utf8_percent_encode(token, FORM)
        );
        let req = http::Request::post(self.cfg.endpoint.clone())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(ACCEPT, "application/json")
            .header(AUTHORIZATION, self.authorization.clone())
            .body(Full::new(Bytes::from(body)))
            .map_err(|_| Failure::Unavailable)?;
        let (status, body) = fetch(&self.client, req, self.cfg.timeout, MAX_RESPONSE_BYTES)
            .await
            .map_err(|e| {
                tracing::warn!(provider = %self.name, error = %e, "introspection failed");
                Failure::Unavailable
            })?;
        if status != http::StatusCode::OK {
            tracing::warn!(provider = %self.name, %status, "introspection endpoint refused");
            return Err(Failure::Unavailable);
        }
        let answer: Map<String, Value> = serde_json::from_slice(&body).map_err(|_| {
            tracing::warn!(provider = %self.name, "introspection answer is not a JSON object");
            Failure::Unavailable
        })?;
        let active = match answer.get("active") {
            Some(Value::Bool(b)) => *b,
            _ => {
                tracing::warn!(provider = %self.name, "introspection answer has no boolean `active`");
                return Err(Failure::Unavailable);
            }
        };
        let now = Instant::now();
        if !active {
            self.cache
                .insert(key, None, now + self.cfg.negative_cache_ttl);
            return Err(Failure::Invalid);
        }
        let mut ttl = self.cfg.cache_ttl;
        // `exp` as the server sent it: any number, however large or small.
        if let Some(exp) = answer.get("exp").and_then(Value::as_f64) {
            let unix = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs_f64();
            if exp <= unix {
                self.cache
                    .insert(key, None, now + self.cfg.negative_cache_ttl);
                return Err(Failure::Invalid);
            }
            ttl = ttl.min(seconds_until(exp, unix));
        }
        let identity = Arc::new(Identity {
            provider: self.name.clone(),
            consumer: consumer_of(&answer, None)
                .unwrap_or_else(|| self.name.to_string())
                .into(),
            scopes: scopes_of(&answer, &mgw_bundle::config::DEFAULT_SCOPE_CLAIMS),
            headers: claim_headers(&answer, &self.cfg.claim_headers),
            claims: Some(ClaimSet::from_map(answer)),
        });
        self.cache.insert(key, Some(identity.clone()), now + ttl);
        Ok(identity)
    }
}
