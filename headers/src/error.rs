//! Configuration errors.

/// Why a header profile configuration was rejected.
///
/// Only configuration is validated with this type. Problems found while emitting headers for a
/// request (a claim with a control byte, an `additionalHeaders` name containing `_`) never fail the
/// emission: they are reported as [`Rejection`](crate::Rejection)s next to the headers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeadersError {
    /// The name is not a valid HTTP field name (RFC 9110 token).
    #[error("invalid header name {name:?}")]
    InvalidName {
        /// The name as configured.
        name: String,
    },
    /// The name contains `_`, which CGI/WSGI back ends confuse with `-`
    /// (docs/reference/outpost.md §6.3).
    #[error("header name {name:?} contains '_'; use '-'")]
    UnderscoreInName {
        /// The name as configured.
        name: String,
    },
    /// The name belongs to HTTP framing or routing (`Host`, `Content-Length`, hop-by-hop headers)
    /// and cannot carry identity.
    #[error("header name {name:?} is reserved for HTTP framing and cannot carry identity")]
    ReservedName {
        /// The name as configured.
        name: String,
    },
    /// Two configured names are the same header (names compare case-insensitively).
    #[error("header {name:?} is configured more than once")]
    DuplicateName {
        /// The second occurrence, as configured.
        name: String,
    },
    /// A bare value or a `{placeholder}` names no identity field.
    #[error("header {header:?}: unknown identity field {field:?}")]
    UnknownField {
        /// The header whose value is wrong.
        header: String,
        /// The unknown field name.
        field: String,
    },
    /// A template has an unmatched `{` or `}`, or an empty placeholder.
    #[error("header {header:?}: malformed template {template:?}: {reason}")]
    MalformedTemplate {
        /// The header whose value is wrong.
        header: String,
        /// The template as configured.
        template: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A configured literal (template text, list separator, authentik meta value) contains a
    /// control character or is otherwise not a valid header value.
    #[error("{what}: value contains a control character or is not a valid header value")]
    InvalidValue {
        /// Which setting holds the value.
        what: String,
    },
    /// The `custom` profile configures no header at all.
    #[error("the custom header profile configures no header")]
    NoHeaders,
}
