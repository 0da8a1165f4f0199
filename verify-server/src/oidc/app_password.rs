//! The client-credentials grant with a user's app password, as authentik's outpost turns Basic
//! credentials into tokens (docs/reference/oidc-provider.md §4.10).

use axum::http::request::Parts;
use portcullis_oidc::client::GrantType;
use portcullis_oidc::scope::Scopes;
use portcullis_oidc::{ErrorCode, OAuthError};
use serde_json::Value;

use super::authn::Refusal;
use super::records::GrantRecord;
use super::token::issue;
use super::{OidcRuntime, single, uuid_v4};
use crate::state::AppState;

fn err(code: ErrorCode, description: impl Into<String>) -> OAuthError {
    OAuthError::new(code, description)
}

fn store_err(e: &portcullis_oidc::OidcError) -> Refusal {
    tracing::error!(error = %e, "OpenID Connect store failed: token request refused");
    err(
        ErrorCode::ServerError,
        "The authorization server encountered an unexpected condition.",
    )
    .into()
}

/// The client-credentials grant for a user, with an app password (never the user's password;
/// authentik CVE-2024-52287 is why the scopes are the client's own and nothing more). App passwords
/// are one factor: a client whose policy wants two is refused. Failures count for regulation.
pub(super) async fn app_password_grant(
    state: &AppState,
    rt: &OidcRuntime,
    parts: &Parts,
    pairs: &[(String, String)],
    iss: &str,
) -> Result<Value, Refusal> {
    let invalid_grant = |d: &str| -> Refusal { err(ErrorCode::InvalidGrant, d).into() };
    let client_id = single(pairs, "client_id")?.ok_or_else(|| {
        err(
            ErrorCode::InvalidClient,
            "The 'client_id' parameter is missing.",
        )
    })?;
    let client = rt.client(client_id).ok_or_else(|| err(ErrorCode::InvalidClient, "Client authentication failed (e.g., unknown client, no client authentication included, or unsupported authentication method)."))?;
    if !client.client.allows_grant(GrantType::ClientCredentials) {
        return Err(err(
            ErrorCode::UnauthorizedClient,
            "The OAuth 2.0 Client is not allowed to use the grant type 'client_credentials'.",
        )
        .into());
    }
    let login = single(pairs, "username")?.unwrap_or("");
    let password = single(pairs, "password")?.unwrap_or("");
    let now = state.now();
    let ip = super::client_addr_of_parts(state, parts);
    let regulator = &state.0.regulator;
    if regulator.is_banned(None, Some(ip), now).await {
        return Err(invalid_grant(
            "The resource owner credentials are not valid.",
        ));
    }
    let user = match state.find_user(login).await {
        Ok(user) => user,
        Err(e) => {
            tracing::error!(error = %e, "client credentials refused: the user directory is unavailable");
            return Err(err(
                ErrorCode::TemporarilyUnavailable,
                "The user directory is unavailable; retry later.",
            )
            .into());
        }
    };
    let Some(user) = user else {
        regulator.record("", Some(ip), false, now).await;
        return Err(invalid_grant(
            "The resource owner credentials are not valid.",
        ));
    };
    if regulator
        .is_banned(Some(&user.username), Some(ip), now)
        .await
    {
        return Err(invalid_grant(
            "The resource owner credentials are not valid.",
        ));
    }
    let records = match state.0.app_passwords.get() {
        Some(store) if portcullis_auth::app_passwords::looks_like(password) => {
            store.list(&user.username).await.map_err(|e| {
                tracing::error!(error = %e, "app passwords unavailable: grant refused");
                Refusal::from(err(
                    ErrorCode::ServerError,
                    "The authorization server encountered an unexpected condition.",
                ))
            })?
        }
        _ => Vec::new(),
    };
    let valid = portcullis_auth::app_passwords::matches(&records, password, now);
    regulator.record(&user.username, Some(ip), valid, now).await;
    if !valid {
        tracing::info!(user = %user.username, client = %client.client.id, "client credentials with an app password refused: no such app password");
        return Err(invalid_grant(
            "The resource owner credentials are not valid.",
        ));
    }
    match client
        .policy
        .required(&user.username, &user.groups, Some(ip))
    {
        crate::config::PolicyLevel::Level(portcullis_core::AuthLevel::OneFactor) => {}
        _ => {
            return Err(err(
                ErrorCode::AccessDenied,
                "The user was denied access to this client (app passwords are one factor).",
            )
            .into());
        }
    }
    let scopes = match single(pairs, "scope")? {
        None => client.client.scopes.clone(),
        Some(s) => Scopes::parse(s)
            .ok_or_else(|| err(ErrorCode::InvalidScope, "The scope is malformed."))?,
    };
    if let Some(s) = scopes.first_outside(&client.client.scopes) {
        return Err(err(
            ErrorCode::InvalidScope,
            format!("The OAuth 2.0 Client is not allowed to request scope '{s}'."),
        )
        .into());
    }
    let scopes = scopes.without("offline_access").without("offline");
    let subject = rt
        .store
        .subject(&user.username, "", &uuid_v4())
        .await
        .map_err(|e| store_err(&e))?;
    let grant = GrantRecord {
        client_id: client.client.id.clone(),
        username: Some(user.username.clone()),
        subject,
        scopes,
        audience: Vec::new(),
        issuer: iss.to_owned(),
        auth_time: now,
        amr: vec!["pwd".into()],
        nonce: None,
        redirect_uri: None,
        redirect_uri_given: false,
        challenge: None,
        issued_at: now,
        expires_at: now,
        access_token_key: None,
    };
    tracing::info!(user = %user.username, client = %client.client.id, "client credentials with an app password");
    issue(
        rt,
        &client,
        &grant,
        &uuid_v4(),
        now,
        Some(super::profile_of(rt, &user)),
    )
    .await
}
