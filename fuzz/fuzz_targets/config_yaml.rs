//! `portcullis_verify_server::config::parse` on arbitrary UTF-8 text, named `fuzz.yml`, with no
//! secrets from the environment.
//!
//! Laws: it never panics, and every error says what is wrong (a non-empty message) and names the
//! file.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use portcullis_verify_server::config::{SecretSources, parse};

fuzz_target!(|text: &str| {
    let path = Path::new("fuzz.yml");
    if let Err(e) = parse(path, text, &SecretSources::default()) {
        assert!(
            !e.message.trim().is_empty(),
            "empty error message ({e:?}) for {text:?}"
        );
        let shown = e.to_string();
        assert!(
            shown.starts_with("fuzz.yml"),
            "error {shown:?} does not name the file"
        );
        if let Some(line) = e.line {
            assert!(line >= 1, "line {line} is not 1-based ({e:?})");
        }
    }
});
