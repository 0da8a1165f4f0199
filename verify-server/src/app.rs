//! Assembling the server from a validated configuration: `App::build` opens the users file and the
//! stores, binds the listeners and registers the signal handlers; `Handle::serve` reports ready and
//! serves until shutdown.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use portcullis_auth::users::UserDatabase;
use portcullis_auth::{OpenMode, SecretOrigin, SessionBackend, StoreSelection, stored_secret};
use portcullis_server_core::clock::{Stopwatch, system_clock};
use portcullis_server_core::{
    Limits, Shutdown, ShutdownTrigger, Workers, bind, serve, serve_on, tls_acceptor,
};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::config::{Config, UserSource};
use crate::error::StartError;
use crate::state::{AppState, Tuning};
use crate::{metrics_router, reload, router};

/// The verify server, ready to be built from a configuration.
#[derive(Debug)]
pub struct App;

/// A built server: listeners bound, stores open, signals registered; nothing served yet.
pub struct Handle {
    state: AppState,
    listener: TcpListener,
    address: SocketAddr,
    tls: Option<TlsAcceptor>,
    metrics: Option<(TcpListener, String)>,
    /// The threads that accept and serve the listener's connections, one per core.
    workers: Workers,
    shutdown: Shutdown,
    trigger: ShutdownTrigger,
    started: Stopwatch,
    /// Starts the SIGHUP reloads (registered in `build`, started with the server).
    #[cfg(unix)]
    on_hangup: Box<dyn FnOnce(AppState) + Send>,
}

impl App {
    /// Build the server for `config`: load the users file, open the session store (Redis when
    /// `session.redis` is set, else the SQLite file) and its regulator, load the TLS files, bind the
    /// listener and the metrics listener, and register SIGTERM/SIGINT, so that a signal sent as soon
    /// as the ready line appears stops the server gracefully.
    pub async fn build(config: Config) -> Result<Handle, StartError> {
        Self::build_with(config, Tuning::default()).await
    }

    /// [`App::build`] with other tuning knobs.
    pub async fn build_with(mut config: Config, tuning: Tuning) -> Result<Handle, StartError> {
        let started = Stopwatch::start();
        let clock = system_clock();
        let now = clock();
        // Users in a directory are attached once the state exists (below).
        let users = match &config.users {
            UserSource::File { path, .. } => {
                UserDatabase::load(path, config.case_insensitive, config.search_email)
                    .map_err(StartError::Users)?
            }
            UserSource::Ldap(_) => UserDatabase::default(),
        };
        let selection = StoreSelection {
            redis: config.redis.clone(),
            sqlite_path: config.storage_path.clone(),
            secret: config.session_secret.clone(),
        };
        let backend = SessionBackend::open(&selection, OpenMode::CreateMissing, now)?;
        if let SessionBackend::Redis(redis) = &backend
            && let Err(e) = portcullis_session::SessionStore::health(redis.as_ref()).await
        {
            tracing::warn!(error = %e, "Redis is not reachable yet: session checks fail closed until it is");
        }
        if let SessionBackend::Sqlite(sqlite) = &backend {
            report_load(Arc::clone(sqlite));
        }
        if config.session_secret.is_none() {
            let (secret, origin) =
                stored_secret(&config.storage_path, "session", &mut rand::rng())?;
            let made = match origin {
                SecretOrigin::Generated => "generated now",
                SecretOrigin::Stored => "generated at first start",
            };
            tracing::info!(
                storage = %config.storage_path.display(),
                "session.secret is not set: using the secret {made} and kept in the SQLite storage"
            );
            config.session_secret = Some(secret);
        }
        let regulator = backend.regulator(config.regulation, now)?;
        let tls = match &config.tls {
            Some((certificate, key)) => Some(tls_acceptor(certificate, key)?),
            None => None,
        };
        let (trigger, shutdown) = Shutdown::on_signals()?;
        #[cfg(unix)]
        let on_hangup = Box::new(
            reload::reload_on_hangup().map_err(portcullis_server_core::ServeError::Signals)?,
        );
        let listener = bind(config.listen.socket()).await?;
        let address =
            listener
                .local_addr()
                .map_err(|source| portcullis_server_core::ServeError::Bind {
                    addr: config.listen.socket(),
                    source,
                })?;
        let metrics = match &config.metrics {
            Some(m) => Some((bind(m.socket()).await?, m.path().to_owned())),
            None => None,
        };
        let workers = Workers::per_core().map_err(StartError::Runtime)?;
        let oidc = config.oidc.take();
        let storage_path = config.storage_path.clone();
        let notifier_check = config.second_factor.notifier_startup_check;
        let state = AppState::new(config, users, backend.sessions(), regulator, clock, tuning)?;
        if let Some(rt) = crate::second_factor::runtime(&state) {
            rt.check_notifier(notifier_check).await?;
        }
        state.attach_app_passwords(backend.app_passwords()?)?;
        crate::directory::attach_configured_directory(&state).await?;
        if let Some(provider) = oidc {
            let runtime =
                crate::oidc::OidcRuntime::build(provider, backend.oidc_store(&storage_path)?, now)
                    .await
                    .map_err(|e| StartError::Oidc(e.to_string()))?;
            state.attach_oidc(runtime)?;
        }
        Ok(Handle {
            state,
            listener,
            address,
            tls,
            metrics,
            workers,
            shutdown,
            trigger,
            started,
            #[cfg(unix)]
            on_hangup,
        })
    }
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle")
            .field("address", &self.address)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl Handle {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.address
    }

    /// The address of the metrics listener, when metrics are on.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics
            .as_ref()
            .and_then(|(listener, _)| listener.local_addr().ok())
    }

    /// The shared state (users, sessions, configuration).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Fires a graceful shutdown, as SIGTERM does.
    pub fn shutdown_trigger(&self) -> ShutdownTrigger {
        self.trigger.clone()
    }

    /// Start the users-file watcher and the metrics listener, log the ready line, and serve until
    /// shutdown; open connections get the drain timeout to finish. Connections are served on
    /// the connection workers, one thread per core; the metrics listener and background tasks on
    /// the caller's runtime. Fails only when the listener cannot be handed to the workers.
    pub async fn serve(self) -> Result<(), StartError> {
        let Self {
            state,
            listener,
            address,
            tls,
            metrics,
            workers,
            shutdown,
            started,
            #[cfg(unix)]
            on_hangup,
            ..
        } = self;
        #[cfg(unix)]
        on_hangup(state.clone());
        let config = state.config();
        if matches!(config.users, UserSource::File { watch: true, .. }) {
            reload::watch_users(state.clone());
        }
        crate::oidc::purge_expired(state.clone());
        crate::oidc::rotate_keys_periodically(state.clone());
        if let Some((listener, path)) = metrics {
            let router = metrics_router(state.clone(), &path);
            tokio::spawn(serve(
                listener,
                router,
                None,
                Limits::default(),
                shutdown.signalled(),
            ));
        }
        let app = match config.listen.prefix() {
            Some(prefix) => Router::new().nest(prefix, router(state.clone())),
            None => router(state.clone()),
        };
        tracing::info!(
            %address,
            path = config.listen.path(),
            tls = tls.is_some(),
            users = config.users.file().map(|_| state.users().len()),
            directory = match &config.users {
                UserSource::Ldap(ldap) => Some(ldap.url.as_str()),
                UserSource::File { .. } => None,
            },
            rules = config.policy.rule_count(),
            startup_ms = started.elapsed().as_millis() as u64,
            workers = workers.count(),
            "portcullis-verify ready"
        );
        serve_on(
            &workers,
            listener,
            app,
            tls,
            Limits::default(),
            shutdown.signalled(),
        )
        .await?;
        Ok(())
    }
}

/// Log the end of the background session load: sessions are served while it runs.
fn report_load(store: Arc<portcullis_session::SqliteStore>) {
    let loading = Stopwatch::start();
    tokio::spawn(async move {
        match store.loaded().await {
            Ok(skipped) => {
                tracing::info!(
                    sessions = store.held(),
                    load_ms = loading.elapsed().as_millis() as u64,
                    "sessions loaded"
                );
                if skipped > 0 {
                    tracing::warn!(skipped, path = %store.path().display(), "session records that do not decode were skipped and left in the file");
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "sessions could not be loaded: checks read them from the file, or refuse if it is damaged; the health check fails")
            }
        }
    });
}
