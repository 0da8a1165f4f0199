//! Validating the provider's keys: secrets, signing keys, PKCE and entropy rules, lifespans,
//! policies, claims, scopes, CORS, rate limits.

use std::collections::BTreeMap;

use ipnet::IpNet;
use portcullis_auth::rate_limit::Bucket;
use portcullis_config::ConfigError;
use portcullis_core::{AuthLevel, Secret};
use portcullis_oidc::authorize::{AuthorizeSettings, EnforcePkce};
use portcullis_oidc::keys::{Algorithm, SigningKey};

use super::*;
use crate::config::oidc_raw::{RawAuthorizationPolicy, RawCors, RawOidc};
use crate::config::raw::{RawDuration, RawRateLimit, RawRateLimits};
use crate::config::secrets::SecretSources;
use crate::config::validate::Validator;

impl Validator<'_> {
    fn oidc_duration(
        &self,
        key: &str,
        raw: &Option<RawDuration>,
        default: u64,
    ) -> Result<u64, ConfigError> {
        let v = self.duration(key, raw, default)?;
        if v == 0 {
            return Err(self.error(key, "must be longer than zero"));
        }
        Ok(v)
    }

    fn rate_limit(
        &self,
        name: &str,
        raw: Option<&RawRateLimit>,
    ) -> Result<Vec<Bucket>, ConfigError> {
        self.rate_limit_or(name, raw, &DEFAULT_BUCKETS)
    }

    /// `server.endpoints.rate_limits.<name>`: `defaults` when absent, none when disabled.
    pub(in crate::config) fn rate_limit_or(
        &self,
        name: &str,
        raw: Option<&RawRateLimit>,
        defaults: &[Bucket],
    ) -> Result<Vec<Bucket>, ConfigError> {
        let key = format!("server.endpoints.rate_limits.{name}");
        let Some(raw) = raw else {
            return Ok(defaults.to_vec());
        };
        if raw.enable == Some(false) {
            return Ok(Vec::new());
        }
        let Some(buckets) = &raw.buckets else {
            return Ok(defaults.to_vec());
        };
        let mut out = Vec::new();
        for (i, b) in buckets.iter().enumerate() {
            let bk = format!("{key}.buckets[{i}]");
            let period = match &b.period {
                None => {
                    return Err(self.error(&format!("{bk}.period"), "option 'period' is required"));
                }
                Some(p) => self.duration(&format!("{bk}.period"), &Some(p.clone()), 0)?,
            };
            if period == 0 {
                return Err(self.error(&format!("{bk}.period"), "must be longer than zero"));
            }
            let requests = b.requests.filter(|r| *r > 0).ok_or_else(|| {
                self.error(
                    &format!("{bk}.requests"),
                    "option 'requests' must be more than zero",
                )
            })?;
            out.push(Bucket { period, requests });
        }
        Ok(out)
    }

    pub(in crate::config) fn oidc_rate_limits(
        &mut self,
        raw: Option<&RawRateLimits>,
    ) -> Result<OidcRateLimits, ConfigError> {
        Ok(OidcRateLimits {
            pushed: self.rate_limit(
                "openid_connect_pushed_authorization_request",
                raw.and_then(|r| r.openid_connect_pushed_authorization_request.as_ref()),
            )?,
            token: self.rate_limit(
                "openid_connect_token",
                raw.and_then(|r| r.openid_connect_token.as_ref()),
            )?,
            userinfo: self.rate_limit(
                "openid_connect_userinfo",
                raw.and_then(|r| r.openid_connect_userinfo.as_ref()),
            )?,
            introspection: self.rate_limit(
                "openid_connect_introspection",
                raw.and_then(|r| r.openid_connect_introspection.as_ref()),
            )?,
            revocation: self.rate_limit(
                "openid_connect_revocation",
                raw.and_then(|r| r.openid_connect_revocation.as_ref()),
            )?,
        })
    }

    fn cors(&mut self, c: &RawCors) -> Result<Cors, ConfigError> {
        const K: &str = "identity_providers.oidc.cors";
        for e in &c.endpoints {
            if !CORS_ENDPOINTS.contains(&e.as_str()) {
                return Err(self.error(
                    &format!("{K}.endpoints"),
                    format!("'{e}' must be one of {}", CORS_ENDPOINTS.join(", ")),
                ));
            }
        }
        let listed = c
            .allowed_origins
            .as_ref()
            .map_or_else(Vec::new, |o| o.0.clone());
        let any = listed.iter().any(|o| o == "*");
        if any && (listed.len() > 1 || c.allowed_origins_from_client_redirect_uris == Some(true)) {
            return Err(self.error(&format!("{K}.allowed_origins"), "'*' must be the only origin and cannot be used with allowed_origins_from_client_redirect_uris"));
        }
        let mut origins = Vec::new();
        for o in listed.iter().filter(|o| *o != "*") {
            let valid = url::Url::parse(o).is_ok_and(|u| u.origin().ascii_serialization() == *o);
            if !valid {
                return Err(self.error(&format!("{K}.allowed_origins"), format!("'{o}' must be an origin: scheme, host and port only, no path or trailing slash")));
            }
            origins.push(o.clone());
        }
        Ok(Cors {
            endpoints: c.endpoints.clone(),
            any_https: !any
                && origins.is_empty()
                && c.allowed_origins_from_client_redirect_uris != Some(true),
            origins,
            any,
        })
    }

    pub(in crate::config) fn oidc(
        &mut self,
        raw: &RawOidc,
        networks: &BTreeMap<String, Vec<String>>,
        secrets: &SecretSources,
    ) -> Result<OidcProvider, ConfigError> {
        const P: &str = "identity_providers.oidc";
        let hmac_secret = match (&secrets.oidc_hmac_secret, &raw.hmac_secret) {
            (Some(file), _) => file.value.clone(),
            (None, Some(s)) if !s.0.is_empty() => Secret::new(s.0.clone()),
            _ => {
                return Err(self.error(
                    &format!("{P}.hmac_secret"),
                    "option 'hmac_secret' is required",
                ));
            }
        };
        if hmac_secret.expose().chars().count() < 32 {
            return Err(self.error(
                &format!("{P}.hmac_secret"),
                "the secret is shorter than 32 characters: use at least 64 random characters",
            ));
        }
        let issuer_key = match (&secrets.oidc_issuer_private_key, &raw.issuer_private_key) {
            (Some(file), _) => Some(file.value.expose().to_owned()),
            (None, Some(k)) if !k.0.trim().is_empty() => Some(k.0.clone()),
            _ => None,
        };
        if (issuer_key.is_some() || raw.issuer_certificate_chain.is_some()) && !raw.jwks.is_empty()
        {
            return Err(self.error(
                &format!("{P}.issuer_private_key"),
                "option 'issuer_private_key' and 'jwks' are mutually exclusive",
            ));
        }
        if raw.issuer_certificate_chain.is_some() && issuer_key.is_none() {
            return Err(self.error(
                &format!("{P}.issuer_certificate_chain"),
                "option 'issuer_certificate_chain' needs 'issuer_private_key'",
            ));
        }
        let mut keys = Vec::new();
        if let Some(pem) = &issuer_key {
            let mut key = SigningKey::from_pem(pem, Algorithm::RS256, None)
                .map_err(|e| self.error(&format!("{P}.issuer_private_key"), e.to_string()))?;
            if let Some(chain) = &raw.issuer_certificate_chain {
                key = key.with_certificate_chain(&chain.0).map_err(|e| {
                    self.error(&format!("{P}.issuer_certificate_chain"), e.to_string())
                })?;
            }
            keys.push(key);
        }
        for (i, jwk) in raw.jwks.iter().enumerate() {
            let key = format!("{P}.jwks[{i}]");
            match jwk.key_use.as_deref() {
                None | Some("sig") => {}
                Some("enc") => {
                    return Err(self.error(
                        &format!("{key}.use"),
                        "encryption keys are not implemented by Portcullis",
                    ));
                }
                Some(other) => {
                    return Err(self.error(
                        &format!("{key}.use"),
                        format!("must be 'sig' or 'enc' but it's configured as '{other}'"),
                    ));
                }
            }
            let pem = jwk
                .key
                .as_ref()
                .filter(|k| !k.0.trim().is_empty())
                .ok_or_else(|| self.error(&format!("{key}.key"), "option 'key' is required"))?;
            let alg = match jwk.algorithm.as_deref() {
                None => None,
                Some(name) => Some(parse_alg(name).ok_or_else(|| {
                    self.error(
                        &format!("{key}.algorithm"),
                        format!("algorithm '{name}' is not supported for signing keys"),
                    )
                })?),
            };
            if let Some(kid) = &jwk.key_id {
                if !kid_ok(kid) {
                    return Err(self.error(&format!("{key}.key_id"), format!("key_id '{kid}' must be at most 100 characters of [a-zA-Z0-9._~-], starting and ending with a letter or digit")));
                }
                if keys.iter().any(|k: &SigningKey| k.kid() == kid) {
                    return Err(self.error(
                        &format!("{key}.key_id"),
                        format!("key_id '{kid}' must be unique"),
                    ));
                }
            }
            let mut signing = match alg {
                Some(alg) => SigningKey::from_pem(&pem.0, alg, jwk.key_id.as_deref()),
                None => SigningKey::from_pem_inferred(&pem.0, jwk.key_id.as_deref()),
            }
            .map_err(|e| self.error(&format!("{key}.key"), e.to_string()))?;
            if let Some(chain) = jwk
                .certificate_chain
                .as_ref()
                .filter(|c| !c.0.trim().is_empty())
            {
                signing = signing
                    .with_certificate_chain(&chain.0)
                    .map_err(|e| self.error(&format!("{key}.certificate_chain"), e.to_string()))?;
            }
            keys.push(signing);
        }
        if !keys.is_empty() && !keys.iter().any(|k| k.alg() == Algorithm::RS256) {
            return Err(self.error(
                &format!("{P}.jwks"),
                "keys: must at least have one key supporting the 'RS256' algorithm",
            ));
        }
        let min_entropy = match raw.minimum_parameter_entropy {
            None | Some(0) => Some(8),
            Some(-1) => {
                self.warn(
                    &format!("{P}.minimum_parameter_entropy"),
                    "disabled: state and nonce of any length are accepted, which is unsafe",
                );
                None
            }
            Some(n) if n < 0 => {
                return Err(self.error(
                    &format!("{P}.minimum_parameter_entropy"),
                    "must be -1, 0 or positive",
                ));
            }
            Some(n) => {
                if n < 8 {
                    self.warn(
                        &format!("{P}.minimum_parameter_entropy"),
                        format!("{n} is below 8, which is unsafe and insecure"),
                    );
                }
                Some(usize::try_from(n).unwrap_or(8))
            }
        };
        let enforce_pkce = match raw.enforce_pkce.as_deref() {
            None | Some("public_clients_only") => EnforcePkce::PublicClientsOnly,
            Some("always") => EnforcePkce::Always,
            Some("never") => EnforcePkce::Never,
            Some(other) => return Err(self.error(&format!("{P}.enforce_pkce"), format!("option 'enforce_pkce' must be 'never', 'public_clients_only' or 'always', but it's configured as '{other}'"))),
        };
        let settings = AuthorizeSettings {
            enforce_pkce,
            allow_plain_pkce: raw.enable_pkce_plain_challenge.unwrap_or(false),
            min_entropy,
        };
        // Signed metadata: with a key id, that key; with an algorithm, the first key of it.
        let discovery_signing = match (
            &raw.discovery_signed_response_key_id,
            raw.discovery_signed_response_alg.as_deref(),
        ) {
            (Some(kid), alg) => match keys.iter().find(|k| k.kid() == kid) {
                Some(k) if alg.is_some_and(|a| a != "none" && parse_alg(a) != Some(k.alg())) => {
                    return Err(self.error(
                        &format!("{P}.discovery_signed_response_alg"),
                        format!(
                            "the key '{kid}' signs with {:?}, not '{}'",
                            k.alg(),
                            alg.unwrap_or("")
                        ),
                    ));
                }
                Some(k) => Some((k.alg(), Some(kid.clone()))),
                None => {
                    return Err(self.error(
                        &format!("{P}.discovery_signed_response_key_id"),
                        format!("key id '{kid}' is not in identity_providers.oidc.jwks"),
                    ));
                }
            },
            (None, None | Some("none")) => None,
            (None, Some(a)) => {
                let alg = parse_alg(a).ok_or_else(|| {
                    self.error(
                        &format!("{P}.discovery_signed_response_alg"),
                        format!("algorithm '{a}' is not implemented by Portcullis"),
                    )
                })?;
                let available = if keys.is_empty() {
                    alg == Algorithm::RS256
                } else {
                    keys.iter().any(|k| k.alg() == alg)
                };
                if !available {
                    return Err(self.error(
                        &format!("{P}.discovery_signed_response_alg"),
                        format!("no key in identity_providers.oidc.jwks signs with '{a}'"),
                    ));
                }
                Some((alg, None))
            }
        };
        let cors = match &raw.cors {
            None => Cors::default(),
            Some(c) => self.cors(c)?,
        };
        for (key, present) in [
            (
                "enable_client_debug_messages",
                raw.enable_client_debug_messages == Some(true),
            ),
            (
                "enable_jwt_access_token_stateless_introspection",
                raw.enable_jwt_access_token_stateless_introspection
                    .is_some(),
            ),
            (
                "lifespans.jwt_secured_authorization",
                raw.lifespans.jwt_secured_authorization.is_some(),
            ),
        ] {
            if present {
                self.warn(
                    &format!("{P}.{key}"),
                    "not implemented by Portcullis; ignored",
                );
            }
        }
        let l = &raw.lifespans;
        let lifespans = Lifespans {
            access_token: self.oidc_duration(
                &format!("{P}.lifespans.access_token"),
                &l.access_token,
                DEFAULT_LIFESPANS.access_token,
            )?,
            refresh_token: self.oidc_duration(
                &format!("{P}.lifespans.refresh_token"),
                &l.refresh_token,
                DEFAULT_LIFESPANS.refresh_token,
            )?,
            id_token: self.oidc_duration(
                &format!("{P}.lifespans.id_token"),
                &l.id_token,
                DEFAULT_LIFESPANS.id_token,
            )?,
            authorize_code: self.oidc_duration(
                &format!("{P}.lifespans.authorize_code"),
                &l.authorize_code,
                DEFAULT_LIFESPANS.authorize_code,
            )?,
            device_code: self.oidc_duration(
                &format!("{P}.lifespans.device_code"),
                &l.device_code,
                DEFAULT_LIFESPANS.device_code,
            )?,
        };
        let mut custom_lifespans = BTreeMap::new();
        for (name, c) in &l.custom {
            let k = format!("{P}.lifespans.custom.{name}");
            if c.grants.is_some() {
                self.warn(&format!("{k}.grants"), "per-grant lifespans are not implemented by Portcullis; the token lifespans of this entry apply to every grant");
            }
            custom_lifespans.insert(
                name.clone(),
                Lifespans {
                    access_token: self.oidc_duration(
                        &format!("{k}.access_token"),
                        &c.access_token,
                        lifespans.access_token,
                    )?,
                    refresh_token: self.oidc_duration(
                        &format!("{k}.refresh_token"),
                        &c.refresh_token,
                        lifespans.refresh_token,
                    )?,
                    id_token: self.oidc_duration(
                        &format!("{k}.id_token"),
                        &c.id_token,
                        lifespans.id_token,
                    )?,
                    authorize_code: self.oidc_duration(
                        &format!("{k}.authorize_code"),
                        &c.authorize_code,
                        lifespans.authorize_code,
                    )?,
                    device_code: self.oidc_duration(
                        &format!("{k}.device_code"),
                        &c.device_code,
                        lifespans.device_code,
                    )?,
                },
            );
        }
        let mut policies = BTreeMap::new();
        for (name, p) in &raw.authorization_policies {
            let k = format!("{P}.authorization_policies.{name}");
            if RESERVED_POLICY_NAMES.contains(&name.as_str()) {
                return Err(self.error(&k, format!("the name '{name}' is reserved")));
            }
            policies.insert(name.clone(), self.authorization_policy(&k, p, networks)?);
        }
        let mut claims_policies: BTreeMap<String, (Vec<String>, Vec<String>)> = BTreeMap::new();
        for (name, p) in &raw.claims_policies {
            let k = format!("{P}.claims_policies.{name}");
            for claim in &p.access_token {
                if !portcullis_oidc::claims::KNOWN_USER_CLAIMS.contains(&claim.as_str()) {
                    self.warn(
                        &format!("{k}.access_token"),
                        format!("claim '{claim}' is not provided by Portcullis; ignored"),
                    );
                }
            }
            if p.custom_claims.is_some() {
                self.warn(
                    &format!("{k}.custom_claims"),
                    "not implemented by Portcullis; ignored",
                );
            }
            match p.id_token_audience_mode.as_deref() {
                None | Some("specification") => {}
                Some(other) => self.warn(
                    &format!("{k}.id_token_audience_mode"),
                    format!(
                        "'{other}' is not implemented by Portcullis; the specification mode applies"
                    ),
                ),
            }
            for claim in &p.id_token {
                if !portcullis_oidc::claims::KNOWN_USER_CLAIMS.contains(&claim.as_str()) {
                    self.warn(
                        &format!("{k}.id_token"),
                        format!("claim '{claim}' is not provided by Portcullis; ignored"),
                    );
                }
            }
            claims_policies.insert(name.clone(), (p.id_token.clone(), p.access_token.clone()));
        }
        let mut custom_scopes: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (name, s) in &raw.scopes {
            let k = format!("{P}.scopes.{name}");
            if STANDARD_SCOPES.contains(&name.as_str()) {
                return Err(self.error(
                    &k,
                    format!("the scope '{name}' is a standard scope and cannot be redefined"),
                ));
            }
            for claim in &s.claims {
                if !portcullis_oidc::claims::KNOWN_USER_CLAIMS.contains(&claim.as_str()) {
                    return Err(self.error(
                        &format!("{k}.claims"),
                        format!("claim '{claim}' is not a standard claim Portcullis provides"),
                    ));
                }
            }
            custom_scopes.insert(name.clone(), s.claims.clone());
        }
        if raw.clients.is_empty() {
            return Err(self.error(
                &format!("{P}.clients"),
                "option 'clients' must have one or more clients configured",
            ));
        }
        let mut clients: Vec<OidcClient> = Vec::new();
        for (i, c) in raw.clients.iter().enumerate() {
            let client = self.oidc_client(
                i,
                c,
                &keys,
                &lifespans,
                &custom_lifespans,
                &policies,
                &claims_policies,
                &custom_scopes,
            )?;
            if clients.iter().any(|o| o.client.id == client.client.id) {
                return Err(self.error(
                    &format!("{P}.clients[{i}].client_id"),
                    format!(
                        "option 'client_id' must be unique: '{}' is used more than once",
                        client.client.id
                    ),
                ));
            }
            clients.push(client);
        }
        let mut cors = cors;
        if raw
            .cors
            .as_ref()
            .is_some_and(|c| c.allowed_origins_from_client_redirect_uris == Some(true))
        {
            for client in &clients {
                for uri in &client.client.redirect_uris {
                    let Ok(url) = url::Url::parse(uri) else {
                        continue;
                    };
                    let local = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
                    let origin = url.origin().ascii_serialization();
                    if matches!(url.scheme(), "http" | "https")
                        && !local
                        && !cors.origins.contains(&origin)
                    {
                        cors.origins.push(origin);
                    }
                }
            }
        }
        Ok(OidcProvider {
            hmac_secret,
            keys,
            settings,
            lifespans,
            clients,
            rate_limits: OidcRateLimits::default(),
            superuser_group: None,
            key_rotation: DEFAULT_KEY_ROTATION,
            require_par: raw.require_pushed_authorization_requests == Some(true),
            discovery_signing,
            cors,
        })
    }

    fn authorization_policy(
        &self,
        key: &str,
        p: &RawAuthorizationPolicy,
        networks: &BTreeMap<String, Vec<String>>,
    ) -> Result<AuthorizationPolicy, ConfigError> {
        let level = |k: &str, v: Option<&str>| -> Result<PolicyLevel, ConfigError> {
            match v {
                None | Some("two_factor") => Ok(PolicyLevel::Level(AuthLevel::TwoFactor)),
                Some("one_factor") => Ok(PolicyLevel::Level(AuthLevel::OneFactor)),
                Some("deny") => Ok(PolicyLevel::Deny),
                Some(other) => Err(self.error(k, format!("must be 'one_factor', 'two_factor' or 'deny' but it's configured as '{other}'"))),
            }
        };
        let default = level(
            &format!("{key}.default_policy"),
            p.default_policy.as_deref(),
        )?;
        if p.rules.is_empty() {
            return Err(self.error(&format!("{key}.rules"), "option 'rules' is required"));
        }
        let mut rules = Vec::new();
        for (i, r) in p.rules.iter().enumerate() {
            let rk = format!("{key}.rules[{i}]");
            if r.subject.0.is_empty() && r.networks.is_empty() {
                return Err(self.error(&rk, "a rule must have a 'subject' or 'networks'"));
            }
            let mut subjects = Vec::new();
            for list in &r.subject.0 {
                let mut all = Vec::new();
                for s in &list.0 {
                    all.push(if let Some(u) = s.strip_prefix("user:") {
                        Subject::User(u.to_owned())
                    } else if let Some(g) = s.strip_prefix("group:") {
                        Subject::Group(g.to_owned())
                    } else {
                        return Err(self.error(
                            &format!("{rk}.subject"),
                            format!("subject '{s}' must start with 'user:' or 'group:'"),
                        ));
                    });
                }
                subjects.push(all);
            }
            let mut nets = Vec::new();
            for n in &r.networks {
                let names: Vec<String> =
                    networks.get(n).cloned().unwrap_or_else(|| vec![n.clone()]);
                for text in names {
                    let net = text
                        .parse::<IpNet>()
                        .or_else(|_| text.parse::<std::net::IpAddr>().map(IpNet::from))
                        .map_err(|_| self.error(&format!("{rk}.networks"), format!("'{text}' is neither a network nor a name in definitions.network")))?;
                    nets.push(net);
                }
            }
            rules.push(AuthorizationRule {
                level: level(&format!("{rk}.policy"), r.policy.as_deref())?,
                subjects,
                networks: nets,
            });
        }
        Ok(AuthorizationPolicy { default, rules })
    }
}
