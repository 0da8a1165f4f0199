//! Target resolution (docs/ARCHITECTURE.md step 1) and cookie-domain matching (step 2).
//!
//! `cargo bench -p portcullis-core`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::hint::black_box;
use std::net::IpAddr;

use criterion::{Criterion, criterion_group, criterion_main};
use http::Request;
use portcullis_core::domain::match_cookie_domain;
use portcullis_core::{Connection, Dialect, RequestHead, TrustedProxies, resolve};

const COOKIE: &str = "_ga=GA1.2.123456789.1700000000; theme=dark; authelia_session=Q2hvb3NlIGEgc2Vzc2lvbiBpZCB0aGF0IGlzIDQzIGM";

/// The check request nginx's `auth_request` sends (examples/proxies/nginx.conf), with the usual
/// browser headers it passes on.
fn auth_request() -> http::request::Parts {
    Request::get("/api/authz/auth-request")
        .header("host", "127.0.0.1:9091")
        .header("x-original-method", "GET")
        .header(
            "x-original-url",
            "https://app.example.com/projects/42/issues?state=open&sort=updated",
        )
        .header("x-forwarded-for", "198.51.100.23")
        .header(
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        )
        .header("accept", "text/html,application/xhtml+xml")
        .header("cookie", COOKIE)
        .body(())
        .unwrap()
        .into_parts()
        .0
}

/// The check request Traefik's or Caddy's forward-auth sends.
fn forward_auth() -> http::request::Parts {
    Request::get("/api/authz/forward-auth")
        .header("host", "127.0.0.1:9091")
        .header("x-forwarded-method", "GET")
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", "app.example.com")
        .header(
            "x-forwarded-uri",
            "/projects/42/issues?state=open&sort=updated",
        )
        .header("x-forwarded-for", "198.51.100.23, 10.0.0.7")
        .header(
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        )
        .header("accept", "text/html,application/xhtml+xml")
        .header("cookie", COOKIE)
        .body(())
        .unwrap()
        .into_parts()
        .0
}

fn bench(c: &mut Criterion) {
    let trusted = TrustedProxies::default();
    let peer: IpAddr = "127.0.0.1".parse().unwrap();
    let conn = Connection {
        peer,
        trusted: &trusted,
        own_scheme: "http",
    };
    let mut group = c.benchmark_group("resolve");
    let parts = auth_request();
    assert!(resolve(Dialect::AuthRequest, RequestHead::from(&parts), conn).is_ok());
    group.bench_function("auth_request", |b| {
        b.iter(|| {
            resolve(
                Dialect::AuthRequest,
                RequestHead::from(black_box(&parts)),
                conn,
            )
        })
    });
    let parts = forward_auth();
    assert!(resolve(Dialect::ForwardAuth, RequestHead::from(&parts), conn).is_ok());
    group.bench_function("forward_auth", |b| {
        b.iter(|| {
            resolve(
                Dialect::ForwardAuth,
                RequestHead::from(black_box(&parts)),
                conn,
            )
        })
    });
    let untrusted = Connection {
        peer: "203.0.113.9".parse().unwrap(),
        ..conn
    };
    group.bench_function("auth_request_untrusted_peer", |b| {
        b.iter(|| {
            resolve(
                Dialect::AuthRequest,
                RequestHead::from(black_box(&parts)),
                untrusted,
            )
        })
    });
    group.finish();

    let domains = [
        "example.org",
        "example.net",
        "corp.example.io",
        "example.com",
    ];
    c.bench_function("cookie_domain/match_4_domains", |b| {
        b.iter(|| match_cookie_domain(black_box("app.example.com"), &domains))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
