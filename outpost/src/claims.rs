//! What a login leaves behind: the claims the outpost reads from the provider's token
//! (docs/reference/outpost.md §4.2 item 4), the tokens, and the identity they make.

use portcullis_core::{AttributeValue, Attributes, AuthLevel, Identity};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `ak_proxy`: what authentik's proxy scope adds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AkProxy {
    /// The user's attributes (`additionalHeaders`, Basic credentials …).
    #[serde(default)]
    pub user_attributes: Map<String, Value>,
    /// Replaces the scheme and authority of `internal_host` for this user.
    #[serde(default)]
    pub backend_override: Option<String>,
    /// Replaces the `Host` sent upstream.
    #[serde(default)]
    pub host_header: Option<String>,
    /// Superusers see the real upstream error on the 502 page.
    #[serde(default)]
    pub is_superuser: bool,
}

/// The claims kept in a session.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    /// `sub`.
    pub sub: String,
    /// `exp`.
    #[serde(default)]
    pub exp: u64,
    /// `email`.
    #[serde(default)]
    pub email: String,
    /// `email_verified`.
    #[serde(default)]
    pub email_verified: bool,
    /// `name`.
    #[serde(default)]
    pub name: String,
    /// `preferred_username`.
    #[serde(default)]
    pub preferred_username: String,
    /// `groups`.
    #[serde(default)]
    pub groups: Vec<String>,
    /// `entitlements`.
    #[serde(default)]
    pub entitlements: Vec<String>,
    /// `sid`: the provider's session, for back-channel logout.
    #[serde(default)]
    pub sid: Option<String>,
    /// `amr`: how the user authenticated.
    #[serde(default)]
    pub amr: Vec<String>,
    /// `ak_proxy`.
    #[serde(default)]
    pub ak_proxy: Option<AkProxy>,
}

fn string(map: &Map<String, Value>, name: &str) -> String {
    map.get(name)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn strings(map: &Map<String, Value>, name: &str) -> Vec<String> {
    match map.get(name) {
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(Value::String(one)) => vec![one.clone()],
        _ => Vec::new(),
    }
}

impl Claims {
    /// Read the claims from a verified token's (or UserInfo's) claim set. `sub` is required.
    pub fn from_map(map: &Map<String, Value>) -> Option<Self> {
        let sub = string(map, "sub");
        if sub.is_empty() {
            return None;
        }
        let ak_proxy = map
            .get("ak_proxy")
            .filter(|v| v.is_object())
            .and_then(|v| serde_json::from_value::<AkProxy>(v.clone()).ok());
        Some(Self {
            sub,
            exp: map.get("exp").and_then(Value::as_u64).unwrap_or(0),
            email: string(map, "email"),
            email_verified: map
                .get("email_verified")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            name: string(map, "name"),
            preferred_username: string(map, "preferred_username"),
            groups: strings(map, "groups"),
            entitlements: strings(map, "entitlements"),
            sid: map
                .get("sid")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .filter(|s| !s.is_empty()),
            amr: strings(map, "amr"),
            ak_proxy,
        })
    }

    /// Fill what the token lacks from UserInfo (same `sub` only; the caller checks that).
    pub fn complete_from(&mut self, userinfo: &Map<String, Value>) {
        let fill = |field: &mut String, name: &str| {
            if field.is_empty() {
                *field = string(userinfo, name);
            }
        };
        fill(&mut self.email, "email");
        fill(&mut self.name, "name");
        fill(&mut self.preferred_username, "preferred_username");
        if self.groups.is_empty() {
            self.groups = strings(userinfo, "groups");
        }
        if self.entitlements.is_empty() {
            self.entitlements = strings(userinfo, "entitlements");
        }
        if !self.email_verified {
            self.email_verified = userinfo
                .get("email_verified")
                .and_then(Value::as_bool)
                .unwrap_or(false);
        }
        if self.ak_proxy.is_none() {
            self.ak_proxy = userinfo
                .get("ak_proxy")
                .filter(|v| v.is_object())
                .and_then(|v| serde_json::from_value(v.clone()).ok());
        }
    }

    /// The identity these claims make: `preferred_username`, `name`, `email`, `groups`,
    /// `entitlements`, `sub` as uid, and `ak_proxy.user_attributes` as attributes. A login that
    /// shows a second factor in `amr` is two-factor.
    pub fn identity(&self, client_id: &str) -> Identity {
        let second = ["mfa", "otp", "hwk", "swk", "sms", "webauthn", "fido"];
        let level = if self.amr.iter().any(|m| second.contains(&m.as_str())) {
            AuthLevel::TwoFactor
        } else {
            AuthLevel::OneFactor
        };
        let mut identity = Identity::user(self.preferred_username.clone(), level)
            .with_groups(self.groups.iter().cloned())
            .with_display_name(self.name.clone());
        if !self.email.is_empty() {
            identity = identity.with_emails([self.email.clone()]);
        }
        identity.entitlements.clone_from(&self.entitlements);
        identity.uid.clone_from(&self.sub);
        identity.client_id = Some(client_id.to_owned());
        if let Some(ak) = &self.ak_proxy {
            identity.attributes = attributes(&ak.user_attributes);
        }
        identity
    }

    /// `ak_proxy.user_attributes.additionalHeaders`, as attributes.
    pub fn additional_headers(&self) -> Attributes {
        self.ak_proxy
            .as_ref()
            .and_then(|ak| ak.user_attributes.get("additionalHeaders"))
            .and_then(Value::as_object)
            .map(attributes)
            .unwrap_or_default()
    }
}

/// JSON attributes as header-renderable values: strings, integral numbers (JSON numbers that are
/// whole, rendered as integers), booleans, lists of strings. Other values are kept as empty
/// strings, so a header named by them is emitted empty (docs/reference/outpost.md §6.2).
fn attributes(map: &Map<String, Value>) -> Attributes {
    map.iter()
        .map(|(k, v)| {
            let value = match v {
                Value::String(s) => AttributeValue::String(s.clone()),
                Value::Number(n) => match n.as_i64().or_else(|| {
                    n.as_f64()
                        .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                        .map(|f| f as i64)
                }) {
                    Some(i) => AttributeValue::Integer(i),
                    None => AttributeValue::String(String::new()),
                },
                Value::Bool(b) => AttributeValue::Bool(*b),
                Value::Array(list) => AttributeValue::List(
                    list.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect(),
                ),
                _ => AttributeValue::String(String::new()),
            };
            (k.clone(), value)
        })
        .collect()
}

/// What a session stores (as JSON, opaque to the store).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionData {
    /// The claims.
    pub claims: Claims,
    /// The raw token: `X-authentik-jwt`.
    pub raw_token: String,
    /// The ID token, for `id_token_hint` at sign-out.
    #[serde(default)]
    pub id_token: Option<String>,
    /// The refresh token, when the provider gave one.
    #[serde(default)]
    pub refresh_token: Option<String>,
    /// When the session was made (unix seconds).
    #[serde(default)]
    pub created_at: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn claims_make_the_identity_of_the_headers() {
        let map = json!({
            "sub": "u-1", "exp": 100, "email": "a@example.com", "email_verified": true,
            "name": "Alice", "preferred_username": "alice", "groups": ["admins", "dev"],
            "entitlements": "read", "sid": "s-1", "amr": ["pwd", "otp"],
            "ak_proxy": {"user_attributes": {"additionalHeaders": {"X-Team": "blue", "X-Level": 3.0, "X-Ratio": 0.5, "X-Flag": true}, "pw": "p"}, "backend_override": "http://10.0.0.1:81", "host_header": "internal.example", "is_superuser": true}
        });
        let claims = Claims::from_map(map.as_object().unwrap()).unwrap();
        assert_eq!(claims.entitlements, ["read"]);
        assert_eq!(claims.sid.as_deref(), Some("s-1"));
        let ak = claims.ak_proxy.as_ref().unwrap();
        assert!(ak.is_superuser);
        assert_eq!(ak.host_header.as_deref(), Some("internal.example"));
        let id = claims.identity("app");
        assert_eq!((id.username.as_str(), id.uid.as_str()), ("alice", "u-1"));
        assert_eq!(id.level, AuthLevel::TwoFactor);
        assert_eq!(id.primary_email(), "a@example.com");
        assert_eq!(
            id.attributes.get("pw"),
            Some(&AttributeValue::String("p".into()))
        );
        let extra = claims.additional_headers();
        assert_eq!(extra.get("X-Level"), Some(&AttributeValue::Integer(3)));
        assert_eq!(
            extra.get("X-Ratio"),
            Some(&AttributeValue::String(String::new()))
        );
        assert_eq!(extra.get("X-Flag"), Some(&AttributeValue::Bool(true)));
        assert!(
            Claims::from_map(json!({"email": "x"}).as_object().unwrap()).is_none(),
            "sub is required"
        );
        let one =
            Claims::from_map(json!({"sub": "x", "amr": ["pwd"]}).as_object().unwrap()).unwrap();
        assert_eq!(one.identity("app").level, AuthLevel::OneFactor);
    }
}
