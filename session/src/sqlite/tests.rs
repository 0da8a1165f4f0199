//! The SQLite store: persistence, reopening, other processes' changes, damaged files.
use super::*;
use crate::Lifetime;
use portcullis_core::{AuthLevel, Identity};
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::sync::atomic::{AtomicUsize, Ordering};

pub(super) const T0: u64 = 1_700_000_000;

/// A scratch folder removed on drop.
pub(crate) struct Scratch(pub(crate) PathBuf);

impl Scratch {
    pub(crate) fn new(name: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "portcullis-session-{}-{name}-{n}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(super) fn make(rng: &mut StdRng, user: &str, now: u64, expiration: u64) -> Session {
    let lifetime = Lifetime {
        expiration,
        ..Lifetime::default()
    };
    Session::new(
        SessionId::generate(rng),
        "example.com",
        Identity::user(user, AuthLevel::TwoFactor).with_groups(["admins"]),
        false,
        now,
        &lifetime,
    )
}

/// Open and wait for the load, for tests about what happens after it.
pub(super) fn open(path: &Path, now: u64) -> SqliteStore {
    let store = SqliteStore::open_with(path, SqliteOptions::default(), now).unwrap();
    store.wait_loaded().unwrap();
    store
}

#[tokio::test]
async fn sessions_survive_reopen() {
    let dir = Scratch::new("reopen");
    let path = dir.path("nested/folder/db.sqlite3");
    let mut rng = StdRng::seed_from_u64(1);
    let s = make(&mut rng, "Alice", T0, 3600);
    let gone = make(&mut rng, "bob", T0, 3600);
    {
        let store = SqliteStore::open(&path, T0).unwrap();
        assert_eq!(store.path(), path.as_path());
        store.put(&s).await.unwrap();
        store.put(&gone).await.unwrap();
        store.delete(&gone.id).await.unwrap();
        store.health().await.unwrap();
    }
    let store = open(&path, T0 + 10);
    assert_eq!(store.get(&s.id, T0 + 10).await.unwrap(), Some(s.clone()));
    assert_eq!(store.get(&gone.id, T0 + 10).await.unwrap(), None);
    assert_eq!(store.count(T0 + 10).await.unwrap(), 1);
    assert_eq!(
        store.list(Some("alice"), T0 + 10).await.unwrap(),
        vec![s.clone()]
    );
    assert_eq!(store.loaded().await.unwrap(), 0);
    assert_eq!(store.delete_user("ALICE").await.unwrap(), 1);
    drop(store);
    let store = open(&path, T0 + 10);
    assert_eq!(
        store.count(T0 + 10).await.unwrap(),
        0,
        "delete_user reached the file"
    );
}

#[tokio::test]
async fn expired_sessions_are_not_loaded_and_are_purged() {
    let dir = Scratch::new("expiry");
    let path = dir.path("db.sqlite3");
    let mut rng = StdRng::seed_from_u64(2);
    let short = make(&mut rng, "a", T0, 10);
    let long = make(&mut rng, "a", T0, 1000);
    {
        let store = open(&path, T0);
        store.put(&short).await.unwrap();
        store.put(&long).await.unwrap();
        assert_eq!(store.get(&short.id, T0 + 10).await.unwrap(), None);
    }
    {
        let store = open(&path, T0 + 10);
        assert_eq!(store.count(T0 + 10).await.unwrap(), 1);
        assert_eq!(store.purge_expired(T0 + 1000).await.unwrap(), 1);
    }
    let raw = Connection::open(&path).unwrap();
    let rows: i64 = raw
        .query_row(&format!("SELECT count(*) FROM {TABLE}"), [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 0);
}

#[tokio::test]
async fn touch_is_throttled_on_disk_but_immediate_in_memory() {
    let dir = Scratch::new("touch");
    let path = dir.path("db.sqlite3");
    let mut rng = StdRng::seed_from_u64(3);
    let s = make(&mut rng, "a", T0, 3600);
    let reopened_activity = |now| {
        let store = open(&path, now);
        store.memory.fetch(&s.id, now).unwrap().last_activity
    };
    {
        let store = open(&path, T0);
        assert_eq!(store.activity_persist_interval(), 60);
        store.put(&s).await.unwrap();
        store.touch(&s.id, T0 + 59).await.unwrap();
        assert_eq!(
            store
                .get(&s.id, T0 + 59)
                .await
                .unwrap()
                .unwrap()
                .last_activity,
            T0 + 59
        );
    }
    assert_eq!(
        reopened_activity(T0 + 100),
        T0,
        "under the threshold: not written"
    );
    {
        let store = open(&path, T0);
        store.touch(&s.id, T0 + 60).await.unwrap();
        store.touch(&s.id, T0 + 90).await.unwrap();
        assert_eq!(
            store.get(&s.id, T0).await.unwrap().unwrap().last_activity,
            T0 + 90
        );
    }
    assert_eq!(
        reopened_activity(T0 + 100),
        T0 + 60,
        "past the threshold: written"
    );
    {
        let options = SqliteOptions {
            activity_persist_interval: 0,
            ..SqliteOptions::default()
        };
        let store = SqliteStore::open_with(&path, options, T0).unwrap();
        store.wait_loaded().unwrap();
        store.touch(&s.id, T0 + 61).await.unwrap();
        // A missing session is a no-op.
        store
            .touch(&SessionId::generate(&mut rng), T0)
            .await
            .unwrap();
    }
    assert_eq!(
        reopened_activity(T0 + 100),
        T0 + 61,
        "interval 0 writes every time"
    );
}

#[test]
fn corrupt_file_is_refused_and_left_untouched() {
    let dir = Scratch::new("corrupt");
    let path = dir.path("db.sqlite3");
    let garbage: Vec<u8> = b"this is not a database, it is a text file\n".repeat(200);
    std::fs::write(&path, &garbage).unwrap();
    let err = SqliteStore::open(&path, T0).unwrap_err();
    match &err {
        StoreError::Corrupt { path: p, .. } => assert_eq!(p, &path),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), garbage, "file unchanged");
    let mut names: Vec<_> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(
        names,
        vec![std::ffi::OsString::from("db.sqlite3")],
        "no side files"
    );
}

#[test]
fn damaged_database_pages_are_refused() {
    let dir = Scratch::new("damaged");
    let path = dir.path("db.sqlite3");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "PRAGMA page_size = 1024; CREATE TABLE t (x TEXT); CREATE INDEX t_x ON t (x);",
        )
        .unwrap();
        for i in 0..500 {
            conn.execute("INSERT INTO t VALUES (?1)", params![format!("row {i:05}")])
                .unwrap();
        }
    }
    // Keep the header, scribble over later pages.
    let mut bytes = std::fs::read(&path).unwrap();
    assert!(bytes.len() > 8 * 1024);
    for b in &mut bytes[2048..6144] {
        *b = 0xA5;
    }
    std::fs::write(&path, &bytes).unwrap();
    let err = SqliteStore::open(&path, T0).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "file unchanged");
}

#[test]
fn unwritable_and_odd_paths_are_errors() {
    let dir = Scratch::new("unwritable");
    let file = dir.path("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let under_file = file.join("sub/db.sqlite3");
    let err = SqliteStore::open(&under_file, T0).unwrap_err();
    assert!(matches!(err, StoreError::Io { .. }), "{err:?}");
    assert_eq!(std::fs::read(&file).unwrap(), b"x");

    let folder = dir.path("a-folder");
    std::fs::create_dir(&folder).unwrap();
    let err = SqliteStore::open(&folder, T0).unwrap_err();
    assert!(matches!(err, StoreError::Io { .. }), "{err:?}");
}

#[cfg(unix)]
#[test]
fn new_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = Scratch::new("mode");
    let path = dir.path("db.sqlite3");
    let _store = SqliteStore::open(&path, T0).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[tokio::test]
async fn existing_database_of_another_application_is_shared() {
    let dir = Scratch::new("shared");
    let path = dir.path("db.sqlite3");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE other (x INTEGER); INSERT INTO other VALUES (7);")
            .unwrap();
    }
    let mut rng = StdRng::seed_from_u64(4);
    let s = make(&mut rng, "a", T0, 3600);
    {
        let store = open(&path, T0);
        store.put(&s).await.unwrap();
    }
    let conn = Connection::open(&path).unwrap();
    let x: i64 = conn
        .query_row("SELECT x FROM other", [], |r| r.get(0))
        .unwrap();
    assert_eq!(x, 7);
}

#[tokio::test]
async fn undecodable_rows_are_skipped_not_deleted() {
    let dir = Scratch::new("skipped");
    let path = dir.path("db.sqlite3");
    let mut rng = StdRng::seed_from_u64(5);
    let s = make(&mut rng, "a", T0, 3600);
    let other_id = SessionId::generate(&mut rng);
    {
        let store = open(&path, T0);
        store.put(&s).await.unwrap();
    }
    {
        let conn = Connection::open(&path).unwrap();
        let insert = format!("INSERT INTO {TABLE} VALUES (?1, 'a', ?2, 0, ?3)");
        conn.execute(&insert, params!["bad", to_sql_int(T0 + 3600), "{not json"])
            .unwrap();
        // Valid JSON filed under another id: not trusted.
        let json = serde_json::to_string(&s).unwrap();
        conn.execute(
            &insert,
            params![other_id.as_str(), to_sql_int(T0 + 3600), json],
        )
        .unwrap();
    }
    let store = open(&path, T0);
    assert_eq!(store.wait_loaded().unwrap(), 2);
    assert_eq!(store.count(T0).await.unwrap(), 1);
    assert_eq!(store.get(&other_id, T0).await.unwrap(), None);
    drop(store);
    let conn = Connection::open(&path).unwrap();
    let rows: i64 = conn
        .query_row(&format!("SELECT count(*) FROM {TABLE}"), [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 3);
}

#[tokio::test]
async fn bound_applies_to_memory_and_file() {
    let dir = Scratch::new("bound");
    let path = dir.path("db.sqlite3");
    let mut rng = StdRng::seed_from_u64(6);
    let sessions: Vec<Session> = (0..5).map(|i| make(&mut rng, "u", T0, 1000 + i)).collect();
    {
        let store = open(&path, T0);
        for s in &sessions {
            store.put(s).await.unwrap();
        }
    }
    let options = SqliteOptions {
        max_entries: 2,
        ..SqliteOptions::default()
    };
    {
        let store = SqliteStore::open_with(&path, options, T0).unwrap();
        let kept: Vec<SessionId> = store
            .list(None, T0)
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.id)
            .collect();
        assert_eq!(kept.len(), 2);
        assert!(kept.contains(&sessions[3].id) && kept.contains(&sessions[4].id));
        store.put(&make(&mut rng, "u", T0, 5000)).await.unwrap();
        assert_eq!(store.count(T0).await.unwrap(), 2);
    }
    let conn = Connection::open(&path).unwrap();
    let rows: i64 = conn
        .query_row(&format!("SELECT count(*) FROM {TABLE}"), [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 2);
}

#[tokio::test]
async fn concurrent_writers_through_a_trait_object() {
    let dir = Scratch::new("concurrent");
    let path = dir.path("db.sqlite3");
    let store: Arc<dyn SessionStore> = Arc::new(open(&path, T0));
    let mut rng = StdRng::seed_from_u64(7);
    let sessions: Vec<Session> = (0..32)
        .map(|i| make(&mut rng, &format!("u{}", i % 4), T0, 3600))
        .collect();
    let mut tasks = Vec::new();
    for s in sessions.clone() {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move { store.put(&s).await }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(store.count(T0).await.unwrap(), 32);
    assert_eq!(store.delete_user("U1").await.unwrap(), 8);
    drop(store);
    let store = open(&path, T0);
    assert_eq!(store.count(T0).await.unwrap(), 24);
}

#[tokio::test]
async fn changes_by_another_process_reach_the_memory_layer_after_the_throttle() {
    let dir = Scratch::new("external");
    let path = dir.path("db.sqlite3");
    let mut rng = StdRng::seed_from_u64(9);
    let alice = make(&mut rng, "alice", T0, 3600);
    let bob = make(&mut rng, "bob", T0, 3600);
    // The server's handle and, say, the CLI's, on one file.
    let server = open(&path, T0);
    server.put(&alice).await.unwrap();
    server.put(&bob).await.unwrap();
    let cli = open(&path, T0);
    assert_eq!(
        cli.list(Some("alice"), T0).await.unwrap(),
        vec![alice.clone()]
    );
    assert_eq!(cli.delete_user("Alice").await.unwrap(), 1);
    let carol = make(&mut rng, "carol", T0, 3600);
    cli.put(&carol).await.unwrap();

    // Within the throttle window the server answers from memory without looking at the file.
    assert_eq!(
        server.get(&alice.id, T0).await.unwrap(),
        Some(alice.clone())
    );
    assert_eq!(server.get(&carol.id, T0).await.unwrap(), None);
    // One interval later the first read notices the change: the revoked session is gone,
    // the others' session is loaded, and untouched sessions stay.
    let later = T0 + EXTERNAL_CHANGE_CHECK_INTERVAL;
    assert_eq!(server.get(&alice.id, later).await.unwrap(), None);
    assert_eq!(
        server.get(&carol.id, later).await.unwrap(),
        Some(carol.clone())
    );
    assert_eq!(server.get(&bob.id, later).await.unwrap(), Some(bob.clone()));
    assert_eq!(server.count(later).await.unwrap(), 2);

    // Its own writes do not look like external changes, and a quiet file costs no reconcile.
    server.delete(&bob.id).await.unwrap();
    assert_eq!(server.refresh(later + 5).await.unwrap(), 0);
    assert_eq!(
        server.get(&carol.id, later + 10).await.unwrap(),
        Some(carol.clone())
    );

    // Concurrent checks in one window: one of them reconciles, none fails.
    let server = Arc::new(server);
    cli.delete(&carol.id).await.unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let server = Arc::clone(&server);
            let id = carol.id.clone();
            tokio::spawn(async move { server.get(&id, later + 20).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(server.get(&carol.id, later + 20).await.unwrap(), None);
}

#[tokio::test]
async fn writes_to_other_tables_do_not_cause_a_reconcile() {
    let dir = Scratch::new("generation");
    let path = dir.path("db.sqlite3");
    let mut rng = StdRng::seed_from_u64(10);
    let server = open(&path, T0);
    // A session only memory holds: a reconcile would drop it, so it shows whether one ran.
    let ghost = make(&mut rng, "ghost", T0, 3600);
    server.memory.insert(ghost.clone(), T0);
    let raw = Connection::open(&path).unwrap();
    let before = generation(&raw).unwrap();
    raw.execute_batch("CREATE TABLE other (x INTEGER); INSERT INTO other VALUES (1);")
        .unwrap();
    assert_eq!(generation(&raw).unwrap(), before);
    assert_eq!(server.refresh(T0 + 1).await.unwrap(), 0);
    assert_eq!(
        server.get(&ghost.id, T0 + 1).await.unwrap(),
        Some(ghost.clone())
    );

    // A session written by another connection moves the generation: reconcile.
    let other = open(&path, T0);
    let real = make(&mut rng, "real", T0, 3600);
    other.put(&real).await.unwrap();
    assert!(generation(&raw).unwrap() > before);
    assert_eq!(
        server.refresh(T0 + 2).await.unwrap(),
        1,
        "the ghost is dropped"
    );
    assert_eq!(server.get(&ghost.id, T0 + 2).await.unwrap(), None);
    assert_eq!(server.get(&real.id, T0 + 2).await.unwrap(), Some(real));
}

#[test]
fn works_outside_a_runtime() {
    let dir = Scratch::new("no-runtime");
    let path = dir.path("db.sqlite3");
    let store = open(&path, T0);
    let mut rng = StdRng::seed_from_u64(8);
    let s = make(&mut rng, "a", T0, 3600);
    // No tokio runtime here: the blocking work runs in place, so one poll completes it.
    let mut put = std::pin::pin!(store.put(&s));
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    assert!(matches!(
        put.as_mut().poll(&mut cx),
        std::task::Poll::Ready(Ok(()))
    ));
    assert_eq!(store.memory.fetch(&s.id, T0), Some(s.clone()));
}

/// Opening judges expiry at the `now` it is given, not at the system clock: a session still valid
/// at that time is kept, one expired at it is purged.
#[tokio::test]
async fn opening_judges_expiry_at_the_given_now() {
    let dir = Scratch::new("given-now");
    let path = dir.path("db.sqlite3");
    let mut rng = StdRng::seed_from_u64(7);
    // T0 lies years before the real clock: these sessions are long expired by it.
    let kept = make(&mut rng, "alice", T0, 3600);
    let gone = make(&mut rng, "bob", T0, 60);
    {
        let store = SqliteStore::open(&path, T0).unwrap();
        store.put(&kept).await.unwrap();
        store.put(&gone).await.unwrap();
    }
    let store = SqliteStore::open(&path, T0 + 600).unwrap();
    assert_eq!(
        store.get(&kept.id, T0 + 600).await.unwrap().as_ref(),
        Some(&kept)
    );
    assert_eq!(store.get(&gone.id, T0 + 600).await.unwrap(), None);
}
