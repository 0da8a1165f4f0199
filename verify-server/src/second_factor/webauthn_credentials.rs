//! The user's WebAuthn credentials (docs/reference/second-factor.md §2.3): listed at the
//! request's RP ID, renamed and deleted by their owner behind an elevated session.

use axum::extract::{Path, Request, State};
use axum::response::Response;
use http::StatusCode;
use portcullis_second_factor::datetime::rfc3339;
use portcullis_second_factor::sqlite::StoredWebAuthnCredential;
use portcullis_webauthn::encoding::base64_standard;
use serde_json::{Value, json};

use super::totp::notify_event;
use super::webauthn::{
    DescriptionBody, MAX_BODY, WEBAUTHN_METHOD, blocking, context, credentials_of,
};
use super::{
    Authenticated, OPERATION_FAILED, SecondFactorRuntime, require_elevated, require_one_factor,
    runtime,
};
use crate::authz::peer_of;
use crate::portal::{json_object, ko, ok};
use crate::state::AppState;

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
pub(super) async fn list(State(state): State<AppState>, request: Request) -> Response {
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
pub(super) async fn rename(
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
pub(super) async fn delete(
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
