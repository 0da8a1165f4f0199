//! The one error type of `portcullis-auth`.

use std::path::PathBuf;

/// Why an authentication component could not be built or could not answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The users file could not be read or is invalid.
    #[error("{}{}: {message}", file.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    UsersFile {
        /// The file.
        file: PathBuf,
        /// 1-based line, when known.
        line: Option<usize>,
        /// What is wrong.
        message: String,
    },
    /// The stored password is not a crypt-style digest at all.
    #[error("the password is not a crypt-style digest (hash it with `portcullis hash-password`)")]
    NotADigest,
    /// The digest names a family Portcullis does not verify.
    #[error(
        "unsupported digest family ${family}$: supported are argon2id, argon2i, argon2d, bcrypt ($2b$/$2y$) and sha512crypt ($6$)"
    )]
    UnsupportedDigest {
        /// The family as written between the first two `$`.
        family: String,
    },
    /// The digest's family is known but its text is not well formed.
    #[error("malformed {family} digest{}", detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    MalformedDigest {
        /// `argon2`, `bcrypt`.
        family: &'static str,
        /// What the parser said.
        detail: Option<String>,
    },
    /// Every hashing slot stayed busy for the queue timeout.
    #[error("password hashing is overloaded")]
    Overloaded,
    /// The regulation records could not be read or written.
    #[error("regulation store {store}: {message}")]
    Regulation {
        /// The file or server.
        store: String,
        /// What failed.
        message: String,
    },
    /// The configured session store could not be opened.
    #[error(transparent)]
    SessionStore(#[from] portcullis_session::StoreError),
    /// The app password store failed.
    #[error("app passwords: {0}")]
    AppPasswords(String),
    /// The user already has an app password of that name.
    #[error("an app password named {0:?} exists already")]
    AppPasswordExists(String),
    /// The OpenID provider's store could not be opened.
    #[error("OpenID Connect store: {0}")]
    OidcStore(#[from] portcullis_oidc::OidcError),
    /// Redis was selected without the session secret its records are encrypted with.
    #[error("session.redis needs session.secret")]
    NoSecret,
    /// The SQLite file of a store that must already exist is missing.
    #[error("no session store at {} (storage.local.path); has portcullis-verify run?", .0.display())]
    MissingStore(PathBuf),
}
