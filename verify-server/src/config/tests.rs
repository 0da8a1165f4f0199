use std::path::PathBuf;

use portcullis_config::{ListenAddress, SecretFile};
use portcullis_core::Secret;
use portcullis_session::SameSite;

use super::*;

fn from_file(value: &str) -> SecretFile {
    SecretFile {
        variable: "TEST_SECRET_FILE".into(),
        value: Secret::new(value),
    }
}

const BASE: &str = "\
authentication_backend:
  file:
    path: users.yml
access_control:
  default_policy: one_factor
session:
  secret: a-long-enough-secret
  cookies:
    - domain: example.com
      authelia_url: https://auth.example.com
";

fn load(text: &str) -> Result<(Config, Vec<ConfigWarning>), ConfigError> {
    parse(
        Path::new("/srv/configuration.yml"),
        text,
        &SecretSources::default(),
    )
}

fn error(text: &str) -> ConfigError {
    match load(text) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e,
    }
}

#[test]
fn minimal_file_gets_authelia_defaults() {
    let (c, warnings) = load(BASE).unwrap();
    assert!(warnings.is_empty());
    assert_eq!(c.listen.socket(), "[::]:9091".parse().unwrap());
    assert_eq!(
        c.endpoints
            .iter()
            .map(|e| e.path.as_str())
            .collect::<Vec<_>>(),
        [
            "/api/authz/forward-auth",
            "/api/authz/auth-request",
            "/api/authz/ext-authz",
            "/api/verify"
        ]
    );
    assert_eq!(
        c.users.file().expect("a users file"),
        PathBuf::from("/srv/users.yml"),
        "relative to the configuration file"
    );
    let cookie = &c.cookies[0];
    assert_eq!(cookie.cookie.name, "authelia_session");
    assert_eq!(cookie.lifetime.expiration, 3600);
    assert_eq!(cookie.lifetime.inactivity, 300);
    assert_eq!(
        c.regulation,
        RegulationConfig {
            max_retries: 3,
            find_time: 120,
            ban_time: 300,
            by_user: true,
            by_ip: false
        }
    );
    assert_eq!(c.basic_auth_cache, 300);
    assert_eq!(c.refresh, Refresh::Always);
    assert!(c.trusted_proxies.contains("10.1.2.3".parse().unwrap()));
    assert!(c.metrics.is_none());
}

#[test]
fn unknown_keys_name_the_path_and_line() {
    let text = BASE.replace("  cookies:", "  cokies: []\n  cookies:");
    let e = error(&text);
    assert_eq!(e.line, Some(8));
    assert!(e.message.contains("unknown field `cokies`"), "{e}");
    assert!(
        e.to_string()
            .starts_with("/srv/configuration.yml:8: session"),
        "{e}"
    );
    let e = error(&format!("{BASE}typo_section: 1\n"));
    assert!(e.message.contains("typo_section"), "{e}");
    assert_eq!(e.line, Some(11));
}

#[test]
fn authelia_sections_warn_once_each() {
    let text = format!(
        "{BASE}notifier:\n  filesystem:\n    filename: /tmp/n.txt\ntotp:\n  issuer: x\nstorage:\n  encryption_key: 0123456789012345678901\n  local:\n    path: /tmp/db.sqlite3\nserver:\n  buffers:\n    read: 8192\nduo_api:\n  hostname: x\n"
    );
    let (c, warnings) = load(&text).unwrap();
    let keys: Vec<&str> = warnings.iter().map(|w| w.key.as_str()).collect();
    // The second-factor sections are implemented now: only the others warn.
    assert_eq!(keys, ["duo_api", "server.buffers"]);
    assert_eq!(warnings[1].line, Some(21), "the line of server.buffers");
    assert_eq!(c.storage_path, PathBuf::from("/tmp/db.sqlite3"));
    let sf = &c.second_factor;
    assert_eq!(sf.totp.as_ref().unwrap().issuer, "x");
    assert!(
        matches!(&sf.notifier, Some(crate::config::NotifierConfig::Filesystem(p)) if p == &PathBuf::from("/tmp/n.txt"))
    );
    assert!(sf.encryption_key.is_some());
}

#[test]
fn second_factor_sections_follow_authelias_defaults_and_rules() {
    let key = "storage:\n  encryption_key: 0123456789012345678901\n";
    let (c, w) = load(&format!("{BASE}{key}")).unwrap();
    assert!(w.is_empty(), "{w:?}");
    let totp = c.second_factor.totp.unwrap();
    assert_eq!(
        (
            totp.issuer.as_str(),
            totp.skew,
            totp.secret_size,
            totp.reuse_protection
        ),
        ("Authelia", 1, 32, true)
    );
    assert_eq!(
        totp.default,
        portcullis_second_factor::totp::TotpParameters::default()
    );
    let e = c.second_factor.elevation;
    assert_eq!(
        (e.code_lifespan, e.elevation_lifespan, e.characters),
        (300, 600, 8)
    );
    assert_eq!(
        c.second_factor.totp_limit,
        vec![
            portcullis_auth::rate_limit::Bucket {
                period: 60,
                requests: 30
            },
            portcullis_auth::rate_limit::Bucket {
                period: 120,
                requests: 40
            },
            portcullis_auth::rate_limit::Bucket {
                period: 600,
                requests: 50
            },
        ]
    );
    assert_eq!(
        c.second_factor.elevation_start_limit[2],
        portcullis_auth::rate_limit::Bucket {
            period: 3600,
            requests: 15
        }
    );
    // The allowed lists always hold the default; skew 0 is kept.
    let (c, _) = load(&format!(
        "{BASE}{key}totp:\n  algorithm: sha256\n  skew: 0\n  allowed_algorithms: [SHA1]\n  allowed_digits: [8]\n  allowed_periods: [60]\n  disable_reuse_security_policy: true\n"
    ))
    .unwrap();
    let totp = c.second_factor.totp.unwrap();
    assert_eq!(totp.skew, 0);
    assert!(!totp.reuse_protection);
    assert_eq!(totp.allowed_algorithms.len(), 2);
    assert_eq!(
        totp.allowed_digits
            .iter()
            .map(|d| d.get())
            .collect::<Vec<_>>(),
        [8, 6]
    );
    assert_eq!(
        totp.allowed_periods
            .iter()
            .map(|p| p.get())
            .collect::<Vec<_>>(),
        [60, 30]
    );
    // Errors name the key.
    for (extra, at) in [
        (
            "storage:\n  encryption_key: too-short\n",
            "storage.encryption_key",
        ),
        ("totp:\n  digits: 7\n", "totp.digits"),
        ("totp:\n  period: 10\n", "totp.period"),
        ("totp:\n  algorithm: MD5\n", "totp.algorithm"),
        ("totp:\n  secret_size: 10\n", "totp.secret_size"),
        ("totp:\n  allowed_digits: [6, 9]\n", "totp.allowed_digits"),
        (
            "identity_validation:\n  elevated_session:\n    characters: 21\n",
            "identity_validation.elevated_session.characters",
        ),
        (
            "notifier:\n  filesystem:\n    filename: /tmp/a\n  smtp:\n    address: smtp://x\n",
            "notifier",
        ),
        (
            "notifier:\n  filesystem: {}\n",
            "notifier.filesystem.filename",
        ),
        ("default_2fa_method: sms\n", "default_2fa_method"),
        (
            "notifier:\n  smtp:\n    address: smtp://mail.example.com\n",
            "notifier.smtp.sender",
        ),
        (
            "notifier:\n  smtp:\n    address: imap://mail.example.com\n    sender: a@b.c\n",
            "notifier.smtp.address",
        ),
        (
            "notifier:\n  smtp:\n    sender: a@b.c\n    disable_starttls: true\n",
            "notifier.smtp.disable_starttls",
        ),
        (
            "notifier:\n  smtp:\n    sender: not-an-address\n",
            "notifier.smtp.sender",
        ),
        (
            "notifier:\n  smtp:\n    sender: a@b.c\n    password: x\n",
            "notifier.smtp.username",
        ),
        (
            "notifier:\n  smtp:\n    sender: a@b.c\n    tls:\n      minimum_version: SSL3\n",
            "notifier.smtp.tls.minimum_version",
        ),
        (
            "certificates_directory: /nonexistent/portcullis-cas\n",
            "certificates_directory",
        ),
        ("totp:\n  unknown_key: 1\n", "unknown_key"),
    ] {
        let e = error(&format!("{BASE}{extra}"));
        assert!(e.key.contains(at) || e.message.contains(at), "{extra}: {e}");
    }
}

#[test]
fn a_missing_encryption_key_turns_second_factors_off_with_one_warning() {
    let (c, w) = load(&format!("{BASE}totp:\n  issuer: x\n")).unwrap();
    assert!(c.second_factor.totp.is_none());
    let keys: Vec<&str> = w.iter().map(|w| w.key.as_str()).collect();
    assert_eq!(keys, ["storage.encryption_key"]);
    assert!(w[0].message.contains("two_factor"), "{}", w[0].message);
    // A plain one-factor configuration gets no new warning.
    let (c, w) = load(BASE).unwrap();
    assert!(w.is_empty() && c.second_factor.totp.is_none());
    // WebAuthn without the key is off with the same warning; with it, on and silent.
    let (c, w) = load(&format!("{BASE}webauthn:\n  display_name: x\n")).unwrap();
    assert!(c.second_factor.webauthn.is_none());
    let keys: Vec<&str> = w.iter().map(|w| w.key.as_str()).collect();
    assert_eq!(keys, ["storage.encryption_key"]);
    let (c, w) = load(&format!(
        "{BASE}storage:\n  encryption_key: 0123456789012345678901\nwebauthn:\n  display_name: x\n"
    ))
    .unwrap();
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(c.second_factor.webauthn.unwrap().display_name, "x");
    // SMTP: Authelia's defaults; STARTTLS required unless both TLS keys say otherwise.
    let smtp_of = |extra: &str| {
        let (c, w) = load(&format!(
            "{BASE}storage:\n  encryption_key: 0123456789012345678901\nnotifier:\n  smtp:\n{extra}"
        ))
        .unwrap();
        match c.second_factor.notifier {
            Some(crate::config::NotifierConfig::Smtp(smtp)) => (*smtp, w),
            other => panic!("an SMTP notifier, not {other:?}"),
        }
    };
    let (smtp, w) = smtp_of("    sender: 'Portcullis <p@example.com>'\n");
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(
        (smtp.host.as_str(), smtp.port, smtp.timeout),
        ("localhost", 25, 5)
    );
    assert_eq!(smtp.security, crate::config::SmtpSecurity::StartTlsRequired);
    assert_eq!(
        (smtp.identifier.as_str(), smtp.subject.as_str()),
        ("localhost", "[Authelia] {title}")
    );
    for (address, port, security) in [
        (
            "submission://mail.example.com",
            587,
            crate::config::SmtpSecurity::StartTlsRequired,
        ),
        (
            "submissions://mail.example.com",
            465,
            crate::config::SmtpSecurity::Implicit,
        ),
        (
            "smtp://mail.example.com:2525",
            2525,
            crate::config::SmtpSecurity::StartTlsRequired,
        ),
    ] {
        let (smtp, _) = smtp_of(&format!(
            "    address: {address}\n    sender: p@example.com\n"
        ));
        assert_eq!((smtp.port, smtp.security), (port, security), "{address}");
    }
    let (smtp, w) = smtp_of(
        "    sender: p@example.com\n    disable_require_tls: true\n    disable_starttls: true\n",
    );
    assert_eq!(smtp.security, crate::config::SmtpSecurity::None);
    assert!(
        w.iter()
            .any(|w| w.key == "notifier.smtp.disable_require_tls"),
        "{w:?}"
    );
}

#[test]
fn validation_errors() {
    let cases: Vec<(String, &str, &str)> = vec![
        (BASE.replace("domain: example.com", "domain: localhost"), "session.cookies[0].domain", "must contain a dot"),
        (BASE.replace("domain: example.com", "domain: 192.168.1.1"), "session.cookies[0].domain", "IP address"),
        (BASE.replace("domain: example.com", "domain: co.uk").replace("auth.example.com", "auth.co.uk"), "session.cookies[0].domain", "public suffix"),
        (BASE.replace("https://auth.example.com", "http://auth.example.com"), "session.cookies[0].authelia_url", "https"),
        (BASE.replace("https://auth.example.com", "https://auth.example.net"), "session.cookies[0].authelia_url", "not within"),
        (BASE.replace("      authelia_url: https://auth.example.com\n", ""), "session.cookies[0]", "authelia_url is required"),
        (
            format!("{BASE}    - domain: app.example.com\n      authelia_url: https://auth.app.example.com\n"),
            "session.cookies[1].domain",
            "shares a scope",
        ),
        // Without a secret, only Redis is an error (a single server generates and keeps one).
        (
            BASE.replace("secret: a-long-enough-secret", "redis: {host: redis.internal}"),
            "session.secret",
            "required with session.redis",
        ),
        (BASE.replace("session:", "regulation:\n  modes: [user, device]\nsession:"), "regulation.modes", "unknown mode"),
        (BASE.replace("session:", "regulation:\n  find_time: 5 fortnights\nsession:"), "regulation.find_time", "unknown unit"),
        (BASE.replace("session:", "portcullis:\n  trusted_proxies: [10.0.0.0/33]\nsession:"), "portcullis.trusted_proxies", "invalid network"),
        (BASE.replace("session:", "log:\n  level: loud\nsession:"), "log.level", "unknown level"),
        (
            BASE.replace("default_policy: one_factor", "default_policy: one_factor\n  rules:\n    - domain: a.example.com\n      policy: bypass\n      subject: 'user:x'"),
            "access_control.rules[0]",
            "",
        ),
        (
            BASE.replace("default_policy: one_factor", "default_policy: one_factor\n  rules:\n    - domain: a.example.com\n      policy: one_factor\n      resources: ['^/(']"),
            "access_control.rules[0].resources",
            "",
        ),
        (BASE.replace("default_policy: one_factor", "default_policy: allow"), "access_control", ""),
        (
            BASE.replace("authentication_backend:\n  file:\n    path: users.yml", "authentication_backend:\n  file:\n    path: users.yml\n  ldap:\n    address: ldap://x\n    implementation: rfc2307bis\n    user: cn=admin\n    password: secret"),
            "authentication_backend",
            "file and ldap are both set",
        ),
        (
            BASE.replace("session:", "server:\n  endpoints:\n    authz:\n      x:\n        implementation: Magic\nsession:"),
            "server.endpoints.authz.x.implementation",
            "unknown implementation",
        ),
    ];
    for (text, key, fragment) in cases {
        let e = error(&text);
        assert!(e.key.starts_with(key), "expected key {key}, got {e}");
        assert!(e.message.contains(fragment), "expected {fragment:?} in {e}");
        assert!(e.line.is_some(), "no line for {e}");
    }
}

#[test]
fn legacy_single_domain_and_secret_files() {
    let text = "authentication_backend: {file: {path: u.yml}}\naccess_control: {default_policy: two_factor}\nsession:\n  domain: Example.COM\n  name: legacy\n  same_site: strict\n  remember_me: -1\n";
    let secrets = SecretSources {
        session_secret: Some(from_file("from-file-0123456789abcdef")),
        ..SecretSources::default()
    };
    let (c, _) = parse(Path::new("c.yml"), text, &secrets).unwrap();
    assert_eq!(c.cookies.len(), 1);
    assert_eq!(c.cookies[0].domain, "example.com");
    assert_eq!(c.cookies[0].authelia_url, None);
    assert_eq!(c.cookies[0].cookie.same_site, SameSite::Strict);
    assert_eq!(c.cookies[0].lifetime.remember_me, None);
    assert_eq!(
        c.session_secret.as_ref().map(|s| s.expose()),
        Some("from-file-0123456789abcdef")
    );
}

#[test]
fn portal_urls_are_normalised_and_endpoints_configurable() {
    let text = BASE.replace("https://auth.example.com", "https://example.com/auth").replace(
        "session:",
        "server:\n  address: tcp://127.0.0.1:8080/\n  endpoints:\n    authz:\n      legacy:\n        implementation: Legacy\n      my/proxy:\n        implementation: ForwardAuth\n        authn_strategies:\n          - name: HeaderProxyAuthorization\n            schemes: [basic]\n            scheme_basic_cache_lifespan: 1m\n          - name: CookieSession\ntelemetry:\n  metrics:\n    enabled: true\n    address: tcp://127.0.0.1:9959/m\nsession:",
    );
    let (c, _) = load(&text).unwrap();
    assert_eq!(
        c.cookies[0].authelia_url.as_deref(),
        Some("https://example.com/auth/")
    );
    assert_eq!(c.listen.socket(), "127.0.0.1:8080".parse().unwrap());
    let paths: Vec<&str> = c.endpoints.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["/api/verify", "/api/authz/my/proxy"]);
    assert_eq!(
        c.endpoints[1].strategies[0].kind,
        StrategyKind::HeaderProxyAuthorization
    );
    assert_eq!(c.endpoints[1].strategies[0].basic_cache, Some(60));
    assert_eq!(
        c.metrics,
        Some(ListenAddress::new("127.0.0.1:9959".parse().unwrap(), "/m"))
    );
}

#[test]
fn redis_section_is_read_with_secrets_from_files() {
    let text = BASE.replace(
        "session:",
        "session:\n  redis:\n    host: 10.0.0.5\n    port: 6380\n    password: in-file\n    database_index: 2\n    timeout: 2s\n    maximum_active_connections: 8\n    high_availability:\n      sentinel_name: mymaster\n      nodes:\n        - host: 10.0.0.6\n          port: 26379",
    );
    let (c, warnings) = load(&text).unwrap();
    let redis = c.redis.unwrap();
    assert_eq!(redis.password.as_deref(), Some("in-file"));
    assert_eq!(redis.database_index, 2);
    assert_eq!(redis.timeout, std::time::Duration::from_secs(2));
    let sentinel = redis.sentinel.unwrap();
    assert_eq!(sentinel.sentinel_name, "mymaster");
    assert_eq!(
        sentinel.nodes,
        [
            ("10.0.0.5".to_owned(), 6380),
            ("10.0.0.6".to_owned(), 26379)
        ]
    );
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let secrets = SecretSources {
        redis_password: Some(from_file("from-env-file")),
        ..SecretSources::default()
    };
    let (c, _) = parse(Path::new("/srv/c.yml"), &text, &secrets).unwrap();
    assert_eq!(c.redis.unwrap().password.as_deref(), Some("from-env-file"));
    let e = error(&BASE.replace("session:", "session:\n  redis:\n    port: 6379"));
    assert_eq!(e.key, "session.redis.host");
}

#[test]
fn short_and_empty_session_secrets_are_refused() {
    let short = BASE.replace("a-long-enough-secret", "short-secret");
    let e = error(&short);
    assert_eq!(e.key, "session.secret");
    assert!(e.message.contains("shorter than 20 characters"), "{e}");
    assert_eq!(e.line, Some(7), "the line of session.secret");
    let secrets = SecretSources {
        session_secret: Some(from_file("tiny")),
        ..SecretSources::default()
    };
    let e = parse(Path::new("c.yml"), BASE, &secrets).unwrap_err();
    assert!(
        e.message.contains("TEST_SECRET_FILE"),
        "names the variable: {e}"
    );
    // An empty secret file is refused before the configuration is read.
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("secret");
    std::fs::write(&empty, "\n").unwrap();
    let lookup = |name: &str| {
        (name == "AUTHELIA_SESSION_SECRET_FILE").then(|| empty.clone().into_os_string())
    };
    let e = SecretSources::from_lookup(lookup).unwrap_err();
    assert!(
        e.to_string().contains("AUTHELIA_SESSION_SECRET_FILE"),
        "{e}"
    );
    assert!(e.to_string().contains("empty"), "{e}");
}

#[test]
fn relative_paths_and_the_default_storage_path_follow_the_configuration_folder() {
    let (c, _) = load(BASE).unwrap();
    assert_eq!(
        c.users.file().expect("a users file"),
        PathBuf::from("/srv/users.yml")
    );
    assert_eq!(
        c.storage_path,
        PathBuf::from("/srv/data/portcullis.sqlite3")
    );
    let prefixed = BASE.replace(
        "session:",
        "server:\n  address: tcp://:9091/authelia/\nsession:",
    );
    let (c, _) = load(&prefixed).unwrap();
    assert_eq!(c.listen.prefix(), Some("/authelia"));
}

#[test]
fn redis_passwords_come_from_their_files() {
    let text = BASE.replace(
        "session:",
        "session:\n  redis:\n    host: redis.internal\n    password: from-the-file\n    high_availability:\n      sentinel_name: main\n      sentinel_password: sentinel-in-file\n      nodes: [{host: s1}]",
    );
    let secrets = SecretSources {
        redis_password: Some(from_file("redis-from-env")),
        sentinel_password: Some(from_file("sentinel-from-env")),
        ..SecretSources::default()
    };
    let (c, _) = parse(Path::new("/srv/c.yml"), &text, &secrets).unwrap();
    let redis = c.redis.unwrap();
    assert_eq!(redis.password.as_deref(), Some("redis-from-env"));
    assert_eq!(
        redis.sentinel.unwrap().sentinel_password.as_deref(),
        Some("sentinel-from-env")
    );
}

#[test]
fn without_redis_the_session_secret_may_be_left_out() {
    let (c, _) = load(&BASE.replace("  secret: a-long-enough-secret\n", "")).unwrap();
    assert!(c.session_secret.is_none());
}

const WITH_KEY: &str = "storage:\n  encryption_key: 0123456789012345678901\n";

#[test]
fn webauthn_has_authelias_defaults_and_reads_every_key() {
    use portcullis_webauthn::options::{Attachment, Conveyance, Requirement};
    let (c, w) = load(&format!("{BASE}{WITH_KEY}")).unwrap();
    assert!(w.is_empty());
    let d = c.second_factor.webauthn.expect("on by default");
    assert_eq!(
        (
            d.display_name.as_str(),
            d.attestation,
            d.timeout,
            d.passkey_login
        ),
        ("Authelia", Conveyance::Indirect, 60, false)
    );
    assert_eq!(d.selection, Default::default());
    let (c, w) = load(&format!(
        "{BASE}{WITH_KEY}webauthn:\n  enable_passkey_login: true\n  experimental_enable_passkey_uv_two_factors: true\n  experimental_enable_passkey_upgrade: true\n  display_name: Example\n  attestation_conveyance_preference: direct\n  timeout: 2m\n  selection_criteria:\n    attachment: cross-platform\n    discoverability: required\n    user_verification: required\n  filtering:\n    prohibited_aaguids: ['CB69481E-8FF7-4039-93EC-0A2729A154A8']\n    prohibit_backup_eligibility: true\n  metadata:\n    enabled: true\n"
    ))
    .unwrap();
    let keys: Vec<&str> = w.iter().map(|w| w.key.as_str()).collect();
    assert_eq!(keys, ["webauthn.metadata"]);
    let x = c.second_factor.webauthn.unwrap();
    assert!(
        x.passkey_login
            && x.passkey_uv_two_factors
            && x.passkey_upgrade
            && x.prohibit_backup_eligibility
    );
    assert_eq!((x.attestation, x.timeout), (Conveyance::Direct, 120));
    assert_eq!(x.selection.attachment, Some(Attachment::CrossPlatform));
    assert_eq!(x.selection.resident_key, Some(Requirement::Required));
    assert_eq!(x.selection.user_verification, Some(Requirement::Required));
    assert_eq!(
        x.prohibited_aaguids,
        ["cb69481e-8ff7-4039-93ec-0a2729a154a8"]
    );
    // disable: no WebAuthn; the deprecated key still works, with a warning.
    let (c, _) = load(&format!("{BASE}{WITH_KEY}webauthn:\n  disable: true\n")).unwrap();
    assert!(c.second_factor.webauthn.is_none());
    let (c, w) = load(&format!(
        "{BASE}{WITH_KEY}webauthn:\n  user_verification: discouraged\n"
    ))
    .unwrap();
    assert_eq!(w[0].key, "webauthn.user_verification");
    assert_eq!(
        c.second_factor
            .webauthn
            .unwrap()
            .selection
            .user_verification,
        Some(Requirement::Discouraged)
    );
    let (_, w) = load(&format!(
        "{BASE}{WITH_KEY}webauthn:\n  enable_passkey_login: true\n  selection_criteria:\n    discoverability: discouraged\n"
    ))
    .unwrap();
    assert_eq!(w[0].key, "webauthn.selection_criteria.discoverability");
    // default_2fa_method may name webauthn once it is on.
    let (c, _) = load(&format!("{BASE}{WITH_KEY}default_2fa_method: webauthn\n")).unwrap();
    assert_eq!(c.second_factor.default_method.as_deref(), Some("webauthn"));
}

#[test]
fn webauthn_contradictions_and_bad_values_are_errors_naming_the_key() {
    for (yaml, key) in [
        (
            "  disable: true\n  enable_passkey_login: true\n",
            "webauthn.enable_passkey_login",
        ),
        (
            "  experimental_enable_passkey_uv_two_factors: true\n",
            "webauthn.experimental_enable_passkey_uv_two_factors",
        ),
        (
            "  experimental_enable_passkey_upgrade: true\n",
            "webauthn.experimental_enable_passkey_upgrade",
        ),
        (
            "  attestation_conveyance_preference: enterprise\n",
            "webauthn.attestation_conveyance_preference",
        ),
        (
            "  selection_criteria:\n    attachment: usb\n",
            "webauthn.selection_criteria.attachment",
        ),
        (
            "  selection_criteria:\n    discoverability: maybe\n",
            "webauthn.selection_criteria.discoverability",
        ),
        (
            "  selection_criteria:\n    user_verification: always\n",
            "webauthn.selection_criteria.user_verification",
        ),
        (
            "  filtering:\n    permitted_aaguids: ['not-a-uuid']\n",
            "webauthn.filtering.permitted_aaguids",
        ),
        (
            "  filtering:\n    permitted_aaguids: ['cb69481e-8ff7-4039-93ec-0a2729a154a8']\n    prohibited_aaguids: ['cb69481e-8ff7-4039-93ec-0a2729a154a9']\n",
            "webauthn.filtering",
        ),
        ("  timeout: soon\n", "webauthn.timeout"),
    ] {
        let e = error(&format!("{BASE}{WITH_KEY}webauthn:\n{yaml}"));
        assert_eq!(e.key, key, "{yaml}: {e}");
    }
}

#[test]
fn the_zxcvbn_policy_has_authelias_default_score_and_excludes_the_standard_one() {
    let (c, w) = load(&format!(
        "{BASE}password_policy:\n  zxcvbn:\n    enabled: true\n"
    ))
    .unwrap();
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(c.second_factor.password_policy.zxcvbn_min_score, Some(3));
    let (c, _) = load(&format!(
        "{BASE}password_policy:\n  zxcvbn:\n    enabled: true\n    min_score: 4\n"
    ))
    .unwrap();
    assert_eq!(c.second_factor.password_policy.zxcvbn_min_score, Some(4));
    assert!(!c.second_factor.password_policy.accepts("correct horse"));
    assert!(
        c.second_factor
            .password_policy
            .accepts("Velvet-Harbor-Quietly-91")
    );
    let (c, _) = load(&format!(
        "{BASE}password_policy:\n  zxcvbn:\n    enabled: false\n    min_score: 4\n"
    ))
    .unwrap();
    assert_eq!(c.second_factor.password_policy.zxcvbn_min_score, None);
    let e = error(&format!(
        "{BASE}password_policy:\n  zxcvbn:\n    enabled: true\n    min_score: 5\n"
    ));
    assert_eq!(e.key, "password_policy.zxcvbn.min_score");
    let e = error(&format!(
        "{BASE}password_policy:\n  zxcvbn:\n    enabled: true\n  standard:\n    enabled: true\n"
    ));
    assert_eq!(e.key, "password_policy");
}

/// `authentication_backend.ldap` from `yaml` (its keys, indented by four), validated alone.
fn ldap(yaml: &str) -> Result<portcullis_auth::ldap::config::LdapConfig, ConfigError> {
    let text = format!("ldap:\n{yaml}");
    #[derive(serde::Deserialize)]
    struct Wrapper {
        ldap: super::ldap::RawLdap,
    }
    let raw: Wrapper = serde_yaml_ng::from_str(&text).unwrap();
    let mut v = super::validate::Validator::new(Path::new("/srv/configuration.yml"), &text);
    v.ldap(&raw.ldap, None, &[], false)
}

#[test]
fn ldap_implementations_fill_what_is_left_empty_with_authelias_defaults() {
    use portcullis_auth::ldap::config::{GroupSearchMode, Implementation};
    let c = ldap("    address: ldap://127.0.0.1\n    implementation: rfc2307bis\n    base_dn: dc=example,dc=com\n    additional_users_dn: ou=users\n    user: cn=admin,dc=example,dc=com\n    password: secret\n").unwrap();
    assert_eq!(c.url, "ldap://127.0.0.1:389");
    assert_eq!(c.implementation, Implementation::Rfc2307bis);
    assert_eq!(c.timeout.as_secs(), 5);
    assert_eq!(c.users_base, "ou=users,dc=example,dc=com");
    assert_eq!(c.groups_base, "dc=example,dc=com");
    assert_eq!(
        c.users_filter,
        "(&(|(uid={input})(mail={input}))(|(objectClass=inetOrgPerson)(objectClass=organizationalPerson)))"
    );
    assert_eq!(c.group_search_mode, GroupSearchMode::Filter);
    assert_eq!(c.attributes.group_name, "cn");
    assert_eq!(c.tls.server_name.as_deref(), Some("127.0.0.1"));
    assert_eq!(c.pool_size, 1);
    assert_eq!(c.pool_acquire, None, "no pooling, no pooled retries");
    let ad = ldap("    address: ldaps://dc.example.com\n    implementation: activedirectory\n    user: CN=svc\n    password: secret\n    pooling:\n      enable: true\n").unwrap();
    assert_eq!(ad.url, "ldaps://dc.example.com:636");
    assert!(
        ad.users_filter
            .starts_with("(&(|(sAMAccountName={input})(mail={input}))(sAMAccountType=805306368)")
    );
    assert!(ad.users_filter.contains("{date-time:microsoft-nt}"));
    assert_eq!(
        ad.attributes.distinguished_name.as_deref(),
        Some("distinguishedName")
    );
    assert_eq!(ad.pool_size, 5);
    use portcullis_auth::ldap::config::PoolAcquire;
    assert_eq!(
        ad.pool_acquire,
        Some(PoolAcquire {
            timeout: std::time::Duration::from_secs(10),
            retries: 2
        }),
        "Authelia's pool defaults"
    );
    let pooled = ldap("    address: ldap://x\n    implementation: rfc2307bis\n    user: cn=svc\n    password: secret\n    pooling:\n      enable: true\n      count: 4\n      retries: 3\n      timeout: 2s\n").unwrap();
    assert_eq!(
        (pooled.pool_size, pooled.pool_acquire),
        (
            4,
            Some(PoolAcquire {
                timeout: std::time::Duration::from_secs(2),
                retries: 3
            })
        )
    );
    let lldap = ldap("    address: ldap://lldap:3890\n    implementation: lldap\n    base_dn: dc=example,dc=com\n    user: uid=admin,ou=people,dc=example,dc=com\n    password: secret\n").unwrap();
    assert_eq!(lldap.users_base, "OU=people,dc=example,dc=com");
    assert_eq!(lldap.groups_base, "OU=groups,dc=example,dc=com");
    assert_eq!(lldap.attributes.names.display_name, "cn");
    let glauth = ldap("    address: ldap://glauth\n    implementation: glauth\n    user: cn=svc\n    password: secret\n").unwrap();
    assert_eq!(
        (
            glauth.attributes.names.username.as_str(),
            glauth.attributes.names.display_name.as_str()
        ),
        ("cn", "description")
    );
    let custom = ldap("    address: ldap://x\n    users_filter: '(&({username_attribute}={input})(objectClass=person))'\n    groups_filter: '(member={dn})'\n    user: cn=svc\n    password: secret\n    timeout: 0s\n").unwrap();
    assert_eq!(custom.timeout.as_secs(), 20, "custom's default");
    // A bare host is ldaps; an absolute path is ldapi.
    assert_eq!(ldap("    address: dir.example.com\n    implementation: freeipa\n    user: x\n    password: y\n").unwrap().url, "ldaps://dir.example.com:636");
    for address in [
        "/run/slapd/ldapi",
        "ldapi:///run/slapd/ldapi",
        "ldapi://%2Frun%2Fslapd%2Fldapi",
    ] {
        assert_eq!(
            ldap(&format!("    address: '{address}'\n    implementation: freeipa\n    user: x\n    password: y\n")).unwrap().url,
            "ldapi://%2Frun%2Fslapd%2Fldapi",
            "{address}"
        );
    }
}

#[test]
fn ldap_profile_and_extra_attributes_name_what_is_read_and_as_what() {
    use portcullis_auth::ldap::config::{ProfileAttribute, ValueType};
    let c = ldap("    address: ldap://x\n    implementation: rfc2307bis\n    user: cn=svc\n    password: secret\n    attributes:\n      given_name: givenName\n      family_name: ''\n      extra:\n        employeeNumber:\n          name: employee\n          value_type: integer\n        memberUid:\n          multi_valued: true\n          value_type: string\n").unwrap();
    let attribute =
        |ldap: &str, name: &str, multi_valued: bool, value_type: ValueType| ProfileAttribute {
            ldap: ldap.into(),
            name: name.into(),
            multi_valued,
            value_type,
        };
    assert_eq!(
        c.attributes.profile,
        [
            attribute("givenName", "given_name", false, ValueType::String),
            attribute("employeeNumber", "employee", false, ValueType::Integer),
            attribute("memberUid", "memberUid", true, ValueType::String),
        ],
        "an empty attribute name reads nothing"
    );
}

#[test]
fn ldap_validation_errors_name_their_key() {
    let ok = "    address: ldap://x\n    implementation: rfc2307bis\n    user: cn=svc\n    password: secret\n";
    assert!(ldap(ok).is_ok());
    for (yaml, key) in [
        (
            "    implementation: rfc2307bis\n    user: a\n    password: b\n",
            "authentication_backend.ldap.address",
        ),
        (
            "    address: http://x\n    implementation: rfc2307bis\n    user: a\n    password: b\n",
            "authentication_backend.ldap.address",
        ),
        (
            "    address: ldap://x\n    implementation: openldap\n",
            "authentication_backend.ldap.implementation",
        ),
        (
            "    address: ldap://x\n    user: a\n    password: b\n",
            "authentication_backend.ldap.users_filter",
        ),
        (
            "    address: ldap://x\n    users_filter: '(uid={input})'\n    groups_filter: '(member={dn})'\n    user: a\n    password: b\n",
            "authentication_backend.ldap.users_filter",
        ),
        (
            "    address: ldap://x\n    users_filter: '{username_attribute}={input}'\n    groups_filter: '(member={dn})'\n    user: a\n    password: b\n",
            "authentication_backend.ldap.users_filter",
        ),
        (
            "    address: ldap://x\n    users_filter: '({username_attribute}={0})'\n    groups_filter: '(member={dn})'\n    user: a\n    password: b\n",
            "authentication_backend.ldap.users_filter",
        ),
        (
            "    address: ldap://x\n    implementation: rfc2307bis\n    groups_filter: '(member={1})'\n    user: a\n    password: b\n",
            "authentication_backend.ldap.groups_filter",
        ),
        (
            "    address: ldap://x\n    implementation: rfc2307bis\n    group_search_mode: memberof\n    user: a\n    password: b\n",
            "authentication_backend.ldap.groups_filter",
        ),
        (
            "    address: ldap://x\n    implementation: rfc2307bis\n    group_search_mode: everything\n    user: a\n    password: b\n",
            "authentication_backend.ldap.group_search_mode",
        ),
        (
            "    address: ldap://x\n    implementation: rfc2307bis\n    group_search_mode: memberof\n    groups_filter: '(|{memberof:dn})'\n    user: a\n    password: b\n",
            "authentication_backend.ldap.attributes.distinguished_name",
        ),
        (
            "    address: ldap://x\n    implementation: rfc2307bis\n    password: b\n",
            "authentication_backend.ldap.user",
        ),
        (
            "    address: ldap://x\n    implementation: rfc2307bis\n    user: a\n",
            "authentication_backend.ldap.password",
        ),
        (
            "    address: ldap://x\n    implementation: rfc2307bis\n    permit_unauthenticated_bind: true\n    password: b\n",
            "authentication_backend.ldap.permit_unauthenticated_bind",
        ),
        (
            "    address: ldap://x\n    implementation: rfc2307bis\n    user: a\n    password: b\n    tls:\n      minimum_version: TLS1.0\n",
            "authentication_backend.ldap.tls.minimum_version",
        ),
        (
            "    address: ldap://x\n    implementation: rfc2307bis\n    user: a\n    password: b\n    tls:\n      minimum_version: TLS1.3\n      maximum_version: TLS1.2\n",
            "authentication_backend.ldap.tls.maximum_version",
        ),
        (
            "    address: ldap://x\n    implementation: rfc2307bis\n    user: a\n    password: b\n    tls:\n      certificate_chain: 'x'\n",
            "authentication_backend.ldap.tls.private_key",
        ),
        (
            "    address: ldap://x\n    implementation: rfc2307bis\n    user: a\n    password: b\n    attributes:\n      extra:\n        groups:\n          value_type: string\n",
            "authentication_backend.ldap.attributes.extra.groups",
        ),
        (
            "    address: ldap://x\n    implementation: rfc2307bis\n    user: a\n    password: b\n    attributes:\n      extra:\n        employee:\n          value_type: float\n",
            "authentication_backend.ldap.attributes.extra.employee.value_type",
        ),
    ] {
        let e = ldap(yaml).expect_err(yaml);
        assert_eq!(e.key, key, "{yaml}: {e}");
    }
    // Unauthenticated bind: only without a password and with password reset off.
    let anonymous = "    address: ldap://x\n    implementation: rfc2307bis\n    permit_unauthenticated_bind: true\n";
    assert!(ldap(anonymous).is_ok());
    let text = format!("ldap:\n{anonymous}");
    #[derive(serde::Deserialize)]
    struct Wrapper {
        ldap: super::ldap::RawLdap,
    }
    let raw: Wrapper = serde_yaml_ng::from_str(&text).unwrap();
    let mut v = super::validate::Validator::new(Path::new("/srv/configuration.yml"), &text);
    let e = v.ldap(&raw.ldap, None, &[], true).unwrap_err();
    assert_eq!(
        e.key,
        "authentication_backend.ldap.permit_unauthenticated_bind"
    );
}
