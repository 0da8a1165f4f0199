//! Opaque codes and tokens: `portcullis_<kind>_<random>.<HMAC>`. The HMAC (keyed by the
//! provider's `hmac_secret`) is checked before any store lookup, so a forged token costs no I/O;
//! the store keeps only the HMAC part, so a leaked database holds no usable token.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What an opaque string is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// Authorization code (`ac`).
    AuthorizationCode,
    /// Access token (`at`).
    AccessToken,
    /// Refresh token (`rt`).
    RefreshToken,
    /// Device code (`dc`, RFC 8628).
    DeviceCode,
}

impl TokenKind {
    /// The two-letter tag.
    pub fn tag(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "ac",
            Self::AccessToken => "at",
            Self::RefreshToken => "rt",
            Self::DeviceCode => "dc",
        }
    }

    fn from_tag(tag: &str) -> Option<Self> {
        match tag {
            "ac" => Some(Self::AuthorizationCode),
            "at" => Some(Self::AccessToken),
            "rt" => Some(Self::RefreshToken),
            "dc" => Some(Self::DeviceCode),
            _ => None,
        }
    }
}

const PREFIX: &str = "portcullis_";

/// The alphabet of user codes (RFC 8628 §6.1): consonants only, no vowels (no words), no
/// look-alikes.
pub const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";

/// A user code `XXXX-XXXX` from random bytes: bytes of 240 and above are skipped so that every
/// letter is equally likely (240 = 12 × 20). `None` when fewer than 8 bytes remain, which 32
/// random bytes make vanishingly rare (the caller draws again). 20⁸ ≈ 2³⁴·⁶ codes; guessing is
/// bounded by the code's short life and the device page's rate limit.
pub fn user_code(random: &[u8]) -> Option<String> {
    let chars: Vec<char> = random
        .iter()
        .filter(|b| **b < 240)
        .take(8)
        .map(|b| char::from(USER_CODE_ALPHABET[usize::from(*b) % USER_CODE_ALPHABET.len()]))
        .collect();
    (chars.len() == 8).then(|| {
        format!(
            "{}-{}",
            chars[..4].iter().collect::<String>(),
            chars[4..].iter().collect::<String>()
        )
    })
}

/// A typed user code in canonical form: upper case, separators and spaces dropped, then
/// `XXXX-XXXX`; `None` when it cannot be one.
pub fn normalise_user_code(typed: &str) -> Option<String> {
    let letters: String = typed
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (letters.len() == 8 && letters.bytes().all(|b| USER_CODE_ALPHABET.contains(&b)))
        .then(|| format!("{}-{}", &letters[..4], &letters[4..]))
}

/// The HMAC key of opaque tokens: SHA-256 of `hmac_secret`, as Authelia derives its global key.
#[derive(Clone)]
pub struct TokenKey([u8; 32]);

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey([redacted])")
    }
}

impl TokenKey {
    /// Derive from the configured secret.
    pub fn from_secret(secret: &[u8]) -> Self {
        Self(Sha256::digest(secret).into())
    }

    /// `None` only if HMAC refused the key, which HMAC-SHA256 never does (any key length is
    /// valid); the callers refuse rather than mint or accept an unsigned token.
    fn mac(&self, kind: TokenKind, random: &str) -> Option<String> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).ok()?;
        mac.update(kind.tag().as_bytes());
        mac.update(b"_");
        mac.update(random.as_bytes());
        Some(URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
    }

    /// Mint a token from 32 random bytes. Returns the token and its store key (the HMAC).
    pub fn mint(&self, kind: TokenKind, random: [u8; 32]) -> Option<(String, String)> {
        let random = URL_SAFE_NO_PAD.encode(random);
        let signature = self.mac(kind, &random)?;
        Some((
            format!("{PREFIX}{}_{random}.{signature}", kind.tag()),
            signature,
        ))
    }

    /// Check a presented token: its kind and its store key when the HMAC is right.
    pub fn verify(&self, token: &str) -> Option<(TokenKind, String)> {
        let rest = token.strip_prefix(PREFIX)?;
        let (tag, rest) = rest.split_once('_')?;
        let kind = TokenKind::from_tag(tag)?;
        let (random, signature) = rest.split_once('.')?;
        if random.len() != 43 || signature.len() != 43 {
            return None;
        }
        let expected = self.mac(kind, random)?;
        bool::from(expected.as_bytes().ct_eq(signature.as_bytes())).then_some((kind, expected))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes() {
        let code = user_code(&[0, 1, 2, 3, 19, 20, 255, 7, 250, 9]).unwrap();
        assert_eq!(&code[..4], "BCDF", "0, 1, 2, 3");
        assert_eq!(
            &code[5..],
            "ZBKM",
            "19, 20, (255 skipped), 7, (250 skipped), 9"
        );
        assert_eq!(user_code(&[255; 32]), None);
        assert_eq!(code.len(), 9);
        assert_eq!(&code[4..5], "-");
        assert_eq!(
            normalise_user_code(&code.to_lowercase().replace('-', " ")).as_deref(),
            Some(code.as_str())
        );
        assert_eq!(
            normalise_user_code("BCDF-GHJA"),
            None,
            "vowels are not in the alphabet"
        );
        assert_eq!(normalise_user_code("BCD"), None);
    }

    #[test]
    fn round_trip_and_forgery() {
        let key = TokenKey::from_secret(b"a-very-long-hmac-secret");
        let (token, sig) = key.mint(TokenKind::AccessToken, [7; 32]).unwrap();
        assert!(token.starts_with("portcullis_at_"));
        assert_eq!(key.verify(&token), Some((TokenKind::AccessToken, sig)));
        // Changing the kind tag, the random part or the key breaks it.
        assert_eq!(key.verify(&token.replacen("_at_", "_rt_", 1)), None);
        let mut chars: Vec<char> = token.chars().collect();
        chars[20] = if chars[20] == 'A' { 'B' } else { 'A' };
        assert_eq!(key.verify(&chars.into_iter().collect::<String>()), None);
        assert_eq!(TokenKey::from_secret(b"other").verify(&token), None);
        assert_eq!(key.verify(""), None);
        assert_eq!(key.verify("portcullis_at_x.y"), None);
    }
}
