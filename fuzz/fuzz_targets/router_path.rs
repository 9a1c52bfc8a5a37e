//! Arbitrary request paths and methods against a router with literal, parameter
//! and pattern routes: lookups never panic.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use mgw_gateway::router::{Router, RouterBuilder};

fn router() -> &'static Router<u32> {
    static R: OnceLock<Router<u32>> = OnceLock::new();
    R.get_or_init(|| {
        let mut b = RouterBuilder::new();
        let routes = [
            ("GET", "/"),
            ("GET", "/pets"),
            ("POST", "/pets"),
            ("GET", "/pets/{id}"),
            ("DELETE", "/pets/{id}"),
            ("GET", "/pets/{id}/photos/{photo}"),
            ("GET", "/files/{name}.{ext}"),
            ("GET", "/v{version}/items"),
            ("GET", "/a/b/c"),
            ("GET", "/a/{x}/d"),
        ];
        for (i, (m, t)) in routes.iter().enumerate() {
            b.insert(m.parse().unwrap(), t, i as u32).unwrap();
        }
        b.build()
    })
}

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&b| b == b' ').unwrap_or(0);
    let (method, path) = data.split_at(split);
    let Ok(method) = http::Method::from_bytes(if method.is_empty() { b"GET" } else { method })
    else {
        return;
    };
    if let Ok(path) = std::str::from_utf8(path) {
        let _ = router().lookup(&method, path.trim_start_matches(' '));
    }
});
