//! The discovery documents: OpenID Connect Discovery 1.0 and RFC 8414, at Authelia's paths. They
//! list what Portcullis implements, not what Authelia does (docs/reference/oidc-provider.md §2.2
//! lists Authelia's document; the differences are in the README).

use serde_json::{Value, json};

use crate::keys::Algorithm;

/// Paths relative to the issuer, as Authelia serves them.
pub mod paths {
    /// OpenID Connect Discovery.
    pub const OPENID_CONFIGURATION: &str = "/.well-known/openid-configuration";
    /// RFC 8414.
    pub const OAUTH_METADATA: &str = "/.well-known/oauth-authorization-server";
    /// JWK Set.
    pub const JWKS: &str = "/jwks.json";
    /// Authorization endpoint.
    pub const AUTHORIZATION: &str = "/api/oidc/authorization";
    /// Token endpoint.
    pub const TOKEN: &str = "/api/oidc/token";
    /// UserInfo endpoint.
    pub const USERINFO: &str = "/api/oidc/userinfo";
    /// Introspection endpoint.
    pub const INTROSPECTION: &str = "/api/oidc/introspection";
    /// Revocation endpoint.
    pub const REVOCATION: &str = "/api/oidc/revocation";
    /// Consent API.
    pub const CONSENT: &str = "/api/oidc/consent";
    /// Device authorization (RFC 8628).
    pub const DEVICE_AUTHORIZATION: &str = "/api/oidc/device-authorization";
    /// The portal page where the user enters a device's code.
    pub const DEVICE_PAGE: &str = "/consent/openid/device-authorization";
    /// Pushed authorization requests (RFC 9126).
    pub const PUSHED_AUTHORIZATION_REQUEST: &str = "/api/oidc/pushed-authorization-request";
    /// RP-initiated logout (Authelia has none).
    pub const END_SESSION: &str = "/api/oidc/end-session";
}

/// What the document depends on.
#[derive(Debug, Clone)]
pub struct DiscoveryInput<'a> {
    /// The issuer (no trailing slash).
    pub issuer: &'a str,
    /// Algorithms the provider's keys sign ID tokens with.
    pub signing_algs: &'a [Algorithm],
    /// `enable_pkce_plain_challenge`.
    pub plain_pkce: bool,
    /// `require_pushed_authorization_requests`.
    pub require_par: bool,
}

fn alg_names(algs: &[Algorithm]) -> Vec<String> {
    algs.iter().map(|a| format!("{a:?}")).collect()
}

/// RFC 8414 authorization server metadata.
pub fn oauth_metadata(input: &DiscoveryInput<'_>) -> Value {
    let i = input.issuer;
    let mut challenge = vec!["S256"];
    if input.plain_pkce {
        challenge.push("plain");
    }
    json!({
        "issuer": i,
        "jwks_uri": format!("{i}{}", paths::JWKS),
        "authorization_endpoint": format!("{i}{}", paths::AUTHORIZATION),
        "token_endpoint": format!("{i}{}", paths::TOKEN),
        "introspection_endpoint": format!("{i}{}", paths::INTROSPECTION),
        "revocation_endpoint": format!("{i}{}", paths::REVOCATION),
        "response_types_supported": ["code"],
        "response_modes_supported": ["form_post", "query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials", "urn:ietf:params:oauth:grant-type:device_code"],
        "device_authorization_endpoint": format!("{i}{}", paths::DEVICE_AUTHORIZATION),
        "scopes_supported": ["offline_access", "openid", "profile", "email", "groups", "ak_proxy", "entitlements"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"],
        "code_challenge_methods_supported": challenge,
        "authorization_response_iss_parameter_supported": true,
        "request_parameter_supported": false,
        "pushed_authorization_request_endpoint": format!("{i}{}", paths::PUSHED_AUTHORIZATION_REQUEST),
        "request_uri_parameter_supported": true,
        "require_request_uri_registration": false,
        "require_pushed_authorization_requests": input.require_par,
        "introspection_signing_alg_values_supported": signed_or_not(input.signing_algs),
    })
}

/// `none` (a plain JSON answer) and the algorithm of every signing key, for the answers a
/// client may ask to be signed (UserInfo, introspection).
fn signed_or_not(algs: &[Algorithm]) -> Vec<String> {
    let mut names = vec!["none".to_owned()];
    names.extend(alg_names(algs));
    names
}

/// OpenID Connect Discovery 1.0 document: the RFC 8414 fields plus the OpenID ones.
pub fn openid_configuration(input: &DiscoveryInput<'_>) -> Value {
    let mut doc = oauth_metadata(input);
    if let Value::Object(map) = &mut doc {
        let i = input.issuer;
        map.insert(
            "userinfo_endpoint".into(),
            json!(format!("{i}{}", paths::USERINFO)),
        );
        map.insert(
            "end_session_endpoint".into(),
            json!(format!("{i}{}", paths::END_SESSION)),
        );
        map.insert("backchannel_logout_supported".into(), json!(true));
        map.insert("backchannel_logout_session_supported".into(), json!(false));
        map.insert("subject_types_supported".into(), json!(["public"]));
        map.insert(
            "id_token_signing_alg_values_supported".into(),
            json!(alg_names(input.signing_algs)),
        );
        map.insert(
            "userinfo_signing_alg_values_supported".into(),
            json!(signed_or_not(input.signing_algs)),
        );
        map.insert(
            "claims_supported".into(),
            json!([
                "amr",
                "aud",
                "azp",
                "client_id",
                "exp",
                "iat",
                "iss",
                "jti",
                "auth_time",
                "nonce",
                "groups",
                "sub",
                "name",
                "preferred_username",
                "email",
                "email_verified",
                "alt_emails",
                "ak_proxy",
                "entitlements",
                "roles"
            ]),
        );
        map.insert("claim_types_supported".into(), json!(["normal"]));
        map.insert("claims_parameter_supported".into(), json!(false));
        map.insert(
            "prompt_values_supported".into(),
            json!(["consent", "login", "none", "select_account"]),
        );
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_flags() {
        let doc = openid_configuration(&DiscoveryInput {
            issuer: "https://auth.example.com",
            signing_algs: &[Algorithm::RS256, Algorithm::ES256],
            plain_pkce: false,
            require_par: false,
        });
        assert_eq!(doc["issuer"], "https://auth.example.com");
        assert_eq!(
            doc["token_endpoint"],
            "https://auth.example.com/api/oidc/token"
        );
        assert_eq!(doc["jwks_uri"], "https://auth.example.com/jwks.json");
        assert_eq!(
            doc["id_token_signing_alg_values_supported"],
            json!(["RS256", "ES256"])
        );
        assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(
            doc["userinfo_signing_alg_values_supported"],
            json!(["none", "RS256", "ES256"])
        );
        assert_eq!(
            doc["introspection_signing_alg_values_supported"],
            json!(["none", "RS256", "ES256"])
        );
        assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
        let meta = oauth_metadata(&DiscoveryInput {
            issuer: "https://a",
            signing_algs: &[],
            plain_pkce: true,
            require_par: true,
        });
        assert!(meta.get("userinfo_endpoint").is_none());
        assert_eq!(
            meta["code_challenge_methods_supported"],
            json!(["S256", "plain"])
        );
    }
}
