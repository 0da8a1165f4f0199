//! PKCE (RFC 7636): challenge methods, the verifier's grammar, and the check at the token endpoint.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A code challenge method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChallengeMethod {
    /// `S256`: the challenge is base64url(SHA-256(verifier)).
    S256,
    /// `plain`: the challenge is the verifier (only when the provider enables it).
    Plain,
}

impl ChallengeMethod {
    /// Parse the wire name (case-sensitive, as RFC 7636 defines it).
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "S256" => Some(Self::S256),
            "plain" => Some(Self::Plain),
            _ => None,
        }
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::S256 => "S256",
            Self::Plain => "plain",
        }
    }
}

/// A challenge as the authorization request sent it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    /// The method.
    pub method: ChallengeMethod,
    /// The challenge value.
    pub value: String,
}

/// RFC 7636 §4.1: 43 to 128 characters of `[A-Za-z0-9-._~]`. The same grammar applies to a
/// challenge (a plain challenge is a verifier; an S256 challenge is 43 base64url characters).
pub fn is_well_formed(value: &str) -> bool {
    (43..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// The S256 challenge of a verifier.
pub fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Why a verifier was refused; every case is `invalid_grant` (or `invalid_request` for a
/// malformed verifier) at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PkceFailure {
    /// The code was issued with a challenge and no verifier came.
    Missing,
    /// A verifier came for a code issued without a challenge (downgrade guard).
    Unexpected,
    /// The verifier is not 43–128 unreserved characters.
    Malformed,
    /// The verifier does not match the challenge.
    Mismatch,
}

/// Check the token request's `code_verifier` against the challenge stored with the code.
pub fn verify(challenge: Option<&Challenge>, verifier: Option<&str>) -> Result<(), PkceFailure> {
    match (challenge, verifier) {
        (None, None) => Ok(()),
        (None, Some(_)) => Err(PkceFailure::Unexpected),
        (Some(_), None) => Err(PkceFailure::Missing),
        (Some(challenge), Some(verifier)) => {
            if !is_well_formed(verifier) {
                return Err(PkceFailure::Malformed);
            }
            let computed = match challenge.method {
                ChallengeMethod::S256 => s256(verifier),
                ChallengeMethod::Plain => verifier.to_owned(),
            };
            if bool::from(computed.as_bytes().ct_eq(challenge.value.as_bytes())) {
                Ok(())
            } else {
                Err(PkceFailure::Mismatch)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7636 Appendix B.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn rfc7636_vector() {
        assert_eq!(s256(VERIFIER), CHALLENGE);
        let c = Challenge {
            method: ChallengeMethod::S256,
            value: CHALLENGE.into(),
        };
        assert_eq!(verify(Some(&c), Some(VERIFIER)), Ok(()));
        let other = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXK";
        assert_eq!(verify(Some(&c), Some(other)), Err(PkceFailure::Mismatch));
    }

    #[test]
    fn grammar_and_downgrade() {
        let c = Challenge {
            method: ChallengeMethod::Plain,
            value: VERIFIER.into(),
        };
        assert_eq!(verify(Some(&c), Some(VERIFIER)), Ok(()));
        assert_eq!(verify(Some(&c), None), Err(PkceFailure::Missing));
        assert_eq!(verify(None, Some(VERIFIER)), Err(PkceFailure::Unexpected));
        assert_eq!(verify(Some(&c), Some("short")), Err(PkceFailure::Malformed));
        assert!(!is_well_formed(&"a".repeat(129)));
        assert!(is_well_formed(&"a".repeat(128)));
        assert!(!is_well_formed(&format!("{}+", "a".repeat(43))));
        assert_eq!(ChallengeMethod::parse("s256"), None);
    }
}
