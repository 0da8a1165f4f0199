//! portcullis-outpost end to end: the example configurations of `examples/outpost/` (outpost
//! files, proxy files, the verify-server client list) rendered and run against real programs.
//!
//! An [`OutpostStack`] is one test's world: its own directory, free ports, the per-run
//! certificate, a recording [`Upstream`], portcullis-verify built by its `App::build` from a
//! configuration file plus `examples/outpost/verify-idp.yml` (the OpenID provider, reached at
//! `https://auth.example.com:<port>`), portcullis-outpost built by its `App::build` from one of the
//! example outpost files, and the proxy in front (nginx, Caddy, Traefik, HAProxy) started from its
//! example file. In [`Front::ProxyMode`] there is no proxy: the outpost serves HTTPS itself and
//! portcullis-verify serves its own TLS.
//!
//! The outpost reaches portcullis-verify under its public name, through the proxy, with the
//! provider keys `back_channel_resolve` and `tls_certificate_authority`: portcullis-verify's
//! issuer is its portal URL, so it must be asked under that name.
//!
//! [`Browser`] is a browser without a page engine: a cookie jar (domain and host-only cookies),
//! redirects followed one hop at a time, and the portal login through its API.

mod browser;
mod flow;
mod fronts;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use portcullis_server_core::ShutdownTrigger;

pub use browser::{Browser, Cookie, Hop, Trail, jwt_claims, param};
pub use flow::{
    assert_authorize, deletes, is_portal, login_hop, ours, provider_login, session_cookie,
};
use fronts::{Wiring, start_front};

use crate::process::{FailureLogs, Process, free_port, require};
use crate::tls::CertFiles;
use crate::upstream::Upstream;

/// The twelve headers of every authenticated forward answer (spec outpost.md §6.1), in Go's
/// canonical spelling.
pub const IDENTITY_HEADERS: [&str; 12] = [
    "X-Authentik-Username",
    "X-Authentik-Groups",
    "X-Authentik-Entitlements",
    "X-Authentik-Email",
    "X-Authentik-Name",
    "X-Authentik-Uid",
    "X-Authentik-Jwt",
    "X-Authentik-Meta-Jwks",
    "X-Authentik-Meta-Outpost",
    "X-Authentik-Meta-Provider",
    "X-Authentik-Meta-App",
    "X-Authentik-Meta-Version",
];

/// Where the outpost examples are.
pub fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/outpost")
        .join(name)
}

/// Replace each `(from, to)` literal in `examples/outpost/<name>`; panic when a `from` is absent
/// (the file's header comment lists them).
pub fn render(name: &str, replacements: &[(&str, String)]) -> String {
    let path = example(name);
    let mut text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    for (from, to) in replacements {
        assert!(
            text.contains(from),
            "{} no longer contains `{from}`, which the tests replace (see its header comment)",
            path.display()
        );
        text = text.replace(from, to);
    }
    text
}

/// What stands in front of the application.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Front {
    /// nginx `auth_request` with `nginx-single.conf`, outpost `outpost-forward-single.yml`.
    NginxSingle,
    /// nginx with `nginx-domain.conf`, outpost `outpost-forward-domain.yml`.
    NginxDomain,
    /// Debian's Caddy (2.6) with the `Caddyfile`, forward_single.
    Caddy,
    /// Caddy's current release (from its PyPI wheel), same Caddyfile.
    CaddyCurrent,
    /// Traefik 3.7 (from its PyPI wheel) with `traefik.yml`, forward_single.
    Traefik,
    /// HAProxy with `haproxy.cfg` and `outpost.lua`, forward_single.
    Haproxy,
    /// No proxy: the outpost proxies the application itself (`outpost-proxy.yml`).
    ProxyMode,
}

impl Front {
    /// Programs it needs.
    pub fn programs(self) -> &'static [&'static str] {
        match self {
            Self::NginxSingle | Self::NginxDomain => &["nginx"],
            Self::Caddy => &["caddy"],
            Self::CaddyCurrent => &["caddy-current"],
            Self::Traefik => &["traefik"],
            Self::Haproxy => &["haproxy"],
            Self::ProxyMode => &[],
        }
    }

    /// A short name.
    pub fn name(self) -> &'static str {
        match self {
            Self::NginxSingle => "nginx-single",
            Self::NginxDomain => "nginx-domain",
            Self::Caddy => "caddy",
            Self::CaddyCurrent => "caddy-current",
            Self::Traefik => "traefik",
            Self::Haproxy => "haproxy",
            Self::ProxyMode => "proxy-mode",
        }
    }

    /// The example outpost configuration it runs.
    pub fn outpost_file(self) -> &'static str {
        match self {
            Self::NginxDomain => "outpost-forward-domain.yml",
            Self::ProxyMode => "outpost-proxy.yml",
            _ => "outpost-forward-single.yml",
        }
    }
}

/// alice's entitlements in the test's users file (the quickstart's, plus `extra:` attributes for
/// the `entitlements` and `ak_proxy` claims).
pub const ALICE_ENTITLEMENTS: [&str; 2] = ["billing", "reports"];

/// The quickstart users with alice's `extra:` attributes.
fn users_file() -> String {
    let text =
        std::fs::read_to_string(crate::verify::QUICKSTART_USERS).expect("the quickstart users");
    let alice = "    displayname: Alice Liddell\n";
    assert!(text.contains(alice), "the quickstart users file changed");
    text.replace(
        alice,
        &format!(
            "{alice}    extra:\n      entitlements: [{}]\n      department: wonderland\n",
            ALICE_ENTITLEMENTS.join(", ")
        ),
    )
}

/// The test's portcullis-verify configuration, without its OpenID provider part (that comes from
/// `examples/outpost/verify-idp.yml`).
fn verify_head(listen: u16, public_port: u16, tls: Option<&CertFiles>, dir: &Path) -> String {
    let tls = tls.map_or_else(String::new, |c| {
        format!(
            "  tls:\n    certificate: '{}'\n    key: '{}'\n",
            c.chain.display(),
            c.key.display()
        )
    });
    format!(
        r#"# Generated by portcullis-tests (tests/src/outpost.rs).
server:
  address: 'tcp://127.0.0.1:{listen}/'
{tls}log:
  level: debug
authentication_backend:
  file:
    path: '{users}'
access_control:
  default_policy: one_factor
session:
  secret: 'outpost-e2e-session-secret-0123456789'
  cookies:
    - domain: example.com
      authelia_url: 'https://auth.example.com:{public_port}'
storage:
  local:
    path: '{db}'
portcullis:
  trusted_proxies: ['127.0.0.0/8', '::1/128']
"#,
        users = dir.join("users_database.yml").display(),
        db = dir.join("verify.sqlite3").display(),
    )
}

/// A running stack. Dropping it stops everything; on a panic it prints the logs and keeps the
/// directory.
pub struct OutpostStack {
    /// What is in front of the application.
    pub front: Front,
    /// The port browsers use for the application and auth hosts (the proxy's; in proxy mode the
    /// outpost's HTTPS port).
    pub port: u16,
    /// portcullis-verify's public port (the proxy's; in proxy mode its own).
    pub idp_port: u16,
    /// The application.
    pub upstream: Upstream,
    /// The test's directory.
    pub dir: PathBuf,
    /// The outpost's configuration as run.
    pub outpost_config: String,
    stops: Vec<ShutdownTrigger>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    processes: Vec<Process>,
    logs: FailureLogs,
    tempdir: Option<tempfile::TempDir>,
    _tracing: tracing::subscriber::DefaultGuard,
}

impl OutpostStack {
    /// Start a stack, or `None` when a program is missing (the test is then reported as skipped;
    /// with `CI` set this panics instead). Run it on a current-thread runtime (`#[tokio::test]`):
    /// the servers' logs go to a file through this thread's subscriber.
    pub async fn start(front: Front) -> Option<Self> {
        if !require(front.programs()) {
            return None;
        }
        let tempdir = tempfile::Builder::new()
            .prefix(&format!("portcullis-outpost-e2e-{}-", front.name()))
            .tempdir()
            .expect("temporary directory");
        let dir = tempdir.path().to_owned();
        let mut logs = FailureLogs::default();
        let server_log = dir.join("servers.log");
        let file = std::fs::File::create(&server_log).expect("server log");
        let subscriber = tracing_subscriber::fmt()
            .with_writer(Mutex::new(file))
            .with_ansi(false)
            .with_max_level(tracing::Level::TRACE)
            .finish();
        let subscriber = tracing_subscriber::layer::SubscriberExt::with(
            subscriber,
            portcullis_server_core::telemetry::filter(
                None,
                "portcullis_outpost=debug,portcullis_verify_server=debug,portcullis=debug,info",
            ),
        );
        let tracing = tracing::subscriber::set_default(subscriber);
        logs.files.push(server_log);

        let certs = crate::tls::write(&dir);
        let upstream = Upstream::start().await;
        let proxy_port = free_port();
        let verify_port = free_port();
        let outpost_port = free_port();
        let (port, idp_port) = match front {
            // The outpost's own HTTPS listener, and portcullis-verify's own TLS.
            Front::ProxyMode => (free_port(), verify_port),
            _ => (proxy_port, proxy_port),
        };
        let mut stack = Self {
            front,
            port,
            idp_port,
            upstream,
            dir: dir.clone(),
            outpost_config: String::new(),
            stops: Vec::new(),
            tasks: Vec::new(),
            processes: Vec::new(),
            logs,
            tempdir: Some(tempdir),
            _tracing: tracing,
        };

        // portcullis-verify: the test's head plus the example client list.
        std::fs::write(dir.join("users_database.yml"), users_file()).expect("write the users");
        let head = dir.join("verify-configuration.yml");
        let verify_tls = (front == Front::ProxyMode).then_some(&certs);
        std::fs::write(&head, verify_head(verify_port, idp_port, verify_tls, &dir))
            .expect("write the verify configuration");
        let idp = dir.join("verify-idp.yml");
        std::fs::write(
            &idp,
            render(
                "verify-idp.yml",
                &[
                    (
                        "https://app.example.com",
                        format!("https://app.example.com:{port}"),
                    ),
                    (
                        "https://auth.example.com",
                        format!("https://auth.example.com:{idp_port}"),
                    ),
                    (
                        "https://files.example.com",
                        format!("https://files.example.com:{port}"),
                    ),
                ],
            ),
        )
        .expect("write verify-idp.yml");
        let options = portcullis_verify_server::config::LoadOptions::default();
        let (config, warnings) = portcullis_verify_server::config::load_all(&[head, idp], &options)
            .unwrap_or_else(|e| panic!("the verify configuration: {e}"));
        assert!(
            warnings.is_empty(),
            "verify-idp.yml is read without warnings: {warnings:?}"
        );
        let verify = portcullis_verify_server::App::build_with(
            config,
            portcullis_verify_server::Tuning {
                failure_delay: Duration::from_millis(10),
                ..portcullis_verify_server::Tuning::default()
            },
        )
        .await
        .unwrap_or_else(|e| panic!("portcullis-verify does not start: {e}"));
        stack.stops.push(verify.shutdown_trigger());
        stack.tasks.push(tokio::spawn(async move {
            if let Err(e) = verify.serve().await {
                panic!("portcullis-verify stopped serving: {e}");
            }
        }));

        // portcullis-outpost: built (listeners bound) before the proxy starts, served once the
        // proxy answers, so discovery (through the proxy) runs against a ready chain.
        let outpost_text = stack.outpost_text(front, outpost_port, &certs);
        let outpost_path = dir.join(front.outpost_file());
        std::fs::write(&outpost_path, &outpost_text).expect("write the outpost configuration");
        stack.outpost_config = outpost_text;
        let (config, warnings) = portcullis_outpost::config::load(&outpost_path, &|_| None)
            .unwrap_or_else(|e| panic!("{}: {e}", front.outpost_file()));
        assert!(
            warnings.is_empty(),
            "{} is read without warnings: {warnings:?}",
            front.outpost_file()
        );
        let providers = config.providers.len();
        let outpost = portcullis_outpost::App::build(config)
            .await
            .unwrap_or_else(|e| panic!("portcullis-outpost does not start: {e}"));
        assert_eq!(outpost.address().port(), outpost_port);

        let wiring = Wiring {
            dir: &dir,
            port: proxy_port,
            verify: SocketAddr::from(([127, 0, 0, 1], verify_port)),
            outpost: outpost.address(),
            upstream: stack.upstream.addr,
            certs: &certs,
        };
        if let Some((process, extra)) = start_front(front, &wiring) {
            stack.logs.files.extend(process.logs.iter().cloned());
            stack.logs.files.extend(extra);
            stack.processes.push(process);
        }
        stack.wait_for_idp().await;
        let mut ready = 0;
        for _ in 0..50 {
            ready = outpost.state().discover_all().await;
            if ready == providers {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(ready, providers, "the outpost discovers portcullis-verify");
        stack.stops.push(outpost.shutdown_trigger());
        stack.tasks.push(tokio::spawn(outpost.serve()));
        Some(stack)
    }

    fn outpost_text(&self, front: Front, outpost_port: u16, certs: &CertFiles) -> String {
        let port = self.port;
        let idp = self.idp_port;
        let mut replacements = vec![
            (
                "tcp://127.0.0.1:9000/",
                format!("tcp://127.0.0.1:{outpost_port}/"),
            ),
            (
                "tcp://127.0.0.1:9300/",
                format!("tcp://127.0.0.1:{}/", free_port()),
            ),
            (
                "https://auth.example.com",
                format!("https://auth.example.com:{idp}"),
            ),
            (
                "/var/lib/portcullis-outpost/outpost.sqlite3",
                self.dir.join("outpost.sqlite3").display().to_string(),
            ),
            (
                "# back_channel_resolve: { 'auth.example.com': '127.0.0.1' }",
                "back_channel_resolve: { 'auth.example.com': '127.0.0.1' }".to_owned(),
            ),
            (
                "# tls_certificate_authority: '/etc/portcullis/ca.pem'",
                format!("tls_certificate_authority: '{}'", certs.ca.display()),
            ),
        ];
        match front {
            Front::NginxDomain => {}
            Front::ProxyMode => {
                replacements.extend([
                    ("tcp://:9443/", format!("tcp://127.0.0.1:{port}/")),
                    (
                        "/etc/ssl/portcullis/example.com.crt",
                        certs.chain.display().to_string(),
                    ),
                    (
                        "/etc/ssl/portcullis/example.com.key",
                        certs.key.display().to_string(),
                    ),
                    (
                        "https://files.example.com",
                        format!("https://files.example.com:{port}"),
                    ),
                    (
                        "http://127.0.0.1:8080",
                        format!("http://{}", self.upstream.addr),
                    ),
                ]);
            }
            _ => replacements.push((
                "https://app.example.com",
                format!("https://app.example.com:{port}"),
            )),
        }
        render(front.outpost_file(), &replacements)
    }

    /// Wait until portcullis-verify answers under its public name (through the proxy): the whole
    /// chain is up.
    async fn wait_for_idp(&mut self) {
        let started = Instant::now();
        let browser = Browser::new(&[("auth", self.idp_port)]);
        let url = format!("https://auth.example.com:{}/api/health", self.idp_port);
        let mut last = String::new();
        while started.elapsed() < Duration::from_secs(30) {
            for p in &mut self.processes {
                p.assert_running();
            }
            match browser.http.get(&url).send().await {
                Ok(r) if r.status() == 200 => return,
                Ok(r) => last = format!("status {}", r.status()),
                Err(e) => last = format!("{e:?}"),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "portcullis-verify not reachable through {} after 30 s (last: {last})",
            self.front.name()
        );
    }

    /// A browser whose names reach this stack: `auth` at portcullis-verify's public port, the
    /// application hosts at [`OutpostStack::port`].
    pub fn browser(&self) -> Browser {
        Browser::new(&[
            ("auth", self.idp_port),
            ("app", self.port),
            ("wiki", self.port),
            ("files", self.port),
        ])
    }

    /// `https://<host>.example.com:<port><path>` (the auth host at portcullis-verify's port).
    pub fn url(&self, host: &str, path: &str) -> String {
        let port = if host == "auth" {
            self.idp_port
        } else {
            self.port
        };
        format!("https://{host}.example.com:{port}{path}")
    }

    /// The session cookie's name of the outpost's first provider (`authentik_proxy_<8 hex of
    /// sha256(client_id)>`).
    pub fn cookie_name(&self) -> String {
        let (config, _) = portcullis_outpost::config::parse(
            &self.dir.join(self.front.outpost_file()),
            &self.outpost_config,
            &|_| None,
        )
        .expect("the outpost configuration as run");
        config.providers[0].cookie_name()
    }

    /// Panic if a program of the stack stopped.
    pub fn assert_running(&mut self) {
        for p in &mut self.processes {
            p.assert_running();
        }
    }
}

impl Drop for OutpostStack {
    fn drop(&mut self) {
        for stop in &self.stops {
            stop.trigger();
        }
        for task in &self.tasks {
            task.abort();
        }
        // Stop the programs first so their logs are complete; FailureLogs prints after this.
        self.processes.clear();
        if let Some(dir) = self.tempdir.take()
            && std::thread::panicking()
        {
            let path = dir.keep();
            eprintln!("test directory kept: {}", path.display());
        }
    }
}
