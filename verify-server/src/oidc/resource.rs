//! UserInfo (OpenID Connect Core §5.3), introspection (RFC 7662) and revocation (RFC 7009)
//! (docs/reference/oidc-provider.md §2.8).

use axum::extract::{Request, State};
use axum::response::Response;
use http::HeaderValue;
use http::StatusCode;
use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use portcullis_oidc::claims::{released_claims, user_claim};
use portcullis_oidc::opaque::TokenKind;
use portcullis_oidc::store::{Record, RecordKind};
use portcullis_oidc::{ErrorCode, OAuthError};
use serde_json::{Value, json};

use super::records::{GrantRecord, decode};
use super::token::{authenticate_client, refusal_response};
use super::{OidcRuntime, issuer, no_store_json, oauth_error, runtime, single};
use crate::state::AppState;

/// The live record of a presented token: an opaque token with the right HMAC, or a JWT access
/// token this provider signed; present, active and not expired in the store.
async fn live_token(
    rt: &OidcRuntime,
    token: &str,
    now: u64,
) -> Result<Option<(TokenKind, String, Record, GrantRecord)>, portcullis_oidc::OidcError> {
    let (kind, record_kind, key) = if let Some((kind, key)) = rt.token_key.verify(token) {
        match kind {
            TokenKind::AccessToken => (kind, RecordKind::AccessToken, key),
            TokenKind::RefreshToken => (kind, RecordKind::RefreshToken, key),
            TokenKind::AuthorizationCode | TokenKind::DeviceCode => return Ok(None),
        }
    } else if let Some(key) = super::verify_access_jwt(rt, token, None, now) {
        (TokenKind::AccessToken, RecordKind::AccessToken, key)
    } else {
        return Ok(None);
    };
    match rt.store.get(record_kind, &key, now).await? {
        Some(record) if record.active => {
            let grant: GrantRecord = decode(&record.value)?;
            Ok(Some((kind, key, record, grant)))
        }
        _ => Ok(None),
    }
}

/// A signed answer: the JWT as the body, with its media type, never cached.
fn jwt_response(media_type: &'static str, jwt: String) -> Response {
    use axum::response::IntoResponse;
    let mut r = (StatusCode::OK, jwt).into_response();
    let h = r.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(media_type),
    );
    h.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    r
}

fn bearer_error(status: StatusCode, code: ErrorCode, description: &str) -> Response {
    let error = OAuthError::new(code, description);
    let mut r = oauth_error("userinfo", &error);
    *r.status_mut() = status;
    let mut challenge = format!(
        "Bearer error=\"{}\", error_description=\"{}\"",
        code.as_str(),
        description.replace('"', "'")
    );
    if code == ErrorCode::InsufficientScope {
        challenge.push_str(", scope=\"openid\"");
    }
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        r.headers_mut().insert(WWW_AUTHENTICATE, v);
    }
    r
}

/// `GET|POST /api/oidc/userinfo`.
async fn userinfo_unlimited(State(state): State<AppState>, request: Request) -> Response {
    let Some(rt) = runtime(&state).cloned() else {
        return bearer_error(
            StatusCode::UNAUTHORIZED,
            ErrorCode::InvalidToken,
            "The OpenID Connect provider is not configured.",
        );
    };
    let (parts, body) = request.into_parts();
    let header_token = parts
        .headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim().to_owned());
    // RFC 6750 §2.2: the token may come in a form body instead.
    let body_token = if parts.method == http::Method::POST {
        let bytes = axum::body::to_bytes(body, 64 * 1024)
            .await
            .unwrap_or_default();
        let pairs: Vec<(String, String)> = form_urlencoded::parse(&bytes).into_owned().collect();
        single(&pairs, "access_token")
            .ok()
            .flatten()
            .map(str::to_owned)
    } else {
        None
    };
    let token = match (header_token, body_token) {
        (Some(_), Some(_)) => {
            return bearer_error(
                StatusCode::BAD_REQUEST,
                ErrorCode::InvalidRequest,
                "The access token was sent more than one way.",
            );
        }
        (Some(t), None) | (None, Some(t)) => t,
        (None, None) => {
            return bearer_error(
                StatusCode::UNAUTHORIZED,
                ErrorCode::InvalidToken,
                "The request has no access token.",
            );
        }
    };
    let now = state.now();
    let found = match live_token(&rt, &token, now).await {
        Ok(f) => f,
        Err(e) => return super::store_failure("userinfo", &e),
    };
    let Some((kind, _, _, grant)) = found else {
        state.0.metrics.oidc("userinfo", "invalid_token");
        return bearer_error(
            StatusCode::UNAUTHORIZED,
            ErrorCode::InvalidToken,
            "The access token is invalid, expired or revoked.",
        );
    };
    if kind != TokenKind::AccessToken {
        return bearer_error(
            StatusCode::UNAUTHORIZED,
            ErrorCode::InvalidToken,
            "Only OpenID Connect 1.0 Access Tokens are allowed.",
        );
    }
    if issuer(&state, &parts).as_deref() != Some(grant.issuer.as_str()) {
        return bearer_error(
            StatusCode::UNAUTHORIZED,
            ErrorCode::InvalidToken,
            "The access token was issued at another issuer.",
        );
    }
    if !grant.scopes.contains("openid") || grant.username.is_none() {
        return bearer_error(
            StatusCode::FORBIDDEN,
            ErrorCode::InsufficientScope,
            "The access token was not granted the 'openid' scope.",
        );
    }
    let Some(client) = rt.client(&grant.client_id) else {
        return bearer_error(
            StatusCode::UNAUTHORIZED,
            ErrorCode::InvalidToken,
            "The client of this access token no longer exists.",
        );
    };
    let found = match grant.username.as_deref() {
        Some(username) => state.user_named(username).await,
        None => Ok(None),
    };
    let user = match found {
        Ok(Some(user)) => user,
        Err(e) => {
            tracing::error!(error = %e, "userinfo refused: the user directory is unavailable");
            return bearer_error(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::TemporarilyUnavailable,
                "The user directory is unavailable; retry later.",
            );
        }
        Ok(None) => {
            return bearer_error(
                StatusCode::UNAUTHORIZED,
                ErrorCode::InvalidToken,
                "The user of this access token no longer exists.",
            );
        }
    };
    let profile = super::profile_of(&rt, &user);
    let mut claims = released_claims(&profile, &grant.scopes);
    for (scope, names) in &client.custom_scope_claims {
        if grant.scopes.contains(scope) {
            for name in names {
                if let Some(v) = user_claim(&profile, name) {
                    claims.insert(name.clone(), v);
                }
            }
        }
    }
    claims.insert("sub".into(), json!(grant.subject));
    claims.insert("aud".into(), json!([grant.client_id]));
    claims.insert("iss".into(), json!(grant.issuer));
    state.0.metrics.oidc("userinfo", "success");
    // `userinfo_signed_response_alg`: the claims as a JWT for this client.
    if let Some((alg, kid)) = &client.userinfo_signing {
        claims.insert("jti".into(), json!(super::uuid_v4()));
        claims.insert("iat".into(), json!(now));
        return match super::sign(
            &rt,
            &client,
            *alg,
            kid.as_deref(),
            &Value::Object(claims),
            None,
        ) {
            Ok(jwt) => jwt_response("application/jwt", jwt),
            Err(e) => super::store_failure("userinfo", &e),
        };
    }
    no_store_json(StatusCode::OK, &Value::Object(claims))
}

/// `POST /api/oidc/introspection`: only for tokens issued to the calling client or naming it in
/// their audience (a client cannot probe another client's tokens).
async fn introspection_unlimited(State(state): State<AppState>, request: Request) -> Response {
    let Some(rt) = runtime(&state).cloned() else {
        return oauth_error(
            "introspection",
            &OAuthError::new(
                ErrorCode::InvalidRequest,
                "The OpenID Connect provider is not configured.",
            ),
        );
    };
    let (parts, pairs) = match super::form_body(request).await {
        Ok(v) => v,
        Err(e) => return oauth_error("introspection", &e),
    };
    let client = match authenticate_client(&state, &rt, &parts, &pairs, false).await {
        Ok(c) => c,
        Err(r) => {
            state.0.metrics.oidc("introspection", r.error.code.as_str());
            return refusal_response("introspection", &r);
        }
    };
    let token = match single(&pairs, "token") {
        Ok(Some(t)) => t,
        Ok(None) => {
            return oauth_error(
                "introspection",
                &OAuthError::new(
                    ErrorCode::InvalidRequest,
                    "The 'token' parameter is missing.",
                ),
            );
        }
        Err(e) => return oauth_error("introspection", &e),
    };
    let inactive = || match &client.introspection_signing {
        Some((alg, kid)) => {
            let claims = json!({"iss": issuer(&state, &parts), "aud": client.client.id, "iat": state.now(), "token_introspection": {"active": false}});
            match super::sign(
                &rt,
                &client,
                *alg,
                kid.as_deref(),
                &claims,
                Some("token-introspection+jwt"),
            ) {
                Ok(jwt) => jwt_response("application/token-introspection+jwt", jwt),
                Err(e) => super::store_failure("introspection", &e),
            }
        }
        None => no_store_json(StatusCode::OK, &json!({"active": false})),
    };
    let found = match live_token(&rt, token, state.now()).await {
        Ok(f) => f,
        Err(e) => return super::store_failure("introspection", &e),
    };
    let Some((kind, _, _, grant)) = found else {
        state.0.metrics.oidc("introspection", "inactive");
        return inactive();
    };
    // A token issued at another issuer (another portal URL of this server) is not this issuer's.
    if issuer(&state, &parts).as_deref() != Some(grant.issuer.as_str()) {
        tracing::info!(client = %client.client.id, "introspection of a token from another issuer: answered inactive");
        return inactive();
    }
    if grant.client_id != client.client.id && !grant.audience.contains(&client.client.id) {
        tracing::info!(client = %client.client.id, owner = %grant.client_id, "introspection of another client's token: answered inactive");
        return inactive();
    }
    let mut aud = vec![grant.client_id.clone()];
    aud.extend(grant.audience.iter().cloned());
    let mut body = json!({
        "active": true,
        "client_id": grant.client_id,
        "sub": grant.subject,
        "scope": grant.scopes.to_param(),
        "exp": grant.expires_at,
        "iat": grant.issued_at,
        "iss": grant.issuer,
        "aud": aud,
    });
    // RFC 7662 §2.2: `token_type` is the RFC 6749 §5.1 type, which only access tokens have.
    if kind == TokenKind::AccessToken {
        body["token_type"] = json!("Bearer");
    }
    if let Some(u) = &grant.username {
        body["username"] = json!(u);
    }
    state.0.metrics.oidc("introspection", "active");
    // RFC 9701: a signed answer for a client that asks for one.
    let mut response = match &client.introspection_signing {
        Some((alg, kid)) => {
            let now = state.now();
            let claims = json!({
                "iss": grant.issuer,
                "aud": client.client.id,
                "iat": now,
                "token_introspection": body,
            });
            match super::sign(
                &rt,
                &client,
                *alg,
                kid.as_deref(),
                &claims,
                Some("token-introspection+jwt"),
            ) {
                Ok(jwt) => jwt_response("application/token-introspection+jwt", jwt),
                Err(e) => return super::store_failure("introspection", &e),
            }
        }
        None => no_store_json(StatusCode::OK, &body),
    };
    response.extensions_mut().insert(ActiveToken);
    response
}

/// `POST /api/oidc/revocation`: revoking a refresh token revokes its whole family (and with it
/// the access tokens issued from it); revoking an access token ends that token.
async fn revocation_unlimited(State(state): State<AppState>, request: Request) -> Response {
    let Some(rt) = runtime(&state).cloned() else {
        return oauth_error(
            "revocation",
            &OAuthError::new(
                ErrorCode::InvalidRequest,
                "The OpenID Connect provider is not configured.",
            ),
        );
    };
    let (parts, pairs) = match super::form_body(request).await {
        Ok(v) => v,
        Err(e) => return oauth_error("revocation", &e),
    };
    let client = match authenticate_client(&state, &rt, &parts, &pairs, true).await {
        Ok(c) => c,
        Err(r) => {
            state.0.metrics.oidc("revocation", r.error.code.as_str());
            return refusal_response("revocation", &r);
        }
    };
    let token = match single(&pairs, "token") {
        Ok(Some(t)) => t,
        Ok(None) => {
            return oauth_error(
                "revocation",
                &OAuthError::new(
                    ErrorCode::InvalidRequest,
                    "The 'token' parameter is missing.",
                ),
            );
        }
        Err(e) => return oauth_error("revocation", &e),
    };
    let found = match live_token(&rt, token, state.now()).await {
        Ok(f) => f,
        Err(e) => return super::store_failure("revocation", &e),
    };
    // RFC 7009 §2.2: an invalid or unknown token is answered 200 all the same.
    if let Some((kind, key, record, grant)) = found {
        if grant.client_id == client.client.id
            && issuer(&state, &parts).as_deref() == Some(grant.issuer.as_str())
        {
            let outcome = match kind {
                TokenKind::RefreshToken => rt.store.revoke_family(&record.family).await,
                _ => rt.store.delete(RecordKind::AccessToken, &key).await,
            };
            if let Err(e) = outcome {
                return super::store_failure("revocation", &e);
            }
            tracing::info!(client = %client.client.id, "token revoked");
        } else {
            tracing::info!(client = %client.client.id, owner = %grant.client_id, "revocation of another client's token ignored");
        }
    }
    state.0.metrics.oidc("revocation", "success");
    no_store_json(StatusCode::OK, &json!({}))
}

/// Marks an introspection answer about an active token: those do not count toward the rate limit.
#[derive(Debug, Clone, Copy)]
struct ActiveToken;

/// Run `handler` under `limiter`: refused with 429 while limited; a failed answer counts (for
/// introspection, any answer but an active token).
async fn limited<F, Fut>(
    endpoint: &'static str,
    state: AppState,
    request: Request,
    pick: fn(&super::Limiters) -> &portcullis_auth::rate_limit::RateLimiter,
    handler: F,
) -> Response
where
    F: FnOnce(State<AppState>, Request) -> Fut,
    Fut: std::future::Future<Output = Response>,
{
    let Some(rt) = runtime(&state).cloned() else {
        return handler(State(state), request).await;
    };
    let limiter = pick(&rt.limits);
    let ip = super::client_addr(&state, &request);
    let now = state.now();
    if let Some(retry) = limiter.limited(ip, now) {
        return super::too_many_requests(endpoint, retry);
    }
    let response = handler(State(state), request).await;
    // Server errors are not the client's failures.
    let success = response.status().is_server_error()
        || response.status() == StatusCode::OK
            && (endpoint != "introspection"
                || response.extensions().get::<ActiveToken>().is_some());
    if !success {
        limiter.count(ip, now);
    }
    response
}

/// `GET|POST /api/oidc/userinfo`, rate limited.
pub(super) async fn userinfo(State(state): State<AppState>, request: Request) -> Response {
    limited(
        "userinfo",
        state,
        request,
        |l| &l.userinfo,
        userinfo_unlimited,
    )
    .await
}

/// `POST /api/oidc/introspection`, rate limited.
pub(super) async fn introspection(State(state): State<AppState>, request: Request) -> Response {
    limited(
        "introspection",
        state,
        request,
        |l| &l.introspection,
        introspection_unlimited,
    )
    .await
}

/// `POST /api/oidc/revocation`, rate limited.
pub(super) async fn revocation(State(state): State<AppState>, request: Request) -> Response {
    limited(
        "revocation",
        state,
        request,
        |l| &l.revocation,
        revocation_unlimited,
    )
    .await
}
