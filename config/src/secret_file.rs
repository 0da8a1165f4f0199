//! Secrets kept out of the configuration file: a `…_FILE` environment variable names a file whose
//! contents are the secret (Authelia's convention, which container secrets follow).

use std::ffi::OsString;
use std::path::PathBuf;

use portcullis_core::Secret;

/// Why a secret file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretFileError {
    /// The file could not be read.
    #[error("{variable}={}: cannot read: {source}", path.display())]
    Unreadable {
        /// The environment variable that named the file.
        variable: String,
        /// The file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The file holds nothing but line breaks: an empty secret would protect nothing.
    #[error("{variable}={}: the file is empty", path.display())]
    Empty {
        /// The environment variable that named the file.
        variable: String,
        /// The file.
        path: PathBuf,
    },
}

/// A secret read from the file an environment variable names.
#[derive(Debug, Clone)]
pub struct SecretFile {
    /// The variable that named the file (`AUTHELIA_SESSION_SECRET_FILE`), for messages.
    pub variable: String,
    /// The secret, without the line break that editors leave at the end.
    pub value: Secret,
}

impl SecretFile {
    /// The first of `variables` that `lookup` knows names the secret file; `None` when none is
    /// set. `lookup` is `std::env::var_os` in a server and a table in tests.
    ///
    /// ```
    /// use portcullis_config::SecretFile;
    /// let dir = tempfile::tempdir().unwrap();
    /// let file = dir.path().join("secret");
    /// std::fs::write(&file, "s3cret-value\n").unwrap();
    /// let lookup = |name: &str| (name == "APP_SECRET_FILE").then(|| file.clone().into_os_string());
    /// let secret = SecretFile::find(&["OTHER_FILE", "APP_SECRET_FILE"], lookup).unwrap().unwrap();
    /// assert_eq!(secret.value.expose(), "s3cret-value");
    /// assert_eq!(secret.variable, "APP_SECRET_FILE");
    /// ```
    pub fn find(
        variables: &[&str],
        lookup: impl Fn(&str) -> Option<OsString>,
    ) -> Result<Option<Self>, SecretFileError> {
        for variable in variables {
            if let Some(path) = lookup(variable) {
                return Self::read(variable, PathBuf::from(path)).map(Some);
            }
        }
        Ok(None)
    }

    /// Read the secret in `path`, named by `variable`.
    pub fn read(variable: &str, path: PathBuf) -> Result<Self, SecretFileError> {
        let text =
            std::fs::read_to_string(&path).map_err(|source| SecretFileError::Unreadable {
                variable: variable.to_owned(),
                path: path.clone(),
                source,
            })?;
        let value = text.trim_end_matches(['\r', '\n']);
        if value.is_empty() {
            return Err(SecretFileError::Empty {
                variable: variable.to_owned(),
                path,
            });
        }
        Ok(Self {
            variable: variable.to_owned(),
            value: Secret::new(value),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_missing_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n\r\n").unwrap();
        let err = SecretFile::read("X_FILE", empty).unwrap_err();
        assert!(matches!(err, SecretFileError::Empty { .. }), "{err}");
        assert!(err.to_string().contains("X_FILE="), "{err}");
        let missing = SecretFile::read("X_FILE", dir.path().join("nope")).unwrap_err();
        assert!(matches!(missing, SecretFileError::Unreadable { .. }));
        assert!(SecretFile::find(&["A_FILE"], |_| None).unwrap().is_none());
        let secret = dir.path().join("s");
        std::fs::write(&secret, "value with spaces  \n").unwrap();
        let s = SecretFile::read("X_FILE", secret).unwrap();
        assert_eq!(s.value.expose(), "value with spaces  ");
        assert_eq!(format!("{:?}", s.value), "[redacted]");
    }
}
