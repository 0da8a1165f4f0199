//! A software authenticator with one P-256 key, for tests: it answers registration and assertion
//! options as a browser would relay a security key's answers (feature `software-authenticator`).

use ciborium::Value;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use serde_json::{Value as Json, json};
use sha2::{Digest, Sha256};

use crate::cose::PublicKey;
use crate::encoding::base64url;

/// One credential held in software.
#[derive(Clone)]
pub struct SoftwareAuthenticator {
    key: SigningKey,
    /// The credential id.
    pub credential_id: Vec<u8>,
    /// The counter of the last answer (each assertion increments it first, as authenticators do).
    pub sign_count: u32,
    /// The flags set on every answer (UP and UV by default).
    pub flags: u8,
    /// Whether it keeps a signature counter (false: it always reports 0, as many passkeys do).
    pub counts: bool,
}

impl std::fmt::Debug for SoftwareAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SoftwareAuthenticator")
    }
}

fn cbor(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = ciborium::into_writer(value, &mut out);
    out
}

impl SoftwareAuthenticator {
    /// An authenticator whose key is derived from `seed` (a valid P-256 scalar for any seed
    /// below the group order; tests pass small arrays).
    pub fn new(seed: [u8; 32], credential_id: Vec<u8>) -> Self {
        let key = SigningKey::from_slice(&seed).unwrap_or_else(|_| {
            // The all-zero seed is not a scalar; 1 is.
            let mut one = [0u8; 32];
            one[31] = 1;
            SigningKey::from_slice(&one).unwrap_or_else(|_| unreachable!("1 is a valid scalar"))
        });
        Self {
            key,
            credential_id,
            sign_count: 1,
            flags: 0x01 | 0x04,
            counts: true,
        }
    }

    /// The credential's public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey::Es256 {
            point: self
                .key
                .verifying_key()
                .to_sec1_point(false)
                .as_bytes()
                .to_vec(),
        }
    }

    fn client_data(kind: &str, challenge_b64: &str, origin: &str) -> Vec<u8> {
        json!({"type": kind, "challenge": challenge_b64, "origin": origin, "crossOrigin": false})
            .to_string()
            .into_bytes()
    }

    fn auth_data(&self, rp_id: &str, flags: u8, attested: bool) -> Vec<u8> {
        let mut data = Sha256::digest(rp_id.as_bytes()).to_vec();
        data.push(flags | if attested { 0x40 } else { 0 });
        data.extend_from_slice(&self.sign_count.to_be_bytes());
        if attested {
            data.extend_from_slice(&[0u8; 16]);
            let len = u16::try_from(self.credential_id.len()).unwrap_or(u16::MAX);
            data.extend_from_slice(&len.to_be_bytes());
            data.extend_from_slice(&self.credential_id);
            data.extend_from_slice(&self.public_key().to_cose());
        }
        data
    }

    /// The registration response for `challenge_b64` (as the options carry it) with a `packed`
    /// self attestation, as `navigator.credentials.create` returns it in JSON.
    pub fn register(
        &self,
        rp_id: &str,
        origin: &str,
        challenge_b64: &str,
        discoverable: bool,
    ) -> Json {
        let client_data = Self::client_data("webauthn.create", challenge_b64, origin);
        let auth_data = self.auth_data(rp_id, self.flags, true);
        let mut signed = auth_data.clone();
        signed.extend_from_slice(&Sha256::digest(&client_data));
        let sig: Signature = self.key.sign(&signed);
        let object = Value::Map(vec![
            (Value::Text("fmt".into()), Value::Text("packed".into())),
            (
                Value::Text("attStmt".into()),
                Value::Map(vec![
                    (Value::Text("alg".into()), Value::Integer((-7).into())),
                    (
                        Value::Text("sig".into()),
                        Value::Bytes(sig.to_der().as_bytes().to_vec()),
                    ),
                ]),
            ),
            (Value::Text("authData".into()), Value::Bytes(auth_data)),
        ]);
        json!({
            "id": base64url(&self.credential_id),
            "rawId": base64url(&self.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": base64url(&client_data),
                "attestationObject": base64url(&cbor(&object)),
                "transports": ["usb"],
            },
            "clientExtensionResults": {"credProps": {"rk": discoverable}},
            "authenticatorAttachment": "cross-platform",
        })
    }

    /// The assertion for `challenge_b64`, with `user_handle` when the credential is discoverable;
    /// the counter grows by one first.
    pub fn assert(
        &mut self,
        rp_id: &str,
        origin: &str,
        challenge_b64: &str,
        user_handle: Option<&[u8]>,
    ) -> Json {
        self.sign_count = if self.counts {
            self.sign_count.wrapping_add(1)
        } else {
            0
        };
        let client_data = Self::client_data("webauthn.get", challenge_b64, origin);
        let auth_data = self.auth_data(rp_id, self.flags, false);
        let mut signed = auth_data.clone();
        signed.extend_from_slice(&Sha256::digest(&client_data));
        let sig: Signature = self.key.sign(&signed);
        json!({
            "id": base64url(&self.credential_id),
            "rawId": base64url(&self.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": base64url(&client_data),
                "authenticatorData": base64url(&auth_data),
                "signature": base64url(sig.to_der().as_bytes()),
                "userHandle": user_handle.map(base64url),
            },
            "clientExtensionResults": {},
            "authenticatorAttachment": "cross-platform",
        })
    }
}
