//! `TargetUrl::parse` on arbitrary UTF-8.
//!
//! Laws (core/src/target.rs):
//! - it never panics;
//! - the `Display` form is the received text with the scheme lower-cased and any `#fragment`
//!   dropped, so it parses again to an equal value and prints the same text (a fixed point);
//! - the accessors agree with that text: a lower-case scheme followed by `://`, a path that is empty
//!   or starts with `/`, no `#`, and `is_secure` exactly for `https` and `wss`;
//! - the host is never empty and is canonical: lower-case with no trailing dot
//!   (core/src/target/tests.rs, `parse_never_panics`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_core::TargetUrl;
use portcullis_core::domain::canonical_host;

fuzz_target!(|input: &str| {
    let Ok(url) = TargetUrl::parse(input) else {
        return;
    };
    let text = url.to_string();

    let again = match TargetUrl::parse(&text) {
        Ok(again) => again,
        Err(e) => panic!("display form {text:?} of {input:?} does not parse again: {e}"),
    };
    assert_eq!(
        again, url,
        "re-parsing {text:?} (from {input:?}) changed the value"
    );
    assert_eq!(again.to_string(), text, "display is not a fixed point");

    let scheme = url.scheme();
    assert_eq!(
        scheme,
        scheme.to_ascii_lowercase(),
        "scheme not lower-cased"
    );
    assert!(
        text.starts_with(scheme) && text[scheme.len()..].starts_with("://"),
        "{text:?} does not start with the scheme {scheme:?} and ://"
    );
    assert!(!text.contains('#'), "fragment kept in {text:?}");
    let path = url.path();
    assert!(
        path.is_empty() || path.starts_with('/'),
        "path {path:?} of {input:?}"
    );
    match url.query() {
        Some(query) => assert!(text.ends_with(&format!("{path}?{query}"))),
        None => assert!(text.ends_with(path)),
    }
    assert_eq!(url.is_secure(), matches!(scheme, "https" | "wss"));

    let host = url.host();
    assert!(!host.is_empty(), "empty host from {input:?}");
    assert_eq!(
        host,
        canonical_host(host),
        "host {host:?} of {input:?} is not canonical"
    );
});
