//! YAML text into a raw serde type, with errors that name the file, line and key path.

use std::path::Path;

use serde::de::DeserializeOwned;

use crate::error::ConfigError;
use crate::locate::locate;

/// Deserialise `source` (the text of `file`) into `T`. The error names the key path of the first
/// problem and its line: for an unknown key, the key's own line (the parser's position can be the
/// end of the previous value).
pub fn deserialize_yaml<T: DeserializeOwned>(file: &Path, source: &str) -> Result<T, ConfigError> {
    let deserializer = serde_yaml_ng::Deserializer::from_str(source);
    let error = match serde_path_to_error::deserialize(deserializer) {
        Ok(value) => return Ok(value),
        Err(e) => e,
    };
    let key = error.path().to_string();
    let key = if key == "." { String::new() } else { key };
    let inner = error.into_inner();
    let message = strip_key_prefix(inner.to_string());
    let unknown_key_line = message
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split('`').next())
        .and_then(|field| {
            let full = if key.is_empty() {
                field.to_owned()
            } else {
                format!("{key}.{field}")
            };
            locate(source, &full)
        });
    let line = unknown_key_line
        .or_else(|| inner.location().map(|l| l.line()))
        .or_else(|| locate(source, &key));
    // serde_yaml appends " at line N column M"; the line is reported apart.
    let message = message
        .split(" at line ")
        .next()
        .unwrap_or(&message)
        .to_owned();
    Err(ConfigError {
        file: file.to_owned(),
        line,
        key,
        message,
    })
}

/// serde_yaml_ng puts its own `path: ` in front of the message; the key is reported apart.
fn strip_key_prefix(message: String) -> String {
    match message.split_once(": ") {
        Some((prefix, rest))
            if !prefix.is_empty()
                && prefix.chars().all(|c| {
                    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '[' | ']')
                }) =>
        {
            rest.to_owned()
        }
        _ => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Raw {
        a: Option<Inner>,
        n: Option<u16>,
    }
    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        b: Option<String>,
    }

    #[test]
    fn errors_name_line_and_key() {
        let e = deserialize_yaml::<Raw>("f.yml".as_ref(), "a:\n  b: x\n  c: y\n").unwrap_err();
        assert_eq!((e.line, e.key.as_str()), (Some(3), "a.c"));
        assert!(e.message.starts_with("unknown field `c`"), "{}", e.message);
        let e = deserialize_yaml::<Raw>("f.yml".as_ref(), "n: 70000\n").unwrap_err();
        assert_eq!((e.line, e.key.as_str()), (Some(1), "n"));
        assert!(!e.message.contains(" at line "), "{}", e.message);
        let e = deserialize_yaml::<Raw>("f.yml".as_ref(), "a: [\n").unwrap_err();
        assert_eq!(e.file, Path::new("f.yml"));
        assert!(e.line.is_some());
        assert!(deserialize_yaml::<Raw>("f.yml".as_ref(), "a:\n  b: x\nn: 3\n").is_ok());
    }
}
