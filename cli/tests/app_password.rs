//! `portcullis app-password create|list|revoke` against the SQLite store, and the server (built by
//! `App::build` on the same configuration) accepting the created password as Basic credentials
//! until it is revoked.

// Tests wait for real processes and sockets on the wall clock; the clock rule is for the servers.
#![allow(clippy::disallowed_methods)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use assert_cmd::Command;
use base64::Engine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Authelia's documented digest of "password".
const DIGEST: &str = "$argon2id$v=19$m=65536,t=3,p=4$2ohUAfh9yetl+utr4tLcCQ$AsXx0VlwjvNnCsa70u4HKZvFkC8Gwajr2pHGKcND/xs";

const CONFIG: &str = "\
server:
  address: 'tcp://127.0.0.1:0/'
authentication_backend:
  file:
    path: users.yml
access_control:
  default_policy: deny
  rules:
    - domain: 'app.example.com'
      policy: one_factor
    - domain: 'secure.example.com'
      policy: two_factor
session:
  secret: cli-app-password-test-secret-0123456789
  cookies:
    - domain: example.com
      authelia_url: https://auth.example.com
storage:
  local:
    path: data/portcullis.sqlite3
";

fn portcullis() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_portcullis"));
    cmd.env_remove("PORTCULLIS_CONFIG");
    cmd
}

fn setup(dir: &Path) -> PathBuf {
    let users = format!("users:\n  alice:\n    displayname: Alice\n    password: \"{DIGEST}\"\n");
    std::fs::write(dir.join("users.yml"), users).unwrap();
    let path = dir.join("configuration.yml");
    std::fs::write(&path, CONFIG).unwrap();
    path
}

async fn check(addr: SocketAddr, url: &str, user: &str, password: &str) -> u16 {
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let request = format!(
        "GET /api/authz/auth-request HTTP/1.1\r\nHost: auth.example.com\r\nX-Original-URL: {url}\r\nX-Original-Method: GET\r\nAuthorization: Basic {basic}\r\nConnection: close\r\n\r\n"
    );
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&out);
    text.split(' ').nth(1).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn created_app_passwords_work_as_basic_credentials_until_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path());
    let created = portcullis()
        .args([
            "app-password",
            "create",
            "--user",
            "alice",
            "--name",
            "ci",
            "--expires",
            "30d",
            "--config",
        ])
        .arg(&config)
        .assert()
        .success();
    let password = String::from_utf8(created.get_output().stdout.clone())
        .unwrap()
        .trim()
        .to_owned();
    assert!(
        password.starts_with("pcap_") && password.len() == 48,
        "{password}"
    );
    let stderr = String::from_utf8(created.get_output().stderr.clone()).unwrap();
    assert!(stderr.contains("shown only this once"), "{stderr}");
    // The same name again, an unknown user, a bad name: invalid input.
    for args in [
        vec!["app-password", "create", "--user", "alice", "--name", "ci"],
        vec!["app-password", "create", "--user", "nobody", "--name", "x"],
        vec![
            "app-password",
            "create",
            "--user",
            "alice",
            "--name",
            "has space",
        ],
        vec![
            "app-password",
            "create",
            "--user",
            "alice",
            "--name",
            "y",
            "--expires",
            "soon",
        ],
    ] {
        portcullis()
            .args(&args)
            .arg("--config")
            .arg(&config)
            .assert()
            .code(2);
    }
    let listed = portcullis()
        .args(["app-password", "list", "--user", "alice", "--config"])
        .arg(&config)
        .assert()
        .success();
    let listed = String::from_utf8(listed.get_output().stdout.clone()).unwrap();
    assert!(listed.starts_with("ci\tcreated "), "{listed}");
    assert!(
        !listed.contains("pcap_") && !listed.contains("sha256"),
        "never the password or its digest"
    );

    let (cfg, _) = portcullis_verify_server::config::load(&config, &Default::default()).unwrap();
    let handle = portcullis_verify_server::App::build_with(
        cfg,
        portcullis_verify_server::Tuning {
            failure_delay: Duration::from_millis(10),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let addr = handle.local_addr();
    let stop = handle.shutdown_trigger();
    tokio::spawn(handle.serve());
    assert_eq!(
        check(addr, "https://app.example.com/", "alice", &password).await,
        200
    );
    assert_eq!(
        check(addr, "https://app.example.com/", "alice", "password").await,
        200,
        "the password still works"
    );
    // Another last character (a fixed 'A' would be the same password one time in 64).
    let last = if password.ends_with('A') { 'B' } else { 'A' };
    let wrong = format!("{}{last}", &password[..password.len() - 1]);
    assert_eq!(
        check(addr, "https://app.example.com/", "alice", &wrong).await,
        401
    );
    assert_ne!(
        check(addr, "https://secure.example.com/", "alice", &password).await,
        200,
        "an app password is one factor"
    );

    portcullis()
        .args([
            "app-password",
            "revoke",
            "--user",
            "alice",
            "--name",
            "ci",
            "--config",
        ])
        .arg(&config)
        .assert()
        .success();
    portcullis()
        .args([
            "app-password",
            "revoke",
            "--user",
            "alice",
            "--name",
            "ci",
            "--config",
        ])
        .arg(&config)
        .assert()
        .code(2);
    // Revoked: refused at once (the Basic cache is off by default in an Authelia file).
    assert_eq!(
        check(addr, "https://app.example.com/", "alice", &password).await,
        401
    );
    stop.trigger();
}
