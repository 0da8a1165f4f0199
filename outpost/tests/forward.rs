//! Forward auth (docs/reference/outpost.md §3–§8, §14) through the router, against the fake
//! provider of `common`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::body::Body;
use common::*;
use http::{Request, StatusCode};
use serde_json::json;

const IDENTITY_HEADERS: [&str; 12] = [
    "x-authentik-username",
    "x-authentik-groups",
    "x-authentik-entitlements",
    "x-authentik-email",
    "x-authentik-name",
    "x-authentik-uid",
    "x-authentik-jwt",
    "x-authentik-meta-jwks",
    "x-authentik-meta-outpost",
    "x-authentik-meta-provider",
    "x-authentik-meta-app",
    "x-authentik-meta-version",
];

async fn single(extra: &str) -> Outpost {
    let idp = start_idp().await;
    let p = provider_yaml(
        &idp,
        "app",
        "forward_single",
        "https://app.example.com",
        extra,
    );
    outpost(&idp, &p).await
}

fn traefik(uri: &str) -> Vec<(&'static str, String)> {
    vec![
        ("x-forwarded-proto", "https".into()),
        ("x-forwarded-host", "app.example.com".into()),
        ("x-forwarded-uri", uri.into()),
        ("user-agent", "test-agent/1".into()),
    ]
}

async fn ask(
    o: &Outpost,
    endpoint: &str,
    headers: &[(&str, String)],
    cookie: Option<&str>,
) -> Reply {
    let mut b = Request::get(format!("/outpost.goauthentik.io/auth/{endpoint}"))
        .header("host", "outpost.internal:9000");
    for (k, v) in headers {
        b = b.header(*k, v.as_str());
    }
    if let Some(c) = cookie {
        b = b.header("cookie", c);
    }
    o.send(b.body(Body::empty()).unwrap()).await
}

/// Log in through Traefik: the check's 302, the provider's return to the callback signature on
/// the application's host, and the session cookie.
async fn login(o: &Outpost, user: &str) -> String {
    let first = ask(o, "traefik", &traefik("/dashboard?tab=1"), None).await;
    assert_eq!(first.status, StatusCode::FOUND, "{}", first.body);
    let pre = first.session_cookie().expect("a pre-login cookie");
    let state = param(first.location(), "state").unwrap();
    o.idp.will_issue(&o.idp.claims("app", user));
    let back = ask(
        o,
        "traefik",
        &traefik(&format!(
            "/dashboard?X-authentik-auth-callback=true&code=c-1&state={state}"
        )),
        Some(&pre),
    )
    .await;
    assert_eq!(back.status, StatusCode::FOUND, "{}", back.body);
    assert_eq!(back.location(), "https://app.example.com/dashboard?tab=1");
    let cookie = back.session_cookie().expect("a session cookie");
    assert_ne!(cookie, pre, "a fresh id at login");
    cookie
}

#[tokio::test]
async fn outpost_level_routes() {
    let o = single("").await;
    for host in ["app.example.com", "anything.invalid"] {
        let r = o
            .get("/outpost.goauthentik.io/ping/extra", &[("host", host)])
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        assert!(r.body.is_empty());
    }
    let css = o
        .get(
            "/outpost.goauthentik.io/static/outpost.css",
            &[("host", "x")],
        )
        .await;
    assert_eq!(css.status, StatusCode::OK);
    assert_eq!(css.header("content-type"), Some("text/css; charset=utf-8"));
    // With one provider every host is it; the cleaned path is a 301 before any auth.
    let r = o
        .get(
            "//outpost.goauthentik.io//auth/./nginx?x=1",
            &[("host", "other.example.com")],
        )
        .await;
    assert_eq!(r.status, StatusCode::MOVED_PERMANENTLY);
    assert_eq!(r.location(), "/outpost.goauthentik.io/auth/nginx?x=1");
    let r = o.get("/unknown", &[("host", "app.example.com")]).await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (StatusCode::NOT_FOUND, "404 page not found\n")
    );
}

#[tokio::test]
async fn an_unknown_host_is_the_reference_json() {
    let idp = start_idp().await;
    let p = format!(
        "{}{}",
        provider_yaml(&idp, "a", "forward_single", "https://a.example.com", ""),
        provider_yaml(&idp, "b", "forward_single", "https://b.example.com", "")
    );
    let o = outpost(&idp, &p).await;
    let r = o
        .get(
            "/outpost.goauthentik.io/auth/nginx",
            &[("host", "c.example.com")],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.body,
        "{\n\t\"Detail\": \"Check the outpost settings and make sure 'c.example.com' is included.\",\n\t\"Host\": \"c.example.com\",\n\t\"Message\": \"no app for hostname\"\n}"
    );
    // X-Forwarded-Host picks the app, but only from a trusted peer.
    let r = o
        .get(
            "/outpost.goauthentik.io/auth/nginx",
            &[
                ("host", "c.example.com"),
                ("x-forwarded-host", "b.example.com"),
            ],
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "b chosen; no X-Original-URI: {}",
        r.body
    );
    let r = o
        .send_from(
            "203.0.113.9",
            Request::get("/outpost.goauthentik.io/ping")
                .header("host", "c.example.com")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = o
        .send_from(
            "203.0.113.9",
            Request::get("/outpost.goauthentik.io/auth/nginx")
                .header("host", "c.example.com")
                .header("x-forwarded-host", "b.example.com")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "untrusted: Host decides");
}

#[tokio::test]
async fn nginx_answers_401_then_200_with_every_header() {
    let o = single("").await;
    let nginx = |uri: &str| {
        vec![
            ("x-original-uri", uri.to_owned()),
            ("x-forwarded-host", "app.example.com".into()),
            ("x-forwarded-proto", "https".into()),
        ]
    };
    let r = ask(&o, "nginx", &nginx("/admin"), None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body, "unauthorized request\n");
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert!(
        r.session_cookie()
            .unwrap()
            .starts_with("authentik_proxy_a172cedc=")
    );
    for h in IDENTITY_HEADERS {
        assert!(r.header(h).is_none(), "no {h} on a 401");
    }
    // The outpost's own paths pass, with the twelve headers, user ones empty.
    let r = ask(
        &o,
        "nginx",
        &nginx("/outpost.goauthentik.io/start?rd=/x"),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    for h in IDENTITY_HEADERS {
        assert!(r.header(h).is_some(), "{h}");
    }
    assert_eq!(r.header("x-authentik-username"), Some(""));
    assert_eq!(r.header("x-authentik-meta-provider"), Some("app"));
    assert_eq!(
        r.header("x-authentik-meta-jwks"),
        Some(format!("{}/jwks", o.idp.issuer).as_str())
    );
    assert!(
        r.header("x-authentik-meta-version")
            .unwrap()
            .starts_with("goauthentik.io/outpost/")
    );
    // Neither header, or an unparsable one: 500 configuration error.
    let r = ask(&o, "nginx", &[], None).await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (StatusCode::INTERNAL_SERVER_ERROR, "configuration error\n")
    );
    let r = ask(&o, "nginx", &[("x-original-url", "not a url".into())], None).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    // An X-Original-URI query is the query, not part of the path (§14: split).
    let cookie = login(&o, "alice").await;
    let r = ask(&o, "nginx", &nginx("/admin?x=1"), Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("x-authentik-username"), Some("alice"));
    assert_eq!(r.header("x-authentik-groups"), Some("users|alice-group"));
    assert_eq!(r.header("x-authentik-entitlements"), Some("read"));
    assert_eq!(r.header("x-authentik-email"), Some("alice@example.com"));
    assert_eq!(r.header("x-authentik-name"), Some("User alice"));
    assert_eq!(r.header("x-authentik-uid"), Some("sub-alice"));
    assert_eq!(r.header("x-authentik-meta-outpost"), Some("portcullis"));
    assert!(r.header("x-authentik-jwt").unwrap().starts_with("eyJ"));
}

#[tokio::test]
async fn traefik_redirects_to_the_provider_with_state_and_pkce() {
    let o = single("").await;
    let r = ask(&o, "traefik", &traefik("/a?b=c"), None).await;
    assert_eq!(r.status, StatusCode::FOUND);
    let location = r.location().to_owned();
    assert!(
        location.starts_with(&format!("{}/authorize?", o.idp.issuer)),
        "{location}"
    );
    let names: Vec<String> = url::Url::parse(&location)
        .unwrap()
        .query_pairs()
        .map(|(k, _)| k.into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "client_id",
            "code_challenge",
            "code_challenge_method",
            "redirect_uri",
            "response_type",
            "scope",
            "state"
        ],
        "alphabetical"
    );
    assert_eq!(
        param(&location, "redirect_uri").unwrap(),
        "https://app.example.com/outpost.goauthentik.io/callback?X-authentik-auth-callback=true"
    );
    assert_eq!(
        param(&location, "scope").unwrap(),
        "openid email profile entitlements ak_proxy"
    );
    assert_eq!(param(&location, "code_challenge_method").unwrap(), "S256");
    let cookie = r.cookies().join("\n");
    assert!(
        cookie.contains("; Path=/")
            && cookie.contains("; HttpOnly")
            && cookie.contains("; Secure")
            && cookie.contains("; SameSite=Lax"),
        "{cookie}"
    );
    // Caddy is the same logic; Envoy too, with the path after the prefix.
    let r = ask(&o, "caddy", &traefik("/a"), None).await;
    assert_eq!(r.status, StatusCode::FOUND);
    let envoy = o
        .get(
            "/outpost.goauthentik.io/auth/envoy/a/b?c=d",
            &[("host", "app.example.com")],
        )
        .await;
    assert_eq!(envoy.status, StatusCode::FOUND, "{}", envoy.body);
    // No X-Forwarded-Proto: the URL cannot be built.
    let r = ask(
        &o,
        "traefik",
        &[("x-forwarded-host", "app.example.com".into())],
        None,
    )
    .await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (StatusCode::INTERNAL_SERVER_ERROR, "configuration error\n")
    );
    // The PKCE verifier reaches the token endpoint at the callback.
    let cookie = login(&o, "alice").await;
    assert!(!cookie.is_empty());
    let forms = o.idp.token_forms.lock().unwrap().clone();
    let form = forms.last().unwrap();
    let get = |n: &str| form.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    assert_eq!(get("grant_type").as_deref(), Some("authorization_code"));
    assert_eq!(get("client_secret").as_deref(), Some(CLIENT_SECRET));
    assert_eq!(get("code").as_deref(), Some("c-1"));
    let verifier = get("code_verifier").unwrap();
    let state_location = ask(&o, "traefik", &traefik("/x"), None).await;
    let challenge = param(state_location.location(), "code_challenge").unwrap();
    assert_ne!(
        challenge,
        portcullis_oidc::pkce::s256(&verifier),
        "one verifier per login"
    );
}

#[tokio::test]
async fn a_login_then_checks_with_the_cookie() {
    let o = single("").await;
    let cookie = login(&o, "alice").await;
    let r = ask(&o, "traefik", &traefik("/anything"), Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.header("user-agent"), Some("test-agent/1"));
    assert_eq!(r.header("x-authentik-username"), Some("alice"));
    assert!(r.body.is_empty());
    // The session outlives nothing: at the token's exp the user logs in again.
    o.advance(3601);
    let r = ask(&o, "traefik", &traefik("/anything"), Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::FOUND);
}

#[tokio::test]
async fn forged_tokens_never_make_a_session() {
    let o = single("").await;
    let idp = &o.idp;
    let good = idp.claims("app", "mallory");
    let mut cases: Vec<(&str, serde_json::Value)> = Vec::new();
    let mut c = good.clone();
    c["iss"] = json!("https://evil.example.com");
    let t = idp.sign(&c);
    cases.push(("wrong iss", json!({"access_token": t, "id_token": t})));
    let mut c = good.clone();
    c["aud"] = json!("another-client");
    let t = idp.sign(&c);
    cases.push(("foreign aud", json!({"access_token": t, "id_token": t})));
    let mut c = good.clone();
    c["exp"] = json!(NOW - 10);
    let t = idp.sign(&c);
    cases.push(("expired", json!({"access_token": t, "id_token": t})));
    use base64::Engine as _;
    let b64 = |v: &serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let none = format!("{}.{}.", b64(&json!({"alg": "none"})), b64(&good));
    cases.push(("alg none", json!({"access_token": none, "id_token": none})));
    // HS256 keyed with the provider's public key material (algorithm confusion).
    let jwk = reqwest::get(format!("{}/jwks", idp.issuer))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let hs = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &good,
        &jsonwebtoken::EncodingKey::from_secret(jwk.as_bytes()).unwrap(),
    )
    .unwrap();
    cases.push((
        "HS256 with the JWKS",
        json!({"access_token": hs, "id_token": hs}),
    ));
    let other = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256),
        &good,
        &jsonwebtoken::EncodingKey::from_ec_pem(OTHER_KEY.as_bytes()).unwrap(),
    )
    .unwrap();
    cases.push((
        "another key",
        json!({"access_token": other, "id_token": other}),
    ));
    cases.push((
        "garbage",
        json!({"access_token": "x.y.z", "id_token": "not-a-jwt"}),
    ));
    cases.push(("no tokens", json!({"token_type": "Bearer"})));
    for (what, answer) in cases {
        let first = ask(&o, "traefik", &traefik("/x"), None).await;
        let pre = first.session_cookie().unwrap();
        let state = param(first.location(), "state").unwrap();
        idp.will_answer(answer);
        let back = ask(
            &o,
            "traefik",
            &traefik(&format!(
                "/x?X-authentik-auth-callback=true&code=c&state={state}"
            )),
            Some(&pre),
        )
        .await;
        assert_eq!(back.status, StatusCode::FOUND, "{what}");
        assert!(
            back.session_cookie().is_none_or(|c| c == pre),
            "{what}: no session cookie"
        );
        // The check after it is still not an allow.
        let r = ask(&o, "traefik", &traefik("/x"), Some(&pre)).await;
        assert_eq!(r.status, StatusCode::FOUND, "{what}");
        assert!(r.header("x-authentik-username").is_none(), "{what}");
    }
}

#[tokio::test]
async fn stale_states_and_cookies_restart_the_login() {
    let o = single("").await;
    let first = ask(&o, "traefik", &traefik("/x"), None).await;
    let state = param(first.location(), "state").unwrap();
    o.idp.will_issue(&o.idp.claims("app", "alice"));
    // Another browser's cookie (or none): the state is not theirs, the login starts again.
    let other = ask(&o, "traefik", &traefik("/y"), None)
        .await
        .session_cookie()
        .unwrap();
    for cookie in [
        Some(other.as_str()),
        None,
        Some("authentik_proxy_a172cedc=forged.value"),
    ] {
        let r = ask(
            &o,
            "traefik",
            &traefik(&format!(
                "/x?X-authentik-auth-callback=true&code=c&state={state}"
            )),
            cookie,
        )
        .await;
        assert_eq!(r.status, StatusCode::FOUND);
        assert!(
            r.location()
                .starts_with(&format!("{}/authorize?", o.idp.issuer)),
            "{}",
            r.location()
        );
    }
    // An expired state (10 minutes) as well.
    let pre = first.session_cookie().unwrap();
    o.advance(601);
    let r = ask(
        &o,
        "traefik",
        &traefik(&format!(
            "/x?X-authentik-auth-callback=true&code=c&state={state}"
        )),
        Some(&pre),
    )
    .await;
    assert!(
        r.location()
            .starts_with(&format!("{}/authorize?", o.idp.issuer))
    );
    // A malformed cookie is deleted and never an allow.
    let r = ask(
        &o,
        "traefik",
        &traefik("/x"),
        Some("authentik_proxy_a172cedc=%%%"),
    )
    .await;
    assert_eq!(r.status, StatusCode::FOUND);
    assert!(r.cookies().iter().any(|c| c.contains("Max-Age=0")));
    // The provider refusing the login is a page, not a loop.
    let r = ask(
        &o,
        "traefik",
        &traefik("/x?X-authentik-auth-callback=true&error=access_denied"),
        Some(&pre),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn allow_listed_paths_get_empty_identity_headers() {
    let o = single("    skip_path_regex: |\n      ^/public/\n").await;
    let r = ask(&o, "traefik", &traefik("/public/logo.png"), None).await;
    assert_eq!(r.status, StatusCode::OK);
    for h in IDENTITY_HEADERS {
        assert!(r.header(h).is_some(), "{h}");
    }
    assert_eq!(r.header("x-authentik-username"), Some(""));
    assert_eq!(r.header("x-authentik-jwt"), Some(""));
    // A dot segment does not escape into the allow-list.
    let r = ask(&o, "traefik", &traefik("/public/../admin"), None).await;
    assert_eq!(r.status, StatusCode::FOUND);
    // Authenticated users still get their identity there.
    let cookie = login(&o, "bob").await;
    let r = ask(&o, "traefik", &traefik("/public/logo.png"), Some(&cookie)).await;
    assert_eq!(r.header("x-authentik-username"), Some("bob"));
}

#[tokio::test]
async fn bearer_tokens_for_this_client_only() {
    let o = single("").await;
    let idp = &o.idp;
    let token = idp.sign(&idp.claims("app", "robot"));
    let mut h = traefik("/api");
    h.push(("authorization", format!("Bearer {token}")));
    let r = ask(&o, "traefik", &h, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.header("x-authentik-username"), Some("robot"));
    assert_eq!(r.header("x-authentik-jwt"), Some(token.as_str()));
    // Checked now: saved as a session with its cookie (§8.1 step 5); the cookie alone then works.
    let cookie = r
        .session_cookie()
        .expect("a session cookie for the header credential");
    let again = ask(&o, "traefik", &h, None).await;
    assert!(
        again.session_cookie().is_none(),
        "a cache hit sets no cookie"
    );
    let by_cookie = ask(&o, "traefik", &traefik("/api"), Some(&cookie)).await;
    assert_eq!(by_cookie.header("x-authentik-username"), Some("robot"));
    // A token for another client, or expired, is not accepted.
    for claims in [
        {
            let mut c = idp.claims("app", "robot");
            c["aud"] = json!("other");
            c
        },
        {
            let mut c = idp.claims("app", "robot");
            c["exp"] = json!(NOW - 10);
            c
        },
        {
            let mut c = idp.claims("app", "robot");
            c["iss"] = json!("https://evil");
            c
        },
    ] {
        let mut h = traefik("/api");
        h.push(("authorization", format!("Bearer {}", idp.sign(&claims))));
        let r = ask(&o, "traefik", &h, None).await;
        assert_eq!(r.status, StatusCode::FOUND, "{claims}");
        let mut h = vec![
            ("x-original-uri", "/api".to_owned()),
            ("x-forwarded-host", "app.example.com".into()),
        ];
        h.push(("authorization", format!("Bearer {}", idp.sign(&claims))));
        assert_eq!(
            ask(&o, "nginx", &h, None).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    // Basic with the goauthentik.io/token username carries a token.
    use base64::Engine as _;
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("goauthentik.io/token:{token}"));
    let mut h = traefik("/api");
    h.push(("authorization", format!("Basic {basic}")));
    assert_eq!(
        ask(&o, "traefik", &h, None)
            .await
            .header("x-authentik-username"),
        Some("robot")
    );
}

#[tokio::test]
async fn sign_out_ends_every_session_of_the_user() {
    let o = single("").await;
    let first = login(&o, "alice").await;
    let second = login(&o, "alice").await;
    let bob = login(&o, "bob").await;
    let r = o
        .get(
            "/outpost.goauthentik.io/sign_out",
            &[("host", "app.example.com"), ("cookie", &first)],
        )
        .await;
    assert_eq!(r.status, StatusCode::FOUND);
    assert!(
        r.location()
            .starts_with(&format!("{}/logout?id_token_hint=eyJ", o.idp.issuer)),
        "{}",
        r.location()
    );
    assert!(r.cookies().iter().any(|c| c.contains("Max-Age=0")));
    for cookie in [&first, &second] {
        let r = ask(&o, "traefik", &traefik("/x"), Some(cookie)).await;
        assert_eq!(r.status, StatusCode::FOUND, "signed out everywhere");
    }
    assert_eq!(
        ask(&o, "traefik", &traefik("/x"), Some(&bob)).await.status,
        StatusCode::OK
    );
    // The signature works on any path; without a session it clears and goes to the app.
    let r = ask(
        &o,
        "traefik",
        &traefik("/x?X-authentik-logout=true"),
        Some(&bob),
    )
    .await;
    assert_eq!(r.status, StatusCode::FOUND);
    let r = o
        .get(
            "/outpost.goauthentik.io/sign_out",
            &[("host", "app.example.com")],
        )
        .await;
    assert_eq!(r.location(), "https://app.example.com");
}

#[tokio::test]
async fn domain_mode_checks_redirects_on_a_dot_boundary() {
    let idp = start_idp().await;
    let p = provider_yaml(
        &idp,
        "corp",
        "forward_domain",
        "https://auth.example.com",
        "    cookie_domain: example.com\n",
    );
    let o = outpost(&idp, &p).await;
    let start = |rd: &str| {
        let rd = form_urlencoded::byte_serialize(rd.as_bytes()).collect::<String>();
        format!("/outpost.goauthentik.io/start?rd={rd}")
    };
    let r = o
        .get(
            &start("https://wiki.example.com/page"),
            &[("host", "auth.example.com")],
        )
        .await;
    assert_eq!(r.status, StatusCode::FOUND);
    let state = param(r.location(), "state").unwrap();
    let claims = portcullis_oidc::jwt::peek_claims(&state).unwrap();
    assert_eq!(claims["redirect"], "https://wiki.example.com/page");
    assert!(claims["exp"].as_u64().unwrap() > NOW);
    for bad in [
        "https://evilexample.com/",
        "https://example.com.evil.org/",
        "javascript:alert(1)",
    ] {
        let r = o.get(&start(bad), &[("host", "auth.example.com")]).await;
        let state = param(r.location(), "state").unwrap();
        assert_eq!(
            portcullis_oidc::jwt::peek_claims(&state).unwrap()["redirect"],
            "",
            "{bad}"
        );
    }
    // Hosts under the domain select this provider; the cookie carries the domain.
    let r = ask(
        &o,
        "traefik",
        &[
            ("x-forwarded-proto", "https".into()),
            ("x-forwarded-host", "wiki.example.com".into()),
            ("x-forwarded-uri", "/".into()),
        ],
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::FOUND);
    assert!(
        r.cookies()
            .iter()
            .any(|c| c.contains("; Domain=example.com"))
    );
}

#[tokio::test]
async fn access_control_rules_refuse_with_403() {
    let o = single("    access_control:\n      default_policy: deny\n      rules:\n        - subject: 'group:admins'\n          policy: one_factor\n        - resources: ['^/public/']\n          policy: one_factor\n").await;
    let cookie = login(&o, "alice").await;
    let r = ask(&o, "traefik", &traefik("/admin"), Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.header("x-authentik-username").is_none());
    let r = ask(&o, "traefik", &traefik("/public/x"), Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn back_channel_logout_ends_the_idp_session() {
    let o = single("").await;
    let cookie = login(&o, "alice").await;
    let idp = &o.idp;
    let post = |token: String| {
        Request::post("/outpost.goauthentik.io/backchannel-logout")
            .header("host", "app.example.com")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(format!("logout_token={token}")))
            .unwrap()
    };
    let logout = |extra: serde_json::Value| {
        let mut c = json!({"iss": idp.issuer, "aud": "app", "iat": NOW, "exp": NOW + 60, "jti": "j-1", "sid": "idp-session-alice", "events": {"http://schemas.openid.net/event/backchannel-logout": {}}});
        if let serde_json::Value::Object(m) = extra {
            for (k, v) in m {
                c[k] = v;
            }
        }
        idp.sign(&c)
    };
    for bad in [
        json!({"nonce": "n"}),
        json!({"events": {}}),
        json!({"aud": "other"}),
        json!({"sid": null}),
    ] {
        let mut token = logout(bad.clone());
        if bad.get("sid").is_some() {
            let mut c = portcullis_oidc::jwt::peek_claims(&token).unwrap();
            c.remove("sid");
            token = idp.sign(&serde_json::Value::Object(c));
        }
        let r = o.send(post(token)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    assert_eq!(
        ask(&o, "traefik", &traefik("/x"), Some(&cookie))
            .await
            .status,
        StatusCode::OK
    );
    let r = o.send(post(logout(json!({})))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        ask(&o, "traefik", &traefik("/x"), Some(&cookie))
            .await
            .status,
        StatusCode::FOUND
    );
}

#[tokio::test]
async fn an_undiscovered_provider_answers_503() {
    let idp = start_idp().await;
    let p = provider_yaml(&idp, "app", "forward_single", "https://app.example.com", "")
        .replace(&idp.issuer, "http://127.0.0.1:9");
    let text = format!("storage:\n  memory: true\nproviders:\n{p}");
    let (config, _) =
        portcullis_outpost::config::parse("o.yml".as_ref(), &text, &|_| None).unwrap();
    let store = portcullis_outpost::open_store(&config.storage)
        .await
        .unwrap();
    let state =
        portcullis_outpost::AppState::new(&config, store, std::sync::Arc::new(|| NOW)).unwrap();
    assert_eq!(state.discover_all().await, 0);
    let o = Outpost {
        state,
        clock: std::sync::Arc::new(std::sync::atomic::AtomicU64::new(NOW)),
        idp,
    };
    let r = ask(&o, "traefik", &traefik("/x"), None).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn nginx_splits_the_original_uri_and_envoy_builds_fwd_from_the_path() {
    let o = single("    skip_path_regex: '^/public$'\n").await;
    // §14: the query of X-Original-URI is a query, so `^/public$` matches `/public?x=1`.
    let r = ask(
        &o,
        "nginx",
        &[
            ("x-original-uri", "/public?x=1".into()),
            ("x-forwarded-host", "app.example.com".into()),
            ("x-forwarded-proto", "https".into()),
        ],
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // Envoy: the path after the prefix, the request's query, the Host header.
    let r = o
        .get(
            "/outpost.goauthentik.io/auth/envoy/public",
            &[("host", "app.example.com")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("x-authentik-username"), Some(""));
    let r = o
        .get(
            "/outpost.goauthentik.io/auth/envoy/private?a=b",
            &[("host", "app.example.com")],
        )
        .await;
    assert_eq!(r.status, StatusCode::FOUND);
    let state = param(r.location(), "state").unwrap();
    let redirect = portcullis_oidc::jwt::peek_claims(&state).unwrap()["redirect"].clone();
    assert_eq!(
        redirect, "",
        "an http fwd is not the https external host: not followed"
    );
}
