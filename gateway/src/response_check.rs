//! Response checks in report mode: an upstream answer to an operation whose API
//! asks for them (`validation.responses`) is compared with the document — status
//! declared, content type declared for it, and for a sampled share the JSON body
//! against its schema — so teams see drift between the document and the backend.
//!
//! Never: change, delay or refuse a response. The status and content type are
//! read from the head; the body is copied as it streams past (up to the route's
//! body limit) and checked after the client has it. Mismatches are counted in
//! `mgw_response_contract_mismatches_total{api,operation,reason}` (every one)
//! and logged (at most a line per operation per interval, [`crate::log_gate`]).

use std::sync::Arc;

use http::Response;
use http::header::CONTENT_TYPE;
use mgw_bundle::contract::{CheckedResponses, media_index, reasons};

use crate::body::ResponseBody;
use crate::metrics::Metrics;

/// Which API and operation a response belongs to.
pub struct Operation<'a> {
    pub api: &'a str,
    pub id: &'a str,
}

/// Counts every mismatch; logs at most one line per operation per
/// [`crate::log_gate::MISMATCH_LOG_INTERVAL`], with how many were left out.
fn report(metrics: &Metrics, op: &Operation<'_>, reason: &'static str, status: u16, at: &str) {
    metrics.response_mismatch(op.api, op.id, reason);
    let Some(suppressed) = metrics
        .mismatch_logs
        .admit(op.api, op.id, std::time::Instant::now())
    else {
        return;
    };
    tracing::warn!(
        api = op.api,
        operation = op.id,
        reason,
        status,
        at,
        suppressed,
        "the upstream's response does not match the API's contract (`suppressed`: mismatches of this operation not logged since its last line)"
    );
}

/// Checks the head now and, for a sampled JSON body, arranges the body check.
pub fn observe(
    c: &Arc<CheckedResponses>,
    response: &mut Response<ResponseBody>,
    metrics: &Arc<Metrics>,
    op: Operation<'_>,
    cap: u64,
) {
    let status = response.status().as_u16();
    let Some(i) = c.declared(status) else {
        return report(metrics, &op, "undeclared_status", status, "");
    };
    let declared = &c.contract.responses[i];
    if declared.content.is_empty() {
        return;
    }
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let Some(j) = content_type.and_then(|ct| media_index(&declared.content, ct)) else {
        if content_type.is_some() || !http_body::Body::is_end_stream(response.body()) {
            report(metrics, &op, "undeclared_content_type", status, "");
        }
        return;
    };
    if c.bodies[i].get(j).and_then(Option::as_ref).is_none()
        || fastrand::u8(0..100) >= c.contract.body_sample_percent
    {
        return;
    }
    let (c, metrics) = (c.clone(), metrics.clone());
    let (api, id): (Arc<str>, Arc<str>) = (op.api.into(), op.id.into());
    let cap = usize::try_from(cap).unwrap_or(usize::MAX);
    response.body_mut().tee(
        cap,
        Box::new(move |bytes| {
            let op = Operation { api: &api, id: &id };
            let Some(validator) = c.bodies[i][j].as_ref() else {
                return;
            };
            match serde_json::from_slice::<serde_json::Value>(&bytes) {
                Err(_) => report(&metrics, &op, "body", status, "not JSON"),
                Ok(v) => {
                    if let Some(e) = validator.iter_errors(&v).next() {
                        let why = reasons(&e);
                        let at = why.first().map_or("", |r| r.instance_path().as_str());
                        report(&metrics, &op, "body", status, at);
                    }
                }
            }
        }),
    );
}
