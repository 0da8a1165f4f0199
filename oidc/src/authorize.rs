//! The authorization request (RFC 6749 §4.1.1, OpenID Connect Core §3.1.2.1) parsed against its
//! client, in the order that decides where an error may go: nothing is redirected before the
//! client and its redirect URI are known good (docs/reference/oidc-provider.md §3).

use serde::{Deserialize, Serialize};

use crate::client::{Client, ResponseMode};
use crate::error::{ErrorCode, OAuthError};
use crate::pkce::{self, Challenge, ChallengeMethod};
use crate::scope::Scopes;

/// `enforce_pkce`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnforcePkce {
    /// Public clients must use PKCE (Authelia's default).
    PublicClientsOnly,
    /// Every client must.
    Always,
    /// Only clients with `require_pkce`.
    Never,
}

/// Provider-wide rules for authorization requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthorizeSettings {
    /// `enforce_pkce`.
    pub enforce_pkce: EnforcePkce,
    /// `enable_pkce_plain_challenge`.
    pub allow_plain_pkce: bool,
    /// `minimum_parameter_entropy`: minimum length of `state` and `nonce`; `None` disables it.
    pub min_entropy: Option<usize>,
}

/// The `prompt` values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prompt {
    /// `none`: never show a page.
    pub none: bool,
    /// `login`: authenticate again.
    pub login: bool,
    /// `consent`: ask for consent again.
    pub consent: bool,
}

/// A validated authorization request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizationRequest {
    /// The client.
    pub client_id: String,
    /// The redirect URI the response goes to.
    pub redirect_uri: String,
    /// Whether the request named the redirect URI (then the token request must repeat it).
    pub redirect_uri_given: bool,
    /// How the response is delivered.
    pub response_mode: ResponseMode,
    /// Requested scopes, all allowed for the client.
    pub scopes: Scopes,
    /// `state`.
    pub state: Option<String>,
    /// `nonce`.
    pub nonce: Option<String>,
    /// The PKCE challenge.
    pub challenge: Option<Challenge>,
    /// `prompt`.
    pub prompt: Prompt,
    /// `max_age` in seconds.
    pub max_age: Option<u64>,
    /// Requested audiences, all allowed for the client.
    pub audience: Vec<String>,
}

/// Where an error response may be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorTarget {
    /// The validated redirect URI.
    pub redirect_uri: String,
    /// The response mode to use.
    pub response_mode: ResponseMode,
    /// `state` to echo.
    pub state: Option<String>,
}

/// Why an authorization request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizeError {
    /// The client or the redirect URI is not known good: the error must not be redirected to
    /// the client (the provider shows its own page).
    Unredirectable(OAuthError),
    /// The error goes to the client's validated redirect URI.
    Redirect(ErrorTarget, OAuthError),
}

impl AuthorizeError {
    /// The OAuth error.
    pub fn error(&self) -> &OAuthError {
        match self {
            Self::Unredirectable(e) | Self::Redirect(_, e) => e,
        }
    }
}

/// Collected parameters: each may appear once (RFC 6749 §3.1).
struct Params<'a> {
    pairs: &'a [(String, String)],
}

impl<'a> Params<'a> {
    /// `Err(name)` when the parameter is repeated; empty values count as absent
    /// (RFC 6749 §3.1: "parameters sent without a value MUST be treated as if they were omitted").
    fn get(&self, name: &'static str) -> Result<Option<&'a str>, &'static str> {
        let mut found = None;
        for (key, value) in self.pairs {
            if key == name {
                if found.is_some() {
                    return Err(name);
                }
                found = Some(value.as_str());
            }
        }
        Ok(found.filter(|v| !v.is_empty()))
    }
}

fn invalid(description: impl Into<String>) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidRequest, description)
}

/// Parse an authorization request. `find_client` looks the client up by id.
pub fn parse_authorization_request<'c>(
    pairs: &[(String, String)],
    settings: &AuthorizeSettings,
    find_client: impl Fn(&str) -> Option<&'c Client>,
) -> Result<(&'c Client, AuthorizationRequest), AuthorizeError> {
    let params = Params { pairs };
    let unredirectable = |e| AuthorizeError::Unredirectable(e);
    let repeated = |name: &str| {
        invalid(format!(
            "The '{name}' parameter is included more than once."
        ))
    };

    let client_id = params
        .get("client_id")
        .map_err(|n| unredirectable(repeated(n)))?
        .ok_or_else(|| unredirectable(invalid("The 'client_id' parameter is missing.")))?;
    let client = find_client(client_id).ok_or_else(|| {
        unredirectable(OAuthError::new(
            ErrorCode::InvalidClient,
            "Client authentication failed (e.g., unknown client, no client authentication included, or unsupported authentication method).",
        ))
    })?;
    let given = params
        .get("redirect_uri")
        .map_err(|n| unredirectable(repeated(n)))?;
    let redirect_uri = match given {
        Some(uri) => {
            if !client.redirect_uris.iter().any(|r| r == uri) {
                return Err(unredirectable(invalid(
                    "The 'redirect_uri' parameter does not match any of the OAuth 2.0 Client's pre-registered redirect urls.",
                )));
            }
            uri.to_owned()
        }
        // OpenID Connect requires the parameter; OAuth 2.0 allows leaving it out when exactly
        // one URI is registered. Without it the error cannot be redirected anywhere safe.
        None => match client.redirect_uris.as_slice() {
            [only] => only.clone(),
            _ => {
                return Err(unredirectable(invalid(
                    "The 'redirect_uri' parameter is required when the client has several redirect URIs.",
                )));
            }
        },
    };

    // From here on errors go to the validated redirect URI. `state` is echoed when it is a
    // single value; the response mode is the requested one only when it is valid for the
    // client, the default otherwise.
    let state = params.get("state").ok().flatten().map(str::to_owned);
    let requested_mode = params
        .get("response_mode")
        .ok()
        .flatten()
        .and_then(ResponseMode::parse)
        .filter(|m| client.response_modes.contains(m));
    let target = ErrorTarget {
        redirect_uri: redirect_uri.clone(),
        response_mode: requested_mode.unwrap_or(ResponseMode::Query),
        state: state.clone(),
    };
    let fail = |e: OAuthError| AuthorizeError::Redirect(target.clone(), e);
    let get = |name: &'static str| params.get(name).map_err(|n| fail(repeated(n)));

    if get("request")?.is_some() {
        return Err(fail(OAuthError::new(
            ErrorCode::RequestNotSupported,
            "The OP does not support use of the 'request' parameter.",
        )));
    }
    // A pushed request's `request_uri` is resolved by the server before this parse; one that
    // is still here names nothing the server knows.
    if get("request_uri")?.is_some() {
        return Err(fail(OAuthError::new(
            ErrorCode::InvalidRequestUri,
            "The 'request_uri' does not name a pushed authorization request.",
        )));
    }
    match get("response_type")? {
        None => return Err(fail(invalid("The 'response_type' parameter is missing."))),
        Some("code") => {}
        Some(other) => {
            return Err(fail(OAuthError::new(
                ErrorCode::UnsupportedResponseType,
                format!("The client is not allowed to request response_type '{other}'."),
            )));
        }
    }
    if let Some(mode) = get("response_mode")? {
        match ResponseMode::parse(mode) {
            Some(m) if client.response_modes.contains(&m) => {}
            _ => {
                return Err(fail(OAuthError::new(
                    ErrorCode::UnsupportedResponseMode,
                    format!("The client is not allowed to request response_mode '{mode}'."),
                )));
            }
        }
    }
    let scopes = match get("scope")? {
        None => Scopes::default(),
        Some(value) => Scopes::parse(value).ok_or_else(|| {
            fail(OAuthError::new(
                ErrorCode::InvalidScope,
                "The scope is malformed.",
            ))
        })?,
    };
    if let Some(scope) = scopes.first_outside(&client.scopes) {
        return Err(fail(OAuthError::new(
            ErrorCode::InvalidScope,
            format!("The OAuth 2.0 Client is not allowed to request scope '{scope}'."),
        )));
    }
    if let Some(min) = settings.min_entropy
        && state.as_deref().map_or(0, str::len) < min
    {
        return Err(fail(OAuthError::new(
            ErrorCode::InvalidState,
            format!(
                "Request parameter 'state' must be at least be {min} characters long to ensure sufficient entropy."
            ),
        )));
    }
    let nonce = get("nonce")?.map(str::to_owned);
    if let (Some(min), Some(n)) = (settings.min_entropy, nonce.as_deref())
        && n.len() < min
    {
        return Err(fail(OAuthError::new(
            ErrorCode::InsufficientEntropy,
            format!(
                "Parameter 'nonce' is set but does not satisfy the minimum entropy of {min} characters."
            ),
        )));
    }
    let challenge = parse_challenge(
        client,
        settings,
        get("code_challenge")?,
        get("code_challenge_method")?,
    )
    .map_err(&fail)?;
    let prompt = parse_prompt(get("prompt")?).map_err(&fail)?;
    let max_age = match get("max_age")? {
        None => None,
        Some(v) => Some(v.parse::<u64>().map_err(|_| {
            fail(invalid(
                "The 'max_age' parameter must be a non-negative integer.",
            ))
        })?),
    };
    let audience: Vec<String> = match get("audience")? {
        None => Vec::new(),
        Some(v) => v
            .split(' ')
            .filter(|a| !a.is_empty())
            .map(str::to_owned)
            .collect(),
    };
    if let Some(a) = audience.iter().find(|a| !client.audience.contains(a)) {
        return Err(fail(invalid(format!(
            "Requested audience '{a}' has not been whitelisted by the OAuth 2.0 Client."
        ))));
    }
    Ok((
        client,
        AuthorizationRequest {
            client_id: client.id.clone(),
            redirect_uri,
            redirect_uri_given: given.is_some(),
            response_mode: requested_mode.unwrap_or(ResponseMode::Query),
            scopes,
            state,
            nonce,
            challenge,
            prompt,
            max_age,
            audience,
        },
    ))
}

fn parse_challenge(
    client: &Client,
    settings: &AuthorizeSettings,
    value: Option<&str>,
    method: Option<&str>,
) -> Result<Option<Challenge>, OAuthError> {
    let required = client.require_pkce
        || client.pkce_method.is_some()
        || match settings.enforce_pkce {
            EnforcePkce::Always => true,
            EnforcePkce::PublicClientsOnly => client.public,
            EnforcePkce::Never => false,
        };
    let Some(value) = value else {
        if method.is_some() {
            return Err(invalid(
                "The 'code_challenge_method' parameter was sent without a 'code_challenge'.",
            ));
        }
        if required {
            return Err(invalid(
                "Clients must include a code_challenge when performing the authorize code flow, but it is missing.",
            ));
        }
        return Ok(None);
    };
    // RFC 7636 §4.3: the method defaults to plain.
    let method = match method {
        None => ChallengeMethod::Plain,
        Some(m) => ChallengeMethod::parse(m)
            .ok_or_else(|| invalid(format!("The code_challenge_method '{m}' is not supported.")))?,
    };
    if method == ChallengeMethod::Plain && !settings.allow_plain_pkce {
        return Err(invalid(
            "Clients must use code_challenge_method=S256, plain is not allowed.",
        ));
    }
    if client.pkce_method.is_some_and(|m| m != method) {
        return Err(invalid(format!(
            "The client requires code_challenge_method={}.",
            client.pkce_method.map_or("", ChallengeMethod::as_str)
        )));
    }
    if !pkce::is_well_formed(value) {
        return Err(invalid("The 'code_challenge' parameter is malformed."));
    }
    Ok(Some(Challenge {
        method,
        value: value.to_owned(),
    }))
}

fn parse_prompt(value: Option<&str>) -> Result<Prompt, OAuthError> {
    let mut prompt = Prompt::default();
    for token in value.unwrap_or("").split(' ').filter(|t| !t.is_empty()) {
        match token {
            "none" => prompt.none = true,
            "login" => prompt.login = true,
            "consent" => prompt.consent = true,
            "select_account" => {}
            other => {
                return Err(invalid(format!(
                    "Used unknown value '{other}' for prompt parameter."
                )));
            }
        }
    }
    if prompt.none && (prompt.login || prompt.consent) {
        return Err(invalid(
            "Parameter 'prompt' was set to 'none', but contains other values as well which is not allowed.",
        ));
    }
    Ok(prompt)
}

#[cfg(test)]
mod tests;
