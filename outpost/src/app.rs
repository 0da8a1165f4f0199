//! Assembling the outpost from a validated configuration: `App::build` opens the session store,
//! sets the providers up, binds the listeners and registers the signals; `Handle::serve` starts
//! discovery, reports ready and serves until shutdown.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use portcullis_server_core::clock::Stopwatch;
use portcullis_server_core::{
    Limits, ProxyProtocolPeers, Shutdown, ShutdownTrigger, bind, serve, serve_with_proxy_protocol,
    tls_acceptor,
};
use portcullis_session::claims::{
    ClaimsStore, MemoryClaimsStore, RedisClaimsStore, SqliteClaimsStore,
};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::config::{Config, Storage};
use crate::error::StartError;
use crate::state::{AppState, Clock, system_clock};
use crate::web::{ListenerScheme, router};

/// The outpost, ready to be built from a configuration.
#[derive(Debug)]
pub struct App;

/// A built outpost: store open, listeners bound, signals registered; nothing served yet.
pub struct Handle {
    state: AppState,
    listener: TcpListener,
    address: SocketAddr,
    tls: Option<(TcpListener, TlsAcceptor)>,
    metrics: Option<TcpListener>,
    shutdown: Shutdown,
    trigger: ShutdownTrigger,
    started: Stopwatch,
    config_file: PathBuf,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

/// Open the configured session store.
pub async fn open_store(storage: &Storage) -> Result<Arc<dyn ClaimsStore>, StartError> {
    Ok(match storage {
        Storage::Memory => Arc::new(MemoryClaimsStore::new()),
        Storage::Sqlite(path) => {
            let path = path.clone();
            let store = tokio::task::spawn_blocking(move || SqliteClaimsStore::open(&path))
                .await
                .map_err(|e| StartError::Store(e.to_string()))?
                .map_err(|e| StartError::Store(e.to_string()))?;
            Arc::new(store)
        }
        Storage::Redis { redis, secret } => {
            let store = RedisClaimsStore::new(redis.as_ref().clone(), secret.expose().as_bytes())
                .map_err(|e| StartError::Store(e.to_string()))?;
            Arc::new(store)
        }
    })
}

impl App {
    /// Build the outpost for `config` with the system clock.
    pub async fn build(config: Config) -> Result<Handle, StartError> {
        Self::build_with(config, system_clock()).await
    }

    /// [`App::build`] with another clock.
    pub async fn build_with(config: Config, clock: Clock) -> Result<Handle, StartError> {
        let started = Stopwatch::start();
        let store = open_store(&config.storage).await?;
        if let Err(e) = store.health().await {
            // Redis may come later: requests are refused (503) until it answers.
            tracing::warn!(reason = %e, "the session store does not answer yet");
        }
        let state = AppState::new(&config, store, clock)?;
        let (trigger, shutdown) = Shutdown::on_signals()?;
        let listener = bind(config.listen.socket()).await?;
        let address = listener
            .local_addr()
            .map_err(|e| StartError::Bind(e.to_string()))?;
        let tls = match &config.tls {
            None => None,
            Some(t) => {
                let acceptor = tls_acceptor(&t.certificate, &t.key)?;
                Some((bind(t.listen.socket()).await?, acceptor))
            }
        };
        let metrics = match &config.metrics {
            None => None,
            Some(m) => Some(bind(m.socket()).await?),
        };
        Ok(Handle {
            state,
            listener,
            address,
            tls,
            metrics,
            shutdown,
            trigger,
            started,
            config_file: config.file.clone(),
        })
    }
}

impl Handle {
    /// The HTTP listener's address.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The HTTPS listener's address, when there is one.
    pub fn tls_address(&self) -> Option<SocketAddr> {
        self.tls.as_ref().and_then(|(l, _)| l.local_addr().ok())
    }

    /// The metrics listener's address, when there is one.
    pub fn metrics_address(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The shared state.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Fires a graceful shutdown, as SIGTERM does.
    pub fn shutdown_trigger(&self) -> ShutdownTrigger {
        self.trigger.clone()
    }

    /// Start discovery, SIGHUP reloads and the listeners, log the ready line, serve until
    /// shutdown.
    pub async fn serve(self) {
        let Self {
            state,
            listener,
            address,
            tls,
            metrics,
            shutdown,
            started,
            config_file,
            ..
        } = self;
        state.spawn_discovery();
        #[cfg(unix)]
        crate::reload::on_hangup(state.clone(), config_file);
        #[cfg(not(unix))]
        let _ = config_file;
        if let Some(listener) = metrics {
            let s = state.clone();
            let router = portcullis_server_core::metrics::router("/metrics", move || {
                let s = s.clone();
                async move { s.metrics_text() }
            });
            tokio::spawn(serve(
                listener,
                router,
                None,
                Limits::default(),
                shutdown.signalled(),
            ));
        }
        // The PROXY protocol is honoured from the trusted proxies only (docs/reference/outpost.md
        // §12), as the configuration in force says.
        let trusts = {
            let s = state.clone();
            let f: ProxyProtocolPeers = Arc::new(move |ip| s.trusts(ip));
            f
        };
        if let Some((listener, acceptor)) = tls {
            let app: Router = router(state.clone()).layer(axum::Extension(ListenerScheme("https")));
            tokio::spawn(serve_with_proxy_protocol(
                listener,
                app,
                Some(acceptor),
                Limits::default(),
                trusts.clone(),
                shutdown.signalled(),
            ));
        }
        tracing::info!(
            %address,
            providers = state.providers().list.len(),
            startup_ms = started.elapsed().as_millis() as u64,
            "portcullis-outpost ready"
        );
        serve_with_proxy_protocol(
            listener,
            router(state.clone()),
            None,
            Limits::default(),
            trusts,
            shutdown.signalled(),
        )
        .await;
    }
}
