//! portcullis-outpost in proxy mode from `examples/outpost/outpost-proxy.yml`, against
//! portcullis-verify with `examples/outpost/verify-idp.yml`, no proxy in front
//! (tests/src/outpost.rs, `Front::ProxyMode`): the outpost serves `https://files.example.com` on
//! its own TLS listener, portcullis-verify serves `https://auth.example.com` on its own. A whole
//! login without a browser engine; the application sees the twelve `X-authentik-*` headers, the
//! browser's Host and none of a client's identity headers, on allow-listed paths neither; a
//! refused `Authorization` is the 401 page; sign-out ends the session.

// Tests wait for real processes and sockets on the wall clock; the clock rule is for the servers.
#![allow(clippy::disallowed_methods)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use portcullis_tests::outpost::{
    ALICE_ENTITLEMENTS, Front, IDENTITY_HEADERS, OutpostStack, assert_authorize, deletes,
    jwt_claims, param, provider_login, session_cookie,
};
use portcullis_tests::users::ALICE;

#[tokio::test]
async fn proxy_mode_logs_in_proxies_with_identity_and_signs_out() {
    let Some(stack) = OutpostStack::start(Front::ProxyMode).await else {
        return;
    };
    let name = stack.cookie_name();
    let mut b = stack.browser();
    let docs = stack.url("files", "/docs/index.html?lang=en");

    // Anonymous: to the outpost's /start with this URL (its query kept) to come back to.
    let r = b.get(&docs, &[]).await;
    assert_eq!(r.status, 302, "{r:?}");
    let start = r.header("location").unwrap().to_owned();
    assert!(
        start.starts_with(&stack.url("files", "/outpost.goauthentik.io/start?rd=")),
        "{start}"
    );
    assert_eq!(param(&start, "rd").as_deref(), Some(docs.as_str()));
    assert_eq!(stack.upstream.count(), 0);
    let r = b.get(&start, &[]).await;
    assert_eq!(r.status, 302, "{r:?}");
    let pre = session_cookie(&r, &name, None);
    let authorize = r.header("location").unwrap().to_owned();
    assert_authorize(&stack, &authorize, "outpost-files", "files");
    let callback = provider_login(&stack, &mut b, &authorize, ALICE).await;
    let r = b.get(&callback, &[]).await;
    assert_eq!(r.status, 302, "{r:?}");
    assert_eq!(r.header("location"), Some(docs.as_str()));
    let session = session_cookie(&r, &name, None);
    assert_ne!(session, pre, "a fresh session id at login");

    // The application, through the outpost: the twelve headers, the browser's Host, and none of
    // the client's copies (either spelling).
    let mut spoofs: Vec<(String, String)> = Vec::new();
    for h in IDENTITY_HEADERS {
        spoofs.push((h.to_lowercase(), format!("spoofed-{h}")));
        spoofs.push((h.to_lowercase().replace('-', "_"), format!("spoofed_{h}")));
    }
    let spoof_refs: Vec<(&str, &str)> = spoofs
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let seen = b.get(&docs, &spoof_refs).await.seen();
    assert_eq!(seen.uri, "/docs/index.html?lang=en");
    assert_eq!(
        seen.one("host"),
        Some(format!("files.example.com:{}", stack.port).as_str())
    );
    assert_eq!(
        seen.one("x-forwarded-host"),
        Some(format!("files.example.com:{}", stack.port).as_str())
    );
    assert_eq!(seen.one("x-authentik-username"), Some("alice"));
    assert_eq!(seen.one("x-authentik-groups"), Some("admins|dev"));
    assert_eq!(seen.one("x-authentik-email"), Some("alice@example.com"));
    assert_eq!(seen.one("x-authentik-name"), Some("Alice Liddell"));
    assert_eq!(
        seen.one("x-authentik-entitlements"),
        Some(ALICE_ENTITLEMENTS.join("|").as_str())
    );
    let uid = seen.one("x-authentik-uid").unwrap().to_owned();
    let jwt = jwt_claims(seen.one("x-authentik-jwt").unwrap());
    assert_eq!(jwt["sub"], uid.as_str());
    assert_eq!(jwt["iss"], stack.url("auth", ""));
    assert_eq!(
        seen.one("x-authentik-meta-jwks"),
        Some(stack.url("auth", "/jwks.json").as_str())
    );
    assert_eq!(seen.one("x-authentik-meta-provider"), Some("files"));
    assert_eq!(seen.one("x-authentik-meta-app"), Some("files"));
    assert_eq!(seen.one("x-authentik-meta-outpost"), Some("portcullis"));
    for h in IDENTITY_HEADERS {
        assert_eq!(
            seen.header_names_like(&h.to_lowercase()),
            [h.to_lowercase()],
            "{h} exactly once, dash-spelled: {seen:?}"
        );
    }
    for (header, value) in &spoofs {
        assert!(
            !seen.all(header).contains(&value.as_str()),
            "the client's {header} reached the application: {seen:?}"
        );
    }

    // Another browser: the allow-listed path (^/public/) passes without login and without any
    // identity header, the client's included; elsewhere a refused Authorization is the 401 page.
    let mut other = stack.browser();
    let seen = other
        .get(&stack.url("files", "/public/logo.png"), &spoof_refs)
        .await
        .seen();
    assert_eq!(seen.uri, "/public/logo.png");
    for h in IDENTITY_HEADERS {
        assert!(
            seen.header_names_like(&h.to_lowercase()).is_empty(),
            "{h} on an allow-listed path: {seen:?}"
        );
    }
    let reached = stack.upstream.count();
    let r = other
        .get(&docs, &[("authorization", "Bearer not-a-token")])
        .await;
    assert_eq!(r.status, 401, "{r:?}");
    assert!(r.body.contains("Unauthenticated"), "{}", r.body);
    assert_eq!(stack.upstream.count(), reached);

    // Sign-out: to the provider's end-session endpoint, the cookie deleted, the session over.
    let r = b
        .get(&stack.url("files", "/outpost.goauthentik.io/sign_out"), &[])
        .await;
    assert_eq!(r.status, 302, "{r:?}");
    let end = r.header("location").unwrap().to_owned();
    assert!(
        end.starts_with(&stack.url("auth", "/api/oidc/end-session?id_token_hint=")),
        "{end}"
    );
    assert!(deletes(&r, &name), "{r:?}");
    let mut old = stack.browser();
    let r = old.get(&docs, &[("cookie", &session)]).await;
    assert_eq!(r.status, 302, "{r:?}");
    assert_eq!(stack.upstream.count(), reached);
}
