//! `portcullis_policy::canonical_path` on arbitrary UTF-8.
//!
//! Laws (policy/src/path.rs, its module documentation and its proptests):
//! - it never panics;
//! - it is idempotent: `canonical_path(canonical_path(p)) == canonical_path(p)`
//!   (`canonical_path_is_idempotent_on_any_string`);
//! - a path starting with `/` has a canonical form that starts with `/` and holds no `//`, no `.` and
//!   no `..` segment (`canonical_paths_have_no_dot_segments_or_double_slashes`);
//! - only a `%` escape or a control character can make it fail: a path with neither is always
//!   canonicalised;
//! - the result is never empty (an empty path becomes `.`) and holds no control character.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_policy::canonical_path;

fuzz_target!(|raw: &str| {
    let once = match canonical_path(raw) {
        Ok(once) => once,
        Err(e) => {
            assert!(
                raw.contains('%') || raw.chars().any(char::is_control),
                "{raw:?} has no escape and no control character, yet fails: {e}"
            );
            return;
        }
    };
    assert_eq!(
        canonical_path(&once).as_deref(),
        Ok(once.as_str()),
        "not idempotent: {raw:?} -> {once:?}"
    );
    assert!(!once.is_empty(), "empty canonical path for {raw:?}");
    assert!(
        !once.chars().any(char::is_control),
        "control character in {once:?} (from {raw:?})"
    );
    if raw.starts_with('/') {
        assert!(once.starts_with('/'), "{raw:?} -> {once:?} lost its root");
        assert!(!once.contains("//"), "{raw:?} -> {once:?} has //");
        assert!(
            !once.split('/').any(|s| s == "." || s == ".."),
            "{raw:?} -> {once:?} has a dot segment"
        );
    }
});
