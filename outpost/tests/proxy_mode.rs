//! Proxy mode (docs/reference/outpost.md §4.4, §9, §14 items 2 and 9) through the router, with a
//! real upstream on loopback that echoes what it received.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::body::Body;
use common::*;
use http::{Request, StatusCode};
use serde_json::{Value, json};

/// An upstream that answers with the method, path, query and headers it saw.
async fn echo() -> String {
    let app = axum::Router::new().fallback(|request: Request<Body>| async move {
        let headers: serde_json::Map<String, Value> = request
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), json!(v.to_str().unwrap_or("?"))))
            .collect();
        axum::Json(json!({
            "method": request.method().as_str(),
            "path": request.uri().path(),
            "query": request.uri().query(),
            "headers": headers,
        }))
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

async fn proxied(extra: &str) -> (Outpost, String) {
    let idp = start_idp().await;
    let upstream = echo().await;
    let p = provider_yaml(
        &idp,
        "app",
        "proxy",
        "https://app.example.com",
        &format!("    internal_host: {upstream}\n{extra}"),
    );
    (outpost(&idp, &p).await, upstream)
}

/// Log in through the proxy: the 302 to `start`, its 302 to the provider, the callback.
async fn login(o: &Outpost, user: &str, claims_extra: Value) -> String {
    let r = o
        .get("/dashboard?tab=2", &[("host", "app.example.com")])
        .await;
    assert_eq!(r.status, StatusCode::FOUND, "{}", r.body);
    let start = r.location().to_owned();
    assert_eq!(
        start,
        "https://app.example.com/outpost.goauthentik.io/start?rd=https%3A%2F%2Fapp.example.com%2Fdashboard%3Ftab%3D2"
    );
    let path = start.strip_prefix("https://app.example.com").unwrap();
    let r = o.get(path, &[("host", "app.example.com")]).await;
    assert_eq!(r.status, StatusCode::FOUND);
    let pre = r.session_cookie().unwrap();
    let state = param(r.location(), "state").unwrap();
    let mut claims = o.idp.claims("app", user);
    if let Value::Object(extra) = claims_extra {
        for (k, v) in extra {
            claims[k] = v;
        }
    }
    o.idp.will_issue(&claims);
    let r = o
        .get(
            &format!("/outpost.goauthentik.io/callback?X-authentik-auth-callback=true&code=c&state={state}"),
            &[("host", "app.example.com"), ("cookie", &pre)],
        )
        .await;
    assert_eq!(r.status, StatusCode::FOUND, "{}", r.body);
    assert_eq!(
        r.location(),
        "https://app.example.com/dashboard?tab=2",
        "the query is kept"
    );
    r.session_cookie().unwrap()
}

fn seen(r: &Reply) -> Value {
    serde_json::from_str(&r.body).unwrap_or_else(|_| panic!("not the echo: {}", r.body))
}

#[tokio::test]
async fn identity_reaches_the_upstream_and_spoofed_headers_never_do() {
    let (o, _) = proxied("").await;
    let cookie = login(&o, "alice", json!({})).await;
    let r = o
        .send_from(
            "203.0.113.7",
            Request::post("/api/items?x=1")
                .header("host", "app.example.com")
                .header("cookie", &cookie)
                .header("x-authentik-username", "root")
                .header("X-Authentik-Groups", "admins")
                .header("x_authentik_email", "root@evil")
                .header("x-forwarded-for", "10.9.9.9")
                .header("x-forwarded-host", "evil.example.com")
                .body(Body::from("payload"))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.header("x-powered-by"), Some("goauthentik.io"));
    let s = seen(&r);
    assert_eq!(s["method"], "POST");
    assert_eq!(
        (s["path"].as_str(), s["query"].as_str()),
        (Some("/api/items"), Some("x=1"))
    );
    let h = &s["headers"];
    assert_eq!(h["x-authentik-username"], "alice");
    assert_eq!(h["x-authentik-groups"], "users|alice-group");
    assert_eq!(h["x-authentik-email"], "alice@example.com");
    assert!(h.get("x_authentik_email").is_none());
    assert_eq!(h["host"], "app.example.com", "the frontend Host is kept");
    assert_eq!(h["x-forwarded-host"], "app.example.com");
    assert_eq!(
        h["x-forwarded-for"], "203.0.113.7",
        "an untrusted peer's X-Forwarded-For is replaced"
    );
    assert_eq!(h["x-forwarded-proto"], "http");
    // From a trusted proxy the chain is kept and the peer appended.
    let r = o
        .send(
            Request::get("/")
                .header("host", "app.example.com")
                .header("cookie", &cookie)
                .header("x-forwarded-for", "198.51.100.4")
                .header("x-forwarded-proto", "https")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    let h = &seen(&r)["headers"];
    assert_eq!(h["x-forwarded-for"], "198.51.100.4, 127.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "https");
}

#[tokio::test]
async fn unauthenticated_requests_and_header_interception() {
    let (o, _) = proxied("    skip_path_regex: |\n      ^/health$\n").await;
    // The allow-list is proxied without identity, spoofed headers stripped all the same.
    let r = o
        .get(
            "/health",
            &[
                ("host", "app.example.com"),
                ("x-authentik-username", "root"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(seen(&r)["headers"].get("x-authentik-username").is_none());
    // Any Authorization header with interception on: the 401 page, no redirect.
    let r = o
        .get(
            "/private",
            &[
                ("host", "app.example.com"),
                ("authorization", "Bearer not-a-jwt"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.body.contains("Unauthenticated"));
    assert!(r.header("location").is_none());
    let r = o
        .get(
            "/private",
            &[
                ("host", "app.example.com"),
                ("authorization", "Negotiate abc"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // A valid Bearer token: proxied, and the upstream never sees Authorization.
    let token = o.idp.sign(&o.idp.claims("app", "robot"));
    let r = o
        .get(
            "/private",
            &[
                ("host", "app.example.com"),
                ("authorization", &format!("Bearer {token}")),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let h = &seen(&r)["headers"];
    assert!(h.get("authorization").is_none());
    assert_eq!(h["x-authentik-username"], "robot");
    // The cached answer too (§14 item 2: a cache hit also removes it).
    let r = o
        .get(
            "/private",
            &[
                ("host", "app.example.com"),
                ("authorization", &format!("Bearer {token}")),
            ],
        )
        .await;
    assert!(seen(&r)["headers"].get("authorization").is_none());
}

#[tokio::test]
async fn interception_off_redirects() {
    let (o, _) = proxied("    intercept_header_auth: false\n").await;
    let r = o
        .get(
            "/private",
            &[
                ("host", "app.example.com"),
                ("authorization", "Bearer nope"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::FOUND);
    assert!(r.location().contains("/outpost.goauthentik.io/start?rd="));
}

#[tokio::test]
async fn basic_upstream_additional_headers_and_overrides() {
    let idp = start_idp().await;
    let upstream = echo().await;
    let other = echo().await;
    let p = provider_yaml(
        &idp,
        "app",
        "proxy",
        "https://app.example.com",
        &format!(
            "    internal_host: {upstream}\n    basic_auth_enabled: true\n    basic_auth_user_attribute: app_user\n    basic_auth_password_attribute: app_password\n"
        ),
    );
    let o = outpost(&idp, &p).await;
    let cookie = login(
        &o,
        "carol",
        json!({"ak_proxy": {
            "user_attributes": {"app_password": "s3cret", "additionalHeaders": {"X-Team": "blue", "X-Level": 3, "X-authentik-username": "override"}},
            "backend_override": other,
            "host_header": "internal.example",
        }}),
    )
    .await;
    let r = o
        .get(
            "/",
            &[
                ("host", "app.example.com"),
                ("cookie", &cookie),
                ("x-team", "spoofed"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let h = &seen(&r)["headers"];
    use base64::Engine as _;
    let expected = base64::engine::general_purpose::STANDARD.encode("carol@example.com:s3cret");
    assert_eq!(
        h["authorization"],
        format!("Basic {expected}"),
        "email when the user attribute is missing"
    );
    assert_eq!(h["x-team"], "blue");
    assert_eq!(h["x-level"], "3");
    assert_eq!(
        h["x-authentik-username"], "override",
        "additionalHeaders come after the standard ones"
    );
    assert_eq!(h["host"], "internal.example");
}

#[tokio::test]
async fn a_dead_upstream_is_a_502_page() {
    let idp = start_idp().await;
    let p = provider_yaml(
        &idp,
        "app",
        "proxy",
        "https://app.example.com",
        "    internal_host: http://127.0.0.1:9\n",
    );
    let o = outpost(&idp, &p).await;
    let cookie = login_dead(&o).await;
    let r = o
        .get("/", &[("host", "app.example.com"), ("cookie", &cookie)])
        .await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    assert!(r.body.contains("Failed to connect to backend."));
    assert!(r.body.contains("Bad Gateway"));
}

/// The login of `login`, without the upstream (its first request cannot be proxied).
async fn login_dead(o: &Outpost) -> String {
    let r = o
        .get(
            "/outpost.goauthentik.io/start",
            &[("host", "app.example.com")],
        )
        .await;
    let pre = r.session_cookie().unwrap();
    let state = param(r.location(), "state").unwrap();
    o.idp.will_issue(&o.idp.claims("app", "dave"));
    let r = o
        .get(
            &format!("/?X-authentik-auth-callback=true&code=c&state={state}"),
            &[("host", "app.example.com"), ("cookie", &pre)],
        )
        .await;
    assert_eq!(r.location(), "https://app.example.com");
    r.session_cookie().unwrap()
}

#[tokio::test]
async fn the_proxy_protocol_from_a_trusted_peer_names_the_client() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let (o, _) = proxied("    skip_path_regex: '^/open$'\n").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = o.state.clone();
    let trusts: portcullis_server_core::ProxyProtocolPeers =
        std::sync::Arc::new(move |ip| state.trusts(ip));
    let (_trigger, shutdown) = portcullis_server_core::Shutdown::manual();
    tokio::spawn(portcullis_server_core::serve_with_proxy_protocol(
        listener,
        portcullis_outpost::router(o.state.clone()),
        None,
        portcullis_server_core::Limits {
            header_read_timeout: std::time::Duration::from_secs(1),
            ..portcullis_server_core::Limits::default()
        },
        trusts,
        shutdown.signalled(),
    ));
    let exchange = |head: &'static [u8]| async move {
        let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
        c.write_all(head).await.unwrap();
        c.write_all(b"GET /open HTTP/1.1\r\nHost: app.example.com\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut out = Vec::new();
        let _ = c.read_to_end(&mut out).await;
        String::from_utf8_lossy(&out).into_owned()
    };
    // From loopback (trusted) the header's client is the peer: 203.0.113.7 is untrusted, so the
    // upstream sees it as X-Forwarded-For.
    let answer = exchange(b"PROXY TCP4 203.0.113.7 10.0.0.1 51000 443\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.contains("\"x-forwarded-for\":\"203.0.113.7\""),
        "{answer}"
    );
    // Without a header the connection is served as usual.
    let answer = exchange(b"").await;
    assert!(
        answer.contains("\"x-forwarded-for\":\"127.0.0.1\""),
        "{answer}"
    );
    // A malformed header closes the connection without an answer.
    let answer = exchange(b"PROXY TCP4 nonsense\r\n").await;
    assert!(answer.is_empty(), "{answer}");
}
