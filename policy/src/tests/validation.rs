//! docs/reference/forward-auth.md §10.4 and §14 item 4: configuration errors name the rule index
//! and field.

use super::*;

/// Recognises the expected error variant.
type Is = fn(&PolicyError) -> bool;

fn err(yaml: &str) -> PolicyError {
    try_compile(yaml, &[("lan", &["10.0.0.0/8"])]).unwrap_err()
}

/// A rule list where rule 3 is the one under test.
fn rule3(rule: &str) -> String {
    format!(
        "rules:\n  - {{domain: a.example.com, policy: bypass}}\n  - {{domain: b.example.com, policy: one_factor}}\n  - {{domain: c.example.com, policy: deny}}\n  - {rule}\n"
    )
}

#[test]
fn rule_errors_name_index_and_field() {
    let cases: &[(&str, &str, Is)] = &[
        (
            "{domain: x.example.com, policy: allow}",
            "policy",
            |e| matches!(e, PolicyError::UnknownPolicy { value, .. } if value == "allow"),
        ),
        ("{domain: x.example.com, policy: Deny}", "policy", |e| {
            matches!(e, PolicyError::UnknownPolicy { .. })
        }),
        ("{policy: deny}", "domain", |e| {
            matches!(e, PolicyError::MissingDomain { .. })
        }),
        (
            "{domain: ['a.example.com', ''], policy: deny}",
            "domain[1]",
            |e| matches!(e, PolicyError::InvalidDomain { .. }),
        ),
        ("{domain: '*', policy: deny}", "domain[0]", |e| {
            matches!(e, PolicyError::InvalidDomain { .. })
        }),
        (
            "{domain: 'a*.example.com', policy: deny}",
            "domain[0]",
            |e| matches!(e, PolicyError::InvalidDomain { .. }),
        ),
        (
            "{domain: 'a.example.com:8080', policy: deny}",
            "domain[0]",
            |e| matches!(e, PolicyError::InvalidDomain { .. }),
        ),
        ("{domain: '*.192.0.2.1', policy: deny}", "domain[0]", |e| {
            matches!(e, PolicyError::InvalidDomain { .. })
        }),
        // bypass may not depend on the user
        (
            "{domain: x.example.com, policy: bypass, subject: 'user:a'}",
            "subject",
            |e| matches!(e, PolicyError::BypassWithSubject { .. }),
        ),
        (
            "{domain: [x.example.com, '{user}.example.com'], policy: bypass}",
            "domain[1]",
            |e| matches!(e, PolicyError::BypassWithSubject { .. }),
        ),
        (
            "{domain: '{group}.example.com', policy: bypass}",
            "domain[0]",
            |e| matches!(e, PolicyError::BypassWithSubject { .. }),
        ),
        (
            r"{domain_regex: '^(?P<User>\w+)\.example\.com$', policy: bypass}",
            "domain_regex[0]",
            |e| matches!(e, PolicyError::BypassWithSubject { .. }),
        ),
        (
            "{domain: x.example.com, resources: ['^/a', '^/(?P<Group>[a-z]+)/'], policy: bypass}",
            "resources[1]",
            |e| matches!(e, PolicyError::BypassWithSubject { .. }),
        ),
        // invalid regexes, and named groups other than User/Group
        (
            "{domain: x.example.com, resources: ['^/ok', '('], policy: deny}",
            "resources[1]",
            |e| matches!(e, PolicyError::InvalidRegex { .. }),
        ),
        (
            "{domain_regex: '[a-', policy: deny}",
            "domain_regex[0]",
            |e| matches!(e, PolicyError::InvalidRegex { .. }),
        ),
        (
            r"{domain: x.example.com, resources: '^/(?P<id>\d+)', policy: deny}",
            "resources[0]",
            |e| matches!(e, PolicyError::ForbiddenGroupName { name, .. } if name == "id"),
        ),
        (
            r"{domain_regex: '^(?<user>\w+)\.example\.com$', policy: one_factor}",
            "domain_regex[0]",
            |e| matches!(e, PolicyError::ForbiddenGroupName { name, .. } if name == "user"),
        ),
        // networks
        (
            "{domain: x.example.com, networks: ['10.0.0.0/33'], policy: deny}",
            "networks[0]",
            |e| matches!(e, PolicyError::InvalidNetwork { rule: Some(3), .. }),
        ),
        (
            "{domain: x.example.com, networks: [lan, '300.1.1.1'], policy: deny}",
            "networks[1]",
            |e| matches!(e, PolicyError::InvalidNetwork { .. }),
        ),
        (
            "{domain: x.example.com, networks: [lan, office], policy: deny}",
            "networks[1]",
            |e| matches!(e, PolicyError::UnknownNetwork { name, .. } if name == "office"),
        ),
        // subjects
        (
            "{domain: x.example.com, subject: 'admin', policy: deny}",
            "subject[0][0]",
            |e| matches!(e, PolicyError::InvalidSubject { .. }),
        ),
        (
            "{domain: x.example.com, subject: [['user:a', 'role:x']], policy: deny}",
            "subject[0][1]",
            |e| matches!(e, PolicyError::InvalidSubject { value, .. } if value == "role:x"),
        ),
        (
            "{domain: x.example.com, subject: ['user:a', 'group:'], policy: deny}",
            "subject[1][0]",
            |e| matches!(e, PolicyError::InvalidSubject { .. }),
        ),
        // query
        (
            "{domain: x.example.com, query: [[{key: a, operator: contains, value: x}]], policy: deny}",
            "query[0][0].operator",
            |e| matches!(e, PolicyError::UnknownQueryOperator { operator, .. } if operator == "contains"),
        ),
        (
            "{domain: x.example.com, query: [[{key: a}], [{key: b}, {key: c, operator: pattern}]], policy: deny}",
            "query[1][1].value",
            |e| matches!(e, PolicyError::MissingQueryValue { .. }),
        ),
        (
            "{domain: x.example.com, query: [[{key: a, operator: not pattern}]], policy: deny}",
            "query[0][0].value",
            |e| matches!(e, PolicyError::MissingQueryValue { .. }),
        ),
        (
            "{domain: x.example.com, query: [[{key: a, operator: not equal}]], policy: deny}",
            "query[0][0].value",
            |e| matches!(e, PolicyError::MissingQueryValue { .. }),
        ),
        (
            "{domain: x.example.com, query: [[{key: a, operator: absent, value: x}]], policy: deny}",
            "query[0][0].value",
            |e| matches!(e, PolicyError::UnexpectedQueryValue { .. }),
        ),
        (
            "{domain: x.example.com, query: [[{key: a, operator: pattern, value: '(' }]], policy: deny}",
            "query[0][0].value",
            |e| matches!(e, PolicyError::InvalidRegex { .. }),
        ),
        (
            "{domain: x.example.com, query: [[{key: '', value: x}]], policy: deny}",
            "query[0][0].key",
            |e| matches!(e, PolicyError::MissingQueryKey { .. }),
        ),
        // methods
        (
            "{domain: x.example.com, methods: [''], policy: deny}",
            "methods[0]",
            |e| matches!(e, PolicyError::InvalidMethod { .. }),
        ),
        (
            "{domain: x.example.com, methods: [GET, get], policy: deny}",
            "methods[1]",
            |e| matches!(e, PolicyError::InvalidMethod { value, .. } if value == "get"),
        ),
        (
            "{domain: x.example.com, methods: ['GET '], policy: deny}",
            "methods[0]",
            |e| matches!(e, PolicyError::InvalidMethod { .. }),
        ),
    ];
    for (rule, field, is_expected) in cases {
        let e = err(&rule3(rule));
        assert!(is_expected(&e), "{rule}: got {e:?}");
        assert_eq!(e.rule_index(), Some(3), "{rule}");
        assert_eq!(e.field(), Some(*field), "{rule}");
        let prefix = if field.is_empty() {
            "access_control.rules[3]".to_owned()
        } else {
            format!("access_control.rules[3].{field}")
        };
        let message = e.to_string();
        assert!(
            message.starts_with(&prefix) || message.starts_with("access_control.rules[3]"),
            "{message}"
        );
        if *field != "domain" {
            assert!(
                message.starts_with(&prefix),
                "{message} should start with {prefix}"
            );
        }
    }
}

#[test]
fn section_errors() {
    let cases: &[(&str, Is)] = &[
        (
            "default_policy: allow",
            |e| matches!(e, PolicyError::UnknownDefaultPolicy { value } if value == "allow"),
        ),
        (
            "default_policy: allow\nrules: [{domain: a.example.com, policy: deny}]",
            |e| matches!(e, PolicyError::UnknownDefaultPolicy { .. }),
        ),
        // no rules: the default must be one_factor or two_factor (absent means deny)
        (
            "{}",
            |e| matches!(e, PolicyError::NoRules { default_policy } if default_policy == "deny"),
        ),
        ("default_policy: deny", |e| {
            matches!(e, PolicyError::NoRules { .. })
        }),
        ("default_policy: bypass\nrules: []", |e| {
            matches!(e, PolicyError::NoRules { .. })
        }),
    ];
    for (yaml, is_expected) in cases {
        let e = err(yaml);
        assert!(is_expected(&e), "{yaml}: got {e:?}");
        assert_eq!(e.rule_index(), None);
        assert!(e.to_string().starts_with("access_control"), "{e}");
    }
}

#[test]
fn network_definition_errors() {
    let e = try_compile(
        "default_policy: one_factor",
        &[("lan", &["10.0.0.0/8", "10.0.0.0/99"])],
    )
    .unwrap_err();
    assert_eq!(
        e,
        PolicyError::InvalidNetwork {
            rule: None,
            field: "definitions.network.lan[1]".into(),
            value: "10.0.0.0/99".into(),
        }
    );
    assert!(
        e.to_string().starts_with("definitions.network.lan[1]:"),
        "{e}"
    );

    let e = try_compile(
        "default_policy: one_factor\nnetworks: [{name: office, networks: [nope]}]",
        &[],
    )
    .unwrap_err();
    assert_eq!(e.field(), Some("access_control.networks[0].networks[0]"));
}

#[test]
fn valid_forms_compile() {
    let policy = try_compile(
        r#"
rules:
  - domain: ['Example.COM.', '*.Example.com', '{user}.u.example.com', '{group}.g.example.com', '[::1]', '192.0.2.1', 'bücher.example']
    policy: one_factor
  - domain: x.example.com
    subject: [user:a, 'oauth2:client:c', [group:b, group:c]]
    query:
      - - {key: a}
        - {key: b, operator: absent}
        - {key: c, value: 1}
        - {key: d, operator: equal, value: 'x'}
        - {key: e, operator: not equal, value: 'y'}
        - {key: f, operator: pattern, value: '^a'}
        - {key: g, operator: not pattern, value: '^b'}
    methods: [GET, PROPFIND]
    networks: [lan, 10.0.0.1, '::1/128']
    resources: '^/(?P<User>[^/]+)/(?P<Group>[^/]+)'
    policy: two_factor
"#,
        &[("lan", &["10.0.0.0/8"])],
    )
    .unwrap();
    assert_eq!(policy.rule_count(), 2);
    // the IDNA form of a configured unicode name matches the canonical host
    assert_eq!(
        policy
            .evaluate(&target("https://xn--bcher-kva.example/"), &anon())
            .rule,
        Some(0)
    );
    assert_eq!(
        policy
            .evaluate(&target("https://example.com/"), &anon())
            .rule,
        Some(0)
    );
    assert_eq!(
        policy.evaluate(&target("https://[::1]/"), &anon()).rule,
        Some(0)
    );
}
