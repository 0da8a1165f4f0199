//! The validated configuration: what the rest of the outpost reads.

use std::path::PathBuf;

use portcullis_config::ListenAddress;
use portcullis_core::{Secret, TrustedProxies};
use portcullis_policy::{Policy, SkipPaths};
use portcullis_server_core::telemetry::{LogFormat, LogLevel};

/// The whole file, validated.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from (relative paths are taken from its folder).
    pub file: PathBuf,
    /// HTTP listener (`server.address`, default `tcp://:9000/`).
    pub listen: ListenAddress,
    /// HTTPS listener, when `server.tls` is set.
    pub tls: Option<TlsListener>,
    /// Peers whose forwarded headers are believed (`server.trusted_proxies`).
    pub trusted_proxies: TrustedProxies,
    /// Metrics listener (`telemetry.metrics`), when enabled.
    pub metrics: Option<ListenAddress>,
    /// `log.level`.
    pub log_level: LogLevel,
    /// `log.format`.
    pub log_format: LogFormat,
    /// `outpost.name`: `X-authentik-meta-outpost`.
    pub outpost_name: String,
    /// Where sessions live.
    pub storage: Storage,
    /// The applications, in file order.
    pub providers: Vec<Provider>,
}

/// The HTTPS listener.
#[derive(Debug, Clone)]
pub struct TlsListener {
    /// `server.tls.address` (default `tcp://:9443/`).
    pub listen: ListenAddress,
    /// `server.tls.certificate`.
    pub certificate: PathBuf,
    /// `server.tls.key`.
    pub key: PathBuf,
}

/// The session store.
#[derive(Debug, Clone)]
pub enum Storage {
    /// `session.redis`: shared by every replica.
    Redis {
        /// The connection.
        redis: Box<portcullis_session::RedisConfig>,
        /// The key values are encrypted with.
        secret: Secret,
    },
    /// `storage.local.path`: one SQLite file, surviving restarts.
    Sqlite(PathBuf),
    /// `storage.memory: true`: in memory, lost on restart.
    Memory,
}

/// How the provider's application is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The outpost proxies the application itself.
    Proxy,
    /// Forward auth for one application.
    ForwardSingle,
    /// Forward auth for every host under `cookie_domain`.
    ForwardDomain,
}

impl Mode {
    /// Whether a reverse proxy in front asks the outpost (`forward_*`).
    pub fn is_forward(self) -> bool {
        !matches!(self, Mode::Proxy)
    }
}

/// When PKCE (S256) is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pkce {
    /// When the discovery document lists `S256`.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// `header_auth.basic`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BasicAuth {
    /// Basic credentials are not read.
    Off,
    /// authentik's app passwords: a `client_credentials` request with `username` and `password`.
    Authentik,
}

/// Endpoints set explicitly (each overrides discovery).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Endpoints {
    /// Browser-facing authorization endpoint.
    pub authorization: Option<String>,
    /// Back-channel token endpoint.
    pub token: Option<String>,
    /// UserInfo endpoint.
    pub userinfo: Option<String>,
    /// JWK Set URL.
    pub jwks: Option<String>,
    /// Browser-facing end-session endpoint.
    pub end_session: Option<String>,
    /// Introspection endpoint.
    pub introspection: Option<String>,
}

/// One application (authentik: a proxy provider with its application).
#[derive(Debug, Clone)]
pub struct Provider {
    /// `name`: `X-authentik-meta-provider`.
    pub name: String,
    /// `assigned_application_slug`: `X-authentik-meta-app`.
    pub app_slug: String,
    /// `assigned_application_name`: page titles.
    pub app_name: String,
    /// `mode`.
    pub mode: Mode,
    /// `external_host`, without a trailing `/`.
    pub external_host: url::Url,
    /// `internal_host` (proxy mode).
    pub internal_host: Option<String>,
    /// `internal_host_ssl_validation`.
    pub internal_tls_verify: bool,
    /// `cookie_domain`, lower-case, without a leading dot; empty for host-only cookies.
    pub cookie_domain: String,
    /// `cookie_secret`.
    pub cookie_secret: Secret,
    /// `client_id`.
    pub client_id: String,
    /// `client_secret`.
    pub client_secret: Option<Secret>,
    /// `issuer`.
    pub issuer: Option<String>,
    /// `endpoints`.
    pub endpoints: Endpoints,
    /// `tls_certificate_authority`: an extra CA for back-channel calls (PEM file).
    pub tls_certificate_authority: Option<PathBuf>,
    /// `scopes_to_request`.
    pub scopes: Vec<String>,
    /// `pkce`.
    pub pkce: Pkce,
    /// `access_token_validity` in seconds (cookie `Max-Age` = this + 1), when set.
    pub access_token_validity: Option<u64>,
    /// `skip_path_regex`.
    pub skip: SkipPaths,
    /// `intercept_header_auth`.
    pub intercept_header_auth: bool,
    /// `basic_auth_enabled`.
    pub basic_auth_enabled: bool,
    /// `basic_auth_user_attribute`.
    pub basic_auth_user_attribute: String,
    /// `basic_auth_password_attribute`.
    pub basic_auth_password_attribute: String,
    /// `header_auth.bearer`.
    pub bearer: bool,
    /// `header_auth.basic`.
    pub basic: BasicAuth,
    /// `access_control`, when set.
    pub policy: Option<Policy>,
    /// Audiences besides `client_id` accepted on Bearer tokens.
    pub federated_audiences: Vec<String>,
    /// `back_channel_resolve`: host names the back-channel calls reach at these addresses, as
    /// curl's `--resolve` (the port stays the URL's).
    pub back_channel_resolve: Vec<(String, std::net::IpAddr)>,
}

impl Provider {
    /// `host[:port]` of `external_host`, lower-case: what app selection compares.
    pub fn authority(&self) -> String {
        let host = self
            .external_host
            .host_str()
            .unwrap_or("")
            .to_ascii_lowercase();
        match self.external_host.port() {
            Some(port) => format!("{host}:{port}"),
            None => host,
        }
    }

    /// `external_host` as text, without a trailing `/`.
    pub fn external(&self) -> String {
        self.external_host.as_str().trim_end_matches('/').to_owned()
    }

    /// The session cookie's name: `authentik_proxy_` + the first 8 hex characters of
    /// SHA-256(`client_id`).
    pub fn cookie_name(&self) -> String {
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(self.client_id.as_bytes());
        let hex: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
        format!("authentik_proxy_{hex}")
    }
}
