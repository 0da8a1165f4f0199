//! Authelia's own TwoFactor suite configuration (`tests/fixtures/authelia-twofactor-suite/`)
//! starts with the mounts its compose file gives Authelia, and john completes TOTP on it: the
//! suite's SMTP notifier (a real aiosmtpd with STARTTLS here) mails the elevation code, the
//! suite's allowed TOTP parameters are offered, a SHA256 / 8-digit / 60-second app is registered,
//! and the code raises the session to two factors, which `secure.example.com` requires. Then, on
//! the same server, john registers a passkey (the suite asks for discoverable credentials),
//! logs in with it and completes two factors with his password.
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
use portcullis_webauthn::encoding::decode_binary;
use portcullis_webauthn::software_authenticator::SoftwareAuthenticator;
use serde_json::{Value, json};

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/authelia-twofactor-suite"
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authelias_two_factor_suite_configuration_starts_and_john_completes_totp_and_a_passkey() {
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
    for key in ["webauthn.metadata", "ntp", "theme"] {
        assert!(keys.contains(&key), "{key} not warned about: {keys:?}");
    }
    assert!(
        !keys
            .iter()
            .any(|k| k.starts_with("webauthn") && *k != "webauthn.metadata"),
        "webauthn is implemented (only its metadata service is not): {keys:?}"
    );
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

    // A passkey, registered on the elevated session (the elevation moved with its new id).
    let origin = format!("https://login.example.com:{port}");
    let mut seed = [0u8; 32];
    seed[31] = 33;
    let mut passkey = SoftwareAuthenticator::new(seed, b"john-passkey".to_vec());
    let (status, body, _) = call(
        Method::PUT,
        "/api/secondfactor/webauthn/credential/register",
        Some(&upgraded),
        Some(json!({"description": "John's phone"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let options: Value = serde_json::from_str(&body).unwrap();
    let options = &options["data"]["publicKey"];
    assert_eq!(options["rp"]["id"], "login.example.com");
    assert_eq!(options["authenticatorSelection"]["residentKey"], "required");
    assert_eq!(
        options["authenticatorSelection"]["userVerification"],
        "preferred"
    );
    let handle = decode_binary("user.id", options["user"]["id"].as_str().unwrap()).unwrap();
    let answer = passkey.register(
        "login.example.com",
        &origin,
        options["challenge"].as_str().unwrap(),
        true,
    );
    let (status, body, _) = call(
        Method::POST,
        "/api/secondfactor/webauthn/credential/register",
        Some(&upgraded),
        Some(answer),
    )
    .await;
    assert_eq!((status, body.as_str()), (201, r#"{"status":"OK"}"#));
    let (status, body, _) = call(Method::GET, "/api/firstfactor/passkey", None, None).await;
    assert_eq!(status, 200, "{body}");
    let options: Value = serde_json::from_str(&body).unwrap();
    let challenge = options["data"]["publicKey"]["challenge"].as_str().unwrap();
    let answer = passkey.assert("login.example.com", &origin, challenge, Some(&handle));
    let (status, body, passkey_session) = call(
        Method::POST,
        "/api/firstfactor/passkey",
        None,
        Some(json!({"response": answer, "keepMeLoggedIn": false})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let passkey_session = passkey_session.expect("a session from the passkey");
    let (_, body, _) = call(Method::GET, "/api/state", Some(&passkey_session), None).await;
    assert!(body.contains(r#""authentication_level":1"#), "{body}");
    let (status, body, two) = call(
        Method::POST,
        "/api/secondfactor/password",
        Some(&passkey_session),
        Some(json!({"password": "password"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (_, body, _) = call(Method::GET, "/api/state", two.as_deref(), None).await;
    assert!(body.contains(r#""authentication_level":2"#), "{body}");
    stop.trigger();
}
