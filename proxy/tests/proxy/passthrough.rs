//! Method, path, query, body and `Host` reach the upstream; hop-by-hop headers do not, either way.

use axum::body::Body;
use http::{HeaderValue, Method, Request, StatusCode, Version};

use crate::support::{body_bytes, front, http_upstream, plain_client, recorder, send};

#[tokio::test]
async fn get_keeps_path_query_and_client_host_and_drops_hop_by_hop_headers() {
    let (upstream, mut observed) = recorder().await;
    let front = front(plain_client(), http_upstream(upstream), None).await;

    let request = Request::get("/some/path%20x?b=2&a=%C3%A9&empty")
        .header("host", "app.example.com")
        .header("connection", "close, x-named-in-connection")
        .header("x-named-in-connection", "must not pass")
        .header("keep-alive", "timeout=5, max=100")
        .header("te", "gzip")
        .header("proxy-authorization", "Basic cHJveHk6c2VjcmV0")
        .header("proxy-connection", "keep-alive")
        .header("x-end-to-end", "kept")
        .header("accept", "text/plain")
        .body(Body::empty())
        .unwrap();
    let response = send(front, request).await;

    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert_eq!(headers["x-kept"], "yes");
    for hop in [
        "x-secret-hop",
        "keep-alive",
        "proxy-authenticate",
        "trailer",
    ] {
        assert!(!headers.contains_key(hop), "{hop} reached the client");
    }
    assert_eq!(body_bytes(response).await, "recorded");

    let seen = observed.recv().await.unwrap();
    assert_eq!(seen.method, Method::GET);
    assert_eq!(seen.uri, "/some/path%20x?b=2&a=%C3%A9&empty");
    assert_eq!(seen.version, Version::HTTP_11);
    assert_eq!(seen.headers["host"], "app.example.com");
    assert_eq!(seen.headers["x-end-to-end"], "kept");
    assert_eq!(seen.headers["accept"], "text/plain");
    for hop in [
        "connection",
        "x-named-in-connection",
        "keep-alive",
        "te",
        "proxy-authorization",
        "proxy-connection",
        "upgrade",
    ] {
        assert!(
            !seen.headers.contains_key(hop),
            "{hop} reached the upstream: {:?}",
            seen.headers
        );
    }
}

#[tokio::test]
async fn post_body_arrives_and_host_override_replaces_host() {
    let (upstream, mut observed) = recorder().await;
    let front = front(
        plain_client(),
        http_upstream(upstream),
        Some(HeaderValue::from_static("internal.example:8443")),
    )
    .await;

    let request = Request::post("/submit?form=1")
        .header("host", "app.example.com")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("te", "trailers, deflate")
        .body(Body::from("name=alice&note=hello+world"))
        .unwrap();
    let response = send(front, request).await;
    assert_eq!(response.status(), StatusCode::OK);

    let seen = observed.recv().await.unwrap();
    assert_eq!(seen.method, Method::POST);
    assert_eq!(seen.uri, "/submit?form=1");
    assert_eq!(seen.headers["host"], "internal.example:8443");
    assert_eq!(seen.headers.get_all("host").iter().count(), 1);
    assert_eq!(
        seen.headers["content-type"],
        "application/x-www-form-urlencoded"
    );
    assert_eq!(seen.body, "name=alice&note=hello+world");
    // `TE: trailers` is end-to-end enough to keep (gRPC); the other codings go.
    assert_eq!(seen.headers["te"], "trailers");
}

#[tokio::test]
async fn other_methods_and_odd_targets_pass() {
    let (upstream, mut observed) = recorder().await;
    let client = plain_client();
    let upstream = http_upstream(upstream);

    // Straight to `forward`, without a front server: an absolute-form target keeps only its path
    // and query, and with no `Host` header the authority of the target is the client's host.
    let request = Request::delete("http://app.example.com/items/7?force=true")
        .body(Body::empty())
        .unwrap();
    let response = client.forward(request, &upstream, None).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let seen = observed.recv().await.unwrap();
    assert_eq!(seen.method, Method::DELETE);
    assert_eq!(seen.uri, "/items/7?force=true");
    assert_eq!(seen.headers["host"], "app.example.com");

    // `OPTIONS *` has no path at all.
    let request = Request::options("*").body(Body::empty()).unwrap();
    let response = client.forward(request, &upstream, None).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let seen = observed.recv().await.unwrap();
    assert_eq!(seen.method, Method::OPTIONS);
    assert_eq!(seen.uri, "*");
    // No client `Host` to keep: the upstream's authority is sent.
    assert_eq!(
        seen.headers["host"],
        upstream.authority(),
        "{:?}",
        seen.headers
    );

    // A method axum has no name for.
    let request = Request::builder()
        .method(Method::from_bytes(b"PROPFIND").unwrap())
        .uri("/dav/")
        .header("host", "dav.example.com")
        .header("depth", "1")
        .body(Body::from("<propfind/>"))
        .unwrap();
    let response = client.forward(request, &upstream, None).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let seen = observed.recv().await.unwrap();
    assert_eq!(seen.method.as_str(), "PROPFIND");
    assert_eq!(seen.headers["depth"], "1");
    assert_eq!(seen.body, "<propfind/>");
}
