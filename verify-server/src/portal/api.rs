//! Authelia's JSON API: `POST /api/firstfactor`, `GET /api/state`, `POST /api/logout`,
//! `GET /api/health`, `POST /api/checks/safe-redirection`.

use axum::extract::{Request, State};
use axum::response::Response;
use http::header::{CONTENT_TYPE, SET_COOKIE};
use http::{HeaderMap, StatusCode};
use portcullis_core::AuthLevel;
use portcullis_core::redirect::is_safe_redirect;
use portcullis_server_core::clock::Stopwatch;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    AUTH_FAILED, LoginFailure, all_domains, client_of, destroy_session, ko, login, ok,
    portal_domain, portal_identity, redirect_after_login, session_cookie_header, with_cookie,
};
use crate::authz::peer_of;
use crate::state::AppState;

/// A JSON body that must be an object: serde would otherwise read a struct from an array
/// (`["alice","password"]`) by position, which Authelia refuses.
pub(crate) fn json_object<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    match serde_json::from_slice::<Value>(bytes).ok()? {
        object @ Value::Object(_) => serde_json::from_value(object).ok(),
        _ => None,
    }
}

pub(crate) fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
        })
}

#[derive(Deserialize)]
struct FirstFactorBody {
    username: String,
    password: String,
    #[serde(rename = "keepMeLoggedIn", default)]
    keep_me_logged_in: Option<bool>,
    #[serde(rename = "targetURL", default)]
    target_url: Option<String>,
    #[serde(rename = "requestMethod", default)]
    request_method: Option<String>,
    #[serde(default)]
    workflow: Option<String>,
    #[serde(rename = "workflowID", default)]
    workflow_id: Option<String>,
    #[serde(default)]
    flow: Option<String>,
    #[serde(rename = "flowID", default)]
    flow_id: Option<String>,
}

impl FirstFactorBody {
    /// The OpenID Connect flow this login continues (`flow`/`flowID`, or the older
    /// `workflow`/`workflowID` names).
    fn openid_flow(&self) -> Option<&str> {
        let (kind, id) = match (&self.flow, &self.workflow) {
            (Some(kind), _) => (kind, self.flow_id.as_ref()),
            (None, Some(kind)) => (kind, self.workflow_id.as_ref()),
            (None, None) => return None,
        };
        (kind == "openid_connect").then_some(id?.as_str())
    }
}

/// `POST /api/firstfactor`.
pub(crate) async fn first_factor(State(state): State<AppState>, request: Request) -> Response {
    let started = Stopwatch::start();
    let peer = peer_of(&request);
    let (parts, body) = request.into_parts();
    let failure = |state: AppState| async move {
        state.0.metrics.login("failure");
        state.0.delays.pad(started.elapsed()).await;
        ko(StatusCode::UNAUTHORIZED, AUTH_FAILED)
    };
    // JSON only: a cross-site form cannot send it without a CORS preflight.
    if !is_json(&parts.headers) {
        tracing::info!("first factor refused: body is not application/json");
        return failure(state).await;
    }
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024).await else {
        return failure(state).await;
    };
    let Some(body) = json_object::<FirstFactorBody>(&bytes) else {
        tracing::info!("first factor refused: malformed body");
        return failure(state).await;
    };
    let Some(index) = portal_domain(&state, &parts, peer, body.target_url.as_deref()) else {
        tracing::info!("first factor refused: no cookie domain for the request");
        return failure(state).await;
    };
    let cookie = &state.config().cookies[index];
    let client = client_of(&state, &parts, peer);
    let remember = body.keep_me_logged_in.unwrap_or(false);
    match login(
        &state,
        &parts.headers,
        cookie,
        &body.username,
        &body.password,
        remember,
        client,
    )
    .await
    {
        Ok((session, identity)) => {
            state.0.metrics.login("success");
            let redirect = match body.openid_flow() {
                Some(flow_id) => crate::oidc::flow_redirect_after_login(&state, flow_id).await,
                None => redirect_after_login(
                    &state,
                    cookie,
                    &identity,
                    body.target_url.as_deref(),
                    body.request_method.as_deref(),
                    client,
                ),
            };
            let mut response = ok(redirect.map(|r| json!({"redirect": r})));
            if let Some(v) = session_cookie_header(cookie, &session) {
                response.headers_mut().append(SET_COOKIE, v);
            }
            response
        }
        Err(LoginFailure::Overloaded) => {
            state.0.metrics.login("overloaded");
            ko(StatusCode::SERVICE_UNAVAILABLE, AUTH_FAILED)
        }
        Err(LoginFailure::Credentials | LoginFailure::Store) => failure(state).await,
    }
}

/// `GET /api/state`.
pub(crate) async fn user_state(State(state): State<AppState>, request: Request) -> Response {
    let peer = peer_of(&request);
    let (parts, _) = request.into_parts();
    let (index, identity, clear) = portal_identity(&state, &parts, peer).await;
    let mut data = json!({
        "username": identity.username,
        "authentication_level": identity.level.as_u8(),
        "factor_knowledge": identity.level >= AuthLevel::OneFactor,
    });
    if let Some(url) = index.and_then(|i| state.config().cookies[i].default_redirection_url.clone())
    {
        data["default_redirection_url"] = Value::String(url);
    }
    with_cookie(ok(Some(data)), clear)
}

#[derive(Deserialize, Default)]
struct LogoutBody {
    #[serde(rename = "targetURL", default)]
    target_url: Option<String>,
}

/// `POST /api/logout`.
pub(crate) async fn logout(State(state): State<AppState>, request: Request) -> Response {
    let peer = peer_of(&request);
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let body: LogoutBody = if bytes.is_empty() {
        LogoutBody::default()
    } else {
        match json_object(&bytes) {
            Some(b) => b,
            None => return ko(StatusCode::BAD_REQUEST, "Malformed request body."),
        }
    };
    let Some(index) = portal_domain(&state, &parts, peer, None) else {
        return ko(
            StatusCode::UNAUTHORIZED,
            "Unable to determine the session domain.",
        );
    };
    let cookie = &state.config().cookies[index];
    destroy_session(&state, &parts.headers, cookie).await;
    let safe = body
        .target_url
        .as_deref()
        .is_some_and(|t| is_safe_redirect(t, &all_domains(&state)));
    with_cookie(
        ok(Some(json!({"safeTargetURL": safe}))),
        Some(cookie.cookie.clear_cookie()),
    )
}

/// `GET /api/health`.
pub(crate) async fn health(State(state): State<AppState>) -> Response {
    match state.sessions().health().await {
        Ok(()) => ok(None),
        Err(e) => {
            tracing::error!(error = %e, "health check: session store unavailable");
            ko(StatusCode::SERVICE_UNAVAILABLE, "session store unavailable")
        }
    }
}

#[derive(Deserialize)]
struct SafeRedirectBody {
    uri: String,
}

/// `POST /api/checks/safe-redirection`.
pub(crate) async fn safe_redirection(State(state): State<AppState>, request: Request) -> Response {
    let peer = peer_of(&request);
    let (parts, body) = request.into_parts();
    let (_, identity, clear) = portal_identity(&state, &parts, peer).await;
    if identity.is_anonymous() {
        return with_cookie(ko(StatusCode::UNAUTHORIZED, "Unauthorized."), clear);
    }
    let bytes = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let Some(body) = json_object::<SafeRedirectBody>(&bytes) else {
        return ko(StatusCode::BAD_REQUEST, "Malformed request body.");
    };
    ok(Some(
        json!({"ok": is_safe_redirect(&body.uri, &all_domains(&state))}),
    ))
}
