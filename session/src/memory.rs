//! `MemoryStore`: sessions in a bounded in-process map (no I/O, no tokio).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;

use crate::{Session, SessionId, SessionStore, StoreError};

/// Default bound on the number of sessions a [`MemoryStore`] holds.
pub const DEFAULT_MAX_ENTRIES: usize = 1_000_000;

/// One stored session, plus the `last_activity` the persistent layer (if any) last wrote.
#[derive(Debug)]
struct Entry {
    session: Session,
    persisted_activity: u64,
}

#[derive(Debug, Default)]
struct Inner {
    sessions: HashMap<SessionId, Entry>,
    /// Lower-cased username → ids of that user's sessions.
    by_user: HashMap<String, HashSet<SessionId>>,
    /// (expires_at, id) of every session, soonest first: expiry purge and eviction.
    by_expiry: BTreeSet<(u64, SessionId)>,
}

impl Inner {
    fn unlink(&mut self, id: &SessionId) -> Option<Entry> {
        let entry = self.sessions.remove(id)?;
        let user = user_key(&entry.session.identity.username);
        if let Some(ids) = self.by_user.get_mut(&user) {
            ids.remove(id);
            if ids.is_empty() {
                self.by_user.remove(&user);
            }
        }
        self.by_expiry
            .remove(&(entry.session.expires_at, entry.session.id.clone()));
        Some(entry)
    }

    fn link(&mut self, entry: Entry) {
        let id = entry.session.id.clone();
        self.by_user
            .entry(user_key(&entry.session.identity.username))
            .or_default()
            .insert(id.clone());
        self.by_expiry
            .insert((entry.session.expires_at, id.clone()));
        self.sessions.insert(id, entry);
    }

    fn expired_ids(&self, now: u64) -> Vec<SessionId> {
        self.by_expiry
            .iter()
            .take_while(|(expires_at, _)| *expires_at <= now)
            .map(|(_, id)| id.clone())
            .collect()
    }
}

fn user_key(username: &str) -> String {
    username.to_lowercase()
}

/// Sessions in memory, for a single replica (Authelia's default `memory` provider).
///
/// - Lookups by id are a hash lookup; [`delete_user`](SessionStore::delete_user) uses a per-user
///   index (lower-cased username), so it does not scan.
/// - Expired sessions are dropped when read and by [`MemoryStore::purge_expired`].
/// - The number of sessions is bounded (security.md R9.6): inserting a new session into a full store
///   first evicts the session that expires soonest (expired ones go first).
///
/// All methods take a `std` mutex for a short, non-blocking critical section.
pub struct MemoryStore {
    inner: Mutex<Inner>,
    max_entries: usize,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("len", &self.len())
            .field("max_entries", &self.max_entries)
            .finish()
    }
}

impl MemoryStore {
    /// An empty store bounded to [`DEFAULT_MAX_ENTRIES`] sessions.
    pub fn new() -> Self {
        Self::with_max_entries(DEFAULT_MAX_ENTRIES)
    }

    /// An empty store bounded to `max_entries` sessions (at least 1).
    pub fn with_max_entries(max_entries: usize) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            max_entries: max_entries.max(1),
        }
    }

    /// The bound on the number of sessions.
    pub fn max_entries(&self) -> usize {
        self.max_entries
    }

    /// Number of sessions held, including expired ones not yet purged.
    pub fn len(&self) -> usize {
        self.lock().sessions.len()
    }

    /// True when no session is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drop every session expired at `now`; returns how many were dropped.
    pub fn purge_expired(&self, now: u64) -> usize {
        self.purge_expired_ids(now).len()
    }

    // Every critical section below only moves values between maps and cannot leave the indexes
    // half-updated, so a poisoned lock (a panic elsewhere while holding it) is safe to reuse.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn purge_expired_ids(&self, now: u64) -> Vec<SessionId> {
        let mut inner = self.lock();
        let ids = inner.expired_ids(now);
        for id in &ids {
            inner.unlink(id);
        }
        ids
    }

    /// The unexpired session with this id; an expired one is dropped.
    pub(crate) fn fetch(&self, id: &SessionId, now: u64) -> Option<Session> {
        let mut inner = self.lock();
        let expired = inner.sessions.get(id)?.session.is_expired(now);
        if expired {
            inner.unlink(id);
            return None;
        }
        inner.sessions.get(id).map(|entry| entry.session.clone())
    }

    /// Insert or replace; returns the ids evicted to stay within the bound.
    pub(crate) fn insert(&self, session: Session, persisted_activity: u64) -> Vec<SessionId> {
        let mut inner = self.lock();
        let mut evicted = Vec::new();
        if inner.unlink(&session.id).is_none() {
            while inner.sessions.len() >= self.max_entries {
                let Some((_, victim)) = inner.by_expiry.first().cloned() else {
                    break;
                };
                inner.unlink(&victim);
                evicted.push(victim);
            }
        }
        inner.link(Entry {
            session,
            persisted_activity,
        });
        evicted
    }

    /// Raise `last_activity` to `at`. With `persist_after: Some(interval)`, returns the value to
    /// write to the persistent layer when it is at least `interval` seconds newer than what was last
    /// written (and records it as written).
    pub(crate) fn record_activity(
        &self,
        id: &SessionId,
        at: u64,
        persist_after: Option<u64>,
    ) -> Option<u64> {
        let mut inner = self.lock();
        let entry = inner.sessions.get_mut(id)?;
        entry.session.touch(at);
        let interval = persist_after?;
        let current = entry.session.last_activity;
        if current >= entry.persisted_activity.saturating_add(interval) {
            entry.persisted_activity = current;
            Some(current)
        } else {
            None
        }
    }

    /// Remove one session; true when it was present.
    pub(crate) fn remove(&self, id: &SessionId) -> bool {
        self.lock().unlink(id).is_some()
    }

    /// Remove every session of `username` (case-insensitively); returns their ids.
    pub(crate) fn remove_user(&self, username: &str) -> Vec<SessionId> {
        let mut inner = self.lock();
        let ids: Vec<SessionId> = inner
            .by_user
            .get(&user_key(username))
            .map(|ids| ids.iter().cloned().collect())
            .unwrap_or_default();
        for id in &ids {
            inner.unlink(id);
        }
        ids
    }

    /// Make the held ids match `ids` (the ids of a persistent layer): drop every session whose id
    /// is not in `ids`, and return how many were dropped and which of `ids` are not held.
    pub(crate) fn sync_ids(&self, ids: &HashSet<SessionId>) -> (usize, Vec<SessionId>) {
        let mut inner = self.lock();
        let gone: Vec<SessionId> = inner
            .sessions
            .keys()
            .filter(|id| !ids.contains(*id))
            .cloned()
            .collect();
        for id in &gone {
            inner.unlink(id);
        }
        let missing = ids
            .iter()
            .filter(|id| !inner.sessions.contains_key(*id))
            .cloned()
            .collect();
        (gone.len(), missing)
    }

    /// Unexpired sessions of one user or of everyone, by creation time then id.
    pub(crate) fn sessions(&self, username: Option<&str>, now: u64) -> Vec<Session> {
        let inner = self.lock();
        let mut out: Vec<Session> = match username {
            Some(username) => inner
                .by_user
                .get(&user_key(username))
                .into_iter()
                .flatten()
                .filter_map(|id| inner.sessions.get(id))
                .map(|entry| &entry.session)
                .filter(|session| !session.is_expired(now))
                .cloned()
                .collect(),
            None => inner
                .sessions
                .values()
                .map(|entry| &entry.session)
                .filter(|session| !session.is_expired(now))
                .cloned()
                .collect(),
        };
        out.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        out
    }

    /// Number of sessions unexpired at `now`.
    pub(crate) fn live_count(&self, now: u64) -> usize {
        let inner = self.lock();
        let expired = inner
            .by_expiry
            .iter()
            .take_while(|(expires_at, _)| *expires_at <= now)
            .count();
        inner.sessions.len() - expired
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn get(&self, id: &SessionId, now: u64) -> Result<Option<Session>, StoreError> {
        Ok(self.fetch(id, now))
    }

    async fn put(&self, session: &Session) -> Result<(), StoreError> {
        self.insert(session.clone(), session.last_activity);
        Ok(())
    }

    async fn touch(&self, id: &SessionId, last_activity: u64) -> Result<(), StoreError> {
        self.record_activity(id, last_activity, None);
        Ok(())
    }

    async fn delete(&self, id: &SessionId) -> Result<(), StoreError> {
        self.remove(id);
        Ok(())
    }

    async fn delete_user(&self, username: &str) -> Result<usize, StoreError> {
        Ok(self.remove_user(username).len())
    }

    async fn list(&self, username: Option<&str>, now: u64) -> Result<Vec<Session>, StoreError> {
        Ok(self.sessions(username, now))
    }

    async fn count(&self, now: u64) -> Result<usize, StoreError> {
        Ok(self.live_count(now))
    }

    async fn health(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Lifetime;
    use portcullis_core::{AuthLevel, Identity};
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use std::sync::Arc;

    const T0: u64 = 1_700_000_000;

    fn make(rng: &mut StdRng, user: &str, now: u64, expiration: u64) -> Session {
        let lifetime = Lifetime {
            expiration,
            ..Lifetime::default()
        };
        Session::new(
            SessionId::generate(rng),
            "example.com",
            Identity::user(user, AuthLevel::OneFactor),
            false,
            now,
            &lifetime,
        )
    }

    #[tokio::test]
    async fn crud() {
        let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
        let mut rng = StdRng::seed_from_u64(1);
        let s = make(&mut rng, "alice", T0, 3600);
        assert_eq!(store.get(&s.id, T0).await.unwrap(), None);
        store.put(&s).await.unwrap();
        assert_eq!(store.get(&s.id, T0 + 1).await.unwrap(), Some(s.clone()));
        assert_eq!(store.count(T0).await.unwrap(), 1);

        store.touch(&s.id, T0 + 100).await.unwrap();
        store.touch(&s.id, T0 + 50).await.unwrap();
        let got = store.get(&s.id, T0 + 101).await.unwrap().unwrap();
        assert_eq!(got.last_activity, T0 + 100, "touch never goes backwards");

        let mut replaced = got.clone();
        replaced.identity.groups = vec!["admins".into()];
        store.put(&replaced).await.unwrap();
        assert_eq!(store.get(&s.id, T0 + 1).await.unwrap(), Some(replaced));
        assert_eq!(store.count(T0).await.unwrap(), 1);

        store.delete(&s.id).await.unwrap();
        assert_eq!(store.get(&s.id, T0 + 1).await.unwrap(), None);
        store.delete(&s.id).await.unwrap();
        store.touch(&s.id, T0).await.unwrap();
        assert_eq!(store.count(T0).await.unwrap(), 0);
        store.health().await.unwrap();
    }

    #[tokio::test]
    async fn expiry_on_read_and_purge() {
        let store = MemoryStore::new();
        let mut rng = StdRng::seed_from_u64(2);
        let short = make(&mut rng, "alice", T0, 10);
        let long = make(&mut rng, "bob", T0, 1000);
        store.put(&short).await.unwrap();
        store.put(&long).await.unwrap();
        assert!(store.get(&short.id, T0 + 9).await.unwrap().is_some());
        assert_eq!(store.count(T0 + 10).await.unwrap(), 1);
        assert_eq!(store.list(None, T0 + 10).await.unwrap(), vec![long.clone()]);
        assert_eq!(store.get(&short.id, T0 + 10).await.unwrap(), None);
        assert_eq!(store.len(), 1, "the expired record was dropped on read");
        assert_eq!(store.purge_expired(T0 + 999), 0);
        assert_eq!(store.purge_expired(T0 + 1000), 1);
        assert!(store.is_empty());
    }

    #[tokio::test]
    async fn delete_user_is_case_insensitive_and_indexed() {
        let store = MemoryStore::new();
        let mut rng = StdRng::seed_from_u64(3);
        let a1 = make(&mut rng, "Alice", T0, 3600);
        let a2 = make(&mut rng, "alice", T0 + 1, 3600);
        let b = make(&mut rng, "bob", T0, 3600);
        for s in [&a1, &a2, &b] {
            store.put(s).await.unwrap();
        }
        assert_eq!(
            store.list(Some("ALICE"), T0).await.unwrap(),
            vec![a1.clone(), a2.clone()]
        );
        assert_eq!(store.list(None, T0).await.unwrap().len(), 3);
        assert_eq!(store.delete_user("ALICE").await.unwrap(), 2);
        assert_eq!(store.get(&a1.id, T0).await.unwrap(), None);
        assert_eq!(store.get(&a2.id, T0).await.unwrap(), None);
        assert_eq!(store.get(&b.id, T0).await.unwrap(), Some(b.clone()));
        assert_eq!(store.delete_user("alice").await.unwrap(), 0);
        assert!(
            !store.lock().by_user.contains_key("alice"),
            "empty index entries are dropped"
        );

        // Replacing a session under another username moves it in the index.
        let mut renamed = b.clone();
        renamed.identity.username = "carol".into();
        store.put(&renamed).await.unwrap();
        assert_eq!(store.delete_user("bob").await.unwrap(), 0);
        assert_eq!(store.delete_user("Carol").await.unwrap(), 1);
        assert!(store.is_empty());
    }

    #[tokio::test]
    async fn eviction_keeps_the_bound_and_drops_the_soonest_expiring() {
        let store = MemoryStore::with_max_entries(3);
        let mut rng = StdRng::seed_from_u64(4);
        let s1 = make(&mut rng, "u", T0, 300);
        let s2 = make(&mut rng, "u", T0, 100); // expires first
        let s3 = make(&mut rng, "u", T0, 200);
        for s in [&s1, &s2, &s3] {
            store.put(s).await.unwrap();
        }
        // Replacing an existing one never evicts.
        store.put(&s1).await.unwrap();
        assert_eq!(store.len(), 3);
        let s4 = make(&mut rng, "u", T0, 50); // kept even though it expires soonest
        store.put(&s4).await.unwrap();
        assert_eq!(store.len(), 3);
        assert_eq!(store.get(&s2.id, T0).await.unwrap(), None);
        assert!(store.get(&s4.id, T0).await.unwrap().is_some());
        for i in 0..100 {
            store.put(&make(&mut rng, "u", T0, 1000 + i)).await.unwrap();
            assert!(store.len() <= 3);
        }
        assert_eq!(store.list(Some("u"), T0).await.unwrap().len(), 3);
        assert_eq!(MemoryStore::with_max_entries(0).max_entries(), 1);
        assert_eq!(MemoryStore::new().max_entries(), DEFAULT_MAX_ENTRIES);
    }

    #[test]
    fn activity_persistence_threshold() {
        let store = MemoryStore::new();
        let mut rng = StdRng::seed_from_u64(5);
        let s = make(&mut rng, "u", T0, 3600);
        store.insert(s.clone(), T0);
        assert_eq!(store.record_activity(&s.id, T0 + 59, Some(60)), None);
        assert_eq!(
            store.record_activity(&s.id, T0 + 60, Some(60)),
            Some(T0 + 60)
        );
        assert_eq!(store.record_activity(&s.id, T0 + 100, Some(60)), None);
        assert_eq!(
            store.record_activity(&s.id, T0 + 120, Some(60)),
            Some(T0 + 120)
        );
        assert_eq!(store.record_activity(&s.id, T0 + 121, None), None);
        assert_eq!(
            store.fetch(&s.id, T0).map(|s| s.last_activity),
            Some(T0 + 121)
        );
        let missing = SessionId::generate(&mut rng);
        assert_eq!(store.record_activity(&missing, T0, Some(0)), None);
    }

    #[test]
    fn debug_does_not_print_sessions() {
        let store = MemoryStore::new();
        let mut rng = StdRng::seed_from_u64(6);
        let s = make(&mut rng, "alice", T0, 3600);
        store.insert(s.clone(), T0);
        let shown = format!("{store:?}");
        assert!(
            !shown.contains("alice") && !shown.contains(s.id.as_str()),
            "{shown}"
        );
    }
}
