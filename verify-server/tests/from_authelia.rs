//! `examples/from-authelia/`: Authelia's own compose example configuration starts and logs in.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::time::Duration;

async fn exchange(addr: std::net::SocketAddr, request: String) -> String {
    common::raw_request(addr, &request).await
}

fn check(host: &str, cookie: &str) -> String {
    format!(
        "GET /api/authz/forward-auth HTTP/1.1\r\nHost: authelia:9091\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: {host}\r\nX-Forwarded-Uri: /\r\nX-Forwarded-Method: GET\r\nAccept: text/html\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
    )
}

#[tokio::test]
async fn authelias_compose_example_starts_and_logs_in() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/from-authelia");
    let dir = tempfile::tempdir().unwrap();
    for file in ["configuration.yml", "users_database.yml"] {
        std::fs::copy(example.join(file), dir.path().join(file)).unwrap();
    }
    let text = std::fs::read_to_string(dir.path().join("configuration.yml"))
        .unwrap()
        .replace("address: 'tcp://:9091'", "address: 'tcp://127.0.0.1:0'");
    let path = dir.path().join("configuration.yml");
    std::fs::write(&path, text).unwrap();
    let (config, warnings) = portcullis_verify_server::config::load_all(
        &[path],
        &portcullis_verify_server::config::LoadOptions::default(),
    )
    .unwrap();
    // Every section of Authelia's example is implemented: TOTP, the encryption key, the
    // filesystem notifier and password reset.
    let keys: Vec<&str> = warnings.iter().map(|w| w.key.as_str()).collect();
    assert!(keys.is_empty(), "{warnings:?}");
    let handle = portcullis_verify_server::App::build(config).await.unwrap();
    let addr = handle.local_addr();
    let stop = handle.shutdown_trigger();
    let served = tokio::spawn(handle.serve());

    let body = r#"{"username":"authelia","password":"authelia","keepMeLoggedIn":false}"#;
    let login = exchange(
        addr,
        format!(
            "POST /api/firstfactor HTTP/1.1\r\nHost: authelia.example.com\r\nX-Forwarded-Proto: https\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
    .await;
    assert!(login.starts_with("HTTP/1.1 200"), "{login}");
    // A two_factor rule exists, so Authelia does not send the user to default_redirection_url
    // after the first factor: the second one may still be needed.
    assert!(login.ends_with(r#"{"status":"OK"}"#), "{login}");
    let cookie = login
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .and_then(|c| c.split(';').next())
        .expect("session cookie")
        .to_owned();
    assert!(cookie.starts_with("authelia_session="), "{cookie}");

    let allowed = exchange(addr, check("traefik.example.com", &cookie)).await;
    assert!(allowed.starts_with("HTTP/1.1 200"), "{allowed}");
    assert!(
        allowed
            .to_ascii_lowercase()
            .contains("remote-user: authelia"),
        "{allowed}"
    );
    let public = exchange(addr, check("public.example.com", "x=y")).await;
    assert!(public.starts_with("HTTP/1.1 200"), "{public}");
    let anonymous = exchange(addr, check("traefik.example.com", "x=y")).await;
    assert!(anonymous.starts_with("HTTP/1.1 302"), "{anonymous}");
    assert!(
        anonymous.contains(
            "location: https://authelia.example.com/?rd=https%3A%2F%2Ftraefik.example.com%2F&rm=GET"
        ),
        "{anonymous}"
    );
    // two_factor cannot be satisfied yet: the one-factor session is sent back to the portal.
    let secure = exchange(addr, check("secure.example.com", &cookie)).await;
    assert!(secure.starts_with("HTTP/1.1 302"), "{secure}");
    let elsewhere = exchange(addr, check("other.example.org", &cookie)).await;
    assert!(elsewhere.starts_with("HTTP/1.1 400"), "{elsewhere}");

    stop.trigger();
    tokio::time::timeout(Duration::from_secs(15), served)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
