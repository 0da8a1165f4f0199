//! The OpenID provider in headless Chromium: a browser follows a client's authorization request to
//! the login page, signs in, consents on the consent page, and lands on the client's callback
//! (a recording HTTP server) with a code the client redeems. Chromium enforces the pages'
//! `form-action`, so the redirects that end at the client must be allowed by them.

// Tests wait for real processes and sockets on the wall clock; the clock rule is for the servers.
#![allow(clippy::disallowed_methods)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::Duration;

use fantoccini::Locator;
use portcullis_tests::browser::{self, wait_for, wait_for_url};
use portcullis_tests::process::{free_port, require};
use portcullis_tests::tls;
use portcullis_tests::users::ALICE;
use portcullis_verify_server::{App, Tuning};

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn configuration(port: u16, client_port: u16, certs: &tls::CertFiles, dir: &Path) -> String {
    format!(
        r#"server:
  address: 'tcp://127.0.0.1:{port}/'
  tls: {{ certificate: '{chain}', key: '{key}' }}
authentication_backend:
  file: {{ path: '{users}' }}
access_control: {{ default_policy: one_factor }}
session:
  secret: 'oidc-browser-session-secret-0123456789'
  cookies:
    - domain: example.com
      authelia_url: 'https://auth.example.com:{port}'
storage:
  local: {{ path: '{db}' }}
identity_providers:
  oidc:
    hmac_secret: 'oidc-browser-hmac-secret-0123456789-0123456789-0123456789-0123456789'
    clients:
      - client_id: recorder
        client_name: The Recording App
        client_secret: '$plaintext$recorder-secret'
        redirect_uris: ['http://app.example.com:{client_port}/callback']
        scopes: [openid, profile, email, groups]
        authorization_policy: one_factor
        consent_mode: explicit
"#,
        chain = certs.chain.display(),
        key = certs.key.display(),
        users = Path::new(portcullis_tests::verify::QUICKSTART_USERS).display(),
        db = dir.join("db.sqlite3").display(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_consent_and_redirect_in_chromium() {
    if !require(browser::PROGRAMS) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let certs = tls::write(dir.path());
    let (port, client_port) = (free_port(), free_port());
    let path = dir.path().join("configuration.yml");
    std::fs::write(&path, configuration(port, client_port, &certs, dir.path())).unwrap();
    let (config, _) = portcullis_verify_server::config::load(&path, &Default::default()).unwrap();
    let handle = App::build_with(
        config,
        Tuning {
            failure_delay: Duration::from_millis(10),
            ..Tuning::default()
        },
    )
    .await
    .unwrap();
    let stop = handle.shutdown_trigger();
    tokio::spawn(handle.serve());

    // The client's callback: records the query it receives.
    let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel::<String>();
    let recorder = axum::Router::new().route(
        "/callback",
        axum::routing::get(move |uri: axum::http::Uri| {
            let seen_tx = seen_tx.clone();
            async move {
                let _ = seen_tx.send(uri.query().unwrap_or("").to_owned());
                "recorded"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", client_port))
        .await
        .unwrap();
    tokio::spawn(async move { axum::serve(listener, recorder).await.unwrap() });

    let (page, _driver) = browser::open_in(dir.path()).await;
    let issuer = format!("https://auth.example.com:{port}");
    let redirect = format!("http://app.example.com:{client_port}/callback");
    let authorize = format!(
        "{issuer}/api/oidc/authorization?response_type=code&client_id=recorder&redirect_uri={}&scope=openid%20profile%20email&state=browser-state-0123&nonce=browser-nonce-0123&code_challenge={CHALLENGE}&code_challenge_method=S256",
        form_urlencoded::byte_serialize(redirect.as_bytes()).collect::<String>()
    );
    page.goto(&authorize)
        .await
        .expect("open the authorization URL");
    wait_for_url(&page, "the login page of the flow", |u| {
        u.host_str() == Some("auth.example.com")
            && u.query().is_some_and(|q| q.contains("flow=openid_connect"))
    })
    .await;
    let username = wait_for(&page, "#username").await;
    username.send_keys(ALICE.0).await.expect("type username");
    page.find(Locator::Css("#password"))
        .await
        .expect("password field")
        .send_keys(ALICE.1)
        .await
        .expect("type password");
    page.find(Locator::Css("#sign-in"))
        .await
        .expect("Sign in")
        .click()
        .await
        .expect("click Sign in");
    wait_for_url(&page, "the consent page", |u| {
        u.path() == "/consent/openid/decision"
    })
    .await;
    let heading = wait_for(&page, "h1").await.text().await.unwrap();
    assert!(heading.contains("The Recording App"), "{heading}");
    page.find(Locator::Css("button[name=consent][value=true]"))
        .await
        .expect("Accept")
        .click()
        .await
        .expect("click Accept");
    let callback = wait_for_url(&page, "the client's callback", |u| {
        u.host_str() == Some("app.example.com")
    })
    .await;
    let params: std::collections::HashMap<String, String> =
        callback.query_pairs().into_owned().collect();
    assert_eq!(
        params.get("state").map(String::as_str),
        Some("browser-state-0123")
    );
    assert_eq!(params.get("iss"), Some(&issuer));
    let code = params.get("code").expect("a code").clone();
    let recorded = tokio::time::timeout(Duration::from_secs(5), seen.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(
        recorded.contains(&format!(
            "code={}",
            form_urlencoded::byte_serialize(code.as_bytes()).collect::<String>()
        )),
        "{recorded}"
    );

    // The client redeems the code.
    let ca = reqwest::Certificate::from_pem(tls::pem().ca.as_bytes()).unwrap();
    let http = reqwest::Client::builder()
        .add_root_certificate(ca)
        .resolve("auth.example.com", ([127, 0, 0, 1], port).into())
        .build()
        .unwrap();
    let r = http
        .post(format!("{issuer}/api/oidc/token"))
        .basic_auth("recorder", Some("recorder-secret"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", redirect.as_str()),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let tokens: serde_json::Value = r.json().await.unwrap();
    assert!(tokens["id_token"].is_string() && tokens["access_token"].is_string());
    let _ = page.close().await;
    stop.trigger();
}
