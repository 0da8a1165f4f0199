//! The YAML shape of the outpost's configuration file (docs/reference/outpost.md §16): serde
//! structs with unknown keys rejected, so a typo names its key and line.

use serde::Deserialize;

pub(super) use portcullis_config::{RawDuration, RawSecret};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default)]
    pub server: RawServer,
    #[serde(default)]
    pub telemetry: RawTelemetry,
    #[serde(default)]
    pub log: RawLog,
    #[serde(default)]
    pub outpost: RawOutpost,
    #[serde(default)]
    pub storage: RawStorage,
    #[serde(default)]
    pub session: RawSession,
    #[serde(default)]
    pub providers: Vec<RawProvider>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
    pub address: Option<String>,
    pub tls: Option<RawTls>,
    pub trusted_proxies: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTls {
    pub address: Option<String>,
    pub certificate: Option<String>,
    pub key: Option<String>,
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
    pub enabled: Option<bool>,
    pub address: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLog {
    pub level: Option<String>,
    pub format: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOutpost {
    pub name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStorage {
    pub local: Option<RawLocal>,
    pub memory: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLocal {
    pub path: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSession {
    pub redis: Option<RawRedis>,
    /// The key sessions are encrypted with in Redis (default: derived from the providers'
    /// cookie secrets).
    pub secret: Option<RawSecret>,
}

/// Authelia's `session.redis` keys that the outpost implements.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRedis {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub username: Option<String>,
    pub password: Option<RawSecret>,
    pub database_index: Option<i64>,
    pub timeout: Option<RawDuration>,
    pub maximum_active_connections: Option<u32>,
    pub minimum_idle_connections: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProvider {
    pub name: Option<String>,
    pub assigned_application_slug: Option<String>,
    pub assigned_application_name: Option<String>,
    pub mode: Option<String>,
    pub external_host: Option<String>,
    pub internal_host: Option<String>,
    pub internal_host_ssl_validation: Option<bool>,
    pub cookie_domain: Option<String>,
    pub cookie_secret: Option<RawSecret>,
    pub cookie_secret_file: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<RawSecret>,
    pub client_secret_file: Option<String>,
    pub issuer: Option<String>,
    #[serde(default)]
    pub endpoints: RawEndpoints,
    pub tls_certificate_authority: Option<String>,
    pub scopes_to_request: Option<Vec<String>>,
    pub pkce: Option<String>,
    pub access_token_validity: Option<RawDuration>,
    pub skip_path_regex: Option<String>,
    pub intercept_header_auth: Option<bool>,
    pub basic_auth_enabled: Option<bool>,
    pub basic_auth_user_attribute: Option<String>,
    pub basic_auth_password_attribute: Option<String>,
    #[serde(default)]
    pub header_auth: RawHeaderAuth,
    pub access_control: Option<portcullis_policy::AccessControlConfig>,
    /// Audiences besides `client_id` that Bearer tokens may carry (federation).
    pub federated_audiences: Option<Vec<String>>,
    /// Host name → IP address for the back-channel calls (split-horizon DNS, containers).
    pub back_channel_resolve: Option<std::collections::BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEndpoints {
    pub authorization: Option<String>,
    pub token: Option<String>,
    pub userinfo: Option<String>,
    pub jwks: Option<String>,
    pub end_session: Option<String>,
    pub introspection: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHeaderAuth {
    pub bearer: Option<bool>,
    pub basic: Option<String>,
}
