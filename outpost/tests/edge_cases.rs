//! App passwords, token refresh, metrics, reload, and bad input on every route: never a 2xx
//! without identity outside the allow-list, never a panic.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::body::Body;
use common::*;
use http::{Request, StatusCode};
use serde_json::json;

fn traefik(uri: &str) -> Vec<(&'static str, String)> {
    vec![
        ("x-forwarded-proto", "https".into()),
        ("x-forwarded-host", "app.example.com".into()),
        ("x-forwarded-uri", uri.into()),
    ]
}

async fn ask(o: &Outpost, headers: &[(&str, String)]) -> Reply {
    let mut b = Request::get("/outpost.goauthentik.io/auth/traefik").header("host", "outpost");
    for (k, v) in headers {
        b = b.header(*k, v.as_str());
    }
    o.send(b.body(Body::empty()).unwrap()).await
}

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

#[tokio::test]
async fn app_passwords_through_client_credentials() {
    let o = single("    header_auth:\n      basic: authentik\n").await;
    let idp = &o.idp;
    use base64::Engine as _;
    let basic = |user: &str, pass: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
        )
    };
    idp.will_issue(&idp.claims("app", "svc"));
    let mut h = traefik("/api");
    h.push(("authorization", basic("svc", "app-password-1")));
    let r = ask(&o, &h).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.header("x-authentik-username"), Some("svc"));
    let forms = idp.token_forms.lock().unwrap().clone();
    let form = forms.last().unwrap();
    let get = |n: &str| form.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
    assert_eq!(get("grant_type"), Some("client_credentials"));
    assert_eq!(get("username"), Some("svc"));
    assert_eq!(get("password"), Some("app-password-1"));
    assert_eq!(get("client_id"), Some("app"));
    assert_eq!(
        get("client_secret"),
        None,
        "authentik's request carries no client secret"
    );
    assert_eq!(
        get("scope"),
        Some("openid email profile entitlements ak_proxy")
    );
    // Cached for a minute: no second call to the provider.
    let calls = forms.len();
    assert_eq!(ask(&o, &h).await.status, StatusCode::OK);
    assert_eq!(idp.token_forms.lock().unwrap().len(), calls);
    // A refused password is remembered (briefly) too, and never an allow.
    idp.will_answer(json!({"error": "invalid_grant"}));
    *idp.next_token.lock().unwrap() = None;
    let mut h = traefik("/api");
    h.push(("authorization", basic("svc", "wrong")));
    assert_eq!(ask(&o, &h).await.status, StatusCode::FOUND);
    let calls = idp.token_forms.lock().unwrap().len();
    assert_eq!(ask(&o, &h).await.status, StatusCode::FOUND);
    assert_eq!(
        idp.token_forms.lock().unwrap().len(),
        calls,
        "negative cache"
    );
    // With basic off (the default), Basic credentials are not even tried.
    let off = single("").await;
    let mut h = traefik("/api");
    h.push(("authorization", basic("svc", "app-password-1")));
    assert_eq!(ask(&off, &h).await.status, StatusCode::FOUND);
    assert!(off.idp.token_forms.lock().unwrap().is_empty());
}

#[tokio::test]
async fn sessions_refresh_silently_with_a_refresh_token() {
    let o = single("    access_token_validity: 24h\n").await;
    let idp = &o.idp;
    let first = ask(&o, &traefik("/x")).await;
    let pre = first.session_cookie().unwrap();
    // Before the login the cookie lives access_token_validity + 1 s, as authentik's.
    assert!(
        first.cookies().iter().any(|c| c.contains("Max-Age=86401")),
        "{:?}",
        first.cookies()
    );
    let state = param(first.location(), "state").unwrap();
    let mut claims = idp.claims("app", "alice");
    claims["exp"] = json!(NOW + 300);
    let token = idp.sign(&claims);
    idp.will_answer(json!({"access_token": token, "id_token": token, "refresh_token": "r-1"}));
    let mut h = traefik(&format!(
        "/x?X-authentik-auth-callback=true&code=c&state={state}"
    ));
    h.push(("cookie", pre.clone()));
    let back = ask(&o, &h).await;
    let cookie = back.session_cookie().unwrap();
    assert!(
        back.cookies().iter().any(|c| c.contains("Max-Age=86400")),
        "{:?}",
        back.cookies()
    );
    // Past exp, the next check refreshes (one refresh_token grant) and passes.
    o.advance(400);
    let mut renewed = idp.claims("app", "alice");
    renewed["exp"] = json!(NOW + 4000);
    renewed["name"] = json!("Alice Renewed");
    let token = idp.sign(&renewed);
    idp.will_answer(json!({"access_token": token, "id_token": token}));
    let mut h = traefik("/x");
    h.push(("cookie", cookie.clone()));
    let r = ask(&o, &h).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.header("x-authentik-name"), Some("Alice Renewed"));
    let forms = idp.token_forms.lock().unwrap().clone();
    let last = forms.last().unwrap();
    assert!(last.contains(&("grant_type".into(), "refresh_token".into())));
    assert!(last.contains(&("refresh_token".into(), "r-1".into())));
    // A refresh the provider refuses ends the session.
    o.advance(4000);
    *idp.next_token.lock().unwrap() = None;
    assert_eq!(ask(&o, &h).await.status, StatusCode::FOUND);
}

#[tokio::test]
async fn bad_input_never_allows_and_never_panics() {
    let o = single("").await;
    let cookie_name = "authentik_proxy_a172cedc";
    let long = "a".repeat(20_000);
    let cases: Vec<Vec<(&str, String)>> = vec![
        traefik("/x?X-authentik-auth-callback=true&state=%ZZ&code="),
        traefik("/x?X-authentik-auth-callback=true&state=a.b.c&code=c"),
        traefik("/x?X-authentik-auth-callback=true"),
        traefik(&format!(
            "/x?X-authentik-auth-callback=true&state={long}&code=c"
        )),
        vec![
            ("x-forwarded-proto", "https".into()),
            ("x-forwarded-host", "app.example.com:99999".into()),
            ("x-forwarded-uri", "/".into()),
        ],
        vec![
            ("x-forwarded-proto", "javascript".into()),
            ("x-forwarded-host", "app.example.com".into()),
            ("x-forwarded-uri", "/".into()),
        ],
        vec![
            ("x-forwarded-proto", "https".into()),
            ("x-forwarded-host", "".into()),
            ("x-forwarded-uri", "/".into()),
        ],
        vec![
            ("x-forwarded-proto", "https".into()),
            ("x-forwarded-host", "app.example.com".into()),
            ("x-forwarded-uri", "no-slash".into()),
        ],
        {
            let mut h = traefik("/x");
            h.push(("cookie", format!("{cookie_name}=..; {cookie_name}=%00")));
            h
        },
        {
            let mut h = traefik("/x");
            h.push(("cookie", format!("{cookie_name}={long}")));
            h
        },
        {
            let mut h = traefik("/x");
            h.push(("authorization", "Bearer".into()));
            h
        },
        {
            let mut h = traefik("/x");
            h.push(("authorization", "Basic !!!".into()));
            h
        },
        {
            let mut h = traefik("/x");
            h.push(("authorization", format!("Bearer {long}")));
            h
        },
    ];
    for headers in cases {
        let r = ask(&o, &headers).await;
        assert!(
            !r.status.is_success() || r.header("x-authentik-username") == Some(""),
            "{headers:?}: {} {:?}",
            r.status,
            r.header("x-authentik-username")
        );
        assert!(
            r.header("x-authentik-username").is_none_or(str::is_empty),
            "{headers:?}"
        );
    }
    // Odd hosts and paths at the outpost level.
    for host in ["", "[::1", "a b", "..", "app.example.com:0"] {
        let mut b = Request::get("/outpost.goauthentik.io/auth/nginx");
        if !host.is_empty() {
            b = b.header("host", host);
        }
        let r = o.send(b.body(Body::empty()).unwrap()).await;
        assert!(!r.status.is_success(), "{host}: {}", r.status);
    }
    // Back-channel logout with garbage.
    for body in [
        "",
        "logout_token=",
        "logout_token=a&logout_token=b",
        "logout_token=x.y.z",
    ] {
        let r = o
            .send(
                Request::post("/outpost.goauthentik.io/backchannel-logout")
                    .header("host", "app.example.com")
                    .body(Body::from(body))
                    .unwrap(),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}");
    }
    let r = o
        .get(
            "/outpost.goauthentik.io/backchannel-logout",
            &[("host", "app.example.com")],
        )
        .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn metrics_count_requests_with_authentiks_labels() {
    let o = single("").await;
    ask(&o, &traefik("/x")).await;
    o.get(
        "/outpost.goauthentik.io/start",
        &[("host", "app.example.com")],
    )
    .await;
    let text = o.state.metrics_text();
    assert!(
        text.contains(r#"portcullis_outpost_proxy_request_duration_seconds_count{outpost_name="portcullis",method="GET",host="app.example.com",type="auth_traefik"} 1"#),
        "{text}"
    );
    assert!(text.contains(r#"type="start"} 1"#), "{text}");
    assert!(
        text.contains(
            "# TYPE portcullis_outpost_proxy_upstream_response_duration_seconds histogram"
        )
    );
}

#[tokio::test]
async fn a_reload_changes_rules_and_an_invalid_file_changes_nothing() {
    let idp = start_idp().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("outpost.yml");
    let write = |extra: &str| {
        let p = provider_yaml(
            &idp,
            "app",
            "forward_single",
            "https://app.example.com",
            extra,
        );
        std::fs::write(&file, format!("storage:\n  memory: true\nproviders:\n{p}")).unwrap();
    };
    write("");
    let (config, _) = portcullis_outpost::config::load(&file, &|_| None).unwrap();
    let store = portcullis_outpost::open_store(&config.storage)
        .await
        .unwrap();
    let state =
        portcullis_outpost::AppState::new(&config, store, std::sync::Arc::new(|| NOW)).unwrap();
    state.discover_all().await;
    let o = Outpost {
        state: state.clone(),
        clock: std::sync::Arc::new(std::sync::atomic::AtomicU64::new(NOW)),
        idp: idp.clone(),
    };
    assert_eq!(ask(&o, &traefik("/health")).await.status, StatusCode::FOUND);
    write("    skip_path_regex: '^/health$'\n");
    assert_eq!(
        portcullis_outpost::reload::reload(&state, &file).await,
        Ok(1)
    );
    assert_eq!(ask(&o, &traefik("/health")).await.status, StatusCode::OK);
    write("    skip_path_regex: '^/health($'\n");
    let err = portcullis_outpost::reload::reload(&state, &file)
        .await
        .unwrap_err();
    assert!(err.contains("skip_path_regex"), "{err}");
    assert_eq!(
        ask(&o, &traefik("/health")).await.status,
        StatusCode::OK,
        "the running configuration stays"
    );
}

#[tokio::test]
async fn every_configured_store_opens() {
    // Redis connects lazily: opening the store needs no server, and a wrong set-up (a key prefix
    // that collides with the verify server's) would fail here.
    let idp = start_idp().await;
    let p = provider_yaml(&idp, "app", "forward_single", "https://app.example.com", "");
    let dir = tempfile::tempdir().unwrap();
    for head in [
        "session:\n  redis:\n    host: 127.0.0.1\n    port: 1\n".to_owned(),
        format!(
            "storage:\n  local:\n    path: {}/o.sqlite3\n",
            dir.path().display()
        ),
        "storage:\n  memory: true\n".to_owned(),
    ] {
        let text = format!("{head}providers:\n{p}");
        let (config, _) =
            portcullis_outpost::config::parse("o.yml".as_ref(), &text, &|_| None).unwrap();
        assert!(
            portcullis_outpost::open_store(&config.storage)
                .await
                .is_ok(),
            "{head}"
        );
    }
}

#[tokio::test]
async fn concurrent_checks_of_one_credential_ask_the_provider_once() {
    let o = single("    header_auth:\n      basic: authentik\n").await;
    let idp = &o.idp;
    idp.will_issue(&idp.claims("app", "svc"));
    use base64::Engine as _;
    let value = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("svc:app-password-2")
    );
    let mut h = traefik("/api");
    h.push(("authorization", value));
    let answers = futures_join(&o, &h, 8).await;
    assert!(answers.iter().all(|s| *s == StatusCode::OK), "{answers:?}");
    assert_eq!(idp.token_forms.lock().unwrap().len(), 1, "single-flight");
}

async fn futures_join(o: &Outpost, h: &[(&str, String)], n: usize) -> Vec<StatusCode> {
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..n {
        let state = o.state.clone();
        let h: Vec<(String, String)> = h
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        set.spawn(async move {
            let mut b =
                Request::get("/outpost.goauthentik.io/auth/traefik").header("host", "outpost");
            for (k, v) in &h {
                b = b.header(k.as_str(), v.as_str());
            }
            let mut request = b.body(Body::empty()).unwrap();
            request.extensions_mut().insert(axum::extract::ConnectInfo(
                "127.0.0.1:1".parse::<std::net::SocketAddr>().unwrap(),
            ));
            tower::ServiceExt::oneshot(portcullis_outpost::router(state), request)
                .await
                .unwrap()
                .status()
        });
    }
    let mut out = Vec::new();
    while let Some(s) = set.join_next().await {
        out.push(s.unwrap());
    }
    out
}

#[tokio::test]
async fn a_session_shown_to_another_provider_is_destroyed() {
    let idp = start_idp().await;
    // Two providers with one client id share the cookie name.
    let a = provider_yaml(&idp, "a", "forward_single", "https://a.example.com", "");
    let b = provider_yaml(&idp, "b", "forward_single", "https://b.example.com", "")
        .replace("client_id: b", "client_id: a");
    let o = outpost(&idp, &format!("{a}{b}")).await;
    let host = |h: &str| {
        vec![
            ("x-forwarded-proto", "https".to_owned()),
            ("x-forwarded-host", h.to_owned()),
            ("x-forwarded-uri", "/".to_owned()),
        ]
    };
    let first = ask(&o, &host("a.example.com")).await;
    let pre = first.session_cookie().unwrap();
    let state = param(first.location(), "state").unwrap();
    idp.will_issue(&idp.claims("a", "alice"));
    let mut h = host("a.example.com");
    h[2].1 = format!("/?X-authentik-auth-callback=true&code=c&state={state}");
    h.push(("cookie", pre));
    let cookie = ask(&o, &h).await.session_cookie().unwrap();
    let with = |mut h: Vec<(&'static str, String)>| {
        h.push(("cookie", cookie.clone()));
        h
    };
    assert_eq!(
        ask(&o, &with(host("a.example.com"))).await.status,
        StatusCode::OK
    );
    assert_eq!(
        ask(&o, &with(host("b.example.com"))).await.status,
        StatusCode::FOUND
    );
    assert_eq!(
        ask(&o, &with(host("a.example.com"))).await.status,
        StatusCode::FOUND,
        "destroyed by its use at b"
    );
}
