//! The login portal (docs/reference/forward-auth.md §13): Authelia's JSON API (`api`), a
//! server-rendered login page that needs no JavaScript (`page`) and the CSRF tokens of its forms
//! (`csrf`). This module holds what they share: where a portal request belongs, logging in, and
//! where to go afterwards.

mod api;
pub(crate) mod csrf;
mod page;
mod settings;

use std::net::IpAddr;

use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use http::header::{CONTENT_TYPE, SET_COOKIE};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use portcullis_auth::Rejection;
use portcullis_core::domain::match_cookie_domain;
use portcullis_core::redirect::is_safe_redirect;
use portcullis_core::{AuthLevel, ClientIp, Identity, RequiredLevel, Target, TargetUrl, client_ip};
use portcullis_server_core::clock::Stopwatch;
use portcullis_session::{Session, SessionId, find_session_cookie};
use serde_json::{Value, json};

use crate::authz::{CookieResult, cookie_session};
use crate::config::CookieDomain;
use crate::state::AppState;

pub(crate) use api::{
    first_factor, health, is_json, json_object, logout, safe_redirection, user_state,
};
pub(crate) use page::{
    Templates, login_form, login_page, logout_form, password_form, totp_form, webauthn_script,
};
pub(crate) use settings::{
    confirm, elevate, settings_page, totp_begin, totp_finish, totp_remove, webauthn_remove,
};

pub(super) const JSON: &str = "application/json; charset=utf-8";
pub(super) const AUTH_FAILED: &str = "Authentication failed. Check your credentials.";

pub(crate) fn json_response(status: StatusCode, body: Value) -> Response {
    let mut r = (status, body.to_string()).into_response();
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(JSON));
    r
}

pub(crate) fn ok(data: Option<Value>) -> Response {
    match data {
        Some(data) => json_response(StatusCode::OK, json!({"status": "OK", "data": data})),
        None => json_response(StatusCode::OK, json!({"status": "OK"})),
    }
}

pub(crate) fn ko(status: StatusCode, message: &str) -> Response {
    json_response(status, json!({"status": "KO", "message": message}))
}

/// The request's own host (portal side): `X-Forwarded-Host` from a trusted proxy, else `Host`; no port.
fn request_host(state: &AppState, parts: &Parts, peer: IpAddr) -> Option<String> {
    let trusted = state.config().trusted_proxies.contains(peer);
    let value = trusted
        .then(|| parts.headers.get("x-forwarded-host"))
        .flatten()
        .or_else(|| parts.headers.get(http::header::HOST))?;
    let text = value.to_str().ok()?;
    let url = TargetUrl::parse(&format!("https://{text}/")).ok()?;
    Some(url.host().to_owned())
}

fn domain_index_for_host(state: &AppState, host: &str) -> Option<usize> {
    let domains: Vec<&str> = state
        .config()
        .cookies
        .iter()
        .map(|c| c.domain.as_str())
        .collect();
    match_cookie_domain(host, &domains)
}

/// The cookie domain of a request from its host alone (the OpenID provider's issuer).
pub(crate) fn portal_domain_of(state: &AppState, parts: &Parts, peer: IpAddr) -> Option<usize> {
    portal_domain(state, parts, peer, None)
}

/// The cookie domain of a portal request: from the target when it names one, else from the host.
pub(super) fn portal_domain(
    state: &AppState,
    parts: &Parts,
    peer: IpAddr,
    target: Option<&str>,
) -> Option<usize> {
    target
        .and_then(|t| TargetUrl::parse(t).ok())
        .and_then(|t| domain_index_for_host(state, t.host()))
        .or_else(|| request_host(state, parts, peer).and_then(|h| domain_index_for_host(state, &h)))
}

pub(super) fn all_domains(state: &AppState) -> Vec<&str> {
    state
        .config()
        .cookies
        .iter()
        .map(|c| c.domain.as_str())
        .collect()
}

pub(crate) fn client_of(state: &AppState, parts: &Parts, peer: IpAddr) -> ClientIp {
    client_ip(&parts.headers, peer, &state.config().trusted_proxies)
}

/// Why a login failed (all answered alike, but for overload).
#[derive(Debug)]
pub(super) enum LoginFailure {
    Credentials,
    Overloaded,
    Store,
}

/// Check credentials with regulation and, on success, store a fresh session (new id: fixation
/// defence). The previous session, if any, is destroyed.
pub(super) async fn login(
    state: &AppState,
    headers: &HeaderMap,
    cookie: &CookieDomain,
    username: &str,
    password: &str,
    remember: bool,
    client: ClientIp,
) -> Result<(Session, Identity), LoginFailure> {
    let now = state.now();
    let users = state.users();
    let started = Stopwatch::start();
    let user = match state
        .password_check(&users, None)
        .check(username, password, client.addr(), now)
        .await
    {
        Ok(accepted) => {
            state.0.delays.record_success(started.elapsed());
            accepted.user
        }
        Err(Rejection::Overloaded) => return Err(LoginFailure::Overloaded),
        Err(rejection) => {
            tracing::info!(reason = rejection.as_str(), "login failed");
            return Err(LoginFailure::Credentials);
        }
    };
    let session = start_session(
        state,
        headers,
        cookie,
        &user,
        AuthLevel::OneFactor,
        remember,
    )
    .await
    .map_err(|()| LoginFailure::Store)?;
    tracing::info!(user = %user.username, remember_me = session.remember_me, "login succeeded");
    let identity = session.identity.clone();
    Ok((session, identity))
}

/// Store a fresh session for `user` at `level` (new id: fixation defence); the request's
/// previous session, if any, is destroyed.
pub(crate) async fn start_session(
    state: &AppState,
    headers: &HeaderMap,
    cookie: &CookieDomain,
    user: &portcullis_auth::users::User,
    level: AuthLevel,
    remember: bool,
) -> Result<Session, ()> {
    let now = state.now();
    if let Some(old) = find_session_cookie(headers, &cookie.cookie.name) {
        let _ = state.sessions().delete(&old).await;
    }
    let identity = user.identity(level, now);
    let id = SessionId::generate(&mut rand::rng());
    let session = Session::new(
        id,
        cookie.domain.clone(),
        identity,
        remember,
        now,
        &cookie.lifetime,
    );
    state.sessions().put(&session).await.map_err(|e| {
        tracing::error!(error = %e, "could not store the new session: login refused");
    })?;
    Ok(session)
}

pub(crate) fn session_cookie_header(
    cookie: &CookieDomain,
    session: &Session,
) -> Option<HeaderValue> {
    let max_age = session
        .remember_me
        .then(|| session.expires_at.saturating_sub(session.created_at));
    HeaderValue::from_str(&cookie.cookie.set_cookie(&session.id, max_age)).ok()
}

/// docs/reference/forward-auth.md §7: where to go after the first factor.
pub(crate) fn redirect_after_login(
    state: &AppState,
    cookie: &CookieDomain,
    identity: &Identity,
    target: Option<&str>,
    method: Option<&str>,
    client: ClientIp,
) -> Option<String> {
    let policy = &state.config().policy;
    let default = || {
        cookie
            .default_redirection_url
            .clone()
            .filter(|_| !policy.has_two_factor())
    };
    let Some(target) = target.filter(|t| !t.is_empty()) else {
        return default();
    };
    if let Ok(url) = TargetUrl::parse(target) {
        let method = method
            .and_then(|m| portcullis_core::checked_method(m, "requestMethod").ok())
            .unwrap_or(Method::GET);
        let t = Target {
            url,
            method,
            client_ip: client,
        };
        if policy.evaluate(&t, identity).requirement.level == RequiredLevel::TwoFactor {
            return None;
        }
    }
    if is_safe_redirect(target, &all_domains(state)) {
        return Some(target.to_owned());
    }
    default()
}

/// The session identity for a portal request (anonymous when none), plus a clearing cookie.
pub(crate) async fn portal_identity(
    state: &AppState,
    parts: &Parts,
    peer: IpAddr,
) -> (Option<usize>, Identity, Option<String>) {
    let Some(index) = portal_domain(state, parts, peer, None) else {
        return (None, Identity::anonymous(), None);
    };
    let cookie = &state.config().cookies[index];
    match cookie_session(state, &parts.headers, cookie, state.now()).await {
        CookieResult::Valid(identity) => (Some(index), *identity, None),
        CookieResult::Destroyed(clear) => (Some(index), Identity::anonymous(), Some(clear)),
        CookieResult::Absent => (Some(index), Identity::anonymous(), None),
    }
}

pub(super) fn with_cookie(mut response: Response, cookie: Option<String>) -> Response {
    if let Some(v) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        response.headers_mut().append(SET_COOKIE, v);
    }
    response
}

pub(super) async fn destroy_session(state: &AppState, headers: &HeaderMap, cookie: &CookieDomain) {
    let iss = cookie
        .authelia_url
        .as_deref()
        .map(|u| u.trim_end_matches('/').to_owned());
    destroy_session_for_issuer(state, headers, cookie, iss.as_deref()).await;
}

/// End the session of `cookie`'s domain; the OpenID provider then revokes the user's tokens and
/// tells the clients (back-channel logout) as issuer `iss`.
pub(crate) async fn destroy_session_for_issuer(
    state: &AppState,
    headers: &HeaderMap,
    cookie: &CookieDomain,
    iss: Option<&str>,
) {
    if let Some(id) = find_session_cookie(headers, &cookie.cookie.name) {
        let user = match state.sessions().get(&id, state.now()).await {
            Ok(Some(session)) => {
                tracing::info!(user = %session.identity.username, "logout");
                Some(session.identity.username.clone())
            }
            _ => None,
        };
        if let Err(e) = state.sessions().delete(&id).await {
            tracing::error!(error = %e, "could not delete the session at logout");
        }
        if let Some(user) = user.filter(|u| !u.is_empty()) {
            crate::oidc::user_logged_out(state, &user, iss).await;
        }
    }
}
