//! WebAuthn registration behind an elevated session (docs/reference/second-factor.md §2.4,
//! "Registration PUT/POST"): the creation options with the user's 64-character handle and the
//! credentials to exclude, then the browser's answer verified, filtered and stored.

use axum::extract::{Request, State};
use axum::response::Response;
use http::StatusCode;
use portcullis_second_factor::sqlite::NewWebAuthnCredential;
use portcullis_webauthn::ceremony::{Expectation, RegistrationResponse, verify_registration};
use portcullis_webauthn::encoding::base64_standard;
use portcullis_webauthn::options::{CredentialDescriptor, RelyingParty, User, creation_options};
use serde_json::{Value, json};

use super::totp::notify_event;
use super::webauthn::{
    DUPLICATE_NAME, DescriptionBody, MAX_BODY, REGISTER_FAILED, WEBAUTHN_METHOD, WebOrigin,
    blocking, context, descriptor, new_challenge, timeout_ms,
};
use super::{Authenticated, Ceremony, SecondFactorRuntime, require_elevated};
use crate::authz::peer_of;
use crate::portal::{json_object, ko, ok};
use crate::state::AppState;

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
pub(super) async fn begin(State(state): State<AppState>, request: Request) -> Response {
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
    // A registration ceremony always carries its description; one without is refused.
    let Some(description) = ceremony.description.as_ref() else {
        tracing::warn!(user = %user, "WebAuthn registration refused: the ceremony has no description");
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
        description: description.clone(),
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
pub(super) async fn finish(State(state): State<AppState>, request: Request) -> Response {
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
pub(super) async fn cancel(State(state): State<AppState>, request: Request) -> Response {
    let peer = peer_of(&request);
    let (parts, _) = request.into_parts();
    let (rt, who) = match require_elevated(&state, &parts, peer).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    rt.take_ceremony(true, &who.session.id, state.now()).await;
    ok(None)
}
