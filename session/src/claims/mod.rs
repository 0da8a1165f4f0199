//! The outpost's sessions: the IdP's claims kept server-side, indexed by subject and IdP session.
//!
//! The authentik-compatible outpost logs browsers in against an OpenID provider and keeps, per
//! session, what the provider said (claims, raw token, refresh token) as an opaque JSON text. Two
//! logouts need secondary indexes, so that neither scans the store and both hold on every replica
//! at once:
//!
//! - sign-out deletes every session of one subject of one provider ([`ClaimsStore::delete_sub`]);
//! - OIDC back-channel logout deletes every session of one IdP session, the `sid` claim of the
//!   logout token ([`ClaimsStore::delete_sid`]).
//!
//! Stores: [`MemoryClaimsStore`] (no feature, no I/O), `SqliteClaimsStore` (feature `sqlite`) and
//! `RedisClaimsStore` (feature `redis`). They share one conformance test suite.

use std::fmt;

use async_trait::async_trait;

use crate::{SessionId, StoreError};

mod memory;
#[cfg(feature = "redis")]
mod redis_claims;
#[cfg(feature = "sqlite")]
mod sqlite;

pub use memory::{DEFAULT_MAX_CLAIMS_SESSIONS, MemoryClaimsStore};
#[cfg(feature = "redis")]
pub use redis_claims::{DEFAULT_CLAIMS_KEY_PREFIX, RedisClaimsStore};
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteClaimsStore;

/// One outpost session: opaque `data` (the outpost's JSON: claims, raw token, refresh token) the
/// store never reads.
///
/// `Debug` shows the id's prefix, the provider, the subject, the IdP session and the expiry, never
/// `data` (it holds tokens).
#[derive(Clone, PartialEq, Eq)]
pub struct ClaimsSession {
    /// The session id the outpost's cookie carries.
    pub id: SessionId,
    /// The outpost provider (application) name the session belongs to.
    pub provider: String,
    /// The IdP's subject (`sub` claim), compared exactly (case-sensitively).
    pub sub: String,
    /// The IdP's session id (`sid` claim), for back-channel logout, compared exactly.
    pub sid: Option<String>,
    /// Unix seconds; a session is expired, and never returned, when `now >= expires_at`.
    pub expires_at: u64,
    /// The outpost's record, stored and returned byte for byte.
    pub data: String,
}

impl fmt::Debug for ClaimsSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClaimsSession")
            .field("id", &self.id)
            .field("provider", &self.provider)
            .field("sub", &self.sub)
            .field("sid", &self.sid)
            .field("expires_at", &self.expires_at)
            .field(
                "data",
                &format_args!("[{} bytes redacted]", self.data.len()),
            )
            .finish()
    }
}

impl ClaimsSession {
    /// True when the session is expired at `now` (`now >= expires_at`).
    pub fn is_expired(&self, now: u64) -> bool {
        now >= self.expires_at
    }
}

/// Where the outpost keeps its sessions. The outpost holds an `Arc<dyn ClaimsStore>`.
///
/// All times are unix seconds passed in by the caller. Every store:
///
/// - never returns a session expired at the `now` it is given, and never counts one;
/// - refuses with [`StoreError::Refused`] a `put` of a session already expired at `now` (nothing is
///   written, an existing session with that id stays as it was);
/// - keeps its indexes in step on `put`: replacing a session under another `sub` or `sid` moves it,
///   so the old subject's or IdP session's logout no longer reaches it;
/// - compares `provider`, `sub` and `sid` exactly, and keys its indexes on the pair, so
///   `("a", "bc")` and `("ab", "c")` never meet.
///
/// The counts returned by the deletions may include sessions that had expired but were not yet
/// purged.
#[async_trait]
pub trait ClaimsStore: Send + Sync + fmt::Debug {
    /// The session with this id, unless it is missing or expired at `now`.
    async fn get(&self, id: &SessionId, now: u64) -> Result<Option<ClaimsSession>, StoreError>;

    /// Insert or replace the session with `session.id`, updating the indexes. A session expired at
    /// `now` is refused ([`StoreError::Refused`]).
    async fn put(&self, session: &ClaimsSession, now: u64) -> Result<(), StoreError>;

    /// Remove one session; true when it was present.
    async fn delete(&self, id: &SessionId) -> Result<bool, StoreError>;

    /// Remove every session of `sub` at `provider` (sign-out); returns how many were removed.
    async fn delete_sub(&self, provider: &str, sub: &str) -> Result<usize, StoreError>;

    /// Remove every session of the IdP session `sid` at `provider` (back-channel logout); returns
    /// how many were removed.
    async fn delete_sid(&self, provider: &str, sid: &str) -> Result<usize, StoreError>;

    /// How many sessions are unexpired at `now`.
    async fn count(&self, now: u64) -> Result<usize, StoreError>;

    /// Whether the backend is usable.
    async fn health(&self) -> Result<(), StoreError>;
}

/// The refusal every store gives to a `put` that would be dead on arrival.
fn refuse_expired(session: &ClaimsSession, now: u64) -> Result<(), StoreError> {
    if session.is_expired(now) {
        Err(StoreError::Refused(format!(
            "the session expires at {} and it is already {now}",
            session.expires_at
        )))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
