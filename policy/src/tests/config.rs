//! Authelia's YAML shorthands for `access_control`.

use crate::{NetworkDefinition, QueryItemConfig, RuleConfig};

use super::*;

fn item(key: &str, operator: Option<&str>, value: Option<&str>) -> QueryItemConfig {
    QueryItemConfig {
        key: key.into(),
        operator: operator.map(Into::into),
        value: value.map(Into::into),
    }
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn shorthands_expand_to_lists() {
    let parsed = config(
        r#"
default_policy: deny
networks:
  - name: office
    networks: 10.0.0.0/8
  - name: vpn
    networks: [172.16.0.0/12, 192.168.0.0/16]
rules:
  - domain: app.example.com
    policy: bypass
    resources: '^/public/'
    methods: GET
    networks: office
  - domain: [a.example.com, b.example.com]
    domain_regex: '^c\.example\.com$'
    policy: one_factor
    subject: 'user:alice'
  - domain: x.example.com
    policy: two_factor
    subject: ['user:a', ['group:b', 'group:c']]
    query:
      - - key: a
          value: 1
        - key: b
          operator: absent
      - - key: c
          value: true
        - key: d
          value: 1.5
  - domain: y.example.com
    policy: deny
    subject: [['group:x'], ['group:y']]
    query:
      - key: q
        operator: pattern
        value: '^x'
      - key: r
  - domain: z.example.com
    policy: deny
    domain_regex: ~
    resources: []
"#,
    );
    assert_eq!(parsed.default_policy.as_deref(), Some("deny"));
    assert_eq!(
        parsed.networks,
        [
            NetworkDefinition {
                name: "office".into(),
                networks: strings(&["10.0.0.0/8"]),
            },
            NetworkDefinition {
                name: "vpn".into(),
                networks: strings(&["172.16.0.0/12", "192.168.0.0/16"]),
            },
        ]
    );
    let r = &parsed.rules;
    assert_eq!(
        r[0],
        RuleConfig {
            domain: strings(&["app.example.com"]),
            policy: "bypass".into(),
            resources: strings(&["^/public/"]),
            methods: strings(&["GET"]),
            networks: strings(&["office"]),
            ..Default::default()
        }
    );
    assert_eq!(r[1].domain, strings(&["a.example.com", "b.example.com"]));
    assert_eq!(r[1].domain_regex, strings(&[r"^c\.example\.com$"]));
    assert_eq!(r[1].subject, [strings(&["user:alice"])]);
    // a list mixing strings (groups of one) and lists (AND groups)
    assert_eq!(
        r[2].subject,
        [strings(&["user:a"]), strings(&["group:b", "group:c"])]
    );
    // scalars are read as text
    assert_eq!(
        r[2].query,
        [
            vec![item("a", None, Some("1")), item("b", Some("absent"), None)],
            vec![item("c", None, Some("true")), item("d", None, Some("1.5"))],
        ]
    );
    assert_eq!(r[3].subject, [strings(&["group:x"]), strings(&["group:y"])]);
    // a flat list of items is one AND group
    assert_eq!(
        r[3].query,
        [vec![
            item("q", Some("pattern"), Some("^x")),
            item("r", None, None)
        ]]
    );
    assert!(r[4].domain_regex.is_empty() && r[4].resources.is_empty());
    // and the whole thing compiles
    Policy::compile(&parsed, &BTreeMap::new()).unwrap();
}

#[test]
fn unknown_keys_and_bad_shapes_are_errors() {
    let bad = [
        "rules: [{domain: a.example.com, policy: deny, policyy: x}]",
        "rules: [{domain: a.example.com}]",
        "default_policy: deny\nextra: 1",
        "rules: [{domain: a.example.com, policy: deny, query: [[{key: a, valeu: b}]]}]",
        "rules: [{domain: a.example.com, policy: deny, query: [{key: a}, [{key: b}]]}]",
        "rules: [{domain: a.example.com, policy: deny, query: [[{key: a, value: [1, 2]}]]}]",
        "rules: [{domain: {a: b}, policy: deny}]",
        "rules: [{domain: a.example.com, policy: deny, subject: [[[user:a]]]}]",
        "networks: [{name: a, networks: [x], extra: 1}]",
    ];
    for yaml in bad {
        assert!(
            serde_yaml_ng::from_str::<AccessControlConfig>(yaml).is_err(),
            "{yaml}"
        );
    }
}

#[test]
fn json_works_too() {
    let parsed: AccessControlConfig = serde_json::from_str(
        r#"{"rules": [{"domain": "a.example.com", "policy": "one_factor", "subject": "group:x",
            "query": [{"key": "n", "value": 3}]}]}"#,
    )
    .unwrap();
    assert_eq!(parsed.rules[0].subject, [vec!["group:x".to_owned()]]);
    assert_eq!(parsed.rules[0].query, [vec![item("n", None, Some("3"))]]);
}
