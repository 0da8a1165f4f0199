//! Hop-by-hop headers (RFC 9110 §7.6.1): they describe one connection and are never forwarded.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// The hop-by-hop headers removed from every request and response, besides those named in
/// `Connection`.
const HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
];

/// What survives of the hop-by-hop headers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Keep {
    /// Keep `Connection: upgrade` and `Upgrade` when the message asks for (or agrees to) an
    /// upgrade.
    pub(crate) upgrade: bool,
    /// Keep `TE: trailers` when the client accepts trailers (gRPC needs it; RFC 9113 §8.2.2 allows
    /// it over HTTP/2, and Go's `httputil.ReverseProxy` keeps it too).
    pub(crate) te_trailers: bool,
}

/// Removes the hop-by-hop headers of a request before it goes to the upstream, keeping a requested
/// upgrade (`Connection: upgrade` and `Upgrade`) and `TE: trailers`.
///
/// [`UpstreamClient::forward`](crate::UpstreamClient::forward) does this itself. Call it also
/// *before* adding identity headers: a client may name any header in `Connection`, and headers so
/// named are removed, so stripping first keeps a client from deleting headers the caller adds.
/// Calling it twice changes nothing the second time.
///
/// ```
/// use http::{HeaderMap, HeaderValue};
///
/// let mut headers = HeaderMap::new();
/// headers.insert("connection", HeaderValue::from_static("close, x-authentik-username"));
/// headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
/// headers.insert("x-authentik-username", HeaderValue::from_static("spoofed"));
/// headers.insert("accept", HeaderValue::from_static("*/*"));
/// portcullis_proxy::remove_hop_by_hop(&mut headers);
/// assert_eq!(headers.len(), 1);
/// assert_eq!(headers["accept"], "*/*");
/// ```
pub fn remove_hop_by_hop(headers: &mut HeaderMap) {
    strip(
        headers,
        Keep {
            upgrade: true,
            te_trailers: true,
        },
    );
}

/// Removes the hop-by-hop headers, and the headers `Connection` names, from `headers`.
///
/// Returns the `Upgrade` values when `keep.upgrade` is set and the message is an upgrade (its
/// `Connection` holds the `upgrade` token and it has an `Upgrade` header); those are then kept,
/// with `Connection: upgrade`.
pub(crate) fn strip(headers: &mut HeaderMap, keep: Keep) -> Option<Vec<HeaderValue>> {
    let named: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .flat_map(tokens)
        .collect();
    let upgrade = if keep.upgrade && named.iter().any(|token| token == "upgrade") {
        let values: Vec<HeaderValue> = headers.get_all(header::UPGRADE).iter().cloned().collect();
        (!values.is_empty()).then_some(values)
    } else {
        None
    };
    let te_trailers = keep.te_trailers
        && headers.get_all(header::TE).iter().any(|value| {
            tokens(value).any(|coding| {
                coding
                    .split(';')
                    .next()
                    .is_some_and(|name| name.trim() == "trailers")
            })
        });

    for token in &named {
        // The framing header `Host` is set by the caller of `strip` afterwards; anything else a
        // client names goes.
        if let Ok(name) = HeaderName::from_bytes(token.as_bytes()) {
            headers.remove(name);
        }
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }

    if te_trailers {
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
    }
    if let Some(values) = &upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        for value in values {
            headers.append(header::UPGRADE, value.clone());
        }
    }
    upgrade
}

/// The comma-separated tokens of a header value, trimmed and lower-cased; a token that is not
/// UTF-8 is skipped, the others still count.
fn tokens(value: &HeaderValue) -> impl Iterator<Item = String> + '_ {
    value
        .as_bytes()
        .split(|byte| *byte == b',')
        .filter_map(|token| std::str::from_utf8(token).ok())
        .map(|token| token.trim().to_ascii_lowercase())
        .filter(|token| !token.is_empty())
}

/// Whether every protocol the upstream switched to (`answered`) was offered by the client
/// (`requested`), compared case-insensitively; an empty answer matches nothing.
pub(crate) fn same_protocol(requested: &[HeaderValue], answered: &[HeaderValue]) -> bool {
    let answered: Vec<String> = answered.iter().flat_map(tokens).collect();
    !answered.is_empty()
        && answered.iter().all(|protocol| {
            requested
                .iter()
                .flat_map(tokens)
                .any(|offered| &offered == protocol)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_static(value));
        }
        headers
    }

    const REQUEST: Keep = Keep {
        upgrade: true,
        te_trailers: true,
    };
    const RESPONSE: Keep = Keep {
        upgrade: false,
        te_trailers: false,
    };

    #[test]
    fn removes_listed_and_named_headers() {
        let mut headers = map(&[
            ("connection", "close, X-Named"),
            ("connection", "x-other"),
            ("x-named", "1"),
            ("x-other", "2"),
            ("keep-alive", "timeout=5"),
            ("proxy-connection", "keep-alive"),
            ("te", "gzip"),
            ("trailer", "x-checksum"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("proxy-authenticate", "Basic"),
            ("proxy-authorization", "Basic Zm9vOmJhcg=="),
            ("accept", "*/*"),
        ]);
        assert!(strip(&mut headers, REQUEST).is_none());
        assert_eq!(headers, map(&[("accept", "*/*")]));
    }

    #[test]
    fn keeps_a_requested_upgrade() {
        let mut headers = map(&[
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "websocket"),
            ("keep-alive", "timeout=5"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ]);
        let upgrade = strip(&mut headers, REQUEST).unwrap();
        assert_eq!(upgrade, vec![HeaderValue::from_static("websocket")]);
        assert_eq!(
            headers,
            map(&[
                ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
                ("connection", "upgrade"),
                ("upgrade", "websocket"),
            ])
        );
    }

    #[test]
    fn upgrade_needs_both_headers_and_permission() {
        let mut no_token = map(&[("connection", "close"), ("upgrade", "websocket")]);
        assert!(strip(&mut no_token, REQUEST).is_none());
        assert!(no_token.is_empty());

        let mut no_upgrade_header = map(&[("connection", "upgrade")]);
        assert!(strip(&mut no_upgrade_header, REQUEST).is_none());
        assert!(no_upgrade_header.is_empty());

        let mut response = map(&[("connection", "upgrade"), ("upgrade", "websocket")]);
        assert!(strip(&mut response, RESPONSE).is_none());
        assert!(response.is_empty());
    }

    #[test]
    fn te_trailers_survives_in_requests_only() {
        let mut request = map(&[("te", "deflate;q=0.5, trailers")]);
        strip(&mut request, REQUEST);
        assert_eq!(request, map(&[("te", "trailers")]));

        let mut response = map(&[("te", "trailers")]);
        strip(&mut response, RESPONSE);
        assert!(response.is_empty());
    }

    #[test]
    fn odd_values_are_harmless() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_bytes(b"\xff\xfe, ,,x-named").unwrap(),
        );
        headers.insert("x-keep", HeaderValue::from_static("1"));
        headers.insert("x-named", HeaderValue::from_static("2"));
        headers.append(
            header::CONNECTION,
            HeaderValue::from_static("not a header name, (), x-keep2"),
        );
        strip(&mut headers, REQUEST);
        assert_eq!(headers, map(&[("x-keep", "1")]));
    }

    #[test]
    fn protocols_must_match() {
        let ws = [HeaderValue::from_static("WebSocket")];
        assert!(same_protocol(&ws, &[HeaderValue::from_static("websocket")]));
        assert!(!same_protocol(&ws, &[HeaderValue::from_static("h2c")]));
        assert!(!same_protocol(&ws, &[]));
    }
}
