//! The cost of one TOTP verification (skew 1: three candidate codes) and of opening a stored
//! secret, the two steps of a TOTP sign-in.

#![allow(clippy::expect_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use portcullis_second_factor::encryption::{Location, Scheme, StorageCipher};
use portcullis_second_factor::totp::{TotpParameters, TotpSecret, code_at, validate};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let secret = TotpSecret::from_bytes((0u8..32).collect());
    let parameters = TotpParameters::default();
    let now = 1_800_000_000;
    let code = code_at(&secret, parameters, now);
    c.bench_function("totp_validate_skew_1", |b| {
        b.iter(|| validate(black_box(&secret), parameters, black_box(&code), now, 1))
    });
    let wrong = if code == "000000" { "000001" } else { "000000" };
    c.bench_function("totp_validate_wrong_code_skew_1", |b| {
        b.iter(|| validate(black_box(&secret), parameters, black_box(wrong), now, 1))
    });
    let location = Location::Row {
        table: "totp_configurations",
        column: "secret",
        row: "john",
    };
    let cipher = StorageCipher::new("a_not_so_secure_encryption_key", Scheme::RowScoped)
        .expect("a key of 30 characters");
    let blob = cipher.seal([3; 12], secret.to_base32().as_bytes(), location);
    c.bench_function("storage_open_totp_secret", |b| {
        b.iter(|| cipher.open(black_box(&blob), location))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
