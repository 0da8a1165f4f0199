//! The Redis store (feature `redis`): sessions shared by every replica.
//!
//! - A session is a hash `<prefix>:<sha256(id)>` with `data` (AES-256-GCM of the JSON record, key
//!   derived from the session secret with HKDF-SHA256, the Redis key as associated data) and
//!   `last_activity` (plain integer, so recording activity is one `HSET` without re-encrypting). The
//!   key expires at the session's `expires_at` (`EXPIREAT`), so Redis needs no clean-up job.
//! - Each user has a sorted set `<prefix>-user:<sha256(lower-case username)>` of their session
//!   hashes scored by expiry, so "delete every session of this user" reaches every replica at once.
//! - One sorted set `<prefix>-index` holds every session hash scored by expiry, so counting the
//!   sessions (a metrics scrape) is a `ZCARD`, never a scan of the keyspace.
//! - Ids and usernames never appear in key names; a reader of the Redis database sees no session id
//!   and cannot forge or move a record.
//! - Every operation is bounded by `timeout`; a failure is an error (the caller fails closed). The
//!   connection manager reconnects by itself when Redis comes back.

use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use sha2::{Digest, Sha256};

use crate::{Session, SessionId, SessionStore, StoreError};

mod ceremony;
mod connection;
mod seal;
#[cfg(test)]
pub(crate) mod test_support;

pub(crate) use connection::Link;
pub(crate) use seal::Sealer;

/// TLS settings for the Redis connection.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct RedisTls {
    /// Skip certificate verification (testing only).
    pub skip_verify: bool,
}

impl fmt::Debug for RedisTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisTls")
            .field("skip_verify", &self.skip_verify)
            .finish()
    }
}

/// Redis Sentinel settings (`session.redis.high_availability`).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct RedisSentinel {
    /// The monitored master's name.
    pub sentinel_name: String,
    /// Sentinel username, if any.
    pub sentinel_username: Option<String>,
    /// Sentinel password, if any.
    pub sentinel_password: Option<String>,
    /// Sentinel nodes (host, port).
    pub nodes: Vec<(String, u16)>,
}

impl fmt::Debug for RedisSentinel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSentinel")
            .field("sentinel_name", &self.sentinel_name)
            .field("nodes", &self.nodes)
            .field(
                "sentinel_password",
                &self.sentinel_password.as_ref().map(|_| "[redacted]"),
            )
            .finish_non_exhaustive()
    }
}

/// Connection settings, as Authelia's `session.redis` names them.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// Host name or address; a unix socket path when `port` is 0.
    pub host: String,
    /// TCP port (6379).
    pub port: u16,
    /// ACL username.
    pub username: Option<String>,
    /// Password.
    pub password: Option<String>,
    /// Database number.
    pub database_index: i64,
    /// Bound on every operation and on connecting (5 s).
    pub timeout: Duration,
    /// Reconnection attempts per failure before an operation fails.
    pub max_retries: usize,
    /// TLS, when set.
    pub tls: Option<RedisTls>,
    /// Sentinel, when set: `host`/`port` are then ignored.
    pub sentinel: Option<RedisSentinel>,
    /// Key prefix (`portcullis-session`).
    pub key_prefix: String,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 6379,
            username: None,
            password: None,
            database_index: 0,
            timeout: Duration::from_secs(5),
            max_retries: 0,
            tls: None,
            sentinel: None,
            key_prefix: "portcullis-session".into(),
        }
    }
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .field("database_index", &self.database_index)
            .field("timeout", &self.timeout)
            .field("tls", &self.tls)
            .field("sentinel", &self.sentinel)
            .finish_non_exhaustive()
    }
}

fn percent(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

impl RedisConfig {
    /// The connection URL (contains the password: never log it).
    fn url(&self, host: &str, port: u16) -> String {
        let auth = match (&self.username, &self.password) {
            (Some(u), Some(p)) => format!("{}:{}@", percent(u), percent(p)),
            (None, Some(p)) => format!(":{}@", percent(p)),
            (Some(u), None) => format!("{}@", percent(u)),
            (None, None) => String::new(),
        };
        if port == 0 {
            let mut url = format!("redis+unix://{host}?db={}", self.database_index);
            if let Some(u) = &self.username {
                url.push_str(&format!("&user={}", percent(u)));
            }
            if let Some(p) = &self.password {
                url.push_str(&format!("&pass={}", percent(p)));
            }
            return url;
        }
        let scheme = match &self.tls {
            None => "redis",
            Some(_) => "rediss",
        };
        let insecure = match &self.tls {
            Some(t) if t.skip_verify => "#insecure",
            _ => "",
        };
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.to_owned()
        };
        format!(
            "{scheme}://{auth}{host}:{port}/{}{insecure}",
            self.database_index
        )
    }
}

/// The Redis session store.
pub struct RedisStore {
    link: Link,
    sealer: Sealer,
    /// Last activity written per session hash, so a busy session writes at most once per second.
    recent_touches: Mutex<std::collections::HashMap<String, u64>>,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("config", self.link.config())
            .finish_non_exhaustive()
    }
}

const PUT_SCRIPT: &str = r"
redis.call('HSET', KEYS[1], 'data', ARGV[1], 'last_activity', ARGV[2])
redis.call('EXPIREAT', KEYS[1], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[4])
local top = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
if top[2] then redis.call('EXPIREAT', KEYS[2], top[2]) end
return 1
";

const TOUCH_SCRIPT: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then
  local current = tonumber(redis.call('HGET', KEYS[1], 'last_activity') or '0')
  if tonumber(ARGV[1]) > current then redis.call('HSET', KEYS[1], 'last_activity', ARGV[1]) end
end
return 1
";

const MAX_RECENT_TOUCHES: usize = 100_000;

impl RedisStore {
    /// A store for `config`, encrypting with a key derived from `secret`. Connects lazily: the server
    /// starts while Redis is down and recovers when it comes back.
    pub fn new(config: RedisConfig, secret: &[u8]) -> Result<Self, StoreError> {
        let sealer = Sealer::derive(
            secret,
            b"portcullis-session-redis-v1",
            b"aes-256-gcm session records",
        )?;
        Ok(Self {
            link: Link::new(config),
            sealer,
            recent_touches: Mutex::new(std::collections::HashMap::new()),
        })
    }

    /// The store's connection (following Sentinel), for other shared state that belongs next to the
    /// sessions (regulation). Bound each use by [`RedisStore::timeout`].
    pub async fn connection(&self) -> Result<ConnectionManager, StoreError> {
        self.link.conn().await
    }

    /// The per-operation timeout.
    pub fn timeout(&self) -> Duration {
        self.link.config().timeout
    }

    /// The prefix of every key this store writes; regulation keys share it.
    pub fn key_prefix(&self) -> &str {
        &self.link.config().key_prefix
    }

    async fn run<T, F, Fut>(&self, op: F) -> Result<T, StoreError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        self.link.run(op).await
    }

    fn session_key(&self, id: &SessionId) -> (String, String) {
        let hash = hex::encode(Sha256::digest(id.as_str().as_bytes()));
        (format!("{}:{hash}", self.key_prefix()), hash)
    }

    fn index_key(&self) -> String {
        format!("{}-index", self.key_prefix())
    }

    fn user_key(&self, username: &str) -> String {
        let hash = hex::encode(Sha256::digest(username.to_lowercase().as_bytes()));
        format!("{}-user:{hash}", self.key_prefix())
    }

    fn seal(&self, key: &str, session: &Session) -> Result<Vec<u8>, StoreError> {
        let plain = serde_json::to_vec(session).map_err(|e| StoreError::Codec(e.to_string()))?;
        self.sealer.seal(key.as_bytes(), &plain)
    }

    fn open_record(&self, key: &str, data: &[u8]) -> Result<Session, StoreError> {
        let plain = self.sealer.open(key.as_bytes(), data)?;
        serde_json::from_slice(&plain).map_err(|e| StoreError::Codec(e.to_string()))
    }

    async fn load(&self, key: String, now: u64) -> Result<Option<Session>, StoreError> {
        let k = key.clone();
        let (data, last): (Option<Vec<u8>>, Option<u64>) = self
            .run(|mut c| async move {
                redis::cmd("HMGET")
                    .arg(&k)
                    .arg("data")
                    .arg("last_activity")
                    .query_async(&mut c)
                    .await
            })
            .await?;
        let Some(data) = data else { return Ok(None) };
        let mut session = match self.open_record(&key, &data) {
            Ok(s) => s,
            // A record we cannot authenticate is treated as absent (docs/reference/security.md R6.4).
            Err(_) => return Ok(None),
        };
        if let Some(last) = last {
            session.last_activity = session.last_activity.max(last);
        }
        if session.is_expired(now) {
            return Ok(None);
        }
        Ok(Some(session))
    }

    async fn scan_keys(&self) -> Result<Vec<String>, StoreError> {
        let pattern = format!("{}:*", self.key_prefix());
        self.run(|mut c| async move {
            let mut keys = Vec::new();
            let mut cursor: u64 = 0;
            loop {
                let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(1000)
                    .query_async(&mut c)
                    .await?;
                keys.extend(batch);
                if next == 0 {
                    break;
                }
                cursor = next;
            }
            Ok(keys)
        })
        .await
    }
}

#[async_trait]
impl SessionStore for RedisStore {
    fn shared_ceremonies(
        self: std::sync::Arc<Self>,
    ) -> Option<std::sync::Arc<dyn crate::CeremonyStore>> {
        Some(self)
    }

    async fn get(&self, id: &SessionId, now: u64) -> Result<Option<Session>, StoreError> {
        let (key, _) = self.session_key(id);
        self.load(key, now).await
    }

    async fn put(&self, session: &Session) -> Result<(), StoreError> {
        let (key, hash) = self.session_key(&session.id);
        let sealed = self.seal(&key, session)?;
        let user_key = self.user_key(&session.identity.username);
        let index = self.index_key();
        let (last, expires) = (session.last_activity, session.expires_at);
        self.run(|mut c| async move {
            redis::Script::new(PUT_SCRIPT)
                .key(&key)
                .key(&user_key)
                .key(&index)
                .arg(sealed)
                .arg(last)
                .arg(expires)
                .arg(&hash)
                .invoke_async::<i64>(&mut c)
                .await
        })
        .await
        .map(|_| ())
    }

    async fn touch(&self, id: &SessionId, last_activity: u64) -> Result<(), StoreError> {
        let (key, hash) = self.session_key(id);
        {
            let mut recent = self
                .recent_touches
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if recent.get(&hash).is_some_and(|&t| t >= last_activity) {
                return Ok(());
            }
            if recent.len() >= MAX_RECENT_TOUCHES {
                recent.clear();
            }
            recent.insert(hash, last_activity);
        }
        self.run(|mut c| async move {
            redis::Script::new(TOUCH_SCRIPT)
                .key(&key)
                .arg(last_activity)
                .invoke_async::<i64>(&mut c)
                .await
        })
        .await
        .map(|_| ())
    }

    async fn delete(&self, id: &SessionId) -> Result<(), StoreError> {
        let (key, hash) = self.session_key(id);
        let index = self.index_key();
        self.run(|mut c| async move {
            redis::pipe()
                .del(&key)
                .zrem(&index, &hash)
                .query_async::<(i64, i64)>(&mut c)
                .await
        })
        .await
        .map(|_| ())
    }

    async fn delete_user(&self, username: &str) -> Result<usize, StoreError> {
        let user_key = self.user_key(username);
        let prefix = self.key_prefix().to_owned();
        let index = self.index_key();
        self.run(|mut c| async move {
            let hashes: Vec<String> = c.zrange(&user_key, 0, -1).await?;
            let mut deleted = 0usize;
            for hash in hashes {
                deleted += c.del::<_, usize>(format!("{prefix}:{hash}")).await?;
                c.zrem::<_, _, i64>(&index, &hash).await?;
            }
            c.del::<_, i64>(&user_key).await?;
            Ok(deleted)
        })
        .await
    }

    async fn list(&self, username: Option<&str>, now: u64) -> Result<Vec<Session>, StoreError> {
        let keys = match username {
            Some(u) => {
                let user_key = self.user_key(u);
                let prefix = self.key_prefix().to_owned();
                let hashes: Vec<String> = self
                    .run(|mut c| async move { c.zrange(&user_key, 0, -1).await })
                    .await?;
                hashes
                    .into_iter()
                    .map(|h| format!("{prefix}:{h}"))
                    .collect()
            }
            None => self.scan_keys().await?,
        };
        let mut out = Vec::new();
        for key in keys {
            if let Some(s) = self.load(key, now).await? {
                out.push(s);
            }
        }
        Ok(out)
    }

    async fn count(&self, now: u64) -> Result<usize, StoreError> {
        let index = self.index_key();
        self.run(|mut c| async move {
            let (_, count): (i64, usize) = redis::pipe()
                .zrembyscore(&index, "-inf", now)
                .zcard(&index)
                .query_async(&mut c)
                .await?;
            Ok(count)
        })
        .await
    }

    async fn health(&self) -> Result<(), StoreError> {
        self.run(|mut c| async move { redis::cmd("PING").query_async::<String>(&mut c).await })
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests;
