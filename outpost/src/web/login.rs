//! The browser login (docs/reference/outpost.md §4): the redirect to the provider with a signed
//! state, and the callback that redeems the code, verifies the tokens and makes the session.

use std::sync::Arc;

use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::StatusCode;
use portcullis_oidc::relying_party::{
    LoginState, authorization_url, open_state, pkce_verifier, seal_state, state_issuer,
};
use portcullis_session::SessionId;
use rand::RngCore as _;

use super::Ctx;
use super::pages::{empty, found, page, with_cookies};
use crate::claims::{Claims, SessionData};
use crate::provider::{CallError, Discovered, ProviderRuntime, TokenResponse};
use crate::routing::query_param;

/// How long a login may take between the redirect and the callback.
const STATE_LIFETIME: u64 = 600;

/// The callback URL registered at the provider.
pub(crate) fn redirect_uri(app: &ProviderRuntime) -> String {
    format!(
        "{}/outpost.goauthentik.io/callback?X-authentik-auth-callback=true",
        app.config.external()
    )
}

/// The 302 to the provider's authorization endpoint (§4.1), with `redirect` as where to land
/// afterwards (already validated, or empty). The pre-login cookie is reused when valid, else a
/// fresh one is set on the same answer, so the callback's `sid` check succeeds (§14 item 5).
pub(crate) fn start(
    ctx: &Ctx,
    cookie_id: Option<&SessionId>,
    redirect: &str,
    mut cookies: Vec<String>,
) -> Response {
    let app = &ctx.app;
    let id = match cookie_id {
        Some(id) => id.clone(),
        None => {
            let id = SessionId::generate(&mut rand::rng());
            cookies.push(app.cookie.set(&id, app.pre_login_max_age(), ctx.now));
            id
        }
    };
    let mut random = [0u8; 32];
    rand::rng().fill_bytes(&mut random);
    let login = LoginState {
        iss: state_issuer(&app.config.client_id),
        sid: id.as_str().to_owned(),
        state: URL_SAFE_NO_PAD.encode(random),
        redirect: redirect.to_owned(),
        iat: ctx.now,
        exp: ctx.now + STATE_LIFETIME,
    };
    let Ok(state) = seal_state(&app.state_key, &login) else {
        return empty(StatusCode::BAD_REQUEST);
    };
    let callback = redirect_uri(app);
    let scope = app.config.scopes.join(" ");
    let mut params = vec![
        ("client_id", app.config.client_id.as_str()),
        ("redirect_uri", callback.as_str()),
        ("response_type", "code"),
        ("state", state.as_str()),
    ];
    if !scope.is_empty() {
        params.push(("scope", scope.as_str()));
    }
    let challenge;
    if ctx.discovered.pkce {
        let Ok(verifier) = pkce_verifier(&app.state_key, &login.state) else {
            return empty(StatusCode::BAD_REQUEST);
        };
        challenge = portcullis_oidc::pkce::s256(&verifier);
        params.push(("code_challenge", challenge.as_str()));
        params.push(("code_challenge_method", "S256"));
    }
    match authorization_url(&ctx.discovered.authorization, &params) {
        Ok(url) => with_cookies(found(&url), &cookies),
        Err(e) => {
            tracing::error!(provider = %app.config.name, reason = %e, "cannot build the authorization URL");
            empty(StatusCode::BAD_REQUEST)
        }
    }
}

/// Turn a token endpoint answer into a session's data: the ID token verified (audience: this
/// client), else the access token when it is a JWT that verifies; claims UserInfo adds are
/// merged for the same `sub`. Without a configured issuer, the claims come from UserInfo alone.
pub(crate) async fn tokens_to_session(
    app: &ProviderRuntime,
    discovered: &Discovered,
    answer: &Result<TokenResponse, CallError>,
    now: u64,
) -> Option<SessionData> {
    let answer = match answer {
        Ok(a) => a,
        Err(e) => {
            tracing::info!(provider = %app.config.name, reason = %e, "the token request failed");
            return None;
        }
    };
    let audience = [app.config.client_id.as_str()];
    let access_is_jwt = !answer.access_token.is_empty()
        && portcullis_oidc::jwt::peek_header(&answer.access_token).is_some();
    let mut claims = if discovered.issuer.is_none() {
        let info = app.userinfo(discovered, &answer.access_token).await.ok()?;
        let mut claims = Claims::from_map(&info)?;
        if claims.exp == 0 {
            claims.exp = now + answer.expires_in.unwrap_or(300);
        }
        claims
    } else {
        let mut verified = None;
        if let Some(id_token) = &answer.id_token {
            match app.verify(id_token, &audience, now).await {
                Ok(map) => verified = Claims::from_map(&map),
                Err(e) => {
                    tracing::warn!(provider = %app.config.name, reason = %e, "the ID token does not verify");
                    return None;
                }
            }
        }
        if access_is_jwt {
            match app.verify(&answer.access_token, &audience, now).await {
                Ok(map) => {
                    let from_access = Claims::from_map(&map);
                    match (&verified, from_access) {
                        (None, Some(c)) => verified = Some(c),
                        (Some(id), Some(access)) if id.sub != access.sub => {
                            tracing::warn!(provider = %app.config.name, "the ID and access tokens name different subjects");
                            return None;
                        }
                        _ => {}
                    }
                }
                // An access token for another audience (a resource server) is fine when the
                // ID token verified.
                Err(e) if verified.is_none() => {
                    tracing::warn!(provider = %app.config.name, reason = %e, "the access token does not verify");
                    return None;
                }
                Err(_) => {}
            }
        }
        verified?
    };
    if discovered.userinfo.is_some()
        && discovered.issuer.is_some()
        && !answer.access_token.is_empty()
        && let Ok(info) = app.userinfo(discovered, &answer.access_token).await
        && info.get("sub").and_then(serde_json::Value::as_str) == Some(claims.sub.as_str())
    {
        claims.complete_from(&info);
    }
    let raw_token = if access_is_jwt {
        answer.access_token.clone()
    } else {
        answer.id_token.clone().unwrap_or_default()
    };
    Some(SessionData {
        claims,
        raw_token,
        id_token: answer.id_token.clone(),
        refresh_token: answer.refresh_token.clone(),
        created_at: now,
    })
}

/// The callback (§4.2): `query` is that of the request or, behind Traefik and Caddy, of fwd.
/// A stale or foreign state, or a failed redemption, restarts the login (§17) instead of a 400.
pub(crate) async fn callback(
    ctx: &Ctx,
    cookie_id: Option<&SessionId>,
    query: Option<&str>,
    cookies: Vec<String>,
) -> Response {
    let app = &ctx.app;
    if let Some(error) = query_param(query, "error") {
        tracing::info!(provider = %app.config.name, error, "the provider refused the login");
        return with_cookies(
            page(
                StatusCode::FORBIDDEN,
                "Login refused",
                "The identity provider did not let you log in to this application.",
            ),
            &cookies,
        );
    }
    let (Some(code), Some(state)) = (query_param(query, "code"), query_param(query, "state"))
    else {
        return with_cookies(start(ctx, cookie_id, "", Vec::new()), &cookies);
    };
    let opened = cookie_id.and_then(|id| {
        open_state(
            &app.state_key,
            &app.config.client_id,
            &state,
            id.as_str(),
            ctx.now,
        )
        .ok()
    });
    let Some(login) = opened else {
        tracing::info!(provider = %app.config.name, "a stale or foreign login state: the login starts again");
        return with_cookies(start(ctx, cookie_id, "", Vec::new()), &cookies);
    };
    let back = if login.redirect.is_empty() {
        app.config.external()
    } else {
        login.redirect.clone()
    };
    let verifier = if ctx.discovered.pkce {
        pkce_verifier(&app.state_key, &login.state).ok()
    } else {
        None
    };
    let answer = app
        .redeem(
            &ctx.discovered,
            &code,
            &redirect_uri(app),
            verifier.as_deref(),
        )
        .await;
    let Some(data) = tokens_to_session(app, &ctx.discovered, &answer, ctx.now).await else {
        // Redemption or verification failed: back where the user was going, which starts over.
        return with_cookies(found(&back), &cookies);
    };
    // A fresh id at login: a cookie planted before the login cannot become the session.
    let id = SessionId::generate(&mut rand::rng());
    let token_left = data.claims.exp.saturating_sub(ctx.now).max(1);
    let lifetime = match (&data.refresh_token, app.config.access_token_validity) {
        (Some(_), Some(validity)) => validity.max(token_left),
        _ => token_left,
    };
    let data = Arc::new(data);
    if let Err(e) = ctx.state.save(app, &id, &data, ctx.now + lifetime).await {
        tracing::error!(provider = %app.config.name, reason = %e, "the session could not be saved");
        return with_cookies(empty(StatusCode::BAD_REQUEST), &cookies);
    }
    tracing::info!(provider = %app.config.name, user = %data.claims.preferred_username, sub = %data.claims.sub, "login");
    let mut cookies = cookies;
    cookies.push(app.cookie.set(&id, Some(lifetime), ctx.now));
    with_cookies(found(&back), &cookies)
}
