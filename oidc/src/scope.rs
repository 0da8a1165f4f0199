//! Scopes: a space-separated set (RFC 6749 §3.3), kept in request order without duplicates.

use serde::{Deserialize, Serialize};

/// A set of scopes in the order first seen.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Scopes(Vec<String>);

impl Scopes {
    /// Parse a `scope` parameter. Empty tokens (double spaces) are skipped, duplicates dropped.
    /// `None` when a scope contains a character RFC 6749 §3.3 excludes (controls, `"`, `\`).
    pub fn parse(value: &str) -> Option<Self> {
        let mut scopes = Vec::new();
        for token in value.split(' ').filter(|t| !t.is_empty()) {
            if !token
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
            {
                return None;
            }
            if !scopes.iter().any(|s: &String| s == token) {
                scopes.push(token.to_owned());
            }
        }
        Some(Self(scopes))
    }

    /// Build from a list.
    pub fn from_list<I: IntoIterator<Item = S>, S: Into<String>>(items: I) -> Self {
        let mut scopes: Vec<String> = Vec::new();
        for item in items {
            let item = item.into();
            if !scopes.contains(&item) {
                scopes.push(item);
            }
        }
        Self(scopes)
    }

    /// Whether the set holds `scope`.
    pub fn contains(&self, scope: &str) -> bool {
        self.0.iter().any(|s| s == scope)
    }

    /// Whether every scope of `self` is in `other`.
    pub fn is_subset_of(&self, other: &Scopes) -> bool {
        self.0.iter().all(|s| other.contains(s))
    }

    /// The first scope of `self` not in `allowed`.
    pub fn first_outside(&self, allowed: &Scopes) -> Option<&str> {
        self.0
            .iter()
            .find(|s| !allowed.contains(s))
            .map(String::as_str)
    }

    /// The scopes without `scope`.
    pub fn without(&self, scope: &str) -> Self {
        Self(self.0.iter().filter(|s| *s != scope).cloned().collect())
    }

    /// Iterate.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// No scopes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The space-separated form.
    pub fn to_param(&self) -> String {
        self.0.join(" ")
    }

    /// Whether a refresh token may be issued: `offline_access` or Authelia's `offline`.
    pub fn wants_offline(&self) -> bool {
        self.contains("offline_access") || self.contains("offline")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dedupes_and_refuses_bad_characters() {
        let s = Scopes::parse("openid  profile openid").unwrap();
        assert_eq!(s.to_param(), "openid profile");
        assert!(Scopes::parse("open\"id").is_none());
        assert!(Scopes::parse("a\\b").is_none());
        assert!(Scopes::parse("a\tb").is_none());
        assert!(Scopes::parse("").unwrap().is_empty());
    }

    #[test]
    fn subsets() {
        let allowed = Scopes::parse("openid profile email").unwrap();
        assert!(
            Scopes::parse("openid email")
                .unwrap()
                .is_subset_of(&allowed)
        );
        assert_eq!(
            Scopes::parse("openid groups")
                .unwrap()
                .first_outside(&allowed),
            Some("groups")
        );
        assert!(Scopes::parse("offline").unwrap().wants_offline());
    }
}
