//! COSE public keys (RFC 9053) as authenticators send them and Authelia stores them
//! (`webauthn_credentials.public_key`), and signatures checked with them: ES256, EdDSA, RS256.

use ciborium::Value;
use p256::ecdsa::signature::Verifier;
use sha2::{Digest, Sha256};

use crate::WebAuthnError;

/// COSE algorithm identifiers this crate verifies, in the order the options offer them.
pub const SUPPORTED_ALGORITHMS: [i64; 3] = [ES256, EDDSA, RS256];

/// ECDSA with P-256 and SHA-256.
pub const ES256: i64 = -7;
/// Ed25519.
pub const EDDSA: i64 = -8;
/// RSASSA-PKCS1-v1_5 with SHA-256.
pub const RS256: i64 = -257;

/// The DER prefix of a SHA-256 `DigestInfo` (RFC 8017 §9.2 note 1).
pub(crate) const SHA256_DIGEST_INFO: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];

/// RSA keys shorter than this are refused.
const MIN_RSA_BITS: usize = 2048;

/// A credential's public key.
#[derive(Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// P-256, as the uncompressed SEC1 point.
    Es256 {
        /// `04 ‖ x ‖ y`.
        point: Vec<u8>,
    },
    /// Ed25519.
    EdDsa {
        /// The 32-byte key.
        key: [u8; 32],
    },
    /// RSA with PKCS#1 v1.5 and SHA-256.
    Rs256 {
        /// The modulus, big-endian.
        n: Vec<u8>,
        /// The public exponent, big-endian.
        e: Vec<u8>,
    },
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Es256 { .. } => "PublicKey::Es256",
            Self::EdDsa { .. } => "PublicKey::EdDsa",
            Self::Rs256 { .. } => "PublicKey::Rs256",
        })
    }
}

fn integer(v: &Value) -> Option<i128> {
    match v {
        Value::Integer(i) => Some(i128::from(*i)),
        _ => None,
    }
}

fn field(map: &[(Value, Value)], label: i128) -> Option<&Value> {
    map.iter()
        .find(|(k, _)| integer(k) == Some(label))
        .map(|(_, v)| v)
}

fn bytes_field(map: &[(Value, Value)], label: i128, name: &str) -> Result<Vec<u8>, WebAuthnError> {
    match field(map, label) {
        Some(Value::Bytes(b)) => Ok(b.clone()),
        _ => Err(WebAuthnError::UnsupportedKey(format!(
            "COSE key without {name}"
        ))),
    }
}

impl PublicKey {
    /// Parse a COSE_Key from its CBOR bytes.
    pub fn from_cose(bytes: &[u8]) -> Result<Self, WebAuthnError> {
        let value: Value =
            ciborium::from_reader(bytes).map_err(|e| WebAuthnError::malformed("COSE key", e))?;
        Self::from_cose_value(&value)
    }

    /// Parse a COSE_Key already decoded from CBOR.
    pub fn from_cose_value(value: &Value) -> Result<Self, WebAuthnError> {
        let Value::Map(map) = value else {
            return Err(WebAuthnError::malformed("COSE key", "not a map"));
        };
        let kty = field(map, 1).and_then(integer);
        let alg = field(map, 3).and_then(integer);
        match (kty, alg) {
            // EC2, P-256, ES256 (an absent alg is tolerated for EC2 P-256 only when crv says so).
            (Some(2), Some(-7) | None) => {
                if field(map, -1).and_then(integer) != Some(1) {
                    return Err(WebAuthnError::UnsupportedKey("EC2 key not on P-256".into()));
                }
                let x = bytes_field(map, -2, "x")?;
                let y = bytes_field(map, -3, "y")?;
                if x.len() != 32 || y.len() != 32 {
                    return Err(WebAuthnError::UnsupportedKey(
                        "P-256 coordinates not 32 bytes".into(),
                    ));
                }
                let mut point = Vec::with_capacity(65);
                point.push(0x04);
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                p256::ecdsa::VerifyingKey::from_sec1_bytes(&point).map_err(|_| {
                    WebAuthnError::UnsupportedKey("P-256 point not on the curve".into())
                })?;
                Ok(Self::Es256 { point })
            }
            (Some(1), Some(-8) | None) => {
                if field(map, -1).and_then(integer) != Some(6) {
                    return Err(WebAuthnError::UnsupportedKey("OKP key not Ed25519".into()));
                }
                let x = bytes_field(map, -2, "x")?;
                let key: [u8; 32] = x.try_into().map_err(|_| {
                    WebAuthnError::UnsupportedKey("Ed25519 key not 32 bytes".into())
                })?;
                ed25519_dalek::VerifyingKey::from_bytes(&key)
                    .map_err(|_| WebAuthnError::UnsupportedKey("Ed25519 key invalid".into()))?;
                Ok(Self::EdDsa { key })
            }
            (Some(3), Some(-257)) => {
                let n = bytes_field(map, -1, "n")?;
                let e = bytes_field(map, -2, "e")?;
                let key = Self::Rs256 { n, e };
                key.rsa()?;
                Ok(key)
            }
            (kty, alg) => Err(WebAuthnError::UnsupportedKey(format!(
                "COSE kty {kty:?} with alg {alg:?} (ES256, EdDSA and RS256 are supported)"
            ))),
        }
    }

    /// The key as a COSE_Key in CBOR (what is stored).
    pub fn to_cose(&self) -> Vec<u8> {
        let int = |i: i64| Value::Integer(i.into());
        let map = match self {
            Self::Es256 { point } => vec![
                (int(1), int(2)),
                (int(3), int(ES256)),
                (int(-1), int(1)),
                (int(-2), Value::Bytes(point[1..33].to_vec())),
                (int(-3), Value::Bytes(point[33..65].to_vec())),
            ],
            Self::EdDsa { key } => vec![
                (int(1), int(1)),
                (int(3), int(EDDSA)),
                (int(-1), int(6)),
                (int(-2), Value::Bytes(key.to_vec())),
            ],
            Self::Rs256 { n, e } => vec![
                (int(1), int(3)),
                (int(3), int(RS256)),
                (int(-1), Value::Bytes(n.clone())),
                (int(-2), Value::Bytes(e.clone())),
            ],
        };
        let mut out = Vec::new();
        // Writing CBOR into a Vec cannot fail.
        let _ = ciborium::into_writer(&Value::Map(map), &mut out);
        out
    }

    /// The COSE algorithm of the key.
    pub fn algorithm(&self) -> i64 {
        match self {
            Self::Es256 { .. } => ES256,
            Self::EdDsa { .. } => EDDSA,
            Self::Rs256 { .. } => RS256,
        }
    }

    fn rsa(&self) -> Result<rsa::PublicKey, WebAuthnError> {
        let Self::Rs256 { n, e } = self else {
            return Err(WebAuthnError::UnsupportedKey("not an RSA key".into()));
        };
        let key = rsa::PublicKey::new(
            rsa::BoxedUint::from_be_slice_vartime(n),
            rsa::BoxedUint::from_be_slice_vartime(e),
        )
        .map_err(|e| WebAuthnError::UnsupportedKey(format!("RSA key: {e}")))?;
        if n.iter().skip_while(|b| **b == 0).count() * 8 < MIN_RSA_BITS {
            return Err(WebAuthnError::UnsupportedKey(format!(
                "RSA key shorter than {MIN_RSA_BITS} bits"
            )));
        }
        Ok(key)
    }

    /// Check `signature` over `message` (ES256 signatures are DER, as WebAuthn sends them).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), WebAuthnError> {
        match self {
            Self::Es256 { point } => verify_es256(point, message, signature),
            Self::EdDsa { key } => {
                let key = ed25519_dalek::VerifyingKey::from_bytes(key)
                    .map_err(|_| WebAuthnError::Signature)?;
                let sig = ed25519_dalek::Signature::from_slice(signature)
                    .map_err(|_| WebAuthnError::Signature)?;
                key.verify_strict(message, &sig)
                    .map_err(|_| WebAuthnError::Signature)
            }
            Self::Rs256 { .. } => verify_rs256(&self.rsa()?, message, signature),
        }
    }
}

/// An ES256 signature (DER) by the SEC1 `point` over `message`.
pub(crate) fn verify_es256(
    point: &[u8],
    message: &[u8],
    signature: &[u8],
) -> Result<(), WebAuthnError> {
    let key =
        p256::ecdsa::VerifyingKey::from_sec1_bytes(point).map_err(|_| WebAuthnError::Signature)?;
    let sig = p256::ecdsa::Signature::from_der(signature).map_err(|_| WebAuthnError::Signature)?;
    key.verify(message, &sig)
        .map_err(|_| WebAuthnError::Signature)
}

/// An RS256 signature by `key` over `message`.
pub(crate) fn verify_rs256(
    key: &rsa::PublicKey,
    message: &[u8],
    signature: &[u8],
) -> Result<(), WebAuthnError> {
    let hashed = Sha256::digest(message);
    let scheme = rsa::Pkcs1v15Sign {
        hash_len: Some(32),
        prefix: SHA256_DIGEST_INFO.to_vec().into_boxed_slice(),
    };
    key.verify(scheme, &hashed, signature)
        .map_err(|_| WebAuthnError::Signature)
}
