//! Who is making the request: the authentication level and the identity the upstream learns about.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How strongly the requester is authenticated (Authelia's levels 0, 1 and 2).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[non_exhaustive]
pub enum AuthLevel {
    /// Anonymous.
    #[default]
    None,
    /// One factor: a knowledge factor (password) or a possession factor.
    OneFactor,
    /// Two factors: knowledge and possession.
    TwoFactor,
}

impl AuthLevel {
    /// The numeric value Authelia's `/api/state` reports (0, 1, 2).
    pub fn as_u8(self) -> u8 {
        match self {
            AuthLevel::None => 0,
            AuthLevel::OneFactor => 1,
            AuthLevel::TwoFactor => 2,
        }
    }

    /// The inverse of [`AuthLevel::as_u8`]; values above 2 are not a level.
    pub fn from_u8(value: u8) -> Option<Self> {
        match value {
            0 => Some(AuthLevel::None),
            1 => Some(AuthLevel::OneFactor),
            2 => Some(AuthLevel::TwoFactor),
            _ => None,
        }
    }
}

/// A user or group attribute value, as carried by an identity provider's claims or a users file.
///
/// Only strings and integers are ever rendered into headers; booleans and lists are kept so the
/// header code can tell "present but not renderable" from "absent".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum AttributeValue {
    /// A string value.
    String(String),
    /// An integral number.
    Integer(i64),
    /// A boolean.
    Bool(bool),
    /// A list of strings.
    List(Vec<String>),
}

/// Attributes keyed by name.
pub type Attributes = BTreeMap<String, AttributeValue>;

/// Who the request comes from. `Identity::anonymous()` is the identity of a request with no credential.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Identity {
    /// Canonical username; empty when there is none (anonymous, or a machine client).
    pub username: String,
    /// Display name; may be empty.
    pub display_name: String,
    /// Email addresses, primary first.
    pub emails: Vec<String>,
    /// Group names, case preserved.
    pub groups: Vec<String>,
    /// authentik entitlements (empty for Authelia-style identities).
    pub entitlements: Vec<String>,
    /// Stable subject identifier (`sub`); empty when unknown.
    pub uid: String,
    /// OAuth2 client id when the requester is a machine client (`oauth2:client:<id>` subjects).
    pub client_id: Option<String>,
    /// Authentication level reached.
    pub level: AuthLevel,
    /// Unix time (seconds) of the last successful authentication, when known.
    pub authenticated_at: Option<u64>,
    /// User attributes (authentik `ak_proxy.user_attributes`).
    pub attributes: Attributes,
    /// Attributes of each group the user belongs to, keyed by group name.
    pub group_attributes: BTreeMap<String, Attributes>,
}

impl Identity {
    /// The identity of a request with no (valid) credential.
    pub fn anonymous() -> Self {
        Self::default()
    }

    /// A user identity at the given level with no other details.
    pub fn user(username: impl Into<String>, level: AuthLevel) -> Self {
        Self {
            username: username.into(),
            level,
            ..Self::default()
        }
    }

    /// Builder-style: set the groups.
    #[must_use]
    pub fn with_groups<I, S>(mut self, groups: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.groups = groups.into_iter().map(Into::into).collect();
        self
    }

    /// Builder-style: set the emails.
    #[must_use]
    pub fn with_emails<I, S>(mut self, emails: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.emails = emails.into_iter().map(Into::into).collect();
        self
    }

    /// Builder-style: set the display name.
    #[must_use]
    pub fn with_display_name(mut self, name: impl Into<String>) -> Self {
        self.display_name = name.into();
        self
    }

    /// True when nobody authenticated: level none and no machine client.
    pub fn is_anonymous(&self) -> bool {
        self.level == AuthLevel::None
    }

    /// The first email, or `""`.
    pub fn primary_email(&self) -> &str {
        self.emails.first().map(String::as_str).unwrap_or("")
    }

    /// Case-sensitive group membership (Authelia `group:` subjects).
    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_order_and_round_trip() {
        assert!(AuthLevel::None < AuthLevel::OneFactor);
        assert!(AuthLevel::OneFactor < AuthLevel::TwoFactor);
        for level in [AuthLevel::None, AuthLevel::OneFactor, AuthLevel::TwoFactor] {
            assert_eq!(AuthLevel::from_u8(level.as_u8()), Some(level));
        }
        assert_eq!(AuthLevel::from_u8(3), None);
    }

    #[test]
    fn anonymous_has_no_name_and_no_level() {
        let anon = Identity::anonymous();
        assert!(anon.is_anonymous());
        assert_eq!(anon.primary_email(), "");
        let alice = Identity::user("alice", AuthLevel::OneFactor).with_groups(["Admins"]);
        assert!(!alice.is_anonymous());
        assert!(alice.in_group("Admins"));
        assert!(
            !alice.in_group("admins"),
            "group membership is case-sensitive"
        );
    }
}
