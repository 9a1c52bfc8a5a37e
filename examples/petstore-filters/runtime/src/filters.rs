//! The project's native filters (see `mgw_gateway::filter::Filter`).

use bytes::Bytes;
use http::{Response, StatusCode};
use mgw_gateway::filter::{Filter, Session};

/// Denies creating a pet of kind `cat` (header `X-Pet-Kind`) with 403: a rule
/// of this business, not something a gateway setting could say.
pub struct NoCats;

impl Filter for NoCats {
    fn name(&self) -> &str {
        "no-cats"
    }

    fn on_request(
        &self,
        s: &mut Session<'_>,
        req: &mut http::request::Parts,
    ) -> Option<Response<Bytes>> {
        if s.route.operation_id != "createPet" {
            return None;
        }
        let cat = req
            .headers
            .get("x-pet-kind")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cat"));
        cat.then(|| {
            let mut answer = Response::new(Bytes::from_static(b"no cats here\n"));
            *answer.status_mut() = StatusCode::FORBIDDEN;
            answer.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("text/plain"),
            );
            answer
        })
    }
}

/// `X-Tenant` on the upstream's response, from the caller's `tenant` claim.
pub struct TenantHeader;

impl Filter for TenantHeader {
    fn name(&self) -> &str {
        "tenant-header"
    }

    fn on_upstream_response(&self, s: &mut Session<'_>, res: &mut http::response::Parts) {
        if let Some(v) = s.claim("tenant").and_then(|t| t.parse().ok()) {
            res.headers.insert("x-tenant", v);
        }
    }
}
