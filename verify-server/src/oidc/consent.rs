//! Consent (docs/reference/oidc-provider.md §3): Authelia's JSON API `/api/oidc/consent`, the
//! server-rendered decision page that needs no JavaScript, and the completion page for errors
//! that cannot go to a client.

use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use http::header::{LOCATION, SET_COOKIE};
use http::{HeaderValue, StatusCode};
use portcullis_core::{AuthLevel, Identity};
use portcullis_oidc::client::ConsentMode;
use portcullis_oidc::store::RecordKind;
use serde::Deserialize;
use serde_json::json;

use super::authorization::{consent_key, load_flow, origin_of, query_pairs, save_flow};
use super::pages::{PAGE_CSP, csp_with_form_action, escape, page};
use super::records::{ConsentAnswer, FlowRecord};
use super::{runtime, single, uuid_v4};
use crate::authz::peer_of_parts;
use crate::portal::csrf::{csrf_token, csrf_valid, new_nonce};
use crate::portal::{ko, ok, portal_identity};
use crate::state::AppState;

/// The flow for a consent request: known, for this client, and the session's user.
async fn consent_flow(
    state: &AppState,
    parts: &Parts,
    flow_id: &str,
) -> Option<(Identity, FlowRecord)> {
    let rt = runtime(state)?;
    let (_, identity, _) = portal_identity(state, parts, peer_of_parts(parts)).await;
    if identity.level < AuthLevel::OneFactor || identity.username.is_empty() {
        tracing::info!("consent refused: no session");
        return None;
    }
    let flow = load_flow(rt, flow_id, state.now()).await.ok().flatten()?;
    // The authorization endpoint binds the flow to the session's user before it asks for consent;
    // a flow not bound to this user (another user's, or one that never reached the consent step)
    // is refused, so a leaked flow_id cannot be answered by someone else.
    if flow.username.as_deref() != Some(identity.username.as_str()) {
        tracing::info!(user = %identity.username, "consent refused: the flow is not this user's");
        return None;
    }
    Some((identity, flow))
}

/// The `flow_id` of a consent request's query (one value).
fn flow_id_of(parts: &Parts) -> Option<String> {
    let pairs = query_pairs(parts.uri.query().unwrap_or(""));
    single(&pairs, "flow_id").ok()?.map(str::to_owned)
}

/// `GET /api/oidc/consent?flow_id=…`.
pub(super) async fn consent_get(State(state): State<AppState>, parts: Parts) -> Response {
    let Some(flow_id) = flow_id_of(&parts) else {
        return ko(StatusCode::OK, "Operation failed.");
    };
    let Some(rt) = runtime(&state) else {
        return ko(StatusCode::OK, "Operation failed.");
    };
    let Some((_, flow)) = consent_flow(&state, &parts, &flow_id).await else {
        return ko(StatusCode::OK, "Operation failed.");
    };
    let Some(client) = rt.client(&flow.request.client_id) else {
        return ko(StatusCode::OK, "Operation failed.");
    };
    ok(Some(json!({
        "client_id": client.client.id,
        "client_description": client.client.name,
        "scopes": flow.request.scopes.iter().collect::<Vec<_>>(),
        "audience": flow.request.audience,
        "pre_configuration": matches!(client.client.consent_mode, ConsentMode::PreConfigured(_)),
        "claims": [],
        "essential_claims": [],
        "require_login": false,
    })))
}

#[derive(Deserialize)]
struct ConsentBody {
    flow_id: String,
    client_id: String,
    consent: bool,
    #[serde(default)]
    pre_configure: bool,
}

/// Record the user's answer; the redirect back to the authorization endpoint.
async fn answer(state: &AppState, parts: &Parts, body: &ConsentBody) -> Option<String> {
    let rt = runtime(state)?;
    let (identity, mut flow) = consent_flow(state, parts, &body.flow_id).await?;
    if flow.request.client_id != body.client_id || flow.consent != ConsentAnswer::Pending {
        tracing::info!("consent refused: wrong client or already answered");
        return None;
    }
    let client = rt.client(&flow.request.client_id)?;
    flow.username = Some(identity.username.clone());
    flow.consent = if body.consent {
        ConsentAnswer::Granted
    } else {
        ConsentAnswer::Denied
    };
    save_flow(rt, &body.flow_id, &flow).await.ok()?;
    if let (true, true, ConsentMode::PreConfigured(duration)) =
        (body.consent, body.pre_configure, client.client.consent_mode)
    {
        let subject = rt
            .store
            .subject(&identity.username, "", &uuid_v4())
            .await
            .ok()?;
        let key = consent_key(&subject, &client.client.id, &flow.request);
        rt.store
            .insert(
                RecordKind::Consent,
                &key,
                &key,
                b"{}",
                state.now() + duration,
            )
            .await
            .ok()?;
    }
    tracing::info!(user = %identity.username, client = %client.client.id, granted = body.consent, "consent answered");
    Some(format!(
        "{}/api/oidc/authorization?{}&consent_id={}",
        flow.issuer,
        flow.query,
        form_urlencoded::byte_serialize(body.flow_id.as_bytes()).collect::<String>()
    ))
}

/// `POST /api/oidc/consent` (JSON).
pub(super) async fn consent_post(State(state): State<AppState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let is_json = crate::portal::is_json(&parts.headers);
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024).await else {
        return ko(StatusCode::OK, "Operation failed.");
    };
    let Some(body) = is_json
        .then(|| serde_json::from_slice::<ConsentBody>(&bytes).ok())
        .flatten()
    else {
        tracing::info!("consent refused: malformed body");
        return ko(StatusCode::OK, "Operation failed.");
    };
    match answer(&state, &parts, &body).await {
        Some(redirect) => ok(Some(json!({"redirect_uri": redirect}))),
        None => ko(StatusCode::OK, "Operation failed."),
    }
}

/// `GET /consent/openid/decision?flow_id=…`: the consent page, a form that needs no JavaScript.
pub(super) async fn decision_page(State(state): State<AppState>, parts: Parts) -> Response {
    let failed = || {
        page(
            StatusCode::BAD_REQUEST,
            "Consent",
            "<p role=\"alert\">This consent request is unknown, has expired, or belongs to another session.</p>",
            PAGE_CSP,
        )
    };
    let (Some(flow_id), Some(rt)) = (flow_id_of(&parts), runtime(&state)) else {
        return failed();
    };
    let Some((identity, flow)) = consent_flow(&state, &parts, &flow_id).await else {
        return failed();
    };
    let Some(client) = rt.client(&flow.request.client_id) else {
        return failed();
    };
    let (nonce, cookie) = new_nonce();
    let token = csrf_token(&state.0.csrf_key, &nonce);
    let scopes: String = flow
        .request
        .scopes
        .iter()
        .map(|s| format!("<li>{}</li>", escape(s)))
        .collect();
    let remember = if matches!(client.client.consent_mode, ConsentMode::PreConfigured(_)) {
        "<p><label><input type=\"checkbox\" name=\"pre_configure\" value=\"true\"> Remember this consent</label></p>"
    } else {
        ""
    };
    // The form's action is relative, so it also works under a `server.address` path prefix.
    let body = format!(
        "<h1>{name} wants to access your account</h1><p>Signed in as <strong>{user}</strong>.</p><p>It asks for:</p><ul>{scopes}</ul>\
         <form method=\"post\" action=\"decision\"><input type=\"hidden\" name=\"flow_id\" value=\"{flow}\">\
         <input type=\"hidden\" name=\"client_id\" value=\"{client}\"><input type=\"hidden\" name=\"csrf\" value=\"{token}\">{remember}\
         <button type=\"submit\" name=\"consent\" value=\"true\" autofocus>Accept</button> <button type=\"submit\" name=\"consent\" value=\"false\">Deny</button></form>",
        name = escape(&client.client.name),
        user = escape(&identity.username),
        flow = escape(&flow_id),
        client = escape(&client.client.id),
    );
    // The answer's redirects end at the client: Chromium checks them against form-action.
    let csp = csp_with_form_action(&origin_of(&flow.request.redirect_uri));
    let mut r = page(StatusCode::OK, "Consent", &body, &csp);
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().append(SET_COOKIE, v);
    }
    r
}

/// `POST /consent/openid/decision`: the consent form.
pub(super) async fn decision_form(State(state): State<AppState>, request: Request) -> Response {
    let refused = || {
        page(
            StatusCode::BAD_REQUEST,
            "Consent",
            "<p role=\"alert\">The consent could not be recorded. Start again from the application.</p>",
            PAGE_CSP,
        )
    };
    let Ok((parts, pairs)) = super::form_body(request).await else {
        return refused();
    };
    let get = |name: &str| single(&pairs, name).ok().flatten().map(str::to_owned);
    if !get("csrf").is_some_and(|t| csrf_valid(&state.0.csrf_key, &parts.headers, &t)) {
        tracing::info!("consent form refused: bad CSRF token");
        return refused();
    }
    let (Some(flow_id), Some(client_id)) = (get("flow_id"), get("client_id")) else {
        return refused();
    };
    let body = ConsentBody {
        flow_id,
        client_id,
        consent: get("consent").as_deref() == Some("true"),
        pre_configure: get("pre_configure").as_deref() == Some("true"),
    };
    match answer(&state, &parts, &body).await {
        Some(redirect) => match HeaderValue::from_str(&redirect) {
            Ok(v) => {
                let mut r = StatusCode::SEE_OTHER.into_response();
                r.headers_mut().insert(LOCATION, v);
                r
            }
            Err(_) => refused(),
        },
        None => refused(),
    }
}

/// `GET /consent/completion?error=…`: the errors that cannot go to the client.
pub(super) async fn completion_page(parts: Parts) -> Response {
    let pairs = query_pairs(parts.uri.query().unwrap_or(""));
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    };
    let error = get("error");
    let body = if error.is_empty() {
        "<p>You can close this page.</p>".to_owned()
    } else {
        format!(
            "<p role=\"alert\"><strong>{}</strong></p><p>{}</p><p>Return to the application and try again.</p>",
            escape(error),
            escape(get("error_description"))
        )
    };
    let status = if error.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    page(status, "Authorization", &body, PAGE_CSP)
}
