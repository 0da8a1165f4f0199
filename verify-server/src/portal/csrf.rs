//! The CSRF tokens of the HTML forms: an HMAC of a per-browser nonce (kept in a cookie) under a key
//! derived from the session secret, so a form served by one replica, or before a restart, posts to
//! any other.

use base64::Engine;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use http::HeaderMap;
use rand::RngCore;
use sha2::Sha256;

/// The cookie that carries the nonce.
pub(crate) const CSRF_COOKIE: &str = "portcullis_csrf";

/// The token for `nonce`. The key is one HMAC block, so building the MAC cannot fail and no
/// fallback token exists.
pub(crate) fn csrf_token(key: &[u8; 64], nonce: &str) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new(key.into());
    mac.update(nonce.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// A fresh nonce and the `Set-Cookie` value that gives it to the browser.
pub(crate) fn new_nonce() -> (String, String) {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    let nonce = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let cookie = format!("{CSRF_COOKIE}={nonce}; Path=/; HttpOnly; Secure; SameSite=Strict");
    (nonce, cookie)
}

pub(crate) fn csrf_nonce(headers: &HeaderMap) -> Option<String> {
    for value in headers.get_all(http::header::COOKIE) {
        let Ok(text) = value.to_str() else { continue };
        for pair in text.split(';') {
            if let Some((k, v)) = pair.trim().split_once('=')
                && k == CSRF_COOKIE
                && v.len() == 22
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Some(v.to_owned());
            }
        }
    }
    None
}

pub(crate) fn csrf_valid(key: &[u8; 64], headers: &HeaderMap, submitted: &str) -> bool {
    let Some(nonce) = csrf_nonce(headers) else {
        return false;
    };
    let expected = csrf_token(key, &nonce);
    portcullis_core::secret::constant_time_eq(expected.as_bytes(), submitted.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_depend_on_key_and_nonce_only() {
        let (nonce, cookie) = new_nonce();
        assert_eq!(nonce.len(), 22);
        assert!(cookie.starts_with(&format!("{CSRF_COOKIE}={nonce};")));
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::COOKIE,
            format!("{CSRF_COOKIE}={nonce}").parse().unwrap(),
        );
        let key = [3u8; 64];
        let token = csrf_token(&key, &nonce);
        assert!(!token.is_empty());
        assert!(
            csrf_valid(&key, &headers, &token),
            "same key: a replica or a restart accepts it"
        );
        assert!(
            !csrf_valid(&[4u8; 64], &headers, &token),
            "another key refuses it"
        );
        assert!(
            !csrf_valid(&key, &headers, ""),
            "an empty token never passes"
        );
        assert!(
            !csrf_valid(&key, &HeaderMap::new(), &token),
            "no nonce cookie, no pass"
        );
    }
}
