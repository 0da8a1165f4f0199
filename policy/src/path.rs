//! The canonical path string that access rules see (docs/reference/forward-auth.md §10.2,
//! docs/reference/security.md R4.1).
//!
//! [`canonical_path`] turns a raw path, as received, into the one form every decision is made on:
//!
//! 1. **Decoded once.** Every `%XX` escape is decoded exactly once, including `%2F` (`/`), `%2E` (`.`),
//!    `%3B` (`;`), `%23` (`#`) and `%3F` (`?`). `+` stays `+` (it means a space only in queries). A `%`
//!    not followed by two hex digits is an error.
//! 2. **Checked.** The decoded bytes must be UTF-8 and hold no control character (C0, DEL, C1);
//!    otherwise the path cannot be normalised safely and is an error.
//! 3. **Cleaned** with Go `path.Clean` semantics: repeated `/` collapse, `.` segments disappear, `..`
//!    removes the segment before it and cannot climb above the root.
//! 4. **Trailing slash.** When the decoded path is longer than `/` and ends with `/`, the cleaned path
//!    keeps one trailing `/` (unless it is the root itself: `/a/../` is `/`, where Go gives `//`).
//! 5. **Empty.** An empty path becomes `.`, so a bare-host target does not match `^/$`.
//! 6. **Unambiguous.** A `%` that decoding produced is written back as `%25`, so the result is a fixed
//!    point: `canonical_path(canonical_path(p)) == canonical_path(p)`. Everything else stays decoded.
//!
//! Paths stay case-sensitive (`/ADMIN` is not `/admin`), as in the reference. The query is not part of
//! the path: access rules append `?` and the raw query themselves.
//!
//! ```
//! use portcullis_policy::path::canonical_path;
//! assert_eq!(canonical_path("/public/%2e%2E/admin").unwrap(), "/admin");
//! assert_eq!(canonical_path("//a/./b/").unwrap(), "/a/b/");
//! assert_eq!(canonical_path("").unwrap(), ".");
//! assert!(canonical_path("/a%00").is_err());
//! ```

use std::borrow::Cow;

/// Why a path cannot be normalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    /// A `%` not followed by two hexadecimal digits.
    #[error("invalid percent-encoding in path")]
    InvalidPercentEncoding,
    /// The decoded bytes are not UTF-8.
    #[error("path decodes to invalid UTF-8")]
    InvalidUtf8,
    /// The decoded path holds a control character (NUL, CR, LF, DEL, C1, …).
    #[error("path decodes to a control character")]
    ControlCharacter,
}

/// The canonical form of a raw path (see the [module documentation](self)).
///
/// # Errors
///
/// [`PathError`] when the path has a bad escape or decodes to something that is not safe text.
pub fn canonical_path(raw_path: &str) -> Result<String, PathError> {
    Ok(finish(&decode(raw_path)?))
}

/// Percent-decode once and check the result.
pub(crate) fn decode(raw: &str) -> Result<Cow<'_, str>, PathError> {
    let decoded: Cow<'_, str> = if raw.contains('%') {
        let bytes = raw.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' {
                let hi = bytes.get(i + 1).and_then(|b| hex(*b));
                let lo = bytes.get(i + 2).and_then(|b| hex(*b));
                match (hi, lo) {
                    (Some(hi), Some(lo)) => out.push(hi << 4 | lo),
                    _ => return Err(PathError::InvalidPercentEncoding),
                }
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        Cow::Owned(String::from_utf8(out).map_err(|_| PathError::InvalidUtf8)?)
    } else {
        Cow::Borrowed(raw)
    };
    if decoded.chars().any(char::is_control) {
        return Err(PathError::ControlCharacter);
    }
    Ok(decoded)
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Steps 3 to 6 on an already decoded path.
pub(crate) fn finish(decoded: &str) -> String {
    // Most paths are already canonical: one copy, no segment list.
    if is_canonical(decoded) {
        return decoded.to_owned();
    }
    finish_slowly(decoded)
}

/// Whether `finish` would give `decoded` back unchanged: rooted, no `%`, and, but for one
/// trailing `/`, no empty, `.` or `..` segment.
fn is_canonical(decoded: &str) -> bool {
    if decoded == "/" {
        return true;
    }
    let Some(rest) = decoded.strip_prefix('/') else {
        return false;
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    !decoded.contains('%') && rest.split('/').all(|s| !matches!(s, "" | "." | ".."))
}

fn finish_slowly(decoded: &str) -> String {
    let mut cleaned = clean(decoded);
    if decoded.len() > 1 && decoded.ends_with('/') && cleaned != "/" {
        cleaned.push('/');
    }
    if cleaned.contains('%') {
        cleaned = cleaned.replace('%', "%25");
    }
    cleaned
}

/// Go's `path.Clean`.
fn clean(path: &str) -> String {
    if path.is_empty() {
        return ".".to_owned();
    }
    let rooted = path.starts_with('/');
    let mut segments: Vec<&str> = Vec::new();
    // Leading `..` segments of a relative path cannot be removed.
    let mut fixed = 0;
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                if segments.len() > fixed {
                    segments.pop();
                } else if !rooted {
                    segments.push("..");
                    fixed = segments.len();
                }
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(path.len());
    if rooted {
        out.push('/');
    }
    for (i, segment) in segments.iter().enumerate() {
        if i > 0 {
            out.push('/');
        }
        out.push_str(segment);
    }
    if out.is_empty() {
        out.push('.');
    }
    out
}

/// The canonical path and the other readings of the same request that must not be more permissive
/// (docs/reference/security.md R4.2). Computed once per evaluation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PathForms {
    /// The canonical path ([`canonical_path`]).
    pub(crate) canonical: String,
    /// Other readings that differ from the canonical one, without duplicates.
    pub(crate) variants: Vec<String>,
}

const BACKSLASH: u8 = 1;
const TRUNCATE: u8 = 2;
const PARAMS: u8 = 4;

impl PathForms {
    /// The canonical path and, when `with_variants`, the readings a backend might make of it:
    /// every combination of `\` read as `/`, the path cut at a decoded `#` or `?` (a fragment or
    /// query marker), and `;parameters` removed from every segment.
    pub(crate) fn of(raw: &str, with_variants: bool) -> Result<Self, PathError> {
        let decoded = decode(raw)?;
        let canonical = finish(&decoded);
        let mut variants = Vec::new();
        if with_variants && decoded.contains([';', '#', '?', '\\']) {
            for mask in 1..8u8 {
                let mut reading: Cow<'_, str> = Cow::Borrowed(&decoded);
                if mask & BACKSLASH != 0 {
                    reading = Cow::Owned(reading.replace('\\', "/"));
                }
                if mask & TRUNCATE != 0
                    && let Some(at) = reading.find(['#', '?'])
                {
                    reading.to_mut().truncate(at);
                }
                if mask & PARAMS != 0 {
                    reading = Cow::Owned(strip_params(&reading));
                }
                let form = finish(&reading);
                if form != canonical && !variants.contains(&form) {
                    variants.push(form);
                }
            }
        }
        Ok(Self {
            canonical,
            variants,
        })
    }

    /// The canonical form first, then the variants.
    pub(crate) fn all(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.canonical.as_str()).chain(self.variants.iter().map(String::as_str))
    }
}

/// Remove `;…` from every `/`-separated segment.
fn strip_params(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for (i, segment) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        out.push_str(segment.split_once(';').map_or(segment, |(keep, _)| keep));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn canonical_path_table() {
        // Expected values follow docs/reference/forward-auth.md §10.2 (Go path.Clean + trailing
        // slash + ".") and the two documented Portcullis points: `/x/../` is `/`, a decoded `%`
        // reads `%25`.
        let cases = [
            ("", "."),
            ("/", "/"),
            ("//", "/"),
            ("/a/../", "/"),
            ("/a", "/a"),
            ("/a/", "/a/"),
            ("/a//b///", "/a/b/"),
            ("/a/./b/.", "/a/b"),
            ("/a/./b/./", "/a/b/"),
            ("/a/b/../c", "/a/c"),
            ("/..", "/"),
            ("/../../a", "/a"),
            ("/public/../admin", "/admin"),
            ("/public/%2e%2e/admin", "/admin"),
            ("/public/%2E%2E/admin", "/admin"),
            ("/public/..%2fadmin", "/admin"),
            ("/public%2f..%2fadmin", "/admin"),
            ("/admin%2f", "/admin/"),
            ("/%2e", "/"),
            ("/ADMIN", "/ADMIN"),
            ("/a;b/../c", "/c"),
            ("/admin;x", "/admin;x"),
            ("/a%23b", "/a#b"),
            ("/a%3Fb", "/a?b"),
            ("/a+b", "/a+b"),
            ("/caf%C3%A9", "/café"),
            ("/café", "/café"),
            ("/100%25", "/100%25"),
            ("/%2541", "/%2541"),
            ("a/../..", ".."),
            ("./", "./"),
        ];
        for (raw, expected) in cases {
            assert_eq!(canonical_path(raw).as_deref(), Ok(expected), "{raw:?}");
        }
    }

    #[test]
    fn paths_that_cannot_be_normalised() {
        let cases = [
            ("/a%", PathError::InvalidPercentEncoding),
            ("/a%2", PathError::InvalidPercentEncoding),
            ("/a%zz", PathError::InvalidPercentEncoding),
            ("/a%ff", PathError::InvalidUtf8),
            ("/a%C3", PathError::InvalidUtf8),
            ("/a%00", PathError::ControlCharacter),
            ("/a%0a", PathError::ControlCharacter),
            ("/a%0D", PathError::ControlCharacter),
            ("/a%7f", PathError::ControlCharacter),
            ("/a%C2%85", PathError::ControlCharacter),
            ("/a\u{1}", PathError::ControlCharacter),
        ];
        for (raw, expected) in cases {
            assert_eq!(canonical_path(raw), Err(expected), "{raw:?}");
        }
    }

    #[test]
    fn readings_of_one_request() {
        let forms = |raw: &str| PathForms::of(raw, true).unwrap();
        assert_eq!(forms("/plain/path").variants, Vec::<String>::new());
        assert_eq!(forms("/admin;x").variants, ["/admin"]);
        assert_eq!(forms("/public/..;/admin").variants, ["/admin"]);
        assert_eq!(forms("/admin%23x").variants, ["/admin"]);
        assert_eq!(forms("/admin%3Fx=/public/").variants, ["/admin"]);
        assert_eq!(forms("/public/..%5cadmin").variants, ["/admin"]);
        // The readings combine: only "params removed, no cut" reaches /admin here.
        let f = forms("/public/%23/..;/..;/admin");
        assert_eq!(f.canonical, "/public/#/..;/..;/admin");
        assert!(f.variants.iter().any(|v| v == "/admin"), "{f:?}");
        assert_eq!(PathForms::of("/admin;x", false).unwrap().variants.len(), 0);
        assert_eq!(PathForms::of("/a%ff;x", true), Err(PathError::InvalidUtf8));
    }

    fn raw_path() -> impl Strategy<Value = String> {
        let token = prop::sample::select(vec![
            "/", "/", "//", ".", "..", "a", "B", "é", ";", ";x", "%2e", "%2E", "%2f", "%2F", "%3b",
            "%23", "%3F", "%25", "%2541", "%5c", "\\", "#", "?", "+", "%c3%a9", "%ff", "%00", "%",
            "~", "-",
        ]);
        prop::collection::vec(token, 0..12).prop_map(|parts| parts.concat())
    }

    proptest! {
        #[test]
        fn canonical_path_is_idempotent(raw in raw_path()) {
            if let Ok(once) = canonical_path(&raw) {
                prop_assert_eq!(canonical_path(&once), Ok(once.clone()));
            }
        }

        #[test]
        fn canonical_path_is_idempotent_on_any_string(raw in any::<String>()) {
            if let Ok(once) = canonical_path(&raw) {
                prop_assert_eq!(canonical_path(&once), Ok(once.clone()));
            }
        }

        #[test]
        fn the_fast_path_gives_what_the_full_cleaning_gives(raw in raw_path()) {
            for candidate in [raw.clone(), format!("/{raw}")] {
                if let Ok(decoded) = decode(&candidate) {
                    prop_assert_eq!(finish(&decoded), finish_slowly(&decoded), "{:?}", decoded);
                }
            }
        }

        #[test]
        fn canonical_paths_have_no_dot_segments_or_double_slashes(raw in raw_path()) {
            if let Ok(once) = canonical_path(&format!("/{raw}")) {
                prop_assert!(once.starts_with('/'));
                prop_assert!(!once.contains("//"));
                prop_assert!(!once.split('/').any(|s| s == "." || s == ".."));
            }
        }
    }
}
