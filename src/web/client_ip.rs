//! The client's address for per-address limits. Behind a load balancer every request comes
//! from the balancer, so `X-Forwarded-For` is believed, but only from peers the operator
//! names as trusted proxies (`trusted_proxies`, `serve --trusted-proxy CIDR`); anyone else
//! could write any address into it. Likewise `X-Forwarded-Proto`: a trusted proxy that
//! terminates TLS says so with it, and the pages then get HSTS and `Secure` cookies.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// An address block, `10.0.0.0/8` or `2001:db8::/32`; a bare address is a /32 or /128.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not an address or address/prefix"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: the prefix must be 0 to {max}"))?,
            None => max,
        };
        Ok(Self { addr, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// A comma-separated list of [`Cidr`]s, as the configuration holds it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct CidrList(pub Vec<Cidr>);

impl FromStr for CidrList {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(Cidr::from_str)
            .collect::<Result<_, _>>()
            .map(Self)
    }
}

impl TryFrom<String> for CidrList {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl fmt::Display for CidrList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(Cidr::to_string).collect();
        f.write_str(&parts.join(","))
    }
}

impl CidrList {
    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|c| c.contains(ip))
    }

    /// The client behind `peer`, from the request's `X-Forwarded-For` headers.
    pub fn client_of(&self, peer: IpAddr, headers: &axum::http::HeaderMap) -> IpAddr {
        let forwarded: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        self.client(peer, &forwarded)
    }

    /// Whether a trusted proxy `peer` says the client's request came over HTTPS: the last
    /// `X-Forwarded-Proto` value, the one the proxy nearest to us wrote.
    pub fn forwarded_https(&self, peer: IpAddr, headers: &axum::http::HeaderMap) -> bool {
        self.trusts(peer)
            && headers
                .get_all("x-forwarded-proto")
                .iter()
                .next_back()
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.rsplit(',').next())
                .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"))
    }

    /// The client behind `peer`: walking `X-Forwarded-For` from the right, the first address
    /// that is not a trusted proxy. A peer that is not trusted is the client itself, and so
    /// is a trusted peer whose header cannot be read.
    pub fn client(&self, peer: IpAddr, forwarded_for: &[&str]) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let hops: Vec<&str> = forwarded_for
            .iter()
            .flat_map(|h| h.split(','))
            .map(str::trim)
            .collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            match hop.parse::<IpAddr>() {
                Ok(ip) => {
                    client = ip;
                    if !self.trusts(ip) {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        client
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidrs_match_their_blocks() {
        let c: Cidr = "10.1.0.0/16".parse().unwrap();
        assert!(c.contains(ip("10.1.200.3")) && !c.contains(ip("10.2.0.1")));
        assert!(
            "0.0.0.0/0"
                .parse::<Cidr>()
                .unwrap()
                .contains(ip("192.0.2.1"))
        );
        assert!(
            "2001:db8::/32"
                .parse::<Cidr>()
                .unwrap()
                .contains(ip("2001:db8:1::5"))
        );
        assert!(
            "127.0.0.1"
                .parse::<Cidr>()
                .unwrap()
                .contains(ip("::ffff:127.0.0.1"))
        );
        assert!(
            "10.0.0.0/33"
                .parse::<Cidr>()
                .unwrap_err()
                .contains("0 to 32")
        );
        assert!("nonsense".parse::<Cidr>().is_err());
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_peers() {
        let t: CidrList = "10.0.0.0/8, 192.168.1.1".parse().unwrap();
        // An untrusted peer is the client, whatever it claims.
        assert_eq!(
            t.client(ip("203.0.113.9"), &["198.51.100.1"]),
            ip("203.0.113.9")
        );
        // A trusted balancer: the rightmost untrusted hop is the client.
        assert_eq!(
            t.client(ip("10.0.0.2"), &["198.51.100.7, 203.0.113.5, 192.168.1.1"]),
            ip("203.0.113.5")
        );
        // Several headers count as one list.
        assert_eq!(
            t.client(ip("10.0.0.2"), &["198.51.100.7", "203.0.113.5"]),
            ip("203.0.113.5")
        );
        // No header, or garbage: the peer.
        assert_eq!(t.client(ip("10.0.0.2"), &[]), ip("10.0.0.2"));
        assert_eq!(t.client(ip("10.0.0.2"), &["not-an-ip"]), ip("10.0.0.2"));
        assert_eq!(
            CidrList::default().client(ip("10.0.0.2"), &["1.2.3.4"]),
            ip("10.0.0.2")
        );
    }

    #[test]
    fn forwarded_proto_is_believed_only_from_trusted_peers() {
        let t: CidrList = "10.0.0.0/8".parse().unwrap();
        let headers = |values: &[&str]| {
            let mut h = axum::http::HeaderMap::new();
            for v in values {
                h.append("x-forwarded-proto", v.parse().unwrap());
            }
            h
        };
        assert!(t.forwarded_https(ip("10.0.0.2"), &headers(&["https"])));
        assert!(t.forwarded_https(ip("10.0.0.2"), &headers(&["http, HTTPS"])));
        assert!(!t.forwarded_https(ip("10.0.0.2"), &headers(&["https, http"])));
        assert!(!t.forwarded_https(ip("10.0.0.2"), &headers(&["https", "http"])));
        assert!(!t.forwarded_https(ip("10.0.0.2"), &headers(&[])));
        assert!(!t.forwarded_https(ip("203.0.113.9"), &headers(&["https"])));
    }
}
