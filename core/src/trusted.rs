//! Which peers may speak for the client: trusted-proxy CIDRs and client-IP resolution (docs/reference/security.md §2).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use http::{HeaderMap, HeaderName};

use ipnet::IpNet;

// Made once: a lookup by `&str` parses the name each time.
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The default trusted set: loopback and the private ranges (authentik's documented default).
pub const DEFAULT_TRUSTED_PROXIES: [&str; 5] = [
    "127.0.0.0/8",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "::1/128",
];

/// A set of CIDRs whose peers are believed when they send forwarded headers.
#[derive(Clone, PartialEq, Eq)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
}

impl TrustedProxies {
    /// The default set, [`DEFAULT_TRUSTED_PROXIES`].
    pub fn default_set() -> Self {
        let nets = DEFAULT_TRUSTED_PROXIES
            .iter()
            .filter_map(|s| IpNet::from_str(s).ok())
            .collect();
        Self { nets }
    }

    /// A set from already parsed networks.
    pub fn new(nets: Vec<IpNet>) -> Self {
        Self {
            nets: nets.into_iter().map(|n| n.trunc()).collect(),
        }
    }

    /// Trust nobody.
    pub fn none() -> Self {
        Self { nets: Vec::new() }
    }

    /// Parse a list of CIDRs or bare addresses (`10.0.0.1` means `/32`).
    pub fn parse<S: AsRef<str>>(items: &[S]) -> Result<Self, ParseCidrError> {
        let mut nets = Vec::with_capacity(items.len());
        for item in items {
            nets.push(parse_cidr(item.as_ref())?);
        }
        Ok(Self::new(nets))
    }

    /// True when the set contains a catch-all (`0.0.0.0/0` or `::/0`), which an operator must be
    /// warned about.
    pub fn trusts_everyone(&self) -> bool {
        self.nets.iter().any(|n| n.prefix_len() == 0)
    }

    /// The networks in the set.
    pub fn networks(&self) -> &[IpNet] {
        &self.nets
    }

    /// True when `ip` (canonicalised: IPv4-mapped IPv6 becomes IPv4) lies in the set.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.nets.iter().any(|n| n.contains(&ip))
    }
}

impl Default for TrustedProxies {
    fn default() -> Self {
        Self::default_set()
    }
}

impl fmt::Debug for TrustedProxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.nets.iter().map(|n| n.to_string()))
            .finish()
    }
}

/// A CIDR or address that did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid network {0:?}: expected an IP address or CIDR such as 10.0.0.0/8")]
pub struct ParseCidrError(pub String);

/// Parse `10.0.0.0/8`, `::1/128` or a bare address (full-length prefix).
pub fn parse_cidr(text: &str) -> Result<IpNet, ParseCidrError> {
    let text = text.trim();
    if let Ok(net) = IpNet::from_str(text) {
        return Ok(net.trunc());
    }
    IpAddr::from_str(text)
        .map(|ip| IpNet::from(ip.to_canonical()))
        .map_err(|_| ParseCidrError(text.to_owned()))
}

/// The client address of a request, as far as it can be told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ClientIp {
    /// A definite address.
    Known(IpAddr),
    /// The `X-Forwarded-For` chain held an unparsable entry before any untrusted hop: the address is
    /// unknown. It matches no network rule and is never treated as trusted.
    Unknown,
}

impl ClientIp {
    /// The address when known.
    pub fn addr(self) -> Option<IpAddr> {
        match self {
            ClientIp::Known(ip) => Some(ip),
            ClientIp::Unknown => None,
        }
    }
}

impl fmt::Display for ClientIp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientIp::Known(ip) => write!(f, "{ip}"),
            ClientIp::Unknown => f.write_str("unknown"),
        }
    }
}

/// Resolve the client IP (docs/reference/forward-auth.md §14 item 1, docs/reference/security.md R2.4).
///
/// From an untrusted peer, `X-Forwarded-For` is ignored and the peer is the client. From a trusted
/// peer, the chain is walked from the right, skipping trusted hops; the first untrusted address is
/// the client. An unparsable entry met on the walk makes the client unknown. If every entry is
/// trusted, the left-most one is the client; with no header, the peer is.
///
/// ```
/// use portcullis_core::{client_ip, ClientIp, TrustedProxies};
/// use http::HeaderMap;
/// let mut headers = HeaderMap::new();
/// headers.insert("x-forwarded-for", "203.0.113.9, 10.0.0.2".parse().unwrap());
/// let ip = client_ip(&headers, "127.0.0.1".parse().unwrap(), &TrustedProxies::default());
/// assert_eq!(ip, ClientIp::Known("203.0.113.9".parse().unwrap()));
/// ```
pub fn client_ip(headers: &HeaderMap, peer: IpAddr, trusted: &TrustedProxies) -> ClientIp {
    let peer = peer.to_canonical();
    if !trusted.contains(peer) {
        return ClientIp::Known(peer);
    }
    let mut leftmost = None;
    let mut saw_entry = false;
    // Header lines are in arrival order; entries within a line are left to right. Walk all of them
    // from the right.
    for line in headers.get_all(&X_FORWARDED_FOR).iter().rev() {
        let Ok(text) = line.to_str() else {
            return ClientIp::Unknown;
        };
        for entry in text.rsplit(',') {
            let entry = entry.trim();
            if entry.is_empty() {
                continue;
            }
            saw_entry = true;
            let Some(ip) = parse_forwarded_ip(entry) else {
                return ClientIp::Unknown;
            };
            if !trusted.contains(ip) {
                return ClientIp::Known(ip);
            }
            leftmost = Some(ip);
        }
    }
    match (saw_entry, leftmost) {
        (true, Some(ip)) => ClientIp::Known(ip),
        _ => ClientIp::Known(peer),
    }
}

/// An `X-Forwarded-For` entry: an IPv4 or IPv6 address, optionally bracketed (`[::1]`). Ports are not
/// accepted: proxies do not add them, and guessing invites confusion.
fn parse_forwarded_ip(entry: &str) -> Option<IpAddr> {
    let bare = entry
        .strip_prefix('[')
        .and_then(|e| e.strip_suffix(']'))
        .unwrap_or(entry);
    IpAddr::from_str(bare).ok().map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use proptest::prelude::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for line in xff {
            h.append("x-forwarded-for", HeaderValue::from_str(line).unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn client_ip_table() {
        let trusted = TrustedProxies::default();
        let cases: &[(&[&str], &str, ClientIp)] = &[
            // untrusted peer: header ignored
            (
                &["1.2.3.4"],
                "203.0.113.7",
                ClientIp::Known(ip("203.0.113.7")),
            ),
            // trusted peer, no header: the peer
            (&[], "127.0.0.1", ClientIp::Known(ip("127.0.0.1"))),
            // right-most untrusted wins; spoofed left entries are ignored
            (
                &["6.6.6.6, 1.2.3.4, 10.0.0.5"],
                "10.0.0.1",
                ClientIp::Known(ip("1.2.3.4")),
            ),
            // several header lines form one chain
            (
                &["6.6.6.6", "1.2.3.4"],
                "10.0.0.1",
                ClientIp::Known(ip("1.2.3.4")),
            ),
            // all trusted: left-most
            (
                &["192.168.1.9, 10.0.0.5"],
                "127.0.0.1",
                ClientIp::Known(ip("192.168.1.9")),
            ),
            // unparsable entry reached by the walk: unknown (CVE-2024-47070 class)
            (&["1.2.3.4, garbage"], "127.0.0.1", ClientIp::Unknown),
            (&["1.2.3.4:80"], "127.0.0.1", ClientIp::Unknown),
            // unparsable entry left of the first untrusted one is never reached
            (
                &["garbage, 1.2.3.4"],
                "127.0.0.1",
                ClientIp::Known(ip("1.2.3.4")),
            ),
            // IPv4-mapped IPv6 is canonicalised, so a mapped trusted address is still trusted
            (
                &["1.2.3.4, ::ffff:10.0.0.3"],
                "::ffff:127.0.0.1",
                ClientIp::Known(ip("1.2.3.4")),
            ),
            (
                &["[2001:db8::1]"],
                "::1",
                ClientIp::Known(ip("2001:db8::1")),
            ),
            // empty entries are skipped
            (&["1.2.3.4,, "], "127.0.0.1", ClientIp::Known(ip("1.2.3.4"))),
        ];
        for (xff, peer, expected) in cases {
            assert_eq!(
                client_ip(&headers(xff), ip(peer), &trusted),
                *expected,
                "{xff:?} via {peer}"
            );
        }
    }

    #[test]
    fn parses_cidrs_and_flags_catch_all() {
        let set = TrustedProxies::parse(&["10.1.2.3", "fd00::/8"]).unwrap();
        assert!(set.contains(ip("10.1.2.3")));
        assert!(!set.contains(ip("10.1.2.4")));
        assert!(set.contains(ip("fd12::1")));
        assert!(!set.trusts_everyone());
        assert!(
            TrustedProxies::parse(&["0.0.0.0/0"])
                .unwrap()
                .trusts_everyone()
        );
        assert_eq!(
            TrustedProxies::parse(&["10.0.0.0/33"]),
            Err(ParseCidrError("10.0.0.0/33".into()))
        );
        assert!(!TrustedProxies::default().contains(ip("fe80::1")));
        assert!(TrustedProxies::default().contains(ip("172.31.255.255")));
        assert!(!TrustedProxies::default().contains(ip("172.32.0.1")));
    }

    fn arb_ip() -> impl Strategy<Value = IpAddr> {
        prop_oneof![
            any::<[u8; 4]>().prop_map(IpAddr::from),
            // bias towards trusted private addresses
            any::<[u8; 3]>().prop_map(|b| IpAddr::from([10, b[0], b[1], b[2]])),
            any::<u8>().prop_map(|b| IpAddr::from([127, 0, 0, b])),
        ]
    }

    proptest! {
        /// Law: while an untrusted hop exists in the chain, the answer is never a trusted address.
        #[test]
        fn never_returns_trusted_when_untrusted_hop_exists(chain in proptest::collection::vec(arb_ip(), 1..6)) {
            let trusted = TrustedProxies::default();
            let line = chain.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", ");
            let got = client_ip(&headers(&[&line]), ip("127.0.0.1"), &trusted);
            if chain.iter().any(|i| !trusted.contains(*i)) {
                let ClientIp::Known(found) = got else { panic!("all entries parse") };
                prop_assert!(!trusted.contains(found));
                // and it is the right-most untrusted one
                let expected = chain.iter().rev().find(|i| !trusted.contains(**i)).copied();
                prop_assert_eq!(Some(found), expected);
            }
        }
    }
}
