//! The token endpoint (RFC 6749 §3.2, §4.1.3, §4.4, §6) and client authentication: codes with
//! PKCE and single use (a replay revokes every token issued from the code), refresh tokens that
//! rotate on every use (a replay revokes the whole family), client credentials
//! (docs/reference/oidc-provider.md §2.7).

use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::response::Response;
use http::StatusCode;
use http::header::AUTHORIZATION;
use portcullis_oidc::claims::{IdTokenInput, at_hash, policy_claims};
use portcullis_oidc::client::GrantType;
use portcullis_oidc::opaque::TokenKind;
use portcullis_oidc::pkce::{self, PkceFailure};
use portcullis_oidc::scope::Scopes;
use portcullis_oidc::store::{Consumed, RecordKind};
use portcullis_oidc::{ErrorCode, OAuthError};
use serde_json::{Value, json};

pub(super) use super::authn::{Refusal, authenticate_client, refusal_response};
use super::records::{GrantRecord, decode, encode};
use super::{OidcRuntime, issuer, no_store_json, oauth_error, random32, runtime, single, uuid_v4};
use crate::config::OidcClient;
use crate::state::AppState;

fn err(code: ErrorCode, description: impl Into<String>) -> OAuthError {
    OAuthError::new(code, description)
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
        return super::app_password::app_password_grant(state, rt, parts, pairs, iss).await;
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
        .await?
        .ok_or_else(|| invalid_grant("The user of this code no longer exists."))?;
    issue(rt, client, &grant, &record.family, now, Some(profile)).await
}

/// The user's current profile (the users may have changed since the login); `None` when the
/// user is gone. When the directory cannot say, the request is refused and nothing is revoked.
async fn user_profile(
    state: &AppState,
    rt: &OidcRuntime,
    grant: &GrantRecord,
) -> Result<Option<portcullis_oidc::claims::UserProfile>, Refusal> {
    let Some(username) = grant.username.as_deref() else {
        return Ok(None);
    };
    match state.user_named(username).await {
        Ok(user) => Ok(user.map(|u| super::profile_of(rt, &u))),
        Err(e) => {
            tracing::error!(error = %e, "the user's profile cannot be read: no token issued");
            Err(err(
                ErrorCode::TemporarilyUnavailable,
                "The user directory is unavailable; retry later.",
            )
            .into())
        }
    }
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
    let Some(profile) = user_profile(state, rt, &grant).await? else {
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
