//! Bodies stream both ways: server-sent events arrive while the upstream still waits, a request
//! body reaches the upstream before the client has finished it, and 32 MiB pass intact.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::response::Response;
use axum::routing::{get, post};
use futures_util::{StreamExt, stream};
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};

use crate::support::{PATIENCE, body_bytes, front, http_upstream, plain_client, send, serve};

const CHUNK: usize = 64 * 1024;
const CHUNKS: usize = 512; // 32 MiB

/// Chunk `index` of the large body: bytes that differ by position, so a lost, repeated or
/// reordered chunk changes the hash.
fn chunk(index: usize) -> Bytes {
    (0..CHUNK)
        .map(|offset| ((index * 31 + offset * 7) % 251) as u8)
        .collect::<Vec<u8>>()
        .into()
}

fn large_body() -> Body {
    Body::from_stream(stream::iter(
        (0..CHUNKS).map(|index| Ok::<_, Infallible>(chunk(index))),
    ))
}

fn large_digest() -> String {
    let mut hasher = Sha256::new();
    for index in 0..CHUNKS {
        hasher.update(chunk(index));
    }
    format!("{:x}", hasher.finalize())
}

/// Reads `body` to its end, hashing as it goes: `"<bytes> <sha256>"`.
async fn count_and_hash(body: Body) -> String {
    let mut data = body.into_data_stream();
    let mut hasher = Sha256::new();
    let mut count = 0_usize;
    while let Some(chunk) = data.next().await {
        let chunk = chunk.unwrap();
        count += chunk.len();
        hasher.update(&chunk);
    }
    format!("{count} {:x}", hasher.finalize())
}

type Release = Arc<Mutex<Option<oneshot::Receiver<()>>>>;

/// One event, then nothing until the test releases the second.
async fn events(State(release): State<Release>) -> Response {
    let release = release.lock().unwrap().take().unwrap();
    let first = stream::once(async { Ok::<_, Infallible>(Bytes::from_static(b"data: one\n\n")) });
    let second = stream::once(async move {
        release.await.unwrap();
        Ok::<_, Infallible>(Bytes::from_static(b"data: two\n\n"))
    });
    Response::builder()
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        .body(Body::from_stream(first.chain(second)))
        .unwrap()
}

#[tokio::test]
async fn server_sent_events_reach_the_client_before_the_stream_ends() {
    let (release, released) = oneshot::channel();
    let state: Release = Arc::new(Mutex::new(Some(released)));
    let upstream = serve(
        Router::new()
            .route("/events", get(events))
            .with_state(state),
    )
    .await;
    let front = front(plain_client(), http_upstream(upstream), None).await;

    let request = http::Request::get("/events")
        .header("host", "app.example.com")
        .header("accept", "text/event-stream")
        .body(Body::empty())
        .unwrap();
    let response = send(front, request).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.into_body();

    // The upstream cannot send more than the first event until `release` fires, so reading it
    // while `release` is still held proves the response is not buffered.
    let mut received = Vec::new();
    while !received.ends_with(b"\n\n") {
        let frame = tokio::time::timeout(PATIENCE, body.frame())
            .await
            .expect("the first event did not arrive while the upstream was waiting")
            .expect("the stream ended before the first event")
            .unwrap();
        if let Ok(data) = frame.into_data() {
            received.extend_from_slice(&data);
        }
    }
    assert_eq!(received, b"data: one\n\n");

    release.send(()).unwrap();
    let rest = tokio::time::timeout(PATIENCE, body.collect())
        .await
        .unwrap()
        .unwrap()
        .to_bytes();
    assert_eq!(rest, "data: two\n\n");
}

/// Reports each request body frame to the test as it arrives, then answers with the total.
async fn frames(State(report): State<mpsc::UnboundedSender<Bytes>>, request: Request) -> String {
    let mut data = request.into_body().into_data_stream();
    let mut total = 0;
    while let Some(chunk) = data.next().await {
        let chunk = chunk.unwrap();
        total += chunk.len();
        report.send(chunk).unwrap();
    }
    total.to_string()
}

#[tokio::test]
async fn request_body_reaches_the_upstream_before_the_client_finishes_it() {
    let (report, mut reported) = mpsc::unbounded_channel();
    let upstream = serve(
        Router::new()
            .route("/frames", post(frames))
            .with_state(report),
    )
    .await;
    let front = front(plain_client(), http_upstream(upstream), None).await;

    let (feed, fed) = mpsc::channel::<Result<Bytes, Infallible>>(1);
    let body = Body::from_stream(stream::unfold(fed, |mut fed| async move {
        fed.recv().await.map(|item| (item, fed))
    }));
    let request = http::Request::post("/frames")
        .header("host", "app.example.com")
        .body(body)
        .unwrap();
    let exchange = tokio::spawn(async move { body_bytes(send(front, request).await).await });

    feed.send(Ok(Bytes::from_static(b"early"))).await.unwrap();
    let mut first = Vec::new();
    while first.len() < b"early".len() {
        let chunk = tokio::time::timeout(PATIENCE, reported.recv())
            .await
            .expect(
                "the start of the body did not reach the upstream while the client held the rest",
            )
            .unwrap();
        first.extend_from_slice(&chunk);
    }
    assert_eq!(first, b"early");

    feed.send(Ok(Bytes::from_static(b"late"))).await.unwrap();
    drop(feed);
    let total = tokio::time::timeout(PATIENCE, exchange)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(total, "9");
}

async fn upload(request: Request) -> String {
    count_and_hash(request.into_body()).await
}

async fn download() -> Body {
    large_body()
}

#[tokio::test]
async fn a_large_request_body_arrives_intact() {
    let upstream = serve(Router::new().route("/upload", post(upload))).await;
    let front = front(plain_client(), http_upstream(upstream), None).await;

    let request = http::Request::post("/upload")
        .header("host", "app.example.com")
        .header("content-type", "application/octet-stream")
        .body(large_body())
        .unwrap();
    let response = send(front, request).await;
    assert_eq!(response.status(), 200);
    let seen = body_bytes(response).await;
    assert_eq!(seen, format!("{} {}", CHUNK * CHUNKS, large_digest()));
}

#[tokio::test]
async fn a_large_response_body_arrives_intact() {
    let upstream = serve(Router::new().route("/download", get(download))).await;
    let front = front(plain_client(), http_upstream(upstream), None).await;

    let request = http::Request::get("/download")
        .header("host", "app.example.com")
        .body(Body::empty())
        .unwrap();
    let response = send(front, request).await;
    assert_eq!(response.status(), 200);
    let received = count_and_hash(Body::new(response.into_body())).await;
    assert_eq!(received, format!("{} {}", CHUNK * CHUNKS, large_digest()));
}
