//! What every Portcullis server is built on, written once: binding and TLS ([`serve`]), request-head
//! limits and timeouts ([`Limits`]), graceful shutdown as a future and the signals that trigger it
//! ([`Shutdown`]), the metrics listener ([`metrics`]), tracing set-up ([`telemetry`]), the clock
//! ([`clock`]), and the configuration kit ([`config`], the `portcullis-config` crate).
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use portcullis_server_core::{Limits, Shutdown, bind, serve};
//!
//! # async fn run() -> Result<(), portcullis_server_core::ServeError> {
//! let (_trigger, shutdown) = Shutdown::on_signals()?; // SIGTERM and SIGINT, registered now
//! let listener = bind("127.0.0.1:9091".parse().unwrap()).await?;
//! let app = Router::new().route("/api/health", get(|| async { "OK" }));
//! serve(listener, app, None, Limits::default(), shutdown.signalled()).await;
//! # Ok(()) }
//! ```

#![warn(missing_docs, unreachable_pub)]

pub mod clock;
pub mod metrics;
mod proxy_protocol;
mod serve;
mod shutdown;
pub mod telemetry;
mod timer;
mod tls;
mod workers;

pub use portcullis_config as config;
pub use proxy_protocol::ProxyProtocolPeers;
pub use serve::{Limits, ServeError, bind, serve, serve_on, serve_with_proxy_protocol};
pub use shutdown::{Shutdown, ShutdownTrigger};
pub use timer::ConnectionTimer;
pub use tls::tls_acceptor;
pub use workers::Workers;
