//! `UpstreamClient::forward` over real sockets on 127.0.0.1: axum upstreams (plain, TLS, HTTP/2),
//! an axum front server whose fallback forwards, and hyper or tungstenite clients.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod failures;
mod passthrough;
mod streaming;
mod support;
mod tls;
mod websocket;
