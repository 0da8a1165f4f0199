//! `MemoryClaimsStore`: the conformance suite, the bound, the indexes' clean-up.

use std::sync::Arc;

use super::conformance::{self, T0, session};
use crate::claims::{ClaimsStore, DEFAULT_MAX_CLAIMS_SESSIONS, MemoryClaimsStore};

#[tokio::test]
async fn conforms() {
    conformance::run(&mut || Box::new(MemoryClaimsStore::new())).await;
}

#[tokio::test]
async fn bound_drops_expired_first_then_evicts_the_soonest_expiring() {
    let store = MemoryClaimsStore::with_max_entries(3);
    let old = session(1, "p", "old", Some("s-old"), T0 + 10);
    let b = session(2, "p", "b", None, T0 + 300);
    let c = session(3, "p", "c", Some("s-c"), T0 + 200);
    for s in [&old, &b, &c] {
        store.put(s, T0).await.unwrap();
    }
    assert_eq!(store.len(), 3);

    // Full, and `old` is expired at this `now`: it goes, nothing live is evicted.
    let d = session(4, "p", "d", None, T0 + 1000);
    store.put(&d, T0 + 10).await.unwrap();
    assert_eq!(store.len(), 3);
    assert_eq!(store.delete_sid("p", "s-old").await.unwrap(), 0);
    for kept in [&b, &c, &d] {
        assert!(store.get(&kept.id, T0 + 10).await.unwrap().is_some());
    }

    // Full of live sessions: the soonest-expiring (`c`) is evicted, and the new session is kept
    // even though it expires sooner still.
    let e = session(5, "p", "e", None, T0 + 50);
    store.put(&e, T0 + 20).await.unwrap();
    assert_eq!(store.len(), 3);
    assert_eq!(store.get(&c.id, T0 + 20).await.unwrap(), None);
    assert_eq!(
        store.delete_sid("p", "s-c").await.unwrap(),
        0,
        "the evicted session left the indexes"
    );
    assert_eq!(store.delete_sub("p", "c").await.unwrap(), 0);
    assert_eq!(store.get(&e.id, T0 + 20).await.unwrap(), Some(e.clone()));

    // Replacing a held session never evicts.
    store.put(&b, T0 + 20).await.unwrap();
    for kept in [&b, &d, &e] {
        assert!(store.get(&kept.id, T0 + 20).await.unwrap().is_some());
    }

    for i in 0..100 {
        store
            .put(&session(100 + i, "p", "many", None, T0 + 2000 + i), T0 + 20)
            .await
            .unwrap();
        assert!(store.len() <= 3);
    }
    assert_eq!(store.delete_sub("p", "many").await.unwrap(), 3);
    assert!(store.is_empty());
    let inner = store.lock();
    assert!(inner.by_sub.is_empty() && inner.by_sid.is_empty() && inner.by_expiry.is_empty());
    drop(inner);

    assert_eq!(MemoryClaimsStore::with_max_entries(0).max_entries(), 1);
    assert_eq!(
        MemoryClaimsStore::new().max_entries(),
        DEFAULT_MAX_CLAIMS_SESSIONS
    );
    assert_eq!(
        MemoryClaimsStore::default().max_entries(),
        DEFAULT_MAX_CLAIMS_SESSIONS
    );
}

#[tokio::test]
async fn expired_sessions_are_dropped_on_read_and_by_purge() {
    let store = MemoryClaimsStore::new();
    let short = session(1, "p", "a", Some("s"), T0 + 10);
    let long = session(2, "p", "a", Some("s"), T0 + 1000);
    store.put(&short, T0).await.unwrap();
    store.put(&long, T0).await.unwrap();
    assert_eq!(store.get(&short.id, T0 + 10).await.unwrap(), None);
    assert_eq!(store.len(), 1, "the expired record was dropped on read");
    assert_eq!(store.purge_expired(T0 + 999), 0);
    assert_eq!(store.purge_expired(T0 + 1000), 1);
    assert!(store.is_empty());
    let inner = store.lock();
    assert!(
        inner.by_sub.is_empty() && inner.by_sid.is_empty(),
        "empty index entries are dropped"
    );
}

#[tokio::test]
async fn shared_through_a_trait_object_across_tasks() {
    let store: Arc<dyn ClaimsStore> = Arc::new(MemoryClaimsStore::new());
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let s = session(i, "p", &format!("u{}", i % 4), None, T0 + 3600);
                store.put(&s, T0).await
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(store.count(T0).await.unwrap(), 32);
    assert_eq!(store.delete_sub("p", "u1").await.unwrap(), 8);
    assert_eq!(store.count(T0).await.unwrap(), 24);
}
