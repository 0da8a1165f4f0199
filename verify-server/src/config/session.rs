//! `session`: cookie domains with their inherited values, and `session.redis`.

use std::net::IpAddr;

use portcullis_config::{ConfigError, parse_duration};
use portcullis_core::TargetUrl;
use portcullis_core::domain::{canonical_domain, host_is_under};
use portcullis_session::{CookieSpec, Lifetime, SameSite};

use super::model::CookieDomain;
use super::raw;
use super::secrets::SecretSources;
use super::validate::Validator;

impl Validator<'_> {
    pub(super) fn redis(
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
                        .map(|s| s.value.expose().to_owned())
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
                .map(|s| s.value.expose().to_owned())
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

    pub(super) fn cookies(&self, s: &raw::RawSession) -> Result<Vec<CookieDomain>, ConfigError> {
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
                .map_err(|e| self.error(key, e.to_string())),
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
