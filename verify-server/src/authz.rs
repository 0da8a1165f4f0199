//! The forward-auth endpoints (docs/reference/forward-auth.md §1–§6): resolve the target,
//! authenticate, evaluate the policy, decide, respond.

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse, Response};
use http::header::{CONTENT_TYPE, LOCATION, SET_COOKIE};
use http::{HeaderMap, HeaderValue, StatusCode};
use portcullis_core::credential::{Credential, parse_credential};
use portcullis_core::domain::host_is_under;
use portcullis_core::redirect::{anchor_body, portal_redirect_url, redirect_status};
use portcullis_core::{
    AuthLevel, AuthOutcome, Connection, Decision, Dialect, Identity, RequestHead, Target,
    TargetUrl, decide, resolve,
};
use portcullis_server_core::clock::Stopwatch;
use portcullis_server_core::telemetry::redact_query;
use portcullis_session::{Validity, find_session_cookie};

use crate::config::{CookieDomain, Endpoint, Implementation, Refresh, Strategy, StrategyKind};
use crate::error::EdgeError;
use crate::state::AppState;

pub(crate) const TEXT_PLAIN: &str = "text/plain; charset=utf-8";
const TEXT_HTML: &str = "text/html; charset=utf-8";
const BASIC_REALM: &str = "Basic realm=\"Authorization Required\"";
// Made once: a lookup by `&str` parses the name each time.
static X_AUTHELIA_URL: http::HeaderName = http::HeaderName::from_static("x-authelia-url");
static SESSION_USERNAME: http::HeaderName = http::HeaderName::from_static("session-username");

/// An address nobody trusts, used when the router runs without connection info.
pub(crate) const UNKNOWN_PEER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::BROADCAST);

/// The TCP peer of a request (from `ConnectInfo`), or an untrusted placeholder.
pub(crate) fn peer_of(request: &Request) -> IpAddr {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(UNKNOWN_PEER, |c| c.0.ip().to_canonical())
}

/// [`peer_of`] for handlers that took the request apart.
pub(crate) fn peer_of_parts(parts: &axum::http::request::Parts) -> IpAddr {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(UNKNOWN_PEER, |c| c.0.ip().to_canonical())
}

/// `<code> <reason>` as text/plain. The router removes the body of a HEAD answer (and keeps its
/// `Content-Length`), so no handler needs to know the method.
pub(crate) fn plain(status: StatusCode) -> Response {
    let body = match status {
        // The check path's answers, without formatting them each time.
        StatusCode::OK => Body::from("200 OK"),
        StatusCode::UNAUTHORIZED => Body::from("401 Unauthorized"),
        StatusCode::FORBIDDEN => Body::from("403 Forbidden"),
        StatusCode::BAD_REQUEST => Body::from("400 Bad Request"),
        _ => Body::from(format!(
            "{} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        )),
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(TEXT_PLAIN));
    response
}

fn bad(endpoint: &Endpoint, reason: impl Into<std::borrow::Cow<'static, str>>) -> Response {
    EdgeError::BadCheck {
        endpoint: endpoint.name.clone(),
        legacy: endpoint.implementation == Implementation::Legacy,
        reason: reason.into(),
    }
    .into_response()
}

/// The handler shared by every authz endpoint.
/// An authz endpoint as its route serves it: its settings and its own counters.
#[derive(Debug)]
pub(crate) struct CheckRoute {
    pub(crate) endpoint: Endpoint,
    pub(crate) counters: crate::metrics::EndpointCounters,
}

pub(crate) async fn handle(
    State(state): State<AppState>,
    route: Arc<CheckRoute>,
    request: Request,
) -> Response {
    // One clock read at the start serves the metrics, the log and the failure padding.
    let started = Stopwatch::start();
    let (response, decision) = check(&state, &route.endpoint, request, &started).await;
    state
        .0
        .metrics
        .check(&route.counters, decision, started.elapsed().as_secs_f64());
    response
}

/// One authentication attempt's result.
struct Authn {
    identity: Identity,
    outcome: AuthOutcome,
    /// Index of the deciding strategy.
    deciding: usize,
    /// `Set-Cookie` to send (session destroyed).
    set_cookie: Option<String>,
    /// A Basic check failed and the answer must be padded.
    pad_failure: bool,
}

async fn check(
    state: &AppState,
    endpoint: &Endpoint,
    request: Request,
    started: &Stopwatch,
) -> (Response, &'static str) {
    let implementation = endpoint.implementation;
    let peer = peer_of(&request);
    let config = state.config();
    let (parts, _body) = request.into_parts();
    let now = state.now();

    // 1. The target.
    let ext_path;
    let dialect = match implementation {
        Implementation::ForwardAuth => Dialect::ForwardAuth,
        Implementation::AuthRequest => Dialect::AuthRequest,
        Implementation::Legacy => Dialect::Legacy,
        Implementation::ExtAuthz => {
            ext_path = parts
                .uri
                .path()
                .strip_prefix(endpoint.path.as_str())
                .unwrap_or("")
                .to_owned();
            if !ext_path.is_empty() && !ext_path.starts_with('/') {
                return (
                    bad(endpoint, "ext-authz path is not under the endpoint"),
                    "bad_request",
                );
            }
            Dialect::ExtAuthz { path: &ext_path }
        }
    };
    let conn = Connection {
        peer,
        trusted: &config.trusted_proxies,
        own_scheme: state.0.own_scheme,
    };
    let target = match resolve(dialect, RequestHead::from(&parts), conn) {
        Ok(t) => t,
        Err(e) => {
            return (bad(endpoint, format!("from {peer}: {e}")), "bad_request");
        }
    };
    // 2. Scheme.
    if !target.url.is_secure() {
        let reason = format!("target scheme {} must be https or wss", target.url.scheme());
        return (bad(endpoint, reason), "bad_request");
    }
    // 3. Cookie domain.
    let host = target.url.host();
    let Some(cookie_index) = config
        .cookies
        .iter()
        .position(|c| host_is_under(host, &c.domain))
    else {
        let reason = format!(
            "target host {} has no relevant session-cookie configuration",
            target.url.host()
        );
        return (bad(endpoint, reason), "bad_request");
    };
    let cookie = &config.cookies[cookie_index];
    // 4. Portal URL.
    let query = parse_query(parts.uri.query());
    let auth_basic = implementation == Implementation::Legacy
        && query_value(&query, "auth").as_deref() == Some("basic");
    let peer_trusted = config.trusted_proxies.contains(peer);
    let portal = match portal_url(implementation, &query, &parts.headers, peer_trusted, cookie) {
        Ok(p) => p,
        Err(reason) => return (bad(endpoint, reason), "bad_request"),
    };
    // 5. Authenticate.
    let authn = authenticate(
        state,
        endpoint,
        &parts.headers,
        &target,
        cookie_index,
        auth_basic,
        now,
    )
    .await;
    // 6. Required level.
    let evaluation = config.policy.evaluate(&target, &authn.identity);
    // 7. Decide.
    let decision = decide(evaluation.requirement, authn.outcome);
    // Field names are a stable contract (docs/logging.md).
    tracing::debug!(
        endpoint = %endpoint.name,
        url = %redact_query(&target.url.to_string()),
        method = %target.method,
        client_ip = %target.client_ip,
        user = %authn.identity.username,
        rule = ?evaluation.rule,
        required = ?evaluation.requirement.level,
        decision = ?decision,
        duration_us = started.elapsed().as_micros() as u64,
        "authz decision"
    );
    if authn.pad_failure {
        state.0.delays.pad(started.elapsed()).await;
    }
    // 8. Respond.
    let strategy = endpoint.strategies.get(authn.deciding);
    let (mut response, label) = match decision {
        Decision::Allow => (allowed(state, &authn.identity), "allow"),
        Decision::Forbidden => (plain(StatusCode::FORBIDDEN), "forbidden"),
        Decision::Unauthorized => (challenge(strategy), "challenge"),
        Decision::Redirect => {
            if auth_basic {
                (challenge(strategy), "challenge")
            } else {
                match (implementation, portal) {
                    (Implementation::Legacy, None) => {
                        (plain(StatusCode::UNAUTHORIZED), "unauthorized")
                    }
                    (_, None) => (
                        bad(endpoint, "no portal URL to send the user to"),
                        "bad_request",
                    ),
                    (_, Some(portal)) => {
                        let location = portal_redirect_url(
                            &portal,
                            &target.url.to_string(),
                            target.method.as_str(),
                        );
                        let status = if implementation == Implementation::AuthRequest {
                            StatusCode::UNAUTHORIZED
                        } else {
                            redirect_status(&parts.headers, &target.method)
                        };
                        let forwarded_head = target.method == http::Method::HEAD;
                        (redirect(status, &location, forwarded_head), "redirect")
                    }
                }
            }
        }
        // A decision this server does not know refuses.
        _ => (plain(StatusCode::FORBIDDEN), "forbidden"),
    };
    if let Some(cookie) = authn
        .set_cookie
        .and_then(|c| HeaderValue::from_str(&c).ok())
    {
        response.headers_mut().append(SET_COOKIE, cookie);
    }
    (response, label)
}

fn allowed(state: &AppState, identity: &Identity) -> Response {
    let mut response = plain(StatusCode::OK);
    let set = state.config().headers.emit(identity, None);
    for rejected in set.rejected() {
        tracing::warn!(header = %rejected.name, "identity value with control bytes emitted empty");
    }
    let headers = response.headers_mut();
    headers.reserve(set.len());
    for (name, value) in set {
        headers.insert(name, value);
    }
    response
}

/// A redirect (or 401 with `Location`) with the anchor body; no body when the forwarded method is
/// HEAD (docs/reference/forward-auth.md §6.5), with the same status and headers.
fn redirect(status: StatusCode, location: &str, forwarded_head: bool) -> Response {
    let body = if forwarded_head {
        Body::empty()
    } else {
        Body::from(anchor_body(location, status))
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(TEXT_HTML));
    match HeaderValue::from_str(location) {
        Ok(v) => {
            response.headers_mut().insert(LOCATION, v);
            response
        }
        // The location is built from validated parts and query-escaped; this cannot happen, and if it
        // did, refusing is the safe answer.
        Err(_) => plain(StatusCode::BAD_REQUEST),
    }
}

fn challenge(strategy: Option<&Strategy>) -> Response {
    let proxy = strategy.is_some_and(|s| s.kind == StrategyKind::HeaderProxyAuthorization);
    if proxy {
        let mut r = plain(StatusCode::PROXY_AUTHENTICATION_REQUIRED);
        r.headers_mut().insert(
            http::header::PROXY_AUTHENTICATE,
            HeaderValue::from_static(BASIC_REALM),
        );
        r
    } else {
        let mut r = plain(StatusCode::UNAUTHORIZED);
        r.headers_mut().insert(
            http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static(BASIC_REALM),
        );
        r
    }
}

pub(crate) fn parse_query(query: Option<&str>) -> Vec<(String, String)> {
    query
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}

pub(crate) fn query_value(query: &[(String, String)], key: &str) -> Option<String> {
    query.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
}

/// docs/reference/forward-auth.md §3.4: the override (validated against the matched cookie domain) or the cookie's
/// portal URL; `Ok(None)` only on Legacy.
fn portal_url<'a>(
    implementation: Implementation,
    query: &[(String, String)],
    headers: &HeaderMap,
    peer_trusted: bool,
    cookie: &'a CookieDomain,
) -> Result<Option<Cow<'a, str>>, &'static str> {
    let header_override = || -> Result<Option<String>, &'static str> {
        if !peer_trusted {
            return Ok(None);
        }
        match headers.get(&X_AUTHELIA_URL) {
            None => Ok(None),
            Some(v) => v
                .to_str()
                .map(|s| Some(s.to_owned()))
                .map_err(|_| "X-Authelia-URL is not ASCII"),
        }
    };
    let override_value = match implementation {
        Implementation::ForwardAuth | Implementation::AuthRequest => {
            query_value(query, "authelia_url")
        }
        Implementation::ExtAuthz => header_override()?,
        Implementation::Legacy => match query_value(query, "rd") {
            Some(rd) => Some(rd),
            None => header_override()?,
        },
    };
    match override_value {
        Some(value) => {
            if value.is_empty() {
                return Err("empty portal URL override");
            }
            let url = TargetUrl::parse(&value)
                .map_err(|_| "portal URL override is not an absolute URL")?;
            if !host_is_under(url.host(), &cookie.domain) {
                return Err("portal URL override is outside the cookie domain");
            }
            Ok(Some(Cow::Owned(value)))
        }
        None if implementation == Implementation::Legacy => Ok(None),
        // Borrowed: an allowed check never copies the portal URL it does not send.
        None => cookie
            .authelia_url
            .as_deref()
            .map(|url| Some(Cow::Borrowed(url)))
            .ok_or("no portal URL is configured for the cookie domain"),
    }
}

/// The credential header a strategy reads.
fn credential_header(kind: StrategyKind, auth_basic: bool) -> Option<http::HeaderName> {
    match kind {
        StrategyKind::HeaderAuthorization => Some(http::header::AUTHORIZATION),
        StrategyKind::HeaderProxyAuthorization
        | StrategyKind::HeaderAuthRequestProxyAuthorization => {
            Some(http::header::PROXY_AUTHORIZATION)
        }
        StrategyKind::HeaderLegacy if auth_basic => Some(http::header::AUTHORIZATION),
        StrategyKind::HeaderLegacy => Some(http::header::PROXY_AUTHORIZATION),
        StrategyKind::CookieSession => None,
    }
}

async fn authenticate(
    state: &AppState,
    endpoint: &Endpoint,
    headers: &HeaderMap,
    target: &Target,
    cookie_index: usize,
    auth_basic: bool,
    now: u64,
) -> Authn {
    let last = endpoint.strategies.len().saturating_sub(1);
    let mut set_cookie = None;
    for (index, strategy) in endpoint.strategies.iter().enumerate() {
        let failed = |pad_failure: bool, set_cookie: Option<String>| Authn {
            identity: Identity::anonymous(),
            outcome: AuthOutcome::failed_header(),
            deciding: index,
            set_cookie,
            pad_failure,
        };
        if let Some(name) = credential_header(strategy.kind, auth_basic) {
            match parse_credential(headers.get(&name)) {
                Credential::Absent => continue,
                Credential::Bearer if strategy.kind != StrategyKind::HeaderLegacy => continue,
                Credential::Bearer => {
                    tracing::info!(endpoint = %endpoint.name, "bearer tokens are not accepted on the legacy endpoint");
                    return failed(false, set_cookie);
                }
                Credential::Invalid(reason) => {
                    tracing::info!(endpoint = %endpoint.name, reason, "malformed credential header");
                    return failed(false, set_cookie);
                }
                Credential::Basic { .. } if !strategy.basic => {
                    tracing::info!(endpoint = %endpoint.name, "Basic is not enabled for this strategy");
                    return failed(false, set_cookie);
                }
                Credential::Basic { username, password } => {
                    // Boxed: the password check's future is large, and kept inline it would make
                    // every check's future (cookie checks too) that much larger to allocate and move.
                    return match Box::pin(basic(
                        state,
                        endpoint,
                        strategy,
                        &username,
                        password.expose(),
                        target,
                        now,
                    ))
                    .await
                    {
                        Some(identity) => Authn {
                            identity,
                            outcome: AuthOutcome::authenticated(AuthLevel::OneFactor, true),
                            deciding: index,
                            set_cookie,
                            pad_failure: false,
                        },
                        None => failed(true, set_cookie),
                    };
                }
                _ => {
                    tracing::info!(endpoint = %endpoint.name, "unknown credential form");
                    return failed(false, set_cookie);
                }
            }
        }
        // CookieSession
        let cookie = &state.config().cookies[cookie_index];
        match cookie_session(state, headers, cookie, now).await {
            CookieResult::Absent => continue,
            CookieResult::Destroyed(clear) => {
                set_cookie = Some(clear);
                continue;
            }
            CookieResult::Valid(identity) => {
                let level = identity.level;
                return Authn {
                    identity: *identity,
                    outcome: AuthOutcome::authenticated(level, false),
                    deciding: index,
                    set_cookie,
                    pad_failure: false,
                };
            }
        }
    }
    let header_strategy = endpoint
        .strategies
        .get(last)
        .is_some_and(|s| s.kind != StrategyKind::CookieSession);
    Authn {
        identity: Identity::anonymous(),
        outcome: AuthOutcome {
            level: AuthLevel::None,
            failed: false,
            header_strategy,
        },
        deciding: last,
        set_cookie,
        pad_failure: false,
    }
}

/// docs/reference/forward-auth.md §4.4. `None` for every failure (unknown user, ban, wrong
/// password, overload), each logged.
async fn basic(
    state: &AppState,
    endpoint: &Endpoint,
    strategy: &Strategy,
    login: &str,
    password: &str,
    target: &Target,
    now: u64,
) -> Option<Identity> {
    let users = state.users();
    let lifespan = strategy
        .basic_cache
        .unwrap_or(state.config().basic_auth_cache);
    let started = Stopwatch::start();
    let check = state.password_check(&users, Some(lifespan));
    match check
        .check(login, password, target.client_ip.addr(), now)
        .await
    {
        Ok(accepted) => {
            if accepted.hashed {
                state.0.delays.record_success(started.elapsed());
            }
            Some(accepted.user.identity(AuthLevel::OneFactor, now))
        }
        Err(rejection) => {
            tracing::info!(endpoint = %endpoint.name, reason = rejection.as_str(), "basic authentication failed");
            None
        }
    }
}

pub(crate) enum CookieResult {
    Absent,
    /// The session was invalid and destroyed: send this clearing `Set-Cookie`.
    Destroyed(String),
    Valid(Box<Identity>),
}

/// docs/reference/forward-auth.md §4.6.
pub(crate) async fn cookie_session(
    state: &AppState,
    headers: &HeaderMap,
    cookie: &CookieDomain,
    now: u64,
) -> CookieResult {
    let Some(id) = find_session_cookie(headers, &cookie.cookie.name) else {
        return CookieResult::Absent;
    };
    let store = state.sessions();
    let clear = || cookie.cookie.clear_cookie();
    let mut session = match store.get(&id, now).await {
        Ok(Some(s)) => s,
        Ok(None) => return CookieResult::Destroyed(clear()),
        Err(e) => {
            // Fail closed: without the store, nobody is authenticated.
            tracing::error!(error = %e, "session store unavailable: treating the request as anonymous");
            return CookieResult::Absent;
        }
    };
    let destroy = |reason: &'static str| async move {
        tracing::info!(reason, "session destroyed");
        if let Err(e) = store.delete(&id).await {
            tracing::error!(error = %e, "could not delete a session");
        }
        CookieResult::Destroyed(clear())
    };
    if session.cookie_domain != cookie.domain {
        return destroy("session used under another cookie domain").await;
    }
    if session.validity(now, &cookie.lifetime) != Validity::Valid {
        return destroy("session expired or inactive").await;
    }
    // Counted from the last refresh, not from the login: after the first interval, one refresh
    // per interval (docs/reference/forward-auth.md §4.6).
    let (refresh, mut changed) = match state.config().refresh {
        Refresh::Always => (true, false),
        Refresh::Never => (false, false),
        Refresh::Every(secs) if now.saturating_sub(session.refreshed_at) >= secs => {
            session.refreshed_at = now;
            (true, true)
        }
        Refresh::Every(_) => (false, false),
    };
    if refresh && !session.identity.username.is_empty() {
        match state.user_named(&session.identity.username).await {
            // Fail closed, but keep the session: the directory may be back at the next check.
            Err(e) => {
                tracing::error!(error = %e, user = %session.identity.username, "the user's details cannot be refreshed: treating the request as anonymous");
                return CookieResult::Absent;
            }
            Ok(None) => return destroy("user removed or disabled").await,
            Ok(Some(user)) => {
                let identity = &mut session.identity;
                if identity.groups != user.groups
                    || identity.emails != user.emails
                    || identity.display_name != user.display_name
                {
                    identity.groups = user.groups.clone();
                    identity.emails = user.emails.clone();
                    identity.display_name = user.display_name.clone();
                    changed = true;
                }
            }
        }
    }
    if let Some(claimed) = headers.get(&SESSION_USERNAME) {
        let same = claimed
            .to_str()
            .is_ok_and(|c| c.eq_ignore_ascii_case(&session.identity.username));
        if !same {
            return destroy("Session-Username does not match the session").await;
        }
    }
    if !session.remember_me {
        // A session already seen this second needs no new activity record (the browser's
        // subrequests of one page, a busy API client).
        let idle = session.last_activity < now;
        session.touch(now);
        let result = if changed {
            store.put(&session).await
        } else if idle {
            store.touch(&session.id, now).await
        } else {
            Ok(())
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "could not record session activity");
        }
    } else if changed && let Err(e) = store.put(&session).await {
        tracing::warn!(error = %e, "could not save refreshed user details");
    }
    CookieResult::Valid(Box::new(session.identity))
}
