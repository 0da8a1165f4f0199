//! `server`: the authz endpoints and their authentication strategies.

use portcullis_config::{ConfigError, parse_duration};

use super::model::{Endpoint, Implementation, Strategy, StrategyKind};
use super::raw;
use super::validate::Validator;

impl Validator<'_> {
    pub(super) fn endpoints(&self, raw: &raw::RawEndpoints) -> Result<Vec<Endpoint>, ConfigError> {
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
                                self.error(
                                    &format!("{skey}.scheme_basic_cache_lifespan"),
                                    e.to_string(),
                                )
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
}
