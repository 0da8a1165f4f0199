//! Authelia's own TwoFactor suite configuration (`tests/fixtures/authelia-twofactor-suite/`)
//! starts with the mounts its compose file gives Authelia, and john completes TOTP on it: the
//! suite's SMTP notifier (a real aiosmtpd with STARTTLS here) mails the elevation code, the
//! suite's allowed TOTP parameters are offered, a SHA256 / 8-digit / 60-second app is registered,
//! and the code raises the session to two factors, which `secure.example.com` requires.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::Duration;

use portcullis_second_factor::totp::{
    Algorithm, Digits, Period, TotpParameters, TotpSecret, code_at,
};
use portcullis_tests::process::{FailureLogs, free_port, require};
use portcullis_tests::smtp::{messages, start_mail_server_with};
use portcullis_tests::tls;
use portcullis_verify_server::config::{LoadOptions, load_all};
use portcullis_verify_server::{App, Tuning};
use serde_json::{Value, json};

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/authelia-twofactor-suite"
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authelias_two_factor_suite_configuration_starts_and_john_completes_totp() {
    if !require(&["aiosmtpd"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for sub in ["config", "pki", "certs"] {
        std::fs::create_dir_all(root.join(sub)).unwrap();
    }
    let certs = tls::write(&root.join("pki"));
    std::fs::copy(&certs.chain, root.join("pki/public.backend.crt")).unwrap();
    std::fs::copy(&certs.key, root.join("pki/private.backend.pem")).unwrap();
    std::fs::copy(&certs.ca, root.join("certs/public.crt")).unwrap();
    std::fs::copy(
        Path::new(FIXTURES).join("users.yml"),
        root.join("config/users.yml"),
    )
    .unwrap();
    // The suite's mail account (authelia / mailer) on a real server with STARTTLS.
    let mail = start_mail_server_with(root, &certs, "authelia", "mailer");
    let _logs = FailureLogs {
        files: mail.process.logs.clone(),
    };
    let port = free_port();
    let text = std::fs::read_to_string(Path::new(FIXTURES).join("configuration.yml"))
        .unwrap()
        .replace("'/pki/", &format!("'{}/pki/", root.display()))
        .replace("'/config/", &format!("'{}/config/", root.display()))
        .replace("'/certs/'", &format!("'{}/certs/'", root.display()))
        .replace("'/tmp/db.sqlite3'", &format!("'{}/db.sqlite3'", root.display()))
        .replace("'tcp://:9091'", &format!("'tcp://127.0.0.1:{port}'"))
        .replace("'tcp://0.0.0.0:9959'", &format!("'tcp://127.0.0.1:{}'", free_port()))
        .replace(
            "    address: 'smtp://mail.example.com:1025'\n",
            &format!(
                "    address: 'smtp://127.0.0.1:{}'\n    tls:\n      server_name: 'mail.example.com'\n",
                mail.port
            ),
        );
    assert!(
        text.contains("server_name: 'mail.example.com'"),
        "the suite's notifier moved"
    );
    let path = root.join("config/configuration.yml");
    std::fs::write(&path, &text).unwrap();
    let (config, warnings) = load_all(std::slice::from_ref(&path), &LoadOptions::default())
        .unwrap_or_else(|e| panic!("the suite configuration: {e}"));
    let keys: Vec<&str> = warnings.iter().map(|w| w.key.as_str()).collect();
    for key in ["webauthn", "ntp", "theme"] {
        assert!(keys.contains(&key), "{key} not warned about: {keys:?}");
    }
    for key in [
        "totp",
        "notifier",
        "identity_validation",
        "password_policy",
        "storage.encryption_key",
    ] {
        assert!(
            !keys.iter().any(|k| k.starts_with(key)),
            "{key} is implemented: {keys:?}"
        );
    }
    let handle = App::build_with(
        config,
        Tuning {
            failure_delay: Duration::from_millis(10),
            elevation_delay: Duration::ZERO,
            ..Tuning::default()
        },
    )
    .await
    .unwrap_or_else(|e| panic!("the suite configuration does not start: {e}"));
    let addr = handle.local_addr();
    let stop = handle.shutdown_trigger();
    tokio::spawn(handle.serve());

    let ca = reqwest::Certificate::from_pem(&std::fs::read(&certs.ca).unwrap()).unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(ca)
        .resolve("login.example.com", addr)
        .no_proxy()
        .build()
        .unwrap();
    let base = format!("https://login.example.com:{port}");
    let call = |method: reqwest::Method, path: &str, cookie: Option<&str>, body: Option<Value>| {
        let mut request = client.request(method, format!("{base}{path}"));
        if let Some(c) = cookie {
            request = request.header("cookie", c);
        }
        if let Some(b) = body {
            request = request.json(&b);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let cookie = response
                .headers()
                .get_all("set-cookie")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find(|c| c.starts_with("authelia_session=") && !c.contains("Max-Age=0"))
                .map(|c| c.split(';').next().unwrap().to_owned());
            (status, response.text().await.unwrap(), cookie)
        }
    };
    use reqwest::Method;
    let (status, body, cookie) = call(
        Method::POST,
        "/api/firstfactor",
        None,
        Some(json!({"username": "john", "password": "password"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let cookie = cookie.unwrap();

    let (status, body, _) = call(
        Method::POST,
        "/api/user/session/elevation",
        Some(&cookie),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let delivered = messages(&mail.dir);
    let message = delivered
        .last()
        .expect("the code was mailed")
        .replace("\r\n", "\n");
    assert!(
        message.contains("X-Envelope-To: john.doe@authelia.com"),
        "{message}"
    );
    let pattern = regex::Regex::new(r"-{40}\n\n([A-Z0-9]{6,20})\n\n-{40}").unwrap();
    let code = pattern
        .captures(&message)
        .unwrap_or_else(|| panic!("no code in {message}"))[1]
        .to_owned();
    let (status, body, _) = call(
        Method::PUT,
        "/api/user/session/elevation",
        Some(&cookie),
        Some(json!({"otc": code})),
    )
    .await;
    assert_eq!((status, body.as_str()), (200, r#"{"status":"OK"}"#));

    let (_, body, _) = call(
        Method::GET,
        "/api/secondfactor/totp/register",
        Some(&cookie),
        None,
    )
    .await;
    assert_eq!(
        body,
        r#"{"data":{"algorithm":"SHA1","algorithms":["SHA1","SHA256","SHA512"],"length":6,"lengths":[6,8],"period":30,"periods":[30,60,90,120]},"status":"OK"}"#
    );
    let (status, body, _) = call(
        Method::PUT,
        "/api/secondfactor/totp/register",
        Some(&cookie),
        Some(json!({"algorithm": "SHA256", "length": 8, "period": 60})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let data: Value = serde_json::from_str(&body).unwrap();
    let uri = data["data"]["otpauth_url"].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/example.com:john?algorithm=SHA256&digits=8&issuer=example.com&period=60&secret="), "{uri}");
    let secret = TotpSecret::from_base32(data["data"]["base32_secret"].as_str().unwrap()).unwrap();
    let p = TotpParameters {
        algorithm: Algorithm::Sha256,
        digits: Digits::EIGHT,
        period: Period::new(60).unwrap(),
    };
    let now = portcullis_server_core::clock::unix_now();
    let (status, body, _) = call(
        Method::POST,
        "/api/secondfactor/totp/register",
        Some(&cookie),
        Some(json!({"token": code_at(&secret, p, now)})),
    )
    .await;
    assert_eq!((status, body.as_str()), (200, r#"{"status":"OK"}"#));
    // The suite sets disable_reuse_security_policy: the code that registered also signs in.
    let (status, body, upgraded) = call(
        Method::POST,
        "/api/secondfactor/totp",
        Some(&cookie),
        Some(json!({"token": code_at(&secret, p, now), "targetURL": "https://secure.example.com:8080/"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        r#"{"data":{"redirect":"https://secure.example.com:8080/"},"status":"OK"}"#
    );
    let upgraded = upgraded.expect("a new session cookie");
    let (_, body, _) = call(Method::GET, "/api/state", Some(&upgraded), None).await;
    assert!(body.contains(r#""authentication_level":2"#), "{body}");
    stop.trigger();
}
