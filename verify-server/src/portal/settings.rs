//! The security settings page (`GET /settings`): register and remove the TOTP app without
//! JavaScript — the session is elevated with a mailed one-time code, the new secret is shown as
//! an `otpauth://` QR code (rendered by the `qrcode` crate) and as text, and the app's first
//! code finishes the registration (docs/reference/second-factor.md §1.8, §3.2). Every form
//! carries the page's CSRF token.

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::header::{CONTENT_TYPE, LOCATION, SET_COOKIE};
use http::{HeaderMap, HeaderValue, StatusCode};
use portcullis_second_factor::datetime::rfc3339;

use super::csrf::{csrf_nonce, csrf_token, csrf_valid, new_nonce};
use crate::authz::peer_of;
use crate::error::EdgeError;
use crate::second_factor::{self, Authenticated, SecondFactorRuntime};
use crate::state::AppState;
use std::sync::Arc;

/// What a page shows besides the state.
#[derive(Default)]
struct Message {
    error: Option<&'static str>,
    notice: Option<&'static str>,
    code_sent: bool,
}

fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        response.headers_mut().insert(LOCATION, v);
    }
    response
}

fn qr_svg(uri: &str) -> String {
    match qrcode::QrCode::new(uri.as_bytes()) {
        Ok(code) => code
            .render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(220, 220)
            .quiet_zone(true)
            .build(),
        Err(e) => {
            tracing::warn!(error = %e, "the QR code could not be made; the key is shown as text");
            String::new()
        }
    }
}

async fn render(
    state: &AppState,
    headers: &HeaderMap,
    who: &Authenticated,
    status: StatusCode,
    message: Message,
) -> Response {
    let Some(rt) = second_factor::runtime(state) else {
        return EdgeError::BadRequest("second factors are not enabled").into_response();
    };
    let (nonce, new_cookie) = match csrf_nonce(headers) {
        Some(n) => (n, None),
        None => {
            let (nonce, cookie) = new_nonce();
            (nonce, Some(cookie))
        }
    };
    let identity = &who.session.identity;
    let registration = second_factor::registration(rt, &identity.username).await;
    let elevated = rt
        .elevation_of(&who.session.id, who.ip, state.now())
        .await
        .is_some();
    let pending = second_factor::pending_registration(state, rt, who).await;
    let (secret, uri) = pending.clone().unwrap_or_default();
    let credentials = match (&rt.webauthn, &who.origin) {
        (Some(_), Some(origin)) => {
            second_factor::credentials_of(rt, &origin.rp_id, &identity.username)
                .await
                .unwrap_or_default()
        }
        _ => Vec::new(),
    };
    let webauthn_credentials: Vec<minijinja::Value> = credentials
        .iter()
        .map(|c| {
            minijinja::context! {
                id => c.id,
                description => c.description,
                created => rfc3339(c.created_at),
                last_used => c.last_used_at.map(rfc3339),
                passkey => c.discoverable,
            }
        })
        .collect();
    let html = state.0.templates.settings(minijinja::context! {
        totp_on => rt.totp.is_some(),
        webauthn_on => rt.webauthn.is_some(),
        webauthn_credentials => webauthn_credentials,
        username => identity.username,
        display_name => identity.display_name,
        csrf => csrf_token(&state.0.csrf_key, &nonce),
        error => message.error,
        notice => message.notice,
        code_sent => message.code_sent,
        has_totp => registration.is_some(),
        totp_created => registration.map(|r| rfc3339(r.created_at)),
        elevated => elevated,
        pending => pending.is_some() && elevated,
        qr_svg => if pending.is_some() { qr_svg(&uri) } else { String::new() },
        secret => secret,
        otpauth_url => uri,
    });
    let html = match html {
        Ok(h) => h,
        Err(e) => {
            return EdgeError::Internal(format!("settings page template failed: {e}"))
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

/// `GET /settings`.
pub(crate) async fn settings_page(State(state): State<AppState>, request: Request) -> Response {
    let peer = peer_of(&request);
    let (parts, _) = request.into_parts();
    if second_factor::runtime(&state).is_none_or(|rt| rt.totp.is_none() && rt.webauthn.is_none()) {
        return EdgeError::BadRequest("second factors are not enabled").into_response();
    }
    let Ok(who) = second_factor::require_one_factor(&state, &parts, peer).await else {
        return see_other("/");
    };
    let query = parts.uri.query().unwrap_or("");
    let message = Message {
        code_sent: query.contains("sent=1"),
        notice: if query.contains("sent=1") {
            Some("A code was sent to your email address.")
        } else if query.contains("added=1") {
            Some("The app is registered.")
        } else if query.contains("removed=1") {
            Some("The app is removed.")
        } else if query.contains("registered=webauthn") {
            Some("The security key is registered.")
        } else if query.contains("removed=webauthn") {
            Some("The security key is removed.")
        } else {
            None
        },
        error: None,
    };
    render(&state, &parts.headers, &who, StatusCode::OK, message).await
}

/// The fields a settings form may carry.
#[derive(Default)]
struct Fields {
    code: String,
    id: String,
}

/// The forms' common part: the CSRF check, the runtime, the user, and the fields.
async fn form(
    state: &AppState,
    request: Request,
) -> Result<(Arc<SecondFactorRuntime>, HeaderMap, Authenticated, Fields), Response> {
    let peer = peer_of(&request);
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, 16 * 1024)
        .await
        .unwrap_or_default();
    let (mut csrf, mut fields) = (String::new(), Fields::default());
    for (k, v) in form_urlencoded::parse(&bytes) {
        match k.as_ref() {
            "csrf" => csrf = v.into_owned(),
            "code" => fields.code = v.into_owned(),
            "id" => fields.id = v.into_owned(),
            _ => {}
        }
    }
    if !csrf_valid(&state.0.csrf_key, &parts.headers, &csrf) {
        return Err(EdgeError::FormExpired.into_response());
    }
    let Some(rt) = second_factor::runtime(state).cloned() else {
        return Err(EdgeError::BadRequest("second factors are not enabled").into_response());
    };
    let who = second_factor::require_one_factor(state, &parts, peer)
        .await
        .map_err(|_| see_other("/"))?;
    Ok((rt, parts.headers, who, fields))
}

/// The page again, with `error` announced.
async fn refuse(
    state: &AppState,
    headers: &HeaderMap,
    who: &Authenticated,
    status: StatusCode,
    error: &'static str,
) -> Response {
    let message = Message {
        error: Some(error),
        ..Message::default()
    };
    render(state, headers, who, status, message).await
}

/// `POST /settings/elevate`: mail a code.
pub(crate) async fn elevate(State(state): State<AppState>, request: Request) -> Response {
    let (rt, headers, who, _) = match form(&state, request).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if let Some(limited) =
        second_factor::rate_limited(&rt.elevation_start_limit, who.ip, state.now())
    {
        return limited;
    }
    match second_factor::send_code(&state, &rt, &who).await {
        Ok(_) => see_other("/settings?sent=1"),
        Err(_) => {
            refuse(
                &state,
                &headers,
                &who,
                StatusCode::FORBIDDEN,
                "The code could not be sent. Ask an administrator.",
            )
            .await
        }
    }
}

/// `POST /settings/elevate/confirm`: the mailed code typed back.
pub(crate) async fn confirm(State(state): State<AppState>, request: Request) -> Response {
    let (rt, headers, who, Fields { code, .. }) = match form(&state, request).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if let Some(limited) =
        second_factor::rate_limited(&rt.elevation_finish_limit, who.ip, state.now())
    {
        return limited;
    }
    match second_factor::confirm_code(&state, &rt, &who, &code).await {
        Ok(()) => see_other("/settings"),
        Err(_) => {
            let message = Message {
                error: Some(
                    "The code is not valid: it may have expired, been used already, or been requested from another network.",
                ),
                code_sent: true,
                ..Message::default()
            };
            render(&state, &headers, &who, StatusCode::FORBIDDEN, message).await
        }
    }
}

const NOT_ELEVATED: &str = "Confirm it is you first: ask for a code and type it in.";

/// `POST /settings/totp/begin`.
pub(crate) async fn totp_begin(State(state): State<AppState>, request: Request) -> Response {
    let (rt, headers, who, _) = match form(&state, request).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if !second_factor::is_elevated(&state, &rt, &who).await {
        return refuse(&state, &headers, &who, StatusCode::FORBIDDEN, NOT_ELEVATED).await;
    }
    match second_factor::begin_registration(&state, &rt, &who, None).await {
        Ok(_) => see_other("/settings"),
        Err(_) => {
            refuse(
                &state,
                &headers,
                &who,
                StatusCode::SERVICE_UNAVAILABLE,
                "The registration could not be started. Try again later.",
            )
            .await
        }
    }
}

/// `POST /settings/totp/finish`.
pub(crate) async fn totp_finish(State(state): State<AppState>, request: Request) -> Response {
    let (rt, headers, who, Fields { code, .. }) = match form(&state, request).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if !second_factor::is_elevated(&state, &rt, &who).await {
        return refuse(&state, &headers, &who, StatusCode::FORBIDDEN, NOT_ELEVATED).await;
    }
    match second_factor::finish_registration(&state, &rt, &who, &code).await {
        Ok(()) => see_other("/settings?added=1"),
        Err(_) => {
            refuse(
                &state,
                &headers,
                &who,
                StatusCode::FORBIDDEN,
                "The code does not match. Check the app's clock and try the next code.",
            )
            .await
        }
    }
}

/// `POST /settings/totp/remove`.
pub(crate) async fn totp_remove(State(state): State<AppState>, request: Request) -> Response {
    let (rt, headers, who, _) = match form(&state, request).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if !second_factor::is_elevated(&state, &rt, &who).await {
        return refuse(&state, &headers, &who, StatusCode::FORBIDDEN, NOT_ELEVATED).await;
    }
    match second_factor::remove_registration(&state, &rt, &who).await {
        Ok(()) => see_other("/settings?removed=1"),
        Err(_) => {
            refuse(
                &state,
                &headers,
                &who,
                StatusCode::FORBIDDEN,
                "There is no app to remove.",
            )
            .await
        }
    }
}

/// `POST /settings/webauthn/remove`: remove one security key (works without JavaScript).
pub(crate) async fn webauthn_remove(State(state): State<AppState>, request: Request) -> Response {
    let (rt, headers, who, fields) = match form(&state, request).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if !second_factor::is_elevated(&state, &rt, &who).await {
        return refuse(&state, &headers, &who, StatusCode::FORBIDDEN, NOT_ELEVATED).await;
    }
    let removed = match fields.id.parse::<i64>() {
        Ok(id) => second_factor::delete_credential(&state, &rt, &who, id).await,
        Err(_) => Err(StatusCode::BAD_REQUEST),
    };
    match removed {
        Ok(()) => see_other("/settings?removed=webauthn"),
        Err(status) => {
            refuse(
                &state,
                &headers,
                &who,
                status,
                "There is no such security key.",
            )
            .await
        }
    }
}
