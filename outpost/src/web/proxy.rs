//! Proxy mode (docs/reference/outpost.md §9): the outpost is the application's reverse proxy.

use axum::body::Body;
use axum::response::Response;
use http::header::{AUTHORIZATION, HOST};
use http::{HeaderValue, Request, StatusCode};
use portcullis_core::{ClientIp, Target, TargetUrl, checked_method, client_ip};

use super::Ctx;
use super::check::{check, identity_headers, identity_of, permitted};
use super::pages::{found, page, with_cookies};

/// `X-Forwarded-*` and `X-Original-*` spoken by the outpost's own client, not forwarded
/// upstream as sent.
fn forwarded_for(ctx: &Ctx, headers: &http::HeaderMap) -> String {
    let peer = ctx.peer.to_canonical().to_string();
    if ctx.providers.trusted.contains(ctx.peer) {
        match headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(", ")
        {
            existing if existing.trim().is_empty() => peer,
            existing => format!("{existing}, {peer}"),
        }
    } else {
        peer
    }
}

/// The URL the browser asked for, for rules and the allow-list.
fn request_target(ctx: &Ctx, request: &Request<Body>, host: &str) -> Option<Target> {
    let path_and_query = request.uri().path_and_query().map_or("/", |p| p.as_str());
    let url = TargetUrl::parse(&format!(
        "{}://{host}{path_and_query}",
        ctx.app.config.external_host.scheme()
    ))
    .ok()?;
    let method = checked_method(request.method().as_str(), "request line").ok()?;
    let ip = client_ip(request.headers(), ctx.peer, &ctx.providers.trusted);
    Some(Target {
        url,
        method,
        client_ip: match ip {
            ClientIp::Known(ip) => ClientIp::Known(ip),
            other => other,
        },
    })
}

/// What may pass to the application: the request with its identity headers set and every
/// spoofed one removed, who it is, and the cookies the answer must carry.
pub(crate) struct Admitted {
    pub(crate) request: Request<Body>,
    pub(crate) auth: Option<std::sync::Arc<crate::claims::SessionData>>,
    pub(crate) set_cookies: Vec<String>,
}

/// Decide whether `request` reaches the application (proxy mode and the tower layer): the
/// allow-list passes without identity, a session or accepted header passes with it (and the
/// access rules), anything else is answered here — the 401 page when `Authorization` was sent
/// and interception is on, otherwise a 302 to `start` with this URL (query kept) to come back to.
pub(crate) async fn admit(
    ctx: &Ctx,
    mut request: Request<Body>,
    host: &str,
) -> Result<Admitted, Response> {
    let app = &ctx.app;
    let Some(target) = request_target(ctx, &request, host) else {
        return Err(super::pages::text(StatusCode::BAD_REQUEST, "bad request\n"));
    };
    let checked = match check(&ctx.state, app, &ctx.discovered, request.headers(), ctx.now).await {
        Ok(c) => c,
        Err(e) => return Err(super::store_down(app, &e)),
    };
    let skip = app.config.skip.matches_path(&target.url);
    // Whatever happens next, no client-sent identity header reaches the upstream; and hop-by-hop
    // headers go first, so a `Connection` naming an identity header cannot remove the outpost's.
    let headers = request.headers_mut();
    portcullis_proxy::remove_hop_by_hop(headers);
    app.strip.strip(headers);
    match &checked.auth {
        Some(data) => {
            let identity = identity_of(app, &data.claims);
            if !permitted(app, &target, &identity) {
                return Err(with_cookies(
                    page(
                        StatusCode::FORBIDDEN,
                        "Forbidden",
                        "You may not open this page.",
                    ),
                    &checked.set_cookies,
                ));
            }
            if checked.by_header {
                headers.remove(AUTHORIZATION);
            }
            let set = identity_headers(app, &ctx.discovered, Some(data));
            // additionalHeaders may name headers the client also sent.
            for (name, _) in set.iter() {
                headers.remove(name);
            }
            set.apply_to(headers);
        }
        None if skip => {}
        None => {
            if headers.contains_key(AUTHORIZATION) && app.config.intercept_header_auth {
                return Err(with_cookies(
                    page(
                        StatusCode::UNAUTHORIZED,
                        "Unauthenticated",
                        "Header authentication is enabled for this application, so no redirect to the login is made. The credentials in the Authorization header were not accepted.",
                    ),
                    &checked.set_cookies,
                ));
            }
            // Back to this URL (query kept) after the login.
            let path_and_query = target.url.query().map_or_else(
                || target.url.path().to_owned(),
                |q| format!("{}?{q}", target.url.path()),
            );
            let back = format!("{}{path_and_query}", app.config.external());
            let location = format!(
                "{}/outpost.goauthentik.io/start?rd={}",
                app.config.external(),
                portcullis_core::redirect::query_escape(&back)
            );
            return Err(with_cookies(found(&location), &checked.set_cookies));
        }
    }
    portcullis_headers::strip_underscore_headers(headers);
    let incoming_host = headers.get(HOST).cloned();
    if let Some(h) = &incoming_host {
        headers.insert("x-forwarded-host", h.clone());
    }
    if let Ok(v) = HeaderValue::from_str(&forwarded_for(ctx, headers)) {
        headers.insert("x-forwarded-for", v);
    }
    let trusted_proto =
        ctx.providers.trusted.contains(ctx.peer) && headers.contains_key("x-forwarded-proto");
    if !trusted_proto {
        headers.insert(
            "x-forwarded-proto",
            HeaderValue::from_static(if ctx.own_scheme == "https" {
                "https"
            } else {
                "http"
            }),
        );
    }
    Ok(Admitted {
        request,
        auth: checked.auth,
        set_cookies: checked.set_cookies,
    })
}

pub(crate) async fn proxy(ctx: &Ctx, request: Request<Body>, host: &str) -> Response {
    let app = &ctx.app;
    let Some((client, internal)) = &app.upstream else {
        return page(
            StatusCode::BAD_GATEWAY,
            "Bad Gateway",
            "Failed to connect to backend.",
        );
    };
    let Admitted {
        request,
        auth,
        set_cookies,
    } = match admit(ctx, request, host).await {
        Ok(a) => a,
        Err(response) => return response,
    };
    let ak = auth.as_ref().and_then(|d| d.claims.ak_proxy.clone());
    let overridden = ak
        .as_ref()
        .and_then(|a| a.backend_override.as_deref())
        .filter(|b| !b.is_empty())
        .and_then(|b| match portcullis_proxy::Upstream::parse(b) {
            Ok(u) => Some(u),
            Err(e) => {
                tracing::warn!(provider = %app.config.name, reason = %e, "backend_override does not parse: internal_host is used");
                None
            }
        });
    let host_header = ak
        .as_ref()
        .and_then(|a| a.host_header.as_deref())
        .filter(|h| !h.is_empty())
        .and_then(|h| HeaderValue::from_str(h).ok());
    let superuser = ak.as_ref().is_some_and(|a| a.is_superuser);
    let upstream = overridden.as_ref().unwrap_or(internal);
    let started = portcullis_server_core::clock::Stopwatch::start();
    let answer = client
        .forward(request, upstream, host_header.as_ref())
        .await;
    ctx.state
        .0
        .metrics
        .upstream(&ctx.labels("proxy"), started.elapsed().as_secs_f64());
    match answer {
        Ok(mut response) => {
            response
                .headers_mut()
                .insert("x-powered-by", HeaderValue::from_static("goauthentik.io"));
            with_cookies(response, &set_cookies)
        }
        Err(e) => {
            tracing::warn!(provider = %app.config.name, reason = %e, "upstream failed");
            let message = if superuser {
                format!("Failed to connect to backend: {e}")
            } else {
                "Failed to connect to backend.".to_owned()
            };
            with_cookies(
                page(StatusCode::BAD_GATEWAY, "Bad Gateway", &message),
                &set_cookies,
            )
        }
    }
}
