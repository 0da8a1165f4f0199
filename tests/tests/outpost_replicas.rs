//! `portcullis-outpost` sessions beyond one process (docs/reference/outpost.md §10, §14 item 7,
//! §16 "Storage", §17): two replicas built by `App::build` from the same configuration (only the
//! listen address differs) with `session.redis` on one real `redis-server`, and one outpost on a
//! SQLite file that is shut down and started again. The provider is panva's oidc-provider
//! (`tests/oidc-rp/idp.mjs`), the application a real axum app; every login goes through the
//! provider's HTML form.
//!
//! What it shows:
//! - a login started on replica A finishes on replica B (the state is not tied to a process), a
//!   session made on A works on B, and a sign-out on B ends it on both;
//! - with Redis stopped, a request with a session cookie is a 503 on both replicas, never an
//!   allow; when Redis is started again on the same port the replicas recover by themselves (no
//!   restart) and the next login works on both;
//! - a session in the SQLite file survives the outpost's shutdown and a new start on the file.

// Tests wait for real processes and sockets on the wall clock; the clock rule is for the servers.
#![allow(clippy::disallowed_methods)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use portcullis_tests::outpost_support::{
    APP_HOST, App, Idp, Outpost, USERNAME, Web, init_logs, outpost_config, redirect_uri, redis_on,
    require_idp,
};
use portcullis_tests::process::{FailureLogs, free_port};

/// The application's page names the user: the request reached it with her identity.
fn shows_user(body: &str) -> bool {
    body.contains(&format!("<h1 id=\"user\">{USERNAME}</h1>"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_on_one_redis_share_sessions_sign_out_and_survive_a_redis_restart() {
    if !require_idp(&["redis-server"]) {
        return;
    }
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let redis_port = free_port();
    let redis = redis_on(dir.path(), "redis-first", redis_port);
    let ports = [free_port(), free_port()];
    // Replica A's address is the one the provider knows (the load balancer's, in a real set-up).
    let external = format!("http://{APP_HOST}:{}", ports[0]);
    let idp = Idp::start(dir.path(), &[redirect_uri(&external)]).await;
    let mut logs = FailureLogs {
        files: idp.process.logs.clone(),
    };
    logs.files.extend(redis.logs.clone());
    let app = App::start().await;
    let head = format!(
        "session:\n  redis:\n    host: 127.0.0.1\n    port: {redis_port}\n    timeout: 2s\n"
    );
    let a = Outpost::start(&outpost_config(ports[0], &external, &app, &idp, &head)).await;
    let b = Outpost::start(&outpost_config(ports[1], &external, &app, &idp, &head)).await;
    assert_eq!(a.cookie_name, b.cookie_name);
    let name = a.cookie_name.clone();
    let (base_a, base_b) = (a.base(), b.base());
    let mut web = Web::new();

    // Started on A, finished on B; the session works on both.
    let cookie = web.login_via(&base_a, &base_b, &external, "/", &name).await;
    for base in [&base_a, &base_b] {
        let r = web.get(&format!("{base}/"), Some(&cookie)).await;
        assert_eq!(r.status, 200, "{base}: {r:?}");
        assert!(shows_user(&r.body), "{base}: {}", r.body);
    }
    // Made on A, used on B.
    let mut other = Web::new();
    let cookie_a = other.login(&base_a, &external, "/", &name).await;
    let r = other.get(&format!("{base_b}/"), Some(&cookie_a)).await;
    assert_eq!(r.status, 200, "a session made on A works on B: {r:?}");
    assert!(shows_user(&r.body));

    // Sign-out on B: every session of the user ends, on both replicas.
    let r = web
        .get(
            &format!("{base_b}/outpost.goauthentik.io/sign_out"),
            Some(&cookie_a),
        )
        .await;
    assert_eq!(r.status, 302, "{r:?}");
    assert!(
        r.location().starts_with(&idp.end_session()),
        "{}",
        r.location()
    );
    let served = app.requests();
    for c in [&cookie, &cookie_a] {
        for base in [&base_a, &base_b] {
            let r = web.get(&format!("{base}/"), Some(c)).await;
            assert_eq!(r.status, 302, "signed out on B, refused by {base}: {r:?}");
        }
    }
    assert_eq!(
        app.requests(),
        served,
        "no signed-out request reached the application"
    );

    // Redis stops: a session cookie is never an allow.
    let mut fresh = Web::new();
    let cookie = fresh.login(&base_a, &external, "/", &name).await;
    assert_eq!(
        fresh.get(&format!("{base_b}/"), Some(&cookie)).await.status,
        200
    );
    drop(redis);
    let served = app.requests();
    for base in [&base_a, &base_b] {
        let r = fresh.get(&format!("{base}/"), Some(&cookie)).await;
        assert_eq!(r.status, 503, "Redis is down: {base} refuses: {r:?}");
    }
    assert_eq!(
        app.requests(),
        served,
        "nothing reached the application without Redis"
    );

    // Redis starts again on the same port (empty: no persistence). The replicas reconnect by
    // themselves; wait until a request is answered without the 503.
    let redis = redis_on(dir.path(), "redis-second", redis_port);
    logs.files.extend(redis.logs.clone());
    for base in [&base_a, &base_b] {
        let started = Instant::now();
        let r = loop {
            let r = fresh.get(&format!("{base}/"), Some(&cookie)).await;
            if r.status != 503 {
                break r;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{base} still refuses a minute after Redis came back: {r:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        // The session was in the Redis that stopped: it is gone, and the cookie sends to login.
        assert_eq!(r.status, 302, "{base}: {r:?}");
    }
    assert_eq!(app.requests(), served);
    let cookie = fresh.login(&base_b, &external, "/", &name).await;
    for base in [&base_a, &base_b] {
        let r = fresh.get(&format!("{base}/"), Some(&cookie)).await;
        assert_eq!(r.status, 200, "after Redis came back, {base}: {r:?}");
        assert!(shows_user(&r.body));
    }
    a.stop().await;
    b.stop().await;
    drop(logs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_sessions_survive_a_restart_of_the_outpost() {
    if !require_idp(&[]) {
        return;
    }
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let external = format!("http://{APP_HOST}:{port}");
    let idp = Idp::start(dir.path(), &[redirect_uri(&external)]).await;
    let _logs = FailureLogs {
        files: idp.process.logs.clone(),
    };
    let app = App::start().await;
    let db = dir.path().join("outpost.sqlite3");
    let head = format!("storage:\n  local:\n    path: '{}'\n", db.display());
    let text = outpost_config(port, &external, &app, &idp, &head);

    let first = Outpost::start(&text).await;
    let name = first.cookie_name.clone();
    let base = first.base();
    let mut web = Web::new();
    let cookie = web.login(&base, &external, "/", &name).await;
    let other_session = web.login(&base, &external, "/", &name).await;
    for c in [&cookie, &other_session] {
        assert_eq!(web.get(&format!("{base}/"), Some(c)).await.status, 200);
    }
    first.stop().await;
    assert!(db.is_file(), "the sessions are in {}", db.display());

    // A new outpost on the same file (and address).
    let second = Outpost::start(&text).await;
    let r = web.get(&format!("{base}/"), Some(&cookie)).await;
    assert_eq!(r.status, 200, "the session outlived the outpost: {r:?}");
    assert!(shows_user(&r.body), "{}", r.body);
    // A sign-out after the restart ends the sessions made before it.
    let r = web
        .get(
            &format!("{base}/outpost.goauthentik.io/sign_out"),
            Some(&cookie),
        )
        .await;
    assert_eq!(r.status, 302);
    for c in [&cookie, &other_session] {
        assert_eq!(web.get(&format!("{base}/"), Some(c)).await.status, 302);
    }
    second.stop().await;

    // And the sign-out is kept in the file too.
    let third = Outpost::start(&text).await;
    assert_eq!(
        web.get(&format!("{base}/"), Some(&cookie)).await.status,
        302
    );
    third.stop().await;
}
