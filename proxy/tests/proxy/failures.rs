//! Failures are typed, and odd input from either side does not break anything.

use std::time::Duration;

use axum::body::Body;
use http::{Method, Request, StatusCode};
use portcullis_proxy::{ClientOptions, ProxyError, Upstream, UpstreamClient};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::support::{PATIENCE, http_upstream, plain_client, recorder};

fn get(path: &str) -> Request<Body> {
    Request::get(path)
        .header("host", "app.example.com")
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn a_closed_port_is_a_connect_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);

    let (client, upstream) = (plain_client(), http_upstream(addr));
    let error = tokio::time::timeout(PATIENCE, client.forward(get("/"), &upstream, None))
        .await
        .expect("a refused connection must not wait for a timeout")
        .unwrap_err();
    assert!(matches!(error, ProxyError::Connect { .. }), "{error:?}");
    assert!(error.is_connect());
    assert!(!error.is_timeout());
}

#[tokio::test]
async fn a_stalled_tls_handshake_hits_the_connect_timeout() {
    // Accepts TCP connections and never answers the TLS client hello.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            held.push(socket);
        }
    });

    let client = UpstreamClient::new(ClientOptions {
        verify_tls: false,
        connect_timeout: Duration::from_millis(300),
        ..ClientOptions::default()
    })
    .unwrap();
    let upstream = Upstream::parse(&format!("https://{addr}")).unwrap();
    let error = tokio::time::timeout(PATIENCE, client.forward(get("/"), &upstream, None))
        .await
        .expect("the connect timeout did not fire")
        .unwrap_err();
    assert_eq!(
        error,
        ProxyError::Timeout {
            after: Duration::from_millis(300)
        }
    );
    assert!(error.is_connect());
    holder.abort();
}

#[tokio::test]
async fn an_upstream_that_hangs_up_is_another_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buffer = [0_u8; 1024];
            let _ = socket.read(&mut buffer).await;
            drop(socket);
        }
    });
    let error = plain_client()
        .forward(get("/"), &http_upstream(addr), None)
        .await
        .unwrap_err();
    assert!(matches!(error, ProxyError::Other { .. }), "{error:?}");
    assert!(!error.is_connect());
}

#[tokio::test]
async fn odd_response_headers_pass_or_go_without_harm() {
    // Bytes no `http` type would build: an obs-text value, a `Connection` token list holding
    // non-ASCII and a real name, and a duplicate header.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut buffer = [0_u8; 4096];
        let _ = socket.read(&mut buffer).await.unwrap();
        socket
            .write_all(
                b"HTTP/1.1 200 Fine\r\n\
                  Connection: \xff\xfe, x-named\r\n\
                  X-Named: 1\r\n\
                  X-Odd: caf\xe9\r\n\
                  X-Twice: a\r\n\
                  X-Twice: b\r\n\
                  Content-Length: 2\r\n\r\nok",
            )
            .await
            .unwrap();
    });
    let response = plain_client()
        .forward(get("/"), &http_upstream(addr), None)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers();
    assert_eq!(headers["x-odd"].as_bytes(), b"caf\xe9");
    assert_eq!(headers.get_all("x-twice").iter().count(), 2);
    assert!(!headers.contains_key("x-named"));
    assert!(!headers.contains_key("connection"));
    let body = axum::body::to_bytes(response.into_body(), 16)
        .await
        .unwrap();
    assert_eq!(body, "ok");
}

#[tokio::test]
async fn connect_requests_are_refused() {
    let (upstream, _observed) = recorder().await;
    let request = Request::builder()
        .method(Method::CONNECT)
        .uri("elsewhere.example:443")
        .body(Body::empty())
        .unwrap();
    let error = plain_client()
        .forward(request, &http_upstream(upstream), None)
        .await
        .unwrap_err();
    assert!(
        matches!(error, ProxyError::InvalidRequest { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn an_upgrade_request_from_a_connection_that_cannot_upgrade_is_refused() {
    // Built in the test, not received by a hyper server: nothing to hand the connection over.
    let (upstream, _observed) = recorder().await;
    let request = Request::get("/ws")
        .header("host", "app.example.com")
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .body(Body::empty())
        .unwrap();
    let error = plain_client()
        .forward(request, &http_upstream(upstream), None)
        .await
        .unwrap_err();
    assert!(matches!(error, ProxyError::Upgrade { .. }), "{error:?}");
}

#[tokio::test]
async fn an_unasked_protocol_switch_is_refused() {
    // The upstream answers a plain request with `101`: there is no upgrade to join.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut buffer = [0_u8; 4096];
        let _ = socket.read(&mut buffer).await.unwrap();
        let _ = socket
            .write_all(
                b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\n",
            )
            .await;
        let _ = socket.read(&mut buffer).await;
    });
    let result = tokio::time::timeout(
        PATIENCE,
        plain_client().forward(get("/"), &http_upstream(addr), None),
    )
    .await
    .unwrap();
    let error = result.unwrap_err();
    assert!(matches!(error, ProxyError::Upgrade { .. }), "{error:?}");
}
