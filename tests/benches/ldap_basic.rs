//! What a Basic check costs when the users are in a real OpenLDAP (issue 15): one request
//! through the verify server's router (`oneshot`), with the Basic cache on (a hit: no directory
//! at all) and off (a search, then a bind as the user on a fresh connection, every time).
//!
//! `cargo bench --locked -p portcullis-tests --bench ldap_basic` (needs slapd: scripts/test
//! installs it).

// Benchmarks wait for real processes on the wall clock; the clock rule is for the servers.
#![allow(clippy::disallowed_methods)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use criterion::{Criterion, criterion_group, criterion_main};
use http::{Request, StatusCode};
use portcullis_tests::client::basic;
use portcullis_tests::ldap::{PASSWORD, Slapd};
use portcullis_tests::verify::{Verify, VerifyConfig};
use portcullis_verify_server::{attach_configured_directory, router};
use tower::ServiceExt;

fn check(authorization: &str) -> Request<Body> {
    let mut request = Request::get("/api/authz/auth-request")
        .header("host", "127.0.0.1:9091")
        .header("x-original-method", "GET")
        .header("x-original-url", "https://app.example.com/reports")
        .header("authorization", authorization)
        .body(Body::empty())
        .unwrap();
    let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    request.extensions_mut().insert(ConnectInfo(peer));
    request
}

fn basic_checks(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let slapd = Slapd::start(dir.path());
    let harry = basic("harry", PASSWORD);
    let mut group = c.benchmark_group("ldap_basic");
    for (name, cache) in [("cache_hit", "5m"), ("no_cache", "0s")] {
        let yaml = VerifyConfig {
            proxy_port: 8443,
            expiration: "1h".into(),
            inactivity: "5m".into(),
            second_factor: false,
            ldap: Some(slapd.verify_keys()),
        }
        .yaml()
        .replace(
            "portcullis:\n",
            &format!("portcullis:\n  basic_auth_cache: {cache}\n"),
        );
        let folder = dir.path().join(name);
        std::fs::create_dir_all(&folder).unwrap();
        let state = Verify::state(&folder, &yaml);
        runtime
            .block_on(attach_configured_directory(&state))
            .unwrap();
        let app = router(state);
        let once = || {
            let app = app.clone();
            let request = check(&harry);
            async move {
                let response = app.oneshot(request).await.unwrap();
                assert_eq!(response.status(), StatusCode::OK);
                assert_eq!(response.headers()["remote-user"], "harry");
            }
        };
        runtime.block_on(once());
        group.bench_function(name, |b| b.to_async(&runtime).iter(once));
    }
    group.finish();
}

criterion_group!(benches, basic_checks);
criterion_main!(benches);
