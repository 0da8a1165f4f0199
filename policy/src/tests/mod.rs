//! Table-driven tests of the public behaviour. Expected values come from
//! docs/reference/forward-auth.md §10, docs/reference/outpost.md §7/§14 and
//! docs/reference/security.md §4.

mod adversarial;
mod config;
mod evaluation;
mod explain;
mod index;
mod validation;

use std::collections::BTreeMap;

use portcullis_core::{
    AuthLevel, ClientIp, Identity, RequiredLevel, Target, TargetUrl, checked_method,
};

use crate::{AccessControlConfig, Policy, PolicyError};

/// Parse an `access_control` section written in YAML.
fn config(yaml: &str) -> AccessControlConfig {
    serde_yaml_ng::from_str(yaml).unwrap()
}

/// Compile YAML with `definitions.network` given as `(name, [cidr…])`.
fn try_compile(yaml: &str, definitions: &[(&str, &[&str])]) -> Result<Policy, PolicyError> {
    let defs: BTreeMap<String, Vec<String>> = definitions
        .iter()
        .map(|(name, list)| {
            (
                (*name).to_owned(),
                list.iter().map(|s| (*s).to_owned()).collect(),
            )
        })
        .collect();
    Policy::compile(&config(yaml), &defs)
}

fn compile(yaml: &str) -> Policy {
    try_compile(yaml, &[]).unwrap()
}

fn target(url: &str) -> Target {
    target_full(url, "GET", ClientIp::Known("192.0.2.1".parse().unwrap()))
}

fn target_full(url: &str, method: &str, client_ip: ClientIp) -> Target {
    Target {
        url: TargetUrl::parse(url).unwrap(),
        method: checked_method(method, "test").unwrap(),
        client_ip,
    }
}

fn anon() -> Identity {
    Identity::anonymous()
}

fn user(name: &str, groups: &[&str]) -> Identity {
    Identity::user(name, AuthLevel::TwoFactor).with_groups(groups.iter().copied())
}

/// `(deciding rule, level, rule_has_subject)`.
type Outcome = (Option<usize>, RequiredLevel, bool);

fn outcome(policy: &Policy, target: &Target, identity: &Identity) -> Outcome {
    let e = policy.evaluate(target, identity);
    (e.rule, e.requirement.level, e.requirement.rule_has_subject)
}

use RequiredLevel::{Bypass, Deny, OneFactor, TwoFactor};
