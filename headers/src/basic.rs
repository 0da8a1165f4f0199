//! Upstream HTTP Basic credentials from user attributes (docs/reference/outpost.md §6.2).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::HeaderValue;
use portcullis_core::{AttributeValue, Identity};

use crate::set::is_clean;

/// The `Authorization: Basic …` value to send upstream, when the identity carries a password.
///
/// - The password is `identity.attributes[password_attribute]`; it must be a **non-empty string**.
/// - The user is `identity.attributes[user_attribute]` when that is a string, otherwise the
///   primary email.
/// - The value is `Basic ` + standard base64 (with padding) of `user:password`.
///
/// `None` when the identity is anonymous, when the password is missing, empty or not a string,
/// when the user or password holds a control character, or when the user contains `:` (RFC 7617
/// forbids it: the upstream would split the credential in the wrong place). The value is marked
/// [sensitive](HeaderValue::set_sensitive), so `Debug` never prints it.
pub fn basic_upstream(
    identity: &Identity,
    user_attribute: &str,
    password_attribute: &str,
) -> Option<HeaderValue> {
    if identity.is_anonymous() {
        return None;
    }
    let password = match identity.attributes.get(password_attribute) {
        Some(AttributeValue::String(p)) if !p.is_empty() => p.as_str(),
        _ => return None,
    };
    let user = match identity.attributes.get(user_attribute) {
        Some(AttributeValue::String(u)) => u.as_str(),
        _ => identity.primary_email(),
    };
    if !is_clean(user) || !is_clean(password) || user.contains(':') {
        return None;
    }
    let mut credential = String::with_capacity(user.len() + 1 + password.len());
    credential.push_str(user);
    credential.push(':');
    credential.push_str(password);
    let mut value = HeaderValue::try_from(format!("Basic {}", STANDARD.encode(credential))).ok()?;
    value.set_sensitive(true);
    Some(value)
}
