//! `RedisClaimsStore` against a real `redis-server` started on a free loopback port: the
//! conformance suite, replicas, atomic logouts, what Redis holds, Redis going away.

// Tests wait for real processes and sockets on the wall clock; the clock rule is for the servers.
#![allow(clippy::disallowed_methods)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use redis::AsyncCommands;

use super::conformance::{self, T0, session};
use crate::claims::{ClaimsSession, ClaimsStore, DEFAULT_CLAIMS_KEY_PREFIX, RedisClaimsStore};
use crate::redis_store::test_support::RedisServer;
use crate::{RedisConfig, RedisStore, SessionStore, StoreError};

const SECRET: &[u8] = b"the outpost's session secret";

async fn raw(redis: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(format!("redis://127.0.0.1:{}/", redis.port))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

async fn all_keys(raw: &mut redis::aio::MultiplexedConnection) -> Vec<String> {
    redis::cmd("KEYS").arg("*").query_async(raw).await.unwrap()
}

#[tokio::test]
async fn conforms() {
    let Some(redis) = RedisServer::start_on(None) else {
        return;
    };
    let n = AtomicUsize::new(0);
    conformance::run(&mut || {
        let prefix = format!("conformance-{}", n.fetch_add(1, Ordering::Relaxed));
        Box::new(RedisClaimsStore::with_key_prefix(redis.config(), SECRET, &prefix).unwrap())
    })
    .await;
}

#[tokio::test]
async fn two_replicas_see_each_others_puts_and_deletes() {
    let Some(redis) = RedisServer::start_on(None) else {
        return;
    };
    let a = RedisClaimsStore::new(redis.config(), SECRET).unwrap();
    let b = RedisClaimsStore::new(redis.config(), SECRET).unwrap();
    let a1 = session(1, "grafana", "alice", Some("idp-1"), T0 + 3600);
    let a2 = session(2, "grafana", "alice", Some("idp-2"), T0 + 3600);
    let bob = session(3, "grafana", "bob", Some("idp-3"), T0 + 3600);
    for s in [&a1, &a2, &bob] {
        a.put(s, T0).await.unwrap();
    }
    assert_eq!(b.get(&a1.id, T0).await.unwrap().as_ref(), Some(&a1));
    assert_eq!(b.count(T0).await.unwrap(), 3);

    // A replacement by one replica moves the indexes for both, in Redis itself: the old sets no
    // longer hold it.
    let moved = ClaimsSession {
        sub: "alice@new-idp".into(),
        sid: Some("idp-9".into()),
        ..a2.clone()
    };
    b.put(&moved, T0 + 1).await.unwrap();
    assert_eq!(a.get(&a2.id, T0 + 1).await.unwrap(), Some(moved.clone()));
    let mut raw = raw(&redis).await;
    let old_sub = a.index_key("sub", &a.index_hash("sub", "grafana", "alice"));
    let old_sid = a.index_key("sid", &a.index_hash("sid", "grafana", "idp-2"));
    let old_sub_size: usize = raw.zcard(&old_sub).await.unwrap();
    assert_eq!(old_sub_size, 1, "only a1 is left under alice");
    let old_sid_exists: bool = raw.exists(&old_sid).await.unwrap();
    assert!(!old_sid_exists, "the emptied sid set is gone");
    assert_eq!(a.delete_sid("grafana", "idp-2").await.unwrap(), 0);

    // Back-channel logout on one, sign-out on the other, a single delete on the first.
    assert_eq!(a.delete_sid("grafana", "idp-9").await.unwrap(), 1);
    assert_eq!(b.get(&a2.id, T0 + 1).await.unwrap(), None);
    assert_eq!(b.delete_sub("grafana", "alice@new-idp").await.unwrap(), 0);
    assert_eq!(b.delete_sub("grafana", "alice").await.unwrap(), 1);
    assert_eq!(a.get(&a1.id, T0 + 1).await.unwrap(), None);
    assert!(a.delete(&bob.id).await.unwrap());
    assert_eq!(b.get(&bob.id, T0 + 1).await.unwrap(), None);
    assert!(!b.delete(&bob.id).await.unwrap());
    assert_eq!(a.count(T0 + 1).await.unwrap(), 0);

    // Nothing is left behind: every set was emptied or deleted, so no key remains.
    assert_eq!(all_keys(&mut raw).await, Vec::<String>::new());
}

#[tokio::test]
async fn replicas_logging_one_user_out_at_once_leave_nothing_behind() {
    let Some(redis) = RedisServer::start_on(None) else {
        return;
    };
    let a = RedisClaimsStore::new(redis.config(), SECRET).unwrap();
    let b = RedisClaimsStore::new(redis.config(), SECRET).unwrap();
    let alice: Vec<ClaimsSession> = (0..200)
        .map(|i| {
            session(
                i,
                "grafana",
                "alice",
                Some(&format!("idp-{}", i % 7)),
                T0 + 3600,
            )
        })
        .collect();
    let carol = session(1000, "grafana", "carol", Some("idp-1"), T0 + 3600);
    for s in alice.iter().chain([&carol]) {
        a.put(s, T0).await.unwrap();
    }
    for round in 0..3 {
        let (x, y) = tokio::join!(
            a.delete_sub("grafana", "alice"),
            b.delete_sub("grafana", "alice")
        );
        let (x, y) = (x.unwrap(), y.unwrap());
        let expected = if round == 0 { alice.len() } else { 0 };
        assert_eq!(x + y, expected, "round {round}: every session deleted once");
        for s in &alice {
            assert_eq!(a.get(&s.id, T0).await.unwrap(), None);
        }
    }
    assert_eq!(b.count(T0).await.unwrap(), 1);
    assert_eq!(b.get(&carol.id, T0).await.unwrap(), Some(carol.clone()));

    // A logout racing logins: each login either is deleted or survives whole (value and indexes).
    let logins = async {
        for s in &alice {
            b.put(s, T0).await.unwrap();
        }
    };
    let (deleted, ()) = tokio::join!(a.delete_sid("grafana", "idp-3"), logins);
    let deleted = deleted.unwrap();
    let mut survivors = 0;
    for s in alice.iter().filter(|s| s.sid.as_deref() == Some("idp-3")) {
        if a.get(&s.id, T0).await.unwrap().is_some() {
            survivors += 1;
        }
    }
    assert_eq!(deleted + survivors, alice.len().div_ceil(7));
    assert_eq!(
        b.delete_sid("grafana", "idp-3").await.unwrap(),
        survivors,
        "every survivor is still in the sid index"
    );
}

#[tokio::test]
async fn a_replica_with_a_fast_clock_hides_no_live_session_from_logout() {
    let Some(redis) = RedisServer::start_on(None) else {
        return;
    };
    let correct = RedisClaimsStore::new(redis.config(), SECRET).unwrap();
    let fast = RedisClaimsStore::new(redis.config(), SECRET).unwrap();
    let early = session(1, "grafana", "alice", Some("idp-1"), T0 + 100);
    correct.put(&early, T0).await.unwrap();
    // A minute ahead, the fast replica thinks `early` expired; its put must not unindex it.
    let later = session(2, "grafana", "alice", Some("idp-1"), T0 + 3600);
    fast.put(&later, T0 + 160).await.unwrap();
    assert_eq!(correct.count(T0 + 50).await.unwrap(), 2);
    assert_eq!(fast.count(T0 + 160).await.unwrap(), 1);
    assert_eq!(
        correct.count(T0 + 50).await.unwrap(),
        2,
        "count prunes nothing live"
    );
    assert_eq!(
        correct.get(&early.id, T0 + 50).await.unwrap(),
        Some(early.clone())
    );
    assert_eq!(correct.delete_sub("grafana", "alice").await.unwrap(), 2);
}

#[tokio::test]
async fn what_redis_holds_is_sealed_and_expires() {
    let Some(redis) = RedisServer::start_on(None) else {
        return;
    };
    let store = RedisClaimsStore::new(redis.config(), SECRET).unwrap();
    let s = session(7, "grafana", "alice", Some("idp-session-7"), T0 + 3600);
    store.put(&s, T0).await.unwrap();
    let mut raw = raw(&redis).await;
    let (key, _) = store.session_key(&s.id);
    assert!(key.starts_with("portcullis-outpost:"), "{key}");
    let value: Vec<u8> = raw.get(&key).await.unwrap();
    let text = String::from_utf8_lossy(&value);
    for plain in [
        s.data.as_str(),
        "tok-7-SECRET",
        "alice",
        "grafana",
        "idp-session-7",
    ] {
        assert!(!text.contains(plain), "{plain:?} is not in the value");
    }
    let keys = all_keys(&mut raw).await;
    assert_eq!(
        keys.len(),
        4,
        "session, sub and sid sets, the count index: {keys:?}"
    );
    for k in &keys {
        assert!(k.starts_with(DEFAULT_CLAIMS_KEY_PREFIX), "{k}");
        assert!(
            !k.contains(s.id.as_str()) && !k.contains("alice") && !k.contains("idp-session"),
            "{k}"
        );
    }

    // The value lives `expires_at - now`; the index sets at least as long.
    let ttl: i64 = raw.ttl(&key).await.unwrap();
    assert!((3598..=3600).contains(&ttl), "{ttl}");
    for k in &keys {
        let set_ttl: i64 = raw.ttl(k).await.unwrap();
        assert!(set_ttl >= ttl, "{k}: {set_ttl} < {ttl}");
    }
    // A shorter-lived session of the same subject never shortens the set's expiry; a longer one
    // extends it.
    let sub_set = store.index_key("sub", &store.index_hash("sub", "grafana", "alice"));
    let short = session(8, "grafana", "alice", None, T0 + 100);
    store.put(&short, T0).await.unwrap();
    let set_ttl: i64 = raw.ttl(&sub_set).await.unwrap();
    assert!(set_ttl >= 3598, "{set_ttl}");
    let long = session(9, "grafana", "alice", None, T0 + 7200);
    store.put(&long, T0).await.unwrap();
    let set_ttl: i64 = raw.ttl(&sub_set).await.unwrap();
    assert!(set_ttl >= 7198, "{set_ttl}");

    // Another secret reads nothing; a tampered value, or one moved to another key, is absent.
    let other = RedisClaimsStore::new(redis.config(), b"another secret").unwrap();
    assert_eq!(other.get(&s.id, T0).await.unwrap(), None);
    let mut tampered = value.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    let _: () = raw.set(&key, tampered.as_slice()).await.unwrap();
    assert_eq!(store.get(&s.id, T0).await.unwrap(), None);
    let (long_key, _) = store.session_key(&long.id);
    let _: () = raw.set(&long_key, value.as_slice()).await.unwrap();
    assert_eq!(store.get(&long.id, T0).await.unwrap(), None);
    // The header (which index sets the value is filed under) is authenticated too.
    let _: () = raw.set(&key, value.as_slice()).await.unwrap();
    assert_eq!(store.get(&s.id, T0).await.unwrap(), Some(s.clone()));
    let mut moved_header = value.clone();
    moved_header[3] = if moved_header[3] == b'a' { b'b' } else { b'a' };
    let _: () = raw.set(&key, moved_header.as_slice()).await.unwrap();
    assert_eq!(store.get(&s.id, T0).await.unwrap(), None);
    let _: () = raw.set(&key, value.as_slice()).await.unwrap();

    // Once Redis has dropped the value, the session is gone, even at a `now` before its expiry,
    // and a logout that finds only its index entry deletes nothing.
    let _: () = raw.pexpire(&key, 1).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(store.get(&s.id, T0).await.unwrap(), None);
    assert_eq!(
        store.delete_sid("grafana", "idp-session-7").await.unwrap(),
        0
    );
}

#[tokio::test]
async fn keys_stay_apart_from_the_session_store_on_one_redis() {
    let Some(redis) = RedisServer::start_on(None) else {
        return;
    };
    let config = redis.config();
    let sessions = RedisStore::new(config.clone(), SECRET).unwrap();
    let claims = RedisClaimsStore::new(config.clone(), SECRET).unwrap();
    let s = session(1, "grafana", "alice", Some("idp-1"), T0 + 3600);
    claims.put(&s, T0).await.unwrap();
    assert_eq!(sessions.count(T0).await.unwrap(), 0);
    let mut raw = raw(&redis).await;
    for k in all_keys(&mut raw).await {
        assert!(!k.starts_with(&config.key_prefix), "{k}");
    }
    assert_eq!(claims.key_prefix(), DEFAULT_CLAIMS_KEY_PREFIX);
    assert_eq!(claims.timeout(), config.timeout);

    // Refused constructions.
    let same = RedisClaimsStore::with_key_prefix(config.clone(), SECRET, &config.key_prefix);
    assert!(matches!(same, Err(StoreError::Backend(_))));
    assert!(RedisClaimsStore::with_key_prefix(config.clone(), SECRET, "").is_err());
    assert!(RedisClaimsStore::new(config.clone(), b"").is_err());
}

#[tokio::test]
async fn fails_within_the_timeout_while_down_and_recovers_by_itself() {
    let Some(redis) = RedisServer::start_on(None) else {
        return;
    };
    let port = redis.port;
    let store = RedisClaimsStore::new(redis.config(), SECRET).unwrap();
    let s = session(11, "grafana", "alice", Some("idp-1"), T0 + 3600);
    store.put(&s, T0).await.unwrap();
    drop(redis);

    let started = Instant::now();
    let results = [
        store.get(&s.id, T0).await.map(|_| ()),
        store.put(&s, T0).await,
        store.delete(&s.id).await.map(|_| ()),
        store.delete_sub("grafana", "alice").await.map(|_| ()),
        store.delete_sid("grafana", "idp-1").await.map(|_| ()),
        store.count(T0).await.map(|_| ()),
        store.health().await,
    ];
    for result in &results {
        assert!(
            matches!(
                result,
                Err(StoreError::Unavailable(_) | StoreError::Timeout)
            ),
            "no answer while Redis is down: {result:?}"
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(7),
        "bounded by the timeout: {:?}",
        started.elapsed()
    );

    let redis = RedisServer::start_on(Some(port)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.health().await.is_err() {
        assert!(Instant::now() < deadline, "did not recover");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The restarted Redis is empty (no persistence in this test): the session is simply gone.
    assert_eq!(store.get(&s.id, T0).await.unwrap(), None);
    store.put(&s, T0).await.unwrap();
    assert_eq!(store.get(&s.id, T0).await.unwrap(), Some(s));
    drop(redis);
}

#[test]
fn debug_shows_neither_the_password_nor_the_keys() {
    let config = RedisConfig {
        password: Some("hunter2".into()),
        ..RedisConfig::default()
    };
    let store = RedisClaimsStore::new(config, SECRET).unwrap();
    let shown = format!("{store:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains(DEFAULT_CLAIMS_KEY_PREFIX), "{shown}");
}
