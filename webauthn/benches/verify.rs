//! The cost of one WebAuthn assertion verification (ES256, the algorithm nearly every
//! authenticator uses): client data, authenticator data, COSE key parse and the signature.

#![allow(clippy::expect_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use portcullis_webauthn::ceremony::{
    AssertionResponse, Expectation, StoredCredential, verify_assertion,
};
use portcullis_webauthn::encoding::Challenge;
use portcullis_webauthn::software_authenticator::SoftwareAuthenticator;
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let mut seed = [0u8; 32];
    seed[31] = 7;
    let mut authenticator = SoftwareAuthenticator::new(seed, vec![3; 32]);
    let challenge = Challenge::new([5; 32]);
    let expected = Expectation {
        challenge: &challenge,
        rp_id: "auth.example.com",
        origin: "https://auth.example.com",
        user_verification: None,
    };
    let cose = authenticator.public_key().to_cose();
    let json = authenticator.assert(
        "auth.example.com",
        "https://auth.example.com",
        &challenge.to_base64url(),
        None,
    );
    let response: AssertionResponse = serde_json::from_value(json).expect("assertion JSON");
    let stored = StoredCredential {
        public_key: &cose,
        sign_count: 0,
        app_id: None,
    };
    verify_assertion(&response, &expected, stored).expect("a valid assertion");
    c.bench_function("webauthn_verify_assertion_es256", |b| {
        b.iter(|| verify_assertion(black_box(&response), &expected, stored))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
