//! The memory store: packing, per-user index, bounds, expiry.
use super::*;
use crate::Lifetime;
use portcullis_core::{AuthLevel, Identity};
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::sync::Arc;

const T0: u64 = 1_700_000_000;

fn make(rng: &mut StdRng, user: &str, now: u64, expiration: u64) -> Session {
    let lifetime = Lifetime {
        expiration,
        ..Lifetime::default()
    };
    Session::new(
        SessionId::generate(rng),
        "example.com",
        Identity::user(user, AuthLevel::OneFactor),
        false,
        now,
        &lifetime,
    )
}

#[tokio::test]
async fn crud() {
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let mut rng = StdRng::seed_from_u64(1);
    let s = make(&mut rng, "alice", T0, 3600);
    assert_eq!(store.get(&s.id, T0).await.unwrap(), None);
    store.put(&s).await.unwrap();
    assert_eq!(store.get(&s.id, T0 + 1).await.unwrap(), Some(s.clone()));
    assert_eq!(store.count(T0).await.unwrap(), 1);

    store.touch(&s.id, T0 + 100).await.unwrap();
    store.touch(&s.id, T0 + 50).await.unwrap();
    let got = store.get(&s.id, T0 + 101).await.unwrap().unwrap();
    assert_eq!(got.last_activity, T0 + 100, "touch never goes backwards");

    let mut replaced = got.clone();
    replaced.identity.groups = vec!["admins".into()];
    store.put(&replaced).await.unwrap();
    assert_eq!(store.get(&s.id, T0 + 1).await.unwrap(), Some(replaced));
    assert_eq!(store.count(T0).await.unwrap(), 1);

    store.delete(&s.id).await.unwrap();
    assert_eq!(store.get(&s.id, T0 + 1).await.unwrap(), None);
    store.delete(&s.id).await.unwrap();
    store.touch(&s.id, T0).await.unwrap();
    assert_eq!(store.count(T0).await.unwrap(), 0);
    store.health().await.unwrap();
}

#[tokio::test]
async fn expiry_on_read_and_purge() {
    let store = MemoryStore::new();
    let mut rng = StdRng::seed_from_u64(2);
    let short = make(&mut rng, "alice", T0, 10);
    let long = make(&mut rng, "bob", T0, 1000);
    store.put(&short).await.unwrap();
    store.put(&long).await.unwrap();
    assert!(store.get(&short.id, T0 + 9).await.unwrap().is_some());
    assert_eq!(store.count(T0 + 10).await.unwrap(), 1);
    assert_eq!(store.list(None, T0 + 10).await.unwrap(), vec![long.clone()]);
    assert_eq!(store.get(&short.id, T0 + 10).await.unwrap(), None);
    assert_eq!(store.len(), 1, "the expired record was dropped on read");
    assert_eq!(store.purge_expired(T0 + 999), 0);
    assert_eq!(store.purge_expired(T0 + 1000), 1);
    assert!(store.is_empty());
}

#[tokio::test]
async fn delete_user_is_case_insensitive_and_indexed() {
    let store = MemoryStore::new();
    let mut rng = StdRng::seed_from_u64(3);
    let a1 = make(&mut rng, "Alice", T0, 3600);
    let a2 = make(&mut rng, "alice", T0 + 1, 3600);
    let b = make(&mut rng, "bob", T0, 3600);
    for s in [&a1, &a2, &b] {
        store.put(s).await.unwrap();
    }
    assert_eq!(
        store.list(Some("ALICE"), T0).await.unwrap(),
        vec![a1.clone(), a2.clone()]
    );
    assert_eq!(store.list(None, T0).await.unwrap().len(), 3);
    assert_eq!(store.delete_user("ALICE").await.unwrap(), 2);
    assert_eq!(store.get(&a1.id, T0).await.unwrap(), None);
    assert_eq!(store.get(&a2.id, T0).await.unwrap(), None);
    assert_eq!(store.get(&b.id, T0).await.unwrap(), Some(b.clone()));
    assert_eq!(store.delete_user("alice").await.unwrap(), 0);
    assert!(
        !store.lock().by_user.contains_key("alice"),
        "empty index entries are dropped"
    );

    // Replacing a session under another username moves it in the index.
    let mut renamed = b.clone();
    renamed.identity.username = "carol".into();
    store.put(&renamed).await.unwrap();
    assert_eq!(store.delete_user("bob").await.unwrap(), 0);
    assert_eq!(store.delete_user("Carol").await.unwrap(), 1);
    assert!(store.is_empty());
}

#[tokio::test]
async fn eviction_keeps_the_bound_and_drops_the_soonest_expiring() {
    let store = MemoryStore::with_max_entries(3);
    let mut rng = StdRng::seed_from_u64(4);
    let s1 = make(&mut rng, "u", T0, 300);
    let s2 = make(&mut rng, "u", T0, 100); // expires first
    let s3 = make(&mut rng, "u", T0, 200);
    for s in [&s1, &s2, &s3] {
        store.put(s).await.unwrap();
    }
    // Replacing an existing one never evicts.
    store.put(&s1).await.unwrap();
    assert_eq!(store.len(), 3);
    let s4 = make(&mut rng, "u", T0, 50); // kept even though it expires soonest
    store.put(&s4).await.unwrap();
    assert_eq!(store.len(), 3);
    assert_eq!(store.get(&s2.id, T0).await.unwrap(), None);
    assert!(store.get(&s4.id, T0).await.unwrap().is_some());
    for i in 0..100 {
        store.put(&make(&mut rng, "u", T0, 1000 + i)).await.unwrap();
        assert!(store.len() <= 3);
    }
    assert_eq!(store.list(Some("u"), T0).await.unwrap().len(), 3);
    assert_eq!(MemoryStore::with_max_entries(0).max_entries(), 1);
    assert_eq!(MemoryStore::new().max_entries(), DEFAULT_MAX_ENTRIES);
}

#[test]
fn activity_persistence_threshold() {
    let store = MemoryStore::new();
    let mut rng = StdRng::seed_from_u64(5);
    let s = make(&mut rng, "u", T0, 3600);
    store.insert(s.clone(), T0);
    assert_eq!(store.record_activity(&s.id, T0 + 59, Some(60)), None);
    assert_eq!(
        store.record_activity(&s.id, T0 + 60, Some(60)),
        Some(T0 + 60)
    );
    assert_eq!(store.record_activity(&s.id, T0 + 100, Some(60)), None);
    assert_eq!(
        store.record_activity(&s.id, T0 + 120, Some(60)),
        Some(T0 + 120)
    );
    assert_eq!(store.record_activity(&s.id, T0 + 121, None), None);
    assert_eq!(
        store.fetch(&s.id, T0).map(|s| s.last_activity),
        Some(T0 + 121)
    );
    let missing = SessionId::generate(&mut rng);
    assert_eq!(store.record_activity(&missing, T0, Some(0)), None);
}

#[test]
fn debug_does_not_print_sessions() {
    let store = MemoryStore::new();
    let mut rng = StdRng::seed_from_u64(6);
    let s = make(&mut rng, "alice", T0, 3600);
    store.insert(s.clone(), T0);
    let shown = format!("{store:?}");
    assert!(
        !shown.contains("alice") && !shown.contains(s.id.as_str()),
        "{shown}"
    );
}

/// Loading in any order keeps exactly the latest-expiring sessions within the bound, reports
/// every one left out, and never replaces a session already held.
#[test]
fn loading_in_any_order_keeps_the_latest_expiring() {
    let mut rng = StdRng::seed_from_u64(21);
    let sessions: Vec<Session> = (0..40).map(|i| make(&mut rng, "u", T0, 100 + i)).collect();
    let mut order: Vec<usize> = (0..40).collect();
    rand::seq::SliceRandom::shuffle(order.as_mut_slice(), &mut rng);
    let store = MemoryStore::with_max_entries(10);
    let mut left_out = Vec::new();
    for &i in &order {
        left_out.extend(store.insert_loaded(sessions[i].clone(), T0));
    }
    let mut kept: Vec<u64> = store
        .sessions(None, T0)
        .iter()
        .map(|s| s.expires_at)
        .collect();
    kept.sort_unstable();
    assert_eq!(kept, (30..40).map(|i| T0 + 100 + i).collect::<Vec<_>>());
    assert_eq!(left_out.len(), 30);
    assert!(sessions[..30].iter().all(|s| left_out.contains(&s.id)));

    let mut newer = sessions[35].clone();
    newer.last_activity = T0 + 50;
    store.insert(newer.clone(), T0);
    assert!(store.insert_loaded(sessions[35].clone(), T0).is_empty());
    assert_eq!(
        store.fetch(&newer.id, T0),
        Some(newer),
        "the held session stays"
    );
}

#[test]
fn packed_numbers_read_digits_up_to_their_end_mark() {
    let read = |text: &str, end: u8| {
        let mut reader = Text { rest: text };
        (reader.number(end), reader.rest.to_owned())
    };
    assert_eq!(read("12:abc", b':'), (Some(12), "abc".to_owned()));
    assert_eq!(read("0#", b'#'), (Some(0), String::new()));
    assert_eq!(read("7:x", b'#').0, None, "another end mark");
    assert_eq!(read(":x", b':').0, None, "no digits");
    assert_eq!(read("+1:x", b':').0, None, "a sign is not a digit");
    assert_eq!(read("1a:x", b':').0, None);
    assert_eq!(read("12", b':').0, None, "no end mark");
    assert_eq!(read("99999999999999999999999:x", b':').0, None, "overflow");
}

#[test]
fn sessions_round_trip_through_the_packed_text() {
    let mut rng = StdRng::seed_from_u64(11);
    let mut session = make(&mut rng, "Zoë", 1_000, 3_600);
    session.identity.display_name = "Zoë: 12#3".to_owned();
    session.identity.emails = vec!["a@example.com".to_owned(), String::new(), "1:2#".to_owned()];
    session.identity.groups = (0..12).map(|i| format!("g{i}:#")).collect();
    let unpacked = Entry::pack(session.clone(), 0).unpack_as(session.id.clone());
    assert_eq!(unpacked.identity.username, session.identity.username);
    assert_eq!(
        unpacked.identity.display_name,
        session.identity.display_name
    );
    assert_eq!(unpacked.identity.emails, session.identity.emails);
    assert_eq!(unpacked.identity.groups, session.identity.groups);
    assert_eq!(unpacked.cookie_domain, session.cookie_domain);
}
