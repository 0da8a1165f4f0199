//! The one error type of the crate.

/// Why a WebAuthn response was refused. Every variant is a refusal; none carries key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WebAuthnError {
    /// A field is not the base64url (or base64) it must be.
    #[error("{0} is not valid base64url")]
    Base64(&'static str),
    /// The response's JSON or CBOR does not have the expected shape.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// Which part.
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// `clientDataJSON.type` is not the ceremony's.
    #[error("client data type {got:?}, expected {expected:?}")]
    CeremonyType {
        /// What the ceremony needs.
        expected: &'static str,
        /// What the browser said.
        got: String,
    },
    /// The challenge signed is not the one issued.
    #[error("the challenge does not match the one issued")]
    Challenge,
    /// The origin the browser reports is not the portal's.
    #[error("origin {0:?} is not the expected origin")]
    Origin(String),
    /// The browser says the ceremony ran in a cross-origin frame.
    #[error("cross-origin ceremonies are refused")]
    CrossOrigin,
    /// The authenticator data is bound to another RP ID.
    #[error("the authenticator data is for another RP ID")]
    RpIdHash,
    /// The user-present flag is not set.
    #[error("the user was not present (UP flag clear)")]
    UserNotPresent,
    /// User verification was required and not done.
    #[error("user verification was required (UV flag clear)")]
    UserNotVerified,
    /// A registration without attested credential data.
    #[error("the registration carries no attested credential data")]
    NoCredentialData,
    /// The credential id in the authenticator data is not the one the response names.
    #[error("the credential id does not match the response's id")]
    CredentialId,
    /// A key type or algorithm this crate does not verify.
    #[error("unsupported public key: {0}")]
    UnsupportedKey(String),
    /// An attestation format this crate does not know.
    #[error("unsupported attestation format {0:?}")]
    UnsupportedAttestation(String),
    /// The attestation statement does not verify.
    #[error("attestation statement refused: {0}")]
    Attestation(String),
    /// The signature does not verify with the credential's key.
    #[error("the signature does not verify")]
    Signature,
}

impl WebAuthnError {
    pub(crate) fn malformed(what: &'static str, reason: impl std::fmt::Display) -> Self {
        Self::Malformed {
            what,
            reason: reason.to_string(),
        }
    }
}
