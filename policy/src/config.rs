//! The `access_control` section of an Authelia configuration, as serde reads it.
//!
//! These are raw types: they hold what the file says, with Authelia's shorthands already expanded into
//! lists. [`Policy::compile`](crate::Policy::compile) validates them.

use serde::{Deserialize, Deserializer, Serialize};

/// Authelia's `access_control` section.
///
/// ```
/// # use portcullis_policy::AccessControlConfig;
/// let yaml = r#"{"default_policy": "deny", "rules": [{"domain": "*.example.com", "policy": "one_factor"}]}"#;
/// let config: AccessControlConfig = serde_json::from_str(yaml).unwrap();
/// assert_eq!(config.rules[0].domain, ["*.example.com"]);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessControlConfig {
    /// `bypass`, `one_factor`, `two_factor` or `deny`; absent means `deny`.
    #[serde(default)]
    pub default_policy: Option<String>,
    /// The legacy named-network form (`access_control.networks`); `definitions.network` is the current
    /// one.
    #[serde(default, deserialize_with = "nullable")]
    pub networks: Vec<NetworkDefinition>,
    /// The rules, in evaluation order.
    #[serde(default, deserialize_with = "nullable")]
    pub rules: Vec<RuleConfig>,
}

/// One legacy named network: `{name, networks}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkDefinition {
    /// The name rules refer to.
    pub name: String,
    /// Its addresses and CIDRs (a single string is accepted).
    #[serde(default, deserialize_with = "one_or_many")]
    pub networks: Vec<String>,
}

/// One access rule as written. Single strings are accepted wherever a list is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Domain forms: exact, `*.suffix`, `{user}.suffix`, `{group}.suffix`.
    #[serde(default, deserialize_with = "one_or_many")]
    pub domain: Vec<String>,
    /// RE2 patterns on the host (ORed with `domain`).
    #[serde(default, deserialize_with = "one_or_many")]
    pub domain_regex: Vec<String>,
    /// `bypass`, `one_factor`, `two_factor` or `deny`.
    pub policy: String,
    /// OR of AND groups of `user:`, `group:` and `oauth2:client:` subjects. A single string is one
    /// group of one; a list entry that is a string is a group of one; a list entry that is a list is
    /// an AND group.
    #[serde(default, deserialize_with = "subjects")]
    pub subject: Vec<Vec<String>>,
    /// Addresses, CIDRs or network names.
    #[serde(default, deserialize_with = "one_or_many")]
    pub networks: Vec<String>,
    /// RE2 patterns on the canonical path string.
    #[serde(default, deserialize_with = "one_or_many")]
    pub resources: Vec<String>,
    /// Upper-case HTTP methods.
    #[serde(default, deserialize_with = "one_or_many")]
    pub methods: Vec<String>,
    /// OR of AND groups of query items. A flat list of items is one AND group.
    #[serde(default, deserialize_with = "query_groups")]
    pub query: Vec<Vec<QueryItemConfig>>,
}

/// One `query` item: `{key, operator?, value?}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryItemConfig {
    /// The query parameter name (decoded).
    pub key: String,
    /// `present`, `absent`, `equal`, `not equal`, `pattern`, `not pattern`; absent means `equal` when a
    /// value is given and `present` otherwise.
    #[serde(default)]
    pub operator: Option<String>,
    /// The value or pattern. Numbers and booleans are accepted and read as their text.
    #[serde(default, deserialize_with = "scalar")]
    pub value: Option<String>,
}

fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[derive(Deserialize)]
#[serde(untagged, expecting = "a string or a list of strings")]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(match Option::<OneOrMany>::deserialize(d)? {
        None => Vec::new(),
        Some(OneOrMany::One(s)) => vec![s],
        Some(OneOrMany::Many(v)) => v,
    })
}

#[derive(Deserialize)]
#[serde(untagged, expecting = "a subject string or a list of subject strings")]
enum SubjectEntry {
    One(String),
    All(Vec<String>),
}

#[derive(Deserialize)]
#[serde(
    untagged,
    expecting = "a subject string, a list of subjects, or a list of lists of subjects"
)]
enum Subjects {
    One(String),
    Many(Vec<SubjectEntry>),
}

fn subjects<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<String>>, D::Error> {
    Ok(match Option::<Subjects>::deserialize(d)? {
        None => Vec::new(),
        Some(Subjects::One(s)) => vec![vec![s]],
        Some(Subjects::Many(entries)) => entries
            .into_iter()
            .map(|entry| match entry {
                SubjectEntry::One(s) => vec![s],
                SubjectEntry::All(all) => all,
            })
            .collect(),
    })
}

#[derive(Deserialize)]
#[serde(
    untagged,
    expecting = "a query item {key, operator, value} or a list of query items"
)]
enum QueryEntry {
    Group(Vec<QueryItemConfig>),
    Item(QueryItemConfig),
}

fn query_groups<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<QueryItemConfig>>, D::Error> {
    let entries = Option::<Vec<QueryEntry>>::deserialize(d)?.unwrap_or_default();
    let items = entries
        .iter()
        .filter(|e| matches!(e, QueryEntry::Item(_)))
        .count();
    if items == 0 {
        return Ok(entries
            .into_iter()
            .filter_map(|e| match e {
                QueryEntry::Group(g) => Some(g),
                QueryEntry::Item(_) => None,
            })
            .collect());
    }
    if items != entries.len() {
        return Err(serde::de::Error::custom(
            "query mixes items and lists of items: use a list of lists (OR of AND groups)",
        ));
    }
    Ok(vec![
        entries
            .into_iter()
            .filter_map(|e| match e {
                QueryEntry::Item(i) => Some(i),
                QueryEntry::Group(_) => None,
            })
            .collect(),
    ])
}

#[derive(Deserialize)]
#[serde(untagged, expecting = "a string, number or boolean")]
enum Scalar {
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
}

fn scalar<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<Scalar>::deserialize(d)?.map(|s| match s {
        Scalar::Bool(b) => b.to_string(),
        Scalar::Int(i) => i.to_string(),
        Scalar::UInt(u) => u.to_string(),
        Scalar::Float(f) => f.to_string(),
        Scalar::Str(s) => s,
    }))
}
