//! Rate limiting through the in-process gateway against a real backend: counts
//! over time across worker threads, keys, levels, headers, the trusted-proxy
//! client IP, and the limiter's memory bound.

mod support;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use http::{HeaderMap, Request, StatusCode};
use mgw_gateway::bundle::{self, Bundle, Config};
use mgw_gateway::metrics::Metrics;
use mgw_gateway::ratelimit::{Caller, RateLimiter, Verdict};
use serde_json::{Value, json};
use support::*;

/// The test bundle with `policies` and the API / `getPet` operation attached.
fn limited(
    b: &Backend,
    policies: Value,
    api: Option<&str>,
    get_pet: Option<&str>,
    extra: Value,
) -> Value {
    let mut v = bundle_json(&[format!("http://{}", b.addr)]);
    v["rateLimits"] = json!({ "policies": policies });
    if let Some(p) = api {
        v["apis"][0]["rateLimit"] = p.into();
    }
    if let Some(p) = get_pet {
        assert_eq!(v["apis"][0]["operations"][2]["id"], "getPet");
        v["apis"][0]["operations"][2]["rateLimit"] = p.into();
    }
    if let Value::Object(extra) = extra {
        for (k, val) in extra {
            if k == "rateLimits" {
                for (rk, rv) in val.as_object().unwrap() {
                    v["rateLimits"][rk] = rv.clone();
                }
            } else {
                v[k] = val;
            }
        }
    }
    v
}

async fn get_with(url: &str, headers: &[(&str, &str)]) -> Reply {
    let mut req = Request::get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    send(req.body(full("")).unwrap()).await
}

// ---------------------------------------------------------------------------
// A strict reader for the structured fields the draft uses (RFC 8941 lists of
// string items with integer parameters), so the test fails on any syntax slip.
// ---------------------------------------------------------------------------

#[derive(Debug, PartialEq)]
struct Item {
    name: String,
    params: BTreeMap<String, i64>,
}

fn parse_sf_list(text: &str) -> Vec<Item> {
    let b = text.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    let ows = |i: &mut usize| {
        while *i < b.len() && (b[*i] == b' ' || b[*i] == b'\t') {
            *i += 1;
        }
    };
    loop {
        assert_eq!(b.get(i), Some(&b'"'), "item must be an sf-string: {text:?}");
        i += 1;
        let start = i;
        while b[i] != b'"' {
            assert!(
                (0x20..0x7f).contains(&b[i]) && b[i] != b'\\',
                "bad string char in {text:?}"
            );
            i += 1;
        }
        let name = text[start..i].to_owned();
        i += 1;
        let mut params = BTreeMap::new();
        while b.get(i) == Some(&b';') {
            i += 1;
            let ks = i;
            assert!(b[i].is_ascii_lowercase(), "bad key in {text:?}");
            while i < b.len() && (b[i].is_ascii_lowercase() || b[i].is_ascii_digit()) {
                i += 1;
            }
            let key = text[ks..i].to_owned();
            assert_eq!(b.get(i), Some(&b'='), "param needs a value: {text:?}");
            i += 1;
            let vs = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            assert!(
                i > vs && i - vs <= 15,
                "param must be an sf-integer: {text:?}"
            );
            params.insert(key, text[vs..i].parse().unwrap());
        }
        out.push(Item { name, params });
        ows(&mut i);
        if i == b.len() {
            return out;
        }
        assert_eq!(b[i], b',', "items are separated by commas: {text:?}");
        i += 1;
        ows(&mut i);
    }
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name)
        .unwrap_or_else(|| panic!("missing `{name}` in {h:?}"))
        .to_str()
        .unwrap()
}

fn int(h: &HeaderMap, name: &str) -> i64 {
    header(h, name)
        .parse()
        .unwrap_or_else(|_| panic!("`{name}` is not an integer: {h:?}"))
}

// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_clients_get_the_policy_rate_across_worker_threads() {
    let b = backend("a").await;
    let gw = start(limited(
        &b,
        json!({"hundred": {"requests": 100, "periodSeconds": 1, "burst": 10, "key": "api"}}),
        Some("hundred"),
        None,
        json!({}),
    ))
    .await;
    let url = gw.url("/pets-api/v1/pets");
    let started = Instant::now();
    let clients: Vec<_> = (0..16)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move {
                let c = client();
                let (mut accepted, mut refused) = (0u64, 0u64);
                // (first send, first answer, last send, last answer)
                let mut span: Option<(Instant, Instant, Instant, Instant)> = None;
                while started.elapsed() < Duration::from_millis(2_500) {
                    let sent = Instant::now();
                    let res = c
                        .request(Request::get(&url).body(full("")).unwrap())
                        .await
                        .unwrap();
                    let answered = Instant::now();
                    match res.status() {
                        StatusCode::OK => accepted += 1,
                        StatusCode::TOO_MANY_REQUESTS => refused += 1,
                        other => panic!("unexpected {other}"),
                    };
                    let first = span.map_or((sent, answered), |s| (s.0, s.1));
                    span = Some((first.0, first.1, sent, answered));
                }
                (accepted, refused, span.unwrap())
            })
        })
        .collect();
    let (mut accepted, mut refused) = (0u64, 0u64);
    let (mut first_send, mut first_answer) = (None::<Instant>, None::<Instant>);
    let (mut last_send, mut last_answer) = (started, started);
    for c in clients {
        let (a, r, (fs, fa, ls, la)) = c.await.unwrap();
        accepted += a;
        refused += r;
        first_send = Some(first_send.map_or(fs, |x| x.min(fs)));
        first_answer = Some(first_answer.map_or(fa, |x| x.min(fa)));
        last_send = last_send.max(ls);
        last_answer = last_answer.max(la);
    }
    // Measured, not asserted: every decision fell between the first send and the
    // last answer, and the policy allows `rate × span + burst` in a span. The
    // inner span (first answer to last send) bounds it from below.
    let outer = last_answer
        .duration_since(first_send.unwrap())
        .as_secs_f64();
    let inner = last_send
        .duration_since(first_answer.unwrap())
        .as_secs_f64();
    let (most, least) = (100.0 * outer + 10.0 + 1.0, 100.0 * inner + 10.0);
    println!(
        "accepted {accepted} of {} between {inner:.3}s and {outer:.3}s; the policy allows {least:.1}..{most:.1}",
        accepted + refused
    );
    assert!(refused > 0, "the clients never exceeded the policy");
    let accepted = accepted as f64;
    assert!(
        accepted <= most && accepted >= least * 0.97 - 2.0,
        "accepted {accepted}, the policy allows {least:.1}..{most:.1} (refused {refused})"
    );
    assert_eq!(b.hits.load(Ordering::SeqCst) as f64, accepted);
    gw.shutdown().await;
}

#[tokio::test]
async fn keys_keep_separate_budgets() {
    let b = backend("a").await;
    let gw = start(limited(
        &b,
        json!({"tenant": {"requests": 2, "periodSeconds": 60, "key": {"header": "X-Tenant"}}}),
        Some("tenant"),
        None,
        json!({}),
    ))
    .await;
    let url = gw.url("/pets-api/v1/pets");
    for _ in 0..2 {
        assert_eq!(get_with(&url, &[("x-tenant", "a")]).await.status, 200);
    }
    assert_eq!(get_with(&url, &[("x-tenant", "a")]).await.status, 429);
    // Another tenant has its own budget.
    assert_eq!(get_with(&url, &[("x-tenant", "b")]).await.status, 200);
    // Without the header: the client IP's budget, not tenant `a`'s.
    assert_eq!(get(&url).await.status, 200);
    gw.shutdown().await;
}

#[tokio::test]
async fn api_and_operation_policies_both_apply() {
    let b = backend("a").await;
    let gw = start(limited(
        &b,
        json!({
            "api5": {"requests": 5, "periodSeconds": 60, "key": "clientIp"},
            "op2": {"requests": 2, "periodSeconds": 60, "key": "clientIp"}
        }),
        Some("api5"),
        Some("op2"),
        json!({}),
    ))
    .await;
    let pet = gw.url("/pets-api/v1/pets/1");
    let list = gw.url("/pets-api/v1/pets");
    let first = get(&pet).await;
    assert_eq!(first.status, 200);
    // An allowed request shows both scopes' state, API first.
    let state = parse_sf_list(header(&first.headers, "ratelimit"));
    let state: Vec<_> = state
        .iter()
        .map(|s| (s.name.as_str(), s.params["r"]))
        .collect();
    assert_eq!(state, [("api5", 4), ("op2", 1)]);
    assert_eq!(get(&pet).await.status, 200);
    let r = get(&pet).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.json()["violated-policies"], json!(["op2"]));
    // Both policies are advertised on the operation.
    let policies = parse_sf_list(header(&r.headers, "ratelimit-policy"));
    let names: Vec<_> = policies.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["api5", "op2"]);
    // The refused request did not count against the API's budget: 3 more pass.
    for _ in 0..3 {
        let r = get(&list).await;
        assert_eq!(r.status, 200);
    }
    let r = get(&list).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.json()["violated-policies"], json!(["api5"]));
    // The API's budget covers the operation too.
    assert_eq!(get(&pet).await.status, 429);
    assert_eq!(b.hits.load(Ordering::SeqCst), 5);
    gw.shutdown().await;
}

#[tokio::test]
async fn responses_carry_correct_parseable_headers() {
    let b = backend("a").await;
    let gw = start(limited(
        &b,
        json!({"gold": {"requests": 3, "periodSeconds": 60, "key": "clientIp"}}),
        Some("gold"),
        None,
        json!({}),
    ))
    .await;
    let url = gw.url("/pets-api/v1/pets");
    for remaining in [2, 1, 0] {
        let r = get(&url).await;
        assert_eq!(r.status, 200);
        let policy = parse_sf_list(header(&r.headers, "ratelimit-policy"));
        assert_eq!(
            policy,
            [Item {
                name: "gold".into(),
                params: BTreeMap::from([("q".into(), 3), ("w".into(), 60)])
            }]
        );
        let state = parse_sf_list(header(&r.headers, "ratelimit"));
        assert_eq!(state.len(), 1);
        assert_eq!(state[0].name, "gold");
        assert_eq!(state[0].params["r"], remaining);
        // Fully replenished after (3 - remaining) × 20 s.
        let t = state[0].params["t"];
        assert!((1..=60).contains(&t), "{t}");
        assert_eq!(int(&r.headers, "x-ratelimit-limit"), 3);
        assert_eq!(int(&r.headers, "x-ratelimit-remaining"), remaining);
        assert_eq!(int(&r.headers, "x-ratelimit-reset"), t);
    }
    let r = get(&url).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        header(&r.headers, "content-type"),
        "application/problem+json"
    );
    let retry = int(&r.headers, "retry-after");
    // One request every 20 s: the next is allowed in at most 20 s.
    assert!((1..=20).contains(&retry), "{retry}");
    let state = parse_sf_list(header(&r.headers, "ratelimit"));
    assert_eq!(state[0].params["r"], 0);
    assert!(state[0].params["t"] >= retry);
    assert_eq!(int(&r.headers, "x-ratelimit-remaining"), 0);
    parse_sf_list(header(&r.headers, "ratelimit-policy"));
    assert!(r.headers.contains_key("x-request-id"));
    let body = r.json();
    assert_eq!(
        body["type"],
        "https://iana.org/assignments/http-problem-types#quota-exceeded"
    );
    assert_eq!(body["status"], 429);
    assert_eq!(body["violated-policies"], json!(["gold"]));
    assert_eq!(b.hits.load(Ordering::SeqCst), 3);

    // Outcomes are in the metrics, by policy and scope.
    let m = get(&format!("http://{}/metrics", gw.admin)).await;
    let text = String::from_utf8_lossy(&m.body);
    assert!(
        text.contains(
            r#"mgw_ratelimit_requests_total{policy="gold",scope="api:pets",outcome="allowed"} 3"#
        ),
        "{text}"
    );
    assert!(
        text.contains(
            r#"mgw_ratelimit_requests_total{policy="gold",scope="api:pets",outcome="limited"} 1"#
        ),
        "{text}"
    );
    assert!(text.contains("mgw_ratelimit_key_capacity "), "{text}");
    gw.shutdown().await;
}

#[tokio::test]
async fn headers_can_be_turned_off() {
    let b = backend("a").await;
    let gw = start(limited(
        &b,
        json!({"one": {"requests": 1, "periodSeconds": 60}}),
        Some("one"),
        None,
        json!({"rateLimits": {"headers": {"ietf": false, "xRateLimit": false}}}),
    ))
    .await;
    let url = gw.url("/pets-api/v1/pets");
    let r = get(&url).await;
    assert_eq!(r.status, 200);
    for h in ["ratelimit", "ratelimit-policy", "x-ratelimit-limit"] {
        assert!(!r.headers.contains_key(h), "{h}: {:?}", r.headers);
    }
    let r = get(&url).await;
    assert_eq!(r.status, 429);
    assert!(r.headers.contains_key("retry-after"));
    assert!(!r.headers.contains_key("ratelimit"));
    gw.shutdown().await;
}

#[tokio::test]
async fn trusted_proxies_decide_whose_forwarded_for_counts() {
    let b = backend("a").await;
    let policies = json!({"ip": {"requests": 1, "periodSeconds": 60, "key": "clientIp"}});
    // The test client connects from 127.0.0.1: a trusted proxy here.
    let gw = start(limited(
        &b,
        policies.clone(),
        Some("ip"),
        None,
        json!({"trustedProxies": ["127.0.0.0/8"]}),
    ))
    .await;
    let url = gw.url("/pets-api/v1/pets");
    let from = |ip: &'static str| {
        let url = url.clone();
        async move { get_with(&url, &[("x-forwarded-for", ip)]).await }
    };
    assert_eq!(from("203.0.113.1").await.status, 200);
    assert_eq!(from("203.0.113.1").await.status, 429);
    assert_eq!(from("203.0.113.2").await.status, 200);
    // A spoofed entry left of the real client does not help.
    assert_eq!(from("198.51.100.7, 203.0.113.2").await.status, 429);
    gw.shutdown().await;

    // An untrusted peer: the header is ignored, everyone is 127.0.0.1.
    let gw = start(limited(
        &b,
        policies,
        Some("ip"),
        None,
        json!({"trustedProxies": ["10.0.0.0/8"]}),
    ))
    .await;
    let url = gw.url("/pets-api/v1/pets");
    let from = |ip: &'static str| {
        let url = url.clone();
        async move { get_with(&url, &[("x-forwarded-for", ip)]).await }
    };
    assert_eq!(from("203.0.113.1").await.status, 200);
    assert_eq!(from("203.0.113.2").await.status, 429);
    gw.shutdown().await;
}

#[tokio::test]
async fn unauthenticated_callers_share_the_default_policy_by_client_ip() {
    let b = backend("a").await;
    let gw = start(limited(
        &b,
        json!({
            "anonymous": {"requests": 2, "periodSeconds": 60},
            "api": {"requests": 100, "periodSeconds": 60, "key": "api"}
        }),
        Some("api"),
        None,
        json!({
            "rateLimits": {"unauthenticated": "anonymous"},
            "trustedProxies": ["127.0.0.1"]
        }),
    ))
    .await;
    let list = gw.url("/pets-api/v1/pets");
    let pet = gw.url("/pets-api/v1/pets/3");
    let a = [("x-forwarded-for", "203.0.113.1")];
    // One budget for the client across operations.
    assert_eq!(get_with(&list, &a).await.status, 200);
    let r = get_with(&pet, &a).await;
    assert_eq!(r.status, 200);
    let names: Vec<_> = parse_sf_list(header(&r.headers, "ratelimit"))
        .into_iter()
        .map(|i| i.name)
        .collect();
    assert_eq!(names, ["anonymous", "api"]);
    let r = get_with(&list, &a).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.json()["violated-policies"], json!(["anonymous"]));
    // Another client is unaffected.
    assert_eq!(
        get_with(&list, &[("x-forwarded-for", "203.0.113.2")])
            .await
            .status,
        200
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn refused_requests_are_recorded_in_analytics() {
    let b = backend("a").await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    let gw = start(limited(
        &b,
        json!({"one": {"requests": 1, "periodSeconds": 60}}),
        Some("one"),
        None,
        json!({"analytics": {"sink": "file", "path": path.to_str().unwrap()}}),
    ))
    .await;
    let url = gw.url("/pets-api/v1/pets");
    assert_eq!(get(&url).await.status, 200);
    assert_eq!(get(&url).await.status, 429);
    gw.shutdown().await;
    let text = std::fs::read_to_string(&path).unwrap();
    let events: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 2, "{text}");
    assert_eq!(
        events[0]["rateLimit"],
        json!({"outcome": "allowed", "policy": "one", "remaining": 0})
    );
    assert_eq!(
        events[1]["rateLimit"],
        json!({"outcome": "limited", "policy": "one", "remaining": 0})
    );
    assert_eq!(events[1]["status"], 429);
    assert_eq!(events[1]["error"], "rate_limited");
}

#[test]
fn a_million_client_keys_keep_the_limiter_under_its_cap() {
    let bundle: Bundle = serde_json::from_value(json!({
        "schemaVersion": 1,
        "gateway": {"name": "t", "version": "1"},
        "upstreams": {"u": {"urls": ["http://127.0.0.1:9"]}},
        "rateLimits": {
            "policies": {"ip": {"requests": 10, "periodSeconds": 3600, "key": "clientIp"}},
            "maxKeys": 100000
        },
        "apis": [{"name": "a", "basePath": "/", "upstream": "u", "rateLimit": "ip",
                  "operations": [{"id": "x", "method": "GET", "path": "/x"}]}]
    }))
    .unwrap();
    let env = BTreeMap::<String, String>::new();
    let config = Config::from_bundle(&bundle, bundle::digest_of(b"x"), Some(&env)).unwrap();
    let metrics = Arc::new(Metrics::new(&config));
    let mut limiter = RateLimiter::new(&config, &metrics).unwrap().unwrap();
    let route = limiter.route(&config, &config.routes[0]);
    let headers = HeaderMap::new();
    let now = Instant::now();
    let mut allowed = 0u64;
    for i in 0..1_000_000u32 {
        let caller = Caller {
            consumer: None,
            client_ip: IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)),
            headers: &headers,
            claims: None,
        };
        // Local policies decide without waiting.
        if let Some(Verdict::Allowed(_)) = limiter.check(&route, &caller, now).now_or_never() {
            allowed += 1;
        }
    }
    // Every new key gets its burst: nothing is refused, nothing is shared.
    assert_eq!(allowed, 1_000_000);
    let stats = limiter.stats();
    assert_eq!(stats.capacity, 131_072, "{stats:?}");
    assert!(stats.keys <= stats.capacity, "{stats:?}");
    assert!(stats.bytes <= stats.max_bytes, "{stats:?}");
    assert!(stats.max_bytes <= 2 * 1024 * 1024 + 64 * 1024, "{stats:?}");
    assert!(stats.evictions >= 1_000_000 - stats.capacity, "{stats:?}");
    // The metrics report the same counters.
    let text = metrics.encode();
    assert!(
        text.contains(&format!("mgw_ratelimit_keys {}", stats.keys)),
        "{text}"
    );
    assert!(
        text.contains(&format!("mgw_ratelimit_memory_bytes {}", stats.bytes)),
        "{text}"
    );
    println!(
        "{} keys held in {} bytes ({} bytes a key), {} evictions",
        stats.keys,
        stats.bytes,
        stats.bytes / stats.keys.max(1),
        stats.evictions
    );
}
