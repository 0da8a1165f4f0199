//! The serving loop against real loopback sockets.

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

/// Reads from `stream` until what it has read ends with `suffix`; fails on a close or a wait over
/// 5 s.
async fn read_until(stream: &mut tokio::net::TcpStream, suffix: &str) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&out).ends_with(suffix) {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .expect("an answer in time")
            .unwrap();
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&out));
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads one answer to `GET /peer` (its body is the peer's address, 127.0.0.1).
async fn read_peer_answer(stream: &mut tokio::net::TcpStream) -> String {
    read_until(stream, "\r\n\r\n127.0.0.1").await
}

/// `GET /thread` answers the name of the thread that served it, then `;` and the peer address.
fn thread_app() -> Router {
    Router::new().route(
        "/thread",
        get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move {
            let thread = std::thread::current();
            format!("{};{}", thread.name().unwrap_or("?"), peer.ip())
        }),
    )
}

/// Sends `GET /thread` on a kept-alive connection and returns the answer's body.
async fn ask_thread(stream: &mut tokio::net::TcpStream) -> String {
    stream
        .write_all(b"GET /thread HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until(stream, "127.0.0.1").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    answer.rsplit("\r\n\r\n").next().unwrap().to_owned()
}

#[tokio::test]
async fn on_workers_connections_spread_over_the_workers_and_drain_at_shutdown() {
    let workers = Workers::start(std::num::NonZeroUsize::new(2).unwrap()).unwrap();
    let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (trigger, shutdown) = Shutdown::manual();
    let server = tokio::spawn({
        let workers = workers.clone();
        async move {
            serve_on(
                &workers,
                listener,
                thread_app(),
                None,
                Limits::default(),
                shutdown.signalled(),
            )
            .await
        }
    });

    // Kept-alive connections opened one after another, as a reverse proxy's pool: each
    // served on one worker for all its requests, and the second on the other worker.
    let mut first = tokio::net::TcpStream::connect(addr).await.unwrap();
    let on_first = ask_thread(&mut first).await;
    let mut second = tokio::net::TcpStream::connect(addr).await.unwrap();
    let on_second = ask_thread(&mut second).await;
    for answer in [&on_first, &on_second] {
        assert!(answer.starts_with("portcullis-worker-"), "{answer}");
        assert!(answer.ends_with(";127.0.0.1"), "{answer}");
    }
    assert_ne!(on_first, on_second, "both connections on one worker");
    for _ in 0..3 {
        assert_eq!(ask_thread(&mut first).await, on_first);
        assert_eq!(ask_thread(&mut second).await, on_second);
    }
    // Once the first has ended, the next connection goes to the worker it leaves free.
    drop(first);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut third = tokio::net::TcpStream::connect(addr).await.unwrap();
    assert_eq!(ask_thread(&mut third).await, on_first);

    // Shutdown: kept-alive connections are closed once idle, and nothing is accepted.
    trigger.trigger();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("serve_on returns after shutdown")
        .unwrap()
        .unwrap();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), second.read_to_end(&mut rest))
        .await
        .expect("the idle connection is closed");
    assert!(read.is_ok_and(|n| n == 0), "{rest:?}");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "listener closed on every worker"
    );
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
