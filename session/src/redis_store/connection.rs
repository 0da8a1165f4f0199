//! The connection every Redis-backed store shares: one lazily created `ConnectionManager`
//! (following Sentinel when configured), every operation bounded by `RedisConfig::timeout`.

use std::fmt;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::RedisConfig;
use crate::StoreError;

/// A Redis connection built from a [`RedisConfig`]. Connects lazily (a server starts while Redis is
/// down and recovers when it comes back); under Sentinel, a failure makes the next operation ask
/// the sentinels for the (possibly new) master.
pub(crate) struct Link {
    config: RedisConfig,
    manager: tokio::sync::Mutex<Option<ConnectionManager>>,
}

impl fmt::Debug for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Link")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Link {
    pub(crate) fn new(config: RedisConfig) -> Self {
        Self {
            config,
            manager: tokio::sync::Mutex::new(None),
        }
    }

    pub(crate) fn config(&self) -> &RedisConfig {
        &self.config
    }

    fn manager_config(&self) -> ConnectionManagerConfig {
        ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.config.timeout))
            .set_response_timeout(Some(self.config.timeout))
            .set_number_of_retries(self.config.max_retries)
            .set_max_delay(Duration::from_millis(500))
    }

    async fn resolve_client(&self) -> Result<redis::Client, StoreError> {
        match &self.config.sentinel {
            None => redis::Client::open(self.config.url(&self.config.host, self.config.port))
                .map_err(unavailable),
            Some(sentinel) => {
                let mut last_error = None;
                for (host, port) in &sentinel.nodes {
                    let mut sentinel_config = RedisConfig {
                        username: sentinel.sentinel_username.clone(),
                        password: sentinel.sentinel_password.clone(),
                        database_index: 0,
                        ..self.config.clone()
                    };
                    sentinel_config.sentinel = None;
                    let client = redis::Client::open(sentinel_config.url(host, *port))
                        .map_err(unavailable)?;
                    let master = async {
                        let mut conn = client.get_multiplexed_async_connection().await?;
                        redis::cmd("SENTINEL")
                            .arg("get-master-addr-by-name")
                            .arg(&sentinel.sentinel_name)
                            .query_async::<Option<(String, u16)>>(&mut conn)
                            .await
                    };
                    match tokio::time::timeout(self.config.timeout, master).await {
                        Ok(Ok(Some((host, port)))) => {
                            return redis::Client::open(self.config.url(&host, port))
                                .map_err(unavailable);
                        }
                        Ok(Ok(None)) => {
                            last_error = Some(format!(
                                "sentinel {host}:{port} does not know {}",
                                sentinel.sentinel_name
                            ))
                        }
                        Ok(Err(e)) => last_error = Some(e.to_string()),
                        Err(_) => last_error = Some(format!("sentinel {host}:{port} timed out")),
                    }
                }
                Err(StoreError::Unavailable(
                    last_error.unwrap_or_else(|| "no sentinel nodes".into()),
                ))
            }
        }
    }

    /// The connection manager, created on first use.
    pub(crate) async fn conn(&self) -> Result<ConnectionManager, StoreError> {
        let mut guard = self.manager.lock().await;
        if let Some(c) = guard.as_ref() {
            return Ok(c.clone());
        }
        let client = self.resolve_client().await?;
        let manager = ConnectionManager::new_lazy_with_config(client, self.manager_config())
            .map_err(unavailable)?;
        *guard = Some(manager.clone());
        Ok(manager)
    }

    /// Forget the connection after a failure under Sentinel, so the next operation asks the
    /// sentinels for the (possibly new) master.
    async fn reset_after(&self, error: &StoreError) {
        if self.config.sentinel.is_some()
            && matches!(error, StoreError::Unavailable(_) | StoreError::Timeout)
        {
            *self.manager.lock().await = None;
        }
    }

    /// Run `op` on the connection, bounded by the configured timeout. A Redis error is
    /// [`StoreError::Unavailable`] (or [`StoreError::Timeout`]), never a default answer.
    pub(crate) async fn run<T, F, Fut>(&self, op: F) -> Result<T, StoreError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let result = async {
            let conn = self.conn().await?;
            match tokio::time::timeout(self.config.timeout, op(conn)).await {
                Ok(Ok(v)) => Ok(v),
                Ok(Err(e)) => Err(unavailable(e)),
                Err(_) => Err(StoreError::Timeout),
            }
        }
        .await;
        if let Err(e) = &result {
            self.reset_after(e).await;
        }
        result
    }
}

pub(crate) fn unavailable(e: redis::RedisError) -> StoreError {
    if e.is_timeout() {
        StoreError::Timeout
    } else {
        StoreError::Unavailable(e.to_string())
    }
}
