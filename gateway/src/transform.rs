//! The transform stage: the declarative changes an API or operation asks for
//! (`transforms` in the bundle, checked into [`TransformCfg`] by `mgw-bundle`),
//! applied to the request just before it is forwarded and to the upstream's
//! response headers just after.
//!
//! It sits after authentication, rate limiting and the body limit: the checks
//! see the request as the client sent it (a transform can never make a request
//! pass a policy it failed), claims are known for `$(claim.…)`, and a static
//! response is answered only to callers every policy let through. It never
//! touches a gateway-owned header (the bundle check refuses such transforms),
//! never sees the gateway's own error answers, and costs nothing on a route
//! without transforms (the pipeline does not call it).
//!
//! A value whose request fact is missing (no token, an absent claim or
//! parameter) is not set, and neither is one that is not a valid header value.

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;

use http::header::{Entry, HeaderMap, HeaderName, HeaderValue};
use http::uri::PathAndQuery;
use http::{Request, Response, Uri};
use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, percent_encode};

use crate::auth::Identity;
use crate::body::ResponseBody;
use crate::bundle::transform::{Edit, Fact, Part, PathRewriteCfg, TransformCfg, ValueTemplate};
use crate::error::GatewayError;
use crate::proxy::split_base;
use crate::ratelimit::Claims;
use crate::router::Params;

/// What a transform may read about the request being served.
pub struct Facts<'a, 'r, 'p> {
    pub identity: Option<&'a Identity>,
    pub client_ip: IpAddr,
    pub request_id: &'a HeaderValue,
    /// Decoded path parameters (empty unless `TransformCfg::reads_path_params`).
    pub params: &'a Params<'r, 'p>,
    /// Path segments of the API's base path (kept as the client sent them).
    pub base_segments: usize,
}

/// What the stage decided.
pub enum Outcome {
    /// Forward the (changed) request; apply these to the upstream's response.
    Forward(Option<ResponseEdits>),
    /// Answer with this static response instead of calling the upstream.
    Answer(Response<ResponseBody>),
}

/// The response-header edits of a route, with their per-request values
/// resolved while the request's facts were at hand.
pub struct ResponseEdits {
    cfg: Arc<TransformCfg>,
    /// One entry per `response_headers` edit with a dynamic value.
    resolved: Vec<Option<HeaderValue>>,
}

impl ResponseEdits {
    /// Applies the edits to an upstream response's headers.
    pub fn apply(&self, headers: &mut HeaderMap) {
        let mut dynamic = self.resolved.iter();
        edit_headers(headers, &self.cfg.response_headers, |v| match v {
            ValueTemplate::Static(v) => Some(v.clone()),
            ValueTemplate::Dynamic(_) => dynamic.next().cloned().flatten(),
        });
    }
}

/// Applies a route's request transforms, or answers its static response.
pub fn on_request<B>(
    cfg: &Arc<TransformCfg>,
    req: &mut Request<B>,
    facts: &Facts<'_, '_, '_>,
) -> Result<Outcome, GatewayError> {
    if let Some(s) = &cfg.static_response {
        let mut response = Response::new(ResponseBody::full(s.body.clone()));
        *response.status_mut() = s.status;
        let headers = response.headers_mut();
        for (name, value) in &s.headers {
            headers.append(name.clone(), value.clone());
        }
        return Ok(Outcome::Answer(response));
    }
    edit_headers(req.headers_mut(), &cfg.request_headers, |v| {
        resolve(v, facts)
    });
    if cfg.path.is_some() || !cfg.query.is_empty() {
        let uri = rewrite_uri(cfg, req.uri(), facts)?;
        *req.uri_mut() = uri;
    }
    if let Some(m) = &cfg.method {
        *req.method_mut() = m.clone();
    }
    if cfg.response_headers.is_empty() {
        return Ok(Outcome::Forward(None));
    }
    let resolved = cfg
        .response_headers
        .iter()
        .filter_map(Edit::value)
        .filter(|v| matches!(v, ValueTemplate::Dynamic(_)))
        .map(|v| resolve(v, facts))
        .collect();
    Ok(Outcome::Forward(Some(ResponseEdits {
        cfg: cfg.clone(),
        resolved,
    })))
}

/// Remove, rename, set, add, in the order the check produced them.
fn edit_headers(
    headers: &mut HeaderMap,
    edits: &[Edit<HeaderName>],
    mut value: impl FnMut(&ValueTemplate) -> Option<HeaderValue>,
) {
    for e in edits {
        match e {
            Edit::Remove(n) => {
                headers.remove(n);
            }
            Edit::Rename { from, to } => {
                if let Entry::Occupied(entry) = headers.entry(from) {
                    let (_, values) = entry.remove_entry_mult();
                    let values: Vec<HeaderValue> = values.collect();
                    for v in values {
                        headers.append(to.clone(), v);
                    }
                }
            }
            Edit::Set(n, v) => {
                if let Some(v) = value(v) {
                    headers.insert(n.clone(), v);
                }
            }
            Edit::Add(n, v) => {
                if let Some(v) = value(v) {
                    headers.append(n.clone(), v);
                }
            }
        }
    }
}

/// The value of a template for this request; `None` when a fact is missing or
/// the result is not a valid header value.
fn resolve(v: &ValueTemplate, facts: &Facts<'_, '_, '_>) -> Option<HeaderValue> {
    match v {
        ValueTemplate::Static(v) => Some(v.clone()),
        ValueTemplate::Dynamic(parts) => {
            let mut out = String::new();
            for p in parts {
                match p {
                    Part::Text(t) => out.push_str(t),
                    Part::Fact(f) => out.push_str(&fact(f, facts)?),
                }
            }
            HeaderValue::from_str(&out).ok()
        }
    }
}

fn fact<'a>(f: &Fact, facts: &'a Facts<'_, '_, '_>) -> Option<Cow<'a, str>> {
    match f {
        Fact::Claim(name) => facts.identity?.claim(name),
        Fact::Consumer => facts.identity.map(|i| Cow::Borrowed(&*i.consumer)),
        Fact::ClientIp => Some(Cow::Owned(facts.client_ip.to_string())),
        Fact::RequestId => facts.request_id.to_str().ok().map(Cow::Borrowed),
        Fact::Path(name) => facts.params.get(name).map(Cow::Borrowed),
    }
}

/// Characters escaped in a path parameter written into a rewritten path (`/`
/// is kept so a catch-all parameter keeps its segments).
const PATH_PARAM: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// Characters escaped in a query parameter name or value.
const QUERY: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'&')
    .add(b'+')
    .add(b'<')
    .add(b'=')
    .add(b'>');

/// The request target with the path rewritten and the query edited; the base
/// path stays as the client sent it (the proxy removes it by segment count).
fn rewrite_uri(
    cfg: &TransformCfg,
    uri: &Uri,
    facts: &Facts<'_, '_, '_>,
) -> Result<Uri, GatewayError> {
    let (base, rest) = split_base(uri.path(), facts.base_segments);
    let mut target = String::with_capacity(uri.path().len() + 32);
    target.push_str(base);
    match &cfg.path {
        None => target.push_str(rest),
        Some(PathRewriteCfg::Template(parts)) => {
            for p in parts {
                match p {
                    Part::Text(t) => target.push_str(t),
                    Part::Fact(f) => {
                        let value = fact(f, facts).ok_or(GatewayError::BadPath)?;
                        // A decoded `%2F..` must not become a dot segment upstream.
                        if value.split('/').any(|s| s == "." || s == "..") {
                            return Err(GatewayError::BadPath);
                        }
                        target.extend(percent_encode(value.as_bytes(), PATH_PARAM));
                    }
                }
            }
        }
        Some(PathRewriteCfg::Prefix { from, to }) => match rest.strip_prefix(from.as_str()) {
            Some(tail) if tail.is_empty() || tail.starts_with('/') => {
                target.push_str(to);
                target.push_str(tail);
            }
            _ => target.push_str(rest),
        },
    }
    let query = if cfg.query.is_empty() {
        uri.query().map(Cow::Borrowed)
    } else {
        edit_query(uri.query(), &cfg.query, facts).map(Cow::Owned)
    };
    if let Some(q) = query {
        target.push('?');
        target.push_str(&q);
    }
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(
        PathAndQuery::from_maybe_shared(target)
            .map_err(|_| GatewayError::BadRequest("the rewritten request target is not valid"))?,
    );
    Uri::from_parts(parts)
        .map_err(|_| GatewayError::BadRequest("the rewritten request target is not valid"))
}

/// The query string with the edits applied (`None`: no parameter left). Names
/// are compared percent-decoded; pairs the edits do not touch keep their bytes.
fn edit_query(
    query: Option<&str>,
    edits: &[Edit<String>],
    facts: &Facts<'_, '_, '_>,
) -> Option<String> {
    let decoded = |raw: &str| -> String {
        percent_decode_str(&raw.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    // (decoded name, the pair as it will be written)
    let mut pairs: Vec<(String, String)> = query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .filter(|p| !p.is_empty())
        .map(|p| {
            let name = p.split_once('=').map_or(p, |(n, _)| n);
            (decoded(name), p.to_owned())
        })
        .collect();
    let encode = |s: &str| percent_encode(s.as_bytes(), QUERY).to_string();
    for e in edits {
        match e {
            Edit::Remove(n) => pairs.retain(|(name, _)| name != n),
            Edit::Rename { from, to } => {
                for (name, pair) in pairs.iter_mut().filter(|(name, _)| name == from) {
                    let value = pair.split_once('=').map(|(_, v)| v.to_owned());
                    *pair = match value {
                        Some(v) => format!("{}={v}", encode(to)),
                        None => encode(to),
                    };
                    name.clone_from(to);
                }
            }
            Edit::Set(n, v) | Edit::Add(n, v) => {
                let Some(value) = resolve(v, facts) else {
                    continue;
                };
                if matches!(e, Edit::Set(..)) {
                    pairs.retain(|(name, _)| name != n);
                }
                let value = percent_encode(value.as_bytes(), QUERY);
                pairs.push((n.clone(), format!("{}={value}", encode(n))));
            }
        }
    }
    (!pairs.is_empty()).then(|| {
        pairs
            .into_iter()
            .map(|(_, p)| p)
            .collect::<Vec<_>>()
            .join("&")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts<'a>(
        params: &'a Params<'static, 'static>,
        rid: &'a HeaderValue,
    ) -> Facts<'a, 'static, 'static> {
        Facts {
            identity: None,
            client_ip: "10.1.2.3".parse().unwrap(),
            request_id: rid,
            params,
            base_segments: 1,
        }
    }

    #[test]
    fn query_edits_keep_untouched_pairs_byte_for_byte() {
        let rid = HeaderValue::from_static("r-1");
        let params = Params::default();
        let f = facts(&params, &rid);
        let edits = vec![
            Edit::Remove("debug".to_owned()),
            Edit::Rename {
                from: "q".to_owned(),
                to: "search term".to_owned(),
            },
            Edit::Set(
                "page".to_owned(),
                ValueTemplate::Static(HeaderValue::from_static("1")),
            ),
            Edit::Add(
                "from".to_owned(),
                ValueTemplate::Dynamic(vec![
                    Part::Text("ip ".into()),
                    Part::Fact(Fact::ClientIp),
                    Part::Text("&x".into()),
                ]),
            ),
        ];
        let q = edit_query(Some("a=%2F&debug=1&q=cat&page=3&deb%75g"), &edits, &f);
        assert_eq!(
            q.as_deref(),
            Some("a=%2F&search%20term=cat&page=1&from=ip%2010.1.2.3%26x")
        );
        assert_eq!(edit_query(Some("debug"), &edits[..1], &f), None);
        // A fact that is missing leaves the parameter out.
        let claim = Edit::Add(
            "t".to_owned(),
            ValueTemplate::Dynamic(vec![Part::Fact(Fact::Claim("tenant".into()))]),
        );
        assert_eq!(
            edit_query(Some("a=1"), &[claim], &f).as_deref(),
            Some("a=1")
        );
    }

    proptest::proptest! {
        /// Any client query: `remove` drops exactly the pairs of that (decoded)
        /// name and keeps the others byte for byte, and the other edits leave a
        /// request target that parses.
        #[test]
        fn query_edits_on_any_client_query(
            pairs in proptest::collection::vec("(a|b|%61|a\\+)(=[!-%'-~]{0,4})?", 0..6),
            name in "a|b|a ",
        ) {
            let q = pairs.join("&");
            let rid = HeaderValue::from_static("r");
            let params = Params::default();
            let f = facts(&params, &rid);
            let decoded = |raw: &str| {
                percent_decode_str(&raw.replace('+', " ")).decode_utf8_lossy().into_owned()
            };
            let kept: Vec<&str> = q
                .split('&')
                .filter(|p| !p.is_empty())
                .filter(|p| decoded(p.split_once('=').map_or(p, |(n, _)| n)) != name)
                .collect();
            let out = edit_query(Some(&q), &[Edit::Remove(name.clone())], &f);
            proptest::prop_assert_eq!(out.unwrap_or_default(), kept.join("&"));
            let edits = [
                Edit::Rename { from: name.clone(), to: "r n".to_owned() },
                Edit::Add(name.clone(), ValueTemplate::Static(HeaderValue::from_static("v&w"))),
            ];
            let edited = edit_query(Some(&q), &edits, &f).unwrap_or_default();
            // What the client sent was a valid target; the edits keep it one.
            if PathAndQuery::try_from(format!("/?{q}")).is_ok() {
                proptest::prop_assert!(
                    PathAndQuery::try_from(format!("/?{edited}")).is_ok(),
                    "{}",
                    edited
                );
            }
        }
    }
}
