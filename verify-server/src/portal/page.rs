//! The server-rendered login page (`GET /`), its form (`POST /login`) and the sign-out form
//! (`POST /logout`).

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::header::{CONTENT_TYPE, LOCATION, SET_COOKIE};
use http::{HeaderMap, HeaderValue, StatusCode};
use portcullis_core::redirect::is_safe_redirect;
use portcullis_core::{AuthLevel, Identity};
use portcullis_server_core::clock::Stopwatch;
use serde::Deserialize;

use super::csrf::{csrf_nonce, csrf_token, csrf_valid, new_nonce};
use super::{
    LoginFailure, all_domains, client_of, destroy_session, login, portal_domain, portal_identity,
    redirect_after_login, session_cookie_header, with_cookie,
};
use crate::authz::peer_of;
use crate::error::EdgeError;
use crate::state::AppState;

struct Page<'a> {
    identity: &'a Identity,
    error: Option<&'a str>,
    rd: &'a str,
    rm: &'a str,
    typed_username: &'a str,
    continue_url: Option<&'a str>,
    /// The OpenID Connect flow this login continues (`flow=openid_connect&flow_id=…`).
    flow_id: &'a str,
    /// The origin the flow's redirects end at (its client's redirect URI), allowed in
    /// `form-action` so that Chromium follows the login's redirects there.
    flow_origin: Option<String>,
    /// For a user at one factor: `totp` (a code form is shown), `webauthn` (only a security
    /// key), `password` (a passkey login: the password is the second factor), `register` (no
    /// device yet), or empty (no second factors).
    second_factor: &'static str,
    /// The user has a security key or passkey for this portal: its button is shown.
    webauthn: bool,
}

/// The login page template, compiled once at start: a template error is a start error, and no
/// request pays for parsing it.
pub(crate) struct Templates {
    env: minijinja::Environment<'static>,
}

impl Templates {
    const LOGIN: &'static str = "login.html";
    const SETTINGS: &'static str = "settings.html";

    pub(crate) fn compile() -> Result<Self, minijinja::Error> {
        let mut env = minijinja::Environment::new();
        env.add_template(Self::LOGIN, include_str!("../../templates/login.html"))?;
        env.add_template(
            Self::SETTINGS,
            include_str!("../../templates/settings.html"),
        )?;
        Ok(Self { env })
    }

    pub(crate) fn settings(&self, context: minijinja::Value) -> Result<String, minijinja::Error> {
        self.env.get_template(Self::SETTINGS)?.render(context)
    }

    fn login(&self, context: minijinja::Value) -> Result<String, minijinja::Error> {
        self.env.get_template(Self::LOGIN)?.render(context)
    }
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
            let (nonce, cookie) = new_nonce();
            (nonce, Some(cookie))
        }
    };
    let html = state.0.templates.login(minijinja::context! {
        username => page.identity.username,
        display_name => page.identity.display_name,
        error => page.error,
        csrf => csrf_token(&state.0.csrf_key, &nonce),
        rd => page.rd,
        rm => page.rm,
        typed_username => page.typed_username,
        continue_url => page.continue_url,
        flow_id => page.flow_id,
        second_factor => page.second_factor,
        webauthn => page.webauthn,
        passkey_login => crate::second_factor::runtime(state)
            .and_then(|rt| rt.webauthn.as_ref())
            .is_some_and(|w| w.passkey_login),
        settings => crate::second_factor::runtime(state)
            .is_some_and(|rt| rt.totp.is_some() || rt.webauthn.is_some()),
    });
    let html = match html {
        Ok(h) => h,
        Err(e) => {
            return EdgeError::Internal(format!("login page template failed: {e}")).into_response();
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
    if let Some(origin) = &page.flow_origin {
        let base = crate::content_security_policy(state);
        let csp = base.to_str().unwrap_or("").replacen(
            "form-action 'self'",
            &format!("form-action 'self' {origin}"),
            1,
        );
        if let Ok(v) = HeaderValue::from_str(&csp) {
            h.insert(http::header::CONTENT_SECURITY_POLICY, v);
        }
    }
    response
}

#[derive(Deserialize, Default)]
struct PageQuery {
    #[serde(default)]
    rd: Option<String>,
    #[serde(default)]
    rm: Option<String>,
    #[serde(default)]
    flow_id: Option<String>,
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
    let (_, session_identity, clear) = portal_identity(&state, &parts, peer).await;
    // An OpenID Connect flow always shows the form: it may ask to log in again (`prompt=login`).
    let flow_id = query.flow_id.unwrap_or_default();
    let anonymous = Identity::anonymous();
    let identity = if flow_id.is_empty() {
        session_identity
    } else {
        anonymous
    };
    let rd = query.rd.unwrap_or_default();
    let safe_rd = is_safe_redirect(&rd, &all_domains(&state)).then_some(rd.as_str());
    let (second_factor, webauthn) = second_factor_of(&state, &parts, peer, &identity).await;
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
        flow_id: &flow_id,
        flow_origin: if flow_id.is_empty() {
            None
        } else {
            crate::oidc::flow_client_origin(&state, &flow_id).await
        },
        second_factor,
        webauthn,
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
            "flow_id" if out.flow_id.is_none() => out.flow_id = Some(v.into_owned()),
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
    #[serde(default)]
    flow: String,
    #[serde(default)]
    flow_id: String,
}

fn form_body(bytes: &Bytes) -> Option<LoginForm> {
    let mut form = LoginForm {
        username: String::new(),
        password: String::new(),
        remember: None,
        rd: String::new(),
        rm: String::new(),
        csrf: String::new(),
        flow: String::new(),
        flow_id: String::new(),
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
            "flow" => form.flow = v,
            "flow_id" => form.flow_id = v,
            _ => {}
        }
    }
    Some(form)
}

/// `POST /login` from the HTML form.
pub(crate) async fn login_form(State(state): State<AppState>, request: Request) -> Response {
    let started = Stopwatch::start();
    let peer = peer_of(&request);
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let Some(form) = form_body(&bytes) else {
        return (StatusCode::BAD_REQUEST, "400 Bad Request").into_response();
    };
    if !csrf_valid(&state.0.csrf_key, &parts.headers, &form.csrf) {
        return EdgeError::FormExpired.into_response();
    }
    let domains = all_domains(&state);
    let rd = is_safe_redirect(&form.rd, &domains).then_some(form.rd.as_str());
    let Some(index) = portal_domain(&state, &parts, peer, rd) else {
        return EdgeError::BadRequest("no cookie domain for this host").into_response();
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
            let next = if form.flow == "openid_connect" && !form.flow_id.is_empty() {
                crate::oidc::flow_redirect_after_login(&state, &form.flow_id).await
            } else {
                redirect_after_login(&state, cookie, &identity, rd, rm, client)
            }
            // No redirect yet (the target needs a second factor): back to the page, which asks
            // for it and keeps the target.
            .unwrap_or_else(|| match rd {
                Some(rd) => {
                    let query: String = form_urlencoded::Serializer::new(String::new())
                        .append_pair("rd", rd)
                        .append_pair("rm", &form.rm)
                        .finish();
                    format!("/?{query}")
                }
                None => "/".to_owned(),
            });
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
                state.0.delays.pad(started.elapsed()).await;
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
                flow_id: &form.flow_id,
                flow_origin: if form.flow_id.is_empty() {
                    None
                } else {
                    crate::oidc::flow_client_origin(&state, &form.flow_id).await
                },
                second_factor: "",
                webauthn: false,
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

/// What the page offers a user at one factor, and whether a security-key button is shown.
async fn second_factor_of(
    state: &AppState,
    parts: &http::request::Parts,
    peer: std::net::IpAddr,
    identity: &Identity,
) -> (&'static str, bool) {
    let Some(rt) = crate::second_factor::runtime(state)
        .filter(|rt| rt.totp.is_some() || rt.webauthn.is_some())
    else {
        return ("", false);
    };
    if identity.level != AuthLevel::OneFactor {
        return ("", false);
    }
    let session = portal_domain(state, parts, peer, None).and_then(|i| {
        portcullis_session::find_session_cookie(
            &parts.headers,
            &state.config().cookies[i].cookie.name,
        )
    });
    if let Some(id) = session
        && rt.passkey_session(&id, state.now()).await == Some(true)
    {
        return ("password", false);
    }
    let webauthn = match crate::second_factor::request_origin(state, parts, peer) {
        Some(origin) => {
            crate::second_factor::has_webauthn(rt, &origin.rp_id, &identity.username).await
        }
        None => false,
    };
    if rt.totp.is_some() && crate::second_factor::has_totp(rt, &identity.username).await {
        ("totp", webauthn)
    } else if webauthn {
        ("webauthn", true)
    } else {
        ("register", false)
    }
}

/// `POST /login/totp` from the page's code form: the same checks as
/// `POST /api/secondfactor/totp`, then a redirect to the (safe) target.
pub(crate) async fn totp_form(State(state): State<AppState>, request: Request) -> Response {
    let peer = peer_of(&request);
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, 16 * 1024)
        .await
        .unwrap_or_default();
    let (mut code, mut csrf, mut rd, mut rm) =
        (String::new(), String::new(), String::new(), String::new());
    for (k, v) in form_urlencoded::parse(&bytes) {
        match k.as_ref() {
            "code" => code = v.into_owned(),
            "csrf" => csrf = v.into_owned(),
            "rd" => rd = v.into_owned(),
            "rm" => rm = v.into_owned(),
            _ => {}
        }
    }
    if !csrf_valid(&state.0.csrf_key, &parts.headers, &csrf) {
        return EdgeError::FormExpired.into_response();
    }
    let Some(rt) = crate::second_factor::runtime(&state).cloned() else {
        return EdgeError::BadRequest("second factors are not enabled").into_response();
    };
    let client = client_of(&state, &parts, peer).addr();
    if let Some(limited) = crate::second_factor::rate_limited(&rt.totp_limit, client, state.now()) {
        return limited;
    }
    let Ok(who) = crate::second_factor::require_one_factor(&state, &parts, peer).await else {
        return see_other("/");
    };
    let domains = all_domains(&state);
    let safe_rd = is_safe_redirect(&rd, &domains).then_some(rd.as_str());
    match crate::second_factor::totp_sign_in(&state, &rt, &who, &code).await {
        Ok(session) => continue_at_two_factors(&state, who.index, &session, safe_rd),
        Err(_) => {
            let page = Page {
                identity: &who.session.identity,
                error: Some("The one-time password is not valid. Try the next one."),
                rd: safe_rd.unwrap_or(""),
                rm: &rm,
                typed_username: "",
                continue_url: None,
                flow_id: "",
                flow_origin: None,
                second_factor: "totp",
                webauthn: false,
            };
            render_page(&state, &parts.headers, StatusCode::FORBIDDEN, page)
        }
    }
}

/// `POST /login/password` from the page's password form after a passkey login: the same checks
/// as `POST /api/secondfactor/password`, then a redirect to the (safe) target.
pub(crate) async fn password_form(State(state): State<AppState>, request: Request) -> Response {
    let peer = peer_of(&request);
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, 16 * 1024)
        .await
        .unwrap_or_default();
    let (mut password, mut csrf, mut rd) = (String::new(), String::new(), String::new());
    for (k, v) in form_urlencoded::parse(&bytes) {
        match k.as_ref() {
            "password" => password = v.into_owned(),
            "csrf" => csrf = v.into_owned(),
            "rd" => rd = v.into_owned(),
            _ => {}
        }
    }
    if !csrf_valid(&state.0.csrf_key, &parts.headers, &csrf) {
        return EdgeError::FormExpired.into_response();
    }
    let Some(rt) = crate::second_factor::runtime(&state).cloned() else {
        return EdgeError::BadRequest("second factors are not enabled").into_response();
    };
    let Ok(who) = crate::second_factor::require_one_factor(&state, &parts, peer).await else {
        return see_other("/");
    };
    let safe_rd = is_safe_redirect(&rd, &all_domains(&state)).then_some(rd.as_str());
    match crate::second_factor::password_second_factor(&state, &rt, &who, &password).await {
        Ok(session) => continue_at_two_factors(&state, who.index, &session, safe_rd),
        Err(_) => {
            let page = Page {
                identity: &who.session.identity,
                error: Some("The password is not correct."),
                rd: safe_rd.unwrap_or(""),
                rm: "",
                typed_username: "",
                continue_url: None,
                flow_id: "",
                flow_origin: None,
                second_factor: "password",
                webauthn: false,
            };
            render_page(&state, &parts.headers, StatusCode::UNAUTHORIZED, page)
        }
    }
}

/// After a second factor from a page's form: to the (safe) target, else the cookie domain's
/// default, else the portal, with the session cookie of the two-factor session.
fn continue_at_two_factors(
    state: &AppState,
    index: usize,
    session: &portcullis_session::Session,
    safe_rd: Option<&str>,
) -> Response {
    let cookie = &state.config().cookies[index];
    let next = safe_rd
        .map(str::to_owned)
        .or_else(|| cookie.default_redirection_url.clone())
        .unwrap_or_else(|| "/".to_owned());
    let mut response = see_other(&next);
    if let Some(v) = session_cookie_header(cookie, session) {
        response.headers_mut().append(SET_COOKIE, v);
    }
    response
}

fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        response.headers_mut().insert(LOCATION, v);
    }
    response
}

/// `GET /static/webauthn.js`: the script of the WebAuthn ceremonies.
pub(crate) async fn webauthn_script() -> Response {
    let mut response = include_str!("../../static/webauthn.js").into_response();
    let h = response.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    h.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    response
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
    if !csrf_valid(&state.0.csrf_key, &parts.headers, &csrf) {
        return EdgeError::FormExpired.into_response();
    }
    let Some(index) = portal_domain(&state, &parts, peer, None) else {
        return EdgeError::BadRequest("no cookie domain for this host").into_response();
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
