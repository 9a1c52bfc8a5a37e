//! IP address ranges (`trustedProxies`): parsing and membership, no I/O.

use std::net::IpAddr;

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
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
