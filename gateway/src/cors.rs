//! CORS: browsers may call an API from the origins its bundle allows.
//!
//! The gateway answers preflights itself (an `OPTIONS` with `Origin` and
//! `Access-Control-Request-Method` for a method the path serves), so they never
//! reach the upstream or the authentication stage, and adds the CORS headers to
//! actual responses, its own errors included. Header values are computed once at
//! start. Upstream `Access-Control-*` headers are replaced by ours.
//!
//! Never: send CORS headers for an origin that is not allowed; answer `*` together
//! with credentials; reflect an arbitrary origin.

use bytes::Bytes;
use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, HeaderMap, HeaderValue, ORIGIN,
    VARY,
};
use http::{Method, Request, Response, StatusCode};

use crate::body::ResponseBody;
use crate::bundle::CorsCfg;

pub struct CorsPolicy {
    cfg: CorsCfg,
    methods: Option<HeaderValue>,
    headers: Option<HeaderValue>,
    expose: Option<HeaderValue>,
    max_age: Option<HeaderValue>,
}

fn join(list: &[String]) -> Option<HeaderValue> {
    if list.is_empty() {
        return None;
    }
    HeaderValue::from_str(&list.join(", ")).ok()
}

/// The `Origin` and requested method of a CORS preflight, if this is one.
pub fn preflight<B>(req: &Request<B>) -> Option<(HeaderValue, Method)> {
    if req.method() != Method::OPTIONS {
        return None;
    }
    let origin = req.headers().get(ORIGIN)?.clone();
    let method = req.headers().get(ACCESS_CONTROL_REQUEST_METHOD)?;
    let method = Method::from_bytes(method.as_bytes()).ok()?;
    Some((origin, method))
}

impl CorsPolicy {
    pub fn new(cfg: CorsCfg) -> Self {
        let methods: Vec<String> = cfg.allow_methods.iter().map(|m| m.to_string()).collect();
        Self {
            methods: join(&methods),
            headers: join(&cfg.allow_headers),
            expose: join(&cfg.expose_headers),
            max_age: cfg.max_age_s.map(HeaderValue::from),
            cfg,
        }
    }

    pub fn allows(&self, origin: &HeaderValue) -> bool {
        match &self.cfg.allow_origins {
            None => true,
            Some(list) => {
                let o = origin.as_bytes();
                list.iter().any(|a| a.as_bytes().eq_ignore_ascii_case(o))
            }
        }
    }

    fn allow_origin(&self, origin: &HeaderValue, h: &mut HeaderMap) {
        if self.cfg.allow_origins.is_none() {
            h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        } else {
            h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        }
        if self.cfg.allow_credentials {
            h.insert(
                ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
    }

    /// The gateway's answer to an allowed preflight. With no configured methods
    /// it allows the requested one (the route exists); with no configured headers
    /// it allows those requested.
    pub fn preflight_response<B>(
        &self,
        req: &Request<B>,
        origin: &HeaderValue,
        method: &Method,
    ) -> Response<ResponseBody> {
        let mut res = Response::new(ResponseBody::full(Bytes::new()));
        *res.status_mut() = StatusCode::NO_CONTENT;
        let h = res.headers_mut();
        self.allow_origin(origin, h);
        let methods = self
            .methods
            .clone()
            .or_else(|| HeaderValue::from_str(method.as_str()).ok());
        if let Some(m) = methods {
            h.insert(ACCESS_CONTROL_ALLOW_METHODS, m);
        }
        let headers = self.headers.clone().or_else(|| {
            req.headers()
                .get(ACCESS_CONTROL_REQUEST_HEADERS)
                .filter(|v| {
                    v.as_bytes()
                        .iter()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_, ".contains(b))
                })
                .cloned()
        });
        if let Some(v) = headers {
            h.insert(ACCESS_CONTROL_ALLOW_HEADERS, v);
        }
        if let Some(v) = &self.max_age {
            h.insert(ACCESS_CONTROL_MAX_AGE, v.clone());
        }
        h.append(
            VARY,
            HeaderValue::from_static(
                "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
            ),
        );
        res
    }

    /// Sets the CORS headers of an actual response (ours or the upstream's).
    pub fn apply(&self, origin: Option<&HeaderValue>, h: &mut HeaderMap) {
        for name in [
            ACCESS_CONTROL_ALLOW_ORIGIN,
            ACCESS_CONTROL_ALLOW_CREDENTIALS,
            ACCESS_CONTROL_EXPOSE_HEADERS,
            ACCESS_CONTROL_ALLOW_METHODS,
            ACCESS_CONTROL_ALLOW_HEADERS,
            ACCESS_CONTROL_MAX_AGE,
        ] {
            h.remove(name);
        }
        if self.cfg.allow_origins.is_some() {
            // Caches must not hand one origin's answer to another.
            h.append(VARY, HeaderValue::from_static("Origin"));
        }
        let Some(origin) = origin.filter(|o| self.allows(o)) else {
            return;
        };
        self.allow_origin(origin, h);
        if let Some(v) = &self.expose {
            h.insert(ACCESS_CONTROL_EXPOSE_HEADERS, v.clone());
        }
    }
}
