//! Codes and secrets never reach the logs (issue 14): a whole second-factor life — password
//! login, mailed elevation code, TOTP registration and sign-in, wrong codes, a security key
//! registered and used, a passkey login with the password as second factor — runs with every
//! log line captured at `debug`, and none of them carries a password, a code, a TOTP secret, a
//! session id or a WebAuthn key.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::two_factor::*;
use common::*;
use http::StatusCode;
use portcullis_second_factor::totp::{TotpParameters, TotpSecret, code_at};
use portcullis_webauthn::encoding::{base64_standard, base64url, decode_binary};
use portcullis_webauthn::software_authenticator::SoftwareAuthenticator;
use serde_json::{Value, json};

const ORIGIN: &str = "http://auth.example.com";

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Self;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

fn value_of(cookie: &str) -> String {
    cookie.split_once('=').unwrap().1.to_owned()
}

#[tokio::test(flavor = "current_thread")]
async fn no_password_code_secret_session_id_or_key_is_logged() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(captured.clone())
        .with_ansi(false)
        // No timestamps: their digits could contain a six-digit code by chance.
        .without_time()
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let t = TwoFactor::with("webauthn:\n  enable_passkey_login: true\n");
    let mut secrets: Vec<String> = vec![BOB_PASSWORD.to_owned(), "not-his-password".to_owned()];

    let r = t
        .call(
            "POST",
            "/api/firstfactor",
            "",
            Some(json!({"username": "bob", "password": "not-his-password"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let cookie = t.h.login("auth.example.com", "bob", BOB_PASSWORD).await;
    secrets.push(value_of(&cookie));
    t.elevate(&cookie).await;
    secrets.push(t.mailed_code());

    // TOTP: the secret, a wrong code and the right ones.
    let r = t
        .call(
            "PUT",
            "/api/secondfactor/totp/register",
            &cookie,
            Some(json!({"algorithm": "SHA1", "length": 6, "period": 30})),
        )
        .await;
    let v: Value = serde_json::from_str(&r.body).unwrap();
    let base32 = v["data"]["base32_secret"].as_str().unwrap().to_owned();
    let secret = TotpSecret::from_base32(&base32).unwrap();
    let code = code_at(&secret, TotpParameters::default(), t.now());
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let r = t
        .call(
            "POST",
            "/api/secondfactor/totp/register",
            &cookie,
            Some(json!({"token": wrong})),
        )
        .await;
    assert_ne!(r.status, StatusCode::OK);
    let r = t
        .call(
            "POST",
            "/api/secondfactor/totp/register",
            &cookie,
            Some(json!({"token": code})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    t.h.advance(30);
    let next = code_at(&secret, TotpParameters::default(), t.now());
    let r = t
        .call(
            "POST",
            "/api/secondfactor/totp",
            &cookie,
            Some(json!({"token": next})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let upgraded = r.cookie_pair().unwrap();
    secrets.extend([base32, code.clone(), next.clone(), value_of(&upgraded)]);

    // A passkey: registered, then used to log in; the password completes two factors.
    let mut seed = [0u8; 32];
    seed[31] = 55;
    let mut passkey = SoftwareAuthenticator::new(seed, b"hygiene-passkey".to_vec());
    let r = t
        .call(
            "PUT",
            "/api/secondfactor/webauthn/credential/register",
            &upgraded,
            Some(json!({"description": "Phone"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let options = serde_json::from_str::<Value>(&r.body).unwrap()["data"]["publicKey"].clone();
    let handle = decode_binary("user.id", options["user"]["id"].as_str().unwrap()).unwrap();
    let answer = passkey.register(
        "auth.example.com",
        ORIGIN,
        options["challenge"].as_str().unwrap(),
        true,
    );
    let r = t
        .call(
            "POST",
            "/api/secondfactor/webauthn/credential/register",
            &upgraded,
            Some(answer),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = t.call("GET", "/api/firstfactor/passkey", "", None).await;
    let challenge =
        serde_json::from_str::<Value>(&r.body).unwrap()["data"]["publicKey"]["challenge"]
            .as_str()
            .unwrap()
            .to_owned();
    let answer = passkey.assert("auth.example.com", ORIGIN, &challenge, Some(&handle));
    let signature = answer["response"]["signature"].as_str().unwrap().to_owned();
    let r = t
        .call(
            "POST",
            "/api/firstfactor/passkey",
            "",
            Some(json!({"response": answer})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let passkey_session = r.cookie_pair().unwrap();
    let r = t
        .call(
            "POST",
            "/api/secondfactor/password",
            &passkey_session,
            Some(json!({"password": BOB_PASSWORD})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let cose = passkey.public_key().to_cose();
    secrets.extend([
        value_of(&passkey_session),
        value_of(&r.cookie_pair().unwrap()),
        String::from_utf8(handle).unwrap(),
        signature,
        base64url(&cose),
        base64_standard(&cose),
    ]);

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("second factor (TOTP) succeeded"),
        "the logs were captured:\n{logs}"
    );
    assert!(logs.contains("login with a passkey succeeded"), "{logs}");
    for secret in &secrets {
        assert!(
            !logs.contains(secret.as_str()),
            "{secret:?} is in the logs:\n{logs}"
        );
    }
}
