//! The directory client as the users' [`Directory`]: what [`PasswordCheck`](crate::PasswordCheck)
//! and the servers consult for a directory's users.

use async_trait::async_trait;

use super::{DirectoryUser, LdapDirectory, LdapError};
use crate::users::{Digest, Directory, DirectoryError, PasswordChangeError, User};

impl From<DirectoryUser> for User {
    fn from(d: DirectoryUser) -> Self {
        Self {
            username: d.username,
            display_name: d.display_name,
            emails: d.emails,
            groups: d.groups,
            digest: Digest::Directory,
            attributes: d.attributes,
            dn: Some(d.dn),
        }
    }
}

#[async_trait]
impl Directory for LdapDirectory {
    async fn find(&self, login: &str, now: u64) -> Result<Option<User>, DirectoryError> {
        match LdapDirectory::find(self, login, now).await {
            Ok(user) => Ok(Some(user.into())),
            Err(LdapError::NotFound) => Ok(None),
            // Several entries, or one without a single username: no user, as far as a login is
            // concerned (docs/reference/ldap.md §5.4); the reason is logged.
            Err(e @ (LdapError::Ambiguous | LdapError::Malformed(_))) => {
                tracing::warn!(login = %login, reason = %e, "directory login refused");
                Ok(None)
            }
            Err(e) => Err(DirectoryError(e.to_string())),
        }
    }

    async fn verify(&self, user: &User, password: &str) -> Result<bool, DirectoryError> {
        let Some(dn) = &user.dn else {
            return Ok(false);
        };
        match self.check_password(dn, password).await {
            Ok(()) => Ok(true),
            Err(LdapError::InvalidCredentials | LdapError::EmptyPassword) => Ok(false),
            Err(e) => Err(DirectoryError(e.to_string())),
        }
    }

    async fn set_password(
        &self,
        user: &User,
        old: Option<&str>,
        new: &str,
    ) -> Result<(), PasswordChangeError> {
        let Some(dn) = &user.dn else {
            return Err(PasswordChangeError::Refused(
                "the user has no entry in the directory".into(),
            ));
        };
        match LdapDirectory::set_password(self, dn, old, new).await {
            Ok(()) => Ok(()),
            Err(LdapError::InvalidCredentials | LdapError::EmptyPassword) => {
                Err(PasswordChangeError::WrongPassword)
            }
            Err(LdapError::PasswordRefused(reason)) => Err(PasswordChangeError::Refused(reason)),
            Err(e) => Err(DirectoryError(e.to_string()).into()),
        }
    }
}
