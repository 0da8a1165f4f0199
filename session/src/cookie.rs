//! The session cookie: rendering `Set-Cookie` and finding our cookie among a request's cookies
//! (docs/reference/forward-auth.md §9.1, docs/reference/security.md R6.3, R6.4, R9.2).

use std::fmt::Write as _;

use http::HeaderMap;
use http::header::COOKIE;
use serde::{Deserialize, Serialize};

use crate::SessionId;

/// Default ceiling on the total size of a request's `Cookie` headers that is examined.
pub const MAX_COOKIE_HEADER_BYTES: usize = 8 * 1024;
/// Default ceiling on the number of cookie pairs examined.
pub const MAX_COOKIE_PAIRS: usize = 64;

/// The `SameSite` attribute of the session cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum SameSite {
    /// `SameSite=Lax`, the default.
    #[default]
    Lax,
    /// `SameSite=Strict`.
    Strict,
    /// `SameSite=None` (browsers require `Secure` with it).
    None,
}

impl SameSite {
    /// The attribute value as written in `Set-Cookie`.
    pub fn as_str(self) -> &'static str {
        match self {
            SameSite::Lax => "Lax",
            SameSite::Strict => "Strict",
            SameSite::None => "None",
        }
    }
}

/// A cookie name or domain that cannot be written into `Set-Cookie`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CookieSpecError {
    /// The name is empty or holds a character outside an RFC 6265 token.
    #[error("invalid session cookie name {0:?}")]
    InvalidName(String),
    /// The domain holds a character other than ASCII letters, digits, `.`, `-` and `_`.
    #[error("invalid session cookie domain {0:?}")]
    InvalidDomain(String),
}

/// How the session cookie of one cookie domain is written.
///
/// Build it with [`CookieSpec::new`], or check a hand-built one with [`CookieSpec::validate`] at
/// configuration time: the renderers write `name` and `domain` as they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieSpec {
    /// Cookie name (`authelia_session` by default in Authelia configurations).
    pub name: String,
    /// The `Domain` attribute; empty means a host-only cookie (no `Domain` attribute).
    pub domain: String,
    /// The `SameSite` attribute.
    pub same_site: SameSite,
    /// Whether `Secure` is written (always on for `portcullis-verify`).
    pub secure: bool,
}

impl CookieSpec {
    /// A validated spec with `SameSite=Lax` and `Secure`.
    pub fn new(
        name: impl Into<String>,
        domain: impl Into<String>,
    ) -> Result<Self, CookieSpecError> {
        let spec = Self {
            name: name.into(),
            domain: domain.into(),
            same_site: SameSite::Lax,
            secure: true,
        };
        spec.validate()?;
        Ok(spec)
    }

    /// Check that `name` is a non-empty RFC 6265 token and `domain` holds only ASCII letters, digits,
    /// `.`, `-` and `_` (so neither can inject attributes).
    pub fn validate(&self) -> Result<(), CookieSpecError> {
        if self.name.is_empty() || !self.name.bytes().all(is_token_byte) {
            return Err(CookieSpecError::InvalidName(self.name.clone()));
        }
        if !self
            .domain
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        {
            return Err(CookieSpecError::InvalidDomain(self.domain.clone()));
        }
        Ok(())
    }

    /// The `Set-Cookie` value that stores `id`:
    /// `name=id; Domain=d; Path=/; Max-Age=N; HttpOnly; Secure; SameSite=Lax`.
    ///
    /// `max_age: None` writes no `Max-Age` (a browser-session cookie). `Domain` is left out when the
    /// domain is empty, `Secure` when `secure` is false.
    pub fn set_cookie(&self, id: &SessionId, max_age: Option<u64>) -> String {
        self.render(id.as_str(), max_age)
    }

    /// The `Set-Cookie` value that deletes the cookie: empty value, `Max-Age=0`, same attributes.
    pub fn clear_cookie(&self) -> String {
        self.render("", Some(0))
    }

    fn render(&self, value: &str, max_age: Option<u64>) -> String {
        let mut out = String::with_capacity(self.name.len() + self.domain.len() + value.len() + 80);
        out.push_str(&self.name);
        out.push('=');
        out.push_str(value);
        if !self.domain.is_empty() {
            out.push_str("; Domain=");
            out.push_str(&self.domain);
        }
        out.push_str("; Path=/");
        if let Some(max_age) = max_age {
            // Writing into a String cannot fail.
            let _ = write!(out, "; Max-Age={max_age}");
        }
        out.push_str("; HttpOnly");
        if self.secure {
            out.push_str("; Secure");
        }
        out.push_str("; SameSite=");
        out.push_str(self.same_site.as_str());
        out
    }
}

/// RFC 6265 / RFC 9110 token characters.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Bounds on the cookie parsing of [`lookup_session_cookie_with`] (docs/reference/security.md R9.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CookieLimits {
    /// When the `Cookie` headers together are longer than this, none of them is examined.
    pub max_header_bytes: usize,
    /// At most this many cookie pairs are examined, in order; later ones are ignored.
    pub max_pairs: usize,
}

impl Default for CookieLimits {
    /// 8 KiB and 64 pairs.
    fn default() -> Self {
        Self {
            max_header_bytes: MAX_COOKIE_HEADER_BYTES,
            max_pairs: MAX_COOKIE_PAIRS,
        }
    }
}

/// What a request's cookies say about our session cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CookieLookup {
    /// The first cookie of that name that holds a well-formed id.
    Found(SessionId),
    /// Cookies of that name arrived, but none holds a well-formed id: treat as absent and clear it
    /// (docs/reference/security.md R6.4).
    Malformed,
    /// No cookie of that name among the pairs examined.
    Absent,
    /// The `Cookie` headers exceed the size bound and were not examined: treat as absent.
    Oversized,
}

impl CookieLookup {
    /// The id when one was found.
    pub fn into_id(self) -> Option<SessionId> {
        match self {
            CookieLookup::Found(id) => Some(id),
            _ => None,
        }
    }
}

/// The session id carried by the cookie `name`, with the default [`CookieLimits`].
///
/// Only cookies named exactly `name` (case-sensitive) are looked at. Every `Cookie` header is read
/// in order; when several cookies of that name arrive, the **first one that parses as a valid
/// [`SessionId`]** wins, and the others are ignored (never merged). A malformed value, headers over
/// 8 KiB in total, or our cookie beyond the 64th pair all read as "no session".
pub fn find_session_cookie(headers: &HeaderMap, name: &str) -> Option<SessionId> {
    lookup_session_cookie(headers, name).into_id()
}

/// Like [`find_session_cookie`], but tells "absent" from "malformed" and "oversized".
pub fn lookup_session_cookie(headers: &HeaderMap, name: &str) -> CookieLookup {
    lookup_session_cookie_with(headers, name, &CookieLimits::default())
}

/// [`lookup_session_cookie`] with explicit bounds.
///
/// Headers are handled as bytes, so another application's non-ASCII cookie does not hide ours. Each
/// pair is split at its first `=`; surrounding spaces and tabs are trimmed, and a value wrapped in
/// double quotes is unwrapped.
pub fn lookup_session_cookie_with(
    headers: &HeaderMap,
    name: &str,
    limits: &CookieLimits,
) -> CookieLookup {
    let values = headers.get_all(COOKIE);
    let mut total: usize = 0;
    for value in values.iter() {
        total = total.saturating_add(value.len());
        if total > limits.max_header_bytes {
            return CookieLookup::Oversized;
        }
    }

    let mut seen_name = false;
    let pairs = values
        .iter()
        .flat_map(|value| value.as_bytes().split(|&b| b == b';'))
        .map(trim)
        .filter(|pair| !pair.is_empty())
        .take(limits.max_pairs);
    for pair in pairs {
        let (pair_name, pair_value) = match pair.iter().position(|&b| b == b'=') {
            Some(at) => (trim(&pair[..at]), trim(&pair[at + 1..])),
            None => continue,
        };
        if pair_name != name.as_bytes() {
            continue;
        }
        seen_name = true;
        let pair_value = match pair_value {
            [b'"', inner @ .., b'"'] => inner,
            other => other,
        };
        if let Some(id) = std::str::from_utf8(pair_value)
            .ok()
            .and_then(SessionId::parse)
        {
            return CookieLookup::Found(id);
        }
    }
    if seen_name {
        CookieLookup::Malformed
    } else {
        CookieLookup::Absent
    }
}

fn trim(bytes: &[u8]) -> &[u8] {
    let is_space = |b: &u8| *b == b' ' || *b == b'\t';
    let start = bytes
        .iter()
        .position(|b| !is_space(b))
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_space(b))
        .map_or(start, |i| i + 1);
    bytes.get(start..end).unwrap_or(&[])
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn id(seed: u64) -> SessionId {
        SessionId::generate(&mut StdRng::seed_from_u64(seed))
    }

    fn headers(values: &[&[u8]]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append(COOKIE, HeaderValue::from_bytes(v).unwrap());
        }
        map
    }

    #[test]
    fn set_cookie_renders_exactly() {
        let spec = CookieSpec::new("authelia_session", "example.com").unwrap();
        let id = id(1);
        let v = id.as_str();
        assert_eq!(
            spec.set_cookie(&id, Some(3600)),
            format!(
                "authelia_session={v}; Domain=example.com; Path=/; Max-Age=3600; HttpOnly; Secure; SameSite=Lax"
            )
        );
        assert_eq!(
            spec.set_cookie(&id, None),
            format!(
                "authelia_session={v}; Domain=example.com; Path=/; HttpOnly; Secure; SameSite=Lax"
            )
        );
        let strict = CookieSpec {
            same_site: SameSite::Strict,
            secure: false,
            ..spec.clone()
        };
        assert_eq!(
            strict.set_cookie(&id, Some(0)),
            format!(
                "authelia_session={v}; Domain=example.com; Path=/; Max-Age=0; HttpOnly; SameSite=Strict"
            )
        );
        let none_host_only = CookieSpec {
            name: "pc".into(),
            domain: String::new(),
            same_site: SameSite::None,
            secure: true,
        };
        assert_eq!(
            none_host_only.set_cookie(&id, Some(5)),
            format!("pc={v}; Path=/; Max-Age=5; HttpOnly; Secure; SameSite=None")
        );
    }

    #[test]
    fn clear_cookie_keeps_the_attributes() {
        let spec = CookieSpec::new("authelia_session", "example.com").unwrap();
        assert_eq!(
            spec.clear_cookie(),
            "authelia_session=; Domain=example.com; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax"
        );
    }

    #[test]
    fn spec_validation() {
        assert!(CookieSpec::new("authelia_session", "auth.example.com").is_ok());
        assert!(CookieSpec::new("a", "").is_ok());
        for bad in ["", "a b", "a;b", "a=b", "é", "a\"b", "a\r\n"] {
            assert_eq!(
                CookieSpec::new(bad, "example.com"),
                Err(CookieSpecError::InvalidName(bad.into())),
                "{bad:?}"
            );
        }
        for bad in [
            "example.com; HttpOnly",
            "exa mple.com",
            "example.com,x",
            "ex\u{e9}.com",
        ] {
            assert_eq!(
                CookieSpec::new("n", bad),
                Err(CookieSpecError::InvalidDomain(bad.into())),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn same_site_serde_is_lowercase() {
        assert_eq!(serde_json::to_string(&SameSite::None).unwrap(), "\"none\"");
        let s: SameSite = serde_json::from_str("\"strict\"").unwrap();
        assert_eq!(s, SameSite::Strict);
        assert_eq!(SameSite::default(), SameSite::Lax);
    }

    #[test]
    fn finds_our_cookie_among_others() {
        let a = id(1);
        let h = format!("theme=dark; authelia_session={}; other=1", a.as_str());
        let map = headers(&[h.as_bytes()]);
        assert_eq!(
            find_session_cookie(&map, "authelia_session"),
            Some(a.clone())
        );
        assert_eq!(
            find_session_cookie(&map, "Authelia_Session"),
            None,
            "names are case-sensitive"
        );
        assert_eq!(lookup_session_cookie(&map, "nope"), CookieLookup::Absent);
        assert_eq!(
            lookup_session_cookie(&HeaderMap::new(), "authelia_session"),
            CookieLookup::Absent
        );
        // Quoted value, tabs, and a second Cookie header.
        let quoted = format!("x=1;\tauthelia_session=\"{}\" ", a.as_str());
        let map = headers(&[b"y=2", quoted.as_bytes()]);
        assert_eq!(find_session_cookie(&map, "authelia_session"), Some(a));
    }

    #[test]
    fn duplicates_pick_the_first_valid_one_and_never_merge() {
        let (a, b) = (id(1), id(2));
        let both = format!("s={}; s={}", a.as_str(), b.as_str());
        assert_eq!(
            find_session_cookie(&headers(&[both.as_bytes()]), "s"),
            Some(a.clone())
        );
        let reversed = format!("s={}; s={}", b.as_str(), a.as_str());
        assert_eq!(
            find_session_cookie(&headers(&[reversed.as_bytes()]), "s"),
            Some(b.clone())
        );
        // Across headers: header order decides.
        let ha = format!("s={}", a.as_str());
        let hb = format!("s={}", b.as_str());
        assert_eq!(
            find_session_cookie(&headers(&[hb.as_bytes(), ha.as_bytes()]), "s"),
            Some(b.clone())
        );
        // A malformed first copy is skipped, not merged with the next one.
        let garbage_first = format!("s=garbage; s={}", a.as_str());
        assert_eq!(
            find_session_cookie(&headers(&[garbage_first.as_bytes()]), "s"),
            Some(a.clone())
        );
        let half = &a.as_str()[..20];
        let rest = &a.as_str()[20..];
        let split = format!("s={half}; s={rest}");
        assert_eq!(
            lookup_session_cookie(&headers(&[split.as_bytes()]), "s"),
            CookieLookup::Malformed
        );
    }

    #[test]
    fn garbage_reads_as_malformed_or_absent() {
        let a = id(3);
        let cases: &[(&[u8], CookieLookup)] = &[
            (b"s=", CookieLookup::Malformed),
            (b"s=short", CookieLookup::Malformed),
            (b"s", CookieLookup::Absent),
            (b";;;   ;", CookieLookup::Absent),
            (b"=value", CookieLookup::Absent),
            (b"s=\xff\xfe", CookieLookup::Malformed),
        ];
        for (raw, expected) in cases {
            assert_eq!(
                lookup_session_cookie(&headers(&[raw]), "s"),
                *expected,
                "{raw:?}"
            );
        }
        // Another application's non-UTF-8 cookie does not hide ours.
        let mut raw = b"app=\xe9t\xe9; ".to_vec();
        raw.extend_from_slice(format!("s={}", a.as_str()).as_bytes());
        assert_eq!(find_session_cookie(&headers(&[&raw]), "s"), Some(a));
    }

    #[test]
    fn oversized_headers_are_ignored() {
        let a = id(4);
        let ours = format!("s={}", a.as_str());
        let filler = format!("big={}", "x".repeat(MAX_COOKIE_HEADER_BYTES));
        let map = headers(&[ours.as_bytes(), filler.as_bytes()]);
        assert_eq!(lookup_session_cookie(&map, "s"), CookieLookup::Oversized);
        assert_eq!(find_session_cookie(&map, "s"), None);
        // Exactly at the limit is still examined.
        let pad = MAX_COOKIE_HEADER_BYTES - ours.len() - "; p=".len();
        let at_limit = format!("{ours}; p={}", "x".repeat(pad));
        assert_eq!(at_limit.len(), MAX_COOKIE_HEADER_BYTES);
        assert_eq!(
            find_session_cookie(&headers(&[at_limit.as_bytes()]), "s"),
            Some(a)
        );
    }

    #[test]
    fn only_the_first_pairs_are_examined() {
        let a = id(5);
        let mut before: Vec<String> = (0..MAX_COOKIE_PAIRS - 1)
            .map(|i| format!("c{i}=1"))
            .collect();
        before.push(format!("s={}", a.as_str()));
        let within = before.join("; ");
        assert_eq!(
            find_session_cookie(&headers(&[within.as_bytes()]), "s"),
            Some(a.clone())
        );
        let mut beyond: Vec<String> = (0..MAX_COOKIE_PAIRS).map(|i| format!("c{i}=1")).collect();
        beyond.push(format!("s={}", a.as_str()));
        let beyond = beyond.join("; ");
        assert_eq!(
            lookup_session_cookie(&headers(&[beyond.as_bytes()]), "s"),
            CookieLookup::Absent
        );
        let raised = CookieLimits {
            max_pairs: 100,
            ..CookieLimits::default()
        };
        assert_eq!(
            lookup_session_cookie_with(&headers(&[beyond.as_bytes()]), "s", &raised),
            CookieLookup::Found(a)
        );
    }

    #[test]
    fn rendered_cookie_is_found_again() {
        let a = id(6);
        let spec = CookieSpec::new("authelia_session", "example.com").unwrap();
        let set = spec.set_cookie(&a, Some(60));
        let pair = set.split(';').next().unwrap();
        assert_eq!(
            find_session_cookie(&headers(&[pair.as_bytes()]), "authelia_session"),
            Some(a)
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(raw in proptest::collection::vec(0x20u8..=0xff, 0..300)) {
            let raw: Vec<u8> = raw.into_iter().filter(|b| *b != 0x7f).collect();
            if let Ok(v) = HeaderValue::from_bytes(&raw) {
                let mut map = HeaderMap::new();
                map.append(COOKIE, v);
                let _ = lookup_session_cookie(&map, "s");
            }
        }
    }
}
