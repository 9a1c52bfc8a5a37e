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

/// At most this many `X-Forwarded-For` entries are examined, from the right.
pub const MAX_HOPS: usize = 32;

/// An address range: `10.0.0.0/8`, `2001:db8::/32`, or one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// Parses `addr/prefix` or a bare address (a /32 or /128). Host bits must be zero.
    pub fn parse(text: &str) -> Result<IpNet, String> {
        let t = text.trim();
        let (addr, prefix) = match t.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (t, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| {
            format!("`{t}` is not an IP address or CIDR range such as `10.0.0.0/8`")
        })?;
        let addr = canonical(addr);
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => {
                    return Err(format!(
                        "`{t}`: the prefix length must be a number from 0 to {max}"
                    ));
                }
            },
        };
        let net = IpNet { addr, prefix };
        if net.network_bits() != bits(addr) {
            return Err(format!(
                "`{t}` has host bits set; did you mean `{}/{prefix}`?",
                from_bits(net.network_bits(), addr.is_ipv4())
            ));
        }
        Ok(net)
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        if ip.is_ipv4() != self.addr.is_ipv4() {
            return false;
        }
        mask(bits(ip), self.prefix, ip.is_ipv4()) == self.network_bits()
    }

    fn network_bits(&self) -> u128 {
        mask(bits(self.addr), self.prefix, self.addr.is_ipv4())
    }
}

impl std::fmt::Display for IpNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

fn bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn from_bits(b: u128, v4: bool) -> IpAddr {
    if v4 {
        IpAddr::from(u32::try_from(b).unwrap_or(0).to_be_bytes())
    } else {
        IpAddr::from(b.to_be_bytes())
    }
}

fn mask(b: u128, prefix: u8, v4: bool) -> u128 {
    let width = if v4 { 32 } else { 128 };
    let host = u32::from(width - prefix.min(width));
    if host >= 128 { 0 } else { (b >> host) << host }
}

/// IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`, from dual-stack sockets) as IPv4.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The configured trusted proxy ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
}

impl TrustedProxies {
    pub fn new(nets: Vec<IpNet>) -> Self {
        Self { nets }
    }

    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    pub fn nets(&self) -> &[IpNet] {
        &self.nets
    }

    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|n| n.contains(ip))
    }

    /// The client's address for a request that arrived from `peer`.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if self.nets.is_empty() || !self.trusts(peer) {
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
                if !self.trusts(ip) {
                    return ip;
                }
            }
        }
        // Every hop is trusted: the leftmost is the best we know.
        client
    }
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
    fn parses_ranges() {
        assert!(IpNet::parse("10.0.0.0/8").unwrap().contains(ip("10.2.3.4")));
        assert!(!IpNet::parse("10.0.0.0/8").unwrap().contains(ip("11.0.0.1")));
        assert!(IpNet::parse("0.0.0.0/0").unwrap().contains(ip("1.2.3.4")));
        assert!(!IpNet::parse("0.0.0.0/0").unwrap().contains(ip("::1")));
        assert!(IpNet::parse("::/0").unwrap().contains(ip("2001:db8::1")));
        assert!(
            IpNet::parse("2001:db8::/32")
                .unwrap()
                .contains(ip("2001:db8:1::5"))
        );
        assert!(
            IpNet::parse("192.168.1.7")
                .unwrap()
                .contains(ip("192.168.1.7"))
        );
        assert!(
            !IpNet::parse("192.168.1.7")
                .unwrap()
                .contains(ip("192.168.1.8"))
        );
        // Mapped addresses compare as IPv4.
        assert!(
            IpNet::parse("10.0.0.0/8")
                .unwrap()
                .contains(ip("::ffff:10.0.0.1"))
        );
        assert!(
            IpNet::parse("10.1.2.3/8")
                .unwrap_err()
                .contains("did you mean `10.0.0.0/8`?")
        );
        assert!(IpNet::parse("10.0.0.0/33").unwrap_err().contains("0 to 32"));
        assert!(IpNet::parse("example.com").is_err());
        assert_eq!(
            IpNet::parse(" 10.0.0.0/8 ").unwrap().to_string(),
            "10.0.0.0/8"
        );
    }

    #[test]
    fn untrusted_peer_is_the_client_whatever_it_says() {
        let t = nets(&["10.0.0.0/8"]);
        let h = xff(&["203.0.113.9"]);
        assert_eq!(t.client_ip(ip("198.51.100.1"), &h), ip("198.51.100.1"));
        // No ranges at all: the header is never read.
        assert_eq!(
            TrustedProxies::default().client_ip(ip("10.0.0.1"), &h),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn trusted_hops_are_skipped_from_the_right() {
        let t = nets(&["10.0.0.0/8", "192.168.0.0/16"]);
        // client spoofs 1.1.1.1; the real client 203.0.113.9 reached LB 192.168.0.5.
        let h = xff(&["1.1.1.1, 203.0.113.9, 192.168.0.5"]);
        assert_eq!(t.client_ip(ip("10.0.0.2"), &h), ip("203.0.113.9"));
        // Several header lines are one list.
        let h = xff(&["1.1.1.1", "203.0.113.9", "192.168.0.5"]);
        assert_eq!(t.client_ip(ip("10.0.0.2"), &h), ip("203.0.113.9"));
        // Only trusted hops: the leftmost.
        let h = xff(&["10.9.9.9, 192.168.0.5"]);
        assert_eq!(t.client_ip(ip("10.0.0.2"), &h), ip("10.9.9.9"));
        // No header: the peer.
        assert_eq!(
            t.client_ip(ip("10.0.0.2"), &HeaderMap::new()),
            ip("10.0.0.2")
        );
        // Ports and brackets.
        let h = xff(&["[2001:db8::7]:443, 203.0.113.1:5555"]);
        assert_eq!(t.client_ip(ip("10.0.0.2"), &h), ip("203.0.113.1"));
    }

    #[test]
    fn garbage_stops_the_walk_at_the_last_trusted_view() {
        let t = nets(&["10.0.0.0/8"]);
        let h = xff(&["203.0.113.9, nonsense, 10.0.0.7"]);
        assert_eq!(t.client_ip(ip("10.0.0.2"), &h), ip("10.0.0.7"));
        let long = vec!["10.0.0.1"; 100].join(",");
        let h = xff(&[&format!("203.0.113.9,{long}")]);
        assert_eq!(t.client_ip(ip("10.0.0.2"), &h), ip("10.0.0.1"));
    }
}
