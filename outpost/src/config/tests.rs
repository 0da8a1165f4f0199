//! The configuration file of docs/reference/outpost.md §16: defaults, and errors naming the key.

use std::path::Path;

use super::*;

const SECRET: &str = "a-cookie-secret-of-at-least-32-bytes!";

fn no_env(_: &str) -> Option<String> {
    None
}

fn provider(extra: &str) -> String {
    format!(
        "storage:\n  memory: true\nproviders:\n  - name: app\n    external_host: https://app.example.com\n    internal_host: http://127.0.0.1:3000\n    cookie_secret: '{SECRET}'\n    client_id: app\n    client_secret: s3cret\n    issuer: https://auth.example.com\n{extra}"
    )
}

fn load_text(text: &str) -> Result<(Config, Vec<ConfigWarning>), ConfigError> {
    parse(Path::new("/etc/outpost.yml"), text, &no_env)
}

fn error(text: &str) -> ConfigError {
    match load_text(text) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e,
    }
}

#[test]
fn defaults_follow_authentik() {
    let (c, warnings) = load_text(&provider("")).unwrap();
    assert_eq!(c.listen.socket().port(), 9000);
    assert_eq!(c.metrics.as_ref().map(|m| m.socket().port()), Some(9300));
    assert!(c.tls.is_none());
    assert_eq!(c.outpost_name, "portcullis");
    assert!(matches!(c.storage, Storage::Memory));
    assert_eq!(warnings.len(), 1, "storage.memory warns: {warnings:?}");
    for ip in ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "::1"] {
        assert!(c.trusted_proxies.contains(ip.parse().unwrap()), "{ip}");
    }
    for ip in ["fe80::1", "8.8.8.8", "172.32.0.1"] {
        assert!(!c.trusted_proxies.contains(ip.parse().unwrap()), "{ip}");
    }
    let p = &c.providers[0];
    assert_eq!(p.mode, Mode::Proxy);
    assert_eq!((p.app_slug.as_str(), p.app_name.as_str()), ("app", "app"));
    assert_eq!(
        p.scopes,
        ["openid", "email", "profile", "entitlements", "ak_proxy"]
    );
    assert_eq!(p.pkce, Pkce::Auto);
    assert!(p.intercept_header_auth && p.bearer && p.internal_tls_verify);
    assert!(!p.basic_auth_enabled);
    assert_eq!(p.basic, BasicAuth::Off);
    assert_eq!(p.access_token_validity, None);
    assert_eq!(p.authority(), "app.example.com");
    // authentik_proxy_ + the first 8 hex of sha256("app").
    assert_eq!(p.cookie_name(), "authentik_proxy_a172cedc");
    assert!(!format!("{c:?}").contains(SECRET), "no secret in Debug");
    assert!(!format!("{c:?}").contains("s3cret"), "no secret in Debug");
}

#[test]
fn every_key_of_the_example_is_read() {
    let text = format!(
        "server:\n  address: 'tcp://127.0.0.1:9100/'\n  tls:\n    address: 'tcp://:9543/'\n    certificate: cert.pem\n    key: key.pem\n  trusted_proxies: ['10.0.0.0/8']\ntelemetry:\n  metrics:\n    enabled: false\nlog:\n  level: debug\n  format: json\noutpost:\n  name: edge\nstorage:\n  local:\n    path: data/outpost.sqlite3\nproviders:\n  - name: grafana\n    assigned_application_slug: grafana-app\n    assigned_application_name: Grafana\n    mode: forward_domain\n    external_host: 'https://auth.example.com:8443/outpost'\n    cookie_domain: '.Example.com'\n    cookie_secret: '{SECRET}'\n    client_id: grafana\n    client_secret: x\n    issuer: https://auth.example.com\n    endpoints:\n      authorization: https://auth.example.com/authorize\n      token: http://auth.internal:9091/token\n      userinfo: http://auth.internal:9091/userinfo\n      jwks: http://auth.internal:9091/jwks\n      end_session: https://auth.example.com/logout\n      introspection: http://auth.internal:9091/introspect\n    scopes_to_request: [openid, email]\n    pkce: always\n    access_token_validity: 24h\n    skip_path_regex: |\n      ^/api/health$\n\n      ^/static/\n    intercept_header_auth: false\n    basic_auth_enabled: true\n    basic_auth_user_attribute: user\n    basic_auth_password_attribute: pass\n    header_auth:\n      bearer: false\n      basic: authentik\n    access_control:\n      default_policy: deny\n      rules:\n        - subject: 'group:admins'\n          policy: one_factor\n"
    );
    let (c, _) = load_text(&text).unwrap();
    assert_eq!(c.listen.socket().to_string(), "127.0.0.1:9100");
    let tls = c.tls.as_ref().unwrap();
    assert_eq!(tls.listen.socket().port(), 9543);
    assert_eq!(tls.certificate, Path::new("/etc/cert.pem"));
    assert!(c.metrics.is_none());
    assert!(!c.trusted_proxies.contains("127.0.0.1".parse().unwrap()));
    assert_eq!(c.outpost_name, "edge");
    assert!(
        matches!(&c.storage, Storage::Sqlite(p) if p == Path::new("/etc/data/outpost.sqlite3"))
    );
    let p = &c.providers[0];
    assert_eq!(p.mode, Mode::ForwardDomain);
    assert_eq!(p.cookie_domain, "example.com");
    assert_eq!(p.authority(), "auth.example.com:8443");
    assert_eq!(p.external(), "https://auth.example.com:8443/outpost");
    assert_eq!(
        p.endpoints.token.as_deref(),
        Some("http://auth.internal:9091/token")
    );
    assert_eq!(p.scopes, ["openid", "email"]);
    assert_eq!(p.pkce, Pkce::Always);
    assert_eq!(p.access_token_validity, Some(86_400));
    let url = |u: &str| portcullis_core::TargetUrl::parse(u).unwrap();
    assert!(
        p.skip
            .matches_path(&url("https://a.example.com/static/x.js"))
    );
    assert!(
        !p.skip.matches_path(&url("https://a.example.com/other")),
        "the blank line matches nothing"
    );
    assert!(!p.intercept_header_auth && p.basic_auth_enabled && !p.bearer);
    assert_eq!(p.basic, BasicAuth::Authentik);
    assert_eq!(p.basic_auth_password_attribute, "pass");
    assert_eq!(p.policy.as_ref().unwrap().rule_count(), 1);
    assert_eq!(p.app_slug, "grafana-app");
}

#[test]
fn errors_name_file_line_and_key() {
    let cases: Vec<(String, &str, &str)> = vec![
        (
            provider("    colour: red\n"),
            "providers[0].colour",
            "unknown field",
        ),
        (
            provider("    mode: sidecar\n"),
            "providers[0].mode",
            "sidecar",
        ),
        (
            provider("").replace(
                "    cookie_secret: 'a-cookie-secret-of-at-least-32-bytes!'\n",
                "    cookie_secret: short\n",
            ),
            "providers[0].cookie_secret",
            "32",
        ),
        (
            provider("").replace("    internal_host: http://127.0.0.1:3000\n", ""),
            "providers[0].internal_host",
            "proxy mode",
        ),
        (
            provider("    mode: forward_domain\n"),
            "providers[0].cookie_domain",
            "forward_domain",
        ),
        (
            provider("    mode: forward_domain\n    cookie_domain: other.org\n"),
            "providers[0].external_host",
            "not under",
        ),
        (
            provider("").replace("    issuer: https://auth.example.com\n", ""),
            "providers[0].issuer",
            "required",
        ),
        (
            provider("").replace("https://app.example.com", "ftp://app.example.com"),
            "providers[0].external_host",
            "http",
        ),
        (
            provider("    skip_path_regex: \"^/ok$\\n^/bad(\\n\"\n"),
            "providers[0].skip_path_regex",
            "line 2",
        ),
        (
            provider("    pkce: sometimes\n"),
            "providers[0].pkce",
            "sometimes",
        ),
        (
            provider("    pkce: never\n").replace("    client_secret: s3cret\n", ""),
            "providers[0].client_secret",
            "PKCE",
        ),
        (
            provider("    header_auth:\n      basic: ldap\n"),
            "providers[0].header_auth.basic",
            "ldap",
        ),
        (
            provider("    access_control:\n      rules:\n        - policy: sometimes\n"),
            "providers[0].access_control.rules[0].policy",
            "",
        ),
        (
            provider("    access_token_validity: soon\n"),
            "providers[0].access_token_validity",
            "",
        ),
        (
            provider("").replace("storage:\n  memory: true\n", ""),
            "storage",
            "storage.local.path",
        ),
        (
            provider("").replace(
                "storage:\n  memory: true\n",
                "server:\n  trusted_proxies: ['10.0.0.0/33']\nstorage:\n  memory: true\n",
            ),
            "server.trusted_proxies[0]",
            "",
        ),
        (
            provider("").replace(
                "storage:\n  memory: true\n",
                "server:\n  tls:\n    key: k.pem\nstorage:\n  memory: true\n",
            ),
            "server.tls.certificate",
            "required",
        ),
        (
            provider("").replace(
                "storage:\n  memory: true\n",
                "log:\n  level: loud\nstorage:\n  memory: true\n",
            ),
            "log.level",
            "loud",
        ),
        (
            "storage:\n  memory: true\nproviders: []\n".to_owned(),
            "providers",
            "at least one",
        ),
        (
            format!(
                "{}  - name: app\n    external_host: https://other.example.com\n    internal_host: http://127.0.0.1:1\n    cookie_secret: '{SECRET}'\n    client_id: b\n    issuer: https://auth.example.com\n",
                provider("")
            ),
            "providers[1].name",
            "another provider",
        ),
        (
            format!(
                "{}  - name: two\n    external_host: https://APP.example.com/x\n    internal_host: http://127.0.0.1:1\n    cookie_secret: '{SECRET}'\n    client_id: b\n    issuer: https://auth.example.com\n",
                provider("")
            ),
            "providers[1].external_host",
            "another provider",
        ),
    ];
    for (text, key, needle) in cases {
        let e = error(&text);
        assert_eq!(e.key, key, "{e}\n{text}");
        assert!(e.message.contains(needle), "{e}");
        // A section that is missing altogether has no line to point at.
        assert!(
            e.line.is_some() || key == "storage",
            "a line for {key}: {e}"
        );
        assert_eq!(e.file, Path::new("/etc/outpost.yml"));
    }
}

#[test]
fn secrets_come_from_files_named_by_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let cookie = dir.path().join("cookie");
    std::fs::write(&cookie, "from-a-file-and-at-least-32-bytes-long\n").unwrap();
    let client = dir.path().join("client");
    std::fs::write(&client, "client-from-file").unwrap();
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "").unwrap();
    let (c_path, cl_path, e_path) = (
        cookie.display().to_string(),
        client.display().to_string(),
        empty.display().to_string(),
    );
    let env = |name: &str| match name {
        "PORTCULLIS_OUTPOST_PROVIDERS_0_COOKIE_SECRET_FILE" => Some(c_path.clone()),
        "PORTCULLIS_OUTPOST_PROVIDERS_0_CLIENT_SECRET_FILE" => Some(cl_path.clone()),
        _ => None,
    };
    let text = provider("").replace(
        "    cookie_secret: 'a-cookie-secret-of-at-least-32-bytes!'\n",
        "",
    );
    let (c, _) = parse(Path::new("/etc/outpost.yml"), &text, &env).unwrap();
    let p = &c.providers[0];
    assert_eq!(
        p.cookie_secret.expose(),
        "from-a-file-and-at-least-32-bytes-long"
    );
    assert_eq!(
        p.client_secret.as_ref().unwrap().expose(),
        "client-from-file"
    );
    // The `_file` keys, and an empty file is an error naming the key.
    let text = provider(&format!("    client_secret_file: '{e_path}'\n"))
        .replace("    client_secret: s3cret\n", "");
    let e = error(&text);
    assert_eq!(e.key, "providers[0].client_secret_file");
    assert!(e.message.contains("empty"), "{e}");
}

#[test]
fn redis_storage_and_access_control_defaults() {
    let text = provider("    mode: forward_domain\n    cookie_domain: example.com\n    access_control:\n      rules:\n        - subject: 'group:admins'\n          policy: one_factor\n").replace(
        "storage:\n  memory: true\n",
        "session:\n  redis:\n    host: 127.0.0.1\n    port: 6380\n",
    );
    let (c, _) = load_text(&text).unwrap();
    let Storage::Redis { redis, secret } = &c.storage else {
        panic!("redis storage")
    };
    assert_eq!((redis.host.as_str(), redis.port), ("127.0.0.1", 6380));
    assert!(secret.expose().len() >= 32);
    // A rule without a domain covers the provider's domain: here every host under example.com.
    let policy = c.providers[0].policy.as_ref().unwrap();
    let target = portcullis_core::Target {
        url: portcullis_core::TargetUrl::parse("https://wiki.example.com/").unwrap(),
        method: portcullis_core::checked_method("GET", "test").unwrap(),
        client_ip: portcullis_core::ClientIp::Unknown,
    };
    let alice = portcullis_core::Identity::user("alice", portcullis_core::AuthLevel::OneFactor)
        .with_groups(["admins"]);
    let bob = portcullis_core::Identity::user("bob", portcullis_core::AuthLevel::OneFactor);
    assert_eq!(policy.evaluate(&target, &alice).rule, Some(0));
    assert_eq!(policy.evaluate(&target, &bob).rule, None);
}
