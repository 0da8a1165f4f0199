//! The session identifier: 256 bits from a CSPRNG, carried as base64url without padding.

use std::fmt;
use std::hash::{Hash, Hasher};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand_core::CryptoRng;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use subtle::ConstantTimeEq;

/// Number of random bytes in a session id (256 bits; docs/reference/security.md R6.3 asks for at least 128).
pub const SESSION_ID_BYTES: usize = 32;

/// Length of the textual form: 32 bytes in base64url without padding.
pub const SESSION_ID_LEN: usize = 43;

/// How many characters of the id `Debug` shows.
const DEBUG_PREFIX: usize = 4;

/// A session identifier, the bearer secret a session cookie carries.
///
/// It is 32 bytes from the CSPRNG passed to [`SessionId::generate`], written in base64url without
/// padding (43 characters of `A–Z a–z 0–9 - _`). [`SessionId::parse`] accepts exactly that form, so a
/// malformed cookie value never becomes an id.
///
/// `Debug` prints only a short prefix (`SessionId("AbCd…")`), and there is deliberately no
/// `Display`: use [`SessionId::as_str`] where the full value is really needed (the cookie, the store).
/// Equality runs in constant time.
#[derive(Clone, PartialOrd, Ord)]
pub struct SessionId {
    text: String,
    /// The 32 bytes `text` encodes, decoded once when the id is made: the memory store keys on
    /// them, and decoding again on every lookup cost a cookie check about 500 instructions.
    bytes: [u8; SESSION_ID_BYTES],
}

impl SessionId {
    /// A fresh id: 32 bytes drawn from `rng`.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut bytes = [0u8; SESSION_ID_BYTES];
        rng.fill_bytes(&mut bytes);
        Self::from_bytes(&bytes)
    }

    /// Parse the textual form. Anything but exactly 43 base64url characters that decode canonically to
    /// 32 bytes is `None` (so a malformed cookie is treated as absent).
    pub fn parse(value: &str) -> Option<Self> {
        if value.len() != SESSION_ID_LEN {
            return None;
        }
        // The decoder refuses every byte outside the base64url alphabet (padding included) and
        // non-canonical encodings (stray bits in the last character), so one id has one form.
        let mut bytes = [0u8; SESSION_ID_BYTES];
        match URL_SAFE_NO_PAD.decode_slice(value, &mut bytes) {
            Ok(SESSION_ID_BYTES) => Some(Self {
                text: value.to_owned(),
                bytes,
            }),
            _ => None,
        }
    }

    /// The 32 bytes the id encodes, decoded when it was made.
    pub(crate) fn to_bytes(&self) -> [u8; SESSION_ID_BYTES] {
        self.bytes
    }

    /// The id of these 32 bytes (the inverse of [`SessionId::to_bytes`]).
    pub(crate) fn from_bytes(bytes: &[u8; SESSION_ID_BYTES]) -> Self {
        Self {
            text: URL_SAFE_NO_PAD.encode(bytes),
            bytes: *bytes,
        }
    }

    /// The full textual form (43 characters). This is a bearer secret: do not log it.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl PartialEq for SessionId {
    fn eq(&self, other: &Self) -> bool {
        self.text.as_bytes().ct_eq(other.text.as_bytes()).into()
    }
}

impl Eq for SessionId {}

impl Hash for SessionId {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.text.hash(state);
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prefix = self.text.get(..DEBUG_PREFIX).unwrap_or("");
        write!(f, "SessionId(\"{prefix}…\")")
    }
}

impl Serialize for SessionId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for SessionId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        SessionId::parse(&value)
            .ok_or_else(|| serde::de::Error::custom("not a session id (43 base64url characters)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn generated_ids_have_the_documented_form() {
        let mut rng = StdRng::seed_from_u64(7);
        let id = SessionId::generate(&mut rng);
        assert_eq!(id.as_str().len(), SESSION_ID_LEN);
        assert!(
            id.as_str()
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(SessionId::parse(id.as_str()), Some(id.clone()));
        let other = SessionId::generate(&mut rng);
        assert_ne!(id, other, "two draws differ");
    }

    #[test]
    fn generation_uses_the_rng_passed_in() {
        let a = SessionId::generate(&mut StdRng::seed_from_u64(42));
        let b = SessionId::generate(&mut StdRng::seed_from_u64(42));
        let c = SessionId::generate(&mut StdRng::seed_from_u64(43));
        assert_eq!(a, b);
        assert_ne!(a, c);
        // The thread CSPRNG works too (CryptoRng).
        let d = SessionId::generate(&mut rand::rng());
        assert_eq!(d.as_str().len(), SESSION_ID_LEN);
    }

    #[test]
    fn parse_rejects_anything_but_the_exact_form() {
        let good = "A".repeat(42) + "A";
        assert!(SessionId::parse(&good).is_some());
        let too_short = "A".repeat(42);
        let too_long = "A".repeat(44);
        let padded = "A".repeat(42) + "=";
        let std_alphabet = "+".repeat(42) + "A";
        let slash = "/".repeat(42) + "A";
        let space = " ".repeat(42) + "A";
        let non_ascii = "é".repeat(21) + "A";
        let non_canonical = "A".repeat(42) + "B"; // stray low bits in the last character
        for bad in [
            "",
            too_short.as_str(),
            too_long.as_str(),
            padded.as_str(),
            std_alphabet.as_str(),
            slash.as_str(),
            space.as_str(),
            non_ascii.as_str(),
            non_canonical.as_str(),
        ] {
            assert_eq!(SessionId::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn debug_shows_only_a_prefix() {
        let id = SessionId::generate(&mut StdRng::seed_from_u64(1));
        let shown = format!("{id:?}");
        assert!(!shown.contains(id.as_str()));
        assert!(shown.contains(&id.as_str()[..DEBUG_PREFIX]));
        assert_eq!(
            shown,
            format!("SessionId(\"{}…\")", &id.as_str()[..DEBUG_PREFIX])
        );
    }

    #[test]
    fn serde_round_trips_and_validates() {
        let id = SessionId::generate(&mut StdRng::seed_from_u64(2));
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{}\"", id.as_str()));
        let back: SessionId = serde_json::from_str(&json).unwrap();
        assert_eq!(back, id);
        assert!(serde_json::from_str::<SessionId>("\"short\"").is_err());
    }

    proptest::proptest! {
        #[test]
        fn parse_accepts_only_what_generate_can_produce(s in "\\PC{0,50}") {
            if let Some(id) = SessionId::parse(&s) {
                proptest::prop_assert_eq!(id.as_str(), s.as_str());
                proptest::prop_assert_eq!(s.len(), SESSION_ID_LEN);
            }
        }

        #[test]
        fn every_seed_gives_a_parsable_id(seed in proptest::num::u64::ANY) {
            let id = SessionId::generate(&mut StdRng::seed_from_u64(seed));
            proptest::prop_assert_eq!(SessionId::parse(id.as_str()), Some(id));
        }
    }
}
