//! Where the request was going: target resolution for every proxy dialect (docs/reference/forward-auth.md §3,
//! docs/reference/outpost.md §5.1, docs/reference/security.md §2 and §5).

use std::net::IpAddr;

use http::{HeaderMap, HeaderName, Method, Uri};

mod absolute_url;

use crate::trusted::{ClientIp, TrustedProxies, client_ip};
use absolute_url::is_scheme;
pub use absolute_url::{TargetUrl, UrlError};

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

#[cfg(test)]
mod tests;
