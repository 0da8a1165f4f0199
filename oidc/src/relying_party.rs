//! The relying party's side of OpenID Connect, for the outpost's login against any provider
//! (docs/reference/outpost.md §4 and §14 items 1, 4 and 8): the provider's discovery document,
//! its JWK Set, verification of the tokens it returns with an algorithm allowlist, the login
//! state, PKCE and the authorization URL. Pure: the caller fetches the documents and passes the
//! clock in.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::Sha256;

use crate::error::OidcError;
use crate::jwt::{Expect, verify};

fn bad(message: impl Into<String>) -> OidcError {
    OidcError::Jwt(message.into())
}

/// What the outpost needs from a provider's discovery document (OpenID Connect Discovery 1.0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderMetadata {
    /// `issuer`, equal to the configured one.
    pub issuer: String,
    /// `authorization_endpoint`.
    pub authorization_endpoint: String,
    /// `token_endpoint`.
    pub token_endpoint: String,
    /// `userinfo_endpoint`.
    pub userinfo_endpoint: Option<String>,
    /// `end_session_endpoint`.
    pub end_session_endpoint: Option<String>,
    /// `jwks_uri`.
    pub jwks_uri: Option<String>,
    /// `introspection_endpoint`.
    pub introspection_endpoint: Option<String>,
    /// `id_token_signing_alg_values_supported`, as listed.
    pub signing_algs: Vec<String>,
    /// Whether `code_challenge_methods_supported` lists `S256`.
    pub pkce_s256: bool,
}

#[derive(Deserialize)]
struct RawMetadata {
    issuer: Option<String>,
    authorization_endpoint: Option<String>,
    token_endpoint: Option<String>,
    userinfo_endpoint: Option<String>,
    end_session_endpoint: Option<String>,
    jwks_uri: Option<String>,
    introspection_endpoint: Option<String>,
    #[serde(default)]
    id_token_signing_alg_values_supported: Vec<String>,
    #[serde(default)]
    code_challenge_methods_supported: Vec<String>,
}

/// An endpoint must be an absolute `http` or `https` URL without a fragment.
fn endpoint(name: &str, value: Option<String>) -> Result<Option<String>, OidcError> {
    let Some(value) = value.filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let url = url::Url::parse(&value)
        .map_err(|e| OidcError::Discovery(format!("{name} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.fragment().is_some() || !url.has_host() {
        return Err(OidcError::Discovery(format!(
            "{name} must be an http(s) URL without a fragment"
        )));
    }
    Ok(Some(value))
}

impl ProviderMetadata {
    /// Read a discovery document. Its `issuer` must equal `expected_issuer` exactly (OpenID
    /// Connect Discovery §4.3); the authorization and token endpoints are required.
    pub fn from_discovery(body: &[u8], expected_issuer: &str) -> Result<Self, OidcError> {
        let raw: RawMetadata = serde_json::from_slice(body)
            .map_err(|e| OidcError::Discovery(format!("not a discovery document: {e}")))?;
        let issuer = raw.issuer.unwrap_or_default();
        if issuer != expected_issuer {
            return Err(OidcError::Discovery(format!(
                "the document's issuer '{issuer}' is not the configured '{expected_issuer}'"
            )));
        }
        let required = |name: &str, v: Option<String>| {
            endpoint(name, v)?.ok_or_else(|| OidcError::Discovery(format!("{name} is missing")))
        };
        Ok(Self {
            issuer,
            authorization_endpoint: required("authorization_endpoint", raw.authorization_endpoint)?,
            token_endpoint: required("token_endpoint", raw.token_endpoint)?,
            userinfo_endpoint: endpoint("userinfo_endpoint", raw.userinfo_endpoint)?,
            end_session_endpoint: endpoint("end_session_endpoint", raw.end_session_endpoint)?,
            jwks_uri: endpoint("jwks_uri", raw.jwks_uri)?,
            introspection_endpoint: endpoint("introspection_endpoint", raw.introspection_endpoint)?,
            signing_algs: raw.id_token_signing_alg_values_supported,
            pkce_s256: raw
                .code_challenge_methods_supported
                .iter()
                .any(|m| m == "S256"),
        })
    }

    /// Whether the provider signs with an HMAC algorithm (authentik proxy providers without a
    /// signing key sign with the client secret).
    pub fn signs_with_secret(&self) -> bool {
        self.signing_algs.iter().any(|a| a.starts_with("HS"))
    }
}

/// The family of a public key, which bounds the algorithms it may verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Rsa,
    Ec,
    Okp,
}

/// One signature key of the provider's JWK Set.
#[derive(Clone)]
struct IdpKey {
    kid: Option<String>,
    alg: Option<Algorithm>,
    family: Family,
    key: DecodingKey,
}

/// The provider's public signing keys (its `jwks_uri`). Encryption keys and keys that cannot be
/// read are left out.
#[derive(Clone, Default)]
pub struct IdpKeys {
    keys: Vec<IdpKey>,
}

impl std::fmt::Debug for IdpKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.keys.iter().map(|k| (&k.kid, k.alg)))
            .finish()
    }
}

fn family_of(jwk: &Jwk) -> Option<Family> {
    match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Some(Family::Rsa),
        AlgorithmParameters::EllipticCurve(_) => Some(Family::Ec),
        AlgorithmParameters::OctetKeyPair(_) => Some(Family::Okp),
        // A symmetric key in a public JWK Set is never used: HMAC is keyed by the client secret.
        _ => None,
    }
}

fn family_fits(family: Family, alg: Algorithm) -> bool {
    match family {
        Family::Rsa => matches!(
            alg,
            Algorithm::RS256
                | Algorithm::RS384
                | Algorithm::RS512
                | Algorithm::PS256
                | Algorithm::PS384
                | Algorithm::PS512
        ),
        Family::Ec => matches!(alg, Algorithm::ES256 | Algorithm::ES384),
        Family::Okp => alg == Algorithm::EdDSA,
    }
}

impl IdpKeys {
    /// Read a JWK Set document.
    pub fn from_jwks(body: &[u8]) -> Result<Self, OidcError> {
        let set: JwkSet =
            serde_json::from_slice(body).map_err(|e| bad(format!("not a JWK Set: {e}")))?;
        let keys = set
            .keys
            .iter()
            .filter(|k| !matches!(k.common.public_key_use, Some(PublicKeyUse::Encryption)))
            .filter_map(|jwk| {
                let family = family_of(jwk)?;
                let alg = match jwk.common.key_algorithm {
                    None => None,
                    Some(a) => Some(format!("{a:?}").parse::<Algorithm>().ok()?),
                };
                if alg.is_some_and(|a| !family_fits(family, a)) {
                    return None;
                }
                Some(IdpKey {
                    kid: jwk.common.key_id.clone(),
                    alg,
                    family,
                    key: DecodingKey::from_jwk(jwk).ok()?,
                })
            })
            .collect();
        Ok(Self { keys })
    }

    /// How many keys were read.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key was read.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether a key with this `kid` is present.
    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }
}

/// What a token returned by the provider must show.
#[derive(Debug, Clone, Copy)]
pub struct TokenCheck<'a> {
    /// The provider's issuer: `iss` must equal it.
    pub issuer: &'a str,
    /// `aud` (a string or a list) must contain one of these: this client's id, plus any
    /// federated audience the operator configured.
    pub audiences: &'a [&'a str],
    /// Now, unix seconds: `exp` is required and must be later.
    pub now: u64,
    /// Seconds of clock skew allowed on `exp`, `nbf` and `iat`.
    pub leeway: u64,
}

/// Verify a token the provider issued for this client: a JWS signed with an asymmetric algorithm
/// by a key of `keys` (chosen by `kid`, and by the key's `alg` or type), or, only when
/// `hmac_secret` is given (the provider signs with the client secret), an HS256/384/512 JWS with
/// that secret. `none`, unknown algorithms, an HMAC token without the secret and an asymmetric
/// token verified as HMAC (algorithm confusion) are all refused. Then `iss`, `aud` and `exp`.
pub fn verify_token(
    token: &str,
    keys: &IdpKeys,
    hmac_secret: Option<&[u8]>,
    check: &TokenCheck<'_>,
) -> Result<Map<String, Value>, OidcError> {
    // The header is read by hand first: jsonwebtoken refuses `none` too, but an unknown
    // algorithm must be a clear refusal rather than a parse error deeper down.
    let header =
        jsonwebtoken::decode_header(token).map_err(|_| bad("not a JWS with a known algorithm"))?;
    let alg = header.alg;
    let expect = Expect {
        alg,
        issuer: Some(check.issuer),
        typ: None,
        now: check.now,
        leeway: check.leeway,
    };
    let claims = match alg {
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
            let secret = hmac_secret.ok_or_else(|| {
                bad("an HMAC-signed token, but this provider does not sign with the client secret")
            })?;
            let key = DecodingKey::from_secret(secret).map_err(|e| bad(e.to_string()))?;
            verify(token, &key, &expect)?
        }
        _ => {
            let candidates = keys.keys.iter().filter(|k| {
                let kid_ok = match (&header.kid, &k.kid) {
                    (Some(want), Some(have)) => want == have,
                    _ => true,
                };
                let alg_ok = match k.alg {
                    Some(a) => a == alg,
                    None => family_fits(k.family, alg),
                };
                kid_ok && alg_ok
            });
            let mut last = bad("no key of the provider fits the token");
            let mut verified = None;
            for key in candidates {
                match verify(token, &key.key, &expect) {
                    Ok(c) => {
                        verified = Some(c);
                        break;
                    }
                    Err(e) => last = e,
                }
            }
            verified.ok_or(last)?
        }
    };
    let audience_ok = match claims.get("aud") {
        Some(Value::String(a)) => check.audiences.contains(&a.as_str()),
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .any(|a| check.audiences.contains(&a)),
        _ => false,
    };
    if !audience_ok {
        return Err(bad("the token is not for this client"));
    }
    Ok(claims)
}

/// A login in progress, carried through the provider in `state` as an HS256 JWT (the outpost's
/// own format, docs/reference/outpost.md §4.1 and §14 item 4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginState {
    /// `goauthentik.io/outpost/<client_id>`.
    pub iss: String,
    /// The browser's pre-login session id: the callback must arrive with the same cookie.
    pub sid: String,
    /// 32 random bytes, base64url.
    pub state: String,
    /// Where to send the browser after the login (may be empty: the external host).
    pub redirect: String,
    /// Issued at.
    pub iat: u64,
    /// Expiry.
    pub exp: u64,
}

/// The `iss` of the outpost's login state.
pub fn state_issuer(client_id: &str) -> String {
    format!("goauthentik.io/outpost/{client_id}")
}

/// Sign a login state with `key`.
pub fn seal_state(key: &[u8], state: &LoginState) -> Result<String, OidcError> {
    crate::jwt::sign_with_secret(Algorithm::HS256, key, state, None)
}

/// Open a login state: HS256 with `key` only, `iss` of this client, not expired at `now`, and
/// bound to `sid` (the session id of the cookie the callback arrived with).
pub fn open_state(
    key: &[u8],
    client_id: &str,
    token: &str,
    sid: &str,
    now: u64,
) -> Result<LoginState, OidcError> {
    let issuer = state_issuer(client_id);
    let decoding = DecodingKey::from_secret(key).map_err(|e| bad(e.to_string()))?;
    let claims = verify(
        token,
        &decoding,
        &Expect {
            alg: Algorithm::HS256,
            issuer: Some(&issuer),
            typ: None,
            now,
            leeway: 0,
        },
    )?;
    let state: LoginState = serde_json::from_value(Value::Object(claims))
        .map_err(|e| bad(format!("not a login state: {e}")))?;
    if !bool::from(subtle::ConstantTimeEq::ct_eq(
        state.sid.as_bytes(),
        sid.as_bytes(),
    )) {
        return Err(bad("the login state belongs to another session"));
    }
    Ok(state)
}

/// The PKCE verifier of a login: derived from `key` and the state's random part, so no replica
/// needs to remember it and it never travels through the browser.
pub fn pkce_verifier(key: &[u8], state: &str) -> Result<String, OidcError> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).map_err(|e| bad(e.to_string()))?;
    mac.update(b"portcullis outpost pkce\0");
    mac.update(state.as_bytes());
    Ok(URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
}

/// The authorization URL: `endpoint` with `params` added in alphabetical order of name (after any
/// query the endpoint already has).
pub fn authorization_url(endpoint: &str, params: &[(&str, &str)]) -> Result<String, OidcError> {
    let mut url = url::Url::parse(endpoint)
        .map_err(|e| OidcError::Discovery(format!("authorization endpoint: {e}")))?;
    let mut sorted = params.to_vec();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    url.query_pairs_mut().extend_pairs(sorted);
    Ok(url.into())
}

#[cfg(test)]
mod tests;
