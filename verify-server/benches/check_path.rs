//! The whole check path with 100 rules (docs/ARCHITECTURE.md "The way of one forward-auth check"):
//!
//! - `check_path/pure`: the pure steps only: resolve → cookie-domain match → session cookie parse →
//!   policy.evaluate → decide → emit (applied to the response headers) or the portal redirect URL.
//! - `check_path/router`: one request through the real axum router (`oneshot`), with a
//!   `MemoryStore` holding 100,000 sessions: everything `portcullis-verify` does per check except the
//!   socket and HTTP parsing.
//!
//! `cargo bench -p portcullis-verify-server`

// Tests wait for real processes and sockets on the wall clock; the clock rule is for the servers.
#![allow(clippy::disallowed_methods)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::hint::black_box;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::ConnectInfo;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use http::{HeaderMap, Request, StatusCode};
use portcullis_auth::regulation::Regulator;
use portcullis_auth::users::UserDatabase;
use portcullis_bench::rules::{APP_URL, BYPASS_URL};
use portcullis_bench::{VerifyConfig, filler_session, verify_config};
use portcullis_core::domain::match_cookie_domain;
use portcullis_core::redirect::portal_redirect_url;
use portcullis_core::{
    AuthLevel, AuthOutcome, Connection, Decision, Dialect, Identity, RequestHead, decide, resolve,
};
use portcullis_session::{
    Lifetime, MemoryStore, Session, SessionId, SessionStore, find_session_cookie,
};
use portcullis_verify_server::config::{SecretSources, parse};
use portcullis_verify_server::{AppState, Tuning, router, system_clock};
use rand::SeedableRng;
use tower::ServiceExt;

const RULES: usize = 100;
const USERS: &str = include_str!("../../examples/quickstart/users_database.yml");
const ALICE_BASIC: &str = "Basic YWxpY2U6YWxpY2UtcG9ydGN1bGxpcw=="; // alice:alice-portcullis

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn config() -> portcullis_verify_server::config::Config {
    let yaml = verify_config(&VerifyConfig {
        port: 9091,
        rules: RULES,
        users: "users_database.yml",
        db: "unused.sqlite3",
        basic_auth_cache: "5m",
    })
    .unwrap();
    parse(
        Path::new("/bench/configuration.yml"),
        &yaml,
        &SecretSources::default(),
    )
    .unwrap()
    .0
}

/// nginx's `auth_request` subrequest (examples/proxies/nginx.conf).
fn check_request(url: &str, cookie: Option<&str>, authorization: Option<&str>) -> Request<Body> {
    let mut builder = Request::get("/api/authz/auth-request")
        .header("host", "127.0.0.1:9091")
        .header("x-original-method", "GET")
        .header("x-original-url", url)
        .header("x-forwarded-for", "198.51.100.23")
        .header(
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        );
    if let Some(cookie) = cookie {
        builder = builder.header("cookie", format!("_ga=GA1.2.1234.1700000000; {cookie}"));
    }
    if let Some(authorization) = authorization {
        builder = builder.header("authorization", authorization);
    }
    let mut request = builder.body(Body::empty()).unwrap();
    let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    request.extensions_mut().insert(ConnectInfo(peer));
    request
}

fn pure(c: &mut Criterion) {
    let config = config();
    let peer: IpAddr = "127.0.0.1".parse().unwrap();
    let session_id = SessionId::generate(&mut rand::rngs::StdRng::seed_from_u64(1));
    let cookie = format!("authelia_session={}", session_id.as_str());
    let alice = Identity::user("alice", AuthLevel::OneFactor)
        .with_groups(["admins", "dev"])
        .with_emails(["alice@example.com"])
        .with_display_name("Alice Liddell");
    let domains: Vec<&str> = config.cookies.iter().map(|c| c.domain.as_str()).collect();
    let portal = config.cookies[0].authelia_url.clone().unwrap();

    // One check; `identity` stands for what the session store returns for the cookie.
    let check = |parts: &http::request::Parts, identity: &Identity| -> (Decision, HeaderMap) {
        let conn = Connection {
            peer,
            trusted: &config.trusted_proxies,
            own_scheme: "http",
        };
        let target = resolve(Dialect::AuthRequest, RequestHead::from(parts), conn).unwrap();
        assert!(target.url.is_secure());
        let index = match_cookie_domain(target.url.host(), &domains).unwrap();
        let id = find_session_cookie(&parts.headers, &config.cookies[index].cookie.name);
        let outcome = match id {
            Some(_) => AuthOutcome::authenticated(identity.level, false),
            None => AuthOutcome::anonymous(),
        };
        let evaluation = config.policy.evaluate(&target, identity);
        let decision = decide(evaluation.requirement, outcome);
        let mut response = HeaderMap::new();
        match decision {
            Decision::Allow => config.headers.emit(identity, None).apply_to(&mut response),
            _ => {
                let location =
                    portal_redirect_url(&portal, &target.url.to_string(), target.method.as_str());
                response.insert(http::header::LOCATION, location.parse().unwrap());
            }
        }
        (decision, response)
    };

    let with_cookie = check_request(APP_URL, Some(&cookie), None).into_parts().0;
    let anonymous_request = check_request(APP_URL, None, None).into_parts().0;
    let bypass_request = check_request(BYPASS_URL, None, None).into_parts().0;
    let anonymous = Identity::anonymous();
    assert_eq!(check(&with_cookie, &alice).0, Decision::Allow);
    assert_eq!(check(&anonymous_request, &anonymous).0, Decision::Redirect);
    assert_eq!(check(&bypass_request, &anonymous).0, Decision::Allow);

    let mut group = c.benchmark_group("check_path/pure_100_rules");
    group.bench_function("cookie_allow", |b| {
        b.iter(|| check(black_box(&with_cookie), black_box(&alice)))
    });
    group.bench_function("anonymous_redirect", |b| {
        b.iter(|| check(black_box(&anonymous_request), black_box(&anonymous)))
    });
    group.bench_function("bypass", |b| {
        b.iter(|| check(black_box(&bypass_request), black_box(&anonymous)))
    });
    group.finish();
}

fn through_router(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let now = unix_now();
    let config = config();
    let users = UserDatabase::parse(Path::new("users_database.yml"), USERS, true, true).unwrap();
    let store = Arc::new(MemoryStore::new());
    let lifetime = Lifetime {
        expiration: 12 * 3600,
        ..Lifetime::default()
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    runtime.block_on(async {
        for i in 0..100_000 {
            store
                .put(&filler_session(&mut rng, i, now, &lifetime))
                .await
                .unwrap();
        }
    });
    let alice = users
        .get("alice")
        .unwrap()
        .identity(AuthLevel::OneFactor, now);
    let session = Session::new(
        SessionId::generate(&mut rng),
        "example.com",
        alice,
        false,
        now,
        &lifetime,
    );
    runtime.block_on(store.put(&session)).unwrap();
    let cookie = format!("authelia_session={}", session.id.as_str());
    let regulator = Regulator::in_memory(config.regulation);
    let state = AppState::new(
        config,
        users,
        store,
        regulator,
        system_clock(),
        Tuning::default(),
    )
    .unwrap();
    let app = router(state);

    let send = |request: Request<Body>| {
        let app = app.clone();
        async move { app.oneshot(request).await.unwrap().status() }
    };
    // (name, cookie, authorization, target, expected status)
    type Case<'a> = (
        &'a str,
        Option<&'a str>,
        Option<&'a str>,
        &'a str,
        StatusCode,
    );
    let cases: [Case<'_>; 4] = [
        ("cookie_allow", Some(&cookie), None, APP_URL, StatusCode::OK),
        (
            "anonymous_redirect",
            None,
            None,
            APP_URL,
            StatusCode::UNAUTHORIZED,
        ),
        ("bypass", None, None, BYPASS_URL, StatusCode::OK),
        (
            "basic_cached",
            None,
            Some(ALICE_BASIC),
            APP_URL,
            StatusCode::OK,
        ),
    ];
    let mut group = c.benchmark_group("check_path/router_100_rules_100k_sessions");
    for (name, cookie, authorization, url, expected) in cases {
        // The first Basic check verifies the argon2 digest and fills the cache.
        let status = runtime.block_on(send(check_request(url, cookie, authorization)));
        assert_eq!(status, expected, "{name}");
        group.bench_function(name, |b| {
            b.to_async(&runtime).iter_batched(
                || check_request(url, cookie, authorization),
                &send,
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, pure, through_router);
criterion_main!(benches);
