//! Headless Chromium driven over WebDriver (chromedriver + fantoccini). `*.example.com` resolves to
//! loopback; the proxy's port is in every URL.

use std::time::{Duration, Instant};

use fantoccini::wd::Capabilities;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

use crate::process::{Process, find_program, free_port};
use crate::stack::Stack;

/// Programs a browser test needs.
pub const PROGRAMS: &[&str] = &["chromium", "chromedriver"];

/// Start chromedriver (owned by the stack: it and the browser stop with it) and open a session.
pub async fn open(stack: &mut Stack) -> Client {
    let dir = stack.dir.clone();
    let (process, port) = spawn_driver(&dir);
    stack.adopt(process);
    stack.add_log(dir.join("chromedriver.log"));
    connect(&dir, port, || stack.assert_running()).await
}

/// Start chromedriver for a test without a [`Stack`] (the test keeps the process: it and the
/// browser stop when it is dropped) and open a session.
pub async fn open_in(dir: &std::path::Path) -> (Client, Process) {
    let (mut process, port) = spawn_driver(dir);
    let client = connect(dir, port, || process.assert_running()).await;
    (client, process)
}

fn spawn_driver(dir: &std::path::Path) -> (Process, u16) {
    let port = free_port();
    let log = dir.join("chromedriver.log");
    let mut command =
        std::process::Command::new(find_program("chromedriver").expect("chromedriver"));
    command
        .arg(format!("--port={port}"))
        .arg(format!("--log-path={}", log.display()));
    (Process::spawn("chromedriver", command, dir, true), port)
}

async fn connect(dir: &std::path::Path, port: u16, mut alive: impl FnMut()) -> Client {
    let webdriver = format!("http://127.0.0.1:{port}");
    let profile = dir.join("chromium-profile");
    let mut caps = Capabilities::new();
    caps.insert(
        "goog:chromeOptions".to_owned(),
        json!({
            "binary": find_program("chromium").expect("chromium"),
            "args": [
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--ignore-certificate-errors",
                "--host-resolver-rules=MAP *.example.com 127.0.0.1",
                "--window-size=1024,800",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    caps.insert("acceptInsecureCerts".to_owned(), json!(true));

    // chromedriver is ready when it accepts a session; poll until it does.
    let started = Instant::now();
    loop {
        alive();
        match ClientBuilder::new(HttpConnector::new())
            .capabilities(caps.clone())
            .connect(&webdriver)
            .await
        {
            Ok(client) => return client,
            Err(e) if started.elapsed() > Duration::from_secs(30) => {
                panic!("no WebDriver session after 30 s: {e}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Wait (polling, 15 s at most) for an element.
pub async fn wait_for(client: &Client, css: &str) -> fantoccini::elements::Element {
    client
        .wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no `{css}` on the page: {e}"))
}

/// Wait (polling, 15 s at most) until the current URL satisfies `check`.
pub async fn wait_for_url(
    client: &Client,
    what: &str,
    check: impl Fn(&url::Url) -> bool,
) -> url::Url {
    let started = Instant::now();
    loop {
        let current = client.current_url().await.expect("current URL");
        if check(&current) {
            return current;
        }
        if started.elapsed() > Duration::from_secs(15) {
            let source = client.source().await.unwrap_or_default();
            panic!("never reached {what}; still on {current}; page:\n{source}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A WebDriver WebAuthn command (W3C WebAuthn §11, `/session/{id}/webauthn/…`), which fantoccini
/// has no method for.
#[derive(Debug)]
struct WebAuthnCommand {
    path: String,
    method: http::Method,
    body: Option<serde_json::Value>,
}

impl fantoccini::wd::WebDriverCompatibleCommand for WebAuthnCommand {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/webauthn/{}",
            session_id.unwrap_or_default(),
            self.path
        ))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        (
            self.method.clone(),
            self.body.as_ref().map(ToString::to_string),
        )
    }
}

/// Add a CTAP2 virtual authenticator (resident keys and user verification, the user always
/// consenting) to the browser; returns its id.
pub async fn add_virtual_authenticator(client: &Client) -> String {
    let answer = client
        .issue_cmd(WebAuthnCommand {
            path: "authenticator".to_owned(),
            method: http::Method::POST,
            body: Some(json!({
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": true,
                "hasUserVerification": true,
                "isUserConsenting": true,
                "isUserVerified": true,
            })),
        })
        .await
        .unwrap_or_else(|e| panic!("add a virtual authenticator: {e}"));
    answer
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no authenticator id in {answer}"))
}

/// The credentials the virtual authenticator `id` holds.
pub async fn virtual_credentials(client: &Client, id: &str) -> Vec<serde_json::Value> {
    let answer = client
        .issue_cmd(WebAuthnCommand {
            path: format!("authenticator/{id}/credentials"),
            method: http::Method::GET,
            body: None,
        })
        .await
        .unwrap_or_else(|e| panic!("list the virtual credentials: {e}"));
    answer.as_array().cloned().unwrap_or_default()
}
