//! The login portal: Authelia's JSON API (forward-auth.md §13) and a server-rendered login page that
//! needs no JavaScript.

use std::net::IpAddr;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use hmac::{Hmac, Mac};
use http::header::{CONTENT_TYPE, LOCATION, SET_COOKIE};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use portcullis_core::domain::match_cookie_domain;
use portcullis_core::redirect::is_safe_redirect;
use portcullis_core::{AuthLevel, ClientIp, Identity, RequiredLevel, Target, TargetUrl, client_ip};
use portcullis_session::{Session, SessionId, find_session_cookie};
use rand::RngCore;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::authz::{CookieResult, cookie_session, peer_of};
use crate::config::CookieDomain;
use crate::state::AppState;

const JSON: &str = "application/json; charset=utf-8";
const AUTH_FAILED: &str = "Authentication failed. Check your credentials.";
const CSRF_COOKIE: &str = "portcullis_csrf";

fn json_response(status: StatusCode, body: Value) -> Response {
    let mut r = (status, body.to_string()).into_response();
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(JSON));
    r
}

fn ok(data: Option<Value>) -> Response {
    match data {
        Some(data) => json_response(StatusCode::OK, json!({"status": "OK", "data": data})),
        None => json_response(StatusCode::OK, json!({"status": "OK"})),
    }
}

fn ko(status: StatusCode, message: &str) -> Response {
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

/// The cookie domain of a portal request: from the target when it names one, else from the host.
fn portal_domain(
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

fn all_domains(state: &AppState) -> Vec<&str> {
    state
        .config()
        .cookies
        .iter()
        .map(|c| c.domain.as_str())
        .collect()
}

fn client_of(state: &AppState, parts: &Parts, peer: IpAddr) -> ClientIp {
    client_ip(&parts.headers, peer, &state.config().trusted_proxies)
}

/// Why a login failed (all answered alike).
#[derive(Debug)]
enum LoginFailure {
    Credentials,
    Overloaded,
    Store,
}

/// Check credentials with regulation and, on success, store a fresh session (new id: fixation
/// defence). The previous session, if any, is destroyed.
async fn login(
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
    let ip = client.addr();
    if username.is_empty() || password.is_empty() {
        return Err(LoginFailure::Credentials);
    }
    let Some(user) = users.lookup(username) else {
        if let Some(dummy) = users.dummy_digest() {
            let _ = state.0.hasher.verify(dummy, password.to_owned()).await;
        }
        state.0.regulator.record("", ip, false, now).await;
        tracing::info!("login failed: unknown user");
        return Err(LoginFailure::Credentials);
    };
    if state
        .0
        .regulator
        .is_banned(Some(&user.username), ip, now)
        .await
    {
        tracing::info!(user = %user.username, "login refused: banned");
        return Err(LoginFailure::Credentials);
    }
    let started = std::time::Instant::now();
    let verified = state
        .0
        .hasher
        .verify(user.digest.clone(), password.to_owned())
        .await
        .map_err(|_| LoginFailure::Overloaded)?;
    state
        .0
        .regulator
        .record(&user.username, ip, verified, now)
        .await;
    if !verified {
        tracing::info!(user = %user.username, "login failed: wrong password");
        return Err(LoginFailure::Credentials);
    }
    state.0.delays.record_success(started.elapsed());
    if let Some(old) = find_session_cookie(headers, &cookie.cookie.name) {
        let _ = state.sessions().delete(&old).await;
    }
    let identity = user.identity(AuthLevel::OneFactor, now);
    let id = SessionId::generate(&mut rand::rng());
    let session = Session::new(
        id,
        cookie.domain.clone(),
        identity.clone(),
        remember,
        now,
        &cookie.lifetime,
    );
    state.sessions().put(&session).await.map_err(|e| {
        tracing::error!(error = %e, "could not store the new session: login refused");
        LoginFailure::Store
    })?;
    tracing::info!(user = %user.username, remember_me = session.remember_me, "login succeeded");
    Ok((session, identity))
}

fn session_cookie_header(cookie: &CookieDomain, session: &Session) -> Option<HeaderValue> {
    let max_age = session
        .remember_me
        .then(|| session.expires_at.saturating_sub(session.created_at));
    HeaderValue::from_str(&cookie.cookie.set_cookie(&session.id, max_age)).ok()
}

/// forward-auth.md §7: where to go after the first factor.
fn redirect_after_login(
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

fn is_json(headers: &HeaderMap) -> bool {
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
}

/// `POST /api/firstfactor`.
pub(crate) async fn first_factor(State(state): State<AppState>, request: Request) -> Response {
    let started = tokio::time::Instant::now();
    let peer = peer_of(&request);
    let (parts, body) = request.into_parts();
    let failure = |state: AppState| async move {
        state.0.metrics.login("failure");
        state.0.delays.pad(started).await;
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
    let Ok(body) = serde_json::from_slice::<FirstFactorBody>(&bytes) else {
        tracing::info!("first factor refused: malformed body");
        return failure(state).await;
    };
    let _ = (&body.workflow, &body.workflow_id);
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
            let redirect = redirect_after_login(
                &state,
                cookie,
                &identity,
                body.target_url.as_deref(),
                body.request_method.as_deref(),
                client,
            );
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

/// The session identity for a portal request (anonymous when none), plus a clearing cookie.
async fn portal_identity(
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

fn with_cookie(mut response: Response, cookie: Option<String>) -> Response {
    if let Some(v) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        response.headers_mut().append(SET_COOKIE, v);
    }
    response
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
        match serde_json::from_slice(&bytes) {
            Ok(b) => b,
            Err(_) => return ko(StatusCode::BAD_REQUEST, "Malformed request body."),
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

async fn destroy_session(state: &AppState, headers: &HeaderMap, cookie: &CookieDomain) {
    if let Some(id) = find_session_cookie(headers, &cookie.cookie.name) {
        if let Ok(Some(session)) = state.sessions().get(&id, state.now()).await {
            tracing::info!(user = %session.identity.username, "logout");
        }
        if let Err(e) = state.sessions().delete(&id).await {
            tracing::error!(error = %e, "could not delete the session at logout");
        }
    }
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
    let Ok(body) = serde_json::from_slice::<SafeRedirectBody>(&bytes) else {
        return ko(StatusCode::BAD_REQUEST, "Malformed request body.");
    };
    ok(Some(
        json!({"ok": is_safe_redirect(&body.uri, &all_domains(&state))}),
    ))
}

// ---------------------------------------------------------------------------------------------
// The HTML page.

fn csrf_token(state: &AppState, nonce: &str) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&state.0.csrf_key) else {
        return String::new();
    };
    mac.update(nonce.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

fn csrf_nonce(headers: &HeaderMap) -> Option<String> {
    for value in headers.get_all(http::header::COOKIE) {
        let Ok(text) = value.to_str() else { continue };
        for pair in text.split(';') {
            if let Some((k, v)) = pair.trim().split_once('=') {
                if k == CSRF_COOKIE
                    && v.len() == 22
                    && v.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                {
                    return Some(v.to_owned());
                }
            }
        }
    }
    None
}

fn csrf_valid(state: &AppState, headers: &HeaderMap, submitted: &str) -> bool {
    let Some(nonce) = csrf_nonce(headers) else {
        return false;
    };
    let expected = csrf_token(state, &nonce);
    portcullis_core::secret::constant_time_eq(expected.as_bytes(), submitted.as_bytes())
}

struct Page<'a> {
    identity: &'a Identity,
    error: Option<&'a str>,
    rd: &'a str,
    rm: &'a str,
    typed_username: &'a str,
    continue_url: Option<&'a str>,
}

fn render_page(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    page: Page<'_>,
) -> Response {
    let (nonce, new_cookie) = match csrf_nonce(headers) {
        Some(n) => (n, None),
        None => {
            let mut bytes = [0u8; 16];
            rand::rng().fill_bytes(&mut bytes);
            let n = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
            let cookie = format!("{CSRF_COOKIE}={n}; Path=/; HttpOnly; Secure; SameSite=Strict");
            (n, Some(cookie))
        }
    };
    let mut env = minijinja::Environment::new();
    let html = env
        .add_template("login.html", include_str!("../templates/login.html"))
        .and_then(|()| env.get_template("login.html"))
        .and_then(|t| {
            t.render(minijinja::context! {
                username => page.identity.username,
                display_name => page.identity.display_name,
                error => page.error,
                csrf => csrf_token(state, &nonce),
                rd => page.rd,
                rm => page.rm,
                typed_username => page.typed_username,
                continue_url => page.continue_url,
            })
        });
    let html = match html {
        Ok(h) => h,
        Err(e) => {
            tracing::error!(error = %e, "login page template failed");
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "500 Internal Server Error",
            )
                .into_response();
        }
    };
    let mut response = (status, html).into_response();
    let h = response.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    if let Some(v) = new_cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        h.append(SET_COOKIE, v);
    }
    response
}

#[derive(Deserialize, Default)]
struct PageQuery {
    #[serde(default)]
    rd: Option<String>,
    #[serde(default)]
    rm: Option<String>,
}

/// `GET /`: the login form, or who you are with a sign-out button.
pub(crate) async fn login_page(State(state): State<AppState>, request: Request) -> Response {
    let peer = peer_of(&request);
    let (parts, _) = request.into_parts();
    let query: PageQuery = parts
        .uri
        .query()
        .and_then(serde_urlencoded_query)
        .unwrap_or_default();
    let (_, identity, clear) = portal_identity(&state, &parts, peer).await;
    let rd = query.rd.unwrap_or_default();
    let safe_rd = is_safe_redirect(&rd, &all_domains(&state)).then_some(rd.as_str());
    let page = Page {
        identity: &identity,
        error: None,
        rd: safe_rd.unwrap_or(""),
        rm: query
            .rm
            .as_deref()
            .filter(|m| portcullis_core::checked_method(m, "rm").is_ok())
            .unwrap_or(""),
        typed_username: "",
        continue_url: if identity.is_anonymous() {
            None
        } else {
            safe_rd
        },
    };
    with_cookie(
        render_page(&state, &parts.headers, StatusCode::OK, page),
        clear,
    )
}

fn serde_urlencoded_query(q: &str) -> Option<PageQuery> {
    let mut out = PageQuery::default();
    for (k, v) in form_urlencoded::parse(q.as_bytes()) {
        match k.as_ref() {
            "rd" if out.rd.is_none() => out.rd = Some(v.into_owned()),
            "rm" if out.rm.is_none() => out.rm = Some(v.into_owned()),
            _ => {}
        }
    }
    Some(out)
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    remember: Option<String>,
    #[serde(default)]
    rd: String,
    #[serde(default)]
    rm: String,
    #[serde(default)]
    csrf: String,
}

fn form_body(bytes: &Bytes) -> Option<LoginForm> {
    let mut form = LoginForm {
        username: String::new(),
        password: String::new(),
        remember: None,
        rd: String::new(),
        rm: String::new(),
        csrf: String::new(),
    };
    for (k, v) in form_urlencoded::parse(bytes) {
        let v = v.into_owned();
        match k.as_ref() {
            "username" => form.username = v,
            "password" => form.password = v,
            "remember" => form.remember = Some(v),
            "rd" => form.rd = v,
            "rm" => form.rm = v,
            "csrf" => form.csrf = v,
            _ => {}
        }
    }
    Some(form)
}

/// `POST /login` from the HTML form.
pub(crate) async fn login_form(State(state): State<AppState>, request: Request) -> Response {
    let started = tokio::time::Instant::now();
    let peer = peer_of(&request);
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let Some(form) = form_body(&bytes) else {
        return (StatusCode::BAD_REQUEST, "400 Bad Request").into_response();
    };
    if !csrf_valid(&state, &parts.headers, &form.csrf) {
        tracing::info!("login form refused: CSRF token missing or wrong");
        return (
            StatusCode::FORBIDDEN,
            "403 Forbidden: the form expired, reload the page",
        )
            .into_response();
    }
    let domains = all_domains(&state);
    let rd = is_safe_redirect(&form.rd, &domains).then_some(form.rd.as_str());
    let Some(index) = portal_domain(&state, &parts, peer, rd) else {
        return (
            StatusCode::BAD_REQUEST,
            "400 Bad Request: no cookie domain for this host",
        )
            .into_response();
    };
    let cookie = &state.config().cookies[index];
    let client = client_of(&state, &parts, peer);
    let remember = form.remember.is_some();
    match login(
        &state,
        &parts.headers,
        cookie,
        &form.username,
        &form.password,
        remember,
        client,
    )
    .await
    {
        Ok((session, identity)) => {
            state.0.metrics.login("success");
            let rm = (!form.rm.is_empty()).then_some(form.rm.as_str());
            let next = redirect_after_login(&state, cookie, &identity, rd, rm, client)
                .unwrap_or_else(|| "/".to_owned());
            let mut response = StatusCode::SEE_OTHER.into_response();
            if let Ok(v) = HeaderValue::from_str(&next) {
                response.headers_mut().insert(LOCATION, v);
            }
            if let Some(v) = session_cookie_header(cookie, &session) {
                response.headers_mut().append(SET_COOKIE, v);
            }
            response
        }
        Err(failure) => {
            let overloaded = matches!(failure, LoginFailure::Overloaded);
            state
                .0
                .metrics
                .login(if overloaded { "overloaded" } else { "failure" });
            if !overloaded {
                state.0.delays.pad(started).await;
            }
            let anonymous = Identity::anonymous();
            let page = Page {
                identity: &anonymous,
                error: Some(if overloaded {
                    "The server is busy. Try again in a moment."
                } else {
                    "Incorrect username or password."
                }),
                rd: rd.unwrap_or(""),
                rm: &form.rm,
                typed_username: &form.username,
                continue_url: None,
            };
            let status = if overloaded {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::UNAUTHORIZED
            };
            render_page(&state, &parts.headers, status, page)
        }
    }
}

/// `POST /logout` from the HTML page.
pub(crate) async fn logout_form(State(state): State<AppState>, request: Request) -> Response {
    let peer = peer_of(&request);
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, 16 * 1024)
        .await
        .unwrap_or_default();
    let csrf = form_urlencoded::parse(&bytes)
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    if !csrf_valid(&state, &parts.headers, &csrf) {
        return (
            StatusCode::FORBIDDEN,
            "403 Forbidden: the form expired, reload the page",
        )
            .into_response();
    }
    let Some(index) = portal_domain(&state, &parts, peer, None) else {
        return (
            StatusCode::BAD_REQUEST,
            "400 Bad Request: no cookie domain for this host",
        )
            .into_response();
    };
    let cookie = &state.config().cookies[index];
    destroy_session(&state, &parts.headers, cookie).await;
    let mut response = StatusCode::SEE_OTHER.into_response();
    response
        .headers_mut()
        .insert(LOCATION, HeaderValue::from_static("/"));
    if let Ok(v) = HeaderValue::from_str(&cookie.cookie.clear_cookie()) {
        response.headers_mut().append(SET_COOKIE, v);
    }
    response
}
