//! The SQLite store while it loads: lookups, revocations, failures and the integrity check during
//! the background load, and what a login costs the next check.
use super::tests::{Scratch, T0, make, open};
use super::*;
use rand::SeedableRng;
use rand::rngs::StdRng;

/// Writes `count` sessions of users `u0`… to a new file at `path`, returning them.
async fn seed(path: &Path, count: usize, rng: &mut StdRng) -> Vec<Session> {
    let store = open(path, T0);
    let mut sessions = Vec::with_capacity(count);
    for i in 0..count {
        let s = make(rng, &format!("u{}", i % 7), T0, 3600 + (i as u64 % 50));
        store.put(&s).await.unwrap();
        sessions.push(s);
    }
    sessions
}

/// The store answers while the load runs: a lookup that misses memory reads the file, and a
/// session revoked during the load is never brought back by it. The assertions hold at whatever
/// point of the load each call lands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_and_revocations_during_the_load_agree_with_the_file() {
    let dir = Scratch::new("during-load");
    let path = dir.path("db.sqlite3");
    let mut rng = StdRng::seed_from_u64(11);
    let sessions = seed(&path, 3000, &mut rng).await;
    let store = SqliteStore::open(&path, T0).unwrap();
    let revoked: Vec<&Session> = sessions.iter().rev().step_by(3).collect();
    for (i, s) in sessions.iter().enumerate().rev().step_by(3) {
        store.delete(&s.id).await.unwrap();
        let kept = &sessions[i - 1];
        assert_eq!(store.get(&kept.id, T0).await.unwrap().as_ref(), Some(kept));
        assert_eq!(
            store.get(&s.id, T0).await.unwrap(),
            None,
            "session {i} revoked"
        );
    }
    store.delete_user("u3").await.unwrap();
    assert_eq!(store.wait_loaded().unwrap(), 0);
    for s in &revoked {
        assert_eq!(store.get(&s.id, T0).await.unwrap(), None);
    }
    let expected: usize = sessions
        .iter()
        .filter(|s| !revoked.iter().any(|r| r.id == s.id) && s.identity.username != "u3")
        .count();
    assert_eq!(store.count(T0).await.unwrap(), expected);
    assert_eq!(store.memory.len(), expected);
}

/// Deterministically before the load: a store whose loader has not run reads misses from the
/// file, keeps what it read in memory, and refuses what the file does not hold or holds expired.
#[tokio::test]
async fn a_miss_before_the_load_reads_the_file() {
    let dir = Scratch::new("before-load");
    let path = dir.path("db.sqlite3");
    let mut rng = StdRng::seed_from_u64(12);
    let sessions = seed(&path, 3, &mut rng).await;
    let mut store = open(&path, T0);
    store.loading = Arc::new(load::Loading::for_test(true, None));
    for s in &sessions {
        store.memory.remove(&s.id);
    }
    assert_eq!(
        store.get(&sessions[0].id, T0).await.unwrap().as_ref(),
        Some(&sessions[0])
    );
    assert_eq!(store.memory.len(), 1, "what was read is kept");
    assert_eq!(
        store.get(&sessions[1].id, T0 + 4000).await.unwrap(),
        None,
        "expired in the file"
    );
    assert_eq!(
        store.get(&SessionId::generate(&mut rng), T0).await.unwrap(),
        None
    );
    store.delete(&sessions[2].id).await.unwrap();
    assert_eq!(store.get(&sessions[2].id, T0).await.unwrap(), None);
}

/// A load that stopped on an error: lookups keep reading the file, revocation still works, and
/// what needs every session refuses rather than answer from a partial memory.
#[tokio::test]
async fn a_failed_load_fails_health_and_leaves_lookups_to_the_file() {
    let dir = Scratch::new("failed-load");
    let path = dir.path("db.sqlite3");
    let mut rng = StdRng::seed_from_u64(13);
    let sessions = seed(&path, 2, &mut rng).await;
    let mut store = open(&path, T0);
    store.loading = Arc::new(load::Loading::for_test(
        true,
        Some(Err(load::Failure::Unavailable("disk I/O error".into()))),
    ));
    store.memory.remove(&sessions[0].id);
    assert!(
        matches!(store.health().await, Err(StoreError::Unavailable(m)) if m.contains("disk I/O error"))
    );
    assert!(store.count(T0).await.is_err());
    assert!(store.list(None, T0).await.is_err());
    assert_eq!(
        store.get(&sessions[0].id, T0).await.unwrap().as_ref(),
        Some(&sessions[0])
    );
    store.delete(&sessions[1].id).await.unwrap();
    assert_eq!(store.get(&sessions[1].id, T0).await.unwrap(), None);
}

/// Dropping the store stops its loader: the file can be opened again at once and loads fully.
#[tokio::test]
async fn a_store_dropped_while_loading_stops_its_loader() {
    let dir = Scratch::new("drop-load");
    let path = dir.path("db.sqlite3");
    let mut rng = StdRng::seed_from_u64(14);
    let sessions = seed(&path, 2000, &mut rng).await;
    drop(SqliteStore::open(&path, T0).unwrap());
    let store = open(&path, T0);
    assert_eq!(store.count(T0).await.unwrap(), sessions.len());
}

/// Damage in the sessions table is found by the check the loader runs before the store's first
/// write: opening answers at once, then every operation refuses, nothing is written and the
/// file is left as it was.
#[tokio::test]
async fn a_damaged_sessions_table_is_refused_before_anything_is_written() {
    let dir = Scratch::new("damaged-sessions");
    let path = dir.path("db.sqlite3");
    let mut rng = StdRng::seed_from_u64(15);
    let sessions = seed(&path, 2000, &mut rng).await;
    let mut bytes = std::fs::read(&path).unwrap();
    let len = bytes.len();
    assert!(len > 256 * 1024, "{len}");
    for b in &mut bytes[len * 6 / 10..len * 7 / 10] {
        *b = 0xA5;
    }
    std::fs::write(&path, &bytes).unwrap();
    let store = SqliteStore::open(&path, T0).unwrap();
    let err = store.wait_loaded().unwrap_err();
    assert!(
        matches!(&err, StoreError::Corrupt { path: p, .. } if p == &path),
        "{err:?}"
    );
    assert!(matches!(
        store.put(&make(&mut rng, "new", T0, 60)).await,
        Err(StoreError::Corrupt { .. })
    ));
    assert!(matches!(
        store.get(&sessions[0].id, T0).await,
        Err(StoreError::Corrupt { .. })
    ));
    assert!(matches!(
        store.delete(&sessions[0].id).await,
        Err(StoreError::Corrupt { .. })
    ));
    assert!(store.health().await.is_err());
    assert!(store.count(T0).await.is_err());
    drop(store);
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "file unchanged");
}

/// A login followed by another connection's write to another table (the regulator recording it)
/// costs no reconcile: the generation moved by this store's own insert. When another connection
/// also inserted a session, the next check still reconciles.
#[tokio::test]
async fn own_writes_followed_by_others_writes_elsewhere_cause_no_reconcile() {
    let dir = Scratch::new("own-writes");
    let path = dir.path("db.sqlite3");
    let mut rng = StdRng::seed_from_u64(16);
    let server = open(&path, T0);
    let ghost = make(&mut rng, "ghost", T0, 3600);
    server.memory.insert(ghost.clone(), T0);
    let raw = Connection::open(&path).unwrap();
    raw.execute_batch("CREATE TABLE regulation (x INTEGER);")
        .unwrap();
    assert_eq!(server.refresh(T0).await.unwrap(), 0);

    let login = make(&mut rng, "alice", T0, 3600);
    server.put(&login).await.unwrap();
    raw.execute("INSERT INTO regulation VALUES (1)", [])
        .unwrap();
    assert_eq!(server.refresh(T0 + 1).await.unwrap(), 0, "no reconcile");
    assert_eq!(
        server.get(&ghost.id, T0 + 1).await.unwrap().as_ref(),
        Some(&ghost)
    );

    // Another connection's session between this store's write and the next check.
    let other = make(&mut rng, "bob", T0, 3600);
    server.delete(&login.id).await.unwrap();
    open(&path, T0).put(&other).await.unwrap();
    server.put(&login).await.unwrap();
    assert_eq!(
        server.refresh(T0 + 2).await.unwrap(),
        1,
        "the ghost is dropped"
    );
    assert_eq!(
        server.get(&other.id, T0 + 2).await.unwrap().as_ref(),
        Some(&other)
    );
    assert_eq!(
        server.get(&login.id, T0 + 2).await.unwrap().as_ref(),
        Some(&login)
    );
}
