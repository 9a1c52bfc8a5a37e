//! Mock responses: an operation marked `x-mgw-mock` (or an API with `mock: true`)
//! is answered from the document's examples, with the declared status and
//! content type, and never reaches an upstream. `Prefer: example=NAME` (as
//! Prism and the OpenAPI tooling use it) picks a named example; otherwise the
//! first one in the document is served.
//!
//! Never: let the client choose anything but one of the document's examples.

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use http::{HeaderMap, Response, StatusCode};
use mgw_bundle::contract::{MockContract, is_json};

use crate::body::ResponseBody;

const PREFERENCE_APPLIED: HeaderName = HeaderName::from_static("preference-applied");

/// The example named by `Prefer: example=NAME`, if the client asked for one.
fn preferred(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(http::header::HeaderName::from_static("prefer"))
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split([',', ';']))
        .filter_map(|p| p.trim().strip_prefix("example="))
        .map(|n| n.trim_matches('"').to_owned())
        .next()
}

/// The mocked answer.
pub fn answer(mock: &MockContract, headers: &HeaderMap) -> Response<ResponseBody> {
    let wanted = preferred(headers);
    let chosen = wanted
        .as_deref()
        .and_then(|w| mock.examples.iter().find(|e| e.name == w));
    let example = chosen.or(mock.examples.first());
    let json = mock.content_type.as_deref().is_some_and(is_json);
    let body = match example.map(|e| &e.value) {
        None => Bytes::new(),
        Some(serde_json::Value::String(s)) if !json => Bytes::from(s.clone()),
        Some(v) => Bytes::from(v.to_string()),
    };
    let mut res = Response::new(ResponseBody::full(body));
    *res.status_mut() = StatusCode::from_u16(mock.status).unwrap_or(StatusCode::OK);
    if let Some(ct) = mock
        .content_type
        .as_deref()
        .and_then(|c| HeaderValue::from_str(c).ok())
    {
        res.headers_mut().insert(CONTENT_TYPE, ct);
    }
    if let Some(e) = chosen {
        if let Ok(v) = HeaderValue::from_str(&format!("example={}", e.name)) {
            res.headers_mut().insert(PREFERENCE_APPLIED, v);
        }
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use mgw_bundle::contract::NamedExample;
    use serde_json::json;

    fn mock() -> MockContract {
        MockContract {
            status: 201,
            content_type: Some("application/json".into()),
            examples: vec![
                NamedExample {
                    name: "cat".into(),
                    value: json!({"name": "Tom"}),
                },
                NamedExample {
                    name: "dog".into(),
                    value: json!({"name": "Rex"}),
                },
            ],
        }
    }

    #[test]
    fn first_example_unless_one_is_preferred() {
        let r = answer(&mock(), &HeaderMap::new());
        assert_eq!(r.status(), 201);
        assert_eq!(r.headers()[CONTENT_TYPE], "application/json");
        assert!(r.headers().get(PREFERENCE_APPLIED).is_none());
        let mut h = HeaderMap::new();
        h.insert(
            "prefer",
            HeaderValue::from_static("return=minimal, example=dog"),
        );
        let r = answer(&mock(), &h);
        assert_eq!(r.headers()[PREFERENCE_APPLIED], "example=dog");
        h.insert("prefer", HeaderValue::from_static("example=\"nope\""));
        let r = answer(&mock(), &h);
        assert!(r.headers().get(PREFERENCE_APPLIED).is_none());
    }
}
