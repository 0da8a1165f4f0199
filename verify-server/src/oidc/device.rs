//! The device authorization grant (RFC 8628): `/api/oidc/device-authorization` gives a device a
//! device code and the user a short code; the user approves it on the portal page
//! `/consent/openid/device-authorization`; the device polls the token endpoint with
//! `urn:ietf:params:oauth:grant-type:device_code`.

use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use http::header::{LOCATION, SET_COOKIE};
use http::{HeaderValue, StatusCode};
use portcullis_core::AuthLevel;
use portcullis_oidc::client::GrantType;
use portcullis_oidc::discovery::paths;
use portcullis_oidc::opaque::{TokenKind, normalise_user_code, user_code};
use portcullis_oidc::scope::Scopes;
use portcullis_oidc::store::{Consumed, RecordKind};
use portcullis_oidc::{ErrorCode, OAuthError};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::pages::{PAGE_CSP, escape};
use super::records::{decode, encode};
use super::token::{Refusal, authenticate_client, refusal_response};
use super::{OidcRuntime, issuer, no_store_json, oauth_error, random32, runtime, single, uuid_v4};
use crate::authz::peer_of_parts;
use crate::config::PolicyLevel;
use crate::portal::csrf::{csrf_token, csrf_valid, new_nonce};
use crate::portal::portal_identity;
use crate::state::AppState;

/// A page of this flow.
fn page(status: StatusCode, body: &str) -> Response {
    super::pages::page(status, "Connect a device", body, PAGE_CSP)
}

/// The polling interval the device is told (RFC 8628 §3.2 default).
const INTERVAL: u64 = 5;

/// The user's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) enum Answer {
    Pending,
    Approved {
        username: String,
        subject: String,
        auth_time: u64,
        amr: Vec<String>,
    },
    Denied,
}

/// A device authorization waiting for the user.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct DeviceRecord {
    pub client_id: String,
    pub scopes: Scopes,
    pub issuer: String,
    pub user_code: String,
    pub expires_at: u64,
    pub interval: u64,
    pub last_poll: u64,
    pub answer: Answer,
}

fn user_key(code: &str) -> String {
    format!("user:{code}")
}

/// `POST /api/oidc/device-authorization`.
pub(super) async fn device_authorization(
    State(state): State<AppState>,
    request: Request,
) -> Response {
    let Some(rt) = runtime(&state).cloned() else {
        return oauth_error(
            "device_authorization",
            &OAuthError::new(
                ErrorCode::InvalidRequest,
                "The OpenID Connect provider is not configured.",
            ),
        );
    };
    let (parts, pairs) = match super::form_body(request).await {
        Ok(v) => v,
        Err(e) => return oauth_error("device_authorization", &e),
    };
    let Some(iss) = issuer(&state, &parts) else {
        return oauth_error(
            "device_authorization",
            &OAuthError::new(
                ErrorCode::InvalidRequest,
                "No session cookie domain matches this host.",
            ),
        );
    };
    let client = match authenticate_client(&state, &rt, &parts, &pairs, true).await {
        Ok(c) => c,
        Err(r) => return refusal_response("device_authorization", &r),
    };
    if !client.client.allows_grant(GrantType::DeviceCode) {
        return oauth_error(
            "device_authorization",
            &OAuthError::new(
                ErrorCode::UnauthorizedClient,
                "The OAuth 2.0 Client is not allowed to use the device authorization grant.",
            ),
        );
    }
    let scopes = match single(&pairs, "scope") {
        Ok(None) => client.client.scopes.clone(),
        Ok(Some(s)) => match Scopes::parse(s) {
            Some(s) => s,
            None => {
                return oauth_error(
                    "device_authorization",
                    &OAuthError::new(ErrorCode::InvalidScope, "The scope is malformed."),
                );
            }
        },
        Err(e) => return oauth_error("device_authorization", &e),
    };
    if let Some(s) = scopes.first_outside(&client.client.scopes) {
        return oauth_error(
            "device_authorization",
            &OAuthError::new(
                ErrorCode::InvalidScope,
                format!("The OAuth 2.0 Client is not allowed to request scope '{s}'."),
            ),
        );
    }
    let now = state.now();
    let Some((device_code, key)) = rt.token_key.mint(TokenKind::DeviceCode, random32()) else {
        return super::store_failure(
            "device_authorization",
            &portcullis_oidc::OidcError::Key("could not sign the device code".into()),
        );
    };
    // A fresh user code that no pending authorization holds.
    let mut code = None;
    for _ in 0..8 {
        let Some(candidate) = user_code(&random32()) else {
            continue;
        };
        match rt
            .store
            .get(RecordKind::Device, &user_key(&candidate), now)
            .await
        {
            Ok(None) => {
                code = Some(candidate);
                break;
            }
            Ok(Some(_)) => continue,
            Err(e) => return super::store_failure("device_authorization", &e),
        }
    }
    let Some(code) = code else {
        return super::store_failure(
            "device_authorization",
            &portcullis_oidc::OidcError::Store("no free user code".into()),
        );
    };
    let lifespan = client.lifespans.device_code;
    let record = DeviceRecord {
        client_id: client.client.id.clone(),
        scopes,
        issuer: iss.clone(),
        user_code: code.clone(),
        expires_at: now + lifespan,
        interval: INTERVAL,
        last_poll: 0,
        answer: Answer::Pending,
    };
    let stored = async {
        rt.store
            .insert(
                RecordKind::Device,
                &key,
                &key,
                &encode(&record)?,
                record.expires_at,
            )
            .await?;
        rt.store
            .insert(
                RecordKind::Device,
                &user_key(&code),
                &key,
                key.as_bytes(),
                record.expires_at,
            )
            .await
    };
    if let Err(e) = stored.await {
        return super::store_failure("device_authorization", &e);
    }
    let page = format!("{iss}{}", paths::DEVICE_PAGE);
    tracing::info!(client = %client.client.id, "device authorization started");
    no_store_json(
        StatusCode::OK,
        &json!({
            "device_code": device_code,
            "user_code": code,
            "verification_uri": page,
            "verification_uri_complete": format!("{page}?user_code={code}"),
            "expires_in": lifespan,
            "interval": INTERVAL,
        }),
    )
}

/// The token endpoint's device-code grant.
pub(super) async fn grant(
    state: &AppState,
    rt: &OidcRuntime,
    client: &crate::config::OidcClient,
    pairs: &[(String, String)],
    now: u64,
) -> Result<serde_json::Value, Refusal> {
    let err = |c: ErrorCode, d: &str| -> Refusal { OAuthError::new(c, d).into() };
    let code = single(pairs, "device_code")?.ok_or_else(|| {
        err(
            ErrorCode::InvalidRequest,
            "The 'device_code' parameter is missing.",
        )
    })?;
    let Some((TokenKind::DeviceCode, key)) = rt.token_key.verify(code) else {
        return Err(err(
            ErrorCode::InvalidGrant,
            "The device code is not valid.",
        ));
    };
    let store_err = |e: portcullis_oidc::OidcError| -> Refusal {
        tracing::error!(error = %e, "device grant store failed");
        err(
            ErrorCode::ServerError,
            "The authorization server encountered an unexpected condition.",
        )
    };
    // A device code with the right HMAC that the store no longer has has expired.
    let Some(stored) = rt
        .store
        .get(RecordKind::Device, &key, now)
        .await
        .map_err(store_err)?
    else {
        return Err(err(ErrorCode::ExpiredToken, "The device code has expired."));
    };
    if !stored.active {
        return Err(err(
            ErrorCode::InvalidGrant,
            "The device code has been used.",
        ));
    }
    let record: DeviceRecord = decode(&stored.value).map_err(store_err)?;
    if record.client_id != client.client.id {
        return Err(err(
            ErrorCode::InvalidGrant,
            "The device code was issued to another client.",
        ));
    }
    match record.answer.clone() {
        Answer::Pending => {
            // Polling times live in a record of their own, so that a poll never overwrites the
            // user's answer written at the same moment.
            let poll_key = format!("poll:{key}");
            let (last_poll, mut interval) = match rt
                .store
                .get(RecordKind::Device, &poll_key, now)
                .await
                .map_err(store_err)?
            {
                Some(r) => decode::<(u64, u64)>(&r.value).map_err(store_err)?,
                None => (0, record.interval),
            };
            let too_fast = now < last_poll + interval;
            if too_fast {
                // RFC 8628 §3.5: slow down by 5 seconds.
                interval += 5;
            }
            rt.store
                .insert(
                    RecordKind::Device,
                    &poll_key,
                    &key,
                    &encode(&(now, interval)).map_err(store_err)?,
                    record.expires_at,
                )
                .await
                .map_err(store_err)?;
            if too_fast {
                Err(err(ErrorCode::SlowDown, "The device polls too often."))
            } else {
                Err(err(
                    ErrorCode::AuthorizationPending,
                    "The user has not answered yet.",
                ))
            }
        }
        Answer::Denied => {
            let _ = rt.store.consume(RecordKind::Device, &key, now).await;
            Err(err(ErrorCode::AccessDenied, "The user denied the request."))
        }
        Answer::Approved {
            username,
            subject,
            auth_time,
            amr,
        } => {
            match rt
                .store
                .consume(RecordKind::Device, &key, now)
                .await
                .map_err(store_err)?
            {
                Consumed::Fresh(_) => {}
                _ => {
                    return Err(err(
                        ErrorCode::InvalidGrant,
                        "The device code has been used.",
                    ));
                }
            }
            let user = match state.user_named(&username).await {
                Ok(Some(user)) => user,
                Ok(None) => {
                    return Err(err(ErrorCode::InvalidGrant, "The user no longer exists."));
                }
                Err(e) => {
                    tracing::error!(error = %e, "device code refused: the user directory is unavailable");
                    return Err(err(
                        ErrorCode::TemporarilyUnavailable,
                        "The user directory is unavailable; retry later.",
                    ));
                }
            };
            let grant = super::records::GrantRecord {
                client_id: client.client.id.clone(),
                username: Some(username),
                subject,
                scopes: record.scopes,
                audience: Vec::new(),
                issuer: record.issuer,
                auth_time,
                amr,
                nonce: None,
                redirect_uri: None,
                redirect_uri_given: false,
                challenge: None,
                issued_at: now,
                expires_at: now,
                access_token_key: None,
            };
            super::token::issue(
                rt,
                client,
                &grant,
                &uuid_v4(),
                now,
                Some(super::profile_of(rt, &user)),
            )
            .await
        }
    }
}

async fn find(rt: &OidcRuntime, code: &str, now: u64) -> Option<(String, DeviceRecord)> {
    let pointer = rt
        .store
        .get(RecordKind::Device, &user_key(code), now)
        .await
        .ok()??;
    let key = String::from_utf8(pointer.value).ok()?;
    let stored = rt.store.get(RecordKind::Device, &key, now).await.ok()??;
    if !stored.active {
        return None;
    }
    let record: DeviceRecord = decode(&stored.value).ok()?;
    (record.answer == Answer::Pending).then_some((key, record))
}

/// `GET /consent/openid/device-authorization[?user_code=…]`: log in first, then the code form.
pub(super) async fn device_page(State(state): State<AppState>, parts: Parts) -> Response {
    let Some(rt) = runtime(&state).cloned() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Some(iss) = issuer(&state, &parts) else {
        return page(
            StatusCode::BAD_REQUEST,
            "<p role=\"alert\">No session cookie domain matches this host.</p>",
        );
    };
    let (_, identity, _) = portal_identity(&state, &parts, peer_of_parts(&parts)).await;
    let typed: Option<String> = form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "user_code")
        .map(|(_, v)| v.into_owned());
    if identity.level < AuthLevel::OneFactor || identity.username.is_empty() {
        let here = match &typed {
            Some(c) => format!(
                "{iss}{}?user_code={}",
                paths::DEVICE_PAGE,
                form_urlencoded::byte_serialize(c.as_bytes()).collect::<String>()
            ),
            None => format!("{iss}{}", paths::DEVICE_PAGE),
        };
        let location = format!(
            "{iss}/?rd={}",
            form_urlencoded::byte_serialize(here.as_bytes()).collect::<String>()
        );
        let mut r = StatusCode::FOUND.into_response();
        if let Ok(v) = HeaderValue::from_str(&location) {
            r.headers_mut().insert(LOCATION, v);
        }
        return r;
    }
    // Looking a code up shows whether it is pending: it counts toward the same limit per address
    // as the answers (wrong codes only), so the page cannot be used to guess codes either.
    let now = state.now();
    let ip = super::client_addr_of_parts(&state, &parts);
    let code = typed.as_deref().and_then(normalise_user_code);
    if code.is_some()
        && let Some(retry) = rt.limits.device_page.limited(ip, now)
    {
        tracing::info!(user = %identity.username, retry, "device code lookup refused: rate limited");
        return page(
            StatusCode::TOO_MANY_REQUESTS,
            "<p role=\"alert\">Too many wrong codes. Try again later.</p>",
        );
    }
    let described = match code {
        Some(code) => match find(&rt, &code, now).await {
            Some((_, record)) => {
                let name = rt
                    .client(&record.client_id)
                    .map_or_else(|| record.client_id.clone(), |c| c.client.name.clone());
                let scopes: String = record
                    .scopes
                    .iter()
                    .map(|s| format!("<li>{}</li>", escape(s)))
                    .collect();
                format!(
                    "<p><strong>{}</strong> asks for:</p><ul>{scopes}</ul>",
                    escape(&name)
                )
            }
            None => {
                rt.limits.device_page.count(ip, now);
                "<p role=\"alert\">This code is unknown or has expired.</p>".to_owned()
            }
        },
        None => String::new(),
    };
    let (nonce, cookie) = new_nonce();
    let token = csrf_token(&state.0.csrf_key, &nonce);
    // The form's action is relative, so it also works under a `server.address` path prefix.
    let body = format!(
        "<h1>Connect a device</h1><p>Signed in as <strong>{user}</strong>.</p>{described}\
         <form method=\"post\" action=\"device-authorization\"><label for=\"user_code\">Code shown on the device</label><br>\
         <input id=\"user_code\" name=\"user_code\" value=\"{value}\" autocomplete=\"off\" required autofocus>\
         <input type=\"hidden\" name=\"csrf\" value=\"{token}\"><p>\
         <button type=\"submit\" name=\"answer\" value=\"approve\">Approve</button> <button type=\"submit\" name=\"answer\" value=\"deny\">Deny</button></p></form>",
        user = escape(&identity.username),
        value = escape(typed.as_deref().unwrap_or("")),
    );
    let mut r = page(StatusCode::OK, &body);
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().append(SET_COOKIE, v);
    }
    r
}

/// `POST /consent/openid/device-authorization`: the user's answer.
pub(super) async fn device_answer(State(state): State<AppState>, request: Request) -> Response {
    let Some(rt) = runtime(&state).cloned() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let refused = |m: &str| {
        page(
            StatusCode::BAD_REQUEST,
            &format!("<p role=\"alert\">{}</p>", escape(m)),
        )
    };
    let Ok((parts, pairs)) = super::form_body(request).await else {
        return refused("The form could not be read.");
    };
    let get = |n: &str| single(&pairs, n).ok().flatten().map(str::to_owned);
    if !get("csrf").is_some_and(|t| csrf_valid(&state.0.csrf_key, &parts.headers, &t)) {
        return refused("This form has expired. Open the page again.");
    }
    let (_, identity, _) = portal_identity(&state, &parts, peer_of_parts(&parts)).await;
    if identity.level < AuthLevel::OneFactor || identity.username.is_empty() {
        return refused("You are not signed in.");
    }
    let now = state.now();
    // Guessing codes: unknown codes count toward a limit per address.
    let ip = super::client_addr_of_parts(&state, &parts);
    if let Some(retry) = rt.limits.device_page.limited(ip, now) {
        tracing::info!(user = %identity.username, retry, "device approval refused: rate limited");
        return page(
            StatusCode::TOO_MANY_REQUESTS,
            "<p role=\"alert\">Too many wrong codes. Try again later.</p>",
        );
    }
    let found = match get("user_code").as_deref().and_then(normalise_user_code) {
        Some(code) => find(&rt, &code, now).await.map(|(k, r)| (code, k, r)),
        None => None,
    };
    let Some((code, key, mut record)) = found else {
        rt.limits.device_page.count(ip, now);
        tracing::info!(user = %identity.username, "device approval refused: unknown or expired code");
        return refused("This code is unknown or has expired.");
    };
    let Some(client) = rt.client(&record.client_id) else {
        return refused("This code is unknown or has expired.");
    };
    let approve = get("answer").as_deref() == Some("approve");
    let ip = super::client_addr_of_parts(&state, &parts);
    let allowed = match client
        .policy
        .required(&identity.username, &identity.groups, Some(ip))
    {
        PolicyLevel::Deny => false,
        PolicyLevel::Level(required) => identity.level >= required,
    };
    record.answer = if approve && allowed {
        let Ok(subject) = rt.store.subject(&identity.username, "", &uuid_v4()).await else {
            return refused("The server could not record the answer.");
        };
        Answer::Approved {
            username: identity.username.clone(),
            subject,
            auth_time: identity.authenticated_at.unwrap_or(now),
            amr: if identity.level >= AuthLevel::TwoFactor {
                vec!["pwd".into(), "mfa".into()]
            } else {
                vec!["pwd".into()]
            },
        }
    } else {
        Answer::Denied
    };
    let Ok(bytes) = encode(&record) else {
        return refused("The server could not record the answer.");
    };
    if rt
        .store
        .insert(RecordKind::Device, &key, &key, &bytes, record.expires_at)
        .await
        .is_err()
    {
        return refused("The server could not record the answer.");
    }
    let _ = rt.store.delete(RecordKind::Device, &user_key(&code)).await;
    tracing::info!(user = %identity.username, client = %client.client.id, approved = matches!(record.answer, Answer::Approved { .. }), "device authorization answered");
    match record.answer {
        Answer::Approved { .. } => page(
            StatusCode::OK,
            "<h1>Device connected</h1><p>You can return to your device.</p>",
        ),
        _ if approve => page(
            StatusCode::FORBIDDEN,
            "<h1>Not allowed</h1><p>Your account may not use this application.</p>",
        ),
        _ => page(
            StatusCode::OK,
            "<h1>Request denied</h1><p>The device was not connected.</p>",
        ),
    }
}
