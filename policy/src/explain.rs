//! Why a policy decided what it decided (the `portcullis` CLI prints this).

use std::fmt;

use portcullis_core::{RequiredLevel, Requirement};
use serde::Serialize;

/// The result of [`Policy::evaluate`](crate::Policy::evaluate): what is required and which rule said so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Evaluation {
    /// The level, and whether the deciding rule has subject criteria.
    pub requirement: Requirement,
    /// The deciding rule (0-based), or `None` for the default policy (and for the fail-closed deny of a
    /// path that cannot be normalised).
    pub rule: Option<usize>,
}

/// One kind of rule criterion, in the order they are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Criterion {
    /// `domain` (reported when the rule has `domain`, alone or with `domain_regex`).
    Domain,
    /// `domain_regex` (reported when the rule has only `domain_regex`).
    DomainRegex,
    /// `resources`.
    Resources,
    /// `query`.
    Query,
    /// `methods`.
    Methods,
    /// `networks`.
    Networks,
    /// `subject`.
    Subject,
}

impl Criterion {
    /// The configuration key of the criterion.
    pub fn as_str(self) -> &'static str {
        match self {
            Criterion::Domain => "domain",
            Criterion::DomainRegex => "domain_regex",
            Criterion::Resources => "resources",
            Criterion::Query => "query",
            Criterion::Methods => "methods",
            Criterion::Networks => "networks",
            Criterion::Subject => "subject",
        }
    }
}

impl fmt::Display for Criterion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The configuration name of a level: `bypass`, `one_factor`, `two_factor`, `deny`.
pub fn policy_name(level: RequiredLevel) -> &'static str {
    match level {
        RequiredLevel::Bypass => "bypass",
        RequiredLevel::OneFactor => "one_factor",
        RequiredLevel::TwoFactor => "two_factor",
        _ => "deny",
    }
}

/// How one rule fared against the canonical target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleTrace {
    /// Rule index (0-based).
    pub index: usize,
    /// The rule's policy.
    pub policy: &'static str,
    /// All criteria matched.
    pub matched: bool,
    /// When not matched: the first criterion that failed (`None` when undetermined).
    pub failed: Option<Criterion>,
    /// Matched only because the requester is anonymous and the rule depends on the user
    /// (docs/reference/forward-auth.md §10.3).
    pub potential: bool,
    /// The path could not be normalised, the rule has `resources`, and every other criterion
    /// matched: the rule might apply.
    pub undetermined: bool,
}

/// Which part of the policy decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DecidedBy {
    /// The rule with this index.
    Rule(usize),
    /// No rule matched: the default policy.
    Default,
    /// The path cannot be normalised and every rule it might match bypasses: deny.
    FailClosed,
}

/// A rule-by-rule account of one decision ([`Policy::explain`](crate::Policy::explain)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation {
    /// What `resources` patterns saw: the canonical path, then `?` and the raw query when there is
    /// one. `None` when the path cannot be normalised.
    pub resource: Option<String>,
    /// Why the path cannot be normalised, when it cannot.
    pub path_error: Option<String>,
    /// Every rule in order, checked against [`resource`](Self::resource).
    pub rules: Vec<RuleTrace>,
    /// Another reading of the path (`;` parameters removed, cut at a decoded `#`/`?`, `\` as `/`)
    /// that got a stricter answer than the canonical one and therefore decided
    /// (docs/reference/security.md R4.2).
    pub stricter_reading: Option<String>,
    /// What decided.
    pub decided_by: DecidedBy,
    /// The required level, by its configuration name.
    pub policy: &'static str,
    /// Whether the deciding rule has subject criteria (a deny then sends anonymous users to log in).
    pub rule_has_subject: bool,
    /// The same decision as [`Policy::evaluate`](crate::Policy::evaluate) returns.
    #[serde(skip)]
    pub evaluation: Evaluation,
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.resource, &self.path_error) {
            (Some(resource), _) => writeln!(f, "resource: {resource}")?,
            (None, error) => writeln!(
                f,
                "resource: path cannot be normalised ({}): resources undetermined, never bypassed",
                error.as_deref().unwrap_or("unknown")
            )?,
        }
        for rule in &self.rules {
            write!(f, "rules[{}] {}: ", rule.index, rule.policy)?;
            if rule.matched {
                f.write_str("match")?;
                if rule.potential {
                    f.write_str(" (potential: anonymous)")?;
                }
            } else if rule.undetermined {
                f.write_str("undetermined (resources)")?;
            } else if let Some(criterion) = rule.failed {
                write!(f, "no match ({criterion})")?;
            }
            writeln!(f)?;
        }
        if let Some(reading) = &self.stricter_reading {
            writeln!(f, "stricter reading of the path: {reading}")?;
        }
        let by = match self.decided_by {
            DecidedBy::Rule(i) => format!("rules[{i}]"),
            DecidedBy::Default => "default_policy".to_owned(),
            DecidedBy::FailClosed => "fail-closed (path cannot be normalised)".to_owned(),
        };
        write!(f, "decision: {by} -> {}", self.policy)?;
        if self.rule_has_subject {
            f.write_str(" (rule has subject)")?;
        }
        Ok(())
    }
}
