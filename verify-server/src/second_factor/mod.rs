//! Second factors at the portal (docs/reference/second-factor.md): TOTP sign-in and
//! registration (`totp`), WebAuthn (`webauthn`: the second-factor assertion and the request's
//! origin; `webauthn_registration`; `webauthn_credentials`), passkey login and the password as
//! its second factor (`passkey`), what every factor answers with (`respond`), session elevation
//! with one-time codes (`elevation`), password change and reset (`password`, `reset`), the
//! user's methods and the portal configuration (`user_info`), and the notifier (`notifier`). The
//! registrations live in the SQLite file, in Authelia's own tables
//! (`portcullis_second_factor::sqlite`), so an Authelia database keeps working.
//!
//! The state of a ceremony (a pending registration, an elevation, a WebAuthn challenge) belongs
//! to a session or a browser and lives in the `CeremonyStore` (`ceremonies`): this server's
//! memory, or the sessions' Redis so that any replica finishes what another began.

mod ceremonies;
pub(crate) use ceremonies::{Ceremony, Elevation, PendingTotp};
mod elevation;
pub(crate) use elevation::{confirm_code, revoke_form, revoke_page, send_code};
pub(crate) mod notifier;
mod password;
mod reset;
mod respond;
pub(crate) use respond::rate_limited;
mod totp;
pub(crate) use totp::{
    begin_registration, finish_registration, has_totp, pending_registration, registration,
    remove_registration, totp_sign_in,
};
mod passkey;
mod user_info;
pub(crate) use passkey::password_second_factor;
mod webauthn;
mod webauthn_credentials;
mod webauthn_registration;
pub(crate) use webauthn::{WebOrigin, credentials_of, has_webauthn, request_origin};
pub(crate) use webauthn_credentials::delete_credential;

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::http::request::Parts;
use axum::response::Response;
use axum::routing::{delete, get, post};
use http::StatusCode;
use portcullis_auth::rate_limit::RateLimiter;
use portcullis_core::AuthLevel;
use portcullis_second_factor::sqlite::SecondFactorStore;
use portcullis_session::{CeremonyStore, MemoryCeremonies, Session, find_session_cookie};
use serde_json::json;

use crate::authz::{CookieResult, cookie_session};
use crate::config::{
    ElevationConfig, NotifierConfig, SecondFactorConfig, TotpConfig, WebAuthnConfig,
};
use crate::error::StartError;
use crate::portal::{client_of, json_response, portal_domain_of};
use crate::state::AppState;
use notifier::Notifier;

/// How long a registration started with `PUT …/totp/register` may be finished.
const PENDING_TOTP_LIFESPAN: u64 = 10 * 60;
/// Ceremonies kept per server at most; beyond it the oldest expired are dropped, then new ones
/// refused, so a flood of sessions cannot grow memory without bound.
const MAX_CEREMONIES: usize = 100_000;

pub(crate) const MFA_FAILED: &str = "Authentication failed, please retry later.";
pub(crate) const OPERATION_FAILED: &str = "Operation failed.";

/// The second factors of a running server.
pub(crate) struct SecondFactorRuntime {
    pub(crate) store: Arc<SecondFactorStore>,
    pub(crate) totp: Option<TotpConfig>,
    pub(crate) webauthn: Option<WebAuthnConfig>,
    pub(crate) elevation: ElevationConfig,
    pub(crate) notifier: Option<Notifier>,
    pub(crate) default_method: Option<String>,
    pub(crate) password_change: bool,
    pub(crate) password_policy: crate::config::PasswordPolicy,
    pub(crate) reset: Option<crate::config::ResetConfig>,
    pub(crate) reset_start_limit: RateLimiter,
    pub(crate) reset_finish_limit: RateLimiter,
    pub(crate) totp_limit: RateLimiter,
    pub(crate) elevation_start_limit: RateLimiter,
    pub(crate) elevation_finish_limit: RateLimiter,
    /// Ceremony state when it is kept in this server (no `session.redis`).
    local_ceremonies: MemoryCeremonies,
    /// Ceremony state shared with the other replicas (the sessions' Redis), once attached.
    shared_ceremonies: OnceLock<Arc<dyn CeremonyStore>>,
}

impl std::fmt::Debug for SecondFactorRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecondFactorRuntime")
            .field("totp", &self.totp.is_some())
            .field("notifier", &self.notifier.is_some())
            .finish_non_exhaustive()
    }
}

impl SecondFactorRuntime {
    /// The start-up check of the notifier (unless `disable_startup_check`): a failure is a
    /// start error, as in Authelia.
    pub(crate) async fn check_notifier(&self, enabled: bool) -> Result<(), StartError> {
        match &self.notifier {
            Some(n) if enabled => n
                .startup_check()
                .await
                .map_err(|e| StartError::SecondFactor(format!("notifier start-up check: {e}"))),
            _ => Ok(()),
        }
    }

    /// Open the store for `config` with storage at `path`. `None` when no
    /// `storage.encryption_key` is set (the configuration warned about it).
    pub(crate) fn open(
        config: &SecondFactorConfig,
        path: &std::path::Path,
    ) -> Result<Option<Self>, StartError> {
        let Some(key) = &config.encryption_key else {
            return Ok(None);
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                StartError::SecondFactor(format!("storage folder {}: {e}", parent.display()))
            })?;
        }
        let store = SecondFactorStore::open(path, key.expose(), &mut rand::rng())
            .map_err(|e| StartError::SecondFactor(format!("storage {}: {e}", path.display())))?;
        let notifier = match &config.notifier {
            None => None,
            Some(NotifierConfig::Filesystem(path)) => Some(Notifier::Filesystem(path.clone())),
            Some(NotifierConfig::Smtp(smtp)) => Some(Notifier::Smtp(Box::new(
                notifier::Smtp::new(smtp).map_err(StartError::SecondFactor)?,
            ))),
        };
        Ok(Some(Self {
            store: Arc::new(store),
            totp: config.totp.clone(),
            webauthn: config.webauthn.clone(),
            elevation: config.elevation,
            notifier,
            default_method: config.default_method.clone(),
            password_change: config.password_change,
            password_policy: config.password_policy,
            reset: config.reset.clone(),
            reset_start_limit: RateLimiter::new(config.reset_start_limit.clone()),
            reset_finish_limit: RateLimiter::new(config.reset_finish_limit.clone()),
            totp_limit: RateLimiter::new(config.totp_limit.clone()),
            elevation_start_limit: RateLimiter::new(config.elevation_start_limit.clone()),
            elevation_finish_limit: RateLimiter::new(config.elevation_finish_limit.clone()),
            local_ceremonies: MemoryCeremonies::new(MAX_CEREMONIES),
            shared_ceremonies: OnceLock::new(),
        }))
    }

    /// Keep ceremony state in `store` (the sessions' Redis) instead of this server's memory.
    pub(crate) fn attach_ceremonies(&self, store: Arc<dyn CeremonyStore>) -> bool {
        self.shared_ceremonies.set(store).is_ok()
    }

    /// The methods offered: `totp` and `webauthn` when they are on.
    pub(crate) fn available_methods(&self) -> Vec<&'static str> {
        let mut methods = Vec::new();
        if self.totp.is_some() {
            methods.push("totp");
        }
        if self.webauthn.is_some() {
            methods.push("webauthn");
        }
        methods
    }
}

/// The runtime, when second factors are on.
pub(crate) fn runtime(state: &AppState) -> Option<&Arc<SecondFactorRuntime>> {
    state.0.second_factor.as_ref()
}

/// A request from a logged-in user (at least one factor).
pub(crate) struct Authenticated {
    pub(crate) index: usize,
    pub(crate) session: Session,
    pub(crate) ip: Option<IpAddr>,
    /// The request's origin (WebAuthn's RP ID is its host), when it can be determined.
    pub(crate) origin: Option<WebOrigin>,
}

/// Authelia's `Require1FA` failure: 403 with the plain-text body.
pub(crate) fn forbidden_plain() -> Response {
    crate::authz::plain(StatusCode::FORBIDDEN)
}

/// The session of a portal request, when it has at least one factor; else Authelia's plain 403.
pub(crate) async fn require_one_factor(
    state: &AppState,
    parts: &Parts,
    peer: IpAddr,
) -> Result<Authenticated, Response> {
    let index = portal_domain_of(state, parts, peer).ok_or_else(forbidden_plain)?;
    let cookie = &state.config().cookies[index];
    let now = state.now();
    match cookie_session(state, &parts.headers, cookie, now).await {
        CookieResult::Valid(identity) if identity.level >= AuthLevel::OneFactor => {}
        _ => return Err(forbidden_plain()),
    }
    let id =
        find_session_cookie(&parts.headers, &cookie.cookie.name).ok_or_else(forbidden_plain)?;
    let session = match state.sessions().get(&id, now).await {
        Ok(Some(s)) => s,
        _ => return Err(forbidden_plain()),
    };
    Ok(Authenticated {
        index,
        session,
        ip: client_of(state, parts, peer).addr(),
        origin: request_origin(state, parts, peer),
    })
}

fn elevation_refused(elevation: bool, first_factor: bool, second_factor: bool) -> Response {
    json_response(
        StatusCode::FORBIDDEN,
        json!({"status": "KO", "data": {"elevation": elevation, "first_factor": first_factor, "second_factor": second_factor}}),
    )
}

/// Why an authenticated session is not elevated: `(elevation, first_factor, second_factor)` as
/// Authelia's `RequireElevated` answers; `None` when it is elevated
/// (docs/reference/second-factor.md §3.2).
async fn elevation_refusal(
    state: &AppState,
    rt: &SecondFactorRuntime,
    who: &Authenticated,
) -> Option<(bool, bool, bool)> {
    let level = who.session.identity.level;
    if rt.elevation.skip_second_factor && level == AuthLevel::TwoFactor {
        return None;
    }
    if rt.elevation.require_second_factor && level < AuthLevel::TwoFactor {
        let user = who.session.identity.username.clone();
        let store = rt.store.clone();
        let has_factor = tokio::task::spawn_blocking(move || {
            Ok::<_, portcullis_second_factor::SecondFactorError>(
                store.totp(&user)?.is_some() || store.has_webauthn(&user)?,
            )
        })
        .await;
        // A storage failure refuses, as if the user had a second factor to use first.
        if !matches!(has_factor, Ok(Ok(false))) {
            return Some((false, false, true));
        }
    }
    if rt
        .elevation_of(&who.session.id, who.ip, state.now())
        .await
        .is_none()
    {
        return Some((true, false, false));
    }
    None
}

/// Whether the session of `who` is elevated.
pub(crate) async fn is_elevated(
    state: &AppState,
    rt: &SecondFactorRuntime,
    who: &Authenticated,
) -> bool {
    elevation_refusal(state, rt, who).await.is_none()
}

/// Authelia's `RequireElevated` (docs/reference/second-factor.md §3.2).
pub(crate) async fn require_elevated(
    state: &AppState,
    parts: &Parts,
    peer: IpAddr,
) -> Result<(Arc<SecondFactorRuntime>, Authenticated), Response> {
    let Some(rt) = runtime(state).cloned() else {
        return Err(forbidden_plain());
    };
    let Ok(who) = require_one_factor(state, parts, peer).await else {
        return Err(elevation_refused(false, true, false));
    };
    match elevation_refusal(state, &rt, &who).await {
        None => Ok((rt, who)),
        Some((elevation, first, second)) => Err(elevation_refused(elevation, first, second)),
    }
}

/// The second-factor routes (present only when second factors are on).
pub(crate) fn routes(state: &AppState) -> Router<AppState> {
    let mut router = Router::new()
        .route(
            "/api/user/session/elevation",
            get(elevation::status)
                .post(elevation::start)
                .put(elevation::finish),
        )
        .route(
            "/api/user/session/elevation/{delete_id}",
            delete(elevation::revoke),
        );
    if runtime(state).is_some_and(|rt| rt.reset.is_some() && rt.notifier.is_some()) {
        router = router
            .route("/api/reset-password/identity/start", post(reset::start))
            .route("/api/reset-password/identity/finish", post(reset::finish))
            .route(
                "/api/reset-password",
                post(reset::reset).delete(reset::revoke),
            )
            .route(
                "/reset-password",
                get(reset::start_page).post(reset::start_form),
            )
            .route(
                "/reset-password/step2",
                get(reset::step2_page).post(reset::step2_form),
            );
    }
    if runtime(state).is_some_and(|rt| rt.password_change && rt.notifier.is_some()) {
        router = router.route("/api/change-password", post(password::change));
    }
    if runtime(state).is_some_and(|rt| rt.webauthn.is_some()) {
        router = router.merge(webauthn::routes());
    }
    if runtime(state).is_some_and(|rt| rt.webauthn.as_ref().is_some_and(|w| w.passkey_login)) {
        router = router.merge(passkey::routes());
    }
    if runtime(state).is_some_and(|rt| rt.totp.is_some()) {
        router = router
            .route(
                "/api/secondfactor/totp",
                get(totp::configuration)
                    .post(totp::sign_in)
                    .delete(totp::remove),
            )
            .route(
                "/api/secondfactor/totp/register",
                get(totp::options)
                    .put(totp::begin)
                    .post(totp::finish)
                    .delete(totp::cancel),
            );
    }
    router
}

/// The routes every server has: the user's methods and the portal's configuration.
pub(crate) fn info_routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/user/info",
            get(user_info::get_info).post(user_info::post_info),
        )
        .route("/api/user/info/2fa_method", post(user_info::set_method))
        .route("/api/configuration", get(user_info::configuration))
        .route(
            "/api/configuration/password-policy",
            get(user_info::password_policy),
        )
}
