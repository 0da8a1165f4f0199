//! Where codes, tokens, login flows and consents live between requests: the [`OidcStore`] trait
//! and the in-memory store. The SQLite store is behind feature `sqlite`.
//!
//! Records are opaque bytes (the server's JSON) under a kind and a key, each in a *family*: all
//! codes and tokens descending from one authorization share it, so a replayed code or refresh
//! token revokes the whole family at once (RFC 6819 §5.2.2.3).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;

use crate::error::OidcError;

/// What a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RecordKind {
    /// An authorization request waiting for login or consent (key: the flow id).
    Flow,
    /// An authorization code (key: its HMAC).
    Code,
    /// An access token (key: its HMAC, or a JWT's `jti`).
    AccessToken,
    /// A refresh token (key: its HMAC).
    RefreshToken,
    /// A remembered consent (key: a hash of subject, client, scopes, audience).
    Consent,
    /// A device authorization (key: the device code's HMAC, or `user:` and the user code).
    Device,
    /// A pushed authorization request (key: the request URI's random part).
    Pushed,
    /// A used client assertion (key: client and `jti`), against replays.
    Assertion,
}

impl RecordKind {
    /// The name in stores.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Flow => "flow",
            Self::Code => "code",
            Self::AccessToken => "access_token",
            Self::RefreshToken => "refresh_token",
            Self::Consent => "consent",
            Self::Device => "device",
            Self::Pushed => "pushed",
            Self::Assertion => "assertion",
        }
    }
}

/// A stored record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Its family.
    pub family: String,
    /// False once used (a code, a rotated refresh token) or revoked.
    pub active: bool,
    /// Unix seconds after which it is gone.
    pub expires_at: u64,
    /// The server's data.
    pub value: Vec<u8>,
}

/// What [`OidcStore::consume`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Consumed {
    /// It was active and is now used: only one caller ever sees this for a record.
    Fresh(Record),
    /// It had been used or revoked before: a replay.
    Replayed(Record),
    /// No such record, or expired.
    Missing,
}

/// Storage of the provider's state.
#[async_trait]
pub trait OidcStore: Send + Sync {
    /// Insert (or replace) an active record.
    async fn insert(
        &self,
        kind: RecordKind,
        key: &str,
        family: &str,
        value: &[u8],
        expires_at: u64,
    ) -> Result<(), OidcError>;

    /// Insert an active record only when none is present (or it expired) at `now`: whether it was
    /// inserted. Of concurrent callers exactly one gets `true`.
    async fn insert_new(
        &self,
        kind: RecordKind,
        key: &str,
        value: &[u8],
        expires_at: u64,
        now: u64,
    ) -> Result<bool, OidcError>;

    /// The record, when present and not expired at `now` (active or not).
    async fn get(&self, kind: RecordKind, key: &str, now: u64)
    -> Result<Option<Record>, OidcError>;

    /// Mark the record used, atomically: of concurrent callers exactly one gets
    /// [`Consumed::Fresh`].
    async fn consume(&self, kind: RecordKind, key: &str, now: u64) -> Result<Consumed, OidcError>;

    /// Deactivate every record of `family`.
    async fn revoke_family(&self, family: &str) -> Result<(), OidcError>;

    /// Delete one record.
    async fn delete(&self, kind: RecordKind, key: &str) -> Result<(), OidcError>;

    /// Delete records expired at `now`; returns how many.
    async fn purge(&self, now: u64) -> Result<u64, OidcError>;

    /// The opaque subject identifier of `username` for `sector`, creating it from `fresh` (a
    /// random UUID) on first use. Stable for ever after.
    async fn subject(&self, username: &str, sector: &str, fresh: &str)
    -> Result<String, OidcError>;

    /// The value kept under `name` (a generated signing key), storing `fresh` on first use.
    async fn keep(&self, name: &str, fresh: &str) -> Result<String, OidcError>;

    /// The value kept under `name`, if any (so that a costly `fresh` is made only when needed).
    async fn kept(&self, name: &str) -> Result<Option<String>, OidcError>;

    /// Remember that `family` (tokens of `client`) belongs to the user `owner`, until
    /// `expires_at`, so that the user's logout can reach it.
    async fn link_owner(
        &self,
        owner: &str,
        client: &str,
        family: &str,
        expires_at: u64,
    ) -> Result<(), OidcError>;

    /// The `(client, family)` pairs linked to `owner` and not expired at `now`, forgetting them.
    async fn take_owned(&self, owner: &str, now: u64) -> Result<Vec<(String, String)>, OidcError>;
}

type Key = (RecordKind, String);

/// A user's token families: (client, family, expires_at).
type OwnerLinks = Vec<(String, String, u64)>;

/// An in-memory store: for tests and single-process deployments without a database.
#[derive(Debug, Default)]
pub struct MemoryOidcStore {
    records: Mutex<HashMap<Key, Record>>,
    owners: Mutex<HashMap<String, OwnerLinks>>,
    subjects: Mutex<HashMap<(String, String), String>>,
    kept: Mutex<HashMap<String, String>>,
}

impl MemoryOidcStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl OidcStore for MemoryOidcStore {
    async fn insert(
        &self,
        kind: RecordKind,
        key: &str,
        family: &str,
        value: &[u8],
        expires_at: u64,
    ) -> Result<(), OidcError> {
        self.records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                (kind, key.to_owned()),
                Record {
                    family: family.to_owned(),
                    active: true,
                    expires_at,
                    value: value.to_vec(),
                },
            );
        Ok(())
    }

    async fn insert_new(
        &self,
        kind: RecordKind,
        key: &str,
        value: &[u8],
        expires_at: u64,
        now: u64,
    ) -> Result<bool, OidcError> {
        let mut records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        let k = (kind, key.to_owned());
        if records.get(&k).is_some_and(|r| r.expires_at > now) {
            return Ok(false);
        }
        records.insert(
            k,
            Record {
                family: key.to_owned(),
                active: true,
                expires_at,
                value: value.to_vec(),
            },
        );
        Ok(true)
    }

    async fn get(
        &self,
        kind: RecordKind,
        key: &str,
        now: u64,
    ) -> Result<Option<Record>, OidcError> {
        let records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(records
            .get(&(kind, key.to_owned()))
            .filter(|r| r.expires_at > now)
            .cloned())
    }

    async fn consume(&self, kind: RecordKind, key: &str, now: u64) -> Result<Consumed, OidcError> {
        let mut records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(match records.get_mut(&(kind, key.to_owned())) {
            Some(r) if r.expires_at > now => {
                if r.active {
                    r.active = false;
                    let mut fresh = r.clone();
                    fresh.active = true;
                    Consumed::Fresh(fresh)
                } else {
                    Consumed::Replayed(r.clone())
                }
            }
            _ => Consumed::Missing,
        })
    }

    async fn revoke_family(&self, family: &str) -> Result<(), OidcError> {
        let mut records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        for r in records.values_mut().filter(|r| r.family == family) {
            r.active = false;
        }
        Ok(())
    }

    async fn delete(&self, kind: RecordKind, key: &str) -> Result<(), OidcError> {
        self.records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&(kind, key.to_owned()));
        Ok(())
    }

    async fn purge(&self, now: u64) -> Result<u64, OidcError> {
        let mut records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        let before = records.len();
        records.retain(|_, r| r.expires_at > now);
        Ok((before - records.len()) as u64)
    }

    async fn subject(
        &self,
        username: &str,
        sector: &str,
        fresh: &str,
    ) -> Result<String, OidcError> {
        let mut subjects = self.subjects.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(subjects
            .entry((username.to_owned(), sector.to_owned()))
            .or_insert_with(|| fresh.to_owned())
            .clone())
    }

    async fn kept(&self, name: &str) -> Result<Option<String>, OidcError> {
        Ok(self
            .kept
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned())
    }

    async fn link_owner(
        &self,
        owner: &str,
        client: &str,
        family: &str,
        expires_at: u64,
    ) -> Result<(), OidcError> {
        self.owners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(owner.to_owned())
            .or_default()
            .push((client.to_owned(), family.to_owned(), expires_at));
        Ok(())
    }

    async fn take_owned(&self, owner: &str, now: u64) -> Result<Vec<(String, String)>, OidcError> {
        let links = self
            .owners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(owner)
            .unwrap_or_default();
        Ok(links
            .into_iter()
            .filter(|(_, _, e)| *e > now)
            .map(|(c, f, _)| (c, f))
            .collect())
    }

    async fn keep(&self, name: &str, fresh: &str) -> Result<String, OidcError> {
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(kept
            .entry(name.to_owned())
            .or_insert_with(|| fresh.to_owned())
            .clone())
    }
}

/// The behaviour every store must show, run by each store's tests.
#[cfg(test)]
pub(crate) async fn conformance(store: &dyn OidcStore) {
    store
        .insert(RecordKind::Code, "c1", "fam", b"v", 100)
        .await
        .unwrap();
    store
        .insert(RecordKind::AccessToken, "a1", "fam", b"a", 100)
        .await
        .unwrap();
    store
        .insert(RecordKind::AccessToken, "a2", "other", b"b", 100)
        .await
        .unwrap();
    assert_eq!(
        store
            .get(RecordKind::Code, "c1", 50)
            .await
            .unwrap()
            .unwrap()
            .value,
        b"v"
    );
    assert!(
        store
            .get(RecordKind::Code, "c1", 100)
            .await
            .unwrap()
            .is_none(),
        "expired at expires_at"
    );
    assert!(
        store
            .get(RecordKind::AccessToken, "c1", 50)
            .await
            .unwrap()
            .is_none(),
        "kinds are separate"
    );
    assert!(matches!(
        store.consume(RecordKind::Code, "c1", 50).await.unwrap(),
        Consumed::Fresh(_)
    ));
    assert!(matches!(
        store.consume(RecordKind::Code, "c1", 50).await.unwrap(),
        Consumed::Replayed(_)
    ));
    assert_eq!(
        store.consume(RecordKind::Code, "nope", 50).await.unwrap(),
        Consumed::Missing
    );
    store.revoke_family("fam").await.unwrap();
    assert!(
        !store
            .get(RecordKind::AccessToken, "a1", 50)
            .await
            .unwrap()
            .unwrap()
            .active
    );
    assert!(
        store
            .get(RecordKind::AccessToken, "a2", 50)
            .await
            .unwrap()
            .unwrap()
            .active
    );
    store.delete(RecordKind::AccessToken, "a2").await.unwrap();
    assert!(
        store
            .get(RecordKind::AccessToken, "a2", 50)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.purge(200).await.unwrap(), 2);
    let s1 = store.subject("john", "", "uuid-1").await.unwrap();
    let s2 = store.subject("john", "", "uuid-2").await.unwrap();
    assert_eq!((s1.as_str(), s2.as_str()), ("uuid-1", "uuid-1"));
    assert_eq!(store.subject("mary", "", "uuid-3").await.unwrap(), "uuid-3");
    assert!(
        store
            .insert_new(RecordKind::Assertion, "j1", b"", 100, 50)
            .await
            .unwrap()
    );
    assert!(
        !store
            .insert_new(RecordKind::Assertion, "j1", b"", 100, 60)
            .await
            .unwrap(),
        "a replay"
    );
    assert!(
        store
            .insert_new(RecordKind::Assertion, "j1", b"", 300, 100)
            .await
            .unwrap(),
        "expired: new again"
    );
    store.link_owner("john", "app", "f1", 100).await.unwrap();
    store.link_owner("john", "other", "f2", 100).await.unwrap();
    store.link_owner("john", "old", "f3", 40).await.unwrap();
    let mut owned = store.take_owned("john", 50).await.unwrap();
    owned.sort();
    assert_eq!(
        owned,
        [
            ("app".to_owned(), "f1".to_owned()),
            ("other".to_owned(), "f2".to_owned())
        ]
    );
    assert!(
        store.take_owned("john", 50).await.unwrap().is_empty(),
        "taken once"
    );
    assert!(store.take_owned("mary", 50).await.unwrap().is_empty());
    assert_eq!(store.kept("k").await.unwrap(), None);
    assert_eq!(store.keep("k", "a").await.unwrap(), "a");
    assert_eq!(store.kept("k").await.unwrap().as_deref(), Some("a"));
    assert_eq!(store.keep("k", "b").await.unwrap(), "a");
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn memory_store_conforms() {
        super::conformance(&super::MemoryOidcStore::new()).await;
    }
}
