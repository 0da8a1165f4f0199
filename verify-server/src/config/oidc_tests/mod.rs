//! `identity_providers.oidc`: Authelia's defaults and every validation error naming its key.

use std::path::Path;

use portcullis_core::AuthLevel;
use portcullis_oidc::client::{AuthMethod, ConsentMode, GrantType, ResponseMode};
use portcullis_oidc::keys::Algorithm;

use super::{ClientSecret, ConfigError, OidcProvider, PolicyLevel, SecretSources, parse};

const RS256: &str = include_str!("../../../tests/fixtures/oidc-rs256.pem");
const ES256: &str = include_str!("../../../tests/fixtures/oidc-es256.pem");
const RSA1024: &str = include_str!("../../../tests/fixtures/oidc-rsa1024.pem");
const RS256_CHAIN: &str = include_str!("../../../tests/fixtures/oidc-rs256-chain.crt");

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

fn client(extra: &str) -> String {
    yaml(&format!("{CLIENT}{extra}"))
}

mod clients;
mod provider;
