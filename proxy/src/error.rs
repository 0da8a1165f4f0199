//! The one error type of the crate, and the classification of hyper, hyper-util and rustls errors
//! into it.

use std::error::Error as StdError;
use std::fmt::Write as _;
use std::time::Duration;

/// Why a request could not be forwarded, or a client could not be built.
///
/// The texts name what failed (the connection, the certificate, the upstream URL) and carry the
/// messages of the underlying errors; they never contain request or response headers or bodies, so
/// they may be logged. A server maps these to a `502 Bad Gateway` or `504 Gateway Timeout` for the
/// client without showing the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// The upstream URL cannot be used: not `http` or `https`, no host, credentials in it, or not a
    /// URL at all.
    #[error("invalid upstream URL: {reason}")]
    InvalidUpstream {
        /// What is wrong with it (the URL itself is not repeated: it may hold credentials).
        reason: String,
    },
    /// The request cannot be forwarded as it is (a `CONNECT` request, or a path the upstream URI
    /// cannot hold).
    #[error("request cannot be forwarded: {reason}")]
    InvalidRequest {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The client options cannot be turned into a TLS configuration (an extra root that is not a
    /// certificate, say).
    #[error("invalid proxy client options: {reason}")]
    Options {
        /// What is wrong with them.
        reason: String,
    },
    /// No connection to the upstream: refused, unreachable, or its name does not resolve.
    #[error("cannot connect to the upstream: {detail}")]
    Connect {
        /// The messages of the underlying errors, outermost first.
        detail: String,
    },
    /// Connecting to the upstream (TCP and TLS handshake) took longer than the connect timeout.
    #[error("connecting to the upstream timed out after {after:?}")]
    Timeout {
        /// The configured connect timeout.
        after: Duration,
    },
    /// The TLS handshake with the upstream failed: its certificate is not trusted or does not name
    /// it, or the two sides share no protocol version or cipher suite.
    #[error("TLS with the upstream failed: {detail}")]
    Tls {
        /// The messages of the underlying errors, outermost first.
        detail: String,
    },
    /// A protocol upgrade (WebSocket) cannot be carried out: the client connection cannot be
    /// upgraded, or the upstream switched to a protocol the client did not ask for.
    #[error("upgrade failed: {reason}")]
    Upgrade {
        /// What went wrong.
        reason: String,
    },
    /// The exchange with the upstream failed after connecting: it closed the connection, or sent
    /// something that is not HTTP.
    #[error("the exchange with the upstream failed: {detail}")]
    Other {
        /// The messages of the underlying errors, outermost first.
        detail: String,
    },
}

impl ProxyError {
    /// Whether no connection to the upstream could be made (refused, unresolvable, timed out, or
    /// the TLS handshake failed): the request never reached the upstream.
    #[must_use]
    pub fn is_connect(&self) -> bool {
        matches!(
            self,
            Self::Connect { .. } | Self::Timeout { .. } | Self::Tls { .. }
        )
    }

    /// Whether the connect timeout expired.
    #[must_use]
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout { .. })
    }

    /// Classifies an error of the pooled client.
    pub(crate) fn from_client(error: &hyper_util::client::legacy::Error, after: Duration) -> Self {
        let mut tls = false;
        let mut timed_out = false;
        for cause in causes(error) {
            if cause
                .downcast_ref::<tokio_rustls::rustls::Error>()
                .is_some()
            {
                tls = true;
            }
            if cause.downcast_ref::<ConnectTimedOut>().is_some() {
                timed_out = true;
            }
            if let Some(io) = cause.downcast_ref::<std::io::Error>()
                && io.kind() == std::io::ErrorKind::TimedOut
                && error.is_connect()
            {
                timed_out = true;
            }
        }
        let detail = describe(error);
        if timed_out {
            Self::Timeout { after }
        } else if tls {
            Self::Tls { detail }
        } else if error.is_connect() {
            Self::Connect { detail }
        } else {
            Self::Other { detail }
        }
    }
}

/// The connector's own error: TCP connect plus TLS handshake took longer than the timeout.
#[derive(Debug, thiserror::Error)]
#[error("connect timed out")]
pub(crate) struct ConnectTimedOut;

/// The error and its causes, outermost first. An `io::Error` that wraps another error reports the
/// wrapped error's *source* as its own, skipping the wrapped error itself (where tokio-rustls puts
/// the `rustls::Error`, inside another `io::Error` from hyper-rustls), so for an `io::Error` the
/// next cause is the wrapped error.
fn causes<'a>(
    error: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    let mut next: Option<&'a (dyn StdError + 'static)> = Some(error);
    std::iter::from_fn(move || {
        let current = next?;
        next = match current.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|wrapped| -> &'a (dyn StdError + 'static) { wrapped }),
            None => current.source(),
        };
        Some(current)
    })
}

/// The messages of the error and its causes joined with `": "`, skipping a message that repeats
/// the end of the previous one (io errors display their wrapped error).
pub(crate) fn describe(error: &(dyn StdError + 'static)) -> String {
    let mut text = String::new();
    let mut previous = String::new();
    for cause in causes(error) {
        let message = cause.to_string();
        if message.is_empty() || previous.ends_with(&message) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        let _ = write!(text, "{message}");
        previous = message;
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn causes_look_inside_io_errors() {
        let inner = tokio_rustls::rustls::Error::InvalidCertificate(
            tokio_rustls::rustls::CertificateError::UnknownIssuer,
        );
        let outer = Outer(std::io::Error::other(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            inner,
        )));
        let found = causes(&outer).any(|cause| {
            cause
                .downcast_ref::<tokio_rustls::rustls::Error>()
                .is_some()
        });
        assert!(found);
        assert_eq!(
            describe(&outer),
            "outer: invalid peer certificate: UnknownIssuer"
        );
    }

    #[test]
    fn connect_covers_timeout_and_tls() {
        assert!(
            ProxyError::Timeout {
                after: Duration::from_secs(1)
            }
            .is_connect()
        );
        assert!(
            !ProxyError::Other {
                detail: String::new()
            }
            .is_connect()
        );
    }
}
