use std::path::Path;

use super::*;
use crate::config::{Provider, parse};

fn providers(entries: &[(&str, &str, &str)]) -> Vec<Provider> {
    let mut text = String::from("storage:\n  memory: true\nproviders:\n");
    for (name, mode, host) in entries {
        let domain = if *mode == "forward_domain" {
            let d = host
                .trim_start_matches("https://")
                .split_once('.')
                .unwrap()
                .1;
            format!("    cookie_domain: {}\n", d.split(':').next().unwrap())
        } else {
            String::new()
        };
        text.push_str(&format!(
            "  - name: {name}\n    mode: {mode}\n    external_host: {host}\n    internal_host: http://127.0.0.1:1\n    cookie_secret: 'a-cookie-secret-of-at-least-32-bytes!'\n    client_id: {name}\n    issuer: https://auth.example.com\n{domain}"
        ));
    }
    parse(Path::new("t.yml"), &text, &|_| None)
        .unwrap()
        .0
        .providers
}

#[test]
fn apps_are_chosen_exactly_then_by_domain_on_a_dot_boundary_then_alone() {
    let all = providers(&[
        ("grafana", "proxy", "https://grafana.example.com"),
        ("wiki", "forward_single", "https://wiki.example.com:8443"),
        ("corp", "forward_domain", "https://auth.corp.example.com"),
        ("top", "forward_domain", "https://auth.example.com"),
    ]);
    assert_eq!(select(&all, "grafana.example.com"), Some(0));
    assert_eq!(select(&all, "GRAFANA.example.com."), Some(0));
    assert_eq!(select(&all, "wiki.example.com:8443"), Some(1));
    // The longest cookie domain wins; the port does not matter for domain mode.
    assert_eq!(select(&all, "app.corp.example.com"), Some(2));
    assert_eq!(select(&all, "app.corp.example.com:444"), Some(2));
    assert_eq!(
        select(&all, "wiki.example.com"),
        Some(3),
        "wiki's port differs: domain mode"
    );
    assert_eq!(select(&all, "example.com"), Some(3));
    // No dot boundary, no match (authentik would match `evilexample.com`).
    assert_eq!(select(&all, "evilexample.com"), None);
    assert_eq!(select(&all, "other.org"), None);
    let one = providers(&[("grafana", "proxy", "https://grafana.example.com")]);
    assert_eq!(select(&one, "anything.org"), Some(0));
}

#[test]
fn paths_are_cleaned_like_go() {
    assert_eq!(clean_path("/a/b"), None);
    assert_eq!(clean_path("/"), None);
    assert_eq!(clean_path("/a/"), None);
    assert_eq!(clean_path("//a///b"), Some("/a/b".into()));
    assert_eq!(clean_path("/a/./b/../c/"), Some("/a/c/".into()));
    assert_eq!(clean_path("/../../etc"), Some("/etc".into()));
    assert_eq!(
        clean_path("/outpost.goauthentik.io/auth/../start"),
        Some("/outpost.goauthentik.io/start".into())
    );
    assert_eq!(clean_path(""), Some("/".into()));
    assert_eq!(
        clean_path("/%2e%2e/x"),
        None,
        "encoded dots are not segments here"
    );
}

#[test]
fn signatures_and_parameters() {
    assert!(query_flag(
        Some("code=1&X-authentik-auth-callback=true"),
        "X-authentik-auth-callback"
    ));
    assert!(query_flag(
        Some("x-AUTHENTIK-logout=TRUE"),
        "X-authentik-logout"
    ));
    assert!(!query_flag(
        Some("X-authentik-logout=1"),
        "X-authentik-logout"
    ));
    assert!(!query_flag(None, "X-authentik-logout"));
    assert_eq!(
        query_param(Some("a=1&rd=%2Fx%3Fy"), "rd").as_deref(),
        Some("/x?y")
    );
    assert_eq!(strip_port("a.example.com:80"), "a.example.com");
    assert_eq!(strip_port("[::1]:80"), "[::1]");
    assert_eq!(strip_port("a.example.com"), "a.example.com");
}

#[test]
fn redirect_targets_per_mode() {
    let all = providers(&[
        ("single", "forward_single", "https://app.example.com"),
        ("domain", "forward_domain", "https://auth.example.com"),
    ]);
    let (single, domain) = (&all[0], &all[1]);
    assert_eq!(
        accept_redirect(single, "/x?y=1").as_deref(),
        Some("https://app.example.com/x?y=1")
    );
    assert_eq!(
        accept_redirect(single, "https://app.example.com/a").as_deref(),
        Some("https://app.example.com/a")
    );
    for bad in [
        "//evil.com/x",
        "/\\evil.com",
        "https://evil.com/",
        "https://app.example.com:8443/",
        "http://app.example.com/",
        "https://user@app.example.com/",
        "javascript:alert(1)",
        "",
    ] {
        assert_eq!(accept_redirect(single, bad), None, "{bad}");
    }
    assert!(accept_redirect(domain, "https://wiki.example.com/a").is_some());
    assert!(
        accept_redirect(domain, "https://example.com/").is_some(),
        "the apex"
    );
    assert!(
        accept_redirect(domain, "http://wiki.example.com:8080/").is_some(),
        "port ignored"
    );
    for bad in [
        "https://evilexample.com/",
        "https://example.com.evil.org/",
        "ftp://wiki.example.com/",
        "/relative",
        "https://wiki.example.com\\@evil.org/",
    ] {
        assert_eq!(accept_redirect(domain, bad), None, "{bad}");
    }
}
