//! Claims: what the ID token, UserInfo and introspection say about a user, by scope
//! (docs/reference/oidc-provider.md §2.6: Authelia 4.39's minimal ID token; profile, email and
//! groups from UserInfo unless the client's claims policy copies them into the ID token).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256, Sha384, Sha512};

use crate::keys::Algorithm;
use crate::scope::Scopes;

/// What the user backend knows about a user.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserProfile {
    /// Login name (`preferred_username`).
    pub username: String,
    /// Display name (`name`).
    pub display_name: String,
    /// Email addresses, the first is `email`.
    pub emails: Vec<String>,
    /// Group names.
    pub groups: Vec<String>,
    /// Extra attributes (the `ak_proxy` claim's `user_attributes`; `entitlements`).
    pub attributes: Map<String, Value>,
    /// Whether the user is an administrator (the `ak_proxy` claim's `is_superuser`).
    pub is_superuser: bool,
}

/// The user claims Portcullis can release.
pub const KNOWN_USER_CLAIMS: [&str; 9] = [
    "name",
    "preferred_username",
    "email",
    "email_verified",
    "alt_emails",
    "groups",
    "ak_proxy",
    "entitlements",
    "roles",
];

/// The claims each standard scope releases (OpenID Connect Core §5.4, plus `groups`).
pub fn scope_claims(scope: &str) -> &'static [&'static str] {
    match scope {
        "profile" => &["name", "preferred_username"],
        "email" => &["email", "email_verified", "alt_emails"],
        "groups" => &["groups"],
        // authentik's scopes, read by its proxy outposts.
        "ak_proxy" => &["ak_proxy"],
        "entitlements" => &["entitlements", "roles"],
        _ => &[],
    }
}

/// The value of one user claim, when the user has it.
pub fn user_claim(profile: &UserProfile, claim: &str) -> Option<Value> {
    match claim {
        "name" if !profile.display_name.is_empty() => Some(json!(profile.display_name)),
        "preferred_username" => Some(json!(profile.username)),
        "email" => profile.emails.first().map(|e| json!(e)),
        // Authelia reports every address as verified: the administrator wrote it.
        "email_verified" => profile.emails.first().map(|_| json!(true)),
        "alt_emails" if profile.emails.len() > 1 => Some(json!(profile.emails[1..])),
        "groups" => Some(json!(profile.groups)),
        "ak_proxy" => Some(json!({
            "user_attributes": profile.attributes,
            "is_superuser": profile.is_superuser,
        })),
        "entitlements" | "roles" => Some(match profile.attributes.get("entitlements") {
            Some(Value::Array(list)) => Value::Array(list.clone()),
            Some(Value::String(one)) => json!([one]),
            _ => json!([]),
        }),
        _ => None,
    }
}

/// The user claims `scopes` release, in scope order.
pub fn released_claims(profile: &UserProfile, scopes: &Scopes) -> Map<String, Value> {
    let mut out = Map::new();
    for scope in scopes.iter() {
        for claim in scope_claims(scope) {
            if let Some(v) = user_claim(profile, claim) {
                out.insert((*claim).to_owned(), v);
            }
        }
    }
    out
}

/// OpenID Connect Core §3.1.3.6 `at_hash`: the left half of the access token's hash with the ID
/// token's hash function, base64url.
pub fn at_hash(access_token: &str, alg: Algorithm) -> String {
    let digest: Vec<u8> = match alg {
        Algorithm::RS384 | Algorithm::PS384 | Algorithm::ES384 | Algorithm::HS384 => {
            Sha384::digest(access_token.as_bytes()).to_vec()
        }
        Algorithm::RS512 | Algorithm::PS512 | Algorithm::HS512 | Algorithm::EdDSA => {
            Sha512::digest(access_token.as_bytes()).to_vec()
        }
        _ => Sha256::digest(access_token.as_bytes()).to_vec(),
    };
    URL_SAFE_NO_PAD.encode(&digest[..digest.len() / 2])
}

/// What an ID token is minted from.
#[derive(Debug, Clone)]
pub struct IdTokenInput<'a> {
    /// `iss`.
    pub issuer: &'a str,
    /// `sub`.
    pub subject: &'a str,
    /// The client (`aud`, `azp`).
    pub client_id: &'a str,
    /// `iat`.
    pub now: u64,
    /// Lifetime in seconds.
    pub lifespan: u64,
    /// `auth_time`.
    pub auth_time: u64,
    /// `nonce`.
    pub nonce: Option<&'a str>,
    /// `amr`.
    pub amr: &'a [String],
    /// `jti`.
    pub jti: &'a str,
    /// `at_hash`, when an access token is issued with it.
    pub at_hash: Option<String>,
    /// User claims to copy in (the client's claims policy, filtered by the granted scopes).
    pub extra: Map<String, Value>,
}

/// The ID token's claims.
pub fn id_token_claims(input: &IdTokenInput<'_>) -> Map<String, Value> {
    let mut claims = Map::new();
    claims.insert("iss".into(), json!(input.issuer));
    claims.insert("sub".into(), json!(input.subject));
    claims.insert("aud".into(), json!([input.client_id]));
    claims.insert("exp".into(), json!(input.now + input.lifespan));
    claims.insert("iat".into(), json!(input.now));
    claims.insert("auth_time".into(), json!(input.auth_time));
    if let Some(nonce) = input.nonce {
        claims.insert("nonce".into(), json!(nonce));
    }
    if !input.amr.is_empty() {
        claims.insert("amr".into(), json!(input.amr));
    }
    claims.insert("azp".into(), json!(input.client_id));
    claims.insert("jti".into(), json!(input.jti));
    if let Some(h) = &input.at_hash {
        claims.insert("at_hash".into(), json!(h));
    }
    for (k, v) in &input.extra {
        claims.entry(k.clone()).or_insert_with(|| v.clone());
    }
    claims
}

/// The claims `policy_claims` names that `scopes` allow, for copying into the ID token.
pub fn policy_claims(
    profile: &UserProfile,
    scopes: &Scopes,
    policy_claims: &[String],
) -> Map<String, Value> {
    let released = released_claims(profile, scopes);
    policy_claims
        .iter()
        .filter_map(|c| released.get(c).map(|v| (c.clone(), v.clone())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn john() -> UserProfile {
        UserProfile {
            username: "john".into(),
            display_name: "John Doe".into(),
            emails: vec!["john@example.com".into(), "j@example.com".into()],
            groups: vec!["admins".into(), "dev".into()],
            attributes: serde_json::from_value(
                json!({"department": "ops", "entitlements": ["billing"]}),
            )
            .unwrap(),
            is_superuser: true,
        }
    }

    #[test]
    fn authentik_scopes() {
        let c = released_claims(
            &john(),
            &Scopes::parse("openid ak_proxy entitlements").unwrap(),
        );
        assert_eq!(
            c["ak_proxy"],
            json!({"user_attributes": {"department": "ops", "entitlements": ["billing"]}, "is_superuser": true})
        );
        assert_eq!(c["entitlements"], json!(["billing"]));
        assert_eq!(c["roles"], json!(["billing"]));
        let mut nobody = john();
        nobody.attributes.clear();
        nobody.is_superuser = false;
        let c = released_claims(&nobody, &Scopes::parse("ak_proxy entitlements").unwrap());
        assert_eq!(
            c["ak_proxy"],
            json!({"user_attributes": {}, "is_superuser": false})
        );
        assert_eq!(c["entitlements"], json!([]));
    }

    #[test]
    fn scopes_release_their_claims_only() {
        let c = released_claims(&john(), &Scopes::parse("openid email").unwrap());
        assert_eq!(c["email"], "john@example.com");
        assert_eq!(c["email_verified"], true);
        assert_eq!(c["alt_emails"], json!(["j@example.com"]));
        assert!(c.get("groups").is_none());
        assert!(c.get("name").is_none());
        let c = released_claims(&john(), &Scopes::parse("profile groups").unwrap());
        assert_eq!(c["preferred_username"], "john");
        assert_eq!(c["name"], "John Doe");
        assert_eq!(c["groups"], json!(["admins", "dev"]));
    }

    #[test]
    fn minimal_id_token() {
        let c = id_token_claims(&IdTokenInput {
            issuer: "https://auth.example.com",
            subject: "uuid",
            client_id: "app",
            now: 100,
            lifespan: 3600,
            auth_time: 90,
            nonce: Some("n0nce-value"),
            amr: &["pwd".to_owned()],
            jti: "j",
            at_hash: None,
            extra: Map::new(),
        });
        let keys: Vec<&str> = c.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "amr",
                "aud",
                "auth_time",
                "azp",
                "exp",
                "iat",
                "iss",
                "jti",
                "nonce",
                "sub"
            ]
        );
        assert_eq!(c["exp"], 3700);
        assert_eq!(c["aud"], json!(["app"]));
    }

    #[test]
    fn at_hash_matches_openid_example() {
        // OpenID Connect Core A.3: access token jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y,
        // at_hash 77QmUPtjPfzWtF2AnpK9RQ (RS256).
        assert_eq!(
            at_hash(
                "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y",
                Algorithm::RS256
            ),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
    }
}
