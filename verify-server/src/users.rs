//! Authelia's `users_database.yml`: loading, password digests, lookup by name or email.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use argon2::PasswordVerifier;
use portcullis_core::Identity;
use portcullis_core::identity::AuthLevel;
use serde::Deserialize;

/// Why a users file could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct UsersError {
    /// The file.
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

/// A password digest of a supported family, checked at load time.
#[derive(Clone, PartialEq, Eq)]
pub enum Digest {
    /// `$argon2id$`, `$argon2i$`, `$argon2d$` PHC strings.
    Argon2(String),
    /// `$2a$`, `$2b$`, `$2y$`.
    Bcrypt(String),
    /// `$6$` (sha512crypt).
    Sha512Crypt(String),
}

impl std::fmt::Debug for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let family = match self {
            Digest::Argon2(_) => "argon2",
            Digest::Bcrypt(_) => "bcrypt",
            Digest::Sha512Crypt(_) => "sha512crypt",
        };
        write!(f, "Digest({family})")
    }
}

impl Digest {
    /// Recognise a digest's family and check its syntax.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.starts_with("$argon2id$")
            || text.starts_with("$argon2i$")
            || text.starts_with("$argon2d$")
        {
            argon2::PasswordHash::new(text).map_err(|e| format!("malformed argon2 digest: {e}"))?;
            return Ok(Digest::Argon2(text.to_owned()));
        }
        if text.starts_with("$2a$") || text.starts_with("$2b$") || text.starts_with("$2y$") {
            if text.len() != 60 {
                return Err("malformed bcrypt digest".into());
            }
            return Ok(Digest::Bcrypt(text.to_owned()));
        }
        if text.starts_with("$6$") {
            return Ok(Digest::Sha512Crypt(text.to_owned()));
        }
        let family = text.split('$').nth(1).unwrap_or("");
        Err(if family.is_empty() {
            "the password is not a crypt-style digest (hash it with `portcullis hash-password`)"
                .to_owned()
        } else {
            format!(
                "unsupported digest family ${family}$: supported are argon2id, argon2i, argon2d, bcrypt ($2b$/$2y$) and sha512crypt ($6$)"
            )
        })
    }

    /// Check a password. CPU-heavy: call from a blocking thread.
    pub fn verify(&self, password: &str) -> bool {
        match self {
            Digest::Argon2(phc) => match argon2::PasswordHash::new(phc) {
                Ok(hash) => argon2::Argon2::default()
                    .verify_password(password.as_bytes(), &hash)
                    .is_ok(),
                Err(_) => false,
            },
            Digest::Bcrypt(hash) => bcrypt::verify(password, hash).unwrap_or(false),
            Digest::Sha512Crypt(hash) => sha_crypt::sha512_check(password, hash).is_ok(),
        }
    }
}

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
    users: HashMap<String, Arc<User>>,
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
    ) -> Result<Self, UsersError> {
        let text = std::fs::read_to_string(path).map_err(|e| UsersError {
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
    ) -> Result<Self, UsersError> {
        let err = |line: Option<usize>, message: String| UsersError {
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
            let at = || crate::config::locate(text, &format!("users.{name}"));
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
mod tests {
    use super::*;

    /// The digest of "password" that Authelia's documentation and test suites ship, produced by
    /// `authelia crypto hash generate argon2` with its defaults (m=65536, t=3, p=4).
    pub(crate) const ARGON2ID: &str = "$argon2id$v=19$m=65536,t=3,p=4$2ohUAfh9yetl+utr4tLcCQ$AsXx0VlwjvNnCsa70u4HKZvFkC8Gwajr2pHGKcND/xs";

    fn db(text: &str, ci: bool, email: bool) -> Result<UserDatabase, UsersError> {
        UserDatabase::parse(Path::new("users.yml"), text, ci, email)
    }

    #[test]
    fn rejects_unsupported_digests_naming_the_user() {
        let text = "users:\n  bob:\n    displayname: Bob\n    password: \"$pbkdf2-sha512$310000$abc$def\"\n";
        let e = db(text, false, false).unwrap_err();
        assert!(e.message.contains("\"bob\""), "{e}");
        assert!(e.message.contains("pbkdf2"), "{e}");
        assert_eq!(e.line, Some(2));
        let text = "users:\n  bob:\n    displayname: Bob\n    password: plaintext\n";
        assert!(
            db(text, false, false)
                .unwrap_err()
                .message
                .contains("not a crypt-style digest")
        );
    }

    #[test]
    fn lookup_rules() {
        let text = format!(
            "users:\n  alice:\n    displayname: Alice\n    password: \"{ARGON2ID}\"\n    email: Alice@Example.com\n    groups: [admins]\n    given_name: Alice\n  carol:\n    displayname: Carol\n    password: \"{ARGON2ID}\"\n    disabled: true\n"
        );
        let plain = db(&text, false, false).unwrap();
        assert!(plain.lookup("alice").is_some());
        assert!(plain.lookup("Alice").is_none());
        assert!(plain.lookup("alice@example.com").is_none());
        assert!(
            plain.lookup("carol").is_none(),
            "disabled users are unknown"
        );
        let flexible = db(&text, true, true).unwrap();
        assert_eq!(flexible.lookup("ALICE").unwrap().username, "alice");
        assert_eq!(
            flexible.lookup("alice@EXAMPLE.com").unwrap().username,
            "alice"
        );
        assert_eq!(flexible.len(), 1);
    }

    #[test]
    fn case_insensitive_requires_lower_case_names() {
        let text = format!("users:\n  Alice:\n    displayname: A\n    password: \"{ARGON2ID}\"\n");
        assert!(
            db(&text, true, false)
                .unwrap_err()
                .message
                .contains("lower-case")
        );
    }

    #[test]
    fn verifies_each_family() {
        let argon = Digest::parse(ARGON2ID).unwrap();
        assert!(argon.verify("password"));
        assert!(!argon.verify("Password"));
        let bcrypt_digest = bcrypt::hash_with_salt("password", 4, [7u8; 16])
            .unwrap()
            .format_for_version(bcrypt::Version::TwoB);
        let bcrypt = Digest::parse(&bcrypt_digest).unwrap();
        assert!(bcrypt.verify("password"));
        assert!(!bcrypt.verify("wrong"));
        let y = bcrypt_digest.replacen("$2b$", "$2y$", 1);
        assert!(Digest::parse(&y).unwrap().verify("password"));
        // sha512crypt test vector from the original specification (Drepper), rounds=5000 default.
        let sha = Digest::parse("$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1").unwrap();
        assert!(sha.verify("Hello world!"));
        assert!(!sha.verify("Hello world"));
        assert_eq!(
            format!("{sha:?}"),
            "Digest(sha512crypt)",
            "Debug never shows the digest"
        );
    }
}
