//! The forward-auth endpoints (forward-auth.md §1–§6): resolve the target, authenticate, evaluate
//! the policy, decide, respond.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::Response;
use base64::Engine;
use http::header::{CONTENT_TYPE, LOCATION, SET_COOKIE};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use portcullis_core::domain::host_is_under;
use portcullis_core::redirect::{anchor_body, portal_redirect_url, redirect_status};
use portcullis_core::{
    AuthLevel, AuthOutcome, Connection, Decision, Dialect, Identity, RequestHead, Target,
    TargetUrl, decide, resolve,
};
use portcullis_session::{Validity, find_session_cookie};

use crate::config::{CookieDomain, Endpoint, Implementation, Refresh, Strategy, StrategyKind};
use crate::state::AppState;

pub(crate) const TEXT_PLAIN: &str = "text/plain; charset=utf-8";
const TEXT_HTML: &str = "text/html; charset=utf-8";
const BASIC_REALM: &str = "Basic realm=\"Authorization Required\"";

/// An address nobody trusts, used when the router runs without connection info.
pub(crate) const UNKNOWN_PEER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::BROADCAST);

/// The TCP peer of a request (from `ConnectInfo`), or an untrusted placeholder.
pub(crate) fn peer_of(request: &Request) -> IpAddr {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(UNKNOWN_PEER, |c| c.0.ip().to_canonical())
}

/// `<code> <reason>` as text/plain; no body for HEAD.
pub(crate) fn plain(status: StatusCode, head: bool) -> Response {
    let body = match (head, status) {
        (true, _) => Body::empty(),
        // The check path's answers, without formatting them each time.
        (false, StatusCode::OK) => Body::from("200 OK"),
        (false, StatusCode::UNAUTHORIZED) => Body::from("401 Unauthorized"),
        (false, StatusCode::FORBIDDEN) => Body::from("403 Forbidden"),
        (false, StatusCode::BAD_REQUEST) => Body::from("400 Bad Request"),
        (false, _) => Body::from(format!(
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

fn bad(implementation: Implementation, head: bool) -> Response {
    match implementation {
        Implementation::Legacy => plain(StatusCode::UNAUTHORIZED, head),
        _ => plain(StatusCode::BAD_REQUEST, head),
    }
}

/// The handler shared by every authz endpoint.
pub(crate) async fn handle(
    State(state): State<AppState>,
    endpoint: Arc<Endpoint>,
    request: Request,
) -> Response {
    let started = Instant::now();
    let (response, decision) = check(&state, &endpoint, request).await;
    state
        .0
        .metrics
        .check(&endpoint.name, decision, started.elapsed().as_secs_f64());
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
) -> (Response, &'static str) {
    let implementation = endpoint.implementation;
    let head = request.method() == Method::HEAD;
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
                return (bad(implementation, head), "bad_request");
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
            tracing::info!(endpoint = %endpoint.name, %peer, reason = %e, "bad forward-auth request");
            return (bad(implementation, head), "bad_request");
        }
    };
    // 2. Scheme.
    if !target.url.is_secure() {
        tracing::info!(endpoint = %endpoint.name, scheme = target.url.scheme(), "target scheme must be https or wss");
        return (bad(implementation, head), "bad_request");
    }
    // 3. Cookie domain.
    let host = target.url.host();
    let Some(cookie_index) = config
        .cookies
        .iter()
        .position(|c| host_is_under(host, &c.domain))
    else {
        tracing::info!(
            host = target.url.host(),
            "target has no relevant session-cookie configuration"
        );
        return (bad(implementation, head), "bad_request");
    };
    let cookie = &config.cookies[cookie_index];
    // 4. Portal URL.
    let query = parse_query(parts.uri.query());
    let auth_basic = implementation == Implementation::Legacy
        && query_value(&query, "auth").as_deref() == Some("basic");
    let peer_trusted = config.trusted_proxies.contains(peer);
    let portal = match portal_url(implementation, &query, &parts.headers, peer_trusted, cookie) {
        Ok(p) => p,
        Err(reason) => {
            tracing::info!(endpoint = %endpoint.name, reason, "invalid portal URL");
            return (bad(implementation, head), "bad_request");
        }
    };
    // 5. Authenticate.
    let started = tokio::time::Instant::now();
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
    tracing::debug!(
        endpoint = %endpoint.name,
        target = %target.url,
        method = %target.method,
        client = %target.client_ip,
        user = %authn.identity.username,
        rule = ?evaluation.rule,
        required = ?evaluation.requirement.level,
        decision = ?decision,
        "authz decision"
    );
    if authn.pad_failure {
        state.0.delays.pad(started).await;
    }
    // 8. Respond.
    let strategy = endpoint.strategies.get(authn.deciding);
    let (mut response, label) = match decision {
        Decision::Allow => (allowed(state, &authn.identity, head), "allow"),
        Decision::Forbidden => (plain(StatusCode::FORBIDDEN, head), "forbidden"),
        Decision::Unauthorized => (challenge(strategy, head), "challenge"),
        Decision::Redirect => {
            if auth_basic {
                (challenge(strategy, head), "challenge")
            } else {
                match (implementation, portal) {
                    (Implementation::Legacy, None) => {
                        (plain(StatusCode::UNAUTHORIZED, head), "unauthorized")
                    }
                    (_, None) => (bad(implementation, head), "bad_request"),
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
                        (redirect(status, &location, head), "redirect")
                    }
                }
            }
        }
        _ => (plain(StatusCode::FORBIDDEN, head), "forbidden"),
    };
    if let Some(cookie) = authn
        .set_cookie
        .and_then(|c| HeaderValue::from_str(&c).ok())
    {
        response.headers_mut().append(SET_COOKIE, cookie);
    }
    (response, label)
}

fn allowed(state: &AppState, identity: &Identity, head: bool) -> Response {
    let mut response = plain(StatusCode::OK, head);
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

fn redirect(status: StatusCode, location: &str, head: bool) -> Response {
    let body = if head {
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
        Err(_) => plain(StatusCode::BAD_REQUEST, head),
    }
}

fn challenge(strategy: Option<&Strategy>, head: bool) -> Response {
    let proxy = strategy.is_some_and(|s| s.kind == StrategyKind::HeaderProxyAuthorization);
    if proxy {
        let mut r = plain(StatusCode::PROXY_AUTHENTICATION_REQUIRED, head);
        r.headers_mut().insert(
            http::header::PROXY_AUTHENTICATE,
            HeaderValue::from_static(BASIC_REALM),
        );
        r
    } else {
        let mut r = plain(StatusCode::UNAUTHORIZED, head);
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

/// forward-auth.md §3.4: the override (validated against the matched cookie domain) or the cookie's
/// portal URL; `Ok(None)` only on Legacy.
fn portal_url(
    implementation: Implementation,
    query: &[(String, String)],
    headers: &HeaderMap,
    peer_trusted: bool,
    cookie: &CookieDomain,
) -> Result<Option<String>, &'static str> {
    let header_override = || -> Result<Option<String>, &'static str> {
        if !peer_trusted {
            return Ok(None);
        }
        match headers.get("x-authelia-url") {
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
            Ok(Some(value))
        }
        None if implementation == Implementation::Legacy => Ok(None),
        None => cookie
            .authelia_url
            .clone()
            .map(Some)
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

/// What a credential header holds.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Credential {
    /// Nothing usable: go on to the next strategy.
    Absent,
    /// `Basic` with user and password.
    Basic(String, String),
    /// `Bearer` token (not issued by Portcullis yet).
    Bearer,
    /// Malformed.
    Invalid(&'static str),
}

/// forward-auth.md §4.3.
pub(crate) fn parse_credential(value: Option<&HeaderValue>) -> Credential {
    let Some(value) = value else {
        return Credential::Absent;
    };
    if value.is_empty() {
        return Credential::Absent;
    }
    let Ok(text) = value.to_str() else {
        return Credential::Invalid("non-ASCII credential header");
    };
    let Some((scheme, rest)) = text.split_once(' ') else {
        return Credential::Invalid("missing space after scheme");
    };
    if scheme.eq_ignore_ascii_case("bearer") {
        return Credential::Bearer;
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return Credential::Invalid("unknown authorization scheme");
    }
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(rest) else {
        return Credential::Invalid("invalid base64");
    };
    let Ok(decoded) = String::from_utf8(decoded) else {
        return Credential::Invalid("credentials are not UTF-8");
    };
    let Some((user, password)) = decoded.split_once(':') else {
        return Credential::Invalid("no ':' in credentials");
    };
    if user.is_empty() || password.is_empty() {
        return Credential::Invalid("empty username or password");
    }
    Credential::Basic(user.to_owned(), password.to_owned())
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
                Credential::Basic(_, _) if !strategy.basic => {
                    tracing::info!(endpoint = %endpoint.name, "Basic is not enabled for this strategy");
                    return failed(false, set_cookie);
                }
                Credential::Basic(user, password) => {
                    return match basic(state, endpoint, strategy, &user, &password, target, now)
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

/// forward-auth.md §4.4. `None` for every failure (unknown user, ban, wrong password, overload).
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
    let client = target.client_ip.addr();
    let Some(user) = users.lookup(login) else {
        // Same cost as a wrong password.
        if let Some(dummy) = users.dummy_digest() {
            let _ = state.0.hasher.verify(dummy, password.to_owned()).await;
        }
        state.0.regulator.record("", client, false, now).await;
        tracing::info!(endpoint = %endpoint.name, "basic authentication failed: unknown user");
        return None;
    };
    if state
        .0
        .regulator
        .is_banned(Some(&user.username), client, now)
        .await
    {
        tracing::info!(endpoint = %endpoint.name, user = %user.username, "basic authentication refused: banned");
        return None;
    }
    let lifespan = strategy
        .basic_cache
        .unwrap_or(state.config().basic_auth_cache);
    if lifespan > 0 && state.0.basic_cache.hit(&user.username, password, now) {
        return Some(user.identity(AuthLevel::OneFactor, now));
    }
    let started = std::time::Instant::now();
    let ok = match state
        .0
        .hasher
        .verify(user.digest.clone(), password.to_owned())
        .await
    {
        Ok(ok) => ok,
        Err(e) => {
            tracing::warn!(error = %e, "basic authentication not checked");
            return None;
        }
    };
    state
        .0
        .regulator
        .record(&user.username, client, ok, now)
        .await;
    if !ok {
        tracing::info!(endpoint = %endpoint.name, user = %user.username, "basic authentication failed: wrong password");
        return None;
    }
    state.0.delays.record_success(started.elapsed());
    if lifespan > 0 {
        state
            .0
            .basic_cache
            .insert(&user.username, password, now + lifespan);
    }
    Some(user.identity(AuthLevel::OneFactor, now))
}

pub(crate) enum CookieResult {
    Absent,
    /// The session was invalid and destroyed: send this clearing `Set-Cookie`.
    Destroyed(String),
    Valid(Box<Identity>),
}

/// forward-auth.md §4.6.
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
    let refresh = match state.config().refresh {
        Refresh::Always => true,
        Refresh::Never => false,
        Refresh::Every(secs) => {
            now.saturating_sub(session.identity.authenticated_at.unwrap_or(0)) >= secs
        }
    };
    let mut changed = false;
    if refresh && !session.identity.username.is_empty() {
        match state.users().get(&session.identity.username) {
            None => return destroy("user removed or disabled").await,
            Some(user) => {
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
    if let Some(claimed) = headers.get("session-username") {
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
    } else if changed {
        if let Err(e) = store.put(&session).await {
            tracing::warn!(error = %e, "could not save refreshed user details");
        }
    }
    CookieResult::Valid(Box::new(session.identity))
}
