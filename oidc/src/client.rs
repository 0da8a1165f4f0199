//! A registered client, as the protocol rules see it (the secret digest is checked by the server,
//! which owns the hashing pool).

use serde::{Deserialize, Serialize};

use crate::keys::Algorithm;
use crate::pkce::ChallengeMethod;
use crate::scope::Scopes;

/// How a client authenticates at the token, introspection and revocation endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum AuthMethod {
    /// HTTP Basic with the URL-encoded id and secret (RFC 6749 §2.3.1).
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
    /// A JWT assertion signed with the client secret (HS256/384/512, RFC 7523).
    ClientSecretJwt,
    /// A JWT assertion signed with the client's private key (RFC 7523).
    PrivateKeyJwt,
    /// A public client: only `client_id`.
    None,
}

impl AuthMethod {
    /// Parse Authelia's key value.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "client_secret_basic" => Some(Self::ClientSecretBasic),
            "client_secret_post" => Some(Self::ClientSecretPost),
            "client_secret_jwt" => Some(Self::ClientSecretJwt),
            "private_key_jwt" => Some(Self::PrivateKeyJwt),
            "none" => Some(Self::None),
            _ => None,
        }
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::ClientSecretJwt => "client_secret_jwt",
            Self::PrivateKeyJwt => "private_key_jwt",
            Self::None => "none",
        }
    }
}

/// A grant type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum GrantType {
    /// `authorization_code`.
    AuthorizationCode,
    /// `refresh_token`.
    RefreshToken,
    /// `client_credentials`.
    ClientCredentials,
    /// `urn:ietf:params:oauth:grant-type:device_code` (RFC 8628).
    DeviceCode,
}

impl GrantType {
    /// Parse the wire name of the grants Portcullis implements.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "authorization_code" => Some(Self::AuthorizationCode),
            "refresh_token" => Some(Self::RefreshToken),
            "client_credentials" => Some(Self::ClientCredentials),
            "urn:ietf:params:oauth:grant-type:device_code" => Some(Self::DeviceCode),
            _ => None,
        }
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::RefreshToken => "refresh_token",
            Self::ClientCredentials => "client_credentials",
            Self::DeviceCode => "urn:ietf:params:oauth:grant-type:device_code",
        }
    }
}

/// How the authorization response reaches the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResponseMode {
    /// Parameters in the redirect URI's query.
    Query,
    /// An auto-submitting HTML form (OAuth 2.0 Form Post Response Mode).
    FormPost,
}

impl ResponseMode {
    /// Parse the modes Portcullis implements.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "query" => Some(Self::Query),
            "form_post" => Some(Self::FormPost),
            _ => None,
        }
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Query => "query",
            Self::FormPost => "form_post",
        }
    }
}

/// When the user is asked to consent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConsentMode {
    /// Every time.
    Explicit,
    /// Never (the administrator consents for the users).
    Implicit,
    /// Once, then remembered for this many seconds for the same subject, client, scopes and
    /// audience.
    PreConfigured(u64),
}

/// A validated client registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    /// `client_id`.
    pub id: String,
    /// `client_name` (shown on the consent page).
    pub name: String,
    /// `public`: no secret, PKCE expected.
    pub public: bool,
    /// `redirect_uris`, matched exactly.
    pub redirect_uris: Vec<String>,
    /// Scopes the client may ask for.
    pub scopes: Scopes,
    /// Audiences the client may ask for.
    pub audience: Vec<String>,
    /// Grants the client may use.
    pub grant_types: Vec<GrantType>,
    /// Response modes the client may use.
    pub response_modes: Vec<ResponseMode>,
    /// Authentication at the token endpoint (and introspection, revocation).
    pub auth_method: AuthMethod,
    /// PKCE required for this client.
    pub require_pkce: bool,
    /// The one PKCE method accepted, when the client names one.
    pub pkce_method: Option<ChallengeMethod>,
    /// When to ask for consent.
    pub consent_mode: ConsentMode,
    /// ID token signing algorithm.
    pub id_token_alg: Algorithm,
    /// `Some` for RFC 9068 JWT access tokens; `None` for opaque ones (Authelia's default).
    pub access_token_alg: Option<Algorithm>,
    /// The authorization policy's name (`one_factor`, `two_factor` or a named policy).
    pub authorization_policy: String,
    /// `claims_policy`: the claims copied into the ID token (beyond the minimal set).
    pub id_token_claims: Vec<String>,
    /// `claims_policy`: the claims copied into JWT access tokens.
    pub access_token_claims: Vec<String>,
    /// Where RP-initiated logout may send the browser afterwards.
    pub post_logout_redirect_uris: Vec<String>,
    /// OIDC back-channel logout endpoint.
    pub backchannel_logout_uri: Option<String>,
}

impl Client {
    /// Whether the client may use `grant`.
    pub fn allows_grant(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }

    /// Whether a refresh token may be issued to this client for `scopes`.
    pub fn gets_refresh_token(&self, scopes: &Scopes) -> bool {
        scopes.wants_offline() && self.allows_grant(GrantType::RefreshToken)
    }
}
