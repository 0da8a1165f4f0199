//! JWS signing with a client secret (HS256/384/512, as Authelia and authentik sign for clients
//! that ask for it) and verification of a JWT against a key with the time passed in, so the same
//! code serves the provider (its own access tokens) and a relying party (the outpost).

use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::OidcError;
use crate::keys::Algorithm;

/// Sign `claims` with an HMAC `alg` keyed by `secret`.
pub fn sign_with_secret<T: Serialize>(
    alg: Algorithm,
    secret: &[u8],
    claims: &T,
    typ: Option<&str>,
) -> Result<String, OidcError> {
    if !matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) {
        return Err(OidcError::Jwt(format!("{alg:?} is not an HMAC algorithm")));
    }
    let mut header = Header::new(alg);
    header.typ = Some(typ.unwrap_or("JWT").to_owned());
    let key = EncodingKey::from_secret(secret).map_err(|e| OidcError::Jwt(e.to_string()))?;
    jsonwebtoken::encode(&header, claims, &key).map_err(|e| OidcError::Jwt(e.to_string()))
}

/// The header of a compact JWS, unverified (to pick the key), or `None` when it is not one.
pub fn peek_header(token: &str) -> Option<Header> {
    if token.split('.').count() != 3 {
        return None;
    }
    jsonwebtoken::decode_header(token).ok()
}

/// The claims of a compact JWS, unverified (to find which client's secret verifies it).
pub fn peek_claims(token: &str) -> Option<Map<String, Value>> {
    jsonwebtoken::dangerous::insecure_decode::<Map<String, Value>>(token)
        .ok()
        .map(|d| d.claims)
}

/// What a verified token must show.
#[derive(Debug, Clone, Copy)]
pub struct Expect<'a> {
    /// The only algorithm accepted.
    pub alg: Algorithm,
    /// `iss`, when checked.
    pub issuer: Option<&'a str>,
    /// The header's `typ`, when checked (case-insensitive, `application/` prefix allowed).
    pub typ: Option<&'a str>,
    /// Now, in unix seconds: `exp` must be later, `nbf` and `iat` not later (with `leeway`).
    pub now: u64,
    /// Seconds of clock skew allowed.
    pub leeway: u64,
}

/// A verification key for an HMAC secret.
pub fn secret_key(secret: &[u8]) -> Result<DecodingKey, OidcError> {
    DecodingKey::from_secret(secret).map_err(|e| OidcError::Jwt(e.to_string()))
}

/// Verify a compact JWS with `key` and check its time claims against `expect.now` (not the system
/// clock), its issuer and its `typ`. `exp` is required.
pub fn verify(
    token: &str,
    key: &DecodingKey,
    expect: &Expect<'_>,
) -> Result<Map<String, Value>, OidcError> {
    let bad = |m: &str| OidcError::Jwt(m.to_owned());
    let header = jsonwebtoken::decode_header(token).map_err(|e| OidcError::Jwt(e.to_string()))?;
    if header.alg != expect.alg {
        return Err(bad("unexpected algorithm"));
    }
    if let Some(typ) = expect.typ {
        let given = header.typ.as_deref().unwrap_or("");
        let given = given.strip_prefix("application/").unwrap_or(given);
        if !given.eq_ignore_ascii_case(typ) {
            return Err(bad("unexpected token type"));
        }
    }
    let mut validation = Validation::new(expect.alg);
    // Time is checked below against the caller's clock.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let data = jsonwebtoken::decode::<Map<String, Value>>(token, key, &validation)
        .map_err(|e| OidcError::Jwt(e.to_string()))?;
    let claims = data.claims;
    let number = |name: &str| claims.get(name).and_then(Value::as_u64);
    match number("exp") {
        Some(exp) if exp + expect.leeway > expect.now => {}
        Some(_) => return Err(bad("the token has expired")),
        None => return Err(bad("the token has no exp")),
    }
    // A time claim that is present must be a number (docs/reference/security.md R7.2).
    for name in ["nbf", "iat"] {
        if claims.contains_key(name) && number(name).is_none() {
            return Err(bad("a time claim is not a number"));
        }
    }
    if number("nbf").is_some_and(|nbf| nbf > expect.now + expect.leeway) {
        return Err(bad("the token is not valid yet"));
    }
    if number("iat").is_some_and(|iat| iat > expect.now + expect.leeway) {
        return Err(bad("the token was issued in the future"));
    }
    if let Some(issuer) = expect.issuer
        && claims.get("iss").and_then(Value::as_str) != Some(issuer)
    {
        return Err(bad("unexpected issuer"));
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expect(now: u64) -> Expect<'static> {
        Expect {
            alg: Algorithm::HS256,
            issuer: Some("https://auth.example.com"),
            typ: Some("at+jwt"),
            now,
            leeway: 0,
        }
    }

    #[test]
    fn hmac_tokens_round_trip_and_refuse_tampering() {
        let claims = serde_json::json!({"iss": "https://auth.example.com", "exp": 200, "iat": 100, "sub": "x"});
        let token =
            sign_with_secret(Algorithm::HS256, b"client-secret", &claims, Some("at+jwt")).unwrap();
        let key = DecodingKey::from_secret(b"client-secret").unwrap();
        assert_eq!(verify(&token, &key, &expect(150)).unwrap()["sub"], "x");
        assert!(
            verify(&token, &key, &expect(200)).is_err(),
            "expired at exp"
        );
        assert!(
            verify(&token, &key, &expect(50)).is_err(),
            "issued in the future"
        );
        assert!(
            verify(
                &token,
                &DecodingKey::from_secret(b"other").unwrap(),
                &expect(150)
            )
            .is_err()
        );
        assert!(
            verify(
                &token,
                &key,
                &Expect {
                    issuer: Some("https://evil"),
                    ..expect(150)
                }
            )
            .is_err()
        );
        assert!(
            verify(
                &token,
                &key,
                &Expect {
                    typ: Some("JWT"),
                    ..expect(150)
                }
            )
            .is_err()
        );
        assert!(
            verify(
                &token,
                &key,
                &Expect {
                    alg: Algorithm::HS512,
                    ..expect(150)
                }
            )
            .is_err()
        );
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            br#"{"iss":"https://auth.example.com","exp":999999,"sub":"admin"}"#,
        );
        parts[1] = &forged;
        assert!(verify(&parts.join("."), &key, &expect(150)).is_err());
        assert_eq!(peek_claims(&token).unwrap()["sub"], "x");
        assert!(peek_header("not.a.jwt").is_none() || peek_header("nope").is_none());
        assert!(sign_with_secret(Algorithm::RS256, b"x", &claims, None).is_err());
    }

    #[test]
    fn alg_none_is_refused() {
        let header = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            br#"{"alg":"none","typ":"at+jwt"}"#,
        );
        let body = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            br#"{"iss":"https://auth.example.com","exp":999}"#,
        );
        let token = format!("{header}.{body}.");
        assert!(verify(&token, &DecodingKey::from_secret(b"k").unwrap(), &expect(1)).is_err());
    }
}
