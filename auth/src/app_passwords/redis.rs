//! App passwords in Redis with the sessions: one hash per user, `<prefix>app-passwords:<user>`,
//! field = name, value = the record as JSON.

use std::sync::Arc;

use async_trait::async_trait;
use portcullis_session::RedisStore;

use super::{AppPassword, AppPasswordStore};
use crate::AuthError;

/// App passwords shared by replicas through Redis.
#[derive(Debug, Clone)]
pub struct RedisAppPasswords {
    store: Arc<RedisStore>,
}

fn failed(e: impl std::fmt::Display) -> AuthError {
    AuthError::AppPasswords(format!("redis: {e}"))
}

impl RedisAppPasswords {
    /// Use the connection and key prefix of `store`.
    pub fn new(store: Arc<RedisStore>) -> Self {
        Self { store }
    }

    fn key(&self, username: &str) -> String {
        format!("{}app-passwords:{username}", self.store.key_prefix())
    }

    async fn run<T: ::redis::FromRedisValue>(&self, cmd: ::redis::Cmd) -> Result<T, AuthError> {
        let mut conn = self.store.connection().await.map_err(failed)?;
        match tokio::time::timeout(self.store.timeout(), cmd.query_async(&mut conn)).await {
            Ok(r) => r.map_err(failed),
            Err(_) => Err(failed("timed out")),
        }
    }
}

#[async_trait]
impl AppPasswordStore for RedisAppPasswords {
    async fn create(&self, record: &AppPassword) -> Result<(), AuthError> {
        let json = serde_json::to_string(record).map_err(failed)?;
        let mut cmd = ::redis::cmd("HSETNX");
        cmd.arg(self.key(&record.username))
            .arg(&record.name)
            .arg(json);
        let created: i64 = self.run(cmd).await?;
        if created == 0 {
            return Err(AuthError::AppPasswordExists(record.name.clone()));
        }
        Ok(())
    }

    async fn list(&self, username: &str) -> Result<Vec<AppPassword>, AuthError> {
        let mut cmd = ::redis::cmd("HVALS");
        cmd.arg(self.key(username));
        let values: Vec<String> = self.run(cmd).await?;
        let mut records: Vec<AppPassword> = values
            .iter()
            .map(|v| serde_json::from_str(v).map_err(failed))
            .collect::<Result<_, _>>()?;
        records.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(records)
    }

    async fn revoke(&self, username: &str, name: &str) -> Result<bool, AuthError> {
        let mut cmd = ::redis::cmd("HDEL");
        cmd.arg(self.key(username)).arg(name);
        let removed: i64 = self.run(cmd).await?;
        Ok(removed > 0)
    }
}
