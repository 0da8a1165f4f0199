//! App passwords in the SQLite file (table `portcullis_app_passwords`).

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use rusqlite::{Connection, params};

use super::{AppPassword, AppPasswordStore};
use crate::AuthError;

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS portcullis_app_passwords (
    username TEXT NOT NULL,
    name TEXT NOT NULL,
    digest TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    PRIMARY KEY (username, name)
);";

/// App passwords in a SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteAppPasswords {
    conn: Arc<Mutex<Connection>>,
}

fn failed(e: impl std::fmt::Display) -> AuthError {
    AuthError::AppPasswords(e.to_string())
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl SqliteAppPasswords {
    /// Open (creating the table when absent) the file at `path`.
    pub fn open(path: &Path) -> Result<Self, AuthError> {
        let conn = Connection::open(path).map_err(failed)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(failed)?;
        conn.execute_batch(SCHEMA).map_err(failed)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, AuthError> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || f(&conn.lock().unwrap_or_else(PoisonError::into_inner)))
            .await
            .map_err(failed)?
            .map_err(failed)
    }
}

#[async_trait]
impl AppPasswordStore for SqliteAppPasswords {
    async fn create(&self, record: &AppPassword) -> Result<(), AuthError> {
        let r = record.clone();
        let inserted = self
            .with(move |c| {
                c.execute(
                    "INSERT OR IGNORE INTO portcullis_app_passwords (username, name, digest, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![r.username, r.name, r.digest, to_i64(r.created_at), r.expires_at.map(to_i64)],
                )
            })
            .await?;
        if inserted == 0 {
            return Err(AuthError::AppPasswordExists(record.name.clone()));
        }
        Ok(())
    }

    async fn list(&self, username: &str) -> Result<Vec<AppPassword>, AuthError> {
        let username = username.to_owned();
        self.with(move |c| {
            let mut stmt = c.prepare(
                "SELECT username, name, digest, created_at, expires_at FROM portcullis_app_passwords WHERE username = ?1 ORDER BY name",
            )?;
            stmt.query_map(params![username], |row| {
                Ok(AppPassword {
                    username: row.get(0)?,
                    name: row.get(1)?,
                    digest: row.get(2)?,
                    created_at: u64::try_from(row.get::<_, i64>(3)?).unwrap_or(0),
                    expires_at: row.get::<_, Option<i64>>(4)?.map(|e| u64::try_from(e).unwrap_or(0)),
                })
            })?
            .collect()
        })
        .await
    }

    async fn revoke(&self, username: &str, name: &str) -> Result<bool, AuthError> {
        let (username, name) = (username.to_owned(), name.to_owned());
        self.with(move |c| {
            c.execute(
                "DELETE FROM portcullis_app_passwords WHERE username = ?1 AND name = ?2",
                params![username, name],
            )
            .map(|n| n > 0)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn create_list_revoke_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite3");
        let store = SqliteAppPasswords::open(&path).unwrap();
        let (password, record) = super::super::generate([1; 32], "alice", "laptop", 10, None);
        store.create(&record).await.unwrap();
        assert!(matches!(
            store.create(&record).await,
            Err(AuthError::AppPasswordExists(_))
        ));
        let store = SqliteAppPasswords::open(&path).unwrap();
        let listed = store.list("alice").await.unwrap();
        assert_eq!(listed, [record]);
        assert!(super::super::matches(&listed, password.expose(), 11));
        assert!(store.list("bob").await.unwrap().is_empty());
        assert!(store.revoke("alice", "laptop").await.unwrap());
        assert!(!store.revoke("alice", "laptop").await.unwrap());
        assert!(store.list("alice").await.unwrap().is_empty());
    }
}
