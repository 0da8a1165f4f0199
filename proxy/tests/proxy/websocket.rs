//! WebSocket through the proxy: the upgrade is forwarded and both connections are joined.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::ws::{Message as AxumMessage, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use axum::routing::get;
use futures_util::{SinkExt, StreamExt};
use http::{HeaderValue, Version};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

use crate::support::{PATIENCE, front, http_upstream, plain_client, serve};

/// The upstream route: echoes every text and binary message, and says in a header of the `101`
/// which HTTP version the upgrade request came over.
pub fn echo_router() -> Router {
    Router::new().route("/ws", get(upgrade))
}

async fn upgrade(version: Version, ws: WebSocketUpgrade) -> Response {
    let mut response = ws.on_upgrade(echo);
    let version = HeaderValue::from_str(&format!("{version:?}")).unwrap();
    response.headers_mut().insert("x-seen-version", version);
    response
}

async fn echo(mut socket: WebSocket) {
    while let Some(Ok(message)) = socket.recv().await {
        match message {
            AxumMessage::Text(_) | AxumMessage::Binary(_) => {
                if socket.send(message).await.is_err() {
                    return;
                }
            }
            AxumMessage::Close(_) => return,
            AxumMessage::Ping(_) | AxumMessage::Pong(_) => {}
        }
    }
}

/// Opens a WebSocket to `front`'s `/ws`, checks a text and a binary echo, closes it, and returns
/// the `x-seen-version` header of the `101`.
pub async fn echo_through(front: SocketAddr) -> String {
    let stream = TcpStream::connect(front).await.unwrap();
    let (mut socket, response) = tokio_tungstenite::client_async("ws://app.example.com/ws", stream)
        .await
        .unwrap();
    assert_eq!(response.status(), 101);

    socket
        .send(Message::text("hello through the proxy"))
        .await
        .unwrap();
    let answer = tokio::time::timeout(PATIENCE, socket.next()).await.unwrap();
    assert_eq!(
        answer.unwrap().unwrap(),
        Message::text("hello through the proxy")
    );

    let binary = vec![0_u8, 1, 2, 254, 255];
    socket.send(Message::binary(binary.clone())).await.unwrap();
    let answer = tokio::time::timeout(PATIENCE, socket.next()).await.unwrap();
    assert_eq!(answer.unwrap().unwrap(), Message::binary(binary));

    socket.close(None).await.unwrap();
    response
        .headers()
        .get("x-seen-version")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn websocket_echo_through_the_proxy() {
    let upstream = serve(echo_router()).await;
    let front = front(plain_client(), http_upstream(upstream), None).await;
    assert_eq!(echo_through(front).await, "HTTP/1.1");
}

#[tokio::test]
async fn a_refused_upgrade_is_an_ordinary_response() {
    // The recorder answers `200` to the upgrade request: the client gets that `200`, with the
    // upgrade headers gone.
    let (upstream, mut observed) = crate::support::recorder().await;
    let front = front(plain_client(), http_upstream(upstream), None).await;
    let request = http::Request::get("/not-a-socket")
        .header("host", "app.example.com")
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .body(axum::body::Body::empty())
        .unwrap();
    let response = crate::support::send(front, request).await;
    assert_eq!(response.status(), 200);
    assert!(!response.headers().contains_key("upgrade"));

    // The upgrade request itself reached the upstream with its upgrade headers.
    let seen = observed.recv().await.unwrap();
    assert_eq!(seen.headers["connection"], "upgrade");
    assert_eq!(seen.headers["upgrade"], "websocket");
}

#[tokio::test]
async fn an_idle_upgraded_connection_is_closed_and_a_busy_one_is_not() {
    let upstream = serve(echo_router()).await;
    let client = portcullis_proxy::UpstreamClient::new(portcullis_proxy::ClientOptions {
        upgrade_idle_timeout: std::time::Duration::from_millis(300),
        ..portcullis_proxy::ClientOptions::default()
    })
    .unwrap();
    let front = front(client, http_upstream(upstream), None).await;
    let stream = TcpStream::connect(front).await.unwrap();
    let (mut socket, _) = tokio_tungstenite::client_async("ws://app.example.com/ws", stream)
        .await
        .unwrap();
    // Busy: a message every 100 ms for more than twice the idle limit keeps it open.
    for i in 0..8 {
        socket.send(Message::text(format!("m{i}"))).await.unwrap();
        let echoed = tokio::time::timeout(PATIENCE, socket.next()).await.unwrap();
        assert_eq!(echoed.unwrap().unwrap(), Message::text(format!("m{i}")));
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // Idle: the proxy closes it within twice the limit; the next read sees the end.
    let ended = tokio::time::timeout(PATIENCE, socket.next()).await.unwrap();
    assert!(
        !matches!(ended, Some(Ok(Message::Text(_)))),
        "the idle connection was closed: {ended:?}"
    );
}
