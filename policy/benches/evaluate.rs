//! Policy evaluation (docs/ARCHITECTURE.md step 4) with 10, 100 and 1,000 rules of a realistic mix, and the
//! one-time compilation cost.
//!
//! `cargo bench -p portcullis-policy`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use portcullis_core::{
    AuthLevel, ClientIp, Identity, RequiredLevel, Target, TargetUrl, checked_method,
};
use portcullis_policy::Policy;

// The rule generator is shared with the load benchmark (crate portcullis-bench, which depends on
// this crate, so it is included by path rather than as a dev-dependency).
#[allow(dead_code)]
#[path = "../../bench/src/rules.rs"]
mod rules;

fn target(url: &str) -> Target {
    Target {
        url: TargetUrl::parse(url).unwrap(),
        method: checked_method("GET", "bench").unwrap(),
        client_ip: ClientIp::Known("198.51.100.23".parse().unwrap()),
    }
}

fn bench(c: &mut Criterion) {
    let alice = Identity::user("alice", AuthLevel::OneFactor)
        .with_groups(["admins", "dev"])
        .with_emails(["alice@example.com"]);
    let anonymous = Identity::anonymous();
    let app = target(rules::APP_URL);
    let bypass = target(rules::BYPASS_URL);
    let admin = target("https://app.example.com/admin/users?page=2");

    let mut compile = c.benchmark_group("policy_compile");
    for n in [10usize, 100, 1000] {
        let config = rules::realistic(n);
        compile.bench_with_input(BenchmarkId::from_parameter(n), &config, |b, config| {
            b.iter(|| Policy::compile(black_box(config), &BTreeMap::new()).unwrap())
        });
    }
    compile.finish();

    let mut group = c.benchmark_group("policy_evaluate");
    for n in [10usize, 100, 1000] {
        let policy = Policy::compile(&rules::realistic(n), &BTreeMap::new()).unwrap();
        // The requests decide where the benchmark says they do.
        let e = policy.evaluate(&app, &alice);
        assert_eq!(
            (e.rule, e.requirement.level),
            (Some(n - 1), RequiredLevel::OneFactor)
        );
        assert_eq!(policy.evaluate(&bypass, &anonymous).rule, Some(n - 3));
        assert_eq!(policy.evaluate(&admin, &alice).rule, Some(n - 2));

        group.bench_with_input(BenchmarkId::new("last_rule_user", n), &n, |b, _| {
            b.iter(|| policy.evaluate(black_box(&app), black_box(&alice)))
        });
        group.bench_with_input(BenchmarkId::new("last_rule_anonymous", n), &n, |b, _| {
            b.iter(|| policy.evaluate(black_box(&app), black_box(&anonymous)))
        });
        group.bench_with_input(BenchmarkId::new("bypass_anonymous", n), &n, |b, _| {
            b.iter(|| policy.evaluate(black_box(&bypass), black_box(&anonymous)))
        });
        group.bench_with_input(BenchmarkId::new("subject_rule_user", n), &n, |b, _| {
            b.iter(|| policy.evaluate(black_box(&admin), black_box(&alice)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
