//! Signing keys: read from PEM (Authelia's `jwks[]`) or generated, published as a JWK Set, and
//! used to sign ID tokens and JWT access tokens.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, KeyAlgorithm, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{DecodingKey, EncodingKey, Header};
use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use serde::Serialize;

use crate::error::OidcError;

pub use jsonwebtoken::Algorithm;
pub use jsonwebtoken::jwk::JwkSet;

/// The smallest RSA modulus accepted (Authelia: 2048 bits).
pub const MIN_RSA_BITS: usize = 2048;

/// One private signing key with its public JWK.
pub struct SigningKey {
    kid: String,
    alg: Algorithm,
    encoding: EncodingKey,
    decoding: DecodingKey,
    jwk: Jwk,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

fn key_error(e: impl std::fmt::Display) -> OidcError {
    OidcError::Key(e.to_string())
}

/// The lower-case wire name of an algorithm (`rs256`), as Authelia writes it in generated key ids.
fn lower_name(alg: Algorithm) -> String {
    format!("{alg:?}").to_ascii_lowercase()
}

impl SigningKey {
    /// Read a PEM private key (PKCS#1, PKCS#8 or SEC1) for `alg`. `kid` defaults to Authelia's
    /// form: the first 7 hex characters of the key's RFC 7638 SHA-256 thumbprint, `-`, the
    /// lower-case algorithm.
    pub fn from_pem(pem: &str, alg: Algorithm, kid: Option<&str>) -> Result<Self, OidcError> {
        let encoding = match alg {
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => {
                let bits = rsa_bits(pem)?;
                if bits < MIN_RSA_BITS {
                    return Err(OidcError::Key(format!(
                        "the key is an RSA {bits} bit private key but it must at minimum be a RSA {MIN_RSA_BITS} bit private key"
                    )));
                }
                EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(key_error)?
            }
            Algorithm::ES256 | Algorithm::ES384 => {
                EncodingKey::from_ec_pem(pem.as_bytes()).map_err(key_error)?
            }
            Algorithm::EdDSA => EncodingKey::from_ed_pem(pem.as_bytes()).map_err(key_error)?,
            _ => {
                return Err(OidcError::Key(format!(
                    "algorithm {alg:?} is not an asymmetric signing algorithm"
                )));
            }
        };
        let mut jwk = Jwk::from_encoding_key(&encoding, alg).map_err(key_error)?;
        let decoding = DecodingKey::from_jwk(&jwk).map_err(key_error)?;
        let kid = match kid {
            Some(k) => k.to_owned(),
            None => {
                let thumb = thumbprint_hex(&jwk)?;
                format!("{}-{}", &thumb[..7], lower_name(alg))
            }
        };
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        jwk.common.key_algorithm = Some(key_algorithm(alg)?);
        Ok(Self {
            kid,
            alg,
            encoding,
            decoding,
            jwk,
        })
    }

    /// Read a PEM private key whose algorithm is not given: RS256 for RSA, ES256 or ES384 by the
    /// curve of an ECDSA key, EdDSA for Ed25519 (Authelia's defaults by key type).
    pub fn from_pem_inferred(pem: &str, kid: Option<&str>) -> Result<Self, OidcError> {
        if rsa_bits(pem).is_ok() {
            return Self::from_pem(pem, Algorithm::RS256, kid);
        }
        for alg in [Algorithm::ES256, Algorithm::ES384, Algorithm::EdDSA] {
            if let Ok(key) = Self::from_pem(pem, alg, kid) {
                return Ok(key);
            }
        }
        Err(OidcError::Key(
            "not an RSA, ECDSA (P-256, P-384) or Ed25519 private key in PEM".into(),
        ))
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The algorithm.
    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    /// The public JWK.
    pub fn jwk(&self) -> &Jwk {
        &self.jwk
    }

    /// Sign `claims` as a JWS with this key, `typ` in the header when given (`at+jwt`).
    pub fn sign<T: Serialize>(&self, claims: &T, typ: Option<&str>) -> Result<String, OidcError> {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        header.typ = Some(typ.unwrap_or("JWT").to_owned());
        jsonwebtoken::encode(&header, claims, &self.encoding)
            .map_err(|e| OidcError::Jwt(e.to_string()))
    }

    /// The public key for verification.
    pub fn decoding_key(&self) -> &DecodingKey {
        &self.decoding
    }
}

fn key_algorithm(alg: Algorithm) -> Result<KeyAlgorithm, OidcError> {
    Ok(match alg {
        Algorithm::RS256 => KeyAlgorithm::RS256,
        Algorithm::RS384 => KeyAlgorithm::RS384,
        Algorithm::RS512 => KeyAlgorithm::RS512,
        Algorithm::PS256 => KeyAlgorithm::PS256,
        Algorithm::PS384 => KeyAlgorithm::PS384,
        Algorithm::PS512 => KeyAlgorithm::PS512,
        Algorithm::ES256 => KeyAlgorithm::ES256,
        Algorithm::ES384 => KeyAlgorithm::ES384,
        Algorithm::EdDSA => KeyAlgorithm::EdDSA,
        other => return Err(OidcError::Key(format!("{other:?} has no public key"))),
    })
}

fn thumbprint_hex(jwk: &Jwk) -> Result<String, OidcError> {
    let b64 = jwk.thumbprint(ThumbprintHash::SHA256).map_err(key_error)?;
    let bytes = URL_SAFE_NO_PAD.decode(b64.as_bytes()).map_err(key_error)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn rsa_bits(pem: &str) -> Result<usize, OidcError> {
    use rsa::pkcs1::DecodeRsaPrivateKey;
    use rsa::pkcs8::DecodePrivateKey;
    use rsa::traits::PublicKeyParts;
    let key = rsa::PrivateKey::from_pkcs8_pem(pem)
        .or_else(|_| rsa::PrivateKey::from_pkcs1_pem(pem))
        .map_err(|e| {
            OidcError::Key(format!(
                "not an RSA private key in PKCS#1 or PKCS#8 PEM: {e}"
            ))
        })?;
    Ok(key.size() * 8)
}

/// Generate a 2048-bit RSA private key as PKCS#8 PEM (for a provider started without `jwks`).
pub fn generate_rsa_pem<R: rsa::rand_core::TryCryptoRng + ?Sized>(
    rng: &mut R,
) -> Result<String, OidcError> {
    let key = rsa::PrivateKey::new(rng, MIN_RSA_BITS).map_err(key_error)?;
    let pem = key.to_pkcs8_pem(LineEnding::LF).map_err(key_error)?;
    Ok(pem.as_str().to_owned())
}

/// A client's public key for `private_key_jwt` assertions (the client's `jwks`).
#[derive(Clone)]
pub struct ClientKey {
    /// `key_id`, when given.
    pub kid: Option<String>,
    /// The algorithm its assertions use.
    pub alg: Algorithm,
    key: DecodingKey,
}

impl std::fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl ClientKey {
    /// Read a PEM public key (SPKI, or PKCS#1 for RSA) for `alg` (RS*, PS*, ES256/384, EdDSA).
    pub fn from_public_pem(
        pem: &str,
        alg: Algorithm,
        kid: Option<&str>,
    ) -> Result<Self, OidcError> {
        let key = match alg {
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => DecodingKey::from_rsa_pem(pem.as_bytes()),
            Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_pem(pem.as_bytes()),
            Algorithm::EdDSA => DecodingKey::from_ed_pem(pem.as_bytes()),
            other => {
                return Err(OidcError::Key(format!(
                    "{other:?} is not a public-key algorithm"
                )));
            }
        }
        .map_err(key_error)?;
        Ok(Self {
            kid: kid.map(str::to_owned),
            alg,
            key,
        })
    }

    /// A key of a fetched JWK Set (`jwks_uri`): its `alg` when it names one, else `default`.
    pub fn from_jwk(jwk: &Jwk, default: Algorithm) -> Result<Self, OidcError> {
        let alg = jwk
            .common
            .key_algorithm
            .and_then(|a| format!("{a:?}").parse::<Algorithm>().ok())
            .unwrap_or(default);
        Ok(Self {
            kid: jwk.common.key_id.clone(),
            alg,
            key: DecodingKey::from_jwk(jwk).map_err(key_error)?,
        })
    }

    /// The verification key.
    pub fn decoding_key(&self) -> &DecodingKey {
        &self.key
    }
}

/// The provider's signing keys. The first key of an algorithm signs for it.
#[derive(Debug, Default)]
pub struct KeySet {
    keys: Vec<SigningKey>,
}

impl KeySet {
    /// Build from keys in configuration order.
    pub fn new(keys: Vec<SigningKey>) -> Self {
        Self { keys }
    }

    /// The key that signs `alg`.
    pub fn for_alg(&self, alg: Algorithm) -> Option<&SigningKey> {
        self.keys.iter().find(|k| k.alg == alg)
    }

    /// The key with id `kid`.
    pub fn by_kid(&self, kid: &str) -> Option<&SigningKey> {
        self.keys.iter().find(|k| k.kid == kid)
    }

    /// The algorithms the keys sign, in order, without repeats.
    pub fn algorithms(&self) -> Vec<Algorithm> {
        let mut algs = Vec::new();
        for k in &self.keys {
            if !algs.contains(&k.alg) {
                algs.push(k.alg);
            }
        }
        algs
    }

    /// The public JWK Set (`/jwks.json`).
    pub fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: self.keys.iter().map(|k| k.jwk.clone()).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_rsa_key_signs_and_verifies_and_gets_authelia_style_kid() {
        let pem = generate_rsa_pem(&mut getrandom::SysRng).unwrap();
        let key = SigningKey::from_pem(&pem, Algorithm::RS256, None).unwrap();
        assert_eq!(key.kid().len(), 7 + "-rs256".len());
        assert!(key.kid().ends_with("-rs256"));
        assert!(key.kid()[..7].bytes().all(|b| b.is_ascii_hexdigit()));
        let token = key.sign(&serde_json::json!({"sub": "x"}), None).unwrap();
        let mut v = jsonwebtoken::Validation::new(Algorithm::RS256);
        v.required_spec_claims.clear();
        v.validate_exp = false;
        let data =
            jsonwebtoken::decode::<serde_json::Value>(&token, key.decoding_key(), &v).unwrap();
        assert_eq!(data.claims["sub"], "x");
        assert_eq!(data.header.kid.as_deref(), Some(key.kid()));
        let set = KeySet::new(vec![key]);
        let jwks = serde_json::to_value(set.jwks()).unwrap();
        assert_eq!(jwks["keys"][0]["use"], "sig");
        assert_eq!(jwks["keys"][0]["alg"], "RS256");
        assert_eq!(jwks["keys"][0]["kty"], "RSA");
        assert!(
            jwks["keys"][0].get("d").is_none(),
            "no private part in the JWKS"
        );
    }

    #[test]
    fn refuses_garbage_and_wrong_family() {
        assert!(SigningKey::from_pem("not a key", Algorithm::RS256, None).is_err());
        let pem = generate_rsa_pem(&mut getrandom::SysRng).unwrap();
        assert!(SigningKey::from_pem(&pem, Algorithm::ES256, None).is_err());
        assert!(SigningKey::from_pem(&pem, Algorithm::HS256, None).is_err());
    }
}
