//! Heap allocations per forward-auth check, counted by a test-only global allocator (issue 16): a
//! count, not a time, so it is the same on every machine. Each kind of check (session cookie,
//! cached Basic credentials, anonymous redirect, bypass) allocates the same number of times on
//! every request — nothing accumulates per request — whether the store holds one session or ten
//! thousand, and no more than its budget below. A change that adds allocations to the check path
//! turns this red; lower the budget when the count drops.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::alloc::System;
use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use common::{BOB_PASSWORD, Harness, auth_request, basic};
use http::{Request, StatusCode};
use portcullis_session::Lifetime;
use rand::SeedableRng;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tower::ServiceExt;

// Counts every allocation of the process; the test runs alone in this binary on a
// current-thread runtime, so the allocations counted are the check's.
#[global_allocator]
static ALLOCATOR: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// The allocations of one check through the router, the request built beforehand and the
/// response dropped inside the count.
async fn allocations(app: &axum::Router, request: Request<Body>, expected: StatusCode) -> usize {
    let region = Region::new(ALLOCATOR);
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    drop(response);
    let counted = region.change();
    assert_eq!(status, expected);
    counted.allocations + counted.reallocations
}

fn check(url: &str, header: Option<(&str, &str)>) -> Request<Body> {
    let mut builder = auth_request(url, "GET");
    if let Some((name, value)) = header {
        builder = builder.header(name, value);
    }
    let mut request = builder.body(Body::empty()).unwrap();
    let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    request.extensions_mut().insert(ConnectInfo(peer));
    request
}

/// A kind of check: its name, how to build its request, and the status it answers.
type Kind<'a> = (
    &'static str,
    Box<dyn Fn() -> Request<Body> + 'a>,
    StatusCode,
);

/// The most allocations each kind of check may make (measured when this test was written:
/// see BENCHMARKS.md, "Allocations per check").
const BUDGETS: [(&str, usize); 4] = [
    ("cookie", 29),
    ("basic_cached", 29),
    ("anonymous", 37),
    ("bypass", 12),
];

#[test]
fn a_check_allocates_the_same_few_times_on_every_request_however_many_sessions() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let h = Harness::new();
        let cookie = h.login("auth.example.com", "bob", BOB_PASSWORD).await;
        let app = portcullis_verify_server::router(h.state.clone());
        let bob = basic("bob", BOB_PASSWORD);
        let kinds: [Kind<'_>; 4] = [
            (
                "cookie",
                Box::new(|| {
                    check(
                        "https://app.example.com/dashboard",
                        Some(("cookie", &cookie)),
                    )
                }),
                StatusCode::OK,
            ),
            (
                "basic_cached",
                Box::new(|| {
                    check(
                        "https://app.example.com/dashboard",
                        Some(("authorization", &bob)),
                    )
                }),
                StatusCode::OK,
            ),
            (
                "anonymous",
                Box::new(|| check("https://app.example.com/dashboard", None)),
                StatusCode::UNAUTHORIZED,
            ),
            (
                "bypass",
                Box::new(|| check("https://public.example.com/app.css", None)),
                StatusCode::OK,
            ),
        ];
        let mut counted = Vec::new();
        for (name, request, status) in &kinds {
            // Warm-up: the first checks fill the Basic cache and the metrics' label sets.
            for _ in 0..5 {
                allocations(&app, request(), *status).await;
            }
            let mut counts = Vec::new();
            for _ in 0..50 {
                counts.push(allocations(&app, request(), *status).await);
            }
            assert!(
                counts.iter().all(|c| *c == counts[0]),
                "{name}: allocations per check changed from request to request: {counts:?}"
            );
            counted.push((*name, counts[0]));
        }

        // Ten thousand more sessions: the same counts.
        let lifetime = Lifetime::default();
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let now = h.clock.load(std::sync::atomic::Ordering::SeqCst);
        for i in 0..10_000 {
            let session = portcullis_bench::filler_session(&mut rng, i, now, &lifetime);
            h.store.put(&session).await.unwrap();
        }
        for ((name, request, status), (_, before)) in kinds.iter().zip(&counted) {
            let after = allocations(&app, request(), *status).await;
            assert_eq!(after, *before, "{name}: with 10,000 more sessions");
        }
        for ((name, count), (budget_name, budget)) in counted.iter().zip(BUDGETS) {
            assert_eq!(*name, budget_name);
            eprintln!("allocations per check: {name} {count}");
            assert!(
                *count <= budget,
                "{name}: {count} allocations per check, over its budget of {budget}"
            );
        }
    });
}
