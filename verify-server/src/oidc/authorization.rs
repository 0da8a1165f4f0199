//! The authorization endpoint and the login flow around it (docs/reference/oidc-provider.md
//! §2.4): park the request as a flow, send the browser to the portal, come back with
//! `consent_id`, check the client's authorization policy, ask for consent when the client's mode
//! wants it, and issue the code.

use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use http::header::LOCATION;
use http::{HeaderValue, StatusCode};
use portcullis_core::{AuthLevel, Identity};
use portcullis_oidc::authorize::{
    AuthorizationRequest, AuthorizeError, ErrorTarget, parse_authorization_request,
};
use portcullis_oidc::client::{ConsentMode, ResponseMode};
use portcullis_oidc::opaque::TokenKind;
use portcullis_oidc::response::{Delivery, append_query, deliver};
use portcullis_oidc::store::{Consumed, RecordKind};
use portcullis_oidc::{ErrorCode, OAuthError};
use sha2::{Digest as _, Sha256};

use super::pages;
use super::records::{ConsentAnswer, FlowRecord, GrantRecord, decode, encode};
use super::{OidcRuntime, issuer, random32, runtime, single, uuid_v4};
use crate::authz::peer_of_parts;
use crate::config::{OidcClient, PolicyLevel};
use crate::portal::portal_identity;
use crate::state::AppState;

/// How long a parked authorization request waits for login and consent (Authelia: 10 minutes).
const FLOW_LIFESPAN: u64 = 600;

fn found(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(v) => {
            let mut r = StatusCode::FOUND.into_response();
            r.headers_mut().insert(LOCATION, v);
            r
        }
        Err(_) => {
            tracing::error!("a redirect location is not a valid header value: refused");
            StatusCode::BAD_REQUEST.into_response()
        }
    }
}

/// The CSP source of a redirect URI: its origin, or for a native app's custom scheme
/// (`com.example.app:/cb`, whose origin is opaque) the scheme itself.
pub(super) fn origin_of(uri: &str) -> String {
    url::Url::parse(uri).map_or_else(
        |_| "'none'".to_owned(),
        |u| {
            let origin = u.origin();
            if origin.is_tuple() {
                origin.ascii_serialization()
            } else {
                format!("{}:", u.scheme())
            }
        },
    )
}

/// Send the authorization response (or error) to the client's validated redirect URI.
fn to_client(uri: &str, mode: ResponseMode, params: &[(&str, &str)]) -> Response {
    let outcome = if params.iter().any(|(k, _)| *k == "error") {
        ToClient("error")
    } else {
        ToClient("code")
    };
    let mut response = match deliver(uri, mode, params) {
        Delivery::Redirect(location) => found(&location),
        Delivery::FormPost(page) => pages::raw(
            StatusCode::OK,
            page,
            &format!(
                "default-src 'none'; script-src 'unsafe-inline'; form-action {}; frame-ancestors 'none'",
                origin_of(uri)
            ),
        ),
    };
    response.extensions_mut().insert(outcome);
    response
}

/// What a response delivered to the client carries, for the metrics: `code` or `error`, which a
/// `form_post` page (200 either way) does not show in its status or headers.
#[derive(Debug, Clone, Copy)]
struct ToClient(&'static str);

fn error_to_client(iss: &str, target: &ErrorTarget, error: &OAuthError) -> Response {
    tracing::info!(error = %error.code, reason = %error.description, redirect_uri = %target.redirect_uri, "authorization request refused: error sent to the client");
    let mut params = vec![
        ("error", error.code.as_str()),
        ("error_description", error.description.as_str()),
    ];
    if let Some(state) = &target.state {
        params.push(("state", state));
    }
    params.push(("iss", iss));
    to_client(&target.redirect_uri, target.response_mode, &params)
}

/// An error that must not reach an unvalidated redirect URI: Authelia's own completion page.
fn error_to_portal(iss: &str, error: &OAuthError) -> Response {
    tracing::info!(error = %error.code, reason = %error.description, "authorization request refused: the client or its redirect URI is not valid, shown on the portal");
    let location = append_query(
        &format!("{iss}/consent/completion"),
        &[
            ("error", error.code.as_str()),
            ("error_description", &error.description),
            ("error_status_code", &error.code.status().to_string()),
        ],
    );
    found(&location)
}

fn target_of(request: &AuthorizationRequest) -> ErrorTarget {
    ErrorTarget {
        redirect_uri: request.redirect_uri.clone(),
        response_mode: request.response_mode,
        state: request.state.clone(),
    }
}

pub(super) fn query_pairs(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

/// The query without `consent_id` (the portal appends it again).
fn query_without_consent_id(query: &str) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(query_pairs(query).iter().filter(|(k, _)| k != "consent_id"))
        .finish()
}

pub(super) async fn load_flow(
    rt: &OidcRuntime,
    id: &str,
    now: u64,
) -> Result<Option<FlowRecord>, Response> {
    match rt.store.get(RecordKind::Flow, id, now).await {
        Ok(Some(record)) if record.active => decode::<FlowRecord>(&record.value)
            .map(Some)
            .map_err(|e| super::store_failure("authorization", &e)),
        Ok(_) => Ok(None),
        Err(e) => Err(super::store_failure("authorization", &e)),
    }
}

pub(super) async fn save_flow(
    rt: &OidcRuntime,
    id: &str,
    flow: &FlowRecord,
) -> Result<(), Response> {
    let bytes = encode(flow).map_err(|e| super::store_failure("authorization", &e))?;
    rt.store
        .insert(
            RecordKind::Flow,
            id,
            id,
            &bytes,
            flow.created_at + FLOW_LIFESPAN,
        )
        .await
        .map_err(|e| super::store_failure("authorization", &e))
}

/// The `amr` values of a session level (RFC 8176).
fn amr_of(level: AuthLevel) -> Vec<String> {
    match level {
        AuthLevel::TwoFactor => vec!["pwd".into(), "mfa".into()],
        _ => vec!["pwd".into()],
    }
}

/// The key of a remembered (pre-configured) consent: the exact subject, client, scopes and
/// audience, as Authelia matches it.
pub(super) fn consent_key(subject: &str, client: &str, request: &AuthorizationRequest) -> String {
    let mut scopes: Vec<&str> = request.scopes.iter().collect();
    scopes.sort_unstable();
    let mut audience: Vec<&str> = request.audience.iter().map(String::as_str).collect();
    audience.sort_unstable();
    let text = format!(
        "{subject}\n{client}\n{}\n{}",
        scopes.join(" "),
        audience.join(" ")
    );
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `GET /api/oidc/authorization`, counted in the metrics by outcome.
pub(super) async fn authorize(State(state): State<AppState>, parts: Parts) -> Response {
    let response = answer_authorization(&state, parts).await;
    let location = response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let outcome = if let Some(ToClient(outcome)) = response.extensions().get::<ToClient>() {
        outcome
    } else if location.contains("flow=openid_connect") && location.contains("/?") {
        "login"
    } else if location.contains("/consent/openid/decision") {
        "consent"
    } else {
        "error"
    };
    state.0.metrics.oidc("authorization", outcome);
    response
}

async fn answer_authorization(state: &AppState, parts: Parts) -> Response {
    let state = state.clone();
    let Some(rt) = runtime(&state).cloned() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Some(iss) = issuer(&state, &parts) else {
        tracing::info!("authorization request refused: the host matches no session cookie domain");
        return (
            StatusCode::BAD_REQUEST,
            "400 Bad Request: no session cookie domain matches this host",
        )
            .into_response();
    };
    let query = parts.uri.query().unwrap_or("").to_owned();
    let pairs = query_pairs(&query);
    // A pushed request (RFC 9126): the authorization request is the one the client pushed.
    let pushed_uri = match single(&pairs, "request_uri") {
        Ok(v) => v.map(str::to_owned),
        Err(e) => return error_to_portal(&iss, &e),
    };
    let (query, pairs) = match &pushed_uri {
        None => (query, pairs),
        Some(uri) => {
            let client_id = single(&pairs, "client_id").ok().flatten();
            match super::pushed::take(&rt, uri, client_id, state.now()).await {
                Ok(pushed) => (pushed.clone(), query_pairs(&pushed)),
                Err(e) => return error_to_portal(&iss, &e),
            }
        }
    };
    let clients = rt.clients();
    let parsed = parse_authorization_request(&pairs, &rt.provider.settings, |id| {
        clients
            .iter()
            .find(|c| c.client.id == id)
            .map(|c| &c.client)
    });
    let (client_id, parsed_request) = match parsed {
        Ok((client, request)) => (client.id.clone(), request),
        Err(AuthorizeError::Unredirectable(e)) => return error_to_portal(&iss, &e),
        Err(AuthorizeError::Redirect(target, e)) => return error_to_client(&iss, &target, &e),
    };
    let Some(client) = rt.client(&client_id) else {
        return error_to_portal(
            &iss,
            &OAuthError::new(ErrorCode::InvalidClient, "The client is not registered."),
        );
    };
    let now = state.now();
    let consent_id = match single(&pairs, "consent_id") {
        Ok(v) => v.map(str::to_owned),
        Err(e) => return error_to_client(&iss, &target_of(&parsed_request), &e),
    };
    // PAR enforced by the provider or the client: only a pushed request starts a flow (the
    // return from the portal carries the flow instead).
    if (rt.provider.require_par || client.require_par)
        && pushed_uri.is_none()
        && consent_id.is_none()
    {
        return error_to_client(
            &iss,
            &target_of(&parsed_request),
            &OAuthError::new(
                ErrorCode::InvalidRequest,
                "Pushed Authorization Requests are enforced for this client but no such request was sent.",
            ),
        );
    }
    let mut flow = match &consent_id {
        None => None,
        Some(id) => match load_flow(&rt, id, now).await {
            Err(r) => return r,
            Ok(Some(f)) if f.request.client_id == client.client.id && f.issuer == iss => Some(f),
            Ok(_) => {
                return error_to_client(
                    &iss,
                    &target_of(&parsed_request),
                    &OAuthError::new(
                        ErrorCode::InvalidRequest,
                        "The consent session was not found, has expired or belongs to another client.",
                    ),
                );
            }
        },
    };
    // After login and consent the parked request is authoritative: parameters changed on the way
    // back cannot widen what was asked for.
    let request = flow.as_ref().map_or(parsed_request, |f| f.request.clone());
    let peer = peer_of_parts(&parts);
    let (_, identity, clear) = portal_identity(&state, &parts, peer).await;
    let response = decide(
        &state, &rt, &client, &iss, &query, request, consent_id, &mut flow, &identity, &parts, now,
    )
    .await;
    let response = match response {
        Ok(r) | Err(r) => r,
    };
    crate::portal::with_cookie(response, clear)
}

#[allow(clippy::too_many_arguments)]
async fn decide(
    state: &AppState,
    rt: &OidcRuntime,
    client: &OidcClient,
    iss: &str,
    query: &str,
    request: AuthorizationRequest,
    consent_id: Option<String>,
    flow: &mut Option<FlowRecord>,
    identity: &Identity,
    parts: &Parts,
    now: u64,
) -> Result<Response, Response> {
    let target = target_of(&request);
    let fail = |code: ErrorCode, description: &str| {
        error_to_client(iss, &target, &OAuthError::new(code, description))
    };

    // 1. Authentication: a session, fresh enough for `prompt=login` and `max_age`.
    let authenticated_at = identity.authenticated_at.unwrap_or(0);
    let logged_in = identity.level >= AuthLevel::OneFactor && !identity.username.is_empty();
    // A login made after this flow started is fresh for `prompt=login` and any `max_age`
    // (`max_age=0` included: otherwise the browser would go round the portal for ever).
    let logged_in_through_flow = flow
        .as_ref()
        .is_some_and(|f| authenticated_at >= f.created_at);
    let fresh_enough = logged_in_through_flow
        || (!request.prompt.login
            && request
                .max_age
                .is_none_or(|max| now.saturating_sub(authenticated_at) <= max));
    if !logged_in || !fresh_enough {
        if request.prompt.none {
            return Err(fail(
                ErrorCode::LoginRequired,
                "The Authorization Server requires End-User authentication.",
            ));
        }
        let id = consent_id.clone().unwrap_or_else(uuid_v4);
        if flow.is_none() {
            let record = FlowRecord {
                request: request.clone(),
                query: query_without_consent_id(query),
                issuer: iss.to_owned(),
                created_at: now,
                username: None,
                consent: ConsentAnswer::Pending,
            };
            save_flow(rt, &id, &record).await?;
        }
        tracing::info!(client = %client.client.id, "authorization request: sending the browser to the portal to log in");
        return Ok(found(&format!("{iss}/?flow=openid_connect&flow_id={id}")));
    }

    // 2. The client's authorization policy (docs/reference/oidc-provider.md §2.5).
    let ip = portcullis_core::client_ip(
        &parts.headers,
        peer_of_parts(parts),
        &state.config().trusted_proxies,
    )
    .addr();
    match client
        .policy
        .required(&identity.username, &identity.groups, ip)
    {
        PolicyLevel::Deny => {
            tracing::info!(user = %identity.username, client = %client.client.id, "authorization refused by the client's authorization policy");
            return Err(fail(
                ErrorCode::AccessDenied,
                "The user was denied access to this client.",
            ));
        }
        PolicyLevel::Level(required) if identity.level < required => {
            // Portcullis has no second factor yet: a two_factor client cannot be satisfied, and
            // sending the browser to the portal again would loop.
            tracing::info!(user = %identity.username, client = %client.client.id, "authorization refused: the client's policy requires two factors, which Portcullis does not offer yet");
            return Err(fail(
                ErrorCode::AccessDenied,
                "The client requires two-factor authentication, which is not available.",
            ));
        }
        PolicyLevel::Level(_) => {}
    }
    if let Some(f) = flow.as_ref()
        && f.username
            .as_deref()
            .is_some_and(|u| u != identity.username)
    {
        return Err(fail(
            ErrorCode::AccessDenied,
            "The consent session belongs to another user.",
        ));
    }

    // 3. Consent.
    let subject = rt
        .store
        .subject(&identity.username, "", &uuid_v4())
        .await
        .map_err(|e| super::store_failure("authorization", &e))?;
    let forced = request.prompt.consent || request.prompt.login || request.scopes.wants_offline();
    let remembered_key = consent_key(&subject, &client.client.id, &request);
    let needs_explicit = match client.client.consent_mode {
        ConsentMode::Explicit => true,
        ConsentMode::Implicit => forced,
        ConsentMode::PreConfigured(_) => {
            forced
                || !rt
                    .store
                    .get(RecordKind::Consent, &remembered_key, now)
                    .await
                    .map_err(|e| super::store_failure("authorization", &e))?
                    .is_some_and(|r| r.active)
        }
    };
    if needs_explicit {
        match flow.as_ref().map(|f| &f.consent) {
            Some(ConsentAnswer::Granted) => {}
            Some(ConsentAnswer::Denied) => {
                return Err(fail(
                    ErrorCode::AccessDenied,
                    "The resource owner or authorization server denied the request.",
                ));
            }
            _ if request.prompt.none => {
                return Err(fail(
                    ErrorCode::ConsentRequired,
                    "The Authorization Server requires End-User consent.",
                ));
            }
            _ => {
                let id = consent_id.clone().unwrap_or_else(uuid_v4);
                let record = match flow.take() {
                    Some(mut f) => {
                        f.username = Some(identity.username.clone());
                        f
                    }
                    None => FlowRecord {
                        request: request.clone(),
                        query: query_without_consent_id(query),
                        issuer: iss.to_owned(),
                        created_at: now,
                        username: Some(identity.username.clone()),
                        consent: ConsentAnswer::Pending,
                    },
                };
                save_flow(rt, &id, &record).await?;
                return Ok(found(&format!(
                    "{iss}/consent/openid/decision?flow=openid_connect&flow_id={id}"
                )));
            }
        }
    }

    // 4. The flow is used up: a replayed consent_id issues nothing.
    if let Some(id) = &consent_id {
        match rt.store.consume(RecordKind::Flow, id, now).await {
            Ok(Consumed::Fresh(_)) => {}
            Ok(_) => {
                return Err(fail(
                    ErrorCode::InvalidRequest,
                    "The consent session has already been used.",
                ));
            }
            Err(e) => return Err(super::store_failure("authorization", &e)),
        }
    }

    // 5. The code.
    let Some((code, key)) = rt.token_key.mint(TokenKind::AuthorizationCode, random32()) else {
        return Err(super::store_failure(
            "authorization",
            &portcullis_oidc::OidcError::Key("could not sign the code".into()),
        ));
    };
    let grant = GrantRecord {
        client_id: client.client.id.clone(),
        username: Some(identity.username.clone()),
        subject,
        scopes: request.scopes.clone(),
        audience: request.audience.clone(),
        issuer: iss.to_owned(),
        auth_time: authenticated_at,
        amr: amr_of(identity.level),
        nonce: request.nonce.clone(),
        redirect_uri: Some(request.redirect_uri.clone()),
        redirect_uri_given: request.redirect_uri_given,
        challenge: request.challenge.clone(),
        issued_at: now,
        expires_at: now + client.lifespans.authorize_code,
        access_token_key: None,
    };
    let bytes = encode(&grant).map_err(|e| super::store_failure("authorization", &e))?;
    let family = uuid_v4();
    rt.store
        .insert(RecordKind::Code, &key, &family, &bytes, grant.expires_at)
        .await
        .map_err(|e| super::store_failure("authorization", &e))?;
    tracing::info!(user = %identity.username, client = %client.client.id, scopes = %request.scopes.to_param(), "authorization code issued");
    let mut params = vec![("code", code.as_str())];
    if let Some(s) = &request.state {
        params.push(("state", s));
    }
    params.push(("iss", iss));
    Ok(to_client(
        &request.redirect_uri,
        request.response_mode,
        &params,
    ))
}

/// `POST /api/oidc/authorization`: answered with a redirect to the GET form with the same
/// parameters, so that the browser sends its SameSite=Lax session cookie (as Authelia does).
pub(super) async fn authorize_post(State(state): State<AppState>, request: Request) -> Response {
    let (parts, pairs) = match super::form_body(request).await {
        Ok(v) => v,
        Err(e) => return (StatusCode::BAD_REQUEST, e.description).into_response(),
    };
    let Some(iss) = issuer(&state, &parts) else {
        return (
            StatusCode::BAD_REQUEST,
            "400 Bad Request: no session cookie domain matches this host",
        )
            .into_response();
    };
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs.iter())
        .finish();
    let mut r = StatusCode::SEE_OTHER.into_response();
    match HeaderValue::from_str(&format!("{iss}/api/oidc/authorization?{query}")) {
        Ok(v) => {
            r.headers_mut().insert(LOCATION, v);
            r
        }
        Err(_) => StatusCode::BAD_REQUEST.into_response(),
    }
}

/// The origin of the redirect URI of flow `flow_id` (the login page of the flow lets its form's
/// redirects end there).
pub(crate) async fn flow_client_origin(state: &AppState, flow_id: &str) -> Option<String> {
    let rt = runtime(state)?;
    let flow = load_flow(rt, flow_id, state.now()).await.ok().flatten()?;
    Some(origin_of(&flow.request.redirect_uri))
}

/// After a portal login with `flow=openid_connect&flow_id=…`: where the browser goes next, the
/// authorization endpoint with the parked request and `consent_id`. `None` when the flow is
/// unknown, expired or used.
pub(crate) async fn flow_redirect_after_login(state: &AppState, flow_id: &str) -> Option<String> {
    let rt = runtime(state)?;
    let flow = load_flow(rt, flow_id, state.now()).await.ok().flatten()?;
    let sep = if flow.query.is_empty() { "" } else { "&" };
    Some(format!(
        "{}/api/oidc/authorization?{}{sep}consent_id={}",
        flow.issuer,
        flow.query,
        form_urlencoded::byte_serialize(flow_id.as_bytes()).collect::<String>()
    ))
}
