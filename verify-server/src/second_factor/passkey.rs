//! Passkey login (docs/reference/second-factor.md §2.4, `webauthn.enable_passkey_login`):
//! `GET`/`POST /api/firstfactor/passkey` sign in with a discoverable credential, found by its
//! user handle; the session is then one factor (possession), or two under
//! `experimental_enable_passkey_uv_two_factors` when the user was verified. Its second factor
//! is the password, at `POST /api/secondfactor/password`.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::routing::{get, post};
use http::StatusCode;
use http::header::SET_COOKIE;
use portcullis_core::AuthLevel;
use portcullis_second_factor::sqlite::StoredWebAuthnCredential;
use portcullis_session::Session;
use portcullis_webauthn::encoding::base64_standard;
use portcullis_webauthn::options::request_options;
use rand::Rng;
use serde::Deserialize;
use serde_json::{Value, json};

use super::respond::{Continuation, raise_to_two_factor, two_factor_response};
use super::webauthn::{
    AssertionFailure, MAX_BODY, blocking, check_assertion, parse_assertion, request_origin,
};
use super::{
    Authenticated, Ceremony, MFA_FAILED, SecondFactorRuntime, require_one_factor, runtime,
};
use crate::authz::{CookieResult, cookie_session, peer_of};
use crate::portal::{
    client_of, json_object, ko, ok, portal_domain_of, redirect_after_login, session_cookie_header,
    start_session,
};
use crate::state::AppState;

const PASSWORD_FAILED: &str = "Authentication failed. Check your credentials.";

/// `GET /api/firstfactor/passkey`: options for a discoverable credential. Only for a request
/// without a logged-in session (Authelia answers 403 otherwise).
async fn options(State(state): State<AppState>, request: Request) -> Response {
    let peer = peer_of(&request);
    let (parts, _) = request.into_parts();
    let Some(rt) = runtime(&state).cloned() else {
        return ko(StatusCode::FORBIDDEN, MFA_FAILED);
    };
    let Some(config) = rt.webauthn.as_ref().filter(|w| w.passkey_login) else {
        return ko(StatusCode::FORBIDDEN, MFA_FAILED);
    };
    let Some(index) = portal_domain_of(&state, &parts, peer) else {
        return ko(StatusCode::FORBIDDEN, MFA_FAILED);
    };
    let now = state.now();
    let cookie = &state.config().cookies[index];
    if let CookieResult::Valid(identity) = cookie_session(&state, &parts.headers, cookie, now).await
        && identity.level >= AuthLevel::OneFactor
    {
        tracing::info!(user = %identity.username, "passkey challenge refused: the session is already logged in");
        return ko(StatusCode::FORBIDDEN, MFA_FAILED);
    }
    let Some(origin) = request_origin(&state, &parts, peer) else {
        return ko(StatusCode::FORBIDDEN, MFA_FAILED);
    };
    let challenge = portcullis_webauthn::encoding::Challenge::new(rand::rng().random());
    let options = request_options(
        &origin.rp_id,
        &challenge,
        config.timeout.saturating_mul(1000),
        &[],
        config.selection.user_verification,
        None,
    );
    let ceremony = Ceremony {
        challenge,
        origin,
        expires: now + config.timeout,
        description: None,
    };
    if !rt.set_passkey_login(ceremony, now).await {
        tracing::warn!("passkey challenge refused: too many ceremonies in progress");
        return ko(StatusCode::FORBIDDEN, MFA_FAILED);
    }
    ok(Some(json!({"publicKey": options})))
}

#[derive(Deserialize)]
struct PasskeyBody {
    response: Value,
    #[serde(rename = "keepMeLoggedIn", default)]
    keep_me_logged_in: Option<bool>,
    #[serde(rename = "requestMethod", default)]
    request_method: Option<String>,
    #[serde(flatten)]
    next: Continuation,
}

/// Why a passkey login failed: the status.
fn refused() -> Response {
    ko(StatusCode::FORBIDDEN, MFA_FAILED)
}

/// `POST /api/firstfactor/passkey`.
async fn sign_in(State(state): State<AppState>, request: Request) -> Response {
    let peer = peer_of(&request);
    let (parts, body) = request.into_parts();
    let Some(rt) = runtime(&state).cloned() else {
        return refused();
    };
    let Some(config) = rt.webauthn.clone().filter(|w| w.passkey_login) else {
        return refused();
    };
    let Some(index) = portal_domain_of(&state, &parts, peer) else {
        return refused();
    };
    let cookie = &state.config().cookies[index];
    let client = client_of(&state, &parts, peer);
    let now = state.now();
    let bytes = axum::body::to_bytes(body, MAX_BODY)
        .await
        .unwrap_or_default();
    let Some(body) = json_object::<PasskeyBody>(&bytes) else {
        tracing::info!("passkey login refused: malformed body");
        return ko(StatusCode::BAD_REQUEST, MFA_FAILED);
    };
    let Ok(response) = parse_assertion(body.response) else {
        return ko(StatusCode::BAD_REQUEST, MFA_FAILED);
    };
    let (Ok(challenge), Ok(credential_id), Ok(handle)) = (
        response.challenge(),
        response.credential_id(),
        response.user_handle(),
    ) else {
        tracing::info!("passkey login refused: malformed response");
        return ko(StatusCode::BAD_REQUEST, MFA_FAILED);
    };
    let Some(ceremony) = rt.take_passkey_login(&challenge, now).await else {
        tracing::info!("passkey login refused: no challenge pending (or it expired)");
        return refused();
    };
    let Some(handle) = handle else {
        tracing::info!("passkey login refused: the authenticator returned no user handle");
        return refused();
    };
    let store = rt.store.clone();
    let rp_id = ceremony.origin.rp_id.clone();
    let kid = base64_standard(&credential_id);
    let found = blocking(move || {
        let Some(user) = store.webauthn_user_by_handle(&rp_id, &handle)? else {
            return Ok(None);
        };
        let credential = store.webauthn_credential_by_kid(&rp_id, &kid)?;
        Ok(credential.filter(|c| c.username == user))
    })
    .await;
    let credential: StoredWebAuthnCredential = match found {
        Ok(Some(c)) => c,
        Ok(None) => {
            tracing::info!(
                "passkey login refused: no credential with that id for that user handle"
            );
            return refused();
        }
        Err(e) => {
            tracing::error!(error = %e, "passkey login refused: the credentials cannot be read");
            return refused();
        }
    };
    let username = credential.username.clone();
    if !credential.discoverable && !config.passkey_upgrade {
        tracing::info!(user = %username, "passkey login refused: the credential is not discoverable");
        return refused();
    }
    let user = match state.user_named(&username).await {
        Ok(Some(user)) => user,
        Ok(None) => {
            tracing::info!(user = %username, "passkey login refused: the user is not in the backend");
            return refused();
        }
        Err(e) => {
            tracing::error!(user = %username, error = %e, "passkey login refused: the user directory is unavailable");
            return refused();
        }
    };
    if state
        .0
        .regulator
        .is_banned(Some(&username), client.addr(), now)
        .await
    {
        tracing::info!(user = %username, "passkey login refused: the user is banned by regulation");
        return ko(StatusCode::UNAUTHORIZED, MFA_FAILED);
    }
    let verified =
        match check_assertion(&state, &rt, &config, &response, &ceremony, &credential).await {
            Ok(v) => v,
            Err(AssertionFailure::Malformed | AssertionFailure::Refused) => {
                state
                    .0
                    .regulator
                    .record(&username, client.addr(), false, now)
                    .await;
                return refused();
            }
        };
    state
        .0
        .regulator
        .record(&username, client.addr(), true, now)
        .await;
    if !credential.discoverable {
        let store = rt.store.clone();
        let id = credential.id;
        if let Err(e) = blocking(move || store.mark_webauthn_discoverable(id)).await {
            tracing::warn!(user = %username, error = %e, "the upgraded passkey could not be marked discoverable");
        }
    }
    let level = if config.passkey_uv_two_factors && verified.flags.user_verified() {
        AuthLevel::TwoFactor
    } else {
        AuthLevel::OneFactor
    };
    let remember = body.keep_me_logged_in.unwrap_or(false);
    let Ok(session) = start_session(&state, &parts.headers, cookie, &user, level, remember).await
    else {
        return refused();
    };
    if level == AuthLevel::OneFactor
        && !rt
            .mark_passkey_session(&session.id, session.expires_at, now)
            .await
    {
        let _ = state.sessions().delete(&session.id).await;
        return refused();
    }
    state.0.metrics.login("success");
    tracing::info!(user = %username, level = ?level, "login with a passkey succeeded");
    let redirect = match body.next.openid_flow() {
        Some(flow_id) => crate::oidc::flow_redirect_after_login(&state, flow_id).await,
        None => redirect_after_login(
            &state,
            cookie,
            &session.identity,
            body.next.target_url.as_deref(),
            body.request_method.as_deref(),
            client,
        ),
    };
    let mut answer = ok(redirect.map(|r| json!({"redirect": r})));
    if let Some(v) = session_cookie_header(cookie, &session) {
        answer.headers_mut().append(SET_COOKIE, v);
    }
    answer
}

#[derive(Deserialize)]
struct PasswordBody {
    password: String,
    #[serde(flatten)]
    next: Continuation,
}

/// The password as the second factor of `who`'s passkey login: the session at two factors, or
/// the status of the refusal (403: not a passkey session; 401: wrong password).
pub(crate) async fn password_second_factor(
    state: &AppState,
    rt: &Arc<SecondFactorRuntime>,
    who: &Authenticated,
    password: &str,
) -> Result<Session, StatusCode> {
    let now = state.now();
    let user = &who.session.identity.username;
    if rt.passkey_session(&who.session.id, now).await != Some(true) {
        tracing::info!(user = %user, "password as second factor refused: the session did not log in with a passkey");
        return Err(StatusCode::FORBIDDEN);
    }
    let users = state.users();
    let accepted = state
        .password_check(&users, None)
        .check(user, password, who.ip, now)
        .await;
    match accepted {
        Ok(a) if a.user.username == *user => {}
        Ok(_) | Err(_) => {
            tracing::info!(user = %user, "password as second factor refused");
            return Err(StatusCode::UNAUTHORIZED);
        }
    }
    let session = raise_to_two_factor(state, rt, who)
        .await
        .ok_or(StatusCode::UNAUTHORIZED)?;
    tracing::info!(user = %user, "second factor (password after a passkey) succeeded");
    Ok(session)
}

/// `POST /api/secondfactor/password`: the password as the second factor of a passkey login.
async fn password(State(state): State<AppState>, request: Request) -> Response {
    let peer = peer_of(&request);
    let (parts, body) = request.into_parts();
    let who = match require_one_factor(&state, &parts, peer).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let Some(rt) = runtime(&state).cloned() else {
        return ko(StatusCode::UNAUTHORIZED, PASSWORD_FAILED);
    };
    let bytes = axum::body::to_bytes(body, MAX_BODY)
        .await
        .unwrap_or_default();
    let Some(body) = json_object::<PasswordBody>(&bytes) else {
        return ko(StatusCode::BAD_REQUEST, PASSWORD_FAILED);
    };
    let session = match password_second_factor(&state, &rt, &who, &body.password).await {
        Ok(s) => s,
        Err(status) => return ko(status, PASSWORD_FAILED),
    };
    two_factor_response(&state, &who, &session, &body.next).await
}

/// The passkey routes (present when `webauthn.enable_passkey_login` is on).
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/firstfactor/passkey", get(options).post(sign_in))
        .route("/api/secondfactor/password", post(password))
}
