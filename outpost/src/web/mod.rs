//! The HTTP side: outpost-level routes, app selection, and the per-app routes
//! (docs/reference/outpost.md §3).

mod check;
mod forward;
pub(crate) mod login;
mod pages;
pub(crate) mod proxy;
mod signout;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::response::Response;
use http::header::HOST;
use http::{Request, StatusCode};

use crate::metrics::Labels;
use crate::provider::{Discovered, ProviderRuntime};
use crate::routing::{clean_path, query_flag, select};
use crate::state::{AppState, Providers};
use forward::Asker;
pub(crate) use pages::with_cookies as add_cookies;
use pages::{empty, text};

/// Which listener a request came in on: `https` for the TLS listener.
#[derive(Debug, Clone, Copy)]
pub struct ListenerScheme(pub &'static str);

/// Everything a per-app handler needs.
pub(crate) struct Ctx {
    pub(crate) state: AppState,
    pub(crate) providers: Arc<Providers>,
    pub(crate) app: Arc<ProviderRuntime>,
    pub(crate) discovered: Arc<Discovered>,
    pub(crate) peer: IpAddr,
    pub(crate) now: u64,
    pub(crate) own_scheme: &'static str,
    pub(crate) host: String,
    method: String,
}

impl Ctx {
    pub(crate) fn labels(&self, kind: &str) -> Labels {
        Labels {
            outpost_name: self.providers.outpost_name.clone(),
            method: self.method.clone(),
            host: self.host.clone(),
            r#type: kind.to_owned(),
        }
    }
}

/// The outpost's whole HTTP surface (ping, assets, app selection, the per-app routes and proxy
/// mode), for `serve`, tests with `oneshot`, and embedding.
pub fn router(state: AppState) -> Router {
    Router::new().fallback(dispatch).with_state(state)
}

/// A store failure: 503, never an allow.
pub(crate) fn store_down(app: &ProviderRuntime, e: &check::StoreDown) -> Response {
    tracing::error!(provider = %app.config.name, reason = %e.0, "session store unavailable: request refused");
    text(
        StatusCode::SERVICE_UNAVAILABLE,
        "session store unavailable\n",
    )
}

async fn dispatch(State(state): State<AppState>, request: Request<Body>) -> Response {
    let ctx = match prepare(&state, &request) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let started = portcullis_server_core::clock::Stopwatch::start();
    let path = request.uri().path().to_owned();
    let host = ctx.host.clone();
    let (kind, response) = route(&ctx, request, &path, &host).await;
    state
        .0
        .metrics
        .request(&ctx.labels(kind), started.elapsed().as_secs_f64());
    response
}

/// The outpost-level part of every request (§3.2): ping, static assets, app selection, path
/// cleaning, and the provider's readiness. `Err` is the answer already.
// The error is the answer itself, made at most once per request: boxing it buys nothing.
#[allow(clippy::result_large_err)]
pub(crate) fn prepare(state: &AppState, request: &Request<Body>) -> Result<Ctx, Response> {
    let path = request.uri().path();
    if path.starts_with("/outpost.goauthentik.io/ping") {
        return Err(empty(StatusCode::NO_CONTENT));
    }
    if let Some(asset) = path.strip_prefix("/outpost.goauthentik.io/static/") {
        return Err(pages::static_asset(asset));
    }
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip());
    let own_scheme = request
        .extensions()
        .get::<ListenerScheme>()
        .map_or("http", |s| s.0);
    let providers = state.providers();
    let forwarded_host = providers
        .trusted
        .contains(peer)
        .then(|| request.headers().get("x-forwarded-host"))
        .flatten();
    let host = forwarded_host
        .or_else(|| request.headers().get(HOST))
        .and_then(|v| v.to_str().ok())
        .map(|h| h.split(',').next().unwrap_or("").trim().to_owned())
        .or_else(|| request.uri().authority().map(|a| a.as_str().to_owned()))
        .unwrap_or_default();
    let Some(index) = select(&providers.configs, &host) else {
        tracing::info!(host, "no provider serves this host");
        return Err(pages::unknown_host(&host));
    };
    let app = providers.list[index].clone();
    if let Some(cleaned) = clean_path(path) {
        let location = match request.uri().query() {
            Some(q) => format!("{cleaned}?{q}"),
            None => cleaned,
        };
        let mut r = pages::found(&location);
        *r.status_mut() = StatusCode::MOVED_PERMANENTLY;
        return Err(r);
    }
    let Some(discovered) = app.discovered() else {
        tracing::info!(provider = %app.config.name, "the provider is not discovered yet: 503");
        return Err(text(
            StatusCode::SERVICE_UNAVAILABLE,
            "the identity provider is not reachable yet\n",
        ));
    };
    Ok(Ctx {
        now: state.now(),
        method: request.method().as_str().to_owned(),
        host,
        state: state.clone(),
        providers: providers.clone(),
        app,
        discovered,
        peer,
        own_scheme,
    })
}

/// Whether the outpost itself answers this request (its endpoints and the signatures), rather
/// than the application.
pub(crate) fn is_outpost_request(request: &Request<Body>) -> bool {
    let query = request.uri().query();
    request.uri().path().starts_with("/outpost.goauthentik.io/")
        || query_flag(query, "X-authentik-auth-callback")
        || query_flag(query, "X-authentik-logout")
}

async fn route(
    ctx: &Ctx,
    request: Request<Body>,
    path: &str,
    host: &str,
) -> (&'static str, Response) {
    let (parts, body) = request.into_parts();
    let query = parts.uri.query();
    let checked = || {
        check::check(
            &ctx.state,
            &ctx.app,
            &ctx.discovered,
            &parts.headers,
            ctx.now,
        )
    };
    // The signatures work on any path (§3.3).
    if query_flag(query, "X-authentik-auth-callback") || path == "/outpost.goauthentik.io/callback"
    {
        return (
            "callback",
            match checked().await {
                Ok(c) => login::callback(ctx, c.cookie_id.as_ref(), query, c.set_cookies).await,
                Err(e) => store_down(&ctx.app, &e),
            },
        );
    }
    if query_flag(query, "X-authentik-logout") || path == "/outpost.goauthentik.io/sign_out" {
        return (
            "sign_out",
            match checked().await {
                Ok(c) => signout::sign_out(ctx, c).await,
                Err(e) => store_down(&ctx.app, &e),
            },
        );
    }
    if path == "/outpost.goauthentik.io/start" {
        let rd = crate::routing::query_param(query, "rd")
            .and_then(|rd| crate::routing::accept_redirect(&ctx.app.config, &rd))
            .unwrap_or_default();
        return (
            "start",
            match checked().await {
                Ok(c) => login::start(ctx, c.cookie_id.as_ref(), &rd, c.set_cookies),
                Err(e) => store_down(&ctx.app, &e),
            },
        );
    }
    if path == "/outpost.goauthentik.io/backchannel-logout" {
        return (
            "backchannel_logout",
            signout::backchannel(ctx, &parts, body).await,
        );
    }
    if ctx.app.config.mode.is_forward() {
        let asker = match path {
            "/outpost.goauthentik.io/auth/nginx" => Some((Asker::Nginx, "")),
            "/outpost.goauthentik.io/auth/traefik" => Some((Asker::Traefik, "")),
            "/outpost.goauthentik.io/auth/caddy" => Some((Asker::Caddy, "")),
            p => p
                .strip_prefix("/outpost.goauthentik.io/auth/envoy")
                .map(|rest| (Asker::Envoy, rest)),
        };
        let Some((asker, rest)) = asker else {
            return (
                "unknown",
                text(StatusCode::NOT_FOUND, "404 page not found\n"),
            );
        };
        return (
            asker.label(),
            forward::forward(ctx, asker, &parts, rest).await,
        );
    }
    (
        "proxy",
        proxy::proxy(ctx, Request::from_parts(parts, body), host).await,
    )
}
