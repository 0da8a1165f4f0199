//! Configuration errors and warnings: which file, which line, which key, and what is wrong.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::locate::locate;

/// A configuration error: which file, which line, which key, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The file that was read.
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// Key path such as `session.cookies[0].domain`; empty for the whole file.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl ConfigError {
    /// An error about `key` in the file `file` whose text is `source`. A key that is missing has no
    /// line of its own, so the line is that of its nearest parent that exists.
    pub fn at(file: &Path, source: &str, key: &str, message: impl Into<String>) -> Self {
        let mut line = None;
        let mut path = key;
        while line.is_none() && !path.is_empty() {
            line = locate(source, path);
            path = path.rfind(['.', '[']).map_or("", |i| &path[..i]);
        }
        Self {
            file: file.to_owned(),
            line,
            key: key.to_owned(),
            message: message.into(),
        }
    }

    /// An error about the whole file (it cannot be read, say).
    pub fn file(file: &Path, message: impl Into<String>) -> Self {
        Self {
            file: file.to_owned(),
            line: None,
            key: String::new(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if self.key.is_empty() {
            write!(f, ": {}", self.message)
        } else {
            write!(f, ": {}: {}", self.key, self.message)
        }
    }
}

/// A key that was read but is not acted on, or a setting that is valid but unwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// Key path.
    pub key: String,
    /// Why it is ignored or unwise.
    pub message: String,
}

impl ConfigWarning {
    /// A warning about `key` in the text `source`.
    pub fn at(source: &str, key: &str, message: impl Into<String>) -> Self {
        Self {
            line: locate(source, key),
            key: key.to_owned(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}: {}", self.key, self.message),
            None => write!(f, "{}: {}", self.key, self.message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_key_points_at_its_nearest_parent() {
        let source = "server:\n  address: x\nsession:\n  cookies:\n    - domain: a.example\n";
        let e = ConfigError::at(
            "c.yml".as_ref(),
            source,
            "session.cookies[0].authelia_url",
            "required",
        );
        assert_eq!(e.line, Some(5));
        assert_eq!(
            e.to_string(),
            "c.yml:5: session.cookies[0].authelia_url: required"
        );
        let e = ConfigError::at("c.yml".as_ref(), source, "storage.local", "bad");
        assert_eq!(e.line, None);
        assert_eq!(
            ConfigError::file("c.yml".as_ref(), "cannot read").to_string(),
            "c.yml: cannot read"
        );
        let w = ConfigWarning::at(source, "server.address", "ignored");
        assert_eq!(w.to_string(), "line 2: server.address: ignored");
    }
}
