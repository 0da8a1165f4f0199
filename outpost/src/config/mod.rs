//! Loading the outpost's configuration file (docs/reference/outpost.md §16) into validated types
//! ("parse, don't validate"). Every error names the file, the line (when it can be found) and the
//! key path.

mod model;
mod provider;
mod raw;

use std::path::Path;

use portcullis_config::{ConfigError, ConfigWarning, ListenAddress, deserialize_yaml};
use portcullis_core::{Secret, TrustedProxies};
use portcullis_server_core::telemetry::{LogFormat, LogLevel};

pub use model::{BasicAuth, Config, Endpoints, Mode, Pkce, Provider, Storage, TlsListener};

/// The trusted proxies when `server.trusted_proxies` is not set (docs/reference/outpost.md §12).
pub const DEFAULT_TRUSTED_PROXIES: [&str; 5] = [
    "127.0.0.0/8",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "::1/128",
];

/// The least length of a `cookie_secret`, in bytes.
pub const MIN_COOKIE_SECRET: usize = 32;

/// Read and validate the file at `path`; `env` looks environment variables up (the `_FILE`
/// secrets of §16).
pub fn load(
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(Config, Vec<ConfigWarning>), ConfigError> {
    let source = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::file(path, format!("cannot read: {e}")))?;
    parse(path, &source, env)
}

/// Validate the text `source` of the file `path`.
pub fn parse(
    path: &Path,
    source: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(Config, Vec<ConfigWarning>), ConfigError> {
    let raw: raw::RawConfig = deserialize_yaml(path, source)?;
    let mut v = Validator {
        file: path,
        source,
        env,
        warnings: Vec::new(),
    };
    let config = v.config(raw)?;
    Ok((config, v.warnings))
}

pub(crate) struct Validator<'a> {
    file: &'a Path,
    source: &'a str,
    env: &'a dyn Fn(&str) -> Option<String>,
    warnings: Vec<ConfigWarning>,
}

impl Validator<'_> {
    fn error(&self, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::at(self.file, self.source, key, message)
    }

    fn warn(&mut self, key: &str, message: impl Into<String>) {
        self.warnings
            .push(ConfigWarning::at(self.source, key, message));
    }

    fn duration(&self, key: &str, raw: &raw::RawDuration) -> Result<u64, ConfigError> {
        portcullis_config::parse_duration(&raw.0).map_err(|e| self.error(key, e.to_string()))
    }

    fn address(
        &self,
        key: &str,
        text: Option<&str>,
        default: &str,
        port: u16,
    ) -> Result<ListenAddress, ConfigError> {
        ListenAddress::parse(text.unwrap_or(default), port)
            .map_err(|e| self.error(key, e.to_string()))
    }

    fn config(&mut self, raw: raw::RawConfig) -> Result<Config, ConfigError> {
        let listen = self.address(
            "server.address",
            raw.server.address.as_deref(),
            "tcp://:9000/",
            9000,
        )?;
        let tls = match &raw.server.tls {
            None => None,
            Some(t) => {
                let listen = self.address(
                    "server.tls.address",
                    t.address.as_deref(),
                    "tcp://:9443/",
                    9443,
                )?;
                let file = |key: &str, v: &Option<String>| {
                    v.as_deref()
                        .filter(|s| !s.is_empty())
                        .map(|s| portcullis_config::resolve_path(self.file, s))
                        .ok_or_else(|| self.error(key, "required when server.tls is set"))
                };
                Some(TlsListener {
                    listen,
                    certificate: file("server.tls.certificate", &t.certificate)?,
                    key: file("server.tls.key", &t.key)?,
                })
            }
        };
        let trusted_proxies = match &raw.server.trusted_proxies {
            None => TrustedProxies::parse(&DEFAULT_TRUSTED_PROXIES)
                .map_err(|e| self.error("server.trusted_proxies", e.to_string()))?,
            Some(list) => {
                for (i, item) in list.iter().enumerate() {
                    portcullis_core::parse_cidr(item).map_err(|e| {
                        self.error(&format!("server.trusted_proxies[{i}]"), e.to_string())
                    })?;
                }
                TrustedProxies::parse(list)
                    .map_err(|e| self.error("server.trusted_proxies", e.to_string()))?
            }
        };
        let metrics = if raw.telemetry.metrics.enabled.unwrap_or(true) {
            Some(self.address(
                "telemetry.metrics.address",
                raw.telemetry.metrics.address.as_deref(),
                "tcp://:9300/",
                9300,
            )?)
        } else {
            None
        };
        let log_level = match raw.log.level.as_deref() {
            None => LogLevel::Info,
            Some(l) => LogLevel::parse(l).ok_or_else(|| {
                self.error(
                    "log.level",
                    format!("'{l}' must be one of error, warn, info, debug, trace"),
                )
            })?,
        };
        let log_format = match raw.log.format.as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(f) => {
                return Err(self.error("log.format", format!("'{f}' must be 'text' or 'json'")));
            }
        };
        let outpost_name = raw
            .outpost
            .name
            .clone()
            .unwrap_or_else(|| "portcullis".to_owned());
        if outpost_name.is_empty() || outpost_name.chars().any(char::is_control) {
            return Err(self.error(
                "outpost.name",
                "must be non-empty without control characters",
            ));
        }
        if raw.providers.is_empty() {
            return Err(self.error("providers", "at least one provider is required"));
        }
        let mut providers: Vec<Provider> = Vec::new();
        for (i, p) in raw.providers.iter().enumerate() {
            let provider = self.provider(i, p)?;
            let key = format!("providers[{i}]");
            if providers.iter().any(|o| o.name == provider.name) {
                return Err(self.error(
                    &format!("{key}.name"),
                    format!("'{}' is used by another provider", provider.name),
                ));
            }
            if provider.mode != Mode::ForwardDomain
                && providers
                    .iter()
                    .any(|o| o.mode != Mode::ForwardDomain && o.authority() == provider.authority())
            {
                return Err(self.error(
                    &format!("{key}.external_host"),
                    format!(
                        "'{}' is the external host of another provider",
                        provider.authority()
                    ),
                ));
            }
            providers.push(provider);
        }
        let storage = self.storage(&raw, &providers)?;
        Ok(Config {
            file: self.file.to_owned(),
            listen,
            tls,
            trusted_proxies,
            metrics,
            log_level,
            log_format,
            outpost_name,
            storage,
            providers,
        })
    }

    fn storage(
        &mut self,
        raw: &raw::RawConfig,
        providers: &[Provider],
    ) -> Result<Storage, ConfigError> {
        if let Some(r) = &raw.session.redis {
            let host = r.host.clone().unwrap_or_default();
            if host.is_empty() {
                return Err(self.error("session.redis.host", "option 'host' is required"));
            }
            let timeout = match &r.timeout {
                None => 5,
                Some(t) => self.duration("session.redis.timeout", t)?,
            };
            let password = match (self.env)("PORTCULLIS_OUTPOST_SESSION_REDIS_PASSWORD_FILE") {
                Some(file) => Some(self.secret_file("session.redis.password", &file)?),
                None => r.password.as_ref().map(|p| p.0.clone()),
            };
            if r.maximum_active_connections.is_some() || r.minimum_idle_connections.is_some() {
                self.warn(
                    "session.redis",
                    "maximum_active_connections and minimum_idle_connections are ignored: one multiplexed connection serves every request",
                );
            }
            let redis = portcullis_session::RedisConfig {
                host,
                port: r.port.unwrap_or(6379),
                username: r.username.clone().filter(|u| !u.is_empty()),
                password: password.filter(|p| !p.is_empty()),
                database_index: r.database_index.unwrap_or(0),
                timeout: std::time::Duration::from_secs(timeout.max(1)),
                ..portcullis_session::RedisConfig::default()
            };
            let secret = match &raw.session.secret {
                Some(s) if s.0.len() >= MIN_COOKIE_SECRET => Secret::new(s.0.clone()),
                Some(_) => {
                    return Err(self.error(
                        "session.secret",
                        format!("must be at least {MIN_COOKIE_SECRET} characters"),
                    ));
                }
                // Derived from every cookie secret: changing one ends the sessions, as it
                // already does for its cookies.
                None => {
                    let mut all: Vec<(&str, &str)> = providers
                        .iter()
                        .map(|p| (p.name.as_str(), p.cookie_secret.expose()))
                        .collect();
                    all.sort_unstable();
                    let joined: Vec<String> =
                        all.iter().map(|(n, s)| format!("{n}\0{s}")).collect();
                    Secret::new(joined.join("\0"))
                }
            };
            if raw.storage.local.is_some() {
                self.warn(
                    "storage.local",
                    "ignored: session.redis is set, so sessions live in Redis",
                );
            }
            return Ok(Storage::Redis {
                redis: Box::new(redis),
                secret,
            });
        }
        if let Some(path) = raw.storage.local.as_ref().and_then(|l| l.path.as_deref()) {
            if path.is_empty() {
                return Err(self.error("storage.local.path", "must not be empty"));
            }
            return Ok(Storage::Sqlite(portcullis_config::resolve_path(
                self.file, path,
            )));
        }
        if raw.storage.memory == Some(true) {
            self.warn(
                "storage.memory",
                "sessions are kept in memory: lost on restart and not shared by replicas",
            );
            return Ok(Storage::Memory);
        }
        Err(self.error(
            "storage",
            "set storage.local.path (sessions survive restarts) or session.redis (shared by replicas); storage.memory: true keeps them in memory only",
        ))
    }

    fn secret_file(&self, key: &str, path: &str) -> Result<String, ConfigError> {
        let text = std::fs::read_to_string(portcullis_config::resolve_path(self.file, path))
            .map_err(|e| self.error(key, format!("cannot read the secret file {path}: {e}")))?;
        let text = text.trim_end_matches(['\n', '\r']).to_owned();
        if text.is_empty() {
            return Err(self.error(key, format!("the secret file {path} is empty")));
        }
        Ok(text)
    }
}

#[cfg(test)]
mod tests;
