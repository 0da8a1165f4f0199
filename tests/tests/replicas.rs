//! Several replicas (issue 5): two in-process `portcullis-verify` replicas sharing a real
//! `redis-server`, behind one real nginx whose `upstream` lists both.

// Tests wait for real processes and sockets on the wall clock; the clock rule is for the servers.
#![allow(clippy::disallowed_methods)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis_auth::regulation::Regulator;
use portcullis_auth::users::UserDatabase;
use portcullis_session::RedisStore;
use portcullis_tests::client::Client;
use portcullis_tests::process::{Process, find_program, free_port, require};
use portcullis_tests::proxy::{self, Proxy, Wiring};
use portcullis_tests::upstream::Upstream;
use portcullis_tests::users::{ALICE, BOB};
use portcullis_tests::verify::{QUICKSTART_USERS, Verify, VerifyConfig};
use portcullis_verify_server::config::{Config, SecretSources, parse};
use portcullis_verify_server::{AppState, Tuning, system_clock};

struct Redis {
    process: Option<Process>,
    port: u16,
    dir: std::path::PathBuf,
}

impl Redis {
    /// Append-only with fsync on every write, so a killed and restarted Redis still has the sessions.
    fn start(dir: &Path, port: u16) -> Self {
        let data = dir.join("redis");
        std::fs::create_dir_all(&data).unwrap();
        let mut redis = Self {
            process: None,
            port,
            dir: data,
        };
        redis.restart();
        redis
    }

    fn restart(&mut self) {
        let mut command = Command::new(find_program("redis-server").unwrap());
        command
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(["--appendonly", "yes", "--appendfsync", "always", "--dir"])
            .arg(&self.dir);
        self.process = Some(Process::spawn("redis-server", command, &self.dir, false));
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self) {
        self.process = None;
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            assert!(Instant::now() < deadline, "redis-server did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

struct World {
    replicas: Vec<Verify>,
    configs: Vec<(SocketAddr, String)>,
    client: Client,
    direct: reqwest::Client,
    redis: Redis,
    upstream: Upstream,
    _nginx: Process,
    dir: tempfile::TempDir,
}

fn replica_state(dir: &Path, yaml: &str) -> AppState {
    let path = dir.join("configuration.yml");
    let (config, _): (Config, _) = parse(&path, yaml, &SecretSources::default()).unwrap();
    let users = UserDatabase::load(config.users.file().expect("a users file"), true, true).unwrap();
    let redis = config.redis.clone().expect("session.redis");
    let store = Arc::new(
        RedisStore::new(
            redis,
            config.session_secret.as_ref().unwrap().expose().as_bytes(),
        )
        .unwrap(),
    );
    let regulator = Regulator::redis(config.regulation, store.clone());
    let tuning = Tuning {
        failure_delay: Duration::from_millis(20),
        failure_jitter_ms: 0,
        ..Tuning::default()
    };
    AppState::new(config, users, store, regulator, system_clock(), tuning).unwrap()
}

impl World {
    async fn start() -> Option<Self> {
        Self::start_with(false).await
    }

    /// With `second_factor`, the replicas share one second-factor SQLite file and notifier file
    /// beside their configuration, and their ceremonies through Redis.
    async fn start_with(second_factor: bool) -> Option<Self> {
        if !require(&["nginx", "redis-server"]) {
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("portcullis-replicas-")
            .tempdir()
            .unwrap();
        std::fs::copy(QUICKSTART_USERS, dir.path().join("users_database.yml")).unwrap();
        let redis = Redis::start(dir.path(), free_port());
        let port = free_port();
        let base = VerifyConfig {
            proxy_port: port,
            expiration: "1h".into(),
            inactivity: "5m".into(),
            second_factor,
            ldap: None,
        }
        .yaml();
        let yaml = base.replacen(
            "session:\n",
            &format!(
                "session:\n  redis:\n    host: 127.0.0.1\n    port: {}\n    timeout: 1s\n",
                redis.port
            ),
            1,
        );
        let mut replicas = Vec::new();
        let mut configs = Vec::new();
        for _ in 0..2 {
            let verify = Verify::serve(replica_state(dir.path(), &yaml)).await;
            configs.push((verify.addr, yaml.clone()));
            replicas.push(verify);
        }
        let upstream = Upstream::start().await;
        let certs = portcullis_tests::tls::write(dir.path());
        let (nginx, _) = proxy::start(
            Proxy::Nginx,
            &Wiring {
                dir: dir.path(),
                port,
                verify: replicas[0].addr,
                more_verify: &[replicas[1].addr],
                upstream: upstream.addr,
                certs: &certs,
            },
        );
        let world = Self {
            replicas,
            configs,
            client: Client::new(port),
            direct: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .no_proxy()
                .build()
                .unwrap(),
            redis,
            upstream,
            _nginx: nginx,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nginx did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        loop {
            if world.client.get("auth", "/api/health").send().await.status == 200 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "nginx and the replicas are not ready"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Some(world)
    }

    /// Log in directly at replica `i`; `None` when refused.
    async fn login_at(&self, i: usize, user: &str, password: &str) -> Option<String> {
        let r = self
            .direct
            .post(format!("http://{}/api/firstfactor", self.replicas[i].addr))
            .header("host", format!("auth.example.com:{}", self.client.port))
            .header("content-type", "application/json")
            .body(serde_json::json!({"username": user, "password": password}).to_string())
            .send()
            .await
            .unwrap();
        if r.status() != 200 {
            return None;
        }
        r.headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with("authelia_session="))
            .map(|c| c.split(';').next().unwrap().to_owned())
    }

    /// An nginx-style check directly at replica `i`: (status, Remote-User).
    async fn check_at(&self, i: usize, cookie: &str, url: &str) -> (u16, Option<String>) {
        let r = self
            .direct
            .get(format!(
                "http://{}/api/authz/auth-request",
                self.replicas[i].addr
            ))
            .header("x-original-url", url)
            .header("x-original-method", "GET")
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        let user = r
            .headers()
            .get("remote-user")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        (r.status().as_u16(), user)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_logins_logouts_and_bans() {
    let Some(w) = World::start().await else {
        return;
    };
    let cookie = w
        .login_at(0, ALICE.0, ALICE.1)
        .await
        .expect("login at replica 0");
    assert_eq!(
        w.check_at(1, &cookie, "https://app.example.com/").await,
        (200, Some("alice".into())),
        "replica 1 knows the login"
    );
    let seen = w.client.get("app", "/").cookie(&cookie).send().await.seen();
    assert_eq!(seen.one("remote-user"), Some("alice"), "through nginx too");

    // Logout on replica 1: replica 0 refuses at the next check.
    let r = w
        .direct
        .post(format!("http://{}/api/logout", w.replicas[1].addr))
        .header("host", format!("auth.example.com:{}", w.client.port))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        w.check_at(0, &cookie, "https://app.example.com/").await.0,
        401
    );

    // Three failures spread over both replicas ban bob on both.
    assert!(w.login_at(0, BOB.0, "wrong-1").await.is_none());
    assert!(w.login_at(1, "BOB", "wrong-2").await.is_none());
    assert!(w.login_at(0, "bob@example.com", "wrong-3").await.is_none());
    assert!(
        w.login_at(1, BOB.0, BOB.1).await.is_none(),
        "banned on replica 1"
    );
    assert!(
        w.login_at(0, BOB.0, BOB.1).await.is_none(),
        "banned on replica 0"
    );
    assert!(
        w.login_at(1, ALICE.0, ALICE.1).await.is_some(),
        "others are not banned"
    );
    drop(w.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_fails_closed_and_recovers_without_restart() {
    let Some(mut w) = World::start().await else {
        return;
    };
    let cookie = w.login_at(1, ALICE.0, ALICE.1).await.unwrap();
    assert_eq!(
        w.client.get("app", "/").cookie(&cookie).send().await.status,
        200
    );

    w.redis.kill();
    for _ in 0..20 {
        let protected = w.client.get("app", "/").cookie(&cookie).send().await;
        assert_ne!(
            protected.status, 200,
            "a session-protected target answered 200 with Redis down"
        );
        let xhr = w.client.xhr("app", "/").cookie(&cookie).send().await;
        assert_eq!(
            xhr.status, 401,
            "the login answer, not a 5xx, for a session check"
        );
        let public = w.client.get("public", "/").send().await;
        assert_eq!(public.status, 200, "bypass rules still answer");
    }
    // Logins cannot be stored or regulated: refused.
    assert!(w.login_at(0, ALICE.0, ALICE.1).await.is_none());
    let health = w.client.get("auth", "/api/health").send().await;
    assert_eq!(health.status, 503, "health reports the store");

    w.redis.restart();
    let started = Instant::now();
    loop {
        if w.client.get("app", "/").cookie(&cookie).send().await.status == 200 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "checks did not recover"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("recovered {:?} after Redis returned", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarting_a_replica_under_load_loses_no_request() {
    let Some(mut w) = World::start().await else {
        return;
    };
    let cookie = w.login_at(0, ALICE.0, ALICE.1).await.unwrap();
    let client = w.client.clone();
    let load = tokio::spawn(async move {
        let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
        let mut tasks = Vec::new();
        for worker in 0..8 {
            let client = client.clone();
            let cookie = cookie.clone();
            tasks.push(tokio::spawn(async move {
                let mut out = Vec::new();
                for i in 0..400 {
                    let path = format!("/load/{worker}/{i}");
                    out.push(client.get("app", &path).cookie(&cookie).send().await.status);
                }
                out
            }));
        }
        for t in tasks {
            for s in t.await.unwrap() {
                *statuses.entry(s).or_default() += 1;
            }
        }
        statuses
    });
    // Restart replica 0 while the load runs.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (addr, yaml) = w.configs[0].clone();
    assert!(
        !load.is_finished(),
        "the load must still run while the replica restarts"
    );
    w.replicas[0].stop().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    w.replicas[0] = Verify::serve_on(replica_state(w.dir.path(), &yaml), addr).await;
    assert!(!load.is_finished(), "the load must outlast the restart");
    let statuses = load.await.unwrap();
    eprintln!("statuses during the restart: {statuses:?}");
    assert_eq!(
        statuses.get(&200).copied().unwrap_or(0),
        3200,
        "every request passed: {statuses:?}"
    );
    assert!(w.upstream.count() >= 3200);
    drop(w.redis.process.take());
}

/// Two deployments on one Redis database with different key prefixes share no bans, and counting
/// bans and sessions reads one sorted set each instead of scanning the keyspace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regulation_follows_the_store_prefix_and_counts_without_scanning() {
    if !require(&["redis-server", "redis-cli"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _redis = Redis::start(dir.path(), port);
    let store = |prefix: &str| {
        let config = portcullis_session::RedisConfig {
            host: "127.0.0.1".into(),
            port,
            key_prefix: prefix.into(),
            ..portcullis_session::RedisConfig::default()
        };
        Arc::new(RedisStore::new(config, b"a-session-secret-for-this-test").unwrap())
    };
    let (a, b) = (store("deployment-a"), store("deployment-b"));
    let regulation = portcullis_verify_server::config::RegulationConfig {
        max_retries: 2,
        find_time: 120,
        ban_time: 300,
        by_user: true,
        by_ip: false,
    };
    let (reg_a, reg_b) = (
        Regulator::redis(regulation, a.clone()),
        Regulator::redis(regulation, b.clone()),
    );
    let now = 1_900_000_000;
    reg_a.record("alice", None, false, now).await;
    reg_a.record("alice", None, false, now + 1).await;
    assert!(reg_a.is_banned(Some("alice"), None, now + 2).await);
    assert!(
        !reg_b.is_banned(Some("alice"), None, now + 2).await,
        "another prefix, another deployment"
    );
    assert_eq!(reg_a.active_bans(now + 2).await, 1);
    assert_eq!(reg_b.active_bans(now + 2).await, 0);
    let cli = |args: &[&str]| {
        let out = Command::new(find_program("redis-cli").unwrap())
            .args(["-p", &port.to_string()])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    assert_eq!(
        cli(&["ZCARD", "deployment-a-bans"]),
        "1",
        "bans are indexed"
    );
    let keys = cli(&["KEYS", "portcullis-*"]);
    assert!(keys.is_empty(), "no key outside the prefixes: {keys}");

    use portcullis_session::SessionStore;
    let identity = portcullis_core::Identity::user("alice", portcullis_core::AuthLevel::OneFactor);
    let lifetime = portcullis_session::Lifetime::default();
    for _ in 0..2 {
        let id = portcullis_session::SessionId::generate(&mut rand::rng());
        let session = portcullis_session::Session::new(
            id,
            "example.com",
            identity.clone(),
            false,
            now,
            &lifetime,
        );
        a.put(&session).await.unwrap();
    }
    assert_eq!(a.count(now).await.unwrap(), 2);
    assert_eq!(
        cli(&["ZCARD", "deployment-a-index"]),
        "2",
        "sessions are indexed"
    );
    assert_eq!(b.count(now).await.unwrap(), 0);
    assert_eq!(a.delete_user("alice").await.unwrap(), 2);
    assert_eq!(
        a.count(now).await.unwrap(),
        0,
        "revoking removes them from the index"
    );
}

/// A JSON call directly at replica `i` of a second-factor World: (status, body, new cookie).
async fn call_at(
    world: &World,
    i: usize,
    method: reqwest::Method,
    path: &str,
    cookie: &str,
    body: Option<serde_json::Value>,
) -> (u16, String, Option<String>) {
    let mut request = world
        .direct
        .request(method, format!("http://{}{path}", world.replicas[i].addr))
        .header("host", format!("auth.example.com:{}", world.client.port))
        .header("cookie", cookie);
    if let Some(b) = body {
        request = request
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let r = request.send().await.unwrap();
    let status = r.status().as_u16();
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("authelia_session=") && !c.contains("Max-Age=0"))
        .map(|c| c.split(';').next().unwrap().to_owned());
    (status, r.text().await.unwrap(), cookie)
}

/// Second-factor ceremonies cross replicas (docs/reference/second-factor.md §7 item 3): the
/// elevation code is asked for at one replica and typed at the other, a TOTP registration begun
/// at one is finished at the other, and a WebAuthn registration and assertion the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_factor_ceremonies_begun_on_one_replica_finish_on_the_other() {
    use portcullis_second_factor::totp::{TotpParameters, TotpSecret, code_at};
    use portcullis_webauthn::software_authenticator::SoftwareAuthenticator;
    use reqwest::Method;
    use serde_json::{Value, json};
    let Some(world) = World::start_with(true).await else {
        return;
    };
    let cookie = world
        .login_at(0, ALICE.0, ALICE.1)
        .await
        .expect("alice logs in");
    let (status, body, _) = call_at(
        &world,
        0,
        Method::POST,
        "/api/user/session/elevation",
        &cookie,
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let mail = std::fs::read_to_string(world.dir.path().join("notification.txt")).unwrap();
    let pattern = regex::Regex::new(r"-{40}\n\n([A-Z0-9]{6,20})\n\n-{40}").unwrap();
    let code = pattern.captures(&mail).expect("a code")[1].to_owned();
    let (status, body, _) = call_at(
        &world,
        1,
        Method::PUT,
        "/api/user/session/elevation",
        &cookie,
        Some(json!({"otc": code})),
    )
    .await;
    assert_eq!((status, body.as_str()), (200, r#"{"status":"OK"}"#));

    // TOTP: begun at replica 1 (elevated through Redis), finished at replica 0.
    let (status, body, _) = call_at(
        &world,
        1,
        Method::PUT,
        "/api/secondfactor/totp/register",
        &cookie,
        Some(json!({"algorithm": "SHA1", "length": 6, "period": 30})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let secret = TotpSecret::from_base32(v["data"]["base32_secret"].as_str().unwrap()).unwrap();
    let now = portcullis_server_core::clock::unix_now();
    let token = code_at(&secret, TotpParameters::default(), now);
    let (status, body, _) = call_at(
        &world,
        0,
        Method::POST,
        "/api/secondfactor/totp/register",
        &cookie,
        Some(json!({"token": token})),
    )
    .await;
    assert_eq!((status, body.as_str()), (200, r#"{"status":"OK"}"#));

    // WebAuthn: registration begun at 0, finished at 1; the assertion the other way round.
    let origin = format!("http://auth.example.com:{}", world.client.port);
    let mut seed = [0u8; 32];
    seed[31] = 44;
    let mut key = SoftwareAuthenticator::new(seed, b"replica-key".to_vec());
    let (status, body, _) = call_at(
        &world,
        0,
        Method::PUT,
        "/api/secondfactor/webauthn/credential/register",
        &cookie,
        Some(json!({"description": "Key"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let answer = key.register(
        "auth.example.com",
        &origin,
        v["data"]["publicKey"]["challenge"].as_str().unwrap(),
        false,
    );
    let (status, body, _) = call_at(
        &world,
        1,
        Method::POST,
        "/api/secondfactor/webauthn/credential/register",
        &cookie,
        Some(answer),
    )
    .await;
    assert_eq!((status, body.as_str()), (201, r#"{"status":"OK"}"#));
    let (status, body, _) = call_at(
        &world,
        1,
        Method::GET,
        "/api/secondfactor/webauthn",
        &cookie,
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let answer = key.assert(
        "auth.example.com",
        &origin,
        v["data"]["publicKey"]["challenge"].as_str().unwrap(),
        None,
    );
    let (status, body, upgraded) = call_at(
        &world,
        0,
        Method::POST,
        "/api/secondfactor/webauthn",
        &cookie,
        Some(json!({"response": answer})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let upgraded = upgraded.expect("a two-factor session");
    let (status, body, _) = call_at(&world, 1, Method::GET, "/api/state", &upgraded, None).await;
    assert_eq!(status, 200);
    assert!(body.contains(r#""authentication_level":2"#), "{body}");
}
