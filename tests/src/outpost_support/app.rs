//! The protected application of the outpost tests: header echo, WebSocket echo, a
//! server-sent-events stream the test releases, and an HTML page naming the user.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::Body;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Request, State};
use axum::response::{Html, IntoResponse, Json, Response};
use axum::routing::get;
use http::HeaderMap;
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// The protected application, on a free loopback port:
///
/// - `GET /` — an HTML page naming the user from `X-authentik-username` and `-email`
///   (`#user`, `#email`) with a sign-out link (`#sign-out`);
/// - `/ws` — a WebSocket that first sends `hello <X-authentik-username>`, then echoes text;
/// - `GET /events` — server-sent events: `first` at once, `second` only after
///   [`App::release_second_event`];
/// - anything else — JSON `{method, uri, headers}` of what arrived.
pub struct App {
    /// Where it listens.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

#[derive(Default)]
struct Shared {
    requests: AtomicUsize,
    upgrades: AtomicUsize,
    second_event: Notify,
}

impl App {
    /// Start it.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the application");
        let addr = listener.local_addr().expect("application address");
        let shared = Arc::new(Shared::default());
        let router = Router::new()
            .route("/", get(home))
            .route("/ws", get(websocket))
            .route("/events", get(events))
            .fallback(echo)
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self { addr, shared, task }
    }

    /// `http://127.0.0.1:<port>`, the outpost's `internal_host`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests (of any kind) that reached the application.
    pub fn requests(&self) -> usize {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// WebSocket upgrades the application accepted.
    pub fn upgrades(&self) -> usize {
        self.shared.upgrades.load(Ordering::SeqCst)
    }

    /// Let the event stream send its second event (once).
    pub fn release_second_event(&self) {
        self.shared.second_event.notify_one();
    }
}

impl Drop for App {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub(super) fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

async fn home(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Html<String> {
    shared.requests.fetch_add(1, Ordering::SeqCst);
    Html(format!(
        "<!DOCTYPE html><html><head><title>The application</title></head><body>\
         <h1 id=\"user\">{}</h1><p id=\"email\">{}</p>\
         <a id=\"sign-out\" href=\"/outpost.goauthentik.io/sign_out\">Sign out</a></body></html>",
        escape(header(&headers, "x-authentik-username")),
        escape(header(&headers, "x-authentik-email")),
    ))
}

async fn websocket(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    shared.requests.fetch_add(1, Ordering::SeqCst);
    let Ok(ws) = ws else {
        return (http::StatusCode::BAD_REQUEST, "a WebSocket endpoint").into_response();
    };
    shared.upgrades.fetch_add(1, Ordering::SeqCst);
    let user = header(&headers, "x-authentik-username").to_owned();
    ws.on_upgrade(move |socket| ws_echo(socket, user))
}

async fn ws_echo(mut socket: WebSocket, user: String) {
    if socket
        .send(Message::Text(format!("hello {user}").into()))
        .await
        .is_err()
    {
        return;
    }
    while let Some(Ok(message)) = socket.recv().await {
        let reply = match message {
            Message::Text(text) => Message::Text(format!("echo: {}", text.as_str()).into()),
            Message::Close(_) => break,
            _ => continue,
        };
        if socket.send(reply).await.is_err() {
            break;
        }
    }
}

async fn events(State(shared): State<Arc<Shared>>) -> Response {
    shared.requests.fetch_add(1, Ordering::SeqCst);
    // Two events; the second waits for the test.
    let stream = futures_util::stream::unfold(0u8, move |step| {
        let shared = shared.clone();
        async move {
            match step {
                0 => Some((
                    Ok::<_, std::io::Error>("id: 1\ndata: first\n\n".to_owned()),
                    1,
                )),
                1 => {
                    shared.second_event.notified().await;
                    Some((Ok("id: 2\ndata: second\n\n".to_owned()), 2))
                }
                _ => None,
            }
        }
    });
    Response::builder()
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        .body(Body::from_stream(stream))
        .expect("an event-stream response")
}

async fn echo(State(shared): State<Arc<Shared>>, request: Request) -> Json<Value> {
    shared.requests.fetch_add(1, Ordering::SeqCst);
    let headers: serde_json::Map<String, Value> = request
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                json!(String::from_utf8_lossy(v.as_bytes())),
            )
        })
        .collect();
    Json(json!({
        "method": request.method().as_str(),
        "uri": request.uri().to_string(),
        "headers": headers,
    }))
}
