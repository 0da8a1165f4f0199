//! One test's world: directory, certificates, upstream, portcullis-verify and a proxy.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::client::Client;
use crate::process::{FailureLogs, Process, free_port, require};
use crate::proxy::{self, Proxy, Wiring};
use crate::upstream::Upstream;
use crate::verify::{Verify, VerifyConfig};

/// Settings that differ between tests.
#[derive(Debug, Clone)]
pub struct StackOptions {
    /// `session.expiration`.
    pub expiration: String,
    /// Programs needed besides the proxy (e.g. chromium for a browser test).
    pub also_needs: Vec<&'static str>,
    /// Second factors on (see `VerifyConfig::second_factor`).
    pub second_factor: bool,
    /// Users in a directory (see `VerifyConfig::ldap`).
    pub ldap: Option<String>,
}

impl Default for StackOptions {
    fn default() -> Self {
        Self {
            expiration: "1h".to_owned(),
            also_needs: Vec::new(),
            second_factor: false,
            ldap: None,
        }
    }
}

/// A running stack. Dropping it stops everything; on a panic it prints the logs and keeps the
/// directory.
pub struct Stack {
    /// The proxy under test.
    pub proxy: Proxy,
    /// A client for the proxy's port.
    pub client: Client,
    /// The application behind the proxy.
    pub upstream: Upstream,
    /// The verify server.
    pub verify: Verify,
    /// The test's directory.
    pub dir: PathBuf,
    processes: Vec<Process>,
    logs: FailureLogs,
    tempdir: Option<tempfile::TempDir>,
    keep: bool,
    _tracing: tracing::subscriber::DefaultGuard,
}

impl Stack {
    /// Start a stack, or `None` when a program is missing (the test is then reported as skipped;
    /// with `CI` set this panics instead).
    pub async fn start(proxy: Proxy, options: StackOptions) -> Option<Self> {
        let mut needed = proxy.programs().to_vec();
        needed.extend(options.also_needs.iter().copied());
        if !require(&needed) {
            return None;
        }
        let tempdir = tempfile::Builder::new()
            .prefix(&format!("portcullis-e2e-{}-", proxy.name()))
            .tempdir()
            .expect("temporary directory");
        let dir = tempdir.path().to_owned();
        let mut logs = FailureLogs::default();

        // portcullis-verify runs on this thread (current-thread runtime): its logs go to a file.
        let verify_log = dir.join("portcullis-verify.log");
        let file = std::fs::File::create(&verify_log).expect("verify log");
        let subscriber = tracing_subscriber::fmt()
            .with_writer(Mutex::new(file))
            .with_ansi(false)
            .with_max_level(tracing::Level::TRACE)
            .finish();
        let subscriber = tracing_subscriber::layer::SubscriberExt::with(
            subscriber,
            portcullis_server_core::telemetry::filter(
                None,
                "portcullis_verify_server=debug,portcullis=debug,info",
            ),
        );
        let tracing = tracing::subscriber::set_default(subscriber);
        logs.files.push(verify_log);

        let certs = crate::tls::write(&dir);
        let port = free_port();
        let upstream = Upstream::start().await;
        let verify = Verify::start(
            &dir,
            &VerifyConfig {
                proxy_port: port,
                expiration: options.expiration.clone(),
                inactivity: "5m".to_owned(),
                second_factor: options.second_factor,
                ldap: options.ldap.clone(),
            },
        )
        .await;
        let (process, extra_logs) = proxy::start(
            proxy,
            &Wiring {
                dir: &dir,
                port,
                verify: verify.addr,
                more_verify: &[],
                upstream: upstream.addr,
                certs: &certs,
            },
        );
        logs.files.extend(process.logs.iter().cloned());
        logs.files.extend(extra_logs);
        let mut stack = Self {
            proxy,
            client: Client::new(port),
            upstream,
            verify,
            dir,
            processes: vec![process],
            logs,
            tempdir: Some(tempdir),
            keep: false,
            _tracing: tracing,
        };
        stack.wait_ready().await;
        Some(stack)
    }

    /// Poll the portal's health through the proxy until it answers 200 (the whole chain is up).
    async fn wait_ready(&mut self) {
        let started = Instant::now();
        let url = self.client.url("auth", "/api/health");
        let http = reqwest::Client::builder()
            .use_preconfigured_tls((*crate::tls::client_config()).clone())
            .resolve(
                "auth.example.com",
                std::net::SocketAddr::from(([127, 0, 0, 1], self.client.port)),
            )
            .timeout(Duration::from_secs(2))
            .build()
            .expect("client");
        let mut last = String::new();
        while started.elapsed() < Duration::from_secs(30) {
            for p in &mut self.processes {
                p.assert_running();
            }
            match http.get(&url).send().await {
                Ok(r) if r.status() == 200 => return,
                Ok(r) => last = format!("status {}", r.status()),
                Err(e) => last = format!("{e:?}"),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{} not ready after 30 s (last: {last})", self.proxy.name());
    }

    /// Keep the directory after the test (its path is printed).
    pub fn keep_dir(&mut self) {
        self.keep = true;
    }

    /// Add a process to stop with the stack, and its logs to print on failure.
    pub fn adopt(&mut self, process: Process) {
        self.logs.files.extend(process.logs.iter().cloned());
        self.processes.insert(0, process);
    }

    /// Add a log file to print on failure.
    pub fn add_log(&mut self, path: PathBuf) {
        self.logs.files.push(path);
    }

    /// Panic if a program of the stack stopped.
    pub fn assert_running(&mut self) {
        for p in &mut self.processes {
            p.assert_running();
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // Stop the programs first so their logs are complete; FailureLogs prints after this.
        self.processes.clear();
        if let Some(dir) = self.tempdir.take()
            && (std::thread::panicking() || self.keep)
        {
            let path = dir.keep();
            eprintln!("test directory kept: {}", path.display());
        }
    }
}
