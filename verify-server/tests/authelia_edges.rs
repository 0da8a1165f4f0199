//! Edge cases where Portcullis must answer exactly as Authelia does (docs/reference/forward-auth.md):
//! forwarded HEAD, ExtAuthz sub-paths and peers, the legacy endpoint's 401 for every bad request,
//! and JSON bodies that are not objects.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::body::Body;
use common::*;
use http::{Request, StatusCode};

fn ext_authz(path: &str) -> http::request::Builder {
    Request::get(path)
        .header("host", "app.example.com")
        .header("x-forwarded-proto", "https")
        .header("accept", "text/html")
}

#[tokio::test]
async fn a_forwarded_head_gets_location_and_no_body() {
    let h = Harness::new();
    let cases = [
        (
            forward_auth("https", "app.example.com", "/", "HEAD").header("accept", "text/html"),
            StatusCode::FOUND,
        ),
        (
            forward_auth("https", "app.example.com", "/", "HEAD"),
            StatusCode::UNAUTHORIZED,
        ),
        (
            auth_request("https://app.example.com/", "HEAD"),
            StatusCode::UNAUTHORIZED,
        ),
        (
            ext_authz("/api/authz/ext-authz/").method("HEAD"),
            StatusCode::FOUND,
        ),
    ];
    for (request, status) in cases {
        let r = h.send(request.body(Body::empty()).unwrap()).await;
        assert_eq!(r.status, status);
        let location = r.header("location").expect("Location on a HEAD redirect");
        assert!(location.ends_with("&rm=HEAD"), "{location}");
        assert!(
            r.body.is_empty(),
            "no body for a forwarded HEAD: {:?}",
            r.body
        );
    }
    // The same check for GET keeps its anchor body.
    let r = h
        .send(
            forward_auth("https", "app.example.com", "/", "GET")
                .header("accept", "text/html")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert!(r.body.starts_with("<a href="), "{}", r.body);
}

#[tokio::test]
async fn ext_authz_root_and_empty_sub_paths() {
    let h = Harness::new();
    // Envoy appends the original path: the application's root arrives as the endpoint plus `/`.
    let r = h
        .send(
            ext_authz("/api/authz/ext-authz/")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::FOUND);
    assert_eq!(
        r.header("location"),
        Some("https://auth.example.com/?rd=https%3A%2F%2Fapp.example.com%2F&rm=GET")
    );
    // No sub-path at all: the target has no trailing slash, as Authelia builds it.
    let r = h
        .send(
            ext_authz("/api/authz/ext-authz")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::FOUND);
    assert_eq!(
        r.header("location"),
        Some("https://auth.example.com/?rd=https%3A%2F%2Fapp.example.com&rm=GET")
    );
    // The check request's own query is not part of the target (docs/reference/forward-auth.md
    // §3.1, as Authelia reads `ctx.Path()`).
    let r = h
        .send(
            ext_authz("/api/authz/ext-authz/x?a=1&b=2")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(
        r.header("location"),
        Some("https://auth.example.com/?rd=https%3A%2F%2Fapp.example.com%2Fx&rm=GET")
    );
    // The bypassed public host answers 200 at its root too.
    let r = h
        .send(
            Request::get("/api/authz/ext-authz/")
                .header("host", "public.example.com")
                .header("x-forwarded-proto", "https")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn ext_authz_from_an_untrusted_peer_is_a_bad_request() {
    let h = Harness::new();
    let r = h
        .send_from(
            "203.0.113.7:5000",
            ext_authz("/api/authz/ext-authz/")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.header("location").is_none());
}

#[tokio::test]
async fn the_legacy_endpoint_answers_401_to_every_bad_request() {
    let h = Harness::new();
    let bad = [
        // A tab is the one control byte a header value may carry.
        Request::get("/api/verify")
            .header("x-forwarded-proto", "https")
            .header("x-forwarded-host", "app.example.com\t")
            .header("x-forwarded-uri", "/"),
        Request::get("/api/verify").header("x-original-url", "not a url"),
        Request::get("/api/verify").header("x-original-url", "https://app.example.com/a b"),
        Request::get("/api/verify")
            .header("x-forwarded-proto", "http")
            .header("x-forwarded-host", "app.example.com"),
        Request::get("/api/verify")
            .header("x-forwarded-proto", "https")
            .header("x-forwarded-host", "unknown.example.net"),
        Request::get("/api/verify/")
            .header("x-forwarded-proto", "https")
            .header("x-forwarded-host", "app.example.com")
            .header("x-forwarded-method", "get"),
    ];
    for request in bad {
        let request = request.body(Body::empty()).unwrap();
        let described = format!("{:?}", request.headers());
        let r = h.send(request).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{described}");
        assert_eq!(r.body, "401 Unauthorized");
    }
    // `/api/verify/` is the legacy endpoint with the sub-path `/`, not a 404.
    let r = h
        .send(
            Request::get("/api/verify/")
                .header("x-original-url", "https://public.example.com/")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn first_factor_bodies_that_are_not_objects_fail() {
    let h = Harness::new();
    for body in [
        "[]",
        "[\"alice\",\"password\"]",
        "\"alice\"",
        "1",
        "null",
        "true",
    ] {
        let r = h
            .send(
                Request::post("/api/firstfactor")
                    .header("host", "auth.example.com")
                    .header("content-type", "application/json")
                    .body(Body::from(body))
                    .unwrap(),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{body}");
        assert!(r.body.contains("\"status\":\"KO\""), "{body}: {}", r.body);
        assert!(r.header("set-cookie").is_none(), "{body}");
    }
}
