//! Attestation objects (WebAuthn §6.5) and their statements. `none`, `packed` (self and x5c) and
//! `fido-u2f` statements are verified; `tpm`, `android-key`, `android-safetynet` and `apple` are
//! accepted without their statement being checked, because without the FIDO metadata service
//! (docs/reference/second-factor.md §2.1) there is no trust anchor that would make the check mean
//! anything — the credential is then recorded as `attestation_type: none`, as if the browser had
//! been asked for no attestation. Any other format is refused.

use ciborium::Value;

use crate::WebAuthnError;
use crate::authenticator_data::AuthenticatorData;
use crate::cose::{ES256, PublicKey, RS256, verify_es256, verify_rs256};

/// How far the attestation was checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttestationType {
    /// No statement, or one not checked.
    None,
    /// Signed by the credential's own key.
    SelfAttestation,
    /// Signed by an attestation certificate (not chained to a trust anchor).
    Basic,
}

impl AttestationType {
    /// As Authelia's `attestation_type` column writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::SelfAttestation => "self",
            Self::Basic => "basic_full",
        }
    }
}

/// A parsed attestation object.
#[derive(Debug, Clone)]
pub(crate) struct AttestationObject {
    pub(crate) format: String,
    pub(crate) statement: Vec<(Value, Value)>,
    pub(crate) auth_data_bytes: Vec<u8>,
}

fn text_key<'a>(map: &'a [(Value, Value)], key: &str) -> Option<&'a Value> {
    map.iter()
        .find(|(k, _)| matches!(k, Value::Text(t) if t == key))
        .map(|(_, v)| v)
}

impl AttestationObject {
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self, WebAuthnError> {
        let value: Value = ciborium::from_reader(bytes)
            .map_err(|e| WebAuthnError::malformed("attestationObject", e))?;
        let Value::Map(map) = value else {
            return Err(WebAuthnError::malformed("attestationObject", "not a map"));
        };
        let format = match text_key(&map, "fmt") {
            Some(Value::Text(t)) => t.clone(),
            _ => return Err(WebAuthnError::malformed("attestationObject", "no fmt")),
        };
        let statement = match text_key(&map, "attStmt") {
            Some(Value::Map(m)) => m.clone(),
            _ => return Err(WebAuthnError::malformed("attestationObject", "no attStmt")),
        };
        let auth_data_bytes = match text_key(&map, "authData") {
            Some(Value::Bytes(b)) => b.clone(),
            _ => return Err(WebAuthnError::malformed("attestationObject", "no authData")),
        };
        Ok(Self {
            format,
            statement,
            auth_data_bytes,
        })
    }

    /// Check the statement over `authData ‖ clientDataHash`.
    pub(crate) fn verify(
        &self,
        auth_data: &AuthenticatorData,
        client_data_hash: &[u8; 32],
    ) -> Result<AttestationType, WebAuthnError> {
        let attested = auth_data
            .attested
            .as_ref()
            .ok_or(WebAuthnError::NoCredentialData)?;
        let mut signed = self.auth_data_bytes.clone();
        signed.extend_from_slice(client_data_hash);
        match self.format.as_str() {
            "none" => {
                if !self.statement.is_empty() {
                    return Err(WebAuthnError::Attestation(
                        "a none statement must be empty".into(),
                    ));
                }
                Ok(AttestationType::None)
            }
            "packed" => {
                let alg = match text_key(&self.statement, "alg") {
                    Some(Value::Integer(i)) => i64::try_from(i128::from(*i)).unwrap_or(0),
                    _ => return Err(WebAuthnError::Attestation("packed without alg".into())),
                };
                let sig = self.bytes("sig")?;
                match self.leaf_certificate()? {
                    None => {
                        if alg != attested.public_key.algorithm() {
                            return Err(WebAuthnError::Attestation(
                                "self attestation alg differs from the key's".into(),
                            ));
                        }
                        attested.public_key.verify(&signed, sig).map_err(|_| {
                            WebAuthnError::Attestation("packed self signature".into())
                        })?;
                        Ok(AttestationType::SelfAttestation)
                    }
                    Some(der) => {
                        verify_with_certificate(&der, alg, &signed, sig)?;
                        Ok(AttestationType::Basic)
                    }
                }
            }
            "fido-u2f" => {
                let der = self
                    .leaf_certificate()?
                    .ok_or_else(|| WebAuthnError::Attestation("fido-u2f without x5c".into()))?;
                let PublicKey::Es256 { point } = &attested.public_key else {
                    return Err(WebAuthnError::Attestation(
                        "fido-u2f credential key is not P-256".into(),
                    ));
                };
                let mut data = vec![0u8];
                data.extend_from_slice(&auth_data.rp_id_hash);
                data.extend_from_slice(client_data_hash);
                data.extend_from_slice(&attested.credential_id);
                data.extend_from_slice(point);
                verify_with_certificate(&der, ES256, &data, self.bytes("sig")?)?;
                Ok(AttestationType::Basic)
            }
            "tpm" | "android-key" | "android-safetynet" | "apple" => Ok(AttestationType::None),
            other => Err(WebAuthnError::UnsupportedAttestation(other.to_owned())),
        }
    }

    fn bytes(&self, key: &str) -> Result<&[u8], WebAuthnError> {
        match text_key(&self.statement, key) {
            Some(Value::Bytes(b)) => Ok(b),
            _ => Err(WebAuthnError::Attestation(format!(
                "{} statement without {key}",
                self.format
            ))),
        }
    }

    fn leaf_certificate(&self) -> Result<Option<Vec<u8>>, WebAuthnError> {
        match text_key(&self.statement, "x5c") {
            None => Ok(None),
            Some(Value::Array(certs)) => match certs.first() {
                Some(Value::Bytes(der)) => Ok(Some(der.clone())),
                _ => Err(WebAuthnError::Attestation("empty x5c".into())),
            },
            Some(_) => Err(WebAuthnError::Attestation("x5c is not an array".into())),
        }
    }
}

fn verify_with_certificate(
    der: &[u8],
    alg: i64,
    message: &[u8],
    signature: &[u8],
) -> Result<(), WebAuthnError> {
    use x509_parser::public_key::PublicKey as CertKey;
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| WebAuthnError::Attestation(format!("attestation certificate: {e}")))?;
    let spki = cert.public_key();
    let refused = || WebAuthnError::Attestation("attestation signature".into());
    match (alg, spki.parsed()) {
        (ES256, Ok(CertKey::EC(point))) => {
            verify_es256(point.data(), message, signature).map_err(|_| refused())
        }
        (RS256, Ok(CertKey::RSA(key))) => {
            let key = rsa::PublicKey::new(
                rsa::BoxedUint::from_be_slice_vartime(key.modulus),
                rsa::BoxedUint::from_be_slice_vartime(key.exponent),
            )
            .map_err(|_| refused())?;
            verify_rs256(&key, message, signature).map_err(|_| refused())
        }
        _ => Err(WebAuthnError::Attestation(format!(
            "attestation alg {alg} with this certificate key is not supported"
        ))),
    }
}
