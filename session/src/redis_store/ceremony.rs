//! Ceremony state in the sessions' Redis (`{prefix}-ceremony:{kind}:{sha256(key)}`): sealed like the
//! sessions, with the Redis key as associated data and the expiry inside the sealed bytes too, so
//! a value cannot be moved to another key or outlive its expiry even if Redis kept it.

use async_trait::async_trait;
use sha2::{Digest, Sha256};

use super::RedisStore;
use crate::{CeremonyStore, StoreError};

impl RedisStore {
    pub(crate) fn ceremony_key(&self, kind: &str, key: &str) -> String {
        let hash = hex::encode(Sha256::digest(key.as_bytes()));
        format!("{}-ceremony:{kind}:{hash}", self.key_prefix())
    }

    /// `GET` or `GETDEL` the value of (`kind`, `key`), opened.
    async fn fetch_ceremony(
        &self,
        command: &'static str,
        kind: &str,
        key: &str,
        now: u64,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let redis_key = self.ceremony_key(kind, key);
        let k = redis_key.clone();
        let data: Option<Vec<u8>> = self
            .run(|mut c| async move { redis::cmd(command).arg(&k).query_async(&mut c).await })
            .await?;
        Ok(data.and_then(|d| self.open_ceremony(&redis_key, &d, now)))
    }

    fn open_ceremony(&self, redis_key: &str, data: &[u8], now: u64) -> Option<Vec<u8>> {
        // A value we cannot authenticate is treated as absent, as a session record is.
        let plain = self.sealer.open(redis_key.as_bytes(), data).ok()?;
        let (expiry, value) = plain.split_at_checked(8)?;
        let expires_at = u64::from_be_bytes(expiry.try_into().ok()?);
        (expires_at > now).then(|| value.to_vec())
    }
}

#[async_trait]
impl CeremonyStore for RedisStore {
    async fn put_ceremony(
        &self,
        kind: &str,
        key: &str,
        value: &[u8],
        expires_at: u64,
        now: u64,
    ) -> Result<(), StoreError> {
        if expires_at <= now {
            return Err(StoreError::Refused(
                "the ceremony has already expired".into(),
            ));
        }
        let redis_key = self.ceremony_key(kind, key);
        let mut plain = expires_at.to_be_bytes().to_vec();
        plain.extend_from_slice(value);
        let sealed = self.sealer.seal(redis_key.as_bytes(), &plain)?;
        let ttl = expires_at - now;
        self.run(|mut c| async move {
            redis::cmd("SET")
                .arg(&redis_key)
                .arg(sealed)
                .arg("EX")
                .arg(ttl)
                .query_async::<()>(&mut c)
                .await
        })
        .await
    }

    async fn get_ceremony(
        &self,
        kind: &str,
        key: &str,
        now: u64,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.fetch_ceremony("GET", kind, key, now).await
    }

    async fn take_ceremony(
        &self,
        kind: &str,
        key: &str,
        now: u64,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.fetch_ceremony("GETDEL", kind, key, now).await
    }

    async fn delete_ceremony(&self, kind: &str, key: &str) -> Result<(), StoreError> {
        let redis_key = self.ceremony_key(kind, key);
        self.run(|mut c| async move {
            redis::cmd("DEL")
                .arg(&redis_key)
                .query_async::<()>(&mut c)
                .await
        })
        .await
    }
}
