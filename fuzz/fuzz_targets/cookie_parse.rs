//! The session cookie lookup of portcullis-session (session/src/cookie.rs) on arbitrary `Cookie`
//! header values, optionally with a well-formed session id spliced in so that the "found" branch is
//! reached from the first runs.
//!
//! Laws:
//! - it never panics;
//! - a returned id is a well-formed session id (43 base64url characters that parse back to itself),
//!   its text appears in one of the `Cookie` values, and so does the cookie name;
//! - `find_session_cookie` is `lookup_session_cookie(..).into_id()`, and `lookup_session_cookie` is
//!   `lookup_session_cookie_with` the default limits;
//! - headers over the size bound are `Oversized`; within it, examining more pairs never loses an id
//!   that fewer pairs found (the first well-formed one among the first pairs stays the first).
#![no_main]

use arbitrary::Arbitrary;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::header::COOKIE;
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use portcullis_session::{
    CookieLimits, CookieLookup, SESSION_ID_LEN, SessionId, find_session_cookie,
    lookup_session_cookie, lookup_session_cookie_with,
};

#[derive(Arbitrary, Debug)]
enum NameChoice {
    Authelia,
    Short,
    Other(String),
}

#[derive(Arbitrary, Debug)]
struct Splice {
    /// Which header value receives the id (modulo their number).
    header: u8,
    /// Where in it (modulo its length + 1; the values are bytes, so any position will do).
    at: u16,
    /// Splice `name=id` rather than the bare id.
    with_name: bool,
    /// The id's 32 bytes.
    bytes: [u8; 32],
}

#[derive(Arbitrary, Debug)]
struct Input {
    name: NameChoice,
    values: Vec<String>,
    raw_value: Option<Vec<u8>>,
    splice: Option<Splice>,
    max_header_bytes: u16,
    max_pairs: u8,
}

fuzz_target!(|input: Input| {
    let name = match &input.name {
        NameChoice::Authelia => "authelia_session",
        NameChoice::Short => "s",
        NameChoice::Other(other) => other.as_str(),
    };
    let mut values: Vec<Vec<u8>> = input
        .values
        .iter()
        .take(8)
        .map(|v| v.as_bytes().to_vec())
        .collect();
    if let Some(raw) = input.raw_value {
        values.push(raw);
    }
    if let Some(splice) = &input.splice {
        if values.is_empty() {
            values.push(Vec::new());
        }
        let index = usize::from(splice.header) % values.len();
        let value = &mut values[index];
        let at = usize::from(splice.at) % (value.len() + 1);
        let id = URL_SAFE_NO_PAD.encode(splice.bytes);
        let text = if splice.with_name {
            format!("{name}={id}")
        } else {
            id
        };
        value.splice(at..at, text.into_bytes());
    }

    let mut headers = HeaderMap::new();
    let mut kept: Vec<Vec<u8>> = Vec::new();
    for value in values {
        if let Ok(v) = HeaderValue::from_bytes(&value) {
            headers.append(COOKIE, v);
            kept.push(value);
        }
    }

    let default = lookup_session_cookie(&headers, name);
    assert_eq!(
        default,
        lookup_session_cookie_with(&headers, name, &CookieLimits::default())
    );
    assert_eq!(
        find_session_cookie(&headers, name),
        default.clone().into_id()
    );
    check_found(&default, name, &kept);

    let limits = CookieLimits {
        max_header_bytes: usize::from(input.max_header_bytes),
        max_pairs: usize::from(input.max_pairs),
    };
    let bounded = lookup_session_cookie_with(&headers, name, &limits);
    check_found(&bounded, name, &kept);
    let total: usize = kept.iter().map(Vec::len).sum();
    if total > limits.max_header_bytes {
        assert_eq!(
            bounded,
            CookieLookup::Oversized,
            "{total} bytes over {limits:?}"
        );
    } else {
        assert_ne!(
            bounded,
            CookieLookup::Oversized,
            "{total} bytes within {limits:?}"
        );
        if let CookieLookup::Found(id) = &bounded {
            let more = CookieLimits {
                max_pairs: limits.max_pairs.saturating_mul(2).max(1),
                ..limits
            };
            assert_eq!(
                lookup_session_cookie_with(&headers, name, &more),
                CookieLookup::Found(id.clone()),
                "more pairs lost or changed the id"
            );
        }
    }
});

fn check_found(lookup: &CookieLookup, name: &str, values: &[Vec<u8>]) {
    let CookieLookup::Found(id) = lookup else {
        return;
    };
    let text = id.as_str();
    assert_eq!(text.len(), SESSION_ID_LEN);
    assert_eq!(
        SessionId::parse(text).as_ref(),
        Some(id),
        "id does not parse back"
    );
    assert!(
        values.iter().any(|v| contains(v, text.as_bytes())),
        "id {text:?} appears in no Cookie value"
    );
    assert!(
        values.iter().any(|v| contains(v, name.as_bytes())),
        "cookie name {name:?} appears in no Cookie value"
    );
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}
