//! `identity_providers.oidc`: Authelia's defaults and every validation error naming its key.

use std::path::Path;

use portcullis_core::AuthLevel;
use portcullis_oidc::client::{AuthMethod, ConsentMode, GrantType, ResponseMode};
use portcullis_oidc::keys::Algorithm;

use super::{ClientSecret, ConfigError, OidcProvider, PolicyLevel, SecretSources, parse};

const RS256: &str = include_str!("../../tests/fixtures/oidc-rs256.pem");
const ES256: &str = include_str!("../../tests/fixtures/oidc-es256.pem");
const RSA1024: &str = include_str!("../../tests/fixtures/oidc-rsa1024.pem");

const BASE: &str = "\
authentication_backend: { file: { path: users.yml } }
access_control: { default_policy: one_factor }
definitions:
  network:
    office: ['192.0.2.0/24']
session:
  secret: a-long-enough-secret
  cookies: [{ domain: example.com, authelia_url: 'https://auth.example.com' }]
";

fn indent(pem: &str, spaces: usize) -> String {
    pem.lines()
        .map(|l| format!("{}{l}\n", " ".repeat(spaces)))
        .collect()
}

fn yaml(oidc: &str) -> String {
    format!(
        "{BASE}identity_providers:\n  oidc:\n    hmac_secret: 'this-is-a-very-long-hmac-secret-of-more-than-64-characters-0123456789'\n{oidc}"
    )
}

const CLIENT: &str = "    clients:
      - client_id: app
        client_secret: '$plaintext$app-secret'
        redirect_uris: ['https://app.example.com/cb']
";

fn load(text: &str) -> Result<OidcProvider, ConfigError> {
    parse(
        Path::new("/srv/configuration.yml"),
        text,
        &SecretSources::default(),
    )
    .map(|(c, _)| c.oidc.expect("oidc configured"))
}

fn warnings(text: &str) -> Vec<(String, String)> {
    parse(
        Path::new("/srv/configuration.yml"),
        text,
        &SecretSources::default(),
    )
    .unwrap()
    .1
    .into_iter()
    .map(|w| (w.key, w.message))
    .collect()
}

fn error_key(text: &str) -> (String, String) {
    match parse(
        Path::new("/srv/configuration.yml"),
        text,
        &SecretSources::default(),
    ) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => (e.key, e.message),
    }
}

#[test]
fn authelia_defaults() {
    let p = load(&yaml(CLIENT)).unwrap();
    assert!(
        p.keys.is_empty(),
        "no jwks: a key is generated at first start"
    );
    assert_eq!(p.settings.min_entropy, Some(8));
    assert!(!p.settings.allow_plain_pkce);
    assert_eq!(
        (
            p.lifespans.access_token,
            p.lifespans.refresh_token,
            p.lifespans.id_token,
            p.lifespans.authorize_code
        ),
        (3600, 5400, 3600, 60)
    );
    let c = &p.clients[0];
    assert_eq!(c.client.name, "app");
    assert_eq!(c.client.auth_method, AuthMethod::ClientSecretBasic);
    assert_eq!(c.client.scopes.to_param(), "openid groups profile email");
    assert_eq!(c.client.grant_types, [GrantType::AuthorizationCode]);
    assert_eq!(
        c.client.response_modes,
        [ResponseMode::FormPost, ResponseMode::Query]
    );
    assert_eq!(c.client.consent_mode, ConsentMode::Explicit);
    assert_eq!(c.client.id_token_alg, Algorithm::RS256);
    assert_eq!(c.client.access_token_alg, None);
    assert_eq!(c.policy.default, PolicyLevel::Level(AuthLevel::TwoFactor));
    assert!(matches!(c.secret, Some(ClientSecret::Plain(_))));
    assert_eq!(
        format!("{:?}", c.secret),
        "Some(ClientSecret::Plain([redacted]))"
    );
}

#[test]
fn keys_are_read_with_authelia_kids() {
    let text = yaml(&format!(
        "    jwks:\n      - key: |\n{}      - key_id: ec-key\n        algorithm: ES256\n        key: |\n{}{CLIENT}",
        indent(RS256, 10),
        indent(ES256, 10)
    ));
    let p = load(&text).unwrap();
    assert_eq!(p.keys.len(), 2);
    assert!(
        p.keys[0].kid().ends_with("-rs256") && p.keys[0].kid().len() == 13,
        "{}",
        p.keys[0].kid()
    );
    assert_eq!(p.keys[1].kid(), "ec-key");
    assert_eq!(p.keys[1].alg(), Algorithm::ES256);
    // Without an algorithm, an EC key is ES256 by its curve.
    let text = yaml(&format!(
        "    jwks:\n      - key: |\n{}      - key: |\n{}{CLIENT}",
        indent(RS256, 10),
        indent(ES256, 10)
    ));
    assert_eq!(load(&text).unwrap().keys[1].alg(), Algorithm::ES256);
}

#[test]
fn key_errors_name_the_key() {
    let cases = [
        (
            format!("    jwks:\n      - key: |\n{}{CLIENT}", indent(RSA1024, 10)),
            "identity_providers.oidc.jwks[0].key",
            "2048",
        ),
        (
            format!("    jwks:\n      - key: |\n{}{CLIENT}", indent(ES256, 10)),
            "identity_providers.oidc.jwks",
            "RS256",
        ),
        (
            format!("    jwks:\n      - key: 'not a key'\n{CLIENT}"),
            "identity_providers.oidc.jwks[0].key",
            "",
        ),
        (
            format!("    jwks:\n      - algorithm: RS256\n{CLIENT}"),
            "identity_providers.oidc.jwks[0].key",
            "required",
        ),
        (
            format!(
                "    jwks:\n      - use: enc\n        key: |\n{}{CLIENT}",
                indent(RS256, 10)
            ),
            "identity_providers.oidc.jwks[0].use",
            "encryption",
        ),
        (
            format!(
                "    jwks:\n      - key_id: '-bad-'\n        key: |\n{}{CLIENT}",
                indent(RS256, 10)
            ),
            "identity_providers.oidc.jwks[0].key_id",
            "",
        ),
        (
            format!(
                "    jwks:\n      - algorithm: HS256\n        key: |\n{}{CLIENT}",
                indent(RS256, 10)
            ),
            "identity_providers.oidc.jwks[0].algorithm",
            "HS256",
        ),
    ];
    for (oidc, key, text) in cases {
        let (k, m) = error_key(&yaml(&oidc));
        assert_eq!(k, key, "{m}");
        assert!(m.contains(text), "{m}");
    }
}

#[test]
fn provider_errors_name_the_key() {
    let p = "identity_providers.oidc";
    let cases: Vec<(String, String)> = vec![
        (
            format!("{BASE}identity_providers:\n  oidc:\n{CLIENT}"),
            format!("{p}.hmac_secret"),
        ),
        (
            format!("{BASE}identity_providers:\n  oidc:\n    hmac_secret: short\n{CLIENT}"),
            format!("{p}.hmac_secret"),
        ),
        (yaml("    clients: []\n"), format!("{p}.clients")),
        (
            yaml(&format!("    enforce_pkce: sometimes\n{CLIENT}")),
            format!("{p}.enforce_pkce"),
        ),
        (
            yaml(&format!("    lifespans:\n      access_token: 0\n{CLIENT}")),
            format!("{p}.lifespans.access_token"),
        ),
        (
            yaml(&format!("    lifespans:\n      id_token: 1x\n{CLIENT}")),
            format!("{p}.lifespans.id_token"),
        ),
        (
            yaml(&format!(
                "    authorization_policies:\n      two_factor:\n        rules: [{{ subject: 'user:a' }}]\n{CLIENT}"
            )),
            format!("{p}.authorization_policies.two_factor"),
        ),
        (
            yaml(&format!(
                "    authorization_policies:\n      p:\n        rules: []\n{CLIENT}"
            )),
            format!("{p}.authorization_policies.p.rules"),
        ),
        (
            yaml(&format!(
                "    authorization_policies:\n      p:\n        rules: [{{ policy: one_factor }}]\n{CLIENT}"
            )),
            format!("{p}.authorization_policies.p.rules[0]"),
        ),
        (
            yaml(&format!(
                "    authorization_policies:\n      p:\n        rules: [{{ subject: 'bob' }}]\n{CLIENT}"
            )),
            format!("{p}.authorization_policies.p.rules[0].subject"),
        ),
        (
            yaml(&format!(
                "    authorization_policies:\n      p:\n        rules: [{{ networks: ['nowhere'] }}]\n{CLIENT}"
            )),
            format!("{p}.authorization_policies.p.rules[0].networks"),
        ),
        (
            yaml(&format!(
                "    authorization_policies:\n      p:\n        default_policy: maybe\n        rules: [{{ subject: 'user:a' }}]\n{CLIENT}"
            )),
            format!("{p}.authorization_policies.p.default_policy"),
        ),
        (
            yaml(&format!(
                "    scopes:\n      profile:\n        claims: [name]\n{CLIENT}"
            )),
            format!("{p}.scopes.profile"),
        ),
        (
            yaml(&format!(
                "    scopes:\n      extra:\n        claims: [shoe_size]\n{CLIENT}"
            )),
            format!("{p}.scopes.extra.claims"),
        ),
        (yaml("    unknown_key: 1\n"), format!("{p}.unknown_key")),
    ];
    for (text, key) in cases {
        let (k, m) = error_key(&text);
        assert_eq!(k, key, "{m}\n{text}");
    }
}

fn client(extra: &str) -> String {
    yaml(&format!("{CLIENT}{extra}"))
}

#[test]
fn client_errors_name_the_key() {
    let c = "identity_providers.oidc.clients[0]";
    let cases: Vec<(String, &str)> = vec![
        (
            yaml(
                "    clients:\n      - client_secret: '$plaintext$x'\n        redirect_uris: ['https://a.example.com/cb']\n",
            ),
            "client_id",
        ),
        (
            yaml(
                "    clients:\n      - client_id: 'has space'\n        client_secret: '$plaintext$x'\n        redirect_uris: ['https://a.example.com/cb']\n",
            ),
            "client_id",
        ),
        (
            yaml(
                "    clients:\n      - client_id: app\n        redirect_uris: ['https://a.example.com/cb']\n",
            ),
            "client_secret",
        ),
        (
            yaml(
                "    clients:\n      - client_id: app\n        public: true\n        client_secret: '$plaintext$x'\n        redirect_uris: ['https://a.example.com/cb']\n",
            ),
            "client_secret",
        ),
        (
            yaml(
                "    clients:\n      - client_id: app\n        client_secret: '$md5$x'\n        redirect_uris: ['https://a.example.com/cb']\n",
            ),
            "client_secret",
        ),
        (
            yaml("    clients:\n      - client_id: app\n        client_secret: '$plaintext$x'\n"),
            "redirect_uris",
        ),
        (
            yaml(
                "    clients:\n      - client_id: app\n        client_secret: '$plaintext$x'\n        redirect_uris: ['/relative']\n",
            ),
            "redirect_uris[0]",
        ),
        (
            yaml(
                "    clients:\n      - client_id: app\n        client_secret: '$plaintext$x'\n        redirect_uris: ['https://a.example.com/cb#frag']\n",
            ),
            "redirect_uris[0]",
        ),
        (
            client("        response_types: ['code id_token']\n"),
            "response_types",
        ),
        (
            client("        response_modes: ['fragment']\n"),
            "response_modes",
        ),
        (client("        grant_types: ['implicit']\n"), "grant_types"),
        (
            client("        token_endpoint_auth_method: private_key_jwt\n"),
            "jwks",
        ),
        (
            client(
                "        token_endpoint_auth_method: client_secret_jwt\n        token_endpoint_auth_signing_alg: RS256\n",
            ),
            "token_endpoint_auth_signing_alg",
        ),
        (
            client(
                "        token_endpoint_auth_method: private_key_jwt\n        jwks: [{ key: 'not a key' }]\n",
            ),
            "jwks[0].key",
        ),
        (
            client("        token_endpoint_auth_method: none\n"),
            "token_endpoint_auth_method",
        ),
        (
            client(
                "        token_endpoint_auth_method: client_secret_basic\n        introspection_endpoint_auth_method: client_secret_post\n",
            ),
            "introspection_endpoint_auth_method",
        ),
        (
            client("        authorization_policy: unknown\n"),
            "authorization_policy",
        ),
        (client("        claims_policy: unknown\n"), "claims_policy"),
        (client("        lifespan: unknown\n"), "lifespan"),
        (client("        consent_mode: sometimes\n"), "consent_mode"),
        (
            client("        pkce_challenge_method: S512\n"),
            "pkce_challenge_method",
        ),
        (
            client("        id_token_signed_response_alg: none\n"),
            "id_token_signed_response_alg",
        ),
        (
            client("        id_token_signed_response_alg: ES256\n"),
            "id_token_signed_response_alg",
        ),
        (
            client("        id_token_signed_response_key_id: nope\n"),
            "id_token_signed_response_key_id",
        ),
        (
            client("        access_token_signed_response_alg: PS999\n"),
            "access_token_signed_response_alg",
        ),
        (
            client("        userinfo_signed_response_alg: PS999\n"),
            "userinfo_signed_response_alg",
        ),
        (
            client("        authorization_signed_response_alg: ES256\n"),
            "authorization_signed_response_alg",
        ),
        (
            client("        id_token_encrypted_response_alg: RSA-OAEP\n"),
            "id_token_encrypted_response_alg",
        ),
        (
            client("        sector_identifier_uri: 'https://a.example.com/s.json'\n"),
            "sector_identifier_uri",
        ),
        (
            client("        request_uris: ['https://a.example.com/r']\n"),
            "request_uris",
        ),
        (
            client("        jwks_uri: 'http://a.example.com/jwks'\n"),
            "jwks_uri",
        ),
        (
            client("        backchannel_logout_uri: 'not a uri'\n"),
            "backchannel_logout_uri",
        ),
        (
            client("        backchannel_logout_session_required: true\n"),
            "backchannel_logout_session_required",
        ),
        (
            client("        post_logout_redirect_uris: ['https://a.example.com/#x']\n"),
            "post_logout_redirect_uris[0]",
        ),
        (
            client("        grant_types: [client_credentials]\n        scopes: [openid]\n"),
            "scopes",
        ),
        (client("        typo: 1\n"), "typo"),
    ];
    for (text, key) in cases {
        let (k, m) = error_key(&text);
        assert_eq!(k, format!("{c}.{key}"), "{m}");
    }
    // HS256 signs with the client secret, which must then be kept in plaintext.
    let text = yaml(
        "    clients:\n      - client_id: app\n        client_secret: '$pbkdf2-sha512$310000$c8p78n7pUMln0jzvd4aK4Q$JNRBzwAo0ek5qKn50cFzzvE9RXV88h1wJn5KGiHrD0YKtZaR/nCb2CJPOsKaPK0hjf.9yHxzQGZziziccp6Yng'\n        redirect_uris: ['https://a.example.com/cb']\n        id_token_signed_response_alg: HS256\n",
    );
    assert_eq!(
        error_key(&text).0,
        format!("{c}.id_token_signed_response_alg")
    );
    let p = load(&client("        id_token_signed_response_alg: HS256\n        access_token_signed_response_alg: RS256\n")).unwrap();
    assert_eq!(p.clients[0].client.id_token_alg, Algorithm::HS256);
    assert_eq!(p.clients[0].client.access_token_alg, Some(Algorithm::RS256));
    // Two clients with one id.
    let text = yaml(&format!(
        "{CLIENT}      - client_id: app\n        client_secret: '$plaintext$y'\n        redirect_uris: ['https://b.example.com/cb']\n"
    ));
    assert_eq!(
        error_key(&text).0,
        "identity_providers.oidc.clients[1].client_id"
    );
}

#[test]
fn client_keys_are_read() {
    let text = yaml(
        "    enforce_pkce: always\n    enable_pkce_plain_challenge: true\n    minimum_parameter_entropy: -1\n    authorization_policies:\n      admins:\n        default_policy: deny\n        rules:\n          - subject: ['group:admins']\n            policy: one_factor\n          - networks: [office]\n            policy: two_factor\n    claims_policies:\n      legacy:\n        id_token: [email, groups]\n    lifespans:\n      custom:\n        short:\n          access_token: 5m\n    clients:\n      - client_id: app\n        client_name: My App\n        client_secret: '$pbkdf2-sha512$310000$c8p78n7pUMln0jzvd4aK4Q$JNRBzwAo0ek5qKn50cFzzvE9RXV88h1wJn5KGiHrD0YKtZaR/nCb2CJPOsKaPK0hjf.9yHxzQGZziziccp6Yng'\n        redirect_uris: ['https://app.example.com/cb']\n        scopes: [openid, profile, offline_access]\n        grant_types: [authorization_code, refresh_token]\n        authorization_policy: admins\n        claims_policy: legacy\n        lifespan: short\n        consent_mode: pre-configured\n        pre_configured_consent_duration: 2w\n        token_endpoint_auth_method: client_secret_post\n        require_pkce: true\n        pkce_challenge_method: S256\n      - client_id: spa\n        public: true\n        redirect_uris: ['https://spa.example.com/cb']\n        consent_mode: implicit\n      - client_id: machine\n        client_secret: '$plaintext$m'\n        grant_types: [client_credentials]\n        scopes: [api.read]\n        audience: ['https://api.example.com']\n",
    );
    let p = load(&text).unwrap();
    assert!(p.settings.allow_plain_pkce);
    assert_eq!(p.settings.min_entropy, None);
    let app = p.client("app").unwrap();
    assert_eq!(app.client.name, "My App");
    assert!(matches!(app.secret, Some(ClientSecret::Digest(_))));
    assert_eq!(app.client.auth_method, AuthMethod::ClientSecretPost);
    assert_eq!(
        app.client.consent_mode,
        ConsentMode::PreConfigured(14 * 86_400)
    );
    assert_eq!(app.lifespans.access_token, 300);
    assert_eq!(
        app.lifespans.refresh_token, 5400,
        "unset custom values inherit the provider's"
    );
    assert_eq!(app.client.id_token_claims, ["email", "groups"]);
    assert!(app.client.require_pkce);
    let admin = ["admins".to_owned()];
    assert_eq!(
        app.policy.required("x", &admin, None),
        PolicyLevel::Level(AuthLevel::OneFactor)
    );
    assert_eq!(
        app.policy
            .required("x", &[], Some("192.0.2.7".parse().unwrap())),
        PolicyLevel::Level(AuthLevel::TwoFactor)
    );
    assert_eq!(
        app.policy
            .required("x", &[], Some("198.51.100.1".parse().unwrap())),
        PolicyLevel::Deny
    );
    assert_eq!(
        app.policy.required("x", &[], None),
        PolicyLevel::Deny,
        "an unknown address matches no network"
    );
    let spa = p.client("spa").unwrap();
    assert_eq!(spa.client.auth_method, AuthMethod::None);
    assert!(spa.secret.is_none());
    let m = p.client("machine").unwrap();
    assert_eq!(m.client.grant_types, [GrantType::ClientCredentials]);
    assert_eq!(m.policy.default, PolicyLevel::Level(AuthLevel::OneFactor));
    assert_eq!(m.client.scopes.to_param(), "api.read");
}

#[test]
fn harmless_unimplemented_keys_warn() {
    let w = warnings(&yaml(&format!(
        "    enable_client_debug_messages: true\n    minimum_parameter_entropy: 4\n{CLIENT}        post_logout_redirect_uris: ['https://app.example.com/bye']\n        grant_types: [authorization_code, refresh_token]\n"
    )));
    let keys: Vec<&str> = w.iter().map(|(k, _)| k.as_str()).collect();
    for key in [
        "identity_providers.oidc.enable_client_debug_messages",
        "identity_providers.oidc.minimum_parameter_entropy",
        "identity_providers.oidc.clients[0].grant_types",
    ] {
        assert!(keys.contains(&key), "{key} not in {keys:?}");
    }
}

#[test]
fn the_hmac_secret_may_come_from_a_file() {
    let dir = std::env::temp_dir().join(format!("portcullis-oidc-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("hmac");
    std::fs::write(
        &file,
        "from-a-file-0123456789-0123456789-0123456789-0123456789\n",
    )
    .unwrap();
    let secrets = SecretSources::from_lookup(|name| {
        (name == "AUTHELIA_IDENTITY_PROVIDERS_OIDC_HMAC_SECRET_FILE")
            .then(|| file.clone().into_os_string())
    })
    .unwrap();
    let text = format!("{BASE}identity_providers:\n  oidc:\n{CLIENT}");
    let (config, _) = parse(Path::new("/srv/configuration.yml"), &text, &secrets).unwrap();
    assert!(
        config
            .oidc
            .unwrap()
            .hmac_secret
            .expose()
            .starts_with("from-a-file")
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn rate_limits_default_to_authelias_buckets_and_are_validated() {
    let p = load(&yaml(CLIENT)).unwrap();
    assert_eq!(p.rate_limits.token.len(), 4);
    assert_eq!(
        (
            p.rate_limits.token[0].period,
            p.rate_limits.token[0].requests
        ),
        (60, 30)
    );
    assert_eq!(
        (
            p.rate_limits.userinfo[3].period,
            p.rate_limits.userinfo[3].requests
        ),
        (3600, 100)
    );
    let text = format!(
        "{}server:\n  endpoints:\n    rate_limits:\n      openid_connect_token:\n        buckets: [{{ period: 10s, requests: 2 }}]\n      openid_connect_userinfo:\n        enable: false\n",
        yaml(CLIENT)
    );
    let p = load(&text).unwrap();
    assert_eq!(
        (
            p.rate_limits.token[0].period,
            p.rate_limits.token[0].requests
        ),
        (10, 2)
    );
    assert!(p.rate_limits.userinfo.is_empty());
    for (bucket, key) in [
        ("{ period: 0, requests: 2 }", "period"),
        ("{ requests: 2 }", "period"),
        ("{ period: 1m, requests: 0 }", "requests"),
        ("{ period: 1m }", "requests"),
    ] {
        let text = format!(
            "{}server:\n  endpoints:\n    rate_limits:\n      openid_connect_token:\n        buckets: [{bucket}]\n",
            yaml(CLIENT)
        );
        assert_eq!(
            error_key(&text).0,
            format!("server.endpoints.rate_limits.openid_connect_token.buckets[0].{key}"),
            "{bucket}"
        );
    }
    let text = format!(
        "{}server:\n  endpoints:\n    rate_limits:\n      second_factor_totp:\n        enable: true\n",
        yaml(CLIENT)
    );
    assert!(
        warnings(&text)
            .iter()
            .any(|(k, _)| k == "server.endpoints.rate_limits.second_factor_totp")
    );
}

#[test]
fn portcullis_oidc_keys() {
    let p = load(&yaml(CLIENT)).unwrap();
    assert_eq!(p.key_rotation, 30 * 86_400);
    assert_eq!(p.superuser_group, None);
    let p = load(&format!(
        "{}portcullis:\n  oidc:\n    key_rotation: 0\n    superuser_group: admins\n",
        yaml(CLIENT)
    ))
    .unwrap();
    assert_eq!(p.key_rotation, 0);
    assert_eq!(p.superuser_group.as_deref(), Some("admins"));
    for bad in ["1h", "soon"] {
        let text = format!(
            "{}portcullis:\n  oidc:\n    key_rotation: {bad}\n",
            yaml(CLIENT)
        );
        assert_eq!(error_key(&text).0, "portcullis.oidc.key_rotation", "{bad}");
    }
    let text = format!("{}portcullis:\n  oidc:\n    typo: 1\n", yaml(CLIENT));
    assert!(error_key(&text).0.starts_with("portcullis.oidc"));
}

#[test]
fn cors_and_signed_metadata_keys() {
    let p = load(&yaml(&format!("    cors:\n      endpoints: [token]\n      allowed_origins_from_client_redirect_uris: true\n    discovery_signed_response_alg: RS256\n{CLIENT}"))).unwrap();
    assert_eq!(p.cors.origins, ["https://app.example.com"]);
    assert!(p.cors.allows("token", "https://app.example.com"));
    assert!(!p.cors.allows("token", "https://other.example.com"));
    assert!(!p.cors.allows("userinfo", "https://app.example.com"));
    assert_eq!(p.discovery_signing.map(|(a, _)| a), Some(Algorithm::RS256));
    // No origins configured: every https origin, as Authelia.
    let p = load(&yaml(&format!(
        "    cors:\n      endpoints: [userinfo]\n{CLIENT}"
    )))
    .unwrap();
    assert!(p.cors.allows("userinfo", "https://anything.example.net"));
    assert!(!p.cors.allows("userinfo", "http://anything.example.net"));
    for (cors, key) in [
        (
            "      endpoints: [tokens]\n",
            "identity_providers.oidc.cors.endpoints",
        ),
        (
            "      allowed_origins: ['https://a.example.com/path']\n",
            "identity_providers.oidc.cors.allowed_origins",
        ),
        (
            "      allowed_origins: ['*', 'https://a.example.com']\n",
            "identity_providers.oidc.cors.allowed_origins",
        ),
    ] {
        assert_eq!(
            error_key(&yaml(&format!("    cors:\n{cors}{CLIENT}"))).0,
            key
        );
    }
    assert_eq!(
        error_key(&yaml(&format!(
            "    discovery_signed_response_key_id: nope\n{CLIENT}"
        )))
        .0,
        "identity_providers.oidc.discovery_signed_response_key_id"
    );
}

#[test]
fn rate_limits_are_validated_without_a_provider_and_key_ids_agree_with_algorithms() {
    let text = format!(
        "{BASE}server:\n  endpoints:\n    rate_limits:\n      openid_connect_token:\n        buckets: [{{ period: 0, requests: 1 }}]\n"
    );
    assert_eq!(
        error_key(&text).0,
        "server.endpoints.rate_limits.openid_connect_token.buckets[0].period"
    );
    let text = yaml(&format!(
        "    jwks:\n      - key_id: rsa-key\n        key: |\n{}{CLIENT}        id_token_signed_response_key_id: rsa-key\n        id_token_signed_response_alg: ES256\n",
        indent(RS256, 10)
    ));
    assert_eq!(
        error_key(&text).0,
        "identity_providers.oidc.clients[0].id_token_signed_response_alg"
    );
}

#[test]
fn client_assertion_keys_and_endpoint_methods_agree() {
    let pem: String = include_str!("../../tests/fixtures/oidc-es256.pub.pem")
        .lines()
        .map(|l| format!("              {l}\n"))
        .collect();
    let text = yaml(&format!(
        "    clients:\n      - client_id: pk\n        token_endpoint_auth_method: private_key_jwt\n        token_endpoint_auth_signing_alg: RS256\n        grant_types: [client_credentials]\n        scopes: [api]\n        jwks:\n          - algorithm: ES256\n            key: |\n{pem}"
    ));
    assert_eq!(
        error_key(&text).0,
        "identity_providers.oidc.clients[0].jwks[0].algorithm"
    );
    let text =
        client("        pushed_authorization_request_endpoint_auth_method: client_secret_post\n");
    assert_eq!(
        error_key(&text).0,
        "identity_providers.oidc.clients[0].pushed_authorization_request_endpoint_auth_method"
    );
    assert!(
        load(&client(
            "        pushed_authorization_request_endpoint_auth_method: client_secret_basic\n"
        ))
        .is_ok()
    );
}
