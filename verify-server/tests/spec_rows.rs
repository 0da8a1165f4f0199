//! One test per row of docs/reference/forward-auth.md §3–§6 that no other test pins.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use axum::body::Body;
use common::*;
use http::{Request, StatusCode};
use portcullis_session::MemoryStore;

fn with_endpoints(endpoints: &str) -> Harness {
    let yaml = CONFIG.replace(
        "log:\n",
        &format!("  endpoints:\n    authz:\n{endpoints}log:\n"),
    );
    Harness::with(&yaml, Arc::new(MemoryStore::new()))
}

/// §4.3: an application's own `Authorization: Token …` through a default endpoint is a parse
/// error and gets the Basic challenge, even with a valid session cookie.
#[tokio::test]
async fn an_unknown_scheme_is_a_challenge_even_with_a_session() {
    let h = Harness::new();
    let cookie = h.login("auth.example.com", "alice", ALICE_PASSWORD).await;
    let r = h
        .send(
            auth_request("https://app.example.com/", "GET")
                .header("cookie", &cookie)
                .header("authorization", "Token abc123")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.header("www-authenticate"),
        Some("Basic realm=\"Authorization Required\"")
    );
    assert!(r.header("location").is_none());
}

/// §5 step 1: a bypass route is authorized even when authentication failed.
#[tokio::test]
async fn bypass_wins_over_a_failed_authentication() {
    let h = Harness::new();
    for authorization in ["Token abc", "Basic !!!", &basic("alice", "wrong")] {
        let r = h
            .send(
                auth_request("https://public.example.com/", "GET")
                    .header("authorization", authorization)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{authorization}");
        assert_eq!(r.header("remote-user"), Some(""));
    }
}

/// §4.1: `HeaderProxyAuthorization` challenges with 407 and `Proxy-Authenticate` only; a
/// header-only strategy list challenges instead of redirecting (§4.2).
#[tokio::test]
async fn proxy_authorization_challenges_with_407_and_header_only_lists_never_redirect() {
    let h = with_endpoints(
        "      proxy:\n        implementation: ForwardAuth\n        authn_strategies:\n          - name: HeaderProxyAuthorization\n",
    );
    let check = |extra: Option<(&str, String)>| {
        let mut b = forward_auth("https", "app.example.com", "/", "GET")
            .uri("/api/authz/proxy")
            .header("accept", "text/html");
        if let Some((name, value)) = extra {
            b = b.header(name, value);
        }
        b.body(Body::empty()).unwrap()
    };
    let r = h.send(check(None)).await;
    assert_eq!(
        r.status,
        StatusCode::PROXY_AUTHENTICATION_REQUIRED,
        "no redirect: {:?}",
        r.header("location")
    );
    assert_eq!(
        r.header("proxy-authenticate"),
        Some("Basic realm=\"Authorization Required\"")
    );
    assert!(r.header("www-authenticate").is_none());
    assert_eq!(r.body, "407 Proxy Authentication Required");
    let r = h
        .send(check(Some((
            "proxy-authorization",
            basic("alice", ALICE_PASSWORD),
        ))))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("remote-user"), Some("alice"));
    // The browser's Authorization header is not this strategy's credential.
    let r = h
        .send(check(Some((
            "authorization",
            basic("alice", ALICE_PASSWORD),
        ))))
        .await;
    assert_eq!(r.status, StatusCode::PROXY_AUTHENTICATION_REQUIRED);
}

/// §4.6 step 3: an inactive session is destroyed even on a bypass route, which still answers 200.
#[tokio::test]
async fn inactivity_destroys_the_session_on_a_bypass_route_too() {
    let h = Harness::new();
    let cookie = h.login("auth.example.com", "alice", ALICE_PASSWORD).await;
    h.advance(301);
    let r = h
        .send(
            auth_request("https://public.example.com/", "GET")
                .header("cookie", &cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.clears_cookie(), "the cookie is cleared");
    let r = h
        .send(
            auth_request("https://app.example.com/", "GET")
                .header("cookie", &cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "the session is gone");
}

/// §4.6 step 6: activity is recorded on requests answered 403 too.
#[tokio::test]
async fn activity_counts_on_forbidden_answers() {
    let h = Harness::new();
    let cookie = h.login("auth.example.com", "bob", BOB_PASSWORD).await;
    for _ in 0..3 {
        h.advance(200);
        let r = h
            .send(
                auth_request("https://app.example.com/admin", "GET")
                    .header("cookie", &cookie)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
    }
    let r = h
        .send(
            auth_request("https://app.example.com/", "GET")
                .header("cookie", &cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "600 s of 403s kept a 5-minute inactivity alive"
    );
}

/// §3.1: each implementation reads only its own header family; §3.2: methods are A–Z only.
#[tokio::test]
async fn foreign_header_families_and_bad_methods_are_bad_requests() {
    let h = Harness::new();
    let cases = [
        Request::get("/api/authz/forward-auth")
            .header("x-original-url", "https://app.example.com/")
            .header("x-original-method", "GET"),
        Request::get("/api/authz/auth-request")
            .header("x-forwarded-proto", "https")
            .header("x-forwarded-host", "app.example.com")
            .header("x-forwarded-uri", "/")
            .header("x-forwarded-method", "GET"),
        forward_auth("https", "app.example.com", "/", "get"),
        forward_auth("https", "app.example.com", "/", "M-SEARCH"),
        forward_auth("https", "app.example.com", "/", ""),
        auth_request("https://app.example.com/", "GET2"),
        // No X-Forwarded-Host: no fallback to Host on ForwardAuth.
        Request::get("/api/authz/forward-auth")
            .header("host", "app.example.com")
            .header("x-forwarded-proto", "https")
            .header("x-forwarded-method", "GET"),
    ];
    for request in cases {
        let request = request.body(Body::empty()).unwrap();
        let described = format!("{} {:?}", request.uri(), request.headers());
        let r = h.send(request).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{described}");
        assert!(r.header("location").is_none(), "{described}");
    }
}

/// §6.4: `*/*` counts as accepting HTML only as the first item.
#[tokio::test]
async fn a_wildcard_accept_counts_only_first() {
    let h = Harness::new();
    let cases = [
        ("*/*", StatusCode::FOUND),
        ("*/*;q=0.8, application/json", StatusCode::FOUND),
        ("application/json, */*", StatusCode::UNAUTHORIZED),
        (
            "application/json;q=0.9, text/html ;q=0.1",
            StatusCode::FOUND,
        ),
        ("TEXT/HTML", StatusCode::UNAUTHORIZED),
    ];
    for (accept, status) in cases {
        let r = h
            .send(
                forward_auth("https", "app.example.com", "/", "GET")
                    .header("accept", accept)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(r.status, status, "{accept}");
        assert!(r.header("location").is_some(), "{accept}");
    }
}
