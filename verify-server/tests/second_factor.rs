//! The second-factor routes through the router (docs/reference/second-factor.md §1, §3): TOTP
//! sign-in and registration, session elevation with the filesystem notifier, the user info and
//! the portal configuration — every status and body of the spec, and the failures.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use common::two_factor::*;
use common::*;
use http::{Request, StatusCode};
use portcullis_second_factor::totp::{TotpParameters, TotpSecret, code_at};
use portcullis_session::MemoryStore;
use serde_json::json;

#[tokio::test]
async fn every_route_needs_a_logged_in_user_with_authelias_plain_403() {
    let t = TwoFactor::new();
    for (method, path) in [
        ("GET", "/api/secondfactor/totp"),
        ("POST", "/api/secondfactor/totp"),
        ("GET", "/api/user/info"),
        ("POST", "/api/user/info"),
        ("POST", "/api/user/info/2fa_method"),
        ("GET", "/api/configuration"),
        ("GET", "/api/user/session/elevation"),
        ("POST", "/api/user/session/elevation"),
        ("PUT", "/api/user/session/elevation"),
    ] {
        let r = t
            .call(method, path, "", Some(json!({"token": "123456"})))
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{method} {path}");
        assert_eq!(r.body, "403 Forbidden", "{method} {path}");
    }
    // The elevated routes answer with the elevation shape.
    for (method, path) in [
        ("GET", "/api/secondfactor/totp/register"),
        ("PUT", "/api/secondfactor/totp/register"),
        ("DELETE", "/api/secondfactor/totp"),
    ] {
        let r = t.call(method, path, "", None).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{method} {path}");
        assert_eq!(
            r.body,
            r#"{"data":{"elevation":false,"first_factor":true,"second_factor":false},"status":"KO"}"#
        );
    }
}

#[tokio::test]
async fn registration_needs_elevation_and_then_totp_raises_the_session_to_two_factors() {
    let t = TwoFactor::new();
    let cookie = t.h.login("auth.example.com", "alice", ALICE_PASSWORD).await;
    // No registration yet.
    let r = t.call("GET", "/api/secondfactor/totp", &cookie, None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        r.body,
        r#"{"message":"Could not find TOTP Configuration for user.","status":"KO"}"#
    );
    // Registration without elevation.
    let r = t
        .call("GET", "/api/secondfactor/totp/register", &cookie, None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        r.body,
        r#"{"data":{"elevation":true,"first_factor":false,"second_factor":false},"status":"KO"}"#
    );
    t.elevate(&cookie).await;
    let r = t
        .call("GET", "/api/user/session/elevation", &cookie, None)
        .await;
    let d = data(&r);
    assert_eq!(d["elevated"], true);
    assert_eq!(d["expires"], 600);
    let r = t
        .call("GET", "/api/secondfactor/totp/register", &cookie, None)
        .await;
    assert_eq!(
        r.body,
        r#"{"data":{"algorithm":"SHA1","algorithms":["SHA1"],"length":6,"lengths":[6],"period":30,"periods":[30]},"status":"OK"}"#
    );
    // Values outside the allowed lists, and bodies that do not parse.
    for bad in [
        json!({"algorithm": "SHA256", "length": 6, "period": 30}),
        json!({"algorithm": "SHA1", "length": 8, "period": 30}),
        json!({"algorithm": "SHA1", "length": 6, "period": 60}),
        json!(["SHA1", 6, 30]),
        json!({"algorithm": "SHA1"}),
    ] {
        let r = t
            .call(
                "PUT",
                "/api/secondfactor/totp/register",
                &cookie,
                Some(bad.clone()),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(
            r.body,
            r#"{"message":"Unable to set up one-time password.","status":"KO"}"#
        );
    }
    // Finishing before beginning.
    let r = t
        .call(
            "POST",
            "/api/secondfactor/totp/register",
            &cookie,
            Some(json!({"token": "123456"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = t
        .call(
            "PUT",
            "/api/secondfactor/totp/register",
            &cookie,
            Some(json!({"algorithm": "sha1", "length": 6, "period": 30})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let d = data(&r);
    let base32 = d["base32_secret"].as_str().unwrap();
    assert_eq!(base32.len(), 52);
    assert_eq!(
        d["otpauth_url"],
        format!(
            "otpauth://totp/Authelia:alice?algorithm=SHA1&digits=6&issuer=Authelia&period=30&secret={base32}"
        )
    );
    let secret = TotpSecret::from_base32(base32).unwrap();
    let p = TotpParameters::default();
    // A wrong first code keeps the registration pending.
    let wrong = if code_at(&secret, p, t.now()) == "000000" {
        "111111"
    } else {
        "000000"
    };
    let r = t
        .call(
            "POST",
            "/api/secondfactor/totp/register",
            &cookie,
            Some(json!({"token": wrong})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        r.body,
        r#"{"message":"Unable to set up one-time password.","status":"KO"}"#
    );
    let code = code_at(&secret, p, t.now());
    let r = t
        .call(
            "POST",
            "/api/secondfactor/totp/register",
            &cookie,
            Some(json!({"token": code})),
        )
        .await;
    assert_eq!(r.body, r#"{"status":"OK"}"#);
    let mail = std::fs::read_to_string(t.dir.path().join("notification.txt")).unwrap();
    assert!(
        mail.contains("Subject: Second Factor Method Added\n"),
        "{mail}"
    );
    assert!(!mail.contains(base32), "the secret is never mailed");
    // The registration does not raise the level.
    let r = t.call("GET", "/api/state", &cookie, None).await;
    assert_eq!(data(&r)["authentication_level"], 1);
    let r = t.call("GET", "/api/secondfactor/totp", &cookie, None).await;
    let d = data(&r);
    assert_eq!(
        (
            d["issuer"].as_str(),
            d["digits"].as_u64(),
            d["period"].as_u64()
        ),
        (Some("Authelia"), Some(6), Some(30))
    );
    assert!(d.get("secret").is_none() && !r.body.contains(base32));
    // The code that finished the registration cannot sign in (it is in the history).
    let r = t
        .call(
            "POST",
            "/api/secondfactor/totp",
            &cookie,
            Some(json!({"token": code})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        r.body,
        r#"{"message":"Authentication failed, please retry later.","status":"KO"}"#
    );
    // The next window's code signs in: new session id, level 2, the two_factor site opens.
    t.h.advance(30);
    let next = code_at(&secret, p, t.now());
    let before =
        t.h.send(
            auth_request("https://secure.example.com/", "GET")
                .header("cookie", &cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(
        before.status,
        StatusCode::UNAUTHORIZED,
        "one factor is not enough for secure.example.com"
    );
    let r = t
        .call(
            "POST",
            "/api/secondfactor/totp",
            &cookie,
            Some(json!({"token": next, "targetURL": "https://secure.example.com/x"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.body,
        r#"{"data":{"redirect":"https://secure.example.com/x"},"status":"OK"}"#
    );
    let upgraded = r.cookie_pair().unwrap();
    assert_ne!(upgraded, cookie, "the session id changes");
    let r = t.call("GET", "/api/state", &upgraded, None).await;
    assert_eq!(data(&r)["authentication_level"], 2);
    let after =
        t.h.send(
            auth_request("https://secure.example.com/", "GET")
                .header("cookie", &upgraded)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(after.status, StatusCode::OK);
    let old = t.call("GET", "/api/state", &cookie, None).await;
    assert_eq!(
        data(&old)["authentication_level"],
        0,
        "the one-factor session is gone"
    );
    // The same code again is a replay.
    let r = t
        .call(
            "POST",
            "/api/secondfactor/totp",
            &upgraded,
            Some(json!({"token": next})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = t
        .call("GET", "/api/secondfactor/totp", &upgraded, None)
        .await;
    assert!(data(&r)["last_used_at"].is_string());
}

#[tokio::test]
async fn sign_in_failures_have_the_specs_statuses_and_count_toward_regulation() {
    let t = TwoFactor::new();
    let cookie = t.h.login("auth.example.com", "alice", ALICE_PASSWORD).await;
    // No registration: 403.
    let r = t
        .call(
            "POST",
            "/api/secondfactor/totp",
            &cookie,
            Some(json!({"token": "123456"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let secret = t.register(&cookie).await;
    let p = TotpParameters::default();
    t.h.advance(60);
    // Missing token or unparsable body: 403; a length other than 6 or 8: 400; eight digits
    // against a six-digit registration: 403 without counting.
    for (body, status) in [
        (json!({}), StatusCode::FORBIDDEN),
        (json!(["123456"]), StatusCode::FORBIDDEN),
        (json!({"token": "12345"}), StatusCode::BAD_REQUEST),
        (json!({"token": "1234567"}), StatusCode::BAD_REQUEST),
        (json!({"token": "12345678"}), StatusCode::FORBIDDEN),
    ] {
        let r = t
            .call(
                "POST",
                "/api/secondfactor/totp",
                &cookie,
                Some(body.clone()),
            )
            .await;
        assert_eq!(r.status, status, "{body}");
        assert_eq!(
            r.body,
            r#"{"message":"Authentication failed, please retry later.","status":"KO"}"#
        );
    }
    let good = code_at(&secret, p, t.now());
    let wrong = |i: u32| {
        let c = format!("{:06}", (good.parse::<u32>().unwrap() + 1 + i) % 1_000_000);
        assert_ne!(c, good);
        c
    };
    // Three wrong codes (regulation.max_retries: 3) ban the user: even the right code fails.
    for i in 0..3 {
        let r = t
            .call(
                "POST",
                "/api/secondfactor/totp",
                &cookie,
                Some(json!({"token": wrong(i)})),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
    }
    let r = t
        .call(
            "POST",
            "/api/secondfactor/totp",
            &cookie,
            Some(json!({"token": good})),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "banned by regulation: {}",
        r.body
    );
    // After the ban the code works.
    t.h.advance(301);
    let good = code_at(&secret, p, t.now());
    let cookie = t.h.login("auth.example.com", "alice", ALICE_PASSWORD).await;
    let r = t
        .call(
            "POST",
            "/api/secondfactor/totp",
            &cookie,
            Some(json!({"token": good})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.body,
        r#"{"data":{"redirect":"https://home.example.com"},"status":"OK"}"#
    );
}

#[tokio::test]
async fn the_sign_in_rate_limit_answers_429_with_an_http_date() {
    let t = TwoFactor::with(
        "      second_factor_totp:\n        buckets: [{ period: 1m, requests: 2 }]\n",
    );
    let cookie = t.h.login("auth.example.com", "bob", BOB_PASSWORD).await;
    for _ in 0..2 {
        let r = t
            .call(
                "POST",
                "/api/secondfactor/totp",
                &cookie,
                Some(json!({"token": "123456"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
    }
    let r = t
        .call(
            "POST",
            "/api/secondfactor/totp",
            &cookie,
            Some(json!({"token": "123456"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.body, r#"{"message":"Too Many Requests","status":"KO"}"#);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert!(r.header("retry-after").unwrap().ends_with(" GMT"));
}

#[tokio::test]
async fn elevation_codes_work_once_from_the_same_address_and_can_be_revoked() {
    let t = TwoFactor::new();
    let cookie = t.h.login("auth.example.com", "alice", ALICE_PASSWORD).await;
    let r = t
        .call("GET", "/api/user/session/elevation", &cookie, None)
        .await;
    assert_eq!(
        r.body,
        r#"{"data":{"can_skip_second_factor":false,"elevated":false,"expires":0,"factor_knowledge":true,"require_second_factor":false,"skip_second_factor":false},"status":"OK"}"#
    );
    let r = t
        .call("POST", "/api/user/session/elevation", &cookie, None)
        .await;
    let delete_id = data(&r)["delete_id"].as_str().unwrap().to_owned();
    assert_eq!(delete_id.len(), 22);
    let mail = std::fs::read_to_string(t.dir.path().join("notification.txt")).unwrap();
    assert!(
        mail.contains(
            "Recipient: \"Alice Liddell\" <alice@example.com>\nSubject: Confirm your identity\n"
        ),
        "{mail}"
    );
    assert!(mail.contains(&format!(
        "https://auth.example.com/revoke/one-time-code?id={delete_id}"
    )));
    let code = t.mailed_code();
    assert_eq!(code.len(), 8);
    // From another address: refused (the code is bound to the requesting IP).
    let other =
        t.h.send_from(
            "127.0.0.2:40000",
            Request::put("/api/user/session/elevation")
                .header("host", "auth.example.com")
                .header("cookie", &cookie)
                .header("content-type", "application/json")
                .body(Body::from(json!({"otc": code}).to_string()))
                .unwrap(),
        )
        .await;
    assert_eq!(other.status, StatusCode::FORBIDDEN);
    assert_eq!(
        other.body,
        r#"{"message":"Operation failed.","status":"KO"}"#
    );
    // Too long: 400; wrong: 403.
    let r = t
        .call(
            "PUT",
            "/api/user/session/elevation",
            &cookie,
            Some(json!({"otc": "A".repeat(21)})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = t
        .call(
            "PUT",
            "/api/user/session/elevation",
            &cookie,
            Some(json!({"otc": "ZZZZZZZZ"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Right, with spaces: accepted once.
    let r = t
        .call(
            "PUT",
            "/api/user/session/elevation",
            &cookie,
            Some(json!({"otc": format!(" {code} ")})),
        )
        .await;
    assert_eq!(r.body, r#"{"status":"OK"}"#);
    let r = t
        .call(
            "PUT",
            "/api/user/session/elevation",
            &cookie,
            Some(json!({"otc": code})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "used");
    // The elevation is bound to the address too, and expires.
    let elsewhere =
        t.h.send_from(
            "127.0.0.2:40000",
            Request::get("/api/secondfactor/totp/register")
                .header("host", "auth.example.com")
                .header("cookie", &cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(elsewhere.status, StatusCode::FORBIDDEN);
    // The other address's attempt deleted the elevation (Authelia's rule).
    let r = t
        .call("GET", "/api/user/session/elevation", &cookie, None)
        .await;
    assert_eq!(data(&r)["elevated"], false);
    // A new code, revoked through the mail's link (no login needed), cannot be used.
    t.call("POST", "/api/user/session/elevation", &cookie, None)
        .await;
    let code = t.mailed_code();
    let id = {
        let mail = std::fs::read_to_string(t.dir.path().join("notification.txt")).unwrap();
        mail.split("id=")
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .to_owned()
    };
    let page = t
        .call("GET", &format!("/revoke/one-time-code?id={id}"), "", None)
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("<form method=\"post\""),
        "revoking needs a click: {}",
        page.body
    );
    let r = t
        .call(
            "DELETE",
            &format!("/api/user/session/elevation/{id}"),
            "",
            None,
        )
        .await;
    assert_eq!(r.body, r#"{"status":"OK"}"#);
    let r = t
        .call(
            "DELETE",
            &format!("/api/user/session/elevation/{id}"),
            "",
            None,
        )
        .await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (
            StatusCode::OK,
            r#"{"message":"Operation failed.","status":"KO"}"#
        )
    );
    let r = t
        .call("DELETE", "/api/user/session/elevation/not-an-id", "", None)
        .await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (
            StatusCode::OK,
            r#"{"message":"Operation failed.","status":"KO"}"#
        )
    );
    let r = t
        .call(
            "PUT",
            "/api/user/session/elevation",
            &cookie,
            Some(json!({"otc": code})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "revoked");
    // An expired code.
    t.call("POST", "/api/user/session/elevation", &cookie, None)
        .await;
    let code = t.mailed_code();
    t.h.advance(301);
    let cookie = t.h.login("auth.example.com", "alice", ALICE_PASSWORD).await;
    let r = t
        .call(
            "PUT",
            "/api/user/session/elevation",
            &cookie,
            Some(json!({"otc": code})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "expired");
}

#[tokio::test]
async fn removing_totp_needs_elevation_and_mails_the_event() {
    let t = TwoFactor::new();
    let cookie = t.h.login("auth.example.com", "alice", ALICE_PASSWORD).await;
    let _ = t.register(&cookie).await;
    let r = t
        .call("DELETE", "/api/secondfactor/totp", &cookie, None)
        .await;
    assert_eq!(
        r.body, r#"{"status":"OK"}"#,
        "still elevated from the registration"
    );
    let mail = std::fs::read_to_string(t.dir.path().join("notification.txt")).unwrap();
    assert!(mail.contains("Subject: Second Factor Method Removed\n"));
    let r = t
        .call("DELETE", "/api/secondfactor/totp", &cookie, None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        r.body,
        r#"{"message":"Unable to delete one-time password.","status":"KO"}"#
    );
    let r = t
        .call("DELETE", "/api/secondfactor/totp/register", &cookie, None)
        .await;
    assert_eq!(r.body, r#"{"status":"OK"}"#, "nothing pending is fine");
}

#[tokio::test]
async fn user_info_and_configuration_answer_as_authelia() {
    let t = TwoFactor::new();
    let cookie = t.h.login("auth.example.com", "alice", ALICE_PASSWORD).await;
    let r = t.call("GET", "/api/user/info", &cookie, None).await;
    assert_eq!(
        r.body,
        r#"{"data":{"display_name":"Alice Liddell","emails":["a***e@example.com"],"has_duo":false,"has_totp":false,"has_webauthn":false,"method":""},"status":"OK"}"#
    );
    let r = t.call("POST", "/api/user/info", &cookie, None).await;
    assert_eq!(
        r.body,
        r#"{"data":{"display_name":"Alice Liddell","emails":null,"has_duo":false,"has_totp":false,"has_webauthn":false,"method":"totp"},"status":"OK"}"#
    );
    let r = t.call("GET", "/api/user/info", &cookie, None).await;
    assert_eq!(data(&r)["method"], "totp", "the chosen default is saved");
    for bad in [
        json!({"method": "mobile_push"}),
        json!({"method": ""}),
        json!([]),
    ] {
        let r = t
            .call(
                "POST",
                "/api/user/info/2fa_method",
                &cookie,
                Some(bad.clone()),
            )
            .await;
        assert_eq!(
            (r.status, r.body.as_str()),
            (
                StatusCode::OK,
                r#"{"message":"Operation failed.","status":"KO"}"#
            ),
            "{bad}"
        );
    }
    let r = t
        .call(
            "POST",
            "/api/user/info/2fa_method",
            &cookie,
            Some(json!({"method": "totp"})),
        )
        .await;
    assert_eq!(r.body, r#"{"status":"OK"}"#);
    let r = t.call("GET", "/api/configuration", &cookie, None).await;
    assert_eq!(
        r.body,
        r#"{"data":{"available_methods":["totp","webauthn"],"password_change_disabled":false,"password_reset_disabled":true},"status":"OK"}"#
    );
}

#[tokio::test]
async fn without_an_encryption_key_there_are_no_second_factors_and_one_factor_still_works() {
    // The plain test configuration has no storage.encryption_key.
    let h = Harness::new();
    let cookie = h.login("auth.example.com", "alice", ALICE_PASSWORD).await;
    let r = h
        .send(
            Request::post("/api/secondfactor/totp")
                .header("host", "auth.example.com")
                .header("cookie", &cookie)
                .header("content-type", "application/json")
                .body(Body::from(r#"{"token":"123456"}"#))
                .unwrap(),
        )
        .await;
    assert!(
        r.status == StatusCode::NOT_FOUND || r.status == StatusCode::METHOD_NOT_ALLOWED,
        "{}",
        r.status
    );
    let r = h
        .send(
            Request::get("/api/configuration")
                .header("host", "auth.example.com")
                .header("cookie", &cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(
        r.body,
        r#"{"data":{"available_methods":[],"password_change_disabled":true,"password_reset_disabled":true},"status":"OK"}"#
    );
    let r = h
        .send(
            auth_request("https://app.example.com/", "GET")
                .header("cookie", &cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn a_wrong_encryption_key_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let first = yaml(dir.path(), "");
    let _ = Harness::with(&first, Arc::new(MemoryStore::new()));
    let other = first.replace(KEY, "another_encryption_key_0123");
    let config = common::config(&other);
    let users = portcullis_auth::users::UserDatabase::parse(
        Path::new("users.yml"),
        &users_yaml(),
        true,
        true,
    )
    .unwrap();
    let regulator = portcullis_auth::regulation::Regulator::in_memory(config.regulation);
    let err = portcullis_verify_server::AppState::new(
        config,
        users,
        Arc::new(MemoryStore::new()),
        regulator,
        Arc::new(|| 1_700_000_000),
        tuning(),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("storage.encryption_key does not decrypt this database"),
        "{err}"
    );
}

#[tokio::test]
async fn the_html_page_asks_for_the_code_and_goes_on_to_the_target_without_javascript() {
    let t = TwoFactor::new();
    // Without a device the page says so.
    let cookie = t.h.login("auth.example.com", "alice", ALICE_PASSWORD).await;
    let rd = "https%3A%2F%2Fsecure.example.com%2Fdeep";
    let page = t.call("GET", &format!("/?rd={rd}"), &cookie, None).await;
    assert!(
        page.body.contains("id=\"no-second-factor\""),
        "{}",
        page.body
    );
    let secret = t.register(&cookie).await;
    t.h.advance(30);
    // The form login with a two_factor target comes back to the page with the target kept.
    let page = t.call("GET", &format!("/?rd={rd}"), "", None).await;
    let (csrf_cookie, token) = csrf_from(&page);
    let body = format!("username=alice&password={ALICE_PASSWORD}&rd={rd}&rm=GET&csrf={token}");
    let r =
        t.h.send(
            Request::post("/login")
                .header("host", "auth.example.com")
                .header("cookie", &csrf_cookie)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Body::from(body))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(
        r.header("location"),
        Some(format!("/?rd={rd}&rm=GET").as_str())
    );
    let session = r.cookie_pair().unwrap();
    let both = format!("{session}; {csrf_cookie}");
    let page = t.call("GET", &format!("/?rd={rd}"), &both, None).await;
    assert!(page.body.contains("id=\"totp-code\""), "{}", page.body);
    assert!(page.body.contains("<label for=\"totp-code\">"), "labelled");
    let token = csrf_token(&page);
    let send_code = |code: String, token: String| {
        Request::post("/login/totp")
            .header("host", "auth.example.com")
            .header("cookie", &both)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(format!(
                "code={code}&rd={rd}&rm=GET&csrf={token}"
            )))
            .unwrap()
    };
    let p = TotpParameters::default();
    let good = code_at(&secret, p, t.now());
    let wrong = format!("{:06}", (good.parse::<u32>().unwrap() + 1) % 1_000_000);
    let r = t.h.send(send_code(wrong, token.clone())).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body.contains("role=\"alert\" id=\"error\""), "{}", r.body);
    // A forged form (no CSRF token) is refused before any code is checked.
    let r = t.h.send(send_code(good.clone(), "forged".into())).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(!r.headers.contains_key("location"));
    let r = t.h.send(send_code(good, token)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(
        r.header("location"),
        Some("https://secure.example.com/deep")
    );
    let upgraded = r.cookie_pair().unwrap();
    let check =
        t.h.send(
            auth_request("https://secure.example.com/deep", "GET")
                .header("cookie", &upgraded)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(check.status, StatusCode::OK);
}

#[tokio::test]
async fn the_settings_page_registers_and_removes_the_app_without_javascript() {
    let t = TwoFactor::new();
    let session = t.h.login("auth.example.com", "alice", ALICE_PASSWORD).await;
    // Anonymous: back to the login page.
    let r = t.call("GET", "/settings", "", None).await;
    assert_eq!(
        (r.status, r.header("location")),
        (StatusCode::SEE_OTHER, Some("/"))
    );
    let page = t.call("GET", "/settings", &session, None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("id=\"totp-none\""), "{}", page.body);
    assert!(page.body.contains("<label for=\"one-time-code\">"));
    let (csrf_cookie, token) = csrf_from(&page);
    let cookies = format!("{session}; {csrf_cookie}");
    let post = |path: &str, body: String| {
        Request::post(path.to_owned())
            .header("host", "auth.example.com")
            .header("cookie", &cookies)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap()
    };
    // Not elevated yet: registering is refused with a message.
    let r =
        t.h.send(post("/settings/totp/begin", format!("csrf={token}")))
            .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body.contains("Confirm it is you first"), "{}", r.body);
    // A forged form is refused.
    let r =
        t.h.send(post("/settings/elevate", "csrf=forged".into()))
            .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Elevate with the mailed code.
    let r =
        t.h.send(post("/settings/elevate", format!("csrf={token}")))
            .await;
    assert_eq!(
        (r.status, r.header("location")),
        (StatusCode::SEE_OTHER, Some("/settings?sent=1"))
    );
    let r =
        t.h.send(post(
            "/settings/elevate/confirm",
            format!("csrf={token}&code=WRONGCODE"),
        ))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body.contains("role=\"alert\""));
    let code = t.mailed_code();
    let r =
        t.h.send(post(
            "/settings/elevate/confirm",
            format!("csrf={token}&code={code}"),
        ))
        .await;
    assert_eq!(
        (r.status, r.header("location")),
        (StatusCode::SEE_OTHER, Some("/settings"))
    );
    // Begin: the page shows the QR code and the key.
    let r =
        t.h.send(post("/settings/totp/begin", format!("csrf={token}")))
            .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let page = t.call("GET", "/settings", &cookies, None).await;
    assert!(page.body.contains("id=\"totp-qr\""), "{}", page.body);
    assert!(page.body.contains("<svg"), "the QR code is inline SVG");
    let marker = "id=\"totp-secret\">";
    let start = page.body.find(marker).unwrap() + marker.len();
    let secret_text = page.body[start..].split('<').next().unwrap().to_owned();
    assert_eq!(secret_text.len(), 52);
    assert!(
        page.body.contains(&format!("secret={secret_text}")),
        "the otpauth URI is shown too"
    );
    let secret = TotpSecret::from_base32(&secret_text).unwrap();
    let r =
        t.h.send(post(
            "/settings/totp/finish",
            format!("csrf={token}&code=000000x"),
        ))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let good = code_at(&secret, TotpParameters::default(), t.now());
    let r =
        t.h.send(post(
            "/settings/totp/finish",
            format!("csrf={token}&code={good}"),
        ))
        .await;
    assert_eq!(
        (r.status, r.header("location")),
        (StatusCode::SEE_OTHER, Some("/settings?added=1"))
    );
    let page = t.call("GET", "/settings?added=1", &cookies, None).await;
    assert!(
        page.body.contains("id=\"totp-registered\""),
        "{}",
        page.body
    );
    assert!(page.body.contains("The app is registered."));
    let r = t
        .call("GET", "/api/secondfactor/totp", &session, None)
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "registered through the page: {}",
        r.body
    );
    // Remove it.
    let r =
        t.h.send(post("/settings/totp/remove", format!("csrf={token}")))
            .await;
    assert_eq!(
        (r.status, r.header("location")),
        (StatusCode::SEE_OTHER, Some("/settings?removed=1"))
    );
    let r = t
        .call("GET", "/api/secondfactor/totp", &session, None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_password_change_needs_elevation_and_the_old_password_and_rewrites_only_that_user() {
    let t = TwoFactor::new();
    let cookie = t.h.login("auth.example.com", "alice", ALICE_PASSWORD).await;
    let change = |old: &str, new: &str| json!({"username": "alice", "old_password": old, "new_password": new});
    let r = t
        .call(
            "POST",
            "/api/change-password",
            &cookie,
            Some(change(ALICE_PASSWORD, "a new passphrase")),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        r.body,
        r#"{"data":{"elevation":true,"first_factor":false,"second_factor":false},"status":"KO"}"#
    );
    t.elevate(&cookie).await;
    let r = t
        .call(
            "POST",
            "/api/change-password",
            &cookie,
            Some(change("not-her-password", "a new passphrase")),
        )
        .await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (
            StatusCode::UNAUTHORIZED,
            r#"{"message":"Incorrect Password","status":"KO"}"#
        )
    );
    for weak in [ALICE_PASSWORD, ""] {
        let r = t
            .call(
                "POST",
                "/api/change-password",
                &cookie,
                Some(change(ALICE_PASSWORD, weak)),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{weak:?}");
        assert_eq!(
            r.body,
            r#"{"message":"Your supplied password does not meet the password policy requirements.","status":"KO"}"#
        );
    }
    let other = json!({"username": "bob", "old_password": ALICE_PASSWORD, "new_password": "x-new-password"});
    let r = t
        .call("POST", "/api/change-password", &cookie, Some(other))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "only one's own password");
    let r = t
        .call(
            "POST",
            "/api/change-password",
            &cookie,
            Some(json!(["alice"])),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let before = std::fs::read_to_string(t.dir.path().join("users.yml")).unwrap();
    let r = t
        .call(
            "POST",
            "/api/change-password",
            &cookie,
            Some(change(ALICE_PASSWORD, "a new passphrase")),
        )
        .await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (StatusCode::OK, r#"{"status":"OK"}"#)
    );
    let after = std::fs::read_to_string(t.dir.path().join("users.yml")).unwrap();
    let changed: Vec<(&str, &str)> = before
        .lines()
        .zip(after.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(changed.len(), 1, "only alice's password line: {changed:?}");
    assert!(
        changed[0]
            .1
            .trim_start()
            .starts_with("password: \"$argon2id$v=19$m=65536,t=3,p=4$"),
        "{changed:?}"
    );
    assert_eq!(before.lines().count(), after.lines().count());
    let mail = std::fs::read_to_string(t.dir.path().join("notification.txt")).unwrap();
    assert!(
        mail.contains("Subject: Password changed successfully\n"),
        "{mail}"
    );
    // The new password works at once, the old one no longer does; bob's is untouched.
    t.h.login("auth.example.com", "alice", "a new passphrase")
        .await;
    let r = t
        .call(
            "POST",
            "/api/firstfactor",
            "",
            Some(json!({"username": "alice", "password": ALICE_PASSWORD})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    t.h.login("auth.example.com", "bob", BOB_PASSWORD).await;
}

#[tokio::test]
async fn the_standard_password_policy_is_enforced_and_the_change_can_be_disabled() {
    let dir_config = "password_policy:\n  standard:\n    enabled: true\n    min_length: 12\n    require_number: true\n";
    let t = TwoFactor::with_top(dir_config);
    let cookie = t.h.login("auth.example.com", "alice", ALICE_PASSWORD).await;
    t.elevate(&cookie).await;
    for weak in ["short1", "long enough but no digit"] {
        let r = t
            .call(
                "POST",
                "/api/change-password",
                &cookie,
                Some(json!({"old_password": ALICE_PASSWORD, "new_password": weak})),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{weak}");
    }
    let r = t
        .call(
            "POST",
            "/api/change-password",
            &cookie,
            Some(
                json!({"old_password": ALICE_PASSWORD, "new_password": "long enough with 1 digit"}),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let t = TwoFactor::with_top(
        "authentication_backend:\n  file:\n    path: users.yml\n  password_change:\n    disable: true\n",
    );
    let cookie = t.h.login("auth.example.com", "alice", ALICE_PASSWORD).await;
    let r = t.call("GET", "/api/configuration", &cookie, None).await;
    assert_eq!(data(&r)["password_change_disabled"], true);
    let r = t
        .call(
            "POST",
            "/api/change-password",
            &cookie,
            Some(json!({"old_password": ALICE_PASSWORD, "new_password": "whatever 123"})),
        )
        .await;
    assert!(
        r.status == StatusCode::NOT_FOUND || r.status == StatusCode::METHOD_NOT_ALLOWED,
        "{}",
        r.status
    );
}

#[tokio::test]
async fn the_zxcvbn_password_policy_refuses_guessable_passwords_and_is_published() {
    let t = TwoFactor::with_top("password_policy:\n  zxcvbn:\n    enabled: true\n");
    let r = t
        .call("GET", "/api/configuration/password-policy", "", None)
        .await;
    assert_eq!(
        r.body,
        r#"{"data":{"max_length":0,"min_length":0,"min_score":3,"mode":"zxcvbn","require_lowercase":false,"require_number":false,"require_special":false,"require_uppercase":false},"status":"OK"}"#
    );
    let cookie = t.h.login("auth.example.com", "alice", ALICE_PASSWORD).await;
    t.elevate(&cookie).await;
    // zxcvbn scores "password1" and "qwerty123" 0 (common passwords); the policy wants 3.
    for weak in ["password1", "qwerty123", "aaaaaaaaaaaa"] {
        let r = t
            .call(
                "POST",
                "/api/change-password",
                &cookie,
                Some(json!({"old_password": ALICE_PASSWORD, "new_password": weak})),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{weak}: {}", r.body);
    }
    let r = t
        .call(
            "POST",
            "/api/change-password",
            &cookie,
            Some(
                json!({"old_password": ALICE_PASSWORD, "new_password": "Velvet-Harbor-Quietly-91"}),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // The standard policy is published as Authelia does; none at all is "disabled".
    let t = TwoFactor::with_top(
        "password_policy:\n  standard:\n    enabled: true\n    min_length: 10\n    require_number: true\n",
    );
    let r = t
        .call("GET", "/api/configuration/password-policy", "", None)
        .await;
    assert_eq!(data(&r)["mode"], "standard");
    assert_eq!(
        (
            data(&r)["min_length"].as_u64(),
            data(&r)["require_number"].as_bool()
        ),
        (Some(10), Some(true))
    );
    let t = TwoFactor::new();
    let r = t
        .call("GET", "/api/configuration/password-policy", "", None)
        .await;
    assert_eq!(data(&r)["mode"], "disabled");
}

const RESET: &str = "identity_validation:\n  reset_password:\n    jwt_secret: 'a-reset-password-jwt-secret-0123456789'\n";

fn reset_link(t: &TwoFactor) -> String {
    let mail = std::fs::read_to_string(t.dir.path().join("notification.txt")).unwrap();
    assert!(mail.contains("Subject: Reset your password\n"), "{mail}");
    let line = mail
        .lines()
        .find(|l| l.contains("/reset-password/step2?token="))
        .unwrap_or_else(|| panic!("no link in {mail}"));
    line.split("token=").nth(1).unwrap().trim().to_owned()
}

#[tokio::test]
async fn password_reset_by_mailed_link_used_once_then_the_new_password_works() {
    let t = TwoFactor::with_top(RESET);
    let start = |user: &str| json!({"username": user});
    let r = t
        .call(
            "POST",
            "/api/reset-password/identity/start",
            "",
            Some(start("alice")),
        )
        .await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (StatusCode::OK, r#"{"status":"OK"}"#)
    );
    let token = reset_link(&t);
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");
    // An unknown user gets the same answer and no mail.
    let before = std::fs::read_to_string(t.dir.path().join("notification.txt")).unwrap();
    let r = t
        .call(
            "POST",
            "/api/reset-password/identity/start",
            "",
            Some(start("nobody")),
        )
        .await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (StatusCode::OK, r#"{"status":"OK"}"#)
    );
    assert_eq!(
        std::fs::read_to_string(t.dir.path().join("notification.txt")).unwrap(),
        before
    );
    // A forged signature, then the real link (once).
    let (head, rest) = token.rsplit_once('.').unwrap();
    let forged = format!(
        "{head}.{}",
        if rest.starts_with('A') {
            rest.replacen('A', "B", 1)
        } else {
            format!("A{}", &rest[1..])
        }
    );
    let finish = |tok: &str| json!({"token": tok});
    let r = t
        .call(
            "POST",
            "/api/reset-password/identity/finish",
            "",
            Some(finish(&forged)),
        )
        .await;
    assert_eq!(
        r.body,
        r#"{"message":"The identity verification token has an invalid signature","status":"KO"}"#
    );
    let r = t
        .call(
            "POST",
            "/api/reset-password",
            "",
            Some(json!({"password": "brand new pass"})),
        )
        .await;
    assert_eq!(
        r.body, r#"{"message":"Unable to reset your password.","status":"KO"}"#,
        "no step 2 yet"
    );
    let r = t
        .call(
            "POST",
            "/api/reset-password/identity/finish",
            "",
            Some(finish(&token)),
        )
        .await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (StatusCode::OK, r#"{"status":"OK"}"#)
    );
    let reset_cookie = r
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|c| c.starts_with("portcullis_reset="))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let r = t
        .call(
            "POST",
            "/api/reset-password/identity/finish",
            "",
            Some(finish(&token)),
        )
        .await;
    assert_eq!(
        r.body,
        r#"{"message":"The identity verification token has already been used","status":"KO"}"#
    );
    let r = t
        .call(
            "POST",
            "/api/reset-password",
            &reset_cookie,
            Some(json!({"password": ""})),
        )
        .await;
    assert_eq!(
        r.body,
        r#"{"message":"Your supplied password does not meet the password policy requirements.","status":"KO"}"#
    );
    let r = t
        .call(
            "POST",
            "/api/reset-password",
            &reset_cookie,
            Some(json!({"password": "brand new pass"})),
        )
        .await;
    assert_eq!(r.body, r#"{"status":"OK"}"#);
    t.h.login("auth.example.com", "alice", "brand new pass")
        .await;
    let r = t
        .call(
            "POST",
            "/api/reset-password",
            &reset_cookie,
            Some(json!({"password": "again"})),
        )
        .await;
    assert_eq!(
        r.body, r#"{"message":"Unable to reset your password.","status":"KO"}"#,
        "the cookie is spent"
    );
    let cookie =
        t.h.login("auth.example.com", "alice", "brand new pass")
            .await;
    let r = t.call("GET", "/api/configuration", &cookie, None).await;
    assert_eq!(data(&r)["password_reset_disabled"], false);
}

#[tokio::test]
async fn reset_links_expire_and_can_be_revoked_and_the_pages_work_without_javascript() {
    let t = TwoFactor::with_top(RESET);
    t.call(
        "POST",
        "/api/reset-password/identity/start",
        "",
        Some(json!({"username": "bob"})),
    )
    .await;
    let token = reset_link(&t);
    t.h.advance(301);
    let r = t
        .call(
            "POST",
            "/api/reset-password/identity/finish",
            "",
            Some(json!({"token": token})),
        )
        .await;
    assert_eq!(
        r.body,
        r#"{"message":"The identity verification token has expired","status":"KO"}"#
    );
    // Revoked: DELETE, then the link no longer works.
    t.call(
        "POST",
        "/api/reset-password/identity/start",
        "",
        Some(json!({"username": "bob"})),
    )
    .await;
    let token = reset_link(&t);
    let r = t
        .call(
            "DELETE",
            "/api/reset-password",
            "",
            Some(json!({"token": token})),
        )
        .await;
    assert_eq!(r.body, r#"{"status":"OK"}"#);
    let r = t
        .call(
            "POST",
            "/api/reset-password/identity/finish",
            "",
            Some(json!({"token": token})),
        )
        .await;
    assert_eq!(r.body, r#"{"message":"Operation failed.","status":"KO"}"#);
    // The pages: ask, follow the link, set the password.
    let r = t.call("GET", "/reset-password", "", None).await;
    assert!(r.body.contains("<label for=\"username\">"), "{}", r.body);
    let form = |path: &str, body: String| {
        Request::post(path.to_owned())
            .header("host", "auth.example.com")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap()
    };
    let r =
        t.h.send(form("/reset-password", "username=bob".into()))
            .await;
    assert!(r.body.contains("id=\"reset-sent\""), "{}", r.body);
    let token = reset_link(&t);
    let r = t
        .call(
            "GET",
            &format!("/reset-password/step2?token={token}"),
            "",
            None,
        )
        .await;
    assert!(r.body.contains("id=\"new-password\""), "{}", r.body);
    let r = t
        .call("GET", "/reset-password/step2?token=%3Cscript%3E", "", None)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(!r.body.contains("<script>"));
    let r =
        t.h.send(form(
            "/reset-password/step2",
            format!("token={token}&password=bobs+new+password"),
        ))
        .await;
    assert!(r.body.contains("id=\"reset-done\""), "{}", r.body);
    let r =
        t.h.send(form(
            "/reset-password/step2",
            format!("token={token}&password=another+one"),
        ))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "used once");
    t.h.login("auth.example.com", "bob", "bobs new password")
        .await;
}
