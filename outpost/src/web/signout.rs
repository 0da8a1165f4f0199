//! Sign-out (docs/reference/outpost.md §4.5) and OIDC back-channel logout (§17).

use axum::body::Body;
use axum::response::Response;
use http::StatusCode;
use http::header::CACHE_CONTROL;
use http::request::Parts;
use serde_json::Value;

use super::Ctx;
use super::check::Checked;
use super::pages::{found, text, with_cookies};

/// The back-channel logout event (OpenID Connect Back-Channel Logout 1.0 §2.4).
const LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// The largest logout request read.
const MAX_LOGOUT_BODY: usize = 16 * 1024;

/// End every session of the user (on every replica: the store is shared) and send the browser
/// to the provider's end-session endpoint with the token as `id_token_hint`. Without a session:
/// clear the cookie and go to the external host.
pub(crate) async fn sign_out(ctx: &Ctx, checked: Checked) -> Response {
    let app = &ctx.app;
    let mut cookies = checked.set_cookies;
    cookies.push(app.cookie.clear());
    let Some(data) = checked.auth.filter(|_| !checked.by_header) else {
        return with_cookies(found(&app.config.external()), &cookies);
    };
    let sub = &data.claims.sub;
    // Every provider of the same issuer shares the user's subject.
    let mut ended = 0;
    for other in &ctx.providers.list {
        if other.config.issuer == app.config.issuer {
            match ctx.state.store().delete_sub(&other.config.name, sub).await {
                Ok(n) => ended += n,
                Err(e) => {
                    tracing::error!(provider = %other.config.name, reason = %e, "sign-out could not end the sessions");
                    return super::store_down(app, &super::check::StoreDown(e.to_string()));
                }
            }
            other.header_cache.forget_sub(sub);
        }
    }
    tracing::info!(provider = %app.config.name, sub = %sub, sessions = ended, "sign-out");
    let hint = data.id_token.as_deref().unwrap_or(&data.raw_token);
    match &ctx.discovered.end_session {
        Some(end) => {
            let mut url = match url::Url::parse(end) {
                Ok(u) => u,
                Err(_) => return with_cookies(found(&app.config.external()), &cookies),
            };
            url.query_pairs_mut().append_pair("id_token_hint", hint);
            with_cookies(found(url.as_str()), &cookies)
        }
        None => with_cookies(found(&app.config.external()), &cookies),
    }
}

/// `POST /outpost.goauthentik.io/backchannel-logout`: a `logout_token` from the provider ends
/// the sessions of its `sid` (or of its `sub`). The token is verified like any other (signature,
/// issuer, audience = this client) and must carry the logout event and no `nonce`.
pub(crate) async fn backchannel(ctx: &Ctx, parts: &Parts, body: Body) -> Response {
    let app = &ctx.app;
    let refuse = |reason: &str| {
        tracing::info!(provider = %app.config.name, reason, "back-channel logout refused");
        let mut r = text(StatusCode::BAD_REQUEST, "invalid logout request\n");
        r.headers_mut()
            .insert(CACHE_CONTROL, http::HeaderValue::from_static("no-store"));
        r
    };
    if parts.method != http::Method::POST {
        return text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    }
    let Ok(bytes) = axum::body::to_bytes(body, MAX_LOGOUT_BODY).await else {
        return refuse("the body is too large or unreadable");
    };
    let tokens: Vec<String> = form_urlencoded::parse(&bytes)
        .filter(|(k, _)| k == "logout_token")
        .map(|(_, v)| v.into_owned())
        .collect();
    let [token] = tokens.as_slice() else {
        return refuse("exactly one logout_token is required");
    };
    let audience = [app.config.client_id.as_str()];
    let claims = match app.verify(token, &audience, ctx.now).await {
        Ok(c) => c,
        Err(e) => return refuse(&e.to_string()),
    };
    let has_event = claims
        .get("events")
        .and_then(Value::as_object)
        .is_some_and(|events| events.get(LOGOUT_EVENT).is_some_and(Value::is_object));
    if !has_event {
        return refuse("no back-channel logout event");
    }
    if claims.contains_key("nonce") {
        return refuse("a logout token carries no nonce");
    }
    let text_claim = |name: &str| {
        claims
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let (sid, sub) = (text_claim("sid"), text_claim("sub"));
    let store = ctx.state.store();
    let ended = match (&sid, &sub) {
        (Some(sid), _) => store.delete_sid(&app.config.name, sid).await,
        (None, Some(sub)) => {
            app.header_cache.forget_sub(sub);
            store.delete_sub(&app.config.name, sub).await
        }
        (None, None) => return refuse("neither sid nor sub"),
    };
    match ended {
        Ok(n) => {
            tracing::info!(provider = %app.config.name, sessions = n, "back-channel logout");
            let mut r = super::pages::empty(StatusCode::OK);
            r.headers_mut()
                .insert(CACHE_CONTROL, http::HeaderValue::from_static("no-store"));
            r
        }
        Err(e) => super::store_down(app, &super::check::StoreDown(e.to_string())),
    }
}
