//! The `SessionStore` trait every session backend implements, and its error type.

use std::fmt;
use std::path::PathBuf;

use async_trait::async_trait;

use crate::{Session, SessionId};

/// Why a session store operation failed. Callers should fail closed: a store error on the check path
/// is a 5xx, never an allow.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend cannot be reached or used right now.
    #[error("session store unavailable: {0}")]
    Unavailable(String),
    /// The backend did not answer in time.
    #[error("session store operation timed out")]
    Timeout,
    /// The store's file is damaged or is not a session database; it was left untouched.
    #[error("session store {} is corrupt or not a database: {detail}", path.display())]
    Corrupt {
        /// The file concerned.
        path: PathBuf,
        /// What the check reported.
        detail: String,
    },
    /// A file-system operation failed.
    #[error("session store I/O error on {}: {source}", path.display())]
    Io {
        /// The file or folder concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A session record could not be encoded or decoded.
    #[error("session record encoding error: {0}")]
    Codec(String),
    /// Any other backend failure.
    #[error("session store error: {0}")]
    Backend(String),
    /// The store refused the record as given (for example a session already expired at `now`);
    /// nothing was written. A caller bug, not a backend failure.
    #[error("session record refused: {0}")]
    Refused(String),
}

/// Where sessions are remembered. The server holds an `Arc<dyn SessionStore>`.
///
/// All times are unix seconds passed in by the caller. Stores apply expiry (`now >= expires_at`)
/// but not inactivity, which depends on the cookie domain's [`Lifetime`](crate::Lifetime): judge a
/// loaded session with [`Session::validity`].
#[async_trait]
pub trait SessionStore: Send + Sync + fmt::Debug {
    /// The session with this id, unless it is missing or expired at `now`.
    async fn get(&self, id: &SessionId, now: u64) -> Result<Option<Session>, StoreError>;

    /// Insert or replace the session with `session.id`.
    async fn put(&self, session: &Session) -> Result<(), StoreError>;

    /// Record activity: `last_activity` becomes `max(current, last_activity)`. A missing session is
    /// not an error (nothing happens).
    async fn touch(&self, id: &SessionId, last_activity: u64) -> Result<(), StoreError>;

    /// Remove the session (logout). A missing session is not an error.
    async fn delete(&self, id: &SessionId) -> Result<(), StoreError>;

    /// Remove every session of `username`, compared case-insensitively; returns how many were
    /// removed.
    async fn delete_user(&self, username: &str) -> Result<usize, StoreError>;

    /// Unexpired sessions, of one user (case-insensitively) or of everyone, ordered by creation time
    /// then id. For the admin CLI.
    async fn list(&self, username: Option<&str>, now: u64) -> Result<Vec<Session>, StoreError>;

    /// How many sessions are unexpired at `now`.
    async fn count(&self, now: u64) -> Result<usize, StoreError>;

    /// Whether the backend is usable.
    async fn health(&self) -> Result<(), StoreError>;

    /// Where ceremony state shared by every server of these sessions lives, when the backend
    /// is shared (Redis); `None`: each server keeps its own.
    fn shared_ceremonies(
        self: std::sync::Arc<Self>,
    ) -> Option<std::sync::Arc<dyn crate::CeremonyStore>> {
        None
    }
}
