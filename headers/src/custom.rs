//! The custom profile: operator-chosen header names carrying identity fields or templates.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use http::HeaderName;
use portcullis_core::{AttributeValue, Identity};
use serde::Deserialize;

use crate::error::HeadersError;
use crate::set::{HeaderSet, NameProblem, is_clean, parse_name};

/// Headers named by the operator, each carrying one identity field or a template.
///
/// A value without braces names one field; a value with braces is a template whose `{field}`
/// placeholders are replaced (`{{` and `}}` stand for literal braces):
///
/// | Field | Value |
/// |---|---|
/// | `username` | the canonical username |
/// | `display_name`, `name` | the display name |
/// | `email` | the **first** email |
/// | `emails` | all emails, joined with the separator |
/// | `groups` | the groups, joined with the separator, as is |
/// | `entitlements` | the entitlements, joined with the separator |
/// | `uid` | the stable subject identifier |
/// | `client_id` | the OAuth2 client id of a machine client, else empty |
/// | `level` | the authentication level as a number (`1`, `2`) |
/// | `authenticated_at` | Unix time of the last authentication, else empty |
/// | `attributes.<key>` | user attribute `<key>`: strings as is, integers and booleans formatted, lists joined with the separator, absent empty |
///
/// The separator defaults to `,`. Deserialises from a map of header name to field or template,
/// `{ "X-User": "username", "X-Who": "{username}@{email}" }`, with the default separator.
///
/// Validation ([`CustomProfile::new`]): a name must be a valid HTTP field name without `_`, not a
/// framing header (`Host`, `Content-Length`, hop-by-hop headers) and not repeated (names compare
/// case-insensitively); every field must be known; templates and the separator must not contain
/// control characters; at least one header.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "BTreeMap<String, String>")]
pub struct CustomProfile {
    headers: Vec<CustomHeader>,
    separator: String,
}

/// The list separator when none is configured.
pub(crate) fn default_separator() -> String {
    ",".to_owned()
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct CustomHeader {
    name: HeaderName,
    display: String,
    template: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Field(Field),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Field {
    Username,
    DisplayName,
    Email,
    Emails,
    Groups,
    Entitlements,
    Uid,
    ClientId,
    Level,
    AuthenticatedAt,
    Attribute(String),
}

impl Field {
    fn parse(name: &str) -> Option<Field> {
        Some(match name {
            "username" => Field::Username,
            "display_name" | "name" => Field::DisplayName,
            "email" => Field::Email,
            "emails" => Field::Emails,
            "groups" => Field::Groups,
            "entitlements" => Field::Entitlements,
            "uid" => Field::Uid,
            "client_id" => Field::ClientId,
            "level" => Field::Level,
            "authenticated_at" => Field::AuthenticatedAt,
            _ => {
                let key = name.strip_prefix("attributes.")?;
                if key.is_empty() {
                    return None;
                }
                Field::Attribute(key.to_owned())
            }
        })
    }

    fn render(&self, identity: &Identity, separator: &str, out: &mut String) {
        match self {
            Field::Username => out.push_str(&identity.username),
            Field::DisplayName => out.push_str(&identity.display_name),
            Field::Email => out.push_str(identity.primary_email()),
            Field::Emails => out.push_str(&identity.emails.join(separator)),
            Field::Groups => out.push_str(&identity.groups.join(separator)),
            Field::Entitlements => out.push_str(&identity.entitlements.join(separator)),
            Field::Uid => out.push_str(&identity.uid),
            Field::ClientId => out.push_str(identity.client_id.as_deref().unwrap_or("")),
            Field::Level => {
                let _ = write!(out, "{}", identity.level.as_u8());
            }
            Field::AuthenticatedAt => {
                if let Some(at) = identity.authenticated_at {
                    let _ = write!(out, "{at}");
                }
            }
            Field::Attribute(key) => match identity.attributes.get(key) {
                Some(AttributeValue::String(s)) => out.push_str(s),
                Some(AttributeValue::Integer(i)) => {
                    let _ = write!(out, "{i}");
                }
                Some(AttributeValue::Bool(b)) => {
                    let _ = write!(out, "{b}");
                }
                Some(AttributeValue::List(items)) => out.push_str(&items.join(separator)),
                _ => {}
            },
        }
    }
}

fn parse_template(header: &str, template: &str) -> Result<Vec<Segment>, HeadersError> {
    let malformed = |reason| HeadersError::MalformedTemplate {
        header: header.to_owned(),
        template: template.to_owned(),
        reason,
    };
    let unknown = |field: &str| HeadersError::UnknownField {
        header: header.to_owned(),
        field: field.to_owned(),
    };
    if !is_clean(template) {
        return Err(HeadersError::InvalidValue {
            what: format!("custom header {header:?}"),
        });
    }
    if !template.contains(['{', '}']) {
        return Field::parse(template)
            .map(|field| vec![Segment::Field(field)])
            .ok_or_else(|| unknown(template));
    }
    let mut segments = Vec::new();
    let mut literal = String::new();
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                literal.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                literal.push('}');
            }
            '}' => return Err(malformed("unmatched '}' (write '}}' for a literal brace)")),
            '{' => {
                let mut name = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some('{') => return Err(malformed("'{' inside a placeholder")),
                        Some(c) => name.push(c),
                        None => {
                            return Err(malformed("unclosed '{' (write '{{' for a literal brace)"));
                        }
                    }
                }
                if name.is_empty() {
                    return Err(malformed("empty placeholder '{}'"));
                }
                let field = Field::parse(&name).ok_or_else(|| unknown(&name))?;
                if !literal.is_empty() {
                    segments.push(Segment::Literal(std::mem::take(&mut literal)));
                }
                segments.push(Segment::Field(field));
            }
            c => literal.push(c),
        }
    }
    if !literal.is_empty() {
        segments.push(Segment::Literal(literal));
    }
    Ok(segments)
}

impl CustomProfile {
    /// Build and validate a custom profile from (header name, field or template) pairs and the
    /// list separator. Errors are described on [`CustomProfile`].
    pub fn new<I, K, V>(headers: I, separator: impl Into<String>) -> Result<Self, HeadersError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: AsRef<str>,
    {
        let separator = separator.into();
        if !is_clean(&separator) {
            return Err(HeadersError::InvalidValue {
                what: "custom header separator".into(),
            });
        }
        let mut parsed: Vec<CustomHeader> = Vec::new();
        for (display, template) in headers {
            let display = display.into();
            let name = parse_name(&display).map_err(|problem| match problem {
                NameProblem::Invalid => HeadersError::InvalidName {
                    name: display.clone(),
                },
                NameProblem::Underscore => HeadersError::UnderscoreInName {
                    name: display.clone(),
                },
                NameProblem::Reserved => HeadersError::ReservedName {
                    name: display.clone(),
                },
            })?;
            if parsed.iter().any(|h| h.name == name) {
                return Err(HeadersError::DuplicateName { name: display });
            }
            let template = parse_template(&display, template.as_ref())?;
            parsed.push(CustomHeader {
                name,
                display,
                template,
            });
        }
        if parsed.is_empty() {
            return Err(HeadersError::NoHeaders);
        }
        Ok(Self {
            headers: parsed,
            separator,
        })
    }

    /// The list separator.
    pub fn separator(&self) -> &str {
        &self.separator
    }

    pub(crate) fn header_names(&self) -> impl Iterator<Item = &HeaderName> {
        self.headers.iter().map(|h| &h.name)
    }

    pub(crate) fn display_names(&self) -> impl Iterator<Item = &str> {
        self.headers.iter().map(|h| h.display.as_str())
    }

    pub(crate) fn emit(&self, identity: &Identity, set: &mut HeaderSet) {
        let anonymous = identity.is_anonymous();
        let mut value = String::new();
        for header in &self.headers {
            value.clear();
            if !anonymous {
                for segment in &header.template {
                    match segment {
                        Segment::Literal(text) => value.push_str(text),
                        Segment::Field(field) => {
                            field.render(identity, &self.separator, &mut value)
                        }
                    }
                }
            }
            set.push(header.name.clone(), &value);
        }
    }
}

impl TryFrom<BTreeMap<String, String>> for CustomProfile {
    type Error = HeadersError;

    fn try_from(headers: BTreeMap<String, String>) -> Result<Self, Self::Error> {
        CustomProfile::new(headers, default_separator())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_parse() {
        let cases: &[(&str, Vec<Segment>)] = &[
            ("username", vec![Segment::Field(Field::Username)]),
            ("name", vec![Segment::Field(Field::DisplayName)]),
            (
                "{username} <{email}>",
                vec![
                    Segment::Field(Field::Username),
                    Segment::Literal(" <".into()),
                    Segment::Field(Field::Email),
                    Segment::Literal(">".into()),
                ],
            ),
            (
                "{{{attributes.team}}}",
                vec![
                    Segment::Literal("{".into()),
                    Segment::Field(Field::Attribute("team".into())),
                    Segment::Literal("}".into()),
                ],
            ),
            ("{{literal}}", vec![Segment::Literal("{literal}".into())]),
        ];
        for (template, expected) in cases {
            assert_eq!(
                &parse_template("X", template).unwrap(),
                expected,
                "{template}"
            );
        }
    }

    #[test]
    fn bad_templates_are_refused() {
        for template in [
            "{username",
            "username}",
            "{}",
            "{a{b}}",
            "{nope}",
            "nope",
            "attributes.",
        ] {
            assert!(parse_template("X", template).is_err(), "{template}");
        }
    }
}
