//! Support for the `portcullis-outpost` end-to-end tests (`tests/tests/outpost_{idp,replicas,
//! browser}.rs`): panva's oidc-provider as the external OpenID provider (`tests/oidc-rp/idp.mjs`),
//! the protected application (header echo, WebSocket echo, a server-sent-events stream the test
//! releases, an HTML page naming the user), outposts built by `App::build` from a configuration
//! text and served on a real loopback socket, and a scripted browser (reqwest, cookies by hand)
//! that walks the whole login.
//!
//! Names: the application is `http://app.example.com:<outpost port>` and the provider
//! `http://auth.example.com:<provider port>`; both resolve to loopback (reqwest's `resolve`,
//! Chromium's host-resolver rules, the outpost's `back_channel_resolve`). Plain HTTP on loopback:
//! the outpost accepts an `http://` issuer (docs/reference/outpost.md §16), and the session cookie
//! then has no `Secure` attribute, so a browser sends it back.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use portcullis_server_core::ShutdownTrigger;
use tokio::task::JoinHandle;

use crate::process::{Process, find_program, free_port, require, skip_file, tail};

mod app;
mod web;

pub use app::App;
pub use web::{Got, Jar, Web, deletes_cookie, location, param, set_cookie};

/// The application's host name.
pub const APP_HOST: &str = "app.example.com";
/// The OpenID provider's host name.
pub const IDP_HOST: &str = "auth.example.com";
/// The fixed user of `idp.mjs`.
pub const USERNAME: &str = "alice";
/// Her password at the provider.
pub const PASSWORD: &str = "alice-at-the-idp";
/// Her subject (`X-authentik-uid`).
pub const SUB: &str = "8c1f2a4e-idp-alice";
/// Her email.
pub const EMAIL: &str = "alice@example.com";
/// Her name.
pub const NAME: &str = "Alice Liddell";
/// Her groups, as the provider lists them.
pub const GROUPS: [&str; 2] = ["admins", "dev"];
/// The outpost's client at the provider.
pub const CLIENT_ID: &str = "outpost";
/// Its secret.
pub const CLIENT_SECRET: &str = "outpost-client-secret-0123456789";
/// The provider's cookie secret.
pub const COOKIE_SECRET: &str = "outpost-e2e-cookie-secret-0123456789abcdef";

/// `tests/oidc-rp`, where `idp.mjs` and its `node_modules` live.
pub fn rp_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("oidc-rp")
}

/// True when node and oidc-provider (installed by `scripts/test` with `npm ci`) are there, and
/// `others` are installed. Otherwise: with `CI` set, panic; without it, report the test as skipped.
pub fn require_idp(others: &[&str]) -> bool {
    let mut programs = vec!["node"];
    programs.extend_from_slice(others);
    if !require(&programs) {
        return false;
    }
    if rp_dir().join("node_modules/oidc-provider").is_dir() {
        return true;
    }
    let test = crate::process::current_test_name();
    assert!(
        std::env::var_os("CI").is_none(),
        "{test}: tests/oidc-rp/node_modules is missing and CI is set: scripts/test runs `npm ci` there"
    );
    let line = format!("SKIPPED (run `npm ci` in tests/oidc-rp): {test}\n");
    eprint!("{line}");
    let file = skip_file();
    let previous = std::fs::read_to_string(&file).unwrap_or_default();
    let _ = std::fs::write(&file, format!("{previous}{line}"));
    false
}

/// Log the servers' tracing output when `RUST_LOG` is set (printed with the failing test).
pub fn init_logs() {
    if std::env::var_os("RUST_LOG").is_some() {
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::util::SubscriberInitExt;
        let filter = portcullis_server_core::telemetry::filter(
            std::env::var("RUST_LOG").ok().as_deref(),
            "info",
        );
        let _ = tracing_subscriber::registry()
            .with(filter)
            .with(tracing_subscriber::fmt::layer().with_test_writer())
            .try_init();
    }
}

/// A `redis-server` without persistence on `port` (a fixed one, so a test can start it again on
/// the same address), its logs named after `name`. Stops when the process is dropped. Waits until
/// it accepts connections.
pub fn redis_on(dir: &Path, name: &str, port: u16) -> Process {
    let mut command =
        std::process::Command::new(find_program("redis-server").expect("redis-server"));
    command.args([
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
    ]);
    let mut process = Process::spawn(name, command, dir, false);
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        process.assert_running();
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "redis-server did not start on {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    process
}

/// The callback the outpost registers for `external` (docs/reference/outpost.md §4.1).
pub fn redirect_uri(external: &str) -> String {
    format!("{external}/outpost.goauthentik.io/callback?X-authentik-auth-callback=true")
}

/// oidc-provider running `idp.mjs` on loopback. Stops when dropped.
pub struct Idp {
    /// The node process (its logs: `process.logs`).
    pub process: Process,
    /// Its port.
    pub port: u16,
    /// `http://auth.example.com:<port>`.
    pub issuer: String,
}

impl Idp {
    /// Start the provider with the outpost's client registered for `redirect_uris`, and wait
    /// until it serves its discovery document.
    pub async fn start(dir: &Path, redirect_uris: &[String]) -> Self {
        let port = free_port();
        let issuer = format!("http://{IDP_HOST}:{port}");
        let mut command = std::process::Command::new(find_program("node").expect("node"));
        command
            .arg(rp_dir().join("idp.mjs"))
            .current_dir(rp_dir())
            .env("IDP_PORT", port.to_string())
            .env("IDP_ISSUER", &issuer)
            .env("IDP_CLIENT_ID", CLIENT_ID)
            .env("IDP_CLIENT_SECRET", CLIENT_SECRET)
            .env("IDP_REDIRECT_URIS", redirect_uris.join(" "))
            .env("IDP_USERNAME", USERNAME)
            .env("IDP_PASSWORD", PASSWORD)
            .env("IDP_SUB", SUB)
            .env("IDP_EMAIL", EMAIL)
            .env("IDP_NAME", NAME)
            .env("IDP_GROUPS", GROUPS.join(","));
        let mut process = Process::spawn("idp", command, dir, false);
        let web = Web::new();
        let discovery = format!("{issuer}/.well-known/openid-configuration");
        let started = Instant::now();
        // The port is only polled once the script says it listens: a client polling a loopback
        // port nobody listens on yet can be handed that very port as its own source port and
        // connect to itself, and the provider then never receives the request.
        let mut listening = false;
        loop {
            process.assert_running();
            if !listening {
                listening = std::fs::read_to_string(&process.logs[0])
                    .is_ok_and(|out| out.contains("\"ready\":true"));
            }
            if listening
                && let Ok(r) = web
                    .http
                    .get(&discovery)
                    .timeout(Duration::from_secs(2))
                    .send()
                    .await
                && r.status() == 200
            {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "oidc-provider did not serve discovery within 60 s (listening: {listening}):\n{}",
                process
                    .logs
                    .iter()
                    .map(|l| tail(l, 40))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self {
            process,
            port,
            issuer,
        }
    }

    /// Its end-session endpoint (oidc-provider's default route, `/session/end`).
    pub fn end_session(&self) -> String {
        format!("{}/session/end", self.issuer)
    }
}

/// The outpost's configuration file: one proxy-mode provider for `app` behind `external` on
/// the provider `idp`; `head` holds the `storage:`/`session:` sections.
pub fn outpost_config(port: u16, external: &str, app: &App, idp: &Idp, head: &str) -> String {
    format!(
        r#"server:
  address: 'tcp://127.0.0.1:{port}/'
telemetry:
  metrics:
    enabled: false
outpost:
  name: e2e-outpost
{head}providers:
  - name: app
    assigned_application_slug: the-app
    mode: proxy
    external_host: '{external}'
    internal_host: '{internal}'
    cookie_secret: '{COOKIE_SECRET}'
    client_id: {CLIENT_ID}
    client_secret: '{CLIENT_SECRET}'
    issuer: '{issuer}'
    back_channel_resolve: {{ {IDP_HOST}: 127.0.0.1 }}
    scopes_to_request: [openid, email, profile, groups]
    pkce: auto
"#,
        internal = app.url(),
        issuer = idp.issuer,
    )
}

/// An outpost built by `App::build` from a configuration text and served on its socket.
pub struct Outpost {
    /// Its HTTP port.
    pub port: u16,
    /// The name of its session cookie.
    pub cookie_name: String,
    stop: ShutdownTrigger,
    served: JoinHandle<()>,
}

impl Outpost {
    /// Build and serve it, after discovery of its provider succeeded (so no request meets the
    /// 503 of an undiscovered provider).
    pub async fn start(text: &str) -> Self {
        let (config, _warnings) = portcullis_outpost::config::parse(
            Path::new("/tmp/outpost-e2e/outpost.yml"),
            text,
            &|_| None,
        )
        .unwrap_or_else(|e| panic!("the outpost configuration does not parse: {e}\n{text}"));
        let cookie_name = config.providers[0].cookie_name();
        let handle = portcullis_outpost::App::build(config)
            .await
            .unwrap_or_else(|e| panic!("the outpost does not build: {e}"));
        assert_eq!(
            handle.state().discover_all().await,
            1,
            "the outpost discovers oidc-provider"
        );
        let port = handle.address().port();
        let stop = handle.shutdown_trigger();
        let served = tokio::spawn(handle.serve());
        Self {
            port,
            cookie_name,
            stop,
            served,
        }
    }

    /// `http://app.example.com:<its port>`.
    pub fn base(&self) -> String {
        format!("http://{APP_HOST}:{}", self.port)
    }

    /// Shut it down and wait until it has stopped serving (its store is closed with it).
    pub async fn stop(self) {
        self.stop.trigger();
        tokio::time::timeout(Duration::from_secs(30), self.served)
            .await
            .expect("the outpost stops within 30 s")
            .expect("the outpost's serve task");
    }
}
