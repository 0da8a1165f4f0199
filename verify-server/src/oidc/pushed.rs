//! Pushed authorization requests (RFC 9126) at `/api/oidc/pushed-authorization-request`: the
//! client posts its authorization request, authenticated, and gets a one-time `request_uri` for
//! the authorization endpoint (five minutes, as Authelia).

use axum::extract::{Request, State};
use axum::response::Response;
use http::StatusCode;
use portcullis_oidc::authorize::{AuthorizeError, parse_authorization_request};
use portcullis_oidc::store::{Consumed, RecordKind};
use portcullis_oidc::{ErrorCode, OAuthError};
use serde_json::json;

use super::token::{authenticate_client, refusal_response};
use super::{OidcRuntime, no_store_json, oauth_error, random32, runtime, single};
use crate::state::AppState;

/// The `request_uri` prefix RFC 9126 §2.2 suggests.
pub(crate) const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

/// How long a pushed request may wait for the browser.
const LIFESPAN: u64 = 300;

/// Client authentication parameters: never stored with the request.
const CREDENTIALS: [&str; 3] = ["client_secret", "client_assertion", "client_assertion_type"];

/// `POST /api/oidc/pushed-authorization-request`. Failed requests count toward its rate limit.
pub(super) async fn pushed(State(state): State<AppState>, request: Request) -> Response {
    let Some(rt) = runtime(&state).cloned() else {
        return oauth_error(
            "pushed_authorization_request",
            &OAuthError::new(
                ErrorCode::InvalidRequest,
                "The OpenID Connect provider is not configured.",
            ),
        );
    };
    let ip = super::client_addr(&state, &request);
    let now = state.now();
    if let Some(retry) = rt.limits.pushed.limited(ip, now) {
        return super::too_many_requests("pushed_authorization_request", retry);
    }
    let response = push(&state, &rt, request, now).await;
    if response.status() != StatusCode::CREATED && !response.status().is_server_error() {
        rt.limits.pushed.count(ip, now);
    }
    response
}

async fn push(state: &AppState, rt: &OidcRuntime, request: Request, now: u64) -> Response {
    let (parts, pairs) = match super::form_body(request).await {
        Ok(v) => v,
        Err(e) => return oauth_error("pushed_authorization_request", &e),
    };
    let client = match authenticate_client(state, rt, &parts, &pairs, true).await {
        Ok(c) => c,
        Err(r) => return refusal_response("pushed_authorization_request", &r),
    };
    let invalid = |d: &str| {
        oauth_error(
            "pushed_authorization_request",
            &OAuthError::new(ErrorCode::InvalidRequest, d),
        )
    };
    if matches!(single(&pairs, "request_uri"), Ok(Some(_)) | Err(_)) {
        return invalid("The 'request_uri' parameter must not be pushed.");
    }
    // The request as the authorization endpoint will read it: the authenticated client's id,
    // without the credentials.
    let mut stored: Vec<(String, String)> = pairs
        .iter()
        .filter(|(k, _)| !CREDENTIALS.contains(&k.as_str()) && k != "client_id")
        .cloned()
        .collect();
    match single(&pairs, "client_id") {
        Ok(Some(id)) if id != client.client.id => {
            return invalid("The 'client_id' does not match the authenticated client.");
        }
        Err(e) => return oauth_error("pushed_authorization_request", &e),
        _ => {}
    }
    stored.push(("client_id".into(), client.client.id.clone()));
    let clients = rt.clients();
    let parsed = parse_authorization_request(&stored, &rt.provider.settings, |id| {
        clients
            .iter()
            .find(|c| c.client.id == id)
            .map(|c| &c.client)
    });
    if let Err(AuthorizeError::Unredirectable(e) | AuthorizeError::Redirect(_, e)) = parsed {
        return oauth_error("pushed_authorization_request", &e);
    }
    let key: String = random32().iter().map(|b| format!("{b:02x}")).collect();
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(stored.iter())
        .finish();
    if let Err(e) = rt
        .store
        .insert(
            RecordKind::Pushed,
            &key,
            &key,
            query.as_bytes(),
            now + LIFESPAN,
        )
        .await
    {
        return super::store_failure("pushed_authorization_request", &e);
    }
    tracing::info!(client = %client.client.id, "authorization request pushed");
    no_store_json(
        StatusCode::CREATED,
        &json!({"request_uri": format!("{REQUEST_URI_PREFIX}{key}"), "expires_in": LIFESPAN}),
    )
}

/// The pushed request a `request_uri` names, used up: its query. `Err` when it is unknown,
/// expired, used, or was pushed by another client than the one the browser names.
pub(crate) async fn take(
    rt: &OidcRuntime,
    request_uri: &str,
    client_id: Option<&str>,
    now: u64,
) -> Result<String, OAuthError> {
    let refuse = || {
        OAuthError::new(
            ErrorCode::InvalidRequestUri,
            "The request_uri is unknown, expired or used.",
        )
    };
    let key = request_uri
        .strip_prefix(REQUEST_URI_PREFIX)
        .ok_or_else(refuse)?;
    let record = match rt.store.consume(RecordKind::Pushed, key, now).await {
        Ok(Consumed::Fresh(r)) => r,
        Ok(_) => return Err(refuse()),
        Err(e) => {
            tracing::error!(error = %e, "pushed request store failed");
            return Err(OAuthError::new(
                ErrorCode::ServerError,
                "The authorization server encountered an unexpected condition.",
            ));
        }
    };
    let query = String::from_utf8(record.value).map_err(|_| refuse())?;
    let pushed_client = form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "client_id")
        .map(|(_, v)| v.into_owned());
    if client_id.is_none() || pushed_client.as_deref() != client_id {
        return Err(OAuthError::new(
            ErrorCode::InvalidRequestUri,
            "The request_uri was pushed by another client.",
        ));
    }
    Ok(query)
}
