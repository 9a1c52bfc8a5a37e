//! An image built from a project with rate-limit policies
//! (`examples/petstore-ratelimit`) enforces them when run the way users run it:
//! unpacked and started by runc, and loaded and started by dockerd. Each test
//! builds into its own temp dir and starts (and stops) its own tools.

use std::net::SocketAddr;
use std::time::Duration;

use mgw_tests::*;

fn build_example() -> BuiltImage {
    BuiltImage::build(
        &root().join("examples/petstore-ratelimit"),
        "petstore-ratelimit",
    )
}

/// A blocking GET that keeps the response headers (lowercased names).
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no `{name}` in {:?}", self.headers))
    }
}

fn fetch(addr: SocketAddr, path: &str) -> Answer {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.get(9..12))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {text:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Answer {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// What both runtimes must show: `getPet` allows 3 requests a minute per client
/// (`lookups`, on top of the API's `per-client`), then answers 429.
fn check_enforced(api: SocketAddr, admin: SocketAddr) {
    for remaining in [2, 1, 0] {
        let a = fetch(api, "/petstore/v1/pets/7");
        assert_eq!(a.status, 200, "{}", a.body);
        assert!(a.body.contains("/v1/pets/7"), "{}", a.body);
        let state = a.header("ratelimit");
        assert!(
            state.contains(&format!("\"lookups\";r={remaining};t=")),
            "{state}"
        );
        assert!(state.contains("\"per-client\";r="), "{state}");
    }
    let a = fetch(api, "/petstore/v1/pets/7");
    assert_eq!(a.status, 429, "{}", a.body);
    let retry: u64 = a.header("retry-after").parse().unwrap();
    assert!((1..=20).contains(&retry), "{retry}");
    assert!(
        a.header("ratelimit-policy")
            .contains("\"lookups\";q=3;w=60"),
        "{:?}",
        a.headers
    );
    assert_eq!(a.header("x-ratelimit-remaining"), "0");
    assert_eq!(a.header("content-type"), "application/problem+json");
    let body: serde_json::Value = serde_json::from_str(&a.body).unwrap();
    assert_eq!(body["violated-policies"], serde_json::json!(["lookups"]));
    // Other operations keep their own budgets.
    assert_eq!(fetch(api, "/petstore/v1/pets").status, 200);
    let (status, metrics) = http_get(admin, "/metrics", &[]).unwrap();
    assert_eq!(status, 200);
    assert!(
        metrics.contains(
            r#"mgw_ratelimit_requests_total{policy="lookups",scope="operation:petstore.getPet",outcome="limited"} 1"#
        ),
        "{metrics}"
    );
}

#[test]
fn runc_runs_an_image_that_enforces_its_rate_limits() {
    let img = build_example();
    let backend = Backend::start();
    let upstream = format!("http://{}/v1", backend.addr);
    let c = RuncContainer::start(
        &img.layout(),
        img.tag(),
        &[("PETSTORE_UPSTREAM", &upstream)],
    )
    .unwrap();
    c.wait_ready(Duration::from_secs(20)).unwrap();
    check_enforced(c.api, c.admin);
    c.stop(Duration::from_secs(20)).unwrap();
}

#[test]
fn dockerd_runs_an_image_that_enforces_its_rate_limits() {
    let img = build_example();
    let docker = Dockerd::start().unwrap();
    docker
        .docker(&["load", "-i", img.tarball().to_str().unwrap()])
        .unwrap();
    let backend = Backend::start();
    let upstream = format!("http://{}/v1", backend.addr);
    let c = DockerContainer::start(
        &docker,
        img.reference(),
        &[("PETSTORE_UPSTREAM", &upstream)],
    )
    .unwrap();
    c.wait_ready(Duration::from_secs(30)).unwrap();
    check_enforced(c.api, c.admin);
}
