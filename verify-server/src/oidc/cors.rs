//! CORS for the endpoints `identity_providers.oidc.cors` names.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode};
use portcullis_oidc::discovery::paths;

use super::runtime;
use crate::state::AppState;

/// The `cors.endpoints` name of a path.
fn cors_endpoint(path: &str) -> Option<&'static str> {
    Some(match path {
        paths::AUTHORIZATION => "authorization",
        paths::DEVICE_AUTHORIZATION => "device-authorization",
        paths::PUSHED_AUTHORIZATION_REQUEST => "pushed-authorization-request",
        paths::TOKEN => "token",
        paths::INTROSPECTION => "introspection",
        paths::REVOCATION => "revocation",
        paths::USERINFO => "userinfo",
        _ => return None,
    })
}

/// CORS for the endpoints `cors.endpoints` names (docs/reference/oidc-provider.md): a preflight
/// from an allowed origin is answered, and answers to it name it. Other origins get no CORS
/// headers, so browsers keep the answer from their pages.
pub(super) async fn cors(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    use http::header::{
        ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
        ACCESS_CONTROL_MAX_AGE, ORIGIN, VARY,
    };
    let Some(endpoint) = cors_endpoint(request.uri().path()) else {
        return next.run(request).await;
    };
    let origin = request
        .headers()
        .get(ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let allowed = match (runtime(&state), &origin) {
        (Some(rt), Some(o)) => rt.provider.cors.allows(endpoint, o),
        _ => false,
    };
    let preflight = request.method() == http::Method::OPTIONS;
    let mut response = if preflight {
        StatusCode::NO_CONTENT.into_response()
    } else {
        next.run(request).await
    };
    let h = response.headers_mut();
    h.append(VARY, HeaderValue::from_static("Origin"));
    if let (true, Some(origin)) = (allowed, origin.and_then(|o| HeaderValue::from_str(&o).ok())) {
        h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        if preflight {
            h.insert(
                ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("GET, POST, OPTIONS"),
            );
            h.insert(
                ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static("Authorization, Content-Type"),
            );
            h.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
        }
    }
    response
}
