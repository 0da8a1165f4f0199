//! TOTP at the portal (docs/reference/second-factor.md §1.4–1.8): the user's registration,
//! sign-in with a code (the session id changes and the level becomes two factors), and
//! registration behind an elevated session.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::Response;
use http::StatusCode;
use portcullis_second_factor::SecondFactorError;
use portcullis_second_factor::datetime::rfc3339;
use portcullis_second_factor::otpauth::otpauth_uri;
use portcullis_second_factor::sqlite::TotpRegistration;
use portcullis_second_factor::totp::{
    Algorithm, Digits, Period, TotpParameters, TotpSecret, validate,
};
use portcullis_session::Session;
use rand::Rng;
use serde::Deserialize;
use serde_json::{Value, json};

use super::notifier::{Recipient, event_body};
use super::respond::{Continuation, raise_to_two_factor, rate_limited, two_factor_response};
use super::{
    Authenticated, MFA_FAILED, PENDING_TOTP_LIFESPAN, PendingTotp, SecondFactorRuntime,
    require_elevated, require_one_factor, runtime,
};
use crate::authz::peer_of;
use crate::portal::{json_object, ko, ok};
use crate::state::AppState;

const SETUP_FAILED: &str = "Unable to set up one-time password.";
const DELETE_FAILED: &str = "Unable to delete one-time password.";
const NOT_FOUND: &str = "Could not find TOTP Configuration for user.";
const TOTP_METHOD: &str = "Time-based One-Time Password";

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, SecondFactorError> + Send + 'static,
) -> Result<T, SecondFactorError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| SecondFactorError::Storage(e.to_string()))?
}

async fn registration_of(
    rt: &Arc<SecondFactorRuntime>,
    username: &str,
) -> Result<Option<TotpRegistration>, SecondFactorError> {
    let store = rt.store.clone();
    let user = username.to_owned();
    blocking(move || store.totp(&user)).await
}

/// `GET /api/secondfactor/totp`.
pub(super) async fn configuration(State(state): State<AppState>, request: Request) -> Response {
    let peer = peer_of(&request);
    let (parts, _) = request.into_parts();
    let who = match require_one_factor(&state, &parts, peer).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let Some(rt) = runtime(&state) else {
        return ko(StatusCode::NOT_FOUND, NOT_FOUND);
    };
    match registration_of(rt, &who.session.identity.username).await {
        Ok(Some(r)) => {
            let mut data = json!({
                "created_at": rfc3339(r.created_at),
                "issuer": r.issuer,
                "algorithm": r.parameters.algorithm.as_str(),
                "digits": r.parameters.digits.get(),
                "period": r.parameters.period.get(),
            });
            if let Some(used) = r.last_used_at {
                data["last_used_at"] = Value::String(rfc3339(used));
            }
            ok(Some(data))
        }
        Ok(None) => ko(StatusCode::NOT_FOUND, NOT_FOUND),
        Err(e) => {
            tracing::error!(error = %e, "TOTP configuration could not be read");
            ko(StatusCode::INTERNAL_SERVER_ERROR, NOT_FOUND)
        }
    }
}

#[derive(Deserialize)]
struct SignInBody {
    token: String,
    #[serde(flatten)]
    next: Continuation,
}

/// Why a TOTP sign-in failed: the status the JSON API answers with (the message is always
/// [`MFA_FAILED`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SignInFailure {
    /// 400: a code of neither 6 nor 8 characters.
    Malformed,
    /// 403: everything else (wrong, replayed, banned, no registration, storage failure).
    Refused,
}

impl SignInFailure {
    pub(crate) fn status(self) -> StatusCode {
        match self {
            Self::Malformed => StatusCode::BAD_REQUEST,
            Self::Refused => StatusCode::FORBIDDEN,
        }
    }
}

/// Check `code` for the user of `who` (docs/reference/second-factor.md §1.6 steps 3–8) and, on
/// success, return the session raised to two factors under a new id.
pub(crate) async fn totp_sign_in(
    state: &AppState,
    rt: &Arc<SecondFactorRuntime>,
    who: &Authenticated,
    code: &str,
) -> Result<Session, SignInFailure> {
    let Some(config) = &rt.totp else {
        return Err(SignInFailure::Refused);
    };
    let now = state.now();
    let client = who.ip;
    let code = code.trim();
    if code.len() != 6 && code.len() != 8 {
        return Err(SignInFailure::Malformed);
    }
    let user = who.session.identity.username.clone();
    if rt.is_passkey_session(&who.session.id, now).await {
        tracing::info!(user = %user, "TOTP sign-in refused: a passkey session needs its password as the second factor");
        return Err(SignInFailure::Refused);
    }
    // Beyond Authelia: failed codes count toward regulation, so a banned user is refused here too.
    if state.0.regulator.is_banned(Some(&user), client, now).await {
        tracing::info!(user = %user, "TOTP sign-in refused: the user is banned by regulation");
        return Err(SignInFailure::Refused);
    }
    let registration = match registration_of(rt, &user).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            tracing::info!(user = %user, "TOTP sign-in refused: no TOTP registration");
            return Err(SignInFailure::Refused);
        }
        Err(e) => {
            tracing::error!(user = %user, error = %e, "TOTP sign-in refused: the registration cannot be read");
            return Err(SignInFailure::Refused);
        }
    };
    let matched = match validate(
        &registration.secret,
        registration.parameters,
        code,
        now,
        config.skew,
    ) {
        Ok(Some(m)) => m,
        Ok(None) => {
            tracing::info!(user = %user, "TOTP sign-in failed: wrong code");
            state.0.regulator.record(&user, client, false, now).await;
            return Err(SignInFailure::Refused);
        }
        Err(e) => {
            tracing::info!(user = %user, reason = %e, "TOTP sign-in refused");
            return Err(SignInFailure::Refused);
        }
    };
    let window = matched.window_start(registration.parameters.period);
    let store = rt.store.clone();
    let name = user.clone();
    let first_use = blocking(move || store.record_totp_window(&name, window, now as i64)).await;
    match first_use {
        Ok(true) => {}
        Ok(false) if config.reuse_protection => {
            tracing::warn!(user = %user, "TOTP sign-in refused: the code was already used");
            return Err(SignInFailure::Refused);
        }
        Ok(false) => {
            tracing::warn!(user = %user, "TOTP code reused (totp.disable_reuse_security_policy is set)");
        }
        Err(e) => {
            tracing::error!(user = %user, error = %e, "TOTP sign-in refused: the history cannot be written");
            return Err(SignInFailure::Refused);
        }
    }
    state.0.regulator.record(&user, client, true, now).await;
    let store = rt.store.clone();
    let name = user.clone();
    if let Err(e) = blocking(move || store.touch_totp(&name, now as i64)).await {
        tracing::warn!(user = %user, error = %e, "could not note the TOTP use");
    }
    let session = raise_to_two_factor(state, rt, who)
        .await
        .ok_or(SignInFailure::Refused)?;
    tracing::info!(user = %user, "second factor (TOTP) succeeded");
    Ok(session)
}

/// The TOTP registration of `username` (`None` also when it cannot be read).
pub(crate) async fn registration(
    rt: &Arc<SecondFactorRuntime>,
    username: &str,
) -> Option<TotpRegistration> {
    registration_of(rt, username).await.ok().flatten()
}

/// Whether the user of `who` has a TOTP registration (false when it cannot be read).
pub(crate) async fn has_totp(rt: &Arc<SecondFactorRuntime>, username: &str) -> bool {
    matches!(registration_of(rt, username).await, Ok(Some(_)))
}

/// `POST /api/secondfactor/totp`: sign in with a code.
pub(super) async fn sign_in(State(state): State<AppState>, request: Request) -> Response {
    let peer = peer_of(&request);
    let (parts, body) = request.into_parts();
    let Some(rt) = runtime(&state).cloned() else {
        return ko(StatusCode::FORBIDDEN, MFA_FAILED);
    };
    let now = state.now();
    let client = crate::portal::client_of(&state, &parts, peer).addr();
    if let Some(r) = rate_limited(&rt.totp_limit, client, now) {
        return r;
    }
    let who = match require_one_factor(&state, &parts, peer).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let bytes = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let Some(body) = json_object::<SignInBody>(&bytes) else {
        tracing::info!("TOTP sign-in refused: malformed body");
        return ko(StatusCode::FORBIDDEN, MFA_FAILED);
    };
    let session = match totp_sign_in(&state, &rt, &who, &body.token).await {
        Ok(s) => s,
        Err(failure) => return ko(failure.status(), MFA_FAILED),
    };
    two_factor_response(&state, &who, &session, &body.next).await
}

/// Remove the TOTP registration of `who` (the caller checked the elevation); the error is the
/// JSON API's status.
pub(crate) async fn remove_registration(
    state: &AppState,
    rt: &SecondFactorRuntime,
    who: &Authenticated,
) -> Result<(), StatusCode> {
    let store = rt.store.clone();
    let user = who.session.identity.username.clone();
    let name = user.clone();
    match blocking(move || store.delete_totp(&name)).await {
        Ok(true) => {
            tracing::info!(user = %user, "TOTP registration removed");
            notify_event(
                state,
                rt,
                who,
                "a Second Factor Method was removed from your account",
                "Second Factor Method Removed",
                TOTP_METHOD,
            )
            .await;
            Ok(())
        }
        Ok(false) => Err(StatusCode::FORBIDDEN),
        Err(e) => {
            tracing::error!(user = %user, error = %e, "TOTP registration could not be removed");
            Err(StatusCode::FORBIDDEN)
        }
    }
}

/// `DELETE /api/secondfactor/totp` (elevated, as at Authelia's HEAD).
pub(super) async fn remove(State(state): State<AppState>, request: Request) -> Response {
    let peer = peer_of(&request);
    let (parts, _) = request.into_parts();
    let (rt, who) = match require_elevated(&state, &parts, peer).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    match remove_registration(&state, &rt, &who).await {
        Ok(()) => ok(None),
        Err(status) => ko(status, DELETE_FAILED),
    }
}

/// Mail the user that a method was added or removed (when there is a notifier and an address).
pub(super) async fn notify_event(
    state: &AppState,
    rt: &SecondFactorRuntime,
    who: &Authenticated,
    event: &str,
    subject: &str,
    method: &str,
) {
    let (Some(notifier), Some(address)) = (&rt.notifier, who.session.identity.emails.first())
    else {
        return;
    };
    let name = &who.session.identity.display_name;
    let details = [("Method", method.to_owned())];
    let to = Recipient {
        display_name: name.clone(),
        address: address.clone(),
    };
    if let Err(e) = notifier
        .send(
            &to,
            subject,
            &event_body(name, event, &details),
            state.now(),
        )
        .await
    {
        tracing::warn!(error = %e, "the event notification could not be sent");
    }
}

/// `GET /api/secondfactor/totp/register`: what the user may choose.
pub(super) async fn options(State(state): State<AppState>, request: Request) -> Response {
    let peer = peer_of(&request);
    let (parts, _) = request.into_parts();
    let (rt, _) = match require_elevated(&state, &parts, peer).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Some(c) = &rt.totp else {
        return ko(StatusCode::FORBIDDEN, SETUP_FAILED);
    };
    ok(Some(json!({
        "algorithm": c.default.algorithm.as_str(),
        "algorithms": c.allowed_algorithms.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
        "length": c.default.digits.get(),
        "lengths": c.allowed_digits.iter().map(|d| d.get()).collect::<Vec<_>>(),
        "period": c.default.period.get(),
        "periods": c.allowed_periods.iter().map(|p| p.get()).collect::<Vec<_>>(),
    })))
}

#[derive(Deserialize)]
struct BeginBody {
    algorithm: String,
    length: u32,
    period: u64,
}

/// Start a registration for `who` with `parameters` (checked against the allowed lists): a
/// fresh secret kept with the session for ten minutes; its base32 text and `otpauth://` URI.
pub(crate) async fn begin_registration(
    state: &AppState,
    rt: &SecondFactorRuntime,
    who: &Authenticated,
    parameters: Option<TotpParameters>,
) -> Result<(String, String), StatusCode> {
    let Some(c) = &rt.totp else {
        return Err(StatusCode::FORBIDDEN);
    };
    let parameters = parameters.unwrap_or(c.default);
    let allowed = c.allowed_algorithms.contains(&parameters.algorithm)
        && c.allowed_digits.contains(&parameters.digits)
        && c.allowed_periods.contains(&parameters.period);
    if !allowed {
        return Err(StatusCode::BAD_REQUEST);
    }
    let secret = {
        let mut rng = rand::rng();
        TotpSecret::from_bytes((0..c.secret_size).map(|_| rng.random()).collect())
    };
    let now = state.now();
    let uri = otpauth_uri(
        &c.issuer,
        &who.session.identity.username,
        parameters,
        &secret,
    );
    let base32 = secret.to_base32();
    let pending = PendingTotp {
        secret,
        parameters,
        expires: now + PENDING_TOTP_LIFESPAN,
    };
    if !rt.set_pending(&who.session.id, pending, now).await {
        tracing::warn!("TOTP registration refused: too many registrations in progress");
        return Err(StatusCode::SERVICE_UNAVAILABLE);
    }
    Ok((base32, uri))
}

/// The pending registration of `who`: its base32 text and URI (for the settings page).
pub(crate) async fn pending_registration(
    state: &AppState,
    rt: &SecondFactorRuntime,
    who: &Authenticated,
) -> Option<(String, String)> {
    let c = rt.totp.as_ref()?;
    let p = rt.pending(&who.session.id, state.now()).await?;
    Some((
        p.secret.to_base32(),
        otpauth_uri(
            &c.issuer,
            &who.session.identity.username,
            p.parameters,
            &p.secret,
        ),
    ))
}

/// `PUT /api/secondfactor/totp/register`: a fresh secret, kept with the session for ten minutes.
pub(super) async fn begin(State(state): State<AppState>, request: Request) -> Response {
    let peer = peer_of(&request);
    let (parts, body) = request.into_parts();
    let (rt, who) = match require_elevated(&state, &parts, peer).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let bytes = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let Some(body) = json_object::<BeginBody>(&bytes) else {
        return ko(StatusCode::BAD_REQUEST, SETUP_FAILED);
    };
    let parameters = match (
        Algorithm::parse(&body.algorithm),
        Digits::new(body.length),
        Period::new(body.period),
    ) {
        (Ok(algorithm), Ok(digits), Ok(period)) => TotpParameters {
            algorithm,
            digits,
            period,
        },
        _ => return ko(StatusCode::BAD_REQUEST, SETUP_FAILED),
    };
    match begin_registration(&state, &rt, &who, Some(parameters)).await {
        Ok((base32, uri)) => ok(Some(json!({"base32_secret": base32, "otpauth_url": uri}))),
        Err(status) => ko(status, SETUP_FAILED),
    }
}

#[derive(Deserialize)]
struct FinishBody {
    token: String,
}

/// Finish the pending registration of `who` with its first code; the error is the JSON API's
/// status.
pub(crate) async fn finish_registration(
    state: &AppState,
    rt: &SecondFactorRuntime,
    who: &Authenticated,
    token: &str,
) -> Result<(), StatusCode> {
    let Some(c) = rt.totp.clone() else {
        return Err(StatusCode::FORBIDDEN);
    };
    let now = state.now();
    let Some(pending) = rt.pending(&who.session.id, now).await else {
        return Err(StatusCode::FORBIDDEN);
    };
    let matched = match validate(&pending.secret, pending.parameters, token, now, c.skew) {
        Ok(Some(m)) => m,
        _ => return Err(StatusCode::FORBIDDEN),
    };
    let user = who.session.identity.username.clone();
    let registration = TotpRegistration {
        username: user.clone(),
        issuer: c.issuer.clone(),
        parameters: pending.parameters,
        secret: pending.secret.clone(),
        created_at: now as i64,
        last_used_at: None,
    };
    let window = matched.window_start(pending.parameters.period);
    let store = rt.store.clone();
    let saved = blocking(move || {
        if c.reuse_protection {
            store.record_totp_window(&registration.username, window, now as i64)?;
        }
        store.save_totp(&registration, &mut rand::rng())
    })
    .await;
    if let Err(e) = saved {
        tracing::error!(user = %user, error = %e, "TOTP registration could not be saved");
        return Err(StatusCode::FORBIDDEN);
    }
    rt.clear_pending(&who.session.id).await;
    tracing::info!(user = %user, "TOTP registration saved");
    notify_event(
        state,
        rt,
        who,
        "a Second Factor Method was added to your account",
        "Second Factor Method Added",
        TOTP_METHOD,
    )
    .await;
    Ok(())
}

/// `POST /api/secondfactor/totp/register`: the first code proves the app has the secret.
pub(super) async fn finish(State(state): State<AppState>, request: Request) -> Response {
    let peer = peer_of(&request);
    let (parts, body) = request.into_parts();
    let (rt, who) = match require_elevated(&state, &parts, peer).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if rt.pending(&who.session.id, state.now()).await.is_none() {
        return ko(StatusCode::FORBIDDEN, SETUP_FAILED);
    }
    let bytes = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let Some(body) = json_object::<FinishBody>(&bytes) else {
        return ko(StatusCode::BAD_REQUEST, SETUP_FAILED);
    };
    match finish_registration(&state, &rt, &who, &body.token).await {
        Ok(()) => ok(None),
        Err(status) => ko(status, SETUP_FAILED),
    }
}

/// `DELETE /api/secondfactor/totp/register`: forget a pending registration.
pub(super) async fn cancel(State(state): State<AppState>, request: Request) -> Response {
    let peer = peer_of(&request);
    let (parts, _) = request.into_parts();
    let (rt, who) = match require_elevated(&state, &parts, peer).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    rt.clear_pending(&who.session.id).await;
    ok(None)
}
