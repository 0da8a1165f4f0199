//! Users that live in a directory (LDAP, docs/reference/ldap.md §5.3) rather than in the users
//! file: found and their passwords checked over the network. [`PasswordCheck`](crate::PasswordCheck)
//! uses a [`Directory`] in place of the file's digests; regulation, the Basic cache and app
//! passwords apply unchanged.

use async_trait::async_trait;

use super::User;

/// The directory could not answer (down, too slow, refused the service account): whoever asked
/// is refused — it never counts as "no such user" nor as "no groups".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the user directory is unavailable: {0}")]
pub struct DirectoryError(pub String);

/// Where users are looked up when they are not in a file.
#[async_trait]
pub trait Directory: Send + Sync + std::fmt::Debug {
    /// The user `login` names (a username or an email address), with their groups, at `now`;
    /// `None` when no single entry matches.
    async fn find(&self, login: &str, now: u64) -> Result<Option<User>, DirectoryError>;

    /// Whether `password` is `user`'s (found by [`Directory::find`]).
    async fn verify(&self, user: &User, password: &str) -> Result<bool, DirectoryError>;

    /// Give `user` the password `new`: a change proven by `old`, or a reset (`old` is `None`)
    /// done by the service account.
    async fn set_password(
        &self,
        user: &User,
        old: Option<&str>,
        new: &str,
    ) -> Result<(), PasswordChangeError>;
}

/// Why the directory did not take a new password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordChangeError {
    /// The old password does not bind.
    #[error("the old password is wrong")]
    WrongPassword,
    /// The directory refused the new password (its policy, or the old one again).
    #[error("the directory refused the new password: {0}")]
    Refused(String),
    /// The directory could not answer.
    #[error(transparent)]
    Unavailable(#[from] DirectoryError),
}
