//! The OpenAPI document as a contract (issue 16), end to end: public documents
//! from `tests/corpus` (swagger-petstore OpenAPI 3.0 and 3.1, unchanged) compiled
//! by the builder, served by an in-process gateway in front of a loopback echo
//! upstream that returns the exact bytes it received.

mod support;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use mgw_builder::project::compile::compile;
use mgw_builder::project::load_from;
use mgw_builder::project::refs::Source;
use proptest::prelude::*;
use serde_json::{Value, json};
use support::{Gw, Reply, TestBody, full, metric, send, start};
use tokio::net::TcpListener;

/// An upstream that answers with the request's body, byte for byte, and its
/// path and query in `x-seen-uri`.
struct Echo {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
}

async fn echo() -> Echo {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let h = h.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<Incoming>| {
                    h.fetch_add(1, Ordering::SeqCst);
                    async move {
                        let uri = req.uri().to_string();
                        let method = req.method().to_string();
                        let ct = req.headers().get("content-type").cloned();
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let mut res = Response::new(full(body));
                        res.headers_mut().insert("x-seen-uri", uri.parse().unwrap());
                        res.headers_mut()
                            .insert("x-seen-method", method.parse().unwrap());
                        if let Some(ct) = ct {
                            res.headers_mut().insert("content-type", ct);
                        }
                        Ok::<_, Infallible>(res)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Echo { addr, hits }
}

fn corpus(path: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/../tests/corpus/{path}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// The bundle `mgw build` makes of `doc` as API `pets` at `/` with `settings`
/// (`validation: {request: true}`, `mock: true`), made servable by the test:
/// loopback listeners, no analytics, and its operations' security left out
/// (the contract is under test here, not the petstore's OAuth).
fn bundle(doc: &str, settings: &str, upstream: SocketAddr) -> Value {
    let files = [("api.yaml".to_owned(), doc.to_owned())].into();
    bundle_of(
        files,
        "api.yaml",
        "petstore_auth: jwt, api_key: key",
        settings,
        upstream,
    )
}

/// [`bundle`] of a document in several `files`, `spec` the entry, `schemes`
/// mapping its security schemes to the providers `jwt` and `key`.
fn bundle_of(
    files: BTreeMap<String, String>,
    spec: &str,
    schemes: &str,
    settings: &str,
    upstream: SocketAddr,
) -> Value {
    let mut b = secured_bundle_of(files, spec, schemes, settings, upstream);
    b.as_object_mut().unwrap().remove("auth");
    let api = b["apis"][0].as_object_mut().unwrap();
    api.remove("securitySchemes");
    for op in api["operations"].as_array_mut().unwrap() {
        op.as_object_mut().unwrap().remove("security");
    }
    b
}

/// [`bundle_of`] with its security kept: the `key` provider reads
/// `/keys` (the test points it at a file of its own); a `users` (basic)
/// provider is declared when `schemes` maps a scheme to it.
fn secured_bundle_of(
    mut files: BTreeMap<String, String>,
    spec: &str,
    schemes: &str,
    settings: &str,
    upstream: SocketAddr,
) -> Value {
    let users = if schemes.contains(": users") {
        ", users: {type: basic}"
    } else {
        ""
    };
    let manifest = format!(
        "name: t\nversion: '1'\nupstreams: {{u: {{urls: ['http://{upstream}']}}}}\n\
         apis: [{{name: pets, spec: {spec}, upstream: u, basePath: /, {settings}}}]\n\
         auth: {{providers: {{jwt: {{type: jwt, issuer: i, jwksUrl: 'https://127.0.0.1:1/jwks'}}, \
         key: {{type: apiKey, file: /keys}}{users}}}, schemes: {{{schemes}}}}}\n"
    );
    files.insert("mgw.yaml".to_owned(), manifest);
    let project = load_from(Source::Memory(files)).unwrap();
    let compiled = compile(&project).unwrap_or_else(|e| panic!("{e}"));
    let mut b = serde_json::to_value(&compiled.bundle).unwrap();
    b["listeners"] =
        json!({"api": {"address": "127.0.0.1:0"}, "admin": {"address": "127.0.0.1:0"}});
    b["analytics"] = json!({"sink": "none"});
    b
}

async fn call(gw: &Gw, method: Method, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    let mut req = Request::builder().method(method).uri(gw.url(path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    send(
        req.body::<TestBody>(full(Bytes::copy_from_slice(body)))
            .unwrap(),
    )
    .await
}

/// `(in, name)` of each violation of a `400`.
fn violations(r: &Reply) -> Vec<(String, String)> {
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert_eq!(r.headers["content-type"], "application/problem+json");
    r.json()["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["in"].as_str().unwrap().to_owned(),
                v["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

const JSON: (&str, &str) = ("content-type", "application/json");

/// Method, path, headers, body, and the violations (`in`, name) expected.
type Case = (
    Method,
    &'static str,
    Vec<(&'static str, &'static str)>,
    &'static [u8],
    Vec<(&'static str, &'static str)>,
);

/// Valid requests reach the upstream unchanged, byte for byte: a JSON body as
/// the client wrote it (spacing, escapes, key order), parameters of every kind,
/// and a body of a media type that is not JSON (streamed, not checked).
#[tokio::test]
async fn petstore_30_valid_requests_pass_unchanged() {
    let up = echo().await;
    let gw = start(bundle(
        &corpus("swagger-petstore/openapi.yaml"),
        "validation: {request: true}",
        up.addr,
    ))
    .await;
    let body = br#"{ "name" : "d\u00f6ggie",  "photoUrls":["a"], "id": 7,
        "status":"sold", "tags":[{"id":1,"name":"x"}], "category": {"id": 2} }"#;
    let r = call(&gw, Method::POST, "/pet", &[JSON], body).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(&r.body[..], &body[..]);
    let xml = b"<pet><name>x</name></pet>";
    let r = call(
        &gw,
        Method::PUT,
        "/pet",
        &[("content-type", "application/xml")],
        xml,
    )
    .await;
    assert_eq!((r.status, &r.body[..]), (StatusCode::OK, &xml[..]));
    let r = call(&gw, Method::GET, "/pet/findByStatus?status=sold", &[], b"").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["x-seen-uri"], "/pet/findByStatus?status=sold");
    let r = call(&gw, Method::GET, "/pet/findByTags?tags=a&tags=b", &[], b"").await;
    assert_eq!(r.status, StatusCode::OK);
    let r = call(&gw, Method::DELETE, "/pet/12", &[("api_key", "k")], b"").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(up.hits.load(Ordering::SeqCst), 5);
    gw.shutdown().await;
}

/// Each kind of violation gets its answer with the right location, and none
/// reaches the upstream.
#[tokio::test]
async fn petstore_30_violations_are_refused_with_their_location() {
    let up = echo().await;
    let gw = start(bundle(
        &corpus("swagger-petstore/openapi.yaml"),
        "validation: {request: true}",
        up.addr,
    ))
    .await;
    let cases: Vec<Case> = vec![
        // Query parameter outside its enum.
        (
            Method::GET,
            "/pet/findByStatus?status=lost",
            vec![],
            b"",
            vec![("query", "status")],
        ),
        // Path parameter of the wrong type.
        (
            Method::GET,
            "/pet/abc",
            vec![],
            b"",
            vec![("path", "petId")],
        ),
        // A body property of the wrong type: a JSON pointer to it.
        (
            Method::POST,
            "/pet",
            vec![JSON],
            br#"{"name": 5, "photoUrls": []}"#,
            vec![("body", "/name")],
        ),
        // A nested one.
        (
            Method::POST,
            "/pet",
            vec![JSON],
            br#"{"name": "x", "photoUrls": [], "tags": [{"id": "one"}]}"#,
            vec![("body", "/tags/0/id")],
        ),
        // A required property missing: the pointer of the object that lacks it.
        (
            Method::POST,
            "/pet",
            vec![JSON],
            br#"{"name": "x"}"#,
            vec![("body", "")],
        ),
        // Not JSON at all.
        (
            Method::POST,
            "/pet",
            vec![JSON],
            b"{name",
            vec![("body", "")],
        ),
        // The required body missing.
        (Method::POST, "/pet", vec![], b"", vec![("body", "")]),
        // Two at once: both listed.
        (
            Method::POST,
            "/pet",
            vec![JSON],
            br#"{"name": 5, "photoUrls": "a"}"#,
            vec![("body", "/name"), ("body", "/photoUrls")],
        ),
    ];
    for (method, path, headers, body, expected) in cases {
        let r = call(&gw, method.clone(), path, &headers, body).await;
        let mut got = violations(&r);
        got.sort();
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect();
        assert_eq!(
            got,
            expected,
            "{method} {path}: {}",
            String::from_utf8_lossy(&r.body)
        );
    }
    // An undeclared content type.
    let r = call(
        &gw,
        Method::POST,
        "/pet",
        &[("content-type", "text/plain")],
        b"x",
    )
    .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(up.hits.load(Ordering::SeqCst), 0, "no upstream call");
    // Counted by operation and reason.
    let body = metric(
        &gw,
        r#"mgw_request_validation_failures_total{api="pets",operation="addPet",reason="body"}"#,
    )
    .await;
    assert_eq!(body, Some(5.0));
    let media = metric(
        &gw,
        r#"mgw_request_validation_failures_total{api="pets",operation="addPet",reason="unsupported_media_type"}"#,
    )
    .await;
    assert_eq!(media, Some(1.0));
    gw.shutdown().await;
}

/// A client's value is echoed only as a bounded excerpt.
#[tokio::test]
async fn a_violation_echoes_only_an_excerpt_of_the_value() {
    let up = echo().await;
    let gw = start(bundle(
        &corpus("swagger-petstore/openapi.yaml"),
        "validation: {request: true}",
        up.addr,
    ))
    .await;
    let long = "x".repeat(10_000);
    let r = call(
        &gw,
        Method::GET,
        &format!("/pet/findByStatus?status={long}"),
        &[],
        b"",
    )
    .await;
    assert_eq!(violations(&r), [("query".to_owned(), "status".to_owned())]);
    assert!(r.body.len() < 1_000, "{} bytes", r.body.len());
    gw.shutdown().await;
}

/// OpenAPI 3.1 (JSON Schema 2020-12, `$id`/`$anchor` references).
#[tokio::test]
async fn petstore_31_validates_with_json_schema_2020_12() {
    let up = echo().await;
    let gw = start(bundle(
        &corpus("swagger-petstore-v31/design-first/petstore.yaml"),
        "validation: {request: true}",
        up.addr,
    ))
    .await;
    let ok =
        br#"{"id": 1, "name": "x", "photoUrls": [], "availableInstances": 9, "petDetailsId": 4}"#;
    let r = call(&gw, Method::POST, "/pet", &[JSON], ok).await;
    assert_eq!((r.status, &r.body[..]), (StatusCode::OK, &ok[..]));
    // `exclusiveMaximum: 10` is a number in 2020-12.
    let r = call(
        &gw,
        Method::POST,
        "/pet",
        &[JSON],
        br#"{"id": 1, "name": "x", "photoUrls": [], "availableInstances": 10}"#,
    )
    .await;
    assert_eq!(
        violations(&r),
        [("body".to_owned(), "/availableInstances".to_owned())]
    );
    // Through a `$ref` to an `$anchor` inside a `$id` resource.
    let r = call(
        &gw,
        Method::POST,
        "/pet",
        &[JSON],
        br#"{"id": 1, "name": "x", "photoUrls": [], "petDetailsId": "four"}"#,
    )
    .await;
    assert_eq!(
        violations(&r),
        [("body".to_owned(), "/petDetailsId".to_owned())]
    );
    assert_eq!(up.hits.load(Ordering::SeqCst), 1);
    gw.shutdown().await;
}

/// `mock: true` answers from the document's examples with the declared status
/// and content type, and never calls the upstream.
#[tokio::test]
async fn mocked_operations_answer_from_examples() {
    let doc = r#"
openapi: 3.1.0
info: {title: m, version: '1'}
paths:
  /pets/{id}:
    get:
      operationId: getPet
      parameters: [{name: id, in: path, required: true, schema: {type: integer}}]
      responses:
        '404': {description: none}
        '200':
          description: a pet
          content:
            application/json:
              examples:
                cat: {value: {name: Tom}}
                dog: {value: {name: Rex}}
  /pets:
    post:
      operationId: addPet
      x-mgw-mock: false
      responses:
        '201': {description: created}
"#;
    let up = echo().await;
    let gw = start(bundle(
        doc,
        "mock: true, validation: {request: true}",
        up.addr,
    ))
    .await;
    let r = call(&gw, Method::GET, "/pets/1", &[], b"").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["content-type"], "application/json");
    assert_eq!(r.json(), json!({"name": "Tom"}));
    let r = call(
        &gw,
        Method::GET,
        "/pets/1",
        &[("prefer", "example=dog")],
        b"",
    )
    .await;
    assert_eq!(r.json(), json!({"name": "Rex"}));
    assert_eq!(r.headers["preference-applied"], "example=dog");
    // Validation still comes first.
    let r = call(&gw, Method::GET, "/pets/x", &[], b"").await;
    assert_eq!(violations(&r), [("path".to_owned(), "id".to_owned())]);
    assert_eq!(up.hits.load(Ordering::SeqCst), 0);
    // The operation's own `x-mgw-mock: false` wins over the API's setting.
    let r = call(&gw, Method::POST, "/pets", &[], b"").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(up.hits.load(Ordering::SeqCst), 1);
    gw.shutdown().await;
}

/// A petstore `Pet` (the 3.0 schema): required `name` and `photoUrls`, the rest
/// optional, every value within its schema.
fn pet() -> impl Strategy<Value = Value> {
    let tag = (any::<i64>(), ".{0,12}").prop_map(|(id, name)| json!({"id": id, "name": name}));
    (
        ".{0,24}",
        prop::collection::vec(".{0,16}", 0..4),
        prop::option::of(any::<i64>()),
        prop::option::of(prop::sample::select(vec!["available", "pending", "sold"])),
        prop::option::of(prop::collection::vec(tag, 0..3)),
        prop::option::of((any::<i64>(), ".{0,8}")),
    )
        .prop_map(|(name, urls, id, status, tags, category)| {
            let mut p = json!({"name": name, "photoUrls": urls});
            if let Some(id) = id {
                p["id"] = id.into();
            }
            if let Some(s) = status {
                p["status"] = s.into();
            }
            if let Some(t) = tags {
                p["tags"] = t.into();
            }
            if let Some((id, name)) = category {
                p["category"] = json!({"id": id, "name": name});
            }
            p
        })
}

/// Random valid instances of the schema are never refused, and arrive unchanged.
#[test]
fn random_valid_pets_are_never_refused() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (gw, _up) = rt.block_on(async {
        let up = echo().await;
        let gw = start(bundle(
            &corpus("swagger-petstore/openapi.yaml"),
            "validation: {request: true}",
            up.addr,
        ))
        .await;
        (gw, up)
    });
    proptest!(ProptestConfig::with_cases(64), |(p in pet(), status in prop::sample::select(vec!["available", "pending", "sold"]))| {
        let body = serde_json::to_vec(&p).unwrap();
        let r = rt.block_on(call(&gw, Method::POST, "/pet", &[JSON], &body));
        prop_assert_eq!(r.status, StatusCode::OK, "{}", String::from_utf8_lossy(&r.body));
        prop_assert_eq!(&r.body[..], &body[..]);
        let r = rt.block_on(call(&gw, Method::GET, &format!("/pet/findByStatus?status={status}"), &[], b""));
        prop_assert_eq!(r.status, StatusCode::OK);
    });
    rt.block_on(gw.shutdown());
}

/// A small OpenAPI 3.0 document for the 3.0 dialect rules and response checks.
const THINGS: &str = r#"
openapi: 3.0.3
info: {title: things, version: '1'}
paths:
  /things:
    post:
      operationId: addThing
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              required: [id, name]
              properties:
                id: {type: integer, readOnly: true}
                name: {type: string, nullable: true}
          text/plain: {}
      responses:
        '200':
          description: the thing
          content:
            application/json:
              schema:
                type: object
                required: [id]
                properties:
                  id: {type: integer, nullable: true}
  /other:
    post:
      operationId: other
      responses:
        '201': {description: created}
"#;

/// OpenAPI 3.0: `nullable` admits `null`; a `readOnly` property is not required
/// in a request.
#[tokio::test]
async fn openapi_30_nullable_and_read_only() {
    let up = echo().await;
    let gw = start(bundle(THINGS, "validation: {request: true}", up.addr)).await;
    for ok in [&br#"{"name": null}"#[..], br#"{"name": "x", "id": 3}"#] {
        let r = call(&gw, Method::POST, "/things", &[JSON], ok).await;
        assert_eq!((r.status, &r.body[..]), (StatusCode::OK, ok));
    }
    let r = call(&gw, Method::POST, "/things", &[JSON], br#"{"name": 1}"#).await;
    assert_eq!(violations(&r), [("body".to_owned(), "/name".to_owned())]);
    let r = call(&gw, Method::POST, "/things", &[JSON], br#"{}"#).await;
    assert_eq!(violations(&r), [("body".to_owned(), String::new())]);
    gw.shutdown().await;
}

/// Response checks report (count and log) an undeclared status, an undeclared
/// content type and a body against its schema — and never change the response.
#[tokio::test]
async fn response_checks_report_drift_and_never_block() {
    let up = echo().await;
    let gw = start(bundle(
        THINGS,
        "validation: {responses: {bodySamplePercent: 100}}",
        up.addr,
    ))
    .await;
    let sample = |reason: &str, op: &str| {
        format!(
            r#"mgw_response_contract_mismatches_total{{api="pets",operation="{op}",reason="{reason}"}}"#
        )
    };
    // Matches: nothing counted (`id: null` is allowed by `nullable`).
    for ok in [&br#"{"id": 1}"#[..], br#"{"id": null}"#] {
        let r = call(&gw, Method::POST, "/things", &[JSON], ok).await;
        assert_eq!((r.status, &r.body[..]), (StatusCode::OK, ok));
    }
    // The body breaks the response schema: passed through unchanged, counted —
    // every time, though only the first is logged within the log interval.
    let bad = br#"{"id": "one"}"#;
    for _ in 0..3 {
        let r = call(&gw, Method::POST, "/things", &[JSON], bad).await;
        assert_eq!((r.status, &r.body[..]), (StatusCode::OK, &bad[..]));
    }
    let r = call(
        &gw,
        Method::POST,
        "/things",
        &[("content-type", "text/plain")],
        b"hi",
    )
    .await;
    assert_eq!((r.status, &r.body[..]), (StatusCode::OK, &b"hi"[..]));
    let r = call(&gw, Method::POST, "/other", &[], b"").await;
    assert_eq!(r.status, StatusCode::OK);
    for (reason, op, n) in [
        ("body", "addThing", 3.0),
        ("undeclared_content_type", "addThing", 1.0),
        ("undeclared_status", "other", 1.0),
    ] {
        let s = sample(reason, op);
        assert!(
            support::eventually(std::time::Duration::from_secs(5), || async {
                metric(&gw, &s).await == Some(n)
            })
            .await,
            "{s}: {:?}",
            metric(&gw, &s).await
        );
    }
    gw.shutdown().await;
}

/// The files of a multi-file corpus document, keyed `<prefix>/<path below dir>`.
fn corpus_files(dir: &str, prefix: &str) -> BTreeMap<String, String> {
    fn walk(
        root: &std::path::Path,
        at: &std::path::Path,
        prefix: &str,
        out: &mut BTreeMap<String, String>,
    ) {
        for e in std::fs::read_dir(at).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                walk(root, &path, prefix, out);
            } else if path.extension().is_some_and(|x| x == "yml" || x == "yaml") {
                let rel = path.strip_prefix(root).unwrap().to_str().unwrap();
                out.insert(
                    format!("{prefix}/{rel}"),
                    std::fs::read_to_string(&path).unwrap(),
                );
            }
        }
    }
    let root = std::path::PathBuf::from(format!(
        "{}/../tests/corpus/{dir}",
        env!("CARGO_MANIFEST_DIR")
    ));
    let mut out = BTreeMap::new();
    walk(&root, &root, prefix, &mut out);
    out
}

/// The violations `(in, name)` a request should get.
type Want = &'static [(&'static str, &'static str)];

/// `(in, name)` pairs, owned.
fn expect(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

/// A real document's `anyOf` + `discriminator` (DigitalOcean, OpenAPI 3.0,
/// multi-file, `mapping` to other files): the `type` selects the branch. Without
/// it an MX record lacking its `priority` passed as an SOA record, and an
/// unmapped `type` passed through any branch. Also a regression test for the
/// whole document building with validation (a `properties` map by `$ref`, an
/// integer beyond 64 bits).
#[tokio::test]
async fn a_discriminator_selects_the_branch_in_a_real_document() {
    let up = echo().await;
    let gw = start(bundle_of(
        corpus_files("digitalocean/specification", "do"),
        "do/DigitalOcean-public.v2.yaml",
        "bearer_auth: jwt, inference_bearer_auth: jwt",
        // Every operation (659): the whole document's schemas compile, in the
        // builder and again at start.
        "validation: {request: true, responses: {}}",
        up.addr,
    ))
    .await;
    let records = "/v2/domains/example.com/records";
    let ok = br#"{"type": "MX", "data": "mail.example.com", "priority": 10}"#;
    let r = call(&gw, Method::POST, records, &[JSON], ok).await;
    assert_eq!(
        (r.status, &r.body[..]),
        (StatusCode::OK, &ok[..]),
        "{:?}",
        r.body
    );
    let attach = br#"{"type": "attach", "volume_name": "example", "droplet_id": 11612190, "region": "nyc1"}"#;
    let r = call(&gw, Method::POST, "/v2/volumes/actions", &[JSON], attach).await;
    assert_eq!(
        (r.status, &r.body[..]),
        (StatusCode::OK, &attach[..]),
        "{:?}",
        r.body
    );
    let cases: [(&str, &[u8], Want); 3] = [
        // Valid as an SOA record, but `MX` selects the MX branch.
        (
            records,
            br#"{"type": "MX", "data": "mail.example.com", "ttl": 1800}"#,
            &[("body", "")],
        ),
        // An unknown value is refused at the discriminator property.
        (
            records,
            br#"{"type": "XX", "data": "x", "ttl": 1800}"#,
            &[("body", "/type")],
        ),
        // `resize` is in the base schema's enum, but no branch is mapped to it.
        (
            "/v2/volumes/actions",
            br#"{"type": "resize", "volume_name": "example", "droplet_id": 1, "region": "nyc1"}"#,
            &[("body", "/type")],
        ),
    ];
    for (path, body, want) in cases {
        let r = call(&gw, Method::POST, path, &[JSON], body).await;
        assert_eq!(
            violations(&r),
            expect(want),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
    assert_eq!(up.hits.load(Ordering::SeqCst), 2);
    gw.shutdown().await;
}

/// Petstore-style polymorphism where the branches overlap (every `Cat` is also
/// a valid `Dog` and `Lizard`, so a plain `oneOf` refuses every pet): `mapping`
/// by reference and by bare schema name, and the implicit mapping by name.
fn polymorphic_pets(openapi: &str) -> String {
    format!(
        r#"
openapi: {openapi}
info: {{title: pets, version: '1'}}
paths:
  /pets:
    post:
      operationId: addPet
      requestBody:
        required: true
        content:
          application/json:
            schema:
              oneOf:
                - $ref: '#/components/schemas/Cat'
                - $ref: '#/components/schemas/Dog'
                - $ref: '#/components/schemas/Lizard'
              discriminator:
                propertyName: petType
                mapping:
                  dog: '#/components/schemas/Dog'
                  lizard: Lizard
      responses:
        '201':
          description: created
          content:
            application/json:
              schema:
                oneOf:
                  - $ref: '#/components/schemas/Cat'
                  - $ref: '#/components/schemas/Dog'
                discriminator: {{propertyName: petType, mapping: {{dog: Dog}}}}
components:
  schemas:
    Pet:
      type: object
      required: [petType, name]
      properties:
        petType: {{type: string}}
        name: {{type: string}}
    Cat:
      allOf:
        - $ref: '#/components/schemas/Pet'
        - type: object
          properties:
            huntingSkill: {{type: string, enum: [clueless, lazy, adventurous]}}
    Dog:
      allOf:
        - $ref: '#/components/schemas/Pet'
        - type: object
          required: [packSize]
          properties:
            packSize: {{type: integer, minimum: 0}}
    Lizard:
      allOf:
        - $ref: '#/components/schemas/Pet'
        - type: object
          properties:
            lovesRocks: {{type: boolean}}
"#
    )
}

#[tokio::test]
async fn a_discriminator_selects_one_of_overlapping_branches() {
    for openapi in ["3.0.3", "3.1.0"] {
        let up = echo().await;
        let gw = start(bundle(
            &polymorphic_pets(openapi),
            "validation: {request: true}",
            up.addr,
        ))
        .await;
        for ok in [
            &br#"{"petType": "Cat", "name": "Tom", "huntingSkill": "lazy"}"#[..],
            br#"{"petType": "dog", "name": "Rex", "packSize": 3}"#,
            br#"{"petType": "lizard", "name": "Liz", "lovesRocks": true}"#,
        ] {
            let r = call(&gw, Method::POST, "/pets", &[JSON], ok).await;
            assert_eq!(
                (r.status, &r.body[..]),
                (StatusCode::OK, ok),
                "{openapi}: {}",
                String::from_utf8_lossy(&r.body)
            );
        }
        let cases: [(&[u8], Want); 5] = [
            // The selected branch's own rules, at their pointer.
            (
                br#"{"petType": "dog", "name": "Rex", "packSize": -1}"#,
                &[("body", "/packSize")],
            ),
            (
                br#"{"petType": "Cat", "name": "Tom", "huntingSkill": "sleepy"}"#,
                &[("body", "/huntingSkill")],
            ),
            // A dog without its required `packSize` (a valid cat otherwise).
            (br#"{"petType": "dog", "name": "Rex"}"#, &[("body", "")]),
            // Unknown, or the schema name where a mapping renames it.
            (
                br#"{"petType": "Cow", "name": "x"}"#,
                &[("body", "/petType")],
            ),
            (
                br#"{"petType": "Dog", "name": "x", "packSize": 1}"#,
                &[("body", "/petType")],
            ),
        ];
        for (body, want) in cases {
            let r = call(&gw, Method::POST, "/pets", &[JSON], body).await;
            assert_eq!(
                violations(&r),
                expect(want),
                "{openapi}: {}",
                String::from_utf8_lossy(body)
            );
        }
        assert_eq!(up.hits.load(Ordering::SeqCst), 3);
        gw.shutdown().await;
    }
}

/// A random valid `Cat`, `Dog` or `Lizard` of [`polymorphic_pets`].
fn polymorphic_pet() -> impl Strategy<Value = Value> {
    let cat = prop::option::of(prop::sample::select(vec![
        "clueless",
        "lazy",
        "adventurous",
    ]))
    .prop_map(|s| {
        s.map_or(
            json!({"petType": "Cat"}),
            |s| json!({"petType": "Cat", "huntingSkill": s}),
        )
    });
    let dog = (0..i64::MAX).prop_map(|n| json!({"petType": "dog", "packSize": n}));
    let lizard = prop::option::of(any::<bool>()).prop_map(|b| {
        b.map_or(
            json!({"petType": "lizard"}),
            |b| json!({"petType": "lizard", "lovesRocks": b}),
        )
    });
    (prop_oneof![cat, dog, lizard], ".{0,16}").prop_map(|(mut p, name)| {
        p["name"] = name.into();
        p
    })
}

/// Random valid instances of overlapping discriminated branches are never
/// refused, in either dialect.
#[test]
fn random_valid_polymorphic_pets_are_never_refused() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    for openapi in ["3.0.3", "3.1.0"] {
        let (gw, _up) = rt.block_on(async {
            let up = echo().await;
            let gw = start(bundle(
                &polymorphic_pets(openapi),
                "validation: {request: true}",
                up.addr,
            ))
            .await;
            (gw, up)
        });
        proptest!(ProptestConfig::with_cases(48), |(p in polymorphic_pet())| {
            let body = serde_json::to_vec(&p).unwrap();
            let r = rt.block_on(call(&gw, Method::POST, "/pets", &[JSON], &body));
            prop_assert_eq!(r.status, StatusCode::OK, "{}: {}", openapi, String::from_utf8_lossy(&r.body));
            prop_assert_eq!(&r.body[..], &body[..]);
        });
        rt.block_on(gw.shutdown());
    }
}

/// An API key the document declares twice: as a security scheme and as a
/// required parameter (a common way to document it).
const KEYED: &str = r#"
openapi: 3.0.3
info: {title: keyed, version: '1'}
security: [{api_key: []}]
paths:
  /things:
    get:
      operationId: listThings
      parameters:
        - {name: X-API-Key, in: header, required: true, schema: {type: string}}
        - {name: limit, in: query, schema: {type: integer}}
      responses: {'200': {description: ok}}
  /q:
    get:
      operationId: query
      security: [{qkey: []}]
      parameters:
        - {name: api_key, in: query, required: true, schema: {type: string}}
      responses: {'200': {description: ok}}
components:
  securitySchemes:
    api_key: {type: apiKey, in: header, name: X-API-Key}
    qkey: {type: apiKey, in: query, name: api_key}
"#;

/// Regression: authentication verified and removed the credential, then
/// validation refused the request for the missing required parameter. The
/// credential counts as sent; everything else is still validated.
#[tokio::test]
async fn a_credential_declared_as_a_required_parameter_is_not_missing() {
    use sha2::Digest;
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let digest = hex::encode(sha2::Sha256::digest(b"key-a"));
    std::fs::write(&keys, format!("team-a:sha256:{digest}\n")).unwrap();
    let up = echo().await;
    let files = [("api.yaml".to_owned(), KEYED.to_owned())].into();
    let mut b = secured_bundle_of(
        files,
        "api.yaml",
        "api_key: key, qkey: key",
        "validation: {request: true}",
        up.addr,
    );
    let providers = b["auth"]["providers"].as_object_mut().unwrap();
    providers.remove("jwt");
    providers["key"]["file"] = keys.to_str().unwrap().into();
    let gw = start(b).await;
    let key = ("x-api-key", "key-a");
    let r = call(&gw, Method::GET, "/things?limit=2", &[key], b"").await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let r = call(&gw, Method::GET, "/q?api_key=key-a&x=1", &[], b"").await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.headers["x-seen-uri"], "/q?x=1", "the key is removed");
    // Still validated; and still refused without the key (by authentication).
    let r = call(&gw, Method::GET, "/things?limit=two", &[key], b"").await;
    assert_eq!(violations(&r), expect(&[("query", "limit")]));
    let r = call(&gw, Method::GET, "/things", &[], b"").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(up.hits.load(Ordering::SeqCst), 2);
    gw.shutdown().await;
}

const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");

/// Form bodies are validated against their schema, each property parsed like a
/// query parameter by its `encoding`; `multipart/form-data` and XML bodies only
/// by their content type.
const FORMS: &str = r#"
openapi: 3.1.0
info: {title: forms, version: '1'}
paths:
  /forms:
    post:
      operationId: submit
      requestBody:
        required: true
        content:
          application/x-www-form-urlencoded:
            schema:
              type: object
              required: [n]
              additionalProperties: false
              properties:
                n: {type: integer, maximum: 10}
                flag: {type: boolean}
                ids: {type: array, items: {type: integer}}
                tags: {type: array, items: {type: string}}
                filter: {type: object, properties: {size: {type: integer}}}
            encoding:
              tags: {style: pipeDelimited, explode: false}
              filter: {style: deepObject, explode: true}
          multipart/form-data:
            schema: {type: object, properties: {file: {type: string, format: binary}}}
          application/xml: {}
      responses: {'200': {description: ok}}
"#;

#[tokio::test]
async fn form_bodies_are_validated_by_their_schema_and_encoding() {
    let up = echo().await;
    let gw = start(bundle(FORMS, "validation: {request: true}", up.addr)).await;
    let ok = b"n=3&flag=true&ids=1&ids=2&tags=a%7Cb&filter%5Bsize%5D=2";
    let r = call(&gw, Method::POST, "/forms", &[FORM], ok).await;
    assert_eq!(
        (r.status, &r.body[..]),
        (StatusCode::OK, &ok[..]),
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let cases: [(&[u8], Want); 5] = [
        (b"n=11", &[("body", "/n")]),
        (b"n=1&ids=1&ids=x", &[("body", "/ids/1")]),
        (b"n=1&filter%5Bsize%5D=big", &[("body", "/filter/size")]),
        (b"n=1&other=x", &[("body", "")]),
        (b"flag=true", &[("body", "")]),
    ];
    for (body, want) in cases {
        let r = call(&gw, Method::POST, "/forms", &[FORM], body).await;
        assert_eq!(
            violations(&r),
            expect(want),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
    // Content type only: not parsed, passed on unchanged.
    for ct in ["multipart/form-data; boundary=x", "application/xml"] {
        let r = call(
            &gw,
            Method::POST,
            "/forms",
            &[("content-type", ct)],
            b"<not parsed",
        )
        .await;
        assert_eq!(
            (r.status, &r.body[..]),
            (StatusCode::OK, &b"<not parsed"[..]),
            "{ct}"
        );
    }
    let r = call(
        &gw,
        Method::POST,
        "/forms",
        &[("content-type", "text/plain")],
        b"n=1",
    )
    .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(up.hits.load(Ordering::SeqCst), 3);
    gw.shutdown().await;
}

/// The petstore's own form body (`application/x-www-form-urlencoded` `Pet`).
#[tokio::test]
async fn petstore_30_form_bodies_are_validated() {
    let up = echo().await;
    let gw = start(bundle(
        &corpus("swagger-petstore/openapi.yaml"),
        "validation: {request: true}",
        up.addr,
    ))
    .await;
    let ok = b"name=doggie&photoUrls=a&photoUrls=b&id=7&status=sold";
    let r = call(&gw, Method::POST, "/pet", &[FORM], ok).await;
    assert_eq!((r.status, &r.body[..]), (StatusCode::OK, &ok[..]));
    let cases: [(&[u8], Want); 3] = [
        (b"name=doggie&photoUrls=a&id=seven", &[("body", "/id")]),
        (
            b"name=doggie&photoUrls=a&status=lost",
            &[("body", "/status")],
        ),
        (b"photoUrls=a", &[("body", "")]),
    ];
    for (body, want) in cases {
        let r = call(&gw, Method::POST, "/pet", &[FORM], body).await;
        assert_eq!(
            violations(&r),
            expect(want),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
    assert_eq!(up.hits.load(Ordering::SeqCst), 1);
    gw.shutdown().await;
}

/// OpenAI's OpenAPI 3.1 document (`tests/corpus/openai`, unchanged) writes what
/// JSON Schema 2020-12 does not allow: 2019-09's `$recursiveAnchor` /
/// `$recursiveRef: "#"` (a compound filter of filters), draft 4's
/// `exclusiveMinimum: true` beside `minimum: 0`, and `required` lists naming a
/// property twice. Every operation the gateway can serve validates (the build
/// and the start compile every schema), and what those keywords meant is
/// enforced: the recursion reaches nested filters, the bound excludes 0.
#[tokio::test]
async fn a_real_31_document_partly_in_older_dialects_validates_as_meant() {
    let up = echo().await;
    let files = [("openai.yaml".to_owned(), corpus("openai/openapi.yaml"))].into();
    let gw = start(bundle_of(
        files,
        "openai.yaml",
        "ApiKeyAuth: jwt, AdminApiKeyAuth: jwt",
        "validation: {request: true, responses: {}}, exclude: {operations: [\
         beta_createResponse, beta_getResponse, beta_deleteResponse, beta_cancelResponse, \
         beta_Compactconversation, beta_listInputItems, beta_Getinputtokencounts]}",
        up.addr,
    ))
    .await;
    let search = "/vector_stores/vs_1/search";
    let nested = br#"{"query": "q", "filters": {"type": "and", "filters": [
        {"type": "eq", "key": "a", "value": "b"},
        {"type": "or", "filters": [{"type": "gt", "key": "n", "value": 3}]}]}}"#;
    let r = call(&gw, Method::POST, search, &[JSON], nested).await;
    assert_eq!(
        (r.status, &r.body[..]),
        (StatusCode::OK, &nested[..]),
        "{:?}",
        r.body
    );
    let jobs = "/fine_tuning/jobs";
    let rate = |m: &str| {
        format!(
            r#"{{"model": "gpt-4o-mini", "training_file": "file-1", "hyperparameters": {{"learning_rate_multiplier": {m}}}}}"#
        )
    };
    let r = call(&gw, Method::POST, jobs, &[JSON], rate("0.5").as_bytes()).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    // A compound filter two levels down with an unknown operator, and a
    // multiplier of 0 (`minimum: 0, exclusiveMinimum: true`): both refused.
    let bad_nested = br#"{"query": "q", "filters": {"type": "and", "filters": [
        {"type": "or", "filters": [{"type": "xor", "filters": []}]}]}}"#;
    let r = call(&gw, Method::POST, search, &[JSON], bad_nested).await;
    let v = violations(&r);
    assert!(
        v.iter()
            .all(|(at, p)| at == "body" && p.starts_with("/filters")),
        "{v:?}"
    );
    let r = call(&gw, Method::POST, jobs, &[JSON], rate("0").as_bytes()).await;
    let v = violations(&r);
    assert!(
        v.iter()
            .all(|(at, p)| at == "body"
                && p.starts_with("/hyperparameters/learning_rate_multiplier")),
        "{v:?}"
    );
    assert_eq!(up.hits.load(Ordering::SeqCst), 2);
    gw.shutdown().await;
}

/// Swagger 2.0 documents are validated too: parameters by their own keywords
/// (`type`, `format`, `collectionFormat`), the body by the `in: body`
/// parameter's schema in the media types of `consumes` (OAI's petstore-expanded,
/// unchanged), and `formData` parameters as a form body.
#[tokio::test]
async fn swagger_20_requests_are_validated() {
    let up = echo().await;
    let gw = start(bundle(
        &corpus("oai-examples/v2.0/yaml/petstore-expanded.yaml"),
        "validation: {request: true}",
        up.addr,
    ))
    .await;
    let r = call(&gw, Method::GET, "/pets?tags=a,b&limit=5", &[], b"").await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = call(&gw, Method::GET, "/pets?limit=many", &[], b"").await;
    assert_eq!(violations(&r), expect(&[("query", "limit")]));
    let r = call(&gw, Method::GET, "/pets/seven", &[], b"").await;
    assert_eq!(violations(&r), expect(&[("path", "id")]));
    let body = br#"{"name": "rex", "tag": "dog"}"#;
    let r = call(&gw, Method::POST, "/pets", &[JSON], body).await;
    assert_eq!((r.status, &r.body[..]), (StatusCode::OK, &body[..]));
    let r = call(&gw, Method::POST, "/pets", &[JSON], br#"{"tag": "dog"}"#).await;
    assert_eq!(violations(&r), expect(&[("body", "")]));
    let r = call(
        &gw,
        Method::POST,
        "/pets",
        &[("content-type", "text/plain")],
        b"rex",
    )
    .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(up.hits.load(Ordering::SeqCst), 2);
    gw.shutdown().await;

    let form = "swagger: '2.0'\ninfo: {title: f, version: '1'}\nconsumes: [application/x-www-form-urlencoded]\npaths:\n  /login:\n    post:\n      operationId: login\n      parameters:\n        - {name: user, in: formData, required: true, type: string, minLength: 3}\n        - {name: days, in: formData, type: integer, maximum: 30}\n        - {name: roles, in: formData, type: array, items: {type: string}, collectionFormat: multi}\n      responses: {'200': {description: ok}}\n";
    let gw = start(bundle(form, "validation: {request: true}", up.addr)).await;
    let urlencoded = ("content-type", "application/x-www-form-urlencoded");
    let r = call(
        &gw,
        Method::POST,
        "/login",
        &[urlencoded],
        b"user=ada&days=7&roles=a&roles=b",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = call(
        &gw,
        Method::POST,
        "/login",
        &[urlencoded],
        b"user=al&days=70",
    )
    .await;
    let mut got = violations(&r);
    got.sort();
    assert_eq!(got, expect(&[("body", "/days"), ("body", "/user")]));
    let r = call(&gw, Method::POST, "/login", &[urlencoded], b"days=7").await;
    assert_eq!(violations(&r), expect(&[("body", "")]));
    assert_eq!(up.hits.load(Ordering::SeqCst), 3);
    gw.shutdown().await;

    // Mocks: a response's JSON `examples` (OAI's api-with-examples), else a
    // value built from its `schema` (petstore-expanded: `Pet` is `NewPet` + `id`).
    let gw = start(bundle(
        &corpus("oai-examples/v2.0/yaml/api-with-examples.yaml"),
        "mock: true",
        up.addr,
    ))
    .await;
    let r = call(&gw, Method::GET, "/", &[], b"").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["versions"][0]["id"], "v2.0", "{:?}", r.body);
    gw.shutdown().await;
    let gw = start(bundle(
        &corpus("oai-examples/v2.0/yaml/petstore-expanded.yaml"),
        "mock: true",
        up.addr,
    ))
    .await;
    let r = call(&gw, Method::GET, "/pets/7", &[], b"").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["content-type"], "application/json");
    let pet = r.json();
    assert!(pet["name"].is_string() && pet["id"].is_i64(), "{pet}");
    assert_eq!(up.hits.load(Ordering::SeqCst), 3);
    gw.shutdown().await;
}

/// Analytics `bytesIn` is the request body the gateway read: a body request
/// validation read whole counts once, whether it then goes upstream or a mock
/// answers (it was 0 for mocks: only bytes handed to the upstream counted).
#[tokio::test]
async fn a_body_validation_read_is_counted_once_mocked_or_proxied() {
    let up = echo().await;
    let body = br#"{"name": "rex", "tag": "dog"}"#;
    for (settings, hits) in [
        ("validation: {request: true}, mock: true", 0),
        ("validation: {request: true}", 1),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let mut b = bundle(
            &corpus("oai-examples/v2.0/yaml/petstore-expanded.yaml"),
            settings,
            up.addr,
        );
        b["analytics"] = json!({"sink": "file", "path": path.to_str().unwrap()});
        let before = up.hits.load(Ordering::SeqCst);
        let gw = start(b).await;
        let r = call(&gw, Method::POST, "/pets", &[JSON], body).await;
        assert_eq!(r.status, StatusCode::OK, "{settings}: {:?}", r.body);
        gw.shutdown().await;
        assert_eq!(up.hits.load(Ordering::SeqCst) - before, hits, "{settings}");
        let text = std::fs::read_to_string(&path).unwrap();
        let e: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(e["bytesIn"], body.len(), "{settings}: {e}");
    }
}

/// Slack's Web API document (Swagger 2.0, unchanged): `chat.postMessage` takes
/// `formData` parameters and `consumes` both forms and `application/json`, as
/// Slack's clients send either. The form is checked against the parameters; a
/// JSON body was refused with 415 although the operation declares it, and is
/// now accepted unchecked (form parameters describe form bodies only).
#[tokio::test]
async fn slack_form_operations_also_take_the_json_bodies_they_declare() {
    let up = echo().await;
    let gw = start(bundle_of(
        [(
            "slack.json".to_owned(),
            corpus("slack/slack_web_openapi_v2.json"),
        )]
        .into(),
        "slack.json",
        "slackAuth: jwt",
        "validation: {request: true}, include: {operations: [chat_postMessage]}",
        up.addr,
    ))
    .await;
    // The document declares Slack's `token` header as required.
    let token = ("token", "xoxb-test");
    let form = ("content-type", "application/x-www-form-urlencoded");
    let r = call(
        &gw,
        Method::POST,
        "/chat.postMessage",
        &[token, form],
        b"channel=C1234567890&text=Hello%20world&link_names=true",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let json = br#"{"channel":"C1234567890","text":"Hello world"}"#;
    let r = call(&gw, Method::POST, "/chat.postMessage", &[token, JSON], json).await;
    assert_eq!((r.status, &r.body[..]), (StatusCode::OK, &json[..]));
    assert_eq!(up.hits.load(Ordering::SeqCst), 2);

    // The form is still checked; undeclared media types are still refused.
    let r = call(
        &gw,
        Method::POST,
        "/chat.postMessage",
        &[token, form],
        b"text=Hello",
    )
    .await;
    assert_eq!(violations(&r), expect(&[("body", "")]));
    let r = call(
        &gw,
        Method::POST,
        "/chat.postMessage",
        &[token, form],
        b"channel=C1&link_names=maybe",
    )
    .await;
    assert_eq!(violations(&r), expect(&[("body", "/link_names")]));
    let r = call(
        &gw,
        Method::POST,
        "/chat.postMessage",
        &[token, ("content-type", "text/plain")],
        b"Hello",
    )
    .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(up.hits.load(Ordering::SeqCst), 2);
    gw.shutdown().await;
}

/// Discord's document (OpenAPI 3.1, unchanged): `GET /gateway` is
/// `security: [{}, {BotToken: []}]` (optional authentication) and the bot token
/// is an `apiKey` in `Authorization` (`Bot <token>`). Without a token the call
/// passes anonymously, with one it is checked and taken off, and a token that
/// does not verify is refused; `create_message` needs the token, and its
/// snowflake ids and JSON body are validated. Before, `{}` made the whole
/// operation open: tokens were never checked nor their consumers known.
#[tokio::test]
async fn discord_optional_bot_token_is_checked_when_sent() {
    use sha2::Digest;
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let digest = hex::encode(sha2::Sha256::digest(b"Bot key-a"));
    std::fs::write(&keys, format!("my-bot:sha256:{digest}\n")).unwrap();
    let up = echo().await;
    let mut b = secured_bundle_of(
        [("discord.json".to_owned(), corpus("discord/openapi.json"))].into(),
        "discord.json",
        "BotToken: key, OAuth2: jwt",
        "validation: {request: true}, include: {operations: [get_gateway, create_message]}",
        up.addr,
    );
    b["auth"]["providers"]["key"]["file"] = keys.to_str().unwrap().into();
    let gw = start(b).await;
    let bot = ("authorization", "Bot key-a");
    let r = call(&gw, Method::GET, "/gateway", &[], b"").await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = call(&gw, Method::GET, "/gateway", &[bot], b"").await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = call(
        &gw,
        Method::GET,
        "/gateway",
        &[("authorization", "Bot nope")],
        b"",
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(up.hits.load(Ordering::SeqCst), 2);

    let message = br#"{"content":"hello","tts":false}"#;
    let path = "/channels/123456789012345678/messages";
    let r = call(&gw, Method::POST, path, &[bot, JSON], message).await;
    assert_eq!((r.status, &r.body[..]), (StatusCode::OK, &message[..]));
    let r = call(&gw, Method::POST, path, &[JSON], message).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = call(
        &gw,
        Method::POST,
        "/channels/abc/messages",
        &[bot, JSON],
        message,
    )
    .await;
    assert_eq!(violations(&r), expect(&[("path", "channel_id")]));
    let r = call(&gw, Method::POST, path, &[bot, JSON], br#"{"tts":"yes"}"#).await;
    assert_eq!(violations(&r), expect(&[("body", "/tts")]));
    assert_eq!(up.hits.load(Ordering::SeqCst), 3);
    gw.shutdown().await;
}

/// Xero's accounting document (unchanged), scaffolded as `mgw init` does (the
/// `{FileName}` twin of each `{AttachmentID}` operation left out), with
/// `scopeMatch: any`: reads list a scope and its read-only variant, and a real
/// token carries one of them. A file name reaches the operation kept for the
/// path, and the required `xero-tenant-id` header is still checked.
#[tokio::test]
async fn xero_reads_take_either_listed_scope_and_attachment_names_reach_the_kept_route() {
    use support::auth::{claims, ec, token};
    let up = echo().await;
    let key = ec("xero-1");
    let mut b = secured_bundle_of(
        [("xero.yaml".to_owned(), corpus("xero/xero_accounting.yaml"))].into(),
        "xero.yaml",
        "OAuth2: jwt",
        "validation: {request: true}, scopeMatch: any, include: {operations: [getInvoices, getInvoiceAttachmentById]}",
        up.addr,
    );
    b["auth"]["providers"] = json!({"jwt": {
        "type": "jwt", "issuer": support::auth::ISSUER, "algorithms": ["ES256"],
        "keys": [{"jwk": key.jwk}]
    }});
    let gw = start(b).await;
    let tenant = ("xero-tenant-id", "3fa85f64-5717-4562-b3fc-2c963f66afa6");
    let bearer = |scope: &str| format!("Bearer {}", token(&key, &claims("app", scope)));
    for scope in ["accounting.transactions", "accounting.transactions.read"] {
        let auth = bearer(scope);
        let r = call(
            &gw,
            Method::GET,
            "/Invoices?page=1",
            &[("authorization", &auth), tenant],
            b"",
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{scope}: {:?}", r.body);
    }
    let auth = bearer("accounting.contacts.read");
    let r = call(
        &gw,
        Method::GET,
        "/Invoices",
        &[("authorization", &auth), tenant],
        b"",
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let auth = bearer("accounting.attachments.read");
    let file = "/Invoices/3fa85f64-5717-4562-b3fc-2c963f66afa6/Attachments/invoice.pdf";
    let headers = [
        ("authorization", auth.as_str()),
        tenant,
        ("contentType", "application/pdf"),
    ];
    let r = call(&gw, Method::GET, file, &headers, b"").await;
    assert_eq!(
        (r.status, r.headers["x-seen-uri"].to_str().unwrap()),
        (StatusCode::OK, file)
    );
    let r = call(
        &gw,
        Method::GET,
        "/Invoices",
        &[("authorization", &bearer("accounting.transactions"))],
        b"",
    )
    .await;
    assert_eq!(violations(&r), expect(&[("header", "xero-tenant-id")]));
    assert_eq!(up.hits.load(Ordering::SeqCst), 3);
    gw.shutdown().await;
}

/// Specification extensions inside schemas are not schemas: Spotify's document
/// annotates properties with `x-spotify-policy-list: [{$ref: …}]` into a file
/// it does not ship, which failed the build as an unloaded reference. Swagger
/// 2.0 tools' `x-nullable` still makes a property nullable.
#[tokio::test]
async fn extensions_in_schemas_are_not_followed_but_x_nullable_counts() {
    const DOC: &str = r#"
swagger: '2.0'
info: {title: ext, version: '1'}
paths:
  /tracks:
    post:
      operationId: addTrack
      consumes: [application/json]
      parameters:
        - in: body
          name: body
          required: true
          schema:
            type: object
            properties:
              preview_url:
                type: string
                x-nullable: true
                x-policy-list: [{$ref: '../policies.yaml#/StandalonePreview'}]
              name: {type: string, x-source: {$ref: '#/nowhere'}}
      responses: {'200': {description: ok}}
"#;
    let up = echo().await;
    let gw = start(bundle(DOC, "validation: {request: true}", up.addr)).await;
    for body in [
        &br#"{"preview_url":null,"name":"a"}"#[..],
        br#"{"preview_url":"https://p"}"#,
    ] {
        let r = call(&gw, Method::POST, "/tracks", &[JSON], body).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    }
    let r = call(&gw, Method::POST, "/tracks", &[JSON], br#"{"name":null}"#).await;
    assert_eq!(violations(&r), expect(&[("body", "/name")]));
    gw.shutdown().await;
}

/// Stripe's document (unchanged) with the requests Stripe's own documentation
/// and clients send: `deepObject` form properties nest objects and arrays in
/// brackets (`metadata[order_id]`, `line_items[0][price]`,
/// `invoice_settings[custom_fields][0][name]`, `expand[]`), and `metadata` is
/// `anyOf: [object, ""]`. Each was refused before: the nesting read as flat
/// strings, an `anyOf` object as a scalar.
#[tokio::test]
async fn stripe_form_bodies_with_nested_brackets_are_validated() {
    let up = echo().await;
    let gw = start(bundle_of(
        [("api.yaml".to_owned(), corpus("stripe/spec3.yaml"))].into(),
        "api.yaml",
        "bearerAuth: jwt, basicAuth: users",
        "validation: {request: true}, include: {operations: [PostCustomers, PostCheckoutSessions, GetCharges]}",
        up.addr,
    ))
    .await;
    let form = ("content-type", "application/x-www-form-urlencoded");
    let valid: [&[u8]; 4] = [
        b"email=jenny%40example.com&metadata[order_id]=6735&expand[]=tax&expand[]=sources",
        b"invoice_settings[custom_fields][0][name]=PO&invoice_settings[custom_fields][0][value]=42&balance=-100",
        b"metadata[a]=1&metadata[b]=x&expand[0]=tax",
        b"",
    ];
    for body in valid {
        let r = call(&gw, Method::POST, "/v1/customers", &[form], body).await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "{}: {:?}",
            String::from_utf8_lossy(body),
            r.body
        );
    }
    let session = b"line_items[0][price]=price_1&line_items[0][quantity]=2&line_items[1][price]=price_2&line_items[1][quantity]=1&mode=payment&success_url=https%3A%2F%2Fexample.com%2Fok";
    let r = call(&gw, Method::POST, "/v1/checkout/sessions", &[form], session).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = call(
        &gw,
        Method::GET,
        "/v1/charges?created[gte]=1700000000&limit=3",
        &[],
        b"",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(up.hits.load(Ordering::SeqCst), 6);

    // Wrong types deep inside are refused where they are.
    let r = call(
        &gw,
        Method::POST,
        "/v1/checkout/sessions",
        &[form],
        b"line_items[0][price]=price_1&line_items[0][quantity]=two&mode=payment&success_url=https%3A%2F%2Fexample.com%2Fok",
    )
    .await;
    assert_eq!(
        violations(&r),
        expect(&[("body", "/line_items/0/quantity")])
    );
    let r = call(
        &gw,
        Method::POST,
        "/v1/customers",
        &[form],
        b"balance=lots&metadata[a]=1",
    )
    .await;
    assert_eq!(violations(&r), expect(&[("body", "/balance")]));
    let r = call(
        &gw,
        Method::GET,
        "/v1/charges?created[gte]=yesterday",
        &[],
        b"",
    )
    .await;
    assert_eq!(violations(&r), expect(&[("query", "created")]));
    assert_eq!(up.hits.load(Ordering::SeqCst), 6);
    gw.shutdown().await;
}

/// OpenAPI 3.2 (OAI's own QUERY example, unchanged, and a document with the
/// rest of what 3.2 adds to serving): the `query` field is the HTTP QUERY
/// method, routed, validated by its body and sent upstream as QUERY;
/// `additionalOperations` methods are routed as written; a media type may be a
/// `$ref` into `components/mediaTypes`; an example's `dataValue` is what a mock
/// answers.
#[tokio::test]
async fn openapi_32_query_and_additional_operations_are_routed_and_validated() {
    let up = echo().await;
    let gw = start(bundle(
        &corpus("oai-learn/examples/v3.2/3.2-query-example.yaml"),
        "validation: {request: true}",
        up.addr,
    ))
    .await;
    let query = Method::from_bytes(b"QUERY").unwrap();
    let search =
        br#"{"origin":"ATL","destination":"LHR","departureDate":"2026-06-15","passengers":2}"#;
    let r = call(&gw, query.clone(), "/flights/search", &[JSON], search).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.headers["x-seen-method"], "QUERY");
    let r = call(
        &gw,
        query,
        "/flights/search",
        &[JSON],
        br#"{"origin":"ATL","passengers":0}"#,
    )
    .await;
    assert_eq!(
        violations(&r),
        expect(&[("body", ""), ("body", ""), ("body", "/passengers")])
    );
    let r = call(&gw, Method::POST, "/flights/search", &[JSON], search).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.headers["allow"], "QUERY");
    assert_eq!(up.hits.load(Ordering::SeqCst), 1);
    gw.shutdown().await;

    const DOC: &str = r#"
openapi: 3.2.0
info: {title: t, version: '1'}
paths:
  /items:
    post:
      operationId: addItem
      requestBody:
        content:
          application/json: {$ref: '#/components/mediaTypes/Item'}
      responses: {'201': {description: added}}
  /items/{id}:
    parameters: [{name: id, in: path, required: true, schema: {type: integer}}]
    get:
      operationId: getItem
      x-mgw-mock: true
      responses:
        '200':
          description: an item
          content:
            application/json:
              schema: {type: object}
              examples:
                one: {dataValue: {name: lamp}, serializedValue: '{"name":"lamp"}'}
    additionalOperations:
      LINK:
        operationId: linkItem
        responses: {'204': {description: linked}}
components:
  mediaTypes:
    Item:
      schema: {type: object, required: [name], properties: {name: {type: string}}}
"#;
    let gw = start(bundle(DOC, "validation: {request: true}", up.addr)).await;
    let link = Method::from_bytes(b"LINK").unwrap();
    let r = call(&gw, link.clone(), "/items/7", &[], b"").await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.headers["x-seen-method"], "LINK");
    let r = call(&gw, link, "/items/x", &[], b"").await;
    assert_eq!(violations(&r), expect(&[("path", "id")]));
    let r = call(&gw, Method::POST, "/items", &[JSON], br#"{"nam":"x"}"#).await;
    assert_eq!(violations(&r), expect(&[("body", "")]));
    let r = call(&gw, Method::GET, "/items/7", &[], b"").await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.json(), json!({"name": "lamp"}));
    assert_eq!(up.hits.load(Ordering::SeqCst), 2);
    gw.shutdown().await;
}

/// The request body Swashbuckle (ASP.NET Core's OpenAPI generator) writes for
/// every `[FromBody]` parameter: `application/json`, `text/json` and
/// `application/*+json`. A `text/json` body was passed unvalidated (the same
/// invalid body refused as `application/json` went through), and a
/// `+json` type the range covers was refused with 415.
#[tokio::test]
async fn swashbuckle_json_media_types_are_all_validated() {
    const DOC: &str = r##"{
  "openapi": "3.0.1",
  "info": {"title": "TodoApi", "version": "1.0"},
  "paths": {"/api/TodoItems": {"post": {
    "requestBody": {"content": {
      "application/json": {"schema": {"$ref": "#/components/schemas/TodoItem"}},
      "text/json": {"schema": {"$ref": "#/components/schemas/TodoItem"}},
      "application/*+json": {"schema": {"$ref": "#/components/schemas/TodoItem"}}
    }},
    "responses": {"200": {"description": "Success"}}
  }}},
  "components": {"schemas": {"TodoItem": {
    "type": "object",
    "properties": {"name": {"type": "string", "nullable": true}, "isComplete": {"type": "boolean"}},
    "additionalProperties": false
  }}}
}"##;
    let up = echo().await;
    let gw = start(bundle(DOC, "validation: {request: true}", up.addr)).await;
    for ct in [
        "application/json",
        "text/json",
        "application/merge-patch+json",
    ] {
        let good = br#"{"name":"walk","isComplete":true}"#;
        let r = call(
            &gw,
            Method::POST,
            "/api/TodoItems",
            &[("content-type", ct)],
            good,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{ct}: {:?}", r.body);
        let bad = br#"{"name":1}"#;
        let r = call(
            &gw,
            Method::POST,
            "/api/TodoItems",
            &[("content-type", ct)],
            bad,
        )
        .await;
        assert_eq!(violations(&r), expect(&[("body", "/name")]), "{ct}");
    }
    let r = call(
        &gw,
        Method::POST,
        "/api/TodoItems",
        &[("content-type", "text/plain")],
        b"walk",
    )
    .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(up.hits.load(Ordering::SeqCst), 3);
    gw.shutdown().await;
}

/// springdoc (Spring Boot) declares every response as `*/*`, springfox
/// (Swagger 2.0) `produces: ["*/*"]`: a range, not a content type. A mock
/// answered `Content-Type: */*`, which clients cannot read as JSON.
#[tokio::test]
async fn a_mock_of_a_response_declared_as_a_range_answers_json() {
    const OAS3: &str = r##"{"openapi":"3.0.1","info":{"title":"OpenAPI definition","version":"v0"},
"paths":{"/api/books/{id}":{"get":{"operationId":"findById",
"parameters":[{"name":"id","in":"path","required":true,"schema":{"type":"integer","format":"int64"}}],
"responses":{"200":{"description":"OK","content":{"*/*":{"schema":{"$ref":"#/components/schemas/Book"}}}}}}}},
"components":{"schemas":{"Book":{"type":"object","properties":{"title":{"type":"string"}},"example":{"title":"Dune"}}}}}"##;
    const SWAGGER2: &str = r##"{"swagger":"2.0","info":{"title":"Api Documentation","version":"1.0"},
"paths":{"/api/books/{id}":{"get":{"operationId":"findByIdUsingGET","produces":["*/*"],
"parameters":[{"name":"id","in":"path","required":true,"type":"integer","format":"int64"}],
"responses":{"200":{"description":"OK","schema":{"$ref":"#/definitions/Book"}}}}}},
"definitions":{"Book":{"type":"object","properties":{"title":{"type":"string"}},"example":{"title":"Dune"}}}}"##;
    let up = echo().await;
    for doc in [OAS3, SWAGGER2] {
        let gw = start(bundle(doc, "mock: true", up.addr)).await;
        let r = call(&gw, Method::GET, "/api/books/1", &[], b"").await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        assert_eq!(r.headers["content-type"], "application/json");
        assert_eq!(r.json(), json!({"title": "Dune"}));
        gw.shutdown().await;
    }
    assert_eq!(up.hits.load(Ordering::SeqCst), 0);
}
