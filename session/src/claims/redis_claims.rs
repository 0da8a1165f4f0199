//! `RedisClaimsStore`: outpost sessions shared by every replica (feature `redis`).
//!
//! Layout, under a key prefix `P` (default [`DEFAULT_CLAIMS_KEY_PREFIX`]):
//!
//! - A session is a string `P:<sha256(id)>`, written with `SET … EX ttl` where
//!   `ttl = expires_at - now`, so Redis drops it when it expires. Its value is
//!   `v1:<sub index>:<sid index>:` followed by the AES-256-GCM seal (key derived from the secret
//!   with HKDF-SHA256; associated data: the Redis key and that header) of the JSON record
//!   (provider, sub, sid, expiry, data). The header names the session's index sets, so the scripts
//!   below can keep them in step without decrypting anything.
//! - Index sets `P-sub:<hmac(provider, sub)>` and `P-sid:<hmac(provider, sid)>` (sorted sets of
//!   session hashes scored by `expires_at`), and `P-index` holding every session, for `count`.
//!   Index names are keyed hashes (HMAC-SHA256 under another key derived from the secret): a reader
//!   of the database cannot test whether a given subject has sessions. Each set's expiry is only
//!   ever extended, to at least its longest-lived member; members expired by score (for more than
//!   a grace of five minutes, against clock skew between replicas) are pruned on every `put`.
//! - Every change is one Lua script, so it is atomic: a `put` that moves a session to another
//!   `sub` or `sid` removes it from the old sets in the same step, and `delete_sub`/`delete_sid`
//!   delete the members and the set at once. Two replicas logging one user out at the same time
//!   are serialised by Redis: one deletes everything, the other finds nothing, and a session is
//!   never left behind. (The scripts touch the member keys they read, so the store needs a single
//!   Redis or a Sentinel-managed master, not Redis Cluster, like [`RedisStore`](crate::RedisStore).)
//! - Every operation is bounded by `RedisConfig::timeout`; a failure is an error (the caller fails
//!   closed), never a cached or default answer.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{ClaimsSession, ClaimsStore, refuse_expired};
use crate::redis_store::{Link, Sealer};
use crate::{RedisConfig, SessionId, StoreError};

/// The default key prefix of a [`RedisClaimsStore`], distinct from the verify server's
/// `portcullis-session`.
pub const DEFAULT_CLAIMS_KEY_PREFIX: &str = "portcullis-outpost";

const HKDF_SALT: &[u8] = b"portcullis-outpost-redis-v1";
const SEAL_INFO: &[u8] = b"aes-256-gcm outpost session records";
const INDEX_INFO: &[u8] = b"hmac-sha256 outpost index names";

/// The longest `EX` sent to Redis (100 years): a later `expires_at` is still the record's, Redis
/// just drops the key then.
const MAX_TTL: u64 = 100 * 365 * 24 * 3600;

/// Index members are pruned only once expired for this long (by the caller's clock), so a replica
/// whose clock runs ahead cannot take a live session out of an index (and out of reach of a
/// logout). Members expired for less are harmless: their values are gone or refused by `get`.
const PRUNE_GRACE: u64 = 300;

/// `KEYS`: session, sub set, `P-index`, then the sid set when the session has a `sid`.
/// `ARGV`: value, ttl, member (session hash), expires_at, now, prefix, prune (members scored at or
/// below it are dropped from the sets).
const PUT_SCRIPT: &str = r"
local function add(key, member, score, now)
  redis.call('ZADD', key, score, member)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', ARGV[7])
  local top = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  if top[2] then
    local ttl = math.floor(tonumber(top[2]) - now)
    if ttl > 0 and redis.call('TTL', key) < ttl then redis.call('EXPIRE', key, ttl) end
  end
end
local member, now, prefix = ARGV[3], tonumber(ARGV[5]), ARGV[6]
local old = redis.call('GET', KEYS[1])
if old then
  local sub, sid = string.match(old, '^v1:(%x+):(%x*):')
  if sub and prefix .. '-sub:' .. sub ~= KEYS[2] then
    redis.call('ZREM', prefix .. '-sub:' .. sub, member)
  end
  if sid and sid ~= '' and prefix .. '-sid:' .. sid ~= KEYS[4] then
    redis.call('ZREM', prefix .. '-sid:' .. sid, member)
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
add(KEYS[2], member, ARGV[4], now)
add(KEYS[3], member, ARGV[4], now)
if KEYS[4] then add(KEYS[4], member, ARGV[4], now) end
return 1
";

/// `KEYS`: session, `P-index`. `ARGV`: member, prefix. Returns 1 when the session was present.
const DELETE_SCRIPT: &str = r"
local member, prefix = ARGV[1], ARGV[2]
redis.call('ZREM', KEYS[2], member)
local old = redis.call('GET', KEYS[1])
if not old then return 0 end
local sub, sid = string.match(old, '^v1:(%x+):(%x*):')
if sub then redis.call('ZREM', prefix .. '-sub:' .. sub, member) end
if sid and sid ~= '' then redis.call('ZREM', prefix .. '-sid:' .. sid, member) end
redis.call('DEL', KEYS[1])
return 1
";

/// `KEYS`: the index set, `P-index`. `ARGV`: prefix, `sub` or `sid` (which index this is), the
/// set's hash. Deletes every member still filed under this index (a member whose header names
/// another one is stale and only leaves the set; one without a readable header is deleted), then
/// the set. Returns how many sessions were deleted.
const DELETE_INDEXED_SCRIPT: &str = r"
local prefix, kind, hash = ARGV[1], ARGV[2], ARGV[3]
local deleted = 0
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local key = prefix .. ':' .. member
  local value = redis.call('GET', key)
  if value then
    local sub, sid = string.match(value, '^v1:(%x+):(%x*):')
    local mine = sid
    if kind == 'sub' then mine = sub end
    if mine == nil or mine == hash then
      redis.call('DEL', key)
      redis.call('ZREM', KEYS[2], member)
      deleted = deleted + 1
      if kind == 'sub' and sid and sid ~= '' then
        redis.call('ZREM', prefix .. '-sid:' .. sid, member)
      elseif kind == 'sid' and sub then
        redis.call('ZREM', prefix .. '-sub:' .. sub, member)
      end
    end
  else
    redis.call('ZREM', KEYS[2], member)
  end
end
redis.call('DEL', KEYS[1])
return deleted
";

/// What is sealed: everything but the id, which names the key.
#[derive(Serialize)]
struct RecordRef<'a> {
    provider: &'a str,
    sub: &'a str,
    sid: Option<&'a str>,
    expires_at: u64,
    data: &'a str,
}

#[derive(Deserialize)]
struct Record {
    provider: String,
    sub: String,
    sid: Option<String>,
    expires_at: u64,
    data: String,
}

/// Outpost sessions in Redis, shared by every replica: a sign-out or back-channel logout on one
/// replica holds on all of them at once. See the module documentation for the layout.
///
/// Built from the same [`RedisConfig`] as [`RedisStore`](crate::RedisStore) (the same connection
/// code: lazy `ConnectionManager`, Sentinel, TLS, timeouts), but under its own key prefix:
/// `config.key_prefix` names the verify server's keys and is not used here.
pub struct RedisClaimsStore {
    link: Link,
    sealer: Sealer,
    /// HMAC key of the index names.
    index_key: [u8; 32],
    key_prefix: String,
}

impl fmt::Debug for RedisClaimsStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisClaimsStore")
            .field("config", self.link.config())
            .field("key_prefix", &self.key_prefix)
            .finish_non_exhaustive()
    }
}

impl RedisClaimsStore {
    /// A store for `config` under [`DEFAULT_CLAIMS_KEY_PREFIX`], encrypting with a key derived from
    /// `secret` (every replica needs the same one). Connects lazily: the outpost starts while Redis
    /// is down and recovers when it comes back.
    pub fn new(config: RedisConfig, secret: &[u8]) -> Result<Self, StoreError> {
        Self::with_key_prefix(config, secret, DEFAULT_CLAIMS_KEY_PREFIX)
    }

    /// [`RedisClaimsStore::new`] under another key prefix. An empty prefix, or one equal to
    /// `config.key_prefix` (the verify server's sessions), is refused.
    pub fn with_key_prefix(
        config: RedisConfig,
        secret: &[u8],
        key_prefix: &str,
    ) -> Result<Self, StoreError> {
        if key_prefix.is_empty() || key_prefix == config.key_prefix {
            return Err(StoreError::Backend(format!(
                "the outpost's Redis key prefix must be non-empty and differ from the session \
                 store's ({:?})",
                config.key_prefix
            )));
        }
        let sealer = Sealer::derive(secret, HKDF_SALT, SEAL_INFO)?;
        let mut index_key = [0u8; 32];
        hkdf::Hkdf::<Sha256>::new(Some(HKDF_SALT), secret)
            .expand(INDEX_INFO, &mut index_key)
            .map_err(|_| StoreError::Backend("key derivation failed".into()))?;
        Ok(Self {
            link: Link::new(config),
            sealer,
            index_key,
            key_prefix: key_prefix.to_owned(),
        })
    }

    /// The prefix of every key this store writes.
    pub fn key_prefix(&self) -> &str {
        &self.key_prefix
    }

    /// The per-operation timeout.
    pub fn timeout(&self) -> Duration {
        self.link.config().timeout
    }

    /// The session's key and its member name in the index sets.
    pub(super) fn session_key(&self, id: &SessionId) -> (String, String) {
        let hash = hex::encode(Sha256::digest(id.as_str().as_bytes()));
        (format!("{}:{hash}", self.key_prefix), hash)
    }

    /// HMAC-SHA256 (HKDF-Extract is HMAC with the salt as key) of `kind`, `provider` and `value`,
    /// length-prefixed so that no two triples meet.
    pub(super) fn index_hash(&self, kind: &str, provider: &str, value: &str) -> String {
        let message = format!("{kind}:{}:{provider}{value}", provider.len());
        let (mac, _) = hkdf::Hkdf::<Sha256>::extract(Some(&self.index_key), message.as_bytes());
        hex::encode(mac)
    }

    pub(super) fn index_key(&self, kind: &str, hash: &str) -> String {
        format!("{}-{kind}:{hash}", self.key_prefix)
    }

    fn all_key(&self) -> String {
        format!("{}-index", self.key_prefix)
    }

    /// The associated data of a record: its key and its header.
    fn aad(key: &str, header: &[u8]) -> Vec<u8> {
        let mut aad = Vec::with_capacity(key.len() + 1 + header.len());
        aad.extend_from_slice(key.as_bytes());
        aad.push(b'\n');
        aad.extend_from_slice(header);
        aad
    }

    fn seal(
        &self,
        key: &str,
        header: &str,
        session: &ClaimsSession,
    ) -> Result<Vec<u8>, StoreError> {
        let record = RecordRef {
            provider: &session.provider,
            sub: &session.sub,
            sid: session.sid.as_deref(),
            expires_at: session.expires_at,
            data: &session.data,
        };
        let plain = serde_json::to_vec(&record).map_err(|e| StoreError::Codec(e.to_string()))?;
        let sealed = self
            .sealer
            .seal(&Self::aad(key, header.as_bytes()), &plain)?;
        let mut value = Vec::with_capacity(header.len() + sealed.len());
        value.extend_from_slice(header.as_bytes());
        value.extend_from_slice(&sealed);
        Ok(value)
    }

    /// The record in `value`, or a [`StoreError::Codec`] when it does not parse or authenticate.
    fn open(&self, key: &str, value: &[u8]) -> Result<Record, StoreError> {
        let header_len = header_len(value)
            .ok_or_else(|| StoreError::Codec("record header unreadable".into()))?;
        let (header, sealed) = value.split_at(header_len);
        let plain = self.sealer.open(&Self::aad(key, header), sealed)?;
        serde_json::from_slice(&plain).map_err(|e| StoreError::Codec(e.to_string()))
    }

    async fn delete_indexed(&self, kind: &'static str, hash: String) -> Result<usize, StoreError> {
        let set = self.index_key(kind, &hash);
        let all = self.all_key();
        let prefix = self.key_prefix.clone();
        self.link
            .run(|mut c| async move {
                redis::Script::new(DELETE_INDEXED_SCRIPT)
                    .key(&set)
                    .key(&all)
                    .arg(&prefix)
                    .arg(kind)
                    .arg(&hash)
                    .invoke_async::<usize>(&mut c)
                    .await
            })
            .await
    }
}

/// The length of `v1:<hex>:<hex or nothing>:` at the start of `value`.
fn header_len(value: &[u8]) -> Option<usize> {
    let rest = value.strip_prefix(b"v1:")?;
    let sub = rest.iter().position(|&b| b == b':')?;
    let after_sub = rest.get(sub + 1..)?;
    let sid = after_sub.iter().position(|&b| b == b':')?;
    let hex = |part: &[u8]| part.iter().all(u8::is_ascii_hexdigit);
    (sub > 0 && hex(&rest[..sub]) && hex(&after_sub[..sid])).then_some(3 + sub + 1 + sid + 1)
}

#[async_trait]
impl ClaimsStore for RedisClaimsStore {
    async fn get(&self, id: &SessionId, now: u64) -> Result<Option<ClaimsSession>, StoreError> {
        let (key, _) = self.session_key(id);
        let k = key.clone();
        let value: Option<Vec<u8>> = self
            .link
            .run(|mut c| async move { redis::cmd("GET").arg(&k).query_async(&mut c).await })
            .await?;
        let Some(value) = value else {
            return Ok(None);
        };
        // A record we cannot authenticate is treated as absent (docs/reference/security.md R6.4).
        let Ok(record) = self.open(&key, &value) else {
            return Ok(None);
        };
        if now >= record.expires_at {
            return Ok(None);
        }
        Ok(Some(ClaimsSession {
            id: id.clone(),
            provider: record.provider,
            sub: record.sub,
            sid: record.sid,
            expires_at: record.expires_at,
            data: record.data,
        }))
    }

    async fn put(&self, session: &ClaimsSession, now: u64) -> Result<(), StoreError> {
        refuse_expired(session, now)?;
        let ttl = (session.expires_at - now).min(MAX_TTL);
        let (key, member) = self.session_key(&session.id);
        let sub_hash = self.index_hash("sub", &session.provider, &session.sub);
        let sid_hash = session
            .sid
            .as_deref()
            .map(|sid| self.index_hash("sid", &session.provider, sid));
        let header = format!("v1:{sub_hash}:{}:", sid_hash.as_deref().unwrap_or(""));
        let value = self.seal(&key, &header, session)?;
        let sub_set = self.index_key("sub", &sub_hash);
        let sid_set = sid_hash.map(|hash| self.index_key("sid", &hash));
        let all = self.all_key();
        let prefix = self.key_prefix.clone();
        let expires_at = session.expires_at;
        self.link
            .run(|mut c| async move {
                let script = redis::Script::new(PUT_SCRIPT);
                let mut invocation = script.key(&key);
                invocation.key(&sub_set).key(&all);
                if let Some(sid_set) = &sid_set {
                    invocation.key(sid_set);
                }
                invocation
                    .arg(value)
                    .arg(ttl)
                    .arg(&member)
                    .arg(expires_at)
                    .arg(now)
                    .arg(&prefix)
                    .arg(now.saturating_sub(PRUNE_GRACE))
                    .invoke_async::<i64>(&mut c)
                    .await
            })
            .await
            .map(|_| ())
    }

    async fn delete(&self, id: &SessionId) -> Result<bool, StoreError> {
        let (key, member) = self.session_key(id);
        let all = self.all_key();
        let prefix = self.key_prefix.clone();
        self.link
            .run(|mut c| async move {
                redis::Script::new(DELETE_SCRIPT)
                    .key(&key)
                    .key(&all)
                    .arg(&member)
                    .arg(&prefix)
                    .invoke_async::<i64>(&mut c)
                    .await
            })
            .await
            .map(|deleted| deleted > 0)
    }

    async fn delete_sub(&self, provider: &str, sub: &str) -> Result<usize, StoreError> {
        self.delete_indexed("sub", self.index_hash("sub", provider, sub))
            .await
    }

    async fn delete_sid(&self, provider: &str, sid: &str) -> Result<usize, StoreError> {
        self.delete_indexed("sid", self.index_hash("sid", provider, sid))
            .await
    }

    async fn count(&self, now: u64) -> Result<usize, StoreError> {
        let all = self.all_key();
        self.link
            .run(|mut c| async move {
                let (_, count): (i64, usize) = redis::pipe()
                    .atomic()
                    .zrembyscore(&all, "-inf", now.saturating_sub(PRUNE_GRACE))
                    .zcount(&all, format!("({now}"), "+inf")
                    .query_async(&mut c)
                    .await?;
                Ok(count)
            })
            .await
    }

    async fn health(&self) -> Result<(), StoreError> {
        self.link
            .run(|mut c| async move { redis::cmd("PING").query_async::<String>(&mut c).await })
            .await
            .map(|_| ())
    }
}
