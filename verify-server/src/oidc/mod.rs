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

mod authorization;
mod device;
mod logout;
mod metadata;
mod pages;
mod pushed;
mod records;
mod resource;
mod token;

use std::sync::Arc;

use axum::Router;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::header::{CACHE_CONTROL, CONTENT_TYPE, PRAGMA};
use http::{HeaderValue, StatusCode};
use portcullis_auth::rate_limit::RateLimiter;
use portcullis_oidc::discovery::paths;
use portcullis_oidc::keys::{KeySet, SigningKey};
use portcullis_oidc::opaque::TokenKey;
use portcullis_oidc::store::OidcStore;
use portcullis_oidc::{OAuthError, OidcError};
use rand::RngCore;

use crate::config::{OidcClient, OidcProvider};
use crate::state::AppState;

pub(crate) use authorization::{flow_client_origin, flow_redirect_after_login};
pub(crate) use logout::user_logged_out;

/// The name the generated signing key is kept under in the store.
const GENERATED_KEY: &str = "oidc signing key rs256 epoch";

/// The store name of the generated key of rotation epoch `epoch`: every replica derives the same
/// name from the clock, and `keep` answers the first key stored under it, so replicas agree on
/// each epoch's key without talking to each other.
fn generated_key_name(epoch: u64) -> String {
    format!("{GENERATED_KEY} {epoch}")
}

/// Keys fetched from a client's `jwks_uri`: when, and the keys.
type FetchedKeys = (u64, Arc<Vec<portcullis_oidc::keys::ClientKey>>);

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
    /// Client keys fetched from `jwks_uri`: when, and the keys.
    fetched_keys: tokio::sync::Mutex<std::collections::HashMap<String, FetchedKeys>>,
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
            fetched_keys: tokio::sync::Mutex::new(std::collections::HashMap::new()),
        })
    }

    pub(crate) fn client(&self, id: &str) -> Option<ClientRef> {
        let all = self.clients();
        let index = all.iter().position(|c| c.client.id == id)?;
        Some(ClientRef { all, index })
    }

    /// The keys a `private_key_jwt` client publishes at its `jwks_uri`, cached for five minutes
    /// (fetched again sooner, once a minute at most, when `kid` is not among them: the client
    /// rotated its key).
    pub(crate) async fn client_keys(
        &self,
        client: &OidcClient,
        kid: Option<&str>,
        now: u64,
    ) -> Option<Arc<Vec<portcullis_oidc::keys::ClientKey>>> {
        let uri = client.jwks_uri.as_deref()?;
        let mut cache = self.fetched_keys.lock().await;
        if let Some((at, keys)) = cache.get(&client.client.id) {
            let known = kid.is_none_or(|kid| keys.iter().any(|k| k.kid.as_deref() == Some(kid)));
            if (now < at + 300 && known) || now < at + 60 {
                return Some(keys.clone());
            }
        }
        let default = client
            .assertion_alg
            .unwrap_or(portcullis_oidc::keys::Algorithm::RS256);
        let fetched = async {
            let response = reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(5))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .ok()?
                .get(uri)
                .send()
                .await
                .ok()?;
            if !response.status().is_success() {
                return None;
            }
            let bytes = response.bytes().await.ok()?;
            let set: portcullis_oidc::keys::JwkSet = serde_json::from_slice(&bytes).ok()?;
            Some(
                set.keys
                    .iter()
                    .filter_map(|k| portcullis_oidc::keys::ClientKey::from_jwk(k, default).ok())
                    .collect::<Vec<_>>(),
            )
        }
        .await;
        match fetched {
            Some(keys) => {
                let keys = Arc::new(keys);
                cache.insert(client.client.id.clone(), (now, keys.clone()));
                Some(keys)
            }
            None => {
                tracing::warn!(client = %client.client.id, uri, "could not fetch the client's keys from its jwks_uri");
                cache.get(&client.client.id).map(|(_, k)| k.clone())
            }
        }
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
        *self
            .clients
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(provider.clients);
        Ok(count)
    }
}

/// The generated keys for `now`: this epoch's (made and kept now when no replica has yet), then
/// the previous epoch's when it is kept (it still verifies tokens signed before the rotation).
/// With rotation off (`key_rotation` 0) there is one epoch for ever.
async fn generated_keys(
    provider: &OidcProvider,
    store: &dyn OidcStore,
    now: u64,
) -> Result<KeySet, OidcError> {
    let secret = provider.hmac_secret.expose().as_bytes();
    let epoch = now.checked_div(provider.key_rotation).unwrap_or(0);
    let mut keys = vec![
        epoch_key(store, secret, epoch, true)
            .await?
            .ok_or_else(|| {
                OidcError::Key("the signing key of this epoch could not be kept".into())
            })?,
    ];
    if let Some(previous) = epoch.checked_sub(1)
        && let Some(key) = epoch_key(store, secret, previous, false).await?
    {
        keys.push(key);
    }
    // The next epoch's key is published before it signs (within two rotation checks of the
    // change), so relying parties that cache the JWKS know it when the first token arrives.
    let next_start = (epoch + 1).saturating_mul(provider.key_rotation);
    if provider.key_rotation > 0
        && now + 2 * ROTATION_CHECK.as_secs() >= next_start
        && let Some(key) = epoch_key(store, secret, epoch + 1, true).await?
    {
        keys.push(key);
    }
    Ok(KeySet::new(keys))
}

/// The kept key of `epoch`; made and kept now when `create` and no replica has yet.
async fn epoch_key(
    store: &dyn OidcStore,
    secret: &[u8],
    epoch: u64,
    create: bool,
) -> Result<Option<SigningKey>, OidcError> {
    let name = generated_key_name(epoch);
    let kept = match store.kept(&name).await? {
        Some(kept) => kept,
        None if !create => return Ok(None),
        None => {
            let fresh = tokio::task::spawn_blocking(|| {
                portcullis_oidc::keys::generate_rsa_pem(&mut getrandom::SysRng)
            })
            .await
            .map_err(|e| OidcError::Key(e.to_string()))??;
            // Another replica may have kept one meanwhile: `keep` answers the first.
            store.keep(&name, &seal(secret, &fresh)?).await?
        }
    };
    let pem = open_sealed(secret, &kept)?;
    Ok(Some(SigningKey::from_pem(
        &pem,
        portcullis_oidc::keys::Algorithm::RS256,
        None,
    )?))
}

/// How often the server looks whether a new key epoch began.
const ROTATION_CHECK: std::time::Duration = std::time::Duration::from_secs(3600);

/// Rotate generated signing keys when their epoch ends, while the server runs.
pub(crate) fn rotate_keys_periodically(state: AppState) {
    if !runtime(&state).is_some_and(|rt| rt.generated) {
        return;
    }
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(ROTATION_CHECK).await;
            if let Some(rt) = runtime(&state)
                && let Err(e) = rt.rotate_keys(state.now()).await
            {
                tracing::error!(error = %e, "OpenID Connect signing key rotation failed: the current keys stay");
            }
        }
    });
}

/// The AES-256-GCM key that protects a generated signing key in the store, derived from
/// `hmac_secret` (which every replica shares), so that the database or Redis alone holds no
/// usable private key.
fn sealing_key(hmac_secret: &[u8]) -> Result<aes_gcm::Aes256Gcm, OidcError> {
    use aes_gcm::KeyInit;
    let mut key = [0u8; 32];
    hkdf::Hkdf::<sha2::Sha256>::new(Some(b"portcullis"), hmac_secret)
        .expand(b"oidc kept signing key v1", &mut key)
        .map_err(|_| OidcError::Key("cannot derive the sealing key".into()))?;
    aes_gcm::Aes256Gcm::new_from_slice(&key)
        .map_err(|_| OidcError::Key("bad sealing key length".into()))
}

fn seal(hmac_secret: &[u8], pem: &str) -> Result<String, OidcError> {
    use aes_gcm::aead::Aead;
    use base64::Engine;
    let mut nonce = [0u8; 12];
    rand::rng().fill_bytes(&mut nonce);
    let sealed = sealing_key(hmac_secret)?
        .encrypt(aes_gcm::Nonce::from_slice(&nonce), pem.as_bytes())
        .map_err(|_| OidcError::Key("cannot seal the signing key".into()))?;
    let mut bytes = nonce.to_vec();
    bytes.extend(sealed);
    Ok(format!(
        "v1:{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    ))
}

fn open_sealed(hmac_secret: &[u8], kept: &str) -> Result<String, OidcError> {
    use aes_gcm::aead::Aead;
    use base64::Engine;
    let refuse = || {
        OidcError::Key(
            "the signing key kept in the storage cannot be opened: was identity_providers.oidc.hmac_secret changed? (configure jwks, or restore the secret)".into(),
        )
    };
    let bytes = kept
        .strip_prefix("v1:")
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .filter(|b| b.len() > 12)
        .ok_or_else(refuse)?;
    let (nonce, sealed) = bytes.split_at(12);
    let pem = sealing_key(hmac_secret)?
        .decrypt(aes_gcm::Nonce::from_slice(nonce), sealed)
        .map_err(|_| refuse())?;
    String::from_utf8(pem).map_err(|_| refuse())
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

/// The `cors.endpoints` name of a path.
fn cors_endpoint(path: &str) -> Option<&'static str> {
    Some(match path {
        paths::AUTHORIZATION => "authorization",
        paths::DEVICE_AUTHORIZATION => "device-authorization",
        paths::PUSHED_AUTHORIZATION_REQUEST => "pushed-authorization-request",
        paths::TOKEN => "token",
        paths::INTROSPECTION => "introspection",
        paths::REVOCATION => "revocation",
        paths::USERINFO => "userinfo",
        _ => return None,
    })
}

/// CORS for the endpoints `cors.endpoints` names (docs/reference/oidc-provider.md): a preflight
/// from an allowed origin is answered, and answers to it name it. Other origins get no CORS
/// headers, so browsers keep the answer from their pages.
async fn cors(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    use http::header::{
        ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
        ACCESS_CONTROL_MAX_AGE, ORIGIN, VARY,
    };
    let Some(endpoint) = cors_endpoint(request.uri().path()) else {
        return next.run(request).await;
    };
    let origin = request
        .headers()
        .get(ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let allowed = match (runtime(&state), &origin) {
        (Some(rt), Some(o)) => rt.provider.cors.allows(endpoint, o),
        _ => false,
    };
    let preflight = request.method() == http::Method::OPTIONS;
    let mut response = if preflight {
        StatusCode::NO_CONTENT.into_response()
    } else {
        next.run(request).await
    };
    let h = response.headers_mut();
    h.append(VARY, HeaderValue::from_static("Origin"));
    if let (true, Some(origin)) = (allowed, origin.and_then(|o| HeaderValue::from_str(&o).ok())) {
        h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        if preflight {
            h.insert(
                ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("GET, POST, OPTIONS"),
            );
            h.insert(
                ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static("Authorization, Content-Type"),
            );
            h.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
        }
    }
    response
}

/// The provider's routes (mounted only when `identity_providers.oidc` is configured).
pub(crate) fn routes(state: AppState) -> Router<AppState> {
    routes_without_cors().layer(axum::middleware::from_fn_with_state(state, cors))
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
            get(authorization::consent_get).post(authorization::consent_post),
        )
        .route(
            "/consent/openid/decision",
            get(authorization::decision_page).post(authorization::decision_form),
        )
        .route("/consent/completion", get(authorization::completion_page))
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

/// The store key of a JWT access token: its `jti`, apart from the HMACs of opaque tokens.
pub(crate) fn jwt_key(jti: &str) -> String {
    format!("jwt:{jti}")
}

/// Sign `claims` for `client` with `alg`: an HMAC keyed by the client's secret for HS*, else the
/// provider's key for the algorithm.
pub(crate) fn sign<T: serde::Serialize>(
    rt: &OidcRuntime,
    client: &OidcClient,
    alg: portcullis_oidc::keys::Algorithm,
    kid: Option<&str>,
    claims: &T,
    typ: Option<&str>,
) -> Result<String, OidcError> {
    use portcullis_oidc::keys::Algorithm;
    match alg {
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => match &client.secret {
            Some(crate::config::ClientSecret::Plain(secret)) => {
                portcullis_oidc::jwt::sign_with_secret(alg, secret.expose().as_bytes(), claims, typ)
            }
            // The configuration refuses HS* without a plaintext secret; refuse rather than sign
            // with anything else.
            _ => Err(OidcError::Key(format!(
                "client {} has no plaintext secret for {alg:?}",
                client.client.id
            ))),
        },
        _ => {
            let keys = rt.keys();
            match kid {
                Some(kid) => keys.by_kid(kid),
                None => keys.for_alg(alg),
            }
            .filter(|k| k.alg() == alg)
            .ok_or_else(|| OidcError::Key(format!("no key signs {alg:?}")))?
            .sign(claims, typ)
        }
    }
}

/// Verify a JWT access token this provider issued: its signature (the provider's key named by
/// `kid`, or the secret of the client named in it for HS*), `typ: at+jwt`, issuer and expiry.
/// Returns the store key to check it is still active.
pub(crate) fn verify_access_jwt(
    rt: &OidcRuntime,
    token: &str,
    issuer: Option<&str>,
    now: u64,
) -> Option<String> {
    use portcullis_oidc::keys::Algorithm;
    let header = portcullis_oidc::jwt::peek_header(token)?;
    let expect = |alg| portcullis_oidc::jwt::Expect {
        alg,
        issuer,
        typ: Some("at+jwt"),
        now,
        leeway: 0,
    };
    let claims = match header.alg {
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
            let unverified = portcullis_oidc::jwt::peek_claims(token)?;
            let client = rt.client(unverified.get("client_id")?.as_str()?)?;
            if client.client.access_token_alg != Some(header.alg) {
                return None;
            }
            let Some(crate::config::ClientSecret::Plain(secret)) = &client.secret else {
                return None;
            };
            let key = portcullis_oidc::jwt::secret_key(secret.expose().as_bytes()).ok()?;
            portcullis_oidc::jwt::verify(token, &key, &expect(header.alg)).ok()?
        }
        alg => verify_with_provider_key(rt, token, header.kid.as_deref(), &expect(alg))?,
    };
    Some(jwt_key(claims.get("jti")?.as_str()?))
}

/// Verify `token` with the provider's key named by `kid` (or the first of the expected algorithm):
/// the claims, when the key exists, signs with that algorithm and the signature and times hold.
pub(crate) fn verify_with_provider_key(
    rt: &OidcRuntime,
    token: &str,
    kid: Option<&str>,
    expect: &portcullis_oidc::jwt::Expect<'_>,
) -> Option<serde_json::Map<String, serde_json::Value>> {
    let keys = rt.keys();
    let key = match kid {
        Some(kid) => keys.by_kid(kid)?,
        None => keys.for_alg(expect.alg)?,
    };
    if key.alg() != expect.alg {
        return None;
    }
    portcullis_oidc::jwt::verify(token, key.decoding_key(), expect).ok()
}

/// The client address a rate limit counts: from `X-Forwarded-For` behind a trusted proxy, else
/// the peer (an unparsable chain counts against the proxy's address).
pub(crate) fn client_addr(state: &AppState, request: &axum::extract::Request) -> std::net::IpAddr {
    let peer = crate::authz::peer_of(request);
    portcullis_core::client_ip(request.headers(), peer, &state.config().trusted_proxies)
        .addr()
        .unwrap_or(peer)
}

/// [`client_addr`] for handlers that took the request apart.
pub(crate) fn client_addr_of_parts(state: &AppState, parts: &Parts) -> std::net::IpAddr {
    let peer = crate::authz::peer_of_parts(parts);
    portcullis_core::client_ip(&parts.headers, peer, &state.config().trusted_proxies)
        .addr()
        .unwrap_or(peer)
}

/// 429 with `Retry-After`, as Authelia answers a rate-limited OpenID Connect endpoint.
pub(crate) fn too_many_requests(endpoint: &'static str, retry_after: u64) -> Response {
    tracing::info!(
        endpoint,
        retry_after,
        "OpenID Connect request refused: rate limited"
    );
    let mut r = no_store_json(
        StatusCode::TOO_MANY_REQUESTS,
        &serde_json::json!({"error": "temporarily_unavailable", "error_description": "Too many requests. The endpoint is temporarily unavailable. Try again later."}),
    );
    if let Ok(v) = HeaderValue::from_str(&retry_after.max(1).to_string()) {
        r.headers_mut().insert(http::header::RETRY_AFTER, v);
    }
    r
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

/// A JSON answer that must not be cached (token-style endpoints, RFC 6749 §5.1).
pub(crate) fn no_store_json(status: StatusCode, body: &serde_json::Value) -> Response {
    let mut r = (status, body.to_string()).into_response();
    let h = r.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

/// An OAuth error as JSON (RFC 6749 §5.2), logged with its reason.
pub(crate) fn oauth_error(endpoint: &'static str, error: &OAuthError) -> Response {
    tracing::info!(endpoint, error = %error.code, reason = %error.description, "OpenID Connect request refused");
    let status = StatusCode::from_u16(error.code.status()).unwrap_or(StatusCode::BAD_REQUEST);
    no_store_json(status, &error.to_json())
}

/// A store failure: logged, answered `server_error` (never an allow).
pub(crate) fn store_failure(endpoint: &'static str, e: &OidcError) -> Response {
    tracing::error!(endpoint, error = %e, "OpenID Connect store failed: request refused");
    no_store_json(
        StatusCode::INTERNAL_SERVER_ERROR,
        &serde_json::json!({"error": "server_error", "error_description": "The authorization server encountered an unexpected condition that prevented it from fulfilling the request."}),
    )
}

/// Parse an `application/x-www-form-urlencoded` body; `None` when it is not one or is too large.
pub(crate) async fn form_body(
    request: axum::extract::Request,
) -> Result<(Parts, Vec<(String, String)>), OAuthError> {
    let (parts, body) = request.into_parts();
    let is_form = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| {
            m.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !is_form {
        return Err(OAuthError::new(
            portcullis_oidc::ErrorCode::InvalidRequest,
            "The request body must be application/x-www-form-urlencoded.",
        ));
    }
    let bytes = axum::body::to_bytes(body, 64 * 1024).await.map_err(|_| {
        OAuthError::new(
            portcullis_oidc::ErrorCode::InvalidRequest,
            "The request body is too large.",
        )
    })?;
    let pairs = form_urlencoded::parse(&bytes).into_owned().collect();
    Ok((parts, pairs))
}

/// The single value of `name`; `Err` when repeated (RFC 6749 §3.2), empty counts as absent.
pub(crate) fn single<'a>(
    pairs: &'a [(String, String)],
    name: &str,
) -> Result<Option<&'a str>, OAuthError> {
    let mut found = None;
    for (k, v) in pairs {
        if k == name {
            if found.is_some() {
                return Err(OAuthError::new(
                    portcullis_oidc::ErrorCode::InvalidRequest,
                    format!("The '{name}' parameter is included more than once."),
                ));
            }
            found = Some(v.as_str());
        }
    }
    Ok(found.filter(|v| !v.is_empty()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_kept_key_opens_only_with_the_same_secret() {
        let sealed = super::seal(b"secret-one", "PEM").unwrap();
        assert!(!sealed.contains("PEM"));
        assert_eq!(super::open_sealed(b"secret-one", &sealed).unwrap(), "PEM");
        assert!(super::open_sealed(b"secret-two", &sealed).is_err());
        assert!(super::open_sealed(b"secret-one", "v1:AAAA").is_err());
        assert!(super::open_sealed(b"secret-one", "garbage").is_err());
    }
}
