//! Regulation shared by replicas through Redis: a sorted set of attempts per subject (scored by
//! time, trimmed to `find_time`), a ban key per subject that expires with the ban, and one sorted
//! set of active bans (scored by their end) so that counting them never scans the keyspace. Every
//! key starts with the session store's key prefix, so deployments that share a Redis database with
//! different prefixes share no bans.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use portcullis_session::RedisStore;

use super::RegulationConfig;

/// Orders attempts recorded by this process within one second.
static SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// Why a Redis regulation call failed.
#[derive(Debug, thiserror::Error)]
pub(super) enum RedisFailure {
    #[error(transparent)]
    Store(#[from] portcullis_session::StoreError),
    #[error(transparent)]
    Redis(#[from] ::redis::RedisError),
    #[error("timed out")]
    Timeout,
}

#[derive(Clone)]
pub(super) struct RedisRegulator {
    config: RegulationConfig,
    store: Arc<RedisStore>,
}

/// KEYS: attempts, ban, bans index. ARGV: now, success, member, find_time, max_retries, ban_time,
/// ban enabled. Returns the end of a ban imposed now, else 0.
const RECORD_SCRIPT: &str = r"
local now = tonumber(ARGV[1])
local find_time = tonumber(ARGV[4])
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - find_time - 1)
redis.call('EXPIRE', KEYS[1], find_time + 1)
if ARGV[2] == '1' or ARGV[7] == '0' then return 0 end
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local max = tonumber(ARGV[5])
if max == 0 then return 0 end
local recent = redis.call('ZREVRANGEBYSCORE', KEYS[1], '+inf', now - find_time, 'WITHSCORES', 'LIMIT', 0, max)
local failures = 0
local latest = nil
for i = 1, #recent, 2 do
  if string.sub(recent[i], -2) == ':1' then break end
  failures = failures + 1
  if latest == nil then latest = tonumber(recent[i + 1]) end
end
if failures >= max then
  local until_ts = latest + tonumber(ARGV[6])
  if until_ts > now then
    redis.call('SET', KEYS[2], until_ts, 'EXAT', until_ts)
    redis.call('ZADD', KEYS[3], until_ts, KEYS[2])
    redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
  end
  return until_ts
end
return 0
";

impl RedisRegulator {
    pub(super) fn new(config: RegulationConfig, store: Arc<RedisStore>) -> Self {
        Self { config, store }
    }

    fn keys(&self, kind: &str, subject: &str) -> (String, String) {
        use sha2::Digest;
        let hash = hex::encode(sha2::Sha256::digest(subject.as_bytes()));
        let prefix = self.store.key_prefix();
        (
            format!("{prefix}-regulation:{kind}:{hash}"),
            format!("{prefix}-ban:{kind}:{hash}"),
        )
    }

    fn bans_index(&self) -> String {
        format!("{}-bans", self.store.key_prefix())
    }

    async fn bounded<T>(
        &self,
        f: impl std::future::Future<Output = ::redis::RedisResult<T>>,
    ) -> Result<T, RedisFailure> {
        match tokio::time::timeout(self.store.timeout(), f).await {
            Ok(result) => Ok(result?),
            Err(_) => Err(RedisFailure::Timeout),
        }
    }

    pub(super) async fn is_banned(
        &self,
        username: Option<&str>,
        ip: Option<IpAddr>,
        now: u64,
    ) -> Result<bool, RedisFailure> {
        let mut keys = Vec::new();
        if let Some(u) = username {
            keys.push(self.keys("user", u).1);
        }
        if let Some(ip) = ip {
            keys.push(self.keys("ip", &ip.to_string()).1);
        }
        if keys.is_empty() {
            return Ok(false);
        }
        let mut conn = self.store.connection().await?;
        let values: Vec<Option<u64>> = self
            .bounded(::redis::cmd("MGET").arg(&keys).query_async(&mut conn))
            .await?;
        Ok(values.into_iter().flatten().any(|until| until > now))
    }

    pub(super) async fn record(
        &self,
        username: &str,
        ip: Option<IpAddr>,
        success: bool,
        now: u64,
    ) -> Result<(), RedisFailure> {
        let cfg = self.config;
        let mut conn = self.store.connection().await?;
        // Fixed-width, so that members of equal score (the same second) still sort newest first
        // within this process; the last character is the outcome.
        let member = format!(
            "{now:020}:{:020}:{:016x}:{}",
            SEQUENCE.fetch_add(1, Ordering::Relaxed),
            rand::random::<u64>(),
            u8::from(success)
        );
        let mut subjects = Vec::new();
        if !username.is_empty() {
            subjects.push(("user", username.to_owned(), cfg.by_user));
        }
        if let Some(ip) = ip {
            subjects.push(("ip", ip.to_string(), cfg.by_ip));
        }
        let index = self.bans_index();
        for (kind, subject, ban_enabled) in subjects {
            let (attempts, ban) = self.keys(kind, &subject);
            let script = ::redis::Script::new(RECORD_SCRIPT);
            let mut invocation = script.prepare_invoke();
            invocation
                .key(&attempts)
                .key(&ban)
                .key(&index)
                .arg(now)
                .arg(u8::from(success))
                .arg(&member)
                .arg(cfg.find_time)
                .arg(cfg.max_retries)
                .arg(cfg.ban_time)
                .arg(u8::from(ban_enabled));
            let until: u64 = self.bounded(invocation.invoke_async(&mut conn)).await?;
            if until > 0 {
                tracing::warn!(
                    kind,
                    until,
                    "banned after repeated authentication failures (shared)"
                );
            }
        }
        Ok(())
    }

    /// Bans whose end lies after `now`: one `ZCOUNT` on the bans index.
    pub(super) async fn active_bans(&self, now: u64) -> Result<usize, RedisFailure> {
        let mut conn = self.store.connection().await?;
        self.bounded(
            ::redis::cmd("ZCOUNT")
                .arg(self.bans_index())
                .arg(format!("({now}"))
                .arg("+inf")
                .query_async(&mut conn),
        )
        .await
    }
}
