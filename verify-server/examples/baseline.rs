//! The baseline of the load benchmark (`scripts/bench`, BENCHMARKS.md): `portcullis-verify`'s own
//! serving stack (`portcullis_server_core::serve`: hyper HTTP/1 with the same limits, header timeout, `TCP_NODELAY`
//! and connection info, an axum router, a multi-threaded tokio runtime) answering every request with
//! `200 OK`, and doing nothing else. The gap between it and `portcullis-verify` is the cost of the
//! check itself.
//!
//! `cargo run --release -p portcullis-verify-server --example baseline -- 127.0.0.1:8080`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;

use axum::Router;
use http::header::CONTENT_TYPE;
use portcullis_server_core::{Limits, Shutdown};

// The same allocator as portcullis-verify.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".into())
        .parse()
        .expect("usage: baseline IP:PORT");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async move {
        let listener = portcullis_server_core::bind(addr).await.expect("bind");
        println!("baseline ready on {addr}");
        let router = Router::new()
            .fallback(|| async { ([(CONTENT_TYPE, "text/plain; charset=utf-8")], "200 OK") });
        let (_trigger, shutdown) = Shutdown::on_signals().expect("signals");
        portcullis_server_core::serve(
            listener,
            router,
            None,
            Limits::default(),
            shutdown.signalled(),
        )
        .await;
    });
}
