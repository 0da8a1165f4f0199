//! `SqliteClaimsStore`: outpost sessions in a table of a SQLite file (feature `sqlite`).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use sha2::{Digest, Sha256};

use super::{ClaimsSession, ClaimsStore, refuse_expired};
use crate::sqlite::{from_sql_int, prepare_file, quick_check, sql_error, to_sql_int};
use crate::{SessionId, StoreError};

/// The table holding outpost sessions; the file may also hold the verify server's tables.
const TABLE: &str = "outpost_sessions";

const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Outpost sessions in a SQLite file (`storage.local.path`), so they survive a restart.
///
/// - **Layout.** Table `outpost_sessions`: `id_hash` (SHA-256 of the session id, primary key: the
///   file never holds a usable cookie value), `provider`, `sub`, `sid` (nullable), `expires_at`
///   and `data`. Indexes on `(provider, sub)`, `(provider, sid)` and `expires_at`, so logouts and
///   purges do not scan.
/// - **Reads and writes go to the file**: writes on a blocking thread (`spawn_blocking`; in place
///   outside a tokio runtime), the one writing connection behind a mutex. Every process using the
///   file sees the others' writes at once (WAL mode, a busy timeout of 5 s).
/// - **A session lookup** (`get`, the check's one query) runs in place on one of four
///   read-only connections: a point read by primary key, which in WAL mode never waits
///   for a writer, so it costs the query instead of a hand-off to a blocking thread and back. When
///   every reader is in use, or the file answers busy (it is being recovered), the lookup takes
///   the blocking path instead, and never waits in place.
/// - **Expiry.** A row expired at the caller's `now` is never returned or counted;
///   [`SqliteClaimsStore::purge_expired`] deletes such rows.
/// - **Safety of existing files.** A file that is not a healthy SQLite database is refused with
///   [`StoreError::Corrupt`] naming it, and is never modified. A new file is created with mode
///   `0600` on Unix: `data` holds the IdP's tokens, so protect the file like a key file.
pub struct SqliteClaimsStore {
    path: PathBuf,
    conn: Arc<Mutex<Connection>>,
    readers: Vec<Mutex<Connection>>,
}

/// Read-only connections for lookups in place: one per worker thread of a small machine.
const READERS: usize = 4;

impl fmt::Debug for SqliteClaimsStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteClaimsStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteClaimsStore {
    /// Open (or create) the store at `path`. This blocks: call it at startup or from
    /// `spawn_blocking`.
    ///
    /// Creates the parent folder and the file (mode `0600` on Unix) when missing, runs
    /// `PRAGMA quick_check` before anything is written, switches the file to WAL and creates the
    /// table and its indexes when missing.
    pub fn open(path: &Path) -> Result<SqliteClaimsStore, StoreError> {
        prepare_file(path)?;
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| sql_error(path, e))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| sql_error(path, e))?;
        quick_check(&conn, path)?;
        init_schema(&conn).map_err(|e| sql_error(path, e))?;
        let readers = (0..READERS)
            .map(|_| {
                let reader = Connection::open_with_flags(
                    path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                // Busy means "take the blocking path", never "wait on a worker thread".
                reader.busy_timeout(Duration::ZERO)?;
                Ok(Mutex::new(reader))
            })
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| sql_error(path, e))?;
        Ok(SqliteClaimsStore {
            path: path.to_owned(),
            conn: Arc::new(Mutex::new(conn)),
            readers,
        })
    }

    /// The file this store writes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Delete every session expired at `now`; returns how many rows were deleted.
    pub async fn purge_expired(&self, now: u64) -> Result<usize, StoreError> {
        self.blocking(move |conn| {
            conn.prepare_cached(&format!("DELETE FROM {TABLE} WHERE expires_at <= ?1"))?
                .execute(params![to_sql_int(now)])
        })
        .await
    }

    /// Run `work` with the connection on a blocking thread. Outside a tokio runtime it runs in
    /// place.
    async fn blocking<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        let path = self.path.clone();
        let run = move || {
            // Each critical section is one SQLite call sequence that leaves no Rust state
            // half-updated, so a poisoned lock is safe to reuse.
            let mut guard = conn.lock().unwrap_or_else(PoisonError::into_inner);
            work(&mut guard).map_err(|e| sql_error(&path, e))
        };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => handle
                .spawn_blocking(run)
                .await
                .map_err(|e| StoreError::Unavailable(format!("session store task failed: {e}")))?,
            Err(_) => run(),
        }
    }
}

fn init_schema(conn: &Connection) -> rusqlite::Result<()> {
    // `journal_mode` answers with a row, so it is queried rather than executed.
    conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
    conn.execute_batch(&format!(
        "PRAGMA synchronous = NORMAL;
         CREATE TABLE IF NOT EXISTS {TABLE} (
             id_hash BLOB PRIMARY KEY NOT NULL,
             provider TEXT NOT NULL,
             sub TEXT NOT NULL,
             sid TEXT,
             expires_at INTEGER NOT NULL,
             data TEXT NOT NULL
         );
         CREATE INDEX IF NOT EXISTS {TABLE}_sub ON {TABLE} (provider, sub);
         CREATE INDEX IF NOT EXISTS {TABLE}_sid ON {TABLE} (provider, sid);
         CREATE INDEX IF NOT EXISTS {TABLE}_expires_at ON {TABLE} (expires_at);"
    ))
}

/// The live session whose primary key is `key`.
fn lookup(
    conn: &Connection,
    key: &[u8],
    id: &SessionId,
    now: u64,
) -> rusqlite::Result<Option<ClaimsSession>> {
    conn.prepare_cached(&format!(
        "SELECT provider, sub, sid, expires_at, data FROM {TABLE} \
         WHERE id_hash = ?1 AND expires_at > ?2"
    ))?
    .query_row(params![key, to_sql_int(now)], |row| {
        Ok(ClaimsSession {
            id: id.clone(),
            provider: row.get(0)?,
            sub: row.get(1)?,
            sid: row.get(2)?,
            expires_at: from_sql_int(row.get(3)?),
            data: row.get(4)?,
        })
    })
    .optional()
}

/// The primary key of a session: SHA-256 of its id (256 random bits, so the hash cannot be
/// reversed to a cookie value).
fn id_hash(id: &SessionId) -> Vec<u8> {
    Sha256::digest(id.as_str().as_bytes()).to_vec()
}

#[async_trait]
impl ClaimsStore for SqliteClaimsStore {
    async fn get(&self, id: &SessionId, now: u64) -> Result<Option<ClaimsSession>, StoreError> {
        let key = id_hash(id);
        for reader in &self.readers {
            let Ok(reader) = reader.try_lock() else {
                continue;
            };
            match lookup(&reader, &key, id, now) {
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if matches!(
                        e.code,
                        rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                    ) =>
                {
                    break;
                }
                answer => return answer.map_err(|e| sql_error(&self.path, e)),
            }
        }
        let id = id.clone();
        self.blocking(move |conn| lookup(conn, &key, &id, now))
            .await
    }

    async fn put(&self, session: &ClaimsSession, now: u64) -> Result<(), StoreError> {
        refuse_expired(session, now)?;
        let key = id_hash(&session.id);
        let session = session.clone();
        self.blocking(move |conn| {
            conn.prepare_cached(&format!(
                "INSERT OR REPLACE INTO {TABLE} (id_hash, provider, sub, sid, expires_at, data) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
            ))?
            .execute(params![
                key,
                session.provider,
                session.sub,
                session.sid,
                to_sql_int(session.expires_at),
                session.data,
            ])
            .map(|_| ())
        })
        .await
    }

    async fn delete(&self, id: &SessionId) -> Result<bool, StoreError> {
        let key = id_hash(id);
        self.blocking(move |conn| {
            conn.prepare_cached(&format!("DELETE FROM {TABLE} WHERE id_hash = ?1"))?
                .execute(params![key])
                .map(|n| n > 0)
        })
        .await
    }

    async fn delete_sub(&self, provider: &str, sub: &str) -> Result<usize, StoreError> {
        let (provider, sub) = (provider.to_owned(), sub.to_owned());
        self.blocking(move |conn| {
            conn.prepare_cached(&format!(
                "DELETE FROM {TABLE} WHERE provider = ?1 AND sub = ?2"
            ))?
            .execute(params![provider, sub])
        })
        .await
    }

    async fn delete_sid(&self, provider: &str, sid: &str) -> Result<usize, StoreError> {
        let (provider, sid) = (provider.to_owned(), sid.to_owned());
        self.blocking(move |conn| {
            conn.prepare_cached(&format!(
                "DELETE FROM {TABLE} WHERE provider = ?1 AND sid = ?2"
            ))?
            .execute(params![provider, sid])
        })
        .await
    }

    async fn count(&self, now: u64) -> Result<usize, StoreError> {
        self.blocking(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT COUNT(*) FROM {TABLE} WHERE expires_at > ?1"
            ))?
            .query_row(params![to_sql_int(now)], |row| row.get::<_, i64>(0))
            .map(|n| usize::try_from(n).unwrap_or(0))
        })
        .await
    }

    async fn health(&self) -> Result<(), StoreError> {
        self.blocking(|conn| {
            conn.query_row(&format!("SELECT 1 FROM {TABLE} LIMIT 1"), [], |_| Ok(()))
                .optional()
                .map(|_| ())
        })
        .await
    }
}
