//! The outpost as a tower [`Layer`]: any axum or tower service gets the outpost's protection
//! in-process — the OIDC login, the session cookie, header auth, unauthenticated paths and the
//! access rules — and finds who is asking in the request's extensions ([`Authenticated`]).
//!
//! The outpost's own paths (`/outpost.goauthentik.io/…`: start, callback, sign-out, ping) and
//! the callback and logout signatures are answered by the layer; every other request reaches the
//! inner service only when admitted, with the `X-authentik-*` headers set and spoofed copies
//! removed, exactly as proxy mode sends it upstream.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::response::Response;
use http::Request;
use portcullis_core::Identity;
use tower::{Layer, Service, ServiceExt as _};

use crate::claims::{Claims, SessionData};
use crate::state::AppState;
use crate::web::{is_outpost_request, prepare, proxy::admit, router};

/// Who an admitted request comes from, in its extensions. Absent on allow-listed requests made
/// without a session.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The identity (username, groups, email, uid = `sub`).
    pub identity: Identity,
    /// The provider's claims.
    pub claims: Claims,
    /// The raw token (`X-authentik-jwt`).
    pub token: String,
}

impl Authenticated {
    fn of(data: &SessionData, client_id: &str) -> Self {
        Self {
            identity: data.claims.identity(client_id),
            claims: data.claims.clone(),
            token: data.raw_token.clone(),
        }
    }
}

/// Protect a service with the outpost whose state is `state` (built from an outpost
/// configuration; the provider is chosen by host as in the server).
#[derive(Debug, Clone)]
pub struct OutpostLayer {
    state: AppState,
}

impl OutpostLayer {
    /// A layer on `state`. Run [`AppState::discover_all`] (or serve discovery) before requests
    /// arrive: until the provider is discovered, requests are answered 503.
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

impl<S> Layer<S> for OutpostLayer {
    type Service = Protected<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Protected {
            state: self.state.clone(),
            inner,
        }
    }
}

/// A service behind the outpost.
#[derive(Debug, Clone)]
pub struct Protected<S> {
    state: AppState,
    inner: S,
}

impl<S> Service<Request<Body>> for Protected<S>
where
    S: Service<Request<Body>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // The inner service is made ready when a request is admitted.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let state = self.state.clone();
        let inner = self.inner.clone();
        Box::pin(async move {
            if is_outpost_request(&request) {
                return router(state).oneshot(request).await;
            }
            let ctx = match prepare(&state, &request) {
                Ok(ctx) => ctx,
                Err(response) => return Ok(response),
            };
            let host = ctx.host.clone();
            let admitted = match admit(&ctx, request, &host).await {
                Ok(a) => a,
                Err(response) => return Ok(response),
            };
            let mut request = admitted.request;
            if let Some(data) = &admitted.auth {
                request
                    .extensions_mut()
                    .insert(Authenticated::of(data, &ctx.app.config.client_id));
            }
            let response = inner.oneshot(request).await?;
            Ok(crate::web::add_cookies(response, &admitted.set_cookies))
        })
    }
}
