//! Evaluation: the first matching rule for each reading of the path, the strictest answer across
//! readings, and the fail-closed answer when the path cannot be normalised.

use std::cell::OnceCell;
use std::net::IpAddr;

use portcullis_core::{ClientIp, Identity, RequiredLevel, Requirement, Target};

use super::{Policy, Rule};
use crate::explain::{Criterion, Evaluation};
use crate::path::{PathError, PathForms};
use crate::query;

/// The per-request facts every rule reads, computed once per evaluation.
pub(super) struct Facts<'a> {
    host: &'a str,
    method: &'a str,
    ip: Option<IpAddr>,
    identity: &'a Identity,
    pub(super) anonymous: bool,
    /// The raw query, parsed on first use: most checks reach no rule with `query` criteria, and
    /// the parse (a string per key and value) was a sixth of an evaluation.
    raw_query: Option<&'a str>,
    query: OnceCell<Vec<(String, String)>>,
}

impl Facts<'_> {
    fn query(&self) -> &[(String, String)] {
        self.query
            .get_or_init(|| self.raw_query.map(query::parse).unwrap_or_default())
    }
}

/// How one rule fares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Check {
    Match,
    NoMatch(Criterion),
    /// Every criterion matched except `resources`, which could not be evaluated.
    Undetermined,
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
    pub(super) fn run<'a>(&self, target: &'a Target, identity: &'a Identity) -> Run<'a> {
        self.run_with(target, identity, true)
    }

    pub(super) fn run_with<'a>(
        &self,
        target: &'a Target,
        identity: &'a Identity,
        indexed: bool,
    ) -> Run<'a> {
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
            raw_query: raw_query.filter(|_| self.uses_query),
            query: OnceCell::new(),
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

/// One evaluation, with what [`Policy::explain`] reports about it.
pub(super) struct Run<'a> {
    pub(super) facts: Facts<'a>,
    pub(super) evaluation: Evaluation,
    pub(super) resource: Option<String>,
    pub(super) path_error: Option<PathError>,
    pub(super) stricter_reading: Option<String>,
    pub(super) fail_closed: bool,
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
    pub(super) fn check(&self, facts: &Facts<'_>, resource: Option<&str>) -> Check {
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
                .any(|group| group.iter().all(|m| m.matches(facts.query())))
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
