//! `additionalHeaders` from user and group attributes (docs/reference/outpost.md §6.2).

use std::collections::BTreeMap;

use portcullis_core::{AttributeValue, Attributes};

use crate::set::{HeaderSet, NameProblem, RejectionReason, parse_name};

/// The headers of an `additionalHeaders` attribute map, user entries over group entries.
///
/// `user` is the user's `additionalHeaders` map and `groups` those of the user's groups in merge
/// order (authentik merges groups ordered by name, as `Identity::group_attributes` iterates); a
/// later group overrides an earlier one and the user overrides every group. Names are compared
/// case-insensitively for this merge.
///
/// - String values pass through; integers are formatted in decimal. Every other type (booleans,
///   lists; non-integral numbers never reach [`AttributeValue`]) becomes an **empty** value, like
///   the reference (docs/reference/outpost.md §6.2 quirk).
/// - Names are canonicalised (lower-case here; [`canonical_name`](crate::canonical_name) gives the
///   Go form). A name that is not a valid HTTP field name, contains `_`, or names a framing header
///   (`Host`, `Content-Length`, hop-by-hop headers) is skipped and reported.
/// - A value with a control character is emitted empty and reported.
///
/// The result is meant to be appended after the profile headers ([`HeaderSet::extend`]), so its
/// entries override same-named profile headers when applied.
pub fn additional_headers(user: &Attributes, groups: &[&Attributes]) -> HeaderSet {
    let mut merged: BTreeMap<String, (&str, &AttributeValue)> = BTreeMap::new();
    for map in groups.iter().copied().chain(std::iter::once(user)) {
        for (name, value) in map {
            merged.insert(name.to_ascii_lowercase(), (name.as_str(), value));
        }
    }
    let mut set = HeaderSet::new();
    for (name, value) in merged.into_values() {
        let header = match parse_name(name) {
            Ok(header) => header,
            Err(problem) => {
                let reason = match problem {
                    NameProblem::Invalid => RejectionReason::InvalidName,
                    NameProblem::Underscore => RejectionReason::UnderscoreInName,
                    NameProblem::Reserved => RejectionReason::ReservedName,
                };
                set.reject(name, reason);
                continue;
            }
        };
        match value {
            AttributeValue::String(s) => set.push(header, s),
            AttributeValue::Integer(i) => set.push(header, &i.to_string()),
            _ => set.push(header, ""),
        }
    }
    set
}
