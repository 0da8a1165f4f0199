//! The YAML shape of `identity_providers.oidc` (Authelia 4.39). Keys Portcullis does not
//! implement are `Option<IgnoredAny>` and reported by the validator (`oidc.rs`): a warning when
//! ignoring them is harmless, an error when it would weaken security.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::IgnoredAny;

use super::raw::{OneOrMany, RawDuration, RawSecret};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawIdentityProviders {
    pub oidc: Option<RawOidc>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOidc {
    pub hmac_secret: Option<RawSecret>,
    #[serde(default)]
    pub jwks: Vec<RawJwk>,
    pub issuer_private_key: Option<RawSecret>,
    pub issuer_certificate_chain: Option<RawSecret>,
    pub enable_client_debug_messages: Option<bool>,
    pub minimum_parameter_entropy: Option<i64>,
    pub enforce_pkce: Option<String>,
    pub enable_pkce_plain_challenge: Option<bool>,
    pub enable_jwt_access_token_stateless_introspection: Option<IgnoredAny>,
    pub discovery_signed_response_alg: Option<String>,
    pub discovery_signed_response_key_id: Option<String>,
    pub require_pushed_authorization_requests: Option<bool>,
    #[serde(default)]
    pub authorization_policies: BTreeMap<String, RawAuthorizationPolicy>,
    #[serde(default)]
    pub lifespans: RawLifespans,
    #[serde(default)]
    pub claims_policies: BTreeMap<String, RawClaimsPolicy>,
    #[serde(default)]
    pub scopes: BTreeMap<String, RawScope>,
    pub cors: Option<RawCors>,
    #[serde(default)]
    pub clients: Vec<RawClient>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawJwk {
    pub key_id: Option<String>,
    #[serde(rename = "use")]
    pub key_use: Option<String>,
    pub algorithm: Option<String>,
    pub key: Option<RawSecret>,
    pub certificate_chain: Option<RawSecret>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAuthorizationPolicy {
    pub default_policy: Option<String>,
    #[serde(default)]
    pub rules: Vec<RawAuthorizationRule>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAuthorizationRule {
    pub policy: Option<String>,
    #[serde(default)]
    pub subject: RawSubjects,
    #[serde(default)]
    pub networks: Vec<String>,
}

/// `subject`: one string, or a list whose items are strings or lists (AND inside a list, OR
/// across items), as in `access_control`.
#[derive(Debug, Default)]
pub(super) struct RawSubjects(pub Vec<OneOrMany>);

impl<'de> Deserialize<'de> for RawSubjects {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            One(String),
            Many(Vec<OneOrMany>),
        }
        Ok(match Either::deserialize(d)? {
            Either::One(s) => RawSubjects(vec![OneOrMany(vec![s])]),
            Either::Many(v) => RawSubjects(v),
        })
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLifespans {
    pub access_token: Option<RawDuration>,
    pub refresh_token: Option<RawDuration>,
    pub id_token: Option<RawDuration>,
    pub authorize_code: Option<RawDuration>,
    pub device_code: Option<RawDuration>,
    pub jwt_secured_authorization: Option<IgnoredAny>,
    #[serde(default)]
    pub custom: BTreeMap<String, RawCustomLifespan>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCustomLifespan {
    pub access_token: Option<RawDuration>,
    pub refresh_token: Option<RawDuration>,
    pub id_token: Option<RawDuration>,
    pub authorize_code: Option<RawDuration>,
    pub device_code: Option<RawDuration>,
    pub grants: Option<IgnoredAny>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawClaimsPolicy {
    #[serde(default)]
    pub id_token: Vec<String>,
    #[serde(default)]
    pub access_token: Vec<String>,
    pub id_token_audience_mode: Option<String>,
    pub custom_claims: Option<IgnoredAny>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawScope {
    #[serde(default)]
    pub claims: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawClient {
    pub client_id: Option<String>,
    pub client_name: Option<String>,
    pub client_secret: Option<RawSecret>,
    pub sector_identifier_uri: Option<IgnoredAny>,
    pub public: Option<bool>,
    pub redirect_uris: Option<OneOrMany>,
    pub request_uris: Option<IgnoredAny>,
    pub audience: Option<OneOrMany>,
    pub scopes: Option<OneOrMany>,
    pub grant_types: Option<OneOrMany>,
    pub response_types: Option<OneOrMany>,
    pub response_modes: Option<OneOrMany>,
    pub authorization_policy: Option<String>,
    pub lifespan: Option<String>,
    pub claims_policy: Option<String>,
    pub requested_audience_mode: Option<String>,
    pub consent_mode: Option<String>,
    pub pre_configured_consent_duration: Option<RawDuration>,
    pub require_pushed_authorization_requests: Option<bool>,
    pub require_pkce: Option<bool>,
    pub pkce_challenge_method: Option<String>,
    pub authorization_signed_response_alg: Option<String>,
    pub authorization_signed_response_key_id: Option<String>,
    pub authorization_encrypted_response_alg: Option<IgnoredAny>,
    pub authorization_encrypted_response_enc: Option<IgnoredAny>,
    pub authorization_encrypted_response_key_id: Option<IgnoredAny>,
    pub id_token_signed_response_alg: Option<String>,
    pub id_token_signed_response_key_id: Option<String>,
    pub id_token_encrypted_response_alg: Option<IgnoredAny>,
    pub id_token_encrypted_response_enc: Option<IgnoredAny>,
    pub id_token_encrypted_response_key_id: Option<IgnoredAny>,
    pub access_token_signed_response_alg: Option<String>,
    pub access_token_signed_response_key_id: Option<String>,
    pub access_token_encrypted_response_alg: Option<IgnoredAny>,
    pub access_token_encrypted_response_enc: Option<IgnoredAny>,
    pub access_token_encrypted_response_key_id: Option<IgnoredAny>,
    pub userinfo_signed_response_alg: Option<String>,
    pub userinfo_signed_response_key_id: Option<String>,
    pub userinfo_encrypted_response_alg: Option<IgnoredAny>,
    pub userinfo_encrypted_response_enc: Option<IgnoredAny>,
    pub userinfo_encrypted_response_key_id: Option<IgnoredAny>,
    pub introspection_signed_response_alg: Option<String>,
    pub introspection_signed_response_key_id: Option<String>,
    pub introspection_encrypted_response_alg: Option<IgnoredAny>,
    pub introspection_encrypted_response_enc: Option<IgnoredAny>,
    pub introspection_encrypted_response_key_id: Option<IgnoredAny>,
    pub request_object_signing_alg: Option<IgnoredAny>,
    pub request_object_encryption_alg: Option<IgnoredAny>,
    pub request_object_encryption_enc: Option<IgnoredAny>,
    pub token_endpoint_auth_method: Option<String>,
    pub token_endpoint_auth_signing_alg: Option<String>,
    pub revocation_endpoint_auth_method: Option<String>,
    pub revocation_endpoint_auth_signing_alg: Option<IgnoredAny>,
    pub introspection_endpoint_auth_method: Option<String>,
    pub introspection_endpoint_auth_signing_alg: Option<IgnoredAny>,
    pub pushed_authorization_request_endpoint_auth_method: Option<String>,
    pub pushed_authorization_request_endpoint_auth_signing_alg: Option<IgnoredAny>,
    pub allow_multiple_auth_methods: Option<bool>,
    pub jwks_uri: Option<String>,
    pub jwks: Option<Vec<RawClientJwk>>,
    #[serde(default)]
    pub post_logout_redirect_uris: Option<OneOrMany>,
    pub backchannel_logout_uri: Option<String>,
    pub backchannel_logout_session_required: Option<bool>,
}

/// A client's public key (`clients[].jwks[]`), for `private_key_jwt`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawClientJwk {
    pub key_id: Option<String>,
    pub algorithm: Option<String>,
    #[serde(rename = "use")]
    pub key_use: Option<String>,
    pub key: Option<String>,
    pub certificate_chain: Option<IgnoredAny>,
}

/// `identity_providers.oidc.cors`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCors {
    #[serde(default)]
    pub endpoints: Vec<String>,
    pub allowed_origins: Option<OneOrMany>,
    pub allowed_origins_from_client_redirect_uris: Option<bool>,
}
