//! The `portcullis-outpost` binary: a bad configuration exits 2 naming file, line and key; a good
//! one logs its ready line, and SIGTERM stops it cleanly.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const BINARY: &str = env!("CARGO_BIN_EXE_portcullis-outpost");

#[test]
fn a_bad_configuration_exits_2_and_names_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("outpost.yml");
    std::fs::write(
        &file,
        "storage:\n  memory: true\nproviders:\n  - name: app\n    mode: sideways\n",
    )
    .unwrap();
    let out = Command::new(BINARY)
        .arg("--config")
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}:5: providers[0].mode", file.display())),
        "{stderr}"
    );
    let missing = Command::new(BINARY)
        .arg("--config")
        .arg(dir.path().join("none.yml"))
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
}

#[test]
fn it_starts_logs_ready_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("outpost.yml");
    // The provider is never reachable: the server starts anyway and answers 503 for it.
    std::fs::write(
        &file,
        "server:\n  address: 'tcp://127.0.0.1:0/'\ntelemetry:\n  metrics:\n    enabled: false\nstorage:\n  local:\n    path: sessions.sqlite3\nproviders:\n  - name: app\n    mode: forward_single\n    external_host: https://app.example.com\n    cookie_secret: 'a-cookie-secret-of-at-least-32-bytes!'\n    client_id: app\n    client_secret: s\n    issuer: http://127.0.0.1:9\n",
    )
    .unwrap();
    let mut child = Command::new(BINARY)
        .arg("--config")
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let ready = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find(|l| l.contains("portcullis-outpost ready"));
    assert!(ready.is_some(), "no ready line");
    assert!(
        dir.path().join("sessions.sqlite3").exists(),
        "the SQLite store is created"
    );
    let killed = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "a clean stop");
}
