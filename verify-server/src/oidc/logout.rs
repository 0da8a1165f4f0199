//! Logout beyond Authelia (docs/reference/oidc-provider.md): RP-initiated logout at
//! `/api/oidc/end-session` (OpenID Connect RP-Initiated Logout 1.0), and back-channel logout
//! (OpenID Connect Back-Channel Logout 1.0) to every client the user holds tokens for, whenever
//! the user's session ends. The user's token families are revoked at the same time, so a logout
//! reaches every application, the outposts included.

use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use http::header::{LOCATION, SET_COOKIE};
use http::{HeaderValue, StatusCode};
use portcullis_oidc::keys::Algorithm;
use portcullis_oidc::response::append_query;
use serde_json::{Map, Value, json};

use super::pages::{PAGE_CSP, escape};
use super::{OidcRuntime, issuer, runtime, single, uuid_v4};
use crate::authz::peer_of_parts;
use crate::config::{ClientSecret, OidcClient};
use crate::portal::csrf::{csrf_token, csrf_valid, new_nonce};
use crate::portal::portal_identity;
use crate::state::AppState;

/// A page of this flow.
fn page(status: StatusCode, body: &str) -> Response {
    super::pages::page(status, "Log out", body, PAGE_CSP)
}

/// The back-channel logout event (OpenID Connect Back-Channel Logout 1.0 §2.4).
const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// How long a back-channel POST may take.
const BACKCHANNEL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The user's session ended (portal logout, end-session): revoke the token families the user
/// holds and tell each client that registered a `backchannel_logout_uri`. The POSTs run in the
/// background; a client that does not answer is logged, not retried.
pub(crate) async fn user_logged_out(state: &AppState, username: &str, iss: Option<&str>) {
    let Some(rt) = runtime(state).cloned() else {
        return;
    };
    let now = state.now();
    let owned = match rt.store.take_owned(username, now).await {
        Ok(o) => o,
        Err(e) => {
            tracing::error!(user = %username, error = %e, "logout: could not read the user's OpenID Connect tokens");
            return;
        }
    };
    let mut clients: Vec<String> = Vec::new();
    for (client, family) in owned {
        if let Err(e) = rt.store.revoke_family(&family).await {
            tracing::error!(user = %username, client = %client, error = %e, "logout: could not revoke a token family");
        }
        if !clients.contains(&client) {
            clients.push(client);
        }
    }
    if clients.is_empty() {
        return;
    }
    tracing::info!(user = %username, clients = clients.len(), "logout: the user's OpenID Connect tokens are revoked");
    let subject = match rt.store.subject(username, "", &uuid_v4()).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(user = %username, error = %e, "logout: no subject for the back-channel logout");
            return;
        }
    };
    let iss = iss.map(str::to_owned).or_else(|| {
        state.config().cookies.iter().find_map(|c| {
            c.authelia_url
                .as_deref()
                .map(|u| u.trim_end_matches('/').to_owned())
        })
    });
    let Some(iss) = iss else {
        return;
    };
    for client_id in clients {
        let Some(client) = rt.client(&client_id) else {
            continue;
        };
        let Some(uri) = client.client.backchannel_logout_uri.clone() else {
            continue;
        };
        let token = match logout_token(&rt, &client, &iss, &subject, now) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(client = %client_id, error = %e, "back-channel logout: could not sign the logout token");
                continue;
            }
        };
        tokio::spawn(async move {
            let outcome = reqwest::Client::builder()
                .timeout(BACKCHANNEL_TIMEOUT)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map(|c| c.post(&uri).form(&[("logout_token", token.as_str())]));
            match outcome {
                Ok(request) => match request.send().await {
                    Ok(r) if r.status().is_success() => {
                        tracing::info!(client = %client_id, "back-channel logout delivered")
                    }
                    Ok(r) => {
                        tracing::warn!(client = %client_id, status = r.status().as_u16(), "back-channel logout refused by the client")
                    }
                    Err(e) => {
                        tracing::warn!(client = %client_id, error = %e, "back-channel logout not delivered")
                    }
                },
                Err(e) => tracing::error!(error = %e, "back-channel logout: no HTTP client"),
            }
        });
    }
}

/// The logout token (Back-Channel Logout 1.0 §2.4), signed like the client's ID tokens.
pub(crate) fn logout_token(
    rt: &OidcRuntime,
    client: &OidcClient,
    iss: &str,
    subject: &str,
    now: u64,
) -> Result<String, portcullis_oidc::OidcError> {
    let claims = json!({
        "iss": iss,
        "sub": subject,
        "aud": [client.client.id],
        "iat": now,
        "exp": now + 120,
        "jti": uuid_v4(),
        "events": { BACKCHANNEL_EVENT: {} },
    });
    super::sign(
        rt,
        client,
        client.client.id_token_alg,
        client.id_token_key_id.as_deref(),
        &claims,
        Some("logout+jwt"),
    )
}

/// A verified `id_token_hint`: its client and subject. Expired hints are accepted (the RP logs out
/// after the ID token expired); the signature and issuer must be right.
fn verify_hint(rt: &OidcRuntime, token: &str, iss: &str) -> Option<(super::ClientRef, String)> {
    let header = portcullis_oidc::jwt::peek_header(token)?;
    let unverified = portcullis_oidc::jwt::peek_claims(token)?;
    let aud = match unverified.get("aud")? {
        Value::String(s) => s.clone(),
        Value::Array(a) => a.first()?.as_str()?.to_owned(),
        _ => return None,
    };
    let client = rt.client(&aud)?;
    let iat = unverified.get("iat")?.as_u64()?;
    let expect = portcullis_oidc::jwt::Expect {
        alg: header.alg,
        issuer: Some(iss),
        typ: None,
        now: iat,
        leeway: 0,
    };
    let claims: Map<String, Value> = match header.alg {
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
            let Some(ClientSecret::Plain(secret)) = &client.secret else {
                return None;
            };
            if client.client.id_token_alg != header.alg {
                return None;
            }
            let key = portcullis_oidc::jwt::secret_key(secret.expose().as_bytes()).ok()?;
            portcullis_oidc::jwt::verify(token, &key, &expect).ok()?
        }
        _ => super::verify_with_provider_key(rt, token, header.kid.as_deref(), &expect)?,
    };
    Some((client, claims.get("sub")?.as_str()?.to_owned()))
}

/// What an end-session request asks for, checked.
struct EndSession {
    /// The client named by the hint or `client_id`, when known.
    client: Option<String>,
    /// The hint's subject, when the hint is valid.
    hint_subject: Option<String>,
    /// The post-logout redirect, only when registered for the client.
    redirect: Option<String>,
    /// The redirect was asked for but is not registered (or no client is known).
    redirect_refused: bool,
    state: Option<String>,
}

fn read_request(
    rt: &OidcRuntime,
    pairs: &[(String, String)],
    iss: &str,
) -> Result<EndSession, String> {
    let get = |n| single(pairs, n).map_err(|e| e.description);
    let hint = get("id_token_hint")?;
    let client_id = get("client_id")?;
    let mut client: Option<super::ClientRef> = None;
    let mut hint_subject = None;
    if let Some(hint) = hint {
        match verify_hint(rt, hint, iss) {
            Some((c, sub)) => {
                client = Some(c);
                hint_subject = Some(sub);
            }
            None => tracing::info!("end-session: the id_token_hint is not valid; asking the user"),
        }
    }
    if let Some(id) = client_id {
        match (&client, rt.client(id)) {
            (Some(c), _) if c.client.id != id => {
                return Err("The client_id does not match the id_token_hint.".into());
            }
            (None, Some(c)) => client = Some(c),
            _ => {}
        }
    }
    let asked = get("post_logout_redirect_uri")?;
    let redirect = asked
        .filter(|uri| {
            client
                .as_ref()
                .is_some_and(|c| c.client.post_logout_redirect_uris.iter().any(|r| r == uri))
        })
        .map(str::to_owned);
    Ok(EndSession {
        client: client.as_ref().map(|c| c.client.id.clone()),
        hint_subject,
        redirect_refused: asked.is_some() && redirect.is_none(),
        redirect,
        state: get("state")?.map(str::to_owned),
    })
}

async fn end_pairs(request: Request) -> Result<(Parts, Vec<(String, String)>), Response> {
    if request.method() == http::Method::POST {
        super::form_body(request).await.map_err(|e| {
            page(
                StatusCode::BAD_REQUEST,
                &format!("<p role=\"alert\">{}</p>", escape(&e.description)),
            )
        })
    } else {
        let (parts, _) = request.into_parts();
        let pairs = form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
        Ok((parts, pairs))
    }
}

/// End the portal session of this request's cookie domain; the `Set-Cookie` that clears it.
async fn end_portal_session(state: &AppState, parts: &Parts, iss: &str) -> Option<String> {
    let index = crate::portal::portal_domain_of(state, parts, peer_of_parts(parts))?;
    let cookie = &state.config().cookies[index];
    crate::portal::destroy_session_for_issuer(state, &parts.headers, cookie, Some(iss)).await;
    Some(cookie.cookie.clear_cookie())
}

fn done(redirect: Option<(&str, Option<&str>)>, clear: Option<String>) -> Response {
    let mut r = match redirect {
        Some((uri, state)) => {
            let location = match state {
                Some(s) => append_query(uri, &[("state", s)]),
                None => uri.to_owned(),
            };
            let mut r = StatusCode::FOUND.into_response();
            match HeaderValue::from_str(&location) {
                Ok(v) => {
                    r.headers_mut().insert(LOCATION, v);
                    r
                }
                Err(_) => page(StatusCode::OK, "<h1>You are logged out</h1>"),
            }
        }
        None => page(
            StatusCode::OK,
            "<h1>You are logged out</h1><p>You can close this page.</p>",
        ),
    };
    if let Some(v) = clear.and_then(|c| HeaderValue::from_str(&c).ok()) {
        r.headers_mut().append(SET_COOKIE, v);
    }
    r
}

/// `GET|POST /api/oidc/end-session`: a valid `id_token_hint` for the session's user, with a
/// registered `post_logout_redirect_uri` or none, logs out at once; anything else asks the user.
pub(super) async fn end_session(State(state): State<AppState>, request: Request) -> Response {
    let Some(rt) = runtime(&state).cloned() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let (parts, pairs) = match end_pairs(request).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Some(iss) = issuer(&state, &parts) else {
        return page(
            StatusCode::BAD_REQUEST,
            "<p role=\"alert\">No session cookie domain matches this host.</p>",
        );
    };
    let req = match read_request(&rt, &pairs, &iss) {
        Ok(r) => r,
        Err(message) => {
            return page(
                StatusCode::BAD_REQUEST,
                &format!("<p role=\"alert\">{}</p>", escape(&message)),
            );
        }
    };
    let (_, identity, _) = portal_identity(&state, &parts, peer_of_parts(&parts)).await;
    let session_subject = if identity.username.is_empty() {
        None
    } else {
        rt.store
            .subject(&identity.username, "", &uuid_v4())
            .await
            .ok()
    };
    // The hint must name this session's user: a valid hint for someone else is a third party
    // asking to end this user's session.
    let same_user = match (&req.hint_subject, &session_subject) {
        (Some(hint), Some(session)) => hint == session,
        (Some(_), None) => true,
        _ => false,
    };
    if req.hint_subject.is_some() && same_user && !req.redirect_refused {
        let clear = if session_subject.is_some() {
            end_portal_session(&state, &parts, &iss).await
        } else {
            None
        };
        tracing::info!(
            client = req.client.as_deref().unwrap_or("-"),
            "end-session: logged out at the client's request"
        );
        return done(
            req.redirect.as_deref().map(|u| (u, req.state.as_deref())),
            clear,
        );
    }
    if req.redirect_refused {
        tracing::info!(
            client = req.client.as_deref().unwrap_or("-"),
            "end-session: the post_logout_redirect_uri is not registered; the user is asked and not redirected"
        );
    }
    if session_subject.is_none() {
        return done(None, None);
    }
    // Ask the user, carrying the request on.
    let (nonce, cookie) = new_nonce();
    let token = csrf_token(&state.0.csrf_key, &nonce);
    let hidden: String = pairs
        .iter()
        .filter(|(k, _)| {
            matches!(
                k.as_str(),
                "id_token_hint" | "client_id" | "post_logout_redirect_uri" | "state"
            )
        })
        .map(|(k, v)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                escape(k),
                escape(v)
            )
        })
        .collect();
    let from = req
        .client
        .as_deref()
        .and_then(|c| rt.client(c))
        .map_or_else(String::new, |c| {
            format!(" {} asks you to log out.", escape(&c.client.name))
        });
    // The form's action is relative, so it also works under a `server.address` path prefix.
    let body = format!(
        "<h1>Log out?</h1><p>You are signed in as <strong>{user}</strong>.{from}</p>\
         <form method=\"post\" action=\"end-session/confirm\">{hidden}<input type=\"hidden\" name=\"csrf\" value=\"{token}\">\
         <button type=\"submit\" autofocus>Log out</button></form>",
        user = escape(&identity.username)
    );
    let mut r = page(StatusCode::OK, &body);
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().append(SET_COOKIE, v);
    }
    r
}

/// `POST /api/oidc/end-session/confirm`: the user confirmed; redirect only to a registered URI.
pub(super) async fn confirm(State(state): State<AppState>, request: Request) -> Response {
    let Some(rt) = runtime(&state).cloned() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let (parts, pairs) = match super::form_body(request).await {
        Ok(v) => v,
        Err(e) => {
            return page(
                StatusCode::BAD_REQUEST,
                &format!("<p role=\"alert\">{}</p>", escape(&e.description)),
            );
        }
    };
    let csrf = single(&pairs, "csrf").ok().flatten().unwrap_or("");
    if !csrf_valid(&state.0.csrf_key, &parts.headers, csrf) {
        tracing::info!("end-session confirmation refused: bad CSRF token");
        return page(
            StatusCode::BAD_REQUEST,
            "<p role=\"alert\">This form has expired. Start again from the application.</p>",
        );
    }
    let Some(iss) = issuer(&state, &parts) else {
        return page(
            StatusCode::BAD_REQUEST,
            "<p role=\"alert\">No session cookie domain matches this host.</p>",
        );
    };
    let req = read_request(&rt, &pairs, &iss).unwrap_or(EndSession {
        client: None,
        hint_subject: None,
        redirect: None,
        redirect_refused: true,
        state: None,
    });
    let clear = end_portal_session(&state, &parts, &iss).await;
    tracing::info!("end-session: logged out after confirmation");
    done(
        req.redirect.as_deref().map(|u| (u, req.state.as_deref())),
        clear,
    )
}
