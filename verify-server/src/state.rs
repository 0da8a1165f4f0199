//! The server's shared state: configuration, users, sessions, regulation, caches, metrics, and the
//! keys derived from the session secret.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use hkdf::Hkdf;
use portcullis_auth::regulation::Regulator;
use portcullis_auth::users::{Directory, DirectoryError, User, UserDatabase};
use portcullis_auth::{BasicCache, FailureDelay, Hasher, PasswordCheck};
use portcullis_session::SessionStore;
use rand::RngCore;
use sha2::Sha256;

use crate::config::Config;
use crate::error::StartError;
use crate::metrics::Metrics;
use crate::portal::Templates;

pub use portcullis_server_core::clock::{Clock, system_clock};

/// Knobs that are not part of the Authelia configuration.
#[derive(Debug, Clone)]
pub struct Tuning {
    /// Minimum time a failed Basic check or portal login takes (2 s, docs/reference/forward-auth.md §11).
    pub failure_delay: Duration,
    /// Upper bound of the random jitter added to failure delays (85 ms).
    pub failure_jitter_ms: u64,
    /// Password verifications running at once (argon2 takes 64 MiB each). Default: half the CPUs,
    /// at least one, so that a flood of logins or uncached Basic checks leaves the other half to the
    /// forward-auth checks (BENCHMARKS.md).
    pub max_concurrent_hashes: usize,
    /// How long a login waits for a hashing slot before it is refused with 503.
    pub hash_queue_timeout: Duration,
    /// How often the users file is checked for changes when `watch` is on.
    pub users_poll_interval: Duration,
    /// How long checking a session-elevation code takes at least (1 s, as Authelia).
    pub elevation_delay: Duration,
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
            elevation_delay: Duration::from_secs(1),
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
    pub(crate) config: Config,
    pub(crate) users: RwLock<Arc<UserDatabase>>,
    pub(crate) users_generation: AtomicU64,
    pub(crate) sessions: Arc<dyn SessionStore>,
    pub(crate) regulator: Regulator,
    pub(crate) hasher: Hasher,
    pub(crate) basic_cache: BasicCache,
    pub(crate) delays: FailureDelay,
    pub(crate) clock: Clock,
    pub(crate) tuning: Tuning,
    pub(crate) metrics: Metrics,
    pub(crate) own_scheme: &'static str,
    /// HMAC key of the login form's CSRF tokens, derived from the session secret so that every
    /// replica and every restart accepts the forms the others served.
    pub(crate) csrf_key: [u8; 64],
    pub(crate) templates: Templates,
    /// The OpenID Connect provider, attached once at start-up when configured.
    pub(crate) oidc: std::sync::OnceLock<Arc<crate::oidc::OidcRuntime>>,
    /// TOTP, elevation and the notifier, when `storage.encryption_key` is set.
    pub(crate) second_factor: Option<Arc<crate::second_factor::SecondFactorRuntime>>,
    /// App passwords (`portcullis app-password`), attached once at start-up.
    pub(crate) app_passwords:
        std::sync::OnceLock<Arc<dyn portcullis_auth::app_passwords::AppPasswordStore>>,
    /// The users' directory (`authentication_backend.ldap`), attached once at start-up; the
    /// users file is then empty and never read.
    pub(crate) directory: std::sync::OnceLock<Arc<dyn Directory>>,
}

/// Derive a 64-byte key for `purpose` from the session secret (HKDF-SHA256). 64 bytes is far
/// below HKDF-SHA256's limit, so this cannot fail; if it did, the server refuses to start rather
/// than run with a fixed or unrelated key.
pub(crate) fn derive_key(secret: &[u8], purpose: &'static str) -> Result<[u8; 64], StartError> {
    let mut key = [0u8; 64];
    Hkdf::<Sha256>::new(Some(b"portcullis"), secret)
        .expand(purpose.as_bytes(), &mut key)
        .map_err(|_| StartError::KeyDerivation(purpose))?;
    Ok(key)
}

impl AppState {
    /// Assemble the state from its parts. Fails when the login page template does not compile.
    pub fn new(
        config: Config,
        users: UserDatabase,
        sessions: Arc<dyn SessionStore>,
        regulator: Regulator,
        clock: Clock,
        tuning: Tuning,
    ) -> Result<Self, StartError> {
        let own_scheme = if config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        // `App::build` fills in a generated secret; without one there is no key to derive, and a
        // fixed or random stand-in would break replicas or restarts: refuse.
        let secret = config
            .session_secret
            .as_ref()
            .ok_or(StartError::NoSessionSecret)?;
        let csrf_key = derive_key(secret.expose().as_bytes(), "csrf v1")?;
        let mut cache_key = [0u8; 64];
        rand::rng().fill_bytes(&mut cache_key);
        let templates = Templates::compile()?;
        let second_factor = crate::second_factor::SecondFactorRuntime::open(
            &config.second_factor,
            &config.storage_path,
        )?
        .map(Arc::new);
        // With a shared session store (Redis), ceremonies live next to the sessions, so any
        // replica finishes what another began.
        if let (Some(rt), Some(shared)) = (&second_factor, sessions.clone().shared_ceremonies()) {
            rt.attach_ceremonies(shared);
        }
        Ok(Self(Arc::new(Inner {
            hasher: Hasher::new(tuning.max_concurrent_hashes, tuning.hash_queue_timeout),
            delays: FailureDelay::new(tuning.failure_delay, tuning.failure_jitter_ms),
            basic_cache: BasicCache::new(&cache_key),
            config,
            users: RwLock::new(Arc::new(users)),
            users_generation: AtomicU64::new(0),
            sessions,
            regulator,
            clock,
            tuning,
            metrics: Metrics::new(),
            own_scheme,
            csrf_key,
            templates,
            oidc: std::sync::OnceLock::new(),
            second_factor,
            app_passwords: std::sync::OnceLock::new(),
            directory: std::sync::OnceLock::new(),
        })))
    }

    /// Attach the OpenID Connect provider (once, before the router is built; the provider's
    /// configuration moves from `Config::oidc` into it). Refused when one is already attached.
    pub fn attach_oidc(&self, runtime: crate::oidc::OidcRuntime) -> Result<(), StartError> {
        self.0
            .oidc
            .set(Arc::new(runtime))
            .map_err(|_| StartError::Oidc("the OpenID Connect provider is already attached".into()))
    }

    /// Attach the app password store (once, before serving): Basic credentials and the OpenID
    /// client-credentials grant then accept app passwords.
    pub fn attach_app_passwords(
        &self,
        store: Arc<dyn portcullis_auth::app_passwords::AppPasswordStore>,
    ) -> Result<(), StartError> {
        self.0
            .app_passwords
            .set(store)
            .map_err(|_| StartError::Oidc("app passwords are already attached".into()))
    }

    /// Attach the users' directory (once, before serving): logins, Basic credentials, refreshes
    /// and password changes then go to it instead of the users file.
    pub fn attach_directory(&self, directory: Arc<dyn Directory>) -> Result<(), StartError> {
        self.0
            .directory
            .set(directory)
            .map_err(|_| StartError::Directory("a user directory is already attached".into()))
    }

    /// The handles a directory wrapper records its operations with.
    pub(crate) fn ldap_metrics(&self) -> crate::metrics::LdapMetrics {
        self.0.metrics.ldap()
    }

    /// The users' directory, when the users live in one.
    pub(crate) fn directory(&self) -> Option<&Arc<dyn Directory>> {
        self.0.directory.get()
    }

    /// The user `login` names (a username, or an email address where the backend allows it),
    /// from the directory or the users file. An error means the directory could not answer:
    /// whoever asked refuses.
    pub(crate) async fn find_user(&self, login: &str) -> Result<Option<Arc<User>>, DirectoryError> {
        match self.directory() {
            Some(directory) => Ok(directory.find(login, self.now()).await?.map(Arc::new)),
            None => Ok(self.users().lookup(login)),
        }
    }

    /// The user whose canonical username is `username` (a session's, a grant's), or `None`
    /// when they are gone. A directory entry that answers to the name but is another user (its
    /// email address is that name) is not them.
    pub(crate) async fn user_named(
        &self,
        username: &str,
    ) -> Result<Option<Arc<User>>, DirectoryError> {
        match self.directory() {
            Some(directory) => Ok(directory
                .find(username, self.now())
                .await?
                .filter(|u| u.username.eq_ignore_ascii_case(username))
                .map(Arc::new)),
            None => Ok(self.users().get(username)),
        }
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

    /// Forget every cached Basic credential (a password changed in the directory).
    pub(crate) fn forget_cached_credentials(&self) {
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

    /// The tuning knobs.
    pub fn tuning(&self) -> &Tuning {
        &self.0.tuning
    }

    /// A password check over the current users (`cache`: the Basic cache lifetime, for Basic).
    pub(crate) fn password_check<'a>(
        &'a self,
        users: &'a UserDatabase,
        basic_cache_lifespan: Option<u64>,
    ) -> PasswordCheck<'a> {
        PasswordCheck {
            directory: self.directory().map(|d| d.as_ref() as &dyn Directory),
            users,
            hasher: &self.0.hasher,
            regulator: &self.0.regulator,
            cache: basic_cache_lifespan.map(|lifespan| (&self.0.basic_cache, lifespan)),
            // App passwords stand in for passwords in Basic credentials, never at the portal.
            app_passwords: basic_cache_lifespan
                .and(self.0.app_passwords.get())
                .map(|s| s.as_ref() as &dyn portcullis_auth::app_passwords::AppPasswordStore),
        }
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
