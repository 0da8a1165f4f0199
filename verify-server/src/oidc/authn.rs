//! Client authentication at the token, introspection, revocation, PAR and device endpoints
//! (docs/reference/oidc-provider.md §4.2): secrets by Basic or form, public clients, and RFC 7523
//! assertions; one method per request.

use axum::http::request::Parts;
use axum::response::Response;
use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use http::{HeaderValue, StatusCode};
use portcullis_oidc::client::AuthMethod;
use portcullis_oidc::client_auth::presented_client;
use portcullis_oidc::{ErrorCode, OAuthError};

use super::{OidcRuntime, issuer, oauth_error, single};
use crate::config::ClientSecret;
use crate::state::AppState;

fn err(code: ErrorCode, description: impl Into<String>) -> OAuthError {
    OAuthError::new(code, description)
}

fn store_err(e: &portcullis_oidc::OidcError) -> Refusal {
    tracing::error!(error = %e, "OpenID Connect store failed: client authentication refused");
    err(
        ErrorCode::ServerError,
        "The authorization server encountered an unexpected condition.",
    )
    .into()
}

/// Why a token-style request was refused, with what the answer needs.
pub(super) struct Refusal {
    pub(super) error: OAuthError,
    /// The client used HTTP Basic: a 401 carries a Basic challenge (RFC 6749 §5.2).
    pub(super) basic: bool,
}

impl From<OAuthError> for Refusal {
    fn from(error: OAuthError) -> Self {
        Self {
            error,
            basic: false,
        }
    }
}

pub(super) fn refusal_response(endpoint: &'static str, r: &Refusal) -> Response {
    let mut response = oauth_error(endpoint, &r.error);
    if r.basic && response.status() == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"portcullis\", error=\"invalid_client\""),
        );
    }
    response
}

/// Authenticate the client of a token, introspection or revocation request. `allow_public`:
/// whether a public client (`none`) may call this endpoint.
pub(super) async fn authenticate_client(
    state: &AppState,
    rt: &OidcRuntime,
    parts: &Parts,
    pairs: &[(String, String)],
    allow_public: bool,
) -> Result<super::ClientRef, Refusal> {
    let authorization = parts
        .headers
        .get(AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or("\u{0}"));
    let basic = authorization.is_some();
    let refuse = |error: OAuthError| Refusal { error, basic };
    let assertion = single(pairs, "client_assertion").map_err(refuse)?;
    let assertion_type = single(pairs, "client_assertion_type").map_err(refuse)?;
    if assertion.is_some() || assertion_type.is_some() {
        if basic || single(pairs, "client_secret").map_err(refuse)?.is_some() {
            return Err(refuse(err(
                ErrorCode::InvalidRequest,
                "Client Authentication failed with more than one known authentication method included in the request which is not permitted.",
            )));
        }
        return authenticate_assertion(state, rt, parts, pairs, assertion, assertion_type).await;
    }
    let presented = presented_client(
        authorization,
        single(pairs, "client_id").map_err(refuse)?,
        single(pairs, "client_secret").map_err(refuse)?,
        false,
    )
    .map_err(refuse)?;
    let unknown = || {
        refuse(err(
            ErrorCode::InvalidClient,
            "Client authentication failed (e.g., unknown client, no client authentication included, or unsupported authentication method).",
        ))
    };
    let Some(client) = rt.client(&presented.id) else {
        tracing::info!(client = %presented.id, "client authentication failed: unknown client");
        return Err(unknown());
    };
    if presented.method != client.client.auth_method {
        tracing::info!(client = %presented.id, presented = presented.method.as_str(), registered = client.client.auth_method.as_str(), "client authentication failed: wrong method");
        return Err(unknown());
    }
    match (presented.method, &client.secret, presented.secret) {
        (AuthMethod::None, _, _) => {
            if !allow_public {
                return Err(unknown());
            }
        }
        (_, Some(ClientSecret::Plain(expected)), Some(given)) => {
            if *expected != given {
                tracing::info!(client = %presented.id, "client authentication failed: wrong secret");
                return Err(unknown());
            }
        }
        (_, Some(ClientSecret::Digest(digest)), Some(given)) => {
            match state
                .0
                .hasher
                .verify(digest.clone(), given.expose().to_owned())
                .await
            {
                Ok(true) => {}
                Ok(false) => {
                    tracing::info!(client = %presented.id, "client authentication failed: wrong secret");
                    return Err(unknown());
                }
                Err(e) => {
                    tracing::warn!(client = %presented.id, error = %e, "client authentication failed: no hashing slot");
                    return Err(refuse(err(
                        ErrorCode::TemporarilyUnavailable,
                        "The server is busy; retry later.",
                    )));
                }
            }
        }
        _ => return Err(unknown()),
    }
    Ok(client)
}

/// RFC 7523 client assertions: `client_secret_jwt` (HMAC with the client secret) and
/// `private_key_jwt` (the client's key from its `jwks`). `iss` and `sub` are the client, `aud`
/// names this provider (its issuer or the endpoint), `exp` is required and each `jti` is accepted
/// once.
async fn authenticate_assertion(
    state: &AppState,
    rt: &OidcRuntime,
    parts: &Parts,
    pairs: &[(String, String)],
    assertion: Option<&str>,
    assertion_type: Option<&str>,
) -> Result<super::ClientRef, Refusal> {
    use portcullis_oidc::jwt::{Expect, peek_claims, peek_header, secret_key, verify};
    let failed = |why: &str| -> Refusal {
        tracing::info!(reason = why, "client assertion refused");
        err(ErrorCode::InvalidClient, "Client authentication failed (e.g., unknown client, no client authentication included, or unsupported authentication method).").into()
    };
    if assertion_type != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer") {
        return Err(failed("unsupported client_assertion_type"));
    }
    let jwt = assertion.ok_or_else(|| failed("no client_assertion"))?;
    let header = peek_header(jwt).ok_or_else(|| failed("not a JWT"))?;
    let unverified = peek_claims(jwt).ok_or_else(|| failed("not a JWT"))?;
    let client_id = unverified
        .get("iss")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| failed("no iss"))?
        .to_owned();
    if single(pairs, "client_id")?.is_some_and(|id| id != client_id) {
        return Err(failed("client_id differs from the assertion's issuer"));
    }
    let client = rt
        .client(&client_id)
        .ok_or_else(|| failed("unknown client"))?;
    let alg = client
        .assertion_alg
        .ok_or_else(|| failed("the client does not authenticate with assertions"))?;
    if header.alg != alg {
        return Err(failed("unexpected algorithm"));
    }
    let now = state.now();
    let expect = Expect {
        alg,
        issuer: Some(&client_id),
        typ: None,
        now,
        leeway: 5,
    };
    let claims = match client.client.auth_method {
        AuthMethod::ClientSecretJwt => {
            let Some(ClientSecret::Plain(secret)) = &client.secret else {
                return Err(failed("no plaintext secret"));
            };
            let key = secret_key(secret.expose().as_bytes()).map_err(|_| failed("bad secret"))?;
            verify(jwt, &key, &expect).map_err(|_| failed("bad signature or time"))?
        }
        AuthMethod::PrivateKeyJwt => {
            let fetched = if client.assertion_keys.is_empty() {
                rt.client_keys(&client, header.kid.as_deref(), now).await
            } else {
                None
            };
            let keys: &[portcullis_oidc::keys::ClientKey] = match &fetched {
                Some(k) => k,
                None => &client.assertion_keys,
            };
            let key = keys
                .iter()
                .find(|k| {
                    k.alg == alg
                        && header
                            .kid
                            .as_ref()
                            .is_none_or(|kid| k.kid.as_ref().is_none_or(|x| x == kid))
                })
                .ok_or_else(|| failed("no key of the client matches"))?;
            verify(jwt, key.decoding_key(), &expect).map_err(|_| failed("bad signature or time"))?
        }
        _ => return Err(failed("the client does not authenticate with assertions")),
    };
    if claims.get("sub").and_then(serde_json::Value::as_str) != Some(client_id.as_str()) {
        return Err(failed("sub is not the client"));
    }
    let iss = issuer(state, parts).ok_or_else(|| failed("no issuer for this host"))?;
    let endpoint = format!("{iss}{}", parts.uri.path());
    let audience_ok = |v: &serde_json::Value| {
        v.as_str()
            .is_some_and(|a| a == iss || a == endpoint || a == format!("{iss}/api/oidc/token"))
    };
    let aud_ok = match claims.get("aud") {
        Some(serde_json::Value::Array(list)) => list.iter().any(audience_ok),
        Some(one) => audience_ok(one),
        None => false,
    };
    if !aud_ok {
        return Err(failed("aud does not name this provider"));
    }
    let jti = claims
        .get("jti")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| failed("no jti"))?;
    let exp = claims
        .get("exp")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(now);
    let fresh = rt
        .store
        .insert_new(
            portcullis_oidc::store::RecordKind::Assertion,
            &format!("{client_id}:{jti}"),
            b"",
            exp.max(now + 1),
            now,
        )
        .await
        .map_err(|e| store_err(&e))?;
    if !fresh {
        return Err(failed("the assertion was used before"));
    }
    Ok(client)
}
