//! Where the request was going: target resolution for every proxy dialect (docs/reference/forward-auth.md §3,
//! docs/reference/outpost.md §5.1, docs/reference/security.md §2 and §5).

use std::fmt;
use std::net::IpAddr;

use http::{HeaderMap, HeaderName, Method, Uri};

use crate::domain::canonical_host;
use crate::trusted::{ClientIp, TrustedProxies, client_ip};

// The headers resolution reads, as names made once: a lookup by `&str` parses the name each time.
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static X_FORWARDED_URI: HeaderName = HeaderName::from_static("x-forwarded-uri");
static X_FORWARDED_METHOD: HeaderName = HeaderName::from_static("x-forwarded-method");
static X_ORIGINAL_URL: HeaderName = HeaderName::from_static("x-original-url");
static X_ORIGINAL_METHOD: HeaderName = HeaderName::from_static("x-original-method");
static X_ORIGINAL_URI: HeaderName = HeaderName::from_static("x-original-uri");
static HOST: HeaderName = http::header::HOST;

/// How the proxy describes the original request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Dialect<'a> {
    /// Authelia ForwardAuth (Traefik, Caddy, HAProxy): `X-Forwarded-{Proto,Host,URI,Method}`.
    ForwardAuth,
    /// Authelia AuthRequest (nginx `auth_request`): `X-Original-URL` and `X-Original-Method`.
    AuthRequest,
    /// Authelia ExtAuthz (Envoy): `X-Forwarded-Proto` + `Host` + `path` (the part of the check request's
    /// path after the endpoint path, starting with `/`); the method of the check request.
    ExtAuthz {
        /// Path captured after the endpoint path.
        path: &'a str,
    },
    /// Authelia `/api/verify`: `X-Original-URL`, else `X-Forwarded-*` falling back to `Host` and the
    /// request's own URI; method from `X-Forwarded-Method`, else the request line.
    Legacy,
    /// authentik `auth/nginx`: `X-Original-URL`, else `X-Original-URI` (path and query, split at
    /// the first `?`) with the host from `X-Forwarded-Host`/`Host`.
    OutpostNginx,
    /// authentik `auth/traefik` and `auth/caddy`: `X-Forwarded-{Proto,Host,Uri}`.
    OutpostForwarded,
    /// authentik `auth/envoy`: `Host` + the path after the endpoint prefix + the request's query.
    OutpostEnvoy {
        /// Path (and query) captured after the endpoint prefix.
        path_and_query: &'a str,
    },
}

impl Dialect<'_> {
    /// Dialects that cannot build a target without forwarded headers, and so refuse untrusted peers.
    fn needs_forwarded_headers(self) -> bool {
        !matches!(
            self,
            Dialect::ExtAuthz { .. } | Dialect::OutpostEnvoy { .. }
        )
    }
}

/// The part of a check request that resolution reads.
#[derive(Debug, Clone, Copy)]
pub struct RequestHead<'a> {
    /// Request-line method of the check request.
    pub method: &'a Method,
    /// Request-line URI of the check request.
    pub uri: &'a Uri,
    /// Its headers.
    pub headers: &'a HeaderMap,
}

impl<'a> From<&'a http::request::Parts> for RequestHead<'a> {
    fn from(parts: &'a http::request::Parts) -> Self {
        Self {
            method: &parts.method,
            uri: &parts.uri,
            headers: &parts.headers,
        }
    }
}

/// Facts about the connection that resolution needs.
#[derive(Debug, Clone, Copy)]
pub struct Connection<'a> {
    /// TCP peer address of the check request.
    pub peer: IpAddr,
    /// Peers allowed to send forwarded headers.
    pub trusted: &'a TrustedProxies,
    /// Scheme this server itself serves (`http` or `https`), the fallback for a missing
    /// `X-Forwarded-Proto`.
    pub own_scheme: &'a str,
}

/// Why no target could be built. Every variant is a bad request, never an allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// The peer is not a trusted proxy, so its forwarded headers are ignored and no target exists.
    #[error("peer {0} is not a trusted proxy: forwarded headers ignored")]
    UntrustedPeer(IpAddr),
    /// A header the dialect needs is absent or empty.
    #[error("header {0} is missing or empty")]
    MissingHeader(&'static str),
    /// A header holds bytes other than visible ASCII.
    #[error("header {0} holds control or non-ASCII bytes")]
    InvalidHeaderBytes(&'static str),
    /// The URL assembled from the named source is malformed.
    #[error("target URL from {origin} is malformed: {reason}")]
    InvalidUrl {
        /// Header (or `request URI`) the URL came from.
        origin: &'static str,
        /// What is wrong with it.
        reason: UrlError,
    },
    /// The method is empty or holds a byte outside `A`–`Z`.
    #[error("method from {0} is not upper-case A-Z letters")]
    InvalidMethod(&'static str),
}

/// What is wrong with a URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UrlError {
    /// Not of the form `scheme://authority[/path][?query]`.
    #[error("not an absolute URL")]
    NotAbsolute,
    /// Scheme with characters outside RFC 3986's.
    #[error("invalid scheme")]
    InvalidScheme,
    /// A control byte, space, backslash or non-ASCII byte.
    #[error("forbidden character")]
    ForbiddenCharacter,
    /// No host.
    #[error("empty host")]
    EmptyHost,
    /// `user:pass@` in the authority.
    #[error("userinfo is not allowed")]
    Userinfo,
    /// The host is not a valid domain name or IP literal.
    #[error("invalid host")]
    InvalidHost,
    /// The port is not a number in 0–65535.
    #[error("invalid port")]
    InvalidPort,
    /// A `%` not followed by two hex digits in the path.
    #[error("invalid percent-encoding")]
    InvalidPercentEncoding,
    /// The URI part does not start with `/`.
    #[error("path must start with /")]
    RelativePath,
}

/// A parsed absolute URL, kept in the raw form it was received in (dot segments unresolved) and with a
/// canonical host for comparisons.
///
/// One buffer holds the raw form (scheme lower-cased); the canonical host is a slice of it when the
/// received host is already canonical (the usual case), so a parse costs one or two allocations.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TargetUrl {
    /// `scheme://authority path[?query]`, the scheme lower-cased: the `Display` form.
    text: String,
    /// End of the scheme in `text` (`://` follows).
    scheme_end: usize,
    /// Start of the path in `text` (end of the authority).
    path_start: usize,
    /// Position of the `?` in `text`, if any.
    query_start: Option<usize>,
    host: CanonicalHost,
    port: Option<u16>,
}

/// Where the canonical host lives.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum CanonicalHost {
    /// `text[start..end]` is already canonical.
    InText(usize, usize),
    /// The canonical form differs from what was received (case, trailing dot, IDNA, IPv4 forms).
    Owned(String),
}

impl fmt::Debug for TargetUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TargetUrl")
            .field("scheme", &self.scheme())
            .field("host", &self.host())
            .field("authority", &self.authority())
            .field("port", &self.port)
            .field("path", &self.path())
            .field("query", &self.query())
            .finish()
    }
}

impl TargetUrl {
    /// Parse an absolute URL the way a forward-auth target is read: `scheme://host[:port][path][?query]`.
    ///
    /// Control bytes, spaces, backslashes, non-ASCII bytes, userinfo, an empty or invalid host, an
    /// invalid port and bad percent-encoding in the path are errors. A `#fragment` is dropped. The host
    /// goes through the WHATWG host parser (IDNA to ASCII, IPv4 forms) and is lower-cased with one
    /// trailing dot removed.
    ///
    /// ```
    /// use portcullis_core::TargetUrl;
    /// let url = TargetUrl::parse("HTTPS://App.Example.com./a/../b?x=1").unwrap();
    /// assert_eq!(url.host(), "app.example.com");
    /// assert_eq!(url.path(), "/a/../b");
    /// assert_eq!(url.to_string(), "https://App.Example.com./a/../b?x=1");
    /// assert!(TargetUrl::parse("https://user@app.example.com/").is_err());
    /// ```
    pub fn parse(input: &str) -> Result<Self, UrlError> {
        // Byte scans, one pass where one will do: this runs on every check, and with `str` pattern
        // searches it cost 2,914 of a check's 24,762 instructions (BENCHMARKS.md, sixth round).
        let mut fragment = None;
        let mut colon = None;
        for (at, &byte) in input.as_bytes().iter().enumerate() {
            if byte <= b' ' || byte == 0x7f || byte == b'\\' || !byte.is_ascii() {
                return Err(UrlError::ForbiddenCharacter);
            }
            if byte == b'#' && fragment.is_none() {
                fragment = Some(at);
            } else if byte == b':' && colon.is_none() && fragment.is_none() {
                colon = Some(at);
            }
        }
        // Every byte is ASCII from here on, so any index is a character boundary.
        let input = &input[..fragment.unwrap_or(input.len())];
        let colon = colon.ok_or(UrlError::NotAbsolute)?;
        let from_colon = &input[colon..];
        if !from_colon.starts_with("://") {
            // A later `://` would make a scheme holding `:`.
            return Err(if from_colon.contains("://") {
                UrlError::InvalidScheme
            } else {
                UrlError::NotAbsolute
            });
        }
        let (scheme, rest) = (&input[..colon], &input[colon + 3..]);
        if !is_scheme(scheme) {
            return Err(UrlError::InvalidScheme);
        }
        let authority_end = rest
            .bytes()
            .position(|b| b == b'/' || b == b'?')
            .unwrap_or(rest.len());
        let (authority, path_and_query) = rest.split_at(authority_end);
        let query_at = path_and_query.bytes().position(|b| b == b'?');
        let path = &path_and_query[..query_at.unwrap_or(path_and_query.len())];
        let (host, port) = parse_authority(authority)?;
        check_percent_encoding(path)?;
        let mut text = String::with_capacity(scheme.len() + 3 + rest.len());
        text.push_str(scheme);
        text.make_ascii_lowercase();
        text.push_str("://");
        let authority_start = text.len();
        text.push_str(rest);
        let path_start = authority_start + authority.len();
        let query_start = query_at.map(|q| path_start + q);
        let host = match host {
            Host::Received(len) => CanonicalHost::InText(authority_start, authority_start + len),
            Host::Canonical(owned) => CanonicalHost::Owned(owned),
        };
        Ok(Self {
            text,
            scheme_end: scheme.len(),
            path_start,
            query_start,
            host,
            port,
        })
    }

    /// Lower-cased scheme.
    pub fn scheme(&self) -> &str {
        &self.text[..self.scheme_end]
    }

    /// Canonical host: lower-case, ASCII (IDNA), no trailing dot; IPv6 in brackets.
    pub fn host(&self) -> &str {
        match &self.host {
            CanonicalHost::InText(start, end) => &self.text[*start..*end],
            CanonicalHost::Owned(host) => host,
        }
    }

    /// The authority as received.
    fn authority(&self) -> &str {
        &self.text[self.scheme_end + 3..self.path_start]
    }

    /// Explicit port, if any.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// Raw path as received (may be empty; percent-encoding validated, dot segments kept).
    pub fn path(&self) -> &str {
        &self.text[self.path_start..self.query_start.unwrap_or(self.text.len())]
    }

    /// Raw query without the `?`, if any.
    pub fn query(&self) -> Option<&str> {
        self.query_start.map(|q| &self.text[q + 1..])
    }

    /// True for `https` and `wss`, the only schemes Authelia-style endpoints accept.
    pub fn is_secure(&self) -> bool {
        matches!(self.scheme(), "https" | "wss")
    }
}

impl fmt::Display for TargetUrl {
    /// The raw form: scheme lower-cased, authority and path as received.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The request being authorised: URL, method and client address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Where it was going.
    pub url: TargetUrl,
    /// Its method (upper-case letters only).
    pub method: Method,
    /// Who sent it, as far as trusted proxies say.
    pub client_ip: ClientIp,
}

/// Resolve the target of a check request (docs/ARCHITECTURE.md step 1).
///
/// Forwarded headers are believed only when the TCP peer is a trusted proxy; a dialect that depends on
/// them fails with [`ResolveError::UntrustedPeer`] otherwise.
///
/// ```
/// use portcullis_core::{resolve, Connection, Dialect, RequestHead, TrustedProxies};
/// let request = http::Request::get("/api/authz/auth-request")
///     .header("X-Original-URL", "https://app.example.com/admin?x=1")
///     .header("X-Original-Method", "GET")
///     .body(())
///     .unwrap();
/// let (parts, ()) = request.into_parts();
/// let trusted = TrustedProxies::default();
/// let conn = Connection { peer: "127.0.0.1".parse().unwrap(), trusted: &trusted, own_scheme: "http" };
/// let target = resolve(Dialect::AuthRequest, RequestHead::from(&parts), conn).unwrap();
/// assert_eq!(target.url.host(), "app.example.com");
/// assert_eq!(target.url.path(), "/admin");
/// assert_eq!(target.method, http::Method::GET);
/// ```
pub fn resolve(
    dialect: Dialect<'_>,
    request: RequestHead<'_>,
    conn: Connection<'_>,
) -> Result<Target, ResolveError> {
    let peer_trusted = conn.trusted.contains(conn.peer);
    if !peer_trusted && dialect.needs_forwarded_headers() {
        return Err(ResolveError::UntrustedPeer(conn.peer.to_canonical()));
    }
    let headers = request.headers;
    let forwarded = |name: &'static HeaderName| -> Result<Option<&str>, ResolveError> {
        if peer_trusted {
            header(headers, name)
        } else {
            Ok(None)
        }
    };
    let proto = || -> Result<&str, ResolveError> {
        Ok(forwarded(&X_FORWARDED_PROTO)?.unwrap_or(conn.own_scheme))
    };

    let (url, method) = match dialect {
        Dialect::ForwardAuth => {
            let url = assemble(
                proto()?,
                forwarded(&X_FORWARDED_HOST)?,
                "X-Forwarded-Host",
                forwarded(&X_FORWARDED_URI)?.unwrap_or(""),
            )?;
            let method = method_header(headers, &X_FORWARDED_METHOD, "X-Forwarded-Method")?;
            (url, method)
        }
        Dialect::AuthRequest => {
            let raw =
                forwarded(&X_ORIGINAL_URL)?.ok_or(ResolveError::MissingHeader("X-Original-URL"))?;
            let url = parse_from(raw, "X-Original-URL")?;
            let method = method_header(headers, &X_ORIGINAL_METHOD, "X-Original-Method")?;
            (url, method)
        }
        Dialect::ExtAuthz { path } => {
            let host = header(headers, &HOST)?;
            // An empty sub-path (`/api/authz/ext-authz` itself) is an empty target path, as a
            // missing `X-Forwarded-URI` is for ForwardAuth: the target has no trailing slash.
            let url = assemble(proto()?, host, "Host", path)?;
            (
                url,
                checked_method(request.method.as_str(), "request method")?,
            )
        }
        Dialect::Legacy => {
            let url = match forwarded(&X_ORIGINAL_URL)? {
                Some(raw) => parse_from(raw, "X-Original-URL")?,
                None => {
                    let host = match forwarded(&X_FORWARDED_HOST)? {
                        Some(h) => Some(h),
                        None => header(headers, &HOST)?,
                    };
                    let own_uri = request.uri.path_and_query().map_or("/", |pq| pq.as_str());
                    let uri = forwarded(&X_FORWARDED_URI)?.unwrap_or(own_uri);
                    assemble(proto()?, host, "X-Forwarded-Host", uri)?
                }
            };
            let method = match header(headers, &X_FORWARDED_METHOD)? {
                Some(m) => checked_method(m, "X-Forwarded-Method")?,
                None => checked_method(request.method.as_str(), "request method")?,
            };
            (url, method)
        }
        Dialect::OutpostNginx => {
            // X-Original-URL first: authentik's documented nginx block sets it on the auth
            // subrequest but passes a client's X-Original-URI through untouched, so preferring
            // X-Original-URI (as the reference does) would let the client choose the URL judged
            // (docs/reference/outpost.md §14 item 11).
            let url = match forwarded(&X_ORIGINAL_URL)? {
                Some(raw) => parse_from(raw, "X-Original-URL")?,
                None => {
                    let uri = forwarded(&X_ORIGINAL_URI)?
                        .ok_or(ResolveError::MissingHeader("X-Original-URI"))?;
                    let host = match forwarded(&X_FORWARDED_HOST)? {
                        Some(h) => Some(h),
                        None => header(headers, &HOST)?,
                    };
                    assemble(proto()?, host, "Host", uri)?
                }
            };
            (url, optional_method(headers, request.method)?)
        }
        Dialect::OutpostForwarded => {
            let proto = forwarded(&X_FORWARDED_PROTO)?
                .ok_or(ResolveError::MissingHeader("X-Forwarded-Proto"))?;
            let url = assemble(
                proto,
                forwarded(&X_FORWARDED_HOST)?,
                "X-Forwarded-Host",
                forwarded(&X_FORWARDED_URI)?.unwrap_or(""),
            )?;
            (url, optional_method(headers, request.method)?)
        }
        Dialect::OutpostEnvoy { path_and_query } => {
            let host = header(headers, &HOST)?;
            let path = if path_and_query.is_empty() {
                "/"
            } else {
                path_and_query
            };
            let url = assemble(proto()?, host, "Host", path)?;
            (
                url,
                checked_method(request.method.as_str(), "request method")?,
            )
        }
    };
    Ok(Target {
        url,
        method,
        client_ip: client_ip(headers, conn.peer, conn.trusted),
    })
}

/// A header's value: `None` when absent or empty, an error when it holds non-visible-ASCII bytes.
fn header<'h>(
    headers: &'h HeaderMap,
    name: &'static HeaderName,
) -> Result<Option<&'h str>, ResolveError> {
    let Some(value) = headers.get(name) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| ResolveError::InvalidHeaderBytes(name.as_str()))?;
    if text.bytes().any(|b| b.is_ascii_control()) {
        return Err(ResolveError::InvalidHeaderBytes(name.as_str()));
    }
    Ok(if text.is_empty() { None } else { Some(text) })
}

fn method_header(
    headers: &HeaderMap,
    name: &'static HeaderName,
    display: &'static str,
) -> Result<Method, ResolveError> {
    let value = header(headers, name)?.ok_or(ResolveError::MissingHeader(display))?;
    checked_method(value, display)
}

/// authentik reads no method; a present `X-Forwarded-Method` must still be valid.
fn optional_method(headers: &HeaderMap, own: &Method) -> Result<Method, ResolveError> {
    match header(headers, &X_FORWARDED_METHOD)? {
        Some(m) => checked_method(m, "X-Forwarded-Method"),
        None => checked_method(own.as_str(), "request method"),
    }
}

/// Methods are non-empty and upper-case A–Z only (docs/reference/forward-auth.md §3.2).
pub fn checked_method(value: &str, source: &'static str) -> Result<Method, ResolveError> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(ResolveError::InvalidMethod(source));
    }
    Method::from_bytes(value.as_bytes()).map_err(|_| ResolveError::InvalidMethod(source))
}

fn parse_from(raw: &str, source: &'static str) -> Result<TargetUrl, ResolveError> {
    TargetUrl::parse(raw).map_err(|reason| ResolveError::InvalidUrl {
        origin: source,
        reason,
    })
}

/// Build `proto://host uri` from separate headers, each checked on its own so that one header cannot
/// smuggle another's part (a `/` in the host, an authority in the URI).
fn assemble(
    proto: &str,
    host: Option<&str>,
    host_source: &'static str,
    uri: &str,
) -> Result<TargetUrl, ResolveError> {
    let host = host.ok_or(ResolveError::MissingHeader(host_source))?;
    if host.contains(['/', '?', '#', '@']) {
        return Err(ResolveError::InvalidUrl {
            origin: host_source,
            reason: UrlError::InvalidHost,
        });
    }
    if !uri.is_empty() && !uri.starts_with('/') {
        return Err(ResolveError::InvalidUrl {
            origin: "URI",
            reason: UrlError::RelativePath,
        });
    }
    if !is_scheme(proto) {
        return Err(ResolveError::InvalidUrl {
            origin: "X-Forwarded-Proto",
            reason: UrlError::InvalidScheme,
        });
    }
    parse_from(&format!("{proto}://{host}{uri}"), host_source)
}

fn is_scheme(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

/// The canonical host of an authority: its first `len` bytes as received, or a new string.
enum Host {
    Received(usize),
    Canonical(String),
}

fn parse_authority(authority: &str) -> Result<(Host, Option<u16>), UrlError> {
    if authority.is_empty() {
        return Err(UrlError::EmptyHost);
    }
    if authority.bytes().any(|b| b == b'@') {
        return Err(UrlError::Userinfo);
    }
    let (host, port) = if authority.starts_with('[') {
        let end = authority.find(']').ok_or(UrlError::InvalidHost)?;
        let (h, rest) = authority.split_at(end + 1);
        match rest {
            "" => (h, None),
            _ => (
                h,
                Some(rest.strip_prefix(':').ok_or(UrlError::InvalidPort)?),
            ),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port = match port {
        None | Some("") => None,
        Some(p) if p.bytes().all(|b| b.is_ascii_digit()) && p.len() <= 5 => {
            Some(p.parse::<u16>().map_err(|_| UrlError::InvalidPort)?)
        }
        Some(_) => return Err(UrlError::InvalidPort),
    };
    if host.is_empty() || host == "." {
        return Err(UrlError::EmptyHost);
    }
    if let Some(name) = plain_domain(host) {
        let host = if name.bytes().any(|b| b.is_ascii_uppercase()) {
            Host::Canonical(name.to_ascii_lowercase())
        } else {
            // The host starts the authority: its first `name.len()` bytes are canonical already.
            Host::Received(name.len())
        };
        return Ok((host, port));
    }
    // A percent sign would be decoded by the WHATWG host parser into a different host than the proxy
    // routed on; refuse it outright.
    if host.contains('%') {
        return Err(UrlError::InvalidHost);
    }
    let parsed = url::Host::parse(host).map_err(|_| UrlError::InvalidHost)?;
    let canonical = canonical_host(&parsed.to_string());
    if canonical.is_empty() {
        return Err(UrlError::EmptyHost);
    }
    // The WHATWG parser keeps empty labels (`x..example.com`, `example.com..`); no browser sends
    // such a host, and `x..example.com` would still lie "under" a cookie domain: refuse it (found by
    // the `target_url` fuzz target: the canonical form was not a fixed point).
    if matches!(parsed, url::Host::Domain(_)) && canonical.split('.').any(str::is_empty) {
        return Err(UrlError::InvalidHost);
    }
    Ok((Host::Canonical(canonical), port))
}

/// The host without its one trailing dot, when it is a plain ASCII domain name that the WHATWG host
/// parser would only lower-case: labels of letters, digits and `-`, none empty, none an IDNA `xn--`
/// label, and a last label starting with a letter (so never an IPv4 form such as `1.2.3.4`, `0x7f.1`
/// or `example.0`). Anything else goes through the full parser.
pub(crate) fn plain_domain(host: &str) -> Option<&str> {
    let name = host.strip_suffix('.').unwrap_or(host);
    let bytes = name.as_bytes();
    let mut label_start = 0;
    for at in 0..=bytes.len() {
        match bytes.get(at) {
            Some(b'.') | None => {
                let label = &bytes[label_start..at];
                if label.is_empty()
                    || label
                        .get(..4)
                        .is_some_and(|p| p.eq_ignore_ascii_case(b"xn--"))
                {
                    return None;
                }
                if at == bytes.len() {
                    return label
                        .first()
                        .is_some_and(u8::is_ascii_alphabetic)
                        .then_some(name);
                }
                label_start = at + 1;
            }
            Some(&b) if b.is_ascii_alphanumeric() || b == b'-' => {}
            Some(_) => return None,
        }
    }
    None
}

fn check_percent_encoding(path: &str) -> Result<(), UrlError> {
    let bytes = path.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let valid = bytes
                .get(i + 1..i + 3)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit));
            if !valid {
                return Err(UrlError::InvalidPercentEncoding);
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
