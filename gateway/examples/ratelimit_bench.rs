//! Measures the rate limiter alone: nanoseconds per check (hot keys, a million
//! cold keys, two threads on one key set) and bytes of state per key as the store
//! fills. Not a test; it prints numbers for BENCHMARKS.md.
//!
//! ```text
//! cargo run --profile bench-fast -p mgw-gateway --example ratelimit_bench
//! ```

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Instant;

use futures_util::FutureExt;
use http::HeaderMap;
use mgw_gateway::bundle::{self, Bundle, Config};
use mgw_gateway::metrics::Metrics;
use mgw_gateway::ratelimit::{Caller, RateLimiter, RouteLimits, Verdict};

fn limiter(max_keys: u64, requests: u64, period: u64) -> (RateLimiter, RouteLimits, Arc<Metrics>) {
    let bundle: Bundle = serde_json::from_value(serde_json::json!({
        "schemaVersion": 1,
        "gateway": {"name": "bench", "version": "1"},
        "upstreams": {"u": {"urls": ["http://127.0.0.1:9"]}},
        "rateLimits": {
            "policies": {"ip": {"requests": requests, "periodSeconds": period, "key": "clientIp"}},
            "maxKeys": max_keys
        },
        "apis": [{"name": "a", "basePath": "/", "upstream": "u", "rateLimit": "ip",
                  "operations": [{"id": "x", "method": "GET", "path": "/x"}]}]
    }))
    .expect("bundle");
    let env = BTreeMap::<String, String>::new();
    let config = Config::from_bundle(&bundle, bundle::digest_of(b""), Some(&env)).expect("valid");
    let metrics = Arc::new(Metrics::new(&config));
    let mut rl = RateLimiter::new(&config, &metrics)
        .expect("redis")
        .expect("limiter");
    let route = rl.route(&config, &config.routes[0]);
    (rl, route, metrics)
}

fn run(rl: &RateLimiter, route: &RouteLimits, keys: impl Iterator<Item = u32>) -> (u64, u64) {
    let headers = HeaderMap::new();
    let (mut n, mut allowed) = (0, 0);
    // The pipeline passes the request's start time; reading the clock is not
    // part of the limiter's cost, so it is read once per 1,024 checks here.
    let mut now = Instant::now();
    for k in keys {
        let caller = Caller {
            consumer: None,
            client_ip: IpAddr::V4(Ipv4Addr::from(k)),
            headers: &headers,
            claims: None,
        };
        if let Some(Verdict::Allowed(_)) = rl.check(route, &caller, now).now_or_never() {
            allowed += 1;
        }
        n += 1;
        if n % 1024 == 0 {
            now = Instant::now();
        }
    }
    (n, allowed)
}

fn main() {
    // Hot: 1,000 clients, 10 M checks, nearly all allowed.
    let (rl, route, _m) = limiter(1 << 20, 1_000_000_000, 1);
    let t = Instant::now();
    let (n, _) = run(&rl, &route, (0..10_000_000u32).map(|i| i % 1_000));
    let hot = t.elapsed().as_nanos() as f64 / n as f64;
    println!("check, 1k hot keys:        {hot:6.1} ns");
    if std::env::args().any(|a| a == "--hot-only") {
        return;
    }

    // Cold: a million distinct clients, each seen once (insert path, cache misses).
    let (rl, route, _m) = limiter(1 << 21, 1_000_000_000, 1);
    let t = Instant::now();
    let (n, _) = run(&rl, &route, 0..1_000_000u32);
    let cold = t.elapsed().as_nanos() as f64 / n as f64;
    println!("check, 1M new keys:        {cold:6.1} ns");

    // Contention: two threads on the same 1k keys.
    let (rl, route, _m) = limiter(1 << 20, 1_000_000_000, 1);
    let shared = Arc::new((rl, route));
    let t = Instant::now();
    let threads: Vec<_> = (0..2u32)
        .map(|id| {
            let s = shared.clone();
            std::thread::spawn(move || {
                run(&s.0, &s.1, (0..5_000_000u32).map(move |i| (i + id) % 1_000)).0
            })
        })
        .collect();
    let n: u64 = threads.into_iter().map(|h| h.join().expect("thread")).sum();
    let both = t.elapsed().as_nanos() as f64 / n as f64;
    println!("check, 2 threads, 1k keys: {both:6.1} ns (wall time per check)");

    // Memory: live keys (1 request per hour, so none expire) at several counts.
    for count in [1_000u32, 10_000, 100_000, 1_000_000] {
        let (rl, route, _m) = limiter(1 << 22, 1, 3600);
        let headers = HeaderMap::new();
        for k in 0..count {
            let caller = Caller {
                consumer: None,
                client_ip: IpAddr::V4(Ipv4Addr::from(k)),
                headers: &headers,
                claims: None,
            };
            let _ = rl.check(&route, &caller, Instant::now()).now_or_never();
        }
        let s = rl.stats();
        println!(
            "{count:>9} live keys: {:>10} bytes, {:5.1} bytes/key, {} evictions",
            s.bytes,
            s.bytes as f64 / s.keys as f64,
            s.evictions
        );
    }

    // At the cap: a million keys through a 131,072-key store.
    let (rl, route, _m) = limiter(100_000, 1, 3600);
    let _ = run(&rl, &route, 0..1_000_000u32);
    let s = rl.stats();
    println!(
        "cap {}: {} keys in {} bytes ({:.1} bytes/key), {} evictions",
        s.capacity,
        s.keys,
        s.bytes,
        s.bytes as f64 / s.keys as f64,
        s.evictions
    );
}
