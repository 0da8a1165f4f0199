//! Router tests for the forward-auth endpoints, one row of docs/reference/forward-auth.md per test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::body::Body;
use common::*;
use http::{Request, StatusCode};

const REMOTE: [&str; 4] = [
    "remote-user",
    "remote-groups",
    "remote-name",
    "remote-email",
];

#[tokio::test]
async fn auth_request_anonymous_gets_401_with_location_and_anchor() {
    let h = Harness::new();
    let r = h
        .send(
            auth_request("https://app.example.com/dashboard?x=1", "GET")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let location =
        "https://auth.example.com/?rd=https%3A%2F%2Fapp.example.com%2Fdashboard%3Fx%3D1&rm=GET";
    assert_eq!(r.header("location"), Some(location));
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(
        r.body,
        format!(
            "<a href=\"{}\">401 Unauthorized</a>",
            location.replace('&', "&amp;")
        )
    );
    assert!(r.header("www-authenticate").is_none());
}

#[tokio::test]
async fn forward_auth_status_depends_on_accept_xhr_and_method() {
    let h = Harness::new();
    let cases = [
        (Some("text/html"), None, "GET", StatusCode::FOUND),
        (Some("text/html"), None, "HEAD", StatusCode::FOUND),
        (Some("text/html"), None, "OPTIONS", StatusCode::FOUND),
        (
            Some("text/html,application/xhtml+xml"),
            None,
            "POST",
            StatusCode::SEE_OTHER,
        ),
        (Some("*/*"), None, "DELETE", StatusCode::SEE_OTHER),
        (
            Some("application/json, */*"),
            None,
            "GET",
            StatusCode::UNAUTHORIZED,
        ),
        (None, None, "GET", StatusCode::UNAUTHORIZED),
        (
            Some("text/html"),
            Some("XMLHttpRequest"),
            "GET",
            StatusCode::UNAUTHORIZED,
        ),
    ];
    for (accept, xhr, method, expected) in cases {
        let mut b = forward_auth("https", "app.example.com", "/x", method);
        if let Some(a) = accept {
            b = b.header("accept", a);
        }
        if let Some(x) = xhr {
            b = b.header("x-requested-with", x);
        }
        let r = h.send(b.body(Body::empty()).unwrap()).await;
        assert_eq!(r.status, expected, "{accept:?} {xhr:?} {method}");
        let location =
            format!("https://auth.example.com/?rd=https%3A%2F%2Fapp.example.com%2Fx&rm={method}");
        assert_eq!(r.header("location"), Some(location.as_str()));
        let reason = expected.canonical_reason().unwrap();
        if method == "HEAD" {
            // A forwarded HEAD gets the same status and headers, and no body (as Authelia).
            assert!(r.body.is_empty(), "{}", r.body);
        } else {
            assert!(
                r.body
                    .ends_with(&format!(">{} {reason}</a>", expected.as_u16())),
                "{}",
                r.body
            );
        }
    }
}

#[tokio::test]
async fn malformed_requests_are_bad_requests_never_allowed() {
    let h = Harness::new();
    let bad = vec![
        // AR without headers, with the wrong family, with bad values
        Request::get("/api/authz/auth-request")
            .body(Body::empty())
            .unwrap(),
        auth_request("https://public.example.com/", "get")
            .body(Body::empty())
            .unwrap(),
        auth_request("/relative", "GET")
            .body(Body::empty())
            .unwrap(),
        auth_request("https://public.example.com/%zz", "GET")
            .body(Body::empty())
            .unwrap(),
        auth_request("https://u:p@public.example.com/", "GET")
            .body(Body::empty())
            .unwrap(),
        forward_auth("https", "public.example.com", "/", "GET")
            .uri("/api/authz/auth-request")
            .body(Body::empty())
            .unwrap(),
        // plain http and unknown domains, even for bypass routes
        auth_request("http://public.example.com/", "GET")
            .body(Body::empty())
            .unwrap(),
        auth_request("https://public.example.net/", "GET")
            .body(Body::empty())
            .unwrap(),
        auth_request("https://notexample.com/", "GET")
            .body(Body::empty())
            .unwrap(),
        // FA: missing host, invalid method, proto missing (falls back to http)
        Request::get("/api/authz/forward-auth")
            .header("X-Forwarded-Proto", "https")
            .header("Host", "public.example.com")
            .header("X-Forwarded-Method", "GET")
            .body(Body::empty())
            .unwrap(),
        forward_auth("https", "public.example.com", "/", "G3T")
            .body(Body::empty())
            .unwrap(),
        Request::get("/api/authz/forward-auth")
            .header("X-Forwarded-Host", "public.example.com")
            .header("X-Forwarded-Method", "GET")
            .body(Body::empty())
            .unwrap(),
        // invalid portal override
        auth_request("https://public.example.com/", "GET")
            .uri("/api/authz/auth-request?authelia_url=https://evil.net/")
            .body(Body::empty())
            .unwrap(),
        auth_request("https://public.example.com/", "GET")
            .uri("/api/authz/auth-request?authelia_url=")
            .body(Body::empty())
            .unwrap(),
        auth_request("https://public.example.com/", "GET")
            .uri("/api/authz/auth-request?authelia_url=/portal")
            .body(Body::empty())
            .unwrap(),
    ];
    for request in bad {
        let description = format!("{:?} {:?}", request.uri(), request.headers());
        let r = h.send(request).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{description}");
        assert_eq!(r.body, "400 Bad Request");
        assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
        assert!(r.header("location").is_none());
    }
    // The same on the legacy endpoint is a 401.
    let r = h
        .send(
            Request::get("/api/verify")
                .header("X-Original-URL", "http://public.example.com/")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body, "401 Unauthorized");
}

#[tokio::test]
async fn forwarded_headers_from_untrusted_peers_are_ignored() {
    let h = Harness::new();
    let r = h
        .send_from(
            "203.0.113.9:5555",
            auth_request("https://public.example.com/", "GET")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "bypass target from an untrusted peer must not be allowed"
    );
    let r = h
        .send_from(
            "203.0.113.9:5555",
            forward_auth("https", "public.example.com", "/", "GET")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn other_methods_get_405_on_get_only_endpoints() {
    let h = Harness::new();
    for path in ["/api/authz/forward-auth", "/api/authz/auth-request"] {
        let r = h
            .send(Request::post(path).body(Body::empty()).unwrap())
            .await;
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{path}");
        assert_eq!(r.body, "405 Method Not Allowed");
    }
}

#[tokio::test]
async fn bypass_answers_200_with_empty_identity_headers() {
    let h = Harness::new();
    let r = h
        .send(
            auth_request("https://public.example.com/anything", "POST")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, "200 OK");
    for name in REMOTE {
        assert_eq!(r.header(name), Some(""), "{name} must be present and empty");
    }
}

#[tokio::test]
async fn head_has_no_body_but_the_same_headers() {
    let h = Harness::new();
    let r = h
        .send(
            forward_auth("https", "app.example.com", "/", "GET")
                .method("HEAD")
                .header("accept", "text/html")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::FOUND);
    assert!(r.header("location").is_some());
    assert!(r.body.is_empty());
}

#[tokio::test]
async fn session_cookie_lets_the_user_through_with_identity_headers() {
    let h = Harness::new();
    let cookie = h.login("auth.example.com", "ALICE", ALICE_PASSWORD).await;
    assert!(cookie.starts_with("authelia_session="));
    let r = h
        .send(
            auth_request("https://app.example.com/", "GET")
                .header("cookie", &cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("remote-user"), Some("alice"), "canonical username");
    assert_eq!(r.header("remote-groups"), Some("admins,dev"));
    assert_eq!(r.header("remote-name"), Some("Alice Liddell"));
    assert_eq!(r.header("remote-email"), Some("alice@example.com"));
    // The cookie of one domain means nothing on another.
    let r = h
        .send(
            auth_request("https://app.example.org/", "GET")
                .header("cookie", &cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(
        r.header("location")
            .unwrap()
            .starts_with("https://auth.example.org/portal/?rd=")
    );
}

#[tokio::test]
async fn deny_subject_rules_and_groups() {
    let h = Harness::new();
    let alice = h.login("auth.example.com", "alice", ALICE_PASSWORD).await;
    let bob = h
        .login("auth.example.com", "bob@example.com", BOB_PASSWORD)
        .await;
    let admin = |cookie: &str| {
        auth_request("https://app.example.com/admin/users", "GET")
            .header("cookie", cookie)
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(
        h.send(admin(&alice)).await.status,
        StatusCode::OK,
        "group rule admits admins"
    );
    let r = h.send(admin(&bob)).await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "bob falls through to the deny rule"
    );
    assert_eq!(r.body, "403 Forbidden");
    // Anonymous on a rule with a subject: sent to log in, not 403.
    let r = h
        .send(
            auth_request("https://app.example.com/admin", "GET")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.header("location").is_some());
    // Default deny without subject: 403 even for anonymous.
    let r = h
        .send(
            auth_request("https://unlisted.example.com/", "GET")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn path_tricks_do_not_reach_admin_through_the_bypass_prefix() {
    let h = Harness::new();
    let bob = h.login("auth.example.com", "bob", BOB_PASSWORD).await;
    for path in [
        "/public/../admin",
        "/public/%2e%2e/admin",
        "/public/%2E%2E/admin",
        "/public/..%2fadmin",
        "//admin",
        "/public/./../admin",
    ] {
        let url = format!("https://app.example.com{path}");
        let anon = h
            .send(auth_request(&url, "GET").body(Body::empty()).unwrap())
            .await;
        assert_ne!(anon.status, StatusCode::OK, "{path} anonymous");
        let r = h
            .send(
                auth_request(&url, "GET")
                    .header("cookie", &bob)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path} as bob");
    }
}

#[tokio::test]
async fn basic_credentials() {
    let h = Harness::new();
    let ok = h
        .send(
            auth_request("https://app.example.com/", "GET")
                .header("authorization", basic("bob", BOB_PASSWORD))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(ok.header("remote-user"), Some("bob"));
    assert_eq!(
        ok.header("remote-email"),
        Some("bob@example.com"),
        "first email only"
    );
    let cases = [
        basic("bob", "wrong"),
        basic("nobody", "x"),
        basic("mallory", BOB_PASSWORD),
        "Basic !!!".to_owned(),
        "Basic".to_owned(),
        "Token abc".to_owned(),
        basic("bob", ""),
        format!("Basic {}", base64_of("no-colon")),
    ];
    for header in cases {
        let r = h
            .send(
                auth_request("https://app.example.com/", "GET")
                    .header("authorization", &header)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{header}");
        assert_eq!(
            r.header("www-authenticate"),
            Some("Basic realm=\"Authorization Required\""),
            "{header}"
        );
        assert_eq!(r.body, "401 Unauthorized");
        assert!(r.header("location").is_none());
        assert!(r.header("proxy-authenticate").is_none());
    }
    // A malformed Authorization is a challenge even with a valid session cookie (reference behaviour).
    let cookie = h.login("auth.example.com", "alice", ALICE_PASSWORD).await;
    let r = h
        .send(
            auth_request("https://app.example.com/", "GET")
                .header("authorization", "Token abc")
                .header("cookie", &cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // Bearer is skipped on the new endpoints: the cookie decides.
    let r = h
        .send(
            auth_request("https://app.example.com/", "GET")
                .header("authorization", "Bearer abc")
                .header("cookie", &cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    // Bypass wins over a failed credential.
    let r = h
        .send(
            auth_request("https://public.example.com/", "GET")
                .header("authorization", basic("bob", "wrong"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

fn base64_of(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[tokio::test]
async fn basic_is_one_factor_so_two_factor_routes_challenge() {
    let h = Harness::new();
    let r = h
        .send(
            auth_request("https://secure.example.com/", "GET")
                .header("authorization", basic("bob", BOB_PASSWORD))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.header("www-authenticate").is_some());
    assert!(r.header("location").is_none());
    // A one-factor session is sent to the portal instead.
    let cookie = h.login("auth.example.com", "bob", BOB_PASSWORD).await;
    let r = h
        .send(
            auth_request("https://secure.example.com/", "GET")
                .header("cookie", &cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.header("location").is_some());
}

#[tokio::test]
async fn repeated_failures_ban_the_canonical_user_across_identifiers() {
    let h = Harness::new();
    for login in ["bob", "BOB", "bob@example.org"] {
        let r = h
            .send(
                auth_request("https://app.example.com/", "GET")
                    .header("authorization", basic(login, "wrong"))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    // Banned: the right password is answered exactly like a wrong one.
    let r = h
        .send(
            auth_request("https://app.example.com/", "GET")
                .header("authorization", basic("bob", BOB_PASSWORD))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body, "401 Unauthorized");
    // The portal shares the ban.
    let r = h
        .send(
            Request::post("/api/firstfactor")
                .header("host", "auth.example.com")
                .header("content-type", "application/json")
                .body(Body::from(r#"{"username":"bob","password":"bob-secret"}"#))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // After ban_time the user gets in again.
    h.advance(301);
    let r = h
        .send(
            auth_request("https://app.example.com/", "GET")
                .header("authorization", basic("bob", BOB_PASSWORD))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn legacy_endpoint_rules() {
    let h = Harness::new();
    // No portal URL: plain 401.
    let r = h
        .send(
            Request::get("/api/verify")
                .header("X-Original-URL", "https://app.example.com/")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body, "401 Unauthorized");
    assert!(r.header("location").is_none());
    // rd names the portal: redirect like ForwardAuth.
    let r = h
        .send(
            Request::get("/api/verify?rd=https://auth.example.com/")
                .header("X-Original-URL", "https://app.example.com/")
                .header("accept", "text/html")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::FOUND);
    assert_eq!(
        r.header("location"),
        Some("https://auth.example.com/?rd=https%3A%2F%2Fapp.example.com%2F&rm=GET")
    );
    // auth=basic: the challenge.
    let r = h
        .send(
            Request::get("/api/verify?auth=basic&rd=https://auth.example.com/")
                .header("X-Original-URL", "https://app.example.com/")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.header("www-authenticate").is_some());
    // Legacy reads Proxy-Authorization by default, Authorization with auth=basic.
    let r = h
        .send(
            Request::get("/api/verify")
                .header("X-Original-URL", "https://app.example.com/")
                .header("proxy-authorization", basic("bob", BOB_PASSWORD))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("remote-user"), Some("bob"));
    let r = h
        .send(
            Request::get("/api/verify?auth=basic")
                .header("X-Original-URL", "https://app.example.com/")
                .header("authorization", basic("bob", BOB_PASSWORD))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    // Bearer is an error on legacy.
    let r = h
        .send(
            Request::get("/api/verify")
                .header("X-Original-URL", "https://app.example.com/")
                .header("proxy-authorization", "Bearer x")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.header("www-authenticate").is_some());
    // Sub-paths and any method are routed.
    let r = h
        .send(
            Request::post("/api/verify/anything")
                .header("X-Original-URL", "https://public.example.com/")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn ext_authz_builds_the_target_from_host_and_path() {
    let h = Harness::new();
    let r = h
        .send(
            Request::delete("/api/authz/ext-authz/public/x")
                .header("host", "app.example.com")
                .header("x-forwarded-proto", "https")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = h
        .send(
            Request::put("/api/authz/ext-authz/private")
                .header("host", "app.example.com")
                .header("x-forwarded-proto", "https")
                .header("accept", "text/html")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(
        r.header("location"),
        Some("https://auth.example.com/?rd=https%3A%2F%2Fapp.example.com%2Fprivate&rm=PUT")
    );
    // X-Authelia-URL overrides the portal and is validated.
    let r = h
        .send(
            Request::get("/api/authz/ext-authz/private")
                .header("host", "app.example.com")
                .header("x-forwarded-proto", "https")
                .header("x-authelia-url", "https://evil.net/")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn portal_override_keeps_its_query() {
    let h = Harness::new();
    let r = h
        .send(
            auth_request("https://app.example.com/a", "GET")
                .uri("/api/authz/auth-request?authelia_url=https%3A%2F%2Flogin.example.com%2Fsso%3Ftheme%3Ddark")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.header("location"),
        Some(
            "https://login.example.com/sso?rd=https%3A%2F%2Fapp.example.com%2Fa&rm=GET&theme=dark"
        )
    );
}

#[tokio::test]
async fn networks_rules_use_the_trusted_client_ip() {
    let h = Harness::new();
    let office = |xff: &str| {
        auth_request("https://office.example.com/", "GET")
            .header("x-forwarded-for", xff)
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(h.send(office("198.51.100.7")).await.status, StatusCode::OK);
    // A spoofed left-most entry does not count: the right-most untrusted one is the client.
    assert_eq!(
        h.send(office("198.51.100.7, 203.0.113.1")).await.status,
        StatusCode::UNAUTHORIZED
    );
    // Unparsable: unknown client, no network rule applies.
    assert_eq!(
        h.send(office("198.51.100.7, bogus")).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn session_lifetime_inactivity_and_logout() {
    let h = Harness::new();
    let cookie = h.login("auth.example.com", "alice", ALICE_PASSWORD).await;
    let check = || {
        auth_request("https://app.example.com/", "GET")
            .header("cookie", &cookie)
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(h.send(check()).await.status, StatusCode::OK);
    h.advance(299);
    assert_eq!(
        h.send(check()).await.status,
        StatusCode::OK,
        "activity refreshes the idle timer"
    );
    h.advance(299);
    assert_eq!(h.send(check()).await.status, StatusCode::OK);
    h.advance(301);
    let r = h.send(check()).await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "idle longer than inactivity"
    );
    assert!(r.clears_cookie());
    assert_eq!(
        h.send(check()).await.status,
        StatusCode::UNAUTHORIZED,
        "the session is gone"
    );

    // Expiration: active all along, still ends after 1 h.
    let cookie = h.login("auth.example.com", "alice", ALICE_PASSWORD).await;
    let check = || {
        auth_request("https://app.example.com/", "GET")
            .header("cookie", &cookie)
            .body(Body::empty())
            .unwrap()
    };
    for _ in 0..12 {
        h.advance(290);
        assert_eq!(
            h.send(check()).await.status,
            StatusCode::OK,
            "active, under 1 h"
        );
    }
    h.advance(200);
    assert_eq!(h.send(check()).await.status, StatusCode::UNAUTHORIZED);

    // Logout ends access at once.
    let cookie = h.login("auth.example.com", "alice", ALICE_PASSWORD).await;
    let r = h
        .send(
            Request::post("/api/logout")
                .header("host", "auth.example.com")
                .header("cookie", &cookie)
                .header("content-type", "application/json")
                .body(Body::from(r#"{"targetURL":"https://app.example.com/"}"#))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, r#"{"data":{"safeTargetURL":true},"status":"OK"}"#);
    assert!(r.clears_cookie());
    let r = h
        .send(
            auth_request("https://app.example.com/", "GET")
                .header("cookie", &cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn remember_me_skips_inactivity() {
    let h = Harness::new();
    let r = h
        .send(
            Request::post("/api/firstfactor")
                .header("host", "auth.example.com")
                .header("content-type", "application/json")
                .body(Body::from(
                    r#"{"username":"alice","password":"password","keepMeLoggedIn":true}"#,
                ))
                .unwrap(),
        )
        .await;
    let set_cookie = r.header("set-cookie").unwrap().to_owned();
    assert!(set_cookie.contains("Max-Age="), "{set_cookie}");
    let cookie = r.cookie_pair().unwrap();
    h.advance(3 * 3600);
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
async fn hijack_header_and_removed_users_destroy_the_session() {
    let h = Harness::new();
    let cookie = h.login("auth.example.com", "alice", ALICE_PASSWORD).await;
    let r = h
        .send(
            auth_request("https://app.example.com/", "GET")
                .header("cookie", &cookie)
                .header("session-username", "ALICE")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "case-insensitive match");
    let r = h
        .send(
            auth_request("https://app.example.com/", "GET")
                .header("cookie", &cookie)
                .header("session-username", "bob")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // Removing a user from the file ends their sessions at the next check; changed groups apply.
    let bob = h.login("auth.example.com", "bob", BOB_PASSWORD).await;
    let alice = h.login("auth.example.com", "alice", ALICE_PASSWORD).await;
    let users = users_yaml().replace("groups: [admins, dev]", "groups: [dev]");
    let users = users.replace("  bob:\n", "  bob:\n    disabled: true\n");
    h.state.replace_users(
        portcullis_auth::users::UserDatabase::parse("u.yml".as_ref(), &users, true, true).unwrap(),
    );
    let r = h
        .send(
            auth_request("https://app.example.com/", "GET")
                .header("cookie", &bob)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = h
        .send(
            auth_request("https://app.example.com/admin", "GET")
                .header("cookie", &alice)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "alice left admins");
}

#[tokio::test]
async fn a_session_moved_to_another_cookie_domain_is_destroyed() {
    // Both domains use the same cookie name, so the browser-side cookie could be replayed.
    let yaml = CONFIG.replace("      name: org_session\n", "");
    let h = Harness::with(
        &yaml,
        std::sync::Arc::new(portcullis_session::MemoryStore::new()),
    );
    let cookie = h.login("auth.example.com", "alice", ALICE_PASSWORD).await;
    let r = h
        .send(
            auth_request("https://app.example.org/", "GET")
                .header("cookie", &cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.clears_cookie());
    // And it is gone for its own domain too.
    let r = h
        .send(
            auth_request("https://app.example.com/", "GET")
                .header("cookie", &cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn metrics_count_checks_by_endpoint_and_decision() {
    use tower::ServiceExt;
    let h = Harness::new();
    h.send(
        auth_request("https://public.example.com/", "GET")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    h.send(
        auth_request("https://app.example.com/", "GET")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    h.send(
        Request::get("/api/authz/auth-request")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    let response = portcullis_verify_server::metrics_router(h.state.clone(), "/metrics")
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let text = Reply::read(response).await.body;
    for needle in [
        r#"portcullis_authz_checks_total{endpoint="auth-request",decision="allow"} 1"#,
        r#"portcullis_authz_checks_total{endpoint="auth-request",decision="redirect"} 1"#,
        r#"portcullis_authz_checks_total{endpoint="auth-request",decision="bad_request"} 1"#,
        "portcullis_authz_check_duration_seconds_count 3",
        "portcullis_sessions 0",
        "portcullis_regulation_active_bans 0",
    ] {
        assert!(text.contains(needle), "{needle} missing from\n{text}");
    }
}

/// `refresh_interval` counts from the last refresh, not from the login: after the first interval
/// the user's details are read once per interval, not on every request.
#[tokio::test]
async fn refresh_interval_counts_from_the_last_refresh() {
    let yaml = CONFIG.replace(
        "authentication_backend:\n",
        "authentication_backend:\n  refresh_interval: 5m\n",
    );
    let h = Harness::with(
        &yaml,
        std::sync::Arc::new(portcullis_session::MemoryStore::new()),
    );
    let alice = h.login("auth.example.com", "alice", ALICE_PASSWORD).await;
    let admin = || {
        auth_request("https://app.example.com/admin", "GET")
            .header("cookie", &alice)
            .body(Body::empty())
            .unwrap()
    };
    let users = |groups: &str| {
        let yaml = users_yaml().replace("groups: [admins, dev]", groups);
        portcullis_auth::users::UserDatabase::parse("u.yml".as_ref(), &yaml, true, true).unwrap()
    };
    // Past the first interval, the removal from admins is seen (and recorded as a refresh).
    h.state.replace_users(users("groups: [dev]"));
    h.advance(290);
    assert_eq!(
        h.send(admin()).await.status,
        StatusCode::OK,
        "inside the interval: old groups"
    );
    h.advance(20);
    assert_eq!(
        h.send(admin()).await.status,
        StatusCode::FORBIDDEN,
        "refreshed after 5 minutes"
    );
    // Back in admins one minute later: not yet seen, the last refresh was a minute ago.
    h.state.replace_users(users("groups: [admins, dev]"));
    h.advance(60);
    assert_eq!(
        h.send(admin()).await.status,
        StatusCode::FORBIDDEN,
        "no refresh on every request after the first interval"
    );
    h.advance(250);
    assert_eq!(
        h.send(admin()).await.status,
        StatusCode::OK,
        "the next interval refreshes"
    );
}
