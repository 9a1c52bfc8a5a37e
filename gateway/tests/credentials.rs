//! API keys and basic-auth users from mounted files (reloaded while running), and
//! opaque tokens checked by RFC 7662 introspection against a loopback server.

mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::{Request, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use support::auth::*;
use support::*;

fn bundle_with(backend: &Backend, providers: Value, schemes: Value, security: Value) -> Value {
    let mut b = bundle_json(&[format!("http://{}", backend.addr)]);
    b["auth"] = json!({ "providers": providers });
    b["apis"][0]["securitySchemes"] = schemes;
    for op in b["apis"][0]["operations"].as_array_mut().unwrap() {
        if matches!(op["id"].as_str(), Some("listPets" | "getPet")) {
            op["security"] = security.clone();
        }
    }
    b
}

async fn call(gw: &Gw, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut req = Request::get(gw.url(path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    send(req.body(full("")).unwrap()).await
}

fn key_line(consumer: &str, key: &str) -> String {
    format!(
        "{consumer}:sha256:{}\n",
        hex::encode(Sha256::digest(key.as_bytes()))
    )
}

#[tokio::test]
async fn api_keys_from_a_file_that_changes_while_running() {
    let b = backend("pets").await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("api-keys");
    std::fs::write(
        &file,
        format!("# consumers\n{}", key_line("team-a", "key-a")),
    )
    .unwrap();
    let gw = start(bundle_with(
        &b,
        json!({"keys": {"type": "apiKey", "file": file.to_str().unwrap(), "reloadIntervalMs": 50}}),
        json!({
            "header": {"provider": "keys", "in": "header", "name": "X-API-Key"},
            "query": {"provider": "keys", "in": "query", "name": "api_key"}
        }),
        json!([{"header": []}, {"query": []}]),
    ))
    .await;

    let r = call(&gw, "/pets-api/v1/pets", &[("x-api-key", "key-a")]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.json()["headers"].get("x-api-key").is_none(),
        "key stripped"
    );
    let r = call(&gw, "/pets-api/v1/pets?limit=2&api_key=key-a&x=y", &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.json()["uri"],
        "/pets?limit=2&x=y",
        "key stripped from the query"
    );
    let r = call(&gw, "/pets-api/v1/pets", &[("x-api-key", "key-b")]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(
        r.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("ApiKey")
    );
    let r = call(&gw, "/pets-api/v1/pets", &[]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // A new file: key-b in, key-a out, without a restart.
    std::fs::write(&file, key_line("team-b", "key-b")).unwrap();
    let switched = eventually(Duration::from_secs(5), || async {
        call(&gw, "/pets-api/v1/pets", &[("x-api-key", "key-b")])
            .await
            .status
            == StatusCode::OK
    })
    .await;
    assert!(switched, "the updated file was not picked up");
    let r = call(&gw, "/pets-api/v1/pets", &[("x-api-key", "key-a")]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // A broken update keeps the last good set: wait until the reload has run
    // and failed, then the old key still works and the broken line's does not.
    std::fs::write(&file, "team-c:md5:1234\n").unwrap();
    let failed = eventually(Duration::from_secs(5), || async {
        metric(
            &gw,
            "mgw_auth_secret_reloads_total{provider=\"keys\",result=\"error\"}",
        )
        .await
            == Some(1.0)
    })
    .await;
    assert!(failed, "the broken file was never reloaded (and refused)");
    let r = call(&gw, "/pets-api/v1/pets", &[("x-api-key", "key-b")]).await;
    assert_eq!(r.status, StatusCode::OK);
    gw.shutdown().await;
}

#[tokio::test]
async fn a_broken_secret_file_at_start_is_a_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("users");
    std::fs::write(&file, "alice:plaintext\n").unwrap();
    let mut b = bundle_json(&["http://127.0.0.1:9".to_string()]);
    b["auth"] = json!({"providers": {"users": {"type": "basic", "file": file.to_str().unwrap()}}});
    let bundle: mgw_gateway::bundle::Bundle = serde_json::from_value(b).unwrap();
    let env = std::collections::BTreeMap::<String, String>::new();
    let config =
        mgw_gateway::bundle::Config::from_bundle(&bundle, String::new(), Some(&env)).unwrap();
    let err = match mgw_gateway::server::Server::bind(config).await {
        Ok(_) => panic!("a broken users file must stop the start"),
        Err(e) => e,
    };
    let msg = err.to_string();
    assert!(msg.contains("line 1") && msg.contains("bcrypt"), "{msg}");
    assert!(
        !msg.contains("plaintext"),
        "secrets never in messages: {msg}"
    );
    let run = mgw_gateway::RunError::Serve(err);
    assert_eq!(run.exit_code(), mgw_gateway::EXIT_BAD_CONFIG);
}

#[tokio::test]
async fn basic_auth_users_valid_wrong_missing_and_reloaded() {
    let b = backend("pets").await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("users");
    let hash = |pw: &str| bcrypt::hash(pw, 4).unwrap();
    std::fs::write(&file, format!("alice:{}\n", hash("wonderland"))).unwrap();
    let gw = start(bundle_with(
        &b,
        json!({"users": {"type": "basic", "file": file.to_str().unwrap(), "realm": "pets", "reloadIntervalMs": 50}}),
        json!({"basic": {"provider": "users", "in": "header", "name": "Authorization", "prefix": "Basic"}}),
        json!([{"basic": []}]),
    ))
    .await;
    let basic = |u: &str, p: &str| format!("Basic {}", STANDARD.encode(format!("{u}:{p}")));

    let r = call(
        &gw,
        "/pets-api/v1/pets",
        &[("authorization", &basic("alice", "wonderland"))],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.json()["headers"].get("authorization").is_none());
    let r = call(
        &gw,
        "/pets-api/v1/pets",
        &[("authorization", &basic("alice", "nope"))],
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.headers["www-authenticate"],
        "Basic realm=\"pets\", charset=\"UTF-8\""
    );
    let r = call(&gw, "/pets-api/v1/pets", &[("authorization", "Basic !!!")]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = call(&gw, "/pets-api/v1/pets", &[]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // Alice's password changes while running; the cached success is dropped too.
    std::fs::write(
        &file,
        format!("alice:{}\nbob:{}\n", hash("new"), hash("builder")),
    )
    .unwrap();
    let switched = eventually(Duration::from_secs(5), || async {
        call(
            &gw,
            "/pets-api/v1/pets",
            &[("authorization", &basic("bob", "builder"))],
        )
        .await
        .status
            == StatusCode::OK
    })
    .await;
    assert!(switched);
    let r = call(
        &gw,
        "/pets-api/v1/pets",
        &[("authorization", &basic("alice", "wonderland"))],
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // Broken update: once the reload has run and failed, bob still gets in.
    std::fs::write(&file, "garbage without colon\n").unwrap();
    let failed = eventually(Duration::from_secs(5), || async {
        metric(
            &gw,
            "mgw_auth_secret_reloads_total{provider=\"users\",result=\"error\"}",
        )
        .await
            == Some(1.0)
    })
    .await;
    assert!(failed, "the broken file was never reloaded (and refused)");
    let r = call(
        &gw,
        "/pets-api/v1/pets",
        &[("authorization", &basic("bob", "builder"))],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    gw.shutdown().await;
}

#[tokio::test]
async fn introspection_active_inactive_timeout_and_cache() {
    let b = backend("pets").await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("client-id"), "gw-client\n").unwrap();
    std::fs::write(dir.path().join("client-secret"), "s3cret:/+\n").unwrap();
    let expected_auth = format!("Basic {}", STANDARD.encode("gw-client:s3cret%3A%2F%2B"));
    let idp = serve(
        move |parts, form| {
            let expected_auth = expected_auth.clone();
            async move {
                if parts
                    .headers
                    .get("authorization")
                    .map(|v| v.to_str().unwrap_or(""))
                    != Some(expected_auth.as_str())
                {
                    return (StatusCode::UNAUTHORIZED, json!({"error": "invalid_client"}));
                }
                let token = form
                    .split('&')
                    .find_map(|p| p.strip_prefix("token="))
                    .unwrap_or("")
                    .to_owned();
                match token.as_str() {
                    "good" => (
                        StatusCode::OK,
                        json!({"active": true, "scope": "pets:read", "client_id": "app-1",
                               "sub": "alice", "exp": now() + 300}),
                    ),
                    "noscope" => (
                        StatusCode::OK,
                        json!({"active": true, "scope": "other", "sub": "bob", "exp": now() + 300}),
                    ),
                    "slow" => {
                        tokio::time::sleep(Duration::from_secs(2)).await;
                        (
                            StatusCode::OK,
                            json!({"active": true, "scope": "pets:read"}),
                        )
                    }
                    "broken" => (StatusCode::INTERNAL_SERVER_ERROR, json!({})),
                    _ => (StatusCode::OK, json!({"active": false})),
                }
            }
        },
        std::sync::Arc::new(std::sync::Mutex::new(Value::Null)),
    )
    .await;
    let gw = start(bundle_with(
        &b,
        json!({"opaque": {
            "type": "introspection", "endpoint": idp.url("/introspect"),
            "clientIdFile": dir.path().join("client-id").to_str().unwrap(),
            "clientSecretFile": dir.path().join("client-secret").to_str().unwrap(),
            "timeoutMs": 300, "negativeCacheTtlMs": 60000,
            "claimHeaders": {"client_id": "x-client-id"}
        }}),
        json!({"bearer": {"provider": "opaque", "in": "header", "name": "Authorization", "prefix": "Bearer"}}),
        json!([{"bearer": ["pets:read"]}]),
    ))
    .await;
    let bearer = |t: &str| format!("Bearer {t}");

    let r = call(
        &gw,
        "/pets-api/v1/pets",
        &[("authorization", &bearer("good"))],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["headers"]["x-client-id"], "app-1");
    assert_eq!(idp.hits.load(Ordering::SeqCst), 1);
    // Cache hit: the endpoint is not asked again.
    let r = call(
        &gw,
        "/pets-api/v1/pets/1",
        &[("authorization", &bearer("good"))],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(idp.hits.load(Ordering::SeqCst), 1);

    let r = call(
        &gw,
        "/pets-api/v1/pets",
        &[("authorization", &bearer("revoked"))],
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = call(
        &gw,
        "/pets-api/v1/pets",
        &[("authorization", &bearer("revoked"))],
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        idp.hits.load(Ordering::SeqCst),
        2,
        "inactive answers are cached too"
    );

    let r = call(
        &gw,
        "/pets-api/v1/pets",
        &[("authorization", &bearer("noscope"))],
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // Timeouts and errors: 503, never a pass, and never cached.
    for t in ["slow", "broken", "slow"] {
        let r = call(&gw, "/pets-api/v1/pets", &[("authorization", &bearer(t))]).await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{t}");
        assert_eq!(
            r.json()["type"],
            "https://mgw.dev/problems/auth_unavailable"
        );
    }
    assert_eq!(idp.hits.load(Ordering::SeqCst), 6);
    assert_eq!(b.hits.load(Ordering::SeqCst), 2);
    gw.shutdown().await;
}

/// Issues 4 and 5 together: the rate limit keys on the authenticated consumer, and
/// requests refused by authentication never spend anyone's quota.
#[tokio::test]
async fn rate_limits_key_on_the_consumer_and_ignore_refused_callers() {
    let b = backend("pets").await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("api-keys");
    std::fs::write(
        &file,
        format!(
            "{}{}",
            key_line("team-a", "key-a"),
            key_line("team-b", "key-b")
        ),
    )
    .unwrap();
    let mut bundle = bundle_with(
        &b,
        json!({"keys": {"type": "apiKey", "file": file.to_str().unwrap()}}),
        json!({"header": {"provider": "keys", "in": "header", "name": "X-API-Key"}}),
        json!([{"header": []}]),
    );
    // 3 requests an hour per consumer, no burst beyond that.
    bundle["rateLimits"] = json!({"policies": {"per-consumer": {
        "requests": 3, "periodSeconds": 3600, "burst": 3, "key": "consumer"
    }}});
    bundle["apis"][0]["rateLimit"] = json!("per-consumer");
    let gw = start(bundle).await;

    // Wrong keys: 401 every time, and no budget is spent by them.
    for _ in 0..10 {
        let r = call(&gw, "/pets-api/v1/pets", &[("x-api-key", "nope")]).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    // team-a gets exactly its 3, then 429; team-b, from the same IP, still has 3.
    for i in 0..3 {
        let r = call(&gw, "/pets-api/v1/pets", &[("x-api-key", "key-a")]).await;
        assert_eq!(r.status, StatusCode::OK, "team-a request {i}");
    }
    let r = call(&gw, "/pets-api/v1/pets", &[("x-api-key", "key-a")]).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers.contains_key("retry-after"));
    for i in 0..3 {
        let r = call(&gw, "/pets-api/v1/pets", &[("x-api-key", "key-b")]).await;
        assert_eq!(r.status, StatusCode::OK, "team-b request {i}");
    }
    gw.shutdown().await;
}

/// OpenAPI's optional authentication (`security: [{}, {header: []}]`, Discord's
/// `GET /gateway`): a caller without a key passes anonymously, a key identifies
/// its consumer (who gets a budget of its own, not the client IP's), and a key
/// that does not verify is refused rather than ignored.
#[tokio::test]
async fn optional_authentication_identifies_keyed_callers_and_lets_the_rest_in() {
    let b = backend("pets").await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("api-keys");
    std::fs::write(&file, key_line("team-a", "key-a")).unwrap();
    let mut bundle = bundle_with(
        &b,
        json!({"keys": {"type": "apiKey", "file": file.to_str().unwrap()}}),
        json!({"header": {"provider": "keys", "in": "header", "name": "X-API-Key"}}),
        json!([{"header": []}]),
    );
    for op in bundle["apis"][0]["operations"].as_array_mut().unwrap() {
        if op["id"] == "listPets" {
            op["anonymous"] = true.into();
        }
    }
    bundle["rateLimits"] = json!({"policies": {"per-consumer": {
        "requests": 2, "periodSeconds": 3600, "burst": 2, "key": "consumer"
    }}});
    bundle["apis"][0]["rateLimit"] = json!("per-consumer");
    let gw = start(bundle).await;
    let outcome = |o: &str| format!("mgw_auth_outcomes_total{{api=\"pets\",outcome=\"{o}\"}}");

    // No key: in, anonymously; the client IP's budget is 2.
    for i in 0..2 {
        let r = call(&gw, "/pets-api/v1/pets", &[]).await;
        assert_eq!(r.status, StatusCode::OK, "anonymous request {i}");
    }
    let r = call(&gw, "/pets-api/v1/pets", &[]).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(metric(&gw, &outcome("anonymous")).await, Some(3.0));
    // A key: its consumer, from the same IP, has a budget of its own, and the
    // key is taken off the request like on any secured operation.
    for i in 0..2 {
        let r = call(&gw, "/pets-api/v1/pets", &[("x-api-key", "key-a")]).await;
        assert_eq!(r.status, StatusCode::OK, "team-a request {i}");
        assert!(
            r.json()["headers"].get("x-api-key").is_none(),
            "key stripped"
        );
    }
    assert_eq!(metric(&gw, &outcome("success")).await, Some(2.0));
    // A key that does not verify: refused, never read as anonymous.
    let r = call(&gw, "/pets-api/v1/pets", &[("x-api-key", "nope")]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(
        r.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("ApiKey")
    );
    // The operation without `{}` still needs the key.
    let r = call(&gw, "/pets-api/v1/pets/1", &[]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    gw.shutdown().await;
}

/// One requirement with two schemes one provider serves (Plaid's
/// `PLAID-CLIENT-ID` and `PLAID-SECRET`, both in one keys file): the two parts
/// must belong to one consumer. Team A's id with team B's secret passed before,
/// as team A.
#[tokio::test]
async fn parts_of_one_credential_must_name_one_consumer() {
    let b = backend("pets").await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("api-keys");
    let lines = ["id-a", "secret-a"].map(|k| key_line("team-a", k)).concat()
        + &["id-b", "secret-b"].map(|k| key_line("team-b", k)).concat();
    std::fs::write(&file, lines).unwrap();
    let gw = start(bundle_with(
        &b,
        json!({"keys": {"type": "apiKey", "file": file.to_str().unwrap()}}),
        json!({
            "id": {"provider": "keys", "in": "header", "name": "X-Client-Id"},
            "secret": {"provider": "keys", "in": "header", "name": "X-Secret"}
        }),
        json!([{"id": [], "secret": []}]),
    ))
    .await;
    for (id, secret) in [("id-a", "secret-a"), ("id-b", "secret-b")] {
        let r = call(
            &gw,
            "/pets-api/v1/pets",
            &[("x-client-id", id), ("x-secret", secret)],
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{id} + {secret}");
    }
    for (id, secret) in [("id-a", "secret-b"), ("id-b", "secret-a")] {
        let r = call(
            &gw,
            "/pets-api/v1/pets",
            &[("x-client-id", id), ("x-secret", secret)],
        )
        .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{id} + {secret}");
    }
    assert_eq!(
        metric(
            &gw,
            "mgw_auth_outcomes_total{api=\"pets\",outcome=\"invalid\"}"
        )
        .await,
        Some(2.0)
    );
    gw.shutdown().await;
}

/// Issue 10, defect 3: an introspection answer's `exp`, whatever its size, sign or
/// type, is handled (a pass while valid, 401 when past), never a panic.
#[tokio::test]
async fn introspection_exp_of_any_size_never_panics() {
    let b = backend("pets").await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("client-id"), "gw\n").unwrap();
    std::fs::write(dir.path().join("client-secret"), "s\n").unwrap();
    let idp = serve(
        |_parts, form| async move {
            let exp = match form.split('&').find_map(|p| p.strip_prefix("token=")) {
                Some("far") => json!(1e300),
                Some("max") => json!(f64::MAX),
                Some("past") => json!(-1e300),
                Some("text") => json!("soon"),
                _ => json!(null),
            };
            (
                StatusCode::OK,
                json!({"active": true, "scope": "pets:read", "sub": "alice", "exp": exp}),
            )
        },
        std::sync::Arc::new(std::sync::Mutex::new(Value::Null)),
    )
    .await;
    let gw = start(bundle_with(
        &b,
        json!({"opaque": {
            "type": "introspection", "endpoint": idp.url("/introspect"),
            "clientIdFile": dir.path().join("client-id").to_str().unwrap(),
            "clientSecretFile": dir.path().join("client-secret").to_str().unwrap(),
        }}),
        json!({"bearer": {"provider": "opaque", "in": "header", "name": "Authorization", "prefix": "Bearer"}}),
        json!([{"bearer": ["pets:read"]}]),
    ))
    .await;
    for (token, want) in [
        ("far", StatusCode::OK),
        ("max", StatusCode::OK),
        ("past", StatusCode::UNAUTHORIZED),
        ("text", StatusCode::OK),
        ("far", StatusCode::OK),
    ] {
        let auth = format!("Bearer {token}");
        let r = call(&gw, "/pets-api/v1/pets", &[("authorization", &auth)]).await;
        assert_eq!(r.status, want, "{token}");
    }
    gw.shutdown().await;
}

/// Issue 10 (also): 500 concurrent requests carrying one new opaque token cause
/// exactly one call to the introspection endpoint (single flight), and all pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_introspection_call_for_many_concurrent_requests_with_a_new_token() {
    let b = backend("pets").await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("client-id"), "gw\n").unwrap();
    std::fs::write(dir.path().join("client-secret"), "s\n").unwrap();
    let idp = serve(
        |_parts, _form| async move {
            // Slow enough that every request arrives while the first call is out.
            tokio::time::sleep(Duration::from_millis(300)).await;
            (
                StatusCode::OK,
                json!({"active": true, "scope": "pets:read", "sub": "alice", "exp": now() + 300}),
            )
        },
        std::sync::Arc::new(std::sync::Mutex::new(Value::Null)),
    )
    .await;
    let gw = start(bundle_with(
        &b,
        json!({"opaque": {
            "type": "introspection", "endpoint": idp.url("/introspect"),
            "clientIdFile": dir.path().join("client-id").to_str().unwrap(),
            "clientSecretFile": dir.path().join("client-secret").to_str().unwrap(),
            "timeoutMs": 10000,
        }}),
        json!({"bearer": {"provider": "opaque", "in": "header", "name": "Authorization", "prefix": "Bearer"}}),
        json!([{"bearer": ["pets:read"]}]),
    ))
    .await;
    let url = gw.url("/pets-api/v1/pets");
    let c = client();
    let tasks: Vec<_> = (0..500)
        .map(|_| {
            let (c, url) = (c.clone(), url.clone());
            tokio::spawn(async move {
                let req = Request::get(url)
                    .header("authorization", "Bearer brand-new-token")
                    .body(full(""))
                    .unwrap();
                let res = c.request(req).await.unwrap();
                let status = res.status();
                http_body_util::BodyExt::collect(res.into_body())
                    .await
                    .unwrap();
                status
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::OK);
    }
    assert_eq!(idp.hits.load(Ordering::SeqCst), 1);
    gw.shutdown().await;
}

/// OpenAPI `in: cookie` API keys: read from `Cookie`, and removed from it before
/// the request goes upstream, the other cookies kept.
#[tokio::test]
async fn api_keys_in_a_cookie_are_checked_and_stripped() {
    let b = backend("pets").await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("api-keys");
    std::fs::write(&file, key_line("team-a", "key-a")).unwrap();
    let gw = start(bundle_with(
        &b,
        json!({"keys": {"type": "apiKey", "file": file.to_str().unwrap()}}),
        json!({"cookie": {"provider": "keys", "in": "cookie", "name": "session_key"}}),
        json!([{"cookie": []}]),
    ))
    .await;
    let r = call(
        &gw,
        "/pets-api/v1/pets",
        &[("cookie", "theme=dark; session_key=key-a; lang=en")],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["headers"]["cookie"], "theme=dark; lang=en");
    let r = call(&gw, "/pets-api/v1/pets", &[("cookie", "session_key=key-a")]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.json()["headers"].get("cookie").is_none(), "{}", r.json());
    for cookie in [
        "session_key=key-b",
        "theme=dark",
        "session_key=key-a; session_key=key-a",
    ] {
        let r = call(&gw, "/pets-api/v1/pets", &[("cookie", cookie)]).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{cookie}");
        assert!(
            r.headers["www-authenticate"]
                .to_str()
                .unwrap()
                .contains("cookie=\"session_key\""),
            "{cookie}"
        );
    }
    let r = call(&gw, "/pets-api/v1/pets?session_key=key-a", &[]).await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "a query parameter is not the cookie"
    );
    gw.shutdown().await;
}
