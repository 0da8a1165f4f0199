//! The tower layer (`examples/embedded.rs`): a plain axum handler behind the outpost sees who is
//! asking in its extensions, and never runs for an anonymous request outside the allow-list.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

#[path = "../examples/embedded.rs"]
#[allow(dead_code)]
mod embedded;

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use common::*;
use http::{Request, StatusCode};
use tower::ServiceExt as _;

async fn call(app: &axum::Router, uri: &str, headers: &[(&str, &str)]) -> Reply {
    let mut b = Request::get(uri).header("host", "app.example.com");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let mut request = b.body(Body::empty()).unwrap();
    request.extensions_mut().insert(ConnectInfo(
        "127.0.0.1:40000".parse::<SocketAddr>().unwrap(),
    ));
    read(app.clone().oneshot(request).await.unwrap()).await
}

#[tokio::test]
async fn the_handler_sees_the_identity_and_anonymous_requests_never_reach_it() {
    let idp = start_idp().await;
    let p = provider_yaml(
        &idp,
        "app",
        "forward_single",
        "https://app.example.com",
        "    skip_path_regex: '^/open$'\n",
    );
    let o = outpost(&idp, &p).await;
    let app = embedded::app(o.state.clone());
    let r = call(&app, "/", &[("x-authentik-username", "root")]).await;
    assert_eq!(r.status, StatusCode::FOUND);
    assert!(
        r.location()
            .starts_with("https://app.example.com/outpost.goauthentik.io/start?rd=")
    );
    // The layer answers the outpost's own endpoints: start, then the callback signature.
    let r = call(&app, "/outpost.goauthentik.io/start?rd=%2F", &[]).await;
    assert_eq!(r.status, StatusCode::FOUND);
    let pre = r.session_cookie().unwrap();
    let state = param(r.location(), "state").unwrap();
    idp.will_issue(&idp.claims("app", "erin"));
    let r = call(
        &app,
        &format!("/?X-authentik-auth-callback=true&code=c&state={state}"),
        &[("cookie", &pre)],
    )
    .await;
    assert_eq!(r.status, StatusCode::FOUND);
    let cookie = r.session_cookie().unwrap();
    let r = call(&app, "/", &[("cookie", &cookie)]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, "hello erin (users, erin-group)");
    // The allow-list reaches the handler without an identity.
    let r = call(&app, "/open", &[]).await;
    assert_eq!(
        r.status,
        StatusCode::NOT_FOUND,
        "the router's own 404: the handler ran"
    );
}
