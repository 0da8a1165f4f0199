//! `portcullis-outpost` in proxy mode against a real, independent OpenID provider: panva's
//! oidc-provider 9 (`tests/oidc-rp/idp.mjs`, pinned in its package-lock and installed by
//! `scripts/test` with `npm ci`) on loopback, PKCE required, the client authenticating with
//! `client_secret_post`, one fixed user logged in through the provider's HTML form. The outpost
//! is built by `App::build` from its configuration file's text and served on a real socket (the
//! upgrades need one), in front of a real application (an axum app on loopback).
//!
//! What it shows (docs/reference/outpost.md §4, §6, §9, §14 item 8):
//! - the whole login: the application sees `X-authentik-*` from the provider's claims (here
//!   the ID token carries only `sub`; email, profile and groups come from UserInfo), and a
//!   client-sent identity header never reaches it;
//! - a WebSocket message round-trips through the outpost with the session cookie, and without
//!   one (or with a forged one) the upgrade is refused before the application;
//! - server-sent events are streamed: the first event arrives while the application still holds
//!   the second;
//! - sign-out ends every session of the user, redirects to oidc-provider's end-session endpoint
//!   with an `id_token_hint` it accepts for this client, and the cookie stops working;
//! - a replayed callback (a used code) and a foreign one (another browser's code and state, the
//!   login-CSRF shape) never make a session: the login starts again (§4.2, §17).

// Tests wait for real processes and sockets on the wall clock; the clock rule is for the servers.
#![allow(clippy::disallowed_methods)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use base64::Engine as _;
use futures_util::{SinkExt as _, StreamExt as _};
use portcullis_tests::outpost_support::{
    APP_HOST, App, CLIENT_ID, EMAIL, GROUPS, Idp, NAME, Outpost, SUB, USERNAME, Web,
    deletes_cookie, init_logs, outpost_config, param, redirect_uri, require_idp, set_cookie,
};
use portcullis_tests::process::{FailureLogs, free_port};
use tokio_tungstenite::tungstenite::{self, Message, client::IntoClientRequest as _};

/// How long one read from a stream may wait before the test fails (a bound, not a measurement).
const READ_BOUND: Duration = Duration::from_secs(20);

/// The provider, the application and an outpost with in-memory sessions in front of it.
struct Setup {
    _logs: FailureLogs,
    outpost: Outpost,
    app: App,
    idp: Idp,
    external: String,
    _dir: tempfile::TempDir,
}

async fn setup() -> Setup {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let external = format!("http://{APP_HOST}:{port}");
    let idp = Idp::start(dir.path(), &[redirect_uri(&external)]).await;
    let app = App::start().await;
    let text = outpost_config(port, &external, &app, &idp, "storage:\n  memory: true\n");
    let outpost = Outpost::start(&text).await;
    Setup {
        _logs: FailureLogs {
            files: idp.process.logs.clone(),
        },
        outpost,
        app,
        idp,
        external,
        _dir: dir,
    }
}

impl Setup {
    async fn login(&self, web: &mut Web, path: &str) -> String {
        let base = self.outpost.base();
        web.login(&base, &self.external, path, &self.outpost.cookie_name)
            .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_through_oidc_provider_gives_the_application_its_claims() {
    if !require_idp(&[]) {
        return;
    }
    let s = setup().await;
    let base = s.outpost.base();
    let mut web = Web::new();

    // The provider's form refuses a wrong password: the login below goes through the real form.
    let r = web
        .get(&format!("{base}/outpost.goauthentik.io/start"), None)
        .await;
    assert_eq!(r.status, 302, "{r:?}");
    let page = web
        .idp_follow(r.location())
        .await
        .expect("the provider shows its login page");
    let refused = web
        .submit_login(&page, "not-the-password")
        .await
        .expect_err("a wrong password is refused");
    assert!(refused.body.contains("id=\"error\""), "{}", refused.body);
    assert_eq!(s.app.requests(), 0, "nothing reached the application yet");

    let cookie = s.login(&mut web, "/whoami?tab=2").await;
    // The session cookie (§10.1): host-only, HttpOnly, SameSite=Lax, no Secure for an http
    // external host, and a lifetime (the token's).
    let set = web.last_set_cookie.clone().unwrap();
    let attributes: Vec<&str> = set.split(';').skip(1).map(str::trim).collect();
    for wanted in ["Path=/", "HttpOnly", "SameSite=Lax"] {
        assert!(attributes.contains(&wanted), "{wanted} in {set}");
    }
    assert!(
        !attributes.iter().any(|a| a.eq_ignore_ascii_case("secure")),
        "{set}"
    );
    assert!(
        !attributes.iter().any(|a| a.starts_with("Domain=")),
        "{set}"
    );
    assert!(
        attributes.iter().any(|a| a
            .strip_prefix("Max-Age=")
            .is_some_and(|n| n.parse::<u64>().is_ok_and(|n| n > 0))),
        "{set}"
    );
    let r = web
        .http
        .get(format!("{base}/whoami?tab=2"))
        .header("cookie", &cookie)
        .header("x-authentik-username", "mallory")
        .header("x-authentik-groups", "root")
        .header("x_authentik_email", "root@evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()
            .get("x-powered-by")
            .and_then(|v| v.to_str().ok()),
        Some("goauthentik.io")
    );
    let seen: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        seen["uri"], "/whoami?tab=2",
        "path and query reach the application"
    );
    let h = &seen["headers"];
    assert_eq!(h["x-authentik-username"], USERNAME, "{h}");
    assert!(
        h.get("x_authentik_email").is_none(),
        "underscore twins are dropped: {h}"
    );
    assert_eq!(h["x-authentik-email"], EMAIL, "{h}");
    assert_eq!(h["x-authentik-name"], NAME, "{h}");
    assert_eq!(h["x-authentik-uid"], SUB, "{h}");
    assert_eq!(h["x-authentik-groups"], GROUPS.join("|"), "{h}");
    assert_eq!(h["x-authentik-meta-provider"], "app");
    assert_eq!(h["x-authentik-meta-app"], "the-app");
    assert_eq!(h["x-authentik-meta-outpost"], "e2e-outpost");
    assert_eq!(h["x-authentik-meta-jwks"], format!("{}/jwks", s.idp.issuer));
    assert!(
        h["x-authentik-meta-version"]
            .as_str()
            .is_some_and(|v| v.starts_with("goauthentik.io/outpost/")),
        "{h}"
    );
    // The raw token: oidc-provider's access token is opaque, so the ID token it issued for
    // this client.
    let jwt = h["x-authentik-jwt"].as_str().unwrap();
    let payload: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(jwt.split('.').nth(1).expect("a JWT"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(payload["iss"], s.idp.issuer.as_str());
    assert_eq!(payload["aud"], CLIENT_ID);
    assert_eq!(payload["sub"], SUB);
    assert_eq!(h["host"], format!("{APP_HOST}:{}", s.outpost.port));
    assert_eq!(
        h["x-forwarded-host"],
        format!("{APP_HOST}:{}", s.outpost.port)
    );

    // A second browser logs in on its own (the provider asks it for the password too).
    let mut other = Web::new();
    let second = s.login(&mut other, "/").await;
    assert_ne!(second, cookie, "each login gets its own session");
    let r = web.get(&format!("{base}/"), Some(&second)).await;
    assert_eq!(r.status, 200);
    assert!(
        r.body.contains(&format!("<h1 id=\"user\">{USERNAME}</h1>")),
        "{}",
        r.body
    );
}

async fn websocket(
    port: u16,
    cookie: Option<&str>,
) -> Result<
    tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
    tungstenite::http::Response<Option<Vec<u8>>>,
> {
    let mut request = format!("ws://{APP_HOST}:{port}/ws")
        .into_client_request()
        .unwrap();
    if let Some(c) = cookie {
        request.headers_mut().insert(
            http::header::COOKIE,
            http::HeaderValue::from_str(c).unwrap(),
        );
    }
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    match tokio_tungstenite::client_async(request, stream).await {
        Ok((socket, response)) => {
            assert_eq!(response.status(), 101);
            Ok(socket)
        }
        Err(tungstenite::Error::Http(response)) => Err(*response),
        Err(e) => panic!("WebSocket handshake failed: {e}"),
    }
}

async fn next_text(
    socket: &mut tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
) -> String {
    match tokio::time::timeout(READ_BOUND, socket.next()).await {
        Ok(Some(Ok(Message::Text(text)))) => text.as_str().to_owned(),
        other => panic!("expected a text message, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_needs_the_session_and_round_trips_with_it() {
    if !require_idp(&[]) {
        return;
    }
    let s = setup().await;
    let port = s.outpost.port;

    // Without a cookie, and with a forged one: no upgrade, a redirect to the login, and the
    // application never sees the request.
    for cookie in [
        None,
        Some(format!("{}=forged.value", s.outpost.cookie_name)),
    ] {
        let refused = websocket(port, cookie.as_deref())
            .await
            .expect_err("no upgrade without a session");
        assert_eq!(refused.status(), 302, "{cookie:?}");
        let location = refused.headers()["location"].to_str().unwrap();
        assert!(
            location.starts_with(&format!("{}/outpost.goauthentik.io/start?rd=", s.external)),
            "{location}"
        );
    }
    assert_eq!(s.app.upgrades(), 0);
    assert_eq!(s.app.requests(), 0);

    let mut web = Web::new();
    let cookie = s.login(&mut web, "/").await;
    let mut socket = websocket(port, Some(&cookie))
        .await
        .unwrap_or_else(|r| panic!("the upgrade with a session was refused: {r:?}"));
    assert_eq!(s.app.upgrades(), 1);
    assert_eq!(
        next_text(&mut socket).await,
        format!("hello {USERNAME}"),
        "the upgrade request carried the identity"
    );
    for text in ["ping", "a second message"] {
        socket.send(Message::text(text)).await.unwrap();
        assert_eq!(next_text(&mut socket).await, format!("echo: {text}"));
    }
    socket.close(None).await.unwrap();
}

/// Read from `response` until the text so far contains `needle`; fails after [`READ_BOUND`]
/// without new data.
async fn read_until(response: &mut reqwest::Response, so_far: &mut String, needle: &str) {
    while !so_far.contains(needle) {
        let chunk = tokio::time::timeout(READ_BOUND, response.chunk())
            .await
            .unwrap_or_else(|_| {
                panic!("no `{needle}` within {READ_BOUND:?}; received so far: {so_far:?}")
            })
            .unwrap();
        match chunk {
            Some(bytes) => so_far.push_str(&String::from_utf8_lossy(&bytes)),
            None => panic!("the stream ended before `{needle}`: {so_far:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_sent_events_are_streamed_not_buffered() {
    if !require_idp(&[]) {
        return;
    }
    let s = setup().await;
    let base = s.outpost.base();
    let mut web = Web::new();
    let r = web.get(&format!("{base}/events"), None).await;
    assert_eq!(r.status, 302, "no session, no stream");
    assert_eq!(s.app.requests(), 0);

    let cookie = s.login(&mut web, "/events").await;
    let mut response = web
        .http
        .get(format!("{base}/events"))
        .header("cookie", &cookie)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/event-stream")
    );
    let mut so_far = String::new();
    // The application holds the second event until released: the first must arrive alone.
    read_until(&mut response, &mut so_far, "data: first\n\n").await;
    assert!(!so_far.contains("second"), "{so_far:?}");
    s.app.release_second_event();
    read_until(&mut response, &mut so_far, "data: second\n\n").await;
    assert_eq!(
        so_far, "id: 1\ndata: first\n\nid: 2\ndata: second\n\n",
        "the events pass unchanged"
    );
    let end = tokio::time::timeout(READ_BOUND, response.chunk())
        .await
        .expect("the stream ends after the application's last event")
        .unwrap();
    assert!(end.is_none(), "{end:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_out_ends_every_session_of_the_user_and_the_provider_session() {
    if !require_idp(&[]) {
        return;
    }
    let s = setup().await;
    let base = s.outpost.base();
    let mut web = Web::new();
    let cookie = s.login(&mut web, "/").await;
    // The same user in another browser.
    let mut other = Web::new();
    let other_cookie = s.login(&mut other, "/").await;
    for c in [&cookie, &other_cookie] {
        assert_eq!(web.get(&format!("{base}/"), Some(c)).await.status, 200);
    }
    let before = s.app.requests();

    let r = web
        .get(
            &format!("{base}/outpost.goauthentik.io/sign_out"),
            Some(&cookie),
        )
        .await;
    assert_eq!(r.status, 302, "{r:?}");
    let end = r.location();
    assert!(
        end.starts_with(&format!("{}?id_token_hint=", s.idp.end_session())),
        "sign-out goes to oidc-provider's end_session_endpoint: {end}"
    );
    assert!(
        deletes_cookie(&r.headers, &s.outpost.cookie_name),
        "the sign-out answer deletes the cookie: {r:?}"
    );
    // Both sessions of the user are over: each cookie is sent to log in again, and the
    // application sees nothing.
    for c in [&cookie, &other_cookie] {
        let r = web.get(&format!("{base}/"), Some(c)).await;
        assert_eq!(r.status, 302, "a signed-out cookie is refused: {r:?}");
        assert!(
            r.location()
                .starts_with(&format!("{}/outpost.goauthentik.io/start?", s.external)),
            "{r:?}"
        );
    }
    assert_eq!(s.app.requests(), before);

    // oidc-provider accepts the hint as an ID token it issued for this client, and ends its
    // own session on confirmation.
    let hint = param(&end, "id_token_hint").unwrap();
    assert_eq!(hint.split('.').count(), 3, "the hint is a JWT: {hint}");
    let page = web.idp_get(&end).await;
    assert_eq!(page.status, 200, "{page:?}");
    assert!(
        page.body.contains(&format!(
            "<h1 id=\"logout-title\">Sign out of {CLIENT_ID}?</h1>"
        )),
        "{}",
        page.body
    );
    let xsrf = page
        .body
        .split("name=\"xsrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the logout form's xsrf")
        .to_owned();
    let r = web
        .idp_post(
            &format!("{}/session/end/confirm", s.idp.issuer),
            &[("xsrf", xsrf.as_str()), ("logout", "yes")],
        )
        .await;
    assert_eq!(r.status, 303, "{r:?}");
    let done = web.idp_get(&r.location()).await;
    assert!(done.body.contains("id=\"logged-out\""), "{}", done.body);

    // The next visit starts a login that the provider no longer completes silently.
    let r = web.get(&format!("{base}/"), None).await;
    let r = web.get(&r.location(), None).await;
    let page = web
        .idp_follow(r.location())
        .await
        .expect("the provider asks for the password again");
    assert!(page.body.contains("id=\"username\""), "{}", page.body);
    // And that login works.
    let fresh = s.login(&mut web, "/").await;
    assert_eq!(web.get(&format!("{base}/"), Some(&fresh)).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_or_foreign_callback_never_makes_a_session() {
    if !require_idp(&[]) {
        return;
    }
    let s = setup().await;
    let base = s.outpost.base();
    let name = s.outpost.cookie_name.clone();

    // A replayed callback: same code, state and pre-login cookie. oidc-provider refuses the
    // used code, and the outpost sends the browser back to start over, without a session.
    let mut web = Web::new();
    let cookie = s.login(&mut web, "/").await;
    let (callback, pre_login) = web.last_callback.clone().unwrap();
    let r = web.get(&callback, Some(&pre_login)).await;
    assert_eq!(r.status, 302, "{r:?}");
    assert_eq!(
        r.location(),
        format!("{}/", s.external),
        "back to start over"
    );
    assert_eq!(
        set_cookie(&r.headers, &name),
        None,
        "no session from a used code: {r:?}"
    );
    assert_eq!(
        web.get(&format!("{base}/"), Some(&pre_login)).await.status,
        302
    );
    assert_eq!(
        web.get(&format!("{base}/"), Some(&cookie)).await.status,
        200
    );

    // A foreign callback (login CSRF): the code and state of a login made by another browser,
    // delivered without its pre-login cookie or with this browser's own. The state is bound to
    // the other browser's cookie: the login starts again at the provider, with no session.
    let mut attacker = Web::new();
    let r = attacker
        .get(&format!("{base}/outpost.goauthentik.io/start"), None)
        .await;
    let attacker_pre_login = set_cookie(&r.headers, &name).unwrap();
    let page = attacker.idp_follow(r.location()).await.unwrap();
    let foreign = attacker
        .submit_login(&page, portcullis_tests::outpost_support::PASSWORD)
        .await
        .unwrap();
    let foreign = foreign.replacen(&s.external, &base, 1);
    let victim = Web::new();
    let r = victim
        .get(&format!("{base}/outpost.goauthentik.io/start"), None)
        .await;
    let victim_pre_login = set_cookie(&r.headers, &name).unwrap();
    let served = s.app.requests();
    for cookie in [None, Some(victim_pre_login.as_str())] {
        let r = victim.get(&foreign, cookie).await;
        assert_eq!(r.status, 302, "{cookie:?}: {r:?}");
        assert!(
            r.location().starts_with(&format!("{}/auth?", s.idp.issuer)),
            "the login starts again at the provider: {r:?}"
        );
        let new_cookie = set_cookie(&r.headers, &name);
        if let Some(c) = &new_cookie {
            let r = victim.get(&format!("{base}/"), Some(c)).await;
            assert_eq!(
                r.status, 302,
                "a restarted login's cookie is no session: {r:?}"
            );
        }
    }
    assert_eq!(s.app.requests(), served, "the foreign code reached nothing");
    // The code was not spent: its own browser still completes the login with it.
    let r = attacker.get(&foreign, Some(&attacker_pre_login)).await;
    assert_eq!(r.status, 302, "{r:?}");
    let own = set_cookie(&r.headers, &name).expect("the rightful browser gets its session");
    assert_eq!(
        attacker.get(&format!("{base}/"), Some(&own)).await.status,
        200
    );
}
