//! Servers and clients shared by the tests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, Version};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use portcullis_proxy::{ClientOptions, Upstream, UpstreamClient};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// A bound on waits that only fail when something hangs; never a speed assertion.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Serves `router` on a fresh port of 127.0.0.1, with upgrades.
pub async fn serve(router: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

pub fn http_upstream(addr: SocketAddr) -> Upstream {
    Upstream::parse(&format!("http://{addr}")).unwrap()
}

pub fn plain_client() -> UpstreamClient {
    UpstreamClient::new(ClientOptions::default()).unwrap()
}

struct Front {
    client: UpstreamClient,
    upstream: Upstream,
    host: Option<HeaderValue>,
}

async fn forward(State(front): State<Arc<Front>>, request: Request) -> Response {
    match front
        .client
        .forward(request, &front.upstream, front.host.as_ref())
        .await
    {
        Ok(response) => response,
        Err(error) => (StatusCode::BAD_GATEWAY, error.to_string()).into_response(),
    }
}

/// The front server: every request is forwarded to `upstream`.
pub async fn front(
    client: UpstreamClient,
    upstream: Upstream,
    host: Option<HeaderValue>,
) -> SocketAddr {
    let state = Arc::new(Front {
        client,
        upstream,
        host,
    });
    serve(Router::new().fallback(forward).with_state(state)).await
}

/// Sends one request over a new HTTP/1.1 connection and waits for the response head; the headers
/// go as given (no `Host` is added).
pub async fn send(addr: SocketAddr, request: http::Request<Body>) -> http::Response<Incoming> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    tokio::time::timeout(PATIENCE, sender.send_request(request))
        .await
        .expect("no response (headers) from the front server")
        .unwrap()
}

pub async fn body_bytes(response: http::Response<Incoming>) -> Bytes {
    response.into_body().collect().await.unwrap().to_bytes()
}

/// What an upstream saw of one request.
#[derive(Debug)]
pub struct Observed {
    pub method: Method,
    pub uri: Uri,
    pub version: Version,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// An upstream that reports every request it gets and answers with hop-by-hop headers (which the
/// proxy must drop) next to `x-kept: yes`.
pub async fn recorder() -> (SocketAddr, mpsc::UnboundedReceiver<Observed>) {
    let (seen, observed) = mpsc::unbounded_channel();
    let router = Router::new().fallback(record).with_state(seen);
    (serve(router).await, observed)
}

async fn record(State(seen): State<mpsc::UnboundedSender<Observed>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    seen.send(Observed {
        method: parts.method,
        uri: parts.uri,
        version: parts.version,
        headers: parts.headers,
        body,
    })
    .unwrap();
    Response::builder()
        .header("connection", "x-secret-hop")
        .header("x-secret-hop", "1")
        .header("keep-alive", "timeout=5")
        .header("proxy-authenticate", "Basic realm=\"upstream\"")
        .header("trailer", "x-checksum")
        .header("x-kept", "yes")
        .body(Body::from("recorded"))
        .unwrap()
}
