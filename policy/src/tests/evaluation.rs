//! docs/reference/forward-auth.md §10.1–§10.3: criteria, first match, default policy, anonymous
//! potential match.

use portcullis_core::{AuthLevel, AuthOutcome, Decision, decide};

use super::*;

#[test]
fn domain_forms() {
    let policy = compile(
        r#"
default_policy: deny
rules:
  - domain: App.Example.com
    policy: one_factor
  - domain: '*.example.com'
    policy: two_factor
"#,
    );
    let cases: &[(&str, Outcome)] = &[
        ("https://app.example.com/", (Some(0), OneFactor, false)),
        ("https://APP.Example.COM/", (Some(0), OneFactor, false)),
        ("https://app.example.com./x", (Some(0), OneFactor, false)),
        ("https://x.example.com/", (Some(1), TwoFactor, false)),
        ("https://a.b.example.com/", (Some(1), TwoFactor, false)),
        ("https://X.EXAMPLE.COM./", (Some(1), TwoFactor, false)),
        // the wildcard needs one more label, and a label boundary
        ("https://example.com/", (None, Deny, false)),
        ("https://evil-example.com/", (None, Deny, false)),
        ("https://notexample.com/", (None, Deny, false)),
        ("https://example.com.evil.net/", (None, Deny, false)),
        ("https://app.example.org/", (None, Deny, false)),
    ];
    for (url, expected) in cases {
        assert_eq!(outcome(&policy, &target(url), &anon()), *expected, "{url}");
    }
}

#[test]
fn domain_and_domain_regex_are_ored() {
    let policy = compile(
        r#"
rules:
  - domain: a.example.com
    domain_regex: '^b\d\.example\.com$'
    policy: one_factor
"#,
    );
    let cases = [
        ("https://a.example.com/", Some(0)),
        ("https://b1.example.com/", Some(0)),
        ("https://b12.example.com/", None),
        ("https://c.example.com/", None),
    ];
    for (url, expected) in cases {
        assert_eq!(
            policy.evaluate(&target(url), &anon()).rule,
            expected,
            "{url}"
        );
    }
}

#[test]
fn user_and_group_domains() {
    let policy = compile(
        r#"
rules:
  - domain: '{user}.home.example.com'
    policy: one_factor
  - domain: '{group}.team.example.com'
    policy: two_factor
"#,
    );
    let alice = user("alice", &["Dev"]);
    let cases: &[(&str, &Identity, Outcome)] = &[
        (
            "https://alice.home.example.com/",
            &alice,
            (Some(0), OneFactor, true),
        ),
        (
            "https://ALICE.home.example.com/",
            &alice,
            (Some(0), OneFactor, true),
        ),
        (
            "https://alice.home.example.com/",
            &user("Alice", &[]),
            (Some(0), OneFactor, true),
        ),
        ("https://bob.home.example.com/", &alice, (None, Deny, false)),
        ("https://home.example.com/", &alice, (None, Deny, false)),
        (
            "https://x.alice.home.example.com/",
            &alice,
            (None, Deny, false),
        ),
        (
            "https://dev.team.example.com/",
            &alice,
            (Some(1), TwoFactor, true),
        ),
        ("https://ops.team.example.com/", &alice, (None, Deny, false)),
        (
            "https://a.dev.team.example.com/",
            &alice,
            (None, Deny, false),
        ),
        // anonymous: any longer host under the suffix is a potential match
        (
            "https://bob.home.example.com/",
            &anon(),
            (Some(0), OneFactor, true),
        ),
        (
            "https://a.b.home.example.com/",
            &anon(),
            (Some(0), OneFactor, true),
        ),
        (
            "https://a.b.team.example.com/",
            &anon(),
            (Some(1), TwoFactor, true),
        ),
        ("https://home.example.com/", &anon(), (None, Deny, false)),
        (
            "https://evilhome.example.com/",
            &anon(),
            (None, Deny, false),
        ),
    ];
    for (url, identity, expected) in cases {
        assert_eq!(
            outcome(&policy, &target(url), identity),
            *expected,
            "{url} as {:?}",
            identity.username
        );
    }
}

#[test]
fn user_and_group_named_groups() {
    let policy = compile(
        r#"
rules:
  - domain_regex: '^(?P<User>\w+)\.users\.example\.com$'
    policy: one_factor
  - domain_regex: '^(?P<Group>\w+)\.groups\.example\.com$'
    policy: two_factor
  - domain: files.example.com
    resources: '^/home/(?P<User>[^/]+)/'
    policy: one_factor
"#,
    );
    let cases: &[(&str, Identity, Outcome)] = &[
        (
            "https://alice.users.example.com/",
            user("alice", &[]),
            (Some(0), OneFactor, true),
        ),
        (
            "https://alice.users.example.com/",
            user("ALICE", &[]),
            (Some(0), OneFactor, true),
        ),
        (
            "https://alice.users.example.com/",
            user("bob", &[]),
            (None, Deny, false),
        ),
        (
            "https://anyone.users.example.com/",
            anon(),
            (Some(0), OneFactor, true),
        ),
        (
            "https://admins.groups.example.com/",
            user("bob", &["Admins"]),
            (Some(1), TwoFactor, true),
        ),
        (
            "https://admins.groups.example.com/",
            user("bob", &["Users"]),
            (None, Deny, false),
        ),
        (
            "https://x.groups.example.com/",
            anon(),
            (Some(1), TwoFactor, true),
        ),
        (
            "https://files.example.com/home/alice/a.txt",
            user("alice", &[]),
            (Some(2), OneFactor, true),
        ),
        (
            "https://files.example.com/home/bob/a.txt",
            user("alice", &[]),
            (None, Deny, false),
        ),
        (
            "https://files.example.com/home/bob/a.txt",
            anon(),
            (Some(2), OneFactor, true),
        ),
        (
            "https://files.example.com/other",
            anon(),
            (None, Deny, false),
        ),
    ];
    for (url, identity, expected) in cases {
        assert_eq!(
            outcome(&policy, &target(url), identity),
            *expected,
            "{url} as {:?}",
            identity.username
        );
    }
}

#[test]
fn resources_see_the_canonical_path_and_the_raw_query() {
    let policy = compile(
        r#"
rules:
  - domain: app.example.com
    resources: ['^/api/', '^/health$']
    policy: bypass
  - domain: app.example.com
    resources: 'admin'
    policy: deny
  - domain: app.example.com
    policy: one_factor
  - domain: root.example.com
    resources: '^/$'
    policy: bypass
  - domain: root.example.com
    resources: '^\.$'
    policy: two_factor
"#,
    );
    let cases: &[(&str, Outcome)] = &[
        ("https://app.example.com/api/x", (Some(0), Bypass, false)),
        ("https://app.example.com/health", (Some(0), Bypass, false)),
        // `?` and the query are appended: `$` no longer matches
        (
            "https://app.example.com/health?x=1",
            (Some(2), OneFactor, false),
        ),
        ("https://app.example.com/health?", (Some(0), Bypass, false)),
        (
            "https://app.example.com/healthz",
            (Some(2), OneFactor, false),
        ),
        // the query trick: an unanchored pattern matches text in the query (reference behaviour)
        ("https://app.example.com/x?y=admin", (Some(1), Deny, false)),
        (
            "https://app.example.com/x?y=ad%6Din",
            (Some(2), OneFactor, false),
        ),
        // paths are case-sensitive
        ("https://app.example.com/API/x", (Some(2), OneFactor, false)),
        ("https://app.example.com", (Some(2), OneFactor, false)),
        // empty path is ".", not "/"
        ("https://root.example.com/", (Some(3), Bypass, false)),
        ("https://root.example.com", (Some(4), TwoFactor, false)),
        ("https://root.example.com/a/..", (Some(3), Bypass, false)),
    ];
    for (url, expected) in cases {
        assert_eq!(outcome(&policy, &target(url), &anon()), *expected, "{url}");
    }
}

#[test]
fn query_operators() {
    let policy = compile(
        r#"
default_policy: two_factor
rules:
  - domain: q.example.com
    query:
      - - key: mode
          value: public
    policy: bypass
  - domain: q.example.com
    query:
      - - key: debug
          operator: present
      - - key: token
          operator: pattern
          value: '^\d+$'
        - key: x
          operator: absent
    policy: deny
  - domain: q.example.com
    query:
      - - key: lang
          operator: not equal
          value: en
    policy: one_factor
  - domain: q.example.com
    query:
      - - key: v
          operator: not pattern
          value: '^\d$'
    policy: deny
"#,
    );
    let cases: &[(&str, Option<usize>)] = &[
        ("?mode=public", Some(0)),
        // only the first value counts
        ("?mode=public&mode=private", Some(0)),
        ("?mode=private&mode=public", Some(2)),
        // keys and values are decoded with form rules
        ("?mod%65=pub%6Cic", Some(0)),
        // a pair containing `;` is ignored (Go url.ParseQuery)
        ("?mode=public;x=1", Some(2)),
        ("?debug", Some(1)),
        ("?debug=", Some(1)),
        ("?token=123", Some(1)),
        ("?token=1%32", Some(1)),
        ("?token=12a", Some(2)),
        ("?token=123&x=1", Some(2)),
        ("?token=%D9%A3", Some(2)), // \d is ASCII
        // an absent key reads "", which is "not equal" to en
        ("", Some(2)),
        ("?lang=en&v=5", None),
        ("?lang=en&v=x", Some(3)),
        ("?lang=en", Some(3)),
        ("?lang=e+n", Some(2)),
    ];
    for (query, expected) in cases {
        let url = format!("https://q.example.com/{query}");
        assert_eq!(
            policy.evaluate(&target(&url), &anon()).rule,
            *expected,
            "{url}"
        );
    }
}

#[test]
fn query_equal_with_space_and_plus() {
    let policy = compile(
        r#"
rules:
  - domain: q.example.com
    query: [{key: q, value: 'a b'}]
    policy: bypass
"#,
    );
    for (url, expected) in [
        ("https://q.example.com/?q=a+b", Some(0)),
        ("https://q.example.com/?q=a%20b", Some(0)),
        ("https://q.example.com/?q=a%2Bb", None),
        ("https://q.example.com/?q=a%zzb", None),
    ] {
        assert_eq!(
            policy.evaluate(&target(url), &anon()).rule,
            expected,
            "{url}"
        );
    }
}

#[test]
fn methods() {
    let policy = compile(
        r#"
default_policy: one_factor
rules:
  - domain: m.example.com
    methods: [OPTIONS, HEAD]
    policy: bypass
  - domain: m.example.com
    methods: POST
    policy: deny
"#,
    );
    for (method, expected) in [
        ("OPTIONS", (Some(0), Bypass, false)),
        ("HEAD", (Some(0), Bypass, false)),
        ("POST", (Some(1), Deny, false)),
        ("GET", (None, OneFactor, false)),
        ("PUT", (None, OneFactor, false)),
    ] {
        let t = target_full(
            "https://m.example.com/",
            method,
            ClientIp::Known("192.0.2.1".parse().unwrap()),
        );
        assert_eq!(outcome(&policy, &t, &anon()), expected, "{method}");
    }
}

#[test]
fn networks() {
    let policy = try_compile(
        r#"
default_policy: two_factor
networks:
  - name: office
    networks: 172.16.0.0/12
rules:
  - domain: n.example.com
    networks: internal
    policy: bypass
  - domain: n.example.com
    networks: ['2001:db8::/32', office]
    policy: one_factor
  - domain: n.example.com
    networks: 198.51.100.7
    policy: deny
"#,
        &[("internal", &["10.0.0.0/8", "192.168.1.5"])],
    )
    .unwrap();
    let ip = |s: &str| ClientIp::Known(s.parse().unwrap());
    let cases = [
        (ip("10.1.2.3"), Some(0)),
        (ip("192.168.1.5"), Some(0)),
        (ip("192.168.1.6"), None),
        (ip("::ffff:10.1.2.3"), Some(0)),
        (ip("2001:db8::1"), Some(1)),
        (ip("172.31.255.255"), Some(1)),
        (ip("198.51.100.7"), Some(2)),
        (ip("198.51.100.8"), None),
        // an unknown client IP matches no network rule
        (ClientIp::Unknown, None),
    ];
    for (client_ip, expected) in cases {
        let t = target_full("https://n.example.com/", "GET", client_ip);
        assert_eq!(policy.evaluate(&t, &anon()).rule, expected, "{client_ip}");
    }
}

#[test]
fn subjects() {
    let policy = compile(
        r#"
rules:
  - domain: s.example.com
    subject: [['user:alice'], ['group:admins', 'group:ops']]
    policy: one_factor
  - domain: s.example.com
    subject: 'oauth2:client:robot'
    policy: one_factor
  - domain: s.example.com
    subject: ['user:carol', ['group:a', 'group:b']]
    policy: two_factor
"#,
    );
    let mut robot = Identity::user("", AuthLevel::OneFactor);
    robot.client_id = Some("robot".into());
    let mut other_robot = robot.clone();
    other_robot.client_id = Some("robot2".into());
    let cases: &[(Identity, Outcome)] = &[
        (user("alice", &[]), (Some(0), OneFactor, true)),
        // user: is exact
        (user("Alice", &[]), (None, Deny, false)),
        (user("bob", &["admins", "ops"]), (Some(0), OneFactor, true)),
        (user("bob", &["admins"]), (None, Deny, false)),
        // group: is case-sensitive
        (user("bob", &["Admins", "ops"]), (None, Deny, false)),
        (robot, (Some(1), OneFactor, true)),
        (other_robot, (None, Deny, false)),
        (user("carol", &[]), (Some(2), TwoFactor, true)),
        (user("dave", &["a", "b"]), (Some(2), TwoFactor, true)),
        (user("dave", &["a"]), (None, Deny, false)),
        // anonymous: the first rule with subjects is a potential match
        (anon(), (Some(0), OneFactor, true)),
    ];
    for (identity, expected) in cases {
        assert_eq!(
            outcome(&policy, &target("https://s.example.com/"), identity),
            *expected,
            "{identity:?}"
        );
    }
}

#[test]
fn anonymous_potential_match_and_fall_through_after_login() {
    let policy = compile(
        r#"
default_policy: deny
rules:
  - domain: d.example.com
    subject: 'group:banned'
    policy: deny
  - domain: d.example.com
    resources: '^/admin'
    subject: 'group:admins'
    policy: two_factor
  - domain: d.example.com
    policy: one_factor
  - domain: x.example.com
    policy: deny
"#,
    );
    let t = |p: &str| target(&format!("https://d.example.com{p}"));
    // anonymous stops at the first rule that could match: a deny with subject -> login, not 403
    let e = policy.evaluate(&t("/"), &anon());
    assert_eq!(
        (e.rule, e.requirement.level, e.requirement.rule_has_subject),
        (Some(0), Deny, true)
    );
    assert_eq!(
        decide(e.requirement, AuthOutcome::anonymous()),
        Decision::Redirect
    );
    // a banned user gets 403
    let banned = user("mallory", &["banned"]);
    let e = policy.evaluate(&t("/"), &banned);
    assert_eq!(e.rule, Some(0));
    assert_eq!(
        decide(
            e.requirement,
            AuthOutcome::authenticated(AuthLevel::TwoFactor, false)
        ),
        Decision::Forbidden
    );
    // after login, failing the subjects falls through to later rules
    assert_eq!(
        outcome(&policy, &t("/"), &user("bob", &[])),
        (Some(2), OneFactor, false)
    );
    assert_eq!(
        outcome(&policy, &t("/admin"), &user("bob", &[])),
        (Some(2), OneFactor, false)
    );
    assert_eq!(
        outcome(&policy, &t("/admin"), &user("root", &["admins"])),
        (Some(1), TwoFactor, true)
    );
    // a deny without subject is a 403 even for anonymous users
    let e = policy.evaluate(&target("https://x.example.com/"), &anon());
    assert_eq!((e.rule, e.requirement.rule_has_subject), (Some(3), false));
    assert_eq!(
        decide(e.requirement, AuthOutcome::anonymous()),
        Decision::Forbidden
    );
    // the default policy never has subject
    assert_eq!(
        outcome(&policy, &target("https://y.example.com/"), &anon()),
        (None, Deny, false)
    );
}

#[test]
fn first_match_wins_and_default_applies() {
    let policy = compile(
        r#"
default_policy: one_factor
rules:
  - domain: '*.example.com'
    policy: two_factor
  - domain: app.example.com
    policy: bypass
"#,
    );
    assert_eq!(
        outcome(&policy, &target("https://app.example.com/"), &anon()),
        (Some(0), TwoFactor, false)
    );
    assert_eq!(
        outcome(&policy, &target("https://other.org/"), &anon()),
        (None, OneFactor, false)
    );
    // default_policy absent means deny
    let policy = compile("rules: [{domain: a.example.com, policy: bypass}]");
    assert_eq!(policy.default_level(), Deny);
    // no rules is fine with one_factor/two_factor
    let policy = compile("default_policy: two_factor");
    assert_eq!(policy.rule_count(), 0);
    assert_eq!(
        outcome(&policy, &target("https://any.example.com/"), &anon()),
        (None, TwoFactor, false)
    );
}

#[test]
fn has_two_factor_and_rule_count() {
    let cases = [
        ("default_policy: two_factor", true, 0),
        ("default_policy: one_factor", false, 0),
        (
            "rules: [{domain: a.example.com, policy: two_factor}]",
            true,
            1,
        ),
        (
            "default_policy: one_factor\nrules: [{domain: a.example.com, policy: bypass}, {domain: b.example.com, policy: deny}]",
            false,
            2,
        ),
    ];
    for (yaml, two_factor, count) in cases {
        let policy = compile(yaml);
        assert_eq!(policy.has_two_factor(), two_factor, "{yaml}");
        assert_eq!(policy.rule_count(), count, "{yaml}");
    }
}

#[test]
fn warnings_for_unanchored_bypass_resources() {
    let policy = compile(
        r#"
rules:
  - domain: a.example.com
    resources: ['^/public/', '/static/', '^/x|/y']
    policy: bypass
  - domain: a.example.com
    resources: 'admin'
    policy: deny
  - domain: a.example.com
    resources: '(?i)^/Assets/'
    policy: bypass
  - domain: a.example.com
    resources: '^/100%'
    policy: one_factor
"#,
    );
    let warnings = policy.warnings();
    assert_eq!(warnings.len(), 3, "{warnings:#?}");
    assert!(
        warnings[0].starts_with("access_control.rules[0].resources[1]:"),
        "{}",
        warnings[0]
    );
    assert!(
        warnings[1].starts_with("access_control.rules[0].resources[2]:"),
        "{}",
        warnings[1]
    );
    assert!(
        warnings[2].starts_with("access_control.rules[3].resources[0]:"),
        "{}",
        warnings[2]
    );
    assert!(compile("default_policy: one_factor").warnings().is_empty());
}

#[test]
fn compiled_types_are_shareable() {
    fn shareable<T: Send + Sync + Clone + std::fmt::Debug>() {}
    shareable::<Policy>();
    shareable::<crate::SkipPaths>();
    shareable::<crate::Explanation>();
}
