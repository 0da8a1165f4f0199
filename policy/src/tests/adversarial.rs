//! docs/reference/security.md §4: a bypass on `^/public/` never unlocks a rule protecting
//! `^/admin`, whatever the spelling of the path (R4.1, R4.2, R4.6).

use proptest::prelude::*;

use super::*;

const BYPASS_FIRST: &str = r#"
default_policy: one_factor
rules:
  - domain: app.example.com
    resources: '^/public/'
    policy: bypass
  - domain: app.example.com
    resources: '^/admin'
    policy: deny
"#;

const PROTECT_FIRST: &str = r#"
default_policy: one_factor
rules:
  - domain: app.example.com
    resources: '^/admin'
    policy: deny
  - domain: app.example.com
    resources: '^/public/'
    policy: bypass
"#;

/// Expected outcome under `BYPASS_FIRST`; `PROTECT_FIRST` swaps the rule indices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Public,
    Admin,
    Default,
}

const CASES: &[(&str, Expect)] = &[
    ("/public/x", Expect::Public),
    ("/admin", Expect::Admin),
    ("/admin/users", Expect::Admin),
    // dot segments, literal and encoded (any case)
    ("/public/../admin", Expect::Admin),
    ("/public/./../admin", Expect::Admin),
    ("/public/%2e%2e/admin", Expect::Admin),
    ("/public/%2E%2E/admin", Expect::Admin),
    ("/public/.%2e/admin", Expect::Admin),
    ("/public/%2e./admin", Expect::Admin),
    ("/public/x/../../admin", Expect::Admin),
    // encoded slashes
    ("/public/..%2fadmin", Expect::Admin),
    ("/public/..%2Fadmin", Expect::Admin),
    ("/public%2f..%2fadmin", Expect::Admin),
    ("/admin%2f", Expect::Admin),
    ("/%61dmin", Expect::Admin),
    // repeated slashes
    ("//admin", Expect::Admin),
    ("///admin//x", Expect::Admin),
    ("//public/..//admin", Expect::Admin),
    // `;` parameters
    ("/admin;x", Expect::Admin),
    ("/public/..;/admin", Expect::Admin),
    ("/public/..;x=1/admin", Expect::Admin),
    ("/public/..%3b/admin", Expect::Admin),
    ("/public;x/../admin", Expect::Admin),
    // fragment markers: a raw `#` is not part of the path, a decoded one cuts a reading
    ("/admin#/public/", Expect::Admin),
    ("/public/%23/../../admin", Expect::Admin),
    // (a decoded `#` is a segment like any other: `..` removes it, not `public`)
    ("/public/%23/../admin", Expect::Public),
    ("/public/%23/..;/..;/admin", Expect::Admin),
    ("/admin%23/public/", Expect::Admin),
    // the query is after the path: `^/public/` cannot match it
    ("/admin?x=/public/", Expect::Admin),
    ("/admin?/public/", Expect::Admin),
    // backslashes (a raw one is refused by the URL parser)
    ("/public/..%5cadmin", Expect::Admin),
    ("/public/..%5Cadmin", Expect::Admin),
    // paths are case-sensitive, as in the reference: /ADMIN is not /admin, and not public either
    ("/ADMIN", Expect::Default),
    ("/Public/x", Expect::Default),
    // a path that cannot be normalised is never bypassed: strictest candidate (the deny rule)
    ("/public/x%00", Expect::Admin),
    ("/public/%ff", Expect::Admin),
    ("/public/%0a/../admin", Expect::Admin),
    // legitimate readings stay public
    ("/public/a;v=1", Expect::Public),
    ("/public/x%3Fy", Expect::Public),
    ("/public/caf%C3%A9", Expect::Public),
    ("/public//x/./y/", Expect::Public),
];

#[test]
fn bypass_on_public_never_unlocks_admin() {
    for (yaml, swapped) in [(BYPASS_FIRST, false), (PROTECT_FIRST, true)] {
        let policy = compile(yaml);
        for (path, expect) in CASES {
            let url = format!("https://app.example.com{path}");
            let (public_rule, admin_rule) = if swapped { (1, 0) } else { (0, 1) };
            let expected = match expect {
                Expect::Public => (Some(public_rule), Bypass, false),
                Expect::Admin => (Some(admin_rule), Deny, false),
                Expect::Default => (None, OneFactor, false),
            };
            let explained = policy.explain(&target(&url), &anon()).evaluation;
            assert_eq!(explained, policy.evaluate(&target(&url), &anon()), "{path}");
            assert_eq!(
                outcome(&policy, &target(&url), &anon()),
                expected,
                "{path} (protect first: {swapped})"
            );
        }
    }
}

#[test]
fn exactly_anchored_protection_sees_params_and_markers() {
    let policy = compile(
        r#"
default_policy: bypass
rules:
  - domain: app.example.com
    resources: '^/admin$'
    policy: deny
"#,
    );
    for path in [
        "/admin",
        "/admin/.",
        "//admin",
        "/admin;x",
        "/admin%3bx",
        "/admin%23",
        "/admin%23frag",
        "/admin%3F",
        "/x/..;/admin",
        "/x%5c..%5cadmin",
        "/x%5c..%5cadmin;p%23f",
        "/admin%00",
    ] {
        let url = format!("https://app.example.com{path}");
        let e = policy.evaluate(&target(&url), &anon());
        assert_eq!(e.requirement.level, Deny, "{path}");
    }
    // a trailing slash is a different path, not a spelling of the same one
    for path in ["/admins", "/admin/", "/admin;x/"] {
        let url = format!("https://app.example.com{path}");
        assert_eq!(
            policy.evaluate(&target(&url), &anon()).requirement.level,
            Bypass,
            "{path}"
        );
    }
}

#[test]
fn unnormalisable_paths_are_never_bypassed() {
    // Every candidate bypasses: fail closed with a plain deny.
    let policy = compile("rules: [{domain: public.example.com, policy: bypass}]");
    for path in ["/x%00", "/%ff", "/a%C2%85b"] {
        let url = format!("https://public.example.com{path}");
        assert_eq!(
            outcome(&policy, &target(&url), &anon()),
            (None, Deny, false),
            "{path}"
        );
    }
    assert_eq!(
        outcome(&policy, &target("https://public.example.com/x"), &anon()),
        (Some(0), Bypass, false)
    );
    // The strictest candidate decides: the bypass might apply, the default might too.
    let policy = compile(
        r#"
default_policy: one_factor
rules:
  - domain: app.example.com
    resources: '^/public/'
    policy: bypass
  - domain: other.example.com
    policy: deny
"#,
    );
    assert_eq!(
        outcome(
            &policy,
            &target("https://app.example.com/public/%ff"),
            &anon()
        ),
        (None, OneFactor, false)
    );
    // A rule that matches whatever the path is ends the candidates.
    let policy = compile(
        r#"
default_policy: deny
rules:
  - domain: app.example.com
    resources: '^/public/'
    policy: bypass
  - domain: app.example.com
    subject: 'group:staff'
    policy: two_factor
  - domain: app.example.com
    policy: one_factor
"#,
    );
    assert_eq!(
        outcome(
            &policy,
            &target("https://app.example.com/public/%00"),
            &anon()
        ),
        (Some(1), TwoFactor, true)
    );
    assert_eq!(
        outcome(
            &policy,
            &target("https://app.example.com/public/%00"),
            &user("bob", &[])
        ),
        (Some(2), OneFactor, false)
    );
}

#[test]
fn hosts_compare_case_insensitively() {
    let policy = compile(BYPASS_FIRST);
    for host in ["APP.example.com", "app.EXAMPLE.com.", "App.Example.Com"] {
        let url = format!("https://{host}/admin");
        assert_eq!(
            outcome(&policy, &target(&url), &anon()),
            (Some(1), Deny, false),
            "{host}"
        );
    }
}

/// A spelling of `/admin/<tail>` that differs only in encoding, dot segments, repeated slashes,
/// `;` parameters and a trailing fragment marker.
fn admin_variant() -> impl Strategy<Value = String> {
    let segment_chars = |s: &'static str| {
        prop::collection::vec(any::<bool>(), s.len()).prop_map(move |encode| {
            s.chars()
                .zip(encode)
                .map(|(c, e)| {
                    if e {
                        format!("%{:02X}", c as u32)
                    } else {
                        c.to_string()
                    }
                })
                .collect::<String>()
        })
    };
    let detour = prop::sample::select(vec![
        "",
        "",
        "./",
        "public/../",
        "public/%2e%2e/",
        "public/..;/",
        "x/y/../../",
        "/",
        "%2e/",
    ]);
    let param = prop::sample::select(vec!["", "", ";x", ";a=b", "%3bp"]);
    let slash = prop::sample::select(vec!["/", "/", "//", "%2f", "/./"]);
    let fragment = prop::sample::select(vec!["", "", "%23", "%23/public/", "#x"]);
    (
        detour,
        segment_chars("admin"),
        param,
        slash,
        segment_chars("users"),
        prop::sample::select(vec!["", ";p", "/"]),
        fragment,
    )
        .prop_map(
            |(detour, admin, param, slash, tail, tail_param, fragment)| {
                format!("/{detour}{admin}{param}{slash}{tail}{tail_param}{fragment}")
            },
        )
}

proptest! {
    #[test]
    fn variants_of_admin_are_never_more_permissive(path in admin_variant()) {
        let url = format!("https://app.example.com{path}");
        let target = target(&url);
        for yaml in [BYPASS_FIRST, PROTECT_FIRST] {
            let policy = compile(yaml);
            prop_assert_eq!(policy.evaluate(&target, &anon()).requirement.level, Deny, "{}", path);
        }
    }
}
