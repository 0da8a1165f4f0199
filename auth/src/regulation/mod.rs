//! Brute-force regulation (docs/reference/forward-auth.md §11, docs/reference/security.md §8):
//! attempts and bans keyed on the canonical username and the client IP. Kept in this process
//! (memory, written through to SQLite with the `sqlite` feature, so bans survive a restart) or
//! shared by replicas through Redis (the `redis` feature).

mod local;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "sqlite")]
mod sqlite;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::net::IpAddr;
#[cfg(feature = "sqlite")]
use std::path::Path;
#[cfg(feature = "redis")]
use std::sync::Arc;

#[cfg(feature = "sqlite")]
use crate::AuthError;
use local::LocalRegulator;

/// Regulation settings (`regulation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegulationConfig {
    /// Failures before a ban; 0 disables regulation.
    pub max_retries: u32,
    /// Window in seconds.
    pub find_time: u64,
    /// Ban length in seconds.
    pub ban_time: u64,
    /// Ban users.
    pub by_user: bool,
    /// Ban IPs.
    pub by_ip: bool,
}

/// Brute-force regulation, local or shared by replicas. Cheap to clone.
#[derive(Clone)]
pub struct Regulator {
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    Local(LocalRegulator),
    #[cfg(feature = "redis")]
    Redis(redis::RedisRegulator),
}

impl std::fmt::Debug for Regulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.backend {
            Backend::Local(_) => "local",
            #[cfg(feature = "redis")]
            Backend::Redis(_) => "redis",
        };
        f.debug_struct("Regulator")
            .field("backend", &kind)
            .finish_non_exhaustive()
    }
}

impl Regulator {
    /// A regulator with no persistence (tests, embedding).
    pub fn in_memory(config: RegulationConfig) -> Self {
        Self {
            backend: Backend::Local(LocalRegulator::in_memory(config)),
        }
    }

    /// A regulator persisted in the SQLite file at `path` (tables `portcullis_authentication_logs`, `portcullis_bans`).
    /// Bans unexpired at `now` and attempts inside `find_time` before it are loaded.
    #[cfg(feature = "sqlite")]
    pub fn open(config: RegulationConfig, path: &Path, now: u64) -> Result<Self, AuthError> {
        Ok(Self {
            backend: Backend::Local(LocalRegulator::open(config, path, now)?),
        })
    }

    /// A regulator shared by every replica through the Redis of the session store, under the
    /// store's key prefix.
    #[cfg(feature = "redis")]
    pub fn redis(config: RegulationConfig, store: Arc<portcullis_session::RedisStore>) -> Self {
        Self {
            backend: Backend::Redis(redis::RedisRegulator::new(config, store)),
        }
    }

    /// True when the IP or the canonical username is banned at `now`. Stored bans are enforced
    /// whatever `modes` says. When the shared store cannot answer, everyone counts as banned (fail
    /// closed: a login must not bypass regulation because Redis is down).
    pub async fn is_banned(&self, username: Option<&str>, ip: Option<IpAddr>, now: u64) -> bool {
        match &self.backend {
            Backend::Local(l) => l.is_banned(username, ip, now),
            #[cfg(feature = "redis")]
            Backend::Redis(r) => match r.is_banned(username, ip, now).await {
                Ok(banned) => banned,
                Err(e) => {
                    tracing::error!(error = %e, "regulation store unavailable: refusing the attempt");
                    true
                }
            },
        }
    }

    /// Record a first-factor attempt (`username` empty for unknown users) and ban per the rules.
    pub async fn record(&self, username: &str, ip: Option<IpAddr>, success: bool, now: u64) {
        match &self.backend {
            Backend::Local(l) => l.record(username, ip, success, now),
            #[cfg(feature = "redis")]
            Backend::Redis(r) => {
                if let Err(e) = r.record(username, ip, success, now).await {
                    tracing::error!(error = %e, "could not record an authentication attempt in Redis");
                }
            }
        }
    }

    /// Number of active bans (metrics); 0 when it cannot be counted.
    pub async fn active_bans(&self, now: u64) -> usize {
        match &self.backend {
            Backend::Local(l) => l.active_bans(now),
            #[cfg(feature = "redis")]
            Backend::Redis(r) => r.active_bans(now).await.unwrap_or(0),
        }
    }
}

/// Attempts kept per subject: enough to judge `max_retries` failures, bounded so memory cannot grow.
const MAX_KEPT: usize = 64;

fn push(list: &mut VecDeque<(u64, bool)>, item: (u64, bool)) {
    list.push_back(item);
    while list.len() > MAX_KEPT {
        list.pop_front();
    }
}

/// Read the newest attempts inside `find_time`, stop at the first success; `max_retries` failures
/// ban until the most recent failure + `ban_time`.
fn ban_until(attempts: &VecDeque<(u64, bool)>, cfg: RegulationConfig, now: u64) -> Option<u64> {
    let since = now.saturating_sub(cfg.find_time);
    let mut failures = 0u32;
    let mut latest_failure = None;
    for &(time, success) in attempts.iter().rev() {
        if time < since || success {
            break;
        }
        failures += 1;
        latest_failure = latest_failure.or(Some(time));
        if failures >= cfg.max_retries {
            return latest_failure.map(|t| t + cfg.ban_time);
        }
    }
    None
}
