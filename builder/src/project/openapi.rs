//! OpenAPI 3.0, 3.1, 3.2 and Swagger 2.0 specs, read into what a gateway needs.
//!
//! mgw routes on method and path template, so from a spec it takes: the operations
//! (path items and operations, following `$ref`s, with generated ids where
//! `operationId` is missing), the base path, tags for `include`, and everything
//! that asks the gateway to behave in some way (`security`, the `x-wso2-*` and
//! `x-mgw-*` extensions, see [`super::extensions`]). Schemas and examples are
//! checked only for dangling or looping `$ref`s ([`super::refs`]), and a broken
//! reference there is a warning: it is an error only where this reader follows it
//! (path items, operations, parameters, security schemes).
//!
//! Never silently drop something that changes how an operation must be served:
//! WebSocket schemes and unknown path item or operation fields (a misspelt
//! `operationID`) are errors; path- or operation-level `servers` are warnings,
//! because `mgw.yaml`'s `basePath`/`upstream` decide where every operation goes
//! (a second `apis` entry with `include` and its own `upstream` sends some
//! operations elsewhere). An operation the gateway cannot serve (a path with a
//! query string or a malformed template) is kept, marked
//! [`SpecOperation::unservable`], so `exclude` can leave it out. Callbacks and 3.1 `webhooks` describe calls the *upstream*
//! makes, so they are ignored.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::contract;
use super::error::{Diagnostic, Origin, did_you_mean, list, suggestion};
use super::extensions::{self, Level, Located, Policies, RootExtensions, SecurityRequirement};
use super::refs::{Loc, Source, Store, Target};
use super::yaml::{Entry, Mark, Node};

/// The HTTP methods a path item may hold, in the order OpenAPI lists them.
pub const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// OpenAPI 3.2's path item: the methods above, `query` (the HTTP QUERY method)
/// and any other method in `additionalOperations`.
const METHODS_32: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace", "query",
];

/// Which flavour of OpenAPI a spec is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SpecFormat {
    #[serde(rename = "swagger-2.0")]
    Swagger2,
    #[serde(rename = "openapi-3.0")]
    OpenApi30,
    #[serde(rename = "openapi-3.1")]
    OpenApi31,
    #[serde(rename = "openapi-3.2")]
    OpenApi32,
}

impl SpecFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            SpecFormat::Swagger2 => "Swagger 2.0",
            SpecFormat::OpenApi30 => "OpenAPI 3.0",
            SpecFormat::OpenApi31 => "OpenAPI 3.1",
            SpecFormat::OpenApi32 => "OpenAPI 3.2",
        }
    }

    /// The methods a path item holds as fields (lowercase).
    fn methods(self) -> &'static [&'static str] {
        if self == SpecFormat::OpenApi32 {
            METHODS_32
        } else {
            METHODS
        }
    }
}

/// Where a spec's base path came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum BasePathSource {
    /// `x-wso2-basePath`.
    Wso2Extension,
    /// The path of `servers[0].url` (OpenAPI 3.x).
    Server,
    /// Swagger 2.0 `basePath`.
    SwaggerBasePath,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SpecBasePath {
    /// Normalized: `/petstore/v1`, or `/`.
    pub value: String,
    pub source: BasePathSource,
    pub origin: Origin,
}

/// A security scheme declared by the spec (`components.securitySchemes` or
/// `securityDefinitions`), kept as written for later versions to compile.
#[derive(Debug, Clone, PartialEq)]
pub struct SecurityScheme {
    pub name: String,
    /// `type`: `apiKey`, `http`, `oauth2`, `openIdConnect`, `basic`, ...
    pub kind: String,
    pub definition: serde_json::Value,
    pub origin: Origin,
}

pub use super::contract::Parameter;

/// One operation of a spec.
#[derive(Debug, Clone, PartialEq)]
pub struct SpecOperation {
    pub id: String,
    /// `id` was generated because the spec has no `operationId`.
    pub id_generated: bool,
    /// Uppercase (`GET`).
    pub method: String,
    /// Path template relative to the base path (`/pets/{petId}`).
    pub path: String,
    pub tags: Vec<String>,
    pub summary: Option<String>,
    pub parameters: Vec<Parameter>,
    pub policies: Policies,
    /// The operation object (which may live in another file than the spec).
    pub origin: Origin,
    /// Why the gateway cannot serve this operation (its path has a query string
    /// or is not a valid template); compiling it is an error unless
    /// `include`/`exclude` leave it out.
    pub unservable: Option<String>,
    /// The operation object (after `$ref`s).
    pub loc: Loc,
    /// What it accepts and what a mock answers (used only when asked for).
    pub contract: Option<contract::OpContract>,
}

/// A loaded spec: what mgw uses of it, with origins for every value.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiSpec {
    /// Project-relative path of the spec file.
    pub file: String,
    pub format: SpecFormat,
    pub title: Option<String>,
    pub version: Option<String>,
    pub base_path: Option<SpecBasePath>,
    /// API-level policies (root `security`, root extensions).
    pub policies: Policies,
    pub security_schemes: BTreeMap<String, SecurityScheme>,
    /// Tags declared at the root (`tags: [{name: …}]`).
    pub declared_tags: Vec<String>,
    /// In document order (paths as written, methods in [`METHODS`] order).
    pub operations: Vec<SpecOperation>,
    /// Every file read for this spec (itself and `$ref` targets), sorted.
    pub files: Vec<String>,
    /// The spec carries `x-wso2-*` extensions: it comes from WSO2 Microgateway,
    /// which secures operations by default.
    pub wso2: bool,
    /// Problems that do not stop the spec from being served (broken `$ref`s in
    /// parts mgw does not read, path-level `servers`, …).
    pub warnings: Vec<Diagnostic>,
}

impl ApiSpec {
    /// All tags in use by operations or declared at the root, sorted.
    pub fn all_tags(&self) -> Vec<String> {
        let mut tags: BTreeSet<String> = self.declared_tags.iter().cloned().collect();
        for op in &self.operations {
            tags.extend(op.tags.iter().cloned());
        }
        tags.into_iter().collect()
    }
}

/// Loads the spec at `file` (project-relative) and every file it references.
/// `referrer` is where the spec was named, for a missing-file error.
pub fn load_spec(
    store: &mut Store,
    file: &str,
    referrer: Option<&Origin>,
) -> Result<ApiSpec, Vec<Diagnostic>> {
    load_spec_with(store, file, referrer, contract::Parts::default())
}

/// [`load_spec`], reading the `contracts` parts of every operation's contract
/// (what `mgw.yaml` asks of the API), and the parts an operation's or the
/// document's extensions ask for (reading schemas costs time on large documents).
pub fn load_spec_with(
    store: &mut Store,
    file: &str,
    referrer: Option<&Origin>,
    contracts: contract::Parts,
) -> Result<ApiSpec, Vec<Diagnostic>> {
    let ref_problems = store.load_closure(file, referrer);
    let store: &Store = store;
    let Some(root) = store.doc(file) else {
        return Err(ref_problems);
    };
    let mut r = Reader {
        store,
        file,
        root,
        diags: Vec::new(),
        warnings: Vec::new(),
        ref_problems: &ref_problems,
        contracts,
    };
    let spec = r.read();
    let (diags, mut warnings) = (r.diags, r.warnings);
    // What the reader did not need to follow is a warning; what it needed is
    // already among `diags`.
    warnings.extend(
        ref_problems
            .iter()
            .filter(|p| {
                !diags
                    .iter()
                    .any(|d| d.file == p.file && d.key_path == p.key_path)
            })
            .cloned(),
    );
    match spec {
        Some(s) if diags.is_empty() => Ok(ApiSpec {
            files: store.files(),
            warnings,
            ..s
        }),
        _ => {
            // A referenced file that could not be read or parsed is likely why
            // the reader found nothing where it followed a `$ref`: show it too.
            let mut diags = diags;
            diags.extend(warnings.into_iter().filter(|w| w.key_path.is_empty()));
            Err(diags)
        }
    }
}

/// Parses one spec held in memory (tests, fuzzing); `$ref`s may only point into it.
pub fn parse_spec_text(file: &str, text: &str) -> Result<ApiSpec, Vec<Diagnostic>> {
    let mut store = Store::new(Source::Memory(BTreeMap::from([(
        file.to_owned(),
        text.to_owned(),
    )])));
    load_spec(&mut store, file, None)
}

struct Reader<'s> {
    store: &'s Store,
    file: &'s str,
    root: &'s Node,
    diags: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
    /// Broken references found by `load_closure` anywhere in the files; one the
    /// reader has to follow becomes an error with this (more precise) message.
    ref_problems: &'s [Diagnostic],
    /// The contract parts read for every operation (more where extensions ask).
    contracts: contract::Parts,
}

/// A field of an object after `$ref` siblings were merged: value and location.
struct Field<'s> {
    key: &'s str,
    key_mark: Mark,
    value: &'s Node,
    loc: Loc,
}

const ROOT_FIELDS_3: &[&str] = &[
    "openapi",
    "$self",
    "info",
    "jsonSchemaDialect",
    "servers",
    "paths",
    "webhooks",
    "components",
    "security",
    "tags",
    "externalDocs",
];
const ROOT_FIELDS_2: &[&str] = &[
    "swagger",
    "info",
    "host",
    "basePath",
    "schemes",
    "consumes",
    "produces",
    "paths",
    "definitions",
    "parameters",
    "responses",
    "securityDefinitions",
    "security",
    "tags",
    "externalDocs",
];
const PATH_ITEM_FIELDS: &[&str] = &["$ref", "summary", "description", "servers", "parameters"];
const OPERATION_FIELDS: &[&str] = &[
    "tags",
    "summary",
    "description",
    "externalDocs",
    "operationId",
    "consumes",
    "produces",
    "parameters",
    "requestBody",
    "responses",
    "callbacks",
    "deprecated",
    "security",
    "servers",
    "schemes",
];

impl<'s> Reader<'s> {
    fn err(&mut self, origin: Origin, message: impl Into<String>) {
        self.diags.push(Diagnostic::new(&origin, message));
    }

    fn root_loc(&self) -> Loc {
        Loc::new(self.file, Vec::new())
    }

    fn read(&mut self) -> Option<ApiSpec> {
        let root = self.root;
        let root_loc = self.root_loc();
        if root.as_map().is_none() {
            self.err(
                root_loc.origin(root.mark),
                format!(
                    "expected an OpenAPI document (a mapping with `openapi: 3.x.y` or `swagger: \"2.0\"`), found {}",
                    root.describe()
                ),
            );
            return None;
        }
        let format = self.format()?;
        let fields = if format == SpecFormat::Swagger2 {
            ROOT_FIELDS_2
        } else {
            ROOT_FIELDS_3
        };
        for e in root.as_map().unwrap_or_default() {
            if !e.key.starts_with("x-") && !fields.contains(&e.key.as_str()) {
                self.unknown_field(&root_loc, e, fields, "top-level field");
            }
        }
        let info = root.get("info");
        let title = info
            .and_then(|i| i.get("title"))
            .and_then(Node::as_text)
            .map(str::to_owned);
        let version = info
            .and_then(|i| i.get("version"))
            .and_then(Node::as_text)
            .map(str::to_owned);

        let mut policies = Policies::default();
        let mut root_ext = RootExtensions::default();
        extensions::read(
            root,
            &root_loc,
            Level::Root,
            root,
            &mut policies,
            &mut root_ext,
            &mut self.diags,
        );
        let security_schemes = self.security_schemes(format);
        if let Some(sec) = root.get("security") {
            policies.security = self.security(sec, &root_loc.child("security"), &security_schemes);
        }
        let base_path = self.base_path(format, root_ext.base_path, version.as_deref());
        if format == SpecFormat::Swagger2 {
            if let Some(s) = root.get("schemes") {
                self.schemes(s, &root_loc.child("schemes"));
            }
        }
        let declared_tags = root
            .get("tags")
            .and_then(Node::as_seq)
            .unwrap_or_default()
            .iter()
            .filter_map(|t| t.get("name").and_then(Node::as_text).map(str::to_owned))
            .collect();
        let operations = self.paths(format, &security_schemes);
        let wso2 = has_wso2(root)
            || root
                .get("paths")
                .and_then(Node::as_map)
                .unwrap_or_default()
                .iter()
                .any(|p| {
                    has_wso2(&p.value)
                        || p.value
                            .as_map()
                            .unwrap_or_default()
                            .iter()
                            .any(|m| has_wso2(&m.value))
                });
        Some(ApiSpec {
            file: self.file.to_owned(),
            format,
            title,
            version,
            base_path,
            policies,
            security_schemes,
            declared_tags,
            operations,
            files: Vec::new(),
            wso2,
            warnings: Vec::new(),
        })
    }

    fn unknown_field(&mut self, loc: &Loc, e: &Entry, valid: &[&str], what: &str) {
        let mut valid: Vec<&str> = valid.to_vec();
        valid.retain(|v| *v != "$ref");
        self.err(
            loc.child(e.key.clone()).origin(e.key_mark),
            format!(
                "unknown {what} `{}`{}; valid: {} (and `x-` extensions)",
                e.key,
                suggestion(&e.key, valid.iter().copied()),
                list(&valid, 30)
            ),
        );
    }

    fn format(&mut self) -> Option<SpecFormat> {
        let root = self.root;
        let loc = self.root_loc();
        if let Some(e) = root.entry("openapi") {
            let v = e.value.as_text().unwrap_or("");
            let f = if v == "3.0" || v.starts_with("3.0.") {
                SpecFormat::OpenApi30
            } else if v == "3.1" || v.starts_with("3.1.") {
                SpecFormat::OpenApi31
            } else if v == "3.2" || v.starts_with("3.2.") {
                SpecFormat::OpenApi32
            } else {
                self.err(
                    loc.child("openapi").origin(e.value.mark),
                    format!("`openapi: {v}` is not supported; mgw reads OpenAPI 3.0.x, 3.1.x, 3.2.x and Swagger 2.0"),
                );
                return None;
            };
            if root.get("swagger").is_some() {
                self.err(
                    loc.child("swagger")
                        .origin(root.entry("swagger").map_or(Mark::UNKNOWN, |e| e.key_mark)),
                    "a document cannot have both `openapi` and `swagger`",
                );
            }
            return Some(f);
        }
        if let Some(e) = root.entry("swagger") {
            let v = e.value.as_text().unwrap_or("");
            if v == "2.0" {
                return Some(SpecFormat::Swagger2);
            }
            self.err(
                loc.child("swagger").origin(e.value.mark),
                format!("`swagger: {v}` is not supported; mgw reads Swagger `2.0`, OpenAPI 3.0.x, 3.1.x and 3.2.x"),
            );
            return None;
        }
        self.err(
            loc.origin(root.mark),
            "not an OpenAPI document: expected `openapi: 3.0.3` (or 3.1.x, 3.2.x) or `swagger: \"2.0\"` at the top",
        );
        None
    }

    fn security_schemes(&mut self, format: SpecFormat) -> BTreeMap<String, SecurityScheme> {
        let root_loc = self.root_loc();
        let (node, loc) = if format == SpecFormat::Swagger2 {
            (
                self.root.get("securityDefinitions"),
                root_loc.child("securityDefinitions"),
            )
        } else {
            (
                self.root
                    .get("components")
                    .and_then(|c| c.get("securitySchemes")),
                root_loc.child("components").child("securitySchemes"),
            )
        };
        let mut out = BTreeMap::new();
        for e in node.and_then(Node::as_map).unwrap_or_default() {
            let eloc = loc.child(e.key.clone());
            let Some(t) = self.deref(&eloc, &e.value) else {
                continue;
            };
            let kind = t
                .node
                .get("type")
                .and_then(Node::as_text)
                .unwrap_or("")
                .to_owned();
            out.insert(
                e.key.clone(),
                SecurityScheme {
                    name: e.key.clone(),
                    kind,
                    definition: t.node.to_json(),
                    origin: Loc::new(t.file, t.pointer.clone()).origin(t.node.mark),
                },
            );
        }
        out
    }

    /// A `security` list: `[{scheme: [scopes]}]`.
    fn security(
        &mut self,
        node: &Node,
        loc: &Loc,
        schemes: &BTreeMap<String, SecurityScheme>,
    ) -> Option<Located<Vec<SecurityRequirement>>> {
        let origin = loc.origin(node.mark);
        let Some(items) = node.as_seq() else {
            self.err(
                origin,
                format!("`security` must be a list of requirements such as `[{{petstore_auth: [read:pets]}}]`, found {}", node.describe()),
            );
            return None;
        };
        let mut reqs = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let iloc = loc.child(i.to_string());
            let Some(entries) = item.as_map() else {
                self.err(
                    iloc.origin(item.mark),
                    "a security requirement must be a mapping of scheme name to scopes",
                );
                continue;
            };
            let mut req = SecurityRequirement::new();
            for e in entries {
                let eloc = iloc.child(e.key.clone());
                if !schemes.contains_key(&e.key) {
                    self.err(
                        eloc.origin(e.key_mark),
                        format!(
                            "unknown security scheme `{}`{}; defined: {}",
                            e.key,
                            suggestion(&e.key, schemes.keys().map(String::as_str)),
                            list(schemes.keys(), 20)
                        ),
                    );
                }
                let scopes = match e.value.as_seq() {
                    Some(s) => s
                        .iter()
                        .filter_map(Node::as_text)
                        .map(str::to_owned)
                        .collect(),
                    None if e.value.is_null() => Vec::new(),
                    None => {
                        self.err(
                            eloc.origin(e.value.mark),
                            "scopes must be a list, such as `[read:pets]` or `[]`",
                        );
                        Vec::new()
                    }
                };
                req.insert(e.key.clone(), scopes);
            }
            reqs.push(req);
        }
        Some(Located {
            value: reqs,
            origin,
        })
    }

    fn schemes(&mut self, node: &Node, loc: &Loc) {
        let Some(items) = node.as_seq() else {
            self.err(
                loc.origin(node.mark),
                "`schemes` must be a list such as `[http, https]`",
            );
            return;
        };
        for (i, s) in items.iter().enumerate() {
            let origin = loc.child(i.to_string()).origin(s.mark);
            match s.as_text() {
                Some("http" | "https") => {}
                Some(ws @ ("ws" | "wss")) => self.err(
                    origin,
                    format!("scheme `{ws}`: WebSocket APIs are not supported by this mgw version"),
                ),
                other => self.err(
                    origin,
                    format!(
                        "unknown scheme `{}`; valid: `http`, `https`",
                        other.unwrap_or("")
                    ),
                ),
            }
        }
    }

    /// `x-wso2-basePath`, else `servers[0].url`'s path (3.x), else `basePath` (2.0).
    fn base_path(
        &mut self,
        format: SpecFormat,
        ext: Option<Located<String>>,
        version: Option<&str>,
    ) -> Option<SpecBasePath> {
        let root_loc = self.root_loc();
        // Servers and basePath are checked even when the extension wins, so a
        // broken server URL is reported wherever it is.
        let from_servers = if format == SpecFormat::Swagger2 {
            None
        } else {
            self.root
                .get("servers")
                .and_then(|s| self.servers(s, &root_loc.child("servers"), true))
        };
        let from_swagger = if format == SpecFormat::Swagger2 {
            self.root.get("basePath").and_then(|b| {
                let origin = root_loc.child("basePath").origin(b.mark);
                match b.as_str() {
                    Some(s) => Some(Located {
                        value: s.to_owned(),
                        origin,
                    }),
                    None => {
                        self.err(origin, "`basePath` must be a path such as `/v1`");
                        None
                    }
                }
            })
        } else {
            None
        };
        let (raw, source) = if let Some(mut e) = ext {
            if let Some(v) = version {
                e.value = e.value.replace("{version}", v);
            }
            (e, BasePathSource::Wso2Extension)
        } else if let Some(s) = from_servers {
            (s, BasePathSource::Server)
        } else if let Some(b) = from_swagger {
            (b, BasePathSource::SwaggerBasePath)
        } else {
            return None;
        };
        match mgw_bundle::normalize_base_path(&raw.value) {
            Ok(value) => Some(SpecBasePath {
                value,
                source,
                origin: raw.origin,
            }),
            Err(e) => {
                self.err(raw.origin, e);
                None
            }
        }
    }

    /// Checks a `servers` list; for the root list, returns the first server's path.
    fn servers(&mut self, node: &Node, loc: &Loc, root_level: bool) -> Option<Located<String>> {
        let Some(items) = node.as_seq() else {
            self.err(
                loc.origin(node.mark),
                "`servers` must be a list of `{url: …}`",
            );
            return None;
        };
        if !root_level {
            if !items.is_empty() {
                self.warnings.push(Diagnostic::new(
                    &loc.origin(node.mark),
                    "`servers` on a path item or operation is not used: `mgw.yaml` decides where operations go (the API's `basePath` and `upstream`); to send some operations to another upstream, add a second `apis` entry for the same spec with `include: {operations: […]}` and its own `upstream`, and leave them out of the first with `exclude`",
                ));
            }
            return None;
        }
        let first = items.first()?;
        let floc = loc.child("0");
        let Some(url_node) = first.get("url") else {
            self.err(floc.origin(first.mark), "a server needs `url`");
            return None;
        };
        let uloc = floc.child("url");
        let Some(url) = url_node.as_str() else {
            self.err(uloc.origin(url_node.mark), "`url` must be a string");
            return None;
        };
        let vars = first.get("variables");
        let mut out = String::new();
        let mut rest = url;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let Some(close) = rest[open..].find('}') else {
                self.err(
                    uloc.origin(url_node.mark),
                    format!("`{url}` has an unclosed `{{`"),
                );
                return None;
            };
            let name = &rest[open + 1..open + close];
            let default = vars
                .and_then(|v| v.get(name))
                .and_then(|v| v.get("default"))
                .and_then(Node::as_text);
            match default {
                Some(d) => out.push_str(d),
                None => {
                    let defined: Vec<&str> = vars
                        .and_then(Node::as_map)
                        .unwrap_or_default()
                        .iter()
                        .map(|e| e.key.as_str())
                        .collect();
                    self.err(
                        uloc.origin(url_node.mark),
                        format!(
                            "server variable `{{{name}}}` has no `default` under `variables`{}; defined: {}",
                            suggestion(name, defined.iter().copied()),
                            list(&defined, 20)
                        ),
                    );
                    return None;
                }
            }
            rest = &rest[open + close + 1..];
        }
        out.push_str(rest);
        let lower = out.to_ascii_lowercase();
        if lower.starts_with("ws://") || lower.starts_with("wss://") {
            self.err(
                uloc.origin(url_node.mark),
                format!("`{out}`: WebSocket APIs are not supported by this mgw version"),
            );
            return None;
        }
        let path = match out.find("://") {
            Some(i) => {
                let after = &out[i + 3..];
                after.find('/').map_or("/", |j| &after[j..])
            }
            None => out.as_str(),
        };
        let path = path.split(['?', '#']).next().unwrap_or("");
        let path = if path.starts_with('/') {
            path.to_owned()
        } else {
            format!("/{}", path.trim_start_matches("./").trim_start_matches('.'))
        };
        Some(Located {
            value: path,
            origin: uloc.origin(url_node.mark),
        })
    }

    fn deref(&mut self, loc: &Loc, node: &'s Node) -> Option<Target<'s>> {
        match self
            .store
            .deref(self.file_of(loc), loc.pointer.clone(), node)
        {
            Ok(t) => Some(t),
            Err(d) => {
                let d = self
                    .ref_problems
                    .iter()
                    .find(|p| p.file == d.file && p.key_path == d.key_path)
                    .cloned()
                    .unwrap_or(d);
                self.diags.push(d);
                None
            }
        }
    }

    /// The `'s` file name for a location (files live in the store).
    fn file_of(&self, loc: &Loc) -> &'s str {
        self.store.file_name(&loc.file).unwrap_or(self.file)
    }

    /// Fields of an object that may be a `$ref` with siblings (path items): the
    /// referenced object's fields, overridden by the ones written beside `$ref`.
    fn fields(&mut self, loc: &Loc, node: &'s Node) -> Option<(Vec<Field<'s>>, Target<'s>)> {
        let target = self.deref(loc, node)?;
        let mut out: Vec<Field<'s>> = Vec::new();
        let tloc = target.loc();
        if let Some(entries) = target.node.as_map() {
            for e in entries {
                out.push(Field {
                    key: &e.key,
                    key_mark: e.key_mark,
                    value: &e.value,
                    loc: tloc.child(e.key.clone()),
                });
            }
        }
        if !std::ptr::eq(target.node, node) {
            for e in node.as_map().unwrap_or_default() {
                if e.key == "$ref" {
                    continue;
                }
                out.retain(|f| f.key != e.key);
                out.push(Field {
                    key: &e.key,
                    key_mark: e.key_mark,
                    value: &e.value,
                    loc: loc.child(e.key.clone()),
                });
            }
        }
        Some((out, target))
    }

    fn paths(
        &mut self,
        format: SpecFormat,
        schemes: &BTreeMap<String, SecurityScheme>,
    ) -> Vec<SpecOperation> {
        let root = self.root;
        let loc = self.root_loc().child("paths");
        let Some(paths) = root.get("paths") else {
            if format == SpecFormat::OpenApi30 || format == SpecFormat::Swagger2 {
                self.err(
                    self.root_loc().origin(root.mark),
                    "missing `paths`: a spec needs at least one path to serve",
                );
            }
            return Vec::new();
        };
        let Some(entries) = paths.as_map() else {
            if !paths.is_null() {
                self.err(
                    loc.origin(paths.mark),
                    format!("`paths` must be a mapping, found {}", paths.describe()),
                );
            }
            return Vec::new();
        };
        let mut ignored = RootExtensions::default();
        let mut ignored_policies = Policies::default();
        extensions::read(
            paths,
            &loc,
            Level::Paths,
            root,
            &mut ignored_policies,
            &mut ignored,
            &mut self.diags,
        );
        let mut ops = Vec::new();
        for e in entries {
            if e.key.starts_with("x-") {
                continue;
            }
            let ploc = loc.child(e.key.clone());
            if let Err(msg) = check_template(&e.key) {
                // The rest of the document can still be served: keep the
                // operations, marked, so `exclude` can leave them out.
                let first = ops.len();
                self.path_item(format, &e.key, &ploc, &e.value, schemes, &mut ops);
                if ops.len() == first {
                    self.err(ploc.origin(e.key_mark), msg);
                    continue;
                }
                for op in &mut ops[first..] {
                    op.unservable = Some(msg.clone());
                }
                continue;
            }
            self.path_item(format, &e.key, &ploc, &e.value, schemes, &mut ops);
        }
        assign_ids(&mut ops, &mut self.diags);
        // What `mgw.yaml` asks, and what the document's or the operation's
        // extensions ask (`compile` decides which of them wins: every part it
        // can use is read).
        let asked = |p: &Policies| contract::Parts {
            request: p.validate_request.as_ref().is_some_and(|l| l.value),
            mock: p.mock.as_ref().is_some_and(|l| l.value),
            responses: false,
        };
        let root_asks = {
            let mut root_policies = Policies::default();
            let mut ignored = RootExtensions::default();
            let mut ignored_diags = Vec::new();
            extensions::read(
                root,
                &self.root_loc(),
                Level::Root,
                root,
                &mut root_policies,
                &mut ignored,
                &mut ignored_diags,
            );
            asked(&root_policies)
        };
        let schemas = contract::Schemas::default();
        for op in &mut ops {
            let own = asked(&op.policies);
            let parts = contract::Parts {
                request: self.contracts.request || root_asks.request || own.request,
                mock: self.contracts.mock || root_asks.mock || own.mock,
                responses: self.contracts.responses,
            };
            if parts == contract::Parts::default() {
                continue;
            }
            let node = self
                .store
                .doc(&op.loc.file)
                .and_then(|d| super::yaml::resolve_pointer(d, &op.loc.pointer).ok());
            let dialect = match format {
                SpecFormat::Swagger2 => None,
                SpecFormat::OpenApi30 => Some(mgw_bundle::contract::Dialect::Draft4),
                SpecFormat::OpenApi31 | SpecFormat::OpenApi32 => {
                    Some(mgw_bundle::contract::Dialect::Draft202012)
                }
            };
            op.contract = node.map(|n| {
                contract::read(
                    self.store,
                    &schemas,
                    dialect,
                    &op.loc,
                    n,
                    &op.parameters,
                    parts,
                )
            });
        }
        ops
    }

    fn path_item(
        &mut self,
        format: SpecFormat,
        path: &str,
        loc: &Loc,
        node: &'s Node,
        schemes: &BTreeMap<String, SecurityScheme>,
        ops: &mut Vec<SpecOperation>,
    ) {
        let Some((fields, target)) = self.fields(loc, node) else {
            return;
        };
        if target.node.as_map().is_none() && !target.node.is_null() {
            self.err(
                target.loc().origin(target.node.mark),
                format!(
                    "a path item must be a mapping of methods, found {}",
                    target.node.describe()
                ),
            );
            return;
        }
        let mut common_params = Vec::new();
        let mut policies = Policies::default();
        let mut ignored = RootExtensions::default();
        extensions::read(
            target.node,
            &target.loc(),
            Level::PathItem,
            self.store.doc(target.file).unwrap_or(self.root),
            &mut policies,
            &mut ignored,
            &mut self.diags,
        );
        if !std::ptr::eq(target.node, node) {
            extensions::read(
                node,
                loc,
                Level::PathItem,
                self.root,
                &mut policies,
                &mut ignored,
                &mut self.diags,
            );
        }
        let own_methods = format.methods();
        let mut methods = Vec::new();
        let mut additional = Vec::new();
        for f in &fields {
            match f.key {
                k if k.starts_with("x-") => {}
                k if own_methods.contains(&k) => methods.push(f),
                "additionalOperations" if format == SpecFormat::OpenApi32 => {
                    additional = self.additional_operations(f);
                }
                "parameters" => common_params = self.parameters(f.value, &f.loc),
                "servers" => {
                    self.servers(f.value, &f.loc, false);
                }
                "summary" | "description" => {}
                "query" | "additionalOperations" => self.err(
                    f.loc.origin(f.key_mark),
                    format!(
                        "`{}` is an OpenAPI 3.2 field, and this document is {}: write `openapi: 3.2.0` at its top to use it",
                        f.key,
                        format.as_str()
                    ),
                ),
                _ => {
                    let mut valid: Vec<&str> = own_methods.to_vec();
                    if format == SpecFormat::OpenApi32 {
                        valid.push("additionalOperations");
                    }
                    valid.extend_from_slice(PATH_ITEM_FIELDS);
                    let entry = Entry {
                        key: f.key.to_owned(),
                        key_mark: f.key_mark,
                        value: f.value.clone(),
                    };
                    let mut parent = f.loc.clone();
                    parent.pointer.pop();
                    let hint = if did_you_mean(f.key, own_methods.iter().copied()).is_some() {
                        "path item field (methods are lowercase)"
                    } else {
                        "path item field"
                    };
                    self.unknown_field(&parent, &entry, &valid, hint);
                }
            }
        }
        methods.sort_by_key(|f| own_methods.iter().position(|m| *m == f.key));
        for f in methods.into_iter().chain(&additional) {
            if let Some(op) = self.operation(path, f, &common_params, schemes) {
                ops.push(op);
            }
        }
    }

    /// OpenAPI 3.2's `additionalOperations`: methods other than the path item's
    /// own fields, keyed by the method as it is sent (HTTP methods are
    /// case-sensitive).
    fn additional_operations(&mut self, f: &Field<'s>) -> Vec<Field<'s>> {
        let Some(entries) = f.value.as_map() else {
            self.err(
                f.loc.origin(f.value.mark),
                format!(
                    "`additionalOperations` must be a mapping of HTTP methods to operations, found {}",
                    f.value.describe()
                ),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for e in entries {
            let loc = f.loc.child(e.key.clone());
            let lower = e.key.to_ascii_lowercase();
            if METHODS_32.contains(&lower.as_str()) {
                self.err(
                    loc.origin(e.key_mark),
                    format!(
                        "`{}` is the path item's own `{lower}` field; `additionalOperations` holds only other methods",
                        e.key
                    ),
                );
                continue;
            }
            out.push(Field {
                key: &e.key,
                key_mark: e.key_mark,
                value: &e.value,
                loc,
            });
        }
        out
    }

    fn operation(
        &mut self,
        path: &str,
        f: &Field<'s>,
        common: &[Parameter],
        schemes: &BTreeMap<String, SecurityScheme>,
    ) -> Option<SpecOperation> {
        let target = self.deref(&f.loc, f.value)?;
        let tloc = target.loc();
        let node = target.node;
        let origin = tloc.origin(if node.mark.is_known() {
            node.mark
        } else {
            f.key_mark
        });
        let Some(entries) = node.as_map() else {
            self.err(
                origin,
                format!("an operation must be a mapping, found {}", node.describe()),
            );
            return None;
        };
        // A path item's own method field is lowercase; an `additionalOperations`
        // key is the method as it is sent.
        let own = METHODS_32.contains(&f.key);
        let unservable = (!own && !f.key.bytes().all(|b| b.is_ascii_uppercase())).then(|| {
            format!(
                "method `{}` (`additionalOperations`): the gateway routes methods written in uppercase letters only",
                f.key
            )
        });
        let mut op = SpecOperation {
            id: String::new(),
            id_generated: false,
            method: if own {
                f.key.to_ascii_uppercase()
            } else {
                f.key.to_owned()
            },
            path: path.to_owned(),
            tags: Vec::new(),
            summary: None,
            parameters: common.to_vec(),
            policies: Policies::default(),
            // The method key in the path item.
            origin: f.loc.origin(f.key_mark),
            unservable,
            loc: tloc.clone(),
            contract: None,
        };
        let doc_root = self.store.doc(target.file).unwrap_or(self.root);
        let mut ignored = RootExtensions::default();
        extensions::read(
            node,
            &tloc,
            Level::Operation,
            doc_root,
            &mut op.policies,
            &mut ignored,
            &mut self.diags,
        );
        for e in entries {
            let eloc = tloc.child(e.key.clone());
            match e.key.as_str() {
                k if k.starts_with("x-") => {}
                "operationId" => match e.value.as_text() {
                    Some(id) if !id.trim().is_empty() => op.id = id.to_owned(),
                    _ => self.err(
                        eloc.origin(e.value.mark),
                        "`operationId` must be a non-empty string",
                    ),
                },
                "tags" => match e.value.as_seq() {
                    Some(tags) => {
                        for (i, t) in tags.iter().enumerate() {
                            match t.as_text() {
                                Some(s) => op.tags.push(s.to_owned()),
                                None => self.err(
                                    eloc.child(i.to_string()).origin(t.mark),
                                    "a tag must be a string",
                                ),
                            }
                        }
                    }
                    None => self.err(
                        eloc.origin(e.value.mark),
                        "`tags` must be a list of strings",
                    ),
                },
                "summary" => op.summary = e.value.as_text().map(str::to_owned),
                "security" => op.policies.security = self.security(&e.value, &eloc, schemes),
                "servers" => {
                    self.servers(&e.value, &eloc, false);
                }
                "schemes" => self.schemes(&e.value, &eloc),
                "parameters" => {
                    for p in self.parameters(&e.value, &eloc) {
                        op.parameters
                            .retain(|q| !(q.name == p.name && q.location == p.location));
                        op.parameters.push(p);
                    }
                }
                k if OPERATION_FIELDS.contains(&k) => {}
                _ => self.unknown_field(&tloc, e, OPERATION_FIELDS, "operation field"),
            }
        }
        Some(op)
    }

    fn parameters(&mut self, node: &'s Node, loc: &Loc) -> Vec<Parameter> {
        let Some(items) = node.as_seq() else {
            self.err(
                loc.origin(node.mark),
                format!("`parameters` must be a list, found {}", node.describe()),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let iloc = loc.child(i.to_string());
            let Some(t) = self.deref(&iloc, item) else {
                continue;
            };
            let name = t.node.get("name").and_then(Node::as_text);
            let location = t.node.get("in").and_then(Node::as_text);
            match (name, location) {
                (Some(n), Some(l)) => out.push(Parameter {
                    name: n.to_owned(),
                    location: l.to_owned(),
                    required: t
                        .node
                        .get("required")
                        .and_then(Node::as_bool)
                        .unwrap_or(l == "path"),
                    loc: t.loc(),
                }),
                _ => self.err(
                    t.loc().origin(t.node.mark),
                    "a parameter needs `name` and `in` (`path`, `query`, `header`, `cookie` or, in OpenAPI 3.2, `querystring`)",
                ),
            }
        }
        out
    }
}

fn has_wso2(node: &Node) -> bool {
    node.as_map()
        .unwrap_or_default()
        .iter()
        .any(|e| e.key.starts_with("x-wso2-"))
}

/// Checks an OpenAPI path template: `/pets/{petId}`.
pub fn check_template(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err(format!("path `{path}` must start with `/`"));
    }
    if path.contains(['?', '#']) {
        return Err(format!(
            "path `{path}` must not contain a query or fragment"
        ));
    }
    let mut names = BTreeSet::new();
    let mut rest = path;
    while let Some(open) = rest.find(['{', '}']) {
        if rest.as_bytes()[open] == b'}' {
            return Err(format!("path `{path}` has a `}}` without `{{`"));
        }
        let after = &rest[open + 1..];
        let Some(close) = after.find(['{', '}']) else {
            return Err(format!("path `{path}` has an unclosed `{{`"));
        };
        if after.as_bytes()[close] == b'{' {
            return Err(format!("path `{path}` has nested `{{`"));
        }
        let name = &after[..close];
        if name.is_empty() {
            return Err(format!("path `{path}` has an empty parameter `{{}}`"));
        }
        if !names.insert(name) {
            return Err(format!("path `{path}` uses parameter `{{{name}}}` twice"));
        }
        rest = &after[close + 1..];
    }
    // And whatever else the gateway's router refuses (dot segments, `%2e%2e`
    // included; parameters with nothing between them), by its own rule.
    mgw_bundle::template::check_template(path).map_err(|e| e.to_string())
}

/// `get_pets_petId` for `GET /pets/{petId}`; `get_root` for `GET /`.
pub fn generate_id(method: &str, path: &str) -> String {
    let mut id = method.to_ascii_lowercase();
    let mut any = false;
    for seg in path.split('/') {
        let cleaned: String = seg
            .chars()
            .filter(|c| *c != '{' && *c != '}')
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let cleaned = cleaned.trim_matches('_');
        if cleaned.is_empty() {
            continue;
        }
        id.push('_');
        id.push_str(cleaned);
        any = true;
    }
    if !any {
        id.push_str("_root");
    }
    id
}

/// Reports duplicate operationIds and fills in missing ones deterministically
/// (document order, `_2`, `_3`… on collision).
fn assign_ids(ops: &mut [SpecOperation], diags: &mut Vec<Diagnostic>) {
    let mut used: BTreeMap<String, String> = BTreeMap::new();
    for op in ops.iter() {
        if op.id.is_empty() {
            continue;
        }
        let here = format!("`{} {}` ({})", op.method, op.path, op.origin.position());
        if let Some(first) = used.get(&op.id) {
            diags.push(Diagnostic::new(
                &op.origin,
                format!(
                    "operationId `{}` is already used by {first}; operationIds must be unique",
                    op.id
                ),
            ));
        } else {
            used.insert(op.id.clone(), here);
        }
    }
    for op in ops.iter_mut() {
        if !op.id.is_empty() {
            continue;
        }
        let base = generate_id(&op.method, &op.path);
        let mut id = base.clone();
        let mut n = 2;
        while used.contains_key(&id) {
            id = format!("{base}_{n}");
            n += 1;
        }
        used.insert(id.clone(), String::new());
        op.id = id;
        op.id_generated = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str) -> ApiSpec {
        parse_spec_text("api.yaml", text).unwrap_or_else(|d| {
            panic!(
                "{}",
                d.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        })
    }

    fn errors(text: &str) -> String {
        parse_spec_text("api.yaml", text)
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    }

    const PETSTORE: &str = r#"
openapi: 3.0.3
info: {title: Petstore, version: 1.0.0}
servers:
  - url: "{scheme}://pets.example.com/{base}/"
    variables:
      scheme: {default: https}
      base: {default: v1}
paths:
  /pets:
    parameters:
      - $ref: '#/components/parameters/Trace'
    get:
      operationId: listPets
      tags: [pets]
    post:
      tags: [pets, admin]
  /pets/{petId}:
    $ref: '#/components/pathItems/Pet'
components:
  parameters:
    Trace: {name: X-Trace, in: header}
  pathItems:
    Pet:
      get: {operationId: getPet}
      delete: {}
"#;

    #[test]
    fn reads_operations_base_path_and_refs() {
        let s = spec(PETSTORE);
        assert_eq!(s.format, SpecFormat::OpenApi30);
        assert_eq!(s.version.as_deref(), Some("1.0.0"));
        let bp = s.base_path.clone().unwrap();
        assert_eq!(bp.value, "/v1");
        assert_eq!(bp.source, BasePathSource::Server);
        let ids: Vec<_> = s
            .operations
            .iter()
            .map(|o| (o.method.as_str(), o.id.as_str()))
            .collect();
        assert_eq!(
            ids,
            [
                ("GET", "listPets"),
                ("POST", "post_pets"),
                ("GET", "getPet"),
                ("DELETE", "delete_pets_petId")
            ]
        );
        assert_eq!(s.operations[0].parameters[0].name, "X-Trace");
        assert_eq!(s.all_tags(), vec!["admin".to_string(), "pets".into()]);
        // Operation origins point at the method key.
        assert_eq!(s.operations[0].origin.line, Some(13));
        assert_eq!(s.operations[0].origin.key_path, "#/paths/~1pets/get");
    }

    #[test]
    fn swagger_2_base_path_and_schemes() {
        let s = spec(
            "swagger: '2.0'\ninfo: {title: t, version: '1'}\nbasePath: /v2/\npaths:\n  /a: {get: {responses: {}}}\n",
        );
        assert_eq!(s.format, SpecFormat::Swagger2);
        assert_eq!(s.base_path.unwrap().value, "/v2");
        let e =
            errors("swagger: '2.0'\ninfo: {title: t, version: '1'}\nschemes: [ws]\npaths: {}\n");
        assert!(
            e.contains("api.yaml:3:11: `#/schemes/0`: scheme `ws`: WebSocket"),
            "{e}"
        );
    }

    #[test]
    fn wso2_base_path_wins_and_expands_version() {
        let s = spec(
            "openapi: 3.0.0\ninfo: {title: t, version: '2'}\nx-wso2-basePath: /t/{version}\nservers: [{url: /ignored}]\npaths:\n  /a: {get: {}}\n",
        );
        let bp = s.base_path.unwrap();
        assert_eq!(bp.value, "/t/2");
        assert_eq!(bp.source, BasePathSource::Wso2Extension);
    }

    #[test]
    fn openapi_31_without_paths_and_json() {
        let s = spec("openapi: 3.1.0\ninfo: {title: t, version: '1'}\nwebhooks: {}\n");
        assert_eq!(s.format, SpecFormat::OpenApi31);
        assert!(s.operations.is_empty());
        let s = parse_spec_text(
            "api.json",
            "{\"openapi\": \"3.0.1\", \"info\": {\"title\": \"t\", \"version\": \"1\"}, \"paths\": {\"/a\": {\"get\": {\"operationId\": \"a\"}}}}",
        )
        .unwrap();
        assert_eq!(s.operations[0].id, "a");
    }

    #[test]
    fn openapi_32_query_and_additional_operations_are_operations() {
        let s = spec(
            "openapi: 3.2.0\n$self: https://example.com/api\ninfo: {title: t, version: '1'}\npaths:\n  /a:\n    parameters: [{name: q, in: querystring, content: {application/json: {}}}]\n    additionalOperations:\n      LINK: {operationId: link}\n      Purge: {operationId: purge}\n    query: {operationId: search}\n    get: {operationId: list}\n",
        );
        assert_eq!(s.format, SpecFormat::OpenApi32);
        let ops: Vec<(&str, &str, bool)> = s
            .operations
            .iter()
            .map(|o| (o.method.as_str(), o.id.as_str(), o.unservable.is_some()))
            .collect();
        // The path item's own fields in OpenAPI's order, then the others as written.
        assert_eq!(
            ops,
            [
                ("GET", "list", false),
                ("QUERY", "search", false),
                ("LINK", "link", false),
                ("Purge", "purge", true),
            ]
        );
        assert_eq!(s.operations[0].parameters[0].location, "querystring");
        assert!(
            s.operations[3]
                .unservable
                .as_ref()
                .unwrap()
                .contains("method `Purge`"),
            "{:?}",
            s.operations[3].unservable
        );
    }

    #[test]
    fn openapi_32_fields_are_refused_where_they_do_not_belong() {
        let e = errors(
            "openapi: 3.2.0\ninfo: {title: t, version: '1'}\npaths:\n  /a:\n    additionalOperations:\n      POST: {}\n      Query: {}\n",
        );
        assert!(
            e.contains("api.yaml:6:7: `#/paths/~1a/additionalOperations/POST`: `POST` is the path item's own `post` field")
                && e.contains("api.yaml:7:7: `#/paths/~1a/additionalOperations/Query`: `Query` is the path item's own `query` field"),
            "{e}"
        );
        let e = errors(
            "openapi: 3.1.0\ninfo: {title: t, version: '1'}\npaths:\n  /a:\n    query: {}\n",
        );
        assert!(
            e.contains("api.yaml:5:5: `#/paths/~1a/query`: `query` is an OpenAPI 3.2 field, and this document is OpenAPI 3.1: write `openapi: 3.2.0`"),
            "{e}"
        );
        let e = errors("openapi: 3.3.0\ninfo: {title: t, version: '1'}\npaths: {}\n");
        assert!(
            e.contains("mgw reads OpenAPI 3.0.x, 3.1.x, 3.2.x and Swagger 2.0"),
            "{e}"
        );
    }

    #[test]
    fn problems_are_located() {
        let e = errors(
            "openapi: 3.0.0\ninfo: {title: t, version: '1'}\nservers: [{url: 'http://{host}/v1'}]\npaths:\n  /a:\n    GET: {}\n    get: {operationID: x}\n  b: {}\n",
        );
        assert!(
            e.contains(
                "api.yaml:3:17: `#/servers/0/url`: server variable `{host}` has no `default`"
            ),
            "{e}"
        );
        assert!(e.contains("api.yaml:6:5: `#/paths/~1a/GET`: unknown path item field (methods are lowercase) `GET` (did you mean `get`?)"), "{e}");
        assert!(e.contains("`#/paths/~1a/get/operationID`: unknown operation field `operationID` (did you mean `operationId`?)"), "{e}");
        assert!(
            e.contains("api.yaml:8:3: `#/paths/b`: path `b` must start with `/`"),
            "{e}"
        );
    }

    #[test]
    fn duplicate_operation_ids_and_generated_collisions() {
        let e = errors(
            "openapi: 3.0.0\ninfo: {title: t, version: '1'}\npaths:\n  /a: {get: {operationId: x}}\n  /b: {get: {operationId: x}}\n",
        );
        assert!(
            e.contains("operationId `x` is already used by `GET /a`"),
            "{e}"
        );
        let s = spec(
            "openapi: 3.0.0\ninfo: {title: t, version: '1'}\npaths:\n  /a-b: {get: {}}\n  /a_b: {get: {}}\n  /x: {get: {operationId: get_a_b_3}}\n",
        );
        let ids: Vec<_> = s.operations.iter().map(|o| o.id.as_str()).collect();
        assert_eq!(ids, ["get_a_b", "get_a_b_2", "get_a_b_3"]);
    }

    #[test]
    fn not_openapi() {
        assert!(errors("hello: world\n").contains("not an OpenAPI document"));
        assert!(errors("openapi: 4.0.0\n").contains("`openapi: 4.0.0` is not supported"));
        assert!(errors("- a\n").contains("found a list"));
        assert!(errors("").contains("found null"));
    }

    #[test]
    fn templates() {
        assert!(check_template("/pets/{id}").is_ok());
        assert!(
            check_template("/pets/{id}/{id}")
                .unwrap_err()
                .contains("twice")
        );
        assert!(
            check_template("/pets/{id")
                .unwrap_err()
                .contains("unclosed")
        );
        assert!(check_template("/pets/{}").unwrap_err().contains("empty"));
        assert!(
            check_template("/pets/{a{b}}")
                .unwrap_err()
                .contains("nested")
        );
        assert!(check_template("/pets}").is_err());
        assert_eq!(generate_id("GET", "/pets/{petId}"), "get_pets_petId");
        assert_eq!(generate_id("GET", "/"), "get_root");
        assert_eq!(
            generate_id("POST", "/v1/pet-food.json"),
            "post_v1_pet_food_json"
        );
    }
}
