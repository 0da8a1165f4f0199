//! The OpenID provider's state in Redis (feature `redis`), next to the sessions, so that every
//! replica can redeem a code another issued and a revocation holds everywhere at once.
//!
//! Keys start with the session store's prefix: a record is a hash `<prefix>oidc:<kind>:<key>`
//! (family, active flag, expiry, value) that expires with the record; a family is a set
//! `<prefix>oidc-family:<family>` of its records' keys; subjects are `<prefix>oidc-subject:…` and
//! kept values `<prefix>oidc-kept:…`, written once with `SET NX`. Values are stored as the server
//! gives them; the server encrypts what is secret (a generated signing key) before keeping it.

use std::sync::Arc;

use async_trait::async_trait;
use portcullis_oidc::OidcError;
use portcullis_oidc::store::{Consumed, OidcStore, Record, RecordKind};
use portcullis_session::RedisStore;

/// KEYS: record, family set. ARGV: family, value, expires_at.
const INSERT: &str = r"
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'f', ARGV[1], 'a', '1', 'e', ARGV[3], 'v', ARGV[2])
redis.call('EXPIREAT', KEYS[1], tonumber(ARGV[3]))
redis.call('SADD', KEYS[2], KEYS[1])
local current = redis.call('EXPIRETIME', KEYS[2])
if current < tonumber(ARGV[3]) then redis.call('EXPIREAT', KEYS[2], tonumber(ARGV[3])) end
return 1
";

/// KEYS: record. ARGV: value, expires_at, now. Inserts only when absent or expired: 1 when it did.
const INSERT_NEW: &str = r"
local e = redis.call('HGET', KEYS[1], 'e')
if e and tonumber(e) > tonumber(ARGV[3]) then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'f', KEYS[1], 'a', '1', 'e', ARGV[2], 'v', ARGV[1])
redis.call('EXPIREAT', KEYS[1], tonumber(ARGV[2]))
return 1
";

/// KEYS: record. ARGV: now. Returns {0} missing, {1, f, e, v} fresh (now used), {2, f, e, v} replayed.
const CONSUME: &str = r"
local fields = redis.call('HMGET', KEYS[1], 'f', 'a', 'e', 'v')
if not fields[1] or tonumber(fields[3]) <= tonumber(ARGV[1]) then return {0} end
if fields[2] == '1' then
  redis.call('HSET', KEYS[1], 'a', '0')
  return {1, fields[1], fields[3], fields[4]}
end
return {2, fields[1], fields[3], fields[4]}
";

/// KEYS: family set.
const REVOKE: &str = r"
local members = redis.call('SMEMBERS', KEYS[1])
for _, key in ipairs(members) do
  if redis.call('EXISTS', key) == 1 then redis.call('HSET', key, 'a', '0') end
end
return #members
";

/// KEYS: owner set. ARGV: member, expires_at (the set lives as long as its longest member).
const LINK: &str = r"
redis.call('SADD', KEYS[1], ARGV[1])
local current = redis.call('EXPIRETIME', KEYS[1])
if current < tonumber(ARGV[2]) then redis.call('EXPIREAT', KEYS[1], tonumber(ARGV[2])) end
return 1
";

/// KEYS: owner set. Returns its members and deletes it.
const TAKE: &str = r"
local members = redis.call('SMEMBERS', KEYS[1])
redis.call('DEL', KEYS[1])
return members
";

/// The provider's state in the sessions' Redis.
#[derive(Debug, Clone)]
pub struct RedisOidcStore {
    store: Arc<RedisStore>,
    /// The SQLite file of `storage.local.path`: when it is an Authelia database, its users'
    /// subject identifiers are carried over into Redis on first use, so applications keep
    /// recognising them.
    seed: Option<portcullis_oidc::sqlite::SqliteOidcStore>,
}

fn failed(e: impl std::fmt::Display) -> OidcError {
    OidcError::Store(format!("redis: {e}"))
}

impl RedisOidcStore {
    /// Use the connection and key prefix of `store`; `seed`: the SQLite database whose existing
    /// subject identifiers win over fresh ones.
    pub fn new(
        store: Arc<RedisStore>,
        seed: Option<portcullis_oidc::sqlite::SqliteOidcStore>,
    ) -> Self {
        Self { store, seed }
    }

    fn record_key(&self, kind: RecordKind, key: &str) -> String {
        format!("{}oidc:{}:{key}", self.store.key_prefix(), kind.as_str())
    }

    fn family_key(&self, family: &str) -> String {
        format!("{}oidc-family:{family}", self.store.key_prefix())
    }

    async fn run<T: redis::FromRedisValue>(&self, cmd: redis::Cmd) -> Result<T, OidcError> {
        let mut conn = self.store.connection().await.map_err(failed)?;
        match tokio::time::timeout(self.store.timeout(), cmd.query_async(&mut conn)).await {
            Ok(result) => result.map_err(failed),
            Err(_) => Err(failed("timed out")),
        }
    }

    async fn script<T: redis::FromRedisValue>(
        &self,
        script: &str,
        keys: &[&str],
        args: &[&str],
    ) -> Result<T, OidcError> {
        let mut conn = self.store.connection().await.map_err(failed)?;
        let script = redis::Script::new(script);
        let mut invocation = script.prepare_invoke();
        for k in keys {
            invocation.key(*k);
        }
        for a in args {
            invocation.arg(*a);
        }
        match tokio::time::timeout(self.store.timeout(), invocation.invoke_async(&mut conn)).await {
            Ok(result) => result.map_err(failed),
            Err(_) => Err(failed("timed out")),
        }
    }
}

fn parse_record(
    family: String,
    active: bool,
    expires: &str,
    value: Vec<u8>,
) -> Result<Record, OidcError> {
    Ok(Record {
        family,
        active,
        expires_at: expires
            .parse()
            .map_err(|_| OidcError::Corrupt("expiry is not a number".into()))?,
        value,
    })
}

#[async_trait]
impl OidcStore for RedisOidcStore {
    async fn insert(
        &self,
        kind: RecordKind,
        key: &str,
        family: &str,
        value: &[u8],
        expires_at: u64,
    ) -> Result<(), OidcError> {
        let record = self.record_key(kind, key);
        let family_key = self.family_key(family);
        let value = std::str::from_utf8(value)
            .map_err(|_| OidcError::Corrupt("record value is not UTF-8".into()))?;
        let _: i64 = self
            .script(
                INSERT,
                &[&record, &family_key],
                &[family, value, &expires_at.to_string()],
            )
            .await?;
        Ok(())
    }

    async fn insert_new(
        &self,
        kind: RecordKind,
        key: &str,
        value: &[u8],
        expires_at: u64,
        now: u64,
    ) -> Result<bool, OidcError> {
        let record = self.record_key(kind, key);
        let value = std::str::from_utf8(value)
            .map_err(|_| OidcError::Corrupt("record value is not UTF-8".into()))?;
        let inserted: i64 = self
            .script(
                INSERT_NEW,
                &[&record],
                &[value, &expires_at.to_string(), &now.to_string()],
            )
            .await?;
        Ok(inserted == 1)
    }

    async fn get(
        &self,
        kind: RecordKind,
        key: &str,
        now: u64,
    ) -> Result<Option<Record>, OidcError> {
        let mut cmd = redis::cmd("HMGET");
        cmd.arg(self.record_key(kind, key))
            .arg("f")
            .arg("a")
            .arg("e")
            .arg("v");
        let fields: Vec<Option<Vec<u8>>> = self.run(cmd).await?;
        let [Some(f), Some(a), Some(e), Some(v)] = <[Option<Vec<u8>>; 4]>::try_from(fields)
            .map_err(|_| OidcError::Corrupt("HMGET answered the wrong arity".into()))?
        else {
            return Ok(None);
        };
        let text = |b: Vec<u8>| {
            String::from_utf8(b).map_err(|_| OidcError::Corrupt("record field is not UTF-8".into()))
        };
        let record = parse_record(text(f)?, a == b"1", &text(e)?, v)?;
        Ok((record.expires_at > now).then_some(record))
    }

    async fn consume(&self, kind: RecordKind, key: &str, now: u64) -> Result<Consumed, OidcError> {
        let record = self.record_key(kind, key);
        let reply: Vec<redis::Value> = self
            .script(CONSUME, &[&record], &[&now.to_string()])
            .await?;
        let text = |v: &redis::Value| -> Result<Vec<u8>, OidcError> {
            match v {
                redis::Value::BulkString(b) => Ok(b.clone()),
                redis::Value::SimpleString(s) => Ok(s.clone().into_bytes()),
                _ => Err(OidcError::Corrupt(
                    "unexpected reply from the consume script".into(),
                )),
            }
        };
        let outcome = match reply.first() {
            Some(redis::Value::Int(0)) | None => return Ok(Consumed::Missing),
            Some(redis::Value::Int(n)) => *n,
            Some(_) => {
                return Err(OidcError::Corrupt(
                    "unexpected reply from the consume script".into(),
                ));
            }
        };
        let [_, f, e, v] = reply.as_slice() else {
            return Err(OidcError::Corrupt(
                "the consume script answered the wrong arity".into(),
            ));
        };
        let family = String::from_utf8(text(f)?)
            .map_err(|_| OidcError::Corrupt("family is not UTF-8".into()))?;
        let expires = String::from_utf8(text(e)?)
            .map_err(|_| OidcError::Corrupt("expiry is not UTF-8".into()))?;
        let record = parse_record(family, outcome == 1, &expires, text(v)?)?;
        Ok(if outcome == 1 {
            Consumed::Fresh(record)
        } else {
            Consumed::Replayed(record)
        })
    }

    async fn revoke_family(&self, family: &str) -> Result<(), OidcError> {
        let family_key = self.family_key(family);
        let _: i64 = self.script(REVOKE, &[&family_key], &[]).await?;
        Ok(())
    }

    async fn delete(&self, kind: RecordKind, key: &str) -> Result<(), OidcError> {
        let mut cmd = redis::cmd("DEL");
        cmd.arg(self.record_key(kind, key));
        let _: i64 = self.run(cmd).await?;
        Ok(())
    }

    async fn purge(&self, _now: u64) -> Result<u64, OidcError> {
        // Every key expires by itself.
        Ok(0)
    }

    async fn subject(
        &self,
        username: &str,
        sector: &str,
        fresh: &str,
    ) -> Result<String, OidcError> {
        let existing = match &self.seed {
            Some(seed) => seed.find_subject(username, sector).await?,
            None => None,
        };
        let fresh = existing.as_deref().unwrap_or(fresh);
        let key = format!(
            "{}oidc-subject:{sector}:{username}",
            self.store.key_prefix()
        );
        let mut set = redis::cmd("SET");
        set.arg(&key).arg(fresh).arg("NX");
        let _: Option<String> = self.run(set).await?;
        let mut get = redis::cmd("GET");
        get.arg(&key);
        let value: Option<String> = self.run(get).await?;
        value.ok_or_else(|| OidcError::Store("the subject vanished after it was set".into()))
    }

    async fn link_owner(
        &self,
        owner: &str,
        client: &str,
        family: &str,
        expires_at: u64,
    ) -> Result<(), OidcError> {
        let key = format!("{}oidc-owner:{owner}", self.store.key_prefix());
        let member = format!("{expires_at}\n{client}\n{family}");
        let _: i64 = self
            .script(LINK, &[&key], &[&member, &expires_at.to_string()])
            .await?;
        Ok(())
    }

    async fn take_owned(&self, owner: &str, now: u64) -> Result<Vec<(String, String)>, OidcError> {
        let key = format!("{}oidc-owner:{owner}", self.store.key_prefix());
        let members: Vec<String> = self.script(TAKE, &[&key], &[]).await?;
        Ok(members
            .iter()
            .filter_map(|m| {
                let mut parts = m.splitn(3, '\n');
                let expires: u64 = parts.next()?.parse().ok()?;
                let client = parts.next()?;
                let family = parts.next()?;
                (expires > now).then(|| (client.to_owned(), family.to_owned()))
            })
            .collect())
    }

    async fn kept(&self, name: &str) -> Result<Option<String>, OidcError> {
        let mut get = redis::cmd("GET");
        get.arg(format!("{}oidc-kept:{name}", self.store.key_prefix()));
        self.run(get).await
    }

    async fn keep(&self, name: &str, fresh: &str) -> Result<String, OidcError> {
        let key = format!("{}oidc-kept:{name}", self.store.key_prefix());
        let mut set = redis::cmd("SET");
        set.arg(&key).arg(fresh).arg("NX");
        let _: Option<String> = self.run(set).await?;
        let mut get = redis::cmd("GET");
        get.arg(&key);
        let value: Option<String> = self.run(get).await?;
        value.ok_or_else(|| OidcError::Store("the kept value vanished after it was set".into()))
    }
}
