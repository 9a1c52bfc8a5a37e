//! Native filters through an in-process gateway: the example project's two
//! (`examples/petstore-filters/runtime`: deny by a custom rule with 403, the
//! upstream never called; a response header from a claim) and per-request state
//! carried from the request phase to the end of the response.

mod support;

/// The filters of `examples/petstore-filters`, as its runtime crate compiles them.
#[path = "../../examples/petstore-filters/runtime/src/filters.rs"]
mod example;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use mgw_gateway::filter::{Filter, Filters, Session};
use serde_json::{Value, json};
use support::auth::*;
use support::*;

/// Keeps state from its request phase to `on_end` and counts what it saw end.
struct EndCounter {
    ended: Arc<AtomicUsize>,
}

#[derive(Clone)]
struct Seen(&'static str);

impl Filter for EndCounter {
    fn name(&self) -> &str {
        "end-counter"
    }

    fn on_request(
        &self,
        s: &mut Session<'_>,
        _req: &mut http::request::Parts,
    ) -> Option<Response<Bytes>> {
        s.ctx.insert(Seen("end-counter"));
        None
    }

    fn on_end(&self, s: &mut Session<'_>, _status: StatusCode) {
        if s.ctx.get::<Seen>().is_some_and(|v| v.0 == "end-counter") {
            self.ended.fetch_add(1, Ordering::SeqCst);
        }
    }
}

fn secured(backend: &Backend) -> Value {
    let mut b = bundle_json(&[format!("http://{}", backend.addr)]);
    b["auth"] = json!({"providers": {"idp": {
        "type": "jwt", "issuer": ISSUER, "audiences": [AUDIENCE], "algorithms": ["RS256"],
        "keys": [{"kid": "rsa-1", "pem": shared_rsa().public_pem}]
    }}});
    b["apis"][0]["securitySchemes"] = json!({
        "bearer": {"provider": "idp", "in": "header", "name": "Authorization", "prefix": "Bearer"}
    });
    for op in b["apis"][0]["operations"].as_array_mut().unwrap() {
        if matches!(op["id"].as_str(), Some("listPets" | "createPet")) {
            op["security"] = json!([{"bearer": []}]);
        }
    }
    b
}

async fn call(gw: &Gw, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut req = Request::builder().method(method).uri(gw.url(path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    send(req.body(full("")).unwrap()).await
}

#[tokio::test]
async fn filters_deny_by_a_custom_rule_and_add_a_header_from_a_claim() {
    let b = backend("pets").await;
    let ended = Arc::new(AtomicUsize::new(0));
    let filters = Filters::new()
        .with(example::NoCats)
        .with(example::TenantHeader)
        .with(EndCounter {
            ended: ended.clone(),
        });
    let gw = start_with_filters(secured(&b), filters).await;
    let mut c = claims("alice", "");
    c["tenant"] = json!("acme");
    let auth = format!("Bearer {}", token(&shared_rsa(), &c));

    // Authentication still comes first: no token, no filter.
    let r = call(&gw, "POST", "/pets-api/v1/pets", &[("x-pet-kind", "cat")]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    let r = call(
        &gw,
        "POST",
        "/pets-api/v1/pets",
        &[
            ("authorization", &auth),
            ("x-pet-kind", "cat"),
            ("x-request-id", "cat-1"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(&r.body[..], b"no cats here\n");
    assert_eq!(r.headers["x-request-id"], "cat-1");
    assert_eq!(
        b.hits.load(Ordering::SeqCst),
        0,
        "a denied request reached the upstream"
    );

    let r = call(
        &gw,
        "POST",
        "/pets-api/v1/pets",
        &[("authorization", &auth), ("x-pet-kind", "dog")],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["x-tenant"], "acme");
    assert_eq!(b.hits.load(Ordering::SeqCst), 1);

    // An open route: no identity, so no claim header; the filter still ran.
    let r = get(&gw.url("/pets-api/v1/pets/1")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.headers.get("x-tenant").is_none());
    // `on_end` sees the state its own request phase left: the dog and the open
    // request (the cat was answered by `no-cats` first, the 401 before filters).
    assert!(
        eventually(std::time::Duration::from_secs(5), || {
            let ended = ended.clone();
            async move { ended.load(Ordering::SeqCst) == 2 }
        })
        .await,
        "ended: {}",
        ended.load(Ordering::SeqCst)
    );
    gw.shutdown().await;
}

/// Marks the upstream's response with `x-<name>: 1`.
struct Marker(&'static str);

impl Filter for Marker {
    fn name(&self) -> &str {
        self.0
    }

    fn on_upstream_response(&self, _s: &mut Session<'_>, res: &mut http::response::Parts) {
        res.headers.insert(
            format!("x-{}", self.0).parse::<http::HeaderName>().unwrap(),
            "1".parse().unwrap(),
        );
    }
}

/// A filter the bundle names for an operation (a WSO2 interceptor) runs only on
/// that operation; a filter nobody names runs everywhere; a name the gateway
/// has no filter for stops it at start.
#[tokio::test]
async fn a_filter_the_bundle_names_runs_only_on_the_operations_naming_it() {
    let b = backend("pets").await;
    let mut bundle = bundle_json(&[format!("http://{}", b.addr)]);
    for op in bundle["apis"][0]["operations"].as_array_mut().unwrap() {
        if op["id"] == "getPet" {
            op["filters"] = json!(["named"]);
        }
    }
    let filters = Filters::new()
        .with(Marker("named"))
        .with(Marker("everywhere"));
    let gw = start_with_filters(bundle.clone(), filters).await;
    let r = get(&gw.url("/pets-api/v1/pets/1")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["x-named"], "1");
    assert_eq!(r.headers["x-everywhere"], "1");
    let r = get(&gw.url("/pets-api/v1/pets")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.headers.get("x-named").is_none(), "{:?}", r.headers);
    assert_eq!(r.headers["x-everywhere"], "1");
    gw.shutdown().await;

    bundle["apis"][0]["operations"][0]["filters"] = json!(["nope"]);
    let parsed: mgw_gateway::bundle::Bundle = serde_json::from_value(bundle).unwrap();
    let config = mgw_gateway::bundle::Config::from_bundle(
        &parsed,
        mgw_gateway::bundle::digest_of(&parsed.to_canonical_json()),
        Some(&std::collections::BTreeMap::<String, String>::new()),
    )
    .unwrap();
    let err =
        match mgw_gateway::server::Server::bind_with(config, Filters::new().with(Marker("named")))
            .await
        {
            Ok(_) => panic!("the gateway started"),
            Err(e) => e.to_string(),
        };
    assert!(
        err.contains("names the native filter `nope`") && err.contains("this gateway has `named`"),
        "{err}"
    );
}
