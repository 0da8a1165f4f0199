//! The Basic credential cache: a Basic-auth client pays for the password hash once, not on every
//! request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::lock;
use crate::users::User;

/// Entries kept at most; the map is emptied when it is full.
const MAX_ENTRIES: usize = 10_000;

/// The key of the cache's MAC: one HMAC-SHA256 block, so building the MAC cannot fail and no
/// fallback key can ever be used.
pub type CacheKey = [u8; 64];

/// Verified Basic credentials: HMAC-SHA256 (under a per-process random key) of the canonical
/// username and the password → expiry. Failures are never stored. Cleared when the users reload.
/// For a directory's users the entry is keyed by the login as typed and carries the user as the
/// directory described them, so that a hit never talks to the directory.
pub struct BasicCache {
    mac: Hmac<Sha256>,
    entries: Mutex<HashMap<[u8; 32], Entry>>,
}

/// An entry's expiry, and the directory user it was verified for.
type Entry = (u64, Option<Arc<User>>);

impl std::fmt::Debug for BasicCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicCache").finish_non_exhaustive()
    }
}

impl BasicCache {
    /// An empty cache under `key` (random, from the caller).
    pub fn new(key: &CacheKey) -> Self {
        Self {
            mac: <Hmac<Sha256> as KeyInit>::new(key.into()),
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn digest(&self, username: &str, password: &str) -> [u8; 32] {
        self.digest_in(b"user", username, password)
    }

    fn digest_in(&self, space: &[u8], username: &str, password: &str) -> [u8; 32] {
        let mut mac = self.mac.clone();
        mac.update(space);
        mac.update(&[0]);
        mac.update(username.as_bytes());
        mac.update(&[0]);
        mac.update(password.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// True when these credentials were verified and have not expired at `now`.
    pub fn hit(&self, username: &str, password: &str, now: u64) -> bool {
        let digest = self.digest(username, password);
        // The map is keyed by a MAC: a lookup reveals nothing about near misses.
        lock(&self.entries)
            .get(&digest)
            .is_some_and(|(expires, _)| *expires > now)
    }

    /// Remember verified credentials until `expires`.
    pub fn insert(&self, username: &str, password: &str, expires: u64) {
        self.put(self.digest(username, password), expires, None);
    }

    fn put(&self, digest: [u8; 32], expires: u64, user: Option<Arc<User>>) {
        let mut entries = lock(&self.entries);
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(digest, (expires, user));
    }

    /// The directory user these credentials (the login as typed) were verified for, unless the
    /// entry expired at `now`.
    pub fn hit_directory(&self, login: &str, password: &str, now: u64) -> Option<Arc<User>> {
        let digest = self.digest_in(b"directory", login, password);
        lock(&self.entries)
            .get(&digest)
            .filter(|(expires, _)| *expires > now)
            .and_then(|(_, user)| user.clone())
    }

    /// Remember credentials a directory verified, with the user it described, until `expires`.
    pub fn insert_directory(&self, login: &str, password: &str, user: Arc<User>, expires: u64) {
        self.put(
            self.digest_in(b"directory", login, password),
            expires,
            Some(user),
        );
    }

    /// Forget everything (the users changed).
    pub fn clear(&self) {
        lock(&self.entries).clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_need_the_same_user_password_and_key_before_expiry() {
        let cache = BasicCache::new(&[7; 64]);
        cache.insert("alice", "password", 100);
        assert!(cache.hit("alice", "password", 99));
        assert!(!cache.hit("alice", "password", 100), "expired");
        assert!(!cache.hit("alice", "Password", 99));
        assert!(
            !cache.hit("alic", "epassword", 99),
            "the separator keeps fields apart"
        );
        let other = BasicCache::new(&[8; 64]);
        assert!(
            !other.hit("alice", "password", 99),
            "another key, another cache"
        );
        assert_ne!(cache.digest("a", "b"), other.digest("a", "b"));
        assert_ne!(cache.digest("a", "b"), [0; 32]);
        cache.clear();
        assert!(!cache.hit("alice", "password", 99));
    }

    #[test]
    fn directory_entries_carry_the_user_and_stay_apart_from_file_entries() {
        let cache = BasicCache::new(&[7; 64]);
        let user = Arc::new(User {
            username: "john".into(),
            display_name: "John Doe".into(),
            emails: vec!["john.doe@authelia.com".into()],
            groups: vec!["dev".into()],
            digest: crate::users::Digest::Directory,
            attributes: portcullis_core::Attributes::default(),
            dn: Some("cn=John,ou=users".into()),
        });
        cache.insert_directory("john.doe@authelia.com", "password", user.clone(), 100);
        assert_eq!(
            cache.hit_directory("john.doe@authelia.com", "password", 99),
            Some(user)
        );
        assert_eq!(
            cache.hit_directory("john.doe@authelia.com", "password", 100),
            None,
            "expired"
        );
        assert_eq!(
            cache.hit_directory("john", "password", 99),
            None,
            "keyed by the login as typed"
        );
        assert_eq!(
            cache.hit_directory("john.doe@authelia.com", "Password", 99),
            None
        );
        assert!(
            !cache.hit("john.doe@authelia.com", "password", 99),
            "a file entry is another entry"
        );
        cache.insert("john", "password", 100);
        assert_eq!(cache.hit_directory("john", "password", 99), None);
    }
}
