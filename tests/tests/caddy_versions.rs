//! What differs between Debian's Caddy 2.6 and the current 2.11 in `forward_auth`'s
//! `copy_headers` (the GHSA-7r4p-vjf4-gxv4 fix), and why `examples/proxies/Caddyfile` deletes the
//! client's identity headers itself: an authorization answer whose `Remote-User` is empty (as every
//! anonymous bypass is) must never leave the client's own copy in place, whatever the version.
//!
//! The authorization server here is an in-process fake, so the exact answer bytes are controlled.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Tests wait for real processes on the wall clock; the clock rule is for the servers.
#![allow(clippy::disallowed_methods)]

use std::process::Command;
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::HeaderValue;
use axum::response::IntoResponse;
use portcullis_tests::process::{Process, find_program, free_port, require};
use portcullis_tests::upstream::Upstream;

/// An authorization answer: 200 with an empty `Remote-User` and `Remote-Groups: dev`.
async fn fake_authorizer() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().fallback(|| async {
        let mut response = "200 OK".into_response();
        let headers = response.headers_mut();
        headers.insert("remote-user", HeaderValue::from_static(""));
        headers.insert("remote-groups", HeaderValue::from_static("dev"));
        response
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

/// The `Remote-User` and `Remote-Groups` the upstream receives when a client sends
/// `Remote-User: mallory` and `Remote-Groups: admins` through `program`, with or without the
/// Caddyfile's own deletes before `forward_auth`.
async fn upstream_sees(program: &str, deletes: bool) -> (Option<String>, Option<String>) {
    let dir = tempfile::tempdir().unwrap();
    let (authorizer, upstream) = (fake_authorizer().await, Upstream::start().await);
    let port = free_port();
    let delete = if deletes {
        "\t\trequest_header -Remote-User\n\t\trequest_header -Remote-Groups\n"
    } else {
        ""
    };
    let caddyfile = format!(
        "{{\n\tadmin off\n\tauto_https off\n\thttp_port {port}\n}}\n\
         :{port} {{\n\troute {{\n{delete}\t\tforward_auth {authorizer} {{\n\t\t\turi /check\n\t\t\tcopy_headers Remote-User Remote-Groups\n\t\t}}\n\t}}\n\treverse_proxy {}\n}}\n",
        upstream.addr
    );
    let file = dir.path().join("Caddyfile");
    std::fs::write(&file, caddyfile).unwrap();
    let mut command = Command::new(find_program(program).unwrap());
    command
        .args(["run", "--adapter", "caddyfile", "--config"])
        .arg(&file)
        .env("HOME", dir.path())
        .env("XDG_CONFIG_HOME", dir.path().join("config"))
        .env("XDG_DATA_HOME", dir.path().join("data"));
    let mut caddy = Process::spawn(program, command, dir.path(), false);
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        caddy.assert_running();
        let sent = client
            .get(&url)
            .header("Remote-User", "mallory")
            .header("Remote-Groups", "admins")
            .send()
            .await;
        if matches!(&sent, Ok(r) if r.status() == 200) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{program} did not answer: {sent:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let seen = upstream.seen();
    let last = seen.last().expect("the upstream was reached");
    (
        last.one("remote-user").map(str::to_owned),
        last.one("remote-groups").map(str::to_owned),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_headers_with_an_empty_value_across_caddy_versions() {
    if !require(&["caddy", "caddy-current"]) {
        return;
    }
    let mut observed = Vec::new();
    for program in ["caddy", "caddy-current"] {
        for deletes in [false, true] {
            let (user, groups) = upstream_sees(program, deletes).await;
            eprintln!(
                "{program} deletes={deletes}: Remote-User {user:?}, Remote-Groups {groups:?}"
            );
            assert_eq!(
                groups.as_deref(),
                Some("dev"),
                "{program}: a non-empty value is copied"
            );
            observed.push(((program, deletes), user));
        }
    }
    for ((program, deletes), user) in &observed {
        if *deletes {
            assert!(
                user.as_deref().is_none_or(str::is_empty),
                "{program} with the example's deletes: the client's copy is gone: {user:?}"
            );
        }
    }
    let without = |program: &str| {
        observed
            .iter()
            .find(|((p, d), _)| *p == program && !*d)
            .and_then(|(_, u)| u.clone())
    };
    // Debian's 2.6 overwrites the client's copy with the empty value; 2.11 (after the fix) deletes
    // the client's copy of every copy_headers name before copying, so nothing reaches the upstream.
    assert_eq!(without("caddy").as_deref(), Some(""), "Caddy 2.6");
    assert_eq!(without("caddy-current"), None, "Caddy 2.11");
}
