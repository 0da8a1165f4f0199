//! The server's shared state: configuration, users, sessions, regulation, caches, metrics.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use hmac::{Hmac, Mac};
use portcullis_session::SessionStore;
use rand::RngCore;
use sha2::Sha256;
use tokio::sync::Semaphore;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::regulation::Regulator;
use crate::users::{Digest, UserDatabase};

/// Where "now" comes from (unix seconds). Tests inject their own.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    })
}

/// Knobs that are not part of the Authelia configuration.
#[derive(Debug, Clone)]
pub struct Tuning {
    /// Minimum time a failed Basic check or portal login takes (spec: 2 s).
    pub failure_delay: Duration,
    /// Upper bound of the random jitter added to failure delays (spec: 85 ms).
    pub failure_jitter_ms: u64,
    /// Password verifications running at once (argon2 takes 64 MiB each). Default: half the CPUs,
    /// at least one, so that a flood of logins or uncached Basic checks leaves the other half to the
    /// forward-auth checks (BENCHMARKS.md).
    pub max_concurrent_hashes: usize,
    /// How long a login waits for a hashing slot before it is refused with 503.
    pub hash_queue_timeout: Duration,
    /// How often the users file is checked for changes when `watch` is on.
    pub users_poll_interval: Duration,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            failure_delay: Duration::from_secs(2),
            failure_jitter_ms: 85,
            max_concurrent_hashes: std::thread::available_parallelism()
                .map_or(1, |cpus| (cpus.get() / 2).max(1)),
            hash_queue_timeout: Duration::from_secs(5),
            users_poll_interval: Duration::from_secs(2),
        }
    }
}

/// Shared state, cheap to clone.
#[derive(Clone)]
pub struct AppState(pub(crate) Arc<Inner>);

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("config", &self.0.config.file)
            .finish_non_exhaustive()
    }
}

pub(crate) struct Inner {
    pub config: Config,
    pub users: RwLock<Arc<UserDatabase>>,
    pub users_generation: AtomicU64,
    pub sessions: Arc<dyn SessionStore>,
    pub regulator: Regulator,
    pub hasher: Hasher,
    pub basic_cache: BasicCache,
    pub delays: FailureDelay,
    pub clock: Clock,
    pub tuning: Tuning,
    pub metrics: Metrics,
    pub own_scheme: &'static str,
    pub csrf_key: [u8; 32],
}

impl AppState {
    /// Assemble the state from its parts.
    pub fn new(
        config: Config,
        users: UserDatabase,
        sessions: Arc<dyn SessionStore>,
        regulator: Regulator,
        clock: Clock,
        tuning: Tuning,
    ) -> Self {
        let own_scheme = if config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let mut csrf_key = [0u8; 32];
        rand::rng().fill_bytes(&mut csrf_key);
        let hasher = Hasher::new(tuning.max_concurrent_hashes, tuning.hash_queue_timeout);
        let delays = FailureDelay::new(tuning.failure_delay, tuning.failure_jitter_ms);
        Self(Arc::new(Inner {
            config,
            users: RwLock::new(Arc::new(users)),
            users_generation: AtomicU64::new(0),
            sessions,
            regulator,
            hasher,
            basic_cache: BasicCache::new(),
            delays,
            clock,
            tuning,
            metrics: Metrics::new(),
            own_scheme,
            csrf_key,
        }))
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.0.config
    }

    /// Current users.
    pub fn users(&self) -> Arc<UserDatabase> {
        self.0
            .users
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Replace the users (file reload): clears the Basic credential cache.
    pub fn replace_users(&self, users: UserDatabase) {
        *self
            .0
            .users
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(users);
        self.0.users_generation.fetch_add(1, Ordering::SeqCst);
        self.0.basic_cache.clear();
    }

    /// The session store.
    pub fn sessions(&self) -> &Arc<dyn SessionStore> {
        &self.0.sessions
    }

    /// Now, in unix seconds.
    pub fn now(&self) -> u64 {
        (self.0.clock)()
    }

    /// Prometheus text exposition of the metrics.
    pub async fn render_metrics(&self) -> String {
        let now = self.now();
        let sessions = self.0.sessions.count(now).await.unwrap_or(0);
        self.0
            .metrics
            .render(self.0.regulator.active_bans(now).await, sessions)
    }
}

/// Why a password could not be checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HashError {
    /// Every hashing slot stayed busy for the queue timeout.
    #[error("password hashing is overloaded")]
    Overloaded,
}

/// Runs password verifications on blocking threads, a bounded number at once, so a login flood
/// cannot stall cookie checks or exhaust memory.
pub(crate) struct Hasher {
    slots: Arc<Semaphore>,
    queue_timeout: Duration,
}

impl Hasher {
    fn new(slots: usize, queue_timeout: Duration) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(slots.max(1))),
            queue_timeout,
        }
    }

    pub async fn verify(&self, digest: Digest, password: String) -> Result<bool, HashError> {
        let permit = tokio::time::timeout(self.queue_timeout, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| HashError::Overloaded)?
            .map_err(|_| HashError::Overloaded)?;
        let result = tokio::task::spawn_blocking(move || {
            let ok = digest.verify(&password);
            drop(permit);
            ok
        })
        .await;
        Ok(result.unwrap_or(false))
    }
}

/// Verified Basic credentials: HMAC-SHA256 (per-process random key) of canonical username and
/// password → expiry. Failures are never stored. Bounded; cleared when users reload.
pub(crate) struct BasicCache {
    key: [u8; 32],
    entries: Mutex<HashMap<[u8; 32], u64>>,
}

const BASIC_CACHE_MAX: usize = 10_000;

impl BasicCache {
    fn new() -> Self {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        Self {
            key,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn digest(&self, username: &str, password: &str) -> [u8; 32] {
        // new_from_slice accepts keys of any length for HMAC; the error branch cannot happen.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.key) else {
            return [0u8; 32];
        };
        mac.update(username.as_bytes());
        mac.update(&[0]);
        mac.update(password.as_bytes());
        mac.finalize().into_bytes().into()
    }

    pub fn hit(&self, username: &str, password: &str, now: u64) -> bool {
        let digest = self.digest(username, password);
        let entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // The map is keyed by a MAC: a lookup reveals nothing about near misses.
        entries.get(&digest).is_some_and(|&expires| expires > now)
    }

    pub fn insert(&self, username: &str, password: &str, expires: u64) {
        let digest = self.digest(username, password);
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if entries.len() >= BASIC_CACHE_MAX {
            entries.clear();
        }
        entries.insert(digest, expires);
    }

    pub fn clear(&self) {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }
}

/// Pads failed authentications to max(minimum, moving average of the last 50 successes) plus jitter,
/// so timing reveals neither bans nor unknown users.
pub(crate) struct FailureDelay {
    minimum: Duration,
    jitter_ms: u64,
    successes: Mutex<VecDeque<Duration>>,
}

impl FailureDelay {
    fn new(minimum: Duration, jitter_ms: u64) -> Self {
        Self {
            minimum,
            jitter_ms,
            successes: Mutex::new(VecDeque::new()),
        }
    }

    pub fn record_success(&self, took: Duration) {
        let mut s = self
            .successes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        s.push_back(took);
        while s.len() > 50 {
            s.pop_front();
        }
    }

    pub fn target(&self) -> Duration {
        let s = self
            .successes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let average = if s.is_empty() {
            Duration::ZERO
        } else {
            s.iter().sum::<Duration>() / s.len() as u32
        };
        let jitter = if self.jitter_ms == 0 {
            0
        } else {
            rand::rng().next_u64() % (self.jitter_ms + 1)
        };
        self.minimum.max(average) + Duration::from_millis(jitter)
    }

    /// Sleep until `started + target()`.
    pub async fn pad(&self, started: tokio::time::Instant) {
        tokio::time::sleep_until(started + self.target()).await;
    }
}
