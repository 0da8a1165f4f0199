//! WebAuthn at the portal (docs/reference/second-factor.md §2.2–2.4): the second-factor
//! assertion, registration behind an elevated session, and the user's credentials (list, rename,
//! delete). The RP ID is the host of the request's origin (the portal host), as in Authelia, so
//! credentials registered with Authelia under the same host keep working.

use std::net::IpAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::request::Parts;
use axum::response::Response;
use axum::routing::{get, put};
use http::StatusCode;
use portcullis_second_factor::SecondFactorError;
use portcullis_second_factor::datetime::rfc3339;
use portcullis_second_factor::sqlite::{NewWebAuthnCredential, StoredWebAuthnCredential};
use portcullis_session::Session;
use portcullis_webauthn::ceremony::{
    AssertionResponse, Expectation, RegistrationResponse, StoredCredential, VerifiedAssertion,
    verify_assertion, verify_registration,
};
use portcullis_webauthn::encoding::{Challenge, base64_standard, decode_binary};
use portcullis_webauthn::options::{
    CredentialDescriptor, RelyingParty, User, creation_options, request_options,
};
use rand::Rng;
use serde::Deserialize;
use serde_json::{Value, json};

use super::totp::{Continuation, notify_event, raise_to_two_factor, two_factor_response};
use super::{
    Authenticated, Ceremony, MFA_FAILED, OPERATION_FAILED, SecondFactorRuntime, require_elevated,
    require_one_factor, runtime,
};
use crate::authz::peer_of;
use crate::config::WebAuthnConfig;
use crate::portal::{json_object, ko, ok};
use crate::state::AppState;

pub(super) const REGISTER_FAILED: &str = "Unable to register your security key.";
const DUPLICATE_NAME: &str =
    "Another one of your security keys is already registered with that display name.";
const WEBAUTHN_METHOD: &str = "WebAuthn Credential";
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

fn descriptor(c: &StoredWebAuthnCredential) -> Option<CredentialDescriptor> {
    Some(CredentialDescriptor {
        id: decode_binary("kid", &c.kid).ok()?,
        transports: c.transports.clone(),
    })
}

fn timeout_ms(config: &WebAuthnConfig) -> u64 {
    config.timeout.saturating_mul(1000)
}

fn new_challenge() -> Challenge {
    Challenge::new(rand::rng().random())
}

/// The config and origin every WebAuthn route needs (`None`: Authelia's 403).
fn context<'a>(
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
struct DescriptionBody {
    description: String,
}

/// Start a registration named `description` for `who`: the creation options, or the status and
/// message of Authelia's refusal.
pub(crate) async fn begin_registration(
    state: &AppState,
    rt: &SecondFactorRuntime,
    who: &Authenticated,
    origin: WebOrigin,
    description: &str,
) -> Result<Value, (StatusCode, &'static str)> {
    let Some(config) = &rt.webauthn else {
        return Err((StatusCode::FORBIDDEN, REGISTER_FAILED));
    };
    let length = description.chars().count();
    if length == 0 || length > 64 {
        return Err((StatusCode::BAD_REQUEST, REGISTER_FAILED));
    }
    let identity = &who.session.identity;
    let store = rt.store.clone();
    let (rp_id, user, name) = (
        origin.rp_id.clone(),
        identity.username.clone(),
        description.to_owned(),
    );
    let prepared = blocking(move || {
        if store.webauthn_description_taken(&rp_id, &user, &name)? {
            return Ok(None);
        }
        let handle = store.ensure_webauthn_user(&rp_id, &user, &mut rand::rng())?;
        let existing = store.webauthn_credentials_of(&rp_id, &user)?;
        Ok(Some((handle, existing)))
    })
    .await;
    let (handle, existing) = match prepared {
        Ok(Some(x)) => x,
        Ok(None) => return Err((StatusCode::CONFLICT, DUPLICATE_NAME)),
        Err(e) => {
            tracing::error!(user = %identity.username, error = %e, "WebAuthn registration refused: storage failed");
            return Err((StatusCode::FORBIDDEN, REGISTER_FAILED));
        }
    };
    let exclude: Vec<CredentialDescriptor> = existing.iter().filter_map(descriptor).collect();
    let challenge = new_challenge();
    let options = creation_options(
        RelyingParty {
            id: &origin.rp_id,
            name: &config.display_name,
        },
        User {
            handle: handle.as_bytes(),
            name: &identity.username,
            display_name: &identity.display_name,
        },
        &challenge,
        timeout_ms(config),
        &exclude,
        config.selection,
        config.attestation,
    );
    let now = state.now();
    let ceremony = Ceremony {
        challenge,
        origin,
        expires: now + config.timeout,
        description: Some(description.to_owned()),
    };
    if !rt.set_ceremony(true, &who.session.id, ceremony, now).await {
        return Err((StatusCode::FORBIDDEN, REGISTER_FAILED));
    }
    Ok(options)
}

/// `PUT /api/secondfactor/webauthn/credential/register`.
async fn begin(State(state): State<AppState>, request: Request) -> Response {
    let peer = peer_of(&request);
    let (parts, body) = request.into_parts();
    let (rt, who) = match require_elevated(&state, &parts, peer).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Some((_, origin)) = context(&state, &rt, &parts, peer) else {
        return ko(StatusCode::FORBIDDEN, REGISTER_FAILED);
    };
    let bytes = axum::body::to_bytes(body, MAX_BODY)
        .await
        .unwrap_or_default();
    let Some(body) = json_object::<DescriptionBody>(&bytes) else {
        return ko(StatusCode::BAD_REQUEST, REGISTER_FAILED);
    };
    match begin_registration(&state, &rt, &who, origin, &body.description).await {
        Ok(options) => ok(Some(json!({"publicKey": options}))),
        Err((status, message)) => ko(status, message),
    }
}

/// Finish the registration of `who` with the browser's `response`: 201 when stored.
pub(crate) async fn finish_registration(
    state: &AppState,
    rt: &SecondFactorRuntime,
    who: &Authenticated,
    response: Option<RegistrationResponse>,
) -> Result<(), StatusCode> {
    let Some(config) = &rt.webauthn else {
        return Err(StatusCode::FORBIDDEN);
    };
    let now = state.now();
    let user = &who.session.identity.username;
    // The pending ceremony is used once, whatever the outcome.
    let Some(ceremony) = rt.take_ceremony(true, &who.session.id, now).await else {
        tracing::info!(user = %user, "WebAuthn registration refused: none pending (or it expired)");
        return Err(StatusCode::FORBIDDEN);
    };
    let Some(response) = response else {
        tracing::info!(user = %user, "WebAuthn registration refused: malformed response");
        return Err(StatusCode::BAD_REQUEST);
    };
    let expected = Expectation {
        challenge: &ceremony.challenge,
        rp_id: &ceremony.origin.rp_id,
        origin: &ceremony.origin.origin,
        user_verification: config.selection.user_verification,
    };
    let credential = match verify_registration(&response, &expected) {
        Ok(c) => c,
        Err(e) => {
            tracing::info!(user = %user, reason = %e, "WebAuthn registration refused");
            return Err(StatusCode::FORBIDDEN);
        }
    };
    let aaguid = portcullis_second_factor::uuid::uuid_text(credential.aaguid);
    if (!config.permitted_aaguids.is_empty() && !config.permitted_aaguids.contains(&aaguid))
        || config.prohibited_aaguids.contains(&aaguid)
    {
        tracing::info!(user = %user, %aaguid, "WebAuthn registration refused by webauthn.filtering (AAGUID)");
        return Err(StatusCode::FORBIDDEN);
    }
    if config.prohibit_backup_eligibility && credential.flags.backup_eligible() {
        tracing::info!(user = %user, "WebAuthn registration refused by webauthn.filtering.prohibit_backup_eligibility");
        return Err(StatusCode::FORBIDDEN);
    }
    let new = NewWebAuthnCredential {
        rpid: ceremony.origin.rp_id.clone(),
        username: user.clone(),
        description: ceremony.description.clone().unwrap_or_default(),
        kid: base64_standard(&credential.credential_id),
        aaguid: Some(aaguid),
        attestation_format: credential.attestation_format.clone(),
        attestation_type: credential.attestation_type.as_str().to_owned(),
        attachment: credential.attachment.clone(),
        transports: credential.transports.clone(),
        sign_count: credential.sign_count,
        discoverable: credential.discoverable,
        present: credential.flags.user_present(),
        verified: credential.flags.user_verified(),
        backup_eligible: credential.flags.backup_eligible(),
        backup_state: credential.flags.backup_state(),
        public_key: credential.public_key.clone(),
        created_at: i64::try_from(now).unwrap_or(i64::MAX),
    };
    let store = rt.store.clone();
    if let Err(e) = blocking(move || store.save_webauthn_credential(&new, &mut rand::rng())).await {
        // A credential id already registered (the kid is unique) lands here too.
        tracing::info!(user = %user, error = %e, "WebAuthn registration refused: the credential cannot be stored");
        return Err(StatusCode::FORBIDDEN);
    }
    tracing::info!(user = %user, discoverable = credential.discoverable, "WebAuthn credential registered");
    notify_event(
        state,
        rt,
        who,
        "a Second Factor Method was added to your account",
        "Second Factor Method Added",
        WEBAUTHN_METHOD,
    )
    .await;
    Ok(())
}

/// `POST /api/secondfactor/webauthn/credential/register`: the raw registration response.
async fn finish(State(state): State<AppState>, request: Request) -> Response {
    let peer = peer_of(&request);
    let (parts, body) = request.into_parts();
    let (rt, who) = match require_elevated(&state, &parts, peer).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let bytes = axum::body::to_bytes(body, MAX_BODY)
        .await
        .unwrap_or_default();
    let response = serde_json::from_slice::<RegistrationResponse>(&bytes).ok();
    match finish_registration(&state, &rt, &who, response).await {
        Ok(()) => {
            let mut r = ok(None);
            *r.status_mut() = StatusCode::CREATED;
            r
        }
        Err(status) => ko(status, REGISTER_FAILED),
    }
}

/// `DELETE /api/secondfactor/webauthn/credential/register`: forget a pending ceremony.
async fn cancel(State(state): State<AppState>, request: Request) -> Response {
    let peer = peer_of(&request);
    let (parts, _) = request.into_parts();
    let (rt, who) = match require_elevated(&state, &parts, peer).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    rt.take_ceremony(true, &who.session.id, state.now()).await;
    ok(None)
}

/// One credential as Authelia's `GET …/credentials` lists it (never the key's secret parts: the
/// public key is public).
fn credential_json(c: &StoredWebAuthnCredential) -> Value {
    let mut v = json!({
        "id": c.id,
        "created_at": rfc3339(c.created_at),
        "rpid": c.rpid,
        "username": c.username,
        "description": c.description,
        "kid": c.kid,
        "aaguid": c.aaguid,
        "attestation_type": c.attestation_type,
        "attestation_format": c.attestation_format,
        "attachment": c.attachment,
        "transports": c.transports,
        "sign_count": c.sign_count,
        "clone_warning": c.clone_warning,
        "legacy": c.legacy,
        "discoverable": c.discoverable,
        "present": c.present,
        "verified": c.verified,
        "backup_eligible": c.backup_eligible,
        "backup_state": c.backup_state,
        "public_key": base64_standard(&c.public_key),
    });
    if let Some(used) = c.last_used_at {
        v["last_used_at"] = Value::String(rfc3339(used));
    }
    v
}

/// `GET /api/secondfactor/webauthn/credentials`.
async fn list(State(state): State<AppState>, request: Request) -> Response {
    let peer = peer_of(&request);
    let (parts, _) = request.into_parts();
    let who = match require_one_factor(&state, &parts, peer).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let Some(rt) = runtime(&state).cloned() else {
        return ko(StatusCode::FORBIDDEN, OPERATION_FAILED);
    };
    let Some((_, origin)) = context(&state, &rt, &parts, peer) else {
        return ko(StatusCode::FORBIDDEN, OPERATION_FAILED);
    };
    match credentials_of(&rt, &origin.rp_id, &who.session.identity.username).await {
        Ok(list) => ok(Some(Value::Array(
            list.iter().map(credential_json).collect(),
        ))),
        Err(e) => {
            tracing::error!(error = %e, "WebAuthn credentials cannot be read");
            ko(StatusCode::FORBIDDEN, OPERATION_FAILED)
        }
    }
}

/// Rename `who`'s credential `id`: `Ok` or Authelia's status.
pub(crate) async fn rename_credential(
    rt: &SecondFactorRuntime,
    who: &Authenticated,
    id: i64,
    description: &str,
) -> Result<(), StatusCode> {
    let length = description.chars().count();
    if length == 0 || length > 64 {
        return Err(StatusCode::FORBIDDEN);
    }
    let store = rt.store.clone();
    let user = who.session.identity.username.clone();
    let name = description.to_owned();
    let outcome = blocking(move || {
        let all = store.webauthn_credentials(Some(&user))?;
        let Some(target) = all.iter().find(|c| c.id == id) else {
            return Ok(Err(StatusCode::FORBIDDEN));
        };
        if all.iter().any(|c| {
            c.id != id && c.rpid == target.rpid && c.description.eq_ignore_ascii_case(&name)
        }) {
            return Ok(Err(StatusCode::CONFLICT));
        }
        store.rename_webauthn_credential(&user, id, &name)?;
        Ok(Ok(()))
    })
    .await;
    match outcome {
        Ok(result) => result,
        Err(e) => {
            tracing::error!(error = %e, "WebAuthn credential cannot be renamed");
            Err(StatusCode::FORBIDDEN)
        }
    }
}

/// Delete `who`'s credential `id` and mail the event.
pub(crate) async fn delete_credential(
    state: &AppState,
    rt: &SecondFactorRuntime,
    who: &Authenticated,
    id: i64,
) -> Result<(), StatusCode> {
    let store = rt.store.clone();
    let user = who.session.identity.username.clone();
    match blocking(move || store.delete_webauthn_credential_by_id(&user, id)).await {
        Ok(Some(description)) => {
            tracing::info!(user = %who.session.identity.username, credential = %description, "WebAuthn credential removed");
            notify_event(
                state,
                rt,
                who,
                "a Second Factor Method was removed from your account",
                "Second Factor Method Removed",
                WEBAUTHN_METHOD,
            )
            .await;
            Ok(())
        }
        Ok(None) => Err(StatusCode::FORBIDDEN),
        Err(e) => {
            tracing::error!(error = %e, "WebAuthn credential cannot be removed");
            Err(StatusCode::FORBIDDEN)
        }
    }
}

fn credential_id(text: &str) -> Option<i64> {
    text.parse::<i64>().ok().filter(|id| *id > 0)
}

/// `PUT /api/secondfactor/webauthn/credential/{id}`: rename.
async fn rename(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let peer = peer_of(&request);
    let (parts, body) = request.into_parts();
    let (rt, who) = match require_elevated(&state, &parts, peer).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let bytes = axum::body::to_bytes(body, MAX_BODY)
        .await
        .unwrap_or_default();
    let Some(body) = json_object::<DescriptionBody>(&bytes) else {
        return ko(StatusCode::BAD_REQUEST, OPERATION_FAILED);
    };
    let Some(id) = credential_id(&id) else {
        return ko(StatusCode::BAD_REQUEST, OPERATION_FAILED);
    };
    match rename_credential(&rt, &who, id, &body.description).await {
        Ok(()) => ok(None),
        Err(status) => ko(status, OPERATION_FAILED),
    }
}

/// `DELETE /api/secondfactor/webauthn/credential/{id}`.
async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let peer = peer_of(&request);
    let (parts, _) = request.into_parts();
    let (rt, who) = match require_elevated(&state, &parts, peer).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Some(id) = credential_id(&id) else {
        return ko(StatusCode::BAD_REQUEST, OPERATION_FAILED);
    };
    match delete_credential(&state, &rt, &who, id).await {
        Ok(()) => ok(None),
        Err(status) => ko(status, OPERATION_FAILED),
    }
}

/// The WebAuthn routes (present when `webauthn` is on).
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/secondfactor/webauthn",
            get(assertion_options).post(sign_in),
        )
        .route("/api/secondfactor/webauthn/credentials", get(list))
        .route(
            "/api/secondfactor/webauthn/credential/register",
            put(begin).post(finish).delete(cancel),
        )
        .route(
            "/api/secondfactor/webauthn/credential/{id}",
            put(rename).delete(delete),
        )
}
