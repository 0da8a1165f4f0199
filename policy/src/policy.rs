//! Compiled Authelia access rules and their evaluation (forward-auth.md §10, security.md §4).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use ipnet::IpNet;
use portcullis_core::domain::canonical_host;
use portcullis_core::{ClientIp, Identity, RequiredLevel, Requirement, Target, parse_cidr};
use regex::{Regex, RegexSet};

use crate::config::{AccessControlConfig, QueryItemConfig, RuleConfig};
use crate::error::PolicyError;
use crate::explain::{Criterion, DecidedBy, Evaluation, Explanation, RuleTrace, policy_name};
use crate::path::{PathError, PathForms};
use crate::{query, re2};

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

/// The rules whose domain criteria a host can satisfy, built at compile time.
///
/// Domain criteria are checked first and a rule whose domain does not match cannot match at all, so
/// evaluating only the candidate rules (in order) gives the same answer as scanning every rule.
/// Exact names and `*.` suffixes are looked up by hash, `domain_regex` patterns are run together as
/// one [`RegexSet`] (a set match only makes the rule a candidate: the rule's own check still decides,
/// including `User`/`Group` captures), and rules with `{user}`/`{group}` forms are always candidates.
#[derive(Debug, Clone, Default)]
struct DomainIndex {
    /// Canonical host → rules with that exact name, ascending.
    exact: HashMap<String, Vec<usize>>,
    /// `.suffix` of a `*.suffix` form → rules with it, ascending.
    wildcard: HashMap<String, Vec<usize>>,
    /// Every `domain_regex` pattern, and the rule each belongs to.
    regexes: Option<(RegexSet, Vec<usize>)>,
    /// Rules checked for every host, ascending.
    always: Vec<usize>,
}

/// Below this many rules a plain scan is as fast as the index.
#[cfg(not(test))]
const INDEX_MIN_RULES: usize = 16;
/// Tests run every policy through the index.
#[cfg(test)]
const INDEX_MIN_RULES: usize = 1;

impl DomainIndex {
    /// `None` when there are too few rules for an index to pay, or the patterns cannot be combined.
    fn build(rules: &[Rule]) -> Option<Self> {
        if rules.len() < INDEX_MIN_RULES {
            return None;
        }
        let mut index = DomainIndex::default();
        let mut patterns = Vec::new();
        let mut owners = Vec::new();
        for (i, rule) in rules.iter().enumerate() {
            if rule.domains.iter().any(DomainMatcher::names_user) {
                index.always.push(i);
                continue;
            }
            for pattern in &rule.domain_regex {
                patterns.push(pattern.regex.as_str());
                owners.push(i);
            }
            for domain in &rule.domains {
                let (map, key) = match domain {
                    DomainMatcher::Exact(name) => (&mut index.exact, name),
                    DomainMatcher::Wildcard(suffix) => (&mut index.wildcard, suffix),
                    DomainMatcher::User(_) | DomainMatcher::Group(_) => continue,
                };
                let list = map.entry(key.clone()).or_default();
                if list.last() != Some(&i) {
                    list.push(i);
                }
            }
        }
        if !patterns.is_empty() {
            // Each pattern compiled on its own already; a set of them only fails on size limits.
            index.regexes = Some((RegexSet::new(&patterns).ok()?, owners));
        }
        Some(index)
    }

    /// The candidate rules for `host` in ascending order, or `None` when the host is not in canonical
    /// (lower-case) form and every rule must be checked.
    fn candidates(&self, host: &str) -> Option<Cow<'_, [usize]>> {
        if host.bytes().any(|b| b.is_ascii_uppercase()) {
            return None;
        }
        let mut lists: Vec<&[usize]> = Vec::with_capacity(4);
        if !self.always.is_empty() {
            lists.push(&self.always);
        }
        if let Some(list) = self.exact.get(host) {
            lists.push(list);
        }
        if !self.wildcard.is_empty() {
            // `*.suffix` matches a host that ends with `.suffix` and is longer than it.
            for (at, _) in host.match_indices('.').filter(|(at, _)| *at > 0) {
                if let Some(list) = self.wildcard.get(&host[at..]) {
                    lists.push(list);
                }
            }
        }
        let by_regex = match &self.regexes {
            Some((set, owners)) if set.is_match(host) => set
                .matches(host)
                .iter()
                .filter_map(|p| owners.get(p).copied())
                .collect(),
            _ => Vec::new(),
        };
        Some(match lists.as_slice() {
            [] if by_regex.is_empty() => Cow::Borrowed(&[]),
            [only] if by_regex.is_empty() => Cow::Borrowed(*only),
            _ => {
                let mut all: Vec<usize> = lists.concat();
                all.extend(by_regex);
                all.sort_unstable();
                all.dedup();
                Cow::Owned(all)
            }
        })
    }
}

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

#[derive(Debug, Clone, PartialEq, Eq)]
enum DomainMatcher {
    Exact(String),
    /// `*.example.com`, stored as `.example.com`.
    Wildcard(String),
    /// `{user}.example.com`, stored as `.example.com`.
    User(String),
    /// `{group}.example.com`, stored as `.example.com`.
    Group(String),
}

#[derive(Debug, Clone)]
struct Pattern {
    regex: Regex,
    user: Option<usize>,
    group: Option<usize>,
}

#[derive(Debug, Clone)]
struct QueryMatcher {
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

#[derive(Debug, Clone, PartialEq, Eq)]
enum SubjectMatcher {
    User(String),
    Group(String),
    Client(String),
}

/// The per-request facts every rule reads, computed once per evaluation.
struct Facts<'a> {
    host: &'a str,
    method: &'a str,
    ip: Option<IpAddr>,
    identity: &'a Identity,
    anonymous: bool,
    query: Vec<(String, String)>,
}

/// How one rule fares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    Match,
    NoMatch(Criterion),
    /// Every criterion matched except `resources`, which could not be evaluated.
    Undetermined,
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

/// Deny > TwoFactor > OneFactor > Bypass.
fn rank(level: RequiredLevel) -> u8 {
    match level {
        RequiredLevel::Bypass => 0,
        RequiredLevel::OneFactor => 1,
        RequiredLevel::TwoFactor => 2,
        _ => 3,
    }
}

/// True when `b` is stricter than `a`. Between two denies, the one without subject (a 403 even for
/// anonymous users) is stricter.
fn stricter(a: &Evaluation, b: &Evaluation) -> bool {
    let (ra, rb) = (rank(a.requirement.level), rank(b.requirement.level));
    rb > ra
        || (rb == ra
            && a.requirement.level == RequiredLevel::Deny
            && a.requirement.rule_has_subject
            && !b.requirement.rule_has_subject)
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
        let default_text = config.default_policy.as_deref().unwrap_or("deny");
        let default =
            parse_level(default_text).ok_or_else(|| PolicyError::UnknownDefaultPolicy {
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

    /// Things that load but deserve the operator's attention: a `bypass` rule whose `resources`
    /// pattern is not anchored at the start (it can match text in the query, security.md R4.4), and
    /// `resources` patterns containing `%` (a decoded `%` reads `%25`, see [`crate::path`]).
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

    fn run<'a>(&self, target: &'a Target, identity: &'a Identity) -> Run<'a> {
        self.run_with(target, identity, true)
    }

    fn run_with<'a>(&self, target: &'a Target, identity: &'a Identity, indexed: bool) -> Run<'a> {
        let url = &target.url;
        let raw_query = url.query().filter(|q| !q.is_empty());
        let facts = Facts {
            host: url.host(),
            method: target.method.as_str(),
            ip: match target.client_ip {
                ClientIp::Known(ip) => Some(ip.to_canonical()),
                _ => None,
            },
            identity,
            anonymous: identity.is_anonymous(),
            query: match raw_query {
                Some(q) if self.uses_query => query::parse(q),
                _ => Vec::new(),
            },
        };
        let candidates = match &self.index {
            Some(index) if indexed => index.candidates(facts.host),
            _ => None,
        };
        let candidates = candidates.as_deref();
        let forms = match PathForms::of(url.path(), self.uses_path) {
            Ok(forms) => forms,
            Err(error) => {
                let (evaluation, fail_closed) = self.decide_undetermined(&facts, candidates);
                return Run {
                    facts,
                    evaluation,
                    resource: None,
                    path_error: Some(error),
                    stricter_reading: None,
                    fail_closed,
                };
            }
        };
        let resource = |path: &str| {
            let mut s = String::with_capacity(path.len() + raw_query.map_or(0, |q| q.len() + 1));
            s.push_str(path);
            if let Some(q) = raw_query {
                s.push('?');
                s.push_str(q);
            }
            s
        };
        let canonical = resource(&forms.canonical);
        let mut evaluation = self.decide(&facts, &canonical, candidates);
        let mut stricter_reading = None;
        for variant in &forms.variants {
            let reading = resource(variant);
            let candidate = self.decide(&facts, &reading, candidates);
            if stricter(&evaluation, &candidate) {
                evaluation = candidate;
                stricter_reading = Some(reading);
            }
        }
        Run {
            facts,
            evaluation,
            resource: Some(canonical),
            path_error: None,
            stricter_reading,
            fail_closed: false,
        }
    }

    /// The rules to check, in order: the index's candidates for the host, or all of them.
    fn scan<'s>(&'s self, candidates: Option<&'s [usize]>) -> Scan<'s> {
        match candidates {
            Some(list) => Scan::Candidates(list.iter(), &self.rules),
            None => Scan::All(self.rules.iter().enumerate()),
        }
    }

    /// First matching rule on one resource string, else the default.
    fn decide(
        &self,
        facts: &Facts<'_>,
        resource: &str,
        candidates: Option<&[usize]>,
    ) -> Evaluation {
        for (index, rule) in self.scan(candidates) {
            if rule.check(facts, Some(resource)) == Check::Match {
                return rule.evaluation(index);
            }
        }
        self.default_evaluation()
    }

    /// The path cannot be normalised: `resources` cannot be evaluated. Every rule that might be the
    /// first match is a candidate (scanning stops at the first rule that matches whatever the path);
    /// the strictest candidate decides, and if that is still a bypass, the answer is deny.
    fn decide_undetermined(
        &self,
        facts: &Facts<'_>,
        candidates: Option<&[usize]>,
    ) -> (Evaluation, bool) {
        let mut worst: Option<Evaluation> = None;
        let mut definite = false;
        for (index, rule) in self.scan(candidates) {
            let check = rule.check(facts, None);
            if matches!(check, Check::Match | Check::Undetermined) {
                let candidate = rule.evaluation(index);
                if worst.as_ref().is_none_or(|w| stricter(w, &candidate)) {
                    worst = Some(candidate);
                }
                if check == Check::Match {
                    definite = true;
                    break;
                }
            }
        }
        if !definite {
            let candidate = self.default_evaluation();
            if worst.as_ref().is_none_or(|w| stricter(w, &candidate)) {
                worst = Some(candidate);
            }
        }
        match worst {
            Some(e) if e.requirement.level != RequiredLevel::Bypass => (e, false),
            _ => (
                Evaluation {
                    requirement: Requirement::plain(RequiredLevel::Deny),
                    rule: None,
                },
                true,
            ),
        }
    }

    fn default_evaluation(&self) -> Evaluation {
        Evaluation {
            requirement: Requirement::plain(self.default),
            rule: None,
        }
    }
}

/// Rules in evaluation order: a candidate list, or every rule.
enum Scan<'s> {
    Candidates(std::slice::Iter<'s, usize>, &'s [Rule]),
    All(std::iter::Enumerate<std::slice::Iter<'s, Rule>>),
}

impl<'s> Iterator for Scan<'s> {
    type Item = (usize, &'s Rule);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Scan::Candidates(list, rules) => list.find_map(|&i| rules.get(i).map(|r| (i, r))),
            Scan::All(all) => all.next(),
        }
    }
}

struct Run<'a> {
    facts: Facts<'a>,
    evaluation: Evaluation,
    resource: Option<String>,
    path_error: Option<PathError>,
    stricter_reading: Option<String>,
    fail_closed: bool,
}

impl Rule {
    fn evaluation(&self, index: usize) -> Evaluation {
        Evaluation {
            requirement: Requirement {
                level: self.level,
                rule_has_subject: self.has_subject,
            },
            rule: Some(index),
        }
    }

    /// Criteria in Authelia's order. `resource` is `None` when the path cannot be normalised.
    fn check(&self, facts: &Facts<'_>, resource: Option<&str>) -> Check {
        let id = facts.identity;
        let anon = facts.anonymous;
        let domain_ok = self.domains.iter().any(|d| d.matches(facts.host, id, anon))
            || self
                .domain_regex
                .iter()
                .any(|p| p.matches(facts.host, id, anon));
        if !domain_ok {
            return Check::NoMatch(if self.domains.is_empty() {
                Criterion::DomainRegex
            } else {
                Criterion::Domain
            });
        }
        let mut undetermined = false;
        if !self.resources.is_empty() {
            match resource {
                Some(r) => {
                    if !self.resources.iter().any(|p| p.matches(r, id, anon)) {
                        return Check::NoMatch(Criterion::Resources);
                    }
                }
                None => undetermined = true,
            }
        }
        if !self.query.is_empty()
            && !self
                .query
                .iter()
                .any(|group| group.iter().all(|m| m.matches(&facts.query)))
        {
            return Check::NoMatch(Criterion::Query);
        }
        if !self.methods.is_empty() && !self.methods.iter().any(|m| m == facts.method) {
            return Check::NoMatch(Criterion::Methods);
        }
        if !self.networks.is_empty()
            && !facts
                .ip
                .is_some_and(|ip| self.networks.iter().any(|n| n.contains(&ip)))
        {
            return Check::NoMatch(Criterion::Networks);
        }
        if !self.subjects.is_empty()
            && !anon
            && !self
                .subjects
                .iter()
                .any(|group| group.iter().all(|s| s.matches(id)))
        {
            return Check::NoMatch(Criterion::Subject);
        }
        if undetermined {
            Check::Undetermined
        } else {
            Check::Match
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

impl DomainMatcher {
    fn matches(&self, host: &str, identity: &Identity, anonymous: bool) -> bool {
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

    fn names_user(&self) -> bool {
        matches!(self, DomainMatcher::User(_) | DomainMatcher::Group(_))
    }
}

impl Pattern {
    fn has_identity_groups(&self) -> bool {
        self.user.is_some() || self.group.is_some()
    }

    fn matches(&self, input: &str, identity: &Identity, anonymous: bool) -> bool {
        if !self.has_identity_groups() || anonymous {
            return self.regex.is_match(input);
        }
        self.regex.captures_iter(input).any(|caps| {
            let text = |i: usize| caps.get(i).map_or("", |m| m.as_str());
            self.user.is_none_or(|i| {
                !identity.username.is_empty() && fold_eq(text(i), &identity.username)
            }) && self
                .group
                .is_none_or(|i| identity.groups.iter().any(|g| fold_eq(g, text(i))))
        })
    }
}

impl QueryMatcher {
    fn matches(&self, pairs: &[(String, String)]) -> bool {
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

impl SubjectMatcher {
    fn matches(&self, identity: &Identity) -> bool {
        match self {
            SubjectMatcher::User(name) => identity.username == *name,
            SubjectMatcher::Group(name) => identity.in_group(name),
            SubjectMatcher::Client(id) => identity.client_id.as_deref() == Some(id.as_str()),
        }
    }
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

fn parse_domain(rule: usize, i: usize, text: &str) -> Result<DomainMatcher, PolicyError> {
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

fn compile_pattern(rule: usize, field: String, text: &str) -> Result<Pattern, PolicyError> {
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

fn compile_query(
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

fn parse_subject(
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
