//! The protected application: answers every request with what it received (method, URI as sent,
//! every header line) as JSON, records it, and echoes WebSocket messages on any path.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Json, Response};
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

/// One request as the application saw it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Seen {
    /// Method.
    pub method: String,
    /// Request target as received (path and query, not normalised).
    pub uri: String,
    /// Every header line, names lower-cased, in order.
    pub headers: Vec<(String, String)>,
}

impl Seen {
    /// Every value of a header (`name` lower-case).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The only value of a header; panics if it was sent more than once.
    pub fn one(&self, name: &str) -> Option<&str> {
        let all = self.all(name);
        assert!(
            all.len() <= 1,
            "{name} reached the application {} times: {all:?}",
            all.len()
        );
        all.first().copied()
    }

    /// Names of headers whose name, with `_` read as `-`, is one of `names`' (lower-case).
    pub fn header_names_like(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|n| n.replace('_', "-") == name)
            .collect()
    }
}

type Log = Arc<Mutex<Vec<Seen>>>;

/// The running application.
pub struct Upstream {
    /// Where it listens.
    pub addr: SocketAddr,
    log: Log,
    task: JoinHandle<()>,
}

impl Upstream {
    /// Start it on a free loopback port.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the upstream");
        let addr = listener.local_addr().expect("upstream address");
        let log: Log = Arc::default();
        let app = Router::new().fallback(handle).with_state(log.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, log, task }
    }

    /// Everything received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.log.lock().expect("log").clone()
    }

    /// How many requests arrived so far.
    pub fn count(&self) -> usize {
        self.log.lock().expect("log").len()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(
    State(log): State<Log>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    request: Request,
) -> Response {
    let seen = Seen {
        method: request.method().to_string(),
        uri: request.uri().to_string(),
        headers: request
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
    };
    log.lock().expect("log").push(seen.clone());
    match ws {
        Ok(upgrade) => upgrade.on_upgrade(echo).into_response(),
        Err(_) => Json(seen).into_response(),
    }
}

async fn echo(mut socket: WebSocket) {
    while let Some(Ok(message)) = socket.recv().await {
        let reply = match message {
            Message::Text(text) => Message::Text(format!("echo: {}", text.as_str()).into()),
            Message::Binary(bytes) => Message::Binary(bytes),
            Message::Close(_) => break,
            _ => continue,
        };
        if socket.send(reply).await.is_err() {
            break;
        }
    }
}
