//! The authenticator data (WebAuthn §6.1): RP ID hash, flags, signature counter and, at
//! registration, the attested credential.

use ciborium::Value;

use crate::WebAuthnError;
use crate::cose::PublicKey;

/// User present.
const UP: u8 = 0x01;
/// User verified.
const UV: u8 = 0x04;
/// Backup eligible.
const BE: u8 = 0x08;
/// Backed up.
const BS: u8 = 0x10;
/// Attested credential data included.
const AT: u8 = 0x40;
/// Extension data included.
const ED: u8 = 0x80;

/// The authenticator's flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flags(pub u8);

impl Flags {
    /// The user touched the authenticator.
    pub fn user_present(self) -> bool {
        self.0 & UP != 0
    }
    /// The user was verified (PIN, biometrics).
    pub fn user_verified(self) -> bool {
        self.0 & UV != 0
    }
    /// The credential may be backed up (synced passkey).
    pub fn backup_eligible(self) -> bool {
        self.0 & BE != 0
    }
    /// The credential is backed up.
    pub fn backup_state(self) -> bool {
        self.0 & BS != 0
    }
}

/// The credential an authenticator created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttestedCredential {
    /// The authenticator model.
    pub aaguid: [u8; 16],
    /// The credential id.
    pub credential_id: Vec<u8>,
    /// Its public key.
    pub public_key: PublicKey,
    /// The key's COSE bytes exactly as sent (what is stored).
    pub public_key_cose: Vec<u8>,
}

/// Parsed authenticator data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatorData {
    /// SHA-256 of the RP ID.
    pub rp_id_hash: [u8; 32],
    /// The flags.
    pub flags: Flags,
    /// The signature counter (0 when the authenticator keeps none).
    pub sign_count: u32,
    /// Present at registration.
    pub attested: Option<AttestedCredential>,
}

const MAX_CREDENTIAL_ID: usize = 1023;

impl AuthenticatorData {
    /// Parse `bytes`; trailing bytes beyond the declared parts are refused.
    pub fn parse(bytes: &[u8]) -> Result<Self, WebAuthnError> {
        let bad = |reason: &str| WebAuthnError::malformed("authenticator data", reason);
        if bytes.len() < 37 {
            return Err(bad("shorter than 37 bytes"));
        }
        let mut rp_id_hash = [0u8; 32];
        rp_id_hash.copy_from_slice(&bytes[..32]);
        let flags = Flags(bytes[32]);
        let sign_count = u32::from_be_bytes([bytes[33], bytes[34], bytes[35], bytes[36]]);
        let mut rest = &bytes[37..];
        let attested = if flags.0 & AT != 0 {
            if rest.len() < 18 {
                return Err(bad("attested credential data truncated"));
            }
            let mut aaguid = [0u8; 16];
            aaguid.copy_from_slice(&rest[..16]);
            let id_len = usize::from(u16::from_be_bytes([rest[16], rest[17]]));
            if id_len == 0 || id_len > MAX_CREDENTIAL_ID || rest.len() < 18 + id_len {
                return Err(bad("credential id length"));
            }
            let credential_id = rest[18..18 + id_len].to_vec();
            rest = &rest[18 + id_len..];
            let before = rest.len();
            let value: Value = ciborium::from_reader(&mut rest)
                .map_err(|e| WebAuthnError::malformed("credential public key", e))?;
            let public_key_cose = bytes[bytes.len() - before..bytes.len() - rest.len()].to_vec();
            let public_key = PublicKey::from_cose_value(&value)?;
            Some(AttestedCredential {
                aaguid,
                credential_id,
                public_key,
                public_key_cose,
            })
        } else {
            None
        };
        if flags.0 & ED != 0 {
            let _extensions: Value = ciborium::from_reader(&mut rest)
                .map_err(|e| WebAuthnError::malformed("authenticator extensions", e))?;
        }
        if !rest.is_empty() {
            return Err(bad("trailing bytes"));
        }
        Ok(Self {
            rp_id_hash,
            flags,
            sign_count,
            attested,
        })
    }
}
