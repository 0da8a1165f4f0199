//! `portcullis_core::resolve` over arbitrary check requests: a dialect, a peer, a method, a
//! request URI and a few headers, all built from the fuzz input.
//!
//! Laws (core/src/target.rs and core/src/target/tests.rs,
//! `untrusted_peers_never_get_a_target_from_forwarded_headers`):
//! - it never panics;
//! - every target's URL prints and re-parses to itself, and its method is upper-case `A`-`Z`;
//! - for a peer outside the trusted set, forwarded headers count for nothing:
//!   - the dialects that need them (all but ExtAuthz and authentik's envoy) answer
//!     `UntrustedPeer(peer)` whatever the headers say;
//!   - the answer is the same as for the same request with every `X-Forwarded-*` and
//!     `X-Original-*` header removed;
//!   - a target's host is the one of the `Host` header, its scheme this server's own, and its client
//!     address the peer itself.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use arbitrary::Arbitrary;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use libfuzzer_sys::fuzz_target;
use portcullis_core::{
    ClientIp, Connection, Dialect, RequestHead, ResolveError, TargetUrl, TrustedProxies, resolve,
};

#[derive(Arbitrary, Debug)]
enum DialectChoice {
    ForwardAuth,
    AuthRequest,
    ExtAuthz(String),
    Legacy,
    OutpostNginx,
    OutpostForwarded,
    OutpostEnvoy(String),
}

impl DialectChoice {
    fn dialect(&self) -> Dialect<'_> {
        match self {
            DialectChoice::ForwardAuth => Dialect::ForwardAuth,
            DialectChoice::AuthRequest => Dialect::AuthRequest,
            DialectChoice::ExtAuthz(path) => Dialect::ExtAuthz { path },
            DialectChoice::Legacy => Dialect::Legacy,
            DialectChoice::OutpostNginx => Dialect::OutpostNginx,
            DialectChoice::OutpostForwarded => Dialect::OutpostForwarded,
            DialectChoice::OutpostEnvoy(path_and_query) => Dialect::OutpostEnvoy { path_and_query },
        }
    }

    /// Dialects that build a target from `Host` and the check request alone.
    fn works_without_forwarded_headers(&self) -> bool {
        matches!(
            self,
            DialectChoice::ExtAuthz(_) | DialectChoice::OutpostEnvoy(_)
        )
    }
}

#[derive(Arbitrary, Debug)]
enum PeerChoice {
    Loopback,
    Private,
    Public,
    V4([u8; 4]),
    V6([u8; 16]),
    /// `::ffff:a.b.c.d`, which trust treats as the IPv4 address.
    Mapped([u8; 4]),
}

impl PeerChoice {
    fn ip(&self) -> IpAddr {
        match self {
            PeerChoice::Loopback => IpAddr::V4(Ipv4Addr::LOCALHOST),
            PeerChoice::Private => IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3)),
            PeerChoice::Public => IpAddr::V4(Ipv4Addr::new(203, 0, 113, 5)),
            PeerChoice::V4(b) => IpAddr::V4(Ipv4Addr::from(*b)),
            PeerChoice::V6(b) => IpAddr::V6(Ipv6Addr::from(*b)),
            PeerChoice::Mapped(b) => IpAddr::V6(Ipv4Addr::from(*b).to_ipv6_mapped()),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum TrustChoice {
    Default,
    Nobody,
    Everyone,
}

#[derive(Arbitrary, Debug)]
enum MethodChoice {
    Get,
    Post,
    Head,
    Other(String),
}

#[derive(Arbitrary, Debug)]
enum NameChoice {
    XForwardedProto,
    XForwardedHost,
    XForwardedUri,
    XForwardedMethod,
    XForwardedFor,
    XOriginalUrl,
    XOriginalUri,
    XOriginalMethod,
    Host,
    Other(String),
}

impl NameChoice {
    fn name(&self) -> Option<HeaderName> {
        let name = match self {
            NameChoice::XForwardedProto => "x-forwarded-proto",
            NameChoice::XForwardedHost => "x-forwarded-host",
            NameChoice::XForwardedUri => "x-forwarded-uri",
            NameChoice::XForwardedMethod => "x-forwarded-method",
            NameChoice::XForwardedFor => "x-forwarded-for",
            NameChoice::XOriginalUrl => "x-original-url",
            NameChoice::XOriginalUri => "x-original-uri",
            NameChoice::XOriginalMethod => "x-original-method",
            NameChoice::Host => "host",
            NameChoice::Other(other) => other,
        };
        HeaderName::from_bytes(name.as_bytes()).ok()
    }
}

#[derive(Arbitrary, Debug)]
struct Input {
    dialect: DialectChoice,
    peer: PeerChoice,
    trust: TrustChoice,
    own_scheme_https: bool,
    method: MethodChoice,
    uri: String,
    headers: Vec<(NameChoice, Vec<u8>)>,
}

fuzz_target!(|input: Input| {
    let trusted = match input.trust {
        TrustChoice::Default => TrustedProxies::default(),
        TrustChoice::Nobody => TrustedProxies::none(),
        TrustChoice::Everyone => match TrustedProxies::parse(&["0.0.0.0/0", "::/0"]) {
            Ok(all) => all,
            Err(e) => panic!("catch-all networks do not parse: {e}"),
        },
    };
    let peer = input.peer.ip();
    let own_scheme = if input.own_scheme_https {
        "https"
    } else {
        "http"
    };
    let conn = Connection {
        peer,
        trusted: &trusted,
        own_scheme,
    };
    let method = match &input.method {
        MethodChoice::Get => Method::GET,
        MethodChoice::Post => Method::POST,
        MethodChoice::Head => Method::HEAD,
        MethodChoice::Other(m) => match Method::from_bytes(m.as_bytes()) {
            Ok(m) => m,
            Err(_) => return,
        },
    };
    let uri: Uri = input.uri.parse().unwrap_or_else(|_| Uri::from_static("/"));
    let mut headers = HeaderMap::new();
    for (name, value) in input.headers.iter().take(16) {
        if let (Some(name), Ok(value)) = (name.name(), HeaderValue::from_bytes(value)) {
            headers.append(name, value);
        }
    }
    let dialect = input.dialect.dialect();
    let head = RequestHead {
        method: &method,
        uri: &uri,
        headers: &headers,
    };
    let result = resolve(dialect, head, conn);

    if let Ok(target) = &result {
        let text = target.url.to_string();
        assert_eq!(
            TargetUrl::parse(&text).as_ref(),
            Ok(&target.url),
            "target URL {text:?} does not re-parse to itself"
        );
        let m = target.method.as_str();
        assert!(
            !m.is_empty() && m.bytes().all(|b| b.is_ascii_uppercase()),
            "method {m:?}"
        );
    }

    if trusted.contains(peer) {
        return;
    }
    // An untrusted peer.
    if !input.dialect.works_without_forwarded_headers() {
        assert_eq!(
            result,
            Err(ResolveError::UntrustedPeer(peer.to_canonical())),
            "{dialect:?} from untrusted {peer}"
        );
        return;
    }
    let mut stripped = headers.clone();
    let forwarded: Vec<HeaderName> = headers
        .keys()
        .filter(|n| n.as_str().starts_with("x-forwarded-") || n.as_str().starts_with("x-original-"))
        .cloned()
        .collect();
    for name in &forwarded {
        stripped.remove(name);
    }
    let without = resolve(
        dialect,
        RequestHead {
            method: &method,
            uri: &uri,
            headers: &stripped,
        },
        conn,
    );
    assert_eq!(
        result, without,
        "forwarded headers changed the answer for untrusted {peer} ({dialect:?})"
    );
    if let Ok(target) = &result {
        assert_eq!(
            target.url.scheme(),
            own_scheme,
            "scheme not the server's own"
        );
        assert_eq!(target.client_ip, ClientIp::Known(peer.to_canonical()));
        let host_header = headers
            .get("host")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("a target for untrusted {peer} without a Host header"));
        let from_host =
            TargetUrl::parse(&format!("{own_scheme}://{host_header}/")).unwrap_or_else(|e| {
                panic!("Host {host_header:?} gave a target but does not parse: {e}")
            });
        assert_eq!(
            target.url.host(),
            from_host.host(),
            "host not taken from the Host header"
        );
        assert_eq!(target.url.port(), from_host.port());
    }
});
