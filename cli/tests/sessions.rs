//! `portcullis sessions list` / `revoke` against the store a running `portcullis-verify` uses
//! (SQLite, and Redis when `redis-server` is installed): the server runs in this process on a real
//! socket, the CLI runs as a separate process.

// Tests wait for real processes and sockets on the wall clock; the clock rule is for the servers.
#![allow(clippy::disallowed_methods)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use assert_cmd::Command;
use portcullis_auth::regulation::Regulator;
use portcullis_auth::users::UserDatabase;
use portcullis_server_core::{Limits, Shutdown};
use portcullis_session::{EXTERNAL_CHANGE_CHECK_INTERVAL, RedisStore, SessionStore, SqliteStore};
use portcullis_verify_server::config::{SecretSources, load};
use portcullis_verify_server::{AppState, Tuning, router, system_clock};
use predicates::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Authelia's documented digest of "password".
const DIGEST: &str = "$argon2id$v=19$m=65536,t=3,p=4$2ohUAfh9yetl+utr4tLcCQ$AsXx0VlwjvNnCsa70u4HKZvFkC8Gwajr2pHGKcND/xs";

const CONFIG: &str = "\
authentication_backend:
  file:
    path: users.yml
access_control:
  default_policy: deny
  rules:
    - domain: '*.example.com'
      policy: one_factor
session:
  secret: cli-end-to-end-test-secret-0123456789
  cookies:
    - domain: example.com
      authelia_url: https://auth.example.com
storage:
  local:
    path: data/portcullis.sqlite3
";

fn portcullis() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_portcullis"));
    cmd.env_remove("PORTCULLIS_CONFIG")
        .env_remove("PORTCULLIS_SESSION_SECRET_FILE")
        .env_remove("AUTHELIA_SESSION_SECRET_FILE");
    cmd
}

/// A configuration, a users file (alice and bob, both "password") in a scratch folder.
fn setup(dir: &Path) -> PathBuf {
    setup_with(dir, CONFIG)
}

fn setup_with(dir: &Path, config: &str) -> PathBuf {
    let users = format!(
        "users:\n  alice:\n    displayname: Alice\n    password: \"{DIGEST}\"\n    groups: [admins]\n  bob:\n    displayname: Bob\n    password: \"{DIGEST}\"\n"
    );
    std::fs::write(dir.join("users.yml"), users).unwrap();
    let path = dir.join("configuration.yml");
    std::fs::write(&path, config).unwrap();
    path
}

/// Start the server as `portcullis-verify` does, on an ephemeral port, with the real clock.
async fn start_server(config_path: &Path) -> (SocketAddr, tokio::sync::watch::Sender<bool>) {
    let (config, _) = load(config_path, &SecretSources::default()).unwrap();
    let users = UserDatabase::load(
        config.users.file().expect("a users file"),
        config.case_insensitive,
        config.search_email,
    )
    .unwrap();
    let clock = system_clock();
    // As `portcullis-verify`'s main does.
    let (store, regulator): (Arc<dyn SessionStore>, Regulator) = match &config.redis {
        Some(redis) => {
            let secret = config.session_secret.as_ref().unwrap().expose().as_bytes();
            let store = Arc::new(RedisStore::new(redis.clone(), secret).unwrap());
            (store.clone(), Regulator::redis(config.regulation, store))
        }
        None => (
            Arc::new(SqliteStore::open(&config.storage_path, clock()).unwrap()),
            Regulator::open(config.regulation, &config.storage_path, clock()).unwrap(),
        ),
    };
    let state = AppState::new(config, users, store, regulator, clock, Tuning::default()).unwrap();
    let listener = portcullis_server_core::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(portcullis_server_core::serve(
        listener,
        router(state),
        None,
        Limits::default(),
        Shutdown::from(stopped).signalled(),
    ));
    (addr, stop)
}

/// One HTTP/1.1 exchange; returns the status and the raw response.
async fn http(addr: SocketAddr, head: &str, body: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "{head}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {text}"));
    (status, text)
}

fn header<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    response.split("\r\n\r\n").next()?.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

async fn login(addr: SocketAddr, username: &str) -> String {
    let body = format!(r#"{{"username":"{username}","password":"password"}}"#);
    let (status, response) = http(
        addr,
        "POST /api/firstfactor HTTP/1.1\r\nHost: auth.example.com\r\nContent-Type: application/json\r\n",
        &body,
    )
    .await;
    assert_eq!(status, 200, "{response}");
    let cookie = header(&response, "set-cookie").unwrap();
    let pair = cookie.split(';').next().unwrap();
    assert!(pair.starts_with("authelia_session="), "{cookie}");
    pair.to_owned()
}

async fn check(addr: SocketAddr, cookie: &str) -> (u16, String) {
    http(
        addr,
        &format!(
            "GET /api/authz/auth-request HTTP/1.1\r\nHost: verify\r\nX-Original-URL: https://app.example.com/\r\nX-Original-Method: GET\r\nCookie: {cookie}\r\n"
        ),
        "",
    )
    .await
}

/// Run the CLI as a process, off the runtime's worker threads.
async fn run_cli(args: Vec<String>) -> std::process::Output {
    tokio::task::spawn_blocking(move || portcullis().args(args).output().unwrap())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoke_from_the_cli_is_refused_by_the_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path());
    let config_arg = config.display().to_string();
    let (addr, _stop) = start_server(&config).await;

    let alice = login(addr, "alice").await;
    let bob = login(addr, "bob").await;
    let (status, response) = check(addr, &alice).await;
    assert_eq!(status, 200, "{response}");
    assert_eq!(header(&response, "remote-user"), Some("alice"));

    // The CLI lists what the server wrote, without ever printing a whole session id.
    let listed = run_cli(vec![
        "sessions".into(),
        "list".into(),
        "--config".into(),
        config_arg.clone(),
    ])
    .await;
    assert!(listed.status.success(), "{listed:?}");
    let out = String::from_utf8(listed.stdout).unwrap();
    let alice_id = alice.strip_prefix("authelia_session=").unwrap();
    let bob_id = bob.strip_prefix("authelia_session=").unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[0].starts_with("USER   DOMAIN       CREATED"), "{out}");
    for (line, user, id) in [(lines[1], "alice", alice_id), (lines[2], "bob", bob_id)] {
        assert!(
            line.starts_with(&format!("{user:5}  example.com  20")),
            "{line}"
        );
        assert!(line.contains("  no  "), "remember-me: {line}");
        assert!(line.ends_with(&format!("{}…", &id[..6])), "{line}");
    }
    assert!(!out.contains(alice_id) && !out.contains(bob_id), "{out}");

    let revoked = run_cli(vec![
        "sessions".into(),
        "revoke".into(),
        "--config".into(),
        config_arg.clone(),
        "--username".into(),
        "ALICE".into(),
    ])
    .await;
    assert!(revoked.status.success(), "{revoked:?}");
    assert_eq!(
        String::from_utf8(revoked.stdout).unwrap(),
        "revoked 1 session of ALICE\n"
    );

    // The server looks for changes by other processes at most once per interval.
    tokio::time::sleep(Duration::from_millis(
        EXTERNAL_CHANGE_CHECK_INTERVAL * 1000 + 100,
    ))
    .await;
    let (status, response) = check(addr, &alice).await;
    assert_eq!(status, 401, "the revoked session still passes: {response}");
    assert_eq!(header(&response, "remote-user"), None);
    // Bob's session is untouched.
    let (status, response) = check(addr, &bob).await;
    assert_eq!(status, 200, "{response}");
    assert_eq!(header(&response, "remote-user"), Some("bob"));

    let listed = run_cli(vec![
        "sessions".into(),
        "list".into(),
        "--config".into(),
        config_arg,
        "--username".into(),
        "alice".into(),
    ])
    .await;
    assert_eq!(String::from_utf8(listed.stdout).unwrap(), "no sessions\n");
}

#[test]
fn list_json_revoke_nobody_and_a_missing_store() {
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path());

    // No store yet: an error, and no file is created.
    portcullis()
        .args(["sessions", "list", "--config"])
        .arg(&config)
        .assert()
        .code(1)
        .stdout("")
        .stderr(predicate::str::starts_with("error: no session store at "));
    assert!(!dir.path().join("data/portcullis.sqlite3").exists());

    // An empty store, as a server leaves it before anyone logs in.
    drop(SqliteStore::open(&dir.path().join("data/portcullis.sqlite3"), 0).unwrap());
    portcullis()
        .args(["sessions", "list", "--format", "json", "--config"])
        .arg(&config)
        .assert()
        .success()
        .stdout("[]\n");
    portcullis()
        .args(["sessions", "revoke", "--username", "nobody", "--config"])
        .arg(&config)
        .assert()
        .success()
        .stdout("revoked 0 sessions of nobody\n");
    portcullis()
        .args(["sessions", "revoke", "--config"])
        .arg(&config)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--username"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_json_describes_sessions_without_their_ids() {
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path());
    let (addr, _stop) = start_server(&config).await;
    let alice = login(addr, "alice").await;
    let listed = run_cli(vec![
        "sessions".into(),
        "list".into(),
        "--format".into(),
        "json".into(),
        "--config".into(),
        config.display().to_string(),
    ])
    .await;
    assert!(listed.status.success(), "{listed:?}");
    let out = String::from_utf8(listed.stdout).unwrap();
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let sessions = json.as_array().unwrap();
    assert_eq!(sessions.len(), 1, "{out}");
    let s = &sessions[0];
    assert_eq!(s["username"], "alice");
    assert_eq!(s["cookie_domain"], "example.com");
    assert_eq!(s["level"], 1);
    assert_eq!(s["remember_me"], false);
    assert_eq!(
        s["expires_at"].as_u64().unwrap() - s["created_at"].as_u64().unwrap(),
        3600
    );
    let id = alice.strip_prefix("authelia_session=").unwrap();
    assert_eq!(s["id_prefix"], format!("{}…", &id[..6]));
    assert!(!out.contains(id));
}

/// Record a skipped test in the list `scripts/test` prints (`PORTCULLIS_TESTS_SKIPPED`), so that a
/// skip is never silent.
fn report_skip(why: &str) {
    use std::io::Write;
    let name = std::thread::current()
        .name()
        .unwrap_or("unnamed test")
        .to_owned();
    eprintln!("SKIPPED: {name}: {why}");
    if let Some(path) = std::env::var_os("PORTCULLIS_TESTS_SKIPPED")
        && let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
    {
        let _ = writeln!(file, "{name} ({why})");
    }
}

/// A private `redis-server` on a free port, stopped on drop.
struct Redis {
    child: std::process::Child,
    port: u16,
}

impl Redis {
    /// `None` when `redis-server` is not installed (an error when `CI` is set, as in scripts/test).
    fn start() -> Option<Redis> {
        let installed = std::process::Command::new("redis-server")
            .arg("--version")
            .output()
            .is_ok();
        if !installed {
            assert!(
                std::env::var_os("CI").is_none(),
                "redis-server is required when CI is set"
            );
            report_skip("redis-server not installed: the Redis case");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let redis = Redis { child, port };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(redis)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoke_on_redis_is_refused_at_once() {
    let Some(redis) = Redis::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let yaml = CONFIG.replace(
        "  cookies:\n",
        &format!(
            "  redis:\n    host: 127.0.0.1\n    port: {}\n  cookies:\n",
            redis.port
        ),
    );
    let config = setup_with(dir.path(), &yaml);
    let config_arg = config.display().to_string();
    let (addr, _stop) = start_server(&config).await;
    let alice = login(addr, "alice").await;
    assert_eq!(check(addr, &alice).await.0, 200);

    let listed = run_cli(vec![
        "sessions".into(),
        "list".into(),
        "--config".into(),
        config_arg.clone(),
    ])
    .await;
    assert!(listed.status.success(), "{listed:?}");
    let out = String::from_utf8(listed.stdout).unwrap();
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(
        out.lines()
            .nth(1)
            .unwrap()
            .starts_with("alice  example.com  20"),
        "{out}"
    );
    assert!(
        !dir.path().join("data").exists(),
        "Redis configured: no SQLite file"
    );

    let revoked = run_cli(vec![
        "sessions".into(),
        "revoke".into(),
        "--config".into(),
        config_arg,
        "--username".into(),
        "alice".into(),
    ])
    .await;
    assert_eq!(
        String::from_utf8(revoked.stdout).unwrap(),
        "revoked 1 session of alice\n"
    );
    // Redis is shared: no delay.
    let (status, response) = check(addr, &alice).await;
    assert_eq!(status, 401, "{response}");
}

#[test]
fn redis_down_is_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let yaml = CONFIG.replace(
        "  cookies:\n",
        &format!("  redis:\n    host: 127.0.0.1\n    port: {port}\n    timeout: 1s\n  cookies:\n"),
    );
    let config = setup_with(dir.path(), &yaml);
    let assert = portcullis()
        .args(["sessions", "revoke", "--username", "alice", "--config"])
        .arg(&config)
        .assert()
        .code(1)
        .stdout("");
    let stderr = String::from_utf8(assert.get_output().stderr.clone()).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: session store unavailable"),
        "{stderr}"
    );
}
