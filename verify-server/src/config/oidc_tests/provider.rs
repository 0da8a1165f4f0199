//! The provider's keys: defaults, signing keys, errors, rate limits, CORS, `portcullis.oidc`.

use super::*;

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
        "{}server:\n  endpoints:\n    rate_limits:\n      second_factor_duo:\n        enable: true\n      second_factor_totp:\n        enable: true\n",
        yaml(CLIENT)
    );
    let w = warnings(&text);
    assert!(
        w.iter()
            .any(|(k, _)| k == "server.endpoints.rate_limits.second_factor_duo")
    );
    // TOTP's limit is implemented: no warning.
    assert!(
        !w.iter()
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
fn certificate_chains_are_checked_against_their_key_and_published() {
    let with_chain = |key: &str, chain: &str| {
        yaml(&format!(
            "    jwks:\n      - key_id: main\n        key: |\n{}        certificate_chain: |\n{}{CLIENT}",
            indent(key, 10),
            indent(chain, 10)
        ))
    };
    let p = load(&with_chain(RS256, RS256_CHAIN)).unwrap();
    assert_eq!(p.keys[0].validity(), Some((1_796_128_839, 4_949_728_839)));
    let jwks = serde_json::to_value(portcullis_oidc::keys::KeySet::new(p.keys).jwks()).unwrap();
    assert_eq!(jwks["keys"][0]["x5c"].as_array().map(Vec::len), Some(2));

    let (key, message) = error_key(&with_chain(ES256, RS256_CHAIN));
    assert_eq!(key, "identity_providers.oidc.jwks[0].certificate_chain");
    assert!(message.contains("does not carry this key"), "{message}");
    let (key, _) = error_key(&with_chain(RS256, RS256));
    assert_eq!(key, "identity_providers.oidc.jwks[0].certificate_chain");

    let (key, message) = error_key(&yaml(&format!(
        "    issuer_certificate_chain: |\n{}{CLIENT}",
        indent(RS256_CHAIN, 6)
    )));
    assert_eq!(key, "identity_providers.oidc.issuer_certificate_chain");
    assert!(message.contains("issuer_private_key"), "{message}");
    let p = load(&yaml(&format!(
        "    issuer_private_key: |\n{}    issuer_certificate_chain: |\n{}{CLIENT}",
        indent(RS256, 6),
        indent(RS256_CHAIN, 6)
    )))
    .unwrap();
    assert!(p.keys[0].validity().is_some());
}
