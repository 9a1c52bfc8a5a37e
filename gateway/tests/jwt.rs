//! Signed JWTs against an in-process gateway: real RSA, EC and Ed25519 keys, every
//! classic attack on JWT verification, scopes, claim headers and a JWKS served
//! from loopback.

mod support;

use std::sync::atomic::Ordering;

use http::{Request, StatusCode};
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};
use support::auth::*;
use support::*;

/// The pets API with `listPets`/`getPet` needing `pets:read` and `createPet`
/// `pets:write` through scheme `bearer` of provider `idp`.
fn secured(backend: &Backend, providers: Value) -> Value {
    let mut b = bundle_json(&[format!("http://{}", backend.addr)]);
    b["apis"][0]["securitySchemes"] = json!({
        "bearer": {"provider": "idp", "in": "header", "name": "Authorization", "prefix": "Bearer"},
    });
    if providers.get("other").is_some() {
        b["apis"][0]["securitySchemes"]["other"] = json!({"provider": "other", "in": "header", "name": "Authorization", "prefix": "Bearer"});
    }
    b["auth"] = json!({ "providers": providers });
    for op in b["apis"][0]["operations"].as_array_mut().unwrap() {
        let scope = match op["id"].as_str().unwrap() {
            "listPets" | "getPet" => "pets:read",
            "createPet" => "pets:write",
            _ => continue,
        };
        op["security"] = json!([{ "bearer": [scope] }]);
    }
    b
}

fn idp(keys: Value) -> Value {
    json!({
        "type": "jwt", "issuer": ISSUER, "audiences": [AUDIENCE],
        "algorithms": ["RS256", "PS256", "ES256", "EdDSA"],
        "keys": keys, "leewayMs": 5000,
        "claimHeaders": {"sub": "x-consumer", "tenant": "x-tenant"}
    })
}

async fn call(gw: &Gw, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut req = Request::builder().method(method).uri(gw.url(path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    send(req.body(full("")).unwrap()).await
}

async fn with_token(gw: &Gw, token: &str) -> Reply {
    call(
        gw,
        "GET",
        "/pets-api/v1/pets",
        &[("authorization", &format!("Bearer {token}"))],
    )
    .await
}

#[tokio::test]
async fn valid_rsa_ec_and_ed25519_tokens_pass_with_the_right_scopes() {
    let b = backend("pets").await;
    let (rsa_k, ec_k, ed_k) = (shared_rsa(), ec("ec-1"), ed("ed-1"));
    let keys = json!([
        {"kid": "rsa-1", "pem": rsa_k.public_pem},
        {"jwk": ec_k.jwk},
        {"jwk": ed_k.jwk},
    ]);
    let other = ec("other-1");
    let mut providers = json!({ "idp": idp(keys) });
    providers["other"] = json!({
        "type": "jwt", "issuer": "https://other.test", "algorithms": ["ES256"],
        "keys": [{"jwk": other.jwk}]
    });
    let gw = start(secured(&b, providers)).await;

    for key in [&rsa_k, &rsa_k.with_alg(Algorithm::PS256), &ec_k, &ed_k] {
        let mut c = claims("alice", "pets:read other");
        c["tenant"] = "acme".into();
        let t = token(key, &c);
        let r = call(
            &gw,
            "GET",
            "/pets-api/v1/pets",
            &[
                ("authorization", &format!("Bearer {t}")),
                // A client cannot forge what a claim sets.
                ("x-consumer", "mallory"),
            ],
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}: {:?}", key.alg, r.body);
        let h = &r.json()["headers"];
        assert_eq!(h["x-consumer"], "alice");
        assert_eq!(h["x-tenant"], "acme");
        // The credential does not travel upstream.
        assert!(h.get("authorization").is_none(), "{h}");
    }
    // `scp` as an array works too.
    let mut c = claims("bob", "");
    c["scp"] = json!(["pets:read"]);
    assert_eq!(
        with_token(&gw, &token(&ec_k, &c)).await.status,
        StatusCode::OK
    );

    // Authenticated without the scope: 403 with `insufficient_scope`.
    let t = token(&rsa_k, &claims("alice", "pets:read"));
    let r = call(
        &gw,
        "POST",
        "/pets-api/v1/pets",
        &[("authorization", &format!("Bearer {t}"))],
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let www = r.headers["www-authenticate"].to_str().unwrap();
    assert!(www.contains("error=\"insufficient_scope\""), "{www}");
    assert!(www.contains("scope=\"pets:write\""), "{www}");
    assert_eq!(r.headers["content-type"], "application/problem+json");

    // Open operations stay open.
    assert_eq!(
        call(&gw, "GET", "/pets-api/v1/hop", &[]).await.status,
        StatusCode::OK
    );
    gw.shutdown().await;
}

/// A requirement listing a scope and its read-only variant (Xero's
/// `[accounting.transactions, accounting.transactions.read]`): OpenAPI needs
/// both, which real tokens never carry; the API's `scopeMatch: any` takes either.
/// The verified-token cache is asked before the header's text is checked, so a
/// hit must mean the very same token bytes: other blanks around it and another
/// case of the prefix still hit; a byte that is not visible ASCII anywhere in
/// the value makes it no credential, even around a token that is cached.
#[tokio::test]
async fn a_cached_token_in_a_header_value_that_is_not_text_is_refused() {
    let b = backend("pets").await;
    let k = shared_rsa();
    let providers = json!({ "idp": idp(json!([{"kid": "rsa-1", "pem": k.public_pem}])) });
    let gw = start(secured(&b, providers)).await;
    let t = token(&k, &claims("alice", "pets:read"));
    let with = |value: Vec<u8>| {
        let req = Request::builder()
            .uri(gw.url("/pets-api/v1/pets"))
            .header(
                "authorization",
                http::HeaderValue::from_bytes(&value).unwrap(),
            )
            .body(full(""))
            .unwrap();
        send(req)
    };
    assert_eq!(with_token(&gw, &t).await.status, StatusCode::OK);
    for value in [format!("bearer \t{t} \t"), format!(" BEARER  {t}")] {
        assert_eq!(
            with(value.clone().into_bytes()).await.status,
            StatusCode::OK,
            "{value:?}"
        );
    }
    let around = |before: &[u8], after: &[u8]| [before, t.as_bytes(), after].concat();
    for value in [
        around(b"Bearer ", b"\xe9"),
        around(b"Bearer ", b" \x80"),
        around(b"Bearer\xe9 ", b""),
        around(b"Bearer \xe9", b""),
        around(b"\xa0Bearer ", b""),
    ] {
        let r = with(value.clone()).await;
        assert_eq!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "{:?}",
            String::from_utf8_lossy(&value)
        );
    }
}

#[tokio::test]
async fn scope_match_any_takes_one_listed_scope_all_needs_every_one() {
    let b = backend("pets").await;
    let key = ec("ec-1");
    let mut bundle = secured(&b, json!({ "idp": idp(json!([{"jwk": key.jwk}])) }));
    for op in bundle["apis"][0]["operations"].as_array_mut().unwrap() {
        if op["id"] == "listPets" {
            op["security"] = json!([{ "bearer": ["pets", "pets.read"] }]);
        }
    }
    let read_only = token(&key, &claims("alice", "pets.read"));
    let both = token(&key, &claims("alice", "pets pets.read"));
    let neither = token(&key, &claims("alice", "other"));
    for (how, expect) in [
        (
            None,
            [StatusCode::FORBIDDEN, StatusCode::OK, StatusCode::FORBIDDEN],
        ),
        (
            Some("any"),
            [StatusCode::OK, StatusCode::OK, StatusCode::FORBIDDEN],
        ),
    ] {
        let mut bundle = bundle.clone();
        if let Some(how) = how {
            bundle["apis"][0]["scopeMatch"] = how.into();
        }
        let gw = start(bundle).await;
        for (t, want) in [&read_only, &both, &neither].into_iter().zip(expect) {
            assert_eq!(with_token(&gw, t).await.status, want, "scopeMatch {how:?}");
        }
        gw.shutdown().await;
    }
}

/// Identity providers that put permissions elsewhere than `scope`/`scp`:
/// Auth0's RBAC (`permissions`, an array), Microsoft Entra ID's application
/// tokens (`roles`). `scopeClaims` names where to read them; the default
/// claims are then not read, so a token's `scope` cannot add permissions the
/// provider keeps in another claim.
#[tokio::test]
async fn scope_claims_name_where_scopes_are_read() {
    let b = backend("pets").await;
    let key = ec("ec-1");
    let bundle = secured(&b, json!({ "idp": idp(json!([{"jwk": key.jwk}])) }));
    let with = |extra: Value| {
        let mut c = claims("app", "pets:read");
        c.as_object_mut().unwrap().remove("scope");
        c.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        token(&key, &c)
    };
    let permissions = with(json!({"permissions": ["pets:read", "pets:write"]}));
    let roles = with(json!({"roles": ["pets:read"]}));
    let scope = with(json!({"scope": "pets:read"}));
    for (claims_named, expect) in [
        (
            None,
            [StatusCode::FORBIDDEN, StatusCode::FORBIDDEN, StatusCode::OK],
        ),
        (
            Some(json!(["permissions", "roles"])),
            [StatusCode::OK, StatusCode::OK, StatusCode::FORBIDDEN],
        ),
    ] {
        let mut bundle = bundle.clone();
        if let Some(named) = &claims_named {
            bundle["auth"]["providers"]["idp"]["scopeClaims"] = named.clone();
        }
        let gw = start(bundle).await;
        for (t, want) in [&permissions, &roles, &scope].into_iter().zip(expect) {
            assert_eq!(with_token(&gw, t).await.status, want, "{claims_named:?}");
        }
        gw.shutdown().await;
    }
}

#[tokio::test]
async fn hostile_and_broken_tokens_are_rejected() {
    let b = backend("pets").await;
    let rsa_k = shared_rsa();
    let ed_k = ed("ed-1");
    let other = ec("other-1");
    let mut providers = json!({ "idp": idp(json!([
        {"kid": "rsa-1", "pem": rsa_k.public_pem}, {"jwk": ed_k.jwk}
    ])) });
    providers["other"] = json!({
        "type": "jwt", "issuer": "https://other.test", "algorithms": ["ES256"],
        "keys": [{"jwk": other.jwk}], "maxTokenBytes": 2048
    });
    let mut bundle = secured(&b, providers);
    bundle["auth"]["providers"]["idp"]["maxTokenBytes"] = 2048.into();
    let gw = start(bundle).await;

    // Missing credentials: 401, a challenge without an error code.
    let r = call(&gw, "GET", "/pets-api/v1/pets", &[]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let www = r.headers["www-authenticate"].to_str().unwrap();
    assert_eq!(www, "Bearer realm=\"pets\"");
    assert_eq!(r.json()["type"], "https://mgw.dev/problems/unauthenticated");

    let good = claims("alice", "pets:read");
    let header = |alg: &str| json!({"alg": alg, "typ": "JWT", "kid": "rsa-1"});
    let with = |k: &str, v: Value| {
        let mut c = good.clone();
        c[k] = v;
        c
    };
    let attacker = rsa("rsa-1");
    let attacker_ed = ed("ed-1");
    let rsa_key = rsa_k.encoding();
    let mut cases: Vec<(&str, String)> = vec![
        (
            "alg none",
            format!("{}.{}.", b64(&json!({"alg": "none"})), b64(&good)),
        ),
        (
            "HS256 signed with the RSA public key as secret",
            sign_raw(
                &header("HS256"),
                &good,
                &EncodingKey::from_secret(rsa_k.public_pem.as_bytes()),
                Algorithm::HS256,
            ),
        ),
        (
            "expired",
            sign_raw(
                &header("RS256"),
                &with("exp", (now() - 60).into()),
                &rsa_key,
                Algorithm::RS256,
            ),
        ),
        ("no exp", {
            let mut c = good.clone();
            c.as_object_mut().unwrap().remove("exp");
            sign_raw(&header("RS256"), &c, &rsa_key, Algorithm::RS256)
        }),
        (
            "not yet valid",
            sign_raw(
                &header("RS256"),
                &with("nbf", (now() + 600).into()),
                &rsa_key,
                Algorithm::RS256,
            ),
        ),
        (
            "wrong issuer",
            sign_raw(
                &header("RS256"),
                &with("iss", "https://idp.test/".into()),
                &rsa_key,
                Algorithm::RS256,
            ),
        ),
        (
            "wrong audience",
            sign_raw(
                &header("RS256"),
                &with("aud", json!(["billing"])),
                &rsa_key,
                Algorithm::RS256,
            ),
        ),
        (
            "bad signature (another key, same kid)",
            sign_raw(
                &header("RS256"),
                &good,
                &attacker.encoding(),
                Algorithm::RS256,
            ),
        ),
        (
            "unknown kid",
            sign_raw(
                &json!({"alg": "RS256", "kid": "rsa-9"}),
                &good,
                &rsa_key,
                Algorithm::RS256,
            ),
        ),
        (
            "crit header",
            sign_raw(
                &json!({"alg": "RS256", "kid": "rsa-1", "crit": ["exp"], "exp": 1}),
                &good,
                &rsa_key,
                Algorithm::RS256,
            ),
        ),
        (
            "key embedded in the header (jwk)",
            sign_raw(
                &json!({"alg": "EdDSA", "jwk": attacker_ed.jwk}),
                &good,
                &attacker_ed.encoding(),
                Algorithm::EdDSA,
            ),
        ),
        (
            "key embedded in the header (jwk, our kid)",
            sign_raw(
                &json!({"alg": "EdDSA", "kid": "ed-1", "jwk": attacker_ed.jwk, "jku": "http://127.0.0.1:1/jwks", "x5u": "http://127.0.0.1:1/x5"}),
                &good,
                &attacker_ed.encoding(),
                Algorithm::EdDSA,
            ),
        ),
        ("empty signature", {
            let t = token(&rsa_k, &good);
            format!("{}.", t.rsplit_once('.').unwrap().0)
        }),
        ("over the size limit", {
            let mut c = good.clone();
            c["pad"] = "x".repeat(3000).into();
            token(&rsa_k, &c)
        }),
        (
            "a token for another provider's issuer",
            token(&other, &with("iss", "https://other.test".into())),
        ),
        (
            "an algorithm the provider does not allow",
            sign_raw(&header("RS512"), &good, &rsa_key, Algorithm::RS512),
        ),
        ("garbage", "not.a.jwt".into()),
        ("two segments", "eyJhbGciOiJSUzI1NiJ9.e30".into()),
    ];
    // The `other` provider itself accepts its own token on a route that asks
    // for it, so the rejection above is about the issuer/provider, not the key.
    cases.push((
        "our issuer signed by the other provider's key",
        token(&other, &good),
    ));
    for (what, t) in &cases {
        let r = with_token(&gw, t).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{what}: {:?}", r.body);
        let www = r.headers["www-authenticate"].to_str().unwrap();
        assert!(www.contains("error=\"invalid_token\""), "{what}: {www}");
        let body = r.json();
        // The body names the category only.
        assert_eq!(
            body["type"], "https://mgw.dev/problems/invalid_credentials",
            "{what}"
        );
        assert_eq!(
            body["detail"], "the credentials are invalid or expired",
            "{what}"
        );
    }
    assert_eq!(
        b.hits.load(Ordering::SeqCst),
        0,
        "nothing reached the upstream"
    );

    // Counted in metrics.
    let m = get(&format!("http://{}/metrics", gw.admin)).await;
    let text = String::from_utf8_lossy(&m.body);
    assert!(
        text.contains(&format!(
            "mgw_auth_outcomes_total{{api=\"pets\",outcome=\"invalid\"}} {}",
            cases.len()
        )),
        "{text}"
    );
    assert!(
        text.contains("mgw_auth_outcomes_total{api=\"pets\",outcome=\"missing\"} 1"),
        "{text}"
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn jwks_is_fetched_cached_refreshed_on_new_kid_and_survives_its_server() {
    let b = backend("pets").await;
    let k1 = ec("k1");
    let k2 = ed("k2");
    let mut jwks = json_server(json!({"keys": [k1.jwk]})).await;
    let mut provider = idp(json!([]));
    provider["jwksUrl"] = jwks.url("/.well-known/jwks.json").into();
    provider["jwksMinRefreshIntervalMs"] = 0.into();
    provider["jwksRefreshMs"] = 3_600_000.into();
    let gw = start(secured(&b, json!({ "idp": provider }))).await;
    assert_eq!(jwks.hits.load(Ordering::SeqCst), 1, "fetched at start");

    let t1 = token(&k1, &claims("alice", "pets:read"));
    assert_eq!(with_token(&gw, &t1).await.status, StatusCode::OK);
    let other_t1 = token(&k1, &claims("bob", "pets:read"));
    assert_eq!(with_token(&gw, &other_t1).await.status, StatusCode::OK);
    assert_eq!(jwks.hits.load(Ordering::SeqCst), 1, "known kid: no refetch");

    // The IdP rotates in a new key: the first token with its kid triggers a fetch.
    *jwks.body.lock().unwrap() = json!({"keys": [k1.jwk, k2.jwk]});
    let t2 = token(&k2, &claims("carol", "pets:read"));
    assert_eq!(with_token(&gw, &t2).await.status, StatusCode::OK);
    assert_eq!(jwks.hits.load(Ordering::SeqCst), 2);

    // The JWKS server goes away: known keys keep working, unknown ones fail.
    jwks.stop();
    let t1b = token(&k1, &claims("dave", "pets:read"));
    assert_eq!(with_token(&gw, &t1b).await.status, StatusCode::OK);
    let t2b = token(&k2, &claims("erin", "pets:read"));
    assert_eq!(with_token(&gw, &t2b).await.status, StatusCode::OK);
    let k3 = ec("k3");
    let t3 = token(&k3, &claims("eve", "pets:read"));
    assert_eq!(with_token(&gw, &t3).await.status, StatusCode::UNAUTHORIZED);
    gw.shutdown().await;
}

/// An OpenID Connect discovery server on loopback: its document names `issuer`
/// and its own `/keys` as `jwks_uri`, which serves `keys`.
async fn discovery_server(issuer: &str, keys: Value) -> JsonServer {
    let issuer = issuer.to_owned();
    let body = std::sync::Arc::new(std::sync::Mutex::new(keys));
    let served = body.clone();
    serve(
        move |parts: http::request::Parts, _form| {
            let (issuer, served) = (issuer.clone(), served.clone());
            async move {
                let host = parts.headers["host"].to_str().unwrap().to_owned();
                match parts.uri.path() {
                    "/.well-known/openid-configuration" => (
                        StatusCode::OK,
                        json!({"issuer": issuer, "jwks_uri": format!("http://{host}/keys"),
                               "id_token_signing_alg_values_supported": ["ES256"]}),
                    ),
                    "/keys" => (StatusCode::OK, served.lock().unwrap().clone()),
                    _ => (StatusCode::NOT_FOUND, json!({})),
                }
            }
        },
        body,
    )
    .await
}

/// `discoveryUrl`: the JWKS is found through the IdP's OpenID Connect
/// discovery document (Keycloak, Entra ID, Auth0, Google publish one at
/// `<issuer>/.well-known/openid-configuration`); a document that names another
/// issuer gives no keys, so every token fails (closed).
#[tokio::test]
async fn discovery_finds_the_jwks_of_the_provider_s_own_issuer() {
    let b = backend("pets").await;
    let k1 = ec("k1");
    for (issuer, want) in [
        (ISSUER, StatusCode::OK),
        ("https://elsewhere.example/", StatusCode::UNAUTHORIZED),
    ] {
        let idp_server = discovery_server(issuer, json!({"keys": [k1.jwk]})).await;
        let mut provider = idp(json!([]));
        provider.as_object_mut().unwrap().remove("keys");
        provider["discoveryUrl"] = idp_server.url("/.well-known/openid-configuration").into();
        provider["jwksMinRefreshIntervalMs"] = 3_600_000.into();
        let gw = start(secured(&b, json!({ "idp": provider }))).await;
        let t = token(&k1, &claims("alice", "pets:read"));
        assert_eq!(with_token(&gw, &t).await.status, want, "issuer {issuer}");
        // The document and the keys when the issuer matches; the document alone
        // when it does not.
        let hits = if want == StatusCode::OK { 2 } else { 1 };
        assert_eq!(
            idp_server.hits.load(Ordering::SeqCst),
            hits,
            "issuer {issuer}"
        );
        gw.shutdown().await;
    }
}

#[tokio::test]
async fn jwks_unknown_kid_refresh_is_rate_limited_and_no_key_fails_closed() {
    let b = backend("pets").await;
    let k1 = ec("k1");
    // The server is down at start: no key at all.
    let mut down = json_server(json!({"keys": []})).await;
    let url = down.url("/jwks");
    down.stop();
    let mut provider = idp(json!([]));
    provider["jwksUrl"] = url.into();
    provider["jwksMinRefreshIntervalMs"] = 3_600_000.into();
    let gw = start(secured(&b, json!({ "idp": provider }))).await;
    let t = token(&k1, &claims("alice", "pets:read"));
    assert_eq!(with_token(&gw, &t).await.status, StatusCode::UNAUTHORIZED);
    gw.shutdown().await;

    let jwks = json_server(json!({"keys": [k1.jwk]})).await;
    let mut provider = idp(json!([]));
    provider["jwksUrl"] = jwks.url("/jwks").into();
    provider["jwksMinRefreshIntervalMs"] = 3_600_000.into();
    let gw = start(secured(&b, json!({ "idp": provider }))).await;
    for i in 0..5 {
        let k = ec(&format!("unknown-{i}"));
        let t = token(&k, &claims("eve", "pets:read"));
        assert_eq!(with_token(&gw, &t).await.status, StatusCode::UNAUTHORIZED);
    }
    // One fetch at start; unknown kids within the interval fetch nothing more.
    assert_eq!(jwks.hits.load(Ordering::SeqCst), 1);
    gw.shutdown().await;
}

#[tokio::test]
async fn custom_auth_header_and_forwarded_credentials() {
    let b = backend("pets").await;
    let key = ed("ed-1");
    let mut provider = idp(json!([{"jwk": key.jwk}]));
    provider["forwardCredentials"] = true.into();
    let mut bundle = secured(&b, json!({ "idp": provider }));
    bundle["apis"][0]["securitySchemes"]["bearer"]["name"] = "X-Token".into();
    let gw = start(bundle).await;
    let t = token(&key, &claims("alice", "pets:read"));
    // The bare token in the custom header.
    let r = call(&gw, "GET", "/pets-api/v1/pets", &[("x-token", &t)]).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.json()["headers"]["x-token"], t.as_str());
    // With the `Bearer` prefix, too.
    let r = call(
        &gw,
        "GET",
        "/pets-api/v1/pets",
        &[("x-token", &format!("Bearer {t}"))],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    // `Authorization` is not where this API looks.
    let r = with_token(&gw, &t).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    gw.shutdown().await;
}

#[tokio::test]
async fn hs256_with_a_mounted_secret() {
    let b = backend("pets").await;
    let dir = tempfile::tempdir().unwrap();
    let secret = "0123456789abcdef0123456789abcdef-shared";
    let file = dir.path().join("secret");
    std::fs::write(&file, format!("{secret}\n")).unwrap();
    let provider = json!({
        "type": "jwt", "issuer": ISSUER, "algorithms": ["HS256"],
        "hmacSecretFile": file.to_str().unwrap()
    });
    let gw = start(secured(&b, json!({ "idp": provider }))).await;
    let good = claims("svc", "pets:read");
    let h = json!({"alg": "HS256", "typ": "JWT"});
    let t = sign_raw(
        &h,
        &good,
        &EncodingKey::from_secret(secret.as_bytes()),
        Algorithm::HS256,
    );
    assert_eq!(with_token(&gw, &t).await.status, StatusCode::OK);
    let t = sign_raw(
        &h,
        &good,
        &EncodingKey::from_secret(b"another secret of 32+ bytes......"),
        Algorithm::HS256,
    );
    assert_eq!(with_token(&gw, &t).await.status, StatusCode::UNAUTHORIZED);
    // An RSA-signed token cannot use the HMAC provider either.
    let rsa_t = token(&shared_rsa(), &good);
    assert_eq!(
        with_token(&gw, &rsa_t).await.status,
        StatusCode::UNAUTHORIZED
    );
    gw.shutdown().await;
}

/// Issue 10, defect 3: a validly signed token whose numeric claims are huge,
/// negative or not numbers gets an answer (200 when still valid, 401 otherwise),
/// never a worker panic ("cannot convert float seconds to Duration").
#[tokio::test]
async fn numeric_claims_of_any_size_sign_or_type_never_panic() {
    let b = backend("pets").await;
    let key = ed("ed-1");
    let gw = start(secured(
        &b,
        json!({ "idp": idp(json!([{"jwk": key.jwk}])) }),
    ))
    .await;
    let cases: [(&str, Value, StatusCode); 12] = [
        ("exp", json!(1e300), StatusCode::OK),
        ("exp", json!(f64::MAX), StatusCode::OK),
        ("exp", json!(u64::MAX), StatusCode::OK),
        ("exp", json!(-1e300), StatusCode::UNAUTHORIZED),
        ("exp", json!(i64::MIN), StatusCode::UNAUTHORIZED),
        ("exp", json!("4102444800"), StatusCode::UNAUTHORIZED),
        ("exp", json!(null), StatusCode::UNAUTHORIZED),
        ("nbf", json!(1e300), StatusCode::UNAUTHORIZED),
        ("nbf", json!(-1e300), StatusCode::OK),
        ("nbf", json!([1]), StatusCode::UNAUTHORIZED),
        ("iat", json!(1e300), StatusCode::OK),
        ("iat", json!("yesterday"), StatusCode::OK),
    ];
    for (claim, value, want) in cases {
        let mut c = claims("alice", "pets:read");
        c[claim] = value.clone();
        let r = with_token(&gw, &token(&key, &c)).await;
        assert_eq!(r.status, want, "{claim} = {value}");
    }
    gw.shutdown().await;
}

/// Issue 10, defect 2: `Connection: X-Consumer` used to make the hop-by-hop
/// stripping (which ran after the auth stage) delete the claim header; and a
/// client copy of a claim header never survives next to the gateway's.
#[tokio::test]
async fn connection_cannot_remove_or_duplicate_claim_headers() {
    let b = backend("pets").await;
    let key = ed("ed-1");
    let gw = start(secured(
        &b,
        json!({ "idp": idp(json!([{"jwk": key.jwk}])) }),
    ))
    .await;
    let mut c = claims("alice", "pets:read");
    c["tenant"] = "acme".into();
    let t = token(&key, &c);
    let r = call(
        &gw,
        "GET",
        "/pets-api/v1/pets",
        &[
            ("authorization", &format!("Bearer {t}")),
            ("connection", "X-Consumer, x-tenant"),
            ("x-tenant", "evil"),
            ("x-consumer", "mallory"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let v = r.json();
    assert_eq!(v["headers"]["x-consumer"], "alice", "{v}");
    assert_eq!(v["headers"]["x-tenant"], "acme", "{v}");
    assert_eq!(v["repeated"], json!([]), "{v}");
    gw.shutdown().await;
}

/// Issue 10 (also): under `underscoreHeaders: allow`, a header that reads as a
/// claim header once `_` becomes `-` is still dropped.
#[tokio::test]
async fn underscore_spellings_of_claim_headers_never_reach_the_upstream() {
    let b = backend("pets").await;
    let key = ed("ed-1");
    let mut bundle = secured(&b, json!({ "idp": idp(json!([{"jwk": key.jwk}])) }));
    bundle["apis"][0]["underscoreHeaders"] = "allow".into();
    let gw = start(bundle).await;
    let t = token(&key, &claims("alice", "pets:read"));
    let r = call(
        &gw,
        "GET",
        "/pets-api/v1/pets",
        &[
            ("authorization", &format!("Bearer {t}")),
            ("x_consumer", "mallory"),
            ("x_tenant", "evil"),
            ("x_other", "kept"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let h = &r.json()["headers"];
    assert_eq!(h["x-consumer"], "alice", "{h}");
    assert!(h.get("x_consumer").is_none(), "{h}");
    assert!(h.get("x_tenant").is_none(), "{h}");
    assert_eq!(h["x_other"], "kept", "{h}");
    gw.shutdown().await;
}

/// WSO2 sandbox keys: a token whose `keytype` claim is `SANDBOX` goes to the
/// sandbox upstream of its operation, else of the API; any other caller, and
/// operations without a sandbox upstream, go to production.
#[tokio::test]
async fn sandbox_tokens_go_to_the_sandbox_upstream() {
    let (prod, sandbox, op_sandbox) = (
        backend("prod").await,
        backend("sandbox").await,
        backend("op-sandbox").await,
    );
    let key = shared_rsa();
    let mut b = secured(
        &prod,
        json!({ "idp": idp(json!([{"kid": "rsa-1", "pem": key.public_pem}])) }),
    );
    b["upstreams"]["sandbox"] = json!({"urls": [format!("http://{}", sandbox.addr)]});
    b["upstreams"]["op-sandbox"] = json!({"urls": [format!("http://{}", op_sandbox.addr)]});
    b["apis"][0]["sandbox"] =
        json!({"claim": "keytype", "value": "SANDBOX", "upstream": "sandbox"});
    for op in b["apis"][0]["operations"].as_array_mut().unwrap() {
        if op["id"] == "getPet" {
            op["sandboxUpstream"] = json!("op-sandbox");
        }
    }
    let gw = start(b).await;
    let tok = |keytype: Option<&str>| {
        let mut c = claims("alice", "pets:read");
        if let Some(k) = keytype {
            c["keytype"] = json!(k);
        }
        format!("Bearer {}", token(&key, &c))
    };
    let hit = |r: &Reply| r.json()["backend"].as_str().unwrap().to_owned();
    for (keytype, path, want) in [
        (Some("SANDBOX"), "/pets-api/v1/pets", "sandbox"),
        (Some("SANDBOX"), "/pets-api/v1/pets/7", "op-sandbox"),
        (Some("PRODUCTION"), "/pets-api/v1/pets", "prod"),
        (Some("sandbox"), "/pets-api/v1/pets/7", "prod"),
        (None, "/pets-api/v1/pets", "prod"),
    ] {
        let r = call(&gw, "GET", path, &[("authorization", &tok(keytype))]).await;
        assert_eq!(r.status, StatusCode::OK, "{keytype:?} {path}");
        assert_eq!(hit(&r), want, "{keytype:?} {path}");
    }
    gw.shutdown().await;
}

#[test]
fn sandbox_upstreams_are_checked() {
    let mut b = bundle_json(&["http://127.0.0.1:9".into()]);
    b["apis"][0]["operations"][0]["sandboxUpstream"] = json!("nope");
    let e = mgw_gateway::bundle::Bundle::from_json(&serde_json::to_vec(&b).unwrap())
        .map(|b| {
            mgw_gateway::bundle::Config::from_bundle(&b, String::new(), None)
                .unwrap_err()
                .to_string()
        })
        .unwrap();
    assert!(
        e.contains("`apis[0].operations[0].sandboxUpstream`: needs `apis[0].sandbox`"),
        "{e}"
    );
    b["apis"][0]["sandbox"] = json!({"claim": "keytype", "value": "SANDBOX", "upstream": "gone"});
    let e = mgw_gateway::bundle::Bundle::from_json(&serde_json::to_vec(&b).unwrap())
        .map(|b| {
            mgw_gateway::bundle::Config::from_bundle(&b, String::new(), None)
                .unwrap_err()
                .to_string()
        })
        .unwrap();
    assert!(
        e.contains("`apis[0].sandbox.upstream`: no upstream named `gone`"),
        "{e}"
    );
    b["apis"][0]["sandbox"] = json!({"claim": "keytype", "header": "x-env", "value": "SANDBOX"});
    let e = mgw_gateway::bundle::Bundle::from_json(&serde_json::to_vec(&b).unwrap())
        .map(|b| {
            mgw_gateway::bundle::Config::from_bundle(&b, String::new(), None)
                .unwrap_err()
                .to_string()
        })
        .unwrap();
    assert!(
        e.contains("`apis[0].sandbox`: needs exactly one of `claim`"),
        "{e}"
    );
    assert!(
        e.contains("`apis[0].operations[0].sandboxUpstream`: no upstream named `nope`"),
        "{e}"
    );
}

/// A sandbox selected by a header (test traffic any client may send).
#[tokio::test]
async fn a_sandbox_header_selects_the_sandbox_upstream() {
    let (prod, sandbox) = (backend("prod").await, backend("sandbox").await);
    let mut b = bundle_json(&[format!("http://{}", prod.addr)]);
    b["upstreams"]["sandbox"] = json!({"urls": [format!("http://{}", sandbox.addr)]});
    b["apis"][0]["sandbox"] =
        json!({"header": "X-Environment", "value": "sandbox", "upstream": "sandbox"});
    let gw = start(b).await;
    for (value, want) in [
        (Some("sandbox"), "sandbox"),
        (Some("prod"), "prod"),
        (None, "prod"),
    ] {
        let headers: Vec<(&str, &str)> = value.map(|v| ("x-environment", v)).into_iter().collect();
        let r = call(&gw, "GET", "/pets-api/v1/pets", &headers).await;
        assert_eq!(r.status, StatusCode::OK, "{value:?}");
        assert_eq!(r.json()["backend"], want, "{value:?}");
    }
    gw.shutdown().await;
}
