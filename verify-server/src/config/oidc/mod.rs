//! `identity_providers.oidc`: the OpenID Connect provider's configuration, validated with
//! Authelia's defaults and rules (docs/reference/oidc-provider.md §1). Keys Portcullis does not
//! implement are errors when ignoring them would weaken security or break the client's
//! expectations (JWE, JAR, PAR, pairwise subjects, client assertions), warnings otherwise.

use std::collections::BTreeMap;

use ipnet::IpNet;
use portcullis_auth::rate_limit::Bucket;
use portcullis_auth::users::Digest;
use portcullis_core::{AuthLevel, Secret};
use portcullis_oidc::authorize::AuthorizeSettings;
use portcullis_oidc::client::Client;
use portcullis_oidc::keys::{Algorithm, SigningKey};

mod assertions;
mod client;
mod provider;

/// Token lifetimes in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifespans {
    /// `access_token` (1h).
    pub access_token: u64,
    /// `refresh_token` (90m).
    pub refresh_token: u64,
    /// `id_token` (1h).
    pub id_token: u64,
    /// `authorize_code` (1m).
    pub authorize_code: u64,
    /// `device_code` (10m).
    pub device_code: u64,
}

const DEFAULT_LIFESPANS: Lifespans = Lifespans {
    device_code: 600,
    access_token: 3600,
    refresh_token: 5400,
    id_token: 3600,
    authorize_code: 60,
};

/// One subject condition of an authorization rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// `user:<name>`.
    User(String),
    /// `group:<name>`.
    Group(String),
}

/// What an authorization policy requires (`deny` refuses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyLevel {
    /// Allowed at this level.
    Level(AuthLevel),
    /// Refused.
    Deny,
}

/// One rule of a named authorization policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationRule {
    /// What matching users need.
    pub level: PolicyLevel,
    /// Subject lists: AND inside a list, OR across lists; empty matches everyone.
    pub subjects: Vec<Vec<Subject>>,
    /// Client networks; empty matches every address.
    pub networks: Vec<IpNet>,
}

/// A client's authorization policy, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationPolicy {
    /// When no rule matches.
    pub default: PolicyLevel,
    /// First full match wins.
    pub rules: Vec<AuthorizationRule>,
}

impl AuthorizationPolicy {
    /// What `username` with `groups` from `ip` needs. An unknown address matches no network.
    pub fn required(
        &self,
        username: &str,
        groups: &[String],
        ip: Option<std::net::IpAddr>,
    ) -> PolicyLevel {
        let matches_subject = |s: &Subject| match s {
            Subject::User(u) => u == username,
            Subject::Group(g) => groups.iter().any(|x| x == g),
        };
        for rule in &self.rules {
            let subject_ok = rule.subjects.is_empty()
                || rule
                    .subjects
                    .iter()
                    .any(|all| all.iter().all(matches_subject));
            let network_ok = rule.networks.is_empty()
                || ip.is_some_and(|ip| rule.networks.iter().any(|n| n.contains(&ip)));
            if subject_ok && network_ok {
                return rule.level;
            }
        }
        self.default
    }
}

/// A client's secret as configured.
#[derive(Clone)]
pub enum ClientSecret {
    /// `$plaintext$…` or a value without `$` (deprecated): compared in constant time.
    Plain(Secret),
    /// A password digest.
    Digest(Digest),
}

impl std::fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Plain(_) => f.write_str("ClientSecret::Plain([redacted])"),
            Self::Digest(d) => write!(f, "ClientSecret::{d:?}"),
        }
    }
}

/// A configured client.
#[derive(Debug, Clone)]
pub struct OidcClient {
    /// The protocol view.
    pub client: Client,
    /// Its secret (confidential clients).
    pub secret: Option<ClientSecret>,
    /// Its lifetimes.
    pub lifespans: Lifespans,
    /// Its authorization policy.
    pub policy: AuthorizationPolicy,
    /// Extra claims of custom scopes this client may request: scope → claims.
    pub custom_scope_claims: BTreeMap<String, Vec<String>>,
    /// `id_token_signed_response_key_id`: the key that signs its ID tokens, when named.
    pub id_token_key_id: Option<String>,
    /// `access_token_signed_response_key_id`: the key that signs its JWT access tokens, when named.
    pub access_token_key_id: Option<String>,
    /// `require_pushed_authorization_requests`: this client must use PAR.
    pub require_par: bool,
    /// `userinfo_signed_response_alg` / `_key_id`: UserInfo answered as a signed JWT.
    pub userinfo_signing: Option<(Algorithm, Option<String>)>,
    /// `introspection_signed_response_alg` / `_key_id`: introspection answered as a signed JWT
    /// (RFC 9701).
    pub introspection_signing: Option<(Algorithm, Option<String>)>,
    /// The algorithm of its client assertions (`client_secret_jwt`, `private_key_jwt`).
    pub assertion_alg: Option<Algorithm>,
    /// Its public keys (`jwks`), for `private_key_jwt`.
    pub assertion_keys: Vec<portcullis_oidc::keys::ClientKey>,
    /// Where its public keys are fetched from (`jwks_uri`), for `private_key_jwt`.
    pub jwks_uri: Option<String>,
}

/// `server.endpoints.rate_limits.openid_connect_*`: buckets per endpoint (empty: off). Only
/// failed requests count, as in Authelia.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OidcRateLimits {
    /// `openid_connect_pushed_authorization_request`.
    pub pushed: Vec<Bucket>,
    /// `openid_connect_token`.
    pub token: Vec<Bucket>,
    /// `openid_connect_userinfo`.
    pub userinfo: Vec<Bucket>,
    /// `openid_connect_introspection`.
    pub introspection: Vec<Bucket>,
    /// `openid_connect_revocation`.
    pub revocation: Vec<Bucket>,
}

/// Authelia's default buckets of every OpenID Connect endpoint.
const DEFAULT_BUCKETS: [Bucket; 4] = [
    Bucket {
        period: 60,
        requests: 30,
    },
    Bucket {
        period: 120,
        requests: 40,
    },
    Bucket {
        period: 600,
        requests: 50,
    },
    Bucket {
        period: 3600,
        requests: 100,
    },
];

/// The endpoints `cors.endpoints` may name.
const CORS_ENDPOINTS: [&str; 7] = [
    "authorization",
    "device-authorization",
    "pushed-authorization-request",
    "token",
    "introspection",
    "revocation",
    "userinfo",
];

/// `identity_providers.oidc.cors`: which endpoints answer cross-origin requests, from where.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cors {
    /// The endpoints, by Authelia's names: `authorization`, `device-authorization`,
    /// `pushed-authorization-request`, `token`, `introspection`, `revocation`, `userinfo`.
    pub endpoints: Vec<String>,
    /// Exact origins allowed; `None` with `any_https`: every https origin (Authelia's default).
    pub origins: Vec<String>,
    /// `allowed_origins: '*'`.
    pub any: bool,
    /// No origins configured and none from redirect URIs: every https origin.
    pub any_https: bool,
}

impl Cors {
    /// Whether `origin` may call `endpoint` cross-origin.
    pub fn allows(&self, endpoint: &str, origin: &str) -> bool {
        self.endpoints.iter().any(|e| e == endpoint)
            && (self.any
                || self.origins.iter().any(|o| o == origin)
                || (self.any_https && origin.starts_with("https://")))
    }
}

/// How long a generated signing key signs before the next one takes over (30 days).
pub(super) const DEFAULT_KEY_ROTATION: u64 = 30 * 86_400;

/// The provider.
#[derive(Debug)]
pub struct OidcProvider {
    /// `hmac_secret`.
    pub hmac_secret: Secret,
    /// Signing keys from `jwks`; empty: generated at first start and kept in storage.
    pub keys: Vec<SigningKey>,
    /// Authorization request rules.
    pub settings: AuthorizeSettings,
    /// Provider-wide lifetimes.
    pub lifespans: Lifespans,
    /// Clients in configuration order.
    pub clients: Vec<OidcClient>,
    /// Rate limits of the token-style endpoints.
    pub rate_limits: OidcRateLimits,
    /// `require_pushed_authorization_requests`: every client must use PAR.
    pub require_par: bool,
    /// `discovery_signed_response_alg` / `_key_id`: sign the metadata (`signed_metadata`).
    pub discovery_signing: Option<(Algorithm, Option<String>)>,
    /// `cors`.
    pub cors: Cors,
    /// `portcullis.oidc.superuser_group`: members get `is_superuser` in the `ak_proxy` claim.
    pub superuser_group: Option<String>,
    /// `portcullis.oidc.key_rotation`: the lifetime of a generated signing key in seconds (30
    /// days; 0: never rotate). Configured `jwks` are never rotated.
    pub key_rotation: u64,
}

impl OidcProvider {
    /// The client with `id`.
    pub fn client(&self, id: &str) -> Option<&OidcClient> {
        self.clients.iter().find(|c| c.client.id == id)
    }
}

const STANDARD_SCOPES: [&str; 9] = [
    "openid",
    "offline_access",
    "offline",
    "profile",
    "email",
    "groups",
    "address",
    // authentik's, for its proxy outposts.
    "ak_proxy",
    "entitlements",
];
const RESERVED_POLICY_NAMES: [&str; 3] = ["one_factor", "two_factor", "deny"];

fn client_id_ok(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 100
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

fn kid_ok(kid: &str) -> bool {
    let bytes = kid.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 100
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'-'))
}

fn parse_alg(name: &str) -> Option<Algorithm> {
    Some(match name {
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "PS256" => Algorithm::PS256,
        "PS384" => Algorithm::PS384,
        "PS512" => Algorithm::PS512,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "EdDSA" => Algorithm::EdDSA,
        _ => return None,
    })
}
