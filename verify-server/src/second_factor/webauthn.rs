//! WebAuthn at the portal (docs/reference/second-factor.md §2.2–2.4): the second-factor
//! assertion, registration behind an elevated session, and the user's credentials (list, rename,
//! delete). The RP ID is the host of the request's origin (the portal host), as in Authelia, so
//! credentials registered with Authelia under the same host keep working.

use std::net::IpAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::response::Response;
use axum::routing::{get, put};
use http::StatusCode;
use portcullis_second_factor::SecondFactorError;
use portcullis_second_factor::sqlite::StoredWebAuthnCredential;
use portcullis_session::Session;
use portcullis_webauthn::ceremony::{
    AssertionResponse, Expectation, StoredCredential, VerifiedAssertion, verify_assertion,
};
use portcullis_webauthn::encoding::{Challenge, base64_standard, decode_binary};
use portcullis_webauthn::options::{CredentialDescriptor, request_options};
use rand::Rng;
use serde::Deserialize;
use serde_json::{Value, json};

use super::respond::{Continuation, raise_to_two_factor, two_factor_response};
use super::{
    Authenticated, Ceremony, MFA_FAILED, SecondFactorRuntime, require_one_factor, runtime,
};
use super::{webauthn_credentials, webauthn_registration};
use crate::authz::peer_of;
use crate::config::WebAuthnConfig;
use crate::portal::{json_object, ko, ok};
use crate::state::AppState;

pub(super) const REGISTER_FAILED: &str = "Unable to register your security key.";
pub(super) const DUPLICATE_NAME: &str =
    "Another one of your security keys is already registered with that display name.";
pub(super) const WEBAUTHN_METHOD: &str = "WebAuthn Credential";
/// The largest body a ceremony answer may have.
pub(super) const MAX_BODY: usize = 64 * 1024;

/// The origin of a portal request and the RP ID it gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WebOrigin {
    /// `scheme://host[:port]`, as the browser writes it in `clientDataJSON`.
    pub(crate) origin: String,
    /// The host.
    pub(crate) rp_id: String,
}

/// The request's origin: `X-Forwarded-Proto` and `X-Forwarded-Host` from a trusted proxy, else
/// the server's own scheme and `Host` (docs/reference/second-factor.md §2.2).
pub(crate) fn request_origin(state: &AppState, parts: &Parts, peer: IpAddr) -> Option<WebOrigin> {
    let trusted = state.config().trusted_proxies.contains(peer);
    let header = |name: &str| {
        trusted
            .then(|| parts.headers.get(name))
            .flatten()
            .and_then(|v| v.to_str().ok())
    };
    let own_scheme = if state.config().tls.is_some() {
        "https"
    } else {
        "http"
    };
    let scheme = match header("x-forwarded-proto") {
        Some(p) if p.eq_ignore_ascii_case("https") => "https",
        Some(p) if p.eq_ignore_ascii_case("http") => "http",
        Some(_) => return None,
        None => own_scheme,
    };
    let host = header("x-forwarded-host")
        .or_else(|| parts.headers.get(http::header::HOST)?.to_str().ok())?;
    if host.contains(['/', '?', '#', '@', '\\']) {
        return None;
    }
    let url = url::Url::parse(&format!("{scheme}://{host}/")).ok()?;
    let rp_id = url.host_str()?.to_owned();
    Some(WebOrigin {
        origin: url.origin().ascii_serialization(),
        rp_id,
    })
}

pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, SecondFactorError> + Send + 'static,
) -> Result<T, SecondFactorError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| SecondFactorError::Storage(e.to_string()))?
}

/// `username`'s credentials at `rp_id`.
pub(crate) async fn credentials_of(
    rt: &SecondFactorRuntime,
    rp_id: &str,
    username: &str,
) -> Result<Vec<StoredWebAuthnCredential>, SecondFactorError> {
    let store = rt.store.clone();
    let (rp_id, username) = (rp_id.to_owned(), username.to_owned());
    blocking(move || store.webauthn_credentials_of(&rp_id, &username)).await
}

/// Whether `username` has a credential at `rp_id` (false when it cannot be read).
pub(crate) async fn has_webauthn(rt: &SecondFactorRuntime, rp_id: &str, username: &str) -> bool {
    rt.webauthn.is_some()
        && credentials_of(rt, rp_id, username)
            .await
            .is_ok_and(|c| !c.is_empty())
}

pub(super) fn descriptor(c: &StoredWebAuthnCredential) -> Option<CredentialDescriptor> {
    Some(CredentialDescriptor {
        id: decode_binary("kid", &c.kid).ok()?,
        transports: c.transports.clone(),
    })
}

pub(super) fn timeout_ms(config: &WebAuthnConfig) -> u64 {
    config.timeout.saturating_mul(1000)
}

pub(super) fn new_challenge() -> Challenge {
    Challenge::new(rand::rng().random())
}

/// The config and origin every WebAuthn route needs (`None`: Authelia's 403).
pub(super) fn context<'a>(
    state: &AppState,
    rt: &'a SecondFactorRuntime,
    parts: &Parts,
    peer: IpAddr,
) -> Option<(&'a WebAuthnConfig, WebOrigin)> {
    let config = rt.webauthn.as_ref()?;
    let Some(origin) = request_origin(state, parts, peer) else {
        tracing::info!("WebAuthn request refused: its origin cannot be determined");
        return None;
    };
    Some((config, origin))
}

/// `GET /api/secondfactor/webauthn`: the assertion options for the user's credentials.
async fn assertion_options(State(state): State<AppState>, request: Request) -> Response {
    let peer = peer_of(&request);
    let (parts, _) = request.into_parts();
    let who = match require_one_factor(&state, &parts, peer).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let Some(rt) = runtime(&state).cloned() else {
        return ko(StatusCode::FORBIDDEN, MFA_FAILED);
    };
    let Some((config, origin)) = context(&state, &rt, &parts, peer) else {
        return ko(StatusCode::FORBIDDEN, MFA_FAILED);
    };
    let user = &who.session.identity.username;
    let credentials = match credentials_of(&rt, &origin.rp_id, user).await {
        Ok(c) if !c.is_empty() => c,
        Ok(_) => {
            tracing::info!(user = %user, "WebAuthn challenge refused: no credential at this RP ID");
            return ko(StatusCode::FORBIDDEN, MFA_FAILED);
        }
        Err(e) => {
            tracing::error!(user = %user, error = %e, "WebAuthn challenge refused: the credentials cannot be read");
            return ko(StatusCode::FORBIDDEN, MFA_FAILED);
        }
    };
    let allow: Vec<CredentialDescriptor> = credentials.iter().filter_map(descriptor).collect();
    let app_id = credentials
        .iter()
        .any(|c| c.legacy || c.attestation_format == "fido-u2f")
        .then_some(origin.origin.as_str());
    let challenge = new_challenge();
    let options = request_options(
        &origin.rp_id,
        &challenge,
        timeout_ms(config),
        &allow,
        config.selection.user_verification,
        app_id,
    );
    let now = state.now();
    let ceremony = Ceremony {
        challenge,
        origin,
        expires: now + config.timeout,
        description: None,
    };
    if !rt.set_ceremony(false, &who.session.id, ceremony, now).await {
        tracing::warn!("WebAuthn challenge refused: too many ceremonies in progress");
        return ko(StatusCode::FORBIDDEN, MFA_FAILED);
    }
    ok(Some(json!({"publicKey": options})))
}

#[derive(Deserialize)]
struct SignInBody {
    response: Value,
    #[serde(flatten)]
    next: Continuation,
}

/// Why an assertion by a stored credential was refused.
#[derive(Debug)]
pub(super) enum AssertionFailure {
    /// The response is not an assertion (400).
    Malformed,
    /// Anything else (403).
    Refused,
}

/// Check `response` against `ceremony` with `credential`, and note the use. A counter that did
/// not grow refuses (a cloned authenticator), as in Authelia.
pub(super) async fn check_assertion(
    state: &AppState,
    rt: &SecondFactorRuntime,
    config: &WebAuthnConfig,
    response: &AssertionResponse,
    ceremony: &Ceremony,
    credential: &StoredWebAuthnCredential,
) -> Result<VerifiedAssertion, AssertionFailure> {
    let expected = Expectation {
        challenge: &ceremony.challenge,
        rp_id: &ceremony.origin.rp_id,
        origin: &ceremony.origin.origin,
        user_verification: config.selection.user_verification,
    };
    let stored = StoredCredential {
        public_key: &credential.public_key,
        sign_count: credential.sign_count,
        app_id: credential.legacy.then_some(ceremony.origin.origin.as_str()),
    };
    let user = &credential.username;
    let verified = match verify_assertion(response, &expected, stored) {
        Ok(v) => v,
        Err(e) => {
            tracing::info!(user = %user, reason = %e, "WebAuthn assertion refused");
            return Err(AssertionFailure::Refused);
        }
    };
    let store = rt.store.clone();
    let (id, now) = (credential.id, state.now());
    let noted = blocking(move || {
        store.record_webauthn_use(
            id,
            verified.sign_count,
            verified.flags.backup_state(),
            verified.clone_warning,
            i64::try_from(now).unwrap_or(i64::MAX),
        )
    })
    .await;
    if let Err(e) = noted {
        tracing::error!(user = %user, error = %e, "WebAuthn assertion refused: its use cannot be recorded");
        return Err(AssertionFailure::Refused);
    }
    if verified.clone_warning || credential.clone_warning {
        tracing::warn!(user = %user, credential = credential.id, "WebAuthn assertion refused: the signature counter did not grow, the authenticator may be cloned");
        return Err(AssertionFailure::Refused);
    }
    Ok(verified)
}

/// Parse a browser's assertion JSON.
pub(super) fn parse_assertion(value: Value) -> Result<AssertionResponse, AssertionFailure> {
    serde_json::from_value(value).map_err(|e| {
        tracing::info!(reason = %e, "WebAuthn assertion refused: malformed response");
        AssertionFailure::Malformed
    })
}

/// Check a second-factor assertion for `who`; on success the session at two factors.
async fn sign_in_with(
    state: &AppState,
    rt: &Arc<SecondFactorRuntime>,
    who: &Authenticated,
    response: Value,
) -> Result<Session, AssertionFailure> {
    let Some(config) = &rt.webauthn else {
        return Err(AssertionFailure::Refused);
    };
    let now = state.now();
    let user = who.session.identity.username.clone();
    let response = parse_assertion(response)?;
    let Some(ceremony) = rt.take_ceremony(false, &who.session.id, now).await else {
        tracing::info!(user = %user, "WebAuthn assertion refused: no challenge pending (or it expired)");
        return Err(AssertionFailure::Refused);
    };
    if rt.is_passkey_session(&who.session.id, now).await {
        tracing::info!(user = %user, "WebAuthn assertion refused: a passkey session needs its password as the second factor");
        return Err(AssertionFailure::Refused);
    }
    if state.0.regulator.is_banned(Some(&user), who.ip, now).await {
        tracing::info!(user = %user, "WebAuthn assertion refused: the user is banned by regulation");
        return Err(AssertionFailure::Refused);
    }
    let kid = match response.credential_id() {
        Ok(id) => base64_standard(&id),
        Err(e) => {
            tracing::info!(user = %user, reason = %e, "WebAuthn assertion refused");
            return Err(AssertionFailure::Malformed);
        }
    };
    let store = rt.store.clone();
    let rp_id = ceremony.origin.rp_id.clone();
    let credential = match blocking(move || store.webauthn_credential_by_kid(&rp_id, &kid)).await {
        Ok(Some(c)) if c.username == user => c,
        Ok(_) => {
            tracing::info!(user = %user, "WebAuthn assertion refused: not one of the user's credentials");
            state.0.regulator.record(&user, who.ip, false, now).await;
            return Err(AssertionFailure::Refused);
        }
        Err(e) => {
            tracing::error!(user = %user, error = %e, "WebAuthn assertion refused: the credential cannot be read");
            return Err(AssertionFailure::Refused);
        }
    };
    if let Err(e) = check_assertion(state, rt, config, &response, &ceremony, &credential).await {
        state.0.regulator.record(&user, who.ip, false, now).await;
        return Err(e);
    }
    state.0.regulator.record(&user, who.ip, true, now).await;
    let session = raise_to_two_factor(state, rt, who)
        .await
        .ok_or(AssertionFailure::Refused)?;
    tracing::info!(user = %user, "second factor (WebAuthn) succeeded");
    Ok(session)
}

/// `POST /api/secondfactor/webauthn`.
async fn sign_in(State(state): State<AppState>, request: Request) -> Response {
    let peer = peer_of(&request);
    let (parts, body) = request.into_parts();
    let who = match require_one_factor(&state, &parts, peer).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let Some(rt) = runtime(&state).cloned() else {
        return ko(StatusCode::FORBIDDEN, MFA_FAILED);
    };
    let bytes = axum::body::to_bytes(body, MAX_BODY)
        .await
        .unwrap_or_default();
    let Some(body) = json_object::<SignInBody>(&bytes) else {
        tracing::info!("WebAuthn assertion refused: malformed body");
        rt.take_ceremony(false, &who.session.id, state.now()).await;
        return ko(StatusCode::BAD_REQUEST, MFA_FAILED);
    };
    match sign_in_with(&state, &rt, &who, body.response).await {
        Ok(session) => two_factor_response(&state, &who, &session, &body.next).await,
        Err(AssertionFailure::Malformed) => ko(StatusCode::BAD_REQUEST, MFA_FAILED),
        Err(AssertionFailure::Refused) => ko(StatusCode::FORBIDDEN, MFA_FAILED),
    }
}

#[derive(Deserialize)]
pub(super) struct DescriptionBody {
    pub(super) description: String,
}

/// The WebAuthn routes (present when `webauthn` is on).
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/secondfactor/webauthn",
            get(assertion_options).post(sign_in),
        )
        .route(
            "/api/secondfactor/webauthn/credentials",
            get(webauthn_credentials::list),
        )
        .route(
            "/api/secondfactor/webauthn/credential/register",
            put(webauthn_registration::begin)
                .post(webauthn_registration::finish)
                .delete(webauthn_registration::cancel),
        )
        .route(
            "/api/secondfactor/webauthn/credential/{id}",
            put(webauthn_credentials::rename).delete(webauthn_credentials::delete),
        )
}
