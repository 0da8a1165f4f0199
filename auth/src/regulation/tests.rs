//! Regulation rules, in memory and persisted.

use super::*;

fn cfg(by_user: bool, by_ip: bool) -> RegulationConfig {
    RegulationConfig {
        max_retries: 3,
        find_time: 120,
        ban_time: 300,
        by_user,
        by_ip,
    }
}

const IP: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(203, 0, 113, 4)));

#[tokio::test]
async fn bans_after_max_retries_until_last_failure_plus_ban_time() {
    let r = Regulator::in_memory(cfg(true, false));
    r.record("alice", IP, false, 1000).await;
    r.record("alice", IP, false, 1010).await;
    assert!(!r.is_banned(Some("alice"), IP, 1011).await);
    r.record("alice", IP, false, 1020).await;
    assert!(r.is_banned(Some("alice"), None, 1021).await);
    assert!(!r.is_banned(None, IP, 1021).await, "ip mode is off");
    assert!(r.is_banned(Some("alice"), None, 1319).await);
    assert!(
        !r.is_banned(Some("alice"), None, 1320).await,
        "expires at last failure + ban_time"
    );
    assert_eq!(r.active_bans(1021).await, 1);
}

#[tokio::test]
async fn a_success_resets_and_the_window_limits() {
    let r = Regulator::in_memory(cfg(true, true));
    r.record("bob", IP, false, 100).await;
    r.record("bob", IP, false, 101).await;
    r.record("bob", IP, true, 102).await;
    r.record("bob", IP, false, 103).await;
    assert!(!r.is_banned(Some("bob"), IP, 104).await);
    // failures older than find_time do not count
    let r = Regulator::in_memory(cfg(true, false));
    r.record("bob", None, false, 100).await;
    r.record("bob", None, false, 101).await;
    r.record("bob", None, false, 400).await;
    assert!(!r.is_banned(Some("bob"), None, 401).await);
}

#[tokio::test]
async fn ip_mode_and_unknown_users() {
    let r = Regulator::in_memory(cfg(false, true));
    for t in 0..3 {
        r.record("", IP, false, 10 + t).await;
    }
    assert!(r.is_banned(Some("anyone"), IP, 20).await);
    let zero = Regulator::in_memory(RegulationConfig {
        max_retries: 0,
        ..cfg(true, true)
    });
    for t in 0..10 {
        zero.record("x", IP, false, t).await;
    }
    assert!(
        !zero.is_banned(Some("x"), IP, 11).await,
        "max_retries 0 disables regulation"
    );
}

#[tokio::test]
async fn bans_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite3");
    let r = Regulator::open(cfg(true, false), &path, 0).unwrap();
    for t in 0..3 {
        r.record("alice", IP, false, 1000 + t).await;
    }
    drop(r);
    let r = Regulator::open(cfg(true, false), &path, 1100).unwrap();
    assert!(r.is_banned(Some("alice"), None, 1100).await);
    // attempts inside the window survive too: two more failures after expiry re-ban with the old one
    let r2 = Regulator::open(cfg(true, false), &path, 1500).unwrap();
    assert!(!r2.is_banned(Some("alice"), None, 1500).await);
}
