//! Compiled Authelia access rules and their evaluation (docs/reference/forward-auth.md §10,
//! docs/reference/security.md §4).
//!
//! [`Policy`] and the compiled [`Rule`] are defined here; the work is split by concern:
//!
//! - [`compile`]: validating an `access_control` section and building the rules;
//! - [`matchers`]: the domain, pattern (`domain_regex`, `resources`), query and subject criteria,
//!   each parsed from its configuration text and matched against a request;
//! - [`index`]: the domain index that narrows the rules a host can match;
//! - [`evaluate`]: checking rules against a request, path readings and the strictest answer.

use std::collections::BTreeMap;

use ipnet::IpNet;
use portcullis_core::{Identity, RequiredLevel, Target};

use crate::config::AccessControlConfig;
use crate::error::PolicyError;
use crate::explain::{DecidedBy, Evaluation, Explanation, RuleTrace, policy_name};

use evaluate::Check;
use index::DomainIndex;
use matchers::{DomainMatcher, Pattern, QueryMatcher, SubjectMatcher};

mod compile;
mod evaluate;
mod index;
mod matchers;

/// Compiled access rules: regexes and networks are built once, evaluation does no parsing.
///
/// See the [crate documentation](crate) for the semantics.
#[derive(Debug, Clone)]
pub struct Policy {
    rules: Vec<Rule>,
    default: RequiredLevel,
    warnings: Vec<String>,
    /// Some rule has `resources`: the path must be read.
    uses_path: bool,
    /// Some rule has `query`: the query must be parsed.
    uses_query: bool,
    /// Which rules a host can match, so that evaluation skips the others (`None`: scan them all).
    index: Option<DomainIndex>,
}

/// One compiled `access_control` rule.
#[derive(Debug, Clone)]
struct Rule {
    level: RequiredLevel,
    domains: Vec<DomainMatcher>,
    domain_regex: Vec<Pattern>,
    resources: Vec<Pattern>,
    query: Vec<Vec<QueryMatcher>>,
    methods: Vec<String>,
    networks: Vec<IpNet>,
    subjects: Vec<Vec<SubjectMatcher>>,
    has_subject: bool,
}

impl Policy {
    /// Validate and compile an `access_control` section.
    ///
    /// `definitions` is the top-level `definitions.network` map (name → addresses and CIDRs); the
    /// legacy `access_control.networks` entries are usable too (a name in both resolves to
    /// `definitions`).
    ///
    /// # Errors
    ///
    /// A [`PolicyError`] naming the rule index and field, see its variants.
    pub fn compile(
        config: &AccessControlConfig,
        definitions: &BTreeMap<String, Vec<String>>,
    ) -> Result<Policy, PolicyError> {
        compile::compile_policy(config, definitions)
    }

    /// Things that load but deserve the operator's attention: a `bypass` rule whose `resources`
    /// pattern is not anchored at the start (it can match text in the query,
    /// docs/reference/security.md R4.4), and `resources` patterns containing `%` (a decoded `%`
    /// reads `%25`, see [`crate::path`]).
    pub fn warnings(&self) -> Vec<String> {
        self.warnings.clone()
    }

    /// True when some rule, or the default policy, requires two factors.
    pub fn has_two_factor(&self) -> bool {
        self.default == RequiredLevel::TwoFactor
            || self
                .rules
                .iter()
                .any(|r| r.level == RequiredLevel::TwoFactor)
    }

    /// The number of rules.
    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// The default policy.
    pub fn default_level(&self) -> RequiredLevel {
        self.default
    }

    /// What `identity` needs to reach `target`: the first rule whose criteria all match, else the
    /// default policy. Readings of the path that differ only in `;` parameters, a decoded `#`/`?`, or
    /// `\` for `/` are evaluated too and the strictest answer wins; a path that cannot be normalised
    /// is never bypassed (see the [crate documentation](crate)).
    pub fn evaluate(&self, target: &Target, identity: &Identity) -> Evaluation {
        self.run(target, identity).evaluation
    }

    /// [`evaluate`](Self::evaluate), rule by rule.
    pub fn explain(&self, target: &Target, identity: &Identity) -> Explanation {
        let run = self.run(target, identity);
        let facts = &run.facts;
        let resource = run.resource.as_deref();
        let rules = self
            .rules
            .iter()
            .enumerate()
            .map(|(index, rule)| {
                let check = rule.check(facts, resource);
                RuleTrace {
                    index,
                    policy: policy_name(rule.level),
                    matched: check == Check::Match,
                    failed: match check {
                        Check::NoMatch(c) => Some(c),
                        _ => None,
                    },
                    potential: check == Check::Match && rule.has_subject && facts.anonymous,
                    undetermined: check == Check::Undetermined,
                }
            })
            .collect();
        let evaluation = run.evaluation;
        Explanation {
            resource: run.resource,
            path_error: run.path_error.map(|e| e.to_string()),
            rules,
            stricter_reading: run.stricter_reading,
            decided_by: match (evaluation.rule, run.fail_closed) {
                (Some(i), _) => DecidedBy::Rule(i),
                (None, true) => DecidedBy::FailClosed,
                (None, false) => DecidedBy::Default,
            },
            policy: policy_name(evaluation.requirement.level),
            rule_has_subject: evaluation.requirement.rule_has_subject,
            evaluation,
        }
    }

    /// [`evaluate`](Self::evaluate) without the domain index: every rule is scanned (the reference
    /// the index is tested against).
    #[cfg(test)]
    pub(crate) fn evaluate_scanning_all(&self, target: &Target, identity: &Identity) -> Evaluation {
        self.run_with(target, identity, false).evaluation
    }
}
