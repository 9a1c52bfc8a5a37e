//! Who the client is: the peer address, or what trusted proxies say in
//! `X-Forwarded-For`.
//!
//! Rate-limit keys and analytics need the address of the real client. Behind a
//! load balancer the TCP peer is the balancer, and the client is in
//! `X-Forwarded-For`; but anyone can send that header, so it is believed only when
//! the peer is in a configured trusted range (`trustedProxies`), and only as far
//! as the chain of trusted hops goes: the list is walked from the right (the
//! entry the nearest proxy appended), trusted addresses are skipped, and the first
//! untrusted address is the client. With no trusted ranges (the default) the
//! header is ignored entirely.
//!
//! Never: trust a header from an untrusted peer, allocate or parse anything when
//! no range is configured, or let a long header cost more than [`MAX_HOPS`]
//! entries of work.

use std::net::IpAddr;

use http::HeaderMap;

use crate::header_names::X_FORWARDED_FOR;

pub use mgw_bundle::net::{IpNet, TrustedProxies, canonical};

/// At most this many `X-Forwarded-For` entries are examined, from the right.
pub const MAX_HOPS: usize = 32;

/// The client's address for a request that arrived from `peer`.
pub fn client_ip(trusted: &TrustedProxies, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
    let peer = canonical(peer);
    if trusted.is_empty() || !trusted.trusts(peer) {
        return peer;
    }
    // Several header lines form one list, in order; walk it from the right.
    let mut client = peer;
    let mut seen = 0;
    for line in headers.get_all(&X_FORWARDED_FOR).iter().rev() {
        let Ok(text) = line.to_str() else {
            return client;
        };
        for entry in text.rsplit(',') {
            seen += 1;
            if seen > MAX_HOPS {
                return client;
            }
            let Some(ip) = parse_entry(entry) else {
                // Garbage was written by whoever sent it to the last trusted
                // hop: that hop's view of the client is all we can trust.
                return client;
            };
            client = ip;
            if !trusted.trusts(ip) {
                return ip;
            }
        }
    }
    // Every hop is trusted: the leftmost is the best we know.
    client
}

/// One `X-Forwarded-For` entry: `1.2.3.4`, `2001:db8::1`, `[2001:db8::1]:443`,
/// `1.2.3.4:5678`.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    let e = entry.trim();
    if let Ok(ip) = e.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Some(rest) = e.strip_prefix('[') {
        let (inside, _) = rest.split_once(']')?;
        return inside.parse::<IpAddr>().ok().map(canonical);
    }
    let (host, port) = e.rsplit_once(':')?;
    if port.bytes().all(|b| b.is_ascii_digit()) {
        return host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> TrustedProxies {
        TrustedProxies::new(list.iter().map(|n| IpNet::parse(n).unwrap()).collect())
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(X_FORWARDED_FOR, v.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn untrusted_peer_is_the_client_whatever_it_says() {
        let t = nets(&["10.0.0.0/8"]);
        let h = xff(&["203.0.113.9"]);
        assert_eq!(client_ip(&t, ip("198.51.100.1"), &h), ip("198.51.100.1"));
        // No ranges at all: the header is never read.
        assert_eq!(
            client_ip(&TrustedProxies::default(), ip("10.0.0.1"), &h),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn trusted_hops_are_skipped_from_the_right() {
        let t = nets(&["10.0.0.0/8", "192.168.0.0/16"]);
        // client spoofs 1.1.1.1; the real client 203.0.113.9 reached LB 192.168.0.5.
        let h = xff(&["1.1.1.1, 203.0.113.9, 192.168.0.5"]);
        assert_eq!(client_ip(&t, ip("10.0.0.2"), &h), ip("203.0.113.9"));
        // Several header lines are one list.
        let h = xff(&["1.1.1.1", "203.0.113.9", "192.168.0.5"]);
        assert_eq!(client_ip(&t, ip("10.0.0.2"), &h), ip("203.0.113.9"));
        // Only trusted hops: the leftmost.
        let h = xff(&["10.9.9.9, 192.168.0.5"]);
        assert_eq!(client_ip(&t, ip("10.0.0.2"), &h), ip("10.9.9.9"));
        // No header: the peer.
        assert_eq!(
            client_ip(&t, ip("10.0.0.2"), &HeaderMap::new()),
            ip("10.0.0.2")
        );
        // Ports and brackets.
        let h = xff(&["[2001:db8::7]:443, 203.0.113.1:5555"]);
        assert_eq!(client_ip(&t, ip("10.0.0.2"), &h), ip("203.0.113.1"));
    }

    #[test]
    fn garbage_stops_the_walk_at_the_last_trusted_view() {
        let t = nets(&["10.0.0.0/8"]);
        let h = xff(&["203.0.113.9, nonsense, 10.0.0.7"]);
        assert_eq!(client_ip(&t, ip("10.0.0.2"), &h), ip("10.0.0.7"));
        let long = vec!["10.0.0.1"; 100].join(",");
        let h = xff(&[&format!("203.0.113.9,{long}")]);
        assert_eq!(client_ip(&t, ip("10.0.0.2"), &h), ip("10.0.0.1"));
    }
}
