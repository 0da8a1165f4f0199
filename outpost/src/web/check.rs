//! `checkAuth` (docs/reference/outpost.md §8.1): the session cookie first, then `Authorization`;
//! and the identity headers an authenticated (or allow-listed) request gets (§6, §14 item 10).

use std::sync::Arc;

use http::HeaderMap;
use http::header::AUTHORIZATION;
use portcullis_core::{Identity, RequiredLevel, Secret, Target};
use portcullis_headers::{HeaderSet, additional_headers, basic_upstream, emit};
use portcullis_session::SessionId;

use crate::claims::{Claims, SessionData};
use crate::cookie::CookieState;
use crate::header_auth::{HeaderAuth, authenticate};
use crate::provider::{Discovered, ProviderRuntime};
use crate::state::AppState;

/// Refresh this long before the token expires.
const REFRESH_AHEAD: u64 = 30;

/// Who the request is, and what the answer must do to the cookie.
#[derive(Debug, Default)]
pub(crate) struct Checked {
    /// The authenticated session (cookie or header).
    pub(crate) auth: Option<Arc<SessionData>>,
    /// Authenticated by `Authorization` (it is removed before proxying).
    pub(crate) by_header: bool,
    /// An `Authorization` header was present and refused.
    pub(crate) header_refused: bool,
    /// The cookie's session id when it is ours and valid (the pre-login id to reuse).
    pub(crate) cookie_id: Option<SessionId>,
    /// `Set-Cookie` values the answer must carry (a deletion for a stale cookie).
    pub(crate) set_cookies: Vec<String>,
}

/// The store failed: the answer is a 503, never an allow.
#[derive(Debug)]
pub(crate) struct StoreDown(pub(crate) String);

pub(crate) async fn check(
    state: &AppState,
    app: &ProviderRuntime,
    discovered: &Discovered,
    headers: &HeaderMap,
    now: u64,
) -> Result<Checked, StoreDown> {
    let mut out = Checked::default();
    match app.cookie.read(headers) {
        CookieState::Absent => {}
        CookieState::Invalid => out.set_cookies.push(app.cookie.clear()),
        CookieState::Valid(id) => match session(state, app, discovered, &id, now).await? {
            Some(data) => {
                out.auth = Some(data);
                out.cookie_id = Some(id);
            }
            None => {
                // A signed id with no live session: a pre-login cookie, or one whose session
                // ended. It may be reused for a new login (its state binds to it).
                out.cookie_id = Some(id);
            }
        },
    }
    if out.auth.is_none()
        && let Some(value) = headers.get(AUTHORIZATION)
    {
        match authenticate(app, value, now).await {
            HeaderAuth::Absent => {}
            HeaderAuth::Refused => out.header_refused = true,
            HeaderAuth::Accepted { data, fresh } => {
                // As authentik (docs/reference/outpost.md §8.1 step 5): a credential checked now
                // is saved as a session and its cookie set; a cache hit sets none.
                if fresh {
                    let id = SessionId::generate(&mut rand::rng());
                    let lifetime = data.claims.exp.saturating_sub(now).clamp(1, 86_400);
                    state
                        .save(app, &id, &data, now + lifetime)
                        .await
                        .map_err(|e| StoreDown(e.to_string()))?;
                    out.set_cookies
                        .push(app.cookie.set(&id, Some(lifetime), now));
                }
                out.auth = Some(data);
                out.by_header = true;
            }
        }
    }
    Ok(out)
}

/// The live session `id` of this provider, refreshed when its token is about to expire and the
/// provider gave a refresh token.
async fn session(
    state: &AppState,
    app: &ProviderRuntime,
    discovered: &Discovered,
    id: &SessionId,
    now: u64,
) -> Result<Option<Arc<SessionData>>, StoreDown> {
    let stored = state
        .store()
        .get(id, now)
        .await
        .map_err(|e| StoreDown(e.to_string()))?;
    let Some(stored) = stored else {
        return Ok(None);
    };
    if stored.provider != app.config.name {
        // A session used at another provider (two providers sharing a client id, hence a cookie
        // name) is destroyed (docs/reference/security.md R6.2).
        tracing::warn!(provider = %app.config.name, owner = %stored.provider, "a session of another provider: destroyed");
        state
            .store()
            .delete(id)
            .await
            .map_err(|e| StoreDown(e.to_string()))?;
        return Ok(None);
    }
    let Ok(mut data) = serde_json::from_str::<SessionData>(&stored.data) else {
        tracing::warn!(provider = %app.config.name, "a stored session does not decode: treated as none");
        return Ok(None);
    };
    if data.claims.exp == 0 || data.claims.exp > now + REFRESH_AHEAD {
        return Ok(Some(Arc::new(data)));
    }
    let Some(refresh) = data.refresh_token.clone() else {
        return Ok((data.claims.exp > now).then(|| Arc::new(data)));
    };
    match crate::web::login::tokens_to_session(
        app,
        discovered,
        &app.refresh(discovered, &refresh).await,
        now,
    )
    .await
    {
        Some(mut fresh) if fresh.claims.sub == data.claims.sub => {
            fresh.created_at = data.created_at;
            if fresh.refresh_token.is_none() {
                fresh.refresh_token = Some(refresh);
            }
            data = fresh;
            state
                .save(app, id, &data, stored.expires_at.max(data.claims.exp))
                .await
                .map_err(|e| StoreDown(e.to_string()))?;
            tracing::debug!(provider = %app.config.name, "session refreshed");
            Ok(Some(Arc::new(data)))
        }
        _ => {
            tracing::info!(provider = %app.config.name, "the token expired and could not be refreshed: the session ends");
            let _ = state.store().delete(id).await;
            Ok(None)
        }
    }
}

/// Whether the provider's `access_control` lets the user reach `target` (no rules: yes).
pub(crate) fn permitted(app: &ProviderRuntime, target: &Target, identity: &Identity) -> bool {
    let Some(policy) = &app.config.policy else {
        return true;
    };
    let evaluation = policy.evaluate(target, identity);
    match evaluation.requirement.level {
        RequiredLevel::Bypass | RequiredLevel::OneFactor => true,
        RequiredLevel::TwoFactor => identity.level >= portcullis_core::AuthLevel::TwoFactor,
        _ => false,
    }
}

/// The identity headers for `auth` (all twelve, user-derived ones empty without a session), the
/// upstream Basic credentials when enabled, and `additionalHeaders`.
pub(crate) fn identity_headers(
    app: &ProviderRuntime,
    discovered: &Discovered,
    auth: Option<&SessionData>,
) -> HeaderSet {
    let Some(data) = auth else {
        return emit(&discovered.profile, &Identity::anonymous(), None);
    };
    let identity = data.claims.identity(&app.config.client_id);
    let token = Secret::new(data.raw_token.clone());
    let mut set = emit(&discovered.profile, &identity, Some(&token));
    let config = &app.config;
    if config.basic_auth_enabled
        && data.claims.ak_proxy.is_some()
        && let Some(value) = basic_upstream(
            &identity,
            &config.basic_auth_user_attribute,
            &config.basic_auth_password_attribute,
        )
        && let Ok(text) = value.to_str()
    {
        set.push_sensitive(AUTHORIZATION, text);
    }
    set.extend(additional_headers(&data.claims.additional_headers(), &[]));
    for rejected in set.rejected() {
        tracing::warn!(provider = %config.name, header = %rejected.name, reason = ?rejected.reason, "identity header emitted empty or skipped");
    }
    set
}

/// The identity of `auth` for the access rules.
pub(crate) fn identity_of(app: &ProviderRuntime, auth: &Claims) -> Identity {
    auth.identity(&app.config.client_id)
}
