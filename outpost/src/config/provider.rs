//! One entry of `providers`: an application, its mode and its OpenID provider.

use std::collections::BTreeMap;

use portcullis_config::ConfigError;
use portcullis_core::Secret;
use portcullis_policy::{AccessControlConfig, Policy, PolicyError, SkipPaths};

use super::model::{BasicAuth, Endpoints, Mode, Pkce, Provider};
use super::raw::{RawProvider, RawSecret};
use super::{MIN_COOKIE_SECRET, Validator};

/// The scopes asked for when `scopes_to_request` is not set.
const DEFAULT_SCOPES: [&str; 5] = ["openid", "email", "profile", "entitlements", "ak_proxy"];

fn is_loopback_host(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

impl Validator<'_> {
    fn url(&self, key: &str, text: &str) -> Result<url::Url, ConfigError> {
        let url = url::Url::parse(text)
            .map_err(|e| self.error(key, format!("'{text}' is not an absolute URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") || !url.has_host() {
            return Err(self.error(key, format!("'{text}' must be an http or https URL")));
        }
        if url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
            return Err(self.error(
                key,
                format!("'{text}' must not carry a fragment or credentials"),
            ));
        }
        Ok(url)
    }

    /// A secret from (in order) the environment's `_FILE` variable, the `…_file` key, the key.
    fn provider_secret(
        &self,
        i: usize,
        name: &str,
        inline: &Option<RawSecret>,
        file: &Option<String>,
    ) -> Result<Option<String>, ConfigError> {
        let key = format!("providers[{i}].{name}");
        let variable = format!(
            "PORTCULLIS_OUTPOST_PROVIDERS_{i}_{}_FILE",
            name.to_ascii_uppercase()
        );
        if let Some(path) = (self.env)(&variable) {
            return self.secret_file(&key, &path).map(Some);
        }
        if let Some(path) = file {
            if inline.is_some() {
                return Err(self.error(
                    &format!("{key}_file"),
                    format!("set '{name}' or '{name}_file', not both"),
                ));
            }
            return self.secret_file(&format!("{key}_file"), path).map(Some);
        }
        Ok(inline
            .as_ref()
            .map(|s| s.0.clone())
            .filter(|s| !s.is_empty()))
    }

    pub(super) fn provider(&mut self, i: usize, p: &RawProvider) -> Result<Provider, ConfigError> {
        let key = |k: &str| format!("providers[{i}].{k}");
        let name = p.name.clone().unwrap_or_default();
        if name.is_empty() || name.chars().any(char::is_control) {
            return Err(self.error(&key("name"), "option 'name' is required"));
        }
        let mode = match p.mode.as_deref() {
            None | Some("proxy") => Mode::Proxy,
            Some("forward_single") => Mode::ForwardSingle,
            Some("forward_domain") => Mode::ForwardDomain,
            Some(other) => {
                return Err(self.error(
                    &key("mode"),
                    format!("'{other}' must be one of proxy, forward_single, forward_domain"),
                ));
            }
        };
        let external_text = p
            .external_host
            .as_deref()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                self.error(&key("external_host"), "option 'external_host' is required")
            })?;
        let external_host = self.url(&key("external_host"), external_text)?;
        if external_host.query().is_some() {
            return Err(self.error(&key("external_host"), "must not carry a query"));
        }
        let internal_host = match (mode, p.internal_host.as_deref().filter(|s| !s.is_empty())) {
            (Mode::Proxy, None) => {
                return Err(self.error(
                    &key("internal_host"),
                    "option 'internal_host' is required in proxy mode",
                ));
            }
            (Mode::Proxy, Some(text)) => {
                self.url(&key("internal_host"), text)?;
                Some(text.to_owned())
            }
            (_, Some(_)) => {
                self.warn(&key("internal_host"), "ignored outside proxy mode");
                None
            }
            (_, None) => None,
        };
        let cookie_domain = p
            .cookie_domain
            .as_deref()
            .unwrap_or("")
            .trim()
            .trim_start_matches('.')
            .to_ascii_lowercase();
        if !cookie_domain.is_empty()
            && (cookie_domain.contains(['/', ':', ' ', '*']) || cookie_domain.ends_with('.'))
        {
            return Err(self.error(
                &key("cookie_domain"),
                format!("'{cookie_domain}' is not a domain name"),
            ));
        }
        let external_name = external_host.host_str().unwrap_or("").to_ascii_lowercase();
        if mode == Mode::ForwardDomain {
            if cookie_domain.is_empty() {
                return Err(self.error(
                    &key("cookie_domain"),
                    "required and non-empty in forward_domain mode: it is the protected domain",
                ));
            }
            if !portcullis_core::domain::host_is_under(&external_name, &cookie_domain) {
                return Err(self.error(
                    &key("external_host"),
                    format!(
                        "'{external_name}' is not under the cookie domain '{cookie_domain}': the browser would not send the cookie"
                    ),
                ));
            }
        } else if !cookie_domain.is_empty()
            && !portcullis_core::domain::host_is_under(&external_name, &cookie_domain)
        {
            return Err(self.error(
                &key("cookie_domain"),
                format!("'{external_name}' is not under '{cookie_domain}'"),
            ));
        }
        let cookie_secret = self
            .provider_secret(i, "cookie_secret", &p.cookie_secret, &p.cookie_secret_file)?
            .ok_or_else(|| {
                self.error(&key("cookie_secret"), "option 'cookie_secret' is required")
            })?;
        if cookie_secret.len() < MIN_COOKIE_SECRET {
            return Err(self.error(
                &key("cookie_secret"),
                format!("must be at least {MIN_COOKIE_SECRET} bytes"),
            ));
        }
        let client_id = p.client_id.clone().unwrap_or_default();
        if client_id.is_empty() || client_id.chars().any(char::is_control) {
            return Err(self.error(&key("client_id"), "option 'client_id' is required"));
        }
        let client_secret =
            self.provider_secret(i, "client_secret", &p.client_secret, &p.client_secret_file)?;
        let pkce = match p.pkce.as_deref() {
            None | Some("auto") => Pkce::Auto,
            Some("always") => Pkce::Always,
            Some("never") => Pkce::Never,
            Some(other) => {
                return Err(self.error(
                    &key("pkce"),
                    format!("'{other}' must be one of auto, always, never"),
                ));
            }
        };
        if client_secret.is_none() && pkce == Pkce::Never {
            return Err(self.error(
                &key("client_secret"),
                "a client without a secret (a public client) needs PKCE: set pkce to auto or always",
            ));
        }
        let issuer = p.issuer.clone().filter(|s| !s.is_empty());
        if let Some(iss) = &issuer {
            let url = self.url(&key("issuer"), iss)?;
            if url.scheme() == "http" && !is_loopback_host(&url) {
                self.warn(
                    &key("issuer"),
                    "an http:// issuer: discovery, tokens and keys travel unencrypted",
                );
            }
        }
        let endpoint = |name: &str, v: &Option<String>| -> Result<Option<String>, ConfigError> {
            match v.as_deref().filter(|s| !s.is_empty()) {
                None => Ok(None),
                Some(text) => {
                    self.url(&key(&format!("endpoints.{name}")), text)?;
                    Ok(Some(text.to_owned()))
                }
            }
        };
        let endpoints = Endpoints {
            authorization: endpoint("authorization", &p.endpoints.authorization)?,
            token: endpoint("token", &p.endpoints.token)?,
            userinfo: endpoint("userinfo", &p.endpoints.userinfo)?,
            jwks: endpoint("jwks", &p.endpoints.jwks)?,
            end_session: endpoint("end_session", &p.endpoints.end_session)?,
            introspection: endpoint("introspection", &p.endpoints.introspection)?,
        };
        if issuer.is_none() {
            if endpoints.authorization.is_none() || endpoints.token.is_none() {
                return Err(self.error(
                    &key("issuer"),
                    "option 'issuer' is required, or both endpoints.authorization and endpoints.token",
                ));
            }
            // Without an issuer no token's `iss` can be checked: tokens are not verified
            // locally, and the claims come from the UserInfo endpoint instead.
            if endpoints.userinfo.is_none() {
                return Err(self.error(
                    &key("endpoints.userinfo"),
                    "required without 'issuer': the claims are read from the UserInfo endpoint",
                ));
            }
        }
        let scopes = match &p.scopes_to_request {
            None => DEFAULT_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
            Some(list) => {
                for (j, s) in list.iter().enumerate() {
                    if s.is_empty() || s.contains(|c: char| c.is_whitespace() || c.is_control()) {
                        return Err(self.error(
                            &key(&format!("scopes_to_request[{j}]")),
                            "a scope is one non-empty word",
                        ));
                    }
                }
                list.clone()
            }
        };
        let access_token_validity = match &p.access_token_validity {
            None => None,
            Some(d) => {
                let seconds = self.duration(&key("access_token_validity"), d)?;
                if seconds == 0 {
                    return Err(self.error(&key("access_token_validity"), "must be positive"));
                }
                Some(seconds)
            }
        };
        let skip =
            SkipPaths::compile(p.skip_path_regex.as_deref().unwrap_or("")).map_err(
                |e| match e {
                    PolicyError::InvalidSkipPath { line, message } => self.error(
                        &key("skip_path_regex"),
                        format!("line {line} is not a valid regular expression: {message}"),
                    ),
                    other => self.error(&key("skip_path_regex"), other.to_string()),
                },
            )?;
        let basic = match p.header_auth.basic.as_deref() {
            None | Some("off") => BasicAuth::Off,
            Some("authentik") => BasicAuth::Authentik,
            Some(other) => {
                return Err(self.error(
                    &key("header_auth.basic"),
                    format!("'{other}' must be 'off' or 'authentik'"),
                ));
            }
        };
        let bearer = p.header_auth.bearer.unwrap_or(true);
        if issuer.is_none() && (bearer || basic != BasicAuth::Off) {
            self.warn(
                &key("header_auth"),
                "off without 'issuer': a presented token's issuer cannot be checked",
            );
        }
        let policy = match &p.access_control {
            None => None,
            Some(ac) => Some(self.policy(i, ac, mode, &external_name, &cookie_domain)?),
        };
        let mut back_channel_resolve = Vec::new();
        for (host, ip) in p.back_channel_resolve.iter().flatten() {
            let parsed: std::net::IpAddr = ip.parse().map_err(|_| {
                self.error(
                    &key(&format!("back_channel_resolve.{host}")),
                    format!("'{ip}' is not an IP address"),
                )
            })?;
            back_channel_resolve.push((host.to_ascii_lowercase(), parsed));
        }
        let tls_certificate_authority = p
            .tls_certificate_authority
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(|s| portcullis_config::resolve_path(self.file, s));
        Ok(Provider {
            app_slug: p
                .assigned_application_slug
                .clone()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| name.clone()),
            app_name: p
                .assigned_application_name
                .clone()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| name.clone()),
            name,
            mode,
            external_host,
            internal_host,
            internal_tls_verify: p.internal_host_ssl_validation.unwrap_or(true),
            cookie_domain,
            cookie_secret: Secret::new(cookie_secret),
            client_id,
            client_secret: client_secret.map(Secret::new),
            bearer: bearer && issuer.is_some(),
            basic: if issuer.is_some() {
                basic
            } else {
                BasicAuth::Off
            },
            issuer,
            endpoints,
            tls_certificate_authority,
            scopes,
            pkce,
            access_token_validity,
            skip,
            intercept_header_auth: p.intercept_header_auth.unwrap_or(true),
            basic_auth_enabled: p.basic_auth_enabled.unwrap_or(false),
            basic_auth_user_attribute: p.basic_auth_user_attribute.clone().unwrap_or_default(),
            basic_auth_password_attribute: p
                .basic_auth_password_attribute
                .clone()
                .unwrap_or_default(),
            policy,
            federated_audiences: p.federated_audiences.clone().unwrap_or_default(),
            back_channel_resolve,
        })
    }

    /// `access_control` of a provider: Authelia's rules, where a rule without `domain` covers the
    /// provider's own hosts (its external host, or the whole cookie domain in domain mode).
    fn policy(
        &self,
        i: usize,
        ac: &AccessControlConfig,
        mode: Mode,
        external_name: &str,
        cookie_domain: &str,
    ) -> Result<Policy, ConfigError> {
        let own: Vec<String> = match mode {
            Mode::ForwardDomain => vec![cookie_domain.to_owned(), format!("*.{cookie_domain}")],
            _ => vec![external_name.to_owned()],
        };
        let mut ac = ac.clone();
        for rule in &mut ac.rules {
            if rule.domain.is_empty() && rule.domain_regex.is_empty() {
                rule.domain.clone_from(&own);
            }
        }
        if ac.default_policy.is_none() {
            ac.default_policy = Some("one_factor".into());
        }
        Policy::compile(&ac, &BTreeMap::new()).map_err(|e| {
            let field = match (e.rule_index(), e.field()) {
                (Some(r), Some(f)) => format!("providers[{i}].access_control.rules[{r}].{f}"),
                (Some(r), None) => format!("providers[{i}].access_control.rules[{r}]"),
                (None, Some(f)) => format!("providers[{i}].{f}"),
                (None, None) => format!("providers[{i}].access_control"),
            };
            self.error(&field, e.to_string())
        })
    }
}
