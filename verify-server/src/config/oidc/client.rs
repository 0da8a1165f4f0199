//! Validating one client of `identity_providers.oidc.clients`.

use std::collections::BTreeMap;

use portcullis_auth::users::Digest;
use portcullis_config::ConfigError;
use portcullis_core::{AuthLevel, Secret};
use portcullis_oidc::client::{AuthMethod, Client, ConsentMode, GrantType, ResponseMode};
use portcullis_oidc::keys::{Algorithm, SigningKey};
use portcullis_oidc::pkce::ChallengeMethod;
use portcullis_oidc::scope::Scopes;

use super::*;
use crate::config::oidc_raw::RawClient;
use crate::config::validate::Validator;

impl Validator<'_> {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn oidc_client(
        &mut self,
        i: usize,
        c: &RawClient,
        keys: &[SigningKey],
        lifespans: &Lifespans,
        custom_lifespans: &BTreeMap<String, Lifespans>,
        policies: &BTreeMap<String, AuthorizationPolicy>,
        claims_policies: &BTreeMap<String, (Vec<String>, Vec<String>)>,
        custom_scopes: &BTreeMap<String, Vec<String>>,
    ) -> Result<OidcClient, ConfigError> {
        let k = format!("identity_providers.oidc.clients[{i}]");
        let key = |name: &str| format!("{k}.{name}");
        let id = c.client_id.clone().unwrap_or_default();
        if id.is_empty() {
            return Err(self.error(&key("client_id"), "option 'client_id' is required"));
        }
        if !client_id_ok(&id) {
            return Err(self.error(
                &key("client_id"),
                format!("client_id '{id}' must be at most 100 RFC 3986 unreserved characters"),
            ));
        }
        // Keys whose absence of support would change what the client relies on: refuse.
        let refused = [
            (
                "sector_identifier_uri",
                c.sector_identifier_uri.is_some(),
                "pairwise subject identifiers are not implemented by Portcullis",
            ),
            (
                "request_uris",
                c.request_uris.is_some(),
                "request objects (JAR) are not implemented by Portcullis",
            ),
            (
                "request_object_signing_alg",
                c.request_object_signing_alg.is_some(),
                "request objects (JAR) are not implemented by Portcullis",
            ),
            (
                "request_object_encryption_alg",
                c.request_object_encryption_alg.is_some(),
                "request objects (JAR) are not implemented by Portcullis",
            ),
            (
                "authorization_encrypted_response_alg",
                c.authorization_encrypted_response_alg.is_some(),
                "JWE is not implemented by Portcullis",
            ),
            (
                "id_token_encrypted_response_alg",
                c.id_token_encrypted_response_alg.is_some(),
                "JWE is not implemented by Portcullis",
            ),
            (
                "access_token_encrypted_response_alg",
                c.access_token_encrypted_response_alg.is_some(),
                "JWE is not implemented by Portcullis",
            ),
            (
                "userinfo_encrypted_response_alg",
                c.userinfo_encrypted_response_alg.is_some(),
                "JWE is not implemented by Portcullis",
            ),
            (
                "introspection_encrypted_response_alg",
                c.introspection_encrypted_response_alg.is_some(),
                "JWE is not implemented by Portcullis",
            ),
            (
                "allow_multiple_auth_methods",
                c.allow_multiple_auth_methods == Some(true),
                "Portcullis accepts one client authentication method per request (RFC 6749 §2.3)",
            ),
            (
                "backchannel_logout_session_required",
                c.backchannel_logout_session_required == Some(true),
                "Portcullis's logout tokens carry no sid: set backchannel_logout_session_required to false",
            ),
        ];
        for (name, present, why) in refused {
            if present {
                return Err(self.error(&key(name), why.to_owned()));
            }
        }
        for (name, present) in [
            (
                "authorization_encrypted_response_enc",
                c.authorization_encrypted_response_enc.is_some()
                    || c.authorization_encrypted_response_key_id.is_some(),
            ),
            (
                "id_token_encrypted_response_enc",
                c.id_token_encrypted_response_enc.is_some()
                    || c.id_token_encrypted_response_key_id.is_some(),
            ),
            (
                "access_token_encrypted_response_enc",
                c.access_token_encrypted_response_enc.is_some()
                    || c.access_token_encrypted_response_key_id.is_some(),
            ),
            (
                "userinfo_encrypted_response_enc",
                c.userinfo_encrypted_response_enc.is_some()
                    || c.userinfo_encrypted_response_key_id.is_some(),
            ),
            (
                "introspection_encrypted_response_enc",
                c.introspection_encrypted_response_enc.is_some()
                    || c.introspection_encrypted_response_key_id.is_some(),
            ),
            (
                "request_object_encryption_enc",
                c.request_object_encryption_enc.is_some(),
            ),
            (
                "revocation_endpoint_auth_signing_alg",
                c.revocation_endpoint_auth_signing_alg.is_some(),
            ),
            (
                "introspection_endpoint_auth_signing_alg",
                c.introspection_endpoint_auth_signing_alg.is_some(),
            ),
            (
                "pushed_authorization_request_endpoint_auth_signing_alg",
                c.pushed_authorization_request_endpoint_auth_signing_alg
                    .is_some(),
            ),
        ] {
            if present {
                self.warn(&key(name), "not implemented by Portcullis; ignored");
            }
        }
        let public = c.public.unwrap_or(false);
        let secret = match &c.client_secret {
            None => None,
            Some(s) if s.0.is_empty() => None,
            Some(s) => {
                if public {
                    return Err(self.error(&key("client_secret"), "option 'client_secret' is required to be empty when option 'public' is true"));
                }
                Some(if let Some(plain) = s.0.strip_prefix("$plaintext$") {
                    ClientSecret::Plain(Secret::new(plain))
                } else if s.0.starts_with('$') {
                    ClientSecret::Digest(
                        Digest::parse(&s.0)
                            .map_err(|e| self.error(&key("client_secret"), e.to_string()))?,
                    )
                } else {
                    self.warn(&key("client_secret"), "a plaintext secret without '$plaintext$' is deprecated: store a digest ('portcullis hash-password')");
                    ClientSecret::Plain(Secret::new(s.0.clone()))
                })
            }
        };
        let auth_method = match c.token_endpoint_auth_method.as_deref() {
            None if public => AuthMethod::None,
            None => AuthMethod::ClientSecretBasic,
            Some(m) => AuthMethod::parse(m).ok_or_else(|| {
                self.error(&key("token_endpoint_auth_method"), format!("must be one of 'none', 'client_secret_post', 'client_secret_basic', 'private_key_jwt' or 'client_secret_jwt' but it's configured as '{m}'"))
            })?,
        };
        if public && auth_method != AuthMethod::None {
            return Err(self.error(
                &key("token_endpoint_auth_method"),
                "must be 'none' when option 'public' is true",
            ));
        }
        if !public && auth_method == AuthMethod::None {
            return Err(self.error(
                &key("token_endpoint_auth_method"),
                "'none' is only allowed for public clients",
            ));
        }
        if !public && secret.is_none() && auth_method != AuthMethod::PrivateKeyJwt {
            return Err(self.error(&key("client_secret"), "option 'client_secret' is required"));
        }
        let (assertion_alg, assertion_keys, jwks_uri) =
            self.client_assertions(i, c, auth_method, secret.as_ref())?;
        for (name, v) in [
            (
                "revocation_endpoint_auth_method",
                &c.revocation_endpoint_auth_method,
            ),
            (
                "introspection_endpoint_auth_method",
                &c.introspection_endpoint_auth_method,
            ),
            (
                "pushed_authorization_request_endpoint_auth_method",
                &c.pushed_authorization_request_endpoint_auth_method,
            ),
        ] {
            if let Some(v) = v
                && AuthMethod::parse(v) != Some(auth_method)
            {
                return Err(self.error(&key(name), format!("Portcullis authenticates a client the same way at every endpoint: must be '{}' like token_endpoint_auth_method", auth_method.as_str())));
            }
        }
        let response_types = c
            .response_types
            .as_ref()
            .map_or_else(|| vec!["code".to_owned()], |v| v.0.clone());
        if let Some(t) = response_types.iter().find(|t| t.as_str() != "code") {
            return Err(self.error(&key("response_types"), format!("response type '{t}' is not implemented by Portcullis (only 'code'; implicit and hybrid flows are not)")));
        }
        let grant_types: Vec<String> = c
            .grant_types
            .as_ref()
            .map_or_else(|| vec!["authorization_code".to_owned()], |v| v.0.clone());
        let mut grants = Vec::new();
        for g in &grant_types {
            match GrantType::parse(g) {
                Some(grant) => grants.push(grant),
                None => {
                    return Err(self.error(
                        &key("grant_types"),
                        format!("grant type '{g}' is not implemented by Portcullis"),
                    ));
                }
            }
        }
        if public && grants.contains(&GrantType::ClientCredentials) {
            return Err(self.error(
                &key("grant_types"),
                "'client_credentials' is not allowed for public clients",
            ));
        }
        let cc_only = grants == [GrantType::ClientCredentials];
        let scope_list: Vec<String> = match &c.scopes {
            Some(v) => v.0.clone(),
            None if cc_only => Vec::new(),
            None => ["openid", "groups", "profile", "email"]
                .map(str::to_owned)
                .to_vec(),
        };
        let mut custom_scope_claims = BTreeMap::new();
        for s in &scope_list {
            if let Some(claims) = custom_scopes.get(s) {
                custom_scope_claims.insert(s.clone(), claims.clone());
            } else if !STANDARD_SCOPES.contains(&s.as_str()) && !cc_only {
                self.warn(
                    &key("scopes"),
                    format!(
                        "scope '{s}' is not a standard or configured scope: it releases no claims"
                    ),
                );
            }
            if cc_only && ["openid", "offline", "offline_access"].contains(&s.as_str()) {
                return Err(self.error(&key("scopes"), format!("scope '{s}' is not allowed for a client with only the 'client_credentials' grant")));
            }
        }
        let scopes = Scopes::from_list(scope_list);
        if grants.contains(&GrantType::RefreshToken) && !scopes.wants_offline() {
            self.warn(&key("grant_types"), "'refresh_token' without the 'offline_access' scope: no refresh token will be issued");
        }
        let redirect_uris = c
            .redirect_uris
            .as_ref()
            .map_or_else(Vec::new, |v| v.0.clone());
        for (j, uri) in redirect_uris.iter().enumerate() {
            let rk = format!("{k}.redirect_uris[{j}]");
            let parsed = url::Url::parse(uri).map_err(|_| self.error(&rk, format!("redirect URI '{uri}' must have a scheme but it's absent or the URI is not absolute")))?;
            if parsed.fragment().is_some() {
                return Err(self.error(
                    &rk,
                    format!("redirect URI '{uri}' must not have a fragment"),
                ));
            }
            if uri == "urn:ietf:wg:oauth:2.0:oob" && !public {
                return Err(self.error(
                    &rk,
                    "'urn:ietf:wg:oauth:2.0:oob' is only allowed for public clients",
                ));
            }
        }
        if redirect_uris.is_empty() && grants.contains(&GrantType::AuthorizationCode) {
            return Err(self.error(
                &key("redirect_uris"),
                "option 'redirect_uris' is required for the authorization_code grant",
            ));
        }
        let response_modes = match &c.response_modes {
            None => vec![ResponseMode::FormPost, ResponseMode::Query],
            Some(v) => {
                let mut modes = Vec::new();
                for m in &v.0 {
                    match ResponseMode::parse(m) {
                        Some(mode) => modes.push(mode),
                        None => return Err(self.error(&key("response_modes"), format!("response mode '{m}' is not implemented by Portcullis (only 'form_post' and 'query')"))),
                    }
                }
                modes
            }
        };
        let policy_name = c.authorization_policy.clone().unwrap_or_else(|| {
            if cc_only {
                "one_factor".into()
            } else {
                "two_factor".into()
            }
        });
        let policy = match policy_name.as_str() {
            "one_factor" => AuthorizationPolicy { default: PolicyLevel::Level(AuthLevel::OneFactor), rules: vec![] },
            "two_factor" => AuthorizationPolicy { default: PolicyLevel::Level(AuthLevel::TwoFactor), rules: vec![] },
            name => policies.get(name).cloned().ok_or_else(|| self.error(&key("authorization_policy"), format!("policy '{name}' must be 'one_factor', 'two_factor' or a name in identity_providers.oidc.authorization_policies")))?,
        };
        if policy.default == PolicyLevel::Level(AuthLevel::TwoFactor)
            && policy
                .rules
                .iter()
                .all(|r| r.level == PolicyLevel::Level(AuthLevel::TwoFactor))
        {
            self.warn(
                &key("authorization_policy"),
                format!("'{policy_name}' requires two factors, which Portcullis does not offer yet: every login to this client is refused (set 'one_factor')"),
            );
        }
        let client_lifespans = match c.lifespan.as_deref() {
            None | Some("") => *lifespans,
            Some(name) => *custom_lifespans.get(name).ok_or_else(|| self.error(&key("lifespan"), format!("lifespan '{name}' must be a name in identity_providers.oidc.lifespans.custom")))?,
        };
        let (id_token_claims, access_token_claims) = match c.claims_policy.as_deref() {
            None | Some("") => (Vec::new(), Vec::new()),
            Some(name) => claims_policies.get(name).cloned().ok_or_else(|| self.error(&key("claims_policy"), format!("claims policy '{name}' must be a name in identity_providers.oidc.claims_policies")))?,
        };
        match c.requested_audience_mode.as_deref() {
            None | Some("explicit") => {}
            Some(other) => self.warn(
                &key("requested_audience_mode"),
                format!("'{other}' is not implemented by Portcullis; 'explicit' applies"),
            ),
        }
        let consent_mode = match c.consent_mode.as_deref() {
            None | Some("auto") => match &c.pre_configured_consent_duration {
                Some(d) => ConsentMode::PreConfigured(self.duration(&key("pre_configured_consent_duration"), &Some(d.clone()), 604_800)?),
                None => ConsentMode::Explicit,
            },
            Some("explicit") => ConsentMode::Explicit,
            Some("implicit") => ConsentMode::Implicit,
            Some("pre-configured") => ConsentMode::PreConfigured(self.duration(&key("pre_configured_consent_duration"), &c.pre_configured_consent_duration, 604_800)?),
            Some(other) => return Err(self.error(&key("consent_mode"), format!("must be one of 'auto', 'explicit', 'implicit' or 'pre-configured' but it's configured as '{other}'"))),
        };
        let pkce_method = match c.pkce_challenge_method.as_deref() {
            None | Some("") => None,
            Some(m) => Some(ChallengeMethod::parse(m).ok_or_else(|| {
                self.error(
                    &key("pkce_challenge_method"),
                    format!("must be 'plain' or 'S256' but it's configured as '{m}'"),
                )
            })?),
        };
        let signing_alg = |name: &str,
                           alg: &Option<String>,
                           kid: &Option<String>,
                           default: Option<Algorithm>|
         -> Result<Option<Algorithm>, ConfigError> {
            if let Some(kid) = kid {
                return match keys.iter().find(|k| k.kid() == kid) {
                    Some(k)
                        if alg
                            .as_deref()
                            .is_some_and(|a| a != "none" && parse_alg(a) != Some(k.alg())) =>
                    {
                        Err(self.error(
                            &key(&format!("{name}_alg")),
                            format!(
                                "the key '{kid}' signs with {:?}, not '{}'",
                                k.alg(),
                                alg.as_deref().unwrap_or("")
                            ),
                        ))
                    }
                    Some(k) => Ok(Some(k.alg())),
                    None if keys.is_empty() => Err(self.error(
                        &key(&format!("{name}_key_id")),
                        "a key id needs identity_providers.oidc.jwks",
                    )),
                    None => Err(self.error(
                        &key(&format!("{name}_key_id")),
                        format!("key id '{kid}' is not in identity_providers.oidc.jwks"),
                    )),
                };
            }
            match alg.as_deref() {
                None => Ok(default),
                Some("none") => Ok(None),
                Some(a @ ("HS256" | "HS384" | "HS512")) => {
                    // Signed with the client's secret, which must therefore be kept as is.
                    if !matches!(secret, Some(ClientSecret::Plain(_))) {
                        return Err(self.error(
                            &key(&format!("{name}_alg")),
                            format!("'{a}' signs with the client secret, which must then be a '$plaintext$' secret"),
                        ));
                    }
                    Ok(Some(match a {
                        "HS384" => Algorithm::HS384,
                        "HS512" => Algorithm::HS512,
                        _ => Algorithm::HS256,
                    }))
                }
                Some(a) => {
                    let parsed = parse_alg(a).ok_or_else(|| {
                        self.error(
                            &key(&format!("{name}_alg")),
                            format!("algorithm '{a}' is not implemented by Portcullis"),
                        )
                    })?;
                    // Without configured keys only an RS256 key is generated.
                    let available = if keys.is_empty() {
                        parsed == Algorithm::RS256
                    } else {
                        keys.iter().any(|k| k.alg() == parsed)
                    };
                    if !available {
                        return Err(self.error(
                            &key(&format!("{name}_alg")),
                            format!("no key in identity_providers.oidc.jwks signs with '{a}'"),
                        ));
                    }
                    Ok(Some(parsed))
                }
            }
        };
        let id_token_alg = signing_alg(
            "id_token_signed_response",
            &c.id_token_signed_response_alg,
            &c.id_token_signed_response_key_id,
            Some(Algorithm::RS256),
        )?
        .ok_or_else(|| {
            self.error(
                &key("id_token_signed_response_alg"),
                "ID tokens must be signed: 'none' is not allowed",
            )
        })?;
        let access_token_alg = signing_alg(
            "access_token_signed_response",
            &c.access_token_signed_response_alg,
            &c.access_token_signed_response_key_id,
            None,
        )?;

        let userinfo_alg = signing_alg(
            "userinfo_signed_response",
            &c.userinfo_signed_response_alg,
            &c.userinfo_signed_response_key_id,
            None,
        )?;
        let introspection_alg = signing_alg(
            "introspection_signed_response",
            &c.introspection_signed_response_alg,
            &c.introspection_signed_response_key_id,
            None,
        )?;
        if c.authorization_signed_response_key_id.is_some()
            || c.authorization_signed_response_alg
                .as_deref()
                .is_some_and(|a| a != "none" && a != "RS256")
        {
            return Err(self.error(
                &key("authorization_signed_response_alg"),
                "JARM is not implemented by Portcullis",
            ));
        }
        let post_logout_redirect_uris = c
            .post_logout_redirect_uris
            .as_ref()
            .map_or_else(Vec::new, |v| v.0.clone());
        for (j, uri) in post_logout_redirect_uris.iter().enumerate() {
            let valid = url::Url::parse(uri)
                .is_ok_and(|u| u.fragment().is_none() && matches!(u.scheme(), "http" | "https"));
            if !valid {
                return Err(self.error(
                    &format!("{k}.post_logout_redirect_uris[{j}]"),
                    format!("'{uri}' must be an absolute http(s) URI without a fragment"),
                ));
            }
        }
        let backchannel_logout_uri = match &c.backchannel_logout_uri {
            None => None,
            Some(uri) => {
                let valid = url::Url::parse(uri).is_ok_and(|u| {
                    u.fragment().is_none() && matches!(u.scheme(), "http" | "https")
                });
                if !valid {
                    return Err(self.error(
                        &key("backchannel_logout_uri"),
                        format!("'{uri}' must be an absolute http(s) URI without a fragment"),
                    ));
                }
                Some(uri.clone())
            }
        };
        Ok(OidcClient {
            client: Client {
                name: c
                    .client_name
                    .clone()
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| id.clone()),
                id,
                public,
                redirect_uris,
                scopes,
                audience: c.audience.as_ref().map_or_else(Vec::new, |v| v.0.clone()),
                grant_types: grants,
                response_modes,
                auth_method,
                require_pkce: c.require_pkce.unwrap_or(false),
                pkce_method,
                consent_mode,
                id_token_alg,
                access_token_alg,
                authorization_policy: policy_name,
                id_token_claims,
                access_token_claims,
                post_logout_redirect_uris,
                backchannel_logout_uri,
            },
            secret,
            lifespans: client_lifespans,
            policy,
            custom_scope_claims,
            id_token_key_id: c.id_token_signed_response_key_id.clone(),
            access_token_key_id: c.access_token_signed_response_key_id.clone(),
            userinfo_signing: userinfo_alg.map(|a| (a, c.userinfo_signed_response_key_id.clone())),
            introspection_signing: introspection_alg
                .map(|a| (a, c.introspection_signed_response_key_id.clone())),
            require_par: c.require_pushed_authorization_requests == Some(true),
            assertion_alg,
            assertion_keys,
            jwks_uri,
        })
    }
}
