//! `identity_providers.oidc`: the OpenID Connect provider's configuration, validated with
//! Authelia's defaults and rules (docs/reference/oidc-provider.md §1). Keys Portcullis does not
//! implement are errors when ignoring them would weaken security or break the client's
//! expectations (JWE, JAR, PAR, pairwise subjects, client assertions), warnings otherwise.

use std::collections::BTreeMap;

use ipnet::IpNet;
use portcullis_auth::rate_limit::Bucket;
use portcullis_auth::users::Digest;
use portcullis_config::ConfigError;
use portcullis_core::{AuthLevel, Secret};
use portcullis_oidc::authorize::{AuthorizeSettings, EnforcePkce};
use portcullis_oidc::client::{AuthMethod, Client, ConsentMode, GrantType, ResponseMode};
use portcullis_oidc::keys::{Algorithm, SigningKey};
use portcullis_oidc::pkce::ChallengeMethod;
use portcullis_oidc::scope::Scopes;

use super::oidc_raw::{RawAuthorizationPolicy, RawClient, RawCors, RawOidc};
use super::raw::{RawDuration, RawRateLimit, RawRateLimits};
use super::secrets::SecretSources;
use super::validate::Validator;

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
    /// The endpoints (names of [`CORS_ENDPOINTS`]).
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

impl Validator<'_> {
    fn oidc_duration(
        &self,
        key: &str,
        raw: &Option<RawDuration>,
        default: u64,
    ) -> Result<u64, ConfigError> {
        let v = self.duration(key, raw, default)?;
        if v == 0 {
            return Err(self.error(key, "must be longer than zero"));
        }
        Ok(v)
    }

    fn rate_limit(
        &self,
        name: &str,
        raw: Option<&RawRateLimit>,
    ) -> Result<Vec<Bucket>, ConfigError> {
        let key = format!("server.endpoints.rate_limits.{name}");
        let Some(raw) = raw else {
            return Ok(DEFAULT_BUCKETS.to_vec());
        };
        if raw.enable == Some(false) {
            return Ok(Vec::new());
        }
        let Some(buckets) = &raw.buckets else {
            return Ok(DEFAULT_BUCKETS.to_vec());
        };
        let mut out = Vec::new();
        for (i, b) in buckets.iter().enumerate() {
            let bk = format!("{key}.buckets[{i}]");
            let period = match &b.period {
                None => {
                    return Err(self.error(&format!("{bk}.period"), "option 'period' is required"));
                }
                Some(p) => self.duration(&format!("{bk}.period"), &Some(p.clone()), 0)?,
            };
            if period == 0 {
                return Err(self.error(&format!("{bk}.period"), "must be longer than zero"));
            }
            let requests = b.requests.filter(|r| *r > 0).ok_or_else(|| {
                self.error(
                    &format!("{bk}.requests"),
                    "option 'requests' must be more than zero",
                )
            })?;
            out.push(Bucket { period, requests });
        }
        Ok(out)
    }

    pub(super) fn oidc_rate_limits(
        &mut self,
        raw: Option<&RawRateLimits>,
    ) -> Result<OidcRateLimits, ConfigError> {
        Ok(OidcRateLimits {
            pushed: self.rate_limit(
                "openid_connect_pushed_authorization_request",
                raw.and_then(|r| r.openid_connect_pushed_authorization_request.as_ref()),
            )?,
            token: self.rate_limit(
                "openid_connect_token",
                raw.and_then(|r| r.openid_connect_token.as_ref()),
            )?,
            userinfo: self.rate_limit(
                "openid_connect_userinfo",
                raw.and_then(|r| r.openid_connect_userinfo.as_ref()),
            )?,
            introspection: self.rate_limit(
                "openid_connect_introspection",
                raw.and_then(|r| r.openid_connect_introspection.as_ref()),
            )?,
            revocation: self.rate_limit(
                "openid_connect_revocation",
                raw.and_then(|r| r.openid_connect_revocation.as_ref()),
            )?,
        })
    }

    fn cors(&mut self, c: &RawCors) -> Result<Cors, ConfigError> {
        const K: &str = "identity_providers.oidc.cors";
        for e in &c.endpoints {
            if !CORS_ENDPOINTS.contains(&e.as_str()) {
                return Err(self.error(
                    &format!("{K}.endpoints"),
                    format!("'{e}' must be one of {}", CORS_ENDPOINTS.join(", ")),
                ));
            }
        }
        let listed = c
            .allowed_origins
            .as_ref()
            .map_or_else(Vec::new, |o| o.0.clone());
        let any = listed.iter().any(|o| o == "*");
        if any && (listed.len() > 1 || c.allowed_origins_from_client_redirect_uris == Some(true)) {
            return Err(self.error(&format!("{K}.allowed_origins"), "'*' must be the only origin and cannot be used with allowed_origins_from_client_redirect_uris"));
        }
        let mut origins = Vec::new();
        for o in listed.iter().filter(|o| *o != "*") {
            let valid = url::Url::parse(o).is_ok_and(|u| u.origin().ascii_serialization() == *o);
            if !valid {
                return Err(self.error(&format!("{K}.allowed_origins"), format!("'{o}' must be an origin: scheme, host and port only, no path or trailing slash")));
            }
            origins.push(o.clone());
        }
        Ok(Cors {
            endpoints: c.endpoints.clone(),
            any_https: !any
                && origins.is_empty()
                && c.allowed_origins_from_client_redirect_uris != Some(true),
            origins,
            any,
        })
    }

    pub(super) fn oidc(
        &mut self,
        raw: &RawOidc,
        networks: &BTreeMap<String, Vec<String>>,
        secrets: &SecretSources,
    ) -> Result<OidcProvider, ConfigError> {
        const P: &str = "identity_providers.oidc";
        let hmac_secret = match (&secrets.oidc_hmac_secret, &raw.hmac_secret) {
            (Some(file), _) => file.value.clone(),
            (None, Some(s)) if !s.0.is_empty() => Secret::new(s.0.clone()),
            _ => {
                return Err(self.error(
                    &format!("{P}.hmac_secret"),
                    "option 'hmac_secret' is required",
                ));
            }
        };
        if hmac_secret.expose().chars().count() < 32 {
            return Err(self.error(
                &format!("{P}.hmac_secret"),
                "the secret is shorter than 32 characters: use at least 64 random characters",
            ));
        }
        let issuer_key = match (&secrets.oidc_issuer_private_key, &raw.issuer_private_key) {
            (Some(file), _) => Some(file.value.expose().to_owned()),
            (None, Some(k)) if !k.0.trim().is_empty() => Some(k.0.clone()),
            _ => None,
        };
        if (issuer_key.is_some() || raw.issuer_certificate_chain.is_some()) && !raw.jwks.is_empty()
        {
            return Err(self.error(
                &format!("{P}.issuer_private_key"),
                "option 'issuer_private_key' and 'jwks' are mutually exclusive",
            ));
        }
        if raw.issuer_certificate_chain.is_some() {
            self.warn(
                &format!("{P}.issuer_certificate_chain"),
                "not implemented by Portcullis; ignored: the JWKS carries no x5c",
            );
        }
        let mut keys = Vec::new();
        if let Some(pem) = &issuer_key {
            let key = SigningKey::from_pem(pem, Algorithm::RS256, None)
                .map_err(|e| self.error(&format!("{P}.issuer_private_key"), e.to_string()))?;
            keys.push(key);
        }
        for (i, jwk) in raw.jwks.iter().enumerate() {
            let key = format!("{P}.jwks[{i}]");
            match jwk.key_use.as_deref() {
                None | Some("sig") => {}
                Some("enc") => {
                    return Err(self.error(
                        &format!("{key}.use"),
                        "encryption keys are not implemented by Portcullis",
                    ));
                }
                Some(other) => {
                    return Err(self.error(
                        &format!("{key}.use"),
                        format!("must be 'sig' or 'enc' but it's configured as '{other}'"),
                    ));
                }
            }
            let pem = jwk
                .key
                .as_ref()
                .filter(|k| !k.0.trim().is_empty())
                .ok_or_else(|| self.error(&format!("{key}.key"), "option 'key' is required"))?;
            let alg = match jwk.algorithm.as_deref() {
                None => None,
                Some(name) => Some(parse_alg(name).ok_or_else(|| {
                    self.error(
                        &format!("{key}.algorithm"),
                        format!("algorithm '{name}' is not supported for signing keys"),
                    )
                })?),
            };
            if let Some(kid) = &jwk.key_id {
                if !kid_ok(kid) {
                    return Err(self.error(&format!("{key}.key_id"), format!("key_id '{kid}' must be at most 100 characters of [a-zA-Z0-9._~-], starting and ending with a letter or digit")));
                }
                if keys.iter().any(|k: &SigningKey| k.kid() == kid) {
                    return Err(self.error(
                        &format!("{key}.key_id"),
                        format!("key_id '{kid}' must be unique"),
                    ));
                }
            }
            if jwk.certificate_chain.is_some() {
                self.warn(
                    &format!("{key}.certificate_chain"),
                    "not implemented by Portcullis; ignored: the JWKS carries no x5c",
                );
            }
            let signing = match alg {
                Some(alg) => SigningKey::from_pem(&pem.0, alg, jwk.key_id.as_deref()),
                None => SigningKey::from_pem_inferred(&pem.0, jwk.key_id.as_deref()),
            }
            .map_err(|e| self.error(&format!("{key}.key"), e.to_string()))?;
            keys.push(signing);
        }
        if !keys.is_empty() && !keys.iter().any(|k| k.alg() == Algorithm::RS256) {
            return Err(self.error(
                &format!("{P}.jwks"),
                "keys: must at least have one key supporting the 'RS256' algorithm",
            ));
        }
        let min_entropy = match raw.minimum_parameter_entropy {
            None | Some(0) => Some(8),
            Some(-1) => {
                self.warn(
                    &format!("{P}.minimum_parameter_entropy"),
                    "disabled: state and nonce of any length are accepted, which is unsafe",
                );
                None
            }
            Some(n) if n < 0 => {
                return Err(self.error(
                    &format!("{P}.minimum_parameter_entropy"),
                    "must be -1, 0 or positive",
                ));
            }
            Some(n) => {
                if n < 8 {
                    self.warn(
                        &format!("{P}.minimum_parameter_entropy"),
                        format!("{n} is below 8, which is unsafe and insecure"),
                    );
                }
                Some(usize::try_from(n).unwrap_or(8))
            }
        };
        let enforce_pkce = match raw.enforce_pkce.as_deref() {
            None | Some("public_clients_only") => EnforcePkce::PublicClientsOnly,
            Some("always") => EnforcePkce::Always,
            Some("never") => EnforcePkce::Never,
            Some(other) => return Err(self.error(&format!("{P}.enforce_pkce"), format!("option 'enforce_pkce' must be 'never', 'public_clients_only' or 'always', but it's configured as '{other}'"))),
        };
        let settings = AuthorizeSettings {
            enforce_pkce,
            allow_plain_pkce: raw.enable_pkce_plain_challenge.unwrap_or(false),
            min_entropy,
        };
        // Signed metadata: with a key id, that key; with an algorithm, the first key of it.
        let discovery_signing = match (
            &raw.discovery_signed_response_key_id,
            raw.discovery_signed_response_alg.as_deref(),
        ) {
            (Some(kid), alg) => match keys.iter().find(|k| k.kid() == kid) {
                Some(k) if alg.is_some_and(|a| a != "none" && parse_alg(a) != Some(k.alg())) => {
                    return Err(self.error(
                        &format!("{P}.discovery_signed_response_alg"),
                        format!(
                            "the key '{kid}' signs with {:?}, not '{}'",
                            k.alg(),
                            alg.unwrap_or("")
                        ),
                    ));
                }
                Some(k) => Some((k.alg(), Some(kid.clone()))),
                None => {
                    return Err(self.error(
                        &format!("{P}.discovery_signed_response_key_id"),
                        format!("key id '{kid}' is not in identity_providers.oidc.jwks"),
                    ));
                }
            },
            (None, None | Some("none")) => None,
            (None, Some(a)) => {
                let alg = parse_alg(a).ok_or_else(|| {
                    self.error(
                        &format!("{P}.discovery_signed_response_alg"),
                        format!("algorithm '{a}' is not implemented by Portcullis"),
                    )
                })?;
                let available = if keys.is_empty() {
                    alg == Algorithm::RS256
                } else {
                    keys.iter().any(|k| k.alg() == alg)
                };
                if !available {
                    return Err(self.error(
                        &format!("{P}.discovery_signed_response_alg"),
                        format!("no key in identity_providers.oidc.jwks signs with '{a}'"),
                    ));
                }
                Some((alg, None))
            }
        };
        let cors = match &raw.cors {
            None => Cors::default(),
            Some(c) => self.cors(c)?,
        };
        for (key, present) in [
            (
                "enable_client_debug_messages",
                raw.enable_client_debug_messages == Some(true),
            ),
            (
                "enable_jwt_access_token_stateless_introspection",
                raw.enable_jwt_access_token_stateless_introspection
                    .is_some(),
            ),
            (
                "lifespans.jwt_secured_authorization",
                raw.lifespans.jwt_secured_authorization.is_some(),
            ),
        ] {
            if present {
                self.warn(
                    &format!("{P}.{key}"),
                    "not implemented by Portcullis; ignored",
                );
            }
        }
        let l = &raw.lifespans;
        let lifespans = Lifespans {
            access_token: self.oidc_duration(
                &format!("{P}.lifespans.access_token"),
                &l.access_token,
                DEFAULT_LIFESPANS.access_token,
            )?,
            refresh_token: self.oidc_duration(
                &format!("{P}.lifespans.refresh_token"),
                &l.refresh_token,
                DEFAULT_LIFESPANS.refresh_token,
            )?,
            id_token: self.oidc_duration(
                &format!("{P}.lifespans.id_token"),
                &l.id_token,
                DEFAULT_LIFESPANS.id_token,
            )?,
            authorize_code: self.oidc_duration(
                &format!("{P}.lifespans.authorize_code"),
                &l.authorize_code,
                DEFAULT_LIFESPANS.authorize_code,
            )?,
            device_code: self.oidc_duration(
                &format!("{P}.lifespans.device_code"),
                &l.device_code,
                DEFAULT_LIFESPANS.device_code,
            )?,
        };
        let mut custom_lifespans = BTreeMap::new();
        for (name, c) in &l.custom {
            let k = format!("{P}.lifespans.custom.{name}");
            if c.grants.is_some() {
                self.warn(&format!("{k}.grants"), "per-grant lifespans are not implemented by Portcullis; the token lifespans of this entry apply to every grant");
            }
            custom_lifespans.insert(
                name.clone(),
                Lifespans {
                    access_token: self.oidc_duration(
                        &format!("{k}.access_token"),
                        &c.access_token,
                        lifespans.access_token,
                    )?,
                    refresh_token: self.oidc_duration(
                        &format!("{k}.refresh_token"),
                        &c.refresh_token,
                        lifespans.refresh_token,
                    )?,
                    id_token: self.oidc_duration(
                        &format!("{k}.id_token"),
                        &c.id_token,
                        lifespans.id_token,
                    )?,
                    authorize_code: self.oidc_duration(
                        &format!("{k}.authorize_code"),
                        &c.authorize_code,
                        lifespans.authorize_code,
                    )?,
                    device_code: self.oidc_duration(
                        &format!("{k}.device_code"),
                        &c.device_code,
                        lifespans.device_code,
                    )?,
                },
            );
        }
        let mut policies = BTreeMap::new();
        for (name, p) in &raw.authorization_policies {
            let k = format!("{P}.authorization_policies.{name}");
            if RESERVED_POLICY_NAMES.contains(&name.as_str()) {
                return Err(self.error(&k, format!("the name '{name}' is reserved")));
            }
            policies.insert(name.clone(), self.authorization_policy(&k, p, networks)?);
        }
        let mut claims_policies: BTreeMap<String, (Vec<String>, Vec<String>)> = BTreeMap::new();
        for (name, p) in &raw.claims_policies {
            let k = format!("{P}.claims_policies.{name}");
            for claim in &p.access_token {
                if !portcullis_oidc::claims::KNOWN_USER_CLAIMS.contains(&claim.as_str()) {
                    self.warn(
                        &format!("{k}.access_token"),
                        format!("claim '{claim}' is not provided by Portcullis; ignored"),
                    );
                }
            }
            if p.custom_claims.is_some() {
                self.warn(
                    &format!("{k}.custom_claims"),
                    "not implemented by Portcullis; ignored",
                );
            }
            match p.id_token_audience_mode.as_deref() {
                None | Some("specification") => {}
                Some(other) => self.warn(
                    &format!("{k}.id_token_audience_mode"),
                    format!(
                        "'{other}' is not implemented by Portcullis; the specification mode applies"
                    ),
                ),
            }
            for claim in &p.id_token {
                if !portcullis_oidc::claims::KNOWN_USER_CLAIMS.contains(&claim.as_str()) {
                    self.warn(
                        &format!("{k}.id_token"),
                        format!("claim '{claim}' is not provided by Portcullis; ignored"),
                    );
                }
            }
            claims_policies.insert(name.clone(), (p.id_token.clone(), p.access_token.clone()));
        }
        let mut custom_scopes: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (name, s) in &raw.scopes {
            let k = format!("{P}.scopes.{name}");
            if STANDARD_SCOPES.contains(&name.as_str()) {
                return Err(self.error(
                    &k,
                    format!("the scope '{name}' is a standard scope and cannot be redefined"),
                ));
            }
            for claim in &s.claims {
                if !portcullis_oidc::claims::KNOWN_USER_CLAIMS.contains(&claim.as_str()) {
                    return Err(self.error(
                        &format!("{k}.claims"),
                        format!("claim '{claim}' is not a standard claim Portcullis provides"),
                    ));
                }
            }
            custom_scopes.insert(name.clone(), s.claims.clone());
        }
        if raw.clients.is_empty() {
            return Err(self.error(
                &format!("{P}.clients"),
                "option 'clients' must have one or more clients configured",
            ));
        }
        let mut clients: Vec<OidcClient> = Vec::new();
        for (i, c) in raw.clients.iter().enumerate() {
            let client = self.oidc_client(
                i,
                c,
                &keys,
                &lifespans,
                &custom_lifespans,
                &policies,
                &claims_policies,
                &custom_scopes,
            )?;
            if clients.iter().any(|o| o.client.id == client.client.id) {
                return Err(self.error(
                    &format!("{P}.clients[{i}].client_id"),
                    format!(
                        "option 'client_id' must be unique: '{}' is used more than once",
                        client.client.id
                    ),
                ));
            }
            clients.push(client);
        }
        let mut cors = cors;
        if raw
            .cors
            .as_ref()
            .is_some_and(|c| c.allowed_origins_from_client_redirect_uris == Some(true))
        {
            for client in &clients {
                for uri in &client.client.redirect_uris {
                    let Ok(url) = url::Url::parse(uri) else {
                        continue;
                    };
                    let local = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
                    let origin = url.origin().ascii_serialization();
                    if matches!(url.scheme(), "http" | "https")
                        && !local
                        && !cors.origins.contains(&origin)
                    {
                        cors.origins.push(origin);
                    }
                }
            }
        }
        Ok(OidcProvider {
            hmac_secret,
            keys,
            settings,
            lifespans,
            clients,
            rate_limits: OidcRateLimits::default(),
            superuser_group: None,
            key_rotation: DEFAULT_KEY_ROTATION,
            require_par: raw.require_pushed_authorization_requests == Some(true),
            discovery_signing,
            cors,
        })
    }

    fn authorization_policy(
        &self,
        key: &str,
        p: &RawAuthorizationPolicy,
        networks: &BTreeMap<String, Vec<String>>,
    ) -> Result<AuthorizationPolicy, ConfigError> {
        let level = |k: &str, v: Option<&str>| -> Result<PolicyLevel, ConfigError> {
            match v {
                None | Some("two_factor") => Ok(PolicyLevel::Level(AuthLevel::TwoFactor)),
                Some("one_factor") => Ok(PolicyLevel::Level(AuthLevel::OneFactor)),
                Some("deny") => Ok(PolicyLevel::Deny),
                Some(other) => Err(self.error(k, format!("must be 'one_factor', 'two_factor' or 'deny' but it's configured as '{other}'"))),
            }
        };
        let default = level(
            &format!("{key}.default_policy"),
            p.default_policy.as_deref(),
        )?;
        if p.rules.is_empty() {
            return Err(self.error(&format!("{key}.rules"), "option 'rules' is required"));
        }
        let mut rules = Vec::new();
        for (i, r) in p.rules.iter().enumerate() {
            let rk = format!("{key}.rules[{i}]");
            if r.subject.0.is_empty() && r.networks.is_empty() {
                return Err(self.error(&rk, "a rule must have a 'subject' or 'networks'"));
            }
            let mut subjects = Vec::new();
            for list in &r.subject.0 {
                let mut all = Vec::new();
                for s in &list.0 {
                    all.push(if let Some(u) = s.strip_prefix("user:") {
                        Subject::User(u.to_owned())
                    } else if let Some(g) = s.strip_prefix("group:") {
                        Subject::Group(g.to_owned())
                    } else {
                        return Err(self.error(
                            &format!("{rk}.subject"),
                            format!("subject '{s}' must start with 'user:' or 'group:'"),
                        ));
                    });
                }
                subjects.push(all);
            }
            let mut nets = Vec::new();
            for n in &r.networks {
                let names: Vec<String> =
                    networks.get(n).cloned().unwrap_or_else(|| vec![n.clone()]);
                for text in names {
                    let net = text
                        .parse::<IpNet>()
                        .or_else(|_| text.parse::<std::net::IpAddr>().map(IpNet::from))
                        .map_err(|_| self.error(&format!("{rk}.networks"), format!("'{text}' is neither a network nor a name in definitions.network")))?;
                    nets.push(net);
                }
            }
            rules.push(AuthorizationRule {
                level: level(&format!("{rk}.policy"), r.policy.as_deref())?,
                subjects,
                networks: nets,
            });
        }
        Ok(AuthorizationPolicy { default, rules })
    }

    #[allow(clippy::too_many_arguments)]
    fn oidc_client(
        &mut self,
        i: usize,
        c: &RawClient,
        keys: &[SigningKey],
        lifespans: &Lifespans,
        custom_lifespans: &BTreeMap<String, Lifespans>,
        policies: &BTreeMap<String, AuthorizationPolicy>,
        claims_policies: &BTreeMap<String, (Vec<String>, Vec<String>)>,
        custom_scopes: &BTreeMap<String, Vec<String>>,
    ) -> Result<OidcClient, ConfigError> {
        let k = format!("identity_providers.oidc.clients[{i}]");
        let key = |name: &str| format!("{k}.{name}");
        let id = c.client_id.clone().unwrap_or_default();
        if id.is_empty() {
            return Err(self.error(&key("client_id"), "option 'client_id' is required"));
        }
        if !client_id_ok(&id) {
            return Err(self.error(
                &key("client_id"),
                format!("client_id '{id}' must be at most 100 RFC 3986 unreserved characters"),
            ));
        }
        // Keys whose absence of support would change what the client relies on: refuse.
        let refused = [
            (
                "sector_identifier_uri",
                c.sector_identifier_uri.is_some(),
                "pairwise subject identifiers are not implemented by Portcullis",
            ),
            (
                "request_uris",
                c.request_uris.is_some(),
                "request objects (JAR) are not implemented by Portcullis",
            ),
            (
                "request_object_signing_alg",
                c.request_object_signing_alg.is_some(),
                "request objects (JAR) are not implemented by Portcullis",
            ),
            (
                "request_object_encryption_alg",
                c.request_object_encryption_alg.is_some(),
                "request objects (JAR) are not implemented by Portcullis",
            ),
            (
                "authorization_encrypted_response_alg",
                c.authorization_encrypted_response_alg.is_some(),
                "JWE is not implemented by Portcullis",
            ),
            (
                "id_token_encrypted_response_alg",
                c.id_token_encrypted_response_alg.is_some(),
                "JWE is not implemented by Portcullis",
            ),
            (
                "access_token_encrypted_response_alg",
                c.access_token_encrypted_response_alg.is_some(),
                "JWE is not implemented by Portcullis",
            ),
            (
                "userinfo_encrypted_response_alg",
                c.userinfo_encrypted_response_alg.is_some(),
                "JWE is not implemented by Portcullis",
            ),
            (
                "introspection_encrypted_response_alg",
                c.introspection_encrypted_response_alg.is_some(),
                "JWE is not implemented by Portcullis",
            ),
            (
                "allow_multiple_auth_methods",
                c.allow_multiple_auth_methods == Some(true),
                "Portcullis accepts one client authentication method per request (RFC 6749 §2.3)",
            ),
            (
                "backchannel_logout_session_required",
                c.backchannel_logout_session_required == Some(true),
                "Portcullis's logout tokens carry no sid: set backchannel_logout_session_required to false",
            ),
        ];
        for (name, present, why) in refused {
            if present {
                return Err(self.error(&key(name), why.to_owned()));
            }
        }
        for (name, present) in [
            (
                "authorization_encrypted_response_enc",
                c.authorization_encrypted_response_enc.is_some()
                    || c.authorization_encrypted_response_key_id.is_some(),
            ),
            (
                "id_token_encrypted_response_enc",
                c.id_token_encrypted_response_enc.is_some()
                    || c.id_token_encrypted_response_key_id.is_some(),
            ),
            (
                "access_token_encrypted_response_enc",
                c.access_token_encrypted_response_enc.is_some()
                    || c.access_token_encrypted_response_key_id.is_some(),
            ),
            (
                "userinfo_encrypted_response_enc",
                c.userinfo_encrypted_response_enc.is_some()
                    || c.userinfo_encrypted_response_key_id.is_some(),
            ),
            (
                "introspection_encrypted_response_enc",
                c.introspection_encrypted_response_enc.is_some()
                    || c.introspection_encrypted_response_key_id.is_some(),
            ),
            (
                "request_object_encryption_enc",
                c.request_object_encryption_enc.is_some(),
            ),
            (
                "revocation_endpoint_auth_signing_alg",
                c.revocation_endpoint_auth_signing_alg.is_some(),
            ),
            (
                "introspection_endpoint_auth_signing_alg",
                c.introspection_endpoint_auth_signing_alg.is_some(),
            ),
            (
                "pushed_authorization_request_endpoint_auth_signing_alg",
                c.pushed_authorization_request_endpoint_auth_signing_alg
                    .is_some(),
            ),
        ] {
            if present {
                self.warn(&key(name), "not implemented by Portcullis; ignored");
            }
        }
        let public = c.public.unwrap_or(false);
        let secret = match &c.client_secret {
            None => None,
            Some(s) if s.0.is_empty() => None,
            Some(s) => {
                if public {
                    return Err(self.error(&key("client_secret"), "option 'client_secret' is required to be empty when option 'public' is true"));
                }
                Some(if let Some(plain) = s.0.strip_prefix("$plaintext$") {
                    ClientSecret::Plain(Secret::new(plain))
                } else if s.0.starts_with('$') {
                    ClientSecret::Digest(
                        Digest::parse(&s.0)
                            .map_err(|e| self.error(&key("client_secret"), e.to_string()))?,
                    )
                } else {
                    self.warn(&key("client_secret"), "a plaintext secret without '$plaintext$' is deprecated: store a digest ('portcullis hash-password')");
                    ClientSecret::Plain(Secret::new(s.0.clone()))
                })
            }
        };
        let auth_method = match c.token_endpoint_auth_method.as_deref() {
            None if public => AuthMethod::None,
            None => AuthMethod::ClientSecretBasic,
            Some(m) => AuthMethod::parse(m).ok_or_else(|| {
                self.error(&key("token_endpoint_auth_method"), format!("must be one of 'none', 'client_secret_post', 'client_secret_basic', 'private_key_jwt' or 'client_secret_jwt' but it's configured as '{m}'"))
            })?,
        };
        if public && auth_method != AuthMethod::None {
            return Err(self.error(
                &key("token_endpoint_auth_method"),
                "must be 'none' when option 'public' is true",
            ));
        }
        if !public && auth_method == AuthMethod::None {
            return Err(self.error(
                &key("token_endpoint_auth_method"),
                "'none' is only allowed for public clients",
            ));
        }
        if !public && secret.is_none() && auth_method != AuthMethod::PrivateKeyJwt {
            return Err(self.error(&key("client_secret"), "option 'client_secret' is required"));
        }
        // Client assertions (RFC 7523): the algorithm, and the keys of private_key_jwt.
        let assertion_alg = match auth_method {
            AuthMethod::ClientSecretJwt => {
                if !matches!(secret, Some(ClientSecret::Plain(_))) {
                    return Err(self.error(
                        &key("client_secret"),
                        "'client_secret_jwt' needs the secret itself: a '$plaintext$' secret",
                    ));
                }
                Some(match c.token_endpoint_auth_signing_alg.as_deref() {
                    None | Some("HS256") => Algorithm::HS256,
                    Some("HS384") => Algorithm::HS384,
                    Some("HS512") => Algorithm::HS512,
                    Some(other) => {
                        return Err(self.error(
                            &key("token_endpoint_auth_signing_alg"),
                            format!("'{other}' is not an HMAC algorithm for client_secret_jwt"),
                        ));
                    }
                })
            }
            AuthMethod::PrivateKeyJwt => Some(match c.token_endpoint_auth_signing_alg.as_deref() {
                None => Algorithm::RS256,
                Some(a) => parse_alg(a).ok_or_else(|| {
                    self.error(
                        &key("token_endpoint_auth_signing_alg"),
                        format!("'{a}' is not a public-key algorithm for private_key_jwt"),
                    )
                })?,
            }),
            _ => {
                if c.token_endpoint_auth_signing_alg.is_some() {
                    self.warn(
                        &key("token_endpoint_auth_signing_alg"),
                        "only used with client_secret_jwt and private_key_jwt; ignored",
                    );
                }
                None
            }
        };
        let mut assertion_keys = Vec::new();
        for (j, jwk) in c.jwks.iter().flatten().enumerate() {
            let jk = format!("{k}.jwks[{j}]");
            if jwk.key_use.as_deref().is_some_and(|u| u != "sig") {
                return Err(self.error(&format!("{jk}.use"), "only 'sig' keys are used"));
            }
            let alg = match jwk.algorithm.as_deref() {
                None => assertion_alg.unwrap_or(Algorithm::RS256),
                Some(a) => parse_alg(a).ok_or_else(|| {
                    self.error(
                        &format!("{jk}.algorithm"),
                        format!("algorithm '{a}' is not supported"),
                    )
                })?,
            };
            // A key of another algorithm than the assertions' would never be used.
            if let Some(expected) = assertion_alg
                && expected != alg
            {
                return Err(self.error(
                    &format!("{jk}.algorithm"),
                    format!(
                        "the key is {alg:?} but token_endpoint_auth_signing_alg is {expected:?}"
                    ),
                ));
            }
            let pem = jwk
                .key
                .as_deref()
                .filter(|p| !p.trim().is_empty())
                .ok_or_else(|| self.error(&format!("{jk}.key"), "option 'key' is required"))?;
            if pem.contains("PRIVATE KEY") {
                return Err(self.error(
                    &format!("{jk}.key"),
                    "a client's key must be its public key, never the private one",
                ));
            }
            if jwk.certificate_chain.is_some() {
                self.warn(
                    &format!("{jk}.certificate_chain"),
                    "not implemented by Portcullis; ignored",
                );
            }
            let parsed =
                portcullis_oidc::keys::ClientKey::from_public_pem(pem, alg, jwk.key_id.as_deref())
                    .map_err(|e| self.error(&format!("{jk}.key"), e.to_string()))?;
            assertion_keys.push(parsed);
        }
        let jwks_uri = match &c.jwks_uri {
            None => None,
            Some(_) if c.jwks.is_some() => {
                return Err(self.error(
                    &key("jwks_uri"),
                    "option 'jwks_uri' and 'jwks' are mutually exclusive",
                ));
            }
            Some(uri) => {
                // https, or http to this machine (a client on loopback).
                let ok = url::Url::parse(uri).is_ok_and(|u| {
                    u.scheme() == "https"
                        || (u.scheme() == "http"
                            && matches!(u.host_str(), Some("127.0.0.1" | "localhost" | "[::1]")))
                });
                if !ok {
                    return Err(
                        self.error(&key("jwks_uri"), format!("'{uri}' must be an https URL"))
                    );
                }
                Some(uri.clone())
            }
        };
        if auth_method == AuthMethod::PrivateKeyJwt
            && assertion_keys.is_empty()
            && jwks_uri.is_none()
        {
            return Err(self.error(
                &key("jwks"),
                "'private_key_jwt' needs the client's public keys in 'jwks' or at 'jwks_uri'",
            ));
        }
        for (name, v) in [
            (
                "revocation_endpoint_auth_method",
                &c.revocation_endpoint_auth_method,
            ),
            (
                "introspection_endpoint_auth_method",
                &c.introspection_endpoint_auth_method,
            ),
            (
                "pushed_authorization_request_endpoint_auth_method",
                &c.pushed_authorization_request_endpoint_auth_method,
            ),
        ] {
            if let Some(v) = v
                && AuthMethod::parse(v) != Some(auth_method)
            {
                return Err(self.error(&key(name), format!("Portcullis authenticates a client the same way at every endpoint: must be '{}' like token_endpoint_auth_method", auth_method.as_str())));
            }
        }
        let response_types = c
            .response_types
            .as_ref()
            .map_or_else(|| vec!["code".to_owned()], |v| v.0.clone());
        if let Some(t) = response_types.iter().find(|t| t.as_str() != "code") {
            return Err(self.error(&key("response_types"), format!("response type '{t}' is not implemented by Portcullis (only 'code'; implicit and hybrid flows are not)")));
        }
        let grant_types: Vec<String> = c
            .grant_types
            .as_ref()
            .map_or_else(|| vec!["authorization_code".to_owned()], |v| v.0.clone());
        let mut grants = Vec::new();
        for g in &grant_types {
            match GrantType::parse(g) {
                Some(grant) => grants.push(grant),
                None => {
                    return Err(self.error(
                        &key("grant_types"),
                        format!("grant type '{g}' is not implemented by Portcullis"),
                    ));
                }
            }
        }
        if public && grants.contains(&GrantType::ClientCredentials) {
            return Err(self.error(
                &key("grant_types"),
                "'client_credentials' is not allowed for public clients",
            ));
        }
        let cc_only = grants == [GrantType::ClientCredentials];
        let scope_list: Vec<String> = match &c.scopes {
            Some(v) => v.0.clone(),
            None if cc_only => Vec::new(),
            None => ["openid", "groups", "profile", "email"]
                .map(str::to_owned)
                .to_vec(),
        };
        let mut custom_scope_claims = BTreeMap::new();
        for s in &scope_list {
            if let Some(claims) = custom_scopes.get(s) {
                custom_scope_claims.insert(s.clone(), claims.clone());
            } else if !STANDARD_SCOPES.contains(&s.as_str()) && !cc_only {
                self.warn(
                    &key("scopes"),
                    format!(
                        "scope '{s}' is not a standard or configured scope: it releases no claims"
                    ),
                );
            }
            if cc_only && ["openid", "offline", "offline_access"].contains(&s.as_str()) {
                return Err(self.error(&key("scopes"), format!("scope '{s}' is not allowed for a client with only the 'client_credentials' grant")));
            }
        }
        let scopes = Scopes::from_list(scope_list);
        if grants.contains(&GrantType::RefreshToken) && !scopes.wants_offline() {
            self.warn(&key("grant_types"), "'refresh_token' without the 'offline_access' scope: no refresh token will be issued");
        }
        let redirect_uris = c
            .redirect_uris
            .as_ref()
            .map_or_else(Vec::new, |v| v.0.clone());
        for (j, uri) in redirect_uris.iter().enumerate() {
            let rk = format!("{k}.redirect_uris[{j}]");
            let parsed = url::Url::parse(uri).map_err(|_| self.error(&rk, format!("redirect URI '{uri}' must have a scheme but it's absent or the URI is not absolute")))?;
            if parsed.fragment().is_some() {
                return Err(self.error(
                    &rk,
                    format!("redirect URI '{uri}' must not have a fragment"),
                ));
            }
            if uri == "urn:ietf:wg:oauth:2.0:oob" && !public {
                return Err(self.error(
                    &rk,
                    "'urn:ietf:wg:oauth:2.0:oob' is only allowed for public clients",
                ));
            }
        }
        if redirect_uris.is_empty() && grants.contains(&GrantType::AuthorizationCode) {
            return Err(self.error(
                &key("redirect_uris"),
                "option 'redirect_uris' is required for the authorization_code grant",
            ));
        }
        let response_modes = match &c.response_modes {
            None => vec![ResponseMode::FormPost, ResponseMode::Query],
            Some(v) => {
                let mut modes = Vec::new();
                for m in &v.0 {
                    match ResponseMode::parse(m) {
                        Some(mode) => modes.push(mode),
                        None => return Err(self.error(&key("response_modes"), format!("response mode '{m}' is not implemented by Portcullis (only 'form_post' and 'query')"))),
                    }
                }
                modes
            }
        };
        let policy_name = c.authorization_policy.clone().unwrap_or_else(|| {
            if cc_only {
                "one_factor".into()
            } else {
                "two_factor".into()
            }
        });
        let policy = match policy_name.as_str() {
            "one_factor" => AuthorizationPolicy { default: PolicyLevel::Level(AuthLevel::OneFactor), rules: vec![] },
            "two_factor" => AuthorizationPolicy { default: PolicyLevel::Level(AuthLevel::TwoFactor), rules: vec![] },
            name => policies.get(name).cloned().ok_or_else(|| self.error(&key("authorization_policy"), format!("policy '{name}' must be 'one_factor', 'two_factor' or a name in identity_providers.oidc.authorization_policies")))?,
        };
        if policy.default == PolicyLevel::Level(AuthLevel::TwoFactor)
            && policy
                .rules
                .iter()
                .all(|r| r.level == PolicyLevel::Level(AuthLevel::TwoFactor))
        {
            self.warn(
                &key("authorization_policy"),
                format!("'{policy_name}' requires two factors, which Portcullis does not offer yet: every login to this client is refused (set 'one_factor')"),
            );
        }
        let client_lifespans = match c.lifespan.as_deref() {
            None | Some("") => *lifespans,
            Some(name) => *custom_lifespans.get(name).ok_or_else(|| self.error(&key("lifespan"), format!("lifespan '{name}' must be a name in identity_providers.oidc.lifespans.custom")))?,
        };
        let (id_token_claims, access_token_claims) = match c.claims_policy.as_deref() {
            None | Some("") => (Vec::new(), Vec::new()),
            Some(name) => claims_policies.get(name).cloned().ok_or_else(|| self.error(&key("claims_policy"), format!("claims policy '{name}' must be a name in identity_providers.oidc.claims_policies")))?,
        };
        match c.requested_audience_mode.as_deref() {
            None | Some("explicit") => {}
            Some(other) => self.warn(
                &key("requested_audience_mode"),
                format!("'{other}' is not implemented by Portcullis; 'explicit' applies"),
            ),
        }
        let consent_mode = match c.consent_mode.as_deref() {
            None | Some("auto") => match &c.pre_configured_consent_duration {
                Some(d) => ConsentMode::PreConfigured(self.duration(&key("pre_configured_consent_duration"), &Some(d.clone()), 604_800)?),
                None => ConsentMode::Explicit,
            },
            Some("explicit") => ConsentMode::Explicit,
            Some("implicit") => ConsentMode::Implicit,
            Some("pre-configured") => ConsentMode::PreConfigured(self.duration(&key("pre_configured_consent_duration"), &c.pre_configured_consent_duration, 604_800)?),
            Some(other) => return Err(self.error(&key("consent_mode"), format!("must be one of 'auto', 'explicit', 'implicit' or 'pre-configured' but it's configured as '{other}'"))),
        };
        let pkce_method = match c.pkce_challenge_method.as_deref() {
            None | Some("") => None,
            Some(m) => Some(ChallengeMethod::parse(m).ok_or_else(|| {
                self.error(
                    &key("pkce_challenge_method"),
                    format!("must be 'plain' or 'S256' but it's configured as '{m}'"),
                )
            })?),
        };
        let signing_alg = |name: &str,
                           alg: &Option<String>,
                           kid: &Option<String>,
                           default: Option<Algorithm>|
         -> Result<Option<Algorithm>, ConfigError> {
            if let Some(kid) = kid {
                return match keys.iter().find(|k| k.kid() == kid) {
                    Some(k)
                        if alg
                            .as_deref()
                            .is_some_and(|a| a != "none" && parse_alg(a) != Some(k.alg())) =>
                    {
                        Err(self.error(
                            &key(&format!("{name}_alg")),
                            format!(
                                "the key '{kid}' signs with {:?}, not '{}'",
                                k.alg(),
                                alg.as_deref().unwrap_or("")
                            ),
                        ))
                    }
                    Some(k) => Ok(Some(k.alg())),
                    None if keys.is_empty() => Err(self.error(
                        &key(&format!("{name}_key_id")),
                        "a key id needs identity_providers.oidc.jwks",
                    )),
                    None => Err(self.error(
                        &key(&format!("{name}_key_id")),
                        format!("key id '{kid}' is not in identity_providers.oidc.jwks"),
                    )),
                };
            }
            match alg.as_deref() {
                None => Ok(default),
                Some("none") => Ok(None),
                Some(a @ ("HS256" | "HS384" | "HS512")) => {
                    // Signed with the client's secret, which must therefore be kept as is.
                    if !matches!(secret, Some(ClientSecret::Plain(_))) {
                        return Err(self.error(
                            &key(&format!("{name}_alg")),
                            format!("'{a}' signs with the client secret, which must then be a '$plaintext$' secret"),
                        ));
                    }
                    Ok(Some(match a {
                        "HS384" => Algorithm::HS384,
                        "HS512" => Algorithm::HS512,
                        _ => Algorithm::HS256,
                    }))
                }
                Some(a) => {
                    let parsed = parse_alg(a).ok_or_else(|| {
                        self.error(
                            &key(&format!("{name}_alg")),
                            format!("algorithm '{a}' is not implemented by Portcullis"),
                        )
                    })?;
                    // Without configured keys only an RS256 key is generated.
                    let available = if keys.is_empty() {
                        parsed == Algorithm::RS256
                    } else {
                        keys.iter().any(|k| k.alg() == parsed)
                    };
                    if !available {
                        return Err(self.error(
                            &key(&format!("{name}_alg")),
                            format!("no key in identity_providers.oidc.jwks signs with '{a}'"),
                        ));
                    }
                    Ok(Some(parsed))
                }
            }
        };
        let id_token_alg = signing_alg(
            "id_token_signed_response",
            &c.id_token_signed_response_alg,
            &c.id_token_signed_response_key_id,
            Some(Algorithm::RS256),
        )?
        .ok_or_else(|| {
            self.error(
                &key("id_token_signed_response_alg"),
                "ID tokens must be signed: 'none' is not allowed",
            )
        })?;
        let access_token_alg = signing_alg(
            "access_token_signed_response",
            &c.access_token_signed_response_alg,
            &c.access_token_signed_response_key_id,
            None,
        )?;

        let userinfo_alg = signing_alg(
            "userinfo_signed_response",
            &c.userinfo_signed_response_alg,
            &c.userinfo_signed_response_key_id,
            None,
        )?;
        let introspection_alg = signing_alg(
            "introspection_signed_response",
            &c.introspection_signed_response_alg,
            &c.introspection_signed_response_key_id,
            None,
        )?;
        if c.authorization_signed_response_key_id.is_some()
            || c.authorization_signed_response_alg
                .as_deref()
                .is_some_and(|a| a != "none" && a != "RS256")
        {
            return Err(self.error(
                &key("authorization_signed_response_alg"),
                "JARM is not implemented by Portcullis",
            ));
        }
        let post_logout_redirect_uris = c
            .post_logout_redirect_uris
            .as_ref()
            .map_or_else(Vec::new, |v| v.0.clone());
        for (j, uri) in post_logout_redirect_uris.iter().enumerate() {
            let valid = url::Url::parse(uri)
                .is_ok_and(|u| u.fragment().is_none() && matches!(u.scheme(), "http" | "https"));
            if !valid {
                return Err(self.error(
                    &format!("{k}.post_logout_redirect_uris[{j}]"),
                    format!("'{uri}' must be an absolute http(s) URI without a fragment"),
                ));
            }
        }
        let backchannel_logout_uri = match &c.backchannel_logout_uri {
            None => None,
            Some(uri) => {
                let valid = url::Url::parse(uri).is_ok_and(|u| {
                    u.fragment().is_none() && matches!(u.scheme(), "http" | "https")
                });
                if !valid {
                    return Err(self.error(
                        &key("backchannel_logout_uri"),
                        format!("'{uri}' must be an absolute http(s) URI without a fragment"),
                    ));
                }
                Some(uri.clone())
            }
        };
        Ok(OidcClient {
            client: Client {
                name: c
                    .client_name
                    .clone()
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| id.clone()),
                id,
                public,
                redirect_uris,
                scopes,
                audience: c.audience.as_ref().map_or_else(Vec::new, |v| v.0.clone()),
                grant_types: grants,
                response_modes,
                auth_method,
                require_pkce: c.require_pkce.unwrap_or(false),
                pkce_method,
                consent_mode,
                id_token_alg,
                access_token_alg,
                authorization_policy: policy_name,
                id_token_claims,
                access_token_claims,
                post_logout_redirect_uris,
                backchannel_logout_uri,
            },
            secret,
            lifespans: client_lifespans,
            policy,
            custom_scope_claims,
            id_token_key_id: c.id_token_signed_response_key_id.clone(),
            access_token_key_id: c.access_token_signed_response_key_id.clone(),
            userinfo_signing: userinfo_alg.map(|a| (a, c.userinfo_signed_response_key_id.clone())),
            introspection_signing: introspection_alg
                .map(|a| (a, c.introspection_signed_response_key_id.clone())),
            require_par: c.require_pushed_authorization_requests == Some(true),
            assertion_alg,
            assertion_keys,
            jwks_uri,
        })
    }
}
