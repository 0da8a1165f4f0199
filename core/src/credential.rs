//! What an `Authorization` or `Proxy-Authorization` value holds (docs/reference/forward-auth.md
//! §4.3): nothing usable, Basic credentials, a Bearer token, or something malformed.

use base64::Engine;
use http::HeaderValue;

use crate::Secret;

/// What a credential header holds.
#[derive(Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Credential {
    /// No header, or an empty one: go on to the next strategy.
    Absent,
    /// `Basic` with a non-empty username and password.
    Basic {
        /// The login name as sent.
        username: String,
        /// The password (redacted in `Debug`).
        password: Secret,
    },
    /// A `Bearer` token (the token itself is not kept).
    Bearer,
    /// Malformed: the reason, for the log.
    Invalid(&'static str),
}

/// Parse a credential header value. The scheme is case-insensitive; the Basic payload must be
/// standard base64 of UTF-8 `user:password` with both parts non-empty (the password may contain
/// `:`).
///
/// ```
/// use http::HeaderValue;
/// use portcullis_core::credential::{Credential, parse_credential};
/// let value = HeaderValue::from_static("Basic YWxpY2U6cGFzczp3b3Jk"); // alice:pass:word
/// let Credential::Basic { username, password } = parse_credential(Some(&value)) else { panic!() };
/// assert_eq!((username.as_str(), password.expose()), ("alice", "pass:word"));
/// assert_eq!(parse_credential(None), Credential::Absent);
/// ```
pub fn parse_credential(value: Option<&HeaderValue>) -> Credential {
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
    Credential::Basic {
        username: user.to_owned(),
        password: Secret::new(password),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &[u8]) -> Credential {
        parse_credential(Some(&HeaderValue::from_bytes(text).unwrap()))
    }

    fn basic(payload: &str) -> Vec<u8> {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(payload)
        )
        .into_bytes()
    }

    #[test]
    fn every_shape_of_header() {
        assert_eq!(parse(b""), Credential::Absent);
        assert_eq!(parse(b"Bearer abc.def"), Credential::Bearer);
        assert_eq!(parse(b"bEaReR x"), Credential::Bearer);
        assert_eq!(
            parse(&basic("bob:secret")),
            Credential::Basic {
                username: "bob".into(),
                password: Secret::new("secret")
            }
        );
        assert!(matches!(parse(b"basic Ym9iOng="), Credential::Basic { .. }));
        let invalid = [
            (b"Basic".to_vec(), "missing space after scheme"),
            (b"Digest abc".to_vec(), "unknown authorization scheme"),
            (b"Basic !!!".to_vec(), "invalid base64"),
            (b"Basic /w==".to_vec(), "credentials are not UTF-8"),
            (basic("nocolon"), "no ':' in credentials"),
            (basic(":pw"), "empty username or password"),
            (basic("bob:"), "empty username or password"),
            ("Basic é".as_bytes().to_vec(), "non-ASCII credential header"),
        ];
        for (value, reason) in invalid {
            assert_eq!(parse(&value), Credential::Invalid(reason), "{value:?}");
        }
        let Credential::Basic { password, .. } = parse(&basic("bob:hunter2")) else {
            panic!("not basic")
        };
        assert_eq!(format!("{password:?}"), "[redacted]");
    }
}
