//! `portcullis-verify`: the Authelia-compatible forward-auth server.
//!
//! A reverse proxy asks, for each request, whether it may pass; this crate answers on Authelia's
//! endpoints (`/api/authz/forward-auth`, `/api/authz/auth-request`, `/api/authz/ext-authz`,
//! `/api/verify`) and serves the login portal (`/`, `/api/firstfactor`, `/api/state`, `/api/logout`).
//! It reads Authelia's `configuration.yml` and `users_database.yml`.
//!
//! The library exposes [`router`], so another service can mount the endpoints; give it connection
//! info (`into_make_service_with_connect_info::<SocketAddr>()`), otherwise every peer is untrusted
//! and forwarded headers are ignored.
//!
//! ```
//! use portcullis_verify_server::config::{parse, SecretSources};
//! let yaml = r#"
//! authentication_backend: { file: { path: users.yml } }
//! access_control: { default_policy: one_factor }
//! session:
//!   secret: a-very-long-random-secret
//!   cookies: [{ domain: example.com, authelia_url: "https://auth.example.com" }]
//! "#;
//! let (config, warnings) = parse("configuration.yml".as_ref(), yaml, &SecretSources::default()).unwrap();
//! assert!(warnings.is_empty());
//! assert_eq!(config.endpoints.len(), 4);
//! ```

#![warn(missing_docs, unreachable_pub)]

mod app;
mod args;
pub mod authz;
pub mod config;
mod directory;
mod error;
mod metrics;
pub mod oidc;
mod portal;
pub mod reload;
mod second_factor;
pub mod state;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::routing::{MethodRouter, any, get, post};
use http::{HeaderValue, StatusCode};

pub use crate::app::{App, Handle};
pub use crate::args::{Args, VERSION};
use crate::config::Implementation;
pub use crate::directory::attach_configured_directory;
pub use crate::error::{EdgeError, StartError};
pub use crate::state::{AppState, Clock, Tuning, system_clock};

/// Build the router for every authz endpoint and the portal.
pub fn router(state: AppState) -> Router {
    let mut router = Router::new();
    for endpoint in &state.config().endpoints {
        let route = Arc::new(authz::CheckRoute {
            endpoint: endpoint.clone(),
            counters: state.0.metrics.endpoint(&endpoint.name),
        });
        let handler = {
            let route = route.clone();
            move |state: State<AppState>, request: Request| {
                authz::handle(state, route.clone(), request)
            }
        };
        match endpoint.implementation {
            Implementation::ForwardAuth | Implementation::AuthRequest => {
                let route: MethodRouter<AppState> = get(handler.clone())
                    .head(handler)
                    .fallback(|| async { authz::plain(StatusCode::METHOD_NOT_ALLOWED) });
                router = router.route(&endpoint.path, route);
            }
            // Envoy appends the original path to the endpoint path, so `/api/authz/ext-authz/` is
            // the check for an application's root: the endpoint followed by `/` is a sub-path too.
            Implementation::ExtAuthz | Implementation::Legacy => {
                router = router
                    .route(&endpoint.path, any(handler.clone()))
                    .route(&format!("{}/", endpoint.path), any(handler.clone()))
                    .route(&format!("{}/{{*rest}}", endpoint.path), any(handler));
            }
        }
    }
    let portal = Router::new()
        .route("/", get(portal::login_page))
        .route("/login", post(portal::login_form))
        .route("/logout", post(portal::logout_form))
        .route("/login/totp", post(portal::totp_form))
        .route("/login/password", post(portal::password_form))
        .route("/static/webauthn.js", get(portal::webauthn_script))
        .route("/settings", get(portal::settings_page))
        .route("/settings/elevate", post(portal::elevate))
        .route("/settings/elevate/confirm", post(portal::confirm))
        .route("/settings/totp/begin", post(portal::totp_begin))
        .route("/settings/totp/finish", post(portal::totp_finish))
        .route("/settings/totp/remove", post(portal::totp_remove))
        .route("/settings/webauthn/remove", post(portal::webauthn_remove))
        .route("/api/firstfactor", post(portal::first_factor))
        .route("/api/state", get(portal::user_state))
        .route("/api/logout", post(portal::logout))
        .route("/api/health", get(portal::health))
        .route(
            "/revoke/one-time-code",
            get(second_factor::revoke_page).post(second_factor::revoke_form),
        )
        .route(
            "/api/checks/safe-redirection",
            post(portal::safe_redirection),
        )
        .merge(second_factor::info_routes())
        .merge(second_factor::routes(&state))
        .layer(axum::middleware::map_response_with_state(
            content_security_policy(&state),
            security_headers,
        ));
    let router = router.merge(portal);
    // The provider's pages carry their own headers (the form-post page must post to the client).
    let router = if oidc::runtime(&state).is_some() {
        router.merge(oidc::routes(state.clone()))
    } else {
        router
    };
    router.with_state(state)
}

/// The portal's CSP. `form-action` also governs the redirects that follow a form submission
/// (Chromium refuses the login's 303 to a host it does not list), so it names every cookie domain
/// and its subdomains, on any port: the portal only redirects to safe targets, which lie there.
pub(crate) fn content_security_policy(state: &AppState) -> HeaderValue {
    let targets: String = state
        .config()
        .cookies
        .iter()
        .map(|c| format!(" https://{0}:* https://*.{0}:*", c.domain))
        .collect();
    HeaderValue::from_str(&format!(
        "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; form-action 'self'{targets}; frame-ancestors 'none'; base-uri 'none'"
    ))
    .unwrap_or_else(|_| {
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        )
    })
}

async fn security_headers(State(csp): State<HeaderValue>, mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert(
        "referrer-policy",
        HeaderValue::from_static("strict-origin-when-cross-origin"),
    );
    // A page that needs more (the login page of an OpenID flow posts to a login whose redirects
    // end at the client) sets its own.
    if !h.contains_key("content-security-policy") {
        h.insert("content-security-policy", csp);
    }
    response
}

/// The metrics router (`telemetry.metrics.address`).
pub fn metrics_router(state: AppState, path: &str) -> Router {
    portcullis_server_core::metrics::router(path, move || {
        let state = state.clone();
        async move { state.render_metrics().await }
    })
}
