//! Identity header emission (docs/ARCHITECTURE.md step 6): every profile, for a user and for anonymous
//! requests, and applying the set to a response's headers.
//!
//! `cargo bench -p portcullis-headers`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use http::HeaderMap;
use portcullis_core::{AuthLevel, Identity};
use portcullis_headers::{AuthentikMeta, CustomProfileConfig, Profile, ProfileConfig};

fn bench(c: &mut Criterion) {
    let alice = Identity::user("alice", AuthLevel::TwoFactor)
        .with_groups(["admins", "dev", "ops", "team-42"])
        .with_emails(["alice@example.com", "a@example.org"])
        .with_display_name("Alice Liddell");
    let anonymous = Identity::anonymous();
    let authelia = Profile::try_from(ProfileConfig::Authelia).unwrap();
    let authentik = Profile::try_from(ProfileConfig::Authentik(AuthentikMeta {
        jwks_url: "https://auth.example.com/application/o/app/jwks/".into(),
        outpost: "edge".into(),
        provider: "app-provider".into(),
        app: "app".into(),
        version: "1.0.0".into(),
    }))
    .unwrap();
    let custom = Profile::try_from(ProfileConfig::Custom(CustomProfileConfig {
        headers: BTreeMap::from([
            ("X-User".to_owned(), "username".to_owned()),
            ("X-Groups".to_owned(), "groups".to_owned()),
            ("X-Who".to_owned(), "{display_name} <{email}>".to_owned()),
        ]),
        separator: ",".into(),
    }))
    .unwrap();

    let mut group = c.benchmark_group("emit");
    for (name, profile) in [
        ("authelia", &authelia),
        ("authentik", &authentik),
        ("custom_3", &custom),
    ] {
        group.bench_function(format!("{name}/user"), |b| {
            b.iter(|| profile.emit(black_box(&alice), None))
        });
        group.bench_function(format!("{name}/anonymous"), |b| {
            b.iter(|| profile.emit(black_box(&anonymous), None))
        });
    }
    group.bench_function("authelia/user_applied_to_response", |b| {
        b.iter(|| {
            let mut map = HeaderMap::new();
            authelia.emit(black_box(&alice), None).apply_to(&mut map);
            map
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
