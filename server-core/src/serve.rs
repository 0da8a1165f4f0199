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
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;

use crate::proxy_protocol::ProxyProtocolPeers;
use crate::timer::ConnectionTimer;
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
    serve_inner(listener, router, tls, limits, None, shutdown).await;
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
        listener,
        router,
        tls,
        limits,
        Some(proxy_protocol),
        shutdown,
    )
    .await;
}

async fn serve_inner(
    listener: TcpListener,
    router: Router,
    tls: Option<TlsAcceptor>,
    limits: Limits,
    proxy_protocol: Option<ProxyProtocolPeers>,
    shutdown: impl Future<Output = ()> + Send,
) {
    let total = limits.max_connections.clamp(1, u32::MAX as usize);
    let slots = Arc::new(Semaphore::new(total));
    // Open connections are told to finish through this; each holds a slot until it ends, so all
    // slots free again means every connection has drained.
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            () = &mut shutdown => break,
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
            () = &mut shutdown => break,
        };
        // Nagle's algorithm only delays the small answers of a forward-auth check.
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(ConnectionTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .max_buf_size(limits.max_header_bytes.max(MIN_HEADER_BYTES))
            .max_headers(limits.max_headers);
        let mut stop = stop_rx.clone();
        let acceptor = tls.clone();
        let proxy_protocol = proxy_protocol.clone();
        tokio::spawn(async move {
            let mut stream = stream;
            let mut peer = peer;
            if let Some(trusts) = proxy_protocol
                && trusts(peer.ip())
            {
                match crate::proxy_protocol::read_header(&mut stream, limits.header_read_timeout)
                    .await
                {
                    Ok(Some(client)) => peer = client,
                    Ok(None) => {}
                    Err(()) => {
                        tracing::info!(%peer, "a malformed or unfinished PROXY protocol header: connection closed");
                        drop(permit);
                        return;
                    }
                }
            }
            let service =
                router.map_request(move |request: http::Request<hyper::body::Incoming>| {
                    let mut request = request.map(axum::body::Body::new);
                    request.extensions_mut().insert(ConnectInfo(peer));
                    request
                });
            let service = TowerToHyperService::new(service);
            match acceptor {
                None => {
                    // Upgrades (WebSocket) are handed to the handler: the outpost's proxy mode
                    // joins them to the upstream's.
                    let conn = builder
                        .serve_connection(TokioIo::new(stream), service)
                        .with_upgrades();
                    let mut conn = std::pin::pin!(conn);
                    tokio::select! {
                        _ = conn.as_mut() => {}
                        () = stopped(&mut stop) => {
                            conn.as_mut().graceful_shutdown();
                            let _ = conn.await;
                        }
                    }
                }
                Some(acceptor) => {
                    let handshake = acceptor.accept(stream);
                    let Ok(Ok(stream)) =
                        tokio::time::timeout(limits.header_read_timeout, handshake).await
                    else {
                        return;
                    };
                    let conn = builder
                        .serve_connection(TokioIo::new(stream), service)
                        .with_upgrades();
                    let mut conn = std::pin::pin!(conn);
                    tokio::select! {
                        _ = conn.as_mut() => {}
                        () = stopped(&mut stop) => {
                            conn.as_mut().graceful_shutdown();
                            let _ = conn.await;
                        }
                    }
                }
            }
            drop(permit);
        });
    }
    let _ = stop_tx.send(true);
    let all = u32::try_from(total).unwrap_or(u32::MAX);
    tokio::select! {
        _ = slots.acquire_many(all) => {}
        () = tokio::time::sleep(limits.drain_timeout) => {
            tracing::warn!(seconds = limits.drain_timeout.as_secs(), "connections still open after the drain timeout; closing");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Shutdown;
    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// `GET /peer` answers the connection's peer address.
    fn peer_app() -> Router {
        Router::new().route(
            "/peer",
            get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.ip().to_string() }),
        )
    }

    async fn exchange(addr: SocketAddr, request: &[u8]) -> String {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.write_all(request).await.unwrap();
        let mut out = Vec::new();
        let _ = stream.read_to_end(&mut out).await;
        String::from_utf8_lossy(&out).into_owned()
    }

    #[tokio::test]
    async fn limits_peer_address_and_graceful_shutdown() {
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = peer_app();
        let (trigger, shutdown) = Shutdown::manual();
        let limits = Limits {
            max_header_bytes: 1024, // raised to the 8 KiB floor, not a panic
            ..Limits::default()
        };
        let server = tokio::spawn(serve(listener, app, None, limits, shutdown.signalled()));

        let ok = exchange(
            addr,
            b"GET /peer HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
        assert!(ok.ends_with("127.0.0.1"), "{ok}");

        let big = format!(
            "GET /peer HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
            "a".repeat(9000)
        );
        let refused = exchange(addr, big.as_bytes()).await;
        assert!(refused.starts_with("HTTP/1.1 431"), "{refused}");

        let many: String = (0..120).map(|i| format!("X-{i}: v\r\n")).collect();
        let too_many = exchange(
            addr,
            format!("GET /peer HTTP/1.1\r\nHost: x\r\n{many}Connection: close\r\n\r\n").as_bytes(),
        )
        .await;
        assert!(too_many.starts_with("HTTP/1.1 431"), "{too_many}");

        trigger.trigger();
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .expect("serve returns after shutdown")
            .unwrap();
        assert!(
            tokio::net::TcpStream::connect(addr).await.is_err(),
            "listener closed"
        );
    }

    /// Reads one answer to `GET /peer` (its body is the peer's address, 127.0.0.1).
    async fn read_peer_answer(stream: &mut tokio::net::TcpStream) -> String {
        let mut out = Vec::new();
        let mut buf = [0u8; 1024];
        while !String::from_utf8_lossy(&out).ends_with("\r\n\r\n127.0.0.1") {
            let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
                .await
                .expect("an answer in time")
                .unwrap();
            assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&out));
            out.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    #[tokio::test]
    async fn the_header_read_timeout_closes_slow_heads_and_spares_quick_ones() {
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = peer_app();
        let (trigger, shutdown) = Shutdown::manual();
        let timeout = Duration::from_millis(300);
        let limits = Limits {
            header_read_timeout: timeout,
            ..Limits::default()
        };
        let server = tokio::spawn(serve(listener, app, None, limits, shutdown.signalled()));

        // A head that never finishes: the connection is closed once the timeout has passed.
        let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
        let started = crate::clock::Stopwatch::start();
        slow.write_all(b"GET /peer HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        let mut rest = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut rest))
            .await
            .expect("the slow head is cut off")
            .ok();
        let waited = started.elapsed();
        assert!(waited >= timeout - Duration::from_millis(20), "{waited:?}");
        assert!(!String::from_utf8_lossy(&rest).contains("200 OK"));

        // Quick heads on one keep-alive connection, for longer than several timeouts in all: every
        // one is answered (each head's deadline is its own, not the first one's).
        let mut quick = tokio::net::TcpStream::connect(addr).await.unwrap();
        let started = crate::clock::Stopwatch::start();
        for _ in 0..8 {
            quick
                .write_all(b"GET /peer HTTP/1.1\r\nHost: x\r\n\r\n")
                .await
                .unwrap();
            let answer = read_peer_answer(&mut quick).await;
            assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
            tokio::time::sleep(Duration::from_millis(120)).await;
        }
        assert!(started.elapsed() > timeout * 3);
        // Then idle: the wait for the next head times out too, and the connection closes.
        let mut buf = [0u8; 64];
        let n = tokio::time::timeout(Duration::from_secs(5), quick.read(&mut buf))
            .await
            .expect("the idle connection is closed")
            .unwrap_or(0);
        assert_eq!(n, 0, "{}", String::from_utf8_lossy(&buf[..n]));

        trigger.trigger();
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .expect("serve returns after shutdown")
            .unwrap();
    }

    #[tokio::test]
    async fn binding_a_taken_port_names_the_address() {
        let first = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = first.local_addr().unwrap();
        let err = bind(addr).await.unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("cannot listen on {addr}")),
            "{err}"
        );
    }
}
