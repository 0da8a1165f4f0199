//! Authelia's `users_database.yml`: loading, lookup by name or email.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use portcullis_core::Identity;
use portcullis_core::identity::AuthLevel;
use serde::Deserialize;

mod digest;
mod directory;
mod password_change;

pub use digest::{Digest, Pbkdf2Digest};
pub use directory::{Directory, DirectoryError, PasswordChangeError};
pub use password_change::{argon2id_digest, change_password, replace_digest};

use crate::AuthError;

/// One user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Canonical username (the key in the file; lower-case under `case_insensitive`).
    pub username: String,
    /// Display name.
    pub display_name: String,
    /// Emails, primary first.
    pub emails: Vec<String>,
    /// Groups.
    pub groups: Vec<String>,
    /// Password digest.
    pub digest: Digest,
    /// Extra attributes (`extra:` in Authelia 4.39's users file): for the OpenID provider's
    /// `ak_proxy` claim and the identity headers.
    pub attributes: portcullis_core::Attributes,
    /// The entry's DN, for a user found in a directory.
    pub dn: Option<String>,
}

impl User {
    /// The identity this user has at `level`.
    pub fn identity(&self, level: AuthLevel, now: u64) -> Identity {
        Identity {
            username: self.username.clone(),
            display_name: self.display_name.clone(),
            emails: self.emails.clone(),
            groups: self.groups.clone(),
            level,
            authenticated_at: Some(now),
            attributes: self.attributes.clone(),
            ..Identity::default()
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    users: Option<HashMap<String, RawUser>>,
}

#[derive(Deserialize)]
struct RawUser {
    password: Option<String>,
    displayname: Option<String>,
    #[serde(default)]
    email: Option<OneOrMany>,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    disabled: bool,
    #[serde(default)]
    extra: Option<portcullis_core::Attributes>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// The loaded users file.
#[derive(Debug, Default)]
pub struct UserDatabase {
    /// foldhash: the keys come from the users file, and a check that refreshes the user's details
    /// looks one up.
    users: HashMap<String, Arc<User>, foldhash::fast::RandomState>,
    by_email: HashMap<String, String>,
    case_insensitive: bool,
    search_email: bool,
    dummy: Option<Digest>,
}

impl UserDatabase {
    /// Load and check a users file.
    pub fn load(
        path: &Path,
        case_insensitive: bool,
        search_email: bool,
    ) -> Result<Self, AuthError> {
        let text = std::fs::read_to_string(path).map_err(|e| AuthError::UsersFile {
            file: path.to_owned(),
            line: None,
            message: format!("cannot read: {e}"),
        })?;
        Self::parse(path, &text, case_insensitive, search_email)
    }

    /// Check users-file text.
    pub fn parse(
        path: &Path,
        text: &str,
        case_insensitive: bool,
        search_email: bool,
    ) -> Result<Self, AuthError> {
        let err = |line: Option<usize>, message: String| AuthError::UsersFile {
            file: path.to_owned(),
            line,
            message,
        };
        let raw: RawFile = serde_yaml_ng::from_str(text).map_err(|e| {
            let line = e.location().map(|l| l.line());
            let message = e.to_string();
            err(
                line,
                message
                    .split(" at line ")
                    .next()
                    .unwrap_or(&message)
                    .to_owned(),
            )
        })?;
        let mut db = UserDatabase {
            case_insensitive,
            search_email,
            ..Default::default()
        };
        let mut names: Vec<_> = raw.users.unwrap_or_default().into_iter().collect();
        names.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, user) in names {
            let at = || portcullis_config::locate(text, &format!("users.{name}"));
            if name.is_empty() {
                return Err(err(at(), "a username is empty".into()));
            }
            if case_insensitive && name != name.to_lowercase() {
                return Err(err(
                    at(),
                    format!(
                        "user {name:?}: usernames must be lower-case when search.case_insensitive is on"
                    ),
                ));
            }
            let password = user
                .password
                .ok_or_else(|| err(at(), format!("user {name:?}: password is required")))?;
            let digest =
                Digest::parse(&password).map_err(|e| err(at(), format!("user {name:?}: {e}")))?;
            let display_name = user
                .displayname
                .ok_or_else(|| err(at(), format!("user {name:?}: displayname is required")))?;
            if user.disabled {
                // A disabled user is treated as not found by every operation.
                continue;
            }
            let emails = match user.email {
                None => Vec::new(),
                Some(OneOrMany::One(e)) => vec![e],
                Some(OneOrMany::Many(v)) => v,
            };
            if search_email {
                for email in &emails {
                    if let Some(other) = db.by_email.insert(email.to_lowercase(), name.clone()) {
                        return Err(err(
                            at(),
                            format!("users {other:?} and {name:?} share the email {email:?}"),
                        ));
                    }
                }
            }
            if db.dummy.is_none() {
                db.dummy = Some(digest.clone());
            }
            db.users.insert(
                name.clone(),
                Arc::new(User {
                    username: name,
                    display_name,
                    emails,
                    groups: user.groups,
                    digest,
                    attributes: user.extra.unwrap_or_default(),
                    dn: None,
                }),
            );
        }
        Ok(db)
    }

    /// Find a user by the name typed at login (or in a Basic header). Returns the canonical record.
    pub fn lookup(&self, login: &str) -> Option<Arc<User>> {
        let key = if self.case_insensitive {
            login.to_lowercase()
        } else {
            login.to_owned()
        };
        if let Some(user) = self.users.get(&key) {
            return Some(user.clone());
        }
        if self.search_email && login.contains('@') {
            let name = self.by_email.get(&login.to_lowercase())?;
            return self.users.get(name).cloned();
        }
        None
    }

    /// Look up the canonical username exactly (for session refresh).
    pub fn get(&self, username: &str) -> Option<Arc<User>> {
        self.users.get(username).cloned()
    }

    /// A digest of a real user, verified against when the login name is unknown so that unknown
    /// users cost the same time as wrong passwords.
    pub fn dummy_digest(&self) -> Option<Digest> {
        self.dummy.clone()
    }

    /// Number of enabled users.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// True when there are no enabled users.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

#[cfg(test)]
pub(crate) mod tests;
