//! What the store keeps between requests, as JSON: login flows waiting for the portal or for
//! consent, and grants (codes, access and refresh tokens).

use portcullis_oidc::OidcError;
use portcullis_oidc::authorize::AuthorizationRequest;
use portcullis_oidc::pkce::Challenge;
use portcullis_oidc::scope::Scopes;
use serde::{Deserialize, Serialize};

/// The user's answer on the consent page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) enum ConsentAnswer {
    /// Not asked yet.
    Pending,
    /// Granted.
    Granted,
    /// Refused.
    Denied,
}

/// An authorization request parked while the user logs in or consents (`flow_id`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct FlowRecord {
    /// The validated request.
    pub request: AuthorizationRequest,
    /// The request's query as received (the portal sends the browser back with it).
    pub query: String,
    /// The issuer it was made at.
    pub issuer: String,
    /// When the flow started.
    pub created_at: u64,
    /// The user it belongs to, once known (consent must come from the same user).
    pub username: Option<String>,
    /// The consent answer.
    pub consent: ConsentAnswer,
}

/// A code or token and what it grants.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct GrantRecord {
    /// The client it was issued to.
    pub client_id: String,
    /// The user, `None` for the client-credentials grant.
    pub username: Option<String>,
    /// `sub`: the user's opaque identifier, or the client id.
    pub subject: String,
    /// Granted scopes.
    pub scopes: Scopes,
    /// Granted audiences.
    pub audience: Vec<String>,
    /// The issuer.
    pub issuer: String,
    /// When the user authenticated.
    pub auth_time: u64,
    /// `amr`.
    pub amr: Vec<String>,
    /// The authorization request's nonce (codes).
    pub nonce: Option<String>,
    /// The redirect URI of the authorization (codes).
    pub redirect_uri: Option<String>,
    /// Whether the authorization request named it (then the token request must repeat it).
    pub redirect_uri_given: bool,
    /// PKCE challenge (codes).
    pub challenge: Option<Challenge>,
    /// When issued.
    pub issued_at: u64,
    /// When it expires.
    pub expires_at: u64,
    /// For a refresh token: the store key of the access token issued with it, revoked when the
    /// refresh token is used.
    pub access_token_key: Option<String>,
}

pub(super) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, OidcError> {
    serde_json::to_vec(value).map_err(|e| OidcError::Corrupt(e.to_string()))
}

pub(super) fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, OidcError> {
    serde_json::from_slice(bytes).map_err(|e| OidcError::Corrupt(e.to_string()))
}
