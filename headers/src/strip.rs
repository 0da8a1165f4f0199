//! Removing client-sent copies of the headers Portcullis emits.

use std::collections::BTreeSet;

use http::{HeaderMap, HeaderName};

use crate::profile::{Profile, names};

/// The inbound header names to delete before a request is forwarded
/// (docs/reference/outpost.md §14 item 2, docs/reference/security.md R3.2).
///
/// Names are compared after normalisation: ASCII lower-case, `_` read as `-`. So a list holding
/// `Remote-User` also matches `remote-user`, `REMOTE-USER` and `Remote_User`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StripList {
    normalised: BTreeSet<String>,
}

/// The strip list for `profile`: every name it can emit plus `additional` (the `additionalHeaders`
/// names). Add `Authorization` with [`StripList::with_authorization`] when upstream Basic injection
/// is on.
pub fn strip_names(profile: &Profile, additional: &[String]) -> StripList {
    let mut list = StripList::default();
    for name in profile.header_names() {
        list.insert(name.as_str());
    }
    for name in additional {
        list.insert(name);
    }
    list
}

fn normalise(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            '_' => '-',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

impl StripList {
    /// Also strip `Authorization` (upstream Basic injection on, docs/reference/outpost.md §6.2).
    #[must_use]
    pub fn with_authorization(mut self) -> Self {
        self.insert(names::AUTHORIZATION);
        self
    }

    /// Add a name to strip.
    pub fn insert(&mut self, name: &str) {
        self.normalised.insert(normalise(name));
    }

    /// True when an inbound header called `name` must be deleted: its name, lower-cased with `_`
    /// read as `-`, equals one on the list.
    pub fn should_strip(&self, name: &str) -> bool {
        self.normalised.contains(&normalise(name))
    }

    /// Delete from `headers` every header the list matches, in any case or underscore variant,
    /// with all its values. Returns how many distinct names were removed.
    pub fn strip(&self, headers: &mut HeaderMap) -> usize {
        remove_where(headers, |name| self.should_strip(name.as_str()))
    }
}

/// Delete every header whose name contains `_` (docs/reference/outpost.md §6.3; CGI/WSGI back ends
/// read `X_authentik_username` as `X-authentik-username`). Returns how many distinct names were
/// removed.
pub fn strip_underscore_headers(headers: &mut HeaderMap) -> usize {
    remove_where(headers, |name| name.as_str().contains('_'))
}

fn remove_where(headers: &mut HeaderMap, matches: impl Fn(&HeaderName) -> bool) -> usize {
    let doomed: Vec<HeaderName> = headers.keys().filter(|n| matches(n)).cloned().collect();
    for name in &doomed {
        headers.remove(name);
    }
    doomed.len()
}
