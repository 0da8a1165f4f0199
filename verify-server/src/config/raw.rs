//! The YAML shape of Authelia's `configuration.yml`, plus the `portcullis:` section.
//!
//! Supported keys are typed fields; keys Authelia documents but Portcullis does not implement are
//! `Option<IgnoredAny>` fields, reported as warnings; anything else is rejected by
//! `deny_unknown_fields`, which names the key and line.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::IgnoredAny;

pub(super) use portcullis_config::{RawDuration, RawSecret};

/// One string or a list of strings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct OneOrMany(pub Vec<String>);

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            One(String),
            Many(Vec<String>),
        }
        Ok(match Either::deserialize(d)? {
            Either::One(s) => OneOrMany(vec![s]),
            Either::Many(v) => OneOrMany(v),
        })
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default)]
    pub server: RawServer,
    #[serde(default)]
    pub log: RawLog,
    #[serde(default)]
    pub authentication_backend: RawAuthBackend,
    #[serde(default)]
    pub access_control: Option<portcullis_policy::AccessControlConfig>,
    #[serde(default)]
    pub session: RawSession,
    #[serde(default)]
    pub regulation: RawRegulation,
    #[serde(default)]
    pub storage: RawStorage,
    #[serde(default)]
    pub telemetry: RawTelemetry,
    #[serde(default)]
    pub definitions: RawDefinitions,
    /// Absent in an Authelia file (`portcullis check-config` then reports what differs).
    pub portcullis: Option<RawPortcullis>,
    // Authelia sections Portcullis does not implement.
    pub theme: Option<IgnoredAny>,
    pub certificates_directory: Option<String>,
    pub jwt_secret: Option<IgnoredAny>,
    pub default_redirection_url: Option<IgnoredAny>,
    pub default_2fa_method: Option<String>,
    pub identity_validation: Option<super::second_factor::RawIdentityValidation>,
    pub identity_providers: Option<super::oidc_raw::RawIdentityProviders>,
    pub notifier: Option<super::notifier::RawNotifier>,
    pub totp: Option<super::second_factor::RawTotp>,
    pub webauthn: Option<super::webauthn::RawWebAuthn>,
    pub duo_api: Option<IgnoredAny>,
    pub ntp: Option<IgnoredAny>,
    pub password_policy: Option<super::passwords::RawPasswordPolicy>,
    pub privacy_policy: Option<IgnoredAny>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
    pub address: Option<String>,
    #[serde(default)]
    pub tls: RawTls,
    #[serde(default)]
    pub endpoints: RawEndpoints,
    pub path: Option<IgnoredAny>,
    pub asset_path: Option<IgnoredAny>,
    pub disable_healthcheck: Option<IgnoredAny>,
    pub buffers: Option<IgnoredAny>,
    pub timeouts: Option<IgnoredAny>,
    pub headers: Option<IgnoredAny>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTls {
    pub certificate: Option<String>,
    pub key: Option<String>,
    pub client_certificates: Option<IgnoredAny>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEndpoints {
    #[serde(default)]
    pub authz: BTreeMap<String, RawAuthzEndpoint>,
    pub enable_pprof: Option<IgnoredAny>,
    pub enable_expvars: Option<IgnoredAny>,
    pub rate_limits: Option<RawRateLimits>,
}

/// `server.endpoints.rate_limits`: the OpenID Connect limits are enforced; the others belong to
/// features Portcullis does not have yet.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRateLimits {
    pub openid_connect_token: Option<RawRateLimit>,
    pub openid_connect_pushed_authorization_request: Option<RawRateLimit>,
    pub openid_connect_userinfo: Option<RawRateLimit>,
    pub openid_connect_introspection: Option<RawRateLimit>,
    pub openid_connect_revocation: Option<RawRateLimit>,
    pub reset_password_start: Option<RawRateLimit>,
    pub reset_password_finish: Option<RawRateLimit>,
    pub second_factor_totp: Option<RawRateLimit>,
    pub second_factor_duo: Option<IgnoredAny>,
    pub session_elevation_start: Option<RawRateLimit>,
    pub session_elevation_finish: Option<RawRateLimit>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRateLimit {
    pub enable: Option<bool>,
    pub buckets: Option<Vec<RawBucket>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBucket {
    pub period: Option<RawDuration>,
    pub requests: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAuthzEndpoint {
    pub implementation: String,
    #[serde(default)]
    pub authn_strategies: Option<Vec<RawStrategy>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStrategy {
    pub name: String,
    #[serde(default)]
    pub schemes: Option<Vec<String>>,
    pub scheme_basic_cache_lifespan: Option<RawDuration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLog {
    pub level: Option<String>,
    pub format: Option<String>,
    pub file_path: Option<IgnoredAny>,
    pub keep_stdout: Option<IgnoredAny>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAuthBackend {
    pub refresh_interval: Option<RawDuration>,
    pub file: Option<RawFileBackend>,
    pub ldap: Option<super::ldap::RawLdap>,
    pub password_reset: Option<super::passwords::RawPasswordReset>,
    pub password_change: Option<super::passwords::RawPasswordChange>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFileBackend {
    pub path: Option<String>,
    #[serde(default)]
    pub watch: bool,
    #[serde(default)]
    pub search: RawSearch,
    pub password: Option<IgnoredAny>,
    pub extra_attributes: Option<IgnoredAny>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSearch {
    #[serde(default)]
    pub email: bool,
    #[serde(default)]
    pub case_insensitive: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSession {
    pub secret: Option<RawSecret>,
    pub name: Option<String>,
    pub same_site: Option<String>,
    pub expiration: Option<RawDuration>,
    pub inactivity: Option<RawDuration>,
    pub remember_me: Option<RawDuration>,
    /// Authelia's legacy single-domain form.
    pub domain: Option<String>,
    #[serde(default)]
    pub cookies: Vec<RawCookie>,
    pub redis: Option<RawRedis>,
    pub remember_me_duration: Option<RawDuration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRedis {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub username: Option<String>,
    pub password: Option<RawSecret>,
    pub database_index: Option<i64>,
    pub timeout: Option<RawDuration>,
    pub max_retries: Option<usize>,
    pub maximum_active_connections: Option<IgnoredAny>,
    pub minimum_idle_connections: Option<IgnoredAny>,
    pub tls: Option<RawRedisTls>,
    pub high_availability: Option<RawRedisSentinel>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRedisTls {
    pub server_name: Option<IgnoredAny>,
    #[serde(default)]
    pub skip_verify: bool,
    pub minimum_version: Option<IgnoredAny>,
    pub maximum_version: Option<IgnoredAny>,
    pub certificate_chain: Option<IgnoredAny>,
    pub private_key: Option<IgnoredAny>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRedisSentinel {
    pub sentinel_name: Option<String>,
    pub sentinel_username: Option<String>,
    pub sentinel_password: Option<RawSecret>,
    #[serde(default)]
    pub nodes: Vec<RawRedisNode>,
    pub route_by_latency: Option<IgnoredAny>,
    pub route_randomly: Option<IgnoredAny>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRedisNode {
    pub host: String,
    pub port: Option<u16>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCookie {
    pub domain: Option<String>,
    pub authelia_url: Option<String>,
    pub default_redirection_url: Option<String>,
    pub name: Option<String>,
    pub same_site: Option<String>,
    pub expiration: Option<RawDuration>,
    pub inactivity: Option<RawDuration>,
    pub remember_me: Option<RawDuration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRegulation {
    pub max_retries: Option<u32>,
    pub find_time: Option<RawDuration>,
    pub ban_time: Option<RawDuration>,
    pub modes: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStorage {
    pub local: Option<RawLocalStorage>,
    pub encryption_key: Option<RawSecret>,
    pub mysql: Option<IgnoredAny>,
    pub postgres: Option<IgnoredAny>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLocalStorage {
    pub path: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTelemetry {
    #[serde(default)]
    pub metrics: RawMetrics,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMetrics {
    #[serde(default)]
    pub enabled: bool,
    pub address: Option<String>,
    pub buffers: Option<IgnoredAny>,
    pub timeouts: Option<IgnoredAny>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDefinitions {
    #[serde(default)]
    pub network: BTreeMap<String, OneOrMany>,
    pub user_attributes: Option<IgnoredAny>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPortcullis {
    pub trusted_proxies: Option<Vec<String>>,
    #[serde(default)]
    pub headers: Option<portcullis_headers::ProfileConfig>,
    pub basic_auth_cache: Option<RawDuration>,
    pub oidc: Option<RawPortcullisOidc>,
}

/// `portcullis.oidc`: what Authelia's provider section has no key for.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPortcullisOidc {
    /// Members of this group are `is_superuser` in the `ak_proxy` claim.
    pub superuser_group: Option<String>,
    /// Lifetime of a generated signing key (`30d`; `0`: never rotate).
    pub key_rotation: Option<RawDuration>,
}
