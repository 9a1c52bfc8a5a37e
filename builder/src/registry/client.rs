//! A blocking client for one registry and a fixed set of repository scopes: the
//! `/v2/` ping that picks the scheme and learns the auth challenge, bearer tokens
//! (fetched, cached, refreshed before they expire and after a `401`), retries with
//! exponential backoff for `408`, `429`, `5xx` and network errors, and the blob and
//! manifest operations `mgw push` and `--base` pulls need.
//!
//! Uploads are streamed from disk in chunks (`PATCH` with `Content-Range`); when a
//! chunk fails, the client asks the registry how much it holds (`GET` on the upload
//! URL) and goes on from there, starting the upload over only when the registry
//! has dropped it. It must never read a blob into memory, retry a request that is
//! not safe to repeat, or put a credential anywhere but an `Authorization` header
//! to the registry or its token realm.

use std::io::{self, Read};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::blocking::{Body, RequestBuilder, Response};
use reqwest::header::{
    ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, WWW_AUTHENTICATE,
};
use reqwest::{Method, StatusCode, Url};
use sha2::Digest as _;

use super::RegistryError;
use super::auth::{self, Challenge, Credential, Found, Secret};
use super::reference::is_loopback;
use crate::env::Env;
use crate::oci::Digest;

/// Every manifest media type mgw reads, for `Accept`.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";

/// How a [`Client`] behaves.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Allow plain HTTP and unverified TLS for a non-loopback registry.
    pub insecure: bool,
    /// Retries after the first attempt for one request (or one blob upload).
    pub retries: u32,
    /// First backoff delay; doubled each retry (with jitter), capped at 30 s.
    pub backoff: Duration,
    /// Bytes per `PATCH` of a blob upload.
    pub chunk_size: u64,
    /// The environment (credentials, Docker config).
    pub env: Env,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            insecure: false,
            retries: 5,
            backoff: Duration::from_millis(250),
            chunk_size: 16 * 1024 * 1024,
            env: Env::process(),
        }
    }
}

/// Counters of what a client did, for output and tests.
#[derive(Debug, Default)]
pub struct Stats {
    /// Blob bytes sent in upload bodies (including bytes sent again after a failure).
    pub uploaded_bytes: AtomicU64,
    /// Requests sent.
    pub requests: AtomicU64,
    /// Requests (or upload chunks) retried after a transient failure.
    pub retries: AtomicU64,
    /// Bearer tokens fetched.
    pub tokens: AtomicU64,
}

/// What became of a blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BlobAction {
    /// The registry had it.
    Skipped,
    /// Mounted from another repository of the same registry.
    Mounted,
    /// Uploaded.
    Uploaded,
}

enum AuthState {
    Anonymous,
    Basic(Secret),
    Bearer {
        realm: String,
        service: Option<String>,
        token: Option<(Secret, Instant)>,
    },
}

/// A client for one registry.
pub struct Client {
    http: reqwest::blocking::Client,
    /// The registry as named in references (for messages and credentials).
    registry: String,
    base: Url,
    credential: Option<Found>,
    scopes: Vec<String>,
    auth: Mutex<AuthState>,
    opts: ClientOptions,
    pub stats: Arc<Stats>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("registry", &self.registry)
            .field("base", &self.base.as_str())
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

fn network(registry: &str, what: &str, e: &reqwest::Error) -> RegistryError {
    // The chain, without the URL's query (upload state), for a readable message.
    let mut message = e.without_url_ref().to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    RegistryError::Network {
        registry: registry.to_owned(),
        what: what.to_owned(),
        message,
    }
}

trait WithoutUrl {
    fn without_url_ref(&self) -> String;
}
impl WithoutUrl for reqwest::Error {
    fn without_url_ref(&self) -> String {
        let kind = if self.is_timeout() {
            "timed out"
        } else if self.is_connect() {
            "connection failed"
        } else if self.is_body() || self.is_request() {
            "request failed"
        } else {
            "error"
        };
        kind.to_owned()
    }
}

/// The schemes to try, in order: `https`, then `http` only for a loopback
/// registry or with `--insecure`.
fn schemes(api_host: &str, insecure: bool) -> &'static [&'static str] {
    if insecure || is_loopback(api_host) {
        &["https", "http"]
    } else {
        &["https"]
    }
}

fn transient_status(s: StatusCode) -> bool {
    matches!(s.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

/// `Range: 0-1234` → 1235 (the bytes the registry holds). Distribution answers
/// `0-0` for an empty upload as well as for one byte; mgw reads it as empty (the
/// worst case is one byte sent again, which the registry refuses and mgw then
/// starts over).
fn range_end(headers: &HeaderMap) -> Option<u64> {
    let v = headers.get("range")?.to_str().ok()?;
    let (_, end) = v.trim().trim_start_matches("bytes=").split_once('-')?;
    match end.trim().parse::<u64>().ok()? {
        0 => Some(0),
        e => Some(e + 1),
    }
}

impl Client {
    /// Connects to `registry` (as in a reference; `api_host` is where its API is,
    /// which differs only for Docker Hub) for `scopes` (`repository:team/gw:pull,push`):
    /// pings `/v2/`, choosing `https`, or `http` for loopback (or `--insecure`) when
    /// TLS fails, and learns how the registry authenticates.
    pub fn connect(
        registry: &str,
        api_host: &str,
        scopes: Vec<String>,
        opts: ClientOptions,
    ) -> Result<Client, RegistryError> {
        let http = reqwest::blocking::Client::builder()
            .user_agent(concat!("mgw/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(30))
            .timeout(Duration::from_secs(120))
            .tcp_keepalive(Duration::from_secs(30))
            .danger_accept_invalid_certs(opts.insecure)
            .build()
            .map_err(|e| network(registry, "setting up the HTTP client", &e))?;
        let credential = auth::lookup(registry, &opts.env)?;
        let schemes = schemes(api_host, opts.insecure);
        let mut last_err = None;
        for (i, scheme) in schemes.iter().enumerate() {
            let base = Url::parse(&format!("{scheme}://{api_host}/")).map_err(|e| {
                RegistryError::Protocol {
                    registry: registry.to_owned(),
                    message: format!("`{api_host}` is not a host: {e}"),
                }
            })?;
            let client = Client {
                http: http.clone(),
                registry: registry.to_owned(),
                base,
                credential: credential.clone(),
                scopes: scopes.clone(),
                auth: Mutex::new(AuthState::Anonymous),
                opts: opts.clone(),
                stats: Arc::new(Stats::default()),
            };
            // With `http` to fall back to, a failing `https` is most likely a plain
            // HTTP registry: do not wait through retries to find out.
            let last = i + 1 == schemes.len();
            match client.ping(last) {
                Ok(()) => return Ok(client),
                Err(e @ RegistryError::Network { .. }) => {
                    tracing::debug!(registry, scheme, error = %e, "ping failed");
                    last_err = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last_err.expect("at least one scheme"))
    }

    /// The registry as named in references.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// `GET /v2/`: 200 means anonymous access, 401 carries the challenge.
    fn ping(&self, retry: bool) -> Result<(), RegistryError> {
        let url = self.url("/v2/");
        let what = "`GET /v2/`";
        let resp = self.retrying(what, retry, || self.http.get(url.clone()), false)?;
        match resp.status() {
            s if s.is_success() => Ok(()),
            StatusCode::UNAUTHORIZED => self.learn_challenge(&resp, what),
            _ => Err(self.refused(what, resp)),
        }
    }

    fn url(&self, path: &str) -> Url {
        self.base.join(path).expect("registry paths are valid URLs")
    }

    /// Resolves a `Location` header (absolute or relative) against the registry.
    fn location(&self, resp: &Response, what: &str) -> Result<Url, RegistryError> {
        let loc = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| RegistryError::Protocol {
                registry: self.registry.clone(),
                message: format!("the answer to {what} has no `Location` header"),
            })?;
        self.base.join(loc).map_err(|e| RegistryError::Protocol {
            registry: self.registry.clone(),
            message: format!("the answer to {what} has an invalid `Location`: {e}"),
        })
    }

    /// Turns a registry's unexpected answer into an error carrying its message.
    fn refused(&self, what: &str, resp: Response) -> RegistryError {
        let status = resp.status();
        let mut body = String::new();
        let _ = resp.take(64 * 1024).read_to_string(&mut body);
        let message = describe_error_body(&body);
        RegistryError::Refused {
            registry: self.registry.clone(),
            what: what.to_owned(),
            status: status.to_string(),
            message,
        }
    }

    fn learn_challenge(&self, resp: &Response, what: &str) -> Result<(), RegistryError> {
        let challenge = resp
            .headers()
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(auth::parse_challenge)
            .ok_or_else(|| RegistryError::Protocol {
                registry: self.registry.clone(),
                message: format!(
                    "{what} answered 401 without a `WWW-Authenticate` challenge mgw understands"
                ),
            })?;
        let state = match challenge {
            Challenge::Basic => match self
                .credential
                .as_ref()
                .and_then(|f| f.credential.basic_header())
            {
                Some(h) => AuthState::Basic(Secret::new(h)),
                None => {
                    return Err(RegistryError::NeedsLogin {
                        registry: self.registry.clone(),
                        what: what.to_owned(),
                    });
                }
            },
            Challenge::Bearer { realm, service, .. } => {
                let realm_url = Url::parse(&realm).map_err(|e| RegistryError::Protocol {
                    registry: self.registry.clone(),
                    message: format!("token realm `{realm}` is not a URL: {e}"),
                })?;
                if realm_url.scheme() != "https"
                    && !(self.opts.insecure || realm_url.host_str().is_some_and(is_loopback))
                {
                    return Err(RegistryError::Insecure { url: realm });
                }
                AuthState::Bearer {
                    realm,
                    service,
                    token: None,
                }
            }
        };
        *self.auth.lock().expect("auth lock") = state;
        Ok(())
    }

    /// The `Authorization` value for the next request, fetching a token if needed.
    fn authorization(&self) -> Result<Option<Secret>, RegistryError> {
        let mut state = self.auth.lock().expect("auth lock");
        match &mut *state {
            AuthState::Anonymous => Ok(None),
            AuthState::Basic(h) => Ok(Some(h.clone())),
            AuthState::Bearer {
                realm,
                service,
                token,
            } => {
                if let Some((t, expires)) = token {
                    if Instant::now() < *expires {
                        return Ok(Some(Secret::new(format!("Bearer {}", t.expose()))));
                    }
                    tracing::debug!(registry = %self.registry, "bearer token expired; refreshing");
                }
                let (t, lifetime) = self.fetch_token(realm, service.as_deref())?;
                // Refresh a little before the registry would refuse it.
                let margin = (lifetime / 10).clamp(Duration::from_secs(1), Duration::from_secs(30));
                *token = Some((t.clone(), Instant::now() + lifetime.saturating_sub(margin)));
                Ok(Some(Secret::new(format!("Bearer {}", t.expose()))))
            }
        }
    }

    fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
    ) -> Result<(Secret, Duration), RegistryError> {
        let what = "a bearer token";
        let mut url = Url::parse(realm).map_err(|e| RegistryError::Protocol {
            registry: self.registry.clone(),
            message: format!("token realm `{realm}` is not a URL: {e}"),
        })?;
        let credential = self.credential.as_ref().map(|f| &f.credential);
        {
            let mut q = url.query_pairs_mut();
            if let Some(s) = service {
                q.append_pair("service", s);
            }
            for scope in &self.scopes {
                q.append_pair("scope", scope);
            }
            if credential.is_some() {
                q.append_pair(
                    "account",
                    match credential {
                        Some(Credential::Basic { username, .. }) => username,
                        _ => "",
                    },
                );
            }
        }
        let build = || -> RequestBuilder {
            match credential {
                Some(Credential::IdentityToken(refresh)) => {
                    let mut form = vec![
                        ("grant_type", "refresh_token".to_owned()),
                        ("client_id", "mgw".to_owned()),
                        ("refresh_token", refresh.expose().to_owned()),
                        ("scope", self.scopes.join(" ")),
                    ];
                    if let Some(s) = service {
                        form.push(("service", s.to_owned()));
                    }
                    self.http.post(url.clone()).form(&form)
                }
                other => {
                    let mut req = self.http.get(url.clone());
                    if let Some(h) = other.and_then(Credential::basic_header) {
                        req = req.header(AUTHORIZATION, h);
                    }
                    req
                }
            }
        };
        let resp = self.retrying(what, true, build, true)?;
        self.stats.tokens.fetch_add(1, Ordering::Relaxed);
        let status = resp.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            let mut body = String::new();
            let _ = resp.take(16 * 1024).read_to_string(&mut body);
            return Err(match &self.credential {
                Some(found) => RegistryError::BadCredentials {
                    registry: self.registry.clone(),
                    source_desc: found.source.clone(),
                    what: what.to_owned(),
                    message: format!(" ({status}{})", describe_error_body(&body)),
                },
                None => RegistryError::NeedsLogin {
                    registry: self.registry.clone(),
                    what: what.to_owned(),
                },
            });
        }
        if !status.is_success() {
            return Err(self.refused(what, resp));
        }
        #[derive(serde::Deserialize)]
        struct TokenAnswer {
            #[serde(default)]
            token: Option<String>,
            #[serde(default)]
            access_token: Option<String>,
            #[serde(default)]
            expires_in: Option<u64>,
        }
        let mut body = Vec::new();
        resp.take(1024 * 1024)
            .read_to_end(&mut body)
            .map_err(|e| RegistryError::Protocol {
                registry: self.registry.clone(),
                message: format!("cannot read the token answer: {e}"),
            })?;
        let answer: TokenAnswer =
            serde_json::from_slice(&body).map_err(|_| RegistryError::Protocol {
                registry: self.registry.clone(),
                message: "the token service's answer is not JSON with a `token`".to_owned(),
            })?;
        let token = answer
            .token
            .or(answer.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| RegistryError::Protocol {
                registry: self.registry.clone(),
                message: "the token service's answer has no `token`".to_owned(),
            })?;
        // The distribution spec's default lifetime is 60 s.
        let lifetime = Duration::from_secs(answer.expires_in.unwrap_or(60).max(1));
        Ok((Secret::new(token), lifetime))
    }

    fn sleep_backoff(&self, attempt: u32, retry_after: Option<Duration>) {
        let base = self.opts.backoff.saturating_mul(1 << attempt.min(10));
        let jitter = base.mul_f64(fastrand::f64() * 0.5);
        let delay = retry_after
            .unwrap_or(base + jitter)
            .min(Duration::from_secs(30));
        std::thread::sleep(delay);
    }

    /// Sends a request built by `build` (called again for each attempt), with auth
    /// and, when `retry`, retries with backoff for transient failures. A `401` is
    /// answered once by (re)authenticating. `bare` sends it without our auth (token
    /// requests carry their own).
    fn retrying(
        &self,
        what: &str,
        retry: bool,
        build: impl Fn() -> RequestBuilder,
        bare: bool,
    ) -> Result<Response, RegistryError> {
        let mut attempt = 0;
        let mut reauthenticated = false;
        loop {
            let mut req = build();
            if !bare {
                if let Some(h) = self.authorization()? {
                    req = req.header(AUTHORIZATION, h.expose());
                }
            }
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            match req.send() {
                Ok(resp) => {
                    let status = resp.status();
                    if status == StatusCode::UNAUTHORIZED && !bare {
                        let had_auth =
                            !matches!(*self.auth.lock().expect("auth lock"), AuthState::Anonymous);
                        let is_basic =
                            matches!(*self.auth.lock().expect("auth lock"), AuthState::Basic(_));
                        if reauthenticated || is_basic {
                            return Err(match &self.credential {
                                Some(found) if had_auth => RegistryError::BadCredentials {
                                    registry: self.registry.clone(),
                                    source_desc: found.source.clone(),
                                    what: what.to_owned(),
                                    message: String::new(),
                                },
                                _ => RegistryError::NeedsLogin {
                                    registry: self.registry.clone(),
                                    what: what.to_owned(),
                                },
                            });
                        }
                        reauthenticated = true;
                        // A new challenge (or an expired token): learn it, fetch anew.
                        self.learn_challenge(&resp, what)?;
                        continue;
                    }
                    if retry && transient_status(status) && attempt < self.opts.retries {
                        let retry_after = resp
                            .headers()
                            .get(reqwest::header::RETRY_AFTER)
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.trim().parse::<u64>().ok())
                            .map(Duration::from_secs);
                        tracing::info!(registry = %self.registry, what, %status, attempt, "transient answer; retrying");
                        self.stats.retries.fetch_add(1, Ordering::Relaxed);
                        self.sleep_backoff(attempt, retry_after);
                        attempt += 1;
                        continue;
                    }
                    return Ok(resp);
                }
                Err(e) if retry && attempt < self.opts.retries && !e.is_builder() => {
                    tracing::info!(registry = %self.registry, what, error = %e.without_url_ref(), attempt, "network error; retrying");
                    self.stats.retries.fetch_add(1, Ordering::Relaxed);
                    self.sleep_backoff(attempt, None);
                    attempt += 1;
                }
                Err(e) => return Err(network(&self.registry, what, &e)),
            }
        }
    }

    fn request(&self, method: Method, url: &Url) -> RequestBuilder {
        self.http.request(method, url.clone())
    }

    // -----------------------------------------------------------------------
    // Manifests
    // -----------------------------------------------------------------------

    /// `HEAD` a manifest: its digest, or `None` when the registry has no such tag
    /// or digest.
    pub fn manifest_digest(
        &self,
        repo: &str,
        reference: &str,
    ) -> Result<Option<Digest>, RegistryError> {
        let url = self.url(&format!("/v2/{repo}/manifests/{reference}"));
        let what = format!("`HEAD /v2/{repo}/manifests/{reference}`");
        let resp = self.retrying(
            &what,
            true,
            || {
                self.request(Method::HEAD, &url)
                    .header(ACCEPT, MANIFEST_ACCEPT)
            },
            false,
        )?;
        match resp.status() {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => {
                let header = resp
                    .headers()
                    .get("docker-content-digest")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<Digest>().ok());
                match header {
                    Some(d) => Ok(Some(d)),
                    // Not every registry sends the header on HEAD: hash the body.
                    None => self
                        .get_manifest(repo, reference)
                        .map(|m| m.map(|(_, _, d)| d)),
                }
            }
            _ => Err(self.refused(&what, resp)),
        }
    }

    /// `GET` a manifest: its bytes, media type and digest (computed from the bytes),
    /// or `None` when absent.
    pub fn get_manifest(
        &self,
        repo: &str,
        reference: &str,
    ) -> Result<Option<(Vec<u8>, String, Digest)>, RegistryError> {
        let url = self.url(&format!("/v2/{repo}/manifests/{reference}"));
        let what = format!("`GET /v2/{repo}/manifests/{reference}`");
        let resp = self.retrying(
            &what,
            true,
            || {
                self.request(Method::GET, &url)
                    .header(ACCEPT, MANIFEST_ACCEPT)
            },
            false,
        )?;
        match resp.status() {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => {
                let media_type = resp
                    .headers()
                    .get(CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .split(';')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_owned();
                let mut bytes = Vec::new();
                resp.take(4 * 1024 * 1024 + 1)
                    .read_to_end(&mut bytes)
                    .map_err(|e| RegistryError::Protocol {
                        registry: self.registry.clone(),
                        message: format!("cannot read the answer to {what}: {e}"),
                    })?;
                if bytes.len() > 4 * 1024 * 1024 {
                    return Err(RegistryError::Protocol {
                        registry: self.registry.clone(),
                        message: format!("the manifest from {what} is larger than 4 MiB"),
                    });
                }
                let digest = Digest::of(&bytes);
                let media_type = if media_type.is_empty() {
                    serde_json::from_slice::<serde_json::Value>(&bytes)
                        .ok()
                        .and_then(|v| v["mediaType"].as_str().map(str::to_owned))
                        .unwrap_or_default()
                } else {
                    media_type
                };
                Ok(Some((bytes, media_type, digest)))
            }
            _ => Err(self.refused(&what, resp)),
        }
    }

    /// `PUT` a manifest under `reference` (a tag or its digest) with its exact
    /// media type. Returns whether the registry answered `OCI-Subject` (it
    /// processed the manifest's `subject`: the referrers API is there).
    pub fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<bool, RegistryError> {
        let url = self.url(&format!("/v2/{repo}/manifests/{reference}"));
        let what = format!("`PUT /v2/{repo}/manifests/{reference}`");
        let body = bytes.to_vec();
        let resp = self.retrying(
            &what,
            true,
            || {
                self.request(Method::PUT, &url)
                    .header(CONTENT_TYPE, media_type)
                    .body(body.clone())
            },
            false,
        )?;
        if !resp.status().is_success() {
            return Err(self.refused(&what, resp));
        }
        let expected = Digest::of(bytes);
        if let Some(d) = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
        {
            if d != expected.to_string() {
                return Err(RegistryError::DigestMismatch {
                    registry: self.registry.clone(),
                    what: format!("back a manifest digest for {what}"),
                    expected: expected.to_string(),
                    actual: d.to_owned(),
                });
            }
        }
        Ok(resp.headers().contains_key("oci-subject"))
    }

    /// The referrers of `digest` from the referrers API, or `None` when the
    /// registry does not implement it.
    pub fn referrers(
        &self,
        repo: &str,
        digest: &Digest,
    ) -> Result<Option<serde_json::Value>, RegistryError> {
        let url = self.url(&format!("/v2/{repo}/referrers/{digest}"));
        let what = format!("`GET /v2/{repo}/referrers/{digest}`");
        let resp = self.retrying(
            &what,
            true,
            || {
                self.request(Method::GET, &url)
                    .header(ACCEPT, crate::oci::MEDIA_TYPE_INDEX)
            },
            false,
        )?;
        let is_index = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with(crate::oci::MEDIA_TYPE_INDEX));
        match resp.status() {
            StatusCode::OK if is_index => {
                let mut bytes = Vec::new();
                let _ = resp.take(4 * 1024 * 1024).read_to_end(&mut bytes);
                Ok(serde_json::from_slice(&bytes).ok())
            }
            StatusCode::OK
            | StatusCode::NOT_FOUND
            | StatusCode::METHOD_NOT_ALLOWED
            | StatusCode::BAD_REQUEST => Ok(None),
            _ => Err(self.refused(&what, resp)),
        }
    }

    // -----------------------------------------------------------------------
    // Blobs
    // -----------------------------------------------------------------------

    /// Whether the repository has the blob (`HEAD`).
    pub fn blob_exists(&self, repo: &str, digest: &Digest) -> Result<bool, RegistryError> {
        let url = self.url(&format!("/v2/{repo}/blobs/{digest}"));
        let what = format!("`HEAD /v2/{repo}/blobs/{digest}`");
        let resp = self.retrying(&what, true, || self.request(Method::HEAD, &url), false)?;
        match resp.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(self.refused(&what, resp)),
        }
    }

    /// Downloads a blob into `writer`, verifying its digest and size.
    pub fn get_blob(
        &self,
        repo: &str,
        digest: &Digest,
        size: u64,
        writer: &mut dyn io::Write,
    ) -> Result<(), RegistryError> {
        let url = self.url(&format!("/v2/{repo}/blobs/{digest}"));
        let what = format!("`GET /v2/{repo}/blobs/{digest}`");
        let resp = self.retrying(
            &what,
            true,
            || {
                self.request(Method::GET, &url)
                    .timeout(Duration::from_secs(3600))
            },
            false,
        )?;
        if !resp.status().is_success() {
            return Err(self.refused(&what, resp));
        }
        let mut hasher = sha2::Sha256::new();
        let mut count = 0u64;
        let mut reader = resp.take(size + 1);
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = reader.read(&mut buf).map_err(|e| RegistryError::Network {
                registry: self.registry.clone(),
                what: what.clone(),
                message: e.to_string(),
            })?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            count += n as u64;
            writer
                .write_all(&buf[..n])
                .map_err(|e| RegistryError::Protocol {
                    registry: self.registry.clone(),
                    message: format!("cannot store {digest}: {e}"),
                })?;
        }
        let actual = hex::encode(hasher.finalize());
        if actual != digest.hex() || count != size {
            return Err(RegistryError::DigestMismatch {
                registry: self.registry.clone(),
                what: format!("blob {digest}"),
                expected: format!("{digest} ({size} bytes)"),
                actual: format!("sha256:{actual} ({count} bytes)"),
            });
        }
        Ok(())
    }

    /// Makes sure the repository has the blob at `path`: `HEAD` first, then a
    /// cross-repository mount from `mount_from` if given, then a streamed chunked
    /// upload. `progress` is told the bytes the registry holds so far.
    pub fn push_blob(
        &self,
        repo: &str,
        digest: &Digest,
        size: u64,
        path: &Path,
        mount_from: Option<&str>,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<BlobAction, RegistryError> {
        if self.blob_exists(repo, digest)? {
            progress(size);
            return Ok(BlobAction::Skipped);
        }
        match self.upload(repo, digest, size, path, mount_from, progress) {
            // Resumed data the registry does not agree with: once more from scratch.
            Err(Resumed(true, RegistryError::Refused { status, .. }))
                if status.starts_with("400") =>
            {
                tracing::info!(registry = %self.registry, %digest, "resumed upload did not verify; uploading again");
                self.upload(repo, digest, size, path, None, progress)
                    .map_err(|Resumed(_, e)| e)
            }
            other => other.map_err(|Resumed(_, e)| e),
        }
    }

    /// One upload attempt; the error says whether the upload was resumed.
    fn upload(
        &self,
        repo: &str,
        digest: &Digest,
        size: u64,
        path: &Path,
        mount_from: Option<&str>,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<BlobAction, Resumed> {
        let mut resumed = false;
        let r = self.upload_inner(repo, digest, size, path, mount_from, progress, &mut resumed);
        r.map_err(|e| Resumed(resumed, e))
    }

    #[allow(clippy::too_many_arguments)]
    fn upload_inner(
        &self,
        repo: &str,
        digest: &Digest,
        size: u64,
        path: &Path,
        mount_from: Option<&str>,
        progress: &(dyn Fn(u64) + Send + Sync),
        resumed: &mut bool,
    ) -> Result<BlobAction, RegistryError> {
        let mut location = match self.start_upload(repo, digest, mount_from)? {
            Started::Mounted => {
                progress(size);
                return Ok(BlobAction::Mounted);
            }
            Started::Upload(url) => url,
        };
        let mut offset = 0u64;
        let mut failures = 0u32;
        let what = format!("uploading blob {digest} to `{repo}`");
        while offset < size {
            let len = self.opts.chunk_size.max(1).min(size - offset);
            let file = open_at(path, offset)?;
            match self.patch_chunk(&location, file, offset, len, progress) {
                Ok(resp) if resp.status() == StatusCode::ACCEPTED => {
                    let next = self.location(&resp, &what)?;
                    offset = range_end(resp.headers()).unwrap_or(offset + len);
                    location = next;
                    progress(offset);
                    continue;
                }
                Ok(resp)
                    if resp.status() == StatusCode::UNAUTHORIZED
                        && failures < self.opts.retries =>
                {
                    // The token ran out mid-upload: fetch a new one, then resume.
                    self.learn_challenge(&resp, &what)?;
                }
                Ok(resp)
                    if !(transient_status(resp.status())
                        || resp.status() == StatusCode::RANGE_NOT_SATISFIABLE) =>
                {
                    return Err(self.refused(&what, resp));
                }
                Ok(resp) => {
                    if failures >= self.opts.retries {
                        return Err(self.refused(&what, resp));
                    }
                    tracing::info!(registry = %self.registry, %digest, status = %resp.status(), offset, "upload chunk failed; resuming");
                }
                Err(e) => {
                    if failures >= self.opts.retries {
                        return Err(network(&self.registry, &what, &e));
                    }
                    tracing::info!(registry = %self.registry, %digest, error = %e.without_url_ref(), offset, "upload chunk failed; resuming");
                }
            }
            self.stats.retries.fetch_add(1, Ordering::Relaxed);
            self.sleep_backoff(failures, None);
            failures += 1;
            // Where does the upload stand? Resume there, or start over.
            match self.upload_status(&location)? {
                Some(held) if held <= size => {
                    tracing::info!(registry = %self.registry, %digest, held, "resuming upload");
                    offset = held;
                    *resumed = true;
                }
                _ => {
                    tracing::info!(registry = %self.registry, %digest, "upload lost; starting it over");
                    location = match self.start_upload(repo, digest, None)? {
                        Started::Upload(url) => url,
                        Started::Mounted => return Ok(BlobAction::Mounted),
                    };
                    offset = 0;
                }
            }
            progress(offset);
        }
        let mut url = location;
        url.query_pairs_mut()
            .append_pair("digest", &digest.to_string());
        let what = format!("`PUT` completing the upload of {digest} to `{repo}`");
        let resp = self.retrying(
            &what,
            true,
            || self.request(Method::PUT, &url).header(CONTENT_LENGTH, "0"),
            false,
        )?;
        if !resp.status().is_success() {
            return Err(self.refused(&what, resp));
        }
        Ok(BlobAction::Uploaded)
    }

    fn start_upload(
        &self,
        repo: &str,
        digest: &Digest,
        mount_from: Option<&str>,
    ) -> Result<Started, RegistryError> {
        let mut url = self.url(&format!("/v2/{repo}/blobs/uploads/"));
        if let Some(from) = mount_from {
            url.query_pairs_mut()
                .append_pair("mount", &digest.to_string())
                .append_pair("from", from);
        }
        let what = format!("`POST /v2/{repo}/blobs/uploads/`");
        let resp = self.retrying(
            &what,
            true,
            || self.request(Method::POST, &url).header(CONTENT_LENGTH, "0"),
            false,
        )?;
        match resp.status() {
            StatusCode::CREATED if mount_from.is_some() => Ok(Started::Mounted),
            StatusCode::ACCEPTED => Ok(Started::Upload(self.location(&resp, &what)?)),
            _ => Err(self.refused(&what, resp)),
        }
    }

    /// How many bytes an upload session holds, or `None` if the registry dropped it.
    fn upload_status(&self, location: &Url) -> Result<Option<u64>, RegistryError> {
        let what = "`GET` on an upload session";
        let resp = self.retrying(what, true, || self.request(Method::GET, location), false)?;
        match resp.status() {
            StatusCode::NO_CONTENT | StatusCode::OK | StatusCode::ACCEPTED => {
                Ok(Some(range_end(resp.headers()).unwrap_or(0)))
            }
            _ => Ok(None),
        }
    }

    fn patch_chunk(
        &self,
        location: &Url,
        file: std::fs::File,
        offset: u64,
        len: u64,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<Response, reqwest::Error> {
        let sent = Arc::new(AtomicU64::new(0));
        let reader = CountingReader {
            inner: file.take(len),
            sent: sent.clone(),
            total: self.stats.clone(),
        };
        let mut req = self
            .request(Method::PATCH, location)
            .header(CONTENT_TYPE, "application/octet-stream")
            .header("content-range", format!("{offset}-{}", offset + len - 1))
            .header(CONTENT_LENGTH, len.to_string())
            // Generous for slow links, bounded so a dead connection is noticed.
            .timeout(Duration::from_secs(60) + Duration::from_secs(len / (32 * 1024)))
            .body(Body::sized(reader, len));
        if let Ok(Some(h)) = self.authorization() {
            req = req.header(AUTHORIZATION, h.expose());
        }
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        // Progress while the body streams, from another thread's view of `sent`.
        let done = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            let ticker = s.spawn(|| {
                while !done.load(Ordering::Relaxed) {
                    progress(offset + sent.load(Ordering::Relaxed));
                    std::thread::park_timeout(Duration::from_millis(100));
                }
            });
            let r = req.send();
            done.store(true, Ordering::Relaxed);
            ticker.thread().unpark();
            r
        })
    }
}

struct Resumed(bool, RegistryError);

enum Started {
    Mounted,
    Upload(Url),
}

fn open_at(path: &Path, offset: u64) -> Result<std::fs::File, RegistryError> {
    use std::io::Seek;
    let mut file = std::fs::File::open(path).map_err(|source| RegistryError::Io {
        action: "open",
        path: path.to_owned(),
        source,
    })?;
    file.seek(io::SeekFrom::Start(offset))
        .map_err(|source| RegistryError::Io {
            action: "seek in",
            path: path.to_owned(),
            source,
        })?;
    Ok(file)
}

struct CountingReader<R> {
    inner: R,
    sent: Arc<AtomicU64>,
    total: Arc<Stats>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sent.fetch_add(n as u64, Ordering::Relaxed);
        self.total
            .uploaded_bytes
            .fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// `: CODE message (detail)` from a distribution error body, else a short excerpt.
fn describe_error_body(body: &str) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<ErrorEntry>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorEntry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
        #[serde(default)]
        detail: Option<serde_json::Value>,
    }
    if let Ok(e) = serde_json::from_str::<Errors>(body) {
        let parts: Vec<String> = e
            .errors
            .iter()
            .map(|e| {
                let mut s = format!("{} {}", e.code, e.message).trim().to_owned();
                if let Some(d) = e.detail.as_ref().filter(|d| !d.is_null()) {
                    let d = d.to_string();
                    s.push_str(&format!(" ({})", &d[..d.len().min(300)]));
                }
                s
            })
            .collect();
        if !parts.is_empty() {
            return format!(": {}", parts.join("; "));
        }
    }
    let text: String = body.trim().chars().take(300).collect();
    if text.is_empty() {
        String::new()
    } else {
        format!(": {text}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_become_short_messages() {
        assert_eq!(
            describe_error_body(
                r#"{"errors":[{"code":"MANIFEST_INVALID","message":"manifest invalid","detail":{"a":1}}]}"#
            ),
            r#": MANIFEST_INVALID manifest invalid ({"a":1})"#
        );
        assert_eq!(describe_error_body(""), "");
        assert_eq!(describe_error_body("oops"), ": oops");
    }

    #[test]
    fn plain_http_only_for_loopback_or_insecure() {
        assert_eq!(schemes("ghcr.io", false), ["https"]);
        assert_eq!(schemes("10.1.2.3:5000", false), ["https"]);
        assert_eq!(schemes("10.1.2.3:5000", true), ["https", "http"]);
        assert_eq!(schemes("127.0.0.1:5000", false), ["https", "http"]);
        assert_eq!(schemes("localhost:5000", false), ["https", "http"]);
    }

    #[test]
    fn only_transient_statuses_are_retried() {
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(transient_status(StatusCode::from_u16(s).unwrap()), "{s}");
        }
        for s in [400, 401, 403, 404, 405, 409, 416, 501] {
            assert!(!transient_status(StatusCode::from_u16(s).unwrap()), "{s}");
        }
    }

    #[test]
    fn range_header_is_inclusive() {
        let mut h = HeaderMap::new();
        h.insert("range", "0-1023".parse().unwrap());
        assert_eq!(range_end(&h), Some(1024));
        h.insert("range", "bytes=0-0".parse().unwrap());
        assert_eq!(
            range_end(&h),
            Some(0),
            "distribution's answer for an empty upload"
        );
    }
}
