//! Who may log in: the users file and its password digests ([`users`]), the bounded hashing pool
//! ([`Hasher`]), the failure delay ([`FailureDelay`]), the Basic credential cache
//! ([`BasicCache`]), brute-force regulation ([`regulation`]), the password check that combines
//! them ([`PasswordCheck`]), and the session store a configuration selects ([`SessionBackend`],
//! with the `sqlite` and `redis` features).
//!
//! ```
//! use portcullis_auth::users::{Digest, UserDatabase};
//!
//! let users = UserDatabase::parse(
//!     "users_database.yml".as_ref(),
//!     "users:\n  alice:\n    displayname: Alice\n    password: \"$argon2id$v=19$m=65536,t=3,p=4$2ohUAfh9yetl+utr4tLcCQ$AsXx0VlwjvNnCsa70u4HKZvFkC8Gwajr2pHGKcND/xs\"\n",
//!     false,
//!     false,
//! )
//! .unwrap();
//! let alice = users.lookup("alice").unwrap();
//! assert!(alice.digest.verify("password"));
//! assert!(Digest::parse("$md5$abc").is_err());
//! ```

#![warn(missing_docs, unreachable_pub)]

pub mod app_passwords;
mod basic_cache;
mod delay;
mod error;
mod hasher;
#[cfg(feature = "ldap")]
pub mod ldap;
#[cfg(feature = "redis")]
mod oidc_redis;
mod password;
pub mod rate_limit;
pub mod regulation;
#[cfg(all(feature = "sqlite", feature = "redis"))]
mod store;
#[cfg(feature = "sqlite")]
mod stored_secret;
pub mod users;

pub use basic_cache::{BasicCache, CacheKey};
pub use delay::FailureDelay;
pub use error::AuthError;
pub use hasher::Hasher;
#[cfg(feature = "redis")]
pub use oidc_redis::RedisOidcStore;
pub use password::{Accepted, PasswordCheck, Rejection};
#[cfg(all(feature = "sqlite", feature = "redis"))]
pub use store::{OpenMode, SessionBackend, StoreSelection};
#[cfg(feature = "sqlite")]
pub use stored_secret::{SecretOrigin, stored_secret};

/// Lock a mutex whose data stays usable after a panic elsewhere: every update it guards leaves the
/// data consistent before it can panic, so a poisoned lock still holds the best state there is.
fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
