//! The outpost inside an axum application: `cargo run -p portcullis-outpost --example embedded
//! -- outpost.yml 127.0.0.1:3000`. The configuration is an outpost file (its first provider's
//! `external_host` is this application's URL); the handler reads who is asking from the request's
//! extensions.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::Extension;
use axum::routing::get;
use portcullis_outpost::{AppState, Authenticated, OutpostLayer, config, open_store, system_clock};

/// The protected application: greets the user.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route(
            "/",
            get(|user: Option<Extension<Authenticated>>| async move {
                match user {
                    Some(Extension(user)) => format!(
                        "hello {} ({})",
                        user.identity.username,
                        user.identity.groups.join(", ")
                    ),
                    None => "hello stranger".to_owned(),
                }
            }),
        )
        .layer(OutpostLayer::new(state))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let file = args.next().unwrap_or_else(|| "outpost.yml".into());
    let listen: SocketAddr = args
        .next()
        .unwrap_or_else(|| "127.0.0.1:3000".into())
        .parse()?;
    let env = |name: &str| std::env::var(name).ok();
    let (config, _) = config::load(file.as_ref(), &env)?;
    let store = open_store(&config.storage).await?;
    let state = AppState::new(&config, store, system_clock())?;
    state.spawn_discovery();
    let listener = tokio::net::TcpListener::bind(listen).await?;
    axum::serve(
        listener,
        app(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await?;
    Ok(())
}
