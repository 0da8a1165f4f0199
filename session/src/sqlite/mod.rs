//! `SqliteStore`: sessions in one SQLite file, served from memory (feature `sqlite`).

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, TransactionBehavior, params};

mod file;
mod load;

use file::{init_schema, quick_check_except, table_exists};
pub(crate) use file::{prepare_file, quick_check};

use crate::memory::DEFAULT_MAX_ENTRIES;
use crate::{MemoryStore, Session, SessionId, SessionStore, StoreError};

/// Default for [`SqliteOptions::activity_persist_interval`]: 60 seconds.
pub const DEFAULT_ACTIVITY_PERSIST_INTERVAL: u64 = 60;

/// The table holding sessions. Prefixed, because `storage.local.path` is shared with other data
/// (and may be an existing Authelia database).
const TABLE: &str = "portcullis_sessions";

/// One row counting insertions into and deletions from [`TABLE`] (kept by triggers, so writes of
/// every process count), to tell changes to sessions from other writes to the same file.
const GENERATION: &str = "portcullis_sessions_generation";

const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How often (in seconds of the `now` the caller passes) reads check the file for changes made by
/// another process, such as `portcullis sessions revoke`.
pub const EXTERNAL_CHANGE_CHECK_INTERVAL: u64 = 1;

/// Settings of a [`SqliteStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqliteOptions {
    /// Bound on the number of sessions (memory layer and file), see [`MemoryStore`].
    pub max_entries: usize,
    /// `touch` writes `last_activity` to the file only when it is at least this many seconds newer
    /// than the value last written (0 writes every time).
    pub activity_persist_interval: u64,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            max_entries: DEFAULT_MAX_ENTRIES,
            activity_persist_interval: DEFAULT_ACTIVITY_PERSIST_INTERVAL,
        }
    }
}

/// Sessions persisted in a SQLite file (`storage.local.path`), so they survive a restart.
///
/// - **Reads are served from memory.** Every unexpired session is loaded into a [`MemoryStore`]
///   by a thread that opening starts, in batches, so the store answers at once (a server with
///   100,000 sessions is ready in milliseconds, not the best part of a second). Until the load
///   has finished, a `get` that misses memory reads the file (and keeps what it read); `list`,
///   `count` and `delete_user` wait for the load. A load that fails leaves every miss to the file
///   and makes [`health`](SessionStore::health) fail.
/// - **Writes go through.** `put`, `delete` and `delete_user` update the file (on a blocking thread,
///   the connection behind a mutex) and the memory layer together. `touch` updates memory at once
///   and writes `last_activity` to the file only when it moved by at least
///   [`SqliteOptions::activity_persist_interval`] since the last write.
/// - **Layout.** Table `portcullis_sessions`: `id` (primary key), `username` (lower-cased, indexed),
///   `expires_at` (indexed), `last_activity`, and `data`, the [`Session`] as JSON. The id is stored
///   as is, not hashed, because reloading must rebuild [`Session::id`]; the file is therefore
///   created with mode `0600` on Unix and must be protected like a key file.
/// - **Changes by other processes.** `get`, `list` and `count` check, at most once per
///   [`EXTERNAL_CHANGE_CHECK_INTERVAL`] of their `now`, whether another connection committed to the
///   file (`PRAGMA data_version`, one cheap query) and, if so, whether sessions were inserted or
///   deleted (a generation counter kept by triggers, so writes to other tables of the file, such as
///   the regulation records, do not count). When they were, the memory layer is reconciled with
///   the file: sessions whose rows are gone are dropped (so `portcullis sessions revoke` reaches a
///   running server within about a second) and rows added by others are loaded. A reconcile reads
///   the ids from the primary-key index and only the rows memory lacks.
/// - **Safety of existing files.** An existing file that is not a healthy SQLite database is refused
///   with [`StoreError::Corrupt`] naming it, and is never modified, deleted or replaced.
pub struct SqliteStore {
    path: PathBuf,
    memory: Arc<MemoryStore>,
    conn: Arc<Mutex<Connection>>,
    activity_persist_interval: u64,
    loading: Arc<load::Loading>,
    /// `PRAGMA data_version` and the generation as last seen; used under the connection lock.
    seen: Arc<Mutex<Seen>>,
    /// The `now` of the last external-change check.
    last_check: AtomicU64,
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.loading.cancel();
    }
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .field("memory", &self.memory)
            .field("activity_persist_interval", &self.activity_persist_interval)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Open (or create) the store at `path` with default [`SqliteOptions`], treating records
    /// expired at `now` as gone. This blocks: call it at startup or from `spawn_blocking`.
    pub fn open(path: &Path, now: u64) -> Result<SqliteStore, StoreError> {
        Self::open_with(path, SqliteOptions::default(), now)
    }

    /// Open (or create) the store at `path`, treating records expired at `now` as gone.
    ///
    /// Creates the parent folder and the file (mode `0600` on Unix) when missing, runs
    /// `PRAGMA quick_check` before anything is written, switches the file to WAL, creates the table
    /// (it exists when this returns), deletes expired records, and starts loading the rest into
    /// memory (the latest-expiring `options.max_entries` of them). For a file that already holds
    /// sessions, the check of the sessions table, the expiry and the load run on the loader thread,
    /// and the store's operations wait for the check. A record that does not decode is skipped and
    /// left in place (see [`SqliteStore::wait_loaded`]).
    pub fn open_with(
        path: &Path,
        options: SqliteOptions,
        now: u64,
    ) -> Result<SqliteStore, StoreError> {
        prepare_file(path)?;
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| sql_error(path, e))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| sql_error(path, e))?;
        // A file that holds sessions already: its sessions table, the large part of it, is checked
        // by the loader before the store writes anything, the rest of the file now, so that a file
        // that is not a database, or whose other tables (written by the stores that share it) are
        // damaged, is refused at once. Any other file is checked whole and given the table now,
        // so that the table exists when this returns.
        let holds_sessions = table_exists(&conn, TABLE).map_err(|e| sql_error(path, e))?;
        if holds_sessions {
            quick_check_except(&conn, path, TABLE)?;
        } else {
            quick_check(&conn, path)?;
            init_schema(&conn).map_err(|e| sql_error(path, e))?;
        }
        let store = SqliteStore {
            path: path.to_owned(),
            memory: Arc::new(MemoryStore::with_max_entries(options.max_entries)),
            conn: Arc::new(Mutex::new(conn)),
            activity_persist_interval: options.activity_persist_interval,
            loading: Arc::default(),
            // Set by the opening step below, before any operation can reach `refresh`.
            seen: Arc::new(Mutex::new(Seen {
                data_version: 0,
                generation: 0,
            })),
            last_check: AtomicU64::new(now),
        };
        let opening_path = path.to_owned();
        let memory = Arc::clone(&store.memory);
        load::spawn(
            &store,
            Box::new(move |conn| {
                if holds_sessions {
                    quick_check(conn, &opening_path)?;
                }
                let sql = |e| sql_error(&opening_path, e);
                init_schema(conn).map_err(sql)?;
                prepare_load(conn, &memory, now).map_err(sql)?;
                // Read before the rows, so that a change another process commits while they load
                // is reconciled by the next check.
                Ok(Seen {
                    data_version: data_version(conn).map_err(sql)?,
                    generation: generation(conn).map_err(sql)?,
                })
            }),
            now,
        );
        Ok(store)
    }

    /// The file this store writes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Wait until the file is loaded into memory; returns how many records could not be decoded
    /// (left in the file; worth a warning in the log). Blocks: see [`loaded`](Self::loaded).
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when the load stopped on an error; lookups then keep reading
    /// the file for what memory lacks.
    pub fn wait_loaded(&self) -> Result<usize, StoreError> {
        self.loading
            .wait()
            .map_err(|failure| failure.to_error(&self.path))
    }

    /// How many sessions memory holds now (all of them once loaded); O(1), unlike
    /// [`count`](SessionStore::count), which judges each one's expiry.
    pub fn held(&self) -> usize {
        self.memory.len()
    }

    /// [`wait_loaded`](Self::wait_loaded) without blocking the async runtime.
    ///
    /// # Errors
    ///
    /// As [`wait_loaded`](Self::wait_loaded).
    pub async fn loaded(&self) -> Result<usize, StoreError> {
        let outcome = match self.loading.outcome() {
            Some(outcome) => outcome,
            None => {
                let loading = Arc::clone(&self.loading);
                match tokio::runtime::Handle::try_current() {
                    Ok(handle) => handle
                        .spawn_blocking(move || loading.wait())
                        .await
                        .map_err(|e| {
                            StoreError::Unavailable(format!("session store task failed: {e}"))
                        })?,
                    Err(_) => loading.wait(),
                }
            }
        };
        outcome.map_err(|failure| failure.to_error(&self.path))
    }

    /// The `touch` persistence threshold in seconds.
    pub fn activity_persist_interval(&self) -> u64 {
        self.activity_persist_interval
    }

    /// Drop every session expired at `now`, from memory and from the file; returns how many were
    /// dropped from memory.
    pub async fn purge_expired(&self, now: u64) -> Result<usize, StoreError> {
        let purged = self.memory.purge_expired_ids(now).len();
        self.blocking_write(move |conn, _| {
            conn.execute(
                &format!("DELETE FROM {TABLE} WHERE expires_at <= ?1"),
                params![to_sql_int(now)],
            )
            .map(|_| ())
        })
        .await?;
        Ok(purged)
    }

    /// Reconcile the memory layer with the file now if another connection changed the file since
    /// the last check (see the type's documentation); returns how many sessions were dropped from
    /// memory because their rows are gone. `get`, `list` and `count` do this on their own, at most
    /// once per [`EXTERNAL_CHANGE_CHECK_INTERVAL`].
    pub async fn refresh(&self, now: u64) -> Result<usize, StoreError> {
        let seen = Arc::clone(&self.seen);
        let loading = Arc::clone(&self.loading);
        self.blocking(move |conn, memory| {
            let mut seen = seen.lock().unwrap_or_else(PoisonError::into_inner);
            let version = data_version(conn)?;
            if version == seen.data_version {
                return Ok(0);
            }
            seen.data_version = version;
            // Read before the ids: a change made after this read is caught by the next check.
            let current = generation(conn)?;
            if current == seen.generation {
                return Ok(0);
            }
            seen.generation = current;
            reconcile(conn, memory, now, loading.finished())
        })
        .await
    }

    /// [`refresh`](Self::refresh), unless one ran less than [`EXTERNAL_CHANGE_CHECK_INTERVAL`]
    /// ago (by `now`). Concurrent callers do not queue: one of them checks, the others read memory.
    async fn refresh_throttled(&self, now: u64) -> Result<(), StoreError> {
        let last = self.last_check.load(Ordering::Acquire);
        if now < last.saturating_add(EXTERNAL_CHANGE_CHECK_INTERVAL)
            || self
                .last_check
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
        {
            return Ok(());
        }
        self.refresh(now).await.map(|_| ())
    }

    /// Run `work` with the connection (and the memory layer) on a blocking thread. Outside a tokio
    /// runtime it runs in place.
    async fn blocking<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, &MemoryStore) -> rusqlite::Result<T> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        let memory = Arc::clone(&self.memory);
        let path = self.path.clone();
        let loading = Arc::clone(&self.loading);
        let run = move || {
            loading
                .wait_open()
                .map_err(|failure| failure.to_error(&path))?;
            let mut guard = loading.lock_ahead(&conn);
            work(&mut guard, &memory).map_err(|e| sql_error(&path, e))
        };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => handle
                .spawn_blocking(run)
                .await
                .map_err(|e| StoreError::Unavailable(format!("session store task failed: {e}")))?,
            Err(_) => run(),
        }
    }

    /// [`blocking`](Self::blocking) for work that inserts or deletes sessions. It runs in one
    /// immediate transaction with the generation read before and after, so that when nobody else
    /// changed sessions since this store last looked, the generation's move is known to be this
    /// store's own (a login, a logout) and the next check does not reconcile: a reconcile reads
    /// every id and, with a million sessions, holds the memory layer for the best part of a second.
    async fn blocking_write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &MemoryStore) -> rusqlite::Result<T> + Send + 'static,
    {
        let seen = Arc::clone(&self.seen);
        self.blocking(move |conn, memory| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let before = generation(&tx)?;
            let done = work(&tx, memory)?;
            let after = generation(&tx)?;
            tx.commit()?;
            let mut seen = seen.lock().unwrap_or_else(PoisonError::into_inner);
            if seen.generation == before {
                seen.generation = after;
            }
            Ok(done)
        })
        .await
    }
}

#[async_trait]
impl SessionStore for SqliteStore {
    async fn get(&self, id: &SessionId, now: u64) -> Result<Option<Session>, StoreError> {
        self.refresh_throttled(now).await?;
        if let Some(session) = self.memory.fetch(id, now) {
            return Ok(Some(session));
        }
        if self.loading.complete() {
            return Ok(None);
        }
        // Not loaded yet (or the load failed): the file decides.
        let id = id.clone();
        self.blocking(move |conn, memory| load::lookup(conn, memory, &id, now))
            .await
    }

    async fn put(&self, session: &Session) -> Result<(), StoreError> {
        let data = serde_json::to_string(session).map_err(|e| StoreError::Codec(e.to_string()))?;
        let session = session.clone();
        self.blocking_write(move |conn, memory| {
            conn.execute(
                &format!(
                    "INSERT OR REPLACE INTO {TABLE} (id, username, expires_at, last_activity, data) \
                     VALUES (?1, ?2, ?3, ?4, ?5)"
                ),
                params![
                    session.id.as_str(),
                    session.identity.username.to_lowercase(),
                    to_sql_int(session.expires_at),
                    to_sql_int(session.last_activity),
                    data,
                ],
            )?;
            let last_activity = session.last_activity;
            let evicted = memory.insert(session, last_activity);
            // Best effort: the put itself succeeded in both layers. Rows left behind are evicted
            // again when the file is next opened (the bound applies there too) or purged once
            // expired.
            let _ = delete_ids(conn, &evicted);
            Ok(())
        })
        .await
    }

    async fn touch(&self, id: &SessionId, last_activity: u64) -> Result<(), StoreError> {
        let Some(value) =
            self.memory
                .record_activity(id, last_activity, Some(self.activity_persist_interval))
        else {
            return Ok(());
        };
        let id = id.clone();
        self.blocking(move |conn, _| {
            conn.execute(
                &format!("UPDATE {TABLE} SET last_activity = MAX(last_activity, ?1) WHERE id = ?2"),
                params![to_sql_int(value), id.as_str()],
            )
            .map(|_| ())
        })
        .await
    }

    async fn delete(&self, id: &SessionId) -> Result<(), StoreError> {
        // Revoke in memory at once, and again under the connection lock so that a concurrent
        // `put` of the same id cannot bring it back.
        self.memory.remove(id);
        let id = id.clone();
        self.blocking_write(move |conn, memory| {
            memory.remove(&id);
            conn.execute(
                &format!("DELETE FROM {TABLE} WHERE id = ?1"),
                params![id.as_str()],
            )
            .map(|_| ())
        })
        .await
    }

    async fn delete_user(&self, username: &str) -> Result<usize, StoreError> {
        // The count is of sessions in memory, so it waits for them; the deletes do not depend on
        // the load having succeeded.
        let _ = self.loaded().await;
        let first = self.memory.remove_user(username).len();
        let key = username.to_lowercase();
        let username = username.to_owned();
        let second = self
            .blocking_write(move |conn, memory| {
                let removed = memory.remove_user(&username).len();
                conn.execute(
                    &format!("DELETE FROM {TABLE} WHERE username = ?1"),
                    params![key],
                )?;
                Ok(removed)
            })
            .await?;
        Ok(first + second)
    }

    async fn list(&self, username: Option<&str>, now: u64) -> Result<Vec<Session>, StoreError> {
        self.loaded().await?;
        self.refresh_throttled(now).await?;
        Ok(self.memory.sessions(username, now))
    }

    async fn count(&self, now: u64) -> Result<usize, StoreError> {
        self.loaded().await?;
        self.refresh_throttled(now).await?;
        Ok(self.memory.live_count(now))
    }

    async fn health(&self) -> Result<(), StoreError> {
        if let Some(Err(failure)) = self.loading.outcome() {
            return Err(failure.to_error(&self.path));
        }
        self.blocking(|conn, _| {
            conn.query_row(&format!("SELECT 1 FROM {TABLE} LIMIT 1"), [], |_| Ok(()))
                .optional()
                .map(|_| ())
        })
        .await
    }
}

/// What [`SqliteStore::refresh`] last saw of the file.
#[derive(Debug, Clone, Copy)]
struct Seen {
    data_version: i64,
    generation: i64,
}

// Every critical section on the connection is a single SQLite call sequence that leaves no Rust
// state half-updated, so a poisoned lock is safe to reuse.
fn lock(conn: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    conn.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Delete expired rows and size the memory layer for the rest, which [`load`] then reads.
fn prepare_load(conn: &Connection, memory: &MemoryStore, now: u64) -> rusqlite::Result<()> {
    conn.execute(
        &format!("DELETE FROM {TABLE} WHERE expires_at <= ?1"),
        params![to_sql_int(now)],
    )?;
    let rows: i64 = conn.query_row(&format!("SELECT COUNT(*) FROM {TABLE}"), [], |row| {
        row.get(0)
    })?;
    memory.reserve(usize::try_from(rows).unwrap_or(0).min(memory.max_entries()));
    Ok(())
}

/// The insert/delete counter of the sessions table.
fn generation(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row(
        &format!("SELECT generation FROM {GENERATION} WHERE id = 0"),
        [],
        |row| row.get(0),
    )
}

/// `PRAGMA data_version`: changes whenever another connection commits to the file.
fn data_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA data_version", [], |row| row.get(0))
}

/// Make the memory layer match the file after another connection wrote to it: drop the sessions
/// whose rows are gone, load the unexpired rows memory does not hold. Returns how many were
/// dropped. Runs under the connection lock, so this store's own writes are not interleaved.
///
/// The ids are read from the primary-key index alone; only rows memory lacks are read in full.
fn reconcile(
    conn: &Connection,
    memory: &MemoryStore,
    now: u64,
    load_missing: bool,
) -> rusqlite::Result<usize> {
    let mut stmt = conn.prepare_cached(&format!("SELECT id FROM {TABLE}"))?;
    let mut rows = stmt.query([])?;
    let mut ids = HashSet::new();
    while let Some(row) = rows.next()? {
        if let Some(id) = SessionId::parse(row.get_ref(0)?.as_str()?) {
            ids.insert(id);
        }
    }
    drop(rows);
    drop(stmt);
    let (dropped, missing) = memory.sync_ids(&ids);
    if !load_missing {
        // The running load reads them.
        return Ok(dropped);
    }
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT last_activity, data FROM {TABLE} WHERE id = ?1 AND expires_at > ?2"
    ))?;
    let mut evicted = Vec::new();
    for id in missing {
        let row = stmt
            .query_row(params![id.as_str(), to_sql_int(now)], |row| {
                Ok((from_sql_int(row.get(0)?), row.get::<_, String>(1)?))
            })
            .optional()?;
        if let Some(session) =
            row.and_then(|(activity, data)| load::decode(id.as_str(), &data, activity))
        {
            let persisted = session.last_activity;
            evicted.extend(memory.insert_loaded(session, persisted));
        }
    }
    drop(stmt);
    // Best effort, as in `put`: the bound also applies to the file.
    let _ = delete_ids(conn, &evicted);
    Ok(dropped)
}

fn delete_ids(conn: &Connection, ids: &[SessionId]) -> rusqlite::Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let mut stmt = conn.prepare_cached(&format!("DELETE FROM {TABLE} WHERE id = ?1"))?;
    for id in ids {
        stmt.execute(params![id.as_str()])?;
    }
    Ok(())
}

pub(crate) fn to_sql_int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

pub(crate) fn from_sql_int(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

pub(crate) fn sql_error(path: &Path, err: rusqlite::Error) -> StoreError {
    match err.sqlite_error_code() {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => StoreError::Corrupt {
            path: path.to_owned(),
            detail: err.to_string(),
        },
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Timeout,
        Some(
            ErrorCode::CannotOpen
            | ErrorCode::ReadOnly
            | ErrorCode::PermissionDenied
            | ErrorCode::SystemIoFailure
            | ErrorCode::DiskFull,
        ) => StoreError::Unavailable(format!("{}: {err}", path.display())),
        _ => StoreError::Backend(format!("{}: {err}", path.display())),
    }
}

#[cfg(test)]
mod load_tests;
#[cfg(test)]
pub(crate) mod tests;
