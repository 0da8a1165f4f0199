//! `portcullis-proxy`: the streaming reverse proxy of `portcullis-outpost`'s proxy mode.
//!
//! The outpost authenticates a request, sets the identity and `X-Forwarded-*` headers, and hands
//! it to [`UpstreamClient::forward`] with the application's [`Upstream`] (its `internal_host`, or
//! the session's `ak_proxy.backend_override`). Setting those headers is the caller's job; this
//! crate only moves the request there and the response back:
//!
//! - method, path, query, headers and body are kept; `Host` is the client's unless the application
//!   configures one (authentik's `host_header`);
//! - hop-by-hop headers are removed both ways ([`remove_hop_by_hop`]), except that an upgrade
//!   request (WebSocket) keeps `Connection: upgrade` and `Upgrade` and, on `101`, both connections
//!   are joined;
//! - bodies stream both ways without being buffered whole, so uploads of any size, downloads and
//!   server-sent events pass as they come;
//! - failures are typed ([`ProxyError`]): no connection, connect timeout, TLS (an untrusted
//!   certificate), an invalid upstream URL, a failed upgrade.
//!
//! One [`UpstreamClient`] per application holds hyper-util's pooled client (`client::legacy`):
//! it keeps idle connections for reuse, multiplexes HTTP/2 when a TLS upstream offers `h2` by
//! ALPN, and hands upgraded HTTP/1.1 connections over, which is what a reverse proxy needs and
//! would otherwise be written again. TLS is rustls with the ring provider, verified against the
//! system's trusted roots plus configured ones, or not verified when the application says so.
//! Proxy settings from the environment are not used.
//!
//! ```
//! use axum::body::Body;
//! use axum::extract::{Request, State};
//! use axum::response::{IntoResponse, Response};
//! use http::StatusCode;
//! use portcullis_proxy::{ClientOptions, ProxyError, Upstream, UpstreamClient};
//!
//! #[derive(Clone)]
//! struct App {
//!     client: UpstreamClient,
//!     upstream: Upstream,
//! }
//!
//! async fn proxy(State(app): State<App>, mut request: Request) -> Response {
//!     // Strip first, so a client cannot name the identity headers in `Connection`.
//!     portcullis_proxy::remove_hop_by_hop(request.headers_mut());
//!     request
//!         .headers_mut()
//!         .insert("x-authentik-username", http::HeaderValue::from_static("akadmin"));
//!     match app.client.forward(request, &app.upstream, None).await {
//!         Ok(response) => response,
//!         Err(ProxyError::Timeout { .. }) => StatusCode::GATEWAY_TIMEOUT.into_response(),
//!         Err(_) => StatusCode::BAD_GATEWAY.into_response(),
//!     }
//! }
//!
//! let app = App {
//!     client: UpstreamClient::new(ClientOptions::default())?,
//!     upstream: Upstream::parse("http://127.0.0.1:8080")?,
//! };
//! assert_eq!(app.upstream.authority(), "127.0.0.1:8080");
//! let router: axum::Router = axum::Router::new().fallback(proxy).with_state(app);
//! # let _ = router;
//! # Ok::<(), ProxyError>(())
//! ```

#![warn(missing_docs, unreachable_pub)]

mod client;
mod error;
mod hop;
mod tls;
mod upgrade;
mod upstream;

pub use client::{ClientOptions, UpstreamClient};
pub use error::ProxyError;
pub use hop::remove_hop_by_hop;
pub use upstream::Upstream;
