//! Against a real `redis-server` started on a free loopback port.

// Tests wait for real processes and sockets on the wall clock; the clock rule is for the servers.
#![allow(clippy::disallowed_methods)]

use std::time::{Duration, Instant};

use portcullis_core::{AuthLevel, Identity};
use rand::SeedableRng;

use super::test_support::RedisServer;
use super::*;
use crate::Lifetime;

const NOW: u64 = 1_800_000_000;

fn session(user: &str, seed: u64) -> Session {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let id = SessionId::generate(&mut rng);
    let identity = Identity::user(user, AuthLevel::OneFactor).with_groups(["dev"]);
    Session::new(
        id,
        "example.com",
        identity,
        false,
        NOW,
        &Lifetime::default(),
    )
}

#[tokio::test]
async fn replicas_share_sessions_and_revocations() {
    let Some(redis) = RedisServer::start_on(None) else {
        return;
    };
    let a = RedisStore::new(redis.config(), b"secret").unwrap();
    let b = RedisStore::new(redis.config(), b"secret").unwrap();
    let alice1 = session("alice", 1);
    let alice2 = session("Alice", 2);
    let bob = session("bob", 3);
    for s in [&alice1, &alice2, &bob] {
        a.put(s).await.unwrap();
    }
    let seen = b.get(&alice1.id, NOW + 1).await.unwrap().unwrap();
    assert_eq!(
        seen, alice1,
        "a session written by one replica is read by another"
    );
    b.touch(&alice1.id, NOW + 30).await.unwrap();
    assert_eq!(
        a.get(&alice1.id, NOW + 31)
            .await
            .unwrap()
            .unwrap()
            .last_activity,
        NOW + 30
    );
    assert_eq!(a.count(NOW).await.unwrap(), 3);
    assert_eq!(b.list(Some("ALICE"), NOW).await.unwrap().len(), 2);
    // delete_user on one replica holds on the other.
    assert_eq!(b.delete_user("alice").await.unwrap(), 2);
    assert!(a.get(&alice1.id, NOW + 1).await.unwrap().is_none());
    assert!(a.get(&alice2.id, NOW + 1).await.unwrap().is_none());
    assert!(a.get(&bob.id, NOW + 1).await.unwrap().is_some());
    a.delete(&bob.id).await.unwrap();
    assert!(b.get(&bob.id, NOW + 1).await.unwrap().is_none());
    a.health().await.unwrap();
}

#[tokio::test]
async fn records_are_encrypted_bound_to_their_key_and_expire() {
    let Some(redis) = RedisServer::start_on(None) else {
        return;
    };
    let store = RedisStore::new(redis.config(), b"secret").unwrap();
    let s = session("alice", 7);
    store.put(&s).await.unwrap();
    let client = redis::Client::open(format!("redis://127.0.0.1:{}/", redis.port)).unwrap();
    let mut raw = client.get_multiplexed_async_connection().await.unwrap();
    let (key, _) = store.session_key(&s.id);
    let data: Vec<u8> = raw.hget(&key, "data").await.unwrap();
    assert!(
        !String::from_utf8_lossy(&data).contains("alice"),
        "record is not plain text"
    );
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(
        keys.iter()
            .all(|k| !k.contains(s.id.as_str()) && !k.contains("alice")),
        "{keys:?}"
    );
    let expire_at: i64 = redis::cmd("EXPIRETIME")
        .arg(&key)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(
        expire_at, s.expires_at as i64,
        "Redis drops the key when the session expires"
    );
    // Another secret cannot read it; a tampered record is absent.
    let other = RedisStore::new(redis.config(), b"other").unwrap();
    assert!(other.get(&s.id, NOW).await.unwrap().is_none());
    let mut tampered = data.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    let _: () = raw.hset(&key, "data", tampered).await.unwrap();
    assert!(store.get(&s.id, NOW).await.unwrap().is_none());
    // Moving a record to another key fails authentication too.
    let s2 = session("bob", 8);
    store.put(&s2).await.unwrap();
    let (key2, _) = store.session_key(&s2.id);
    let _: () = raw.hset(&key2, "data", data).await.unwrap();
    assert!(store.get(&s2.id, NOW).await.unwrap().is_none());
    // Expired at `now`: not returned.
    let s3 = session("carol", 9);
    store.put(&s3).await.unwrap();
    assert!(store.get(&s3.id, s3.expires_at).await.unwrap().is_none());
}

#[tokio::test]
async fn fails_within_the_timeout_while_down_and_recovers_by_itself() {
    let Some(redis) = RedisServer::start_on(None) else {
        return;
    };
    let port = redis.port;
    let store = RedisStore::new(redis.config(), b"secret").unwrap();
    let s = session("alice", 11);
    store.put(&s).await.unwrap();
    drop(redis);
    let started = Instant::now();
    let result = store.get(&s.id, NOW).await;
    assert!(result.is_err(), "no answer while Redis is down: {result:?}");
    assert!(store.health().await.is_err());
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "bounded by the timeout: {:?}",
        started.elapsed()
    );
    let redis = RedisServer::start_on(Some(port)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if store.health().await.is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "did not recover");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The restarted Redis is empty (no persistence in this test): the session is simply gone.
    assert!(store.get(&s.id, NOW).await.unwrap().is_none());
    store.put(&s).await.unwrap();
    assert!(store.get(&s.id, NOW).await.unwrap().is_some());
    drop(redis);
}

#[test]
fn debug_never_shows_the_password() {
    let config = RedisConfig {
        password: Some("hunter2".into()),
        ..RedisConfig::default()
    };
    assert!(!format!("{config:?}").contains("hunter2"));
    assert_eq!(config.url("h", 1), "redis://:hunter2@h:1/0");
    let unix = RedisConfig {
        port: 0,
        host: "/run/redis.sock".into(),
        ..RedisConfig::default()
    };
    assert_eq!(
        unix.url("/run/redis.sock", 0),
        "redis+unix:///run/redis.sock?db=0"
    );
}

#[tokio::test]
async fn replicas_share_ceremonies_once_each_until_they_expire() {
    use crate::CeremonyStore;
    let Some(redis) = RedisServer::start_on(None) else {
        return;
    };
    let a = RedisStore::new(redis.config(), b"secret").unwrap();
    let b = RedisStore::new(redis.config(), b"secret").unwrap();
    a.put_ceremony(
        "elevation",
        "session-1",
        b"{\"ip\":\"::1\"}",
        NOW + 600,
        NOW,
    )
    .await
    .unwrap();
    assert_eq!(
        b.get_ceremony("elevation", "session-1", NOW + 1)
            .await
            .unwrap(),
        Some(b"{\"ip\":\"::1\"}".to_vec()),
        "a ceremony begun on one replica is seen by another"
    );
    assert_eq!(
        b.get_ceremony("totp-registration", "session-1", NOW + 1)
            .await
            .unwrap(),
        None
    );
    // The expiry sealed inside the value holds even while Redis still keeps it.
    assert_eq!(
        a.get_ceremony("elevation", "session-1", NOW + 600)
            .await
            .unwrap(),
        None
    );
    // Taken once, across replicas.
    a.put_ceremony(
        "webauthn-assertion",
        "session-2",
        b"challenge",
        NOW + 60,
        NOW,
    )
    .await
    .unwrap();
    assert_eq!(
        b.take_ceremony("webauthn-assertion", "session-2", NOW + 1)
            .await
            .unwrap(),
        Some(b"challenge".to_vec())
    );
    assert_eq!(
        a.take_ceremony("webauthn-assertion", "session-2", NOW + 1)
            .await
            .unwrap(),
        None
    );
    // A value moved to another key does not open; another secret does not open it either.
    a.put_ceremony("elevation", "session-3", b"x", NOW + 60, NOW)
        .await
        .unwrap();
    let from = a.ceremony_key("elevation", "session-3");
    let to = a.ceremony_key("elevation", "session-4");
    let mut conn = a.connection().await.unwrap();
    let value: Vec<u8> = redis::cmd("GET")
        .arg(&from)
        .query_async(&mut conn)
        .await
        .unwrap();
    let () = redis::cmd("SET")
        .arg(&to)
        .arg(value)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        a.get_ceremony("elevation", "session-4", NOW + 1)
            .await
            .unwrap(),
        None
    );
    let other = RedisStore::new(redis.config(), b"another secret").unwrap();
    assert_eq!(
        other
            .get_ceremony("elevation", "session-3", NOW + 1)
            .await
            .unwrap(),
        None
    );
    a.delete_ceremony("elevation", "session-3").await.unwrap();
    assert_eq!(
        b.get_ceremony("elevation", "session-3", NOW + 1)
            .await
            .unwrap(),
        None
    );
    assert!(
        a.put_ceremony("elevation", "late", b"x", NOW, NOW)
            .await
            .is_err(),
        "already expired"
    );
    // Ceremonies are not sessions.
    assert_eq!(SessionStore::count(&a, NOW).await.unwrap(), 0);
    assert!(SessionStore::list(&a, None, NOW).await.unwrap().is_empty());
}
