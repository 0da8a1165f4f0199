//! The criteria a rule is made of, each parsed from its configuration text and matched against a
//! request: domains, patterns (`domain_regex`, `resources`), query items and subjects.

use portcullis_core::Identity;
use portcullis_core::domain::canonical_host;

use crate::config::QueryItemConfig;
use crate::error::PolicyError;
use crate::re2::{self, Regex};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum DomainMatcher {
    Exact(String),
    /// `*.example.com`, stored as `.example.com`.
    Wildcard(String),
    /// `{user}.example.com`, stored as `.example.com`.
    User(String),
    /// `{group}.example.com`, stored as `.example.com`.
    Group(String),
}

pub(super) fn parse_domain(
    rule: usize,
    i: usize,
    text: &str,
) -> Result<DomainMatcher, PolicyError> {
    enum Form {
        Exact,
        Wildcard,
        User,
        Group,
    }
    let invalid = |reason: &'static str| PolicyError::InvalidDomain {
        rule,
        field: format!("domain[{i}]"),
        value: text.to_owned(),
        reason,
    };
    let lower = text.to_lowercase();
    let (form, name) = if let Some(rest) = lower.strip_prefix("*.") {
        (Form::Wildcard, rest)
    } else if let Some(rest) = lower.strip_prefix("{user}.") {
        (Form::User, rest)
    } else if let Some(rest) = lower.strip_prefix("{group}.") {
        (Form::Group, rest)
    } else {
        (Form::Exact, lower.as_str())
    };
    if name.contains(['*', '{', '}']) {
        return Err(invalid(
            "wildcards are only allowed as a leading `*.`, `{user}.` or `{group}.`",
        ));
    }
    let host = url::Host::parse(name).map_err(|_| invalid("not a valid host name"))?;
    let is_domain = matches!(host, url::Host::Domain(_));
    let canonical = canonical_host(&host.to_string());
    if canonical.is_empty() {
        return Err(invalid("empty host name"));
    }
    let suffix = || format!(".{canonical}");
    Ok(match form {
        Form::Exact => DomainMatcher::Exact(canonical),
        _ if !is_domain => {
            return Err(invalid("a wildcard needs a domain name, not an IP address"));
        }
        Form::Wildcard => DomainMatcher::Wildcard(suffix()),
        Form::User => DomainMatcher::User(suffix()),
        Form::Group => DomainMatcher::Group(suffix()),
    })
}

impl DomainMatcher {
    pub(super) fn matches(&self, host: &str, identity: &Identity, anonymous: bool) -> bool {
        match self {
            DomainMatcher::Exact(name) => host.eq_ignore_ascii_case(name),
            DomainMatcher::Wildcard(suffix) => {
                host.len() > suffix.len() && ends_with_ignore_case(host, suffix)
            }
            DomainMatcher::User(suffix) | DomainMatcher::Group(suffix) if anonymous => {
                host.len() > suffix.len() && ends_with_ignore_case(host, suffix)
            }
            DomainMatcher::User(suffix) => {
                let user = identity.username.as_bytes();
                !user.is_empty()
                    && host.len() == user.len() + suffix.len()
                    && host.as_bytes()[..user.len()].eq_ignore_ascii_case(user)
                    && ends_with_ignore_case(host, suffix)
            }
            DomainMatcher::Group(suffix) => match host.find('.') {
                Some(dot) => {
                    host[dot..].eq_ignore_ascii_case(suffix)
                        && identity.groups.iter().any(|g| fold_eq(g, &host[..dot]))
                }
                None => false,
            },
        }
    }

    pub(super) fn names_user(&self) -> bool {
        matches!(self, DomainMatcher::User(_) | DomainMatcher::Group(_))
    }
}

#[derive(Debug, Clone)]
pub(super) struct Pattern {
    pub(super) regex: Regex,
    user: Option<usize>,
    group: Option<usize>,
}

pub(super) fn compile_pattern(
    rule: usize,
    field: String,
    text: &str,
) -> Result<Pattern, PolicyError> {
    let regex = re2::compile(text).map_err(|message| PolicyError::InvalidRegex {
        rule,
        field: field.clone(),
        message,
    })?;
    let mut user = None;
    let mut group = None;
    for (i, name) in regex.capture_names().enumerate() {
        match name {
            None => {}
            Some("User") => user = Some(i),
            Some("Group") => group = Some(i),
            Some(other) => {
                return Err(PolicyError::ForbiddenGroupName {
                    rule,
                    field,
                    name: other.to_owned(),
                });
            }
        }
    }
    Ok(Pattern { regex, user, group })
}

impl Pattern {
    pub(super) fn has_identity_groups(&self) -> bool {
        self.user.is_some() || self.group.is_some()
    }

    pub(super) fn matches(&self, input: &str, identity: &Identity, anonymous: bool) -> bool {
        if !self.has_identity_groups() || anonymous {
            return self.regex.is_match(input);
        }
        self.regex.any_match(input, |text| {
            self.user.is_none_or(|i| {
                !identity.username.is_empty() && fold_eq(text(i), &identity.username)
            }) && self
                .group
                .is_none_or(|i| identity.groups.iter().any(|g| fold_eq(g, text(i))))
        })
    }
}

#[derive(Debug, Clone)]
pub(super) struct QueryMatcher {
    key: String,
    op: QueryOp,
}

#[derive(Debug, Clone)]
enum QueryOp {
    Present,
    Absent,
    Equal(String),
    NotEqual(String),
    Pattern(Regex),
    NotPattern(Regex),
}

pub(super) fn compile_query(
    rule: usize,
    i: usize,
    j: usize,
    item: &QueryItemConfig,
) -> Result<QueryMatcher, PolicyError> {
    let field = |name: &str| format!("query[{i}][{j}].{name}");
    if item.key.is_empty() {
        return Err(PolicyError::MissingQueryKey {
            rule,
            field: field("key"),
        });
    }
    let operator = item.operator.as_deref().unwrap_or(match item.value {
        Some(_) => "equal",
        None => "present",
    });
    let needs_value = |value: &Option<String>| {
        value.clone().ok_or_else(|| PolicyError::MissingQueryValue {
            rule,
            field: field("value"),
            operator: operator.to_owned(),
        })
    };
    let pattern = |value: &Option<String>| -> Result<Regex, PolicyError> {
        re2::compile(&needs_value(value)?).map_err(|message| PolicyError::InvalidRegex {
            rule,
            field: field("value"),
            message,
        })
    };
    let op = match operator {
        "present" | "absent" => {
            if item.value.is_some() {
                return Err(PolicyError::UnexpectedQueryValue {
                    rule,
                    field: field("value"),
                    operator: operator.to_owned(),
                });
            }
            if operator == "present" {
                QueryOp::Present
            } else {
                QueryOp::Absent
            }
        }
        "equal" => QueryOp::Equal(needs_value(&item.value)?),
        "not equal" => QueryOp::NotEqual(needs_value(&item.value)?),
        "pattern" => QueryOp::Pattern(pattern(&item.value)?),
        "not pattern" => QueryOp::NotPattern(pattern(&item.value)?),
        other => {
            return Err(PolicyError::UnknownQueryOperator {
                rule,
                field: field("operator"),
                operator: other.to_owned(),
            });
        }
    };
    Ok(QueryMatcher {
        key: item.key.clone(),
        op,
    })
}

impl QueryMatcher {
    pub(super) fn matches(&self, pairs: &[(String, String)]) -> bool {
        let first = pairs
            .iter()
            .find(|(k, _)| *k == self.key)
            .map(|(_, v)| v.as_str());
        let value = first.unwrap_or("");
        match &self.op {
            QueryOp::Present => first.is_some(),
            QueryOp::Absent => first.is_none(),
            QueryOp::Equal(expected) => value == expected,
            QueryOp::NotEqual(expected) => value != expected,
            QueryOp::Pattern(re) => re.is_match(value),
            QueryOp::NotPattern(re) => !re.is_match(value),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum SubjectMatcher {
    User(String),
    Group(String),
    Client(String),
}

pub(super) fn parse_subject(
    rule: usize,
    i: usize,
    j: usize,
    text: &str,
) -> Result<SubjectMatcher, PolicyError> {
    let matcher = if let Some(id) = text.strip_prefix("oauth2:client:") {
        SubjectMatcher::Client(id.to_owned())
    } else if let Some(name) = text.strip_prefix("user:") {
        SubjectMatcher::User(name.to_owned())
    } else if let Some(name) = text.strip_prefix("group:") {
        SubjectMatcher::Group(name.to_owned())
    } else {
        SubjectMatcher::User(String::new())
    };
    match &matcher {
        SubjectMatcher::User(n) | SubjectMatcher::Group(n) | SubjectMatcher::Client(n)
            if !n.is_empty() =>
        {
            Ok(matcher)
        }
        _ => Err(PolicyError::InvalidSubject {
            rule,
            field: format!("subject[{i}][{j}]"),
            value: text.to_owned(),
        }),
    }
}

impl SubjectMatcher {
    pub(super) fn matches(&self, identity: &Identity) -> bool {
        match self {
            SubjectMatcher::User(name) => identity.username == *name,
            SubjectMatcher::Group(name) => identity.in_group(name),
            SubjectMatcher::Client(id) => identity.client_id.as_deref() == Some(id.as_str()),
        }
    }
}

fn ends_with_ignore_case(host: &str, suffix: &str) -> bool {
    host.len() >= suffix.len()
        && host.as_bytes()[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes())
}

/// Unicode case-insensitive equality (close to Go's `strings.EqualFold`).
fn fold_eq(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
        || a.chars()
            .flat_map(char::to_lowercase)
            .eq(b.chars().flat_map(char::to_lowercase))
}
