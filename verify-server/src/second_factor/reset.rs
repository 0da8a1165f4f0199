//! Password reset (docs/reference/second-factor.md §3.4): a signed link mailed to the user
//! (`identity/start`, which answers alike whether or not the user exists), the link checked and
//! used once (`identity/finish`, which hands the browser a short-lived reset cookie), the new
//! password set (`POST /api/reset-password`), and the link revoked (`DELETE`). Server-rendered
//! pages (`/reset-password`, `/reset-password/step2`) do the same without JavaScript.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::response::{Html, IntoResponse, Response};
use base64::Engine;
use http::header::SET_COOKIE;
use http::{HeaderMap, HeaderValue, StatusCode};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use portcullis_second_factor::sqlite::TokenUse;
use serde::{Deserialize, Serialize};

use super::notifier::Recipient;
use super::{OPERATION_FAILED, SecondFactorRuntime, rate_limited, runtime};
use crate::authz::peer_of;
use crate::config::ResetConfig;
use crate::portal::{client_of, json_object, ko, ok, portal_domain_of};
use crate::state::AppState;

const ACTION: &str = "ResetPassword";
const RESET_COOKIE: &str = "portcullis_reset";
/// How long the browser may take between the link and the new password.
const RESET_WINDOW: u64 = 10 * 60;
const UNABLE: &str = "Unable to reset your password.";
const WEAK: &str = "Your supplied password does not meet the password policy requirements.";

#[derive(Serialize, Deserialize)]
struct Claims {
    jti: String,
    iss: String,
    iat: u64,
    exp: u64,
    action: String,
    username: String,
}

fn algorithm(config: &ResetConfig) -> Algorithm {
    match config.algorithm.as_str() {
        "HS384" => Algorithm::HS384,
        "HS512" => Algorithm::HS512,
        _ => Algorithm::HS256,
    }
}

fn uuid_v4() -> String {
    use portcullis_second_factor::uuid::{random_uuid, uuid_text};
    uuid_text(random_uuid(&mut rand::rng()))
}

fn issuer_of(state: &AppState, parts: &http::request::Parts, peer: IpAddr) -> Option<String> {
    let index = portal_domain_of(state, parts, peer)?;
    state.config().cookies[index]
        .authelia_url
        .as_deref()
        .map(|u| u.trim_end_matches('/').to_owned())
}

/// Why a reset link is refused, as Authelia words it.
fn check_token(
    config: &ResetConfig,
    token: &str,
    issuer: &str,
    now: u64,
) -> Result<Claims, &'static str> {
    let mut validation = Validation::new(algorithm(config));
    // Time is checked below against the server's clock (the one tests control).
    validation.validate_exp = false;
    validation.required_spec_claims.clear();
    validation.set_issuer(&[issuer]);
    let key = DecodingKey::from_secret(config.secret.expose().as_bytes())
        .map_err(|_| OPERATION_FAILED)?;
    let data =
        jsonwebtoken::decode::<Claims>(token, &key, &validation).map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => {
                "The identity verification token has an invalid signature"
            }
            _ => OPERATION_FAILED,
        })?;
    let claims = data.claims;
    if claims.action != ACTION {
        return Err(OPERATION_FAILED);
    }
    if claims.exp <= now {
        return Err("The identity verification token has expired");
    }
    if claims.iat > now + 5 {
        return Err("The identity verification token is only valid in the future");
    }
    Ok(claims)
}

fn reset_cookie(value: &str, max_age: u64) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!(
        "{RESET_COOKIE}={value}; Path=/; Max-Age={max_age}; HttpOnly; Secure; SameSite=Strict"
    ))
    .ok()
}

fn reset_cookie_of(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == RESET_COOKIE)
        .map(|(_, value)| value.to_owned())
}

/// Mail a reset link to `username` if it is a user with an address. Says nothing either way.
async fn send_link(
    state: &AppState,
    rt: &SecondFactorRuntime,
    issuer: &str,
    ip: IpAddr,
    username: &str,
) {
    let (Some(config), Some(notifier)) = (&rt.reset, &rt.notifier) else {
        return;
    };
    let user = match state.find_user(username).await {
        Ok(Some(user)) => user,
        Ok(None) => {
            tracing::info!("password reset asked for an unknown user");
            return;
        }
        Err(e) => {
            tracing::error!(error = %e, "password reset link not sent: the user directory is unavailable");
            return;
        }
    };
    let Some(address) = user.emails.first() else {
        tracing::info!(user = %user.username, "password reset asked for a user without an email address");
        return;
    };
    let now = state.now();
    let jti = uuid_v4();
    let claims = Claims {
        jti: jti.clone(),
        iss: issuer.to_owned(),
        iat: now,
        exp: now + config.lifespan,
        action: ACTION.to_owned(),
        username: user.username.clone(),
    };
    let key = match EncodingKey::from_secret(config.secret.expose().as_bytes()) {
        Ok(k) => k,
        Err(e) => {
            tracing::error!(error = %e, "password reset: the signing key is unusable");
            return;
        }
    };
    let token = match jsonwebtoken::encode(&Header::new(algorithm(config)), &claims, &key) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "password reset: the link could not be signed");
            return;
        }
    };
    let store = rt.store.clone();
    let name = user.username.clone();
    let saved = tokio::task::spawn_blocking(move || {
        store.save_identity_verification(&jti, &name, ACTION, ip, now as i64, claims.exp as i64)
    })
    .await;
    if !matches!(saved, Ok(Ok(()))) {
        tracing::error!("password reset: the link could not be stored");
        return;
    }
    let body = format!(
        "Hi {name},\n\nA password reset was requested for your account.\n\nIf you made this request, click the validation link below.\n\n{issuer}/reset-password/step2?token={token}\n\nIf you did not make this request, revoke the link:\n\n{issuer}/revoke/reset-password?token={token}\n\nThis request came from the IP address {ip}. The link is valid for {minutes} minutes.\n",
        name = user.display_name,
        minutes = config.lifespan.div_ceil(60),
    );
    let to = Recipient {
        display_name: user.display_name.clone(),
        address: address.clone(),
    };
    if let Err(e) = notifier.send(&to, "Reset your password", &body, now).await {
        tracing::error!(error = %e, "password reset: the link could not be sent");
    } else {
        tracing::info!(user = %user.username, "password reset link sent");
    }
}

#[derive(Deserialize)]
struct StartBody {
    username: String,
}

/// `POST /api/reset-password/identity/start`: always `{"status":"OK"}`.
pub(super) async fn start(State(state): State<AppState>, request: Request) -> Response {
    let started = portcullis_server_core::clock::Stopwatch::start();
    let peer = peer_of(&request);
    let (parts, body) = request.into_parts();
    let Some(rt) = runtime(&state).cloned() else {
        return ko(StatusCode::OK, OPERATION_FAILED);
    };
    let ip = client_of(&state, &parts, peer).addr();
    if let Some(r) = rate_limited(&rt.reset_start_limit, ip, state.now()) {
        return r;
    }
    let bytes = axum::body::to_bytes(body, 16 * 1024)
        .await
        .unwrap_or_default();
    if let (Some(body), Some(issuer)) = (
        json_object::<StartBody>(&bytes),
        issuer_of(&state, &parts, peer),
    ) {
        send_link(
            &state,
            &rt,
            &issuer,
            ip.unwrap_or(IpAddr::from([0, 0, 0, 0])),
            &body.username,
        )
        .await;
    }
    // The same time whether or not the user exists.
    state.0.delays.pad(started.elapsed()).await;
    ok(None)
}

#[derive(Deserialize)]
struct TokenBody {
    token: String,
}

/// Check and use the link; the reset cookie's value, or the message to answer with.
async fn use_link(
    state: &AppState,
    rt: &SecondFactorRuntime,
    parts: &http::request::Parts,
    peer: IpAddr,
    token: &str,
) -> Result<String, &'static str> {
    let config = rt.reset.as_ref().ok_or(OPERATION_FAILED)?;
    let issuer = issuer_of(state, parts, peer).ok_or(OPERATION_FAILED)?;
    let now = state.now();
    let claims = check_token(config, token, &issuer, now)?;
    let ip = client_of(state, parts, peer)
        .addr()
        .unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let store = rt.store.clone();
    let (jti, user) = (claims.jti.clone(), claims.username.clone());
    let used = tokio::task::spawn_blocking(move || {
        store.consume_identity_verification(&jti, &user, ACTION, ip, now as i64)
    })
    .await;
    match used {
        Ok(Ok(TokenUse::Consumed)) => {}
        Ok(Ok(TokenUse::AlreadyUsed)) => {
            return Err("The identity verification token has already been used");
        }
        _ => return Err(OPERATION_FAILED),
    }
    let key = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    if !rt
        .permit_reset(&key, &claims.username, now + RESET_WINDOW, now)
        .await
    {
        return Err(OPERATION_FAILED);
    }
    Ok(key)
}

/// What `identity/finish` and the revocation share: the runtime, the `reset_password_finish`
/// limit, the request and its token body (Authelia answers 200 KO to anything else).
async fn token_request(
    state: &AppState,
    request: Request,
) -> Result<(Arc<SecondFactorRuntime>, Parts, IpAddr, TokenBody), Response> {
    let peer = peer_of(&request);
    let (parts, body) = request.into_parts();
    let Some(rt) = runtime(state).cloned() else {
        return Err(ko(StatusCode::OK, OPERATION_FAILED));
    };
    if let Some(r) = rate_limited(
        &rt.reset_finish_limit,
        client_of(state, &parts, peer).addr(),
        state.now(),
    ) {
        return Err(r);
    }
    let bytes = axum::body::to_bytes(body, 16 * 1024)
        .await
        .unwrap_or_default();
    let body =
        json_object::<TokenBody>(&bytes).ok_or_else(|| ko(StatusCode::OK, OPERATION_FAILED))?;
    Ok((rt, parts, peer, body))
}

/// `POST /api/reset-password/identity/finish`.
pub(super) async fn finish(State(state): State<AppState>, request: Request) -> Response {
    let (rt, parts, peer, body) = match token_request(&state, request).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    match use_link(&state, &rt, &parts, peer, &body.token).await {
        Ok(key) => {
            let mut r = ok(None);
            if let Some(v) = reset_cookie(&key, RESET_WINDOW) {
                r.headers_mut().append(SET_COOKIE, v);
            }
            r
        }
        Err(message) => {
            tracing::info!(reason = message, "password reset link refused");
            ko(StatusCode::OK, message)
        }
    }
}

/// Set the new password of the user the reset cookie stands for.
async fn set_password(
    state: &AppState,
    rt: &SecondFactorRuntime,
    headers: &HeaderMap,
    password: &str,
) -> Result<(), &'static str> {
    let now = state.now();
    let key = reset_cookie_of(headers).ok_or(UNABLE)?;
    let user = rt.reset_permit(&key, now).await.ok_or(UNABLE)?;
    if !rt.password_policy.accepts(password) {
        return Err(WEAK);
    }
    super::password::write_password(state, &user, None, password)
        .await
        .map_err(|failure| match failure {
            super::password::WriteFailure::Weak => WEAK,
            _ => UNABLE,
        })?;
    rt.end_reset(&key).await;
    tracing::info!(user = %user, "password reset");
    if let Ok(Some(account)) = state.user_named(&user).await {
        super::password::notify_changed(state, rt, &account.display_name, account.emails.first())
            .await;
    }
    Ok(())
}

#[derive(Deserialize)]
struct PasswordBody {
    password: String,
}

/// `POST /api/reset-password`.
pub(super) async fn reset(State(state): State<AppState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Some(rt) = runtime(&state).cloned() else {
        return ko(StatusCode::OK, UNABLE);
    };
    let bytes = axum::body::to_bytes(body, 16 * 1024)
        .await
        .unwrap_or_default();
    let Some(body) = json_object::<PasswordBody>(&bytes) else {
        return ko(StatusCode::OK, UNABLE);
    };
    match set_password(&state, &rt, &parts.headers, &body.password).await {
        Ok(()) => {
            let mut r = ok(None);
            if let Some(v) = reset_cookie("", 0) {
                r.headers_mut().append(SET_COOKIE, v);
            }
            r
        }
        Err(message) => ko(StatusCode::OK, message),
    }
}

/// `DELETE /api/reset-password`: revoke a link.
pub(super) async fn revoke(State(state): State<AppState>, request: Request) -> Response {
    let (rt, parts, peer, body) = match token_request(&state, request).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let (Some(config), Some(issuer)) = (rt.reset.as_ref(), issuer_of(&state, &parts, peer)) else {
        return ko(StatusCode::OK, OPERATION_FAILED);
    };
    let claims = match check_token(config, &body.token, &issuer, state.now()) {
        Ok(c) => c,
        Err(message) => return ko(StatusCode::OK, message),
    };
    let ip = client_of(&state, &parts, peer)
        .addr()
        .unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let store = rt.store.clone();
    let now = state.now() as i64;
    match tokio::task::spawn_blocking(move || {
        store.revoke_identity_verification(&claims.jti, ip, now)
    })
    .await
    {
        Ok(Ok(true)) => ok(None),
        _ => ko(StatusCode::OK, OPERATION_FAILED),
    }
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{title} · Portcullis</title>\
         <style>body{{font-family:system-ui,sans-serif;background:#f4f5f7;margin:0}}main{{max-width:22rem;margin:10vh auto;background:#fff;padding:2rem;border-radius:.5rem}}label{{display:block;margin-top:1rem;font-weight:600}}input{{width:100%;box-sizing:border-box;padding:.6rem;margin-top:.3rem}}button{{margin-top:1.5rem;width:100%;padding:.7rem}}.error{{background:#fde8e8;color:#8a1c1c;padding:.7rem}}</style>\
         </head><body><main><h1>{title}</h1>{body}</main></body></html>"
    )
}

/// A reset link's token as it may appear in a page: JWT characters only.
fn safe_token(token: &str) -> Option<&str> {
    (!token.is_empty()
        && token.len() < 4096
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.'))
    .then_some(token)
}

fn form_field(bytes: &[u8], name: &str) -> String {
    form_urlencoded::parse(bytes)
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// `GET /reset-password`: ask for the username.
pub(crate) async fn start_page() -> Response {
    Html(page(
        "Reset your password",
        "<form method=\"post\" action=\"/reset-password\"><label for=\"username\">Username</label><input type=\"text\" id=\"username\" name=\"username\" autocomplete=\"username\" required autofocus><button type=\"submit\" id=\"reset-start\">Send me a link</button></form>",
    ))
    .into_response()
}

/// `POST /reset-password` (the page's form): the same as `identity/start`.
pub(crate) async fn start_form(State(state): State<AppState>, request: Request) -> Response {
    let started = portcullis_server_core::clock::Stopwatch::start();
    let peer = peer_of(&request);
    let (parts, body) = request.into_parts();
    if let Some(rt) = runtime(&state).cloned() {
        let ip = client_of(&state, &parts, peer).addr();
        if let Some(r) = rate_limited(&rt.reset_start_limit, ip, state.now()) {
            return r;
        }
        let bytes = axum::body::to_bytes(body, 16 * 1024)
            .await
            .unwrap_or_default();
        let username = form_field(&bytes, "username");
        if let Some(issuer) = issuer_of(&state, &parts, peer) {
            send_link(
                &state,
                &rt,
                &issuer,
                ip.unwrap_or(IpAddr::from([0, 0, 0, 0])),
                &username,
            )
            .await;
        }
    }
    state.0.delays.pad(started.elapsed()).await;
    Html(page(
        "Check your email",
        "<p id=\"reset-sent\" role=\"status\">If the account exists and has an email address, a link to reset its password is on its way.</p>",
    ))
    .into_response()
}

/// `GET /reset-password/step2?token=…`: the new password form (the link is used when it is sent).
pub(crate) async fn step2_page(
    axum::extract::Query(query): axum::extract::Query<HashMap<String, String>>,
) -> Response {
    let Some(token) = query.get("token").map(String::as_str).and_then(safe_token) else {
        return (
            StatusCode::BAD_REQUEST,
            Html(page(
                "Invalid link",
                "<p class=\"error\" role=\"alert\">This link is not valid.</p>",
            )),
        )
            .into_response();
    };
    Html(page(
        "Choose a new password",
        &format!("<form method=\"post\" action=\"/reset-password/step2\"><input type=\"hidden\" name=\"token\" value=\"{token}\"><label for=\"new-password\">New password</label><input type=\"password\" id=\"new-password\" name=\"password\" autocomplete=\"new-password\" required autofocus><button type=\"submit\" id=\"reset-finish\">Set the password</button></form>"),
    ))
    .into_response()
}

/// `POST /reset-password/step2`: use the link and set the password in one go.
pub(crate) async fn step2_form(State(state): State<AppState>, request: Request) -> Response {
    let peer = peer_of(&request);
    let (parts, body) = request.into_parts();
    let fail = |status: StatusCode, message: &str| {
        (
            status,
            Html(page(
                "Password not changed",
                &format!("<p class=\"error\" role=\"alert\" id=\"error\">{message}</p>"),
            )),
        )
            .into_response()
    };
    let Some(rt) = runtime(&state).cloned() else {
        return fail(StatusCode::NOT_FOUND, UNABLE);
    };
    if let Some(r) = rate_limited(
        &rt.reset_finish_limit,
        client_of(&state, &parts, peer).addr(),
        state.now(),
    ) {
        return r;
    }
    let bytes = axum::body::to_bytes(body, 16 * 1024)
        .await
        .unwrap_or_default();
    let (token, password) = (form_field(&bytes, "token"), form_field(&bytes, "password"));
    if !rt.password_policy.accepts(&password) {
        return fail(StatusCode::BAD_REQUEST, WEAK);
    }
    let key = match use_link(&state, &rt, &parts, peer, &token).await {
        Ok(k) => k,
        Err(message) => return fail(StatusCode::FORBIDDEN, message),
    };
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&format!("{RESET_COOKIE}={key}")) {
        headers.insert(http::header::COOKIE, v);
    }
    match set_password(&state, &rt, &headers, &password).await {
        Ok(()) => Html(page(
            "Password changed",
            "<p id=\"reset-done\" role=\"status\">Your password is changed. <a href=\"/\">Sign in</a>.</p>",
        ))
        .into_response(),
        Err(message) => fail(StatusCode::BAD_REQUEST, message),
    }
}
