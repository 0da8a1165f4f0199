//! Authelia's listen addresses: `[tcp://]host:port[/path]`. `tcp://:9091/` listens on every
//! address (IPv6 and IPv4); the path is kept, as a prefix the server is served under.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

/// Why a listen address was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddressError {
    /// A scheme other than `tcp`, `tcp4`, `tcp6` or `http`.
    #[error("unsupported scheme {0:?}: use tcp://host:port/")]
    UnsupportedScheme(String),
    /// The port is not a number from 0 to 65535.
    #[error("invalid port {0:?}")]
    InvalidPort(String),
    /// The host is not an IP address (or `localhost`).
    #[error("invalid listen address {0:?}: use an IP address")]
    InvalidHost(String),
}

/// A parsed listen address: the socket to bind and the path the server is served under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenAddress {
    socket: SocketAddr,
    path: String,
}

impl ListenAddress {
    /// Parse `text`; `default_port` applies when it names none.
    ///
    /// ```
    /// use portcullis_config::ListenAddress;
    /// let a = ListenAddress::parse("tcp://[::1]:9091/authelia/", 80).unwrap();
    /// assert_eq!(a.socket().to_string(), "[::1]:9091");
    /// assert_eq!(a.prefix(), Some("/authelia"));
    /// assert_eq!(ListenAddress::parse("127.0.0.1", 9091).unwrap().prefix(), None);
    /// ```
    pub fn parse(text: &str, default_port: u16) -> Result<Self, AddressError> {
        let rest = match text.split_once("://") {
            Some(("tcp" | "tcp4" | "tcp6" | "http", rest)) => rest,
            Some((other, _)) => return Err(AddressError::UnsupportedScheme(other.to_owned())),
            None => text,
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].to_owned()),
            None => (rest, "/".to_owned()),
        };
        let port = |p: &str| {
            p.parse::<u16>()
                .map_err(|_| AddressError::InvalidPort(p.to_owned()))
        };
        let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
            // `[v6]` or `[v6]:port`
            let (host, rest) = bracketed
                .split_once(']')
                .ok_or_else(|| AddressError::InvalidHost(authority.to_owned()))?;
            match rest.strip_prefix(':') {
                Some(p) => (host, port(p)?),
                None if rest.is_empty() => (host, default_port),
                None => return Err(AddressError::InvalidHost(authority.to_owned())),
            }
        } else {
            match authority.rsplit_once(':') {
                // A bare IPv6 address without brackets has several colons and no port.
                Some((h, _)) if h.contains(':') => (authority, default_port),
                Some((h, p)) => (h, port(p)?),
                None => (authority, default_port),
            }
        };
        let ip: IpAddr = if host.is_empty() {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        } else if host == "localhost" {
            IpAddr::from([127, 0, 0, 1])
        } else {
            host.parse()
                .map_err(|_| AddressError::InvalidHost(host.to_owned()))?
        };
        Ok(Self {
            socket: SocketAddr::new(ip, port),
            path,
        })
    }

    /// A listen address from its parts (`path` starts with `/`).
    pub fn new(socket: SocketAddr, path: impl Into<String>) -> Self {
        Self {
            socket,
            path: path.into(),
        }
    }

    /// The socket to bind.
    pub fn socket(&self) -> SocketAddr {
        self.socket
    }

    /// The path as written (`/` when none was).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The path prefix the server is served under, without a trailing slash; `None` for the root.
    pub fn prefix(&self) -> Option<&str> {
        let trimmed = self.path.trim_end_matches('/');
        (!trimmed.is_empty()).then_some(trimmed)
    }
}

impl fmt::Display for ListenAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tcp://{}{}", self.socket, self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authelia_forms() {
        let cases = [
            ("tcp://:9091/", "[::]:9091", "/"),
            ("tcp://0.0.0.0:9091", "0.0.0.0:9091", "/"),
            ("tcp4://127.0.0.1:80/x", "127.0.0.1:80", "/x"),
            ("tcp6://[::1]:9091/auth/", "[::1]:9091", "/auth/"),
            ("localhost:8080", "127.0.0.1:8080", "/"),
            ("[::1]", "[::1]:9091", "/"),
            ("tcp://[::1]/x", "[::1]:9091", "/x"),
            ("::1", "[::1]:9091", "/"),
            (":9959/metrics", "[::]:9959", "/metrics"),
            ("127.0.0.1", "127.0.0.1:9091", "/"),
        ];
        for (text, socket, path) in cases {
            let a = ListenAddress::parse(text, 9091).unwrap();
            assert_eq!(a.socket().to_string(), socket, "{text}");
            assert_eq!(a.path(), path, "{text}");
        }
        assert_eq!(
            ListenAddress::parse("unix:///run/x.sock", 1),
            Err(AddressError::UnsupportedScheme("unix".into()))
        );
        assert_eq!(
            ListenAddress::parse("tcp://:99999/", 1),
            Err(AddressError::InvalidPort("99999".into()))
        );
        assert_eq!(
            ListenAddress::parse("tcp://auth.example.com:9091/", 1),
            Err(AddressError::InvalidHost("auth.example.com".into()))
        );
        assert!(matches!(
            ListenAddress::parse("tcp://[::1:9091/", 1),
            Err(AddressError::InvalidHost(_))
        ));
        assert_eq!(
            ListenAddress::parse("tcp://:9091/a/b/", 1)
                .unwrap()
                .prefix(),
            Some("/a/b")
        );
    }
}
