//! What every second factor answers with (docs/reference/second-factor.md §0, §1.6 step 9):
//! Authelia's 429 of the rate limits, the session raised to two factors under a new id, and
//! where the portal goes next (the target, or the OpenID Connect flow the login continues).

use axum::response::Response;
use http::StatusCode;
use http::header::SET_COOKIE;
use portcullis_core::AuthLevel;
use portcullis_core::redirect::is_safe_redirect;
use portcullis_session::{Session, SessionId};
use serde::Deserialize;
use serde_json::json;

use super::{Authenticated, SecondFactorRuntime};
use crate::portal::{ko, ok, session_cookie_header};
use crate::state::AppState;

/// Where a second-factor answer continues: the portal's `targetURL`, or an OpenID Connect flow
/// (`flow: "openid_connect"` with its `flowID`).
#[derive(Debug, Default, Deserialize)]
pub(super) struct Continuation {
    #[serde(rename = "targetURL", default)]
    pub(super) target_url: Option<String>,
    #[serde(default)]
    flow: Option<String>,
    #[serde(rename = "flowID", default)]
    flow_id: Option<String>,
}

impl Continuation {
    /// The OpenID Connect flow id, when the body names one.
    pub(super) fn openid_flow(&self) -> Option<&str> {
        self.flow
            .as_deref()
            .filter(|f| *f == "openid_connect")
            .and(self.flow_id.as_deref())
    }
}

fn too_many_requests(retry_after: u64, now: u64) -> Response {
    let mut r = ko(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests");
    let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(now + retry_after.max(1));
    if let Ok(v) = http::HeaderValue::from_str(&httpdate::fmt_http_date(when)) {
        r.headers_mut().insert(http::header::RETRY_AFTER, v);
    }
    r.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    r
}

/// The rate limit of an endpoint: the 429 when it is full; otherwise the request is counted.
pub(crate) fn rate_limited(
    limiter: &portcullis_auth::rate_limit::RateLimiter,
    ip: Option<std::net::IpAddr>,
    now: u64,
) -> Option<Response> {
    // A request whose address is unknown shares one bucket rather than escaping the limit.
    let ip = ip.unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]));
    if let Some(retry) = limiter.limited(ip, now) {
        tracing::info!(%ip, retry_after = retry, "second factor request refused: rate limited");
        return Some(too_many_requests(retry, now));
    }
    limiter.count(ip, now);
    None
}

/// The session of `who` at two factors under a new id (the old one is deleted).
pub(super) async fn raise_to_two_factor(
    state: &AppState,
    rt: &SecondFactorRuntime,
    who: &Authenticated,
) -> Option<Session> {
    let now = state.now();
    let cookie = &state.config().cookies[who.index];
    let mut identity = who.session.identity.clone();
    identity.level = AuthLevel::TwoFactor;
    identity.authenticated_at = Some(now);
    let mut session = Session::new(
        SessionId::generate(&mut rand::rng()),
        cookie.domain.clone(),
        identity,
        who.session.remember_me,
        now,
        &cookie.lifetime,
    );
    session.created_at = who.session.created_at;
    if let Err(e) = state.sessions().put(&session).await {
        tracing::error!(error = %e, "could not store the two-factor session");
        return None;
    }
    if let Err(e) = state.sessions().delete(&who.session.id).await {
        tracing::error!(error = %e, "could not delete the one-factor session it replaces");
    }
    rt.rename_session(&who.session.id, &session.id, now).await;
    Some(session)
}

/// Authelia's `Handle2FAResponse`: where the portal goes after a second factor.
pub(super) async fn two_factor_response(
    state: &AppState,
    who: &Authenticated,
    session: &Session,
    next: &Continuation,
) -> Response {
    let (target_url, openid_flow) = (next.target_url.as_deref(), next.openid_flow());
    let cookie = &state.config().cookies[who.index];
    let mut response = if let Some(flow_id) = openid_flow {
        ok(crate::oidc::flow_redirect_after_login(state, flow_id)
            .await
            .map(|r| json!({"redirect": r})))
    } else {
        match target_url.filter(|t| !t.is_empty()) {
            None => ok(cookie
                .default_redirection_url
                .clone()
                .map(|r| json!({"redirect": r}))),
            Some(t) if url::Url::parse(t).is_err() => {
                ko(StatusCode::OK, "Unable to parse the target URL.")
            }
            Some(t) => {
                let domains: Vec<&str> = state
                    .config()
                    .cookies
                    .iter()
                    .map(|c| c.domain.as_str())
                    .collect();
                if is_safe_redirect(t, &domains) {
                    ok(Some(json!({"redirect": t})))
                } else {
                    ok(None)
                }
            }
        }
    };
    if let Some(v) = session_cookie_header(cookie, session) {
        response.headers_mut().append(SET_COOKIE, v);
    }
    response
}
