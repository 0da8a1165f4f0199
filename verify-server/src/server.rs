//! Serving: the accept loop (HTTP or HTTPS), header limits and timeouts, graceful shutdown, and the
//! users-file watcher.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::state::AppState;
use crate::users::UserDatabase;

/// Largest request header block accepted; larger gets 431 before any handler runs. Authelia's 4 KiB
/// rejects ordinary application cookies (its issues #518, #2331), so Portcullis allows 16 KiB.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Most header lines accepted; more gets 431.
pub const MAX_HEADERS: usize = 100;
/// Time allowed to send the request head.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once; further connections wait in the kernel backlog.
pub const MAX_CONNECTIONS: usize = 4096;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// Address.
        addr: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
    /// The certificate or key could not be loaded.
    #[error("TLS: {0}")]
    Tls(String),
}

/// Load a PEM certificate chain and key into a TLS acceptor.
pub fn tls_acceptor(certificate: &Path, key: &Path) -> Result<TlsAcceptor, ServeError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(certificate)
        .map_err(|e| ServeError::Tls(format!("{}: {e}", certificate.display())))?
        .collect::<Result<_, _>>()
        .map_err(|e| ServeError::Tls(format!("{}: {e}", certificate.display())))?;
    if certs.is_empty() {
        return Err(ServeError::Tls(format!(
            "{}: no certificate found",
            certificate.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| ServeError::Tls(format!("{}: {e}", key.display())))?;
    let mut config = tokio_rustls::rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| ServeError::Tls(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Bind a listener.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })
}

/// Serve `router` on `listener` until `shutdown` turns true; then stop accepting and give open
/// connections up to 10 s to finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<TlsAcceptor>,
    mut shutdown: watch::Receiver<bool>,
) {
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = shutdown.changed() => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let _ = stream.set_nodelay(true);
        let service =
            router
                .clone()
                .map_request(move |request: http::Request<hyper::body::Incoming>| {
                    let mut request = request.map(axum::body::Body::new);
                    request.extensions_mut().insert(ConnectInfo(peer));
                    request
                });
        let service = TowerToHyperService::new(service);
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .max_buf_size(MAX_HEADER_BYTES)
            .max_headers(MAX_HEADERS);
        match &tls {
            None => {
                let conn = builder.serve_connection(TokioIo::new(stream), service);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    let _ = conn.await;
                    drop(permit);
                });
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                let graceful_watcher = graceful.watcher();
                tokio::spawn(async move {
                    let Ok(Ok(stream)) =
                        tokio::time::timeout(HEADER_READ_TIMEOUT, acceptor.accept(stream)).await
                    else {
                        return;
                    };
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    let _ = graceful_watcher.watch(conn).await;
                    drop(permit);
                });
            }
        }
    }
    let _ = TokioExecutor::new();
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(Duration::from_secs(10)) => tracing::warn!("connections still open after 10 s; closing"),
    }
}

/// A channel that turns true on SIGTERM or SIGINT.
pub fn shutdown_signal() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    // Register the handlers now, before the caller reports ready: a signal sent right after the
    // ready line must stop the server gracefully, not kill it with the default action.
    #[cfg(unix)]
    let handlers = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        )
    };
    tokio::spawn(async move {
        #[cfg(unix)]
        match handlers {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => {
                tracing::error!("cannot listen for SIGTERM/SIGINT; stop with SIGKILL");
                std::future::pending::<()>().await;
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
        let _ = tx.send(true);
    });
    rx
}

fn fingerprint(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Reload the users file whenever its modification time or size changes. An invalid new file keeps
/// the old users and logs the error.
pub fn watch_users(state: AppState) {
    let path = state.config().users_path.clone();
    let interval = state.0.tuning.users_poll_interval;
    tokio::spawn(async move {
        let mut last = fingerprint(&path);
        loop {
            tokio::time::sleep(interval).await;
            let now = fingerprint(&path);
            if now == last {
                continue;
            }
            last = now;
            let (ci, email) = (state.config().case_insensitive, state.config().search_email);
            let p = path.clone();
            match tokio::task::spawn_blocking(move || UserDatabase::load(&p, ci, email)).await {
                Ok(Ok(users)) => {
                    tracing::info!(users = users.len(), file = %path.display(), "users file reloaded");
                    state.replace_users(users);
                }
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "users file not reloaded: keeping the previous users")
                }
                Err(e) => tracing::error!(error = %e, "users reload task failed"),
            }
        }
    });
}
