//! Tests over real sockets and real processes: header limits, restart survival on SQLite, users-file
//! reload, configuration errors and graceful shutdown of the binary.

// Tests wait for real processes and sockets on the wall clock; the clock rule is for the servers.
#![allow(clippy::disallowed_methods)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use common::*;
use http::StatusCode;
use portcullis_auth::regulation::Regulator;
use portcullis_auth::users::UserDatabase;
use portcullis_server_core::{Limits, Shutdown};
use portcullis_session::SqliteStore;
use portcullis_verify_server::reload::watch_users;
use portcullis_verify_server::{AppState, router};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn start(state: AppState) -> (std::net::SocketAddr, tokio::sync::watch::Sender<bool>) {
    let listener = portcullis_server_core::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(portcullis_server_core::serve(
        listener,
        router(state),
        None,
        Limits::default(),
        Shutdown::from(rx).signalled(),
    ));
    (addr, tx)
}

#[tokio::test]
async fn oversized_header_blocks_get_431_and_real_peers_are_resolved() {
    let h = Harness::new();
    let (addr, _stop) = start(h.state.clone()).await;
    let big = "x".repeat(20 * 1024);
    let response = raw_request(
        addr,
        &format!("GET /api/authz/auth-request HTTP/1.1\r\nHost: verify\r\nX-Original-URL: https://app.example.com/\r\nX-Original-Method: GET\r\nCookie: big={big}\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert!(
        response.starts_with("HTTP/1.1 431"),
        "{}",
        &response[..response.len().min(200)]
    );
    let many: String = (0..150).map(|i| format!("X-H{i}: v\r\n")).collect();
    let response = raw_request(
        addr,
        &format!("GET /api/health HTTP/1.1\r\nHost: verify\r\n{many}Connection: close\r\n\r\n"),
    )
    .await;
    assert!(
        response.starts_with("HTTP/1.1 431"),
        "{}",
        &response[..response.len().min(200)]
    );
    // A normal check over the socket: the loopback peer is trusted.
    let response = raw_request(
        addr,
        "GET /api/authz/auth-request HTTP/1.1\r\nHost: verify\r\nX-Original-URL: https://public.example.com/\r\nX-Original-Method: GET\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response.to_ascii_lowercase().contains("remote-user: \r\n"),
        "{response}"
    );
}

#[tokio::test]
async fn sessions_survive_a_restart_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("data").join("portcullis.sqlite3");
    let cookie = {
        let store = SqliteStore::open_with(&db, Default::default(), 1_700_000_000).unwrap();
        let h = Harness::with(CONFIG, Arc::new(store));
        h.login("auth.example.com", "alice", ALICE_PASSWORD).await
    };
    // A new process would open the same file.
    let store = SqliteStore::open_with(&db, Default::default(), 1_700_000_000).unwrap();
    let h = Harness::with(CONFIG, Arc::new(store));
    let r = h
        .send(
            auth_request("https://app.example.com/", "GET")
                .header("cookie", &cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("remote-user"), Some("alice"));
}

#[tokio::test]
async fn bans_survive_a_restart_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db.sqlite3");
    let config = config(CONFIG);
    let regulator = Regulator::open(config.regulation, &db, 1_700_000_000).unwrap();
    for _ in 0..3 {
        regulator.record("bob", None, false, 1_700_000_000).await;
    }
    drop(regulator);
    let regulator = Regulator::open(config.regulation, &db, 1_700_000_010).unwrap();
    assert!(regulator.is_banned(Some("bob"), None, 1_700_000_010).await);
}

#[tokio::test]
async fn users_file_reloads_and_a_broken_file_keeps_the_old_users() {
    let dir = tempfile::tempdir().unwrap();
    let users_path = dir.path().join("users.yml");
    std::fs::write(&users_path, users_yaml()).unwrap();
    let yaml = CONFIG.replace(
        "path: users.yml",
        &format!("path: {}\n    watch: true", users_path.display()),
    );
    let config = config(&yaml);
    let users = UserDatabase::load(&users_path, true, true).unwrap();
    let regulator = Regulator::in_memory(config.regulation);
    let mut t = tuning();
    t.users_poll_interval = Duration::from_millis(20);
    let state = AppState::new(
        config,
        users,
        Arc::new(portcullis_session::MemoryStore::new()),
        regulator,
        portcullis_verify_server::system_clock(),
        t,
    )
    .unwrap();
    watch_users(state.clone());
    let alice_ok = |state: &AppState| state.users().lookup("alice").is_some();
    assert!(alice_ok(&state));

    // A broken file: the old users stay.
    std::fs::write(&users_path, "users:\n  alice: [not, a, map]\n").unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(alice_ok(&state), "invalid file must not replace the users");

    // A valid file without alice: she is gone.
    let without_alice = users_yaml().replace("  alice:\n", "  alice:\n    disabled: true\n");
    std::fs::write(&users_path, without_alice).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while alice_ok(&state) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!alice_ok(&state), "reload did not happen");
}

/// The listen address in a text ready line (`… address=127.0.0.1:40123 …`).
fn ready_address(ready: &str) -> std::net::SocketAddr {
    ready
        .split("address=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {ready:?}"))
}

fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_portcullis-verify"))
}

#[test]
fn configuration_errors_exit_2_naming_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("configuration.yml");
    std::fs::write(&path, CONFIG.replace("  expiration: 1h", "  expiraton: 1h")).unwrap();
    let out = binary().arg("--config").arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = CONFIG
        .lines()
        .position(|l| l == "  expiration: 1h")
        .unwrap()
        + 1;
    assert!(
        stderr.contains(&format!("{}:{line}: session", path.display())),
        "{stderr}"
    );
    assert!(stderr.contains("expiraton"), "{stderr}");
}

#[test]
fn starts_stops_on_sigterm_and_refuses_a_corrupt_database() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("users.yml"), users_yaml()).unwrap();
    let yaml = CONFIG.replace("tcp://127.0.0.1:9091/", "tcp://127.0.0.1:0/")
        + "storage:\n  local:\n    path: db/portcullis.sqlite3\n";
    let path = dir.path().join("configuration.yml");
    std::fs::write(&path, &yaml).unwrap();
    let mut child = binary()
        .arg("--config")
        .arg(&path)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    // The sessions load in the background, so the end of the load is logged before or after the
    // ready line; both must come.
    let (mut ready, mut loaded) = (None, None);
    for line in stdout.lines() {
        let line = line.unwrap();
        if line.contains("portcullis-verify ready") {
            ready = Some(line);
        } else if line.contains("sessions loaded") {
            loaded = Some(line);
        }
        if ready.is_some() && loaded.is_some() {
            break;
        }
    }
    let ready = ready.expect("ready line");
    let loaded = loaded.expect("sessions loaded line");
    assert!(loaded.contains("load_ms"), "{loaded}");
    assert!(
        ready.contains("users=2") || ready.contains("users\u{1b}[0m\u{1b}[2m=\u{1b}[0m2"),
        "{ready}"
    );
    assert!(
        dir.path().join("db").join("portcullis.sqlite3").exists(),
        "database created with its folder"
    );
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let code = loop {
        if let Some(code) = child.try_wait().unwrap() {
            break code;
        }
        assert!(Instant::now() < deadline, "did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(code.success(), "{code:?}");

    // A corrupt database is a startup error and the file is left untouched.
    let db = dir.path().join("db").join("portcullis.sqlite3");
    let _ = std::fs::remove_file(dir.path().join("db").join("portcullis.sqlite3-wal"));
    let _ = std::fs::remove_file(dir.path().join("db").join("portcullis.sqlite3-shm"));
    std::fs::write(
        &db,
        b"this is not a database, it is a text file that must not be overwritten",
    )
    .unwrap();
    let out = binary().arg("--config").arg(&path).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("portcullis.sqlite3"), "{stderr}");
    assert_eq!(
        std::fs::read(&db).unwrap(),
        b"this is not a database, it is a text file that must not be overwritten"
    );
}

#[test]
fn quickstart_configuration_is_valid() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("examples")
        .join("quickstart");
    let (config, warnings) = portcullis_verify_server::config::load(
        &root.join("configuration.yml"),
        &Default::default(),
    )
    .unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let users = UserDatabase::load(
        config.users.file().expect("a users file"),
        config.case_insensitive,
        config.search_email,
    )
    .unwrap();
    assert_eq!(users.len(), 2);
    assert!(
        users
            .lookup("alice")
            .unwrap()
            .digest
            .verify("alice-portcullis")
    );
    assert!(users.lookup("bob").unwrap().digest.verify("bob-portcullis"));
}

#[tokio::test]
async fn serves_https_with_rustls() {
    use tokio_rustls::rustls;
    let dir = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, certified.cert.pem()).unwrap();
    std::fs::write(&key_path, certified.key_pair.serialize_pem()).unwrap();
    let acceptor = portcullis_server_core::tls_acceptor(&cert_path, &key_path).unwrap();
    let h = Harness::new();
    let listener = portcullis_server_core::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let (_stop, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(portcullis_server_core::serve(
        listener,
        router(h.state.clone()),
        Some(acceptor),
        Limits::default(),
        Shutdown::from(rx).signalled(),
    ));

    let mut roots = rustls::RootCertStore::empty();
    roots.add(certified.cert.der().clone()).unwrap();
    let client = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    tls.write_all(
        b"GET /api/health HTTP/1.1\r\nHost: auth.example.com\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let mut out = Vec::new();
    let _ = tls.read_to_end(&mut out).await;
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.ends_with(r#"{"status":"OK"}"#), "{text}");
    // A plain-HTTP client on the TLS port gets nothing useful.
    let response = raw_request(
        addr,
        "GET /api/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(!response.starts_with("HTTP/1.1 200"));
}

/// `App::build` assembles the whole server from a configuration file: the path of
/// `server.address` is kept as the prefix everything is served under, the SQLite store is created
/// next to the configuration, and the handle's trigger stops it gracefully.
#[tokio::test]
async fn app_serves_under_the_address_path_and_stops_on_its_trigger() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("users.yml"), users_yaml()).unwrap();
    let yaml = CONFIG.replace("tcp://127.0.0.1:9091/", "tcp://127.0.0.1:0/authelia/");
    let path = dir.path().join("configuration.yml");
    std::fs::write(&path, &yaml).unwrap();
    let (config, _) = portcullis_verify_server::config::load(&path, &Default::default()).unwrap();
    assert_eq!(
        config.storage_path,
        dir.path().join("data/portcullis.sqlite3")
    );
    let handle = portcullis_verify_server::App::build(config).await.unwrap();
    let addr = handle.local_addr();
    let stop = handle.shutdown_trigger();
    let served = tokio::spawn(handle.serve());
    let health = raw_request(
        addr,
        "GET /authelia/api/health HTTP/1.1\r\nHost: auth.example.com\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let check = raw_request(
        addr,
        "GET /authelia/api/authz/auth-request HTTP/1.1\r\nHost: v\r\nX-Original-URL: https://public.example.com/\r\nX-Original-Method: GET\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(
        check.starts_with("HTTP/1.1 200"),
        "bypass under the prefix: {check}"
    );
    let outside = raw_request(
        addr,
        "GET /api/health HTTP/1.1\r\nHost: auth.example.com\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(
        outside.starts_with("HTTP/1.1 404"),
        "nothing outside the prefix: {outside}"
    );
    assert!(dir.path().join("data/portcullis.sqlite3").is_file());
    stop.trigger();
    tokio::time::timeout(Duration::from_secs(15), served)
        .await
        .expect("serve returns after the trigger")
        .unwrap()
        .unwrap();
}

/// Without `session.secret` (and without Redis) the server generates one at first start and keeps
/// it in the SQLite storage: a login form served before a restart still posts after it.
#[tokio::test]
async fn without_a_session_secret_one_is_generated_and_survives_restarts() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("users.yml"), users_yaml()).unwrap();
    let yaml = CONFIG
        .replace("tcp://127.0.0.1:9091/", "tcp://127.0.0.1:0/")
        .replace("  secret: insecure-test-secret-0123456789\n", "");
    assert!(
        !yaml.contains("secret:"),
        "the test configuration sets no secret"
    );
    let path = dir.path().join("configuration.yml");
    std::fs::write(&path, &yaml).unwrap();
    let start = || async {
        let (config, _) =
            portcullis_verify_server::config::load(&path, &Default::default()).unwrap();
        assert!(config.session_secret.is_none());
        let handle = portcullis_verify_server::App::build(config).await.unwrap();
        let addr = handle.local_addr();
        let stop = handle.shutdown_trigger();
        (addr, stop, tokio::spawn(handle.serve()))
    };
    let (addr, stop, served) = start().await;
    let page = raw_request(
        addr,
        "GET / HTTP/1.1\r\nHost: auth.example.com\r\nConnection: close\r\n\r\n",
    )
    .await;
    let nonce = page
        .split("portcullis_csrf=")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .expect("csrf cookie")
        .to_owned();
    let token = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("csrf token")
        .to_owned();
    stop.trigger();
    served.await.unwrap().unwrap();

    let (addr, stop, served) = start().await;
    let body = format!("username=alice&password={ALICE_PASSWORD}&csrf={token}");
    let login = raw_request(
        addr,
        &format!(
            "POST /login HTTP/1.1\r\nHost: auth.example.com\r\nCookie: portcullis_csrf={nonce}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
    .await;
    assert!(
        login.starts_with("HTTP/1.1 303"),
        "the form from before the restart posts: {login}"
    );
    stop.trigger();
    served.await.unwrap().unwrap();
}

/// Start the binary with `args` and `env`, wait for the ready line, ask `/api/health` and an
/// authz check, then stop it with SIGTERM. Returns the ready line and the check's status line.
fn run_until_ready(
    dir: &std::path::Path,
    args: &[&std::ffi::OsStr],
    env: &[(&str, &str)],
) -> (String, String) {
    let mut command = binary();
    command
        .args(args)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut ready = None;
    for line in stdout.lines() {
        let line = line.unwrap();
        if line.contains("portcullis-verify ready") {
            ready = Some(line);
            break;
        }
    }
    let Some(ready) = ready else {
        let out = child.wait_with_output().unwrap();
        panic!("no ready line: {}", String::from_utf8_lossy(&out.stderr));
    };
    let address = ready_address(&ready);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let check = runtime.block_on(raw_request(
        address,
        "GET /api/authz/auth-request HTTP/1.1\r\nHost: v\r\nX-Original-URL: https://app.example.com/office\r\nX-Original-Method: GET\r\nX-Forwarded-For: 198.51.100.202\r\nConnection: close\r\n\r\n",
    ));
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let _ = child.wait();
    (ready, check.lines().next().unwrap_or("").to_owned())
}

/// Authelia's suites template their files (`{{ env "SUITE_SUBNET" }}.202/32` in a network) and
/// split them over several files; both start unchanged, with `AUTHELIA_*` variables winning.
#[test]
fn templated_and_merged_configurations_start() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("users.yml"), users_yaml()).unwrap();
    let base = CONFIG.replace("tcp://127.0.0.1:9091/", "tcp://127.0.0.1:0/").replace(
        "  rules:\n",
        "  rules:\n    - domain: app.example.com\n      resources: ['^/office$']\n      networks: ['{{ env \"SUITE_SUBNET\" }}.202/32']\n      policy: bypass\n",
    );
    std::fs::write(dir.path().join("configuration.yml"), &base).unwrap();
    let templated = dir.path().join("configuration.yml");
    let (ready, check) = run_until_ready(
        dir.path(),
        &["--config".as_ref(), templated.as_os_str()],
        &[
            ("X_AUTHELIA_CONFIG_FILTERS", "template"),
            ("SUITE_SUBNET", "198.51.100"),
        ],
    );
    assert!(ready.contains("ready"), "{ready}");
    assert!(
        check.starts_with("HTTP/1.1 200"),
        "the templated network bypasses: {check}"
    );

    // Two files, the second overriding the log level; AUTHELIA_LOG_LEVEL wins over both.
    let plain = base.replace(
        "      networks: ['{{ env \"SUITE_SUBNET\" }}.202/32']\n",
        "      networks: ['198.51.100.202/32']\n",
    );
    std::fs::write(dir.path().join("a.yml"), &plain).unwrap();
    std::fs::write(dir.path().join("b.yml"), "log:\n  level: error\n").unwrap();
    let (a, b) = (dir.path().join("a.yml"), dir.path().join("b.yml"));
    let (ready, check) = run_until_ready(
        dir.path(),
        &[
            "--config".as_ref(),
            a.as_os_str(),
            "--config".as_ref(),
            b.as_os_str(),
        ],
        &[("AUTHELIA_LOG_LEVEL", "info")],
    );
    assert!(
        ready.contains("ready"),
        "info wins over the second file's error level: {ready}"
    );
    assert!(check.starts_with("HTTP/1.1 200"), "{check}");

    // A variable that maps to no key stops the start, naming it.
    let out = binary()
        .arg("--config")
        .arg(&a)
        .env("AUTHELIA_LOG_LEVL", "debug")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("AUTHELIA_LOG_LEVL"));
}

/// Logs to a pipe carry no colour codes, and a JSON decision line has the documented fields
/// (docs/logging.md), with secret query values redacted.
#[test]
fn logs_to_a_pipe_are_plain_and_json_decisions_have_stable_fields() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("users.yml"), users_yaml()).unwrap();
    let yaml = CONFIG
        .replace("tcp://127.0.0.1:9091/", "tcp://127.0.0.1:0/")
        .replace(
            "log:\n  level: debug\n",
            "log:\n  level: debug\n  format: json\n",
        );
    let path = dir.path().join("configuration.yml");
    std::fs::write(&path, &yaml).unwrap();
    let mut child = binary()
        .arg("--config")
        .arg(&path)
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = lines
        .by_ref()
        .map(Result::unwrap)
        .find(|l| l.contains("portcullis-verify ready"))
        .expect("ready line");
    assert!(
        !ready.contains('\u{1b}'),
        "no escape codes in a pipe: {ready}"
    );
    let ready: serde_json::Value = serde_json::from_str(&ready).unwrap();
    let address = ready["fields"]["address"].as_str().unwrap().to_owned();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(raw_request(
        address.parse().unwrap(),
        "GET /api/authz/auth-request HTTP/1.1\r\nHost: v\r\nX-Original-URL: https://app.example.com/cb?code=s3cret&page=2\r\nX-Original-Method: GET\r\nX-Forwarded-For: 203.0.113.9\r\nConnection: close\r\n\r\n",
    ));
    let decision = lines
        .map(Result::unwrap)
        .find(|l| l.contains("authz decision"))
        .expect("decision line");
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let _ = child.wait();
    assert!(!decision.contains("s3cret"), "{decision}");
    let decision: serde_json::Value = serde_json::from_str(&decision).unwrap();
    let fields = &decision["fields"];
    assert_eq!(
        fields["url"],
        "https://app.example.com/cb?code=REDACTED&page=2"
    );
    assert_eq!(fields["method"], "GET");
    assert_eq!(fields["client_ip"], "203.0.113.9");
    assert_eq!(fields["user"], "");
    assert_eq!(fields["decision"], "Redirect");
    assert!(fields["rule"].is_string(), "{fields}");
    assert!(fields["duration_us"].is_u64(), "{fields}");
}

/// `--version` names the commit; SIGHUP (systemd's `ExecReload`) reloads the users file and does not
/// stop the server.
#[test]
fn version_names_the_commit_and_sighup_reloads_the_users() {
    let out = binary().arg("--version").output().unwrap();
    let version = String::from_utf8_lossy(&out.stdout);
    assert!(
        version.starts_with(&format!(
            "portcullis-verify {} (commit ",
            env!("CARGO_PKG_VERSION")
        )),
        "{version}"
    );

    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users.yml");
    std::fs::write(&users, users_yaml()).unwrap();
    let yaml = CONFIG
        .replace("tcp://127.0.0.1:9091/", "tcp://127.0.0.1:0/")
        .replace("  level: debug\n", "  level: info\n");
    let path = dir.path().join("configuration.yml");
    std::fs::write(&path, &yaml).unwrap();
    let mut child = binary()
        .arg("--config")
        .arg(&path)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = lines
        .by_ref()
        .map(Result::unwrap)
        .find(|l| l.contains("portcullis-verify ready"))
        .expect("ready line");
    let address = ready_address(&ready);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let bob_check = || {
        let request = format!(
            "GET /api/authz/auth-request HTTP/1.1\r\nHost: v\r\nX-Original-URL: https://app.example.com/\r\nX-Original-Method: GET\r\nAuthorization: {}\r\nConnection: close\r\n\r\n",
            basic("bob", BOB_PASSWORD)
        );
        runtime.block_on(raw_request(address, &request))
    };
    assert!(bob_check().starts_with("HTTP/1.1 200"));
    std::fs::write(
        &users,
        users_yaml().replace("  bob:\n", "  bob:\n    disabled: true\n"),
    )
    .unwrap();
    let status = Command::new("kill")
        .arg("-HUP")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let reloaded = lines
        .map(Result::unwrap)
        .find(|l| l.contains("users file reloaded"))
        .expect("reload line");
    assert!(reloaded.contains("SIGHUP"), "{reloaded}");
    assert!(
        child.try_wait().unwrap().is_none(),
        "SIGHUP must not stop the server"
    );
    assert!(
        bob_check().starts_with("HTTP/1.1 401"),
        "bob is gone after the reload"
    );
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let _ = child.wait();
}

/// SIGHUP reloads the OpenID Connect clients (Authelia #1275) without dropping sessions; a
/// configuration with an error keeps the running clients.
#[test]
fn sighup_reloads_the_openid_clients_and_keeps_sessions() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("users.yml"), users_yaml()).unwrap();
    let client = |id: &str| {
        format!(
            "      - client_id: {id}\n        public: true\n        redirect_uris: ['https://{id}.example.com/cb']\n        authorization_policy: one_factor\n        consent_mode: implicit\n"
        )
    };
    let with_clients = |clients: &str| {
        format!(
            "{}identity_providers:\n  oidc:\n    hmac_secret: 'a-very-long-hmac-secret-for-the-reload-test-0123456789-0123456789'\n    clients:\n{clients}",
            CONFIG
                .replace("tcp://127.0.0.1:9091/", "tcp://127.0.0.1:0/")
                .replace("  level: debug\n", "  level: info\n")
        )
    };
    let path = dir.path().join("configuration.yml");
    std::fs::write(&path, with_clients(&client("first"))).unwrap();
    let mut child = binary()
        .arg("--config")
        .arg(&path)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = lines
        .by_ref()
        .map(Result::unwrap)
        .find(|l| l.contains("portcullis-verify ready"))
        .expect("ready line");
    let address = ready_address(&ready);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let authorize = |id: &str| {
        let request = format!(
            "GET /api/oidc/authorization?response_type=code&client_id={id}&redirect_uri=https%3A%2F%2F{id}.example.com%2Fcb&scope=openid&state=state-0123456789&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256 HTTP/1.1\r\nHost: auth.example.com\r\nConnection: close\r\n\r\n"
        );
        let response = runtime.block_on(raw_request(address, &request));
        response
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("location:"))
            .unwrap_or("")
            .to_owned()
    };
    let known = |location: &str| location.contains("/?flow=openid_connect&flow_id=");
    assert!(known(&authorize("first")));
    assert!(!known(&authorize("second")), "not a client yet");
    // A session made before the reload.
    let login = format!(
        "POST /api/firstfactor HTTP/1.1\r\nHost: auth.example.com\r\nContent-Type: application/json\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n{body}",
        body = serde_json::json!({"username": "bob", "password": BOB_PASSWORD}),
        len = serde_json::json!({"username": "bob", "password": BOB_PASSWORD})
            .to_string()
            .len()
    );
    let response = runtime.block_on(raw_request(address, &login));
    let cookie = response
        .lines()
        .find(|l| {
            l.to_ascii_lowercase()
                .starts_with("set-cookie: authelia_session=")
        })
        .and_then(|l| l.split_once(": "))
        .map(|(_, v)| v.split(';').next().unwrap().to_owned())
        .expect("a session cookie");
    let hup = |child: &std::process::Child| {
        assert!(
            Command::new("kill")
                .arg("-HUP")
                .arg(child.id().to_string())
                .status()
                .unwrap()
                .success()
        );
    };
    // An invalid file keeps the clients.
    std::fs::write(&path, with_clients("      - client_id: 'bad id'\n")).unwrap();
    hup(&child);
    let refused = lines
        .by_ref()
        .map(Result::unwrap)
        .find(|l| l.contains("configuration not reloaded"))
        .expect("refusal line");
    assert!(refused.contains("client_id"), "{refused}");
    assert!(known(&authorize("first")));
    // A valid file replaces them.
    std::fs::write(
        &path,
        with_clients(&format!("{}{}", client("first"), client("second"))),
    )
    .unwrap();
    hup(&child);
    let reloaded = lines
        .by_ref()
        .map(Result::unwrap)
        .find(|l| l.contains("OpenID Connect clients reloaded"))
        .expect("reload line");
    assert!(reloaded.contains("clients=2"), "{reloaded}");
    assert!(known(&authorize("second")));
    let state = runtime.block_on(raw_request(
        address,
        &format!("GET /api/state HTTP/1.1\r\nHost: auth.example.com\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"),
    ));
    assert!(
        state.contains("\"username\":\"bob\""),
        "the session survived the reload: {state}"
    );
    assert!(
        child.try_wait().unwrap().is_none(),
        "SIGHUP must not stop the server"
    );
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let _ = child.wait();
}
