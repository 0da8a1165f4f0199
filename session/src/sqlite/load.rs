//! Loading the file into the memory layer after the store has opened, in batches, while the
//! store already answers (BENCHMARKS.md, "Start to ready").
//!
//! Why it cannot hand out a revoked session: every batch is read and inserted under the connection
//! lock, and `delete`, `delete_user` and eviction change memory and the file under that same lock.
//! A row deleted before a batch is not in the file when the batch reads it; a row deleted after
//! it is removed from memory by the delete itself. The loader never replaces a session memory
//! already holds (a `put` or a lookup got there first with the same or newer data).

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use rusqlite::{Connection, OptionalExtension, params};

use super::{TABLE, delete_ids, from_sql_int, lock, sql_error, to_sql_int};
use crate::{MemoryStore, Session, SessionId, StoreError};

/// Rows decoded per hold of the connection lock: a few milliseconds, so that a login or a lookup
/// waiting for the lock is not held up for long.
const BATCH: i64 = 512;

/// Why the store cannot be used as loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Failure {
    /// The file failed its integrity check: nothing may be written, nothing read.
    Corrupt(String),
    /// The check or the load stopped on another error.
    Unavailable(String),
}

impl Failure {
    pub(super) fn to_error(&self, path: &Path) -> StoreError {
        match self {
            Failure::Corrupt(detail) => StoreError::Corrupt {
                path: path.to_owned(),
                detail: detail.clone(),
            },
            Failure::Unavailable(detail) => StoreError::Unavailable(format!(
                "sessions could not be loaded from {}: {detail}",
                path.display()
            )),
        }
    }
}

/// How the background load ended: the number of undecodable rows, or why it stopped.
pub(super) type Outcome = Result<usize, Failure>;

/// Progress of the check and the load, shared by the store and its loader thread.
#[derive(Debug, Default)]
pub(super) struct Loading {
    /// True once the integrity check passed and the opening writes are done: the store's own
    /// operations may take the connection.
    open: AtomicBool,
    /// True once every row is in memory.
    complete: AtomicBool,
    /// True once the loader has stopped, successfully or not.
    ended: AtomicBool,
    /// Set when the store is dropped: the loader stops at its next batch.
    cancelled: AtomicBool,
    /// Operations waiting for the connection lock: the loader lets them go first between batches,
    /// since a `std` mutex does not queue and the loader would otherwise take it back at once.
    waiting: AtomicUsize,
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct State {
    /// Set when the check failed: every operation refuses.
    refused: Option<Failure>,
    outcome: Option<Outcome>,
}

impl Loading {
    /// True once every row of the file is in memory; until then a lookup that misses memory reads
    /// the file.
    pub(super) fn complete(&self) -> bool {
        self.complete.load(Ordering::Acquire)
    }

    /// True once the loader has stopped; a failed load leaves sessions for lookups to read from
    /// the file.
    pub(super) fn finished(&self) -> bool {
        self.ended.load(Ordering::Acquire)
    }

    /// Take the connection lock for an operation, ahead of the loader's next batch.
    pub(super) fn lock_ahead<'a>(
        &self,
        conn: &'a Mutex<Connection>,
    ) -> std::sync::MutexGuard<'a, Connection> {
        self.waiting.fetch_add(1, Ordering::AcqRel);
        let guard = lock(conn);
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        guard
    }

    /// Between batches: let the operations waiting for the lock take it first.
    fn give_way(&self) {
        for _ in 0..10_000 {
            if self.waiting.load(Ordering::Acquire) == 0 {
                return;
            }
            std::thread::yield_now();
        }
    }

    pub(super) fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Block until the file passed its check (`Ok`) or failed it.
    pub(super) fn wait_open(&self) -> Result<(), Failure> {
        if self.open.load(Ordering::Acquire) {
            return Ok(());
        }
        let mut state = self.state();
        loop {
            if self.open.load(Ordering::Acquire) {
                return Ok(());
            }
            if let Some(failure) = &state.refused {
                return Err(failure.clone());
            }
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Block until the loader has finished.
    pub(super) fn wait(&self) -> Outcome {
        let mut state = self.state();
        loop {
            if let Some(done) = &state.outcome {
                return done.clone();
            }
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// The outcome when the loader has finished, without waiting.
    pub(super) fn outcome(&self) -> Option<Outcome> {
        self.state().outcome.clone()
    }

    fn open(&self) {
        let _state = self.state();
        self.open.store(true, Ordering::Release);
        self.changed.notify_all();
    }

    fn finish(&self, outcome: Outcome) {
        let mut state = self.state();
        if !self.open.load(Ordering::Acquire)
            && let Err(failure) = &outcome
        {
            state.refused = Some(failure.clone());
        }
        if outcome.is_ok() {
            self.complete.store(true, Ordering::Release);
        }
        state.outcome = Some(outcome);
        self.ended.store(true, Ordering::Release);
        self.changed.notify_all();
    }

    /// A loader state for tests: `open` or not, finished with `outcome` or still running.
    #[cfg(test)]
    pub(super) fn for_test(open: bool, outcome: Option<Outcome>) -> Loading {
        let loading = Loading::default();
        if open {
            loading.open();
        }
        if let Some(outcome) = outcome {
            loading.finish(outcome);
        }
        loading
    }
}

/// What the loader does before its first batch, under the connection lock; the store's own
/// operations wait for it ([`Loading::wait_open`]). Returns what `refresh` compares later.
pub(super) type Opening = dyn FnOnce(&Connection) -> Result<super::Seen, StoreError> + Send;

/// Start the loader thread: `opening` (the integrity check and the writes of opening), then the
/// rows in `rowid` order; [`MemoryStore::insert_loaded`] keeps the bound exact whatever the order
/// (the latest-expiring sessions stay).
pub(super) fn spawn(store: &super::SqliteStore, opening: Box<Opening>, now: u64) {
    let path = store.path.clone();
    let conn = Arc::clone(&store.conn);
    let memory = Arc::clone(&store.memory);
    let seen = Arc::clone(&store.seen);
    let loading = Arc::clone(&store.loading);
    let thread_loading = Arc::clone(&loading);
    let started = std::thread::Builder::new()
        .name("portcullis-session-load".into())
        .spawn(move || {
            let outcome = run(&path, &conn, &memory, &seen, &thread_loading, opening, now);
            thread_loading.finish(outcome);
        });
    if let Err(e) = started {
        loading.finish(Err(Failure::Unavailable(format!(
            "cannot start the session loader: {e}"
        ))));
    }
}

fn run(
    path: &Path,
    conn: &Mutex<Connection>,
    memory: &MemoryStore,
    seen: &Mutex<super::Seen>,
    loading: &Loading,
    opening: Box<Opening>,
    now: u64,
) -> Outcome {
    {
        let guard = lock(conn);
        let opened = opening(&guard).map_err(|e| match e {
            StoreError::Corrupt { detail, .. } => Failure::Corrupt(detail),
            other => Failure::Unavailable(other.to_string()),
        })?;
        *seen.lock().unwrap_or_else(PoisonError::into_inner) = opened;
        loading.open();
    }
    loading.give_way();
    let mut after = 0_i64;
    let mut skipped = 0;
    loop {
        if loading.cancelled.load(Ordering::Acquire) {
            return Err(Failure::Unavailable(
                "the store was closed while loading".into(),
            ));
        }
        let guard = lock(conn);
        let batch = batch(&guard, memory, after, now)
            .map_err(|e| Failure::Unavailable(sql_error(path, e).to_string()))?;
        drop(guard);
        skipped += batch.skipped;
        match batch.last_rowid {
            Some(last) => after = last,
            None => return Ok(skipped),
        }
        loading.give_way();
    }
}

struct Batch {
    last_rowid: Option<i64>,
    skipped: usize,
}

/// Read, decode and insert the next rows after `after`, deleting from the file the ones the bound
/// leaves out. Runs under the connection lock.
fn batch(conn: &Connection, memory: &MemoryStore, after: i64, now: u64) -> rusqlite::Result<Batch> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT rowid, id, last_activity, data FROM {TABLE} \
         WHERE rowid > ?1 AND expires_at > ?2 ORDER BY rowid LIMIT ?3"
    ))?;
    let mut rows = stmt.query(params![after, to_sql_int(now), BATCH])?;
    let mut out = Batch {
        last_rowid: None,
        skipped: 0,
    };
    let mut left_out = Vec::new();
    while let Some(row) = rows.next()? {
        out.last_rowid = Some(row.get(0)?);
        let id = row.get_ref(1)?.as_str()?;
        let activity = from_sql_int(row.get(2)?);
        match decode(id, row.get_ref(3)?.as_str()?, activity) {
            Some(session) => {
                let persisted = session.last_activity;
                left_out.extend(memory.insert_loaded(session, persisted));
            }
            None => out.skipped += 1,
        }
    }
    drop(rows);
    drop(stmt);
    delete_ids(conn, &left_out)?;
    Ok(out)
}

/// The session a row holds, when its data decodes and names the row's id; the activity column
/// (written more often than the data) is folded in.
pub(super) fn decode(id: &str, data: &str, activity: u64) -> Option<Session> {
    let mut session = serde_json::from_str::<Session>(data).ok()?;
    if session.id.as_str() != id {
        return None;
    }
    session.touch(activity);
    Some(session)
}

/// While the load runs: the session with `id` read from the file when memory does not hold it
/// yet, and put into memory. Runs under the connection lock.
pub(super) fn lookup(
    conn: &Connection,
    memory: &MemoryStore,
    id: &SessionId,
    now: u64,
) -> rusqlite::Result<Option<Session>> {
    if let Some(session) = memory.fetch(id, now) {
        return Ok(Some(session));
    }
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT last_activity, data FROM {TABLE} WHERE id = ?1 AND expires_at > ?2"
    ))?;
    let row = stmt
        .query_row(params![id.as_str(), to_sql_int(now)], |row| {
            Ok((from_sql_int(row.get(0)?), row.get::<_, String>(1)?))
        })
        .optional()?;
    let Some(session) = row.and_then(|(activity, data)| decode(id.as_str(), &data, activity))
    else {
        return Ok(None);
    };
    let persisted = session.last_activity;
    let left_out = memory.insert_loaded(session, persisted);
    delete_ids(conn, &left_out)?;
    Ok(memory.fetch(id, now))
}
