//! Every way a request can fail inside the gateway, and the one place where those
//! failures become HTTP responses.
//!
//! Stages return a [`GatewayError`]; only [`GatewayError::into_response`] decides
//! status codes, headers and the `application/problem+json` body (RFC 9457). Bodies
//! name the category of the problem and the request id, never upstream addresses,
//! internal error chains or anything else a client should not learn.

use bytes::Bytes;
use http::header::{ALLOW, CONTENT_TYPE, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{Response, StatusCode};

use crate::body::ResponseBody;
use crate::header_names::X_REQUEST_ID;

/// One way a request breaks the contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// `path`, `query`, `header`, `cookie` or `body`.
    pub location: &'static str,
    /// The parameter's name (with a JSON pointer into its value when it is
    /// structured), or a JSON pointer into the body (`""` for the whole body).
    pub name: String,
    pub reason: String,
    /// A bounded excerpt of the offending value.
    pub value: Option<String>,
}

/// Why validation refused a request: the metric label, and the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// `parameter`, `body` or `body_required` (the first violation's kind).
    pub reason: &'static str,
    pub violations: Vec<Violation>,
}

/// Why a request did not get an upstream response.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GatewayError {
    #[error("no route")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed { allow: HeaderValue },
    #[error("malformed request path")]
    BadPath,
    #[error("bad request")]
    BadRequest(&'static str),
    #[error("request body too large")]
    PayloadTooLarge { limit: u64 },
    /// The request breaks the operation's OpenAPI contract (request validation).
    #[error("invalid request")]
    InvalidRequest(Box<Invalid>),
    /// The body's `Content-Type` is not one the operation declares.
    #[error("unsupported media type")]
    UnsupportedMediaType,
    // Traffic policies (rate limits, upstream resilience).
    /// A rate-limit policy refused the request.
    #[error("rate limited")]
    RateLimited(Box<crate::ratelimit::Limited>),
    /// The upstream's circuit breaker is open.
    #[error("upstream circuit open")]
    CircuitOpen { retry_after_secs: u64 },
    /// The upstream already has `maxConcurrentRequests` requests in flight.
    #[error("upstream overloaded")]
    UpstreamOverloaded,
    #[error("upstream timed out")]
    UpstreamTimeout,
    #[error("upstream connect timed out")]
    UpstreamConnectTimeout,
    #[error("upstream refused the connection")]
    UpstreamConnect,
    /// The TLS handshake with an `https://` upstream failed (its certificate did
    /// not verify, or it refused ours); the reason is logged, never sent.
    #[error("upstream TLS handshake failed")]
    UpstreamTls,
    #[error("upstream closed or reset the connection")]
    UpstreamReset,
    /// The upstream switched protocols (`101`) when no WebSocket was asked for.
    #[error("upstream switched protocols unasked")]
    UpstreamProtocol,
    // Security (authentication, authorization, CORS).
    /// No acceptable credential: missing (`invalid: false`) or failing its check.
    #[error("unauthorized")]
    Unauthorized {
        invalid: bool,
        /// One `WWW-Authenticate` challenge per scheme the operation accepts.
        challenges: std::sync::Arc<[HeaderValue]>,
    },
    /// Authenticated, but without the scopes the operation requires.
    #[error("insufficient scope")]
    Forbidden { challenge: Option<HeaderValue> },
    /// The API requires a client certificate and the connection has none.
    #[error("client certificate required")]
    ClientCertRequired,
    /// A credential could not be checked (introspection endpoint down or slow).
    #[error("authentication unavailable")]
    AuthUnavailable,
    /// A CORS preflight from an origin the API does not allow.
    #[error("origin not allowed")]
    CorsRejected,
}

impl GatewayError {
    /// Short stable name for metrics labels and analytics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NotFound => "no_route",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::BadPath => "bad_path",
            Self::BadRequest(_) => "bad_request",
            Self::PayloadTooLarge { .. } => "body_too_large",
            Self::InvalidRequest(_) => "invalid_request",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::RateLimited(_) => "rate_limited",
            Self::CircuitOpen { .. } => "circuit_open",
            Self::UpstreamOverloaded => "upstream_overloaded",
            Self::UpstreamTimeout => "upstream_timeout",
            Self::UpstreamConnectTimeout => "connect_timeout",
            Self::UpstreamConnect => "connect_error",
            Self::UpstreamTls => "tls_error",
            Self::UpstreamReset => "upstream_reset",
            Self::UpstreamProtocol => "upstream_protocol",
            Self::Unauthorized { invalid: false, .. } => "unauthenticated",
            Self::Unauthorized { invalid: true, .. } => "invalid_credentials",
            Self::Forbidden { .. } => "insufficient_scope",
            Self::ClientCertRequired => "client_certificate_required",
            Self::AuthUnavailable => "auth_unavailable",
            Self::CorsRejected => "cors_rejected",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::BadPath | Self::BadRequest(_) | Self::InvalidRequest(_) => {
                StatusCode::BAD_REQUEST
            }
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::CircuitOpen { .. } | Self::UpstreamOverloaded => StatusCode::SERVICE_UNAVAILABLE,
            Self::UpstreamTimeout | Self::UpstreamConnectTimeout => StatusCode::GATEWAY_TIMEOUT,
            Self::UpstreamConnect
            | Self::UpstreamTls
            | Self::UpstreamReset
            | Self::UpstreamProtocol => StatusCode::BAD_GATEWAY,
            Self::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Self::Forbidden { .. } | Self::ClientCertRequired | Self::CorsRejected => {
                StatusCode::FORBIDDEN
            }
            Self::AuthUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// Is this an upstream failure (counted in `mgw_upstream_errors_total`)?
    pub fn is_upstream(&self) -> bool {
        matches!(
            self,
            Self::UpstreamTimeout
                | Self::UpstreamConnectTimeout
                | Self::UpstreamConnect
                | Self::UpstreamTls
                | Self::UpstreamReset
        )
    }

    fn detail(&self) -> String {
        match self {
            Self::NotFound => "no API operation matches this method and path".into(),
            Self::MethodNotAllowed { allow } => format!(
                "this path does not accept this method; allowed: {}",
                allow.to_str().unwrap_or_default()
            ),
            Self::BadPath => {
                "the request path has an invalid percent-escape or a dot segment".into()
            }
            Self::BadRequest(why) => (*why).into(),
            Self::InvalidRequest(_) => "the request does not match the API's contract".into(),
            Self::UnsupportedMediaType => {
                "this operation does not accept a body of this content type".into()
            }
            Self::PayloadTooLarge { limit } => {
                format!("the request body exceeds the limit of {limit} bytes")
            }
            Self::RateLimited(l) => {
                format!("too many requests; retry in {} seconds", l.retry_after_secs)
            }
            Self::CircuitOpen { .. } => {
                "the upstream service is failing; requests are paused briefly".into()
            }
            Self::UpstreamOverloaded => "the upstream service is at capacity".into(),
            Self::UpstreamTimeout => "the upstream service did not answer in time".into(),
            Self::UpstreamConnectTimeout => {
                "the upstream service could not be reached in time".into()
            }
            Self::UpstreamConnect | Self::UpstreamTls => {
                "the upstream service is unavailable".into()
            }
            Self::UpstreamReset => "the upstream service closed the connection".into(),
            Self::UpstreamProtocol => "the upstream service sent an invalid response".into(),
            // The category only: never which check failed or why.
            Self::Unauthorized { invalid: false, .. } => {
                "this operation requires credentials".into()
            }
            Self::Unauthorized { invalid: true, .. } => {
                "the credentials are invalid or expired".into()
            }
            Self::Forbidden { .. } => "the credentials do not grant the required scope".into(),
            Self::ClientCertRequired => {
                "this API requires a client certificate (mutual TLS)".into()
            }
            Self::AuthUnavailable => "the credentials cannot be checked right now".into(),
            Self::CorsRejected => "this origin may not call this API".into(),
        }
    }

    /// The one mapping from errors to responses.
    pub fn into_response(self, request_id: &HeaderValue) -> Response<ResponseBody> {
        if let Self::RateLimited(limited) = &self {
            return quota_exceeded(limited, &self.detail(), request_id);
        }
        if let Self::InvalidRequest(invalid) = &self {
            return invalid_request(invalid, &self.detail(), request_id);
        }
        problem(
            self.status(),
            self.kind(),
            &self.detail(),
            request_id,
            |res| match &self {
                Self::CircuitOpen { retry_after_secs } => {
                    res.headers_mut()
                        .insert(RETRY_AFTER, HeaderValue::from(*retry_after_secs.max(&1)));
                }
                Self::UpstreamOverloaded => {
                    res.headers_mut()
                        .insert(RETRY_AFTER, HeaderValue::from_static("1"));
                }
                Self::MethodNotAllowed { allow } => {
                    res.headers_mut().insert(ALLOW, allow.clone());
                }
                Self::AuthUnavailable => {
                    res.headers_mut()
                        .insert(RETRY_AFTER, HeaderValue::from_static("1"));
                }
                Self::Unauthorized { challenges, .. } => {
                    for c in challenges.iter() {
                        res.headers_mut().append(WWW_AUTHENTICATE, c.clone());
                    }
                }
                Self::Forbidden { challenge: Some(c) } => {
                    res.headers_mut().insert(WWW_AUTHENTICATE, c.clone());
                }
                _ => {}
            },
        )
    }
}

/// An `application/problem+json` response.
pub fn problem(
    status: StatusCode,
    kind: &str,
    detail: &str,
    request_id: &HeaderValue,
    extra: impl FnOnce(&mut Response<ResponseBody>),
) -> Response<ResponseBody> {
    let body = serde_json::json!({
        "type": format!("https://mgw.dev/problems/{kind}"),
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "detail": detail,
        "requestId": request_id.to_str().unwrap_or_default(),
    });
    let mut res = Response::new(ResponseBody::full(Bytes::from(body.to_string())));
    *res.status_mut() = status;
    res.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    res.headers_mut().insert(X_REQUEST_ID, request_id.clone());
    extra(&mut res);
    res
}

/// The `400` answer of request validation: the problem with a `violations` list
/// (`in`, `name` or JSON pointer, `reason`, a bounded excerpt of the `value`).
fn invalid_request(
    invalid: &Invalid,
    detail: &str,
    request_id: &HeaderValue,
) -> Response<ResponseBody> {
    let violations: Vec<serde_json::Value> = invalid
        .violations
        .iter()
        .map(|v| {
            let mut o = serde_json::json!({"in": v.location, "name": v.name, "reason": v.reason});
            if let Some(value) = &v.value {
                o["value"] = value.clone().into();
            }
            o
        })
        .collect();
    let status = StatusCode::BAD_REQUEST;
    let body = serde_json::json!({
        "type": "https://mgw.dev/problems/invalid_request",
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "detail": detail,
        "violations": violations,
        "requestId": request_id.to_str().unwrap_or_default(),
    });
    let mut res = Response::new(ResponseBody::full(Bytes::from(body.to_string())));
    *res.status_mut() = status;
    res.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    res.headers_mut().insert(X_REQUEST_ID, request_id.clone());
    res
}

/// The `429` answer: the draft's `quota-exceeded` problem type (with the names of
/// the refusing policies in `violated-policies`), `Retry-After`, and the
/// rate-limit headers the limiter prepared.
fn quota_exceeded(
    limited: &crate::ratelimit::Limited,
    detail: &str,
    request_id: &HeaderValue,
) -> Response<ResponseBody> {
    let status = StatusCode::TOO_MANY_REQUESTS;
    let body = serde_json::json!({
        "type": "https://iana.org/assignments/http-problem-types#quota-exceeded",
        "title": "Request cannot be satisfied as assigned quota has been exceeded",
        "status": status.as_u16(),
        "detail": detail,
        "violated-policies": limited.violated.iter().map(|p| &**p).collect::<Vec<&str>>(),
        "requestId": request_id.to_str().unwrap_or_default(),
    });
    let mut res = Response::new(ResponseBody::full(Bytes::from(body.to_string())));
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    h.insert(X_REQUEST_ID, request_id.clone());
    h.insert(RETRY_AFTER, HeaderValue::from(limited.retry_after_secs));
    for (name, value) in &limited.headers {
        h.insert(name.clone(), value.clone());
    }
    res
}
