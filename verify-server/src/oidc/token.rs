//! The token endpoint (RFC 6749 §3.2, §4.1.3, §4.4, §6) and client authentication: codes with
//! PKCE and single use (a replay revokes every token issued from the code), refresh tokens that
//! rotate on every use (a replay revokes the whole family), client credentials
//! (docs/reference/oidc-provider.md §2.7).

use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::response::Response;
use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use http::{HeaderValue, StatusCode};
use portcullis_oidc::claims::{IdTokenInput, at_hash, policy_claims};
use portcullis_oidc::client::{AuthMethod, GrantType};
use portcullis_oidc::client_auth::presented_client;
use portcullis_oidc::opaque::TokenKind;
use portcullis_oidc::pkce::{self, PkceFailure};
use portcullis_oidc::scope::Scopes;
use portcullis_oidc::store::{Consumed, RecordKind};
use portcullis_oidc::{ErrorCode, OAuthError};
use serde_json::{Value, json};

use super::records::{GrantRecord, decode, encode};
use super::{OidcRuntime, issuer, no_store_json, oauth_error, random32, runtime, single, uuid_v4};
use crate::config::{ClientSecret, OidcClient};
use crate::state::AppState;

fn err(code: ErrorCode, description: impl Into<String>) -> OAuthError {
    OAuthError::new(code, description)
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

/// Marks a device-grant answer that is part of polling (`authorization_pending`, `slow_down`).
#[derive(Debug, Clone, Copy)]
struct Polling;

/// `POST /api/oidc/token`. Failed requests count toward the endpoint's rate limit.
pub(super) async fn token(State(state): State<AppState>, request: Request) -> Response {
    let Some(rt) = runtime(&state).cloned() else {
        return oauth_error(
            "token",
            &err(
                ErrorCode::InvalidRequest,
                "The OpenID Connect provider is not configured.",
            ),
        );
    };
    let ip = super::client_addr(&state, &request);
    let now = state.now();
    if let Some(retry) = rt.limits.token.limited(ip, now) {
        return super::too_many_requests("token", retry);
    }
    let response = token_inner(&state, &rt, request).await;
    // Failed requests count; server errors and a device's polls are not the client's failures.
    if response.status() != StatusCode::OK
        && !response.status().is_server_error()
        && response.extensions().get::<Polling>().is_none()
    {
        rt.limits.token.count(ip, now);
    }
    response
}

async fn token_inner(state: &AppState, rt: &OidcRuntime, request: Request) -> Response {
    let (parts, pairs) = match super::form_body(request).await {
        Ok(v) => v,
        Err(e) => return oauth_error("token", &e),
    };
    let Some(iss) = issuer(state, &parts) else {
        return oauth_error(
            "token",
            &err(
                ErrorCode::InvalidRequest,
                "No session cookie domain matches this host.",
            ),
        );
    };
    match grant(state, rt, &parts, &pairs, &iss).await {
        Ok(body) => {
            state.0.metrics.oidc("token", "success");
            no_store_json(StatusCode::OK, &body)
        }
        Err(r) => {
            state.0.metrics.oidc("token", r.error.code.as_str());
            let mut response = refusal_response("token", &r);
            // A device polling while the user decides is not failing (RFC 8628 §3.5).
            if matches!(
                r.error.code,
                ErrorCode::AuthorizationPending | ErrorCode::SlowDown
            ) {
                response.extensions_mut().insert(Polling);
            }
            response
        }
    }
}

async fn grant(
    state: &AppState,
    rt: &OidcRuntime,
    parts: &Parts,
    pairs: &[(String, String)],
    iss: &str,
) -> Result<Value, Refusal> {
    let grant_type = single(pairs, "grant_type")?.ok_or_else(|| {
        err(
            ErrorCode::InvalidRequest,
            "The 'grant_type' parameter is missing.",
        )
    })?;
    let grant = GrantType::parse(grant_type).ok_or_else(|| {
        err(
            ErrorCode::UnsupportedGrantType,
            format!("The grant type '{grant_type}' is not supported."),
        )
    })?;
    // authentik's outpost turns Basic credentials into tokens with the client-credentials grant,
    // the user's name and an app password, and the client id without its secret.
    if grant == GrantType::ClientCredentials
        && single(pairs, "username")?.is_some()
        && parts.headers.get(AUTHORIZATION).is_none()
        && single(pairs, "client_secret")?.is_none()
    {
        return app_password_grant(state, rt, parts, pairs, iss).await;
    }
    let client = authenticate_client(state, rt, parts, pairs, true).await?;
    if !client.client.allows_grant(grant) {
        return Err(err(
            ErrorCode::UnauthorizedClient,
            format!("The OAuth 2.0 Client is not allowed to use the grant type '{grant_type}'."),
        )
        .into());
    }
    let now = state.now();
    match grant {
        GrantType::AuthorizationCode => {
            authorization_code(state, rt, &client, pairs, iss, now).await
        }
        GrantType::RefreshToken => refresh(state, rt, &client, pairs, iss, now).await,
        GrantType::ClientCredentials => client_credentials(rt, &client, pairs, iss, now).await,
        GrantType::DeviceCode => super::device::grant(state, rt, &client, pairs, now).await,
        _ => Err(err(
            ErrorCode::UnsupportedGrantType,
            "The grant type is not supported.",
        )
        .into()),
    }
}

fn store_err(e: &portcullis_oidc::OidcError) -> Refusal {
    tracing::error!(error = %e, "OpenID Connect store failed: token request refused");
    err(
        ErrorCode::ServerError,
        "The authorization server encountered an unexpected condition.",
    )
    .into()
}

async fn authorization_code(
    state: &AppState,
    rt: &OidcRuntime,
    client: &OidcClient,
    pairs: &[(String, String)],
    iss: &str,
    now: u64,
) -> Result<Value, Refusal> {
    let invalid_grant = |d: &str| -> Refusal { err(ErrorCode::InvalidGrant, d).into() };
    let code = single(pairs, "code")?.ok_or_else(|| {
        err(
            ErrorCode::InvalidRequest,
            "The 'code' parameter is missing.",
        )
    })?;
    let Some((TokenKind::AuthorizationCode, key)) = rt.token_key.verify(code) else {
        return Err(invalid_grant(
            "The provided authorization grant is invalid, expired, revoked, or was issued to another client.",
        ));
    };
    let record = match rt
        .store
        .consume(RecordKind::Code, &key, now)
        .await
        .map_err(|e| store_err(&e))?
    {
        Consumed::Fresh(r) => r,
        Consumed::Replayed(r) => {
            // RFC 6749 §4.1.2: a code used twice revokes what it was exchanged for.
            rt.store
                .revoke_family(&r.family)
                .await
                .map_err(|e| store_err(&e))?;
            tracing::warn!(client = %client.client.id, "authorization code replayed: every token issued from it is revoked");
            return Err(invalid_grant(
                "The authorization code has already been used.",
            ));
        }
        Consumed::Missing => {
            return Err(invalid_grant(
                "The provided authorization grant is invalid, expired, revoked, or was issued to another client.",
            ));
        }
    };
    let grant: GrantRecord = decode(&record.value).map_err(|e| store_err(&e))?;
    if grant.client_id != client.client.id {
        return Err(invalid_grant(
            "The OAuth 2.0 Client ID from this request does not match the one from the authorize request.",
        ));
    }
    if grant.issuer != iss {
        return Err(invalid_grant("The code was issued at another issuer."));
    }
    let given = single(pairs, "redirect_uri")?;
    if (grant.redirect_uri_given || given.is_some()) && given != grant.redirect_uri.as_deref() {
        return Err(invalid_grant(
            "The 'redirect_uri' from this request does not match the one from the authorize request.",
        ));
    }
    match pkce::verify(grant.challenge.as_ref(), single(pairs, "code_verifier")?) {
        Ok(()) => {}
        Err(PkceFailure::Malformed) => {
            return Err(err(
                ErrorCode::InvalidRequest,
                "The PKCE code verifier must be 43 to 128 characters of [A-Za-z0-9-._~].",
            )
            .into());
        }
        Err(PkceFailure::Missing) => {
            return Err(invalid_grant("The PKCE code verifier must be provided."));
        }
        Err(PkceFailure::Unexpected) => {
            return Err(invalid_grant(
                "A PKCE code verifier was sent for a code issued without a challenge.",
            ));
        }
        Err(PkceFailure::Mismatch) => {
            return Err(invalid_grant(
                "The PKCE code challenge did not match the code verifier.",
            ));
        }
    }
    let profile = user_profile(state, rt, &grant)
        .ok_or_else(|| invalid_grant("The user of this code no longer exists."))?;
    issue(rt, client, &grant, &record.family, now, Some(profile)).await
}

/// The user's current profile (the users file may have changed since the login).
fn user_profile(
    state: &AppState,
    rt: &OidcRuntime,
    grant: &GrantRecord,
) -> Option<portcullis_oidc::claims::UserProfile> {
    let user = state.users().get(grant.username.as_deref()?)?;
    Some(super::profile_of(rt, &user))
}

async fn refresh(
    state: &AppState,
    rt: &OidcRuntime,
    client: &OidcClient,
    pairs: &[(String, String)],
    iss: &str,
    now: u64,
) -> Result<Value, Refusal> {
    let invalid_grant = |d: &str| -> Refusal { err(ErrorCode::InvalidGrant, d).into() };
    let token = single(pairs, "refresh_token")?.ok_or_else(|| {
        err(
            ErrorCode::InvalidRequest,
            "The 'refresh_token' parameter is missing.",
        )
    })?;
    let Some((TokenKind::RefreshToken, key)) = rt.token_key.verify(token) else {
        return Err(invalid_grant(
            "The refresh token is malformed or not valid.",
        ));
    };
    let replayed = |family: String| async move {
        // RFC 6819 §5.2.2.3: an old refresh token presented again means one of two parties
        // holds a stolen copy; revoke the family.
        rt.store
            .revoke_family(&family)
            .await
            .map_err(|e| store_err(&e))?;
        tracing::warn!(client = %client.client.id, "refresh token replayed: the whole token family is revoked");
        Err::<Value, Refusal>(invalid_grant("The refresh token has been used or revoked."))
    };
    // Read and check first, so that a refused request (a widened scope) does not use the token up.
    let record = match rt
        .store
        .get(RecordKind::RefreshToken, &key, now)
        .await
        .map_err(|e| store_err(&e))?
    {
        Some(r) if r.active => r,
        Some(r) => return replayed(r.family).await,
        None => {
            return Err(invalid_grant(
                "The refresh token is not valid or has expired.",
            ));
        }
    };
    let mut grant: GrantRecord = decode(&record.value).map_err(|e| store_err(&e))?;
    if grant.client_id != client.client.id {
        return Err(invalid_grant(
            "The OAuth 2.0 Client ID from this request does not match the ID during the initial token issuance.",
        ));
    }
    if grant.issuer != iss {
        return Err(invalid_grant(
            "The refresh token was issued at another issuer.",
        ));
    }
    if let Some(scope) = single(pairs, "scope")? {
        let asked = Scopes::parse(scope)
            .ok_or_else(|| err(ErrorCode::InvalidScope, "The scope is malformed."))?;
        if let Some(s) = asked.first_outside(&grant.scopes) {
            return Err(err(
                ErrorCode::InvalidScope,
                format!(
                    "The requested scope '{s}' was not originally granted by the resource owner."
                ),
            )
            .into());
        }
        // The refresh token itself needs offline access to be reissued: keep the name the
        // grant used (`offline_access`, or Authelia's `offline`).
        let offline = if grant.scopes.contains("offline_access") {
            "offline_access"
        } else {
            "offline"
        };
        grant.scopes = if asked.wants_offline() {
            asked
        } else {
            Scopes::from_list(asked.iter().chain([offline]))
        };
    }
    if let Some(s) = grant.scopes.first_outside(&client.client.scopes) {
        return Err(err(
            ErrorCode::InvalidScope,
            format!("The OAuth 2.0 Client is no longer allowed to request scope '{s}'."),
        )
        .into());
    }
    // The user must still exist.
    let Some(profile) = user_profile(state, rt, &grant) else {
        rt.store
            .revoke_family(&record.family)
            .await
            .map_err(|e| store_err(&e))?;
        return Err(invalid_grant(
            "The user of this refresh token no longer exists.",
        ));
    };
    // Rotation: of concurrent uses, one wins; the others are replays.
    match rt
        .store
        .consume(RecordKind::RefreshToken, &key, now)
        .await
        .map_err(|e| store_err(&e))?
    {
        Consumed::Fresh(_) => {}
        Consumed::Replayed(r) => return replayed(r.family).await,
        Consumed::Missing => {
            return Err(invalid_grant(
                "The refresh token is not valid or has expired.",
            ));
        }
    }
    if let Some(at) = &grant.access_token_key {
        rt.store
            .delete(RecordKind::AccessToken, at)
            .await
            .map_err(|e| store_err(&e))?;
    }
    issue(rt, client, &grant, &record.family, now, Some(profile)).await
}

/// The client-credentials grant for a user, with an app password (never the user's password;
/// authentik CVE-2024-52287 is why the scopes are the client's own and nothing more). App passwords
/// are one factor: a client whose policy wants two is refused. Failures count for regulation.
async fn app_password_grant(
    state: &AppState,
    rt: &OidcRuntime,
    parts: &Parts,
    pairs: &[(String, String)],
    iss: &str,
) -> Result<Value, Refusal> {
    let invalid_grant = |d: &str| -> Refusal { err(ErrorCode::InvalidGrant, d).into() };
    let client_id = single(pairs, "client_id")?.ok_or_else(|| {
        err(
            ErrorCode::InvalidClient,
            "The 'client_id' parameter is missing.",
        )
    })?;
    let client = rt.client(client_id).ok_or_else(|| err(ErrorCode::InvalidClient, "Client authentication failed (e.g., unknown client, no client authentication included, or unsupported authentication method)."))?;
    if !client.client.allows_grant(GrantType::ClientCredentials) {
        return Err(err(
            ErrorCode::UnauthorizedClient,
            "The OAuth 2.0 Client is not allowed to use the grant type 'client_credentials'.",
        )
        .into());
    }
    let login = single(pairs, "username")?.unwrap_or("");
    let password = single(pairs, "password")?.unwrap_or("");
    let now = state.now();
    let ip = super::client_addr_of_parts(state, parts);
    let regulator = &state.0.regulator;
    if regulator.is_banned(None, Some(ip), now).await {
        return Err(invalid_grant(
            "The resource owner credentials are not valid.",
        ));
    }
    let users = state.users();
    let Some(user) = users.lookup(login) else {
        regulator.record("", Some(ip), false, now).await;
        return Err(invalid_grant(
            "The resource owner credentials are not valid.",
        ));
    };
    if regulator
        .is_banned(Some(&user.username), Some(ip), now)
        .await
    {
        return Err(invalid_grant(
            "The resource owner credentials are not valid.",
        ));
    }
    let records = match state.0.app_passwords.get() {
        Some(store) if portcullis_auth::app_passwords::looks_like(password) => {
            store.list(&user.username).await.map_err(|e| {
                tracing::error!(error = %e, "app passwords unavailable: grant refused");
                Refusal::from(err(
                    ErrorCode::ServerError,
                    "The authorization server encountered an unexpected condition.",
                ))
            })?
        }
        _ => Vec::new(),
    };
    let valid = portcullis_auth::app_passwords::matches(&records, password, now);
    regulator.record(&user.username, Some(ip), valid, now).await;
    if !valid {
        tracing::info!(user = %user.username, client = %client.client.id, "client credentials with an app password refused: no such app password");
        return Err(invalid_grant(
            "The resource owner credentials are not valid.",
        ));
    }
    match client
        .policy
        .required(&user.username, &user.groups, Some(ip))
    {
        crate::config::PolicyLevel::Level(portcullis_core::AuthLevel::OneFactor) => {}
        _ => {
            return Err(err(
                ErrorCode::AccessDenied,
                "The user was denied access to this client (app passwords are one factor).",
            )
            .into());
        }
    }
    let scopes = match single(pairs, "scope")? {
        None => client.client.scopes.clone(),
        Some(s) => Scopes::parse(s)
            .ok_or_else(|| err(ErrorCode::InvalidScope, "The scope is malformed."))?,
    };
    if let Some(s) = scopes.first_outside(&client.client.scopes) {
        return Err(err(
            ErrorCode::InvalidScope,
            format!("The OAuth 2.0 Client is not allowed to request scope '{s}'."),
        )
        .into());
    }
    let scopes = scopes.without("offline_access").without("offline");
    let subject = rt
        .store
        .subject(&user.username, "", &uuid_v4())
        .await
        .map_err(|e| store_err(&e))?;
    let grant = GrantRecord {
        client_id: client.client.id.clone(),
        username: Some(user.username.clone()),
        subject,
        scopes,
        audience: Vec::new(),
        issuer: iss.to_owned(),
        auth_time: now,
        amr: vec!["pwd".into()],
        nonce: None,
        redirect_uri: None,
        redirect_uri_given: false,
        challenge: None,
        issued_at: now,
        expires_at: now,
        access_token_key: None,
    };
    tracing::info!(user = %user.username, client = %client.client.id, "client credentials with an app password");
    issue(
        rt,
        &client,
        &grant,
        &uuid_v4(),
        now,
        Some(super::profile_of(rt, &user)),
    )
    .await
}

async fn client_credentials(
    rt: &OidcRuntime,
    client: &OidcClient,
    pairs: &[(String, String)],
    iss: &str,
    now: u64,
) -> Result<Value, Refusal> {
    let scopes = match single(pairs, "scope")? {
        None => Scopes::default(),
        Some(s) => Scopes::parse(s)
            .ok_or_else(|| err(ErrorCode::InvalidScope, "The scope is malformed."))?,
    };
    for s in ["openid", "offline", "offline_access"] {
        if scopes.contains(s) {
            return Err(err(
                ErrorCode::InvalidScope,
                format!("The scope '{s}' is not allowed with the client_credentials grant."),
            )
            .into());
        }
    }
    if let Some(s) = scopes.first_outside(&client.client.scopes) {
        return Err(err(
            ErrorCode::InvalidScope,
            format!("The OAuth 2.0 Client is not allowed to request scope '{s}'."),
        )
        .into());
    }
    let audience: Vec<String> = single(pairs, "audience")?.map_or_else(Vec::new, |a| {
        a.split(' ')
            .filter(|x| !x.is_empty())
            .map(str::to_owned)
            .collect()
    });
    if let Some(a) = audience
        .iter()
        .find(|a| !client.client.audience.contains(a))
    {
        return Err(err(
            ErrorCode::InvalidRequest,
            format!("Requested audience '{a}' has not been whitelisted by the OAuth 2.0 Client."),
        )
        .into());
    }
    let grant = GrantRecord {
        client_id: client.client.id.clone(),
        username: None,
        subject: client.client.id.clone(),
        scopes,
        audience,
        issuer: iss.to_owned(),
        auth_time: now,
        amr: Vec::new(),
        nonce: None,
        redirect_uri: None,
        redirect_uri_given: false,
        challenge: None,
        issued_at: now,
        expires_at: now,
        access_token_key: None,
    };
    issue(rt, client, &grant, &uuid_v4(), now, None).await
}

/// Mint the access token, and for a user (`profile`) a refresh token when offline access was
/// granted and an ID token when `openid` was.
pub(super) async fn issue(
    rt: &OidcRuntime,
    client: &OidcClient,
    grant: &GrantRecord,
    family: &str,
    now: u64,
    profile: Option<portcullis_oidc::claims::UserProfile>,
) -> Result<Value, Refusal> {
    let user_grant = profile.is_some();
    let lifespans = &client.lifespans;
    let minted = |kind| {
        rt.token_key.mint(kind, random32()).ok_or_else(|| {
            store_err(&portcullis_oidc::OidcError::Key(
                "could not sign a token".into(),
            ))
        })
    };
    let mut at = grant.clone();
    at.issued_at = now;
    at.expires_at = now + lifespans.access_token;
    at.nonce = None;
    at.challenge = None;
    at.access_token_key = None;
    let (access_token, at_key) = match client.client.access_token_alg {
        None => minted(TokenKind::AccessToken)?,
        // RFC 9068: a JWT whose `jti` is the store key, so revocation still holds.
        Some(alg) => {
            let jti = uuid_v4();
            let mut claims = serde_json::Map::new();
            claims.insert("iss".into(), json!(grant.issuer));
            claims.insert("sub".into(), json!(grant.subject));
            let mut aud = vec![client.client.id.clone()];
            aud.extend(grant.audience.iter().cloned());
            claims.insert("aud".into(), json!(aud));
            claims.insert("exp".into(), json!(at.expires_at));
            claims.insert("iat".into(), json!(now));
            claims.insert("nbf".into(), json!(now));
            claims.insert("jti".into(), json!(jti));
            claims.insert("client_id".into(), json!(client.client.id));
            claims.insert("scope".into(), json!(grant.scopes.to_param()));
            claims.insert("scp".into(), json!(grant.scopes.iter().collect::<Vec<_>>()));
            if grant.username.is_some() {
                claims.insert("auth_time".into(), json!(grant.auth_time));
                if !grant.amr.is_empty() {
                    claims.insert("amr".into(), json!(grant.amr));
                }
            }
            if let Some(p) = &profile {
                for (k, v) in policy_claims(p, &grant.scopes, &client.client.access_token_claims) {
                    claims.entry(k).or_insert(v);
                }
            }
            let token = super::sign(
                rt,
                client,
                alg,
                client.access_token_key_id.as_deref(),
                &claims,
                Some("at+jwt"),
            )
            .map_err(|e| store_err(&e))?;
            (token, super::jwt_key(&jti))
        }
    };
    rt.store
        .insert(
            RecordKind::AccessToken,
            &at_key,
            family,
            &encode(&at).map_err(|e| store_err(&e))?,
            at.expires_at,
        )
        .await
        .map_err(|e| store_err(&e))?;
    // The user's logout reaches this family (revocation and back-channel logout).
    if let Some(username) = &grant.username {
        let until = now + lifespans.access_token.max(lifespans.refresh_token);
        rt.store
            .link_owner(username, &client.client.id, family, until)
            .await
            .map_err(|e| store_err(&e))?;
    }
    let mut body = json!({
        "access_token": access_token,
        "token_type": "bearer",
        "expires_in": lifespans.access_token,
        "scope": grant.scopes.to_param(),
    });
    if user_grant && client.client.gets_refresh_token(&grant.scopes) {
        let (refresh_token, rt_key) = minted(TokenKind::RefreshToken)?;
        let mut r = at.clone();
        r.expires_at = now + lifespans.refresh_token;
        r.access_token_key = Some(at_key.clone());
        rt.store
            .insert(
                RecordKind::RefreshToken,
                &rt_key,
                family,
                &encode(&r).map_err(|e| store_err(&e))?,
                r.expires_at,
            )
            .await
            .map_err(|e| store_err(&e))?;
        body["refresh_token"] = json!(refresh_token);
    }
    if user_grant && grant.scopes.contains("openid") {
        let jti = uuid_v4();
        let extra = match &profile {
            Some(p) if !client.client.id_token_claims.is_empty() => {
                policy_claims(p, &grant.scopes, &client.client.id_token_claims)
            }
            _ => serde_json::Map::new(),
        };
        let claims = portcullis_oidc::claims::id_token_claims(&IdTokenInput {
            issuer: &grant.issuer,
            subject: &grant.subject,
            client_id: &client.client.id,
            now,
            lifespan: lifespans.id_token,
            auth_time: grant.auth_time,
            nonce: grant.nonce.as_deref(),
            amr: &grant.amr,
            jti: &jti,
            at_hash: Some(at_hash(&access_token, client.client.id_token_alg)),
            extra,
        });
        let id_token = super::sign(
            rt,
            client,
            client.client.id_token_alg,
            client.id_token_key_id.as_deref(),
            &claims,
            None,
        )
        .map_err(|e| store_err(&e))?;
        body["id_token"] = json!(id_token);
    }
    tracing::info!(client = %client.client.id, user = grant.username.as_deref().unwrap_or("-"), "tokens issued");
    Ok(body)
}
