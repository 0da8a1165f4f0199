//! Session store lookups with 100,000 sessions: `MemoryStore`, `SqliteStore` (feature `sqlite`) and
//! `RedisStore` (feature `redis`, against a `redis-server` started on a free loopback port; skipped
//! with a note when none can be started).
//!
//! `cargo bench -p portcullis-session --all-features`

// Tests wait for real processes and sockets on the wall clock; the clock rule is for the servers.
#![allow(clippy::disallowed_methods)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::{SystemTime, UNIX_EPOCH};

use criterion::{Criterion, criterion_group, criterion_main};
use portcullis_core::{AuthLevel, Identity};
use portcullis_session::{Lifetime, MemoryStore, Session, SessionId, SessionStore};
use rand::SeedableRng;
use rand::rngs::StdRng;

const SESSIONS: usize = 100_000;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Session `i`: one of 5,000 users with two groups and an email, expiring in 12 hours.
fn session(rng: &mut StdRng, i: usize, now: u64) -> Session {
    let lifetime = Lifetime {
        expiration: 12 * 3600,
        ..Lifetime::default()
    };
    let user = format!("user{}", i % 5000);
    let identity = Identity::user(user.clone(), AuthLevel::OneFactor)
        .with_groups(["dev".to_owned(), format!("team{}", i % 50)])
        .with_emails([format!("{user}@example.com")])
        .with_display_name(format!("User {}", i % 5000));
    Session::new(
        SessionId::generate(rng),
        "example.com",
        identity,
        false,
        now,
        &lifetime,
    )
}

fn sessions(now: u64) -> Vec<Session> {
    let mut rng = StdRng::seed_from_u64(7);
    (0..SESSIONS).map(|i| session(&mut rng, i, now)).collect()
}

/// Poll a future that never waits (stores used outside a runtime do their work in place).
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = future.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::yield_now();
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn lookups(
    c: &mut Criterion,
    runtime: &tokio::runtime::Runtime,
    name: &str,
    store: &dyn SessionStore,
    all: &[Session],
    now: u64,
) {
    let hit = &all[SESSIONS / 2].id;
    let miss = SessionId::generate(&mut StdRng::seed_from_u64(99));
    assert!(runtime.block_on(store.get(hit, now)).unwrap().is_some());
    assert!(runtime.block_on(store.get(&miss, now)).unwrap().is_none());
    let mut group = c.benchmark_group(format!("session_store/{name}_100k"));
    group.bench_function("get_hit", |b| {
        b.to_async(runtime).iter(|| store.get(black_box(hit), now))
    });
    group.bench_function("get_miss", |b| {
        b.to_async(runtime)
            .iter(|| store.get(black_box(&miss), now))
    });
    // What the cookie check does after a hit: record activity (written through at most once a
    // minute by the persistent stores).
    group.bench_function("touch", |b| {
        b.to_async(runtime)
            .iter(|| store.touch(black_box(hit), now))
    });
    group.finish();
}

fn bench(c: &mut Criterion) {
    let now = now();
    let all = sessions(now);

    let memory = MemoryStore::new();
    for s in &all {
        ready(memory.put(s)).unwrap();
    }
    lookups(c, &runtime(), "memory", &memory, &all, now);
    drop(memory);

    #[cfg(feature = "sqlite")]
    sqlite(c, &all, now);

    #[cfg(feature = "redis")]
    redis(c, &all, now);
    #[cfg(not(feature = "redis"))]
    eprintln!("NOTE: RedisStore skipped: build with --features redis (or --all-features)");
}

#[cfg(feature = "sqlite")]
fn sqlite(c: &mut Criterion, all: &[Session], now: u64) {
    use portcullis_session::{SqliteOptions, SqliteStore};
    let dir = std::env::temp_dir().join(format!("portcullis-bench-sqlite-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let path = dir.join("sessions.sqlite3");
    {
        // Filled outside a runtime, where each put runs in place.
        let store = SqliteStore::open_with(&path, SqliteOptions::default(), now).unwrap();
        for s in all {
            ready(store.put(s)).unwrap();
        }
    }
    // A restart with 100,000 sessions: how soon the store answers (the last session written, read
    // from the file while the load runs), and how long the background load takes.
    let mut group = c.benchmark_group("sqlite_reopen");
    group.sample_size(10);
    let last = all.last().map(|s| s.id.clone()).unwrap();
    // Dropping a store stops its loader at the next batch, so the iterations do not pile up.
    group.bench_function("open_then_first_get", |b| {
        b.iter(|| {
            let store = SqliteStore::open_with(&path, SqliteOptions::default(), now).unwrap();
            assert!(ready(store.get(&last, now)).unwrap().is_some());
        });
    });
    group.bench_function("open_then_loaded", |b| {
        b.iter(|| {
            let store = SqliteStore::open_with(&path, SqliteOptions::default(), now).unwrap();
            assert_eq!(store.wait_loaded().unwrap(), 0);
        });
    });
    group.finish();
    // Reopened and loaded: the lookups are served by what a restarted server loads.
    let store = SqliteStore::open_with(&path, SqliteOptions::default(), now).unwrap();
    store.wait_loaded().unwrap();
    lookups(c, &runtime(), "sqlite", &store, all, now);
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(feature = "redis")]
fn redis(c: &mut Criterion, all: &[Session], now: u64) {
    use portcullis_session::{RedisConfig, RedisStore};
    use std::process::{Command, Stdio};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap();
    let dir = std::env::temp_dir().join(format!("portcullis-bench-redis-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
        ])
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut child) = child else {
        eprintln!("NOTE: RedisStore skipped: redis-server could not be started (is it installed?)");
        return;
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            eprintln!("NOTE: RedisStore skipped: redis-server did not listen on {port}");
            let _ = child.kill();
            let _ = child.wait();
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let config = RedisConfig {
        port,
        ..RedisConfig::default()
    };
    let store = Arc::new(RedisStore::new(config, b"benchmark-session-secret").unwrap());
    let runtime = runtime();
    // Filled by 64 concurrent writers.
    let shared: Arc<Vec<Session>> = Arc::new(all.to_vec());
    runtime.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for worker in 0..64 {
            let (store, shared) = (store.clone(), shared.clone());
            tasks.spawn(async move {
                for s in shared.iter().skip(worker).step_by(64) {
                    store.put(s).await.unwrap();
                }
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.unwrap();
        }
    });
    lookups(c, &runtime, "redis", store.as_ref(), all, now);
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
