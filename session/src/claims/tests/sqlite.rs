//! `SqliteClaimsStore`: the conformance suite, reopening, damaged files, the file's contents.

use std::future::Future;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use rusqlite::Connection;

use super::conformance::{self, T0, session};
use crate::claims::{ClaimsStore, SqliteClaimsStore};
use crate::sqlite::tests::Scratch;
use crate::{SqliteStore, StoreError};

fn rows(path: &Path) -> i64 {
    Connection::open(path)
        .unwrap()
        .query_row("SELECT count(*) FROM outpost_sessions", [], |r| r.get(0))
        .unwrap()
}

#[tokio::test]
async fn conforms() {
    let dir = Scratch::new("claims-conformance");
    let n = AtomicUsize::new(0);
    conformance::run(&mut || {
        let path = dir.path(&format!("db-{}.sqlite3", n.fetch_add(1, Ordering::Relaxed)));
        Box::new(SqliteClaimsStore::open(&path).unwrap())
    })
    .await;
}

#[tokio::test]
async fn sessions_survive_closing_and_reopening() {
    let dir = Scratch::new("claims-reopen");
    let path = dir.path("nested/folder/outpost.sqlite3");
    let a1 = session(1, "grafana", "alice", Some("idp-1"), T0 + 3600);
    let a2 = session(2, "grafana", "alice", Some("idp-2"), T0 + 3600);
    let b = session(3, "wiki", "bob", None, T0 + 7200);
    {
        let store = SqliteClaimsStore::open(&path).unwrap();
        assert_eq!(store.path(), path);
        for s in [&a1, &a2, &b] {
            store.put(s, T0).await.unwrap();
        }
    }
    {
        let store = SqliteClaimsStore::open(&path).unwrap();
        for s in [&a1, &a2, &b] {
            assert_eq!(store.get(&s.id, T0 + 1).await.unwrap().as_ref(), Some(s));
        }
        assert_eq!(store.count(T0).await.unwrap(), 3);
        // The indexes survive too.
        assert_eq!(store.delete_sid("grafana", "idp-2").await.unwrap(), 1);
    }
    let store = SqliteClaimsStore::open(&path).unwrap();
    assert_eq!(store.delete_sub("grafana", "alice").await.unwrap(), 1);
    assert_eq!(store.count(T0).await.unwrap(), 1);
    assert_eq!(store.get(&b.id, T0).await.unwrap(), Some(b));
}

#[test]
fn a_file_that_is_not_a_database_is_refused_and_left_untouched() {
    let dir = Scratch::new("claims-corrupt");
    let path = dir.path("outpost.sqlite3");
    let garbage: Vec<u8> = b"this is not a database, it is a text file\n".repeat(200);
    std::fs::write(&path, &garbage).unwrap();
    let err = SqliteClaimsStore::open(&path).unwrap_err();
    match &err {
        StoreError::Corrupt { path: p, .. } => assert_eq!(p, &path),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert_eq!(std::fs::read(&path).unwrap(), garbage, "file unchanged");
    let names: Vec<_> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names,
        vec![std::ffi::OsString::from("outpost.sqlite3")],
        "no side files"
    );

    let folder = dir.path("a-folder");
    std::fs::create_dir(&folder).unwrap();
    assert!(matches!(
        SqliteClaimsStore::open(&folder),
        Err(StoreError::Io { .. })
    ));
}

#[tokio::test]
async fn purge_deletes_expired_rows_only() {
    let dir = Scratch::new("claims-purge");
    let path = dir.path("outpost.sqlite3");
    let store = SqliteClaimsStore::open(&path).unwrap();
    for i in 0..4 {
        let s = session(i, "p", "u", None, T0 + 10 * (i + 1));
        store.put(&s, T0).await.unwrap();
    }
    assert_eq!(store.purge_expired(T0 + 9).await.unwrap(), 0);
    assert_eq!(store.purge_expired(T0 + 20).await.unwrap(), 2);
    assert_eq!(rows(&path), 2);
    assert_eq!(store.count(T0 + 20).await.unwrap(), 2);
    assert_eq!(store.purge_expired(T0 + 40).await.unwrap(), 2);
    assert_eq!(rows(&path), 0);
}

#[tokio::test]
async fn the_file_holds_no_session_id_and_the_queries_use_the_indexes() {
    let dir = Scratch::new("claims-layout");
    let path = dir.path("outpost.sqlite3");
    let s = session(1, "grafana", "alice", Some("idp-1"), T0 + 3600);
    {
        let store = SqliteClaimsStore::open(&path).unwrap();
        store.put(&s, T0).await.unwrap();
    }
    let conn = Connection::open(&path).unwrap();
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let id = s.id.as_str().as_bytes();
    assert!(
        !bytes.windows(id.len()).any(|w| w == id),
        "only the id's hash is stored"
    );

    for (query, index) in [
        (
            "DELETE FROM outpost_sessions WHERE provider = 'p' AND sub = 's'",
            "outpost_sessions_sub",
        ),
        (
            "DELETE FROM outpost_sessions WHERE provider = 'p' AND sid = 's'",
            "outpost_sessions_sid",
        ),
        (
            "DELETE FROM outpost_sessions WHERE expires_at <= 5",
            "outpost_sessions_expires_at",
        ),
        (
            "SELECT COUNT(*) FROM outpost_sessions WHERE expires_at > 5",
            "outpost_sessions_expires_at",
        ),
    ] {
        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {query}"))
            .unwrap()
            .query_map([], |row| row.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            plan.iter().any(|step| step.contains(index)),
            "{query}: {plan:?}"
        );
    }
}

#[tokio::test]
async fn shares_a_file_with_the_session_store() {
    let dir = Scratch::new("claims-shared");
    let path = dir.path("storage.sqlite3");
    let verify = SqliteStore::open(&path, T0).unwrap();
    let outpost = SqliteClaimsStore::open(&path).unwrap();
    let s = session(1, "grafana", "alice", None, T0 + 3600);
    outpost.put(&s, T0).await.unwrap();
    assert_eq!(crate::SessionStore::count(&verify, T0).await.unwrap(), 0);
    drop((verify, outpost));
    let verify = SqliteStore::open(&path, T0).unwrap();
    assert_eq!(crate::SessionStore::count(&verify, T0).await.unwrap(), 0);
    let outpost = SqliteClaimsStore::open(&path).unwrap();
    assert_eq!(outpost.get(&s.id, T0).await.unwrap(), Some(s));
}

#[tokio::test]
async fn two_handles_on_one_file_see_each_other_at_once() {
    let dir = Scratch::new("claims-two-handles");
    let path = dir.path("outpost.sqlite3");
    let a = SqliteClaimsStore::open(&path).unwrap();
    let b = SqliteClaimsStore::open(&path).unwrap();
    let s = session(1, "grafana", "alice", Some("idp-1"), T0 + 3600);
    a.put(&s, T0).await.unwrap();
    assert_eq!(b.get(&s.id, T0).await.unwrap(), Some(s.clone()));
    assert_eq!(b.delete_sid("grafana", "idp-1").await.unwrap(), 1);
    assert_eq!(a.get(&s.id, T0).await.unwrap(), None);
}

/// A lookup runs in place on a read-only connection: it must answer while another process holds
/// the file's write lock (WAL readers do not wait for writers), see that process's commit at
/// once, and never hang a worker thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lookups_answer_during_another_writer_and_see_its_commit_at_once() {
    let dir = Scratch::new("claims-readers");
    let path = dir.path("outpost.sqlite3");
    let store = std::sync::Arc::new(SqliteClaimsStore::open(&path).unwrap());
    let s = session(1, "grafana", "alice", None, T0 + 3600);
    store.put(&s, T0).await.unwrap();
    let mut other = Connection::open(&path).unwrap();
    let writing = other
        .transaction_with_behavior(rusqlite::TransactionBehavior::Exclusive)
        .unwrap();
    writing.execute("DELETE FROM outpost_sessions", []).unwrap();
    // Uncommitted: still there, and answered without waiting for the lock.
    let answered = tokio::time::timeout(std::time::Duration::from_secs(1), store.get(&s.id, T0))
        .await
        .expect("a lookup never waits for a writer");
    assert_eq!(answered.unwrap(), Some(s.clone()));
    writing.commit().unwrap();
    assert_eq!(store.get(&s.id, T0).await.unwrap(), None);
    // Lookups on four threads at once, 64 each: readers are sometimes all taken, and those
    // lookups take the blocking path; every one answers the same.
    store.put(&s, T0).await.unwrap();
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let (store, s) = (store.clone(), s.clone());
            tokio::spawn(async move {
                for _ in 0..64 {
                    assert_eq!(store.get(&s.id, T0).await.unwrap(), Some(s.clone()));
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}

#[cfg(unix)]
#[test]
fn a_new_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = Scratch::new("claims-mode");
    let path = dir.path("outpost.sqlite3");
    let _store = SqliteClaimsStore::open(&path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn works_outside_a_runtime() {
    let dir = Scratch::new("claims-no-runtime");
    let store = SqliteClaimsStore::open(&dir.path("outpost.sqlite3")).unwrap();
    let s = session(1, "p", "u", None, T0 + 3600);
    // No tokio runtime here: the blocking work runs in place, so one poll completes it.
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let mut put = std::pin::pin!(store.put(&s, T0));
    assert!(matches!(
        put.as_mut().poll(&mut cx),
        std::task::Poll::Ready(Ok(()))
    ));
    let mut get = std::pin::pin!(store.get(&s.id, T0));
    assert!(matches!(
        get.as_mut().poll(&mut cx),
        std::task::Poll::Ready(Ok(Some(ref got))) if *got == s
    ));
}
