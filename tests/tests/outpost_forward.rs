//! portcullis-outpost's forward auth behind real proxies, each test a whole login without a
//! browser engine: the example configurations of `examples/outpost/` (the outpost files, the
//! proxies' files, portcullis-verify's client list `verify-idp.yml`) rendered and run
//! (tests/src/outpost.rs). portcullis-verify is the OpenID provider, built by its `App::build`
//! and published by the proxy at `https://auth.example.com:<port>`; the outpost, built by its
//! `App::build`, asks it under that name through the proxy; the application is the recording
//! upstream; the user logs in through the portal API, as the portal page's script does.
//!
//! - nginx, `nginx-single.conf` (authentik's documented block): 401 → `/start?rd=` → the
//!   provider → the callback on the application host → the application, which sees the identity
//!   nginx set (a client's own `X-authentik-username` never reaches it as sent); sign-out goes to
//!   the provider's end-session endpoint and the old cookie stops working.
//! - nginx, `nginx-domain.conf`: one login on the auth host opens every host of the domain; a
//!   `rd` outside the domain is not followed.
//! - nginx, `nginx-single.conf`: a client's own `X-Original-URI` must not choose the URL the
//!   outpost judges. It does today (the outpost prefers that header, spec §5.1, and authentik's
//!   block passes it on to the auth subrequest), so this test fails until the outpost ignores it
//!   when `X-Original-URL` is present; examples/outpost/README.md gives the nginx line that closes
//!   it meanwhile.
//! - Caddy (Debian's and the current release), Traefik and HAProxy (`outpost.lua`): the login,
//!   all twelve `X-authentik-*` headers at the application and none of a client's copies (on the
//!   allow-listed path neither), and a client's `X-Forwarded-Uri` does not choose the URL judged.

// Tests wait for real processes and sockets on the wall clock; the clock rule is for the servers.
#![allow(clippy::disallowed_methods)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use portcullis_tests::outpost::{
    ALICE_ENTITLEMENTS, Front, IDENTITY_HEADERS, OutpostStack, assert_authorize, deletes,
    jwt_claims, login_hop, param, provider_login, session_cookie,
};
use portcullis_tests::users::{ALICE, BOB};

#[tokio::test]
async fn nginx_single_logs_in_sets_identity_overwrites_spoofs_and_signs_out() {
    let Some(stack) = OutpostStack::start(Front::NginxSingle).await else {
        return;
    };
    let name = stack.cookie_name();
    let mut b = stack.browser();
    let dashboard = stack.url("app", "/dashboard?tab=1");

    // Anonymous: the outpost's 401 becomes nginx's 302 to /start, with the outpost's cookie.
    let r = b
        .get(&dashboard, &[("x-authentik-username", "alice")])
        .await;
    assert_eq!(r.status, 302, "{r:?}");
    let start = url::Url::parse(&stack.url("app", "/"))
        .unwrap()
        .join(r.header("location").unwrap())
        .unwrap()
        .to_string();
    assert!(
        start.starts_with(&stack.url("app", "/outpost.goauthentik.io/start?")),
        "{start}"
    );
    assert_eq!(param(&start, "rd").as_deref(), Some("/dashboard?tab=1"));
    let pre = session_cookie(&r, &name, None);
    assert_eq!(stack.upstream.count(), 0, "nothing reached the application");

    // /start: straight to the provider, the pre-login cookie kept (the state is bound to it).
    let r = b.get(&start, &[]).await;
    assert_eq!(r.status, 302, "{r:?}");
    let authorize = r.header("location").unwrap().to_owned();
    assert_authorize(&stack, &authorize, "outpost-app", "app");
    let callback = provider_login(&stack, &mut b, &authorize, ALICE).await;
    assert!(
        callback.starts_with(&stack.url(
            "app",
            "/outpost.goauthentik.io/callback?X-authentik-auth-callback=true&"
        )),
        "{callback}"
    );

    // The callback, through nginx's `location /outpost.goauthentik.io`: a fresh session cookie
    // and back to where the user was going.
    let r = b.get(&callback, &[]).await;
    assert_eq!(r.status, 302, "{r:?}");
    assert_eq!(r.header("location"), Some(dashboard.as_str()));
    let session = session_cookie(&r, &name, None);
    assert_ne!(session, pre, "a fresh session id at login");

    // The application, with the identity nginx set from the outpost's answer. The client's own
    // copies (any case, and the underscore spelling nginx drops) never reach it.
    let r = b
        .get(
            &dashboard,
            &[
                ("X-authentik-username", "mallory"),
                ("x-AUTHENTIK-groups", "admins|root"),
                ("X_authentik_email", "mallory@evil.example"),
            ],
        )
        .await;
    let seen = r.seen();
    assert_eq!(seen.uri, "/dashboard?tab=1");
    assert_eq!(seen.one("x-authentik-username"), Some("alice"));
    assert_eq!(seen.one("x-authentik-groups"), Some("admins|dev"));
    assert_eq!(seen.one("x-authentik-email"), Some("alice@example.com"));
    assert_eq!(seen.one("x-authentik-name"), Some("Alice Liddell"));
    let uid = seen.one("x-authentik-uid").unwrap().to_owned();
    assert!(
        !uid.is_empty() && uid != "alice",
        "uid is the provider's subject: {uid}"
    );
    assert_eq!(
        seen.header_names_like("x-authentik-email"),
        ["x-authentik-email"]
    );
    assert_eq!(stack.upstream.count(), 1);

    // Another browser, with no session, cannot claim an identity with the header.
    let mut other = stack.browser();
    let r = other
        .get(&dashboard, &[("X-authentik-username", "alice")])
        .await;
    assert_eq!(r.status, 302, "{r:?}");
    assert_eq!(stack.upstream.count(), 1, "the application was not reached");

    // A `rd` to another host is not followed: after the (silent) login the user lands on the
    // external host.
    let trail = b
        .browse(
            &stack.url(
                "app",
                "/outpost.goauthentik.io/start?rd=https%3A%2F%2Fevil.example.org%2Fsteal",
            ),
            &[],
            login_hop,
        )
        .await;
    assert_eq!(
        trail.last().location().as_deref(),
        Some(stack.url("app", "/").as_str()),
        "{:#?}",
        trail.urls()
    );

    // Sign-out: every session of alice ends, the browser goes to the provider's end-session
    // endpoint with the ID token as hint, and the cookie is deleted.
    let r = b
        .get(&stack.url("app", "/outpost.goauthentik.io/sign_out"), &[])
        .await;
    assert_eq!(r.status, 302, "{r:?}");
    let end = r.header("location").unwrap().to_owned();
    assert!(
        end.starts_with(&stack.url("auth", "/api/oidc/end-session?id_token_hint=")),
        "{end}"
    );
    let hint = jwt_claims(&param(&end, "id_token_hint").unwrap());
    assert_eq!(hint["iss"], stack.url("auth", ""));
    assert_eq!(hint["sub"], uid.as_str());
    assert!(deletes(&r, &name), "the cookie is deleted: {r:?}");
    // portcullis-verify accepts that hint (its logout page, not an error).
    let r = b.get(&end, &[]).await;
    assert!(
        r.status < 400,
        "end-session refused the outpost's hint: {r:?}"
    );

    // The old cookie no longer passes: nginx sends the browser to /start again.
    let mut old = stack.browser();
    let r = old.get(&dashboard, &[("cookie", &session)]).await;
    assert_eq!(r.status, 302, "{r:?}");
    assert!(
        r.header("location")
            .unwrap()
            .contains("/outpost.goauthentik.io/start?rd="),
        "{r:?}"
    );
    assert_eq!(stack.upstream.count(), 1, "the application was not reached");
}

#[tokio::test]
async fn nginx_single_a_client_x_original_uri_does_not_open_the_application() {
    let Some(stack) = OutpostStack::start(Front::NginxSingle).await else {
        return;
    };
    // The allow-listed path passes without login (skip_path_regex ^/healthz$), and a client's
    // identity header does not come with it (nginx's proxy_set_header with an empty value).
    let mut b = stack.browser();
    let r = b
        .get(
            &stack.url("app", "/healthz"),
            &[("x-authentik-username", "alice")],
        )
        .await;
    let seen = r.seen();
    assert_eq!(seen.uri, "/healthz");
    assert!(
        seen.one("x-authentik-username").is_none_or(str::is_empty),
        "{seen:?}"
    );
    let reached = stack.upstream.count();
    // authentik's nginx block sets X-Original-URL for the auth subrequest and passes every other
    // client header on to it. The outpost prefers X-Original-URI (spec §5.1), so a client that
    // sends one chooses the URL the outpost judges: an outpost path (the anonymous pass-through)
    // or an allow-listed one. Neither may open /secret without a login.
    let mut opened = Vec::new();
    for spoof in ["/outpost.goauthentik.io/ping", "/healthz"] {
        let mut b = stack.browser();
        let r = b
            .get(&stack.url("app", "/secret"), &[("x-original-uri", spoof)])
            .await;
        if r.status != 302 {
            opened.push(format!("X-Original-URI: {spoof} → {} {}", r.status, r.body));
        }
    }
    assert!(
        opened.is_empty(),
        "a client-sent X-Original-URI opened /secret anonymously:\n{}",
        opened.join("\n")
    );
    assert_eq!(
        stack.upstream.count(),
        reached,
        "the application was reached anonymously"
    );
}

#[tokio::test]
async fn nginx_domain_one_login_opens_every_host_and_rd_stays_in_the_domain() {
    let Some(stack) = OutpostStack::start(Front::NginxDomain).await else {
        return;
    };
    let name = stack.cookie_name();
    let mut b = stack.browser();
    let dashboard = stack.url("app", "/dashboard");

    // Anonymous at app: to the auth host's /start with the full URL, and a pre-login cookie for
    // the whole domain.
    let r = b.get(&dashboard, &[]).await;
    assert_eq!(r.status, 302, "{r:?}");
    let start = r.header("location").unwrap().to_owned();
    assert_eq!(
        start,
        format!(
            "{}?rd={dashboard}",
            stack.url("auth", "/outpost.goauthentik.io/start")
        )
    );
    session_cookie(&r, &name, Some("example.com"));
    let r = b.get(&start, &[]).await;
    assert_eq!(r.status, 302, "{r:?}");
    let authorize = r.header("location").unwrap().to_owned();
    assert_authorize(&stack, &authorize, "outpost-domain", "auth");
    let callback = provider_login(&stack, &mut b, &authorize, BOB).await;
    assert!(
        callback.starts_with(&stack.url("auth", "/outpost.goauthentik.io/callback?")),
        "the login returns to the auth host: {callback}"
    );
    let r = b.get(&callback, &[]).await;
    assert_eq!(r.status, 302, "{r:?}");
    assert_eq!(r.header("location"), Some(dashboard.as_str()));
    session_cookie(&r, &name, Some("example.com"));
    let seen = b.get(&dashboard, &[]).await.seen();
    assert_eq!(seen.one("x-authentik-username"), Some("bob"));
    assert_eq!(seen.one("x-authentik-groups"), Some("dev"));

    // Another host of the domain: no login, the same identity, at once.
    let r = b
        .get(
            &stack.url("wiki", "/page"),
            &[("x-authentik-username", "alice")],
        )
        .await;
    let seen = r.seen();
    assert_eq!(seen.uri, "/page");
    assert_eq!(seen.one("x-authentik-username"), Some("bob"));
    assert_eq!(seen.one("x-authentik-email"), Some("bob@example.com"));
    assert_eq!(stack.upstream.count(), 2);

    // rd: a host of the domain is where the (now silent) login ends; anything else is not
    // followed, and the user lands on the auth host instead.
    let after_start = |rd: &str| {
        format!(
            "{}?rd={}",
            stack.url("auth", "/outpost.goauthentik.io/start"),
            form_urlencoded::byte_serialize(rd.as_bytes()).collect::<String>()
        )
    };
    let inside = stack.url("wiki", "/deep/link?x=1");
    let trail = b.browse(&after_start(&inside), &[], login_hop).await;
    assert_eq!(
        trail.last().location().as_deref(),
        Some(inside.as_str()),
        "{:#?}",
        trail.urls()
    );
    for outside in [
        "https://evil.example.org/",
        "https://evilexample.com/",
        "https://example.com.evil.org/",
        "javascript:alert(1)",
    ] {
        let trail = b.browse(&after_start(outside), &[], login_hop).await;
        assert_eq!(
            trail.last().location().as_deref(),
            Some(stack.url("auth", "/").as_str()),
            "rd={outside}: {:#?}",
            trail.urls()
        );
    }

    // Sign-out on one host ends the domain's session on every host.
    let r = b
        .get(&stack.url("wiki", "/outpost.goauthentik.io/sign_out"), &[])
        .await;
    assert_eq!(r.status, 302, "{r:?}");
    assert!(
        r.header("location")
            .unwrap()
            .starts_with(&stack.url("auth", "/api/oidc/end-session?id_token_hint=")),
        "{r:?}"
    );
    let before = stack.upstream.count();
    let r = b.get(&dashboard, &[]).await;
    assert_eq!(r.status, 302, "{r:?}");
    assert_eq!(stack.upstream.count(), before);
}

/// The login behind a Traefik-style asker (Caddy, Traefik, HAProxy): the check's 302 goes to the
/// provider directly, the callback comes back on the application host, and the application sees
/// all twelve headers, a client's own copies replaced.
async fn forward_single_login_and_identity(front: Front) {
    let Some(stack) = OutpostStack::start(front).await else {
        return;
    };
    let name = stack.cookie_name();
    let mut b = stack.browser();
    let dashboard = stack.url("app", "/dashboard?tab=1");

    let r = b.get(&dashboard, &[]).await;
    assert_eq!(r.status, 302, "{r:?}");
    let authorize = r.header("location").unwrap().to_owned();
    assert_authorize(&stack, &authorize, "outpost-app", "app");
    let pre = session_cookie(&r, &name, None);
    assert_eq!(stack.upstream.count(), 0);
    let callback = provider_login(&stack, &mut b, &authorize, ALICE).await;
    assert!(
        callback.starts_with(&stack.url(
            "app",
            "/outpost.goauthentik.io/callback?X-authentik-auth-callback=true&"
        )),
        "{callback}"
    );
    let r = b.get(&callback, &[]).await;
    assert_eq!(r.status, 302, "{r:?}");
    assert_eq!(r.header("location"), Some(dashboard.as_str()));
    let session = session_cookie(&r, &name, None);
    assert_ne!(session, pre);

    let spoofs: Vec<(String, String)> = IDENTITY_HEADERS
        .iter()
        .map(|h| (h.to_lowercase(), format!("spoofed-{h}")))
        .collect();
    let spoof_refs: Vec<(&str, &str)> = spoofs
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let r = b.get(&dashboard, &spoof_refs).await;
    let seen = r.seen();
    assert_eq!(seen.uri, "/dashboard?tab=1");
    assert_eq!(seen.one("x-authentik-username"), Some("alice"));
    assert_eq!(seen.one("x-authentik-groups"), Some("admins|dev"));
    assert_eq!(seen.one("x-authentik-email"), Some("alice@example.com"));
    assert_eq!(seen.one("x-authentik-name"), Some("Alice Liddell"));
    let uid = seen.one("x-authentik-uid").unwrap();
    let jwt = jwt_claims(seen.one("x-authentik-jwt").unwrap());
    assert_eq!(jwt["sub"], uid, "X-authentik-uid is the token's subject");
    assert_eq!(jwt["iss"], stack.url("auth", ""));
    assert!(
        jwt["aud"] == "outpost-app"
            || jwt["aud"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x == "outpost-app")),
        "{jwt}"
    );
    assert_eq!(
        seen.one("x-authentik-meta-jwks"),
        Some(stack.url("auth", "/jwks.json").as_str())
    );
    assert_eq!(seen.one("x-authentik-meta-outpost"), Some("portcullis"));
    assert_eq!(seen.one("x-authentik-meta-provider"), Some("app"));
    assert_eq!(seen.one("x-authentik-meta-app"), Some("app"));
    assert!(
        seen.one("x-authentik-meta-version")
            .unwrap()
            .starts_with("goauthentik.io/outpost/"),
        "{seen:?}"
    );
    assert_eq!(
        seen.one("x-authentik-entitlements"),
        Some(ALICE_ENTITLEMENTS.join("|").as_str())
    );
    for (header, value) in &spoofs {
        assert!(
            !seen.all(header).contains(&value.as_str()),
            "the client's {header} reached the application: {seen:?}"
        );
    }

    // Without the session, no access.
    let mut other = stack.browser();
    let r = other
        .get(&dashboard, &[("x-authentik-username", "alice")])
        .await;
    assert_eq!(r.status, 302, "{r:?}");
    assert_eq!(stack.upstream.count(), 1);

    // The proxy, not the client, tells the outpost which URL is asked for: a client's own
    // X-Forwarded-Uri (or X-Original-URI) naming the allow-listed path does not open /secret.
    let mut opened = Vec::new();
    for spoof in ["/healthz", "/outpost.goauthentik.io/ping"] {
        let r = other
            .get(
                &stack.url("app", "/secret"),
                &[
                    ("x-forwarded-uri", spoof),
                    ("x-original-uri", spoof),
                    ("x-forwarded-proto", "https"),
                ],
            )
            .await;
        if r.status != 302 {
            opened.push(format!("{spoof} → {} {}", r.status, r.body));
        }
    }
    assert!(
        opened.is_empty(),
        "a client's forwarded URI opened /secret: {opened:?}"
    );
    assert_eq!(stack.upstream.count(), 1);

    // The allow-listed path (skip_path_regex ^/healthz$) passes without login; the outpost's
    // answer carries the twelve headers, user ones empty (spec §14 item 10), so the proxy
    // overwrites the client's copies there too.
    let r = other.get(&stack.url("app", "/healthz"), &spoof_refs).await;
    let seen = r.seen();
    assert_eq!(seen.uri, "/healthz");
    for (header, value) in &spoofs {
        assert!(
            !seen.all(header).contains(&value.as_str()),
            "the client's {header} reached the application on an allow-listed path: {seen:?}"
        );
    }
    assert!(
        seen.one("x-authentik-username").is_none_or(str::is_empty),
        "{seen:?}"
    );
}

#[tokio::test]
async fn caddy_logs_in_and_the_application_sees_the_identity() {
    forward_single_login_and_identity(Front::Caddy).await;
}

#[tokio::test]
async fn caddy_current_logs_in_and_the_application_sees_the_identity() {
    forward_single_login_and_identity(Front::CaddyCurrent).await;
}

#[tokio::test]
async fn traefik_logs_in_and_the_application_sees_the_identity() {
    forward_single_login_and_identity(Front::Traefik).await;
}

#[tokio::test]
async fn haproxy_logs_in_and_the_application_sees_the_identity() {
    forward_single_login_and_identity(Front::Haproxy).await;
}
