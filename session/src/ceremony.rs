//! Short-lived state of multi-step ceremonies that belong to a session or a browser (a TOTP
//! registration waiting for its first code, an elevated session, a WebAuthn challenge, a
//! password-reset permit): kept in memory by [`MemoryCeremonies`], or in the sessions' Redis
//! ([`RedisStore`](crate::RedisStore) implements [`CeremonyStore`]) so that any replica can finish
//! a ceremony another began, and a restart forgets nothing.
//!
//! Values are opaque bytes with an expiry; `kind` keeps the kinds of ceremony apart, `key`
//! names one (a session id, a challenge). Every value ends at its expiry, whatever the backend.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;

use crate::StoreError;

/// Where ceremony state lives.
#[async_trait]
pub trait CeremonyStore: Send + Sync + std::fmt::Debug {
    /// Keep `value` under (`kind`, `key`) until `expires_at`, replacing any earlier value. A
    /// value already expired at `now` is refused.
    async fn put_ceremony(
        &self,
        kind: &str,
        key: &str,
        value: &[u8],
        expires_at: u64,
        now: u64,
    ) -> Result<(), StoreError>;

    /// The value, unless it is missing or expired at `now`.
    async fn get_ceremony(
        &self,
        kind: &str,
        key: &str,
        now: u64,
    ) -> Result<Option<Vec<u8>>, StoreError>;

    /// The value, removed (a ceremony step that may happen once).
    async fn take_ceremony(
        &self,
        kind: &str,
        key: &str,
        now: u64,
    ) -> Result<Option<Vec<u8>>, StoreError>;

    /// Forget the value. A missing one is not an error.
    async fn delete_ceremony(&self, kind: &str, key: &str) -> Result<(), StoreError>;
}

/// A value and its expiry (Unix seconds).
type Expiring = (Vec<u8>, u64);

/// Ceremony state in this process's memory, at most `max_entries` values (beyond it expired
/// values are dropped, then new ones refused, so a flood cannot grow memory without bound).
#[derive(Debug)]
pub struct MemoryCeremonies {
    values: Mutex<HashMap<(String, String), Expiring>>,
    max_entries: usize,
}

impl Default for MemoryCeremonies {
    fn default() -> Self {
        Self::new(crate::DEFAULT_MAX_ENTRIES)
    }
}

impl MemoryCeremonies {
    /// An empty store holding at most `max_entries` values.
    pub fn new(max_entries: usize) -> Self {
        Self {
            values: Mutex::new(HashMap::new()),
            max_entries,
        }
    }
}

#[async_trait]
impl CeremonyStore for MemoryCeremonies {
    async fn put_ceremony(
        &self,
        kind: &str,
        key: &str,
        value: &[u8],
        expires_at: u64,
        now: u64,
    ) -> Result<(), StoreError> {
        if expires_at <= now {
            return Err(StoreError::Refused(
                "the ceremony has already expired".into(),
            ));
        }
        let mut values = self.values.lock().unwrap_or_else(PoisonError::into_inner);
        let id = (kind.to_owned(), key.to_owned());
        if values.len() >= self.max_entries && !values.contains_key(&id) {
            values.retain(|_, (_, expires)| *expires > now);
            if values.len() >= self.max_entries {
                return Err(StoreError::Refused(
                    "too many ceremonies in progress".into(),
                ));
            }
        }
        values.insert(id, (value.to_vec(), expires_at));
        Ok(())
    }

    async fn get_ceremony(
        &self,
        kind: &str,
        key: &str,
        now: u64,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let values = self.values.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(values
            .get(&(kind.to_owned(), key.to_owned()))
            .filter(|(_, expires)| *expires > now)
            .map(|(v, _)| v.clone()))
    }

    async fn take_ceremony(
        &self,
        kind: &str,
        key: &str,
        now: u64,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let mut values = self.values.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(values
            .remove(&(kind.to_owned(), key.to_owned()))
            .filter(|(_, expires)| *expires > now)
            .map(|(v, _)| v))
    }

    async fn delete_ceremony(&self, kind: &str, key: &str) -> Result<(), StoreError> {
        self.values
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&(kind.to_owned(), key.to_owned()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[tokio::test]
    async fn values_expire_are_taken_once_and_are_bounded() {
        let store = MemoryCeremonies::new(2);
        store
            .put_ceremony("totp", "s1", b"a", 100, 10)
            .await
            .unwrap();
        assert_eq!(
            store.get_ceremony("totp", "s1", 99).await.unwrap(),
            Some(b"a".to_vec())
        );
        assert_eq!(
            store.get_ceremony("totp", "s1", 100).await.unwrap(),
            None,
            "expired"
        );
        assert_eq!(
            store.get_ceremony("elevation", "s1", 50).await.unwrap(),
            None,
            "kinds apart"
        );
        assert!(
            store
                .put_ceremony("totp", "s0", b"x", 10, 10)
                .await
                .is_err(),
            "already expired"
        );
        store
            .put_ceremony("totp", "s2", b"b", 100, 10)
            .await
            .unwrap();
        assert!(
            store
                .put_ceremony("totp", "s3", b"c", 100, 10)
                .await
                .is_err(),
            "full"
        );
        // Expired values make room.
        store
            .put_ceremony("totp", "s3", b"c", 200, 150)
            .await
            .unwrap();
        assert_eq!(
            store.take_ceremony("totp", "s3", 150).await.unwrap(),
            Some(b"c".to_vec())
        );
        assert_eq!(
            store.take_ceremony("totp", "s3", 150).await.unwrap(),
            None,
            "taken once"
        );
        store
            .put_ceremony("totp", "s4", b"d", 200, 150)
            .await
            .unwrap();
        store.delete_ceremony("totp", "s4").await.unwrap();
        assert_eq!(store.get_ceremony("totp", "s4", 150).await.unwrap(), None);
    }
}
