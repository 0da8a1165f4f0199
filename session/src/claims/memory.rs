//! `MemoryClaimsStore`: outpost sessions in a bounded in-process map (no I/O, no clock, no tokio).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;

use super::{ClaimsSession, ClaimsStore, refuse_expired};
use crate::{SessionId, StoreError};

/// Default bound on the number of sessions a [`MemoryClaimsStore`] holds. Lower than the verify
/// server's [`DEFAULT_MAX_ENTRIES`](crate::DEFAULT_MAX_ENTRIES): an outpost session carries the
/// IdP's tokens, a few kilobytes each.
pub const DEFAULT_MAX_CLAIMS_SESSIONS: usize = 100_000;

/// `(provider, sub)` or `(provider, sid)`: a tuple, so no separator can make two pairs meet.
type IndexKey = (String, String);

#[derive(Default)]
pub(super) struct Inner {
    sessions: HashMap<SessionId, ClaimsSession>,
    pub(super) by_sub: HashMap<IndexKey, HashSet<SessionId>>,
    pub(super) by_sid: HashMap<IndexKey, HashSet<SessionId>>,
    /// `(expires_at, id)` of every session, soonest first: purge, counting and eviction.
    pub(super) by_expiry: BTreeSet<(u64, SessionId)>,
}

fn index_key(provider: &str, value: &str) -> IndexKey {
    (provider.to_owned(), value.to_owned())
}

/// Remove `id` from the set under `key`, dropping the set when it empties.
fn unindex(index: &mut HashMap<IndexKey, HashSet<SessionId>>, key: IndexKey, id: &SessionId) {
    if let Some(ids) = index.get_mut(&key) {
        ids.remove(id);
        if ids.is_empty() {
            index.remove(&key);
        }
    }
}

impl Inner {
    fn unlink(&mut self, id: &SessionId) -> Option<ClaimsSession> {
        let session = self.sessions.remove(id)?;
        unindex(
            &mut self.by_sub,
            index_key(&session.provider, &session.sub),
            id,
        );
        if let Some(sid) = &session.sid {
            unindex(&mut self.by_sid, index_key(&session.provider, sid), id);
        }
        self.by_expiry.remove(&(session.expires_at, id.clone()));
        Some(session)
    }

    fn link(&mut self, session: ClaimsSession) {
        let id = session.id.clone();
        self.by_sub
            .entry(index_key(&session.provider, &session.sub))
            .or_default()
            .insert(id.clone());
        if let Some(sid) = &session.sid {
            self.by_sid
                .entry(index_key(&session.provider, sid))
                .or_default()
                .insert(id.clone());
        }
        self.by_expiry.insert((session.expires_at, id.clone()));
        self.sessions.insert(id, session);
    }

    fn expired_ids(&self, now: u64) -> Vec<SessionId> {
        self.by_expiry
            .iter()
            .take_while(|(expires_at, _)| *expires_at <= now)
            .map(|(_, id)| id.clone())
            .collect()
    }

    fn purge(&mut self, now: u64) -> usize {
        let expired = self.expired_ids(now);
        for id in &expired {
            self.unlink(id);
        }
        expired.len()
    }

    fn remove_indexed(&mut self, ids: Option<HashSet<SessionId>>) -> usize {
        ids.into_iter()
            .flatten()
            .filter(|id| self.unlink(id).is_some())
            .count()
    }
}

/// Outpost sessions in memory, for a single replica.
///
/// - Lookups by id are a hash lookup; [`delete_sub`](ClaimsStore::delete_sub) and
///   [`delete_sid`](ClaimsStore::delete_sid) use hash-map indexes on `(provider, sub)` and
///   `(provider, sid)`, so they do not scan.
/// - Expired sessions are dropped when read and by [`MemoryClaimsStore::purge_expired`].
/// - **Bound** (docs/reference/security.md R9.6): a store holds at most `max_entries` sessions.
///   Inserting a new session into a full store first drops every session expired at the `now` of
///   the `put`, then, if it is still full, **evicts** the sessions that expire soonest (that user
///   logs in again; the new session is always kept, even when it expires soonest itself). It never
///   refuses a login: refusing would let whoever fills the store lock everybody else out, while
///   eviction costs the sessions closest to their end anyway. Replacing an existing session never
///   evicts.
///
/// All methods take a `std` mutex for a short, non-blocking critical section.
pub struct MemoryClaimsStore {
    inner: Mutex<Inner>,
    max_entries: usize,
}

impl Default for MemoryClaimsStore {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MemoryClaimsStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryClaimsStore")
            .field("len", &self.len())
            .field("max_entries", &self.max_entries)
            .finish()
    }
}

impl MemoryClaimsStore {
    /// An empty store bounded to [`DEFAULT_MAX_CLAIMS_SESSIONS`] sessions.
    pub fn new() -> Self {
        Self::with_max_entries(DEFAULT_MAX_CLAIMS_SESSIONS)
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
        self.lock().purge(now)
    }

    // Every critical section below leaves the maps consistent before it can panic (it only moves
    // values between them), so a poisoned lock is safe to reuse.
    pub(super) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl ClaimsStore for MemoryClaimsStore {
    async fn get(&self, id: &SessionId, now: u64) -> Result<Option<ClaimsSession>, StoreError> {
        let mut inner = self.lock();
        let Some(session) = inner.sessions.get(id) else {
            return Ok(None);
        };
        if session.is_expired(now) {
            inner.unlink(id);
            return Ok(None);
        }
        Ok(Some(session.clone()))
    }

    async fn put(&self, session: &ClaimsSession, now: u64) -> Result<(), StoreError> {
        refuse_expired(session, now)?;
        let mut inner = self.lock();
        if inner.unlink(&session.id).is_none() && inner.sessions.len() >= self.max_entries {
            inner.purge(now);
            while inner.sessions.len() >= self.max_entries {
                let Some((_, victim)) = inner.by_expiry.first().cloned() else {
                    break;
                };
                inner.unlink(&victim);
            }
        }
        inner.link(session.clone());
        Ok(())
    }

    async fn delete(&self, id: &SessionId) -> Result<bool, StoreError> {
        Ok(self.lock().unlink(id).is_some())
    }

    async fn delete_sub(&self, provider: &str, sub: &str) -> Result<usize, StoreError> {
        let mut inner = self.lock();
        let ids = inner.by_sub.remove(&index_key(provider, sub));
        Ok(inner.remove_indexed(ids))
    }

    async fn delete_sid(&self, provider: &str, sid: &str) -> Result<usize, StoreError> {
        let mut inner = self.lock();
        let ids = inner.by_sid.remove(&index_key(provider, sid));
        Ok(inner.remove_indexed(ids))
    }

    async fn count(&self, now: u64) -> Result<usize, StoreError> {
        let inner = self.lock();
        let expired = inner
            .by_expiry
            .iter()
            .take_while(|(expires_at, _)| *expires_at <= now)
            .count();
        Ok(inner.sessions.len().saturating_sub(expired))
    }

    async fn health(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
