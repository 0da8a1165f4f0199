//! Client authentication at the token, introspection and revocation endpoints: which credentials
//! the request carries, read without judging them (the server checks the secret). One method per
//! request (RFC 6749 §2.3).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use portcullis_core::Secret;

use crate::client::AuthMethod;
use crate::error::{ErrorCode, OAuthError};

/// The credentials a request presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresentedClient {
    /// The client id.
    pub id: String,
    /// The secret, for the secret methods.
    pub secret: Option<Secret>,
    /// How they came.
    pub method: AuthMethod,
}

fn invalid_client(description: &str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidClient, description)
}

/// Percent-decoding of `application/x-www-form-urlencoded` (RFC 6749 §2.3.1 encodes the id and
/// secret this way before Basic).
fn form_decode(value: &str) -> Option<String> {
    let plus = value.replace('+', " ");
    percent_encoding::percent_decode_str(&plus)
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

/// Read the client credentials. `authorization`: the `Authorization` header; `form`: the body's
/// `client_id` and `client_secret`. Client assertions (`client_secret_jwt`, `private_key_jwt`)
/// are refused with a clear error: they are not implemented.
pub fn presented_client(
    authorization: Option<&str>,
    form_id: Option<&str>,
    form_secret: Option<&str>,
    form_assertion: bool,
) -> Result<PresentedClient, OAuthError> {
    if form_assertion {
        return Err(invalid_client(
            "Client authentication with 'client_assertion' (client_secret_jwt, private_key_jwt) is not supported.",
        ));
    }
    let basic = match authorization {
        None => None,
        Some(value) => {
            let Some((scheme, rest)) = value.split_once(' ') else {
                return Err(invalid_client("The Authorization header is malformed."));
            };
            if !scheme.eq_ignore_ascii_case("basic") {
                return Err(invalid_client(
                    "The Authorization header must use the Basic scheme.",
                ));
            }
            let bytes = STANDARD
                .decode(rest.trim())
                .map_err(|_| invalid_client("The Basic credentials are not valid base64."))?;
            let text = String::from_utf8(bytes)
                .map_err(|_| invalid_client("The Basic credentials are not UTF-8."))?;
            let (id, secret) = text
                .split_once(':')
                .ok_or_else(|| invalid_client("The Basic credentials have no ':'."))?;
            let id = form_decode(id)
                .ok_or_else(|| invalid_client("The client id is not URL-encoded UTF-8."))?;
            let secret = form_decode(secret)
                .ok_or_else(|| invalid_client("The client secret is not URL-encoded UTF-8."))?;
            Some((id, secret))
        }
    };
    match (basic, form_id, form_secret) {
        (Some(_), _, Some(_)) => Err(OAuthError::new(
            ErrorCode::InvalidRequest,
            "Client Authentication failed with more than one known authentication method included in the request which is not permitted.",
        )),
        (Some((id, secret)), form_id, None) => {
            if form_id.is_some_and(|f| f != id) {
                return Err(invalid_client(
                    "The client_id in the body differs from the Basic credentials.",
                ));
            }
            Ok(PresentedClient {
                id,
                secret: Some(Secret::new(secret)),
                method: AuthMethod::ClientSecretBasic,
            })
        }
        (None, Some(id), Some(secret)) => Ok(PresentedClient {
            id: id.to_owned(),
            secret: Some(Secret::new(secret)),
            method: AuthMethod::ClientSecretPost,
        }),
        (None, Some(id), None) => Ok(PresentedClient {
            id: id.to_owned(),
            secret: None,
            method: AuthMethod::None,
        }),
        (None, None, _) => Err(invalid_client(
            "Client authentication failed (e.g., unknown client, no client authentication included, or unsupported authentication method).",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(id: &str, secret: &str) -> String {
        format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
    }

    #[test]
    fn basic_is_url_decoded() {
        let c = presented_client(Some(&basic("my%20app", "p%3Ass+w")), None, None, false).unwrap();
        assert_eq!(c.id, "my app");
        assert_eq!(c.secret.unwrap().expose(), "p:ss w");
        assert_eq!(c.method, AuthMethod::ClientSecretBasic);
    }

    #[test]
    fn one_method_per_request() {
        let e = presented_client(Some(&basic("a", "b")), Some("a"), Some("b"), false).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidRequest);
        let e = presented_client(Some(&basic("a", "b")), Some("other"), None, false).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidClient);
    }

    #[test]
    fn post_none_and_garbage() {
        let c = presented_client(None, Some("a"), Some("b"), false).unwrap();
        assert_eq!(c.method, AuthMethod::ClientSecretPost);
        let c = presented_client(None, Some("a"), None, false).unwrap();
        assert_eq!(c.method, AuthMethod::None);
        for header in ["Basic !!!", "Bearer x", "Basic", "Basic Zm9v"] {
            assert_eq!(
                presented_client(Some(header), None, None, false)
                    .unwrap_err()
                    .code,
                ErrorCode::InvalidClient,
                "{header}"
            );
        }
        assert!(presented_client(None, None, None, false).is_err());
        assert!(presented_client(None, Some("a"), None, true).is_err());
    }
}
