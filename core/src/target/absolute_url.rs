//! The absolute URL a forward-auth target is read as: the parser and its checks
//! (docs/reference/forward-auth.md §3, docs/reference/security.md §2).

use std::fmt;

use crate::domain::canonical_host;

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
    pub(super) fn authority(&self) -> &str {
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

pub(super) fn is_scheme(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

/// The canonical host of an authority: its first `len` bytes as received, or a new string.
pub(super) enum Host {
    Received(usize),
    Canonical(String),
}

pub(super) fn parse_authority(authority: &str) -> Result<(Host, Option<u16>), UrlError> {
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

pub(super) fn check_percent_encoding(path: &str) -> Result<(), UrlError> {
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
