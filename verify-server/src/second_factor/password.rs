//! `POST /api/change-password` (docs/reference/second-factor.md §3.4, ldap.md §5.4 for the
//! answers): behind an elevated session, the old password checked (a wrong one counts toward
//! regulation), the new one held to `password_policy.standard`, then written to the users file
//! as an argon2id digest (`portcullis_auth::users::change_password`) and the users reloaded.

use axum::extract::{Request, State};
use axum::response::Response;
use http::StatusCode;
use portcullis_auth::Rejection;
use portcullis_auth::users::PasswordChangeError;
use serde::Deserialize;

use super::notifier::{Recipient, event_body};
use super::require_elevated;
use crate::authz::peer_of;
use crate::portal::{json_object, ko, ok};
use crate::state::AppState;

const UNABLE: &str = "Unable to change your password.";
const WEAK: &str = "Your supplied password does not meet the password policy requirements.";

#[derive(Deserialize)]
struct ChangeBody {
    #[serde(default)]
    username: Option<String>,
    old_password: String,
    new_password: String,
}

/// `POST /api/change-password`.
pub(super) async fn change(State(state): State<AppState>, request: Request) -> Response {
    let peer = peer_of(&request);
    let (parts, body) = request.into_parts();
    let (rt, who) = match require_elevated(&state, &parts, peer).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let bytes = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let Some(body) = json_object::<ChangeBody>(&bytes) else {
        return ko(StatusCode::BAD_REQUEST, UNABLE);
    };
    let config = state.config();
    let user = who.session.identity.username.clone();
    let named_other = body.username.as_deref().is_some_and(|named| {
        if config.case_insensitive {
            !named.eq_ignore_ascii_case(&user)
        } else {
            named != user
        }
    });
    if named_other {
        tracing::warn!(user = %user, "password change refused: the body names another user");
        return ko(StatusCode::FORBIDDEN, UNABLE);
    }
    let now = state.now();
    let users = state.users();
    match state
        .password_check(&users, None)
        .check(&user, &body.old_password, who.ip, now)
        .await
    {
        Ok(_) => {}
        Err(Rejection::Overloaded) => return ko(StatusCode::SERVICE_UNAVAILABLE, UNABLE),
        Err(rejection) => {
            tracing::info!(user = %user, reason = rejection.as_str(), "password change refused: the old password is wrong");
            return ko(StatusCode::UNAUTHORIZED, "Incorrect Password");
        }
    }
    if body.new_password == body.old_password || !rt.password_policy.accepts(&body.new_password) {
        return ko(StatusCode::BAD_REQUEST, WEAK);
    }
    match write_password(&state, &user, Some(&body.old_password), &body.new_password).await {
        Ok(()) => {}
        Err(WriteFailure::Weak) => return ko(StatusCode::BAD_REQUEST, WEAK),
        Err(WriteFailure::WrongOld) => return ko(StatusCode::UNAUTHORIZED, "Incorrect Password"),
        Err(WriteFailure::Failed) => return ko(StatusCode::INTERNAL_SERVER_ERROR, UNABLE),
    }
    notify_changed(
        &state,
        &rt,
        &who.session.identity.display_name,
        who.session.identity.emails.first(),
    )
    .await;
    ok(None)
}

/// Why a new password was not written (each has been logged).
pub(super) enum WriteFailure {
    /// The directory's policy refused it.
    Weak,
    /// The directory did not take the old password.
    WrongOld,
    /// The users file or the directory could not be written.
    Failed,
}

/// Write `password` for `user` (the caller checked the policy and, for a change, the old
/// password): into the directory, or into the users file, which is then loaded. Basic
/// credentials cached with the old password stop counting either way.
pub(super) async fn write_password(
    state: &AppState,
    user: &str,
    old: Option<&str>,
    password: &str,
) -> Result<(), WriteFailure> {
    if let Some(directory) = state.directory() {
        let written = match state.user_named(user).await {
            Ok(Some(entry)) => directory
                .set_password(&entry, old, password)
                .await
                .map_err(|e| match e {
                    PasswordChangeError::WrongPassword => (WriteFailure::WrongOld, e.to_string()),
                    PasswordChangeError::Refused(_) => (WriteFailure::Weak, e.to_string()),
                    PasswordChangeError::Unavailable(_) => (WriteFailure::Failed, e.to_string()),
                }),
            Ok(None) => Err((
                WriteFailure::Failed,
                "the user is not in the directory".into(),
            )),
            Err(e) => Err((WriteFailure::Failed, e.to_string())),
        };
        state.forget_cached_credentials();
        return match written {
            Ok(()) => {
                tracing::info!(user = %user, "password changed in the directory");
                Ok(())
            }
            Err((failure, reason)) => {
                tracing::warn!(user = %user, reason = %reason, "the password was not changed in the directory");
                Err(failure)
            }
        };
    }
    let config = state.config();
    let Some(path) = config.users.file().map(std::path::Path::to_path_buf) else {
        tracing::error!(user = %user, "the password was not changed: there is no users file");
        return Err(WriteFailure::Failed);
    };
    let (case_insensitive, search_email) = (config.case_insensitive, config.search_email);
    let (name, new) = (user.to_owned(), password.to_owned());
    let salt: [u8; 16] = rand::random();
    let changed = tokio::task::spawn_blocking(move || {
        portcullis_auth::users::change_password(
            &path,
            &name,
            case_insensitive,
            search_email,
            &new,
            salt,
        )
    })
    .await;
    match changed {
        Ok(Ok(database)) => {
            state.replace_users(database);
            tracing::info!(user = %user, "password changed");
            Ok(())
        }
        Ok(Err(e)) => {
            tracing::error!(user = %user, error = %e, "the password was not changed: the users file is as it was");
            Err(WriteFailure::Failed)
        }
        Err(e) => {
            tracing::error!(user = %user, error = %e, "the password was not changed: the users file is as it was");
            Err(WriteFailure::Failed)
        }
    }
}

/// Mail "Password changed successfully" when there is a notifier and an address.
pub(super) async fn notify_changed(
    state: &AppState,
    rt: &super::SecondFactorRuntime,
    display_name: &str,
    address: Option<&String>,
) {
    let (Some(notifier), Some(address)) = (&rt.notifier, address) else {
        return;
    };
    let to = Recipient {
        display_name: display_name.to_owned(),
        address: address.clone(),
    };
    let text = event_body(display_name, "your password was changed", &[]);
    if let Err(e) = notifier
        .send(&to, "Password changed successfully", &text, state.now())
        .await
    {
        tracing::warn!(error = %e, "the password-change notification could not be sent");
    }
}
