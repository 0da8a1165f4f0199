//! The Basic credential cache: a Basic-auth client pays for the password hash once, not on every
//! request.

use std::collections::HashMap;
use std::sync::Mutex;

use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::lock;

/// Entries kept at most; the map is emptied when it is full.
const MAX_ENTRIES: usize = 10_000;

/// The key of the cache's MAC: one HMAC-SHA256 block, so building the MAC cannot fail and no
/// fallback key can ever be used.
pub type CacheKey = [u8; 64];

/// Verified Basic credentials: HMAC-SHA256 (under a per-process random key) of the canonical
/// username and the password → expiry. Failures are never stored. Cleared when the users reload.
pub struct BasicCache {
    mac: Hmac<Sha256>,
    entries: Mutex<HashMap<[u8; 32], u64>>,
}

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
        let mut mac = self.mac.clone();
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
            .is_some_and(|&expires| expires > now)
    }

    /// Remember verified credentials until `expires`.
    pub fn insert(&self, username: &str, password: &str, expires: u64) {
        let digest = self.digest(username, password);
        let mut entries = lock(&self.entries);
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(digest, expires);
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
}
