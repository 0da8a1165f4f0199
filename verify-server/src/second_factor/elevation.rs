//! Session elevation (docs/reference/second-factor.md §3.2): a one-time code mailed to the user,
//! valid only from the address that asked for it, turns the session "elevated" for a while,
//! which registering or removing a device requires.

use axum::extract::{Path, Request, State};
use axum::response::{Html, IntoResponse, Response};
use http::StatusCode;
use portcullis_core::AuthLevel;
use portcullis_second_factor::one_time_code::{self, delete_id, parse_delete_id};
use serde::Deserialize;
use serde_json::json;

use super::notifier::{Recipient, one_time_code_body};
use super::respond::rate_limited;
use super::{
    Authenticated, Elevation, OPERATION_FAILED, SecondFactorRuntime, require_one_factor, runtime,
};
use crate::authz::peer_of;
use crate::portal::{client_of, json_object, ko, ok};
use crate::state::AppState;

/// The intent of an elevation code.
const INTENT: &str = "use";

/// `GET /api/user/session/elevation`.
pub(super) async fn status(State(state): State<AppState>, request: Request) -> Response {
    let peer = peer_of(&request);
    let (parts, _) = request.into_parts();
    let who = match require_one_factor(&state, &parts, peer).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let Some(rt) = runtime(&state) else {
        return ko(StatusCode::FORBIDDEN, OPERATION_FAILED);
    };
    let now = state.now();
    let elevation = rt.elevation_of(&who.session.id, who.ip, now).await;
    let level = who.session.identity.level;
    ok(Some(json!({
        "require_second_factor": rt.elevation.require_second_factor,
        "skip_second_factor": rt.elevation.skip_second_factor,
        "can_skip_second_factor": rt.elevation.skip_second_factor && level == AuthLevel::TwoFactor,
        "factor_knowledge": level >= AuthLevel::OneFactor,
        "elevated": elevation.is_some(),
        "expires": elevation.map_or(0, |e| e.expires.saturating_sub(now)),
    })))
}

/// Mail `who` a fresh one-time code (docs/reference/second-factor.md §3.2); its `delete_id`.
/// The error is the status the JSON API answers with.
pub(crate) async fn send_code(
    state: &AppState,
    rt: &SecondFactorRuntime,
    who: &Authenticated,
) -> Result<String, StatusCode> {
    let now = state.now();
    let identity = &who.session.identity;
    let (Some(notifier), Some(address), Some(ip)) = (&rt.notifier, identity.emails.first(), who.ip)
    else {
        tracing::info!(user = %identity.username, "elevation refused: no notifier, no email address or no client address");
        return Err(StatusCode::FORBIDDEN);
    };
    let code = one_time_code::generate(&mut rand::rng(), rt.elevation.characters);
    let store = rt.store.clone();
    let user = identity.username.clone();
    let expires = now + rt.elevation.code_lifespan;
    let stored_code = code.clone();
    let saved = tokio::task::spawn_blocking(move || {
        store.save_one_time_code(
            &user,
            ip,
            INTENT,
            &stored_code,
            now as i64,
            expires as i64,
            &mut rand::rng(),
        )
    })
    .await;
    let public_id = match saved {
        Ok(Ok(id)) => id,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "elevation refused: the code cannot be stored");
            return Err(StatusCode::INTERNAL_SERVER_ERROR);
        }
        Err(e) => {
            tracing::error!(error = %e, "elevation refused: the code cannot be stored");
            return Err(StatusCode::INTERNAL_SERVER_ERROR);
        }
    };
    let id = delete_id(public_id);
    let cookie = &state.config().cookies[who.index];
    let issuer = cookie
        .authelia_url
        .as_deref()
        .map_or_else(String::new, |u| u.trim_end_matches('/').to_owned());
    let body = one_time_code_body(
        &identity.display_name,
        &cookie.domain,
        &code,
        rt.elevation.code_lifespan.div_ceil(60),
        &format!("{issuer}/revoke/one-time-code?id={id}"),
        &ip.to_string(),
    );
    let to = Recipient {
        display_name: identity.display_name.clone(),
        address: address.clone(),
    };
    if let Err(e) = notifier
        .send(&to, "Confirm your identity", &body, now)
        .await
    {
        tracing::error!(error = %e, "elevation refused: the code could not be sent");
        return Err(StatusCode::INTERNAL_SERVER_ERROR);
    }
    tracing::info!(user = %identity.username, "elevation code sent");
    Ok(id)
}

/// `POST /api/user/session/elevation`: mail a code.
pub(super) async fn start(State(state): State<AppState>, request: Request) -> Response {
    let peer = peer_of(&request);
    let (parts, _) = request.into_parts();
    let Some(rt) = runtime(&state).cloned() else {
        return ko(StatusCode::FORBIDDEN, OPERATION_FAILED);
    };
    let client = client_of(&state, &parts, peer).addr();
    if let Some(r) = rate_limited(&rt.elevation_start_limit, client, state.now()) {
        return r;
    }
    let who = match require_one_factor(&state, &parts, peer).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    match send_code(&state, &rt, &who).await {
        Ok(id) => ok(Some(json!({"delete_id": id}))),
        Err(status) => ko(status, OPERATION_FAILED),
    }
}

#[derive(Deserialize)]
struct FinishBody {
    otc: String,
}

/// Elevate the session of `who` with the code it typed; the error is the JSON API's status.
pub(crate) async fn confirm_code(
    state: &AppState,
    rt: &SecondFactorRuntime,
    who: &Authenticated,
    typed: &str,
) -> Result<(), StatusCode> {
    // Authelia's one-second delay: guessing codes is slow even within the rate limit.
    tokio::time::sleep(state.tuning().elevation_delay).await;
    let now = state.now();
    let Ok(code) = one_time_code::normalize(typed) else {
        return Err(StatusCode::BAD_REQUEST);
    };
    let Some(ip) = who.ip else {
        return Err(StatusCode::FORBIDDEN);
    };
    let store = rt.store.clone();
    let user = who.session.identity.username.clone();
    let name = user.clone();
    let used = tokio::task::spawn_blocking(move || {
        store.consume_one_time_code(&name, ip, INTENT, &code, now as i64)
    })
    .await;
    match used {
        Ok(Ok(true)) => {}
        Ok(Ok(false)) => {
            tracing::info!(user = %user, "elevation refused: unknown, expired, used or revoked code, or another address");
            return Err(StatusCode::FORBIDDEN);
        }
        Ok(Err(e)) => {
            tracing::error!(user = %user, error = %e, "elevation refused: the code cannot be checked");
            return Err(StatusCode::FORBIDDEN);
        }
        Err(e) => {
            tracing::error!(user = %user, error = %e, "elevation refused: the code cannot be checked");
            return Err(StatusCode::FORBIDDEN);
        }
    }
    let elevation = Elevation {
        expires: now + rt.elevation.elevation_lifespan,
        ip,
    };
    if !rt.set_elevation(&who.session.id, elevation, now).await {
        return Err(StatusCode::SERVICE_UNAVAILABLE);
    }
    tracing::info!(user = %user, "session elevated");
    Ok(())
}

/// `PUT /api/user/session/elevation`: the code typed back.
pub(super) async fn finish(State(state): State<AppState>, request: Request) -> Response {
    let peer = peer_of(&request);
    let (parts, body) = request.into_parts();
    let Some(rt) = runtime(&state).cloned() else {
        return ko(StatusCode::FORBIDDEN, OPERATION_FAILED);
    };
    let client = client_of(&state, &parts, peer).addr();
    if let Some(r) = rate_limited(&rt.elevation_finish_limit, client, state.now()) {
        return r;
    }
    let who = match require_one_factor(&state, &parts, peer).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let bytes = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let Some(body) = json_object::<FinishBody>(&bytes) else {
        return ko(StatusCode::BAD_REQUEST, OPERATION_FAILED);
    };
    match confirm_code(&state, &rt, &who, &body.otc).await {
        Ok(()) => ok(None),
        Err(status) => ko(status, OPERATION_FAILED),
    }
}

/// `DELETE /api/user/session/elevation/{delete_id}` (no login needed: the link in the mail).
pub(super) async fn revoke(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let peer = peer_of(&request);
    let (parts, _) = request.into_parts();
    let Some(rt) = runtime(&state).cloned() else {
        return ko(StatusCode::OK, OPERATION_FAILED);
    };
    let Some(public_id) = parse_delete_id(&id) else {
        return ko(StatusCode::OK, OPERATION_FAILED);
    };
    let ip = client_of(&state, &parts, peer)
        .addr()
        .unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]));
    let now = state.now();
    let store = rt.store.clone();
    match tokio::task::spawn_blocking(move || store.revoke_one_time_code(public_id, ip, now as i64))
        .await
    {
        Ok(Ok(true)) => {
            tracing::info!("one-time code revoked");
            ok(None)
        }
        _ => ko(StatusCode::OK, OPERATION_FAILED),
    }
}

/// `GET /revoke/one-time-code?id=…`: a page that asks for a click before revoking, so a mail
/// scanner that follows links cannot revoke the code before the user types it.
pub(crate) async fn revoke_page(
    axum::extract::Query(query): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response {
    let id = query.get("id").cloned().unwrap_or_default();
    if parse_delete_id(&id).is_none() {
        return (StatusCode::BAD_REQUEST, Html("<!DOCTYPE html><title>Invalid link</title><p>This revocation link is not valid.</p>")).into_response();
    }
    Html(format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Revoke the one-time code</title></head><body><main>\
         <h1>Revoke the one-time code</h1><p>If you did not ask for this code, revoke it.</p>\
         <form method=\"post\" action=\"/revoke/one-time-code\"><input type=\"hidden\" name=\"id\" value=\"{id}\">\
         <button type=\"submit\" id=\"revoke\">Revoke the code</button></form></main></body></html>"
    ))
    .into_response()
}

#[derive(Deserialize)]
pub(crate) struct RevokeForm {
    id: String,
}

/// `POST /revoke/one-time-code` (the page's form).
pub(crate) async fn revoke_form(State(state): State<AppState>, request: Request) -> Response {
    let peer = peer_of(&request);
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let Ok(form) = serde_urlencoded_form(&bytes) else {
        return (
            StatusCode::BAD_REQUEST,
            Html("<!DOCTYPE html><title>Invalid request</title><p>Invalid request.</p>"),
        )
            .into_response();
    };
    let (Some(rt), Some(public_id)) = (runtime(&state).cloned(), parse_delete_id(&form.id)) else {
        return (StatusCode::BAD_REQUEST, Html("<!DOCTYPE html><title>Invalid link</title><p>This revocation link is not valid.</p>")).into_response();
    };
    let ip = client_of(&state, &parts, peer)
        .addr()
        .unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]));
    let now = state.now();
    let store = rt.store.clone();
    let revoked = matches!(
        tokio::task::spawn_blocking(move || store.revoke_one_time_code(public_id, ip, now as i64))
            .await,
        Ok(Ok(true))
    );
    let text = if revoked {
        "The code is revoked."
    } else {
        "The code was already used, revoked or has expired."
    };
    Html(format!("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>One-time code</title></head><body><main><p id=\"result\" role=\"status\">{text}</p></main></body></html>")).into_response()
}

fn serde_urlencoded_form(bytes: &[u8]) -> Result<RevokeForm, ()> {
    let id = form_urlencoded::parse(bytes)
        .find(|(k, _)| k == "id")
        .map(|(_, v)| v.into_owned())
        .ok_or(())?;
    Ok(RevokeForm { id })
}
