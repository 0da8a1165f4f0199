//! The checks Envoy's HTTP `ext_authz` filter sends, byte for byte as its documentation describes
//! them (Envoy itself cannot be installed here): the original method, the endpoint path with the
//! original path appended, the original `Host`, `Content-Length: 0`, and the headers Authelia's
//! Envoy guide allows (`cookie`, `authorization`, `accept`, `x-forwarded-for`) plus the
//! `X-Forwarded-Proto` it adds, sent to a real listening server.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;

async fn send(addr: std::net::SocketAddr, request: String) -> String {
    raw_request(addr, &request).await
}

/// An ext_authz check for `method original_path` on `host`.
fn envoy(method: &str, original_path: &str, host: &str, cookie: Option<&str>) -> String {
    let cookie = cookie
        .map(|c| format!("cookie: {c}\r\n"))
        .unwrap_or_default();
    format!(
        "{method} /api/authz/ext-authz{original_path} HTTP/1.1\r\nhost: {host}\r\ncontent-length: 0\r\naccept: text/html,application/xhtml+xml\r\nx-forwarded-for: 203.0.113.50\r\nx-forwarded-proto: https\r\nx-request-id: 5d6f0c1e-9a3b-4a6e-8a53-2f3f0f7d9b11\r\nx-envoy-expected-rq-timeout-ms: 5000\r\n{cookie}connection: close\r\n\r\n"
    )
}

#[tokio::test]
async fn envoy_ext_authz_checks_for_the_root_a_sub_path_and_a_query() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("users.yml"), users_yaml()).unwrap();
    let path = dir.path().join("configuration.yml");
    std::fs::write(
        &path,
        CONFIG.replace("tcp://127.0.0.1:9091/", "tcp://127.0.0.1:0/"),
    )
    .unwrap();
    let (config, _) = portcullis_verify_server::config::load(&path, &Default::default()).unwrap();
    let handle = portcullis_verify_server::App::build(config).await.unwrap();
    let (addr, stop) = (handle.local_addr(), handle.shutdown_trigger());
    let served = tokio::spawn(handle.serve());

    let cases = [
        ("GET", "/", "https%3A%2F%2Fapp.example.com%2F&rm=GET"),
        (
            "GET",
            "/reports/2026",
            "https%3A%2F%2Fapp.example.com%2Freports%2F2026&rm=GET",
        ),
        (
            "POST",
            "/search?q=a%20b&page=2",
            "https%3A%2F%2Fapp.example.com%2Fsearch&rm=POST",
        ),
    ];
    for (method, original, rd) in cases {
        let reply = send(addr, envoy(method, original, "app.example.com", None)).await;
        let status = if method == "GET" { "302" } else { "303" };
        assert!(
            reply.starts_with(&format!("HTTP/1.1 {status}")),
            "{original}: {reply}"
        );
        assert!(
            reply.contains(&format!("?rd={rd}\r\n")),
            "{original}: {reply}"
        );
    }
    // The bypassed host's root and sub-paths are allowed, identity headers present and empty.
    let reply = send(addr, envoy("GET", "/", "public.example.com", None)).await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains("remote-user: \r\n"), "{reply}");
    let reply = send(
        addr,
        envoy("GET", "/public/logo.png", "app.example.com", None),
    )
    .await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");

    // A logged-in browser's cookie, forwarded by Envoy, lets the request through with its identity.
    let body = format!(r#"{{"username":"alice","password":"{ALICE_PASSWORD}"}}"#);
    let login = send(
        addr,
        format!(
            "POST /api/firstfactor HTTP/1.1\r\nhost: auth.example.com\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
    .await;
    let cookie = login
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .and_then(|c| c.split(';').next())
        .unwrap_or_else(|| panic!("no session cookie: {login}"))
        .to_owned();
    let reply = send(addr, envoy("GET", "/", "app.example.com", Some(&cookie))).await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains("remote-user: alice\r\n"), "{reply}");

    stop.trigger();
    tokio::time::timeout(Duration::from_secs(15), served)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
