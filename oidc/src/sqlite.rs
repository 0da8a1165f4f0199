//! `SqliteOidcStore`: the provider's state in the SQLite file of `storage.local.path`
//! (feature `sqlite`).
//!
//! Portcullis's records live in `portcullis_oidc_records` and its kept values (generated signing
//! keys) in `portcullis_oidc_kept`. Subject identifiers use Authelia's own table,
//! `user_opaque_identifier` (service `openid`), created with Authelia's layout when absent: on an
//! existing Authelia database its rows are used as they are, so every application keeps
//! recognising its users after the switch, and rows Portcullis adds are ones Authelia reads.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};

use crate::error::OidcError;
use crate::store::{Consumed, OidcStore, Record, RecordKind};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS portcullis_oidc_records (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    family TEXT NOT NULL,
    active INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (kind, key)
);
CREATE INDEX IF NOT EXISTS portcullis_oidc_records_family ON portcullis_oidc_records (family);
CREATE INDEX IF NOT EXISTS portcullis_oidc_records_expires ON portcullis_oidc_records (expires_at);
CREATE TABLE IF NOT EXISTS portcullis_oidc_kept (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS portcullis_oidc_owners (
    owner TEXT NOT NULL,
    client TEXT NOT NULL,
    family TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (owner, family)
);
CREATE TABLE IF NOT EXISTS user_opaque_identifier (
    id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    service VARCHAR(20) NOT NULL,
    sector_id VARCHAR(255) NOT NULL,
    username VARCHAR(100) NOT NULL,
    identifier CHAR(36) NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS user_opaque_identifier_service_sector_id_username_key ON user_opaque_identifier (service, sector_id, username);
CREATE UNIQUE INDEX IF NOT EXISTS user_opaque_identifier_identifier_key ON user_opaque_identifier (identifier);
";

/// The service name Authelia files OpenID Connect subjects under.
const SERVICE: &str = "openid";

/// The provider's state in a SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteOidcStore {
    conn: Arc<Mutex<Connection>>,
}

fn store_error(e: impl std::fmt::Display) -> OidcError {
    OidcError::Store(e.to_string())
}

impl SqliteOidcStore {
    /// Open (creating the tables when absent) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, OidcError> {
        let conn = Connection::open(path).map_err(store_error)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(store_error)?;
        conn.execute_batch(SCHEMA).map_err(store_error)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// The subject identifier `username` already has for `sector`, without creating one (another
    /// store seeds its own from an existing Authelia database).
    pub async fn find_subject(
        &self,
        username: &str,
        sector: &str,
    ) -> Result<Option<String>, OidcError> {
        let (username, sector) = (username.to_owned(), sector.to_owned());
        self.with(move |c| {
            c.query_row(
                "SELECT identifier FROM user_opaque_identifier WHERE service = ?1 AND sector_id = ?2 AND username = ?3",
                params![SERVICE, sector, username],
                |row| row.get(0),
            )
            .optional()
        })
        .await
    }

    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, OidcError> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut guard)
        })
        .await
        .map_err(store_error)?
        .map_err(store_error)
    }
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn record(row: &rusqlite::Row<'_>) -> rusqlite::Result<Record> {
    Ok(Record {
        family: row.get(0)?,
        active: row.get::<_, i64>(1)? != 0,
        expires_at: u64::try_from(row.get::<_, i64>(2)?).unwrap_or(0),
        value: row.get(3)?,
    })
}

#[async_trait]
impl OidcStore for SqliteOidcStore {
    async fn insert(
        &self,
        kind: RecordKind,
        key: &str,
        family: &str,
        value: &[u8],
        expires_at: u64,
    ) -> Result<(), OidcError> {
        let (key, family, value) = (key.to_owned(), family.to_owned(), value.to_vec());
        self.with(move |c| {
            c.execute(
                "INSERT OR REPLACE INTO portcullis_oidc_records (kind, key, family, active, expires_at, value) VALUES (?1, ?2, ?3, 1, ?4, ?5)",
                params![kind.as_str(), key, family, to_i64(expires_at), value],
            )
            .map(|_| ())
        })
        .await
    }

    async fn insert_new(
        &self,
        kind: RecordKind,
        key: &str,
        value: &[u8],
        expires_at: u64,
        now: u64,
    ) -> Result<bool, OidcError> {
        let (key, value) = (key.to_owned(), value.to_vec());
        self.with(move |c| {
            let tx = c.transaction()?;
            tx.execute(
                "DELETE FROM portcullis_oidc_records WHERE kind = ?1 AND key = ?2 AND expires_at <= ?3",
                params![kind.as_str(), key, to_i64(now)],
            )?;
            let inserted = tx.execute(
                "INSERT OR IGNORE INTO portcullis_oidc_records (kind, key, family, active, expires_at, value) VALUES (?1, ?2, ?2, 1, ?3, ?4)",
                params![kind.as_str(), key, to_i64(expires_at), value],
            )?;
            tx.commit()?;
            Ok(inserted == 1)
        })
        .await
    }

    async fn get(
        &self,
        kind: RecordKind,
        key: &str,
        now: u64,
    ) -> Result<Option<Record>, OidcError> {
        let key = key.to_owned();
        self.with(move |c| {
            c.query_row(
                "SELECT family, active, expires_at, value FROM portcullis_oidc_records WHERE kind = ?1 AND key = ?2 AND expires_at > ?3",
                params![kind.as_str(), key, to_i64(now)],
                record,
            )
            .optional()
        })
        .await
    }

    async fn consume(&self, kind: RecordKind, key: &str, now: u64) -> Result<Consumed, OidcError> {
        let key = key.to_owned();
        self.with(move |c| {
            let tx = c.transaction()?;
            let found = tx
                .query_row(
                    "SELECT family, active, expires_at, value FROM portcullis_oidc_records WHERE kind = ?1 AND key = ?2 AND expires_at > ?3",
                    params![kind.as_str(), key, to_i64(now)],
                    record,
                )
                .optional()?;
            let outcome = match found {
                None => Consumed::Missing,
                Some(r) if !r.active => Consumed::Replayed(r),
                Some(r) => {
                    // The UPDATE's row count decides, so another process consuming at the same
                    // moment cannot also see the record fresh.
                    let changed = tx.execute(
                        "UPDATE portcullis_oidc_records SET active = 0 WHERE kind = ?1 AND key = ?2 AND active = 1",
                        params![kind.as_str(), key],
                    )?;
                    if changed == 1 { Consumed::Fresh(r) } else { Consumed::Replayed(r) }
                }
            };
            tx.commit()?;
            Ok(outcome)
        })
        .await
    }

    async fn revoke_family(&self, family: &str) -> Result<(), OidcError> {
        let family = family.to_owned();
        self.with(move |c| {
            c.execute(
                "UPDATE portcullis_oidc_records SET active = 0 WHERE family = ?1",
                params![family],
            )
            .map(|_| ())
        })
        .await
    }

    async fn delete(&self, kind: RecordKind, key: &str) -> Result<(), OidcError> {
        let key = key.to_owned();
        self.with(move |c| {
            c.execute(
                "DELETE FROM portcullis_oidc_records WHERE kind = ?1 AND key = ?2",
                params![kind.as_str(), key],
            )
            .map(|_| ())
        })
        .await
    }

    async fn purge(&self, now: u64) -> Result<u64, OidcError> {
        self.with(move |c| {
            let n = c.execute(
                "DELETE FROM portcullis_oidc_records WHERE expires_at <= ?1",
                params![to_i64(now)],
            )?;
            c.execute(
                "DELETE FROM portcullis_oidc_owners WHERE expires_at <= ?1",
                params![to_i64(now)],
            )?;
            Ok(n as u64)
        })
        .await
    }

    async fn subject(
        &self,
        username: &str,
        sector: &str,
        fresh: &str,
    ) -> Result<String, OidcError> {
        let (username, sector, fresh) = (username.to_owned(), sector.to_owned(), fresh.to_owned());
        self.with(move |c| {
            c.execute(
                "INSERT OR IGNORE INTO user_opaque_identifier (service, sector_id, username, identifier) VALUES (?1, ?2, ?3, ?4)",
                params![SERVICE, sector, username, fresh],
            )?;
            c.query_row(
                "SELECT identifier FROM user_opaque_identifier WHERE service = ?1 AND sector_id = ?2 AND username = ?3",
                params![SERVICE, sector, username],
                |row| row.get(0),
            )
        })
        .await
    }

    async fn kept(&self, name: &str) -> Result<Option<String>, OidcError> {
        let name = name.to_owned();
        self.with(move |c| {
            c.query_row(
                "SELECT value FROM portcullis_oidc_kept WHERE name = ?1",
                params![name],
                |row| row.get(0),
            )
            .optional()
        })
        .await
    }

    async fn link_owner(
        &self,
        owner: &str,
        client: &str,
        family: &str,
        expires_at: u64,
    ) -> Result<(), OidcError> {
        let (owner, client, family) = (owner.to_owned(), client.to_owned(), family.to_owned());
        self.with(move |c| {
            c.execute(
                "INSERT OR REPLACE INTO portcullis_oidc_owners (owner, client, family, expires_at) VALUES (?1, ?2, ?3, ?4)",
                params![owner, client, family, to_i64(expires_at)],
            )
            .map(|_| ())
        })
        .await
    }

    async fn take_owned(&self, owner: &str, now: u64) -> Result<Vec<(String, String)>, OidcError> {
        let owner = owner.to_owned();
        self.with(move |c| {
            let tx = c.transaction()?;
            let links = {
                let mut stmt = tx.prepare(
                    "SELECT client, family FROM portcullis_oidc_owners WHERE owner = ?1 AND expires_at > ?2",
                )?;
                stmt.query_map(params![owner, to_i64(now)], |row| Ok((row.get(0)?, row.get(1)?)))?
                    .collect::<rusqlite::Result<Vec<(String, String)>>>()?
            };
            tx.execute("DELETE FROM portcullis_oidc_owners WHERE owner = ?1", params![owner])?;
            tx.commit()?;
            Ok(links)
        })
        .await
    }

    async fn keep(&self, name: &str, fresh: &str) -> Result<String, OidcError> {
        let (name, fresh) = (name.to_owned(), fresh.to_owned());
        self.with(move |c| {
            c.execute(
                "INSERT OR IGNORE INTO portcullis_oidc_kept (name, value) VALUES (?1, ?2)",
                params![name, fresh],
            )?;
            c.query_row(
                "SELECT value FROM portcullis_oidc_kept WHERE name = ?1",
                params![name],
                |row| row.get(0),
            )
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sqlite_store_conforms_and_keeps_authelia_subjects() {
        let dir = std::env::temp_dir().join(format!("portcullis-oidc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("db.sqlite3");
        let _ = std::fs::remove_file(&path);
        {
            // An Authelia database already holding john's identifier.
            let c = Connection::open(&path).unwrap();
            c.execute_batch(
                "CREATE TABLE user_opaque_identifier (id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, service VARCHAR(20) NOT NULL, sector_id VARCHAR(255) NOT NULL, username VARCHAR(100) NOT NULL, identifier CHAR(36) NOT NULL);
                 CREATE UNIQUE INDEX user_opaque_identifier_service_sector_id_username_key ON user_opaque_identifier (service, sector_id, username);
                 CREATE UNIQUE INDEX user_opaque_identifier_identifier_key ON user_opaque_identifier (identifier);
                 INSERT INTO user_opaque_identifier (service, sector_id, username, identifier) VALUES ('openid', '', 'harry', 'a1b2c3d4-0000-4000-8000-000000000001');",
            )
            .unwrap();
        }
        let store = SqliteOidcStore::open(&path).unwrap();
        assert_eq!(
            store.subject("harry", "", "fresh").await.unwrap(),
            "a1b2c3d4-0000-4000-8000-000000000001"
        );
        crate::store::conformance(&store).await;
        // Reopening keeps everything.
        drop(store);
        let store = SqliteOidcStore::open(&path).unwrap();
        assert_eq!(store.subject("john", "", "other").await.unwrap(), "uuid-1");
        assert_eq!(store.keep("k", "z").await.unwrap(), "a");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
