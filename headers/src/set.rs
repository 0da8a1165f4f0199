//! The result of an emission: header names and checked values, plus what was refused.

use http::{HeaderMap, HeaderName, HeaderValue};

/// Headers to set, in order, with the problems met while building them.
///
/// Every value is a valid [`HeaderValue`] without control characters: a value that would have held
/// one is replaced by an empty value and listed in [`HeaderSet::rejected`]. Secret values (the
/// authentik JWT, an upstream `Authorization`) are marked [sensitive](HeaderValue::set_sensitive), so
/// `Debug` prints `Sensitive` instead of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderSet {
    entries: Vec<(HeaderName, HeaderValue)>,
    rejected: Vec<Rejection>,
}

/// A header value or name that was not emitted as given. Meant for the caller's log; it never
/// contains the offending value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The header name as it was given (lower-case for profile headers, as written for
    /// `additionalHeaders`).
    pub name: String,
    /// What happened to it.
    pub reason: RejectionReason,
}

/// Why a header was emitted empty or skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RejectionReason {
    /// The value held CR, LF, NUL or another control character, or was otherwise not a valid
    /// header value; the header was emitted with an **empty** value
    /// (docs/reference/security.md R3.4).
    InvalidValue,
    /// The name is not a valid HTTP field name; the header was skipped.
    InvalidName,
    /// The name contains `_`; the header was skipped (docs/reference/security.md R3.3).
    UnderscoreInName,
    /// The name belongs to HTTP framing or routing (`Host`, `Content-Length`, hop-by-hop headers);
    /// the header was skipped.
    ReservedName,
}

impl HeaderSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a header whose value comes from outside (a claim, an attribute). A value holding a
    /// control character, or that [`HeaderValue`] refuses, becomes an empty value and is recorded
    /// in [`HeaderSet::rejected`].
    pub fn push(&mut self, name: HeaderName, value: &str) {
        self.push_value(name, value, false);
    }

    /// Like [`HeaderSet::push`], for secret values: the value is marked sensitive.
    pub fn push_sensitive(&mut self, name: HeaderName, value: &str) {
        self.push_value(name, value, true);
    }

    fn push_value(&mut self, name: HeaderName, value: &str, sensitive: bool) {
        let value = match checked_value(value) {
            Some(mut v) => {
                v.set_sensitive(sensitive);
                v
            }
            None => {
                self.rejected.push(Rejection {
                    name: name.as_str().to_owned(),
                    reason: RejectionReason::InvalidValue,
                });
                HeaderValue::from_static("")
            }
        };
        self.entries.push((name, value));
    }

    pub(crate) fn reject(&mut self, name: &str, reason: RejectionReason) {
        self.rejected.push(Rejection {
            name: name.to_owned(),
            reason,
        });
    }

    /// Append `other` after this set: its headers are applied later, so they override same-named
    /// headers of this set (`additionalHeaders` after the profile headers,
    /// docs/reference/outpost.md §6.2).
    pub fn extend(&mut self, other: HeaderSet) {
        self.entries.extend(other.entries);
        self.rejected.extend(other.rejected);
    }

    /// The headers in application order. A name may appear more than once; the last one wins.
    pub fn iter(&self) -> impl Iterator<Item = (&HeaderName, &HeaderValue)> {
        self.entries.iter().map(|(n, v)| (n, v))
    }

    /// The value that [`HeaderSet::apply_to`] leaves for `name` (compared case-insensitively), if
    /// the set has that header.
    pub fn get(&self, name: &str) -> Option<&HeaderValue> {
        self.entries
            .iter()
            .rev()
            .find(|(n, _)| n.as_str().eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// Number of entries (counting a name once per entry).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there is no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// What was emitted empty or skipped, for the caller to log.
    pub fn rejected(&self) -> &[Rejection] {
        &self.rejected
    }

    /// Set every header on `map` in order, each **replacing** all values already there under that
    /// name (client-sent copies included).
    pub fn apply_to(&self, map: &mut HeaderMap) {
        for (name, value) in &self.entries {
            map.insert(name.clone(), value.clone());
        }
    }
}

/// The headers by value, in order (moving them into a response costs no copy of the values, where
/// [`HeaderSet::apply_to`] clones them).
impl IntoIterator for HeaderSet {
    type Item = (HeaderName, HeaderValue);
    type IntoIter = std::vec::IntoIter<(HeaderName, HeaderValue)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl<'a> IntoIterator for &'a HeaderSet {
    type Item = (&'a HeaderName, &'a HeaderValue);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (HeaderName, HeaderValue)>,
        fn(&'a (HeaderName, HeaderValue)) -> (&'a HeaderName, &'a HeaderValue),
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter().map(|(n, v)| (n, v))
    }
}

/// True when `value` may be emitted: no control character (C0, DEL or C1; tab included).
pub(crate) fn is_clean(value: &str) -> bool {
    // ASCII (nearly every identity value) is checked byte by byte without decoding characters:
    // every allowed check runs this on each value it emits.
    if value.is_ascii() {
        !value.bytes().any(|byte| byte < 0x20 || byte == 0x7f)
    } else {
        !value.chars().any(char::is_control)
    }
}

/// `value` as a header value when it is clean. Non-ASCII UTF-8 is kept as opaque bytes
/// (`obs-text`), which [`HeaderValue::from_bytes`] accepts.
pub(crate) fn checked_value(value: &str) -> Option<HeaderValue> {
    if !is_clean(value) {
        return None;
    }
    HeaderValue::from_bytes(value.as_bytes()).ok()
}

/// The Go canonical form of a header name (`X-Authentik-Username`): the first letter and every
/// letter after a `-` upper-case, the rest lower-case. This is how the authentik outpost writes
/// names on the wire; HTTP receivers compare names case-insensitively.
pub fn canonical_name(name: &HeaderName) -> String {
    let mut out = String::with_capacity(name.as_str().len());
    let mut upper = true;
    for c in name.as_str().chars() {
        if upper {
            out.push(c.to_ascii_uppercase());
        } else {
            out.push(c.to_ascii_lowercase());
        }
        upper = c == '-';
    }
    out
}

/// Names that belong to HTTP framing, routing or the connection. Identity never travels in them,
/// so a configured or attribute-supplied header with one of these names is refused.
const RESERVED: &[&str] = &[
    "connection",
    "content-length",
    "host",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

pub(crate) fn is_reserved(name: &HeaderName) -> bool {
    RESERVED.contains(&name.as_str())
}

/// Why a header name supplied from configuration or attributes cannot be used.
pub(crate) enum NameProblem {
    Invalid,
    Underscore,
    Reserved,
}

/// Parse a configured or attribute-supplied header name: a valid token, no `_`, not reserved.
pub(crate) fn parse_name(name: &str) -> Result<HeaderName, NameProblem> {
    let parsed = HeaderName::from_bytes(name.as_bytes()).map_err(|_| NameProblem::Invalid)?;
    if name.contains('_') {
        return Err(NameProblem::Underscore);
    }
    if is_reserved(&parsed) {
        return Err(NameProblem::Reserved);
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn clean_values_have_no_c0_del_or_c1_control() {
        for clean in [
            "",
            "alice",
            "Zoë Ünïcødé",
            "a b",
            "\u{a0}\u{c2}x",
            "😀",
            "\u{7e}",
        ] {
            assert!(is_clean(clean), "{clean:?}");
        }
        for dirty in [
            "a\tb",
            "a\r\nb",
            "\0",
            "x\u{7f}",
            "\u{80}",
            "é\u{9f}",
            "\u{1b}[0m",
        ] {
            assert!(!is_clean(dirty), "{dirty:?}");
        }
    }

    proptest! {
        /// The byte scan says what `char::is_control` says, for any string.
        #[test]
        fn the_byte_scan_agrees_with_char_is_control(value in any::<String>()) {
            prop_assert_eq!(is_clean(&value), !value.chars().any(char::is_control));
        }

        #[test]
        fn the_byte_scan_agrees_near_c1(value in "[a\u{7f}-\u{a1}\u{c2}\u{100}-\u{101}\u{1f}]{0,8}") {
            prop_assert_eq!(is_clean(&value), !value.chars().any(char::is_control));
        }
    }

    #[test]
    fn canonical_form_is_go_style() {
        let cases = [
            ("x-authentik-username", "X-Authentik-Username"),
            ("remote-user", "Remote-User"),
            ("x-authentik-meta-jwks", "X-Authentik-Meta-Jwks"),
            ("te", "Te"),
        ];
        for (wire, canonical) in cases {
            assert_eq!(canonical_name(&HeaderName::from_static(wire)), canonical);
        }
    }

    #[test]
    fn control_characters_are_refused() {
        for bad in [
            "a\rb", "a\nb", "a\0b", "a\tb", "\x7f", "a\u{85}b", "\x1b[0m",
        ] {
            assert!(checked_value(bad).is_none(), "{bad:?}");
        }
        for good in ["", "alice", "Zoë Ünicode", "a b", "日本"] {
            let v = checked_value(good).unwrap();
            assert_eq!(v.as_bytes(), good.as_bytes());
        }
    }

    #[test]
    fn later_entries_win() {
        let mut set = HeaderSet::new();
        set.push(HeaderName::from_static("x-a"), "1");
        set.push(HeaderName::from_static("x-a"), "2");
        assert_eq!(set.get("X-A").unwrap(), "2");
        let mut map = HeaderMap::new();
        map.append("x-a", HeaderValue::from_static("client"));
        map.append("x-a", HeaderValue::from_static("client2"));
        set.apply_to(&mut map);
        assert_eq!(map.get_all("x-a").iter().collect::<Vec<_>>(), ["2"]);
    }

    #[test]
    fn sensitive_values_are_not_debug_printed() {
        let mut set = HeaderSet::new();
        set.push_sensitive(HeaderName::from_static("x-authentik-jwt"), "eyJ.secret.sig");
        assert!(!format!("{set:?}").contains("secret"));
    }
}
