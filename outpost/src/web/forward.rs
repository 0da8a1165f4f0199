//! The forward-auth endpoints (docs/reference/outpost.md §5): `auth/nginx`, `auth/traefik`,
//! `auth/caddy` and `auth/envoy…`.

use axum::response::Response;
use http::StatusCode;
use http::header::USER_AGENT;
use http::request::Parts;
use portcullis_core::{Connection, Dialect, RequestHead, Target, resolve};

use super::Ctx;
use super::check::{check, identity_headers, identity_of, permitted};
use super::pages::{page, text, with_cookies};
use crate::config::Mode;
use crate::routing::{accept_redirect, query_flag};

/// Which proxy asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Asker {
    Nginx,
    Traefik,
    Caddy,
    Envoy,
}

impl Asker {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Asker::Nginx => "auth_nginx",
            Asker::Traefik => "auth_traefik",
            Asker::Caddy => "auth_caddy",
            Asker::Envoy => "auth_envoy",
        }
    }
}

/// The path the outpost's own endpoints live under.
const OUTPOST_PREFIX: &str = "/outpost.goauthentik.io";

/// fwd, as the dialect describes it.
fn target(ctx: &Ctx, asker: Asker, parts: &Parts, envoy_rest: &str) -> Result<Target, String> {
    let trusted = &ctx.providers.trusted;
    let conn = Connection {
        peer: ctx.peer,
        trusted,
        own_scheme: ctx.own_scheme,
    };
    let path_and_query;
    let dialect = match asker {
        Asker::Nginx => Dialect::OutpostNginx,
        Asker::Traefik | Asker::Caddy => Dialect::OutpostForwarded,
        Asker::Envoy => {
            path_and_query = match parts.uri.query() {
                Some(q) => format!("{envoy_rest}?{q}"),
                None => envoy_rest.to_owned(),
            };
            Dialect::OutpostEnvoy {
                path_and_query: &path_and_query,
            }
        }
    };
    resolve(dialect, RequestHead::from(parts), conn).map_err(|e| e.to_string())
}

/// The subject of the allow-list: the path in proxy and forward_single, the whole URL in
/// forward_domain (§7).
fn allow_listed(ctx: &Ctx, target: &Target) -> bool {
    let skip = &ctx.app.config.skip;
    match ctx.app.config.mode {
        Mode::ForwardDomain => skip.matches_url(&target.url),
        _ => skip.matches_path(&target.url),
    }
}

pub(crate) async fn forward(ctx: &Ctx, asker: Asker, parts: &Parts, envoy_rest: &str) -> Response {
    let app = &ctx.app;
    let target = match target(ctx, asker, parts, envoy_rest) {
        Ok(t) => t,
        Err(reason) => {
            tracing::warn!(provider = %app.config.name, endpoint = asker.label(), reason, "the original URL cannot be built: check the proxy configuration");
            return if asker == Asker::Envoy {
                text(StatusCode::BAD_REQUEST, "bad request\n")
            } else {
                text(StatusCode::INTERNAL_SERVER_ERROR, "configuration error\n")
            };
        }
    };
    let fwd = target.url.to_string();
    if matches!(asker, Asker::Traefik | Asker::Caddy) {
        let query = target.url.query();
        let checked = match check(&ctx.state, app, &ctx.discovered, &parts.headers, ctx.now).await {
            Ok(c) => c,
            Err(e) => return super::store_down(app, &e),
        };
        if query_flag(query, "X-authentik-auth-callback") {
            return super::login::callback(
                ctx,
                checked.cookie_id.as_ref(),
                query,
                checked.set_cookies,
            )
            .await;
        }
        if query_flag(query, "X-authentik-logout") {
            return super::signout::sign_out(ctx, checked).await;
        }
        return decide(ctx, asker, parts, &target, &fwd, checked).await;
    }
    let checked = match check(&ctx.state, app, &ctx.discovered, &parts.headers, ctx.now).await {
        Ok(c) => c,
        Err(e) => return super::store_down(app, &e),
    };
    decide(ctx, asker, parts, &target, &fwd, checked).await
}

async fn decide(
    ctx: &Ctx,
    asker: Asker,
    parts: &Parts,
    target: &Target,
    fwd: &str,
    checked: super::check::Checked,
) -> Response {
    let app = &ctx.app;
    if let Some(data) = &checked.auth {
        let identity = identity_of(app, &data.claims);
        if !permitted(app, target, &identity) {
            tracing::info!(provider = %app.config.name, user = %identity.username, url = %portcullis_server_core::telemetry::redact_query(fwd), "refused by access_control");
            return with_cookies(
                page(
                    StatusCode::FORBIDDEN,
                    "Forbidden",
                    "You may not open this page.",
                ),
                &checked.set_cookies,
            );
        }
        let mut response = super::pages::empty(StatusCode::OK);
        identity_headers(app, &ctx.discovered, Some(data)).apply_to(response.headers_mut());
        if let Some(ua) = parts.headers.get(USER_AGENT) {
            response.headers_mut().insert(USER_AGENT, ua.clone());
        }
        portcullis_headers::strip_underscore_headers(response.headers_mut());
        return with_cookies(response, &checked.set_cookies);
    }
    let anonymous_ok = |cookies: &[String]| {
        let mut response = super::pages::empty(StatusCode::OK);
        identity_headers(app, &ctx.discovered, None).apply_to(response.headers_mut());
        with_cookies(response, cookies)
    };
    if allow_listed(ctx, target) {
        return anonymous_ok(&checked.set_cookies);
    }
    if asker == Asker::Nginx {
        // The outpost's own endpoints stay reachable through the proxy.
        if target.url.path().starts_with(OUTPOST_PREFIX) {
            return anonymous_ok(&checked.set_cookies);
        }
        let mut cookies = checked.set_cookies;
        if checked.cookie_id.is_none() {
            let id = portcullis_session::SessionId::generate(&mut rand::rng());
            cookies.push(app.cookie.set(&id, app.pre_login_max_age(), ctx.now));
        }
        return with_cookies(
            text(StatusCode::UNAUTHORIZED, "unauthorized request\n"),
            &cookies,
        );
    }
    let redirect = accept_redirect(&app.config, fwd).unwrap_or_default();
    super::login::start(
        ctx,
        checked.cookie_id.as_ref(),
        &redirect,
        checked.set_cookies,
    )
}
