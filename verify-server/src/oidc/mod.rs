//! The OpenID Connect provider (`identity_providers.oidc`): Authelia's endpoints over the pure
//! rules of `portcullis-oidc` (docs/reference/oidc-provider.md).
//!
//! - `metadata`: discovery, RFC 8414 metadata, the JWK Set;
//! - `authorization`: the authorization endpoint, the login flow and consent (API and pages);
//! - `token`: the token endpoint and client authentication;
//! - `resource`: UserInfo, introspection, revocation;
//! - `pushed`: pushed authorization requests; `device`: the device authorization grant;
//! - `logout`: RP-initiated and back-channel logout;
//! - `records`: what the store keeps between requests.

mod app_password;
mod authn;
mod authorization;
mod client_keys;
mod consent;
mod cors;
mod device;
mod logout;
mod metadata;
mod pages;
mod pushed;
mod records;
mod resource;
mod signing;
mod token;
mod wire;

use std::sync::Arc;

use axum::Router;
use axum::http::request::Parts;
use axum::routing::{get, post};
use portcullis_auth::rate_limit::RateLimiter;
use portcullis_oidc::OidcError;
use portcullis_oidc::discovery::paths;
use portcullis_oidc::keys::KeySet;
use portcullis_oidc::opaque::TokenKey;
use portcullis_oidc::store::OidcStore;
use rand::RngCore;

use crate::config::{OidcClient, OidcProvider};
use crate::state::AppState;

pub(crate) use authorization::{flow_client_origin, flow_redirect_after_login};
pub(crate) use logout::user_logged_out;
use signing::{check_certificate_validity, generated_keys};
pub(crate) use signing::{
    jwt_key, rotate_keys_periodically, sign, verify_access_jwt, verify_with_provider_key,
};
pub(crate) use wire::{
    client_addr, client_addr_of_parts, form_body, no_store_json, oauth_error, single,
    store_failure, too_many_requests,
};

/// The rate limiters of the token-style endpoints (failed requests count).
pub(crate) struct Limiters {
    /// Wrong user codes on the device page (the token endpoint's buckets).
    pub(crate) device_page: RateLimiter,
    pub(crate) pushed: RateLimiter,
    pub(crate) token: RateLimiter,
    pub(crate) userinfo: RateLimiter,
    pub(crate) introspection: RateLimiter,
    pub(crate) revocation: RateLimiter,
}

/// A client of the current client list (the list SIGHUP may replace; a request keeps the one it
/// started with).
#[derive(Debug, Clone)]
pub(crate) struct ClientRef {
    all: Arc<Vec<OidcClient>>,
    index: usize,
}

impl std::ops::Deref for ClientRef {
    type Target = OidcClient;
    fn deref(&self) -> &OidcClient {
        &self.all[self.index]
    }
}

/// The provider at run time: its configuration, keys and store.
pub struct OidcRuntime {
    pub(crate) provider: OidcProvider,
    /// The clients, replaced as a whole on SIGHUP (`reload_clients`).
    clients: std::sync::RwLock<Arc<Vec<OidcClient>>>,
    /// The signing keys: the configured `jwks`, or the generated keys of this rotation epoch and
    /// the one before (published until the tokens it signed have expired).
    keys: std::sync::RwLock<Arc<KeySet>>,
    /// Whether the keys are generated (and rotated) rather than configured.
    generated: bool,
    pub(crate) token_key: TokenKey,
    pub(crate) store: Arc<dyn OidcStore>,
    pub(crate) limits: Limiters,
    /// Client keys fetched from `jwks_uri`, by client id.
    fetched_keys: std::sync::Mutex<std::collections::HashMap<String, client_keys::FetchedKeys>>,
}

impl std::fmt::Debug for OidcRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcRuntime")
            .field("clients", &self.clients().len())
            .field("keys", &self.keys().algorithms())
            .finish_non_exhaustive()
    }
}

impl OidcRuntime {
    /// Build from the configuration and a store. Without configured `jwks`, an RS256 key is
    /// generated at first start and kept in the store, so restarts and replicas sign alike.
    pub async fn build(
        mut provider: OidcProvider,
        store: Arc<dyn OidcStore>,
        now: u64,
    ) -> Result<Self, OidcError> {
        let configured = std::mem::take(&mut provider.keys);
        for key in &configured {
            check_certificate_validity(key, now)?;
        }
        let generated = configured.is_empty();
        let keys = if generated {
            tracing::info!(
                rotation_days = provider.key_rotation / 86_400,
                "identity_providers.oidc.jwks is not set: signing with generated RS256 keys kept (sealed) in the storage and rotated"
            );
            generated_keys(&provider, store.as_ref(), now).await?
        } else {
            KeySet::new(configured)
        };
        let token_key = TokenKey::from_secret(provider.hmac_secret.expose().as_bytes());
        let l = &provider.rate_limits;
        let limits = Limiters {
            device_page: RateLimiter::new(l.token.clone()),
            pushed: RateLimiter::new(l.pushed.clone()),
            token: RateLimiter::new(l.token.clone()),
            userinfo: RateLimiter::new(l.userinfo.clone()),
            introspection: RateLimiter::new(l.introspection.clone()),
            revocation: RateLimiter::new(l.revocation.clone()),
        };
        let clients = std::sync::RwLock::new(Arc::new(std::mem::take(&mut provider.clients)));
        Ok(Self {
            provider,
            clients,
            keys: std::sync::RwLock::new(Arc::new(keys)),
            generated,
            token_key,
            store,
            limits,
            fetched_keys: std::sync::Mutex::new(std::collections::HashMap::new()),
        })
    }

    pub(crate) fn client(&self, id: &str) -> Option<ClientRef> {
        let all = self.clients();
        let index = all.iter().position(|c| c.client.id == id)?;
        Some(ClientRef { all, index })
    }

    /// The current signing keys.
    pub(crate) fn keys(&self) -> Arc<KeySet> {
        self.keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Move to the generated keys of the epoch `now` falls in, when it changed (a no-op for
    /// configured keys). Returns whether the keys changed.
    pub async fn rotate_keys(&self, now: u64) -> Result<bool, OidcError> {
        if !self.generated {
            return Ok(false);
        }
        let fresh = generated_keys(&self.provider, self.store.as_ref(), now).await?;
        let current = self.keys();
        let same = fresh
            .jwks()
            .keys
            .iter()
            .map(|k| k.common.key_id.clone())
            .collect::<Vec<_>>()
            == current
                .jwks()
                .keys
                .iter()
                .map(|k| k.common.key_id.clone())
                .collect::<Vec<_>>();
        if same {
            return Ok(false);
        }
        *self
            .keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(fresh);
        tracing::info!(
            "OpenID Connect signing keys changed: a key published ahead, a rotation (the previous key stays published for the tokens it signed), or an expired key withdrawn"
        );
        Ok(true)
    }

    /// The current clients.
    pub(crate) fn clients(&self) -> Arc<Vec<OidcClient>> {
        self.clients
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Replace the clients (SIGHUP). Refused, keeping the old ones, when a new client needs a
    /// signing key the running provider does not have (keys are read at start only).
    pub fn reload_clients(&self, provider: OidcProvider) -> Result<usize, String> {
        use portcullis_oidc::keys::Algorithm;
        for c in &provider.clients {
            for (alg, kid) in [
                (Some(c.client.id_token_alg), c.id_token_key_id.as_deref()),
                (c.client.access_token_alg, c.access_token_key_id.as_deref()),
                signed(c.userinfo_signing.as_ref()),
                signed(c.introspection_signing.as_ref()),
            ] {
                let Some(alg) = alg else { continue };
                if matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) {
                    continue;
                }
                let found = match kid {
                    Some(kid) => self.keys().by_kid(kid).is_some_and(|k| k.alg() == alg),
                    None => self.keys().for_alg(alg).is_some(),
                };
                if !found {
                    return Err(format!(
                        "client {} needs a {alg:?} signing key the running server does not have (jwks are read at start: restart)",
                        c.client.id
                    ));
                }
            }
        }
        let count = provider.clients.len();
        self.fetched_keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
        *self
            .clients
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(provider.clients);
        Ok(count)
    }
}

/// The algorithm and key id of a signed answer, when the client asks for one.
fn signed(
    signing: Option<&(portcullis_oidc::keys::Algorithm, Option<String>)>,
) -> (Option<portcullis_oidc::keys::Algorithm>, Option<&str>) {
    signing.map_or((None, None), |(alg, kid)| (Some(*alg), kid.as_deref()))
}

/// How often expired codes, tokens and flows are deleted from the store (Redis expires them by
/// itself; SQLite keeps rows until this runs).
const PURGE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(600);

/// Delete expired records every [`PURGE_INTERVAL`] while the server runs (nothing without a
/// provider).
pub(crate) fn purge_expired(state: AppState) {
    if runtime(&state).is_none() {
        return;
    }
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(PURGE_INTERVAL).await;
            if let Some(rt) = runtime(&state) {
                match rt.store.purge(state.now()).await {
                    Ok(n) if n > 0 => {
                        tracing::debug!(records = n, "expired OpenID Connect records deleted")
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "could not delete expired OpenID Connect records")
                    }
                }
            }
        }
    });
}

/// The provider's routes (mounted only when `identity_providers.oidc` is configured).
pub(crate) fn routes(state: AppState) -> Router<AppState> {
    routes_without_cors().layer(axum::middleware::from_fn_with_state(state, cors::cors))
}

fn routes_without_cors() -> Router<AppState> {
    Router::new()
        .route(
            paths::OPENID_CONFIGURATION,
            get(metadata::openid_configuration).options(metadata::preflight),
        )
        .route(
            paths::OAUTH_METADATA,
            get(metadata::oauth_metadata).options(metadata::preflight),
        )
        .route(
            paths::JWKS,
            get(metadata::jwks).options(metadata::preflight),
        )
        .route(
            paths::AUTHORIZATION,
            get(authorization::authorize).post(authorization::authorize_post),
        )
        .route(
            paths::CONSENT,
            get(consent::consent_get).post(consent::consent_post),
        )
        .route(
            "/consent/openid/decision",
            get(consent::decision_page).post(consent::decision_form),
        )
        .route("/consent/completion", get(consent::completion_page))
        .route(paths::TOKEN, post(token::token))
        .route(paths::PUSHED_AUTHORIZATION_REQUEST, post(pushed::pushed))
        .route(
            paths::DEVICE_AUTHORIZATION,
            post(device::device_authorization),
        )
        .route(
            paths::DEVICE_PAGE,
            get(device::device_page).post(device::device_answer),
        )
        .route(
            paths::USERINFO,
            get(resource::userinfo).post(resource::userinfo),
        )
        .route(paths::INTROSPECTION, post(resource::introspection))
        .route(paths::REVOCATION, post(resource::revocation))
        .route(
            paths::END_SESSION,
            get(logout::end_session).post(logout::end_session),
        )
        .route("/api/oidc/end-session/confirm", post(logout::confirm))
}

/// The runtime, when the provider is configured.
pub(crate) fn runtime(state: &AppState) -> Option<&Arc<OidcRuntime>> {
    state.0.oidc.get()
}

/// The attached provider (for tests and embedding services: key rotation, client reloads).
pub fn runtime_of(state: &AppState) -> Option<Arc<OidcRuntime>> {
    runtime(state).cloned()
}

/// The issuer of a request: the portal URL (`authelia_url`, without its trailing slash) of the
/// cookie domain the request's host belongs to, as Authelia derives it. `None`: no cookie domain
/// matches, and the provider does not answer (no issuer can be trusted).
pub(crate) fn issuer(state: &AppState, parts: &Parts) -> Option<String> {
    let peer = crate::authz::peer_of_parts(parts);
    let index = crate::portal::portal_domain_of(state, parts, peer)?;
    let url = state.config().cookies[index].authelia_url.as_deref()?;
    Some(url.trim_end_matches('/').to_owned())
}

/// What the claims say about `user`: the users file's fields and extra attributes, and
/// `is_superuser` from `portcullis.oidc.superuser_group`.
pub(crate) fn profile_of(
    rt: &OidcRuntime,
    user: &portcullis_auth::users::User,
) -> portcullis_oidc::claims::UserProfile {
    let attributes = serde_json::to_value(&user.attributes)
        .ok()
        .and_then(|v| match v {
            serde_json::Value::Object(m) => Some(m),
            _ => None,
        })
        .unwrap_or_default();
    portcullis_oidc::claims::UserProfile {
        username: user.username.clone(),
        display_name: user.display_name.clone(),
        emails: user.emails.clone(),
        groups: user.groups.clone(),
        attributes,
        is_superuser: rt
            .provider
            .superuser_group
            .as_ref()
            .is_some_and(|g| user.groups.iter().any(|x| x == g)),
    }
}

/// 32 random bytes.
pub(crate) fn random32() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes
}

/// A random version-4 UUID (RFC 9562 §5.4).
pub(crate) fn uuid_v4() -> String {
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}
