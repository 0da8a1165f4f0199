//! `clientDataJSON` (WebAuthn §5.8.1): what the browser says it signed.

use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::WebAuthnError;
use crate::encoding::{Challenge, decode_binary};

#[derive(Deserialize)]
struct Raw {
    #[serde(rename = "type")]
    kind: String,
    challenge: String,
    origin: String,
    #[serde(rename = "crossOrigin", default)]
    cross_origin: Option<bool>,
}

/// Check the client data of a ceremony of `kind` (`webauthn.create` or `webauthn.get`) against
/// the challenge issued and the portal's origin.
pub(crate) fn check(
    bytes: &[u8],
    kind: &'static str,
    challenge: &Challenge,
    origin: &str,
) -> Result<(), WebAuthnError> {
    let raw: Raw =
        serde_json::from_slice(bytes).map_err(|e| WebAuthnError::malformed("clientDataJSON", e))?;
    if raw.kind != kind {
        return Err(WebAuthnError::CeremonyType {
            expected: kind,
            got: raw.kind,
        });
    }
    let signed = decode_binary("clientDataJSON.challenge", &raw.challenge)?;
    if !bool::from(signed.as_slice().ct_eq(challenge.as_bytes())) {
        return Err(WebAuthnError::Challenge);
    }
    if raw.origin != origin {
        return Err(WebAuthnError::Origin(raw.origin));
    }
    if raw.cross_origin == Some(true) {
        return Err(WebAuthnError::CrossOrigin);
    }
    Ok(())
}

/// The challenge named in client data, unchecked.
pub(crate) fn challenge(bytes: &[u8]) -> Result<Vec<u8>, WebAuthnError> {
    let raw: Raw =
        serde_json::from_slice(bytes).map_err(|e| WebAuthnError::malformed("clientDataJSON", e))?;
    decode_binary("clientDataJSON.challenge", &raw.challenge)
}
