//! The domain index: which rules a host can match, so that evaluation skips the others.

use std::borrow::Cow;
use std::collections::HashMap;

use super::Rule;
use super::matchers::DomainMatcher;
use crate::re2::RegexSet;

/// The rules whose domain criteria a host can satisfy, built at compile time.
///
/// Domain criteria are checked first and a rule whose domain does not match cannot match at all, so
/// evaluating only the candidate rules (in order) gives the same answer as scanning every rule.
/// Exact names and `*.` suffixes are looked up by hash, `domain_regex` patterns are run together as
/// one `RegexSet` (a set match only makes the rule a candidate: the rule's own check still decides,
/// including `User`/`Group` captures), and rules with `{user}`/`{group}` forms are always candidates.
#[derive(Debug, Clone, Default)]
pub(super) struct DomainIndex {
    /// Canonical host → rules with that exact name, ascending. foldhash: the keys come from the
    /// configuration, and a check looks up to one per label of its host.
    exact: HashMap<String, Vec<usize>, foldhash::fast::RandomState>,
    /// `.suffix` of a `*.suffix` form → rules with it, ascending.
    wildcard: HashMap<String, Vec<usize>, foldhash::fast::RandomState>,
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
    pub(super) fn build(rules: &[Rule]) -> Option<Self> {
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
    pub(super) fn candidates(&self, host: &str) -> Option<Cow<'_, [usize]>> {
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
            Some((set, owners)) => set
                .matches(host)
                .into_iter()
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
