use std::collections::BTreeMap;

use http::Method;

use crate::*;

pub(crate) fn sample() -> Bundle {
    serde_json::from_value(serde_json::json!({
        "schemaVersion": 1,
        "gateway": {"name": "petstore", "version": "1.0.0"},
        "upstreams": {"pets": {"urls": ["${PETS_URL:-http://127.0.0.1:3000/v1/}"]}},
        "apis": [{
            "name": "petstore", "basePath": "/petstore/v1/", "upstream": "pets",
            "operations": [
                {"id": "listPets", "method": "get", "path": "/pets"},
                {"id": "getPet", "method": "GET", "path": "/pets/{petId}"}
            ]
        }]
    }))
    .unwrap()
}

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect()
}

#[test]
fn valid_bundle_resolves() {
    let cfg = Config::from_bundle(&sample(), "sha256:x".into(), Some(&env(&[]))).unwrap();
    assert_eq!(cfg.api_addr, "0.0.0.0:8080".parse().unwrap());
    assert_eq!(cfg.apis[0].base_path, "/petstore/v1");
    assert_eq!(cfg.routes[1].template, "/petstore/v1/pets/{petId}");
    assert_eq!(cfg.routes[1].base_segments, 2);
    assert_eq!(cfg.routes[0].method, Method::GET);
    let t = &cfg.upstreams[0].targets[0];
    assert_eq!(t.origin, "http://127.0.0.1:3000/");
    assert_eq!(t.path_prefix, "/v1");
}

#[test]
fn env_overrides_default() {
    let e = env(&[
        ("PETS_URL", "http://10.0.0.1:81"),
        ("MGW_LISTEN", "127.0.0.1:1"),
    ]);
    let cfg = Config::from_bundle(&sample(), String::new(), Some(&e)).unwrap();
    assert_eq!(cfg.upstreams[0].targets[0].origin, "http://10.0.0.1:81/");
    assert_eq!(cfg.api_addr, "127.0.0.1:1".parse().unwrap());
}

#[test]
fn https_upstreams_and_their_tls_settings_are_checked() {
    let with = |urls: &[&str], tls: serde_json::Value| {
        let mut b = sample();
        let u = b.upstreams.get_mut("pets").unwrap();
        u.urls = urls.iter().map(|s| (*s).to_owned()).collect();
        u.tls = serde_json::from_value(tls).unwrap();
        Config::from_bundle(&b, String::new(), Some(&env(&[("CA", "/run/ca.crt")])))
    };
    let cfg = with(
        &["https://api.example.com/v2/"],
        serde_json::json!({"caFile": "${CA}", "serverName": "api.internal"}),
    )
    .unwrap();
    let u = &cfg.upstreams[0];
    assert_eq!(u.targets[0].origin, "https://api.example.com/");
    assert_eq!(u.targets[0].path_prefix, "/v2");
    let tls = u.tls.as_ref().unwrap();
    assert_eq!(tls.ca_file.as_deref(), Some("/run/ca.crt"));
    assert_eq!(
        tls.server_name.as_ref().map(|n| n.to_str().into_owned()),
        Some("api.internal".to_owned())
    );
    // https without a `tls` block: defaults (the image's CA bundle).
    let cfg = with(&["https://h"], serde_json::Value::Null).unwrap();
    assert_eq!(cfg.upstreams[0].tls, Some(UpstreamTlsCfg::default()));
    // Plain http carries no TLS settings at all.
    let cfg = with(&["http://h"], serde_json::Value::Null).unwrap();
    assert_eq!(cfg.upstreams[0].tls, None);

    let err = |urls: &[&str], tls| with(urls, tls).unwrap_err().to_string();
    let e = err(&["http://h"], serde_json::json!({"caFile": "/ca.crt"}));
    assert!(
        e.contains("`upstreams.pets.tls`: TLS settings apply to `https://` URLs"),
        "{e}"
    );
    let e = err(&["https://h"], serde_json::json!({"certFile": "/c.crt"}));
    assert!(
        e.contains("`upstreams.pets.tls.keyFile`: a client certificate"),
        "{e}"
    );
    let e = err(
        &["https://h"],
        serde_json::json!({"insecureSkipVerify": true, "caFile": "/ca.crt"}),
    );
    assert!(e.contains("`upstreams.pets.tls.caFile`"), "{e}");
    let e = err(&["https://h"], serde_json::json!({"serverName": "a b"}));
    assert!(
        e.contains("`upstreams.pets.tls.serverName`: `a b` is not"),
        "{e}"
    );
    let e = err(&["ftp://h"], serde_json::Value::Null);
    assert!(e.contains("scheme `ftp` is not supported"), "{e}");
    // Unknown keys are refused on the wire.
    let unknown: Result<UpstreamTls, _> =
        serde_json::from_value(serde_json::json!({"verify": false}));
    assert!(unknown.is_err());
}

#[test]
fn missing_variable_names_it_and_the_key() {
    let mut b = sample();
    b.upstreams.get_mut("pets").unwrap().urls = vec!["${PETS_UPSTREAM}".into()];
    let err = Config::from_bundle(&b, String::new(), Some(&env(&[]))).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("upstreams.pets.urls[0]"), "{msg}");
    assert!(msg.contains("PETS_UPSTREAM"), "{msg}");
    // Without an environment (the builder), a template is fine.
    Config::from_bundle(&b, String::new(), None).unwrap();
}

#[test]
fn unknown_field_names_its_path() {
    let mut v = serde_json::to_value(sample()).unwrap();
    v["apis"][0]["operations"][1]["mehtod"] = "GET".into();
    let err = Bundle::from_json(v.to_string().as_bytes()).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("apis[0].operations[1]"), "{msg}");
    assert!(msg.contains("mehtod"), "{msg}");
}

#[test]
fn semantic_problems_are_all_reported() {
    let mut b = sample();
    b.apis[0].upstream = "nope".into();
    b.apis[0].operations[1].method = "G ET".into();
    let dup = b.apis[0].operations[0].clone();
    b.apis[0].operations.push(dup);
    let msg = Config::from_bundle(&b, String::new(), None)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("`apis[0].upstream`: no upstream named `nope` (known: `pets`)"),
        "{msg}"
    );
    assert!(msg.contains("apis[0].operations[1].method"), "{msg}");
    assert!(
        msg.contains("already served by `apis[0].operations[0]`"),
        "{msg}"
    );
}

#[test]
fn canonical_json_is_sorted_and_stable() {
    let b = sample();
    let bytes = b.to_canonical_json();
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(text.find("\"analytics\"").unwrap() < text.find("\"apis\"").unwrap());
    assert_eq!(Bundle::from_json(&bytes).unwrap(), b);
    assert_eq!(
        bytes,
        Bundle::from_json(&bytes).unwrap().to_canonical_json()
    );
}

#[test]
fn digest_mismatch_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bundle.json");
    std::fs::write(&path, sample().to_canonical_json()).unwrap();
    let err = load(&path, Some("sha256:00"), &env(&[])).unwrap_err();
    assert!(matches!(err, BundleError::DigestMismatch { .. }));
    let good = digest_of(&std::fs::read(&path).unwrap());
    load(&path, Some(&good), &env(&[])).unwrap();
}

#[test]
fn security_problems_name_their_keys() {
    let mut v = serde_json::to_value(sample()).unwrap();
    v["auth"] = serde_json::json!({"providers": {
        "idp": {"type": "jwt", "issuer": "x", "algorithms": ["HS256", "none"],
                "keys": [{"pem": "-----BEGIN PRIVATE KEY-----"}]},
        "keys": {"type": "apiKey"}
    }});
    v["apis"][0]["securitySchemes"] = serde_json::json!({
        "s": {"provider": "nobody", "in": "header", "name": "bad header"}
    });
    v["apis"][0]["operations"][0]["security"] = serde_json::json!([{"s": []}, {"t": []}, {}]);
    v["apis"][0]["operations"][1]["anonymous"] = true.into();
    v["apis"][0]["cors"] = serde_json::json!({"allowOrigins": ["*"], "allowCredentials": true});
    v["apis"][0]["mtls"] = "required".into();
    let b = Bundle::from_json(v.to_string().as_bytes()).unwrap();
    let msg = Config::from_bundle(&b, String::new(), None)
        .unwrap_err()
        .to_string();
    for needle in [
        "`auth.providers.idp.algorithms[0]`: `HS256` needs `hmacSecretFile`",
        "`auth.providers.idp.algorithms[1]`: `none` is not supported",
        "`auth.providers.idp.keys[0]`: holds a private key",
        "`apis[0].securitySchemes.s.provider`: no provider named `nobody`",
        "`apis[0].securitySchemes.s.name`: `bad header` is not a valid header name",
        "`apis[0].operations[0].security[1].t`: no security scheme named `t`",
        "`apis[0].operations[0].security[2]`: an empty requirement would let anyone in",
        "`apis[0].operations[1].anonymous`: anonymous callers are allowed only next to `security` requirements",
        "`apis[0].cors.allowOrigins`: `*` cannot be combined with `allowCredentials`",
        "`listeners.api.tls`: an API asks for client certificates",
    ] {
        assert!(msg.contains(needle), "missing {needle:?} in:\n{msg}");
    }
    // A bundle without security serializes exactly as before (same digest).
    let plain = sample().to_canonical_json();
    let text = String::from_utf8(plain).unwrap();
    assert!(
        !text.contains("security") && !text.contains("\"auth\""),
        "{text}"
    );
}

#[test]
fn upstream_url_checks() {
    assert!(
        parse_target("ws://x")
            .unwrap_err()
            .contains("not supported")
    );
    assert_eq!(parse_target("https://x").unwrap().origin, "https://x/");
    assert!(parse_target("x:80").is_err());
    assert!(
        parse_target("http://u:p@x")
            .unwrap_err()
            .contains("credentials")
    );
    assert_eq!(parse_target("http://x:1/a/b/").unwrap().path_prefix, "/a/b");
}

/// The gateway refuses what `mgw validate` refuses: zero introspection TTLs
/// (`cacheCapacity: 0` is how the cache is switched off).
#[test]
fn zero_introspection_cache_ttls_are_refused() {
    let mut v = serde_json::to_value(sample()).unwrap();
    v["auth"] = serde_json::json!({"providers": {
        "opaque": {"type": "introspection", "endpoint": "https://idp.example/introspect",
                   "clientIdFile": "/id", "clientSecretFile": "/secret",
                   "cacheTtlMs": 0, "negativeCacheTtlMs": 0}
    }});
    let b = Bundle::from_json(v.to_string().as_bytes()).unwrap();
    let msg = Config::from_bundle(&b, String::new(), None)
        .unwrap_err()
        .to_string();
    for needle in [
        "`auth.providers.opaque.cacheTtlMs`: must be greater than 0",
        "`auth.providers.opaque.negativeCacheTtlMs`: must be greater than 0",
    ] {
        assert!(msg.contains(needle), "missing {needle:?} in:\n{msg}");
    }
}

/// `rateLimits.redis.replicas` may be a template (the helm chart sets
/// `MGW_REPLICAS`): resolved at start into the count the fallback divides by.
#[test]
fn redis_replicas_may_be_a_template() {
    let with = |replicas: serde_json::Value| {
        let mut b = sample();
        b.rate_limits = Some(
            serde_json::from_value(serde_json::json!({
                "redis": {"url": "redis://127.0.0.1:6379", "replicas": replicas},
                "policies": {"shared": {"requests": 6, "periodSeconds": 60, "key": "api", "scope": "global"}}
            }))
            .unwrap(),
        );
        b
    };
    let replicas = |b: &Bundle, e: &[(&str, &str)]| {
        Config::from_bundle(b, String::new(), Some(&env(e)))
            .map(|c| c.rate_limits.unwrap().redis.unwrap().replicas)
    };
    let templated = with("${MGW_REPLICAS:-1}".into());
    assert_eq!(replicas(&templated, &[("MGW_REPLICAS", "4")]).unwrap(), 4);
    assert_eq!(replicas(&templated, &[]).unwrap(), 1);
    assert_eq!(replicas(&with(3.into()), &[]).unwrap(), 3);
    // The bundle keeps the template as written.
    let json = serde_json::to_value(&templated).unwrap();
    assert_eq!(
        json["rateLimits"]["redis"]["replicas"],
        "${MGW_REPLICAS:-1}"
    );

    let problems = |r: Result<u64, BundleError>| r.unwrap_err().to_string();
    let e = problems(replicas(&templated, &[("MGW_REPLICAS", "three")]));
    assert!(
        e.contains("rateLimits.redis.replicas")
            && e.contains("`${MGW_REPLICAS:-1}` gives `three`, which is not a whole number"),
        "{e}"
    );
    let e = problems(replicas(&templated, &[("MGW_REPLICAS", "0")]));
    assert!(
        e.contains("rateLimits.redis.replicas") && e.contains("0 is out of range (1..=10000)"),
        "{e}"
    );
    let e = problems(replicas(&with("${MGW_REPLICAS}".into()), &[]));
    assert!(
        e.contains("rateLimits.redis.replicas") && e.contains("MGW_REPLICAS"),
        "{e}"
    );
    // The builder (no environment) checks a default it can see.
    let e =
        Config::from_bundle(&with("${MGW_REPLICAS:-x}".into()), String::new(), None).unwrap_err();
    assert!(e.to_string().contains("which is not a whole number"), "{e}");
    assert!(Config::from_bundle(&with("${MGW_REPLICAS}".into()), String::new(), None).is_ok());
    // Neither a negative number nor another type is a count.
    let e = serde_json::from_value::<RateLimitRedis>(
        serde_json::json!({"url": "redis://h", "replicas": -2}),
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("a whole number or a `${VAR}` template"),
        "{e}"
    );
}

/// `tracing.otlp`: `https://` collectors, `caFile` only with them, and the path
/// each protocol posts to.
#[test]
fn otlp_endpoints_protocols_and_ca_files_are_checked() {
    let with = |otlp: serde_json::Value| {
        let mut b = sample();
        b.tracing = Some(serde_json::from_value(serde_json::json!({"otlp": otlp})).unwrap());
        Config::from_bundle(&b, String::new(), Some(&env(&[("CA", "/ca.pem")])))
    };
    let t = with(serde_json::json!({"endpoint": "https://c:4318/", "caFile": "${CA}"}))
        .unwrap()
        .tracing
        .unwrap();
    assert_eq!(t.traces_url, "https://c:4318/v1/traces");
    assert_eq!(t.ca_file.as_deref(), Some("/ca.pem"));
    let t = with(serde_json::json!({"endpoint": "http://c:4317", "protocol": "grpc"}))
        .unwrap()
        .tracing
        .unwrap();
    assert_eq!(t.protocol, OtlpProtocol::Grpc);
    assert_eq!(
        t.traces_url,
        "http://c:4317/opentelemetry.proto.collector.trace.v1.TraceService/Export"
    );
    let e = with(serde_json::json!({"endpoint": "http://c:4318", "caFile": "/ca.pem"}))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("tracing.otlp.caFile") && e.contains("only used with an `https://` endpoint"),
        "{e}"
    );
    let e = with(serde_json::json!({"endpoint": "grpc://c:4317"}))
        .unwrap_err()
        .to_string();
    assert!(e.contains("tracing.otlp.endpoint"), "{e}");
    // Problems in `tracing` refuse the bundle like any other.
    let mut b = sample();
    b.tracing = Some(
        serde_json::from_value(
            serde_json::json!({"otlp": {"endpoint": "http://c:4318"}, "sampleRatio": 2.0}),
        )
        .unwrap(),
    );
    let e = Config::from_bundle(&b, String::new(), Some(&env(&[])))
        .unwrap_err()
        .to_string();
    assert!(e.contains("tracing.sampleRatio"), "{e}");
}
