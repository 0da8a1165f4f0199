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
}

impl TokenKind {
    /// The two-letter tag.
    pub fn tag(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "ac",
            Self::AccessToken => "at",
            Self::RefreshToken => "rt",
        }
    }

    fn from_tag(tag: &str) -> Option<Self> {
        match tag {
            "ac" => Some(Self::AuthorizationCode),
            "at" => Some(Self::AccessToken),
            "rt" => Some(Self::RefreshToken),
            _ => None,
        }
    }
}

const PREFIX: &str = "portcullis_";

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
