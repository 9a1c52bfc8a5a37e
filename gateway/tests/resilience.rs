//! Upstream resilience through the in-process gateway: the circuit breaker's
//! cycle, URL ejection (passive and active), the concurrency cap and the retry
//! budget, against real backends whose health the test switches.

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use http::{Request, Response, StatusCode};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use support::*;
use tokio::net::TcpListener;

/// A backend the test can make fail: every API request answers `503` while
/// `failing`; `/health` answers `503` while `unhealthy`.
struct Switchable {
    addr: SocketAddr,
    failing: Arc<AtomicBool>,
    unhealthy: Arc<AtomicBool>,
    hits: Arc<AtomicUsize>,
}

async fn switchable() -> Switchable {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let failing = Arc::new(AtomicBool::new(false));
    let unhealthy = Arc::new(AtomicBool::new(false));
    let hits = Arc::new(AtomicUsize::new(0));
    let (f, u, h) = (failing.clone(), unhealthy.clone(), hits.clone());
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (f, u, h) = (f.clone(), u.clone(), h.clone());
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                    let (f, u, h) = (f.clone(), u.clone(), h.clone());
                    async move {
                        let bad = if req.uri().path() == "/health" {
                            u.load(Ordering::SeqCst)
                        } else {
                            h.fetch_add(1, Ordering::SeqCst);
                            f.load(Ordering::SeqCst)
                        };
                        let mut res = Response::new(full(if bad { "down" } else { "up" }));
                        if bad {
                            *res.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
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
    Switchable {
        addr,
        failing,
        unhealthy,
        hits,
    }
}

fn with_upstream(urls: &[String], upstream: Value) -> Value {
    let mut v = bundle_json(urls);
    for (k, val) in upstream.as_object().unwrap() {
        v["upstreams"]["pets"][k] = val.clone();
    }
    v
}

async fn metrics(gw: &Gw) -> String {
    let r = get(&format!("http://{}/metrics", gw.admin)).await;
    String::from_utf8_lossy(&r.body).into_owned()
}

#[tokio::test]
async fn circuit_breaker_opens_answers_fast_half_opens_and_closes() {
    let s = switchable().await;
    let gw = start(with_upstream(
        &[format!("http://{}", s.addr)],
        json!({
            "circuitBreaker": {"consecutiveFailures": 3, "failureRatePercent": 0, "openMs": 300},
            "passiveHealth": {"enabled": false}
        }),
    ))
    .await;
    let url = gw.url("/pets-api/v1/pets");
    assert_eq!(get(&url).await.status, 200);

    s.failing.store(true, Ordering::SeqCst);
    for _ in 0..3 {
        // The upstream's own 503s pass through while the circuit is closed.
        let r = get(&url).await;
        assert_eq!(r.status, 503);
        assert_eq!(&r.body[..], b"down");
    }
    let hits = s.hits.load(Ordering::SeqCst);
    // Open: answered by the gateway, the upstream is not asked.
    for _ in 0..5 {
        let r = get(&url).await;
        assert_eq!(r.status, 503);
        assert_eq!(r.json()["type"], "https://mgw.dev/problems/circuit_open");
        let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!(retry >= 1);
    }
    assert_eq!(s.hits.load(Ordering::SeqCst), hits);
    assert!(
        metrics(&gw)
            .await
            .contains(r#"mgw_upstream_circuit_state{upstream="pets"} 1"#)
    );

    // Half-open after `openMs`: one probe; it fails, the circuit opens again.
    // Until then every request is still answered by the gateway.
    let rejected = AtomicUsize::new(5);
    let probed = eventually(Duration::from_secs(10), || async {
        let r = get(&url).await;
        if &r.body[..] == b"down" {
            return true;
        }
        assert_eq!(r.json()["type"], "https://mgw.dev/problems/circuit_open");
        rejected.fetch_add(1, Ordering::SeqCst);
        false
    })
    .await;
    assert!(probed, "the circuit never let a probe through");
    assert_eq!(s.hits.load(Ordering::SeqCst), hits + 1);
    assert_eq!(
        get(&url).await.json()["type"],
        "https://mgw.dev/problems/circuit_open"
    );
    rejected.fetch_add(1, Ordering::SeqCst);

    // The upstream recovers: the next probe succeeds and closes the circuit.
    s.failing.store(false, Ordering::SeqCst);
    let closed = eventually(Duration::from_secs(10), || async {
        let r = get(&url).await;
        if r.status == 200 {
            assert_eq!(&r.body[..], b"up");
            return true;
        }
        assert_eq!(r.json()["type"], "https://mgw.dev/problems/circuit_open");
        rejected.fetch_add(1, Ordering::SeqCst);
        false
    })
    .await;
    assert!(closed, "the recovered upstream never closed the circuit");
    for _ in 0..5 {
        let r = get(&url).await;
        assert_eq!(r.status, 200);
        assert_eq!(&r.body[..], b"up");
    }
    let text = metrics(&gw).await;
    assert!(
        text.contains(r#"mgw_upstream_circuit_state{upstream="pets"} 0"#),
        "{text}"
    );
    assert!(
        text.contains(r#"mgw_upstream_circuit_transitions_total{upstream="pets",state="open"} 2"#),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            r#"mgw_upstream_rejected_requests_total{{upstream="pets",reason="circuit_open"}} {}"#,
            rejected.load(Ordering::SeqCst)
        )),
        "{text}"
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn failure_rate_opens_the_circuit() {
    let s = switchable().await;
    let gw = start(with_upstream(
        &[format!("http://{}", s.addr)],
        json!({
            "circuitBreaker": {"consecutiveFailures": 0, "failureRatePercent": 50,
                               "minRequests": 10, "windowMs": 10000, "openMs": 60000},
            "passiveHealth": {"enabled": false}
        }),
    ))
    .await;
    let url = gw.url("/pets-api/v1/pets");
    // Alternate success and failure: 50 % once 10 requests are in the window.
    let mut open_after = None;
    for i in 0..20 {
        s.failing.store(i % 2 == 1, Ordering::SeqCst);
        let r = get(&url).await;
        if r.status == 503 && r.body.starts_with(b"{") {
            open_after = Some(i);
            break;
        }
    }
    assert_eq!(open_after, Some(10));
    gw.shutdown().await;
}

#[tokio::test]
async fn an_ejected_url_gets_no_traffic_until_it_is_back() {
    let a = switchable().await;
    let b = switchable().await;
    let gw = start(with_upstream(
        &[format!("http://{}", a.addr), format!("http://{}", b.addr)],
        json!({
            "passiveHealth": {"consecutiveFailures": 2, "ejectionMs": 500},
            "circuitBreaker": {"enabled": false}
        }),
    ))
    .await;
    let url = gw.url("/pets-api/v1/pets");
    a.failing.store(true, Ordering::SeqCst);
    // Round robin: two failures on `a` within four requests eject it.
    for _ in 0..4 {
        get(&url).await;
    }
    let a_hits = a.hits.load(Ordering::SeqCst);
    assert_eq!(a_hits, 2);
    for _ in 0..20 {
        let r = get(&url).await;
        assert_eq!(r.status, 200);
    }
    assert_eq!(
        a.hits.load(Ordering::SeqCst),
        a_hits,
        "an ejected URL got traffic"
    );
    assert!(metrics(&gw).await.contains(&format!(
        "mgw_upstream_target_healthy{{upstream=\"pets\",target=\"{}\"}} 0",
        a.addr
    )));

    // Back after the ejection time: `a` gets traffic again, and then its
    // round-robin share.
    a.failing.store(false, Ordering::SeqCst);
    let back = eventually(Duration::from_secs(10), || async {
        assert_eq!(get(&url).await.status, 200);
        a.hits.load(Ordering::SeqCst) > a_hits
    })
    .await;
    assert!(back, "the ejected URL never came back");
    assert_eq!(a.hits.load(Ordering::SeqCst), a_hits + 1);
    for _ in 0..4 {
        assert_eq!(get(&url).await.status, 200);
    }
    assert_eq!(a.hits.load(Ordering::SeqCst), a_hits + 3);
    gw.shutdown().await;
}

#[tokio::test]
async fn active_health_checks_take_a_url_out_and_bring_it_back() {
    let a = switchable().await;
    let b = switchable().await;
    let gw = start(with_upstream(
        &[format!("http://{}", a.addr), format!("http://{}", b.addr)],
        json!({
            "healthCheck": {"path": "/health", "intervalMs": 50, "timeoutMs": 200,
                            "healthyThreshold": 1, "unhealthyThreshold": 1}
        }),
    ))
    .await;
    let url = gw.url("/pets-api/v1/pets");
    a.unhealthy.store(true, Ordering::SeqCst);
    let out = eventually(Duration::from_secs(5), || async {
        metrics(&gw).await.contains(&format!(
            "mgw_upstream_target_healthy{{upstream=\"pets\",target=\"{}\"}} 0",
            a.addr
        ))
    })
    .await;
    assert!(out, "the failing health check never took the URL out");
    let a_hits = a.hits.load(Ordering::SeqCst);
    for _ in 0..10 {
        assert_eq!(get(&url).await.status, 200);
    }
    assert_eq!(a.hits.load(Ordering::SeqCst), a_hits);

    a.unhealthy.store(false, Ordering::SeqCst);
    let back = eventually(Duration::from_secs(5), || async {
        metrics(&gw).await.contains(&format!(
            "mgw_upstream_target_healthy{{upstream=\"pets\",target=\"{}\"}} 1",
            a.addr
        ))
    })
    .await;
    assert!(back, "the passing health check never brought the URL back");
    for _ in 0..10 {
        assert_eq!(get(&url).await.status, 200);
    }
    assert_eq!(a.hits.load(Ordering::SeqCst), a_hits + 5);
    gw.shutdown().await;
}

#[tokio::test]
async fn the_concurrency_cap_answers_503() {
    let b = backend("a").await;
    let gw = start(with_upstream(
        &[format!("http://{}", b.addr)],
        json!({"maxConcurrentRequests": 2}),
    ))
    .await;
    let slow = gw.url("/pets-api/v1/slow/800");
    let in_flight: Vec<_> = (0..2)
        .map(|_| {
            let slow = slow.clone();
            tokio::spawn(async move { get(&slow).await.status })
        })
        .collect();
    // Wait until both are at the backend.
    assert!(
        eventually(Duration::from_secs(5), || async {
            b.hits.load(Ordering::SeqCst) == 2
        })
        .await,
        "the slow requests never arrived"
    );
    let r = get(&gw.url("/pets-api/v1/pets")).await;
    assert_eq!(r.status, 503);
    assert_eq!(
        r.json()["type"],
        "https://mgw.dev/problems/upstream_overloaded"
    );
    assert_eq!(r.headers["retry-after"], "1");
    assert_eq!(b.hits.load(Ordering::SeqCst), 2);
    for t in in_flight {
        assert_eq!(t.await.unwrap(), 200);
    }
    // Slots are released when the response bodies end.
    assert_eq!(get(&gw.url("/pets-api/v1/pets")).await.status, 200);
    assert!(metrics(&gw).await.contains(
        r#"mgw_upstream_rejected_requests_total{upstream="pets",reason="overloaded"} 1"#
    ));
    gw.shutdown().await;
}

#[tokio::test]
async fn an_empty_retry_budget_stops_retries() {
    let b = backend("b").await;
    let dead = dead_port().await;
    let urls = [format!("http://{dead}"), format!("http://{}", b.addr)];
    // Failover retries a refused connection on the next URL, while the budget lasts.
    let gw = start(with_upstream(
        &urls,
        json!({"loadBalancing": "failover", "passiveHealth": {"enabled": false}}),
    ))
    .await;
    assert_eq!(get(&gw.url("/pets-api/v1/pets")).await.status, 200);
    gw.shutdown().await;

    let gw = start(with_upstream(
        &urls,
        json!({
            "loadBalancing": "failover",
            "passiveHealth": {"enabled": false},
            "retry": {"attempts": 1, "budgetPercent": 0, "minRetriesPerSecond": 0}
        }),
    ))
    .await;
    assert_eq!(get(&gw.url("/pets-api/v1/pets")).await.status, 502);
    assert_eq!(b.hits.load(Ordering::SeqCst), 1);
    assert!(
        metrics(&gw)
            .await
            .contains(r#"mgw_upstream_retries_total{upstream="pets",reason="budget_exhausted"} 1"#)
    );
    gw.shutdown().await;
}
