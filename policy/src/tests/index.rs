//! The domain index is an optimisation only: evaluating the candidate rules gives the same answer as
//! scanning every rule, for every domain form.

use super::*;

#[test]
fn index_agrees_with_a_full_scan() {
    let policy = compile(
        r#"
default_policy: deny
networks:
  - name: office
    networks: ['192.0.2.0/24']
rules:
  - domain: public.example.com
    policy: bypass
  - domain: ['a.example.com', 'B.Example.com', '*.c.example.com']
    subject: 'user:alice'
    policy: two_factor
  - domain_regex: '^app\d+-[a-z]+\.example\.com$'
    policy: one_factor
  - domain: '{user}.home.example.com'
    policy: one_factor
  - domain: '{group}.teams.example.com'
    policy: one_factor
  - domain_regex: '^(?P<User>\w+)\.people\.example\.com$'
    policy: two_factor
  - domain: app.example.com
    resources: ['^/admin([/?].*)?$']
    subject: 'group:admins'
    policy: one_factor
  - domain: app.example.com
    resources: ['^/admin']
    policy: deny
  - domain: app.example.com
    resources: ['^/api/']
    methods: [POST]
    networks: [office]
    policy: bypass
  - domain: files.example.com
    query: [{key: token, operator: present}]
    policy: bypass
  - domain: ['192.168.1.10', '[2001:db8::1]']
    policy: two_factor
  - domain: '*.example.com'
    policy: one_factor
  - domain: '*.example.org'
    policy: two_factor
"#,
    );
    let hosts = [
        "public.example.com",
        "a.example.com",
        "b.example.com",
        "x.c.example.com",
        "c.example.com",
        "app12-x.example.com",
        "alice.home.example.com",
        "bob.home.example.com",
        "admins.teams.example.com",
        "dev.teams.example.com",
        "alice.people.example.com",
        "app.example.com",
        "files.example.com",
        "example.com",
        "x.example.org",
        "example.org",
        "192.168.1.10",
        "[2001:db8::1]",
        "elsewhere.net",
    ];
    let paths = [
        "/",
        "/admin",
        "/admin/x?y=1",
        "/api/v1",
        "/public/%2e%2e/admin",
        "/bad%00",
        "?token=1",
        "",
    ];
    let identities = [
        anon(),
        user("alice", &["admins", "dev"]),
        user("bob", &["dev"]),
    ];
    let ips = [
        ClientIp::Known("192.0.2.7".parse().unwrap()),
        ClientIp::Known("198.51.100.1".parse().unwrap()),
        ClientIp::Unknown,
    ];
    // A host with an empty label (`a..example.com`) is refused by the URL parser, so it never
    // reaches the policy (it used to be one of the hosts checked here).
    assert!(portcullis_core::TargetUrl::parse("https://a..example.com/").is_err());
    let mut checked = 0;
    for host in hosts {
        for path in paths {
            for method in ["GET", "POST"] {
                for ip in &ips {
                    let url = format!("https://{host}{path}");
                    let target = target_full(&url, method, *ip);
                    for identity in &identities {
                        assert_eq!(
                            policy.evaluate(&target, identity),
                            policy.evaluate_scanning_all(&target, identity),
                            "{url} {method} {ip:?} {identity:?}"
                        );
                        checked += 1;
                    }
                }
            }
        }
    }
    assert_eq!(checked, hosts.len() * paths.len() * 2 * 3 * 3);
}
