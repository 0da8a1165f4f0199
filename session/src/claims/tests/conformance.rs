//! What every [`ClaimsStore`] must do, run against each store. `fresh` gives an empty store for
//! each check.

use rand::SeedableRng;
use rand::rngs::StdRng;

use super::super::{ClaimsSession, ClaimsStore};
use crate::{SessionId, StoreError};

pub(crate) const T0: u64 = 1_800_000_000;

/// A session whose `data` looks like the outpost's (claims, raw token, refresh token), with a
/// marker (`tok-<seed>-SECRET`) tests look for where it must not appear.
pub(crate) fn session(
    seed: u64,
    provider: &str,
    sub: &str,
    sid: Option<&str>,
    expires_at: u64,
) -> ClaimsSession {
    ClaimsSession {
        id: SessionId::generate(&mut StdRng::seed_from_u64(seed)),
        provider: provider.into(),
        sub: sub.into(),
        sid: sid.map(Into::into),
        expires_at,
        data: format!(
            r#"{{"claims":{{"sub":"{sub}","email":"{sub}@example.com"}},"raw_token":"tok-{seed}-SECRET","refresh_token":"ref-{seed}-SECRET"}}"#
        ),
    }
}

pub(crate) type Fresh<'a> = &'a mut dyn FnMut() -> Box<dyn ClaimsStore>;

/// Run every check, each on a fresh store from `fresh`.
pub(crate) async fn run(fresh: Fresh<'_>) {
    expiry_is_honoured_at_now(&*fresh()).await;
    expired_puts_are_refused(&*fresh()).await;
    put_replaces_and_moves_indexes(&*fresh()).await;
    delete_sub_is_scoped_to_provider_and_sub(&*fresh()).await;
    delete_sid_is_scoped_to_provider_and_sid(&*fresh()).await;
    delete_one(&*fresh()).await;
    count_ignores_expired(&*fresh()).await;
    data_round_trips_exactly(&*fresh()).await;
    debug_never_shows_data(&*fresh()).await;
    fresh().health().await.unwrap();
}

async fn put_all(store: &dyn ClaimsStore, sessions: &[&ClaimsSession], now: u64) {
    for s in sessions {
        store.put(s, now).await.unwrap();
    }
}

async fn present(store: &dyn ClaimsStore, s: &ClaimsSession, now: u64) -> bool {
    match store.get(&s.id, now).await.unwrap() {
        Some(got) => {
            assert_eq!(&got, s, "{store:?}: a stored session comes back unchanged");
            true
        }
        None => false,
    }
}

async fn expiry_is_honoured_at_now(store: &dyn ClaimsStore) {
    let s = session(1, "grafana", "alice", Some("idp-1"), T0 + 100);
    assert_eq!(store.get(&s.id, T0).await.unwrap(), None);
    store.put(&s, T0).await.unwrap();
    assert!(present(store, &s, T0).await, "{store:?}");
    assert!(present(store, &s, T0 + 99).await, "{store:?}");
    assert_eq!(store.count(T0 + 99).await.unwrap(), 1, "{store:?}");
    assert_eq!(store.count(T0 + 100).await.unwrap(), 0, "{store:?}");
    assert_eq!(
        store.get(&s.id, T0 + 100).await.unwrap(),
        None,
        "{store:?}: expired at now == expires_at"
    );
    assert_eq!(store.get(&s.id, T0 + 10_000).await.unwrap(), None);
}

async fn expired_puts_are_refused(store: &dyn ClaimsStore) {
    let dead = session(2, "grafana", "alice", None, T0 + 50);
    for now in [T0 + 50, T0 + 60] {
        let err = store.put(&dead, now).await.unwrap_err();
        assert!(matches!(err, StoreError::Refused(_)), "{store:?}: {err:?}");
    }
    assert_eq!(store.get(&dead.id, T0).await.unwrap(), None, "{store:?}");
    assert_eq!(store.count(T0).await.unwrap(), 0);

    // Refusing a replacement leaves the session as it was.
    let live = session(3, "grafana", "alice", Some("idp-1"), T0 + 3600);
    store.put(&live, T0).await.unwrap();
    let stale = ClaimsSession {
        sub: "mallory".into(),
        expires_at: T0 + 10,
        data: "{}".into(),
        ..live.clone()
    };
    assert!(matches!(
        store.put(&stale, T0 + 20).await,
        Err(StoreError::Refused(_))
    ));
    assert!(present(store, &live, T0 + 20).await, "{store:?}");
    assert_eq!(store.delete_sub("grafana", "mallory").await.unwrap(), 0);
    assert_eq!(store.delete_sub("grafana", "alice").await.unwrap(), 1);
}

async fn put_replaces_and_moves_indexes(store: &dyn ClaimsStore) {
    let s = session(10, "grafana", "alice", Some("idp-1"), T0 + 3600);
    store.put(&s, T0).await.unwrap();
    let moved = ClaimsSession {
        sub: "bob".into(),
        sid: Some("idp-2".into()),
        expires_at: T0 + 7200,
        data: r#"{"refreshed":true}"#.into(),
        ..s.clone()
    };
    store.put(&moved, T0 + 1).await.unwrap();
    assert!(present(store, &moved, T0 + 1).await, "{store:?}");
    assert_eq!(store.count(T0 + 1).await.unwrap(), 1, "replaced, not added");
    assert_eq!(
        store.delete_sub("grafana", "alice").await.unwrap(),
        0,
        "{store:?}: the old subject's index no longer holds it"
    );
    assert_eq!(
        store.delete_sid("grafana", "idp-1").await.unwrap(),
        0,
        "{store:?}: the old IdP session's index no longer holds it"
    );
    assert!(
        present(store, &moved, T0 + 4000).await,
        "{store:?}: the new expiry holds"
    );

    // Losing the sid leaves the sid index.
    let no_sid = ClaimsSession {
        sid: None,
        ..moved.clone()
    };
    store.put(&no_sid, T0 + 2).await.unwrap();
    assert_eq!(store.delete_sid("grafana", "idp-2").await.unwrap(), 0);
    assert!(present(store, &no_sid, T0 + 2).await, "{store:?}");

    // Another provider: the pair moves as a whole.
    let other_provider = ClaimsSession {
        provider: "wiki".into(),
        sid: Some("idp-2".into()),
        ..no_sid.clone()
    };
    store.put(&other_provider, T0 + 3).await.unwrap();
    assert_eq!(store.delete_sub("grafana", "bob").await.unwrap(), 0);
    assert_eq!(store.delete_sid("grafana", "idp-2").await.unwrap(), 0);
    assert_eq!(store.delete_sub("wiki", "bob").await.unwrap(), 1);
    assert_eq!(store.get(&s.id, T0 + 3).await.unwrap(), None);
    assert_eq!(store.delete_sid("wiki", "idp-2").await.unwrap(), 0);
    assert_eq!(store.count(T0 + 3).await.unwrap(), 0);

    // A shorter expiry replaces a longer one.
    let long = session(11, "grafana", "carol", None, T0 + 3600);
    store.put(&long, T0).await.unwrap();
    let short = ClaimsSession {
        expires_at: T0 + 100,
        ..long.clone()
    };
    store.put(&short, T0).await.unwrap();
    assert_eq!(store.count(T0 + 200).await.unwrap(), 0, "{store:?}");
    assert_eq!(store.get(&long.id, T0 + 200).await.unwrap(), None);
}

async fn delete_sub_is_scoped_to_provider_and_sub(store: &dyn ClaimsStore) {
    let exp = T0 + 3600;
    let a1 = session(20, "grafana", "alice", Some("s-a1"), exp);
    let a2 = session(21, "grafana", "alice", Some("s-a2"), exp);
    let bob = session(22, "grafana", "bob", Some("s-b"), exp);
    let wiki = session(23, "wiki", "alice", Some("s-a1"), exp);
    let upper = session(24, "grafana", "Alice", None, exp);
    // ("grafana", "alice") and ("grafanaa", "lice") must not meet in any index.
    let shifted = session(25, "grafanaa", "lice", None, exp);
    put_all(store, &[&a1, &a2, &bob, &wiki, &upper, &shifted], T0).await;

    assert_eq!(
        store.delete_sub("grafana", "alice").await.unwrap(),
        2,
        "{store:?}"
    );
    assert!(!present(store, &a1, T0).await && !present(store, &a2, T0).await);
    for kept in [&bob, &wiki, &upper, &shifted] {
        assert!(present(store, kept, T0).await, "{store:?}: {kept:?} kept");
    }
    assert_eq!(store.delete_sub("grafana", "alice").await.unwrap(), 0);
    assert_eq!(store.delete_sub("grafana", "nobody").await.unwrap(), 0);
    assert_eq!(store.delete_sub("nowhere", "alice").await.unwrap(), 0);
    assert_eq!(
        store.delete_sid("grafana", "s-a1").await.unwrap(),
        0,
        "{store:?}: the deleted sessions left the sid index too"
    );
    assert_eq!(store.delete_sid("wiki", "s-a1").await.unwrap(), 1);
    assert_eq!(store.count(T0).await.unwrap(), 3, "{store:?}");
}

async fn delete_sid_is_scoped_to_provider_and_sid(store: &dyn ClaimsStore) {
    let exp = T0 + 3600;
    // Two outpost sessions (two browsers' logins) inside one IdP session.
    let x1 = session(30, "grafana", "alice", Some("idp-x"), exp);
    let x2 = session(31, "grafana", "alice", Some("idp-x"), exp);
    let y = session(32, "grafana", "alice", Some("idp-y"), exp);
    let wiki = session(33, "wiki", "alice", Some("idp-x"), exp);
    let none = session(34, "grafana", "alice", None, exp);
    let shifted = session(35, "grafanaa", "alice", Some("idp-x"), exp);
    let shifted2 = session(36, "grafan", "alice", Some("aidp-x"), exp);
    put_all(
        store,
        &[&x1, &x2, &y, &wiki, &none, &shifted, &shifted2],
        T0,
    )
    .await;

    assert_eq!(
        store.delete_sid("grafana", "idp-x").await.unwrap(),
        2,
        "{store:?}"
    );
    assert!(!present(store, &x1, T0).await && !present(store, &x2, T0).await);
    for kept in [&y, &wiki, &none, &shifted, &shifted2] {
        assert!(present(store, kept, T0).await, "{store:?}: {kept:?} kept");
    }
    assert_eq!(store.delete_sid("grafana", "idp-x").await.unwrap(), 0);
    assert_eq!(store.delete_sid("grafana", "IDP-X").await.unwrap(), 0);
    assert_eq!(
        store.delete_sub("grafana", "alice").await.unwrap(),
        2,
        "{store:?}: y and the sid-less one; x1 and x2 left the sub index"
    );
    assert_eq!(store.count(T0).await.unwrap(), 3, "{store:?}");
}

async fn delete_one(store: &dyn ClaimsStore) {
    let s = session(40, "grafana", "alice", Some("idp-1"), T0 + 3600);
    let other = session(41, "grafana", "alice", Some("idp-1"), T0 + 3600);
    put_all(store, &[&s, &other], T0).await;
    assert!(store.delete(&s.id).await.unwrap(), "{store:?}");
    assert_eq!(store.get(&s.id, T0).await.unwrap(), None);
    assert!(
        !store.delete(&s.id).await.unwrap(),
        "{store:?}: already gone"
    );
    let unknown = SessionId::generate(&mut StdRng::seed_from_u64(49));
    assert!(!store.delete(&unknown).await.unwrap());
    assert!(present(store, &other, T0).await);
    assert_eq!(store.delete_sub("grafana", "alice").await.unwrap(), 1);
    assert_eq!(store.delete_sid("grafana", "idp-1").await.unwrap(), 0);
    assert_eq!(store.count(T0).await.unwrap(), 0);
}

async fn count_ignores_expired(store: &dyn ClaimsStore) {
    assert_eq!(store.count(T0).await.unwrap(), 0);
    let sessions: Vec<ClaimsSession> = (0..3)
        .map(|i| session(50 + i, "grafana", &format!("u{i}"), None, T0 + 10 * (i + 1)))
        .collect();
    put_all(store, &sessions.iter().collect::<Vec<_>>(), T0).await;
    for (now, expected) in [
        (T0, 3),
        (T0 + 9, 3),
        (T0 + 10, 2),
        (T0 + 25, 1),
        (T0 + 30, 0),
    ] {
        assert_eq!(
            store.count(now).await.unwrap(),
            expected,
            "{store:?} at +{}",
            now - T0
        );
    }
}

async fn data_round_trips_exactly(store: &dyn ClaimsStore) {
    let mut s = session(60, "grafana", "ünïcødé:sub", Some("v1:ab:cd:"), T0 + 3600);
    s.data = format!(
        "{{\"quote\":\"\\\"\",\"lines\":\"a\\nb\",\"text\":\"€ 東京 🙂\",\"pad\":\"{}\"}}\r\n",
        "x:".repeat(32 * 1024)
    );
    store.put(&s, T0).await.unwrap();
    assert!(present(store, &s, T0).await, "{store:?}");
    let empty = ClaimsSession {
        id: SessionId::generate(&mut StdRng::seed_from_u64(61)),
        data: String::new(),
        ..s.clone()
    };
    store.put(&empty, T0).await.unwrap();
    assert!(present(store, &empty, T0).await, "{store:?}");
    assert_eq!(
        store.delete_sid("grafana", "v1:ab:cd:").await.unwrap(),
        2,
        "{store:?}"
    );
}

async fn debug_never_shows_data(store: &dyn ClaimsStore) {
    let s = session(70, "grafana", "alice", Some("idp-1"), T0 + 3600);
    let shown = format!("{s:?} {s:#?}");
    assert!(
        !shown.contains("SECRET") && !shown.contains("raw_token"),
        "{shown}"
    );
    assert!(!shown.contains(s.id.as_str()), "{shown}");
    assert!(
        shown.contains("alice") && shown.contains("redacted"),
        "{shown}"
    );
    store.put(&s, T0).await.unwrap();
    let shown = format!("{store:?} {store:#?}");
    assert!(
        !shown.contains("SECRET") && !shown.contains(s.id.as_str()) && !shown.contains("alice"),
        "{shown}"
    );
}
