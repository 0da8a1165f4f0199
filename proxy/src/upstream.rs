//! Where requests go.

use std::fmt;

use http::uri::{Authority, Scheme};

use crate::ProxyError;

/// Where requests go: the scheme and authority of an application's `internal_host` (or of an
/// `ak_proxy.backend_override`).
///
/// Like authentik, only the scheme and the authority of the URL are used: the request keeps its
/// own path and query, and a path in the configured URL is ignored. The authority omits the port
/// when it is the scheme's default one, and a host name is lower-cased (IDNA for non-ASCII names).
///
/// ```
/// use portcullis_proxy::Upstream;
///
/// let upstream = Upstream::parse("https://App.internal:8443/ignored?also=ignored")?;
/// assert_eq!(upstream.scheme(), "https");
/// assert_eq!(upstream.authority(), "app.internal:8443");
/// assert_eq!(Upstream::parse("http://[::1]:80")?.authority(), "[::1]");
/// assert!(Upstream::parse("ftp://example.com").is_err());
/// # Ok::<(), portcullis_proxy::ProxyError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Upstream {
    scheme: Scheme,
    authority: Authority,
}

impl Upstream {
    /// Parses an `http://` or `https://` URL.
    ///
    /// # Errors
    ///
    /// [`ProxyError::InvalidUpstream`] when it is not a URL, its scheme is neither `http` nor
    /// `https`, it has no host, or it carries a user name or password (which would otherwise be
    /// dropped without notice).
    pub fn parse(url: &str) -> Result<Self, ProxyError> {
        let invalid = |reason: &str| ProxyError::InvalidUpstream {
            reason: reason.to_owned(),
        };
        let parsed = url::Url::parse(url.trim())
            .map_err(|error| invalid(&format!("not a URL ({error})")))?;
        let scheme = match parsed.scheme() {
            "http" => Scheme::HTTP,
            "https" => Scheme::HTTPS,
            _ => return Err(invalid("the scheme must be http or https")),
        };
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(invalid("credentials in the URL are not supported"));
        }
        let host = parsed
            .host_str()
            .filter(|host| !host.is_empty())
            .ok_or_else(|| invalid("the URL has no host"))?;
        let authority = match parsed.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        let authority = Authority::try_from(authority.as_str())
            .map_err(|_| invalid("the host is not a valid URI authority"))?;
        Ok(Self { scheme, authority })
    }

    /// `http` or `https`.
    #[must_use]
    pub fn scheme(&self) -> &str {
        self.scheme.as_str()
    }

    /// The host, and the port unless it is the scheme's default.
    #[must_use]
    pub fn authority(&self) -> &str {
        self.authority.as_str()
    }

    pub(crate) fn scheme_typed(&self) -> &Scheme {
        &self.scheme
    }

    pub(crate) fn authority_typed(&self) -> &Authority {
        &self.authority
    }

    /// `scheme://authority/`, the URI the connector dials.
    pub(crate) fn root_uri(&self) -> Result<http::Uri, ProxyError> {
        http::Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query("/")
            .build()
            .map_err(|_| ProxyError::InvalidUpstream {
                reason: "scheme and authority do not form a URI".to_owned(),
            })
    }
}

impl fmt::Debug for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Upstream({self})")
    }
}

impl fmt::Display for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme, self.authority)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_scheme_and_authority_only() {
        let upstream = Upstream::parse("http://backend:8080/base/?x=1#frag").unwrap();
        assert_eq!(upstream.scheme(), "http");
        assert_eq!(upstream.authority(), "backend:8080");
        assert_eq!(upstream.to_string(), "http://backend:8080");
        assert_eq!(
            upstream.root_uri().unwrap().to_string(),
            "http://backend:8080/"
        );
    }

    #[test]
    fn default_ports_are_dropped() {
        assert_eq!(
            Upstream::parse("https://example.com:443")
                .unwrap()
                .authority(),
            "example.com"
        );
        assert_eq!(
            Upstream::parse("http://example.com:443")
                .unwrap()
                .authority(),
            "example.com:443"
        );
        assert_eq!(
            Upstream::parse("http://127.0.0.1:80").unwrap().authority(),
            "127.0.0.1"
        );
    }

    #[test]
    fn rejects_what_cannot_be_dialled() {
        for url in [
            "",
            "backend:8080",
            "/relative",
            "ws://backend",
            "file:///etc/passwd",
            "http://user:secret@backend",
            "http://user@backend",
            "http://",
        ] {
            let error = Upstream::parse(url).unwrap_err();
            assert!(
                matches!(error, ProxyError::InvalidUpstream { .. }),
                "{url}: {error}"
            );
            assert!(!error.to_string().contains("secret"));
        }
    }
}
