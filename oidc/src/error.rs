//! The OAuth 2.0 / OpenID Connect error codes a provider answers with, and the crate's own error.

use std::fmt;

/// An error code of RFC 6749 §4.1.2.1 / §5.2, OpenID Connect Core §3.1.2.6, RFC 6750 and the
/// extensions Authelia uses (`invalid_state`, `insufficient_entropy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorCode {
    /// Malformed or missing parameter.
    InvalidRequest,
    /// Client authentication failed.
    InvalidClient,
    /// Code, refresh token or credentials invalid, expired, revoked or used.
    InvalidGrant,
    /// The client may not use this grant or response type.
    UnauthorizedClient,
    /// Grant type unknown.
    UnsupportedGrantType,
    /// Response type unknown or not allowed.
    UnsupportedResponseType,
    /// Response mode unknown or not allowed.
    UnsupportedResponseMode,
    /// Scope unknown or not allowed.
    InvalidScope,
    /// `state` too short (Authelia).
    InvalidState,
    /// `nonce` too short (Authelia).
    InsufficientEntropy,
    /// The user or the policy refused.
    AccessDenied,
    /// `prompt=none` without a session.
    LoginRequired,
    /// `prompt=none` and consent needed.
    ConsentRequired,
    /// `request` (JAR) is not supported.
    RequestNotSupported,
    /// `request_uri` unknown or not supported.
    InvalidRequestUri,
    /// Bearer token invalid (RFC 6750).
    InvalidToken,
    /// Bearer token lacks a scope (RFC 6750).
    InsufficientScope,
    /// The server failed.
    ServerError,
    /// Rate limited.
    TemporarilyUnavailable,
    /// Device flow: the user has not answered yet (RFC 8628).
    AuthorizationPending,
    /// Device flow: the device code expired (RFC 8628).
    ExpiredToken,
    /// Device flow: polling too fast (RFC 8628).
    SlowDown,
}

impl ErrorCode {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::UnsupportedResponseMode => "unsupported_response_mode",
            Self::InvalidScope => "invalid_scope",
            Self::InvalidState => "invalid_state",
            Self::InsufficientEntropy => "insufficient_entropy",
            Self::AccessDenied => "access_denied",
            Self::LoginRequired => "login_required",
            Self::ConsentRequired => "consent_required",
            Self::RequestNotSupported => "request_not_supported",
            Self::InvalidRequestUri => "invalid_request_uri",
            Self::InvalidToken => "invalid_token",
            Self::InsufficientScope => "insufficient_scope",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::AuthorizationPending => "authorization_pending",
            Self::ExpiredToken => "expired_token",
            Self::SlowDown => "slow_down",
        }
    }

    /// The HTTP status a token-style endpoint answers this error with (RFC 6749 §5.2: 400, and
    /// 401 for client authentication failures).
    pub fn status(self) -> u16 {
        match self {
            Self::InvalidClient | Self::InvalidToken => 401,
            Self::InsufficientScope => 403,
            Self::ServerError => 500,
            Self::TemporarilyUnavailable => 503,
            _ => 400,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An OAuth error: a code and a human description for the client (never a secret, never an
/// internal detail).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    /// The code.
    pub code: ErrorCode,
    /// `error_description`.
    pub description: String,
}

impl OAuthError {
    /// Build one.
    pub fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        Self {
            code,
            description: description.into(),
        }
    }

    /// The JSON body of RFC 6749 §5.2.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({"error": self.code.as_str(), "error_description": self.description})
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.description)
    }
}

impl std::error::Error for OAuthError {}

/// Errors of this crate outside the protocol: keys, tokens, stores.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OidcError {
    /// A signing key could not be read or used.
    #[error("signing key: {0}")]
    Key(String),
    /// A JWT could not be signed or failed verification.
    #[error("JWT: {0}")]
    Jwt(String),
    /// The store failed.
    #[error("OIDC store: {0}")]
    Store(String),
    /// A stored record could not be read back.
    #[error("OIDC store record is corrupt: {0}")]
    Corrupt(String),
    /// A provider's discovery document is unusable (relying party side).
    #[error("discovery: {0}")]
    Discovery(String),
}
