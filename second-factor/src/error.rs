//! The one error type of the crate.

/// What can go wrong in second-factor code. Every variant is a refusal: a caller never falls
/// back to a default when it gets one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SecondFactorError {
    /// The TOTP secret is empty (after trimming).
    #[error("the TOTP secret is empty")]
    EmptySecret,
    /// The TOTP secret is not base32.
    #[error("the TOTP secret is not base32")]
    SecretNotBase32,
    /// A code whose length is not the configuration's number of digits.
    #[error("the code has {got} characters, the configuration has {expected} digits")]
    CodeLength {
        /// The configuration's digits.
        expected: usize,
        /// The code's length after trimming.
        got: usize,
    },
    /// An algorithm other than SHA1, SHA256 and SHA512.
    #[error("unknown TOTP algorithm {0:?} (SHA1, SHA256 or SHA512)")]
    UnknownAlgorithm(String),
    /// Digits other than 6 and 8.
    #[error("TOTP digits must be 6 or 8, not {0}")]
    Digits(u32),
    /// A period shorter than 15 seconds.
    #[error("the TOTP period must be at least 15 seconds, not {0}")]
    Period(u64),
    /// A storage schema version this crate does not know how to read.
    #[error("storage schema version {0} is not one Portcullis can read (it knows up to 26)")]
    UnknownSchema(u32),
    /// `storage.encryption_key` shorter than 20 characters.
    #[error("the encryption key has {0} characters, at least 20 are required")]
    EncryptionKeyTooShort(usize),
    /// A stored value too short to hold a nonce.
    #[error("the encrypted value is malformed (shorter than its nonce)")]
    MalformedCiphertext,
    /// The value does not open under this key and context: a wrong key, or a changed value.
    #[error("the value does not decrypt with this encryption key")]
    Decryption,
    /// The database refused or failed (its message; never a secret).
    #[error("second-factor storage: {0}")]
    Storage(String),
    /// The `check` value (or an HMAC key) of the database does not open with the configured
    /// `storage.encryption_key`.
    #[error(
        "storage.encryption_key does not decrypt this database (its check value does not open): it is not the key the database was made with"
    )]
    WrongEncryptionKey,
    /// A `migrations` table without rows or without Authelia's tables.
    #[error(
        "the database has a migrations table but is not an Authelia database Portcullis can use"
    )]
    NotAutheliaDatabase,
    /// An Authelia database whose WebAuthn tables predate schema 24.
    #[error(
        "the Authelia database is at schema {0}; WebAuthn needs schema 24 (start Authelia 4.39 once to migrate it)"
    )]
    WebAuthnSchema(u32),
    /// A one-time code longer than 20 characters.
    #[error("a one-time code has at most 20 characters")]
    OneTimeCodeTooLong,
}
