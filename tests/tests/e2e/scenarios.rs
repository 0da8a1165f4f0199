//! The scenarios of issue 4, each written once and run behind every proxy.

// Tests wait for real processes and sockets on the wall clock; the clock rule is for the servers.
#![allow(clippy::disallowed_methods)]

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use portcullis_tests::client::basic;
use portcullis_tests::users::{ALICE, BOB};
use portcullis_tests::{Proxy, Reply, Stack, StackOptions};
use tokio_tungstenite::tungstenite::Message;

async fn stack(proxy: Proxy) -> Option<Stack> {
    Stack::start(proxy, StackOptions::default()).await
}

/// A 302 to the portal (on the proxy's port) whose `rd` is `target` and `rm` is GET.
fn assert_portal_redirect(stack: &Stack, reply: &Reply, target: &str) {
    assert_eq!(reply.status, 302, "expected the portal redirect: {reply:?}");
    let location = reply.header("location").expect("Location");
    let url = url::Url::parse(location).unwrap_or_else(|e| panic!("Location {location}: {e}"));
    assert_eq!(url.scheme(), "https", "{location}");
    assert_eq!(url.host_str(), Some("auth.example.com"), "{location}");
    assert_eq!(url.port(), Some(stack.client.port), "{location}");
    assert_eq!(url.path(), "/", "{location}");
    let query: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    let get = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("rd"), Some(target), "rd of {location}");
    assert_eq!(get("rm"), Some("GET"), "rm of {location}");
}

/// Not let through: no 2xx, and the application saw nothing new.
fn assert_refused(stack: &Stack, reply: &Reply, before: usize, what: &str) {
    assert!(
        !(200..300).contains(&reply.status),
        "{what}: let through by {}: {reply:?}",
        stack.proxy.name()
    );
    assert_eq!(
        stack.upstream.count(),
        before,
        "{what}: reached the application: {:?}",
        stack.upstream.seen().last()
    );
}

/// The header names of the identity family, and what the application received for them.
const IDENTITY: [&str; 4] = [
    "remote-user",
    "remote-groups",
    "remote-name",
    "remote-email",
];

/// Item 1.
pub async fn anonymous_browser_goes_to_portal_and_xhr_gets_401(proxy: Proxy) {
    let Some(stack) = stack(proxy).await else {
        return;
    };
    let c = &stack.client;
    let reply = c.get("app", "/dashboard?tab=1&next=%2Fhome").send().await;
    assert_portal_redirect(
        &stack,
        &reply,
        &c.url("app", "/dashboard?tab=1&next=%2Fhome"),
    );
    // An Accept that starts with */* is a navigation too.
    let reply = c.get("app", "/").header("accept", "*/*").send().await;
    assert_portal_redirect(&stack, &reply, &c.url("app", "/"));

    let reply = c.xhr("app", "/api/items").send().await;
    assert_eq!(reply.status, 401, "XHR: {reply:?}");
    let reply = c
        .get("app", "/api/items")
        .header("accept", "application/json")
        .send()
        .await;
    assert_eq!(reply.status, 401, "API client: {reply:?}");
    assert_eq!(stack.upstream.count(), 0, "{:?}", stack.upstream.seen());
}

/// Item 2.
pub async fn login_gives_upstream_the_identity(proxy: Proxy) {
    let Some(stack) = stack(proxy).await else {
        return;
    };
    let c = &stack.client;
    let alice = c.login(ALICE.0, ALICE.1).await;
    let seen = c
        .get("app", "/dashboard")
        .cookie(&alice)
        .send()
        .await
        .seen();
    assert_eq!(seen.uri, "/dashboard");
    assert_eq!(seen.one("remote-user"), Some("alice"));
    assert_eq!(seen.one("remote-groups"), Some("admins,dev"));
    assert_eq!(seen.one("remote-name"), Some("Alice Liddell"));
    assert_eq!(seen.one("remote-email"), Some("alice@example.com"));

    let bob = c.login(BOB.0, BOB.1).await;
    let seen = c.xhr("app", "/api/items").cookie(&bob).send().await.seen();
    assert_eq!(seen.one("remote-user"), Some("bob"));
    assert_eq!(seen.one("remote-groups"), Some("dev"));
    assert_eq!(seen.one("remote-name"), Some("Bob"));
    assert_eq!(seen.one("remote-email"), Some("bob@example.com"));

    // The portal sees the session through the proxy too.
    let state = c.get("auth", "/api/state").cookie(&alice).send().await;
    assert_eq!(state.json()["data"]["username"], "alice", "{state:?}");
}

/// Item 3: every spelling a client might use, sent byte for byte.
const SPOOFED: [(&str, &str); 10] = [
    ("Remote-User", "admin"),
    ("remote-user", "admin"),
    ("REMOTE-USER", "admin"),
    ("Remote_User", "admin"),
    ("remote_user", "admin"),
    ("Remote-Groups", "admins"),
    ("Remote_Groups", "admins"),
    ("Remote-Name", "Administrator"),
    ("Remote-Email", "admin@example.com"),
    ("Remote_Email", "admin@example.com"),
];

fn assert_no_spoofed_identity(seen: &portcullis_tests::Seen, expected_user: &str, what: &str) {
    for name in IDENTITY {
        let spellings = seen.header_names_like(name);
        assert!(
            spellings.iter().all(|n| *n == name),
            "{what}: the application received {spellings:?}: {seen:?}"
        );
        let values = seen.all(name);
        assert!(
            values.len() <= 1,
            "{what}: {name} arrived {} times: {values:?}",
            values.len()
        );
        for v in values {
            assert!(
                !v.contains("admin@") && v != "admin" && v != "admins" && v != "Administrator",
                "{what}: the client's {name} reached the application: {seen:?}"
            );
        }
    }
    let user = seen.all("remote-user").first().copied().unwrap_or("");
    assert_eq!(user, expected_user, "{what}: {seen:?}");
}

pub async fn spoofed_identity_headers_never_reach_upstream(proxy: Proxy) {
    let Some(stack) = stack(proxy).await else {
        return;
    };
    let c = &stack.client;
    let bob = c.login(BOB.0, BOB.1).await;
    let mut headers = vec![("Cookie", bob.as_str())];
    headers.extend_from_slice(&SPOOFED);
    let seen = c.raw_get("app", "/dashboard", &headers).await.seen();
    assert_no_spoofed_identity(&seen, "bob", "logged in as bob");
    assert_eq!(seen.one("remote-groups"), Some("dev"));

    // Anonymous on bypass routes: Portcullis answers 200 with empty Remote-* headers.
    for (host, path) in [("public", "/"), ("app", "/public/page")] {
        let seen = c.raw_get(host, path, &SPOOFED).await.seen();
        assert_no_spoofed_identity(&seen, "", &format!("anonymous on {host} {path}"));
    }
    // And through the portal, a bypass of its own kind.
    let seen = c
        .raw_get("public", "/x", &[("Remote-User", "admin")])
        .await
        .seen();
    assert_no_spoofed_identity(&seen, "", "anonymous, one header");
}

/// Item 4.
pub async fn bypass_deny_and_group_rules(proxy: Proxy) {
    let Some(stack) = stack(proxy).await else {
        return;
    };
    let c = &stack.client;
    // Bypass: anonymous requests pass.
    let seen = c.get("public", "/anything?q=1").send().await.seen();
    assert_eq!(seen.uri, "/anything?q=1");
    let seen = c.get("app", "/public/page").send().await.seen();
    assert_eq!(seen.uri, "/public/page");
    // Deny: 403, anonymous or not.
    let reply = c.get("forbidden", "/").send().await;
    assert_eq!(reply.status, 403, "{reply:?}");
    let alice = c.login(ALICE.0, ALICE.1).await;
    let reply = c.get("forbidden", "/").cookie(&alice).send().await;
    assert_eq!(reply.status, 403, "{reply:?}");
    // Group rule: /admin for group admins only.
    let seen = c
        .get("app", "/admin/panel")
        .cookie(&alice)
        .send()
        .await
        .seen();
    assert_eq!(seen.one("remote-user"), Some("alice"));
    let bob = c.login(BOB.0, BOB.1).await;
    let before = stack.upstream.count();
    let reply = c.get("app", "/admin/panel").cookie(&bob).send().await;
    assert_eq!(reply.status, 403, "bob on /admin: {reply:?}");
    assert_eq!(stack.upstream.count(), before);
    // Anonymous on the group rule: sent to log in (it could match once logged in).
    let reply = c.get("app", "/admin/panel").send().await;
    assert_portal_redirect(&stack, &reply, &c.url("app", "/admin/panel"));
}

/// Item 5: request targets sent byte for byte.
const TRICKS: [&str; 15] = [
    "/public/../admin",
    "/public/../admin/panel",
    "/public/%2e%2e/admin",
    "/public/%2E%2E/admin",
    "/public/.%2e/admin",
    "/public/..%2fadmin",
    "/public/..%2Fadmin",
    "/public%2f..%2fadmin",
    "/public/./../admin",
    "/public//../../admin",
    "/public/..;/admin",
    "//admin",
    "/admin;x",
    "/admin;/panel",
    "/%2fadmin",
];

pub async fn path_tricks_cannot_reach_protected_paths(proxy: Proxy) {
    let Some(stack) = stack(proxy).await else {
        return;
    };
    let c = &stack.client;
    // The bypass prefix works, so the tricks below are not refused for some other reason.
    let seen = c.raw_get("app", "/public/page", &[]).await.seen();
    assert_eq!(seen.uri, "/public/page");
    let bob = c.login(BOB.0, BOB.1).await;
    let cookie = [("Cookie", bob.as_str())];
    for trick in TRICKS {
        let before = stack.upstream.count();
        let anonymous = c.raw_get("app", trick, &[]).await;
        assert_refused(&stack, &anonymous, before, &format!("anonymous {trick}"));
        let reply = c.raw_get("app", trick, &cookie).await;
        assert_refused(&stack, &reply, before, &format!("bob (not admin) {trick}"));
        eprintln!(
            "{}: {trick}: anonymous {}, bob {}",
            proxy.name(),
            anonymous.status,
            reply.status
        );
    }
}

/// Forwarded headers are the proxy's to write: a client's copies must not change the target or
/// the client address Portcullis judges.
pub async fn forwarded_headers_from_clients_are_not_believed(proxy: Proxy) {
    let Some(stack) = stack(proxy).await else {
        return;
    };
    let c = &stack.client;
    let port = c.port;
    let public_url = format!("https://public.example.com:{port}/public/x");
    let spoof = [
        ("X-Forwarded-Host", format!("public.example.com:{port}")),
        ("X-Forwarded-Uri", "/public/x".to_owned()),
        ("X-Forwarded-Proto", "https".to_owned()),
        ("X-Forwarded-Method", "GET".to_owned()),
        ("X-Original-URL", public_url.clone()),
        ("X-Original-Method", "GET".to_owned()),
        ("X-Forwarded-Prefix", "/public".to_owned()),
    ];
    let spoof: Vec<(&str, &str)> = spoof.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let reply = c.raw_get("app", "/secret", &spoof).await;
    assert_refused(&stack, &reply, 0, "spoofed X-Forwarded-*/X-Original-*");

    // The office network may bypass; a client cannot claim to be in it.
    for xff in [
        "198.51.100.7",
        "198.51.100.7, 127.0.0.1",
        "garbage, 198.51.100.7",
    ] {
        let reply = c.raw_get("office", "/", &[("X-Forwarded-For", xff)]).await;
        assert_refused(&stack, &reply, 0, &format!("X-Forwarded-For: {xff}"));
    }

    // An absolute-form request line names app.example.com while Host names the bypassed host: the
    // proxy routes by one and must not let Portcullis judge the other.
    let host = format!("public.example.com:{port}");
    let target = format!("https://app.example.com:{port}/secret");
    let reply = c
        .raw(
            "app.example.com",
            "GET",
            &target,
            &[("Host", host.as_str()), ("Accept", "text/html")],
        )
        .await;
    eprintln!(
        "{}: absolute-form app.example.com, Host public.example.com: {}",
        proxy.name(),
        reply.status
    );
    if reply.status == 200 {
        // Allowed only if the proxy treated it as a request for public.example.com.
        let seen = reply.seen();
        let host_seen = seen.one("host").unwrap_or("");
        assert!(
            host_seen.starts_with("public.example.com"),
            "absolute-form app.example.com with Host public.example.com reached the app as {host_seen}: {seen:?}"
        );
    } else {
        assert_eq!(stack.upstream.count(), 0, "{:?}", stack.upstream.seen());
    }
}

/// Item 6, logout.
pub async fn logout_ends_access_at_once(proxy: Proxy) {
    let Some(stack) = stack(proxy).await else {
        return;
    };
    let c = &stack.client;
    let alice = c.login(ALICE.0, ALICE.1).await;
    let seen = c.get("app", "/").cookie(&alice).send().await.seen();
    assert_eq!(seen.one("remote-user"), Some("alice"));
    c.logout(&alice).await;
    let reply = c.get("app", "/").cookie(&alice).send().await;
    assert_portal_redirect(&stack, &reply, &c.url("app", "/"));
    let reply = c.xhr("app", "/").cookie(&alice).send().await;
    assert_eq!(reply.status, 401, "{reply:?}");
    let state = c.get("auth", "/api/state").cookie(&alice).send().await;
    assert_eq!(state.json()["data"]["username"], "", "{state:?}");
}

/// Item 6, expiration: a real 4 s `session.expiration`, polled.
pub async fn expired_session_ends_access(proxy: Proxy) {
    let options = StackOptions {
        expiration: "4s".to_owned(),
        ..StackOptions::default()
    };
    let Some(stack) = Stack::start(proxy, options).await else {
        return;
    };
    let c = &stack.client;
    let alice = c.login(ALICE.0, ALICE.1).await;
    let logged_in = Instant::now();
    let seen = c.get("app", "/").cookie(&alice).send().await.seen();
    assert_eq!(seen.one("remote-user"), Some("alice"));
    let reply = loop {
        let reply = c.get("app", "/").cookie(&alice).send().await;
        if reply.status != 200 {
            break reply;
        }
        assert!(
            logged_in.elapsed() < Duration::from_secs(10),
            "the 4 s session still works after 10 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        logged_in.elapsed() >= Duration::from_secs(2),
        "access ended after {:?}, before the session could expire: {reply:?}",
        logged_in.elapsed()
    );
    assert_portal_redirect(&stack, &reply, &c.url("app", "/"));
}

/// Item 7. The legacy endpoint reads Basic credentials from `Proxy-Authorization`.
pub async fn basic_credentials_challenge_and_ban(proxy: Proxy) {
    let Some(stack) = stack(proxy).await else {
        return;
    };
    let c = &stack.client;
    let header = if proxy == Proxy::NginxLegacy {
        "proxy-authorization"
    } else {
        "authorization"
    };
    let with = |user: &str, password: &str| {
        c.get("app", "/reports")
            .header("accept", "application/json")
            .header(header, &basic(user, password))
    };
    let seen = with(ALICE.0, ALICE.1).send().await.seen();
    assert_eq!(seen.one("remote-user"), Some("alice"));
    assert_eq!(seen.one("remote-groups"), Some("admins,dev"));

    let assert_challenge = |reply: &Reply, what: &str| {
        assert_eq!(reply.status, 401, "{what}: {reply:?}");
        assert_eq!(
            reply.header("www-authenticate"),
            Some("Basic realm=\"Authorization Required\""),
            "{what}: {reply:?}"
        );
    };
    let before = stack.upstream.count();
    for attempt in 1..=3 {
        let reply = with(BOB.0, "wrong-password").send().await;
        assert_challenge(&reply, &format!("wrong password, attempt {attempt}"));
    }
    // Three failures ban bob: his right password is refused too, and the ban holds.
    for attempt in 1..=2 {
        let reply = with(BOB.0, BOB.1).send().await;
        assert_challenge(
            &reply,
            &format!("banned bob, right password, try {attempt}"),
        );
    }
    assert_eq!(stack.upstream.count(), before);
    // The ban is bob's: alice still passes.
    let seen = with(ALICE.0, ALICE.1).send().await.seen();
    assert_eq!(seen.one("remote-user"), Some("alice"));
}

/// Item 8.
pub async fn websocket_needs_login_then_works(proxy: Proxy) {
    let Some(stack) = stack(proxy).await else {
        return;
    };
    let c = &stack.client;
    match c.websocket("app", "/ws", &[]).await {
        Ok(_) => panic!("anonymous WebSocket upgrade accepted"),
        Err(status) => assert!(
            status == 401 || status == 302,
            "anonymous upgrade: {status}"
        ),
    }
    assert_eq!(stack.upstream.count(), 0);

    let alice = c.login(ALICE.0, ALICE.1).await;
    let mut socket = c
        .websocket("app", "/ws", &[("cookie", alice.as_str())])
        .await
        .unwrap_or_else(|status| panic!("logged-in upgrade refused: {status}"));
    for text in ["hello", "through the proxy"] {
        socket.send(Message::text(text)).await.expect("send");
        let reply = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("an echo within 10 s")
            .expect("an echo")
            .expect("a message");
        assert_eq!(
            reply.into_text().expect("text").as_str(),
            format!("echo: {text}")
        );
    }
    let _ = socket.close(None).await;
    let seen = stack.upstream.seen();
    let upgrade = seen.last().expect("the upgrade request");
    assert_eq!(upgrade.one("remote-user"), Some("alice"));
    assert_eq!(
        upgrade
            .one("upgrade")
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("websocket")
    );
}

/// Portcullis unreachable: the proxy answers an error, never the application. (HAProxy's Lua
/// HTTP client retries a refused connection three times, a second apart, before its 503.)
pub async fn unreachable_verify_fails_closed(proxy: Proxy) {
    let Some(mut stack) = stack(proxy).await else {
        return;
    };
    let alice = stack.client.login(ALICE.0, ALICE.1).await;
    stack.verify.stop().await;
    for (host, path, cookie) in [
        ("app", "/", ""),
        ("app", "/", alice.as_str()),
        ("public", "/", ""),
    ] {
        let reply = stack.client.get(host, path).cookie(cookie).send().await;
        eprintln!("{}: Portcullis down: {}", proxy.name(), reply.status);
        assert!(
            (500..600).contains(&reply.status),
            "{host} {path} with Portcullis down: {reply:?}"
        );
    }
    assert_eq!(stack.upstream.count(), 0, "{:?}", stack.upstream.seen());
}
