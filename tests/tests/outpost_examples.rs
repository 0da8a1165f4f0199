//! The files of `examples/outpost/` as the README runs them, without any program: the three
//! outpost configurations load without warnings, and `portcullis-verify --config
//! examples/quickstart/configuration.yml --config examples/outpost/verify-idp.yml` loads with one
//! client per outpost provider that fits it (client id, secret, redirect URI, scopes, the
//! form-body client authentication the outpost uses). The e2e tests (`outpost_forward.rs`,
//! `outpost_proxy.rs`) run the same files.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use portcullis_tests::outpost::example;
use portcullis_verify_server::config::{ClientSecret, LoadOptions, load_all};

const OUTPOSTS: [&str; 3] = [
    "outpost-forward-single.yml",
    "outpost-forward-domain.yml",
    "outpost-proxy.yml",
];

#[test]
fn every_outpost_provider_has_its_client_in_verify_idp_yml() {
    let quickstart = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/quickstart/configuration.yml");
    let (verify, warnings) = load_all(
        &[quickstart, example("verify-idp.yml")],
        &LoadOptions::default(),
    )
    .unwrap_or_else(|e| panic!("quickstart + verify-idp.yml: {e}"));
    assert!(warnings.is_empty(), "{warnings:?}");
    let oidc = verify.oidc.as_ref().expect("identity_providers.oidc");
    assert_eq!(oidc.clients.len(), OUTPOSTS.len());
    let issuer = verify.cookies[0].authelia_url.as_deref().unwrap();

    for file in OUTPOSTS {
        let (outpost, warnings) = portcullis_outpost::config::load(&example(file), &|_| None)
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(warnings.is_empty(), "{file}: {warnings:?}");
        for p in &outpost.providers {
            assert_eq!(p.issuer.as_deref(), Some(issuer), "{file}: the issuer");
            let client = oidc
                .clients
                .iter()
                .find(|c| c.client.id == p.client_id)
                .unwrap_or_else(|| panic!("{file}: no client {} in verify-idp.yml", p.client_id));
            let callback = format!(
                "{}/outpost.goauthentik.io/callback?X-authentik-auth-callback=true",
                p.external()
            );
            assert_eq!(client.client.redirect_uris, [callback], "{file}");
            match &client.secret {
                Some(ClientSecret::Plain(s)) => assert_eq!(
                    Some(s.expose()),
                    p.client_secret.as_ref().map(|s| s.expose()),
                    "{file}: the client secret"
                ),
                other => panic!("{file}: a $plaintext$ secret expected, got {other:?}"),
            }
            assert_eq!(
                client.client.auth_method.as_str(),
                "client_secret_post",
                "{file}: the outpost sends its secret in the form body"
            );
            for scope in &p.scopes {
                assert!(
                    client.client.scopes.contains(scope),
                    "{file}: scope {scope} not registered"
                );
            }
        }
    }
}
