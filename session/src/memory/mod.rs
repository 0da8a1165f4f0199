//! `MemoryStore`: sessions in a bounded in-process map (no I/O, no tokio).
//!
//! Sessions are held packed, because a server keeps every session in memory (the SQLite store serves
//! reads from this map): the id as its 32 bytes, the times inline, and the text of the session
//! (cookie domain, username, display name, emails, groups) in one allocation. A session of a typical
//! user takes about 430 bytes of process memory here, indexes and allocator overhead included,
//! instead of about 1.3 KB as a `Session` value with its strings and a copy of its id in every index
//! (BENCHMARKS.md).

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::{self, Write as _};
use std::hash::{Hash, Hasher};
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use portcullis_core::{AuthLevel, Identity};
use subtle::ConstantTimeEq;

use crate::{SESSION_ID_BYTES, Session, SessionId, SessionStore, StoreError};

/// Default bound on the number of sessions a [`MemoryStore`] holds.
pub const DEFAULT_MAX_ENTRIES: usize = 1_000_000;

/// A session id as the 32 bytes it encodes. Equality runs in constant time, as [`SessionId`]'s.
#[derive(Clone, Copy)]
struct Key([u8; SESSION_ID_BYTES]);

impl Key {
    fn of(id: &SessionId) -> Key {
        Key(id.to_bytes())
    }

    fn id(&self) -> SessionId {
        SessionId::from_bytes(&self.0)
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for Key {}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.cmp(&other.0)
    }
}

/// The identity fields most sessions leave empty, kept apart so that they cost one pointer when
/// empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Rare {
    entitlements: Vec<String>,
    uid: String,
    client_id: Option<String>,
    attributes: portcullis_core::Attributes,
    group_attributes: BTreeMap<String, portcullis_core::Attributes>,
}

/// One stored session, packed, plus the `last_activity` the persistent layer (if any) last wrote.
#[derive(Debug)]
struct Entry {
    /// Cookie domain, username, display name, emails and groups: see [`Text`].
    text: Box<str>,
    rare: Option<Box<Rare>>,
    created_at: u64,
    last_activity: u64,
    expires_at: u64,
    persisted_activity: u64,
    authenticated_at: Option<u64>,
    refreshed_at: u64,
    level: AuthLevel,
    remember_me: bool,
}

/// The packed text: every string as `<byte length>:<text>`, every list as `<count>#` followed by its
/// strings, in the order cookie domain, username, display name, emails, groups.
struct Text<'a> {
    rest: &'a str,
}

impl<'a> Text<'a> {
    /// Decimal digits up to `end`. One pass over the bytes: every check unpacks a session, and
    /// `split_once` with `str::parse` cost it about 900 instructions.
    fn number(&mut self, end: u8) -> Option<usize> {
        let mut value: usize = 0;
        for (at, &byte) in self.rest.as_bytes().iter().enumerate() {
            if byte == end {
                if at == 0 {
                    return None;
                }
                self.rest = self.rest.get(at + 1..)?;
                return Some(value);
            }
            let digit = byte.checked_sub(b'0').filter(|d| *d <= 9)?;
            value = value.checked_mul(10)?.checked_add(usize::from(digit))?;
        }
        None
    }

    fn string(&mut self) -> Option<&'a str> {
        let len = self.number(b':')?;
        let value = self.rest.get(..len)?;
        self.rest = self.rest.get(len..)?;
        Some(value)
    }

    fn list(&mut self) -> Option<Vec<String>> {
        let count = self.number(b'#')?;
        // Sized once (each string takes at least two bytes of the text, so a damaged count
        // cannot reserve more than the text could hold).
        let mut list = Vec::with_capacity(count.min(self.rest.len() / 2));
        for _ in 0..count {
            list.push(self.string()?.to_owned());
        }
        Some(list)
    }
}

fn push_string(text: &mut String, value: &str) {
    let _ = write!(text, "{}:", value.len());
    text.push_str(value);
}

fn push_list(text: &mut String, values: &[String]) {
    let _ = write!(text, "{}#", values.len());
    for value in values {
        push_string(text, value);
    }
}

impl Entry {
    fn pack(session: Session, persisted_activity: u64) -> Entry {
        let identity = session.identity;
        let mut text = String::with_capacity(
            16 + session.cookie_domain.len()
                + identity.username.len()
                + identity.display_name.len()
                + identity.emails.iter().map(|e| e.len() + 4).sum::<usize>()
                + identity.groups.iter().map(|g| g.len() + 4).sum::<usize>(),
        );
        push_string(&mut text, &session.cookie_domain);
        push_string(&mut text, &identity.username);
        push_string(&mut text, &identity.display_name);
        push_list(&mut text, &identity.emails);
        push_list(&mut text, &identity.groups);
        let rare = Rare {
            entitlements: identity.entitlements,
            uid: identity.uid,
            client_id: identity.client_id,
            attributes: identity.attributes,
            group_attributes: identity.group_attributes,
        };
        Entry {
            text: text.into_boxed_str(),
            rare: (rare != Rare::default()).then(|| Box::new(rare)),
            created_at: session.created_at,
            last_activity: session.last_activity,
            expires_at: session.expires_at,
            persisted_activity,
            authenticated_at: identity.authenticated_at,
            refreshed_at: session.refreshed_at,
            level: identity.level,
            remember_me: session.remember_me,
        }
    }

    /// The username, without unpacking the rest.
    fn username(&self) -> &str {
        let mut text = Text { rest: &self.text };
        let _domain = text.string();
        text.string().unwrap_or("")
    }

    fn unpack(&self, key: &Key) -> Session {
        self.unpack_as(key.id())
    }

    /// [`Entry::unpack`] with the id at hand (saves encoding it again).
    fn unpack_as(&self, id: SessionId) -> Session {
        let mut text = Text { rest: &self.text };
        // The text was written by `pack`; a part that cannot be read is left empty.
        let cookie_domain = text.string().unwrap_or("").to_owned();
        let username = text.string().unwrap_or("").to_owned();
        let display_name = text.string().unwrap_or("").to_owned();
        let emails = text.list().unwrap_or_default();
        let groups = text.list().unwrap_or_default();
        let rare = self.rare.as_deref().cloned().unwrap_or_default();
        Session {
            id,
            cookie_domain,
            identity: Identity {
                username,
                display_name,
                emails,
                groups,
                entitlements: rare.entitlements,
                uid: rare.uid,
                client_id: rare.client_id,
                level: self.level,
                authenticated_at: self.authenticated_at,
                attributes: rare.attributes,
                group_attributes: rare.group_attributes,
            },
            created_at: self.created_at,
            last_activity: self.last_activity,
            expires_at: self.expires_at,
            remember_me: self.remember_me,
            refreshed_at: self.refreshed_at,
        }
    }

    fn is_expired(&self, now: u64) -> bool {
        now >= self.expires_at
    }
}

/// The sessions of one user: most users have one.
#[derive(Debug)]
enum Ids {
    One(Key),
    Many(Vec<Key>),
}

impl Ids {
    fn iter(&self) -> std::slice::Iter<'_, Key> {
        match self {
            Ids::One(key) => std::slice::from_ref(key).iter(),
            Ids::Many(keys) => keys.iter(),
        }
    }

    fn insert(&mut self, key: Key) {
        match self {
            Ids::One(one) if *one == key => {}
            Ids::One(one) => *self = Ids::Many(vec![*one, key]),
            Ids::Many(keys) if keys.contains(&key) => {}
            Ids::Many(keys) => keys.push(key),
        }
    }

    /// Remove `key`; true when none is left.
    fn remove(&mut self, key: &Key) -> bool {
        match self {
            Ids::One(one) => one == key,
            Ids::Many(keys) => {
                keys.retain(|k| k != key);
                match keys.as_slice() {
                    [] => return true,
                    [only] => {
                        let only = *only;
                        *self = Ids::One(only);
                    }
                    _ => {}
                }
                false
            }
        }
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(…)")
    }
}

#[derive(Debug, Default)]
struct Inner {
    /// foldhash, not SipHash: keys are 32 random bytes the server drew, so nobody can pick keys
    /// that collide, and the check path looks one up every time (BENCHMARKS.md, sixth round).
    sessions: HashMap<Key, Entry, foldhash::fast::RandomState>,
    /// Lower-cased username → that user's sessions.
    by_user: HashMap<Box<str>, Ids>,
    /// (expires_at, id) of every session, soonest first: expiry purge and eviction.
    by_expiry: BTreeSet<(u64, Key)>,
}

impl Inner {
    fn unlink(&mut self, key: &Key) -> Option<Entry> {
        let entry = self.sessions.remove(key)?;
        let user = user_key(entry.username());
        if let Some(ids) = self.by_user.get_mut(user.as_str())
            && ids.remove(key)
        {
            self.by_user.remove(user.as_str());
        }
        self.by_expiry.remove(&(entry.expires_at, *key));
        Some(entry)
    }

    fn link(&mut self, key: Key, entry: Entry) {
        let user = user_key(entry.username());
        match self.by_user.get_mut(user.as_str()) {
            Some(ids) => ids.insert(key),
            None => {
                self.by_user.insert(user.into_boxed_str(), Ids::One(key));
            }
        }
        self.by_expiry.insert((entry.expires_at, key));
        self.sessions.insert(key, entry);
    }

    fn expired_keys(&self, now: u64) -> Vec<Key> {
        self.by_expiry
            .iter()
            .take_while(|(expires_at, _)| *expires_at <= now)
            .map(|(_, key)| *key)
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
/// - The number of sessions is bounded (docs/reference/security.md R9.6): inserting a new session into a full store
///   first evicts the session that expires soonest (expired ones go first).
/// - Sessions are held packed (see the module documentation); reads rebuild the [`Session`].
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

    /// Make room for `additional` more sessions at once (a store about to load many), so the map
    /// does not grow, and briefly hold two tables, along the way.
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    pub(crate) fn reserve(&self, additional: usize) {
        let additional = additional.min(self.max_entries);
        self.lock().sessions.reserve(additional);
    }

    // Every critical section below only moves values between maps and cannot leave the indexes
    // half-updated, so a poisoned lock (a panic elsewhere while holding it) is safe to reuse.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn purge_expired_ids(&self, now: u64) -> Vec<SessionId> {
        let mut inner = self.lock();
        let keys = inner.expired_keys(now);
        for key in &keys {
            inner.unlink(key);
        }
        keys.iter().map(Key::id).collect()
    }

    /// The unexpired session with this id; an expired one is dropped.
    pub(crate) fn fetch(&self, id: &SessionId, now: u64) -> Option<Session> {
        let key = Key::of(id);
        let mut inner = self.lock();
        let entry = inner.sessions.get(&key)?;
        if entry.is_expired(now) {
            inner.unlink(&key);
            return None;
        }
        Some(entry.unpack_as(id.clone()))
    }

    /// Insert or replace; returns the ids evicted to stay within the bound.
    pub(crate) fn insert(&self, session: Session, persisted_activity: u64) -> Vec<SessionId> {
        let key = Key::of(&session.id);
        let entry = Entry::pack(session, persisted_activity);
        let mut inner = self.lock();
        let mut evicted = Vec::new();
        if inner.unlink(&key).is_none() {
            while inner.sessions.len() >= self.max_entries {
                let Some((_, victim)) = inner.by_expiry.first().copied() else {
                    break;
                };
                inner.unlink(&victim);
                evicted.push(victim.id());
            }
        }
        inner.link(key, entry);
        evicted
    }

    /// Insert a session read from a persistent layer, unless one with its id is held already (that
    /// one is as new or newer). When the store is full, the session is kept only if it expires
    /// later than the soonest-expiring one held, which is evicted; so whatever the order sessions
    /// are loaded in, the latest-expiring ones stay. Returns the ids left out: evicted ones, or
    /// this session's own when it does not fit.
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    pub(crate) fn insert_loaded(
        &self,
        session: Session,
        persisted_activity: u64,
    ) -> Vec<SessionId> {
        let key = Key::of(&session.id);
        let mut inner = self.lock();
        if inner.sessions.contains_key(&key) {
            return Vec::new();
        }
        let mut evicted = Vec::new();
        while inner.sessions.len() >= self.max_entries {
            match inner.by_expiry.first().copied() {
                Some((expires_at, victim)) if expires_at < session.expires_at => {
                    inner.unlink(&victim);
                    evicted.push(victim.id());
                }
                _ => return vec![session.id],
            }
        }
        inner.link(key, Entry::pack(session, persisted_activity));
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
        let key = Key::of(id);
        let mut inner = self.lock();
        let entry = inner.sessions.get_mut(&key)?;
        entry.last_activity = entry.last_activity.max(at);
        let interval = persist_after?;
        let current = entry.last_activity;
        if current >= entry.persisted_activity.saturating_add(interval) {
            entry.persisted_activity = current;
            Some(current)
        } else {
            None
        }
    }

    /// Remove one session; true when it was present.
    pub(crate) fn remove(&self, id: &SessionId) -> bool {
        self.lock().unlink(&Key::of(id)).is_some()
    }

    /// Remove every session of `username` (case-insensitively); returns their ids.
    pub(crate) fn remove_user(&self, username: &str) -> Vec<SessionId> {
        let mut inner = self.lock();
        let keys: Vec<Key> = inner
            .by_user
            .get(user_key(username).as_str())
            .map(|ids| ids.iter().copied().collect())
            .unwrap_or_default();
        for key in &keys {
            inner.unlink(key);
        }
        keys.iter().map(Key::id).collect()
    }

    /// Make the held ids match `ids` (the ids of a persistent layer): drop every session whose id
    /// is not in `ids`, and return how many were dropped and which of `ids` are not held.
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    pub(crate) fn sync_ids(&self, ids: &HashSet<SessionId>) -> (usize, Vec<SessionId>) {
        let wanted: HashSet<Key> = ids.iter().map(Key::of).collect();
        let mut inner = self.lock();
        let gone: Vec<Key> = inner
            .sessions
            .keys()
            .filter(|key| !wanted.contains(*key))
            .copied()
            .collect();
        for key in &gone {
            inner.unlink(key);
        }
        let missing = ids
            .iter()
            .filter(|id| !inner.sessions.contains_key(&Key::of(id)))
            .cloned()
            .collect();
        (gone.len(), missing)
    }

    /// Unexpired sessions of one user or of everyone, by creation time then id.
    pub(crate) fn sessions(&self, username: Option<&str>, now: u64) -> Vec<Session> {
        let inner = self.lock();
        let unpack = |key: &Key| {
            inner
                .sessions
                .get(key)
                .filter(|entry| !entry.is_expired(now))
                .map(|entry| entry.unpack(key))
        };
        let mut out: Vec<Session> = match username {
            Some(username) => inner
                .by_user
                .get(user_key(username).as_str())
                .into_iter()
                .flat_map(Ids::iter)
                .filter_map(unpack)
                .collect(),
            None => inner.sessions.keys().filter_map(unpack).collect(),
        };
        drop(inner);
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
mod tests;
