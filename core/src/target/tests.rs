use super::*;
use proptest::prelude::*;

fn trusted() -> TrustedProxies {
    TrustedProxies::default()
}

fn run(
    dialect: Dialect<'_>,
    peer: &str,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
) -> Result<Target, ResolveError> {
    let mut builder = http::Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        builder = builder.header(*k, http::HeaderValue::from_bytes(v.as_bytes()).unwrap());
    }
    let (parts, ()) = builder.body(()).unwrap().into_parts();
    let trusted = trusted();
    let conn = Connection {
        peer: peer.parse().unwrap(),
        trusted: &trusted,
        own_scheme: "http",
    };
    resolve(dialect, RequestHead::from(&parts), conn)
}

const LOCAL: &str = "127.0.0.1";

#[test]
fn auth_request_dialect() {
    let ok = run(
        Dialect::AuthRequest,
        LOCAL,
        "GET",
        "/api/authz/auth-request",
        &[
            ("X-Original-URL", "https://App.example.com:8443/a/../b?q=1"),
            ("X-Original-Method", "POST"),
        ],
    )
    .unwrap();
    assert_eq!(ok.url.host(), "app.example.com");
    assert_eq!(ok.url.port(), Some(8443));
    assert_eq!(ok.url.path(), "/a/../b");
    assert_eq!(ok.url.query(), Some("q=1"));
    assert_eq!(
        ok.url.to_string(),
        "https://App.example.com:8443/a/../b?q=1"
    );
    assert_eq!(ok.method, Method::POST);

    let cases: &[(&[(&str, &str)], ResolveError)] = &[
        (
            &[("X-Original-Method", "GET")],
            ResolveError::MissingHeader("X-Original-URL"),
        ),
        (
            &[("X-Original-URL", ""), ("X-Original-Method", "GET")],
            ResolveError::MissingHeader("X-Original-URL"),
        ),
        (
            &[("X-Original-URL", "https://app.example.com/")],
            ResolveError::MissingHeader("X-Original-Method"),
        ),
        (
            &[
                ("X-Original-URL", "https://app.example.com/"),
                ("X-Original-Method", "get"),
            ],
            ResolveError::InvalidMethod("X-Original-Method"),
        ),
        (
            &[
                ("X-Original-URL", "https://app.example.com/"),
                ("X-Original-Method", "M-SEARCH"),
            ],
            ResolveError::InvalidMethod("X-Original-Method"),
        ),
        (
            &[
                ("X-Original-URL", "/relative"),
                ("X-Original-Method", "GET"),
            ],
            ResolveError::InvalidUrl {
                origin: "X-Original-URL",
                reason: UrlError::NotAbsolute,
            },
        ),
        (
            &[
                ("X-Original-URL", "https://app.example.com/a\tb"),
                ("X-Original-Method", "GET"),
            ],
            ResolveError::InvalidHeaderBytes("x-original-url"),
        ),
        // AuthRequest ignores the X-Forwarded-* family.
        (
            &[
                ("X-Forwarded-Proto", "https"),
                ("X-Forwarded-Host", "app.example.com"),
                ("X-Forwarded-URI", "/"),
                ("X-Forwarded-Method", "GET"),
            ],
            ResolveError::MissingHeader("X-Original-URL"),
        ),
    ];
    for (headers, expected) in cases {
        assert_eq!(
            run(Dialect::AuthRequest, LOCAL, "GET", "/", headers).unwrap_err(),
            *expected,
            "{headers:?}"
        );
    }
}

#[test]
fn forward_auth_dialect() {
    let full = [
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Host", "app.example.com"),
        ("X-Forwarded-URI", "/x?y=z"),
        ("X-Forwarded-Method", "GET"),
    ];
    let t = run(Dialect::ForwardAuth, LOCAL, "GET", "/", &full).unwrap();
    assert_eq!(t.url.to_string(), "https://app.example.com/x?y=z");

    // Missing URI: empty path, no trailing slash.
    let t = run(
        Dialect::ForwardAuth,
        LOCAL,
        "GET",
        "/",
        &full[..2]
            .iter()
            .copied()
            .chain([full[3]])
            .collect::<Vec<_>>(),
    )
    .unwrap();
    assert_eq!(t.url.to_string(), "https://app.example.com");

    // Missing proto: the server's own scheme (http here), which the endpoint's scheme check rejects.
    let t = run(Dialect::ForwardAuth, LOCAL, "GET", "/", &full[1..]).unwrap();
    assert_eq!(t.url.scheme(), "http");
    assert!(!t.url.is_secure());

    let errors: &[(&[(&str, &str)], ResolveError)] = &[
        // no Host fallback
        (
            &[
                ("X-Forwarded-Proto", "https"),
                ("Host", "app.example.com"),
                ("X-Forwarded-Method", "GET"),
            ],
            ResolveError::MissingHeader("X-Forwarded-Host"),
        ),
        (
            &[
                ("X-Forwarded-Proto", "https"),
                ("X-Forwarded-Host", "app.example.com"),
            ],
            ResolveError::MissingHeader("X-Forwarded-Method"),
        ),
        // only AR-style headers
        (
            &[
                ("X-Original-URL", "https://app.example.com/"),
                ("X-Original-Method", "GET"),
            ],
            ResolveError::MissingHeader("X-Forwarded-Host"),
        ),
        // a host smuggling a path or userinfo
        (
            &[
                ("X-Forwarded-Proto", "https"),
                ("X-Forwarded-Host", "evil.net/app.example.com"),
                ("X-Forwarded-Method", "GET"),
            ],
            ResolveError::InvalidUrl {
                origin: "X-Forwarded-Host",
                reason: UrlError::InvalidHost,
            },
        ),
        (
            &[
                ("X-Forwarded-Proto", "https"),
                ("X-Forwarded-Host", "app.example.com@evil.net"),
                ("X-Forwarded-Method", "GET"),
            ],
            ResolveError::InvalidUrl {
                origin: "X-Forwarded-Host",
                reason: UrlError::InvalidHost,
            },
        ),
        // a URI that would change the host
        (
            &[
                ("X-Forwarded-Proto", "https"),
                ("X-Forwarded-Host", "app.example.com"),
                ("X-Forwarded-URI", ".evil.net/"),
                ("X-Forwarded-Method", "GET"),
            ],
            ResolveError::InvalidUrl {
                origin: "URI",
                reason: UrlError::RelativePath,
            },
        ),
        (
            &[
                ("X-Forwarded-Proto", "https://"),
                ("X-Forwarded-Host", "app.example.com"),
                ("X-Forwarded-Method", "GET"),
            ],
            ResolveError::InvalidUrl {
                origin: "X-Forwarded-Proto",
                reason: UrlError::InvalidScheme,
            },
        ),
        (
            &[
                ("X-Forwarded-Proto", "https"),
                ("X-Forwarded-Host", "app example.com"),
                ("X-Forwarded-Method", "GET"),
            ],
            ResolveError::InvalidUrl {
                origin: "X-Forwarded-Host",
                reason: UrlError::ForbiddenCharacter,
            },
        ),
        (
            &[
                ("X-Forwarded-Proto", "https"),
                ("X-Forwarded-Host", "app.example.com"),
                ("X-Forwarded-URI", "/%zz"),
                ("X-Forwarded-Method", "GET"),
            ],
            ResolveError::InvalidUrl {
                origin: "X-Forwarded-Host",
                reason: UrlError::InvalidPercentEncoding,
            },
        ),
        (
            &[
                ("X-Forwarded-Proto", "https"),
                ("X-Forwarded-Host", "app.example.com"),
                ("X-Forwarded-Method", ""),
            ],
            ResolveError::MissingHeader("X-Forwarded-Method"),
        ),
    ];
    for (headers, expected) in errors {
        assert_eq!(
            run(Dialect::ForwardAuth, LOCAL, "GET", "/", headers).unwrap_err(),
            *expected,
            "{headers:?}"
        );
    }
}

#[test]
fn untrusted_peers_never_get_a_target_from_forwarded_headers() {
    let headers = [
        ("X-Original-URL", "https://app.example.com/"),
        ("X-Original-Method", "GET"),
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Host", "app.example.com"),
        ("X-Forwarded-URI", "/"),
        ("X-Forwarded-Method", "GET"),
        ("Host", "app.example.com"),
    ];
    let peer: IpAddr = "203.0.113.5".parse().unwrap();
    for dialect in [
        Dialect::AuthRequest,
        Dialect::ForwardAuth,
        Dialect::Legacy,
        Dialect::OutpostNginx,
        Dialect::OutpostForwarded,
    ] {
        assert_eq!(
            run(dialect, "203.0.113.5", "GET", "/", &headers).unwrap_err(),
            ResolveError::UntrustedPeer(peer),
            "{dialect:?}"
        );
    }
    // ExtAuthz keeps its Host-based target but loses the forwarded scheme: plain http, rejected later.
    let t = run(
        Dialect::ExtAuthz { path: "/" },
        "203.0.113.5",
        "GET",
        "/",
        &headers,
    )
    .unwrap();
    assert_eq!(t.url.scheme(), "http");
    assert_eq!(t.client_ip, ClientIp::Known(peer));
    // An IPv4-mapped loopback peer is trusted.
    assert!(
        run(
            Dialect::AuthRequest,
            "::ffff:127.0.0.1",
            "GET",
            "/",
            &headers
        )
        .is_ok()
    );
}

#[test]
fn ext_authz_dialect() {
    let t = run(
        Dialect::ExtAuthz { path: "/admin/x" },
        LOCAL,
        "DELETE",
        "/api/authz/ext-authz/admin/x?ignored=1",
        &[("X-Forwarded-Proto", "https"), ("Host", "app.example.com")],
    )
    .unwrap();
    assert_eq!(t.url.to_string(), "https://app.example.com/admin/x");
    assert_eq!(t.method, Method::DELETE);
    assert_eq!(
        run(
            Dialect::ExtAuthz { path: "/" },
            LOCAL,
            "GET",
            "/",
            &[("X-Forwarded-Proto", "https")]
        )
        .unwrap_err(),
        ResolveError::MissingHeader("Host")
    );
    assert_eq!(
        run(
            Dialect::ExtAuthz { path: "/" },
            LOCAL,
            "get",
            "/",
            &[("X-Forwarded-Proto", "https"), ("Host", "a.example.com")]
        )
        .unwrap_err(),
        ResolveError::InvalidMethod("request method")
    );
}

#[test]
fn legacy_dialect() {
    // X-Original-URL wins.
    let t = run(
        Dialect::Legacy,
        LOCAL,
        "GET",
        "/api/verify",
        &[
            ("X-Original-URL", "https://a.example.com/p"),
            ("X-Forwarded-Host", "b.example.com"),
        ],
    )
    .unwrap();
    assert_eq!(t.url.host(), "a.example.com");
    assert_eq!(t.method, Method::GET);
    // X-Forwarded-Host falls back to Host, X-Forwarded-URI to the request URI.
    let t = run(
        Dialect::Legacy,
        LOCAL,
        "POST",
        "/api/verify?x=1",
        &[("X-Forwarded-Proto", "https"), ("Host", "b.example.com")],
    )
    .unwrap();
    assert_eq!(t.url.to_string(), "https://b.example.com/api/verify?x=1");
    assert_eq!(t.method, Method::POST);
    // X-Forwarded-Method wins over the request line; X-Original-Method is not read.
    let t = run(
        Dialect::Legacy,
        LOCAL,
        "GET",
        "/api/verify",
        &[
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Host", "b.example.com"),
            ("X-Forwarded-URI", "/q"),
            ("X-Forwarded-Method", "PUT"),
            ("X-Original-Method", "DELETE"),
        ],
    )
    .unwrap();
    assert_eq!(t.method, Method::PUT);
    assert_eq!(t.url.to_string(), "https://b.example.com/q");
    assert!(matches!(
        run(
            Dialect::Legacy,
            LOCAL,
            "GET",
            "/",
            &[("X-Original-URL", "not a url")]
        )
        .unwrap_err(),
        ResolveError::InvalidUrl { .. }
    ));
}

#[test]
fn outpost_dialects() {
    // nginx: X-Original-URI split at the first `?` (Portcullis fixes the reference quirk).
    let t = run(
        Dialect::OutpostNginx,
        LOCAL,
        "GET",
        "/outpost.goauthentik.io/auth/nginx",
        &[
            ("X-Original-URI", "/public?x=/admin"),
            ("X-Forwarded-Proto", "https"),
            ("Host", "app.example.com"),
        ],
    )
    .unwrap();
    assert_eq!(t.url.path(), "/public");
    assert_eq!(t.url.query(), Some("x=/admin"));
    let t = run(
        Dialect::OutpostNginx,
        LOCAL,
        "GET",
        "/",
        &[("X-Original-URL", "https://app.example.com/z")],
    )
    .unwrap();
    assert_eq!(t.url.path(), "/z");
    // Both: X-Original-URL (set by the documented nginx block) wins over a client's X-Original-URI.
    let t = run(
        Dialect::OutpostNginx,
        LOCAL,
        "GET",
        "/",
        &[
            ("X-Original-URL", "https://app.example.com/secret"),
            ("X-Original-URI", "/outpost.goauthentik.io/ping"),
            ("Host", "app.example.com"),
        ],
    )
    .unwrap();
    assert_eq!(t.url.path(), "/secret");
    assert_eq!(
        run(Dialect::OutpostNginx, LOCAL, "GET", "/", &[]).unwrap_err(),
        ResolveError::MissingHeader("X-Original-URI")
    );
    // traefik/caddy: a proto-only request has no host and fails.
    assert_eq!(
        run(
            Dialect::OutpostForwarded,
            LOCAL,
            "GET",
            "/",
            &[("X-Forwarded-Proto", "https")]
        )
        .unwrap_err(),
        ResolveError::MissingHeader("X-Forwarded-Host")
    );
    assert_eq!(
        run(Dialect::OutpostForwarded, LOCAL, "GET", "/", &[]).unwrap_err(),
        ResolveError::MissingHeader("X-Forwarded-Proto")
    );
    // envoy: Host + captured path and query.
    let t = run(
        Dialect::OutpostEnvoy {
            path_and_query: "/a?b=c",
        },
        LOCAL,
        "GET",
        "/",
        &[("Host", "app.example.com")],
    )
    .unwrap();
    assert_eq!(t.url.to_string(), "http://app.example.com/a?b=c");
    assert_eq!(
        run(
            Dialect::OutpostEnvoy {
                path_and_query: "/"
            },
            LOCAL,
            "GET",
            "/",
            &[]
        )
        .unwrap_err(),
        ResolveError::MissingHeader("Host")
    );
}

#[test]
fn url_parser_rejects_malformed_input() {
    let bad: &[(&str, UrlError)] = &[
        ("https://", UrlError::EmptyHost),
        ("https:///path", UrlError::EmptyHost),
        ("https://:443/", UrlError::EmptyHost),
        ("https://a.example.com:99999/", UrlError::InvalidPort),
        ("https://a.example.com:8x/", UrlError::InvalidPort),
        ("https://[::1/", UrlError::InvalidHost),
        ("https://a.example.com\0/", UrlError::ForbiddenCharacter),
        ("https://a.example.com/\r\n", UrlError::ForbiddenCharacter),
        ("https://a.example.com/ x", UrlError::ForbiddenCharacter),
        ("https://a.example.com/\u{e9}", UrlError::ForbiddenCharacter),
        ("https://a.example.com/%", UrlError::InvalidPercentEncoding),
        (
            "https://a.example.com/%g0",
            UrlError::InvalidPercentEncoding,
        ),
        ("https://u:p@a.example.com/", UrlError::Userinfo),
        ("https://a%2eexample.com/", UrlError::InvalidHost),
        ("https://a<b.example.com/", UrlError::InvalidHost),
        // Empty labels (found by fuzzing): `x..example.com` would lie under `example.com`.
        ("https://x..example.com/", UrlError::InvalidHost),
        ("https://app.example.com../", UrlError::InvalidHost),
        ("https://.example.com/", UrlError::InvalidHost),
        ("HTTPS://App.Exampl../b?x=1#frag", UrlError::InvalidHost),
        ("1https://a.example.com/", UrlError::InvalidScheme),
        ("a.example.com/x", UrlError::NotAbsolute),
    ];
    for (input, expected) in bad {
        assert_eq!(TargetUrl::parse(input), Err(*expected), "{input:?}");
    }
    let t = TargetUrl::parse("https://[::1]:9091/x#frag").unwrap();
    assert_eq!(t.host(), "[::1]");
    assert_eq!(t.path(), "/x");
    assert_eq!(t.to_string(), "https://[::1]:9091/x");
    let t = TargetUrl::parse("HTTPS://B\u{0063}.Example.COM./").unwrap();
    assert_eq!(t.scheme(), "https");
    assert_eq!(t.host(), "bc.example.com");
}

proptest! {
    /// Fuzz-style law (docs/reference/security.md R5.4): every input yields a target or an error, never a panic, and
    /// a produced host is canonical.
    #[test]
    fn parse_never_panics(s in "\\PC{0,60}") {
        if let Ok(url) = TargetUrl::parse(&s) {
            prop_assert_eq!(url.host(), crate::domain::canonical_host(url.host()));
            prop_assert!(!url.host().is_empty());
        }
    }

    #[test]
    fn forward_auth_never_panics(proto in "[a-z:/]{0,8}", host in "[a-zA-Z0-9.@/:%\\[\\]-]{0,20}", uri in "[ -~]{0,20}") {
        let _ = run(Dialect::ForwardAuth, LOCAL, "GET", "/", &[
            ("X-Forwarded-Proto", &proto),
            ("X-Forwarded-Host", &host),
            ("X-Forwarded-URI", &uri),
            ("X-Forwarded-Method", "GET"),
        ]);
    }
}

/// The plain-domain shortcut gives exactly what the WHATWG host parser gives.
fn whatwg_host(host: &str) -> Option<String> {
    let parsed = url::Host::parse(host).ok()?;
    Some(crate::domain::canonical_host(&parsed.to_string()))
}

#[test]
fn plain_domain_shortcut_table() {
    let cases = [
        ("app.example.com", Some("app.example.com")),
        ("App.Example.COM.", Some("App.Example.COM")),
        ("a-b.c-d.e", Some("a-b.c-d.e")),
        ("-a.b-", Some("-a.b-")),
        ("localhost", Some("localhost")),
        ("x1.y2", Some("x1.y2")),
        ("1.2.3.4", None),
        ("1.2.3.4.", None),
        ("0x7f.1", None),
        ("example.0", None),
        ("example.0x1", None),
        ("a..b", None),
        (".a.b", None),
        ("a.b..", None),
        ("xn--bcher-kva.example", None),
        ("XN--bcher-kva.example", None),
        ("a_b.example", None),
        ("[::1]", None),
        ("", None),
    ];
    for (host, expected) in cases {
        assert_eq!(super::absolute_url::plain_domain(host), expected, "{host}");
        if let Some(name) = expected {
            assert_eq!(
                whatwg_host(host).as_deref(),
                Some(name.to_ascii_lowercase().as_str()),
                "{host}"
            );
        }
    }
}

proptest! {
    #[test]
    fn plain_domain_shortcut_agrees_with_whatwg(host in "[A-Za-z0-9.-]{1,24}") {
        if let Some(name) = super::absolute_url::plain_domain(&host) {
            prop_assert_eq!(whatwg_host(&host), Some(name.to_ascii_lowercase()));
        }
        // And a URL built on it parses to the same host either way.
        if let Ok(url) = TargetUrl::parse(&format!("https://{host}/x")) {
            prop_assert_eq!(Some(url.host().to_owned()), whatwg_host(&host));
        }
    }
}

/// The `str`-based splitting `TargetUrl::parse` used before its byte scans (BENCHMARKS.md, sixth
/// round), kept as the reference the scans must agree with: (scheme, authority, path, query, host,
/// port) or the error.
type Parts = (String, String, String, Option<String>, String, Option<u16>);

fn reference_parse(input: &str) -> Result<Parts, UrlError> {
    if input
        .bytes()
        .any(|b| b <= b' ' || b == 0x7f || b == b'\\' || !b.is_ascii())
    {
        return Err(UrlError::ForbiddenCharacter);
    }
    let input = input.split_once('#').map_or(input, |(before, _)| before);
    let (scheme, rest) = input.split_once("://").ok_or(UrlError::NotAbsolute)?;
    if !super::absolute_url::is_scheme(scheme) {
        return Err(UrlError::InvalidScheme);
    }
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path_and_query) = rest.split_at(authority_end);
    let (path, query) = match path_and_query.split_once('?') {
        Some((p, q)) => (p, Some(q.to_owned())),
        None => (path_and_query, None),
    };
    let (host, port) = super::absolute_url::parse_authority(authority)?;
    super::absolute_url::check_percent_encoding(path)?;
    let host = match host {
        super::absolute_url::Host::Received(len) => authority[..len].to_owned(),
        super::absolute_url::Host::Canonical(owned) => owned,
    };
    Ok((
        scheme.to_ascii_lowercase(),
        authority.to_owned(),
        path.to_owned(),
        query,
        host,
        port,
    ))
}

fn parts_of(url: &TargetUrl) -> Parts {
    (
        url.scheme().to_owned(),
        url.authority().to_owned(),
        url.path().to_owned(),
        url.query().map(str::to_owned),
        url.host().to_owned(),
        url.port(),
    )
}

#[test]
fn byte_scans_agree_with_the_reference_table() {
    for input in [
        "https://app.example.com/dashboard?tab=1",
        "HTTPS://App.Example.com./a/../b?x=1#frag",
        "https://a.example.com#x://y",
        "https:/x://y",
        "a:b://c",
        "https//x",
        "://x",
        "https:",
        "https://",
        "https://x:8443?q",
        "https://x?q/z",
        "https://[::1]:9091/x",
        "https://user@x/",
        "https://x/%zz",
        "https://x/a#b%zz",
        "ht tps://x",
        "https://x/\\",
        "https://x#\u{e9}",
    ] {
        let ours = TargetUrl::parse(input).map(|u| parts_of(&u));
        assert_eq!(ours, reference_parse(input), "{input}");
    }
}

proptest! {
    #[test]
    fn byte_scans_agree_with_the_reference(input in "[a-zA-Z0-9:/?#@.%\\[\\]\\\\ é-]{0,40}") {
        let ours = TargetUrl::parse(&input).map(|u| parts_of(&u));
        prop_assert_eq!(ours, reference_parse(&input));
    }

    #[test]
    fn byte_scans_agree_on_url_shaped_input(
        scheme in "[a-zA-Z:]{0,6}", sep in "(://|:/|//|:)", authority in "[a-zA-Z0-9.:@\\[\\]%-]{0,16}",
        tail in "[a-z0-9/?#%:.-]{0,16}",
    ) {
        let input = format!("{scheme}{sep}{authority}{tail}");
        let ours = TargetUrl::parse(&input).map(|u| parts_of(&u));
        prop_assert_eq!(ours, reference_parse(&input));
    }
}
