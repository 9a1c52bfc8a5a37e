//! Declarative transforms through an in-process gateway and a loopback backend
//! that echoes what it received: request headers (with `${VAR}`, claims, client
//! IP, request id and path parameters), response headers, path rewrites
//! (template and prefix), query edits, method override and static responses.

mod support;

use std::sync::atomic::Ordering;

use http::{Request, StatusCode};
use serde_json::{Value, json};
use support::auth::*;
use support::*;

/// The pets API with transforms on the API and on several operations; `getPet`
/// and `reset` need a token of `idp` (claim header `sub` → `x-consumer`).
fn transformed(backend: &Backend) -> Value {
    let mut b = bundle_json(&[format!("http://{}", backend.addr)]);
    let key = shared_rsa();
    b["auth"] = json!({"providers": {"idp": {
        "type": "jwt", "issuer": ISSUER, "audiences": [AUDIENCE], "algorithms": ["RS256"],
        "keys": [{"kid": "rsa-1", "pem": key.public_pem}],
        "claimHeaders": {"sub": "x-consumer"}
    }}});
    let api = &mut b["apis"][0];
    api["securitySchemes"] = json!({
        "bearer": {"provider": "idp", "in": "header", "name": "Authorization", "prefix": "Bearer"}
    });
    api["transforms"] = json!({
        "request": {"headers": {"set": {"x-env": "${DEPLOY_ENV}"}}}
    });
    for op in api["operations"].as_array_mut().unwrap() {
        let t = match op["id"].as_str().unwrap() {
            "getPet" => {
                op["security"] = json!([{"bearer": []}]);
                json!({
                    "request": {
                        "headers": {
                            "remove": ["x-debug"],
                            "rename": {"x-old": "x-new"},
                            "set": {"x-tenant": "$(claim.tenant)", "x-pet": "pet-$(path.petId)"},
                            "add": {"x-tag": "from-$(client.ip)", "x-rid": "$(request.id)/$(consumer)"}
                        },
                        "path": {"template": "/v2/animals/{petId}"},
                        "query": {
                            "remove": ["debug"],
                            "rename": {"q": "search"},
                            "add": {"tenant": "$(claim.tenant)"},
                            "set": {"page": "1"}
                        }
                    },
                    "response": {"headers": {
                        "rename": {"content-type": "x-upstream-content-type"},
                        "set": {"x-pet": "$(path.petId)"},
                        "add": {"x-tenant": "$(claim.tenant)"}
                    }}
                })
            }
            "listPets" => json!({
                "request": {
                    "path": {"prefix": "/pets", "to": "/v3/zoo"},
                    "headers": {"set": {"x-tenant": "$(claim.tenant)", "x-client": "$(client.ip)"}}
                }
            }),
            "createPet" => json!({"request": {"method": "PUT"}}),
            "hop" => json!({"response": {"headers": {"remove": ["x-visible"]}}}),
            "reset" => {
                op["security"] = json!([{"bearer": []}]);
                json!({"staticResponse": {
                    "status": 418, "headers": {"content-type": "text/plain", "x-mock": "${DEPLOY_ENV}"},
                    "body": "short and stout"
                }})
            }
            _ => continue,
        };
        op["transforms"] = t;
    }
    b
}

fn bearer() -> String {
    let mut c = claims("alice", "");
    c["tenant"] = json!("acme");
    format!("Bearer {}", token(&shared_rsa(), &c))
}

async fn call(gw: &Gw, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut req = Request::builder().method(method).uri(gw.url(path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    send(req.body(full("")).unwrap()).await
}

#[tokio::test]
async fn request_headers_path_template_and_query_are_rewritten_with_request_facts() {
    let b = backend("pets").await;
    let gw = start_with_env(transformed(&b), &[("DEPLOY_ENV", "staging")]).await;
    let auth = bearer();
    let r = call(
        &gw,
        "GET",
        "/pets-api/v1/pets/a%20b?q=cat&debug=1&page=3&keep=%2F",
        &[
            ("authorization", &auth),
            ("x-request-id", "req-42"),
            ("x-debug", "1"),
            ("x-old", "moved"),
            ("x-tag", "client"),
            ("x-tenant", "forged"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let j = r.json();
    let h = &j["headers"];
    // Path template with the decoded parameter re-encoded; query: remove, rename
    // in place, set (replaces `page`), add.
    assert_eq!(
        j["uri"],
        "/v2/animals/a%20b?search=cat&keep=%2F&page=1&tenant=acme"
    );
    assert_eq!(h["x-env"], "staging", "API transform with ${{VAR}}");
    assert!(h.get("x-debug").is_none(), "{h}");
    assert!(h.get("x-old").is_none(), "{h}");
    assert_eq!(h["x-new"], "moved");
    assert_eq!(h["x-tenant"], "acme", "set replaces the client's value");
    assert_eq!(h["x-pet"], "pet-a b");
    assert_eq!(h["x-tag"], "from-127.0.0.1", "add appends: {j}");
    assert!(
        j["repeated"].as_array().unwrap().contains(&json!("x-tag")),
        "{j}"
    );
    assert_eq!(h["x-rid"], "req-42/alice");
    assert_eq!(
        h["x-consumer"], "alice",
        "claim headers still set by the gateway"
    );
    // Response headers: the upstream's answer edited, the gateway's own kept.
    assert_eq!(r.headers["x-upstream-content-type"], "application/json");
    assert!(r.headers.get("content-type").is_none());
    assert_eq!(r.headers["x-pet"], "a b");
    assert_eq!(r.headers["x-tenant"], "acme");
    assert_eq!(r.headers["x-request-id"], "req-42");
    gw.shutdown().await;
}

#[tokio::test]
async fn prefix_rewrite_and_missing_facts_leave_values_unset() {
    let b = backend("pets").await;
    let gw = start_with_env(transformed(&b), &[("DEPLOY_ENV", "prod")]).await;
    let r = call(
        &gw,
        "GET",
        "/pets-api/v1/pets?x=1",
        &[("x-tenant", "forged")],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let j = r.json();
    assert_eq!(j["uri"], "/v3/zoo?x=1");
    // No token: `$(claim.tenant)` is missing, so `set` does not happen and the
    // client's own header passes as any other client header does.
    assert_eq!(j["headers"]["x-tenant"], "forged");
    assert_eq!(j["headers"]["x-client"], "127.0.0.1");
    assert_eq!(j["headers"]["x-env"], "prod");
    // Response header removed.
    let hop = call(&gw, "GET", "/pets-api/v1/hop", &[]).await;
    assert_eq!(hop.status, StatusCode::OK);
    assert!(hop.headers.get("x-visible").is_none(), "{:?}", hop.headers);
    // An operation without transforms of its own gets the API's.
    let r = call(&gw, "POST", "/pets-api/v1/echo", &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    gw.shutdown().await;
}

#[tokio::test]
async fn method_override_changes_what_the_upstream_sees() {
    let b = backend("pets").await;
    let gw = start_with_env(transformed(&b), &[("DEPLOY_ENV", "prod")]).await;
    let r = call(&gw, "POST", "/pets-api/v1/pets", &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["method"], "PUT");
    assert_eq!(r.json()["uri"], "/pets");
    gw.shutdown().await;
}

#[tokio::test]
async fn static_response_answers_after_authentication_without_the_upstream() {
    let b = backend("pets").await;
    let gw = start_with_env(transformed(&b), &[("DEPLOY_ENV", "mock")]).await;
    let denied = call(&gw, "GET", "/pets-api/v1/reset", &[]).await;
    assert_eq!(denied.status, StatusCode::UNAUTHORIZED);
    let auth = bearer();
    let r = call(
        &gw,
        "GET",
        "/pets-api/v1/reset",
        &[("authorization", &auth), ("x-request-id", "mock-1")],
    )
    .await;
    assert_eq!(r.status, StatusCode::IM_A_TEAPOT);
    assert_eq!(&r.body[..], b"short and stout");
    assert_eq!(r.headers["content-type"], "text/plain");
    assert_eq!(r.headers["x-mock"], "mock");
    assert_eq!(r.headers["x-request-id"], "mock-1");
    assert_eq!(b.hits.load(Ordering::SeqCst), 0, "the upstream was called");
    gw.shutdown().await;
}

#[tokio::test]
async fn a_dot_segment_smuggled_in_a_parameter_is_refused() {
    let b = backend("pets").await;
    let gw = start_with_env(transformed(&b), &[("DEPLOY_ENV", "prod")]).await;
    let auth = bearer();
    // One segment for the router (`a%2F..`), two after decoding: `a/..`.
    let r = call(
        &gw,
        "GET",
        "/pets-api/v1/pets/a%2F..",
        &[("authorization", &auth)],
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert_eq!(b.hits.load(Ordering::SeqCst), 0);
    gw.shutdown().await;
}
