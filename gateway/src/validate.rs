//! Request validation: a request to an operation that opts in is checked against
//! the OpenAPI document before it costs any upstream work.
//!
//! Parameters (path, query, header, cookie) are parsed by their `style` and
//! `explode`, turned into JSON by their schema's type and checked against the
//! schema; a missing required one, a missing required body, and a body whose
//! `Content-Type` the operation does not declare (`415`) are refused. A
//! credential the authenticate stage verified and removed counts as sent. Only a
//! JSON or `application/x-www-form-urlencoded` body of a validated operation is
//! buffered (up to the route's body limit) to be checked — a form's properties
//! parsed like query parameters by the document's `encoding`; every other body
//! (`multipart/form-data`, XML, ...) is checked by its content type only and
//! keeps streaming. Schemas were compiled once, at start
//! ([`mgw_bundle::contract::CheckedRequest`]).
//!
//! Never: echo more than a bounded excerpt of a client's value, or report a
//! violation without saying where (`in`, and a name or a JSON pointer).

use std::borrow::Cow;

use bytes::Bytes;
use http::HeaderMap;
use http::header::{CONTENT_TYPE, COOKIE};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use mgw_bundle::contract::{
    CheckedRequest, MediaContract, ParamIn, ParamStyle, ParameterContract, is_form, media_index,
    reasons,
};
use serde_json::{Map, Value};

mod deep_object;

use crate::auth::TakenCredentials;
use crate::bundle::CredentialIn;
use crate::error::{GatewayError, Invalid, Violation};

/// Longest excerpt of a client's value in a violation.
const MAX_EXCERPT: usize = 64;
/// Most violations listed in one answer.
const MAX_VIOLATIONS: usize = 20;

/// The body after validation: still the client's stream, or buffered and checked.
pub enum Checked {
    Stream(Incoming),
    Buffered(Bytes),
}

/// Checks the request head and, when it is JSON with a schema, the body.
pub async fn request(
    c: &CheckedRequest,
    parts: &http::request::Parts,
    path_params: &[(&str, Cow<'_, str>)],
    body: Incoming,
    limit: u64,
) -> Result<Checked, GatewayError> {
    let mut violations = parameters(c, parts, path_params);
    let mut reason = "parameter";
    let Some(bc) = &c.contract.body else {
        return finish(reason, violations, Checked::Stream(body));
    };
    let content_type = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    // No body (whatever `Content-Type` says): only its required-ness matters.
    if hyper::body::Body::is_end_stream(&body) {
        if bc.required {
            if violations.is_empty() {
                reason = "body_required";
            }
            violations.push(Violation {
                location: "body",
                name: String::new(),
                reason: "a request body is required".into(),
                value: None,
            });
        }
        return finish(reason, violations, Checked::Stream(body));
    }
    let Some(i) = content_type.and_then(|ct| media_index(&bc.content, ct)) else {
        return Err(GatewayError::UnsupportedMediaType);
    };
    let Some(validator) = c.bodies.get(i).and_then(Option::as_ref) else {
        return finish(reason, violations, Checked::Stream(body));
    };
    let bytes = match Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX))
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return Err(GatewayError::PayloadTooLarge { limit });
        }
        Err(_) => {
            return Err(GatewayError::BadRequest(
                "the request body could not be read",
            ));
        }
    };
    if violations.is_empty() {
        reason = "body";
    }
    let media = &bc.content[i];
    let parsed = match &media.schema {
        Some(root) if is_form(&media.media_type) => Ok(form_json(media, root, &bytes)),
        _ => serde_json::from_slice::<Value>(&bytes),
    };
    match parsed {
        Err(e) => violations.push(Violation {
            location: "body",
            name: String::new(),
            reason: format!("not valid JSON ({})", e.classify_str()),
            value: Some(excerpt(&String::from_utf8_lossy(&bytes))),
        }),
        Ok(v) => {
            let errors = validator.iter_errors(&v).collect::<Vec<_>>();
            for e in errors.iter().flat_map(reasons).take(MAX_VIOLATIONS) {
                violations.push(Violation {
                    location: "body",
                    name: e.instance_path().as_str().to_owned(),
                    reason: e.masked().to_string(),
                    value: Some(excerpt_json(e.instance())),
                });
            }
        }
    }
    finish(reason, violations, Checked::Buffered(bytes))
}

fn finish(
    reason: &'static str,
    mut violations: Vec<Violation>,
    ok: Checked,
) -> Result<Checked, GatewayError> {
    if violations.is_empty() {
        return Ok(ok);
    }
    violations.truncate(MAX_VIOLATIONS);
    Err(GatewayError::InvalidRequest(Box::new(Invalid {
        reason,
        violations,
    })))
}

trait ClassifyStr {
    fn classify_str(&self) -> &'static str;
}

impl ClassifyStr for serde_json::Error {
    fn classify_str(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Eof => "unexpected end",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Data | serde_json::error::Category::Io => "unreadable",
        }
    }
}

pub(crate) fn excerpt(s: &str) -> String {
    if s.len() <= MAX_EXCERPT {
        return s.to_owned();
    }
    let mut end = MAX_EXCERPT;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

fn excerpt_json(v: &Value) -> String {
    excerpt(&v.to_string())
}

/// Checks every declared parameter.
fn parameters(
    c: &CheckedRequest,
    parts: &http::request::Parts,
    path_params: &[(&str, Cow<'_, str>)],
) -> Vec<Violation> {
    let mut out = Vec::new();
    if c.contract.parameters.is_empty() {
        return out;
    }
    let query: Vec<(Cow<'_, str>, Cow<'_, str>)> = parts
        .uri
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).collect())
        .unwrap_or_default();
    for (p, validator) in c.contract.parameters.iter().zip(&c.parameters) {
        let raw = match p.location {
            ParamIn::Path => path_params
                .iter()
                .find(|(n, _)| *n == p.name)
                .map(|(_, v)| Raw::One(v.to_string())),
            ParamIn::Query => query_raw(p, &query),
            ParamIn::Header => header_raw(&parts.headers, &p.name),
            ParamIn::Cookie => cookie_raw(&parts.headers, &p.name),
        };
        let Some(raw) = raw else {
            if p.required && !taken(parts, p) {
                out.push(Violation {
                    location: p.location.as_str(),
                    name: p.name.clone(),
                    reason: "required".into(),
                    value: None,
                });
            }
            continue;
        };
        let value = coerce(p, raw);
        for e in validator.iter_errors(&value).take(MAX_VIOLATIONS) {
            let pointer = e.instance_path().as_str();
            out.push(Violation {
                location: p.location.as_str(),
                name: format!("{}{pointer}", p.name),
                reason: e.masked().to_string(),
                value: Some(excerpt_json(e.instance())),
            });
        }
    }
    out
}

/// Whether `p` is a credential the authenticate stage verified and removed: it
/// was sent (its value is the security scheme's to judge, and gone from the
/// request).
fn taken(parts: &http::request::Parts, p: &ParameterContract) -> bool {
    let location = match p.location {
        ParamIn::Header => CredentialIn::Header,
        ParamIn::Query => CredentialIn::Query,
        ParamIn::Cookie => CredentialIn::Cookie,
        ParamIn::Path => return false,
    };
    parts
        .extensions
        .get::<TakenCredentials>()
        .is_some_and(|t| t.contains(location, &p.name))
}

/// A parameter as sent, before its schema gives it a type.
enum Raw {
    One(String),
    /// Every occurrence (`form`, `explode: true`).
    Many(Vec<String>),
    /// Name/value pairs (`deepObject`, exploded `form` objects).
    Pairs(Vec<(String, String)>),
}

fn query_raw(p: &ParameterContract, query: &[(Cow<'_, str>, Cow<'_, str>)]) -> Option<Raw> {
    query_raw_in(p, &p.schema, &p.schema, query)
}

/// [`query_raw`] of a parameter whose schema is `schema` inside `root`.
fn query_raw_in(
    p: &ParameterContract,
    root: &Value,
    schema: &Value,
    query: &[(Cow<'_, str>, Cow<'_, str>)],
) -> Option<Raw> {
    match p.style {
        ParamStyle::DeepObject => {
            let prefix = format!("{}[", p.name);
            let pairs: Vec<(String, String)> = query
                .iter()
                .filter_map(|(k, v)| {
                    let prop = k.strip_prefix(&prefix)?.strip_suffix(']')?;
                    Some((prop.to_owned(), v.to_string()))
                })
                .collect();
            (!pairs.is_empty()).then_some(Raw::Pairs(pairs))
        }
        ParamStyle::Form if p.explode && type_is(root, schema, "object") => {
            let props = resolve(root, schema)
                .get("properties")
                .and_then(Value::as_object);
            let pairs: Vec<(String, String)> = query
                .iter()
                .filter(|(k, _)| props.is_some_and(|m| m.contains_key(k.as_ref())))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            (!pairs.is_empty()).then_some(Raw::Pairs(pairs))
        }
        _ => {
            let values: Vec<String> = query
                .iter()
                .filter(|(k, _)| *k == p.name)
                .map(|(_, v)| v.to_string())
                .collect();
            match values.len() {
                0 => None,
                1 if !p.explode => values.into_iter().next().map(Raw::One),
                _ => Some(Raw::Many(values)),
            }
        }
    }
}

fn header_raw(headers: &HeaderMap, name: &str) -> Option<Raw> {
    let values: Vec<&str> = headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    (!values.is_empty()).then(|| Raw::One(values.join(",")))
}

fn cookie_raw(headers: &HeaderMap, name: &str) -> Option<Raw> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| Raw::One(v.to_owned()))
}

/// Follows the builder's `$ref`s into the schema's own definitions.
fn resolve<'a>(root: &'a Value, mut s: &'a Value) -> &'a Value {
    for _ in 0..16 {
        let Some(r) = s.get("$ref").and_then(Value::as_str) else {
            return s;
        };
        let Some(ptr) = r.strip_prefix('#') else {
            return s;
        };
        match root.pointer(ptr) {
            Some(t) => s = t,
            None => return s,
        }
    }
    s
}

fn types<'a>(root: &'a Value, s: &'a Value) -> Vec<&'a str> {
    match resolve(root, s).get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn type_is(root: &Value, s: &Value, ty: &str) -> bool {
    types(root, s).contains(&ty)
}

/// A string as the JSON value its schema's type asks for; left a string when it
/// does not parse (the schema then says why).
fn scalar(root: &Value, s: &Value, text: &str) -> Value {
    for t in types(root, s) {
        match t {
            "integer" => {
                if let Ok(i) = text.parse::<i64>() {
                    return Value::from(i);
                }
                if let Ok(u) = text.parse::<u64>() {
                    return Value::from(u);
                }
            }
            "number" => {
                if let Some(n) = text
                    .parse::<f64>()
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                {
                    return Value::Number(n);
                }
            }
            "boolean" => match text {
                "true" => return Value::Bool(true),
                "false" => return Value::Bool(false),
                _ => {}
            },
            "null" if text.is_empty() => return Value::Null,
            _ => {}
        }
    }
    Value::String(text.to_owned())
}

/// Strips the `label` (`.`) or `matrix` (`;name=`) prefix of a path value.
fn unprefix<'t>(p: &ParameterContract, text: &'t str) -> &'t str {
    match p.style {
        ParamStyle::Label => text.strip_prefix('.').unwrap_or(text),
        ParamStyle::Matrix => text
            .strip_prefix(';')
            .and_then(|t| t.strip_prefix(p.name.as_str()))
            .map(|t| t.strip_prefix('=').unwrap_or(t))
            .unwrap_or(text),
        _ => text,
    }
}

fn separator(p: &ParameterContract) -> String {
    match (p.style, p.explode) {
        (ParamStyle::SpaceDelimited, _) => " ".into(),
        (ParamStyle::PipeDelimited, _) => "|".into(),
        (ParamStyle::Label, true) => ".".into(),
        (ParamStyle::Matrix, true) => format!(";{}=", p.name),
        _ => ",".into(),
    }
}

/// The parameter's value as JSON, by its style and its schema's type.
fn coerce(p: &ParameterContract, raw: Raw) -> Value {
    coerce_in(p, &p.schema, &p.schema, raw)
}

/// [`coerce`] by the schema `schema` inside `root`.
fn coerce_in(p: &ParameterContract, root: &Value, schema: &Value, raw: Raw) -> Value {
    let raw = match (p.style, raw) {
        (ParamStyle::DeepObject, Raw::Pairs(pairs)) => {
            return deep_object::value(root, schema, pairs);
        }
        (_, raw) => raw,
    };
    let top = schema;
    let schema = resolve(root, schema);
    if type_is(root, top, "array") {
        let items = schema.get("items").unwrap_or(&Value::Null);
        let parts: Vec<String> = match raw {
            Raw::Many(v) => v,
            Raw::One(t) => {
                let t = unprefix(p, &t);
                if t.is_empty() {
                    Vec::new()
                } else {
                    t.split(separator(p).as_str()).map(str::to_owned).collect()
                }
            }
            Raw::Pairs(kv) => kv.into_iter().map(|(_, v)| v).collect(),
        };
        return Value::Array(parts.iter().map(|t| scalar(root, items, t)).collect());
    }
    if type_is(root, top, "object") {
        let props = schema.get("properties");
        let pairs: Vec<(String, String)> = match raw {
            Raw::Pairs(kv) => kv,
            Raw::One(t) => object_pairs(p, &t),
            Raw::Many(v) => v.iter().flat_map(|t| object_pairs(p, t)).collect(),
        };
        let mut m = Map::new();
        for (k, v) in pairs {
            let ps = props.and_then(|ps| ps.get(&k)).unwrap_or(&Value::Null);
            m.insert(k, scalar(root, ps, &v));
        }
        return Value::Object(m);
    }
    let text = match raw {
        Raw::One(t) => t,
        Raw::Many(v) => v.into_iter().next().unwrap_or_default(),
        Raw::Pairs(kv) => kv.into_iter().next().map(|(_, v)| v).unwrap_or_default(),
    };
    scalar(root, top, unprefix(p, &text))
}

/// A `application/x-www-form-urlencoded` body as the JSON object its schema
/// describes: each property parsed like a query parameter by its `encoding`
/// (default `style: form`, `explode: true`) and typed by its schema; names the
/// schema does not declare are kept as strings (or arrays, when repeated), so
/// `additionalProperties` still judges them.
fn form_json(media: &MediaContract, root: &Value, body: &[u8]) -> Value {
    let pairs: Vec<(Cow<'_, str>, Cow<'_, str>)> = form_urlencoded::parse(body).collect();
    let props = resolve(root, root)
        .get("properties")
        .and_then(Value::as_object);
    let mut out = Map::new();
    for (name, schema) in props.into_iter().flatten() {
        let (style, explode) = media
            .encoding
            .iter()
            .find(|e| e.name == *name)
            .map_or((ParamStyle::Form, true), |e| (e.style, e.explode));
        let p = ParameterContract {
            name: name.clone(),
            location: ParamIn::Query,
            required: false,
            style,
            explode,
            schema: Value::Null,
        };
        // Only names the body sends (`name=` or `name[…]=`): an exploded
        // `form` object's keys would be the body's own top-level names.
        let sent = pairs.iter().any(|(k, _)| {
            k.strip_prefix(name.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('['))
        });
        if !sent {
            continue;
        }
        if let Some(raw) = query_raw_in(&p, root, schema, &pairs) {
            out.insert(name.clone(), coerce_in(&p, root, schema, raw));
        }
    }
    for (k, v) in &pairs {
        let declared = props.is_some_and(|ps| ps.contains_key(k.as_ref()))
            || k.split_once('[')
                .is_some_and(|(n, _)| props.is_some_and(|ps| ps.contains_key(n)));
        if declared {
            continue;
        }
        match out.get_mut(k.as_ref()) {
            Some(Value::Array(a)) => a.push(Value::String(v.to_string())),
            Some(first) => {
                let first = first.take();
                out.insert(
                    k.to_string(),
                    Value::Array(vec![first, Value::String(v.to_string())]),
                );
            }
            None => {
                out.insert(k.to_string(), Value::String(v.to_string()));
            }
        }
    }
    Value::Object(out)
}

/// `k,v,k,v` (not exploded) or `k=v,k=v` (exploded) object values.
fn object_pairs(p: &ParameterContract, text: &str) -> Vec<(String, String)> {
    let text = unprefix(p, text);
    let sep = separator(p);
    if p.explode {
        text.split(sep.as_str())
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    } else {
        let items: Vec<&str> = text.split(sep.as_str()).collect();
        items
            .chunks(2)
            .filter(|c| c.len() == 2)
            .map(|c| (c[0].to_owned(), c[1].to_owned()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn param(
        location: ParamIn,
        style: ParamStyle,
        explode: bool,
        schema: Value,
    ) -> ParameterContract {
        ParameterContract {
            name: "p".into(),
            location,
            required: false,
            style,
            explode,
            schema,
        }
    }

    fn query(p: &ParameterContract, q: &str) -> Value {
        let pairs: Vec<(Cow<'_, str>, Cow<'_, str>)> =
            form_urlencoded::parse(q.as_bytes()).collect();
        coerce(p, query_raw(p, &pairs).expect("present"))
    }

    #[test]
    fn query_styles_become_typed_json() {
        let ints = json!({"type": "array", "items": {"type": "integer"}});
        let form = param(ParamIn::Query, ParamStyle::Form, false, ints.clone());
        assert_eq!(query(&form, "p=1,2,3"), json!([1, 2, 3]));
        let exploded = param(ParamIn::Query, ParamStyle::Form, true, ints.clone());
        assert_eq!(query(&exploded, "p=1&x=y&p=2"), json!([1, 2]));
        let pipes = param(
            ParamIn::Query,
            ParamStyle::PipeDelimited,
            false,
            ints.clone(),
        );
        assert_eq!(query(&pipes, "p=1|x"), json!([1, "x"]));
        let spaces = param(ParamIn::Query, ParamStyle::SpaceDelimited, false, ints);
        assert_eq!(query(&spaces, "p=1%202"), json!([1, 2]));
        let deep = param(
            ParamIn::Query,
            ParamStyle::DeepObject,
            true,
            json!({"type": "object", "properties": {"size": {"type": "integer"}}}),
        );
        assert_eq!(
            query(&deep, "p[color]=red&p[size]=2"),
            json!({"color": "red", "size": 2})
        );
        let obj = json!({"type": "object", "properties": {"a": {"type": "boolean"}, "b": {"type": "number"}}});
        let form_obj = param(ParamIn::Query, ParamStyle::Form, true, obj);
        assert_eq!(
            query(&form_obj, "a=true&b=1.5&c=x"),
            json!({"a": true, "b": 1.5})
        );
        // Through the builder's `$ref` into the schema's own definitions.
        let r = json!({"$ref": "#/definitions/0", "definitions": {"0": {"type": "integer"}}});
        let via_ref = param(ParamIn::Query, ParamStyle::Form, true, r);
        assert_eq!(query(&via_ref, "p=7"), json!(7));
    }

    #[test]
    fn path_styles_become_typed_json() {
        let ints = json!({"type": "array", "items": {"type": "integer"}});
        let coerce_one = |p: &ParameterContract, t: &str| coerce(p, Raw::One(t.into()));
        let simple = param(ParamIn::Path, ParamStyle::Simple, false, ints.clone());
        assert_eq!(coerce_one(&simple, "3,4"), json!([3, 4]));
        let label = param(ParamIn::Path, ParamStyle::Label, true, ints.clone());
        assert_eq!(coerce_one(&label, ".3.4"), json!([3, 4]));
        let matrix = param(ParamIn::Path, ParamStyle::Matrix, true, ints);
        assert_eq!(coerce_one(&matrix, ";p=3;p=4"), json!([3, 4]));
        let one = param(
            ParamIn::Path,
            ParamStyle::Matrix,
            false,
            json!({"type": "integer"}),
        );
        assert_eq!(coerce_one(&one, ";p=5"), json!(5));
        let obj = param(
            ParamIn::Header,
            ParamStyle::Simple,
            false,
            json!({"type": "object", "properties": {"n": {"type": "integer"}}}),
        );
        assert_eq!(coerce_one(&obj, "n,1,s,x"), json!({"n": 1, "s": "x"}));
        // Not a number: left a string, so the schema says why.
        let int = param(
            ParamIn::Path,
            ParamStyle::Simple,
            false,
            json!({"type": "integer"}),
        );
        assert_eq!(coerce_one(&int, "abc"), json!("abc"));
    }

    proptest::proptest! {
        /// Whatever a client sends, parsing parameters never panics.
        #[test]
        fn any_parameter_text_parses_without_panicking(q in ".{0,64}", t in ".{0,32}") {
            let schemas = [
                json!({"type": "array", "items": {"type": "integer"}}),
                json!({"type": "object", "properties": {"a": {"type": "number"}}}),
                json!({"type": ["integer", "null"]}),
                json!({"type": "boolean"}),
            ];
            let styles = [
                ParamStyle::Simple, ParamStyle::Label, ParamStyle::Matrix, ParamStyle::Form,
                ParamStyle::SpaceDelimited, ParamStyle::PipeDelimited, ParamStyle::DeepObject,
            ];
            for schema in &schemas {
                for style in styles {
                    for explode in [false, true] {
                        let p = param(ParamIn::Query, style, explode, schema.clone());
                        let pairs: Vec<(Cow<'_, str>, Cow<'_, str>)> =
                            form_urlencoded::parse(q.as_bytes()).collect();
                        if let Some(raw) = query_raw(&p, &pairs) {
                            coerce(&p, raw);
                        }
                        coerce(&p, Raw::One(t.clone()));
                    }
                }
            }
        }
    }

    proptest::proptest! {
        /// Whatever form body a client sends, reading it never panics and gives
        /// an object.
        #[test]
        fn any_form_body_reads_without_panicking(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..96), text in "[a-z=&%\\[\\]|,0-9]{0,64}") {
            let root = json!({"$ref": "#/definitions/0", "definitions": {"0": {"type": "object", "properties": {
                "a": {"type": "array", "items": {"type": "integer"}},
                "o": {"type": "object", "properties": {"n": {"type": "number"}}},
                "b": {"type": "boolean"},
                "p": {"type": "array", "items": {"type": "string"}},
            }}}});
            let media = MediaContract {
                media_type: "application/x-www-form-urlencoded".into(),
                schema: Some(root.clone()),
                encoding: vec![
                    mgw_bundle::contract::PropertyEncoding { name: "o".into(), style: ParamStyle::DeepObject, explode: true },
                    mgw_bundle::contract::PropertyEncoding { name: "p".into(), style: ParamStyle::PipeDelimited, explode: false },
                ],
            };
            proptest::prop_assert!(form_json(&media, &root, &body).is_object());
            proptest::prop_assert!(form_json(&media, &root, text.as_bytes()).is_object());
        }
    }

    #[test]
    fn form_bodies_become_typed_json() {
        let root = json!({"type": "object", "properties": {
            "n": {"type": "integer"}, "ids": {"type": "array", "items": {"type": "integer"}},
            "f": {"type": "object", "properties": {"s": {"type": "integer"}}},
        }});
        let media = MediaContract {
            media_type: "application/x-www-form-urlencoded".into(),
            schema: Some(root.clone()),
            encoding: vec![mgw_bundle::contract::PropertyEncoding {
                name: "f".into(),
                style: ParamStyle::DeepObject,
                explode: true,
            }],
        };
        assert_eq!(
            form_json(&media, &root, b"n=1&ids=2&ids=3&f%5Bs%5D=4&x=y&x=z"),
            json!({"n": 1, "ids": [2, 3], "f": {"s": 4}, "x": ["y", "z"]})
        );
    }

    #[test]
    fn excerpts_are_bounded_on_char_boundaries() {
        let e = excerpt(&"é".repeat(100));
        assert!(e.len() <= MAX_EXCERPT + '…'.len_utf8(), "{}", e.len());
        assert!(e.ends_with('…'));
        assert_eq!(excerpt("short"), "short");
    }
}
