//! The project's native filters. Each implements `mgw_gateway::filter::Filter`
//! (every phase optional): `on_request` (after authentication, rate limits and
//! transforms; return a response to answer instead of the upstream),
//! `on_upstream_response` (the upstream's response head) and `on_end`.

use mgw_gateway::filter::{Filter, Session};

/// An example: `X-Served-By: <operation id>` on every upstream response.
pub struct ServedBy;

impl Filter for ServedBy {
    /// The name `mgw build` lists in the image's `io.mgw.filters` label, and the
    /// one an `x-wso2-request-interceptor` would name.
    fn name(&self) -> &str {
        "served-by"
    }

    fn on_upstream_response(&self, s: &mut Session<'_>, res: &mut http::response::Parts) {
        if let Ok(v) = s.route.operation_id.parse() {
            res.headers.insert("x-served-by", v);
        }
    }
}
