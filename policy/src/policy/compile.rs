//! Compiling an `access_control` section: the default policy, named networks, and each rule with
//! its validation (bypass rules must not depend on the user) and warnings.

use std::collections::BTreeMap;

use ipnet::IpNet;
use portcullis_core::{RequiredLevel, parse_cidr};

use super::index::DomainIndex;
use super::matchers::{
    DomainMatcher, Pattern, compile_pattern, compile_query, parse_domain, parse_subject,
};
use super::{Policy, Rule};
use crate::config::{AccessControlConfig, RuleConfig};
use crate::error::PolicyError;
use crate::re2;

/// [`Policy::compile`].
pub(super) fn compile_policy(
    config: &AccessControlConfig,
    definitions: &BTreeMap<String, Vec<String>>,
) -> Result<Policy, PolicyError> {
    let default_text = config.default_policy.as_deref().unwrap_or("deny");
    let default = parse_level(default_text).ok_or_else(|| PolicyError::UnknownDefaultPolicy {
        value: default_text.to_owned(),
    })?;
    if config.rules.is_empty()
        && !matches!(default, RequiredLevel::OneFactor | RequiredLevel::TwoFactor)
    {
        return Err(PolicyError::NoRules {
            default_policy: default_text.to_owned(),
        });
    }
    let networks = named_networks(config, definitions)?;
    let mut warnings = Vec::new();
    let rules = config
        .rules
        .iter()
        .enumerate()
        .map(|(index, rule)| compile_rule(index, rule, &networks, &mut warnings))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Policy {
        uses_path: rules.iter().any(|r| !r.resources.is_empty()),
        uses_query: rules.iter().any(|r| !r.query.is_empty()),
        index: DomainIndex::build(&rules),
        rules,
        default,
        warnings,
    })
}

fn parse_level(text: &str) -> Option<RequiredLevel> {
    Some(match text {
        "bypass" => RequiredLevel::Bypass,
        "one_factor" => RequiredLevel::OneFactor,
        "two_factor" => RequiredLevel::TwoFactor,
        "deny" => RequiredLevel::Deny,
        _ => return None,
    })
}

/// Names usable in `networks`: `definitions.network` first, then the legacy list.
fn named_networks(
    config: &AccessControlConfig,
    definitions: &BTreeMap<String, Vec<String>>,
) -> Result<BTreeMap<String, Vec<IpNet>>, PolicyError> {
    let mut out = BTreeMap::new();
    for (i, legacy) in config.networks.iter().enumerate() {
        let nets = legacy
            .networks
            .iter()
            .enumerate()
            .map(|(j, text)| {
                parse_cidr(text).map_err(|_| PolicyError::InvalidNetwork {
                    rule: None,
                    field: format!("access_control.networks[{i}].networks[{j}]"),
                    value: text.clone(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        out.insert(legacy.name.clone(), nets);
    }
    for (name, list) in definitions {
        let nets = list
            .iter()
            .enumerate()
            .map(|(j, text)| {
                parse_cidr(text).map_err(|_| PolicyError::InvalidNetwork {
                    rule: None,
                    field: format!("definitions.network.{name}[{j}]"),
                    value: text.clone(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        out.insert(name.clone(), nets);
    }
    Ok(out)
}

fn compile_rule(
    index: usize,
    config: &RuleConfig,
    networks: &BTreeMap<String, Vec<IpNet>>,
    warnings: &mut Vec<String>,
) -> Result<Rule, PolicyError> {
    let level = parse_level(&config.policy).ok_or_else(|| PolicyError::UnknownPolicy {
        rule: index,
        value: config.policy.clone(),
    })?;
    if config.domain.is_empty() && config.domain_regex.is_empty() {
        return Err(PolicyError::MissingDomain { rule: index });
    }
    let domains = config
        .domain
        .iter()
        .enumerate()
        .map(|(i, text)| parse_domain(index, i, text))
        .collect::<Result<Vec<_>, _>>()?;
    let domain_regex = config
        .domain_regex
        .iter()
        .enumerate()
        .map(|(i, text)| compile_pattern(index, format!("domain_regex[{i}]"), text))
        .collect::<Result<Vec<_>, _>>()?;
    let resources = config
        .resources
        .iter()
        .enumerate()
        .map(|(i, text)| compile_pattern(index, format!("resources[{i}]"), text))
        .collect::<Result<Vec<_>, _>>()?;
    let query = config
        .query
        .iter()
        .enumerate()
        .map(|(i, group)| {
            group
                .iter()
                .enumerate()
                .map(|(j, item)| compile_query(index, i, j, item))
                .collect::<Result<Vec<_>, _>>()
        })
        .collect::<Result<Vec<_>, _>>()?;
    let methods = config
        .methods
        .iter()
        .enumerate()
        .map(|(i, m)| {
            if !m.is_empty() && m.bytes().all(|b| b.is_ascii_uppercase()) {
                Ok(m.clone())
            } else {
                Err(PolicyError::InvalidMethod {
                    rule: index,
                    field: format!("methods[{i}]"),
                    value: m.clone(),
                })
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut nets = Vec::new();
    for (i, text) in config.networks.iter().enumerate() {
        if let Some(named) = networks.get(text) {
            nets.extend(named.iter().copied());
        } else if let Ok(net) = parse_cidr(text) {
            nets.push(net);
        } else {
            let field = format!("networks[{i}]");
            let looks_like_address =
                text.contains(['/', ':']) || text.chars().all(|c| c.is_ascii_digit() || c == '.');
            return Err(if looks_like_address {
                PolicyError::InvalidNetwork {
                    rule: Some(index),
                    field,
                    value: text.clone(),
                }
            } else {
                PolicyError::UnknownNetwork {
                    rule: index,
                    field,
                    name: text.clone(),
                }
            });
        }
    }
    let subjects = config
        .subject
        .iter()
        .enumerate()
        .map(|(i, group)| {
            group
                .iter()
                .enumerate()
                .map(|(j, text)| parse_subject(index, i, j, text))
                .collect::<Result<Vec<_>, _>>()
        })
        .collect::<Result<Vec<_>, _>>()?;

    if level == RequiredLevel::Bypass {
        let bypass_error = |field: String| PolicyError::BypassWithSubject { rule: index, field };
        if !subjects.is_empty() {
            return Err(bypass_error("subject".to_owned()));
        }
        if let Some(i) = domains.iter().position(DomainMatcher::names_user) {
            return Err(bypass_error(format!("domain[{i}]")));
        }
        if let Some(i) = domain_regex.iter().position(Pattern::has_identity_groups) {
            return Err(bypass_error(format!("domain_regex[{i}]")));
        }
        if let Some(i) = resources.iter().position(Pattern::has_identity_groups) {
            return Err(bypass_error(format!("resources[{i}]")));
        }
        for (i, text) in config.resources.iter().enumerate() {
            if !re2::anchored_at_start(text) {
                warnings.push(format!(
                    "access_control.rules[{index}].resources[{i}]: the bypass pattern {text:?} is not anchored \
                     with ^, so it can match anywhere in the path and in the query (/admin?x=/public/ \
                     matches /public/); anchor it, e.g. \"^/public/\""
                ));
            }
        }
    }
    for (i, text) in config.resources.iter().enumerate() {
        if text.contains('%') {
            warnings.push(format!(
                "access_control.rules[{index}].resources[{i}]: the pattern {text:?} contains '%': paths are \
                 matched decoded, and a '%' that decoding produces reads \"%25\""
            ));
        }
    }

    let has_subject = !subjects.is_empty()
        || domains.iter().any(DomainMatcher::names_user)
        || domain_regex.iter().any(Pattern::has_identity_groups)
        || resources.iter().any(Pattern::has_identity_groups);
    Ok(Rule {
        level,
        domains,
        domain_regex,
        resources,
        query,
        methods,
        networks: nets,
        subjects,
        has_subject,
    })
}
