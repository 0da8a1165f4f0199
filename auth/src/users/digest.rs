//! Password digests as Authelia writes them: argon2 (id, i, d), bcrypt and sha512crypt.

use argon2::PasswordVerifier;

use crate::AuthError;

/// A password digest of a supported family, checked at load time.
#[derive(Clone, PartialEq, Eq)]
pub enum Digest {
    /// `$argon2id$`, `$argon2i$`, `$argon2d$` PHC strings.
    Argon2(String),
    /// `$2a$`, `$2b$`, `$2y$`.
    Bcrypt(String),
    /// `$6$` (sha512crypt).
    Sha512Crypt(String),
}

impl std::fmt::Debug for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let family = match self {
            Digest::Argon2(_) => "argon2",
            Digest::Bcrypt(_) => "bcrypt",
            Digest::Sha512Crypt(_) => "sha512crypt",
        };
        write!(f, "Digest({family})")
    }
}

impl Digest {
    /// Recognise a digest's family and check its syntax.
    pub fn parse(text: &str) -> Result<Self, AuthError> {
        if text.starts_with("$argon2id$")
            || text.starts_with("$argon2i$")
            || text.starts_with("$argon2d$")
        {
            argon2::PasswordHash::new(text).map_err(|e| AuthError::MalformedDigest {
                family: "argon2",
                detail: Some(e.to_string()),
            })?;
            return Ok(Digest::Argon2(text.to_owned()));
        }
        if text.starts_with("$2a$") || text.starts_with("$2b$") || text.starts_with("$2y$") {
            if text.len() != 60 {
                return Err(AuthError::MalformedDigest {
                    family: "bcrypt",
                    detail: None,
                });
            }
            return Ok(Digest::Bcrypt(text.to_owned()));
        }
        if text.starts_with("$6$") {
            return Ok(Digest::Sha512Crypt(text.to_owned()));
        }
        match text.split('$').nth(1).unwrap_or("") {
            "" => Err(AuthError::NotADigest),
            family => Err(AuthError::UnsupportedDigest {
                family: family.to_owned(),
            }),
        }
    }

    /// Check a password. CPU-heavy: call from a blocking thread.
    pub fn verify(&self, password: &str) -> bool {
        match self {
            Digest::Argon2(phc) => match argon2::PasswordHash::new(phc) {
                Ok(hash) => argon2::Argon2::default()
                    .verify_password(password.as_bytes(), &hash)
                    .is_ok(),
                Err(_) => false,
            },
            Digest::Bcrypt(hash) => bcrypt::verify(password, hash).unwrap_or(false),
            Digest::Sha512Crypt(hash) => sha_crypt::sha512_check(password, hash).is_ok(),
        }
    }
}
