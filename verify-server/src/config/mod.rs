//! Loading `configuration.yml`: Authelia's format, validated into domain types ("parse, don't
//! validate"). Every error names the file, the line (when it can be found) and the key path.

mod duration;
mod locate;
mod raw;

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use portcullis_core::domain::{canonical_domain, host_is_under};
use portcullis_core::{Secret, TargetUrl, TrustedProxies};
use portcullis_policy::Policy;
use portcullis_session::{CookieSpec, Lifetime, SameSite};

pub use duration::parse_duration;
pub use locate::locate;

/// A configuration error: which file, which line, which key, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The file that was read.
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// Key path such as `session.cookies[0].domain`.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if self.key.is_empty() {
            write!(f, ": {}", self.message)
        } else {
            write!(f, ": {}: {}", self.key, self.message)
        }
    }
}

/// A key that was read but is not acted on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// Key path.
    pub key: String,
    /// Why it is ignored.
    pub message: String,
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}: {}", self.key, self.message),
            None => write!(f, "{}: {}", self.key, self.message),
        }
    }
}

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

/// Regulation settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegulationConfig {
    /// Failures before a ban; 0 disables regulation.
    pub max_retries: u32,
    /// Window in seconds.
    pub find_time: u64,
    /// Ban length in seconds.
    pub ban_time: u64,
    /// Ban users.
    pub by_user: bool,
    /// Ban IPs.
    pub by_ip: bool,
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

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The validated configuration.
#[derive(Debug)]
pub struct Config {
    /// File it was read from.
    pub file: PathBuf,
    /// Listen address.
    pub listen: SocketAddr,
    /// Certificate and key files when serving TLS.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Authz endpoints.
    pub endpoints: Vec<Endpoint>,
    /// `log.level`.
    pub log_level: String,
    /// `log.format`.
    pub log_format: LogFormat,
    /// Users file.
    pub users_path: PathBuf,
    /// Reload the users file when it changes.
    pub users_watch: bool,
    /// Allow login by email.
    pub search_email: bool,
    /// Case-insensitive usernames.
    pub case_insensitive: bool,
    /// `authentication_backend.refresh_interval`.
    pub refresh: Refresh,
    /// Compiled access control.
    pub policy: Policy,
    /// Session secret.
    pub session_secret: Secret,
    /// Cookie domains in configuration order.
    pub cookies: Vec<CookieDomain>,
    /// Regulation.
    pub regulation: RegulationConfig,
    /// SQLite database.
    pub storage_path: PathBuf,
    /// Metrics listener and path.
    pub metrics: Option<(SocketAddr, String)>,
    /// Trusted proxies.
    pub trusted_proxies: TrustedProxies,
    /// Identity header profile.
    pub headers: portcullis_headers::Profile,
    /// Default Basic credential cache lifetime in seconds (0 = off).
    pub basic_auth_cache: u64,
    /// Redis for sessions and regulation shared by replicas (`session.redis`); SQLite otherwise.
    pub redis: Option<portcullis_session::RedisConfig>,
}

/// Where secrets may come from besides the file (environment variables, read by the binary).
#[derive(Debug, Default, Clone)]
pub struct SecretSources {
    /// Contents of the file named by `PORTCULLIS_SESSION_SECRET_FILE` / `AUTHELIA_SESSION_SECRET_FILE`.
    pub session_secret: Option<Secret>,
    /// `…_SESSION_REDIS_PASSWORD_FILE`.
    pub redis_password: Option<Secret>,
    /// `…_SESSION_REDIS_HIGH_AVAILABILITY_SENTINEL_PASSWORD_FILE`.
    pub sentinel_password: Option<Secret>,
}

impl SecretSources {
    /// Read the secret files named by the environment.
    pub fn from_env() -> Result<Self, String> {
        let mut out = Self::default();
        for var in [
            "PORTCULLIS_SESSION_SECRET_FILE",
            "AUTHELIA_SESSION_SECRET_FILE",
        ] {
            if let Some(path) = std::env::var_os(var) {
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| format!("{var}={}: {e}", PathBuf::from(&path).display()))?;
                out.session_secret = Some(Secret::new(text.trim_end_matches(['\r', '\n'])));
                break;
            }
        }
        Ok(out)
    }
}

/// Read and validate a configuration file.
pub fn load(
    path: &Path,
    secrets: &SecretSources,
) -> Result<(Config, Vec<ConfigWarning>), ConfigError> {
    let source = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.to_owned(),
        line: None,
        key: String::new(),
        message: format!("cannot read: {e}"),
    })?;
    parse(path, &source, secrets)
}

/// Validate configuration text (`path` names it in errors and anchors relative paths).
pub fn parse(
    path: &Path,
    source: &str,
    secrets: &SecretSources,
) -> Result<(Config, Vec<ConfigWarning>), ConfigError> {
    let deserializer = serde_yaml_ng::Deserializer::from_str(source);
    let raw: raw::RawConfig = match serde_path_to_error::deserialize(deserializer) {
        Ok(raw) => raw,
        Err(e) => {
            let key = e.path().to_string();
            let inner = e.into_inner();
            let message = inner.to_string();
            // serde_yaml_ng puts its own `path: ` in front of the message; the key is reported apart.
            let message = match message.split_once(": ") {
                Some((prefix, rest))
                    if !prefix.is_empty()
                        && prefix.chars().all(|c| {
                            c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '[' | ']')
                        }) =>
                {
                    rest.to_owned()
                }
                _ => message,
            };
            // For an unknown key, its own line is the most useful one; the parser's position can be
            // the end of the previous value.
            let unknown_key_line = message
                .strip_prefix("unknown field `")
                .and_then(|rest| rest.split('`').next())
                .and_then(|field| {
                    let full = if key == "." || key.is_empty() {
                        field.to_owned()
                    } else {
                        format!("{key}.{field}")
                    };
                    locate(source, &full)
                });
            let line = unknown_key_line
                .or_else(|| inner.location().map(|l| l.line()))
                .or_else(|| locate(source, &key));
            // serde_yaml appends " at line N column M"; the line is reported separately.
            let message = message
                .split(" at line ")
                .next()
                .unwrap_or(&message)
                .to_owned();
            return Err(ConfigError {
                file: path.to_owned(),
                line,
                key: if key == "." { String::new() } else { key },
                message,
            });
        }
    };
    let mut v = Validator {
        file: path,
        source,
        base: path.parent().map(Path::to_path_buf).unwrap_or_default(),
        warnings: Vec::new(),
    };
    let config = v.build(raw, secrets)?;
    Ok((config, v.warnings))
}

struct Validator<'a> {
    file: &'a Path,
    source: &'a str,
    base: PathBuf,
    warnings: Vec<ConfigWarning>,
}

const NOT_IMPLEMENTED: &str = "not implemented by Portcullis; ignored";

impl Validator<'_> {
    fn error(&self, key: &str, message: impl Into<String>) -> ConfigError {
        // A missing key has no line of its own: point at its nearest parent that exists.
        let mut line = None;
        let mut path = key;
        while line.is_none() && !path.is_empty() {
            line = locate(self.source, path);
            path = path.rfind(['.', '[']).map_or("", |i| &path[..i]);
        }
        ConfigError {
            file: self.file.to_owned(),
            line,
            key: key.to_owned(),
            message: message.into(),
        }
    }

    fn ignored<T>(&mut self, key: &str, value: &Option<T>, note: &str) {
        if value.is_some() {
            let message = if note.is_empty() {
                NOT_IMPLEMENTED.to_owned()
            } else {
                format!("{NOT_IMPLEMENTED}: {note}")
            };
            self.warnings.push(ConfigWarning {
                line: locate(self.source, key),
                key: key.to_owned(),
                message,
            });
        }
    }

    fn duration(
        &self,
        key: &str,
        raw: &Option<raw::RawDuration>,
        default: u64,
    ) -> Result<u64, ConfigError> {
        match raw {
            None => Ok(default),
            Some(d) => parse_duration(&d.0).map_err(|e| self.error(key, e)),
        }
    }

    fn path(&self, p: &str) -> PathBuf {
        let p = PathBuf::from(p);
        if p.is_absolute() {
            p
        } else {
            self.base.join(p)
        }
    }

    fn build(
        &mut self,
        raw: raw::RawConfig,
        secrets: &SecretSources,
    ) -> Result<Config, ConfigError> {
        self.warn_unimplemented(&raw);
        let (listen, _) = self.address(
            "server.address",
            raw.server.address.as_deref().unwrap_or("tcp://:9091/"),
            9091,
        )?;
        let tls = match (&raw.server.tls.certificate, &raw.server.tls.key) {
            (Some(c), Some(k)) => Some((self.path(c), self.path(k))),
            (None, None) => None,
            (Some(_), None) => {
                return Err(self.error("server.tls", "certificate is set but key is not"));
            }
            (None, Some(_)) => {
                return Err(self.error("server.tls", "key is set but certificate is not"));
            }
        };
        let endpoints = self.endpoints(&raw.server.endpoints)?;
        let log_level = raw
            .log
            .level
            .clone()
            .unwrap_or_else(|| "info".into())
            .to_ascii_lowercase();
        if !["trace", "debug", "info", "warn", "error"].contains(&log_level.as_str()) {
            return Err(self.error(
                "log.level",
                format!("unknown level {log_level:?}: use trace, debug, info, warn or error"),
            ));
        }
        let log_format = match raw.log.format.as_deref().unwrap_or("text") {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                return Err(self.error(
                    "log.format",
                    format!("unknown format {other:?}: use text or json"),
                ));
            }
        };

        let backend = &raw.authentication_backend;
        if backend.ldap.is_some() && backend.file.is_none() {
            return Err(self.error(
                "authentication_backend.ldap",
                "the LDAP backend is not supported; use authentication_backend.file",
            ));
        }
        let file = backend.file.as_ref().ok_or_else(|| {
            self.error(
                "authentication_backend",
                "authentication_backend.file is required",
            )
        })?;
        let users_path = file
            .path
            .as_deref()
            .ok_or_else(|| self.error("authentication_backend.file", "path is required"))?;
        let refresh = match backend.refresh_interval.as_ref().map(|d| d.0.as_str()) {
            None | Some("always") => Refresh::Always,
            Some("never") => Refresh::Never,
            Some(text) => match parse_duration(text) {
                Ok(0) => Refresh::Always,
                Ok(s) => Refresh::Every(s),
                Err(e) => return Err(self.error("authentication_backend.refresh_interval", e)),
            },
        };

        let mut definitions = std::collections::BTreeMap::new();
        for (name, nets) in &raw.definitions.network {
            definitions.insert(name.clone(), nets.0.clone());
        }
        let access_control = raw.access_control.unwrap_or_default();
        let policy = Policy::compile(&access_control, &definitions).map_err(|e| {
            let key = match (e.rule_index(), e.field()) {
                (Some(i), Some(f)) => format!("access_control.rules[{i}].{f}"),
                (Some(i), None) => format!("access_control.rules[{i}]"),
                (None, Some(f))
                    if f.starts_with("access_control") || f.starts_with("definitions") =>
                {
                    f.to_owned()
                }
                (None, Some(f)) => format!("access_control.{f}"),
                (None, None) => "access_control".to_owned(),
            };
            self.error(&key, e.to_string())
        })?;
        for warning in policy.warnings() {
            self.warnings.push(ConfigWarning {
                line: locate(self.source, "access_control"),
                key: "access_control".into(),
                message: warning,
            });
        }

        let session_secret = match (&secrets.session_secret, &raw.session.secret) {
            (Some(s), _) => s.clone(),
            (None, Some(s)) if !s.0.is_empty() => Secret::new(s.0.clone()),
            _ => {
                return Err(self.error(
                    "session.secret",
                    "a session secret is required (or PORTCULLIS_SESSION_SECRET_FILE)",
                ));
            }
        };
        let cookies = self.cookies(&raw.session)?;

        let reg = &raw.regulation;
        let modes = reg.modes.clone().unwrap_or_else(|| vec!["user".into()]);
        let mut regulation = RegulationConfig {
            max_retries: reg.max_retries.unwrap_or(3),
            find_time: self.duration("regulation.find_time", &reg.find_time, 120)?,
            ban_time: self.duration("regulation.ban_time", &reg.ban_time, 300)?,
            by_user: false,
            by_ip: false,
        };
        for mode in &modes {
            match mode.as_str() {
                "user" => regulation.by_user = true,
                "ip" => regulation.by_ip = true,
                other => {
                    return Err(self.error(
                        "regulation.modes",
                        format!("unknown mode {other:?}: use user or ip"),
                    ));
                }
            }
        }

        let storage_path = raw
            .storage
            .local
            .as_ref()
            .and_then(|l| l.path.as_deref())
            .map(|p| self.path(p))
            .unwrap_or_else(|| PathBuf::from("./data/portcullis.sqlite3"));

        let metrics = if raw.telemetry.metrics.enabled {
            let text = raw
                .telemetry
                .metrics
                .address
                .as_deref()
                .unwrap_or("tcp://:9959/metrics");
            let (addr, path) = self.address("telemetry.metrics.address", text, 9959)?;
            Some((
                addr,
                if path == "/" {
                    "/metrics".to_owned()
                } else {
                    path
                },
            ))
        } else {
            None
        };

        let trusted_proxies = match &raw.portcullis.trusted_proxies {
            None => TrustedProxies::default(),
            Some(list) => TrustedProxies::parse(list)
                .map_err(|e| self.error("portcullis.trusted_proxies", e.to_string()))?,
        };
        if trusted_proxies.trusts_everyone() {
            self.warnings.push(ConfigWarning {
                line: locate(self.source, "portcullis.trusted_proxies"),
                key: "portcullis.trusted_proxies".into(),
                message: "a catch-all network trusts forwarded headers from every peer: any client can choose its target and IP".into(),
            });
        }
        let headers = match raw.portcullis.headers {
            None => portcullis_headers::Profile::Authelia,
            Some(p) => portcullis_headers::Profile::try_from(p)
                .map_err(|e| self.error("portcullis.headers", e.to_string()))?,
        };
        let basic_auth_cache = self.duration(
            "portcullis.basic_auth_cache",
            &raw.portcullis.basic_auth_cache,
            300,
        )?;
        let redis = match &raw.session.redis {
            Some(r) => Some(self.redis(r, secrets)?),
            None => None,
        };

        Ok(Config {
            file: self.file.to_owned(),
            listen,
            tls,
            endpoints,
            log_level,
            log_format,
            users_path: self.path(users_path),
            users_watch: file.watch,
            search_email: file.search.email,
            case_insensitive: file.search.case_insensitive,
            refresh,
            policy,
            session_secret,
            cookies,
            regulation,
            storage_path,
            metrics,
            trusted_proxies,
            headers,
            basic_auth_cache,
            redis,
        })
    }

    fn redis(
        &self,
        r: &raw::RawRedis,
        secrets: &SecretSources,
    ) -> Result<portcullis_session::RedisConfig, ConfigError> {
        let timeout = self.duration("session.redis.timeout", &r.timeout, 5)?;
        if timeout == 0 {
            return Err(self.error("session.redis.timeout", "must be more than 0"));
        }
        let sentinel = match &r.high_availability {
            None => None,
            Some(h) => {
                let name = h
                    .sentinel_name
                    .clone()
                    .filter(|n| !n.is_empty())
                    .ok_or_else(|| {
                        self.error(
                            "session.redis.high_availability.sentinel_name",
                            "is required with high_availability",
                        )
                    })?;
                let mut nodes: Vec<(String, u16)> = h
                    .nodes
                    .iter()
                    .map(|n| (n.host.clone(), n.port.unwrap_or(26379)))
                    .collect();
                if let Some(host) = &r.host {
                    nodes.insert(0, (host.clone(), r.port.unwrap_or(26379)));
                }
                if nodes.is_empty() {
                    return Err(self.error(
                        "session.redis.high_availability.nodes",
                        "at least one sentinel node is required",
                    ));
                }
                Some(portcullis_session::RedisSentinel {
                    sentinel_name: name,
                    sentinel_username: h.sentinel_username.clone(),
                    sentinel_password: secrets
                        .sentinel_password
                        .as_ref()
                        .map(|s| s.expose().to_owned())
                        .or_else(|| h.sentinel_password.as_ref().map(|s| s.0.clone())),
                    nodes,
                })
            }
        };
        let host = r.host.clone().unwrap_or_default();
        if host.is_empty() && sentinel.is_none() {
            return Err(self.error("session.redis.host", "is required"));
        }
        Ok(portcullis_session::RedisConfig {
            host,
            port: r.port.unwrap_or(6379),
            username: r.username.clone(),
            password: secrets
                .redis_password
                .as_ref()
                .map(|s| s.expose().to_owned())
                .or_else(|| r.password.as_ref().map(|s| s.0.clone())),
            database_index: r.database_index.unwrap_or(0),
            timeout: std::time::Duration::from_secs(timeout),
            max_retries: r.max_retries.unwrap_or(0),
            tls: r.tls.as_ref().map(|t| portcullis_session::RedisTls {
                skip_verify: t.skip_verify,
            }),
            sentinel,
            key_prefix: "portcullis-session".into(),
        })
    }

    fn warn_unimplemented(&mut self, raw: &raw::RawConfig) {
        let top: [(&str, bool, &str); 14] = [
            ("theme", raw.theme.is_some(), ""),
            (
                "certificates_directory",
                raw.certificates_directory.is_some(),
                "",
            ),
            ("jwt_secret", raw.jwt_secret.is_some(), ""),
            (
                "default_redirection_url",
                raw.default_redirection_url.is_some(),
                "set session.cookies[].default_redirection_url instead",
            ),
            ("default_2fa_method", raw.default_2fa_method.is_some(), ""),
            (
                "identity_validation",
                raw.identity_validation.is_some(),
                "password reset and elevation are not available",
            ),
            (
                "identity_providers",
                raw.identity_providers.is_some(),
                "Portcullis is not an OpenID Connect provider yet",
            ),
            ("notifier", raw.notifier.is_some(), ""),
            (
                "totp",
                raw.totp.is_some(),
                "no second factor is available: two_factor rules cannot be satisfied",
            ),
            (
                "webauthn",
                raw.webauthn.is_some(),
                "no second factor is available: two_factor rules cannot be satisfied",
            ),
            (
                "duo_api",
                raw.duo_api.is_some(),
                "no second factor is available: two_factor rules cannot be satisfied",
            ),
            (
                "ntp",
                raw.ntp.is_some(),
                "the clock is not checked against NTP",
            ),
            (
                "password_policy",
                raw.password_policy.is_some(),
                "NOT ENFORCED: Portcullis does not change passwords",
            ),
            ("privacy_policy", raw.privacy_policy.is_some(), ""),
        ];
        for (key, present, note) in top {
            if present {
                self.ignored(key, &Some(()), note);
            }
        }
        let s = &raw.server;
        self.ignored(
            "server.path",
            &s.path,
            "serve Portcullis at the root of its host",
        );
        self.ignored("server.asset_path", &s.asset_path, "");
        self.ignored("server.disable_healthcheck", &s.disable_healthcheck, "");
        self.ignored(
            "server.buffers",
            &s.buffers,
            "Portcullis uses its own header limits (see README)",
        );
        self.ignored(
            "server.timeouts",
            &s.timeouts,
            "Portcullis uses its own timeouts (see README)",
        );
        self.ignored(
            "server.headers",
            &s.headers,
            "NOT ENFORCED: configure CSP on the proxy",
        );
        self.ignored(
            "server.tls.client_certificates",
            &s.tls.client_certificates,
            "NOT ENFORCED: client certificates are not verified",
        );
        self.ignored(
            "server.endpoints.enable_pprof",
            &s.endpoints.enable_pprof,
            "",
        );
        self.ignored(
            "server.endpoints.enable_expvars",
            &s.endpoints.enable_expvars,
            "",
        );
        self.ignored(
            "server.endpoints.rate_limits",
            &s.endpoints.rate_limits,
            "NOT ENFORCED: regulation still applies to logins",
        );
        self.ignored(
            "log.file_path",
            &raw.log.file_path,
            "logs go to standard output",
        );
        self.ignored("log.keep_stdout", &raw.log.keep_stdout, "");
        let b = &raw.authentication_backend;
        self.ignored(
            "authentication_backend.password_reset",
            &b.password_reset,
            "",
        );
        self.ignored(
            "authentication_backend.password_change",
            &b.password_change,
            "",
        );
        if b.file.is_some() {
            self.ignored(
                "authentication_backend.ldap",
                &b.ldap,
                "the file backend is used",
            );
        }
        if let Some(f) = &b.file {
            self.ignored(
                "authentication_backend.file.password",
                &f.password,
                "digests of any supported family are verified as written",
            );
            self.ignored(
                "authentication_backend.file.extra_attributes",
                &f.extra_attributes,
                "",
            );
        }
        if let Some(r) = &raw.session.redis {
            let note = "Portcullis multiplexes one connection per replica";
            self.ignored(
                "session.redis.maximum_active_connections",
                &r.maximum_active_connections,
                note,
            );
            self.ignored(
                "session.redis.minimum_idle_connections",
                &r.minimum_idle_connections,
                note,
            );
            if let Some(t) = &r.tls {
                self.ignored(
                    "session.redis.tls.server_name",
                    &t.server_name,
                    "the host name is verified",
                );
                self.ignored("session.redis.tls.minimum_version", &t.minimum_version, "");
                self.ignored("session.redis.tls.maximum_version", &t.maximum_version, "");
                self.ignored(
                    "session.redis.tls.certificate_chain",
                    &t.certificate_chain,
                    "NOT ENFORCED: no client certificate is sent",
                );
                self.ignored("session.redis.tls.private_key", &t.private_key, "");
            }
            if let Some(h) = &r.high_availability {
                self.ignored(
                    "session.redis.high_availability.route_by_latency",
                    &h.route_by_latency,
                    "the master is always used",
                );
                self.ignored(
                    "session.redis.high_availability.route_randomly",
                    &h.route_randomly,
                    "the master is always used",
                );
            }
        }
        self.ignored(
            "session.remember_me_duration",
            &raw.session.remember_me_duration,
            "use session.remember_me",
        );
        self.ignored("storage.encryption_key", &raw.storage.encryption_key, "");
        self.ignored("storage.mysql", &raw.storage.mysql, "storage.local is used");
        self.ignored(
            "storage.postgres",
            &raw.storage.postgres,
            "storage.local is used",
        );
        self.ignored(
            "telemetry.metrics.buffers",
            &raw.telemetry.metrics.buffers,
            "",
        );
        self.ignored(
            "telemetry.metrics.timeouts",
            &raw.telemetry.metrics.timeouts,
            "",
        );
        self.ignored(
            "definitions.user_attributes",
            &raw.definitions.user_attributes,
            "",
        );
    }

    /// Authelia's address form `[tcp://]host:port[/path]`; `tcp://:9091/` listens on every address.
    fn address(
        &self,
        key: &str,
        text: &str,
        default_port: u16,
    ) -> Result<(SocketAddr, String), ConfigError> {
        let rest = if let Some((scheme, rest)) = text.split_once("://") {
            match scheme {
                "tcp" | "tcp4" | "tcp6" | "http" => rest,
                other => {
                    return Err(self.error(
                        key,
                        format!("unsupported scheme {other:?}: use tcp://host:port/"),
                    ));
                }
            }
        } else {
            text
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].to_owned()),
            None => (rest, "/".to_owned()),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(':') || h.starts_with('[') => (
                h,
                p.parse::<u16>()
                    .map_err(|_| self.error(key, format!("invalid port {p:?}")))?,
            ),
            _ => (authority, default_port),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let ip: IpAddr = if host.is_empty() {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        } else if host == "localhost" {
            IpAddr::from([127, 0, 0, 1])
        } else {
            host.parse().map_err(|_| {
                self.error(
                    key,
                    format!("invalid listen address {host:?}: use an IP address"),
                )
            })?
        };
        Ok((SocketAddr::new(ip, port), path))
    }

    fn endpoints(&self, raw: &raw::RawEndpoints) -> Result<Vec<Endpoint>, ConfigError> {
        let basic = |kind| Strategy {
            kind,
            basic: true,
            bearer: false,
            basic_cache: None,
        };
        let cookie = Strategy {
            kind: StrategyKind::CookieSession,
            basic: false,
            bearer: false,
            basic_cache: None,
        };
        if raw.authz.is_empty() {
            let mk = |name: &str, path: &str, implementation, header| Endpoint {
                name: name.into(),
                path: path.into(),
                implementation,
                strategies: vec![basic(header), cookie.clone()],
            };
            return Ok(vec![
                mk(
                    "forward-auth",
                    "/api/authz/forward-auth",
                    Implementation::ForwardAuth,
                    StrategyKind::HeaderAuthorization,
                ),
                mk(
                    "auth-request",
                    "/api/authz/auth-request",
                    Implementation::AuthRequest,
                    StrategyKind::HeaderAuthorization,
                ),
                mk(
                    "ext-authz",
                    "/api/authz/ext-authz",
                    Implementation::ExtAuthz,
                    StrategyKind::HeaderAuthorization,
                ),
                mk(
                    "legacy",
                    "/api/verify",
                    Implementation::Legacy,
                    StrategyKind::HeaderLegacy,
                ),
            ]);
        }
        let mut out = Vec::new();
        for (name, ep) in &raw.authz {
            let key = format!("server.endpoints.authz.{name}");
            let valid_name = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '/'))
                && name.starts_with(|c: char| c.is_ascii_alphanumeric())
                && name.ends_with(|c: char| c.is_ascii_alphanumeric());
            if !valid_name {
                return Err(self.error(&key, "endpoint names use letters, digits, '-', '_' and '/', and start and end with a letter or digit"));
            }
            let implementation = match ep.implementation.as_str() {
                "ForwardAuth" => Implementation::ForwardAuth,
                "AuthRequest" => Implementation::AuthRequest,
                "ExtAuthz" => Implementation::ExtAuthz,
                "Legacy" => Implementation::Legacy,
                other => return Err(self.error(&format!("{key}.implementation"), format!("unknown implementation {other:?}: use ForwardAuth, AuthRequest, ExtAuthz or Legacy"))),
            };
            let strategies = match &ep.authn_strategies {
                None => {
                    let header = if implementation == Implementation::Legacy {
                        StrategyKind::HeaderLegacy
                    } else {
                        StrategyKind::HeaderAuthorization
                    };
                    vec![basic(header), cookie.clone()]
                }
                Some(list) => {
                    let mut strategies = Vec::new();
                    for (i, s) in list.iter().enumerate() {
                        let skey = format!("{key}.authn_strategies[{i}]");
                        let kind = match s.name.as_str() {
                            "HeaderAuthorization" => StrategyKind::HeaderAuthorization,
                            "HeaderProxyAuthorization" => StrategyKind::HeaderProxyAuthorization,
                            "HeaderAuthRequestProxyAuthorization" => {
                                StrategyKind::HeaderAuthRequestProxyAuthorization
                            }
                            "HeaderLegacy" => StrategyKind::HeaderLegacy,
                            "CookieSession" => StrategyKind::CookieSession,
                            other => {
                                return Err(self.error(
                                    &format!("{skey}.name"),
                                    format!("unknown strategy {other:?}"),
                                ));
                            }
                        };
                        let schemes = s.schemes.clone().unwrap_or_else(|| vec!["Basic".into()]);
                        let mut strategy = Strategy {
                            kind,
                            basic: false,
                            bearer: false,
                            basic_cache: None,
                        };
                        for scheme in &schemes {
                            match scheme.to_ascii_lowercase().as_str() {
                                "basic" => strategy.basic = true,
                                "bearer" => strategy.bearer = true,
                                _ => {
                                    return Err(self.error(
                                        &format!("{skey}.schemes"),
                                        format!("unknown scheme {scheme:?}: use Basic or Bearer"),
                                    ));
                                }
                            }
                        }
                        if kind == StrategyKind::CookieSession {
                            strategy.basic = false;
                            strategy.bearer = false;
                        }
                        strategy.basic_cache = match &s.scheme_basic_cache_lifespan {
                            Some(d) => Some(parse_duration(&d.0).map_err(|e| {
                                self.error(&format!("{skey}.scheme_basic_cache_lifespan"), e)
                            })?),
                            None => None,
                        };
                        strategies.push(strategy);
                    }
                    strategies
                }
            };
            let path = if name == "legacy" {
                "/api/verify".to_owned()
            } else {
                format!("/api/authz/{name}")
            };
            out.push(Endpoint {
                name: name.clone(),
                path,
                implementation,
                strategies,
            });
        }
        Ok(out)
    }

    fn cookies(&self, s: &raw::RawSession) -> Result<Vec<CookieDomain>, ConfigError> {
        let default_name = s.name.clone().unwrap_or_else(|| "authelia_session".into());
        let default_same_site = s.same_site.clone().unwrap_or_else(|| "lax".into());
        let expiration = self.duration("session.expiration", &s.expiration, 3600)?;
        let inactivity = self.duration("session.inactivity", &s.inactivity, 300)?;
        let remember_me =
            self.remember_me("session.remember_me", &s.remember_me, Some(2_628_000))?;
        let mut entries: Vec<(String, raw::RawCookie)> = Vec::new();
        if let Some(domain) = &s.domain {
            if !s.cookies.is_empty() {
                return Err(self.error(
                    "session.domain",
                    "use either session.domain (legacy) or session.cookies, not both",
                ));
            }
            entries.push((
                "session.domain".into(),
                raw::RawCookie {
                    domain: Some(domain.clone()),
                    ..Default::default()
                },
            ));
        }
        for (i, c) in s.cookies.iter().enumerate() {
            entries.push((
                format!("session.cookies[{i}]"),
                raw::RawCookie {
                    domain: c.domain.clone(),
                    authelia_url: c.authelia_url.clone(),
                    default_redirection_url: c.default_redirection_url.clone(),
                    name: c.name.clone(),
                    same_site: c.same_site.clone(),
                    expiration: c.expiration.clone(),
                    inactivity: c.inactivity.clone(),
                    remember_me: c.remember_me.clone(),
                },
            ));
        }
        if entries.is_empty() {
            return Err(self.error("session.cookies", "at least one cookie domain is required"));
        }
        let legacy = s.domain.is_some();
        let mut out: Vec<CookieDomain> = Vec::new();
        for (key, c) in entries {
            let domain_key = if legacy {
                key.clone()
            } else {
                format!("{key}.domain")
            };
            let domain_raw = c.domain.as_deref().unwrap_or("");
            let domain = canonical_domain(domain_raw);
            if domain.is_empty() {
                return Err(self.error(&domain_key, "a cookie domain is required"));
            }
            if !domain.contains('.') {
                return Err(self.error(
                    &domain_key,
                    format!("cookie domain {domain:?} must contain a dot"),
                ));
            }
            if domain.parse::<IpAddr>().is_ok() || domain.starts_with('[') {
                return Err(self.error(
                    &domain_key,
                    format!("cookie domain {domain:?} must not be an IP address"),
                ));
            }
            if psl::suffix_str(&domain) == Some(domain.as_str()) {
                return Err(self.error(
                    &domain_key,
                    format!("cookie domain {domain:?} is a public suffix"),
                ));
            }
            if TargetUrl::parse(&format!("https://{domain}/"))
                .map(|u| u.host() != domain)
                .unwrap_or(true)
            {
                return Err(self.error(
                    &domain_key,
                    format!("cookie domain {domain:?} is not a valid host name"),
                ));
            }
            for other in &out {
                if host_is_under(&domain, &other.domain) || host_is_under(&other.domain, &domain) {
                    return Err(self.error(
                        &domain_key,
                        format!(
                            "cookie domain {domain:?} shares a scope with {:?}",
                            other.domain
                        ),
                    ));
                }
            }
            let authelia_url = match &c.authelia_url {
                Some(url) => Some(self.portal_url(&format!("{key}.authelia_url"), url, &domain)?),
                None if legacy => None,
                None => return Err(self.error(&key, "authelia_url is required")),
            };
            let default_redirection_url = match &c.default_redirection_url {
                Some(url) => {
                    let rkey = format!("{key}.default_redirection_url");
                    let parsed = TargetUrl::parse(url).map_err(|e| {
                        self.error(&rkey, format!("{url:?} is not an absolute URL: {e}"))
                    })?;
                    if parsed.scheme() != "https" {
                        return Err(self.error(&rkey, "must use https"));
                    }
                    if authelia_url.as_deref() == Some(url.as_str()) {
                        return Err(self.error(&rkey, "must differ from authelia_url"));
                    }
                    Some(url.clone())
                }
                None => None,
            };
            let same_site_text = c
                .same_site
                .clone()
                .unwrap_or_else(|| default_same_site.clone());
            let same_site = match same_site_text.to_ascii_lowercase().as_str() {
                "lax" => SameSite::Lax,
                "strict" => SameSite::Strict,
                "none" => SameSite::None,
                other => {
                    return Err(self.error(
                        &format!("{key}.same_site"),
                        format!("unknown value {other:?}: use lax, strict or none"),
                    ));
                }
            };
            let name = c.name.clone().unwrap_or_else(|| default_name.clone());
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
            {
                return Err(self.error(
                    &format!("{key}.name"),
                    format!("invalid cookie name {name:?}"),
                ));
            }
            let lifetime = Lifetime {
                expiration: self.duration(
                    &format!("{key}.expiration"),
                    &c.expiration,
                    expiration,
                )?,
                inactivity: self.duration(
                    &format!("{key}.inactivity"),
                    &c.inactivity,
                    inactivity,
                )?,
                remember_me: match &c.remember_me {
                    Some(_) => {
                        self.remember_me(&format!("{key}.remember_me"), &c.remember_me, None)?
                    }
                    None => remember_me,
                },
            };
            out.push(CookieDomain {
                cookie: CookieSpec {
                    name,
                    domain: domain.clone(),
                    same_site,
                    secure: true,
                },
                domain,
                authelia_url,
                default_redirection_url,
                lifetime,
            });
        }
        Ok(out)
    }

    fn remember_me(
        &self,
        key: &str,
        raw: &Option<raw::RawDuration>,
        default: Option<u64>,
    ) -> Result<Option<u64>, ConfigError> {
        match raw {
            None => Ok(default),
            Some(d) if d.0.trim() == "-1" => Ok(None),
            Some(d) => parse_duration(&d.0)
                .map(Some)
                .map_err(|e| self.error(key, e)),
        }
    }

    fn portal_url(&self, key: &str, url: &str, domain: &str) -> Result<String, ConfigError> {
        let parsed = TargetUrl::parse(url)
            .map_err(|e| self.error(key, format!("{url:?} is not an absolute URL: {e}")))?;
        if parsed.scheme() != "https" {
            return Err(self.error(key, "must use https"));
        }
        if !host_is_under(parsed.host(), domain) {
            return Err(self.error(
                key,
                format!(
                    "host {:?} is not within the cookie domain {domain:?}",
                    parsed.host()
                ),
            ));
        }
        if parsed.query().is_some() {
            return Ok(url.to_owned());
        }
        let path = parsed.path();
        Ok(if path.len() > 1 && !path.ends_with('/') {
            format!("{url}/")
        } else {
            url.to_owned()
        })
    }
}

#[cfg(test)]
mod tests;
