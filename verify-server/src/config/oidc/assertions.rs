//! A client's RFC 7523 assertion settings: `token_endpoint_auth_signing_alg`, and for
//! `private_key_jwt` its public keys (`jwks`) or where to fetch them (`jwks_uri`).

use portcullis_config::ConfigError;
use portcullis_oidc::client::AuthMethod;
use portcullis_oidc::keys::{Algorithm, ClientKey};

use super::*;
use crate::config::oidc_raw::RawClient;
use crate::config::validate::Validator;

/// The assertion algorithm, the inline keys and the key URL of a client.
pub(super) type Assertions = (Option<Algorithm>, Vec<ClientKey>, Option<String>);

impl Validator<'_> {
    pub(super) fn client_assertions(
        &mut self,
        i: usize,
        c: &RawClient,
        auth_method: AuthMethod,
        secret: Option<&ClientSecret>,
    ) -> Result<Assertions, ConfigError> {
        let k = format!("identity_providers.oidc.clients[{i}]");
        let key = |name: &str| format!("{k}.{name}");
        // Client assertions (RFC 7523): the algorithm, and the keys of private_key_jwt.
        let assertion_alg = match auth_method {
            AuthMethod::ClientSecretJwt => {
                if !matches!(secret, Some(ClientSecret::Plain(_))) {
                    return Err(self.error(
                        &key("client_secret"),
                        "'client_secret_jwt' needs the secret itself: a '$plaintext$' secret",
                    ));
                }
                Some(match c.token_endpoint_auth_signing_alg.as_deref() {
                    None | Some("HS256") => Algorithm::HS256,
                    Some("HS384") => Algorithm::HS384,
                    Some("HS512") => Algorithm::HS512,
                    Some(other) => {
                        return Err(self.error(
                            &key("token_endpoint_auth_signing_alg"),
                            format!("'{other}' is not an HMAC algorithm for client_secret_jwt"),
                        ));
                    }
                })
            }
            AuthMethod::PrivateKeyJwt => Some(match c.token_endpoint_auth_signing_alg.as_deref() {
                None => Algorithm::RS256,
                Some(a) => parse_alg(a).ok_or_else(|| {
                    self.error(
                        &key("token_endpoint_auth_signing_alg"),
                        format!("'{a}' is not a public-key algorithm for private_key_jwt"),
                    )
                })?,
            }),
            _ => {
                if c.token_endpoint_auth_signing_alg.is_some() {
                    self.warn(
                        &key("token_endpoint_auth_signing_alg"),
                        "only used with client_secret_jwt and private_key_jwt; ignored",
                    );
                }
                None
            }
        };
        let mut assertion_keys = Vec::new();
        for (j, jwk) in c.jwks.iter().flatten().enumerate() {
            let jk = format!("{k}.jwks[{j}]");
            if jwk.key_use.as_deref().is_some_and(|u| u != "sig") {
                return Err(self.error(&format!("{jk}.use"), "only 'sig' keys are used"));
            }
            let alg = match jwk.algorithm.as_deref() {
                None => assertion_alg.unwrap_or(Algorithm::RS256),
                Some(a) => parse_alg(a).ok_or_else(|| {
                    self.error(
                        &format!("{jk}.algorithm"),
                        format!("algorithm '{a}' is not supported"),
                    )
                })?,
            };
            // A key of another algorithm than the assertions' would never be used.
            if let Some(expected) = assertion_alg
                && expected != alg
            {
                return Err(self.error(
                    &format!("{jk}.algorithm"),
                    format!(
                        "the key is {alg:?} but token_endpoint_auth_signing_alg is {expected:?}"
                    ),
                ));
            }
            let pem = jwk
                .key
                .as_deref()
                .filter(|p| !p.trim().is_empty())
                .ok_or_else(|| self.error(&format!("{jk}.key"), "option 'key' is required"))?;
            if pem.contains("PRIVATE KEY") {
                return Err(self.error(
                    &format!("{jk}.key"),
                    "a client's key must be its public key, never the private one",
                ));
            }
            if jwk.certificate_chain.is_some() {
                self.warn(
                    &format!("{jk}.certificate_chain"),
                    "not implemented by Portcullis; ignored",
                );
            }
            let parsed =
                portcullis_oidc::keys::ClientKey::from_public_pem(pem, alg, jwk.key_id.as_deref())
                    .map_err(|e| self.error(&format!("{jk}.key"), e.to_string()))?;
            assertion_keys.push(parsed);
        }
        let jwks_uri = match &c.jwks_uri {
            None => None,
            Some(_) if c.jwks.is_some() => {
                return Err(self.error(
                    &key("jwks_uri"),
                    "option 'jwks_uri' and 'jwks' are mutually exclusive",
                ));
            }
            Some(uri) => {
                // https, or http to this machine (a client on loopback).
                let ok = url::Url::parse(uri).is_ok_and(|u| {
                    u.scheme() == "https"
                        || (u.scheme() == "http"
                            && matches!(u.host_str(), Some("127.0.0.1" | "localhost" | "[::1]")))
                });
                if !ok {
                    return Err(
                        self.error(&key("jwks_uri"), format!("'{uri}' must be an https URL"))
                    );
                }
                Some(uri.clone())
            }
        };
        if auth_method == AuthMethod::PrivateKeyJwt
            && assertion_keys.is_empty()
            && jwks_uri.is_none()
        {
            return Err(self.error(
                &key("jwks"),
                "'private_key_jwt' needs the client's public keys in 'jwks' or at 'jwks_uri'",
            ));
        }
        Ok((assertion_alg, assertion_keys, jwks_uri))
    }
}
