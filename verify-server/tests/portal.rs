//! Router tests for the portal API and the HTML login page.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::body::Body;
use common::*;
use http::{Request, StatusCode};

fn first_factor(body: &str) -> Request<Body> {
    Request::post("/api/firstfactor")
        .header("host", "auth.example.com")
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap()
}

const KO: &str = r#"{"message":"Authentication failed. Check your credentials.","status":"KO"}"#;

#[tokio::test]
async fn first_factor_failures_are_all_the_same_401() {
    let h = Harness::new();
    let bodies = [
        r#"{"username":"alice","password":"wrong"}"#,
        r#"{"username":"nobody","password":"password"}"#,
        r#"{"username":"mallory","password":"bob-secret"}"#,
        r#"{"username":"alice"}"#,
        r#"not json"#,
        r#"{"username":"","password":""}"#,
    ];
    for body in bodies {
        let r = h.send(first_factor(body)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(r.body, KO, "{body}");
        assert_eq!(
            r.header("content-type"),
            Some("application/json; charset=utf-8")
        );
        assert!(r.header("set-cookie").is_none());
    }
    // A form post (no JSON content type) is refused: CSRF defence.
    let r = h
        .send(
            Request::post("/api/firstfactor")
                .header("host", "auth.example.com")
                .header("content-type", "text/plain")
                .body(Body::from(r#"{"username":"alice","password":"password"}"#))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn first_factor_redirects_only_to_safe_targets() {
    let h = Harness::new();
    let cases = [
        // safe target: redirect there
        (
            r#"{"username":"alice","password":"password","targetURL":"https://app.example.com/x"}"#,
            Some("https://app.example.com/x"),
        ),
        // unsafe target: the default redirection URL (no two_factor rule would need... there is one, so plain OK)
        (
            r#"{"username":"alice","password":"password","targetURL":"https://evil.net/"}"#,
            None,
        ),
        (
            r#"{"username":"alice","password":"password","targetURL":"http://app.example.com/"}"#,
            None,
        ),
        // a target that needs two factors: no redirect yet
        (
            r#"{"username":"alice","password":"password","targetURL":"https://secure.example.com/"}"#,
            None,
        ),
        (r#"{"username":"alice","password":"password"}"#, None),
    ];
    for (body, expected) in cases {
        let r = h.send(first_factor(body)).await;
        assert_eq!(r.status, StatusCode::OK, "{body}");
        let json: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(json["status"], "OK");
        assert_eq!(json["data"]["redirect"].as_str(), expected, "{body}");
        let cookie = r.header("set-cookie").unwrap();
        for attribute in [
            "Domain=example.com",
            "Path=/",
            "HttpOnly",
            "Secure",
            "SameSite=Lax",
        ] {
            assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
        }
    }
}

#[tokio::test]
async fn default_redirection_applies_when_no_rule_needs_two_factors() {
    let yaml = CONFIG.replace("      policy: two_factor", "      policy: one_factor");
    let h = Harness::with(
        &yaml,
        std::sync::Arc::new(portcullis_session::MemoryStore::new()),
    );
    let r = h
        .send(first_factor(
            r#"{"username":"alice","password":"password","targetURL":"https://evil.net/"}"#,
        ))
        .await;
    assert_eq!(
        r.body,
        r#"{"data":{"redirect":"https://home.example.com"},"status":"OK"}"#
    );
    let r = h
        .send(first_factor(
            r#"{"username":"alice","password":"password"}"#,
        ))
        .await;
    assert_eq!(
        r.body,
        r#"{"data":{"redirect":"https://home.example.com"},"status":"OK"}"#
    );
}

#[tokio::test]
async fn login_regenerates_the_session_id() {
    let h = Harness::new();
    let first = h.login("auth.example.com", "alice", ALICE_PASSWORD).await;
    let r = h
        .send(
            Request::post("/api/firstfactor")
                .header("host", "auth.example.com")
                .header("cookie", &first)
                .header("content-type", "application/json")
                .body(Body::from(r#"{"username":"bob","password":"bob-secret"}"#))
                .unwrap(),
        )
        .await;
    let second = r.cookie_pair().unwrap();
    assert_ne!(first, second);
    let old = h
        .send(
            auth_request("https://app.example.com/", "GET")
                .header("cookie", &first)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(
        old.status,
        StatusCode::UNAUTHORIZED,
        "the previous session is destroyed"
    );
}

#[tokio::test]
async fn state_health_and_safe_redirection() {
    let h = Harness::new();
    let state = |cookie: Option<&str>| {
        let mut b = Request::get("/api/state").header("host", "auth.example.com");
        if let Some(c) = cookie {
            b = b.header("cookie", c);
        }
        b.body(Body::empty()).unwrap()
    };
    let r = h.send(state(None)).await;
    assert_eq!(
        r.body,
        r#"{"data":{"authentication_level":0,"default_redirection_url":"https://home.example.com","factor_knowledge":false,"username":""},"status":"OK"}"#
    );
    let cookie = h.login("auth.example.com", "alice", ALICE_PASSWORD).await;
    let r = h.send(state(Some(&cookie))).await;
    let json: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(json["data"]["username"], "alice");
    assert_eq!(json["data"]["authentication_level"], 1);

    let r = h
        .send(Request::get("/api/health").body(Body::empty()).unwrap())
        .await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (StatusCode::OK, r#"{"status":"OK"}"#)
    );

    let check = |cookie: Option<&str>, uri: &str| {
        let mut b =
            Request::post("/api/checks/safe-redirection").header("host", "auth.example.com");
        if let Some(c) = cookie {
            b = b.header("cookie", c);
        }
        b.body(Body::from(format!(r#"{{"uri":"{uri}"}}"#))).unwrap()
    };
    assert_eq!(
        h.send(check(None, "https://app.example.com")).await.status,
        StatusCode::UNAUTHORIZED
    );
    let r = h
        .send(check(Some(&cookie), "https://app.example.com/"))
        .await;
    assert_eq!(r.body, r#"{"data":{"ok":true},"status":"OK"}"#);
    let r = h
        .send(check(Some(&cookie), "https://example.com.evil.net/"))
        .await;
    assert_eq!(r.body, r#"{"data":{"ok":false},"status":"OK"}"#);
}

#[tokio::test]
async fn logout_without_a_session_domain_is_401() {
    let h = Harness::new();
    let r = h
        .send(
            Request::post("/api/logout")
                .header("host", "portal.example.net")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.body.contains(r#""status":"KO""#));
}

fn form(path: &str, cookie: &str, body: String) -> Request<Body> {
    Request::post(path)
        .header("host", "auth.example.com")
        .header("cookie", cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .unwrap()
}

#[tokio::test]
async fn html_login_page_flow() {
    let h = Harness::new();
    let rd = "https%3A%2F%2Fapp.example.com%2Fhome";
    let page = h
        .send(
            Request::get(format!("/?rd={rd}&rm=GET"))
                .header("host", "auth.example.com")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("<label for=\"username\">"),
        "labelled inputs"
    );
    assert!(page.body.contains("<label for=\"password\">"));
    assert!(
        page.body
            .replace("&#x2f;", "/")
            .contains("value=\"https://app.example.com/home\""),
        "rd kept in the form"
    );
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    let (csrf_cookie, token) = csrf_from(&page);

    // Without the token: refused.
    let r = h
        .send(form(
            "/login",
            &csrf_cookie,
            "username=alice&password=password".into(),
        ))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Wrong password: the page again with an error that does not say whether the user exists.
    let r = h
        .send(form(
            "/login",
            &csrf_cookie,
            format!("username=nobody&password=x&csrf={token}&rd={rd}"),
        ))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.body.contains("Incorrect username or password."));
    let r2 = h
        .send(form(
            "/login",
            &csrf_cookie,
            format!("username=alice&password=x&csrf={token}&rd={rd}"),
        ))
        .await;
    assert_eq!(
        r2.body.replace("value=\"alice\"", "value=\"nobody\""),
        r.body,
        "same page for unknown user and wrong password"
    );
    // Right password: 303 to the target with the session cookie.
    let r = h
        .send(form(
            "/login",
            &csrf_cookie,
            format!("username=alice&password=password&csrf={token}&rd={rd}&rm=GET"),
        ))
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.header("location"), Some("https://app.example.com/home"));
    let session = r.cookie_pair().unwrap();
    // Logged in: the page says who you are and offers logout.
    let both = format!("{session}; {csrf_cookie}");
    let page = h
        .send(
            Request::get("/")
                .header("host", "auth.example.com")
                .header("cookie", &both)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert!(page.body.contains("Alice Liddell"));
    assert!(page.body.contains("action=\"/logout\""));
    let r = h
        .send(form("/logout", &both, format!("csrf={token}")))
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let r = h
        .send(
            auth_request("https://app.example.com/", "GET")
                .header("cookie", &session)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn unsafe_rd_is_never_echoed() {
    let h = Harness::new();
    let page = h
        .send(
            Request::get("/?rd=https%3A%2F%2Fevil.net%2F%22%3E%3Cscript%3E")
                .header("host", "auth.example.com")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert!(!page.body.contains("evil.net"));
    assert!(!page.body.contains("<script>"));
}

/// A login form served by one replica posts to another, and survives a restart: the CSRF key is
/// derived from the session secret, not drawn at random per process.
#[tokio::test]
async fn a_form_from_one_replica_posts_to_another() {
    let (first, second) = (Harness::new(), Harness::new());
    let page = first
        .send(
            Request::get("/")
                .header("host", "auth.example.com")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    let (csrf_cookie, token) = csrf_from(&page);
    let r = second
        .send(form(
            "/login",
            &csrf_cookie,
            format!("username=alice&password={ALICE_PASSWORD}&csrf={token}"),
        ))
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    // Another secret, another key: the same form is refused.
    let other = Harness::with(
        &CONFIG.replace(
            "insecure-test-secret-0123456789",
            "another-test-secret-0123456789",
        ),
        std::sync::Arc::new(portcullis_session::MemoryStore::new()),
    );
    let r = other
        .send(form(
            "/login",
            &csrf_cookie,
            format!("username=alice&password={ALICE_PASSWORD}&csrf={token}"),
        ))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}
