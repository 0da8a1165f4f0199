//! App passwords: long random secrets a user creates for one machine or app (`portcullis
//! app-password create`), accepted wherever Basic credentials are (the authz endpoints, the OpenID
//! provider's client-credentials grant as authentik's outpost sends it). They are subject to
//! regulation and only ever count as one factor.
//!
//! An app password is `pcap_` and 32 random bytes in base64url: 256 bits, so a SHA-256 digest is
//! as safe to store as a slow hash of a human password, and checking it costs no hashing slot.
//! The digest is what is stored; the password is shown once.

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_core::Secret;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;

use crate::AuthError;

#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "sqlite")]
mod sqlite;

#[cfg(feature = "redis")]
pub use redis::RedisAppPasswords;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteAppPasswords;

/// The prefix that tells an app password from a user's password.
pub const PREFIX: &str = "pcap_";

/// A stored app password (its digest, never the password).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppPassword {
    /// The user it belongs to.
    pub username: String,
    /// Its name, unique per user.
    pub name: String,
    /// `sha256:<hex>` of the password.
    pub digest: String,
    /// Unix seconds.
    pub created_at: u64,
    /// Unix seconds after which it is refused; `None`: never.
    pub expires_at: Option<u64>,
}

impl std::fmt::Debug for AppPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppPassword")
            .field("username", &self.username)
            .field("name", &self.name)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// The digest of a password.
pub fn digest(password: &str) -> String {
    let hash = Sha256::digest(password.as_bytes());
    format!(
        "sha256:{}",
        hash.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

/// A new app password from 32 random bytes: the password (show it once) and its record.
pub fn generate(
    random: [u8; 32],
    username: &str,
    name: &str,
    now: u64,
    expires_at: Option<u64>,
) -> (Secret, AppPassword) {
    let password = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(random));
    let record = AppPassword {
        username: username.to_owned(),
        name: name.to_owned(),
        digest: digest(&password),
        created_at: now,
        expires_at,
    };
    (Secret::new(password), record)
}

/// Whether `password` has the form of an app password.
pub fn looks_like(password: &str) -> bool {
    password.len() == PREFIX.len() + 43 && password.starts_with(PREFIX)
}

/// Whether `password` matches one of `records` unexpired at `now` (constant time per record).
pub fn matches(records: &[AppPassword], password: &str, now: u64) -> bool {
    let given = digest(password);
    records
        .iter()
        .filter(|r| r.expires_at.is_none_or(|e| e > now))
        .fold(false, |found, r| {
            found | bool::from(r.digest.as_bytes().ct_eq(given.as_bytes()))
        })
}

/// A name a user may give an app password: 1 to 64 of `[A-Za-z0-9._-]`.
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Where app passwords are kept: the SQLite file, or Redis with the sessions.
#[async_trait]
pub trait AppPasswordStore: Send + Sync + std::fmt::Debug {
    /// Add one; [`AuthError::AppPasswordExists`] when the user already has one of that name.
    async fn create(&self, record: &AppPassword) -> Result<(), AuthError>;
    /// The user's app passwords (expired ones included, for listing).
    async fn list(&self, username: &str) -> Result<Vec<AppPassword>, AuthError>;
    /// Remove one; whether it existed.
    async fn revoke(&self, username: &str, name: &str) -> Result<bool, AuthError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_match_only_themselves_until_they_expire() {
        let (password, record) = generate([7; 32], "alice", "laptop", 100, Some(200));
        assert!(looks_like(password.expose()));
        assert!(
            !format!("{record:?}").contains("sha256"),
            "no digest in Debug"
        );
        let records = vec![record];
        assert!(matches(&records, password.expose(), 150));
        assert!(
            !matches(&records, password.expose(), 200),
            "expired at expires_at"
        );
        let (other, _) = generate([8; 32], "alice", "phone", 100, None);
        assert!(!matches(&records, other.expose(), 150));
        assert!(!looks_like("alice-portcullis"));
        assert!(!looks_like("pcap_short"));
        assert!(valid_name("ci-runner.01"));
        assert!(!valid_name("") && !valid_name("a b") && !valid_name(&"x".repeat(65)));
    }
}
