//! The session cookie `authentik_proxy_<8 hex>` (docs/reference/outpost.md §10.1, §14 item 7):
//! a random 256-bit session id and its HMAC-SHA256 under the provider's cookie secret, so a
//! forged or altered cookie is refused without asking the store.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use http::HeaderMap;
use http::header::COOKIE;
use portcullis_session::SessionId;
use sha2::Sha256;

/// The `Cookie` headers longer than this together are not read at all.
const MAX_COOKIE_BYTES: usize = 8 * 1024;
/// At most this many cookie pairs are looked at.
const MAX_PAIRS: usize = 64;

/// What the request's cookie says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CookieState {
    /// No cookie of this name.
    Absent,
    /// A cookie of this name that is not ours (bad signature, malformed, oversized headers): it
    /// is deleted and treated as no session.
    Invalid,
    /// A well-formed, correctly signed id.
    Valid(SessionId),
}

/// One provider's cookie: name, attributes and signing key.
#[derive(Clone)]
pub(crate) struct SessionCookie {
    pub(crate) name: String,
    domain: String,
    secure: bool,
    key: Vec<u8>,
}

impl std::fmt::Debug for SessionCookie {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCookie")
            .field("name", &self.name)
            .field("domain", &self.domain)
            .field("secure", &self.secure)
            .finish_non_exhaustive()
    }
}

impl SessionCookie {
    /// `key` is the cookie-signing key derived from `cookie_secret`; `secure` is whether the
    /// external host is https (whatever the request's own scheme, as authentik does).
    pub(crate) fn new(name: String, domain: &str, secure: bool, key: Vec<u8>) -> Self {
        Self {
            name,
            domain: domain.to_owned(),
            secure,
            key,
        }
    }

    fn mac(&self, id: &str) -> String {
        // HMAC takes keys of any length: the error arm cannot be reached, and yields a MAC no
        // cookie matches.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.key) else {
            return String::new();
        };
        mac.update(id.as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    fn value(&self, id: &SessionId) -> String {
        format!("{}.{}", id.as_str(), self.mac(id.as_str()))
    }

    fn open(&self, value: &str) -> Option<SessionId> {
        let (id, mac) = value.split_once('.')?;
        let expected = self.mac(id);
        if expected.is_empty()
            || !bool::from(subtle::ConstantTimeEq::ct_eq(
                expected.as_bytes(),
                mac.as_bytes(),
            ))
        {
            return None;
        }
        SessionId::parse(id)
    }

    /// Read this cookie from the request: bounded, the first correctly signed copy wins.
    pub(crate) fn read(&self, headers: &HeaderMap) -> CookieState {
        let mut total = 0usize;
        for value in headers.get_all(COOKIE) {
            total = total.saturating_add(value.len());
        }
        let mut seen = false;
        let pairs = headers
            .get_all(COOKIE)
            .iter()
            .flat_map(|v| v.as_bytes().split(|b| *b == b';'))
            .take(MAX_PAIRS);
        for pair in pairs {
            let Some(eq) = pair.iter().position(|b| *b == b'=') else {
                continue;
            };
            let name = pair[..eq].trim_ascii();
            if name != self.name.as_bytes() {
                continue;
            }
            seen = true;
            if total > MAX_COOKIE_BYTES {
                return CookieState::Invalid;
            }
            let value = pair[eq + 1..].trim_ascii();
            let value = value
                .strip_prefix(b"\"")
                .and_then(|v| v.strip_suffix(b"\""))
                .unwrap_or(value);
            if let Some(id) = std::str::from_utf8(value).ok().and_then(|v| self.open(v)) {
                return CookieState::Valid(id);
            }
        }
        if seen {
            CookieState::Invalid
        } else {
            CookieState::Absent
        }
    }

    fn render(&self, value: &str, max_age: Option<u64>, now: u64) -> String {
        let mut out = format!("{}={value}; Path=/", self.name);
        if !self.domain.is_empty() {
            out.push_str("; Domain=");
            out.push_str(&self.domain);
        }
        if let Some(age) = max_age {
            out.push_str(&format!("; Max-Age={age}"));
            // `Expires` as well, as authentik writes both (docs/reference/outpost.md §10.1).
            let at =
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(now.saturating_add(age));
            out.push_str("; Expires=");
            out.push_str(&httpdate::fmt_http_date(at));
        }
        out.push_str("; HttpOnly");
        if self.secure {
            out.push_str("; Secure");
        }
        out.push_str("; SameSite=Lax");
        out
    }

    /// The `Set-Cookie` that stores `id` for `max_age` seconds from `now` (`None`: a
    /// browser-session cookie).
    pub(crate) fn set(&self, id: &SessionId, max_age: Option<u64>, now: u64) -> String {
        self.render(&self.value(id), max_age, now)
    }

    /// The `Set-Cookie` that deletes the cookie.
    pub(crate) fn clear(&self) -> String {
        self.render("", Some(0), 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn cookie() -> SessionCookie {
        SessionCookie::new(
            "authentik_proxy_a172cedc".into(),
            "example.com",
            true,
            b"key".to_vec(),
        )
    }

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(COOKIE, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn signed_ids_round_trip_and_forgeries_are_invalid() {
        let c = cookie();
        let id = SessionId::generate(&mut rand::rng());
        let set = c.set(&id, Some(86_401), 1_700_000_000);
        assert!(set.starts_with("authentik_proxy_a172cedc="));
        assert!(
            set.ends_with(
                "; Path=/; Domain=example.com; Max-Age=86401; Expires=Wed, 15 Nov 2023 22:13:21 GMT; HttpOnly; Secure; SameSite=Lax"
            ),
            "{set}"
        );
        let value = set.split(';').next().unwrap().to_owned();
        assert_eq!(
            c.read(&headers(&[&format!("a=b; {value}")])),
            CookieState::Valid(id.clone())
        );
        assert_eq!(c.read(&headers(&["a=b"])), CookieState::Absent);
        // Another id with this id's signature, a bare id, a truncated signature, another key.
        let other = SessionId::generate(&mut rand::rng());
        let mac = value.split_once('.').unwrap().1;
        for forged in [
            format!("authentik_proxy_a172cedc={}.{mac}", other.as_str()),
            format!("authentik_proxy_a172cedc={}", id.as_str()),
            value[..value.len() - 1].to_owned(),
            format!(
                "authentik_proxy_a172cedc={}",
                SessionCookie::new("x".into(), "", true, b"other".to_vec()).value(&id)
            ),
            "authentik_proxy_a172cedc=".to_owned(),
        ] {
            assert_eq!(
                c.read(&headers(&[&forged])),
                CookieState::Invalid,
                "{forged}"
            );
        }
        // A forged copy first, the real one second: the real one wins.
        assert_eq!(
            c.read(&headers(&[&format!(
                "authentik_proxy_a172cedc=junk; {value}"
            )])),
            CookieState::Valid(id)
        );
        let huge = format!("{value}; pad={}", "x".repeat(9000));
        assert_eq!(c.read(&headers(&[&huge])), CookieState::Invalid);
    }

    #[test]
    fn host_only_plain_http_and_deletion() {
        let c = SessionCookie::new("n".into(), "", false, b"k".to_vec());
        let id = SessionId::generate(&mut rand::rng());
        let set = c.set(&id, None, 1_700_000_000);
        assert!(
            !set.contains("Domain") && !set.contains("Secure") && !set.contains("Max-Age"),
            "{set}"
        );
        assert_eq!(
            c.clear(),
            "n=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; SameSite=Lax"
        );
    }
}
