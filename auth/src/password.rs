//! Checking a login name and password, the same way for portal logins and Basic credentials:
//! regulation first, then the user, then the digest (or the Basic cache).

use std::net::IpAddr;
use std::sync::Arc;

use crate::AuthError;
use crate::basic_cache::BasicCache;
use crate::hasher::Hasher;
use crate::regulation::Regulator;
use crate::users::{Directory, User, UserDatabase};

/// Why a password login was refused. Callers answer every kind alike; the kind is for logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// Login name or password is empty.
    Empty,
    /// The client IP or the user is banned.
    Banned,
    /// No such (enabled) user.
    UnknownUser,
    /// The password does not match.
    WrongPassword,
    /// No hashing slot became free in time.
    Overloaded,
    /// The user directory did not answer (not counted for regulation: the user did nothing
    /// wrong).
    Unavailable,
}

impl Rejection {
    /// A word for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Empty => "empty credentials",
            Self::Banned => "banned",
            Self::UnknownUser => "unknown user",
            Self::WrongPassword => "wrong password",
            Self::Overloaded => "hashing overloaded",
            Self::Unavailable => "user directory unavailable",
        }
    }
}

/// An accepted login.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// The canonical user.
    pub user: Arc<User>,
    /// True when the digest was verified now (not answered from the Basic cache): the time it took
    /// is a fair sample for the failure delay.
    pub hashed: bool,
}

/// What a password check consults.
#[derive(Debug, Clone, Copy)]
pub struct PasswordCheck<'a> {
    /// The users.
    pub users: &'a UserDatabase,
    /// The hashing pool.
    pub hasher: &'a Hasher,
    /// Regulation.
    pub regulator: &'a Regulator,
    /// The Basic credential cache and the lifetime of its entries, for Basic credentials.
    pub cache: Option<(&'a BasicCache, u64)>,
    /// App passwords, accepted in place of the user's password (Basic credentials only).
    pub app_passwords: Option<&'a dyn crate::app_passwords::AppPasswordStore>,
    /// The directory the users live in, instead of `users` (docs/reference/ldap.md §5.3).
    pub directory: Option<&'a dyn Directory>,
}

impl PasswordCheck<'_> {
    /// Check `login` / `password` from `client` at `now`, recording the attempt for regulation.
    ///
    /// A banned client IP is refused before the user is even looked up, so attempts with unknown
    /// names from a banned address take no hashing slot. An unknown user costs one verification
    /// against a real digest, as a wrong password does.
    pub async fn check(
        &self,
        login: &str,
        password: &str,
        client: Option<IpAddr>,
        now: u64,
    ) -> Result<Accepted, Rejection> {
        if login.is_empty() || password.is_empty() {
            return Err(Rejection::Empty);
        }
        if client.is_some() && self.regulator.is_banned(None, client, now).await {
            return Err(Rejection::Banned);
        }
        if let Some(directory) = self.directory {
            return self
                .check_in_directory(directory, login, password, client, now)
                .await;
        }
        let Some(user) = self.users.lookup(login) else {
            if let Some(dummy) = self.users.dummy_digest() {
                let _ = self.hasher.verify(dummy, password.to_owned()).await;
            }
            self.regulator.record("", client, false, now).await;
            return Err(Rejection::UnknownUser);
        };
        if self
            .regulator
            .is_banned(Some(&user.username), client, now)
            .await
        {
            return Err(Rejection::Banned);
        }
        // An app password: a digest comparison, no hashing slot. A password that only looks like
        // one goes on to the user's digest.
        if self.app_password(&user, password, client, now).await {
            return Ok(Accepted {
                user,
                hashed: false,
            });
        }
        if let Some((cache, _)) = self.cache.filter(|(_, lifespan)| *lifespan > 0)
            && cache.hit(&user.username, password, now)
        {
            return Ok(Accepted {
                user,
                hashed: false,
            });
        }
        let verified = match self
            .hasher
            .verify(user.digest.clone(), password.to_owned())
            .await
        {
            Ok(verified) => verified,
            Err(AuthError::Overloaded) => return Err(Rejection::Overloaded),
            Err(_) => false,
        };
        self.regulator
            .record(&user.username, client, verified, now)
            .await;
        if !verified {
            return Err(Rejection::WrongPassword);
        }
        if let Some((cache, lifespan)) = self.cache.filter(|(_, lifespan)| *lifespan > 0) {
            cache.insert(&user.username, password, now.saturating_add(lifespan));
        }
        Ok(Accepted { user, hashed: true })
    }

    /// Whether `password` is one of `user`'s app passwords (recorded as a success when it is).
    async fn app_password(
        &self,
        user: &User,
        password: &str,
        client: Option<IpAddr>,
        now: u64,
    ) -> bool {
        let Some(store) = self.app_passwords else {
            return false;
        };
        if !crate::app_passwords::looks_like(password) {
            return false;
        }
        match store.list(&user.username).await {
            Ok(records) if crate::app_passwords::matches(&records, password, now) => {
                self.regulator
                    .record(&user.username, client, true, now)
                    .await;
                true
            }
            Ok(_) => false,
            Err(e) => {
                tracing::error!(user = %user.username, error = %e, "app passwords unavailable: checked as a password");
                false
            }
        }
    }

    /// The same check against a directory: a Basic cache hit answers without it; otherwise the
    /// user is found, the ban checked on the canonical username, and the password proven by the
    /// directory. A directory that cannot answer refuses, and is not counted for regulation.
    async fn check_in_directory(
        &self,
        directory: &dyn Directory,
        login: &str,
        password: &str,
        client: Option<IpAddr>,
        now: u64,
    ) -> Result<Accepted, Rejection> {
        let cache = self.cache.filter(|(_, lifespan)| *lifespan > 0);
        if let Some((cache, _)) = cache
            && let Some(user) = cache.hit_directory(login, password, now)
        {
            if self
                .regulator
                .is_banned(Some(&user.username), client, now)
                .await
            {
                return Err(Rejection::Banned);
            }
            return Ok(Accepted {
                user,
                hashed: false,
            });
        }
        let user = match directory.find(login, now).await {
            Ok(Some(user)) => Arc::new(user),
            Ok(None) => {
                self.regulator.record("", client, false, now).await;
                return Err(Rejection::UnknownUser);
            }
            Err(e) => {
                tracing::warn!(error = %e, "login refused: the user directory is unavailable");
                return Err(Rejection::Unavailable);
            }
        };
        if self
            .regulator
            .is_banned(Some(&user.username), client, now)
            .await
        {
            return Err(Rejection::Banned);
        }
        if self.app_password(&user, password, client, now).await {
            return Ok(Accepted {
                user,
                hashed: false,
            });
        }
        match directory.verify(&user, password).await {
            Ok(true) => {}
            Ok(false) => {
                self.regulator
                    .record(&user.username, client, false, now)
                    .await;
                return Err(Rejection::WrongPassword);
            }
            Err(e) => {
                tracing::warn!(user = %user.username, error = %e, "login refused: the user directory is unavailable");
                return Err(Rejection::Unavailable);
            }
        }
        self.regulator
            .record(&user.username, client, true, now)
            .await;
        if let Some((cache, lifespan)) = cache {
            cache.insert_directory(login, password, user.clone(), now.saturating_add(lifespan));
        }
        Ok(Accepted { user, hashed: true })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::regulation::RegulationConfig;
    use crate::users::tests::ARGON2ID;
    use std::time::Duration;

    const IP: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(203, 0, 113, 9)));

    fn users() -> UserDatabase {
        let text =
            format!("users:\n  alice:\n    displayname: Alice\n    password: \"{ARGON2ID}\"\n");
        UserDatabase::parse("users.yml".as_ref(), &text, false, false).unwrap()
    }

    fn regulation() -> RegulationConfig {
        RegulationConfig {
            max_retries: 3,
            find_time: 120,
            ban_time: 300,
            by_user: false,
            by_ip: true,
        }
    }

    #[tokio::test]
    async fn an_ip_ban_stops_unknown_names_before_any_hashing() {
        let (users, hasher) = (users(), Hasher::new(1, Duration::from_secs(30)));
        let regulator = Regulator::in_memory(regulation());
        let check = PasswordCheck {
            directory: None,
            app_passwords: None,
            users: &users,
            hasher: &hasher,
            regulator: &regulator,
            cache: None,
        };
        for name in ["x1", "x2", "x3"] {
            assert_eq!(
                check.check(name, "p", IP, 1000).await.unwrap_err(),
                Rejection::UnknownUser
            );
        }
        assert_eq!(
            hasher.verifications(),
            3,
            "unknown users cost a verification"
        );
        assert_eq!(
            check.check("x4", "p", IP, 1001).await.unwrap_err(),
            Rejection::Banned
        );
        assert_eq!(
            check
                .check("alice", "password", IP, 1001)
                .await
                .unwrap_err(),
            Rejection::Banned
        );
        assert_eq!(
            hasher.verifications(),
            3,
            "a banned IP takes no hashing slot"
        );
        let other = Some(IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, 1)));
        assert!(check.check("alice", "password", other, 1001).await.is_ok());
    }

    #[tokio::test]
    async fn the_cache_answers_a_second_basic_check_without_hashing() {
        let (users, hasher) = (users(), Hasher::new(1, Duration::from_secs(30)));
        let regulator = Regulator::in_memory(regulation());
        let cache = BasicCache::new(&[1; 64]);
        let check = PasswordCheck {
            directory: None,
            app_passwords: None,
            users: &users,
            hasher: &hasher,
            regulator: &regulator,
            cache: Some((&cache, 60)),
        };
        assert!(
            check
                .check("alice", "password", IP, 10)
                .await
                .unwrap()
                .hashed
        );
        let again = check.check("alice", "password", IP, 20).await.unwrap();
        assert!(!again.hashed);
        assert_eq!(hasher.verifications(), 1);
        assert_eq!(
            check.check("alice", "wrong", IP, 20).await.unwrap_err(),
            Rejection::WrongPassword
        );
        assert!(
            check
                .check("alice", "password", IP, 70)
                .await
                .unwrap()
                .hashed,
            "expired entry"
        );
        assert_eq!(
            check.check("", "password", IP, 70).await.unwrap_err(),
            Rejection::Empty
        );
    }
}
