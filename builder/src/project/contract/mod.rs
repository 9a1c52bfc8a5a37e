//! An operation's contract, read from the document for the gateway: what a
//! validated operation accepts (parameters, request body, schemas) and what a
//! mocked one answers (its first success response and examples).
//!
//! Schemas leave here as self-contained JSON Schema documents: every `$ref`
//! (local, to another file, to a 3.1 `$id`/`$anchor`) is copied into the
//! document's definitions and rewritten to point there, so the gateway never
//! resolves anything. OpenAPI 3.0's dialect is rewritten to draft 4 (`nullable`
//! becomes a `null` type; `readOnly` properties are not required in requests).
//! Every schema is compiled here with the gateway's own rule
//! ([`mgw_bundle::contract::compile_schema`]), so a broken one fails
//! `mgw validate`/`mgw build` at its file:line:col, never at start.
//!
//! Never: report a problem here for an operation nobody validates or mocks — the
//! caller keeps the `Err` and shows it only then.

mod swagger2;

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

use mgw_bundle::contract::{
    BodyContract, DeclaredResponse, Dialect, MediaContract, MockContract, NamedExample, ParamIn,
    ParamStyle, ParameterContract, PropertyEncoding, RequestContract, compile_schema, is_form,
    is_json,
};
use serde_json::{Map, Value};

use super::discriminator::Branch;
use super::error::Diagnostic;
use super::refs::{Loc, Store, ref_of};
use super::yaml::{Mark, Node, resolve_pointer};

/// A declared parameter (path-item and operation parameters merged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parameter {
    pub name: String,
    /// `path`, `query`, `header`, `cookie`, `body`, `formData`.
    pub location: String,
    pub required: bool,
    /// The parameter object (after `$ref`s), for its schema.
    pub loc: Loc,
}

/// The contract of one operation, or why it cannot be had.
#[derive(Debug, Clone, PartialEq)]
pub struct OpContract {
    pub dialect: Dialect,
    /// Each part as read, `None` when it was not asked for ([`Parts`]).
    pub request: Option<Result<RequestContract, Vec<Diagnostic>>>,
    pub mock: Option<Result<MockContract, Vec<Diagnostic>>>,
    /// Every declared response, for response checks.
    pub responses: Option<Result<Vec<DeclaredResponse>, Vec<Diagnostic>>>,
}

/// What was already built from a reference-only schema (`{$ref: …}`) of a
/// document's operations, by the schema it points to: a large document's
/// responses name the same few schemas from many operations (Stripe: 122
/// targets for 345 `$ref` responses), and each build copies and compiles the
/// target's whole closure. Self-contained documents for validation (the bundle
/// holds them anyway), and mock answers built from a schema (their documents
/// are dropped: Stripe's would hold ~200 MB). One per document read.
#[derive(Default)]
pub struct Schemas {
    docs: RefCell<HashMap<SchemaKey, Value>>,
    answers: RefCell<HashMap<SchemaKey, Option<Value>>>,
}

/// The schema a reference points to, in the dialect and direction it is read.
type SchemaKey = (Loc, Dialect, Direction);

/// The parts of an operation's contract a project uses; only those are read
/// (a mock's example built from a large document's schemas costs time, and a
/// part not used must not fail the build).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Parts {
    /// Request validation.
    pub request: bool,
    /// A mock answer.
    pub mock: bool,
    /// Response checks.
    pub responses: bool,
}

/// The name of the one example of [`no_success_answer`].
const NO_SUCCESS_RESPONSE: &str = "no-success-response";

/// The mock of an operation whose document declares no `2XX` or `default`
/// response: `501 Not Implemented`, a problem saying why (a mock server's
/// answer; Prism's is a 500 `NO_SUCCESS_RESPONSE_DEFINED`).
fn no_success_answer() -> MockContract {
    MockContract {
        status: 501,
        content_type: Some("application/problem+json".into()),
        examples: vec![NamedExample {
            name: NO_SUCCESS_RESPONSE.into(),
            value: serde_json::json!({
                "type": "https://mgw.dev/problems/mock_without_success_response",
                "title": "Not Implemented",
                "status": 501,
                "detail": "the API document declares no `2XX` or `default` response for this operation, so its mock has nothing to answer with",
            }),
        }],
    }
}

/// Whether `mock` is [`no_success_answer`]: the operation cannot be mocked as
/// its document stands.
pub fn answers_no_success(mock: &MockContract) -> bool {
    mock.status == 501
        && mock
            .examples
            .first()
            .is_some_and(|e| e.name == NO_SUCCESS_RESPONSE)
}

/// Reads the `parts` of the contract of the operation at `op` (its node, after
/// `$ref`s) of a document whose schemas are in `dialect` (`None`: Swagger 2.0,
/// whose schemas are draft 4 and whose parameters carry their own keywords).
pub fn read(
    store: &Store,
    schemas: &Schemas,
    dialect: Option<Dialect>,
    op: &Loc,
    node: &Node,
    parameters: &[Parameter],
    parts: Parts,
) -> OpContract {
    let cx = Cx {
        store,
        schemas,
        dialect: dialect.unwrap_or_default(),
        swagger2: dialect.is_none(),
    };
    OpContract {
        dialect: cx.dialect,
        request: parts.request.then(|| cx.request(op, node, parameters)),
        mock: parts.mock.then(|| cx.mock(op, node)),
        responses: parts.responses.then(|| cx.responses(op, node)),
    }
}

struct Cx<'s> {
    store: &'s Store,
    schemas: &'s Schemas,
    dialect: Dialect,
    swagger2: bool,
}

/// A form body's `encoding` (OpenAPI 3: per property `style`, default `form`,
/// and `explode`, default true for `form`).
fn form_encoding(loc: &Loc, node: Option<&Node>) -> Result<Vec<PropertyEncoding>, Diagnostic> {
    let mut out = Vec::new();
    for e in node.and_then(Node::as_map).unwrap_or_default() {
        let style = match e.value.get("style") {
            None => ParamStyle::Form,
            Some(s) => match s.as_str().and_then(ParamStyle::parse) {
                Some(ParamStyle::Simple | ParamStyle::Label | ParamStyle::Matrix) | None => {
                    return Err(Cx::err(
                        &loc.child(e.key.clone()).child("style"),
                        s,
                        "a form body property's `style` is `form`, `spaceDelimited`, `pipeDelimited` or `deepObject`",
                    ));
                }
                Some(st) => st,
            },
        };
        let explode = e
            .value
            .get("explode")
            .and_then(Node::as_bool)
            .unwrap_or(style == ParamStyle::Form);
        out.push(PropertyEncoding {
            name: e.key.clone(),
            style,
            explode,
        });
    }
    Ok(out)
}

/// OpenAPI: these header parameters "SHALL be ignored" (the media type and the
/// security scheme describe them).
/// The `Content-Type` a mock answers for the declared media type: itself, but
/// a range is no content type (springdoc and springfox declare `*/*` for
/// every response), so `*/*`, `application/*` and `application/*+json` answer
/// JSON (a mock's examples are JSON values), `text/*` plain text and another
/// range bytes.
fn answered_type(declared: &str) -> String {
    match declared.split_once('/') {
        Some(("text", "*")) => "text/plain".to_owned(),
        Some(("*" | "application", sub)) if sub.starts_with('*') => "application/json".to_owned(),
        Some((_, sub)) if sub.starts_with('*') => "application/octet-stream".to_owned(),
        _ => declared.to_owned(),
    }
}

fn ignored_header(name: &str) -> bool {
    ["accept", "content-type", "authorization"]
        .iter()
        .any(|h| name.eq_ignore_ascii_case(h))
}

/// The definitions a self-contained schema is being copied into.
struct Defs<'n> {
    /// `definitions` (draft 4) or `$defs`.
    key: &'static str,
    /// Slot of each referenced schema already queued.
    names: BTreeMap<Loc, usize>,
    defs: Vec<Value>,
    /// Schemas still to copy, with their slot.
    work: Vec<(Loc, &'n Node, usize)>,
    /// The slot being copied, when its schema has `$recursiveAnchor: true`.
    anchor: Option<usize>,
    /// A `$recursiveRef` was written as a `$ref` to a slot (maybe slot 0).
    recursive: bool,
}

/// Whether a schema is read for a request or a response (`readOnly`/`writeOnly`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Direction {
    Request,
    Response,
}

impl Cx<'_> {
    fn err(loc: &Loc, node: &Node, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(&loc.origin(node.mark), message)
    }

    /// Follows `$ref`s from `node` at `loc`.
    fn deref<'n>(&'n self, loc: &Loc, node: &'n Node) -> Result<(Loc, &'n Node), Diagnostic> {
        let file = self.store.file_name(&loc.file).unwrap_or_default();
        let t = self.store.deref(file, loc.pointer.clone(), node)?;
        Ok((t.loc(), t.node))
    }

    fn request(
        &self,
        op: &Loc,
        node: &Node,
        parameters: &[Parameter],
    ) -> Result<RequestContract, Vec<Diagnostic>> {
        if self.swagger2 {
            return self.request_swagger2(op, node, parameters);
        }
        let mut diags = Vec::new();
        let mut out = RequestContract {
            dialect: self.dialect,
            parameters: Vec::new(),
            body: None,
        };
        for p in parameters {
            match self.parameter(p) {
                Ok(Some(pc)) => out.parameters.push(pc),
                Ok(None) => {}
                Err(d) => diags.push(d),
            }
        }
        if let Some(rb) = node.get("requestBody") {
            match self.body(&op.child("requestBody"), rb) {
                Ok(b) => out.body = Some(b),
                Err(d) => diags.extend(d),
            }
        }
        if diags.is_empty() {
            Ok(out)
        } else {
            Err(diags)
        }
    }

    fn parameter(&self, p: &Parameter) -> Result<Option<ParameterContract>, Diagnostic> {
        let doc = self
            .store
            .doc(&p.loc.file)
            .ok_or_else(|| Diagnostic::new(&p.loc.origin(Mark::UNKNOWN), "file not loaded"))?;
        let node = resolve_pointer(doc, &p.loc.pointer)
            .map_err(|_| Diagnostic::new(&p.loc.origin(Mark::UNKNOWN), "parameter not found"))?;
        let location = match p.location.as_str() {
            "path" => ParamIn::Path,
            "query" => ParamIn::Query,
            "header" => ParamIn::Header,
            "cookie" => ParamIn::Cookie,
            // OpenAPI 3.2's `querystring` (the whole query string as one
            // value, described by a media type) is not checked; Swagger 2.0's
            // `body` and `formData` are read elsewhere.
            _ => return Ok(None),
        };
        // OpenAPI: these header parameters "SHALL be ignored" (the media type and
        // the security scheme describe them).
        if location == ParamIn::Header && ignored_header(&p.name) {
            return Ok(None);
        }
        let style = match node.get("style") {
            None => location.default_style(),
            Some(s) => match s.as_str().and_then(ParamStyle::parse) {
                Some(st) => st,
                None => {
                    return Err(Self::err(
                        &p.loc.child("style"),
                        s,
                        "unknown `style`; OpenAPI defines `simple`, `label`, `matrix`, `form`, `spaceDelimited`, `pipeDelimited` and `deepObject`",
                    ));
                }
            },
        };
        let explode = node
            .get("explode")
            .and_then(Node::as_bool)
            .unwrap_or(style == ParamStyle::Form);
        let schema = match node.get("schema") {
            Some(s) => self.schema(&p.loc.child("schema"), s, Direction::Request)?,
            None => match node
                .get("content")
                .and_then(|c| c.as_map())
                .and_then(|m| m.first())
            {
                // `content` parameters (a JSON value in a query string): the
                // schema applies to the parsed value; not checked further here.
                Some(_) => Value::Object(Map::new()),
                None => Value::Object(Map::new()),
            },
        };
        Ok(Some(ParameterContract {
            name: p.name.clone(),
            location,
            required: p.required,
            style,
            explode,
            schema,
        }))
    }

    fn body(&self, loc: &Loc, node: &Node) -> Result<BodyContract, Vec<Diagnostic>> {
        let (loc, node) = self.deref(loc, node).map_err(|d| vec![d])?;
        let mut out = BodyContract {
            required: node
                .get("required")
                .and_then(Node::as_bool)
                .unwrap_or(false),
            content: Vec::new(),
        };
        let mut diags = Vec::new();
        let cloc = loc.child("content");
        for e in node
            .get("content")
            .and_then(Node::as_map)
            .unwrap_or_default()
        {
            let (mloc, media) = match self.deref(&cloc.child(e.key.clone()), &e.value) {
                Ok(t) => t,
                Err(d) => {
                    diags.push(d);
                    continue;
                }
            };
            // JSON and form bodies are validated; other media types (XML,
            // `multipart/form-data`) only by their content type.
            let schema = if is_json(&e.key) || is_form(&e.key) {
                match media.get("schema") {
                    Some(s) => match self.schema(&mloc.child("schema"), s, Direction::Request) {
                        Ok(v) => Some(v),
                        Err(d) => {
                            diags.push(d);
                            None
                        }
                    },
                    None => None,
                }
            } else {
                None
            };
            let encoding = if is_form(&e.key) {
                match form_encoding(&mloc.child("encoding"), media.get("encoding")) {
                    Ok(enc) => enc,
                    Err(d) => {
                        diags.push(d);
                        Vec::new()
                    }
                }
            } else {
                Vec::new()
            };
            out.content.push(MediaContract {
                media_type: e.key.clone(),
                schema,
                encoding,
            });
        }
        if diags.is_empty() {
            Ok(out)
        } else {
            Err(diags)
        }
    }

    /// Every declared response with its media types (JSON ones with their schema).
    fn responses(&self, op: &Loc, node: &Node) -> Result<Vec<DeclaredResponse>, Vec<Diagnostic>> {
        let rloc = op.child("responses");
        let mut out = Vec::new();
        let mut diags = Vec::new();
        for e in node
            .get("responses")
            .and_then(Node::as_map)
            .unwrap_or_default()
        {
            if e.key.starts_with("x-") {
                continue;
            }
            let (loc, resp) = match self.deref(&rloc.child(e.key.clone()), &e.value) {
                Ok(t) => t,
                Err(d) => {
                    diags.push(d);
                    continue;
                }
            };
            let mut declared = DeclaredResponse {
                status: e.key.clone(),
                content: Vec::new(),
            };
            if self.swagger2 {
                match self.response_media_swagger2(op, node, &loc, resp) {
                    Ok(content) => declared.content = content,
                    Err(d) => diags.push(d),
                }
                out.push(declared);
                continue;
            }
            let cloc = loc.child("content");
            for m in resp
                .get("content")
                .and_then(Node::as_map)
                .unwrap_or_default()
            {
                let (mloc, media) = match self.deref(&cloc.child(m.key.clone()), &m.value) {
                    Ok(t) => t,
                    Err(d) => {
                        diags.push(d);
                        continue;
                    }
                };
                let schema = match media.get("schema").filter(|_| is_json(&m.key)) {
                    None => None,
                    Some(s) => match self.schema(&mloc.child("schema"), s, Direction::Response) {
                        Ok(v) => Some(v),
                        Err(d) => {
                            diags.push(d);
                            None
                        }
                    },
                };
                declared.content.push(MediaContract {
                    media_type: m.key.clone(),
                    schema,
                    encoding: Vec::new(),
                });
            }
            out.push(declared);
        }
        if diags.is_empty() {
            Ok(out)
        } else {
            Err(diags)
        }
    }

    /// The first success response (lowest `2XX`, else `default`) with its first
    /// media type and examples.
    fn mock(&self, op: &Loc, node: &Node) -> Result<MockContract, Vec<Diagnostic>> {
        let rloc = op.child("responses");
        let Some(responses) = node.get("responses").and_then(Node::as_map) else {
            return Ok(no_success_answer());
        };
        let mut best: Option<(u16, &super::yaml::Entry)> = None;
        for e in responses {
            let status = match e.key.parse::<u16>() {
                Ok(s) if (200..300).contains(&s) => s,
                _ if e.key.eq_ignore_ascii_case("2XX") => 200,
                _ if e.key == "default" => 999,
                _ => continue,
            };
            if best.is_none_or(|(b, _)| status < b) {
                best = Some((status, e));
            }
        }
        let Some((status, entry)) = best else {
            return Ok(no_success_answer());
        };
        let status = if status == 999 { 200 } else { status };
        let (loc, resp) = self
            .deref(&rloc.child(entry.key.clone()), &entry.value)
            .map_err(|d| vec![d])?;
        let mut out = MockContract {
            status,
            content_type: None,
            examples: Vec::new(),
        };
        if self.swagger2 {
            return self
                .mock_swagger2(op, node, &loc, resp, out)
                .map_err(|d| vec![d]);
        }
        // A JSON media type if one is declared (examples are JSON values), else
        // the first.
        let content = resp
            .get("content")
            .and_then(Node::as_map)
            .unwrap_or_default();
        let Some((media, mnode)) = content
            .iter()
            .find(|e| is_json(&e.key))
            .or(content.first())
            .map(|e| (e.key.clone(), &e.value))
        else {
            return Ok(out);
        };
        let (mloc, mnode) = self
            .deref(&loc.child("content").child(media.clone()), mnode)
            .map_err(|d| vec![d])?;
        out.content_type = Some(answered_type(&media));
        if let Some(ex) = mnode.get("examples").and_then(Node::as_map) {
            for e in ex {
                let (_, ex_node) = self
                    .deref(&mloc.child("examples").child(e.key.clone()), &e.value)
                    .map_err(|d| vec![d])?;
                // OpenAPI 3.2's `dataValue` is the value as data, where
                // `value` may be written serialized.
                if let Some(v) = ex_node.get("dataValue").or(ex_node.get("value")) {
                    out.examples.push(NamedExample {
                        name: e.key.clone(),
                        value: v.to_json(),
                    });
                }
            }
        }
        if out.examples.is_empty() {
            let example = match (mnode.get("example"), mnode.get("schema")) {
                (Some(e), _) => Some(e.to_json()),
                (None, Some(s)) => self
                    .answer_of(&mloc.child("schema"), s)
                    .map_err(|d| vec![d])?,
                (None, None) => None,
            };
            if let Some(v) = example {
                out.examples.push(NamedExample {
                    name: "example".into(),
                    value: v,
                });
            }
        }
        if out.examples.is_empty() {
            return Err(vec![Self::err(
                &mloc,
                mnode,
                "a mocked operation needs an `example` or `examples` for its response",
            )]);
        }
        Ok(out)
    }

    /// A self-contained schema document for the schema at `loc`, compiled once
    /// to prove it compiles; a reference-only schema's is built once per target
    /// ([`Schemas`]: the document is the same wherever the reference is).
    fn schema(&self, loc: &Loc, node: &Node, dir: Direction) -> Result<Value, Diagnostic> {
        let key = self.reference_key(loc, node, dir);
        if let Some(doc) = key
            .as_ref()
            .and_then(|k| self.schemas.docs.borrow().get(k).cloned())
        {
            return Ok(doc);
        }
        let doc = self.build_schema(loc, node, dir)?;
        if let Some(k) = key {
            self.schemas.docs.borrow_mut().insert(k, doc.clone());
        }
        Ok(doc)
    }

    /// A mock answer built from the response schema at `loc` (`None`: no value
    /// could be built), once per target of a reference-only schema.
    fn answer_of(&self, loc: &Loc, node: &Node) -> Result<Option<Value>, Diagnostic> {
        let key = self.reference_key(loc, node, Direction::Response);
        if let Some(answer) = key
            .as_ref()
            .and_then(|k| self.schemas.answers.borrow().get(k).cloned())
        {
            return Ok(answer);
        }
        // The validation document of the same target, when responses are checked.
        let from_doc = key.as_ref().and_then(|k| {
            let docs = self.schemas.docs.borrow();
            docs.get(k).map(super::example::synthesize)
        });
        let answer = match from_doc {
            Some(answer) => answer,
            None => {
                super::example::synthesize(&self.build_schema(loc, node, Direction::Response)?)
            }
        };
        if let Some(k) = key {
            self.schemas.answers.borrow_mut().insert(k, answer.clone());
        }
        Ok(answer)
    }

    /// What a reference-only schema points to (after references to
    /// references): the document built from it is the same wherever the
    /// reference is written. `None` for any other schema.
    fn reference_key(&self, loc: &Loc, node: &Node, dir: Direction) -> Option<SchemaKey> {
        let raw = match node.as_map() {
            Some([entry]) if entry.key == "$ref" => ref_of(node)?,
            _ => return None,
        };
        let target = self.store.locate(&loc.child("$ref"), raw).ok()?;
        Some((self.store.through_refs(target), self.dialect, dir))
    }

    fn build_schema(&self, loc: &Loc, node: &Node, dir: Direction) -> Result<Value, Diagnostic> {
        let defs_key = match self.dialect {
            Dialect::Draft4 => "definitions",
            Dialect::Draft202012 => "$defs",
        };
        let mut d = Defs {
            key: defs_key,
            names: BTreeMap::new(),
            defs: vec![Value::Null],
            work: vec![(loc.clone(), node, 0)],
            anchor: None,
            recursive: false,
        };
        let mut steps = 0usize;
        while let Some((at, n, slot)) = d.work.pop() {
            steps += 1;
            if steps > 10_000 {
                return Err(Self::err(
                    loc,
                    node,
                    "the schema references too many schemas",
                ));
            }
            d.anchor =
                (n.get("$recursiveAnchor").and_then(Node::as_bool) == Some(true)).then_some(slot);
            let v = self.copy(&at, n, &mut d)?;
            d.defs[slot] = v;
        }
        let recursive = d.recursive;
        let mut defs = d.defs;
        for d in &mut defs {
            if self.dialect == Dialect::Draft4 {
                rewrite_30(d, dir);
            }
        }
        let schema = if defs.len() == 1 && !recursive {
            defs.pop().unwrap_or_default()
        } else {
            let mut root = Map::new();
            root.insert("$ref".into(), Value::String(format!("#/{defs_key}/0")));
            root.insert(
                defs_key.into(),
                Value::Object(
                    defs.into_iter()
                        .enumerate()
                        .map(|(i, d)| (i.to_string(), d))
                        .collect(),
                ),
            );
            Value::Object(root)
        };
        compile_schema(self.dialect, &schema).map_err(|e| Self::err(loc, node, e))?;
        Ok(schema)
    }

    /// JSON of `n` with every `$ref` rewritten to a definition slot (queued).
    fn copy<'n>(&'n self, at: &Loc, n: &'n Node, d: &mut Defs<'n>) -> Result<Value, Diagnostic> {
        use super::yaml::Kind;
        Ok(match &n.kind {
            Kind::Map(entries) => {
                let mut m = Map::new();
                if let Some(raw) = ref_of(n) {
                    let (_, slot) = self.slot(at, n, raw, d)?;
                    m.insert("$ref".into(), Value::String(format!("#/{}/{slot}", d.key)));
                }
                for e in entries {
                    match e.key.as_str() {
                        // References are rewritten above; a resource's own base
                        // would change what they resolve against.
                        "$ref" | "$id" | "$schema" | "$anchor" | "$vocabulary"
                        | "$recursiveAnchor" => {}
                        "$recursiveRef" => {
                            let anchor = d.anchor.map(|s| format!("#/{}/{s}", d.key));
                            let r = super::leniency::recursive_ref(&e.value.to_json(), anchor)
                                .map_err(|msg| {
                                    Self::err(&at.child(e.key.clone()), &e.value, msg)
                                })?;
                            d.recursive = true;
                            m.insert("$ref".into(), r);
                        }
                        // Values, not schemas.
                        k if VALUES.contains(&k) => {
                            m.insert(e.key.clone(), e.value.to_json());
                        }
                        // Specification extensions hold anything, never a schema
                        // or a reference to follow (Spotify's
                        // `x-spotify-policy-list` holds `$ref`s into a file the
                        // document does not ship), and change nothing a
                        // validator checks: left out. (`x-nullable`, Swagger 2.0
                        // tools' `nullable`, is read by `rewrite_30`.)
                        k if k.starts_with("x-") && k != "x-nullable" => {}
                        // Maps of name → schema: the names are not keywords.
                        k if SCHEMA_MAPS.contains(&k) && e.value.as_map().is_some() => {
                            let mut inner = Map::new();
                            // The map itself may be a reference (`properties:
                            // {$ref: attributes.yml#/ids}`, as DigitalOcean writes).
                            let (mloc, map) = if ref_of(&e.value).is_some() {
                                self.deref(&at.child(e.key.clone()), &e.value)?
                            } else {
                                (at.child(e.key.clone()), &e.value)
                            };
                            for pe in map.as_map().unwrap_or_default() {
                                let v = self.copy(&mloc.child(pe.key.clone()), &pe.value, d)?;
                                inner.insert(pe.key.clone(), v);
                            }
                            m.insert(e.key.clone(), Value::Object(inner));
                        }
                        _ => {
                            m.insert(
                                e.key.clone(),
                                self.copy(&at.child(e.key.clone()), &e.value, d)?,
                            );
                        }
                    }
                }
                super::leniency::normalise(&mut m, self.dialect);
                if n.get("discriminator").is_some() {
                    self.discriminate(at, n, &mut m, d)?;
                }
                Value::Object(m)
            }
            Kind::Seq(items) => Value::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, it)| self.copy(&at.child(i.to_string()), it, d))
                    .collect::<Result<_, _>>()?,
            ),
            Kind::Scalar(_) => n.to_json(),
        })
    }
}

impl Cx<'_> {
    /// The definition slot of the schema `raw` (a `$ref` written at `at`)
    /// points to, queued for copying the first time; with its location.
    fn slot<'n>(
        &'n self,
        at: &Loc,
        n: &'n Node,
        raw: &str,
        d: &mut Defs<'n>,
    ) -> Result<(Loc, usize), Diagnostic> {
        let target = self
            .store
            .locate(&at.child("$ref"), raw)
            .map(|t| self.store.through_refs(t))
            .map_err(|e| Self::err(at, n, e))?;
        if let Some(&s) = d.names.get(&target) {
            return Ok((target, s));
        }
        let doc = self
            .store
            .doc(&target.file)
            .ok_or_else(|| Self::err(at, n, format!("`$ref` `{raw}`: file not loaded")))?;
        let tnode = resolve_pointer(doc, &target.pointer)
            .map_err(|_| Self::err(at, n, format!("`$ref` `{raw}` points to nothing")))?;
        let s = d.defs.len();
        d.defs.push(Value::Null);
        d.names.insert(target.clone(), s);
        d.work.push((target.clone(), tnode, s));
        Ok((target, s))
    }

    /// A `oneOf`/`anyOf` with a `discriminator` (OpenAPI 3.0 and 3.1): the
    /// branch is selected by the property's value — the `mapping`'s, then each
    /// `$ref` branch's schema name (the last segment of its pointer) — and the
    /// copy in `m` is rewritten so a standard validator does the same
    /// ([`super::discriminator`]). Left as written when a branch has no value
    /// (an inline schema the mapping does not name).
    fn discriminate<'n>(
        &'n self,
        at: &Loc,
        n: &'n Node,
        m: &mut Map<String, Value>,
        d: &mut Defs<'n>,
    ) -> Result<(), Diagnostic> {
        let Some(disc) = n.get("discriminator") else {
            return Ok(());
        };
        let Some(property) = disc.get("propertyName").and_then(Node::as_str) else {
            return Ok(());
        };
        let Some((keyword, items)) = ["oneOf", "anyOf"]
            .into_iter()
            .find_map(|k| n.get(k).and_then(Node::as_seq).map(|s| (k, s)))
        else {
            return Ok(());
        };
        // (slot, values) in the order branches are first named.
        let mut branches: Vec<(usize, Vec<String>)> = Vec::new();
        fn add(branches: &mut Vec<(usize, Vec<String>)>, slot: usize, value: String) {
            match branches.iter_mut().find(|b| b.0 == slot) {
                Some(b) => b.1.push(value),
                None => branches.push((slot, vec![value])),
            }
        }
        let mloc = at.child("discriminator").child("mapping");
        for e in disc
            .get("mapping")
            .and_then(Node::as_map)
            .unwrap_or_default()
        {
            let Some(raw) = e.value.as_str() else {
                continue;
            };
            // A bare schema name, or a reference.
            let named = format!("#/components/schemas/{raw}");
            let raw = if !raw.contains(['/', '#'])
                && self
                    .store
                    .locate(&mloc.child("$ref"), &named)
                    .ok()
                    .and_then(|t| {
                        let doc = self.store.doc(&t.file)?;
                        resolve_pointer(doc, &t.pointer).ok()
                    })
                    .is_some()
            {
                named.as_str()
            } else {
                raw
            };
            let (_, slot) = self.slot(&mloc.child(e.key.clone()), &e.value, raw, d)?;
            add(&mut branches, slot, e.key.clone());
        }
        let mapped: Vec<usize> = branches.iter().map(|b| b.0).collect();
        let iloc = at.child(keyword);
        for (i, item) in items.iter().enumerate() {
            let Some(raw) = ref_of(item) else {
                return Ok(());
            };
            let (target, slot) = self.slot(&iloc.child(i.to_string()), item, raw, d)?;
            if mapped.contains(&slot) {
                continue;
            }
            let Some(name) = target.pointer.last() else {
                return Ok(());
            };
            add(&mut branches, slot, name.clone());
        }
        let branches: Vec<Branch> = branches
            .into_iter()
            .map(|(slot, values)| Branch {
                target: format!("#/{}/{slot}", d.key),
                values,
            })
            .collect();
        super::discriminator::rewrite(m, keyword, property, &branches, self.dialect);
        Ok(())
    }
}

/// Keywords whose value maps names to schemas.
const SCHEMA_MAPS: &[&str] = &[
    "properties",
    "patternProperties",
    "definitions",
    "$defs",
    "dependentSchemas",
];

/// Keywords whose value is data, not a schema.
const VALUES: &[&str] = &["enum", "const", "example", "examples", "default"];

/// OpenAPI 3.0 schema objects to draft 4: `nullable: true` adds `null` to `type`
/// (and to `enum`); `readOnly` properties are not required in a request, nor
/// `writeOnly` ones in a response.
fn rewrite_30(v: &mut Value, dir: Direction) {
    match v {
        Value::Object(m) => {
            // `x-nullable`: Swagger 2.0's spelling (its tools' extension).
            if m.get("nullable") == Some(&Value::Bool(true))
                || m.get("x-nullable") == Some(&Value::Bool(true))
            {
                if let Some(t) = m.get_mut("type") {
                    match t {
                        Value::String(s) => {
                            *t = Value::Array(vec![Value::String(s.clone()), "null".into()])
                        }
                        Value::Array(a) if !a.contains(&"null".into()) => a.push("null".into()),
                        _ => {}
                    }
                }
                if let Some(Value::Array(e)) = m.get_mut("enum") {
                    if !e.contains(&Value::Null) {
                        e.push(Value::Null);
                    }
                }
            }
            m.remove("nullable");
            m.remove("x-nullable");
            let hidden = match dir {
                Direction::Request => "readOnly",
                Direction::Response => "writeOnly",
            };
            let skip: Vec<String> = match m.get("properties") {
                Some(Value::Object(props)) => props
                    .iter()
                    .filter(|(_, p)| p.get(hidden) == Some(&Value::Bool(true)))
                    .map(|(k, _)| k.clone())
                    .collect(),
                _ => Vec::new(),
            };
            if !skip.is_empty() {
                if let Some(Value::Array(req)) = m.get_mut("required") {
                    req.retain(|r| r.as_str().is_none_or(|r| !skip.iter().any(|s| s == r)));
                    if req.is_empty() {
                        m.remove("required");
                    }
                }
            }
            for (k, child) in m.iter_mut() {
                if SCHEMA_MAPS.contains(&k.as_str()) {
                    if let Value::Object(named) = child {
                        for schema in named.values_mut() {
                            rewrite_30(schema, dir);
                        }
                    }
                } else if !VALUES.contains(&k.as_str()) {
                    rewrite_30(child, dir);
                }
            }
        }
        Value::Array(a) => {
            for x in a {
                rewrite_30(x, dir);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use mgw_bundle::contract::ParamStyle;
    use serde_json::Value;

    use super::super::compile::compile;
    use super::super::example;
    use super::super::load_from;
    use super::super::refs::Source;
    use super::{Cx, Dialect, Direction, Loc, Schemas, Store, compile_schema};

    fn corpus(path: &str) -> String {
        std::fs::read_to_string(format!(
            "{}/../tests/corpus/{path}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    /// Compiles a corpus document with request validation and mocks on.
    fn bundle(doc: &str, api: &str) -> Result<mgw_bundle::Bundle, String> {
        bundle_text(&corpus(doc), api)
    }

    /// [`bundle`] of a document given as text.
    fn bundle_text(doc: &str, api: &str) -> Result<mgw_bundle::Bundle, String> {
        let manifest = format!(
            "name: a\nversion: '1'\nupstreams: {{u: {{urls: ['http://127.0.0.1:1']}}}}\napis: [{{name: a, spec: api.yaml, upstream: u, basePath: /, {api}}}]\nauth: {{providers: {{jwt: {{type: jwt, issuer: i, jwksUrl: 'https://127.0.0.1:1/jwks'}}, key: {{type: apiKey, file: /keys}}}}, schemes: {{petstore_auth: jwt, api_key: key}}}}\n"
        );
        let files: BTreeMap<String, String> = [
            ("mgw.yaml".to_owned(), manifest),
            ("api.yaml".to_owned(), doc.to_owned()),
        ]
        .into();
        let project = load_from(Source::Memory(files)).map_err(|e| e.to_string())?;
        compile(&project)
            .map(|c| c.bundle)
            .map_err(|e| e.to_string())
    }

    /// Documents built for reference-only schemas are shared by target
    /// ([`Schemas`]): two files each naming `#/components/schemas/Id` mean two
    /// different schemas, and each operation's mock answers its own.
    #[test]
    fn schemas_are_shared_by_what_a_reference_points_to_not_by_its_text() {
        let response = |file: &str| {
            format!(
                "responses: {{'200': {{description: ok, content: {{application/json: {{schema: {{$ref: '{file}#/components/schemas/Id'}}}}}}}}}}"
            )
        };
        let api = format!(
            "openapi: 3.0.3\ninfo: {{title: t, version: '1'}}\npaths:\n  /a:\n    get: {{operationId: a, {}}}\n  /a2:\n    get: {{operationId: a2, {}}}\n  /b:\n    $ref: 'other.yaml#/paths/~1b'\ncomponents: {{schemas: {{Id: {{type: string, enum: [text]}}}}}}\n",
            response(""),
            response("")
        );
        let other = format!(
            "openapi: 3.0.3\ninfo: {{title: o, version: '1'}}\npaths:\n  /b:\n    get: {{operationId: b, {}}}\ncomponents: {{schemas: {{Id: {{type: integer, enum: [7]}}}}}}\n",
            response("")
        );
        let files: BTreeMap<String, String> = [
            (
                "mgw.yaml".to_owned(),
                "name: a\nversion: '1'\nupstreams: {u: {urls: ['http://127.0.0.1:1']}}\napis: [{name: a, spec: api.yaml, upstream: u, basePath: /, mock: true}]\n".to_owned(),
            ),
            ("api.yaml".to_owned(), api),
            ("other.yaml".to_owned(), other),
        ]
        .into();
        let project = load_from(Source::Memory(files)).unwrap();
        let b = compile(&project).unwrap_or_else(|e| panic!("{e}")).bundle;
        let answer = |id: &str| {
            let op = b.apis[0].operations.iter().find(|o| o.id == id).unwrap();
            op.mock.as_ref().unwrap().examples[0].value.clone()
        };
        assert_eq!(answer("a"), serde_json::json!("text"));
        assert_eq!(answer("a2"), serde_json::json!("text"));
        assert_eq!(answer("b"), serde_json::json!(7));
    }

    /// A mocked operation without examples answers a value built from its
    /// schema: for every declared JSON response of the petstore documents
    /// (OpenAPI 3.0 and 3.1), that value validates against the schema itself.
    #[test]
    fn built_examples_validate_against_their_own_schema() {
        for doc in [
            "swagger-petstore/openapi.yaml",
            "swagger-petstore-v31/design-first/petstore.yaml",
            "swagger-petstore-v31/code-first/openapi.yaml",
        ] {
            let b = bundle(doc, "validation: {responses: {}}, mock: true")
                .unwrap_or_else(|e| panic!("{doc}: {e}"));
            let (checked, failures) = answers_against_their_schema(&b, example::synthesize);
            assert!(failures.is_empty(), "{doc}: {failures:#?}");
            assert!(checked >= 3, "{doc}: {checked}");
        }
    }

    /// For every declared JSON response of `b`'s first API, the value `build`
    /// makes of its schema checked against that schema: how many were built,
    /// and each invalid one as `<operation> <status>: [at <pointer>: <keyword>]`.
    fn answers_against_their_schema(
        b: &mgw_bundle::Bundle,
        build: fn(&Value) -> Option<Value>,
    ) -> (usize, Vec<String>) {
        let mut checked = 0;
        let mut failures = Vec::new();
        for op in &b.apis[0].operations {
            let rc = op.responses.as_ref().unwrap();
            for r in &rc.responses {
                for m in r.content.iter().filter_map(|m| m.schema.as_ref()) {
                    let Some(v) = build(m) else {
                        failures.push(format!("{} {}: no value built", op.id, r.status));
                        continue;
                    };
                    let validator = mgw_bundle::contract::compile_schema(rc.dialect, m).unwrap();
                    let errors: Vec<String> = validator
                        .iter_errors(&v)
                        .map(|e| format!("at {}: {}", e.instance_path(), e.kind().keyword()))
                        .collect();
                    if !errors.is_empty() {
                        failures.push(format!("{} {}: {errors:?}", op.id, r.status));
                    }
                    checked += 1;
                }
            }
        }
        (checked, failures)
    }

    /// Swagger 2.0 responses are declared by their `schema` in the media
    /// types of `produces` (OAI's petstore-expanded, unchanged), for checks.
    #[test]
    fn swagger_20_responses_are_declared_for_checks() {
        let b = bundle(
            "oai-examples/v2.0/yaml/petstore-expanded.yaml",
            "validation: {responses: {}}",
        )
        .unwrap();
        let op = b.apis[0]
            .operations
            .iter()
            .find(|o| o.id == "find pet by id")
            .unwrap();
        let rc = op.responses.as_ref().unwrap();
        let ok = rc.responses.iter().find(|r| r.status == "200").unwrap();
        let media: Vec<(&str, bool)> = ok
            .content
            .iter()
            .map(|m| (m.media_type.as_str(), m.schema.is_some()))
            .collect();
        assert_eq!(media, [("application/json", true)]);
        let validator = mgw_bundle::contract::compile_schema(
            rc.dialect,
            ok.content[0].schema.as_ref().unwrap(),
        )
        .unwrap();
        assert!(validator.is_valid(&serde_json::json!({"id": 1, "name": "rex"})));
        assert!(!validator.is_valid(&serde_json::json!({"name": "rex"})));
    }

    /// The same for a large real document, Box's (OpenAPI 3.0.2, 296
    /// operations, values nested deep under `allOf`s that refine `nullable`,
    /// patterns, a required property the schema does not describe),
    /// with values from the schemas alone: some of the document's own examples
    /// are not valid against its schemas (a `shared_link` example without its
    /// required `accessed`), and a mock answers those as the document says.
    #[test]
    fn built_examples_of_a_real_document_validate_against_their_own_schema() {
        let text = corpus("box/openapi.json");
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        // Operations told apart by a `#fragment` cannot be routed (`mgw init`
        // leaves them out the same way).
        let fragments: Vec<String> = doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(path, _)| path.contains('#'))
            .flat_map(|(_, item)| item.as_object().unwrap().values())
            .filter_map(|op| op.get("operationId")?.as_str().map(|id| format!("{id:?}")))
            .collect();
        let manifest = format!(
            "name: a\nversion: '1'\nupstreams: {{u: {{urls: ['http://127.0.0.1:1']}}}}\napis: [{{name: a, spec: api.json, upstream: u, basePath: /, validation: {{responses: {{}}}}, mock: true, exclude: {{operations: [{}]}}}}]\nauth: {{providers: {{jwt: {{type: jwt, issuer: i, jwksUrl: 'https://127.0.0.1:1/jwks'}}}}, schemes: {{OAuth2Security: jwt}}}}\n",
            fragments.join(", ")
        );
        let files: BTreeMap<String, String> = [
            ("mgw.yaml".to_owned(), manifest),
            ("api.json".to_owned(), text),
        ]
        .into();
        let project = load_from(Source::Memory(files)).unwrap();
        let b = compile(&project).unwrap_or_else(|e| panic!("{e}")).bundle;
        let (checked, mut failures) =
            answers_against_their_schema(&b, example::synthesize_from_schema);
        // The one answer no value can make valid: an event's `source` is
        // `oneOf` six schemas, one of which (`GenericSource`) is any object, so
        // every object of another branch matches two of them.
        let impossible = [r#"get_events 200: ["at /entries/0/source: oneOf"]"#];
        failures.retain(|f| !impossible.contains(&f.as_str()));
        assert!(checked > 250, "{checked}");
        assert!(
            failures.is_empty(),
            "{} of {checked}: {failures:#?}",
            failures.len()
        );
    }

    /// Stripe's document: every field of an object is `anyOf: [string, $ref]`
    /// to another object whose fields are the same, and most are required.
    /// Building a mock answer of its most referenced objects took minutes (each
    /// branch was built before the first was taken); now each answer is built
    /// from the first branch that gives a value, and is valid.
    #[test]
    fn answers_of_a_widely_referencing_real_document_are_built_and_valid() {
        let mut store = Store::new(Source::Memory(
            [("api.yaml".to_owned(), corpus("stripe/spec3.yaml"))].into(),
        ));
        assert!(store.load_closure("api.yaml", None).is_empty());
        let cx = Cx {
            store: &store,
            schemas: &Schemas::default(),
            dialect: Dialect::Draft4,
            swagger2: false,
        };
        for name in [
            "customer",
            "charge",
            "invoice",
            "subscription",
            "account",
            "checkout.session",
        ] {
            let pointer = vec!["components".into(), "schemas".into(), name.into()];
            let loc = Loc::new("api.yaml", pointer);
            let node =
                crate::project::yaml::resolve_pointer(store.doc("api.yaml").unwrap(), &loc.pointer)
                    .unwrap();
            let schema = cx.schema(&loc, node, Direction::Response).unwrap();
            let value = example::synthesize_from_schema(&schema)
                .unwrap_or_else(|| panic!("{name}: no value"));
            let validator = compile_schema(Dialect::Draft4, &schema).unwrap();
            let errors: Vec<String> = validator
                .iter_errors(&value)
                .map(|e| format!("at {}: {}", e.instance_path(), e.kind().keyword()))
                .collect();
            assert!(errors.is_empty(), "{name}: {errors:?}");
        }
    }

    /// A form body's `encoding` is read with its defaults; a `style` a form
    /// body cannot have is an error at its place.
    #[test]
    fn form_encodings_are_read_and_a_bad_style_is_refused_where_it_is() {
        let doc = |style: &str| {
            format!(
                "openapi: 3.0.3\ninfo: {{title: f, version: '1'}}\npaths:\n  /f:\n    post:\n      operationId: f\n      requestBody:\n        content:\n          application/x-www-form-urlencoded:\n            schema: {{type: object, properties: {{a: {{type: array, items: {{type: integer}}}}, b: {{type: string}}}}}}\n            encoding:\n              a: {{style: {style}}}\n              b: {{explode: false}}\n      responses: {{'200': {{description: ok}}}}\n"
            )
        };
        let b = bundle_text(&doc("pipeDelimited"), "validation: {request: true}").unwrap();
        let media = &b.apis[0].operations[0]
            .request
            .as_ref()
            .unwrap()
            .body
            .as_ref()
            .unwrap()
            .content[0];
        assert!(media.schema.is_some());
        let enc: Vec<(&str, ParamStyle, bool)> = media
            .encoding
            .iter()
            .map(|e| (e.name.as_str(), e.style, e.explode))
            .collect();
        assert_eq!(
            enc,
            [
                ("a", ParamStyle::PipeDelimited, false),
                ("b", ParamStyle::Form, false)
            ]
        );
        let e = bundle_text(&doc("matrix"), "validation: {request: true}").unwrap_err();
        assert!(
            e.contains("api.yaml:12:") && e.contains("encoding/a/style") && e.contains("`form`"),
            "{e}"
        );
    }

    #[test]
    fn petstore_30_and_31_compile_with_validation() {
        for doc in [
            "swagger-petstore/openapi.yaml",
            "swagger-petstore-v31/design-first/petstore.yaml",
            "swagger-petstore-v31/code-first/openapi.yaml",
        ] {
            let b = bundle(doc, "validation: {request: true}, mock: true")
                .unwrap_or_else(|e| panic!("{doc}: {e}"));
            let add = b.apis[0]
                .operations
                .iter()
                .find(|o| o.id == "addPet")
                .unwrap();
            let req = add.request.as_ref().unwrap();
            eprintln!("{doc}: {}", serde_json::to_string(req).unwrap());
            assert!(
                req.body
                    .as_ref()
                    .unwrap()
                    .content
                    .iter()
                    .any(|m| m.schema.is_some())
            );
            let get = b.apis[0]
                .operations
                .iter()
                .find(|o| o.id == "getPetById")
                .unwrap();
            let mock = get.mock.as_ref().unwrap();
            eprintln!("{doc}: {}", serde_json::to_string(mock).unwrap());
            assert_eq!(mock.status, 200);
            assert_eq!(mock.examples[0].value["name"], "doggie");
        }
    }
}
