//! The server's two error types: [`StartError`] (why `portcullis-verify` could not start, with its
//! exit code) and [`EdgeError`] (a refused request: one place maps each failure to its status, logs
//! the reason and shows the client only the status).

use std::borrow::Cow;

use axum::response::{IntoResponse, Response};
use http::StatusCode;

use crate::authz::plain;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The configuration file is invalid.
    #[error("configuration error: {0}")]
    Config(#[from] portcullis_config::ConfigError),
    /// A secret file named by the environment could not be used.
    #[error("configuration error: {0}")]
    SecretFile(#[from] portcullis_config::SecretFileError),
    /// The users file is invalid.
    #[error("configuration error: {0}")]
    Users(portcullis_auth::AuthError),
    /// A session or regulation store could not be opened.
    #[error("error: {0}")]
    Store(#[from] portcullis_auth::AuthError),
    /// The login page template does not compile.
    #[error("error: login page template: {0}")]
    Template(#[from] minijinja::Error),
    /// The state was built without a session secret (neither configured nor generated).
    #[error(
        "error: no session secret: set session.secret, or let the server keep one in its SQLite storage"
    )]
    NoSessionSecret,
    /// A key could not be derived from the session secret.
    #[error("error: cannot derive the {0} key from the session secret")]
    KeyDerivation(&'static str),
    /// Binding, TLS or signals failed.
    #[error("error: {0}")]
    Serve(#[from] portcullis_server_core::ServeError),
    /// The async runtime could not start.
    #[error("error: cannot start the runtime: {0}")]
    Runtime(std::io::Error),
    /// The OpenID Connect provider could not start (its store or its signing key).
    #[error("error: OpenID Connect provider: {0}")]
    Oidc(String),
    /// The second-factor storage or the notifier could not start (a wrong encryption key, a
    /// database newer than Portcullis knows, an unwritable notification file).
    #[error("error: second factors: {0}")]
    SecondFactor(String),
    /// The users' directory (`authentication_backend.ldap`) cannot be used: unreachable at start,
    /// the service account refused, or its TLS settings unusable.
    #[error("error: authentication_backend.ldap: {0}")]
    Directory(String),
}

impl StartError {
    /// The process exit code: 2 for invalid input (configuration, users file, secrets), 1 for the
    /// rest.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Config(_) | Self::SecretFile(_) | Self::Users(_) | Self::Template(_) => 2,
            _ => 1,
        }
    }
}

/// A request the server refuses. The reason is logged; the client sees only the status.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EdgeError {
    /// A forward-auth check that is malformed or cannot be placed: 400, or 401 on the legacy
    /// endpoint, whose proxies understand only 401 and 403. Never an allow.
    #[error("bad forward-auth request on {endpoint}: {reason}")]
    BadCheck {
        /// The endpoint's name.
        endpoint: String,
        /// The legacy `/api/verify` endpoint.
        legacy: bool,
        /// Why, for the log.
        reason: Cow<'static, str>,
    },
    /// A portal request the server cannot place (no cookie domain for its host): 400 with a hint.
    #[error("portal request refused: {0}")]
    BadRequest(&'static str),
    /// The login or logout form's CSRF token is missing or wrong: 403.
    #[error("form refused: CSRF token missing or wrong")]
    FormExpired,
    /// Something inside the server failed: 500, logged as an error, never shown.
    #[error("internal error: {0}")]
    Internal(String),
}

impl IntoResponse for EdgeError {
    fn into_response(self) -> Response {
        match &self {
            Self::Internal(_) => tracing::error!("{self}"),
            _ => tracing::info!("{self}"),
        }
        match self {
            Self::BadCheck { legacy: true, .. } => plain(StatusCode::UNAUTHORIZED),
            Self::BadCheck { .. } => plain(StatusCode::BAD_REQUEST),
            Self::BadRequest(hint) => {
                (StatusCode::BAD_REQUEST, format!("400 Bad Request: {hint}")).into_response()
            }
            Self::FormExpired => (
                StatusCode::FORBIDDEN,
                "403 Forbidden: the form expired, reload the page",
            )
                .into_response(),
            Self::Internal(_) => plain(StatusCode::INTERNAL_SERVER_ERROR),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_has_one_status_and_hides_its_reason() {
        let cases = [
            (
                EdgeError::BadCheck {
                    endpoint: "legacy".into(),
                    legacy: true,
                    reason: "secret detail".into(),
                },
                StatusCode::UNAUTHORIZED,
            ),
            (
                EdgeError::BadCheck {
                    endpoint: "forward-auth".into(),
                    legacy: false,
                    reason: "secret detail".into(),
                },
                StatusCode::BAD_REQUEST,
            ),
            (
                EdgeError::BadRequest("no cookie domain for this host"),
                StatusCode::BAD_REQUEST,
            ),
            (EdgeError::FormExpired, StatusCode::FORBIDDEN),
            (
                EdgeError::Internal("secret detail".into()),
                StatusCode::INTERNAL_SERVER_ERROR,
            ),
        ];
        for (error, status) in cases {
            let response = error.into_response();
            assert_eq!(response.status(), status);
        }
    }

    #[tokio::test]
    async fn internal_details_never_reach_the_body() {
        let response = EdgeError::Internal("database password is hunter2".into()).into_response();
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        assert_eq!(&body[..], b"500 Internal Server Error");
    }
}
