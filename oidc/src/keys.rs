//! Signing keys: read from PEM (Authelia's `jwks[]`) or generated, published as a JWK Set, and
//! used to sign ID tokens and JWT access tokens.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, KeyAlgorithm, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{DecodingKey, EncodingKey, Header};
use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use serde::Serialize;
use sha2::Digest as _;

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
    /// The same RSA key for ring, which signs it several times faster; `None` for other keys,
    /// and for an RSA key ring does not take (they sign through `encoding`).
    rsa: Option<ring::signature::RsaKeyPair>,
    decoding: DecodingKey,
    jwk: Jwk,
    /// The validity window (unix seconds) of every certificate of its chain, when it has one.
    validity: Option<(i64, i64)>,
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
        let rsa = rsa_padding(alg).and_then(|_| ring_rsa(pem));
        Ok(Self {
            kid,
            alg,
            encoding,
            rsa,
            decoding,
            jwk,
            validity: None,
        })
    }

    /// Attach a PEM certificate chain (`certificate_chain`): the first certificate must carry
    /// this key's public key and each next one must have issued the one before it (by name). The
    /// JWK then publishes `x5c` and `x5t#S256`. Whether the chain is valid now is for the caller
    /// to check with [`SigningKey::validity`], at the time it passes in.
    pub fn with_certificate_chain(mut self, pem: &str) -> Result<Self, OidcError> {
        use base64::engine::general_purpose::STANDARD;
        let mut ders = Vec::new();
        for block in x509_parser::pem::Pem::iter_from_buffer(pem.as_bytes()) {
            let block =
                block.map_err(|e| OidcError::Key(format!("certificate_chain is not PEM: {e}")))?;
            if block.label != "CERTIFICATE" {
                return Err(OidcError::Key(format!(
                    "certificate_chain holds a {} block, not a CERTIFICATE",
                    block.label
                )));
            }
            ders.push(block.contents);
        }
        if ders.is_empty() {
            return Err(OidcError::Key(
                "certificate_chain has no certificate".into(),
            ));
        }
        let mut certs = Vec::new();
        for der in &ders {
            let (_, cert) = x509_parser::parse_x509_certificate(der)
                .map_err(|e| OidcError::Key(format!("certificate_chain: {e}")))?;
            certs.push(cert);
        }
        if !self.matches_certificate(&certs[0])? {
            return Err(OidcError::Key(
                "the first certificate of certificate_chain does not carry this key".into(),
            ));
        }
        for pair in certs.windows(2) {
            if pair[0].issuer().as_raw() != pair[1].subject().as_raw() {
                return Err(OidcError::Key("certificate_chain is not in order: a certificate is not issued by the next one".into()));
            }
        }
        let not_before = certs
            .iter()
            .map(|c| c.validity().not_before.timestamp())
            .max()
            .unwrap_or(0);
        let not_after = certs
            .iter()
            .map(|c| c.validity().not_after.timestamp())
            .min()
            .unwrap_or(0);
        self.validity = Some((not_before, not_after));
        self.jwk.common.x509_chain = Some(ders.iter().map(|d| STANDARD.encode(d)).collect());
        self.jwk.common.x509_sha256_fingerprint =
            Some(URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(&ders[0])));
        Ok(self)
    }

    fn matches_certificate(
        &self,
        cert: &x509_parser::certificate::X509Certificate<'_>,
    ) -> Result<bool, OidcError> {
        use jsonwebtoken::jwk::AlgorithmParameters;
        use x509_parser::public_key::PublicKey;
        let strip = |b: &[u8]| -> Vec<u8> {
            let i = b.iter().position(|x| *x != 0).unwrap_or(b.len());
            b[i..].to_vec()
        };
        let decode = |s: &str| URL_SAFE_NO_PAD.decode(s).map_err(key_error);
        let parsed = cert
            .public_key()
            .parsed()
            .map_err(|e| OidcError::Key(format!("certificate_chain: {e}")))?;
        Ok(match (&self.jwk.algorithm, parsed) {
            (AlgorithmParameters::RSA(rsa), PublicKey::RSA(key)) => {
                strip(key.modulus) == strip(&decode(&rsa.n)?)
                    && strip(key.exponent) == strip(&decode(&rsa.e)?)
            }
            (AlgorithmParameters::EllipticCurve(ec), PublicKey::EC(point)) => {
                let mut expected = vec![4u8];
                expected.extend(decode(&ec.x)?);
                expected.extend(decode(&ec.y)?);
                point.data() == expected.as_slice()
            }
            (AlgorithmParameters::OctetKeyPair(ed), _) => {
                cert.public_key().subject_public_key.data.as_ref() == decode(&ed.x)?.as_slice()
            }
            _ => false,
        })
    }

    /// The window (unix seconds, `not_before`, `not_after`) in which every certificate of the
    /// key's chain is valid, when it has one.
    pub fn validity(&self) -> Option<(i64, i64)> {
        self.validity
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
        match (&self.rsa, rsa_padding(self.alg)) {
            (Some(pair), Some(padding)) => sign_rsa(pair, padding, &header, claims),
            _ => jsonwebtoken::encode(&header, claims, &self.encoding)
                .map_err(|e| OidcError::Jwt(e.to_string())),
        }
    }

    /// The public key for verification.
    pub fn decoding_key(&self) -> &DecodingKey {
        &self.decoding
    }
}

/// ring's padding and hash for an RSA JWS algorithm (RFC 7518 §3.3, §3.5).
fn rsa_padding(alg: Algorithm) -> Option<&'static dyn ring::signature::RsaEncoding> {
    use ring::signature;
    Some(match alg {
        Algorithm::RS256 => &signature::RSA_PKCS1_SHA256,
        Algorithm::RS384 => &signature::RSA_PKCS1_SHA384,
        Algorithm::RS512 => &signature::RSA_PKCS1_SHA512,
        Algorithm::PS256 => &signature::RSA_PSS_SHA256,
        Algorithm::PS384 => &signature::RSA_PSS_SHA384,
        Algorithm::PS512 => &signature::RSA_PSS_SHA512,
        _ => return None,
    })
}

/// The RSA private key of `pem` (PKCS#1 or PKCS#8) as ring reads it, when it does.
fn ring_rsa(pem: &str) -> Option<ring::signature::RsaKeyPair> {
    use rsa::pkcs1::DecodeRsaPrivateKey;
    use rsa::pkcs8::DecodePrivateKey;
    let key = rsa::PrivateKey::from_pkcs8_pem(pem)
        .or_else(|_| rsa::PrivateKey::from_pkcs1_pem(pem))
        .ok()?;
    let der = key.to_pkcs8_der().ok()?;
    ring::signature::RsaKeyPair::from_pkcs8(der.as_bytes()).ok()
}

/// A compact JWS (RFC 7515 §7.1) of `header` and `claims`, signed by ring.
fn sign_rsa<T: Serialize>(
    pair: &ring::signature::RsaKeyPair,
    padding: &'static dyn ring::signature::RsaEncoding,
    header: &Header,
    claims: &T,
) -> Result<String, OidcError> {
    fn part<V: Serialize + ?Sized>(value: &V) -> Result<String, OidcError> {
        serde_json::to_vec(value)
            .map(|json| URL_SAFE_NO_PAD.encode(json))
            .map_err(|e| OidcError::Jwt(e.to_string()))
    }
    let mut jws = part(header)?;
    jws.push('.');
    jws.push_str(&part(claims)?);
    let mut signature = vec![0; pair.public().modulus_len()];
    pair.sign(
        padding,
        &ring::rand::SystemRandom::new(),
        jws.as_bytes(),
        &mut signature,
    )
    .map_err(|_| OidcError::Jwt("the RSA signature failed".into()))?;
    jws.push('.');
    jws.push_str(&URL_SAFE_NO_PAD.encode(signature));
    Ok(jws)
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

    /// ring signs RSA keys; its RS* signatures (PKCS#1 v1.5, deterministic) must be the very bytes
    /// the rsa crate makes through jsonwebtoken, and its PS* ones must verify there.
    #[test]
    fn rsa_signatures_by_ring_equal_or_verify_against_the_rsa_crates() {
        let pem = generate_rsa_pem(&mut getrandom::SysRng).unwrap();
        let claims =
            serde_json::json!({"iss": "https://auth.example.com", "sub": "jürgen", "n": 1});
        for alg in [
            Algorithm::RS256,
            Algorithm::RS384,
            Algorithm::RS512,
            Algorithm::PS256,
            Algorithm::PS384,
            Algorithm::PS512,
        ] {
            let key = SigningKey::from_pem(&pem, alg, Some("k1")).unwrap();
            assert!(key.rsa.is_some(), "{alg:?}: ring takes the key");
            let ours = key.sign(&claims, Some("at+jwt")).unwrap();
            let mut header = Header::new(alg);
            header.kid = Some("k1".into());
            header.typ = Some("at+jwt".into());
            let reference = jsonwebtoken::encode(&header, &claims, &key.encoding).unwrap();
            if matches!(alg, Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512) {
                assert_eq!(ours, reference, "{alg:?}");
            } else {
                assert_eq!(
                    ours.rsplit_once('.').unwrap().0,
                    reference.rsplit_once('.').unwrap().0,
                    "{alg:?}: the signed part"
                );
            }
            let mut validation = jsonwebtoken::Validation::new(alg);
            validation.required_spec_claims.clear();
            validation.validate_aud = false;
            let read =
                jsonwebtoken::decode::<serde_json::Value>(&ours, key.decoding_key(), &validation)
                    .unwrap_or_else(|e| panic!("{alg:?}: {e}"));
            assert_eq!(read.claims, claims);
            // A changed signed part no longer verifies.
            let forged = ours.replacen("eyJ", "eyK", 1);
            assert!(
                jsonwebtoken::decode::<serde_json::Value>(&forged, key.decoding_key(), &validation)
                    .is_err()
            );
        }
    }

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

    const RS256_PEM: &str = include_str!("../../verify-server/tests/fixtures/oidc-rs256.pem");
    const ES256_PEM: &str = include_str!("../../verify-server/tests/fixtures/oidc-es256.pem");
    const SELF_SIGNED: &str = include_str!("../../verify-server/tests/fixtures/oidc-rs256.crt");
    const CHAIN: &str = include_str!("../../verify-server/tests/fixtures/oidc-rs256-chain.crt");

    fn rs256() -> SigningKey {
        SigningKey::from_pem(RS256_PEM, Algorithm::RS256, Some("main")).unwrap()
    }

    #[test]
    fn a_certificate_chain_is_published_as_x5c_with_its_sha256_thumbprint() {
        // Expected thumbprints from `openssl x509 -outform der | openssl dgst -sha256 -binary`.
        let key = rs256().with_certificate_chain(SELF_SIGNED).unwrap();
        let jwk = serde_json::to_value(&key.jwk).unwrap();
        assert_eq!(jwk["x5c"].as_array().unwrap().len(), 1);
        assert_eq!(
            jwk["x5t#S256"],
            "8wb3IvoQWkG8jQXp1LjN8hoi71WVPAc9qpAncg1epmo"
        );
        // notBefore 2026-12-01T12:40:39Z, notAfter 2126-11-07T12:40:39Z (`openssl x509 -dates`).
        assert_eq!(key.validity(), Some((1_796_128_839, 4_949_728_839)));

        let key = rs256().with_certificate_chain(CHAIN).unwrap();
        let jwk = serde_json::to_value(&key.jwk).unwrap();
        let x5c = jwk["x5c"].as_array().unwrap();
        assert_eq!(x5c.len(), 2, "leaf and issuer");
        assert_eq!(
            jwk["x5t#S256"],
            "x707Wd6Rkcr7inMPTnT8c0GmuA6-Ztv8ipDZsOdRT7Q"
        );
        // x5c is standard base64 of DER (RFC 7517 section 4.7), not base64url.
        use base64::engine::general_purpose::STANDARD;
        let der = STANDARD.decode(x5c[0].as_str().unwrap()).unwrap();
        assert_eq!(der[0], 0x30, "a DER SEQUENCE");
        assert_eq!(rs256().validity(), None, "no chain, no window");
    }

    #[test]
    fn a_chain_that_does_not_fit_the_key_is_refused() {
        let es256 = SigningKey::from_pem(ES256_PEM, Algorithm::ES256, Some("ec")).unwrap();
        let err = es256.with_certificate_chain(SELF_SIGNED).unwrap_err();
        assert!(err.to_string().contains("does not carry this key"), "{err}");

        let mut blocks: Vec<&str> = CHAIN.split_inclusive("-----END CERTIFICATE-----").collect();
        blocks.retain(|b| b.contains("BEGIN"));
        assert_eq!(blocks.len(), 2);
        let reversed = format!("{}\n{}", blocks[1], blocks[0]);
        let err = rs256().with_certificate_chain(&reversed).unwrap_err();
        assert!(err.to_string().contains("does not carry this key"), "{err}");

        let leaf_twice = format!("{}\n{}", blocks[0], blocks[0]);
        let err = rs256().with_certificate_chain(&leaf_twice).unwrap_err();
        assert!(err.to_string().contains("not in order"), "{err}");

        let err = rs256().with_certificate_chain(RS256_PEM).unwrap_err();
        assert!(err.to_string().contains("not a CERTIFICATE"), "{err}");
        let err = rs256().with_certificate_chain("no pem here").unwrap_err();
        assert!(err.to_string().contains("no certificate"), "{err}");
        let garbled = SELF_SIGNED.replace("MII", "MIX");
        assert!(rs256().with_certificate_chain(&garbled).is_err());
    }
}
