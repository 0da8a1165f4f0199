//! Discovery (`/.well-known/openid-configuration`), RFC 8414 metadata and the JWK Set, each with
//! `Access-Control-Allow-Origin: *` as Authelia serves them.

use axum::extract::State;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use http::header::{ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN, CONTENT_TYPE};
use http::{HeaderValue, StatusCode};
use portcullis_oidc::discovery::{
    DiscoveryInput, oauth_metadata as metadata_doc, openid_configuration as openid_doc,
};

use super::{issuer, runtime};
use crate::state::AppState;

fn cors_json(body: String) -> Response {
    let mut r = (StatusCode::OK, body).into_response();
    let h = r.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    r
}

fn not_found() -> Response {
    tracing::info!(
        "OpenID Connect metadata refused: the request's host matches no session cookie domain"
    );
    (StatusCode::NOT_FOUND, "404 page not found").into_response()
}

fn document(state: &AppState, parts: &Parts, openid: bool) -> Response {
    let (Some(rt), Some(iss)) = (runtime(state), issuer(state, parts)) else {
        return not_found();
    };
    // The provider's keys, and the HMAC algorithms clients' ID tokens are signed with.
    let mut algs = rt.keys().algorithms();
    for c in rt.clients().iter() {
        // ID tokens only: access-token algorithms are the resource servers' business.
        let alg = c.client.id_token_alg;
        if !algs.contains(&alg) {
            algs.push(alg);
        }
    }
    let input = DiscoveryInput {
        issuer: &iss,
        signing_algs: &algs,
        plain_pkce: rt.provider.settings.allow_plain_pkce,
        require_par: rt.provider.require_par,
    };
    let mut doc = if openid {
        openid_doc(&input)
    } else {
        metadata_doc(&input)
    };
    // `signed_metadata` (RFC 8414 §2.1): the same fields as a JWT, when configured.
    if let Some((alg, kid)) = &rt.provider.discovery_signing {
        let keys = rt.keys();
        let key = match kid {
            Some(kid) => keys.by_kid(kid),
            None => keys.for_alg(*alg),
        };
        let mut claims = doc.clone();
        claims["iss"] = serde_json::json!(iss);
        let now = state.now();
        claims["iat"] = serde_json::json!(now);
        claims["exp"] = serde_json::json!(now + 3600);
        match key.map(|k| k.sign(&claims, None)) {
            Some(Ok(jwt)) => doc["signed_metadata"] = serde_json::json!(jwt),
            Some(Err(e)) => tracing::error!(error = %e, "could not sign the metadata"),
            None => tracing::error!("no key signs the metadata"),
        }
    }
    cors_json(doc.to_string())
}

/// `GET /.well-known/openid-configuration`.
pub(super) async fn openid_configuration(State(state): State<AppState>, parts: Parts) -> Response {
    document(&state, &parts, true)
}

/// `GET /.well-known/oauth-authorization-server`.
pub(super) async fn oauth_metadata(State(state): State<AppState>, parts: Parts) -> Response {
    document(&state, &parts, false)
}

/// `GET /jwks.json`.
pub(super) async fn jwks(State(state): State<AppState>) -> Response {
    match runtime(&state) {
        Some(rt) => match serde_json::to_string(&rt.keys().jwks()) {
            Ok(body) => cors_json(body),
            Err(e) => {
                tracing::error!(error = %e, "could not render the JWK Set");
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
        },
        None => not_found(),
    }
}

/// `OPTIONS` on the metadata: a CORS preflight answer.
pub(super) async fn preflight() -> Response {
    let mut r = StatusCode::NO_CONTENT.into_response();
    let h = r.headers_mut();
    h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    h.insert(
        ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, OPTIONS"),
    );
    r
}
