//! Password digests as Authelia writes them: argon2 (id, i, d), bcrypt, sha512crypt and PBKDF2
//! (`$pbkdf2$`, `$pbkdf2-sha256$`, `$pbkdf2-sha512$`, as Authelia's OpenID client secrets use).

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
    /// `$pbkdf2[-sha256|-sha512]$<iterations>$<salt>$<key>`, salt and key in "adapted base64"
    /// (standard alphabet with `.` for `+`, no padding).
    Pbkdf2(Pbkdf2Digest),
    /// A directory's user: the directory checks the password (a bind); no comparison here ever
    /// matches.
    Directory,
}

/// The hash PBKDF2 runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pbkdf2Hash {
    /// `$pbkdf2$`.
    Sha1,
    /// `$pbkdf2-sha256$`.
    Sha256,
    /// `$pbkdf2-sha512$`.
    Sha512,
}

/// A parsed PBKDF2 digest.
#[derive(Clone, PartialEq, Eq)]
pub struct Pbkdf2Digest {
    hash: Pbkdf2Hash,
    iterations: u32,
    salt: Vec<u8>,
    key: Vec<u8>,
}

impl std::fmt::Debug for Pbkdf2Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Pbkdf2Digest({:?}, {} iterations)",
            self.hash, self.iterations
        )
    }
}

fn adapted_base64(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(text.replace('.', "+").trim_end_matches('='))
        .ok()
}

impl Pbkdf2Digest {
    fn parse(text: &str) -> Result<Self, AuthError> {
        let malformed = |detail: &str| AuthError::MalformedDigest {
            family: "pbkdf2",
            detail: Some(detail.to_owned()),
        };
        let parts: Vec<&str> = text.split('$').collect();
        let [_, family, iterations, salt, key] = parts.as_slice() else {
            return Err(malformed(
                "expected $pbkdf2-<hash>$<iterations>$<salt>$<key>",
            ));
        };
        let hash = match *family {
            "pbkdf2" => Pbkdf2Hash::Sha1,
            "pbkdf2-sha256" => Pbkdf2Hash::Sha256,
            "pbkdf2-sha512" => Pbkdf2Hash::Sha512,
            other => {
                return Err(AuthError::UnsupportedDigest {
                    family: other.to_owned(),
                });
            }
        };
        let iterations: u32 = iterations
            .parse()
            .ok()
            .filter(|i| *i > 0)
            .ok_or_else(|| malformed("the iteration count is not a positive integer"))?;
        let salt = adapted_base64(salt).ok_or_else(|| malformed("the salt is not base64"))?;
        let key = adapted_base64(key)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| malformed("the key is not base64"))?;
        Ok(Self {
            hash,
            iterations,
            salt,
            key,
        })
    }

    fn verify(&self, password: &str) -> bool {
        use subtle::ConstantTimeEq;
        let mut out = vec![0u8; self.key.len()];
        let p = password.as_bytes();
        match self.hash {
            Pbkdf2Hash::Sha1 => {
                pbkdf2::pbkdf2_hmac::<sha1::Sha1>(p, &self.salt, self.iterations, &mut out)
            }
            Pbkdf2Hash::Sha256 => {
                pbkdf2::pbkdf2_hmac::<sha2::Sha256>(p, &self.salt, self.iterations, &mut out)
            }
            Pbkdf2Hash::Sha512 => {
                pbkdf2::pbkdf2_hmac::<sha2::Sha512>(p, &self.salt, self.iterations, &mut out)
            }
        }
        bool::from(out.ct_eq(&self.key))
    }
}

impl std::fmt::Debug for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let family = match self {
            Digest::Argon2(_) => "argon2",
            Digest::Bcrypt(_) => "bcrypt",
            Digest::Sha512Crypt(_) => "sha512crypt",
            Digest::Pbkdf2(_) => "pbkdf2",
            Digest::Directory => "directory",
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
        if text.starts_with("$pbkdf2$") || text.starts_with("$pbkdf2-") {
            return Ok(Digest::Pbkdf2(Pbkdf2Digest::parse(text)?));
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
            Digest::Pbkdf2(d) => d.verify(password),
            Digest::Directory => false,
        }
    }
}
