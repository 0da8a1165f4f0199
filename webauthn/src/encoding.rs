//! The encodings of WebAuthn's JSON: base64url without padding for every binary field, and the
//! challenges the server issues.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

use crate::WebAuthnError;

/// `bytes` as base64url without padding (what browsers send and expect).
pub fn base64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `bytes` as standard base64 with padding (Authelia's `kid` column).
pub fn base64_standard(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Decode a binary field of a response: base64url, padded or not. Standard base64 is accepted
/// too, as some clients send it.
pub fn decode_binary(field: &'static str, text: &str) -> Result<Vec<u8>, WebAuthnError> {
    let text = text.trim();
    URL_SAFE_NO_PAD
        .decode(text)
        .or_else(|_| URL_SAFE.decode(text))
        .or_else(|_| STANDARD.decode(text))
        .or_else(|_| STANDARD_NO_PAD.decode(text))
        .map_err(|_| WebAuthnError::Base64(field))
}

/// A server challenge: 32 random bytes, which the caller draws (the crate has no randomness).
#[derive(Clone, PartialEq, Eq)]
pub struct Challenge([u8; 32]);

impl Challenge {
    /// The challenge made of `bytes`.
    pub fn new(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Its bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// As the options and `clientDataJSON` carry it.
    pub fn to_base64url(&self) -> String {
        base64url(&self.0)
    }
}

impl std::fmt::Debug for Challenge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Challenge([redacted])")
    }
}
