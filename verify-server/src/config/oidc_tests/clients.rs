//! Clients' keys: defaults, errors naming the key, assertions, warnings.

use super::*;

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
fn client_assertion_keys_and_endpoint_methods_agree() {
    let pem: String = include_str!("../../../tests/fixtures/oidc-es256.pub.pem")
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
