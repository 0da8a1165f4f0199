//! The uncached cost of the outpost's Bearer check: one RS256 token verified against the
//! provider's JWK Set with issuer, audience and expiry checks (`relying_party::verify_token`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use portcullis_oidc::keys::{Algorithm, KeySet, SigningKey};
use portcullis_oidc::relying_party::{IdpKeys, TokenCheck, verify_token};

const KEY: &str = include_str!("../../verify-server/tests/fixtures/oidc-rs256.pem");

fn bench(c: &mut Criterion) {
    let key = SigningKey::from_pem(KEY, Algorithm::RS256, Some("k1")).unwrap();
    let token = key
        .sign(
            &serde_json::json!({"iss": "https://idp.example.com", "aud": "app", "sub": "u", "exp": 2_000_000_000u64, "preferred_username": "u"}),
            None,
        )
        .unwrap();
    let jwks = serde_json::to_vec(&KeySet::new(vec![key]).jwks()).unwrap();
    let keys = IdpKeys::from_jwks(&jwks).unwrap();
    let check = TokenCheck {
        issuer: "https://idp.example.com",
        audiences: &["app"],
        now: 1_700_000_000,
        leeway: 5,
    };
    c.bench_function("relying_party::verify_token RS256", |b| {
        b.iter(|| verify_token(&token, &keys, None, &check).unwrap())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
