//! Configuration errors of access rules and unauthenticated paths.

use std::fmt;

/// Where in `access_control` an error is: `access_control.rules[3].resources[0]`.
struct At<'a>(Option<usize>, &'a str);

impl fmt::Display for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.0, self.1) {
            (Some(rule), "") => write!(f, "access_control.rules[{rule}]"),
            (Some(rule), field) => write!(f, "access_control.rules[{rule}].{field}"),
            (None, field) => f.write_str(field),
        }
    }
}

/// A configuration that cannot become a [`Policy`](crate::Policy) or [`SkipPaths`](crate::SkipPaths).
///
/// Rule errors carry the 0-based rule index ([`PolicyError::rule_index`]) and the field inside the
/// rule ([`PolicyError::field`], e.g. `resources[1]` or `query[0][2].operator`); their message names
/// both as `access_control.rules[3].resources[1]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// `default_policy` is not one of the four policies.
    #[error(
        "access_control.default_policy: unknown policy {value:?} (expected bypass, one_factor, two_factor or deny)"
    )]
    UnknownDefaultPolicy {
        /// The configured text.
        value: String,
    },
    /// No rules, and a default policy other than `one_factor`/`two_factor` (an Authelia rule).
    #[error(
        "access_control: with no rules, default_policy must be one_factor or two_factor, not {default_policy}"
    )]
    NoRules {
        /// The effective default policy.
        default_policy: String,
    },
    /// A rule's `policy` is not one of the four policies.
    #[error(
        "{}: unknown policy {value:?} (expected bypass, one_factor, two_factor or deny)",
        At(Some(*rule), "policy")
    )]
    UnknownPolicy {
        /// Rule index (0-based).
        rule: usize,
        /// The configured text.
        value: String,
    },
    /// A rule with neither `domain` nor `domain_regex`.
    #[error("{}: a rule needs `domain` or `domain_regex`", At(Some(*rule), ""))]
    MissingDomain {
        /// Rule index (0-based).
        rule: usize,
    },
    /// A `domain` entry that is not a host name, `*.suffix`, `{user}.suffix` or `{group}.suffix`.
    #[error("{}: invalid domain {value:?}: {reason}", At(Some(*rule), field))]
    InvalidDomain {
        /// Rule index (0-based).
        rule: usize,
        /// `domain[i]`.
        field: String,
        /// The configured text.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A `bypass` rule that depends on who the user is: `subject`, a `{user}`/`{group}` domain, or a
    /// `User`/`Group` named group.
    #[error(
        "{}: a bypass rule cannot depend on the user (subject, {{user}}/{{group}} domains, User/Group named groups)",
        At(Some(*rule), field)
    )]
    BypassWithSubject {
        /// Rule index (0-based).
        rule: usize,
        /// `subject`, `domain[i]`, `domain_regex[i]` or `resources[i]`.
        field: String,
    },
    /// A pattern that does not compile.
    #[error("{}: invalid regular expression: {message}", At(Some(*rule), field))]
    InvalidRegex {
        /// Rule index (0-based).
        rule: usize,
        /// `domain_regex[i]`, `resources[i]` or `query[i][j].value`.
        field: String,
        /// The regex parser's message.
        message: String,
    },
    /// A named group other than `User` and `Group`.
    #[error(
        "{}: named group {name:?} is not allowed (only User and Group)",
        At(Some(*rule), field)
    )]
    ForbiddenGroupName {
        /// Rule index (0-based).
        rule: usize,
        /// `domain_regex[i]` or `resources[i]`.
        field: String,
        /// The group's name.
        name: String,
    },
    /// Not an address or CIDR (in a rule, a `definitions.network` entry or a legacy network).
    #[error("{}: invalid network {value:?}: expected an IP address or CIDR", At(*rule, field))]
    InvalidNetwork {
        /// Rule index (0-based), or `None` for a network definition.
        rule: Option<usize>,
        /// `networks[i]`, or `definitions.network.NAME[i]` / `access_control.networks[i].networks[j]`.
        field: String,
        /// The configured text.
        value: String,
    },
    /// A network name that is neither defined nor an address.
    #[error(
        "{}: unknown network {name:?} (not in definitions.network nor access_control.networks)",
        At(Some(*rule), field)
    )]
    UnknownNetwork {
        /// Rule index (0-based).
        rule: usize,
        /// `networks[i]`.
        field: String,
        /// The name.
        name: String,
    },
    /// A subject without the `user:`, `group:` or `oauth2:client:` prefix, or with an empty name.
    #[error(
        "{}: invalid subject {value:?} (expected user:NAME, group:NAME or oauth2:client:ID)",
        At(Some(*rule), field)
    )]
    InvalidSubject {
        /// Rule index (0-based).
        rule: usize,
        /// `subject[i][j]`.
        field: String,
        /// The configured text.
        value: String,
    },
    /// A query item without a key.
    #[error("{}: a query item needs a non-empty key", At(Some(*rule), field))]
    MissingQueryKey {
        /// Rule index (0-based).
        rule: usize,
        /// `query[i][j].key`.
        field: String,
    },
    /// A query operator Authelia does not know.
    #[error(
        "{}: unknown query operator {operator:?} (expected present, absent, equal, not equal, pattern or not pattern)",
        At(Some(*rule), field)
    )]
    UnknownQueryOperator {
        /// Rule index (0-based).
        rule: usize,
        /// `query[i][j].operator`.
        field: String,
        /// The configured text.
        operator: String,
    },
    /// `equal`, `not equal`, `pattern` or `not pattern` without a value.
    #[error("{}: operator {operator:?} needs a value", At(Some(*rule), field))]
    MissingQueryValue {
        /// Rule index (0-based).
        rule: usize,
        /// `query[i][j].value`.
        field: String,
        /// The operator.
        operator: String,
    },
    /// `present` or `absent` with a value.
    #[error("{}: operator {operator:?} takes no value", At(Some(*rule), field))]
    UnexpectedQueryValue {
        /// Rule index (0-based).
        rule: usize,
        /// `query[i][j].value`.
        field: String,
        /// The operator.
        operator: String,
    },
    /// A method that is empty or not upper-case letters only.
    #[error(
        "{}: invalid method {value:?} (expected upper-case letters, e.g. GET)",
        At(Some(*rule), field)
    )]
    InvalidMethod {
        /// Rule index (0-based).
        rule: usize,
        /// `methods[i]`.
        field: String,
        /// The configured text.
        value: String,
    },
    /// An unauthenticated-path line that does not compile.
    #[error("unauthenticated paths, line {line}: invalid regular expression: {message}")]
    InvalidSkipPath {
        /// Line number (1-based).
        line: usize,
        /// The regex parser's message.
        message: String,
    },
}

impl PolicyError {
    /// The 0-based index of the rule at fault, when the error is about a rule.
    pub fn rule_index(&self) -> Option<usize> {
        use PolicyError::*;
        match self {
            UnknownPolicy { rule, .. }
            | MissingDomain { rule }
            | InvalidDomain { rule, .. }
            | BypassWithSubject { rule, .. }
            | InvalidRegex { rule, .. }
            | ForbiddenGroupName { rule, .. }
            | UnknownNetwork { rule, .. }
            | InvalidSubject { rule, .. }
            | MissingQueryKey { rule, .. }
            | UnknownQueryOperator { rule, .. }
            | MissingQueryValue { rule, .. }
            | UnexpectedQueryValue { rule, .. }
            | InvalidMethod { rule, .. } => Some(*rule),
            InvalidNetwork { rule, .. } => *rule,
            UnknownDefaultPolicy { .. } | NoRules { .. } | InvalidSkipPath { .. } => None,
        }
    }

    /// The field at fault: inside the rule for rule errors (`resources[1]`), the full key otherwise
    /// (`access_control.default_policy`, `definitions.network.internal[0]`).
    pub fn field(&self) -> Option<&str> {
        use PolicyError::*;
        match self {
            UnknownDefaultPolicy { .. } => Some("access_control.default_policy"),
            NoRules { .. } => Some("access_control.rules"),
            UnknownPolicy { .. } => Some("policy"),
            MissingDomain { .. } => Some("domain"),
            InvalidDomain { field, .. }
            | BypassWithSubject { field, .. }
            | InvalidRegex { field, .. }
            | ForbiddenGroupName { field, .. }
            | InvalidNetwork { field, .. }
            | UnknownNetwork { field, .. }
            | InvalidSubject { field, .. }
            | MissingQueryKey { field, .. }
            | UnknownQueryOperator { field, .. }
            | MissingQueryValue { field, .. }
            | UnexpectedQueryValue { field, .. }
            | InvalidMethod { field, .. } => Some(field),
            InvalidSkipPath { .. } => None,
        }
    }
}
