//! `Policy::explain`: every rule, the first failing criterion, the decision.

use crate::{Criterion, DecidedBy};

use super::*;

const POLICY: &str = r#"
default_policy: one_factor
rules:
  - domain: other.example.com
    policy: deny
  - domain_regex: '^other\.'
    policy: deny
  - domain: app.example.com
    resources: '^/api/'
    policy: bypass
  - domain: app.example.com
    query: [{key: debug}]
    policy: deny
  - domain: app.example.com
    methods: POST
    policy: deny
  - domain: app.example.com
    networks: 10.0.0.0/8
    policy: bypass
  - domain: app.example.com
    subject: 'group:admins'
    policy: two_factor
  - domain: '*.example.com'
    policy: one_factor
"#;

#[test]
fn first_failing_criterion_per_rule() {
    let policy = compile(POLICY);
    let explanation = policy.explain(
        &target("https://app.example.com/home?x=1"),
        &user("bob", &["users"]),
    );
    let failed: Vec<Option<Criterion>> = explanation.rules.iter().map(|r| r.failed).collect();
    assert_eq!(
        failed,
        [
            Some(Criterion::Domain),
            Some(Criterion::DomainRegex),
            Some(Criterion::Resources),
            Some(Criterion::Query),
            Some(Criterion::Methods),
            Some(Criterion::Networks),
            Some(Criterion::Subject),
            None,
        ]
    );
    let matched: Vec<bool> = explanation.rules.iter().map(|r| r.matched).collect();
    assert_eq!(
        matched,
        [false, false, false, false, false, false, false, true]
    );
    assert_eq!(explanation.decided_by, DecidedBy::Rule(7));
    assert_eq!(explanation.policy, "one_factor");
    assert_eq!(explanation.resource.as_deref(), Some("/home?x=1"));
    assert_eq!(
        explanation.evaluation,
        policy.evaluate(
            &target("https://app.example.com/home?x=1"),
            &user("bob", &["users"])
        )
    );

    let json = serde_json::to_value(&explanation).unwrap();
    assert_eq!(json["rules"][0]["failed"], "domain");
    assert_eq!(json["rules"][1]["failed"], "domain_regex");
    assert_eq!(json["rules"][6]["failed"], "subject");
    assert_eq!(json["rules"][7]["matched"], true);
    assert_eq!(json["decided_by"]["rule"], 7);
    assert_eq!(json["policy"], "one_factor");
    assert_eq!(json["resource"], "/home?x=1");

    let text = explanation.to_string();
    assert!(text.contains("rules[0] deny: no match (domain)"), "{text}");
    assert!(
        text.contains("rules[6] two_factor: no match (subject)"),
        "{text}"
    );
    assert!(text.contains("rules[7] one_factor: match"), "{text}");
    assert!(text.ends_with("decision: rules[7] -> one_factor"), "{text}");
}

#[test]
fn potential_match_default_and_stricter_reading() {
    let policy = compile(POLICY);
    let e = policy.explain(&target("https://app.example.com/"), &anon());
    assert!(e.rules[6].matched && e.rules[6].potential);
    assert_eq!(e.decided_by, DecidedBy::Rule(6));
    assert!(e.rule_has_subject);
    assert!(e.to_string().contains("(potential: anonymous)"));

    let e = policy.explain(&target("https://elsewhere.org/"), &anon());
    assert_eq!(e.decided_by, DecidedBy::Default);
    assert_eq!(serde_json::to_value(&e).unwrap()["decided_by"], "default");
    assert!(
        e.to_string()
            .ends_with("decision: default_policy -> one_factor")
    );

    let policy = compile(
        r#"
default_policy: bypass
rules:
  - domain: app.example.com
    resources: '^/admin$'
    policy: deny
"#,
    );
    let e = policy.explain(&target("https://app.example.com/admin;x"), &anon());
    assert_eq!(e.resource.as_deref(), Some("/admin;x"));
    assert_eq!(e.rules[0].failed, Some(Criterion::Resources));
    assert_eq!(e.stricter_reading.as_deref(), Some("/admin"));
    assert_eq!((e.decided_by, e.policy), (DecidedBy::Rule(0), "deny"));
}

#[test]
fn unnormalisable_path() {
    let policy = compile(
        r#"
rules:
  - domain: app.example.com
    resources: '^/public/'
    policy: bypass
  - domain: app.example.com
    policy: bypass
"#,
    );
    let e = policy.explain(&target("https://app.example.com/public/%00"), &anon());
    assert_eq!(e.resource, None);
    assert!(e.path_error.is_some());
    assert!(e.rules[0].undetermined && !e.rules[0].matched);
    assert!(e.rules[1].matched);
    assert_eq!((e.decided_by, e.policy), (DecidedBy::FailClosed, "deny"));
    let json = serde_json::to_value(&e).unwrap();
    assert_eq!(json["decided_by"], "fail_closed");
    let text = e.to_string();
    assert!(text.contains("never bypassed"), "{text}");
    assert!(
        text.contains("rules[0] bypass: undetermined (resources)"),
        "{text}"
    );
}

#[test]
fn criterion_names() {
    let all = [
        (Criterion::Domain, "domain"),
        (Criterion::DomainRegex, "domain_regex"),
        (Criterion::Resources, "resources"),
        (Criterion::Query, "query"),
        (Criterion::Methods, "methods"),
        (Criterion::Networks, "networks"),
        (Criterion::Subject, "subject"),
    ];
    for (criterion, name) in all {
        assert_eq!(criterion.to_string(), name);
        assert_eq!(serde_json::to_value(criterion).unwrap(), name);
    }
}
