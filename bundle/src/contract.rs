//! The OpenAPI document as a contract: what an operation accepts (request
//! validation) and what it answers when mocked, as the builder extracts it from
//! the document, `$ref`s resolved, and the one rule that compiles a schema.
//!
//! The builder writes plain JSON Schema here: OpenAPI 3.0's dialect is rewritten
//! to draft 4 (`nullable` becomes a `null` type, `readOnly` properties stop being
//! required in requests) and 3.1's is JSON Schema 2020-12 as written. Both the
//! builder (at build time, with file:line:col) and the gateway (once, at start)
//! compile every schema with [`compile_schema`], so a schema that reaches an image
//! always compiles. Never: resolve a reference over the network or from a file
//! (the builder inlined every reference; the validator has no retriever).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `apis[].validation` in `mgw.yaml`: what the gateway checks against the document.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ValidationSettings {
    /// Validate requests (parameters, content type, JSON bodies) of every
    /// operation; `x-mgw-validate-request` on an operation overrides it.
    #[serde(default)]
    pub request: bool,
    /// Check upstream responses against the document, in report mode (never
    /// blocking): status, content type and, for a sample, the JSON body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub responses: Option<ResponseCheckSettings>,
}

/// `apis[].validation.responses`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ResponseCheckSettings {
    /// Percentage (0–100) of responses whose JSON body is checked; status and
    /// content type are checked on every response.
    #[serde(default = "default_sample_percent")]
    pub body_sample_percent: u8,
}

fn default_sample_percent() -> u8 {
    100
}

/// What the document declares an operation answers, for response checks.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ResponseContract {
    pub dialect: Dialect,
    pub body_sample_percent: u8,
    /// In document order: `200`, `4XX`, `default`.
    pub responses: Vec<DeclaredResponse>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DeclaredResponse {
    pub status: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub content: Vec<MediaContract>,
}

/// The JSON Schema dialect of an operation's schemas.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Dialect {
    /// OpenAPI 3.0 (and Swagger 2.0) schemas, rewritten to draft 4.
    #[default]
    #[serde(rename = "draft4")]
    Draft4,
    /// OpenAPI 3.1 schemas.
    #[serde(rename = "draft2020-12")]
    Draft202012,
}

/// What a validated operation accepts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RequestContract {
    pub dialect: Dialect,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<ParameterContract>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<BodyContract>,
}

/// Where a parameter is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ParamIn {
    Path,
    Query,
    Header,
    Cookie,
}

impl ParamIn {
    pub fn as_str(self) -> &'static str {
        match self {
            ParamIn::Path => "path",
            ParamIn::Query => "query",
            ParamIn::Header => "header",
            ParamIn::Cookie => "cookie",
        }
    }

    /// The default `style` of a parameter in this location (OAS 3).
    pub fn default_style(self) -> ParamStyle {
        match self {
            ParamIn::Path | ParamIn::Header => ParamStyle::Simple,
            ParamIn::Query | ParamIn::Cookie => ParamStyle::Form,
        }
    }
}

/// How an array or object parameter is serialized (OAS 3 `style`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ParamStyle {
    Simple,
    Label,
    Matrix,
    Form,
    SpaceDelimited,
    PipeDelimited,
    DeepObject,
}

impl ParamStyle {
    pub fn parse(s: &str) -> Option<ParamStyle> {
        Some(match s {
            "simple" => ParamStyle::Simple,
            "label" => ParamStyle::Label,
            "matrix" => ParamStyle::Matrix,
            "form" => ParamStyle::Form,
            "spaceDelimited" => ParamStyle::SpaceDelimited,
            "pipeDelimited" => ParamStyle::PipeDelimited,
            "deepObject" => ParamStyle::DeepObject,
            _ => return None,
        })
    }
}

/// One declared parameter, with its schema (references inlined).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ParameterContract {
    pub name: String,
    #[serde(rename = "in")]
    pub location: ParamIn,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub required: bool,
    pub style: ParamStyle,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub explode: bool,
    /// `{}` when the document declares none.
    pub schema: Value,
}

/// The declared request body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BodyContract {
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub required: bool,
    /// Declared media types (or ranges such as `application/*`), in document
    /// order; JSON ones carry their schema.
    pub content: Vec<MediaContract>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MediaContract {
    pub media_type: String,
    /// JSON media types, and `application/x-www-form-urlencoded` request bodies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<Value>,
    /// How a form body's properties are serialized (OpenAPI `encoding`): the
    /// properties the document names; every other one is `style: form`,
    /// `explode: true`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub encoding: Vec<PropertyEncoding>,
}

/// One property of a form body, serialized like a query parameter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PropertyEncoding {
    pub name: String,
    pub style: ParamStyle,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub explode: bool,
}

/// Is `media_type` (parameters ignored) `application/x-www-form-urlencoded`?
pub fn is_form(media_type: &str) -> bool {
    media_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .eq_ignore_ascii_case("application/x-www-form-urlencoded")
}

/// The answer of a mocked operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MockContract {
    pub status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// In document order; the first is served unless `Prefer: example=NAME`
    /// names another. Empty: the answer has no body.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub examples: Vec<NamedExample>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NamedExample {
    pub name: String,
    pub value: Value,
}

/// Is `media_type` (parameters ignored) JSON: `application/json`, `*/*+json`
/// (a range such as `application/*+json` included), or `text/json` (which
/// ASP.NET and Swashbuckle's documents accept as JSON)?
pub fn is_json(media_type: &str) -> bool {
    let essence = essence(media_type);
    essence == "application/json" || essence == "text/json" || essence.ends_with("+json")
}

/// A media type without its parameters, lowercase.
fn essence(media_type: &str) -> String {
    media_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// The declared media type (or range) that `content_type` matches, by
/// essence; the most specific one wins, as OpenAPI says (`text/plain` over
/// `text/*`): the type itself, then a structured-suffix range
/// (`application/*+json` takes `application/merge-patch+json`), then `type/*`,
/// then `*/*`; the first declared among equals.
pub fn media_index(declared: &[MediaContract], content_type: &str) -> Option<usize> {
    let essence = essence(content_type);
    let (ty, sub) = essence.split_once('/')?;
    let specificity = |declared: &str| -> Option<u8> {
        let d = declared.to_ascii_lowercase();
        let (dty, dsub) = d.split_once('/')?;
        if d == essence {
            Some(3)
        } else if dty != ty && dty != "*" {
            None
        } else if let Some(suffix) = dsub.strip_prefix('*').filter(|s| s.starts_with('+')) {
            (dty == ty && sub.ends_with(suffix) && sub.len() > suffix.len()).then_some(2)
        } else if dsub == "*" {
            Some(if dty == "*" { 0 } else { 1 })
        } else {
            None
        }
    };
    declared
        .iter()
        .enumerate()
        .filter_map(|(i, m)| Some((specificity(&m.media_type)?, i)))
        .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)))
        .map(|(_, i)| i)
}

/// The one rule that compiles a schema of the bundle: the dialect's draft, formats
/// asserted, no reference resolved outside the schema itself.
pub fn compile_schema(dialect: Dialect, schema: &Value) -> Result<jsonschema::Validator, String> {
    let draft = match dialect {
        Dialect::Draft4 => jsonschema::Draft::Draft4,
        Dialect::Draft202012 => jsonschema::Draft::Draft202012,
    };
    jsonschema::options()
        .with_draft(draft)
        .should_validate_formats(true)
        .build(schema)
        .map_err(|e| {
            // The error's instance is the schema itself: say where in it.
            let at = e.instance_path().to_string();
            if at.is_empty() {
                format!("the schema does not compile: {e}")
            } else {
                format!("the schema does not compile at `{at}`: {e}")
            }
        })
}

/// What to report of a validation error `e`: itself, except a failed
/// implication `anyOf: [{not: A}, B]` (how draft 4 writes "if A then B", as the
/// builder does for a `discriminator`'s branch), which is reported by the errors
/// of `B` — where the instance actually breaks the branch its `A` selected.
pub fn reasons<'e, 'a>(
    e: &'e jsonschema::ValidationError<'a>,
) -> Vec<&'e jsonschema::ValidationError<'a>> {
    if let jsonschema::error::ValidationErrorKind::AnyOf { context } = e.kind() {
        if let [guard, branch] = context.as_slice() {
            if let [g] = guard.as_slice() {
                if matches!(g.kind(), jsonschema::error::ValidationErrorKind::Not { .. })
                    && !branch.is_empty()
                {
                    return branch.iter().flat_map(reasons).collect();
                }
            }
        }
    }
    vec![e]
}

/// A [`RequestContract`] with every schema compiled, once, at start.
pub struct CheckedRequest {
    pub contract: RequestContract,
    /// Some parameter is `in: path` (the gateway then looks its value up).
    pub has_path_parameters: bool,
    /// `parameters[i]` validates `contract.parameters[i]`.
    pub parameters: Vec<jsonschema::Validator>,
    /// `bodies[i]` validates `contract.body.content[i]` when it has a schema.
    pub bodies: Vec<Option<jsonschema::Validator>>,
}

impl std::fmt::Debug for CheckedRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckedRequest")
            .field("contract", &self.contract)
            .finish_non_exhaustive()
    }
}

impl CheckedRequest {
    /// Compiles every schema; a problem is (key path below the contract, message).
    pub fn new(contract: &RequestContract) -> Result<CheckedRequest, Vec<(String, String)>> {
        let mut problems = Vec::new();
        let mut parameters = Vec::with_capacity(contract.parameters.len());
        for (i, p) in contract.parameters.iter().enumerate() {
            match compile_schema(contract.dialect, &p.schema) {
                Ok(v) => parameters.push(v),
                Err(e) => problems.push((format!("parameters[{i}].schema"), e)),
            }
        }
        let mut bodies = Vec::new();
        for (i, m) in contract.body.iter().flat_map(|b| &b.content).enumerate() {
            match m
                .schema
                .as_ref()
                .map(|s| compile_schema(contract.dialect, s))
            {
                None => bodies.push(None),
                Some(Ok(v)) => bodies.push(Some(v)),
                Some(Err(e)) => problems.push((format!("body.content[{i}].schema"), e)),
            }
        }
        if problems.is_empty() {
            Ok(CheckedRequest {
                contract: contract.clone(),
                has_path_parameters: contract
                    .parameters
                    .iter()
                    .any(|p| p.location == ParamIn::Path),
                parameters,
                bodies,
            })
        } else {
            Err(problems)
        }
    }
}

/// A [`ResponseContract`] with its schemas compiled.
pub struct CheckedResponses {
    pub contract: ResponseContract,
    /// `bodies[i][j]` validates `contract.responses[i].content[j]`.
    pub bodies: Vec<Vec<Option<jsonschema::Validator>>>,
}

impl std::fmt::Debug for CheckedResponses {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckedResponses")
            .field("contract", &self.contract)
            .finish_non_exhaustive()
    }
}

impl CheckedResponses {
    pub fn new(contract: &ResponseContract) -> Result<CheckedResponses, Vec<(String, String)>> {
        let mut problems = Vec::new();
        let mut bodies = Vec::new();
        for (i, r) in contract.responses.iter().enumerate() {
            let mut row = Vec::new();
            for (j, m) in r.content.iter().enumerate() {
                match m
                    .schema
                    .as_ref()
                    .map(|s| compile_schema(contract.dialect, s))
                {
                    None => row.push(None),
                    Some(Ok(v)) => row.push(Some(v)),
                    Some(Err(e)) => {
                        problems.push((format!("responses[{i}].content[{j}].schema"), e));
                    }
                }
            }
            bodies.push(row);
        }
        if problems.is_empty() {
            Ok(CheckedResponses {
                contract: contract.clone(),
                bodies,
            })
        } else {
            Err(problems)
        }
    }

    /// The declared response for `status`: exact, then its range (`4XX`), then
    /// `default`.
    pub fn declared(&self, status: u16) -> Option<usize> {
        let exact = status.to_string();
        let range = format!("{}XX", status / 100);
        let rs = &self.contract.responses;
        rs.iter()
            .position(|r| r.status == exact)
            .or_else(|| {
                rs.iter()
                    .position(|r| r.status.eq_ignore_ascii_case(&range))
            })
            .or_else(|| rs.iter().position(|r| r.status == "default"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn compiles_both_dialects_and_refuses_a_broken_schema() {
        let s = json!({"type": "object", "required": ["id"], "properties": {"id": {"type": "integer"}}});
        for d in [Dialect::Draft4, Dialect::Draft202012] {
            let v = compile_schema(d, &s).unwrap();
            assert!(v.is_valid(&json!({"id": 1})));
            assert!(!v.is_valid(&json!({"id": "x"})));
        }
        let broken = json!({"type": "object", "properties": {"id": {"type": 12}}});
        assert!(compile_schema(Dialect::Draft4, &broken).is_err());
        let dangling = json!({"$ref": "#/$defs/missing"});
        assert!(compile_schema(Dialect::Draft202012, &dangling).is_err());
    }

    #[test]
    fn json_media_types() {
        assert!(is_json("application/json"));
        assert!(is_json("Application/JSON; charset=utf-8"));
        assert!(is_json("application/problem+json"));
        assert!(is_json("text/json"));
        assert!(is_json("application/*+json"));
        assert!(!is_json("application/xml"));
        assert!(!is_json("text/plain"));
    }

    #[test]
    fn the_most_specific_declared_media_type_matches() {
        let declared = |types: &[&str]| -> Vec<MediaContract> {
            types
                .iter()
                .map(|t| MediaContract {
                    media_type: (*t).to_owned(),
                    schema: None,
                    encoding: Vec::new(),
                })
                .collect()
        };
        // Swashbuckle's (ASP.NET Core) request bodies.
        let swash = declared(&["application/json", "text/json", "application/*+json"]);
        assert_eq!(
            media_index(&swash, "application/json; charset=utf-8"),
            Some(0)
        );
        assert_eq!(media_index(&swash, "TEXT/JSON"), Some(1));
        assert_eq!(media_index(&swash, "application/merge-patch+json"), Some(2));
        assert_eq!(media_index(&swash, "application/+json"), None);
        assert_eq!(media_index(&swash, "text/merge-patch+json"), None);
        assert_eq!(media_index(&swash, "text/plain"), None);
        // Ranges rank below the type itself whatever their order.
        let ranges = declared(&["*/*", "text/*", "application/*+json", "text/plain"]);
        assert_eq!(media_index(&ranges, "text/plain"), Some(3));
        assert_eq!(media_index(&ranges, "text/csv"), Some(1));
        assert_eq!(media_index(&ranges, "application/ld+json"), Some(2));
        assert_eq!(media_index(&ranges, "image/png"), Some(0));
        assert_eq!(media_index(&ranges, "nonsense"), None);
    }
}
