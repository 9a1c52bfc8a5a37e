//! Arbitrary `X-Forwarded-For` values (and CIDR texts) through the client-IP
//! resolution: it never panics, and the client is the peer or an address the
//! header names.
#![no_main]

use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use mgw_gateway::client_ip::{IpNet, TrustedProxies};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    // The input as a CIDR list too: parsing never panics.
    for part in text.split(',') {
        let _ = IpNet::parse(part);
    }
    let trusted = TrustedProxies::new(
        ["10.0.0.0/8", "192.168.0.0/16", "::1/128"]
            .iter()
            .map(|n| IpNet::parse(n).unwrap())
            .collect(),
    );
    let peer: IpAddr = if selector & 1 == 0 {
        "10.1.2.3".parse().unwrap()
    } else {
        "203.0.113.5".parse().unwrap()
    };
    let mut headers = http::HeaderMap::new();
    for line in rest.split(|&b| b == b'\n') {
        if let Ok(v) = http::HeaderValue::from_bytes(line) {
            headers.append("x-forwarded-for", v);
        }
    }
    let client = mgw_gateway::client_ip::client_ip(&trusted, peer, &headers);
    if client != peer {
        assert!(
            trusted.trusts(peer),
            "an untrusted peer's header was believed"
        );
        let named = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|e| names(e.trim(), client));
        assert!(named, "{client} is not in the header");
    }
});

/// Does one entry (`ip`, `[ip]:port`, `v4:port`) name `client`?
fn names(entry: &str, client: IpAddr) -> bool {
    let candidates = [
        Some(entry),
        entry
            .strip_prefix('[')
            .and_then(|r| r.split_once(']'))
            .map(|(ip, _)| ip),
        entry.rsplit_once(':').map(|(ip, _)| ip),
    ];
    candidates.into_iter().flatten().any(|c| {
        c.parse::<IpAddr>().is_ok_and(|ip| match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4) == client,
            v4 => v4 == client,
        })
    })
}
