//! WebAuthn as pure code: the options a browser is given ([`options`]), and registration and
//! assertion responses verified ([`ceremony`]) against credentials stored the way Authelia stores
//! them — a COSE key ([`cose`]) and a user handle of any bytes (Authelia's are 64 ASCII
//! characters). No I/O, no clock, no randomness: challenges come in from the caller.
//!
//! Why not `webauthn-rs`: its credentials are its own serialised types keyed by `Uuid` user ids,
//! and it needs OpenSSL; Portcullis must verify the rows of an existing Authelia database as they
//! are, so it keeps only the parts the specification defines and leaves the cryptography to
//! `p256`, `ed25519-dalek` and `rsa`, the CBOR to `ciborium` and certificates to `x509-parser`.
//!
//! ```
//! use portcullis_webauthn::ceremony::{verify_assertion, AssertionResponse, Expectation, StoredCredential};
//! use portcullis_webauthn::encoding::Challenge;
//! use portcullis_webauthn::WebAuthnError;
//! let challenge = Challenge::new([7; 32]);
//! let expected = Expectation {
//!     challenge: &challenge,
//!     rp_id: "auth.example.com",
//!     origin: "https://auth.example.com",
//!     user_verification: None,
//! };
//! // A response that is not even base64 is refused before any key is touched.
//! let response: AssertionResponse = serde_json::from_value(serde_json::json!({
//!     "id": "AA", "rawId": "AA", "type": "public-key",
//!     "response": {"clientDataJSON": "!!", "authenticatorData": "", "signature": ""}
//! })).expect("the JSON shape is right");
//! let stored = StoredCredential { public_key: &[], sign_count: 0, app_id: None };
//! assert_eq!(
//!     verify_assertion(&response, &expected, stored),
//!     Err(WebAuthnError::Base64("clientDataJSON"))
//! );
//! ```
//!
//! The reference is docs/reference/second-factor.md §2.

#![warn(missing_docs, unreachable_pub)]

pub mod attestation;
pub mod authenticator_data;
pub mod ceremony;
mod client_data;
pub mod cose;
pub mod encoding;
mod error;
pub mod options;
#[cfg(any(test, feature = "software-authenticator"))]
pub mod software_authenticator;

pub use error::WebAuthnError;

#[cfg(test)]
mod tests;
