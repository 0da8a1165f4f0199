//! The SMTP notifier against a real mail server (aiosmtpd, `tests/smtp/server.py`) started on
//! loopback: STARTTLS required, the server's certificate checked against the test authority
//! from `certificates_directory`, AUTH after STARTTLS; the one-time code of a session elevation
//! travels by mail and is read out of the delivered message. A server without STARTTLS, a
//! certificate from another authority and wrong credentials all refuse the start (Authelia's
//! start-up check), never mail in clear.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use portcullis_tests::process::{FailureLogs, require};
use portcullis_tests::smtp::{messages, start_mail_server};
use portcullis_tests::tls;
use portcullis_verify_server::config::{LoadOptions, load_all};
use portcullis_verify_server::{App, Tuning};
use serde_json::{Value, json};

/// Authelia's published digest of "password" (argon2id).
const ALICE_DIGEST: &str = "$argon2id$v=19$m=65536,t=3,p=4$2ohUAfh9yetl+utr4tLcCQ$AsXx0VlwjvNnCsa70u4HKZvFkC8Gwajr2pHGKcND/xs";
use portcullis_tests::smtp::{PASSWORD, USER};

/// A configuration with the SMTP notifier pointed at `port`.
fn config(dir: &Path, port: u16, smtp_extra: &str, ca_dir: &Path) -> PathBuf {
    std::fs::write(
        dir.join("users.yml"),
        format!(
            "users:\n  alice:\n    displayname: Alice Liddell\n    password: \"{ALICE_DIGEST}\"\n    email: alice@example.com\n"
        ),
    )
    .unwrap();
    let text = format!(
        "server:\n  address: 'tcp://127.0.0.1:0/'\nauthentication_backend:\n  file:\n    path: users.yml\naccess_control:\n  default_policy: two_factor\nsession:\n  secret: smtp-test-session-secret-0123456789\n  cookies:\n    - domain: example.com\n      authelia_url: https://auth.example.com\ncertificates_directory: '{}'\nstorage:\n  encryption_key: smtp_test_encryption_key_0123\n  local:\n    path: db.sqlite3\nnotifier:\n  smtp:\n    address: 'submission://127.0.0.1:{port}'\n    sender: 'Portcullis <portcullis@example.com>'\n    username: {USER}\n    password: {PASSWORD}\n    tls:\n      server_name: mail.example.com\n{smtp_extra}",
        ca_dir.display()
    );
    let path = dir.join("configuration.yml");
    std::fs::write(&path, text).unwrap();
    path
}

async fn build(path: &Path) -> Result<portcullis_verify_server::Handle, String> {
    let (config, _) =
        load_all(&[path.to_owned()], &LoadOptions::default()).map_err(|e| e.to_string())?;
    App::build_with(
        config,
        Tuning {
            failure_delay: Duration::from_millis(10),
            elevation_delay: Duration::ZERO,
            ..Tuning::default()
        },
    )
    .await
    .map_err(|e| e.to_string())
}

async fn call(
    client: &reqwest::Client,
    addr: SocketAddr,
    method: reqwest::Method,
    path: &str,
    cookie: Option<&str>,
    body: Option<Value>,
) -> (u16, String, Option<String>) {
    let mut request = client
        .request(method, format!("http://{addr}{path}"))
        .header("host", "auth.example.com");
    if let Some(c) = cookie {
        request = request.header("cookie", c);
    }
    if let Some(b) = body {
        request = request.json(&b);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("authelia_session="))
        .map(|c| c.split(';').next().unwrap().to_owned());
    (status, response.text().await.unwrap(), cookie)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elevation_codes_go_by_mail_over_starttls_to_a_real_server() {
    if !require(&["aiosmtpd"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    let cas = dir.path().join("cas");
    std::fs::create_dir_all(&pki).unwrap();
    std::fs::create_dir_all(&cas).unwrap();
    let files = tls::write(&pki);
    std::fs::copy(&files.ca, cas.join("test-ca.pem")).unwrap();
    let mail = start_mail_server(dir.path(), Some(&files));
    let _logs = FailureLogs {
        files: mail.process.logs.clone(),
    };
    let path = config(dir.path(), mail.port, "", &cas);
    let handle = build(&path).await.unwrap_or_else(|e| panic!("start: {e}"));
    let addr = handle.local_addr();
    let stop = handle.shutdown_trigger();
    tokio::spawn(handle.serve());
    let client = reqwest::Client::builder().no_proxy().build().unwrap();

    let (status, body, cookie) = call(
        &client,
        addr,
        reqwest::Method::POST,
        "/api/firstfactor",
        None,
        Some(json!({"username": "alice", "password": "password"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let cookie = cookie.unwrap();
    let (status, body, _) = call(
        &client,
        addr,
        reqwest::Method::POST,
        "/api/user/session/elevation",
        Some(&cookie),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let delete_id = serde_json::from_str::<Value>(&body).unwrap()["data"]["delete_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let delivered = messages(&mail.dir);
    assert_eq!(delivered.len(), 1, "one message delivered");
    let message = &delivered[0];
    assert!(
        message.contains("X-Envelope-From: portcullis@example.com"),
        "{message}"
    );
    assert!(
        message.contains("X-Envelope-To: alice@example.com"),
        "{message}"
    );
    assert!(
        message.contains("Subject: [Authelia] Confirm your identity"),
        "{message}"
    );
    assert!(
        message.contains(&format!("/revoke/one-time-code?id={delete_id}")),
        "{message}"
    );
    let body_text = message.replace("\r\n", "\n");
    let pattern = regex::Regex::new(r"-{40}\n\n([A-Z0-9]{6,20})\n\n-{40}").unwrap();
    let code = pattern
        .captures(&body_text)
        .unwrap_or_else(|| panic!("no code in {body_text}"))[1]
        .to_owned();
    let (status, body, _) = call(
        &client,
        addr,
        reqwest::Method::PUT,
        "/api/user/session/elevation",
        Some(&cookie),
        Some(json!({"otc": code})),
    )
    .await;
    assert_eq!((status, body.as_str()), (200, r#"{"status":"OK"}"#));
    stop.trigger();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_starttls_another_authority_or_wrong_credentials_refuse_the_start() {
    if !require(&["aiosmtpd"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    let cas = dir.path().join("cas");
    let empty = dir.path().join("no-cas");
    for d in [&pki, &cas, &empty] {
        std::fs::create_dir_all(d).unwrap();
    }
    let files = tls::write(&pki);
    std::fs::copy(&files.ca, cas.join("test-ca.pem")).unwrap();
    // A server that offers no STARTTLS: TLS is required, so the check fails.
    let plain = start_mail_server(&dir.path().join("plain-run").tap_mkdir(), None);
    let e = build(&config(dir.path(), plain.port, "", &cas))
        .await
        .expect_err("refused");
    assert!(e.contains("notifier start-up check"), "{e}");
    assert!(messages(&plain.dir).is_empty());
    // STARTTLS with a certificate the configured authorities do not vouch for.
    let tls_server = start_mail_server(&dir.path().join("tls-run").tap_mkdir(), Some(&files));
    let e = build(&config(dir.path(), tls_server.port, "", &empty))
        .await
        .expect_err("refused");
    assert!(e.contains("notifier start-up check"), "{e}");
    // The right authority but a wrong password.
    let path = config(dir.path(), tls_server.port, "", &cas);
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace(PASSWORD, "wrong-password");
    std::fs::write(&path, text).unwrap();
    let e = build(&path).await.expect_err("refused");
    assert!(e.contains("notifier start-up check"), "{e}");
    // With disable_startup_check the server starts; the check is the operator's choice.
    let path = config(dir.path(), plain.port, "", &cas);
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "notifier:\n  smtp:",
        "notifier:\n  disable_startup_check: true\n  smtp:",
    );
    std::fs::write(&path, text).unwrap();
    let handle = build(&path).await.unwrap();
    drop(handle);
}

trait TapMkdir {
    fn tap_mkdir(self) -> PathBuf;
}

impl TapMkdir for PathBuf {
    fn tap_mkdir(self) -> PathBuf {
        std::fs::create_dir_all(&self).unwrap();
        self
    }
}
