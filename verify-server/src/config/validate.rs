//! The validator: raw YAML values become validated domain types, with errors that name the key.

use std::path::{Path, PathBuf};

use portcullis_auth::regulation::RegulationConfig;
use portcullis_config::{ConfigError, ConfigWarning, ListenAddress, parse_duration, resolve_path};
use portcullis_core::{Secret, TrustedProxies};
use portcullis_policy::Policy;
use portcullis_server_core::telemetry::{LogFormat, LogLevel};

use super::model::{Config, Refresh, UserSource};
use super::raw;
use super::second_factor::RawSecondFactor;
use super::secrets::{MIN_SESSION_SECRET_LENGTH, SecretSources};

/// Where the SQLite file goes when `storage.local.path` is not set (from the configuration folder).
const DEFAULT_STORAGE_PATH: &str = "./data/portcullis.sqlite3";

pub(super) struct Validator<'a> {
    file: &'a Path,
    pub(super) source: &'a str,
    pub(super) warnings: Vec<ConfigWarning>,
}

impl<'a> Validator<'a> {
    pub(super) fn new(file: &'a Path, source: &'a str) -> Self {
        Self {
            file,
            source,
            warnings: Vec::new(),
        }
    }

    pub(super) fn into_warnings(self) -> Vec<ConfigWarning> {
        self.warnings
    }

    pub(super) fn error(&self, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::at(self.file, self.source, key, message)
    }

    pub(super) fn warn(&mut self, key: &str, message: impl Into<String>) {
        self.warnings
            .push(ConfigWarning::at(self.source, key, message));
    }

    pub(super) fn duration(
        &self,
        key: &str,
        raw: &Option<raw::RawDuration>,
        default: u64,
    ) -> Result<u64, ConfigError> {
        match raw {
            None => Ok(default),
            Some(d) => parse_duration(&d.0).map_err(|e| self.error(key, e.to_string())),
        }
    }

    pub(super) fn path(&self, p: &str) -> PathBuf {
        resolve_path(self.file, p)
    }

    pub(super) fn listen_address(
        &self,
        key: &str,
        text: &str,
        default_port: u16,
    ) -> Result<ListenAddress, ConfigError> {
        ListenAddress::parse(text, default_port).map_err(|e| self.error(key, e.to_string()))
    }

    pub(super) fn build(
        &mut self,
        raw: raw::RawConfig,
        secrets: &SecretSources,
    ) -> Result<Config, ConfigError> {
        let mut raw = raw;
        self.warn_unimplemented(&raw);
        let second_factor = self.second_factor(
            RawSecondFactor {
                totp: raw.totp.take(),
                identity_validation: raw.identity_validation.take(),
                notifier: raw.notifier.take(),
                encryption_key: raw.storage.encryption_key.take(),
                default_2fa_method: raw.default_2fa_method.take(),
                webauthn: raw.webauthn.take(),
                certificates_directory: raw.certificates_directory.clone(),
                password_change: raw.authentication_backend.password_change.take(),
                password_policy: raw.password_policy.take(),
                password_reset: raw.authentication_backend.password_reset.take(),
            },
            secrets
                .storage_encryption_key
                .as_ref()
                .map(|f| f.value.clone()),
            secrets.smtp_password.as_ref().map(|f| f.value.clone()),
            raw.server.endpoints.rate_limits.as_ref(),
        )?;
        let listen = self.listen_address(
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
        let level_text = raw.log.level.as_deref().unwrap_or("info");
        let log_level = LogLevel::parse(level_text).ok_or_else(|| {
            self.error(
                "log.level",
                format!(
                    "unknown level {:?}: use trace, debug, info, warn or error",
                    level_text.to_ascii_lowercase()
                ),
            )
        })?;
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
        let (users, search) = match (&backend.ldap, &backend.file) {
            (Some(ldap), None) => {
                let roots = match raw.certificates_directory.as_deref() {
                    None => Vec::new(),
                    Some(dir) => self.certificate_files(dir)?,
                };
                let reset = backend
                    .password_reset
                    .as_ref()
                    .is_none_or(|r| r.disable != Some(true));
                let password = secrets.ldap_password.as_ref().map(|f| f.value.clone());
                let ldap = self.ldap(ldap, password, &roots, reset)?;
                (UserSource::Ldap(Box::new(ldap)), None)
            }
            (None, Some(file)) => {
                let path = file
                    .path
                    .as_deref()
                    .ok_or_else(|| self.error("authentication_backend.file", "path is required"))?;
                (
                    UserSource::File {
                        path: self.path(path),
                        watch: file.watch,
                    },
                    Some(&file.search),
                )
            }
            (Some(_), Some(_)) => {
                return Err(self.error(
                    "authentication_backend",
                    "file and ldap are both set: choose one",
                ));
            }
            (None, None) => {
                return Err(self.error(
                    "authentication_backend",
                    "authentication_backend.file or authentication_backend.ldap is required",
                ));
            }
        };
        let is_ldap = matches!(users, UserSource::Ldap(_));
        let refresh = match backend.refresh_interval.as_ref().map(|d| d.0.as_str()) {
            // A directory is asked again every five minutes (Authelia's default); a file is
            // in memory, so "always" costs nothing.
            None if is_ldap => Refresh::Every(300),
            None | Some("always") => Refresh::Always,
            Some("never") => Refresh::Never,
            Some(text) => match parse_duration(text) {
                Ok(0) => Refresh::Always,
                Ok(s) => Refresh::Every(s),
                Err(e) => {
                    return Err(
                        self.error("authentication_backend.refresh_interval", e.to_string())
                    );
                }
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
            self.warn("access_control", warning);
        }

        // Validated with or without a provider: a bad bucket is an error either way.
        let oidc_rate_limits = self.oidc_rate_limits(raw.server.endpoints.rate_limits.as_ref())?;
        let oidc = match raw
            .identity_providers
            .as_ref()
            .and_then(|p| p.oidc.as_ref())
        {
            None => None,
            Some(o) => {
                let mut provider = self.oidc(o, &definitions, secrets)?;
                provider.rate_limits = oidc_rate_limits.clone();
                let extra = raw.portcullis.as_ref().and_then(|p| p.oidc.as_ref());
                provider.superuser_group = extra.and_then(|o| o.superuser_group.clone());
                let rotation = self.duration(
                    "portcullis.oidc.key_rotation",
                    &extra.and_then(|o| o.key_rotation.clone()),
                    super::oidc::DEFAULT_KEY_ROTATION,
                )?;
                // The previous key stays published for one epoch: tokens it signed must expire
                // within it.
                let longest = provider
                    .clients
                    .iter()
                    .map(|c| c.lifespans.id_token.max(c.lifespans.access_token))
                    .max()
                    .unwrap_or(0)
                    .max(
                        provider
                            .lifespans
                            .id_token
                            .max(provider.lifespans.access_token),
                    );
                if rotation != 0 && rotation < 86_400.max(longest) {
                    return Err(self.error(
                        "portcullis.oidc.key_rotation",
                        format!("must be 0 (never) or at least a day and the longest token lifespan ({longest} s)"),
                    ));
                }
                provider.key_rotation = rotation;
                Some(provider)
            }
        };

        let configured = match (&secrets.session_secret, &raw.session.secret) {
            (Some(file), _) => Some((file.value.clone(), file.variable.as_str())),
            (None, Some(s)) if !s.0.is_empty() => {
                Some((Secret::new(s.0.clone()), "session.secret"))
            }
            _ => None,
        };
        // As in Authelia, only Redis needs a configured secret (every replica must derive the same
        // keys); a single server generates one and keeps it in its SQLite file.
        if configured.is_none() && raw.session.redis.is_some() {
            return Err(self.error(
                "session.secret",
                "a session secret is required with session.redis (or PORTCULLIS_SESSION_SECRET_FILE)",
            ));
        }
        if let Some((secret, origin)) = &configured
            && secret.expose().chars().count() < MIN_SESSION_SECRET_LENGTH
        {
            return Err(self.error(
                    "session.secret",
                    format!(
                        "the secret from {origin} is shorter than {MIN_SESSION_SECRET_LENGTH} characters: use a long random string"
                    ),
                ));
        }
        let session_secret = configured.map(|(secret, _)| secret);
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
            .map_or_else(|| self.path(DEFAULT_STORAGE_PATH), |p| self.path(p));

        let metrics = if raw.telemetry.metrics.enabled {
            let text = raw
                .telemetry
                .metrics
                .address
                .as_deref()
                .unwrap_or("tcp://:9959/metrics");
            let address = self.listen_address("telemetry.metrics.address", text, 9959)?;
            Some(match address.prefix() {
                None => ListenAddress::new(address.socket(), "/metrics"),
                Some(_) => address,
            })
        } else {
            None
        };

        let portcullis_section = raw.portcullis.is_some();
        let portcullis = raw.portcullis.unwrap_or_default();
        let trusted_proxies = match &portcullis.trusted_proxies {
            None => TrustedProxies::default(),
            Some(list) => TrustedProxies::parse(list)
                .map_err(|e| self.error("portcullis.trusted_proxies", e.to_string()))?,
        };
        if trusted_proxies.trusts_everyone() {
            self.warn(
                "portcullis.trusted_proxies",
                "a catch-all network trusts forwarded headers from every peer: any client can choose its target and IP",
            );
        }
        let headers = match portcullis.headers {
            None => portcullis_headers::Profile::Authelia,
            Some(p) => portcullis_headers::Profile::try_from(p)
                .map_err(|e| self.error("portcullis.headers", e.to_string()))?,
        };
        let basic_auth_cache = self.duration(
            "portcullis.basic_auth_cache",
            &portcullis.basic_auth_cache,
            300,
        )?;
        let redis = match &raw.session.redis {
            Some(r) => Some(self.redis(r, secrets)?),
            None => None,
        };

        Ok(Config {
            sources: Vec::new(),
            file: self.file.to_owned(),
            listen,
            tls,
            endpoints,
            log_level,
            log_format,
            users,
            search_email: search.is_some_and(|s| s.email),
            case_insensitive: search.is_some_and(|s| s.case_insensitive),
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
            portcullis_section,
            oidc,
            second_factor,
        })
    }
}
