//! A realistic `access_control` section of any size, built programmatically.
//!
//! Shared by the criterion benchmarks (`policy/benches/evaluate.rs` includes this file by path, so it
//! only uses `portcullis_policy`) and by `scripts/bench`, which renders it into a configuration.
//!
//! `realistic(n)` returns `n` rules: `n - 3` generated ones cycling through ten shapes seen in real
//! configurations (exact domains, several domains, `*.` wildcards, `domain_regex`, `resources`
//! regexes with and without a `User` named group, `subject` groups and users, `networks`, `methods`,
//! `query`), then three fixed rules that the benchmark requests hit:
//!
//! - `public.example.com` → `bypass` (rule `n - 3`),
//! - `app.example.com` + `^/admin` + `group:admins` → `one_factor` (rule `n - 2`),
//! - `*.example.com` → `one_factor` (rule `n - 1`, the catch-all).
//!
//! So a request for `https://app.example.com/dashboard` scans every rule before it matches the last
//! one: the worst case for a first-match scan, and the common one (specific rules first, the
//! catch-all last). The default policy is `deny`.

use portcullis_policy::{AccessControlConfig, QueryItemConfig, RuleConfig};

/// The target every benchmark request that should reach the catch-all rule uses.
pub const APP_URL: &str = "https://app.example.com/dashboard?tab=1";
/// A target answered by the bypass rule (rule `n - 3`).
pub const BYPASS_URL: &str = "https://public.example.com/assets/app.css";

fn strings<const N: usize>(items: [&str; N]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// `n` rules (at least 3), as described in the module documentation.
pub fn realistic(n: usize) -> AccessControlConfig {
    let n = n.max(3);
    let mut rules = Vec::with_capacity(n);
    for i in 0..n - 3 {
        let rule = match i % 10 {
            0 => RuleConfig {
                domain: vec![format!("svc{i}.example.com")],
                policy: "one_factor".into(),
                ..RuleConfig::default()
            },
            1 => RuleConfig {
                domain: vec![format!("*.team{i}.example.com")],
                policy: "two_factor".into(),
                ..RuleConfig::default()
            },
            2 => RuleConfig {
                domain: vec![format!("api{i}.example.com")],
                resources: vec![format!("^/api/v{}/", i % 7), "^/static/".into()],
                policy: "bypass".into(),
                ..RuleConfig::default()
            },
            3 => RuleConfig {
                domain: vec![format!("wiki{i}.example.com")],
                subject: vec![
                    vec![format!("group:team{i}")],
                    vec!["group:admins".into(), format!("user:user{i}")],
                ],
                policy: "one_factor".into(),
                ..RuleConfig::default()
            },
            4 => RuleConfig {
                domain: vec![format!("intranet{i}.example.com")],
                networks: vec![
                    format!("10.{}.0.0/16", i % 256),
                    "192.168.0.0/24".into(),
                    "2001:db8::/32".into(),
                ],
                policy: "bypass".into(),
                ..RuleConfig::default()
            },
            5 => RuleConfig {
                domain_regex: vec![format!(r"^app{i}-[a-z0-9]+\.example\.com$")],
                policy: "one_factor".into(),
                ..RuleConfig::default()
            },
            6 => RuleConfig {
                domain: vec![format!("git{i}.example.com")],
                methods: strings(["POST", "PUT", "DELETE"]),
                resources: vec![r"^/repos/[^/]+/settings".into()],
                policy: "deny".into(),
                ..RuleConfig::default()
            },
            7 => RuleConfig {
                domain: vec![format!("home{i}.example.com")],
                resources: vec![r"^/users/(?P<User>\w+)/".into()],
                policy: "two_factor".into(),
                ..RuleConfig::default()
            },
            8 => RuleConfig {
                domain: vec![format!("files{i}.example.com")],
                query: vec![vec![QueryItemConfig {
                    key: "token".into(),
                    operator: Some("pattern".into()),
                    value: Some("^[A-Za-z0-9]{32}$".into()),
                }]],
                policy: "bypass".into(),
                ..RuleConfig::default()
            },
            _ => RuleConfig {
                domain: vec![
                    format!("a{i}.example.com"),
                    format!("b{i}.example.com"),
                    format!("*.c{i}.example.com"),
                ],
                subject: vec![vec![format!("user:user{i}")]],
                policy: "two_factor".into(),
                ..RuleConfig::default()
            },
        };
        rules.push(rule);
    }
    rules.push(RuleConfig {
        domain: vec!["public.example.com".into()],
        policy: "bypass".into(),
        ..RuleConfig::default()
    });
    rules.push(RuleConfig {
        domain: vec!["app.example.com".into()],
        resources: vec!["^/admin([/?].*)?$".into()],
        subject: vec![vec!["group:admins".into()]],
        policy: "one_factor".into(),
        ..RuleConfig::default()
    });
    rules.push(RuleConfig {
        domain: vec!["*.example.com".into()],
        policy: "one_factor".into(),
        ..RuleConfig::default()
    });
    AccessControlConfig {
        default_policy: Some("deny".into()),
        networks: Vec::new(),
        rules,
    }
}
