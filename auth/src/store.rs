//! Opening the session store a configuration selects (Redis when `session.redis` is set, else the
//! SQLite file `storage.local.path`) and the regulator that goes with it: one function for the
//! server and for `portcullis sessions`.

use std::path::PathBuf;
use std::sync::Arc;

use portcullis_core::Secret;
use portcullis_session::{RedisConfig, RedisStore, SessionStore, SqliteStore};

use crate::AuthError;
use crate::regulation::{RegulationConfig, Regulator};

/// Which store to open.
#[derive(Debug, Clone)]
pub struct StoreSelection {
    /// `session.redis`, when set.
    pub redis: Option<RedisConfig>,
    /// `storage.local.path`.
    pub sqlite_path: PathBuf,
    /// `session.secret`: the Redis records are encrypted under a key derived from it (required
    /// with Redis; a single server may let [`stored_secret`](crate::stored_secret) keep one).
    pub secret: Option<Secret>,
}

/// Whether opening may create a new store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Create the SQLite file when it is missing (the server).
    CreateMissing,
    /// A missing SQLite file is an error rather than a new empty store (the admin command).
    ExistingOnly,
}

/// An opened session store.
#[derive(Debug, Clone)]
pub enum SessionBackend {
    /// The SQLite file.
    Sqlite(Arc<SqliteStore>),
    /// Redis, shared by replicas.
    Redis(Arc<RedisStore>),
}

impl SessionBackend {
    /// Open the store `selection` names. Expired SQLite records are judged at `now`. Redis
    /// connects lazily: a Redis that is down is not an error here (checks fail closed until it is
    /// back).
    pub fn open(selection: &StoreSelection, mode: OpenMode, now: u64) -> Result<Self, AuthError> {
        match &selection.redis {
            Some(redis) => {
                let secret = selection.secret.as_ref().ok_or(AuthError::NoSecret)?;
                Ok(Self::Redis(Arc::new(RedisStore::new(
                    redis.clone(),
                    secret.expose().as_bytes(),
                )?)))
            }
            None => {
                let path = &selection.sqlite_path;
                if mode == OpenMode::ExistingOnly && !path.is_file() {
                    return Err(AuthError::MissingStore(path.clone()));
                }
                Ok(Self::Sqlite(Arc::new(SqliteStore::open(path, now)?)))
            }
        }
    }

    /// The store as the trait the check path uses.
    pub fn sessions(&self) -> Arc<dyn SessionStore> {
        match self {
            Self::Sqlite(s) => s.clone(),
            Self::Redis(r) => r.clone(),
        }
    }

    /// The OpenID provider's store that goes with this one: the same SQLite file, or the same
    /// Redis (keys under its prefix), which takes the subject identifiers already in the SQLite
    /// file `sqlite_path` when there is one (an Authelia database).
    pub fn oidc_store(
        &self,
        sqlite_path: &std::path::Path,
    ) -> Result<Arc<dyn portcullis_oidc::store::OidcStore>, AuthError> {
        Ok(match self {
            Self::Sqlite(s) => Arc::new(portcullis_oidc::sqlite::SqliteOidcStore::open(s.path())?),
            Self::Redis(r) => {
                let seed = if sqlite_path.is_file() {
                    Some(portcullis_oidc::sqlite::SqliteOidcStore::open(sqlite_path)?)
                } else {
                    None
                };
                Arc::new(crate::RedisOidcStore::new(r.clone(), seed))
            }
        })
    }

    /// The app passwords that go with this store: the same SQLite file, or the same Redis.
    pub fn app_passwords(
        &self,
    ) -> Result<Arc<dyn crate::app_passwords::AppPasswordStore>, AuthError> {
        Ok(match self {
            Self::Sqlite(s) => Arc::new(crate::app_passwords::SqliteAppPasswords::open(s.path())?),
            Self::Redis(r) => Arc::new(crate::app_passwords::RedisAppPasswords::new(r.clone())),
        })
    }

    /// The regulator that shares this store: Redis keys under its prefix, or the same SQLite file.
    pub fn regulator(&self, config: RegulationConfig, now: u64) -> Result<Regulator, AuthError> {
        match self {
            Self::Sqlite(s) => Regulator::open(config, s.path(), now),
            Self::Redis(r) => Ok(Regulator::redis(config, r.clone())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn selection(path: PathBuf) -> StoreSelection {
        StoreSelection {
            redis: None,
            sqlite_path: path,
            secret: Some(Secret::new("a-session-secret-of-some-length")),
        }
    }

    #[tokio::test]
    async fn sqlite_store_and_regulator_share_one_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite3");
        let missing = SessionBackend::open(&selection(path.clone()), OpenMode::ExistingOnly, 0);
        assert!(
            matches!(missing, Err(AuthError::MissingStore(_))),
            "{missing:?}"
        );
        assert!(!path.exists(), "ExistingOnly creates nothing");
        let backend =
            SessionBackend::open(&selection(path.clone()), OpenMode::CreateMissing, 0).unwrap();
        assert!(matches!(backend, SessionBackend::Sqlite(_)));
        let config = RegulationConfig {
            max_retries: 1,
            find_time: 60,
            ban_time: 60,
            by_user: true,
            by_ip: false,
        };
        let regulator = backend.regulator(config, 100).unwrap();
        regulator.record("alice", None, false, 100).await;
        drop(regulator);
        let reopened = SessionBackend::open(&selection(path), OpenMode::ExistingOnly, 101).unwrap();
        let regulator = reopened.regulator(config, 101).unwrap();
        assert!(
            regulator.is_banned(Some("alice"), None, 101).await,
            "the ban is in the same file"
        );
        assert_eq!(reopened.sessions().count(101).await.unwrap(), 0);
    }
}
