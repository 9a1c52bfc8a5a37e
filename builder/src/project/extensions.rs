//! The `x-wso2-*` and `x-mgw-*` OpenAPI extensions mgw understands.
//!
//! WSO2 Microgateway 3.x projects carry their gateway settings inside the spec
//! (`x-wso2-basePath`, `x-wso2-production-endpoints`, ...); mgw reads those so such
//! projects move over unchanged, and offers `x-mgw-*` names for the same things.
//! One table (`KNOWN`) says which extension exists, what it means and where it may
//! appear. Values are parsed into [`Policies`] even when this version cannot enforce
//! them yet, so that compilation can refuse them with a precise location instead of
//! silently serving an API without the protection its author asked for.
//!
//! Never: ignore an `x-wso2-*`/`x-mgw-*` key this module does not know (that would
//! hide a typo or a policy); other vendors' `x-*` keys are none of our business and
//! are ignored.

use std::collections::BTreeMap;

use mgw_bundle::LoadBalancing;

use super::error::{Diagnostic, Origin, list, suggestion};
use super::refs::Loc;
use super::yaml::{Kind, Node, parse_pointer};

/// A value together with where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Located<T> {
    pub value: T,
    pub origin: Origin,
}

/// One security requirement: scheme name → scopes. All schemes inside one must
/// pass; any requirement of a list may pass.
pub type SecurityRequirement = BTreeMap<String, Vec<String>>;

/// Upstream URLs written in the spec (`x-wso2-production-endpoints`).
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoints {
    pub urls: Vec<Located<String>>,
    pub load_balancing: LoadBalancing,
    pub origin: Origin,
}

/// Per-API or per-operation behaviour asked for by the spec. At operation level,
/// a `Some` overrides the API's value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Policies {
    /// `security`: `Some(empty)` means explicitly open.
    pub security: Option<Located<Vec<SecurityRequirement>>>,
    /// `x-wso2-disable-security` / `x-mgw-disable-security`.
    pub disable_security: Option<Located<bool>>,
    /// `x-wso2-throttling-tier` / `x-mgw-rate-limit`: a tier or policy name.
    pub rate_limit: Option<Located<String>>,
    /// `x-wso2-cors` / `x-mgw-cors`, as written.
    pub cors: Option<Located<serde_json::Value>>,
    /// `x-wso2-auth-header` / `x-mgw-auth-header`.
    pub auth_header: Option<Located<String>>,
    /// `x-mgw-upstream`: the name of an upstream declared in `mgw.yaml`.
    pub upstream: Option<Located<String>>,
    /// `x-wso2-production-endpoints`.
    pub endpoints: Option<Endpoints>,
    /// `x-mgw-websocket`: WebSocket upgrades are spliced to the upstream (opt-in).
    pub websocket: Option<Located<bool>>,
    /// `x-wso2-sandbox-endpoints`: where sandbox keys go.
    pub sandbox_endpoints: Option<Endpoints>,
    /// `x-mgw-catch-all`: the path's last parameter takes the rest of the path.
    pub catch_all: Option<Located<bool>>,
    /// `x-mgw-transforms`: header, query, path and method changes, as written
    /// (read into `mgw_bundle::Transforms` by `project::transforms`; the node
    /// keeps every key's position).
    pub transforms: Option<Located<Node>>,
    /// `x-mgw-validate-request`: requests are checked against the document.
    pub validate_request: Option<Located<bool>>,
    /// `x-mgw-mock`: answered from the document's examples, no upstream.
    pub mock: Option<Located<bool>>,
    /// `x-wso2-request-interceptor`: the native filter (in the project's
    /// `runtime/`) of that name runs on the operation.
    pub request_interceptor: Option<Located<String>>,
    /// `x-wso2-response-interceptor`: the same, named for the response.
    pub response_interceptor: Option<Located<String>>,
}

/// Where in a document an extension sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Root,
    Paths,
    PathItem,
    Operation,
}

impl Level {
    fn describe(self) -> &'static str {
        match self {
            Level::Root => "at the top of the document",
            Level::Paths => "in `paths`",
            Level::PathItem => "on a path item",
            Level::Operation => "on an operation",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ext {
    BasePath,
    ProductionEndpoints,
    SandboxEndpoints,
    EndpointDefinitions,
    RateLimit,
    DisableSecurity,
    Cors,
    AuthHeader,
    Upstream,
    WebSocket,
    CatchAll,
    Transforms,
    ValidateRequest,
    Mock,
    RequestInterceptor,
    ResponseInterceptor,
}

const API_AND_OP: &[Level] = &[Level::Root, Level::Operation];

/// Every extension mgw understands, and where it may be written.
const KNOWN: &[(&str, Ext, &[Level])] = &[
    ("x-wso2-basePath", Ext::BasePath, &[Level::Root]),
    (
        "x-wso2-production-endpoints",
        Ext::ProductionEndpoints,
        API_AND_OP,
    ),
    (
        "x-wso2-sandbox-endpoints",
        Ext::SandboxEndpoints,
        API_AND_OP,
    ),
    ("x-wso2-endpoints", Ext::EndpointDefinitions, &[Level::Root]),
    ("x-wso2-throttling-tier", Ext::RateLimit, API_AND_OP),
    ("x-wso2-disable-security", Ext::DisableSecurity, API_AND_OP),
    ("x-wso2-cors", Ext::Cors, API_AND_OP),
    ("x-wso2-auth-header", Ext::AuthHeader, API_AND_OP),
    ("x-mgw-upstream", Ext::Upstream, API_AND_OP),
    ("x-mgw-rate-limit", Ext::RateLimit, API_AND_OP),
    ("x-mgw-disable-security", Ext::DisableSecurity, API_AND_OP),
    ("x-mgw-cors", Ext::Cors, API_AND_OP),
    ("x-mgw-auth-header", Ext::AuthHeader, API_AND_OP),
    ("x-mgw-websocket", Ext::WebSocket, API_AND_OP),
    ("x-mgw-catch-all", Ext::CatchAll, &[Level::Operation]),
    ("x-mgw-transforms", Ext::Transforms, API_AND_OP),
    ("x-mgw-validate-request", Ext::ValidateRequest, API_AND_OP),
    ("x-mgw-mock", Ext::Mock, API_AND_OP),
    (
        "x-wso2-request-interceptor",
        Ext::RequestInterceptor,
        API_AND_OP,
    ),
    (
        "x-wso2-response-interceptor",
        Ext::ResponseInterceptor,
        API_AND_OP,
    ),
];

/// WSO2 extensions that exist but that mgw will not honour, with the reason.
const REFUSED: &[(&str, &str)] = &[
    (
        "x-wso2-application-security",
        "application security (API keys, basic auth) is not supported yet by this mgw version",
    ),
    (
        "x-wso2-mutual-ssl",
        "mutual TLS is not supported yet by this mgw version",
    ),
    (
        "x-wso2-transports",
        "transports are a listener setting; configure `listeners` in `mgw.yaml`",
    ),
];

/// What the top of a document may set besides [`Policies`].
#[derive(Debug, Clone, Default)]
pub struct RootExtensions {
    pub base_path: Option<Located<String>>,
}

/// Reads the extensions of one object (`node` at `loc`) into `policies`.
/// `root` is the document root, for `x-wso2-endpoints` references.
pub fn read(
    node: &Node,
    loc: &Loc,
    level: Level,
    root: &Node,
    policies: &mut Policies,
    root_ext: &mut RootExtensions,
    diags: &mut Vec<Diagnostic>,
) {
    let Some(entries) = node.as_map() else {
        return;
    };
    let mut seen: BTreeMap<&'static str, &str> = BTreeMap::new();
    for e in entries {
        let key = e.key.as_str();
        if !(key.starts_with("x-wso2-") || key.starts_with("x-mgw-")) {
            continue;
        }
        let vloc = loc.child(key);
        let key_origin = vloc.origin(e.key_mark);
        let origin = vloc.origin(e.value.mark);
        if let Some((_, why)) = REFUSED.iter().find(|(n, _)| *n == key) {
            diags.push(Diagnostic::new(
                &key_origin,
                format!("`{key}` cannot be used: {why}"),
            ));
            continue;
        }
        let Some(&(name, ext, levels)) = KNOWN.iter().find(|(n, ..)| *n == key) else {
            diags.push(Diagnostic::new(
                &key_origin,
                format!(
                    "unknown extension `{key}`{}; mgw understands {}",
                    suggestion(key, KNOWN.iter().map(|k| k.0)),
                    list(KNOWN.iter().map(|k| k.0), 20)
                ),
            ));
            continue;
        };
        if !levels.contains(&level) {
            let wheres: Vec<&str> = levels.iter().map(|l| l.describe()).collect();
            diags.push(Diagnostic::new(
                &key_origin,
                format!(
                    "`{key}` is not allowed {}; write it {}",
                    level.describe(),
                    wheres.join(" or ")
                ),
            ));
            continue;
        }
        let group = ext_group(ext);
        if let Some(other) = seen.insert(group, name) {
            diags.push(Diagnostic::new(
                &key_origin,
                format!("both `{other}` and `{key}` are set here; keep one"),
            ));
            continue;
        }
        let mut bad = |expected: &str| {
            diags.push(Diagnostic::new(
                &origin,
                format!("`{key}` must be {expected}, found {}", e.value.describe()),
            ));
        };
        match ext {
            Ext::BasePath => match e.value.as_str() {
                Some(s) => {
                    root_ext.base_path = Some(Located {
                        value: s.to_owned(),
                        origin,
                    });
                }
                None => bad("a path such as `/petstore/v1`"),
            },
            Ext::RateLimit => match e.value.as_text() {
                Some(s) if e.value.as_map().is_none() => {
                    policies.rate_limit = Some(Located {
                        value: s.to_owned(),
                        origin,
                    });
                }
                _ => bad("a tier or policy name"),
            },
            Ext::AuthHeader => match e.value.as_str() {
                Some(s) => {
                    policies.auth_header = Some(Located {
                        value: s.to_owned(),
                        origin,
                    });
                }
                None => bad("a header name"),
            },
            Ext::CatchAll => match e.value.as_bool() {
                Some(b) => policies.catch_all = Some(Located { value: b, origin }),
                None => bad("`true` or `false`"),
            },
            Ext::DisableSecurity => match e.value.as_bool() {
                Some(b) => {
                    policies.disable_security = Some(Located { value: b, origin });
                }
                None => bad("`true` or `false`"),
            },
            Ext::WebSocket => match e.value.as_bool() {
                Some(b) => policies.websocket = Some(Located { value: b, origin }),
                None => bad("`true` or `false`"),
            },
            Ext::ValidateRequest => match e.value.as_bool() {
                Some(b) => policies.validate_request = Some(Located { value: b, origin }),
                None => bad("`true` or `false`"),
            },
            Ext::Mock => match e.value.as_bool() {
                Some(b) => policies.mock = Some(Located { value: b, origin }),
                None => bad("`true` or `false`"),
            },
            Ext::Cors => {
                if e.value.as_map().is_some() {
                    policies.cors = Some(Located {
                        value: e.value.to_json(),
                        origin,
                    });
                } else {
                    bad("a mapping");
                }
            }
            Ext::Transforms => {
                if e.value.as_map().is_some() {
                    policies.transforms = Some(Located {
                        value: e.value.clone(),
                        origin,
                    });
                } else {
                    bad("a mapping (`request`, `response`, `staticResponse`)");
                }
            }
            Ext::RequestInterceptor | Ext::ResponseInterceptor => match e.value.as_str() {
                Some(s) if !s.trim().is_empty() => {
                    // The key's position: the error names the extension.
                    let name = Some(Located {
                        value: s.trim().to_owned(),
                        origin: key_origin.clone(),
                    });
                    if ext == Ext::RequestInterceptor {
                        policies.request_interceptor = name;
                    } else {
                        policies.response_interceptor = name;
                    }
                }
                _ => bad("the name of a native filter in the project's `runtime/`"),
            },
            Ext::Upstream => match e.value.as_str() {
                Some(s) => {
                    policies.upstream = Some(Located {
                        value: s.to_owned(),
                        origin,
                    });
                }
                None => bad("the name of an upstream declared in `mgw.yaml`"),
            },
            Ext::ProductionEndpoints => {
                if let Some(ep) = endpoints(&e.value, &vloc, key, root, diags) {
                    policies.endpoints = Some(ep);
                }
            }
            Ext::SandboxEndpoints => {
                if let Some(ep) = endpoints(&e.value, &vloc, key, root, diags) {
                    policies.sandbox_endpoints = Some(ep);
                }
            }
            Ext::EndpointDefinitions => {
                // Only read through references from `x-wso2-production-endpoints`;
                // check the shape so mistakes in unused definitions still show.
                if !matches!(e.value.kind, Kind::Seq(_) | Kind::Map(_)) {
                    bad("a list of named endpoint definitions");
                }
            }
        }
    }
}

/// The x-wso2 and x-mgw spellings of one setting share a group.
fn ext_group(ext: Ext) -> &'static str {
    match ext {
        Ext::BasePath => "basePath",
        Ext::ProductionEndpoints | Ext::Upstream => "upstream",
        Ext::SandboxEndpoints => "sandbox",
        Ext::EndpointDefinitions => "endpoints",
        Ext::RateLimit => "rateLimit",
        Ext::DisableSecurity => "disableSecurity",
        Ext::Cors => "cors",
        Ext::AuthHeader => "authHeader",
        Ext::WebSocket => "websocket",
        Ext::CatchAll => "catchAll",
        Ext::Transforms => "transforms",
        Ext::ValidateRequest => "validateRequest",
        Ext::Mock => "mock",
        Ext::RequestInterceptor => "requestInterceptor",
        Ext::ResponseInterceptor => "responseInterceptor",
    }
}

/// Parses an endpoint object (`{urls: [...], type: load_balance|failover}`), or a
/// string reference to one under the root's `x-wso2-endpoints`.
fn endpoints(
    value: &Node,
    loc: &Loc,
    key: &str,
    root: &Node,
    diags: &mut Vec<Diagnostic>,
) -> Option<Endpoints> {
    if let Some(reference) = value.as_str() {
        let origin = loc.origin(value.mark);
        let Some(name) = reference
            .strip_prefix("#/x-wso2-endpoints/")
            .and_then(|p| parse_pointer(&format!("/{p}")).ok())
            .and_then(|segs| (segs.len() == 1).then(|| segs[0].clone()))
        else {
            diags.push(Diagnostic::new(
                &origin,
                format!("`{key}` must be a mapping with `urls`, or a reference `#/x-wso2-endpoints/<name>`"),
            ));
            return None;
        };
        let defs = root.get("x-wso2-endpoints");
        let mut names = Vec::new();
        let mut found = None;
        let defs_loc = Loc::new(loc.file.clone(), vec!["x-wso2-endpoints".into()]);
        match defs.map(|d| &d.kind) {
            Some(Kind::Seq(items)) => {
                for (i, item) in items.iter().enumerate() {
                    for e in item.as_map().unwrap_or_default() {
                        names.push(e.key.clone());
                        if e.key == name {
                            found = Some((
                                &e.value,
                                defs_loc.child(i.to_string()).child(e.key.clone()),
                            ));
                        }
                    }
                }
            }
            Some(Kind::Map(entries)) => {
                for e in entries {
                    names.push(e.key.clone());
                    if e.key == name {
                        found = Some((&e.value, defs_loc.child(e.key.clone())));
                    }
                }
            }
            _ => {}
        }
        let Some((node, def_loc)) = found else {
            diags.push(Diagnostic::new(
                &origin,
                format!(
                    "`{reference}` names no endpoint{}; `x-wso2-endpoints` defines {}",
                    suggestion(&name, names.iter().map(String::as_str)),
                    list(&names, 20)
                ),
            ));
            return None;
        };
        return endpoint_object(node, &def_loc, key, diags);
    }
    endpoint_object(value, loc, key, diags)
}

fn endpoint_object(
    value: &Node,
    loc: &Loc,
    key: &str,
    diags: &mut Vec<Diagnostic>,
) -> Option<Endpoints> {
    let origin = loc.origin(value.mark);
    let Some(entries) = value.as_map() else {
        diags.push(Diagnostic::new(
            &origin,
            format!(
                "`{key}` must be a mapping with `urls`, found {}",
                value.describe()
            ),
        ));
        return None;
    };
    let mut urls = Vec::new();
    let mut load_balancing = LoadBalancing::RoundRobin;
    let mut ok = true;
    let mut has_urls = false;
    for e in entries {
        let eloc = loc.child(e.key.clone());
        match e.key.as_str() {
            "urls" => {
                has_urls = true;
                match e.value.as_seq() {
                    Some(items) if !items.is_empty() => {
                        for (i, item) in items.iter().enumerate() {
                            let iloc = eloc.child(i.to_string());
                            match item.as_str() {
                                Some(u) if u.starts_with("etcd(") => {
                                    ok = false;
                                    diags.push(Diagnostic::new(
                                        &iloc.origin(item.mark),
                                        "etcd service discovery is not supported; write the URL, or a `${VAR:-default}` template that each environment sets",
                                    ));
                                }
                                Some(u) => urls.push(Located {
                                    value: u.to_owned(),
                                    origin: iloc.origin(item.mark),
                                }),
                                None => {
                                    ok = false;
                                    diags.push(Diagnostic::new(
                                        &iloc.origin(item.mark),
                                        format!("expected a URL, found {}", item.describe()),
                                    ));
                                }
                            }
                        }
                    }
                    _ => {
                        ok = false;
                        diags.push(Diagnostic::new(
                            &eloc.origin(e.value.mark),
                            "expected a non-empty list of URLs, such as `[http://pets.internal:8080/v1]`",
                        ));
                    }
                }
            }
            "type" => match e.value.as_str() {
                // `http`: WSO2's plain endpoint (one URL, or several shared).
                Some("load_balance" | "loadbalance" | "load-balance" | "http") => {
                    load_balancing = LoadBalancing::RoundRobin;
                }
                Some("failover") => load_balancing = LoadBalancing::Failover,
                _ => {
                    ok = false;
                    diags.push(Diagnostic::new(
                        &eloc.origin(e.value.mark),
                        "expected `load_balance`, `failover` or `http`",
                    ));
                }
            },
            "advanceEndpointConfig" => {
                ok = false;
                diags.push(Diagnostic::new(
                    &eloc.origin(e.key_mark),
                    "`advanceEndpointConfig` is not supported yet by this mgw version; declare the upstream in `mgw.yaml` (timeouts, retries) and set `apis[].upstream`",
                ));
            }
            "securityConfig" => {
                ok = false;
                diags.push(Diagnostic::new(
                    &eloc.origin(e.key_mark),
                    "`securityConfig` (credentials the gateway sends to the upstream) is not supported yet by this mgw version; serve the operations that use this endpoint elsewhere (leave them out with `include` in `mgw.yaml`)",
                ));
            }
            other => {
                ok = false;
                diags.push(Diagnostic::new(
                    &eloc.origin(e.key_mark),
                    format!(
                        "unknown endpoint key `{other}`{}; valid keys: `urls` and `type`",
                        suggestion(other, ["urls", "type"])
                    ),
                ));
            }
        }
    }
    if !has_urls {
        ok = false;
        diags.push(Diagnostic::new(&origin, format!("`{key}` needs `urls`")));
    }
    ok.then_some(Endpoints {
        urls,
        load_balancing,
        origin,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::yaml::parse;

    fn run(text: &str, level: Level) -> (Policies, RootExtensions, Vec<String>) {
        let root = parse(text, false).unwrap();
        let mut p = Policies::default();
        let mut r = RootExtensions::default();
        let mut d = Vec::new();
        read(
            &root,
            &Loc::new("a.yaml", vec![]),
            level,
            &root,
            &mut p,
            &mut r,
            &mut d,
        );
        (p, r, d.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn reads_wso2_extensions() {
        let (p, r, d) = run(
            "x-wso2-basePath: /pets/v1\nx-wso2-disable-security: true\nx-wso2-production-endpoints:\n  urls: [http://a:1, http://b:2]\n  type: failover\nx-other-vendor: 1\n",
            Level::Root,
        );
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(r.base_path.unwrap().value, "/pets/v1");
        assert!(p.disable_security.unwrap().value);
        let ep = p.endpoints.unwrap();
        assert_eq!(ep.load_balancing, LoadBalancing::Failover);
        assert_eq!(ep.urls[1].value, "http://b:2");
        assert_eq!(
            ep.urls[1].origin.key_path,
            "#/x-wso2-production-endpoints/urls/1"
        );
    }

    #[test]
    fn endpoint_references() {
        let (p, _, d) = run(
            "x-wso2-endpoints:\n  - pets: {urls: [http://a:1]}\nx-wso2-production-endpoints: '#/x-wso2-endpoints/pets'\n",
            Level::Root,
        );
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(
            p.endpoints.unwrap().urls[0].origin.key_path,
            "#/x-wso2-endpoints/0/pets/urls/0"
        );
        let (_, _, d) = run(
            "x-wso2-endpoints:\n  - pets: {urls: [http://a:1]}\nx-wso2-production-endpoints: '#/x-wso2-endpoints/pet'\n",
            Level::Root,
        );
        assert!(d[0].contains("did you mean `pets`"), "{d:?}");
    }

    #[test]
    fn interceptors_name_filters() {
        let (p, _, d) = run(
            "x-wso2-request-interceptor: ' no-cats '\nx-wso2-response-interceptor: tenant-header\n",
            Level::Operation,
        );
        assert!(d.is_empty(), "{d:?}");
        let req = p.request_interceptor.unwrap();
        assert_eq!(req.value, "no-cats");
        assert_eq!(req.origin.key_path, "#/x-wso2-request-interceptor");
        assert_eq!(p.response_interceptor.unwrap().value, "tenant-header");
        let (_, _, d) = run("x-wso2-request-interceptor: [a]\n", Level::Root);
        assert!(
            d[0].contains("must be the name of a native filter"),
            "{d:?}"
        );
    }

    #[test]
    fn unknown_misplaced_refused_and_doubled_extensions() {
        let (_, _, d) = run(
            "x-wso2-basepath: /x\nx-mgw-foo: 1\nx-wso2-mutual-ssl: mandatory\nx-wso2-throttling-tier: Gold\nx-mgw-rate-limit: gold\n",
            Level::Root,
        );
        assert_eq!(d.len(), 4, "{d:?}");
        assert!(
            d[0].contains("unknown extension `x-wso2-basepath` (did you mean `x-wso2-basePath`?)"),
            "{d:?}"
        );
        assert!(d[1].contains("mgw understands `x-wso2-basePath`"), "{d:?}");
        assert!(d[2].contains("mutual TLS is not supported"), "{d:?}");
        assert!(
            d[3].contains("both `x-wso2-throttling-tier` and `x-mgw-rate-limit`"),
            "{d:?}"
        );
        let (_, _, d) = run("x-wso2-basePath: /x\n", Level::Operation);
        assert!(d[0].contains("not allowed on an operation"), "{d:?}");
    }
}
