//! The validated configuration: what the server acts on, built from the raw YAML by the validator.

use std::path::PathBuf;

use portcullis_auth::regulation::RegulationConfig;
use portcullis_config::ListenAddress;
use portcullis_core::{Secret, TrustedProxies};
use portcullis_policy::Policy;
use portcullis_server_core::telemetry::{LogFormat, LogLevel};
use portcullis_session::{CookieSpec, Lifetime};

/// Which request dialect an authz endpoint speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Implementation {
    /// Traefik, Caddy, HAProxy.
    ForwardAuth,
    /// nginx `auth_request`.
    AuthRequest,
    /// Envoy.
    ExtAuthz,
    /// `/api/verify`.
    Legacy,
}

/// How an endpoint looks for credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrategyKind {
    /// `Authorization`, 401 challenge.
    HeaderAuthorization,
    /// `Proxy-Authorization`, 407 challenge.
    HeaderProxyAuthorization,
    /// `Proxy-Authorization`, 401 challenge.
    HeaderAuthRequestProxyAuthorization,
    /// `Proxy-Authorization` (or `Authorization` with `auth=basic`), 401 challenge.
    HeaderLegacy,
    /// The session cookie.
    CookieSession,
}

/// One authentication strategy of an endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Strategy {
    /// Which one.
    pub kind: StrategyKind,
    /// Basic accepted.
    pub basic: bool,
    /// Bearer listed (Portcullis issues no tokens yet: listed Bearer is skipped, see README).
    pub bearer: bool,
    /// Credential cache lifetime for this endpoint, when the endpoint sets one.
    pub basic_cache: Option<u64>,
}

/// An authz endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Its name (`forward-auth`).
    pub name: String,
    /// Path served (`/api/authz/forward-auth`, `/api/verify`).
    pub path: String,
    /// Dialect.
    pub implementation: Implementation,
    /// Strategies in order.
    pub strategies: Vec<Strategy>,
}

/// One `session.cookies[]` entry, with inherited values filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieDomain {
    /// Canonical domain.
    pub domain: String,
    /// Portal URL (normalised: a non-root path ends with `/`). `None` only in the legacy form.
    pub authelia_url: Option<String>,
    /// Where to go after login without a target.
    pub default_redirection_url: Option<String>,
    /// Cookie rendering.
    pub cookie: CookieSpec,
    /// Lifetime rules.
    pub lifetime: Lifetime,
}

/// When to re-read user details for a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresh {
    /// On every request.
    Always,
    /// Never.
    Never,
    /// When the last refresh is older than this many seconds.
    Every(u64),
}

/// Where the users live (`authentication_backend`).
#[derive(Debug)]
pub enum UserSource {
    /// `authentication_backend.file`.
    File {
        /// The users file.
        path: PathBuf,
        /// Reload it when it changes.
        watch: bool,
    },
    /// `authentication_backend.ldap`.
    Ldap(Box<portcullis_auth::ldap::config::LdapConfig>),
}

impl UserSource {
    /// The users file, when the users are in one.
    pub fn file(&self) -> Option<&std::path::Path> {
        match self {
            Self::File { path, .. } => Some(path),
            Self::Ldap(_) => None,
        }
    }
}

/// The validated configuration.
#[derive(Debug)]
pub struct Config {
    /// File it was read from.
    pub file: PathBuf,
    /// The files and folders it was assembled from (`load_all`'s paths; empty when parsed from
    /// text): SIGHUP reads them again.
    pub sources: Vec<PathBuf>,
    /// Listen address, with the path prefix the server is served under.
    pub listen: ListenAddress,
    /// Certificate and key files when serving TLS.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Authz endpoints.
    pub endpoints: Vec<Endpoint>,
    /// `log.level`.
    pub log_level: LogLevel,
    /// `log.format`.
    pub log_format: LogFormat,
    /// Where the users are: a file or a directory.
    pub users: UserSource,
    /// Allow login by email.
    pub search_email: bool,
    /// Case-insensitive usernames.
    pub case_insensitive: bool,
    /// `authentication_backend.refresh_interval`.
    pub refresh: Refresh,
    /// Compiled access control.
    pub policy: Policy,
    /// `session.secret` (or its `_FILE`). `None` without Redis: the server generates one at first
    /// start and keeps it in the SQLite storage (`App::build`).
    pub session_secret: Option<Secret>,
    /// Cookie domains in configuration order.
    pub cookies: Vec<CookieDomain>,
    /// Regulation.
    pub regulation: RegulationConfig,
    /// SQLite database.
    pub storage_path: PathBuf,
    /// Metrics listener; its path is where the metrics are served.
    pub metrics: Option<ListenAddress>,
    /// Trusted proxies.
    pub trusted_proxies: TrustedProxies,
    /// Identity header profile.
    pub headers: portcullis_headers::Profile,
    /// Default Basic credential cache lifetime in seconds (0 = off).
    pub basic_auth_cache: u64,
    /// Redis for sessions and regulation shared by replicas (`session.redis`); SQLite otherwise.
    pub redis: Option<portcullis_session::RedisConfig>,
    /// `identity_providers.oidc`: the OpenID Connect provider, when configured. `App::build` moves
    /// it into the running provider (`AppState::attach_oidc`).
    pub oidc: Option<super::OidcProvider>,
    /// The file has a `portcullis:` section; without one it is a plain Authelia file.
    pub portcullis_section: bool,
    /// Second factors, elevation and the notifier.
    pub second_factor: super::SecondFactorConfig,
}
