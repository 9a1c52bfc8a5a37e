//! Native filters through an in-process gateway: a filter that denies by a
//! custom rule (403, upstream never called), one that adds a response header
//! from a claim, and per-request state carried from the request phase to the
//! end of the response.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use mgw_gateway::filter::{Filter, Filters, Session};
use serde_json::{Value, json};
use support::auth::*;
use support::*;

/// Refuses pets of kind `cat` on `createPet` (a rule no YAML could express).
struct NoCats;

impl Filter for NoCats {
    fn name(&self) -> &str {
        "no-cats"
    }

    fn on_request(
        &self,
        s: &mut Session<'_>,
        req: &mut http::request::Parts,
    ) -> Option<Response<Bytes>> {
        if s.route.operation_id != "createPet" {
            return None;
        }
        let cat = req.headers.get("x-pet-kind").is_some_and(|v| v == "cat");
        cat.then(|| {
            Response::builder()
                .status(StatusCode::FORBIDDEN)
                .header("content-type", "text/plain")
                .body(Bytes::from_static(b"no cats here"))
                .unwrap()
        })
    }
}

/// `X-Tenant` on the response, from the caller's `tenant` claim; counts the
/// requests it saw end (state kept in the session between phases).
struct TenantHeader {
    ended: Arc<AtomicUsize>,
}

#[derive(Clone)]
struct Seen(&'static str);

impl Filter for TenantHeader {
    fn name(&self) -> &str {
        "tenant-header"
    }

    fn on_request(
        &self,
        s: &mut Session<'_>,
        _req: &mut http::request::Parts,
    ) -> Option<Response<Bytes>> {
        s.ctx.insert(Seen("tenant-header"));
        None
    }

    fn on_upstream_response(&self, s: &mut Session<'_>, res: &mut http::response::Parts) {
        if let Some(t) = s.claim("tenant").and_then(|t| t.parse().ok()) {
            res.headers.insert("x-tenant", t);
        }
    }

    fn on_end(&self, s: &mut Session<'_>, _status: StatusCode) {
        if s.ctx.get::<Seen>().is_some_and(|v| v.0 == "tenant-header") {
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
    let filters = Filters::new().with(NoCats).with(TenantHeader {
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
    assert_eq!(&r.body[..], b"no cats here");
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
