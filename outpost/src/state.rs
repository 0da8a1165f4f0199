//! The outpost's shared state: the providers, the session store, the clock.

use std::sync::{Arc, PoisonError, RwLock};

use portcullis_core::TrustedProxies;
use portcullis_session::SessionId;
use portcullis_session::claims::{ClaimsSession, ClaimsStore};

use crate::claims::SessionData;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::provider::{ProviderRuntime, SetupError};

/// The clock: unix seconds. Tests pass their own.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(portcullis_server_core::clock::unix_now)
}

/// What every request sees. Cheap to clone.
#[derive(Clone)]
pub struct AppState(pub(crate) Arc<Inner>);

pub(crate) struct Inner {
    pub(crate) providers: RwLock<Arc<Providers>>,
    pub(crate) store: Arc<dyn ClaimsStore>,
    pub(crate) clock: Clock,
    pub(crate) metrics: Metrics,
}

/// The providers and the settings a reload replaces with them.
pub(crate) struct Providers {
    pub(crate) list: Vec<Arc<ProviderRuntime>>,
    pub(crate) configs: Vec<crate::config::Provider>,
    pub(crate) trusted: TrustedProxies,
    pub(crate) outpost_name: String,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("providers", &self.providers().list.len())
            .field("store", &self.0.store)
            .finish_non_exhaustive()
    }
}

/// Why the state could not be built.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct StateError(#[from] SetupError);

impl AppState {
    /// Build the state for `config` on `store`. Discovery is not run here: call
    /// [`AppState::discover_all`] (the server does, in the background).
    pub fn new(
        config: &Config,
        store: Arc<dyn ClaimsStore>,
        clock: Clock,
    ) -> Result<Self, StateError> {
        let providers = Self::providers_for(config)?;
        Ok(Self(Arc::new(Inner {
            providers: RwLock::new(Arc::new(providers)),
            store,
            clock,
            metrics: Metrics::new(),
        })))
    }

    fn providers_for(config: &Config) -> Result<Providers, SetupError> {
        let list = config
            .providers
            .iter()
            .enumerate()
            .map(|(i, p)| ProviderRuntime::new(i, p.clone(), &config.outpost_name).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Providers {
            list,
            configs: config.providers.clone(),
            trusted: config.trusted_proxies.clone(),
            outpost_name: config.outpost_name.clone(),
        })
    }

    /// Replace the providers with those of `config` (SIGHUP). Sessions stay; providers whose
    /// configuration did not change keep their discovery and caches.
    pub(crate) fn replace_providers(&self, config: &Config) -> Result<(), StateError> {
        let current = self.providers();
        let mut fresh = Self::providers_for(config)?;
        for (i, p) in config.providers.iter().enumerate() {
            if let Some(j) = current
                .configs
                .iter()
                .position(|old| format!("{old:?}") == format!("{p:?}"))
            {
                fresh.list[i] = current.list[j].clone();
            }
        }
        *self
            .0
            .providers
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(fresh);
        Ok(())
    }

    pub(crate) fn providers(&self) -> Arc<Providers> {
        self.0
            .providers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Whether `ip` is a trusted proxy (its forwarded headers and PROXY protocol are believed).
    pub fn trusts(&self, ip: std::net::IpAddr) -> bool {
        self.providers().trusted.contains(ip)
    }

    /// The metrics in Prometheus' text format (what the metrics listener serves).
    pub fn metrics_text(&self) -> String {
        self.0.metrics.render()
    }

    /// Now, in unix seconds.
    pub fn now(&self) -> u64 {
        (self.0.clock)()
    }

    /// Run discovery for every provider not yet discovered, once. Returns how many are ready.
    pub async fn discover_all(&self) -> usize {
        let providers = self.providers();
        let mut ready = 0;
        for p in &providers.list {
            if p.discovered().is_some() {
                ready += 1;
                continue;
            }
            match p.discover(self.now()).await {
                Ok(()) => {
                    tracing::info!(provider = %p.config.name, "provider discovered");
                    ready += 1;
                }
                Err(e) => {
                    tracing::warn!(provider = %p.config.name, reason = %e, "provider discovery failed; its routes answer 503 until it succeeds")
                }
            }
        }
        ready
    }

    /// Keep discovering in a background task, with backoff from 1 s to 60 s while a provider
    /// fails (its routes answer 503 meanwhile); reloads that add providers are picked up too.
    pub fn spawn_discovery(&self) {
        let state = self.clone();
        tokio::spawn(async move {
            let mut wait = std::time::Duration::from_secs(1);
            loop {
                let total = state.providers().list.len();
                if state.discover_all().await == total {
                    // All ready; a reload may add providers.
                    wait = std::time::Duration::from_secs(1);
                    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                    continue;
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(std::time::Duration::from_secs(60));
            }
        });
    }

    pub(crate) fn store(&self) -> &dyn ClaimsStore {
        self.0.store.as_ref()
    }

    /// Save a session for `provider`.
    pub(crate) async fn save(
        &self,
        provider: &ProviderRuntime,
        id: &SessionId,
        data: &SessionData,
        expires_at: u64,
    ) -> Result<(), portcullis_session::StoreError> {
        let json = serde_json::to_string(data)
            .map_err(|e| portcullis_session::StoreError::Codec(e.to_string()))?;
        let session = ClaimsSession {
            id: id.clone(),
            provider: provider.config.name.clone(),
            sub: data.claims.sub.clone(),
            sid: data.claims.sid.clone(),
            expires_at,
            data: json,
        };
        self.store().put(&session, self.now()).await
    }
}
