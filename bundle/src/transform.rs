//! Declarative transforms: what an API (`apis[].transforms` in `mgw.yaml`) or an
//! operation (`x-mgw-transforms`) changes on the request it forwards and on the
//! response it returns, without code.
//!
//! Two layers, as for every setting: [`Transforms`] is the wire form (the same
//! shape in `mgw.yaml`, in the document and in the bundle; unknown fields
//! denied), [`TransformCfg`] the checked form the gateway runs (header names
//! parsed, `${VAR}` resolved, value templates split into text and request
//! facts, static values already [`HeaderValue`]s). The checks themselves live in
//! `check::transforms`; this module holds the types and the value-template
//! grammar, and imports nothing else from the crate.
//!
//! Value templates: `${VAR}` / `${VAR:-default}` come from the environment at
//! start; `$(fact)` is read per request: `$(claim.NAME)`, `$(consumer)`,
//! `$(client.ip)`, `$(request.id)`, `$(path.NAME)` (a path parameter of the
//! operation). A path rewrite template writes parameters as `{NAME}`.

use std::collections::BTreeMap;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, StatusCode};
use serde::{Deserialize, Serialize};

// ---------------------------------------------------------------------------
// Wire format
// ---------------------------------------------------------------------------

/// What an API or an operation changes. An operation's transforms apply after
/// its API's; its `path`, `method` and `staticResponse` replace the API's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Transforms {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<RequestTransforms>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<ResponseTransforms>,
    /// Answer with this response instead of calling the upstream (after
    /// authentication and rate limits, so a mock stays protected).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub static_response: Option<StaticResponse>,
}

/// Changes to the request sent upstream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RequestTransforms {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<Edits>,
    /// Query parameters (names compared percent-decoded; values are encoded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<Edits>,
    /// The path after the API's base path, as the upstream sees it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathRewrite>,
    /// The method sent upstream (WSO2's method override).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
}

/// Changes to the upstream's response (the gateway's own answers are untouched).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ResponseTransforms {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<Edits>,
}

/// Edits of named values (headers or query parameters), applied in this order:
/// `remove`, `rename`, `set` (replaces every value), `add` (appends one).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Edits {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<String>,
    /// Old name → new name (the values move; nothing happens when absent).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rename: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub set: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub add: BTreeMap<String, String>,
}

/// Exactly one of `template` (`/v2/animals/{id}`: the whole path, with the
/// operation's path parameters) and `prefix` + `to` (a leading run of
/// segments replaced: `/pets` → `/v2/animals`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PathRewrite {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
}

/// A fixed answer. Header values may use `${VAR}`, not request facts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StaticResponse {
    pub status: u16,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub body: String,
}

impl Transforms {
    /// Every value that may hold `${VAR}`, with its key path under the block
    /// (`.request.headers.set.X-Env`), for the list of variables a deployment sets.
    pub fn templates(&self) -> Vec<(String, &str)> {
        let mut out = Vec::new();
        let request = self.request.as_ref();
        let blocks = [
            (".request.headers", request.and_then(|r| r.headers.as_ref())),
            (".request.query", request.and_then(|r| r.query.as_ref())),
            (
                ".response.headers",
                self.response.as_ref().and_then(|r| r.headers.as_ref()),
            ),
        ];
        for (at, e) in blocks {
            let Some(e) = e else { continue };
            for (what, map) in [("set", &e.set), ("add", &e.add)] {
                for (name, value) in map {
                    out.push((format!("{at}.{what}.{name}"), value.as_str()));
                }
            }
        }
        if let Some(s) = &self.static_response {
            for (name, value) in &s.headers {
                out.push((format!(".staticResponse.headers.{name}"), value.as_str()));
            }
        }
        out
    }
}

// ---------------------------------------------------------------------------
// Checked form
// ---------------------------------------------------------------------------

/// The transforms of one route, API and operation merged, ready to run.
#[derive(Debug, Clone, Default)]
pub struct TransformCfg {
    pub request_headers: Vec<Edit<HeaderName>>,
    pub query: Vec<Edit<String>>,
    pub path: Option<PathRewriteCfg>,
    pub method: Option<Method>,
    pub response_headers: Vec<Edit<HeaderName>>,
    pub static_response: Option<StaticResponseCfg>,
    /// Some template reads a path parameter, so the gateway must extract them
    /// (set by [`TransformCfg::merge`], not per request).
    pub reads_path_params: bool,
}

impl TransformCfg {
    fn scan_path_params(&self) -> bool {
        let edits = self
            .request_headers
            .iter()
            .chain(&self.response_headers)
            .filter_map(Edit::value)
            .chain(self.query.iter().filter_map(Edit::value));
        let mut parts = edits.flat_map(|v| match v {
            ValueTemplate::Static(_) => &[][..],
            ValueTemplate::Dynamic(p) => p.as_slice(),
        });
        parts.any(|p| matches!(p, Part::Fact(Fact::Path(_))))
            || matches!(self.path, Some(PathRewriteCfg::Template(_)))
    }

    fn is_empty(&self) -> bool {
        self.request_headers.is_empty()
            && self.query.is_empty()
            && self.path.is_none()
            && self.method.is_none()
            && self.response_headers.is_empty()
            && self.static_response.is_none()
    }

    /// The route's transforms: the API's, then the operation's. `None` when
    /// there is nothing to do, so such a route costs nothing per request.
    pub fn merge(api: Option<&TransformCfg>, op: Option<TransformCfg>) -> Option<TransformCfg> {
        let mut out = api.cloned().unwrap_or_default();
        if let Some(op) = op {
            out.request_headers.extend(op.request_headers);
            out.query.extend(op.query);
            out.response_headers.extend(op.response_headers);
            out.path = op.path.or(out.path);
            out.method = op.method.or(out.method);
            out.static_response = op.static_response.or(out.static_response);
        }
        out.reads_path_params = out.scan_path_params();
        (!out.is_empty()).then_some(out)
    }
}

/// One edit of a named value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Edit<N> {
    Remove(N),
    Rename { from: N, to: N },
    Set(N, ValueTemplate),
    Add(N, ValueTemplate),
}

impl<N> Edit<N> {
    pub fn value(&self) -> Option<&ValueTemplate> {
        match self {
            Edit::Set(_, v) | Edit::Add(_, v) => Some(v),
            _ => None,
        }
    }
}

/// A value: fixed at start, or assembled per request from text and facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueTemplate {
    Static(HeaderValue),
    Dynamic(Vec<Part>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Text(String),
    Fact(Fact),
}

/// A fact of the request being served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fact {
    /// A claim of the caller's token (`$(claim.tenant)`).
    Claim(String),
    /// The authenticated consumer.
    Consumer,
    /// The client's address after trusted proxies.
    ClientIp,
    RequestId,
    /// A path parameter of the operation (`$(path.petId)`, `{petId}` in a path).
    Path(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathRewriteCfg {
    /// Parts are text and [`Fact::Path`] only.
    Template(Vec<Part>),
    /// `from` and `to` without a trailing `/`; `from` matches whole segments.
    Prefix { from: String, to: String },
}

#[derive(Debug, Clone)]
pub struct StaticResponseCfg {
    pub status: StatusCode,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Bytes,
}

// ---------------------------------------------------------------------------
// Gateway-owned headers
// ---------------------------------------------------------------------------

/// Request headers the gateway sets or strips itself: a transform may not
/// remove, rename, set or add them (claim headers of the API are checked too).
pub const OWNED_REQUEST_HEADERS: &[&str] = &[
    "x-request-id",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
];

/// Response headers the gateway sets or strips itself; `ratelimit*`,
/// `x-ratelimit-*` and `access-control-*` are refused by prefix.
pub const OWNED_RESPONSE_HEADERS: &[&str] = &[
    "x-request-id",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
    "proxy-connection",
    "proxy-authenticate",
];

pub const OWNED_RESPONSE_PREFIXES: &[&str] = &["ratelimit", "x-ratelimit-", "access-control-"];

// ---------------------------------------------------------------------------
// Value templates
// ---------------------------------------------------------------------------

/// A piece of a value template before `${VAR}` is resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawPart<'a> {
    /// Text that may hold `${VAR}` templates.
    Text(&'a str),
    Fact(Fact),
}

/// Splits a value into text and `$(fact)`s. `${VAR}` stays inside the text
/// (the environment is resolved by the caller), so an environment value can
/// never become a fact.
pub fn split_value(value: &str) -> Result<Vec<RawPart<'_>>, String> {
    let mut out = Vec::new();
    // Start of the text not yet pushed, and where to search for the next `$(`.
    let (mut text, mut from) = (0, 0);
    while let Some(i) = value[from..].find("$(").map(|i| i + from) {
        let dollars = value[..i].bytes().rev().take_while(|&b| b == b'$').count();
        if dollars % 2 == 1 {
            // `$$(` is a literal `$(`: the environment pass turns `$$` into `$`.
            from = i + 2;
            continue;
        }
        if i > text {
            out.push(RawPart::Text(&value[text..i]));
        }
        let body = &value[i + 2..];
        let end = body
            .find(')')
            .ok_or_else(|| format!("unterminated `$(` in `{value}`"))?;
        out.push(RawPart::Fact(parse_fact(&body[..end])?));
        text = i + 2 + end + 1;
        from = text;
    }
    if text < value.len() {
        out.push(RawPart::Text(&value[text..]));
    }
    Ok(out)
}

const FACTS: &str =
    "`$(claim.NAME)`, `$(consumer)`, `$(client.ip)`, `$(request.id)`, `$(path.NAME)`";

fn parse_fact(name: &str) -> Result<Fact, String> {
    let named = |what: &str, n: &str| {
        if n.is_empty() {
            Err(format!("`$({what}.)` needs a name"))
        } else {
            Ok(n.to_owned())
        }
    };
    match name {
        "consumer" => Ok(Fact::Consumer),
        "client.ip" => Ok(Fact::ClientIp),
        "request.id" => Ok(Fact::RequestId),
        _ => {
            if let Some(n) = name.strip_prefix("claim.") {
                named("claim", n).map(Fact::Claim)
            } else if let Some(n) = name.strip_prefix("path.") {
                named("path", n).map(Fact::Path)
            } else {
                Err(format!("unknown request fact `$({name})`; known: {FACTS}"))
            }
        }
    }
}

/// Splits a path template (`/v2/animals/{id}`) into text and parameters.
pub fn split_path_template(template: &str) -> Result<Vec<Part>, String> {
    if !template.starts_with('/') {
        return Err(format!("`{template}` must start with `/`"));
    }
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(i) = rest.find('{') {
        if i > 0 {
            out.push(Part::Text(rest[..i].to_owned()));
        }
        let body = &rest[i + 1..];
        let end = body
            .find('}')
            .ok_or_else(|| format!("unterminated `{{` in `{template}`"))?;
        let name = body[..end].trim_end_matches('+');
        if name.is_empty() || name.contains(['{', '/']) {
            return Err(format!(
                "`{{{}}}` in `{template}` is not a parameter",
                &body[..end]
            ));
        }
        out.push(Part::Fact(Fact::Path(name.to_owned())));
        rest = &body[end + 1..];
    }
    if rest.contains('}') {
        return Err(format!("unmatched `}}` in `{template}`"));
    }
    if !rest.is_empty() {
        out.push(Part::Text(rest.to_owned()));
    }
    Ok(out)
}

/// The parameter names of an operation path (`/pets/{petId}/{rest+}`).
pub fn path_params(path: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = path;
    while let Some(i) = rest.find('{') {
        let body = &rest[i + 1..];
        let Some(end) = body.find('}') else { break };
        out.push(body[..end].trim_end_matches('+'));
        rest = &body[end + 1..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_split_into_text_and_facts() {
        let parts = split_value("t=$(claim.tenant);ip=$(client.ip)${ENV:-x}").unwrap();
        assert_eq!(
            parts,
            vec![
                RawPart::Text("t="),
                RawPart::Fact(Fact::Claim("tenant".into())),
                RawPart::Text(";ip="),
                RawPart::Fact(Fact::ClientIp),
                RawPart::Text("${ENV:-x}"),
            ]
        );
        assert_eq!(
            split_value("a$$(b)").unwrap(),
            vec![RawPart::Text("a$$(b)")]
        );
        assert!(
            split_value("$(nope)")
                .unwrap_err()
                .contains("unknown request fact")
        );
        assert!(
            split_value("$(claim.x")
                .unwrap_err()
                .contains("unterminated")
        );
        assert!(
            split_value("$(claim.)")
                .unwrap_err()
                .contains("needs a name")
        );
    }

    #[test]
    fn path_templates_and_params() {
        assert_eq!(
            split_path_template("/v2/animals/{id}/x").unwrap(),
            vec![
                Part::Text("/v2/animals/".into()),
                Part::Fact(Fact::Path("id".into())),
                Part::Text("/x".into()),
            ]
        );
        assert!(split_path_template("v2").is_err());
        assert!(split_path_template("/a/{}").is_err());
        assert!(split_path_template("/a/{b").is_err());
        assert_eq!(path_params("/pets/{petId}/{rest+}"), vec!["petId", "rest"]);
    }
}
