//! Request contracts of Swagger 2.0 operations. A parameter carries its own
//! JSON Schema keywords (`type`, `format`, `items`, bounds, `enum`, …) and a
//! `collectionFormat`; the body is the one `in: body` parameter's `schema`, or
//! the `formData` parameters as an object, in the media types of `consumes`
//! (the operation's, else the document's, else JSON; form parameters are
//! checked in form bodies, and other media types consumed next to them are
//! accepted unchecked). Mocks answer a
//! response's JSON `examples`, else a value built from its `schema`; response
//! checks read that `schema` in the media types of `produces`.

use mgw_bundle::contract::{
    BodyContract, Dialect, MediaContract, MockContract, NamedExample, ParamIn, ParamStyle,
    ParameterContract, PropertyEncoding, RequestContract, is_form, is_json,
};
use serde_json::{Map, Value, json};

use super::{Cx, Direction, Parameter, ignored_header};
use crate::project::error::Diagnostic;
use crate::project::refs::Loc;
use crate::project::yaml::{Node, resolve_pointer};

/// The keywords of a parameter (and of its `items`) that mean what they mean in
/// JSON Schema draft 4.
const SCHEMA_KEYWORDS: &[&str] = &[
    "type",
    "format",
    "items",
    "enum",
    "default",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "uniqueItems",
    "multipleOf",
];

/// The schema a non-body parameter's own keywords make (`type: file`: any value).
fn param_schema(node: &Node) -> Value {
    let mut m = Map::new();
    for e in node.as_map().unwrap_or_default() {
        if SCHEMA_KEYWORDS.contains(&e.key.as_str()) {
            let v = if e.key == "items" {
                param_schema(&e.value)
            } else {
                e.value.to_json()
            };
            m.insert(e.key.clone(), v);
        }
    }
    if m.get("type").and_then(Value::as_str) == Some("file") {
        m.remove("type");
        m.remove("format");
    }
    Value::Object(m)
}

/// The OpenAPI 3 style of a `collectionFormat` (`csv` by default); `None` for
/// `tsv`, which OpenAPI 3 has no style for (such a parameter is not checked).
fn style_of(node: &Node, location: ParamIn) -> Option<(ParamStyle, bool)> {
    match node
        .get("collectionFormat")
        .and_then(Node::as_str)
        .unwrap_or("csv")
    {
        "csv" if location == ParamIn::Query => Some((ParamStyle::Form, false)),
        "csv" => Some((ParamStyle::Simple, false)),
        "ssv" => Some((ParamStyle::SpaceDelimited, false)),
        "pipes" => Some((ParamStyle::PipeDelimited, false)),
        "multi" => Some((ParamStyle::Form, true)),
        _ => None,
    }
}

impl Cx<'_> {
    /// The request contract of the Swagger 2.0 operation at `op`.
    pub(super) fn request_swagger2(
        &self,
        op: &Loc,
        node: &Node,
        parameters: &[Parameter],
    ) -> Result<RequestContract, Vec<Diagnostic>> {
        let consumes = self.consumes(op, node);
        let mut out = RequestContract {
            dialect: Dialect::Draft4,
            parameters: Vec::new(),
            body: None,
        };
        let mut diags = Vec::new();
        let mut form: Vec<(&Parameter, &Node)> = Vec::new();
        for p in parameters {
            let pnode = match self.parameter_node(p) {
                Ok(n) => n,
                Err(d) => {
                    diags.push(d);
                    continue;
                }
            };
            let location = match p.location.as_str() {
                "body" => {
                    let Some(s) = pnode.get("schema") else {
                        continue;
                    };
                    match self.schema(&p.loc.child("schema"), s, Direction::Request) {
                        Ok(schema) => {
                            out.body = Some(BodyContract {
                                required: p.required,
                                content: consumes
                                    .iter()
                                    .map(|mt| MediaContract {
                                        media_type: mt.clone(),
                                        schema: is_json(mt).then(|| schema.clone()),
                                        encoding: Vec::new(),
                                    })
                                    .collect(),
                            });
                        }
                        Err(d) => diags.push(d),
                    }
                    continue;
                }
                "formData" => {
                    form.push((p, pnode));
                    continue;
                }
                "path" => ParamIn::Path,
                "query" => ParamIn::Query,
                "header" if ignored_header(&p.name) => continue,
                "header" => ParamIn::Header,
                _ => continue,
            };
            let Some((style, explode)) = style_of(pnode, location) else {
                continue;
            };
            out.parameters.push(ParameterContract {
                name: p.name.clone(),
                location,
                required: p.required,
                style,
                explode,
                schema: param_schema(pnode),
            });
        }
        if !form.is_empty() {
            out.body = Some(form_body(&form, &consumes));
        }
        if diags.is_empty() {
            Ok(out)
        } else {
            Err(diags)
        }
    }

    /// The parameter object `p` names.
    fn parameter_node(&self, p: &Parameter) -> Result<&Node, Diagnostic> {
        let unknown = || {
            Diagnostic::new(
                &p.loc.origin(crate::project::yaml::Mark::UNKNOWN),
                "parameter not found",
            )
        };
        let doc = self.store.doc(&p.loc.file).ok_or_else(unknown)?;
        resolve_pointer(doc, &p.loc.pointer).map_err(|_| unknown())
    }

    /// The mock of a Swagger 2.0 response (`resp`, at `loc`): its `examples`
    /// for a JSON media type, else a value built from its `schema`, served as
    /// the first JSON media type of `produces`; no body without either.
    pub(super) fn mock_swagger2(
        &self,
        op: &Loc,
        node: &Node,
        loc: &Loc,
        resp: &Node,
        mut out: MockContract,
    ) -> Result<MockContract, Diagnostic> {
        let examples = resp
            .get("examples")
            .and_then(Node::as_map)
            .unwrap_or_default();
        if let Some(e) = examples.iter().find(|e| is_json(&e.key)) {
            // Written as a JSON text in a string (OAI's own examples do): its value.
            let value = match e.value.to_json() {
                Value::String(text) => serde_json::from_str(&text).unwrap_or(Value::String(text)),
                v => v,
            };
            out.content_type = Some(e.key.clone());
            out.examples.push(NamedExample {
                name: "example".into(),
                value,
            });
            return Ok(out);
        }
        let Some(schema) = resp.get("schema") else {
            return Ok(out);
        };
        let produces = self.media_types(op, node, "produces");
        let media = produces
            .iter()
            .find(|m| is_json(m))
            .unwrap_or(&produces[0])
            .clone();
        if let Some(v) = self.answer_of(&loc.child("schema"), schema)? {
            out.content_type = Some(super::answered_type(&media));
            out.examples.push(NamedExample {
                name: "example".into(),
                value: v,
            });
        }
        Ok(out)
    }

    /// The media types a Swagger 2.0 response (`resp`, at `loc`) may come in:
    /// those of `produces`, the JSON ones with its `schema` (none: any body).
    pub(super) fn response_media_swagger2(
        &self,
        op: &Loc,
        node: &Node,
        loc: &Loc,
        resp: &Node,
    ) -> Result<Vec<MediaContract>, Diagnostic> {
        let Some(schema) = resp.get("schema") else {
            return Ok(Vec::new());
        };
        let schema = self.schema(&loc.child("schema"), schema, Direction::Response)?;
        Ok(self
            .media_types(op, node, "produces")
            .into_iter()
            .map(|mt| MediaContract {
                schema: is_json(&mt).then(|| schema.clone()),
                media_type: mt,
                encoding: Vec::new(),
            })
            .collect())
    }

    /// `consumes` of the operation, else of the document, else JSON.
    fn consumes(&self, op: &Loc, node: &Node) -> Vec<String> {
        self.media_types(op, node, "consumes")
    }

    /// `key` (`consumes`, `produces`) of the operation, else of the document,
    /// else JSON; never empty.
    fn media_types(&self, op: &Loc, node: &Node, key: &str) -> Vec<String> {
        let root = self.store.doc(&op.file);
        let list = node
            .get(key)
            .or_else(|| root.and_then(|r| r.get(key)))
            .and_then(Node::as_seq)
            .map(|s| {
                s.iter()
                    .filter_map(Node::as_str)
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        if list.is_empty() {
            vec!["application/json".to_owned()]
        } else {
            list
        }
    }
}

/// The `formData` parameters as one object body, in the form media types of
/// `consumes` (URL-encoded when it names none; `multipart/form-data` is checked
/// by its content type only, as in OpenAPI 3).
fn form_body(form: &[(&Parameter, &Node)], consumes: &[String]) -> BodyContract {
    let mut properties = Map::new();
    let mut required = Vec::new();
    let mut encoding = Vec::new();
    for (p, node) in form {
        properties.insert(p.name.clone(), param_schema(node));
        if p.required {
            required.push(Value::String(p.name.clone()));
        }
        if let Some((style, explode)) = style_of(node, ParamIn::Query) {
            encoding.push(PropertyEncoding {
                name: p.name.clone(),
                style,
                explode,
            });
        }
    }
    let mut schema = json!({"type": "object", "properties": properties});
    if !required.is_empty() {
        schema["required"] = Value::Array(required.clone());
    }
    // Every media type the operation consumes is accepted; the parameters
    // describe a form body only (Swagger 2.0 defines `formData` for forms), so
    // other ones (Slack's `application/json` next to its forms) are unchecked.
    let mut media: Vec<&String> = consumes.iter().collect();
    let urlencoded = "application/x-www-form-urlencoded".to_owned();
    if !media
        .iter()
        .any(|m| is_form(m) || m.starts_with("multipart/"))
    {
        media.push(&urlencoded);
    }
    BodyContract {
        required: !required.is_empty(),
        content: media
            .into_iter()
            .map(|mt| MediaContract {
                media_type: mt.clone(),
                schema: is_form(mt).then(|| schema.clone()),
                encoding: if is_form(mt) {
                    encoding.clone()
                } else {
                    Vec::new()
                },
            })
            .collect(),
    }
}
