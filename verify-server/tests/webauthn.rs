//! WebAuthn and passkeys through the router (docs/reference/second-factor.md §2): registration
//! behind elevation, the second-factor assertion, the credential routes, passkey login and the
//! password as its second factor — every status and message of the spec, with a software
//! authenticator (P-256) answering the options the server gave.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::two_factor::*;
use common::*;
use http::StatusCode;
use portcullis_webauthn::encoding::decode_binary;
use portcullis_webauthn::software_authenticator::SoftwareAuthenticator;
use serde_json::{Value, json};

const RP: &str = "auth.example.com";
/// The portal is reached over plain HTTP in these tests (no TLS, no trusted proxy).
const ORIGIN: &str = "http://auth.example.com";

fn key(seed: u8, id: &[u8]) -> SoftwareAuthenticator {
    let mut bytes = [0u8; 32];
    bytes[31] = seed;
    SoftwareAuthenticator::new(bytes, id.to_vec())
}

fn state_level(r: &Reply) -> u64 {
    serde_json::from_str::<Value>(&r.body).unwrap()["data"]["authentication_level"]
        .as_u64()
        .unwrap()
}

/// Register `authenticator` for the (elevated) user of `cookie` as `name`; returns the user
/// handle the options carried.
async fn register(
    t: &TwoFactor,
    cookie: &str,
    authenticator: &SoftwareAuthenticator,
    name: &str,
    discoverable: bool,
) -> Vec<u8> {
    let r = t
        .call(
            "PUT",
            "/api/secondfactor/webauthn/credential/register",
            cookie,
            Some(json!({"description": name})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let options = data(&r)["publicKey"].clone();
    let handle = decode_binary("user.id", options["user"]["id"].as_str().unwrap()).unwrap();
    let answer = authenticator.register(
        RP,
        ORIGIN,
        options["challenge"].as_str().unwrap(),
        discoverable,
    );
    let r = t
        .call(
            "POST",
            "/api/secondfactor/webauthn/credential/register",
            cookie,
            Some(answer),
        )
        .await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (StatusCode::CREATED, r#"{"status":"OK"}"#)
    );
    handle
}

/// Begin a registration named `name` for the (elevated) user of `cookie`; its challenge.
async fn begin(t: &TwoFactor, cookie: &str, name: &str) -> String {
    let r = t
        .call(
            "PUT",
            "/api/secondfactor/webauthn/credential/register",
            cookie,
            Some(json!({"description": name})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    data(&r)["publicKey"]["challenge"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Send a registration answer.
async fn finish(t: &TwoFactor, cookie: &str, answer: Value) -> Reply {
    t.call(
        "POST",
        "/api/secondfactor/webauthn/credential/register",
        cookie,
        Some(answer),
    )
    .await
}

/// The second-factor assertion by `authenticator` for `cookie`; the reply.
async fn sign_in(t: &TwoFactor, cookie: &str, authenticator: &mut SoftwareAuthenticator) -> Reply {
    let r = t
        .call("GET", "/api/secondfactor/webauthn", cookie, None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let challenge = data(&r)["publicKey"]["challenge"]
        .as_str()
        .unwrap()
        .to_owned();
    let answer = authenticator.assert(RP, ORIGIN, &challenge, None);
    t.call(
        "POST",
        "/api/secondfactor/webauthn",
        cookie,
        Some(json!({"response": answer, "targetURL": "https://secure.example.com/"})),
    )
    .await
}

#[tokio::test]
async fn webauthn_routes_need_a_logged_in_user_and_registration_needs_elevation() {
    let t = TwoFactor::new();
    for (method, path) in [
        ("GET", "/api/secondfactor/webauthn"),
        ("POST", "/api/secondfactor/webauthn"),
        ("GET", "/api/secondfactor/webauthn/credentials"),
    ] {
        let r = t.call(method, path, "", Some(json!({}))).await;
        assert_eq!(
            (r.status, r.body.as_str()),
            (StatusCode::FORBIDDEN, "403 Forbidden"),
            "{method} {path}"
        );
    }
    let cookie = t.h.login("auth.example.com", "alice", ALICE_PASSWORD).await;
    for (method, path) in [
        ("PUT", "/api/secondfactor/webauthn/credential/register"),
        ("POST", "/api/secondfactor/webauthn/credential/register"),
        ("DELETE", "/api/secondfactor/webauthn/credential/register"),
        ("PUT", "/api/secondfactor/webauthn/credential/1"),
        ("DELETE", "/api/secondfactor/webauthn/credential/1"),
    ] {
        let r = t
            .call(method, path, &cookie, Some(json!({"description": "x"})))
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{method} {path}");
        assert_eq!(
            r.body,
            r#"{"data":{"elevation":true,"first_factor":false,"second_factor":false},"status":"KO"}"#,
            "{method} {path}"
        );
    }
    // Passkey login is off by default: its routes do not exist.
    let r = t.call("GET", "/api/firstfactor/passkey", "", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_security_key_registers_behind_elevation_and_is_the_second_factor() {
    let t = TwoFactor::new();
    let cookie = t.h.login("auth.example.com", "alice", ALICE_PASSWORD).await;
    t.elevate(&cookie).await;
    let r = t
        .call(
            "PUT",
            "/api/secondfactor/webauthn/credential/register",
            &cookie,
            Some(json!({"description": "YubiKey 5"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let options = &data(&r)["publicKey"];
    assert_eq!(options["rp"], json!({"id": RP, "name": "Authelia"}));
    assert_eq!(options["user"]["name"], "alice");
    assert_eq!(options["user"]["displayName"], "Alice Liddell");
    let handle = decode_binary("user.id", options["user"]["id"].as_str().unwrap()).unwrap();
    assert_eq!(handle.len(), 64, "Authelia's 64-character user handles");
    assert!(handle.iter().all(u8::is_ascii_graphic));
    assert_eq!(options["attestation"], "indirect");
    assert_eq!(options["timeout"], 60_000);
    assert_eq!(options["excludeCredentials"], json!([]));
    assert_eq!(options["extensions"], json!({"credProps": true}));
    let mut yubikey = key(11, b"yubikey-credential-1");
    let answer = yubikey.register(RP, ORIGIN, options["challenge"].as_str().unwrap(), false);
    let r = finish(&t, &cookie, answer).await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (StatusCode::CREATED, r#"{"status":"OK"}"#)
    );
    let mail = std::fs::read_to_string(t.dir.path().join("notification.txt")).unwrap();
    assert!(
        mail.contains("Second Factor Method Added") && mail.contains("Method: WebAuthn Credential"),
        "{mail}"
    );

    let r = t
        .call(
            "GET",
            "/api/secondfactor/webauthn/credentials",
            &cookie,
            None,
        )
        .await;
    let list = data(&r);
    assert_eq!(list.as_array().unwrap().len(), 1);
    let c = &list[0];
    assert_eq!(
        (
            c["description"].as_str(),
            c["rpid"].as_str(),
            c["username"].as_str()
        ),
        (Some("YubiKey 5"), Some(RP), Some("alice"))
    );
    assert_eq!(c["kid"], base64_standard(b"yubikey-credential-1"));
    assert_eq!(
        (
            c["attestation_format"].as_str(),
            c["attestation_type"].as_str()
        ),
        (Some("packed"), Some("self"))
    );
    assert_eq!(
        (
            c["discoverable"].as_bool(),
            c["clone_warning"].as_bool(),
            c["sign_count"].as_u64()
        ),
        (Some(false), Some(false), Some(1))
    );
    assert_eq!(c["transports"], json!(["usb"]));
    assert!(c.get("last_used_at").is_none());
    let r = t.call("GET", "/api/user/info", &cookie, None).await;
    assert_eq!(data(&r)["has_webauthn"], true);

    // The second factor: the options name the key; the answer raises the session to level 2.
    let r = t
        .call("GET", "/api/secondfactor/webauthn", &cookie, None)
        .await;
    let options = &data(&r)["publicKey"];
    assert_eq!(options["rpId"], RP);
    assert_eq!(
        options["allowCredentials"][0]["id"],
        portcullis_webauthn::encoding::base64url(b"yubikey-credential-1")
    );
    assert!(
        options.get("extensions").is_none(),
        "no appid without a U2F credential"
    );
    yubikey.sign_count = 2;
    let r = sign_in(&t, &cookie, &mut yubikey).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.body,
        r#"{"data":{"redirect":"https://secure.example.com/"},"status":"OK"}"#
    );
    let upgraded = r.cookie_pair().expect("a new session id at two factors");
    assert_ne!(upgraded, cookie);
    let r = t.call("GET", "/api/state", &upgraded, None).await;
    assert_eq!(state_level(&r), 2);
    let r = t.call("GET", "/api/state", &cookie, None).await;
    assert_eq!(state_level(&r), 0, "the one-factor session id is gone");
    let r = t
        .call(
            "GET",
            "/api/secondfactor/webauthn/credentials",
            &upgraded,
            None,
        )
        .await;
    assert_eq!(data(&r)[0]["sign_count"], 3);
    assert!(data(&r)[0]["last_used_at"].is_string());
}

fn base64_standard(bytes: &[u8]) -> String {
    portcullis_webauthn::encoding::base64_standard(bytes)
}

#[tokio::test]
async fn registration_failures_have_authelias_statuses_and_messages() {
    let t = TwoFactor::new();
    let cookie = t.h.login("auth.example.com", "alice", ALICE_PASSWORD).await;
    t.elevate(&cookie).await;
    let failed = r#"{"message":"Unable to register your security key.","status":"KO"}"#;
    for description in [String::new(), "x".repeat(65)] {
        let r = t
            .call(
                "PUT",
                "/api/secondfactor/webauthn/credential/register",
                &cookie,
                Some(json!({"description": description})),
            )
            .await;
        assert_eq!(
            (r.status, r.body.as_str()),
            (StatusCode::BAD_REQUEST, failed),
            "{description:?}"
        );
    }
    let r = t
        .call(
            "PUT",
            "/api/secondfactor/webauthn/credential/register",
            &cookie,
            Some(json!([])),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // No ceremony pending.
    let a = key(12, b"first");
    let stray = a.register(RP, ORIGIN, "AAAA", false);
    let r = finish(&t, &cookie, stray).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::FORBIDDEN, failed));
    register(&t, &cookie, &a, "Desk key", false).await;
    // The same name, in another case, is a conflict.
    let r = t
        .call(
            "PUT",
            "/api/secondfactor/webauthn/credential/register",
            &cookie,
            Some(json!({"description": "DESK KEY"})),
        )
        .await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (
            StatusCode::CONFLICT,
            r#"{"message":"Another one of your security keys is already registered with that display name.","status":"KO"}"#
        )
    );
    // The new options exclude the registered key.
    let r = t
        .call(
            "PUT",
            "/api/secondfactor/webauthn/credential/register",
            &cookie,
            Some(json!({"description": "Spare"})),
        )
        .await;
    let options = data(&r)["publicKey"].clone();
    assert_eq!(
        options["excludeCredentials"][0]["id"],
        portcullis_webauthn::encoding::base64url(b"first")
    );
    // A malformed answer is 400 and ends the ceremony; a wrong challenge is 403.
    let r = finish(&t, &cookie, json!({"id": 1})).await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (StatusCode::BAD_REQUEST, failed)
    );
    let b = key(13, b"second");
    let good = b.register(RP, ORIGIN, options["challenge"].as_str().unwrap(), false);
    let r = finish(&t, &cookie, good).await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "the ceremony was used up by the malformed answer"
    );
    let challenge = begin(&t, &cookie, "Spare").await;
    for forged in [
        b.register(RP, "http://evil.example.com", &challenge, false),
        b.register("evil.example.com", ORIGIN, &challenge, false),
    ] {
        let r = t
            .call(
                "PUT",
                "/api/secondfactor/webauthn/credential/register",
                &cookie,
                Some(json!({"description": "Spare"})),
            )
            .await;
        let challenge = data(&r)["publicKey"]["challenge"]
            .as_str()
            .unwrap()
            .to_owned();
        let _ = challenge;
        let r = t
            .call(
                "POST",
                "/api/secondfactor/webauthn/credential/register",
                &cookie,
                Some(forged),
            )
            .await;
        assert_eq!((r.status, r.body.as_str()), (StatusCode::FORBIDDEN, failed));
    }
    // The same credential id twice is refused (the kid is unique).
    let challenge = begin(&t, &cookie, "Again").await;
    let r = finish(&t, &cookie, a.register(RP, ORIGIN, &challenge, false)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // DELETE cancels a pending ceremony.
    let challenge = begin(&t, &cookie, "Spare").await;
    let r = t
        .call(
            "DELETE",
            "/api/secondfactor/webauthn/credential/register",
            &cookie,
            None,
        )
        .await;
    assert_eq!(r.body, r#"{"status":"OK"}"#);
    let r = finish(&t, &cookie, b.register(RP, ORIGIN, &challenge, false)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // A ceremony older than webauthn.timeout (60 s) is refused.
    let challenge = begin(&t, &cookie, "Spare").await;
    t.h.advance(61);
    t.elevate(&cookie).await;
    let r = finish(&t, &cookie, b.register(RP, ORIGIN, &challenge, false)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = t
        .call(
            "GET",
            "/api/secondfactor/webauthn/credentials",
            &cookie,
            None,
        )
        .await;
    assert_eq!(
        data(&r).as_array().unwrap().len(),
        1,
        "only the first key was stored"
    );
}

#[tokio::test]
async fn filtering_refuses_prohibited_models_and_backup_eligible_credentials() {
    let t = TwoFactor::with(
        "webauthn:\n  filtering:\n    prohibited_aaguids: ['00000000-0000-0000-0000-000000000000']\n",
    );
    let cookie = t.h.login("auth.example.com", "alice", ALICE_PASSWORD).await;
    t.elevate(&cookie).await;
    let challenge = begin(&t, &cookie, "Soft").await;
    let answer = key(14, b"soft").register(RP, ORIGIN, &challenge, false);
    let r = finish(&t, &cookie, answer).await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "the software authenticator's AAGUID is all zeros"
    );

    let t = TwoFactor::with("webauthn:\n  filtering:\n    prohibit_backup_eligibility: true\n");
    let cookie = t.h.login("auth.example.com", "alice", ALICE_PASSWORD).await;
    t.elevate(&cookie).await;
    let mut synced = key(15, b"synced");
    synced.flags |= 0x08;
    let challenge = begin(&t, &cookie, "Synced").await;
    let r = finish(&t, &cookie, synced.register(RP, ORIGIN, &challenge, true)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let plain = key(16, b"plain");
    register(&t, &cookie, &plain, "Plain", false).await;
}

#[tokio::test]
async fn assertion_failures_are_refused_and_never_raise_the_level() {
    let t = TwoFactor::new();
    let cookie = t.h.login("auth.example.com", "alice", ALICE_PASSWORD).await;
    let mfa_failed = r#"{"message":"Authentication failed, please retry later.","status":"KO"}"#;
    // No credential: no challenge.
    let r = t
        .call("GET", "/api/secondfactor/webauthn", &cookie, None)
        .await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (StatusCode::FORBIDDEN, mfa_failed)
    );
    t.elevate(&cookie).await;
    let mut a = key(17, b"alice-key");
    register(&t, &cookie, &a, "Key", false).await;
    // No challenge pending.
    let stray = a.assert(RP, ORIGIN, "AAAA", None);
    let r = t
        .call(
            "POST",
            "/api/secondfactor/webauthn",
            &cookie,
            Some(json!({"response": stray})),
        )
        .await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (StatusCode::FORBIDDEN, mfa_failed)
    );
    // A malformed body is 400.
    let r = t
        .call(
            "POST",
            "/api/secondfactor/webauthn",
            &cookie,
            Some(json!({"response": {"id": 3}})),
        )
        .await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (StatusCode::BAD_REQUEST, mfa_failed)
    );
    // Another key (not registered) signs: 403.
    let mut other = key(18, b"alice-key");
    let r = sign_in(&t, &cookie, &mut other).await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (StatusCode::FORBIDDEN, mfa_failed)
    );
    // Bob's session cannot use Alice's key.
    let bob = t.h.login("auth.example.com", "bob", BOB_PASSWORD).await;
    let r = t
        .call("GET", "/api/secondfactor/webauthn", &bob, None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "bob has no key");
    // A counter that does not grow: a cloned authenticator; refused and flagged for good.
    a.sign_count = 5;
    let r = sign_in(&t, &cookie, &mut a).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let cookie = t.h.login("auth.example.com", "alice", ALICE_PASSWORD).await;
    let mut clone = a.clone();
    clone.sign_count = 4;
    let r = sign_in(&t, &cookie, &mut clone).await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (StatusCode::FORBIDDEN, mfa_failed)
    );
    let r = t
        .call(
            "GET",
            "/api/secondfactor/webauthn/credentials",
            &cookie,
            None,
        )
        .await;
    assert_eq!(data(&r)[0]["clone_warning"], true);
    let r = sign_in(&t, &cookie, &mut a).await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "a flagged credential stays refused"
    );
    let r = t.call("GET", "/api/state", &cookie, None).await;
    assert_eq!(state_level(&r), 1);
}

#[tokio::test]
async fn credentials_are_renamed_and_deleted_by_their_owner_only() {
    let t = TwoFactor::new();
    let alice = t.h.login("auth.example.com", "alice", ALICE_PASSWORD).await;
    t.elevate(&alice).await;
    register(&t, &alice, &key(19, b"one"), "One", false).await;
    register(&t, &alice, &key(20, b"two"), "Two", false).await;
    let r = t
        .call(
            "GET",
            "/api/secondfactor/webauthn/credentials",
            &alice,
            None,
        )
        .await;
    let (one, two) = (
        data(&r)[0]["id"].as_i64().unwrap(),
        data(&r)[1]["id"].as_i64().unwrap(),
    );
    let failed = r#"{"message":"Operation failed.","status":"KO"}"#;
    let rename = |id: String, body: Value| {
        let alice = alice.clone();
        let t = &t;
        async move {
            t.call(
                "PUT",
                &format!("/api/secondfactor/webauthn/credential/{id}"),
                &alice,
                Some(body),
            )
            .await
        }
    };
    let r = rename(one.to_string(), json!({"description": "Primary"})).await;
    assert_eq!(r.body, r#"{"status":"OK"}"#);
    let r = rename(one.to_string(), json!({"description": ""})).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::FORBIDDEN, failed));
    let r = rename(one.to_string(), json!({"description": "two"})).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::CONFLICT, failed));
    let r = rename("abc".into(), json!({"description": "x"})).await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (StatusCode::BAD_REQUEST, failed)
    );
    let r = rename(one.to_string(), json!("x")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // Bob, elevated, can neither rename nor delete Alice's.
    let bob = t.h.login("auth.example.com", "bob", BOB_PASSWORD).await;
    t.elevate(&bob).await;
    let r = t
        .call(
            "PUT",
            &format!("/api/secondfactor/webauthn/credential/{two}"),
            &bob,
            Some(json!({"description": "Mine"})),
        )
        .await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::FORBIDDEN, failed));
    let r = t
        .call(
            "DELETE",
            &format!("/api/secondfactor/webauthn/credential/{two}"),
            &bob,
            None,
        )
        .await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::FORBIDDEN, failed));
    let r = t
        .call(
            "DELETE",
            &format!("/api/secondfactor/webauthn/credential/{two}"),
            &alice,
            None,
        )
        .await;
    assert_eq!(r.body, r#"{"status":"OK"}"#);
    let mail = std::fs::read_to_string(t.dir.path().join("notification.txt")).unwrap();
    assert!(mail.contains("Second Factor Method Removed"), "{mail}");
    let r = t
        .call(
            "DELETE",
            &format!("/api/secondfactor/webauthn/credential/{two}"),
            &alice,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "already gone");
    let r = t
        .call(
            "GET",
            "/api/secondfactor/webauthn/credentials",
            &alice,
            None,
        )
        .await;
    let list = data(&r);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["description"], "Primary");
}

const PASSKEYS: &str = "webauthn:\n  enable_passkey_login: true\n  selection_criteria:\n    discoverability: required\n";

/// Log in with `authenticator`'s passkey; the reply.
async fn passkey_login(
    t: &TwoFactor,
    authenticator: &mut SoftwareAuthenticator,
    handle: Option<&[u8]>,
) -> Reply {
    let r = t.call("GET", "/api/firstfactor/passkey", "", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let options = &data(&r)["publicKey"];
    assert_eq!(options["allowCredentials"], json!([]));
    let answer = authenticator.assert(RP, ORIGIN, options["challenge"].as_str().unwrap(), handle);
    t.call(
        "POST",
        "/api/firstfactor/passkey",
        "",
        Some(json!({"response": answer, "keepMeLoggedIn": false, "targetURL": "https://app.example.com/"})),
    )
    .await
}

#[tokio::test]
async fn a_passkey_logs_in_at_one_factor_and_the_password_is_its_second_factor() {
    let t = TwoFactor::with(PASSKEYS);
    let cookie = t.h.login("auth.example.com", "alice", ALICE_PASSWORD).await;
    t.elevate(&cookie).await;
    let mut passkey = key(21, b"alice-passkey");
    let handle = register(&t, &cookie, &passkey, "Phone", true).await;
    // A logged-in session may not ask for passkey options.
    let r = t
        .call("GET", "/api/firstfactor/passkey", &cookie, None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    let r = passkey_login(&t, &mut passkey, Some(&handle)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.body,
        r#"{"data":{"redirect":"https://app.example.com/"},"status":"OK"}"#
    );
    let session = r.cookie_pair().unwrap();
    let r = t.call("GET", "/api/state", &session, None).await;
    assert_eq!(state_level(&r), 1, "a passkey is one factor (possession)");
    // Possession twice is not two factors: TOTP and WebAuthn are refused for this session.
    let r = t
        .call(
            "POST",
            "/api/secondfactor/totp",
            &session,
            Some(json!({"token": "123456"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = sign_in(&t, &session, &mut passkey).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // The password is.
    let r = t
        .call(
            "POST",
            "/api/secondfactor/password",
            &session,
            Some(json!({"password": "wrong"})),
        )
        .await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (
            StatusCode::UNAUTHORIZED,
            r#"{"message":"Authentication failed. Check your credentials.","status":"KO"}"#
        )
    );
    let r = t
        .call(
            "POST",
            "/api/secondfactor/password",
            &session,
            Some(json!({"password": ALICE_PASSWORD, "targetURL": "https://secure.example.com/"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let two = r.cookie_pair().unwrap();
    let r = t.call("GET", "/api/state", &two, None).await;
    assert_eq!(state_level(&r), 2);
    // A password session cannot use the password route.
    let plain = t.h.login("auth.example.com", "bob", BOB_PASSWORD).await;
    let r = t
        .call(
            "POST",
            "/api/secondfactor/password",
            &plain,
            Some(json!({"password": BOB_PASSWORD})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn passkey_logins_without_a_known_discoverable_credential_are_refused() {
    let t = TwoFactor::with(PASSKEYS);
    let cookie = t.h.login("auth.example.com", "alice", ALICE_PASSWORD).await;
    t.elevate(&cookie).await;
    let mut passkey = key(22, b"alice-passkey");
    let handle = register(&t, &cookie, &passkey, "Phone", true).await;
    let mut security_key = key(23, b"alice-security-key");
    register(&t, &cookie, &security_key, "Desk", false).await;
    let mfa_failed = r#"{"message":"Authentication failed, please retry later.","status":"KO"}"#;
    // No user handle, an unknown handle, another user's handle, a non-discoverable credential.
    for (authenticator, handle) in [
        (&mut passkey.clone(), None),
        (&mut passkey.clone(), Some(b"not-a-user".to_vec())),
        (&mut security_key, Some(handle.clone())),
    ] {
        let r = passkey_login(&t, authenticator, handle.as_deref()).await;
        assert_eq!(
            (r.status, r.body.as_str()),
            (StatusCode::FORBIDDEN, mfa_failed)
        );
        assert!(r.cookie_pair().is_none());
    }
    // A challenge is used once.
    let r = t.call("GET", "/api/firstfactor/passkey", "", None).await;
    let challenge = data(&r)["publicKey"]["challenge"]
        .as_str()
        .unwrap()
        .to_owned();
    let answer = passkey.assert(RP, ORIGIN, &challenge, Some(&handle));
    let body = json!({"response": answer});
    let r = t
        .call("POST", "/api/firstfactor/passkey", "", Some(body.clone()))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = t
        .call("POST", "/api/firstfactor/passkey", "", Some(body))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "replayed");
    let r = t
        .call(
            "POST",
            "/api/firstfactor/passkey",
            "",
            Some(json!({"response": "x"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_user_verified_passkey_is_two_factors_under_the_experimental_key() {
    let t = TwoFactor::with(
        "webauthn:\n  enable_passkey_login: true\n  experimental_enable_passkey_uv_two_factors: true\n",
    );
    let cookie = t.h.login("auth.example.com", "alice", ALICE_PASSWORD).await;
    t.elevate(&cookie).await;
    let mut passkey = key(24, b"uv-passkey");
    let handle = register(&t, &cookie, &passkey, "Phone", true).await;
    let r = passkey_login(&t, &mut passkey, Some(&handle)).await;
    let r = t
        .call("GET", "/api/state", &r.cookie_pair().unwrap(), None)
        .await;
    assert_eq!(state_level(&r), 2);
    // Without UV it stays one factor.
    passkey.flags = 0x01;
    let r = passkey_login(&t, &mut passkey, Some(&handle)).await;
    let r = t
        .call("GET", "/api/state", &r.cookie_pair().unwrap(), None)
        .await;
    assert_eq!(state_level(&r), 1);
}

#[tokio::test]
async fn webauthn_disabled_or_without_an_encryption_key_has_no_routes() {
    let t = TwoFactor::with("webauthn:\n  disable: true\n");
    let cookie = t.h.login("auth.example.com", "alice", ALICE_PASSWORD).await;
    let r = t
        .call("GET", "/api/secondfactor/webauthn", &cookie, None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = t.call("GET", "/api/configuration", &cookie, None).await;
    assert_eq!(data(&r)["available_methods"], json!(["totp"]));
}
