//! `portcullis-outpost`: the authentik-compatible edge (docs/reference/outpost.md).
//!
//! - **Modes**: `proxy` (the outpost proxies the application, WebSockets and server-sent events
//!   included), `forward_single` and `forward_domain` (nginx, Traefik, Caddy and Envoy ask it at
//!   `/outpost.goauthentik.io/auth/{nginx,traefik,caddy,envoy}`).
//! - **Login** against any OpenID provider: discovery, the authorization-code flow with PKCE,
//!   tokens verified locally with an algorithm allowlist, refresh; sign-out ends every session of
//!   the user on every replica, and OIDC back-channel logout is received.
//! - **Machines**: Bearer JWTs issued for this client, and authentik's app passwords.
//! - **Sessions** server-side in SQLite (surviving restarts) or Redis (shared by replicas), the
//!   cookie holding only a signed random id.
//!
//! [`config`] reads the file of §16; [`App::build`] assembles the server; [`router`] is the
//! whole HTTP surface, for tests and embedding; [`OutpostLayer`] puts the same protection in
//! front of any tower service in-process (`examples/embedded.rs`).
//!
//! ```
//! use portcullis_outpost::config;
//! let text = "storage: { memory: true }\nproviders:\n  - name: app\n    mode: forward_single\n    external_host: https://app.example.com\n    cookie_secret: 'a-cookie-secret-of-at-least-32-bytes!'\n    client_id: app\n    client_secret: s\n    issuer: https://auth.example.com\n";
//! let (config, _) = config::parse("outpost.yml".as_ref(), text, &|_| None).unwrap();
//! assert_eq!(config.providers[0].cookie_name(), "authentik_proxy_a172cedc");
//! assert_eq!(config.listen.socket().port(), 9000);
//! ```

#![warn(missing_docs, unreachable_pub)]

mod app;
pub mod claims;
pub mod config;
mod cookie;
mod error;
mod header_auth;
mod layer;
mod metrics;
mod provider;
pub mod reload;
mod routing;
mod state;
mod web;

pub use app::{App, Handle, open_store};
pub use error::StartError;
pub use layer::{Authenticated, OutpostLayer, Protected};
pub use state::{AppState, Clock, StateError, system_clock};
pub use web::{ListenerScheme, router};
