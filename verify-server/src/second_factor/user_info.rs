//! The user's methods and the portal's configuration (docs/reference/second-factor.md §1.9):
//! `GET`/`POST /api/user/info`, `POST /api/user/info/2fa_method`, `GET /api/configuration`.

use axum::extract::{Request, State};
use axum::response::Response;
use http::StatusCode;
use portcullis_second_factor::redact::redact_email;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{OPERATION_FAILED, require_one_factor, runtime};
use crate::authz::peer_of;
use crate::portal::{json_object, ko, ok};
use crate::state::AppState;

/// What the store says about a user.
struct Methods {
    preferred: Option<String>,
    has_totp: bool,
    has_webauthn: bool,
}

async fn methods_of(state: &AppState, username: &str) -> Result<Methods, Response> {
    let Some(rt) = runtime(state) else {
        return Ok(Methods {
            preferred: None,
            has_totp: false,
            has_webauthn: false,
        });
    };
    let store = rt.store.clone();
    let user = username.to_owned();
    let read = tokio::task::spawn_blocking(move || {
        Ok::<_, portcullis_second_factor::SecondFactorError>(Methods {
            preferred: store.preferred_method(&user)?,
            has_totp: store.totp(&user)?.is_some(),
            has_webauthn: store.has_webauthn(&user)?,
        })
    })
    .await;
    match read {
        Ok(Ok(m)) => Ok(m),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "user info: the second-factor storage failed");
            Err(ko(StatusCode::INTERNAL_SERVER_ERROR, OPERATION_FAILED))
        }
        Err(e) => {
            tracing::error!(error = %e, "user info: the second-factor storage failed");
            Err(ko(StatusCode::INTERNAL_SERVER_ERROR, OPERATION_FAILED))
        }
    }
}

fn available(state: &AppState) -> Vec<&'static str> {
    runtime(state).map_or_else(Vec::new, |rt| rt.available_methods())
}

/// `GET /api/user/info`.
pub(super) async fn get_info(State(state): State<AppState>, request: Request) -> Response {
    let peer = peer_of(&request);
    let (parts, _) = request.into_parts();
    let who = match require_one_factor(&state, &parts, peer).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let identity = &who.session.identity;
    let methods = match methods_of(&state, &identity.username).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    ok(Some(json!({
        "display_name": identity.display_name,
        "emails": identity.emails.iter().map(|e| redact_email(e)).collect::<Vec<_>>(),
        "method": methods.preferred.unwrap_or_default(),
        "has_totp": methods.has_totp,
        "has_webauthn": methods.has_webauthn,
        "has_duo": false,
    })))
}

/// `POST /api/user/info`: choose (and save) the user's default method, then answer as `GET`
/// does with `emails` null.
pub(super) async fn post_info(State(state): State<AppState>, request: Request) -> Response {
    let peer = peer_of(&request);
    let (parts, _) = request.into_parts();
    let who = match require_one_factor(&state, &parts, peer).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let identity = &who.session.identity;
    let methods = match methods_of(&state, &identity.username).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    let offered = available(&state);
    let current = methods
        .preferred
        .clone()
        .filter(|m| offered.contains(&m.as_str()));
    let registered = if methods.has_totp && offered.contains(&"totp") {
        Some("totp".to_owned())
    } else if methods.has_webauthn && offered.contains(&"webauthn") {
        Some("webauthn".to_owned())
    } else {
        None
    };
    let configured_default = runtime(&state)
        .and_then(|rt| rt.default_method.clone())
        .filter(|m| offered.contains(&m.as_str()));
    let chosen = current
        .or(registered)
        .or(configured_default)
        .or_else(|| offered.first().map(|m| (*m).to_owned()))
        .unwrap_or_default();
    if let Some(rt) = runtime(&state)
        && methods.preferred.as_deref() != Some(chosen.as_str())
    {
        let store = rt.store.clone();
        let user = identity.username.clone();
        let method = chosen.clone();
        let saved =
            tokio::task::spawn_blocking(move || store.set_preferred_method(&user, &method)).await;
        if !matches!(saved, Ok(Ok(()))) {
            tracing::error!("user info: the preferred method could not be saved");
            return ko(StatusCode::INTERNAL_SERVER_ERROR, OPERATION_FAILED);
        }
    }
    ok(Some(json!({
        "display_name": identity.display_name,
        "emails": Value::Null,
        "method": chosen,
        "has_totp": methods.has_totp && offered.contains(&"totp"),
        "has_webauthn": methods.has_webauthn && offered.contains(&"webauthn"),
        "has_duo": false,
    })))
}

#[derive(Deserialize)]
struct MethodBody {
    method: String,
}

/// `POST /api/user/info/2fa_method`.
pub(super) async fn set_method(State(state): State<AppState>, request: Request) -> Response {
    let peer = peer_of(&request);
    let (parts, body) = request.into_parts();
    let who = match require_one_factor(&state, &parts, peer).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let bytes = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let Some(body) = json_object::<MethodBody>(&bytes) else {
        return ko(StatusCode::OK, OPERATION_FAILED);
    };
    let (Some(rt), true) = (
        runtime(&state),
        available(&state).contains(&body.method.as_str()),
    ) else {
        return ko(StatusCode::OK, OPERATION_FAILED);
    };
    let store = rt.store.clone();
    let user = who.session.identity.username.clone();
    match tokio::task::spawn_blocking(move || store.set_preferred_method(&user, &body.method)).await
    {
        Ok(Ok(())) => ok(None),
        _ => ko(StatusCode::OK, OPERATION_FAILED),
    }
}

/// `GET /api/configuration/password-policy` (no login needed): what the portal's password forms
/// check, as Authelia answers it, plus the zxcvbn `min_score` (Authelia leaves it 0).
pub(super) async fn password_policy(State(state): State<AppState>) -> Response {
    let p = &state.config().second_factor.password_policy;
    ok(Some(json!({
        "mode": p.mode(),
        "min_length": p.min_length,
        "max_length": p.max_length,
        "min_score": p.zxcvbn_min_score.unwrap_or(0),
        "require_uppercase": p.require_uppercase,
        "require_lowercase": p.require_lowercase,
        "require_number": p.require_number,
        "require_special": p.require_special,
    })))
}

/// `GET /api/configuration`.
pub(super) async fn configuration(State(state): State<AppState>, request: Request) -> Response {
    let peer = peer_of(&request);
    let (parts, _) = request.into_parts();
    if let Err(r) = require_one_factor(&state, &parts, peer).await {
        return r;
    }
    let methods = if state.config().policy.has_two_factor() {
        available(&state)
    } else {
        Vec::new()
    };
    let change = runtime(&state).is_some_and(|rt| rt.password_change && rt.notifier.is_some());
    ok(Some(json!({
        "available_methods": methods,
        "password_change_disabled": !change,
        "password_reset_disabled": !runtime(&state).is_some_and(|rt| rt.reset.is_some() && rt.notifier.is_some()),
    })))
}
