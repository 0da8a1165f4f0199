//! Request and response plumbing of the token-style endpoints: form bodies, single parameters,
//! JSON answers that are never cached, OAuth errors, rate-limit answers, client addresses.

use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use http::header::{CACHE_CONTROL, CONTENT_TYPE, PRAGMA};
use http::{HeaderValue, StatusCode};
use portcullis_oidc::{OAuthError, OidcError};

use crate::state::AppState;

/// The client address a rate limit counts: from `X-Forwarded-For` behind a trusted proxy, else
/// the peer (an unparsable chain counts against the proxy's address).
pub(crate) fn client_addr(state: &AppState, request: &axum::extract::Request) -> std::net::IpAddr {
    let peer = crate::authz::peer_of(request);
    portcullis_core::client_ip(request.headers(), peer, &state.config().trusted_proxies)
        .addr()
        .unwrap_or(peer)
}

/// [`client_addr`] for handlers that took the request apart.
pub(crate) fn client_addr_of_parts(state: &AppState, parts: &Parts) -> std::net::IpAddr {
    let peer = crate::authz::peer_of_parts(parts);
    portcullis_core::client_ip(&parts.headers, peer, &state.config().trusted_proxies)
        .addr()
        .unwrap_or(peer)
}

/// 429 with `Retry-After`, as Authelia answers a rate-limited OpenID Connect endpoint.
pub(crate) fn too_many_requests(endpoint: &'static str, retry_after: u64) -> Response {
    tracing::info!(
        endpoint,
        retry_after,
        "OpenID Connect request refused: rate limited"
    );
    let mut r = no_store_json(
        StatusCode::TOO_MANY_REQUESTS,
        &serde_json::json!({"error": "temporarily_unavailable", "error_description": "Too many requests. The endpoint is temporarily unavailable. Try again later."}),
    );
    if let Ok(v) = HeaderValue::from_str(&retry_after.max(1).to_string()) {
        r.headers_mut().insert(http::header::RETRY_AFTER, v);
    }
    r
}

/// A JSON answer that must not be cached (token-style endpoints, RFC 6749 §5.1).
pub(crate) fn no_store_json(status: StatusCode, body: &serde_json::Value) -> Response {
    let mut r = (status, body.to_string()).into_response();
    let h = r.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

/// An OAuth error as JSON (RFC 6749 §5.2), logged with its reason.
pub(crate) fn oauth_error(endpoint: &'static str, error: &OAuthError) -> Response {
    tracing::info!(endpoint, error = %error.code, reason = %error.description, "OpenID Connect request refused");
    let status = StatusCode::from_u16(error.code.status()).unwrap_or(StatusCode::BAD_REQUEST);
    no_store_json(status, &error.to_json())
}

/// A store failure: logged, answered `server_error` (never an allow).
pub(crate) fn store_failure(endpoint: &'static str, e: &OidcError) -> Response {
    tracing::error!(endpoint, error = %e, "OpenID Connect store failed: request refused");
    no_store_json(
        StatusCode::INTERNAL_SERVER_ERROR,
        &serde_json::json!({"error": "server_error", "error_description": "The authorization server encountered an unexpected condition that prevented it from fulfilling the request."}),
    )
}

/// Parse an `application/x-www-form-urlencoded` body; `None` when it is not one or is too large.
pub(crate) async fn form_body(
    request: axum::extract::Request,
) -> Result<(Parts, Vec<(String, String)>), OAuthError> {
    let (parts, body) = request.into_parts();
    let is_form = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| {
            m.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !is_form {
        return Err(OAuthError::new(
            portcullis_oidc::ErrorCode::InvalidRequest,
            "The request body must be application/x-www-form-urlencoded.",
        ));
    }
    let bytes = axum::body::to_bytes(body, 64 * 1024).await.map_err(|_| {
        OAuthError::new(
            portcullis_oidc::ErrorCode::InvalidRequest,
            "The request body is too large.",
        )
    })?;
    let pairs = form_urlencoded::parse(&bytes).into_owned().collect();
    Ok((parts, pairs))
}

/// The single value of `name`; `Err` when repeated (RFC 6749 §3.2), empty counts as absent.
pub(crate) fn single<'a>(
    pairs: &'a [(String, String)],
    name: &str,
) -> Result<Option<&'a str>, OAuthError> {
    let mut found = None;
    for (k, v) in pairs {
        if k == name {
            if found.is_some() {
                return Err(OAuthError::new(
                    portcullis_oidc::ErrorCode::InvalidRequest,
                    format!("The '{name}' parameter is included more than once."),
                ));
            }
            found = Some(v.as_str());
        }
    }
    Ok(found.filter(|v| !v.is_empty()))
}
