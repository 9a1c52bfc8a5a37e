//! `apis[].transforms` and `operations[].transforms`: header names parsed,
//! `${VAR}` resolved, request facts and path parameters checked, gateway-owned
//! headers refused (see [`crate::transform`]).

use std::collections::BTreeSet;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, StatusCode};

use super::Checker;
use crate::transform::{
    Edit, Edits, Fact, OWNED_REQUEST_HEADERS, OWNED_RESPONSE_HEADERS, OWNED_RESPONSE_PREFIXES,
    Part, PathRewrite, PathRewriteCfg, RawPart, StaticResponseCfg, TransformCfg, Transforms,
    ValueTemplate, path_params, split_path_template, split_value,
};

/// Which side of the exchange a header edit is on.
#[derive(Clone, Copy)]
enum Side<'a> {
    /// With the API's claim headers (lowercase), which are the gateway's too.
    Request(&'a BTreeSet<String>),
    Response,
}

impl Side<'_> {
    /// Why a transform may not touch this header, if it may not.
    fn owned(self, name: &HeaderName) -> Option<&'static str> {
        let n = name.as_str();
        match self {
            Side::Request(claims) => {
                if claims.contains(n) {
                    Some("it is a claim header, set by the gateway from the caller's token")
                } else if OWNED_REQUEST_HEADERS.contains(&n) {
                    Some("the gateway owns it on requests (request id, forwarding, framing, hop-by-hop)")
                } else {
                    None
                }
            }
            Side::Response => (OWNED_RESPONSE_HEADERS.contains(&n)
                || OWNED_RESPONSE_PREFIXES.iter().any(|p| n.starts_with(p)))
            .then_some(
                "the gateway owns it on responses (request id, rate limits, CORS, framing, hop-by-hop)",
            ),
        }
    }
}

/// Checks one `transforms` block (an API's or an operation's) at `key`.
/// `claim_headers` are the API's claim header names, lowercase.
pub(super) fn check_transforms(
    c: &mut Checker<'_>,
    key: &str,
    t: &Transforms,
    claim_headers: &BTreeSet<String>,
) -> TransformCfg {
    let mut out = TransformCfg::default();
    if let Some(r) = &t.request {
        let rkey = format!("{key}.request");
        if let Some(h) = &r.headers {
            out.request_headers = header_edits(
                c,
                &format!("{rkey}.headers"),
                h,
                Side::Request(claim_headers),
            );
        }
        if let Some(q) = &r.query {
            out.query = query_edits(c, &format!("{rkey}.query"), q);
        }
        if let Some(p) = &r.path {
            out.path = path_rewrite(c, &format!("{rkey}.path"), p);
        }
        if let Some(m) = &r.method {
            match Method::from_bytes(m.as_bytes()) {
                Ok(m) if m.as_str().bytes().all(|b| b.is_ascii_uppercase()) => out.method = Some(m),
                _ => c.push(
                    format!("{rkey}.method"),
                    format!("`{m}` is not an HTTP method (write it upper-case, such as `POST`)"),
                ),
            }
        }
    }
    if let Some(h) = t.response.as_ref().and_then(|r| r.headers.as_ref()) {
        out.response_headers =
            header_edits(c, &format!("{key}.response.headers"), h, Side::Response);
    }
    if let Some(s) = &t.static_response {
        let skey = format!("{key}.staticResponse");
        let status = match StatusCode::from_u16(s.status) {
            Ok(st) if (200..600).contains(&s.status) => st,
            _ => {
                c.push(
                    format!("{skey}.status"),
                    format!("{} is not a final HTTP status (200..=599)", s.status),
                );
                StatusCode::OK
            }
        };
        let mut headers = Vec::with_capacity(s.headers.len());
        for (name, value) in &s.headers {
            let hkey = format!("{skey}.headers.{name}");
            let Some(name) = header_name(c, &hkey, name, Side::Response) else {
                continue;
            };
            let text = c.resolve(&hkey, value).unwrap_or_default();
            match HeaderValue::from_str(&text) {
                Ok(v) => headers.push((name, v)),
                Err(_) => c.push(hkey, "is not a valid header value (control characters)"),
            }
        }
        out.static_response = Some(StaticResponseCfg {
            status,
            headers,
            body: Bytes::from(s.body.clone()),
        });
    }
    out
}

/// Every `{param}` and `$(path.param)` of a route's transforms must be a
/// parameter of the operation's path (`key` is where the transforms were written).
pub(super) fn check_path_facts(
    c: &mut Checker<'_>,
    key: &str,
    t: &TransformCfg,
    op_id: &str,
    op_path: &str,
) {
    let params = path_params(op_path);
    let values = t
        .request_headers
        .iter()
        .chain(&t.response_headers)
        .filter_map(Edit::value)
        .chain(t.query.iter().filter_map(Edit::value));
    let in_values: Vec<&Part> = values
        .flat_map(|v| match v {
            ValueTemplate::Static(_) => &[][..],
            ValueTemplate::Dynamic(p) => p.as_slice(),
        })
        .collect();
    let in_path: Vec<&Part> = match &t.path {
        Some(PathRewriteCfg::Template(p)) => p.iter().collect(),
        _ => Vec::new(),
    };
    for (at, parts) in [
        (key.to_owned(), in_values),
        (format!("{key}.request.path.template"), in_path),
    ] {
        let missing: BTreeSet<&str> = parts
            .into_iter()
            .filter_map(|p| match p {
                Part::Fact(Fact::Path(name)) if !params.contains(&name.as_str()) => {
                    Some(name.as_str())
                }
                _ => None,
            })
            .collect();
        for name in missing {
            let known = if params.is_empty() {
                "none".to_owned()
            } else {
                params
                    .iter()
                    .map(|p| format!("`{p}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            c.push(
                at.clone(),
                format!(
                    "path parameter `{name}` is not in the path `{op_path}` of operation `{op_id}` (its parameters: {known})"
                ),
            );
        }
    }
}

fn header_name(c: &mut Checker<'_>, key: &str, name: &str, side: Side<'_>) -> Option<HeaderName> {
    let Ok(h) = HeaderName::from_bytes(name.as_bytes()) else {
        c.push(key, format!("`{name}` is not a valid header name"));
        return None;
    };
    if let Some(why) = side.owned(&h) {
        c.push(
            key,
            format!("a transform cannot change header `{h}`: {why}"),
        );
        return None;
    }
    Some(h)
}

fn header_edits(
    c: &mut Checker<'_>,
    key: &str,
    e: &Edits,
    side: Side<'_>,
) -> Vec<Edit<HeaderName>> {
    let mut out = Vec::new();
    for (i, name) in e.remove.iter().enumerate() {
        if let Some(h) = header_name(c, &format!("{key}.remove[{i}]"), name, side) {
            out.push(Edit::Remove(h));
        }
    }
    for (from, to) in &e.rename {
        let k = format!("{key}.rename.{from}");
        if let (Some(from), Some(to)) =
            (header_name(c, &k, from, side), header_name(c, &k, to, side))
        {
            out.push(Edit::Rename { from, to });
        }
    }
    for (set, map) in [(true, &e.set), (false, &e.add)] {
        let what = if set { "set" } else { "add" };
        for (name, value) in map {
            let k = format!("{key}.{what}.{name}");
            let name = header_name(c, &k, name, side);
            let value = value_template(c, &k, value);
            if let (Some(n), Some(v)) = (name, value) {
                out.push(if set {
                    Edit::Set(n, v)
                } else {
                    Edit::Add(n, v)
                });
            }
        }
    }
    refuse_twice(c, key, &out, |n: &HeaderName| n.as_str().to_owned());
    out
}

fn query_edits(c: &mut Checker<'_>, key: &str, e: &Edits) -> Vec<Edit<String>> {
    let mut out = Vec::new();
    let name = |c: &mut Checker<'_>, k: &str, n: &str| {
        if n.is_empty() || n.contains(['&', '=', '#']) {
            c.push(
                k,
                format!("`{n}` is not a query parameter name (empty, or has `&`, `=` or `#`)"),
            );
            None
        } else {
            Some(n.to_owned())
        }
    };
    for (i, n) in e.remove.iter().enumerate() {
        if let Some(n) = name(c, &format!("{key}.remove[{i}]"), n) {
            out.push(Edit::Remove(n));
        }
    }
    for (from, to) in &e.rename {
        let k = format!("{key}.rename.{from}");
        if let (Some(from), Some(to)) = (name(c, &k, from), name(c, &k, to)) {
            out.push(Edit::Rename { from, to });
        }
    }
    for (set, map) in [(true, &e.set), (false, &e.add)] {
        let what = if set { "set" } else { "add" };
        for (n, value) in map {
            let k = format!("{key}.{what}.{n}");
            if let (Some(n), Some(v)) = (name(c, &k, n), value_template(c, &k, value)) {
                out.push(if set {
                    Edit::Set(n, v)
                } else {
                    Edit::Add(n, v)
                });
            }
        }
    }
    refuse_twice(c, key, &out, |n: &String| n.clone());
    out
}

/// One name edited by two kinds of edit (`set` and `remove`, say) is almost
/// certainly a mistake whose outcome depends on the order: refuse it.
fn refuse_twice<N>(c: &mut Checker<'_>, key: &str, edits: &[Edit<N>], name: impl Fn(&N) -> String) {
    let mut seen = BTreeSet::new();
    for e in edits {
        let names = match e {
            Edit::Remove(n) | Edit::Set(n, _) | Edit::Add(n, _) => vec![name(n)],
            Edit::Rename { from, to } => vec![name(from), name(to)],
        };
        for n in names {
            if !seen.insert(n.clone()) {
                c.push(
                    key,
                    format!("`{n}` is edited more than once here (remove, rename, set, add); keep one edit per name"),
                );
            }
        }
    }
}

fn value_template(c: &mut Checker<'_>, key: &str, value: &str) -> Option<ValueTemplate> {
    let raw = match split_value(value) {
        Ok(r) => r,
        Err(e) => {
            c.push(key, e);
            return None;
        }
    };
    let mut parts = Vec::with_capacity(raw.len());
    for p in raw {
        match p {
            // Without an environment (the builder), an unset variable is fine.
            RawPart::Text(t) => parts.push(Part::Text(c.resolve(key, t).unwrap_or_default())),
            RawPart::Fact(f) => parts.push(Part::Fact(f)),
        }
    }
    let text_only = parts.iter().all(|p| matches!(p, Part::Text(_)));
    if text_only {
        let text: String = parts
            .iter()
            .map(|p| match p {
                Part::Text(t) => t.as_str(),
                Part::Fact(_) => "",
            })
            .collect();
        return match HeaderValue::from_str(&text) {
            Ok(v) => Some(ValueTemplate::Static(v)),
            Err(_) => {
                c.push(key, "is not a valid header value (control characters)");
                None
            }
        };
    }
    Some(ValueTemplate::Dynamic(parts))
}

fn path_rewrite(c: &mut Checker<'_>, key: &str, p: &PathRewrite) -> Option<PathRewriteCfg> {
    let segment_path = |c: &mut Checker<'_>, k: String, s: &str| {
        if s.starts_with('/') && !s.contains(['?', '#', '{', '}']) && !s.contains("//") {
            Some(s.trim_end_matches('/').to_owned())
        } else {
            c.push(
                k,
                format!("`{s}` must be a path starting with `/`, without `?`, `#`, `{{}}` or `//`"),
            );
            None
        }
    };
    match (&p.template, &p.prefix, &p.to) {
        (Some(t), None, None) => match split_path_template(t) {
            Ok(parts) => Some(PathRewriteCfg::Template(parts)),
            Err(e) => {
                c.push(format!("{key}.template"), e);
                None
            }
        },
        (None, Some(from), Some(to)) => {
            let from = segment_path(c, format!("{key}.prefix"), from)?;
            let to = segment_path(c, format!("{key}.to"), to)?;
            Some(PathRewriteCfg::Prefix { from, to })
        }
        _ => {
            c.push(
                key,
                "needs either `template` (`/v2/animals/{id}`) or both `prefix` and `to` (`prefix: /pets`, `to: /v2/animals`)",
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use crate::transform::{Edit, Fact, Part, PathRewriteCfg, ValueTemplate};
    use crate::*;

    fn with(api: serde_json::Value, op: serde_json::Value) -> Result<Config, Vec<Problem>> {
        let mut b = serde_json::to_value(crate::tests::sample()).unwrap();
        b["auth"] = json!({"providers": {"idp": {
            "type": "jwt", "issuer": "i", "algorithms": ["RS256"], "jwksUrl": "http://127.0.0.1:1/jwks",
            "claimHeaders": {"sub": "X-Consumer"}
        }}});
        b["apis"][0]["securitySchemes"] =
            json!({"bearer": {"provider": "idp", "in": "header", "name": "Authorization"}});
        if !api.is_null() {
            b["apis"][0]["transforms"] = api;
        }
        if !op.is_null() {
            b["apis"][0]["operations"][1]["transforms"] = op;
        }
        let b: Bundle = serde_json::from_value(b).unwrap();
        let env = BTreeMap::from([("TIER".to_owned(), "gold".to_owned())]);
        Config::from_bundle(&b, String::new(), Some(&env)).map_err(|e| match e {
            BundleError::Invalid(p) => p,
            other => panic!("{other}"),
        })
    }

    fn problems(api: serde_json::Value, op: serde_json::Value) -> Vec<String> {
        with(api, op)
            .unwrap_err()
            .into_iter()
            .map(|p| format!("{}: {}", p.key, p.message))
            .collect()
    }

    #[test]
    fn api_and_operation_transforms_merge_per_route() {
        let cfg = with(
            json!({"request": {"headers": {"set": {"X-Tier": "${TIER}"}}, "method": "POST"}}),
            json!({"request": {
                "headers": {"add": {"X-Who": "$(claim.sub)@$(client.ip)"}},
                "path": {"template": "/v2/animals/{petId}"}
            }}),
        )
        .unwrap();
        let list = cfg.routes[0].transforms.as_deref().unwrap();
        assert_eq!(list.request_headers.len(), 1);
        assert_eq!(
            list.request_headers[0],
            Edit::Set(
                "x-tier".parse().unwrap(),
                ValueTemplate::Static("gold".parse().unwrap())
            )
        );
        let get = cfg.routes[1].transforms.as_deref().unwrap();
        assert_eq!(get.request_headers.len(), 2);
        assert_eq!(get.method, Some(http::Method::POST));
        assert_eq!(
            get.request_headers[1],
            Edit::Add(
                "x-who".parse().unwrap(),
                ValueTemplate::Dynamic(vec![
                    Part::Fact(Fact::Claim("sub".into())),
                    Part::Text("@".into()),
                    Part::Fact(Fact::ClientIp),
                ])
            )
        );
        assert!(matches!(get.path, Some(PathRewriteCfg::Template(_))));
        assert!(get.reads_path_params && !list.reads_path_params);
        // No transforms anywhere: nothing per route.
        let none = with(serde_json::Value::Null, serde_json::Value::Null).unwrap();
        assert!(none.routes.iter().all(|r| r.transforms.is_none()));
    }

    #[test]
    fn gateway_owned_headers_cannot_be_changed() {
        let p = problems(
            json!({
                "request": {"headers": {"remove": ["X-Request-Id"], "set": {"x-consumer": "me"}}},
                "response": {"headers": {"set": {"RateLimit-Remaining": "9"}, "rename": {"Access-Control-Allow-Origin": "x"}}}
            }),
            json!({"request": {"headers": {"add": {"X-Forwarded-For": "1.2.3.4"}}}}),
        );
        let joined = p.join("\n");
        assert!(
            joined.contains("apis[0].transforms.request.headers.remove[0]: a transform cannot change header `x-request-id`"),
            "{joined}"
        );
        assert!(
            joined.contains("apis[0].transforms.request.headers.set.x-consumer: a transform cannot change header `x-consumer`: it is a claim header"),
            "{joined}"
        );
        assert!(
            joined.contains("response.headers.set.RateLimit-Remaining"),
            "{joined}"
        );
        assert!(
            joined.contains("response.headers.rename.Access-Control-Allow-Origin"),
            "{joined}"
        );
        assert!(
            joined.contains("apis[0].operations[1].transforms.request.headers.add.X-Forwarded-For"),
            "{joined}"
        );
        assert_eq!(p.len(), 5, "{joined}");
    }

    #[test]
    fn bad_transforms_name_their_keys() {
        let p = problems(
            json!({"request": {
                "path": {"template": "/v2/{id}"},
                "method": "patch",
                "query": {"set": {"a&b": "1"}, "remove": ["x"], "rename": {"x": "y"}},
                "headers": {"set": {"X-A": "$(nope)"}}
            }, "staticResponse": {"status": 99}}),
            json!({"request": {"path": {"prefix": "/pets"}}}),
        );
        let joined = p.join("\n");
        for want in [
            "apis[0].transforms.request.path.template: path parameter `id` is not in the path `/pets` of operation `listPets` (its parameters: none)",
            "apis[0].transforms.request.method: `patch` is not an HTTP method",
            "apis[0].transforms.request.query.set.a&b: `a&b` is not a query parameter name",
            "apis[0].transforms.request.query: `x` is edited more than once",
            "apis[0].transforms.request.headers.set.X-A: unknown request fact `$(nope)`",
            "apis[0].transforms.staticResponse.status: 99 is not a final HTTP status",
            "apis[0].operations[1].transforms.request.path: needs either `template`",
        ] {
            assert!(joined.contains(want), "missing {want:?} in\n{joined}");
        }
    }
}
