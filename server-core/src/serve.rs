//! The accept loop (HTTP or HTTPS) with header limits, a header timeout, a connection limit and
//! graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::runtime::Handle;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio_rustls::TlsAcceptor;

mod placement;

use crate::proxy_protocol::ProxyProtocolPeers;
use crate::timer::ConnectionTimer;
use crate::workers::Workers;
use placement::Placement;
use tower::ServiceExt;

/// Why a server could not start.
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
    /// A certificate or key file could not be read or parsed.
    #[error("TLS: {}: {message}", file.display())]
    TlsFile {
        /// The file.
        file: std::path::PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The certificate and key do not form a usable TLS configuration.
    #[error("TLS: {0}")]
    Tls(#[from] tokio_rustls::rustls::Error),
    /// The listening socket could not be handed to the connection workers.
    #[error("cannot hand the listening socket to the connection workers: {0}")]
    Workers(std::io::Error),
    /// The signal handlers could not be registered.
    #[error("cannot listen for SIGTERM/SIGINT: {0}")]
    Signals(std::io::Error),
}

/// hyper refuses (panics on) a read buffer under 8 KiB.
const MIN_HEADER_BYTES: usize = 8192;

/// Limits applied to every connection before any handler runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest request head accepted; a larger one gets 431. Authelia's 4 KiB rejects ordinary
    /// application cookies (docs/reference/forward-auth.md §14), so the default is 16 KiB. Values
    /// under hyper's floor of 8 KiB are raised to it.
    pub max_header_bytes: usize,
    /// Most header lines accepted; more gets 431.
    pub max_headers: usize,
    /// Time allowed to send the request head (and to finish a TLS handshake).
    pub header_read_timeout: Duration,
    /// Connections served at once; further connections wait in the kernel backlog.
    pub max_connections: usize,
    /// How long open connections may take to finish once shutdown begins.
    pub drain_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_header_bytes: 16 * 1024,
            max_headers: 100,
            header_read_timeout: Duration::from_secs(5),
            max_connections: 4096,
            drain_timeout: Duration::from_secs(10),
        }
    }
}

/// Bind a listener.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })
}

/// Resolves once `rx` says stop (or its sender is gone).
async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

/// Serve `router` on `listener` until `shutdown` completes; then stop accepting and give open
/// connections up to `limits.drain_timeout` to finish. Each request carries its peer address as
/// `ConnectInfo<SocketAddr>`; connection upgrades (WebSocket) reach the handler.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<TlsAcceptor>,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send,
) {
    serve_inner(
        Accepting::Here(listener),
        router,
        tls,
        limits,
        None,
        shutdown,
    )
    .await;
}

/// [`serve`], with every connection accepted and served on one of `workers`' threads instead of
/// the caller's runtime; the caller's runtime only waits for `shutdown` and the drain. Fails,
/// before serving anything, when the listening socket cannot be given to every worker.
pub async fn serve_on(
    workers: &Workers,
    listener: TcpListener,
    router: Router,
    tls: Option<TlsAcceptor>,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let accepting = Accepting::on_workers(listener, workers).map_err(ServeError::Workers)?;
    serve_inner(accepting, router, tls, limits, None, shutdown).await;
    Ok(())
}

/// [`serve`], and a connection from a peer `proxy_protocol` trusts may start with a PROXY
/// protocol header (v1 or v2): its client address becomes the request's `ConnectInfo`. A
/// malformed header closes the connection; without one the connection is served as usual.
pub async fn serve_with_proxy_protocol(
    listener: TcpListener,
    router: Router,
    tls: Option<TlsAcceptor>,
    limits: Limits,
    proxy_protocol: ProxyProtocolPeers,
    shutdown: impl Future<Output = ()> + Send,
) {
    serve_inner(
        Accepting::Here(listener),
        router,
        tls,
        limits,
        Some(proxy_protocol),
        shutdown,
    )
    .await;
}

/// Everything a connection is served with, shared by the accept loops.
struct Serving {
    router: Router,
    tls: Option<TlsAcceptor>,
    limits: Limits,
    proxy_protocol: Option<ProxyProtocolPeers>,
    /// Open connections each hold one; all free again means every connection has drained.
    slots: Arc<Semaphore>,
    /// Says stop to the accept loops and to open connections.
    stop: watch::Receiver<bool>,
    /// Which worker serves a new connection.
    placement: Placement,
}

/// A connection's place: a connection slot and one open connection on its worker, both given
/// back when it is dropped.
struct Seat {
    serving: Arc<Serving>,
    worker: usize,
    _slot: OwnedSemaphorePermit,
}

impl Seat {
    fn take(serving: &Arc<Serving>, worker: usize, slot: OwnedSemaphorePermit) -> Self {
        serving.placement.opened(worker);
        Self {
            serving: Arc::clone(serving),
            worker,
            _slot: slot,
        }
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        self.serving.placement.closed(self.worker);
    }
}

/// Where connections are accepted, and so served.
enum Accepting {
    /// On the listener, in the runtime `serve` runs in.
    Here(TcpListener),
    /// On duplicates of the listening socket, each registered with one worker's runtime.
    OnWorkers(Vec<(Handle, TcpListener)>),
}

impl Accepting {
    /// A duplicate of `listener`'s socket for each worker, registered with that worker's
    /// reactor, so that every worker accepts (and serves) on its own thread.
    fn on_workers(listener: TcpListener, workers: &Workers) -> std::io::Result<Self> {
        let socket = listener.into_std()?;
        let listeners = workers
            .handles()
            .iter()
            .map(|handle| {
                let _runtime = handle.enter();
                Ok((handle.clone(), TcpListener::from_std(socket.try_clone()?)?))
            })
            .collect::<std::io::Result<_>>()?;
        Ok(Self::OnWorkers(listeners))
    }
}

async fn serve_inner(
    accepting: Accepting,
    router: Router,
    tls: Option<TlsAcceptor>,
    limits: Limits,
    proxy_protocol: Option<ProxyProtocolPeers>,
    shutdown: impl Future<Output = ()> + Send,
) {
    let total = limits.max_connections.clamp(1, u32::MAX as usize);
    let (stop_tx, stop_rx) = watch::channel(false);
    let workers = match &accepting {
        Accepting::Here(_) => Vec::new(),
        Accepting::OnWorkers(listeners) => listeners.iter().map(|(h, _)| h.clone()).collect(),
    };
    let serving = Arc::new(Serving {
        router,
        tls,
        limits,
        proxy_protocol,
        slots: Arc::new(Semaphore::new(total)),
        stop: stop_rx,
        placement: Placement::new(workers),
    });
    let mut accepting_on_workers = Vec::new();
    match accepting {
        Accepting::Here(listener) => {
            tokio::select! {
                () = accept_loop(listener, Arc::clone(&serving), 0) => {}
                () = shutdown => {}
            }
        }
        Accepting::OnWorkers(listeners) => {
            for (worker, (handle, listener)) in listeners.into_iter().enumerate() {
                accepting_on_workers.push(handle.spawn(accept_loop(
                    listener,
                    Arc::clone(&serving),
                    worker,
                )));
            }
            shutdown.await;
        }
    }
    let _ = stop_tx.send(true);
    // Every worker's duplicate of the socket is closed before this returns: nothing is accepted
    // after shutdown.
    for accept_loop in accepting_on_workers {
        let _ = accept_loop.await;
    }
    let all = u32::try_from(total).unwrap_or(u32::MAX);
    tokio::select! {
        _ = serving.slots.acquire_many(all) => {}
        () = tokio::time::sleep(limits.drain_timeout) => {
            tracing::warn!(seconds = limits.drain_timeout.as_secs(), "connections still open after the drain timeout; closing");
        }
    }
}

/// Accept connections until told to stop, as worker `worker` (0 on the caller's runtime); each
/// is served in a task of the worker [`Placement::choose`] picks.
async fn accept_loop(listener: TcpListener, serving: Arc<Serving>, worker: usize) {
    let mut stop = serving.stop.clone();
    loop {
        let permit = tokio::select! {
            p = Arc::clone(&serving.slots).acquire_owned() => match p { Ok(p) => p, Err(_) => return },
            () = stopped(&mut stop) => return,
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
            () = stopped(&mut stop) => return,
        };
        let chosen = serving.placement.choose(worker);
        let seat = Seat::take(&serving, chosen, permit);
        if chosen == worker {
            tokio::spawn(serve_connection(stream, peer, seat));
            continue;
        }
        let Some(handle) = serving.placement.worker(chosen) else {
            // `choose` only picks another worker when there are workers.
            tracing::error!(
                worker = chosen,
                "no such connection worker; connection closed"
            );
            continue;
        };
        // Registered with the chosen worker's reactor from here, so a failure closes the
        // connection now instead of inside the worker.
        let moved = stream.into_std().and_then(|stream| {
            let _runtime = handle.enter();
            tokio::net::TcpStream::from_std(stream)
        });
        match moved {
            Ok(stream) => {
                handle.spawn(serve_connection(stream, peer, seat));
            }
            Err(e) => {
                tracing::warn!(%peer, error = %e, "cannot move a connection to another worker; connection closed");
            }
        }
    }
}

/// One connection, from the PROXY protocol header and TLS handshake to its last response.
async fn serve_connection(mut stream: tokio::net::TcpStream, mut peer: SocketAddr, seat: Seat) {
    let serving = Arc::clone(&seat.serving);
    let limits = serving.limits;
    // Nagle's algorithm only delays the small answers of a forward-auth check.
    let _ = stream.set_nodelay(true);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(ConnectionTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(MIN_HEADER_BYTES))
        .max_headers(limits.max_headers);
    let mut stop = serving.stop.clone();
    if let Some(trusts) = &serving.proxy_protocol
        && trusts(peer.ip())
    {
        match crate::proxy_protocol::read_header(&mut stream, limits.header_read_timeout).await {
            Ok(Some(client)) => peer = client,
            Ok(None) => {}
            Err(()) => {
                tracing::info!(%peer, "a malformed or unfinished PROXY protocol header: connection closed");
                return;
            }
        }
    }
    let service =
        serving
            .router
            .clone()
            .map_request(move |request: http::Request<hyper::body::Incoming>| {
                let mut request = request.map(axum::body::Body::new);
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            });
    let service = TowerToHyperService::new(service);
    match &serving.tls {
        None => drive(&builder, stream, service, &mut stop).await,
        Some(acceptor) => {
            let handshake = acceptor.accept(stream);
            let Ok(Ok(stream)) = tokio::time::timeout(limits.header_read_timeout, handshake).await
            else {
                return;
            };
            drive(&builder, stream, service, &mut stop).await;
        }
    }
    drop(seat);
}

/// Serve HTTP/1 on `io` until the peer is done or `stop` says stop; then finish the request in
/// flight and close. Upgrades (WebSocket) are handed to the handler: the outpost's proxy mode
/// joins them to the upstream's.
async fn drive<I, S>(
    builder: &hyper::server::conn::http1::Builder,
    io: I,
    service: S,
    stop: &mut watch::Receiver<bool>,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::HttpService<hyper::body::Incoming>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    S::ResBody: 'static,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let conn = builder
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        () = stopped(stop) => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

#[cfg(test)]
mod tests;
